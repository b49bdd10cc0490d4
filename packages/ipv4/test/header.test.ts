import { ipv4, type Ipv4Address } from '@tapstack/link';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { internetChecksum } from '../src/checksum.ts';
import { Ipv4Packet, Ipv4Repr, formatIpv4Packet, writePlainHeader } from '../src/header.ts';
import { allIpv4Frames, hex } from '../../../test/support/fixtures.ts';

// The kernel's echo request from linux-ping-odd-sizes.pcap (frame 3): header + 8 bytes of ICMP.
const ECHO_REQUEST = hex('4500001c 98464000 40018e98 0a000001 0a000002 0800d35f 249f0001');
// A header with 4 bytes of options (NOP NOP NOP EOL), IHL 6, checksum computed by hand: 0x63c9.
const WITH_OPTIONS = hex('46000020 00010000 401163c9 0a000001 0a000002 01010100 0102030405060708');

describe('Ipv4Packet (view)', () => {
  it('deconstructs the kernel echo request', () => {
    const r = Ipv4Packet.check(ECHO_REQUEST);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const p = r.value;
    expect(p.version).toBe(4);
    expect(p.headerLength).toBe(20);
    expect(p.totalLength).toBe(28);
    expect(p.identification).toBe(0x9846);
    expect(p.dontFragment).toBe(true);
    expect(p.moreFragments).toBe(false);
    expect(p.fragmentOffset).toBe(0);
    expect(p.isFragment).toBe(false);
    expect(p.ttl).toBe(64);
    expect(p.protocol).toBe(1);
    expect(p.checksum).toBe(0x8e98);
    expect(p.source).toBe(ipv4('10.0.0.1'));
    expect(p.destination).toBe(ipv4('10.0.0.2'));
    expect([...p.payload]).toEqual([0x08, 0x00, 0xd3, 0x5f, 0x24, 0x9f, 0x00, 0x01]);
    expect(p.verifyChecksum()).toBe(true);
  });

  it('keeps options intact', () => {
    const r = Ipv4Packet.check(WITH_OPTIONS);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.headerLength).toBe(24);
    expect([...r.value.options]).toEqual([1, 1, 1, 0]);
    expect([...r.value.payload]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const repr = Ipv4Repr.parse(r.value);
    const out = new Uint8Array(Ipv4Repr.bufferLength(repr));
    Ipv4Repr.emit(repr, out);
    out.set(r.value.payload, Ipv4Repr.headerLength(repr));
    expect(out).toEqual(WITH_OPTIONS);
  });

  it('ignores Ethernet padding after the total length', () => {
    const padded = new Uint8Array(46);
    padded.set(ECHO_REQUEST);
    const r = Ipv4Packet.check(padded);
    expect(r.ok && r.value.bytes.length).toBe(28);
    expect(r.ok && r.value.payload.length).toBe(8);
  });

  it('checks a datagram where it lies in a frame (offset) exactly as the same bytes alone', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.nat({ max: 20 }), fc.boolean(), (tail, offset, useEcho) => {
        // Any bytes, or the kernel's echo request followed by padding, behind `offset` bytes of header.
        const datagram = useEcho ? new Uint8Array([...ECHO_REQUEST, ...tail]) : tail;
        const frame = new Uint8Array(offset + datagram.length).fill(0xee);
        frame.set(datagram, offset);
        const alone = Ipv4Packet.check(datagram);
        const inFrame = Ipv4Packet.check(frame, { offset });
        expect(inFrame.ok).toBe(alone.ok);
        if (!alone.ok || !inFrame.ok) {
          expect(inFrame.ok ? 'ok' : inFrame.reason).toBe(alone.ok ? 'ok' : alone.reason);
          return;
        }
        const a = alone.value;
        const f = inFrame.value;
        expect([f.headerLength, f.totalLength, f.source, f.destination, f.protocol, f.ttl, f.identification, f.checksum]).toEqual([
          a.headerLength,
          a.totalLength,
          a.source,
          a.destination,
          a.protocol,
          a.ttl,
          a.identification,
          a.checksum,
        ]);
        expect(f.verifyChecksum()).toBe(true);
        expect([...f.bytes]).toEqual([...a.bytes]);
        expect([...f.payload]).toEqual([...a.payload]);
        expect([...f.header]).toEqual([...a.header]);
        // The views are of the frame itself (zero-copy), not copies.
        expect(f.bytes.buffer).toBe(frame.buffer);
        expect(f.bytes.byteOffset).toBe(offset);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses each kind of damage with its own reason, integrity in Linux order', () => {
    const reason = (bytes: Uint8Array): string => {
      const r = Ipv4Packet.check(bytes);
      return r.ok ? 'ok' : r.reason;
    };
    const mutate = (f: (b: Uint8Array) => void, fix = true): Uint8Array => {
      const b = ECHO_REQUEST.slice();
      f(b);
      if (fix) {
        b[10] = 0;
        b[11] = 0;
        const hl = Math.min((b[0]! & 15) * 4, b.length);
        const c = internetChecksum(b, 0, 0, hl);
        b[10] = c >>> 8;
        b[11] = c & 0xff;
      }
      return b;
    };
    expect(reason(ECHO_REQUEST)).toBe('ok');
    expect(reason(ECHO_REQUEST.subarray(0, 19))).toBe('truncated');
    expect(reason(mutate((b) => (b[0] = 0x65)))).toBe('bad_version');
    expect(reason(mutate((b) => (b[0] = 0x44)))).toBe('bad_ihl');
    expect(reason(mutate((b) => (b[0] = 0x48)))).toBe('header_truncated'); // 32-byte header in 28 bytes
    expect(reason(mutate((b) => (b[8] = 1), false))).toBe('bad_checksum');
    expect(reason(mutate((b) => (b[3] = 29)))).toBe('bad_total_length'); // more than we have
    expect(reason(mutate((b) => (b[3] = 19)))).toBe('bad_total_length'); // less than the header
    // a bad checksum is reported even when the total length is wrong too (checked first)
    expect(reason(mutate((b) => ((b[3] = 99), (b[8] = 3)), false))).toBe('bad_checksum');
  });

  it('formats one line like tcpdump -v', () => {
    expect(formatIpv4Packet(ECHO_REQUEST)).toBe(
      'IP (ttl 64, id 38982, offset 0, flags [DF], proto ICMP (1), length 28) 10.0.0.1 > 10.0.0.2',
    );
    expect(formatIpv4Packet(ECHO_REQUEST.subarray(0, 3))).toBe('IP [truncated, length 3]');
  });
});

