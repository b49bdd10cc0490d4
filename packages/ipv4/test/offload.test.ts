// IPv4 with a link that has offloads (a TAP device in virtio-net header mode): what reaches a
// protocol that reads offloads and one that does not, super-frames past the MTU both ways, and
// the software fallback that finishes a partial checksum (Linux's skb_checksum_help).
import { EtherTypeDispatcher, LinkWrapper, MacAddress, MemoryLink, VirtualClock, ipv4, type FrameOffload } from '@tapstack/link';
import { describe, expect, it } from 'vitest';
import { internetChecksum, pseudoHeaderSum, foldChecksum } from '../src/checksum.ts';
import { Ipv4Cidr } from '../src/cidr.ts';
import { Ipv4Packet, Ipv4Repr } from '../src/header.ts';
import { Ipv4Layer, finishChecksum, type Ipv4DeliveryInfo } from '../src/layer.ts';
import { hex } from '../../../test/support/fixtures.ts';
import { RecordingResolver, macFor } from '../../../test/support/recording-resolver.ts';

const US = ipv4('10.0.0.2');
const PEER = ipv4('10.0.0.1');
const OUR_MAC = MacAddress.parse('02:00:00:00:0b:02');

/** A MemoryLink that says it takes super-frames, as a TapDevice with vnetHeader does. */
class GsoLink extends LinkWrapper {
  override get gsoMaxSize(): number {
    return 65535;
  }
}

function setup(gso: boolean) {
  const [wire] = MemoryLink.pair({ macs: [OUR_MAC, MacAddress.parse('02:00:00:00:0a:01')] });
  const link = gso ? new GsoLink(wire) : wire;
  const dispatcher = new EtherTypeDispatcher(link);
  const resolver = new RecordingResolver(OUR_MAC);
  const layer = new Ipv4Layer({ dispatcher, resolver, clock: new VirtualClock(), address: Ipv4Cidr.parse('10.0.0.2/24'), random: () => 0.5 });
  return { dispatcher, resolver, layer };
}

/** A frame from PEER to US carrying `transport` as protocol `protocol`. */
function frameOf(protocol: number, transport: Uint8Array): Uint8Array {
  const repr = { source: PEER, destination: US, protocol, ttl: 64, identification: 1, dscp: 0, ecn: 0, dontFragment: true, moreFragments: false, fragmentOffset: 0, options: new Uint8Array(0), payloadLength: transport.length };
  const f = new Uint8Array(14 + Ipv4Repr.bufferLength(repr));
  OUR_MAC.writeTo(f, 0);
  macFor(PEER).writeTo(f, 6);
  f[12] = 0x08;
  Ipv4Repr.emit(repr, f, 14);
  f.set(transport, 34);
  return f;
}

// A UDP datagram 10.0.0.1:5000 -> 10.0.0.2:7 with 4 bytes "ping", as the kernel hands it with
// TUN_F_CSUM: the checksum field holds the pseudo-header sum only (NEEDS_CSUM, csum_start 34,
// csum_offset 6). Pseudo-header: 0a00 0001 + 0a00 0002 + 0011 + 000c = 0x1420; folded 0x1420.
const UDP_PARTIAL = hex('13 88 00 07  00 0c  14 20  70 69 6e 67');
const UDP_PARTIAL_OFFLOAD: FrameOffload = { checksum: 'partial', checksumStart: 34, checksumOffset: 6, gso: 'none', segmentSize: 0, headerLength: 0 };

describe('finishChecksum (the software fallback)', () => {
  it('turns a pseudo-header sum into the real checksum, which then verifies', () => {
    const f = frameOf(17, UDP_PARTIAL);
    finishChecksum(f, UDP_PARTIAL_OFFLOAD, f.length);
    const udp = f.subarray(34);
    expect(internetChecksum(udp, pseudoHeaderSum(PEER, US, 17, udp.length))).toBe(0);
    // 0x1420 + 0x1388 + 0x0007 + 0x000c + 0x7069 + 0x6e67 = 0x1068b -> 0x068c; complemented 0xf973
    expect(Array.from(udp.subarray(6, 8))).toEqual([0xf9, 0x73]);
  });
  it('leaves a frame alone when the field lies past the end', () => {
    const f = frameOf(17, UDP_PARTIAL);
    const before = f.slice();
    finishChecksum(f, { ...UDP_PARTIAL_OFFLOAD, checksumOffset: 100 }, f.length);
    expect(f).toEqual(before);
  });
});

