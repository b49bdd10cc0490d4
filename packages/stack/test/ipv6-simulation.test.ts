/**
 * Two whole stacks (createStack: ARP, IPv4, IPv6, ICMPv6, NDP) on an in-memory wire with a virtual
 * clock: DAD, resolution over NDP with loss, a DAD conflict, hostile NDP.
 */
import { describe, expect, it } from 'vitest';
import { EtherType, Ipv6Address, MacAddress, MemoryLink, VirtualClock, buildEthernetFrame, ipv6, seededRandom, withFaults, type Link } from '@tapstack/link';
import { Ipv6Packet, Ipv6Repr } from '@tapstack/ipv6';
import { NdiscRepr } from '@tapstack/icmpv6';
import { createStack, type Stack } from '@tapstack/stack';
import { settleOnVirtualClock } from '../../../test/support/virtual-time.ts';

const MAC_A = MacAddress.parse('02:00:00:00:00:01');
const MAC_B = MacAddress.parse('02:00:00:00:00:02');

function pair(options: { a?: string[]; b?: string[]; wrapA?: (l: Link) => Link } = {}) {
  const clock = new VirtualClock();
  const [la, lb] = MemoryLink.pair({ clock, latencyMs: 0, macs: [MAC_A, MAC_B] });
  const a = createStack({ link: (options.wrapA ?? ((l) => l))(la), ip: '10.0.0.1/24', clock, random: seededRandom(1), ipv6: { addresses: options.a ?? ['fd00:10::1/64'] } });
  const b = createStack({ link: lb, ip: '10.0.0.2/24', clock, random: seededRandom(2), ipv6: { addresses: options.b ?? ['fd00:10::2/64'] } });
  return { clock, a, b };
}

const run = settleOnVirtualClock;

function close(...stacks: Stack[]): void {
  for (const s of stacks) s.close();
}

