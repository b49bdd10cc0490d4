/**
 * ICMPv6 for a host (RFC 4443): answers echo requests (ping -6), hands Neighbour Discovery
 * messages (types 133-137) to NDP, reports the errors the IPv6 layer finds (it installs itself as
 * IPv6's error reporter), tells listeners about errors that arrive (a Packet Too Big lowers the
 * path MTU, RFC 8201), and runs ping sessions (ping6-client.ts).
 *
 * When an error may be sent is RFC 4443 2.4 (e): never about
 *  - an ICMPv6 error message or a redirect (e.1),
 *  - a packet to a multicast address (e.2) or one that came in a link-layer multicast or broadcast
 *    frame (e.3), except Packet Too Big and parameter problem code 2 (an unknown option the
 *    sender asked to hear about), which path MTU discovery and option processing need,
 *  - a packet whose source does not name one node: ::, a multicast address (e.4-e.6).
 * Errors that pass are limited as ICMPv4's are, with the same token buckets (rate-limit.ts of
 * @tapstack/icmp): host-wide 1000/s burst 50, and per peer a burst of 6 then one a second. Packet
 * Too Big is not limited (Linux's icmpv6_ratemask leaves type 2 out), nor are echo replies.
 *
 * Unlike ICMPv4, the checksum covers the IPv6 pseudo-header (RFC 4443 2.3): the addresses are
 * protected, so a reply built in the request's frame keeps a valid sum only because swapping
 * source and destination does not change a one's complement sum.
 */
import debugFactory from 'debug';
import { Counters, Ipv6Address, MacAddress, type Clock } from '@tapstack/link';
import { Icmpv6Repr, Icmpv6Type, quoteInvokingPacket } from './packet.ts';
import { checksumAdd, foldChecksum, updateChecksum } from '@tapstack/ipv4';
import {
  DEFAULT_ERROR_RATE_LIMIT,
  DEFAULT_PEER_RATE_LIMIT,
  PeerRateLimiter,
  TokenBucket,
  type RateLimit,
} from '@tapstack/icmp';
import {
  IPV6_HEADER_LENGTH,
  Ipv6Packet,
  ipv6PseudoHeaderSumAt,
  type Ipv6DeliveryInfo,
  type Ipv6ErrorContext,
  type Ipv6ErrorKind,
  type Ipv6ErrorReporter,
  type Ipv6Layer,
  type Ipv6SendOutcome,
} from '@tapstack/ipv6';
import { Ping6Client, type Ping6Options, type Ping6Summary } from './ping6-client.ts';

const log = debugFactory('tapstack:icmpv6');

const Type = {
  ...Icmpv6Type,
  MLD_QUERY: Icmpv6Type.MULTICAST_LISTENER_QUERY,
  MLDV1_REPORT: Icmpv6Type.MULTICAST_LISTENER_REPORT_V1,
  MLDV1_DONE: Icmpv6Type.MULTICAST_LISTENER_DONE,
  MLDV2_REPORT: Icmpv6Type.MULTICAST_LISTENER_REPORT_V2,
} as const;

export const ICMPV6_COUNTERS = [
  'rx_messages',
  'rx_truncated',
  'rx_bad_checksum',
  'rx_echo_requests',
  'rx_echo_replies',
  'rx_echo_reply_unmatched',
  'rx_ndp',
  'rx_ndp_no_handler',
  'rx_mld_queries',
  'rx_mld_ignored',
  'rx_errors',
  'rx_error_bad_quote',
  'rx_packet_too_big',
  'rx_unknown_informational',
  'tx_echo_replies',
  'tx_echo_requests',
  'tx_errors',
  'tx_error_local',
  'tx_error_about_error',
  'tx_error_about_group',
  'tx_error_about_bad_source',
  'tx_error_rate_limited_global',
  'tx_error_rate_limited_host',
  'tx_failed',
] as const;
export type Icmpv6CounterName = (typeof ICMPV6_COUNTERS)[number];

/** An error this host sends (RFC 4443 3): the kind, its code, and the field after the checksum. */
export type Icmpv6Error =
  /** code 0 no route, 1 prohibited, 3 address unreachable, 4 port unreachable */
  | { kind: 'destination-unreachable'; code: number }
  | { kind: 'packet-too-big'; mtu: number }
  /** code 0 hop limit exceeded, 1 fragment reassembly time exceeded */
  | { kind: 'time-exceeded'; code: number }
  /** code 0 erroneous header field, 1 unknown next header, 2 unknown option; pointer: the byte's offset */
  | { kind: 'parameter-problem'; code: number; pointer: number };


