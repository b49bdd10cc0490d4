import { Counters, VirtualClock, ipv4, seededRandom } from '@tapstack/link';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Ipv4Packet, Ipv4Repr } from '../src/header.ts';
import { FRAGMENT_OVERHEAD_BYTES, REASSEMBLY_COUNTERS, Reassembler, type ReassemblyLimits } from '../src/reassembly.ts';
import { fixtureFrames } from '../../../test/support/fixtures.ts';

const SRC = ipv4('10.0.0.1');
const DST = ipv4('10.0.0.2');

/** One fragment of a datagram with `payload`, covering [offset, offset + length). */
function fragment(payload: Uint8Array, offset: number, length: number, more: boolean, id = 7, protocol = 17): Ipv4Packet {
  const repr = {
    source: SRC,
    destination: DST,
    protocol,
    ttl: 64,
    identification: id,
    dscp: 0,
    ecn: 0,
    dontFragment: false,
    moreFragments: more,
    fragmentOffset: offset,
    options: new Uint8Array(0),
    payloadLength: length,
  };
  const buf = new Uint8Array(Ipv4Repr.bufferLength(repr));
  Ipv4Repr.emit(repr, buf);
  buf.set(payload.subarray(offset, offset + length), 20);
  return new Ipv4Packet(buf);
}

/** Splits `payload` into fragments of `size` bytes (a multiple of 8). */
function split(payload: Uint8Array, size: number, id = 7): Ipv4Packet[] {
  const out: Ipv4Packet[] = [];
  for (let off = 0; off < payload.length; off += size) {
    const len = Math.min(size, payload.length - off);
    out.push(fragment(payload, off, len, off + len < payload.length, id));
  }
  return out;
}

function setup(limits: Partial<ReassemblyLimits> = {}) {
  const clock = new VirtualClock();
  const counters = new Counters('ipv4', REASSEMBLY_COUNTERS);
  const timeouts: (Uint8Array | undefined)[] = [];
  const r = new Reassembler(clock, counters, limits, (q) => timeouts.push(q));
  return { clock, counters, timeouts, r };
}

function data(n: number, seed = 1): Uint8Array {
  const rnd = seededRandom(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(rnd() * 256));
}

