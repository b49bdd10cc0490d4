/**
 * Example 07: a UDP echo service in our own stack, the kernel as its client.
 *
 * The layers are wired by hand, as createStack does, so you see where UDP plugs in: it
 * registers protocol 17 in IPv4's table and asks ICMP to send port unreachable for datagrams
 * nobody listens for. The service itself is four lines that read like Node's `dgram`.
 *
 * Run it (root: it creates a TAP device inside a network namespace of its own):
 *
 *   sudo npx tsx examples/07-udp-echo.ts
 *
 * and from another terminal be the kernel's client (10.0.0.1 on tap0, inside the namespace):
 *
 *   printf 'hello' | sudo ip netns exec tapstack-udp-demo socat -t 1 - UDP4:10.0.0.2:7777
 *   head -c 8000 /dev/urandom > /tmp/big.bin
 *   sudo ip netns exec tapstack-udp-demo socat -t 1 -b 65536 - UDP4:10.0.0.2:7777 < /tmp/big.bin | cmp - /tmp/big.bin && echo same
 *   printf 'anyone?' | sudo ip netns exec tapstack-udp-demo socat - UDP4:10.0.0.2:9
 *
 * The first prints `hello`; the second sends one 8000-byte datagram, six fragments each way,
 * and prints `same`; the third gets "Connection refused" (our ICMP port unreachable).
 * Ctrl-C prints the counters and removes the namespace.
 * Options: --netns NAME (default tapstack-udp-demo), --port N (default 7777). DEBUG=tapstack:udp traces more.
 *
 * This stack is IPv4 only, to keep the wiring short: with no IPv6 layer given, `bind(port)` is
 * `0.0.0.0`. The same socket code over both families is `tapstack up --udp-echo 7` (createStack
 * wires IPv6 too, and `bind(7)` is then `::`): `socat - UDP6:[fd00:10::2]:7` in its namespace.
 */
import { parseArgs } from 'node:util';
import { Arp } from '@tapstack/arp';
import { IcmpLayer } from '@tapstack/icmp';
import { Ipv4Cidr, Ipv4Layer } from '@tapstack/ipv4';
import { EtherTypeDispatcher, SystemClock, TapDevice, formatIpv4 } from '@tapstack/link';
import { formatUdpAddress, UdpLayer } from '@tapstack/udp';
import { onStop, ownNamespace } from './support/own-namespace.ts';

const { values } = parseArgs({
  options: {
    netns: { type: 'string', default: 'tapstack-udp-demo' },
    port: { type: 'string', default: '7777' },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error('--port must be 1-65535');
  process.exit(2);
}

// A namespace of our own, removed on exit: nothing here touches the machine's real network.
const ns = ownNamespace(values.netns!);

// The stack: link -> EtherType table -> ARP and IPv4 -> ICMP and UDP.
const tap = TapDevice.open({ name: 'tap0', netns: ns.name });
tap.configureHost({ address: '10.0.0.1/24' }); // the kernel's side
const clock = new SystemClock();
const address = Ipv4Cidr.parse('10.0.0.2/24');
const dispatcher = new EtherTypeDispatcher(tap);
const arp = new Arp({ dispatcher, clock, addresses: [address.address], broadcasts: [address.broadcast] });
const ipv4 = new Ipv4Layer({ dispatcher, resolver: arp, clock, address });
const icmp = new IcmpLayer({ ipv4, clock });
const udp = new UdpLayer({ ipv4, icmp });
arp.start();

onStop(() => {
  console.log(`\n${udp.counters.format()}\n${ipv4.counters.format()}\n${icmp.counters.format()}`);
  udp.close();
  icmp.close();
  ipv4.close();
  arp.close();
  tap.close();
});

// The echo service.
const socket = udp.bind(port);
console.log(`UDP echo on ${formatIpv4(address.address)}:${port} (tap0 in netns ${ns.name}; the kernel side is 10.0.0.1)`);
console.log(`try: printf 'hello' | sudo ip netns exec ${ns.name} socat -t 1 - UDP4:10.0.0.2:${port}`);
for await (const { data, address: from, port: fromPort } of socket) {
  // reply(), not send(): a sender that cannot be answered (port 0, 0.0.0.0) is counted, not thrown about
  const outcome = socket.reply(data, { address: from, port: fromPort });
  console.log(`${formatUdpAddress(from)}:${fromPort} sent ${data.length} bytes: ${outcome === 'unanswerable' ? 'cannot be answered, dropped' : 'echoed'}`);
}
