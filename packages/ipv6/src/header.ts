/**
 * The IPv6 fixed header (RFC 8200 section 3), in the smoltcp `wire` style: field offsets as
 * constants, a zero-copy view checked once by `Ipv6Packet.check`, a plain `Ipv6Repr` with
 * parse/emit/bufferLength, and a one-line formatter.
 *
 *  0               1               2               3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-------+---------------+---------------------------------------+
 * |Version| Traffic Class |              Flow Label               |
 * +-------+---------------+-------+---------------+---------------+
 * |         Payload Length        |  Next Header  |   Hop Limit   |
 * +-------------------------------+---------------+---------------+
 * |                   Source Address (128 bits)                   |
 * +---------------------------------------------------------------+
 * |                Destination Address (128 bits)                 |
 * +---------------------------------------------------------------+
 *
 * Compared with IPv4's header: a fixed 40 bytes (options moved into extension headers, see
 * extension.ts), no header checksum (the link and the upper layers' pseudo-header checksums cover
 * it, RFC 8200 8.1), no fragment fields (a fragment header does that, and only the source
 * fragments), and the payload length counts what follows the 40 bytes, extension headers included.
 */
import { fail, Ipv6Address, ok, PacketView, type ParseResult } from '@tapstack/link';

/** The fixed header; extension headers follow it and count in the payload length. */
export const IPV6_HEADER_LENGTH = 40;
/** The payload length field is 16 bits (jumbograms, RFC 2675, are not supported: no link here carries them). */
export const IPV6_MAX_PAYLOAD_LENGTH = 65535;
/** Every link that carries IPv6 must carry packets of this size whole (RFC 8200 5). */
export const IPV6_MIN_MTU = 1280;

/** Field offsets from the start of the header. */
export const Ipv6Field = {
  /** Version (4 bits), traffic class (8 bits), flow label (20 bits): one 32-bit word. */
  VERSION_CLASS_FLOW: 0,
  PAYLOAD_LENGTH: 4,
  NEXT_HEADER: 6,
  HOP_LIMIT: 7,
  SOURCE: 8,
  DESTINATION: 24,
  PAYLOAD: 40,
} as const;

/**
 * Next-header values (IANA "Assigned Internet Protocol Numbers", the same space as IPv4's
 * protocol field): the extension headers of RFC 8200 4 and the upper layers the stack knows.
 */
export const IpNextHeader = {
  HOP_BY_HOP: 0,
  TCP: 6,
  UDP: 17,
  ROUTING: 43,
  FRAGMENT: 44,
  ICMPV6: 58,
  /** "No next header": nothing follows; bytes after it are ignored (RFC 8200 4.7). */
  NO_NEXT_HEADER: 59,
  DESTINATION_OPTIONS: 60,
} as const;

/** The name tcpdump prints for a next-header value. */
export function ipNextHeaderName(nextHeader: number): string {
  switch (nextHeader) {
    case IpNextHeader.HOP_BY_HOP:
      return 'HBH';
    case IpNextHeader.TCP:
      return 'TCP';
    case IpNextHeader.UDP:
      return 'UDP';
    case IpNextHeader.ROUTING:
      return 'routing';
    case IpNextHeader.FRAGMENT:
      return 'frag';
    case IpNextHeader.ICMPV6:
      return 'ICMPv6';
    case IpNextHeader.NO_NEXT_HEADER:
      return 'no next header';
    case IpNextHeader.DESTINATION_OPTIONS:
      return 'DSTOPT';
    default:
      return `next-header-${nextHeader}`;
  }
}

/** Why `Ipv6Packet.check` refused bytes, in the order they are checked. */
export type Ipv6CheckFailure = 'truncated' | 'bad_version' | 'bad_payload_length';

/**
 * A zero-copy view of an IPv6 packet (fixed header and payload).
 *
 * Like Ipv4Packet, the packet may sit inside a larger buffer (a whole Ethernet frame: offset 14),
 * and `bytes`, a Uint8Array of the packet alone, is made only when asked for. The addresses are
 * read into new Ipv6Address values on each access: hot paths that only compare or checksum them
 * read the buffer (`sourceOffset`, `ipv6PseudoHeaderSumOf`).
 */
