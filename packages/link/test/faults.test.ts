import { describe, expect, it } from 'vitest';
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
});
