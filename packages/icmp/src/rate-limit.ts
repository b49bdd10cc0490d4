/**
 * A token bucket on the injected clock, for ICMP errors. Linux's defaults
 * (net.ipv4.icmp_msgs_per_sec = 1000, icmp_msgs_burst = 50): the bucket holds at most `burst`
 * tokens, refills at `perSecond`, and every error takes one. Echo replies never go through it
 * (RFC 1812 4.3.2.8 limits error messages; rate-limiting replies breaks `ping -f`).
 */
import type { Clock } from '@tapstack/link';

export interface RateLimit {
  /** Tokens added per second (default 1000). */
  perSecond: number;
  /** Bucket size: how many can go out back to back (default 50). */
  burst: number;
}

export const DEFAULT_ERROR_RATE_LIMIT: Readonly<RateLimit> = { perSecond: 1000, burst: 50 };

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly clock: Clock,
    readonly limit: Readonly<RateLimit> = DEFAULT_ERROR_RATE_LIMIT,
  ) {
    if (!(limit.perSecond > 0) || !(limit.burst >= 1)) throw new RangeError('rate limit needs perSecond > 0 and burst >= 1');
    this.tokens = limit.burst;
    this.last = clock.now();
  }

  /** Takes a token if there is one. */
  take(): boolean {
    const now = this.clock.now();
    const elapsed = now - this.last;
    this.last = now;
    if (elapsed > 0) this.tokens = Math.min(this.limit.burst, this.tokens + (elapsed * this.limit.perSecond) / 1000);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
