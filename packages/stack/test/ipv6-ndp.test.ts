/**
 * The parts of NDP and MLD a router or a querier drives, against one whole stack on an in-memory
 * wire with a virtual clock; the other end is a raw host that sends frames built byte by byte or
 * with the codecs: MLDv2 queries answered (RFC 3810 6.2, 6.3), a router advertisement's link
 * parameters applied (RFC 4861 6.3.4), redirects validated and applied (RFC 4861 8.1, 8.3), and
 * DAD probes carrying a nonce (RFC 7527).
 */
import { describe, expect, it } from 'vitest';
import { EtherType, Ipv6Address, MacAddress, MemoryLink, VirtualClock, buildEthernetFrame, ipv6, seededRandom } from '@tapstack/link';
import { Ipv6Packet, Ipv6Repr, routerAlertHopByHop } from '@tapstack/ipv6';
import { Icmpv6Packet, MldQueryRepr, MldReportRepr, NdiscRepr, ndiscOptionsSummary, type NdiscOption } from '@tapstack/icmpv6';
import { MAX_REDIRECTS, type Ipv6NextHop } from '@tapstack/ipv6';
import { createStack } from '@tapstack/stack';

const MAC_A = MacAddress.parse('02:00:00:00:00:01');
const MAC_B = MacAddress.parse('02:00:00:00:00:02');
const ROUTER = ipv6('fe80::1');
const OUR_LL = Ipv6Address.linkLocalFromMac(MAC_A); // fe80::ff:fe00:1
const ALL_NODES_MAC = MacAddress.parse('33:33:00:00:00:01');

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));
}

function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** One stack (fd00:10::1/64, no start-up jitter) and a raw host at the other end of the wire. */
function withRawPeer(options: { dad?: boolean } = {}) {
  const clock = new VirtualClock();
  const [ours, raw] = MemoryLink.pair({ clock, latencyMs: 0, macs: [MAC_A, MAC_B] });
  const stack = createStack({ link: ours, ip: '10.0.0.1/24', clock, random: seededRandom(7), ipv6: { addresses: ['fd00:10::1/64'], ndp: { delays: false, dad: options.dad ?? false } } });
  const received: Uint8Array[] = [];
  raw.setReceiver((frames) => received.push(...frames));
  /** Sends an IPv6 packet; `payload` starts with a hop-by-hop header when nextHeader is 0. */
  const send = (destinationMac: MacAddress, source: Ipv6Address, destination: Ipv6Address, hopLimit: number, payload: Uint8Array, nextHeader = 58): void => {
    const ip = Ipv6Repr.build({ source, destination, nextHeader, hopLimit, trafficClass: 0, flowLabel: 0 }, payload);
    raw.send(buildEthernetFrame({ destination: destinationMac, source: MAC_B, etherType: EtherType.IPV6 }, ip));
    clock.advance(1);
  };
  /** An MLD query as a querier sends it: hop limit 1, behind a router alert. */
  const query = (destination: Ipv6Address, icmp: Uint8Array, options: { hopLimit?: number; source?: Ipv6Address } = {}): void => {
    const payload = new Uint8Array(8 + icmp.length);
    payload.set(routerAlertHopByHop());
    payload.set(icmp, 8);
    send(destination.multicastMac(), options.source ?? ROUTER, destination, options.hopLimit ?? 1, payload, 0);
  };
  /** The IPv6 packets the stack sent since the last call. */
  let seen = 0;
  const sentPackets = (): Ipv6Packet[] => {
    const out = received.slice(seen).filter((f) => f[12] === 0x86 && f[13] === 0xdd).map((f) => new Ipv6Packet(f.subarray(14)));
    seen = received.length;
    return out;
  };
  /** The ICMPv6 message of a packet (after the 8-byte router alert header when there is one). */
  const icmpOf = (p: Ipv6Packet): Uint8Array => p.bytes.subarray(p.nextHeader === 0 ? 48 : 40, 40 + p.payloadLength);
  return { clock, stack, raw, send, query, sentPackets, icmpOf, received };
}

/** A route lookup as text: `router fe80::1`. */
function hop(h: Ipv6NextHop): string {
  return h.kind === 'none' ? 'none' : `${h.kind} ${h.nextHop}`;
}

