// TCP on a link that segments for it (a TAP device in virtio-net header mode), simulated: host
// A's link says it takes super-frames (gsoMaxSize 65535) and stands in for the kernel's side of
// the device by finishing each partial checksum (what tun does for a local receiver) before the
// frame crosses a wire wide enough for it. Host B is a plain stack: it must take segments far
// longer than its MSS, and the bytes must arrive intact. Then the receive side alone: a segment
// whose checksum the kernel left partial is taken without summing, and checked when nothing (or
// an offload naming another field) vouches for it.
import { Arp } from '@tapstack/arp';
import { IcmpLayer } from '@tapstack/icmp';
import { Ipv4Cidr, Ipv4Layer, Ipv4Repr, finishChecksum, internetChecksum } from '@tapstack/ipv4';
import { EtherTypeDispatcher, FaultInjector, LinkWrapper, MacAddress, MemoryLink, VirtualClock, ipv4, seededRandom, type FrameOffload, type Link } from '@tapstack/link';
import { describe, expect, it } from 'vitest';
import { TcpFlag, TcpLayer, TcpRepr, tcpChecksum } from '../src/index.ts';
import { collect, pattern, runUntil, sha256 } from './support.ts';

/** What the kernel would do with our super-frames before its own TCP reads them. */
class SegmentingLink extends LinkWrapper {
  readonly offloads: FrameOffload[] = [];
  /** Data bytes of each super-frame. */
  readonly dataLengths: number[] = [];
  override get gsoMaxSize(): number {
    return 65535;
  }
  override send(frame: Uint8Array, offload?: FrameOffload): boolean {
    if (offload) {
      this.offloads.push(offload);
      if (offload.gso === 'tcpv4') this.dataLengths.push(frame.length - offload.headerLength);
      if (offload.checksum === 'partial') finishChecksum(frame, offload, frame.length);
    }
    return this.inner.send(frame);
  }
}

/**
 * What the kernel does with our super-frames when they leave through a real device: cuts each
 * into segments of `segmentSize` data bytes (Linux's tcp_gso_segment: the header copied, the
 * sequence number advanced, FIN and PSH on the last only, IPv4 length, id and checksums fresh),
 * so that what comes after (a lossy wire) loses single segments, not whole super-frames.
 */
class CuttingLink extends LinkWrapper {
  superFrames = 0;
  override get gsoMaxSize(): number {
    return 65535;
  }
  override send(frame: Uint8Array, offload?: FrameOffload): boolean {
    if (!offload || offload.gso !== 'tcpv4') {
      if (offload?.checksum === 'partial') finishChecksum(frame, offload, frame.length);
      return this.inner.send(frame);
    }
    this.superFrames++;
    const headers = offload.headerLength;
    const tcpAt = offload.checksumStart;
    const seq = new DataView(frame.buffer, frame.byteOffset).getUint32(tcpAt + 4);
    const flags = frame[tcpAt + 13]!;
    const source = ipv4(`${frame[26]}.${frame[27]}.${frame[28]}.${frame[29]}`);
    const destination = ipv4(`${frame[30]}.${frame[31]}.${frame[32]}.${frame[33]}`);
    let ok = true;
    for (let at = headers, i = 0; at < frame.length; at += offload.segmentSize, i++) {
      const end = Math.min(frame.length, at + offload.segmentSize);
      const piece = new Uint8Array(headers + end - at);
      piece.set(frame.subarray(0, headers));
      piece.set(frame.subarray(at, end), headers);
      const view = new DataView(piece.buffer);
      view.setUint16(16, piece.length - 14); // IPv4 total length
      view.setUint16(18, (view.getUint16(18) + i) & 0xffff); // identification
      view.setUint16(24, 0);
      view.setUint16(24, internetChecksum(piece.subarray(14, 34)));
      view.setUint32(tcpAt + 4, (seq + (at - headers)) >>> 0);
      piece[tcpAt + 13] = end === frame.length ? flags : flags & ~(TcpFlag.FIN | TcpFlag.PSH);
      view.setUint16(tcpAt + 16, 0);
      view.setUint16(tcpAt + 16, tcpChecksum(piece.subarray(tcpAt), source, destination));
      ok = this.inner.send(piece) && ok;
    }
    return ok;
  }
}

function host(link: Link, cidr: string, clock: VirtualClock, seed: number) {
  const address = Ipv4Cidr.parse(cidr);
  const random = seededRandom(seed);
  const dispatcher = new EtherTypeDispatcher(link);
  const arp = new Arp({ dispatcher, clock, addresses: [address.address], random, announce: false, broadcasts: [address.broadcast] });
  // The wire carries 64 KB frames; the hosts' own MTU stays Ethernet's.
  const ip = new Ipv4Layer({ dispatcher, resolver: arp, clock, address, random, mtu: 1500 });
  const icmp = new IcmpLayer({ ipv4: ip, clock });
  const tcp = new TcpLayer({ ipv4: ip, icmp, clock, random, secret: new Uint8Array(32).fill(seed) });
  return { ip, tcp };
}

