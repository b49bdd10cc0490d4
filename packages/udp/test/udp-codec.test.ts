import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Ipv4Packet } from '@tapstack/ipv4';
import { EtherType, EthernetFrame, ipv4, readPcap, type Ipv4Address } from '@tapstack/link';
import {
  buildUdpDatagram,
  formatUdp,
  UDP_HEADER_LENGTH,
  udpChecksum,
  UdpPacket,
  UdpRepr,
} from '../src/index.ts';

const A = ipv4('10.0.0.1');
const B = ipv4('10.0.0.2');

// The datagram of linux-udp-port-unreachable.pcap frame 5 (10.0.0.1:45645 -> 10.0.0.2:9, "hi\n"),
// with its checksum field as the kernel left it on the veth (see the fixture test below).
const FIXTURE_DATAGRAM = Uint8Array.from([0xb2, 0x4d, 0x00, 0x09, 0x00, 0x0b, 0x14, 0x1f, 0x68, 0x69, 0x0a]);
// The same datagram with the full RFC 768 checksum, worked out by hand:
// pseudo-header 0a00+0001+0a00+0002+0011+000b = 141f; header and data b24d+0009+000b+6869+0a00;
// total 138e9 -> fold 38ea -> complement c715.
const DATAGRAM = Uint8Array.from([0xb2, 0x4d, 0x00, 0x09, 0x00, 0x0b, 0xc7, 0x15, 0x68, 0x69, 0x0a]);

describe('UdpPacket view', () => {
  it('reads every field of a literal datagram', () => {
    const r = UdpPacket.check(DATAGRAM);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const p = r.value;
    expect(p.sourcePort).toBe(45645);
    expect(p.destinationPort).toBe(9);
    expect(p.length).toBe(11);
    expect(p.checksum).toBe(0xc715);
    expect(Array.from(p.payload)).toEqual([0x68, 0x69, 0x0a]);
  });

  it('writes fields in network byte order', () => {
    const bytes = new Uint8Array(8);
    const p = new UdpPacket(bytes);
    p.sourcePort = 0x1234;
    p.destinationPort = 0xabcd;
    p.length = 8;
    p.checksum = 0xfffe;
    expect(Array.from(bytes)).toEqual([0x12, 0x34, 0xab, 0xcd, 0x00, 0x08, 0xff, 0xfe]);
  });

  it('verifies the pseudo-header checksum, and only for the right addresses', () => {
    const p = new UdpPacket(DATAGRAM);
    expect(p.verifyChecksum(A, B)).toBe(true);
    expect(p.verifyChecksum(A, ipv4('10.0.0.3'))).toBe(false);
    expect(udpChecksum(DATAGRAM, A, B)).toBe(0);
  });

  it('treats a checksum field of 0 as "none sent"', () => {
    const bytes = DATAGRAM.slice();
    bytes[6] = 0;
    bytes[7] = 0;
    expect(new UdpPacket(bytes).verifyChecksum(A, ipv4('192.0.2.1'))).toBe(true);
    const parsed = UdpRepr.parse(new UdpPacket(bytes), A, B);
    expect(parsed.ok).toBe(true);
  });

  it('refuses too short bytes, a length field under 8 and a length field past the payload', () => {
    expect(UdpPacket.check(DATAGRAM.subarray(0, 7))).toEqual({ ok: false, reason: 'truncated' });
    const small = DATAGRAM.slice();
    small[5] = 7;
    expect(UdpPacket.check(small)).toEqual({ ok: false, reason: 'bad_length' });
    const long = DATAGRAM.slice();
    long[5] = 12;
    expect(UdpPacket.check(long)).toEqual({ ok: false, reason: 'length_exceeds_payload' });
  });

  it('trims bytes after the length field (padding), as Linux does', () => {
    const padded = new Uint8Array(20);
    padded.set(DATAGRAM);
    const r = UdpPacket.check(padded);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.bytes.length).toBe(11);
    expect(r.value.payload.length).toBe(3);
    expect(r.value.verifyChecksum(A, B)).toBe(true);
  });
});