export class Ipv6Packet extends PacketView {
  /**
   * Wraps the packet at `buffer[start..end)` without checking; use `Ipv6Packet.check` for
   * network input. The receive path's one view is re-pointed at each packet instead
   * (PacketView.repoint, see `Ipv6Handler`); `end` is 40 + payload length after `start`.
   */
  constructor(buffer: Uint8Array, start = 0, end = buffer.length) {
    super(buffer, start, end);
  }

  /**
   * Checks what Linux's ipv6_rcv checks of the fixed header: at least 40 bytes, version 6, and
   * the payload length within the bytes. The view ends at 40 + payload length, so Ethernet
   * padding is left out. With `offset` the packet starts that far into `bytes`.
   * (The addresses are the layer's business: a multicast source, RFC 4291 2.7, is dropped there.)
   */
  static check(bytes: Uint8Array, options: { offset?: number } = {}): ParseResult<Ipv6Packet, Ipv6CheckFailure> {
    const start = options.offset ?? 0;
    const failure = Ipv6Packet.checkAt(bytes, start);
    if (failure !== undefined) return fail(failure);
    return ok(new Ipv6Packet(bytes, start, Ipv6Packet.endAt(bytes, start)));
  }

  /**
   * `check` where the packet lies, without making anything: the failure, or undefined for a
   * good packet, which then ends at `Ipv6Packet.endAt(bytes, start)`. The layer's receive path
   * re-points its one view (`repoint`), so a good packet costs no allocation.
   */
  static checkAt(bytes: Uint8Array, start: number): Ipv6CheckFailure | undefined {
    if (bytes.length - start < IPV6_HEADER_LENGTH) return 'truncated';
    if (bytes[start]! >>> 4 !== 6) return 'bad_version';
    if (Ipv6Packet.endAt(bytes, start) > bytes.length) return 'bad_payload_length';
    return undefined;
  }

  /** Where the packet at `bytes[start]` ends by its payload length field (40 + payload length on). */
  static endAt(bytes: Uint8Array, start: number): number {
    return start + IPV6_HEADER_LENGTH + ((bytes[start + Ipv6Field.PAYLOAD_LENGTH]! << 8) | bytes[start + Ipv6Field.PAYLOAD_LENGTH + 1]!);
  }

  /**
   * A view of a packet quoted in an ICMPv6 error (cut short by design, RFC 4443 2.4 c): the fixed
   * header must be whole and say version 6; the payload length is not checked, and the view ends
   * where the bytes end.
   */
  static checkHeader(bytes: Uint8Array): ParseResult<Ipv6Packet, 'truncated' | 'bad_version'> {
    if (bytes.length < IPV6_HEADER_LENGTH) return fail('truncated');
    if (bytes[0]! >>> 4 !== 6) return fail('bad_version');
    return ok(new Ipv6Packet(bytes));
  }

  // repoint, bytes, buffer, start and end: PacketView's

