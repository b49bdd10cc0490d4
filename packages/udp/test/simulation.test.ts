/**
 * Two hosts on an in-memory wire with a virtual clock, each the real thing: EtherType dispatch,
 * ARP, IPv4, ICMP and UDP. No root needed; every run is deterministic.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Arp } from '@tapstack/arp';
import { IcmpLayer, type IcmpErrorReport } from '@tapstack/icmp';
import { Ipv4Cidr, Ipv4Layer, Ipv4Repr } from '@tapstack/ipv4';
import {
  EtherTypeDispatcher,
  FaultInjector,
  MacAddress,
  MemoryLink,
  VirtualClock,
  formatIpv4,
  ipv4,
  seededRandom,
  type Link,
} from '@tapstack/link';
import {
  buildUdpDatagram,
  formatUdpAddress,
  UdpLayer,
  UdpSocketError,
  type UdpDatagram,
  type UdpIcmpError,
  type UdpSocket,
} from '../src/index.ts';

interface Host {
  link: Link;
  dispatcher: EtherTypeDispatcher;
  arp: Arp;
  ipv4: Ipv4Layer;
  icmp: IcmpLayer;
  udp: UdpLayer;
  close(): void;
}

function host(link: Link, cidr: string, clock: VirtualClock, seed: number): Host {
  const address = Ipv4Cidr.parse(cidr);
  const random = seededRandom(seed);
  const dispatcher = new EtherTypeDispatcher(link);
  const arp = new Arp({ dispatcher, clock, addresses: [address.address], random, announce: false, broadcasts: [address.broadcast] });
  const ip = new Ipv4Layer({ dispatcher, resolver: arp, clock, address, random });
  const icmp = new IcmpLayer({ ipv4: ip, clock });
  const udp = new UdpLayer({ ipv4: ip, icmp, random });
  return {
    link,
    dispatcher,
    arp,
    ipv4: ip,
    icmp,
    udp,
    close() {
      udp.close();
      icmp.close?.();
      ip.close();
      arp.close();
      link.close();
    },
  };
}

const MAC_A = MacAddress.parse('02:00:00:00:0a:01');
const MAC_B = MacAddress.parse('02:00:00:00:0b:02');
const IP_A = ipv4('10.0.0.1');
const IP_B = ipv4('10.0.0.2');

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

function pair(faults?: { drop?: number; seed?: number }): { clock: VirtualClock; a: Host; b: Host; wireA: MemoryLink; wireB: MemoryLink } {
  const clock = new VirtualClock();
  const [wireA, wireB] = MemoryLink.pair({ clock, latencyMs: 1, macs: [MAC_A, MAC_B] });
  const linkA: Link = faults ? new FaultInjector(wireA, { ...faults, direction: 'tx' }) : wireA;
  const a = host(linkA, '10.0.0.1/24', clock, 1);
  const b = host(wireB, '10.0.0.2/24', clock, 2);
  cleanup.push(() => a.close(), () => b.close());
  return { clock, a, b, wireA, wireB };
}

/** Lets the virtual wire and the microtasks run until nothing moves for a while. */
async function run(clock: VirtualClock, ms = 50): Promise<void> {
  for (let i = 0; i < ms; i++) {
    clock.advance(1);
    await Promise.resolve();
    await Promise.resolve();
  }
}

function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed * 7 + (i >>> 8)) & 0xff;
  return out;
}

/** An echo service: every datagram goes back to where it came from. */
function echo(socket: UdpSocket): void {
  socket.on('message', (data, from) => {
    socket.send(data, from.port, from.address);
  });
}

