/**
 * The IPv4 header (RFC 791), in the smoltcp `wire` style: field offsets as constants, a
 * zero-copy view with typed accessors checked once by `Ipv4Packet.check`, a plain `Ipv4Repr`
 * with parse/emit/bufferLength, and a one-line formatter.
 *
 *  0               1               2               3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-------+-------+-----------+---+-------------------------------+
 * |Version|  IHL  |   DSCP    |ECN|         Total Length          |
 * +-------+-------+-----------+---+-----+-------------------------+
 * |        Identification         |Flags|     Fragment Offset     |
 * +---------------+---------------+-----+-------------------------+
 * |  Time to Live |   Protocol    |        Header Checksum        |
 * +---------------+---------------+-------------------------------+
 * |                        Source Address                         |
 * +---------------------------------------------------------------+
 * |                     Destination Address                       |
 * +---------------------------------------------------------------+
 * |                 Options (IHL > 5), kept as bytes              |
 * +---------------------------------------------------------------+
 */
import { ETHERNET_HEADER_LENGTH, EtherType, fail, formatIpv4, IPV4_SOURCE_FIELD, ok, PacketView, readIpv4, writeEtherType, writeIpv4, type Ipv4Address, type ParseResult } from '@tapstack/link';
import { checksumAdd, foldChecksum, internetChecksum } from './checksum.ts';

/** The header without options. */
export const IPV4_MIN_HEADER_LENGTH = 20;
/** IHL is 4 bits of 32-bit words: 15 * 4. */
export const IPV4_MAX_HEADER_LENGTH = 60;
/** The total length field is 16 bits. */
export const IPV4_MAX_DATAGRAM_LENGTH = 65535;
/** Fragment offsets count 8-byte units. */
export const IPV4_FRAGMENT_UNIT = 8;

/** Field offsets from the start of the header. */
export const Ipv4Field = {
  VERSION_IHL: 0,
  DSCP_ECN: 1,
  TOTAL_LENGTH: 2,
  IDENTIFICATION: 4,
  FLAGS_FRAGMENT_OFFSET: 6,
  TTL: 8,
  PROTOCOL: 9,
  CHECKSUM: 10,
  SOURCE: IPV4_SOURCE_FIELD,
  DESTINATION: 16,
  OPTIONS: 20,
} as const;

/** Bits of the 16-bit flags/fragment-offset field. */
export const Ipv4Flag = {
  RESERVED: 0x8000,
  DONT_FRAGMENT: 0x4000,
  MORE_FRAGMENTS: 0x2000,
  OFFSET_MASK: 0x1fff,
} as const;

/** IANA protocol numbers the stack knows by name. */
export const IpProtocol = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
} as const;

export function ipProtocolName(protocol: number): string {
  switch (protocol) {
    case IpProtocol.ICMP:
      return 'ICMP';
    case IpProtocol.TCP:
      return 'TCP';
    case IpProtocol.UDP:
      return 'UDP';
    default:
      return `proto-${protocol}`;
  }
}

/** Why `Ipv4Packet.check` refused bytes, in the order they are checked (integrity first). */
export type Ipv4CheckFailure =
  | 'truncated'
  | 'bad_version'
  | 'bad_ihl'
  | 'header_truncated'
  | 'bad_checksum'
  | 'bad_total_length';

/**
 * A zero-copy view of an IPv4 datagram (header and payload).
 *
 * The datagram may sit inside a larger buffer: received datagrams are read straight out of their
 * Ethernet frame (bytes 14 on), and `bytes`, a Uint8Array of the datagram alone, is made only when
 * somebody asks for it. Why: in V8 making a typed-array view (`subarray`) costs 50-80 ns, more
 * than all of IPv4's checks on a datagram together, and the echo path does not need one.
 */
export class Ipv4Packet extends PacketView {
  /**
   * Wraps the datagram at `buffer[start..end)` (by default all of `buffer`) without checking;
   * use `Ipv4Packet.check` for network input. The receive path's one view per layer is
   * re-pointed at each datagram instead (PacketView.repoint, see `Ipv4Handler`).
   */
  constructor(buffer: Uint8Array, start = 0, end = buffer.length) {
    super(buffer, start, end);
  }

