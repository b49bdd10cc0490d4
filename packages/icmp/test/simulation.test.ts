/**
 * Two whole stacks (link dispatch + real ARP + IPv4 + ICMP) on an in-memory wire with a virtual
 * clock: minutes of protocol time in milliseconds, deterministic.
 */
import { Arp } from '@tapstack/arp';
import { Ipv4Cidr, Ipv4Layer, Ipv4Packet } from '@tapstack/ipv4';
import {
  EtherTypeDispatcher,
  LinkWrapper,
  MemoryLink,
  VirtualClock,
  ipv4,
  seededRandom,
  withFaults,
  type Link,
} from '@tapstack/link';
import { describe, expect, it } from 'vitest';
import { settleOnVirtualClock } from '../../../test/support/virtual-time.ts';
import { IcmpLayer, type IcmpErrorReport } from '../src/layer.ts';
import { formatPingSummary, type PingSummary } from '../src/ping.ts';

const A = ipv4('10.0.0.1');
const B = ipv4('10.0.0.2');

function stack(link: Link, clock: VirtualClock, cidr: string, seed: number) {
  const address = Ipv4Cidr.parse(cidr);
  const dispatcher = new EtherTypeDispatcher(link);
  const arp = new Arp({ dispatcher, clock, addresses: [address.address], random: seededRandom(seed), broadcasts: [address.broadcast] });
  const ip = new Ipv4Layer({ dispatcher, resolver: arp, clock, address, random: seededRandom(seed + 1) });
  const icmp = new IcmpLayer({ ipv4: ip, clock, random: seededRandom(seed + 2) });
  const errors: IcmpErrorReport[] = [];
  icmp.onError((e) => errors.push(e));
  return {
    dispatcher,
    arp,
    ip,
    icmp,
    errors,
    close(): void {
      icmp.close();
      ip.close();
      arp.close();
    },
  };
}

function pair(wrapA: (l: Link) => Link = (l) => l) {
  const clock = new VirtualClock();
  const [la, lb] = MemoryLink.pair({ clock, latencyMs: 0 });
  const a = stack(wrapA(la), clock, '10.0.0.1/24', 100);
  const b = stack(lb, clock, '10.0.0.2/24', 200);
  return { clock, a, b };
}

/** Moves virtual time in 1 ms steps until the promise settles (up to 200 s of it here). */
const run = <T>(clock: VirtualClock, promise: Promise<T>, maxMs = 200_000): Promise<T> => settleOnVirtualClock(clock, promise, maxMs);

/** Drops frames this stack sends when `drop` says so. */
class DropWhen extends LinkWrapper {
  dropped = 0;
  constructor(
    inner: Link,
    private readonly drop: (frame: Uint8Array) => boolean,
  ) {
    super(inner);
  }
  override send(frame: Uint8Array): boolean {
    if (this.drop(frame)) {
      this.dropped++;
      return true;
    }
    return this.inner.send(frame);
  }
}

