/**
 * Neighbour Discovery for one Ethernet link (RFC 4861), Duplicate Address Detection and SLAAC
 * (RFC 4862), and the MLDv2 listener for the groups we join (RFC 3810, mld-host.ts): IPv6's
 * successor of ARP, and the second user of the neighbour table (Linux's nd_tbl beside arp_tbl).
 *
 * What is shared with ARP is all of the neighbour table: the NUD states, timers, queue while
 * INCOMPLETE, GC, counters and `show()`. What is NDP's own:
 *  - how it asks: a Neighbour Solicitation to the target's solicited-node group (not a broadcast),
 *    unicast to the known MAC when probing (RFC 4861 7.2.2, 7.3.3);
 *  - how answers update the table: a Neighbour Advertisement's Solicited and Override flags
 *    decide, exactly as RFC 4861 7.2.5 says (and Linux's ndisc_recv_na feeds neigh_update);
 *  - how it proves addresses unique before using them (DAD, RFC 4862 5.4), where ARP has RFC 5227,
 *    with a nonce in each probe (RFC 7527) so that our own probe looped back is not a conflict;
 *  - routers: solicitations on start, advertisements giving default routers, on-link prefixes,
 *    SLAAC addresses (RFC 4861 6.3.4, RFC 4862 5.5.3), all bounded against floods, and the link's
 *    parameters (hop limit, MTU, the table's reachable time and retransmission timer);
 *  - redirects (RFC 4861 8): the router we use for a destination names a better first hop.
 *
 * Every message arrives through the ICMPv6 layer (types 133-137) and is checked against every
 * validity rule of RFC 4861 by @tapstack/icmpv6's validateNdisc (hop limit 255: proof that it was
 * not forwarded; code 0; checksum; lengths; options) before it reaches the state machines here.
 */
import debugFactory from 'debug';
import { match } from 'ts-pattern';
import {
  Counters,
  ETHERNET_HEADER_LENGTH,
  EtherType,
  Ipv6Address,
  MacAddress,
  readEtherType,
  writeEthernetAddresses,
  type Clock,
  type EtherTypeDispatcher,
  type FrameOffload,
} from '@tapstack/link';
import { NeighbourTable, type NeighbourFamily, type NeighbourParams, type NeighbourUpdate, type NeighbourUpdateResult, type ResolveOutcome } from '@tapstack/neighbour';
import { Ipv6Cidr, type Ipv6Layer, type Ipv6NeighbourResolver, type Ipv6Packet, type Ipv6AddressEvent } from '@tapstack/ipv6';
import { lifetimeMs, type NdpMessage, type PrefixInformation } from './messages.ts';
import { decodeNdp, encodeNdp } from './wire.ts';
import { MldHost } from './mld-host.ts';
import type { Icmpv6Layer, NdiscInvalidReason } from '@tapstack/icmpv6';

const log = debugFactory('tapstack:ndp');

export const NDP_COUNTERS = [
  'rx_messages',
  'rx_invalid',
  'rx_bad_hop_limit',
  'rx_own_mac',
  'rx_router_solicitations',
  'rx_router_advertisements',
  'rx_neighbour_solicitations',
  'rx_neighbour_advertisements',
  'rx_redirects',
  'redirects_applied',
  'rx_mld_general_queries',
  'rx_mld_specific_queries',
  'rx_mld_query_not_member',
  'rx_mld_invalid',
  'rx_mld_no_router_alert',
  'rx_ra_not_link_local',
  'rx_ns_dad_bad_destination',
  'rx_ns_not_for_us',
  'rx_ns_for_tentative',
  'rx_ns_dad_looped_back',
  'rx_na_multicast_solicited',
  'rx_na_for_our_address',
  'rx_na_no_entry',
  'rx_na_incomplete_no_lladdr',
  'rx_update_weak',
  'rx_update_locked',
  'rx_update_static',
  'rx_table_full',
  'ra_routers_full',
  'ra_prefixes_full',
  'ra_addresses_full',
  'ra_prefix_ignored',
  'ra_hop_limit_set',
  'ra_mtu_set',
  'ra_mtu_refused',
  'ra_reachable_time_set',
  'ra_retrans_timer_set',
  'ra_timer_refused',
  'tx_neighbour_solicitations',
  'tx_unicast_solicitations',
  'tx_neighbour_advertisements',
  'tx_dad_solicitations',
  'tx_router_solicitations',
  'tx_mld_reports',
  'tx_mld_v1_reports',
  'tx_failed',
  'dad_started',
  'dad_succeeded',
  'dad_conflicts',
  'slaac_addresses',
  'resolve_sent',
  'resolve_queued',
  'resolve_dropped',
  'resolve_failed_frames',
] as const;
export type NdpCounterName = (typeof NDP_COUNTERS)[number];

