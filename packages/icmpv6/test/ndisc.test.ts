import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Ipv6Address, ipv6, MacAddress } from '@tapstack/link';
import { hex } from '../../../test/support/fixtures.ts';
import { formatIcmpv6 } from '../src/format.ts';
import { emitNdiscOptions, ndiscOptionsSummary, parseNdiscOptions, type NdiscOption } from '../src/ndisc-option.ts';
import { isNdiscType, isSolicitedNodeAddress, NdiscRepr, validateNdisc, type NdiscContext, type NdiscRepr as NdiscReprType } from '../src/ndisc.ts';
import { fillIcmpv6Checksum, Icmpv6Packet } from '../src/packet.ts';
import { fixtureIcmpv6Messages } from './support.ts';

const A = ipv6('fd00:10::1');
const B = ipv6('fd00:10::2');
const LL_A = ipv6('fe80::ff:fe00:a01');
const MAC_A = MacAddress.parse('02:00:00:00:0a:01');
const MAC_B = MacAddress.parse('02:00:00:00:0b:02');

/** linux-ipv6-ping.pcap #1: fd00:10::1 > ff02::1:ff00:2, who has fd00:10::2, source link-layer 02:00:00:00:0a:01. */
const NS = hex('8700 7377 0000 0000 fd00 0010 0000 0000 0000 0000 0000 0002 0101 0200 0000 0a01');
const NS_CONTEXT: NdiscContext = { source: A, destination: ipv6('ff02::1:ff00:2'), hopLimit: 255 };
/** linux-ipv6-ping.pcap #2: fd00:10::2 > fd00:10::1, S and O set, target link-layer 02:00:00:00:0b:02. */
const NA = hex('8800 116a 6000 0000 fd00 0010 0000 0000 0000 0000 0000 0002 0201 0200 0000 0b02');
const NA_CONTEXT: NdiscContext = { source: B, destination: A, hopLimit: 255 };
/** linux-ipv6-ra-slaac.pcap: radvd's multicast RA: hop limit 64, O, lifetime 1800, reachable 30000, retrans 1000; prefix, MTU, SLLA. */
const RA = hex(`
  8600 d028 4040 0708 0000 7530 0000 03e8 0304 40c0 0001 5180 0000 3840 0000 0000
  fd00 0010 0000 0000 0000 0000 0000 0000 0501 0000 0000 05dc 0101 0200 0000 0a01`);
const RA_CONTEXT: NdiscContext = { source: LL_A, destination: Ipv6Address.ALL_NODES, hopLimit: 255 };

function check(bytes: Uint8Array, context: NdiscContext) {
  return validateNdisc(new Icmpv6Packet(bytes), context);
}

/** A copy of `bytes` changed by `change`, with a correct checksum again. */
function changed(bytes: Uint8Array, context: NdiscContext, change: (b: Uint8Array) => Uint8Array | void): Uint8Array {
  const copy = bytes.slice();
  const out = change(copy) ?? copy;
  fillIcmpv6Checksum(out, context.source, context.destination);
  return out;
}

