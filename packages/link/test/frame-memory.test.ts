import { describe, expect, it } from 'vitest';
import { FrameMemory } from '../src/frame-memory.ts';

describe('FrameMemory', () => {
  it('hands out one reused buffer, and the same view for frames of the same length', () => {
    const m = new FrameMemory();
    const a = m.frame(1514, true, 2048);
    const b = m.frame(1514, true, 2048);
    const c = m.frame(60, true, 2048);
    expect(a.length).toBe(1514);
    expect(b).toBe(a);
    expect(c.length).toBe(60);
    expect(c.buffer).toBe(a.buffer);
    expect(a.buffer.byteLength).toBe(2048);
  });

  it('gives a frame memory of its own when it may not be reused', () => {
    const m = new FrameMemory();
    const reused = m.frame(100, true, 2048);
    const own = m.frame(100, false, 2048);
    expect(own.buffer).not.toBe(reused.buffer);
    expect(own.buffer.byteLength).toBe(100);
  });

  it('grows past its capacity for a longer frame', () => {
    const m = new FrameMemory();
    const small = m.frame(100, true, 200);
    const big = m.frame(300, true, 200);
    expect(big.length).toBe(300);
    expect(big.buffer).not.toBe(small.buffer);
  });

  it('lets the buffer go once a resolver keeps a frame built in it', () => {
    const m = new FrameMemory();
    const queued = m.frame(1514, true, 2048);
    queued.fill(0xab);
    m.kept(queued);
    const next = m.frame(1514, true, 2048);
    expect(next.buffer).not.toBe(queued.buffer);
    next.fill(0);
    expect(queued.every((byte) => byte === 0xab)).toBe(true);
  });

  it('keeps its buffer when the kept frame is not its own', () => {
    const m = new FrameMemory();
    const reused = m.frame(100, true, 2048);
    m.kept(new Uint8Array(100));
    expect(m.frame(100, true, 2048)).toBe(reused);
  });
});
