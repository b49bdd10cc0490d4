import { describe, expect, it } from 'vitest';
import { Counters, VirtualClock } from '@tapstack/link';
import { FRAGMENT_OVERHEAD_BYTES, FragmentTable, type FragmentInsertResult, type FragmentLimits, type FragmentTableCounterName } from '../src/fragment-table.ts';

// The table alone, without either family: each family's reassembly tests (packages/ipv4,
// packages/ipv6) check the same rules again through their own headers.
const NAMES: readonly FragmentTableCounterName[] = ['reasm_bad_length', 'reasm_duplicate', 'reasm_overlap', 'reasm_too_many_fragments', 'reasm_timeout', 'reasm_evicted'];
const LIMITS: FragmentLimits = { highWaterBytes: 4096, lowWaterBytes: 2048, maxDatagrams: 4, maxFragmentsPerDatagram: 8, timeoutMs: 1000 };

function setup(limits: Partial<FragmentLimits> = {}) {
  const clock = new VirtualClock();
  const counters = new Counters('reasm', NAMES);
  const timedOut: (string | undefined)[] = [];
  const table = new FragmentTable<string>(clock, counters, { ...LIMITS, ...limits }, (first) => timedOut.push(first));
  const put = (key: string, offset: number, length: number, last = false, fill = offset & 0xff): FragmentInsertResult<string> =>
    table.insert(key, offset, new Uint8Array(length).fill(fill), last, () => ({ value: `first of ${key}`, bytes: 10 }));
  return { clock, counters, table, timedOut, put };
}

describe('FragmentTable', () => {
  it('completes in any order once the last fragment set the length and the holes are filled', () => {
    const { table, put } = setup();
    expect(put('a', 16, 8, true).kind).toBe('pending');
    expect(put('a', 0, 8).kind).toBe('pending');
    expect(table.bytesHeld).toBe(8 + 8 + 2 * FRAGMENT_OVERHEAD_BYTES + 10);
    const done = put('a', 8, 8);
    expect(done.kind).toBe('complete');
    if (done.kind !== 'complete') return;
    expect(done.first).toBe('first of a');
    expect(done.length).toBe(24);
    expect(done.fragments.map((f) => [f.offset, f.end])).toEqual([[0, 8], [8, 16], [16, 24]]);
    expect(table.datagramsInFlight).toBe(0);
    expect(table.bytesHeld).toBe(0);
  });

  it('drops a fragment inside a contiguous run alone, and any other overlap with the whole datagram', () => {
    const { table, counters, put } = setup();
    put('a', 0, 16);
    put('a', 16, 8);
    expect(put('a', 8, 16)).toEqual({ kind: 'dropped', reason: 'reasm_duplicate' });
    expect(table.datagramsInFlight).toBe(1);
    expect(put('a', 16, 16)).toEqual({ kind: 'dropped', reason: 'reasm_overlap' });
    expect(table.datagramsInFlight).toBe(0);
    expect(counters.get('reasm_duplicate')).toBe(1);
    expect(counters.get('reasm_overlap')).toBe(1);
  });

  it('discards a datagram whose fragments disagree on its length', () => {
    const { table, counters, put } = setup();
    put('a', 8, 8, true);
    expect(put('a', 16, 8).kind).toBe('dropped');
    put('b', 8, 8);
    expect(put('b', 0, 8, true)).toEqual({ kind: 'dropped', reason: 'reasm_bad_length' });
    expect(table.datagramsInFlight).toBe(0);
    expect(counters.get('reasm_bad_length')).toBe(2);
  });

  it('bounds fragments per datagram, datagrams in flight and bytes held', () => {
    const { table, counters, put } = setup();
    for (let i = 0; i < 8; i++) put('a', i * 8, 8);
    expect(put('a', 64, 8)).toEqual({ kind: 'dropped', reason: 'reasm_too_many_fragments' });
    for (const key of ['b', 'c', 'd', 'e', 'f']) put(key, 8, 8);
    expect(table.datagramsInFlight).toBe(4);
    expect(counters.get('reasm_evicted')).toBe(1);
    table.clear();
    for (let i = 0; i < 4; i++) put(`big${i}`, 8, 1000);
    expect(table.bytesHeld).toBeLessThanOrEqual(LIMITS.highWaterBytes);
    expect(table.bytesHeld).toBeLessThanOrEqual(LIMITS.lowWaterBytes);
  });

  it('times out an incomplete datagram and hands back what was kept of its first fragment', () => {
    const { clock, table, counters, timedOut, put } = setup();
    put('a', 0, 8);
    put('b', 8, 8);
    clock.advance(999);
    expect(timedOut).toEqual([]);
    clock.advance(1);
    expect(timedOut).toEqual(['first of a', undefined]);
    expect(counters.get('reasm_timeout')).toBe(2);
    expect(table.bytesHeld).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('refuses low-water above high-water', () => {
    expect(() => setup({ lowWaterBytes: 5000 })).toThrow(RangeError);
  });
});
