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
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { buildArpFrame } from '@tapstack/arp';
import { MacAddress, VirtualClock, type Ipv4Address } from '@tapstack/link';
import { createStack } from '@tapstack/stack';
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
