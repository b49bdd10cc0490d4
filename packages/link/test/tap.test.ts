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

/** The same stand-in with the batched write the addon has: records each call's frames. */
class BatchingHandle extends FakeHandle {
  batches: number[][][] = [];
  /** Frames the next call takes before EAGAIN (Infinity: all). */
  room = Infinity;
  /** Frames (by index in the next call) the kernel refuses with EIO. */
  refuse = new Set<number>();
  writeBatch(frames: Uint8Array, lengths: Uint32Array, count: number, status: Int32Array): number {
    const batch: number[][] = [];
    let offset = 0;
    let done = 0;
    for (; done < count && done < this.room; done++) {
      const frame = Array.from(frames.subarray(offset, offset + lengths[done]!));
      offset += lengths[done]!;
      if (this.refuse.has(done)) {
        status[0]!++;
        status[1] = 5;
      } else {
        batch.push(frame);
      }
    }
    this.batches.push(batch);
    return done;
  }
}

function batchingTap(txQueueCapacity = 1024): { tap: TapDevice; handle: BatchingHandle } {
  const handle = new BatchingHandle();
  const tap = TapDevice.fromHandle(handle, { mac: MacAddress.parse('02:00:00:00:0b:02'), mtu: 1500, txQueueCapacity, maxBatch: 256 });
  return { tap, handle };
}

const frameOf = (length: number, fill: number): Uint8Array => new Uint8Array(length).fill(fill);

