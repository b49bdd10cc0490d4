/**
 * Many protocol deadlines on one clock timer. A TCP connection re-arms its retransmission timer
 * on every ACK that advances SND.UNA (RFC 6298 5.3) and its delayed-ACK timer on nearly every
 * segment; giving each of those a Node timer (setTimeout, then clearTimeout on the next ACK)
 * costs an allocation and a timer-list insertion per ACK. Here a timer is a reusable `Deadline`:
 * arming it is writing a number, and only the queue's earliest deadline holds a clock timer.
 *
 * The queue is a binary min-heap of deadlines ordered by (due time, order armed), so deadlines
 * that fall due at the same moment fire in the order they were armed, as the clock's own timers
 * do, and firing times are exact on a VirtualClock. Re-arming is lazy: a deadline moved later
 * (the common case: the retransmission timer pushed back by an ACK) stays filed under its old
 * time, O(1), and when that time comes up the queue sees the new one and files it again. Only a
 * deadline moved earlier moves in the heap (O(log n)). Cancelling is O(1) as well: the entry is
 * dropped when it comes up. The price is an early wake-up now and then, one per deadline pushed
 * back, instead of a clock operation per ACK.
 *
 *   const timers = new TimerQueue(clock);
 *   const retransmit = timers.deadline(() => onRetransmitTimeout());
 *   retransmit.armIn(rto);      // on every ACK: no allocation, usually no heap work
 *   retransmit.cancel();        // all data acknowledged
 */
import type { Clock, Timer } from './clock.ts';

export class Deadline {
  /** When it fires, on the queue's clock (ms); Infinity while it is not armed. */
  due = Infinity;
  /** @internal Its place in the heap (-1: not there), the time it is filed under (<= due) and its order. */
  index = -1;
  /** @internal */
  key = Infinity;
  /** @internal */
  keyOrder = 0;
  /** @internal The order of the latest arming, for deadlines due at the same time. */
  order = 0;

  constructor(
    private readonly queue: TimerQueue,
    /** @internal */
    readonly callback: () => void,
  ) {}

  /** Whether it is armed (it fires unless cancelled or re-armed first). */
  get armed(): boolean {
    return this.due !== Infinity;
  }

  /** Fires `ms` from now on the queue's clock (replacing an earlier arming). */
  armIn(ms: number): void {
    this.queue.arm(this, this.queue.clock.now() + Math.max(0, ms));
  }

  /** Fires at `time` on the queue's clock (replacing an earlier arming); a time already past fires on the next turn. */
  armAt(time: number): void {
    this.queue.arm(this, time);
  }

  /** Disarms it; calling it twice, or after it fired, does nothing. */
  cancel(): void {
    this.due = Infinity;
  }
}

export class TimerQueue {
  /** Counts for the curious (and the tests): clock timers set, deadlines fired, entries moved. */
  readonly stats = { clockTimers: 0, fired: 0, refiled: 0 };
  private readonly heap: Deadline[] = [];
  private order = 0;
  private clockTimer: Timer | undefined;
  /** When the clock timer fires (Infinity: none set). */
  private clockDue = Infinity;
  private readonly onClockTimer = (): void => this.fire();
  /**
   * Runs when the clock timer fires, before any deadline is looked at: the stack reads the device
   * here (Link.receivePending), so that an ACK waiting unread can re-arm or cancel a
   * retransmission deadline before it fires for nothing (Node runs timers before it polls I/O).
   */
  beforeFiring: (() => void) | undefined;
  /** Inside fire(): arming sets no clock timer, fire() sets the one it needs when it is done. */
  private firing = false;

  constructor(readonly clock: Clock) {}

  /** A new deadline that runs `callback` each time it falls due; not armed. */
  deadline(callback: () => void): Deadline {
    return new Deadline(this, callback);
  }

  /** Deadlines in the heap, cancelled and moved-later ones included until they come up. */
  get size(): number {
    return this.heap.length;
  }

