/**
 * Neighbour Discovery messages (RFC 4861 4.1-4.5): the ICMPv6 types 133-137 that replace ARP,
 * router discovery and ICMP redirects. Each has a fixed part after the 4-byte ICMPv6 header and
 * then options (ndisc-option.ts):
 *
 *  133 router solicitation    | reserved (32) | options                                      (>= 8)
 *  134 router advertisement   | cur hop limit (8) | M O flags (8) | router lifetime (16) |
 *                             | reachable time (32) | retrans timer (32) | options            (>= 16)
 *  135 neighbor solicitation  | reserved (32) | target address (128) | options               (>= 24)
 *  136 neighbor advertisement | R S O flags (3 bits) + reserved (29) | target (128) | options (>= 24)
 *  137 redirect               | reserved (32) | target (128) | destination (128) | options   (>= 40)
 *
 * `NdiscRepr.parse` reads any of them; `validateNdisc` applies every validity rule of RFC 4861
 * 6.1.1 (RS), 6.1.2 (RA), 7.1.1 (NS), 7.1.2 (NA) and 8.1 (redirect) and names the rule that
 * failed, so the layer can drop the message and count why. These are the checks that make NDP
 * safe without authentication: a hop limit of 255 proves the sender is on the link (a router
 * would have decremented it), and the address rules keep DAD probes and multicast out of the
 * neighbour cache.
 */
import { fail, Ipv6Address, ok, type ParseResult } from '@tapstack/link';
import { ICMPV6_HEADER_LENGTH, Icmpv6Packet, Icmpv6Type, readUint32, fillIcmpv6Checksum, writeUint32 } from './packet.ts';
import { emitNdiscOptions, hasSourceLinkLayerOption, ndiscOptionsLength, parseNdiscOptions, type NdiscOption, type NdiscOptionFailure } from './ndisc-option.ts';

/** The hop limit every NDP message is sent with and must arrive with (RFC 4861 6.1, 7.1, 8.1). */
export const NDISC_HOP_LIMIT = 255;

/** Where the options start (= the minimum ICMPv6 length) per NDP type. */
export const NdiscOptionsOffset = {
  ROUTER_SOLICITATION: 8,
  ROUTER_ADVERTISEMENT: 16,
  NEIGHBOR_SOLICITATION: 24,
  NEIGHBOR_ADVERTISEMENT: 24,
  REDIRECT: 40,
} as const;

/** Router advertisement flags (RFC 4861 4.2). */
export const RouterAdvertisementFlag = {
  /** M: addresses are available from DHCPv6. */
  MANAGED: 0x80,
  /** O: other configuration is available from DHCPv6. */
  OTHER_CONFIG: 0x40,
} as const;

/** Neighbor advertisement flags, the top bits of byte 4 (RFC 4861 4.4). */
export const NeighborAdvertisementFlag = {
  /** R: the sender is a router. */
  ROUTER: 0x80,
  /** S: sent in answer to a solicitation. */
  SOLICITED: 0x40,
  /** O: the advertisement should override a cached link-layer address. */
  OVERRIDE: 0x20,
} as const;

export type NdiscRepr =
  | { readonly kind: 'router-solicitation'; readonly options: readonly NdiscOption[] }
  | {
      readonly kind: 'router-advertisement';
      /** The hop limit hosts should use; 0 means unspecified. */
      readonly curHopLimit: number;
      readonly managed: boolean;
      readonly otherConfig: boolean;
      /** The flag bits other than M and O (home agent, router preference of RFC 4191, reserved), kept for re-emission. */
      readonly otherFlags: number;
      /** Seconds this router may be a default router; 0: it is not one. */
      readonly routerLifetime: number;
      /** Milliseconds; 0 means unspecified. */
      readonly reachableTime: number;
      /** Milliseconds between retransmitted NS; 0 means unspecified. */
      readonly retransTimer: number;
      readonly options: readonly NdiscOption[];
    }
  | { readonly kind: 'neighbor-solicitation'; readonly target: Ipv6Address; readonly options: readonly NdiscOption[] }
  | {
      readonly kind: 'neighbor-advertisement';
      readonly router: boolean;
      readonly solicited: boolean;
      readonly override: boolean;
      readonly target: Ipv6Address;
      readonly options: readonly NdiscOption[];
    }
  | {
      readonly kind: 'redirect';
      /** The better first hop (or the destination itself when it is on-link). */
      readonly target: Ipv6Address;
      /** The destination the redirect is about. */
      readonly destination: Ipv6Address;
      readonly options: readonly NdiscOption[];
    };

