import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Ipv4Packet } from '@tapstack/ipv4';
import { ipv4 } from '@tapstack/link';
import { fixtureFrames, fixtureNames, hex } from '../../../test/support/fixtures.ts';
import { formatTcp, NO_OPTIONS, TcpFlag, TcpPacket, TcpRepr, tcpChecksum, type TcpOptions } from '../src/header.ts';

const A = ipv4('10.0.0.1');
const B = ipv4('10.0.0.2');

/** The kernel's SYN from linux-tcp-echo-session.pcap (frame 1), the TCP part. */
const SYN = hex(`
  a3 8a 00 07 b8 76 d5 6f 00 00 00 00 a0 02 fa f0 6a 2a 00 00
  02 04 05 b4 04 02 08 0a 18 64 85 03 00 00 00 00 01 03 03 0a`);

function tcpSegments(file: string): { ip: Ipv4Packet; tcp: Uint8Array }[] {
  return fixtureFrames(file).map((frame) => {
    const ip = Ipv4Packet.check(frame.subarray(14));
    if (!ip.ok) throw new Error(`${file}: not IPv4`);
    return { ip: ip.value, tcp: ip.value.payload };
  });
}

describe('TcpPacket, the view', () => {
  it('deconstructs the kernel SYN field by field', () => {
    const r = TcpPacket.check(SYN);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const p = r.value;
    expect(p.sourcePort).toBe(41866);
    expect(p.destinationPort).toBe(7);
    expect(p.seq).toBe(0xb876d56f);
    expect(p.ack).toBe(0);
    expect(p.headerLength).toBe(40);
    expect(p.flags).toBe(TcpFlag.SYN);
    expect(p.window).toBe(64240);
    expect(p.checksum).toBe(0x6a2a);
    expect(p.payload.length).toBe(0);
    expect(p.verifyChecksum(A, B)).toBe(true);
    // the pseudo-header sum does not depend on the order of the addresses, only on their values
    expect(p.verifyChecksum(A, ipv4('10.0.0.3'))).toBe(false);
    expect(TcpRepr.parse(p).options).toEqual({ mss: 1460, sackPermitted: true, timestamps: { value: 0x18648503, echo: 0 }, windowScale: 10 });
  });

  it('constructs the same bytes from the Repr', () => {
    const repr: TcpRepr = {
      sourcePort: 41866,
      destinationPort: 7,
      seq: 0xb876d56f,
      ack: 0,
      flags: TcpFlag.SYN,
      window: 64240,
      urgentPointer: 0,
      options: { mss: 1460, sackPermitted: true, timestamps: { value: 0x18648503, echo: 0 }, windowScale: 10 },
    };
    expect(TcpRepr.bufferLength(repr, 0)).toBe(40);
    const out = new Uint8Array(40);
    TcpRepr.emit(repr, new Uint8Array(0), out, A, B);
    expect(out).toEqual(SYN);
  });

  it('refuses what is not a segment, by reason, without throwing', () => {
    expect(TcpPacket.check(SYN.subarray(0, 19))).toEqual({ ok: false, reason: 'truncated' });
    const lowOffset = SYN.slice();
    lowOffset[12] = 0x40; // 4 words
    expect(TcpPacket.check(lowOffset)).toEqual({ ok: false, reason: 'bad_data_offset' });
    const pastEnd = SYN.slice();
    pastEnd[12] = 0xb0; // 44 bytes > 40
    expect(TcpPacket.check(pastEnd)).toEqual({ ok: false, reason: 'bad_data_offset' });
    for (const [at, value] of [
      [21, 0], // MSS length 0
      [21, 1], // MSS length 1
      [21, 30], // MSS running past the header
      [25, 3], // SACK-permitted with length 3
      [27, 9], // timestamps with length 9
    ] as const) {
      const bad = SYN.slice();
      bad[at] = value;
      expect(TcpPacket.check(bad), `byte ${at} = ${value}`).toEqual({ ok: false, reason: 'bad_option_length' });
    }
  });

  it('skips unknown options by their length and stops at EOL', () => {
    const seg = new Uint8Array(32);
    seg[12] = 0x80; // 32 bytes
    seg.set([0xfd, 4, 0xaa, 0xbb, 0x02, 0x04, 0x05, 0xb4, 0, 0x99, 0x99, 0x99], 20);
    const r = TcpPacket.check(seg);
    expect(r.ok).toBe(true);
    if (r.ok) expect(TcpRepr.parse(r.value).options).toEqual({ mss: 1460 });
  });
});

