/**
 * Example 14: ping me over IPv6. The whole stack on a TAP device, answering the kernel's
 * `ping -6`: IPv6, ICMPv6 and Neighbour Discovery beside ARP, IPv4 and ICMP.
 *
 * The kernel's side of tap0 gets fd00:10::1/64 (and 10.0.0.1/24), the stack fd00:10::2/64 and
 * its link-local address from the MAC (fe80::...). Both of the stack's addresses start tentative:
 * Duplicate Address Detection asks the link whether anyone has them (a neighbour solicitation from
 * ::) and, when a second passes without an answer, they become ours. Then the kernel's ping -6
 * asks for our MAC with a neighbour solicitation to fd00:10::2's solicited-node group (ff02::1:ff00:2),
 * our NDP answers, and the echo requests get their replies. Every frame in and out is printed.
 *
 * Run it (root: it creates tap0 inside a network namespace of its own, removed on exit):
 *
 *   sudo npx tsx examples/14-ping6-me.ts
 *
 * and from another terminal:
 *
 *   sudo ip netns exec tapstack-ping6-me ping -6 -c 3 fd00:10::2
 *   sudo ip netns exec tapstack-ping6-me ping -6 -c 1 -s 4000 fd00:10::2   # in fragments both ways
 *   sudo ip netns exec tapstack-ping6-me ip -6 neigh                         # the kernel learnt our MAC
 *   sudo ip netns exec tapstack-ping6-me ndisc6 fd00:10::2 tap0              # one NS, our NA
 *
 * Ctrl-C prints both neighbour tables (ARP's and NDP's), our addresses and the counters, and
 * removes the namespace. Options: --netns NAME (default tapstack-ping6-me), --quiet (no per-frame lines).
 */
import { parseArgs } from 'node:util';
import { TapDevice } from '@tapstack/link';
import { createStack } from '@tapstack/stack';
import { onStop, ownNamespace } from './support/own-namespace.ts';

const { values } = parseArgs({
  options: {
    netns: { type: 'string', default: 'tapstack-ping6-me' },
    quiet: { type: 'boolean', default: false },
  },
});

const ns = ownNamespace(values.netns!);
const tap = TapDevice.open({ name: 'tap0', netns: ns.name });
tap.configureHost({ address: '10.0.0.1/24' });
// The kernel's IPv6 address; nodad: usable at once (ours go through DAD, below).
ns.exec('ip', ['-6', 'addr', 'add', 'fd00:10::1/64', 'dev', 'tap0', 'nodad']);

const stack = createStack({
  link: tap,
  ip: '10.0.0.2/24',
  ipv6: { addresses: ['fd00:10::2/64'] },
  trace: values.quiet ? false : (line) => console.log(line),
});
stack.start(); // the link-local address, DAD for both, MLDv2 reports, router solicitations
await stack.ndp!.settled(); // about a second: DAD's probe and its wait

console.log(`our IPv6 addresses (ip -6 addr):\n${stack.ipv6!.addresses.show()}`);
console.log(`fd00:10::2 is up on tap0 (mac ${tap.mac}) in namespace ${ns.name}; the kernel side is fd00:10::1.`);
console.log(`Ping me from another terminal:\n  sudo ip netns exec ${ns.name} ping -6 -c 3 fd00:10::2\nCtrl-C to stop.`);

onStop(() => {
  console.log(`\nneighbour tables (ip neigh show: ARP's, then NDP's):\n${stack.neighbours() || '(empty)'}`);
  console.log(`\ncounters:\n${stack.counters()}`);
  stack.close();
});
