/**
 * Where an IPv6 datagram goes next, for a host (RFC 4861 5.2, "conceptual sending algorithm"):
 *
 *   1. multicast: to the group itself (its 33:33 MAC, no neighbour discovery);
 *   2. on-link: link-local fe80::/64 always (RFC 4291 2.5.6), the prefixes of our own addresses,
 *      and prefixes a router advertised with the L flag, until their lifetime ends: straight to
 *      the destination, resolved by NDP;
 *   3. a destination a router redirected (RFC 4861 8.3): to the better first hop it named, or
 *      straight to the destination when the redirect said it is on-link;
 *   4. anything else: to a default router (learnt from router advertisements, with a lifetime);
 *   5. no router: no route (RFC 4861 5.2 lets a host assume on-link then; RFC 4943 took that back).
 *
 * The router and prefix lists come from the network, so they are bounded: an RA flood with a new
 * router address or prefix in every packet fills them and the rest is refused (counted by NDP).
 * Expired entries are dropped when looked at, so no timers run.
 */
import { Ipv6Address, type Clock } from '@tapstack/link';
import { Ipv6Cidr } from './cidr.ts';

/** At most this many default routers and on-link prefixes from RAs (Linux bounds them by its route table). */
export const MAX_DEFAULT_ROUTERS = 8;
export const MAX_ONLINK_PREFIXES = 16;
/**
 * Redirected destinations kept (the part of RFC 4861's destination cache a redirect writes), and
 * for how long: a redirect has no lifetime of its own, so it is forgotten like a learnt path MTU
 * (10 min); the oldest goes first when the list is full.
 */
export const MAX_REDIRECTS = 64;
export const REDIRECT_LIFETIME_MS = 600_000;

export interface DefaultRouter {
  readonly address: Ipv6Address;
  /** Clock milliseconds when the router lifetime ends. */
  readonly until: number;
}

export interface OnLinkPrefix {
  readonly prefix: Ipv6Cidr;
  readonly until: number;
}

export interface Redirect {
  readonly destination: Ipv6Address;
  /** The better router, or the destination itself when it is on-link. */
  readonly nextHop: Ipv6Address;
  readonly onLink: boolean;
  readonly until: number;
}

/** The next hop for a destination, or why there is none. */
export type Ipv6NextHop = { kind: 'multicast' | 'on-link' | 'router'; nextHop: Ipv6Address } | { kind: 'none' };

const LINK_LOCAL = new Ipv6Cidr(Ipv6Address.parse('fe80::'), 64);

export class Ipv6Routes {
  private readonly routers = new Map<string, { address: Ipv6Address; until: number }>();
  private readonly prefixes = new Map<string, { prefix: Ipv6Cidr; until: number }>();
  private readonly redirects = new Map<string, Redirect>();

  constructor(
    private readonly clock: Clock,
    /** The prefixes of our own addresses (always on-link while the address exists). */
    private readonly addressPrefixes: () => readonly Ipv6Cidr[],
    /** The same question for one destination, without building the list (asked on every send). */
    private readonly coveredByAddressPrefix: (destination: Ipv6Address) => boolean = (d) => addressPrefixes().some((p) => p.contains(d)),
  ) {}

  /** Looks up the next hop for `destination`, and what kind of hop it is. */
  lookup(destination: Ipv6Address): Ipv6NextHop {
    const nextHop = this.nextHop(destination);
    return nextHop ? { kind: this.lastKind, nextHop } : { kind: 'none' };
  }

  /**
   * `lookup` without a result object: the next hop alone (the destination itself when it is
   * on-link), undefined when there is no route. The IPv6 layer asks this for every packet it sends.
   */
  nextHop(destination: Ipv6Address): Ipv6Address | undefined {
    if (destination.isMulticast) return this.found('multicast', destination);
    if (destination.isLinkLocal || this.isOnLink(destination)) return this.found('on-link', destination);
    if (this.redirects.size > 0) {
      const r = this.redirects.get(destination.key);
      if (r && r.until > this.clock.now()) return this.found(r.onLink ? 'on-link' : 'router', r.nextHop);
      if (r) this.redirects.delete(destination.key);
    }
    return this.found('router', this.defaultRouter());
  }

  /** What the last `nextHop` found (read by `lookup` right after it). */
  private lastKind: 'multicast' | 'on-link' | 'router' = 'on-link';

  private found(kind: 'multicast' | 'on-link' | 'router', nextHop: Ipv6Address | undefined): Ipv6Address | undefined {
    this.lastKind = kind;
    return nextHop;
  }

