/**
 * Network input is hostile: random bytes, truncations and bit flips of the Linux frames go
 * through every view, Repr and validator of the IPv6 wire packages. None may throw; each
 * answers with a value or a reason.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Ipv6FragmentRepr, Ipv6OptionsHeaderRepr, Ipv6Packet, walkExtensionHeaders } from '@tapstack/ipv6';
import { ipv6 } from '@tapstack/link';
import { allIpv6Frames } from '../../ipv6/test/fixtures.ts';
import { formatIcmpv6, formatIpv6Datagram } from '../src/format.ts';
import { MldQueryRepr, MldReportRepr, validateMld } from '../src/mld.ts';
import { parseNdiscOptions } from '../src/ndisc-option.ts';
import { NdiscRepr, validateNdisc } from '../src/ndisc.ts';
import { Icmpv6Packet, Icmpv6Repr } from '../src/packet.ts';

const A = ipv6('fe80::1');
const B = ipv6('ff02::1');

/** Every view over the bytes as an IPv6 packet, and over them as an ICMPv6 message; returns how many gave a reason. */
function throughEverything(bytes: Uint8Array): number {
  let reasons = 0;
  const ip = Ipv6Packet.check(bytes);
  if (ip.ok) {
    const walk = walkExtensionHeaders(ip.value);
    if (walk.kind === 'error') reasons++;
    ip.value.source.toString();
  } else reasons++;
  const header = Ipv6Packet.checkHeader(bytes);
  if (!header.ok) reasons++;
  if (!Ipv6FragmentRepr.parse(bytes, 0).ok) reasons++;
  if (!Ipv6OptionsHeaderRepr.parse(bytes).ok) reasons++;
  if (!parseNdiscOptions(bytes).ok) reasons++;
  formatIpv6Datagram(bytes);
  formatIcmpv6(bytes, A, B);
  const icmp = Icmpv6Packet.check(bytes);
  if (!icmp.ok) return reasons + 1;
  const p = icmp.value;
  for (const r of [
    Icmpv6Repr.parse(p),
    NdiscRepr.parse(p),
    MldReportRepr.parse(p),
    MldQueryRepr.parse(p),
    validateNdisc(p, { source: A, destination: B, hopLimit: 255 }),
    validateNdisc(p, { source: ipv6('::'), destination: B, hopLimit: 255, firstHopRouterFor: () => A }),
  ]) {
    if (!r.ok) reasons++;
    expect(typeof (r.ok ? r.value : r.reason)).not.toBe('undefined');
  }
  validateMld(p, { source: A, destination: B, hopLimit: 1, routerAlert: 0 });
  return reasons;
}

describe('hostile input through every IPv6/ICMPv6 view', () => {
  it('random bytes never throw', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => void throughEverything(bytes)), { numRuns: 2000 });
  });

  it('random ICMPv6 messages of every NDP/MLD type never throw', () => {
    fc.assert(
      fc.property(fc.constantFrom(1, 2, 3, 4, 128, 129, 130, 133, 134, 135, 136, 137, 143), fc.uint8Array({ maxLength: 120 }), (type, rest) => {
        const bytes = new Uint8Array(1 + rest.length);
        bytes[0] = type;
        bytes.set(rest, 1);
        throughEverything(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it('every truncation of every Linux frame gives a value or a reason, never an exception', () => {
    let refused = 0;
    for (const f of allIpv6Frames()) {
      // every length through the headers, then every 13th (the long echo data holds no structure)
      for (let n = 0; n < f.packet.length; n += n < 160 ? 1 : 13) {
        refused += throughEverything(f.packet.subarray(0, n)) > 0 ? 1 : 0;
        const icmpStart = f.packet[6] === 0 ? 48 : 40;
        if (n > icmpStart) throughEverything(f.packet.subarray(icmpStart, n));
      }
    }
    expect(refused).toBeGreaterThan(1000);
  });

  it('bit flips in the Linux frames never throw', () => {
    const frames = allIpv6Frames();
    fc.assert(
      fc.property(fc.nat({ max: frames.length - 1 }), fc.nat(), fc.nat({ max: 7 }), (which, at, bit) => {
        const bytes = frames[which]!.packet.slice();
        bytes[at % bytes.length] = bytes[at % bytes.length]! ^ (1 << bit);
        throughEverything(bytes);
        throughEverything(bytes.subarray(40));
      }),
      { numRuns: 2000 },
    );
  });
});
