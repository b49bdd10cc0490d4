/**
 * TCP over IPv6 between two whole stacks (createStack) on an in-memory wire with a virtual clock:
 * one `::` listener for both families, address-specific and IPv4-only listeners, connects to the
 * global and the link-local address (RFC 6724 source choice), the RST and SYN cookies over IPv6,
 * Packet Too Big lowering the MSS (RFC 8201), the ss-style listing, and bulk transfers under loss
 * checked by hash.
 */
import { describe, expect, it } from 'vitest';
import { Icmpv6Repr, quoteInvokingPacket } from '@tapstack/icmpv6';
import { finishChecksum } from '@tapstack/ipv4';
import { ipv6PseudoHeaderSum, Ipv6Repr, upperLayerMessage } from '@tapstack/ipv6';
import { checksumAdd, foldChecksum } from '@tapstack/ipv4';
import { EtherType, FaultInjector, Ipv6Address, LinkWrapper, MacAddress, MemoryLink, VirtualClock, buildEthernetFrame, ipv6, seededRandom, type FrameOffload, type Link } from '@tapstack/link';
import { readFileSync } from 'node:fs';
import { readPcap } from '@tapstack/link';
import { tcpChecksum, TcpRepr, TcpFlag, type TcpSocket } from '@tapstack/tcp';
import { createStack, type Stack } from '@tapstack/stack';
import { collect, pattern, runUntil, sha256 } from '../../tcp/test/support.ts';
import { tcpEcho } from '../src/services.ts';

const MAC_A = MacAddress.parse('02:00:00:00:00:01');
const MAC_B = MacAddress.parse('02:00:00:00:00:02');
const A6 = ipv6('fd00:10::1');
const B6 = ipv6('fd00:10::2');
const B_LINK_LOCAL = Ipv6Address.linkLocalFromMac(MAC_B);
const A_LINK_LOCAL = Ipv6Address.linkLocalFromMac(MAC_A);

interface Pair {
  clock: VirtualClock;
  a: Stack;
  b: Stack;
  /** Puts a raw frame on B's side of the wire, for A to receive. */
  toA: (frame: Uint8Array) => void;
  close(): void;
}

/** Two stacks, DAD done; `drop` is the loss on A's link both ways (seeded). */
function pair(options: { drop?: number; seed?: number; tcp?: Parameters<typeof createStack>[0]['tcp'] } = {}): Pair {
  const clock = new VirtualClock();
  const [la, lb]: Link[] = MemoryLink.pair({ clock, latencyMs: 1, macs: [MAC_A, MAC_B] });
  const linkA = options.drop ? new FaultInjector(la!, { drop: options.drop, seed: options.seed ?? 1 }) : la!;
  const seed = options.seed ?? 1;
  const a = createStack({ link: linkA, ip: '10.0.0.1/24', clock, random: seededRandom(seed), ipv6: { addresses: ['fd00:10::1/64'] }, ...(options.tcp ? { tcp: options.tcp } : {}) });
  const b = createStack({ link: lb!, ip: '10.0.0.2/24', clock, random: seededRandom(seed + 1000), ipv6: { addresses: ['fd00:10::2/64'] }, ...(options.tcp ? { tcp: options.tcp } : {}) });
  a.start();
  b.start();
  // DAD: the addresses are tentative for a second or so (RFC 4862 5.4); loss may take a probe
  clock.advance(5000);
  return {
    clock,
    a,
    b,
    toA: (frame) => void lb!.send(frame),
    close() {
      a.close();
      b.close();
    },
  };
}

/** Connects, writes `text`, half-closes, and resolves with what came back and the socket. */
async function echoOnce(p: Pair, host: string, port: number, text: string): Promise<{ got: string; socket: TcpSocket }> {
  const socket = p.a.tcp.connect({ host, port });
  const got = collect(socket);
  socket.end(text);
  await runUntil(p.clock, () => got.ended || got.error !== undefined, 30_000);
  if (got.error) throw got.error;
  return { got: got.bytes().toString(), socket };
}

