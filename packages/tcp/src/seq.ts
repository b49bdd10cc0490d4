/**
 * Sequence-number arithmetic (RFC 9293 3.4): sequence numbers live in a circle of 2^32, so
 * "a comes before b" means the distance from a to b, taken the short way round, is positive.
 * Every comparison of two sequence numbers in this package goes through these functions; a plain
 * `<` between two of them is a bug (it breaks when the numbers wrap past 2^32 - 1).
 *
 * Sequence numbers are plain numbers in 0 .. 2^32 - 1 (unsigned, as read from the header).
 */

/** Signed distance from `b` to `a`: positive when `a` is after `b` (at most 2^31 - 1 either way). */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** `a + n` on the circle, as an unsigned 32-bit number (`n` may be negative). */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** a < b on the circle. */
export function seqLt(a: number, b: number): boolean {
  return seqDiff(a, b) < 0;
}

/** a <= b on the circle. */
export function seqLe(a: number, b: number): boolean {
  return seqDiff(a, b) <= 0;
}

/** a > b on the circle. */
export function seqGt(a: number, b: number): boolean {
  return seqDiff(a, b) > 0;
}

/** a >= b on the circle. */
export function seqGe(a: number, b: number): boolean {
  return seqDiff(a, b) >= 0;
}

/** The later of two sequence numbers. */
export function seqMax(a: number, b: number): number {
  return seqGe(a, b) ? a : b;
}

/** The earlier of two sequence numbers. */
export function seqMin(a: number, b: number): number {
  return seqLe(a, b) ? a : b;
}

/** low <= x < high on the circle (an empty range when low == high). */
export function seqInWindow(x: number, low: number, high: number): boolean {
  return seqLe(low, x) && seqLt(x, high);
}
