/**
 * Which connection a segment belongs to: the table of connections keyed by their 4-tuple, and
 * (in layer.ts) the table of listeners keyed by local port. Linux keeps the two as the
 * established hash (ehash, where half-open connections live too) and the listening hash (lhash);
 * a segment is looked up in the first, then the second.
 *
 * The two families are kept apart, each keyed the cheapest way its addresses allow:
 * - IPv4: the stack has one IPv4 address, so the remote address (a number) and the two ports
 *   name a connection: a Map by remote address of Maps by the ports folded into one number. No
 *   string and no allocation per segment.
 * - IPv6: an address is 16 bytes and the stack has several (link-local, global), so the whole
 *   4-tuple counts. A 32-bit hash of both addresses and the ports picks a bucket (a short array),
 *   and the entry whose bytes match is the one; the lookup reads the addresses where they lie in
 *   the received header (source then destination, bytes 8..40), so no Ipv6Address and no text key
 *   is made per segment. The hash is seeded per table, as Linux seeds inet6_ehashfn with a
 *   secret, so that nobody off the host can aim many connections at one bucket.
 */
import type { Ipv4Address, Ipv6Address } from '@tapstack/link';
import type { TcpAddress } from './address.ts';

/** (local port, remote port) folded into one 32-bit key for the inner map. */
function portsKey(localPort: number, remotePort: number): number {
  return ((localPort << 16) | remotePort) >>> 0;
}

interface Ipv6Entry<C> {
  /** The remote address's 16 bytes, then the local one's: the order they have in a received header. */
  readonly addresses: Uint8Array;
  readonly ports: number;
  readonly connection: C;
}

