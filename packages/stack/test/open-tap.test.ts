/**
 * openTap: the virtio-net header by default, and the fallback to plain frames when the kernel
 * refuses the header (TUNSETVNETHDRSZ or TUNSETOFFLOAD fails), with one line saying so. The
 * refusal is staged by replacing TapDevice.open: no device, no root needed.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TapDevice, TapError, type TapOptions } from '@tapstack/link';
import { openTap } from '../src/main.ts';

const device = { ifname: 'tap0' } as unknown as TapDevice;

function stubOpen(refuse: (options: TapOptions) => TapError | undefined): TapOptions[] {
  const calls: TapOptions[] = [];
  vi.spyOn(TapDevice, 'open').mockImplementation((options: TapOptions = {}) => {
    calls.push(options);
    const error = refuse(options);
    if (error) throw error;
    return device;
  });
  return calls;
}

afterEach(() => vi.restoreAllMocks());

describe('openTap', () => {
  it('asks for the virtio-net header when on, and not when off (--no-vnet-hdr)', () => {
    const calls = stubOpen(() => undefined);
    const warnings: string[] = [];
    expect(openTap({ tap: 'tap0', mac: undefined, netns: undefined, vnetHeader: true }, (l) => warnings.push(l))).toBe(device);
    expect(openTap({ tap: 'tap0', mac: undefined, netns: 'lab', vnetHeader: false }, (l) => warnings.push(l))).toBe(device);
    expect(calls.map((c) => c.vnetHeader ?? false)).toEqual([true, false]);
    expect(calls[1]!.netns).toBe('lab');
    expect(warnings).toEqual([]);
  });

  for (const syscall of ['ioctl(TUNSETVNETHDRSZ)', 'ioctl(TUNSETOFFLOAD)']) {
    it(`falls back to plain frames, with one line, when ${syscall} fails`, () => {
      const calls = stubOpen((o) => (o.vnetHeader ? new TapError('EIO', 'refused', 'EINVAL', syscall) : undefined));
      const warnings: string[] = [];
      expect(openTap({ tap: 'tap0', mac: undefined, netns: undefined, vnetHeader: true }, (l) => warnings.push(l))).toBe(device);
      expect(calls.map((c) => c.vnetHeader ?? false)).toEqual([true, false]);
      expect(warnings).toEqual([`tapstack: the kernel refused the virtio-net header (${syscall}: EINVAL): running on plain frames, one per system call (as --no-vnet-hdr)`]);
    });
  }

  it('does not hide other failures behind the fallback (a busy device, no permission)', () => {
    const calls = stubOpen(() => new TapError('EBUSY', 'busy', 'EBUSY', 'ioctl(TUNSETIFF)'));
    expect(() => openTap({ tap: 'tap0', mac: undefined, netns: undefined, vnetHeader: true }, () => {})).toThrow(/busy/);
    expect(calls).toHaveLength(1);
  });
});
