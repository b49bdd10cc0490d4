/**
 * The IPv4 ping client's types and its iputils-style output. The session logic is shared with
 * ICMPv6's ping (ping-session.ts); IcmpLayer (`icmp.ping`) owns the echo identifiers; this file
 * only says what an IPv4 ping takes and returns, and how it prints.
 */
import { formatIpv4, type Ipv4Address } from '@tapstack/link';
import { formatEchoReply, formatEchoSummary, type EchoError, type EchoOptions, type EchoReply, type EchoSummary } from './ping-session.ts';

export interface PingOptions extends EchoOptions<PingReply, PingError> {
  /** TTL of the requests (default the IPv4 layer's). */
  ttl?: number;
}

export interface PingReply extends EchoReply<Ipv4Address> {
  readonly ttl: number;
}

export interface PingError extends EchoError {
  /** Who reported it (our own address for local errors such as a failed ARP resolution). */
  readonly from: Ipv4Address;
}

export type PingSummary = EchoSummary<Ipv4Address, PingReply, PingError>;

/** `64 bytes from 10.0.0.1: icmp_seq=1 ttl=64 time=0.052 ms` */
export function formatPingReply(reply: PingReply): string {
  return formatEchoReply(reply, formatIpv4(reply.from), reply.ttl);
}

/** `From 10.0.0.2 icmp_seq=1 Destination Host Unreachable` */
export function formatPingError(error: PingError): string {
  return `From ${formatIpv4(error.from)} icmp_seq=${error.sequence} ${error.message}`;
}

/**
 * The iputils summary:
 *
 *   --- 10.0.0.1 ping statistics ---
 *   5 packets transmitted, 5 received, 0% packet loss, time 4005ms
 *   rtt min/avg/max/mdev = 0.041/0.063/0.092/0.017 ms
 */
export function formatPingSummary(summary: PingSummary): string {
  return formatEchoSummary(summary, formatIpv4(summary.target));
}
