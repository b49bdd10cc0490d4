/**
 * UDP over IPv6 (RFC 8200 8.1): the checksum under IPv6's pseudo-header, against a datagram the
 * kernel sent and a checksum worked out by hand; the zero-checksum rules; the port table's
 * dual-stack bindings (Linux with bindv6only=0).
 */
import { describe, expect, it } from 'vitest';
import { ipv4, ipv6 } from '@tapstack/link';
import {
  buildUdp6Datagram,
  formatUdp,
  formatUdpEndpoint,
  PortTable,
  udp6Checksum,
  udp6ChecksumAt,
  udpChecksum,
  UdpPacket,
  UdpRepr,
  UdpSocketError,
  type UdpAddress,
} from '../src/index.ts';

const A = ipv6('fd00:10::1');
const B = ipv6('fd00:10::2');

// packages/ipv6/test/fixtures/linux-ipv6-udp-port-unreachable.pcap frame 3: the kernel's
// fd00:10::1.35278 > fd00:10::2.9 "hello", whose checksum field holds 0xfa42: the kernel's
// partial sum (checksum offload on the tap), the pseudo-header alone. The full checksum, by hand:
// pseudo-header fd00+0010+0001 + fd00+0010+0002 + 000d (length) + 0011 (next header) = 1fa41,
// folded fa42 (the kernel's partial sum, as it should be); header and data
// 89ce+0009+000d+6865+6c6c+6f00 = 1cdb5; fa42+1cdb5 = 2c7f7 -> c7f9 -> complement 3806 (tshark
// computes 0x3806 for that frame too).
const KERNEL_PARTIAL = Uint8Array.from([0x89, 0xce, 0x00, 0x09, 0x00, 0x0d, 0xfa, 0x42, 0x68, 0x65, 0x6c, 0x6c, 0x6f]);
const DATAGRAM = Uint8Array.from([0x89, 0xce, 0x00, 0x09, 0x00, 0x0d, 0x38, 0x06, 0x68, 0x65, 0x6c, 0x6c, 0x6f]);
// The IPv6 fixed header of that frame (payload length 13, next header 17, hop limit 64).
const IPV6_HEADER = Uint8Array.from([
  0x60, 0x0a, 0xcd, 0x18, 0x00, 0x0d, 0x11, 0x40,
  0xfd, 0x00, 0x00, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
  0xfd, 0x00, 0x00, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
]);

describe('the UDP checksum over IPv6', () => {
  it('builds the literal datagram byte for byte, checksum 0x3806', () => {
    const built = buildUdp6Datagram(35278, 9, new TextEncoder().encode('hello'), A, B);
    expect(Array.from(built)).toEqual(Array.from(DATAGRAM));
  });

  it('verifies it under the right addresses, and not when an address or a byte changes', () => {
    const p = new UdpPacket(DATAGRAM);
    expect(p.verifyChecksumIpv6(A, B)).toBe(true);
    expect(udp6Checksum(DATAGRAM, A, B)).toBe(0);
    // the pseudo-header is what catches a packet delivered to the wrong address
    expect(p.verifyChecksumIpv6(A, ipv6('fd00:10::3'))).toBe(false);
    // addition does not see order: swapped addresses still sum the same (the ports tell them apart)
    expect(p.verifyChecksumIpv6(B, A)).toBe(true);
    const flipped = DATAGRAM.slice();
    flipped[12] = 0x6e; // "hellp"
    expect(new UdpPacket(flipped).verifyChecksumIpv6(A, B)).toBe(false);
    // the kernel's partial sum is not a valid checksum on its own
    expect(new UdpPacket(KERNEL_PARTIAL).verifyChecksumIpv6(A, B)).toBe(false);
  });

  it('reads the addresses in place from the packet (the receive path) with the same result', () => {
    const packet = new Uint8Array(40 + DATAGRAM.length);
    packet.set(IPV6_HEADER);
    packet.set(DATAGRAM, 40);
    expect(udp6ChecksumAt(packet.subarray(40), packet)).toBe(0);
    packet[39] = 0x03; // destination fd00:10::3
    expect(udp6ChecksumAt(packet.subarray(40), packet)).not.toBe(0);
  });

  it('differs from the IPv4 checksum of the same datagram: the pseudo-header is the point', () => {
    expect(udpChecksum(DATAGRAM, ipv4('10.0.0.1'), ipv4('10.0.0.2'))).not.toBe(0);
  });

  it('a zero checksum field is never valid over IPv6 (RFC 8200 8.1), though IPv4 takes it as "none"', () => {
    const zero = DATAGRAM.slice();
    zero[6] = 0;
    zero[7] = 0;
    expect(new UdpPacket(zero).verifyChecksumIpv6(A, B)).toBe(false);
    expect(new UdpPacket(zero).verifyChecksum(ipv4('10.0.0.1'), ipv4('10.0.0.2'))).toBe(true);
  });

  it('a computed checksum of 0 is sent as 0xffff, and verifies', () => {
    // Two data bytes equal to the checksum of the datagram with 00 00 as data bring the sum to
    // ffff, so the computed checksum becomes 0.
    const probe = buildUdp6Datagram(1000, 2000, new Uint8Array(2), A, B);
    const c = (probe[6]! << 8) | probe[7]!;
    const datagram = buildUdp6Datagram(1000, 2000, Uint8Array.from([c >>> 8, c & 0xff]), A, B);
    expect([datagram[6], datagram[7]]).toEqual([0xff, 0xff]);
    expect(new UdpPacket(datagram).verifyChecksumIpv6(A, B)).toBe(true);
  });

  it('formats with IPv6 addresses like tcpdump', () => {
    expect(formatUdp(DATAGRAM, A, B)).toBe('fd00:10::1.35278 > fd00:10::2.9: UDP, length 5');
  });
});

