/**
 * Reassembly of fragmented IPv6 packets (RFC 8200 4.5), bounded against hostile input exactly as
 * IPv4's is (packages/ipv4/src/reassembly.ts: the same memory high/low water marks, datagram and
 * per-datagram fragment limits, the same duplicate and overlap handling), with IPv6's own rules:
 *
 *  - Fragments belong together when source, destination and identification match.
 *  - A fragment that is not the last must carry a multiple of 8 bytes; otherwise the packet is
 *    refused with a parameter problem code 0 pointing at the payload length field (RFC 8200 4.5).
 *  - A fragment that would make the packet longer than 65535 bytes of payload is refused with a
 *    parameter problem code 0 pointing at its fragment offset field.
 *  - Overlapping fragments discard the whole packet, silently (RFC 5722); a fragment lying wholly
 *    inside data already held is a duplicate (RFC 5722 allows dropping it alone), as Linux does.
 *  - An atomic fragment (offset 0, M clear) is a whole packet: it is returned at once and never
 *    touches the reassembly of others with the same identification (RFC 6946 4).
 *  - The first fragment must hold the whole header chain up to and including the upper-layer
 *    header (RFC 7112 5; RFC 8200 4.5); if not, it is dropped with a parameter problem code 3,
 *    pointer 0.
 *  - An incomplete packet is dropped 60 s after its first fragment arrived (RFC 8200 4.5, Linux's
 *    ip6frag_time), and, when its first fragment had arrived, the caller is told so it can send a
 *    time exceeded code 1 quoting it.
 *
 * The reassembled packet is the first fragment's unfragmentable part (the fixed header and the
 * extension headers before the fragment header), with the next-header field that named the
 * fragment header set to the fragment header's next header, then the fragmentable parts in order.
 */
import type { Clock, Timer } from '@tapstack/link';
import { walkExtensionHeaders } from './extension.ts';
import { IPV6_FRAGMENT_HEADER_LENGTH, Ipv6FragmentRepr } from './fragment.ts';
import { IPV6_HEADER_LENGTH, IPV6_MAX_PAYLOAD_LENGTH, IpNextHeader, Ipv6Field, Ipv6Packet } from './header.ts';
import type { ParameterProblem } from './extension.ts';

export interface Ipv6ReassemblyLimits {
  /** Above this many bytes held, evict the oldest packets... (default 4 MB, Linux's ip6frag_high_thresh) */
  highWaterBytes: number;
  /** ...until at most this many are held (default 3 MB). */
  lowWaterBytes: number;
  /** Packets being reassembled at once; a new one evicts the oldest (default 1024). */
  maxDatagrams: number;
  /** Fragments kept per packet (default 512). */
  maxFragmentsPerDatagram: number;
  /** Time from the first fragment until an incomplete packet is dropped (default 60 s, RFC 8200 4.5). */
  timeoutMs: number;
}

export const DEFAULT_IPV6_REASSEMBLY_LIMITS: Readonly<Ipv6ReassemblyLimits> = {
  highWaterBytes: 4 * 1024 * 1024,
  lowWaterBytes: 3 * 1024 * 1024,
  maxDatagrams: 1024,
  maxFragmentsPerDatagram: 512,
  timeoutMs: 60_000,
};

/** Bytes charged per fragment on top of its data (bookkeeping), like the kernel's truesize. */
export const IPV6_FRAGMENT_OVERHEAD_BYTES = 64;

export const IPV6_REASSEMBLY_COUNTERS = [
  'reasm_fragments',
  'reasm_ok',
  'reasm_atomic',
  'reasm_timeout',
  'reasm_duplicate',
  'reasm_overlap',
  'reasm_bad_length',
  'reasm_bad_fragment',
  'reasm_not_multiple_of_8',
  'reasm_too_big',
  'reasm_incomplete_chain',
  'reasm_too_many_fragments',
  'reasm_evicted',
] as const;
export type Ipv6ReassemblyCounterName = (typeof IPV6_REASSEMBLY_COUNTERS)[number];

export type Ipv6ReassemblyResult =
  /** This fragment completed the packet (or was atomic): a new, whole packet without a fragment header. */
  | { readonly kind: 'complete'; readonly packet: Ipv6Packet }
  /** Kept, waiting for the others. */
  | { readonly kind: 'pending' }
  /** Dropped silently (counted under `reason`); the packet it belonged to may be gone too. */
  | { readonly kind: 'dropped'; readonly reason: Ipv6ReassemblyCounterName }
  /** Dropped, and the sender must be told with this parameter problem (pointer from the fragment's IPv6 header). */
  | { readonly kind: 'parameter-problem'; readonly reason: Ipv6ReassemblyCounterName; readonly parameterProblem: ParameterProblem };

/** Where the walker found the fragment header (its 'fragment' result). */
export interface FragmentLocation {
  /** Offset of the fragment header from the start of the IPv6 packet. */
  readonly offset: number;
  /** Offset of the next-header field that named it (6 when it follows the fixed header). */
  readonly nextHeaderFieldOffset: number;
}

