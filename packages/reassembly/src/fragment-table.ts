/**
 * The part of fragment reassembly that IPv4 (RFC 791 3.2, RFC 815) and IPv6 (RFC 8200 4.5) share,
 * bounded against hostile input. Linux shares it the same way (net/ipv4/inet_fragment.c serves
 * ip_fragment.c and ipv6/reassembly.c); here @tapstack/ipv4's Reassembler and @tapstack/ipv6's
 * Ipv6Reassembler are its two users. What stays with each family: which fields make the key, how
 * a fragment's offset, data and last flag are read, the family's own checks before a fragment
 * gets here (and their ICMP answers), and how the whole datagram is built from the pieces.
 *
 * A datagram being reassembled keeps its fragments sorted by offset. Because no two kept
 * fragments overlap (see below), it is complete exactly when the last fragment (more-fragments
 * clear) has told us the length and the bytes received add up to it: RFC 815's hole list reduces
 * to one counter.
 *
 * Duplicates and overlaps, as Linux's inet_frag_queue_insert answers them for both families:
 *  - A fragment whose bytes lie wholly inside a run of contiguous fragments we hold (an exact
 *    duplicate, or a piece of one) is a duplicate: dropped alone and counted, the rest kept.
 *    Fragments are duplicated in the network; RFC 8200 4.5 allows dropping them alone.
 *  - Any other overlap discards the whole datagram (counted). RFC 5722 requires it for IPv6, and
 *    Linux does it for IPv4 too since the FragmentSmack fixes: overlapping fragments have no
 *    legitimate use and are a classic way to sneak data past filters. Later fragments with the
 *    same key start a new datagram.
 *  - A fragment that contradicts the known length (data past the end the last fragment set, a
 *    last fragment ending before data we hold, a second last fragment with another end)
 *    discards the datagram.
 *
 * Memory is bounded three ways: bytes held in total (each fragment counts its data plus a fixed
 * overhead; above the high-water mark the oldest datagrams are evicted until the low-water mark,
 * Linux's 4 MB / 3 MB ipfrag_high_thresh/low_thresh), datagrams in flight, and fragments per
 * datagram. Every datagram has a timer started by its first fragment; when it fires the memory is
 * freed and the family is told, with what it kept of the fragment at offset 0 if that had come
 * (so it can send a time exceeded, code 1: RFC 792, RFC 1122 3.3.2, RFC 8200 4.5).
 */
import type { Clock, Timer } from '@tapstack/link';

export interface FragmentLimits {
  /** Above this many bytes held, evict the oldest datagrams... (default 4 MB) */
  highWaterBytes: number;
  /** ...until at most this many are held (default 3 MB). */
  lowWaterBytes: number;
  /** Datagrams being reassembled at once; a new one evicts the oldest (default 1024). */
  maxDatagrams: number;
  /** Fragments kept per datagram (default 512: 64 KB in 128-byte fragments). */
  maxFragmentsPerDatagram: number;
  /** Time from the first fragment until an incomplete datagram is dropped (IPv4 30 s, IPv6 60 s). */
  timeoutMs: number;
}

/** Bytes charged per fragment on top of its data (bookkeeping), like the kernel's truesize. */
export const FRAGMENT_OVERHEAD_BYTES = 64;

/** Why the table dropped a fragment (and, but for a duplicate, the datagram it belonged to). */
export type FragmentDropReason = 'reasm_bad_length' | 'reasm_duplicate' | 'reasm_overlap' | 'reasm_too_many_fragments';

/** The counters the table keeps; each family's reassembler has them among its own. */
export type FragmentTableCounterName = FragmentDropReason | 'reasm_timeout' | 'reasm_evicted';

/** One fragment's data and where it goes in the datagram's fragmentable part. */
export interface HeldFragment {
  readonly offset: number;
  readonly end: number;
  readonly data: Uint8Array;
}

/**
 * What the family keeps of the fragment at offset 0 (IPv4: its header, and what an ICMP error
 * quotes; IPv6: the unfragmentable part and the whole first fragment), and the bytes it costs.
 */
export interface FirstFragment<First> {
  readonly value: First;
  /** Charged against the memory bounds beside the data (0 when it is small and fixed). */
  readonly bytes: number;
}

export type FragmentInsertResult<First> =
  /** Kept, waiting for the others. */
  | { readonly kind: 'pending' }
  /** This fragment completed the datagram, which has left the table: its pieces, in order. */
  | { readonly kind: 'complete'; readonly first: First; readonly fragments: readonly HeldFragment[]; readonly length: number }
  /** Dropped (counted under `reason`). */
  | { readonly kind: 'dropped'; readonly reason: FragmentDropReason };

interface PendingDatagram<First> {
  readonly key: string;
  readonly fragments: HeldFragment[];
  /** Data bytes received (no overlaps, so this only grows towards the total). */
  received: number;
  /** Length of the fragmentable part, known once the last fragment arrived. */
  length: number | undefined;
  /** What the family kept of the fragment at offset 0, once it arrived. */
  first: First | undefined;
  /** Bytes charged against the limits. */
  charged: number;
  readonly timer: Timer;
}

