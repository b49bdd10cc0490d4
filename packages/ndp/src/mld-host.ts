/**
 * The host's part of MLDv2 (RFC 3810 6 and 7): telling the routers (and the switches that snoop
 * on MLD) which groups we listen to. Two kinds of report:
 *
 *  - unsolicited, when we join a group (6.1): a State Change report, CHANGE_TO_EXCLUDE_MODE with
 *    no sources ("every source"), sent [Robustness Variable] times, a random part of a second
 *    apart; when we leave one, the same with CHANGE_TO_INCLUDE_MODE and no sources ("none");
 *  - solicited, when a querier asks (6.2, 6.3): a Current State report after a random delay up to
 *    the query's Maximum Response Delay, so that the listeners of a big link do not all answer at
 *    the same instant. A General Query (group ::) asks about every group we are in; a
 *    Multicast Address Specific Query about one; a Multicast Address and Source Specific Query
 *    about some sources of one. At most one answer waits per query kind and group: a new query
 *    folds into the pending answer (earliest time wins, RFC 3810 6.2 rules 1-5), so a query flood
 *    cannot grow the timers beyond one per group we joined plus one.
 *
 * All our groups are any-source (EXCLUDE with an empty list), so the records are MODE_IS_EXCLUDE
 * with no sources, and for a source-specific query MODE_IS_INCLUDE with exactly the sources asked
 * about (6.3's table: EXCLUDE(X) answers IS_IN(A - X), and X is empty).
 *
 * An MLDv1 querier (a 24-byte query, RFC 2710) cannot read version 2 reports, so while one has been
 * heard within the Older Version Querier Present Timeout, we answer and announce with MLDv1
 * reports, one group per message, to the group itself, and a Done to ff02::2 on leaving (RFC 3810
 * 8.2.1, RFC 2710 4).
 *
 * Never reported: ff02::1 (every node is in it, RFC 3810 6) and groups of scope 0 or 1.
 */
import debugFactory from 'debug';
import { Ipv6Address, type Clock, type Counters } from '@tapstack/link';
import { routerAlertHopByHop, type Ipv6Layer, type Ipv6Packet } from '@tapstack/ipv6';
import {
  Icmpv6Packet,
  MldQueryRepr,
  MldRecordType,
  MldReportRepr,
  MldV1ReportRepr,
  mldMaxResponseDelayMs,
  validateMld,
  type MldAddressRecord,
} from '@tapstack/icmpv6';
import type { NdpCounterName } from './ndp.ts';

const log = debugFactory('tapstack:mld');

/** RFC 3810 9: Robustness Variable, Query Interval (s), Query Response Interval (ms), Unsolicited Report Interval (ms). */
export const MLD_DEFAULTS = {
  robustness: 2,
  queryIntervalMs: 125_000,
  queryResponseIntervalMs: 10_000,
  unsolicitedReportIntervalMs: 1000,
} as const;
/** RFC 3810 9.12: how long an MLDv1 querier keeps us in compatibility mode after its last query. */
export const OLDER_VERSION_QUERIER_PRESENT_TIMEOUT_MS = MLD_DEFAULTS.robustness * MLD_DEFAULTS.queryIntervalMs + MLD_DEFAULTS.queryResponseIntervalMs;

/** IPv6 header, hop-by-hop header with the router alert, report header: what a report carries before its records. */
const REPORT_OVERHEAD = 40 + 8 + 8;
const RECORD_LENGTH = 20;
const HOP_BY_HOP = 0;
/**
 * Sources remembered for one pending source-specific answer. Beyond this (a query flood, or one
 * huge reassembled query) the answer becomes one about the whole group, which is also true:
 * we want every source.
 */
export const MAX_QUERIED_SOURCES = 64;

export interface MldHostOptions {
  ipv6: Ipv6Layer;
  clock: Clock;
  random: () => number;
  counters: Counters<NdpCounterName>;
  /** false: the unsolicited reports go at once and 1 s apart (tests). */
  delays: boolean;
}