/** An error received (or found locally), as upper layers see it. */
export interface Icmpv6ErrorReport {
  readonly kind: Icmpv6Error['kind'];
  readonly code: number;
  /** MTU (packet too big) or pointer (parameter problem), else 0. */
  readonly parameter: number;
  readonly from: Ipv6Address;
  /** The quoted packet's addresses and next header, and the bytes after its fixed header. */
  readonly original: { readonly source: Ipv6Address; readonly destination: Ipv6Address; readonly nextHeader: number; readonly payload: Uint8Array };
  readonly local: boolean;
}
export type Icmpv6ErrorListener = (error: Icmpv6ErrorReport) => void;

/**
 * Receives the NDP messages (types 133-137): NDP parses and validates them (Ndp.input). IPv6's
 * handler contract goes on up: `packet` is IPv6's one view, re-pointed at the next packet, so
 * keep what is read from it (addresses, the hop limit), not it; `message` is a view of the bytes.
 */
export type NdpMessageHandler = (packet: Ipv6Packet, message: Uint8Array, linkSource: MacAddress | undefined) => void;

/** Receives MLD queries (type 130): the host's listener part of MLD answers them (@tapstack/ndp). `packet` as for NDP. */
/** `routerAlert`: the packet's router alert value (Ipv6DeliveryInfo.routerAlert), which a query must carry. */
export type MldQueryHandler = (packet: Ipv6Packet, message: Uint8Array, routerAlert: number | undefined) => void;

export type Icmpv6ErrorOutcome = Ipv6SendOutcome | 'about_error' | 'about_group' | 'about_bad_source' | 'rate_limited_global' | 'rate_limited_host';

export interface Icmpv6LayerOptions {
  ipv6: Ipv6Layer;
  clock: Clock;
  errorRateLimit?: Partial<RateLimit>;
  /** Milliseconds per error to one peer after its burst of 6 (Linux's icmpv6 ratelimit, default 1000; 0: off). */
  icmpRatelimit?: number;
  random?: () => number;
}

/** The byte after the fixed header where a message's type sits, when the next header is 58. */
const ICMPV6 = 58;

export class Icmpv6Layer implements Ipv6ErrorReporter {
  readonly counters = new Counters<Icmpv6CounterName>('icmpv6', ICMPV6_COUNTERS);
  private readonly rxMessages = this.counters.counter('rx_messages');
  private readonly rxEchoRequests = this.counters.counter('rx_echo_requests');
  private readonly txEchoReplies = this.counters.counter('tx_echo_replies');
  private readonly ipv6: Ipv6Layer;
  private readonly bucket: TokenBucket;
  private readonly peerLimiter: PeerRateLimiter<string>;
  private readonly errorListeners: Icmpv6ErrorListener[] = [];
  private readonly pinger: Ping6Client;
  private ndp: NdpMessageHandler | undefined;
  private mldQuery: MldQueryHandler | undefined;
  private closed = false;

  constructor(options: Icmpv6LayerOptions) {
    this.ipv6 = options.ipv6;
    this.bucket = new TokenBucket(options.clock, { ...DEFAULT_ERROR_RATE_LIMIT, ...options.errorRateLimit });
    this.peerLimiter = new PeerRateLimiter<string>(options.clock, { icmpRatelimit: options.icmpRatelimit ?? DEFAULT_PEER_RATE_LIMIT.icmpRatelimit, maxPeers: DEFAULT_PEER_RATE_LIMIT.maxPeers });
    this.pinger = new Ping6Client({
      ipv6: this.ipv6,
      clock: options.clock,
      counters: this.counters,
      firstIdentifier: Math.floor((options.random ?? Math.random)() * 0x10000) & 0xffff,
    });
    this.ipv6.register(ICMPV6, (packet, info) => this.input(packet, info), { multicast: true });
    this.ipv6.setErrorReporter(this);
  }