export class FragmentTable<First> {
  private readonly pending = new Map<string, PendingDatagram<First>>();
  private held = 0;

  constructor(
    private readonly clock: Clock,
    private readonly counters: { inc(name: FragmentTableCounterName): void },
    private readonly limits: Readonly<FragmentLimits>,
    /** An incomplete datagram timed out; `first` is what was kept of its first fragment, if it came. */
    private readonly onTimeout: (first: First | undefined) => void,
  ) {
    if (limits.lowWaterBytes > limits.highWaterBytes) throw new RangeError('reassembly lowWaterBytes must not exceed highWaterBytes');
  }

  /** Bytes held right now (data plus per-fragment overhead). */
  get bytesHeld(): number {
    return this.held;
  }

  /** Datagrams being reassembled right now. */
  get datagramsInFlight(): number {
    return this.pending.size;
  }

  /**
   * Takes the `data` of one fragment (the family has checked it, and `data` is not empty) at
   * `offset` of the datagram named `key`; `last` when more-fragments is clear. `first` is asked
   * for only when the fragment at offset 0 is kept. The data is copied.
   */
  insert(key: string, offset: number, data: Uint8Array, last: boolean, first: () => FirstFragment<First>): FragmentInsertResult<First> {
    const end = offset + data.length;
    let entry = this.pending.get(key);
    if (!entry) {
      if (this.pending.size >= this.limits.maxDatagrams) this.evictOldest();
      entry = {
        key,
        fragments: [],
        received: 0,
        length: undefined,
        first: undefined,
        charged: 0,
        timer: this.clock.setTimer(this.limits.timeoutMs, () => this.expire(key)),
      };
      this.pending.set(key, entry);
    }

    // Consistency with the length the last fragment announced (or announces now).
    const frags = entry.fragments;
    if (
      (entry.length !== undefined && (end > entry.length || (last && end !== entry.length))) ||
      (last && entry.length === undefined && frags.length > 0 && frags[frags.length - 1]!.end > end)
    ) {
      return this.drop(key, 'reasm_bad_length');
    }

    // Where it goes: the first kept fragment that starts at or after this one.
    let i = frags.length;
    while (i > 0 && frags[i - 1]!.offset >= offset) i--;
    const next = frags[i];
    const previous = i > 0 ? frags[i - 1] : undefined;
    if ((previous && previous.end > offset) || (next && next.offset < end)) {
      // It touches bytes we hold. Wholly inside one run of contiguous fragments: a duplicate.
      if (insideRun(frags, offset, end)) {
        this.counters.inc('reasm_duplicate');
        return { kind: 'dropped', reason: 'reasm_duplicate' };
      }
      return this.drop(key, 'reasm_overlap');
    }
    if (frags.length >= this.limits.maxFragmentsPerDatagram) return this.drop(key, 'reasm_too_many_fragments');

    frags.splice(i, 0, { offset, end, data: data.slice() });
    entry.received += data.length;
    if (last) entry.length = end;
    let charge = data.length + FRAGMENT_OVERHEAD_BYTES;
    if (offset === 0) {
      const kept = first();
      entry.first = kept.value;
      charge += kept.bytes;
    }
    entry.charged += charge;
    this.held += charge;

    if (entry.length !== undefined && entry.received === entry.length && entry.first !== undefined) {
      this.discard(key);
      return { kind: 'complete', first: entry.first, fragments: entry.fragments, length: entry.length };
    }
    if (this.held > this.limits.highWaterBytes) {
      while (this.held > this.limits.lowWaterBytes && this.pending.size > 0) this.evictOldest();
    }
    return { kind: 'pending' };
  }

  /** Forgets the datagram named `key`, if any (its timer too); the family's own checks use it. */
  discard(key: string): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    entry.timer.cancel();
    this.held -= entry.charged;
    this.pending.delete(key);
  }

  /** Drops everything and cancels every timer. */
  clear(): void {
    for (const key of [...this.pending.keys()]) this.discard(key);
  }

  private drop(key: string, reason: FragmentDropReason): FragmentInsertResult<First> {
    this.counters.inc(reason);
    this.discard(key);
    return { kind: 'dropped', reason };
  }

  private expire(key: string): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    const first = entry.first;
    this.discard(key);
    this.counters.inc('reasm_timeout');
    this.onTimeout(first);
  }

  private evictOldest(): void {
    const oldest = this.pending.keys().next();
    if (oldest.done) return;
    this.discard(oldest.value);
    this.counters.inc('reasm_evicted');
  }
}

/**
 * True when [offset, end) lies wholly inside one run of fragments that follow each other without
 * a gap (Linux keeps such runs together and calls a fragment inside one a duplicate).
 */
function insideRun(frags: readonly HeldFragment[], offset: number, end: number): boolean {
  let runStart = -1;
  let runEnd = -1;
  for (const f of frags) {
    if (f.offset === runEnd) runEnd = f.end;
    else {
      runStart = f.offset;
      runEnd = f.end;
    }
    if (runStart <= offset && end <= runEnd) return true;
  }
  return false;
}
