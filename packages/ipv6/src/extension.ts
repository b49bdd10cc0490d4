/**
 * IPv6 extension headers (RFC 8200 4): what replaced IPv4's options. Each header names the one
 * after it, so a packet is a chain from the fixed header's next-header field to the upper layer:
 *
 *   fixed header (next 0) -> hop-by-hop (next 43) -> routing (next 44) -> fragment (next 60)
 *   -> destination options (next 58) -> ICMPv6 message
 *
 * The headers share one shape: next header (8 bits), length (8 bits, in 8-byte units not counting
 * the first 8), then a body; the fragment header alone is a fixed 8 bytes (its second byte is
 * reserved). `walkExtensionHeaders` follows the chain of a received packet the way RFC 8200 4
 * asks a host to, and returns what the layer must do: deliver to the upper layer at an offset,
 * hand a fragment to reassembly, drop silently, or drop and send an ICMPv6 parameter problem
 * with a given code and pointer. It never throws.
 *
 * Hop-by-hop and destination options carry TLV options (RFC 8200 4.2) whose two top type bits say
 * what a node that does not know the option must do:
 *   00 skip it;  01 discard the packet;  10 discard and send parameter problem code 2 pointing at
 *   the option's type;  11 the same, but only when the destination is not multicast.
 * Pad1 (type 0, a single byte) and PadN (type 1) align the others. The bit 0x20 says whether the
 * option's data may change en route (for AH), which a host ignores.
 */
import { fail, ok, type ParseResult } from '@tapstack/link';
import { IPV6_HEADER_LENGTH, IpNextHeader, Ipv6Field, Ipv6Packet } from './header.ts';

/** Options the walker knows in hop-by-hop and destination options headers. */
export const Ipv6OptionType = {
  PAD1: 0,
  PADN: 1,
  /** Router alert (RFC 2711), in hop-by-hop: value 0 marks an MLD message. */
  ROUTER_ALERT: 5,
} as const;

/** The two top bits of an unknown option's type (RFC 8200 4.2). */
export const Ipv6OptionAction = {
  SKIP: 0,
  DISCARD: 1,
  DISCARD_SEND_ICMP: 2,
  DISCARD_SEND_ICMP_UNLESS_MULTICAST: 3,
} as const;

/** The ICMPv6 parameter problem (type 4) the layer must send for a refused packet. */
export interface ParameterProblem {
  /** 0 erroneous header field, 1 unrecognized next header, 2 unrecognized option, 3 incomplete chain (RFC 7112). */
  readonly code: 0 | 1 | 2 | 3;
  /** Offset from the start of the IPv6 packet of the octet at fault. */
  readonly pointer: number;
}

/** One extension header the walker went through. */
export interface ExtensionHeaderVisit {
  /** Its type (the next-header value that named it: 0, 43, 44, 60 ...). */
  readonly type: number;
  /** Offset from the start of the IPv6 packet. */
  readonly offset: number;
  readonly length: number;
}

/** Why a packet was refused while walking its chain. */
export type ExtensionHeaderFailure =
  /** A header runs past the end of the payload. */
  | 'truncated_header'
  /** A hop-by-hop header that is not the first after the fixed header (RFC 8200 4.1). */
  | 'hop_by_hop_not_first'
  /** A next-header value that is neither an extension header nor a known upper layer. */
  | 'unknown_next_header'
  /** A routing header with segments left and a type we do not process (RFC 8200 4.4; type 0 is deprecated, RFC 5095). */
  | 'unknown_routing_type'
  /** An option whose type says "discard" (action 01). */
  | 'unknown_option_discard'
  /** An option whose type says "discard and report" (action 10, or 11 to a unicast destination). */
  | 'unknown_option'
  /** An option running past its header. */
  | 'bad_option_length'
  /** More than 7 bytes of padding in a row: padding has no other use than to hide things (Linux refuses it too). */
  | 'too_much_padding'
  /** More extension headers than the walker's limit. */
  | 'too_many_headers';

