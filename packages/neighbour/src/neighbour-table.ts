/**
 * The neighbour table (Linux's neigh_table for ARP, the "ARP cache"): one entry per next hop,
 * each running the Linux NUD (neighbour unreachability detection) state machine on the injected
 * clock.
 *
 *   NONE -> INCOMPLETE   first packet to an unknown neighbour: broadcast requests, queue packets
 *   INCOMPLETE -> REACHABLE   a reply came; the queue is flushed in order
 *   INCOMPLETE -> FAILED      mcast_solicit requests, retrans_time apart, went unanswered
 *   REACHABLE -> STALE        reachable_time passed without confirmation (still usable)
 *   STALE -> DELAY            a packet was sent through the stale entry
 *   DELAY -> REACHABLE        confirmed (a reply, or an upper layer) within delay_first_probe_time
 *   DELAY -> PROBE            not confirmed: unicast solicitations to the known MAC
 *   PROBE -> REACHABLE | FAILED
 *   PERMANENT                 static, never expires, never evicted
 *   NOARP                     broadcast and multicast next hops: the MAC is computed, not asked
 *
 * The table does not know the wire: it asks its hooks to send solicitations and frames, and
 * reports failures. `Arp` (@tapstack/arp) supplies the hooks for IPv4 and `Ndp` (@tapstack/ndp)
 * for IPv6, each with a table of its own (Linux's arp_tbl and nd_tbl). That split keeps every
 * transition testable with a VirtualClock and nothing else.
 */
import { Counter, Counters, formatIpv4, type Clock, type FrameOffload, type Ipv4Address, type MacAddress, type Timer } from '@tapstack/link';
import debugFactory from 'debug';
import { match } from 'ts-pattern';

/** What happened to a frame handed to the table to send (`output`). */
export type ResolveOutcome =
  /** The neighbour's link-layer address was known (REACHABLE/STALE/DELAY/PROBE/PERMANENT/NOARP): sent now. */
  | 'sent'
  /** Waiting in the entry's queue while it is INCOMPLETE; sent when the answer comes. */
  | 'queued'
  /** Could not be sent or queued (table full and nothing evictable, link refused it): counted. */
  | 'dropped';

/**
 * What differs between the users of the table (Linux's neigh_table has one per protocol: arp_tbl,
 * nd_tbl): how a protocol address is keyed in a Map and printed. Soliciting, sending and
 * validating are the user's hooks.
 */
export interface NeighbourFamily<A> {
  /** A Map key for an address (the address itself for a number). */
  key(address: A): unknown;
  /** The address as `ip neigh` prints it. */
  format(address: A): string;
}

/** IPv4 addresses (32-bit numbers), as ARP uses the table. */
export const IPV4_NEIGHBOUR_FAMILY: NeighbourFamily<Ipv4Address> = { key: (a) => a, format: formatIpv4 };

const arpLog = debugFactory('tapstack:arp');

export type NeighbourState =
  | 'NONE'
  | 'INCOMPLETE'
  | 'REACHABLE'
  | 'STALE'
  | 'DELAY'
  | 'PROBE'
  | 'FAILED'
  | 'PERMANENT'
  | 'NOARP';

/** Tunables, named after /proc/sys/net/ipv4/neigh/<dev>/* in camelCase. Defaults are Linux's. */
export interface NeighbourParams {
  /** base_reachable_time: how long a confirmation lasts; each use is randomised 0.5x-1.5x. */
  baseReachableTimeMs: number;
  /** delay_first_probe_time: how long a used STALE entry waits in DELAY before probing. */
  delayFirstProbeTimeMs: number;
  /** retrans_time: the interval between requests for one neighbour. */
  retransTimeMs: number;
  /** ucast_solicit: unicast solicitations in PROBE before FAILED. */
  ucastSolicit: number;
  /** mcast_solicit: broadcast requests in INCOMPLETE before FAILED. */
  mcastSolicit: number;
  /** unres_qlen: packets queued per INCOMPLETE entry; the oldest is dropped when full. */
  unresQlen: number;
  /** unres_qlen_bytes: the same bound in bytes. */
  unresQlenBytes: number;
  /** gc_thresh1: below this many entries the periodic GC leaves the table alone. */
  gcThresh1: number;
  /** gc_thresh2: above this, creating an entry runs forced GC (at most every 5 s). */
  gcThresh2: number;
  /** gc_thresh3: the hard limit; creating an entry at it runs forced GC, and fails if nothing goes. */
  gcThresh3: number;
  /** gc_stale_time: unused this long, an entry may be removed by the periodic GC. */
  gcStaleTimeMs: number;
  /** gc_interval: how often the periodic GC runs. */
  gcIntervalMs: number;
  /** locktime: a different MAC in a reply is ignored this soon after the last update. */
  locktimeMs: number;
}