describe('NdiscRepr: the kernel messages field by field', () => {
  it('neighbor solicitation', () => {
    const r = check(NS, NS_CONTEXT);
    expect(r.ok).toBe(true);
    if (!r.ok || r.value.kind !== 'neighbor-solicitation') throw new Error('not an NS');
    expect(r.value.target.equals(B)).toBe(true);
    expect(ndiscOptionsSummary(r.value.options).sourceLinkLayerAddress?.equals(MAC_A)).toBe(true);
    expect(NdiscRepr.build(r.value, NS_CONTEXT.source, NS_CONTEXT.destination)).toEqual(NS);
  });

  it('neighbor advertisement', () => {
    const r = check(NA, NA_CONTEXT);
    if (!r.ok || r.value.kind !== 'neighbor-advertisement') throw new Error('not an NA');
    expect(r.value).toMatchObject({ router: false, solicited: true, override: true });
    expect(r.value.target.equals(B)).toBe(true);
    expect(ndiscOptionsSummary(r.value.options).targetLinkLayerAddress?.equals(MAC_B)).toBe(true);
    expect(NdiscRepr.build(r.value, B, A)).toEqual(NA);
  });

  it('router advertisement with prefix, MTU and source link-layer options, in their order', () => {
    const r = check(RA, RA_CONTEXT);
    if (!r.ok || r.value.kind !== 'router-advertisement') throw new Error('not an RA');
    const ra = r.value;
    expect(ra).toMatchObject({ curHopLimit: 64, managed: false, otherConfig: true, routerLifetime: 1800, reachableTime: 30000, retransTimer: 1000 });
    expect(ra.options.map((o) => o.kind)).toEqual(['prefix-information', 'mtu', 'source-link-layer-address']);
    const summary = ndiscOptionsSummary(ra.options);
    expect(summary.mtu).toBe(1500);
    expect(summary.prefixes).toHaveLength(1);
    const prefix = summary.prefixes[0]!;
    expect(prefix).toMatchObject({ prefixLength: 64, onLink: true, autonomous: true, validLifetime: 86400, preferredLifetime: 14400 });
    expect(prefix.prefix.toString()).toBe('fd00:10::');
    expect(NdiscRepr.build(ra, RA_CONTEXT.source, RA_CONTEXT.destination)).toEqual(RA);
  });

  it('a redirect round-trips (built, checked, parsed)', () => {
    const repr: NdiscReprType = {
      kind: 'redirect',
      target: ipv6('fe80::1'),
      destination: ipv6('fd00:20::5'),
      options: [
        { kind: 'target-link-layer-address', address: MAC_B },
        { kind: 'redirected-header', packet: new Uint8Array([0x60, 0, 0, 0, 0, 0, 58, 64]) },
      ],
    };
    const bytes = NdiscRepr.build(repr, LL_A, A);
    expect(bytes.length).toBe(40 + 8 + 16);
    expect([...bytes.subarray(48, 56)]).toEqual([4, 2, 0, 0, 0, 0, 0, 0]);
    const r = check(bytes, { source: LL_A, destination: A, hopLimit: 255 });
    expect(r).toEqual({ ok: true, value: repr });
  });
});

describe('every NDP message Linux (and radvd) wrote', () => {
  const messages = fixtureIcmpv6Messages().filter((m) => isNdiscType(m.icmp[0]!));
  it('there are NS, NA, RS, RA and a redirect among them', () => {
    expect(new Set(messages.map((m) => m.icmp[0]))).toEqual(new Set([133, 134, 135, 136, 137]));
  });

  it("the router's redirect (linux-ipv6-router-ptb-redirect.pcap): to the on-link destination itself, quoting the packet", () => {
    const m = messages.find((x) => x.icmp[0] === 137)!;
    expect(m.source.toString()).toBe('fe80::ff:fe00:c03');
    const r = check(m.icmp, { ...m, firstHopRouterFor: () => m.source });
    if (!r.ok || r.value.kind !== 'redirect') throw new Error('not a redirect');
    expect(r.value.target.toString()).toBe('fd00:10::5');
    expect(r.value.destination.toString()).toBe('fd00:10::5');
    const quoted = ndiscOptionsSummary(r.value.options).redirectedHeader!;
    expect(quoted.length).toBe(104); // the whole 104-byte echo request
    expect(quoted[0]! >>> 4).toBe(6);
    expect(check(m.icmp, { ...m, firstHopRouterFor: () => LL_A })).toEqual({ ok: false, reason: 'redirect_not_from_first_hop_router' });
  });
  for (const m of messages) {
    it(`${m.name}: valid by every rule, and re-emitted byte for byte`, () => {
      const r = check(m.icmp, m);
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(NdiscRepr.build(r.value, m.source, m.destination)).toEqual(m.icmp);
    });
  }
});

