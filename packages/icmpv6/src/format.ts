/**
 * One-line, tcpdump-like descriptions of ICMPv6 messages and of whole IPv6 packets carrying them,
 * for the stack's --trace:
 *   IP6 fd00:10::1 > fd00:10::2: ICMP6, echo request, id 5, seq 1, length 64
 *   IP6 fd00:10::1 > ff02::1:ff00:2: ICMP6, neighbor solicitation, who has fd00:10::2, length 32
 * Never throws: malformed input is described, with its reason.
 */
import { formatIpv6Packet, IpNextHeader, type Ipv6Packet } from '@tapstack/ipv6';
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

/** A whole IPv6 packet (from its header on) in one line, ICMPv6 decoded. */
export function formatIpv6Datagram(bytes: Uint8Array): string {
  return formatIpv6Packet(bytes, describeIpv6Payload);
}

function describeIpv6Payload(packet: Ipv6Packet): string | undefined {
  if (packet.nextHeader !== IpNextHeader.ICMPV6) return undefined;
  return formatIcmpv6(packet.payload, packet.source, packet.destination);
}