  /**
   * Checks what RFC 1122 and Linux's ip_rcv check, in Linux's order: at least 20 bytes,
   * version 4, IHL >= 5, the whole header present, header checksum, then total length within
   * the bytes and at least the header. The view it returns ends at the total length, so
   * Ethernet padding after the datagram is left out. With `offset` the datagram starts that far
   * into `bytes` (a whole frame: offset 14) and is checked where it lies, without a view.
   */
  static check(
    bytes: Uint8Array,
    options: { verifyChecksum?: boolean; offset?: number } = {},
  ): ParseResult<Ipv4Packet, Ipv4CheckFailure> {
    const start = options.offset ?? 0;
    const failure = Ipv4Packet.checkAt(bytes, start, options.verifyChecksum ?? true);
    if (failure !== undefined) return fail(failure);
    return ok(new Ipv4Packet(bytes, start, start + ((bytes[start + 2]! << 8) | bytes[start + 3]!)));
  }

  /**
   * `check` without a result or a view: undefined when the datagram at `bytes[start..]` passes
   * (it then ends at `start` + its total length), else why not. The receive path uses this and
   * re-points its one view (`repoint`), so a good datagram costs no allocation.
   */
  static checkAt(bytes: Uint8Array, start: number, verifyChecksum = true): Ipv4CheckFailure | undefined {
    const length = bytes.length - start;
    if (length < IPV4_MIN_HEADER_LENGTH) return 'truncated';
    const b0 = bytes[start]!;
    if (b0 >>> 4 !== 4) return 'bad_version';
    const headerLength = (b0 & 0x0f) * 4;
    if (headerLength < IPV4_MIN_HEADER_LENGTH) return 'bad_ihl';
    if (headerLength > length) return 'header_truncated';
    if (verifyChecksum && internetChecksum(bytes, 0, start, start + headerLength) !== 0) return 'bad_checksum';
    const totalLength = (bytes[start + 2]! << 8) | bytes[start + 3]!;
    if (totalLength < headerLength || totalLength > length) return 'bad_total_length';
    return undefined;
  }

  /**
   * A view of a datagram quoted in an ICMP error, or about to be quoted: the header must be whole
   * (version 4, IHL >= 5, all of it present), but the checksum and the total length are not
   * checked, since a quote is cut short by design. The view ends where the bytes end; the bytes
   * after the header are `bytes.subarray(view.headerLength)`.
   */
  static checkHeader(bytes: Uint8Array): ParseResult<Ipv4Packet, 'truncated' | 'bad_version' | 'bad_ihl' | 'header_truncated'> {
    if (bytes.length < IPV4_MIN_HEADER_LENGTH) return fail('truncated');
    if (bytes[0]! >>> 4 !== 4) return fail('bad_version');
    const headerLength = (bytes[0]! & 0x0f) * 4;
    if (headerLength < IPV4_MIN_HEADER_LENGTH) return fail('bad_ihl');
    if (headerLength > bytes.length) return fail('header_truncated');
    return ok(new Ipv4Packet(bytes));
  }

  // repoint, bytes, buffer, start and end: PacketView's. A received datagram lies in its whole
  // Ethernet frame (`buffer`, from `start` 14): with `payloadOffset` and `payloadLength` a
  // handler reads its payload where it lies, without the view `payload` makes.

  /** Where the payload starts in `buffer` (`start` + the header length). */
  get payloadOffset(): number {
    return this.from + (this.buf[this.from]! & 0x0f) * 4;
  }
  /** Bytes after the header, up to the total length. */
  get payloadLength(): number {
    return this.totalLength - (this.buf[this.from]! & 0x0f) * 4;
  }

