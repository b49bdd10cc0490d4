import { EtherTypeDispatcher, MacAddress, MemoryLink, VirtualClock, ipv4, seededRandom, type Ipv4Address } from '@tapstack/link';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Ipv4Cidr } from '../src/cidr.ts';
import { Ipv4Packet, Ipv4Repr } from '../src/header.ts';
import { Ipv4Layer, type Ipv4DeliveryInfo, type Ipv4Handler, type Ipv4ErrorKind, type Ipv4LayerOptions } from '../src/layer.ts';
import { allIpv4Frames } from '../../../test/support/fixtures.ts';
import { RecordingResolver, macFor } from '../../../test/support/recording-resolver.ts';

const US = ipv4('10.0.0.2');
const PEER = ipv4('10.0.0.1');
const OUR_MAC = MacAddress.parse('02:00:00:00:0b:02');

function setup(options: Partial<Ipv4LayerOptions> = {}, mtu = 1500) {
  const [link] = MemoryLink.pair({ mtu, macs: [OUR_MAC, MacAddress.parse('02:00:00:00:0a:01')] });
  const dispatcher = new EtherTypeDispatcher(link);
  const resolver = new RecordingResolver(OUR_MAC);
  const clock = new VirtualClock();
  const layer = new Ipv4Layer({ dispatcher, resolver, clock, address: Ipv4Cidr.parse('10.0.0.2/24'), random: () => 0.5, ...options });
  const delivered: Delivered[] = [];
  const errors: { kind: Ipv4ErrorKind; datagram: Uint8Array; local: boolean }[] = [];
  layer.setErrorReporter({ report: (kind, datagram, ctx) => errors.push({ kind, datagram: datagram.slice(), local: ctx.local }) });
  return { link, dispatcher, resolver, clock, layer, delivered, errors };
}

type Delivered = { packet: Ipv4Packet; payload: Uint8Array; info: Ipv4DeliveryInfo };

/**
 * A handler that keeps what it was given the way the handler contract says to: the bytes (they
 * are the handler's), a view of its own over them, and a copy of the info (the layer's view and
 * info are re-pointed at the next datagram).
 */
function keepInto(delivered: Delivered[]): Ipv4Handler {
  return (packet, info) => {
    delivered.push({ packet: new Ipv4Packet(packet.bytes), payload: packet.payload, info: { ...info } });
  };
}

interface DatagramSpec {
  source?: Ipv4Address;
  destination?: Ipv4Address;
  protocol?: number;
  payload?: Uint8Array;
  id?: number;
  more?: boolean;
  offset?: number;
  ethDst?: MacAddress;
}

/** A whole Ethernet frame carrying one datagram, as a peer would send it. */
function frame(spec: DatagramSpec = {}): Uint8Array {
  const payload = spec.payload ?? new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  const repr = {
    source: spec.source ?? PEER,
    destination: spec.destination ?? US,
    protocol: spec.protocol ?? 253,
    ttl: 64,
    identification: spec.id ?? 1,
    dscp: 0,
    ecn: 0,
    dontFragment: false,
    moreFragments: spec.more ?? false,
    fragmentOffset: spec.offset ?? 0,
    options: new Uint8Array(0),
    payloadLength: payload.length,
  };
  const f = new Uint8Array(14 + Ipv4Repr.bufferLength(repr));
  (spec.ethDst ?? OUR_MAC).writeTo(f, 0);
  macFor(repr.source).writeTo(f, 6);
  f[12] = 0x08;
  Ipv4Repr.emit(repr, f, 14);
  f.set(payload, 34);
  return f;
}

