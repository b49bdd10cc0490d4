/**
 * The UDP layer (RFC 768, RFC 1122 section 4.1): protocol 17 in IPv4's dispatch table.
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
 */
import debugFactory from 'debug';
import { match } from 'ts-pattern';
import { UnreachableCode, type IcmpErrorReport, type IcmpLayer } from '@tapstack/icmp';
import { IpProtocol, type Ipv4DeliveryInfo, type Ipv4Layer, type Ipv4Packet, type Ipv4SendOutcome, type PayloadWriter } from '@tapstack/ipv4';
import { Counters, formatIpv4, hotPathLogging, IPV4_UNSPECIFIED, type Ipv4Address } from '@tapstack/link';
import { UdpSocketError } from './errors.ts';
import { DEFAULT_EPHEMERAL_PORTS, PortTable } from './ports.ts';
import { UdpSocket, type UdpReceiveQueueLimits, type UdpSendOutcome, type UdpSocketHost } from './socket.ts';
import { formatUdp, UDP_HEADER_LENGTH, UdpField, UdpPacket, writeUdpHeader, type UdpCheckError } from './udp.ts';

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

export class UdpLayer {
  readonly counters = new Counters<UdpCounterName>('udp', UDP_COUNTERS);
  private readonly ipv4: Ipv4Layer;
  private readonly icmp: IcmpLayer | undefined;
  private readonly ports: PortTable<UdpSocket>;
  private readonly receiveQueue: UdpReceiveQueueLimits | undefined;
  private readonly writer = new DatagramWriter();
  private readonly sockets = new Set<UdpSocket>();
  private readonly host: UdpSocketHost;
  private isClosed = false;

  constructor(options: UdpLayerOptions) {
    this.ipv4 = options.ipv4;
    this.icmp = options.icmp;
    this.ports = new PortTable(options.ephemeralPorts ?? DEFAULT_EPHEMERAL_PORTS, options.random);
    this.receiveQueue = options.receiveQueue;
    this.host = {
      bindPort: (socket, port, address) => this.bindPort(socket, port, address),
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
    this.ipv4.register(IpProtocol.UDP, (packet, payload, info) => this.input(packet, payload, info), { broadcast: true });
    this.icmp?.onError(IpProtocol.UDP, (report) => {
      if (!this.isClosed) this.icmpError(report);
    });
  }

  /** A new, unbound socket (`dgram.createSocket('udp4')`); it binds on `bind()` or its first `send()`. */
  createSocket(options: { receiveQueue?: UdpReceiveQueueLimits } = {}): UdpSocket {
    this.checkOpen();
    const receiveQueue = options.receiveQueue ?? this.receiveQueue;
    return new UdpSocket(this.host, receiveQueue ? { receiveQueue } : {});
  }

  /**
   * A socket bound to `port` (0 or none: ephemeral) on `address` (none: every address of the
   * stack). Throws UdpSocketError EADDRINUSE when the port is taken.
   */
  bind(port = 0, address: Ipv4Address | string = IPV4_UNSPECIFIED): UdpSocket {
    return this.createSocket().bind(port, address);
  }

  /** Sockets currently bound. */
  get socketCount(): number {
    return this.sockets.size;
  }

  /** The bound sockets, one line each, like `ss -uan`: `UNCONN 0.0.0.0:7 queued 0`. */
  show(): string {
    return this.ports
      .entries()
      .map((e) => `UNCONN ${formatIpv4(e.address)}:${e.port} queued ${e.owner.queued}`)
      .join('\n');
  }

  /** Closes every socket and leaves IPv4's protocol table. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const s of [...this.sockets]) s.close();
    this.ipv4.unregister(IpProtocol.UDP);
  }

  // ---------------------------------------------------------------------------------------
  // Receive

  /** Takes one IPv4 datagram of protocol 17. Never throws on its content. */
  input(packet: Ipv4Packet, payload: Uint8Array, info: Ipv4DeliveryInfo): void {
    const c = this.counters;
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
    const port = udp.destinationPort;
    if (udp.sourcePort === 0) c.inc('rx_source_port_zero');
    if (source === IPV4_UNSPECIFIED) c.inc('rx_source_unspecified');
    const datagram = { data: udp.payload, address: source, port: udp.sourcePort, destination };
    match(info.destinationKind)
      .with('unicast', () => {
        const socket = this.ports.lookup(port, destination);
        if (!socket) {
          c.inc('rx_no_port');
          this.portUnreachable(packet, info);
          return;
        }
        c.inc('rx_datagrams');
        if (!socket.deliver(datagram)) c.inc('rx_queue_full');
      })
      .with('broadcast', 'multicast', () => {
        // RFC 1122 4.1.3.1 / 3.2.2: never an ICMP error about a broadcast or multicast datagram.
        const sockets = this.ports.lookupAll(port, destination);
        if (sockets.length === 0) {
          c.inc('rx_ignored_broadcast');
          return;
        }
        c.inc('rx_datagrams');
        for (const s of sockets) if (!s.deliver(datagram)) c.inc('rx_queue_full');
      })
      .exhaustive();
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
    socket.reportError(report, o.destination, destinationPort);
  }

  // ---------------------------------------------------------------------------------------
  // Sockets and send

  private bindPort(socket: UdpSocket, port: number, address: Ipv4Address): number {
    this.checkOpen();
    if (address !== IPV4_UNSPECIFIED && address !== this.ipv4.address.address) {
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
    source: Ipv4Address,
    sourcePort: number,
    destination: Ipv4Address,
    destinationPort: number,
    data: Uint8Array,
    ttl: number | undefined,
  ): UdpSendOutcome {
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

  private countSend(outcome: Ipv4SendOutcome, bytes: number): UdpSendOutcome {
    match(outcome)
      .with('sent', 'queued', () => {
        this.counters.inc('tx_datagrams');
        this.counters.inc('tx_bytes', bytes);
      })
      .with('dropped', 'no_route', 'fragmentation_needed', 'too_long', 'closed', () => this.counters.inc('tx_dropped'))
      .exhaustive();
    return outcome;
  }

  private checkOpen(): void {
    if (this.isClosed) throw new UdpSocketError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'the UDP layer is closed');
  }
}

const EMPTY = new Uint8Array(0);