describe('Ipv4Repr against the Linux fixtures', () => {
  const frames = allIpv4Frames();

  it('has IPv4 frames to test (fixtures present)', () => {
    expect(frames.length).toBeGreaterThanOrEqual(14);
  });

  it('parses every IPv4 frame the kernel wrote and re-emits it byte for byte', () => {
    for (const { file, index, frame } of frames) {
      const bytes = frame.subarray(14);
      const r = Ipv4Packet.check(bytes);
      expect(r.ok, `${file}#${index + 1}`).toBe(true);
      if (!r.ok) continue;
      const repr = Ipv4Repr.parse(r.value);
      const out = new Uint8Array(Ipv4Repr.bufferLength(repr));
      Ipv4Repr.emit(repr, out);
      out.set(r.value.payload, Ipv4Repr.headerLength(repr));
      expect(out, `${file}#${index + 1}`).toEqual(bytes);
    }
  });

  it('sees the 4000-byte echo as three fragments at 0, 1480 and 2960', () => {
    const frags = frames.filter((f) => f.file === 'linux-ping-4000-fragmented.pcap').slice(0, 3);
    const views = frags.map((f) => new Ipv4Packet(f.frame.subarray(14)));
    expect(views.map((v) => v.fragmentOffset)).toEqual([0, 1480, 2960]);
    expect(views.map((v) => v.moreFragments)).toEqual([true, true, false]);
    expect(views.map((v) => v.totalLength)).toEqual([1500, 1500, 1068]);
    expect(new Set(views.map((v) => v.identification)).size).toBe(1);
  });
});

