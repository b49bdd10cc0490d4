import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { internetChecksum } from '@tapstack/ipv4';
import { Counters, ipv6, VirtualClock } from '@tapstack/link';
import { ipv6PseudoHeaderSum } from '../src/checksum.ts';
import { walkExtensionHeaders } from '../src/extension.ts';
import { fragmentIpv6, IPV6_FRAGMENT_HEADER_LENGTH, Ipv6FragmentRepr } from '../src/fragment.ts';
import { IPV6_HEADER_LENGTH, IpNextHeader, Ipv6Packet, Ipv6Repr } from '../src/header.ts';
import { IPV6_REASSEMBLY_COUNTERS, Ipv6Reassembler, type Ipv6ReassemblyLimits, type Ipv6ReassemblyResult } from '../src/reassembly.ts';
import { ipv6FixtureFrames } from './fixtures.ts';

const A = ipv6('fd00:10::1');
const B = ipv6('fd00:10::2');
const HEADER = { source: A, destination: B, nextHeader: IpNextHeader.UDP, hopLimit: 64, trafficClass: 0, flowLabel: 0 };

function setup(limits: Partial<Ipv6ReassemblyLimits> = {}) {
  const clock = new VirtualClock();
  const counters = new Counters('ipv6', IPV6_REASSEMBLY_COUNTERS);
  const timeouts: (Uint8Array | undefined)[] = [];
  const reassembler = new Ipv6Reassembler(clock, counters, limits, (first) => timeouts.push(first));
  const input = (bytes: Uint8Array): Ipv6ReassemblyResult => {
    const packet = new Ipv6Packet(bytes);
    const walk = walkExtensionHeaders(packet);
    if (walk.kind !== 'fragment') throw new Error(`not a fragment: ${walk.kind}`);
    return reassembler.input(packet, walk);
  };
  return { clock, counters, timeouts, reassembler, input };
}

/** A fragment of `payload` (the fragmentable part) covering [offset, offset + length). */
function fragment(payload: Uint8Array, offset: number, length: number, more: boolean, identification = 7, nextHeader = 17): Uint8Array {
  const data = payload.subarray(offset, offset + length);
  const out = new Uint8Array(IPV6_HEADER_LENGTH + IPV6_FRAGMENT_HEADER_LENGTH + data.length);
  Ipv6Repr.emit({ ...HEADER, nextHeader: IpNextHeader.FRAGMENT, payloadLength: IPV6_FRAGMENT_HEADER_LENGTH + data.length }, out);
  Ipv6FragmentRepr.emit({ nextHeader, offset, moreFragments: more, identification }, out, IPV6_HEADER_LENGTH);
  out.set(data, IPV6_HEADER_LENGTH + IPV6_FRAGMENT_HEADER_LENGTH);
  return out;
}

const PAYLOAD = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff);

describe('the kernel\'s ping -6 -s 4000 (linux-ipv6-ping-4000.pcap)', () => {
  const frames = ipv6FixtureFrames('linux-ipv6-ping-4000.pcap').slice(0, 6).map((f) => f.packet);

  it('reassembles the request and the reply into echo messages with correct checksums', () => {
    const { input, reassembler, counters } = setup();
    for (const [from, to] of [[0, 3], [3, 6]] as const) {
      const results = frames.slice(from, to).map(input);
      expect(results.slice(0, 2).map((r) => r.kind)).toEqual(['pending', 'pending']);
      const last = results[2]!;
      if (last.kind !== 'complete') throw new Error(last.kind);
      const p = last.packet;
      expect(p.nextHeader).toBe(IpNextHeader.ICMPV6);
      expect(p.payloadLength).toBe(4008);
      const sum = ipv6PseudoHeaderSum(p.source, p.destination, 58, p.payload.length);
      expect(internetChecksum(p.payload, sum)).toBe(0);
      expect(p.payload[0]).toBe(from === 0 ? 128 : 129);
    }
    expect(counters.get('reasm_ok')).toBe(2);
    expect(reassembler.bytesHeld).toBe(0);
    expect(reassembler.datagramsInFlight).toBe(0);
  });

  it('fragmentIpv6 cuts the reassembled request exactly as the kernel did, byte for byte', () => {
    const { input } = setup();
    input(frames[0]!);
    input(frames[1]!);
    const r = input(frames[2]!);
    if (r.kind !== 'complete') throw new Error(r.kind);
    const whole = Ipv6Repr.parse(r.packet);
    const id = Ipv6FragmentRepr.parse(frames[0]!, 40);
    if (!id.ok) throw new Error(id.reason);
    const { payloadLength: _, ...header } = whole;
    const out = fragmentIpv6(header, r.packet.payload, 1500, id.value.identification);
    expect(out).toEqual(frames.slice(0, 3));
    // with room for an Ethernet header in front
    const framed = fragmentIpv6(header, r.packet.payload, 1500, id.value.identification, { headroom: 14 });
    expect(framed.map((f) => f.subarray(14))).toEqual(frames.slice(0, 3));
  });
});