  /** NDP registers here for types 133-137 (Ndp is built on top of this layer and IPv6). */
  setNdpHandler(handler: NdpMessageHandler | undefined): void {
    this.ndp = handler;
  }

  /** The MLD host registers here for queries (type 130); reports from other listeners are not a host's business. */
  setMldQueryHandler(handler: MldQueryHandler | undefined): void {
    this.mldQuery = handler;
  }

  /** Listens for ICMPv6 errors, received or local (a failed neighbour resolution). */
  onError(listener: Icmpv6ErrorListener): void {
    this.errorListeners.push(listener);
  }

  // ---------------------------------------------------------------------------------------
  // Receive

  /**
   * IPv6's handler (its allocation-free contract: `packet` and `info` are re-pointed at the next
   * packet, the bytes are ours). The checksum and an echo request are handled where the message
   * lies; the rarer messages get a view of it of their own.
   */
  private input(packet: Ipv6Packet, info: Ipv6DeliveryInfo): void {
    const c = this.counters;
    this.rxMessages.value++;
    const b = packet.buffer;
    const start = packet.start + info.payloadOffset;
    const end = packet.end;
    if (end - start < 4) return c.inc('rx_truncated');
    // RFC 4443 2.3: the sum over the pseudo-header and the whole message must come out as 0xffff.
    const sum = checksumAdd(b, ipv6PseudoHeaderSumAt(b, packet.sourceOffset, ICMPV6, end - start), start, end);
    if (foldChecksum(sum) !== 0xffff) return c.inc('rx_bad_checksum');
    const type = b[start]!;
    if (type === Type.ECHO_REQUEST) return this.answerEcho(packet, start, info);
    const message = b.subarray(start, end);
    if (type === Type.ECHO_REPLY) {
      if (message.length < 8) return c.inc('rx_truncated');
      c.inc('rx_echo_replies');
      return this.pinger.echoReply(packet, message);
    }
    if (type >= Type.ROUTER_SOLICITATION && type <= Type.REDIRECT) {
      c.inc('rx_ndp');
      if (!this.ndp) return c.inc('rx_ndp_no_handler');
      const linkSource = info.frame ? linkSourceOf(info.frame) : undefined;
      return this.ndp(packet, message, linkSource);
    }
    if (type === Type.MLD_QUERY && this.mldQuery) {
      c.inc('rx_mld_queries');
      return this.mldQuery(packet, message, info.routerAlert);
    }
    // RFC 3810 6: an MLDv2 host ignores other hosts' reports (there is no report suppression in v2).
    if (type === Type.MLD_QUERY || type === Type.MLDV1_REPORT || type === Type.MLDV1_DONE || type === Type.MLDV2_REPORT) {
      return c.inc('rx_mld_ignored');
    }
    if (type < 128) return this.errorReceived(type, message, packet.source);
    c.inc('rx_unknown_informational'); // RFC 4443 2.4 (b): silently discarded
  }

  /**
   * Echo reply (RFC 4443 4.2): the request's message with type 128 made 129. To a request for one
   * of our addresses that came in one frame, the reply is built in that frame: the checksum is
   * updated for the one changed word (RFC 1624), since swapping the addresses does not change the
   * pseudo-header's sum. To a multicast request the source must be one of our unicast addresses,
   * so the reply is a new packet with its checksum computed over the new pseudo-header.
   */
  /** The in-place reply's send request, one rewritten per echo (sendInPlace reads it during the call only). */
  private readonly echoReplyRequest = { destination: Ipv6Address.UNSPECIFIED, source: Ipv6Address.UNSPECIFIED, nextHeader: ICMPV6 };

