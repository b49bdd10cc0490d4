/**
 * IPv6 builds frames as IPv4 does (packages/ipv4/test/reused-frame.test.ts): in one reused buffer
 * on a link that copies each frame before `send` returns, for payloads whose every byte is
 * written anew, never in a frame NDP kept; and a request object may be rewritten and sent again.
 */
import { describe, expect, it } from 'vitest';
import { EtherTypeDispatcher, MacAddress, MemoryLink, VirtualClock, ipv6, type FrameOffload, type Ipv6Address, type Link } from '@tapstack/link';
import type { ResolveOutcome } from '@tapstack/neighbour';
import { Ipv6Addresses, Ipv6Cidr, Ipv6Layer, Ipv6Packet, type Ipv6NeighbourResolver } from '../src/index.ts';

const MAC = MacAddress.parse('02:00:00:00:00:02');
const PEER = ipv6('fd00:10::1');

/** Frames as the resolver is handed them: the frame object and, read at once, the destination and payload. */
interface Handed {
  frame: Uint8Array;
  destination: string;
  payload: number[];
}

function setup(copiesFrames: boolean) {
  const clock = new VirtualClock();
  const [memory] = MemoryLink.pair({ macs: [MAC, MacAddress.parse('02:00:00:00:00:01')] });
  const link = new Proxy(memory, { get: (target, key) => (key === 'copiesFrames' ? copiesFrames : Reflect.get(target, key, target)) }) as Link;
  const dispatcher = new EtherTypeDispatcher(link);
  const addresses = new Ipv6Addresses(dispatcher, clock);
  addresses.add(Ipv6Cidr.parse('fd00:10::2/64'), 'static', { tentative: false });
  const layer = new Ipv6Layer({ dispatcher, clock, addresses });
  const handed: Handed[] = [];
  const resolver: Ipv6NeighbourResolver & { outcome: ResolveOutcome } = {
    outcome: 'sent',
    onResolutionFailed: () => {},
    resolve(_nextHop: Ipv6Address, frame: Uint8Array, _offload?: FrameOffload): ResolveOutcome {
      const p = new Ipv6Packet(frame.subarray(14));
      handed.push({ frame, destination: p.destination.toString(), payload: [...p.payload] });
      return resolver.outcome;
    },
  };
  layer.setResolver(resolver);
  return { layer, handed, resolver };
}

const writer = (length: number, fill: number) => ({ length, writesEveryByte: true, write: (target: Uint8Array) => void target.fill(fill) });

describe('Ipv6Layer.send builds frames in reused memory', () => {
  it('on a link that copies: one buffer, one view per length, one request rewritten; each frame right when sent', () => {
    const { layer, handed } = setup(true);
    const request = { destination: PEER, nextHeader: 253, payload: writer(100, 0xaa) };
    expect(layer.send(request)).toBe('sent');
    request.destination = ipv6('fd00:10::3');
    request.payload = writer(100, 0xbb);
    layer.send(request);
    request.payload = writer(60, 0xcc);
    layer.send(request);
    const [a, b, c] = handed;
    expect(b!.frame).toBe(a!.frame);
    expect(c!.frame.buffer).toBe(a!.frame.buffer);
    expect(handed.map(({ destination, payload }) => ({ destination, payload }))).toEqual([
      { destination: 'fd00:10::1', payload: new Array(100).fill(0xaa) },
      { destination: 'fd00:10::3', payload: new Array(100).fill(0xbb) },
      { destination: 'fd00:10::3', payload: new Array(60).fill(0xcc) },
    ]);
  });

  it('a frame NDP queued is left to it, and a link that may keep frames gets new memory for each', () => {
    const { layer, handed, resolver } = setup(true);
    resolver.outcome = 'queued';
    layer.send({ destination: PEER, nextHeader: 253, payload: writer(100, 0xaa) });
    resolver.outcome = 'sent';
    layer.send({ destination: PEER, nextHeader: 253, payload: writer(100, 0xbb) });
    expect(handed[1]!.frame.buffer).not.toBe(handed[0]!.frame.buffer);
    expect([...new Ipv6Packet(handed[0]!.frame.subarray(14)).payload].every((x) => x === 0xaa)).toBe(true);

    const keeping = setup(false);
    keeping.layer.send({ destination: PEER, nextHeader: 253, payload: writer(100, 0xaa) });
    keeping.layer.send({ destination: PEER, nextHeader: 253, payload: writer(100, 0xbb) });
    expect(keeping.handed[1]!.frame.buffer).not.toBe(keeping.handed[0]!.frame.buffer);
  });
});