describe('TCP over IPv6 between two stacks', () => {
  it('listen(7) is `::`: IPv6 and IPv4 clients both get their echo; ss-style lines name the IPv6 tuple in RFC 5952 text', async () => {
    const p = pair();
    const server = tcpEcho(p.b.tcp, 7);
    expect(server.address()).toEqual({ address: '::', family: 'IPv6', port: 7 });
    expect(p.b.tcp.show()).toMatch(/LISTEN\s+0\s+511\s+\*:7\s+\*:\*/);
    const socket = p.a.tcp.connect({ host: 'fd00:10::2', port: 7 });
    const got = collect(socket);
    socket.write('over six');
    await runUntil(p.clock, () => got.bytes().length === 8);
    expect([socket.remoteAddress, socket.remoteFamily, socket.localAddress, socket.address()]).toEqual(['fd00:10::2', 'IPv6', 'fd00:10::1', { address: 'fd00:10::1', family: 'IPv6', port: socket.localPort }]);
    expect(p.a.tcp.show()).toMatch(new RegExp(`ESTABLISHED\\s+0\\s+0\\s+\\[fd00:10::1\\]:${socket.localPort}\\s+\\[fd00:10::2\\]:7 `));
    // MSS: 1500 - 60 announced, less the 12 bytes of timestamps per segment
    expect(p.a.tcp.connectionInfo()[0]!.mss).toBe(1428);
    socket.end();
    await runUntil(p.clock, () => got.ended);
    expect(got.bytes().toString()).toBe('over six');
    expect((await echoOnce(p, '10.0.0.2', 7, 'over four')).got).toBe('over four');
    expect(p.b.tcp.counters.get('PassiveOpens')).toBe(2);
    expect(p.b.tcp.counters.get('Tcp6InSegs')).toBeGreaterThan(3);
    expect(p.b.tcp.counters.get('InCsumErrors')).toBe(0);
    p.close();
  });

  it("a connect to B's link-local address goes from A's link-local address (RFC 6724 rule 2: matching scope)", async () => {
    const p = pair();
    tcpEcho(p.b.tcp, 7);
    const { got, socket } = await echoOnce(p, `${B_LINK_LOCAL.toString()}%tap0`, 7, 'hello, link-local');
    expect(got).toBe('hello, link-local');
    expect(socket.localAddress).toBe(A_LINK_LOCAL.toString());
    expect(socket.remoteAddress).toBe(B_LINK_LOCAL.toString());
    p.close();
  });

  it('a listener on one IPv6 address takes only that address; one on 0.0.0.0 only IPv4; the rest are refused by RST', async () => {
    const p = pair();
    tcpEcho(p.b.tcp, 7).close();
    const six = p.b.tcp.createServer((s) => s.pipe(s)).listen(8, 'fd00:10::2');
    const four = p.b.tcp.createServer((s) => s.pipe(s)).listen(9, '0.0.0.0');
    expect(six.address()).toEqual({ address: 'fd00:10::2', family: 'IPv6', port: 8 });
    expect(four.address()).toEqual({ address: '0.0.0.0', family: 'IPv4', port: 9 });
    expect((await echoOnce(p, 'fd00:10::2', 8, 'six')).got).toBe('six');
    expect((await echoOnce(p, '10.0.0.2', 9, 'four')).got).toBe('four');
    for (const [host, port] of [['10.0.0.2', 8], [`${B_LINK_LOCAL.toString()}`, 8], ['fd00:10::2', 9], ['fd00:10::2', 7]] as const) {
      await expect(echoOnce(p, host, port, 'x'), `${host} ${port}`).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    }
    expect(p.b.tcp.counters.get('OutRsts')).toBe(4);
    // an address the stack does not have cannot be listened on
    expect(() => p.b.tcp.createServer().listen(10, 'fd00:10::99')).toThrow(expect.objectContaining({ code: 'EADDRNOTAVAIL' }));
    // IPv6 without IPv6: a stack made with ipv6: false refuses at once
    const clock = new VirtualClock();
    const [l] = MemoryLink.pair({ clock, macs: [MAC_A, MAC_B] });
    const v4only = createStack({ link: l!, ip: '10.0.0.1/24', clock, ipv6: false });
    expect(v4only.tcp.createServer().listen(7).address()).toEqual({ address: '0.0.0.0', family: 'IPv4', port: 7 });
    expect(() => v4only.tcp.connect({ host: 'fd00:10::2', port: 7 })).toThrow(expect.objectContaining({ code: 'EADDRNOTAVAIL' }));
    v4only.close();
    p.close();
  });

  it('SYN cookies over IPv6: with the SYN queue full the handshake still completes, from the cookie', async () => {
    const p = pair({ tcp: { synBacklog: 1 } });
    tcpEcho(p.b.tcp, 7);
    const results = await Promise.all(['one', 'two', 'three'].map((t) => echoOnce(p, 'fd00:10::2', 7, t)));
    expect(results.map((r) => r.got)).toEqual(['one', 'two', 'three']);
    expect(p.b.tcp.counters.get('SyncookiesSent')).toBeGreaterThanOrEqual(1);
    expect(p.b.tcp.counters.get('SyncookiesRecv')).toBe(p.b.tcp.counters.get('SyncookiesSent'));
    expect(p.b.tcp.counters.get('SyncookiesFailed')).toBe(0);
    p.close();
  });

  it('an ICMPv6 Packet Too Big (MTU 1280) about a segment of ours lowers the MSS to 1280 - 60 - 12 (RFC 8201)', async () => {
    const p = pair();
    let serverSocket: TcpSocket | undefined;
    p.b.tcp.createServer((s) => (serverSocket = s)).listen(80);
    const client = p.a.tcp.connect({ host: 'fd00:10::2', port: 80 });
    client.on('error', () => {}); // ECONNABORTED when the stacks close at the end
    await runUntil(p.clock, () => serverSocket !== undefined);
    expect(p.a.tcp.connectionInfo()[0]!.mss).toBe(1428);
    // the packet a router between us could not forward: one of our segments, as the error quotes it
    const segment = new Uint8Array(1400);
    TcpRepr.emit({ sourcePort: client.localPort!, destinationPort: 80, seq: 1, ack: 1, flags: TcpFlag.ACK, window: 100, urgentPointer: 0, options: {} }, new Uint8Array(1380), segment, A6, B6);
    const invoking = Ipv6Repr.build({ source: A6, destination: B6, nextHeader: 6, hopLimit: 64, trafficClass: 0, flowLabel: 0 }, segment);
    const router = ipv6('fd00:10::fe');
    const icmp = Icmpv6Repr.build({ kind: 'packet-too-big', mtu: 1280, invoking: quoteInvokingPacket(invoking) }, router, A6);
    p.toA(buildEthernetFrame({ destination: MAC_A, source: MAC_B, etherType: EtherType.IPV6 }, Ipv6Repr.build({ source: router, destination: A6, nextHeader: 58, hopLimit: 64, trafficClass: 0, flowLabel: 0 }, icmp)));
    p.clock.advance(5);
    expect(p.a.tcp.counters.get('rx_icmp_errors')).toBe(1);
    expect(p.a.tcp.connectionInfo()[0]!.mss).toBe(1280 - 60 - 12);
    expect(p.a.ipv6!.pathMtu(B6)).toBe(1280);
    // what goes out now fits 1280: 8 KiB arrives whole, in segments of 1208 bytes
    const got = collect(serverSocket!);
    client.write(pattern(8192, 3));
    await runUntil(p.clock, () => got.bytes().length === 8192);
    expect(sha256(got.bytes())).toBe(sha256(pattern(8192, 3)));
    expect(p.a.ipv6!.counters.get('Ip6FragOKs')).toBe(0);
    p.close();
  });
});

