/**
 * Fault injection as link middleware, after smoltcp's FaultInjector: wrap any Link and, with
 * seeded randomness, drop, duplicate, corrupt (flip one bit) or reorder (hold a frame back
 * behind the next one) frames in either direction, and delay them (a fixed delay plus a seeded
 * jitter, as Linux's netem does; this project's kernel has no netem). Counted per fault in
 * `faultCounters`.
 */
import { SystemClock, type Clock, type Timer } from './clock.ts';
import { Counters } from './counters.ts';
import { LinkWrapper, type FrameOffload, type Link } from './link.ts';
import { seededRandom } from './random.ts';

export interface FaultOptions {
  /** Probability (0-1) that a frame is lost. */
  drop?: number;
  /** Probability that a frame is delivered twice. */
  duplicate?: number;
  /** Probability that one random bit of the frame is flipped. */
  corrupt?: number;
  /** Probability that a frame is held back and delivered after the next one. */
  reorder?: number;
  /**
   * When set, a frame picked by `reorder` is instead held this many milliseconds (on `clock`)
   * while the frames after it pass, as netem's reorder does with its delay: the reordering a
   * TCP sender sees then lasts a time, not one frame (up to `delayLimit` frames held at once).
   */
  reorderDelayMs?: number;
  /** Milliseconds every frame is held before it is passed on (default 0: none). */
  delayMs?: number;
  /**
   * Up to this many milliseconds more, drawn uniformly per frame from the seeded generator
   * (default 0). The delay never reorders: a frame whose draw would make it overtake the one
   * before it leaves right after that one, so jitter shows as variable delay and queueing, and
   * reordering stays its own fault (`reorder`) that a test turns on deliberately.
   */
  jitterMs?: number;
  /**
   * At most this many frames waiting in the delay line per direction (default 10,000, about
   * 10 ms at a 10 Gbit/s of full frames); more are dropped and counted as `delay_overflows`,
   * like netem's `limit`, so a flood cannot grow memory without bound.
   */
  delayLimit?: number;
  /** The clock the delay runs on (default: the system clock; tests pass a VirtualClock). */
  clock?: Clock;
  /** Which direction the faults apply to (default both). */
  direction?: 'rx' | 'tx' | 'both';
  /** Seed for the PRNG (default 1), so a failing run can be replayed. */
  seed?: number;
}

const FAULT_COUNTERS = ['dropped', 'duplicated', 'corrupted', 'reordered', 'delayed', 'delay_overflows'] as const;

/** Frames waiting in one direction's delay line, in the order they leave (with their offloads, if any). */
class DelayLine {
  private readonly frames: Uint8Array[] = [];
  private readonly offloads: (FrameOffload | undefined)[] = [];
  private readonly due: number[] = [];
  private head = 0;
  private timer: Timer | undefined;
  /** When the last frame queued leaves: nothing queued after it may leave earlier. */
  private lastDue = -Infinity;

  constructor(
    private readonly clock: Clock,
    private readonly limit: number,
    private readonly release: (frames: Uint8Array[], offloads: (FrameOffload | undefined)[]) => void,
  ) {}

  get length(): number {
    return this.frames.length - this.head;
  }

  /** Queues `frame` to leave at `due` (or right after the frame before it); false when full. */
  push(frame: Uint8Array, due: number, offload: FrameOffload | undefined): boolean {
    if (this.length >= this.limit) return false;
    const at = Math.max(due, this.lastDue);
    this.lastDue = at;
    this.frames.push(frame);
    this.offloads.push(offload);
    this.due.push(at);
    if (this.length === 1) this.arm();
    return true;
  }

  private arm(): void {
    const next = this.due[this.head]!;
    this.timer = this.clock.setTimer(next - this.clock.now(), this.fire);
  }

