/**
 * The UDP layer (RFC 768, RFC 1122 section 4.1): protocol 17 in IPv4's dispatch table, and next
 * header 17 in IPv6's when the stack has IPv6 (RFC 8200 8.1), both feeding the same sockets.
 *
 * Receive: check the header and the length field against the IP payload (shorter: drop;
 * longer: trim, as Linux does), verify the checksum when one was sent, then find the socket
 * bound to the destination port (exact address first, then the wildcard) and queue the
 * datagram there. Nobody listening: a unicast datagram gets an ICMP port unreachable (through
 * ICMP's error generation, which applies RFC 1122's rules and the rate limit); a broadcast one is
 * dropped silently. Every drop is counted under its reason, in the spirit of Linux's
 * /proc/net/snmp `Udp:` line (InCsumErrors, NoPorts, RcvbufErrors, IgnoredMulti, ...).
 *
 * Send: a socket's datagram is written straight into the outgoing frame by IPv4 (no extra
 * copy), checksum computed over the pseudo-header; IPv4 fragments it when it exceeds the MTU.
 *
 * IPv6 is the same walk with three differences: the checksum covers IPv6's pseudo-header and is
 * mandatory (a datagram with 0 in the field is dropped and counted, RFC 8200 8.1); a closed
 * port is answered by ICMPv6 destination unreachable code 4 (RFC 4443 3.1), through the ICMPv6
 * layer's error path with its RFC 4443 2.4 rules and rate limit; multicast to a group we joined
 * takes the place of broadcast. A socket bound to `::` (the default with IPv6) receives both
 * families, like a Linux socket with bindv6only=0; one bound to `0.0.0.0` only IPv4.
 */
import debugFactory from 'debug';
import { match } from 'ts-pattern';
import { UnreachableCode, type IcmpErrorReport, type IcmpLayer } from '@tapstack/icmp';
import type { Icmpv6ErrorReport, Icmpv6Layer } from '@tapstack/icmpv6';
import { IpProtocol, type Ipv4DeliveryInfo, type Ipv4Layer, type Ipv4Packet, type PayloadWriter } from '@tapstack/ipv4';
import { upperLayerMessage, type Ipv6DeliveryInfo, type Ipv6Layer, type Ipv6Packet, type Ipv6PayloadWriter } from '@tapstack/ipv6';
import { Counters, formatIpv4, hotPathLogging, IPV4_UNSPECIFIED, Ipv6Address, type Ipv4Address } from '@tapstack/link';
import { icmpErrno, icmpv6Errno, UdpIcmpError, UdpSocketError } from './errors.ts';
import { DEFAULT_EPHEMERAL_PORTS, formatUdpAddress, formatUdpEndpoint, PortTable, type UdpAddress } from './ports.ts';
import { UdpSocket, type UdpDatagram, type UdpReceiveQueueLimits, type UdpSendOutcome, type UdpSocketHost } from './socket.ts';
import { formatUdp, UDP_HEADER_LENGTH, udp6ChecksumAt, UdpField, UdpPacket, writeUdp6Header, writeUdpHeader, type UdpCheckError } from './udp.ts';

const log = debugFactory('tapstack:udp');
/** `log.enabled` for the per-datagram lines, read once per run (see hot-path-log.ts in @tapstack/link). */
const logging = hotPathLogging(log);

