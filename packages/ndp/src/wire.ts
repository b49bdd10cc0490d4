/**
 * NDP messages to and from bytes: the seam between Ndp's state machines (ndp.ts) and the codecs
 * of @tapstack/icmpv6. Received messages are checked there against every validity rule of RFC
 * 4861 (validateNdisc: hop limit 255, code 0, checksum, lengths, options, the per-type address
 * rules) and turned here into the few fields Ndp acts on (messages.ts); sent ones are built there
 * with their options and checksum.
 */
import { fail, ok, type Ipv6Address, type MacAddress, type ParseResult } from '@tapstack/link';
import { routerAlertHopByHop, type Ipv6Packet } from '@tapstack/ipv6';
import {
  Icmpv6Packet,
  MldReportRepr,
  NdiscOptionType,
  NdiscRepr,
  ndiscOptionsSummary,
  validateNdisc,
  type NdiscInvalidReason,
  type NdiscOption,
} from '@tapstack/icmpv6';
import type { NdpMessage } from './messages.ts';

/**
 * Checks and reads an NDP message (ICMPv6 types 133-137) that came in `packet`. For a redirect,
 * `firstHopRouterFor` tells the router we use for a destination now (RFC 4861 8.1: only that
 * router may redirect us).
 */
export function decodeNdp(
  packet: Ipv6Packet,
  message: Uint8Array,
  firstHopRouterFor?: (destination: Ipv6Address) => Ipv6Address | undefined,
): ParseResult<NdpMessage, NdiscInvalidReason> {
  const checked = Icmpv6Packet.check(message);
  if (!checked.ok) return fail('truncated');
  const context = { source: packet.source, destination: packet.destination, hopLimit: packet.hopLimit };
  const valid = validateNdisc(checked.value, firstHopRouterFor ? { ...context, firstHopRouterFor } : context);
  if (!valid.ok) return valid;
  const repr = valid.value;
  const o = ndiscOptionsSummary(repr.options);
  switch (repr.kind) {
    case 'router-solicitation':
      return ok({ kind: 'router-solicitation', sourceLinkLayer: o.sourceLinkLayerAddress });
    case 'router-advertisement':
      return ok({
        kind: 'router-advertisement',
        curHopLimit: repr.curHopLimit,
        managed: repr.managed,
        other: repr.otherConfig,
        routerLifetime: repr.routerLifetime,
        reachableTime: repr.reachableTime,
        retransTimer: repr.retransTimer,
        sourceLinkLayer: o.sourceLinkLayerAddress,
        mtu: o.mtu,
        prefixes: o.prefixes,
      });
    case 'neighbor-solicitation':
      return ok({ kind: 'neighbour-solicitation', target: repr.target, sourceLinkLayer: o.sourceLinkLayerAddress, nonce: o.nonce });
    case 'neighbor-advertisement':
      return ok({ kind: 'neighbour-advertisement', router: repr.router, solicited: repr.solicited, override: repr.override, target: repr.target, targetLinkLayer: o.targetLinkLayerAddress });
    case 'redirect':
      return ok({ kind: 'redirect', target: repr.target, destination: repr.destination, targetLinkLayer: o.targetLinkLayerAddress });
  }
}

/** Builds an NS, NA or RS (what a host sends), its checksum over `source` and `destination` included. */
export function encodeNdp(message: NdpMessage, source: Ipv6Address, destination: Ipv6Address): Uint8Array {
  const link = (kind: 'source-link-layer-address' | 'target-link-layer-address', mac: MacAddress | undefined): NdiscOption[] => (mac ? [{ kind, address: mac }] : []);
  switch (message.kind) {
    case 'router-solicitation':
      return NdiscRepr.build({ kind: 'router-solicitation', options: link('source-link-layer-address', message.sourceLinkLayer) }, source, destination);
    case 'neighbour-solicitation': {
      // RFC 7527 2: the nonce option, type 14, length 1: six bytes after type and length.
      const nonce: NdiscOption[] = message.nonce ? [{ kind: 'unknown', type: NdiscOptionType.NONCE, data: message.nonce }] : [];
      return NdiscRepr.build({ kind: 'neighbor-solicitation', target: message.target, options: [...link('source-link-layer-address', message.sourceLinkLayer), ...nonce] }, source, destination);
    }
    case 'neighbour-advertisement':
      return NdiscRepr.build(
        { kind: 'neighbor-advertisement', router: message.router, solicited: message.solicited, override: message.override, target: message.target, options: link('target-link-layer-address', message.targetLinkLayer) },
        source,
        destination,
      );
    default:
      throw new Error(`a host does not send ${message.kind}`);
  }
}

/**
 * An MLDv2 report saying we listen to `groups` (RFC 3810 6.1: CHANGE_TO_EXCLUDE_MODE, no
 * sources), behind the hop-by-hop header with the router alert option every MLD message carries
 * (RFC 3810 5, RFC 2711). The ICMPv6 checksum covers the MLD message only, not that header.
 */
export function encodeMldv2Report(source: Ipv6Address, destination: Ipv6Address, groups: readonly Ipv6Address[]): Uint8Array {
  const hopByHop = routerAlertHopByHop();
  const report = MldReportRepr.build(MldReportRepr.join(groups), source, destination);
  const out = new Uint8Array(hopByHop.length + report.length);
  out.set(hopByHop);
  out.set(report, hopByHop.length);
  return out;
}