describe('two stacks ping each other', () => {
  for (const size of [0, 1, 1472, 1473, 4000, 65507]) {
    it(`with ${size} bytes of data`, async () => {
      const { clock, a, b } = pair();
      const summary = await run(clock, a.icmp.ping(B, { count: 3, size, intervalMs: 1000, timeoutMs: 2000 }));
      expect(summary).toMatchObject({ transmitted: 3, received: 3, errors: 0, duplicates: 0, corrupted: 0, lossPercent: 0 });
      expect(summary.replies.map((r) => r.bytes)).toEqual([size + 8, size + 8, size + 8]);
      const fragmented = size + 28 > 1500;
      expect(b.ip.counters.get('reasm_ok')).toBe(fragmented ? 3 : 0);
      expect(a.ip.counters.get('reasm_ok')).toBe(fragmented ? 3 : 0);
      expect(b.icmp.counters.get('tx_echo_replies')).toBe(3);
      // and the other way round
      const back = await run(clock, b.icmp.ping(A, { count: 2, size, intervalMs: 10 }));
      expect(back.received).toBe(2);
      a.close();
      b.close();
    });
  }

  it('loses no echo to an unresolved neighbour: the first waits in the ARP queue', async () => {
    const { clock, a, b } = pair();
    expect(a.arp.table.lookup(B)).toBeUndefined();
    const summary = await run(clock, a.icmp.ping(B, { count: 1, size: 56 }));
    expect(summary.received).toBe(1);
    expect(a.ip.counters.get('tx_queued')).toBe(1);
    expect(a.arp.table.lookup(B)).toBeDefined();
    b.close();
  });

  it('pings both ways at once, 200 requests each, 10 ms apart', async () => {
    const { clock, a, b } = pair();
    const pa = a.icmp.ping(B, { count: 200, intervalMs: 10, size: 100 });
    const pb = b.icmp.ping(A, { count: 200, intervalMs: 10, size: 3000 });
    const [sa, sb] = await run(clock, Promise.all([pa, pb]));
    expect([sa.received, sb.received]).toEqual([200, 200]);
  });

  it('survives reordered and duplicated frames (fragments included) with 0% loss', async () => {
    const { clock, a } = pair((l) => withFaults(l, { reorder: 0.3, duplicate: 0.2, seed: 7 }));
    const summary = await run(clock, a.icmp.ping(B, { count: 30, size: 4000, intervalMs: 100, timeoutMs: 3000 }));
    expect(summary.transmitted).toBe(30);
    expect(summary.received).toBe(30);
    expect(summary.corrupted).toBe(0);
  });

  it('with lost fragments: loses some pings, and the reassembly timeout frees all memory', async () => {
    const { clock, a, b } = pair((l) => withFaults(l, { drop: 0.15, seed: 3 }));
    const summary = await run(clock, a.icmp.ping(B, { count: 40, size: 4000, intervalMs: 100, timeoutMs: 2000 }));
    expect(summary.transmitted).toBe(40);
    expect(summary.received).toBeGreaterThan(5);
    expect(summary.received).toBeLessThan(40);
    expect(b.ip.reassembly.bytesHeld + a.ip.reassembly.bytesHeld).toBeGreaterThan(0);
    clock.advance(31_000);
    expect(b.ip.reassembly.bytesHeld).toBe(0);
    expect(a.ip.reassembly.bytesHeld).toBe(0);
    expect(b.ip.reassembly.datagramsInFlight + a.ip.reassembly.datagramsInFlight).toBe(0);
    expect(b.ip.counters.get('reasm_timeout') + a.ip.counters.get('reasm_timeout')).toBeGreaterThan(0);
  });

  it('reassembly timeout: B frees the fragments and A hears time exceeded code 1 about its echo', async () => {
    const { clock, a, b } = pair((l) => new DropWhen(l, (f) => f[12] === 8 && f[13] === 0 && new Ipv4Packet(f.subarray(14)).fragmentOffset === 1480));
    const summary = await run(clock, a.icmp.ping(B, { count: 1, size: 4000, timeoutMs: 40_000 }));
    expect(summary.received).toBe(0);
    expect(summary.errors).toBe(1);
    expect(summary.errorList[0]).toMatchObject({ from: B, message: 'Frag reassembly time exceeded' });
    expect(b.ip.reassembly.bytesHeld).toBe(0);
    expect(b.icmp.counters.get('tx_errors')).toBe(1);
    expect(a.errors).toHaveLength(1);
    expect(a.errors[0]).toMatchObject({ kind: 'time-exceeded', code: 1, from: B, local: false });
    expect(a.errors[0]!.original.destination).toBe(B);
    // ~30 s after the request went out
    expect(summary.timeMs).toBeGreaterThanOrEqual(30_000);
    expect(summary.timeMs).toBeLessThan(31_000);
  });

  it('reports Destination Host Unreachable when ARP gets no answer', async () => {
    const { clock, a } = pair();
    const summary: PingSummary = await run(clock, a.icmp.ping(ipv4('10.0.0.9'), { count: 3, intervalMs: 1000, timeoutMs: 5000 }));
    expect(summary.received).toBe(0);
    expect(summary.errors).toBeGreaterThanOrEqual(1);
    expect(summary.errorList[0]).toMatchObject({ from: A, message: 'Destination Host Unreachable' });
    expect(a.errors[0]).toMatchObject({ kind: 'destination-unreachable', code: 1, local: true });
    expect(formatPingSummary(summary)).toMatch(/^--- 10\.0\.0\.9 ping statistics ---\n3 packets transmitted, 0 received, \+\d errors, 100% packet loss, time \d+ms$/);
  });

  it('answers an unknown protocol from the other stack with protocol unreachable', async () => {
    const { clock, a, b } = pair();
    a.ip.send({ destination: B, protocol: 143, payload: new Uint8Array(12) });
    await run(clock, new Promise<void>((resolve) => a.icmp.onError(() => resolve())), 5000);
    expect(a.errors[0]).toMatchObject({ kind: 'destination-unreachable', code: 2, from: B });
    expect(a.errors[0]!.original.protocol).toBe(143);
    expect(b.ip.counters.get('rx_unknown_protocol')).toBe(1);
  });

  it('a flood of duplicate replies is counted, and the session keeps a bounded list of them', async () => {
    // Whoever answers (or anyone on the link who saw the request) can repeat a reply at will;
    // the session lives until its timeout, so storing every one would grow without bound.
    class Repeat extends LinkWrapper {
      protected override receive(frames: readonly Uint8Array[]): void {
        const out: Uint8Array[] = [];
        for (const f of frames) {
          out.push(f);
          if (f.length > 34 && f[23] === 1 && f[34] === 0) for (let i = 0; i < 5000; i++) out.push(new Uint8Array(f));
        }
        this.deliverUp(out);
      }
    }
    const { clock, a } = pair((l) => new Repeat(l));
    let heard = 0;
    const summary = await run(clock, a.icmp.ping(B, { count: 3, size: 8, intervalMs: 100, timeoutMs: 500, onReply: () => heard++ }));
    // The session ends with the third answer, so the copies of that one find no session.
    expect(summary).toMatchObject({ transmitted: 3, received: 3, duplicates: 10_000, corrupted: 0 });
    expect(heard).toBe(10_003);
    expect(summary.replies.length).toBeLessThanOrEqual(2 * 3);
    expect(summary.replies.filter((r) => !r.duplicate).map((r) => r.sequence)).toEqual([1, 2, 3]);
  });
});
