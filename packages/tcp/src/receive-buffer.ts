/**
 * The receive side's bytes: in-order data waiting for the application, and out-of-order
 * segments waiting for the hole before them to fill (RFC 9293 3.10.7.4, "segment text").
 *
 * Both are bounded by one capacity in bytes, the socket's receive buffer: the window we
 * advertise is what is free of it, so a peer that respects the window can never make us hold
 * more, and one that does not has its excess trimmed away before anything is stored. Duplicate
 * bytes (a retransmission of data we have) are never stored or delivered twice.
 *
 * Positions are sequence numbers; `next` is RCV.NXT, the first byte not yet received in order.
 *
 * One copy from the device to the application: in-order data is kept as the view of the frame it
 * came in (the IPv4 handler contract gives a transport the frame's bytes), not copied again. A
 * view keeps its whole frame alive, and the frames of one device read share one ArrayBuffer, so
 * what the queue holds is counted by those buffers as Linux counts an skb's truesize against the
 * receive buffer: each run of consecutive pieces in the same ArrayBuffer is charged its size
 * once. Past twice the capacity, or for a piece too small to be worth its frame, the bytes are
 * copied out instead, so a peer that sends tiny segments cannot make us hold whole batches of
 * frames for them. Out-of-order pieces, which may wait long, are always copied.
 *
 * What it keeps alive (pinned reads and out-of-order copies) is charged to the stack's shared
 * `TcpMemory` account (memory.ts). While the stack is under memory pressure, the bound for kept
 * reads drops from twice the capacity to the capacity itself, so more is copied out of reads.
 */
import { TcpMemory } from './memory.ts';
import { seqAdd, seqDiff, seqGt, seqLe, seqLt, seqMax } from './seq.ts';

interface Piece {
  seq: number;
  data: Uint8Array;
}

export interface ReceiveOutcome {
  /** In-order bytes this segment added (its own and any out-of-order ones it released). */
  delivered: number;
  /** Some of it went to the out-of-order queue (a hole lies before it). */
  outOfOrder: boolean;
  /** It filled (part of) a hole: out-of-order data became in order. */
  filledHole: boolean;
  /** Bytes of it that were already here (a duplicate, partly or wholly). */
  duplicate: number;
}

/** In-order pieces smaller than this are copied rather than kept as a view of their frame. */
export const SMALLEST_KEPT_VIEW = 256;

export class ReceiveBuffer {
  /** RCV.NXT. */
  next: number;
  private ready: Uint8Array[] = [];
  /** For each ready piece: the bytes of ArrayBuffer it is charged with (its run's size, on the run's first piece). */
  private readyCharge: number[] = [];
  private readyBytes = 0;
  /** Bytes of ArrayBuffers the ready pieces keep alive (truesize), and the buffer of the last piece. */
  private pinned = 0;
  private lastBuffer: ArrayBufferLike | undefined;
  /** Out-of-order pieces, sorted by seq, never overlapping each other. */
  private pending: Piece[] = [];
  private pendingBytes = 0;
  /** What the account holds for it now: pinned + pendingBytes as of the last change. */
  private charged = 0;

  constructor(
    private size: number,
    initialSeq: number,
    private readonly memory: TcpMemory | undefined = undefined,
  ) {
    this.next = initialSeq;
  }

  /** Bytes it may hold (in order and out of order together). */
  get capacity(): number {
    return this.size;
  }

  /** Autotuning made the buffer larger (it never shrinks: the window offered must not, RFC 9293 3.8.6.2.2). */
  grow(capacity: number): void {
    if (capacity > this.size) this.size = capacity;
  }

  /** In-order bytes waiting to be read. */
  get readable(): number {
    return this.readyBytes;
  }

  /** Bytes of memory the in-order pieces keep alive: their frames' buffers, or their copies. */
  get pinnedBytes(): number {
    return this.pinned;
  }

  /** Out-of-order bytes held. */
  get outOfOrderBytes(): number {
    return this.pendingBytes;
  }

  /**
   * What the window may offer: the buffer less the in-order bytes waiting to be read.
   * Out-of-order bytes are not subtracted: they lie inside the window already offered (between
   * RCV.NXT and its right edge), so the window does not shrink as they arrive, and the ACKs
   * that report a hole stay duplicates the sender can count (RFC 5681 3.2).
   */
  get free(): number {
    return Math.max(0, this.capacity - this.readyBytes);
  }

  /** The out-of-order ranges held, as SACK blocks would name them (newest first is the caller's business). */
  outOfOrderRanges(): { left: number; right: number }[] {
    const out: { left: number; right: number }[] = [];
    for (const p of this.pending) {
      const last = out[out.length - 1];
      const right = seqAdd(p.seq, p.data.length);
      if (last && last.right === p.seq) last.right = right;
      else out.push({ left: p.seq, right });
    }
    return out;
  }

