/**
 * Example 04: our stack pings the host. The other direction: the stack sends first, so it must
 * find the kernel's MAC before its first echo request can leave.
 *
 * What to watch: right after the first request is handed to IPv4, the neighbour entry for
 * 10.0.0.1 is INCOMPLETE with that one packet queued in it (not dropped); the ARP request goes
 * out, the kernel's reply makes the entry REACHABLE, and the queued request leaves at once.
 *
 * Run it (root: it creates tap0 inside a network namespace of its own, removed on exit):
 *
 *   sudo npx tsx examples/04-stack-pings-host.ts
 *
 * It pings 10.0.0.1 three times, prints the lines ping would, the table, and exits.
 * Options: --netns NAME (default tapstack-pings-host), --count N (default 3).
 */
import { parseArgs } from 'node:util';
import { formatPingReply, formatPingSummary } from '@tapstack/icmp';
import { TapDevice, formatIpv4, ipv4 } from '@tapstack/link';
import { createStack } from '@tapstack/stack';
import { ownNamespace } from './support/own-namespace.ts';

const { values } = parseArgs({
  options: {
    netns: { type: 'string', default: 'tapstack-pings-host' },
    count: { type: 'string', default: '3' },
  },
});
const count = Number(values.count);
if (!Number.isInteger(count) || count < 1 || count > 100) {
  console.error('--count must be 1-100');
  process.exit(2);
}

const ns = ownNamespace(values.netns!);
const tap = TapDevice.open({ name: 'tap0', netns: ns.name });
tap.configureHost({ address: '10.0.0.1/24' });

const started = performance.now();
const ms = (): string => `${(performance.now() - started).toFixed(1).padStart(7)} ms`;
const stack = createStack({
  link: tap,
  ip: '10.0.0.2/24',
  arp: { announce: false }, // keep the trace to what the ping causes
  trace: (line) => console.log(`${ms()}  ${line}`),
});

const host = ipv4('10.0.0.1');
const table = (): string =>
  stack.arp.table
    .entries()
    .map((e) => `  ${formatIpv4(e.ip)} ${e.state}${e.mac ? ` lladdr ${e.mac}` : ''}, ${e.queued} packet(s) queued`)
    .join('\n') || '  (empty)';

console.log(`neighbour table before: \n${table()}\n`);
console.log(`PING ${formatIpv4(host)} from 10.0.0.2: ${count} echo requests`);
const done = stack.icmp.ping(host, {
  count,
  intervalMs: 200,
  timeoutMs: 1000,
  onReply: (reply) => console.log(`${ms()}  ${formatPingReply(reply)}`),
});
// The first request was handed to IPv4 synchronously: it now waits for ARP.
console.log(`${ms()}  neighbour table right after the first request:\n${table()}\n`);

const summary = await done;
console.log(`\n${formatPingSummary(summary)}`);
console.log(`\nneighbour table after:\n${table()}`);
console.log(`\nip neigh show (our view, as Linux prints it):\n${stack.neighbours()}`);
console.log(`\nthe kernel's view of us (ip neigh show dev tap0):\n${ns.exec('ip', ['neigh', 'show', 'dev', 'tap0']).trim()}`);
console.log(`\ncounters:\n${stack.counters()}`);
stack.close();
process.exit(summary.received === summary.transmitted ? 0 : 1);