export type NdiscKind = NdiscRepr['kind'];

/** Why `NdiscRepr.parse` refused a message. */
export type NdiscParseFailure = 'unsupported_type' | 'too_short' | NdiscOptionFailure;

/** True for the five NDP types (133-137). */
export function isNdiscType(type: number): boolean {
  return type >= Icmpv6Type.ROUTER_SOLICITATION && type <= Icmpv6Type.REDIRECT;
}

/** The minimum ICMPv6 length of an NDP type (where its options start), or undefined. */
export function ndiscMinimumLength(type: number): number | undefined {
  switch (type) {
    case Icmpv6Type.ROUTER_SOLICITATION:
      return NdiscOptionsOffset.ROUTER_SOLICITATION;
    case Icmpv6Type.ROUTER_ADVERTISEMENT:
      return NdiscOptionsOffset.ROUTER_ADVERTISEMENT;
    case Icmpv6Type.NEIGHBOR_SOLICITATION:
      return NdiscOptionsOffset.NEIGHBOR_SOLICITATION;
    case Icmpv6Type.NEIGHBOR_ADVERTISEMENT:
      return NdiscOptionsOffset.NEIGHBOR_ADVERTISEMENT;
    case Icmpv6Type.REDIRECT:
      return NdiscOptionsOffset.REDIRECT;
    default:
      return undefined;
  }
}

export const NdiscRepr = {
  /** Reads a checked ICMPv6 message of an NDP type: the fixed part, then the options. */
  parse(packet: Icmpv6Packet): ParseResult<NdiscRepr, NdiscParseFailure> {
    const b = packet.bytes;
    const type = packet.type;
    const minimum = ndiscMinimumLength(type);
    if (minimum === undefined) return fail('unsupported_type');
    if (b.length < minimum) return fail('too_short');
    const parsed = parseNdiscOptions(b.subarray(minimum));
    if (!parsed.ok) return parsed;
    const options = parsed.value;
    switch (type) {
      case Icmpv6Type.ROUTER_SOLICITATION:
        return ok({ kind: 'router-solicitation', options });
      case Icmpv6Type.ROUTER_ADVERTISEMENT: {
        const flags = b[5]!;
        return ok({
          kind: 'router-advertisement',
          curHopLimit: b[4]!,
          managed: (flags & RouterAdvertisementFlag.MANAGED) !== 0,
          otherConfig: (flags & RouterAdvertisementFlag.OTHER_CONFIG) !== 0,
          otherFlags: flags & 0x3f,
          routerLifetime: (b[6]! << 8) | b[7]!,
          reachableTime: readUint32(b, 8),
          retransTimer: readUint32(b, 12),
          options,
        });
      }
      case Icmpv6Type.NEIGHBOR_SOLICITATION:
        return ok({ kind: 'neighbor-solicitation', target: Ipv6Address.fromBytes(b, 8), options });
      case Icmpv6Type.NEIGHBOR_ADVERTISEMENT: {
        const flags = b[4]!;
        return ok({
          kind: 'neighbor-advertisement',
          router: (flags & NeighborAdvertisementFlag.ROUTER) !== 0,
          solicited: (flags & NeighborAdvertisementFlag.SOLICITED) !== 0,
          override: (flags & NeighborAdvertisementFlag.OVERRIDE) !== 0,
          target: Ipv6Address.fromBytes(b, 8),
          options,
        });
      }
      default:
        return ok({ kind: 'redirect', target: Ipv6Address.fromBytes(b, 8), destination: Ipv6Address.fromBytes(b, 24), options });
    }
  },

  bufferLength(repr: NdiscRepr): number {
    return fixedLength(repr) + ndiscOptionsLength(repr.options);
  },

  /** Writes the message at `offset` in `buffer`, checksum over the pseudo-header included. */
  emit(repr: NdiscRepr, buffer: Uint8Array, source: Ipv6Address, destination: Ipv6Address, offset = 0): void {
    const b = buffer;
    const o = offset;
    const fixed = fixedLength(repr);
    b.fill(0, o, o + fixed);
    switch (repr.kind) {
      case 'router-solicitation':
        b[o] = Icmpv6Type.ROUTER_SOLICITATION;
        break;
      case 'router-advertisement':
        b[o] = Icmpv6Type.ROUTER_ADVERTISEMENT;
        b[o + 4] = repr.curHopLimit;
        b[o + 5] = (repr.managed ? RouterAdvertisementFlag.MANAGED : 0) | (repr.otherConfig ? RouterAdvertisementFlag.OTHER_CONFIG : 0) | (repr.otherFlags & 0x3f);
        b[o + 6] = (repr.routerLifetime >>> 8) & 0xff;
        b[o + 7] = repr.routerLifetime & 0xff;
        writeUint32(b, o + 8, repr.reachableTime);
        writeUint32(b, o + 12, repr.retransTimer);
        break;
      case 'neighbor-solicitation':
        b[o] = Icmpv6Type.NEIGHBOR_SOLICITATION;
        repr.target.writeTo(b, o + 8);
        break;
      case 'neighbor-advertisement':
        b[o] = Icmpv6Type.NEIGHBOR_ADVERTISEMENT;
        b[o + 4] =
          (repr.router ? NeighborAdvertisementFlag.ROUTER : 0) |
          (repr.solicited ? NeighborAdvertisementFlag.SOLICITED : 0) |
          (repr.override ? NeighborAdvertisementFlag.OVERRIDE : 0);
        repr.target.writeTo(b, o + 8);
        break;
      case 'redirect':
        b[o] = Icmpv6Type.REDIRECT;
        repr.target.writeTo(b, o + 8);
        repr.destination.writeTo(b, o + 24);
        break;
    }
    const end = emitNdiscOptions(repr.options, b, o + fixed);
    fillIcmpv6Checksum(b, source, destination, o, end);
  },

  /** A new buffer holding the emitted message. */
  build(repr: NdiscRepr, source: Ipv6Address, destination: Ipv6Address): Uint8Array {
    const out = new Uint8Array(NdiscRepr.bufferLength(repr));
    NdiscRepr.emit(repr, out, source, destination);
    return out;
  },
};

