/**
 * Simulation: whole Arp instances talking over an in-memory wire on a VirtualClock.
 */
import {
  EtherTypeDispatcher,
  LinkWrapper,
  MacAddress,
  MemoryLink,
  VirtualClock,
  formatIpv4,
  ipv4,
  ipv4FromNumber,
  withFaults,
  type Ipv4Address,
  type Link,
} from '@tapstack/link';
import { describe, expect, it } from 'vitest';
import { Arp, ArpRepr, buildArpFrame, type ArpOptions, type ArpRepr as ArpReprType } from '../src/index.ts';

const MAC_A = MacAddress.parse('02:00:00:00:0a:01');
const MAC_B = MacAddress.parse('02:00:00:00:0b:02');
const MAC_X = MacAddress.parse('02:00:00:00:0c:03');
const IP_A = ipv4('10.0.0.1');
const IP_B = ipv4('10.0.0.2');
const TEST_TYPE = 0x88b5;

/** Records every frame a link sends, with the time. */
class Recorder extends LinkWrapper {
  readonly sent: { t: number; frame: Uint8Array }[] = [];
  constructor(
    inner: Link,
    private readonly clock: VirtualClock,
  ) {
    super(inner);
  }
  override send(frame: Uint8Array): boolean {
    this.sent.push({ t: this.clock.now(), frame: frame.slice() });
    return super.send(frame);
  }
  arp(): { t: number; dst: string; repr: ArpReprType }[] {
    return this.sent
      .filter((s) => s.frame[12] === 0x08 && s.frame[13] === 0x06)
      .map((s) => {
        const r = ArpRepr.parseBytes(s.frame.subarray(14));
        if (!r.ok) throw new Error(r.reason);
        return { t: s.t, dst: MacAddress.fromBytes(s.frame, 0).toString(), repr: r.value };
      });
  }
}

interface Host {
  arp: Arp;
  dispatcher: EtherTypeDispatcher;
  wire: Recorder;
  /** Payload ids of TEST_TYPE frames received, in order. */
  received: number[];
}

function host(link: Link, clock: VirtualClock, addresses: Ipv4Address[], options: Partial<ArpOptions> = {}): Host {
  const wire = new Recorder(link, clock);
  const dispatcher = new EtherTypeDispatcher(wire);
  const received: number[] = [];
  dispatcher.register(TEST_TYPE, (f) => received.push(f[14]! | (f[15]! << 8)));
  const arp = new Arp({ dispatcher, clock, addresses, random: () => 0.5, announce: false, ...options });
  return { arp, dispatcher, wire, received };
}

function world(optionsA: Partial<ArpOptions> = {}, optionsB: Partial<ArpOptions> = {}, faults?: { drop: number; seed: number }) {
  const clock = new VirtualClock();
  const [la, lb] = MemoryLink.pair({ clock, macs: [MAC_A, MAC_B] });
  const a = host(faults ? withFaults(la, { ...faults, direction: 'both' }) : la, clock, [IP_A], optionsA);
  const b = host(lb, clock, [IP_B], optionsB);
  return { clock, a, b };
}

/** A frame of our test EtherType carrying an id; the resolver fills the MACs. */
function frame(id: number): Uint8Array {
  const f = new Uint8Array(14 + 46);
  f[12] = TEST_TYPE >> 8;
  f[13] = TEST_TYPE & 0xff;
  f[14] = id & 0xff;
  f[15] = id >> 8;
  return f;
}

/** An ARP frame as if from another host on the wire, handed straight to `h`'s dispatcher. */
function inject(h: Host, dst: MacAddress, src: MacAddress, repr: ArpReprType): void {
  h.dispatcher.input(buildArpFrame(dst, src, repr));
}

