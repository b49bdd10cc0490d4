import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { seqAdd, seqDiff, seqGe, seqGt, seqInWindow, seqLe, seqLt, seqMax, seqMin } from '../src/seq.ts';

describe('sequence arithmetic (RFC 9293 3.4)', () => {
  it('compares across the wrap at 2^32', () => {
    expect(seqLt(0xffffffff, 0)).toBe(true);
    expect(seqGt(0, 0xffffffff)).toBe(true);
    expect(seqLt(0xfffffff0, 0x10)).toBe(true);
    expect(seqLe(5, 5)).toBe(true);
    expect(seqGe(5, 5)).toBe(true);
    expect(seqLt(5, 5)).toBe(false);
    expect(seqDiff(0x10, 0xfffffff0)).toBe(0x20);
    expect(seqDiff(0xfffffff0, 0x10)).toBe(-0x20);
  });

  it('adds modulo 2^32, with negative steps too', () => {
    expect(seqAdd(0xffffffff, 1)).toBe(0);
    expect(seqAdd(0, -1)).toBe(0xffffffff);
    expect(seqAdd(0x7fffffff, 0x80000001)).toBe(0);
  });

  it('windows wrap: [2^32 - 10, 10) holds 0 and 2^32 - 1 but not 10', () => {
    expect(seqInWindow(0, 0xfffffff6, 10)).toBe(true);
    expect(seqInWindow(0xffffffff, 0xfffffff6, 10)).toBe(true);
    expect(seqInWindow(10, 0xfffffff6, 10)).toBe(false);
    expect(seqInWindow(7, 7, 7)).toBe(false);
  });

  it('max and min pick by circle order, not by magnitude', () => {
    expect(seqMax(0xffffffff, 3)).toBe(3);
    expect(seqMin(0xffffffff, 3)).toBe(0xffffffff);
  });

  it('a + n is after a for every step 1 .. 2^31 - 1, wherever a is', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: 0x7fffffff }), (a, n) => {
        const b = seqAdd(a, n);
        expect(seqGt(b, a)).toBe(true);
        expect(seqLt(a, b)).toBe(true);
        expect(seqDiff(b, a)).toBe(n);
      }),
    );
  });
});
