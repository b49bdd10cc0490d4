/**
 * The retransmission timeout (RFC 6298), with Linux's bounds: RTO = SRTT + max(G, 4 * RTTVAR),
 * never below 200 ms (TCP_RTO_MIN) nor above 120 s (TCP_RTO_MAX); 1 s before the first
 * measurement (RFC 6298 2.1). Each timeout doubles it (exponential backoff, 5.5) until a new
 * measurement arrives.
 *
 * Karn's rule (RFC 6298 3): a segment that was retransmitted gives no sample, because its ACK
 * may belong to either transmission. The connection enforces it by only sampling segments sent
 * once (or, with timestamps, from the echoed TSval, which names the transmission it answers).
 */
export interface RtoLimits {
  /** Lower bound, ms (Linux TCP_RTO_MIN 200). */
  minMs: number;
  /** Upper bound, ms (Linux TCP_RTO_MAX 120 s). */
  maxMs: number;
  /** Before any measurement, ms (RFC 6298: 1 s). */
  initialMs: number;
}

export const DEFAULT_RTO_LIMITS: RtoLimits = { minMs: 200, maxMs: 120_000, initialMs: 1000 };

/** Clock granularity G of RFC 6298, ms. */
const GRANULARITY_MS = 1;

export class RtoEstimator {
  /** Smoothed round-trip time, ms (undefined before the first sample). */
  srtt: number | undefined;
  /** Round-trip time variation, ms. */
  rttvar = 0;
  /** Times the current RTO has been doubled since the last sample. */
  backoff = 0;
  /** Measurements taken, and the last one, ms (for the connection's event log). */
  samples = 0;
  latest: number | undefined;
  private base: number;

  constructor(readonly limits: RtoLimits = DEFAULT_RTO_LIMITS) {
    this.base = limits.initialMs;
  }

  /** The timeout to arm now, ms: the base RTO doubled `backoff` times, within the bounds. */
  get rto(): number {
    return Math.min(this.limits.maxMs, this.base * 2 ** this.backoff);
  }

  /** One round-trip measurement, ms (RFC 6298 2.2 and 2.3, alpha 1/8, beta 1/4). */
  sample(rttMs: number): void {
    const r = Math.max(0, rttMs);
    this.samples++;
    this.latest = r;
    if (this.srtt === undefined) {
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    this.base = Math.min(this.limits.maxMs, Math.max(this.limits.minMs, this.srtt + Math.max(GRANULARITY_MS, 4 * this.rttvar)));
    this.backoff = 0;
  }

  /** The timer fired: back off (RFC 6298 5.5). */
  timedOut(): void {
    if (this.rto < this.limits.maxMs) this.backoff++;
  }
}