export const UDP_COUNTERS = [
  'rx_datagrams',
  'rx_truncated',
  'rx_bad_length',
  'rx_length_exceeds_payload',
  'rx_bad_checksum',
  'rx_no_port',
  'rx_ignored_broadcast',
  'rx_queue_full',
  // not drops: datagrams that came without a checksum, or with bytes past the length field, or
  // that cannot be answered (source port 0, RFC 768; source 0.0.0.0, a host without an address yet)
  'rx_no_checksum',
  'rx_trimmed',
  'rx_source_port_zero',
  'rx_source_unspecified',
  'tx_datagrams',
  'tx_bytes',
  'tx_dropped',
  'tx_port_unreachable',
  // a socket's reply() not sent: the sender cannot be answered (port 0, 0.0.0.0, broadcast source)
  'tx_unanswerable',
  // ICMP errors about datagrams we sent, passed to the sending socket
  'rx_icmp_errors',
  // The counters above count both families. These count IPv6 only, under the names of Linux's
  // Udp6 lines in /proc/net/snmp6 ...
  'Udp6InDatagrams',
  'Udp6NoPorts',
  'Udp6InCsumErrors',
  'Udp6RcvbufErrors',
  'Udp6IgnoredMulti',
  'Udp6OutDatagrams',
  // ... and the drop IPv4 does not have: a checksum field of 0 (also in rx_bad_checksum and
  // Udp6InCsumErrors, where Linux counts it)
  'rx_zero_checksum_ipv6',
] as const;
export type UdpCounterName = (typeof UDP_COUNTERS)[number];

const CHECK_FAILURE_COUNTER: Record<UdpCheckError, UdpCounterName> = {
  truncated: 'rx_truncated',
  bad_length: 'rx_bad_length',
  length_exceeds_payload: 'rx_length_exceeds_payload',
};

export interface UdpLayerOptions {
  ipv4: Ipv4Layer;
  /** Sends port unreachable for datagrams nobody listens for. Without it, they are only counted. */
  icmp?: IcmpLayer;
  /** UDP over IPv6 too (next header 17); `bind()` then takes both families by default. */
  ipv6?: Ipv6Layer;
  /** Port unreachable over IPv6, and ICMPv6 errors about our datagrams passed to the sockets. */
  icmpv6?: Icmpv6Layer;
  /** Ephemeral port range for sockets that do not name a port (default 49152-65535). */
  ephemeralPorts?: { low: number; high: number };
  /** Default receive queue limits of new sockets. */
  receiveQueue?: UdpReceiveQueueLimits;
  /** Randomness for the ephemeral port search start (default Math.random); seed it in simulations. */
  random?: () => number;
}

/**
 * Writes one datagram into IPv4's outgoing buffer. One instance per layer, refilled before
 * every send, so the hot path allocates no closure (IPv4 calls `write` synchronously).
 */
class DatagramWriter implements PayloadWriter {
  length = 0;
  source: Ipv4Address = IPV4_UNSPECIFIED;
  destination: Ipv4Address = IPV4_UNSPECIFIED;
  sourcePort = 0;
  destinationPort = 0;
  data: Uint8Array = new Uint8Array(0);

  write(target: Uint8Array): void {
    target.set(this.data, UdpField.PAYLOAD);
    writeUdpHeader(target, this.sourcePort, this.destinationPort, this.length, this.source, this.destination);
  }
}

/** The IPv6 twin of DatagramWriter: the source is chosen before the write, so the checksum is ours. */
class Datagram6Writer implements Ipv6PayloadWriter {
  length = 0;
  source: Ipv6Address = Ipv6Address.UNSPECIFIED;
  destination: Ipv6Address = Ipv6Address.UNSPECIFIED;
  sourcePort = 0;
  destinationPort = 0;
  data: Uint8Array = new Uint8Array(0);

  write(target: Uint8Array): void {
    target.set(this.data, UdpField.PAYLOAD);
    writeUdp6Header(target, this.sourcePort, this.destinationPort, this.length, this.source, this.destination);
  }
}

export class UdpLayer {
  readonly counters = new Counters<UdpCounterName>('udp', UDP_COUNTERS);
  private readonly ipv4: Ipv4Layer;
  private readonly icmp: IcmpLayer | undefined;
  private readonly ipv6: Ipv6Layer | undefined;
  private readonly icmpv6: Icmpv6Layer | undefined;
  private readonly ports: PortTable<UdpSocket>;
  private readonly receiveQueue: UdpReceiveQueueLimits | undefined;
  private readonly writer = new DatagramWriter();
  private readonly writer6 = new Datagram6Writer();
  private readonly sockets = new Set<UdpSocket>();
  private readonly host: UdpSocketHost;
  private isClosed = false;