/** The first fragment of an expired packet, as the time exceeded message quotes it. */
export type Ipv6ReassemblyTimeoutListener = (firstFragment: Uint8Array | undefined) => void;

interface Fragment {
  readonly offset: number;
  readonly end: number;
  readonly data: Uint8Array;
}

interface PendingPacket {
  readonly key: string;
  readonly fragments: Fragment[];
  received: number;
  /** Length of the fragmentable part, known once the last fragment arrived. */
  totalLength: number | undefined;
  /** The first fragment's unfragmentable part, next-header field already patched. */
  unfragmentable: Uint8Array | undefined;
  /** The first fragment as received, what a time exceeded quotes. */
  firstFragment: Uint8Array | undefined;
  charged: number;
  readonly timer: Timer;
}

/** Minimum header an upper layer must have whole in a first fragment (RFC 7112). */
function upperLayerHeaderLength(nextHeader: number): number {
  switch (nextHeader) {
    case IpNextHeader.TCP:
      return 20;
    case IpNextHeader.UDP:
    case IpNextHeader.ICMPV6:
      return 8;
    default:
      return 0;
  }
}

export class Ipv6Reassembler {
  readonly limits: Readonly<Ipv6ReassemblyLimits>;
  private readonly pending = new Map<string, PendingPacket>();
  private held = 0;

  constructor(
    private readonly clock: Clock,
    private readonly counters: { inc(name: Ipv6ReassemblyCounterName): void },
    limits: Partial<Ipv6ReassemblyLimits> = {},
    private readonly onTimeout: Ipv6ReassemblyTimeoutListener = () => {},
  ) {
    this.limits = { ...DEFAULT_IPV6_REASSEMBLY_LIMITS, ...limits };
    if (this.limits.lowWaterBytes > this.limits.highWaterBytes) throw new RangeError('reassembly lowWaterBytes must not exceed highWaterBytes');
  }

  /** Bytes held right now (data plus per-fragment overhead). */
  get bytesHeld(): number {
    return this.held;
  }

  /** Packets being reassembled right now. */
  get datagramsInFlight(): number {
    return this.pending.size;
  }

  /** Takes one checked fragment, located by the extension-header walker. */
  input(packet: Ipv6Packet, at: FragmentLocation): Ipv6ReassemblyResult {
    this.counters.inc('reasm_fragments');
    const bytes = packet.bytes;
    const parsed = Ipv6FragmentRepr.parse(bytes, at.offset);
    if (!parsed.ok) return this.drop('reasm_bad_fragment');
    const fragment = parsed.value;
    const dataStart = at.offset + IPV6_FRAGMENT_HEADER_LENGTH;
    const data = bytes.subarray(dataStart);
    const last = !fragment.moreFragments;

    if (fragment.offset === 0 && last) {
      // RFC 6946: an atomic fragment is a whole packet of its own.
      this.counters.inc('reasm_atomic');
      return { kind: 'complete', packet: joinPacket(unfragmentablePart(bytes, at, fragment.nextHeader), [{ offset: 0, end: data.length, data }], data.length) };
    }
    // RFC 8200 4.5: every fragment but the last carries a multiple of 8 bytes.
    if (!last && data.length % 8 !== 0) {
      this.counters.inc('reasm_not_multiple_of_8');
      return { kind: 'parameter-problem', reason: 'reasm_not_multiple_of_8', parameterProblem: { code: 0, pointer: Ipv6Field.PAYLOAD_LENGTH } };
    }
    const end = fragment.offset + data.length;
    const key = `${packet.source.key}/${packet.destination.key}/${fragment.identification}`;
    // RFC 8200 4.5: the reassembled payload would exceed 65535 bytes. The fragment alone is
    // refused (as Linux's ip6_frag_queue does); the others wait for their timeout.
    if (at.offset - IPV6_HEADER_LENGTH + end > IPV6_MAX_PAYLOAD_LENGTH) {
      this.counters.inc('reasm_too_big');
      return { kind: 'parameter-problem', reason: 'reasm_too_big', parameterProblem: { code: 0, pointer: at.offset + 2 } };
    }
    if (data.length === 0) {
      this.discard(key);
      return this.drop('reasm_bad_fragment');
    }
    if (fragment.offset === 0 && !holdsWholeChain(bytes, dataStart, fragment.nextHeader)) {
      // RFC 7112 5: the first fragment must carry the whole header chain.
      this.counters.inc('reasm_incomplete_chain');
      this.discard(key);
      return { kind: 'parameter-problem', reason: 'reasm_incomplete_chain', parameterProblem: { code: 3, pointer: 0 } };
    }

    let entry = this.pending.get(key);
    if (!entry) {
      if (this.pending.size >= this.limits.maxDatagrams) this.evictOldest();
      entry = {
        key,
        fragments: [],
        received: 0,
        totalLength: undefined,
        unfragmentable: undefined,
        firstFragment: undefined,
        charged: 0,
        timer: this.clock.setTimer(this.limits.timeoutMs, () => this.expire(key)),
      };
      this.pending.set(key, entry);
    }

    // Consistency with the length the last fragment announced (or announces now).
    const frags = entry.fragments;
    if (
      (entry.totalLength !== undefined && (end > entry.totalLength || (last && end !== entry.totalLength))) ||
      (last && entry.totalLength === undefined && frags.length > 0 && frags[frags.length - 1]!.end > end)
    ) {
      this.discard(key);
      return this.drop('reasm_bad_length');
    }

    let i = frags.length;
    while (i > 0 && frags[i - 1]!.offset >= fragment.offset) i--;
    const next = frags[i];
    const previous = i > 0 ? frags[i - 1] : undefined;
    if ((previous && previous.end > fragment.offset) || (next && next.offset < end)) {
      if (insideRun(frags, fragment.offset, end)) return this.drop('reasm_duplicate');
      // RFC 5722: any other overlap discards the whole packet, without an ICMP message.
      this.discard(key);
      return this.drop('reasm_overlap');
    }
    if (frags.length >= this.limits.maxFragmentsPerDatagram) {
      this.discard(key);
      return this.drop('reasm_too_many_fragments');
    }

    frags.splice(i, 0, { offset: fragment.offset, end, data: data.slice() });
    entry.received += data.length;
    if (last) entry.totalLength = end;
    let charge = data.length + IPV6_FRAGMENT_OVERHEAD_BYTES;
    if (fragment.offset === 0) {
      entry.unfragmentable = unfragmentablePart(bytes, at, fragment.nextHeader).slice();
      entry.firstFragment = bytes.slice();
      charge += entry.unfragmentable.length + entry.firstFragment.length;
    }
    entry.charged += charge;
    this.held += charge;

    if (entry.totalLength !== undefined && entry.received === entry.totalLength && entry.unfragmentable) {
      const whole = joinPacket(entry.unfragmentable, entry.fragments, entry.totalLength);
      this.discard(key);
      this.counters.inc('reasm_ok');
      return { kind: 'complete', packet: whole };
    }
    if (this.held > this.limits.highWaterBytes) {
      while (this.held > this.limits.lowWaterBytes && this.pending.size > 0) this.evictOldest();
    }
    return { kind: 'pending' };
  }

