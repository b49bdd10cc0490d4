/**
 * The send path's allocation-free description of a segment: the connections share one
 * ReusedTcpRepr (connection.ts `OUTGOING`), rewritten for every segment they send, and IP builds
 * the frame in one reused buffer. Nothing of one segment may show in the next: not a SYN's MSS,
 * window scale or SACK-permitted in the ACK after it, not an ACK's SACK blocks in a plain one,
 * not the bytes of a longer header in a shorter one's frame.
 */
import { describe, expect, it } from 'vitest';
import { Ipv4Packet } from '@tapstack/ipv4';
import { fixtureFrames } from '../../../test/support/fixtures.ts';
import { TcpConnection } from '../src/connection.ts';
import { ReusedTcpRepr, TcpFlag, TcpPacket, TcpRepr, type TcpOptions } from '../src/header.ts';
import { Harness, ISS, PEER_ISS } from './harness.ts';
import { ipv4 } from '@tapstack/link';

/** Writes `from` into the reused Repr the way the connection does: everything anew, options cleared first. */
function describeInto(out: ReusedTcpRepr, from: TcpRepr): ReusedTcpRepr {
  out.sourcePort = from.sourcePort;
  out.destinationPort = from.destinationPort;
  out.seq = from.seq;
  out.ack = from.ack;
  out.flags = from.flags;
  out.window = from.window;
  out.urgentPointer = from.urgentPointer;
  const o = out.options;
  o.clear();
  const f = from.options;
  if (f.mss !== undefined) o.mss = f.mss;
  if (f.windowScale !== undefined) o.windowScale = f.windowScale;
  if (f.sackPermitted) o.sackPermitted = true;
  if (f.sackBlocks) o.sackBlocks = f.sackBlocks;
  if (f.timestamps) o.setTimestamps(f.timestamps.value, f.timestamps.echo);
  return out;
}

function segments(file: string): { ip: Ipv4Packet; tcp: Uint8Array; repr: TcpRepr }[] {
  return fixtureFrames(file).map((frame) => {
    const ip = Ipv4Packet.check(frame.subarray(14));
    if (!ip.ok) throw new Error(`${file}: not IPv4`);
    return { ip: ip.value, tcp: ip.value.payload, repr: TcpRepr.parse(new TcpPacket(ip.value.payload)) };
  });
}

const hasSack = (r: TcpRepr): boolean => (r.options.sackBlocks?.length ?? 0) > 0;

describe('one reused Repr and one reused frame for every segment sent', () => {
  for (const file of ['linux-tcp-echo-session.pcap', 'linux-tcp-bulk-loss.pcap']) {
    it(`${file}: every segment, described in the one Repr and emitted into the one frame, is the kernel's bytes`, () => {
      const all = segments(file);
      const repr = new ReusedTcpRepr();
      // one frame for all, as IPv4's reused buffer on a TAP device: what an earlier, longer
      // segment left in it must be overwritten or fall outside the next one
      const frame = new Uint8Array(54 + 1600).fill(0xa5);
      for (const [i, { ip, tcp, repr: kernel }] of all.entries()) {
        describeInto(repr, kernel);
        const length = TcpRepr.bufferLength(repr, tcp.length - new TcpPacket(tcp).headerLength);
        expect(length, `${file} #${i + 1} length`).toBe(tcp.length);
        TcpRepr.emit(repr, new TcpPacket(tcp).payload, frame, ip.source, ip.destination, 54);
        expect(frame.subarray(54, 54 + length), `${file} #${i + 1}`).toEqual(tcp);
      }
    });
  }

  it('the captures hold the changes that could leak: a SYN with options before an ACK, a SACK-carrying ACK before a plain one', () => {
    const echo = segments('linux-tcp-echo-session.pcap').map((s) => s.repr);
    const synThenAck = echo.findIndex((r, i) => r.flags & TcpFlag.SYN && i + 1 < echo.length && !(echo[i + 1]!.flags & TcpFlag.SYN));
    expect(synThenAck).toBeGreaterThanOrEqual(0);
    expect(echo[synThenAck]!.options.mss).toBe(1460);
    expect(echo[synThenAck + 1]!.options.mss).toBeUndefined();
    const bulk = segments('linux-tcp-bulk-loss.pcap').map((s) => s.repr);
    // the receiver's ACKs, in order: one with SACK blocks followed by one without
    const acks = bulk.filter((r) => r.sourcePort === bulk.find(hasSack)!.sourcePort);
    expect(acks.some((r, i) => hasSack(r) && i + 1 < acks.length && !hasSack(acks[i + 1]!))).toBe(true);
  });

  it('clear() leaves no option of the segment before', () => {
    const repr = new ReusedTcpRepr();
    describeInto(repr, { sourcePort: 1, destinationPort: 2, seq: 3, ack: 0, flags: TcpFlag.SYN, window: 64240, urgentPointer: 0, options: { mss: 1460, windowScale: 7, sackPermitted: true, sackBlocks: [{ left: 1, right: 2 }], timestamps: { value: 5, echo: 0 } } });
    repr.options.clear();
    expect(TcpRepr.headerLength(repr)).toBe(20);
    expect(TcpRepr.copy(repr).options).toEqual({});
  });
});