describe('Ipv4Layer receive', () => {
  it('delivers a datagram for us to the registered protocol, through the EtherType table', () => {
    const { dispatcher, layer, delivered } = setup();
    layer.register(253, keepInto(delivered));
    const input = frame();
    dispatcher.input(input);
    expect(delivered).toHaveLength(1);
    expect([...delivered[0]!.payload]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(delivered[0]!.packet.source).toBe(PEER);
    // the frame it came in is handed up too (the handler may answer in it)
    expect(delivered[0]!.info).toEqual({ destinationKind: 'unicast', linkGroup: false, reassembled: false, frame: input });
    expect(delivered[0]!.info.frame).toBe(input);
    expect(layer.counters.get('rx_delivered')).toBe(1);
  });

  it('drops damaged datagrams, each under its own counter, and never delivers them', () => {
    const { layer, delivered } = setup();
    layer.register(253, keepInto(delivered));
    const good = frame();
    const damaged = (f: (b: Uint8Array) => void): Uint8Array => {
      const b = good.slice();
      f(b);
      return b;
    };
    layer.input(good.subarray(0, 30));
    layer.input(damaged((b) => (b[14] = 0x65)));
    layer.input(damaged((b) => (b[14] = 0x44)));
    layer.input(damaged((b) => (b[14] = 0x4f)));
    layer.input(damaged((b) => (b[22] = 1))); // TTL changed, checksum now wrong
    expect(layer.counters.snapshot()).toMatchObject({
      rx_packets: 5,
      rx_truncated: 1,
      rx_bad_version: 1,
      rx_bad_ihl: 1,
      rx_header_truncated: 1,
      rx_bad_checksum: 1,
      rx_delivered: 0,
    });
    // total length past the frame (with a correct checksum)
    const long = frame();
    long[17] = long[17]! + 1;
    long[24] = 0;
    long[25] = 0;
    new Ipv4Packet(long.subarray(14)).fillChecksum();
    layer.input(long);
    expect(layer.counters.get('rx_bad_total_length')).toBe(1);
    expect(delivered).toHaveLength(0);
  });

  it('ignores Ethernet padding after the datagram', () => {
    const { layer, delivered } = setup();
    layer.register(253, keepInto(delivered));
    const f = frame({ payload: new Uint8Array([9]) });
    const padded = new Uint8Array(60);
    padded.set(f);
    padded.fill(0xee, f.length);
    layer.input(padded);
    expect([...delivered[0]!.payload]).toEqual([9]);
  });

  it('drops martian sources and what is not for us, without forwarding', () => {
    const { layer, delivered } = setup();
    layer.register(253, keepInto(delivered));
    layer.input(frame({ source: ipv4('224.0.0.1') }));
    layer.input(frame({ source: ipv4('255.255.255.255') }));
    layer.input(frame({ source: ipv4('10.0.0.255') }));
    layer.input(frame({ source: ipv4('127.0.0.1') }));
    layer.input(frame({ source: ipv4('0.0.0.0') }));
    layer.input(frame({ source: US }));
    layer.input(frame({ destination: ipv4('10.0.0.3') }));
    layer.input(frame({ destination: ipv4('192.0.2.1') }));
    layer.input(frame({ ethDst: MacAddress.BROADCAST })); // unicast IP in a link broadcast (RFC 1122 3.3.6)
    expect(layer.counters.snapshot()).toMatchObject({
      rx_source_multicast: 1,
      rx_source_broadcast: 2,
      rx_source_loopback: 1,
      rx_source_unspecified: 1,
      rx_source_is_ours: 1,
      rx_not_forwarded: 2,
      rx_unicast_in_link_broadcast: 1,
    });
    expect(delivered).toHaveLength(0);
  });

  it('delivers broadcast and multicast only to protocols that asked for them', () => {
    const { layer, delivered } = setup();
    layer.register(253, keepInto(delivered));
    layer.register(254, keepInto(delivered), { broadcast: true, multicast: true });
    const bc = { ethDst: MacAddress.BROADCAST };
    layer.input(frame({ ...bc, destination: ipv4('255.255.255.255') }));
    layer.input(frame({ ...bc, destination: ipv4('10.0.0.255') }));
    expect(layer.counters.get('rx_group_unwanted')).toBe(2);
    layer.input(frame({ ...bc, destination: ipv4('255.255.255.255'), protocol: 254 }));
    layer.input(frame({ ...bc, destination: ipv4('10.0.0.255'), protocol: 254 }));
    layer.input(frame({ ethDst: MacAddress.parse('01:00:5e:00:00:fb'), destination: ipv4('224.0.0.251'), protocol: 254 }));
    expect(delivered.map((d) => d.info.destinationKind)).toEqual(['broadcast', 'broadcast', 'multicast']);
    expect(delivered.every((d) => d.info.linkGroup)).toBe(true);
  });

  it('reports protocol unreachable for unicast datagrams with no handler, never for broadcast', () => {
    const { layer, errors } = setup();
    const f = frame({ protocol: 99 });
    layer.input(f);
    layer.input(frame({ protocol: 99, destination: ipv4('10.0.0.255'), ethDst: MacAddress.BROADCAST }));
    expect(layer.counters.get('rx_unknown_protocol')).toBe(2);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.kind).toBe('protocol-unreachable');
    expect(errors[0]!.datagram).toEqual(f.subarray(14));
  });

  it('reassembles fragments before delivery and says so', () => {
    const { layer, delivered } = setup();
    layer.register(253, keepInto(delivered));
    const data = Uint8Array.from({ length: 24 }, (_, i) => i);
    layer.input(frame({ payload: data.subarray(16), offset: 16, id: 9 }));
    layer.input(frame({ payload: data.subarray(0, 16), more: true, id: 9 }));
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.payload).toEqual(data);
    expect(delivered[0]!.info.reassembled).toBe(true);
  });

  it('sends time-exceeded material when reassembly times out, and frees everything', () => {
    const { layer, clock, errors } = setup();
    const first = frame({ payload: new Uint8Array(16).fill(7), more: true, id: 5 });
    layer.input(first);
    expect(layer.reassembly.bytesHeld).toBeGreaterThan(0);
    clock.advance(30_000);
    expect(layer.reassembly.bytesHeld).toBe(0);
    expect(errors.map((e) => e.kind)).toEqual(['reassembly-timeout']);
    expect(errors[0]!.datagram).toEqual(first.subarray(14, 14 + 28));
  });

  it('refuses a second handler for a protocol', () => {
    const { layer } = setup();
    layer.register(17, () => {});
    expect(() => layer.register(17, () => {})).toThrow(/already/);
    expect(() => layer.register(256, () => {})).toThrow(RangeError);
  });
});