describe('the kernel captures (test/fixtures/linux-tcp-*.pcap)', () => {
  const files = fixtureNames().filter((n) => n.startsWith('linux-tcp-'));

  it('are all here', () => {
    expect(files.length).toBe(7);
  });

  for (const file of files) {
    it(`${file}: every segment checks, its checksum verifies, and it re-emits byte for byte`, () => {
      const segments = tcpSegments(file);
      expect(segments.length).toBeGreaterThan(1);
      for (const [i, { ip, tcp }] of segments.entries()) {
        const r = TcpPacket.check(tcp);
        expect(r.ok, `${file} #${i + 1}`).toBe(true);
        if (!r.ok) continue;
        expect(r.value.verifyChecksum(ip.source, ip.destination), `${file} #${i + 1} checksum`).toBe(true);
        const repr = TcpRepr.parse(r.value);
        const out = new Uint8Array(TcpRepr.bufferLength(repr, r.value.payload.length));
        TcpRepr.emit(repr, r.value.payload, out, ip.source, ip.destination);
        expect(out, `${file} #${i + 1} re-emitted`).toEqual(tcp);
      }
    });
  }

  it('the closed-port RST: RST+ACK, seq 0, ack ISN+1, window 0, no options', () => {
    const [syn, rst] = tcpSegments('linux-tcp-rst-closed-port.pcap');
    const s = TcpRepr.parse(new TcpPacket(syn!.tcp));
    const r = TcpRepr.parse(new TcpPacket(rst!.tcp));
    expect(s.destinationPort).toBe(81);
    expect(r).toEqual({ sourcePort: 81, destinationPort: s.sourcePort, seq: 0, ack: (s.seq + 1) >>> 0, flags: TcpFlag.RST | TcpFlag.ACK, window: 0, urgentPointer: 0, options: NO_OPTIONS });
  });

  it('the bulk transfer with loss: 35 ACKs carry SACK blocks, each block inside the sender sequence space', () => {
    const segs = tcpSegments('linux-tcp-bulk-loss.pcap').map(({ tcp }) => TcpRepr.parse(new TcpPacket(tcp)));
    const withSack = segs.filter((s) => s.options.sackBlocks && s.options.sackBlocks.length > 0);
    expect(withSack.length).toBe(35);
    for (const s of withSack) for (const b of s.options.sackBlocks!) expect(((b.right - b.left) | 0) > 0).toBe(true);
  });

  it('formats like tcpdump', () => {
    const [syn, synAck] = tcpSegments('linux-tcp-echo-session.pcap');
    expect(formatTcp(syn!.tcp, A, B)).toBe(
      '10.0.0.1.41866 > 10.0.0.2.7: Flags [S], seq 3094795631, win 64240, options [mss 1460,sackOK,TS val 409240835 ecr 0,nop,wscale 10], length 0',
    );
    expect(formatTcp(synAck!.tcp, B, A, { seq: 0x21490f91, ack: 0xb876d56f })).toBe(
      '10.0.0.2.7 > 10.0.0.1.41866: Flags [S.], seq 0, ack 1, win 65160, options [mss 1460,sackOK,TS val 1656722798 ecr 409240835,nop,wscale 10], length 0',
    );
  });
});

