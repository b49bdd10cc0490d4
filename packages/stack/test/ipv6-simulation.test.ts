/**
 * Two whole stacks (createStack: ARP, IPv4, IPv6, ICMPv6, NDP) on an in-memory wire with a virtual
 * clock: DAD, resolution over NDP with loss, a DAD conflict, hostile NDP.
 */
import { describe, expect, it } from 'vitest';
import { Ipv6Address, MacAddress, MemoryLink, VirtualClock, ipv6, seededRandom, withFaults, type Link } from '@tapstack/link';
import { createStack, type Stack } from '@tapstack/stack';

const MAC_A = MacAddress.parse('02:00:00:00:00:01');
const MAC_B = MacAddress.parse('02:00:00:00:00:02');

function pair(options: { a?: string[]; b?: string[]; wrapA?: (l: Link) => Link } = {}) {
  const clock = new VirtualClock();
  const [la, lb] = MemoryLink.pair({ clock, latencyMs: 0, macs: [MAC_A, MAC_B] });
  const a = createStack({ link: (options.wrapA ?? ((l) => l))(la), ip: '10.0.0.1/24', clock, random: seededRandom(1), ipv6: { addresses: options.a ?? ['fd00:10::1/64'] } });
  const b = createStack({ link: lb, ip: '10.0.0.2/24', clock, random: seededRandom(2), ipv6: { addresses: options.b ?? ['fd00:10::2/64'] } });
  return { clock, a, b };
}

/** Moves virtual time in 1 ms steps until the promise settles. */
async function run<T>(clock: VirtualClock, promise: Promise<T>, maxMs = 100_000): Promise<T> {
  let settled = false;
  let value: T | undefined;
  void promise.then((v) => {
    settled = true;
    value = v;
  });
  for (let t = 0; t < maxMs && !settled; t++) {
    clock.advance(1);
    for (let i = 0; i < 4; i++) await Promise.resolve();
  }
  if (!settled) throw new Error(`did not finish within ${maxMs} ms of virtual time`);
  return value as T;
}

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
