/**
 * `ping -6` inside the stack: sessions of ICMPv6 echo requests (RFC 4443 4.1), each with its
 * identifier, the replies and errors matched back to them, and iputils' summary. The sessions
 * themselves are @tapstack/icmp's (ping-session.ts, shared with the IPv4 client); what is IPv6's
 * is here: the address type, the hop limit in place of the TTL, the echo request built with its
 * checksum left to the IPv6 layer (it covers the pseudo-header, so it needs the source address
 * the layer chooses), and iputils' words for ICMPv6 errors.
 */
import { echoRest, EchoSessions, formatEchoReply, formatEchoSummary, type EchoError, type EchoOptions, type EchoReply, type EchoSummary, sendFailureMessage, writeIcmpHeader } from '@tapstack/icmp';
import type { Clock, Counters, Ipv6Address } from '@tapstack/link';
import type { Ipv6Layer, Ipv6Packet } from '@tapstack/ipv6';
import type { Icmpv6CounterName, Icmpv6ErrorReport } from './layer.ts';
import { Icmpv6Type } from './packet.ts';

export interface Ping6Options extends EchoOptions<Ping6Reply, Ping6Error> {
  hopLimit?: number;
}

export interface Ping6Reply extends EchoReply<Ipv6Address> {
  readonly hopLimit: number;
}

export interface Ping6Error extends EchoError {
  /** Who reported it; undefined for a request that could not be sent. */
  readonly from: Ipv6Address | undefined;
}

export type Ping6Summary = EchoSummary<Ipv6Address, Ping6Reply, Ping6Error>;

export class Ping6Client {
  private readonly sessions: EchoSessions<Ipv6Address, Ping6Reply, Ping6Error>;

  constructor(private readonly options: { ipv6: Ipv6Layer; clock: Clock; counters: Counters<Icmpv6CounterName>; firstIdentifier: number }) {
    this.sessions = new EchoSessions({
      clock: options.clock,
      counters: options.counters,
      firstIdentifier: options.firstIdentifier,
      protocol: 'ICMPv6',
      sameAddress: (a, b) => a.equals(b),
      anyoneAnswers: (target) => target.isMulticast,
    });
  }

  ping(target: Ipv6Address, options: Ping6Options = {}): Promise<Ping6Summary> {
    const { ipv6 } = this.options;
    const count = options.count ?? 4;
    const size = options.size ?? 56;
    if (!Number.isInteger(count) || count < 1 || count > 65535) throw new RangeError('ping count must be 1-65535');
    if (!Number.isInteger(size) || size < 0 || size > 65519) throw new RangeError('ping -6 size must be 0-65519 bytes');
    return this.sessions.start(target, count, size, options, (identifier, sequence, data) => {
      const message = new Uint8Array(8 + size);
      // The checksum is left 0 for the IPv6 layer to fill in.
      writeIcmpHeader(message, 0, Icmpv6Type.ECHO_REQUEST, 0, echoRest(identifier, sequence));
      message.set(data, 8);
      const outcome = ipv6.send({ destination: target, nextHeader: 58, payload: message, checksumOffset: 2, ...(options.hopLimit !== undefined ? { hopLimit: options.hopLimit } : {}) });
      if (outcome === 'sent' || outcome === 'queued') return undefined;
      return { sequence, from: undefined, message: sendFailureMessage(outcome) };
    });
  }

  /** An echo reply (RFC 4443 4.2): matched by identifier, sequence and source. */
  echoReply(packet: Ipv6Packet, message: Uint8Array): void {
    const identifier = (message[4]! << 8) | message[5]!;
    const sequence = (message[6]! << 8) | message[7]!;
    this.sessions.reply(packet.source, identifier, sequence, message.length, message.subarray(8), (reply) => ({ ...reply, hopLimit: packet.hopLimit }));
  }

  /** An ICMPv6 error quoting one of our echo requests. */
  errorAbout(report: Icmpv6ErrorReport): void {
    const p = report.original.payload;
    if (p.length < 8 || p[0] !== Icmpv6Type.ECHO_REQUEST) return;
    const sequence = (p[6]! << 8) | p[7]!;
    this.sessions.error((p[4]! << 8) | p[5]!, sequence, report.original.destination, { sequence, from: report.from, message: describeError(report) });
  }

  close(): void {
    this.sessions.close();
  }
}

/** iputils' words for ICMPv6 errors (ping6_common.c). */
function describeError(report: Icmpv6ErrorReport): string {
  switch (report.kind) {
    case 'destination-unreachable':
      return ['Destination unreachable: No route', 'Destination unreachable: Administratively prohibited', 'Destination unreachable: Beyond scope of source address', 'Destination unreachable: Address unreachable', 'Destination unreachable: Port unreachable'][report.code] ?? `Destination unreachable: Unknown code ${report.code}`;
    case 'packet-too-big':
      return `Packet too big: mtu=${report.parameter}`;
    case 'time-exceeded':
      return report.code === 0 ? 'Time exceeded: Hop limit' : 'Time exceeded: Defragmentation failure';
    case 'parameter-problem':
      return `Parameter problem: code ${report.code} at ${report.parameter}`;
  }
}

/** `64 bytes from fd00:10::1: icmp_seq=1 ttl=64 time=0.052 ms` (iputils prints the hop limit as ttl). */
export function formatPing6Reply(reply: Ping6Reply): string {
  return formatEchoReply(reply, reply.from.toString(), reply.hopLimit);
}

export function formatPing6Error(error: Ping6Error): string {
  return `From ${error.from?.toString() ?? 'this host'} icmp_seq=${error.sequence} ${error.message}`;
}

export function formatPing6Summary(s: Ping6Summary): string {
  return formatEchoSummary(s, s.target.toString());
}