describe('resolution between two stacks', () => {
  it('A resolves B: the first packet waits, then arrives; both learn each other', () => {
    const { clock, a, b } = world();
    expect(a.arp.resolve(IP_B, frame(1))).toBe('queued');
    clock.advance(0);
    expect(b.received).toEqual([1]);
    expect(a.arp.table.lookup(IP_B)?.state).toBe('REACHABLE');
    expect(a.arp.table.lookup(IP_B)?.mac?.equals(MAC_B)).toBe(true);
    // B learned A from the request (it targeted B): STALE, usable at once
    expect(b.arp.table.lookup(IP_A)?.state).toBe('STALE');
    expect(b.arp.table.lookup(IP_A)?.mac?.equals(MAC_A)).toBe(true);
    // B's answer to A (think: echo reply) goes out immediately, no second ARP round (smoltcp #597)
    expect(b.arp.resolve(IP_A, frame(2))).toBe('sent');
    clock.advance(0);
    expect(a.received).toEqual([2]);
    expect(b.arp.counters.get('tx_requests')).toBe(0);
    expect(a.arp.counters.get('tx_requests')).toBe(1);
    expect(b.arp.counters.get('tx_replies')).toBe(1);
    // the request and the reply, field by field (RFC 826)
    const [req] = a.wire.arp();
    expect(req!.dst).toBe('ff:ff:ff:ff:ff:ff');
    expect(req!.repr).toEqual({ operation: 'request', senderMac: MAC_A, senderIp: IP_A, targetMac: MacAddress.ZERO, targetIp: IP_B });
    const [rep] = b.wire.arp();
    expect(rep!.dst).toBe(MAC_A.toString());
    expect(rep!.repr).toEqual({ operation: 'reply', senderMac: MAC_B, senderIp: IP_B, targetMac: MAC_A, targetIp: IP_A });
  });

  it('B, used while STALE, goes DELAY then PROBE; A answers the unicast solicitation; B is REACHABLE', () => {
    const { clock, a, b } = world();
    a.arp.resolve(IP_B, frame(1));
    clock.advance(0);
    b.arp.resolve(IP_A, frame(2));
    expect(b.arp.table.lookup(IP_A)?.state).toBe('DELAY');
    clock.advance(5000);
    const probes = b.wire.arp().filter((f) => f.repr.operation === 'request');
    expect(probes.length).toBe(1);
    expect(probes[0]!.dst).toBe(MAC_A.toString()); // unicast
    expect(b.arp.counters.get('tx_unicast_solicits')).toBe(1);
    expect(b.arp.table.lookup(IP_A)?.state).toBe('REACHABLE');
  });

  it('packets sent while INCOMPLETE arrive after resolution, in order', () => {
    const { clock, a, b } = world({}, {});
    // a slow wire: the reply takes a while
    for (let i = 1; i <= 10; i++) expect(a.arp.resolve(IP_B, frame(i))).toBe('queued');
    expect(b.received).toEqual([]);
    clock.advance(0);
    expect(b.received).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(a.arp.counters.get('resolve_queued')).toBe(10);
    expect(a.arp.counters.get('tx_requests')).toBe(1);
  });

  it('queue overflow while INCOMPLETE drops the oldest, counted', () => {
    const { clock, a, b } = world();
    for (let i = 0; i < 110; i++) a.arp.resolve(IP_B, frame(i));
    clock.advance(0);
    expect(b.received).toEqual(Array.from({ length: 101 }, (_, i) => i + 9));
    expect(a.arp.table.stats.get('unresolved_discards')).toBe(9);
  });
});