describe('two stacks exchange datagrams', () => {
  it.each([0, 1, 1472, 1473, 8000, 65507])('%i bytes to an echo service and back', async (size) => {
    const { clock, a, b } = pair();
    echo(b.udp.bind(7));
    const client = a.udp.bind();
    const { port } = client.address();
    expect(port).toBeGreaterThanOrEqual(49152);
    expect(port).toBeLessThanOrEqual(65535);
    const data = pattern(size, size);
    expect(client.send(data, 7, IP_B)).toBe('queued'); // waits for ARP first
    const replies: UdpDatagram[] = [];
    client.on('message', (d, from) => {
      if (from.family === 'IPv4') replies.push({ family: 'IPv4', data: d.slice(), address: from.address, port: from.port, destination: IP_A });
    });
    await run(clock);
    expect(replies).toHaveLength(1);
    expect(replies[0]!.address).toBe(IP_B);
    expect(replies[0]!.port).toBe(7);
    expect(replies[0]!.data.length).toBe(size);
    expect(Buffer.from(replies[0]!.data).equals(Buffer.from(data))).toBe(true);
    // 1472 bytes + 8 + 20 = 1500 fills one frame; one byte more needs two fragments each way.
    const fragmentsEachWay = size + 28 <= 1500 ? 0 : Math.ceil((size + 8) / 1480);
    expect(a.ipv4.counters.get('tx_fragments')).toBe(fragmentsEachWay);
    expect(b.ipv4.counters.get('tx_fragments')).toBe(fragmentsEachWay);
    expect(b.udp.counters.get('rx_datagrams')).toBe(1);
    expect(a.udp.counters.get('rx_datagrams')).toBe(1);
    expect(a.udp.counters.get('tx_bytes')).toBe(size);
  });

  it('delivers in order through the async iterator, and the iterator ends on close', async () => {
    const { clock, a, b } = pair();
    const server = b.udp.bind(5000);
    const client = a.udp.bind(40000);
    for (let i = 0; i < 5; i++) client.send(`message ${i}`, 5000, '10.0.0.2');
    await run(clock);
    expect(server.queued).toBe(5);
    const got: string[] = [];
    const reading = (async () => {
      for await (const d of server) {
        got.push(`${Buffer.from(d.data).toString()} from ${formatUdpAddress(d.address)}:${d.port}`);
        if (got.length === 6) break;
      }
    })();
    await run(clock, 2);
    client.send('after', 5000, IP_B);
    await run(clock, 5);
    server.close();
    await reading;
    expect(got).toEqual([
      'message 0 from 10.0.0.1:40000',
      'message 1 from 10.0.0.1:40000',
      'message 2 from 10.0.0.1:40000',
      'message 3 from 10.0.0.1:40000',
      'message 4 from 10.0.0.1:40000',
      'after from 10.0.0.1:40000',
    ]);
    expect(await server.receive()).toBeUndefined();
  });

  it('bounds the receive queue and counts what it drops', async () => {
    const { clock, a, b } = pair();
    const server = b.udp.createSocket({ receiveQueue: { maxDatagrams: 3 } }).bind(6000);
    const client = a.udp.bind();
    for (let i = 0; i < 10; i++) client.send(new Uint8Array([i]), 6000, IP_B);
    await run(clock);
    expect(server.queued).toBe(3);
    expect(server.counters.get('rx_queue_full')).toBe(7);
    expect(b.udp.counters.get('rx_queue_full')).toBe(7);
    expect((await server.receive())!.data[0]).toBe(0);
  });

  it('survives a lossy wire: what arrives is whole and correct', async () => {
    const { clock, a, b } = pair({ drop: 0.2, seed: 7 });
    echo(b.udp.bind(7));
    const client = a.udp.bind();
    const sent = new Map<number, Uint8Array>();
    const received: Uint8Array[] = [];
    client.on('message', (d) => received.push(d.slice()));
    for (let i = 0; i < 40; i++) {
      const d = pattern(100 + i * 97, i);
      d[0] = i;
      sent.set(i, d);
      client.send(d, 7, IP_B);
      await run(clock, 20);
    }
    await run(clock, 2000); // ARP retries, reassembly timeouts
    expect(received.length).toBeGreaterThan(0);
    expect(received.length).toBeLessThan(40);
    for (const r of received) expect(Buffer.from(r).equals(Buffer.from(sent.get(r[0]!)!))).toBe(true);
  });
});

