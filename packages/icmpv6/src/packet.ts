/**
 * ICMPv6 messages (RFC 4443), in the smoltcp `wire` style: offsets as constants, a zero-copy view
 * checked once by `Icmpv6Packet.check`, a plain `Icmpv6Repr` (a union over the RFC 4443 messages:
 * echo request and reply, destination unreachable, packet too big, time exceeded, parameter
 * problem) with parse/emit/bufferLength, and a one-line formatter.
 *
 *  0               1               2               3
 * +---------------+---------------+-------------------------------+
 * |     Type      |     Code      |           Checksum            |
 * +---------------+---------------+-------------------------------+
 * |  echo: Identifier             |  echo: Sequence Number        |
 * |  packet too big: MTU (32 bits)                                |
 * |  parameter problem: Pointer (32 bits)                         |
 * |  unreachable, time exceeded: unused                           |
 * +---------------------------------------------------------------+
 * |  echo: data;  errors: as much of the invoking packet as fits  |
 * +---------------------------------------------------------------+
 *
 * Two differences from ICMPv4 a reader meets at once: the checksum covers the IPv6 pseudo-header
 * too (RFC 4443 2.3, so a message cannot be checked without its addresses), and an error quotes as
 * much of the invoking packet as fits in the minimum MTU (RFC 4443 2.4 c), not the header plus 8
 * bytes. Types below 128 are errors, 128 and up informational (RFC 4443 2.1).
 *
 * Neighbour Discovery (types 133-137) and MLD (130, 143) are ICMPv6 messages too, with their own
 * Reprs (ndisc.ts, mld.ts): the layer dispatches on the type, and this union stays what RFC 4443 has.
 */
import { echoRest, IcmpHeaderView, writeIcmpHeader } from '@tapstack/icmp';
import { internetChecksum } from '@tapstack/ipv4';
import { IPV6_HEADER_LENGTH, IPV6_MIN_MTU, IpNextHeader, ipv6PseudoHeaderSum } from '@tapstack/ipv6';
import { fail, Ipv6Address, ok, type ParseResult } from '@tapstack/link';

/** Type, code, checksum and the 32-bit word every message has. */
export const ICMPV6_HEADER_LENGTH = 8;

/** ICMPv6 types (IANA "ICMPv6 Parameters"); the ones the stack speaks or names. */
export const Icmpv6Type = {
  DESTINATION_UNREACHABLE: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  PARAMETER_PROBLEM: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
  /** MLD query, both versions (RFC 2710, RFC 3810 5.1). */
  MULTICAST_LISTENER_QUERY: 130,
  MULTICAST_LISTENER_REPORT_V1: 131,
  MULTICAST_LISTENER_DONE: 132,
  ROUTER_SOLICITATION: 133,
  ROUTER_ADVERTISEMENT: 134,
  NEIGHBOR_SOLICITATION: 135,
  NEIGHBOR_ADVERTISEMENT: 136,
  REDIRECT: 137,
  MULTICAST_LISTENER_REPORT_V2: 143,
} as const;

/** Destination unreachable codes (RFC 4443 3.1). */
export const Icmpv6UnreachableCode = {
  NO_ROUTE: 0,
  ADMIN_PROHIBITED: 1,
  BEYOND_SCOPE: 2,
  ADDRESS: 3,
  PORT: 4,
  SOURCE_POLICY: 5,
  REJECT_ROUTE: 6,
} as const;

/** Time exceeded codes (RFC 4443 3.3). */
export const Icmpv6TimeExceededCode = {
  HOP_LIMIT: 0,
  REASSEMBLY: 1,
} as const;

/** Parameter problem codes (RFC 4443 3.4, RFC 7112 for 3). */
export const Icmpv6ParameterProblemCode = {
  ERRONEOUS_HEADER_FIELD: 0,
  UNRECOGNIZED_NEXT_HEADER: 1,
  UNRECOGNIZED_OPTION: 2,
  /** The first fragment does not hold the whole header chain (RFC 7112 5). */
  INCOMPLETE_HEADER_CHAIN: 3,
} as const;

/** RFC 4443 2.1: the high bit of the type tells errors (0-127) from informational messages. */
export function isIcmpv6ErrorType(type: number): boolean {
  return type < 128;
}

/**
 * The most of the invoking packet an error may quote so that the error packet (IPv6 header 40,
 * ICMPv6 header 8, quote) does not exceed the minimum MTU of 1280 (RFC 4443 2.4 c): 1232 bytes.
 */
export const ICMPV6_ERROR_QUOTE_MAX = IPV6_MIN_MTU - IPV6_HEADER_LENGTH - ICMPV6_HEADER_LENGTH;

/**
 * The part of an invoking packet (from its IPv6 header on) that an error quotes: all of it, or
 * its first 1232 bytes. `extra` is room taken by extension headers of the error packet itself.
 */
