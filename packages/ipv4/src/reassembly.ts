/**
 * Reassembly of fragmented datagrams (RFC 791 section 3.2, RFC 815), bounded against hostile
 * input.
 *
 * Fragments belong together when source, destination, protocol and identification match. Each
 * datagram being reassembled keeps its fragments sorted by offset. Because no two kept
 * fragments overlap (see below), the datagram is complete exactly when the last fragment
 * (more-fragments clear) has told us the length and the bytes received add up to it: RFC 815's
 * hole list reduces to one counter.
 *
 * The awkward cases are answered as Linux 6.x answers them (net/ipv4/ip_fragment.c ip_frag_queue
 * and net/ipv4/inet_fragment.c inet_frag_queue_insert), each checked against the kernel in
 * test/differential.e2e.test.ts:
 *  - A fragment whose bytes lie wholly inside a run of contiguous fragments we hold (an exact
 *    duplicate, or a piece of one) is a duplicate: dropped alone and counted, the rest kept.
 *  - Any other overlap discards the whole datagram (counted): what Linux does since the
 *    FragmentSmack fixes, and what RFC 5722 requires for IPv6. Overlapping fragments have no
 *    legitimate use and are a classic way to sneak data past filters. Later fragments with the
 *    same identification start a new datagram.
 *  - A non-last fragment whose data is not a multiple of 8 bytes is cut down to one (the bytes
 *    past it are ignored); one that is then empty (fewer than 8 bytes, or none) discards the
 *    whole datagram, and so does an empty last fragment.
 *  - A fragment that contradicts the known length (data past the end the last fragment set, a
 *    last fragment ending before data we hold, a second last fragment with another end)
 *    discards the datagram; so does one that would make it longer than 65535 bytes, and so does
 *    a datagram that is complete but too long behind its first fragment's header.
 *
 * Memory is bounded three ways: bytes held in total (each fragment counts its data plus a fixed
 * overhead; above the high-water mark the oldest datagrams are evicted until the low-water mark,
 * Linux's 4 MB / 3 MB ipfrag_high_thresh/low_thresh), datagrams in flight, and fragments per
 * datagram. Every datagram has a timer (30 s, Linux's ipfrag_time) started by its first fragment;
 * when it fires the memory is freed and, if the fragment at offset 0 had arrived, the caller is
 * told so it can send ICMP time-exceeded code 1 (RFC 792, RFC 1122 3.3.2).
 */
import type { Clock, Timer } from '@tapstack/link';
import { IPV4_MAX_DATAGRAM_LENGTH, Ipv4Packet } from './header.ts';

export interface ReassemblyLimits {
  /** Above this many bytes held, evict the oldest datagrams... (default 4 MB) */
  highWaterBytes: number;
  /** ...until at most this many are held (default 3 MB). */
  lowWaterBytes: number;
  /** Datagrams being reassembled at once; a new one evicts the oldest (default 1024). */
  maxDatagrams: number;
  /** Fragments kept per datagram (default 512: 64 KB in 128-byte fragments). */
  maxFragmentsPerDatagram: number;
  /** Largest reassembled datagram, header included (default and maximum 65535). */
  maxDatagramLength: number;
  /** Time from the first fragment until an incomplete datagram is dropped (default 30 s). */
  timeoutMs: number;
}

export const DEFAULT_REASSEMBLY_LIMITS: Readonly<ReassemblyLimits> = {
  highWaterBytes: 4 * 1024 * 1024,
  lowWaterBytes: 3 * 1024 * 1024,
  maxDatagrams: 1024,
  maxFragmentsPerDatagram: 512,
  maxDatagramLength: IPV4_MAX_DATAGRAM_LENGTH,
  timeoutMs: 30_000,
};

/** Bytes charged per fragment on top of its data (bookkeeping), like the kernel's truesize. */
export const FRAGMENT_OVERHEAD_BYTES = 64;

export const REASSEMBLY_COUNTERS = [
  'reasm_fragments',
  'reasm_ok',
  'reasm_timeout',
  'reasm_duplicate',
  'reasm_overlap',
  'reasm_bad_length',
  'reasm_bad_fragment',
  'reasm_too_big',
  'reasm_too_many_fragments',
  'reasm_evicted',
] as const;
export type ReassemblyCounterName = (typeof REASSEMBLY_COUNTERS)[number];

interface Fragment {
  readonly offset: number;
  readonly end: number;
  readonly data: Uint8Array;
}

interface PendingDatagram {
  readonly key: string;
  readonly fragments: Fragment[];
  /** Data bytes received (no overlaps, so this only grows towards the total). */
  received: number;
  /** Payload length, known once the last fragment arrived. */
  payloadLength: number | undefined;
  /** Header of the fragment at offset 0 (it becomes the reassembled datagram's header). */
  firstHeader: Uint8Array | undefined;
  /** The fragment at offset 0: header plus up to 8 bytes, what an ICMP error quotes. */
  firstQuote: Uint8Array | undefined;
  /** Bytes charged against the limits. */
  charged: number;
  readonly timer: Timer;
}

export type ReassemblyTimeoutListener = (firstFragment: Uint8Array | undefined) => void;

export class Reassembler {
  readonly limits: Readonly<ReassemblyLimits>;
  private readonly pending = new Map<string, PendingDatagram>();
  private held = 0;