describe('TCP super-frames (GSO) on a link that segments', () => {
  it('sends whole MSS multiples of up to 64 KB, leaves the checksum to the link, and the peer takes them intact', async () => {
    const clock = new VirtualClock();
    const [wireA, wireB] = MemoryLink.pair({ clock, latencyMs: 1, mtu: 65535, macs: [MacAddress.parse('02:00:00:00:0a:01'), MacAddress.parse('02:00:00:00:0b:02')] });
    const linkA = new SegmentingLink(wireA);
    const a = host(linkA, '10.0.0.1/24', clock, 1);
    const b = host(wireB, '10.0.0.2/24', clock, 2);
    const data = pattern(2 * 1024 * 1024, 7);
    let received: ReturnType<typeof collect> | undefined;
    b.tcp.createServer((socket) => (received = collect(socket))).listen(9);
    const client = a.tcp.connect({ host: ipv4('10.0.0.2'), port: 9 });
    client.end(Buffer.from(data));
    await runUntil(clock, () => received?.ended === true, 120_000);
    expect(sha256(received!.bytes())).toBe(sha256(data));

    const gso = linkA.offloads.filter((o) => o.gso === 'tcpv4');
    expect(gso.length).toBeGreaterThan(0);
    for (const o of gso) {
      // 1448 data bytes per segment: MSS 1460 less the 12 bytes of the timestamps option
      expect(o).toMatchObject({ checksum: 'partial', checksumStart: 34, checksumOffset: 16, segmentSize: 1448, headerLength: 14 + 20 + 32 });
    }
    // Whole segments (only the stream's last piece may end short), never past 64 KB, and the
    // window lets them grow to the largest: 45 segments of 1448 under 65535 - 80 bytes.
    const lengths = linkA.dataLengths;
    for (const n of lengths.slice(0, -1)) expect(n % 1448).toBe(0);
    expect(Math.max(...lengths)).toBe(45 * 1448);
    // TSO deferral: once the window is past one full super-frame, a short one waits for the ACK
    // that makes room rather than going out with a few segments (without it: 85 super-frames
    // here, many of 2 to 8 segments; with it 41, none under 20 after the first full one).
    const afterFull = lengths.slice(lengths.indexOf(45 * 1448), -1);
    expect(afterFull.filter((n) => n < 20 * 1448)).toEqual([]);
    expect(lengths.length).toBeLessThan(50);
    // A counts each super-frame as the segments it stands for; B, a plain stack, took each
    // whole (its frames were past its MTU) and found every checksum good.
    expect(a.tcp.counters.get('OutSegs')).toBeGreaterThanOrEqual(Math.ceil(data.length / 1448));
    expect(b.tcp.counters.get('InSegs')).toBeLessThan(Math.ceil(data.length / 1448));
    expect(b.tcp.counters.get('InCsumErrors')).toBe(0);
  });
});

describe('TCP super-frames under loss', () => {
  it('a lost super-frame is recovered (SACK records per segment, retransmissions one MSS each) and the bytes arrive whole', async () => {
    const clock = new VirtualClock();
    const [wireA, wireB] = MemoryLink.pair({ clock, latencyMs: 1, mtu: 65535, macs: [MacAddress.parse('02:00:00:00:0a:01'), MacAddress.parse('02:00:00:00:0b:02')] });
    const faults = new FaultInjector(wireA, { drop: 0.1, direction: 'tx', seed: 5 });
    const linkA = new SegmentingLink(faults);
    const a = host(linkA, '10.0.0.1/24', clock, 1);
    const b = host(wireB, '10.0.0.2/24', clock, 2);
    const data = pattern(1024 * 1024, 9);
    let received: ReturnType<typeof collect> | undefined;
    b.tcp.createServer((socket) => (received = collect(socket))).listen(9);
    a.tcp.connect({ host: ipv4('10.0.0.2'), port: 9 }).end(Buffer.from(data));
    await runUntil(clock, () => received?.ended === true, 600_000);
    expect(sha256(received!.bytes())).toBe(sha256(data));
    expect(faults.faultCounters.get('dropped')).toBeGreaterThan(0);
    expect(linkA.dataLengths.some((n) => n > 1448)).toBe(true);
    expect(a.tcp.counters.get('RetransSegs')).toBeGreaterThan(0);
  });
});

