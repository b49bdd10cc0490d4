/**
 * A second opinion on what the codecs write: every kind of message the stack can emit (RFC 4443
 * messages, NDP with every option, MLDv2 behind its hop-by-hop router alert, fragments) goes into
 * a pcap, and Wireshark's dissectors (tshark) must find every checksum good, nothing malformed,
 * and the fields we meant. Needs tshark only (no root, no namespace: nothing is sent anywhere).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fragmentIpv6, IpNextHeader, Ipv6Repr, routerAlertHopByHop } from '@tapstack/ipv6';
import { buildEthernetFrame, EtherType, Ipv6Address, ipv6, MacAddress, PcapWriter } from '@tapstack/link';
import { MldQueryRepr, MldReportRepr } from '../src/mld.ts';
import { NdiscRepr, type NdiscRepr as NdiscReprType } from '../src/ndisc.ts';
import { Icmpv6Repr, type Icmpv6Repr as Icmpv6ReprType } from '../src/packet.ts';

const MAC_A = MacAddress.parse('02:00:00:00:0a:01');
const MAC_B = MacAddress.parse('02:00:00:00:0b:02');
const A = ipv6('fd00:10::1');
const B = ipv6('fd00:10::2');
const LL_A = ipv6('fe80::ff:fe00:a01');
const LL_B = ipv6('fe80::ff:fe00:b02');

function frame(source: Ipv6Address, destination: Ipv6Address, nextHeader: number, hopLimit: number, payload: Uint8Array): Uint8Array {
  const ip = Ipv6Repr.build({ source, destination, nextHeader, hopLimit, trafficClass: 0, flowLabel: 0 }, payload);
  const mac = destination.isMulticast ? destination.multicastMac() : MAC_B;
  return buildEthernetFrame({ destination: mac, source: MAC_A, etherType: EtherType.IPV6 }, ip);
}
const icmp = (repr: Icmpv6ReprType, source = A, destination = B) => frame(source, destination, 58, 64, Icmpv6Repr.build(repr, source, destination));
const ndisc = (repr: NdiscReprType, source: Ipv6Address, destination: Ipv6Address) => frame(source, destination, 58, 255, NdiscRepr.build(repr, source, destination));

const echo = Icmpv6Repr.build({ kind: 'echo-request', identifier: 5, sequence: 1, data: new Uint8Array(56).fill(7) }, A, B);
const invoking = Ipv6Repr.build({ source: A, destination: B, nextHeader: 58, hopLimit: 64, trafficClass: 0, flowLabel: 0 }, echo);

const frames: { name: string; bytes: Uint8Array }[] = [
  { name: 'echo request', bytes: frame(A, B, 58, 64, echo) },
  { name: 'echo reply', bytes: icmp({ kind: 'echo-reply', identifier: 5, sequence: 1, data: new Uint8Array(3) }, B, A) },
  { name: 'port unreachable', bytes: icmp({ kind: 'destination-unreachable', code: 4, invoking }, B, A) },
  { name: 'packet too big', bytes: icmp({ kind: 'packet-too-big', mtu: 1280, invoking }, B, A) },
  { name: 'time exceeded', bytes: icmp({ kind: 'time-exceeded', code: 1, invoking }, B, A) },
  { name: 'parameter problem', bytes: icmp({ kind: 'parameter-problem', code: 1, pointer: 6, invoking }, B, A) },
  { name: 'RS', bytes: ndisc({ kind: 'router-solicitation', options: [{ kind: 'source-link-layer-address', address: MAC_A }] }, LL_A, Ipv6Address.ALL_ROUTERS) },
  {
    name: 'RA',
    bytes: ndisc(
      {
        kind: 'router-advertisement',
        curHopLimit: 64,
        managed: true,
        otherConfig: true,
        otherFlags: 0,
        routerLifetime: 1800,
        reachableTime: 30000,
        retransTimer: 1000,
        options: [
          { kind: 'source-link-layer-address', address: MAC_A },
          { kind: 'mtu', mtu: 1500 },
          { kind: 'prefix-information', prefixLength: 64, onLink: true, autonomous: true, otherFlags: 0, validLifetime: 86400, preferredLifetime: 14400, prefix: ipv6('fd00:10::') },
        ],
      },
      LL_A,
      Ipv6Address.ALL_NODES,
    ),
  },
  { name: 'NS', bytes: ndisc({ kind: 'neighbor-solicitation', target: B, options: [{ kind: 'source-link-layer-address', address: MAC_A }] }, A, B.solicitedNode()) },
  { name: 'DAD NS', bytes: ndisc({ kind: 'neighbor-solicitation', target: B, options: [] }, Ipv6Address.UNSPECIFIED, B.solicitedNode()) },
  { name: 'NA', bytes: ndisc({ kind: 'neighbor-advertisement', router: false, solicited: true, override: true, target: B, options: [{ kind: 'target-link-layer-address', address: MAC_B }] }, B, A) },
  {
    name: 'redirect',
    bytes: ndisc(
      { kind: 'redirect', target: LL_B, destination: ipv6('fd00:20::5'), options: [{ kind: 'target-link-layer-address', address: MAC_B }, { kind: 'redirected-header', packet: invoking.subarray(0, 96) }] },
      LL_A,
      A,
    ),
  },
  {
    name: 'MLDv2 report',
    bytes: (() => {
      const report = MldReportRepr.build(MldReportRepr.join([B.solicitedNode(), LL_B.solicitedNode()]), LL_B, Ipv6Address.ALL_MLDV2_ROUTERS);
      const payload = new Uint8Array(8 + report.length);
      payload.set(routerAlertHopByHop(), 0);
      payload.set(report, 8);
      return frame(LL_B, Ipv6Address.ALL_MLDV2_ROUTERS, IpNextHeader.HOP_BY_HOP, 1, payload);
    })(),
  },
  {
    name: 'MLDv2 query',
    bytes: frame(LL_A, Ipv6Address.ALL_NODES, 58, 1, MldQueryRepr.build({ version: 2, maxResponseCode: 10000, multicastAddress: Ipv6Address.UNSPECIFIED, suppressRouterProcessing: false, robustness: 2, queryIntervalCode: 125, sources: [] }, LL_A, Ipv6Address.ALL_NODES)),
  },
];
// a 4008-byte echo in three fragments, then its reassembly by tshark
const bigEcho = Icmpv6Repr.build({ kind: 'echo-request', identifier: 9, sequence: 2, data: new Uint8Array(4000).fill(0x61) }, A, B);
fragmentIpv6({ source: A, destination: B, nextHeader: 58, hopLimit: 64, trafficClass: 0, flowLabel: 0 }, bigEcho, 1500, 0x1234, { headroom: 14 }).forEach((f, i) => {
  f.set(buildEthernetFrame({ destination: MAC_B, source: MAC_A, etherType: EtherType.IPV6 }, new Uint8Array(0)), 0);
  frames.push({ name: `fragment ${i}`, bytes: f });
});

const dir = mkdtempSync(join(tmpdir(), 'tapstack-icmpv6-tshark-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tshark(file: string, fields: string[]): string[][] {
  const out = execFileSync('tshark', ['-r', file, '-o', 'ipv6.defragment:TRUE', '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return out.trimEnd().split('\n').map((l) => l.split('|'));
}

describe('tshark reads what the ICMPv6 codecs write', () => {
  const file = join(dir, 'ours.pcap');
  const writer = new PcapWriter(file);
  for (const f of frames) writer.write(f.bytes, 1_000_000);
  writer.close();

  it('every checksum good, nothing malformed, no expert errors', () => {
    const rows = tshark(file, ['frame.number', 'icmpv6.type', 'icmpv6.checksum.status', '_ws.malformed', '_ws.expert.severity']);
    expect(rows).toHaveLength(frames.length);
    rows.forEach((row, i) => {
      const [, type, status, malformed, severity] = row;
      const name = frames[i]!.name;
      if (name.startsWith('fragment') && name !== 'fragment 2') return; // the message is decoded at the last fragment
      expect(type, name).not.toBe('');
      // The message's own checksum is good (1); one quoted in an error is left unverified (2), never bad (0).
      expect(status!.split(',')[0], name).toBe('1');
      expect(status!.split(','), name).not.toContain('0');
      expect(malformed, name).toBe('');
      // 8388608 is PI_ERROR (0x00800000); warnings (0x00600000) are allowed, e.g. for a deprecated flag
      expect((severity ?? '').split(',').filter((s) => Number(s) >= 0x00800000), name).toEqual([]);
    });
  });

  it('decodes the fields we meant', () => {
    const rows = tshark(file, [
      'icmpv6.nd.ns.target_address',
      'icmpv6.nd.na.flag.s',
      'icmpv6.nd.ra.router_lifetime',
      'icmpv6.opt.prefix',
      'icmpv6.opt.mtu',
      'icmpv6.mldr.nb_mcast_records',
      'icmpv6.mtu',
      'icmpv6.pointer',
      'ipv6.hopopts.len',
      'icmpv6.echo.sequence_number',
    ]);
    const at = (name: string) => rows[frames.findIndex((f) => f.name === name)]!;
    expect(at('NS')[0]).toBe('fd00:10::2');
    expect(at('DAD NS')[0]).toBe('fd00:10::2');
    expect(at('NA')[1]).toBe('1');
    expect(at('RA')[2]).toBe('1800');
    expect(at('RA')[3]).toBe('fd00:10::');
    expect(at('RA')[4]).toBe('1500');
    expect(at('MLDv2 report')[5]).toBe('2');
    expect(at('packet too big')[6]).toBe('1280');
    expect(at('parameter problem')[7]).toBe('6');
    expect(at('MLDv2 report')[8]).toBe('0');
    expect(at('fragment 2')[9]).toBe('2');
  });
});
