/**
 * UDP datagrams (RFC 768), in the smoltcp `wire` style: field offsets as constants, a zero-copy
 * view with typed accessors, a plain Repr with parse/emit/bufferLength, and a one-line formatter.
 *
 *  0               2               4               6               8
 * +---------------+---------------+---------------+---------------+------------------+
 * | source port   | dest. port    | length        | checksum      | data ...         |
 * +---------------+---------------+---------------+---------------+------------------+
 *
 * `length` counts the header and the data (8 at least). The checksum is the Internet checksum
 * (RFC 1071) over a pseudo-header taken from the IPv4 header (source, destination, zero,
 * protocol 17, UDP length) followed by the whole datagram, padded with a zero byte to an even
 * length. A checksum field of 0 means the sender computed none; a sender whose computed
 * checksum is 0 transmits 0xFFFF instead (the other one's complement zero), so 0 stays free to
 * mean "none".
 *
 * Over IPv6 (RFC 8200 8.1) the pseudo-header is IPv6's (both 16-byte addresses, the UDP length
 * as 32 bits, next header 17) and the checksum is mandatory: IPv6 has no header checksum of its
 * own, so without UDP's nothing would catch a corrupted address. A receiver drops a datagram
 * whose checksum field is 0; the sender still writes a computed 0 as 0xFFFF.
 */
import { internetChecksum, IpProtocol, pseudoHeaderSum } from '@tapstack/ipv4';
import { ipv6PseudoHeaderSum, ipv6PseudoHeaderSumAt } from '@tapstack/ipv6';
import { fail, formatIpv4, ok, type Ipv4Address, type Ipv6Address, type ParseResult } from '@tapstack/link';

export const UDP_HEADER_LENGTH = 8;
/** The most data one datagram carries over IPv4: 65535 - 20 (IPv4 header) - 8 (UDP header). */
export const UDP_MAX_PAYLOAD = 65507;
/**
 * The most data one datagram carries over IPv6: 65535 (the payload length field; IPv6's own
 * 40-byte header is outside it) - 8 (UDP header) - 8 (the fragment header a datagram this big
 * needs on any link with a usual MTU). The same 65519 as the largest `ping -6 -s`.
 */
export const UDP_MAX_PAYLOAD_IPV6 = 65519;

/** Field offsets. */
export const UdpField = {
  SOURCE_PORT: 0,
  DESTINATION_PORT: 2,
  LENGTH: 4,
  CHECKSUM: 6,
  PAYLOAD: 8,
} as const;

/** Why bytes are not a UDP datagram. */
export type UdpCheckError =
  /** Fewer than 8 bytes: not even a header. */
  | 'truncated'
  /** The length field says less than the 8-byte header. */
  | 'bad_length'
  /** The length field says more than the IP payload holds (Linux drops these as "short packet"). */
  | 'length_exceeds_payload';

/**
 * A zero-copy view of a UDP datagram. On network input construct it with `UdpPacket.check`,
 * which also trims trailing bytes beyond the length field (as Linux does), so `bytes` is exactly
 * the datagram the length field describes.
 */
export class UdpPacket {
  private readonly view: DataView;

  /** Wraps `bytes` without checking; use `check` for network input. */
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Checks the header and the length field against the bytes there are; never throws. */
  static check(bytes: Uint8Array): ParseResult<UdpPacket, UdpCheckError> {
    if (bytes.length < UDP_HEADER_LENGTH) return fail('truncated');
    const length = (bytes[UdpField.LENGTH]! << 8) | bytes[UdpField.LENGTH + 1]!;
    if (length < UDP_HEADER_LENGTH) return fail('bad_length');
    if (length > bytes.length) return fail('length_exceeds_payload');
    return ok(new UdpPacket(length === bytes.length ? bytes : bytes.subarray(0, length)));
  }

  get sourcePort(): number {
    return this.view.getUint16(UdpField.SOURCE_PORT);
  }
  set sourcePort(port: number) {
    this.view.setUint16(UdpField.SOURCE_PORT, port);
  }