  constructor(options: UdpLayerOptions) {
    this.ipv4 = options.ipv4;
    this.icmp = options.icmp;
    this.ipv6 = options.ipv6;
    this.icmpv6 = options.icmpv6;
    this.ports = new PortTable(options.ephemeralPorts ?? DEFAULT_EPHEMERAL_PORTS, options.random);
    this.receiveQueue = options.receiveQueue;
    this.host = {
      bindPort: (socket, port, address) => this.bindPort(socket, port, address),
      defaultAddress: this.ipv6 ? Ipv6Address.UNSPECIFIED : IPV4_UNSPECIFIED,
      releasePort: (socket, port) => {
        this.ports.release(port, socket);
        this.sockets.delete(socket);
      },
      isBroadcast: (address) => this.ipv4.isBroadcast(address),
      unanswerable: () => this.counters.inc('tx_unanswerable'),
      sendDatagram: (source, sourcePort, destination, destinationPort, data, opts) =>
        this.sendDatagram(source, sourcePort, destination, destinationPort, data, opts.ttl),
    };
    // Broadcast datagrams are for UDP too (DHCP, discovery); multicast needs group membership,
    // which this stack does not have yet, so IPv4 keeps those.
    this.ipv4.register(IpProtocol.UDP, (packet, info) => this.input(packet, info), { broadcast: true });
    this.icmp?.onError(IpProtocol.UDP, (report) => {
      if (!this.isClosed) this.icmpError(report);
    });
    // Multicast to a group we joined (ff02::1 and the like) goes to the wildcard sockets.
    this.ipv6?.register(IpProtocol.UDP, (packet, info) => this.input6(packet, info), { multicast: true });
    this.icmpv6?.onError((report) => {
      if (!this.isClosed) this.icmpv6Error(report);
    });
  }

  /** A new, unbound socket (`dgram.createSocket('udp4')`); it binds on `bind()` or its first `send()`. */
  createSocket(options: { receiveQueue?: UdpReceiveQueueLimits } = {}): UdpSocket {
    this.checkOpen();
    const receiveQueue = options.receiveQueue ?? this.receiveQueue;
    return new UdpSocket(this.host, receiveQueue ? { receiveQueue } : {});
  }

  /**
   * A socket bound to `port` (0 or none: ephemeral) on `address`: none or '::', every address
   * of both families (IPv4 only on a stack without IPv6); '0.0.0.0', every IPv4 address; or one
   * address of the stack. Throws UdpSocketError EADDRINUSE when the port is taken.
   */
  bind(port = 0, address?: UdpAddress | string): UdpSocket {
    return this.createSocket().bind(port, address);
  }

  /** Sockets currently bound. */
  get socketCount(): number {
    return this.sockets.size;
  }

  /** The bound sockets, one line each, like `ss -uan`: `UNCONN 0.0.0.0:7 queued 0`, `UNCONN *:7 queued 0` for `::`. */
  show(): string {
    return this.ports
      .entries()
      .map((e) => `UNCONN ${formatUdpEndpoint(e.address, e.port)} queued ${e.owner.queued}`)
      .join('\n');
  }