describe('TapDevice send batching (scripted handle with writeBatch)', () => {
  it('stages what one run sends and writes it in one call at the end of the run, in order', async () => {
    const { tap, handle } = batchingTap();
    const reused = new Uint8Array([1, 1]);
    expect(tap.send(reused)).toBe(true);
    reused.fill(9); // the caller reuses its buffer: the staged copy must not change
    expect(tap.send(new Uint8Array([2]))).toBe(true);
    expect(tap.send(new Uint8Array([3, 3, 3]))).toBe(true);
    expect(handle.batches).toEqual([]); // nothing written yet
    expect(tap.txStagedFrames).toBe(3);
    await Promise.resolve(); // the end of the run: the microtask flush
    expect(handle.batches).toEqual([[[1, 1], [2], [3, 3, 3]]]);
    expect(handle.written).toEqual([]); // never the one-frame write
    expect(tap.tapCounters.get('tx_batches')).toBe(1);
    expect(tap.tapCounters.get('tx_batch_max')).toBe(3);
    expect(tap.counters.get('tx_frames')).toBe(3);
    await Promise.resolve();
    expect(handle.batches.length).toBe(1); // an empty flush makes no call
  });

  it('writes at once on flush(), and the dispatcher-style flush leaves nothing for the microtask', async () => {
    const { tap, handle } = batchingTap();
    tap.send(new Uint8Array([1]));
    tap.flush();
    expect(handle.batches).toEqual([[[1]]]);
    tap.send(new Uint8Array([2]));
    tap.flush();
    await Promise.resolve();
    expect(handle.batches).toEqual([[[1]], [[2]]]);
  });

  it('is bounded: 256 frames or 512 KiB per call, whichever fills first', async () => {
    const { tap, handle } = batchingTap();
    for (let i = 0; i < 600; i++) tap.send(frameOf(60, i & 0xff));
    await Promise.resolve();
    expect(handle.batches.map((b) => b.length)).toEqual([256, 256, 88]);
    expect(handle.batches.flat().map((f) => f[0])).toEqual(Array.from({ length: 600 }, (_, i) => i & 0xff));
    handle.batches = [];
    for (let i = 0; i < 400; i++) tap.send(frameOf(1514, 1));
    await Promise.resolve();
    // 346 frames of 1514 bytes fit in 512 KiB; the batch frame limit (256) comes first
    expect(handle.batches.map((b) => b.length)).toEqual([256, 144]);
    handle.batches = [];
    const big = frameOf(14 + 9000, 7);
    const { tap: jumbo, handle: jh } = ((): { tap: TapDevice; handle: BatchingHandle } => {
      const h = new BatchingHandle();
      return { tap: TapDevice.fromHandle(h, { mtu: 9000 }), handle: h };
    })();
    for (let i = 0; i < 100; i++) jumbo.send(big);
    await Promise.resolve();
    expect(jh.batches.map((b) => b.length)).toEqual([58, 42]); // 58 x 9014 bytes fit in 512 KiB
    void tap;
  });

  it('parks what the device does not take (EAGAIN) in order, keeps later sends behind it, and drains when writable', async () => {
    const { tap, handle } = batchingTap(3);
    handle.room = 2;
    for (let i = 1; i <= 6; i++) tap.send(new Uint8Array([i]));
    await Promise.resolve();
    // [1, 2] written; 3, 4, 5 parked (capacity 3); 6 dropped
    expect(handle.batches).toEqual([[[1], [2]]]);
    expect(tap.txQueueLength).toBe(3);
    expect(tap.tapCounters.get('tx_eagain')).toBe(1);
    expect(tap.tapCounters.get('tx_dropped_queue_full')).toBe(1);
    expect(handle.writableWanted).toBe(true);
    expect(tap.send(new Uint8Array([7]))).toBe(false); // behind a full queue: dropped, not reordered
    handle.room = Infinity;
    handle.onWritable();
    // the parked frames go out staged again, as one batch (with I/O threads a single write()
    // would become a batch of its own)
    expect(handle.batches.at(-1)).toEqual([[3], [4], [5]]);
    expect(handle.written).toEqual([]);
    expect(handle.writableWanted).toBe(false);
    tap.send(new Uint8Array([8]));
    await Promise.resolve();
    expect(handle.batches.at(-1)).toEqual([[8]]);
  });

  it('with I/O threads: a batch the addon has no room for stays staged, in order, and the burst limit is the room left', async () => {
    /** Plays the addon's threaded writeBatch: all of a batch, or nothing while its buffers are in flight. */
    class ThreadedHandle extends BatchingHandle {
      ringRoom = 512;
      override writeBatch(frames: Uint8Array, lengths: Uint32Array, count: number, status: Int32Array): number {
        if (count > this.ringRoom) return 0;
        this.ringRoom -= count;
        return super.writeBatch(frames, lengths, count, status);
      }
      txRoom(): number {
        return this.ringRoom;
      }
    }
    const handle = new ThreadedHandle();
    const tap = TapDevice.fromHandle(handle, { ioThreads: true, sendBurstLimit: 256 });
    expect(tap.sendBurstLimit).toBe(256);
    handle.ringRoom = 3;
    expect(tap.sendBurstLimit).toBe(3);
    for (let i = 1; i <= 5; i++) tap.send(new Uint8Array([i]));
    expect(tap.sendBurstLimit).toBe(1); // never 0, which would mean no limit
    await Promise.resolve();
    expect(handle.batches).toEqual([]); // 5 frames, room for 3: nothing taken
    expect(tap.txStagedFrames).toBe(5); // kept staged, not copied into the parking queue
    expect(tap.txQueueLength).toBe(0);
    expect(tap.tapCounters.get('tx_eagain')).toBe(1);
    expect(handle.writableWanted).toBe(true);
    tap.send(new Uint8Array([6]));
    handle.ringRoom = 512;
    handle.onWritable();
    expect(handle.batches).toEqual([[[1], [2], [3], [4], [5], [6]]]);
    expect(tap.txStagedFrames).toBe(0);
    expect(handle.writableWanted).toBe(false);
    expect(tap.counters.get('tx_frames')).toBe(6);
    expect(tap.tapCounters.get('tx_dropped_queue_full')).toBe(0);
  });

  it('counts frames the kernel refuses and goes on with the rest', async () => {
    const { tap, handle } = batchingTap();
    handle.refuse = new Set([1]);
    for (let i = 1; i <= 3; i++) tap.send(new Uint8Array([i]));
    await Promise.resolve();
    expect(handle.batches).toEqual([[[1], [3]]]);
    expect(tap.tapCounters.get('tx_write_errors')).toBe(1);
  });

  it('writes the staged frames before the device closes', () => {
    const { tap, handle } = batchingTap();
    tap.send(new Uint8Array([1]));
    tap.close();
    expect(handle.batches).toEqual([[[1]]]);
    expect(handle.closed).toBe(true);
  });

  it('receivePending reads the device now (readNow) and delivers before returning', () => {
    const { tap, handle } = batchingTap();
    const got: number[][] = [];
    tap.setReceiver((frames) => got.push(...frames.map((f) => Array.from(f))));
    (handle as BatchingHandle & { readNow(): void }).readNow = () => handle.wake([[5, 5]]);
    tap.receivePending();
    expect(got).toEqual([[5, 5]]);
    tap.close();
    tap.receivePending(); // closed: nothing read, nothing thrown
    expect(got.length).toBe(1);
  });

  it('in virtio-net header mode stages each frame behind its header: one write each, header first', async () => {
    const handle = new BatchingHandle();
    const tap = TapDevice.fromHandle(handle, { vnetHeaderLength: 10 });
    const offload = { checksum: 'partial', checksumStart: 34, checksumOffset: 16, gso: 'tcpv4', segmentSize: 1448, headerLength: 66 } as const;
    tap.send(frameOf(60, 1));
    tap.send(frameOf(14 + 20000, 2), offload);
    await Promise.resolve();
    expect(handle.batches.length).toBe(1);
    const [plain, big] = handle.batches[0]!;
    expect(plain!.length).toBe(10 + 60);
    expect(plain!.slice(0, 10)).toEqual(new Array(10).fill(0)); // no offload: an all-zero header
    expect(plain![10]).toBe(1);
    expect(big!.length).toBe(10 + 14 + 20000);
    // flags NEEDS_CSUM, gso_type TCPV4, hdr_len 66, gso_size 1448, csum_start 34, csum_offset 16 (little-endian)
    expect(big!.slice(0, 10)).toEqual([1, 1, 66, 0, 0xa8, 0x05, 34, 0, 16, 0]);
    expect(big![10]).toBe(2);
    expect(tap.tapCounters.get('tx_gso_frames')).toBe(1);
  });

  it('tells senders its burst limit', () => {
    expect(batchingTap().tap.sendBurstLimit).toBe(256);
    expect(TapDevice.fromHandle(new BatchingHandle(), { sendBurstLimit: 0 }).sendBurstLimit).toBe(0);
  });
});

