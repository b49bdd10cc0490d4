/**
 * All protocol timers go through one Clock, injected at construction. The system clock runs
 * them on Node's timers; the virtual clock runs them when a test calls `advance(ms)`, so a test
 * can play minutes of protocol time (ARP retries, reachable-time expiry, reassembly timeouts)
 * in milliseconds, deterministically.
 */
export interface Timer {
  /** Cancels the timer; calling it twice, or after it fired, does nothing. */
  cancel(): void;
}

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /**
   * Milliseconds, monotonic, possibly as old as the start of the current synchronous run of
   * JavaScript (never older): for bookkeeping where microseconds do not matter, such as when a
   * neighbour entry was last used, read on every frame sent. Reading the real clock costs about
   * 80 ns on a VM, as much as all of IPv4's input checks; this reads it once per run. Optional:
   * without it, callers use `now()`.
   */
  coarseNow?(): number;
  /** Runs `callback` once after `delayMs`. */
  setTimer(delayMs: number, callback: () => void): Timer;
  /**
   * Keeps the process alive until the returned release function is called. Protocol timers never
   * do (a stack on its own must not stop a process from exiting), but an operation somebody awaits,
   * such as a ping, does: otherwise `await icmp.ping(...)` on an in-memory link would see the
   * process end between two echo requests. Releasing twice does nothing.
   */
  hold(): () => void;
}

function neverCalled(): void {}

/** The real clock: performance.now() and Node timers (unref'd, so they never keep a process alive). */
export class SystemClock implements Clock {
  private runTime: number | undefined;
  private readonly forgetRunTime = (): void => {
    this.runTime = undefined;
  };

  now(): number {
    return performance.now();
  }

  /**
   * The first reading of this synchronous run (a TAP wake-up's batch of frames, a timer
   * callback): the microtask queued with it runs as soon as the run ends and forgets it.
   */
  coarseNow(): number {
    let t = this.runTime;
    if (t === undefined) {
      t = this.runTime = performance.now();
      queueMicrotask(this.forgetRunTime);
    }
    return t;
  }

  setTimer(delayMs: number, callback: () => void): Timer {
    const handle = setTimeout(callback, Math.max(0, delayMs));
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  }

  private holds = 0;
  private holdTimer: ReturnType<typeof setInterval> | undefined;

  hold(): () => void {
    // A ref'd timer that never needs to fire: it only keeps the event loop from ending. One for
    // every hold together (each open socket holds: a timer each was about 200 bytes of every
    // idle connection), cleared when the last hold is released.
    if (this.holds++ === 0) this.holdTimer = setInterval(neverCalled, 1 << 30);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      if (--this.holds === 0) {
        clearInterval(this.holdTimer);
        this.holdTimer = undefined;
      }
    };
  }
}

interface VirtualTimer extends Timer {
  readonly due: number;
  readonly seq: number;
  readonly callback: () => void;
  cancelled: boolean;
}

/** A clock that only moves when told to. Timers due at the same time fire in the order set. */
export class VirtualClock implements Clock {
  private current: number;
  private seq = 0;
  private timers: VirtualTimer[] = [];

  constructor(start = 0) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  /** Exact: virtual time moves only in advance(), which may run in the middle of a synchronous run. */
  coarseNow(): number {
    return this.current;
  }

  setTimer(delayMs: number, callback: () => void): Timer {
    const timer: VirtualTimer = {
      due: this.current + Math.max(0, delayMs),
      seq: this.seq++,
      callback,
      cancelled: false,
      cancel() {
        this.cancelled = true;
      },
    };
    this.timers.push(timer);
    return timer;
  }

  /** A virtual clock never holds a process: time only moves when the test says so. */
  hold(): () => void {
    return () => {};
  }

  /** Number of timers still waiting (cancelled ones excluded). */
  get pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, in order. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      let next: VirtualTimer | undefined;
      for (const t of this.timers) {
        if (t.cancelled || t.due > target) continue;
        if (!next || t.due < next.due || (t.due === next.due && t.seq < next.seq)) next = t;
      }
      if (!next) break;
      this.current = Math.max(this.current, next.due);
      next.cancelled = true;
      this.timers = this.timers.filter((t) => !t.cancelled);
      next.callback();
    }
    this.current = target;
  }
}
