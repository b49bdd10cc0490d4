/**
 * Which socket owns which local port. A socket binds a port on one of the stack's addresses or
 * on a wildcard: `0.0.0.0` takes IPv4 only, `::` takes both families (Linux's IPv6 socket with
 * net.ipv6.bindv6only=0: an IPv4 datagram reaches it as if from ::ffff:a.b.c.d; here it keeps its
 * IPv4 address). As in Linux without SO_REUSEADDR/SO_REUSEPORT, two bindings of a port conflict
 * when one of them could receive what the other does: `::` conflicts with every other binding
 * of the port, `0.0.0.0` with every IPv4 one, a specific address with the same address and with
 * the wildcards that cover it. Lookup prefers the exact address over a wildcard.
 */
import { formatIpv4, IPV4_UNSPECIFIED, Ipv6Address, type Ipv4Address } from '@tapstack/link';
import { UdpSocketError } from './errors.ts';

/** IANA's dynamic/private range (RFC 6335), used for sockets that do not name a port. */
export const DEFAULT_EPHEMERAL_PORTS = { low: 49152, high: 65535 } as const;

/** An address of either family: IPv4's is a number, IPv6's an Ipv6Address. */
export type UdpAddress = Ipv4Address | Ipv6Address;

/** Node's names for the families (`rinfo.family` of dgram). */
export type UdpFamily = 'IPv4' | 'IPv6';

export function familyOf(address: UdpAddress): UdpFamily {
  return typeof address === 'number' ? 'IPv4' : 'IPv6';
}

/** `10.0.0.2`, `fd00:10::2`. */
export function formatUdpAddress(address: UdpAddress): string {
  return typeof address === 'number' ? formatIpv4(address) : address.toString();
}

/** An address and a port as ss prints them: `10.0.0.2:7`, `[fd00:10::2]:7`, and `*:7` for `::` (both families). */
export function formatUdpEndpoint(address: UdpAddress, port: number): string {
  if (typeof address === 'number') return `${formatIpv4(address)}:${port}`;
  return address.isUnspecified ? `*:${port}` : `[${address.toString()}]:${port}`;
}

/** True for the same address of the same family. */
export function sameUdpAddress(a: UdpAddress, b: UdpAddress): boolean {
  if (typeof a === 'number') return a === b;
  return typeof b !== 'number' && a.equals(b);
}

interface Binding<S> {
  readonly address: UdpAddress;
  /** Bound to `::`: receives both families. */
  readonly dual: boolean;
  readonly owner: S;
}

function conflicts(a: Binding<unknown>, address: UdpAddress, dual: boolean): boolean {
  if (a.dual || dual) return true;
  const x = a.address;
  if (typeof x === 'number') return typeof address === 'number' && (x === IPV4_UNSPECIFIED || address === IPV4_UNSPECIFIED || x === address);
  return typeof address !== 'number' && x.equals(address);
}

/** Whether binding `b` takes a datagram sent to `address` (exactness aside). */
function accepts(b: Binding<unknown>, address: UdpAddress): boolean {
  if (b.dual) return true;
  const x = b.address;
  if (typeof x === 'number') return typeof address === 'number' && (x === address || x === IPV4_UNSPECIFIED);
  return typeof address !== 'number' && x.equals(address);
}

function isWildcard(b: Binding<unknown>): boolean {
  return b.dual || b.address === IPV4_UNSPECIFIED;
}

export class PortTable<S> {
  private readonly ports = new Map<number, Binding<S>[]>();
  private readonly low: number;
  private readonly high: number;

  constructor(
    ephemeral: { low: number; high: number } = DEFAULT_EPHEMERAL_PORTS,
    private readonly random: () => number = Math.random,
  ) {
    if (!(Number.isInteger(ephemeral.low) && Number.isInteger(ephemeral.high) && ephemeral.low >= 1 && ephemeral.high <= 65535 && ephemeral.low <= ephemeral.high)) {
      throw new RangeError(`ephemeral port range ${ephemeral.low}-${ephemeral.high} is not inside 1-65535`);
    }
    this.low = ephemeral.low;
    this.high = ephemeral.high;
  }