  private answerEcho(request: Ipv6Packet, start: number, info: Ipv6DeliveryInfo): void {
    this.rxEchoRequests.value++;
    const b = request.buffer;
    const end = request.end;
    const so = request.sourceOffset;
    // an unspecified (::) or multicast source gets no reply, read from the bytes
    if (b[so] === 0xff || isUnspecifiedAt(b, so)) return this.counters.inc('tx_error_about_bad_source');
    const destination = request.source;
    let outcome: Ipv6SendOutcome;
    const frame = info.frame;
    if (info.destinationKind === 'unicast' && frame !== undefined && info.payloadOffset === IPV6_HEADER_LENGTH) {
      const source = request.destination; // read before the header is rewritten
      const checksum = updateChecksum((b[start + 2]! << 8) | b[start + 3]!, Type.ECHO_REQUEST << 8, Type.ECHO_REPLY << 8);
      b[start] = Type.ECHO_REPLY;
      b[start + 2] = checksum >>> 8;
      b[start + 3] = checksum & 0xff;
      const reply = this.echoReplyRequest;
      reply.destination = destination;
      reply.source = source;
      outcome = this.ipv6.sendInPlace(frame.length === end ? frame : frame.subarray(0, end), reply);
    } else {
      const source = info.destinationKind === 'unicast' ? request.destination : this.ipv6.sourceFor(destination);
      const reply = b.slice(start, end);
      reply[0] = Type.ECHO_REPLY;
      reply[2] = 0;
      reply[3] = 0;
      outcome = this.ipv6.send({ destination, ...(source ? { source } : {}), nextHeader: ICMPV6, payload: reply, checksumOffset: 2 });
    }
    if (outcome === 'sent' || outcome === 'queued') this.txEchoReplies.value++;
    else this.counters.inc('tx_failed');
  }

  private errorReceived(type: number, message: Uint8Array, from: Ipv6Address): void {
    const c = this.counters;
    c.inc('rx_errors');
    if (message.length < 8 + IPV6_HEADER_LENGTH) return c.inc('rx_error_bad_quote');
    const quoted = Ipv6Packet.checkHeader(message.subarray(8));
    if (!quoted.ok) return c.inc('rx_error_bad_quote');
    const q = quoted.value;
    const parameter = ((message[4]! << 24) | (message[5]! << 16) | (message[6]! << 8) | message[7]!) >>> 0;
    const kind: Icmpv6Error['kind'] =
      type === Type.DESTINATION_UNREACHABLE ? 'destination-unreachable' : type === Type.PACKET_TOO_BIG ? 'packet-too-big' : type === Type.TIME_EXCEEDED ? 'time-exceeded' : 'parameter-problem';
    if (type > Type.PARAMETER_PROBLEM) return; // an unknown error type: nothing to tell (RFC 4443 2.4 b)
    const original = { source: q.source, destination: q.destination, nextHeader: q.nextHeader, payload: q.payload };
    if (kind === 'packet-too-big') {
      c.inc('rx_packet_too_big');
      // RFC 8201 4: only about packets we sent; the layer never goes below 1280 nor above the link.
      if (this.ipv6.addresses.get(original.source)) this.ipv6.updatePathMtu(original.destination, parameter);
    }
    this.tell({ kind, code: message[1]!, parameter: kind === 'destination-unreachable' || kind === 'time-exceeded' ? 0 : parameter, from, original, local: false });
  }

  private tell(report: Icmpv6ErrorReport): void {
    if (log.enabled) log('error %s code %d from %s about %s', report.kind, report.code, report.from.toString(), report.original.destination.toString());
    for (const l of this.errorListeners) {
      try {
        l(report);
      } catch (err) {
        log('error listener threw: %O', err);
      }
    }
    if (report.original.nextHeader === ICMPV6) this.pinger.errorAbout(report);
  }

  // ---------------------------------------------------------------------------------------
  // Errors we send

  /** IPv6's hook: errors found below us. */
  report(kind: Ipv6ErrorKind, packet: Uint8Array, context: Ipv6ErrorContext): void {
    if (kind === 'parameter-problem') {
      this.sendError({ kind: 'parameter-problem', code: context.code ?? 0, pointer: context.pointer ?? 0 }, packet, context);
    } else if (kind === 'reassembly-timeout') {
      this.sendError({ kind: 'time-exceeded', code: 1 }, packet, context);
    } else {
      // Our own packet could not be delivered (NDP failed): tell whoever here sent it, not the wire.
      this.counters.inc('tx_error_local');
      const checked = Ipv6Packet.checkHeader(packet);
      if (!checked.ok) return;
      const p = checked.value;
      this.tell({
        kind: 'destination-unreachable',
        code: 3, // address unreachable
        parameter: 0,
        from: p.source,
        original: { source: p.source, destination: p.destination, nextHeader: p.nextHeader, payload: p.payload },
        local: true,
      });
    }
  }

