import debug from 'debug';
import { afterEach, describe, expect, it } from 'vitest';
import { hotPathLogging } from '../src/hot-path-log.ts';

const nextRun = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('hotPathLogging', () => {
  const previous = debug.disable();
  afterEach(() => {
    debug.disable();
    if (previous) debug.enable(previous);
  });

  it('answers what log.enabled said at its first read in the run, and follows debug.enable() from the next run', async () => {
    debug.disable();
    const log = debug('tapstack:hot-path-test');
    const logging = hotPathLogging(log);
    expect(logging()).toBe(false);
    debug.enable('tapstack:hot-path-test');
    expect(log.enabled).toBe(true);
    expect(logging()).toBe(false); // same run: the first answer holds
    await nextRun();
    expect(logging()).toBe(true);
    debug.disable();
    await nextRun();
    expect(logging()).toBe(false);
  });

  it('follows a forced log.enabled too, and each logger its own namespace', async () => {
    debug.disable();
    const a = debug('tapstack:hot-a');
    const b = debug('tapstack:hot-b');
    const loggingA = hotPathLogging(a);
    const loggingB = hotPathLogging(b);
    a.enabled = true;
    await nextRun();
    expect([loggingA(), loggingB()]).toEqual([true, false]);
  });
});
