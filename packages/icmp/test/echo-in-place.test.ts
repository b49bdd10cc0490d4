/**
 * Echo replies built in the request's own frame (Ipv4Layer.sendInPlace): the common case reuses
 * the buffer, and every other case (Ethernet padding, IP options, a reassembled request) still
 * gets a correct reply.
 */
import { Ipv4Cidr, Ipv4Layer, Ipv4Packet, Ipv4Repr } from '@tapstack/ipv4';
import { EtherTypeDispatcher, MacAddress, MemoryLink, VirtualClock, ipv4 } from '@tapstack/link';
import { describe, expect, it } from 'vitest';
import { IcmpLayer } from '../src/layer.ts';
import { IcmpPacket, IcmpRepr } from '../src/packet.ts';
import { RecordingResolver } from '../../../test/support/recording-resolver.ts';

const US = ipv4('10.0.0.2');
const PEER = ipv4('10.0.0.1');
const OUR_MAC = MacAddress.parse('02:00:00:00:0b:02');
const PEER_MAC = MacAddress.parse('02:00:00:00:0a:01');

function setup() {
  const [link] = MemoryLink.pair({ macs: [OUR_MAC, PEER_MAC] });
  const dispatcher = new EtherTypeDispatcher(link);
  const resolver = new RecordingResolver(OUR_MAC, undefined, new Map([[PEER, PEER_MAC]]));
  const clock = new VirtualClock();
  const ip = new Ipv4Layer({ dispatcher, resolver, clock, address: Ipv4Cidr.parse('10.0.0.2/24'), random: () => 0 });
  const icmp = new IcmpLayer({ ipv4: ip, clock, random: () => 0 });
  return { dispatcher, resolver, icmp };
}

function request(size: number, options = new Uint8Array(0), extra: Partial<Ipv4Repr> = {}, padding = 0): Uint8Array {
  const data = new Uint8Array(size).map((_, i) => (i * 13) & 0xff);
  const message = IcmpRepr.build({ kind: 'echo-request', identifier: 0x4242, sequence: 7, data });
  const repr: Ipv4Repr = {
    source: PEER,
    destination: US,
    protocol: 1,
    ttl: 64,
    identification: 0x1234,
    dscp: 0,
    ecn: 0,
    dontFragment: true,
    moreFragments: false,
    fragmentOffset: 0,
    options,
    payloadLength: message.length,
    ...extra,
  };
  const f = new Uint8Array(14 + Ipv4Repr.bufferLength(repr) + padding);
  OUR_MAC.writeTo(f, 0);
  PEER_MAC.writeTo(f, 6);
  f[12] = 8;
  Ipv4Repr.emit(repr, f, 14);
  f.set(message, 14 + 20 + options.length);
  return f;
}

/** Checks a reply frame from top to bottom against the request's echo data. */
function expectReply(frame: Uint8Array, size: number): void {
  expect(frame.length).toBe(14 + 20 + 8 + size);
  expect(MacAddress.fromBytes(frame, 0).equals(PEER_MAC)).toBe(true);
  expect(MacAddress.fromBytes(frame, 6).equals(OUR_MAC)).toBe(true);
  const checked = Ipv4Packet.check(frame.subarray(14));
  if (!checked.ok) throw new Error(checked.reason);
  const ip = Ipv4Repr.parse(checked.value);
  expect(ip).toMatchObject({ source: US, destination: PEER, protocol: 1, ttl: 64, options: new Uint8Array(0), payloadLength: 8 + size });
  const message = new IcmpPacket(checked.value.payload);
  expect(message.verifyChecksum()).toBe(true);
  const r = IcmpRepr.parse(message);
  if (!r.ok) throw new Error(r.reason);
  expect(r.value).toEqual({ kind: 'echo-reply', identifier: 0x4242, sequence: 7, data: new Uint8Array(size).map((_, i) => (i * 13) & 0xff) });
}

describe('echo reply in the request frame', () => {
  it('reuses the request frame itself for the reply', () => {
    const { dispatcher, resolver, icmp } = setup();
    for (const size of [0, 1, 56, 1472]) {
      const input = request(size);
      dispatcher.input(input);
      const sent = resolver.sent.pop()!.frame;
      expect(sent.buffer).toBe(input.buffer);
      expect(sent.byteOffset).toBe(input.byteOffset);
      expectReply(sent, size);
    }
    expect(icmp.counters.get('tx_echo_replies')).toBe(4);
  });

  it('leaves Ethernet padding after the datagram out of the reply', () => {
    const { dispatcher, resolver } = setup();
    const input = request(2, new Uint8Array(0), {}, 16); // a 44-byte datagram in a 60-byte frame + 2
    dispatcher.input(input);
    const sent = resolver.sent[0]!.frame;
    expect(sent.buffer).toBe(input.buffer);
    expectReply(sent, 2);
  });

  it('answers a request with IP options in a new frame, without the options', () => {
    const { dispatcher, resolver } = setup();
    const input = request(56, new Uint8Array([1, 1, 1, 0])); // NOP, NOP, NOP, end of list
    const before = input.slice();
    dispatcher.input(input);
    const sent = resolver.sent[0]!.frame;
    expect(sent.buffer).not.toBe(input.buffer);
    expectReply(sent, 56);
    expect(input).toEqual(before); // the request frame was not touched
  });

  it('answers a reassembled request (two fragments) in a new frame', () => {
    const { dispatcher, resolver } = setup();
    const whole = request(1000, new Uint8Array(0), { dontFragment: false });
    const datagram = whole.subarray(34); // the ICMP message, 1008 bytes
    const fragment = (offset: number, end: number, more: boolean): Uint8Array => {
      const f = new Uint8Array(34 + end - offset);
      f.set(whole.subarray(0, 14));
      Ipv4Repr.emit(
        { source: PEER, destination: US, protocol: 1, ttl: 64, identification: 0x99, dscp: 0, ecn: 0, dontFragment: false, moreFragments: more, fragmentOffset: offset, options: new Uint8Array(0), payloadLength: end - offset },
        f,
        14,
      );
      f.set(datagram.subarray(offset, end), 34);
      return f;
    };
    dispatcher.input(fragment(0, 504, true));
    dispatcher.input(fragment(504, 1008, false));
    expect(resolver.sent).toHaveLength(1);
    expectReply(resolver.sent[0]!.frame, 1000);
  });
});
