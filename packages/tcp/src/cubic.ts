/**
 * CUBIC (RFC 9438), Linux's default congestion control and ours.
 *
 * After a loss, Reno climbs back one segment per round trip, which takes minutes on a fast long
 * path. CUBIC makes the window a function of the time since the last reduction instead:
 *
 *   W_cubic(t) = C * (t - K)^3 + W_max                       (RFC 9438 4.2, figure 1)
 *   K          = cbrt((W_max - cwnd_epoch) / C)              (figure 2)
 *
 * in segments, t and K in seconds. W_max is the window where the loss happened; the curve rises
 * fast from the reduced window (cwnd_epoch, where this congestion-avoidance stage began),
 * flattens as it nears W_max (concave region, 4.4), and, when no loss comes, leaves it faster
 * and faster (convex region, 4.5) to find the new limit. Each ACK moves cwnd a step towards
 * target = W_cubic(t + RTT), clamped to [cwnd, 1.5 * cwnd].
 *
 * Where Reno would do better (short RTTs, small windows) CUBIC follows an estimate of Reno's
 * window instead (the Reno-friendly region, 4.3): W_est grows by alpha_cubic per window of
 * ACKs, alpha_cubic = 3 (1 - beta) / (1 + beta), so that an AIMD flow with decrease beta = 0.7 gets
 * the same average rate as Reno's with 0.5; once W_est passes the window before the last loss
 * (cwnd_prior) alpha becomes 1, Reno's own rate.
 *
 * On a loss the threshold becomes beta = 0.7 of what was in flight (4.6), not half. Fast
 * convergence (4.7): when the loss comes below the previous W_max the flow is losing ground to
 * newcomers, so it remembers a lower W_max, (1 + beta) / 2 of its window, and gives bandwidth
 * back sooner. After a timeout the first stage runs with K = 0 and W_max = cwnd_epoch (4.8).
 * Below ssthresh it slow-starts like Reno (4.10; HyStart++ is not done here). A pause of the
 * application (an ACK left nothing in flight) moves the stage's start by the pause, so the curve
 * resumes where it stood.
 *
 * Time comes from the samples (the stack's clock), so a test on the virtual clock gets exact
 * windows. The window is kept in bytes, rounded down after each ACK; the estimates are exact.
 */
import { INITIAL_WINDOW_SEGMENTS, slowStart, type AckSample, type CongestionControl, type CongestionState, type LossSample } from './congestion.ts';

/** RFC 9438 5: C = 0.4 (segments per second cubed). */
export const CUBIC_C = 0.4;
/** RFC 9438 4.6: the multiplicative decrease factor. */
export const CUBIC_BETA = 0.7;
/** RFC 9438 4.3: the Reno-friendly additive increase, 3 (1 - beta) / (1 + beta), about 0.53. */
export const CUBIC_ALPHA = (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA);

export interface CubicOptions {
  /** RFC 9438 4.7 (Linux's fast_convergence module parameter, on). */
  fastConvergence?: boolean;
  initialSegments?: number;
}

export class Cubic implements CongestionControl {
  readonly name = 'cubic';
  cwnd: number;
  ssthresh = Number.MAX_SAFE_INTEGER;
  /** W_max, segments: the window just before the last reduction (lowered by fast convergence). */
  wMax: number | undefined;
  /** cwnd_prior, segments: the window when ssthresh was last set. */
  cwndPrior: number | undefined;
  /** t_epoch, ms: when the current congestion-avoidance stage began (undefined: not begun). */
  epochStart: number | undefined;
  /** cwnd_epoch, segments. */
  cwndEpoch = 0;
  /** K, seconds. */
  k = 0;
  /** W_est, segments: the Reno-friendly estimate. */
  wEst = 0;
  private readonly fastConvergence: boolean;
  /** The last loss was a timeout: the next stage starts with K = 0 (RFC 9438 4.8). */
  private afterTimeout = false;
  /** When an ACK last left nothing in flight (the application had nothing more to send), ms. */
  private idleSince: number | undefined;
  /** The curve as it stood before the last loss, for `undo` (a spurious loss changes nothing). */
  private beforeLoss: { wMax: number | undefined; cwndPrior: number | undefined; epochStart: number | undefined; cwndEpoch: number; k: number; wEst: number; afterTimeout: boolean } | undefined;

  constructor(mss: number, options: CubicOptions = {}) {
    this.cwnd = (options.initialSegments ?? INITIAL_WINDOW_SEGMENTS) * mss;
    this.fastConvergence = options.fastConvergence ?? true;
  }