describe("the kernel's DAD probes (RFC 4862 5.4.2, RFC 7527)", () => {
  it('come from :: to the solicited-node group, without a source link-layer option, with a 6-byte nonce', () => {
    const probes = fixtureIcmpv6Messages().filter((m) => m.icmp[0] === 135 && m.source.isUnspecified);
    expect(probes.length).toBeGreaterThanOrEqual(4);
    for (const m of probes) {
      const r = check(m.icmp, m);
      if (!r.ok || r.value.kind !== 'neighbor-solicitation') throw new Error(`${m.name}: ${r.ok ? r.value.kind : r.reason}`);
      expect(m.destination.equals(r.value.target.solicitedNode())).toBe(true);
      const summary = ndiscOptionsSummary(r.value.options);
      expect(summary.sourceLinkLayerAddress).toBeUndefined();
      expect(summary.nonce?.length, m.name).toBe(6);
      expect(summary.unknownTypes).toEqual([14]);
    }
  });
});

describe('validateNdisc names each broken rule of RFC 4861', () => {
  it('every type: hop limit 255, code 0, checksum, length, option lengths', () => {
    expect(check(NS, { ...NS_CONTEXT, hopLimit: 254 })).toEqual({ ok: false, reason: 'bad_hop_limit' });
    expect(check(changed(NS, NS_CONTEXT, (b) => void (b[1] = 1)), NS_CONTEXT)).toEqual({ ok: false, reason: 'bad_code' });
    const badSum = NS.slice();
    badSum[3] = badSum[3]! ^ 1;
    expect(check(badSum, NS_CONTEXT)).toEqual({ ok: false, reason: 'bad_checksum' });
    expect(check(changed(NS, NS_CONTEXT, (b) => b.slice(0, 23)), NS_CONTEXT)).toEqual({ ok: false, reason: 'too_short' });
    expect(check(changed(NA, NA_CONTEXT, (b) => b.slice(0, 20)), NA_CONTEXT)).toEqual({ ok: false, reason: 'too_short' });
    expect(check(changed(RA, RA_CONTEXT, (b) => b.slice(0, 15)), RA_CONTEXT)).toEqual({ ok: false, reason: 'too_short' });
    expect(check(changed(NS, NS_CONTEXT, (b) => void (b[25] = 0)), NS_CONTEXT)).toEqual({ ok: false, reason: 'zero_length_option' });
    expect(check(changed(NS, NS_CONTEXT, (b) => void (b[25] = 2)), NS_CONTEXT)).toEqual({ ok: false, reason: 'truncated_option' });
    expect(check(changed(NS, NS_CONTEXT, (b) => b.slice(0, 25)), NS_CONTEXT)).toEqual({ ok: false, reason: 'truncated_option' });
    // A source link-layer option of 16 bytes is not an Ethernet address.
    const long = changed(NS, NS_CONTEXT, (b) => {
      const out = new Uint8Array(40);
      out.set(b);
      out[25] = 2;
      return out;
    });
    expect(check(long, NS_CONTEXT)).toEqual({ ok: false, reason: 'bad_option_length' });
  });

  it('NS (7.1.1): target not multicast; from :: only to a solicited-node group and without a source link-layer option', () => {
    const toMulticast = changed(NS, NS_CONTEXT, (b) => void ipv6('ff02::1').writeTo(b, 8));
    expect(check(toMulticast, NS_CONTEXT)).toEqual({ ok: false, reason: 'multicast_target' });
    const dad = { source: Ipv6Address.UNSPECIFIED, destination: ipv6('ff02::1:ff00:2'), hopLimit: 255 };
    expect(check(changed(NS, dad, () => {}), dad)).toEqual({ ok: false, reason: 'unspecified_source_with_link_layer_option' });
    const probe = changed(NS, dad, (b) => b.slice(0, 24));
    expect(check(probe, dad).ok).toBe(true);
    const dadToNode = { ...dad, destination: B };
    expect(check(changed(probe, dadToNode, () => {}), dadToNode)).toEqual({ ok: false, reason: 'unspecified_source_not_to_solicited_node' });
  });

  it('NA (7.1.2): target not multicast; solicited flag clear when sent to multicast', () => {
    expect(check(changed(NA, NA_CONTEXT, (b) => void ipv6('ff02::1').writeTo(b, 8)), NA_CONTEXT)).toEqual({ ok: false, reason: 'multicast_target' });
    const toAll = { ...NA_CONTEXT, destination: Ipv6Address.ALL_NODES };
    expect(check(changed(NA, toAll, () => {}), toAll)).toEqual({ ok: false, reason: 'solicited_flag_to_multicast' });
    expect(check(changed(NA, toAll, (b) => void (b[4] = 0x20)), toAll).ok).toBe(true); // unsolicited, override
  });

  it('RA (6.1.2): the source is link-local', () => {
    const fromGlobal = { ...RA_CONTEXT, source: A };
    expect(check(changed(RA, fromGlobal, () => {}), fromGlobal)).toEqual({ ok: false, reason: 'source_not_link_local' });
  });

  it('RS (6.1.1): from :: without a source link-layer option', () => {
    const rs = NdiscRepr.build({ kind: 'router-solicitation', options: [{ kind: 'source-link-layer-address', address: MAC_B }] }, Ipv6Address.UNSPECIFIED, Ipv6Address.ALL_ROUTERS);
    expect(check(rs, { source: Ipv6Address.UNSPECIFIED, destination: Ipv6Address.ALL_ROUTERS, hopLimit: 255 })).toEqual({
      ok: false,
      reason: 'unspecified_source_with_link_layer_option',
    });
    const bare = NdiscRepr.build({ kind: 'router-solicitation', options: [] }, Ipv6Address.UNSPECIFIED, Ipv6Address.ALL_ROUTERS);
    expect(check(bare, { source: Ipv6Address.UNSPECIFIED, destination: Ipv6Address.ALL_ROUTERS, hopLimit: 255 }).ok).toBe(true);
  });

  it('redirect (8.1): link-local source, unicast destination, link-local target or the destination itself, from the first-hop router', () => {
    const ctx: NdiscContext = { source: LL_A, destination: B, hopLimit: 255 };
    const build = (target: string, destination: string, source = LL_A) =>
      NdiscRepr.build({ kind: 'redirect', target: ipv6(target), destination: ipv6(destination), options: [] }, source, B);
    expect(check(build('fe80::9', 'fd00:20::5'), ctx).ok).toBe(true);
    expect(check(build('fd00:20::5', 'fd00:20::5'), ctx).ok).toBe(true); // on-link destination
    expect(check(build('fd00:10::9', 'fd00:20::5'), ctx)).toEqual({ ok: false, reason: 'redirect_target_not_link_local' });
    expect(check(build('fe80::9', 'ff0e::1'), ctx)).toEqual({ ok: false, reason: 'multicast_redirect_destination' });
    expect(check(build('fe80::9', 'fd00:20::5', A), { ...ctx, source: A })).toEqual({ ok: false, reason: 'source_not_link_local' });
    const routers = { ...ctx, firstHopRouterFor: () => ipv6('fe80::77') };
    expect(check(build('fe80::9', 'fd00:20::5'), routers)).toEqual({ ok: false, reason: 'redirect_not_from_first_hop_router' });
    expect(check(build('fe80::9', 'fd00:20::5'), { ...ctx, firstHopRouterFor: () => LL_A }).ok).toBe(true);
  });
});

