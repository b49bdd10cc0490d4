/**
 * Example 05: a protocol of your own, straight on Ethernet, through the dispatch table.
 *
 * EtherType 0x88B5 is reserved for local experiments (IEEE 802 "Local Experimental EtherType 1"),
 * so it is ours to play with. The protocol here, "shout", is tiny: a request carries some text,
 * the answer carries it back in capitals. It sits next to ARP and IPv4 in a full stack: one
 * `stack.dispatcher.register(0x88b5, handler)` is all it takes; nothing below knows it exists.
 *
 *   offset  size  field
 *   0       1     kind: 1 request, 2 reply
 *   1       1     reserved (0)
 *   2       2     sequence (the reply echoes it)
 *   4       2     text length in bytes (Ethernet pads short frames to 60 bytes, so the
 *                 protocol must say where its data ends)
 *   6       n     text
 *
 * The codec follows the same pattern as the stack's own: named offsets, one check() that
 * returns a result instead of throwing, and every dropped frame counted under its reason.
 *
 * Run it (root: it creates tap0 inside a network namespace of its own, removed on exit):
 *
 *   sudo npx tsx examples/05-custom-ethertype.ts
 *
 * and from another terminal send it requests from the kernel's side, with a raw AF_PACKET
 * socket (Python, no packages needed):
 *
 *   sudo ip netns exec tapstack-custom python3 examples/05-custom-ethertype-sender.py tap0 02:00:00:00:88:b5 hello world
 *
 * which prints `seq 1: sent 'hello', got 'HELLO' from 02:00:00:00:88:b5` and the same for world.
 * Ctrl-C prints the counters and removes the namespace.
 * Options: --netns NAME (default tapstack-custom).
 */
import { parseArgs } from 'node:util';
import { Counters, ETHERNET_HEADER_LENGTH, MacAddress, TapDevice, type ParseResult } from '@tapstack/link';
import { createStack } from '@tapstack/stack';
import { onStop, ownNamespace } from './support/own-namespace.ts';

export const SHOUT_ETHERTYPE = 0x88b5;

/** Field offsets inside the Ethernet payload. */
const Field = { KIND: 0, SEQUENCE: 2, LENGTH: 4, TEXT: 6 } as const;
const Kind = { REQUEST: 1, REPLY: 2 } as const;

interface ShoutMessage {
  kind: number;
  sequence: number;
  text: Uint8Array;
}

/** Reads a shout message out of an Ethernet payload. Never throws. */
function checkShout(payload: Uint8Array): ParseResult<ShoutMessage, 'truncated' | 'bad_length' | 'bad_kind'> {
  if (payload.length < Field.TEXT) return { ok: false, reason: 'truncated' };
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const kind = payload[Field.KIND]!;
  const length = view.getUint16(Field.LENGTH);
  if (Field.TEXT + length > payload.length) return { ok: false, reason: 'bad_length' };
  if (kind !== Kind.REQUEST && kind !== Kind.REPLY) return { ok: false, reason: 'bad_kind' };
  return { ok: true, value: { kind, sequence: view.getUint16(Field.SEQUENCE), text: payload.subarray(Field.TEXT, Field.TEXT + length) } };
}

const { values } = parseArgs({ options: { netns: { type: 'string', default: 'tapstack-custom' } } });
const ns = ownNamespace(values.netns!);
// A fixed MAC, so the sender's command line above works as written.
const tap = TapDevice.open({ name: 'tap0', netns: ns.name, mac: MacAddress.parse('02:00:00:00:88:b5') });
tap.configureHost({ address: '10.0.0.1/24' });
const stack = createStack({ link: tap, ip: '10.0.0.2/24' }); // ARP and ping keep working next to us

const counters = new Counters('shout', ['rx_requests', 'rx_replies', 'rx_truncated', 'rx_bad_length', 'rx_bad_kind', 'tx_replies'] as const);

stack.dispatcher.register(SHOUT_ETHERTYPE, (frame) => {
  const checked = checkShout(frame.subarray(ETHERNET_HEADER_LENGTH));
  if (!checked.ok) {
    counters.inc(`rx_${checked.reason}`);
    return;
  }
  const message = checked.value;
  if (message.kind === Kind.REPLY) {
    counters.inc('rx_replies'); // nobody here asked: drop
    return;
  }
  counters.inc('rx_requests');
  const from = MacAddress.fromBytes(frame, 6);
  const text = new TextDecoder().decode(message.text);

  // The answer: back to the sender's MAC, from ours, same EtherType, the text in capitals.
  const reply = new Uint8Array(ETHERNET_HEADER_LENGTH + Field.TEXT + message.text.length);
  reply.set(frame.subarray(6, 12), 0); // destination: who asked
  reply.set(stack.link.mac.bytes, 6); // source: us
  const view = new DataView(reply.buffer);
  view.setUint16(12, SHOUT_ETHERTYPE);
  const body = reply.subarray(ETHERNET_HEADER_LENGTH);
  body[Field.KIND] = Kind.REPLY;
  view.setUint16(ETHERNET_HEADER_LENGTH + Field.SEQUENCE, message.sequence);
  view.setUint16(ETHERNET_HEADER_LENGTH + Field.LENGTH, message.text.length);
  for (let i = 0; i < message.text.length; i++) {
    const c = message.text[i]!;
    body[Field.TEXT + i] = c >= 0x61 && c <= 0x7a ? c - 0x20 : c; // a-z -> A-Z, other bytes as they are
  }
  if (stack.dispatcher.send(reply)) counters.inc('tx_replies');
  console.log(`shout #${message.sequence} from ${from}: '${text}' -> '${text.toUpperCase()}'`);
});

console.log(`listening for EtherType 0x88b5 on tap0 (mac ${tap.mac}) in namespace ${ns.name}; 10.0.0.2 answers ping too`);
console.log(
  `send something from another terminal:\n  sudo ip netns exec ${ns.name} python3 examples/05-custom-ethertype-sender.py tap0 ${tap.mac} hello world`,
);

onStop(() => {
  console.log(`\n${counters.format()}`);
  console.log(stack.counters());
  stack.close();
});
