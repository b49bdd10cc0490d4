/**
 * Congestion control behind a small interface, so the connection does not care which algorithm
 * runs and a reader can write their own in one file. The connection tells it what happened
 * (bytes acknowledged, a loss found by duplicate ACKs, a timeout) and reads `cwnd` back.
 *
 * NewReno (RFC 5681 and RFC 6582) is the one here: slow start below ssthresh (cwnd grows by the
 * bytes acknowledged, at most one MSS per ACK), congestion avoidance above it (about one MSS per
 * round trip), halving on a loss found by three duplicate ACKs with fast recovery, and a window of
 * one segment after a timeout.
 */
export interface CongestionControl {
  readonly name: string;
  /** Congestion window, bytes. */
  readonly cwnd: number;
  /** Slow-start threshold, bytes. */
  readonly ssthresh: number;
  /** New data was acknowledged outside fast recovery. */
  onAck(ackedBytes: number, mss: number): void;
  /** Three duplicate ACKs: a segment is lost. Enter fast recovery with `flightBytes` outstanding. */
  onEnterRecovery(flightBytes: number, mss: number): void;
  /** A further duplicate ACK during fast recovery: one more segment has left the network. */
  onRecoveryDuplicate(mss: number): void;
  /** A partial ACK during fast recovery (RFC 6582 3.2 step 3): `ackedBytes` newly acknowledged. */
  onPartialAck(ackedBytes: number, mss: number): void;
  /** The ACK that ends fast recovery (everything sent before the loss is acknowledged). */
  onExitRecovery(flightBytes: number, mss: number): void;
  /** The retransmission timer fired with `flightBytes` outstanding. */
  onTimeout(flightBytes: number, mss: number): void;
  /**
   * SACK loss recovery sets the window itself: during recovery Proportional Rate Reduction
   * (RFC 6937) decides it on every ACK, and recovery ends at ssthresh (as Linux's
   * tcp_cwnd_reduction and tcp_end_cwnd_reduction write snd_cwnd for any algorithm).
   */
  setWindow(cwnd: number): void;
}

/** RFC 6928 / Linux: the initial window is 10 segments. */
export const INITIAL_WINDOW_SEGMENTS = 10;

export class NewReno implements CongestionControl {
  readonly name = 'newreno';
  cwnd: number;
  ssthresh = Number.MAX_SAFE_INTEGER;
  /** Bytes acknowledged in congestion avoidance since cwnd last grew (RFC 5681 3.1, "appropriate byte counting"). */
  private avoidanceCredit = 0;

  constructor(mss: number, initialSegments = INITIAL_WINDOW_SEGMENTS) {
    this.cwnd = initialSegments * mss;
  }

  onAck(ackedBytes: number, mss: number): void {
    if (this.cwnd < this.ssthresh) {
      // Slow start counts the bytes acknowledged, at most two segments per ACK (RFC 3465, L = 2):
      // a delayed ACK for two segments grows the window by two, as Linux's tcp_slow_start does.
      this.cwnd += Math.min(ackedBytes, 2 * mss);
      return;
    }
    this.avoidanceCredit += ackedBytes;
    if (this.avoidanceCredit >= this.cwnd) {
      this.avoidanceCredit -= this.cwnd;
      this.cwnd += mss;
    }
  }

  onEnterRecovery(flightBytes: number, mss: number): void {
    this.ssthresh = Math.max(Math.floor(flightBytes / 2), 2 * mss);
    this.cwnd = this.ssthresh + 3 * mss;
  }

  onRecoveryDuplicate(mss: number): void {
    this.cwnd += mss;
  }

  onPartialAck(ackedBytes: number, mss: number): void {
    // Deflate by what was acknowledged, then add back one segment (RFC 6582 3.2 step 3).
    this.cwnd = Math.max(mss, this.cwnd - ackedBytes + mss);
  }

  onExitRecovery(flightBytes: number, mss: number): void {
    // RFC 6582 3.2 step 3, first option: min(ssthresh, FlightSize + SMSS).
    this.cwnd = Math.min(this.ssthresh, Math.max(flightBytes, 0) + mss);
    this.avoidanceCredit = 0;
  }

  setWindow(cwnd: number): void {
    this.cwnd = cwnd;
    this.avoidanceCredit = 0;
  }

  onTimeout(flightBytes: number, mss: number): void {
    this.ssthresh = Math.max(Math.floor(flightBytes / 2), 2 * mss);
    this.cwnd = mss; // RFC 5681: the loss window is one segment
    this.avoidanceCredit = 0;
  }
}
