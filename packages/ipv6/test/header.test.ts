import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { internetChecksum } from '@tapstack/ipv4';
import { ipv6 } from '@tapstack/link';
import { hex } from '../../../test/support/fixtures.ts';
import { ipv6PseudoHeaderSum, ipv6PseudoHeaderSumAt, ipv6UpperLayerChecksum } from '../src/checksum.ts';
import { formatIpv6Packet, IPV6_HEADER_LENGTH, IpNextHeader, Ipv6Packet, Ipv6Repr } from '../src/header.ts';
import { allIpv6Frames } from './fixtures.ts';

/** The kernel's first echo request of linux-ipv6-ping.pcap (frame 3), from the IPv6 header on: flow label 0x76fa1. */
const ECHO_REQUEST = hex(`
  6007 6fa1 0040 3a40 fd00 0010 0000 0000 0000 0000 0000 0001 fd00 0010 0000 0000
  0000 0000 0000 0002 8000 2631 481e 0001 ed4c 126b 0000 0000 5885 0000 0000 0000
  1011 1213 1415 1617 1819 1a1b 1c1d 1e1f 2021 2223 2425 2627 2829 2a2b 2c2d 2e2f
  3031 3233 3435 3637`);

describe('Ipv6Packet (view)', () => {
  it('deconstructs the kernel echo request field by field', () => {
    const r = Ipv6Packet.check(ECHO_REQUEST);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const p = r.value;
    expect(p.version).toBe(6);
    expect(p.trafficClass).toBe(0);
    expect(p.flowLabel).toBe(0x76fa1);
    expect(p.payloadLength).toBe(64);
    expect(p.nextHeader).toBe(IpNextHeader.ICMPV6);
    expect(p.hopLimit).toBe(64);
    expect(p.source.toString()).toBe('fd00:10::1');
    expect(p.destination.toString()).toBe('fd00:10::2');
    expect(p.destinationIsMulticast).toBe(false);
    expect(p.payload.length).toBe(64);
    expect([...p.payload.subarray(0, 4)]).toEqual([0x80, 0x00, 0x26, 0x31]);
  });

  it('reads traffic class and flow label across their nibble boundaries', () => {
    const b = ECHO_REQUEST.slice();
    b[0] = 0x6a; // traffic class high nibble a
    b[1] = 0xb1; // low nibble b, flow label top nibble 1
    const p = new Ipv6Packet(b);
    expect(p.trafficClass).toBe(0xab);
    expect(p.flowLabel).toBe(0x16fa1);
  });

  it('refuses what is not a packet, by reason, without throwing', () => {
    expect(Ipv6Packet.check(ECHO_REQUEST.subarray(0, 39))).toEqual({ ok: false, reason: 'truncated' });
    const v4 = ECHO_REQUEST.slice();
    v4[0] = 0x40;
    expect(Ipv6Packet.check(v4)).toEqual({ ok: false, reason: 'bad_version' });
    expect(Ipv6Packet.check(ECHO_REQUEST.subarray(0, 103))).toEqual({ ok: false, reason: 'bad_payload_length' });
    // A quote may be cut short: checkHeader only wants the 40 bytes.
    expect(Ipv6Packet.checkHeader(ECHO_REQUEST.subarray(0, 50)).ok).toBe(true);
    expect(Ipv6Packet.checkHeader(ECHO_REQUEST.subarray(0, 39))).toEqual({ ok: false, reason: 'truncated' });
  });

  it('ignores Ethernet padding after the payload length, and checks in place at an offset', () => {
    const frame = new Uint8Array(14 + ECHO_REQUEST.length + 6);
    frame.set(ECHO_REQUEST, 14);
    const r = Ipv6Packet.check(frame, { offset: 14 });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.bytes).toEqual(ECHO_REQUEST);
    expect(r.value.payload.length).toBe(64);
    expect(r.value.sourceOffset).toBe(22);
  });

  it('writes through its setters', () => {
    const p = new Ipv6Packet(ECHO_REQUEST.slice());
    p.hopLimit = 255;
    p.source = ipv6('fe80::1');
    p.destination = ipv6('ff02::1');
    p.payloadLength = 0x1234;
    p.nextHeader = 59;
    expect(p.hopLimit).toBe(255);
    expect(p.source.toString()).toBe('fe80::1');
    expect(p.destinationIsMulticast).toBe(true);
    expect(p.payloadLength).toBe(0x1234);
    expect(p.nextHeader).toBe(59);
  });
});

