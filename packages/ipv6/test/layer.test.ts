import { describe, expect, it } from 'vitest';
import { EtherTypeDispatcher, MacAddress, MemoryLink, VirtualClock, buildEthernetFrame, ipv6, type Ipv6Address } from '@tapstack/link';
import { Ipv6Addresses, Ipv6Cidr, Ipv6Layer, Ipv6Packet, Ipv6Repr, fragmentIpv6, upperLayerMessage, type Ipv6DeliveryInfo } from '../src/index.ts';

const MAC = MacAddress.parse('02:00:00:00:00:02');
const PEER_MAC = MacAddress.parse('02:00:00:00:00:01');
const OURS = ipv6('fd00:10::2');
const PEER = ipv6('fd00:10::1');

function setup() {
  const clock = new VirtualClock();
  const [link] = MemoryLink.pair({ macs: [MAC, PEER_MAC] });
  const dispatcher = new EtherTypeDispatcher(link);
  const addresses = new Ipv6Addresses(dispatcher, clock);
  addresses.add(Ipv6Cidr.parse('fd00:10::2/64'), 'static', { tentative: false });
  const layer = new Ipv6Layer({ dispatcher, clock, addresses });
  return { dispatcher, layer };
}

/** An Ethernet frame with an IPv6 packet of next header 253 (RFC 3692: experiments) to us. */
function frame(options: { source?: Ipv6Address; payload: Uint8Array; hopLimit?: number }): Uint8Array {
  const ip = Ipv6Repr.build({ source: options.source ?? PEER, destination: OURS, nextHeader: 253, hopLimit: options.hopLimit ?? 64, trafficClass: 0, flowLabel: 0 }, options.payload);
  return buildEthernetFrame({ destination: MAC, source: PEER_MAC, etherType: 0x86dd }, ip);
}

describe("the handler contract: one view and one info per layer, the bytes the handler's (IPv4's, for IPv6)", () => {
  it('hands every packet the same view and info, re-pointed, with the message where it lies in the frame', () => {
    const { dispatcher, layer } = setup();
    const seen: { packet: Ipv6Packet; info: Ipv6DeliveryInfo; source: string; start: number; end: number; first: number }[] = [];
    layer.register(253, (packet, info) => {
      const start = packet.start + info.payloadOffset;
      seen.push({ packet, info, source: packet.source.toString(), start, end: packet.end, first: packet.buffer[start]! });
    });
    const one = frame({ payload: Uint8Array.of(7, 7, 7) });
    const two = frame({ source: ipv6('fd00:10::9'), payload: Uint8Array.of(9, 9, 9, 9, 9) });
    dispatcher.input(one);
    dispatcher.input(two);
    expect(seen).toHaveLength(2);
    expect(seen[1]!.packet).toBe(seen[0]!.packet);
    expect(seen[1]!.info).toBe(seen[0]!.info);
    expect(seen.map((s) => [s.source, s.start, s.end, s.first])).toEqual([
      ['fd00:10::1', 54, 57, 7],
      ['fd00:10::9', 54, 59, 9],
    ]);
    // So a handler that kept the view, against the rule, now reads the second packet through it:
    expect(seen[0]!.packet.source.toString()).toBe('fd00:10::9');
    expect(seen[0]!.packet.buffer).toBe(two);
    expect(seen[0]!.info.frame).toBe(two);
  });

  it('leaves the bytes to the handler: what it kept of the first packet is intact after the second', () => {
    const { dispatcher, layer } = setup();
    const kept: { repr: ReturnType<typeof Ipv6Repr.parse>; message: Uint8Array; info: Ipv6DeliveryInfo }[] = [];
    layer.register(253, (packet, info) => kept.push({ repr: Ipv6Repr.parse(packet), message: upperLayerMessage(packet, info), info: { ...info } }));
    const one = frame({ payload: Uint8Array.of(1, 2, 3), hopLimit: 11 });
    dispatcher.input(one);
    dispatcher.input(frame({ source: ipv6('fd00:10::9'), payload: Uint8Array.of(4, 5), hopLimit: 12 }));
    expect(kept.map((k) => [k.repr.source.toString(), k.repr.hopLimit, [...k.message], k.info.frame === one])).toEqual([
      ['fd00:10::1', 11, [1, 2, 3], true],
      ['fd00:10::9', 12, [4, 5], false],
    ]);
    // the message is a view of the frame, not a copy
    expect(kept[0]!.message.buffer).toBe(one.buffer);
  });

  it('gives a packet fed in from inside a handler views of its own, and the outer view keeps its packet', () => {
    const { dispatcher, layer } = setup();
    const order: string[] = [];
    const inner = frame({ source: ipv6('fd00:10::9'), payload: Uint8Array.of(2) });
    layer.register(253, (packet, info) => {
      const source = packet.source.toString();
      if (packet.buffer[packet.start + info.payloadOffset] === 1) {
        dispatcher.input(inner);
        // still the outer packet, through the same view and info
        order.push(`outer ${source === packet.source.toString() && packet.buffer[packet.start + info.payloadOffset] === 1 && info.frame !== inner}`);
      } else {
        order.push(`inner ${packet.source.toString() === 'fd00:10::9'}`);
      }
    });
    dispatcher.input(frame({ payload: Uint8Array.of(1) }));
    expect(order).toEqual(['inner true', 'outer true']);
  });

  it('re-points the info too: a reassembled packet after a framed one has no frame and no offload, and its message after the fragment header is whole', () => {
    const { dispatcher, layer } = setup();
    const seen: { info: Ipv6DeliveryInfo; message: number[] }[] = [];
    layer.register(253, (packet, info) => seen.push({ info: { ...info }, message: [...upperLayerMessage(packet, info)] }));
    dispatcher.input(frame({ payload: Uint8Array.of(1) }));
    const payload = Uint8Array.from({ length: 3000 }, (_, i) => i & 0xff);
    const header = { source: PEER, destination: OURS, nextHeader: 253, hopLimit: 64, trafficClass: 0, flowLabel: 0, payloadLength: payload.length };
    for (const f of fragmentIpv6(header, payload, 1280, 7, { headroom: 14 })) {
      f.set(buildEthernetFrame({ destination: MAC, source: PEER_MAC, etherType: 0x86dd }, new Uint8Array(0)).subarray(0, 14));
      dispatcher.input(f);
    }
    expect(seen.map((s) => [s.info.reassembled, s.info.frame === undefined, s.info.offload, s.info.payloadOffset, s.message.length])).toEqual([
      [false, false, undefined, 40, 1],
      [true, true, undefined, 40, 3000],
    ]);
    expect(seen[1]!.message).toEqual([...payload]);
  });
});
