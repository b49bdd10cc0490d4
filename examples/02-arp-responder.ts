/**
 * Example 02: answer ARP on tap0, as a host of our own.
 *
 * The responder from "ARP over a raw link" blog posts, done properly: the packet is checked in
 * two stages before anyone reads a field, every drop is counted under its reason, frames from
 * our own MAC are ignored, we learn only what RFC 826 and Linux learn (no cache poisoning by
 * unsolicited replies), RFC 5227 probes get an answer, and the address is announced on start.
 *
 * Run it (root: it creates a TAP device inside a network namespace of its own):
 *
 *   sudo npx tsx examples/02-arp-responder.ts
 *
 * and from another terminal ask the kernel side (10.0.0.1 on tap0, inside the namespace):
 *
 *   sudo ip netns exec tapstack-arp-demo arping -c 3 -I tap0 10.0.0.2
 *   sudo ip netns exec tapstack-arp-demo arping -D -c 1 -I tap0 10.0.0.2; echo "exit $?"
 *   sudo ip netns exec tapstack-arp-demo ping -c 1 -W 1 10.0.0.2
 *   sudo ip netns exec tapstack-arp-demo ip neigh show dev tap0
 *
 * (the ping goes unanswered: there is no IPv4 layer yet; it only makes the kernel ARP for us).
 * Ctrl-C prints the counters and the neighbour table, and removes the namespace.
 * Options: --netns NAME (default tapstack-arp-demo), --ip 10.0.0.2. DEBUG=tapstack:arp traces more.
 */
import { parseArgs } from 'node:util';
import { Arp, formatArp } from '@tapstack/arp';
import { EtherTypeDispatcher, LinkWrapper, SystemClock, TapDevice, formatIpv4, parseIpv4, type Link } from '@tapstack/link';
import { onStop, ownNamespace } from './support/own-namespace.ts';

/** Prints every ARP frame in and out, decoded (any Link can be wrapped like this). */
class ArpPrinter extends LinkWrapper {
  constructor(inner: Link) {
    super(inner);
  }
  override send(frame: Uint8Array): boolean {
    print('out', frame);
    return super.send(frame);
  }
  protected override receive(frames: readonly Uint8Array[]): void {
    for (const f of frames) print('in ', f);
    this.deliverUp(frames);
  }
}

function print(direction: string, frame: Uint8Array): void {
  if (frame[12] === 0x08 && frame[13] === 0x06) console.log(`${direction} ${formatArp(frame.subarray(14))}`);
}

const { values } = parseArgs({
  options: {
    netns: { type: 'string', default: 'tapstack-arp-demo' },
    ip: { type: 'string', default: '10.0.0.2' },
  },
});
const ours = parseIpv4(values.ip!);
if (ours >>> 8 !== 0x0a0000 || (ours & 0xff) < 2 || (ours & 0xff) > 254) {
  console.error('--ip must be in 10.0.0.2-10.0.0.254 (the namespace uses 10.0.0.0/24 only; the kernel has 10.0.0.1)');
  process.exit(2);
}

// A namespace of our own, removed on exit: nothing here touches the machine's real network.
const ns = ownNamespace(values.netns!);
const tap = TapDevice.open({ name: 'tap0', netns: ns.name });
tap.configureHost({ address: '10.0.0.1/24' }); // the kernel's side
const dispatcher = new EtherTypeDispatcher(new ArpPrinter(tap));
const arp = new Arp({ dispatcher, clock: new SystemClock(), addresses: [ours] });
arp.onConflict((ip, mac) => console.log(`conflict: ${mac} claims ${formatIpv4(ip)} (we defend it)`));

await arp.start();
console.log(`answering ARP for ${values.ip} on tap0 (mac ${tap.mac}) in netns ${ns.name}; kernel side is 10.0.0.1 (mac ${tap.hostMac})`);
console.log(`try: sudo ip netns exec ${ns.name} arping -c 3 -I tap0 ${values.ip}`);

let lastTable = '';
const watch = setInterval(() => {
  const table = arp.table.show();
  if (table !== lastTable) console.log(`neighbour table now:\n${table || '(empty)'}`);
  lastTable = table;
}, 200);

onStop(() => {
  clearInterval(watch);
  console.log('\ncounters:');
  console.log(arp.counters.format());
  console.log('\nneighbour table (ip neigh show):');
  console.log(arp.table.show() || '(empty)');
  console.log('\narp_cache stats:');
  console.log(arp.table.formatStats());
  arp.close();
  tap.close();
});