describe('IPv6 between two stacks', () => {
  it('DAD makes the link-local and static addresses preferred after about a second, then they ping each other', async () => {
    const { clock, a, b } = pair();
    a.start();
    b.start();
    expect(a.ipv6!.addresses.get(ipv6('fd00:10::1'))?.state).toBe('tentative');
    clock.advance(2500);
    expect(a.ipv6!.addresses.list().map((x) => `${x.address} ${x.state}`)).toEqual(['fd00:10::1 preferred', 'fe80::ff:fe00:1 preferred']);
    const summary = await run(clock, a.icmpv6!.ping(ipv6('fd00:10::2'), { count: 3, intervalMs: 1000 }));
    expect(summary.received).toBe(3);
    // B learnt A from A's solicitation, and A learnt B from B's solicited advertisement
    expect(a.neighbours({ family: 6 })).toMatch(/^fd00:10::2 dev mem-a lladdr 02:00:00:00:00:02 REACHABLE/m);
    expect(b.neighbours({ family: 6 })).toMatch(/^fd00:10::1 dev mem-b lladdr 02:00:00:00:00:01 (STALE|DELAY|REACHABLE)/m);
    // link-local to link-local, and a big one (fragmented when that lands, refused until then)
    const ll = await run(clock, a.icmpv6!.ping(Ipv6Address.linkLocalFromMac(MAC_B), { count: 2, intervalMs: 100 }));
    expect(ll.received).toBe(2);
    expect(ll.replies[0]!.from.toString()).toBe('fe80::ff:fe00:2');
    expect(a.ndp!.counters.get('dad_succeeded')).toBe(2);
    // 4000 and 65519 bytes of data (the most a fragment header leaves room for): fragmented at
    // 1500 by A, reassembled by B, answered in fragments
    for (const size of [4000, 65519]) {
      const big = await run(clock, a.icmpv6!.ping(ipv6('fd00:10::2'), { count: 2, size, intervalMs: 100 }));
      expect(big.received).toBe(2);
      expect(big.replies[0]!.bytes).toBe(size + 8);
    }
    expect(b.ipv6!.counters.get('reasm_ok')).toBe(4);
    expect(a.ipv6!.counters.get('Ip6FragCreates')).toBe(2 * 3 + 2 * 46);
    expect(b.ipv6!.counters.get('Ip6FragCreates')).toBe(2 * 3 + 2 * 46);
    close(a, b);
  });

  it('resolves the neighbour under 30% loss (NS retried a second apart, queue flushed)', async () => {
    const { clock, a, b } = pair({ wrapA: (l) => withFaults(l, { drop: 0.3, seed: 11 }) });
    a.ipv6!.addresses; // both start
    a.start();
    b.start();
    clock.advance(3000);
    const summary = await run(clock, a.icmpv6!.ping(ipv6('fd00:10::2'), { count: 20, intervalMs: 200, timeoutMs: 3000 }));
    expect(summary.received).toBeGreaterThan(5);
    expect(a.ndp!.table.lookup(ipv6('fd00:10::2'))?.mac?.toString()).toBe('02:00:00:00:00:02');
    close(a, b);
  });

  it('DAD conflict: the second stack given the same address detects it and does not use it', async () => {
    const clock = new VirtualClock();
    const [la, lb] = MemoryLink.pair({ clock, latencyMs: 0, macs: [MAC_A, MAC_B] });
    const a = createStack({ link: la, ip: '10.0.0.1/24', clock, random: seededRandom(1), ipv6: { addresses: ['fd00:10::7/64'] } });
    a.start();
    clock.advance(3000);
    expect(a.ipv6!.addresses.get(ipv6('fd00:10::7'))?.state).toBe('preferred');
    const b = createStack({ link: lb, ip: '10.0.0.2/24', clock, random: seededRandom(2), ipv6: { addresses: ['fd00:10::7/64'] } });
    const conflicts: string[] = [];
    b.ndp!.onConflict((c) => conflicts.push(`${c.address} ${c.how} ${c.by}`));
    b.start();
    clock.advance(3000);
    expect(b.ipv6!.addresses.get(ipv6('fd00:10::7'))?.state).toBe('duplicate');
    expect(conflicts).toEqual(['fd00:10::7 neighbour-advertisement 02:00:00:00:00:01']);
    // B never uses it: no source for fd00:10::/64 other than its link-local... and A keeps it
    expect(b.ipv6!.sourceFor(ipv6('fd00:10::1'))?.toString()).toBe('fe80::ff:fe00:2');
    expect(a.ipv6!.addresses.get(ipv6('fd00:10::7'))?.state).toBe('preferred');
    expect(b.ipv6!.addresses.show()).toContain('fd00:10::7/64 scope global tentative dadfailed');
    close(a, b);
  });
});

/** One stack, and the other end of its wire as a raw host that sends frames built with the codecs. */
function withRawPeer() {
  const clock = new VirtualClock();
  const [ours, raw] = MemoryLink.pair({ clock, latencyMs: 0, macs: [MAC_A, MAC_B] });
  const stack = createStack({ link: ours, ip: '10.0.0.1/24', clock, random: seededRandom(3), ipv6: { addresses: ['fd00:10::1/64'], ndp: { delays: false } } });
  const received: Uint8Array[] = [];
  raw.setReceiver((frames) => received.push(...frames));
  const send = (destinationMac: MacAddress, source: Ipv6Address, destination: Ipv6Address, hopLimit: number, icmp: Uint8Array, nextHeader = 58): void => {
    const ip = Ipv6Repr.build({ source, destination, nextHeader, hopLimit, trafficClass: 0, flowLabel: 0 }, icmp);
    raw.send(buildEthernetFrame({ destination: destinationMac, source: MAC_B, etherType: EtherType.IPV6 }, ip));
    clock.advance(1); // the wire delivers on the clock
  };
  /** The ICMPv6 messages the stack sent, decoded as `type dst`. */
  const sent = (): string[] =>
    received
      .filter((f) => f[12] === 0x86 && f[13] === 0xdd)
      .map((f) => {
        const p = new Ipv6Packet(f.subarray(14));
        const icmpAt = p.nextHeader === 0 ? 48 : 40;
        return `${p.bytes[icmpAt]} ${p.destination}`;
      });
  return { clock, stack, raw, send, sent, received };
}

