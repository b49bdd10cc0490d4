import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Ipv6Packet } from '@tapstack/ipv6';
import { ipv6 } from '@tapstack/link';
import { hex } from '../../../test/support/fixtures.ts';
import { formatIcmpv6, formatIpv6Datagram } from '../src/format.ts';
import { ICMPV6_ERROR_QUOTE_MAX, Icmpv6Packet, Icmpv6Repr, Icmpv6Type, isIcmpv6ErrorType, quoteInvokingPacket } from '../src/packet.ts';

const A = ipv6('fd00:10::1');
const B = ipv6('fd00:10::2');

/** linux-ipv6-ping.pcap frame 3, the IPv6 packet: the kernel's echo request, id 18462 seq 1. */
const ECHO_REQUEST_PACKET = hex(`
  6007 6fa1 0040 3a40 fd00 0010 0000 0000 0000 0000 0000 0001 fd00 0010 0000 0000
  0000 0000 0000 0002 8000 2631 481e 0001 ed4c 126b 0000 0000 5885 0000 0000 0000
  1011 1213 1415 1617 1819 1a1b 1c1d 1e1f 2021 2223 2425 2627 2829 2a2b 2c2d 2e2f
  3031 3233 3435 3637`);
const ECHO_REQUEST = ECHO_REQUEST_PACKET.subarray(40);

/** linux-ipv6-udp-port-unreachable.pcap frame 3: the kernel's port unreachable quoting a 5-byte UDP datagram. */
const PORT_UNREACHABLE_PACKET = hex(`
  6008 3857 003d 3a40 fd00 0010 0000 0000 0000 0000 0000 0002 fd00 0010 0000 0000
  0000 0000 0000 0001 0104 03d1 0000 0000 600a cd18 000d 1140 fd00 0010 0000 0000
  0000 0000 0000 0001 fd00 0010 0000 0000 0000 0000 0000 0002 89ce 0009 000d fa42
  6865 6c6c 6f`);
const PORT_UNREACHABLE = PORT_UNREACHABLE_PACKET.subarray(40);

/** Packet too big (MTU 1280) from A to B quoting the first 48 bytes of the echo request; checksum 0x0bca computed by a separate script. */
const PACKET_TOO_BIG = hex(`
  0200 0bca 0000 0500 6007 6fa1 0040 3a40 fd00 0010 0000 0000 0000 0000 0000 0001
  fd00 0010 0000 0000 0000 0000 0000 0002 8000 2631 481e 0001`);
/** Parameter problem code 1 (unrecognized next header), pointer 6, same quote; checksum 0x0ec3 by the same script. */
const PARAMETER_PROBLEM = hex(`
  0401 0ec3 0000 0006 6007 6fa1 0040 3a40 fd00 0010 0000 0000 0000 0000 0000 0001
  fd00 0010 0000 0000 0000 0000 0000 0002 8000 2631 481e 0001`);

