/**
 * The TCP layer: protocol 6 in IPv4's dispatch table. It checks what arrives, finds the
 * connection or listener a segment belongs to, answers segments nobody wants with a RST, writes
 * the segments connections make, and passes ICMP errors to the connection they concern.
 *
 * Receive: check the header and options (drops counted by reason), verify the checksum
 * (InCsumErrors), look the 4-tuple up among connections, then the port among listeners; a SYN to
 * a listener becomes a connection in SYN-RECEIVED (or, when the SYN queue is full, a SYN cookie);
 * anything else gets the RST of RFC 9293 3.10.7.1. Segments to broadcast or multicast addresses
 * are dropped without an answer (RFC 1122 4.2.3.10).
 *
 * Counters carry the names of Linux's /proc/net/snmp `Tcp:` line and /proc/net/netstat `TcpExt:`
 * (ActiveOpens, PassiveOpens, InSegs, OutRsts, SyncookiesSent, TCPChallengeACK, ...), so the
 * numbers read side by side with `nstat` on the kernel.
 */
import debugFactory from 'debug';
import type { IcmpErrorReport, IcmpLayer } from '@tapstack/icmp';
import type { Ipv4DeliveryInfo, Ipv4Layer, Ipv4Packet, PayloadWriter } from '@tapstack/ipv4';
import { IpProtocol } from '@tapstack/ipv4';
import { Counters, ETHERNET_HEADER_LENGTH, formatIpv4, hotPathLogging, IPV4_UNSPECIFIED, parseIpv4, TimerQueue, type Clock, type Ipv4Address } from '@tapstack/link';
import type { CongestionControlChoice } from './congestion.ts';
import { TcpConnection, type ConnectionCounter, type ConnectionHost, type ConnectionInfo, type TcpParams } from './connection.ts';
import { ConnectionTable } from './demux.ts';
import { TcpError } from './errors.ts';
import { TcpEventLog, type TcpLogSink } from './event-log.ts';
import { formatTcp, mssForMtu, TCP_DEFAULT_MSS, TcpField, TcpFlag, TcpPacket, TcpRepr, type TcpCheckError } from './header.ts';
import { SequenceSecrets } from './isn.ts';
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
  'TCPOFOQueue',
  'TCPPureAcks',
  'DelayedACKs',
  'tx_acks_coalesced',
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
] as const;
export type TcpCounterName = (typeof TCP_COUNTERS)[number] | ConnectionCounter;

const CHECK_FAILURE_COUNTER: Record<TcpCheckError, TcpCounterName> = {
  truncated: 'rx_truncated',
  bad_data_offset: 'rx_bad_data_offset',
  bad_option_length: 'rx_bad_option_length',
};

export interface TcpLayerOptions {
  ipv4: Ipv4Layer;
  /** ICMP errors about our segments reach connections through it. */
  icmp?: IcmpLayer;
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
}

export interface ConnectOptions {
  port: number;
  host: string | Ipv4Address;
  /** Local port (default: ephemeral). */
  localPort?: number;
  noDelay?: boolean;
  /** This connection's congestion control, as Linux's TCP_CONGESTION socket option (default: the layer's params). */
  congestionControl?: CongestionControlChoice;
}

/** Writes one segment into IPv4's outgoing frame: header, options, data and checksum in one pass. */
class SegmentWriter implements PayloadWriter {
  length = 0;
  repr: TcpRepr | undefined;
  payload: Uint8Array | SegmentData = EMPTY;
  source: Ipv4Address = IPV4_UNSPECIFIED;
  destination: Ipv4Address = IPV4_UNSPECIFIED;
  /** The link finishes the checksum (a super-frame): write the pseudo-header's sum only. */
  partialChecksum = false;

  write(target: Uint8Array): void {
    TcpRepr.emit(this.repr!, this.payload, target, this.source, this.destination, 0, this.partialChecksum);
  }
}