const ROUTER = ipv6('fe80::1');
const PEER_LL = Ipv6Address.linkLocalFromMac(MAC_B);

function routerAdvertisement(prefix: string, options: { lifetime?: number; valid?: number; preferred?: number } = {}): Uint8Array {
  return NdiscRepr.build(
    {
      kind: 'router-advertisement',
      curHopLimit: 64,
      managed: false,
      otherConfig: false,
      otherFlags: 0,
      routerLifetime: options.lifetime ?? 1800,
      reachableTime: 0,
      retransTimer: 0,
      options: [
        { kind: 'source-link-layer-address', address: MAC_B },
        { kind: 'prefix-information', prefixLength: 64, onLink: true, autonomous: true, validLifetime: options.valid ?? 86400, preferredLifetime: options.preferred ?? 14400, prefix: ipv6(prefix), otherFlags: 0 },
      ],
    },
    ROUTER,
    Ipv6Address.ALL_NODES,
  );
}

describe('NDP against a raw peer', () => {
  it('starts like Linux: DAD probes from ::, MLDv2 reports, router solicitations once the link-local address is ours', () => {
    const { clock, stack, sent } = withRawPeer();
    stack.start();
    clock.advance(10_000);
    const s = sent();
    // 135 from :: for both addresses (fd00:10::1 and fe80::ff:fe00:1 share a solicited-node
    // group), 143 reports to ff02::16, then 133 to ff02::2 (three, 4 s apart)
    expect(s.filter((x) => x === '135 ff02::1:ff00:1')).toHaveLength(2);
    expect(s.filter((x) => x === '143 ff02::16').length).toBeGreaterThanOrEqual(2);
    expect(s.filter((x) => x === '133 ff02::2')).toHaveLength(3);
    stack.close();
  });

  it('SLAAC: a router advertisement with an autonomous /64 gives an address (after DAD), a default router and an on-link prefix', () => {
    const { clock, stack, send } = withRawPeer();
    stack.start();
    clock.advance(2000);
    send(MacAddress.parse('33:33:00:00:00:01'), ROUTER, Ipv6Address.ALL_NODES, 255, routerAdvertisement('fd00:10:0:1::'));
    const slaac = Ipv6Address.fromPrefixAndMac(ipv6('fd00:10:0:1::'), MAC_A);
    expect(stack.ipv6!.addresses.get(slaac)?.state).toBe('tentative');
    clock.advance(1500);
    expect(stack.ipv6!.addresses.get(slaac)).toMatchObject({ state: 'preferred', origin: 'slaac' });
    expect(stack.ipv6!.routes.defaultRouter()?.toString()).toBe('fe80::1');
    expect(stack.ipv6!.routes.show('mem-a')).toContain('fd00:10:0:1::/64 dev mem-a proto ra');
    expect(stack.ndp!.table.lookup(ROUTER)?.mac?.toString()).toBe(MAC_B.toString());
    // RFC 4862 5.5.3 e: a forged RA with a 10 s valid lifetime does not take the address away
    send(MacAddress.parse('33:33:00:00:00:01'), ROUTER, Ipv6Address.ALL_NODES, 255, routerAdvertisement('fd00:10:0:1::', { valid: 10, preferred: 5 }));
    clock.advance(60_000);
    expect(stack.ipv6!.addresses.get(slaac)?.state).toBe('deprecated');
    stack.close();
  });

  it('hostile NDP: a hop limit below 255 is dropped; an RA flood leaves the router, prefix and address lists bounded', () => {
    const { clock, stack, send } = withRawPeer();
    stack.start();
    clock.advance(2000);
    const before = stack.ipv6!.addresses.list().length;
    // an RA that crossed a router (hop limit 64): not from this link, ignored
    send(MacAddress.parse('33:33:00:00:00:01'), ROUTER, Ipv6Address.ALL_NODES, 64, routerAdvertisement('fd00:10:0:9::'));
    expect(stack.ndp!.counters.get('rx_bad_hop_limit')).toBe(1);
    expect(stack.ipv6!.routes.defaultRouter()).toBeUndefined();
    // an NS for our address with hop limit 254: not answered
    const ns = NdiscRepr.build({ kind: 'neighbor-solicitation', target: ipv6('fd00:10::1'), options: [{ kind: 'source-link-layer-address', address: MAC_B }] }, PEER_LL, ipv6('fd00:10::1').solicitedNode());
    send(MacAddress.parse('33:33:ff:00:00:01'), PEER_LL, ipv6('fd00:10::1').solicitedNode(), 254, ns);
    expect(stack.ndp!.counters.get('tx_neighbour_advertisements')).toBe(0);
    expect(stack.ndp!.counters.get('rx_bad_hop_limit')).toBe(2);
    // 2000 RAs, each from another router with another prefix
    for (let i = 1; i <= 2000; i++) {
      const router = ipv6(`fe80::${i.toString(16)}`);
      const ra = NdiscRepr.build(
        { kind: 'router-advertisement', curHopLimit: 64, managed: false, otherConfig: false, otherFlags: 0, routerLifetime: 1800, reachableTime: 0, retransTimer: 0, options: [{ kind: 'prefix-information', prefixLength: 64, onLink: true, autonomous: true, validLifetime: 86400, preferredLifetime: 14400, prefix: ipv6(`fd00:${i.toString(16)}::`), otherFlags: 0 }] },
        router,
        Ipv6Address.ALL_NODES,
      );
      send(MacAddress.parse('33:33:00:00:00:01'), router, Ipv6Address.ALL_NODES, 255, ra);
      if (i % 100 === 0) clock.advance(10);
    }
    clock.advance(5000);
    expect(stack.ipv6!.routes.defaultRouters().length).toBe(8);
    expect(stack.ipv6!.routes.onLinkPrefixes().length).toBe(16);
    expect(stack.ipv6!.addresses.list().length).toBe(16);
    expect(before).toBe(2);
    expect(stack.ndp!.counters.get('ra_addresses_full')).toBeGreaterThan(1900);
    stack.close();
    expect(clock.pending).toBe(0);
  });

  it('ICMPv6 errors obey RFC 4443 2.4 (e): parameter problem for an unknown next header, none about a multicast destination', () => {
    const { clock, stack, send, sent } = withRawPeer();
    stack.start();
    clock.advance(3000);
    const before = sent().length;
    send(MAC_A, PEER_LL, ipv6('fd00:10::1'), 64, new Uint8Array(8), 253); // next header 253: nobody's
    send(MacAddress.parse('33:33:00:00:00:01'), PEER_LL, Ipv6Address.ALL_NODES, 64, new Uint8Array(8), 253);
    // one parameter problem, waiting in the neighbour queue while NDP asks for the peer (who stays silent here)
    expect(sent().slice(before)).toEqual(['135 ff02::1:ff00:2']);
    expect(stack.icmpv6!.counters.get('tx_errors')).toBe(1);
    expect(stack.ndp!.table.lookup(PEER_LL)).toMatchObject({ state: 'INCOMPLETE', queued: 1 });
    expect(stack.icmpv6!.counters.get('tx_error_about_group')).toBe(1);
    expect(stack.ipv6!.counters.get('rx_ext_unknown_next_header')).toBe(2);
    stack.close();
  });
});