/**
 * A's side of a TAP device in virtio-net header mode, simulated: an Ethernet MTU for A's own
 * IPv6, super-frames of up to 64 KB taken, and each partial checksum finished (what tun does for
 * the kernel's own receiver) before the frame crosses a wire wide enough for it.
 */
class SegmentingLink extends LinkWrapper {
  readonly superFrames: FrameOffload[] = [];
  /** Length of each super-frame as it leaves A (Ethernet header included). */
  readonly superFrameLengths: number[] = [];
  /** When set, each received frame it returns true for is dropped (a hole that never fills). */
  dropReceived: ((frame: Uint8Array) => boolean) | undefined;

  constructor(inner: Link, private readonly ethernetMtu = 1500) {
    super(inner);
  }
  override get mtu(): number {
    return this.ethernetMtu;
  }
  override get gsoMaxSize(): number {
    return 65535;
  }
  override send(frame: Uint8Array, offload?: FrameOffload): boolean {
    if (offload) {
      if (offload.gso !== 'none') {
        this.superFrames.push(offload);
        this.superFrameLengths.push(frame.length);
      }
      if (offload.checksum === 'partial') finishChecksum(frame, offload, frame.length);
    }
    return this.inner.send(frame);
  }
  protected override receive(frames: readonly Uint8Array[], offloads?: readonly (FrameOffload | undefined)[]): void {
    const drop = this.dropReceived;
    if (drop === undefined) return this.deliverUp(frames, offloads);
    const kept = frames.filter((f) => !drop(f));
    this.deliverUp(kept, offloads === undefined ? undefined : offloads.filter((_, i) => !drop(frames[i]!)));
  }
}