  /**
   * Sends an ICMPv6 error about `packet` (its fixed header and what follows) to its source, if
   * RFC 4443 2.4 (e) allows it and the rate limit has a token. UDP will use this for port
   * unreachable.
   */
  sendError(error: Icmpv6Error, packet: Uint8Array, context: { linkGroup?: boolean; destinationKind?: Ipv6DeliveryInfo['destinationKind'] } = {}): Icmpv6ErrorOutcome {
    const c = this.counters;
    const checked = Ipv6Packet.checkHeader(packet);
    if (!checked.ok) {
      c.inc('tx_error_about_bad_source');
      return 'about_bad_source';
    }
    const p = checked.value;
    const source = p.source;
    // (e.4-e.6) the source must name one node
    if (source.isUnspecified || source.isMulticast || source.isLoopback) {
      c.inc('tx_error_about_bad_source');
      return 'about_bad_source';
    }
    // (e.2, e.3) not about group traffic, except what path MTU discovery and option processing need
    const exempt = error.kind === 'packet-too-big' || (error.kind === 'parameter-problem' && error.code === 2);
    if (!exempt && (context.linkGroup || context.destinationKind === 'multicast' || p.destinationIsMulticast)) {
      c.inc('tx_error_about_group');
      return 'about_group';
    }
    // (e.1) not about an error message or a redirect (the fixed header's next header only: a
    // quote too short to show the type is treated as an error, and left alone)
    if (p.nextHeader === ICMPV6) {
      const type = packet.length > IPV6_HEADER_LENGTH ? packet[IPV6_HEADER_LENGTH]! : -1;
      if (type < 128 || type === Type.REDIRECT) {
        c.inc('tx_error_about_error');
        return 'about_error';
      }
    }
    if (error.kind !== 'packet-too-big') {
      if (!this.bucket.available()) {
        c.inc('tx_error_rate_limited_global');
        return 'rate_limited_global';
      }
      if (!this.ipv6.addresses.isAssigned(source) && !this.peerLimiter.allow(source.key)) {
        c.inc('tx_error_rate_limited_host');
        return 'rate_limited_host';
      }
      this.bucket.consume();
    }
    const invoking = quoteInvokingPacket(packet);
    const repr: Icmpv6Repr =
      error.kind === 'packet-too-big'
        ? { kind: 'packet-too-big', mtu: error.mtu, invoking }
        : error.kind === 'parameter-problem'
          ? { kind: 'parameter-problem', code: error.code, pointer: error.pointer, invoking }
          : { kind: error.kind, code: error.code, invoking };
    // RFC 4443 2.2: from the address the packet was sent to when that is ours, else our best source.
    const destination = p.destination;
    const from = this.ipv6.addresses.isAssigned(destination) ? destination : this.ipv6.sourceFor(source);
    // Built with a zero checksum: the IPv6 layer fills it in once it has chosen the source.
    const message = Icmpv6Repr.build(repr, Ipv6Address.UNSPECIFIED, Ipv6Address.UNSPECIFIED);
    const outcome = this.ipv6.send({ destination: source, ...(from ? { source: from } : {}), nextHeader: ICMPV6, payload: message, checksumOffset: 2 });
    c.inc(outcome === 'sent' || outcome === 'queued' ? 'tx_errors' : 'tx_failed');
    return outcome;
  }

  // ---------------------------------------------------------------------------------------
  // Ping

  /** Pings `target` over IPv6, like `ping -6`; resolves with the iputils-style summary. */
  ping(target: Ipv6Address, options: Ping6Options = {}): Promise<Ping6Summary> {
    if (this.closed) throw new Error('ICMPv6 layer is closed');
    return this.pinger.ping(target, options);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ipv6.unregister(ICMPV6);
    this.ipv6.setErrorReporter(undefined);
    this.peerLimiter.clear();
    this.pinger.close();
  }
}

/** The Ethernet source of a frame (bytes 6-11). */
function linkSourceOf(frame: Uint8Array): MacAddress | undefined {
  return frame.length >= 14 ? MacAddress.fromBytes(frame.subarray(6, 12)) : undefined;
}

/** The unspecified address (::) at `bytes[offset]`, read without making an address. */
function isUnspecifiedAt(bytes: Uint8Array, offset: number): boolean {
  for (let i = 0; i < 16; i++) if (bytes[offset + i] !== 0) return false;
  return true;
}