  /** Drops everything and cancels every timer. */
  clear(): void {
    for (const key of [...this.pending.keys()]) this.discard(key);
  }

  private drop(reason: Ipv6ReassemblyCounterName): Ipv6ReassemblyResult {
    this.counters.inc(reason);
    return { kind: 'dropped', reason };
  }

  private expire(key: string): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    const first = entry.firstFragment;
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

  private discard(key: string): void {
    const entry = this.pending.get(key);
    if (!entry) return;
    entry.timer.cancel();
    this.held -= entry.charged;
    this.pending.delete(key);
  }
}

/**
 * The headers before the fragment header, with the next-header field that named the fragment
 * header set to what follows the fragment header (a view-sized copy).
 */
function unfragmentablePart(bytes: Uint8Array, at: FragmentLocation, nextHeader: number): Uint8Array {
  const part = bytes.slice(0, at.offset);
  part[at.nextHeaderFieldOffset] = nextHeader;
  return part;
}

/** The unfragmentable part, then the fragments' data in order; the payload length set. */
function joinPacket(unfragmentable: Uint8Array, fragments: readonly Fragment[], totalLength: number): Ipv6Packet {
  const out = new Uint8Array(unfragmentable.length + totalLength);
  out.set(unfragmentable, 0);
  for (const f of fragments) out.set(f.data, unfragmentable.length + f.offset);
  const packet = new Ipv6Packet(out);
  packet.payloadLength = out.length - IPV6_HEADER_LENGTH;
  return packet;
}

/**
 * RFC 7112: does the first fragment, from `start` (just after its fragment header), hold every
 * extension header and then the upper-layer header whole? Walks a copy shaped as a packet of its
 * own, so the walker's rules apply unchanged.
 */
function holdsWholeChain(bytes: Uint8Array, start: number, nextHeader: number): boolean {
  const probe = new Uint8Array(IPV6_HEADER_LENGTH + bytes.length - start);
  probe.set(bytes.subarray(0, IPV6_HEADER_LENGTH), 0);
  probe.set(bytes.subarray(start), IPV6_HEADER_LENGTH);
  probe[Ipv6Field.NEXT_HEADER] = nextHeader;
  const r = walkExtensionHeaders(new Ipv6Packet(probe), { isUpperLayer: () => true });
  if (r.kind === 'upper-layer') return probe.length - r.offset >= upperLayerHeaderLength(r.nextHeader);
  // A truncated chain is incomplete; anything else (59, or an error the walker reports on the
  // reassembled packet) is not this rule's business.
  return !(r.kind === 'error' && r.reason === 'truncated_header');
}

/** True when [offset, end) lies wholly inside one run of fragments that follow each other without a gap. */
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
