/**
 * ARP for one Ethernet link: the resolver IPv4 sends through (NeighbourResolver) and the
 * responder that answers for our addresses.
 *
 * Receive path, in order (every drop has its own counter, `arp.rx_<reason>`):
 *   1. integrity: ArpPacket.check (enough bytes for the header and the addresses it declares)
 *   2. sanity of the fields: ArpRepr.parse (Ethernet, IPv4, 6, 4, request or reply)
 *   3. sanity against us: not from our own MAC, sender MAC unicast, sender/target IP plausible
 *   4. conflicts (RFC 5227): someone else claims one of our addresses -> AddressClaims
 *      (address-claims.ts) counts, logs and defends
 *   5. the packet kind: probe, announcement, request, reply -> answer and/or learn
 *
 * What we learn follows RFC 826 and Linux arp_process: a request for our address creates (or
 * updates) the sender's entry; any other packet only updates an entry that already exists,
 * unless `arpAccept` is on; a reply to us confirms the entry (REACHABLE), anything else leaves it
 * STALE; a different MAC is accepted only after locktime, except from a gratuitous ARP.
 */
import {
  ETHERNET_HEADER_LENGTH,
  EtherType,
  MacAddress,
  formatIpv4,
  ipv4DatagramSource,
  isIpv4Loopback,
  readEtherType,
  writeEthernetAddresses,
  isIpv4Multicast,
  Counters,
  IPV4_BROADCAST,
  type Clock,
  type EtherTypeDispatcher,
  type FrameOffload,
  type Ipv4Address,
} from '@tapstack/link';
import debugFactory from 'debug';
import { match } from 'ts-pattern';
import { NeighbourTable, type NeighbourParams, type NeighbourUpdateResult } from '@tapstack/neighbour';
import {
  ArpPacket,
  ArpRepr,
  buildArpFrame,
  formatArp,
  type ArpParseError,
} from './packet.ts';
import type { NeighbourResolver, ResolutionFailedListener, ResolveOutcome } from './resolver-api.ts';
import { AddressClaims, type ArpStartResult, type ConflictListener } from './address-claims.ts';

const log = debugFactory('tapstack:arp');

export const ARP_COUNTERS = [
  'rx_packets',
  'rx_requests',
  'rx_replies',
  'rx_probes',
  'rx_gratuitous',
  // integrity and field sanity (packet.ts)
  'rx_truncated_header',
  'rx_truncated_addresses',
  'rx_bad_htype',
  'rx_bad_ptype',
  'rx_bad_hlen',
  'rx_bad_plen',
  'rx_bad_opcode',
  // sanity against us
  'rx_own_mac',
  'rx_bad_sender_mac',
  'rx_bad_sender_ip',
  'rx_bad_target_ip',
  'rx_conflicts',
  // not dropped, but not acted on either
  'rx_request_not_for_us',
  'rx_probe_not_for_us',
  'rx_request_for_tentative',
  'rx_unsolicited_ignored',
  'rx_update_locked',
  'rx_update_static',
  'rx_table_full',
  // sent
  'tx_requests',
  'tx_unicast_solicits',
  'tx_replies',
  'tx_probe_replies',
  'tx_proxy_replies',
  'tx_announcements',
  'tx_dad_probes',
  'tx_defends',
  'tx_link_refused',
  // conflicts
  'conflicts_not_defended',
  'dad_conflicts',
  // the resolver
  'resolve_sent',
  'resolve_queued',
  'resolve_dropped_runt',
  'resolve_dropped_bad_next_hop',
  'resolve_dropped_table_full',
  'resolve_dropped_link',
  'resolve_dropped_closed',
  'resolve_failed_frames',
] as const;
export type ArpCounterName = (typeof ARP_COUNTERS)[number];

export interface ProxyPrefix {
  address: Ipv4Address;
  prefixLength: number;
}

export interface ArpOptions {
  dispatcher: EtherTypeDispatcher;
  clock: Clock;
  /** Our IPv4 addresses on this link. */
  addresses: Ipv4Address[];
  /** For reachable-time randomisation and RFC 5227 jitter (default Math.random). */
  random?: () => number;
  neighbour?: Partial<NeighbourParams>;
  /** Linux arp_accept: let unsolicited replies and gratuitous ARP create entries (default false). */
  arpAccept?: boolean;
  /** Announce our addresses with gratuitous ARP on start() (default true). */
  announce?: boolean;
  /** Probe for our addresses (RFC 5227) on start() before using them (default false). */
  probe?: boolean;
  /** Answer requests for these prefixes with our MAC (proxy ARP). */
  proxy?: ProxyPrefix[];
  /** Directed broadcast addresses (e.g. 10.0.0.255): NOARP, sent to ff:ff:ff:ff:ff:ff. */
  broadcasts?: Ipv4Address[];
}

