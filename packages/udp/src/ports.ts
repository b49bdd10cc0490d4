/**
 * Which socket owns which local port. A socket binds a port on one of the stack's addresses
 * or on all of them (0.0.0.0, the wildcard). As in Linux without SO_REUSEADDR/SO_REUSEPORT:
 * a wildcard binding conflicts with every other binding of that port, a specific one with the
 * wildcard and with the same address. Lookup prefers the exact address over the wildcard.
 */
import { formatIpv4, IPV4_UNSPECIFIED, type Ipv4Address } from '@tapstack/link';
import { UdpSocketError } from './errors.ts';

/** IANA's dynamic/private range (RFC 6335), used for sockets that do not name a port. */
export const DEFAULT_EPHEMERAL_PORTS = { low: 49152, high: 65535 } as const;

interface Binding<S> {
  readonly address: Ipv4Address;
  readonly owner: S;
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
  isFree(port: number, address: Ipv4Address): boolean {
    const list = this.ports.get(port);
    if (!list) return true;
    for (const b of list) {
      if (b.address === IPV4_UNSPECIFIED || address === IPV4_UNSPECIFIED || b.address === address) return false;
    }
    return true;
  }

  /** Binds `port` (0: an ephemeral one) on `address` for `owner`; returns the port. Throws when taken. */
  bind(port: number, address: Ipv4Address, owner: S): number {
    const chosen = port === 0 ? this.pickEphemeral(address) : port;
    if (!this.isFree(chosen, address)) {
      const taken = this.ports.get(chosen)!.map((b) => `${formatIpv4(b.address)}:${chosen}`).join(', ');
      throw new UdpSocketError('EADDRINUSE', `port ${chosen} on ${formatIpv4(address)} is already bound (${taken}); close that socket or pick another port`);
    }
    const list = this.ports.get(chosen);
    if (list) list.push({ address, owner });
    else this.ports.set(chosen, [{ address, owner }]);
    return chosen;
  }

  release(port: number, owner: S): void {
    const list = this.ports.get(port);
    if (!list) return;
    const i = list.findIndex((b) => b.owner === owner);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.ports.delete(port);
  }

  /** The owner for a unicast datagram to `address:port`: exact address first, then the wildcard. */
  lookup(port: number, address: Ipv4Address): S | undefined {
    const list = this.ports.get(port);
    if (!list) return undefined;
    if (list.length === 1) {
      const b = list[0]!;
      return b.address === address || b.address === IPV4_UNSPECIFIED ? b.owner : undefined;
    }
    let wildcard: S | undefined;
    for (const b of list) {
      if (b.address === address) return b.owner;
      if (b.address === IPV4_UNSPECIFIED) wildcard = b.owner;
    }
    return wildcard;
  }

  /**
   * Every owner that takes a broadcast or multicast datagram to `port` sent to `address`: those
   * bound to the wildcard or to that very address (Linux's multicast delivery rule).
   */
  lookupAll(port: number, address: Ipv4Address): S[] {
    const list = this.ports.get(port);
    if (!list) return [];
    return list.filter((b) => b.address === IPV4_UNSPECIFIED || b.address === address).map((b) => b.owner);
  }

  /** Every binding, for printing. */
  entries(): { address: Ipv4Address; port: number; owner: S }[] {
    const out: { address: Ipv4Address; port: number; owner: S }[] = [];
    for (const [port, list] of this.ports) for (const b of list) out.push({ address: b.address, port, owner: b.owner });
    return out.sort((a, b) => a.port - b.port || a.address - b.address);
  }

  /**
   * A free port from the ephemeral range for `address`: start at a random point and walk up,
   * wrapping, as Linux's udp_lib_get_port does (a random start makes ports hard to guess).
   */
  private pickEphemeral(address: Ipv4Address): number {
    const span = this.high - this.low + 1;
    const start = Math.floor(this.random() * span) % span;
    for (let i = 0; i < span; i++) {
      const port = this.low + ((start + i) % span);
      if (this.isFree(port, address)) return port;
    }
    throw new UdpSocketError('EAGAIN', `every ephemeral port ${this.low}-${this.high} is in use`);
  }
}
