/**
 * sendInPlace: a datagram whose payload already sits in a frame (a received frame turned into
 * its answer) goes out with exactly the bytes send() would have built, without a new buffer.
 */
import { EtherTypeDispatcher, MacAddress, MemoryLink, VirtualClock, ipv4 } from '@tapstack/link';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Ipv4Cidr } from '../src/cidr.ts';
import { Ipv4Packet, Ipv4Repr } from '../src/header.ts';
import { Ipv4Layer } from '../src/layer.ts';
import { RecordingResolver } from '../../../test/support/recording-resolver.ts';

const US = ipv4('10.0.0.2');
const PEER = ipv4('10.0.0.1');
const OUR_MAC = MacAddress.parse('02:00:00:00:0b:02');

function setup(mtu = 1500) {
  const [link] = MemoryLink.pair({ mtu, macs: [OUR_MAC, MacAddress.parse('02:00:00:00:0a:01')] });
  const dispatcher = new EtherTypeDispatcher(link);
  const resolver = new RecordingResolver(OUR_MAC);
  // Two layers with the same identification counter: one sends, the other sends in place.
  const make = () => new Ipv4Layer({ dispatcher: new EtherTypeDispatcher(link), resolver, clock: new VirtualClock(), address: Ipv4Cidr.parse('10.0.0.2/24'), random: () => 0.25 });
  void dispatcher;
  return { resolver, make };
}

/** A frame of 14 + 20 + payload bytes with the payload at 34 and junk in the header bytes. */
function frameWith(payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(34 + payload.length).fill(0xee);
  f.set(payload, 34);
  return f;
}

describe('Ipv4Layer.sendInPlace', () => {
  it('writes the same bytes as send(), into the frame it was given, and hands that frame on', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 1480 }),
        fc.integer({ min: 1, max: 255 }),
        fc.integer({ min: 1, max: 255 }),
        fc.integer({ min: 0, max: 63 }),
        fc.boolean(),
        (payload, protocol, ttl, dscp, dontFragment) => {
          const { resolver, make } = setup();
          const a = make();
          const b = make();
          const request = { destination: PEER, protocol, ttl, dscp, dontFragment };
          expect(a.send({ ...request, payload })).toBe('sent');
          const frame = frameWith(payload);
          expect(b.sendInPlace(frame, request)).toBe('sent');
          const [viaSend, inPlace] = resolver.sent;
          expect(inPlace!.frame).toBe(frame); // no new buffer
          expect(Buffer.from(inPlace!.frame).equals(Buffer.from(viaSend!.frame))).toBe(true);
          expect(new Ipv4Packet(frame.subarray(14)).verifyChecksum()).toBe(true);
          expect(b.counters.get('tx_packets')).toBe(1);
          expect(b.counters.get('tx_frames')).toBe(1);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('header fields as Ipv4Repr.parse reads them back (source given, identification counts up)', () => {
    const { resolver, make } = setup();
    const layer = make();
    const payload = new Uint8Array([8, 0, 0xf7, 0xff, 0, 0, 0, 0]);
    layer.sendInPlace(frameWith(payload), { destination: PEER, source: US, protocol: 1 });
    layer.sendInPlace(frameWith(payload), { destination: PEER, source: US, protocol: 1 });
    const [first, second] = resolver.sent.map((s) => Ipv4Repr.parse(new Ipv4Packet(s.frame.subarray(14))));
    expect(first).toMatchObject({ source: US, destination: PEER, protocol: 1, ttl: 64, dscp: 0, ecn: 0, dontFragment: false, moreFragments: false, fragmentOffset: 0, payloadLength: 8 });
    expect(second!.identification).toBe((first!.identification + 1) & 0xffff);
    expect(resolver.sent[0]!.frame[12]).toBe(0x08);
    expect(resolver.sent[0]!.frame[13]).toBe(0x00);
  });

  it('fragments a payload bigger than the MTU the way send() does', () => {
    const { resolver, make } = setup(576);
    const payload = new Uint8Array(1400).map((_, i) => i & 0xff);
    const a = make();
    const b = make();
    a.send({ destination: PEER, protocol: 17, payload });
    const viaSend = resolver.sent.splice(0).map((s) => Buffer.from(s.frame));
    b.sendInPlace(frameWith(payload), { destination: PEER, protocol: 17 });
    const inPlace = resolver.sent.map((s) => Buffer.from(s.frame));
    expect(viaSend.length).toBe(3);
    expect(inPlace).toEqual(viaSend);
  });

  it('refuses what send() refuses, with the same outcome and counter', () => {
    const { resolver, make } = setup(576);
    const layer = make();
    expect(layer.sendInPlace(frameWith(new Uint8Array(8)), { destination: ipv4('192.0.2.1'), protocol: 1 })).toBe('no_route');
    expect(layer.sendInPlace(frameWith(new Uint8Array(1000)), { destination: PEER, protocol: 1, dontFragment: true })).toBe('fragmentation_needed');
    expect(layer.counters.get('tx_no_route')).toBe(1);
    expect(layer.counters.get('tx_fragmentation_needed')).toBe(1);
    layer.close();
    expect(layer.sendInPlace(frameWith(new Uint8Array(8)), { destination: PEER, protocol: 1 })).toBe('closed');
    expect(resolver.sent).toHaveLength(0);
    expect(() => layer.sendInPlace(new Uint8Array(20), { destination: PEER, protocol: 1 })).toThrow(RangeError);
  });

  it('delivers a datagram to ourselves locally, like send()', async () => {
    const { resolver, make } = setup();
    const layer = make();
    const got: number[][] = [];
    layer.register(253, (p) => got.push([...p.payload]));
    expect(layer.sendInPlace(frameWith(new Uint8Array([1, 2, 3])), { destination: US, protocol: 253 })).toBe('sent');
    await Promise.resolve();
    expect(got).toEqual([[1, 2, 3]]);
    expect(resolver.sent).toHaveLength(0);
  });
});