describe('an absent host', () => {
  it('gets exactly 3 requests 1 s apart, then FAILED: the queue is dropped, counted, reported', () => {
    const { clock, a, b } = world();
    const absent = ipv4('10.0.0.9');
    const failures: { ip: string; frames: number; t: number }[] = [];
    a.arp.onResolutionFailed((ip, frames) => failures.push({ ip: formatIpv4(ip), frames: frames.length, t: clock.now() }));
    a.arp.resolve(absent, frame(1));
    a.arp.resolve(absent, frame(2));
    clock.advance(2999);
    expect(a.arp.table.lookup(absent)?.state).toBe('INCOMPLETE');
    clock.advance(1);
    expect(a.arp.table.lookup(absent)?.state).toBe('FAILED');
    const requests = a.wire.arp();
    expect(requests.map((r) => r.t)).toEqual([0, 1000, 2000]);
    expect(requests.every((r) => r.dst === 'ff:ff:ff:ff:ff:ff' && r.repr.targetIp === absent)).toBe(true);
    expect(failures).toEqual([{ ip: '10.0.0.9', frames: 2, t: 3000 }]);
    expect(a.arp.counters.get('resolve_failed_frames')).toBe(2);
    expect(a.arp.table.stats.get('res_failed')).toBe(1);
    expect(a.arp.table.stats.get('queue_failed_discards')).toBe(2);
    // B saw three requests for someone else and learned nothing (no entry for A before)
    expect(b.arp.counters.get('rx_request_not_for_us')).toBe(3);
    expect(b.arp.table.lookup(IP_A)).toBeUndefined();
    expect(b.received).toEqual([]);
  });

  it('does not delay resolution of other neighbours (requests are limited per destination only)', () => {
    const { clock, a, b } = world();
    a.arp.resolve(ipv4('10.0.0.9'), frame(1));
    clock.advance(100);
    expect(a.arp.resolve(IP_B, frame(2))).toBe('queued');
    clock.advance(0);
    expect(b.received).toEqual([2]);
    expect(a.arp.table.lookup(IP_B)?.state).toBe('REACHABLE');
    expect(a.wire.arp().filter((r) => r.repr.targetIp === IP_B).map((r) => r.t)).toEqual([100]);
  });

  it('a neighbour that goes away: REACHABLE -> STALE -> DELAY -> PROBE -> FAILED', () => {
    const { clock, a, b } = world();
    a.arp.resolve(IP_B, frame(1));
    clock.advance(0);
    b.arp.removeAddress(IP_B); // B stops answering for 10.0.0.2
    clock.advance(30_000);
    expect(a.arp.table.lookup(IP_B)?.state).toBe('STALE');
    expect(a.arp.resolve(IP_B, frame(2))).toBe('sent');
    expect(a.arp.table.lookup(IP_B)?.state).toBe('DELAY');
    clock.advance(5000);
    expect(a.arp.table.lookup(IP_B)?.state).toBe('PROBE');
    clock.advance(2999);
    expect(a.arp.table.lookup(IP_B)?.state).toBe('PROBE');
    clock.advance(1);
    expect(a.arp.table.lookup(IP_B)?.state).toBe('FAILED');
    const probes = a.wire.arp().slice(1);
    expect(probes.map((p) => [p.t, p.dst])).toEqual([
      [35_000, MAC_B.toString()],
      [36_000, MAC_B.toString()],
      [37_000, MAC_B.toString()],
    ]);
    expect(a.arp.counters.get('tx_unicast_solicits')).toBe(3);
  });
});