/** Every ExtensionHeaderFailure, for a layer that declares its drop counters up front. */
export const EXTENSION_HEADER_FAILURES = [
  'truncated_header',
  'hop_by_hop_not_first',
  'unknown_next_header',
  'unknown_routing_type',
  'unknown_option_discard',
  'unknown_option',
  'bad_option_length',
  'too_much_padding',
  'too_many_headers',
] as const satisfies readonly ExtensionHeaderFailure[];
// Compile-time check that the list names every failure.
const _allExtensionFailures: [Exclude<ExtensionHeaderFailure, (typeof EXTENSION_HEADER_FAILURES)[number]>] extends [never] ? true : never = true;
void _allExtensionFailures;

export type ExtensionWalkResult =
  /** Deliver `bytes[offset..]` of the packet to the upper layer `nextHeader`. */
  | {
      readonly kind: 'upper-layer';
      readonly nextHeader: number;
      /** Offset of the upper-layer header from the start of the IPv6 packet. */
      readonly offset: number;
      /** Offset of the next-header field that named it: a parameter problem for it points here. */
      readonly nextHeaderFieldOffset: number;
      readonly headers: readonly ExtensionHeaderVisit[];
      /** The router alert value when a hop-by-hop header carried one (RFC 2711; 0 for MLD). */
      readonly routerAlert: number | undefined;
    }
  /** A fragment (offset or M set): the rest of the chain is in the reassembled packet. */
  | {
      readonly kind: 'fragment';
      /** Offset of the fragment header. */
      readonly offset: number;
      readonly nextHeaderFieldOffset: number;
      readonly headers: readonly ExtensionHeaderVisit[];
      readonly routerAlert: number | undefined;
    }
  /** Next header 59: nothing follows (RFC 8200 4.7); the packet is consumed. */
  | { readonly kind: 'no-next-header'; readonly offset: number; readonly headers: readonly ExtensionHeaderVisit[] }
  /** Refused: drop it, count `reason`, and send the parameter problem when there is one. */
  | { readonly kind: 'error'; readonly reason: ExtensionHeaderFailure; readonly parameterProblem: ParameterProblem | undefined };

export interface ExtensionWalkOptions {
  /**
   * Which next-header values have an upper layer to take them. Default: ICMPv6, UDP and TCP.
   * Any other value that is not an extension header is "unrecognized" (parameter problem code 1).
   */
  readonly isUpperLayer?: (nextHeader: number) => boolean;
  /** Most extension headers walked before giving up (default 16). */
  readonly maxHeaders?: number;
}

const DEFAULT_UPPER_LAYERS = (n: number): boolean => n === IpNextHeader.ICMPV6 || n === IpNextHeader.UDP || n === IpNextHeader.TCP;
const NO_HEADERS: readonly ExtensionHeaderVisit[] = Object.freeze([]);

/** True for the next-header values RFC 8200 4 defines as extension headers the walker follows. */
export function isExtensionHeader(nextHeader: number): boolean {
  return (
    nextHeader === IpNextHeader.HOP_BY_HOP ||
    nextHeader === IpNextHeader.ROUTING ||
    nextHeader === IpNextHeader.FRAGMENT ||
    nextHeader === IpNextHeader.DESTINATION_OPTIONS
  );
}

/**
 * Walks the extension-header chain of a checked packet, in order (RFC 8200 4.1), and says what
 * to do with it. Offsets in the result count from the start of the IPv6 header. An atomic
 * fragment (offset 0, M clear) is stepped over like any other header (RFC 6946 4): it is a whole
 * packet and must not touch the reassembly of others.
 */
