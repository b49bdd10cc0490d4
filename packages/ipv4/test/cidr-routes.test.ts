import { ipv4, type Ipv4Address } from '@tapstack/link';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Ipv4Cidr } from '../src/cidr.ts';
import { RouteTable } from '../src/routes.ts';

describe('Ipv4Cidr', () => {
  it('parses an interface address and derives network, broadcast and mask', () => {
    const c = Ipv4Cidr.parse('10.0.0.2/24');
    expect(c.address).toBe(ipv4('10.0.0.2'));
    expect(c.prefixLength).toBe(24);
    expect(c.network).toBe(ipv4('10.0.0.0'));
    expect(c.broadcast).toBe(ipv4('10.0.0.255'));
    expect(c.netmask).toBe(ipv4('255.255.255.0'));
    expect(c.format()).toBe('10.0.0.2/24');
    expect(c.networkCidr.format()).toBe('10.0.0.0/24');
  });

  it('handles /0, /31 and /32 and a bare address', () => {
    const all = Ipv4Cidr.parse('0.0.0.0/0');
    expect(all.contains(ipv4('203.0.113.9'))).toBe(true);
    expect(all.netmask).toBe(0);
    const p2p = Ipv4Cidr.parse('10.0.0.4/31');
    expect(p2p.isBroadcast(ipv4('10.0.0.5'))).toBe(false); // RFC 3021: no broadcast on a /31
    const host = Ipv4Cidr.parse('10.0.0.7');
    expect(host.prefixLength).toBe(32);
    expect(host.contains(ipv4('10.0.0.7'))).toBe(true);
    expect(host.contains(ipv4('10.0.0.6'))).toBe(false);
  });

  it('contains exactly the addresses of its network', () => {
    const c = Ipv4Cidr.parse('192.168.4.0/22');
    expect(c.contains(ipv4('192.168.4.0'))).toBe(true);
    expect(c.contains(ipv4('192.168.7.255'))).toBe(true);
    expect(c.contains(ipv4('192.168.8.0'))).toBe(false);
    expect(c.contains(ipv4('192.168.3.255'))).toBe(false);
    expect(c.isBroadcast(ipv4('192.168.7.255'))).toBe(true);
  });

  it('rejects malformed text with a message', () => {
    for (const bad of ['10.0.0.2/33', '10.0.0.2/', '10.0.0/24', '10.0.0.2/24/1', '10.0.0.2/-1', '10.0.0.2/024']) {
      expect(() => Ipv4Cidr.parse(bad), bad).toThrow(/CIDR|IPv4/);
    }
  });

  it('agrees with a bit-by-bit definition of contains', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.integer({ min: 0, max: 32 }), fc.nat({ max: 0xffffffff }), (a, len, b) => {
        const c = new Ipv4Cidr(a as Ipv4Address, len);
        let same = true;
        for (let bit = 31; bit >= 32 - len; bit--) if (((a >>> bit) & 1) !== ((b >>> bit) & 1)) same = false;
        expect(c.contains(b as Ipv4Address)).toBe(same);
        expect(c.contains(c.network)).toBe(true);
        expect(c.contains(c.broadcast)).toBe(true);
      }),
    );
  });
});