describe('a connection sending through the shared Repr', () => {
  const LOCAL = { address: ipv4('10.0.0.2'), port: 40000 };
  const REMOTE = { address: ipv4('10.0.0.1'), port: 80 };
  const options = (o: TcpOptions): string[] => Object.keys(TcpRepr.copy({ sourcePort: 0, destinationPort: 0, seq: 0, ack: 0, flags: 0, window: 0, urgentPointer: 0, options: o }).options).sort();

  it('hands the host one object for every segment, and each segment carries only its own options', () => {
    const h = new Harness();
    const handed: TcpRepr[] = [];
    const output = h.output.bind(h);
    h.output = (c, repr, payload) => {
      handed.push(repr);
      output(c, repr, payload);
    };
    h.connection = TcpConnection.connect(h, { local: LOCAL, remote: REMOTE, iss: ISS, localMss: 1460, params: {} });
    h.connection.attach(h);
    const [syn] = h.take();
    expect(options(syn!.repr.options)).toEqual(['mss', 'sackPermitted', 'timestamps', 'windowScale']);
    h.clock.advance(10);
    h.peer(TcpFlag.SYN | TcpFlag.ACK, PEER_ISS, ISS + 1, undefined, { mss: 1000, sackPermitted: true, windowScale: 7, timestamps: { value: 77, echo: syn!.repr.options.timestamps!.value } });
    const [ack] = h.take();
    // the handshake's last ACK: timestamps only, nothing of the SYN's
    expect(ack!.repr.flags).toBe(TcpFlag.ACK);
    expect(options(ack!.repr.options)).toEqual(['timestamps']);
    expect(ack!.repr.options.timestamps!.echo).toBe(77);

    // data out of order: the ACK reports it in a SACK block ...
    const ts = { value: 78, echo: ack!.repr.options.timestamps!.value };
    h.peer(TcpFlag.ACK, PEER_ISS + 1 + 100, ISS + 1, new Uint8Array(100), { timestamps: ts });
    const [sackAck] = h.take();
    expect(sackAck!.repr.options.sackBlocks).toEqual([{ left: PEER_ISS + 1 + 100, right: PEER_ISS + 1 + 200 }]);
    // ... and once the hole is filled the next ACK carries none
    h.peer(TcpFlag.ACK, PEER_ISS + 1, ISS + 1, new Uint8Array(100), { timestamps: ts });
    const [plainAck] = h.take();
    expect(plainAck!.repr.ack).toBe(PEER_ISS + 1 + 200);
    expect(options(plainAck!.repr.options)).toEqual(['timestamps']);

    // a data segment after them: timestamps only, its own sequence number and flags
    h.connection.write(new Uint8Array(10));
    const [data] = h.take();
    expect(data!.payload.length).toBe(10);
    expect(data!.repr.flags).toBe(TcpFlag.ACK | TcpFlag.PSH);
    expect(options(data!.repr.options)).toEqual(['timestamps']);

    // the host was handed the same object each time: the description is reused, not made per segment
    expect(handed.length).toBe(5);
    expect(new Set(handed).size).toBe(1);
  });
});