/**
 * IPv6 addresses in the table, printed as RFC 5952 text. The key is the sixteen bytes as eight
 * UTF-16 code units, not that text: every packet sent looks up its next hop, whose address object
 * is usually new, and formatting RFC 5952 text for it cost more than the rest of the lookup.
 */
export const IPV6_NEIGHBOUR_FAMILY: NeighbourFamily<Ipv6Address> = { key: wordsKey, format: (a) => a.toString() };

// The last address asked about and its key: the receive path hands out the same address object
// while a peer keeps talking (Ipv6Packet's recent addresses), so a reply's next hop is usually it.
let lastKeyed: Ipv6Address | undefined;
let lastKey = '';

function wordsKey(a: Ipv6Address): string {
  if (a === lastKeyed) return lastKey;
  const b = a.bytes;
  lastKeyed = a;
  return (lastKey = String.fromCharCode(
    (b[0]! << 8) | b[1]!,
    (b[2]! << 8) | b[3]!,
    (b[4]! << 8) | b[5]!,
    (b[6]! << 8) | b[7]!,
    (b[8]! << 8) | b[9]!,
    (b[10]! << 8) | b[11]!,
    (b[12]! << 8) | b[13]!,
    (b[14]! << 8) | b[15]!,
  ));
}

/** RFC 4861 10 and RFC 4862 5.1 constants (Linux's defaults agree). */
export const NDP_DEFAULTS = {
  /** MAX_RTR_SOLICITATIONS */
  routerSolicitations: 3,
  /** RTR_SOLICITATION_INTERVAL, ms */
  routerSolicitationIntervalMs: 4000,
  /** MAX_RTR_SOLICITATION_DELAY, ms: the first RS (and DAD NS) waits a random time up to this. */
  maxRouterSolicitationDelayMs: 1000,
  /** DupAddrDetectTransmits */
  dadTransmits: 1,
  /** RetransTimer, ms: the wait after the last DAD probe (until a router advertises another). */
  retransTimerMs: 1000,
  /** RFC 7527 2: bytes of nonce in a DAD probe (Linux sends 6, the option's smallest size). */
  dadNonceBytes: 6,
  /** MAX_REACHABLE_TIME (RFC 4861 10): a larger Reachable Time in an RA is refused. */
  maxReachableTimeMs: 3_600_000,
  /** Linux's floors for the RA timers (ndisc_router_discovery: HZ/10 and HZ/100). */
  minReachableTimeMs: 100,
  minRetransTimerMs: 10,
} as const;

export interface NdpOptions {
  dispatcher: EtherTypeDispatcher;
  ipv6: Ipv6Layer;
  /** NDP messages arrive through ICMPv6 (types 133-137): Ndp registers itself there. */
  icmpv6: Icmpv6Layer;
  clock: Clock;
  random?: () => number;
  neighbour?: Partial<NeighbourParams>;
  /** Run DAD before using an address (default true; false makes addresses preferred at once). */
  dad?: boolean;
  /** Solicit routers when started (default true). */
  routerSolicitation?: boolean;
  /** Form addresses from advertised prefixes (default true). */
  slaac?: boolean;
  /** Send MLDv2 reports for groups joined (default true). */
  mld?: boolean;
  /** Jitter before the first DAD probe, RS and MLD report (default true; false sends at once, for tests). */
  delays?: boolean;
}

/** A DAD conflict: another host has (or also wants) one of our addresses. */
export interface DadConflict {
  readonly address: Ipv6Address;
  /** The MAC that said so, when the message carried one. */
  readonly by: MacAddress | undefined;
  readonly how: 'neighbour-advertisement' | 'dad-solicitation';
}

interface DadRun {
  probesSent: number;
  timer: { cancel(): void } | undefined;
  /** RFC 7527: the nonce our probes carry; a probe with it is ours, looped back. */
  nonce: Uint8Array;
}

const HOP_LIMIT_ND = 255;
/** ICMPv6 types (RFC 4443, RFC 4861). */
const ICMPV6 = 58;
/** Two hours (RFC 4862 5.5.3 e): a valid lifetime shorter than this from an RA is not believed at once. */
const TWO_HOURS_MS = 2 * 3600_000;

