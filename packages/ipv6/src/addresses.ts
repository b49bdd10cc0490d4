/**
 * The IPv6 addresses of one interface and the multicast groups it listens to (Linux keeps the
 * same per device: the inet6_ifaddr list and the ipv6_mc_list).
 *
 * An interface has several addresses at once, each with a state (RFC 4862 5.5.4, Linux's IFA_F_*):
 *
 *   tentative    being checked by Duplicate Address Detection: not used, not answered for,
 *                except that NDP watches for others using it (RFC 4862 5.4)
 *   preferred    in use: a source for new traffic, answered for
 *   deprecated   its preferred lifetime ran out: still answered for, a source only when nothing
 *                preferred fits (RFC 4862 5.5.4)
 *   duplicate    DAD found another host using it: kept to be shown (`ip -6 addr` says "dadfailed"),
 *                never used
 *
 * and an origin: the link-local address made from the MAC, a static one from the command line
 * (`--ip6`), or one formed by SLAAC from a router's prefix (with lifetimes from that router).
 *
 * Groups: an address's solicited-node group is joined as soon as the address is added, tentative
 * or not (RFC 4862 5.4.2: the DAD answer is sent there), and left with the address. Joins are
 * counted per group (several addresses share a solicited-node group when their last 24 bits
 * agree); each group's 33:33 MAC is joined on the EtherTypeDispatcher, which is the link-level
 * filter: frames to any other multicast MAC are dropped and counted there.
 */
import debugFactory from 'debug';
import type { Clock, EtherTypeDispatcher, Ipv6Address, Timer } from '@tapstack/link';
import { Ipv6Cidr } from './cidr.ts';

const log = debugFactory('tapstack:ipv6');

export type Ipv6AddressState = 'tentative' | 'preferred' | 'deprecated' | 'duplicate';
export type Ipv6AddressOrigin = 'link-local' | 'static' | 'slaac';

/** A read-only view of one interface address. Lifetimes are clock milliseconds (Infinity: forever). */
export interface Ipv6InterfaceAddress {
  readonly address: Ipv6Address;
  readonly prefixLength: number;
  readonly state: Ipv6AddressState;
  readonly origin: Ipv6AddressOrigin;
  /** When the address stops being preferred (becomes deprecated). */
  readonly preferredUntil: number;
  /** When the address is removed. */
  readonly validUntil: number;
}

export interface AddAddressOptions {
  /** Lifetimes in milliseconds from now (default Infinity: static and link-local addresses). */
  validLifetimeMs?: number;
  preferredLifetimeMs?: number;
  /** Start tentative (DAD runs before use; the default) or preferred at once (DAD off). */
  tentative?: boolean;
}

/** What changed, for the layers that act on it (NDP starts DAD, MLD reports a new group). */
export type Ipv6AddressEvent =
  | { kind: 'added'; address: Ipv6InterfaceAddress }
  | { kind: 'state'; address: Ipv6InterfaceAddress; from: Ipv6AddressState }
  | { kind: 'removed'; address: Ipv6InterfaceAddress };

export type Ipv6GroupEvent = { kind: 'joined' | 'left'; group: Ipv6Address };

/** At most this many addresses per interface (SLAAC from hostile RAs must not grow it without bound). */
export const MAX_INTERFACE_ADDRESSES = 16;

class Entry implements Ipv6InterfaceAddress {
  timer: Timer | undefined = undefined;
  constructor(
    readonly address: Ipv6Address,
    readonly prefixLength: number,
    public state: Ipv6AddressState,
    readonly origin: Ipv6AddressOrigin,
    public preferredUntil: number,
    public validUntil: number,
  ) {}
}

export class Ipv6Addresses {
  private readonly entries = new Map<string, Entry>();
  private readonly groups = new Map<string, { group: Ipv6Address; users: number }>();
  private readonly listeners: ((e: Ipv6AddressEvent) => void)[] = [];
  private readonly groupListeners: ((e: Ipv6GroupEvent) => void)[] = [];
  private closed = false;

  constructor(
    private readonly dispatcher: EtherTypeDispatcher,
    private readonly clock: Clock,
  ) {}

  /** Every address, in the order added. */
  list(): Ipv6InterfaceAddress[] {
    return [...this.entries.values()];
  }

  get(address: Ipv6Address): Ipv6InterfaceAddress | undefined {
    return this.entries.get(address.key);
  }

  /**
   * Ours to receive on and answer for: preferred or deprecated (not tentative, not duplicate).
   * Compared by bytes, not looked up by text: asked for the source and the destination of every
   * packet received and sent, whose address objects are new, and formatting a fresh one's text
   * key cost more than comparing it with the few addresses an interface has (16 at most).
   */
  isAssigned(address: Ipv6Address): boolean {
    return this.isAssignedAt(address.bytes, 0);
  }