export function quoteInvokingPacket(packet: Uint8Array, extra = 0): Uint8Array {
  return packet.subarray(0, Math.max(0, Math.min(packet.length, ICMPV6_ERROR_QUOTE_MAX - extra)));
}

/** Why `Icmpv6Packet.check` refused bytes. */
export type Icmpv6CheckFailure = 'truncated';

/**
 * A zero-copy view of an ICMPv6 message (the upper-layer payload of an IPv6 packet). Type, code,
 * checksum, identifier, sequence number and data are read as in ICMP (`IcmpHeaderView`).
 */
export class Icmpv6Packet extends IcmpHeaderView {
  /**
   * At least the 8-byte header (what Linux's icmpv6_rcv pulls). The checksum needs the addresses
   * and is checked separately (`verifyChecksum`); the body per type by the Reprs.
   */
  static check(bytes: Uint8Array): ParseResult<Icmpv6Packet, Icmpv6CheckFailure> {
    if (bytes.length < ICMPV6_HEADER_LENGTH) return fail('truncated');
    return ok(new Icmpv6Packet(bytes));
  }

  /** Packet too big: the MTU of the next-hop link. */
  get mtu(): number {
    return readUint32(this.bytes, 4);
  }
  /** Parameter problem: the offset in the invoking packet where the problem was found. */
  get pointer(): number {
    return readUint32(this.bytes, 4);
  }

  /** True when the checksum over the pseudo-header and the message is right. */
  verifyChecksum(source: Ipv6Address, destination: Ipv6Address): boolean {
    return internetChecksum(this.bytes, ipv6PseudoHeaderSum(source, destination, IpNextHeader.ICMPV6, this.bytes.length)) === 0;
  }

  fillChecksum(source: Ipv6Address, destination: Ipv6Address): void {
    fillIcmpv6Checksum(this.bytes, source, destination, 0, this.bytes.length);
  }
}

/** Writes the checksum of the message at `buffer[offset..end)` (its field is zeroed first). */
export function fillIcmpv6Checksum(buffer: Uint8Array, source: Ipv6Address, destination: Ipv6Address, offset = 0, end = buffer.length): void {
  buffer[offset + 2] = 0;
  buffer[offset + 3] = 0;
  const c = internetChecksum(buffer, ipv6PseudoHeaderSum(source, destination, IpNextHeader.ICMPV6, end - offset), offset, end);
  buffer[offset + 2] = c >>> 8;
  buffer[offset + 3] = c & 0xff;
}

export type Icmpv6Repr =
  | { readonly kind: 'echo-request'; readonly identifier: number; readonly sequence: number; readonly data: Uint8Array }
  | { readonly kind: 'echo-reply'; readonly identifier: number; readonly sequence: number; readonly data: Uint8Array }
  | {
      readonly kind: 'destination-unreachable';
      /** Icmpv6UnreachableCode. */
      readonly code: number;
      /** As much of the invoking packet as fits (quoteInvokingPacket), from its IPv6 header on. */
      readonly invoking: Uint8Array;
    }
  | { readonly kind: 'packet-too-big'; readonly mtu: number; readonly invoking: Uint8Array }
  | { readonly kind: 'time-exceeded'; readonly code: number; readonly invoking: Uint8Array }
  | {
      readonly kind: 'parameter-problem';
      readonly code: number;
      /** Offset in the invoking packet (from its IPv6 header) of the octet that was wrong. */
      readonly pointer: number;
      readonly invoking: Uint8Array;
    };

export type Icmpv6Kind = Icmpv6Repr['kind'];

/**
 * Why `Icmpv6Repr.parse` refused a checked message: a type this union does not carry (NDP and MLD
 * types go to their own Reprs), or an echo with a code other than 0 (RFC 4443 4.1/4.2).
 */
export type Icmpv6ParseFailure = 'unsupported_type' | 'bad_code';