describe('port unreachable', () => {
  it('answers a datagram to a closed port with ICMP destination unreachable, code 3', async () => {
    const { clock, a, b } = pair();
    const client = a.udp.bind();
    const reports: IcmpErrorReport[] = [];
    a.icmp.onError((r) => reports.push(r));
    const errors: UdpIcmpError[] = [];
    client.on('error', (e) => errors.push(e));
    client.send('anyone?', 9, IP_B);
    await run(clock);
    expect(b.udp.counters.get('rx_no_port')).toBe(1);
    expect(b.udp.counters.get('tx_port_unreachable')).toBe(1);
    expect(b.icmp.counters.get('tx_errors')).toBe(1);
    expect(a.icmp.counters.get('rx_destination_unreachable')).toBe(1);
    // What came back: type 3 code 3 from B, quoting our header and the start of our datagram.
    expect(reports).toHaveLength(1);
    const r = reports[0]!;
    expect([r.kind, r.code, formatIpv4(r.from), r.local]).toEqual(['destination-unreachable', 3, '10.0.0.2', false]);
    expect([r.original.source, r.original.destination, r.original.protocol]).toEqual([IP_A, IP_B, 17]);
    const quoted = r.original.payload;
    expect((quoted[0]! << 8) | quoted[1]!).toBe(client.address().port);
    expect((quoted[2]! << 8) | quoted[3]!).toBe(9);
    // ...and the socket hears it as Linux reports it: ECONNREFUSED, "Connection refused".
    expect(errors.map((e) => [e.code, e.message, e.port])).toEqual([['ECONNREFUSED', 'ECONNREFUSED: Connection refused', 9]]);
    expect(a.udp.counters.get('rx_icmp_errors')).toBe(1);
  });

  it('keeps to the ICMP error rate limit under a flood to a closed port', async () => {
    const { clock, a, b } = pair();
    const client = a.udp.bind();
    client.send('warm-up', 7, IP_B); // resolve ARP both ways first
    await run(clock, 10);
    for (let i = 0; i < 200; i++) client.send('x', 9, IP_B);
    await run(clock, 10);
    expect(b.udp.counters.get('rx_no_port')).toBe(201);
    // Linux's defaults: one peer gets a burst of 6 errors, then one per second (icmp_ratelimit);
    // the warm-up datagram to port 7 took the first. The host-wide bucket (50) is not reached.
    expect(b.udp.counters.get('tx_port_unreachable')).toBe(6);
    expect(b.icmp.counters.get('tx_error_rate_limited_host')).toBe(195);
    expect(b.icmp.counters.get('tx_error_rate_limited_global')).toBe(0);
  });

  it('stays silent for a broadcast datagram to a closed port, and delivers broadcasts to bound ones', async () => {
    const { clock, a, b } = pair();
    const listener = b.udp.bind(67);
    const client = a.udp.bind();
    expect(() => client.send('x', 9, '10.0.0.255')).toThrow(UdpSocketError);
    client.setBroadcast(true);
    client.send('to nobody', 9, '10.0.0.255');
    client.send('to everybody', 9, '255.255.255.255');
    client.send('to port 67', 67, '10.0.0.255');
    await run(clock);
    expect(b.udp.counters.get('rx_ignored_broadcast')).toBe(2);
    expect(b.udp.counters.get('tx_port_unreachable')).toBe(0);
    expect(b.udp.counters.get('rx_no_port')).toBe(0);
    const got = await listener.receive();
    expect(Buffer.from(got!.data).toString()).toBe('to port 67');
    expect(got!.destination).toBe(ipv4('10.0.0.255'));
  });
});