  /**
   * Takes a segment's data at `seq`, trimmed to [next, next + windowLimit) where
   * `windowLimit` is the window we last offered. In-order data is kept as a view of `data` when
   * that is cheap (see above), anything else is copied: the caller may reuse nothing of `data`
   * once it is given (it is a received frame's).
   */
  receive(seq: number, data: Uint8Array, windowLimit: number): ReceiveOutcome {
    const outcome: ReceiveOutcome = { delivered: 0, outOfOrder: false, filledHole: false, duplicate: 0 };
    // Trim what lies before RCV.NXT (already received) and past the window edge.
    let start = 0;
    if (seqLt(seq, this.next)) {
      start = Math.min(data.length, seqDiff(this.next, seq));
      outcome.duplicate += start;
    }
    const edge = seqAdd(this.next, Math.min(windowLimit, this.capacity));
    let end = data.length;
    const dataEnd = seqAdd(seq, data.length);
    if (seqGt(dataEnd, edge)) end = Math.max(start, data.length - seqDiff(dataEnd, edge));
    if (end <= start) return outcome;
    const from = seqAdd(seq, start);
    const bytes = data.subarray(start, end);
    if (from === this.next) {
      this.deliver(bytes);
      outcome.delivered += bytes.length;
      const before = this.pendingBytes;
      outcome.delivered += this.releasePending();
      outcome.filledHole = this.pendingBytes < before;
    } else {
      outcome.outOfOrder = true;
      outcome.duplicate += this.insertPending(from, bytes);
    }
    this.charge();
    return outcome;
  }

  /** Takes up to `max` in-order bytes for the application. */
  read(max: number): Uint8Array | undefined {
    const first = this.ready[0];
    if (!first) return undefined;
    let out: Uint8Array;
    if (first.length <= max) {
      this.ready.shift();
      const charge = this.readyCharge.shift()!;
      // The run's charge moves on to its next piece while one is left in the same buffer.
      const following = this.ready[0];
      if (following !== undefined && following.buffer === first.buffer) this.readyCharge[0]! += charge;
      else this.pinned -= charge;
      if (this.ready.length === 0) this.lastBuffer = undefined;
      out = first;
    } else {
      out = first.subarray(0, max);
      this.ready[0] = first.subarray(max);
    }
    this.readyBytes -= out.length;
    this.charge();
    return out;
  }

  /** Advances RCV.NXT over a SYN or FIN (they occupy one sequence number, no data). */
  advance(n: number): void {
    this.next = seqAdd(this.next, n);
  }

  /** Drops everything (a reset connection). */
  clear(): void {
    this.ready = [];
    this.readyCharge = [];
    this.readyBytes = 0;
    this.pinned = 0;
    this.lastBuffer = undefined;
    this.pending = [];
    this.pendingBytes = 0;
    this.charge();
  }

  /** Tells the shared account how much it keeps alive now. */
  private charge(): void {
    const now = this.pinned + this.pendingBytes;
    if (now === this.charged) return;
    this.memory?.chargeReceive(now - this.charged);
    this.charged = now;
  }

  /** Appends in-order bytes: kept as they are while that is cheap (see the header), else copied. */
  private deliver(data: Uint8Array): void {
    let bytes = data;
    let charge = 0;
    if (bytes.buffer !== this.lastBuffer) {
      const size = bytes.buffer.byteLength;
      const keepLimit = this.memory?.underPressure ? this.size : 2 * this.size;
      if (bytes.length < SMALLEST_KEPT_VIEW || this.pinned + size > keepLimit) {
        bytes = bytes.slice();
        charge = bytes.length;
      } else {
        charge = size;
      }
      this.lastBuffer = bytes.buffer;
    }
    this.pinned += charge;
    this.ready.push(bytes);
    this.readyCharge.push(charge);
    this.readyBytes += bytes.length;
    this.next = seqAdd(this.next, bytes.length);
  }

  /** Moves out-of-order pieces that now start at (or before) RCV.NXT into the ready queue. */
  private releasePending(): number {
    let released = 0;
    while (this.pending.length > 0) {
      const p = this.pending[0]!;
      if (seqGt(p.seq, this.next)) break;
      this.pending.shift();
      this.pendingBytes -= p.data.length;
      const end = seqAdd(p.seq, p.data.length);
      if (seqLe(end, this.next)) continue; // wholly old
      const skip = seqDiff(this.next, p.seq);
      const bytes = p.data.subarray(skip);
      this.deliver(bytes);
      released += bytes.length;
    }
    return released;
  }

  /** Inserts out-of-order bytes, keeping only what no piece holds yet; returns the duplicate bytes. */
  private insertPending(seq: number, bytes: Uint8Array): number {
    let duplicate = 0;
    let cur = seq;
    let rest = bytes;
    const out: Piece[] = [];
    let i = 0;
    // pieces wholly before the new data stay as they are
    while (i < this.pending.length && seqLe(seqAdd(this.pending[i]!.seq, this.pending[i]!.data.length), cur)) out.push(this.pending[i++]!);
    while (rest.length > 0) {
      const p = this.pending[i];
      if (!p || seqLe(seqAdd(cur, rest.length), p.seq)) {
        out.push({ seq: cur, data: rest.slice() });
        this.pendingBytes += rest.length;
        rest = EMPTY;
        break;
      }
      if (seqLt(cur, p.seq)) {
        const gap = seqDiff(p.seq, cur);
        out.push({ seq: cur, data: rest.subarray(0, gap).slice() });
        this.pendingBytes += gap;
        rest = rest.subarray(gap);
        cur = p.seq;
      }
      // overlap with p: skip what p already holds
      const pEnd = seqAdd(p.seq, p.data.length);
      const overlap = Math.min(rest.length, seqDiff(pEnd, cur));
      duplicate += overlap;
      rest = rest.subarray(overlap);
      cur = seqMax(cur, pEnd);
      out.push(p);
      i++;
    }
    while (i < this.pending.length) out.push(this.pending[i++]!);
    this.pending = out;
    return duplicate;
  }
}

const EMPTY = new Uint8Array(0);