  /** `isAssigned` for the 16 bytes at `bytes[offset]` (a received header's), without making an address. */
  isAssignedAt(bytes: Uint8Array, offset: number): boolean {
    for (const e of this.entries.values()) {
      if (e.state !== 'preferred' && e.state !== 'deprecated') continue;
      const a = e.address.bytes;
      let i = 15;
      while (i >= 0 && a[i] === bytes[offset + i]) i--;
      if (i < 0) return true;
    }
    return false;
  }

  isTentative(address: Ipv6Address): boolean {
    return this.entries.get(address.key)?.state === 'tentative';
  }

  /** Listens for addresses added, changing state and removed. */
  onChange(listener: (e: Ipv6AddressEvent) => void): void {
    this.listeners.push(listener);
  }

  onGroupChange(listener: (e: Ipv6GroupEvent) => void): void {
    this.groupListeners.push(listener);
  }

  /**
   * Adds an address (tentative unless told otherwise) and joins its solicited-node group. Adding
   * one that exists refreshes its lifetimes (SLAAC, RFC 4862 5.5.3 e) and returns it. Returns
   * undefined when the interface is full.
   */
  add(cidr: Ipv6Cidr, origin: Ipv6AddressOrigin, options: AddAddressOptions = {}): Ipv6InterfaceAddress | undefined {
    if (this.closed) return undefined;
    const now = this.clock.now();
    const valid = options.validLifetimeMs ?? Infinity;
    const preferred = Math.min(options.preferredLifetimeMs ?? Infinity, valid);
    const existing = this.entries.get(cidr.address.key);
    if (existing) {
      this.setLifetimes(existing, now + preferred, now + valid);
      return existing;
    }
    if (this.entries.size >= MAX_INTERFACE_ADDRESSES) return undefined;
    if (cidr.address.isMulticast || cidr.address.isUnspecified || cidr.address.isLoopback) {
      throw new Error(`${cidr.toString()} cannot be an interface address`);
    }
    const state: Ipv6AddressState = options.tentative === false ? (preferred > 0 ? 'preferred' : 'deprecated') : 'tentative';
    const e = new Entry(cidr.address, cidr.prefixLength, state, origin, now + preferred, now + valid);
    this.entries.set(cidr.address.key, e);
    this.join(cidr.address.solicitedNode());
    this.armLifetime(e);
    log('address %s/%d %s (%s)', e.address.toString(), e.prefixLength, e.state, origin);
    this.emit({ kind: 'added', address: e });
    return e;
  }

  /** DAD finished without a conflict: tentative -> preferred (or deprecated, if that time passed). */
  confirm(address: Ipv6Address): void {
    const e = this.entries.get(address.key);
    if (!e || e.state !== 'tentative') return;
    this.setState(e, this.clock.now() < e.preferredUntil ? 'preferred' : 'deprecated');
  }

  /** DAD found the address in use by someone else: never used (RFC 4862 5.4.5). */
  markDuplicate(address: Ipv6Address): void {
    const e = this.entries.get(address.key);
    if (!e || e.state === 'duplicate') return;
    e.timer?.cancel();
    e.timer = undefined;
    this.setState(e, 'duplicate');
    this.leave(e.address.solicitedNode());
  }

  remove(address: Ipv6Address): boolean {
    const e = this.entries.get(address.key);
    if (!e) return false;
    e.timer?.cancel();
    this.entries.delete(address.key);
    if (e.state !== 'duplicate') this.leave(e.address.solicitedNode());
    log('address %s removed', e.address.toString());
    this.emit({ kind: 'removed', address: e });
    return true;
  }

  /** Sets the lifetimes of an existing address (a router's new prefix information). */
  setLifetimes(address: Ipv6InterfaceAddress, preferredUntil: number, validUntil: number): void {
    const e = this.entries.get(address.address.key);
    if (!e) return;
    e.preferredUntil = Math.min(preferredUntil, validUntil);
    e.validUntil = validUntil;
    if (e.state === 'deprecated' && this.clock.now() < e.preferredUntil) this.setState(e, 'preferred');
    this.armLifetime(e);
  }

  /**
   * The source address for a datagram to `destination` (RFC 6724 section 5, its rules that matter
   * on one interface): the destination itself if it is ours; an address of the same scope
   * (link-local for link-local and link-scope multicast destinations, else a global one),
   * preferred before deprecated, then the longest matching prefix. Undefined when no address is
   * usable (all tentative): the caller may then send from :: only where that is allowed (DAD).
   */
  selectSource(destination: Ipv6Address): Ipv6Address | undefined {
    if (this.isAssigned(destination)) return destination;
    const linkScope = destination.isLinkLocal || (destination.isMulticast && (destination.multicastScope ?? 0) <= 2);
    let best: Entry | undefined;
    let bestScore = -1;
    for (const e of this.entries.values()) {
      if (e.state !== 'preferred' && e.state !== 'deprecated') continue;
      const sameScope = e.address.isLinkLocal === linkScope;
      const score = (sameScope ? 1000 : 0) + (e.state === 'preferred' ? 500 : 0) + commonPrefixLength(e.address, destination);
      if (score > bestScore) {
        best = e;
        bestScore = score;
      }
    }
    return best?.address;
  }