describe('NDP options (RFC 4861 4.6)', () => {
  it('skips an unknown option by its length and keeps it for re-emission', () => {
    const bytes = hex('0e02 0102 0304 0506 0708 090a 0b0c 0d0e 0101 0200 0000 0a01');
    const r = parseNdiscOptions(bytes);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.map((o) => o.kind)).toEqual(['unknown', 'source-link-layer-address']);
    expect(ndiscOptionsSummary(r.value).unknownTypes).toEqual([14]);
    const out = new Uint8Array(bytes.length);
    expect(emitNdiscOptions(r.value, out, 0)).toBe(24);
    expect(out).toEqual(bytes);
  });

  it('a zero length anywhere refuses all of them; a duplicate link-layer option counts once (the first)', () => {
    expect(parseNdiscOptions(hex('0101 0200 0000 0a01 0500 0000 0000 0000'))).toEqual({ ok: false, reason: 'zero_length_option' });
    const two = parseNdiscOptions(hex('0101 0200 0000 0a01 0101 0200 0000 0b02'));
    expect(two.ok && ndiscOptionsSummary(two.value).sourceLinkLayerAddress?.equals(MAC_A)).toBe(true);
  });

  it('emit then parse gives the same options (property)', () => {
    const mac = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => MacAddress.fromBytes(b));
    const address = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Ipv6Address.fromBytes(b));
    const option: fc.Arbitrary<NdiscOption> = fc.oneof(
      fc.record({ kind: fc.constant('source-link-layer-address' as const), address: mac }),
      fc.record({ kind: fc.constant('target-link-layer-address' as const), address: mac }),
      fc.record({ kind: fc.constant('mtu' as const), mtu: fc.nat({ max: 0xffffffff }) }),
      fc.record({
        kind: fc.constant('prefix-information' as const),
        prefixLength: fc.nat({ max: 128 }),
        onLink: fc.boolean(),
        autonomous: fc.boolean(),
        otherFlags: fc.nat({ max: 0x3f }),
        validLifetime: fc.nat({ max: 0xffffffff }),
        preferredLifetime: fc.nat({ max: 0xffffffff }),
        prefix: address,
      }),
      fc.record({ kind: fc.constant('redirected-header' as const), packet: fc.nat({ max: 12 }).map((n) => new Uint8Array(n * 8)) }),
      fc.record({ kind: fc.constant('unknown' as const), type: fc.integer({ min: 6, max: 255 }), data: fc.nat({ max: 8 }).map((n) => new Uint8Array(n * 8 + 6)) }),
    );
    fc.assert(
      fc.property(fc.array(option, { maxLength: 6 }), (options) => {
        const repr: NdiscReprType = { kind: 'router-solicitation', options };
        const bytes = NdiscRepr.build(repr, A, B);
        const back = NdiscRepr.parse(new Icmpv6Packet(bytes));
        expect(back.ok).toBe(true);
        if (!back.ok) return;
        expect(NdiscRepr.build(back.value, A, B)).toEqual(bytes);
        expect(back.value.options.map((o) => o.kind)).toEqual(options.map((o) => o.kind));
      }),
    );
  });
});

