/**
 * UDP over IPv6 between two whole stacks (createStack) on an in-memory wire with a virtual clock:
 * one socket for both families, the IPv4-only and address-specific bindings, port unreachable
 * over ICMPv6 reaching the sender's socket as ECONNREFUSED, fragments both ways, and hostile
 * datagrams (zero or wrong checksum) dropped and counted.
 */
import { describe, expect, it } from 'vitest';
import { EtherType, Ipv6Address, MacAddress, MemoryLink, VirtualClock, buildEthernetFrame, formatIpv4, ipv4, ipv6, seededRandom, type Link } from '@tapstack/link';
import { Ipv6Repr } from '@tapstack/ipv6';
import { buildUdp6Datagram, type UdpDatagram, type UdpIcmpError, type UdpRemoteInfo, type UdpSocket } from '@tapstack/udp';
import { createStack, type Stack } from '@tapstack/stack';
import { udpEcho } from '../src/services.ts';

const MAC_A = MacAddress.parse('02:00:00:00:00:01');
const MAC_B = MacAddress.parse('02:00:00:00:00:02');
const A6 = ipv6('fd00:10::1');
const B6 = ipv6('fd00:10::2');
const A4 = ipv4('10.0.0.1');
const B4 = ipv4('10.0.0.2');

/** Two stacks, DAD done; `inject` puts a raw frame on A's side of the wire. */
function pair(): { clock: VirtualClock; a: Stack; b: Stack; inject: (frame: Uint8Array) => void } {
  const clock = new VirtualClock();
  const [la, lb]: Link[] = MemoryLink.pair({ clock, latencyMs: 0, macs: [MAC_A, MAC_B] });
  const a = createStack({ link: la!, ip: '10.0.0.1/24', clock, random: seededRandom(1), ipv6: { addresses: ['fd00:10::1/64'] } });
  const b = createStack({ link: lb!, ip: '10.0.0.2/24', clock, random: seededRandom(2), ipv6: { addresses: ['fd00:10::2/64'] } });
  a.start();
  b.start();
  clock.advance(3000);
  return { clock, a, b, inject: (frame) => void la!.send(frame) };
}

/** Collects what a socket's 'message' listener hears, as `family address.port: text`. */
function listen(socket: UdpSocket): string[] {
  const heard: string[] = [];
  socket.on('message', (data, from: UdpRemoteInfo) => {
    const address = from.family === 'IPv4' ? formatIpv4(from.address) : from.address.toString();
    heard.push(`${from.family} ${address}.${from.port}: ${new TextDecoder().decode(data)}`);
  });
  return heard;
}