  /** Number of bound (address, port) pairs. */
  get size(): number {
    let n = 0;
    for (const list of this.ports.values()) n += list.length;
    return n;
  }

  /** True when `address:port` could be bound now. */
  isFree(port: number, address: UdpAddress): boolean {
    const list = this.ports.get(port);
    if (!list) return true;
    const dual = typeof address !== 'number' && address.isUnspecified;
    for (const b of list) if (conflicts(b, address, dual)) return false;
    return true;
  }

  /** Binds `port` (0: an ephemeral one) on `address` for `owner`; returns the port. Throws when taken. */
  bind(port: number, address: UdpAddress, owner: S): number {
    const chosen = port === 0 ? this.pickEphemeral(address) : port;
    if (!this.isFree(chosen, address)) {
      const taken = this.ports.get(chosen)!.map((b) => formatUdpEndpoint(b.address, chosen)).join(', ');
      throw new UdpSocketError('EADDRINUSE', `port ${chosen} on ${formatUdpAddress(address)} is already bound (${taken}); close that socket or pick another port`);
    }
    const dual = typeof address !== 'number' && address.isUnspecified;
    const binding = { address: dual ? Ipv6Address.UNSPECIFIED : address, dual, owner };
    const list = this.ports.get(chosen);
    if (list) list.push(binding);
    else this.ports.set(chosen, [binding]);
    return chosen;
  }

  release(port: number, owner: S): void {
    const list = this.ports.get(port);
    if (!list) return;
    const i = list.findIndex((b) => b.owner === owner);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.ports.delete(port);
  }

  /** The owner for a unicast datagram to `address:port`: exact address first, then a wildcard. */
  lookup(port: number, address: UdpAddress): S | undefined {
    const list = this.ports.get(port);
    if (!list) return undefined;
    if (list.length === 1) {
      const b = list[0]!;
      return accepts(b, address) ? b.owner : undefined;
    }
    let wildcard: S | undefined;
    for (const b of list) {
      if (!accepts(b, address)) continue;
      if (!isWildcard(b)) return b.owner;
      wildcard = b.owner;
    }
    return wildcard;
  }

  /**
   * Every owner that takes a broadcast or multicast datagram to `port` sent to `address`: those
   * bound to a wildcard that covers it or to that very address (Linux's multicast delivery rule).
   */
  lookupAll(port: number, address: UdpAddress): S[] {
    const list = this.ports.get(port);
    if (!list) return [];
    return list.filter((b) => accepts(b, address)).map((b) => b.owner);
  }

  /** Every binding, for printing: by port, IPv4 before IPv6. */
  entries(): { address: UdpAddress; port: number; owner: S }[] {
    const out: { address: UdpAddress; port: number; owner: S }[] = [];
    for (const [port, list] of this.ports) for (const b of list) out.push({ address: b.address, port, owner: b.owner });
    const rank = (a: UdpAddress): string => (typeof a === 'number' ? `4${a.toString(16).padStart(8, '0')}` : `6${a.key}`);
    return out.sort((a, b) => a.port - b.port || (rank(a.address) < rank(b.address) ? -1 : rank(a.address) > rank(b.address) ? 1 : 0));
  }

  /**
   * A free port from the ephemeral range for `address`: start at a random point and walk up,
   * wrapping, as Linux's udp_lib_get_port does (a random start makes ports hard to guess).
   */
  private pickEphemeral(address: UdpAddress): number {
    const span = this.high - this.low + 1;
    const start = Math.floor(this.random() * span) % span;
    for (let i = 0; i < span; i++) {
      const port = this.low + ((start + i) % span);
      if (this.isFree(port, address)) return port;
    }
    throw new UdpSocketError('EAGAIN', `every ephemeral port ${this.low}-${this.high} is in use`);
  }
}
