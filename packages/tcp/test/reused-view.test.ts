/**
 * The receive path's allocation-free reading: one TcpPacket re-pointed at each segment
 * (`checkAt`, `repoint`) and one Repr rewritten for each (`TcpRepr.readInto`). Whatever was
 * read from one segment must not show through on the next, and malformed input is refused
 * where it lies, as `check` refuses it.
 */
import { describe, expect, it } from 'vitest';
import { Ipv4Packet } from '@tapstack/ipv4';
import { ipv4 } from '@tapstack/link';
import { fixtureFrames, fixtureNames, hex } from '../../../test/support/fixtures.ts';
import { ReusedTcpRepr, TcpPacket, TcpRepr, type TcpOptions } from '../src/header.ts';

const A = ipv4('10.0.0.1');
const B = ipv4('10.0.0.2');

/** The kernel's SYN from linux-tcp-echo-session.pcap (frame 1): MSS, SACK-permitted, timestamps, window scale. */
const SYN = hex(`
  a3 8a 00 07 b8 76 d5 6f 00 00 00 00 a0 02 fa f0 6a 2a 00 00
  02 04 05 b4 04 02 08 0a 18 64 85 03 00 00 00 00 01 03 03 0a`);

/** An ACK with timestamps and two SACK blocks (NOP NOP TS, NOP NOP SACK 2), then 4 bytes of data. */
const SACK_ACK = hex(`
  00 07 a3 8a 00 00 10 00 b8 76 d5 70 d0 10 01 f5 00 00 00 00
  01 01 08 0a 00 00 00 2a 18 64 85 03 01 01 05 12
  00 00 20 00 00 00 30 00 00 00 40 00 00 00 50 00
  de ad be ef`);

/** A bare ACK: no options, no data. */
const BARE_ACK = hex(`00 07 a3 8a 00 00 10 00 b8 76 d5 70 50 10 01 f5 00 00 00 00`);

/** The options as plain values, absent ones left out (what TcpRepr.parse gives). */
function plain(o: TcpOptions): TcpOptions {
  const out: { -readonly [K in keyof TcpOptions]: TcpOptions[K] } = {};
  if (o.mss !== undefined) out.mss = o.mss;
  if (o.windowScale !== undefined) out.windowScale = o.windowScale;
  if (o.sackPermitted) out.sackPermitted = true;
  if (o.sackBlocks !== undefined) out.sackBlocks = o.sackBlocks.map((b) => ({ left: b.left, right: b.right }));
  if (o.timestamps !== undefined) out.timestamps = { value: o.timestamps.value, echo: o.timestamps.echo };
  return out;
}

/** `segment` placed at `at` in a larger buffer with junk around it, as a frame holds it. */
function inFrame(segment: Uint8Array, at: number): Uint8Array {
  const frame = new Uint8Array(at + segment.length + 7).fill(0xee);
  frame.set(segment, at);
  return frame;
}

