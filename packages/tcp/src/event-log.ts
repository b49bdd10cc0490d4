/**
 * The TCP event log (`tapstack up --tcp-log FILE`, `createStack({ tcp: { tcpLog } })`): one
 * record per thing a connection's sender does that a reader wants to see over time: the state
 * changes, each RTT measurement, each change of cwnd or ssthresh, each retransmission, each
 * retransmission timeout, the entry into fast recovery and the exit from it, and each undo of a
 * recovery that proved spurious (RFC 3522, 3708, 5682; Linux's undo). Every record carries
 * the 4-tuple and the values the sender runs on at that moment (cwnd, ssthresh, srtt, rttvar,
 * rto, bytes in flight), so `tapstack plot --tcp-log FILE` can draw them against time. The fields
 * are listed in docs/05-tcp.md.
 *
 * The log watches from outside: the layer calls it for every segment a connection sends, after
 * every segment a connection takes in, and when a connection is forgotten, and it compares what
 * `connection.info()` says with what it said last time. So the connection itself carries no
 * logging code, and with no log configured the layer skips the calls (one check per segment).
 * Memory: one small record per open connection, dropped when the connection is.
 */
import debugFactory from 'debug';
import type { Clock } from '@tapstack/link';
import { formatTcpEndpoint } from './address.ts';
import type { ConnectionInfo, TcpConnection, TcpState, UndoKind, UndoRecord } from './connection.ts';
import { TcpFlag, type TcpRepr } from './header.ts';

const log = debugFactory('tapstack:tcp');

export type TcpLogEventKind = 'open' | 'state' | 'rtt' | 'cwnd' | 'retransmit' | 'timeout' | 'recovery-enter' | 'recovery-exit' | 'undo';

/** One line of the log. Times in seconds, windows in bytes, RTTs in milliseconds. */
export interface TcpLogEvent {
  /** Seconds on the stack's clock since the log started. */
  readonly t: number;
  readonly event: TcpLogEventKind;
  /** "10.0.0.2:80" and "10.0.0.1:41866": with them the connection's 4-tuple. */
  readonly local: string;
  readonly remote: string;
  readonly state: TcpState;
  /** For 'state': the state before. */
  readonly from?: TcpState;
  /** For 'rtt': the measurement, ms. */
  readonly sample?: number;
  /** For 'retransmit': the first sequence number, relative to our ISN (the SYN is 0), and the sequence space it takes. */
  readonly seq?: number;
  readonly length?: number;
  /**
   * For 'undo': which evidence proved the recovery spurious ('dsack', 'full', 'partial' or 'loss',
   * as ConnectionInfo's UndoKind), and cwnd and ssthresh just before and just after the undo
   * (ssthresh null while "infinite"). The record's own cwnd and ssthresh are those after the
   * whole segment was taken in, which may have grown the window further.
   */
  readonly undo?: UndoKind;
  readonly cwndBefore?: number;
  readonly ssthreshBefore?: number | null;
  readonly cwndAfter?: number;
  readonly ssthreshAfter?: number | null;
  /** Congestion window and slow-start threshold, bytes (ssthresh null while still "infinite"). */
  readonly cwnd: number;
  readonly ssthresh: number | null;
  /** Smoothed RTT and its variation, ms (null before the first measurement), and the retransmission timeout, ms. */
  readonly srtt: number | null;
  readonly rttvar: number | null;
  readonly rto: number;
  /** Bytes sent and not yet acknowledged. */
  readonly inflight: number;
}

/** Where the records go. */
export type TcpLogSink = (event: TcpLogEvent) => void;

/** A record as one line of JSON, the fields always in the documented order. */
export function formatTcpLogEvent(e: TcpLogEvent): string {
  return JSON.stringify({
    t: e.t,
    event: e.event,
    local: e.local,
    remote: e.remote,
    state: e.state,
    ...(e.from !== undefined ? { from: e.from } : {}),
    ...(e.sample !== undefined ? { sample: e.sample } : {}),
    ...(e.seq !== undefined ? { seq: e.seq, length: e.length } : {}),
    ...(e.undo !== undefined ? { undo: e.undo, cwndBefore: e.cwndBefore, ssthreshBefore: e.ssthreshBefore, cwndAfter: e.cwndAfter, ssthreshAfter: e.ssthreshAfter } : {}),
    cwnd: e.cwnd,
    ssthresh: e.ssthresh,
    srtt: e.srtt,
    rttvar: e.rttvar,
    rto: e.rto,
    inflight: e.inflight,
  });
}

/** A sink that writes each record as a line of JSON (`write` gets the line with its newline). */
export function jsonLinesSink(write: (line: string) => void): TcpLogSink {
  return (event) => write(`${formatTcpLogEvent(event)}\n`);
}

/** What the log last said about one connection. */
interface Seen {
  readonly local: string;
  readonly remote: string;
  state: TcpState;
  cwnd: number;
  ssthresh: number;
  samples: number;
  rto: number;
  inRecovery: boolean;
  /** ConnectionInfo.recoveries when last seen. */
  recoveries: number;
  /** The last undo logged (the connection keeps its last one; a new object is a new undo). */
  lastUndo: UndoRecord | undefined;
  /** Highest sequence number sent, relative to the ISN, + 1 (0: nothing yet). */
  highest: number;
}

/** An ssthresh this large means "not set yet" (NewReno starts at MAX_SAFE_INTEGER, as Linux's TCP_INFINITE_SSTHRESH). */
const INFINITE_SSTHRESH = 2 ** 31;

const round3 = (v: number): number => Math.round(v * 1000) / 1000;
/** An ssthresh as the log writes it: null while "infinite". */
const finite = (ssthresh: number): number | null => (ssthresh >= INFINITE_SSTHRESH ? null : ssthresh);

