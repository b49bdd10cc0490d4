import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../src/clock.ts';
import { BaseLink, maxFrameLength } from '../src/link.ts';
import { MacAddress } from '../src/mac.ts';
import { MemoryLink, settle } from '../src/memory.ts';

function frame(length: number, fill = 0): Uint8Array {
  return new Uint8Array(length).fill(fill);
}

describe('MemoryLink', () => {
  it('delivers what one end sends to the other, in order, as one batch per tick', async () => {
    const [a, b] = MemoryLink.pair();
    const batches: number[][] = [];
    b.setReceiver((frames) => batches.push(frames.map((f) => f[0]!)));
    a.send(frame(60, 1));
    a.send(frame(60, 2));
    a.send(frame(60, 3));
    expect(batches).toEqual([]); // nothing crosses synchronously
    await settle(a, b);
    expect(batches).toEqual([[1, 2, 3]]);
    b.send(frame(60, 9)); // the other direction
    const back: number[] = [];
    a.setReceiver((frames) => back.push(...frames.map((f) => f[0]!)));
    await settle(a, b);
    expect(back).toEqual([9]);
    expect(a.counters.get('tx_frames')).toBe(3);
    expect(a.counters.get('tx_bytes')).toBe(180);
    expect(b.counters.get('rx_frames')).toBe(3);
    expect(b.counters.get('rx_bytes')).toBe(180);
  });

  it('keeps its own copy: the sender may reuse its buffer (also a Buffer) right after send()', async () => {
    const [a, b] = MemoryLink.pair();
    const got: Uint8Array[] = [];
    b.setReceiver((frames) => got.push(...frames));
    const buf = Buffer.alloc(60, 7);
    a.send(buf);
    buf.fill(0);
    await settle(a, b);
    expect(got[0]![0]).toBe(7);
  });

  it('treats mtu as the largest IP datagram: frames up to mtu + 14 pass, one byte more is dropped and counted', async () => {
    const [a, b] = MemoryLink.pair({ mtu: 1500 });
    expect(maxFrameLength(1500)).toBe(1514);
    const got: number[] = [];
    b.setReceiver((frames) => got.push(...frames.map((f) => f.length)));
    expect(a.send(frame(1514))).toBe(true);
    expect(a.send(frame(1515))).toBe(false);
    await settle(a, b);
    expect(got).toEqual([1514]);
    expect(a.counters.get('tx_dropped_too_big')).toBe(1);
  });

  it('counts frames that arrive with nobody receiving', async () => {
    const [a, b] = MemoryLink.pair();
    a.send(frame(20));
    await settle(a, b);
    expect(b.counters.get('rx_dropped_no_receiver')).toBe(1);
  });

  it('refuses to send once closed, and the closed end gets nothing', async () => {
    const [a, b] = MemoryLink.pair();
    let got = 0;
    b.setReceiver((frames) => (got += frames.length));
    a.send(frame(20));
    b.close();
    await settle(a, b);
    expect(got).toBe(0);
    a.close();
    expect(a.send(frame(20))).toBe(false);
    expect(a.counters.get('tx_dropped_closed')).toBe(1);
    let closed = 0;
    a.onClose(() => closed++); // already closed: runs at once
    expect(closed).toBe(1);
  });

  it('is bounded: past `capacity` frames in flight, send() fails', () => {
    const [a] = MemoryLink.pair({ capacity: 3 });
    const results = [1, 2, 3, 4, 5].map(() => a.send(frame(20)));
    expect(results).toEqual([true, true, true, false, false]);
    expect(a.counters.get('tx_errors')).toBe(2);
    expect(a.inFlight).toBe(3);
  });

  it('delivers on a virtual clock after latencyMs', () => {
    const clock = new VirtualClock();
    const [a, b] = MemoryLink.pair({ clock, latencyMs: 5 });
    const got: number[] = [];
    b.setReceiver((frames) => got.push(...frames.map((f) => f[0]!)));
    a.send(frame(20, 1));
    clock.advance(4);
    expect(got).toEqual([]);
    clock.advance(1);
    expect(got).toEqual([1]);
  });

  it('leaves no delivery timer behind when closed with frames on the wire', () => {
    const clock = new VirtualClock();
    const [a, b] = MemoryLink.pair({ clock, latencyMs: 5 });
    const got: Uint8Array[] = [];
    b.setReceiver((frames) => got.push(...frames));
    a.send(frame(20, 1));
    expect(clock.pending).toBe(1);
    a.close();
    expect(clock.pending).toBe(0);
    clock.advance(10);
    expect(got).toEqual([]);
  });

  it('uses the given MACs, MTU and names', () => {
    const macs = [MacAddress.parse('02:00:00:00:0a:01'), MacAddress.parse('02:00:00:00:0b:02')] as const;
    const [a, b] = MemoryLink.pair({ macs, mtu: 9000, names: ['left', 'right'] });
    expect(a.mac.toString()).toBe('02:00:00:00:0a:01');
    expect(b.mac.toString()).toBe('02:00:00:00:0b:02');
    expect(a.mtu).toBe(9000);
    expect([a.name, b.name]).toEqual(['left', 'right']);
  });
});

describe('frames() async iterator', () => {
  it('yields every frame in order and ends when the link closes', async () => {
    const [a, b] = MemoryLink.pair();
    const seen: number[] = [];
    const done = (async () => {
      for await (const f of b.frames()) seen.push(f[0]!);
      return 'ended';
    })();
    for (let i = 1; i <= 5; i++) a.send(frame(20, i));
    await settle(a, b);
    b.close();
    await expect(done).resolves.toBe('ended');
    expect(seen).toEqual([1, 2, 3, 4, 5]);
  });

  it('ends a pending next() at once when the link closes', async () => {
    const [, b] = MemoryLink.pair();
    const it = b.frames();
    const pending = it.next();
    b.close();
    await expect(pending).resolves.toEqual({ value: undefined, done: true });
  });

  it('break out of for-await detaches the iterator', async () => {
    const [a, b] = MemoryLink.pair();
    for (let i = 1; i <= 3; i++) a.send(frame(20, i));
    const seen: number[] = [];
    const loop = (async () => {
      for await (const f of b.frames()) {
        seen.push(f[0]!);
        if (seen.length === 2) break;
      }
    })();
    await settle(a, b);
    await loop;
    expect(seen).toEqual([1, 2]);
    a.send(frame(20, 4));
    await settle(a, b);
    expect(b.counters.get('rx_dropped_no_receiver')).toBe(1);
  });

  it('is bounded: a consumer that never reads loses frames past the capacity, counted', async () => {
    const saved = BaseLink.iteratorCapacity;
    BaseLink.iteratorCapacity = 10;
    try {
      const [a, b] = MemoryLink.pair();
      b.frames(); // never read
      for (let i = 0; i < 25; i++) a.send(frame(20, i));
      await settle(a, b);
      expect(b.counters.get('rx_dropped_iterator_full')).toBe(15);
    } finally {
      BaseLink.iteratorCapacity = saved;
    }
  });
});
