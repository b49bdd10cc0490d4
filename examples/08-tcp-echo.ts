/**
 * Example 08: a TCP echo server (RFC 862) in our own stack, the kernel's `nc` as its client.
 *
 * `createStack` wires every layer (link, ARP, IPv4, ICMP, IPv6, NDP, UDP, TCP); the server is the
 * same three lines you would write with Node's `net`: every accepted socket is a stream.Duplex,
 * and piping it into itself echoes. The handshake, the window and the close are all ours.
 * `listen(port)` binds `::`, so the one server answers IPv4 (10.0.0.2) and IPv6 (fd00:10::2, and
 * the link-local address) alike, as a Linux socket with bindv6only=0 does.
 *
 * Run it (root: it creates a TAP device inside a network namespace of its own):
 *
 *   sudo npx tsx examples/08-tcp-echo.ts
 *
 * and from another terminal be the kernel's client (10.0.0.1 on tap0, inside the namespace):
 *
 *   printf 'hello, tcp\n' | sudo ip netns exec tapstack-tcp-demo nc -N 10.0.0.2 7
 *   head -c 1000000 /dev/urandom > /tmp/r.bin
 *   sudo ip netns exec tapstack-tcp-demo nc -N 10.0.0.2 7 < /tmp/r.bin | cmp - /tmp/r.bin && echo same
 *   sudo ip netns exec tapstack-tcp-demo ss -tni        # while an nc is connected: the kernel's view (wscale, rtt, mss, ...)
 *
 *   printf 'hello, six\n' | sudo ip netns exec tapstack-tcp-demo nc -6 -N fd00:10::2 7
 *
 * The first prints `hello, tcp` (nc -N sends FIN after stdin: our half-close echoes the rest and
 * closes); the second prints `same`. Type `conns` and Enter for our own ss-like table; Ctrl-C
 * prints the counters and removes the namespace. Options: --netns NAME, --port N (default 7), --trace.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { TapDevice, formatIpv4 } from '@tapstack/link';
import { createStack } from '@tapstack/stack';
import { onStop, ownNamespace } from './support/own-namespace.ts';

const { values } = parseArgs({
  options: {
    netns: { type: 'string', default: 'tapstack-tcp-demo' },
    port: { type: 'string', default: '7' },
    trace: { type: 'boolean', default: false },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error('--port must be 1-65535');
  process.exit(2);
}

// A namespace of our own, removed on exit: nothing here touches the machine's real network.
const ns = ownNamespace(values.netns!);
const tap = TapDevice.open({ name: 'tap0', netns: ns.name });
tap.configureHost({ address: '10.0.0.1/24' }); // the kernel's side
ns.exec('ip', ['-6', 'addr', 'add', 'fd00:10::1/64', 'dev', 'tap0', 'nodad']); // and its IPv6 address
const stack = createStack({ link: tap, ip: '10.0.0.2/24', ipv6: { addresses: ['fd00:10::2/64'] }, trace: values.trace });
stack.start();

// The echo server: Node's net, on our TCP.
const server = stack.tcp.createServer((socket) => {
  console.log(`connection from ${socket.remoteAddress}:${socket.remotePort}`);
  socket.pipe(socket);
  socket.on('close', () => console.log(`${socket.remoteAddress}:${socket.remotePort} closed after ${socket.bytesRead} bytes`));
  socket.on('error', (err) => console.log(`${socket.remoteAddress}:${socket.remotePort}: ${err.message}`));
});
server.listen(port);
console.log(`TCP echo on ${formatIpv4(stack.address)}:${port} (tap0 in netns ${ns.name}; the kernel side is 10.0.0.1)`);
console.log(`try: printf 'hello, tcp\\n' | sudo ip netns exec ${ns.name} nc -N 10.0.0.2 ${port}`);
// Our IPv6 address is tentative until Duplicate Address Detection is over (RFC 4862 5.4).
void stack.ndp?.settled().then(() => console.log(`and over IPv6 on [fd00:10::2]:${port}: printf 'hello, six\\n' | sudo ip netns exec ${ns.name} nc -6 -N fd00:10::2 ${port}`));

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim() === 'conns') console.log(stack.connections());
});
onStop(() => {
  rl.close();
  console.log(`\n${stack.tcp.counters.format()}`);
  stack.close();
});