describe('Ipv4Layer send', () => {
  it('builds one frame with Ethernet room, EtherType 0x0800, TTL 64, and hands it to the resolver', () => {
    const { layer, resolver } = setup();
    const payload = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 1]);
    expect(layer.send({ destination: PEER, protocol: 17, payload })).toBe('sent');
    expect(resolver.sent).toHaveLength(1);
    const { nextHop, frame: f } = resolver.sent[0]!;
    expect(nextHop).toBe(PEER);
    expect(f.length).toBe(14 + 20 + 5);
    expect([f[12], f[13]]).toEqual([0x08, 0x00]);
    const p = Ipv4Packet.check(f.subarray(14));
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    expect(Ipv4Repr.parse(p.value)).toMatchObject({ source: US, destination: PEER, protocol: 17, ttl: 64, moreFragments: false });
    expect([...p.value.payload]).toEqual([...payload]);
  });

  it('routes through the gateway and static routes, and refuses what has no route', () => {
    const { layer, resolver } = setup({
      gateway: ipv4('10.0.0.1'),
      routes: [{ destination: Ipv4Cidr.parse('198.51.100.0/24'), gateway: ipv4('10.0.0.9') }],
    });
    layer.send({ destination: ipv4('192.0.2.7'), protocol: 17, payload: new Uint8Array(1) });
    layer.send({ destination: ipv4('198.51.100.3'), protocol: 17, payload: new Uint8Array(1) });
    expect(resolver.sent.map((s) => s.nextHop)).toEqual([ipv4('10.0.0.1'), ipv4('10.0.0.9')]);
    const { layer: noGw } = setup();
    expect(noGw.send({ destination: ipv4('192.0.2.7'), protocol: 17, payload: new Uint8Array(1) })).toBe('no_route');
    expect(noGw.counters.get('tx_no_route')).toBe(1);
  });

  it('never sends to 0.0.0.0, even through a default gateway (RFC 1122 3.2.1.3 (a))', () => {
    // An echo to 255.255.255.255 from 0.0.0.0 (a DHCP client) is delivered; with
    // echoIgnoreBroadcasts off, its reply would otherwise leave through the default route.
    const { layer, resolver } = setup({ gateway: ipv4('10.0.0.1') });
    expect(layer.send({ destination: ipv4('0.0.0.0'), protocol: 1, payload: new Uint8Array(8) })).toBe('no_route');
    const frame = new Uint8Array(14 + 20 + 8);
    expect(layer.sendInPlace(frame, { destination: ipv4('0.0.0.0'), protocol: 1 })).toBe('no_route');
    expect(resolver.sent).toEqual([]);
    expect(layer.counters.get('tx_unspecified_destination')).toBe(2);
  });

  it('fragments like Linux: 1480-byte pieces at offsets 0, 1480, 2960 for a 4008-byte payload', () => {
    const { layer, resolver } = setup();
    const payload = Uint8Array.from({ length: 4008 }, (_, i) => i * 7);
    expect(layer.send({ destination: PEER, protocol: 1, payload })).toBe('sent');
    const frags = resolver.sent.map((s) => new Ipv4Packet(s.frame.subarray(14)));
    expect(resolver.sent.map((s) => s.frame.length)).toEqual([1514, 1514, 1082]); // as in the fixture
    expect(frags.map((f) => f.fragmentOffset)).toEqual([0, 1480, 2960]);
    expect(frags.map((f) => f.moreFragments)).toEqual([true, true, false]);
    expect(new Set(frags.map((f) => f.identification)).size).toBe(1);
    expect(frags.every((f) => f.verifyChecksum())).toBe(true);
    const joined = new Uint8Array(4008);
    for (const f of frags) joined.set(f.payload, f.fragmentOffset);
    expect(joined).toEqual(payload);
    expect(layer.counters.get('tx_fragments')).toBe(3);
  });

  it('uses a new identification per datagram', () => {
    const { layer, resolver } = setup();
    for (let i = 0; i < 3; i++) layer.send({ destination: PEER, protocol: 17, payload: new Uint8Array(4) });
    const ids = resolver.sent.map((s) => new Ipv4Packet(s.frame.subarray(14)).identification);
    expect(ids).toEqual([0x8000, 0x8001, 0x8002]);
  });

  it('refuses DF datagrams over the MTU and anything over 65535 bytes', () => {
    const { layer, resolver } = setup();
    expect(layer.send({ destination: PEER, protocol: 1, payload: new Uint8Array(1481), dontFragment: true })).toBe('fragmentation_needed');
    expect(layer.send({ destination: PEER, protocol: 1, payload: new Uint8Array(1480), dontFragment: true })).toBe('sent');
    expect(layer.send({ destination: PEER, protocol: 1, payload: new Uint8Array(65516) })).toBe('too_long');
    expect(layer.send({ destination: PEER, protocol: 1, payload: new Uint8Array(65515) })).toBe('sent');
    expect(resolver.sent.length).toBe(1 + 45);
  });

  it('passes on queued and dropped outcomes from the resolver', () => {
    const { layer, resolver } = setup();
    resolver.outcome = 'queued';
    expect(layer.send({ destination: PEER, protocol: 17, payload: new Uint8Array(3000) })).toBe('queued');
    resolver.outcome = 'dropped';
    expect(layer.send({ destination: PEER, protocol: 17, payload: new Uint8Array(3) })).toBe('dropped');
    expect(layer.counters.get('tx_queued')).toBe(3);
    expect(layer.counters.get('tx_dropped')).toBe(1);
  });

  it('reports host unreachable locally when ARP fails, once per datagram we originated', () => {
    const { layer, resolver, errors } = setup();
    resolver.outcome = 'queued';
    layer.send({ destination: ipv4('10.0.0.9'), protocol: 1, payload: new Uint8Array(4000) });
    resolver.fail(ipv4('10.0.0.9'));
    expect(layer.counters.get('tx_resolution_failed')).toBe(3);
    expect(errors.map((e) => [e.kind, e.local])).toEqual([['host-unreachable', true]]);
    expect(new Ipv4Packet(errors[0]!.datagram).destination).toBe(ipv4('10.0.0.9'));
  });

  it('delivers datagrams to our own address locally', async () => {
    const { layer, resolver, delivered } = setup();
    layer.register(253, keepInto(delivered));
    expect(layer.send({ destination: US, protocol: 253, payload: new Uint8Array([4, 2]) })).toBe('sent');
    await Promise.resolve();
    expect(resolver.sent).toHaveLength(0);
    expect(delivered.map((d) => [...d.payload])).toEqual([[4, 2]]);
  });

  it('round-trips any payload through fragmentation and reassembly at any MTU (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 68, max: 9000 }), fc.integer({ min: 0, max: 20000 }), fc.integer(), (mtu, size, seed) => {
        const { layer: a, resolver } = setup({}, mtu);
        const { layer: b, delivered } = setup({ address: Ipv4Cidr.parse('10.0.0.1/24') }, mtu);
        b.register(253, keepInto(delivered));
        const rnd = seededRandom(seed);
        const payload = Uint8Array.from({ length: size }, () => Math.floor(rnd() * 256));
        a.send({ destination: PEER, protocol: 253, payload });
        const frames = resolver.sent.map((s) => s.frame);
        expect(frames.every((f) => f.length <= mtu + 14)).toBe(true);
        for (let i = frames.length - 1; i > 0; i--) {
          const j = Math.floor(rnd() * (i + 1));
          [frames[i], frames[j]] = [frames[j]!, frames[i]!];
        }
        for (const f of frames) {
          macFor(PEER).writeTo(f, 0);
          b.input(f);
        }
        expect(delivered).toHaveLength(1);
        // Buffer.equals, not toEqual: a deep element-by-element diff of 20 kB is what made this slow.
        expect(Buffer.from(delivered[0]!.payload).equals(Buffer.from(payload))).toBe(true);
      }),
      { numRuns: 60 },
    );
  });
});