  get version(): number {
    return this.buf[this.from]! >>> 4;
  }
  /** DSCP (6 bits) and ECN (2 bits), as in IPv4's second byte. */
  get trafficClass(): number {
    return ((this.buf[this.from]! & 0x0f) << 4) | (this.buf[this.from + 1]! >>> 4);
  }
  get flowLabel(): number {
    return ((this.buf[this.from + 1]! & 0x0f) << 16) | (this.buf[this.from + 2]! << 8) | this.buf[this.from + 3]!;
  }
  get payloadLength(): number {
    return (this.buf[this.from + Ipv6Field.PAYLOAD_LENGTH]! << 8) | this.buf[this.from + Ipv6Field.PAYLOAD_LENGTH + 1]!;
  }
  /** The type of what follows the fixed header: an extension header or the upper layer. */
  get nextHeader(): number {
    return this.buf[this.from + Ipv6Field.NEXT_HEADER]!;
  }
  get hopLimit(): number {
    return this.buf[this.from + Ipv6Field.HOP_LIMIT]!;
  }
  /** The source address (one of the recent ones when its bytes match: see `recentAddressAt`). */
  get source(): Ipv6Address {
    return recentAddressAt(this.buf, this.from + Ipv6Field.SOURCE);
  }
  get destination(): Ipv6Address {
    return recentAddressAt(this.buf, this.from + Ipv6Field.DESTINATION);
  }
  /** Where the source address starts in `buffer`. */
  get sourceOffset(): number {
    return this.from + Ipv6Field.SOURCE;
  }
  /** Where the destination address starts in `buffer`. */
  get destinationOffset(): number {
    return this.from + Ipv6Field.DESTINATION;
  }
  /** True when the destination is multicast (ff00::/8), read without making an address. */
  get destinationIsMulticast(): boolean {
    return this.buf[this.from + Ipv6Field.DESTINATION] === 0xff;
  }
  /** The 40 header bytes (a view). */
  get header(): Uint8Array {
    return this.buf.subarray(this.from, this.from + IPV6_HEADER_LENGTH);
  }
  /** Everything after the fixed header up to the payload length: extension headers and upper layer (a view). */
  get payload(): Uint8Array {
    return this.buf.subarray(this.from + IPV6_HEADER_LENGTH, this.to);
  }

  set hopLimit(value: number) {
    this.buf[this.from + Ipv6Field.HOP_LIMIT] = value;
  }
  set nextHeader(value: number) {
    this.buf[this.from + Ipv6Field.NEXT_HEADER] = value;
  }
  set payloadLength(value: number) {
    this.buf[this.from + Ipv6Field.PAYLOAD_LENGTH] = value >>> 8;
    this.buf[this.from + Ipv6Field.PAYLOAD_LENGTH + 1] = value & 0xff;
  }
  set source(address: Ipv6Address) {
    address.writeTo(this.buf, this.from + Ipv6Field.SOURCE);
  }
  set destination(address: Ipv6Address) {
    address.writeTo(this.buf, this.from + Ipv6Field.DESTINATION);
  }
}

/** The parsed, owned form of an IPv6 fixed header (the version is always 6, so it is not a field). */
export interface Ipv6Repr {
  readonly source: Ipv6Address;
  readonly destination: Ipv6Address;
  /** What follows the fixed header (IpNextHeader). */
  readonly nextHeader: number;
  readonly hopLimit: number;
  /** 8 bits: DSCP << 2 | ECN. */
  readonly trafficClass: number;
  /** 20 bits; 0 when the source does not label flows (RFC 6437). */
  readonly flowLabel: number;
  /** Bytes after the fixed header, extension headers included. */
  readonly payloadLength: number;
}

export const Ipv6Repr = {
  /** Reads a checked packet (the addresses are copies, so the Repr outlives the buffer). */
  parse(packet: Ipv6Packet): Ipv6Repr {
    return {
      source: packet.source,
      destination: packet.destination,
      nextHeader: packet.nextHeader,
      hopLimit: packet.hopLimit,
      trafficClass: packet.trafficClass,
      flowLabel: packet.flowLabel,
      payloadLength: packet.payloadLength,
    };
  },

  headerLength(_repr?: Ipv6Repr): number {
    return IPV6_HEADER_LENGTH;
  },

  /** Header plus payload. */
  bufferLength(repr: Ipv6Repr): number {
    return IPV6_HEADER_LENGTH + repr.payloadLength;
  },

  /**
   * Writes the 40-byte header at `offset` in `buffer`; the payload goes after it. Throws on a
   * Repr no header can carry (a programming error, not network input).
   */
  emit(repr: Ipv6Repr, buffer: Uint8Array, offset = 0): void {
    if (repr.payloadLength < 0 || repr.payloadLength > IPV6_MAX_PAYLOAD_LENGTH) {
      throw new RangeError(`IPv6 payload of ${repr.payloadLength} bytes: 0..65535`);
    }
    emitIpv6Header(buffer, offset, repr.source, repr.destination, repr.nextHeader, repr.hopLimit, repr.trafficClass, repr.flowLabel, repr.payloadLength);
  },

  /** A new buffer with the header emitted and `payload` after it (payloadLength is taken from it). */
  build(repr: Omit<Ipv6Repr, 'payloadLength'>, payload: Uint8Array): Uint8Array {
    const out = new Uint8Array(IPV6_HEADER_LENGTH + payload.length);
    Ipv6Repr.emit({ ...repr, payloadLength: payload.length }, out);
    out.set(payload, IPV6_HEADER_LENGTH);
    return out;
  },
};