export class Ndp implements Ipv6NeighbourResolver {
  readonly counters = new Counters<NdpCounterName>('ndp', NDP_COUNTERS);
  readonly table: NeighbourTable<Ipv6Address>;
  /** Invalid messages by the RFC 4861 rule they broke (`ndp_invalid.bad_hop_limit`, ...). */
  readonly invalid = new Counters<NdiscInvalidReason>('ndp_invalid');
  /** MLDv2: reports on joining, answers to queries. */
  readonly mld: MldHost;
  private readonly dispatcher: EtherTypeDispatcher;
  private readonly ipv6: Ipv6Layer;
  private readonly icmpv6: Icmpv6Layer;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly mac: MacAddress;
  private readonly options: Required<Omit<NdpOptions, 'dispatcher' | 'ipv6' | 'icmpv6' | 'clock' | 'random' | 'neighbour'>>;
  private readonly failedListeners: ((nextHop: Ipv6Address, frames: readonly Uint8Array[]) => void)[] = [];
  private readonly conflictListeners: ((c: DadConflict) => void)[] = [];
  private readonly dad = new Map<string, DadRun>();
  private readonly timers = new Set<{ cancel(): void }>();
  private routerSolicitationStarted = false;
  private routerAdvertised = false;
  private started = false;
  private closed = false;

  constructor(options: NdpOptions) {
    this.dispatcher = options.dispatcher;
    this.ipv6 = options.ipv6;
    this.clock = options.clock;
    this.random = options.random ?? Math.random;
    this.mac = options.dispatcher.link.mac;
    this.options = {
      dad: options.dad ?? true,
      routerSolicitation: options.routerSolicitation ?? true,
      slaac: options.slaac ?? true,
      mld: options.mld ?? true,
      delays: options.delays ?? true,
    };
    this.table = new NeighbourTable<Ipv6Address>({
      clock: options.clock,
      params: options.neighbour ?? {},
      random: this.random,
      device: options.dispatcher.link.name,
      family: IPV6_NEIGHBOUR_FAMILY,
      name: 'ndisc_cache',
      hooks: {
        solicit: (target, unicastTo, waiting) => this.sendSolicitation(target, unicastTo, waiting),
        sendTo: (frame, mac, offload) => this.sendTo(frame, mac, offload),
        failed: (target, frames) => this.resolutionFailed(target, frames),
        // Multicast next hops need no asking: the MAC is 33:33 and the group's last 32 bits (RFC 2464 7).
        noArpMac: (a) => (a.isMulticast ? a.multicastMac() : undefined),
      },
    });
    this.ipv6.setResolver(this);
    this.icmpv6 = options.icmpv6;
    this.mld = new MldHost({ ipv6: this.ipv6, clock: this.clock, random: this.random, counters: this.counters, delays: this.options.delays });
    // RFC 4861 8.1: a redirect must come from the router we use now for its destination.
    const firstHopRouterFor = (destination: Ipv6Address): Ipv6Address | undefined => {
      const route = this.ipv6.routes.lookup(destination);
      return route.kind === 'router' ? route.nextHop : undefined;
    };
    this.icmpv6.setNdpHandler((packet, bytes, linkSource) => {
      const decoded = decodeNdp(packet, bytes, firstHopRouterFor);
      if (!decoded.ok) {
        // RFC 4861 6.1, 7.1: an invalid message is silently discarded; here, counted by the rule it broke.
        this.counters.inc('rx_messages');
        this.counters.inc(decoded.reason === 'bad_hop_limit' ? 'rx_bad_hop_limit' : 'rx_invalid');
        this.invalid.inc(decoded.reason);
        return;
      }
      this.input(packet, decoded.value, linkSource);
    });
    this.ipv6.addresses.onChange((e) => this.addressChanged(e));
    this.ipv6.addresses.onGroupChange((e) => {
      if (e.kind === 'joined' && this.started) this.reportGroup(e.group);
      if (e.kind === 'left' && this.started && this.options.mld && !this.closed) this.mld.left(e.group);
    });
    if (this.options.mld) this.icmpv6.setMldQueryHandler((packet, message, routerAlert) => this.mld.query(packet, message, routerAlert));
  }

  // ================================================================ start: link-local, DAD, RS

