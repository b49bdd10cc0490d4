import { describe, expect, it } from 'vitest';
import { SystemClock, VirtualClock } from '../src/clock.ts';

/** Spins until performance.now() has moved past `t` (the system clock is read for real). */
function waitPast(t: number): void {
  while (performance.now() <= t + 0.01) {
    /* spin */
  }
}

describe('SystemClock.coarseNow', () => {
  it('is one reading for the whole synchronous run, never newer than now()', () => {
    const clock = new SystemClock();
    const first = clock.coarseNow();
    waitPast(first);
    expect(clock.coarseNow()).toBe(first);
    expect(clock.now()).toBeGreaterThan(first);
  });

  it('reads the clock again once the run has ended (after the microtask checkpoint)', async () => {
    const clock = new SystemClock();
    const first = clock.coarseNow();
    waitPast(first);
    await Promise.resolve();
    const second = clock.coarseNow();
    expect(second).toBeGreaterThan(first);
    expect(second).toBeLessThanOrEqual(clock.now());
  });
});

describe('VirtualClock.coarseNow', () => {
  it('is exact: it follows advance() inside one synchronous run', () => {
    const clock = new VirtualClock(100);
    expect(clock.coarseNow()).toBe(100);
    clock.advance(250);
    expect(clock.coarseNow()).toBe(350);
    expect(clock.coarseNow()).toBe(clock.now());
  });
});

describe('SystemClock.hold', () => {
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

  it('keeps the process alive with one ref\'d timer for all holds together, gone with the last release (a timer per open socket was ~200 bytes of every idle connection)', () => {
    const clock = new SystemClock();
    const before = timers();
    const releases = Array.from({ length: 100 }, () => clock.hold());
    expect(timers()).toBe(before + 1);
    for (const release of releases.slice(1)) release();
    expect(timers()).toBe(before + 1);
    releases[0]!();
    expect(timers()).toBe(before);
    // releasing twice does nothing: the next hold starts the timer again and one release ends it
    releases[0]!();
    const again = clock.hold();
    expect(timers()).toBe(before + 1);
    again();
    expect(timers()).toBe(before);
  });
});