describe('under pressure and loss', () => {
  it('5000 senders asking for us: every one answered, the table stays at or under gc_thresh3', () => {
    const { clock, b } = world();
    let max = 0;
    for (let i = 0; i < 5000; i++) {
      const mac = MacAddress.fromBytes(new Uint8Array([0x02, 0x10, 0, 0, i >> 8, i & 0xff]));
      inject(b, MacAddress.BROADCAST, mac, {
        operation: 'request',
        senderMac: mac,
        senderIp: ipv4FromNumber(0x0a010000 + i),
        targetMac: MacAddress.ZERO,
        targetIp: IP_B,
      });
      max = Math.max(max, b.arp.table.size);
      if (i % 1000 === 999) clock.advance(1000);
    }
    expect(max).toBeLessThanOrEqual(1024);
    expect(b.arp.counters.get('tx_replies')).toBe(5000);
    expect(b.arp.table.stats.get('forced_gc_runs')).toBeGreaterThan(0);
    expect(b.arp.table.stats.get('rcv_probes_mcast')).toBe(5000);
  });

  it('5000 destinations with packets waiting: the table stops at gc_thresh3 and counts the rest', () => {
    const { a } = world();
    for (let i = 0; i < 5000; i++) a.arp.resolve(ipv4FromNumber(0x0a020000 + i), frame(i));
    expect(a.arp.table.size).toBe(1024);
    expect(a.arp.counters.get('resolve_dropped_table_full')).toBe(5000 - 1024);
    expect(a.arp.table.stats.get('table_fulls')).toBe(5000 - 1024);
  });

  it('with 20% frame loss each way, resolution still succeeds (retries, and a new round on the next packet)', () => {
    let neededRetries = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const { clock, a, b } = world({}, {}, { drop: 0.2, seed });
      // like ping: one packet a second
      for (let i = 0; i < 10; i++) {
        a.arp.resolve(IP_B, frame(i));
        clock.advance(1000);
      }
      const state = a.arp.table.lookup(IP_B)?.state;
      expect(['REACHABLE', 'STALE', 'DELAY', 'PROBE']).toContain(state);
      expect(b.received.length).toBeGreaterThan(0);
      if (a.arp.counters.get('tx_requests') > 1) neededRetries++;
    }
    expect(neededRetries).toBeGreaterThan(0); // the loss really hit the ARP exchange sometimes
  });
});