interface PendingAnswer {
  /** Clock ms when it is due. */
  at: number;
  timer: { cancel(): void };
  /** For a group: undefined when the whole group was asked about, else the sources asked about. */
  sources: Map<string, Ipv6Address> | undefined;
}

export class MldHost {
  private readonly ipv6: Ipv6Layer;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly counters: Counters<NdpCounterName>;
  private readonly delays: boolean;
  private general: PendingAnswer | undefined;
  /** Pending answers to address-specific queries, by group key; only for groups we are in. */
  private readonly byGroup = new Map<string, PendingAnswer & { group: Ipv6Address }>();
  private readonly timers = new Set<{ cancel(): void }>();
  /** Clock ms until which an MLDv1 querier is taken to be present (RFC 3810 8.2.1). */
  private v1QuerierUntil = Number.NEGATIVE_INFINITY;
  private closed = false;

  constructor(options: MldHostOptions) {
    this.ipv6 = options.ipv6;
    this.clock = options.clock;
    this.random = options.random;
    this.counters = options.counters;
    this.delays = options.delays;
  }

  /** True while an MLDv1 querier was heard recently: reports go out as MLDv1. */
  get v1Compatibility(): boolean {
    return this.clock.now() < this.v1QuerierUntil;
  }

  /** Pending answers to queries (general and per group): for tests and `show`. */
  get pendingAnswers(): number {
    return (this.general ? 1 : 0) + this.byGroup.size;
  }

  /**
   * The State Change report for a group just joined (RFC 3810 6.1), [Robustness Variable] times,
   * each after a random part of the Unsolicited Report Interval.
   */
  joined(group: Ipv6Address): void {
    if (!reportable(group) || this.closed) return;
    let sent = 0;
    const send = (): void => {
      if (this.closed || !this.ipv6.addresses.isMember(group)) return;
      sent++;
      if (this.v1Compatibility) this.sendV1Report(group);
      else this.sendReport(MldReportRepr.join([group]).records);
      if (sent < MLD_DEFAULTS.robustness) this.later(MLD_DEFAULTS.unsolicitedReportIntervalMs * (this.delays ? this.random() : 1), send);
    };
    this.later(this.delays ? this.random() * MLD_DEFAULTS.unsolicitedReportIntervalMs : 0, send);
  }

  /**
   * The State Change report for a group just left (RFC 3810 6.1): CHANGE_TO_INCLUDE_MODE with no
   * sources, at once and then [Robustness Variable] - 1 more times; a pending answer about the group
   * is dropped. Joined again meanwhile, the retransmissions stop (the join's report says it).
   */
  left(group: Ipv6Address): void {
    if (!reportable(group) || this.closed) return;
    const pending = this.byGroup.get(group.key);
    if (pending) {
      pending.timer.cancel();
      this.byGroup.delete(group.key);
    }
    let sent = 0;
    const send = (): void => {
      if (this.closed || this.ipv6.addresses.isMember(group)) return;
      sent++;
      if (this.v1Compatibility) this.sendV1Done(group);
      else this.sendReport(MldReportRepr.leave([group]).records);
      if (sent < MLD_DEFAULTS.robustness) this.later(MLD_DEFAULTS.unsolicitedReportIntervalMs * (this.delays ? this.random() : 1), send);
    };
    send();
  }