  get version(): number {
    return this.buf[this.from]! >>> 4;
  }
  /** Header length in bytes (IHL * 4). */
  get headerLength(): number {
    return (this.buf[this.from]! & 0x0f) * 4;
  }
  get dscp(): number {
    return this.buf[this.from + Ipv4Field.DSCP_ECN]! >>> 2;
  }
  get ecn(): number {
    return this.buf[this.from + Ipv4Field.DSCP_ECN]! & 3;
  }
  get totalLength(): number {
    return (this.buf[this.from + Ipv4Field.TOTAL_LENGTH]! << 8) | this.buf[this.from + Ipv4Field.TOTAL_LENGTH + 1]!;
  }
  get identification(): number {
    return (this.buf[this.from + Ipv4Field.IDENTIFICATION]! << 8) | this.buf[this.from + Ipv4Field.IDENTIFICATION + 1]!;
  }
  private get flagsAndOffset(): number {
    return (this.buf[this.from + Ipv4Field.FLAGS_FRAGMENT_OFFSET]! << 8) | this.buf[this.from + Ipv4Field.FLAGS_FRAGMENT_OFFSET + 1]!;
  }
  get dontFragment(): boolean {
    return (this.flagsAndOffset & Ipv4Flag.DONT_FRAGMENT) !== 0;
  }
  get moreFragments(): boolean {
    return (this.flagsAndOffset & Ipv4Flag.MORE_FRAGMENTS) !== 0;
  }
  /** Offset of this fragment's data in the original datagram, in bytes. */
  get fragmentOffset(): number {
    return (this.flagsAndOffset & Ipv4Flag.OFFSET_MASK) * IPV4_FRAGMENT_UNIT;
  }
  /** True for any fragment: more-fragments set or a non-zero offset. */
  get isFragment(): boolean {
    return (this.flagsAndOffset & (Ipv4Flag.MORE_FRAGMENTS | Ipv4Flag.OFFSET_MASK)) !== 0;
  }
  get ttl(): number {
    return this.buf[this.from + Ipv4Field.TTL]!;
  }
  get protocol(): number {
    return this.buf[this.from + Ipv4Field.PROTOCOL]!;
  }
  get checksum(): number {
    return (this.buf[this.from + Ipv4Field.CHECKSUM]! << 8) | this.buf[this.from + Ipv4Field.CHECKSUM + 1]!;
  }
  get source(): Ipv4Address {
    return readIpv4(this.buf, this.from + Ipv4Field.SOURCE);
  }
  get destination(): Ipv4Address {
    return readIpv4(this.buf, this.from + Ipv4Field.DESTINATION);
  }
  /** The option bytes (a view; empty when IHL is 5). */
  get options(): Uint8Array {
    return this.buf.subarray(this.from + Ipv4Field.OPTIONS, this.from + this.headerLength);
  }
  /** The header bytes (a view). */
  get header(): Uint8Array {
    return this.buf.subarray(this.from, this.from + this.headerLength);
  }
  /** The bytes after the header, up to the total length (a view). */
  get payload(): Uint8Array {
    return this.buf.subarray(this.from + this.headerLength, this.from + this.totalLength);
  }

  set ttl(value: number) {
    this.buf[this.from + Ipv4Field.TTL] = value;
  }
  set identification(value: number) {
    this.buf[this.from + Ipv4Field.IDENTIFICATION] = value >>> 8;
    this.buf[this.from + Ipv4Field.IDENTIFICATION + 1] = value & 0xff;
  }
  set totalLength(value: number) {
    this.buf[this.from + Ipv4Field.TOTAL_LENGTH] = value >>> 8;
    this.buf[this.from + Ipv4Field.TOTAL_LENGTH + 1] = value & 0xff;
  }
  /** Sets flags and offset together (offset in bytes, a multiple of 8). */
  setFragment(dontFragment: boolean, moreFragments: boolean, offsetBytes: number): void {
    const v = (dontFragment ? Ipv4Flag.DONT_FRAGMENT : 0) | (moreFragments ? Ipv4Flag.MORE_FRAGMENTS : 0) | (offsetBytes >>> 3);
    this.buf[this.from + Ipv4Field.FLAGS_FRAGMENT_OFFSET] = v >>> 8;
    this.buf[this.from + Ipv4Field.FLAGS_FRAGMENT_OFFSET + 1] = v & 0xff;
  }
  set source(address: Ipv4Address) {
    writeIpv4(this.buf, this.from + Ipv4Field.SOURCE, address);
  }
  set destination(address: Ipv4Address) {
    writeIpv4(this.buf, this.from + Ipv4Field.DESTINATION, address);
  }