  /** Everything due by now leaves as one batch (frames that arrived together leave together). */
  private readonly fire = (): void => {
    this.timer = undefined;
    const now = this.clock.now();
    const out: Uint8Array[] = [];
    const outOffloads: (FrameOffload | undefined)[] = [];
    while (this.head < this.frames.length && this.due[this.head]! <= now) {
      outOffloads.push(this.offloads[this.head]);
      out.push(this.frames[this.head++]!);
    }
    if (this.head === this.frames.length) {
      this.frames.length = this.offloads.length = this.due.length = this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.frames.length) {
      this.frames.splice(0, this.head);
      this.offloads.splice(0, this.head);
      this.due.splice(0, this.head);
      this.head = 0;
    }
    if (this.length > 0) this.arm();
    if (out.length > 0) this.release(out, outOffloads);
  };

  close(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.frames.length = this.offloads.length = this.due.length = this.head = 0;
  }
}

export class FaultInjector extends LinkWrapper {
  readonly faultCounters = new Counters<(typeof FAULT_COUNTERS)[number]>('faults', FAULT_COUNTERS);
  private readonly random: () => number;
  private heldRx: Uint8Array | undefined;
  private heldTx: Uint8Array | undefined;
  private readonly clock: Clock;
  private readonly delayMs: number;
  private readonly jitterMs: number;
  private readonly delayRx: DelayLine | undefined;
  private readonly delayTx: DelayLine | undefined;
  /** Frames held by `reorderDelayMs`, each on its own timer. */
  private readonly reorderTimers = new Set<Timer>();
  private readonly limit: number;

  constructor(
    inner: Link,
    private readonly options: FaultOptions,
  ) {
    super(inner);
    for (const k of ['drop', 'duplicate', 'corrupt', 'reorder'] as const) {
      const p = options[k] ?? 0;
      if (!(p >= 0 && p <= 1)) throw new RangeError(`fault probability ${k}=${p} must be between 0 and 1`);
    }
    for (const k of ['delayMs', 'jitterMs', 'reorderDelayMs'] as const) {
      const ms = options[k] ?? 0;
      if (!(ms >= 0 && ms <= 60_000)) throw new RangeError(`${k}=${ms} must be between 0 and 60000 ms`);
    }
    const limit = options.delayLimit ?? 10_000;
    if (!(Number.isInteger(limit) && limit >= 1)) throw new RangeError(`delayLimit=${limit} must be a positive integer`);
    this.limit = limit;
    this.random = seededRandom(options.seed ?? 1);
    this.clock = options.clock ?? new SystemClock();
    this.delayMs = options.delayMs ?? 0;
    this.jitterMs = options.jitterMs ?? 0;
    if (this.delayMs > 0 || this.jitterMs > 0) {
      if (this.applies('rx')) this.delayRx = new DelayLine(this.clock, limit, (frames, offloads) => this.deliverUp(frames, offloads));
      if (this.applies('tx')) {
        this.delayTx = new DelayLine(this.clock, limit, (frames, offloads) => {
          for (let i = 0; i < frames.length; i++) this.inner.send(frames[i]!, offloads[i]);
        });
      }
    }
  }

  /** Frames waiting in the delay lines (rx + tx). */
  get delayed(): number {
    return (this.delayRx?.length ?? 0) + (this.delayTx?.length ?? 0);
  }

  /**
   * Puts `frames` in the delay line. Each is copied first: the layer above may reuse a buffer
   * once send() returns, and a received batch's memory belongs to the link's read.
   */
  private delay(line: DelayLine, frames: readonly Uint8Array[], offloads: readonly (FrameOffload | undefined)[] | undefined): void {
    const now = this.clock.now();
    for (let i = 0; i < frames.length; i++) {
      const due = now + this.delayMs + (this.jitterMs > 0 ? this.random() * this.jitterMs : 0);
      if (line.push(new Uint8Array(frames[i]!), due, offloads?.[i])) this.faultCounters.inc('delayed');
      else this.faultCounters.inc('delay_overflows');
    }
  }

  private applies(dir: 'rx' | 'tx'): boolean {
    const d = this.options.direction ?? 'both';
    return d === 'both' || d === dir;
  }

