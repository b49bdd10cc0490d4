/**
 * One TCP connection: the state machine of RFC 9293 (3.3.2, and the event processing of 3.10),
 * with Linux as the model where the RFC leaves a choice.
 *
 * It takes segments as `TcpRepr` + payload (`input`) and makes them through the `output`
 * callback; it knows nothing of bytes on the wire, of IPv4, or of streams. Application calls
 * come from the socket (`write`, `read`, `shutdown`, `abort`, `release`) and news goes back
 * through `SocketEvents`. Every timer runs on the injected clock, so a test drives a connection
 * with segments and a virtual clock alone.
 *
 *                              +---------+ ---------\      active OPEN
 *                              |  CLOSED |            \    -----------
 *                              +---------+<---------\   \   create TCB
 *                                |     ^              \   \  snd SYN
 *                   passive OPEN |     |   CLOSE        \   \
 *                   ------------ |     | ----------       \   \
 *                    create TCB  |     | delete TCB         \   \
 *                                V     |                      \   \
 *            rcv RST (note 1)  +---------+            CLOSE    |    \
 *         -------------------->|  LISTEN |          ---------- |     |
 *        /                     +---------+          delete TCB |     |
 *       /           rcv SYN      |     |     SEND              |     |
 *      /           -----------   |     |    -------            |     V
 *  +--------+      snd SYN,ACK  /       \   snd SYN          +--------+
 *  |        |<-----------------           ------------------>|        |
 *  |  SYN   |                    rcv SYN                     |  SYN   |
 *  |  RCVD  |<-----------------------------------------------|  SENT  |
 *  |        |                  snd SYN,ACK                   |        |
 *  |        |------------------           -------------------|        |
 *  +--------+   rcv ACK of SYN  \       /  rcv SYN,ACK       +--------+
 *     |         --------------   |     |   -----------
 *     |                x         |     |     snd ACK
 *     |                          V     V
 *     |  CLOSE                 +---------+
 *     | -------                |  ESTAB  |
 *     | snd FIN                +---------+
 *     |                 CLOSE    |     |    rcv FIN
 *     V                -------   |     |    -------
 *  +---------+         snd FIN  /       \   snd ACK         +---------+
 *  |  FIN    |<----------------           ------------------>|  CLOSE  |
 *  | WAIT-1  |------------------                             |   WAIT  |
 *  +---------+          rcv FIN  \                           +---------+
 *    | rcv ACK of FIN   -------   |                           CLOSE  |
 *    | --------------   snd ACK   |                          ------- |
 *    V        x                   V                          snd FIN V
 *  +---------+               +---------+                     +---------+
 *  |FINWAIT-2|               | CLOSING |                     | LAST-ACK|
 *  +---------+               +---------+                     +---------+
 *    |              rcv ACK of FIN |                 rcv ACK of FIN |
 *    |  rcv FIN     -------------- |    Timeout=2MSL -------------- |
 *    |  -------            x       V    ------------        x       V
 *     \ snd ACK              +---------+delete TCB           +---------+
 *       -------------------->|TIME-WAIT|-------------------->| CLOSED  |
 *                            +---------+                     +---------+
 *
 * (The diagram is RFC 9293's figure 5. LISTEN lives in the listener, which creates a connection
 * in SYN-RECEIVED for each SYN it accepts.)
 */
import debugFactory from 'debug';
import { match } from 'ts-pattern';
import { TimerQueue, type Clock, type Deadline } from '@tapstack/link';
import type { TcpAddress } from './address.ts';
import { INITIAL_WINDOW_SEGMENTS, NewReno, type CongestionControl, type CongestionControlChoice, type CongestionState } from './congestion.ts';
import { Cubic } from './cubic.ts';
import type { TcpErrorCode } from './errors.ts';
import { IPV6_FIXED_HEADER_LENGTH, mssForMtu, ReusedTcpOptions, ReusedTcpRepr, TCP_DEFAULT_MSS, TCP_MAX_WINDOW_SCALE, TcpFlag, segmentLength, type SackBlock, type TcpRepr } from './header.ts';
import { ReceiveAutotuner, sendBufferTarget } from './autotune.ts';
import { ReceiveBuffer } from './receive-buffer.ts';
import { sackBlocksToSend } from './sack-blocks.ts';
import { SackScoreboard, type SentSegment } from './sack-scoreboard.ts';
import { DEFAULT_RTO_LIMITS, RtoEstimator, type RtoLimits } from './rto.ts';
import { TcpMemory } from './memory.ts';
import { NO_DATA, SendBuffer, type SegmentData } from './send-buffer.ts';
import { seqAdd, seqDiff, seqGe, seqGt, seqInWindow, seqLe, seqLt, seqMax } from './seq.ts';
import type { SocketConnection, SocketEvents } from './socket.ts';

const log = debugFactory('tapstack:tcp');

export type TcpState =
  | 'SYN-SENT'
  | 'SYN-RECEIVED'
  | 'ESTABLISHED'
  | 'FIN-WAIT-1'
  | 'FIN-WAIT-2'
  | 'CLOSE-WAIT'
  | 'CLOSING'
  | 'LAST-ACK'
  | 'TIME-WAIT'
  | 'CLOSED';

/** Tunables, Linux's names and defaults (sysctl net.ipv4.tcp_*). */
export interface TcpParams {
  /** Send buffer, bytes (what write() may queue before backpressure); autotuning grows it. */
  sendBufferBytes: number;
  /** Receive buffer, bytes: the most we advertise and the most we hold; autotuning grows it. */
  receiveBufferBytes: number;
  /** Receive-buffer autotuning (tcp_moderate_rcvbuf, on): grow with what the application reads per RTT. */
  receiveBufferAutotune: boolean;
  /** The most autotuning grows the receive buffer to, bytes (tcp_rmem[2], 6 MiB); the window scale is chosen to cover it. */
  receiveBufferMaxBytes: number;
  /** Send-buffer autotuning (Linux does it unless SO_SNDBUF was set): grow to twice the congestion window. */
  sendBufferAutotune: boolean;
  /** The most autotuning grows the send buffer to, bytes (tcp_wmem[2], 4 MiB). */
  sendBufferMaxBytes: number;
  /** TIME-WAIT length, ms: 2 * MSL, Linux's TCP_TIMEWAIT_LEN 60 s. */
  timeWaitMs: number;
  /** How long an orphaned connection stays in FIN-WAIT-2, ms (tcp_fin_timeout, 60 s). */
  finTimeoutMs: number;
  /** SYN retransmissions before giving up (tcp_syn_retries, 6). */
  synRetries: number;
  /** SYN-ACK retransmissions before giving up (tcp_synack_retries, 5). */
  synAckRetries: number;
  /** Data retransmissions before giving up with ETIMEDOUT (tcp_retries2, 15). */
  retries2: number;
  /** Delayed-ACK timeout, ms (Linux's TCP_DELACK_MIN, 40 ms). */
  delayedAckMs: number;
  /**
   * Never hold an ACK for the delayed-ACK timer: every segment of new data is acknowledged before
   * the stack goes idle (Linux's TCP_QUICKACK kept on). Off by default, as in Linux after the
   * first segments.
   */
  quickAck: boolean;
  /**
   * One ACK per connection for a received batch (one wake-up of the device) instead of one per
   * two full segments: what GRO gives Linux, where the segments of one NAPI poll merge into one
   * and get one ACK. Out-of-order data, duplicates and filled holes are still acknowledged at
   * once (RFC 5681 4.2), and a batch longer than 64 KB gets one ACK per 64 KB, as GRO's limit
   * gives Linux. On by default; it needs a host that runs batches (TcpLayer on a link).
   */
  ackCoalescing: boolean;
  /**
   * SACK compression (Linux's tcp_comp_sack_nr, on by default there): while a hole is open, the
   * first three out-of-order segments at one RCV.NXT are acknowledged at once (the duplicate
   * ACKs a sender's fast retransmit counts), and the ones after them share one ACK at the end of
   * the received batch, carrying the SACK blocks as they stand then, up to 44 of them per ACK.
   * Without it every out-of-order segment gets an ACK of its own (RFC 5681 4.2's SHOULD), which
   * on plain frames is one write(2) per segment for as long as a loss is being repaired. Needs
   * ackCoalescing and SACK; a host that runs no batches sends at once as before.
   */
  sackCompression: boolean;
  /** Keepalive: idle time, probe interval (ms) and probes (tcp_keepalive_time/intvl/probes: 7200 s, 75 s, 9). */
  keepaliveTimeMs: number;
  keepaliveIntervalMs: number;
  keepaliveProbes: number;
  /** Offer timestamps (RFC 7323) and SACK-permitted (RFC 2018) on SYNs (tcp_timestamps, tcp_sack: on). */
  timestamps: boolean;
  sack: boolean;
  /** Offer window scaling (tcp_window_scaling: on). */
  windowScaling: boolean;
  /** RACK time-based loss detection (RFC 8985 6) with SACK (Linux tcp_recovery bit 1: on). */
  rack: boolean;
  /** Tail loss probes (RFC 8985 7) with SACK (Linux tcp_early_retrans 3: on). */
  tailLossProbe: boolean;
  /** F-RTO (RFC 5682 3.1, the SACK version) after a retransmission timeout (Linux tcp_frto 2: on). */
  frto: boolean;
  /** Least time between two ACKs sent for out-of-window segments or challenge ACKs, ms (tcp_invalid_ratelimit, 500). */
  invalidRatelimitMs: number;
  rto: RtoLimits;
  /**
   * The congestion control a connection starts with (net.ipv4.tcp_congestion_control, cubic):
   * 'cubic', 'newreno', or a factory of one's own (see congestion.ts).
   */
  congestionControl: CongestionControlChoice;
}

export const DEFAULT_TCP_PARAMS: TcpParams = {
  sendBufferBytes: 256 * 1024,
  receiveBufferBytes: 256 * 1024,
  receiveBufferAutotune: true,
  receiveBufferMaxBytes: 6 * 1024 * 1024,
  sendBufferAutotune: true,
  sendBufferMaxBytes: 4 * 1024 * 1024,
  timeWaitMs: 60_000,
  finTimeoutMs: 60_000,
  synRetries: 6,
  synAckRetries: 5,
  retries2: 15,
  delayedAckMs: 40,
  quickAck: false,
  ackCoalescing: true,
  sackCompression: true,
  keepaliveTimeMs: 7_200_000,
  keepaliveIntervalMs: 75_000,
  keepaliveProbes: 9,
  timestamps: true,
  sack: true,
  windowScaling: true,
  rack: true,
  tailLossProbe: true,
  frto: true,
  invalidRatelimitMs: 500,
  rto: DEFAULT_RTO_LIMITS,
  congestionControl: 'cubic',
};

/**
 * The complete params for a partial set, one object per partial set: every connection a layer or
 * a listener opens with the same settings shares it instead of holding a copy of its own (30-odd
 * fields, about 200 bytes of every idle connection). Params are read, never written, by a
 * connection, so sharing them changes nothing but the memory.
 */
const completedParams = new WeakMap<Partial<TcpParams>, TcpParams>();
function completeParams(partial: Partial<TcpParams> | undefined): TcpParams {
  if (partial === undefined) return DEFAULT_TCP_PARAMS;
  let complete = completedParams.get(partial);
  if (complete === undefined) completedParams.set(partial, (complete = { ...DEFAULT_TCP_PARAMS, ...partial }));
  return complete;
}

/** The algorithm a `congestionControl` choice names, made for one connection. */
export function createCongestionControl(choice: CongestionControlChoice, mss: number): CongestionControl {
  if (typeof choice === 'function') return choice(mss);
  return match(choice)
    .with('cubic', () => new Cubic(mss))
    .with('newreno', () => new NewReno(mss))
    .exhaustive();
}

/** The counters a connection bumps (the layer's, Linux names). */
export type ConnectionCounter =
  | 'OutSegs'
  | 'RetransSegs'
  | 'OutRsts'
  | 'EstabResets'
  | 'AttemptFails'
  | 'TCPTimeouts'
  | 'TCPAbortOnTimeout'
  | 'TCPAbortOnData'
  | 'TCPAbortOnClose'
  | 'TCPChallengeACK'
  | 'TCPFastRetrans'
  | 'TCPPartialUndo'
  | 'TCPDSACKUndo'
  | 'TCPFullUndo'
  | 'TCPLossUndo'
  | 'TCPTSReorder'
  | 'TCPSpuriousRTOs'
  | 'TCPDSACKRecv'
  | 'TCPSackRecovery'
  | 'TCPRenoRecovery'
  | 'TCPLossProbes'
  | 'TCPLossProbeRecovery'
  | 'TCPLostRetransmit'
  | 'TCPSACKReneging'
  | 'TCPSACKDiscard'
  | 'TCPDSACKOldSent'
  | 'TCPDSACKOfoSent'
  | 'PAWSEstab'
  | 'TCPOFOQueue'
  | 'TCPOFODrop'
  | 'TCPRcvCoalesce'
  | 'DelayedACKs'
  | 'TCPPureAcks'
  | 'tx_acks_coalesced'
  | 'TCPAckCompressed'
  | 'TCPKeepAlive'
  | 'TCPWinProbe'
  | 'TCPSynRetrans'
  | 'TCPDupAcks'
  | 'rx_out_of_window'
  | 'rx_old_ack'
  | 'rx_ack_of_unsent';

/** What a connection needs from the layer that owns it. */
export interface ConnectionHost {
  readonly clock: Clock;
  /**
   * Sends one segment to the peer (the layer writes the bytes and the IPv4 header). `repr` and
   * `payload` are reused for the next segment: `repr` is the one description all connections
   * fill in (connection.ts `OUTGOING`), `payload` names where the data lies in the send buffer
   * and is copied into the frame by the host. A host that keeps either copies it during the
   * call (`TcpRepr.copy`, `segmentBytes`).
   */
  output(connection: TcpConnection, repr: TcpRepr, payload: SegmentData): void;
  /** The connection reached ESTABLISHED (the listener queues it for accept). */
  established(connection: TcpConnection): void;
  /** The connection is over and may be forgotten. */
  forget(connection: TcpConnection): void;
  count(name: ConnectionCounter, by?: number): void;
  /** Host-wide challenge-ACK limit (RFC 5961 7, Linux tcp_challenge_ack_limit); true when one may be sent now. */
  allowChallengeAck(): boolean;
  /**
   * The largest datagram the link takes as one super-frame, cut into MSS-sized segments by the
   * kernel (a TAP device in virtio-net header mode: 65535); 0 or absent: one segment per datagram.
   */
  readonly gsoMaxSize?: number;
  /**
   * An ACK that may wait for the end of the batch of frames being received (ackCoalescing): true
   * when the host took it and will call `connection.flushAck()` once the batch is through; false
   * (or absent) when no batch is running, and the ACK goes at once.
   */
  deferAck?(connection: TcpConnection): boolean;
  /**
   * Whether this connection may send one more segment now: false when the link's burst for this
   * run of JavaScript is spent (TcpLayer.mayBurst); the host then calls resumeSending() on a
   * later turn. Absent: no limit.
   */
  mayBurst?(connection: TcpConnection): boolean;
  /**
   * The host's one queue of timers (all its connections' deadlines on one clock timer).
   * Absent: the connection makes a queue of its own on `clock`.
   */
  readonly timers?: TimerQueue;
  /**
   * The memory all the host's connections share (send-buffer pages, and the account of what the
   * buffers hold against tcp_mem-like marks; memory.ts). Absent: the connection has its own.
   */
  readonly memory?: TcpMemory;
}