  get destinationPort(): number {
    return this.view.getUint16(UdpField.DESTINATION_PORT);
  }
  set destinationPort(port: number) {
    this.view.setUint16(UdpField.DESTINATION_PORT, port);
  }

  /** The length field: header plus data, in bytes. */
  get length(): number {
    return this.view.getUint16(UdpField.LENGTH);
  }
  set length(value: number) {
    this.view.setUint16(UdpField.LENGTH, value);
  }

  get checksum(): number {
    return this.view.getUint16(UdpField.CHECKSUM);
  }
  set checksum(value: number) {
    this.view.setUint16(UdpField.CHECKSUM, value);
  }

  /** The data after the header (a view, not a copy). */
  get payload(): Uint8Array {
    return this.bytes.subarray(UdpField.PAYLOAD);
  }

  /**
   * True when the checksum is right for these IPv4 addresses, or when the sender sent none
   * (checksum field 0, allowed over IPv4 by RFC 768).
   */
  verifyChecksum(source: Ipv4Address, destination: Ipv4Address): boolean {
    if (this.checksum === 0) return true;
    return udpChecksum(this.bytes, source, destination) === 0;
  }

  /**
   * True when the checksum is right for these IPv6 addresses. A field of 0 is never right over
   * IPv6 (RFC 8200 8.1: the checksum is mandatory there).
   */
  verifyChecksumIpv6(source: Ipv6Address, destination: Ipv6Address): boolean {
    if (this.checksum === 0) return false;
    return udp6Checksum(this.bytes, source, destination) === 0;
  }

  /** Computes the checksum for these addresses and writes it (a computed 0 is written as 0xFFFF). */
  fillChecksum(source: Ipv4Address, destination: Ipv4Address): void {
    this.checksum = 0;
    const sum = udpChecksum(this.bytes, source, destination);
    this.checksum = sum === 0 ? 0xffff : sum;
  }
}

/**
 * The Internet checksum of a whole datagram (`bytes`, length field included) under the IPv4
 * pseudo-header. Over a datagram with a correct checksum in place it is 0.
 */
export function udpChecksum(bytes: Uint8Array, source: Ipv4Address, destination: Ipv4Address): number {
  return internetChecksum(bytes, pseudoHeaderSum(source, destination, IpProtocol.UDP, bytes.length));
}

/** `udpChecksum` under the IPv6 pseudo-header (RFC 8200 8.1). */
export function udp6Checksum(bytes: Uint8Array, source: Ipv6Address, destination: Ipv6Address): number {
  return internetChecksum(bytes, ipv6PseudoHeaderSum(source, destination, IpProtocol.UDP, bytes.length));
}

/**
 * `udp6Checksum` with the addresses read where they lie in a received packet (the fixed header's
 * bytes 8..40 of `ipv6Packet`, or 32 bytes from `addressesOffset` of a frame): no address
 * objects on the receive path.
 */
export function udp6ChecksumAt(bytes: Uint8Array, ipv6Packet: Uint8Array, addressesOffset = 8): number {
  return internetChecksum(bytes, ipv6PseudoHeaderSumAt(ipv6Packet, addressesOffset, IpProtocol.UDP, bytes.length));
}

/** The parsed form of a UDP header: what a socket layer needs, addresses live in the IP header. */
export interface UdpRepr {
  readonly sourcePort: number;
  readonly destinationPort: number;
  /** Bytes of data after the header. */
  readonly payloadLength: number;
}

export interface UdpParseOptions {
  /**
   * Verify the checksum (default true). Over IPv4 a field of 0 passes (the sender computed none,
   * RFC 768); over IPv6 it fails (the checksum is mandatory there, RFC 8200 8.1).
   */
  verifyChecksum?: boolean;
}