export const DEFAULT_NEIGHBOUR_PARAMS: Readonly<NeighbourParams> = Object.freeze({
  baseReachableTimeMs: 30_000,
  delayFirstProbeTimeMs: 5_000,
  retransTimeMs: 1_000,
  ucastSolicit: 3,
  mcastSolicit: 3,
  unresQlen: 101,
  unresQlenBytes: 212_992,
  gcThresh1: 128,
  gcThresh2: 512,
  gcThresh3: 1024,
  gcStaleTimeMs: 60_000,
  gcIntervalMs: 30_000,
  locktimeMs: 1_000,
});

/** Linux re-randomises reachable_time this often (neigh_periodic_work). */
const REACHABLE_TIME_RERANDOMISE_MS = 300_000;
/** Forced GC runs above gc_thresh2 at most this often, and spares entries updated this recently. */
const FORCED_GC_MIN_INTERVAL_MS = 5_000;

/**
 * Counters like /proc/net/stat/arp_cache (Linux names), plus where queued packets went.
 * `entries` is a gauge and is printed by formatStats, not counted here.
 */
export const NEIGHBOUR_STATS = [
  'allocs',
  'destroys',
  'lookups',
  'hits',
  'res_failed',
  'rcv_probes_mcast',
  'rcv_probes_ucast',
  'periodic_gc_runs',
  'forced_gc_runs',
  'unresolved_discards',
  'table_fulls',
  'queue_failed_discards',
  'queue_removed_discards',
  // a super-frame (FrameOffload) for an entry that was not usable: not queued, see enqueue
  'unresolved_offload_discards',
] as const;
export type NeighbourStatName = (typeof NEIGHBOUR_STATS)[number];

/** A read-only snapshot of one entry. Times are clock milliseconds. */
export interface NeighbourEntry<A = Ipv4Address> {
  readonly ip: A;
  readonly mac: MacAddress | undefined;
  readonly state: NeighbourState;
  /** Packets waiting for resolution. */
  readonly queued: number;
  /** Solicitations sent in the current INCOMPLETE/PROBE round. */
  readonly probes: number;
  readonly confirmedAt: number;
  readonly updatedAt: number;
  readonly usedAt: number;
}

/** How the table reaches the wire. Arp supplies these. */
export interface NeighbourHooks<A = Ipv4Address> {
  /**
   * Send an ARP request for `ip`: broadcast when `unicastTo` is undefined, else to that MAC.
   * `waiting` is the oldest packet queued for it, if any (its source address is a good sender IP).
   */
  solicit(ip: A, unicastTo: MacAddress | undefined, waiting: Uint8Array | undefined): void;
  /** Put a whole frame on the wire to `mac` (fills the MACs), with its offload if any. False if the link refused it. */
  sendTo(frame: Uint8Array, mac: MacAddress, offload?: FrameOffload): boolean;
  /** Resolution of `ip` failed; `frames` were waiting and are dropped. */
  failed(ip: A, frames: readonly Uint8Array[]): void;
  /** The computed MAC for next hops that need no ARP (broadcast, multicast); undefined: resolve. */
  noArpMac(ip: A): MacAddress | undefined;
}

export interface NeighbourTableOptions<A = Ipv4Address> {
  clock: Clock;
  params?: Partial<NeighbourParams>;
  /** For the reachable-time randomisation; defaults to Math.random. */
  random?: () => number;
  /** Device name printed by show() (`dev tap0`). */
  device?: string;
  hooks?: Partial<NeighbourHooks<A>>;
  /** The protocol's addresses (default IPv4, as ARP's table). */
  family?: NeighbourFamily<A>;
  /**
   * The table's name in counters and logs, as /proc/net/stat names Linux's: `arp_cache` (the
   * default, ARP's) or `ndisc_cache` (NDP's).
   */
  name?: string;
}

