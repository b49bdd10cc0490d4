/**
 * The TCP layer: protocol 6 in IPv4's dispatch table, and next header 6 in IPv6's when the stack
 * has IPv6. It checks what arrives, finds the connection or listener a segment belongs to,
 * answers segments nobody wants with a RST, writes the segments connections make, and passes
 * ICMP and ICMPv6 errors to the connection they concern.
 *
 * Receive: check the header and options (drops counted by reason), verify the checksum
 * (InCsumErrors), look the 4-tuple up among connections, then the port among listeners; a SYN to
 * a listener becomes a connection in SYN-RECEIVED (or, when the SYN queue is full, a SYN cookie);
 * anything else gets the RST of RFC 9293 3.10.7.1. Segments to broadcast or multicast addresses
 * are dropped without an answer (RFC 1122 4.2.3.10).
 *
 * IPv6 is the same walk with the family's own pieces: the RFC 8200 8.1 pseudo-header in the
 * checksum, the 4-tuple looked up by the header's address bytes (demux.ts), MSS = MTU - 60, the
 * source address chosen for the peer (RFC 6724: a link-local peer gets our link-local address),
 * and Packet Too Big lowering the connection's MSS (RFC 8201) as frag-needed does over IPv4. A
 * listener bound to `::` (the default with IPv6) takes both families, like Linux with
 * bindv6only=0; one bound to an IPv6 address only that address. With a virtio-net header,
 * IPv6 connections send and receive super-frames too (TSO6, VIRTIO_NET_HDR_GSO_TCPV6).
 *
 * Counters carry the names of Linux's /proc/net/snmp `Tcp:` line and /proc/net/netstat `TcpExt:`
 * (ActiveOpens, PassiveOpens, InSegs, OutRsts, SyncookiesSent, TCPChallengeACK, ...), so the
 * numbers read side by side with `nstat` on the kernel.
 */
import debugFactory from 'debug';
import type { IcmpErrorReport, IcmpLayer } from '@tapstack/icmp';
import type { Icmpv6ErrorReport, Icmpv6Layer } from '@tapstack/icmpv6';
import type { Ipv4DeliveryInfo, Ipv4Layer, Ipv4Packet, Ipv4SendRequest, PayloadWriter } from '@tapstack/ipv4';
import { IpProtocol } from '@tapstack/ipv4';
import { upperLayerMessage, type Ipv6DeliveryInfo, type Ipv6Layer, type Ipv6Packet, type Ipv6SendRequest } from '@tapstack/ipv6';
import { Counters, ETHERNET_HEADER_LENGTH, formatIpv4, hotPathLogging, IPV4_UNSPECIFIED, Ipv6Address, TimerQueue, type Clock, type FrameOffload, type Ipv4Address, type TransportOffloadRequest } from '@tapstack/link';
import { formatTcpAddress, formatTcpEndpoint, toTcpAddress, type TcpAddress } from './address.ts';
import type { CongestionControlChoice } from './congestion.ts';
import { TcpConnection, type ConnectionCounter, type ConnectionHost, type ConnectionInfo, type TcpParams } from './connection.ts';
import { ConnectionTable } from './demux.ts';
import { TcpError } from './errors.ts';
import { TcpEventLog, type TcpLogSink } from './event-log.ts';
import { TcpMemory, type TcpMemoryCounterName, type TcpMemoryOptions } from './memory.ts';
import { formatTcp, IPV6_FIXED_HEADER_LENGTH, mssForMtu, ReusedTcpRepr, tcp6ChecksumAt, TCP_DEFAULT_MSS, TcpField, TcpFlag, TcpPacket, TcpRepr, type TcpCheckError } from './header.ts';
import { SequenceSecrets, type FourTuple } from './isn.ts';
import type { SegmentData } from './send-buffer.ts';
import { resetFor } from './reset.ts';
import { TcpServer, type ListenerHost } from './server.ts';
import { TcpSocket } from './socket.ts';
import { seqAdd } from './seq.ts';

const log = debugFactory('tapstack:tcp');
const logging = hotPathLogging(log);

export const TCP_COUNTERS = [
  // /proc/net/snmp Tcp:
  'ActiveOpens',
  'PassiveOpens',
  'AttemptFails',
  'EstabResets',
  'InSegs',
  'OutSegs',
  'RetransSegs',
  'InErrs',
  'OutRsts',
  'InCsumErrors',
  // /proc/net/netstat TcpExt:
  'SyncookiesSent',
  'SyncookiesRecv',
  'SyncookiesFailed',
  'ListenOverflows',
  'ListenDrops',
  'TCPChallengeACK',
  'TCPTimeouts',
  'TCPAbortOnTimeout',
  'TCPAbortOnData',
  'TCPAbortOnClose',
  'TCPFastRetrans',
  'TCPPartialUndo',
  'TCPDSACKUndo',
  'TCPFullUndo',
  'TCPLossUndo',
  'TCPTSReorder',
  'TCPSpuriousRTOs',
  'TCPOFOQueue',
  'TCPPureAcks',
  'DelayedACKs',
  'tx_acks_coalesced',
  'TCPAckCompressed',
  'TCPKeepAlive',
  'TCPWinProbe',
  'TCPSynRetrans',
  'TCPDupAcks',
  'TCPSackRecovery',
  'TCPRenoRecovery',
  'TCPLossProbes',
  'TCPLossProbeRecovery',
  'TCPLostRetransmit',
  'TCPDSACKRecv',
  'TCPDSACKOldSent',
  'TCPDSACKOfoSent',
  'TCPSACKDiscard',
  'TCPSACKReneging',
  'PAWSEstab',
  // our drop reasons, one per check
  'rx_truncated',
  'rx_bad_data_offset',
  'rx_bad_option_length',
  'rx_not_unicast',
  'rx_no_socket',
  'rx_out_of_window',
  'rx_old_ack',
  'rx_ack_of_unsent',
  'rx_icmp_errors',
  'tx_failed',
  /** A connection stopped sending for this run: the link's burst limit was reached (resumed next turn). */
  'tx_burst_held',
  // IPv6 only (the counters above count both families): segments in and out over IPv6, bad
  // checksums among them, and connects that found no IPv6 source address for the peer
  'Tcp6InSegs',
  'Tcp6OutSegs',
  'Tcp6InCsumErrors',
  'tx_no_source',
] as const;
export type TcpCounterName = (typeof TCP_COUNTERS)[number] | ConnectionCounter | TcpMemoryCounterName;

