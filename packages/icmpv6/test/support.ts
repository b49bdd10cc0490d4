/** Test helpers: the ICMPv6 messages of the Linux IPv6 captures, with the addresses and hop limit their IPv6 header gave. */
import { Ipv6Packet } from '@tapstack/ipv6';
import type { Ipv6Address } from '@tapstack/link';
import { allIpv6Frames } from '../../ipv6/test/fixtures.ts';

export interface FixtureMessage {
  readonly name: string;
  readonly source: Ipv6Address;
  readonly destination: Ipv6Address;
  readonly hopLimit: number;
  /** The ICMPv6 message. */
  readonly icmp: Uint8Array;
}

/**
 * Every unfragmented ICMPv6 message in the captures. A hop-by-hop header (MLD's router alert) is
 * stepped over by its length field alone: the walker has its own tests.
 */
export function fixtureIcmpv6Messages(): FixtureMessage[] {
  const out: FixtureMessage[] = [];
  for (const f of allIpv6Frames()) {
    const checked = Ipv6Packet.check(f.packet);
    if (!checked.ok) throw new Error(`${f.file} #${f.index}: ${checked.reason}`);
    const p = checked.value;
    let next = p.nextHeader;
    let payload = p.payload;
    if (next === 0) {
      next = payload[0]!;
      payload = payload.subarray((payload[1]! + 1) * 8);
    }
    if (next !== 58) continue;
    out.push({ name: `${f.file} #${f.index}`, source: p.source, destination: p.destination, hopLimit: p.hopLimit, icmp: payload });
  }
  return out;
}