/** Stacks A (fd00:10::1, on a SegmentingLink) and B (fd00:10::2) on a 64 KB wire, their addresses through DAD. */
function segmentingPair(ethernetMtu = 1500): { clock: VirtualClock; linkA: SegmentingLink; a: Stack; b: Stack } {
  const clock = new VirtualClock();
  const [wireA, wireB] = MemoryLink.pair({ clock, latencyMs: 1, mtu: 65535, macs: [MAC_A, MAC_B] });
  const linkA = new SegmentingLink(wireA!, ethernetMtu);
  const a = createStack({ link: linkA, ip: '10.0.0.1/24', clock, random: seededRandom(1), ipv6: { addresses: ['fd00:10::1/64'] } });
  const b = createStack({ link: wireB!, ip: '10.0.0.2/24', clock, random: seededRandom(2), ipv6: { addresses: ['fd00:10::2/64'] } });
  a.start();
  b.start();
  clock.advance(5000);
  return { clock, linkA, a, b };
}

describe('TCP over IPv6 with TSO6 (a link that segments)', () => {
  it('sends whole-MSS super-frames of up to 64 KB (GSO_TCPV6), the checksum left to the link; 2 MiB arrive intact', async () => {
    const { clock, linkA, a, b } = segmentingPair();
    const data = pattern(2 * 1024 * 1024, 9);
    let received: ReturnType<typeof collect> | undefined;
    b.tcp.createServer((socket) => (received = collect(socket))).listen(9);
    const client = a.tcp.connect({ host: B6, port: 9 });
    client.on('error', () => {}); // ECONNABORTED in TIME-WAIT when the stacks close at the end
    client.end(Buffer.from(data));
    await runUntil(clock, () => received?.ended === true, 120_000);
    expect(sha256(received!.bytes())).toBe(sha256(data));
    const supers = linkA.superFrames;
    expect(supers.length).toBeGreaterThan(5);
    // every one: TCPV6, the checksum from byte 54 (14 + 40), segments of the connection's MSS
    for (const o of supers) expect([o.gso, o.checksum, o.checksumStart, o.checksumOffset, o.segmentSize]).toEqual(['tcpv6', 'partial', 54, 16, 1428]);
    expect(Math.max(...supers.map((o) => o.headerLength))).toBe(14 + 40 + 32);
    expect(a.tcp.counters.get('Tcp6OutSegs')).toBeGreaterThan(2 * 1024 * 1024 / 1428);
    expect(b.tcp.counters.get('InCsumErrors')).toBe(0);
    expect(a.ipv6!.counters.get('Ip6FragOKs')).toBe(0);
    a.close();
    b.close();
  });

  it('sizes super-frames for the 40-byte IPv6 header: none exceeds 64 KB even with a SACK block in a 44-byte TCP header', async () => {
    // MTU 1319: MSS 1259, 1247 data bytes with timestamps, 1235 beside a one-block SACK option
    // (12 bytes). 53 segments of 1235 are 65,455 bytes: the most under IPv4's 20-byte header and
    // a 60-byte TCP header, but 40 + 44 + 65,455 = 65,539 is over IPv6's 65,535 (RFC 8200 3).
    const { clock, linkA, a, b } = segmentingPair(1319);
    // B sends A 3,000 bytes; its first segment is dropped every time it comes, so A holds the
    // rest out of order and every segment A sends carries a SACK block for it (RFC 2018 4).
    let hole: number | undefined;
    linkA.dropReceived = (frame) => {
      if (frame.length <= 14 + 40 + 20 || frame[12] !== 0x86 || frame[13] !== 0xdd || frame[20] !== 6) return false;
      const tcpAt = 14 + 40;
      const payload = frame.length - tcpAt - (frame[tcpAt + 12]! >>> 4) * 4;
      if (payload === 0) return false;
      const seq = new DataView(frame.buffer, frame.byteOffset).getUint32(tcpAt + 4);
      hole ??= seq;
      return seq === hole;
    };
    const data = pattern(2 * 1024 * 1024, 11);
    let received: ReturnType<typeof collect> | undefined;
    b.tcp.createServer((socket) => {
      received = collect(socket);
      socket.write(Buffer.from(pattern(3000, 4)));
    }).listen(9);
    const client = a.tcp.connect({ host: B6, port: 9 });
    client.on('error', () => {});
    await runUntil(clock, () => hole !== undefined, 5_000);
    clock.advance(20);
    client.end(Buffer.from(data));
    await runUntil(clock, () => received?.ended === true, 120_000);
    expect(sha256(received!.bytes())).toBe(sha256(data));
    expect(linkA.superFrames.length).toBeGreaterThan(5);
    // the SACK block was there: some super-frames carried a 44-byte TCP header
    expect(Math.max(...linkA.superFrames.map((o) => o.headerLength))).toBe(14 + 40 + 44);
    expect(linkA.superFrames.every((o) => o.segmentSize === 1235 || o.segmentSize === 1247)).toBe(true);
    expect(Math.max(...linkA.superFrameLengths)).toBeLessThanOrEqual(14 + 65535);
    // nothing fell back to fragments, as the too-long super-frames did before
    expect(a.ipv6!.counters.get('Ip6FragOKs')).toBe(0);
    a.close();
    b.close();
  });
});