export class TcpLayer implements ConnectionHost, ListenerHost {
  readonly counters = new Counters<TcpCounterName>('tcp', TCP_COUNTERS);
  readonly clock: Clock;
  /** Every connection's timers (retransmission, delayed ACK, persist, keepalive, RACK, TLP, close) on one clock timer. */
  readonly timers: TimerQueue;
  readonly params: Partial<TcpParams>;
  private readonly inSegs = this.counters.counter('InSegs');
  private readonly ipv4: Ipv4Layer;
  private readonly connections = new ConnectionTable<TcpConnection>();
  private readonly listeners = new Map<number, TcpServer>();
  /** Which listener a connection in SYN-RECEIVED came from. */
  private readonly pending = new Map<TcpConnection, TcpServer>();
  private readonly sockets = new Map<TcpConnection, TcpSocket>();
  private readonly secrets: SequenceSecrets;
  private readonly writer = new SegmentWriter();
  private readonly eventLog: TcpEventLog | undefined;
  private readonly ephemeral: { low: number; high: number };
  private readonly random: () => number;
  readonly synBacklog: number;
  private readonly syncookies: 0 | 1;
  private readonly challengeAckLimit: number;
  private challengeWindowStart = 0;
  private challengeCount = 0;
  private isClosed = false;
  /** Connections whose ACK waits for the end of the batch being received (ackCoalescing). */
  private readonly acksDue: TcpConnection[] = [];