describe('Ipv4Layer input fuzzing', () => {
  it('never throws and keeps memory bounded on random and mutated frames', () => {
    const { layer, clock } = setup({ reassembly: { highWaterBytes: 200_000, lowWaterBytes: 150_000 } });
    layer.register(253, () => {});
    const seeds: Uint8Array[] = allIpv4Frames().map((f) => {
      const copy = f.frame.slice();
      OUR_MAC.writeTo(copy, 0);
      return copy;
    });
    seeds.push(frame({ more: true, payload: new Uint8Array(64) }), frame({ offset: 64, payload: new Uint8Array(10) }));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 1600 }).map((b) => {
            const f = new Uint8Array(14 + b.length);
            OUR_MAC.writeTo(f, 0);
            f[12] = 8;
            f.set(b, 14);
            return f;
          }),
          fc
            .tuple(fc.nat(), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 8 }), fc.boolean())
            .map(([which, edits, fix]) => {
              const f = seeds[which % seeds.length]!.slice();
              for (const [at, value] of edits) f[14 + (at % (f.length - 14))] = value;
              // keep the checksum right half the time so mutations reach the deeper checks
              if (fix && f.length >= 34 && f[14]! >>> 4 === 4 && (f[14]! & 15) >= 5 && 14 + (f[14]! & 15) * 4 <= f.length) {
                new Ipv4Packet(f.subarray(14)).fillChecksum();
              }
              return f;
            }),
        ),
        fc.nat({ max: 3000 }),
        (f, ms) => {
          expect(() => layer.input(f)).not.toThrow();
          clock.advance(ms);
          expect(layer.reassembly.bytesHeld).toBeLessThanOrEqual(200_000);
        },
      ),
      { numRuns: 5000 },
    );
    expect(layer.counters.get('rx_packets')).toBe(5000);
  });
});

