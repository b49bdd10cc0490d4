/**
 * Example 03: ping me. ARP + IPv4 + ICMP on a TAP device, answering the kernel's real `ping`.
 *
 * createStack wires the layers: link -> EtherType table -> ARP (0x0806) and IPv4 (0x0800) ->
 * ICMP (protocol 1). The kernel's side of tap0 is 10.0.0.1, the stack is 10.0.0.2; every frame
 * in and out is printed as one line.
 *
 * Run it (root: it creates tap0 inside a network namespace of its own, removed on exit):
 *
 *   sudo npx tsx examples/03-ping-me.ts
 *
 * and from another terminal ping it (the kernel's ping, inside the namespace):
 *
 *   sudo ip netns exec tapstack-ping-me ping -c 3 10.0.0.2
 *   sudo ip netns exec tapstack-ping-me ping -c 1 -s 4000 10.0.0.2
 *
 * The second one is fragmented in three both ways (our IPv4 reassembles and fragments).
 * Ctrl-C prints the neighbour table and the counters and removes the namespace.
 * Options: --netns NAME (default tapstack-ping-me), --quiet (no per-frame lines).
 */
import { parseArgs } from 'node:util';
import { TapDevice } from '@tapstack/link';
import { createStack } from '@tapstack/stack';
import { onStop, ownNamespace } from './support/own-namespace.ts';

const { values } = parseArgs({
  options: {
    netns: { type: 'string', default: 'tapstack-ping-me' },
    quiet: { type: 'boolean', default: false },
  },
});

const ns = ownNamespace(values.netns!);
const tap = TapDevice.open({ name: 'tap0', netns: ns.name });
tap.configureHost({ address: '10.0.0.1/24' }); // the kernel's side of the virtual cable

const stack = createStack({
  link: tap,
  ip: '10.0.0.2/24',
  trace: values.quiet ? false : (line) => console.log(line),
});
stack.start(); // announce 10.0.0.2 with a gratuitous ARP

console.log(`10.0.0.2 is up on tap0 (mac ${tap.mac}) in namespace ${ns.name}; the kernel side is 10.0.0.1.`);
console.log(`Ping me from another terminal:\n  sudo ip netns exec ${ns.name} ping -c 3 10.0.0.2\nCtrl-C to stop.`);

onStop(() => {
  console.log(`\nneighbour table (ip neigh show):\n${stack.neighbours() || '(empty)'}`);
  console.log(`\ncounters:\n${stack.counters()}`);
  stack.close();
});
