/**
 * The NUD state machine on its own: a VirtualClock and recording hooks, no wire.
 */
import { MacAddress, VirtualClock, formatIpv4, ipv4, ipv4FromNumber, type Ipv4Address } from '@tapstack/link';
import { describe, expect, it } from 'vitest';
import { NeighbourTable, type NeighbourParams } from '../src/index.ts';

const MAC1 = MacAddress.parse('02:00:00:00:0a:01');
const MAC2 = MacAddress.parse('02:00:00:00:0a:02');
const PEER = ipv4('10.0.0.1');

interface Recorded {
  solicits: { t: number; ip: string; to: string }[];
  sent: { t: number; mac: string; id: number }[];
  failed: { t: number; ip: string; ids: number[] }[];
}

function setup(params: Partial<NeighbourParams> = {}, random = () => 0.5) {
  const clock = new VirtualClock();
  const rec: Recorded = { solicits: [], sent: [], failed: [] };
  const table = new NeighbourTable({
    clock,
    params,
    random,
    device: 'tap0',
    hooks: {
      solicit: (ip, to) => rec.solicits.push({ t: clock.now(), ip: formatIpv4(ip), to: to ? to.toString() : 'broadcast' }),
      sendTo: (frame, mac) => {
        rec.sent.push({ t: clock.now(), mac: mac.toString(), id: frame[14]! | (frame[15]! << 8) });
        return true;
      },
      failed: (ip, frames) => rec.failed.push({ t: clock.now(), ip: formatIpv4(ip), ids: frames.map((f) => f[14]! | (f[15]! << 8)) }),
      noArpMac: (ip) => (ip === 0xffffffff ? MacAddress.BROADCAST : undefined),
    },
  });
  return { clock, table, rec };
}

/** A frame carrying a 16-bit id in its first payload bytes. */
function frame(id: number): Uint8Array {
  const f = new Uint8Array(20);
  f[12] = 0x88;
  f[13] = 0xb5;
  f[14] = id & 0xff;
  f[15] = id >> 8;
  return f;
}