/** How a received ARP packet may change an entry (see Linux neigh_update). */
export interface NeighbourUpdate {
  /** REACHABLE for a reply sent to us; STALE for anything else we learn from. */
  state: 'REACHABLE' | 'STALE';
  /**
   * When a different MAC may replace the known one: 'always' (a request for our address, a
   * gratuitous ARP, a neighbour advertisement with the Override flag), 'after_locktime' (other
   * ARP packets: not within locktime of the last update, so when two replies race, the first one
   * wins), or 'weak' (a neighbour advertisement without the Override flag, RFC 4861 7.2.5 and
   * Linux's NEIGH_UPDATE_F_WEAK_OVERRIDE: a different MAC is not taken while the entry has one,
   * and a REACHABLE entry becomes STALE, so that the doubt is checked by probing).
   */
  override: 'always' | 'after_locktime' | 'weak';
  /** Create the entry if it does not exist (requests for our address; arp_accept). */
  create: boolean;
}

export type NeighbourUpdateResult =
  | 'created'
  | 'updated'
  | 'not_found'
  | 'ignored_locked'
  /** A different MAC without override ('weak'): not taken (a REACHABLE entry became STALE). */
  | 'ignored_weak'
  | 'ignored_static'
  | 'table_full';

class Neighbour<A> {
  mac: MacAddress | undefined = undefined;
  state: NeighbourState = 'NONE';
  queue: Uint8Array[] = [];
  queueBytes = 0;
  probes = 0;
  timer: Timer | undefined = undefined;
  lastSolicitAt = Number.NEGATIVE_INFINITY;

  constructor(
    readonly ip: A,
    public confirmedAt: number,
    public updatedAt: number,
    public usedAt: number,
  ) {}

  /** An entry is referenced while packets wait on it: GC must not take it. */
  get referenced(): boolean {
    return this.queue.length > 0;
  }
}

/** States in which the entry holds a MAC that may be used to send. */
function hasUsableMac(state: NeighbourState): boolean {
  return match(state)
    .with('REACHABLE', 'STALE', 'DELAY', 'PROBE', 'PERMANENT', 'NOARP', () => true)
    .with('NONE', 'INCOMPLETE', 'FAILED', () => false)
    .exhaustive();
}

const noop = (): void => {};

export class NeighbourTable<A = Ipv4Address> {
  /** Frozen; replaced whole by setTimes (a router advertisement's timers). */
  params: Readonly<NeighbourParams>;
  readonly stats: Counters<NeighbourStatName>;
  /** The `table_fulls` stat (Arp tells a full table from a refusing link by it). */
  readonly tableFulls: Counter;
  // Counted on every frame sent: the cells themselves, no lookup by name.
  private readonly lookups: Counter;
  private readonly hits: Counter;
  readonly device: string;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly hooks: NeighbourHooks<A>;
  private readonly neighbours = new Map<unknown, Neighbour<A>>();
  /** How the protocol's addresses are keyed and printed (IPv4 for ARP). */
  private readonly family: NeighbourFamily<A>;
  private permanentCount = 0;
  private reachableMs: number;
  private reachableChosenAt: number;
  private lastForcedGcAt = Number.NEGATIVE_INFINITY;
  private gcTimer: Timer | undefined;
  private closed = false;
  private readonly log: debugFactory.Debugger;

  constructor(options: NeighbourTableOptions<A>) {
    const name = options.name ?? 'arp_cache';
    this.stats = new Counters<NeighbourStatName>(name, NEIGHBOUR_STATS);
    this.tableFulls = this.stats.counter('table_fulls');
    this.lookups = this.stats.counter('lookups');
    this.hits = this.stats.counter('hits');
    // ARP's table logs as tapstack:arp (as it always has); NDP's as tapstack:ndisc_cache.
    this.log = name === 'arp_cache' ? arpLog : debugFactory(`tapstack:${name}`);
    this.clock = options.clock;
    // Without a family the addresses are IPv4's (the default type parameter).
    this.family = options.family ?? (IPV4_NEIGHBOUR_FAMILY as unknown as NeighbourFamily<A>);
    this.params = Object.freeze({ ...DEFAULT_NEIGHBOUR_PARAMS, ...options.params });
    validateParams(this.params);
    this.random = options.random ?? Math.random;
    this.device = options.device ?? 'tap0';
    this.hooks = {
      solicit: options.hooks?.solicit ?? noop,
      sendTo: options.hooks?.sendTo ?? (() => false),
      failed: options.hooks?.failed ?? noop,
      noArpMac: options.hooks?.noArpMac ?? (() => undefined),
    };
    this.reachableMs = this.randomReachableTime();
    this.reachableChosenAt = this.clock.now();
  }