type ArpKind = 'probe' | 'announcement' | 'request' | 'reply';

/** The multicast MAC for an IPv4 group (RFC 1112): 01:00:5e and the low 23 bits of the address. */
export function ipv4MulticastMac(group: Ipv4Address): MacAddress {
  return MacAddress.fromBytes(
    new Uint8Array([0x01, 0x00, 0x5e, (group >>> 16) & 0x7f, (group >>> 8) & 0xff, group & 0xff]),
  );
}

export class Arp implements NeighbourResolver {
  readonly counters = new Counters<ArpCounterName>('arp', ARP_COUNTERS);
  readonly table: NeighbourTable;
  // Counted on every frame sent: the cells themselves, no lookup by name.
  private readonly resolveSent = this.counters.counter('resolve_sent');
  private readonly dispatcher: EtherTypeDispatcher;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly mac: MacAddress;
  /** Our addresses, and RFC 5227's probing, announcing and defending of them. */
  readonly claims: AddressClaims;
  private readonly broadcasts: Set<Ipv4Address>;
  private readonly proxy: { network: number; mask: number }[];
  private readonly arpAccept: boolean;
  private readonly failedListeners: ResolutionFailedListener[] = [];
  private closed = false;

  constructor(options: ArpOptions) {
    this.dispatcher = options.dispatcher;
    this.clock = options.clock;
    this.random = options.random ?? Math.random;
    this.mac = options.dispatcher.link.mac;
    this.arpAccept = options.arpAccept ?? false;
    this.broadcasts = new Set(options.broadcasts ?? []);
    this.proxy = (options.proxy ?? []).map(({ address, prefixLength }) => {
      if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > 32) {
        throw new RangeError(`proxy prefix length ${prefixLength} must be 0-32`);
      }
      const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
      return { network: (address & mask) >>> 0, mask };
    });
    this.claims = new AddressClaims(
      {
        clock: options.clock,
        random: this.random,
        mac: this.mac,
        send: (destination, repr) => this.send(destination, repr),
        count: (name) => this.counters.inc(name),
      },
      { addresses: options.addresses, probe: options.probe ?? false, announce: options.announce ?? true },
    );
    this.table = new NeighbourTable({
      clock: options.clock,
      params: options.neighbour ?? {},
      random: this.random,
      device: options.dispatcher.link.name,
      hooks: {
        solicit: (ip, unicastTo, waiting) => this.sendRequest(ip, unicastTo, waiting),
        sendTo: (frame, mac, offload) => this.sendTo(frame, mac, offload),
        failed: (ip, frames) => this.resolutionFailed(ip, frames),
        noArpMac: (ip) => this.noArpMac(ip),
      },
    });
    this.dispatcher.register(EtherType.ARP, (frame) => this.input(frame));
  }

  /** Our active addresses (tentative ones, still being probed, are not included). */
  get addresses(): Ipv4Address[] {
    return [...this.claims.active];
  }

  // ================================================================ resolver

  resolve(nextHop: Ipv4Address, frame: Uint8Array, offload?: FrameOffload): ResolveOutcome {
    if (this.closed) {
      // A closed resolver must not start entries, timers and requests again.
      this.counters.inc('resolve_dropped_closed');
      return 'dropped';
    }
    if (frame.length < 14) {
      this.counters.inc('resolve_dropped_runt');
      return 'dropped';
    }
    if (nextHop === 0 || isIpv4Loopback(nextHop)) {
      this.counters.inc('resolve_dropped_bad_next_hop');
      return 'dropped';
    }
    const table = this.table;
    const fullBefore = table.tableFulls.value;
    const outcome = table.output(nextHop, frame, offload);
    if (outcome === 'sent') this.resolveSent.value++;
    else if (outcome === 'queued') this.counters.inc('resolve_queued');
    else if (table.tableFulls.value !== fullBefore) this.counters.inc('resolve_dropped_table_full');
    else this.counters.inc('resolve_dropped_link');
    return outcome;
  }

  onResolutionFailed(listener: ResolutionFailedListener): void {
    this.failedListeners.push(listener);
  }

  /** Called when another host claims one of our addresses. */
  onConflict(listener: ConflictListener): void {
    this.claims.onConflict(listener);
  }

  /** An upper layer saw forward progress to `ip` (Linux neigh_confirm). */
  confirm(ip: Ipv4Address): boolean {
    return this.table.confirm(ip);
  }

  private noArpMac(ip: Ipv4Address): MacAddress | undefined {
    if (ip === IPV4_BROADCAST || this.broadcasts.has(ip)) return MacAddress.BROADCAST;
    if (isIpv4Multicast(ip)) return ipv4MulticastMac(ip);
    return undefined;
  }

  /** Fills in the MACs and hands the frame to the link. */
  private sendTo(frame: Uint8Array, destination: MacAddress, offload?: FrameOffload): boolean {
    writeEthernetAddresses(frame, destination, this.mac);
    if (this.dispatcher.send(frame, offload)) return true;
    this.counters.inc('tx_link_refused');
    return false;
  }

  private resolutionFailed(ip: Ipv4Address, frames: readonly Uint8Array[]): void {
    this.counters.inc('resolve_failed_frames', frames.length);
    log('resolution of %s failed, %d queued packets dropped', formatIpv4(ip), frames.length);
    for (const l of this.failedListeners) {
      try {
        l(ip, frames);
      } catch (err) {
        log('resolution-failed listener threw: %O', err);
      }
    }
  }

  /**
   * A request for `ip` (Linux arp_solicit). The sender IP is the source of the packet waiting
   * for the answer when that is ours (so the neighbour learns the address it will answer),
   * otherwise our first address.
   */
  private sendRequest(ip: Ipv4Address, unicastTo: MacAddress | undefined, waiting: Uint8Array | undefined): void {
    let sender: Ipv4Address | undefined;
    if (waiting && waiting.length >= ETHERNET_HEADER_LENGTH + 20 && readEtherType(waiting) === EtherType.IPV4) {
      const source = ipv4DatagramSource(waiting, ETHERNET_HEADER_LENGTH);
      if (this.claims.active.has(source)) sender = source;
    }
    sender ??= this.claims.active.values().next().value ?? (0 as Ipv4Address);
    this.send(unicastTo ?? MacAddress.BROADCAST, {
      operation: 'request',
      senderMac: this.mac,
      senderIp: sender,
      targetMac: MacAddress.ZERO,
      targetIp: ip,
    });
    this.counters.inc(unicastTo ? 'tx_unicast_solicits' : 'tx_requests');
  }

  private send(destination: MacAddress, repr: ArpRepr): boolean {
    const frame = buildArpFrame(destination, this.mac, repr);
    if (log.enabled) log('out %s', formatArp(frame.subarray(14)));
    if (this.dispatcher.send(frame)) return true;
    this.counters.inc('tx_link_refused');
    return false;
  }

  // ================================================================ responder

  /** Handles one received frame (registered for EtherType 0x0806). Never throws on bad input. */
  input(frame: Uint8Array): void {
    if (this.closed) return;
    this.counters.inc('rx_packets');
    const payload = frame.subarray(14);
    const checked = ArpPacket.check(payload);
    if (!checked.ok) return this.drop(checked.reason, payload);
    const parsed = ArpRepr.parse(checked.value);
    if (!parsed.ok) return this.drop(parsed.reason, payload);
    const repr = parsed.value;
    if (log.enabled) log('in  %s', formatArp(payload));

    // Sanity against us. A TAP can hand our own frames back; never learn or answer those.
    if (MacAddress.equalsAt(this.mac, frame, 6) || repr.senderMac.equals(this.mac)) {
      this.counters.inc('rx_own_mac');
      return;
    }
    if (repr.senderMac.isMulticast || repr.senderMac.isZero) {
      this.counters.inc('rx_bad_sender_mac');
      return;
    }
    const sip = repr.senderIp;
    const tip = repr.targetIp;
    // 0.0.0.0 is a sender only in an RFC 5227 probe (a request); a reply from it teaches nothing.
    if (
      isIpv4Multicast(sip) ||
      sip === IPV4_BROADCAST ||
      isIpv4Loopback(sip) ||
      this.broadcasts.has(sip) ||
      (sip === 0 && repr.operation === 'reply')
    ) {
      this.counters.inc('rx_bad_sender_ip');
      return;
    }
    if (isIpv4Multicast(tip) || isIpv4Loopback(tip) || tip === IPV4_BROADCAST) {
      this.counters.inc('rx_bad_target_ip');
      return;
    }

    const kind: ArpKind =
      repr.operation === 'request' && sip === 0
        ? 'probe'
        : sip === tip
          ? 'announcement'
          : repr.operation;
    this.counters.inc(repr.operation === 'request' ? 'rx_requests' : 'rx_replies');

    // RFC 5227 2.1.1 and 2.4: another host using (or probing for, while we probe) our address.
    if (sip !== 0 && (this.claims.active.has(sip) || this.claims.tentative.has(sip))) return this.claims.conflict(sip, repr.senderMac);
    if (kind === 'probe' && this.claims.tentative.has(tip)) return this.claims.conflict(tip, repr.senderMac);

    const unicastToUs = MacAddress.equalsAt(this.mac, frame, 0);
    match(kind)
      .with('probe', () => this.onProbe(repr, unicastToUs))
      .with('announcement', () => {
        this.counters.inc('rx_gratuitous');
        // A host telling everyone its (new) MAC: update what we have at once, create only with arp_accept.
        this.learn(repr, { state: 'STALE', override: 'always', create: this.arpAccept });
      })
      .with('request', () => this.onRequest(repr, unicastToUs))
      .with('reply', () => {
        this.learn(repr, {
          state: unicastToUs ? 'REACHABLE' : 'STALE',
          override: 'after_locktime',
          create: this.arpAccept,
        });
      })
      .exhaustive();
  }

  private drop(reason: ArpParseError, payload: Uint8Array): void {
    this.counters.inc(`rx_${reason}`);
    if (log.enabled) log('drop (%s): %s', reason, formatArp(payload));
  }

  private onProbe(repr: ArpRepr, unicastToUs: boolean): void {
    this.counters.inc('rx_probes');
    if (!this.claims.active.has(repr.targetIp)) {
      this.counters.inc('rx_probe_not_for_us');
      return;
    }
    // The address is ours: say so, to the prober only (as Linux does: target IP 0.0.0.0).
    this.table.countReceivedSolicitation(unicastToUs);
    if (
      this.send(repr.senderMac, {
        operation: 'reply',
        senderMac: this.mac,
        senderIp: repr.targetIp,
        targetMac: repr.senderMac,
        targetIp: repr.senderIp,
      })
    ) {
      this.counters.inc('tx_probe_replies');
    }
  }

  private onRequest(repr: ArpRepr, unicastToUs: boolean): void {
    const tip = repr.targetIp;
    const forUs = this.claims.active.has(tip);
    const proxied = !forUs && !this.claims.tentative.has(tip) && this.proxies(tip) && !this.proxies(repr.senderIp);
    if (!forUs && !proxied) {
      this.counters.inc(this.claims.tentative.has(tip) ? 'rx_request_for_tentative' : 'rx_request_not_for_us');
      // RFC 826: the sender's mapping is merged into an entry we already have.
      this.learn(repr, { state: 'STALE', override: 'after_locktime', create: false });
      return;
    }
    if (forUs) this.table.countReceivedSolicitation(unicastToUs);
    // RFC 826 / Linux neigh_event_ns: it asked for us, so it will talk to us: create the entry.
    this.learn(repr, { state: 'STALE', override: 'always', create: true });
    if (
      this.send(repr.senderMac, {
        operation: 'reply',
        senderMac: this.mac,
        senderIp: tip,
        targetMac: repr.senderMac,
        targetIp: repr.senderIp,
      })
    ) {
      this.counters.inc(forUs ? 'tx_replies' : 'tx_proxy_replies');
    }
  }

  private learn(repr: ArpRepr, how: Parameters<NeighbourTable['update']>[2]): NeighbourUpdateResult {
    const result = this.table.update(repr.senderIp, repr.senderMac, how);
    match(result)
      .with('created', 'updated', () => {})
      .with('not_found', () => {
        if (repr.operation === 'reply') this.counters.inc('rx_unsolicited_ignored');
      })
      .with('ignored_locked', () => this.counters.inc('rx_update_locked'))
      .with('ignored_weak', () => {}) // ARP never asks for a weak override (that is NDP's)
      .with('ignored_static', () => this.counters.inc('rx_update_static'))
      .with('table_full', () => this.counters.inc('rx_table_full'))
      .exhaustive();
    return result;
  }

  private proxies(ip: Ipv4Address): boolean {
    for (const p of this.proxy) if (((ip & p.mask) >>> 0) === p.network) return true;
    return false;
  }

  // ================================================================ conflicts (RFC 5227)

  // ================================================================ addresses (RFC 5227 in address-claims.ts)

  /**
   * Probes for tentative addresses (when `probe` is on) and announces the addresses (when
   * `announce` is on); see AddressClaims.start.
   */
  start(): Promise<ArpStartResult> {
    return this.claims.start();
  }

  /** Adds an address; probed (if `probe`) and announced (if `announce`) when started. */
  addAddress(ip: Ipv4Address): void {
    this.claims.addAddress(ip);
  }

  removeAddress(ip: Ipv4Address): void {
    this.claims.removeAddress(ip);
  }

  /** Cancels every timer (neighbour timers, probes, announcements) and stops receiving. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.claims.close();
    this.table.close();
    this.dispatcher.unregister(EtherType.ARP);
  }

}