const CHECK_FAILURE_COUNTER: Record<TcpCheckError, TcpCounterName> = {
  truncated: 'rx_truncated',
  bad_data_offset: 'rx_bad_data_offset',
  bad_option_length: 'rx_bad_option_length',
};

export interface TcpLayerOptions {
  ipv4: Ipv4Layer;
  /** ICMP errors about our segments reach connections through it. */
  icmp?: IcmpLayer;
  /** TCP over IPv6 too (next header 6); listeners then bind `::` (both families) by default. */
  ipv6?: Ipv6Layer;
  /** ICMPv6 errors about our segments (Packet Too Big, unreachable) reach connections through it. */
  icmpv6?: Icmpv6Layer;
  clock: Clock;
  /** Ephemeral ports for connect() (default 49152-65535, as UDP). */
  ephemeralPorts?: { low: number; high: number };
  /** Connection tunables (Linux sysctl names in camelCase). */
  params?: Partial<TcpParams>;
  /** Half-open connections a listener keeps before it answers with SYN cookies (tcp_max_syn_backlog; default 256). */
  synBacklog?: number;
  /** SYN cookies when the SYN queue is full (tcp_syncookies 1, the default) or never (0). */
  syncookies?: 0 | 1;
  /** Host-wide challenge ACKs per second (tcp_challenge_ack_limit; default 1000). */
  challengeAckLimit?: number;
  /** Randomness for ephemeral ports (default Math.random); the ISN secret comes from node:crypto. */
  random?: () => number;
  /** The ISN/cookie secret (default: 32 random bytes). Fix it in simulations to make runs repeatable. */
  secret?: Uint8Array;
  /**
   * The connection event log: every state change, RTT measurement, cwnd/ssthresh change,
   * retransmission, timeout and fast-recovery entry/exit, with the sender's numbers
   * (`jsonLinesSink(write)` makes JSON lines of them; src/event-log.ts). Off by default.
   */
  tcpLog?: TcpLogSink;
  /**
   * The memory all connections' buffers share and its marks, like Linux's tcp_mem (memory.ts):
   * send-buffer page size, pressure and limit. Its gauges and counters join the layer's (mem_*).
   */
  memory?: TcpMemoryOptions;
}

export interface ConnectOptions {
  port: number;
  /** '10.0.0.1', 'fd00:10::1', '[fd00:10::1]', 'fe80::1%tap0', an IPv4 number or an Ipv6Address. */
  host: string | TcpAddress;
  /** Local port (default: ephemeral). */
  localPort?: number;
  noDelay?: boolean;
  /** This connection's congestion control, as Linux's TCP_CONGESTION socket option (default: the layer's params). */
  congestionControl?: CongestionControlChoice;
}

/** IPv4's send request with the fields a segment changes writable (the layer rewrites one per segment). */
interface SegmentRequest4 extends Ipv4SendRequest {
  destination: Ipv4Address;
  source: Ipv4Address;
  offload: TransportOffloadRequest | undefined;
}

/** The same for IPv6. */
interface SegmentRequest6 extends Ipv6SendRequest {
  destination: Ipv6Address;
  source: Ipv6Address;
  offload: TransportOffloadRequest | undefined;
}

/**
 * Writes one segment into the IP layer's outgoing frame: header, options, data and checksum in
 * one pass. IPv4 and IPv6 both take it (their payload writers have the same shape); the
 * addresses' family picks the pseudo-header.
 */
class SegmentWriter implements PayloadWriter {
  length = 0;
  repr: TcpRepr | undefined;
  payload: Uint8Array | SegmentData = EMPTY;
  source: TcpAddress = IPV4_UNSPECIFIED;
  destination: TcpAddress = IPV4_UNSPECIFIED;
  /** The link finishes the checksum (a super-frame): write the pseudo-header's sum only. */
  partialChecksum = false;
  /** Header, options, data and checksum: every byte of the segment is written. */
  readonly writesEveryByte = true;

  write(target: Uint8Array): void {
    TcpRepr.emit(this.repr!, this.payload, target, this.source, this.destination, 0, this.partialChecksum);
  }

  writeAt(frame: Uint8Array, offset: number): void {
    TcpRepr.emit(this.repr!, this.payload, frame, this.source, this.destination, offset, this.partialChecksum);
  }
}

