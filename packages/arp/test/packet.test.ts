import { MacAddress, ipv4, ipv4FromNumber, type Ipv4Address } from '@tapstack/link';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ARP_PACKET_LENGTH,
  ArpPacket,
  ArpRepr,
  buildArpFrame,
  formatArp,
  isArpProbe,
  isGratuitousArp,
  type ArpRepr as ArpReprType,
} from '../src/index.ts';
import { readFixture as fixture, hex } from '../../../test/support/fixtures.ts';

// The kernel's request from linux-arp-and-ping.pcap, written out by hand from `tcpdump -x`.
const REQUEST = hex('0001 0800 0604 0001 0200 0000 0a01 0a00 0001 0000 0000 0000 0a00 0002');
const REPLY = hex('0001 0800 0604 0002 0200 0000 0b02 0a00 0002 0200 0000 0a01 0a00 0001');
const MAC_A = MacAddress.parse('02:00:00:00:0a:01');
const MAC_B = MacAddress.parse('02:00:00:00:0b:02');

function mustParse(bytes: Uint8Array): ArpReprType {
  const r = ArpRepr.parseBytes(bytes);
  if (!r.ok) throw new Error(`parse failed: ${r.reason}`);
  return r.value;
}

describe('ArpPacket view', () => {
  it('reads every field of a literal request', () => {
    const checked = ArpPacket.check(REQUEST);
    expect(checked.ok).toBe(true);
    if (!checked.ok) return;
    const p = checked.value;
    expect(p.hardwareType).toBe(1);
    expect(p.protocolType).toBe(0x0800);
    expect(p.hardwareLength).toBe(6);
    expect(p.protocolLength).toBe(4);
    expect(p.opcode).toBe(1);
    expect(p.senderMac?.toString()).toBe('02:00:00:00:0a:01');
    expect(p.senderIp).toBe(0x0a000001);
    expect(p.targetMac?.isZero).toBe(true);
    expect(p.targetIp).toBe(0x0a000002);
  });

  it('writes fields in place through the setters', () => {
    const bytes = REQUEST.slice();
    const p = new ArpPacket(bytes);
    p.opcode = 2;
    p.senderMac = MAC_B;
    p.senderIp = ipv4('10.0.0.2');
    p.targetMac = MAC_A;
    p.targetIp = ipv4('10.0.0.1');
    expect([...bytes]).toEqual([...REPLY]);
  });
});

describe('ArpRepr', () => {
  it('parses the literal request and reply', () => {
    expect(mustParse(REQUEST)).toEqual({
      operation: 'request',
      senderMac: MAC_A,
      senderIp: ipv4('10.0.0.1'),
      targetMac: MacAddress.ZERO,
      targetIp: ipv4('10.0.0.2'),
    });
    const reply = mustParse(REPLY);
    expect(reply.operation).toBe('reply');
    expect(reply.senderMac.equals(MAC_B)).toBe(true);
    expect(reply.targetMac.equals(MAC_A)).toBe(true);
  });

  it('emits the literal bytes', () => {
    const buf = new Uint8Array(ARP_PACKET_LENGTH);
    ArpRepr.emit(
      { operation: 'reply', senderMac: MAC_B, senderIp: ipv4('10.0.0.2'), targetMac: MAC_A, targetIp: ipv4('10.0.0.1') },
      buf,
    );
    expect([...buf]).toEqual([...REPLY]);
    expect(ArpRepr.bufferLength(mustParse(REPLY))).toBe(28);
  });

  it('builds a whole frame', () => {
    const f = buildArpFrame(MacAddress.BROADCAST, MAC_A, mustParse(REQUEST));
    expect(f.length).toBe(42);
    expect([...f.subarray(0, 14)]).toEqual([...hex('ffffffffffff 020000000a01 0806')]);
    expect([...f.subarray(14)]).toEqual([...REQUEST]);
  });

  it('integrity: fewer than 8 bytes is truncated_header', () => {
    expect(ArpPacket.check(REQUEST.subarray(0, 7))).toEqual({ ok: false, reason: 'truncated_header' });
    expect(ArpPacket.check(new Uint8Array(0))).toEqual({ ok: false, reason: 'truncated_header' });
  });

  it('integrity: fewer bytes than hlen/plen declare is truncated_addresses', () => {
    expect(ArpPacket.check(REQUEST.subarray(0, 27))).toEqual({ ok: false, reason: 'truncated_addresses' });
    const big = REQUEST.slice();
    big[4] = 16; // hlen 16: 8 + 2 * 20 = 48 bytes needed
    expect(ArpPacket.check(big)).toEqual({ ok: false, reason: 'truncated_addresses' });
  });

  it('sanity: each field value we do not speak has its own reason', () => {
    // [byte index, new value, reason]
    const cases: [number, number, string][] = [
      [1, 6, 'bad_htype'], // htype 6 (IEEE 802)
      [2, 0x86, 'bad_ptype'], // ptype 0x8600
      [7, 3, 'bad_opcode'], // RARP request
      [7, 0, 'bad_opcode'],
    ];
    for (const [index, value, reason] of cases) {
      const b = REQUEST.slice();
      b[index] = value;
      expect(ArpRepr.parseBytes(b)).toEqual({ ok: false, reason });
    }
    // hlen 5 still fits in 28 bytes, so it passes integrity and fails sanity
    const shortHw = REQUEST.slice();
    shortHw[4] = 5;
    expect(ArpRepr.parseBytes(shortHw)).toEqual({ ok: false, reason: 'bad_hlen' });
    const shortProto = REQUEST.slice();
    shortProto[5] = 2;
    expect(ArpRepr.parseBytes(shortProto)).toEqual({ ok: false, reason: 'bad_plen' });
  });

  it('classifies probes and announcements', () => {
    expect(isArpProbe(mustParse(REQUEST))).toBe(false);
    const probe = mustParse(hex('0001 0800 0604 0001 0200 0000 0a01 0000 0000 ffff ffff ffff 0a00 0002'));
    expect(isArpProbe(probe)).toBe(true);
    expect(isGratuitousArp(probe)).toBe(false);
    const garp = mustParse(hex('0001 0800 0604 0001 0200 0000 0a01 0a00 0001 ffff ffff ffff 0a00 0001'));
    expect(isGratuitousArp(garp)).toBe(true);
  });
});

