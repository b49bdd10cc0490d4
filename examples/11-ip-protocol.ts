/**
 * Example 11: a protocol of your own on IP protocol number 253 (RFC 3692, for experiments),
 * registered once with the stack so that it shows up everywhere the stack lists its layers: its
 * counters in `stats` and on exit, its decoder in `--trace`, its close() when the stack closes.
 *
 * The protocol, "reverse": a datagram carries some bytes; the answer carries them back reversed.
 * IPv4 does the rest (ARP, routing, fragmenting a large answer, reassembling a large question).
 *
 * Run it (root: it creates a TAP device inside a network namespace of its own):
 *
 *   sudo npx tsx examples/11-ip-protocol.ts --trace
 *
 * and from another terminal, the kernel's side talks to it through a raw IP socket:
 *
 *   sudo ip netns exec tapstack-reverse python3 examples/11-ip-protocol-client.py 10.0.0.2 'hello, protocol 253'
 *
 * which prints `got '352 locotorp ,olleh' from 10.0.0.2`. Ctrl-C prints the counters (reverse.rx_datagrams ...)
 * and removes the namespace. Options: --netns NAME, --trace.
 */
import { parseArgs } from 'node:util';
import { Counters, TapDevice, formatIpv4, type Ipv4Address } from '@tapstack/link';
import { createStack } from '@tapstack/stack';
import { onStop, ownNamespace } from './support/own-namespace.ts';

const PROTOCOL = 253;
const { values } = parseArgs({ options: { netns: { type: 'string', default: 'tapstack-reverse' }, trace: { type: 'boolean', default: false } } });

const ns = ownNamespace(values.netns!);
const tap = TapDevice.open({ name: 'tap0', netns: ns.name });
tap.configureHost({ address: '10.0.0.1/24' });
const stack = createStack({ link: tap, ip: '10.0.0.2/24', trace: values.trace });

// The layer: a handler in IPv4's protocol table...
const counters = new Counters('reverse', ['rx_datagrams', 'rx_empty', 'tx_answers', 'tx_failed'] as const);
// It gets the layer's one view of the datagram (re-pointed at the next one after it returns) and
// reads the payload where it lies, in packet.buffer from packet.payloadOffset.
stack.ipv4.register(PROTOCOL, (packet) => {
  const length = packet.payloadLength;
  if (length === 0) return counters.inc('rx_empty');
  counters.inc('rx_datagrams');
  const answer = new Uint8Array(length);
  for (let i = 0; i < length; i++) answer[i] = packet.buffer[packet.payloadOffset + length - 1 - i]!;
  const outcome = stack.ipv4.send({ destination: packet.source, protocol: PROTOCOL, payload: answer });
  counters.inc(outcome === 'sent' || outcome === 'queued' ? 'tx_answers' : 'tx_failed');
});

// ...and one registration with the stack: counters, close and the trace decoder, everywhere at once.
stack.register({
  name: 'reverse',
  counters,
  close: () => stack.ipv4.unregister(PROTOCOL),
  ipProtocol: PROTOCOL,
  describe: (payload: Uint8Array, source: Ipv4Address, destination: Ipv4Address) =>
    `${formatIpv4(source)} > ${formatIpv4(destination)}: reverse, ${payload.length} bytes`,
});
stack.start();

console.log(`"reverse" on IP protocol ${PROTOCOL} at 10.0.0.2 (tap0 in netns ${ns.name}; the kernel side is 10.0.0.1)`);
console.log(`try: sudo ip netns exec ${ns.name} python3 examples/11-ip-protocol-client.py 10.0.0.2 'hello, protocol 253'`);

onStop(() => {
  console.log(`\n${stack.counters()}`);
  stack.close();
});