describe("IPv6's send with a transport's offload", () => {
  /** A payload whose 16-bit field at 16 holds the pseudo-header's folded sum, as TCP leaves it for the device. */
  function partial(length: number, source: Ipv6Address, destination: Ipv6Address): Uint8Array {
    const p = pattern(length, 5);
    p[16] = 0;
    p[17] = 0;
    const sum = foldChecksum(ipv6PseudoHeaderSum(source, destination, 253, length));
    p[16] = sum >>> 8;
    p[17] = sum & 0xff;
    return p;
  }
  const complete = (p: Uint8Array, source: Ipv6Address, destination: Ipv6Address): boolean =>
    (~foldChecksum(checksumAdd(p, ipv6PseudoHeaderSum(source, destination, 253, p.length))) & 0xffff) === 0;

  it('over the super-frame limit: fragments, the checksum finished first; within it: one tcpv6 super-frame', async () => {
    const { clock, linkA, a, b } = segmentingPair();
    const got: Uint8Array[] = [];
    b.ipv6!.register(253, (packet, info) => got.push(upperLayerMessage(packet, info).slice()));
    const offload = { checksumOffset: 16, segmentSize: 1428, transportHeaderLength: 20 };
    // NDP first (a super-frame is not queued while a neighbour resolves, as with ARP)
    a.ipv6!.send({ destination: B6, source: A6, nextHeader: 253, payload: partial(100, A6, B6) });
    clock.advance(50);
    got.length = 0;
    // 40 + 65500 > 65535: no super-frame; IPv6 fragments it (MTU 1500) after finishing the checksum
    expect(a.ipv6!.send({ destination: B6, source: A6, nextHeader: 253, payload: partial(65500, A6, B6), offload })).toBe('sent');
    // within the limit: one super-frame, the checksum left to the link (which finishes it here)
    expect(a.ipv6!.send({ destination: B6, source: A6, nextHeader: 253, payload: partial(30000, A6, B6), offload })).toBe('sent');
    clock.advance(10);
    expect(got.map((p) => p.length)).toEqual([65500, 30000]);
    for (const p of got) expect(complete(p, A6, B6)).toBe(true);
    expect(a.ipv6!.counters.get('Ip6FragOKs')).toBe(1);
    expect(linkA.superFrames.map((o) => o.gso)).toEqual(['tcpv6']);
    a.close();
    b.close();
  });
});

