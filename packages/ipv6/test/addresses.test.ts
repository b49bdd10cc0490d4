import { describe, expect, it } from 'vitest';
import { EtherTypeDispatcher, Ipv6Address, MacAddress, MemoryLink, VirtualClock, buildEthernetFrame, ipv6 } from '@tapstack/link';
import { Ipv6Addresses, Ipv6Cidr, Ipv6Routes, commonPrefixLength, type Ipv6AddressEvent } from '../src/index.ts';

const MAC = MacAddress.parse('02:00:00:00:00:02');

function setup() {
  const clock = new VirtualClock();
  const [link] = MemoryLink.pair({ macs: [MAC, MacAddress.parse('02:00:00:00:00:01')] });
  const dispatcher = new EtherTypeDispatcher(link);
  const received: Uint8Array[] = [];
  dispatcher.register(0x86dd, (f) => received.push(f));
  const addresses = new Ipv6Addresses(dispatcher, clock);
  const frameTo = (mac: string) => buildEthernetFrame({ destination: MacAddress.parse(mac), source: MacAddress.parse('02:00:00:00:00:01'), etherType: 0x86dd }, new Uint8Array(40));
  return { clock, dispatcher, addresses, received, frameTo };
}

describe('Ipv6Addresses', () => {
  it('joins the solicited-node group of each address: the link accepts its 33:33 MAC and no other', () => {
    const { dispatcher, addresses, received, frameTo } = setup();
    addresses.join(Ipv6Address.ALL_NODES);
    addresses.add(new Ipv6Cidr(Ipv6Address.linkLocalFromMac(MAC), 64), 'link-local');
    addresses.add(Ipv6Cidr.parse('fd00:10::2/64'), 'static');
    // fe80::ff:fe00:2 and fd00:10::2 differ in their last 24 bits: two groups
    expect(addresses.memberships().map(String)).toEqual(['ff02::1', 'ff02::1:ff00:2']);
    expect(dispatcher.multicastGroups.map(String)).toEqual(['33:33:00:00:00:01', '33:33:ff:00:00:02']);
    dispatcher.input(frameTo('33:33:ff:00:00:02'));
    dispatcher.input(frameTo('33:33:00:00:00:01'));
    dispatcher.input(frameTo('33:33:ff:00:00:03')); // someone else's solicited-node group
    dispatcher.input(frameTo('33:33:00:00:00:02')); // all-routers: we are not a router
    expect(received).toHaveLength(2);
    expect(dispatcher.counters.get('rx_multicast_not_joined')).toBe(2);
    // the two addresses share ff02::1:ff00:2: removing one keeps the group
    addresses.remove(ipv6('fd00:10::2'));
    expect(addresses.isMember(ipv6('ff02::1:ff00:2'))).toBe(true);
    addresses.remove(Ipv6Address.linkLocalFromMac(MAC));
    expect(addresses.isMember(ipv6('ff02::1:ff00:2'))).toBe(false);
    expect(dispatcher.multicastGroups.map(String)).toEqual(['33:33:00:00:00:01']);
  });

  it('walks tentative -> preferred -> deprecated -> removed on its lifetimes, and duplicate never becomes usable', () => {
    const { clock, addresses } = setup();
    const events: string[] = [];
    addresses.onChange((e: Ipv6AddressEvent) => events.push(`${e.kind} ${e.address.address} ${e.address.state}`));
    addresses.add(Ipv6Cidr.parse('fd00:10:0:1::2/64'), 'slaac', { preferredLifetimeMs: 10_000, validLifetimeMs: 20_000 });
    expect(addresses.isAssigned(ipv6('fd00:10:0:1::2'))).toBe(false);
    expect(addresses.selectSource(ipv6('fd00:10:0:1::1'))).toBeUndefined();
    addresses.confirm(ipv6('fd00:10:0:1::2'));
    expect(addresses.selectSource(ipv6('fd00:10:0:1::1'))?.toString()).toBe('fd00:10:0:1::2');
    clock.advance(10_000);
    expect(addresses.get(ipv6('fd00:10:0:1::2'))?.state).toBe('deprecated');
    expect(addresses.isAssigned(ipv6('fd00:10:0:1::2'))).toBe(true);
    clock.advance(10_000);
    expect(addresses.get(ipv6('fd00:10:0:1::2'))).toBeUndefined();
    addresses.add(Ipv6Cidr.parse('fd00:10::2/64'), 'static');
    addresses.markDuplicate(ipv6('fd00:10::2'));
    addresses.confirm(ipv6('fd00:10::2'));
    expect(addresses.get(ipv6('fd00:10::2'))?.state).toBe('duplicate');
    expect(addresses.isMember(ipv6('fd00:10::2').solicitedNode())).toBe(false);
    expect(addresses.show()).toContain('inet6 fd00:10::2/64 scope global tentative dadfailed');
    expect(events).toEqual([
      'added fd00:10:0:1::2 tentative',
      'state fd00:10:0:1::2 preferred',
      'state fd00:10:0:1::2 deprecated',
      'removed fd00:10:0:1::2 deprecated',
      'added fd00:10::2 tentative',
      'state fd00:10::2 duplicate',
    ]);
  });

  it('picks a source of the destination scope: link-local for fe80::/10 and ff02::/16, else global', () => {
    const { addresses } = setup();
    addresses.add(new Ipv6Cidr(Ipv6Address.linkLocalFromMac(MAC), 64), 'link-local', { tentative: false });
    addresses.add(Ipv6Cidr.parse('fd00:10::2/64'), 'static', { tentative: false });
    addresses.add(Ipv6Cidr.parse('fd00:20::2/64'), 'static', { tentative: false });
    expect(addresses.selectSource(ipv6('fe80::1'))?.toString()).toBe('fe80::ff:fe00:2');
    expect(addresses.selectSource(ipv6('ff02::1'))?.toString()).toBe('fe80::ff:fe00:2');
    expect(addresses.selectSource(ipv6('fd00:10::1'))?.toString()).toBe('fd00:10::2');
    expect(addresses.selectSource(ipv6('fd00:20::99'))?.toString()).toBe('fd00:20::2');
    expect(addresses.selectSource(ipv6('fd00:20::2'))?.toString()).toBe('fd00:20::2');
    expect(commonPrefixLength(ipv6('fd00::'), ipv6('fd00:8000::'))).toBe(16);
  });

  it('refuses more than 16 addresses (SLAAC from a flood of prefixes stays bounded)', () => {
    const { addresses } = setup();
    for (let i = 0; i < 20; i++) addresses.add(Ipv6Cidr.parse(`fd00:10:0:${i.toString(16)}::2/64`), 'slaac');
    expect(addresses.list()).toHaveLength(16);
  });
});