  /** Applies the faults to one frame; returns the frames to pass on (0, 1 or 2). */
  private mangle(frame: Uint8Array, dir: 'rx' | 'tx'): Uint8Array[] {
    const o = this.options;
    if (this.random() < (o.drop ?? 0)) {
      this.faultCounters.inc('dropped');
      return [];
    }
    let f = frame;
    if (this.random() < (o.corrupt ?? 0) && f.length > 0) {
      f = new Uint8Array(f); // a copy (Buffer#slice would share memory)
      const bit = Math.floor(this.random() * f.length * 8);
      f[bit >> 3] = f[bit >> 3]! ^ (1 << (bit & 7));
      this.faultCounters.inc('corrupted');
    }
    const out: Uint8Array[] = [f];
    if (this.random() < (o.duplicate ?? 0)) {
      out.push(new Uint8Array(f));
      this.faultCounters.inc('duplicated');
    }
    if ((o.reorderDelayMs ?? 0) > 0) {
      if (this.reorderTimers.size < this.limit && this.random() < (o.reorder ?? 0)) {
        this.holdFor(out.shift()!, dir, o.reorderDelayMs!);
        this.faultCounters.inc('reordered');
      }
      return out;
    }
    const held = dir === 'rx' ? this.heldRx : this.heldTx;
    if (held) {
      out.push(held);
      if (dir === 'rx') this.heldRx = undefined;
      else this.heldTx = undefined;
    } else if (this.random() < (o.reorder ?? 0)) {
      const first = out.shift()!;
      if (dir === 'rx') this.heldRx = first;
      else this.heldTx = first;
      this.faultCounters.inc('reordered');
    }
    return out;
  }

  /** Passes a copy of `frame` on after `ms` (through the delay line, if there is one), whatever went past it meanwhile. */
  private holdFor(frame: Uint8Array, dir: 'rx' | 'tx', ms: number): void {
    const copy = new Uint8Array(frame);
    const timer = this.clock.setTimer(ms, () => {
      this.reorderTimers.delete(timer);
      if (dir === 'rx') {
        if (this.delayRx) this.delay(this.delayRx, [copy], undefined);
        else this.deliverUp([copy]);
      } else if (this.delayTx) {
        this.delay(this.delayTx, [copy], undefined);
      } else {
        this.inner.send(copy);
      }
    });
    this.reorderTimers.add(timer);
  }

  override send(frame: Uint8Array, offload?: FrameOffload): boolean {
    if (!this.applies('tx')) return this.inner.send(frame, offload);
    const frames = this.mangle(frame, 'tx');
    // Only the frame itself keeps its offload; a copy (corrupted, duplicated) or a held-back
    // frame coming out later goes without: the injector sits on links without offloads (a
    // MemoryLink) in every simulation, and a corrupted copy must be checked, not trusted.
    const offloads = offload ? frames.map((f) => (f === frame ? offload : undefined)) : undefined;
    // A delayed frame is on the wire as far as the sender can tell: accepted.
    if (this.delayTx) {
      this.delay(this.delayTx, frames, offloads);
      return true;
    }
    let ok = true;
    for (let i = 0; i < frames.length; i++) ok = this.inner.send(frames[i]!, offloads?.[i]) && ok;
    return ok;
  }

  protected override receive(frames: readonly Uint8Array[], offloads?: readonly (FrameOffload | undefined)[]): void {
    if (!this.applies('rx')) return this.deliverUp(frames, offloads);
    const out: Uint8Array[] = [];
    const outOffloads: (FrameOffload | undefined)[] = [];
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!;
      for (const m of this.mangle(f, 'rx')) {
        out.push(m);
        // As on send: only the frame itself keeps what the device said about it.
        outOffloads.push(m === f ? offloads?.[i] : undefined);
      }
    }
    if (this.delayRx) this.delay(this.delayRx, out, offloads ? outOffloads : undefined);
    else this.deliverUp(out, offloads ? outOffloads : undefined);
  }

  override close(): void {
    for (const t of this.reorderTimers) t.cancel();
    this.reorderTimers.clear();
    this.delayRx?.close();
    this.delayTx?.close();
    super.close();
  }
}

/** `withFaults(link, { drop: 0.2, seed: 7 })`: the link, with faults. */
export function withFaults(link: Link, options: FaultOptions): FaultInjector {
  return new FaultInjector(link, options);
}