  /** True when the header checksum is correct. */
  verifyChecksum(): boolean {
    return internetChecksum(this.buf, 0, this.from, this.from + this.headerLength) === 0;
  }

  /** Computes and writes the header checksum. */
  fillChecksum(): void {
    this.buf[this.from + Ipv4Field.CHECKSUM] = 0;
    this.buf[this.from + Ipv4Field.CHECKSUM + 1] = 0;
    const c = internetChecksum(this.buf, 0, this.from, this.from + this.headerLength);
    this.buf[this.from + Ipv4Field.CHECKSUM] = c >>> 8;
    this.buf[this.from + Ipv4Field.CHECKSUM + 1] = c & 0xff;
  }
}

/** The parsed, owned form of an IPv4 header. */
export interface Ipv4Repr {
  readonly source: Ipv4Address;
  readonly destination: Ipv4Address;
  readonly protocol: number;
  readonly ttl: number;
  readonly identification: number;
  readonly dscp: number;
  readonly ecn: number;
  readonly dontFragment: boolean;
  readonly moreFragments: boolean;
  /** In bytes, a multiple of 8. */
  readonly fragmentOffset: number;
  /** Option bytes as received (length a multiple of 4, at most 40); empty for none. */
  readonly options: Uint8Array;
  /** Bytes after the header. */
  readonly payloadLength: number;
}

export const Ipv4Repr = {
  /** Reads a checked packet. The options are copied, so the Repr outlives the buffer. */
  parse(packet: Ipv4Packet): Ipv4Repr {
    return {
      source: packet.source,
      destination: packet.destination,
      protocol: packet.protocol,
      ttl: packet.ttl,
      identification: packet.identification,
      dscp: packet.dscp,
      ecn: packet.ecn,
      dontFragment: packet.dontFragment,
      moreFragments: packet.moreFragments,
      fragmentOffset: packet.fragmentOffset,
      options: packet.options.slice(),
      payloadLength: packet.totalLength - packet.headerLength,
    };
  },

  headerLength(repr: Ipv4Repr): number {
    return IPV4_MIN_HEADER_LENGTH + repr.options.length;
  },

  /** Header plus payload. */
  bufferLength(repr: Ipv4Repr): number {
    return IPV4_MIN_HEADER_LENGTH + repr.options.length + repr.payloadLength;
  },

  /**
   * Writes the header (checksum included) at `offset` in `buffer`; the payload goes after it.
   * Throws on a Repr no valid header can carry (a programming error, not network input).
   */
  emit(repr: Ipv4Repr, buffer: Uint8Array, offset = 0): void {
    const optionsLength = repr.options.length;
    if (optionsLength % 4 !== 0 || optionsLength > IPV4_MAX_HEADER_LENGTH - IPV4_MIN_HEADER_LENGTH) {
      throw new RangeError(`IPv4 options must be a multiple of 4 bytes and at most 40, got ${optionsLength}`);
    }
    const headerLength = IPV4_MIN_HEADER_LENGTH + optionsLength;
    const total = headerLength + repr.payloadLength;
    if (total > IPV4_MAX_DATAGRAM_LENGTH) throw new RangeError(`IPv4 datagram of ${total} bytes exceeds 65535`);
    if (repr.fragmentOffset % IPV4_FRAGMENT_UNIT !== 0) throw new RangeError('fragment offset must be a multiple of 8');
    const flags =
      (repr.dontFragment ? Ipv4Flag.DONT_FRAGMENT : 0) | (repr.moreFragments ? Ipv4Flag.MORE_FRAGMENTS : 0) | (repr.fragmentOffset >>> 3);
    writeHeaderFields(buffer, offset, repr.dscp, repr.ecn, total, repr.identification, flags, repr.ttl, repr.protocol, repr.source, repr.destination, repr.options);
  },
};

/**
 * One line, like `tcpdump -v`:
 * `IP (ttl 64, id 38956, offset 0, flags [+], proto ICMP (1), length 1500) 10.0.0.1 > 10.0.0.2`.
 */
