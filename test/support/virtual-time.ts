/**
 * Waiting for a promise on a virtual clock: simulations run minutes of protocol time in
 * milliseconds, so nothing settles unless the test moves the clock.
 */
import type { VirtualClock } from '@tapstack/link';

/**
 * Moves virtual time in 1 ms steps, letting the microtasks queued by each step run, until
 * `promise` settles; throws when it has not within `maxMs` of virtual time.
 */
export async function settleOnVirtualClock<T>(clock: VirtualClock, promise: Promise<T>, maxMs = 100_000): Promise<T> {
  let settled = false;
  let value: T | undefined;
  void promise.then((v) => {
    settled = true;
    value = v;
  });
  for (let t = 0; t < maxMs && !settled; t++) {
    clock.advance(1);
    for (let i = 0; i < 4; i++) await Promise.resolve();
  }
  if (!settled) throw new Error(`did not finish within ${maxMs} ms of virtual time`);
  return value as T;
}