describe('INCOMPLETE: resolution and failure', () => {
  it('sends mcast_solicit broadcast requests retrans_time apart, then FAILED with the queue dropped', () => {
    const { clock, table, rec } = setup();
    expect(table.output(PEER, frame(1))).toBe('queued');
    expect(table.output(PEER, frame(2))).toBe('queued');
    expect(table.lookup(PEER)?.state).toBe('INCOMPLETE');
    clock.advance(2999);
    expect(table.lookup(PEER)?.state).toBe('INCOMPLETE');
    clock.advance(1);
    expect(rec.solicits).toEqual([
      { t: 0, ip: '10.0.0.1', to: 'broadcast' },
      { t: 1000, ip: '10.0.0.1', to: 'broadcast' },
      { t: 2000, ip: '10.0.0.1', to: 'broadcast' },
    ]);
    expect(table.lookup(PEER)?.state).toBe('FAILED');
    expect(rec.failed).toEqual([{ t: 3000, ip: '10.0.0.1', ids: [1, 2] }]);
    expect(rec.sent).toEqual([]);
    expect(table.stats.get('res_failed')).toBe(1);
    expect(table.stats.get('queue_failed_discards')).toBe(2);
    clock.advance(60_000);
    expect(rec.solicits.length).toBe(3); // nothing more without traffic
  });

  it('more packets while INCOMPLETE send no extra requests (rate limit per destination)', () => {
    const { clock, table, rec } = setup();
    for (let i = 0; i < 50; i++) {
      table.output(PEER, frame(i));
      clock.advance(10);
    }
    expect(rec.solicits.length).toBe(1);
  });

  it('a FAILED entry starts over on the next packet', () => {
    const { clock, table, rec } = setup();
    table.output(PEER, frame(1));
    clock.advance(3000);
    expect(table.lookup(PEER)?.state).toBe('FAILED');
    expect(table.output(PEER, frame(2))).toBe('queued');
    expect(table.lookup(PEER)?.state).toBe('INCOMPLETE');
    expect(rec.solicits.map((s) => s.t)).toEqual([0, 1000, 2000, 3000]);
  });

  it('a reply flushes the queue in order and makes the entry REACHABLE', () => {
    const { clock, table, rec } = setup();
    for (let i = 1; i <= 5; i++) table.output(PEER, frame(i));
    clock.advance(300);
    expect(table.update(PEER, MAC1, { state: 'REACHABLE', override: 'after_locktime', create: false })).toBe('updated');
    expect(rec.sent.map((s) => s.id)).toEqual([1, 2, 3, 4, 5]);
    expect(rec.sent.every((s) => s.mac === MAC1.toString())).toBe(true);
    expect(table.lookup(PEER)?.state).toBe('REACHABLE');
    expect(table.lookup(PEER)?.queued).toBe(0);
    clock.advance(5000);
    expect(rec.solicits.length).toBe(1); // the retry timer was cancelled
    expect(table.output(PEER, frame(6))).toBe('sent');
  });

  it('queue overflow drops the oldest and counts it', () => {
    const { table, rec } = setup();
    for (let i = 0; i < 110; i++) expect(table.output(PEER, frame(i))).toBe('queued');
    expect(table.lookup(PEER)?.queued).toBe(101);
    expect(table.stats.get('unresolved_discards')).toBe(9);
    table.update(PEER, MAC1, { state: 'REACHABLE', override: 'always', create: false });
    expect(rec.sent.map((s) => s.id)).toEqual(Array.from({ length: 101 }, (_, i) => i + 9));
  });

  it('a queued frame that is a view into a larger buffer (a TAP batch) does not keep that buffer alive', () => {
    // The TAP device hands up every frame of one read as a view into one ArrayBuffer, and the
    // echo responder answers in the request's own frame. A reply that waits for ARP must not
    // pin the whole batch: unres_qlen_bytes counts frame bytes, so the queue must hold only those.
    const clock = new VirtualClock();
    const held: Uint8Array[] = [];
    const sent: Uint8Array[] = [];
    const table = new NeighbourTable({
      clock,
      hooks: { failed: (_ip, frames) => held.push(...frames), sendTo: (f) => sent.push(f) > 0 },
    });
    const batch = new ArrayBuffer(256 * 1514);
    const views = Array.from({ length: 101 }, (_, i) => {
      const v = new Uint8Array(batch, i * 1514, 98);
      v.fill(i + 1);
      return v;
    });
    for (const v of views) expect(table.output(PEER, v)).toBe('queued');
    clock.advance(3000);
    expect(held).toHaveLength(101);
    for (const [i, f] of held.entries()) {
      expect(f.buffer).not.toBe(batch);
      expect(f.buffer.byteLength).toBe(98);
      expect([...f]).toEqual(Array(98).fill(i + 1));
    }
    // Queued again and resolved: the frames that go out carry the same bytes.
    const again = ipv4('10.0.0.9');
    for (const v of views.slice(0, 3)) table.output(again, v);
    table.update(again, MAC1, { state: 'REACHABLE', override: 'always', create: false });
    expect(sent.map((f) => [f.buffer === batch, f.length, f[0]])).toEqual([
      [false, 98, 1],
      [false, 98, 2],
      [false, 98, 3],
    ]);
  });

  it('learning from a request (STALE) also flushes, and the use moves the entry to DELAY', () => {
    const { table, rec } = setup();
    table.output(PEER, frame(1));
    table.update(PEER, MAC1, { state: 'STALE', override: 'always', create: true });
    expect(rec.sent.map((s) => s.id)).toEqual([1]);
    expect(table.lookup(PEER)?.state).toBe('DELAY');
  });
});