describe('hostile input', () => {
  /** Sends a hand-built IPv4 datagram carrying `udp` from A to B, bypassing A's UDP layer. */
  function inject(link: Link, udp: Uint8Array, ipPayloadLength = udp.length): void {
    const frame = new Uint8Array(14 + 20 + ipPayloadLength);
    MAC_B.writeTo(frame, 0);
    MAC_A.writeTo(frame, 6);
    frame[12] = 0x08;
    frame[13] = 0x00;
    Ipv4Repr.emit(
      {
        source: IP_A,
        destination: IP_B,
        protocol: 17,
        ttl: 64,
        identification: 1,
        dscp: 0,
        ecn: 0,
        dontFragment: true,
        moreFragments: false,
        fragmentOffset: 0,
        options: new Uint8Array(0),
        payloadLength: ipPayloadLength,
      },
      frame,
      14,
    );
    frame.set(udp.subarray(0, Math.min(udp.length, ipPayloadLength)), 34);
    link.send(frame);
  }

  it('drops and counts bad checksums, bad lengths and truncation; never answers them', async () => {
    const { clock, a, b, wireA } = pair();
    const server = b.udp.bind(7);
    a.arp.table.addStatic(IP_B, MAC_B);
    b.arp.table.addStatic(IP_A, MAC_A);
    const good = buildUdpDatagram(1111, 7, new TextEncoder().encode('hello'), IP_A, IP_B);

    const badSum = good.slice();
    badSum[9] = badSum[9]! ^ 0x40;
    inject(wireA, badSum);
    const shortLength = good.slice();
    shortLength[5] = 4; // length field 4 < 8
    inject(wireA, shortLength);
    inject(wireA, good, 10); // the IP payload ends before the UDP length says
    inject(wireA, good.subarray(0, 6), 6); // not even a header
    const toClosed = buildUdpDatagram(1111, 8, new Uint8Array(3), IP_A, IP_B);
    toClosed[7] = toClosed[7]! ^ 1; // bad checksum to a closed port: no ICMP (Linux checks first)
    inject(wireA, toClosed);
    await run(clock);
    expect(b.udp.counters.snapshot()).toMatchObject({
      rx_bad_checksum: 2,
      rx_bad_length: 1,
      rx_length_exceeds_payload: 1,
      rx_truncated: 1,
      rx_datagrams: 0,
      rx_no_port: 0,
      tx_port_unreachable: 0,
    });
    expect(server.queued).toBe(0);
    expect(b.link.counters.get('tx_frames')).toBe(0);
  });

  it('trims an IP payload longer than the UDP length and accepts a datagram without checksum', async () => {
    const { clock, a, b, wireA } = pair();
    const server = b.udp.bind(7);
    a.arp.table.addStatic(IP_B, MAC_B);
    const good = buildUdpDatagram(1111, 7, new TextEncoder().encode('hello'), IP_A, IP_B);
    const padded = new Uint8Array(good.length + 10);
    padded.set(good);
    padded.fill(0xee, good.length);
    inject(wireA, padded);
    const noSum = good.slice();
    noSum[6] = 0;
    noSum[7] = 0;
    noSum[8] = 0x4a; // 'J': a checksum would catch this change, but there is none
    inject(wireA, noSum);
    await run(clock);
    expect(b.udp.counters.snapshot()).toMatchObject({ rx_trimmed: 1, rx_no_checksum: 1, rx_datagrams: 2 });
    expect(Buffer.from((await server.receive())!.data).toString()).toBe('hello');
    expect(Buffer.from((await server.receive())!.data).toString()).toBe('Jello');
  });

  it('random bytes as UDP payloads never throw and never grow a queue past its bound', async () => {
    const { clock, a, b, wireA } = pair();
    const server = b.udp.createSocket({ receiveQueue: { maxDatagrams: 16 } }).bind(7);
    a.arp.table.addStatic(IP_B, MAC_B);
    b.arp.table.addStatic(IP_A, MAC_A);
    const random = seededRandom(99);
    for (let i = 0; i < 500; i++) {
      const bytes = new Uint8Array(Math.floor(random() * 64));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(random() * 256);
      if (bytes.length >= 4 && i % 2 === 0) {
        bytes[2] = 0;
        bytes[3] = 7; // aim half of them at the open port
      }
      inject(wireA, bytes);
    }
    await run(clock);
    expect(b.ipv4.counters.get('rx_handler_error')).toBe(0);
    expect(b.dispatcher.counters.get('rx_handler_error')).toBe(0);
    expect(server.queued).toBeLessThanOrEqual(16);
    const c = b.udp.counters.snapshot();
    const drops = c.rx_truncated! + c.rx_bad_length! + c.rx_length_exceeds_payload! + c.rx_bad_checksum!;
    expect(drops + c.rx_no_port! + c.rx_datagrams!).toBe(500);
  });

  it('a queued datagram does not keep the buffer of the whole read alive', async () => {
    // The TAP device hands up every frame of one read as a view into one ArrayBuffer (up to 256
    // frames). The receive queue is bounded by datagram bytes; holding a view would pin the whole
    // read for every tiny datagram a slow reader leaves queued: 1024 x ~390 KB.
    const { b } = pair();
    const server = b.udp.bind(7);
    const batches: ArrayBuffer[] = [];
    for (let i = 0; i < 4; i++) {
      const udp = buildUdpDatagram(1111, 7, Uint8Array.of(i), IP_A, IP_B);
      const batch = new ArrayBuffer(256 * 1514);
      batches.push(batch);
      const frame = new Uint8Array(batch, 1514 * 3, 14 + 20 + udp.length);
      MAC_B.writeTo(frame, 0);
      MAC_A.writeTo(frame, 6);
      frame[12] = 0x08;
      const ip = { source: IP_A, destination: IP_B, protocol: 17, ttl: 64, identification: i, dscp: 0, ecn: 0 };
      Ipv4Repr.emit({ ...ip, dontFragment: false, moreFragments: false, fragmentOffset: 0, options: new Uint8Array(0), payloadLength: udp.length }, frame, 14);
      frame.set(udp, 34);
      b.dispatcher.input(frame);
    }
    expect(server.queued).toBe(4);
    for (let i = 0; i < 4; i++) {
      const got = (await server.receive())!;
      expect([...got.data]).toEqual([i]);
      expect(batches).not.toContain(got.data.buffer);
      expect(got.data.buffer.byteLength).toBeLessThanOrEqual(1514);
    }
  });
});

