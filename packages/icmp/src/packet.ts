/**
 * ICMP messages (RFC 792), in the smoltcp `wire` style: offsets as constants, a zero-copy view
 * checked once by `IcmpPacket.check`, a plain `IcmpRepr` (a union over the message kinds the
 * stack speaks: echo request and reply, destination unreachable, time exceeded) with
 * parse/emit/bufferLength, and a one-line formatter.
 *
 *  0               1               2               3
 * +---------------+---------------+-------------------------------+
 * |     Type      |     Code      |           Checksum            |
 * +---------------+---------------+-------------------------------+
 * |  echo: Identifier             |  echo: Sequence Number        |
 * |  unreachable: unused          |  code 4: Next-Hop MTU         |
 * |  time exceeded: unused                                        |
 * +---------------------------------------------------------------+
 * |  echo: data;  errors: the offending IP header + 8 bytes       |
 * +---------------------------------------------------------------+
 *
 * The checksum covers the whole ICMP message (header and data), RFC 1071 style.
 */
import { fail, ok, type ParseResult } from '@tapstack/link';
import { internetChecksum, Ipv4Packet } from '@tapstack/ipv4';

export const ICMP_HEADER_LENGTH = 8;

export const IcmpType = {
  ECHO_REPLY: 0,
  DESTINATION_UNREACHABLE: 3,
  SOURCE_QUENCH: 4,
  REDIRECT: 5,
  ECHO_REQUEST: 8,
  ROUTER_ADVERTISEMENT: 9,
  ROUTER_SOLICITATION: 10,
  TIME_EXCEEDED: 11,
  PARAMETER_PROBLEM: 12,
  TIMESTAMP: 13,
  TIMESTAMP_REPLY: 14,
  INFORMATION_REQUEST: 15,
  INFORMATION_REPLY: 16,
  ADDRESS_MASK_REQUEST: 17,
  ADDRESS_MASK_REPLY: 18,
} as const;

/** Destination unreachable codes (RFC 792, RFC 1122, RFC 1812). */
export const UnreachableCode = {
  NET: 0,
  HOST: 1,
  PROTOCOL: 2,
  PORT: 3,
  FRAGMENTATION_NEEDED: 4,
  SOURCE_ROUTE_FAILED: 5,
  NET_UNKNOWN: 6,
  HOST_UNKNOWN: 7,
  SOURCE_HOST_ISOLATED: 8,
  NET_PROHIBITED: 9,
  HOST_PROHIBITED: 10,
  NET_TOS: 11,
  HOST_TOS: 12,
  ADMIN_PROHIBITED: 13,
  HOST_PRECEDENCE_VIOLATION: 14,
  PRECEDENCE_CUTOFF: 15,
} as const;

/** Time exceeded codes. */
export const TimeExceededCode = {
  TTL: 0,
  REASSEMBLY: 1,
} as const;

/**
 * Informational types; every other type (including unassigned ones) counts as an error message
 * when deciding whether we may answer with an error. Linux does the same: an unknown ICMP type
 * is assumed to be an error, so two hosts can never bounce errors at each other.
 */
const INFORMATIONAL_TYPES = new Set<number>([0, 8, 9, 10, 13, 14, 15, 16, 17, 18]);

export function isIcmpErrorType(type: number): boolean {
  return !INFORMATIONAL_TYPES.has(type);
}

/**
 * The 8-byte header ICMP and ICMPv6 share (RFC 4443 2.1 keeps RFC 792's layout): type, code,
 * checksum, then four bytes whose meaning depends on the type (identifier and sequence number in
 * an echo). IcmpPacket here and @tapstack/icmpv6's Icmpv6Packet are views built on it; what
 * differs is what the checksum covers and the fields of the errors.
 */
export class IcmpHeaderView {
  constructor(readonly bytes: Uint8Array) {}