describe('Ipv4Repr properties', () => {
  const reprArb = fc.record({
    source: fc.nat({ max: 0xffffffff }).map((n) => n as Ipv4Address),
    destination: fc.nat({ max: 0xffffffff }).map((n) => n as Ipv4Address),
    protocol: fc.nat({ max: 255 }),
    ttl: fc.nat({ max: 255 }),
    identification: fc.nat({ max: 0xffff }),
    dscp: fc.nat({ max: 63 }),
    ecn: fc.nat({ max: 3 }),
    dontFragment: fc.boolean(),
    moreFragments: fc.boolean(),
    fragmentOffset: fc.nat({ max: 0x1fff }).map((n) => n * 8),
    options: fc.nat({ max: 10 }).chain((w) => fc.uint8Array({ minLength: w * 4, maxLength: w * 4 })),
    payloadLength: fc.nat({ max: 2000 }),
  });

  it('the fast header writer of the send path writes exactly what Ipv4Repr.emit writes', () => {
    fc.assert(
      fc.property(reprArb, (r) => {
        const repr = { ...r, ecn: 0, moreFragments: false, fragmentOffset: 0, options: new Uint8Array(0) };
        const viaEmit = new Uint8Array(14 + Ipv4Repr.bufferLength(repr));
        Ipv4Repr.emit(repr, viaEmit, 14);
        const viaWriter = new Uint8Array(viaEmit.length);
        writePlainHeader(viaWriter, repr.source, repr.destination, repr.protocol, repr.ttl, repr.dscp, repr.identification, repr.dontFragment ? 0x4000 : 0, 20 + repr.payloadLength);
        expect(viaWriter.subarray(14, 34)).toEqual(viaEmit.subarray(14, 34));
        expect([viaWriter[12], viaWriter[13]]).toEqual([0x08, 0x00]);
      }),
    );
  });

  it('emit then parse gives the same Repr, with a valid checksum', () => {
    fc.assert(
      fc.property(reprArb, (repr) => {
        const buf = new Uint8Array(Ipv4Repr.bufferLength(repr));
        Ipv4Repr.emit(repr, buf);
        const r = Ipv4Packet.check(buf);
        expect(r.ok).toBe(true);
        if (r.ok) expect(Ipv4Repr.parse(r.value)).toEqual(repr);
      }),
    );
  });

  it('never throws on random bytes or on valid datagrams with bytes changed, and whatever it accepts agrees with the bytes', () => {
    // Random bytes are almost never a datagram the check accepts, so most cases start from a valid
    // one (emitted from a Repr) with a few bytes changed and maybe cut short: then both the
    // accepting and the refusing paths run, and what is accepted can be compared with the bytes.
    const mutated = fc
      .tuple(reprArb, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 3 }), fc.nat({ max: 30 }))
      .map(([repr, edits, cut]) => {
        const buf = new Uint8Array(Ipv4Repr.bufferLength(repr));
        Ipv4Repr.emit(repr, buf);
        for (const [at, v] of edits) buf[at % Math.min(buf.length, 60)] = v;
        return cut > 20 ? buf.subarray(0, buf.length - (cut - 20)) : buf;
      });
    let accepted = 0;
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), mutated, mutated), (bytes) => {
        const r = Ipv4Packet.check(bytes, { verifyChecksum: false });
        expect(typeof formatIpv4Packet(bytes)).toBe('string');
        if (!r.ok) return;
        accepted++;
        const p = r.value;
        const ihl = (bytes[0]! & 0x0f) * 4;
        const total = (bytes[2]! << 8) | bytes[3]!;
        expect(bytes[0]! >> 4).toBe(4);
        expect(p.headerLength).toBe(ihl);
        expect(ihl).toBeGreaterThanOrEqual(20);
        expect(p.totalLength).toBe(total);
        expect(total).toBeLessThanOrEqual(bytes.length);
        expect(p.payload.length).toBe(total - ihl);
        expect(p.protocol).toBe(bytes[9]);
        expect(p.source).toBe(((bytes[12]! << 24) | (bytes[13]! << 16) | (bytes[14]! << 8) | bytes[15]!) >>> 0);
        // with the checksum verified too, only datagrams whose header sums to 0xffff pass
        const verified = Ipv4Packet.check(bytes);
        let sum = 0;
        for (let i = 0; i < ihl; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
        while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
        expect(verified.ok).toBe(sum === 0xffff);
      }),
      { numRuns: 3000 },
    );
    // the property must have exercised the accepting path, not only refusals
    expect(accepted).toBeGreaterThan(300);
  });
});
