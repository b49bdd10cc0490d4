/**
 * The ping client (what iputils' ping does, inside the stack): sessions of echo requests with an
 * identifier each, the replies and ICMP errors matched back to them, and the iputils-style summary.
 * The ICMP layer owns one and hands it what arrives for it (`echoReply`, `errorAbout`). The
 * session state, its bounds and its timers are ping-session.ts's, shared with ICMPv6's ping; what
 * is IPv4's is here: building and sending the request, reading an ICMP error's quote, and
 * iputils' words for the errors.
 */
import { IpProtocol, type Ipv4Layer, type Ipv4Packet } from '@tapstack/ipv4';
import type { Clock, Counters, Ipv4Address } from '@tapstack/link';
import { IcmpRepr, IcmpType, UnreachableCode, type IcmpPacket } from './packet.ts';
import type { PingError, PingOptions, PingReply, PingSummary } from './ping.ts';
import { EchoSessions, sendFailureMessage } from './ping-session.ts';
import type { IcmpCounterName, IcmpErrorReport } from './layer.ts';

export interface PingClientOptions {
  ipv4: Ipv4Layer;
  clock: Clock;
  /** The ICMP layer's counters (tx_echo_requests, tx_failed, rx_echo_replies, rx_echo_reply_unmatched). */
  counters: Counters<IcmpCounterName>;
  /** The first identifier tried (then counting up, skipping those in use). */
  firstIdentifier: number;
}

export class PingClient {
  private readonly ipv4: Ipv4Layer;
  private readonly counters: Counters<IcmpCounterName>;
  private readonly sessions: EchoSessions<Ipv4Address, PingReply, PingError>;

  constructor(options: PingClientOptions) {
    this.ipv4 = options.ipv4;
    this.counters = options.counters;
    this.sessions = new EchoSessions({
      clock: options.clock,
      counters: options.counters,
      firstIdentifier: options.firstIdentifier,
      protocol: 'ICMP',
      sameAddress: (a, b) => a === b,
      anyoneAnswers: (target) => this.ipv4.isBroadcast(target),
    });
  }

  /**
   * Pings `target`: `count` echo requests of `size` data bytes, `intervalMs` apart, then waits
   * up to `timeoutMs` for the rest of the replies. Resolves with the iputils-style summary
   * (print it with formatPingSummary). The first request to a neighbour not yet resolved waits
   * in ARP's queue and goes out with the reply, so it is not lost.
   */
  ping(target: Ipv4Address, options: PingOptions = {}): Promise<PingSummary> {
    const count = options.count ?? 4;
    const size = options.size ?? 56;
    if (!Number.isInteger(count) || count < 1) throw new RangeError('ping count must be a positive integer');
    if (!Number.isInteger(size) || size < 0 || size > 65507) throw new RangeError('ping size must be 0-65507 bytes');
    if (count > 65535) throw new RangeError('ping count is limited to 65535 (the sequence number space)');
    return this.sessions.start(target, count, size, options, (identifier, sequence, data) => {
      const message = IcmpRepr.build({ kind: 'echo-request', identifier, sequence, data });
      const outcome = this.ipv4.send({
        destination: target,
        protocol: IpProtocol.ICMP,
        payload: message,
        ...(options.ttl !== undefined ? { ttl: options.ttl } : {}),
      });
      if (outcome === 'sent' || outcome === 'queued') return undefined;
      return { sequence, from: this.ipv4.address.address, message: sendFailureMessage(outcome) };
    });
  }

  /** An echo reply arrived: match it to its session (identifier, sequence, source). */
  echoReply(packet: Ipv4Packet, message: IcmpPacket, identifier: number, sequence: number, data: Uint8Array): void {
    this.counters.inc('rx_echo_replies');
    this.sessions.reply(packet.source, identifier, sequence, message.bytes.length, data, (reply) => ({ ...reply, ttl: packet.ttl }));
  }

  /**
   * An ICMP error quoting `quotedMessage` (the ICMP part of a datagram we sent to `destination`):
   * if it is one of our echo requests, its session hears about it.
   */
  errorAbout(quotedMessage: Uint8Array, destination: Ipv4Address, from: Ipv4Address, kind: IcmpErrorReport['kind'], code: number): void {
    const p = quotedMessage;
    if (p.length < 8 || p[0] !== IcmpType.ECHO_REQUEST) return;
    const sequence = (p[6]! << 8) | p[7]!;
    this.sessions.error((p[4]! << 8) | p[5]!, sequence, destination, { sequence, from, message: describeError(kind, code) });
  }

  /** Ends every session (they resolve with what they have). */
  close(): void {
    this.sessions.close();
  }
}

function describeError(kind: IcmpErrorReport['kind'], code: number): string {
  if (kind === 'time-exceeded') return code === 0 ? 'Time to live exceeded' : 'Frag reassembly time exceeded';
  switch (code) {
    case UnreachableCode.NET:
      return 'Destination Net Unreachable';
    case UnreachableCode.HOST:
      return 'Destination Host Unreachable';
    case UnreachableCode.PROTOCOL:
      return 'Destination Protocol Unreachable';
    case UnreachableCode.PORT:
      return 'Destination Port Unreachable';
    case UnreachableCode.FRAGMENTATION_NEEDED:
      return 'Frag needed and DF set';
    default:
      return `Destination Unreachable, code ${code}`;
  }
}