describe('REACHABLE -> STALE -> DELAY -> PROBE', () => {
  function reachable(random = () => 0.5) {
    const s = setup({}, random);
    s.table.update(PEER, MAC1, { state: 'REACHABLE', override: 'always', create: true });
    return s;
  }

  it('REACHABLE lasts reachable_time (base 30 s x 0.5-1.5), then STALE when unused', () => {
    for (const [r, ms] of [
      [0.5, 30_000],
      [0, 15_000],
      [0.999, 44_970],
    ] as const) {
      const { clock, table } = reachable(() => r);
      expect(table.reachableTimeMs).toBe(ms);
      clock.advance(ms - 1);
      expect(table.lookup(PEER)?.state).toBe('REACHABLE');
      clock.advance(1);
      expect(table.lookup(PEER)?.state).toBe('STALE');
    }
  });

  it('STALE is usable; the first use starts DELAY; no confirmation in 5 s gives PROBE with unicast solicitations', () => {
    const { clock, table, rec } = reachable();
    clock.advance(30_000);
    expect(table.lookup(PEER)?.state).toBe('STALE');
    clock.advance(100_000);
    expect(rec.solicits).toEqual([]); // STALE by itself sends nothing
    expect(table.output(PEER, frame(7))).toBe('sent');
    expect(table.lookup(PEER)?.state).toBe('DELAY');
    const t0 = clock.now();
    clock.advance(4999);
    expect(table.lookup(PEER)?.state).toBe('DELAY');
    clock.advance(1);
    expect(table.lookup(PEER)?.state).toBe('PROBE');
    expect(rec.solicits).toEqual([{ t: t0 + 5000, ip: '10.0.0.1', to: MAC1.toString() }]);
    expect(table.output(PEER, frame(8))).toBe('sent'); // PROBE still sends to the old MAC
    // the reply: REACHABLE again
    clock.advance(200);
    table.update(PEER, MAC1, { state: 'REACHABLE', override: 'after_locktime', create: false });
    expect(table.lookup(PEER)?.state).toBe('REACHABLE');
    clock.advance(10_000);
    expect(rec.solicits.length).toBe(1);
  });

  it('PROBE without answer: ucast_solicit probes retrans_time apart, then FAILED', () => {
    const { clock, table, rec } = reachable();
    clock.advance(30_000);
    table.output(PEER, frame(1));
    clock.advance(5000);
    const t0 = clock.now();
    clock.advance(2999);
    expect(table.lookup(PEER)?.state).toBe('PROBE');
    clock.advance(1);
    expect(table.lookup(PEER)?.state).toBe('FAILED');
    expect(rec.solicits.map((s) => [s.t - t0, s.to])).toEqual([
      [0, MAC1.toString()],
      [1000, MAC1.toString()],
      [2000, MAC1.toString()],
    ]);
    expect(table.stats.get('res_failed')).toBe(1);
    expect(rec.failed).toEqual([{ t: t0 + 3000, ip: '10.0.0.1', ids: [] }]);
  });

  it('a confirmation during DELAY returns to REACHABLE without probing', () => {
    const { clock, table, rec } = reachable();
    clock.advance(30_000);
    table.output(PEER, frame(1));
    clock.advance(2000);
    expect(table.confirm(PEER)).toBe(true);
    clock.advance(3000);
    expect(table.lookup(PEER)?.state).toBe('REACHABLE');
    expect(rec.solicits).toEqual([]);
  });

  it('used shortly before expiry, REACHABLE goes straight to DELAY', () => {
    const { clock, table } = reachable();
    clock.advance(29_000);
    table.output(PEER, frame(1));
    clock.advance(1000);
    expect(table.lookup(PEER)?.state).toBe('DELAY');
  });
});