export class TcpLayer implements ConnectionHost, ListenerHost {
  readonly counters = new Counters<TcpCounterName>('tcp', TCP_COUNTERS);
  readonly clock: Clock;
  /** Every connection's timers (retransmission, delayed ACK, persist, keepalive, RACK, TLP, close) on one clock timer. */
  readonly timers: TimerQueue;
  readonly params: Partial<TcpParams>;
  private readonly inSegs = this.counters.counter('InSegs');
  /** Send-buffer pages and the account of every connection's buffers (memory.ts). */
  readonly memory: TcpMemory;
  private readonly ipv4: Ipv4Layer;
  private readonly ipv6: Ipv6Layer | undefined;
  private readonly connections: ConnectionTable<TcpConnection>;
  private readonly listeners = new Map<number, TcpServer>();
  /** Which listener a connection in SYN-RECEIVED came from. */
  private readonly pending = new Map<TcpConnection, TcpServer>();
  private readonly secrets: SequenceSecrets;
  private readonly writer = new SegmentWriter();
  /**
   * The send requests handed to IPv4 and IPv6, one per family, rewritten for every segment: IP
   * reads a request during `send` only (the frame is built before it returns). The segment's
   * bytes come from `writer`, its offload (a super-frame) from `offload`.
   */
  private readonly request4: SegmentRequest4 = { destination: IPV4_UNSPECIFIED, source: IPV4_UNSPECIFIED, protocol: IpProtocol.TCP, payload: this.writer, dontFragment: true, offload: undefined };
  private readonly request6: SegmentRequest6 = { destination: Ipv6Address.UNSPECIFIED, source: Ipv6Address.UNSPECIFIED, nextHeader: IpProtocol.TCP, payload: this.writer, offload: undefined };
  private readonly offload = { checksumOffset: TcpField.CHECKSUM, segmentSize: 0, transportHeaderLength: 0 };
  private readonly eventLog: TcpEventLog | undefined;
  private readonly ephemeral: { low: number; high: number };
  private readonly random: () => number;
  readonly synBacklog: number;
  private readonly syncookies: 0 | 1;
  private readonly challengeAckLimit: number;
  private challengeWindowStart = 0;
  private challengeCount = 0;
  private isClosed = false;
  /** The receive path's one segment view and Repr, re-pointed and rewritten for each segment. */
  private readonly rxSegment = new TcpPacket(EMPTY);
  private readonly rxRepr = new ReusedTcpRepr();
  /** A segment is being handled (one fed in from inside it gets a view and a Repr of its own). */
  private receiving = false;
  /** Connections whose ACK waits for the end of the batch being received (ackCoalescing). */
  private readonly acksDue: TcpConnection[] = [];

  constructor(options: TcpLayerOptions) {
    this.ipv4 = options.ipv4;
    this.ipv6 = options.ipv6;
    this.clock = options.clock;
    this.timers = new TimerQueue(options.clock);
    this.memory = new TcpMemory(options.memory, this.counters);
    this.params = options.params ?? {};
    this.secrets = new SequenceSecrets(options.secret);
    this.ephemeral = options.ephemeralPorts ?? { low: 49152, high: 65535 };
    this.random = options.random ?? Math.random;
    this.connections = new ConnectionTable<TcpConnection>(this.random);
    this.synBacklog = options.synBacklog ?? 256;
    this.syncookies = options.syncookies ?? 1;
    this.challengeAckLimit = options.challengeAckLimit ?? 1000;
    this.eventLog = options.tcpLog ? new TcpEventLog(this.clock, options.tcpLog) : undefined;
    // offloads: a super-frame and a checksum the kernel vouches for reach input() as they are.
    this.ipv4.register(IpProtocol.TCP, (packet, info) => this.input(packet, info), { offloads: true });
    this.ipv4.onBatchEnd(() => this.flushAcks());
    options.icmp?.onError(IpProtocol.TCP, (report) => {
      if (!this.isClosed) this.icmpError(report);
    });
    this.ipv6?.register(IpProtocol.TCP, (packet, info) => this.input6(packet, info), { offloads: true });
    options.icmpv6?.onError((report) => {
      if (!this.isClosed) this.icmpv6Error(report);
    });
  }

  /** What `listen(port)` binds without an address: `::` (both families) with IPv6, else 0.0.0.0. */
  get defaultListenAddress(): TcpAddress {
    return this.ipv6 ? Ipv6Address.UNSPECIFIED : IPV4_UNSPECIFIED;
  }

  /** A server like `net.createServer`: `stack.tcp.createServer(socket => ...).listen(80)`. */
  createServer(onConnection?: (socket: TcpSocket) => void): TcpServer {
    const server = new TcpServer(this);
    if (onConnection) server.on('connection', onConnection);
    return server;
  }

