/**
 * The receive buffer keeps in-order data as views of the frames it came in (the one copy per
 * byte is the device's), charges the frames' buffers against twice its capacity as Linux
 * charges truesize, and copies what is too small to be worth its frame or would go past that.
 */
import { describe, expect, it } from 'vitest';
import { ReceiveBuffer, SMALLEST_KEPT_VIEW } from '../src/receive-buffer.ts';

/** One device read: `count` frames of `payload` bytes each, back to back in one ArrayBuffer, as the TAP addon hands them up. */
function batch(count: number, payload: number, frameOverhead = 66): Uint8Array[] {
  const frameLength = frameOverhead + payload;
  const buffer = new ArrayBuffer(count * frameLength);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const view = new Uint8Array(buffer, i * frameLength + frameOverhead, payload);
    view.fill(i + 1);
    out.push(view);
  }
  return out;
}

describe('ReceiveBuffer: one copy', () => {
  it('keeps in-order segments as views of their frames, charged once per device read', () => {
    const r = new ReceiveBuffer(256 * 1024, 0);
    const frames = batch(4, 1448);
    let seq = 0;
    for (const f of frames) {
      expect(r.receive(seq, f, 65535).delivered).toBe(1448);
      seq += 1448;
    }
    const first = r.read(100_000)!;
    expect(first.buffer).toBe(frames[0]!.buffer); // the frame's own memory, not a copy
    expect(first.byteOffset).toBe(frames[0]!.byteOffset);
    expect(r.pinnedBytes).toBe(frames[0]!.buffer.byteLength); // the three left still hold the read's buffer
    r.read(100_000);
    r.read(100_000);
    expect(r.pinnedBytes).toBe(frames[0]!.buffer.byteLength);
    const last = r.read(100_000)!;
    expect(last[0]).toBe(4);
    expect(r.pinnedBytes).toBe(0);
  });

  it('copies a segment smaller than SMALLEST_KEPT_VIEW, charging only its bytes', () => {
    const r = new ReceiveBuffer(64 * 1024, 0);
    const [tiny] = batch(1, SMALLEST_KEPT_VIEW - 1, 60_000); // a small segment in a big read
    r.receive(0, tiny!, 65535);
    expect(r.pinnedBytes).toBe(SMALLEST_KEPT_VIEW - 1);
    const out = r.read(1000)!;
    expect(out.buffer).not.toBe(tiny!.buffer);
    expect([...out]).toEqual([...tiny!]);
    expect(r.pinnedBytes).toBe(0);
  });

  it('copies once the buffers held would pass twice the capacity, so a peer cannot pin whole batches for little data', () => {
    const r = new ReceiveBuffer(16 * 1024, 0);
    let seq = 0;
    const kept: boolean[] = [];
    // each 1000-byte segment comes alone in a 12 KB device read (the rest of it other traffic)
    for (let i = 0; i < 8; i++) {
      const [f] = batch(1, 1000, 11_000);
      r.receive(seq, f!, 65535);
      seq += 1000;
      kept.push(r.pinnedBytes % 12_000 === 0);
    }
    expect(r.pinnedBytes).toBeLessThanOrEqual(2 * 16 * 1024);
    expect(r.pinnedBytes).toBe(2 * 12_000 + 6 * 1000); // two reads kept whole, six copied
    expect(kept).toEqual([true, true, false, false, false, false, false, false]);
    let total = 0;
    for (let b = r.read(1 << 20); b; b = r.read(1 << 20)) total += b.length;
    expect(total).toBe(8000);
    expect(r.pinnedBytes).toBe(0);
  });

  it('a partial read keeps the charge until the piece is gone; out-of-order data is copied', () => {
    const r = new ReceiveBuffer(64 * 1024, 0);
    const [a, b] = batch(2, 1000);
    r.receive(1000, b!, 65535); // out of order: copied, not a view
    expect(r.pinnedBytes).toBe(0);
    r.receive(0, a!, 65535); // fills the hole: a is a view, b's copy follows
    expect(r.readable).toBe(2000);
    const size = a!.buffer.byteLength;
    expect(r.pinnedBytes).toBe(size + 1000);
    expect(r.read(400)!.length).toBe(400);
    expect(r.pinnedBytes).toBe(size + 1000);
    expect(r.read(600)!.length).toBe(600);
    expect(r.pinnedBytes).toBe(1000);
    const rest = r.read(5000)!;
    expect(rest.buffer).not.toBe(b!.buffer);
    expect(rest[0]).toBe(2);
    expect(r.pinnedBytes).toBe(0);
  });
});
