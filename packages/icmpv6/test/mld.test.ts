import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Ipv6Address, ipv6 } from '@tapstack/link';
import { hex } from '../../../test/support/fixtures.ts';
import { formatIcmpv6 } from '../src/format.ts';
import { MldQueryRepr, MldRecordType, MldReportRepr, mldMaxResponseDelayMs, mldQueryIntervalSeconds, validateMld } from '../src/mld.ts';
import { Icmpv6Packet, Icmpv6Type } from '../src/packet.ts';
import { fixtureIcmpv6Messages } from './support.ts';

const LL_B = ipv6('fe80::ff:fe00:b02');
const ROUTERS = Ipv6Address.ALL_MLDV2_ROUTERS;

/** linux-ipv6-dad-mld-rs.pcap: fe80::ff:fe00:b02 joins ff02::1:ff00:2 and ff02::1:ff00:b02 (two to_ex records, no sources). */
const REPORT = hex(`
  8f00 59e9 0000 0002 0400 0000 ff02 0000 0000 0000 0000 0001 ff00 0002 0400 0000
  ff02 0000 0000 0000 0000 0001 ff00 0b02`);
/** A general MLDv2 query from fe80::1 to ff02::1: max response 10000 ms, QRV 2, QQIC 125; checksum 0x5696 from an independent script. */
const QUERY_V2 = hex('8200 5696 2710 0000 0000 0000 0000 0000 0000 0000 0000 0000 027d 0000');
/** The same as an MLDv1 query (24 bytes); checksum 0x5917. */
const QUERY_V1 = hex('8200 5917 2710 0000 0000 0000 0000 0000 0000 0000 0000 0000');

describe('MLDv2 report (RFC 3810 5.2)', () => {
  it('parses the kernel report and re-emits it byte for byte', () => {
    const r = MldReportRepr.parse(new Icmpv6Packet(REPORT));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.records.map((x) => [x.type, x.multicastAddress.toString(), x.sources.length])).toEqual([
      [MldRecordType.CHANGE_TO_EXCLUDE_MODE, 'ff02::1:ff00:2', 0],
      [MldRecordType.CHANGE_TO_EXCLUDE_MODE, 'ff02::1:ff00:b02', 0],
    ]);
    expect(MldReportRepr.build(r.value, LL_B, ROUTERS)).toEqual(REPORT);
  });

  it('join() builds what Linux sends when it joins groups', () => {
    const groups = [ipv6('fd00:10::2').solicitedNode(), LL_B.solicitedNode()];
    expect(MldReportRepr.build(MldReportRepr.join(groups), LL_B, ROUTERS)).toEqual(REPORT);
    const leave = MldReportRepr.leave(groups);
    expect(leave.records.every((x) => x.type === MldRecordType.CHANGE_TO_INCLUDE_MODE && x.sources.length === 0)).toBe(true);
  });

  it('every report in the captures parses, validates and re-emits byte for byte', () => {
    const reports = fixtureIcmpv6Messages().filter((m) => m.icmp[0] === Icmpv6Type.MULTICAST_LISTENER_REPORT_V2);
    expect(reports.length).toBeGreaterThan(10);
    expect(Math.max(...reports.map((m) => (m.icmp[6]! << 8) | m.icmp[7]!))).toBe(5);
    for (const m of reports) {
      const packet = new Icmpv6Packet(m.icmp);
      expect(validateMld(packet, m), m.name).toBeUndefined();
      const r = MldReportRepr.parse(packet);
      if (!r.ok) throw new Error(`${m.name}: ${r.reason}`);
      expect(MldReportRepr.build(r.value, m.source, m.destination), m.name).toEqual(m.icmp);
    }
  });

  it('refuses records that run past the end, by reason', () => {
    expect(MldReportRepr.parse(new Icmpv6Packet(REPORT.subarray(0, 40)))).toEqual({ ok: false, reason: 'truncated_record' });
    const manySources = REPORT.slice();
    manySources[11] = 1; // first record claims one source
    expect(MldReportRepr.parse(new Icmpv6Packet(manySources.subarray(0, 44)))).toEqual({ ok: false, reason: 'truncated_record' });
  });

  it('emit then parse gives the same records (property)', () => {
    const address = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Ipv6Address.fromBytes(b));
    const record = fc.record({
      type: fc.integer({ min: 1, max: 6 }),
      multicastAddress: address,
      sources: fc.array(address, { maxLength: 3 }),
      auxData: fc.nat({ max: 3 }).map((n) => new Uint8Array(n * 4)),
    });
    fc.assert(
      fc.property(fc.array(record, { maxLength: 4 }), (records) => {
        const bytes = MldReportRepr.build({ records }, LL_B, ROUTERS);
        const r = MldReportRepr.parse(new Icmpv6Packet(bytes));
        expect(r.ok && MldReportRepr.build(r.value, LL_B, ROUTERS)).toEqual(bytes);
      }),
    );
  });
});