export const UdpRepr = {
  /**
   * Parses a checked view; fails with 'bad_checksum' when the checksum is wrong for these
   * addresses (IPv4's pseudo-header for numbers, IPv6's for Ipv6Address).
   */
  parse(
    packet: UdpPacket,
    source: Ipv4Address | Ipv6Address,
    destination: Ipv4Address | Ipv6Address,
    options: UdpParseOptions = {},
  ): ParseResult<UdpRepr, 'bad_checksum'> {
    if (options.verifyChecksum ?? true) {
      const pair = addressPair(source, destination);
      const good = pair[0] === 'v4' ? packet.verifyChecksum(pair[1], pair[2]) : packet.verifyChecksumIpv6(pair[1], pair[2]);
      if (!good) return fail('bad_checksum');
    }
    return ok({
      sourcePort: packet.sourcePort,
      destinationPort: packet.destinationPort,
      payloadLength: packet.length - UDP_HEADER_LENGTH,
    });
  },

  /** Header plus data. */
  bufferLength(repr: UdpRepr): number {
    return UDP_HEADER_LENGTH + repr.payloadLength;
  },

  /**
   * Writes the datagram at the start of `buffer` (which must hold `bufferLength(repr)` bytes):
   * the header, a copy of `payload` when given (otherwise the data is expected in place at byte
   * 8 already), and the checksum for these addresses, always computed (over IPv4's or IPv6's
   * pseudo-header, by the addresses' family).
   */
  emit(repr: UdpRepr, buffer: Uint8Array, source: Ipv4Address | Ipv6Address, destination: Ipv4Address | Ipv6Address, payload?: Uint8Array): void {
    const length = UDP_HEADER_LENGTH + repr.payloadLength;
    if (length > 0xffff) throw new RangeError(`UDP datagram of ${length} bytes does not fit the 16-bit length field`);
    if (payload && payload.length !== repr.payloadLength) {
      throw new RangeError(`payload is ${payload.length} bytes but the repr says ${repr.payloadLength}`);
    }
    const pair = addressPair(source, destination);
    if (payload) buffer.set(payload, UdpField.PAYLOAD);
    if (pair[0] === 'v4') writeUdpHeader(buffer, repr.sourcePort, repr.destinationPort, length, pair[1], pair[2]);
    else writeUdp6Header(buffer, repr.sourcePort, repr.destinationPort, length, pair[1], pair[2]);
  },
};

/** Both addresses of one family, tagged; a mixed pair is a caller's bug. */
function addressPair(
  source: Ipv4Address | Ipv6Address,
  destination: Ipv4Address | Ipv6Address,
): readonly ['v4', Ipv4Address, Ipv4Address] | readonly ['v6', Ipv6Address, Ipv6Address] {
  if (typeof source === 'number' && typeof destination === 'number') return ['v4', source, destination];
  if (typeof source !== 'number' && typeof destination !== 'number') return ['v6', source, destination];
  throw new TypeError('UDP pseudo-header: the source and destination must be of one family (both IPv4 or both IPv6)');
}

/**
 * The one writer of a UDP header (UdpRepr.emit and the layer's send path both use it): ports and
 * length at the start of `target`, then the checksum over the pseudo-header, the header and the
 * `length - 8` bytes of data already in place behind it (a computed 0 is sent as 0xFFFF).
 * No view, no allocation.
 */
export function writeUdpHeader(target: Uint8Array, sourcePort: number, destinationPort: number, length: number, source: Ipv4Address, destination: Ipv4Address): void {
  writePortsAndLength(target, sourcePort, destinationPort, length);
  writeChecksum(target, udpChecksum(target.subarray(0, length), source, destination));
}

/** `writeUdpHeader` for IPv6: the same header, the checksum over IPv6's pseudo-header. */
export function writeUdp6Header(target: Uint8Array, sourcePort: number, destinationPort: number, length: number, source: Ipv6Address, destination: Ipv6Address): void {
  writePortsAndLength(target, sourcePort, destinationPort, length);
  writeChecksum(target, udp6Checksum(target.subarray(0, length), source, destination));
}