describe('hostile TCP over IPv6', () => {
  it("mutated Linux TCP/IPv6 frames (checksums wrong, and made right again) and a SYN flood from 3,000 sources: no exception, bounded state, nothing left", () => {
    const clock = new VirtualClock();
    const [attacker, ours] = MemoryLink.pair({ macs: [MAC_A, MAC_B], clock, latencyMs: 0 });
    const stack = createStack({ link: ours!, ip: '10.0.0.2/24', clock, random: seededRandom(4), ipv6: { addresses: ['fd00:10::2/64'] } });
    tcpEcho(stack.tcp, 7);
    stack.start();
    attacker!.setReceiver(() => {});
    clock.advance(5000);
    // the kernel's side of a Linux echo session (fixtures/capture-tcp6.sh): fd00:10::1 to fd00:10::2, port 7
    const bytes = readFileSync(new URL('../../tcp/test/fixtures/linux-tcp6-echo.pcap', import.meta.url));
    const originals = readPcap(bytes).map((r) => r.frame).filter((f) => f[14 + 8 + 15] === 1);
    expect(originals.length).toBe(6);
    const r = seededRandom(0x7c6);
    let fixed = 0;
    for (let round = 0; round < 300; round++) {
      const batch: Uint8Array[] = [];
      for (let i = 0; i < 32; i++) {
        const frame = new Uint8Array(originals[Math.floor(r() * originals.length)]!);
        frame.set(MAC_B.bytes, 0);
        for (let flips = 1 + Math.floor(r() * 4); flips > 0; flips--) frame[54 + Math.floor(r() * (frame.length - 54))]! ^= 1 << Math.floor(r() * 8);
        if (r() < 0.2) frame[14 + 40 + 12] = Math.floor(r() * 256); // any data offset
        let out = frame;
        if (r() < 0.2) out = frame.subarray(0, 54 + Math.floor(r() * (frame.length - 54)));
        if (r() < 0.5 && out.length >= 54 + 20) {
          // right checksum over the mutation: it reaches the demux, the listener, the RST code
          out[54 + 16] = 0;
          out[54 + 17] = 0;
          const tcp = out.subarray(54);
          out[4 + 14] = tcp.length >>> 8; // IPv6 payload length follows a cut
          out[5 + 14] = tcp.length & 0xff;
          const sum = tcpChecksum(tcp, A6, B6);
          out[54 + 16] = sum >>> 8;
          out[54 + 17] = sum & 0xff;
          fixed++;
        }
        batch.push(out);
      }
      for (const f of batch) attacker!.send(f);
      clock.advance(20);
    }
    expect(fixed).toBeGreaterThan(3000);
    // a SYN flood from forged sources in the prefix: SYN cookies past the backlog
    for (let i = 0; i < 3000; i++) {
      const source = ipv6(`fd00:10::${(0x1000 + i).toString(16)}`);
      const syn = new Uint8Array(24);
      TcpRepr.emit({ sourcePort: 40000 + (i % 1000), destinationPort: 7, seq: i * 7919, ack: 0, flags: TcpFlag.SYN, window: 64800, urgentPointer: 0, options: { mss: 1440 } }, new Uint8Array(0), syn, source, B6);
      attacker!.send(buildEthernetFrame({ destination: MAC_B, source: MAC_A, etherType: EtherType.IPV6 }, Ipv6Repr.build({ source, destination: B6, nextHeader: 6, hopLimit: 64, trafficClass: 0, flowLabel: 0 }, syn)));
      if (i % 100 === 0) clock.advance(1);
    }
    clock.advance(10);
    const c = stack.tcp.counters;
    expect(stack.dispatcher.counters.get('rx_handler_error')).toBe(0);
    expect(stack.ipv6!.counters.get('rx_handler_error')).toBe(0);
    expect(c.get('Tcp6InCsumErrors')).toBeGreaterThan(1000);
    expect(c.get('SyncookiesSent')).toBeGreaterThan(2000);
    // half-open connections stay at the backlog (256), whatever arrived
    expect(stack.tcp.connectionCount).toBeLessThanOrEqual(256 + 10);
    // SYN-ACK retries run out (5, about 63 s), every connection is gone, and the NDP table is bounded
    clock.advance(300_000);
    expect(stack.tcp.connectionCount).toBe(0);
    expect(stack.ndp!.table.size).toBeLessThanOrEqual(1024);
    stack.close();
  });
});