describe('formatArp', () => {
  it('prints like tcpdump', () => {
    expect(formatArp(REQUEST)).toBe('ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28');
    expect(formatArp(REPLY)).toBe('ARP, Reply 10.0.0.2 is-at 02:00:00:00:0b:02, length 28');
    expect(formatArp(REQUEST.subarray(0, 5))).toBe('ARP, [truncated header], length 5');
  });
});

describe('Linux fixtures', () => {
  // What `tcpdump -nn -r <file>` prints for each ARP frame (tcpdump 4.99), the independent oracle.
  const expected: Record<string, string[]> = {
    'linux-arp-and-ping.pcap': [
      'ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28',
      'ARP, Reply 10.0.0.2 is-at 02:00:00:00:0b:02, length 28',
    ],
    'linux-arp-probe-dad.pcap': [
      'ARP, Request who-has 10.0.0.2 (ff:ff:ff:ff:ff:ff) tell 0.0.0.0, length 28',
      'ARP, Reply 10.0.0.2 is-at 02:00:00:00:0b:02, length 28',
    ],
    'linux-gratuitous-arp.pcap': [
      'ARP, Request who-has 10.0.0.1 (ff:ff:ff:ff:ff:ff) tell 10.0.0.1, length 28',
      'ARP, Request who-has 10.0.0.1 (ff:ff:ff:ff:ff:ff) tell 10.0.0.1, length 28',
    ],
    'linux-ping-unresolved-host.pcap': [
      'ARP, Request who-has 10.0.0.9 tell 10.0.0.1, length 28',
      'ARP, Request who-has 10.0.0.9 tell 10.0.0.1, length 28',
      'ARP, Request who-has 10.0.0.9 tell 10.0.0.1, length 28',
    ],
  };

  for (const [file, lines] of Object.entries(expected)) {
    it(`${file}: parses every ARP frame, re-emits it byte for byte, prints it like tcpdump`, () => {
      const arpFrames = fixture(file).filter((r) => r.frame[12] === 0x08 && r.frame[13] === 0x06);
      expect(arpFrames.length).toBe(lines.length);
      arpFrames.forEach(({ frame }, i) => {
        const payload = frame.subarray(14);
        const repr = mustParse(payload);
        const rebuilt = buildArpFrame(
          MacAddress.fromBytes(frame, 0),
          MacAddress.fromBytes(frame, 6),
          repr,
        );
        expect([...rebuilt]).toEqual([...frame]);
        expect(formatArp(payload)).toBe(lines[i]);
      });
    });
  }

  it('the probe has sender IP 0.0.0.0 and the owner answers with target IP 0.0.0.0', () => {
    const [probe, answer] = fixture('linux-arp-probe-dad.pcap').map((r) => mustParse(r.frame.subarray(14)));
    expect(isArpProbe(probe!)).toBe(true);
    expect(answer!.operation).toBe('reply');
    expect(answer!.targetIp).toBe(0);
    expect(answer!.targetMac.equals(probe!.senderMac)).toBe(true);
  });
});

