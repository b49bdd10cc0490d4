/**
 * Memory under load: the stack must not grow with traffic.
 *
 *  - pingFloodRss: a fresh `tapstack up` answers a long `ping -f -l 32`; its RSS is read after
 *    each step (10,000 pings, then on to 100,000 and 1,000,000). The target: RSS after 1,000,000
 *    within 10% of RSS after 10,000.
 *  - arpFloodOnTap: python3 sends ARP requests for 10.0.0.2 from thousands of different MACs
 *    through the kernel's tap0 (AF_PACKET), sender addresses inside 10.0.0.0/24; the stack's RSS
 *    and neighbour table size before and after.
 *  - arpFloodInMemory: 10,000 senders with 10,000 different addresses (only possible in memory: a
 *    real namespace here is limited to one /24). The table must stay within gc_thresh3.
 *  - idleConnectionsInMemory: the heap per idle TCP connection between two in-memory stacks, and
 *    what it is made of (bench/idle.ts --in-memory).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { buildArpFrame } from '@tapstack/arp';
import { MacAddress, MemoryLink, VirtualClock, type Ipv4Address } from '@tapstack/link';
import { createStack } from '@tapstack/stack';
import { tcpDiscard } from '../packages/stack/src/services.ts';
import type { TcpSocket } from '@tapstack/tcp';
import { CountingLink } from './echo-path.ts';
import { ping } from './ping.ts';
import { TapstackTarget } from './targets.ts';

export interface RssStep {
  pings: number;
  rssKb: number;
  lossPercent: number;
}

/** Flood pings (32 in flight) in steps; RSS after each. `steps` are cumulative totals. */
export async function pingFloodRss(steps: readonly number[], label: string): Promise<{ startKb: number; steps: RssStep[] }> {
  const target = await TapstackTarget.start(label);
  try {
    const startKb = target.rssKb();
    const out: RssStep[] = [];
    let done = 0;
    for (const total of steps) {
      const r = await ping(target.pinger, target.address, ['-f', '-l', '32', '-c', String(total - done)], { timeoutMs: 600_000 });
      done = total;
      out.push({ pings: total, rssKb: target.rssKb(), lossPercent: r.lossPercent });
    }
    return { startKb, steps: out };
  } finally {
    target.close();
  }
}

const ARP_FLOODER = `
import socket, struct, sys, time
count = int(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("tap0", 0))
broadcast = b"\\xff" * 6
target_ip = bytes([10, 0, 0, 2])
sent = 0
for i in range(count):
    mac = bytes([0x02, 0xaa, (i >> 24) & 0xff, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff])
    ip = bytes([10, 0, 0, 3 + i % 252])
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + ip + b"\\x00" * 6 + target_ip
    s.send(broadcast + mac + b"\\x08\\x06" + arp)
    sent += 1
    if sent % 100 == 0:
        time.sleep(0.005)  # paced, so the tap queue (1000 frames) does not overflow
print(sent)
`;

export interface ArpFloodOnTapResult {
  senders: number;
  received: number;
  rssBeforeKb: number;
  rssAfterKb: number;
  neighboursBefore: number;
  neighboursAfter: number;
}

/** ARP requests from `senders` different MACs at the running stack of `target`. */
export async function arpFloodOnTap(target: TapstackTarget, senders: number): Promise<ArpFloodOnTapResult> {
  const rssBeforeKb = target.rssKb();
  const neighboursBefore = await target.neighbourCount();
  const before = counter(await target.counters(), 'arp.rx_requests');
  const r = await target.pinger.run('python3', ['-c', ARP_FLOODER, String(senders)], 120_000);
  if (r.status !== 0) throw new Error(`ARP flooder failed: ${r.stderr}`);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const received = counter(await target.counters(), 'arp.rx_requests') - before;
  return {
    senders,
    received,
    rssBeforeKb,
    rssAfterKb: target.rssKb(),
    neighboursBefore,
    neighboursAfter: await target.neighbourCount(),
  };
}