/** Turns what the layer sees into records (see the file comment); one per TcpLayer. */
export class TcpEventLog {
  private readonly seen = new Map<TcpConnection, Seen>();
  private readonly start: number;
  /** A sink that threw (a full disk): the log stops, the connections go on. */
  private failed = false;

  constructor(
    private readonly clock: Clock,
    private readonly sink: TcpLogSink,
  ) {
    this.start = clock.now();
  }

  /** The connection is about to send `repr` with `payloadLength` bytes of data. */
  sent(connection: TcpConnection, repr: TcpRepr, payloadLength: number): void {
    const info = connection.info();
    const seen = this.update(connection, info);
    const length = payloadLength + (repr.flags & TcpFlag.SYN ? 1 : 0) + (repr.flags & TcpFlag.FIN ? 1 : 0);
    if (length === 0 || repr.flags & TcpFlag.RST) return;
    const seq = (repr.seq - connection.iss) >>> 0;
    // Sequence space below the highest already sent is being sent again (probes carry none).
    if (seq < seen.highest) this.emit('retransmit', seen, info, { seq, length });
    seen.highest = Math.max(seen.highest, seq + length);
  }

  /** The connection took a segment in, or changed on its own: log what changed. */
  changed(connection: TcpConnection): void {
    // A segment that closed its connection was followed by gone(): nothing more to say.
    if (!connection.isOpen && !this.seen.has(connection)) return;
    this.update(connection, connection.info());
  }

  /** The connection is over: log its last change (to CLOSED) and forget it. */
  gone(connection: TcpConnection): void {
    if (!this.seen.has(connection)) return;
    this.update(connection, connection.info());
    this.seen.delete(connection);
  }

  private update(connection: TcpConnection, info: ConnectionInfo): Seen {
    let seen = this.seen.get(connection);
    if (!seen) {
      seen = {
        local: formatTcpEndpoint(info.local.address, info.local.port),
        remote: formatTcpEndpoint(info.remote.address, info.remote.port),
        state: info.state,
        cwnd: info.cwnd,
        ssthresh: info.ssthresh,
        samples: info.rttSamples,
        rto: info.rtoMs,
        inRecovery: info.inRecovery,
        recoveries: info.recoveries,
        lastUndo: info.lastUndo,
        highest: 0,
      };
      this.seen.set(connection, seen);
      this.emit('open', seen, info);
      return seen;
    }
    if (info.rttSamples !== seen.samples) {
      seen.samples = info.rttSamples;
      seen.rto = info.rtoMs;
      this.emit('rtt', seen, info, info.lastRttMs !== undefined ? { sample: round3(info.lastRttMs) } : {});
    } else if (info.rtoMs > seen.rto) {
      // The RTO grew without a measurement: only the timer's backoff does that (RFC 6298 5.5).
      seen.rto = info.rtoMs;
      this.emit('timeout', seen, info);
    }
    if (info.lastUndo !== seen.lastUndo && info.lastUndo !== undefined) {
      const u = info.lastUndo;
      seen.lastUndo = u;
      this.emit('undo', seen, info, { undo: u.kind, cwndBefore: u.cwndBefore, ssthreshBefore: finite(u.ssthreshBefore), cwndAfter: u.cwndAfter, ssthreshAfter: finite(u.ssthreshAfter) });
    }
    if (info.inRecovery !== seen.inRecovery || info.recoveries !== seen.recoveries) {
      // In the order they happened: the recovery that was running ends (an undo, or the end of
      // recovery, just before), then a new one begins (and may have ended on the same segment),
      // so that a reader of the log, and the plot's shaded bands, see each episode on its own.
      const entered = info.recoveries !== seen.recoveries;
      if (seen.inRecovery) this.emit('recovery-exit', seen, info);
      if (entered) this.emit('recovery-enter', seen, info);
      if (entered && !info.inRecovery) this.emit('recovery-exit', seen, info);
      seen.inRecovery = info.inRecovery;
      seen.recoveries = info.recoveries;
    }
    if (info.cwnd !== seen.cwnd || info.ssthresh !== seen.ssthresh) {
      seen.cwnd = info.cwnd;
      seen.ssthresh = info.ssthresh;
      this.emit('cwnd', seen, info);
    }
    // The state last, so a connection's CLOSED line is its last line.
    if (info.state !== seen.state) {
      const from = seen.state;
      seen.state = info.state;
      this.emit('state', seen, info, { from });
    }
    return seen;
  }

  private emit(event: TcpLogEventKind, seen: Seen, info: ConnectionInfo, extra: Partial<Pick<TcpLogEvent, 'from' | 'sample' | 'seq' | 'length' | 'undo' | 'cwndBefore' | 'ssthreshBefore' | 'cwndAfter' | 'ssthreshAfter'>> = {}): void {
    if (this.failed) return;
    const record: TcpLogEvent = {
      t: Math.round((this.clock.now() - this.start) * 1000) / 1e6,
      event,
      local: seen.local,
      remote: seen.remote,
      state: info.state,
      ...extra,
      cwnd: info.cwnd,
      ssthresh: finite(info.ssthresh),
      srtt: info.srttMs === undefined ? null : round3(info.srttMs),
      rttvar: info.srttMs === undefined ? null : round3(info.rttvarMs),
      rto: round3(info.rtoMs),
      inflight: info.inflight,
    };
    try {
      this.sink(record);
    } catch (err) {
      // Called from the middle of a connection's work: a sink's error must not unwind it.
      this.failed = true;
      log('tcp log stopped: %s', (err as Error).message);
    }
  }
}
