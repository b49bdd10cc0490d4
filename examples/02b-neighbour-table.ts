/**
 * Example 02b: watch the neighbour table change state, Linux NUD style.
 *
 * Two stacks, A (10.0.0.1) and B (10.0.0.2), on an in-memory wire, with a virtual clock, so a
 * minute of protocol time plays in a blink and the same every time. No root, no TAP:
 *
 *   npx tsx examples/02b-neighbour-table.ts
 *
 * The script walks one neighbour entry through its life and prints A's table (like
 * `ip neigh show`) after each step, and every ARP frame A sends, in this order:
 *   t=0      A's broadcast request goes out first, then "A sends a packet ... (queued)": the
 *            entry is INCOMPLETE and the packet waits in its queue
 *   t=0      B replies: REACHABLE, the waiting packet goes out ("B received a packet from A")
 *   t=30 s   no confirmation for reachable_time: STALE (still usable)
 *   t=40 s   A sends again: DELAY (upper layers get delay_first_probe_time to confirm)
 *   t=45 s   nothing confirmed: A sends a unicast request (the entry is in PROBE for that
 *            moment) and B's answer makes it REACHABLE before the table is printed
 *   t=75 s   STALE again; at 80 s B stops answering ARP
 *   t=120 s  A sends once more: DELAY, then at 125 s PROBE with 3 unicast requests 1 s apart
 *            (125, 126, 127 s), and at 128 s FAILED
 *   t=130 s  a host that never existed: INCOMPLETE, 3 broadcast requests, FAILED at 133 s,
 *            its waiting packet dropped
 * Last, A's counters in the columns of /proc/net/stat/arp_cache and by name.
 */
import { Arp, formatArp } from '@tapstack/arp';
import { EtherTypeDispatcher, MacAddress, MemoryLink, VirtualClock, ipv4 } from '@tapstack/link';

const clock = new VirtualClock();
const [linkA, linkB] = MemoryLink.pair({
  clock,
  macs: [MacAddress.parse('02:00:00:00:0a:01'), MacAddress.parse('02:00:00:00:0b:02')],
  names: ['eth-a', 'eth-b'],
});
const dispatcherA = new EtherTypeDispatcher(linkA);
const dispatcherB = new EtherTypeDispatcher(linkB);
// random: () => 0.5 makes reachable_time exactly base_reachable_time (30 s) for a readable run
const a = new Arp({ dispatcher: dispatcherA, clock, addresses: [ipv4('10.0.0.1')], random: () => 0.5, announce: false });
const b = new Arp({ dispatcher: dispatcherB, clock, addresses: [ipv4('10.0.0.2')], random: () => 0.5, announce: false });
dispatcherB.register(0x88b5, () => console.log(`           B received a packet from A`));

// Print every ARP frame A sends, with the time.
const send = dispatcherA.send.bind(dispatcherA);
dispatcherA.send = (frame) => {
  if (frame[12] === 0x08 && frame[13] === 0x06) {
    const to = MacAddress.fromBytes(frame, 0);
    console.log(`${stamp()} A out: ${formatArp(frame.subarray(14))} (to ${to.isBroadcast ? 'broadcast' : to})`);
  }
  return send(frame);
};
a.onResolutionFailed((ip, frames) => console.log(`${stamp()} A: resolution failed, ${frames.length} waiting packet(s) dropped`));

function stamp(): string {
  return `t=${(clock.now() / 1000).toFixed(3).padStart(7)}s`;
}

let last = '';
function printIfChanged(): void {
  const table = a.table.show();
  if (table !== last) {
    console.log(`${stamp()} A's table:`);
    for (const line of table.split('\n')) console.log(`             ${line}`);
    last = table;
  }
}

/** Advances the clock in 100 ms steps, printing the table whenever it changes. */
function run(untilMs: number): void {
  while (clock.now() < untilMs) {
    clock.advance(0); // deliver what is on the wire now
    printIfChanged();
    clock.advance(100);
    printIfChanged();
  }
}

function packet(): Uint8Array {
  const frame = new Uint8Array(60);
  frame[12] = 0x88; // a local experimental EtherType: B counts it above
  frame[13] = 0xb5;
  return frame;
}

console.log(`${stamp()} A sends a packet to 10.0.0.2 (${a.resolve(ipv4('10.0.0.2'), packet())})`);
printIfChanged();
run(40_000);
console.log(`${stamp()} A sends another packet to 10.0.0.2 (${a.resolve(ipv4('10.0.0.2'), packet())})`);
printIfChanged();
run(80_000);
console.log(`${stamp()} B stops answering for 10.0.0.2`);
b.removeAddress(ipv4('10.0.0.2'));
run(120_000);
console.log(`${stamp()} A sends to 10.0.0.2 again (${a.resolve(ipv4('10.0.0.2'), packet())})`);
printIfChanged();
run(130_000);
console.log(`${stamp()} A sends to 10.0.0.9, which does not exist (${a.resolve(ipv4('10.0.0.9'), packet())})`);
printIfChanged();
run(135_000);

console.log('\nA /proc/net/stat/arp_cache style:');
console.log(a.table.formatStats());
console.log('\nA counters:');
console.log(a.counters.format());
a.close();
b.close();