  get type(): number {
    return this.bytes[0]!;
  }
  get code(): number {
    return this.bytes[1]!;
  }
  get checksum(): number {
    return (this.bytes[2]! << 8) | this.bytes[3]!;
  }
  get identifier(): number {
    return (this.bytes[4]! << 8) | this.bytes[5]!;
  }
  get sequenceNumber(): number {
    return (this.bytes[6]! << 8) | this.bytes[7]!;
  }
  /** Bytes after the 8-byte header: echo data, or the quoted datagram of an error (a view). */
  get data(): Uint8Array {
    return this.bytes.subarray(ICMP_HEADER_LENGTH);
  }
}

/**
 * Writes the shared 8-byte header at `offset`: type, code, a zero checksum (the caller fills it
 * in), and `rest`, the 32 bits after the checksum (for an echo, `echoRest(identifier, sequence)`).
 */
export function writeIcmpHeader(buffer: Uint8Array, offset: number, type: number, code: number, rest: number): void {
  buffer[offset] = type;
  buffer[offset + 1] = code;
  buffer[offset + 2] = 0;
  buffer[offset + 3] = 0;
  buffer[offset + 4] = (rest >>> 24) & 0xff;
  buffer[offset + 5] = (rest >>> 16) & 0xff;
  buffer[offset + 6] = (rest >>> 8) & 0xff;
  buffer[offset + 7] = rest & 0xff;
}

/** An echo's identifier and sequence number as the header's last 32 bits. */
export function echoRest(identifier: number, sequence: number): number {
  return (((identifier & 0xffff) << 16) | (sequence & 0xffff)) >>> 0;
}

/** A zero-copy view of an ICMP message. */
export class IcmpPacket extends IcmpHeaderView {
  /** At least the 8-byte header; the checksum is checked separately (`verifyChecksum`). */
  static check(bytes: Uint8Array): ParseResult<IcmpPacket, 'truncated'> {
    if (bytes.length < ICMP_HEADER_LENGTH) return fail('truncated');
    return ok(new IcmpPacket(bytes));
  }

  get nextHopMtu(): number {
    return (this.bytes[6]! << 8) | this.bytes[7]!;
  }

  verifyChecksum(): boolean {
    return internetChecksum(this.bytes) === 0;
  }

  fillChecksum(): void {
    this.bytes[2] = 0;
    this.bytes[3] = 0;
    const c = internetChecksum(this.bytes);
    this.bytes[2] = c >>> 8;
    this.bytes[3] = c & 0xff;
  }
}

export type IcmpRepr =
  | { readonly kind: 'echo-request'; readonly identifier: number; readonly sequence: number; readonly data: Uint8Array }
  | { readonly kind: 'echo-reply'; readonly identifier: number; readonly sequence: number; readonly data: Uint8Array }
  | {
      readonly kind: 'destination-unreachable';
      readonly code: number;
      /** RFC 1191: the MTU of the next hop, for code 4 (fragmentation needed); 0 otherwise. */
      readonly nextHopMtu: number;
      /** The offending datagram's IP header and the first bytes of its payload. */
      readonly quoted: Uint8Array;
    }
  | { readonly kind: 'time-exceeded'; readonly code: number; readonly quoted: Uint8Array };

export type IcmpParseFailure = 'unsupported_type' | 'bad_code';