/** Reads 4 bytes big-endian as a 32-bit integer. */
function word(b: Uint8Array, i: number): number {
  return (b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!;
}

/** A 32-bit mix of 16 address bytes into `h` (multiply-xorshift rounds, one per word). */
function mix16(h: number, b: Uint8Array, at: number): number {
  for (let i = at; i < at + 16; i += 4) {
    h = Math.imul(h ^ word(b, i), 0x9e3779b1);
    h ^= h >>> 15;
  }
  return h;
}

/** True when the 16 bytes at `a[aAt]` equal those at `b[bAt]`. */
function same16(a: Uint8Array, aAt: number, b: Uint8Array, bAt: number): boolean {
  for (let i = 0; i < 16; i++) if (a[aAt + i] !== b[bAt + i]) return false;
  return true;
}

export class ConnectionTable<C> {
  private readonly byRemote = new Map<number, Map<number, C>>();
  private readonly ipv6Buckets = new Map<number, Ipv6Entry<C>[]>();
  /** How many connections use each local port (for choosing ephemeral ports), both families. */
  private readonly localPorts = new Map<number, number>();
  private readonly seed: number;
  private count = 0;

  /** `random` seeds the IPv6 hash (default Math.random). */
  constructor(random: () => number = Math.random) {
    this.seed = Math.floor(random() * 0x100000000) | 0;
  }

  get size(): number {
    return this.count;
  }

  /** The IPv4 connection with this remote address and these ports (the stack has one IPv4 address). */
  get(remoteAddress: Ipv4Address, remotePort: number, localPort: number): C | undefined {
    return this.byRemote.get(remoteAddress)?.get(portsKey(localPort, remotePort));
  }

  /**
   * The IPv6 connection whose remote and local addresses are the 32 bytes at `buffer[offset]`
   * (remote first: a received header's source and destination, offset 8 of the header).
   */
  getIpv6At(buffer: Uint8Array, offset: number, remotePort: number, localPort: number): C | undefined {
    const ports = portsKey(localPort, remotePort);
    const bucket = this.ipv6Buckets.get(this.hash(buffer, offset, buffer, offset + 16, ports));
    if (!bucket) return undefined;
    for (const e of bucket) {
      if (e.ports === ports && same16(e.addresses, 0, buffer, offset) && same16(e.addresses, 16, buffer, offset + 16)) return e.connection;
    }
    return undefined;
  }

  /** The connection of this 4-tuple, of either family (for ICMP errors and port choice, not per segment). */
  find(remoteAddress: TcpAddress, remotePort: number, localPort: number, localAddress: TcpAddress): C | undefined {
    if (typeof remoteAddress === 'number') return this.get(remoteAddress, remotePort, localPort);
    if (typeof localAddress === 'number') return undefined;
    const b = new Uint8Array(32);
    b.set(remoteAddress.bytes, 0);
    b.set(localAddress.bytes, 16);
    return this.getIpv6At(b, 0, remotePort, localPort);
  }

  /** Adds a connection; false when the 4-tuple is taken. `localAddress` matters for IPv6 only. */
  add(remoteAddress: TcpAddress, remotePort: number, localPort: number, connection: C, localAddress: TcpAddress): boolean {
    if (typeof remoteAddress !== 'number') {
      if (typeof localAddress === 'number' || !this.addIpv6(remoteAddress, localAddress, portsKey(localPort, remotePort), connection)) return false;
    } else {
      let inner = this.byRemote.get(remoteAddress);
      if (!inner) {
        inner = new Map();
        this.byRemote.set(remoteAddress, inner);
      }
      const key = portsKey(localPort, remotePort);
      if (inner.has(key)) return false;
      inner.set(key, connection);
    }
    this.localPorts.set(localPort, (this.localPorts.get(localPort) ?? 0) + 1);
    this.count++;
    return true;
  }

  /** Removes the entry, if it is still `connection` (a newer one may have taken the tuple). */
  delete(remoteAddress: TcpAddress, remotePort: number, localPort: number, connection: C, localAddress: TcpAddress): void {
    if (typeof remoteAddress !== 'number') {
      if (typeof localAddress === 'number' || !this.deleteIpv6(remoteAddress, localAddress, portsKey(localPort, remotePort), connection)) return;
    } else {
      const inner = this.byRemote.get(remoteAddress);
      const key = portsKey(localPort, remotePort);
      if (!inner || inner.get(key) !== connection) return;
      inner.delete(key);
      if (inner.size === 0) this.byRemote.delete(remoteAddress);
    }
    const users = (this.localPorts.get(localPort) ?? 1) - 1;
    if (users === 0) this.localPorts.delete(localPort);
    else this.localPorts.set(localPort, users);
    this.count--;
  }

  /** True when some connection uses this local port (with any peer, either family). */
  usesLocalPort(localPort: number): boolean {
    return this.localPorts.has(localPort);
  }

  values(): C[] {
    const out: C[] = [];
    for (const inner of this.byRemote.values()) for (const c of inner.values()) out.push(c);
    for (const bucket of this.ipv6Buckets.values()) for (const e of bucket) out.push(e.connection);
    return out;
  }

  private hash(remote: Uint8Array, remoteAt: number, local: Uint8Array, localAt: number, ports: number): number {
    let h = Math.imul(this.seed ^ ports, 0x85ebca6b);
    h = mix16(h, remote, remoteAt);
    h = mix16(h, local, localAt);
    return (h ^ (h >>> 13)) >>> 0;
  }

  private addIpv6(remote: Ipv6Address, local: Ipv6Address, ports: number, connection: C): boolean {
    const h = this.hash(remote.bytes, 0, local.bytes, 0, ports);
    let bucket = this.ipv6Buckets.get(h);
    if (!bucket) {
      bucket = [];
      this.ipv6Buckets.set(h, bucket);
    }
    for (const e of bucket) if (e.ports === ports && same16(e.addresses, 0, remote.bytes, 0) && same16(e.addresses, 16, local.bytes, 0)) return false;
    const addresses = new Uint8Array(32);
    addresses.set(remote.bytes, 0);
    addresses.set(local.bytes, 16);
    bucket.push({ addresses, ports, connection });
    return true;
  }

  private deleteIpv6(remote: Ipv6Address, local: Ipv6Address, ports: number, connection: C): boolean {
    const h = this.hash(remote.bytes, 0, local.bytes, 0, ports);
    const bucket = this.ipv6Buckets.get(h);
    if (!bucket) return false;
    const i = bucket.findIndex((e) => e.connection === connection && e.ports === ports);
    if (i < 0) return false;
    bucket.splice(i, 1);
    if (bucket.length === 0) this.ipv6Buckets.delete(h);
    return true;
  }
}