describe('UdpRepr', () => {
  it('parses ports and payload length, checking the checksum', () => {
    expect(UdpRepr.parse(new UdpPacket(DATAGRAM), A, B)).toEqual({
      ok: true,
      value: { sourcePort: 45645, destinationPort: 9, payloadLength: 3 },
    });
    const bad = DATAGRAM.slice();
    bad[9] = bad[9]! ^ 0x01;
    expect(UdpRepr.parse(new UdpPacket(bad), A, B)).toEqual({ ok: false, reason: 'bad_checksum' });
    expect(UdpRepr.parse(new UdpPacket(bad), A, B, { verifyChecksum: false }).ok).toBe(true);
  });

  it('emits the literal datagram byte for byte', () => {
    expect(Array.from(buildUdpDatagram(45645, 9, Uint8Array.from([0x68, 0x69, 0x0a]), A, B))).toEqual(Array.from(DATAGRAM));
    const repr = { sourcePort: 45645, destinationPort: 9, payloadLength: 3 };
    expect(UdpRepr.bufferLength(repr)).toBe(11);
    // payload already in place
    const buffer = new Uint8Array(11);
    buffer.set([0x68, 0x69, 0x0a], 8);
    UdpRepr.emit(repr, buffer, A, B);
    expect(Array.from(buffer)).toEqual(Array.from(DATAGRAM));
  });

  it('sends a computed checksum of 0 as 0xFFFF', () => {
    // Ports 1 -> 2, length 10, from 10.0.0.1 to 10.0.0.2: pseudo-header 141e, header 0001+0002+000a,
    // so the sum is 142b + data; data eb d4 makes it ffff, whose complement is 0.
    const d = buildUdpDatagram(1, 2, Uint8Array.from([0xeb, 0xd4]), A, B);
    expect(Array.from(d)).toEqual([0x00, 0x01, 0x00, 0x02, 0x00, 0x0a, 0xff, 0xff, 0xeb, 0xd4]);
    expect(new UdpPacket(d).verifyChecksum(A, B)).toBe(true);
  });

  it('checksums an empty datagram and an odd-length one', () => {
    const empty = buildUdpDatagram(7, 7, new Uint8Array(0), A, B);
    expect(empty.length).toBe(UDP_HEADER_LENGTH);
    // By hand: pseudo 0a00+0001+0a00+0002+0011+0008 = 141c; header 0007+0007+0008 = 0016;
    // sum 1432 -> complement ebcd
    expect(Array.from(empty)).toEqual([0x00, 0x07, 0x00, 0x07, 0x00, 0x08, 0xeb, 0xcd]);
    const odd = buildUdpDatagram(7, 7, Uint8Array.from([0x01]), A, B);
    expect(new UdpPacket(odd).verifyChecksum(A, B)).toBe(true);
  });

  it('refuses to emit what the length field cannot hold', () => {
    expect(() => UdpRepr.emit({ sourcePort: 1, destinationPort: 2, payloadLength: 65528 }, new Uint8Array(65536), A, B)).toThrow(
      RangeError,
    );
  });
});

describe('formatUdp', () => {
  it('prints one line like tcpdump', () => {
    expect(formatUdp(DATAGRAM, A, B)).toBe('10.0.0.1.45645 > 10.0.0.2.9: UDP, length 3');
    expect(formatUdp(DATAGRAM)).toBe('45645 > 9: UDP, length 3');
    expect(formatUdp(DATAGRAM.subarray(0, 4))).toBe('[|udp] truncated, 4 bytes');
    const long = DATAGRAM.slice();
    long[5] = 40;
    expect(formatUdp(long)).toBe('45645 > 9: UDP, bad length 40 > 11');
  });
});