describe('properties', () => {
  const mac = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => MacAddress.fromBytes(b));
  const ip = fc.nat({ max: 0xffffffff }).map((n): Ipv4Address => ipv4FromNumber(n));
  const repr: fc.Arbitrary<ArpReprType> = fc.record({
    operation: fc.constantFrom('request' as const, 'reply' as const),
    senderMac: mac,
    senderIp: ip,
    targetMac: mac,
    targetIp: ip,
  });

  it('emit then parse gives the same Repr', () => {
    fc.assert(
      fc.property(repr, (r) => {
        const buf = new Uint8Array(ArpRepr.bufferLength(r));
        ArpRepr.emit(r, buf);
        expect(mustParse(buf)).toEqual(r);
      }),
      { numRuns: 500 },
    );
  });

  it('random and mutated bytes never throw, and what parse accepts is exactly what the bytes say', () => {
    // Valid packets with a few bytes changed reach every branch (random bytes alone almost never
    // have htype 1 and ptype 0x0800); whatever parse accepts must agree with the bytes it read.
    const mutated = fc
      .tuple(repr, fc.array(fc.tuple(fc.nat({ max: 27 }), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.nat({ max: 40 }))
      .map(([r, edits, cut]) => {
        const buf = new Uint8Array(ArpRepr.bufferLength(r));
        ArpRepr.emit(r, buf);
        for (const [at, v] of edits) buf[at] = v;
        return buf.subarray(0, Math.max(0, buf.length - (cut > 30 ? cut - 30 : 0)));
      });
    let accepted = 0;
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }), mutated), (bytes) => {
        const r = ArpRepr.parseBytes(bytes);
        expect(formatArp(bytes)).toMatch(/^ARP/);
        const checked = ArpPacket.check(bytes);
        if (!checked.ok) {
          expect(r.ok).toBe(false);
          return;
        }
        const p = checked.value;
        // every accessor of a checked packet answers, whatever hlen and plen say
        expect(p.senderHardwareAddress.length).toBe(p.hardwareLength);
        expect(p.targetProtocolAddress.length).toBe(p.protocolLength);
        void [p.senderMac, p.senderIp, p.targetMac, p.targetIp];
        if (!r.ok) return;
        accepted++;
        expect(bytes[1]).toBe(1); // htype 1
        expect([bytes[2], bytes[3], bytes[4], bytes[5]]).toEqual([0x08, 0x00, 6, 4]);
        expect(r.value.senderIp).toBe(((bytes[14]! << 24) | (bytes[15]! << 16) | (bytes[16]! << 8) | bytes[17]!) >>> 0);
        expect(r.value.operation).toBe(bytes[7] === 1 ? 'request' : 'reply');
      }),
      { numRuns: 2000 },
    );
    expect(accepted).toBeGreaterThan(100);
  });

  it('a packet with hlen 1 passes check with its 18 bytes: the accessors answer at the offsets it declares, parse refuses it', () => {
    const bytes = Uint8Array.from([0, 1, 8, 0, 1, 4, 0, 1, 0xaa, 10, 0, 0, 1, 0xbb, 10, 0, 0, 2]);
    const checked = ArpPacket.check(bytes);
    expect(checked.ok).toBe(true);
    if (!checked.ok) return;
    const p = checked.value;
    expect(p.senderHardwareAddress).toEqual(Uint8Array.from([0xaa]));
    expect(p.senderProtocolAddress).toEqual(Uint8Array.from([10, 0, 0, 1]));
    expect(p.targetHardwareAddress).toEqual(Uint8Array.from([0xbb]));
    expect(p.targetProtocolAddress).toEqual(Uint8Array.from([10, 0, 0, 2]));
    expect(p.senderMac).toBeUndefined();
    expect(p.targetIp).toBeUndefined();
    expect(ArpRepr.parse(p)).toEqual({ ok: false, reason: 'bad_hlen' });
  });

  it('a valid packet with any one byte changed never throws, and parses or names a reason', () => {
    fc.assert(
      fc.property(fc.nat({ max: 27 }), fc.nat({ max: 255 }), fc.nat({ max: 28 }), (i, v, cut) => {
        const b = REQUEST.slice(0, cut);
        if (i < b.length) b[i] = v;
        const r = ArpRepr.parseBytes(b);
        if (!r.ok) expect(r.reason).toMatch(/^(truncated_header|truncated_addresses|bad_\w+)$/);
        else expect(b.length).toBeGreaterThanOrEqual(28);
      }),
      { numRuns: 2000 },
    );
  });
});