const arbOptions: fc.Arbitrary<TcpOptions> = fc
  .record(
    {
      mss: fc.integer({ min: 0, max: 0xffff }),
      windowScale: fc.integer({ min: 0, max: 14 }),
      sackPermitted: fc.constant(true),
      timestamps: fc.record({ value: fc.integer({ min: 0, max: 0xffffffff }), echo: fc.integer({ min: 0, max: 0xffffffff }) }),
      sackBlocks: fc.array(fc.record({ left: fc.integer({ min: 0, max: 0xffffffff }), right: fc.integer({ min: 0, max: 0xffffffff }) }), { minLength: 1, maxLength: 3 }),
    },
    { requiredKeys: [] },
  )
  .filter((o) => 20 + (o.mss !== undefined ? 4 : 0) + (o.timestamps ? 12 : o.sackPermitted ? 4 : 0) + (o.windowScale !== undefined ? 4 : 0) + (o.sackBlocks ? 4 + 8 * o.sackBlocks.length : 0) <= 60);

const arbRepr: fc.Arbitrary<TcpRepr> = fc.record({
  sourcePort: fc.integer({ min: 0, max: 0xffff }),
  destinationPort: fc.integer({ min: 0, max: 0xffff }),
  seq: fc.integer({ min: 0, max: 0xffffffff }),
  ack: fc.integer({ min: 0, max: 0xffffffff }),
  flags: fc.integer({ min: 0, max: 0xff }).map((f) => f | TcpFlag.ACK),
  window: fc.integer({ min: 0, max: 0xffff }),
  urgentPointer: fc.integer({ min: 0, max: 0xffff }),
  options: arbOptions,
});

describe('properties', () => {
  it('emit then parse gives the same Repr, and the checksum verifies', () => {
    fc.assert(
      fc.property(arbRepr, fc.uint8Array({ maxLength: 64 }), (repr, payload) => {
        const out = new Uint8Array(TcpRepr.bufferLength(repr, payload.length));
        TcpRepr.emit(repr, payload, out, A, B);
        const r = TcpPacket.check(out);
        expect(r.ok).toBe(true);
        if (!r.ok) return;
        expect(TcpRepr.parse(r.value)).toEqual(repr);
        expect(r.value.payload).toEqual(payload);
        expect(tcpChecksum(out, A, B)).toBe(0);
      }),
    );
  });

  it('random bytes, and valid segments with random bytes changed, never throw in check, parse or format', () => {
    const valid = fc.tuple(arbRepr, fc.uint8Array({ maxLength: 16 })).map(([repr, payload]) => {
      const out = new Uint8Array(TcpRepr.bufferLength(repr, payload.length));
      TcpRepr.emit(repr, payload, out, A, B);
      return out;
    });
    const mutated = fc.tuple(valid, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 })).map(([bytes, edits]) => {
      for (const [at, v] of edits) bytes[at % bytes.length] = v;
      return bytes;
    });
    let accepted = 0;
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }), mutated), (bytes) => {
        const r = TcpPacket.check(bytes);
        if (r.ok) {
          accepted++;
          const repr = TcpRepr.parse(r.value);
          expect(repr.sourcePort).toBe((bytes[0]! << 8) | bytes[1]!);
        }
        expect(typeof formatTcp(bytes, A, B)).toBe('string');
      }),
      { numRuns: 2000 },
    );
    // The property must exercise parse, not only the refusals.
    expect(accepted).toBeGreaterThan(200);
  });
});

describe('the trace formatter (relative sequence numbers, as tcpdump)', () => {
  it('prints the kernel echo session relative to each side’s ISN after the SYNs', async () => {
    const { TcpTraceFormatter } = await import('../src/trace.ts');
    const t = new TcpTraceFormatter();
    const lines = tcpSegments('linux-tcp-echo-session.pcap').map(({ ip, tcp }) => t.format(tcp, ip.source, ip.destination));
    expect(lines[0]).toContain('seq 3094795631,');
    // what `tcpdump -n -r linux-tcp-echo-session.pcap` prints for frames 3 and 4
    expect(lines[2]).toBe('10.0.0.1.41866 > 10.0.0.2.7: Flags [.], ack 1, win 63, options [nop,nop,TS val 409240835 ecr 1656722798], length 0');
    expect(lines[3]).toBe('10.0.0.1.41866 > 10.0.0.2.7: Flags [P.], seq 1:7, ack 1, win 63, options [nop,nop,TS val 409240835 ecr 1656722798], length 6');
  });
});