function counter(text: string, name: string): number {
  const m = new RegExp(`${name.replace('.', '\\.')} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

export interface ArpFloodInMemoryResult {
  senders: number;
  gcThresh3: number;
  largestTable: number;
  finalTable: number;
  tableFulls: number;
  forcedGcRuns: number;
  heapBeforeKb: number;
  heapAfterKb: number;
}

function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/**
 * `senders` hosts, each with its own address (10.0.x.y in a /16 stack, in memory only), ask for
 * the stack's address; the clock advances 1 ms per request. Table size and heap after.
 */
export function arpFloodInMemory(senders: number): ArpFloodInMemoryResult {
  const clock = new VirtualClock();
  const link = new CountingLink();
  const stack = createStack({ link, ip: '10.0.0.2/16', clock, arp: { announce: false } });
  try {
    collectGarbage();
    const heapBeforeKb = Math.round(process.memoryUsage().heapUsed / 1024);
    let largestTable = 0;
    for (let i = 0; i < senders; i++) {
      const mac = MacAddress.fromBytes(new Uint8Array([0x02, 0xaa, 0, (i >>> 16) & 0xff, (i >>> 8) & 0xff, i & 0xff]));
      // 10.0.1.0 upwards: never the stack's own 10.0.0.2
      const ip = (((10 << 24) | ((1 + (i >>> 8)) << 8) | (i & 0xff)) >>> 0) as Ipv4Address;
      const frame = buildArpFrame(MacAddress.BROADCAST, mac, {
        operation: 'request',
        senderMac: mac,
        senderIp: ip,
        targetMac: MacAddress.ZERO,
        targetIp: stack.address,
      });
      link.feed([frame]);
      clock.advance(1);
      if (stack.arp.table.size > largestTable) largestTable = stack.arp.table.size;
    }
    collectGarbage();
    const stats = stack.arp.table.stats;
    return {
      senders,
      gcThresh3: stack.arp.table.params.gcThresh3,
      largestTable,
      finalTable: stack.arp.table.size,
      tableFulls: stats.get('table_fulls'),
      forcedGcRuns: stats.get('forced_gc_runs'),
      heapBeforeKb,
      heapAfterKb: Math.round(process.memoryUsage().heapUsed / 1024),
    };
  } finally {
    stack.close();
  }
}

export interface IdleConnectionsInMemoryResult {
  connections: number;
  /** Heap growth per idle connection, both ends counted (client and server are both tapstack). */
  heapBytesPerPair: number;
  /** What the growth is made of: V8's object kinds (constructor names) by bytes per connection pair. */
  breakdown: { name: string; bytesPerPair: number; countPerPair: number }[];
}

/** Self sizes of the heap's objects by constructor name (one heap snapshot). */
function heapByConstructor(): Map<string, { bytes: number; count: number }> {
  const snapshot = JSON.parse(readHeapSnapshot()) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snapshot.snapshot.meta.node_fields;
  const stride = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const types = snapshot.snapshot.meta.node_types[0];
  const out = new Map<string, { bytes: number; count: number }>();
  for (let i = 0; i < snapshot.nodes.length; i += stride) {
    const type = types[snapshot.nodes[i + typeAt]!]!;
    const name = type === 'object' || type === 'closure' ? `${type === 'closure' ? 'closure ' : ''}${snapshot.strings[snapshot.nodes[i + nameAt]!]}` : `(${type})`;
    const e = out.get(name) ?? { bytes: 0, count: 0 };
    e.bytes += snapshot.nodes[i + sizeAt]!;
    e.count++;
    out.set(name, e);
  }
  return out;
}

function readHeapSnapshot(): string {
  const dir = mkdtempSync(join(tmpdir(), 'idle-heap-'));
  try {
    return readFileSync(writeHeapSnapshot(join(dir, 'h.heapsnapshot')), 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `count` idle connections between two in-memory stacks (a client and a server with the discard
 * service, as `tapstack up --tcp-discard 9` runs it) on the virtual clock: the heap's growth per
 * connection, without the RSS's noise (allocator slack, code, other helpers' load). Both ends are
 * tapstack, so the figure is a client's and a server's connection together; `breakdown` (a heap
 * snapshot before and after) says what they are made of.
 */
export async function idleConnectionsInMemory(count: number, breakdown = true): Promise<IdleConnectionsInMemoryResult> {
  const clock = new VirtualClock();
  const [wireA, wireB] = MemoryLink.pair({ clock, latencyMs: 1 });
  const server = createStack({ link: wireB, ip: '10.0.0.2/24', clock, arp: { announce: false }, ipv6: false });
  const client = createStack({ link: wireA, ip: '10.0.0.1/24', clock, arp: { announce: false }, ipv6: false });
  const discard = tcpDiscard(server.tcp, 9);
  const sockets: TcpSocket[] = [];
  const settle = async (ms: number): Promise<void> => {
    for (let i = 0; i < ms; i++) {
      clock.advance(1);
      await new Promise<void>((r) => setImmediate(r));
    }
  };
  try {
    // a warm-up (as the RSS row's 200): the paths compiled, ARP resolved, the tables' first growth
    const warm = Array.from({ length: 200 }, () => client.tcp.connect({ host: '10.0.0.2', port: 9 }));
    await settle(50);
    for (const s of warm) s.destroy();
    await settle(200);
    collectGarbage();
    const before = breakdown ? heapByConstructor() : undefined;
    collectGarbage();
    const heapBefore = process.memoryUsage().heapUsed;
    for (let i = 0; i < count; i++) {
      sockets.push(client.tcp.connect({ host: '10.0.0.2', port: 9 }));
      if (i % 100 === 99) await settle(1);
    }
    await settle(1000); // handshakes done, delayed ACKs and the other first timers past
    collectGarbage();
    const heapAfter = process.memoryUsage().heapUsed;
    const after = breakdown ? heapByConstructor() : undefined;
    const established = server.tcp.connectionInfo().filter((c) => c.state === 'ESTABLISHED').length;
    if (established !== count) throw new Error(`${established} of ${count} connections established`);
    const rows: IdleConnectionsInMemoryResult['breakdown'] = [];
    if (before && after) {
      for (const [name, a] of after) {
        const b = before.get(name) ?? { bytes: 0, count: 0 };
        const bytes = (a.bytes - b.bytes) / count;
        if (Math.abs(bytes) >= 4) rows.push({ name, bytesPerPair: Math.round(bytes), countPerPair: Math.round(((a.count - b.count) / count) * 100) / 100 });
      }
      rows.sort((x, y) => y.bytesPerPair - x.bytesPerPair);
    }
    return { connections: count, heapBytesPerPair: Math.round((heapAfter - heapBefore) / count), breakdown: rows };
  } finally {
    for (const s of sockets) s.destroy();
    discard.close();
    client.close();
    server.close();
  }
}