describe('UDP over IPv6 between two stacks', () => {
  it('one socket bound to `::` (bind(7)) gets both families; the echo answers each over its own', async () => {
    const { clock, a, b } = pair();
    const echo = udpEcho(b.udp, 7);
    expect(echo.address()).toEqual({ address: Ipv6Address.UNSPECIFIED, port: 7, family: 'IPv6' });
    expect(b.udp.show()).toBe('UNCONN *:7 queued 0');
    const client = a.udp.bind(40000);
    const heard = listen(client);
    expect(client.send('over four', 7, B4)).toBe('queued');
    expect(client.send('over six', 7, 'fd00:10::2')).toBe('queued');
    clock.advance(50);
    await Promise.resolve();
    expect(heard.sort()).toEqual(['IPv4 10.0.0.2.7: over four', 'IPv6 fd00:10::2.7: over six']);
    expect(b.udp.counters.get('rx_datagrams')).toBe(2);
    expect(b.udp.counters.get('Udp6InDatagrams')).toBe(1);
    expect(b.udp.counters.get('Udp6OutDatagrams')).toBe(1);
    expect(b.udp.counters.get('tx_datagrams')).toBe(2);
    expect(a.udp.counters.get('rx_bad_checksum')).toBe(0);
    a.close();
    b.close();
  });

  it('4000 and 65519 bytes (the most over IPv6) go in fragments both ways and come back whole', async () => {
    const { clock, a, b } = pair();
    udpEcho(b.udp, 7);
    const client = a.udp.bind(0);
    const sizes: number[] = [];
    client.on('message', (data) => sizes.push(data.length));
    for (const size of [4000, 65519]) client.send(new Uint8Array(size).fill(size & 0xff), 7, B6);
    expect(() => client.send(new Uint8Array(65520), 7, B6)).toThrow(/EMSGSIZE/);
    clock.advance(100);
    expect(sizes).toEqual([4000, 65519]);
    expect(b.ipv6!.counters.get('reasm_ok')).toBe(2);
    a.close();
    b.close();
  });

  it('bind(port, "0.0.0.0") is IPv4 only: the IPv6 datagram gets an ICMPv6 port unreachable, the sender socket ECONNREFUSED', async () => {
    const { clock, a, b } = pair();
    const v4only = b.udp.bind(9, '0.0.0.0');
    const heard = listen(v4only);
    const client = a.udp.bind(40001);
    const errors: UdpIcmpError[] = [];
    client.on('error', (e) => errors.push(e));
    client.send('four', 9, B4);
    client.send('six', 9, B6);
    clock.advance(50);
    expect(heard).toEqual(['IPv4 10.0.0.1.40001: four']);
    expect(b.udp.counters.get('Udp6NoPorts')).toBe(1);
    expect(b.udp.counters.get('tx_port_unreachable')).toBe(1);
    expect(b.icmpv6!.counters.get('tx_errors')).toBe(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe('ECONNREFUSED');
    expect(errors[0]!.address.toString()).toBe('fd00:10::2');
    expect(errors[0]!.port).toBe(9);
    expect(errors[0]!.from.toString()).toBe('fd00:10::2');
    expect(a.udp.counters.get('rx_icmp_errors')).toBe(1);
    // `::` then conflicts with the 0.0.0.0 binding, a specific IPv6 address does not
    expect(() => b.udp.bind(9)).toThrow(/EADDRINUSE/);
    const v6 = b.udp.bind(9, B6);
    expect(b.udp.show()).toBe('UNCONN 0.0.0.0:9 queued 0\nUNCONN [fd00:10::2]:9 queued 0');
    const got = listen(v6);
    client.send('six again', 9, B6);
    clock.advance(50);
    expect(got).toEqual(['IPv6 fd00:10::1.40001: six again']);
    a.close();
    b.close();
  });

  it('a socket bound to one IPv6 address gets only what is sent to it, and sends only IPv6', async () => {
    const { clock, a, b } = pair();
    const bLinkLocal = Ipv6Address.linkLocalFromMac(MAC_B);
    const server = b.udp.bind(53, 'fd00:10::2');
    const queue: UdpDatagram[] = [];
    void (async () => {
      for await (const d of server) queue.push(d);
    })();
    const client = a.udp.bind(0);
    client.send('global', 53, B6);
    client.send('link-local', 53, bLinkLocal);
    clock.advance(50);
    for (let i = 0; i < 10; i++) await Promise.resolve(); // the iterator resumes on microtasks
    expect(queue.map((d) => `${d.family} ${d.destination.toString()} ${new TextDecoder().decode(d.data)}`)).toEqual(['IPv6 fd00:10::2 global']);
    expect(b.udp.counters.get('Udp6NoPorts')).toBe(1);
    expect(() => server.send('x', 1, A4)).toThrow(/EAFNOSUPPORT/);
    expect(() => b.udp.bind(54, 'fd00:10::99')).toThrow(/EADDRNOTAVAIL/);
    expect(() => b.udp.bind(54, '0.0.0.0').send('x', 1, A6)).toThrow(/EAFNOSUPPORT/);
    a.close();
    b.close();
  });

  it('reply refuses unanswerable IPv6 senders (port 0, ::, a multicast source) and sends nothing', () => {
    const { a, b } = pair();
    const s = b.udp.bind(7);
    const before = b.ipv6!.counters.get('Ip6OutRequests');
    expect(s.reply('x', { address: A6, port: 0 })).toBe('unanswerable');
    expect(s.reply('x', { address: ipv6('::'), port: 5 })).toBe('unanswerable');
    expect(s.reply('x', { address: ipv6('ff02::1'), port: 5 })).toBe('unanswerable');
    expect(b.udp.counters.get('tx_unanswerable')).toBe(3);
    expect(b.ipv6!.counters.get('Ip6OutRequests')).toBe(before);
    a.close();
    b.close();
  });

  it('multicast to ff02::1 reaches the `::` socket; to a closed port it is ignored, never answered with an error', () => {
    const { clock, a, b } = pair();
    const heard = listen(b.udp.bind(7));
    const client = a.udp.bind(40002);
    client.send('all nodes', 7, Ipv6Address.ALL_NODES);
    client.send('nobody', 8, Ipv6Address.ALL_NODES);
    clock.advance(50);
    expect(heard).toEqual(['IPv6 fe80::ff:fe00:1.40002: all nodes']);
    expect(b.udp.counters.get('Udp6IgnoredMulti')).toBe(1);
    expect(b.icmpv6!.counters.get('tx_errors')).toBe(0);
    a.close();
    b.close();
  });

  it('hostile: a zero checksum (RFC 8200 8.1) and a wrong one are dropped and counted, never delivered or answered', () => {
    const { clock, a, b, inject } = pair();
    const heard = listen(b.udp.bind(7));
    const frame = (udp: Uint8Array): Uint8Array =>
      buildEthernetFrame({ destination: MAC_B, source: MAC_A, etherType: EtherType.IPV6 }, Ipv6Repr.build({ source: A6, destination: B6, nextHeader: 17, hopLimit: 64, trafficClass: 0, flowLabel: 0 }, udp));
    const good = buildUdp6Datagram(1234, 7, new TextEncoder().encode('ok'), A6, B6);
    const zero = good.slice();
    zero[6] = 0;
    zero[7] = 0;
    const wrong = good.slice();
    wrong[7] = good[7]! ^ 0x55;
    // to a closed port too: a bad checksum is dropped before the port is looked at
    const zeroClosed = buildUdp6Datagram(1234, 9, new Uint8Array(2), A6, B6);
    zeroClosed[6] = 0;
    zeroClosed[7] = 0;
    for (const udp of [zero, wrong, zeroClosed, good]) inject(frame(udp));
    clock.advance(10);
    expect(heard).toEqual(['IPv6 fd00:10::1.1234: ok']);
    expect(b.udp.counters.get('rx_zero_checksum_ipv6')).toBe(2);
    expect(b.udp.counters.get('Udp6InCsumErrors')).toBe(3);
    expect(b.udp.counters.get('rx_bad_checksum')).toBe(3);
    expect(b.udp.counters.get('Udp6NoPorts')).toBe(0);
    expect(b.icmpv6!.counters.get('tx_errors')).toBe(0);
    // and short or lying lengths, as over IPv4
    inject(frame(good.subarray(0, 5)));
    const long = good.slice();
    long[5] = 200;
    inject(frame(long));
    clock.advance(10);
    expect(b.udp.counters.get('rx_truncated')).toBe(1);
    expect(b.udp.counters.get('rx_length_exceeds_payload')).toBe(1);
    a.close();
    b.close();
  });

  it('hostile: 3000 random UDP payloads over IPv6 never throw, and each one is accounted for', () => {
    const { clock, a, b, inject } = pair();
    udpEcho(b.udp, 7);
    const random = seededRandom(42);
    const frame = (udp: Uint8Array): Uint8Array =>
      buildEthernetFrame({ destination: MAC_B, source: MAC_A, etherType: EtherType.IPV6 }, Ipv6Repr.build({ source: A6, destination: B6, nextHeader: 17, hopLimit: 64, trafficClass: 0, flowLabel: 0 }, udp));
    for (let i = 0; i < 3000; i++) {
      const bytes = Uint8Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 256));
      if (bytes.length >= 4 && i % 2 === 0) {
        // half of them to the echo port
        bytes[2] = 0;
        bytes[3] = 7;
      }
      inject(frame(bytes));
      if (i % 100 === 0) clock.advance(1);
    }
    clock.advance(10);
    const c = b.udp.counters;
    expect(b.ipv6!.counters.get('rx_handler_error')).toBe(0);
    const accounted = ['rx_truncated', 'rx_bad_length', 'rx_length_exceeds_payload', 'rx_bad_checksum'].reduce((n, k) => n + c.get(k as 'rx_truncated'), 0);
    // each is dropped for its header or its checksum (a random one is right 1 time in 65536;
    // with this seed, never)
    expect(accounted).toBe(3000);
    expect(c.get('Udp6InDatagrams')).toBe(0);
    a.close();
    b.close();
  });
});