  /** Closes every socket and leaves IPv4's protocol table. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const s of [...this.sockets]) s.close();
    this.ipv4.unregister(IpProtocol.UDP);
    this.ipv6?.unregister(IpProtocol.UDP);
  }

  // ---------------------------------------------------------------------------------------
  // Receive

  /**
   * Takes one IPv4 datagram of protocol 17. Never throws on its content. The socket gets the
   * data as a view of the frame, which the IPv4 handler contract lets a handler keep.
   */
  input(packet: Ipv4Packet, info: Ipv4DeliveryInfo): void {
    const c = this.counters;
    const payload = packet.payload;
    const checked = UdpPacket.check(payload);
    if (!checked.ok) {
      c.inc(CHECK_FAILURE_COUNTER[checked.reason]);
      return;
    }
    const udp = checked.value;
    const source = packet.source;
    const destination = packet.destination;
    if (logging()) log('in  %s', formatUdp(udp.bytes, source, destination));
    if (udp.bytes.length !== payload.length) c.inc('rx_trimmed');
    if (udp.checksum === 0) c.inc('rx_no_checksum');
    else if (!udp.verifyChecksum(source, destination)) {
      c.inc('rx_bad_checksum');
      return;
    }
    if (udp.sourcePort === 0) c.inc('rx_source_port_zero');
    if (source === IPV4_UNSPECIFIED) c.inc('rx_source_unspecified');
    const datagram = { family: 'IPv4', data: udp.payload, address: source, port: udp.sourcePort, destination } as const;
    if (!this.toSockets(datagram, udp.destinationPort, info.destinationKind !== 'unicast')) this.portUnreachable(packet, info);
  }

  /**
   * Takes one IPv6 packet whose upper layer is UDP (after any extension headers), under IPv6's
   * handler contract: `packet` and `info` are re-pointed at the next packet, so what a socket
   * keeps is the datagram's own values and a view of the bytes. Never throws on its content.
   */
  input6(packet: Ipv6Packet, info: Ipv6DeliveryInfo): void {
    const c = this.counters;
    const payload = upperLayerMessage(packet, info);
    const checked = UdpPacket.check(payload);
    if (!checked.ok) {
      c.inc(CHECK_FAILURE_COUNTER[checked.reason]);
      return;
    }
    const udp = checked.value;
    if (udp.bytes.length !== payload.length) c.inc('rx_trimmed');
    // RFC 8200 8.1: a zero checksum is not "none" over IPv6, it is an error (Linux: csum_error).
    if (udp.checksum === 0) {
      c.inc('rx_zero_checksum_ipv6');
      c.inc('rx_bad_checksum');
      c.inc('Udp6InCsumErrors');
      return;
    }
    if (udp6ChecksumAt(udp.bytes, packet.buffer, packet.sourceOffset) !== 0) {
      c.inc('rx_bad_checksum');
      c.inc('Udp6InCsumErrors');
      return;
    }
    const source = packet.source;
    const destination = packet.destination;
    if (logging()) log('in  %s', formatUdp(udp.bytes, source, destination));
    if (udp.sourcePort === 0) c.inc('rx_source_port_zero');
    if (source.isUnspecified) c.inc('rx_source_unspecified');
    const datagram = { family: 'IPv6', data: udp.payload, address: source, port: udp.sourcePort, destination } as const;
    if (!this.toSockets(datagram, udp.destinationPort, info.destinationKind === 'multicast')) this.portUnreachable6(packet, info);
  }

  /**
   * What receiving does the same for both families once a datagram is checked: a unicast one
   * goes to the socket bound to its port and address (false when there is none: the caller
   * answers port unreachable), a broadcast or multicast one to every socket that matches, and
   * never an error about it (RFC 1122 4.1.3.1, 3.2.2; RFC 4443 2.4 (e.2)). IPv6 keeps Linux's
   * Udp6* counters beside the shared ones.
   */
  private toSockets(datagram: UdpDatagram, port: number, group: boolean): boolean {
    const c = this.counters;
    const six = datagram.family === 'IPv6';
    if (!group) {
      const socket = this.ports.lookup(port, datagram.destination);
      if (!socket) {
        c.inc('rx_no_port');
        if (six) c.inc('Udp6NoPorts');
        return false;
      }
      this.toSocket(socket, datagram, six);
      return true;
    }
    const sockets = this.ports.lookupAll(port, datagram.destination);
    if (sockets.length === 0) {
      c.inc('rx_ignored_broadcast');
      if (six) c.inc('Udp6IgnoredMulti');
      return true;
    }
    for (const s of sockets) this.toSocket(s, datagram, six);
    return true;
  }