function fixedLength(repr: NdiscRepr): number {
  switch (repr.kind) {
    case 'router-solicitation':
      return NdiscOptionsOffset.ROUTER_SOLICITATION;
    case 'router-advertisement':
      return NdiscOptionsOffset.ROUTER_ADVERTISEMENT;
    case 'neighbor-solicitation':
    case 'neighbor-advertisement':
      return NdiscOptionsOffset.NEIGHBOR_SOLICITATION;
    case 'redirect':
      return NdiscOptionsOffset.REDIRECT;
  }
}

// ---------------------------------------------------------------------------------------------
// Validation (RFC 4861 6.1.1, 6.1.2, 7.1.1, 7.1.2, 8.1)

/** What the IPv6 header said about a received NDP message. */
export interface NdiscContext {
  readonly source: Ipv6Address;
  readonly destination: Ipv6Address;
  readonly hopLimit: number;
  /**
   * For redirects (RFC 4861 8.1): the first-hop router the host currently uses for a destination.
   * Without it, the rule "the source is the current first-hop router" is left to the caller.
   */
  readonly firstHopRouterFor?: (destination: Ipv6Address) => Ipv6Address | undefined;
}

/** Why a received NDP message is invalid, one name per rule of RFC 4861. */
export type NdiscInvalidReason =
  | 'truncated'
  | 'unsupported_type'
  /** Every type: the IP hop limit is not 255, so the sender is not on the link. */
  | 'bad_hop_limit'
  /** Every type: the ICMPv6 checksum is wrong. */
  | 'bad_checksum'
  /** Every type: the ICMP code is not 0. */
  | 'bad_code'
  /** Every type: the ICMP length is below the type's fixed part (8, 16, 24, 24, 40). */
  | 'too_short'
  /** Every type: an option has length 0. */
  | 'zero_length_option'
  | 'truncated_option'
  | 'bad_option_length'
  /** RA and redirect: the IP source is not link-local. */
  | 'source_not_link_local'
  /** RS and NS: from the unspecified address, but with a source link-layer address option. */
  | 'unspecified_source_with_link_layer_option'
  /** NS: from the unspecified address (DAD), but not to a solicited-node multicast address. */
  | 'unspecified_source_not_to_solicited_node'
  /** NS and NA: the target address is multicast. */
  | 'multicast_target'
  /** NA: sent to a multicast address with the solicited flag set. */
  | 'solicited_flag_to_multicast'
  /** Redirect: the destination address field is multicast. */
  | 'multicast_redirect_destination'
  /** Redirect: the target is neither link-local nor the destination (a redirect to an on-link destination). */
  | 'redirect_target_not_link_local'
  /** Redirect: the source is not the first-hop router currently used for the destination. */
  | 'redirect_not_from_first_hop_router';

