/**
 * The routing table: which neighbour a datagram goes to. A host needs little of it: the
 * connected prefix of its address (neighbours reached directly), a default gateway, and perhaps
 * a few static routes. Lookup is longest-prefix match, as in `ip route get`.
 */
import { formatIpv4, type Ipv4Address } from '@tapstack/link';
import { Ipv4Cidr } from './cidr.ts';

export interface Route {
  /** The destination network (host bits zero). 0.0.0.0/0 is the default route. */
  readonly destination: Ipv4Cidr;
  /** Send through this neighbour; absent for an on-link (connected) network. */
  readonly gateway?: Ipv4Address;
  /** `connected` for the prefix of the interface address, `static` for the rest. */
  readonly origin: 'connected' | 'static';
}

export interface RouteLookup {
  readonly route: Route;
  /** The neighbour to hand the frame to: the gateway, or the destination itself when on-link. */
  readonly nextHop: Ipv4Address;
}

export class RouteTable {
  /** Kept sorted by prefix length, longest first, so the first match wins. */
  private routes: Route[] = [];
  /**
   * The last lookup's answer, a one-entry route cache: a host mostly answers the peer it just
   * heard from (an echo flood sends every reply to one address), and returning the same answer
   * saves the walk and an allocation per datagram sent. Emptied whenever the table changes.
   */
  private cached: RouteLookup | undefined;
  private cachedDestination = 0;

  constructor(private readonly deviceName = 'dev0') {}

  /**
   * Adds a route (the destination's host bits are cleared). A gateway must be on a connected
   * network, as Linux insists ("Nexthop has invalid gateway"); a route for the same prefix
   * replaces the old one.
   */
  add(destination: Ipv4Cidr, gateway?: Ipv4Address, origin: Route['origin'] = 'static'): Route {
    const network = destination.networkCidr;
    if (gateway !== undefined && !this.routes.some((r) => r.origin === 'connected' && r.destination.contains(gateway))) {
      throw new Error(`gateway ${formatIpv4(gateway)} is not on a connected network`);
    }
    const route: Route = gateway === undefined ? { destination: network, origin } : { destination: network, gateway, origin };
    this.routes = this.routes.filter((r) => !r.destination.equals(network));
    this.routes.push(route);
    this.routes.sort((a, b) => b.destination.prefixLength - a.destination.prefixLength);
    this.cached = undefined;
    return route;
  }

  /** Removes the route for exactly this prefix; true when there was one. */
  remove(destination: Ipv4Cidr): boolean {
    const network = destination.networkCidr;
    const before = this.routes.length;
    this.routes = this.routes.filter((r) => !r.destination.equals(network));
    this.cached = undefined;
    return this.routes.length !== before;
  }

  /** Longest-prefix match; undefined when no route covers the destination. */
  lookup(destination: Ipv4Address): RouteLookup | undefined {
    if (this.cached !== undefined && this.cachedDestination === destination) return this.cached;
    for (const route of this.routes) {
      if (route.destination.contains(destination)) {
        this.cached = { route, nextHop: route.gateway ?? destination };
        this.cachedDestination = destination;
        return this.cached;
      }
    }
    return undefined;
  }

  entries(): readonly Route[] {
    return this.routes;
  }

  /** Like `ip route show`. */
  show(source?: Ipv4Address): string {
    return this.routes
      .map((r) => {
        const dst = r.destination.prefixLength === 0 ? 'default' : r.destination.format();
        if (r.gateway !== undefined) return `${dst} via ${formatIpv4(r.gateway)} dev ${this.deviceName}`;
        const src = source !== undefined && r.origin === 'connected' ? ` proto kernel scope link src ${formatIpv4(source)}` : ' scope link';
        return `${dst} dev ${this.deviceName}${src}`;
      })
      .join('\n');
  }
}