describe('responder', () => {
  it('answers an RFC 5227 probe for our address, unicast, target IP 0.0.0.0', () => {
    const { b } = world();
    inject(b, MacAddress.BROADCAST, MAC_X, {
      operation: 'request',
      senderMac: MAC_X,
      senderIp: 0 as Ipv4Address,
      targetMac: MacAddress.BROADCAST,
      targetIp: IP_B,
    });
    const [answer] = b.wire.arp();
    expect(answer!.dst).toBe(MAC_X.toString());
    expect(answer!.repr).toEqual({ operation: 'reply', senderMac: MAC_B, senderIp: IP_B, targetMac: MAC_X, targetIp: 0 });
    expect(b.arp.counters.get('rx_probes')).toBe(1);
    expect(b.arp.counters.get('tx_probe_replies')).toBe(1);
    expect(b.arp.table.size).toBe(0); // nothing learned from 0.0.0.0
  });

  it('learns from requests for others only into existing entries; unsolicited replies only with arpAccept', () => {
    for (const arpAccept of [false, true]) {
      const { b } = world({}, { arpAccept });
      const other = ipv4('10.0.0.7');
      inject(b, MacAddress.BROADCAST, MAC_X, { operation: 'request', senderMac: MAC_X, senderIp: other, targetMac: MacAddress.ZERO, targetIp: ipv4('10.0.0.8') });
      expect(b.arp.table.lookup(other)).toBeUndefined();
      expect(b.arp.counters.get('rx_request_not_for_us')).toBe(1);
      inject(b, MAC_B, MAC_X, { operation: 'reply', senderMac: MAC_X, senderIp: other, targetMac: MAC_B, targetIp: IP_B });
      if (arpAccept) {
        expect(b.arp.table.lookup(other)?.state).toBe('REACHABLE');
      } else {
        expect(b.arp.table.lookup(other)).toBeUndefined();
        expect(b.arp.counters.get('rx_unsolicited_ignored')).toBe(1);
      }
      expect(b.wire.arp()).toEqual([]); // nothing answered
    }
  });

  it('never learns 0.0.0.0: a reply (or announcement) with sender IP 0 creates nothing, even with arpAccept', () => {
    // Linux arp_process stops at sip == 0 for every opcode (after answering a probe).
    const { b } = world({}, { arpAccept: true });
    inject(b, MAC_B, MAC_X, { operation: 'reply', senderMac: MAC_X, senderIp: 0 as Ipv4Address, targetMac: MAC_B, targetIp: IP_B });
    inject(b, MacAddress.BROADCAST, MAC_X, { operation: 'reply', senderMac: MAC_X, senderIp: 0 as Ipv4Address, targetMac: MacAddress.ZERO, targetIp: 0 as Ipv4Address });
    expect(b.arp.table.lookup(0 as Ipv4Address)).toBeUndefined();
    expect(b.arp.table.size).toBe(0);
    expect(b.arp.counters.get('rx_bad_sender_ip')).toBe(2);
    expect(b.wire.arp()).toEqual([]);
  });

  it('a request from a known neighbour updates its entry (RFC 826 merge)', () => {
    const { clock, b } = world();
    const other = ipv4('10.0.0.7');
    b.arp.resolve(other, frame(1));
    inject(b, MacAddress.BROADCAST, MAC_X, { operation: 'request', senderMac: MAC_X, senderIp: other, targetMac: MacAddress.ZERO, targetIp: ipv4('10.0.0.8') });
    // the waiting packet went out (first packet not lost) and the entry is in use: DELAY
    expect(b.arp.table.lookup(other)?.mac?.equals(MAC_X)).toBe(true);
    expect(b.arp.table.lookup(other)?.state).toBe('DELAY');
    clock.advance(0);
  });

  it('two replies racing: the first wins within locktime; a gratuitous ARP overrides at once', () => {
    const { clock, a } = world();
    const other = ipv4('10.0.0.7');
    a.arp.resolve(other, frame(1));
    inject(a, MAC_A, MAC_X, { operation: 'reply', senderMac: MAC_X, senderIp: other, targetMac: MAC_A, targetIp: IP_A });
    clock.advance(100);
    inject(a, MAC_A, MAC_B, { operation: 'reply', senderMac: MAC_B, senderIp: other, targetMac: MAC_A, targetIp: IP_A });
    expect(a.arp.table.lookup(other)?.mac?.equals(MAC_X)).toBe(true);
    expect(a.arp.counters.get('rx_update_locked')).toBe(1);
    inject(a, MacAddress.BROADCAST, MAC_B, { operation: 'request', senderMac: MAC_B, senderIp: other, targetMac: MacAddress.ZERO, targetIp: other });
    expect(a.arp.table.lookup(other)?.mac?.equals(MAC_B)).toBe(true);
    expect(a.arp.counters.get('rx_gratuitous')).toBe(1);
  });

  it('every drop path has its counter and sends nothing', () => {
    const { b } = world();
    const good: ArpReprType = { operation: 'request', senderMac: MAC_X, senderIp: ipv4('10.0.0.7'), targetMac: MacAddress.ZERO, targetIp: IP_B };
    const cases: [string, Uint8Array][] = [];
    const base = buildArpFrame(MacAddress.BROADCAST, MAC_X, good);
    const mutate = (f: (x: Uint8Array) => void): Uint8Array => {
      const c = base.slice();
      f(c);
      return c;
    };
    cases.push(['rx_truncated_header', base.slice(0, 14 + 7)]);
    cases.push(['rx_truncated_addresses', base.slice(0, 14 + 27)]);
    cases.push(['rx_bad_htype', mutate((x) => (x[15] = 6))]);
    cases.push(['rx_bad_ptype', mutate((x) => (x[16] = 0x86))]);
    cases.push(['rx_bad_hlen', mutate((x) => (x[18] = 5))]);
    cases.push(['rx_bad_plen', mutate((x) => (x[19] = 3))]);
    cases.push(['rx_bad_opcode', mutate((x) => (x[21] = 4))]);
    cases.push(['rx_own_mac', buildArpFrame(MacAddress.BROADCAST, MAC_B, { ...good, senderMac: MAC_B })]);
    cases.push(['rx_own_mac', buildArpFrame(MacAddress.BROADCAST, MAC_X, { ...good, senderMac: MAC_B })]);
    cases.push(['rx_own_mac', buildArpFrame(MacAddress.BROADCAST, MAC_B, good)]); // our frame echoed back
    cases.push(['rx_bad_sender_mac', buildArpFrame(MacAddress.BROADCAST, MAC_X, { ...good, senderMac: MacAddress.BROADCAST })]);
    cases.push(['rx_bad_sender_mac', buildArpFrame(MacAddress.BROADCAST, MAC_X, { ...good, senderMac: MacAddress.parse('01:00:5e:00:00:01') })]);
    cases.push(['rx_bad_sender_ip', buildArpFrame(MacAddress.BROADCAST, MAC_X, { ...good, senderIp: ipv4('224.0.0.1') })]);
    cases.push(['rx_bad_sender_ip', buildArpFrame(MacAddress.BROADCAST, MAC_X, { ...good, senderIp: ipv4('255.255.255.255') })]);
    cases.push(['rx_bad_sender_ip', buildArpFrame(MacAddress.BROADCAST, MAC_X, { ...good, senderIp: ipv4('127.0.0.1') })]);
    cases.push(['rx_bad_target_ip', buildArpFrame(MacAddress.BROADCAST, MAC_X, { ...good, targetIp: ipv4('239.1.2.3') })]);
    for (const [counter, f] of cases) {
      const before = b.arp.counters.get(counter as never);
      b.dispatcher.input(f);
      expect(b.arp.counters.get(counter as never), counter).toBe(before + 1);
    }
    expect(b.wire.sent).toEqual([]);
    expect(b.arp.table.size).toBe(0);
    expect(b.dispatcher.counters.get('rx_handler_error')).toBe(0);
  });

  it('proxy ARP answers for configured prefixes only', () => {
    const { b } = world({}, { proxy: [{ address: ipv4('10.0.1.0'), prefixLength: 24 }] });
    const ask = (targetIp: Ipv4Address) =>
      inject(b, MacAddress.BROADCAST, MAC_X, { operation: 'request', senderMac: MAC_X, senderIp: ipv4('10.0.0.7'), targetMac: MacAddress.ZERO, targetIp });
    ask(ipv4('10.0.1.5'));
    ask(ipv4('10.0.2.5'));
    const answers = b.wire.arp();
    expect(answers.length).toBe(1);
    expect(answers[0]!.repr).toMatchObject({ operation: 'reply', senderMac: MAC_B, senderIp: ipv4('10.0.1.5'), targetMac: MAC_X });
    expect(b.arp.counters.get('tx_proxy_replies')).toBe(1);
  });

  it('broadcast and multicast next hops are NOARP: no request, computed MAC', () => {
    const { clock, a } = world({ broadcasts: [ipv4('10.0.0.255')] });
    expect(a.arp.resolve(ipv4('255.255.255.255'), frame(1))).toBe('sent');
    expect(a.arp.resolve(ipv4('10.0.0.255'), frame(2))).toBe('sent');
    expect(a.arp.resolve(ipv4('224.0.0.251'), frame(3))).toBe('sent');
    expect(a.arp.resolve(ipv4('239.255.255.250'), frame(4))).toBe('sent');
    clock.advance(0);
    expect(a.wire.sent.map((s) => MacAddress.fromBytes(s.frame, 0).toString())).toEqual([
      'ff:ff:ff:ff:ff:ff',
      'ff:ff:ff:ff:ff:ff',
      '01:00:5e:00:00:fb',
      '01:00:5e:7f:ff:fa',
    ]);
    expect(a.arp.counters.get('tx_requests')).toBe(0);
    expect(a.arp.table.show()).toContain('224.0.0.251 dev mem-a lladdr 01:00:5e:00:00:fb NOARP');
  });
});

