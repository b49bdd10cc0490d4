import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IcmpPacket, IcmpRepr, formatIcmp, isIcmpErrorType, quoteDatagram } from '../src/packet.ts';
import { allIpv4Frames, hex } from '../../../test/support/fixtures.ts';

// From linux-ping-odd-sizes.pcap: the 0-byte echo request and the kernel's reply.
const REQUEST = hex('0800d35f249f0001');
const REPLY = hex('0000db5f249f0001');
// From linux-udp-port-unreachable.pcap: the kernel's port unreachable quoting "hi\n" to port 9.
const PORT_UNREACHABLE = hex('0303c41200000000 4500001f711c4000 4011b5af0a000001 0a000002b24d0009 000b141f68690a');

describe('IcmpPacket and IcmpRepr', () => {
  it('deconstructs the kernel echo request and reply', () => {
    const q = new IcmpPacket(REQUEST);
    expect([q.type, q.code, q.checksum, q.identifier, q.sequenceNumber]).toEqual([8, 0, 0xd35f, 0x249f, 1]);
    expect(q.verifyChecksum()).toBe(true);
    expect(IcmpRepr.parse(q)).toEqual({ ok: true, value: { kind: 'echo-request', identifier: 0x249f, sequence: 1, data: new Uint8Array(0) } });
    const r = IcmpRepr.parse(new IcmpPacket(REPLY));
    expect(r.ok && r.value.kind).toBe('echo-reply');
  });

  it('constructs the same bytes the kernel sent', () => {
    expect(IcmpRepr.build({ kind: 'echo-request', identifier: 0x249f, sequence: 1, data: new Uint8Array(0) })).toEqual(REQUEST);
    expect(IcmpRepr.build({ kind: 'echo-reply', identifier: 0x249f, sequence: 1, data: new Uint8Array(0) })).toEqual(REPLY);
    const quoted = PORT_UNREACHABLE.subarray(8);
    expect(IcmpRepr.build({ kind: 'destination-unreachable', code: 3, nextHopMtu: 0, quoted })).toEqual(PORT_UNREACHABLE);
  });

  it('deconstructs the port unreachable and its quote', () => {
    const r = IcmpRepr.parse(new IcmpPacket(PORT_UNREACHABLE));
    expect(r.ok).toBe(true);
    if (!r.ok || r.value.kind !== 'destination-unreachable') throw new Error('wrong kind');
    expect(r.value.code).toBe(3);
    expect(r.value.quoted.length).toBe(31);
    expect(quoteDatagram(r.value.quoted).length).toBe(28);
  });

  it('parses and re-emits every ICMP message in the Linux fixtures byte for byte, odd sizes included', () => {
    let seen = 0;
    for (const { file, index, frame } of allIpv4Frames()) {
      const ip = frame.subarray(14);
      if (ip[9] !== 1 || (((ip[6]! << 8) | ip[7]!) & 0x3fff) !== 0) continue; // whole ICMP datagrams only
      const icmp = ip.subarray((ip[0]! & 15) * 4, (ip[2]! << 8) | ip[3]!);
      const p = IcmpPacket.check(icmp);
      expect(p.ok, `${file}#${index + 1}`).toBe(true);
      if (!p.ok) continue;
      expect(p.value.verifyChecksum(), `${file}#${index + 1}`).toBe(true);
      const r = IcmpRepr.parse(p.value);
      expect(r.ok, `${file}#${index + 1}`).toBe(true);
      if (!r.ok) continue;
      expect(IcmpRepr.build(r.value), `${file}#${index + 1}`).toEqual(icmp);
      seen++;
    }
    expect(seen).toBeGreaterThanOrEqual(11); // 4 + 6 echo + 1 unreachable
  });

  it('refuses short messages, unknown types and impossible codes', () => {
    expect(IcmpPacket.check(REQUEST.subarray(0, 7))).toEqual({ ok: false, reason: 'truncated' });
    expect(IcmpRepr.parse(new IcmpPacket(hex('0d00000000000000')))).toEqual({ ok: false, reason: 'unsupported_type' });
    expect(IcmpRepr.parse(new IcmpPacket(hex('0801000000000000')))).toEqual({ ok: false, reason: 'bad_code' });
    expect(IcmpRepr.parse(new IcmpPacket(hex('0b02000000000000')))).toEqual({ ok: false, reason: 'bad_code' });
  });

  it('classifies error types the way Linux does (unknown counts as error)', () => {
    expect([0, 8, 13, 14].map(isIcmpErrorType)).toEqual([false, false, false, false]);
    expect([3, 4, 5, 11, 12, 42, 255].map(isIcmpErrorType)).toEqual([true, true, true, true, true, true, true]);
  });

  it('formats one line like tcpdump', () => {
    expect(formatIcmp(REQUEST)).toBe('ICMP echo request, id 9375, seq 1, length 8');
    expect(formatIcmp(PORT_UNREACHABLE)).toBe('ICMP port unreachable, length 39');
    const bad = REQUEST.slice();
    bad[7] = 2;
    expect(formatIcmp(bad)).toBe('ICMP echo request, id 9375, seq 2, length 8 (bad cksum)');
  });

  it('emit then parse gives the same Repr with a valid checksum (property)', () => {
    const arb = fc.oneof(
      fc.record({
        kind: fc.constantFrom('echo-request' as const, 'echo-reply' as const),
        identifier: fc.nat({ max: 0xffff }),
        sequence: fc.nat({ max: 0xffff }),
        data: fc.uint8Array({ maxLength: 1500 }),
      }),
      fc.record({
        kind: fc.constant('destination-unreachable' as const),
        code: fc.nat({ max: 15 }),
        nextHopMtu: fc.nat({ max: 0xffff }),
        quoted: fc.uint8Array({ maxLength: 60 }),
      }),
      fc.record({ kind: fc.constant('time-exceeded' as const), code: fc.nat({ max: 1 }), quoted: fc.uint8Array({ maxLength: 60 }) }),
    );
    fc.assert(
      fc.property(arb, (repr: IcmpRepr) => {
        const bytes = IcmpRepr.build(repr);
        const p = new IcmpPacket(bytes);
        expect(p.verifyChecksum()).toBe(true);
        expect(IcmpRepr.parse(p)).toEqual({ ok: true, value: repr });
      }),
    );
  });

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const c = IcmpPacket.check(bytes);
        if (c.ok) IcmpRepr.parse(c.value);
        formatIcmp(bytes);
      }),
      { numRuns: 3000 },
    );
  });
});