/** Every NdiscInvalidReason, for a layer that declares its drop counters up front. */
export const NDISC_INVALID_REASONS = [
  'truncated',
  'unsupported_type',
  'bad_hop_limit',
  'bad_checksum',
  'bad_code',
  'too_short',
  'zero_length_option',
  'truncated_option',
  'bad_option_length',
  'source_not_link_local',
  'unspecified_source_with_link_layer_option',
  'unspecified_source_not_to_solicited_node',
  'multicast_target',
  'solicited_flag_to_multicast',
  'multicast_redirect_destination',
  'redirect_target_not_link_local',
  'redirect_not_from_first_hop_router',
] as const satisfies readonly NdiscInvalidReason[];
// Compile-time check that the list names every reason.
const _allNdiscReasons: [Exclude<NdiscInvalidReason, (typeof NDISC_INVALID_REASONS)[number]>] extends [never] ? true : never = true;
void _allNdiscReasons;

/**
 * Checks a received ICMPv6 message of an NDP type against every validity rule of RFC 4861 and
 * returns its Repr, or the first rule it broke. The order is Linux's (ndisc_rcv: hop limit, then
 * code, then the per-type length and option checks); the checksum comes after the hop limit and
 * the code since it costs most.
 */
export function validateNdisc(packet: Icmpv6Packet, context: NdiscContext): ParseResult<NdiscRepr, NdiscInvalidReason> {
  if (packet.bytes.length < ICMPV6_HEADER_LENGTH) return fail('truncated');
  if (!isNdiscType(packet.type)) return fail('unsupported_type');
  if (context.hopLimit !== NDISC_HOP_LIMIT) return fail('bad_hop_limit');
  if (packet.code !== 0) return fail('bad_code');
  if (!packet.verifyChecksum(context.source, context.destination)) return fail('bad_checksum');
  const parsed = NdiscRepr.parse(packet);
  if (!parsed.ok) return fail(parsed.reason === 'unsupported_type' ? 'unsupported_type' : parsed.reason);
  const repr = parsed.value;
  const rule = validateNdiscRepr(repr, context);
  return rule === undefined ? ok(repr) : fail(rule);
}

/**
 * The rules that depend on the message's fields and addresses (the per-type parts of RFC 4861
 * 6.1.1, 6.1.2, 7.1.1, 7.1.2, 8.1), for a message already parsed. Returns the broken rule or
 * undefined.
 */
export function validateNdiscRepr(repr: NdiscRepr, context: NdiscContext): NdiscInvalidReason | undefined {
  switch (repr.kind) {
    case 'router-solicitation':
      return validateRouterSolicitation(repr, context);
    case 'router-advertisement':
      return validateRouterAdvertisement(repr, context);
    case 'neighbor-solicitation':
      return validateNeighborSolicitation(repr, context);
    case 'neighbor-advertisement':
      return validateNeighborAdvertisement(repr, context);
    case 'redirect':
      return validateRedirect(repr, context);
  }
}

type Of<K extends NdiscKind> = Extract<NdiscRepr, { kind: K }>;

/** RFC 4861 6.1.1: from the unspecified address, no source link-layer address option. */
export function validateRouterSolicitation(repr: Of<'router-solicitation'>, context: NdiscContext): NdiscInvalidReason | undefined {
  if (context.source.isUnspecified && hasSourceLinkLayerOption(repr.options)) return 'unspecified_source_with_link_layer_option';
  return undefined;
}

/** RFC 4861 6.1.2: the source is link-local (routers are known by their link-local address). */
export function validateRouterAdvertisement(_repr: Of<'router-advertisement'>, context: NdiscContext): NdiscInvalidReason | undefined {
  if (!context.source.isLinkLocal) return 'source_not_link_local';
  return undefined;
}

/**
 * RFC 4861 7.1.1: the target is not multicast; from the unspecified address (a DAD probe, RFC
 * 4862 5.4.2) the destination is a solicited-node group and there is no source link-layer option
 * (a probe must not teach anyone a mapping for an address nobody owns yet).
 */
