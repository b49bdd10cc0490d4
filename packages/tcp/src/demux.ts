/**
 * Which connection a segment belongs to: the table of connections keyed by their 4-tuple (our
 * address is the stack's one address, so remote address, remote port and local port), and the
 * table of listeners keyed by local port. Linux keeps the two as the established hash (ehash,
 * where half-open connections live too) and the listening hash (lhash); a segment is looked up
 * in the first, then the second.
 */
import type { Ipv4Address } from '@tapstack/link';

/** (local port, remote port) folded into one 32-bit key for the inner map. */
function portsKey(localPort: number, remotePort: number): number {
  return ((localPort << 16) | remotePort) >>> 0;
}

export class ConnectionTable<C> {
  private readonly byRemote = new Map<number, Map<number, C>>();
  /** How many connections use each local port (for choosing ephemeral ports). */
  private readonly localPorts = new Map<number, number>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(remoteAddress: Ipv4Address, remotePort: number, localPort: number): C | undefined {
    return this.byRemote.get(remoteAddress)?.get(portsKey(localPort, remotePort));
  }

  /** Adds a connection; false when the 4-tuple is taken. */
  add(remoteAddress: Ipv4Address, remotePort: number, localPort: number, connection: C): boolean {
    let inner = this.byRemote.get(remoteAddress);
    if (!inner) {
      inner = new Map();
      this.byRemote.set(remoteAddress, inner);
    }
    const key = portsKey(localPort, remotePort);
    if (inner.has(key)) return false;
    inner.set(key, connection);
    this.localPorts.set(localPort, (this.localPorts.get(localPort) ?? 0) + 1);
    this.count++;
    return true;
  }

  /** Removes the entry, if it is still `connection` (a newer one may have taken the tuple). */
  delete(remoteAddress: Ipv4Address, remotePort: number, localPort: number, connection: C): void {
    const inner = this.byRemote.get(remoteAddress);
    const key = portsKey(localPort, remotePort);
    if (!inner || inner.get(key) !== connection) return;
    inner.delete(key);
    const users = (this.localPorts.get(localPort) ?? 1) - 1;
    if (users === 0) this.localPorts.delete(localPort);
    else this.localPorts.set(localPort, users);
    this.count--;
    if (inner.size === 0) this.byRemote.delete(remoteAddress);
  }

  /** True when some connection uses this local port (with any peer). */
  usesLocalPort(localPort: number): boolean {
    return this.localPorts.has(localPort);
  }

  values(): C[] {
    const out: C[] = [];
    for (const inner of this.byRemote.values()) for (const c of inner.values()) out.push(c);
    return out;
  }
}