  /** The current reachable_time: base_reachable_time times a random factor in [0.5, 1.5). */
  get reachableTimeMs(): number {
    return this.reachableMs;
  }

  /**
   * New base_reachable_time / retrans_time, as an IPv6 router advertisement gives them (RFC 4861
   * 6.3.4; Linux ndisc_router_discovery writes the same two neigh_parms). A changed base reachable
   * time picks a new random ReachableTime at once, as the RFC asks. Entries already timing keep
   * their timers; the next state change uses the new values.
   */
  setTimes(times: { baseReachableTimeMs?: number; retransTimeMs?: number }): void {
    const next = { ...this.params, ...times };
    validateParams(next);
    const baseChanged = next.baseReachableTimeMs !== this.params.baseReachableTimeMs;
    this.params = Object.freeze(next);
    if (baseChanged) {
      this.reachableMs = this.randomReachableTime();
      this.reachableChosenAt = this.clock.now();
    }
  }

  /** Entries, PERMANENT ones included. */
  get size(): number {
    return this.neighbours.size;
  }

  lookup(ip: A): NeighbourEntry<A> | undefined {
    const n = this.neighbours.get(this.family.key(ip));
    return n && snapshot(n);
  }

  entries(): NeighbourEntry<A>[] {
    return [...this.neighbours.values()].map(snapshot);
  }

  // ---------------------------------------------------------------- output (the resolve path)

  /**
   * Sends `frame` to the neighbour `ip`, or queues it while the neighbour is resolved
   * (Linux neigh_event_send + neigh_resolve_output).
   */
  output(ip: A, frame: Uint8Array, offload?: FrameOffload): ResolveOutcome {
    this.lookups.value++;
    let n = this.neighbours.get(this.family.key(ip));
    if (n) this.hits.value++;
    else {
      n = this.create(ip);
      if (!n) return 'dropped';
    }
    // The time of this run of frames, not of this one: reading the real clock per frame costs as
    // much as IPv4's input checks, and a neighbour's last use only matters to within seconds.
    n.usedAt = this.clock.coarseNow ? this.clock.coarseNow() : this.clock.now();
    // The hot path (a usable entry) without ts-pattern's per-call allocations.
    const s = n.state;
    if (s === 'REACHABLE' || s === 'DELAY' || s === 'PROBE' || s === 'PERMANENT' || s === 'NOARP') {
      return this.sendToNeighbour(n, frame, offload);
    }
    return this.sendOrQueue(n, frame, offload);
  }

  private sendOrQueue(n: Neighbour<A>, frame: Uint8Array, offload: FrameOffload | undefined): ResolveOutcome {
    return match(n.state)
      .with('REACHABLE', 'DELAY', 'PROBE', 'PERMANENT', 'NOARP', () => this.sendToNeighbour(n, frame, offload))
      .with('STALE', () => {
        // Used while stale: give the neighbour delay_first_probe_time to be confirmed by traffic.
        this.enter(n, 'DELAY', this.params.delayFirstProbeTimeMs);
        return this.sendToNeighbour(n, frame, offload);
      })
      .with('INCOMPLETE', () => this.enqueue(n, frame, offload))
      .with('NONE', 'FAILED', () => {
        const outcome = this.enqueue(n, frame, offload);
        this.startResolution(n);
        return outcome;
      })
      .exhaustive();
  }

  private sendToNeighbour(n: Neighbour<A>, frame: Uint8Array, offload: FrameOffload | undefined): ResolveOutcome {
    return this.hooks.sendTo(frame, n.mac!, offload) ? 'sent' : 'dropped';
  }