  /** @internal Deadline.armIn/armAt. */
  arm(d: Deadline, due: number): void {
    d.due = due;
    d.order = this.order++;
    if (d.index < 0) {
      d.key = due;
      d.keyOrder = d.order;
      d.index = this.heap.length;
      this.heap.push(d);
      this.siftUp(d.index);
    } else if (due <= d.key) {
      // Earlier (or the same time, armed again: it goes behind those armed before it).
      d.key = due;
      d.keyOrder = d.order;
      this.siftUp(d.index);
      this.siftDown(d.index);
    } else {
      return; // later: filed under the old time, refiled when that comes up (no clock work either)
    }
    if (due < this.clockDue && !this.firing) this.setClockTimer(due);
  }

  private setClockTimer(due: number): void {
    this.clockTimer?.cancel();
    this.clockDue = due;
    this.stats.clockTimers++;
    this.clockTimer = this.clock.setTimer(due - this.clock.now(), this.onClockTimer);
  }

  /** The clock timer: fires every deadline due by now, in order; refiles those moved later. */
  private fire(): void {
    this.clockTimer = undefined;
    this.clockDue = Infinity;
    const heap = this.heap;
    this.firing = true;
    try {
      // An early wake-up (every deadline that came up was cancelled or moved later) only
      // refiles: no hook, no callback.
      if (!this.settleTop(this.clock.now(), this.order)) return;
      if (this.beforeFiring) this.beforeFiring(); // what it re-arms or cancels is seen below
      const now = this.clock.now();
      // Deadlines armed by the callbacks below for a time already past wait for the next clock
      // timer (delay 0), as a clock timer set from inside a timer callback would.
      const armedBefore = this.order;
      while (this.settleTop(now, armedBefore)) {
        const d = heap[0]!;
        this.removeTop();
        d.due = Infinity;
        this.stats.fired++;
        d.callback();
      }
    } finally {
      this.firing = false;
      const next = heap[0];
      if (next && next.key < this.clockDue) this.setClockTimer(next.key);
    }
  }

  /**
   * Drops cancelled deadlines from the top of the heap and files those moved later under their
   * real time, until the top is due by `now` (true: it fires next) or is not (false). Deadlines
   * filed at or after `armedBefore` (armed during this firing) count as not due.
   */
  private settleTop(now: number, armedBefore: number): boolean {
    const heap = this.heap;
    while (heap.length > 0) {
      const d = heap[0]!;
      if (d.key > now || d.keyOrder >= armedBefore) return false;
      if (d.due <= now) return true;
      this.removeTop();
      if (d.due === Infinity) continue; // cancelled
      // moved later since it was filed: file it under its real time
      d.key = d.due;
      d.keyOrder = d.order;
      d.index = heap.length;
      heap.push(d);
      this.siftUp(d.index);
      this.stats.refiled++;
    }
    return false;
  }

  private removeTop(): void {
    const heap = this.heap;
    const top = heap[0]!;
    top.index = -1;
    top.key = Infinity;
    const last = heap.pop()!;
    if (last !== top) {
      heap[0] = last;
      last.index = 0;
      this.siftDown(0);
    }
  }

  private static before(a: Deadline, b: Deadline): boolean {
    return a.key < b.key || (a.key === b.key && a.keyOrder < b.keyOrder);
  }

  private siftUp(i: number): void {
    const heap = this.heap;
    const d = heap[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (!TimerQueue.before(d, p)) break;
      heap[i] = p;
      p.index = i;
      i = parent;
    }
    heap[i] = d;
    d.index = i;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const d = heap[i]!;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && TimerQueue.before(heap[right]!, heap[left]!) ? right : left;
      const c = heap[child]!;
      if (!TimerQueue.before(c, d)) break;
      heap[i] = c;
      c.index = i;
      i = child;
    }
    heap[i] = d;
    d.index = i;
  }
}