  /** A query from the ICMPv6 layer (`message` is the ICMPv6 message, `packet` the IPv6 packet it came in). */
  query(packet: Ipv6Packet, message: Uint8Array, routerAlert: number | undefined): void {
    if (this.closed) return;
    const c = this.counters;
    const checked = Icmpv6Packet.check(message);
    if (!checked.ok) return c.inc('rx_mld_invalid');
    // RFC 3810 5.1.14 (and 7.4 for what a host accepts): hop limit 1, the router alert, a
    // link-local source, code 0, a good checksum. Linux's host code does not look for the router
    // alert; the RFC says such a query is dropped, and so do we, counting it apart.
    const invalid = validateMld(checked.value, { source: packet.source, destination: packet.destination, hopLimit: packet.hopLimit, routerAlert });
    if (invalid !== undefined) {
      log('query from %s refused: %s', packet.source.toString(), invalid);
      return c.inc(invalid === 'no_router_alert' ? 'rx_mld_no_router_alert' : 'rx_mld_invalid');
    }
    // RFC 3810 8.1: the length tells the versions apart; 25-27 bytes is neither, and is ignored.
    const parsed = MldQueryRepr.parse(checked.value);
    if (!parsed.ok) return c.inc('rx_mld_invalid');
    const q = parsed.value;
    const group = q.multicastAddress;
    // A general query is sent to all-nodes; a specific one names a multicast group (RFC 3810 5.1.5, 5.1.15).
    if (!group.isUnspecified && !group.isMulticast) return c.inc('rx_mld_invalid');
    if (group.isUnspecified) c.inc('rx_mld_general_queries');
    else c.inc('rx_mld_specific_queries');
    if (q.version === 1) this.v1QuerierUntil = this.clock.now() + OLDER_VERSION_QUERIER_PRESENT_TIMEOUT_MS;
    // RFC 2710 3.4: an MLDv1 query's field is plain milliseconds; MLDv2's is a code above 32767 (RFC 3810 5.1.3).
    const maxDelay = q.version === 1 ? q.maxResponseCode : mldMaxResponseDelayMs(q.maxResponseCode);
    const delay = Math.floor(this.random() * maxDelay);
    const at = this.clock.now() + delay;
    // Rule 1: an answer to a general query already due sooner covers this query too.
    if (this.general && this.general.at <= at) return;
    if (group.isUnspecified) {
      // Rule 2: a general query gets the interface timer; an earlier pending one is replaced.
      this.general?.timer.cancel();
      this.general = { at, sources: undefined, timer: this.after(delay, () => this.answerGeneral()) };
      return;
    }
    // Rules 3-5: only about a group we are in; one pending answer per group.
    if (!reportable(group) || !this.ipv6.addresses.isMember(group)) return c.inc('rx_mld_query_not_member');
    const pending = this.byGroup.get(group.key);
    // MLDv1 has no source lists: a v1 query asks about the whole group.
    const sources = q.version === 2 && q.sources.length > 0 && q.sources.length <= MAX_QUERIED_SOURCES ? q.sources : undefined;
    if (!pending) {
      const answer = { group, at, sources: sources && sourceMap(sources), timer: this.after(delay, () => this.answerGroup(group.key)) };
      this.byGroup.set(group.key, answer);
      return;
    }
    // Rule 4: the whole group asked about (now or before): one answer about the whole group.
    // Rule 5: both source-specific: the source lists merge. The answer comes at the earlier time.
    if (sources === undefined || pending.sources === undefined) pending.sources = undefined;
    else {
      for (const s of sources) pending.sources.set(s.key, s);
      if (pending.sources.size > MAX_QUERIED_SOURCES) pending.sources = undefined;
    }
    if (at < pending.at) {
      pending.timer.cancel();
      pending.at = at;
      pending.timer = this.after(delay, () => this.answerGroup(group.key));
    }
  }

  /** RFC 3810 6.3: a Current State Record for every group we are in, as few reports as fit the MTU. */
  private answerGeneral(): void {
    this.general = undefined;
    const groups = this.ipv6.addresses.memberships().filter(reportable);
    if (groups.length === 0) return;
    if (this.v1Compatibility) {
      for (const g of groups) this.sendV1Report(g);
      return;
    }
    const perReport = Math.max(1, Math.floor((this.ipv6.mtu - REPORT_OVERHEAD) / RECORD_LENGTH));
    for (let i = 0; i < groups.length; i += perReport) {
      this.sendReport(groups.slice(i, i + perReport).map((g) => record(MldRecordType.MODE_IS_EXCLUDE, g, [])));
    }
  }

