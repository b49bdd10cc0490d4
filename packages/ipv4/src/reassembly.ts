/**
 * Reassembly of fragmented IPv4 datagrams (RFC 791 section 3.2, RFC 815), bounded against hostile
 * input. The bookkeeping shared with IPv6 (fragments in order, duplicates and overlaps, the memory
 * bounds, eviction, the timer) is @tapstack/reassembly's FragmentTable; what is IPv4's is here.
 *
 * Fragments belong together when source, destination, protocol and identification match. The
 * awkward cases are answered as Linux 6.x answers them (net/ipv4/ip_fragment.c ip_frag_queue and
 * net/ipv4/inet_fragment.c inet_frag_queue_insert), each checked against the kernel in
 * test/differential.e2e.test.ts:
 *  - A fragment wholly inside a run of contiguous fragments we hold is a duplicate, dropped
 *    alone; any other overlap discards the whole datagram (the FragmentSmack fixes). Both are the
 *    shared table's rules.
 *  - A non-last fragment whose data is not a multiple of 8 bytes is cut down to one (the bytes
 *    past it are ignored); one that is then empty (fewer than 8 bytes, or none) discards the
 *    whole datagram, and so does an empty last fragment.
 *  - A fragment that contradicts the known length discards the datagram (the table's rule); so
 *    does one that would make it longer than 65535 bytes, and so does a datagram that is complete
 *    but too long behind its first fragment's header.
 *
 * Memory is bounded as the table bounds it (Linux's 4 MB / 3 MB ipfrag_high_thresh/low_thresh,
 * 1024 datagrams, 512 fragments each). Every datagram has a timer (30 s, Linux's ipfrag_time)
 * started by its first fragment; when it fires the memory is freed and, if the fragment at offset
 * 0 had arrived, the caller is told so it can send ICMP time-exceeded code 1 (RFC 792, RFC 1122
 * 3.3.2).
 */
import type { Clock } from '@tapstack/link';
import { FragmentTable, type FragmentLimits, type HeldFragment } from '@tapstack/reassembly';
import { IPV4_MAX_DATAGRAM_LENGTH, Ipv4Packet } from './header.ts';

export interface ReassemblyLimits extends FragmentLimits {
  /** Largest reassembled datagram, header included (default and maximum 65535). */
  maxDatagramLength: number;
}

export const DEFAULT_REASSEMBLY_LIMITS: Readonly<ReassemblyLimits> = {
  highWaterBytes: 4 * 1024 * 1024,
  lowWaterBytes: 3 * 1024 * 1024,
  maxDatagrams: 1024,
  maxFragmentsPerDatagram: 512,
  maxDatagramLength: IPV4_MAX_DATAGRAM_LENGTH,
  timeoutMs: 30_000,
};

export { FRAGMENT_OVERHEAD_BYTES } from '@tapstack/reassembly';

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

/** What is kept of the fragment at offset 0. */
interface FirstFragment {
  /** Its header: it becomes the reassembled datagram's header. */
  readonly header: Uint8Array;
  /** Its header plus up to 8 bytes, what an ICMP time exceeded quotes. */
  readonly quote: Uint8Array;
}

export type ReassemblyTimeoutListener = (firstFragment: Uint8Array | undefined) => void;

export class Reassembler {
  readonly limits: Readonly<ReassemblyLimits>;
  private readonly table: FragmentTable<FirstFragment>;

  constructor(
    clock: Clock,
    private readonly counters: { inc(name: ReassemblyCounterName): void },
    limits: Partial<ReassemblyLimits> = {},
    onTimeout: ReassemblyTimeoutListener = () => {},
  ) {
    this.limits = { ...DEFAULT_REASSEMBLY_LIMITS, ...limits };
    if (this.limits.maxDatagramLength > IPV4_MAX_DATAGRAM_LENGTH) throw new RangeError('maxDatagramLength cannot exceed 65535');
    this.table = new FragmentTable(clock, counters, this.limits, (first) => onTimeout(first?.quote));
  }

  /** Bytes held right now (data plus per-fragment overhead). */
  get bytesHeld(): number {
    return this.table.bytesHeld;
  }

  /** Datagrams being reassembled right now. */
  get datagramsInFlight(): number {
    return this.table.datagramsInFlight;
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
    if (data.length === 0) {
      // Linux: "end == offset" discards the whole queue.
      this.counters.inc('reasm_bad_fragment');
      this.table.discard(key);
      return undefined;
    }
    if (packet.headerLength + offset + data.length > this.limits.maxDatagramLength) {
      this.counters.inc('reasm_too_big');
      this.table.discard(key);
      return undefined;
    }
    const result = this.table.insert(key, offset, data, last, () => ({
      value: { header: packet.header.slice(), quote: packet.bytes.slice(0, packet.headerLength + Math.min(8, data.length)) },
      bytes: 0,
    }));
    return result.kind === 'complete' ? this.assemble(result.first.header, result.fragments, result.length) : undefined;
  }

  /** Drops everything and cancels every timer. */
  clear(): void {
    this.table.clear();
  }

  private assemble(header: Uint8Array, fragments: readonly HeldFragment[], payloadLength: number): Ipv4Packet | undefined {
    // Each fragment was checked against its own header; the datagram gets the first one's,
    // which may be longer (options): it must still fit the total length field.
    if (header.length + payloadLength > this.limits.maxDatagramLength) {
      this.counters.inc('reasm_too_big');
      return undefined;
    }
    const out = new Uint8Array(header.length + payloadLength);
    out.set(header, 0);
    for (const f of fragments) out.set(f.data, header.length + f.offset);
    const packet = new Ipv4Packet(out);
    packet.totalLength = out.length;
    packet.setFragment(packet.dontFragment, false, 0);
    packet.fillChecksum();
    this.counters.inc('reasm_ok');
    return packet;
  }
}