describe('updates: locktime, overrides, static entries', () => {
  it('a different MAC within locktime is ignored; after it, accepted; "always" overrides at once', () => {
    const { clock, table } = setup();
    table.update(PEER, MAC1, { state: 'REACHABLE', override: 'always', create: true });
    clock.advance(500);
    expect(table.update(PEER, MAC2, { state: 'REACHABLE', override: 'after_locktime', create: false })).toBe('ignored_locked');
    expect(table.lookup(PEER)?.mac?.equals(MAC1)).toBe(true);
    clock.advance(500);
    expect(table.update(PEER, MAC2, { state: 'REACHABLE', override: 'after_locktime', create: false })).toBe('updated');
    expect(table.lookup(PEER)?.mac?.equals(MAC2)).toBe(true);
    expect(table.update(PEER, MAC1, { state: 'STALE', override: 'always', create: false })).toBe('updated');
    expect(table.lookup(PEER)?.mac?.equals(MAC1)).toBe(true);
    expect(table.lookup(PEER)?.state).toBe('STALE');
  });

  it('a STALE hint with the same MAC does not downgrade REACHABLE', () => {
    const { table } = setup();
    table.update(PEER, MAC1, { state: 'REACHABLE', override: 'always', create: true });
    table.update(PEER, MAC1, { state: 'STALE', override: 'always', create: false });
    expect(table.lookup(PEER)?.state).toBe('REACHABLE');
  });

  it('update without create leaves unknown addresses alone', () => {
    const { table } = setup();
    expect(table.update(PEER, MAC1, { state: 'REACHABLE', override: 'always', create: false })).toBe('not_found');
    expect(table.size).toBe(0);
  });

  it('PERMANENT entries send at once, never expire, ignore updates, and can be removed', () => {
    const { clock, table, rec } = setup();
    table.addStatic(PEER, MAC1);
    expect(table.output(PEER, frame(1))).toBe('sent');
    clock.advance(10 * 60_000);
    expect(table.lookup(PEER)?.state).toBe('PERMANENT');
    expect(table.update(PEER, MAC2, { state: 'REACHABLE', override: 'always', create: false })).toBe('ignored_static');
    expect(rec.sent[0]!.mac).toBe(MAC1.toString());
    expect(table.remove(PEER)).toBe(true);
    expect(table.lookup(PEER)).toBeUndefined();
    expect(table.remove(PEER)).toBe(false);
  });

  it('NOARP entries come from the hook and send without a request', () => {
    const { table, rec } = setup();
    expect(table.output(ipv4('255.255.255.255'), frame(1))).toBe('sent');
    expect(rec.sent[0]!.mac).toBe('ff:ff:ff:ff:ff:ff');
    expect(rec.solicits).toEqual([]);
    expect(table.lookup(ipv4('255.255.255.255'))?.state).toBe('NOARP');
  });

  it('show() prints like ip neigh show; formatStats like /proc/net/stat/arp_cache', () => {
    const { clock, table } = setup();
    table.update(PEER, MAC1, { state: 'REACHABLE', override: 'always', create: true });
    table.addStatic(ipv4('10.0.0.5'), MAC2);
    table.output(ipv4('10.0.0.9'), frame(1));
    expect(table.show()).toBe(
      [
        '10.0.0.1 dev tap0 lladdr 02:00:00:00:0a:01 REACHABLE',
        '10.0.0.5 dev tap0 lladdr 02:00:00:00:0a:02 PERMANENT',
        '10.0.0.9 dev tap0 INCOMPLETE',
      ].join('\n'),
    );
    clock.advance(3000);
    expect(table.show().split('\n')[2]).toBe('10.0.0.9 dev tap0 FAILED');
    // ip -s neigh: seconds since used/confirmed/updated, and how many solicitations went out
    expect(table.show({ statistics: true }).split('\n')).toEqual([
      '10.0.0.1 dev tap0 lladdr 02:00:00:00:0a:01 used 3/3/3 probes 0 REACHABLE',
      '10.0.0.5 dev tap0 lladdr 02:00:00:00:0a:02 used 3/3/3 probes 0 PERMANENT',
      // a new entry counts as confirmed 2 * base_reachable_time before it was made, as Linux's neigh_alloc
      '10.0.0.9 dev tap0 used 3/63/0 probes 3 FAILED',
    ]);
    const [header, values] = table.formatStats().split('\n');
    const stats = Object.fromEntries(header!.trim().split(/\s+/).map((k, i) => [k, Number(values!.trim().split(/\s+/)[i])]));
    expect(stats).toMatchObject({ entries: 3, allocs: 3, lookups: 1, hits: 0, res_failed: 1 });
  });
});