describe('fragmentIpv6 (RFC 8200 4.5)', () => {
  it('sends what fits whole, and cuts the rest into 8-byte aligned fragments of one identification', () => {
    expect(fragmentIpv6(HEADER, new Uint8Array(1460), 1500, 1)).toHaveLength(1);
    const parts = fragmentIpv6(HEADER, PAYLOAD, 1280, 0xdeadbeef);
    expect(parts.map((p) => p.length)).toEqual([1280, 1280, 48 + 3000 - 2 * 1232]);
    parts.forEach((p, i) => {
      const f = Ipv6FragmentRepr.parse(p, 40);
      expect(f.ok && f.value).toEqual({ nextHeader: 17, offset: i * 1232, moreFragments: i < 2, identification: 0xdeadbeef });
    });
    expect(() => fragmentIpv6(HEADER, PAYLOAD, 1279, 1)).toThrow(RangeError);
  });

  it('reassembles to the original whatever the MTU and order (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1280, max: 9000 }), fc.integer({ min: 1, max: 20000 }), fc.nat(), (mtu, length, seed) => {
        const payload = new Uint8Array(length);
        for (let i = 0; i < length; i++) payload[i] = (i * 13 + seed) & 0xff;
        const parts = fragmentIpv6(HEADER, payload, mtu, seed);
        if (parts.length === 1) return;
        const { input } = setup();
        // rotate the order by the seed
        const k = seed % parts.length;
        const order = [...parts.slice(k), ...parts.slice(0, k)];
        const results = order.map(input);
        const done = results.filter((r) => r.kind === 'complete');
        expect(done).toHaveLength(1);
        expect(results[results.length - 1]!.kind).toBe('complete');
        const d = done[0]!;
        if (d.kind === 'complete') {
          expect(Buffer.from(d.packet.payload).equals(payload)).toBe(true);
          expect(d.packet.nextHeader).toBe(17);
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('Ipv6Reassembler: the rules', () => {
  it('overlapping fragments drop the whole packet silently (RFC 5722)', () => {
    const { input, counters, reassembler } = setup();
    expect(input(fragment(PAYLOAD, 0, 1232, true)).kind).toBe('pending');
    expect(input(fragment(PAYLOAD, 1224, 1232, true))).toEqual({ kind: 'dropped', reason: 'reasm_overlap' });
    expect(reassembler.datagramsInFlight).toBe(0);
    expect(reassembler.bytesHeld).toBe(0);
    // the rest no longer completes anything
    expect(input(fragment(PAYLOAD, 2464, 536, false)).kind).toBe('pending');
    expect(counters.get('reasm_overlap')).toBe(1);
  });

  it('an exact duplicate is dropped alone', () => {
    const { input, counters } = setup();
    input(fragment(PAYLOAD, 0, 1232, true));
    expect(input(fragment(PAYLOAD, 0, 1232, true))).toEqual({ kind: 'dropped', reason: 'reasm_duplicate' });
    input(fragment(PAYLOAD, 1232, 1232, true));
    const r = input(fragment(PAYLOAD, 2464, 536, false));
    expect(r.kind === 'complete' && r.packet.payload).toEqual(PAYLOAD);
    expect(counters.get('reasm_duplicate')).toBe(1);
  });

  it('an atomic fragment is delivered at once and leaves other reassemblies with its identification alone (RFC 6946)', () => {
    const { input, counters, reassembler } = setup();
    input(fragment(PAYLOAD, 0, 1232, true, 99));
    // The walker steps over an atomic fragment by itself; handed to the reassembler anyway, it comes straight back whole.
    const atomicBytes = fragment(PAYLOAD, 0, 100, false, 99);
    expect(walkExtensionHeaders(new Ipv6Packet(atomicBytes))).toMatchObject({ kind: 'upper-layer', nextHeader: 17, offset: 48 });
    const atomic = reassembler.input(new Ipv6Packet(atomicBytes), { offset: 40, nextHeaderFieldOffset: 6 });
    expect(atomic.kind).toBe('complete');
    if (atomic.kind === 'complete') {
      expect(atomic.packet.payload).toEqual(PAYLOAD.subarray(0, 100));
      expect(atomic.packet.nextHeader).toBe(17);
      expect(atomic.packet.payloadLength).toBe(100);
    }
    expect(counters.get('reasm_atomic')).toBe(1);
    expect(reassembler.datagramsInFlight).toBe(1);
    input(fragment(PAYLOAD, 1232, 1232, true, 99));
    expect(input(fragment(PAYLOAD, 2464, 536, false, 99)).kind).toBe('complete');
  });

  it('a non-last fragment that is not a multiple of 8 bytes: parameter problem code 0 at the payload length', () => {
    const { input } = setup();
    expect(input(fragment(PAYLOAD, 0, 1230, true))).toEqual({
      kind: 'parameter-problem',
      reason: 'reasm_not_multiple_of_8',
      parameterProblem: { code: 0, pointer: 4 },
    });
  });

  it('a fragment that would make the payload longer than 65535 bytes: parameter problem code 0 at its offset field', () => {
    const { input } = setup();
    const big = new Uint8Array(65600);
    expect(input(fragment(big, 65528, 16, false))).toEqual({ kind: 'parameter-problem', reason: 'reasm_too_big', parameterProblem: { code: 0, pointer: 42 } });
  });

  it('a first fragment without the whole header chain: parameter problem code 3, pointer 0 (RFC 7112)', () => {
    const { input, counters } = setup();
    // a destination options header of 16 bytes of which the first fragment holds 8
    const chain = Uint8Array.from({ length: 64 }, () => 0);
    chain[0] = 17;
    chain[1] = 1;
    chain[2] = 1;
    chain[3] = 4;
    expect(input(fragment(chain, 0, 8, true, 5, IpNextHeader.DESTINATION_OPTIONS))).toEqual({
      kind: 'parameter-problem',
      reason: 'reasm_incomplete_chain',
      parameterProblem: { code: 3, pointer: 0 },
    });
    // TCP needs 20 bytes of header in the first fragment; 16 are not enough, 24 are
    expect(input(fragment(PAYLOAD, 0, 16, true, 6, IpNextHeader.TCP)).kind).toBe('parameter-problem');
    expect(input(fragment(PAYLOAD, 0, 24, true, 6, IpNextHeader.TCP)).kind).toBe('pending');
    expect(counters.get('reasm_incomplete_chain')).toBe(2);
  });

  it('times out after 60 s and hands over the first fragment for time exceeded (code 1)', () => {
    const { input, clock, timeouts, counters, reassembler } = setup();
    const first = fragment(PAYLOAD, 0, 1232, true, 1);
    input(first);
    input(fragment(PAYLOAD, 1232, 1232, true, 2)); // a packet whose first fragment never came
    clock.advance(59_999);
    expect(timeouts).toHaveLength(0);
    clock.advance(1);
    expect(timeouts).toEqual([first, undefined]);
    expect(counters.get('reasm_timeout')).toBe(2);
    expect(reassembler.bytesHeld).toBe(0);
  });

  it('stays within its memory bounds under a flood of fragments that never complete', () => {
    const { input, reassembler, counters } = setup({ highWaterBytes: 200_000, lowWaterBytes: 150_000, maxDatagrams: 64 });
    for (let id = 0; id < 2000; id++) {
      input(fragment(PAYLOAD, 1232, 1232, true, id));
      expect(reassembler.bytesHeld).toBeLessThanOrEqual(200_000 + 1232 + 64);
      expect(reassembler.datagramsInFlight).toBeLessThanOrEqual(64);
    }
    expect(counters.get('reasm_evicted')).toBeGreaterThan(1900);
  });

  it('caps the fragments of one packet', () => {
    const { input, counters } = setup({ maxFragmentsPerDatagram: 4 });
    for (let i = 0; i < 5; i++) input(fragment(new Uint8Array(1000), i * 16, 8, true));
    expect(counters.get('reasm_too_many_fragments')).toBe(1);
  });

  it('never throws and stays bounded on random fragments (property)', () => {
    const { reassembler } = setup({ highWaterBytes: 100_000, lowWaterBytes: 50_000 });
    fc.assert(
      fc.property(fc.nat({ max: 8191 }), fc.boolean(), fc.nat({ max: 3 }), fc.uint8Array({ maxLength: 200 }), (units, more, id, data) => {
        const out = new Uint8Array(48 + data.length);
        Ipv6Repr.emit({ ...HEADER, nextHeader: 44, payloadLength: 8 + data.length }, out);
        Ipv6FragmentRepr.emit({ nextHeader: 17, offset: units * 8, moreFragments: more, identification: id }, out, 40);
        out.set(data, 48);
        const r = reassembler.input(new Ipv6Packet(out), { offset: 40, nextHeaderFieldOffset: 6 });
        expect(['complete', 'pending', 'dropped', 'parameter-problem']).toContain(r.kind);
        expect(reassembler.bytesHeld).toBeLessThanOrEqual(100_000 + 200 + 64 + 2 * 248);
      }),
      { numRuns: 500 },
    );
  });
});