  private toSocket(socket: UdpSocket, datagram: UdpDatagram, six: boolean): void {
    const c = this.counters;
    c.inc('rx_datagrams');
    if (six) c.inc('Udp6InDatagrams');
    if (!socket.deliver(datagram)) {
      c.inc('rx_queue_full');
      if (six) c.inc('Udp6RcvbufErrors');
    }
  }

  private portUnreachable6(packet: Ipv6Packet, info: Ipv6DeliveryInfo): void {
    const icmpv6 = this.icmpv6;
    if (!icmpv6) return;
    // ICMPv6 applies RFC 4443 2.4 (not about groups, link multicast, odd sources) and the rate
    // limit, and quotes as much of the packet as fits 1280 bytes.
    const outcome = icmpv6.sendError({ kind: 'destination-unreachable', code: 4 }, packet.bytes, info);
    if (outcome === 'sent' || outcome === 'queued') this.counters.inc('tx_port_unreachable');
  }

  private portUnreachable(packet: Ipv4Packet, info: Ipv4DeliveryInfo): void {
    const icmp = this.icmp;
    if (!icmp) return;
    // ICMP decides whether RFC 1122 allows it (not about broadcasts, fragments, odd sources) and
    // whether the rate limit has a token; it quotes the IP header and the start of the datagram.
    const outcome = icmp.sendError({ kind: 'destination-unreachable', code: UnreachableCode.PORT }, packet.bytes, info);
    if (outcome === 'sent' || outcome === 'queued') this.counters.inc('tx_port_unreachable');
  }

  /**
   * An ICMP error arrived about a datagram we sent (RFC 1122 4.1.3.3: UDP must pass these up):
   * the quote holds our UDP header, so its source port names the socket.
   */
  private icmpError(report: IcmpErrorReport): void {
    const o = report.original;
    if (o.protocol !== IpProtocol.UDP || o.payload.length < 4) return;
    const sourcePort = (o.payload[0]! << 8) | o.payload[1]!;
    const destinationPort = (o.payload[2]! << 8) | o.payload[3]!;
    const socket = this.ports.lookup(sourcePort, o.source);
    if (!socket) return;
    this.counters.inc('rx_icmp_errors');
    socket.reportError(new UdpIcmpError(icmpErrno(report.kind, report.code), o.destination, destinationPort, report.from));
  }

  /**
   * An ICMPv6 error about a datagram we sent: the same lookup, by the quote's source port and
   * address. Packet Too Big is IPv6's business (it lowers the path MTU; the next send fits), so
   * a socket hears unreachable, time exceeded and parameter problem, as Linux's udpv6_err reports.
   */
  private icmpv6Error(report: Icmpv6ErrorReport): void {
    const o = report.original;
    if (o.nextHeader !== IpProtocol.UDP || o.payload.length < 4 || report.kind === 'packet-too-big') return;
    const sourcePort = (o.payload[0]! << 8) | o.payload[1]!;
    const destinationPort = (o.payload[2]! << 8) | o.payload[3]!;
    const socket = this.ports.lookup(sourcePort, o.source);
    if (!socket) return;
    this.counters.inc('rx_icmp_errors');
    socket.reportError(new UdpIcmpError(icmpv6Errno(report.kind, report.code), o.destination, destinationPort, report.from));
  }

  // ---------------------------------------------------------------------------------------
  // Sockets and send

  private bindPort(socket: UdpSocket, port: number, address: UdpAddress): number {
    this.checkOpen();
    if (typeof address !== 'number') {
      const ipv6 = this.ipv6;
      if (!ipv6) throw new UdpSocketError('EAFNOSUPPORT', `this stack has no IPv6, cannot bind ${formatUdpAddress(address)}`);
      // RFC 4862 5.4: a tentative (or duplicate) address is not ours to use yet
      if (!address.isUnspecified && !ipv6.addresses.isAssigned(address)) {
        throw new UdpSocketError('EADDRNOTAVAIL', `${address.toString()} is not a usable address of this stack (see ipv6.addresses.show())`);
      }
    } else if (address !== IPV4_UNSPECIFIED && address !== this.ipv4.address.address) {
      throw new UdpSocketError(
        'EADDRNOTAVAIL',
        `${formatIpv4(address)} is not an address of this stack (it has ${formatIpv4(this.ipv4.address.address)})`,
      );
    }
    const bound = this.ports.bind(port, address, socket);
    this.sockets.add(socket);
    return bound;
  }