describe('receive with offloads', () => {
  it('a protocol that does not read offloads gets the checksum finished and no offload', () => {
    const { dispatcher, layer } = setup(true);
    const got: { payload: Uint8Array; info: Ipv4DeliveryInfo }[] = [];
    layer.register(17, (p, info) => got.push({ payload: p.payload.slice(), info: { ...info } }));
    dispatcher.input(frameOf(17, UDP_PARTIAL), UDP_PARTIAL_OFFLOAD);
    expect(got).toHaveLength(1);
    expect(got[0]!.info.offload).toBeUndefined();
    expect(internetChecksum(got[0]!.payload, pseudoHeaderSum(PEER, US, 17, 12))).toBe(0);
  });

  it('a partial checksum that does not start at the transport header is not finished (the protocol then finds it bad)', () => {
    const { dispatcher, layer } = setup(true);
    const got: Uint8Array[] = [];
    layer.register(17, (p) => got.push(p.payload.slice()));
    const f = frameOf(17, UDP_PARTIAL);
    const ipHeader = f.slice(14, 34);
    dispatcher.input(f, { ...UDP_PARTIAL_OFFLOAD, checksumStart: 14, checksumOffset: 10 });
    expect(f.subarray(14, 34)).toEqual(ipHeader); // the IPv4 header was not written over
    expect(Array.from(got[0]!.subarray(6, 8))).toEqual([0x14, 0x20]);
  });

  it('a protocol registered with offloads gets the frame as it came, with the offload', () => {
    const { dispatcher, layer } = setup(true);
    const got: { payload: Uint8Array; info: Ipv4DeliveryInfo }[] = [];
    layer.register(17, (p, info) => got.push({ payload: p.payload.slice(), info: { ...info } }), { offloads: true });
    dispatcher.input(frameOf(17, UDP_PARTIAL), UDP_PARTIAL_OFFLOAD);
    expect(got[0]!.info.offload).toEqual(UDP_PARTIAL_OFFLOAD);
    expect(Array.from(got[0]!.payload.subarray(6, 8))).toEqual([0x14, 0x20]);
  });

  it('a super-frame longer than the MTU is delivered whole (bounded by the 16-bit total length only)', () => {
    const { dispatcher, layer } = setup(true);
    const lengths: number[] = [];
    layer.register(6, (p) => lengths.push(p.totalLength), { offloads: true });
    const tcp = new Uint8Array(20 + 20 * 1448);
    dispatcher.input(frameOf(6, tcp), { checksum: 'partial', checksumStart: 34, checksumOffset: 16, gso: 'tcpv4', segmentSize: 1448, headerLength: 54 });
    dispatcher.input(frameOf(6, new Uint8Array(65535 - 20)));
    expect(lengths).toEqual([20 + 20 + 20 * 1448, 65535]);
    expect(layer.counters.get('rx_delivered')).toBe(2);
  });
});

describe('send with offloads', () => {
  const tcpPayload = (length: number): Uint8Array => {
    const p = new Uint8Array(length);
    p[12] = 5 << 4; // a 20-byte TCP header
    return p;
  };

  it('a TCP super-frame goes out whole, past the MTU, with the offload for the link', () => {
    const { layer, resolver } = setup(true);
    expect(layer.gsoMaxSize).toBe(65535);
    const outcome = layer.send({ destination: PEER, protocol: 6, payload: tcpPayload(20 + 40 * 1448), dontFragment: true, offload: { checksumOffset: 16, segmentSize: 1448, transportHeaderLength: 20 } });
    expect(outcome).toBe('sent');
    expect(resolver.sent).toHaveLength(1);
    const { frame, offload } = resolver.sent[0]!;
    expect(frame.length).toBe(14 + 20 + 20 + 40 * 1448);
    expect(new Ipv4Packet(frame.subarray(14)).totalLength).toBe(20 + 20 + 40 * 1448);
    expect(offload).toEqual({ checksum: 'partial', checksumStart: 34, checksumOffset: 16, gso: 'tcpv4', segmentSize: 1448, headerLength: 54 });
    expect(layer.counters.get('tx_fragments')).toBe(0);
  });

  it('one segment with a partial checksum: no GSO, the checksum still left to the link', () => {
    const { layer, resolver } = setup(true);
    layer.send({ destination: PEER, protocol: 6, payload: tcpPayload(20 + 100), offload: { checksumOffset: 16, segmentSize: 1448, transportHeaderLength: 20 } });
    expect(resolver.sent[0]!.offload).toEqual({ checksum: 'partial', checksumStart: 34, checksumOffset: 16, gso: 'none', segmentSize: 0, headerLength: 0 });
  });

  it('a link without offloads: the checksum is finished here, and a super-frame is refused like any datagram past the MTU', () => {
    const { layer, resolver } = setup(false);
    expect(layer.gsoMaxSize).toBe(0);
    const segment = tcpPayload(20 + 100);
    const pseudo = foldChecksum(pseudoHeaderSum(US, PEER, 6, segment.length));
    segment[16] = pseudo >>> 8;
    segment[17] = pseudo & 0xff;
    layer.send({ destination: PEER, protocol: 6, payload: segment, offload: { checksumOffset: 16, segmentSize: 1448, transportHeaderLength: 20 } });
    const sent = resolver.sent[0]!;
    expect(sent.offload).toBeUndefined();
    expect(internetChecksum(sent.frame.subarray(34), pseudoHeaderSum(US, PEER, 6, segment.length))).toBe(0);
    expect(layer.send({ destination: PEER, protocol: 6, payload: tcpPayload(20 + 3000), dontFragment: true, offload: { checksumOffset: 16, segmentSize: 1448, transportHeaderLength: 20 } })).toBe('fragmentation_needed');
  });
});
