/**
 * TapOptions.napi and groFlushTimeoutNs against the real kernel: the device opened from outside
 * its namespace (`netns`), as `tapstack up --netns` does, so the gro_flush_timeout write has to go
 * through the namespace's own sysfs (`ip netns exec`); and the settings refused before anything
 * is written. test/napi.e2e.test.ts runs the whole stack in this mode.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Netns, requireE2eCapabilities } from '../../../test/support/netns.ts';
import { TapDevice, TapError } from '../src/tap.ts';

describe('TapDevice in NAPI mode (in a namespace)', () => {
  let ns: Netns;
  beforeAll(() => {
    requireE2eCapabilities();
    ns = Netns.create('napi-link');
  });
  afterAll(() => ns?.destroy());

  const timeout = (ifname: string): string => ns.exec('cat', [`/sys/class/net/${ifname}/gro_flush_timeout`]).trim();

  it('opens with IFF_NAPI and sets gro_flush_timeout in the namespace the device lives in', () => {
    const device = TapDevice.open({ name: 'tapn0', netns: ns.name, napi: true, groFlushTimeoutNs: 30_000 });
    const plain = TapDevice.open({ name: 'tapn1', netns: ns.name, napi: true });
    try {
      expect(timeout('tapn0')).toBe('30000');
      // napi without a timeout leaves the kernel's default: every write flushes GRO at once
      expect(timeout('tapn1')).toBe('0');
    } finally {
      device.close();
      plain.close();
    }
    expect(ns.exec('ip', ['-o', 'link', 'show'])).not.toMatch(/tapn[01]/);
  });

  it('refuses a timeout without napi, or one that is not a whole number of nanoseconds, and leaves no device behind', () => {
    for (const options of [{ groFlushTimeoutNs: 1000 }, { napi: true, groFlushTimeoutNs: -1 }, { napi: true, groFlushTimeoutNs: 1.5 }]) {
      expect(() => TapDevice.open({ name: 'tapn2', netns: ns.name, ...options })).toThrow(TapError);
      expect(ns.exec('ip', ['-o', 'link', 'show'])).not.toMatch(/tapn2/);
    }
  });
});