  private answerGroup(key: string): void {
    const pending = this.byGroup.get(key);
    if (!pending) return;
    this.byGroup.delete(key);
    const group = pending.group;
    // Left the group meanwhile: nothing to say (RFC 3810 6.3: no record for a group in INCLUDE {}).
    if (!this.ipv6.addresses.isMember(group)) return;
    if (this.v1Compatibility) return this.sendV1Report(group);
    const sources = pending.sources ? [...pending.sources.values()] : undefined;
    // Every source is wanted (EXCLUDE {}): a source-specific query gets exactly its sources back.
    this.sendReport([sources ? record(MldRecordType.MODE_IS_INCLUDE, group, sources) : record(MldRecordType.MODE_IS_EXCLUDE, group, [])]);
  }

  /** An MLDv2 report to ff02::16 behind the router alert, from our link-local address or :: (RFC 3810 5.2.13). */
  private sendReport(records: readonly MldAddressRecord[]): void {
    const source = this.ipv6.addresses.linkLocal() ?? Ipv6Address.UNSPECIFIED;
    const destination = Ipv6Address.ALL_MLDV2_ROUTERS;
    this.sendMld(source, destination, MldReportRepr.build({ records }, source, destination), 'tx_mld_reports');
  }

  /** An MLDv1 report (RFC 2710 3.7): to the group itself, and only from a link-local address (RFC 3590 does not allow ::). */
  private sendV1Report(group: Ipv6Address): void {
    const source = this.ipv6.addresses.linkLocal();
    if (!source) return this.counters.inc('tx_failed');
    this.sendMld(source, group, MldV1ReportRepr.build(group, source, group), 'tx_mld_v1_reports');
  }

  /** An MLDv1 Done (RFC 2710 3.8): to all-routers, from a link-local address. */
  private sendV1Done(group: Ipv6Address): void {
    const source = this.ipv6.addresses.linkLocal();
    if (!source) return this.counters.inc('tx_failed');
    this.sendMld(source, Ipv6Address.ALL_ROUTERS, MldV1ReportRepr.build(group, source, Ipv6Address.ALL_ROUTERS, true), 'tx_mld_v1_reports');
  }

  private sendMld(source: Ipv6Address, destination: Ipv6Address, message: Uint8Array, counter: NdpCounterName): void {
    const hopByHop = routerAlertHopByHop();
    const payload = new Uint8Array(hopByHop.length + message.length);
    payload.set(hopByHop);
    payload.set(message, hopByHop.length);
    // RFC 3810 5: hop limit 1, the router alert in a hop-by-hop header (which must come first).
    const outcome = this.ipv6.send({ destination, source, nextHeader: HOP_BY_HOP, hopLimit: 1, payload });
    this.counters.inc(outcome === 'sent' || outcome === 'queued' ? counter : 'tx_failed');
  }

  private after(delayMs: number, f: () => void): { cancel(): void } {
    const t = this.clock.setTimer(delayMs, () => {
      this.timers.delete(t);
      f();
    });
    this.timers.add(t);
    return t;
  }

  private later(delayMs: number, f: () => void): void {
    if (!this.closed) this.after(delayMs, f);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) t.cancel();
    this.timers.clear();
    this.byGroup.clear();
    this.general = undefined;
  }
}

/** RFC 3810 6: no reports about ff02::1, nor about scopes 0 (reserved) and 1 (interface-local). */
function reportable(group: Ipv6Address): boolean {
  const scope = group.multicastScope;
  return !group.equals(Ipv6Address.ALL_NODES) && scope !== undefined && scope > 1;
}

function record(type: number, multicastAddress: Ipv6Address, sources: readonly Ipv6Address[]): MldAddressRecord {
  return { type, multicastAddress, sources, auxData: NO_BYTES };
}

function sourceMap(sources: readonly Ipv6Address[]): Map<string, Ipv6Address> {
  return new Map(sources.map((s) => [s.key, s]));
}

const NO_BYTES = new Uint8Array(0);