describe('Reassembler', () => {
  it('rebuilds a datagram from fragments in order, with a valid header and the fragment fields cleared', () => {
    const { r, counters } = setup();
    const payload = data(4000);
    const frags = split(payload, 1480);
    expect(r.input(frags[0]!)).toBeUndefined();
    expect(r.input(frags[1]!)).toBeUndefined();
    const whole = r.input(frags[2]!)!;
    expect(whole).toBeDefined();
    expect(whole.payload).toEqual(payload);
    expect(whole.totalLength).toBe(4020);
    expect(whole.isFragment).toBe(false);
    expect(whole.verifyChecksum()).toBe(true);
    expect(counters.get('reasm_ok')).toBe(1);
    expect(r.bytesHeld).toBe(0);
    expect(r.datagramsInFlight).toBe(0);
  });

  it('reassembles the kernel 4000-byte echo request from the fixture', () => {
    const { r } = setup();
    const frames = fixtureFrames('linux-ping-4000-fragmented.pcap').slice(2, 5);
    const packets = frames.map((f) => new Ipv4Packet(f.subarray(14)));
    expect(r.input(packets[2]!)).toBeUndefined(); // last first
    expect(r.input(packets[0]!)).toBeUndefined();
    const whole = r.input(packets[1]!)!;
    expect(whole.totalLength).toBe(20 + 8 + 4000);
    expect(whole.payload[0]).toBe(8); // ICMP echo request
    expect(whole.identification).toBe(0x982c);
  });

  it('any order, with exact duplicates mixed in, gives the same datagram (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9000 }),
        fc.integer({ min: 3, max: 200 }).map((n) => n * 8), // at most 375 fragments, under the per-datagram limit
        fc.integer(),
        fc.nat({ max: 5 }),
        (length, size, seed, dups) => {
          const { r, counters } = setup();
          const payload = data(length, seed);
          const frags = split(payload, size);
          const rnd = seededRandom(seed);
          const order = [...frags];
          for (let i = 0; i < dups; i++) order.push(frags[Math.floor(rnd() * frags.length)]!);
          for (let i = order.length - 1; i > 0; i--) {
            const j = Math.floor(rnd() * (i + 1));
            [order[i], order[j]] = [order[j]!, order[i]!];
          }
          const done = order.map((f) => r.input(f)).filter((x) => x !== undefined);
          expect(done.length).toBeGreaterThanOrEqual(1);
          expect(done[0]!.payload).toEqual(payload);
          expect(counters.get('reasm_overlap')).toBe(0);
          // duplicates after completion start a new, never-completing datagram; they are freed on timeout
        },
      ),
      { numRuns: 200 },
    );
  });

  it('drops an exact duplicate and counts it', () => {
    const { r, counters } = setup();
    const frags = split(data(3000), 1000);
    r.input(frags[0]!);
    r.input(frags[0]!);
    expect(counters.get('reasm_duplicate')).toBe(1);
    r.input(frags[1]!);
    expect(r.input(frags[2]!)).toBeDefined();
  });

  it('discards the whole datagram on a partial overlap (deterministic, like Linux)', () => {
    const { r, counters } = setup();
    const payload = data(3000);
    r.input(fragment(payload, 0, 1000, true));
    r.input(fragment(payload, 992, 1000, true)); // overlaps the first by 8 bytes
    expect(counters.get('reasm_overlap')).toBe(1);
    expect(r.datagramsInFlight).toBe(0);
    expect(r.bytesHeld).toBe(0);
    // a fragment sticking out of what we hold is an overlap too
    r.input(fragment(payload, 0, 1000, true));
    r.input(fragment(payload, 992, 16, true));
    expect(counters.get('reasm_overlap')).toBe(2);
    expect(r.datagramsInFlight).toBe(0);
  });

  it('drops a fragment wholly inside a run of fragments it holds as a duplicate, and keeps the datagram (Linux: IPFRAG_DUP)', () => {
    const { r, counters } = setup();
    const payload = data(3000);
    r.input(fragment(payload, 0, 1000, true));
    r.input(fragment(payload, 1000, 1000, true)); // a run: 0-2000
    expect(r.input(fragment(payload, 0, 1000, true))).toBeUndefined(); // exact duplicate
    expect(r.input(fragment(payload, 8, 16, true))).toBeUndefined(); // inside the first fragment
    expect(r.input(fragment(payload, 992, 16, true))).toBeUndefined(); // across two fragments of the run
    expect(counters.get('reasm_duplicate')).toBe(3);
    expect(counters.get('reasm_overlap')).toBe(0);
    const whole = r.input(fragment(payload, 2000, 1000, false));
    expect(whole?.payload).toEqual(payload);
  });

  it('discards a datagram whose fragments disagree about its length', () => {
    const { r, counters } = setup();
    const payload = data(3000);
    r.input(fragment(payload, 2000, 1000, false)); // says: 3000 bytes in all
    r.input(fragment(payload, 3000, 8, true)); // data past the end
    expect(counters.get('reasm_bad_length')).toBe(1);
    r.input(fragment(payload, 1000, 1000, true));
    r.input(fragment(payload, 0, 8, false)); // "last" fragment ending before data we hold
    expect(counters.get('reasm_bad_length')).toBe(2);
    expect(r.datagramsInFlight).toBe(0);
  });

  it('cuts a non-last fragment down to a multiple of 8 bytes (as Linux), discards the datagram on an empty fragment, refuses datagrams over 65535', () => {
    const { r, counters } = setup();
    const small = data(2000, 3);
    // 1001 bytes at offset 0 with more to come: the 1001st byte is ignored, the datagram completes
    r.input(fragment(small, 0, 1001, true, 11));
    const done = r.input(fragment(small, 1000, 1000, false, 11));
    expect(done?.payload).toEqual(small);
    expect(counters.get('reasm_bad_fragment')).toBe(0);
    // an empty fragment (or fewer than 8 bytes with more to come) kills the datagram it belongs to
    r.input(fragment(small, 0, 1000, true, 12));
    r.input(fragment(small, 1000, 5, true, 12));
    expect(counters.get('reasm_bad_fragment')).toBe(1);
    expect(r.datagramsInFlight).toBe(0);
    expect(r.input(fragment(small, 1000, 1000, false, 12))).toBeUndefined();
    const payload = data(70000);
    r.input(fragment(payload, 65528, 8, false)); // ends at 65536 + 20 of header
    expect(counters.get('reasm_too_big')).toBe(1);
    // exactly 65535: the largest legal datagram, 65515 bytes of payload
    const big = data(65515);
    let whole: Ipv4Packet | undefined;
    for (const f of split(big, 1480)) whole = r.input(f) ?? whole;
    expect(whole?.totalLength).toBe(65535);
  });

  it('times out after 30 s, frees the memory and reports only when the first fragment came', () => {
    const { r, clock, counters, timeouts } = setup();
    const payload = data(4000);
    const frags = split(payload, 1480, 1);
    r.input(frags[0]!); // has offset 0
    const tail = split(payload, 1480, 2);
    r.input(tail[1]!); // no offset 0
    expect(r.bytesHeld).toBe(2 * (1480 + FRAGMENT_OVERHEAD_BYTES));
    clock.advance(29_999);
    expect(timeouts).toHaveLength(0);
    clock.advance(1);
    expect(counters.get('reasm_timeout')).toBe(2);
    expect(r.bytesHeld).toBe(0);
    expect(r.datagramsInFlight).toBe(0);
    expect(clock.pending).toBe(0);
    // one report, for the datagram whose first fragment arrived: its header + 8 bytes
    expect(timeouts.filter((t) => t !== undefined)).toHaveLength(1);
    const quote = timeouts.find((t) => t !== undefined)!;
    expect(quote.length).toBe(28);
    expect(new Ipv4Packet(quote).identification).toBe(1);
  });

  it('holds at most the high-water mark, evicting the oldest down to the low-water mark', () => {
    const { r, counters } = setup({ highWaterBytes: 100_000, lowWaterBytes: 75_000 });
    for (let id = 0; id < 200; id++) {
      r.input(fragment(data(2000, id), 0, 1480, true, id));
      expect(r.bytesHeld).toBeLessThanOrEqual(100_000);
    }
    expect(counters.get('reasm_evicted')).toBeGreaterThan(100);
    // the newest survived: completing it works
    expect(r.input(fragment(data(2000, 199), 1480, 520, false, 199))?.payload).toEqual(data(2000, 199));
  });

  it('refuses a datagram that would exceed 65535 bytes with the first fragment\'s longer header', () => {
    // Each fragment fits on its own (60 + 32768 and 20 + 65515 bytes), but the datagram is
    // rebuilt behind the first fragment's 60-byte header: 60 + 65515 = 65575 bytes, which no
    // total length field can describe (Linux: ip_frag_reasm, "Oversized IP packet").
    const payload = data(65515, 3);
    const first = { ...Ipv4Repr.parse(fragment(payload, 0, 32768, true, 42)), options: new Uint8Array(40).fill(1) };
    const firstBytes = new Uint8Array(Ipv4Repr.bufferLength(first));
    Ipv4Repr.emit(first, firstBytes);
    firstBytes.set(payload.subarray(0, 32768), 60);
    const last = fragment(payload, 32768, 65515 - 32768, false, 42);
    for (const order of [[new Ipv4Packet(firstBytes), last], [last, new Ipv4Packet(firstBytes)]]) {
      const { r, counters } = setup();
      expect(r.input(order[0]!)).toBeUndefined();
      expect(r.input(order[1]!)).toBeUndefined();
      expect(counters.get('reasm_too_big')).toBe(1);
      expect(counters.get('reasm_ok')).toBe(0);
      expect(r.bytesHeld).toBe(0);
      expect(r.datagramsInFlight).toBe(0);
    }
  });

  it('limits datagrams in flight and fragments per datagram', () => {
    const { r, counters } = setup({ maxDatagrams: 10, maxFragmentsPerDatagram: 4 });
    for (let id = 0; id < 25; id++) r.input(fragment(data(16), 0, 8, true, id));
    expect(r.datagramsInFlight).toBe(10);
    expect(counters.get('reasm_evicted')).toBe(15);
    const big = data(100);
    for (let i = 0; i < 5; i++) r.input(fragment(big, i * 8, 8, true, 999));
    expect(counters.get('reasm_too_many_fragments')).toBe(1);
  });
});