/**
 * Formats what follows the fixed header for a trace line, or returns undefined to let the IPv6
 * formatter print the next header's name and length. `payload` is everything after the fixed header.
 */
export type Ipv6PayloadFormatter = (packet: Ipv6Packet) => string | undefined;

/**
 * One line, like tcpdump: `IP6 fd00:10::1 > fd00:10::2: ICMP6, echo request, id 5, seq 1, length 64`
 * when `formatPayload` knows the payload (@tapstack/icmpv6's formatIpv6Datagram plugs ICMPv6 in),
 * else `IP6 fd00:10::1 > fd00:10::2: UDP, length 12` style with the next header's name.
 */
export function formatIpv6Packet(bytes: Uint8Array, formatPayload?: Ipv6PayloadFormatter): string {
  const r = Ipv6Packet.check(bytes);
  if (!r.ok) return `IP6 [${r.reason}, length ${bytes.length}]`;
  const p = r.value;
  const head = `IP6 ${p.source} > ${p.destination}: `;
  const body = formatPayload?.(p);
  if (body !== undefined) return head + body;
  return `${head}${ipNextHeaderName(p.nextHeader)}, length ${p.payloadLength}`;
}

/**
 * `Ipv6Repr.emit` from the fields themselves, for a send path that would otherwise make a Repr
 * object per packet only to emit it (the layer's `send` and `sendInPlace`). Unchecked.
 */
export function emitIpv6Header(
  b: Uint8Array,
  o: number,
  source: Ipv6Address,
  destination: Ipv6Address,
  nextHeader: number,
  hopLimit: number,
  trafficClass: number,
  flowLabel: number,
  payloadLength: number,
): void {
  const tc = trafficClass & 0xff;
  const flow = flowLabel & 0xfffff;
  b[o] = 0x60 | (tc >>> 4);
  b[o + 1] = ((tc & 0x0f) << 4) | (flow >>> 16);
  b[o + 2] = (flow >>> 8) & 0xff;
  b[o + 3] = flow & 0xff;
  b[o + 4] = payloadLength >>> 8;
  b[o + 5] = payloadLength & 0xff;
  b[o + 6] = nextHeader & 0xff;
  b[o + 7] = hopLimit & 0xff;
  source.writeTo(b, o + Ipv6Field.SOURCE);
  destination.writeTo(b, o + Ipv6Field.DESTINATION);
}

/**
 * The addresses `Ipv6Packet.source` and `destination` made last, handed out again while the same
 * bytes come (a peer that pings or talks to us sends the same two addresses packet after packet).
 * An address is a value whose bytes nobody modifies, so sharing one is safe, and a shared one
 * keeps its text key, which NDP's neighbour table looks it up by. Eight at most, replaced in
 * turn, so a flood of made-up sources costs what it did before and no memory.
 */
const RECENT_ADDRESSES = 8;
const recentAddresses: Ipv6Address[] = [];
let nextRecent = 0;

function recentAddressAt(buffer: Uint8Array, offset: number): Ipv6Address {
  for (let r = 0; r < recentAddresses.length; r++) {
    const a = recentAddresses[r]!;
    const b = a.bytes;
    let i = 15;
    while (i >= 0 && b[i] === buffer[offset + i]) i--;
    if (i < 0) return a;
  }
  const made = Ipv6Address.fromBytes(buffer, offset);
  recentAddresses[nextRecent] = made;
  nextRecent = (nextRecent + 1) % RECENT_ADDRESSES;
  return made;
}