describe('UdpRepr over IPv6 (the pseudo-header chosen by the addresses\' family)', () => {
  it('parses the literal datagram under IPv6 addresses, and refuses it under others or with a zero checksum', () => {
    expect(UdpRepr.parse(new UdpPacket(DATAGRAM), A, B)).toEqual({ ok: true, value: { sourcePort: 35278, destinationPort: 9, payloadLength: 5 } });
    expect(UdpRepr.parse(new UdpPacket(DATAGRAM), A, ipv6('fd00:10::3'))).toEqual({ ok: false, reason: 'bad_checksum' });
    const zero = DATAGRAM.slice();
    zero[6] = 0;
    zero[7] = 0;
    expect(UdpRepr.parse(new UdpPacket(zero), A, B)).toEqual({ ok: false, reason: 'bad_checksum' });
    // over IPv4 the same zero field means "no checksum" and passes
    expect(UdpRepr.parse(new UdpPacket(zero), ipv4('10.0.0.1'), ipv4('10.0.0.2')).ok).toBe(true);
  });

  it('emits the literal datagram byte for byte (checksum 0x3806) and refuses a mixed pair of addresses', () => {
    const buffer = new Uint8Array(13);
    UdpRepr.emit({ sourcePort: 35278, destinationPort: 9, payloadLength: 5 }, buffer, A, B, new TextEncoder().encode('hello'));
    expect(Array.from(buffer)).toEqual(Array.from(DATAGRAM));
    expect(() => UdpRepr.emit({ sourcePort: 1, destinationPort: 2, payloadLength: 0 }, new Uint8Array(8), A, ipv4('10.0.0.2'))).toThrow(TypeError);
  });
});

describe('the port table with both families (bindv6only=0)', () => {
  const V4 = ipv4('10.0.0.2');
  const ANY4 = ipv4('0.0.0.0');
  const ANY6 = ipv6('::');

  it('`::` takes both families; 0.0.0.0 only IPv4; a specific address only itself; exact beats wildcard', () => {
    const t = new PortTable<string>();
    t.bind(7, ANY6, 'dual');
    expect(t.lookup(7, V4)).toBe('dual');
    expect(t.lookup(7, B)).toBe('dual');
    const u = new PortTable<string>();
    u.bind(7, ANY4, 'v4');
    expect(u.lookup(7, V4)).toBe('v4');
    expect(u.lookup(7, B)).toBeUndefined();
    u.bind(7, B, 'v6');
    expect(u.lookup(7, B)).toBe('v6');
    expect(u.lookup(7, A)).toBeUndefined();
    expect(u.lookup(7, V4)).toBe('v4');
    const w = new PortTable<string>();
    w.bind(53, B, 'exact');
    expect(w.lookup(53, ipv6('fd00:10::2'))).toBe('exact'); // by value, not by object
  });

  it('conflicts like Linux: `::` with everything on its port, 0.0.0.0 with IPv4, an address with itself', () => {
    const taken = (setup: [UdpAddress, string][], next: UdpAddress): boolean => {
      const t = new PortTable<string>();
      for (const [a, o] of setup) t.bind(7, a, o);
      try {
        t.bind(7, next, 'next');
        return false;
      } catch (err) {
        expect((err as UdpSocketError).code).toBe('EADDRINUSE');
        return true;
      }
    };
    expect(taken([[ANY6, 'x']], V4)).toBe(true);
    expect(taken([[ANY6, 'x']], ANY4)).toBe(true);
    expect(taken([[ANY6, 'x']], B)).toBe(true);
    expect(taken([[ANY4, 'x']], ANY6)).toBe(true);
    expect(taken([[V4, 'x']], ANY6)).toBe(true);
    expect(taken([[B, 'x']], ANY6)).toBe(true);
    expect(taken([[ANY4, 'x']], B)).toBe(false);
    expect(taken([[B, 'x']], ANY4)).toBe(false);
    expect(taken([[B, 'x']], ipv6('fd00:10::2'))).toBe(true);
    expect(taken([[B, 'x']], A)).toBe(false);
  });

  it('prints like ss: *:7 for `::`, [addr]:port for IPv6', () => {
    expect(formatUdpEndpoint(ANY6, 7)).toBe('*:7');
    expect(formatUdpEndpoint(B, 53)).toBe('[fd00:10::2]:53');
    expect(formatUdpEndpoint(V4, 7)).toBe('10.0.0.2:7');
  });
});
