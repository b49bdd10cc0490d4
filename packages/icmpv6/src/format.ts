/**
 * One-line, tcpdump-like descriptions of ICMPv6 messages and of whole IPv6 packets carrying them,
 * for the stack's --trace:
 *   IP6 fd00:10::1 > fd00:10::2: ICMP6, echo request, id 5, seq 1, length 64
 *   IP6 fd00:10::1 > ff02::1:ff00:2: ICMP6, neighbor solicitation, who has fd00:10::2, length 32
 * Never throws: malformed input is described, with its reason.
 */
import {
  formatIpv6Packet,
  IPV6_FRAGMENT_HEADER_LENGTH,
  IpNextHeader,
  ipNextHeaderName,
  Ipv6FragmentRepr,
  Ipv6Packet,
  walkExtensionHeaders,
  type ExtensionHeaderVisit,
} from '@tapstack/ipv6';
import type { Ipv6Address } from '@tapstack/link';
import { describeMldQuery, describeMldReport, MldQueryRepr, MldReportRepr } from './mld.ts';
import { describeNdisc, isNdiscType, NdiscRepr } from './ndisc.ts';
import { describeIcmpv6, Icmpv6Packet, Icmpv6Repr, Icmpv6Type } from './packet.ts';

/**
 * `ICMP6, <message>, length <n>`. With the addresses the checksum is verified too, and a wrong
 * one is shown as ` (bad cksum)`.
 */
export function formatIcmpv6(bytes: Uint8Array, source?: Ipv6Address, destination?: Ipv6Address): string {
  const checked = Icmpv6Packet.check(bytes);
  if (!checked.ok) return `ICMP6 [truncated, length ${bytes.length}]`;
  const p = checked.value;
  const bad = source && destination && !p.verifyChecksum(source, destination) ? ' (bad cksum)' : '';
  return `ICMP6, ${describeMessage(p)}, length ${bytes.length}${bad}`;
}

function describeMessage(p: Icmpv6Packet): string {
  if (isNdiscType(p.type)) {
    const ndisc = NdiscRepr.parse(p);
    return ndisc.ok ? describeNdisc(ndisc.value) : `${NDISC_NAMES[p.type - Icmpv6Type.ROUTER_SOLICITATION]} [${ndisc.reason}]`;
  }
  if (p.type === Icmpv6Type.MULTICAST_LISTENER_REPORT_V2) {
    const report = MldReportRepr.parse(p);
    return report.ok ? describeMldReport(report.value) : `multicast listener report v2 [${report.reason}]`;
  }
  if (p.type === Icmpv6Type.MULTICAST_LISTENER_QUERY) {
    const query = MldQueryRepr.parse(p);
    return query.ok ? describeMldQuery(query.value) : `multicast listener query [${query.reason}]`;
  }
  const parsed = Icmpv6Repr.parse(p);
  if (parsed.ok) return describeIcmpv6(parsed.value);
  return `type ${p.type} code ${p.code}`;
}

const NDISC_NAMES = ['router solicitation', 'router advertisement', 'neighbor solicitation', 'neighbor advertisement', 'redirect'];

/**
 * Describes an upper-layer message above IPv6 (UDP, TCP, ...) with its addresses, tcpdump style:
 * `fd00:10::1.45645 > fd00:10::2.7: UDP, length 3`; undefined for a next header it does not know.
 */
export type Ipv6UpperLayerDescriber = (nextHeader: number, message: Uint8Array, source: Ipv6Address, destination: Ipv6Address) => string | undefined;

/**
 * A whole IPv6 packet (from its header on) in one line, ICMPv6 decoded, and the upper layers
 * `upper` knows. Those print the addresses themselves, with the ports (as tcpdump does for UDP
 * and TCP): `IP6 fd00:10::1.45645 > fd00:10::2.7: UDP, length 3`, the extension headers named first.
 */
export function formatIpv6Datagram(bytes: Uint8Array, upper?: Ipv6UpperLayerDescriber): string {
  if (upper) {
    const checked = Ipv6Packet.check(bytes);
    if (checked.ok) {
      const packet = checked.value;
      const walk = walkExtensionHeaders(packet, { isUpperLayer: () => true });
      if (walk.kind === 'upper-layer' && walk.nextHeader !== IpNextHeader.ICMPV6) {
        const line = upper(walk.nextHeader, packet.bytes.subarray(walk.offset), packet.source, packet.destination);
        if (line !== undefined) return `IP6 ${headerNames(walk.headers)}${line}`;
      }
    }
  }
  return formatIpv6Packet(bytes, describeIpv6Payload);
}

/**
 * What follows the fixed header, tcpdump's way: the extension headers by name (`HBH`, `DSTOPT`,
 * `srcrt`), a fragment as `frag (offset|length)` followed by the start of the message when it is
 * the first, then the upper layer.
 */
function describeIpv6Payload(packet: Ipv6Packet): string | undefined {
  const walk = walkExtensionHeaders(packet, { isUpperLayer: () => true });
  const bytes = packet.bytes;
  switch (walk.kind) {
    case 'error':
      return `[${walk.reason}], length ${packet.payloadLength}`;
    case 'no-next-header':
      return `${headerNames(walk.headers)}no next header, length ${packet.payloadLength}`;
    case 'fragment': {
      const f = Ipv6FragmentRepr.parse(bytes, walk.offset);
      if (!f.ok) return `frag [truncated], length ${packet.payloadLength}`;
      const dataStart = walk.offset + IPV6_FRAGMENT_HEADER_LENGTH;
      const head = `${headerNames(walk.headers.slice(0, -1))}frag (${f.value.offset}|${bytes.length - dataStart})`;
      if (f.value.offset !== 0) return head;
      const data = bytes.subarray(dataStart);
      // Only the start of the message is here: describe it without its checksum.
      return f.value.nextHeader === IpNextHeader.ICMPV6 ? `${head} ${formatIcmpv6(data)}` : `${head} ${ipNextHeaderName(f.value.nextHeader)}`;
    }
    case 'upper-layer': {
      const message = bytes.subarray(walk.offset);
      const names = headerNames(walk.headers);
      if (walk.nextHeader === IpNextHeader.ICMPV6) return `${names}${formatIcmpv6(message, packet.source, packet.destination)}`;
      return `${names}${ipNextHeaderName(walk.nextHeader)}, length ${message.length}`;
    }
  }
}

function headerNames(headers: readonly ExtensionHeaderVisit[]): string {
  let out = '';
  for (const h of headers) {
    out += h.type === IpNextHeader.HOP_BY_HOP ? 'HBH ' : h.type === IpNextHeader.ROUTING ? 'srcrt ' : h.type === IpNextHeader.FRAGMENT ? 'frag ' : 'DSTOPT ';
  }
  return out;
}