function routerAdvertisement(fields: { curHopLimit?: number; reachableTime?: number; retransTimer?: number; lifetime?: number; options?: NdiscOption[] }): Uint8Array {
  return NdiscRepr.build(
    {
      kind: 'router-advertisement',
      curHopLimit: fields.curHopLimit ?? 0,
      managed: false,
      otherConfig: false,
      otherFlags: 0,
      routerLifetime: fields.lifetime ?? 1800,
      reachableTime: fields.reachableTime ?? 0,
      retransTimer: fields.retransTimer ?? 0,
      options: [{ kind: 'source-link-layer-address', address: MAC_B }, ...(fields.options ?? [])],
    },
    ROUTER,
    Ipv6Address.ALL_NODES,
  );
}

describe('MLDv2 queries (RFC 3810 6.2, 6.3)', () => {
  // A general query from fe80::1 to ff02::1 as bytes: type 130, maximum response code 1000 (ms),
  // group ::, QRV 2, QQIC 125, no sources (checksum worked out by hand over the pseudo-header).
  const GENERAL_QUERY = hex('820079be03e8000000000000000000000000000000000000027d0000');

  it('a general query gets one report, within the maximum response delay, naming every group we are in: the literal bytes', () => {
    const { clock, stack, query, sentPackets, icmpOf } = withRawPeer();
    stack.start();
    clock.advance(5000);
    sentPackets(); // the unsolicited reports and router solicitations of the start
    query(Ipv6Address.ALL_NODES, GENERAL_QUERY);
    query(Ipv6Address.ALL_NODES, GENERAL_QUERY); // a second one folds into the pending answer
    clock.advance(1000);
    const reports = sentPackets().filter((p) => p.nextHeader === 0);
    expect(reports).toHaveLength(1);
    const r = reports[0]!;
    expect([r.source.toString(), r.destination.toString(), r.hopLimit]).toEqual([OUR_LL.toString(), 'ff02::16', 1]);
    // the router alert (RFC 2711) first, then one MODE_IS_EXCLUDE record for ff02::1:ff00:1 (the
    // solicited-node group of both fd00:10::1 and fe80::ff:fe00:1); ff02::1 is never reported
    expect(toHex(r.bytes.subarray(40, 48))).toBe('3a00050200000100');
    expect(toHex(icmpOf(r))).toBe('8f0074070000000102000000ff0200000000000000000001ff000001');
    expect(stack.ndp!.counters.get('rx_mld_general_queries')).toBe(2);
    stack.close();
  });

  it('a query without the router alert (RFC 2710 3, RFC 3810 5.1.14), or with a value other than MLD\'s 0, is dropped and counted; with it, answered', () => {
    const { clock, stack, send, query, sentPackets } = withRawPeer();
    stack.start();
    clock.advance(5000);
    sentPackets();
    // the same query straight after the fixed header, no hop-by-hop header at all
    send(Ipv6Address.ALL_NODES.multicastMac(), ROUTER, Ipv6Address.ALL_NODES, 1, GENERAL_QUERY);
    // behind a hop-by-hop header whose router alert says RSVP (1, RFC 2711 2.1), not MLD
    const rsvp = new Uint8Array(8 + GENERAL_QUERY.length);
    rsvp.set(hex('3a00050200010100'));
    rsvp.set(GENERAL_QUERY, 8);
    send(Ipv6Address.ALL_NODES.multicastMac(), ROUTER, Ipv6Address.ALL_NODES, 1, rsvp, 0);
    clock.advance(2000);
    expect(sentPackets().filter((p) => p.nextHeader === 0)).toHaveLength(0);
    expect(stack.ndp!.counters.get('rx_mld_no_router_alert')).toBe(2);
    expect(stack.ndp!.counters.get('rx_mld_general_queries')).toBe(0);
    query(Ipv6Address.ALL_NODES, GENERAL_QUERY);
    clock.advance(1000);
    const reports = sentPackets().filter((p) => p.nextHeader === 0);
    expect(reports).toHaveLength(1);
    expect(toHex(reports[0]!.bytes.subarray(40, 48))).toBe('3a00050200000100');
    expect(stack.ndp!.counters.get('rx_mld_no_router_alert')).toBe(2);
    stack.close();
  });

  it('the answer waits a random time below the maximum response delay; a joined group is in it, after the solicited-node group', () => {
    const { clock, stack, query, sentPackets, icmpOf } = withRawPeer();
    stack.start();
    clock.advance(5000);
    stack.ipv6!.addresses.join(ipv6('ff02::fb'));
    clock.advance(3000);
    sentPackets();
    // maximum response code 10000: 10 s
    query(Ipv6Address.ALL_NODES, MldQueryRepr.build({ version: 2, maxResponseCode: 10_000, multicastAddress: Ipv6Address.UNSPECIFIED, suppressRouterProcessing: false, robustness: 2, queryIntervalCode: 125, sources: [] }, ROUTER, Ipv6Address.ALL_NODES));
    let at = -1;
    let report: Uint8Array | undefined;
    for (let t = 0; t < 10_000 && report === undefined; t += 10) {
      clock.advance(10);
      report = sentPackets().find((p) => p.nextHeader === 0 && icmpOf(p)[0] === 143)?.bytes.slice(48);
      at = t;
    }
    expect(report).toBeDefined();
    expect(at).toBeLessThan(10_000);
    expect(toHex(report!)).toBe('8f0071f40000000202000000ff0200000000000000000001ff00000102000000ff0200000000000000000000000000fb');
    clock.advance(20_000);
    expect(sentPackets().filter((p) => p.nextHeader === 0)).toHaveLength(0); // one query, one answer
    stack.close();
  });

  it('leaving a group sends CHANGE_TO_INCLUDE {} twice (RFC 3810 6.1), and a pending answer about it is dropped', () => {
    const { clock, stack, query, sentPackets, icmpOf } = withRawPeer();
    stack.start();
    clock.advance(5000);
    const group = ipv6('ff02::fb');
    stack.ipv6!.addresses.join(group);
    clock.advance(3000);
    sentPackets();
    query(group, MldQueryRepr.build({ version: 2, maxResponseCode: 5000, multicastAddress: group, suppressRouterProcessing: false, robustness: 2, queryIntervalCode: 125, sources: [] }, ROUTER, group));
    stack.ipv6!.addresses.leave(group);
    clock.advance(6000);
    const reports = sentPackets().map((p) => MldReportRepr.parse(new Icmpv6Packet(icmpOf(p))));
    expect(reports.map((r) => r.ok && r.value.records.map((x) => `${x.type} ${x.multicastAddress} ${x.sources.length}`).join())).toEqual(['3 ff02::fb 0', '3 ff02::fb 0']);
    expect(stack.ndp!.mld.pendingAnswers).toBe(0);
    stack.close();
  });

  it('address-specific queries: answered for a group we are in, not for others; a source-specific one gets IS_IN with its sources', () => {
    const { clock, stack, query, sentPackets, icmpOf } = withRawPeer();
    stack.start();
    clock.advance(5000);
    sentPackets();
    const group = ipv6('ff02::1:ff00:1');
    const specific = (g: Ipv6Address, sources: Ipv6Address[] = []) =>
      MldQueryRepr.build({ version: 2, maxResponseCode: 500, multicastAddress: g, suppressRouterProcessing: false, robustness: 2, queryIntervalCode: 125, sources }, ROUTER, g);
    query(group, specific(group));
    clock.advance(600);
    let reports = sentPackets().map((p) => MldReportRepr.parse(new Icmpv6Packet(icmpOf(p))));
    expect(reports).toHaveLength(1);
    expect(reports[0]!.ok && reports[0]!.value.records.map((r) => `${r.type} ${r.multicastAddress} ${r.sources.length}`)).toEqual(['2 ff02::1:ff00:1 0']);
    // a group we never joined: the frame is not even ours (its MAC is not one we listen to);
    // sent to all-nodes instead, the query is refused by the listener
    query(Ipv6Address.ALL_NODES, MldQueryRepr.build({ version: 2, maxResponseCode: 500, multicastAddress: ipv6('ff02::1:ff99:9999'), suppressRouterProcessing: false, robustness: 2, queryIntervalCode: 125, sources: [] }, ROUTER, Ipv6Address.ALL_NODES));
    clock.advance(600);
    expect(sentPackets()).toHaveLength(0);
    expect(stack.ndp!.counters.get('rx_mld_query_not_member')).toBe(1);
    // two source-specific queries merge their sources
    query(group, specific(group, [ipv6('fe80::a')]));
    query(group, specific(group, [ipv6('fe80::b'), ipv6('fe80::a')]));
    clock.advance(600);
    reports = sentPackets().map((p) => MldReportRepr.parse(new Icmpv6Packet(icmpOf(p))));
    expect(reports).toHaveLength(1);
    expect(reports[0]!.ok && reports[0]!.value.records.map((r) => `${r.type} ${r.multicastAddress} ${r.sources.join(',')}`)).toEqual(['1 ff02::1:ff00:1 fe80::a,fe80::b']);
    stack.close();
  });

  it('an MLDv1 query gets an MLDv1 report to the group (RFC 3810 8.2); a query with hop limit 2 or from a global address is refused; a flood keeps one answer pending per group', () => {
    const { clock, stack, query, sentPackets, icmpOf } = withRawPeer();
    stack.start();
    clock.advance(5000);
    sentPackets();
    const v1 = MldQueryRepr.build({ version: 1, maxResponseCode: 200, multicastAddress: Ipv6Address.UNSPECIFIED, suppressRouterProcessing: false, robustness: 0, queryIntervalCode: 0, sources: [] }, ROUTER, Ipv6Address.ALL_NODES);
    query(Ipv6Address.ALL_NODES, v1);
    clock.advance(300);
    const out = sentPackets();
    expect(out.map((p) => `${icmpOf(p)[0]} ${p.destination} ${p.hopLimit}`)).toEqual(['131 ff02::1:ff00:1 1']);
    expect(toHex(icmpOf(out[0]!).subarray(8))).toBe('ff0200000000000000000001ff000001');
    expect(stack.ndp!.mld.v1Compatibility).toBe(true);
    expect(stack.ndp!.counters.get('tx_mld_v1_reports')).toBe(1);
    query(Ipv6Address.ALL_NODES, GENERAL_QUERY, { hopLimit: 2 });
    query(Ipv6Address.ALL_NODES, MldQueryRepr.build({ version: 2, maxResponseCode: 1, multicastAddress: Ipv6Address.UNSPECIFIED, suppressRouterProcessing: false, robustness: 2, queryIntervalCode: 1, sources: [] }, ipv6('fd00:10::9'), Ipv6Address.ALL_NODES), { source: ipv6('fd00:10::9') });
    clock.advance(2000);
    expect(sentPackets()).toHaveLength(0);
    expect(stack.ndp!.counters.get('rx_mld_invalid')).toBe(2);
    for (let i = 0; i < 2000; i++) query(Ipv6Address.ALL_NODES, MldQueryRepr.build({ version: 2, maxResponseCode: 0x8000 | i, multicastAddress: i % 2 ? Ipv6Address.UNSPECIFIED : ipv6('ff02::1:ff00:1'), suppressRouterProcessing: false, robustness: 2, queryIntervalCode: 1, sources: i % 4 === 0 ? [ipv6(`fe80::${i.toString(16)}`)] : [] }, ROUTER, Ipv6Address.ALL_NODES));
    expect(stack.ndp!.mld.pendingAnswers).toBeLessThanOrEqual(2);
    stack.close();
    expect(clock.pending).toBe(0);
  });
});

