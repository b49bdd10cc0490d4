/** Test helpers: the ICMPv6 messages of the Linux IPv6 captures, with the addresses and hop limit their IPv6 header gave. */
import { Ipv6Packet, walkExtensionHeaders } from '@tapstack/ipv6';
import type { Ipv6Address } from '@tapstack/link';
import { allIpv6Frames } from '../../ipv6/test/fixtures.ts';

export interface FixtureMessage {
  readonly name: string;
  readonly source: Ipv6Address;
  readonly destination: Ipv6Address;
  readonly hopLimit: number;
  /** The router alert value of its hop-by-hop header (0 on MLD), undefined without one. */
  readonly routerAlert: number | undefined;
  /** The ICMPv6 message. */
  readonly icmp: Uint8Array;
}

/**
 * Every unfragmented ICMPv6 message in the captures, behind whatever extension headers the
 * walker steps over (MLD's hop-by-hop header with the router alert).
 */
export function fixtureIcmpv6Messages(): FixtureMessage[] {
  const out: FixtureMessage[] = [];
  for (const f of allIpv6Frames()) {
    const checked = Ipv6Packet.check(f.packet);
    if (!checked.ok) throw new Error(`${f.file} #${f.index}: ${checked.reason}`);
    const p = checked.value;
    const walk = walkExtensionHeaders(p);
    if (walk.kind !== 'upper-layer' || walk.nextHeader !== 58) continue;
    const icmp = p.bytes.subarray(walk.offset);
    out.push({ name: `${f.file} #${f.index}`, source: p.source, destination: p.destination, hopLimit: p.hopLimit, routerAlert: walk.routerAlert, icmp });
  }
  return out;
}