describe('TCP over IPv6 under loss', () => {
  const seeds = Array.from({ length: Number(process.env.TCP6_SIM_SEEDS ?? 8) }, (_, i) => i + 1);
  it(`2% loss both ways: 512 KiB each way over IPv6 arrives whole, ${seeds.length} seeds`, async () => {
    for (const seed of seeds) {
      const p = pair({ drop: 0.02, seed });
      const up = pattern(512 * 1024, seed);
      const down = pattern(512 * 1024, seed + 1000);
      let serverGot: ReturnType<typeof collect> | undefined;
      p.b.tcp
        .createServer((socket) => {
          serverGot = collect(socket);
          socket.end(down);
        })
        .listen(9);
      const client = p.a.tcp.connect({ host: B6, port: 9 });
      const clientGot = collect(client);
      client.end(up);
      await runUntil(p.clock, () => (clientGot.ended && serverGot?.ended === true) || clientGot.error !== undefined, 1_800_000, 10);
      expect(clientGot.error, `seed ${seed}`).toBeUndefined();
      expect(sha256(clientGot.bytes()), `seed ${seed}: down`).toBe(sha256(down));
      expect(sha256(serverGot!.bytes()), `seed ${seed}: up`).toBe(sha256(up));
      expect(p.a.tcp.counters.get('RetransSegs'), `seed ${seed}`).toBeGreaterThan(0);
      expect(p.a.tcp.counters.get('Tcp6InSegs')).toBe(p.a.tcp.counters.get('InSegs'));
      p.close();
    }
  }, 120_000);
});