describe('router advertisement parameters (RFC 4861 6.3.4)', () => {
  it('Cur Hop Limit, Reachable Time, Retrans Timer and the MTU option are applied; impossible ones are refused', () => {
    const { clock, stack, send, sentPackets } = withRawPeer();
    stack.start();
    clock.advance(5000);
    const table = stack.ndp!.table;
    expect([stack.ipv6!.hopLimit, stack.ipv6!.mtu, table.params.baseReachableTimeMs, table.params.retransTimeMs]).toEqual([64, 1500, 30_000, 1000]);
    send(ALL_NODES_MAC, ROUTER, Ipv6Address.ALL_NODES, 255, routerAdvertisement({ curHopLimit: 42, reachableTime: 10_000, retransTimer: 500, options: [{ kind: 'mtu', mtu: 1400 }] }));
    expect([stack.ipv6!.hopLimit, stack.ipv6!.mtu, table.params.baseReachableTimeMs, table.params.retransTimeMs]).toEqual([42, 1400, 10_000, 500]);
    // ReachableTime drawn again from the new base: 0.5x to 1.5x of it
    expect(table.reachableTimeMs).toBeGreaterThanOrEqual(5000);
    expect(table.reachableTimeMs).toBeLessThan(15_000);
    // what we send leaves with hop limit 42, cut into fragments of at most 1400 bytes
    sentPackets();
    void stack.icmpv6!.ping(ROUTER, { count: 1, size: 3000, timeoutMs: 100 });
    clock.advance(200);
    const echo = sentPackets().filter((p) => p.destination.equals(ROUTER));
    expect(echo.length).toBe(3);
    expect(echo.every((p) => p.hopLimit === 42 && p.bytes.length <= 1400)).toBe(true);
    expect(echo.some((p) => p.bytes.length > 1280)).toBe(true);
    // an MTU below 1280 or above the device's is impossible for this link: refused, counted
    send(ALL_NODES_MAC, ROUTER, Ipv6Address.ALL_NODES, 255, routerAdvertisement({ options: [{ kind: 'mtu', mtu: 1200 }] }));
    send(ALL_NODES_MAC, ROUTER, Ipv6Address.ALL_NODES, 255, routerAdvertisement({ options: [{ kind: 'mtu', mtu: 9000 }] }));
    send(ALL_NODES_MAC, ROUTER, Ipv6Address.ALL_NODES, 255, routerAdvertisement({ reachableTime: 4_000_000, retransTimer: 1 }));
    expect(stack.ipv6!.mtu).toBe(1400);
    expect(stack.ndp!.counters.get('ra_mtu_refused')).toBe(2);
    expect(stack.ndp!.counters.get('ra_timer_refused')).toBe(1);
    expect(table.params.baseReachableTimeMs).toBe(10_000);
    expect(table.params.retransTimeMs).toBe(10); // Linux's floor
    stack.close();
  });
});

