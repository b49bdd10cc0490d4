/**
 * Micro-benchmarks (vitest bench): `npm run bench:micro`. The pieces of the receive -> reply
 * path one at a time, then the whole path in memory (see echo-path.ts). Frames per second of the
 * whole path = the batch benchmark's ops/s times the batch size (32).
 */
import { bench, describe } from 'vitest';
import { ArpPacket, ArpRepr, NeighbourTable } from '@tapstack/arp';
import { IcmpPacket, IcmpRepr } from '@tapstack/icmp';
import { Ipv4Packet, Ipv4Repr, internetChecksum } from '@tapstack/ipv4';
import { EthernetFrame, EthernetRepr, SystemClock, type Ipv4Address } from '@tapstack/link';
import { UdpPacket, UdpRepr, buildUdpDatagram } from '@tapstack/udp';
import { PEER_IP, PEER_MAC, STACK_IP, arpRequestFrame, createEchoPath, echoRequestFrame } from './echo-path.ts';

const data1500 = new Uint8Array(1500).map((_, i) => (i * 7) & 0xff);

describe('checksum', () => {
  bench('internetChecksum over 1500 bytes', () => {
    internetChecksum(data1500);
  });
  bench('internetChecksum over a 20-byte header', () => {
    internetChecksum(data1500, 0, 0, 20);
  });
});

const echo = echoRequestFrame(56);
const arp = arpRequestFrame();
const udp = buildUdpDatagram(40000, 7, new Uint8Array(64), PEER_IP, STACK_IP);
const out = new Uint8Array(2048);

describe('codecs: check + parse + emit', () => {
  bench('Ethernet', () => {
    const f = EthernetFrame.check(echo);
    if (!f.ok) throw new Error('ethernet');
    EthernetRepr.emit(EthernetRepr.parse(f.value), out);
  });
  bench('ARP', () => {
    const c = ArpPacket.check(arp.subarray(14));
    if (!c.ok) throw new Error('arp');
    const r = ArpRepr.parse(c.value);
    if (!r.ok) throw new Error('arp');
    ArpRepr.emit(r.value, out);
  });
  bench('IPv4 header (checksum verified and computed)', () => {
    const c = Ipv4Packet.check(echo.subarray(14));
    if (!c.ok) throw new Error('ipv4');
    Ipv4Repr.emit(Ipv4Repr.parse(c.value), out);
  });
  bench('ICMP echo, 64 bytes (checksum verified and computed)', () => {
    const c = IcmpPacket.check(echo.subarray(34));
    if (!c.ok || !c.value.verifyChecksum()) throw new Error('icmp');
    const r = IcmpRepr.parse(c.value);
    if (!r.ok) throw new Error('icmp');
    IcmpRepr.emit(r.value, out);
  });
  bench('UDP, 64 bytes of data (pseudo-header checksum verified and computed)', () => {
    const c = UdpPacket.check(udp);
    if (!c.ok) throw new Error('udp');
    const r = UdpRepr.parse(c.value, PEER_IP, STACK_IP);
    if (!r.ok) throw new Error('udp');
    out.set(udp.subarray(8), 8);
    UdpRepr.emit(r.value, out, PEER_IP, STACK_IP);
  });
});

describe('neighbour table', () => {
  const table = new NeighbourTable({ clock: new SystemClock(), hooks: { sendTo: () => true } });
  const ips: Ipv4Address[] = [];
  for (let i = 0; i < 500; i++) {
    const ip = ((10 << 24) | (1 << 16) | i) >>> 0;
    ips.push(ip as Ipv4Address);
    table.addStatic(ip as Ipv4Address, PEER_MAC);
  }
  const frame = new Uint8Array(98);
  let i = 0;
  bench('output(): find the entry of a known neighbour and send (500 entries)', () => {
    table.output(ips[i++ % 500]!, frame);
  });
  bench('lookup(): a snapshot of one entry (500 entries)', () => {
    table.lookup(ips[i++ % 500]!);
  });
});

describe('whole input path, in memory', () => {
  const path32 = createEchoPath({ batchSize: 32 });
  const path1 = createEchoPath({ batchSize: 1 });
  bench('32 echo requests -> 32 replies (one batch, as a TAP wake-up delivers)', () => {
    if (path32.run(1) !== 32) throw new Error('missing replies');
  });
  bench('1 echo request -> 1 reply', () => {
    if (path1.run(1) !== 1) throw new Error('missing reply');
  });
});