describe('a re-pointed TcpPacket and a reused Repr', () => {
  it('show only the segment they were last pointed at: no option of an earlier one shows through', () => {
    const view = new TcpPacket(new Uint8Array(0));
    const repr = new ReusedTcpRepr();
    const read = (segment: Uint8Array, at: number) => {
      const frame = inFrame(segment, at);
      expect(TcpPacket.checkAt(frame, at, at + segment.length)).toBeUndefined();
      view.repoint(frame, at, at + segment.length);
      return TcpRepr.readInto(view, repr);
    };

    const syn = read(SYN, 34);
    expect(plain(syn.options)).toEqual({ mss: 1460, sackPermitted: true, timestamps: { value: 0x18648503, echo: 0 }, windowScale: 10 });
    expect([syn.sourcePort, syn.destinationPort, syn.seq, syn.flags, syn.window]).toEqual([41866, 7, 0xb876d56f, 0x02, 0xfaf0]);

    const ack = read(SACK_ACK, 54);
    expect(ack).toBe(syn); // the same object, rewritten
    expect(plain(ack.options)).toEqual({ timestamps: { value: 42, echo: 0x18648503 }, sackBlocks: [{ left: 0x2000, right: 0x3000 }, { left: 0x4000, right: 0x5000 }] });
    expect(ack.options.mss).toBeUndefined();
    expect(ack.options.windowScale).toBeUndefined();
    expect(ack.options.sackPermitted).toBeUndefined();
    expect([ack.seq, ack.ack, ack.flags, ack.window]).toEqual([0x1000, 0xb876d570, 0x10, 0x1f5]);
    expect([...view.payload]).toEqual([0xde, 0xad, 0xbe, 0xef]);
    expect(view.payloadLength).toBe(4);

    const bare = read(BARE_ACK, 14);
    expect(plain(bare.options)).toEqual({});
    expect(bare.options.sackBlocks).toBeUndefined();
    expect(bare.options.timestamps).toBeUndefined();
    expect(view.payload.length).toBe(0);
    expect([...view.bytes]).toEqual([...BARE_ACK]);
  });

  it('reads every segment of the kernel captures, one after the other, as TcpRepr.parse reads each alone', () => {
    const view = new TcpPacket(new Uint8Array(0));
    const repr = new ReusedTcpRepr();
    let segments = 0;
    for (const file of fixtureNames().filter((n) => n.startsWith('linux-tcp-'))) {
      for (const frame of fixtureFrames(file)) {
        const ip = Ipv4Packet.check(frame.subarray(14));
        if (!ip.ok || ip.value.protocol !== 6) continue;
        const p = ip.value;
        const start = 14 + p.headerLength;
        const end = 14 + p.totalLength;
        expect(TcpPacket.checkAt(frame, start, end)).toBeUndefined();
        view.repoint(frame, start, end);
        const alone = TcpRepr.parse(new TcpPacket(frame.slice(start, end)));
        const read = TcpRepr.readInto(view, repr);
        const { options, ...fields } = alone;
        expect({ ...read, options: undefined }).toEqual({ ...fields, options: undefined });
        expect(plain(read.options)).toEqual(plain(options));
        expect(view.verifyChecksum(p.source, p.destination)).toBe(true);
        segments++;
      }
    }
    expect(segments).toBeGreaterThan(100);
  });

  it('refuses malformed segments where they lie, for the same reasons as check', () => {
    const cases: [Uint8Array, string][] = [[SYN.subarray(0, 19), 'truncated']];
    const lowOffset = SYN.slice();
    lowOffset[12] = 0x40;
    cases.push([lowOffset, 'bad_data_offset']);
    const pastEnd = SYN.slice();
    pastEnd[12] = 0xb0;
    cases.push([pastEnd, 'bad_data_offset']);
    for (const [at, value] of [[21, 0], [21, 1], [21, 30], [25, 3], [27, 9]] as const) {
      const bad = SYN.slice();
      bad[at] = value;
      cases.push([bad, 'bad_option_length']);
    }
    const badSack = SACK_ACK.slice();
    badSack[35] = 0x11; // SACK of 17 bytes: not 2 + 8n
    cases.push([badSack, 'bad_option_length']);
    for (const [segment, reason] of cases) {
      expect(TcpPacket.check(segment)).toEqual({ ok: false, reason });
      // the bytes after the segment (junk in the frame) are not read as part of it
      const frame = inFrame(segment, 34);
      expect(TcpPacket.checkAt(frame, 34, 34 + segment.length)).toBe(reason);
    }
  });

  it('emit at an offset into a frame writes what emit into a buffer of its own writes, and nothing around it', () => {
    const repr = TcpRepr.parse(new TcpPacket(SACK_ACK));
    const data = SACK_ACK.subarray(52);
    const alone = new Uint8Array(TcpRepr.bufferLength(repr, data.length));
    TcpRepr.emit(repr, data, alone, A, B);
    const frame = new Uint8Array(34 + alone.length + 5).fill(0xee);
    TcpRepr.emit(repr, data, frame, A, B, 34);
    expect([...frame.subarray(34, 34 + alone.length)]).toEqual([...alone]);
    expect(frame.subarray(0, 34).every((b) => b === 0xee) && frame.subarray(34 + alone.length).every((b) => b === 0xee)).toBe(true);
    expect(new TcpPacket(frame, 34, 34 + alone.length).verifyChecksum(A, B)).toBe(true);
    expect(() => TcpRepr.emit(repr, data, frame, A, B, 40)).toThrow(RangeError);
  });

  it('readInto on unchecked bytes stops at a malformed option instead of looping or reading past the header', () => {
    const repr = new ReusedTcpRepr();
    for (const options of [[2, 0], [2, 1], [5, 9, 0, 0, 0, 0, 0, 0, 0], [8, 40], [2, 4, 5, 180, 3, 0]]) {
      const segment = new Uint8Array(20 + Math.ceil(options.length / 4) * 4);
      segment[12] = (segment.length / 4) << 4;
      segment.set(options, 20);
      expect(TcpPacket.check(segment).ok).toBe(false);
      TcpRepr.readInto(new TcpPacket(segment), repr);
      expect(repr.options.sackBlocks).toBeUndefined();
      expect(repr.options.timestamps).toBeUndefined();
    }
  });
});