describe('the handler contract: one view and one info per layer, the bytes the handler\'s', () => {
  it('hands every datagram the same view and info, re-pointed, with the payload where it lies in the frame', () => {
    const { dispatcher, layer } = setup();
    const seen: { packet: Ipv4Packet; info: Ipv4DeliveryInfo; source: Ipv4Address; offset: number; length: number; first: number }[] = [];
    layer.register(253, (packet, info) => {
      seen.push({ packet, info, source: packet.source, offset: packet.payloadOffset, length: packet.payloadLength, first: packet.buffer[packet.payloadOffset]! });
    });
    const one = frame({ payload: Uint8Array.of(7, 7, 7) });
    const two = frame({ source: ipv4('10.0.0.9'), payload: Uint8Array.of(9, 9, 9, 9, 9) });
    dispatcher.input(one);
    dispatcher.input(two);
    expect(seen).toHaveLength(2);
    expect(seen[1]!.packet).toBe(seen[0]!.packet);
    expect(seen[1]!.info).toBe(seen[0]!.info);
    expect(seen.map((s) => [s.source, s.offset, s.length, s.first])).toEqual([
      [PEER, 34, 3, 7],
      [ipv4('10.0.0.9'), 34, 5, 9],
    ]);
    // So a handler that kept the view, against the rule, now reads the second datagram through it:
    expect(seen[0]!.packet.source).toBe(ipv4('10.0.0.9'));
    expect(seen[0]!.packet.buffer).toBe(two);
  });

  it('leaves the bytes to the handler: what it kept of the first datagram is intact after the second', () => {
    const { dispatcher, layer } = setup();
    const kept: { repr: ReturnType<typeof Ipv4Repr.parse>; payload: Uint8Array; info: Ipv4DeliveryInfo }[] = [];
    layer.register(253, (packet, info) => kept.push({ repr: Ipv4Repr.parse(packet), payload: packet.payload, info: { ...info } }));
    const one = frame({ payload: Uint8Array.of(1, 2, 3), id: 11 });
    dispatcher.input(one);
    dispatcher.input(frame({ source: ipv4('10.0.0.9'), payload: Uint8Array.of(4, 5), id: 12 }));
    expect(kept.map((k) => [k.repr.source, k.repr.identification, [...k.payload], k.info.frame === one])).toEqual([
      [PEER, 11, [1, 2, 3], true],
      [ipv4('10.0.0.9'), 12, [4, 5], false],
    ]);
    // the payload view is a view of the frame, not a copy
    expect(kept[0]!.payload.buffer).toBe(one.buffer);
  });

  it('gives a datagram fed in from inside a handler views of its own, and the outer view keeps its datagram', () => {
    const { dispatcher, layer } = setup();
    const order: string[] = [];
    const inner = frame({ source: ipv4('10.0.0.9'), payload: Uint8Array.of(2) });
    layer.register(253, (packet, info) => {
      const source = packet.source;
      if (packet.buffer[packet.payloadOffset] === 1) {
        dispatcher.input(inner);
        // still the outer datagram, through the same view and info
        order.push(`outer ${source === packet.source && packet.buffer[packet.payloadOffset] === 1 && info.frame !== inner}`);
      } else {
        order.push(`inner ${packet.source === ipv4('10.0.0.9')}`);
      }
    });
    dispatcher.input(frame({ payload: Uint8Array.of(1) }));
    expect(order).toEqual(['inner true', 'outer true']);
  });

  it('re-points the info too: a reassembled datagram after a framed one has no frame and no offload', () => {
    const { dispatcher, layer } = setup();
    const infos: Ipv4DeliveryInfo[] = [];
    layer.register(253, (_packet, info) => infos.push({ ...info }));
    const f = frame();
    dispatcher.input(f);
    dispatcher.input(frame({ id: 5, more: true, payload: new Uint8Array(8).fill(1) }));
    dispatcher.input(frame({ id: 5, offset: 8, payload: Uint8Array.of(2) }));
    expect(infos).toEqual([
      { destinationKind: 'unicast', linkGroup: false, reassembled: false, frame: f, offload: undefined },
      { destinationKind: 'unicast', linkGroup: false, reassembled: true, frame: undefined, offload: undefined },
    ]);
  });
});