export interface Endpoint {
  /** IPv4's number or an Ipv6Address (address.ts). */
  readonly address: TcpAddress;
  readonly port: number;
}

export interface ConnectionOptions {
  local: Endpoint;
  remote: Endpoint;
  /** Our initial sequence number (RFC 6528). */
  iss: number;
  /** The largest segment our side of the path carries: mssForMtu(route MTU). */
  localMss: number;
  params?: Partial<TcpParams>;
  /** An algorithm made already (tests); otherwise params.congestionControl chooses. */
  congestion?: CongestionControl;
}

/** One entry of the ss-like table. */
export interface ConnectionInfo {
  readonly state: TcpState;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  /** Bytes received and not yet read (ss Recv-Q). */
  readonly receiveQueue: number;
  /** Bytes written and not yet acknowledged (ss Send-Q). */
  readonly sendQueue: number;
  readonly rtoMs: number;
  readonly srttMs: number | undefined;
  /** RTT variation (RFC 6298), the RTT measurements taken so far and the last one, ms. */
  readonly rttvarMs: number;
  readonly rttSamples: number;
  readonly lastRttMs: number | undefined;
  /** Bytes sent and not yet acknowledged (SND.NXT - SND.UNA, RFC 5681's FlightSize). */
  readonly inflight: number;
  /** In fast recovery (SACK-based, RFC 6675, or NewReno's) since a loss was found. */
  readonly inRecovery: boolean;
  /**
   * Fast recoveries entered so far: an undo and a new recovery on one ACK leave `inRecovery` true
   * before and after, and this tells the event log that one recovery ended and another began.
   */
  readonly recoveries: number;
  /** The congestion control's name (ss -ti shows it first: cubic). */
  readonly congestionControl: string;
  readonly cwnd: number;
  readonly ssthresh: number;
  readonly mss: number;
  readonly retransmits: number;
  readonly sendWindow: number;
  readonly receiveWindow: number;
  /** The receive and send buffers now (autotuning grows them; ss -m shows them as rb and tb). */
  readonly receiveBufferBytes: number;
  readonly sendBufferBytes: number;
  /**
   * How many segments the path was seen to reorder (Linux's tp->reordering, 3 until an undo
   * proves more): the duplicate ACKs NewReno waits for before a fast retransmit.
   */
  readonly reordering: number;
  /** The last undo of a spurious recovery, if there was one (the event log reports each new one). */
  readonly lastUndo: UndoRecord | undefined;
}

/**
 * Which rule proved a recovery spurious (Linux's counters): 'dsack' every retransmission came back
 * as a duplicate (RFC 3708); 'full' the ACK ending fast recovery was for an original (RFC 3522);
 * 'partial' a partial ACK during fast recovery was (tcp_try_undo_partial); 'loss' an ACK after a
 * timeout was, or F-RTO found new data delivered (RFC 5682).
 */
export type UndoKind = 'dsack' | 'full' | 'partial' | 'loss';

/** One undo: its kind, and the window and threshold just before it and just after it, bytes. */
export interface UndoRecord {
  readonly kind: UndoKind;
  readonly cwndBefore: number;
  readonly ssthreshBefore: number;
  readonly cwndAfter: number;
  readonly ssthreshAfter: number;
}

/** RFC 7323 5.5: TS.Recent older than 24 days is not used for PAWS (Linux TCP_PAWS_24DAYS). */
const PAWS_IDLE_MS = 24 * 24 * 3600 * 1000;

/**
 * The most in-order data one coalesced ACK covers: Linux's GRO merges at most 64 KB into one
 * packet (gro_max_size, GRO_LEGACY_MAX_SIZE), so its receiver acknowledges at least that often
 * however many frames one NAPI poll brings; a TAP read may bring 256 full frames (370 KB).
 */
export const ACK_COALESCING_MAX_BYTES = 65536;

/**
 * SACK compression's limits, Linux's: the out-of-order segments at one RCV.NXT acknowledged at
 * once (TCP_FASTRETRANS_THRESH, the duplicate ACKs a sender counts) and the most that may share
 * one ACK after them (net.ipv4.tcp_comp_sack_nr).
 */
export const SACK_COMPRESSION_IMMEDIATE = 3;
export const SACK_COMPRESSION_MAX = 44;

/** RFC 8985 7.2's WCDelAckT: the longest a peer may delay an ACK (Linux uses TCP_RTO_MIN, 200 ms). */
const WORST_CASE_DELAYED_ACK_MS = 200;

/** Added to 2 * SRTT when more than a segment is in flight (Linux's TCP_TIMEOUT_MIN, 2 jiffies). */
const PTO_FLOOR_MS = 2;

/** Recoveries without a D-SACK before RACK's reordering window falls back to one step (RFC 8985 6.2). */
const RACK_REO_WND_PERSIST = 16;

/** The ACK number's 3 duplicate rule (RFC 5681 3.2); the reordering estimate starts there. */
const DUP_ACK_THRESHOLD = 3;

/** The most segments of reordering the estimate believes (Linux's tcp_max_reordering). */
const MAX_REORDERING = 300;

const UNDO_KINDS = { TCPDSACKUndo: 'dsack', TCPFullUndo: 'full', TCPPartialUndo: 'partial', TCPLossUndo: 'loss' } as const satisfies Record<string, UndoKind>;
type UndoCounter = keyof typeof UNDO_KINDS;
const TIMESTAMP_OPTION_BYTES = 12;

/** The options an outgoing segment carries: none (a RST), a SYN's, or those of every later segment. */
type OutgoingOptions = 'none' | 'syn' | 'segment';

/**
 * The description of the segment being sent, one for every connection of the process: `output`
 * writes a segment's fields and options into it right before `ConnectionHost.output`, and the
 * host writes the segment's bytes before that call returns, so it is free again once the call
 * is over. A host that keeps a description copies it (`TcpRepr.copy`). A Repr, an options object
 * and a timestamps object per segment were what the send path allocated (docs/performance.md).
 */
const OUTGOING = new ReusedTcpRepr();
const IPV4_HEADER_BYTES = 20;

export class TcpConnection implements SocketConnection {
  state: TcpState;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly params: TcpParams;
  private readonly host: ConnectionHost;
  private readonly clock: Clock;
  private socket: SocketEvents | undefined;

  // ---- send sequence space (RFC 9293 3.3.1)
  readonly iss: number;
  private sndUna: number;
  private sndNxt: number;
  /** The highest sequence number sent (SND.NXT may go back to SND.UNA after a timeout). */
  private sndMax: number;
  private sndWnd = 0;
  private sndWl1 = 0;
  private sndWl2 = 0;
  /** The largest window the peer has offered (RFC 5961 5.2 uses it). */
  private maxSndWnd = 0;
  private readonly sendBuffer: SendBuffer;
  private readonly memory: TcpMemory;
  /** close()/shutdown() asked for a FIN after the data: it sits just after the last byte queued. */
  private finQueued = false;
  /** The FIN has been sent at least once (SND.MAX then counts it). */
  private finSent = false;
  /** The peer acknowledged our FIN. */
  private finAcked = false;

  // ---- receive sequence space
  private irs = 0;
  private receive: ReceiveBuffer | undefined;
  /** The peer's FIN arrived (in order). */
  private finReceived = false;
  /** An out-of-order FIN waiting for the data before it: its sequence number. */
  private pendingFinSeq: number | undefined;
  /** The right edge of the window we last advertised (never moved left: RFC 9293 3.8.6.2.2). */
  private rcvAdvertisedEdge = 0;
  /** What the application reads per round trip, for receive-buffer autotuning (autotune.ts). */
  private readonly receiveTuner: ReceiveAutotuner;

  // ---- options
  private readonly localMss: number;
  /** Bytes of data per segment: min(peer MSS, ours) less the options every segment carries. */
  private mss: number;
  private sndWscale = 0;
  private rcvWscale = 0;
  /** Both SYNs carried a window scale option (RFC 7323 1.3). */
  private windowScalingOn = false;
  private timestampsOn = false;
  private sackOn = false;
  private tsRecent = 0;
  /** When TS.Recent was last set, ms: after 24 days idle it is too old to judge by (RFC 7323 5.5). */
  private tsRecentAt = 0;
  /** A duplicate segment to report in the first SACK block of our next ACK (D-SACK, RFC 2883). */
  private dsackPending: SackBlock | undefined;
  /** The sequence number of the latest out-of-order segment taken: its block leads our SACK option (RFC 2018 4). */
  private newestOutOfOrderSeq: number | undefined;
  /** Our last ACK number sent, for the TS.Recent rule (RFC 7323 4.3). */
  private lastAckSent = 0;
  private readonly tsOffset: number;

  // ---- congestion, RTT, recovery
  private readonly cc: CongestionControl;
  private readonly rto: RtoEstimator;
  private dupAcks = 0;
  /**
   * Where loss recovery stands, as Linux's icsk_ca_state: 'open' (nothing lost), 'recovery'
   * (fast recovery after a loss found by ACKs, until SND.UNA passes `recover`), 'loss' (after a
   * retransmission timeout, until the same).
   */
  private caState: 'open' | 'recovery' | 'loss' = 'open';
  /** Fast recoveries entered (ConnectionInfo.recoveries). */
  private recoveries = 0;
  /** RFC 6582's "recover" and RFC 6675's RecoveryPoint: SND.MAX when the loss was found. */
  private recover = 0;
  /**
   * With SACK: what was sent and what the peer reported (RFC 6675). Made when first used, so that
   * a connection that has sent nothing (an idle one) does not carry its counts (about 200 bytes).
   */
  private scoreboardMade: SackScoreboard | undefined = undefined;
  private get scoreboard(): SackScoreboard {
    return (this.scoreboardMade ??= new SackScoreboard());
  }
  /** Proportional Rate Reduction (RFC 6937): RecoverFS, prr_delivered and prr_out, bytes. */
  private prrRecoverFs = 0;
  private prrDelivered = 0;
  private prrOut = 0;
  /**
   * RACK (RFC 8985 6.1): the send time and end of the most recently sent segment known
   * delivered, its RTT, whether the peer was seen to reorder, and the least RTT seen (ms).
   */
  private rackXmitTime = -Infinity;
  private rackEndSeq = 0;
  private rackRtt = 0;
  /** The send time of the latest-sent segment this ACK delivered so far (RACK.rtt is its round trip). */
  private rackAckLatestSent = -Infinity;
  private rackReorderingSeen = false;
  private minRtt = Infinity;
  private rackDeadline: Deadline | undefined;
  /** TLP (RFC 8985 7): the timer, and SND.MAX when the probe went out (tlp.end_seq) and whether it was a retransmission. */
  private probeDeadline: Deadline | undefined;
  private tlpEndSeq: number | undefined;
  private tlpRetransmitted = false;
  /** A loss probe may send one new segment beyond the congestion window. */
  private probeAllowance = 0;
  /** A small last piece waits for a microtask (autocork); `uncorking` while that send runs. */
  private corked = false;
  private uncorking = false;
  /**
   * RACK's reordering window grows with D-SACKs (RFC 8985 6.2 step 4): the multiplier of
   * min_RTT / 4, the recoveries left before it falls back to 1, and the round (SND.NXT when the
   * last D-SACK counted) within which further D-SACKs count no more.
   */
  private rackReoWndMult = 1;
  private rackReoWndPersist = 0;
  private rackDsackRound: number | undefined;
  /**
   * Undo of a spurious recovery (RFC 3522 Eifel with timestamps, RFC 3708 with D-SACK; Linux's
   * undo_marker, undo_retrans, retrans_stamp, prior_cwnd, prior_ssthresh): SND.UNA when the
   * episode began (undefined: nothing to undo); its retransmissions not yet reported back as
   * duplicates (-1: none sent yet); our TSval on its first retransmission; the window and
   * threshold before it.
   */
  private undoMarker: number | undefined;
  private undoRetrans = -1;
  private retransStamp: number | undefined;
  private priorCwnd = 0;
  private priorSsthresh = 0;
  /** The reordering estimate, segments (ConnectionInfo.reordering), and the last undo. */
  private reordering = DUP_ACK_THRESHOLD;
  private lastUndo: UndoRecord | undefined;
  /**
   * F-RTO (RFC 5682) after a timeout: still judging whether it was spurious, and (step 2b) the
   * next send is to be new data rather than the segments the timeout marked lost.
   */
  private frto = false;
  private frtoSendNew = false;
  /** A segment being timed without timestamps (Karn: dropped if retransmitted). */
  private timedSeq: number | undefined;
  private timedAt = 0;
  /** Retransmissions of the segment at SND.UNA (or of the SYN), for the give-up rule. */
  private retransmits = 0;
  private totalRetransmits = 0;
  private noDelay = false;

  // ---- timers: one deadline each on the host's timer queue, made when first armed and re-armed
  // in place (an ACK moving the retransmission deadline writes a number); never one per segment
  private readonly timers: TimerQueue;
  private retransmitDeadline: Deadline | undefined;
  private persistDeadline: Deadline | undefined;
  private persistBackoff = 0;
  private delayedAckDeadline: Deadline | undefined;
  /** In-order bytes received since our last ACK (Linux: rcv_nxt - rcv_wup). */
  private ackPending = 0;
  /** An ACK waits for the end of the receive batch (the host will call flushAck). */
  private ackDeferred = false;
  /** SACK compression: the RCV.NXT the out-of-order arrivals are counted at, how many came, and how many wait unacknowledged. */
  private sackCompressNext = 0;
  private sackCompressSeen = 0;
  private sackCompressed = 0;
  private keepaliveDeadline: Deadline | undefined;
  private keepaliveOn = false;
  private keepaliveIdleMs: number;
  private keepaliveSent = 0;
  private lastReceivedAt: number;
  private closeDeadline: Deadline | undefined;
  private lastInvalidAckAt = -Infinity;

  /** The socket released the connection (close without waiting): it finishes on its own. */
  private orphaned = false;
  /** A soft error (ICMP) to report if the connection times out, as Linux's sk_err_soft. */
  private softError: TcpErrorCode | undefined;
  private closedReported = false;