/** Ports and length, and a zero checksum field for the sum that follows to run over. */
function writePortsAndLength(target: Uint8Array, sourcePort: number, destinationPort: number, length: number): void {
  target[UdpField.SOURCE_PORT] = sourcePort >>> 8;
  target[UdpField.SOURCE_PORT + 1] = sourcePort & 0xff;
  target[UdpField.DESTINATION_PORT] = destinationPort >>> 8;
  target[UdpField.DESTINATION_PORT + 1] = destinationPort & 0xff;
  target[UdpField.LENGTH] = length >>> 8;
  target[UdpField.LENGTH + 1] = length & 0xff;
  target[UdpField.CHECKSUM] = 0;
  target[UdpField.CHECKSUM + 1] = 0;
}

/**
 * A computed 0 goes out as 0xFFFF, the other zero of one's complement: 0 on the wire means "no
 * checksum" (RFC 768), which IPv6 forbids (RFC 8200 8.1) and IPv4 would read as "not checked".
 */
function writeChecksum(target: Uint8Array, sum: number): void {
  const wire = sum === 0 ? 0xffff : sum;
  target[UdpField.CHECKSUM] = wire >>> 8;
  target[UdpField.CHECKSUM + 1] = wire & 0xff;
}

/** Builds a whole IPv6 datagram (header, a copy of `payload`, checksum) in a new buffer. */
export function buildUdp6Datagram(sourcePort: number, destinationPort: number, payload: Uint8Array, source: Ipv6Address, destination: Ipv6Address): Uint8Array {
  const length = UDP_HEADER_LENGTH + payload.length;
  if (length > 0xffff) throw new RangeError(`UDP datagram of ${length} bytes does not fit the 16-bit length field`);
  const buffer = new Uint8Array(length);
  buffer.set(payload, UdpField.PAYLOAD);
  writeUdp6Header(buffer, sourcePort, destinationPort, length, source, destination);
  return buffer;
}

/** Builds a whole datagram (header, a copy of `payload`, checksum) in a new buffer. */
export function buildUdpDatagram(
  sourcePort: number,
  destinationPort: number,
  payload: Uint8Array,
  source: Ipv4Address,
  destination: Ipv4Address,
): Uint8Array {
  const repr: UdpRepr = { sourcePort, destinationPort, payloadLength: payload.length };
  const buffer = new Uint8Array(UdpRepr.bufferLength(repr));
  UdpRepr.emit(repr, buffer, source, destination, payload);
  return buffer;
}

/**
 * One line like tcpdump's: `10.0.0.1.45645 > 10.0.0.2.9: UDP, length 3`, or
 * `fd00:10::1.45645 > fd00:10::2.7: UDP, length 3` (with the addresses when given, ports only
 * otherwise). Never throws, whatever the bytes.
 */
export function formatUdp(bytes: Uint8Array, source?: Ipv4Address | Ipv6Address, destination?: Ipv4Address | Ipv6Address): string {
  if (bytes.length < UDP_HEADER_LENGTH) return `[|udp] truncated, ${bytes.length} bytes`;
  const p = new UdpPacket(bytes);
  const text = (a: Ipv4Address | Ipv6Address): string => (typeof a === 'number' ? formatIpv4(a) : a.toString());
  const from = source === undefined ? `${p.sourcePort}` : `${text(source)}.${p.sourcePort}`;
  const to = destination === undefined ? `${p.destinationPort}` : `${text(destination)}.${p.destinationPort}`;
  if (p.length < UDP_HEADER_LENGTH) return `${from} > ${to}: [bad udp length ${p.length}]`;
  if (p.length > bytes.length) return `${from} > ${to}: UDP, bad length ${p.length} > ${bytes.length}`;
  return `${from} > ${to}: UDP, length ${p.length - UDP_HEADER_LENGTH}`;
}
