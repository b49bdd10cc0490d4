import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../src/clock.ts';
import { withFaults } from '../src/faults.ts';
import { MemoryLink, settle } from '../src/memory.ts';

function numbered(i: number): Uint8Array {
  const f = new Uint8Array(60);
  new DataView(f.buffer).setUint32(20, i);
  return f;
}
const idOf = (f: Uint8Array) => new DataView(f.buffer, f.byteOffset).getUint32(20);

/** Sends `count` numbered frames from a through the injector-wrapped side and returns what b got. */
async function run(options: Parameters<typeof withFaults>[1], count: number, wrap: 'sender' | 'receiver' = 'sender') {
  const [a, b] = MemoryLink.pair();
  const sender = wrap === 'sender' ? withFaults(a, options) : a;
  const receiver = wrap === 'receiver' ? withFaults(b, options) : b;
  const got: Uint8Array[] = [];
  receiver.setReceiver((frames) => got.push(...frames));
  for (let i = 0; i < count; i++) sender.send(numbered(i));
  await settle(a, b);
  const injector = wrap === 'sender' ? sender : receiver;
  return { got, counters: (injector as ReturnType<typeof withFaults>).faultCounters };
}

describe('FaultInjector', () => {
  it('passes everything through unchanged with no faults configured', async () => {
    const { got, counters } = await run({}, 100);
    expect(got.map(idOf)).toEqual([...Array(100).keys()]);
    expect(counters.format()).toBe('');
  });

  it('drop: 1 loses every frame, counted', async () => {
    const { got, counters } = await run({ drop: 1 }, 50);
    expect(got).toEqual([]);
    expect(counters.get('dropped')).toBe(50);
  });

  it('duplicate: 1 delivers every frame twice', async () => {
    const { got, counters } = await run({ duplicate: 1 }, 10);
    expect(got.map(idOf)).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9]);
    expect(counters.get('duplicated')).toBe(10);
  });

  it('corrupt: 1 flips exactly one bit of every frame and never touches the sender buffer', async () => {
    const [a, b] = MemoryLink.pair();
    const faulty = withFaults(a, { corrupt: 1, seed: 3 });
    const got: Uint8Array[] = [];
    b.setReceiver((frames) => got.push(...frames));
    const originals = Array.from({ length: 200 }, (_, i) => numbered(i));
    const copies = originals.map((f) => new Uint8Array(f));
    for (const f of originals) faulty.send(f);
    await settle(a, b);
    expect(originals).toEqual(copies);
    expect(got.length).toBe(200);
    got.forEach((f, i) => {
      let bits = 0;
      for (let j = 0; j < f.length; j++) {
        let x = f[j]! ^ copies[i]![j]!;
        while (x) {
          bits += x & 1;
          x >>= 1;
        }
      }
      expect(bits).toBe(1);
    });
    expect(faulty.faultCounters.get('corrupted')).toBe(200);
  });

  it('reorder: 1 swaps each pair of frames', async () => {
    const { got, counters } = await run({ reorder: 1 }, 6);
    expect(got.map(idOf)).toEqual([1, 0, 3, 2, 5, 4]);
    expect(counters.get('reordered')).toBe(3);
  });

  it('applies faults on receive too, and only in the configured direction', async () => {
    const rx = await run({ drop: 1, direction: 'rx' }, 10, 'receiver');
    expect(rx.got).toEqual([]);
    expect(rx.counters.get('dropped')).toBe(10);
    const txOnly = await run({ drop: 1, direction: 'tx' }, 10, 'receiver');
    expect(txOnly.got.length).toBe(10);
    expect(txOnly.counters.get('dropped')).toBe(0);
  });

  it('is seeded: the same seed gives the same run, another seed another one', async () => {
    const options = { drop: 0.2, duplicate: 0.1, corrupt: 0.1, reorder: 0.1 };
    const one = await run({ ...options, seed: 11 }, 500);
    const two = await run({ ...options, seed: 11 }, 500);
    const other = await run({ ...options, seed: 12 }, 500);
    expect(two.got).toEqual(one.got);
    expect(two.counters.snapshot()).toEqual(one.counters.snapshot());
    expect(other.got).not.toEqual(one.got);
  });

  it('drops about the configured share, and every frame is accounted for', async () => {
    const n = 10_000;
    const { got, counters } = await run({ drop: 0.3, seed: 5 }, n);
    const dropped = counters.get('dropped');
    expect(dropped).toBeGreaterThan(n * 0.27);
    expect(dropped).toBeLessThan(n * 0.33);
    expect(got.length + dropped).toBe(n);
  });

  it('refuses probabilities outside 0..1', () => {
    const [a] = MemoryLink.pair();
    expect(() => withFaults(a, { drop: 1.5 })).toThrow(RangeError);
    expect(() => withFaults(a, { corrupt: -0.1 })).toThrow(RangeError);
    expect(() => withFaults(a, { reorder: Number.NaN })).toThrow(RangeError);
  });

  it('looks like the link it wraps', () => {
    const [a] = MemoryLink.pair();
    const f = withFaults(a, {});
    expect(f.mac).toBe(a.mac);
    expect(f.mtu).toBe(a.mtu);
    expect(f.name).toBe(a.name);
    expect(f.counters).toBe(a.counters);
    f.close();
    expect(a.closed).toBe(true);
  });

  describe('delay and jitter (on a virtual clock)', () => {
    /** a -> b with the injector on a's side (tx) or b's side (rx); arrival times in virtual ms. */
    function delayed(options: Parameters<typeof withFaults>[1], wrap: 'sender' | 'receiver' = 'sender') {
      const clock = new VirtualClock();
      const [a, b] = MemoryLink.pair();
      const injector = withFaults(wrap === 'sender' ? a : b, { ...options, clock });
      const sender = wrap === 'sender' ? injector : a;
      const receiver = wrap === 'receiver' ? injector : b;
      const arrivals: { id: number; at: number }[] = [];
      const batches: number[][] = [];
      receiver.setReceiver((frames) => {
        batches.push(frames.map(idOf));
        for (const f of frames) arrivals.push({ id: idOf(f), at: clock.now() });
      });
      return { clock, a, b, injector, sender, arrivals, batches };
    }

    it('holds every frame for delayMs, then passes them on in order', async () => {
      const { clock, a, b, injector, sender, arrivals, batches } = delayed({ delayMs: 10 });
      for (let i = 0; i < 5; i++) sender.send(numbered(i));
      expect(injector.delayed).toBe(5);
      clock.advance(9.999);
      await settle(a, b);
      expect(arrivals).toEqual([]);
      clock.advance(0.001);
      await settle(a, b);
      expect(arrivals.map((x) => x.id)).toEqual([0, 1, 2, 3, 4]);
      expect(injector.delayed).toBe(0);
      expect(injector.faultCounters.get('delayed')).toBe(5);
      expect(batches).toEqual([[0, 1, 2, 3, 4]]);
    });

    it('delays received batches too, delivering a batch that arrived together as one batch', async () => {
      const { clock, a, b, injector, sender, arrivals, batches } = delayed({ delayMs: 10, direction: 'rx' }, 'receiver');
      for (let i = 0; i < 3; i++) sender.send(numbered(i));
      await settle(a, b);
      expect(arrivals).toEqual([]);
      expect(injector.delayed).toBe(3);
      clock.advance(10);
      expect(arrivals.map((x) => x.id)).toEqual([0, 1, 2]);
      expect(arrivals.every((x) => x.at === 10)).toBe(true);
      expect(batches.flat()).toEqual([0, 1, 2]);
    });

    it('jitter: each frame takes delay + [0, jitter) ms, drawn from the seed, never reordered', async () => {
      const run = async (seed: number) => {
        const { clock, a, b, sender, arrivals } = delayed({ delayMs: 10, jitterMs: 5, seed });
        for (let i = 0; i < 200; i++) {
          sender.send(numbered(i));
          clock.advance(1);
          await settle(a, b);
        }
        for (let i = 0; i < 20; i++) {
          clock.advance(1);
          await settle(a, b);
        }
        return arrivals;
      };
      const one = await run(7);
      expect(one.map((x) => x.id)).toEqual([...Array(200).keys()]);
      // frame i was sent at i ms and is seen at the first whole ms at or after it left
      const delays = one.map((x) => x.at - x.id);
      for (const d of delays) {
        expect(d).toBeGreaterThanOrEqual(10);
        expect(d).toBeLessThanOrEqual(16);
      }
      expect(new Set(delays).size).toBeGreaterThan(3);
      expect(await run(7)).toEqual(one);
      expect(await run(8)).not.toEqual(one);
    });

    it('drops what does not fit in the delay line (delayLimit), counted', async () => {
      const { clock, a, b, injector, sender, arrivals } = delayed({ delayMs: 10, delayLimit: 3 });
      for (let i = 0; i < 5; i++) sender.send(numbered(i));
      clock.advance(10);
      await settle(a, b);
      expect(arrivals.map((x) => x.id)).toEqual([0, 1, 2]);
      expect(injector.faultCounters.get('delay_overflows')).toBe(2);
    });

    it('keeps its own copy: the sender may reuse its buffer at once', async () => {
      const { clock, a, b, sender, arrivals, batches } = delayed({ delayMs: 1 });
      const frame = numbered(42);
      sender.send(frame);
      frame.fill(0);
      clock.advance(1);
      await settle(a, b);
      expect(arrivals.map((x) => x.id)).toEqual([42]);
      expect(batches).toEqual([[42]]);
    });

    it('close() cancels the delay timer and drops what waits', async () => {
      const { clock, a, b, injector, sender, arrivals } = delayed({ delayMs: 10 });
      sender.send(numbered(1));
      expect(clock.pending).toBe(1);
      injector.close();
      expect(clock.pending).toBe(0);
      clock.advance(20);
      await settle(a, b);
      expect(arrivals).toEqual([]);
    });

    it('reorderDelayMs: a frame picked by reorder is held that long while later ones pass, on both sides; close() drops what is held', async () => {
      const { clock, a, b, injector, sender, arrivals } = delayed({ reorder: 1, reorderDelayMs: 3 });
      sender.send(numbered(0));
      sender.send(numbered(1));
      clock.advance(1);
      await settle(a, b);
      expect(arrivals).toEqual([]);
      clock.advance(2);
      await settle(a, b);
      expect(arrivals).toEqual([{ id: 0, at: 3 }, { id: 1, at: 3 }]);
      expect(injector.faultCounters.get('reordered')).toBe(2);
      // with a delay line too: held 3 ms, then the line's 10 ms; a frame not picked passes it
      const rx = delayed({ reorder: 0.5, reorderDelayMs: 3, delayMs: 10, direction: 'rx', seed: 2 }, 'receiver');
      for (let i = 0; i < 8; i++) rx.sender.send(numbered(i));
      await settle(rx.a, rx.b);
      rx.clock.advance(20);
      await settle(rx.a, rx.b);
      const held = rx.injector.faultCounters.get('reordered');
      expect(held).toBeGreaterThan(0);
      expect(held).toBeLessThan(8);
      expect(rx.arrivals.filter((x) => x.at === 10).length).toBe(8 - held);
      expect(rx.arrivals.filter((x) => x.at === 13).length).toBe(held);
      expect(rx.arrivals.map((x) => x.id).sort((p, q) => p - q)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      sender.send(numbered(9));
      expect(clock.pending).toBe(1);
      injector.close();
      expect(clock.pending).toBe(0);
    });

    it('refuses a negative or absurd delay and a bad limit', () => {
      const [a] = MemoryLink.pair();
      expect(() => withFaults(a, { delayMs: -1 })).toThrow(RangeError);
      expect(() => withFaults(a, { jitterMs: Number.NaN })).toThrow(RangeError);
      expect(() => withFaults(a, { delayMs: 1e9 })).toThrow(RangeError);
      expect(() => withFaults(a, { delayMs: 1, delayLimit: 0 })).toThrow(RangeError);
      expect(() => withFaults(a, { reorder: 0.1, reorderDelayMs: -2 })).toThrow(RangeError);
    });
  });
});