describe('garbage collection', () => {
  it('5000 neighbours learned: the table never exceeds gc_thresh3, forced GC evicts STALE entries', () => {
    const { table } = setup();
    let max = 0;
    for (let i = 0; i < 5000; i++) {
      const ip = ipv4FromNumber(0x0a010000 + i);
      const r = table.update(ip, MAC1, { state: 'STALE', override: 'always', create: true });
      expect(r).toBe('created');
      max = Math.max(max, table.size);
    }
    expect(max).toBeLessThanOrEqual(1024);
    expect(table.stats.get('forced_gc_runs')).toBeGreaterThan(0);
    expect(table.stats.get('table_fulls')).toBe(0);
    // the newest survive, the oldest went first
    expect(table.lookup(ipv4FromNumber(0x0a010000 + 4999))).toBeDefined();
    expect(table.lookup(ipv4FromNumber(0x0a010000))).toBeUndefined();
  });

  it('FAILED and STALE go before REACHABLE; PERMANENT never', () => {
    const { clock, table } = setup({ gcThresh1: 2, gcThresh2: 4, gcThresh3: 6 });
    const ip = (i: number): Ipv4Address => ipv4FromNumber(0x0a000100 + i);
    table.addStatic(ip(0), MAC1);
    table.output(ip(1), frame(1)); // will fail
    clock.advance(3000);
    table.update(ip(2), MAC1, { state: 'STALE', override: 'always', create: true });
    for (let i = 3; i <= 6; i++) table.update(ip(i), MAC1, { state: 'REACHABLE', override: 'always', create: true });
    expect(table.size).toBe(7); // 6 dynamic + 1 permanent
    clock.advance(10); // all REACHABLE ones were updated within 5 s: not evictable in pass 3
    table.update(ip(7), MAC1, { state: 'REACHABLE', override: 'always', create: true });
    expect(table.lookup(ip(0))?.state).toBe('PERMANENT');
    expect(table.lookup(ip(1))).toBeUndefined(); // FAILED went
    expect(table.lookup(ip(2))).toBeUndefined(); // STALE went
    for (let i = 3; i <= 7; i++) expect(table.lookup(ip(i))?.state).toBe('REACHABLE');
    expect(table.stats.get('forced_gc_runs')).toBeGreaterThan(0);
  });

  it('when nothing can be evicted, a new entry fails cleanly and is counted', () => {
    const { table } = setup({ gcThresh1: 2, gcThresh2: 4, gcThresh3: 8 });
    // eight INCOMPLETE entries with packets waiting: all referenced
    for (let i = 0; i < 8; i++) expect(table.output(ipv4FromNumber(0x0a000200 + i), frame(i))).toBe('queued');
    expect(table.output(ipv4('10.0.3.1'), frame(99))).toBe('dropped');
    expect(table.update(ipv4('10.0.3.2'), MAC1, { state: 'STALE', override: 'always', create: true })).toBe('table_full');
    expect(table.size).toBe(8);
    expect(table.stats.get('table_fulls')).toBe(2);
  });

  it('the periodic GC removes FAILED and long-unused entries above gc_thresh1', () => {
    const { clock, table } = setup({ gcThresh1: 2 });
    for (let i = 0; i < 4; i++) table.update(ipv4FromNumber(0x0a000300 + i), MAC1, { state: 'STALE', override: 'always', create: true });
    table.addStatic(ipv4('10.0.9.9'), MAC2);
    clock.advance(60_000);
    expect(table.size).toBe(5); // used at t=0, not yet older than gc_stale_time at the t=30 s and 60 s runs
    clock.advance(30_000);
    expect(table.size).toBe(1);
    expect(table.lookup(ipv4('10.0.9.9'))?.state).toBe('PERMANENT');
    expect(table.stats.get('periodic_gc_runs')).toBe(3);
  });

  it('close() cancels every timer', () => {
    const { clock, table } = setup();
    table.output(PEER, frame(1));
    table.update(ipv4('10.0.0.2'), MAC1, { state: 'REACHABLE', override: 'always', create: true });
    expect(clock.pending).toBeGreaterThan(0);
    table.close();
    expect(clock.pending).toBe(0);
  });
});
