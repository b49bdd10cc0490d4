/**
 * The simulation snippet of docs/testing.md, as written there: two stacks on a MemoryLink on a
 * VirtualClock; three pings one second apart play out inside one clock.advance().
 */
import { expect, it } from 'vitest';
import { MemoryLink, VirtualClock } from '@tapstack/link';
import { createStack } from '../src/stack.ts';

it('three pings, one second apart, in one advance of the virtual clock', async () => {
  const clock = new VirtualClock();
  const [wireA, wireB] = MemoryLink.pair({ clock, latencyMs: 1 });
  const a = createStack({ link: wireA, ip: '10.0.0.1/24', clock, random: () => 0.5 });
  const b = createStack({ link: wireB, ip: '10.0.0.2/24', clock, random: () => 0.5 });
  const done = a.icmp.ping(b.address, { count: 3, intervalMs: 1000 });
  clock.advance(5_000);
  const summary = await done;
  expect(summary).toMatchObject({ transmitted: 3, received: 3, duplicates: 0, lossPercent: 0 });
  // virtual time: 1 ms each way on the wire; the first request also waited for ARP (2 ms more)
  expect(summary.replies.map((r) => r.rttMs)).toEqual([4, 2, 2]);
  expect(a.neighbours()).toMatch(/^10\.0\.0\.2 dev \S+ lladdr 02:00:00:00:00:02 REACHABLE$/);
  a.close();
  b.close();
});