function parse(bytes: Uint8Array): Icmpv6Repr {
  const c = Icmpv6Packet.check(bytes);
  if (!c.ok) throw new Error(c.reason);
  const r = Icmpv6Repr.parse(c.value);
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

describe('Icmpv6Packet (view)', () => {
  it('deconstructs the kernel echo request and verifies its checksum over the pseudo-header', () => {
    const c = Icmpv6Packet.check(ECHO_REQUEST);
    expect(c.ok).toBe(true);
    if (!c.ok) return;
    const p = c.value;
    expect(p.type).toBe(Icmpv6Type.ECHO_REQUEST);
    expect(p.code).toBe(0);
    expect(p.checksum).toBe(0x2631);
    expect(p.identifier).toBe(18462);
    expect(p.sequenceNumber).toBe(1);
    expect(p.data.length).toBe(56);
    expect(p.verifyChecksum(A, B)).toBe(true);
    expect(p.verifyChecksum(B, ipv6('fd00:10::3'))).toBe(false);
  });

  it('refuses fewer than 8 bytes', () => {
    expect(Icmpv6Packet.check(ECHO_REQUEST.subarray(0, 7))).toEqual({ ok: false, reason: 'truncated' });
  });

  it('fills a checksum the kernel would accept', () => {
    const copy = ECHO_REQUEST.slice();
    copy[2] = 0xde;
    copy[3] = 0xad;
    const p = new Icmpv6Packet(copy);
    p.fillChecksum(A, B);
    expect(copy).toEqual(ECHO_REQUEST);
  });
});

describe('Icmpv6Repr', () => {
  it('parses and re-emits the kernel echo request byte for byte', () => {
    const repr = parse(ECHO_REQUEST);
    expect(repr).toMatchObject({ kind: 'echo-request', identifier: 18462, sequence: 1 });
    expect(Icmpv6Repr.build(repr, A, B)).toEqual(ECHO_REQUEST);
  });

  it('parses and re-emits the kernel port unreachable, whose quote is the whole UDP datagram', () => {
    const repr = parse(PORT_UNREACHABLE);
    expect(repr.kind).toBe('destination-unreachable');
    if (repr.kind !== 'destination-unreachable') return;
    expect(repr.code).toBe(4);
    expect(repr.invoking.length).toBe(53);
    const quoted = Ipv6Packet.check(repr.invoking);
    expect(quoted.ok && quoted.value.nextHeader).toBe(17);
    expect(Icmpv6Repr.build(repr, B, A)).toEqual(PORT_UNREACHABLE);
  });

  it('emits packet too big and parameter problem as the literal bytes (checksums from an independent script)', () => {
    const invoking = ECHO_REQUEST_PACKET.subarray(0, 48);
    expect(Icmpv6Repr.build({ kind: 'packet-too-big', mtu: 1280, invoking }, A, B)).toEqual(PACKET_TOO_BIG);
    expect(Icmpv6Repr.build({ kind: 'parameter-problem', code: 1, pointer: 6, invoking }, A, B)).toEqual(PARAMETER_PROBLEM);
    expect(parse(PACKET_TOO_BIG)).toMatchObject({ kind: 'packet-too-big', mtu: 1280 });
    expect(parse(PARAMETER_PROBLEM)).toMatchObject({ kind: 'parameter-problem', code: 1, pointer: 6 });
    expect(new Icmpv6Packet(PACKET_TOO_BIG).verifyChecksum(A, B)).toBe(true);
  });

  it('round-trips time exceeded and every unreachable code', () => {
    const invoking = ECHO_REQUEST_PACKET;
    for (const code of [0, 1]) expect(parse(Icmpv6Repr.build({ kind: 'time-exceeded', code, invoking }, A, B))).toEqual({ kind: 'time-exceeded', code, invoking });
    for (let code = 0; code <= 6; code++) {
      const bytes = Icmpv6Repr.build({ kind: 'destination-unreachable', code, invoking }, A, B);
      expect(bytes[1]).toBe(code);
      expect(parse(bytes)).toEqual({ kind: 'destination-unreachable', code, invoking });
    }
  });

  it('refuses an echo with a non-zero code, and types that are not RFC 4443 messages', () => {
    const bad = ECHO_REQUEST.slice();
    bad[1] = 1;
    expect(Icmpv6Repr.parse(new Icmpv6Packet(bad))).toEqual({ ok: false, reason: 'bad_code' });
    const ns = ECHO_REQUEST.slice();
    ns[0] = Icmpv6Type.NEIGHBOR_SOLICITATION;
    expect(Icmpv6Repr.parse(new Icmpv6Packet(ns))).toEqual({ ok: false, reason: 'unsupported_type' });
  });

  it('emit then parse gives the same Repr (property)', () => {
    const repr = fc.oneof(
      fc.record({ kind: fc.constantFrom('echo-request' as const, 'echo-reply' as const), identifier: fc.nat({ max: 0xffff }), sequence: fc.nat({ max: 0xffff }), data: fc.uint8Array({ maxLength: 100 }) }),
      fc.record({ kind: fc.constant('packet-too-big' as const), mtu: fc.nat({ max: 0xffffffff }), invoking: fc.uint8Array({ maxLength: 100 }) }),
      fc.record({ kind: fc.constant('parameter-problem' as const), code: fc.nat({ max: 255 }), pointer: fc.nat({ max: 0xffffffff }), invoking: fc.uint8Array({ maxLength: 100 }) }),
    );
    fc.assert(
      fc.property(repr, (r) => {
        const bytes = Icmpv6Repr.build(r, A, B);
        expect(new Icmpv6Packet(bytes).verifyChecksum(A, B)).toBe(true);
        expect(parse(bytes)).toEqual(r);
      }),
    );
  });
});

describe('the invoking-packet quote (RFC 4443 2.4 c)', () => {
  it("is what the kernel's router quoted in its packet too big: 1232 bytes of the 1448-byte packet", async () => {
    const { ipv6FixtureFrames } = await import('../../ipv6/test/fixtures.ts');
    const frames = ipv6FixtureFrames('linux-ipv6-router-ptb-redirect.pcap');
    const big = frames.find((f) => f.packet.length === 1448)!.packet;
    const ptbPacket = frames.find((f) => f.packet[40] === 2)!.packet;
    expect(ptbPacket.length).toBe(1280);
    const ptb = parse(ptbPacket.subarray(40));
    expect(ptb).toMatchObject({ kind: 'packet-too-big', mtu: 1280 });
    if (ptb.kind !== 'packet-too-big') return;
    expect(ptb.invoking).toEqual(quoteInvokingPacket(big));
    const ip = Ipv6Packet.check(ptbPacket);
    if (!ip.ok) throw new Error(ip.reason);
    expect(Icmpv6Repr.build({ kind: 'packet-too-big', mtu: 1280, invoking: quoteInvokingPacket(big) }, ip.value.source, ip.value.destination)).toEqual(ptbPacket.subarray(40));
  });

  it('keeps the error within 1280 bytes', () => {
    expect(ICMPV6_ERROR_QUOTE_MAX).toBe(1232);
    const big = new Uint8Array(4000);
    expect(quoteInvokingPacket(big).length).toBe(1232);
    expect(quoteInvokingPacket(big, 8).length).toBe(1224);
    expect(quoteInvokingPacket(ECHO_REQUEST_PACKET)).toEqual(ECHO_REQUEST_PACKET);
    expect(isIcmpv6ErrorType(4)).toBe(true);
    expect(isIcmpv6ErrorType(128)).toBe(false);
  });
});

describe('formatIcmpv6 and formatIpv6Datagram', () => {
  it('print one tcpdump-like line', () => {
    expect(formatIpv6Datagram(ECHO_REQUEST_PACKET)).toBe('IP6 fd00:10::1 > fd00:10::2: ICMP6, echo request, id 18462, seq 1, length 64');
    expect(formatIpv6Datagram(PORT_UNREACHABLE_PACKET)).toBe(
      'IP6 fd00:10::2 > fd00:10::1: ICMP6, destination unreachable, port unreachable, to fd00:10::2, length 61',
    );
    expect(formatIcmpv6(PACKET_TOO_BIG, A, B)).toBe('ICMP6, packet too big, mtu 1280, length 56');
    expect(formatIcmpv6(PACKET_TOO_BIG, A, ipv6('fd00:10::3'))).toBe('ICMP6, packet too big, mtu 1280, length 56 (bad cksum)');
    expect(formatIcmpv6(PARAMETER_PROBLEM)).toBe('ICMP6, parameter problem, unrecognized next header at octet 6, length 56');
    expect(formatIcmpv6(ECHO_REQUEST.subarray(0, 3))).toBe('ICMP6 [truncated, length 3]');
  });
});

describe('formatIpv6Datagram with an upper-layer describer (the --trace of UDP over IPv6)', () => {
  it('lets the describer print addresses with ports, like tcpdump; ICMPv6 and unknown next headers stay as they were', async () => {
    const { allIpv6Frames } = await import('../../ipv6/test/fixtures.ts');
    const udp = (nextHeader: number, m: Uint8Array, s: { toString(): string }, d: { toString(): string }): string | undefined =>
      nextHeader === 17 ? `${s}.${(m[0]! << 8) | m[1]!} > ${d}.${(m[2]! << 8) | m[3]!}: UDP, length ${m.length - 8}` : undefined;
    const lines = allIpv6Frames().map((f) => formatIpv6Datagram(f.packet, udp));
    expect(lines).toContain('IP6 fd00:10::1.35278 > fd00:10::2.9: UDP, length 5');
    expect(lines).not.toContain('IP6 fd00:10::1 > fd00:10::2: UDP, length 13');
    expect(formatIpv6Datagram(ECHO_REQUEST_PACKET, udp)).toBe('IP6 fd00:10::1 > fd00:10::2: ICMP6, echo request, id 18462, seq 1, length 64');
  });
});

describe('formatIpv6Datagram over every frame of the Linux captures', () => {
  it('prints what tcpdump prints (its words, without the options of RA)', async () => {
    const { allIpv6Frames } = await import('../../ipv6/test/fixtures.ts');
    const lines = allIpv6Frames().map((f) => formatIpv6Datagram(f.packet));
    expect(lines.filter((l) => /^IP6 fd00:10::1 > fd00:10::2: frag \(0\|1448\) ICMP6, echo request, id \d+, seq 1, length 1448$/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => /^IP6 fd00:10::[12] > fd00:10::[12]: frag \((1448|2896)\|(1448|1112)\)$/.test(l))).toHaveLength(4);
    expect(lines).toContain('IP6 fe80::ff:fe00:b02 > ff02::16: HBH ICMP6, multicast listener report v2, 1 group record(s) [gaddr ff02::1:ff00:b02 to_ex, 0 source(s)], length 28');
    expect(lines).toContain('IP6 :: > ff02::1:ff00:2: ICMP6, neighbor solicitation, who has fd00:10::2, length 32');
    expect(lines).toContain('IP6 fd00:10::1 > fd00:10::2: UDP, length 13');
    expect(lines.filter((l) => l.includes('bad cksum') || /\[\w+_\w+\]/.test(l))).toEqual([]);
  });
});