  private sendDatagram(
    source: UdpAddress,
    sourcePort: number,
    destination: UdpAddress,
    destinationPort: number,
    data: Uint8Array,
    ttl: number | undefined,
  ): UdpSendOutcome {
    if (typeof destination !== 'number') return this.sendDatagram6(source, sourcePort, destination, destinationPort, data, ttl);
    // the socket refused other mixes; a `::` socket sends IPv4 from the IPv4 address
    if (typeof source !== 'number') source = IPV4_UNSPECIFIED;
    const w = this.writer;
    w.source = source === IPV4_UNSPECIFIED ? this.ipv4.address.address : source;
    w.destination = destination;
    w.sourcePort = sourcePort;
    w.destinationPort = destinationPort;
    w.data = data;
    w.length = UDP_HEADER_LENGTH + data.length;
    if (logging()) log('out %s.%d > %s.%d: UDP, length %d', formatIpv4(w.source), sourcePort, formatIpv4(destination), destinationPort, data.length);
    const outcome = this.ipv4.send({
      destination,
      protocol: IpProtocol.UDP,
      payload: w,
      source: w.source,
      ...(ttl === undefined ? {} : { ttl }),
    });
    w.data = EMPTY;
    return this.countSend(outcome, data.length);
  }

  /**
   * IPv6 send: the source is chosen here (the bound address, or RFC 6724's choice for the
   * destination) so the checksum can be computed while the datagram is written, with a computed
   * 0 sent as 0xFFFF, which IPv6's generic checksum fill-in would not do.
   */
  private sendDatagram6(
    bound: UdpAddress,
    sourcePort: number,
    destination: Ipv6Address,
    destinationPort: number,
    data: Uint8Array,
    hopLimit: number | undefined,
  ): UdpSendOutcome {
    const ipv6 = this.ipv6;
    if (!ipv6) {
      this.counters.inc('tx_dropped');
      return 'no_route';
    }
    const source = typeof bound !== 'number' && !bound.isUnspecified ? bound : ipv6.sourceFor(destination);
    if (!source) {
      this.counters.inc('tx_dropped');
      return 'no_source';
    }
    const w = this.writer6;
    w.source = source;
    w.destination = destination;
    w.sourcePort = sourcePort;
    w.destinationPort = destinationPort;
    w.data = data;
    w.length = UDP_HEADER_LENGTH + data.length;
    if (logging()) log('out %s.%d > %s.%d: UDP, length %d', source.toString(), sourcePort, destination.toString(), destinationPort, data.length);
    const outcome = ipv6.send({ destination, source, nextHeader: IpProtocol.UDP, payload: w, ...(hopLimit === undefined ? {} : { hopLimit }) });
    w.data = EMPTY;
    if (outcome === 'sent' || outcome === 'queued') this.counters.inc('Udp6OutDatagrams');
    return this.countSend(outcome, data.length);
  }

  private countSend(outcome: UdpSendOutcome, bytes: number): UdpSendOutcome {
    match(outcome)
      .with('sent', 'queued', () => {
        this.counters.inc('tx_datagrams');
        this.counters.inc('tx_bytes', bytes);
      })
      .with('dropped', 'no_route', 'no_source', 'fragmentation_needed', 'too_long', 'closed', () => this.counters.inc('tx_dropped'))
      .exhaustive();
    return outcome;
  }

  private checkOpen(): void {
    if (this.isClosed) throw new UdpSocketError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'the UDP layer is closed');
  }
}

const EMPTY = new Uint8Array(0);