describe('redirects (RFC 4861 8.1, 8.3)', () => {
  const FAR = ipv6('fd00:99::5');
  const BETTER = ipv6('fe80::2');
  const MAC_C = MacAddress.parse('02:00:00:00:00:0c');
  const redirect = (source: Ipv6Address, target: Ipv6Address, destination: Ipv6Address, tlla?: MacAddress): Uint8Array =>
    NdiscRepr.build({ kind: 'redirect', target, destination, options: tlla ? [{ kind: 'target-link-layer-address', address: tlla }] : [] }, source, OUR_LL);

  it('from the first-hop router: the destination goes to the better router (its MAC learnt STALE), or straight to it when on-link', () => {
    const { clock, stack, send } = withRawPeer();
    stack.start();
    clock.advance(5000);
    send(ALL_NODES_MAC, ROUTER, Ipv6Address.ALL_NODES, 255, routerAdvertisement({}));
    const routes = stack.ipv6!.routes;
    expect(hop(routes.lookup(FAR))).toBe(`router ${ROUTER}`);
    send(MAC_A, ROUTER, OUR_LL, 255, redirect(ROUTER, BETTER, FAR, MAC_C));
    expect(hop(routes.lookup(FAR))).toBe(`router ${BETTER}`);
    expect(stack.ndp!.table.lookup(BETTER)).toMatchObject({ state: 'STALE', mac: MAC_C });
    expect(routes.show('mem-a')).toContain('fd00:99::5 via fe80::2 dev mem-a proto redirect expires 599sec');
    // other destinations still use the default router
    expect(hop(routes.lookup(ipv6('fd00:99::6')))).toBe(`router ${ROUTER}`);
    // the better router may redirect again: target = destination says it is on-link
    send(MAC_A, BETTER, OUR_LL, 255, redirect(BETTER, FAR, FAR));
    expect(hop(routes.lookup(FAR))).toBe(`on-link ${FAR}`);
    expect(stack.ndp!.counters.get('redirects_applied')).toBe(2);
    // forgotten after 10 minutes
    clock.advance(600_000);
    send(ALL_NODES_MAC, ROUTER, Ipv6Address.ALL_NODES, 255, routerAdvertisement({}));
    expect(hop(routes.lookup(FAR))).toBe(`router ${ROUTER}`);
    stack.close();
  });

  it('invalid redirects change nothing, each counted by the rule it broke; a flood leaves at most 64 redirected destinations', () => {
    const { clock, stack, send } = withRawPeer();
    stack.start();
    clock.advance(5000);
    send(ALL_NODES_MAC, ROUTER, Ipv6Address.ALL_NODES, 255, routerAdvertisement({}));
    const routes = stack.ipv6!.routes;
    const invalid = stack.ndp!.invalid;
    send(MAC_A, ipv6('fe80::3'), OUR_LL, 255, redirect(ipv6('fe80::3'), BETTER, FAR)); // not our first hop for FAR
    send(MAC_A, ROUTER, OUR_LL, 255, redirect(ROUTER, BETTER, ipv6('ff0e::1'))); // multicast destination
    send(MAC_A, ROUTER, OUR_LL, 255, redirect(ROUTER, ipv6('fd00:99::7'), FAR)); // a global target that is not the destination
    send(MAC_A, ROUTER, OUR_LL, 64, redirect(ROUTER, BETTER, FAR)); // crossed a router
    send(MAC_A, ROUTER, OUR_LL, 255, redirect(ROUTER, BETTER, ipv6('fd00:10::9'))); // on-link already: we use no router for it
    expect(hop(routes.lookup(FAR))).toBe(`router ${ROUTER}`);
    expect(invalid.get('redirect_not_from_first_hop_router')).toBe(2);
    expect(invalid.get('multicast_redirect_destination')).toBe(1);
    expect(invalid.get('redirect_target_not_link_local')).toBe(1);
    expect(invalid.get('bad_hop_limit')).toBe(1);
    expect(stack.ndp!.counters.get('redirects_applied')).toBe(0);
    for (let i = 0; i < 1000; i++) send(MAC_A, ROUTER, OUR_LL, 255, redirect(ROUTER, BETTER, ipv6(`fd00:98::${i.toString(16)}`)));
    expect(routes.redirected()).toHaveLength(MAX_REDIRECTS);
    expect(hop(routes.lookup(ipv6('fd00:98::3e7')))).toBe(`router ${BETTER}`);
    stack.close();
  });
});