  private enqueue(n: Neighbour<A>, frame: Uint8Array, offload: FrameOffload | undefined): ResolveOutcome {
    if (offload) {
      // The queue holds plain frames. A super-frame (or a frame with a partial checksum) only
      // comes from an established TCP connection, whose neighbour is almost always usable; when
      // it is not, the segment is dropped like any lost one, and TCP sends it again.
      this.stats.inc('unresolved_offload_discards');
      return 'dropped';
    }
    // A view into a larger buffer (a TAP read hands up a whole batch of frames in one buffer, and
    // the echo responder answers in the request's frame) would keep all of it alive while it
    // waits, uncounted by unres_qlen_bytes: queue a copy of the frame's own bytes instead.
    if (frame.byteLength !== frame.buffer.byteLength) frame = new Uint8Array(frame);
    n.queue.push(frame);
    n.queueBytes += frame.length;
    // Bounded: drop the oldest (Linux does the same), never the one just handed to us.
    while (n.queue.length > 1 && (n.queue.length > this.params.unresQlen || n.queueBytes > this.params.unresQlenBytes)) {
      const old = n.queue.shift()!;
      n.queueBytes -= old.length;
      this.stats.inc('unresolved_discards');
    }
    return 'queued';
  }

  /** NONE/FAILED -> INCOMPLETE. The first request goes now unless one went out less than retrans_time ago. */
  private startResolution(n: Neighbour<A>): void {
    const now = this.clock.now();
    this.cancelTimer(n);
    n.state = 'INCOMPLETE';
    n.updatedAt = now;
    n.mac = undefined;
    n.probes = 0;
    const earliest = n.lastSolicitAt + this.params.retransTimeMs;
    if (now >= earliest) {
      this.solicit(n, undefined);
      this.arm(n, this.params.retransTimeMs);
    } else {
      // rate limit per destination: the timer sends the first request when it is allowed
      this.arm(n, earliest - now);
    }
  }

  private solicit(n: Neighbour<A>, unicastTo: MacAddress | undefined): void {
    n.probes++;
    n.lastSolicitAt = this.clock.now();
    this.hooks.solicit(n.ip, unicastTo, n.queue[0]);
  }

  // ---------------------------------------------------------------- timers (neigh_timer_handler)

  private arm(n: Neighbour<A>, delayMs: number): void {
    this.cancelTimer(n);
    n.timer = this.clock.setTimer(delayMs, () => {
      n.timer = undefined;
      this.onTimer(n);
    });
  }

  private cancelTimer(n: Neighbour<A>): void {
    n.timer?.cancel();
    n.timer = undefined;
  }

  private onTimer(n: Neighbour<A>): void {
    if (this.neighbours.get(this.family.key(n.ip)) !== n) return; // removed meanwhile
    const now = this.clock.now();
    const p = this.params;
    match(n.state)
      .with('REACHABLE', () => {
        const reachable = this.currentReachableTime(now);
        if (now < n.confirmedAt + reachable) {
          this.arm(n, n.confirmedAt + reachable - now);
        } else if (now < n.usedAt + p.delayFirstProbeTimeMs) {
          this.enter(n, 'DELAY', p.delayFirstProbeTimeMs);
        } else {
          this.enter(n, 'STALE', undefined);
        }
      })
      .with('DELAY', () => {
        if (now < n.confirmedAt + p.delayFirstProbeTimeMs) {
          // confirmed while we waited (a reply, or arp.confirm from an upper layer)
          this.enter(n, 'REACHABLE', this.currentReachableTime(now) - (now - n.confirmedAt));
        } else {
          this.enter(n, 'PROBE', undefined);
          this.solicit(n, n.mac);
          this.arm(n, p.retransTimeMs);
        }
      })
      .with('PROBE', () => {
        if (n.probes >= p.ucastSolicit) this.fail(n);
        else {
          this.solicit(n, n.mac);
          this.arm(n, p.retransTimeMs);
        }
      })
      .with('INCOMPLETE', () => {
        if (n.probes >= p.mcastSolicit) this.fail(n);
        else {
          this.solicit(n, undefined);
          this.arm(n, p.retransTimeMs);
        }
      })
      .with('NONE', 'STALE', 'FAILED', 'PERMANENT', 'NOARP', () => {
        /* no timer runs in these states */
      })
      .exhaustive();
  }

  /** Changes state, resets the probe count and (re)arms the timer when `timerMs` is given. */
  private enter(n: Neighbour<A>, state: NeighbourState, timerMs: number | undefined): void {
    if (this.log.enabled && n.state !== state) this.log('neigh %s %s -> %s', this.family.format(n.ip), n.state, state);
    this.cancelTimer(n);
    n.state = state;
    n.updatedAt = this.clock.now();
    n.probes = 0;
    if (timerMs !== undefined) this.arm(n, Math.max(0, timerMs));
  }

