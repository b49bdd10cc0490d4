/**
 * Reassembly of fragmented IPv6 packets (RFC 8200 4.5), bounded against hostile input exactly as
 * IPv4's is: the bookkeeping (fragments in order, duplicates and overlaps, the memory high/low
 * water marks, datagram and per-datagram fragment limits, eviction, the timer) is
 * @tapstack/reassembly's FragmentTable, shared with IPv4. IPv6's own rules are here:
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
import type { Clock } from '@tapstack/link';
import { FRAGMENT_OVERHEAD_BYTES, FragmentTable, type FragmentLimits, type HeldFragment } from '@tapstack/reassembly';
import { walkExtensionHeaders } from './extension.ts';
import { IPV6_FRAGMENT_HEADER_LENGTH, Ipv6FragmentRepr } from './fragment.ts';
import { IPV6_HEADER_LENGTH, IPV6_MAX_PAYLOAD_LENGTH, IpNextHeader, Ipv6Field, Ipv6Packet } from './header.ts';
import type { ParameterProblem } from './extension.ts';

/** The shared table's limits; the default timeout is 60 s (RFC 8200 4.5, Linux's ip6frag_time). */
export type Ipv6ReassemblyLimits = FragmentLimits;

export const DEFAULT_IPV6_REASSEMBLY_LIMITS: Readonly<Ipv6ReassemblyLimits> = {
  highWaterBytes: 4 * 1024 * 1024,
  lowWaterBytes: 3 * 1024 * 1024,
  maxDatagrams: 1024,
  maxFragmentsPerDatagram: 512,
  timeoutMs: 60_000,
};

/** Bytes charged per fragment on top of its data (bookkeeping), like the kernel's truesize. */
export const IPV6_FRAGMENT_OVERHEAD_BYTES = FRAGMENT_OVERHEAD_BYTES;

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

/** What is kept of the first fragment. */
interface FirstFragment {
  /** Its unfragmentable part, next-header field already patched. */
  readonly unfragmentable: Uint8Array;
  /** The first fragment as received, what a time exceeded quotes. */
  readonly packet: Uint8Array;
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
  private readonly table: FragmentTable<FirstFragment>;

  constructor(
    clock: Clock,
    private readonly counters: { inc(name: Ipv6ReassemblyCounterName): void },
    limits: Partial<Ipv6ReassemblyLimits> = {},
    onTimeout: Ipv6ReassemblyTimeoutListener = () => {},
  ) {
    this.limits = { ...DEFAULT_IPV6_REASSEMBLY_LIMITS, ...limits };
    this.table = new FragmentTable(clock, counters, this.limits, (first) => onTimeout(first?.packet));
  }

  /** Bytes held right now (data plus per-fragment overhead). */
  get bytesHeld(): number {
    return this.table.bytesHeld;
  }

  /** Packets being reassembled right now. */
  get datagramsInFlight(): number {
    return this.table.datagramsInFlight;
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
      this.table.discard(key);
      return this.drop('reasm_bad_fragment');
    }
    if (fragment.offset === 0 && !holdsWholeChain(bytes, dataStart, fragment.nextHeader)) {
      // RFC 7112 5: the first fragment must carry the whole header chain.
      this.counters.inc('reasm_incomplete_chain');
      this.table.discard(key);
      return { kind: 'parameter-problem', reason: 'reasm_incomplete_chain', parameterProblem: { code: 3, pointer: 0 } };
    }

    // Duplicates and overlaps are the table's (RFC 5722: an overlap discards the whole packet,
    // without an ICMP message).
    const result = this.table.insert(key, fragment.offset, data, last, () => {
      const unfragmentable = unfragmentablePart(bytes, at, fragment.nextHeader);
      const first = bytes.slice();
      return { value: { unfragmentable, packet: first }, bytes: unfragmentable.length + first.length };
    });
    if (result.kind !== 'complete') return result;
    this.counters.inc('reasm_ok');
    return { kind: 'complete', packet: joinPacket(result.first.unfragmentable, result.fragments, result.length) };
  }

  /** Drops everything and cancels every timer. */
  clear(): void {
    this.table.clear();
  }

  private drop(reason: Ipv6ReassemblyCounterName): Ipv6ReassemblyResult {
    this.counters.inc(reason);
    return { kind: 'dropped', reason };
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
function joinPacket(unfragmentable: Uint8Array, fragments: readonly HeldFragment[], totalLength: number): Ipv6Packet {
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