describe('DAD with a nonce (RFC 7527)', () => {
  it('our probes carry a 6-byte nonce; our own probe looped back is not a conflict, another host\'s probe is', () => {
    const { clock, stack, send, sentPackets, icmpOf } = withRawPeer({ dad: true });
    stack.start();
    clock.advance(10); // the first probes, no delay in tests
    const probes = sentPackets().filter((p) => p.source.isUnspecified && icmpOf(p)[0] === 135);
    expect(probes).toHaveLength(2); // fd00:10::1 and fe80::ff:fe00:1
    const probe = probes.find((p) => Ipv6Address.fromBytes(icmpOf(p), 8).equals(ipv6('fd00:10::1')))!;
    const parsed = NdiscRepr.parse(new Icmpv6Packet(icmpOf(probe)));
    expect(parsed.ok && ndiscOptionsSummary(parsed.value.options).nonce?.length).toBe(6);
    expect(toHex(icmpOf(probe).subarray(24, 26))).toBe('0e01'); // type 14, one 8-byte unit
    // the same probe comes back (a reflecting switch that rewrote the source MAC)
    send(MacAddress.parse('33:33:ff:00:00:01'), Ipv6Address.UNSPECIFIED, ipv6('fd00:10::1').solicitedNode(), 255, icmpOf(probe).slice());
    expect(stack.ndp!.counters.get('rx_ns_dad_looped_back')).toBe(1);
    expect(stack.ipv6!.addresses.get(ipv6('fd00:10::1'))?.state).toBe('tentative');
    // another host probing for fe80::ff:fe00:1, with its own nonce: a conflict
    const theirs = NdiscRepr.build({ kind: 'neighbor-solicitation', target: OUR_LL, options: [{ kind: 'unknown', type: 14, data: hex('010203040506') }] }, Ipv6Address.UNSPECIFIED, OUR_LL.solicitedNode());
    send(MacAddress.parse('33:33:ff:00:00:01'), Ipv6Address.UNSPECIFIED, OUR_LL.solicitedNode(), 255, theirs);
    expect(stack.ipv6!.addresses.get(OUR_LL)?.state).toBe('duplicate');
    clock.advance(2000);
    expect(stack.ipv6!.addresses.get(ipv6('fd00:10::1'))?.state).toBe('preferred');
    stack.close();
  });
});