  private fail(n: Neighbour<A>): void {
    if (this.log.enabled) this.log('neigh %s %s -> FAILED (%d queued dropped)', this.family.format(n.ip), n.state, n.queue.length);
    this.cancelTimer(n);
    n.state = 'FAILED';
    n.mac = undefined;
    n.updatedAt = this.clock.now();
    this.stats.inc('res_failed');
    const dropped = n.queue;
    n.queue = [];
    n.queueBytes = 0;
    this.stats.inc('queue_failed_discards', dropped.length);
    this.hooks.failed(n.ip, dropped);
  }

  private currentReachableTime(now: number): number {
    if (now - this.reachableChosenAt >= REACHABLE_TIME_RERANDOMISE_MS) {
      this.reachableMs = this.randomReachableTime();
      this.reachableChosenAt = now;
    }
    return this.reachableMs;
  }

  private randomReachableTime(): number {
    const r = this.random();
    const factor = 0.5 + (r >= 0 && r < 1 ? r : 0.5);
    return Math.round(this.params.baseReachableTimeMs * factor);
  }

  // ---------------------------------------------------------------- input (neigh_update)

  /**
   * What ARP learned about `ip` from a received packet (Linux neigh_update): a solicited reply
   * makes the entry REACHABLE, anything else STALE; a different MAC replaces the known one only
   * with `override`; the same MAC never downgrades a REACHABLE entry; PERMANENT and NOARP entries
   * do not change. When the entry becomes usable, the packets waiting on it go out in order.
   */
  update(ip: A, mac: MacAddress, how: NeighbourUpdate): NeighbourUpdateResult {
    let n = this.neighbours.get(this.family.key(ip));
    let result: NeighbourUpdateResult = 'updated';
    if (!n) {
      if (!how.create) return 'not_found';
      n = this.create(ip);
      if (!n) return 'table_full';
      result = 'created';
    }
    const old = n.state;
    if (old === 'PERMANENT' || old === 'NOARP') return 'ignored_static';
    const now = this.clock.now();
    const oldUsable = hasUsableMac(old) && n.mac !== undefined;
    const sameMac = oldUsable && n.mac!.equals(mac);
    if (oldUsable && !sameMac && how.override === 'after_locktime' && now < n.updatedAt + this.params.locktimeMs) {
      return 'ignored_locked';
    }
    if (oldUsable && !sameMac && how.override === 'weak') {
      // RFC 4861 7.2.5: an advertisement without Override does not replace a known address; it
      // only makes a REACHABLE entry STALE (neigh_update's NEIGH_UPDATE_F_WEAK_OVERRIDE).
      if (old === 'REACHABLE') this.enter(n, 'STALE', undefined);
      return 'ignored_weak';
    }

    let state: NeighbourState = how.state;
    if (sameMac && state === 'STALE') state = old; // a stale hint about the same MAC changes nothing
    if (state === 'REACHABLE') n.confirmedAt = now;
    if (!sameMac) {
      n.mac = mac;
      n.updatedAt = now;
      // a MAC we have not confirmed yet must be verified soon (Linux: confirmed = now - 2 * base)
      if (state !== 'REACHABLE') n.confirmedAt = now - 2 * this.params.baseReachableTimeMs;
    }
    if (state !== old) {
      this.enter(n, state, state === 'REACHABLE' ? this.currentReachableTime(now) : undefined);
    }
    if (!oldUsable && n.queue.length > 0) this.flush(n);
    return result;
  }

  /** Sends everything that waited on `n`, oldest first. */
  private flush(n: Neighbour<A>): void {
    const frames = n.queue;
    n.queue = [];
    n.queueBytes = 0;
    for (const f of frames) this.sendOrQueue(n, f, undefined);
  }

  /** An upper layer saw progress (e.g. a TCP ACK): the neighbour is reachable (neigh_confirm). */
  confirm(ip: A): boolean {
    const n = this.neighbours.get(this.family.key(ip));
    if (!n || !hasUsableMac(n.state)) return false;
    n.confirmedAt = this.clock.now();
    return true;
  }

