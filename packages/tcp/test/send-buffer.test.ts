/**
 * The send buffer with literal bytes: what it takes, what a range copies out across chunk
 * borders, what acknowledging forgets, and the one difference between copied and unchanging
 * (referenced) writes: a change to the application's buffer after the write shows only in the second.
 */
import { describe, expect, it } from 'vitest';
import { markUnchanging, NO_DATA, SendBuffer, segmentBytes } from '../src/send-buffer.ts';

const bytes = (...b: number[]): Uint8Array => new Uint8Array(b);

describe('SendBuffer', () => {
  it('takes only what fits and says how much', () => {
    const b = new SendBuffer(5);
    expect(b.write(bytes(1, 2, 3))).toBe(3);
    expect(b.write(bytes(4, 5, 6, 7))).toBe(2);
    expect(b.write(bytes(8))).toBe(0);
    expect(b.length).toBe(5);
    expect(b.free).toBe(0);
    expect(segmentBytes(b.range(0, 5))).toEqual(bytes(1, 2, 3, 4, 5));
  });

  it('copies a range that spans chunks into the target at the offset given', () => {
    const b = new SendBuffer(100);
    b.write(bytes(1, 2));
    b.write(bytes(3, 4, 5));
    b.write(bytes(6));
    b.write(bytes(7, 8, 9));
    const target = new Uint8Array(8).fill(0xee);
    b.range(1, 6).copyTo(target, 1);
    expect(target).toEqual(bytes(0xee, 2, 3, 4, 5, 6, 7, 0xee));
    // the same object for the next range: a segment's data is used before the next is asked for
    expect(b.range(0, 1)).toBe(b.range(8, 1));
    expect(segmentBytes(b.range(8, 1))).toEqual(bytes(9));
    expect(segmentBytes(b.range(3, 0))).toEqual(bytes());
  });

  it('reads in any order: backwards after forwards (a retransmission after new data)', () => {
    const b = new SendBuffer(100);
    for (let i = 0; i < 10; i++) b.write(bytes(i * 3, i * 3 + 1, i * 3 + 2));
    expect(segmentBytes(b.range(25, 4))).toEqual(bytes(25, 26, 27, 28));
    expect(segmentBytes(b.range(2, 3))).toEqual(bytes(2, 3, 4));
    expect(segmentBytes(b.range(28, 2))).toEqual(bytes(28, 29));
    expect(b.read(3, 3)).toEqual(bytes(3, 4, 5));
    expect(b.read(4, 4)).toEqual(bytes(4, 5, 6, 7));
  });

  it('forgets acknowledged bytes, also in the middle of a chunk, and keeps offsets from SND.UNA', () => {
    const b = new SendBuffer(100);
    b.write(bytes(1, 2, 3));
    b.write(bytes(4, 5, 6));
    b.write(bytes(7, 8, 9));
    expect(segmentBytes(b.range(6, 3))).toEqual(bytes(7, 8, 9)); // the cursor is on the last chunk
    b.acknowledge(4);
    expect(b.length).toBe(5);
    expect(segmentBytes(b.range(0, 5))).toEqual(bytes(5, 6, 7, 8, 9));
    expect(segmentBytes(b.range(2, 3))).toEqual(bytes(7, 8, 9));
    b.acknowledge(2);
    expect(segmentBytes(b.range(0, 3))).toEqual(bytes(7, 8, 9));
    b.write(bytes(10));
    expect(segmentBytes(b.range(1, 3))).toEqual(bytes(8, 9, 10));
    b.acknowledge(100);
    expect(b.length).toBe(0);
    b.write(bytes(11, 12));
    expect(segmentBytes(b.range(0, 2))).toEqual(bytes(11, 12));
  });

  it('refuses a range past what it holds', () => {
    const b = new SendBuffer(100);
    b.write(bytes(1, 2, 3));
    expect(() => b.range(2, 2)).toThrow(RangeError);
    expect(() => b.range(-1, 1)).toThrow(RangeError);
  });

  it('copies a plain write: the application may change its buffer afterwards', () => {
    const b = new SendBuffer(100);
    const app = bytes(1, 2, 3, 4);
    b.write(app);
    app.fill(0);
    expect(segmentBytes(b.range(0, 4))).toEqual(bytes(1, 2, 3, 4));
    expect(b.referencedWrites).toBe(0);
  });

  it('keeps a write of unchanging memory by reference (no copy), also a part of it', () => {
    const b = new SendBuffer(6);
    const memory = bytes(10, 11, 12, 13, 14, 15, 16, 17);
    markUnchanging(memory);
    expect(b.write(memory.subarray(1, 4))).toBe(3);
    expect(b.write(memory)).toBe(3); // only 3 fit
    expect(b.referencedWrites).toBe(2);
    expect(segmentBytes(b.range(0, 6))).toEqual(bytes(11, 12, 13, 10, 11, 12));
    // Breaking the promise shows: the buffer holds references (this is why it is a promise).
    memory[11 - 10] = 99;
    expect(segmentBytes(b.range(0, 1))).toEqual(bytes(99));
  });

  it('NO_DATA is empty and copies nothing', () => {
    const target = bytes(1, 2);
    NO_DATA.copyTo(target, 0);
    expect(target).toEqual(bytes(1, 2));
    expect(NO_DATA.length).toBe(0);
  });
});
