/**
 * Congestion control behind a small interface, so the connection does not care which algorithm
 * runs and a reader can write their own in one file (examples/12-congestion-control.ts does).
 *
 * The split is Linux's (struct tcp_congestion_ops), said in our words: the algorithm decides how
 * the window grows while all is well and how far it falls when a loss is found; the connection
 * does the loss recovery itself (fast retransmit, the window during recovery, the one-segment
 * window after a timeout) and tells the algorithm what happened. Four calls, and an optional fifth:
 *
 *   onAck(sample)             new data was acknowledged and no recovery runs: grow `cwnd`
 *                             (Linux's cong_avoid, with the RTT that pkts_acked would bring);
 *   ssthreshAfterLoss(loss)   a loss was found, by duplicate ACKs or the retransmission timer:
 *                             return the new slow-start threshold (Linux's ssthresh);
 *   onStateChange(state)      recovery began or ended, or a timeout happened (Linux's set_state);
 *   undo()                    optional: the last reduction was a mistake (every retransmission
 *                             proved spurious, RFC 3522/3708/5682): go back to the state before
 *                             it; the connection restores cwnd and ssthresh itself;
 *   cwnd, ssthresh            the two numbers, in bytes, which the connection reads before each
 *                             send and also sets itself while it recovers.
 *
 * NewReno (RFC 5681, RFC 6582) is below; CUBIC (RFC 9438, the default as in Linux) is in cubic.ts.
 */

/** What one ACK that advanced SND.UNA outside recovery tells the algorithm. */
export interface AckSample {
  /** The stack's clock, ms (a virtual clock in tests). */
  readonly now: number;
  /** Bytes this ACK newly acknowledged. */
  readonly ackedBytes: number;
  /** The sender's maximum segment size, bytes. */
  readonly mss: number;
  /** Bytes still in flight after this ACK. */
  readonly flightBytes: number;
  /** The smoothed round-trip time, ms, once there is one (RFC 6298 SRTT). */
  readonly srttMs: number | undefined;
}

/** What the connection knows when it finds a loss. */
export interface LossSample {
  readonly now: number;
  /** Bytes in flight when the loss was found (RFC 5681's FlightSize). */
  readonly flightBytes: number;
  readonly mss: number;
  /** Found by duplicate ACKs (fast retransmit) or by the retransmission timer. */
  readonly cause: 'duplicate-acks' | 'timeout';
}

/**
 * The connection's congestion state, as Linux names them: `open` (no loss outstanding),
 * `recovery` (fast recovery after duplicate ACKs), `loss` (after a retransmission timeout, until
 * everything sent before it is acknowledged).
 */
export type CongestionState = 'open' | 'recovery' | 'loss';

export interface CongestionControl {
  readonly name: string;
  /** Congestion window, bytes: how much may be in flight. */
  cwnd: number;
  /** Slow-start threshold, bytes: below it the window grows per ACK, above it per round trip. */
  ssthresh: number;
  /** New data was acknowledged while the state is `open`: grow `cwnd` as the algorithm likes. */
  onAck(sample: AckSample): void;
  /** A loss was found: the new ssthresh (the connection stores it and lowers `cwnd` itself). */
  ssthreshAfterLoss(loss: LossSample): number;
  /** The congestion state changed (optional). */
  onStateChange?(state: CongestionState, now: number): void;
  /**
   * The last loss was spurious and the connection undid its reduction (Linux's undo_cwnd):
   * forget what `ssthreshAfterLoss` changed (optional; cwnd and ssthresh are the connection's).
   */
  undo?(now: number): void;
}

/** Makes the algorithm for one connection; `mss` is the largest segment the connection may send. */
export type CongestionControlFactory = (mss: number) => CongestionControl;

/** RFC 6928 / Linux: the initial window is 10 segments. */
export const INITIAL_WINDOW_SEGMENTS = 10;

/**
 * Slow start as RFC 5681 3.1 with RFC 3465's byte counting: cwnd grows by every byte the ACK
 * acknowledges, up to ssthresh. A stretch ACK (one for many segments: a receiver that
 * coalesces its ACKs per batch, as ours does, or Linux's behind GRO) counts as the ACKs it
 * stands for, so the window still doubles per round trip: Linux's tcp_slow_start has done it
 * this way since 2013 ("properly handle stretch ACKs in slow start"), where RFC 3465's limit of
 * two segments per ACK (L = 2) would let it grow by two per batch. Returns the new window.
 */
export function slowStart(cwnd: number, ackedBytes: number, ssthresh: number): number {
  return Math.max(cwnd, Math.min(cwnd + ackedBytes, ssthresh));
}

export class NewReno implements CongestionControl {
  readonly name = 'newreno';
  cwnd: number;
  ssthresh = Number.MAX_SAFE_INTEGER;
  /** Bytes acknowledged in congestion avoidance since cwnd last grew (RFC 5681 3.1, "appropriate byte counting"). */
  private avoidanceCredit = 0;

  constructor(mss: number, initialSegments = INITIAL_WINDOW_SEGMENTS) {
    this.cwnd = initialSegments * mss;
  }

  onAck(sample: AckSample): void {
    if (this.cwnd < this.ssthresh) {
      this.cwnd = slowStart(this.cwnd, sample.ackedBytes, this.ssthresh);
      return;
    }
    // Congestion avoidance: one segment per window's worth of bytes acknowledged, about one per round trip.
    this.avoidanceCredit += sample.ackedBytes;
    if (this.avoidanceCredit >= this.cwnd) {
      this.avoidanceCredit -= this.cwnd;
      this.cwnd += sample.mss;
    }
  }

  ssthreshAfterLoss(loss: LossSample): number {
    // RFC 5681 equation (4): half of what is in flight, at least two segments.
    return Math.max(Math.floor(loss.flightBytes / 2), 2 * loss.mss);
  }

  onStateChange(): void {
    // Whatever happened, counting towards the next increase starts again.
    this.avoidanceCredit = 0;
  }
}

/** The algorithms a name selects (Linux's net.ipv4.tcp_available_congestion_control). */
export type CongestionControlName = 'cubic' | 'newreno';

/** A name or a factory of one's own, as the `congestionControl` parameter takes it. */
export type CongestionControlChoice = CongestionControlName | CongestionControlFactory;