  /** Counts a received request for one of our addresses (rcv_probes_mcast / rcv_probes_ucast). */
  countReceivedSolicitation(unicast: boolean): void {
    this.stats.inc(unicast ? 'rcv_probes_ucast' : 'rcv_probes_mcast');
  }

  // ---------------------------------------------------------------- static entries

  /** Adds or replaces a PERMANENT entry (`ip neigh replace IP lladdr MAC nud permanent`). */
  addStatic(ip: A, mac: MacAddress): void {
    let n = this.neighbours.get(this.family.key(ip));
    if (!n) {
      const now = this.clock.now();
      n = new Neighbour<A>(ip, now, now, now);
      this.neighbours.set(this.family.key(ip), n);
      this.stats.inc('allocs');
      this.ensureGcTimer();
    }
    if (n.state !== 'PERMANENT') this.permanentCount++;
    this.enter(n, 'PERMANENT', undefined);
    n.mac = mac;
    if (n.queue.length > 0) this.flush(n);
  }

  /** Removes an entry of any kind (`ip neigh del`). Packets waiting on it are dropped and counted. */
  remove(ip: A): boolean {
    const n = this.neighbours.get(this.family.key(ip));
    if (!n) return false;
    this.stats.inc('queue_removed_discards', n.queue.length);
    this.destroy(n);
    return true;
  }

  // ---------------------------------------------------------------- allocation and GC

  /** neigh_alloc: makes room by forced GC when needed; undefined (counted) when the table is full. */
  private create(ip: A): Neighbour<A> | undefined {
    const now = this.clock.now();
    const p = this.params;
    const dynamic = this.neighbours.size - this.permanentCount;
    if (dynamic >= p.gcThresh3 || (dynamic >= p.gcThresh2 && now - this.lastForcedGcAt > FORCED_GC_MIN_INTERVAL_MS)) {
      const shrunk = this.forcedGc(now);
      if (!shrunk && this.neighbours.size - this.permanentCount >= p.gcThresh3) {
        this.tableFulls.value++;
        if (this.log.enabled) this.log('neighbour table full: no entry for %s', this.family.format(ip));
        return undefined;
      }
    }
    const n = new Neighbour<A>(ip, now - 2 * p.baseReachableTimeMs, now, now);
    const noArp = this.hooks.noArpMac(ip);
    if (noArp) {
      n.state = 'NOARP';
      n.mac = noArp;
    }
    this.neighbours.set(this.family.key(ip), n);
    this.stats.inc('allocs');
    this.ensureGcTimer();
    return n;
  }

  private destroy(n: Neighbour<A>): void {
    this.cancelTimer(n);
    if (n.state === 'PERMANENT') this.permanentCount--;
    n.queue = [];
    n.queueBytes = 0;
    this.neighbours.delete(this.family.key(n.ip));
    this.stats.inc('destroys');
  }

  /**
   * neigh_forced_gc: shrink the dynamic entries to gc_thresh2. Unreferenced FAILED and NOARP
   * entries go first, then STALE ones, then any other unreferenced entry not updated in the last
   * 5 s; oldest first within each group. PERMANENT entries and entries with packets waiting stay.
   */
  private forcedGc(now: number): boolean {
    this.stats.inc('forced_gc_runs');
    this.lastForcedGcAt = now;
    const maxClean = this.neighbours.size - this.permanentCount - this.params.gcThresh2;
    if (maxClean <= 0) return false;
    const candidates: { n: Neighbour<A>; rank: number }[] = [];
    for (const n of this.neighbours.values()) {
      if (n.state === 'PERMANENT' || n.referenced) continue;
      const rank = match(n.state)
        .with('FAILED', 'NOARP', () => 0)
        .with('STALE', () => 1)
        .with('NONE', 'INCOMPLETE', 'REACHABLE', 'DELAY', 'PROBE', () =>
          now - n.updatedAt > FORCED_GC_MIN_INTERVAL_MS ? 2 : -1,
        )
        .exhaustive();
      if (rank >= 0) candidates.push({ n, rank });
    }
    candidates.sort((a, b) => a.rank - b.rank || a.n.updatedAt - b.n.updatedAt);
    const victims = candidates.slice(0, maxClean);
    for (const { n } of victims) this.destroy(n);
    if (this.log.enabled) this.log('forced gc: removed %d entries, %d left', victims.length, this.neighbours.size);
    return victims.length > 0;
  }