describe('Ipv6Repr', () => {
  it('parses and emits the kernel header byte for byte', () => {
    const r = Ipv6Packet.check(ECHO_REQUEST);
    if (!r.ok) throw new Error(r.reason);
    const repr = Ipv6Repr.parse(r.value);
    expect(repr).toMatchObject({ nextHeader: 58, hopLimit: 64, trafficClass: 0, flowLabel: 0x76fa1, payloadLength: 64 });
    expect(Ipv6Repr.bufferLength(repr)).toBe(104);
    const out = Ipv6Repr.build(repr, r.value.payload);
    expect(out).toEqual(ECHO_REQUEST);
  });

  it('emit then parse gives the same Repr (property)', () => {
    const address = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => ipv6(formatBytes(b)));
    fc.assert(
      fc.property(
        address,
        address,
        fc.nat({ max: 255 }),
        fc.nat({ max: 255 }),
        fc.nat({ max: 255 }),
        fc.nat({ max: 0xfffff }),
        fc.nat({ max: 300 }),
        (source, destination, nextHeader, hopLimit, trafficClass, flowLabel, payloadLength) => {
          const repr: Ipv6Repr = { source, destination, nextHeader, hopLimit, trafficClass, flowLabel, payloadLength };
          const out = new Uint8Array(Ipv6Repr.bufferLength(repr));
          Ipv6Repr.emit(repr, out);
          const r = Ipv6Packet.check(out);
          if (!r.ok) return false;
          const back = Ipv6Repr.parse(r.value);
          expect(back).toMatchObject({ nextHeader, hopLimit, trafficClass, flowLabel, payloadLength });
          return back.source.equals(source) && back.destination.equals(destination);
        },
      ),
    );
  });

  it('refuses a payload longer than the 16-bit field', () => {
    const repr: Ipv6Repr = { source: ipv6('::1'), destination: ipv6('::1'), nextHeader: 59, hopLimit: 1, trafficClass: 0, flowLabel: 0, payloadLength: 65536 };
    expect(() => Ipv6Repr.emit(repr, new Uint8Array(65576))).toThrow(RangeError);
  });
});

describe('the upper-layer checksum over the pseudo-header (RFC 8200 8.1)', () => {
  it('verifies the kernel ICMPv6 checksum and recomputes it', () => {
    const p = new Ipv6Packet(ECHO_REQUEST);
    const message = p.payload;
    expect(ipv6UpperLayerChecksum(p.source, p.destination, 58, message)).toBe(0);
    const zeroed = message.slice();
    zeroed[2] = 0;
    zeroed[3] = 0;
    expect(ipv6UpperLayerChecksum(p.source, p.destination, 58, zeroed)).toBe(0x2631);
    // Read in place: the same sum without making addresses.
    const atSum = ipv6PseudoHeaderSumAt(ECHO_REQUEST, 8, 58, 64);
    expect(atSum).toBe(ipv6PseudoHeaderSum(p.source, p.destination, 58, 64));
    expect(internetChecksum(ECHO_REQUEST, atSum, 40)).toBe(0);
    // Any change to what the pseudo-header covers breaks it.
    expect(ipv6UpperLayerChecksum(p.source, ipv6('fd00:10::3'), 58, message)).not.toBe(0);
    expect(ipv6UpperLayerChecksum(p.source, p.destination, 17, message)).not.toBe(0);
  });

  it('carries a length above 16 bits into the sum (the field is 32 bits)', () => {
    const a = ipv6('::');
    expect(ipv6PseudoHeaderSum(a, a, 0, 0x10001)).toBe(2);
  });
});

describe('every kernel-written frame of the IPv6 fixtures', () => {
  const frames = allIpv6Frames();
  it('has some', () => expect(frames.length).toBeGreaterThan(40));
  for (const f of frames) {
    it(`${f.file} #${f.index}: checks, and re-emits its header byte for byte`, () => {
      const r = Ipv6Packet.check(f.frame, { offset: 14 });
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(r.value.bytes.length).toBe(f.packet.length);
      const out = new Uint8Array(IPV6_HEADER_LENGTH);
      Ipv6Repr.emit(Ipv6Repr.parse(r.value), out);
      expect(out).toEqual(f.packet.subarray(0, IPV6_HEADER_LENGTH));
    });
  }
});

describe('formatIpv6Packet', () => {
  it('prints the addresses and the next header like tcpdump', () => {
    expect(formatIpv6Packet(ECHO_REQUEST)).toBe('IP6 fd00:10::1 > fd00:10::2: ICMPv6, length 64');
    expect(formatIpv6Packet(ECHO_REQUEST, () => 'ICMP6, echo request')).toBe('IP6 fd00:10::1 > fd00:10::2: ICMP6, echo request');
    expect(formatIpv6Packet(ECHO_REQUEST.subarray(0, 12))).toBe('IP6 [truncated, length 12]');
  });

  it('prints an IPv4-mapped source dotted, as tcpdump does (RFC 5952 5)', () => {
    const mapped = ECHO_REQUEST.slice();
    mapped.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1], 8);
    expect(formatIpv6Packet(mapped)).toBe('IP6 ::ffff:10.0.0.1 > fd00:10::2: ICMPv6, length 64');
  });

  it('never throws on random bytes or truncations', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), (b) => typeof formatIpv6Packet(b) === 'string'));
    for (let n = 0; n <= ECHO_REQUEST.length; n++) expect(typeof formatIpv6Packet(ECHO_REQUEST.subarray(0, n))).toBe('string');
  });
});

function formatBytes(b: Uint8Array): string {
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return words.join(':');
}