describe('start(): announce, probe, defend', () => {
  it('announces each address twice, 2 s apart, with gratuitous ARP', async () => {
    const { clock, a, b } = world({ announce: true });
    await a.arp.start();
    clock.advance(5000);
    const ann = a.wire.arp();
    expect(ann.map((x) => x.t)).toEqual([0, 2000]);
    for (const x of ann) {
      expect(x.dst).toBe('ff:ff:ff:ff:ff:ff');
      expect(x.repr).toEqual({ operation: 'request', senderMac: MAC_A, senderIp: IP_A, targetMac: MacAddress.ZERO, targetIp: IP_A });
    }
    expect(b.arp.counters.get('rx_gratuitous')).toBe(2);
  });

  it('probes (RFC 5227) before using a free address, then announces it', async () => {
    const { clock, a } = world({ probe: true, announce: true });
    expect(a.arp.addresses).toEqual([]);
    const started = a.arp.start();
    clock.advance(20_000);
    expect(await started).toEqual({ inUse: [] });
    expect(a.arp.addresses).toEqual([IP_A]);
    const frames = a.wire.arp();
    const probes = frames.filter((f) => f.repr.senderIp === 0);
    expect(probes.length).toBe(3);
    // random 0.5: first after 500 ms, then 1500 ms apart (PROBE_MIN..PROBE_MAX)
    expect(probes.map((p) => p.t)).toEqual([500, 2000, 3500]);
    const announcements = frames.filter((f) => f.repr.senderIp === IP_A);
    expect(announcements.map((p) => p.t)).toEqual([5500, 7500]); // ANNOUNCE_WAIT after the last probe
  });

  it('a probe answered by the owner: the address is in use and not taken', async () => {
    const clock = new VirtualClock();
    const [la, lb] = MemoryLink.pair({ clock, macs: [MAC_A, MAC_B] });
    const a = host(la, clock, [IP_B], { probe: true, announce: true }); // wants B's address
    const b = host(lb, clock, [IP_B]);
    const started = a.arp.start();
    clock.advance(20_000);
    expect(await started).toEqual({ inUse: [IP_B] });
    expect(a.arp.addresses).toEqual([]);
    expect(a.arp.counters.get('dad_conflicts')).toBeGreaterThanOrEqual(1);
    expect(a.arp.counters.get('tx_announcements')).toBe(0);
    expect(b.arp.counters.get('tx_probe_replies')).toBeGreaterThanOrEqual(1);
  });

  it('someone else claiming our address: counted, logged, defended at most once per 10 s', () => {
    const { clock, b } = world();
    const seen: string[] = [];
    b.arp.onConflict((ip, mac) => seen.push(`${formatIpv4(ip)} ${mac}`));
    const claim = () =>
      inject(b, MacAddress.BROADCAST, MAC_X, { operation: 'request', senderMac: MAC_X, senderIp: IP_B, targetMac: MacAddress.ZERO, targetIp: IP_B });
    claim();
    clock.advance(5000);
    claim();
    clock.advance(5000);
    claim();
    expect(b.arp.counters.get('rx_conflicts')).toBe(3);
    expect(b.arp.counters.get('tx_defends')).toBe(2);
    expect(b.arp.counters.get('conflicts_not_defended')).toBe(1);
    expect(seen).toEqual(Array(3).fill('10.0.0.2 02:00:00:00:0c:03'));
    const defends = b.wire.arp();
    expect(defends.map((d) => d.t)).toEqual([0, 10_000]);
    expect(defends[0]!.repr).toEqual({ operation: 'request', senderMac: MAC_B, senderIp: IP_B, targetMac: MacAddress.ZERO, targetIp: IP_B });
    expect(b.arp.table.lookup(IP_B)).toBeUndefined(); // never learn our own address
  });

  it('close() cancels every timer and stops answering', () => {
    const { clock, a, b } = world({ announce: true });
    void a.arp.start();
    a.arp.resolve(ipv4('10.0.0.9'), frame(1));
    b.arp.close();
    a.arp.close();
    clock.advance(0);
    expect(clock.pending).toBe(0);
    expect(b.wire.sent).toEqual([]);
  });

  it('after close(), resolve() drops the frame and starts no timer, no request', () => {
    const { clock, a } = world();
    a.arp.close();
    clock.advance(0);
    const sentBefore = a.wire.sent.length;
    expect(a.arp.resolve(ipv4('10.0.0.9'), frame(1))).toBe('dropped');
    expect(clock.pending).toBe(0);
    clock.advance(10_000);
    expect(a.wire.sent.length).toBe(sentBefore);
  });
});
