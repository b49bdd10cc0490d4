// TapDevice checks that need no root (everything that touches a real device is in tap.e2e.test.ts).
import { describe, expect, it } from 'vitest';
import { MacAddress } from '../src/mac.ts';
import { TapDevice, TapError, checkInterfaceName, type TapHandle } from '../src/tap.ts';

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

// The JavaScript half of TapDevice against a scripted stand-in for the native handle: how a
// batch is cut into frames, and what happens when the device's queue is full (EAGAIN), which a
// real TAP device almost never reports.
class FakeHandle implements TapHandle {
  readonly ifname = 'tapfake';
  lengths!: Uint32Array;
  onFrames!: (buffer: ArrayBuffer, count: number) => void;
  onWritable!: () => void;
  onError!: (error: Error & { code?: string; syscall?: string; deviceGone?: boolean }) => void;
  written: number[][] = [];
  /** What write() answers next: bytes written, or -11 (EAGAIN). */
  full = false;
  writableWanted = false;
  closed = false;
  start(lengths: Uint32Array, onFrames: FakeHandle['onFrames'], onWritable: () => void, onError: FakeHandle['onError']): void {
    this.lengths = lengths;
    this.onFrames = onFrames;
    this.onWritable = onWritable;
    this.onError = onError;
  }
  write(frame: Uint8Array): number {
    if (this.full) return -11;
    this.written.push(Array.from(frame));
    return frame.length;
  }
  wantWritable(on: boolean): void {
    this.writableWanted = on;
  }
  configure(): void {}
  hostMac(): Uint8Array {
    return new Uint8Array([2, 0, 0, 0, 0, 1]);
  }
  ref(): void {}
  unref(): void {}
  close(): void {
    this.closed = true;
  }
  /** Plays one wake-up: the frames as the addon hands them over. */
  wake(frames: number[][]): void {
    const total = frames.reduce((n, f) => n + f.length, 0);
    const buffer = new ArrayBuffer(total);
    const bytes = new Uint8Array(buffer);
    let offset = 0;
    frames.forEach((f, i) => {
      bytes.set(f, offset);
      offset += f.length;
      this.lengths[i] = f.length;
    });
    this.onFrames(buffer, frames.length);
  }
}

function fakeTap(txQueueCapacity = 2): { tap: TapDevice; handle: FakeHandle } {
  const handle = new FakeHandle();
  const tap = TapDevice.fromHandle(handle, { mac: MacAddress.parse('02:00:00:00:0b:02'), mtu: 1500, txQueueCapacity, maxBatch: 256 });
  return { tap, handle };
}

describe('TapDevice (JavaScript side, scripted handle)', () => {
  it('cuts one wake-up into its frames and delivers them in one call', () => {
    const { tap, handle } = fakeTap();
    const calls: number[][][] = [];
    tap.setReceiver((frames) => calls.push(frames.map((f) => Array.from(f))));
    handle.wake([[1, 1, 1], [2, 2], [3, 3, 3, 3]]);
    handle.wake([[4]]);
    expect(calls).toEqual([[[1, 1, 1], [2, 2], [3, 3, 3, 3]], [[4]]]);
    expect(tap.counters.get('rx_frames')).toBe(4);
    expect(tap.counters.get('rx_bytes')).toBe(10);
    expect(tap.tapCounters.get('rx_batches')).toBe(2);
    expect(tap.tapCounters.get('rx_batch_max')).toBe(3);
  });

  it('queues frames on EAGAIN (copies), keeps order, flushes when writable, and drops past the capacity', () => {
    const { tap, handle } = fakeTap(2);
    expect(tap.send(new Uint8Array([1]))).toBe(true);
    handle.full = true;
    const reused = new Uint8Array([2]);
    expect(tap.send(reused)).toBe(true); // queued
    reused[0] = 99; // the caller reuses its buffer: the queued copy must not change
    expect(handle.writableWanted).toBe(true);
    handle.full = false;
    expect(tap.send(new Uint8Array([3]))).toBe(true); // behind the queue, even though the device has room
    expect(tap.send(new Uint8Array([4]))).toBe(false); // queue full (capacity 2)
    expect(tap.tapCounters.get('tx_dropped_queue_full')).toBe(1);
    expect(tap.txQueueLength).toBe(2);
    expect(handle.written).toEqual([[1]]);
    handle.onWritable();
    expect(handle.written).toEqual([[1], [2], [3]]);
    expect(tap.txQueueLength).toBe(0);
    expect(handle.writableWanted).toBe(false);
    expect(tap.tapCounters.get('tx_eagain')).toBe(1);
    expect(tap.tapCounters.get('tx_queued')).toBe(2);
  });

  it('a flush that meets EAGAIN again waits for the next writable wake-up', () => {
    const { tap, handle } = fakeTap(10);
    handle.full = true;
    tap.send(new Uint8Array([1]));
    tap.send(new Uint8Array([2]));
    handle.onWritable(); // still full
    expect(handle.written).toEqual([]);
    expect(handle.writableWanted).toBe(true);
    handle.full = false;
    handle.onWritable();
    expect(handle.written).toEqual([[1], [2]]);
  });

  it('closes itself on a device error, keeps the reason, and releases the handle once', () => {
    const { tap, handle } = fakeTap();
    let closes = 0;
    tap.onClose(() => closes++);
    handle.onError(Object.assign(new Error('read: File descriptor in bad state (EBADFD)'), { code: 'EBADFD', syscall: 'read' }));
    expect(tap.closed).toBe(true);
    expect(handle.closed).toBe(true);
    expect(tap.failure?.message).toMatch(/tapfake failed and was closed/);
    expect(tap.failure?.errno).toBe('EBADFD');
    tap.close();
    expect(closes).toBe(1);
    expect(tap.send(new Uint8Array(60))).toBe(false);
  });

  it('says the device was deleted when the addon found the interface gone', () => {
    const { tap, handle } = fakeTap();
    handle.onError(Object.assign(new Error('read: File descriptor in bad state (EBADFD)'), { code: 'EBADFD', syscall: 'read', deviceGone: true }));
    expect(tap.closed).toBe(true);
    expect(tap.failure?.message).toMatch(/^TAP device tapfake was deleted \(ip link del tapfake, or its namespace removed\) and is closed: read: /);
  });
});