export function formatIpv4Packet(bytes: Uint8Array): string {
  const r = Ipv4Packet.check(bytes, { verifyChecksum: false });
  if (!r.ok) return `IP [${r.reason}, length ${bytes.length}]`;
  const p = r.value;
  const flags = p.dontFragment ? '[DF]' : p.moreFragments ? '[+]' : '[none]';
  const bad = p.verifyChecksum() ? '' : ', bad cksum';
  const opts = p.headerLength > IPV4_MIN_HEADER_LENGTH ? `, options ${p.headerLength - IPV4_MIN_HEADER_LENGTH} bytes` : '';
  return (
    `IP (ttl ${p.ttl}, id ${p.identification}, offset ${p.fragmentOffset}, flags ${flags}, ` +
    `proto ${ipProtocolName(p.protocol)} (${p.protocol}), length ${p.totalLength}${opts}${bad}) ` +
    `${formatIpv4(p.source)} > ${formatIpv4(p.destination)}`
  );
}

/**
 * Writes the EtherType (IPv4) and a 20-byte IPv4 header (no options, ECN 0) at byte 14 of an
 * Ethernet frame, checksum included: the send path's writer for the common datagram, through the
 * same writeHeaderFields as Ipv4Repr.emit (a property test checks the bytes agree). The MACs are
 * the resolver's job. `flagsAndOffset` is the header's bytes 6-7: the DF and MF bits and the
 * fragment offset in 8-byte units.
 */
export function writePlainHeader(
  b: Uint8Array,
  source: Ipv4Address,
  destination: Ipv4Address,
  protocol: number,
  ttl: number,
  dscp: number,
  identification: number,
  flagsAndOffset: number,
  totalLength: number,
): void {
  writeEtherType(b, EtherType.IPV4);
  writeHeaderFields(b, ETHERNET_HEADER_LENGTH, dscp, 0, totalLength, identification, flagsAndOffset, ttl, protocol, source, destination, NO_OPTIONS);
}

const NO_OPTIONS = new Uint8Array(0);

/**
 * The one writer of an IPv4 header (Ipv4Repr.emit and the send path's writePlainHeader both
 * write through it): every field at `o`, the options after them, and the checksum summed from
 * the field values (RFC 1071) plus the options' words, instead of read back from the buffer.
 */
function writeHeaderFields(
  b: Uint8Array,
  o: number,
  dscp: number,
  ecn: number,
  totalLength: number,
  identification: number,
  flagsAndOffset: number,
  ttl: number,
  protocol: number,
  source: Ipv4Address,
  destination: Ipv4Address,
  options: Uint8Array,
): void {
  const versionIhlTos = ((0x40 | ((IPV4_MIN_HEADER_LENGTH + options.length) >>> 2)) << 8) | ((dscp & 0x3f) << 2) | (ecn & 3);
  const id = identification & 0xffff;
  const ttlProtocol = ((ttl & 0xff) << 8) | (protocol & 0xff);
  b[o] = versionIhlTos >>> 8;
  b[o + 1] = versionIhlTos & 0xff;
  b[o + 2] = totalLength >>> 8;
  b[o + 3] = totalLength & 0xff;
  b[o + 4] = id >>> 8;
  b[o + 5] = id & 0xff;
  b[o + 6] = flagsAndOffset >>> 8;
  b[o + 7] = flagsAndOffset & 0xff;
  b[o + 8] = ttlProtocol >>> 8;
  b[o + 9] = ttlProtocol & 0xff;
  writeIpv4(b, o + Ipv4Field.SOURCE, source);
  writeIpv4(b, o + Ipv4Field.DESTINATION, destination);
  let sum =
    versionIhlTos + totalLength + id + flagsAndOffset + ttlProtocol + (source >>> 16) + (source & 0xffff) + (destination >>> 16) + (destination & 0xffff);
  if (options.length > 0) {
    b.set(options, o + Ipv4Field.OPTIONS);
    sum = checksumAdd(options, sum);
  }
  const checksum = ~foldChecksum(sum) & 0xffff;
  b[o + Ipv4Field.CHECKSUM] = checksum >>> 8;
  b[o + Ipv4Field.CHECKSUM + 1] = checksum & 0xff;
}