describe('--trace of UDP over IPv6', () => {
  it('prints the ports with the addresses, as for IPv4 (tcpdump: fd00:10::1.40000 > fd00:10::2.7: UDP, length 3)', async () => {
    const clock = new VirtualClock();
    const [la, lb]: Link[] = MemoryLink.pair({ clock, latencyMs: 0, macs: [MAC_A, MAC_B] });
    const lines: string[] = [];
    const a = createStack({ link: la!, ip: '10.0.0.1/24', clock, random: seededRandom(1), trace: (l) => lines.push(l), ipv6: { addresses: ['fd00:10::1/64'] } });
    const b = createStack({ link: lb!, ip: '10.0.0.2/24', clock, random: seededRandom(2), ipv6: { addresses: ['fd00:10::2/64'] } });
    a.start();
    b.start();
    clock.advance(3000);
    udpEcho(b.udp, 7);
    const client = a.udp.bind(40000);
    client.send('six', 7, 'fd00:10::2');
    client.send('four', 7, B4);
    clock.advance(50);
    await Promise.resolve();
    const udp = lines.filter((l) => l.includes('UDP'));
    expect(udp.filter((l) => l.endsWith('IP6 fd00:10::1.40000 > fd00:10::2.7: UDP, length 3'))).toHaveLength(1);
    expect(udp.filter((l) => l.endsWith('IP6 fd00:10::2.7 > fd00:10::1.40000: UDP, length 3'))).toHaveLength(1);
    expect(udp.filter((l) => l.endsWith('IPv4, 10.0.0.1.40000 > 10.0.0.2.7: UDP, length 4'))).toHaveLength(1);
    a.close();
    b.close();
  });
});
