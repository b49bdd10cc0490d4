/**
 * Every frame of the Linux IPv6 captures (packages/ipv6/test/fixtures, made by capture.sh there)
 * through the whole decode path: the fixed header, the extension-header walker, the checksum, and
 * the Repr of its ICMPv6 type, re-emitted byte for byte; the NDP messages pass every validity
 * rule, the MLD reports theirs; fragments reassemble and their message re-emits too.
 */
import { describe, expect, it } from 'vitest';
import { IPV6_REASSEMBLY_COUNTERS, Ipv6Packet, Ipv6Reassembler, Ipv6Repr, walkExtensionHeaders } from '@tapstack/ipv6';
import { Counters, VirtualClock } from '@tapstack/link';
import { allIpv6Frames } from '../../ipv6/test/fixtures.ts';
import { MldReportRepr, validateMld } from '../src/mld.ts';
import { isNdiscType, NdiscRepr, validateNdisc } from '../src/ndisc.ts';
import { Icmpv6Packet, Icmpv6Repr, Icmpv6Type } from '../src/packet.ts';

describe('every frame of the Linux IPv6 captures', () => {
  const reassembler = new Ipv6Reassembler(new VirtualClock(), new Counters('ipv6', IPV6_REASSEMBLY_COUNTERS));
  const seen = new Map<string, number>();

  for (const f of allIpv6Frames()) {
    it(`${f.file} #${f.index}`, () => {
      const checked = Ipv6Packet.check(f.frame, { offset: 14 });
      if (!checked.ok) throw new Error(checked.reason);
      let packet = checked.value;
      const header = new Uint8Array(40);
      Ipv6Repr.emit(Ipv6Repr.parse(packet), header);
      expect(header).toEqual(f.packet.subarray(0, 40));
      let walk = walkExtensionHeaders(packet);
      if (walk.kind === 'fragment') {
        const r = reassembler.input(packet, walk);
        expect(['pending', 'complete']).toContain(r.kind);
        if (r.kind !== 'complete') return;
        packet = r.packet;
        walk = walkExtensionHeaders(packet);
      }
      if (walk.kind !== 'upper-layer') throw new Error(walk.kind);
      if (walk.nextHeader !== 58) {
        seen.set(`next header ${walk.nextHeader}`, (seen.get(`next header ${walk.nextHeader}`) ?? 0) + 1);
        return;
      }
      const bytes = packet.bytes.subarray(walk.offset);
      const icmp = Icmpv6Packet.check(bytes);
      if (!icmp.ok) throw new Error(icmp.reason);
      const p = icmp.value;
      const context = { source: packet.source, destination: packet.destination, hopLimit: packet.hopLimit };
      expect(p.verifyChecksum(packet.source, packet.destination)).toBe(true);
      let rebuilt: Uint8Array;
      if (isNdiscType(p.type)) {
        const r = validateNdisc(p, context);
        if (!r.ok) throw new Error(r.reason);
        rebuilt = NdiscRepr.build(r.value, packet.source, packet.destination);
      } else if (p.type === Icmpv6Type.MULTICAST_LISTENER_REPORT_V2) {
        expect(validateMld(p, { ...context, routerAlert: walk.routerAlert })).toBeUndefined();
        expect(walk.routerAlert).toBe(0);
        const r = MldReportRepr.parse(p);
        if (!r.ok) throw new Error(r.reason);
        rebuilt = MldReportRepr.build(r.value, packet.source, packet.destination);
      } else {
        const r = Icmpv6Repr.parse(p);
        if (!r.ok) throw new Error(r.reason);
        rebuilt = Icmpv6Repr.build(r.value, packet.source, packet.destination);
      }
      expect(rebuilt).toEqual(bytes);
      seen.set(`type ${p.type}`, (seen.get(`type ${p.type}`) ?? 0) + 1);
    });
  }

  it('covered every message kind the captures hold', () => {
    expect([...seen.keys()].sort()).toEqual(['next header 17', 'type 1', 'type 128', 'type 129', 'type 133', 'type 134', 'type 135', 'type 136', 'type 137', 'type 143', 'type 2']);
  });
});
