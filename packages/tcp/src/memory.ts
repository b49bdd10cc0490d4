/**
 * The memory all connections' buffers share, and its one account, as Linux keeps tcp_mem
 * (net.ipv4.tcp_mem: low, pressure, high, for every TCP socket together) beside each socket's
 * own tcp_rmem / tcp_wmem bounds.
 *
 * Why a shared pool. Measured with 10,000 connections to the echo port, 1,000 of them moving
 * 16 KiB at a time (bench/idle.ts --active): with a full collection forced every 250 ms, the
 * ArrayBuffers alive stayed at 5-8 MB, yet without it the process grew by 60-90 MB. The rest was
 * garbage of two kinds: the device's reads (one ArrayBuffer per batch, dead within the batch,
 * freed by the next young-generation collection), and the send buffers' copies, one ArrayBuffer
 * per write, which lived a round trip (long enough to leave V8's young generation) and were then
 * freed only by a full collection, which V8 starts after some 64 MB more of such memory. So the
 * send buffers copy into fixed-size pages taken from here and give them back when the peer
 * acknowledges them: the same pages serve the next writes, and what the pool holds is what the
 * connections hold plus a bounded cache of free pages.
 *
 * The account counts two things: the send buffers' pages in use, and the receive buffers'
 * truesize (the device reads their in-order data keeps alive, and their out-of-order copies).
 * Against it, two thresholds:
 *  - pressure (tcp_mem[1]): above it, autotuning grows no buffer (Linux's tcp_should_expand_sndbuf
 *    and tcp_rcv_space_adjust hold back under memory pressure), and a receive buffer copies data
 *    out of device reads rather than keep a read alive for it beyond its own size (Linux
 *    collapses such skbs, tcp_collapse). Pressure ends when the account falls below the low mark
 *    (tcp_mem[0]).
 *  - the limit (tcp_mem[2]): above it, a send buffer gets no further page: its write takes only
 *    what fits in the page it is filling, and the application waits (backpressure) for its own
 *    acknowledgements to free pages. A send buffer that holds no page always gets one (the
 *    minimum Linux guarantees every socket, tcp_wmem[0]), so every connection still progresses.
 */
import type { Counter, Counters } from '@tapstack/link';

export interface TcpMemoryOptions {
  /** Bytes of one send-buffer page (default 4 KiB, a memory page: an echo of 16 KiB in flight then holds 16-20 KiB). */
  pageBytes?: number;
  /** Below this, pressure ends (tcp_mem[0]); default 3/4 of `pressureBytes`. */
  lowBytes?: number;
  /** Above this, autotuning stops and receive buffers copy (tcp_mem[1]); default 32 MiB. */
  pressureBytes?: number;
  /** Above this, send buffers get no page beyond their first (tcp_mem[2]); default 64 MiB. */
  limitBytes?: number;
  /** Free pages kept for reuse, bytes (the rest go to the collector); default 4 MiB. */
  cacheBytes?: number;
}

/** The counters the account keeps current (the layer's, so `stats` prints them). */
export const TCP_MEMORY_COUNTERS = [
  /** Bytes of send-buffer pages in use now (a gauge). */
  'mem_send_bytes',
  /** Bytes the receive buffers keep alive now: device reads and out-of-order copies (a gauge). */
  'mem_receive_bytes',
  /** Free pages kept for reuse, bytes (a gauge). */
  'mem_cached_bytes',
  /** The most `mem_send_bytes + mem_receive_bytes` has been. */
  'mem_peak_bytes',
  /** Times the account went above the pressure mark (Linux's TCPMemoryPressures). */
  'TCPMemoryPressures',
  /** Pages a send buffer asked for above the limit and did not get. */
  'mem_send_refused',
] as const;
export type TcpMemoryCounterName = (typeof TCP_MEMORY_COUNTERS)[number];