  /** Opens a connection like `net.connect({ port, host })`; the socket emits 'connect' when it is established. */
  connect(options: ConnectOptions, onConnect?: () => void): TcpSocket {
    this.checkOpen();
    const remoteAddress = toTcpAddress(options.host);
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) throw new TcpError('EINVAL', `port ${options.port} is not 1-65535`);
    const localAddress = this.sourceFor(remoteAddress);
    const localPort = options.localPort ?? this.pickEphemeral(remoteAddress, options.port, localAddress);
    const local = { address: localAddress, port: localPort };
    const remote = { address: remoteAddress, port: options.port };
    const socket = new TcpSocket({ hold: () => this.clock.hold() });
    if (onConnect) socket.once('connect', onConnect);
    const connection = TcpConnection.connect(this, {
      local,
      remote,
      iss: this.secrets.isn(tuple(local.address, local.port, remote.address, remote.port), this.clock.now()),
      localMss: this.mssTowards(remoteAddress),
      params: options.congestionControl ? { ...this.params, congestionControl: options.congestionControl } : this.params,
    });
    if (!this.connections.add(remoteAddress, options.port, localPort, connection, localAddress)) {
      connection.abort();
      throw new TcpError('EADDRINUSE', `${formatTcpEndpoint(local.address, localPort)} is already connected to ${formatTcpEndpoint(remoteAddress, options.port)}`);
    }
    this.counters.inc('ActiveOpens');
    socket.attach(connection);
    connection.attach(socket);
    if (options.noDelay) socket.setNoDelay(true);
    return socket;
  }

  /** Every connection's state, windows and timers (what `show()` prints), like `ss -ti`. */
  connectionInfo(): ConnectionInfo[] {
    return this.connections.values().map((c) => c.info());
  }

  /** Connections, one line each, like `ss -tn` with `-i` details. */
  show(): string {
    const rows = this.connections.values().map((c) => {
      const i = c.info();
      const srtt = i.srttMs === undefined ? '-' : i.srttMs.toFixed(1);
      return `${i.state.padEnd(12)} ${String(i.receiveQueue).padStart(6)} ${String(i.sendQueue).padStart(6)}  ${formatTcpEndpoint(i.local.address, i.local.port).padEnd(21)} ${formatTcpEndpoint(i.remote.address, i.remote.port).padEnd(21)} ${i.congestionControl} rto:${i.rtoMs.toFixed(0)} srtt:${srtt} mss:${i.mss} cwnd:${i.cwnd} ssthresh:${i.ssthresh > 1e9 ? '-' : i.ssthresh} retrans:${i.retransmits}`;
    });
    // ss's spelling: a `::` listener (both families) is `*:80`, its peer `*:*`
    const listening = [...this.listeners.entries()].map(([port, server]) => {
      const bound = server.boundAddress;
      const peer = typeof bound === 'number' ? '0.0.0.0:*' : bound.isUnspecified ? '*:*' : '[::]:*';
      return `${'LISTEN'.padEnd(12)} ${String(server.pendingCount).padStart(6)} ${String(server.backlog).padStart(6)}  ${formatTcpEndpoint(bound, port).padEnd(21)} ${peer.padEnd(21)}`;
    });
    return [`${'State'.padEnd(12)} ${'Recv-Q'.padStart(6)} ${'Send-Q'.padStart(6)}  ${'Local Address:Port'.padEnd(21)} ${'Peer Address:Port'.padEnd(21)}`, ...listening, ...rows].join('\n');
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Aborts every connection, closes every listener and leaves IPv4's (and IPv6's) table. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const server of [...this.listeners.values()]) server.close();
    for (const c of this.connections.values()) c.abort('ECONNABORTED');
    this.ipv4.unregister(IpProtocol.TCP);
    this.ipv6?.unregister(IpProtocol.TCP);
  }

  // ---------------------------------------------------------------------------------------
  // Receive

  /**
   * Takes one IPv4 datagram of protocol 6. The segment's data stays a view of the frame all the
   * way into the receive buffer (the IPv4 handler contract lets a handler keep the bytes).
   */
  input(packet: Ipv4Packet, info: Ipv4DeliveryInfo): void {
    const c = this.counters;
    if (info.destinationKind !== 'unicast') return c.inc('rx_not_unicast');
    const start = packet.payloadOffset;
    const segment = this.checkSegment(packet.buffer, start, start + packet.payloadLength);
    if (!segment) return;
    const source = packet.source;
    const destination = packet.destination;
    const offload = info.offload;
    if (!checksumVouched(offload, ETHERNET_HEADER_LENGTH + packet.headerLength) && !segment.verifyChecksum(source, destination)) {
      c.inc('InErrs');
      return c.inc('InCsumErrors');
    }
    // A super-frame counts as the segments it stands for, as Linux counts a GRO'd skb.
    if (offload !== undefined && offload.gso === 'tcpv4') this.inSegs.value += segmentsIn(segment.payloadLength, offload.segmentSize);
    else this.inSegs.value++;
    if (logging()) log('in  %s', formatTcp(segment.bytes, source, destination));
    const connection = this.connections.get(source, segment.sourcePort, segment.destinationPort);
    if (connection) return this.toConnection(connection, segment);
    // a listener may keep what it reads (a SYN's options in a new connection): a Repr of its own
    this.toListener(TcpRepr.parse(segment), segment.payload, source, destination);
  }

  /**
   * Takes one IPv6 packet whose upper layer is TCP (after any extension headers): the same walk
   * as `input`, with the checksum over IPv6's pseudo-header and the connection found by the
   * header's address bytes. Addresses become Ipv6Address values only for a listener or a RST.
   * IPv6's handler contract: `packet` and `info` are re-pointed at the next packet (nothing here
   * keeps them); the segment's bytes are ours to keep.
   */
  input6(packet: Ipv6Packet, info: Ipv6DeliveryInfo): void {
    const c = this.counters;
    // RFC 1122 4.2.3.10 for IPv6 too: a SYN to a group opens nothing (IPv6 hands us none unless asked).
    if (info.destinationKind !== 'unicast') return c.inc('rx_not_unicast');
    const payload = upperLayerMessage(packet, info);
    const segment = this.checkSegment(payload, 0, payload.length);
    if (!segment) return;
    const header = packet.bytes;
    const offload = info.offload;
    if (!checksumVouched(offload, ETHERNET_HEADER_LENGTH + info.payloadOffset) && tcp6ChecksumAt(payload, header) !== 0) {
      c.inc('InErrs');
      c.inc('InCsumErrors');
      return c.inc('Tcp6InCsumErrors');
    }
    // a TSO6 super-frame counts as the segments it stands for
    const segments = offload !== undefined && offload.gso === 'tcpv6' ? segmentsIn(segment.payloadLength, offload.segmentSize) : 1;
    this.inSegs.value += segments;
    c.inc('Tcp6InSegs', segments);
    if (logging()) log('in  %s', formatTcp(payload, packet.source, packet.destination));
    // source then destination: bytes 8..40 of the fixed header, the order the table keeps them in
    const connection = this.connections.getIpv6At(header, 8, segment.sourcePort, segment.destinationPort);
    if (connection) return this.toConnection(connection, segment);
    this.toListener(TcpRepr.parse(segment), segment.payload, packet.source, packet.destination);
  }

  /**
   * The header at `buffer[start..end)` checked (lengths, data offset, options) and the layer's one
   * view re-pointed at it (a view of its own when a segment arrives from inside another's
   * handling); a failure is counted under its reason.
   */
  private checkSegment(buffer: Uint8Array, start: number, end: number): TcpPacket | undefined {
    const failure = TcpPacket.checkAt(buffer, start, end);
    if (failure !== undefined) {
      this.counters.inc('InErrs');
      this.counters.inc(CHECK_FAILURE_COUNTER[failure]);
      return undefined;
    }
    if (this.receiving) return new TcpPacket(buffer, start, end);
    this.rxSegment.repoint(buffer, start, end);
    return this.rxSegment;
  }

  /**
   * A segment for a connection, read into the layer's one reused Repr: the connection reads it
   * during `input` and keeps values, never the Repr or its options. A segment fed in from inside
   * that (re-entry) gets a Repr of its own.
   */
  private toConnection(connection: TcpConnection, segment: TcpPacket): void {
    const reentered = this.receiving;
    const repr = reentered ? TcpRepr.parse(segment) : TcpRepr.readInto(segment, this.rxRepr);
    this.receiving = true;
    try {
      connection.input(repr, segment.payload);
    } finally {
      this.receiving = reentered;
    }
    if (this.eventLog) this.eventLog.changed(connection);
  }

  /** A segment no connection owns: a listener's (a SYN, or an ACK carrying a SYN cookie), else a RST. */
  private toListener(repr: TcpRepr, data: Uint8Array, source: TcpAddress, destination: TcpAddress): void {
    const server = this.listeners.get(repr.destinationPort);
    if (server && server.accepts(destination)) return this.listen(server, source, destination, repr, data);
    this.counters.inc('rx_no_socket');
    this.reset(repr, data.length, destination, source);
  }

  /** A segment for a listener (RFC 9293 3.10.7.2, "If the state is LISTEN"). */
  private listen(server: TcpServer, source: TcpAddress, destination: TcpAddress, seg: TcpRepr, data: Uint8Array): void {
    const f = seg.flags;
    if (f & TcpFlag.RST) return;
    if (f & TcpFlag.ACK) {
      // Either the end of a handshake we answered with a SYN cookie, or a stray: RST.
      if (this.syncookies && !(f & TcpFlag.SYN) && this.acceptCookie(server, source, destination, seg, data)) return;
      return this.reset(seg, data.length, destination, source);
    }
    if (!(f & TcpFlag.SYN)) return;
    const t = tuple(destination, seg.destinationPort, source, seg.sourcePort);
    if (server.pendingCount >= Math.min(server.backlog, this.synBacklog)) {
      if (!this.syncookies) {
        this.counters.inc('ListenOverflows');
        this.counters.inc('ListenDrops');
        return;
      }
      // RFC 4987 3.6: answer without keeping state; the ISN is the cookie.
      const cookie = this.secrets.cookie(t, seg.seq, seg.options.mss ?? TCP_DEFAULT_MSS, this.clock.now());
      this.counters.inc('SyncookiesSent');
      this.send(
        { sourcePort: seg.destinationPort, destinationPort: seg.sourcePort, seq: cookie, ack: seqAdd(seg.seq, 1), flags: TcpFlag.SYN | TcpFlag.ACK, window: 0xffff, urgentPointer: 0, options: { mss: Math.min(seg.options.mss ?? TCP_DEFAULT_MSS, this.mssTowards(source)) } },
        EMPTY,
        destination,
        source,
      );
      return;
    }
    const connection = TcpConnection.accept(
      this,
      { local: { address: destination, port: seg.destinationPort }, remote: { address: source, port: seg.sourcePort }, iss: this.secrets.isn(t, this.clock.now()), localMss: this.mssTowards(source), params: this.listenerParams(server) },
      seg,
    );
    this.connections.add(source, seg.sourcePort, seg.destinationPort, connection, destination);
    this.pending.set(connection, server);
    server.pendingCount++;
  }

  private acceptCookie(server: TcpServer, source: TcpAddress, destination: TcpAddress, seg: TcpRepr, data: Uint8Array): boolean {
    const t = tuple(destination, seg.destinationPort, source, seg.sourcePort);
    const mss = this.secrets.checkCookie(t, seqAdd(seg.ack, -1), seqAdd(seg.seq, -1), this.clock.now());
    if (mss === undefined) {
      this.counters.inc('SyncookiesFailed');
      return false;
    }
    this.counters.inc('SyncookiesRecv');
    const connection = TcpConnection.fromCookie(
      this,
      { local: { address: destination, port: seg.destinationPort }, remote: { address: source, port: seg.sourcePort }, iss: seqAdd(seg.ack, -1), localMss: this.mssTowards(source), params: this.listenerParams(server) },
      seg,
      mss,
    );
    this.connections.add(source, seg.sourcePort, seg.destinationPort, connection, destination);
    this.pending.set(connection, server);
    server.pendingCount++;
    this.established(connection);
    if (data.length > 0 || seg.flags & TcpFlag.FIN) connection.input(seg, data);
    return true;
  }

  /** The params a listener's connections get: the layer's, with the listener's congestion control when it set one. */
  private listenerParams(server: TcpServer): Partial<TcpParams> {
    return server.congestionControl ? { ...this.params, congestionControl: server.congestionControl } : this.params;
  }

  private reset(seg: TcpRepr, payloadLength: number, local: TcpAddress, remote: TcpAddress): void {
    const rst = resetFor(seg, payloadLength);
    if (!rst) return;
    this.counters.inc('OutRsts');
    this.send(rst, EMPTY, local, remote);
  }

  /** An ICMP error quoting one of our segments (RFC 1122 4.2.3.9): the quote names the connection. */
  private icmpError(report: IcmpErrorReport): void {
    const o = report.original;
    if (o.protocol !== IpProtocol.TCP || o.payload.length < 8) return;
    const sourcePort = (o.payload[0]! << 8) | o.payload[1]!;
    const destinationPort = (o.payload[2]! << 8) | o.payload[3]!;
    const connection = this.connections.get(o.destination, destinationPort, sourcePort);
    if (!connection) return;
    this.counters.inc('rx_icmp_errors');
    if (report.kind === 'destination-unreachable' && report.code === 4) connection.icmpError('fragmentation-needed', report.nextHopMtu);
    else if (report.kind === 'destination-unreachable' && (report.code === 2 || report.code === 3)) connection.icmpError('refused');
    else connection.icmpError('unreachable');
  }

  /** The end of a received batch: one ACK for each connection that got in-order data in it. */
  private flushAcks(): void {
    const due = this.acksDue;
    // flushAck sends, and a send never feeds the receive path: the list does not grow meanwhile.
    for (let i = 0; i < due.length; i++) due[i]!.flushAck();
    due.length = 0;
  }

  /**
   * An ICMPv6 error quoting one of our segments, found by the quote's 4-tuple. Packet Too Big
   * lowers the connection's MSS to the new path MTU (RFC 8201 5.2; ICMPv6 has already lowered
   * IPv6's path MTU entry); port unreachable (code 4) refuses a connection in SYN-SENT as IPv4's
   * protocol/port unreachable does (Linux icmpv6_err_convert: ECONNREFUSED); the rest are soft
   * errors (RFC 5461).
   */
  private icmpv6Error(report: Icmpv6ErrorReport): void {
    const o = report.original;
    if (o.nextHeader !== IpProtocol.TCP || o.payload.length < 8) return;
    const sourcePort = (o.payload[0]! << 8) | o.payload[1]!;
    const destinationPort = (o.payload[2]! << 8) | o.payload[3]!;
    const connection = this.connections.find(o.destination, destinationPort, sourcePort, o.source);
    if (!connection) return;
    this.counters.inc('rx_icmp_errors');
    if (report.kind === 'packet-too-big') connection.icmpError('fragmentation-needed', report.parameter);
    else if (report.kind === 'destination-unreachable' && report.code === 4) connection.icmpError('refused');
    else connection.icmpError('unreachable');
  }

  // ---------------------------------------------------------------------------------------
  // ConnectionHost: what connections call

  deferAck(connection: TcpConnection): boolean {
    if (!this.ipv4.inBatch) return false;
    this.acksDue.push(connection);
    return true;
  }

  output(connection: TcpConnection, repr: TcpRepr, payload: SegmentData): void {
    if (this.eventLog) this.eventLog.sent(connection, repr, payload.length);
    // Longer than one segment can only be a super-frame the connection built for a GSO link
    // (asked only there: the segment size costs a look at the SACK blocks).
    const segmentSize = payload.length > 0 && (typeof connection.remote.address === 'number' ? this.ipv4.gsoMaxSize : (this.ipv6?.gsoMaxSize ?? 0)) > 0 ? connection.segmentSize : 0;
    this.send(repr, payload, connection.local.address, connection.remote.address, payload.length > segmentSize ? segmentSize : 0);
  }

  /**
   * The link's super-frame limit (0: none), for connections deciding how much one send carries.
   * One link carries both families, so IPv6 connections read the same value; a connection sizes
   * its super-frames for its own family's IP header (TcpConnection.largestSend).
   */
  get gsoMaxSize(): number {
    return this.ipv4.gsoMaxSize;
  }

  /**
   * Whether `connection` may send one more segment in this run of JavaScript. On a link with a
   * burst limit (a TAP device: 256 frames), the connections together send at most that many
   * segments per run; one that is refused waits for the next turn of the event loop, after the
   * device was read (setImmediate runs after the poll phase), and goes on from there. Without
   * this a window of thousands of segments went out in one go: the kernel, answering each
   * frame at once, filled tap0's queue towards us with ACKs and dropped the rest, and the
   * retransmission timer ran out while the burst was still being written (docs/10-performance.md).
   */
  mayBurst(connection: TcpConnection): boolean {
    if (this.burstLeft > 0) {
      this.burstLeft--;
      return true;
    }
    if (!this.burstRunOpen) {
      const limit = this.ipv4.sendBurstLimit;
      if (limit <= 0) return true;
      this.burstRunOpen = true;
      this.burstLeft = limit - 1;
      queueMicrotask(this.closeBurstRun);
      return true;
    }
    if (!this.held.has(connection)) {
      this.held.add(connection);
      this.counters.inc('tx_burst_held');
    }
    if (!this.resumeQueued) {
      this.resumeQueued = true;
      setImmediate(this.resumeHeld);
    }
    return false;
  }

  private burstLeft = 0;
  private burstRunOpen = false;
  private resumeQueued = false;
  private readonly held = new Set<TcpConnection>();
  /** The end of a run of JavaScript: the next one has a fresh burst. */
  private readonly closeBurstRun = (): void => {
    this.burstRunOpen = false;
    this.burstLeft = 0;
  };
  private readonly resumeHeld = (): void => {
    this.resumeQueued = false;
    if (this.held.size === 0) return;
    const held = [...this.held];
    this.held.clear();
    for (const c of held) c.resumeSending();
  };

  established(connection: TcpConnection): void {
    if (this.eventLog) this.eventLog.changed(connection);
    const server = this.pending.get(connection);
    if (!server) return;
    this.pending.delete(connection);
    server.pendingCount--;
    this.counters.inc('PassiveOpens');
    if (!server.listening) {
      connection.abort();
      return;
    }
    const socket = new TcpSocket({ hold: () => this.clock.hold() });
    socket.attach(connection);
    connection.attach(socket);
    server.deliver(socket);
  }

  forget(connection: TcpConnection): void {
    if (this.eventLog) this.eventLog.gone(connection);
    this.connections.delete(connection.remote.address, connection.remote.port, connection.local.port, connection, connection.local.address);
    const server = this.pending.get(connection);
    if (server) {
      this.pending.delete(connection);
      server.pendingCount--;
    }
  }

  count(name: ConnectionCounter, by = 1): void {
    this.counters.inc(name, by);
  }

  allowChallengeAck(): boolean {
    const now = this.clock.now();
    if (now - this.challengeWindowStart >= 1000) {
      this.challengeWindowStart = now;
      this.challengeCount = 0;
    }
    if (this.challengeCount >= this.challengeAckLimit) return false;
    this.challengeCount++;
    return true;
  }

  // ---------------------------------------------------------------------------------------
  // ListenerHost: what servers call

  bindListener(server: TcpServer, port: number, address: TcpAddress): number {
    this.checkOpen();
    if (typeof address !== 'number') {
      const ipv6 = this.ipv6;
      if (!ipv6) throw new TcpError('EADDRNOTAVAIL', `this stack has no IPv6, cannot listen on ${address.toString()}`);
      // RFC 4862 5.4: a tentative (or duplicate) address is not ours to use yet
      if (!address.isUnspecified && !ipv6.addresses.isAssigned(address)) {
        throw new TcpError('EADDRNOTAVAIL', `${address.toString()} is not a usable address of this stack (see ipv6.addresses.show())`);
      }
    } else if (address !== 0 && address !== this.ipv4.address.address) {
      throw new TcpError('EADDRNOTAVAIL', `${formatIpv4(address)} is not an address of this stack (it has ${formatIpv4(this.ipv4.address.address)})`);
    }
    const chosen = port === 0 ? this.pickEphemeral(IPV4_UNSPECIFIED, 0, IPV4_UNSPECIFIED) : port;
    if (this.listeners.has(chosen)) throw new TcpError('EADDRINUSE', `port ${chosen} is already listening; close that server or pick another port`);
    this.listeners.set(chosen, server);
    return chosen;
  }

  unbindListener(server: TcpServer, port: number): void {
    if (this.listeners.get(port) === server) this.listeners.delete(port);
    // Half-open connections of a closed listener are dropped (Linux inet_csk_listen_stop).
    for (const [connection, s] of [...this.pending]) if (s === server) connection.abort();
  }

  // ---------------------------------------------------------------------------------------

  /**
   * Writes one segment and hands it to IPv4. With `segmentSize` (a super-frame of several
   * segments' data), the checksum and the cutting into segments of `segmentSize` bytes are left
   * to the link (virtio-net header mode): IPv4 passes the request on as the frame's offload.
   */
  private send(repr: TcpRepr, payload: Uint8Array | SegmentData, source: TcpAddress, destination: TcpAddress, segmentSize = 0): void {
    if (typeof destination !== 'number') return this.send6(repr, payload, source as Ipv6Address, destination, segmentSize);
    const request = this.request4;
    request.destination = destination;
    request.source = source as Ipv4Address;
    request.offload = this.loadWriter(repr, payload, source, destination, segmentSize);
    const outcome = this.ipv4.send(request);
    request.offload = undefined;
    this.releaseWriter(payload.length, segmentSize, outcome === 'sent' || outcome === 'queued');
  }

  /**
   * The IPv6 send: the source is the connection's (chosen at connect or taken from the SYN), so
   * the checksum is written with the segment. Never fragmented in practice: the MSS keeps a
   * segment inside the path MTU (IPv6 routers do not fragment, RFC 8200 5). TSO6 as over IPv4.
   */
  private send6(repr: TcpRepr, payload: Uint8Array | SegmentData, source: Ipv6Address, destination: Ipv6Address, segmentSize = 0): void {
    const ipv6 = this.ipv6;
    if (!ipv6) return this.counters.inc('tx_failed');
    const request = this.request6;
    request.destination = destination;
    request.source = source;
    request.offload = this.loadWriter(repr, payload, source, destination, segmentSize);
    const outcome = ipv6.send(request);
    request.offload = undefined;
    this.counters.inc('Tcp6OutSegs', segmentsIn(payload.length, segmentSize));
    this.releaseWriter(payload.length, segmentSize, outcome === 'sent' || outcome === 'queued');
  }

  /**
   * Points the layer's one segment writer at this segment (IP calls it to write the bytes in
   * place). With `segmentSize`, a super-frame: the checksum is left partial and the returned
   * offload asks the device to finish it and cut the data into segments of that size.
   */
  private loadWriter(repr: TcpRepr, payload: Uint8Array | SegmentData, source: TcpAddress, destination: TcpAddress, segmentSize: number): TransportOffloadRequest | undefined {
    const w = this.writer;
    const headerLength = TcpRepr.headerLength(repr);
    w.repr = repr;
    w.payload = payload;
    w.source = source;
    w.destination = destination;
    w.length = headerLength + payload.length;
    w.partialChecksum = segmentSize > 0;
    if (logging()) log('out %s', formatTcp(encodeForLog(repr, payload, source, destination), source, destination));
    if (segmentSize === 0) return undefined;
    const offload = this.offload;
    offload.segmentSize = segmentSize;
    offload.transportHeaderLength = headerLength;
    return offload;
  }

  /** After the send: the writer lets go of the segment's data; a super-frame counts as its segments. */
  private releaseWriter(payloadLength: number, segmentSize: number, sent: boolean): void {
    const w = this.writer;
    w.repr = undefined;
    w.payload = EMPTY;
    w.partialChecksum = false;
    const segments = segmentsIn(payloadLength, segmentSize);
    if (segments > 1) this.counters.inc('OutSegs', segments - 1);
    if (!sent) this.counters.inc('tx_failed');
  }

  /** Our address for a connection to `remote`: IPv4's one, or IPv6's choice (RFC 6724: link-local for a link-local peer). */
  private sourceFor(remote: TcpAddress): TcpAddress {
    if (typeof remote === 'number') return this.ipv4.address.address;
    const ipv6 = this.ipv6;
    if (!ipv6) throw new TcpError('EADDRNOTAVAIL', `this stack has no IPv6, cannot connect to ${remote.toString()}`);
    if (remote.isMulticast || remote.isUnspecified) throw new TcpError('EINVAL', `${remote.toString()} is not a unicast address`);
    const source = ipv6.sourceFor(remote);
    if (!source) {
      this.counters.inc('tx_no_source');
      throw new TcpError('EADDRNOTAVAIL', `no usable IPv6 address to reach ${remote.toString()} from (still tentative? see ipv6.addresses.show())`);
    }
    return source;
  }

  /** The MSS we announce towards `remote`: the route MTU less IPv4's 40 or IPv6's 60 bytes of headers. */
  private mssTowards(remote: TcpAddress): number {
    if (typeof remote === 'number' || !this.ipv6) return mssForMtu(this.ipv4.mtu);
    return mssForMtu(this.ipv6.pathMtu(remote), IPV6_FIXED_HEADER_LENGTH);
  }

  private pickEphemeral(remote: TcpAddress, remotePort: number, local: TcpAddress): number {
    const { low, high } = this.ephemeral;
    const span = high - low + 1;
    const start = Math.floor(this.random() * span) % span;
    for (let i = 0; i < span; i++) {
      const port = low + ((start + i) % span);
      if (this.listeners.has(port)) continue;
      if (remotePort === 0 ? this.connections.usesLocalPort(port) : this.connections.find(remote, remotePort, port, local)) continue;
      return port;
    }
    throw new TcpError('EAGAIN', `every ephemeral port ${low}-${high} is in use`);
  }

  private checkOpen(): void {
    if (this.isClosed) throw new TcpError('EINVAL', 'the TCP layer is closed');
  }
}

