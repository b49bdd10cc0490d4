/**
 * NDP messages to and from bytes, for Ndp: the seam between the state machines (ndp.ts) and the
 * wire formats.
 *
 * TEMPORARY: the NDP codecs (RS/RA/NS/NA/Redirect with their options, and the MLDv2 report) are
 * @tapstack/icmpv6's to write, in the smoltcp style, with the RFC 4861 7.1 validity checks; they
 * had not landed when this runtime needed them. This file holds the least that ping -6 and DAD
 * need, and is to be replaced by calls to those codecs (only the three functions below are used).
 */
import { Ipv6Address, MacAddress, fail, ok, type ParseResult } from '@tapstack/link';
import { ipv6UpperLayerChecksum } from '@tapstack/ipv6';
import type { NdpMessage, PrefixInformation } from './messages.ts';

export type NdpDecodeFailure = 'truncated' | 'bad_code' | 'bad_option_length' | 'multicast_target' | 'not_ndp';

const OPTION_SOURCE_LL = 1;
const OPTION_TARGET_LL = 2;
const OPTION_PREFIX = 3;
const OPTION_MTU = 5;

/** Reads an NDP message (ICMPv6 types 133-137) whose checksum the ICMPv6 layer has verified. */
export function decodeNdp(m: Uint8Array): ParseResult<NdpMessage, NdpDecodeFailure> {
  if (m.length < 8) return fail('truncated');
  const type = m[0]!;
  // RFC 4861 7.1.1, 7.1.2, 6.1.1, 6.1.2: ICMP code 0
  if (m[1] !== 0) return fail('bad_code');
  const fixed = type === 133 ? 8 : type === 134 ? 16 : type === 135 || type === 136 ? 24 : type === 137 ? 40 : -1;
  if (fixed < 0) return fail('not_ndp');
  if (m.length < fixed) return fail('truncated');
  let sll: MacAddress | undefined;
  let tll: MacAddress | undefined;
  let mtu: number | undefined;
  const prefixes: PrefixInformation[] = [];
  // Options (RFC 4861 4.6): type, length in units of 8 bytes (0 is invalid: the whole message is dropped).
  for (let o = fixed; o < m.length; ) {
    if (o + 2 > m.length) return fail('truncated');
    const length = m[o + 1]! * 8;
    if (length === 0) return fail('bad_option_length');
    if (o + length > m.length) return fail('truncated');
    const t = m[o]!;
    if ((t === OPTION_SOURCE_LL || t === OPTION_TARGET_LL) && length >= 8) {
      const mac = MacAddress.fromBytes(m, o + 2);
      if (t === OPTION_SOURCE_LL) sll = mac;
      else tll = mac;
    } else if (t === OPTION_PREFIX && length === 32 && prefixes.length < 64) {
      const v = new DataView(m.buffer, m.byteOffset + o, 32);
      const prefixLength = m[o + 2]!;
      if (prefixLength <= 128) {
        prefixes.push({
          prefixLength,
          onLink: (m[o + 3]! & 0x80) !== 0,
          autonomous: (m[o + 3]! & 0x40) !== 0,
          validLifetime: v.getUint32(4),
          preferredLifetime: v.getUint32(8),
          prefix: Ipv6Address.fromBytes(m, o + 16),
        });
      }
    } else if (t === OPTION_MTU && length === 8) {
      mtu = new DataView(m.buffer, m.byteOffset + o, 8).getUint32(4);
    }
    o += length;
  }
  const d = new DataView(m.buffer, m.byteOffset, m.length);
  switch (type) {
    case 133:
      return ok({ kind: 'router-solicitation', sourceLinkLayer: sll });
    case 134:
      return ok({
        kind: 'router-advertisement',
        curHopLimit: m[4]!,
        managed: (m[5]! & 0x80) !== 0,
        other: (m[5]! & 0x40) !== 0,
        routerLifetime: d.getUint16(6),
        reachableTime: d.getUint32(8),
        retransTimer: d.getUint32(12),
        sourceLinkLayer: sll,
        mtu,
        prefixes,
      });
    case 135: {
      const target = Ipv6Address.fromBytes(m, 8);
      if (target.isMulticast) return fail('multicast_target');
      return ok({ kind: 'neighbour-solicitation', target, sourceLinkLayer: sll });
    }
    case 136: {
      const target = Ipv6Address.fromBytes(m, 8);
      if (target.isMulticast) return fail('multicast_target');
      return ok({ kind: 'neighbour-advertisement', router: (m[4]! & 0x80) !== 0, solicited: (m[4]! & 0x40) !== 0, override: (m[4]! & 0x20) !== 0, target, targetLinkLayer: tll });
    }
    default:
      return ok({ kind: 'redirect', target: Ipv6Address.fromBytes(m, 8), destination: Ipv6Address.fromBytes(m, 24) });
  }
}

/** Writes an NS, NA or RS (what a host sends) with its link-layer option; checksum left zero. */
export function encodeNdp(message: NdpMessage): Uint8Array {
  const linkOption = (type: number, mac: MacAddress | undefined): number[] => (mac ? [type, 1, ...mac.bytes] : []);
  switch (message.kind) {
    case 'router-solicitation':
      return new Uint8Array([133, 0, 0, 0, 0, 0, 0, 0, ...linkOption(OPTION_SOURCE_LL, message.sourceLinkLayer)]);
    case 'neighbour-solicitation':
      return new Uint8Array([135, 0, 0, 0, 0, 0, 0, 0, ...message.target.bytes, ...linkOption(OPTION_SOURCE_LL, message.sourceLinkLayer)]);
    case 'neighbour-advertisement': {
      const flags = (message.router ? 0x80 : 0) | (message.solicited ? 0x40 : 0) | (message.override ? 0x20 : 0);
      return new Uint8Array([136, 0, 0, 0, flags, 0, 0, 0, ...message.target.bytes, ...linkOption(OPTION_TARGET_LL, message.targetLinkLayer)]);
    }
    default:
      throw new Error(`a host does not send ${message.kind}`);
  }
}

/**
 * An MLDv2 report (RFC 3810 5.2) saying we are in `groups` (CHANGE_TO_EXCLUDE_MODE with no
 * sources, as Linux sends on a join), behind the hop-by-hop header with the router alert option
 * every MLD message carries (RFC 3810 5, RFC 2711). The ICMPv6 checksum is computed here: it
 * covers the pseudo-header with next header 58 and the MLD message's length, not the hop-by-hop
 * header in front of it.
 */
export function encodeMldv2Report(source: Ipv6Address, destination: Ipv6Address, groups: readonly Ipv6Address[]): Uint8Array {
  const hopByHop = [58, 0, 5, 2, 0, 0, 1, 0]; // next header ICMPv6, length 0 (8 bytes), router alert MLD, PadN
  const mld = new Uint8Array(8 + 20 * groups.length);
  mld[0] = 143;
  mld[7] = groups.length;
  groups.forEach((g, i) => {
    mld[8 + 20 * i] = 4; // CHANGE_TO_EXCLUDE_MODE
    mld.set(g.bytes, 8 + 20 * i + 4);
  });
  const checksum = ipv6UpperLayerChecksum(source, destination, 58, mld);
  mld[2] = checksum >>> 8;
  mld[3] = checksum & 0xff;
  const out = new Uint8Array(8 + mld.length);
  out.set(hopByHop);
  out.set(mld, 8);
  return out;
}