describe('MLD query (RFC 3810 5.1, RFC 2710)', () => {
  it('parses an MLDv2 general query and an MLDv1 one, told apart by length', () => {
    const v2 = MldQueryRepr.parse(new Icmpv6Packet(QUERY_V2));
    expect(v2.ok && v2.value).toMatchObject({ version: 2, maxResponseCode: 10000, robustness: 2, queryIntervalCode: 125, suppressRouterProcessing: false, sources: [] });
    expect(v2.ok && v2.value.multicastAddress.isUnspecified).toBe(true);
    if (v2.ok) expect(MldQueryRepr.build(v2.value, ipv6('fe80::1'), Ipv6Address.ALL_NODES)).toEqual(QUERY_V2);
    const v1 = MldQueryRepr.parse(new Icmpv6Packet(QUERY_V1));
    expect(v1.ok && v1.value.version).toBe(1);
    if (v1.ok) expect(MldQueryRepr.build(v1.value, ipv6('fe80::1'), Ipv6Address.ALL_NODES)).toEqual(QUERY_V1);
    expect(MldQueryRepr.parse(new Icmpv6Packet(QUERY_V2.subarray(0, 26)))).toEqual({ ok: false, reason: 'bad_length' });
    expect(MldQueryRepr.parse(new Icmpv6Packet(QUERY_V2.subarray(0, 20)))).toEqual({ ok: false, reason: 'too_short' });
    expect(validateMld(new Icmpv6Packet(QUERY_V2), { source: ipv6('fe80::1'), destination: Ipv6Address.ALL_NODES, hopLimit: 1, routerAlert: 0 })).toBeUndefined();
    expect(validateMld(new Icmpv6Packet(QUERY_V2), { source: ipv6('fe80::1'), destination: Ipv6Address.ALL_NODES, hopLimit: 2, routerAlert: 0 })).toBe('bad_hop_limit');
    expect(validateMld(new Icmpv6Packet(QUERY_V2), { source: ipv6('fd00:10::1'), destination: Ipv6Address.ALL_NODES, hopLimit: 1, routerAlert: 0 })).toBe('source_not_link_local');
    // RFC 2710 3, RFC 3810 5 and 5.1.14: without the router alert (or with another value than MLD's 0) it is refused
    expect(validateMld(new Icmpv6Packet(QUERY_V2), { source: ipv6('fe80::1'), destination: Ipv6Address.ALL_NODES, hopLimit: 1, routerAlert: undefined })).toBe('no_router_alert');
    expect(validateMld(new Icmpv6Packet(QUERY_V2), { source: ipv6('fe80::1'), destination: Ipv6Address.ALL_NODES, hopLimit: 1, routerAlert: 1 })).toBe('no_router_alert');
  });

  it('decodes the floating-point codes', () => {
    expect(mldMaxResponseDelayMs(10000)).toBe(10000);
    // exponent 0, mantissa 0: (0x1000) << 3
    expect(mldMaxResponseDelayMs(0x8000)).toBe(0x1000 * 8);
    expect(mldMaxResponseDelayMs(0xffff)).toBe(0x1fff * 2 ** 10);
    expect(mldQueryIntervalSeconds(125)).toBe(125);
    expect(mldQueryIntervalSeconds(0x80)).toBe(0x10 << 3);
    expect(mldQueryIntervalSeconds(0xff)).toBe(0x1f << 10);
  });

  it('trace lines', () => {
    expect(formatIcmpv6(REPORT, LL_B, ROUTERS)).toBe(
      'ICMP6, multicast listener report v2, 2 group record(s) [gaddr ff02::1:ff00:2 to_ex, 0 source(s)] [gaddr ff02::1:ff00:b02 to_ex, 0 source(s)], length 48',
    );
    expect(formatIcmpv6(QUERY_V2)).toBe('ICMP6, multicast listener query v2, general, max resp delay 10000ms, length 28');
  });
});