  private constructor(host: ConnectionHost, options: ConnectionOptions, state: TcpState) {
    this.host = host;
    this.clock = host.clock;
    this.timers = host.timers ?? new TimerQueue(host.clock);
    this.local = options.local;
    this.remote = options.remote;
    this.params = completeParams(options.params);
    this.state = state;
    this.iss = options.iss >>> 0;
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
    this.sndMax = this.iss;
    this.localMss = options.localMss;
    this.mss = Math.min(TCP_DEFAULT_MSS, options.localMss);
    this.memory = host.memory ?? new TcpMemory();
    this.sendBuffer = new SendBuffer(this.params.sendBufferBytes, this.memory);
    this.rto = new RtoEstimator(this.params.rto);
    this.cc = options.congestion ?? createCongestionControl(this.params.congestionControl, options.localMss);
    this.keepaliveIdleMs = this.params.keepaliveTimeMs;
    this.recover = this.iss;
    this.lastReceivedAt = this.clock.now();
    // Our TSval clock: milliseconds from a random-ish start, as Linux offsets it per connection.
    this.tsOffset = (this.iss ^ 0x5bd1e995) >>> 0;
    // The scale is fixed by the SYN, so it must cover the largest buffer autotuning may reach
    // (Linux: wscale 7 for tcp_rmem[2] = 6 MiB).
    const largestBuffer = this.params.receiveBufferAutotune ? Math.max(this.params.receiveBufferMaxBytes, this.params.receiveBufferBytes) : this.params.receiveBufferBytes;
    if (this.params.windowScaling) this.rcvWscale = windowScaleFor(largestBuffer);
    this.receiveTuner = new ReceiveAutotuner(Math.min(this.params.receiveBufferBytes, INITIAL_WINDOW_SEGMENTS * options.localMss), this.clock.now());
  }

  /** Active open: sends the SYN (RFC 9293 3.10.1) and waits in SYN-SENT. */
  static connect(host: ConnectionHost, options: ConnectionOptions): TcpConnection {
    const c = new TcpConnection(host, options, 'SYN-SENT');
    c.sendSyn();
    return c;
  }

  /**
   * Passive open: a listener accepted `syn`; the connection answers with a SYN-ACK and waits in
   * SYN-RECEIVED for the ACK that completes the handshake.
   */
  static accept(host: ConnectionHost, options: ConnectionOptions, syn: TcpRepr): TcpConnection {
    const c = new TcpConnection(host, options, 'SYN-RECEIVED');
    c.takeSynOptions(syn);
    c.irs = syn.seq;
    c.receive = new ReceiveBuffer(c.params.receiveBufferBytes, seqAdd(syn.seq, 1), c.memory);
    c.sndWnd = syn.window; // never scaled in a SYN (RFC 7323 2.2)
    c.maxSndWnd = c.sndWnd;
    c.sndWl1 = syn.seq;
    c.sndWl2 = c.iss;
    c.sendSyn();
    return c;
  }

  /**
   * A connection whose handshake was completed by a SYN cookie (RFC 4987): the listener kept no
   * state, and the ACK it just got brings the peer's sequence numbers; the cookie gave back the MSS.
   */
  static fromCookie(host: ConnectionHost, options: ConnectionOptions, ack: TcpRepr, peerMss: number): TcpConnection {
    const c = new TcpConnection(host, options, 'ESTABLISHED');
    c.irs = seqAdd(ack.seq, -1);
    c.receive = new ReceiveBuffer(c.params.receiveBufferBytes, ack.seq, c.memory);
    c.rcvWscale = 0; // the cookie carried no window scale: neither side scales
    c.mss = Math.max(64, Math.min(peerMss, c.localMss));
    c.sndUna = c.sndNxt = c.sndMax = seqAdd(options.iss, 1);
    c.sndWnd = ack.window;
    c.maxSndWnd = c.sndWnd;
    c.sndWl1 = ack.seq;
    c.sndWl2 = ack.ack;
    c.rcvAdvertisedEdge = seqAdd(ack.seq, c.windowToAdvertise());
    return c;
  }

  /** Joins the connection to its socket (at once for connect, on accept for a listener's). */
  attach(socket: SocketEvents): void {
    this.socket = socket;
    if (this.isSynchronized()) socket.connectionEstablished();
    if (this.receive && this.receive.readable > 0) socket.dataArrived();
    if (this.finReceived) socket.peerFinished();
  }

  get localAddress(): TcpAddress {
    return this.local.address;
  }
  get localPort(): number {
    return this.local.port;
  }
  get remoteAddress(): TcpAddress {
    return this.remote.address;
  }
  get remotePort(): number {
    return this.remote.port;
  }

  get isOpen(): boolean {
    return this.state !== 'CLOSED';
  }

  // ---------------------------------------------------------------------------------------
  // The application's side (called by the socket)

  /** Queues data to send; returns the bytes taken (the rest waits for room). */
  write(data: Uint8Array): number {
    if (this.finQueued || !(this.state === 'ESTABLISHED' || this.state === 'CLOSE-WAIT' || this.state === 'SYN-SENT' || this.state === 'SYN-RECEIVED')) return 0;
    const n = this.sendBuffer.write(data);
    if (n > 0 && this.isSynchronized()) this.trySend();
    return n;
  }

  /** Takes up to `max` bytes of in-order data; the window opens as the buffer empties. */
  read(max: number): Uint8Array | undefined {
    const r = this.receive;
    if (!r) return undefined;
    const data = r.read(max);
    if (data && this.params.receiveBufferAutotune) {
      const now = this.coarseNow();
      const grow = this.receiveTuner.consumed(data.length, now, this.receiveTuner.rttMs ?? this.rto.srtt, this.mss, r.capacity, this.params.receiveBufferMaxBytes);
      // Under the stack's memory pressure the rate is still measured, but no buffer grows
      // (Linux's tcp_rcv_space_adjust and tcp_sndbuf_expand hold back the same way).
      if (grow !== undefined && !this.memory.underPressure) r.grow(grow);
    }
    if (data && this.isSynchronized() && this.state !== 'TIME-WAIT' && !this.finReceived) {
      // Receiver-side silly window avoidance (RFC 9293 3.8.6.2.2): tell the peer about the
      // opened window only once it has grown by two segments or half the buffer.
      const grown = seqDiff(seqAdd(r.next, this.windowToAdvertise()), this.rcvAdvertisedEdge);
      if (grown >= Math.min(this.mss * 2, r.capacity / 2)) this.ackSoon();
    }
    return data;
  }

  /** Half-close: a FIN goes out after the queued data (RFC 9293 3.10.4). */
  shutdown(): void {
    match(this.state)
      .with('SYN-SENT', 'SYN-RECEIVED', () => {
        // the FIN follows the handshake (and any data written meanwhile)
        this.finQueued = true;
      })
      .with('ESTABLISHED', () => {
        this.finQueued = true;
        this.state = 'FIN-WAIT-1';
        this.trySend();
      })
      .with('CLOSE-WAIT', () => {
        this.finQueued = true;
        this.state = 'LAST-ACK';
        this.trySend();
      })
      .with('FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSING', 'LAST-ACK', 'TIME-WAIT', 'CLOSED', () => {})
      .exhaustive();
  }

  /**
   * The socket is gone (destroyed or closed): like Linux's close(), unread data makes it a
   * reset (RFC 2525 2.17), otherwise a FIN and the connection finishes on its own.
   */
  release(): void {
    this.socket = undefined;
    this.orphaned = true;
    if (!this.isOpen) {
      // Nobody can read what is left: its memory goes back to the stack's account.
      this.receive?.clear();
      return;
    }
    if (this.receive && this.receive.readable > 0 && this.isSynchronized()) {
      this.host.count('TCPAbortOnClose');
      this.abort();
      return;
    }
    this.shutdown();
    if (this.state === 'FIN-WAIT-2') this.armCloseTimer(this.params.finTimeoutMs);
  }

  /**
   * Closes at once: a RST when synchronized (RFC 9293 3.10.5 ABORT), nothing in SYN-SENT. The
   * socket hears `error` when given (the stack closing under it), nothing when it asked itself.
   */
  abort(error?: TcpErrorCode): void {
    if (!this.isOpen) return;
    if (this.isSynchronized() && this.state !== 'TIME-WAIT') {
      this.host.count('OutRsts');
      this.emit(this.sndMax, 0, TcpFlag.RST, NO_DATA, 'none');
      if (this.state === 'ESTABLISHED' || this.state === 'CLOSE-WAIT') this.host.count('EstabResets');
    }
    this.finish(error);
    // An abort discards what was received too (RFC 9293 3.10.5): its memory goes back.
    this.receive?.clear();
  }

  setNoDelay(noDelay: boolean): void {
    this.noDelay = noDelay;
    if (noDelay) this.trySend();
  }

  setKeepAlive(enable: boolean, idleMs: number): void {
    this.keepaliveOn = enable;
    if (idleMs > 0) this.keepaliveIdleMs = idleMs;
    this.armKeepalive();
  }

  /** An ICMP error about this connection (RFC 1122 4.2.3.9, RFC 5461, Linux tcp_v4_err). */
  icmpError(kind: 'refused' | 'unreachable' | 'fragmentation-needed', nextHopMtu = 0): void {
    if (kind === 'fragmentation-needed') {
      // RFC 1191 (IPv4) and RFC 8201 (IPv6, whose header is 40 bytes): lower the MSS to what the
      // path carries (never below 68 - 40).
      const ipHeader = typeof this.remote.address === 'number' ? IPV4_HEADER_BYTES : IPV6_FIXED_HEADER_LENGTH;
      const pathMss = mssForMtu(nextHopMtu, ipHeader) - (this.timestampsOn ? TIMESTAMP_OPTION_BYTES : 0);
      if (nextHopMtu >= 68 && pathMss < this.mss) {
        this.mss = Math.max(28, pathMss);
        this.retransmitNow();
      }
      return;
    }
    if (this.state === 'SYN-SENT' && kind === 'refused') {
      this.host.count('AttemptFails');
      this.finish('ECONNREFUSED');
      return;
    }
    this.softError = kind === 'refused' ? 'ECONNREFUSED' : 'EHOSTUNREACH';
  }

  info(): ConnectionInfo {
    return {
      state: this.state,
      local: this.local,
      remote: this.remote,
      receiveQueue: this.receive?.readable ?? 0,
      sendQueue: this.sendBuffer.length,
      rtoMs: this.rto.rto,
      srttMs: this.rto.srtt,
      rttvarMs: this.rto.rttvar,
      rttSamples: this.rto.samples,
      lastRttMs: this.rto.latest,
      inflight: this.flightSize(),
      inRecovery: this.caState === 'recovery',
      recoveries: this.recoveries,
      congestionControl: this.cc.name,
      cwnd: this.cc.cwnd,
      ssthresh: this.cc.ssthresh,
      mss: this.mss,
      retransmits: this.totalRetransmits,
      sendWindow: this.sndWnd,
      receiveBufferBytes: this.receive ? this.receive.capacity : this.params.receiveBufferBytes,
      sendBufferBytes: this.sendBuffer.capacity,
      receiveWindow: this.receive ? this.windowToAdvertise() : 0,
      reordering: this.reordering,
      lastUndo: this.lastUndo,
    };
  }

  // ---------------------------------------------------------------------------------------
  // Segment arrives (RFC 9293 3.10.7)

  input(seg: TcpRepr, payload: Uint8Array): void {
    if (!this.isOpen) return;
    this.lastReceivedAt = this.coarseNow();
    this.keepaliveSent = 0;
    if (this.state === 'SYN-SENT') return this.inputSynSent(seg, payload);
    this.inputSynchronized(seg, payload);
    if (this.isOpen) this.armKeepalive();
  }

  private inputSynSent(seg: TcpRepr, payload: Uint8Array): void {
    const f = seg.flags;
    // First: the ACK must acknowledge our SYN.
    if (f & TcpFlag.ACK && (seqLe(seg.ack, this.iss) || seqGt(seg.ack, this.sndMax))) {
      if (!(f & TcpFlag.RST)) this.sendReset(seg.ack);
      return;
    }
    if (f & TcpFlag.RST) {
      // RFC 5961 3.2 / RFC 9293: only a RST that acknowledges our SYN refuses the connection.
      if (f & TcpFlag.ACK) {
        this.host.count('AttemptFails');
        this.finish('ECONNREFUSED');
      }
      return;
    }
    if (!(f & TcpFlag.SYN)) return;
    this.irs = seg.seq;
    this.receive = new ReceiveBuffer(this.params.receiveBufferBytes, seqAdd(seg.seq, 1), this.memory);
    this.takeSynOptions(seg);
    this.rcvAdvertisedEdge = this.receive.next;
    if (f & TcpFlag.ACK) {
      this.ackSyn(seg);
      this.becomeEstablished();
      this.sendAck();
      // data on a SYN starts after it (the SYN takes sequence number seg.seq)
      if (payload.length > 0) this.acceptData({ ...seg, seq: seqAdd(seg.seq, 1) }, payload);
      this.trySend();
      return;
    }
    // Simultaneous open (RFC 9293 3.5, figure 8): answer with SYN-ACK, wait in SYN-RECEIVED.
    this.state = 'SYN-RECEIVED';
    this.sndWnd = seg.window;
    this.sndWl1 = seg.seq;
    this.sndNxt = this.iss; // the SYN-ACK re-sends our SYN
    this.sendSyn();
  }

