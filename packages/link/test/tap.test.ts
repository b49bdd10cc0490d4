// TapDevice checks that need no root (everything that touches a real device is in tap.e2e.test.ts).
import { describe, expect, it } from 'vitest';
import { TapDevice, TapError, checkInterfaceName } from '../src/tap.ts';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TapError);
    return (err as TapError).code;
  }
  return undefined;
}

describe('interface names', () => {
  it('accepts what Linux accepts', () => {
    for (const ok of ['tap0', 'tap%d', 'a', 'tap-stack_1.2', '123456789012345']) expect(checkInterfaceName(ok)).toBeUndefined();
  });
  it('refuses empty, too long, and bad characters, saying why', () => {
    expect(checkInterfaceName('')).toMatch(/empty/);
    expect(checkInterfaceName('1234567890123456')).toMatch(/15 at most/);
    expect(checkInterfaceName('tap/0')).toMatch(/characters/);
    expect(checkInterfaceName('tap 0')).toMatch(/characters/);
    expect(checkInterfaceName('tap:0')).toMatch(/characters/);
    expect(checkInterfaceName('..')).toMatch(/not a valid/);
    expect(checkInterfaceName('tap%s')).toMatch(/characters/);
  });
});

describe('TapDevice.open option checks (before any system call)', () => {
  it('rejects invalid names with EINVAL_NAME', () => {
    expect(codeOf(() => TapDevice.open({ name: 'a-name-that-is-far-too-long' }))).toBe('EINVAL_NAME');
    expect(codeOf(() => TapDevice.open({ name: 'tap/0' }))).toBe('EINVAL_NAME');
  });
  it('rejects an MTU IPv4 cannot use or a TAP device cannot carry', () => {
    expect(codeOf(() => TapDevice.open({ mtu: 67 }))).toBe('EINVAL_OPTION');
    expect(codeOf(() => TapDevice.open({ mtu: 65536 }))).toBe('EINVAL_OPTION');
  });
  it('rejects namespace names that could escape /run/netns', () => {
    expect(codeOf(() => TapDevice.open({ netns: '../../proc/1/ns/net' }))).toBe('ENOENT_NETNS');
    expect(codeOf(() => TapDevice.open({ netns: '..' }))).toBe('ENOENT_NETNS');
  });
});