  /**
   * Brings IPv6 up on the link (Linux addrconf_dev_config): the link-local address from the MAC,
   * tentative, through DAD, and the addresses added before start through DAD too; MLD reports
   * for the groups joined; router solicitations once the link-local address is usable.
   */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    const addresses = this.ipv6.addresses;
    for (const group of addresses.memberships()) this.reportGroup(group);
    for (const a of addresses.list()) if (a.state === 'tentative') this.startDad(a.address);
    const linkLocal = Ipv6Address.linkLocalFromMac(this.mac);
    if (!addresses.get(linkLocal)) addresses.add(new Ipv6Cidr(linkLocal, 64), 'link-local', { tentative: this.options.dad });
    if (!this.options.dad) this.startRouterSolicitation();
  }

  /** Adds a static address (`--ip6`): tentative, through DAD once started. */
  addAddress(cidr: Ipv6Cidr): void {
    this.ipv6.addresses.add(cidr, 'static', { tentative: this.options.dad });
  }

  /**
   * Resolves once no address is tentative any more (every DAD run ended, either way): what
   * `tapstack up` waits for before it says it is up, so the addresses it prints answer at once.
   */
  settled(): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.closed || this.dad.size === 0) resolve();
        else this.later(50, check);
      };
      check();
    });
  }

  onConflict(listener: (c: DadConflict) => void): void {
    this.conflictListeners.push(listener);
  }

  private addressChanged(e: Ipv6AddressEvent): void {
    if (e.kind === 'added' && e.address.state === 'tentative' && this.started) this.startDad(e.address.address);
    if (e.kind === 'removed') this.stopDad(e.address.address);
    if (e.kind === 'state' && e.address.state === 'preferred' && e.from === 'tentative' && e.address.address.isLinkLocal) {
      this.startRouterSolicitation();
    }
  }

  /**
   * RFC 4862 5.4.2: DupAddrDetectTransmits solicitations from :: to the address's solicited-node
   * group (joined already, by Ipv6Addresses.add), RetransTimer apart; after the last one and one
   * more RetransTimer with no conflict, the address is ours. The first waits a random delay up to
   * MAX_RTR_SOLICITATION_DELAY, so hosts started together do not probe at the same instant.
   */
  private startDad(address: Ipv6Address): void {
    if (this.dad.has(address.key)) return;
    if (!this.options.dad) {
      this.ipv6.addresses.confirm(address);
      return;
    }
    this.counters.inc('dad_started');
    const nonce = new Uint8Array(NDP_DEFAULTS.dadNonceBytes);
    for (let i = 0; i < nonce.length; i++) nonce[i] = Math.floor(this.random() * 256) & 0xff;
    const run: DadRun = { probesSent: 0, timer: undefined, nonce };
    this.dad.set(address.key, run);
    const probe = (): void => {
      run.timer = undefined;
      if (this.dad.get(address.key) !== run) return;
      if (run.probesSent >= NDP_DEFAULTS.dadTransmits) {
        this.dad.delete(address.key);
        this.counters.inc('dad_succeeded');
        log('DAD for %s: no conflict, address is ours', address.toString());
        this.ipv6.addresses.confirm(address);
        return;
      }
      run.probesSent++;
      this.sendNdp(address.solicitedNode(), Ipv6Address.UNSPECIFIED, { kind: 'neighbour-solicitation', target: address, sourceLinkLayer: undefined, nonce: run.nonce });
      this.counters.inc('tx_dad_solicitations');
      // RetransTimer: the table's, which a router advertisement may have set (RFC 4862 5.4).
      run.timer = this.clock.setTimer(this.table.params.retransTimeMs, probe);
    };
    run.timer = this.clock.setTimer(this.jitter(), probe);
  }

  private stopDad(address: Ipv6Address): void {
    const run = this.dad.get(address.key);
    if (!run) return;
    run.timer?.cancel();
    this.dad.delete(address.key);
  }

  /** RFC 4862 5.4.5: the address is someone else's: never used, logged, the listeners told. */
  private dadFailed(address: Ipv6Address, by: MacAddress | undefined, how: DadConflict['how']): void {
    this.stopDad(address);
    this.counters.inc('dad_conflicts');
    this.ipv6.addresses.markDuplicate(address);
    const who = by ? ` (${by.toString()})` : '';
    log('DAD for %s failed: %s from another host%s; the address is not used', address.toString(), how, who);
    for (const l of this.conflictListeners) {
      try {
        l({ address, by, how });
      } catch (err) {
        log('conflict listener threw: %O', err);
      }
    }
  }

  /**
   * RFC 4861 6.3.7: up to MAX_RTR_SOLICITATIONS router solicitations to all-routers,
   * RTR_SOLICITATION_INTERVAL apart, the first after a random delay; an advertisement ends them.
   */
  private startRouterSolicitation(): void {
    if (!this.options.routerSolicitation || this.routerSolicitationStarted || this.closed) return;
    this.routerSolicitationStarted = true;
    let sent = 0;
    const send = (): void => {
      if (this.closed || this.routerAdvertised || sent >= NDP_DEFAULTS.routerSolicitations) return;
      sent++;
      const source = this.ipv6.addresses.linkLocal() ?? Ipv6Address.UNSPECIFIED;
      // A source link-layer option only from a real address (RFC 4861 4.1).
      this.sendNdp(Ipv6Address.ALL_ROUTERS, source, { kind: 'router-solicitation', sourceLinkLayer: source.isUnspecified ? undefined : this.mac });
      this.counters.inc('tx_router_solicitations');
      this.later(NDP_DEFAULTS.routerSolicitationIntervalMs, send);
    };
    this.later(this.jitter(), send);
  }

  /** MLDv2 State Change reports for a newly joined group (RFC 3810 6.1; mld-host.ts). */
  private reportGroup(group: Ipv6Address): void {
    if (this.options.mld && !this.closed) this.mld.joined(group);
  }

  // ================================================================ resolver

  resolve(nextHop: Ipv6Address, frame: Uint8Array, offload?: FrameOffload): ResolveOutcome {
    if (this.closed || frame.length < ETHERNET_HEADER_LENGTH) {
      this.counters.inc('resolve_dropped');
      return 'dropped';
    }
    // a super-frame (TSO6) keeps its offload through the table, as ARP's do
    const outcome = offload ? this.table.output(nextHop, frame, offload) : this.table.output(nextHop, frame);
    this.counters.inc(outcome === 'sent' ? 'resolve_sent' : outcome === 'queued' ? 'resolve_queued' : 'resolve_dropped');
    return outcome;
  }

  onResolutionFailed(listener: (nextHop: Ipv6Address, frames: readonly Uint8Array[]) => void): void {
    this.failedListeners.push(listener);
  }

  /** An upper layer saw forward progress to `address` (neigh_confirm). */
  confirm(address: Ipv6Address): boolean {
    return this.table.confirm(address);
  }

  private sendTo(frame: Uint8Array, destination: MacAddress, offload?: FrameOffload): boolean {
    writeEthernetAddresses(frame, destination, this.mac);
    if (offload ? this.dispatcher.send(frame, offload) : this.dispatcher.send(frame)) return true;
    this.counters.inc('tx_failed');
    return false;
  }

  private resolutionFailed(target: Ipv6Address, frames: readonly Uint8Array[]): void {
    this.counters.inc('resolve_failed_frames', frames.length);
    log('resolution of %s failed, %d queued packets dropped', target.toString(), frames.length);
    for (const l of this.failedListeners) {
      try {
        l(target, frames);
      } catch (err) {
        log('resolution-failed listener threw: %O', err);
      }
    }
  }

  /**
   * A solicitation for `target` (Linux ndisc_solicit): to its solicited-node group while
   * INCOMPLETE, to its MAC when probing. The source is the waiting packet's when that is ours
   * (RFC 4861 7.2.2), so the neighbour learns the address it will answer, else the best one.
   */
  private sendSolicitation(target: Ipv6Address, unicastTo: MacAddress | undefined, waiting: Uint8Array | undefined): void {
    let source: Ipv6Address | undefined;
    if (waiting && waiting.length >= ETHERNET_HEADER_LENGTH + 40 && readEtherType(waiting) === EtherType.IPV6) {
      const s = Ipv6Address.fromBytes(waiting, ETHERNET_HEADER_LENGTH + 8);
      if (this.ipv6.addresses.isAssigned(s)) source = s;
    }
    source ??= this.ipv6.addresses.selectSource(target);
    if (!source) {
      this.counters.inc('tx_failed');
      return;
    }
    const destination = unicastTo ? target : target.solicitedNode();
    this.sendNdp(destination, source, { kind: 'neighbour-solicitation', target, sourceLinkLayer: this.mac });
    this.counters.inc(unicastTo ? 'tx_unicast_solicitations' : 'tx_neighbour_solicitations');
  }

  /** Any NDP message: hop limit 255 (RFC 4861 7.1), built with its checksum by @tapstack/icmpv6. */
  private sendNdp(destination: Ipv6Address, source: Ipv6Address, message: NdpMessage): boolean {
    const outcome = this.ipv6.send({ destination, source, nextHeader: ICMPV6, hopLimit: HOP_LIMIT_ND, payload: encodeNdp(message, source, destination) });
    if (outcome === 'sent' || outcome === 'queued') return true;
    this.counters.inc('tx_failed');
    return false;
  }

  // ================================================================ receive

  /**
   * One NDP message from the ICMPv6 layer. `packet` is the IPv6 packet it came in (for the
   * addresses and the hop limit), `linkSource` the Ethernet source MAC.
   */
  input(packet: Ipv6Packet, message: NdpMessage, linkSource: MacAddress | undefined): void {
    if (this.closed) return;
    this.counters.inc('rx_messages');
    // RFC 4861 7.1.1, 7.1.2, 6.1.1, 6.1.2: a hop limit below 255 means it crossed a router: not from this link.
    if (packet.hopLimit !== HOP_LIMIT_ND) return this.counters.inc('rx_bad_hop_limit');
    if (linkSource?.equals(this.mac)) return this.counters.inc('rx_own_mac');
    const source = packet.source;
    const destination = packet.destination;
    match(message)
      .with({ kind: 'neighbour-solicitation' }, (m) => this.onSolicitation(source, destination, m))
      .with({ kind: 'neighbour-advertisement' }, (m) => this.onAdvertisement(destination, m, linkSource))
      .with({ kind: 'router-advertisement' }, (m) => this.onRouterAdvertisement(source, m))
      .with({ kind: 'router-solicitation' }, () => {
        this.counters.inc('rx_router_solicitations'); // a host is not a router: RFC 4861 6.2.6 is not ours
      })
      .with({ kind: 'redirect' }, (m) => this.onRedirect(m))
      .exhaustive();
  }

  /** RFC 4861 7.2.3 and 7.2.4; RFC 4862 5.4.3 for solicitations about a tentative address. */
  private onSolicitation(source: Ipv6Address, destination: Ipv6Address, m: Extract<NdpMessage, { kind: 'neighbour-solicitation' }>): void {
    this.counters.inc('rx_neighbour_solicitations');
    const addresses = this.ipv6.addresses;
    const target = m.target;
    const fromDad = source.isUnspecified;
    // RFC 4861 7.1.1: from ::, the destination is a solicited-node group and no source link-layer option.
    if (fromDad && (!destination.equals(target.solicitedNode()) || m.sourceLinkLayer !== undefined)) {
      return this.counters.inc('rx_ns_dad_bad_destination');
    }
    if (addresses.isTentative(target)) {
      // RFC 7527 4.2: our own probe, looped back to us (a reflecting switch, a bridge that echoes):
      // its nonce is the one we sent, so it proves nothing about other hosts.
      const run = this.dad.get(target.key);
      if (fromDad && run && m.nonce && equalBytes(m.nonce, run.nonce)) return this.counters.inc('rx_ns_dad_looped_back');
      // RFC 4862 5.4.3: another host probing for the address we probe for: neither may have it.
      // From a unicast source it is address resolution, which a tentative address ignores.
      if (fromDad) this.dadFailed(target, undefined, 'dad-solicitation');
      else this.counters.inc('rx_ns_for_tentative');
      return;
    }
    if (!addresses.isAssigned(target)) return this.counters.inc('rx_ns_not_for_us');
    this.table.countReceivedSolicitation(!destination.isMulticast);
    if (fromDad) {
      // RFC 4861 7.2.4: a DAD probe for our address is answered to all-nodes, not solicited.
      this.sendAdvertisement(Ipv6Address.ALL_NODES, target, false);
      return;
    }
    // RFC 4861 7.2.3: the sender's link-layer address goes in the table (created STALE, or STALE
    // when it changed), and the answer goes to it unicast, solicited, with our MAC and Override.
    if (m.sourceLinkLayer) this.learn(source, m.sourceLinkLayer, { state: 'STALE', override: 'always', create: true });
    this.sendAdvertisement(source, target, true);
  }

  private sendAdvertisement(destination: Ipv6Address, target: Ipv6Address, solicited: boolean): void {
    const sent = this.sendNdp(destination, target, { kind: 'neighbour-advertisement', router: false, solicited, override: true, target, targetLinkLayer: this.mac });
    if (sent) this.counters.inc('tx_neighbour_advertisements');
  }

  /** RFC 4861 7.2.5 (Linux ndisc_recv_na); RFC 4862 5.4.4 for an advertisement of a tentative address. */
  private onAdvertisement(destination: Ipv6Address, m: Extract<NdpMessage, { kind: 'neighbour-advertisement' }>, linkSource: MacAddress | undefined): void {
    this.counters.inc('rx_neighbour_advertisements');
    const addresses = this.ipv6.addresses;
    const target = m.target;
    // RFC 4861 7.1.2: to a multicast address, the Solicited flag must be clear.
    if (destination.isMulticast && m.solicited) return this.counters.inc('rx_na_multicast_solicited');
    if (addresses.isTentative(target)) return this.dadFailed(target, m.targetLinkLayer ?? linkSource, 'neighbour-advertisement');
    if (addresses.get(target)) {
      // Someone else says it has one of our addresses: logged, counted, nothing learnt (Linux: "someone advertises our address").
      this.counters.inc('rx_na_for_our_address');
      log('%s advertises our address %s', String(m.targetLinkLayer ?? linkSource), target.toString());
      return;
    }
    const entry = this.table.lookup(target);
    // RFC 4861 7.2.5: no entry, no update (unsolicited advertisements do not create entries).
    if (!entry) return this.counters.inc('rx_na_no_entry');
    const state = m.solicited ? 'REACHABLE' : 'STALE';
    if (entry.state === 'INCOMPLETE' || entry.mac === undefined) {
      // Without the target's link-layer address an INCOMPLETE entry learns nothing.
      if (!m.targetLinkLayer) return this.counters.inc('rx_na_incomplete_no_lladdr');
      this.learn(target, m.targetLinkLayer, { state, override: 'always', create: false });
    } else {
      // The known MAC stands in for a missing option; O decides whether a different one replaces it.
      this.learn(target, m.targetLinkLayer ?? entry.mac, { state, override: m.override ? 'always' : 'weak', create: false });
    }
    // RFC 4861 7.2.5: IsRouter cleared: it is no longer a default router.
    if (!m.router) this.ipv6.routes.setDefaultRouter(target, 0);
  }

  private learn(address: Ipv6Address, mac: MacAddress, how: NeighbourUpdate): NeighbourUpdateResult {
    const result = this.table.update(address, mac, how);
    match(result)
      .with('created', 'updated', 'not_found', () => {})
      .with('ignored_weak', () => this.counters.inc('rx_update_weak'))
      .with('ignored_locked', () => this.counters.inc('rx_update_locked'))
      .with('ignored_static', () => this.counters.inc('rx_update_static'))
      .with('table_full', () => this.counters.inc('rx_table_full'))
      .exhaustive();
    return result;
  }

  /**
   * RFC 4861 6.3.4 (the host's part of it) and RFC 4862 5.5.3: the router becomes (or stops
   * being) a default router, its link-layer address is learnt, on-link prefixes are noted and
   * autonomous /64 prefixes give addresses. Every list is bounded; what does not fit is counted.
   */
  private onRouterAdvertisement(source: Ipv6Address, m: Extract<NdpMessage, { kind: 'router-advertisement' }>): void {
    this.counters.inc('rx_router_advertisements');
    // RFC 4861 6.1.2: a router speaks from its link-local address.
    if (!source.isLinkLocal) return this.counters.inc('rx_ra_not_link_local');
    this.routerAdvertised = true;
    if (!this.ipv6.routes.setDefaultRouter(source, m.routerLifetime * 1000)) this.counters.inc('ra_routers_full');
    if (m.sourceLinkLayer) this.learn(source, m.sourceLinkLayer, { state: 'STALE', override: 'always', create: true });
    this.applyLinkParameters(m);
    for (const p of m.prefixes) this.onPrefix(p);
  }

  /**
   * RFC 4861 6.3.4: the link's parameters from a router advertisement, each only when not 0
   * ("unspecified by this router"). Cur Hop Limit becomes the hop limit of what we send; Reachable
   * Time becomes the table's BaseReachableTime (a new random ReachableTime is drawn when it
   * changed) and Retrans Timer its RetransTimer; the MTU option the link's IPv6 MTU, if it is
   * possible for this link (1280 up to the device's MTU). The timers are bounded like Linux
   * bounds them, so a hostile RA cannot make the table solicit in a busy loop.
   */
  private applyLinkParameters(m: Extract<NdpMessage, { kind: 'router-advertisement' }>): void {
    const c = this.counters;
    if (m.curHopLimit !== 0 && m.curHopLimit !== this.ipv6.hopLimit && this.ipv6.setHopLimit(m.curHopLimit)) c.inc('ra_hop_limit_set');
    const times: { baseReachableTimeMs?: number; retransTimeMs?: number } = {};
    if (m.reachableTime !== 0) {
      if (m.reachableTime > NDP_DEFAULTS.maxReachableTimeMs) c.inc('ra_timer_refused');
      else if (Math.max(m.reachableTime, NDP_DEFAULTS.minReachableTimeMs) !== this.table.params.baseReachableTimeMs) {
        times.baseReachableTimeMs = Math.max(m.reachableTime, NDP_DEFAULTS.minReachableTimeMs);
        c.inc('ra_reachable_time_set');
      }
    }
    if (m.retransTimer !== 0) {
      if (m.retransTimer > NDP_DEFAULTS.maxReachableTimeMs) c.inc('ra_timer_refused');
      else if (Math.max(m.retransTimer, NDP_DEFAULTS.minRetransTimerMs) !== this.table.params.retransTimeMs) {
        times.retransTimeMs = Math.max(m.retransTimer, NDP_DEFAULTS.minRetransTimerMs);
        c.inc('ra_retrans_timer_set');
      }
    }
    if (times.baseReachableTimeMs !== undefined || times.retransTimeMs !== undefined) this.table.setTimes(times);
    if (m.mtu !== undefined && m.mtu !== this.ipv6.mtu) {
      if (this.ipv6.setLinkMtu(m.mtu)) c.inc('ra_mtu_set');
      else {
        c.inc('ra_mtu_refused');
        log('RA: MTU %d refused (below 1280 or above the device MTU %d)', m.mtu, this.ipv6.deviceMtu);
      }
    }
  }

  /**
   * RFC 4861 8.3: a valid redirect (every 8.1 rule, the first-hop router one included, was
   * checked by the codec) changes the route for its destination: to the target router, or
   * straight to the destination when target and destination are the same (it is on-link). A
   * target link-layer address option goes into the table as a router advertisement's would
   * (created STALE, or made STALE when it changed). Linux hosts take redirects (accept_redirects=1
   * on a host), so do we.
   */
  private onRedirect(m: Extract<NdpMessage, { kind: 'redirect' }>): void {
    this.counters.inc('rx_redirects');
    this.ipv6.routes.setRedirect(m.destination, m.target);
    this.counters.inc('redirects_applied');
    log('redirect: %s now via %s', m.destination.toString(), m.target.equals(m.destination) ? 'the link (on-link)' : m.target.toString());
    if (m.targetLinkLayer) this.learn(m.target, m.targetLinkLayer, { state: 'STALE', override: 'always', create: true });
  }

  private onPrefix(p: PrefixInformation): void {
    // RFC 4861 6.3.4 / RFC 4862 5.5.3 a, c: the link-local prefix is never taken from a router,
    // and a preferred lifetime above the valid one is nonsense.
    if (p.prefix.isLinkLocal || p.prefix.isMulticast || p.preferredLifetime > p.validLifetime) return this.counters.inc('ra_prefix_ignored');
    const valid = lifetimeMs(p.validLifetime);
    const cidr = new Ipv6Cidr(p.prefix.prefix(p.prefixLength), p.prefixLength);
    if (p.onLink && !this.ipv6.routes.setOnLinkPrefix(cidr, valid)) this.counters.inc('ra_prefixes_full');
    // SLAAC: an autonomous prefix of 64 bits (the interface identifier's length, RFC 4862 5.5.3 d)
    if (!p.autonomous || !this.options.slaac) return;
    if (p.prefixLength !== 64) return this.counters.inc('ra_prefix_ignored');
    const address = Ipv6Address.fromPrefixAndMac(p.prefix, this.mac);
    const addresses = this.ipv6.addresses;
    const existing = addresses.get(address);
    const now = this.clock.now();
    const preferred = lifetimeMs(p.preferredLifetime);
    if (!existing) {
      if (valid === 0) return;
      if (!addresses.add(new Ipv6Cidr(address, 64), 'slaac', { validLifetimeMs: valid, preferredLifetimeMs: preferred, tentative: this.options.dad })) {
        return this.counters.inc('ra_addresses_full');
      }
      this.counters.inc('slaac_addresses');
      return;
    }
    if (existing.origin !== 'slaac') return;
    // RFC 4862 5.5.3 e: a short valid lifetime from an RA is taken only if it extends the
    // address or the address has less than two hours left; otherwise two hours (so a forged RA
    // cannot take an address away at once).
    const remaining = existing.validUntil - now;
    const validUntil = valid > TWO_HOURS_MS || valid > remaining ? now + valid : remaining <= TWO_HOURS_MS ? existing.validUntil : now + TWO_HOURS_MS;
    addresses.setLifetimes(existing, now + preferred, validUntil);
  }

  // ================================================================ helpers

  private jitter(): number {
    return this.options.delays ? Math.floor(this.random() * NDP_DEFAULTS.maxRouterSolicitationDelayMs) : 0;
  }

  private later(delayMs: number, f: () => void): void {
    if (this.closed) return;
    const t = this.clock.setTimer(delayMs, () => {
      this.timers.delete(t);
      f();
    });
    this.timers.add(t);
  }

  /** Stops every timer (neighbours, DAD, RS, MLD). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.mld.close();
    this.icmpv6.setMldQueryHandler(undefined);
    for (const run of this.dad.values()) run.timer?.cancel();
    this.dad.clear();
    for (const t of this.timers) t.cancel();
    this.timers.clear();
    this.table.close();
    this.icmpv6.setNdpHandler(undefined);
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