  private inputSynchronized(seg: TcpRepr, payload: Uint8Array): void {
    const f = seg.flags;
    const receive = this.receive!;
    const segLen = segmentLength(seg, payload.length);

    // SYN-RECEIVED: the peer's SYN again (our SYN-ACK was lost): send the SYN-ACK again.
    if (this.state === 'SYN-RECEIVED' && f & TcpFlag.SYN && !(f & TcpFlag.ACK) && seg.seq === this.irs) {
      this.sndNxt = this.iss;
      this.sendSyn();
      return;
    }

    // TIME-WAIT: the peer's FIN again (our last ACK was lost): acknowledge it, wait 2 MSL again.
    if (this.state === 'TIME-WAIT' && f & TcpFlag.FIN && !(f & TcpFlag.RST)) {
      this.sendAck();
      this.armCloseTimer(this.params.timeWaitMs);
      return;
    }

    // PAWS (RFC 7323 5.3 R1): a segment whose TSval is older than TS.Recent is an old duplicate
    // (perhaps from before the sequence numbers wrapped): drop it, and acknowledge (not a RST).
    // TS.Recent older than 24 days says nothing any more (5.5): the peer's clock may have wrapped.
    const ts = seg.options.timestamps;
    if (this.timestampsOn && ts && !(f & TcpFlag.RST) && seqLt(ts.value, this.tsRecent)) {
      if (this.clock.now() - this.tsRecentAt <= PAWS_IDLE_MS) {
        this.host.count('PAWSEstab');
        if (payload.length > 0) this.noteDuplicate(seg.seq, payload.length);
        this.sendRateLimitedAckUnlessData(payload.length > 0);
        return;
      }
    }

    // Timestamps (RFC 7323 4.3): remember the peer's clock from segments at the left edge of the
    // window (SEG.SEQ <= Last.ACK.sent). Also from an old duplicate that passed PAWS: the ACK it
    // gets then echoes the retransmission that reached us, not the earlier one whose ACK was lost,
    // so the sender's RTT sample is not inflated by its backoff.
    if (this.timestampsOn && ts && seqLe(seg.seq, this.lastAckSent) && seqGe(ts.value, this.tsRecent)) {
      this.tsRecent = ts.value;
      this.tsRecentAt = this.coarseNow();
    }

    // First: is the segment in the window (RFC 9293 3.10.7.4, the four cases)?
    if (!this.acceptable(seg.seq, segLen)) {
      this.host.count('rx_out_of_window');
      // Data wholly before RCV.NXT was received twice: a D-SACK tells the sender (RFC 2883 4.1).
      if (payload.length > 0 && seqLe(seqAdd(seg.seq, payload.length), receive.next)) this.noteDuplicate(seg.seq, payload.length);
      // An ACK tells the peer where we are. Like Linux (tcp_oow_rate_limited), only the answers
      // to segments without data are rate-limited: two stacks could otherwise ping-pong ACKs.
      if (!(f & TcpFlag.RST)) this.sendRateLimitedAckUnlessData(payload.length > 0);
      return;
    }


    // Second: RST (RFC 5961 3.2): exactly at RCV.NXT resets; elsewhere in the window, a challenge ACK.
    if (f & TcpFlag.RST) {
      if (seg.seq !== receive.next) {
        this.sendChallengeAck();
        return;
      }
      match(this.state)
        .with('SYN-RECEIVED', () => this.finish(this.orphaned ? undefined : 'ECONNREFUSED'))
        .with('ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSE-WAIT', () => {
          this.host.count('EstabResets');
          this.finish('ECONNRESET');
        })
        .with('CLOSING', 'LAST-ACK', 'TIME-WAIT', () => this.finish(undefined))
        .otherwise(() => {});
      return;
    }

    // Fourth: a SYN on a synchronized connection gets a challenge ACK (RFC 5961 4.2).
    if (f & TcpFlag.SYN) {
      if (this.state === 'TIME-WAIT') return this.sendAck();
      this.sendChallengeAck();
      return;
    }

    // Fifth: the ACK field.
    if (!(f & TcpFlag.ACK)) return;
    if (this.state === 'SYN-RECEIVED') {
      if (!(seqLt(this.sndUna, seg.ack) && seqLe(seg.ack, this.sndMax))) {
        this.sendReset(seg.ack);
        return;
      }
      this.ackSyn(seg);
      this.becomeEstablished();
    } else if (!this.processAck(seg, payload.length)) {
      return;
    }

    // Sixth and seventh: the data.
    if (payload.length > 0) {
      if (this.state === 'ESTABLISHED' || this.state === 'FIN-WAIT-1' || this.state === 'FIN-WAIT-2') {
        if (this.orphaned) {
          // Linux: data for a socket the application closed is answered with a reset.
          this.host.count('TCPAbortOnData');
          this.abort();
          return;
        }
        this.acceptData(seg, payload);
      } else if (this.state === 'TIME-WAIT' || this.state === 'CLOSING' || this.state === 'LAST-ACK' || this.state === 'CLOSE-WAIT') {
        // the peer already sent FIN: this is a retransmission; acknowledge it again
        this.scheduleAck(true);
      }
    }

    // Eighth: FIN.
    if (f & TcpFlag.FIN) this.receiveFin(seqAdd(seg.seq, payload.length));
    if (this.isOpen) this.trySend();
  }

  /** RFC 9293 3.10.7.4: the segment occupies (or, if empty, sits at) part of the receive window. */
  private acceptable(seq: number, segLen: number): boolean {
    const next = this.receive!.next;
    const window = this.windowAdvertisedNow();
    if (segLen === 0) {
      if (window === 0) return seq === next;
      return seqInWindow(seq, next, seqAdd(next, window));
    }
    if (window === 0) return false;
    const last = seqAdd(seq, segLen - 1);
    return seqInWindow(seq, next, seqAdd(next, window)) || seqInWindow(last, next, seqAdd(next, window));
  }