export const Icmpv6Repr = {
  /** Reads a checked message. `data`/`invoking` are views into the packet's bytes. */
  parse(packet: Icmpv6Packet): ParseResult<Icmpv6Repr, Icmpv6ParseFailure> {
    const code = packet.code;
    switch (packet.type) {
      case Icmpv6Type.ECHO_REQUEST:
      case Icmpv6Type.ECHO_REPLY:
        if (code !== 0) return fail('bad_code');
        return ok({
          kind: packet.type === Icmpv6Type.ECHO_REQUEST ? 'echo-request' : 'echo-reply',
          identifier: packet.identifier,
          sequence: packet.sequenceNumber,
          data: packet.data,
        });
      // Error codes are kept as they come: RFC 4443 asks receivers to pass unknown ones up, and
      // later RFCs keep adding codes (RFC 6554, RFC 8883).
      case Icmpv6Type.DESTINATION_UNREACHABLE:
        return ok({ kind: 'destination-unreachable', code, invoking: packet.data });
      case Icmpv6Type.PACKET_TOO_BIG:
        return ok({ kind: 'packet-too-big', mtu: packet.mtu, invoking: packet.data });
      case Icmpv6Type.TIME_EXCEEDED:
        return ok({ kind: 'time-exceeded', code, invoking: packet.data });
      case Icmpv6Type.PARAMETER_PROBLEM:
        return ok({ kind: 'parameter-problem', code, pointer: packet.pointer, invoking: packet.data });
      default:
        return fail('unsupported_type');
    }
  },

  bufferLength(repr: Icmpv6Repr): number {
    return ICMPV6_HEADER_LENGTH + (repr.kind === 'echo-request' || repr.kind === 'echo-reply' ? repr.data.length : repr.invoking.length);
  },

  /**
   * Writes the message at `offset` in `buffer` (bufferLength bytes), checksum over the
   * pseudo-header of `source` and `destination` included.
   */
  emit(repr: Icmpv6Repr, buffer: Uint8Array, source: Ipv6Address, destination: Ipv6Address, offset = 0): void {
    const b = buffer;
    const o = offset;
    let body: Uint8Array;
    switch (repr.kind) {
      case 'echo-request':
      case 'echo-reply':
        writeIcmpHeader(b, o, repr.kind === 'echo-request' ? Icmpv6Type.ECHO_REQUEST : Icmpv6Type.ECHO_REPLY, 0, echoRest(repr.identifier, repr.sequence));
        body = repr.data;
        break;
      case 'destination-unreachable':
        writeIcmpHeader(b, o, Icmpv6Type.DESTINATION_UNREACHABLE, repr.code, 0);
        body = repr.invoking;
        break;
      case 'packet-too-big':
        writeIcmpHeader(b, o, Icmpv6Type.PACKET_TOO_BIG, 0, repr.mtu);
        body = repr.invoking;
        break;
      case 'time-exceeded':
        writeIcmpHeader(b, o, Icmpv6Type.TIME_EXCEEDED, repr.code, 0);
        body = repr.invoking;
        break;
      case 'parameter-problem':
        writeIcmpHeader(b, o, Icmpv6Type.PARAMETER_PROBLEM, repr.code, repr.pointer);
        body = repr.invoking;
        break;
    }
    b.set(body, o + ICMPV6_HEADER_LENGTH);
    fillIcmpv6Checksum(b, source, destination, o, o + ICMPV6_HEADER_LENGTH + body.length);
  },

  /** A new buffer holding the emitted message. */
  build(repr: Icmpv6Repr, source: Ipv6Address, destination: Ipv6Address): Uint8Array {
    const out = new Uint8Array(Icmpv6Repr.bufferLength(repr));
    Icmpv6Repr.emit(repr, out, source, destination);
    return out;
  },
};

export function readUint32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

export function writeUint32(b: Uint8Array, o: number, value: number): void {
  b[o] = (value >>> 24) & 0xff;
  b[o + 1] = (value >>> 16) & 0xff;
  b[o + 2] = (value >>> 8) & 0xff;
  b[o + 3] = value & 0xff;
}

const UNREACHABLE_NAMES = [
  'no route to destination',
  'communication administratively prohibited',
  'beyond scope of source address',
  'address unreachable',
  'port unreachable',
  'source address failed ingress/egress policy',
  'reject route to destination',
];

const PARAMETER_PROBLEM_NAMES = ['erroneous header field', 'unrecognized next header', 'unrecognized option', 'incomplete header chain'];

/**
 * The RFC 4443 messages in one line, without the `ICMP6, ` prefix and length (formatIcmpv6 adds
 * them): `echo request, id 5, seq 1`.
 */
export function describeIcmpv6(repr: Icmpv6Repr): string {
  switch (repr.kind) {
    case 'echo-request':
    case 'echo-reply':
      return `echo ${repr.kind === 'echo-request' ? 'request' : 'reply'}, id ${repr.identifier}, seq ${repr.sequence}`;
    case 'destination-unreachable':
      return `destination unreachable, ${UNREACHABLE_NAMES[repr.code] ?? `code ${repr.code}`}${quotedDestination(repr.invoking)}`;
    case 'packet-too-big':
      return `packet too big, mtu ${repr.mtu}`;
    case 'time-exceeded':
      return `time exceeded ${repr.code === 0 ? 'in-transit' : repr.code === 1 ? 'in fragment reassembly' : `code ${repr.code}`}`;
    case 'parameter-problem':
      return `parameter problem, ${PARAMETER_PROBLEM_NAMES[repr.code] ?? `code ${repr.code}`} at octet ${repr.pointer}`;
  }
}

function quotedDestination(invoking: Uint8Array): string {
  if (invoking.length < IPV6_HEADER_LENGTH || invoking[0]! >>> 4 !== 6) return '';
  return `, to ${Ipv6Address.fromBytes(invoking, 24)}`;
}