describe('RouteTable', () => {
  function table(): RouteTable {
    const t = new RouteTable('tap0');
    t.add(Ipv4Cidr.parse('10.0.0.2/24'), undefined, 'connected');
    return t;
  }

  it('sends on-link destinations straight to them', () => {
    expect(table().lookup(ipv4('10.0.0.9'))).toMatchObject({ nextHop: ipv4('10.0.0.9') });
  });

  it('has no route off-link until a default gateway is added', () => {
    const t = table();
    expect(t.lookup(ipv4('192.0.2.1'))).toBeUndefined();
    t.add(Ipv4Cidr.parse('0.0.0.0/0'), ipv4('10.0.0.1'));
    expect(t.lookup(ipv4('192.0.2.1'))?.nextHop).toBe(ipv4('10.0.0.1'));
    expect(t.lookup(ipv4('10.0.0.77'))?.nextHop).toBe(ipv4('10.0.0.77'));
  });

  it('takes the longest matching prefix, whatever the order routes were added in', () => {
    const t = table();
    t.add(Ipv4Cidr.parse('0.0.0.0/0'), ipv4('10.0.0.1'));
    t.add(Ipv4Cidr.parse('198.51.100.0/24'), ipv4('10.0.0.3'));
    t.add(Ipv4Cidr.parse('198.51.0.0/16'), ipv4('10.0.0.4'));
    t.add(Ipv4Cidr.parse('198.51.100.128/25'), ipv4('10.0.0.5'));
    expect(t.lookup(ipv4('198.51.100.200'))?.nextHop).toBe(ipv4('10.0.0.5'));
    expect(t.lookup(ipv4('198.51.100.5'))?.nextHop).toBe(ipv4('10.0.0.3'));
    expect(t.lookup(ipv4('198.51.7.7'))?.nextHop).toBe(ipv4('10.0.0.4'));
    expect(t.lookup(ipv4('8.8.8.8'))?.nextHop).toBe(ipv4('10.0.0.1'));
  });

  it('refuses a gateway that is not on a connected network, replaces same-prefix routes, removes', () => {
    const t = table();
    expect(() => t.add(Ipv4Cidr.parse('0.0.0.0/0'), ipv4('192.0.2.1'))).toThrow(/not on a connected network/);
    t.add(Ipv4Cidr.parse('198.51.100.7/24'), ipv4('10.0.0.3'));
    t.add(Ipv4Cidr.parse('198.51.100.0/24'), ipv4('10.0.0.4'));
    expect(t.entries()).toHaveLength(2);
    expect(t.lookup(ipv4('198.51.100.1'))?.nextHop).toBe(ipv4('10.0.0.4'));
    expect(t.remove(Ipv4Cidr.parse('198.51.100.0/24'))).toBe(true);
    expect(t.lookup(ipv4('198.51.100.1'))).toBeUndefined();
  });

  it('a route added or removed after a lookup changes the next lookup (the last answer is not kept)', () => {
    const t = table();
    t.add(Ipv4Cidr.parse('0.0.0.0/0'), ipv4('10.0.0.1'));
    expect(t.lookup(ipv4('198.51.100.9'))?.nextHop).toBe(ipv4('10.0.0.1'));
    t.add(Ipv4Cidr.parse('198.51.100.0/24'), ipv4('10.0.0.3'));
    expect(t.lookup(ipv4('198.51.100.9'))?.nextHop).toBe(ipv4('10.0.0.3'));
    t.add(Ipv4Cidr.parse('198.51.100.0/24'), ipv4('10.0.0.4'));
    expect(t.lookup(ipv4('198.51.100.9'))?.nextHop).toBe(ipv4('10.0.0.4'));
    t.remove(Ipv4Cidr.parse('198.51.100.0/24'));
    expect(t.lookup(ipv4('198.51.100.9'))?.nextHop).toBe(ipv4('10.0.0.1'));
    t.remove(Ipv4Cidr.parse('0.0.0.0/0'));
    expect(t.lookup(ipv4('198.51.100.9'))).toBeUndefined();
    // Alternating destinations each get their own answer.
    expect(t.lookup(ipv4('10.0.0.5'))?.nextHop).toBe(ipv4('10.0.0.5'));
    expect(t.lookup(ipv4('10.0.0.6'))?.nextHop).toBe(ipv4('10.0.0.6'));
    expect(t.lookup(ipv4('10.0.0.5'))?.nextHop).toBe(ipv4('10.0.0.5'));
  });

  it('prints like ip route show', () => {
    const t = table();
    t.add(Ipv4Cidr.parse('0.0.0.0/0'), ipv4('10.0.0.1'));
    expect(t.show(ipv4('10.0.0.2'))).toBe('10.0.0.0/24 dev tap0 proto kernel scope link src 10.0.0.2\ndefault via 10.0.0.1 dev tap0');
  });
});