export function walkExtensionHeaders(packet: Ipv6Packet, options: ExtensionWalkOptions = {}): ExtensionWalkResult {
  const b = packet.bytes;
  const isUpperLayer = options.isUpperLayer ?? DEFAULT_UPPER_LAYERS;
  const maxHeaders = options.maxHeaders ?? 16;
  const multicastDestination = packet.destinationIsMulticast;
  let next = b[Ipv6Field.NEXT_HEADER]!;
  let fieldOffset: number = Ipv6Field.NEXT_HEADER;
  let at = IPV6_HEADER_LENGTH;
  let headers: ExtensionHeaderVisit[] | undefined;
  let routerAlert: number | undefined;

  for (;;) {
    if (next === IpNextHeader.NO_NEXT_HEADER) return { kind: 'no-next-header', offset: at, headers: headers ?? NO_HEADERS };
    if (!isExtensionHeader(next)) {
      if (isUpperLayer(next)) return { kind: 'upper-layer', nextHeader: next, offset: at, nextHeaderFieldOffset: fieldOffset, headers: headers ?? NO_HEADERS, routerAlert };
      return problem('unknown_next_header', 1, fieldOffset);
    }
    // RFC 8200 4.1: hop-by-hop only right after the fixed header.
    if (next === IpNextHeader.HOP_BY_HOP && at !== IPV6_HEADER_LENGTH) return problem('hop_by_hop_not_first', 1, fieldOffset);
    if ((headers?.length ?? 0) >= maxHeaders) return { kind: 'error', reason: 'too_many_headers', parameterProblem: undefined };
    if (b.length - at < 8) return { kind: 'error', reason: 'truncated_header', parameterProblem: undefined };
    const length = next === IpNextHeader.FRAGMENT ? 8 : (b[at + 1]! + 1) * 8;
    if (at + length > b.length) return { kind: 'error', reason: 'truncated_header', parameterProblem: undefined };
    (headers ??= []).push({ type: next, offset: at, length });

    switch (next) {
      case IpNextHeader.HOP_BY_HOP:
      case IpNextHeader.DESTINATION_OPTIONS: {
        const r = processOptions(b, at + 2, at + length, multicastDestination, next === IpNextHeader.HOP_BY_HOP);
        if (r.kind === 'error') return r;
        if (r.routerAlert !== undefined) routerAlert = r.routerAlert;
        break;
      }
      case IpNextHeader.ROUTING: {
        // RFC 8200 4.4: with no segments left the header is ignored; with some, a node that does
        // not know the routing type must refuse the packet and point at the type. A host processes
        // none (type 0 is deprecated by RFC 5095 and treated as unknown).
        const segmentsLeft = b[at + 3]!;
        if (segmentsLeft !== 0) return problem('unknown_routing_type', 0, at + 2);
        break;
      }
      case IpNextHeader.FRAGMENT: {
        const offsetAndFlags = (b[at + 2]! << 8) | b[at + 3]!;
        if (offsetAndFlags & 0xfff9) {
          // Offset or M set: a real fragment.
          return { kind: 'fragment', offset: at, nextHeaderFieldOffset: fieldOffset, headers, routerAlert };
        }
        break;
      }
    }
    next = b[at]!;
    fieldOffset = at;
    at += length;
  }
}

type OptionsResult = { readonly kind: 'ok'; readonly routerAlert: number | undefined } | Extract<ExtensionWalkResult, { kind: 'error' }>;

/** The TLV options of a hop-by-hop or destination options header at `b[from..end)` (RFC 8200 4.2). */
function processOptions(b: Uint8Array, from: number, end: number, multicastDestination: boolean, hopByHop: boolean): OptionsResult {
  let routerAlert: number | undefined;
  let padding = 0;
  let at = from;
  while (at < end) {
    const type = b[at]!;
    if (type === Ipv6OptionType.PAD1) {
      if (++padding > 7) return { kind: 'error', reason: 'too_much_padding', parameterProblem: undefined };
      at++;
      continue;
    }
    if (end - at < 2) return { kind: 'error', reason: 'bad_option_length', parameterProblem: undefined };
    const length = 2 + b[at + 1]!;
    if (at + length > end) return { kind: 'error', reason: 'bad_option_length', parameterProblem: undefined };
    if (type === Ipv6OptionType.PADN) {
      padding += length;
      if (padding > 7) return { kind: 'error', reason: 'too_much_padding', parameterProblem: undefined };
      at += length;
      continue;
    }
    padding = 0;
    if (hopByHop && type === Ipv6OptionType.ROUTER_ALERT && length === 4) {
      routerAlert = (b[at + 2]! << 8) | b[at + 3]!;
    } else {
      switch (type >>> 6) {
        case Ipv6OptionAction.SKIP:
          break;
        case Ipv6OptionAction.DISCARD:
          return { kind: 'error', reason: 'unknown_option_discard', parameterProblem: undefined };
        case Ipv6OptionAction.DISCARD_SEND_ICMP:
          return problem('unknown_option', 2, at);
        default:
          if (multicastDestination) return { kind: 'error', reason: 'unknown_option', parameterProblem: undefined };
          return problem('unknown_option', 2, at);
      }
    }
    at += length;
  }
  return { kind: 'ok', routerAlert };
}

