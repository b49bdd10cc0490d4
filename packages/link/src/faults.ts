/**
 * Fault injection as link middleware, after smoltcp's FaultInjector: wrap any Link and, with
 * seeded randomness, drop, duplicate, corrupt (flip one bit) or reorder (hold a frame back
 * behind the next one) frames in either direction. Counted per fault in `faultCounters`.
 */
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
  /** Which direction the faults apply to (default both). */
  direction?: 'rx' | 'tx' | 'both';
  /** Seed for the PRNG (default 1), so a failing run can be replayed. */
  seed?: number;
}

const FAULT_COUNTERS = ['dropped', 'duplicated', 'corrupted', 'reordered'] as const;

export class FaultInjector extends LinkWrapper {
  readonly faultCounters = new Counters<(typeof FAULT_COUNTERS)[number]>('faults', FAULT_COUNTERS);
  private readonly random: () => number;
  private heldRx: Uint8Array | undefined;
  private heldTx: Uint8Array | undefined;

  constructor(
    inner: Link,
    private readonly options: FaultOptions,
  ) {
    super(inner);
    for (const k of ['drop', 'duplicate', 'corrupt', 'reorder'] as const) {
      const p = options[k] ?? 0;
      if (!(p >= 0 && p <= 1)) throw new RangeError(`fault probability ${k}=${p} must be between 0 and 1`);
    }
    this.random = seededRandom(options.seed ?? 1);
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

  override send(frame: Uint8Array, offload?: FrameOffload): boolean {
    if (!this.applies('tx')) return this.inner.send(frame, offload);
    let ok = true;
    // A held-back frame that comes out later goes without its offload: the injector sits on
    // links that carry none (a MemoryLink) in every simulation.
    for (const f of this.mangle(frame, 'tx')) ok = this.inner.send(f, f === frame ? offload : undefined) && ok;
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
        // Only the frame itself keeps what the device said about it: a corrupted copy must be
        // checked by its checksum (which a 'partial' one then fails, as it should).
        outOffloads.push(m === f ? offloads?.[i] : undefined);
      }
    }
    this.deliverUp(out, offloads ? outOffloads : undefined);
  }
}

/** `withFaults(link, { drop: 0.2, seed: 7 })`: the link, with faults. */
export function withFaults(link: Link, options: FaultOptions): FaultInjector {
  return new FaultInjector(link, options);
}