describe('helpers and trace lines', () => {
  it('recognises solicited-node groups', () => {
    expect(isSolicitedNodeAddress(B.solicitedNode())).toBe(true);
    expect(isSolicitedNodeAddress(Ipv6Address.ALL_NODES)).toBe(false);
    expect(isSolicitedNodeAddress(ipv6('ff02::2:ff00:2'))).toBe(false);
  });

  it('describes NS, NA and RA like tcpdump', () => {
    expect(formatIcmpv6(NS, A, NS_CONTEXT.destination)).toBe('ICMP6, neighbor solicitation, who has fd00:10::2, length 32');
    expect(formatIcmpv6(NA, B, A)).toBe('ICMP6, neighbor advertisement, tgt is fd00:10::2, Flags [solicited, override], length 32');
    expect(formatIcmpv6(RA, LL_A, Ipv6Address.ALL_NODES)).toBe(
      'ICMP6, router advertisement, hop limit 64, flags [O], router lifetime 1800s, reachable 30000ms, retrans 1000ms, ' +
        'prefix fd00:10::/64 onlink auto valid 86400s pref 14400s, mtu 1500, source link-address 02:00:00:00:0a:01, length 64',
    );
    expect(formatIcmpv6(NS.subarray(0, 20))).toBe('ICMP6, neighbor solicitation [too_short], length 20');
  });
});