export const IcmpRepr = {
  /** Reads a checked message. `data`/`quoted` are views into the packet's bytes. */
  parse(packet: IcmpPacket): ParseResult<IcmpRepr, IcmpParseFailure> {
    const code = packet.code;
    switch (packet.type) {
      case IcmpType.ECHO_REQUEST:
      case IcmpType.ECHO_REPLY:
        if (code !== 0) return fail('bad_code');
        return ok({
          kind: packet.type === IcmpType.ECHO_REQUEST ? 'echo-request' : 'echo-reply',
          identifier: packet.identifier,
          sequence: packet.sequenceNumber,
          data: packet.data,
        });
      case IcmpType.DESTINATION_UNREACHABLE:
        if (code > 15) return fail('bad_code');
        return ok({ kind: 'destination-unreachable', code, nextHopMtu: packet.nextHopMtu, quoted: packet.data });
      case IcmpType.TIME_EXCEEDED:
        if (code > 1) return fail('bad_code');
        return ok({ kind: 'time-exceeded', code, quoted: packet.data });
      default:
        return fail('unsupported_type');
    }
  },

  bufferLength(repr: IcmpRepr): number {
    return ICMP_HEADER_LENGTH + (repr.kind === 'echo-request' || repr.kind === 'echo-reply' ? repr.data.length : repr.quoted.length);
  },

  /** Writes the message, checksum included, at the start of `buffer` (bufferLength bytes). */
  emit(repr: IcmpRepr, buffer: Uint8Array): void {
    const b = buffer;
    let body: Uint8Array;
    switch (repr.kind) {
      case 'echo-request':
      case 'echo-reply':
        writeIcmpHeader(b, 0, repr.kind === 'echo-request' ? IcmpType.ECHO_REQUEST : IcmpType.ECHO_REPLY, 0, echoRest(repr.identifier, repr.sequence));
        body = repr.data;
        break;
      case 'destination-unreachable':
        writeIcmpHeader(b, 0, IcmpType.DESTINATION_UNREACHABLE, repr.code, repr.nextHopMtu & 0xffff);
        body = repr.quoted;
        break;
      case 'time-exceeded':
        writeIcmpHeader(b, 0, IcmpType.TIME_EXCEEDED, repr.code, 0);
        body = repr.quoted;
        break;
    }
    b.set(body, ICMP_HEADER_LENGTH);
    const length = ICMP_HEADER_LENGTH + body.length;
    const c = internetChecksum(b, 0, 0, length);
    b[2] = c >>> 8;
    b[3] = c & 0xff;
  },

  /** A new buffer holding the emitted message. */
  build(repr: IcmpRepr): Uint8Array {
    const out = new Uint8Array(IcmpRepr.bufferLength(repr));
    IcmpRepr.emit(repr, out);
    return out;
  },
};

const UNREACHABLE_NAMES = [
  'net unreachable',
  'host unreachable',
  'protocol unreachable',
  'port unreachable',
  'fragmentation needed',
  'source route failed',
  'net unknown',
  'host unknown',
  'source host isolated',
  'net prohibited',
  'host prohibited',
  'net unreachable for TOS',
  'host unreachable for TOS',
  'communication administratively prohibited',
  'host precedence violation',
  'precedence cutoff',
];

/** One line, like tcpdump: `ICMP echo request, id 9369, seq 1, length 64`. */
export function formatIcmp(bytes: Uint8Array): string {
  const checked = IcmpPacket.check(bytes);
  if (!checked.ok) return `ICMP [truncated, length ${bytes.length}]`;
  const p = checked.value;
  const bad = p.verifyChecksum() ? '' : ' (bad cksum)';
  const parsed = IcmpRepr.parse(p);
  if (!parsed.ok) return `ICMP type ${p.type} code ${p.code}, length ${bytes.length}${bad}`;
  const r = parsed.value;
  switch (r.kind) {
    case 'echo-request':
    case 'echo-reply':
      return `ICMP echo ${r.kind === 'echo-request' ? 'request' : 'reply'}, id ${r.identifier}, seq ${r.sequence}, length ${bytes.length}${bad}`;
    case 'destination-unreachable':
      return `ICMP ${UNREACHABLE_NAMES[r.code] ?? `unreachable code ${r.code}`}${r.code === 4 ? ` (mtu ${r.nextHopMtu})` : ''}, length ${bytes.length}${bad}`;
    case 'time-exceeded':
      return `ICMP time exceeded ${r.code === 0 ? 'in-transit' : 'in fragment reassembly'}, length ${bytes.length}${bad}`;
  }
}

/** The part of a datagram an ICMP error quotes: its IP header plus the first 8 bytes after it. */
export function quoteDatagram(datagram: Uint8Array): Uint8Array {
  const headerLength = new Ipv4Packet(datagram).headerLength;
  return datagram.subarray(0, Math.min(datagram.length, headerLength + 8));
}