describe('TCP super-frames cut into segments, then lost one by one, over seeds', () => {
  // A super-frame is kept as two scoreboard records and cut where SACK blocks cover part of it:
  // recovery must still find every lost segment, whatever is lost (data one way, ACKs the other).
  it.each([11, 12, 13, 14, 15, 16])('seed %i: 1%% loss each way, 1 MiB arrive whole, with SACK blocks cutting records', async (seed) => {
    const clock = new VirtualClock();
    const [wireA, wireB] = MemoryLink.pair({ clock, latencyMs: 1, macs: [MacAddress.parse('02:00:00:00:0a:01'), MacAddress.parse('02:00:00:00:0b:02')] });
    const faults = new FaultInjector(wireA, { drop: 0.01, direction: 'both', seed });
    const linkA = new CuttingLink(faults);
    const a = host(linkA, '10.0.0.1/24', clock, 1);
    const b = host(wireB, '10.0.0.2/24', clock, 2);
    const data = pattern(1024 * 1024, seed);
    let received: ReturnType<typeof collect> | undefined;
    b.tcp.createServer((socket) => (received = collect(socket))).listen(9);
    a.tcp.connect({ host: ipv4('10.0.0.2'), port: 9 }).end(Buffer.from(data));
    await runUntil(clock, () => received?.ended === true, 600_000);
    expect(sha256(received!.bytes())).toBe(sha256(data));
    expect(linkA.superFrames).toBeGreaterThan(0);
    expect(faults.faultCounters.get('dropped')).toBeGreaterThan(0);
    expect(b.tcp.counters.get('InCsumErrors')).toBe(0);
  });
});

describe('TCP receive with offloads (what a TAP device in header mode hands up)', () => {
  // A SYN from 10.0.0.1:40000 to our listener on port 9, whose checksum field holds only the
  // pseudo-header sum, as the kernel leaves it with NEEDS_CSUM.
  function partialSyn(): Uint8Array {
    const repr = { sourcePort: 40000, destinationPort: 9, seq: 1000, ack: 0, flags: TcpFlag.SYN, window: 65535, urgentPointer: 0, options: { mss: 1460 } };
    const length = TcpRepr.bufferLength(repr, 0);
    const ip = { source: ipv4('10.0.0.1'), destination: ipv4('10.0.0.2'), protocol: 6, ttl: 64, identification: 1, dscp: 0, ecn: 0, dontFragment: true, moreFragments: false, fragmentOffset: 0, options: new Uint8Array(0), payloadLength: length };
    const frame = new Uint8Array(14 + 20 + length);
    MacAddress.parse('02:00:00:00:0b:02').writeTo(frame, 0);
    MacAddress.parse('02:00:00:00:0a:01').writeTo(frame, 6);
    frame[12] = 0x08;
    Ipv4Repr.emit(ip, frame, 14);
    TcpRepr.emit(repr, new Uint8Array(0), frame, ip.source, ip.destination, 34, true);
    return frame;
  }
  const PARTIAL: FrameOffload = { checksum: 'partial', checksumStart: 34, checksumOffset: 16, gso: 'none', segmentSize: 0, headerLength: 0 };

  function listener() {
    const clock = new VirtualClock();
    const [wire] = MemoryLink.pair({ clock, macs: [MacAddress.parse('02:00:00:00:0b:02'), MacAddress.parse('02:00:00:00:0a:01')] });
    const dispatcher = new EtherTypeDispatcher(wire);
    const address = Ipv4Cidr.parse('10.0.0.2/24');
    const arp = new Arp({ dispatcher, clock, addresses: [address.address], random: () => 0.5, announce: false });
    const ip = new Ipv4Layer({ dispatcher, resolver: arp, clock, address, random: () => 0.5 });
    const tcp = new TcpLayer({ ipv4: ip, clock, secret: new Uint8Array(32) });
    tcp.createServer().listen(9);
    return { dispatcher, tcp };
  }

  it('takes a segment whose checksum the kernel left partial, without summing it', () => {
    const { dispatcher, tcp } = listener();
    dispatcher.input(partialSyn(), PARTIAL);
    expect(tcp.counters.get('InCsumErrors')).toBe(0);
    expect(tcp.connectionCount).toBe(1); // SYN-RECEIVED
  });

  it('checks it when nothing vouches for it, or when the offload names another field: a partial checksum then fails', () => {
    const { dispatcher, tcp } = listener();
    dispatcher.input(partialSyn());
    dispatcher.input(partialSyn(), { ...PARTIAL, checksum: 'unverified' });
    dispatcher.input(partialSyn(), { ...PARTIAL, checksumOffset: 6 });
    expect(tcp.counters.get('InCsumErrors')).toBe(3);
    expect(tcp.connectionCount).toBe(0);
  });
});
