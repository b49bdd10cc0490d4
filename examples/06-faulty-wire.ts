/**
 * Example 06: two stacks on a bad cable. No root, no TAP device.
 *
 * A (10.0.0.1) and B (10.0.0.2) are joined by an in-memory wire; A's end is wrapped in a fault
 * injector (after smoltcp's FaultInjector) that loses, duplicates, corrupts and reorders frames
 * in both directions, with a seeded random generator, so every run with the same seed goes the
 * same way. A pings B and you see what a real lossy network does to ping: missing sequence
 * numbers, (DUP!) replies, replies out of order, and each layer counting what it threw away
 * (a corrupted frame fails a checksum, or is no longer addressed to us).
 *
 *   npx tsx examples/06-faulty-wire.ts
 *   npx tsx examples/06-faulty-wire.ts --drop 0.3 --seed 42 --count 50
 *   npx tsx examples/06-faulty-wire.ts --delay 10 --jitter 5      a long, uneven cable: RTT 20-30 ms
 *
 * Options: --count N (default 40), --drop P (0.1), --duplicate P (0.1), --corrupt P (0.05),
 * --reorder P (0.1), --seed N (7), --delay MS and --jitter MS (0: each way, on the real clock).
 */
import { parseArgs } from 'node:util';
import { formatPingReply, formatPingSummary } from '@tapstack/icmp';
import { MacAddress, MemoryLink, withFaults } from '@tapstack/link';
import { createStack } from '@tapstack/stack';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '40' },
    drop: { type: 'string', default: '0.1' },
    duplicate: { type: 'string', default: '0.1' },
    corrupt: { type: 'string', default: '0.05' },
    reorder: { type: 'string', default: '0.1' },
    seed: { type: 'string', default: '7' },
    delay: { type: 'string', default: '0' },
    jitter: { type: 'string', default: '0' },
  },
});
const number = (name: keyof typeof values, min: number, max: number): number => {
  const n = Number(values[name]);
  if (!Number.isFinite(n) || n < min || n > max) {
    console.error(`--${name} ${values[name]}: expected a number from ${min} to ${max}`);
    process.exit(2);
  }
  return n;
};
const faults = {
  drop: number('drop', 0, 1),
  duplicate: number('duplicate', 0, 1),
  corrupt: number('corrupt', 0, 1),
  reorder: number('reorder', 0, 1),
  seed: number('seed', 0, 2 ** 31),
  delayMs: number('delay', 0, 1000),
  jitterMs: number('jitter', 0, 1000),
};
const count = number('count', 1, 1000);

const [wireA, wireB] = MemoryLink.pair({
  names: ['wire-a', 'wire-b'],
  macs: [MacAddress.parse('02:00:00:00:0a:01'), MacAddress.parse('02:00:00:00:0b:02')],
});
const faulty = withFaults(wireA, faults); // everything A sends and receives goes through it
// ARP asks again after 100 ms instead of Linux's 1 s, so a lost ARP request costs little here.
const neighbour = { retransTimeMs: 100 };
const a = createStack({ link: faulty, ip: '10.0.0.1/24', neighbour, arp: { announce: false } });
const b = createStack({ link: wireB, ip: '10.0.0.2/24', neighbour, arp: { announce: false } });

console.log(
  `A pings B ${count} times over a wire that drops ${faults.drop * 100}%, duplicates ${faults.duplicate * 100}%, ` +
    `corrupts ${faults.corrupt * 100}% and reorders ${faults.reorder * 100}% of the frames (seed ${faults.seed})` +
    (faults.delayMs + faults.jitterMs > 0 ? `, and holds each ${faults.delayMs} ms plus up to ${faults.jitterMs} ms each way` : '') +
    '.\n',
);
let lastSequence = 0;
const summary = await a.icmp.ping(b.address, {
  count,
  intervalMs: 20,
  timeoutMs: 500,
  onReply: (reply) => {
    const late = !reply.duplicate && reply.sequence < lastSequence ? '  (out of order)' : '';
    if (!reply.duplicate) lastSequence = Math.max(lastSequence, reply.sequence);
    console.log(formatPingReply(reply) + late);
  },
  onError: (error) => console.log(`icmp_seq=${error.sequence} ${error.message}`),
});

console.log(`\n${formatPingSummary(summary)}`);
console.log(`\nwhat the fault injector did:\n${faulty.faultCounters.format(true)}`);
console.log(`\nA's counters:\n${a.counters()}`);
console.log(`\nB's counters:\n${b.counters()}`);
a.close();
b.close();