describe('sockets', () => {
  it('binding a port in use is an error; the wildcard conflicts with a specific address', () => {
    const { b } = pair();
    const first = b.udp.bind(53);
    expect(() => b.udp.bind(53)).toThrow(/EADDRINUSE/);
    expect(() => b.udp.bind(53, '10.0.0.2')).toThrow(/EADDRINUSE/);
    first.close();
    const specific = b.udp.bind(53, '10.0.0.2');
    expect(() => b.udp.bind(53)).toThrow(/EADDRINUSE/);
    specific.close();
    b.udp.bind(53).close();
    expect(() => b.udp.bind(54, '10.0.0.9')).toThrow(/EADDRNOTAVAIL/);
  });

  it('port 0 and unbound senders get distinct ephemeral ports', () => {
    const { a } = pair();
    const ports = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const s = i % 2 === 0 ? a.udp.bind(0) : a.udp.createSocket();
      if (!s.bound) s.send('x', 9, IP_B);
      const { port } = s.address();
      expect(port).toBeGreaterThanOrEqual(49152);
      expect(port).toBeLessThanOrEqual(65535);
      ports.add(port);
    }
    expect(ports.size).toBe(200);
  });

  it('runs out of ephemeral ports with a clear error instead of looping', () => {
    const clock = new VirtualClock();
    const [l] = MemoryLink.pair({ clock });
    const dispatcher = new EtherTypeDispatcher(l);
    const arp = new Arp({ dispatcher, clock, addresses: [IP_A], announce: false });
    const ip = new Ipv4Layer({ dispatcher, resolver: arp, clock, address: Ipv4Cidr.parse('10.0.0.1/24') });
    const udp = new UdpLayer({ ipv4: ip, ephemeralPorts: { low: 50000, high: 50003 } });
    cleanup.push(() => {
      udp.close();
      ip.close();
      arp.close();
    });
    for (let i = 0; i < 4; i++) udp.bind();
    expect(() => udp.bind()).toThrow(/EAGAIN/);
  });

  it('refuses misuse clearly: oversized datagrams, bad ports, closed sockets', () => {
    const { a } = pair();
    const s = a.udp.bind();
    expect(() => s.send(new Uint8Array(65508), 7, IP_B)).toThrow(/EMSGSIZE/);
    expect(() => s.send('x', 0, IP_B)).toThrow(/EINVAL/);
    expect(() => s.send('x', 70000, IP_B)).toThrow(/EINVAL/);
    expect(() => s.send('x', 7, 'not an address')).toThrow(/EINVAL/);
    expect(() => s.bind(1234)).toThrow(/already bound/);
    s.close();
    expect(() => s.send('x', 7, IP_B)).toThrow(/ERR_SOCKET_DGRAM_NOT_RUNNING/);
    expect(a.udp.socketCount).toBe(0);
  });

  it('reply() answers a sender, and refuses one that cannot be answered with an outcome, not a throw', async () => {
    const { clock, a, b } = pair();
    const server = b.udp.bind(7);
    const client = a.udp.bind(40000);
    // the senders a datagram off the network can name: port 0, 0.0.0.0, broadcast, multicast
    const unanswerable = [
      { address: IP_A, port: 0 },
      { address: ipv4('0.0.0.0'), port: 68 },
      { address: ipv4('255.255.255.255'), port: 40000 },
      { address: ipv4('10.0.0.255'), port: 40000 },
      { address: ipv4('224.0.0.1'), port: 40000 },
    ];
    for (let i = 0; i < 1000; i++) {
      for (const to of unanswerable) expect(server.reply('echo', to)).toBe('unanswerable');
    }
    expect(server.counters.get('tx_unanswerable')).toBe(5000);
    expect(b.udp.counters.get('tx_unanswerable')).toBe(5000);
    expect(b.udp.counters.get('tx_datagrams')).toBe(0);
    // send() to port 0 stays a mistake of the caller (Linux's sendto: EINVAL)
    expect(() => server.send('x', 0, IP_A)).toThrow(/EINVAL/);
    // an ordinary sender gets its answer
    const got: string[] = [];
    client.on('message', (d) => got.push(new TextDecoder().decode(d)));
    expect(server.reply('hello', { address: IP_A, port: 40000 })).toBe('queued');
    await run(clock);
    expect(got).toEqual(['hello']);
  });

  it('sends to its own address through IPv4 loopback', async () => {
    const { clock, a } = pair();
    const server = a.udp.bind(7);
    a.udp.bind().send('self', 7, IP_A);
    await run(clock, 2);
    const d = await server.receive();
    expect(Buffer.from(d!.data).toString()).toBe('self');
    expect(d!.address).toBe(IP_A);
  });

  it('lists bound sockets like ss -uan', () => {
    const { b } = pair();
    b.udp.bind(7);
    b.udp.bind(53, '10.0.0.2');
    expect(b.udp.show()).toBe('UNCONN 0.0.0.0:7 queued 0\nUNCONN 10.0.0.2:53 queued 0');
  });
});