// The repository's copy of ../shared/fixtures (test/fixtures), so a fresh clone has it.
describe('linux-udp-port-unreachable.pcap', () => {
  const fixture = new URL('../../../test/fixtures/linux-udp-port-unreachable.pcap', import.meta.url);

  // Every UDP datagram in the capture: the one on the wire, and the one the ICMP error quotes.
  function datagrams(): { ip: Ipv4Packet; udp: Uint8Array; quoted: boolean }[] {
    const out: { ip: Ipv4Packet; udp: Uint8Array; quoted: boolean }[] = [];
    for (const { frame } of readPcap(new Uint8Array(readFileSync(fixture)))) {
      const eth = new EthernetFrame(frame);
      if (eth.etherType !== EtherType.IPV4) continue;
      const r = Ipv4Packet.check(eth.payload);
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      const ip = r.value;
      const payload = ip.bytes.subarray(ip.headerLength);
      if (ip.protocol === 17) out.push({ ip, udp: payload, quoted: false });
      if (ip.protocol === 1 && payload[0] === 3) {
        const inner = Ipv4Packet.check(payload.subarray(8));
        expect(inner.ok).toBe(true);
        if (inner.ok) out.push({ ip: inner.value, udp: inner.value.bytes.subarray(inner.value.headerLength), quoted: true });
      }
    }
    return out;
  }

  it('holds the datagram to port 9 and its quote in the port unreachable', () => {
    const all = datagrams();
    expect(all.map((d) => d.quoted)).toEqual([false, true]);
    for (const { ip, udp } of all) {
      expect(ip.source).toBe(A);
      expect(ip.destination).toBe(B);
      expect(Array.from(udp)).toEqual(Array.from(FIXTURE_DATAGRAM));
    }
  });

  it('parses each datagram and re-emits it byte for byte (the checksum as the kernel offloaded it)', () => {
    for (const { ip, udp } of datagrams()) {
      const r = UdpPacket.check(udp);
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      const packet = r.value;
      const repr = UdpRepr.parse(packet, ip.source as Ipv4Address, ip.destination as Ipv4Address, { verifyChecksum: false });
      expect(repr).toEqual({ ok: true, value: { sourcePort: 45645, destinationPort: 9, payloadLength: 3 } });
      if (!repr.ok) continue;
      const out = new Uint8Array(UdpRepr.bufferLength(repr.value));
      UdpRepr.emit(repr.value, out, ip.source as Ipv4Address, ip.destination as Ipv4Address, packet.payload);
      // Header and data are the kernel's, byte for byte; the checksum is the full one.
      expect(Array.from(out.subarray(0, 6))).toEqual(Array.from(udp.subarray(0, 6)));
      expect(Array.from(out.subarray(8))).toEqual(Array.from(udp.subarray(8)));
      expect(Array.from(out)).toEqual(Array.from(DATAGRAM));
      // The veth had checksum offload: the kernel wrote only the (uncomplemented) pseudo-header
      // sum and left the rest to "hardware" that a veth does not have. A TAP device without
      // offloads gets full checksums. So the field is the folded pseudo-header sum, and the
      // datagram fails a real verification.
      expect(packet.checksum).toBe(0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 17 + 11);
      expect(packet.verifyChecksum(A, B)).toBe(false);
      out.set(udp.subarray(6, 8), 6);
      expect(Array.from(out)).toEqual(Array.from(udp));
    }
  });
});

describe('properties', () => {
  const address = fc.integer({ min: 0, max: 0xffffffff }).map((n) => n as Ipv4Address);
  const port = fc.integer({ min: 0, max: 65535 });

  it('emit then parse gives the same Repr, and the checksum verifies', () => {
    fc.assert(
      fc.property(port, port, fc.uint8Array({ maxLength: 2000 }), address, address, (sp, dp, payload, src, dst) => {
        const d = buildUdpDatagram(sp, dp, payload, src, dst);
        const r = UdpPacket.check(d);
        expect(r.ok).toBe(true);
        if (!r.ok) return;
        expect(r.value.checksum).not.toBe(0);
        expect(UdpRepr.parse(r.value, src, dst)).toEqual({
          ok: true,
          value: { sourcePort: sp, destinationPort: dp, payloadLength: payload.length },
        });
        expect(Array.from(r.value.payload)).toEqual(Array.from(payload));
      }),
    );
  });

  it('any single flipped bit in ports or data fails the checksum', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), address, address, fc.nat(), fc.integer({ min: 0, max: 7 }), (payload, src, dst, at, bit) => {
        const d = buildUdpDatagram(1234, 5678, payload, src, dst);
        const positions = [0, 1, 2, 3, ...Array.from({ length: payload.length }, (_, i) => 8 + i)];
        const i = positions[at % positions.length]!;
        d[i] = d[i]! ^ (1 << bit);
        expect(new UdpPacket(d).verifyChecksum(src, dst)).toBe(false);
      }),
    );
  });

  it('random bytes never throw in check, parse or format', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), address, address, (bytes, src, dst) => {
        const r = UdpPacket.check(bytes);
        if (r.ok) {
          expect(r.value.bytes.length).toBe(r.value.length);
          UdpRepr.parse(r.value, src, dst);
        } else {
          expect(['truncated', 'bad_length', 'length_exceeds_payload']).toContain(r.reason);
        }
        expect(typeof formatUdp(bytes, src, dst)).toBe('string');
      }),
    );
  });
});
