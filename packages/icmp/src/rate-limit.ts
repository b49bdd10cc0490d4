/**
 * ICMP error rate limits, as Linux applies them (net/ipv4/icmp.c), in two stages:
 *
 *  1. A host-wide token bucket (net.ipv4.icmp_msgs_per_sec = 1000, icmp_msgs_burst = 50).
 *  2. A bucket per destination of the error, i.e. per peer that caused it
 *     (net.ipv4.icmp_ratelimit = 1000 ms): a peer gets a burst of up to 6 errors
 *     (XRLIM_BURST_FACTOR), then one per `icmpRatelimit` ms.
 *
 * Both only apply to the types set in `icmpRatemask` (default 6168: destination unreachable,
 * source quench, time exceeded, parameter problem), never to "fragmentation needed" (path MTU
 * discovery must not be slowed down). Since Linux 6.11 the global bucket is only looked at first,
 * and charged after the per-peer check passed, so errors a peer's own bucket refuses do not use
 * up the allowance of everybody else. Echo replies never go through either (RFC 1812 4.3.2.8
 * limits error messages; limiting replies breaks `ping -f`).
 */
import type { Clock, Ipv4Address } from '@tapstack/link';

export interface RateLimit {
  /** Tokens added per second (default 1000, Linux's icmp_msgs_per_sec). */
  perSecond: number;
  /** Bucket size: how many can go out back to back (default 50, Linux's icmp_msgs_burst). */
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
    if (!this.available()) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whether a token is there (refilling first), without taking it. */
  available(): boolean {
    const now = this.clock.now();
    const elapsed = now - this.last;
    this.last = now;
    if (elapsed > 0) this.tokens = Math.min(this.limit.burst, this.tokens + (elapsed * this.limit.perSecond) / 1000);
    return this.tokens >= 1;
  }

  /** Takes the token `available()` said was there. */
  consume(): void {
    this.tokens = Math.max(0, this.tokens - 1);
  }
}

/** Linux's XRLIM_BURST_FACTOR: a peer's bucket holds this many intervals' worth of tokens. */
export const PEER_BURST_FACTOR = 6;

/** Linux's default icmp_ratemask: types 3, 4, 11 and 12 (1 << type for each). */
export const DEFAULT_ICMP_RATEMASK = (1 << 3) | (1 << 4) | (1 << 11) | (1 << 12);

export interface PeerRateLimit {
  /** Milliseconds per error to one peer after its burst (Linux's icmp_ratelimit, default 1000; 0: no limit). */
  icmpRatelimit: number;
  /** How many peers are remembered at most; past that the least recently limited one is forgotten (default 4096). */
  maxPeers: number;
}

export const DEFAULT_PEER_RATE_LIMIT: Readonly<PeerRateLimit> = { icmpRatelimit: 1000, maxPeers: 4096 };

interface PeerBucket {
  /** Milliseconds of allowance, at most PEER_BURST_FACTOR * icmpRatelimit. */
  tokens: number;
  last: number;
}

/**
 * One token bucket per peer (Linux keeps it in the peer's inet_peer entry): the allowance is
 * counted in milliseconds, grows with time up to PEER_BURST_FACTOR intervals, and each error
 * costs one interval. A peer seen for the first time starts full (Linux backdates a new entry by
 * a minute), so it gets the whole burst.
 *
 * The peers are whoever sends us datagrams that deserve errors, source addresses an attacker
 * chooses freely, so the table is bounded: when full, the least recently used peer is forgotten
 * (it would start with a full burst again, as it does on Linux once inet_peer's GC dropped it;
 * the host-wide bucket still bounds the total). The peer is an IPv4 address by default; ICMPv6
 * keys its peers by the IPv6 address's text.
 */
export class PeerRateLimiter<Peer = Ipv4Address> {
  private readonly peers = new Map<Peer, PeerBucket>();
  /** Peers forgotten to make room. */
  evicted = 0;

  constructor(
    private readonly clock: Clock,
    readonly limit: Readonly<PeerRateLimit> = DEFAULT_PEER_RATE_LIMIT,
  ) {
    if (!(limit.icmpRatelimit >= 0) || !Number.isInteger(limit.maxPeers) || limit.maxPeers < 1) {
      throw new RangeError('peer rate limit needs icmpRatelimit >= 0 and maxPeers >= 1');
    }
  }

  /** How many peers are remembered now. */
  get size(): number {
    return this.peers.size;
  }

  /** Whether an error to `peer` may go out now; if so, it is charged to the peer. */
  allow(peer: Peer): boolean {
    const interval = this.limit.icmpRatelimit;
    const now = this.clock.now();
    const cap = PEER_BURST_FACTOR * interval;
    let bucket = this.peers.get(peer);
    if (bucket === undefined) {
      if (this.peers.size >= this.limit.maxPeers) {
        // Map iteration is in insertion order, and every use re-inserts: the first is the stalest.
        const stalest = this.peers.keys().next().value as Peer;
        this.peers.delete(stalest);
        this.evicted++;
      }
      bucket = { tokens: cap, last: now };
    } else {
      this.peers.delete(peer);
      bucket.tokens = Math.min(cap, bucket.tokens + Math.max(0, now - bucket.last));
      bucket.last = now;
    }
    this.peers.set(peer, bucket);
    if (bucket.tokens < interval) return false;
    bucket.tokens -= interval;
    return true;
  }

  clear(): void {
    this.peers.clear();
  }
}
