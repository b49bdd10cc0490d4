/**
 * The no-root demo: two stacks on an in-memory wire. Stack A pings stack B; the trace shows A's
 * first echo request waiting while ARP resolves B (queued in the INCOMPLETE entry, not lost),
 * then the replies, then both neighbour tables and the counters.
 */
import type { Writable } from 'node:stream';
import { MacAddress, MemoryLink } from '@tapstack/link';
import { formatPingReply, formatPingSummary, indent, pingHeader } from './output.ts';
import { createStack } from './stack.ts';

export async function runMemoryDemo(out: Writable, options: { count?: number; intervalMs?: number } = {}): Promise<void> {
  const write = (s: string): void => {
    out.write(`${s}\n`);
  };
  const [wireA, wireB] = MemoryLink.pair({
    names: ['wire-a', 'wire-b'],
    macs: [MacAddress.parse('02:00:00:00:0a:01'), MacAddress.parse('02:00:00:00:0b:02')],
  });
  const a = createStack({ link: wireA, ip: '10.0.0.1/24', trace: (line) => write(`  A ${line}`), arp: { announce: false } });
  const b = createStack({ link: wireB, ip: '10.0.0.2/24', trace: (line) => write(`  B ${line}`), arp: { announce: false } });
  try {
    write('Two stacks on an in-memory wire: A is 10.0.0.1 (02:00:00:00:0a:01), B is 10.0.0.2 (02:00:00:00:0b:02).');
    write('A pings B. A does not know B\'s MAC yet, so its first echo request waits in the ARP queue.\n');
    write(pingHeader(b.address, 56));
    const summary = await a.icmp.ping(b.address, {
      count: options.count ?? 3,
      size: 56,
      intervalMs: options.intervalMs ?? 200,
      timeoutMs: 1000,
      onReply: (reply) => write(formatPingReply(reply)),
    });
    write(`\n${formatPingSummary(summary)}\n`);
    write(`A's neighbour table (ip neigh show):\n${indent(a.neighbours())}`);
    write(`B's neighbour table:\n${indent(b.neighbours())}\n`);
    write(`A's counters:\n${indent(a.counters())}`);
    write(`B's counters:\n${indent(b.counters())}`);
  } finally {
    a.close();
    b.close();
  }
}