  constructor(
    private readonly clock: Clock,
    private readonly counters: { inc(name: ReassemblyCounterName): void },
    limits: Partial<ReassemblyLimits> = {},
    private readonly onTimeout: ReassemblyTimeoutListener = () => {},
  ) {
    this.limits = { ...DEFAULT_REASSEMBLY_LIMITS, ...limits };
    const l = this.limits;
    if (l.lowWaterBytes > l.highWaterBytes) throw new RangeError('reassembly lowWaterBytes must not exceed highWaterBytes');
    if (l.maxDatagramLength > IPV4_MAX_DATAGRAM_LENGTH) throw new RangeError('maxDatagramLength cannot exceed 65535');
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
   * Takes one checked fragment. Returns the whole datagram (a new buffer, a valid packet with
   * the fragment fields cleared) when this fragment completed it, otherwise undefined.
   */
  input(packet: Ipv4Packet): Ipv4Packet | undefined {
    this.counters.inc('reasm_fragments');
    const offset = packet.fragmentOffset;
    const last = !packet.moreFragments;
    const key = `${packet.source}/${packet.destination}/${packet.protocol}/${packet.identification}`;
    // Every fragment but the last carries a multiple of 8 bytes; Linux cuts the rest off.
    let data = packet.payload;
    if (!last && data.length % 8 !== 0) data = data.subarray(0, data.length - (data.length % 8));
    const end = offset + data.length;
    if (data.length === 0) {
      // Linux: "end == offset" discards the whole queue.
      this.counters.inc('reasm_bad_fragment');
      this.discard(key);
      return undefined;
    }
    if (packet.headerLength + end > this.limits.maxDatagramLength) {
      this.counters.inc('reasm_too_big');
      this.discard(key);
      return undefined;
    }

    let entry = this.pending.get(key);
    if (!entry) {
      if (this.pending.size >= this.limits.maxDatagrams) this.evictOldest();
      entry = {
        key,
        fragments: [],
        received: 0,
        payloadLength: undefined,
        firstHeader: undefined,
        firstQuote: undefined,
        charged: 0,
        timer: this.clock.setTimer(this.limits.timeoutMs, () => this.expire(key)),
      };
      this.pending.set(key, entry);
    }

    // Consistency with the length the last fragment announced (or announces now).
    if (entry.payloadLength !== undefined && (end > entry.payloadLength || (last && end !== entry.payloadLength))) {
      this.counters.inc('reasm_bad_length');
      this.discard(key);
      return undefined;
    }
    const frags = entry.fragments;
    if (last && entry.payloadLength === undefined && frags.length > 0 && frags[frags.length - 1]!.end > end) {
      this.counters.inc('reasm_bad_length');
      this.discard(key);
      return undefined;
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
        return undefined;
      }
      this.counters.inc('reasm_overlap');
      this.discard(key);
      return undefined;
    }
    if (frags.length >= this.limits.maxFragmentsPerDatagram) {
      this.counters.inc('reasm_too_many_fragments');
      this.discard(key);
      return undefined;
    }

    frags.splice(i, 0, { offset, end, data: data.slice() });
    entry.received += data.length;
    if (last) entry.payloadLength = end;
    if (offset === 0) {
      entry.firstHeader = packet.header.slice();
      entry.firstQuote = packet.bytes.slice(0, packet.headerLength + Math.min(8, data.length));
    }
    const charge = data.length + FRAGMENT_OVERHEAD_BYTES;
    entry.charged += charge;
    this.held += charge;

    if (entry.payloadLength !== undefined && entry.received === entry.payloadLength && entry.firstHeader) {
      return this.assemble(entry);
    }
    if (this.held > this.limits.highWaterBytes) {
      while (this.held > this.limits.lowWaterBytes && this.pending.size > 0) this.evictOldest();
    }
    return undefined;
  }

  /** Drops everything and cancels every timer. */
  clear(): void {
    for (const key of [...this.pending.keys()]) this.discard(key);
  }

  private assemble(entry: PendingDatagram): Ipv4Packet | undefined {
    const header = entry.firstHeader!;
    const payloadLength = entry.payloadLength!;
    // Each fragment was checked against its own header; the datagram gets the first one's,
    // which may be longer (options): it must still fit the total length field.
    if (header.length + payloadLength > this.limits.maxDatagramLength) {
      this.counters.inc('reasm_too_big');
      this.discard(entry.key);
      return undefined;
    }
    const out = new Uint8Array(header.length + payloadLength);
    out.set(header, 0);
    for (const f of entry.fragments) out.set(f.data, header.length + f.offset);
    this.discard(entry.key);
    const packet = new Ipv4Packet(out);
    packet.totalLength = out.length;
    packet.setFragment(packet.dontFragment, false, 0);
    packet.fillChecksum();
    this.counters.inc('reasm_ok');
    return packet;
  }

  private expire(key: string): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    const quote = entry.firstQuote;
    this.discard(key);
    this.counters.inc('reasm_timeout');
    this.onTimeout(quote);
  }

  private evictOldest(): void {
    const oldest = this.pending.keys().next();
    if (oldest.done) return;
    this.discard(oldest.value);
    this.counters.inc('reasm_evicted');
  }

  private discard(key: string): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    entry.timer.cancel();
    this.held -= entry.charged;
    this.pending.delete(key);
  }
}

/**
 * True when [offset, end) lies wholly inside one run of fragments that follow each other without
 * a gap (Linux keeps such runs together and calls a fragment inside one a duplicate).
 */
function insideRun(frags: readonly Fragment[], offset: number, end: number): boolean {
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