export class TcpMemory {
  readonly pageBytes: number;
  readonly lowBytes: number;
  readonly pressureBytes: number;
  readonly limitBytes: number;
  private readonly cacheBytes: number;
  private readonly cache: Uint8Array[] = [];
  private sendBytes = 0;
  private receiveBytes = 0;
  private pressure = false;
  private readonly cells: Record<TcpMemoryCounterName, Counter | { value: number }>;

  constructor(options: TcpMemoryOptions = {}, counters?: Counters<string>) {
    this.pageBytes = options.pageBytes ?? 4096;
    this.pressureBytes = options.pressureBytes ?? 32 * 1024 * 1024;
    this.lowBytes = options.lowBytes ?? Math.floor((this.pressureBytes * 3) / 4);
    this.limitBytes = options.limitBytes ?? 64 * 1024 * 1024;
    this.cacheBytes = options.cacheBytes ?? 4 * 1024 * 1024;
    if (!(this.pageBytes > 0 && this.lowBytes <= this.pressureBytes && this.pressureBytes <= this.limitBytes)) {
      throw new RangeError(`tcp memory: want pageBytes > 0 and low <= pressure <= limit, got ${this.pageBytes}, ${this.lowBytes}, ${this.pressureBytes}, ${this.limitBytes}`);
    }
    const cell = (name: TcpMemoryCounterName): Counter | { value: number } => counters?.counter(name) ?? { value: 0 };
    this.cells = Object.fromEntries(TCP_MEMORY_COUNTERS.map((n) => [n, cell(n)])) as Record<TcpMemoryCounterName, Counter | { value: number }>;
  }

  /** Bytes counted now: send pages in use and receive truesize. */
  get usedBytes(): number {
    return this.sendBytes + this.receiveBytes;
  }

  /** Send-buffer pages in use, bytes. */
  get sendPageBytes(): number {
    return this.sendBytes;
  }

  /** Receive buffers' truesize, bytes. */
  get receiveChargedBytes(): number {
    return this.receiveBytes;
  }

  /** Free pages kept for reuse, bytes. */
  get cachedBytes(): number {
    return this.cache.length * this.pageBytes;
  }

  /** Above the pressure mark (and not yet back below the low one): buffers must not grow. */
  get underPressure(): boolean {
    return this.pressure;
  }

  /**
   * A page for a send buffer that holds `heldPages` pages already, or undefined when the
   * account is at its limit and the buffer has its guaranteed first page.
   */
  takePage(heldPages: number): Uint8Array | undefined {
    if (heldPages > 0 && this.usedBytes + this.pageBytes > this.limitBytes) {
      this.cells.mem_send_refused.value++;
      return undefined;
    }
    const page = this.cache.pop() ?? new Uint8Array(this.pageBytes);
    this.sendBytes += this.pageBytes;
    this.changed();
    return page;
  }

  /** A send buffer is done with `page` (every byte of it acknowledged, or the connection closed). */
  givePage(page: Uint8Array): void {
    this.sendBytes -= this.pageBytes;
    if (this.cachedBytes + this.pageBytes <= this.cacheBytes) this.cache.push(page);
    this.changed();
  }

  /** A receive buffer's truesize changed by `delta` bytes. */
  chargeReceive(delta: number): void {
    if (delta === 0) return;
    this.receiveBytes += delta;
    this.changed();
  }

  private changed(): void {
    const used = this.usedBytes;
    if (!this.pressure && used > this.pressureBytes) {
      this.pressure = true;
      this.cells.TCPMemoryPressures.value++;
    } else if (this.pressure && used < this.lowBytes) {
      this.pressure = false;
    }
    const c = this.cells;
    c.mem_send_bytes.value = this.sendBytes;
    c.mem_receive_bytes.value = this.receiveBytes;
    c.mem_cached_bytes.value = this.cachedBytes;
    if (used > c.mem_peak_bytes.value) c.mem_peak_bytes.value = used;
  }
}