  constructor(options: TcpLayerOptions) {
    this.ipv4 = options.ipv4;
    this.clock = options.clock;
    this.timers = new TimerQueue(options.clock);
    this.params = options.params ?? {};
    this.secrets = new SequenceSecrets(options.secret);
    this.ephemeral = options.ephemeralPorts ?? { low: 49152, high: 65535 };
    this.random = options.random ?? Math.random;
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
    const remoteAddress = typeof options.host === 'string' ? toAddress(options.host) : options.host;
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) throw new TcpError('EINVAL', `port ${options.port} is not 1-65535`);
    const localPort = options.localPort ?? this.pickEphemeral(remoteAddress, options.port);
    const local = { address: this.ipv4.address.address, port: localPort };
    const remote = { address: remoteAddress, port: options.port };
    const socket = new TcpSocket({ hold: () => this.clock.hold() });
    if (onConnect) socket.once('connect', onConnect);
    const connection = TcpConnection.connect(this, {
      local,
      remote,
      iss: this.secrets.isn(tuple(local.address, local.port, remote.address, remote.port), this.clock.now()),
      localMss: mssForMtu(this.ipv4.mtu),
      params: options.congestionControl ? { ...this.params, congestionControl: options.congestionControl } : this.params,
    });
    if (!this.connections.add(remoteAddress, options.port, localPort, connection)) {
      connection.abort();
      throw new TcpError('EADDRINUSE', `${formatIpv4(local.address)}:${localPort} is already connected to ${formatIpv4(remoteAddress)}:${options.port}`);
    }
    this.counters.inc('ActiveOpens');
    this.sockets.set(connection, socket);
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
      return `${i.state.padEnd(12)} ${String(i.receiveQueue).padStart(6)} ${String(i.sendQueue).padStart(6)}  ${`${formatIpv4(i.local.address)}:${i.local.port}`.padEnd(21)} ${`${formatIpv4(i.remote.address)}:${i.remote.port}`.padEnd(21)} ${i.congestionControl} rto:${i.rtoMs.toFixed(0)} srtt:${srtt} mss:${i.mss} cwnd:${i.cwnd} ssthresh:${i.ssthresh > 1e9 ? '-' : i.ssthresh} retrans:${i.retransmits}`;
    });
    const listening = [...this.listeners.entries()].map(([port, server]) => `${'LISTEN'.padEnd(12)} ${String(server.pendingCount).padStart(6)} ${String(server.backlog).padStart(6)}  ${`${formatIpv4(server.boundAddress)}:${port}`.padEnd(21)} ${'0.0.0.0:*'.padEnd(21)}`);
    return [`${'State'.padEnd(12)} ${'Recv-Q'.padStart(6)} ${'Send-Q'.padStart(6)}  ${'Local Address:Port'.padEnd(21)} ${'Peer Address:Port'.padEnd(21)}`, ...listening, ...rows].join('\n');
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Aborts every connection, closes every listener and leaves IPv4's table. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const server of [...this.listeners.values()]) server.close();
    for (const c of this.connections.values()) c.abort('ECONNABORTED');
    this.ipv4.unregister(IpProtocol.TCP);
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
    const payload = packet.payload;
    const checked = TcpPacket.check(payload);
    if (!checked.ok) {
      c.inc('InErrs');
      return c.inc(CHECK_FAILURE_COUNTER[checked.reason]);
    }
    const source = packet.source;
    const destination = packet.destination;
    const segment = checked.value;
    // A checksum the kernel checked ('valid') or never computed because the segment comes from
    // its own stack ('partial', virtio-net header mode) is not summed again: that is the saving.
    // A 'partial' one must name our checksum field; one that names another is checked (and fails).
    const offload = info.offload;
    const vouched =
      offload !== undefined &&
      (offload.checksum === 'valid' ||
        (offload.checksum === 'partial' && offload.checksumStart === ETHERNET_HEADER_LENGTH + packet.headerLength && offload.checksumOffset === TcpField.CHECKSUM));
    if (!vouched) {
      if (!segment.verifyChecksum(source, destination)) {
        c.inc('InErrs');
        return c.inc('InCsumErrors');
      }
    }
    // A super-frame counts as the segments it stands for, as Linux counts a GRO'd skb.
    if (offload !== undefined && offload.gso === 'tcpv4') this.inSegs.value += segmentsIn(segment.payload.length, offload.segmentSize);
    else this.inSegs.value++;
    if (logging()) log('in  %s', formatTcp(payload, source, destination));
    const repr = TcpRepr.parse(segment);
    const data = segment.payload;
    const connection = this.connections.get(source, repr.sourcePort, repr.destinationPort);
    if (connection) {
      connection.input(repr, data);
      if (this.eventLog) this.eventLog.changed(connection);
      return;
    }
    const server = this.listeners.get(repr.destinationPort);
    if (server && server.accepts(destination)) return this.listen(server, source, destination, repr, data);
    c.inc('rx_no_socket');
    this.reset(repr, data.length, destination, source);
  }

  /** A segment for a listener (RFC 9293 3.10.7.2, "If the state is LISTEN"). */
  private listen(server: TcpServer, source: Ipv4Address, destination: Ipv4Address, seg: TcpRepr, data: Uint8Array): void {
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
        { sourcePort: seg.destinationPort, destinationPort: seg.sourcePort, seq: cookie, ack: seqAdd(seg.seq, 1), flags: TcpFlag.SYN | TcpFlag.ACK, window: 0xffff, urgentPointer: 0, options: { mss: Math.min(seg.options.mss ?? TCP_DEFAULT_MSS, mssForMtu(this.ipv4.mtu)) } },
        EMPTY,
        destination,
        source,
      );
      return;
    }
    const connection = TcpConnection.accept(
      this,
      { local: { address: destination, port: seg.destinationPort }, remote: { address: source, port: seg.sourcePort }, iss: this.secrets.isn(t, this.clock.now()), localMss: mssForMtu(this.ipv4.mtu), params: this.listenerParams(server) },
      seg,
    );
    this.connections.add(source, seg.sourcePort, seg.destinationPort, connection);
    this.pending.set(connection, server);
    server.pendingCount++;
  }

  private acceptCookie(server: TcpServer, source: Ipv4Address, destination: Ipv4Address, seg: TcpRepr, data: Uint8Array): boolean {
    const t = tuple(destination, seg.destinationPort, source, seg.sourcePort);
    const mss = this.secrets.checkCookie(t, seqAdd(seg.ack, -1), seqAdd(seg.seq, -1), this.clock.now());
    if (mss === undefined) {
      this.counters.inc('SyncookiesFailed');
      return false;
    }
    this.counters.inc('SyncookiesRecv');
    const connection = TcpConnection.fromCookie(
      this,
      { local: { address: destination, port: seg.destinationPort }, remote: { address: source, port: seg.sourcePort }, iss: seqAdd(seg.ack, -1), localMss: mssForMtu(this.ipv4.mtu), params: this.listenerParams(server) },
      seg,
      mss,
    );
    this.connections.add(source, seg.sourcePort, seg.destinationPort, connection);
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

  private reset(seg: TcpRepr, payloadLength: number, local: Ipv4Address, remote: Ipv4Address): void {
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
    const segmentSize = payload.length > 0 && this.ipv4.gsoMaxSize > 0 ? connection.segmentSize : 0;
    this.send(repr, payload, connection.local.address, connection.remote.address, payload.length > segmentSize ? segmentSize : 0);
  }

  /** The link's super-frame limit (0: none), for connections deciding how much one send carries. */
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
    this.sockets.set(connection, socket);
    socket.attach(connection);
    connection.attach(socket);
    server.deliver(socket);
  }

  forget(connection: TcpConnection): void {
    if (this.eventLog) this.eventLog.gone(connection);
    this.connections.delete(connection.remote.address, connection.remote.port, connection.local.port, connection);
    this.sockets.delete(connection);
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

  bindListener(server: TcpServer, port: number, address: Ipv4Address): number {
    this.checkOpen();
    if (address !== 0 && address !== this.ipv4.address.address) {
      throw new TcpError('EADDRNOTAVAIL', `${formatIpv4(address)} is not an address of this stack (it has ${formatIpv4(this.ipv4.address.address)})`);
    }
    const chosen = port === 0 ? this.pickEphemeral(IPV4_UNSPECIFIED, 0) : port;
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
  private send(repr: TcpRepr, payload: Uint8Array | SegmentData, source: Ipv4Address, destination: Ipv4Address, segmentSize = 0): void {
    const w = this.writer;
    w.repr = repr;
    w.payload = payload;
    w.source = source;
    w.destination = destination;
    w.length = TcpRepr.bufferLength(repr, payload.length);
    w.partialChecksum = segmentSize > 0;
    if (logging()) log('out %s', formatTcp(encodeForLog(repr, payload, source, destination), source, destination));
    const offload = segmentSize > 0 ? { checksumOffset: TcpField.CHECKSUM, segmentSize, transportHeaderLength: TcpRepr.headerLength(repr) } : undefined;
    const outcome = this.ipv4.send({ destination, protocol: IpProtocol.TCP, payload: w, source, dontFragment: true, offload });
    if (segmentSize > 0) this.counters.inc('OutSegs', segmentsIn(payload.length, segmentSize) - 1);
    w.repr = undefined;
    w.payload = EMPTY;
    w.partialChecksum = false;
    if (outcome !== 'sent' && outcome !== 'queued') this.counters.inc('tx_failed');
  }

  private pickEphemeral(remote: Ipv4Address, remotePort: number): number {
    const { low, high } = this.ephemeral;
    const span = high - low + 1;
    const start = Math.floor(this.random() * span) % span;
    for (let i = 0; i < span; i++) {
      const port = low + ((start + i) % span);
      if (this.listeners.has(port)) continue;
      if (remotePort === 0 ? this.connections.usesLocalPort(port) : this.connections.get(remote, remotePort, port)) continue;
      return port;
    }
    throw new TcpError('EAGAIN', `every ephemeral port ${low}-${high} is in use`);
  }

  private checkOpen(): void {
    if (this.isClosed) throw new TcpError('EINVAL', 'the TCP layer is closed');
  }
}

function tuple(localAddress: number, localPort: number, remoteAddress: number, remotePort: number) {
  return { localAddress, localPort, remoteAddress, remotePort };
}

function toAddress(text: string): Ipv4Address {
  try {
    return parseIpv4(text);
  } catch (err) {
    throw new TcpError('EINVAL', (err as Error).message);
  }
}

/** The bytes of a segment, for a debug line only. */
function encodeForLog(repr: TcpRepr, payload: Uint8Array | SegmentData, source: Ipv4Address, destination: Ipv4Address): Uint8Array {
  const b = new Uint8Array(TcpRepr.bufferLength(repr, payload.length));
  TcpRepr.emit(repr, payload, b, source, destination);
  return b;
}

const EMPTY = new Uint8Array(0);

/** How many segments of `segmentSize` data bytes carry `dataLength` bytes (at least 1). */
function segmentsIn(dataLength: number, segmentSize: number): number {
  return segmentSize > 0 ? Math.max(1, Math.ceil(dataLength / segmentSize)) : 1;
}