  /** Handles the ACK field in a synchronized state; false when the segment is to be dropped. */
  private processAck(seg: TcpRepr, payloadLength: number): boolean {
    const ack = seg.ack;
    // RFC 5961 5.2: an ACK for data never sent, or far older than any window, gets a challenge ACK.
    if (seqGt(ack, this.sndMax)) {
      this.host.count('rx_ack_of_unsent');
      this.sendChallengeAck();
      return false;
    }
    if (seqLt(ack, seqAdd(this.sndUna, -Math.max(this.maxSndWnd, 1)))) {
      this.host.count('rx_old_ack');
      this.sendChallengeAck();
      return false;
    }
    const window = seg.window << this.sndWscale;
    if (seqGt(ack, this.sndUna)) {
      this.newlyAcked(ack, seg);
    } else if (ack === this.sndUna && seqGt(this.sndMax, this.sndUna)) {
      const duplicate = payloadLength === 0 && !(seg.flags & (TcpFlag.SYN | TcpFlag.FIN)) && window === this.sndWnd;
      // With SACK every ACK may carry news (blocks); without, only a duplicate counts.
      if (this.sackOn) this.sackAck(seg, 0, duplicate);
      else if (duplicate) this.duplicateAck();
    } else if (ack === this.sndUna && this.sackOn && seg.options.sackBlocks !== undefined) {
      // Nothing outstanding, yet a D-SACK may prove the last recovery spurious (Linux's tcp_ack
      // looks at it on its no_queue path too).
      this.sackAck(seg, 0, false);
    }
    // Window update (RFC 9293 3.10.7.4, fifth step): from newer segments only.
    if (seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLe(this.sndWl2, ack))) {
      const opened = window > this.sndWnd;
      this.sndWnd = window;
      this.sndWl1 = seg.seq;
      this.sndWl2 = ack;
      if (window > this.maxSndWnd) this.maxSndWnd = window;
      if (opened && window > 0) this.stopPersist();
    }
    // Our FIN acknowledged?
    const finAcked = this.finSent && this.sndUna === this.sndMax;
    if (finAcked) {
      this.finAcked = true;
      this.finAckedIn(this.state);
    }
    return this.isOpen;
  }

  /** What our FIN being acknowledged does in each state (only then: a match per ACK cost 8% of an upload's profile). */
  private finAckedIn(state: TcpState): void {
    match(state)
      .with('FIN-WAIT-1', () => {
        this.state = 'FIN-WAIT-2';
        if (this.orphaned) this.armCloseTimer(this.params.finTimeoutMs);
      })
      .with('CLOSING', () => this.enterTimeWait())
      .with('LAST-ACK', () => this.finish(undefined))
      // TIME-WAIT: a retransmitted FIN, acknowledged by the caller, which restarts the 2 MSL wait
      .otherwise(() => {});
  }

  /** SND.UNA advances to `ack`. */
  private newlyAcked(ack: number, seg: TcpRepr): void {
    const acked = seqDiff(ack, this.sndUna);
    // The SYN and FIN occupy sequence numbers but not buffer bytes.
    let dataAcked = acked;
    if (this.finSent && ack === this.sndMax) dataAcked -= 1;
    dataAcked = Math.min(dataAcked, this.sendBuffer.length);
    this.sendBuffer.acknowledge(dataAcked);
    this.sndUna = ack;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    this.retransmits = 0;
    this.persistBackoff = 0;
    // RTT: from the echoed timestamp when both sides use them, else from the timed segment.
    const ts = seg.options.timestamps;
    if (this.timestampsOn && ts && ts.echo !== 0) {
      const rtt = seqDiff(this.tsNow(), ts.echo);
      if (rtt >= 0) this.rttSample(rtt);
    } else if (this.timedSeq !== undefined && seqGt(ack, this.timedSeq)) {
      this.rttSample(this.clock.now() - this.timedAt);
      this.timedSeq = undefined;
    }
    if (this.sackOn) {
      this.sackAck(seg, acked, false);
    } else if (this.caState === 'recovery') {
      this.renoRecoveryAck(seg, acked);
    } else if (this.caState === 'loss') {
      this.renoLossAck(seg, acked);
    } else {
      this.congestionAck(acked);
    }
    this.dupAcks = 0;
    if (this.params.sendBufferAutotune && !this.memory.underPressure) {
      const grow = sendBufferTarget(this.cc.cwnd, INITIAL_WINDOW_SEGMENTS * this.mss, this.sendBuffer.capacity, this.params.sendBufferMaxBytes);
      if (grow !== undefined) this.sendBuffer.grow(grow);
    }
    // Restart the retransmission timer for what is still outstanding (RFC 6298 5.3).
    if (seqLt(this.sndUna, this.sndMax)) this.armRetransmit();
    else this.stopRetransmit();
    this.scheduleLossProbe();
    if (this.sendBuffer.free > 0) this.socket?.sendSpace();
  }

  /** A duplicate ACK without SACK: NewReno (RFC 5681 3.2, RFC 6582). */
  private duplicateAck(): void {
    this.host.count('TCPDupAcks');
    this.dupAcks++;
    if (this.caState === 'recovery') {
      // Each further duplicate: one more segment has left the network (RFC 5681 3.2 step 4);
      // not while recovery is only held at `recover` (renoRecoveryAck): nothing is missing then.
      if (seqLt(this.sndUna, this.recover)) this.cc.cwnd += this.mss;
      return;
    }
    // RFC 6582 3.2 step 2: a new recovery only for losses after the last one. The threshold is
    // the reordering estimate (3 until a partial undo saw the path reorder more, as Linux's
    // tcp_time_to_recover compares the duplicates with tp->reordering).
    if (this.dupAcks === this.reordering && seqGt(this.sndUna, this.recover)) {
      this.beginUndoEpisode();
      this.recover = this.sndMax;
      // RFC 5681 3.2 step 2 and 3: the algorithm's threshold, and the window inflated by the three segments that left.
      this.cc.ssthresh = this.cc.ssthreshAfterLoss({ now: this.clock.now(), flightBytes: this.flightSize(), mss: this.mss, cause: 'duplicate-acks' });
      this.cc.cwnd = this.cc.ssthresh + 3 * this.mss;
      this.congestionState('recovery');
      this.host.count('TCPRenoRecovery');
      this.host.count('TCPFastRetrans');
      this.retransmitFirst();
    }
  }

  /** New data acknowledged with no recovery running: the algorithm grows the window (Linux's cong_avoid). */
  private congestionAck(acked: number): void {
    this.cc.onAck({ now: this.clock.now(), ackedBytes: acked, mss: this.mss, flightBytes: this.flightSize(), srttMs: this.rto.srtt });
  }

  /** Moves to a congestion state and tells the algorithm (Linux's tcp_set_ca_state calling set_state). */
  private congestionState(state: CongestionState): void {
    if (state === this.caState) return;
    // RFC 8985 6.2 step 4: after 16 recoveries without a D-SACK the reordering window is back to one step.
    if (state === 'open' && this.rackReoWndPersist > 0 && --this.rackReoWndPersist === 0) this.rackReoWndMult = 1;
    this.caState = state;
    if (state === 'recovery') this.recoveries++;
    this.cc.onStateChange?.(state, this.clock.now());
  }

  /**
   * What one ACK tells a SACK sender (RFC 6675 with PRR, RFC 6937; Linux's tcp_fastretrans_alert
   * and tcp_cwnd_reduction): the scoreboard takes the cumulative ACK and the blocks, losses are
   * marked (by RACK, or by DupThresh when RACK is off), recovery starts or ends, a spurious one
   * is undone, and the window for this ACK is set. `acked` is how far SND.UNA moved (already
   * moved); `duplicate` says the ACK is a duplicate in RFC 5681's sense.
   */
  private sackAck(seg: TcpRepr, acked: number, duplicate: boolean): void {
    const board = this.scoreboard;
    const sackedBefore = board.sackedBytes;
    const fackBefore = board.highestSackedEnd();
    const cumulativelyAcked = acked > 0 ? board.acknowledge(this.sndUna) : [];
    const update = board.applySack(seg.options.sackBlocks ?? [], seg.ack, this.sndUna, this.sndMax, this.maxSndWnd);
    if (update.dsack) this.dsackReceived(update.dsackBlock!);
    if (update.discarded > 0) this.host.count('TCPSACKDiscard', update.discarded);
    if (board.headIsSacked()) {
      // The peer acknowledged up to a segment it had SACKed, and not that segment: it dropped
      // out-of-order data it had reported (reneging, RFC 2018 8). Forget every SACK mark.
      this.host.count('TCPSACKReneging');
      board.clearSacks();
    }
    // RFC 6937: DeliveredData is the change in SND.UNA plus the change in SACKed bytes.
    const delivered = Math.max(0, acked + board.sackedBytes - sackedBefore);
    if (duplicate) {
      this.host.count('TCPDupAcks');
      this.dupAcks++;
    }
    if (this.tlpEndSeq !== undefined) this.tailLossProbeAck(seg.ack, update.dsackBlock, duplicate && update.newlySacked.length === 0);
    // A partial ACK that timestamps show was for original transmissions (Linux
    // tcp_try_undo_partial, before losses are marked): undone, and then losses are judged with
    // the reordering now known (a real one starts a new recovery below, as in Linux); or, with a
    // resend still out, nothing more is marked lost on this ACK.
    const partial = this.caState === 'recovery' && acked > 0 && seqLt(this.sndUna, this.recover) ? this.tryPartialUndo(seg, seqAdd(this.sndUna, -acked)) : 'no';
    let newlyLost = 0;
    if (this.params.rack) {
      // RACK alone marks losses, as Linux's default (tcp_recovery 1): no DupThresh rule.
      const ts = seg.options.timestamps;
      const echo = this.timestampsOn && ts !== undefined && ts.echo !== 0 ? ts.echo : undefined;
      this.rackAckLatestSent = -Infinity;
      for (const s of cumulativelyAcked) if (!s.sacked) this.rackDelivered(s, fackBefore, echo);
      for (const s of update.newlySacked) this.rackDelivered(s, fackBefore, echo);
      if (partial !== 'held') newlyLost += this.rackDetectLoss();
    } else {
      newlyLost += board.markLostByDupThresh(this.mss);
      // Duplicate ACKs without blocks (a peer that SACKs little) still count (RFC 6675 5, DupAcks >= DupThresh).
      if (this.caState === 'open' && this.dupAcks >= this.reordering && board.lostBytes() === 0 && board.first()) newlyLost += board.markLost(board.first()!);
    }
    if (this.caState === 'loss') {
      // Data sent before the timeout and never retransmitted arrived (Linux's FLAG_ORIG_SACK_ACKED).
      const original = (s: SentSegment): boolean => !s.everRetransmitted && seqLe(s.end, this.recover);
      const originalDelivered = cumulativelyAcked.some((s) => !s.sacked && original(s)) || update.newlySacked.some(original);
      if (this.processLoss(seg, acked, originalDelivered, update.newlySacked.length > 0 || duplicate)) {
        if (acked > 0) this.congestionAck(acked);
        return;
      }
    }
    if (this.caState !== 'open' && seqGe(this.sndUna, this.recover)) {
      // Recovery ends when everything outstanding at its start is acknowledged: undone if it
      // proved spurious, else the window comes back to ssthresh (Linux tcp_end_cwnd_reduction);
      // after a timeout ('loss') slow start simply goes on.
      const ended = this.caState;
      const undone = this.tryUndo(seg, ended === 'loss' ? 'TCPLossUndo' : 'TCPFullUndo');
      if (!undone && ended === 'recovery') this.cc.cwnd = Math.max(this.cc.ssthresh, this.mss);
      this.congestionState('open');
      if (newlyLost === 0 && board.lostBytes() === 0) {
        if (ended === 'loss' && acked > 0) this.congestionAck(acked);
        return;
      }
    }
    // RFC 3708: every retransmission of the episode came back as a duplicate (Linux
    // tcp_try_undo_dsack, in recovery and, for a late D-SACK, after it).
    if (this.caState !== 'loss' && this.undoMarker !== undefined && this.undoRetrans === 0) {
      this.undo(false, 'TCPDSACKUndo');
      this.congestionState('open');
    }
    if (this.caState === 'open' && board.lostBytes() > 0) this.enterSackRecovery();
    if (this.caState === 'recovery') this.prrUpdate(delivered, newlyLost > 0);
    else if (acked > 0) this.congestionAck(acked);
  }

  /**
   * A D-SACK arrived (RFC 2883): one of our segments reached the peer twice. It counts against
   * the episode's retransmissions when it names data sent since the episode began (RFC 3708 2,
   * Linux's "dumb counting" of duplicates at or below SND.UNA: one per segment's worth of bytes),
   * and it grows RACK's reordering window, once per round (RFC 8985 6.2 step 4).
   */
  private dsackReceived(block: SackBlock): void {
    this.host.count('TCPDSACKRecv');
    if (this.undoMarker !== undefined && this.undoRetrans > 0 && seqGt(block.right, this.undoMarker)) {
      this.undoRetrans = Math.max(0, this.undoRetrans - Math.max(1, Math.ceil(seqDiff(block.right, block.left) / this.mss)));
    }
    if (this.rackDsackRound !== undefined && seqGe(this.sndUna, this.rackDsackRound)) this.rackDsackRound = undefined;
    if (this.rackDsackRound === undefined) {
      this.rackDsackRound = this.sndMax;
      this.rackReoWndMult = Math.min(this.rackReoWndMult + 1, 255);
      this.rackReoWndPersist = RACK_REO_WND_PERSIST;
    }
  }

  /**
   * An episode of loss recovery begins (fast recovery or a timeout): remember what to go back
   * to if it proves spurious (Linux's tcp_init_undo with prior_cwnd and prior_ssthresh). The
   * threshold to restore is at least three quarters of the window (tcp_current_ssthresh), so
   * that an undo out of slow start ends it near where the window stood.
   */
  private beginUndoEpisode(): void {
    this.priorCwnd = this.cc.cwnd;
    this.priorSsthresh = Math.max(this.cc.ssthresh, Math.floor((this.cc.cwnd * 3) / 4));
    this.undoMarker = this.sndUna;
    // Retransmissions of an earlier episode still in the network may bring D-SACKs too.
    // (Without SACK there is no scoreboard, and none is made for this.)
    const inFlight = this.scoreboardMade?.retransmitsInFlight() ?? 0;
    this.undoRetrans = inFlight > 0 ? inFlight : -1;
    // Eifel compares with the oldest retransmission that may still answer (Linux clears
    // retrans_stamp only when tcp_any_retrans_done says none is out and the segment at SND.UNA
    // was never resent): an earlier episode's resend filling the hole proves nothing of this one.
    if (inFlight === 0 && !this.scoreboardMade?.first()?.everRetransmitted) this.retransStamp = undefined;
  }

  /** A retransmission goes out: the episode has one more to prove spurious, and its first one's TSval is kept. */
  private noteRetransmission(): void {
    this.undoRetrans = this.undoRetrans < 0 ? 1 : this.undoRetrans + 1;
    if (this.retransStamp === undefined) this.retransStamp = this.tsNow();
  }

  /**
   * RFC 3522 (Eifel detection): the ACK echoes a TSval older than our first retransmission of
   * the episode, so it was sent for an original transmission, and that original arrived (Linux
   * tcp_packet_delayed). Timestamps on a millisecond clock: an original sent in the same
   * millisecond as the retransmission cannot be told apart and proves nothing.
   */
  private originalWasDelayed(seg: TcpRepr): boolean {
    const ts = seg.options.timestamps;
    return this.timestampsOn && ts !== undefined && ts.echo !== 0 && this.retransStamp !== undefined && seqLt(ts.echo, this.retransStamp);
  }

  /** Undoes the episode if it proved spurious (Linux tcp_may_undo): by D-SACKs for all its retransmissions, or by Eifel. */
  private tryUndo(seg: TcpRepr, counter: 'TCPFullUndo' | 'TCPLossUndo'): boolean {
    if (this.undoMarker === undefined || !(this.undoRetrans === 0 || this.originalWasDelayed(seg))) return false;
    this.undo(counter === 'TCPLossUndo', counter);
    return true;
  }

  /**
   * Undo (Linux tcp_undo_cwnd_reduction): the window and threshold go back to what they were
   * before the episode (never lower than now), the algorithm forgets the loss, and, after a
   * timeout, the segments it marked lost are no longer thought lost (they were not).
   */
  private undo(unmarkLost: boolean, counter: UndoCounter): void {
    const cwndBefore = this.cc.cwnd;
    const ssthreshBefore = this.cc.ssthresh;
    this.cc.cwnd = Math.max(this.cc.cwnd, this.priorCwnd);
    this.cc.ssthresh = Math.max(this.cc.ssthresh, this.priorSsthresh);
    this.cc.undo?.(this.clock.now());
    if (unmarkLost) this.scoreboardMade?.clearLost();
    this.undoMarker = undefined;
    this.host.count(counter);
    this.lastUndo = { kind: UNDO_KINDS[counter], cwndBefore, ssthreshBefore, cwndAfter: this.cc.cwnd, ssthreshAfter: this.cc.ssthresh };
    log('%d > %d: undo (%s): cwnd %d ssthresh %d', this.local.port, this.remote.port, counter, this.cc.cwnd, this.cc.ssthresh);
  }

  /**
   * Undo during fast recovery on a partial ACK (Linux tcp_try_undo_partial): the ACK echoes a
   * TSval older than the episode's first retransmission, so the hole was filled by a delayed
   * original, not by our resend: the path reorders, by as much as the data that was above the
   * hole (tcp_check_sack_reordering). With no retransmission of the episode still in the network
   * the reduction is undone and recovery left ('open': we have no Disorder state): 'undone'.
   * With one still out, Linux waits (the episode may still prove spurious in full) and marks
   * nothing more lost on this ACK: 'held'. `priorUna` is SND.UNA before this ACK.
   */
  private tryPartialUndo(seg: TcpRepr, priorUna: number): 'undone' | 'held' | 'no' {
    if (this.undoMarker === undefined || !this.originalWasDelayed(seg)) return 'no';
    this.reorderingSeen(priorUna);
    if (this.sackOn && this.scoreboard.retransmitsInFlight() > 0) return 'held';
    this.undo(true, 'TCPPartialUndo');
    this.congestionState('open');
    return 'undone';
  }

  /**
   * Data from `lowSeq` on arrived out of order (Linux tcp_check_sack_reordering): the estimate
   * grows to the distance from there to the highest data the peer holds (the highest SACKed byte,
   * or without SACK, with duplicate ACKs, all that was sent), and RACK now knows the path reorders.
   */
  private reorderingSeen(lowSeq: number): void {
    const fack = this.sackOn ? (this.scoreboard.highestSackedEnd() ?? this.sndUna) : this.dupAcks > 0 ? this.sndNxt : this.sndUna;
    if (!seqLt(lowSeq, fack)) return;
    const distance = seqDiff(fack, lowSeq);
    if (distance > this.reordering * this.mss) this.reordering = Math.min(Math.ceil(distance / this.mss), MAX_REORDERING);
    this.rackReorderingSeen = true;
    this.host.count('TCPTSReorder');
  }

  /**
   * An ACK that advanced SND.UNA during NewReno fast recovery (RFC 6582 3.2 step 3), with
   * Linux's undo. A partial ACK is first tried for a partial undo, else it deflates the window
   * and resends the next hole. The full ACK (SND.UNA reaches `recover`) is tried for a full undo
   * (tcp_try_undo_recovery), else the window comes down to min(ssthresh, FlightSize + SMSS); and
   * if it acknowledges exactly up to `recover`, recovery is held until something above is
   * acknowledged (Linux's tcp_is_non_sack_preventing_reopen): duplicates of the resends may still
   * come, and without SACK they must not look like a new loss (RFC 6582 5).
   */
  private renoRecoveryAck(seg: TcpRepr, acked: number): void {
    const priorUna = seqAdd(this.sndUna, -acked);
    if (seqGe(priorUna, this.recover)) {
      // Held at `recover`, and now data above it is acknowledged: recovery is over.
      this.tryUndo(seg, 'TCPFullUndo');
      this.congestionState('open');
      return;
    }
    if (seqLt(this.sndUna, this.recover)) {
      // Undone: open again, and the window grows with this ACK as with any other.
      if (this.tryPartialUndo(seg, priorUna) === 'undone') return this.congestionAck(acked);
      // Deflate by what was acknowledged, then add back one segment (RFC 6582 3.2 step 3).
      this.cc.cwnd = Math.max(this.mss, this.cc.cwnd - acked + this.mss);
      this.retransmitFirst();
      return;
    }
    // RFC 6582 3.2 step 3, first option: min(ssthresh, FlightSize + SMSS).
    if (!this.tryUndo(seg, 'TCPFullUndo')) this.cc.cwnd = Math.min(this.cc.ssthresh, Math.max(this.flightSize(), 0) + this.mss);
    if (this.sndUna !== this.recover) this.congestionState('open');
  }

  /**
   * An ACK that advanced SND.UNA after a timeout, without SACK (Linux tcp_process_loss for a
   * Reno peer, without F-RTO, which needs SACK here). If timestamps show it was for an original
   * transmission (Eifel), the timeout is undone, and go-back-N, which went back to SND.UNA, goes
   * on from where sending stood (the window beyond was not lost). The timeout's episode ends
   * once SND.UNA passes `recover` (held while it equals it, as in recovery).
   */
  private renoLossAck(seg: TcpRepr, acked: number): void {
    if (this.tryUndo(seg, 'TCPLossUndo')) {
      if (seqLt(this.sndNxt, this.sndMax)) this.sndNxt = this.sndMax;
      this.retransmits = 0;
    } else if (seqGe(this.sndUna, this.recover) && this.sndUna !== this.recover) {
      this.congestionState('open');
    }
    this.congestionAck(acked);
  }

  /**
   * An ACK after a retransmission timeout (Linux tcp_process_loss, with F-RTO as RFC 5682 3.1's
   * SACK version). True when it proved the timeout spurious and undid it. Otherwise F-RTO moves
   * on: after the first ACK that advances SND.UNA new data goes out instead of the segments
   * marked lost (step 2b); if the next ACK then reports SACKed or duplicate data the losses were
   * real (step 3a) and recovery resends them; if instead it acknowledges data never
   * retransmitted (`originalDelivered`), they were not (step 3b).
   */
  private processLoss(seg: TcpRepr, acked: number, originalDelivered: boolean, sackedOrDuplicate: boolean): boolean {
    const recovered = seqGe(this.sndUna, this.recover);
    if (acked > 0 && this.tryUndo(seg, 'TCPLossUndo')) return this.leaveLoss(false);
    if (!this.frto) return false;
    if (originalDelivered) {
      this.undo(true, 'TCPLossUndo');
      return this.leaveLoss(true);
    }
    if (seqGt(this.sndMax, this.recover)) {
      if (sackedOrDuplicate) this.frto = false; // step 3a: the loss was real
    } else if (acked > 0 && !recovered) {
      // Step 2b: new data next, if there is some and the peer's window takes it.
      this.recover = this.sndMax;
      const unsent = this.sendBuffer.length - seqDiff(this.sndNxt, this.sndUna);
      if (unsent > 0 && this.sndWnd > this.flightSize()) this.frtoSendNew = true;
      else this.frto = false;
    }
    return false;
  }

  /** Out of the timeout's recovery after an undo (a spurious timeout when `spurious`: F-RTO found it). */
  private leaveLoss(spurious: boolean): true {
    if (spurious) this.host.count('TCPSpuriousRTOs');
    this.frto = false;
    this.frtoSendNew = false;
    this.retransmits = 0;
    this.congestionState('open');
    return true;
  }

  /**
   * RFC 6675 5: enter fast recovery. ssthresh comes from the congestion control; PRR then
   * brings the window down to it over about one round trip instead of at once.
   */
  private enterSackRecovery(): void {
    this.beginUndoEpisode();
    this.recover = this.sndMax;
    this.cc.ssthresh = this.cc.ssthreshAfterLoss({ now: this.clock.now(), flightBytes: this.flightSize(), mss: this.mss, cause: 'duplicate-acks' });
    this.congestionState('recovery');
    this.prrRecoverFs = this.flightSize();
    this.prrDelivered = 0;
    this.prrOut = 0;
    this.host.count('TCPSackRecovery');
    this.probeDeadline?.cancel();
  }

  /** An RTT measurement, ms: the RTO estimator takes it, and RACK keeps the least (RFC 8985 6.1 min_RTT). */
  private rttSample(rtt: number): void {
    this.rto.sample(rtt);
    if (rtt < this.minRtt) this.minRtt = rtt;
  }

  /**
   * RACK (RFC 8985 6.2 steps 2 and 3): a segment was delivered (cumulatively acknowledged or
   * SACKed). If it was sent after the one RACK remembers, it becomes the one; a segment that
   * was never retransmitted and lies below the highest SACKed byte was reordered by the path.
   * `echo` is the ACK's TSecr, if it has one.
   */
  private rackDelivered(s: SentSegment, fackBefore: number | undefined, echo: number | undefined): void {
    const now = this.clock.now();
    const rtt = now - s.sentAt;
    if (s.everRetransmitted) {
      // Which transmission of a resent segment arrived (step 2)? An ACK echoing a TSval older
      // than the retransmission's was sent for an earlier one. Taken for the retransmission, it
      // would move RACK's clock to the resend and judge everything sent before it lost, which on
      // a real clock with late ACKs (a busy process, a queue: every round trip above min_RTT) is
      // everything still unacknowledged. Linux's tcp_rack_advance has only the next test.
      if (echo !== undefined && s.retransmitTsval !== 0 && seqLt(echo, s.retransmitTsval)) return;
      // Without timestamps: an ACK quicker than any round trip must be for the original.
      if (rtt < this.minRtt) return;
    }
    if (!s.everRetransmitted && fackBefore !== undefined && seqLt(s.end, fackBefore)) this.rackReorderingSeen = true;
    // RACK.rtt is the round trip of the latest-sent segment this ACK delivered (step 2 takes them
    // in send order and keeps the last), even one sent before RACK.xmit_ts: an ACK that delivers
    // only a late original says that the round trip is now that long, and RACK waits as long
    // before calling the segments sent with it lost (keeping an older, shorter RACK.rtt instead
    // judged them against a round trip the path no longer has).
    if (s.sentAt >= this.rackAckLatestSent) {
      this.rackAckLatestSent = s.sentAt;
      this.rackRtt = rtt;
    }
    if (s.sentAt > this.rackXmitTime || (s.sentAt === this.rackXmitTime && seqGt(s.end, this.rackEndSeq))) {
      this.rackXmitTime = s.sentAt;
      this.rackEndSeq = s.end;
      if (!s.everRetransmitted && rtt < this.minRtt) this.minRtt = rtt;
    }
  }

  /**
   * RACK's reordering window (RFC 8985 6.2 step 4, as Linux's tcp_rack_reo_wnd): a quarter of the
   * least RTT times the multiplier D-SACKs grew (dsackReceived), at most SRTT; none at all while
   * no reordering has been seen and the connection is already recovering, or three segments are
   * SACKed (then DupThresh would say lost anyway).
   */
  private rackReorderWindow(): number {
    if (!this.rackReorderingSeen && (this.caState !== 'open' || this.scoreboard.sackedSegments >= this.reordering)) return 0;
    const window = Number.isFinite(this.minRtt) ? (this.minRtt / 4) * this.rackReoWndMult : 0;
    return Math.min(window, this.rto.srtt ?? window);
  }

  /**
   * RACK loss detection (RFC 8985 6.2 step 5): a segment sent before the most recently delivered
   * one is lost once RACK.rtt + the reordering window has passed since it was sent. The ones not
   * due yet arm the reordering timer for the earliest of them. A retransmission found lost this
   * way goes again (Linux's TCPLostRetransmit). Returns the bytes newly marked lost.
   */
  private rackDetectLoss(): number {
    if (this.rackXmitTime === -Infinity) return 0;
    const now = this.clock.now();
    const reorderWindow = this.rackReorderWindow();
    // The scoreboard keeps the records RACK may judge in the order they were last sent (Linux's
    // tsorted_sent_queue), so the walk stops at the first one sent after the delivered one.
    const board = this.scoreboard;
    const newly = board.rackMarkLost(this.rackXmitTime, this.rackEndSeq, this.rackRtt, reorderWindow, now);
    if (board.rackLostRetransmits > 0) this.host.count('TCPLostRetransmit', board.rackLostRetransmits);
    const wait = board.rackWait;
    if (wait > 0) (this.rackDeadline ??= this.timers.deadline(() => this.rackTimeout())).armIn(wait);
    else this.rackDeadline?.cancel();
    return newly;
  }

  /** The reordering timer fired (RFC 8985 6.3): what is now overdue is lost; recover it. */
  private rackTimeout(): void {
    if (!this.isSynchronized() || !this.sackOn) return;
    const newlyLost = this.rackDetectLoss();
    if (newlyLost === 0) return;
    if (this.caState === 'open') this.enterSackRecovery();
    if (this.caState === 'recovery') this.prrUpdate(0, true);
    this.trySend();
  }

  /**
   * Arms the tail loss probe (RFC 8985 7.2) when data is in flight, the connection is not
   * recovering, and no probe is out: PTO = 2 * SRTT (1 s before any RTT sample), plus the
   * worst-case delayed ACK (200 ms, Linux's TCP_RTO_MIN) when one segment is in flight, else
   * plus 2 ms (Linux's TCP_TIMEOUT_MIN: on a TAP the SRTT is well under a millisecond, and a
   * probe at 2 * SRTT alone would fire whenever the peer is a little slow to be scheduled), and
   * no later than the retransmission timer.
   */
  private scheduleLossProbe(): void {
    this.probeDeadline?.cancel();
    if (!this.sackOn || !this.params.tailLossProbe || this.caState !== 'open' || this.tlpEndSeq !== undefined) return;
    const flight = this.flightSize();
    if (flight === 0 || !this.isSynchronized() || this.state === 'TIME-WAIT') return;
    const srtt = this.rto.srtt;
    let pto = srtt === undefined ? 1000 : 2 * srtt;
    if (srtt !== undefined) pto += flight <= this.mss ? WORST_CASE_DELAYED_ACK_MS : PTO_FLOOR_MS;
    pto = Math.min(pto, this.rto.rto);
    (this.probeDeadline ??= this.timers.deadline(() => this.lossProbe())).armIn(pto);
  }

  /**
   * The probe timer fired (RFC 8985 7.3): send one new segment if there is one and the peer's
   * window takes it, else send the last segment again, so that its ACK (with SACK blocks) lets
   * RACK find a loss at the tail without waiting for the retransmission timer.
   */
  private lossProbe(): void {
    if (!this.isOpen || this.caState !== 'open' || this.flightSize() === 0) return;
    this.host.count('TCPLossProbes');
    const before = this.sndMax;
    this.probeAllowance = this.mss;
    this.trySend();
    this.probeAllowance = 0;
    this.tlpRetransmitted = false;
    if (this.sndMax === before) {
      const last = this.scoreboard.lastNotSacked();
      if (!last) return;
      this.retransmitSegment(last);
      this.tlpRetransmitted = true;
    }
    this.tlpEndSeq = this.sndMax;
    // After a probe the retransmission timer guards (7.3), not another probe.
    this.armRetransmit();
  }

  /**
   * An ACK during a TLP episode (RFC 8985 7.4, as Linux's tcp_process_tlp_ack): if the probe was
   * a retransmission and the ACK goes past it with no D-SACK saying the original arrived too,
   * the probe repaired a loss, and the window is reduced as for any loss.
   */
  private tailLossProbeAck(ack: number, dsack: SackBlock | undefined, pureDuplicate: boolean): void {
    const end = this.tlpEndSeq!;
    if (seqLt(ack, end)) return;
    if (!this.tlpRetransmitted || (dsack && seqLe(dsack.right, end))) {
      this.tlpEndSeq = undefined;
    } else if (seqGt(ack, end)) {
      this.tlpEndSeq = undefined;
      this.cc.ssthresh = this.cc.ssthreshAfterLoss({ now: this.clock.now(), flightBytes: this.flightSize(), mss: this.mss, cause: 'duplicate-acks' });
      this.cc.cwnd = Math.max(this.cc.ssthresh, this.mss);
      this.host.count('TCPLossProbeRecovery');
    } else if (pureDuplicate) {
      // a duplicate ACK at the probe's end: the original and the probe both arrived
      this.tlpEndSeq = undefined;
    }
  }

  /**
   * Proportional Rate Reduction (RFC 6937 3, the SSRB bound as Linux uses): how much may be
   * sent on this ACK, written into the congestion window as pipe + sndcnt.
   */
  private prrUpdate(delivered: number, newlyLost: boolean): void {
    this.prrDelivered += delivered;
    const pipe = this.scoreboard.pipe();
    const ssthresh = this.cc.ssthresh;
    let sndcnt: number;
    if (pipe > ssthresh) {
      // Proportional part: send ssthresh/RecoverFS of what was delivered.
      sndcnt = Math.ceil((this.prrDelivered * ssthresh) / Math.max(this.prrRecoverFs, 1)) - this.prrOut;
    } else {
      // Slow start reduction bound: grow back towards ssthresh, at most one MSS beyond what was delivered.
      sndcnt = Math.min(ssthresh - pipe, Math.max(this.prrDelivered - this.prrOut, delivered) + this.mss);
    }
    // The fast retransmit itself always goes (Linux: one segment when nothing was sent yet and something was found lost).
    sndcnt = Math.max(sndcnt, this.prrOut === 0 && newlyLost ? this.mss : 0);
    this.cc.cwnd = pipe + sndcnt;
  }

  /** The handshake is complete: tell the layer and the socket; a FIN asked for meanwhile goes next. */
  private becomeEstablished(): void {
    this.state = 'ESTABLISHED';
    // The handshake's retransmission deadline (and its closure) is done with unless data waits
    // on it: an idle connection does not keep one; the first data sent makes it again.
    if (!this.retransmitDeadline?.armed) this.retransmitDeadline = undefined;
    if (this.receive) this.rcvAdvertisedEdge = seqMax(this.rcvAdvertisedEdge, this.receive.next);
    this.host.established(this);
    this.socket?.connectionEstablished();
    if (this.finQueued) this.state = 'FIN-WAIT-1';
  }

  private ackSyn(seg: TcpRepr): void {
    this.sndUna = seg.ack;
    if (seqLt(this.sndNxt, seg.ack)) this.sndNxt = seg.ack;
    // The SYN-ACK's window is never scaled; later ones are (RFC 7323 2.2).
    this.sndWnd = this.state === 'SYN-SENT' ? seg.window : seg.window << this.sndWscale;
    this.maxSndWnd = this.sndWnd;
    this.sndWl1 = seg.seq;
    this.sndWl2 = seg.ack;
    this.retransmits = 0;
    this.stopRetransmit();
    if (this.timedSeq !== undefined) {
      this.rttSample(this.clock.now() - this.timedAt);
      this.timedSeq = undefined;
    }
  }

  /** Reads the SYN's options: MSS, window scale, SACK-permitted, timestamps (each on only if both sides offer it). */
  private takeSynOptions(seg: TcpRepr): void {
    const o = seg.options;
    const peerMss = o.mss ?? TCP_DEFAULT_MSS;
    this.windowScalingOn = this.params.windowScaling && o.windowScale !== undefined;
    if (this.windowScalingOn) {
      this.sndWscale = Math.min(o.windowScale!, TCP_MAX_WINDOW_SCALE);
    } else {
      this.sndWscale = 0;
      this.rcvWscale = 0;
    }
    this.sackOn = this.params.sack && o.sackPermitted === true;
    this.timestampsOn = this.params.timestamps && o.timestamps !== undefined;
    if (this.timestampsOn) {
      this.tsRecent = o.timestamps!.value;
      this.tsRecentAt = this.clock.now();
    }
    this.mss = Math.max(64, Math.min(peerMss, this.localMss) - (this.timestampsOn ? TIMESTAMP_OPTION_BYTES : 0));
  }

  private acceptData(seg: TcpRepr, payload: Uint8Array): void {
    const receive = this.receive!;
    const window = this.windowAdvertisedNow();
    const nextBefore = receive.next;
    const outcome = receive.receive(seg.seq, payload, window);
    if (outcome.duplicate > 0) {
      if (seqLt(seg.seq, nextBefore)) this.noteDuplicate(seg.seq, Math.min(payload.length, seqDiff(nextBefore, seg.seq)));
      else if (outcome.duplicate === payload.length) this.noteDuplicate(seg.seq, payload.length);
    }
    if (outcome.outOfOrder) {
      this.host.count('TCPOFOQueue');
      this.newestOutOfOrderSeq = seg.seq;
    }
    // The receiver's RTT for autotuning: how old the timestamp is that the peer echoes on its data.
    const ts = seg.options.timestamps;
    if (this.timestampsOn && ts && ts.echo !== 0 && outcome.delivered > 0) this.receiveTuner.rttSample(seqDiff(this.tsNow(), ts.echo));
    if (outcome.delivered > 0) this.socket?.dataArrived();
    // An out-of-order FIN waits for the data before it.
    if (this.pendingFinSeq !== undefined && this.pendingFinSeq === receive.next) {
      this.pendingFinSeq = undefined;
      this.receiveFin(receive.next);
    }
    // More data behind an open hole: after the first three, its ACK may wait for the batch end.
    if (outcome.outOfOrder && !outcome.filledHole && outcome.duplicate === 0 && outcome.delivered === 0 && this.compressSack(receive.next)) return;
    // ACK at once for out-of-order data, a filled hole or a duplicate (RFC 5681 4.2, RFC 9293 3.8.6.3);
    // otherwise at least every second full-sized segment, or after the delayed-ACK time.
    const immediate = outcome.outOfOrder || outcome.filledHole || outcome.duplicate > 0 || outcome.delivered === 0;
    this.scheduleAck(immediate, outcome.delivered);
  }

  /**
   * New out-of-order data behind a hole at `next`: true when its ACK may wait for the end of the
   * received batch (SACK compression, Linux's __tcp_ack_snd_check with tcp_comp_sack_nr): not
   * for the first three at one RCV.NXT, which the sender counts as duplicate ACKs, nor once 44
   * wait. Linux holds them on a timer (5% of the RTT, at most 1 ms); the batch end comes sooner.
   */
  private compressSack(next: number): boolean {
    if (!this.params.sackCompression || !this.params.ackCoalescing || !this.sackOn) return false;
    if (next !== this.sackCompressNext) {
      this.sackCompressNext = next;
      this.sackCompressSeen = 0;
    }
    if (++this.sackCompressSeen <= SACK_COMPRESSION_IMMEDIATE || this.sackCompressed >= SACK_COMPRESSION_MAX) return false;
    this.ackSoon();
    if (!this.ackDeferred) return true; // no batch: ackSoon sent it now
    this.sackCompressed++;
    this.host.count('TCPAckCompressed');
    return true;
  }

  /** The FIN at sequence number `finSeq` arrived. */
  private receiveFin(finSeq: number): void {
    const receive = this.receive!;
    if (this.finReceived) {
      if (this.state === 'TIME-WAIT') {
        this.sendAck();
        this.armCloseTimer(this.params.timeWaitMs);
      }
      return;
    }
    if (finSeq !== receive.next) {
      if (seqGt(finSeq, receive.next)) this.pendingFinSeq = finSeq; // after a hole
      return;
    }
    this.finReceived = true;
    receive.advance(1);
    this.socket?.peerFinished();
    match(this.state)
      .with('SYN-RECEIVED', 'ESTABLISHED', () => {
        this.state = 'CLOSE-WAIT';
      })
      .with('FIN-WAIT-1', () => {
        if (this.finSent && this.sndUna === this.sndMax) this.enterTimeWait();
        else this.state = 'CLOSING';
      })
      .with('FIN-WAIT-2', () => this.enterTimeWait())
      .otherwise(() => {});
    // Linux acknowledges a FIN with a delayed ACK (our own FIN may carry it); the time-wait ACK goes now.
    if (this.state === 'TIME-WAIT') this.sendAck();
    else this.scheduleAck(false);
    if (this.orphaned && this.state === 'CLOSE-WAIT') this.shutdown();
  }

  // ---------------------------------------------------------------------------------------
  // Sending

  /** Sends what the windows allow (RFC 9293 3.8.6.2.1, with Nagle's rule of RFC 896). */
  private trySend(): void {
    if (!this.isSynchronized() || this.state === 'TIME-WAIT') return;
    let sent = false;
    // With SACK the window limits the bytes in the network (RFC 6675 pipe), not SND.NXT - SND.UNA.
    // (An unmade scoreboard has nothing in the pipe and nothing lost: asking it would make one
    // for every idle connection as its handshake completes.)
    const board = this.sackOn ? this.scoreboardMade : undefined;
    let pipe = board ? board.pipe() : 0;
    // NextSeg rule 1 (RFC 6675 4): segments judged lost go first, lowest first; but F-RTO's
    // step 2b (RFC 5682) sends new data first, to see whether the timeout was spurious.
    const frtoNew = this.frtoSendNew;
    this.frtoSendNew = false;
    if (board && !frtoNew) {
      const resent = this.retransmitLost(pipe);
      pipe += resent;
      sent = resent > 0;
    }
    // One send time for every new segment of this call, read at the first: Linux stamps every
    // skb of one tcp_write_xmit with the tcp_mstamp it refreshed once at the start (RACK's
    // ordering only needs it not to run backwards). A clock read per segment was ~1% of a download.
    let sentAt: number | undefined;
    for (;;) {
      const offset = seqDiff(this.sndNxt, this.sndUna);
      const unsent = this.sendBuffer.length - offset;
      // The FIN sits just after the last byte; it is due when SND.NXT reaches it.
      const finSeq = seqAdd(this.sndUna, this.sendBuffer.length);
      const finDue = this.finQueued && !this.finAcked && this.sndNxt === finSeq;
      if (unsent <= 0 && !finDue) break;
      const flight = this.flightSize();
      const room = Math.min(this.cc.cwnd + this.probeAllowance - (this.sackOn ? pipe : flight), this.sndWnd - flight);
      let length = 0;
      if (unsent > 0) {
        if (room <= 0) {
          if (this.sndWnd === 0 && flight === 0) this.startPersist();
          break;
        }
        // SACK blocks on this segment take room from its data (Linux's tcp_current_mss does the same).
        const mss = this.mss - this.sackOptionBytes();
        const largest = this.largestSend(mss);
        length = Math.min(largest, unsent, room);
        // A super-frame carries whole segments only, unless it ends the data (tcp_mss_split_point).
        if (length > mss && length < unsent) length -= length % mss;
        // TSO deferral (Linux's tcp_tso_should_defer): on a GSO link, when the window rather than
        // the data cuts this super-frame short and data is in flight (so an ACK will come and
        // open more room), wait for that ACK instead of sending a short one, unless a third of
        // the window is free already (tcp_tso_win_divisor 3). Fewer, fuller super-frames: fewer
        // system calls, and fewer ACKs from the peer, per byte.
        if (largest > mss && length < largest && length < unsent && flight > 0 && this.probeAllowance === 0 && this.caState === 'open' && room < Math.min(this.cc.cwnd, this.sndWnd) / 3) break;
        if (length < mss && flight > 0) {
          // Nagle: a small last piece waits for the ACK of what is in flight (unless noDelay or it ends the stream).
          if (length === unsent && !this.noDelay && !this.finQueued) break;
          // Autocorking (Linux's tcp_should_autocork), on a GSO link: a small last piece waits
          // until the application's current run of code is over (a microtask), in case it
          // writes more, as Node's http does chunk after chunk; then it goes, whatever came.
          // Without it each 64 KiB write left a 376-byte runt: a fifth of the frames written.
          if (length === unsent && largest > mss && !this.finQueued && this.probeAllowance === 0 && this.autocork()) break;
          // Sender-side silly window avoidance: a window-limited small segment waits too.
          if (length < unsent && length < this.maxSndWnd / 2) break;
        }
      }
      if (this.host.mayBurst !== undefined && !this.host.mayBurst(this)) break;
      const fin = this.finQueued && !this.finAcked && seqAdd(this.sndNxt, length) === finSeq;
      const data = this.sendBuffer.range(offset, length);
      let flags = TcpFlag.ACK;
      if (length > 0 && length === unsent) flags |= TcpFlag.PSH;
      if (fin) flags |= TcpFlag.FIN;
      const seq = this.sndNxt;
      if (seqLt(seq, this.sndMax)) {
        this.host.count('RetransSegs');
        this.totalRetransmits++;
      } else if (this.timedSeq === undefined && length > 0 && !this.timestampsOn) {
        this.timedSeq = seq;
        this.timedAt = this.clock.now();
      }
      this.emitData(seq, flags, data);
      const end = seqAdd(seq, length + (fin ? 1 : 0));
      if (this.sackOn) {
        // A super-frame (a GSO link) is kept as two records, as Linux keeps a TSO skb whole: its
        // segments but the last, and the last one alone (the one a tail loss probe sends again,
        // RFC 8985 7.3). A SACK block covering part of a record cuts it at the block's edges
        // (SackScoreboard.applySack, as tcp_sacktag_walk fragments an skb), so the scoreboard has
        // per-segment detail only where the peer reported some, and each ACK walks two records
        // per super-frame in flight instead of one per segment.
        const now = (sentAt ??= this.clock.now());
        const size = this.segmentSize;
        if (length > size) {
          const last = seqAdd(seq, Math.floor((length - 1) / size) * size);
          this.scoreboard.sentNew(seq, last, now, size);
          this.scoreboard.sentNew(last, end, now);
        } else {
          this.scoreboard.sentNew(seq, end, now);
        }
        pipe += length + (fin ? 1 : 0);
      }
      if (this.caState === 'recovery') this.prrOut += length;
      this.sndNxt = end;
      if (fin) this.finSent = true;
      this.sndMax = seqMax(this.sndMax, this.sndNxt);
      sent = true;
      if (fin || this.probeAllowance > 0) break; // a probe is one segment
    }
    if (frtoNew && !seqGt(this.sndMax, this.recover)) {
      // No new data could go: F-RTO cannot judge, conventional recovery resends the losses.
      this.frto = false;
      if (this.retransmitLost(pipe) > 0) sent = true;
    }
    if (sent && !this.retransmitDeadline?.armed) this.armRetransmit();
    if (sent && this.probeAllowance === 0 && !this.probeDeadline?.armed) this.scheduleLossProbe();
  }

  /** The host held this connection back (its burst for one run was spent): send what the windows allow now. */
  resumeSending(): void {
    if (this.state !== 'CLOSED') this.trySend();
  }

  /** Resends the segments judged lost while the window allows, `pipe` bytes being in the network; returns the bytes sent. */
  private retransmitLost(pipe: number): number {
    let resent = 0;
    for (let lost = this.scoreboard.nextLost(); lost && pipe + resent < this.cc.cwnd; lost = this.scoreboard.nextLost()) resent += this.retransmitSegment(lost);
    return resent;
  }

  /**
   * Holds a small last piece back until the end of the current run of JavaScript: true when it
   * is to wait (a send is now scheduled for then), false when that send is the one running.
   */
  private autocork(): boolean {
    if (this.uncorking) return false;
    if (!this.corked) {
      this.corked = true;
      queueMicrotask(() => {
        this.corked = false;
        this.uncorking = true;
        try {
          this.trySend();
        } finally {
          this.uncorking = false;
        }
      });
    }
    return true;
  }

  /**
   * Bytes one send may carry: one MSS, or on a link that segments for us (gsoMaxSize) as many
   * whole MSS as fit in a datagram under its IP header (IPv4's 20 bytes, IPv6's 40: sized for
   * IPv4 a TSO6 super-frame with SACK blocks came out up to 20 bytes over 64 KB and went out as
   * fragments) and the largest (60-byte) TCP header.
   */
  private largestSend(mss: number): number {
    const gso = this.host.gsoMaxSize ?? 0;
    if (gso === 0) return mss;
    const ipHeader = typeof this.remote.address === 'number' ? IPV4_HEADER_BYTES : IPV6_FIXED_HEADER_LENGTH;
    return Math.max(1, Math.floor((gso - ipHeader - 60) / mss)) * mss;
  }

  /** Data bytes per segment right now (the MSS less the SACK blocks our next segment carries). */
  get segmentSize(): number {
    return this.mss - this.sackOptionBytes();
  }

  private flightSize(): number {
    return seqDiff(this.sndNxt, this.sndUna);
  }

  /** Bytes the SACK option takes on our next segment (0 when there is no out-of-order data to report). */
  private sackOptionBytes(): number {
    if (!this.sackOn || !this.receive || (this.receive.outOfOrderBytes === 0 && !this.dsackPending)) return 0;
    const blocks = this.receive.outOfOrderRanges().length + (this.dsackPending ? 1 : 0);
    return 4 + 8 * Math.min(blocks, this.timestampsOn ? 3 : 4);
  }

  /** Retransmits the segment at SND.UNA (fast retransmit, a partial ACK). */
  private retransmitFirst(): void {
    const length = Math.min(this.mss - this.sackOptionBytes(), this.sendBuffer.length);
    const fin = this.finSent && length === this.sendBuffer.length;
    if (length === 0 && !fin) return;
    const data = this.sendBuffer.range(0, length);
    this.host.count('RetransSegs');
    this.totalRetransmits++;
    this.timedSeq = undefined;
    this.noteRetransmission();
    this.emitData(this.sndUna, TcpFlag.ACK | (fin ? TcpFlag.FIN : 0) | (length > 0 && length === this.sendBuffer.length ? TcpFlag.PSH : 0), data);
    // The retransmission may reach further than the original did (it carries fewer SACK blocks).
    const end = seqAdd(this.sndUna, length + (fin ? 1 : 0));
    if (seqGt(end, this.sndNxt)) this.sndNxt = end;
    this.sndMax = seqMax(this.sndMax, end);
    this.armRetransmit();
  }

  /**
   * Sends one scoreboard record again (SACK recovery, a timeout, a loss probe); returns the
   * sequence space it took. A record longer than today's MSS is cut first.
   */
  private retransmitSegment(segment: SentSegment): number {
    const max = this.mss - this.sackOptionBytes();
    const finSeq = seqAdd(this.sndUna, this.sendBuffer.length);
    if (seqDiff(segment.end, segment.start) > max && seqGt(segment.end, seqAdd(segment.start, max))) {
      // cut so the data fits (a FIN rides on the second part)
      this.scoreboard.split(segment, seqAdd(segment.start, max));
    }
    const fin = this.finSent && segment.end === seqAdd(finSeq, 1);
    const length = seqDiff(segment.end, segment.start) - (fin ? 1 : 0);
    const data = this.sendBuffer.range(seqDiff(segment.start, this.sndUna), length);
    let flags = TcpFlag.ACK;
    if (fin) flags |= TcpFlag.FIN;
    if (length > 0 && seqAdd(segment.start, length) === finSeq) flags |= TcpFlag.PSH;
    this.host.count('RetransSegs');
    if (this.caState === 'recovery') {
      this.host.count('TCPFastRetrans');
      this.prrOut += length;
    }
    this.totalRetransmits++;
    this.timedSeq = undefined;
    this.noteRetransmission();
    this.emitData(segment.start, flags, data);
    this.scoreboard.retransmitted(segment, this.clock.now(), this.timestampsOn ? this.tsNow() : 0);
    return seqDiff(segment.end, segment.start);
  }

  /** Goes back to SND.UNA and sends again (after a timeout, or a smaller path MTU). */
  private retransmitNow(): void {
    if (!this.isSynchronized()) return;
    if (this.sackOn) {
      // Everything not SACKed goes again, cut to the new MSS (Linux tcp_simple_retransmit).
      this.scoreboard.markAllLost();
      this.timedSeq = undefined;
      this.trySend();
      return;
    }
    this.sndNxt = this.sndUna;
    this.timedSeq = undefined;
    this.stopRetransmit();
    this.trySend();
  }

  private sendSyn(): void {
    const passive = this.state === 'SYN-RECEIVED';
    const flags = passive ? TcpFlag.SYN | TcpFlag.ACK : TcpFlag.SYN;
    if (this.retransmits > 0) {
      this.host.count('TCPSynRetrans');
      this.host.count('RetransSegs');
      this.totalRetransmits++;
    } else {
      this.timedSeq = this.iss;
      this.timedAt = this.clock.now();
    }
    // The SYN's window is never scaled (RFC 7323 2.2). Like Linux (tcp_select_initial_window) it
    // is rounded down to whole segments: 64240 in a SYN, 65160 in a SYN-ACK that uses timestamps.
    const segment = this.localMss - (passive && this.timestampsOn ? TIMESTAMP_OPTION_BYTES : 0);
    const space = Math.min(0xffff, this.receive ? this.receive.free : this.params.receiveBufferBytes);
    const window = space > segment ? space - (space % segment) : space;
    if (passive) this.lastAckSent = this.receive!.next;
    this.output(this.iss, passive ? this.receive!.next : 0, flags, window, NO_DATA, 'syn');
    if (passive) this.rcvAdvertisedEdge = seqAdd(this.receive!.next, window);
    this.sndNxt = seqAdd(this.iss, 1);
    this.sndMax = seqMax(this.sndMax, this.sndNxt);
    this.armRetransmit();
  }

  /**
   * A SYN's options (RFC 9293 3.7.1, RFC 7323, RFC 2018): MSS always; window scale, SACK-permitted
   * and timestamps when configured, and in a SYN-ACK only those the peer's SYN offered.
   */
  private synOptionsInto(o: ReusedTcpOptions): void {
    const passive = this.state === 'SYN-RECEIVED';
    o.mss = this.localMss;
    if (passive ? this.windowScalingOn : this.params.windowScaling) o.windowScale = this.rcvWscale;
    if (this.params.sack && (!passive || this.sackOn)) o.sackPermitted = true;
    if (this.params.timestamps && (!passive || this.timestampsOn)) o.setTimestamps(this.tsNow(), passive ? this.tsRecent : 0);
  }

  private emitData(seq: number, flags: number, data: SegmentData): void {
    this.emit(seq, this.receive!.next, flags, data, 'segment');
  }

  /** Options on every segment after the SYN: timestamps when on, SACK blocks for out-of-order data. */
  private segmentOptionsInto(o: ReusedTcpOptions): void {
    const timestamps = this.timestampsOn;
    if (timestamps) o.setTimestamps(this.tsNow(), this.tsRecent);
    let sackBlocks: SackBlock[] | undefined;
    const room = timestamps ? 3 : 4;
    if (this.sackOn && this.receive && this.receive.outOfOrderBytes > 0) {
      sackBlocks = sackBlocksToSend(this.receive.outOfOrderRanges(), this.newestOutOfOrderSeq, room);
    }
    if (this.dsackPending) {
      // D-SACK: the duplicate first, then the usual blocks (RFC 2883 4), once.
      sackBlocks = [this.dsackPending, ...(sackBlocks ?? [])].slice(0, room);
      this.dsackPending = undefined;
    }
    if (sackBlocks) o.sackBlocks = sackBlocks;
  }

  /** Sends an ACK now (and so cancels a delayed one). */
  private sendAck(): void {
    if (!this.receive) return;
    // SND.MAX, not SND.NXT: after a timeout SND.NXT goes back, but the peer has seen up to SND.MAX
    // and would find an ACK at the older number outside its window (Linux's snd_nxt never goes back).
    this.emit(this.sndMax, this.receive.next, TcpFlag.ACK, NO_DATA, 'segment');
  }

  /** An ACK for an unacceptable segment: at most one per invalidRatelimitMs (Linux tcp_invalid_ratelimit). */
  private sendRateLimitedAck(challenge: boolean): void {
    const now = this.clock.now();
    if (now - this.lastInvalidAckAt < this.params.invalidRatelimitMs) return;
    if (challenge && !this.host.allowChallengeAck()) return;
    this.lastInvalidAckAt = now;
    if (challenge) this.host.count('TCPChallengeACK');
    this.sendAck();
  }

  private sendRateLimitedAckUnlessData(hasData: boolean): void {
    if (hasData) this.sendAck();
    else this.sendRateLimitedAck(false);
  }

  /**
   * `length` bytes at `seq` arrived a second time: the next ACK's first SACK block says so
   * (D-SACK, RFC 2883 4), when the peer does SACK. Below RCV.NXT it is Linux's TCPDSACKOldSent,
   * inside the out-of-order queue TCPDSACKOfoSent.
   */
  private noteDuplicate(seq: number, length: number): void {
    if (!this.sackOn || !this.receive) return;
    const end = seqAdd(seq, length);
    const next = this.receive.next;
    if (seqLt(seq, next)) {
      this.dsackPending = { left: seq, right: seqLt(end, next) ? end : next };
      this.host.count('TCPDSACKOldSent');
    } else {
      this.dsackPending = { left: seq, right: end };
      this.host.count('TCPDSACKOfoSent');
    }
  }

  private sendChallengeAck(): void {
    this.sendRateLimitedAck(true);
  }

  private sendReset(seq: number): void {
    this.host.count('OutRsts');
    this.output(seq, 0, TcpFlag.RST, 0, NO_DATA, 'none');
  }

  /**
   * Every segment but the SYNs leaves here: fills in the window, remembers what it
   * acknowledged, and cancels a pending delayed ACK (this segment carries it).
   */
  private emit(seq: number, ack: number, flags: number, payload: SegmentData, options: OutgoingOptions): void {
    let window = 0;
    if (this.receive && this.state !== 'SYN-SENT') {
      window = this.windowToAdvertise();
      const edge = seqAdd(this.receive.next, window);
      if (seqGt(edge, this.rcvAdvertisedEdge)) this.rcvAdvertisedEdge = edge;
      else window = Math.max(0, seqDiff(this.rcvAdvertisedEdge, this.receive.next));
    }
    if (flags & TcpFlag.ACK) this.lastAckSent = ack;
    this.output(seq, ack, flags, Math.min(0xffff, window >>> this.rcvWscale), payload, options);
    if (flags & TcpFlag.ACK) {
      this.ackPending = 0;
      this.ackDeferred = false;
      this.sackCompressed = 0;
      this.delayedAckDeadline?.cancel();
    }
  }

  /**
   * Describes the segment in the shared `OUTGOING` Repr (every field and option written anew, so
   * nothing of the previous segment's is left in it) and hands it to the host.
   */
  private output(seq: number, ack: number, flags: number, window: number, payload: SegmentData, options: OutgoingOptions): void {
    if (payload.length === 0 && flags === TcpFlag.ACK) this.host.count('TCPPureAcks');
    const repr = OUTGOING;
    repr.sourcePort = this.local.port;
    repr.destinationPort = this.remote.port;
    repr.seq = seq;
    repr.ack = ack;
    repr.flags = flags;
    repr.window = window;
    repr.urgentPointer = 0;
    repr.options.clear();
    if (options === 'segment') this.segmentOptionsInto(repr.options);
    else if (options === 'syn') this.synOptionsInto(repr.options);
    this.host.output(this, repr, payload);
    this.host.count('OutSegs');
  }

  /**
   * The window to offer: the free receive buffer, rounded down to the window scale's unit, with
   * receiver-side SWS avoidance (do not offer a window smaller than min(buffer/2, MSS)).
   */
  private windowToAdvertise(): number {
    const free = this.receive ? this.receive.free : this.params.receiveBufferBytes;
    const unit = 1 << this.rcvWscale;
    let window = Math.min(free, 0xffff << this.rcvWscale);
    if (window < Math.min((this.receive ? this.receive.capacity : this.params.receiveBufferBytes) / 2, this.mss)) window = 0;
    return window - (window % unit);
  }

  /** The window as the peer knows it: up to the edge we advertised (never shrunk). */
  private windowAdvertisedNow(): number {
    const next = this.receive!.next;
    return Math.max(0, seqDiff(this.rcvAdvertisedEdge, next), this.windowToAdvertise());
  }

  // ---------------------------------------------------------------------------------------
  // Timers

  /**
   * After in-order data (or a FIN): ACK at once when `immediate` (out-of-order data, a filled
   * hole, a duplicate: RFC 5681 4.2, RFC 9293 3.8.6.3), else once two full segments have arrived
   * unacknowledged (RFC 1122 4.2.3.2, RFC 5681 4.2) or with quickAck, and those at the end of the
   * receive batch, one ACK for all of its segments; what is left waits for the delayed-ACK timer.
   */
  private scheduleAck(immediate: boolean, bytes = 0): void {
    // Already acknowledged: the application answered while the data was being handed up (an
    // echo, a request-response), and the answer carried the ACK. Nothing to schedule, so no
    // timer to arm and cancel again on every round trip of a ping-pong.
    if (!immediate && this.receive !== undefined && this.lastAckSent === this.receive.next) return;
    this.ackPending += bytes;
    if (immediate) {
      this.sendAck();
      return;
    }
    if (this.ackPending >= 2 * this.mss || (this.params.quickAck && this.ackPending > 0)) {
      // A long batch still gets an ACK per GRO-sized run, as Linux's would (gro_max_size).
      if (this.ackPending >= ACK_COALESCING_MAX_BYTES) this.sendAck();
      else this.ackSoon();
      return;
    }
    const delayedAck = (this.delayedAckDeadline ??= this.timers.deadline(() => this.delayedAckTimeout()));
    if (!delayedAck.armed) delayedAck.armIn(this.params.delayedAckMs);
  }

  private delayedAckTimeout(): void {
    if (!this.isOpen) return;
    this.host.count('DelayedACKs');
    this.sendAck();
  }

  /**
   * An ACK that is due, not urgent: at the end of the receive batch when the host runs one (every
   * segment of the batch, and any window update the application's reads make meanwhile, then
   * share it), else now. A segment we send before then carries it, and the batch end finds
   * nothing to do.
   */
  private ackSoon(): void {
    if (this.ackDeferred) return;
    if (this.params.ackCoalescing && this.host.deferAck?.(this)) {
      this.ackDeferred = true;
      return;
    }
    this.sendAck();
  }

  /** The end of the receive batch: the ACK that waited for it, unless a segment carried it. */
  flushAck(): void {
    if (!this.ackDeferred) return;
    this.ackDeferred = false;
    if (!this.isOpen) return;
    this.host.count('tx_acks_coalesced');
    this.sendAck();
  }

  /** (Re)starts the retransmission timer at RTO from now (RFC 6298 5.1, 5.3): on every ACK of new data, no allocation. */
  private armRetransmit(): void {
    (this.retransmitDeadline ??= this.timers.deadline(() => this.retransmitTimeout())).armIn(this.rto.rto);
  }

  private stopRetransmit(): void {
    this.retransmitDeadline?.cancel();
  }

  /** The retransmission timer fired (RFC 6298 5.4-5.7). */
  private retransmitTimeout(): void {
    if (!this.isOpen) return;
    this.host.count('TCPTimeouts');
    const limit = match(this.state)
      .with('SYN-SENT', () => this.params.synRetries)
      .with('SYN-RECEIVED', () => this.params.synAckRetries)
      .otherwise(() => this.params.retries2);
    if (this.retransmits >= limit) {
      if (this.state === 'SYN-SENT') this.host.count('AttemptFails');
      else this.host.count('TCPAbortOnTimeout');
      if (this.state === 'SYN-RECEIVED' && !this.socket) return this.finish(undefined);
      this.finish(this.softError ?? 'ETIMEDOUT');
      return;
    }
    this.retransmits++;
    this.rto.timedOut();
    if (this.state === 'SYN-SENT' || this.state === 'SYN-RECEIVED') {
      this.sndNxt = this.iss;
      this.sendSyn();
      return;
    }
    // RFC 5681 3.1 equation (4) with the algorithm's threshold, once per episode (Linux's
    // tcp_enter_loss: not again for a timeout during recovery, or a repeated one with no ACK
    // between); the loss window is one segment.
    const newEpisode = this.caState === 'open' || seqGe(this.sndUna, this.recover) || (this.caState === 'loss' && this.retransmits === 1);
    if (newEpisode) {
      this.beginUndoEpisode();
      this.cc.ssthresh = this.cc.ssthreshAfterLoss({ now: this.clock.now(), flightBytes: this.flightSize(), mss: this.mss, cause: 'timeout' });
    }
    // F-RTO (RFC 5682 3.1 step 1; Linux: unless fast recovery was running, or again for a
    // repeated timeout on the same SND.UNA, 3.2).
    this.frto = this.sackOn && this.params.frto && (this.caState === 'open' || this.retransmits > 1);
    this.frtoSendNew = false;
    this.cc.cwnd = this.mss;
    this.congestionState('loss');
    this.recover = this.sndMax;
    this.dupAcks = 0;
    this.timedSeq = undefined;
    this.probeDeadline?.cancel();
    this.rackDeadline?.cancel();
    this.tlpEndSeq = undefined;
    if (this.sackOn) {
      // RFC 6675 5.1 as Linux does it (tcp_enter_loss): keep the SACK marks, judge everything
      // else lost, and resend it lowest first as the window (one segment now) opens again.
      this.scoreboard.markAllLost();
    } else {
      // Go back to SND.UNA: the window is one segment now, so this resends the first one. The
      // state stays 'loss' until SND.UNA passes `recover` (renoLossAck), as Linux's does.
      this.noteRetransmission();
      this.sndNxt = this.sndUna;
    }
    this.trySend();
    if (!this.retransmitDeadline?.armed) this.armRetransmit();
  }

  /** The peer's window is zero with data waiting: probe it (RFC 9293 3.8.6.1). */
  private startPersist(): void {
    const persist = (this.persistDeadline ??= this.timers.deadline(() => this.persistTimeout()));
    if (persist.armed) return;
    persist.armIn(Math.min(this.params.rto.maxMs, Math.max(this.params.rto.minMs, this.rto.rto) * 2 ** this.persistBackoff));
  }

  private persistTimeout(): void {
    if (!this.isOpen || this.sndWnd > 0) return this.trySend();
    // Linux's zero-window probe: no data, at SND.UNA - 1, so the peer answers with an ACK.
    this.host.count('TCPWinProbe');
    this.emit(seqAdd(this.sndUna, -1), this.receive!.next, TcpFlag.ACK, NO_DATA, 'segment');
    if (this.persistBackoff < 16) this.persistBackoff++;
    this.startPersist();
  }

  private stopPersist(): void {
    this.persistDeadline?.cancel();
    this.persistBackoff = 0;
  }

  private armKeepalive(): void {
    this.keepaliveDeadline?.cancel();
    if (!this.keepaliveOn || !(this.state === 'ESTABLISHED' || this.state === 'CLOSE-WAIT' || this.state === 'FIN-WAIT-2')) return;
    const wait = this.keepaliveSent === 0 ? this.keepaliveIdleMs : this.params.keepaliveIntervalMs;
    (this.keepaliveDeadline ??= this.timers.deadline(() => this.keepaliveTimeout())).armIn(wait);
  }

  private keepaliveTimeout(): void {
    if (!this.isOpen) return;
    if (this.keepaliveSent >= this.params.keepaliveProbes) {
      this.host.count('TCPAbortOnTimeout');
      return this.finish(this.softError ?? 'ETIMEDOUT');
    }
    // A keepalive probe: no data, at SND.UNA - 1 (RFC 1122 4.2.3.6), answered by an ACK.
    this.keepaliveSent++;
    this.host.count('TCPKeepAlive');
    this.emit(seqAdd(this.sndUna, -1), this.receive!.next, TcpFlag.ACK, NO_DATA, 'segment');
    this.armKeepalive();
  }

  private enterTimeWait(): void {
    this.state = 'TIME-WAIT';
    this.stopRetransmit();
    this.stopPersist();
    this.keepaliveDeadline?.cancel();
    this.socket?.connectionClosed();
    this.closedReported = true;
    this.armCloseTimer(this.params.timeWaitMs);
  }

  private armCloseTimer(ms: number): void {
    (this.closeDeadline ??= this.timers.deadline(() => {
      if (this.state === 'FIN-WAIT-2' || this.state === 'TIME-WAIT') this.finish(undefined);
    })).armIn(ms);
  }

  /** Goes to CLOSED: every timer stops, the socket and the layer are told once. */
  private finish(error: TcpErrorCode | undefined): void {
    if (this.state === 'CLOSED') return;
    log('%d > %d: %s -> CLOSED%s', this.local.port, this.remote.port, this.state, error ? ` (${error})` : '');
    this.state = 'CLOSED';
    for (const d of [this.retransmitDeadline, this.persistDeadline, this.delayedAckDeadline, this.keepaliveDeadline, this.closeDeadline, this.rackDeadline, this.probeDeadline]) d?.cancel();
    this.sendBuffer.clear();
    this.scoreboardMade?.clear();
    // Unread data stays for a socket that may still read it; reset, or with no socket, it goes.
    if (error || this.orphaned) this.receive?.clear();
    if (!this.closedReported) {
      this.closedReported = true;
      this.socket?.connectionClosed(error);
    }
    this.host.forget(this);
  }

  private isSynchronized(): boolean {
    return this.state !== 'SYN-SENT' && this.state !== 'SYN-RECEIVED' && this.state !== 'CLOSED';
  }

  /**
   * Our TSval: a millisecond clock, offset per connection. Read from the coarse clock (the time
   * this run of JavaScript began, SystemClock.coarseNow): a TSval is in milliseconds and RFC 7323
   * 4.1 asks only that it be proportional to real time, while reading the real clock on every
   * segment sent and received was 5-7% of an upload's profile.
   */
  private tsNow(): number {
    return (Math.floor(this.coarseNow()) + this.tsOffset) >>> 0;
  }

  /** The clock for millisecond bookkeeping (TSval, keepalive idle time, PAWS age, autotuning): read once per run. */
  private coarseNow(): number {
    const clock = this.clock;
    return clock.coarseNow ? clock.coarseNow() : clock.now();
  }
}

/** The smallest shift that lets a 16-bit window field cover `bufferBytes` (RFC 7323 2.3, at most 14). */
export function windowScaleFor(bufferBytes: number): number {
  let shift = 0;
  while (shift < TCP_MAX_WINDOW_SCALE && 0xffff << shift < bufferBytes) shift++;
  return shift;
}

