/**
 * The send path builds frames in one reused buffer only where that is safe: on a link that
 * copies each frame before `send` returns, for payloads whose every byte is written anew, and
 * never in a frame the resolver kept (queued while ARP asks).
 */
import { EtherTypeDispatcher, MacAddress, MemoryLink, VirtualClock, ipv4, type Link } from '@tapstack/link';
import { describe, expect, it } from 'vitest';
import { Ipv4Cidr } from '../src/cidr.ts';
import { Ipv4Packet } from '../src/header.ts';
import { Ipv4Layer, type PayloadWriter } from '../src/layer.ts';
import { RecordingResolver } from '../../../test/support/recording-resolver.ts';

const PEER = ipv4('10.0.0.1');
const OUR_MAC = MacAddress.parse('02:00:00:00:0b:02');

function setup(copiesFrames: boolean) {
  const [memory] = MemoryLink.pair({ macs: [OUR_MAC, MacAddress.parse('02:00:00:00:0a:01')] });
  // The same link, saying whether it copies (a TAP device does; a memory wire does not).
  const link = new Proxy(memory, { get: (target, key) => (key === 'copiesFrames' ? copiesFrames : Reflect.get(target, key, target)) }) as Link;
  const resolver = new RecordingResolver(OUR_MAC);
  const layer = new Ipv4Layer({ dispatcher: new EtherTypeDispatcher(link), resolver, clock: new VirtualClock(), address: Ipv4Cidr.parse('10.0.0.2/24'), random: () => 0.25 });
  return { resolver, layer };
}

/** Writes `fill` into every byte, as TCP's segment writer writes every byte of a segment. */
function writer(length: number, fill: number, writesEveryByte?: boolean): PayloadWriter {
  return { length, write: (target) => target.fill(fill), ...(writesEveryByte === undefined ? {} : { writesEveryByte }) };
}

const payloadOf = (frame: Uint8Array): Uint8Array => new Ipv4Packet(frame.subarray(14)).payload;

describe('Ipv4Layer.send builds frames in reused memory', () => {
  it('on a link that copies, frames of payloads written whole share one buffer and are each right when sent', () => {
    const { resolver, layer } = setup(true);
    const seen: number[][] = [];
    const resolve = resolver.resolve.bind(resolver);
    resolver.resolve = (nextHop, frame, offload) => {
      seen.push([...payloadOf(frame)]);
      expect(new Ipv4Packet(frame.subarray(14)).verifyChecksum()).toBe(true);
      return resolve(nextHop, frame, offload);
    };
    layer.send({ destination: PEER, protocol: 6, payload: writer(100, 0xaa, true) });
    layer.send({ destination: PEER, protocol: 6, payload: new Uint8Array(40).fill(0xbb) });
    const [a, b] = resolver.sent;
    expect(a!.frame.buffer).toBe(b!.frame.buffer);
    expect(seen[0]).toEqual(new Array(100).fill(0xaa));
    expect(seen[1]).toEqual(new Array(40).fill(0xbb));
  });

  it('a writer that may leave bytes alone gets zeroed memory of its own', () => {
    const { resolver, layer } = setup(true);
    layer.send({ destination: PEER, protocol: 6, payload: writer(100, 0xaa, true) });
    layer.send({ destination: PEER, protocol: 17, payload: { length: 8, write: () => {} } });
    const [a, b] = resolver.sent;
    expect(b!.frame.buffer).not.toBe(a!.frame.buffer);
    expect([...payloadOf(b!.frame)]).toEqual(new Array(8).fill(0));
  });

  it('on a link that may keep frames, every frame has memory of its own', () => {
    const { resolver, layer } = setup(false);
    layer.send({ destination: PEER, protocol: 6, payload: writer(100, 0xaa, true) });
    layer.send({ destination: PEER, protocol: 6, payload: writer(100, 0xbb, true) });
    const [a, b] = resolver.sent;
    expect(a!.frame.buffer).not.toBe(b!.frame.buffer);
    expect(payloadOf(a!.frame).every((x) => x === 0xaa)).toBe(true);
  });

  it('a frame the resolver queued is left to it: the next frame is built elsewhere', () => {
    const { resolver, layer } = setup(true);
    resolver.outcome = 'queued';
    expect(layer.send({ destination: PEER, protocol: 6, payload: writer(100, 0xaa, true) })).toBe('queued');
    resolver.outcome = 'sent';
    layer.send({ destination: PEER, protocol: 6, payload: writer(100, 0xbb, true) });
    layer.send({ destination: PEER, protocol: 6, payload: writer(100, 0xcc, true) });
    const [queued, second, third] = resolver.sent;
    expect(second!.frame.buffer).not.toBe(queued!.frame.buffer);
    expect(third!.frame.buffer).toBe(second!.frame.buffer);
    expect(payloadOf(queued!.frame).every((x) => x === 0xaa)).toBe(true);
  });

  it('one request object rewritten for every datagram (as TCP does), and frames of one length in one view: each frame is right when sent', () => {
    const { resolver, layer } = setup(true);
    const seen: { destination: number; payload: number[] }[] = [];
    const resolve = resolver.resolve.bind(resolver);
    resolver.resolve = (nextHop, frame, offload) => {
      const p = new Ipv4Packet(frame.subarray(14));
      seen.push({ destination: p.destination, payload: [...p.payload] });
      return resolve(nextHop, frame, offload);
    };
    const request = { destination: PEER, protocol: 6, payload: writer(100, 0xaa, true) };
    layer.send(request);
    request.destination = ipv4('10.0.0.3');
    request.payload = writer(100, 0xbb, true);
    layer.send(request);
    request.payload = writer(60, 0xcc, true);
    layer.send(request);
    const [a, b, c] = resolver.sent;
    // the same length: the same view of the one buffer; another length: a view of its own on it
    expect(b!.frame).toBe(a!.frame);
    expect(c!.frame).not.toBe(a!.frame);
    expect(c!.frame.buffer).toBe(a!.frame.buffer);
    expect(seen).toEqual([
      { destination: PEER, payload: new Array(100).fill(0xaa) },
      { destination: ipv4('10.0.0.3'), payload: new Array(100).fill(0xbb) },
      { destination: ipv4('10.0.0.3'), payload: new Array(60).fill(0xcc) },
    ]);
  });
});