function tuple(localAddress: TcpAddress, localPort: number, remoteAddress: TcpAddress, remotePort: number): FourTuple {
  return { localAddress, localPort, remoteAddress, remotePort };
}

/** The bytes of a segment, for a debug line only. */
function encodeForLog(repr: TcpRepr, payload: Uint8Array | SegmentData, source: TcpAddress, destination: TcpAddress): Uint8Array {
  const b = new Uint8Array(TcpRepr.bufferLength(repr, payload.length));
  TcpRepr.emit(repr, payload, b, source, destination);
  return b;
}

const EMPTY = new Uint8Array(0);

/** How many segments of `segmentSize` data bytes carry `dataLength` bytes (at least 1). */
/**
 * The device vouches for a segment's checksum when the kernel checked it ('valid'), or left it
 * partial because the segment comes from its own stack (virtio-net header mode) and the partial
 * sum names our checksum field (`transportStart`: where TCP's header begins in the frame). Such
 * a checksum is not summed again: that is the saving. A partial sum naming another field is
 * checked (and fails).
 */
function checksumVouched(offload: FrameOffload | undefined, transportStart: number): boolean {
  if (offload === undefined) return false;
  if (offload.checksum === 'valid') return true;
  return offload.checksum === 'partial' && offload.checksumStart === transportStart && offload.checksumOffset === TcpField.CHECKSUM;
}

function segmentsIn(dataLength: number, segmentSize: number): number {
  return segmentSize > 0 ? Math.max(1, Math.ceil(dataLength / segmentSize)) : 1;
}