function problem(reason: ExtensionHeaderFailure, code: ParameterProblem['code'], pointer: number): Extract<ExtensionWalkResult, { kind: 'error' }> {
  return { kind: 'error', reason, parameterProblem: { code, pointer } };
}

/**
 * The 8-byte hop-by-hop header an MLD message travels behind (RFC 3810 5: a router alert with
 * value 0, RFC 2711), padded with a PadN of 0 data bytes, exactly as Linux writes it:
 * `3a 00 05 02 00 00 01 00`.
 */
export function routerAlertHopByHop(nextHeader: number = IpNextHeader.ICMPV6, value = 0): Uint8Array {
  return new Uint8Array([nextHeader, 0, Ipv6OptionType.ROUTER_ALERT, 2, (value >>> 8) & 0xff, value & 0xff, Ipv6OptionType.PADN, 0]);
}

/** One option of a hop-by-hop or destination options header, as the generic codec sees it. */
export interface Ipv6Option {
  readonly type: number;
  readonly data: Uint8Array;
}

/**
 * A hop-by-hop or destination options header (RFC 8200 4.3, 4.6) as an owned value: the next
 * header and the options other than padding. `emit` pads with Pad1/PadN to a multiple of 8.
 */
export interface Ipv6OptionsHeaderRepr {
  readonly nextHeader: number;
  readonly options: readonly Ipv6Option[];
}

export const Ipv6OptionsHeaderRepr = {
  /** Reads the header at the start of `bytes`; padding is dropped. */
  parse(bytes: Uint8Array): ParseResult<Ipv6OptionsHeaderRepr, 'truncated_header' | 'bad_option_length'> {
    if (bytes.length < 8) return fail('truncated_header');
    const length = (bytes[1]! + 1) * 8;
    if (length > bytes.length) return fail('truncated_header');
    const options: Ipv6Option[] = [];
    for (let at = 2; at < length; ) {
      const type = bytes[at]!;
      if (type === Ipv6OptionType.PAD1) {
        at++;
        continue;
      }
      if (length - at < 2 || at + 2 + bytes[at + 1]! > length) return fail('bad_option_length');
      const optionLength = 2 + bytes[at + 1]!;
      if (type !== Ipv6OptionType.PADN) options.push({ type, data: bytes.slice(at + 2, at + optionLength) });
      at += optionLength;
    }
    return ok({ nextHeader: bytes[0]!, options });
  },

  bufferLength(repr: Ipv6OptionsHeaderRepr): number {
    let n = 2;
    for (const o of repr.options) n += 2 + o.data.length;
    return (n + 7) & ~7;
  },

  /** Writes the header at `offset`, the padding as one Pad1 or a PadN at the end. */
  emit(repr: Ipv6OptionsHeaderRepr, buffer: Uint8Array, offset = 0): void {
    const length = Ipv6OptionsHeaderRepr.bufferLength(repr);
    if (length > 2048) throw new RangeError(`options header of ${length} bytes exceeds 2048`);
    buffer[offset] = repr.nextHeader;
    buffer[offset + 1] = length / 8 - 1;
    let at = offset + 2;
    for (const o of repr.options) {
      if (o.data.length > 255) throw new RangeError('option data exceeds 255 bytes');
      buffer[at] = o.type;
      buffer[at + 1] = o.data.length;
      buffer.set(o.data, at + 2);
      at += 2 + o.data.length;
    }
    const pad = offset + length - at;
    if (pad === 1) buffer[at] = Ipv6OptionType.PAD1;
    else if (pad > 1) {
      buffer[at] = Ipv6OptionType.PADN;
      buffer[at + 1] = pad - 2;
      buffer.fill(0, at + 2, at + pad);
    }
  },
};
