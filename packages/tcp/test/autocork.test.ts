/**
 * Sending on a link that takes super-frames (gsoMaxSize): a small last piece waits for the end of
 * the application's run of code (autocorking, a microtask), so writes made one after another
 * leave as one segment; on a plain link every write with noDelay goes at once, as before.
 */
import { describe, expect, it } from 'vitest';
import { ISS, established } from './harness.ts';

const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

function open(gso: boolean) {
  const h = established({ sack: true });
  if (gso) Object.assign(h, { gsoMaxSize: 65535 });
  h.connection.setNoDelay(true);
  // 2,500 bytes in flight first: the small writes below are not the first data
  h.connection.write(bytes(2500, 1));
  const first = h.take().filter((s) => s.payload.length > 0);
  return { h, first };
}

describe('autocorking on a GSO link', () => {
  it('holds small writes until the microtask, then sends them as one segment', async () => {
    const { h, first } = open(true);
    // one super-frame of 2,500 bytes (it ends the data: the last segment may be short)
    expect(first.map((s) => [s.repr.seq, s.payload.length])).toEqual([[ISS + 1, 2500]]);
    h.connection.write(bytes(300, 2));
    h.connection.write(bytes(300, 3));
    expect(h.take().filter((s) => s.payload.length > 0)).toEqual([]);
    await Promise.resolve();
    const sent = h.take().filter((s) => s.payload.length > 0);
    expect(sent.map((s) => [s.repr.seq, s.payload.length])).toEqual([[ISS + 1 + 2500, 600]]);
    expect([...sent[0]!.payload.subarray(298, 302)]).toEqual([2, 2, 3, 3]);
    expect(h.clock.now()).toBe(10); // no timer: the same moment
  });

  it('sends a full segment at once, and a runt that ends the stream (FIN) too', () => {
    const { h } = open(true);
    h.connection.write(bytes(1000, 4));
    expect(h.take().filter((s) => s.payload.length > 0).map((s) => s.payload.length)).toEqual([1000]);
    h.connection.write(bytes(10, 5));
    h.connection.shutdown();
    expect(h.take().filter((s) => s.payload.length > 0).map((s) => s.payload.length)).toEqual([10]);
  });
});

describe('on a plain link', () => {
  it('sends each small write at once (noDelay)', () => {
    const { h, first } = open(false);
    expect(first.map((s) => s.payload.length)).toEqual([1000, 1000, 500]);
    h.connection.write(bytes(300, 2));
    h.connection.write(bytes(300, 3));
    expect(h.take().filter((s) => s.payload.length > 0).map((s) => s.payload.length)).toEqual([300, 300]);
  });
});