  /** W_cubic(t), segments, `t` seconds into the current stage (RFC 9438 figure 1). */
  windowAt(t: number): number {
    return CUBIC_C * (t - this.k) ** 3 + (this.wMax ?? this.cwndEpoch);
  }

  onAck(sample: AckSample): void {
    const idleSince = this.idleSince;
    this.idleSince = sample.flightBytes === 0 ? sample.now : undefined;
    const mss = sample.mss;
    if (this.cwnd < this.ssthresh) {
      this.cwnd = slowStart(this.cwnd, sample.ackedBytes, this.ssthresh);
      return;
    }
    const cwnd = this.cwnd / mss;
    if (this.epochStart !== undefined && idleSince !== undefined) {
      // The last ACK emptied the pipe and the application paused: that time is not time on the
      // curve (RFC 9438 5.8, Linux's CA_EVENT_TX_START moves the epoch the same way), or the
      // window would leap after every pause. The data this ACK answers left about an SRTT ago.
      const idle = sample.now - (sample.srttMs ?? 0) - idleSince;
      if (idle > 0) this.epochStart += idle;
    }
    if (this.epochStart === undefined) this.beginEpoch(sample.now, cwnd);
    const t = (sample.now - this.epochStart!) / 1000;
    const rtt = (sample.srttMs ?? 0) / 1000;
    const segmentsAcked = sample.ackedBytes / mss;
    // The Reno-friendly estimate (4.3), alpha 1 once it has passed the window before the loss.
    const alpha = this.cwndPrior !== undefined && this.wEst >= this.cwndPrior ? 1 : CUBIC_ALPHA;
    this.wEst += (alpha * segmentsAcked) / cwnd;
    let next: number;
    if (this.windowAt(t) < this.wEst) {
      next = this.wEst;
    } else {
      // Concave or convex (4.4, 4.5): a step towards where the curve will be one RTT from now.
      const target = Math.min(Math.max(this.windowAt(t + rtt), cwnd), 1.5 * cwnd);
      next = cwnd + ((target - cwnd) / cwnd) * segmentsAcked;
    }
    this.cwnd = Math.max(this.cwnd, Math.floor(next * mss));
  }

  ssthreshAfterLoss(loss: LossSample): number {
    const cwnd = this.cwnd / loss.mss;
    this.beforeLoss = { wMax: this.wMax, cwndPrior: this.cwndPrior, epochStart: this.epochStart, cwndEpoch: this.cwndEpoch, k: this.k, wEst: this.wEst, afterTimeout: this.afterTimeout };
    if (loss.cause === 'timeout') {
      this.afterTimeout = true;
    } else {
      this.afterTimeout = false;
      // Fast convergence (4.7): a loss below the last W_max lowers the next one further.
      this.wMax = this.fastConvergence && this.wMax !== undefined && cwnd < this.wMax ? (cwnd * (1 + CUBIC_BETA)) / 2 : cwnd;
    }
    this.cwndPrior = cwnd;
    this.epochStart = undefined;
    // 4.6: beta of the flight size, never below two segments.
    return Math.max(Math.floor(loss.flightBytes * CUBIC_BETA), 2 * loss.mss);
  }

  onStateChange(state: CongestionState): void {
    // Linux (bictcp_state) forgets the curve on a timeout; a new stage begins with the next ACK.
    if (state === 'loss') this.epochStart = undefined;
  }

  /**
   * The loss was spurious (the connection proved every retransmission unneeded): the curve goes
   * back to where it stood, W_max and the stage's start included, as if the loss had not been
   * seen. (Linux's CUBIC only gets its window back, cwnd = max(cwnd, the window before); keeping
   * the curve too spares a flow whose losses were all reordering the slow climb back to W_max.)
   */
  undo(): void {
    const b = this.beforeLoss;
    if (!b) return;
    this.beforeLoss = undefined;
    this.wMax = b.wMax;
    this.cwndPrior = b.cwndPrior;
    this.epochStart = b.epochStart;
    this.cwndEpoch = b.cwndEpoch;
    this.k = b.k;
    this.wEst = b.wEst;
    this.afterTimeout = b.afterTimeout;
  }

  private beginEpoch(now: number, cwnd: number): void {
    this.epochStart = now;
    this.cwndEpoch = cwnd;
    this.wEst = cwnd;
    if (this.afterTimeout || this.wMax === undefined) {
      // 4.8: the first stage after a timeout (or before any loss) has W_max = cwnd_epoch, K = 0.
      this.wMax = cwnd;
      this.k = 0;
      this.afterTimeout = false;
    } else {
      // Figure 2. When W_max < cwnd_epoch, K is negative and the curve starts in its convex part.
      this.k = Math.cbrt((this.wMax - cwnd) / CUBIC_C);
    }
  }
}