describe('Ipv6Routes', () => {
  it('multicast to the group, fe80::/64 and our prefixes on-link, the rest via the default router until its lifetime ends', () => {
    const clock = new VirtualClock();
    const routes = new Ipv6Routes(clock, () => [Ipv6Cidr.parse('fd00:10::/64')]);
    expect(String(routes.lookup(ipv6('ff02::1')).kind)).toBe('multicast');
    expect(routes.lookup(ipv6('fe80::1')).kind).toBe('on-link');
    expect(routes.lookup(ipv6('fd00:10::1')).kind).toBe('on-link');
    expect(routes.lookup(ipv6('2001:db8::1')).kind).toBe('none');
    routes.setDefaultRouter(ipv6('fe80::1'), 1800_000);
    const via = routes.lookup(ipv6('2001:db8::1'));
    expect(via.kind === 'router' && via.nextHop.toString()).toBe('fe80::1');
    routes.setOnLinkPrefix(Ipv6Cidr.parse('fd00:10:0:1::/64'), 60_000);
    expect(routes.lookup(ipv6('fd00:10:0:1::7')).kind).toBe('on-link');
    expect(routes.show('tap0')).toContain('default via fe80::1 dev tap0 proto ra expires 1800sec');
    clock.advance(60_000);
    expect(routes.lookup(ipv6('fd00:10:0:1::7')).kind).toBe('router');
    clock.advance(1800_000);
    expect(routes.lookup(ipv6('2001:db8::1')).kind).toBe('none');
  });

  it('bounds the router and prefix lists against an RA flood', () => {
    const routes = new Ipv6Routes(new VirtualClock(), () => []);
    let routers = 0;
    let prefixes = 0;
    for (let i = 1; i <= 1000; i++) {
      if (routes.setDefaultRouter(ipv6(`fe80::${i.toString(16)}`), 1000_000)) routers++;
      if (routes.setOnLinkPrefix(Ipv6Cidr.parse(`fd00:${i.toString(16)}::/64`), 1000_000)) prefixes++;
    }
    expect(routers).toBe(8);
    expect(prefixes).toBe(16);
    expect(routes.defaultRouters()).toHaveLength(8);
  });
});