export function validateNeighborSolicitation(repr: Of<'neighbor-solicitation'>, context: NdiscContext): NdiscInvalidReason | undefined {
  if (repr.target.isMulticast) return 'multicast_target';
  if (context.source.isUnspecified) {
    if (!isSolicitedNodeAddress(context.destination)) return 'unspecified_source_not_to_solicited_node';
    if (hasSourceLinkLayerOption(repr.options)) return 'unspecified_source_with_link_layer_option';
  }
  return undefined;
}

/** RFC 4861 7.1.2: the target is not multicast; to a multicast destination the solicited flag is clear. */
export function validateNeighborAdvertisement(repr: Of<'neighbor-advertisement'>, context: NdiscContext): NdiscInvalidReason | undefined {
  if (repr.target.isMulticast) return 'multicast_target';
  if (repr.solicited && context.destination.isMulticast) return 'solicited_flag_to_multicast';
  return undefined;
}

/**
 * RFC 4861 8.1: from a link-local source, from the first-hop router for the destination (when the
 * context can tell), the destination field not multicast, and the target either link-local (a
 * better router) or the destination itself (it is on-link).
 */
export function validateRedirect(repr: Of<'redirect'>, context: NdiscContext): NdiscInvalidReason | undefined {
  if (!context.source.isLinkLocal) return 'source_not_link_local';
  if (repr.destination.isMulticast) return 'multicast_redirect_destination';
  if (!repr.target.isLinkLocal && !repr.target.equals(repr.destination)) return 'redirect_target_not_link_local';
  const router = context.firstHopRouterFor?.(repr.destination);
  if (context.firstHopRouterFor && (router === undefined || !router.equals(context.source))) return 'redirect_not_from_first_hop_router';
  return undefined;
}

/** ff02::1:ff00:0/104 (RFC 4291 2.7.1). */
export function isSolicitedNodeAddress(address: Ipv6Address): boolean {
  const b = address.bytes;
  if (b[0] !== 0xff || b[1] !== 0x02 || b[11] !== 0x01 || b[12] !== 0xff) return false;
  for (let i = 2; i < 11; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * One line for a trace, without the `ICMP6, ` prefix: `neighbor solicitation, who has fd00:10::2`
 * (tcpdump's words; the options of RA and redirect are listed, those of NS and NA are not).
 */
export function describeNdisc(repr: NdiscRepr): string {
  switch (repr.kind) {
    case 'router-solicitation':
      return 'router solicitation';
    case 'router-advertisement': {
      const flags = [repr.managed ? 'M' : '', repr.otherConfig ? 'O' : ''].join('');
      return `router advertisement, hop limit ${repr.curHopLimit}, flags [${flags}], router lifetime ${repr.routerLifetime}s, reachable ${repr.reachableTime}ms, retrans ${repr.retransTimer}ms${describeOptions(repr.options)}`;
    }
    case 'neighbor-solicitation':
      return `neighbor solicitation, who has ${repr.target}`;
    case 'neighbor-advertisement': {
      const flags = [repr.router ? 'router' : '', repr.solicited ? 'solicited' : '', repr.override ? 'override' : ''].filter((f) => f).join(', ');
      return `neighbor advertisement, tgt is ${repr.target}, Flags [${flags}]`;
    }
    case 'redirect':
      return `redirect, ${repr.destination} to ${repr.target}${describeOptions(repr.options)}`;
  }
}

function describeOptions(options: readonly NdiscOption[]): string {
  const parts = options.map((o) => {
    switch (o.kind) {
      case 'source-link-layer-address':
        return `source link-address ${o.address}`;
      case 'target-link-layer-address':
        return `target link-address ${o.address}`;
      case 'prefix-information':
        return `prefix ${o.prefix}/${o.prefixLength}${o.onLink ? ' onlink' : ''}${o.autonomous ? ' auto' : ''} valid ${o.validLifetime}s pref ${o.preferredLifetime}s`;
      case 'mtu':
        return `mtu ${o.mtu}`;
      case 'redirected-header':
        return `redirected header ${o.packet.length} bytes`;
      case 'unknown':
        return `option ${o.type}`;
    }
  });
  return parts.length === 0 ? '' : `, ${parts.join(', ')}`;
}