  /** The usable link-local address (the source of router solicitations and MLD reports). */
  linkLocal(): Ipv6Address | undefined {
    for (const e of this.entries.values()) if (e.address.isLinkLocal && (e.state === 'preferred' || e.state === 'deprecated')) return e.address;
    return undefined;
  }

  /** On-link prefixes from our addresses (RFC 4861 5.2: the prefix of an address is on-link). */
  /** True when `destination` is inside the prefix of one of our addresses (not duplicate): on-link, without building the prefixes. */
  coversOnLink(destination: Ipv6Address): boolean {
    for (const e of this.entries.values()) {
      if (e.state !== 'duplicate' && e.prefixLength < 128 && destination.hasPrefix(e.address, e.prefixLength)) return true;
    }
    return false;
  }

  onLinkPrefixes(): Ipv6Cidr[] {
    const out: Ipv6Cidr[] = [];
    for (const e of this.entries.values()) {
      if (e.state === 'duplicate' || e.prefixLength >= 128) continue;
      out.push(new Ipv6Cidr(e.address.prefix(e.prefixLength), e.prefixLength));
    }
    return out;
  }

  // ------------------------------------------------------------------ multicast groups

  /**
   * Joins `group` (counted): the first join accepts its 33:33 MAC on the link and tells the
   * listeners (MLD sends a report).
   */
  join(group: Ipv6Address): void {
    if (!group.isMulticast) throw new Error(`${group.toString()} is not a multicast address`);
    const g = this.groups.get(group.key);
    if (g) {
      g.users++;
      return;
    }
    this.groups.set(group.key, { group, users: 1 });
    this.dispatcher.joinMulticast(group.multicastMac());
    log('joined %s', group.toString());
    for (const l of this.groupListeners) l({ kind: 'joined', group });
  }

  leave(group: Ipv6Address): void {
    const g = this.groups.get(group.key);
    if (!g || --g.users > 0) return;
    this.groups.delete(group.key);
    this.dispatcher.leaveMulticast(group.multicastMac());
    log('left %s', group.toString());
    for (const l of this.groupListeners) l({ kind: 'left', group });
  }

  isMember(group: Ipv6Address): boolean {
    return this.groups.has(group.key);
  }

  /** The groups joined, as `ip -6 maddr` lists them. */
  memberships(): Ipv6Address[] {
    return [...this.groups.values()].map((g) => g.group);
  }

  /** Like `ip -6 addr show`: `inet6 fd00:10::2/64 scope global` plus the state, one per line. */
  show(): string {
    const now = this.clock.now();
    const secs = (t: number): string => (Number.isFinite(t) ? `${Math.max(0, Math.floor((t - now) / 1000))}sec` : 'forever');
    return this.list()
      .map((a) => {
        const flags = a.state === 'tentative' ? ' tentative' : a.state === 'duplicate' ? ' tentative dadfailed' : a.state === 'deprecated' ? ' deprecated' : '';
        const origin = a.origin === 'slaac' ? ' dynamic mngtmpaddr' : '';
        return `inet6 ${a.address.toString()}/${a.prefixLength} scope ${a.address.isLinkLocal ? 'link' : 'global'}${origin}${flags}\n   valid_lft ${secs(a.validUntil)} preferred_lft ${secs(a.preferredUntil)}`;
      })
      .join('\n');
  }

  /** Cancels the lifetime timers; the addresses stay readable. */
  close(): void {
    this.closed = true;
    for (const e of this.entries.values()) {
      e.timer?.cancel();
      e.timer = undefined;
    }
  }

  private setState(e: Entry, state: Ipv6AddressState): void {
    const from = e.state;
    if (from === state) return;
    e.state = state;
    log('address %s %s -> %s', e.address.toString(), from, state);
    this.emit({ kind: 'state', address: e, from });
  }

  /** One timer per address, for the next of: preferred lifetime ends, valid lifetime ends. */
  private armLifetime(e: Entry): void {
    e.timer?.cancel();
    e.timer = undefined;
    if (this.closed || e.state === 'duplicate') return;
    const now = this.clock.now();
    const next = e.state !== 'deprecated' && e.preferredUntil < e.validUntil ? e.preferredUntil : e.validUntil;
    if (!Number.isFinite(next)) return;
    e.timer = this.clock.setTimer(Math.max(0, next - now), () => {
      e.timer = undefined;
      if (this.clock.now() >= e.validUntil) {
        this.remove(e.address);
        return;
      }
      if (e.state === 'preferred') this.setState(e, 'deprecated');
      this.armLifetime(e);
    });
  }

  private emit(event: Ipv6AddressEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        log('address listener threw: %O', err);
      }
    }
  }
}

/** How many leading bits two addresses share (RFC 6724 rule 8's CommonPrefixLen). */
export function commonPrefixLength(a: Ipv6Address, b: Ipv6Address): number {
  for (let i = 0; i < 16; i++) {
    const x = a.bytes[i]! ^ b.bytes[i]!;
    if (x !== 0) return i * 8 + Math.clz32(x) - 24;
  }
  return 128;
}