  isOnLink(destination: Ipv6Address): boolean {
    if (destination.isLinkLocal) return true;
    if (this.coveredByAddressPrefix(destination)) return true;
    if (this.prefixes.size === 0) return false;
    const now = this.clock.now();
    for (const [key, p] of this.prefixes) {
      if (p.until <= now) this.prefixes.delete(key);
      else if (p.prefix.contains(destination)) return true;
    }
    return false;
  }

  /** The first default router whose lifetime has not ended (RFC 4861 6.3.6, without reachability ranking). */
  defaultRouter(): Ipv6Address | undefined {
    const now = this.clock.now();
    for (const [key, r] of this.routers) {
      if (r.until <= now) this.routers.delete(key);
      else return r.address;
    }
    return undefined;
  }

  /**
   * A router advertisement's router lifetime (RFC 4861 6.3.4): 0 removes the router, anything
   * else adds or refreshes it. False when the list is full and the router is new.
   */
  setDefaultRouter(address: Ipv6Address, lifetimeMs: number): boolean {
    const key = address.key;
    if (lifetimeMs <= 0) {
      this.routers.delete(key);
      return true;
    }
    this.prune();
    if (!this.routers.has(key) && this.routers.size >= MAX_DEFAULT_ROUTERS) return false;
    this.routers.set(key, { address, until: this.clock.now() + lifetimeMs });
    return true;
  }

  /** A prefix information option with L set (RFC 4861 6.3.4): 0 removes it. False when full. */
  setOnLinkPrefix(prefix: Ipv6Cidr, lifetimeMs: number): boolean {
    const key = prefix.toString();
    if (lifetimeMs <= 0) {
      this.prefixes.delete(key);
      return true;
    }
    this.prune();
    if (!this.prefixes.has(key) && this.prefixes.size >= MAX_ONLINK_PREFIXES) return false;
    this.prefixes.set(key, { prefix, until: this.clock.now() + lifetimeMs });
    return true;
  }

  /**
   * A valid redirect (RFC 4861 8.3, checked by NDP against 8.1): packets to `destination` go to
   * `target` from now on; when the target is the destination itself, it is on-link.
   */
  setRedirect(destination: Ipv6Address, target: Ipv6Address): void {
    const key = destination.key;
    this.redirects.delete(key);
    if (this.redirects.size >= MAX_REDIRECTS) this.redirects.delete(this.redirects.keys().next().value!);
    this.redirects.set(key, { destination, nextHop: target, onLink: target.equals(destination), until: this.clock.now() + REDIRECT_LIFETIME_MS });
  }

  /** The redirected destinations still in force, oldest first. */
  redirected(): Redirect[] {
    this.prune();
    return [...this.redirects.values()];
  }

  defaultRouters(): DefaultRouter[] {
    this.prune();
    return [...this.routers.values()];
  }

  onLinkPrefixes(): OnLinkPrefix[] {
    this.prune();
    return [...this.prefixes.values()];
  }

  /** Like `ip -6 route show`. */
  show(device: string): string {
    const now = this.clock.now();
    const lines: string[] = [];
    for (const p of this.addressPrefixes()) lines.push(`${p.network.toString()}/${p.prefixLength} dev ${device} proto kernel`);
    lines.push(`${LINK_LOCAL.toString()} dev ${device} proto kernel`);
    for (const p of this.onLinkPrefixes()) lines.push(`${p.prefix.toString()} dev ${device} proto ra expires ${Math.floor((p.until - now) / 1000)}sec`);
    for (const r of this.defaultRouters()) lines.push(`default via ${r.address.toString()} dev ${device} proto ra expires ${Math.floor((r.until - now) / 1000)}sec`);
    // Linux lists these with `ip -6 route show cache`: one line per redirected destination.
    for (const r of this.redirected()) {
      const via = r.onLink ? '' : ` via ${r.nextHop.toString()}`;
      lines.push(`${r.destination.toString()}${via} dev ${device} proto redirect expires ${Math.floor((r.until - now) / 1000)}sec`);
    }
    return [...new Set(lines)].join('\n');
  }

  private prune(): void {
    const now = this.clock.now();
    for (const [k, r] of this.routers) if (r.until <= now) this.routers.delete(k);
    for (const [k, p] of this.prefixes) if (p.until <= now) this.prefixes.delete(k);
    for (const [k, r] of this.redirects) if (r.until <= now) this.redirects.delete(k);
  }
}