  private ensureGcTimer(): void {
    if (this.gcTimer || this.closed) return;
    this.gcTimer = this.clock.setTimer(this.params.gcIntervalMs, () => {
      this.gcTimer = undefined;
      this.periodicGc();
      if (this.neighbours.size > 0) this.ensureGcTimer();
    });
  }

  /**
   * neigh_periodic_work: when the table holds more than gc_thresh1 entries, remove unreferenced
   * entries that are FAILED or have not been used for gc_stale_time. Entries with a running
   * timer (INCOMPLETE, REACHABLE, DELAY, PROBE) and PERMANENT ones are left alone.
   */
  periodicGc(): void {
    const now = this.clock.now();
    this.stats.inc('periodic_gc_runs');
    this.currentReachableTime(now);
    if (this.neighbours.size - this.permanentCount <= this.params.gcThresh1) return;
    for (const n of [...this.neighbours.values()]) {
      const eligible = match(n.state)
        .with('FAILED', () => true)
        .with('STALE', 'NOARP', 'NONE', () => now - n.usedAt > this.params.gcStaleTimeMs)
        .with('PERMANENT', 'INCOMPLETE', 'REACHABLE', 'DELAY', 'PROBE', () => false)
        .exhaustive();
      if (eligible && !n.referenced) this.destroy(n);
    }
  }

  // ---------------------------------------------------------------- printing

  /** Like `ip neigh show`: `10.0.0.1 dev tap0 lladdr 02:00:00:00:0a:01 REACHABLE`, one per line. */
  show(options: { statistics?: boolean } = {}): string {
    const lines: string[] = [];
    const now = this.clock.now();
    const ago = (t: number): number => (Number.isFinite(t) ? Math.max(0, Math.floor((now - t) / 1000)) : 0);
    for (const n of this.neighbours.values()) {
      const lladdr = n.mac && hasUsableMac(n.state) ? ` lladdr ${n.mac}` : '';
      // ip -s neigh: seconds since the entry was last used / confirmed / updated, and the probes sent
      const stats = options.statistics ? ` used ${ago(n.usedAt)}/${ago(n.confirmedAt)}/${ago(n.updatedAt)} probes ${n.probes}` : '';
      lines.push(`${this.family.format(n.ip)} dev ${this.device}${lladdr}${stats} ${n.state}`);
    }
    return lines.join('\n');
  }

  /** Like /proc/net/stat/arp_cache, but with decimal numbers and aligned columns. */
  formatStats(): string {
    const names = ['entries', ...NEIGHBOUR_STATS];
    const values = [this.neighbours.size, ...NEIGHBOUR_STATS.map((s) => this.stats.get(s))];
    const widths = names.map((name, i) => Math.max(name.length, String(values[i]).length));
    return [
      names.map((name, i) => name.padStart(widths[i]!)).join(' '),
      values.map((v, i) => String(v).padStart(widths[i]!)).join(' '),
    ].join('\n');
  }

  /** Cancels every timer. Entries stay readable. */
  close(): void {
    this.closed = true;
    this.gcTimer?.cancel();
    this.gcTimer = undefined;
    for (const n of this.neighbours.values()) this.cancelTimer(n);
  }
}

function snapshot<A>(n: Neighbour<A>): NeighbourEntry<A> {
  return {
    ip: n.ip,
    mac: n.mac,
    state: n.state,
    queued: n.queue.length,
    probes: n.probes,
    confirmedAt: n.confirmedAt,
    updatedAt: n.updatedAt,
    usedAt: n.usedAt,
  };
}

function validateParams(p: NeighbourParams): void {
  for (const [k, v] of Object.entries(p)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new RangeError(`neighbour parameter ${k}=${String(v)} must be a finite number >= 0`);
    }
  }
  if (p.unresQlen < 1) throw new RangeError('unresQlen must be at least 1');
  if (!(p.gcThresh1 <= p.gcThresh2 && p.gcThresh2 <= p.gcThresh3)) {
    throw new RangeError(`gc thresholds must satisfy gcThresh1 <= gcThresh2 <= gcThresh3 (got ${p.gcThresh1}/${p.gcThresh2}/${p.gcThresh3})`);
  }
  if (p.mcastSolicit < 1) throw new RangeError('mcastSolicit must be at least 1');
}
