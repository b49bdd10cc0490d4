import { Ipv4Cidr, Ipv4Layer, Ipv4Packet, Ipv4Repr } from '@tapstack/ipv4';
import { EtherTypeDispatcher, MacAddress, MemoryLink, VirtualClock, ipv4, type Ipv4Address } from '@tapstack/link';
import { describe, expect, it } from 'vitest';
import { IcmpLayer, type IcmpErrorReport, type IcmpLayerOptions } from '../src/layer.ts';
import { PeerRateLimiter } from '../src/rate-limit.ts';
import fc from 'fast-check';
import { IcmpPacket, IcmpRepr } from '../src/packet.ts';
import { fixtureFrames } from '../../../test/support/fixtures.ts';
import { RecordingResolver } from '../../../test/support/recording-resolver.ts';

const US = ipv4('10.0.0.2');
const PEER = ipv4('10.0.0.1');
const OUR_MAC = MacAddress.parse('02:00:00:00:0b:02');
const PEER_MAC = MacAddress.parse('02:00:00:00:0a:01');

/** Our stack as 10.0.0.2 at 02:00:00:00:0b:02: the fixtures' kernel host "b". */
function setup(options: Partial<IcmpLayerOptions> = {}, firstId = 0) {
  const [link] = MemoryLink.pair({ macs: [OUR_MAC, PEER_MAC] });
  const dispatcher = new EtherTypeDispatcher(link);
  const resolver = new RecordingResolver(OUR_MAC, undefined, new Map([[PEER, PEER_MAC]]));
  const clock = new VirtualClock();
  const ip = new Ipv4Layer({ dispatcher, resolver, clock, address: Ipv4Cidr.parse('10.0.0.2/24'), random: () => firstId / 0x10000 });
  const icmp = new IcmpLayer({ ipv4: ip, clock, random: () => 0, ...options });
  const errors: IcmpErrorReport[] = [];
  icmp.onError((e) => errors.push(e));
  return { dispatcher, resolver, clock, ip, icmp, errors };
}

/** A frame from the peer carrying `payload` as protocol `protocol`. */
function datagram(protocol: number, payload: Uint8Array, extra: Partial<Ipv4Repr> = {}, ethDst = OUR_MAC): Uint8Array {
  const repr: Ipv4Repr = {
    source: PEER,
    destination: US,
    protocol,
    ttl: 64,
    identification: 0x1234,
    dscp: 0,
    ecn: 0,
    dontFragment: false,
    moreFragments: false,
    fragmentOffset: 0,
    options: new Uint8Array(0),
    payloadLength: payload.length,
    ...extra,
  };
  const f = new Uint8Array(14 + Ipv4Repr.bufferLength(repr));
  ethDst.writeTo(f, 0);
  PEER_MAC.writeTo(f, 6);
  f[12] = 8;
  Ipv4Repr.emit(repr, f, 14);
  f.set(payload, 34);
  return f;
}

function echoRequest(sequence: number, size = 8, extra: Partial<Ipv4Repr> = {}, ethDst = OUR_MAC): Uint8Array {
  return datagram(1, IcmpRepr.build({ kind: 'echo-request', identifier: 77, sequence, data: new Uint8Array(size).fill(sequence) }), extra, ethDst);
}

function icmpOf(frame: Uint8Array): { ip: Ipv4Packet; message: IcmpPacket; repr: IcmpRepr } {
  const ip = new Ipv4Packet(frame.subarray(14));
  const message = new IcmpPacket(ip.payload);
  const r = IcmpRepr.parse(message);
  if (!r.ok) throw new Error(r.reason);
  return { ip, message, repr: r.value };
}

describe('echo responder against the kernel', () => {
  it('answers the fixture echo requests (0, 1, 1472 bytes) with the very frames Linux sent', () => {
    const frames = fixtureFrames('linux-ping-odd-sizes.pcap');
    for (const [req, rep] of [
      [2, 3],
      [4, 5],
      [6, 7],
    ] as const) {
      const kernelReply = frames[rep]!;
      const id = (kernelReply[18]! << 8) | kernelReply[19]!;
      const { dispatcher, resolver, icmp } = setup({}, id);
      dispatcher.input(frames[req]!);
      expect(resolver.sent, `reply to frame ${req + 1}`).toHaveLength(1);
      expect(resolver.sent[0]!.frame, `reply to frame ${req + 1}`).toEqual(kernelReply);
      expect(icmp.counters.get('tx_echo_replies')).toBe(1);
    }
  });

  it('reassembles the 4000-byte fixture request and answers with the kernel reply fragments, byte for byte', () => {
    const frames = fixtureFrames('linux-ping-4000-fragmented.pcap');
    const id = (frames[5]![18]! << 8) | frames[5]![19]!;
    const { dispatcher, resolver, ip } = setup({}, id);
    for (const f of frames.slice(2, 5)) dispatcher.input(f);
    expect(ip.counters.get('reasm_ok')).toBe(1);
    expect(resolver.sent.map((s) => s.frame)).toEqual(frames.slice(5, 8));
  });

  it('ignores echo to broadcast by default, and answers from our unicast address when told to', () => {
    const { dispatcher, resolver, icmp } = setup();
    dispatcher.input(echoRequest(1, 8, { destination: ipv4('10.0.0.255') }, MacAddress.BROADCAST));
    dispatcher.input(echoRequest(2, 8, { destination: ipv4('255.255.255.255') }, MacAddress.BROADCAST));
    expect(resolver.sent).toHaveLength(0);
    expect(icmp.counters.get('rx_echo_group_ignored')).toBe(2);

    const open = setup({ echoIgnoreBroadcasts: false });
    open.dispatcher.input(echoRequest(1, 8, { destination: ipv4('10.0.0.255') }, MacAddress.BROADCAST));
    expect(open.resolver.sent).toHaveLength(1);
    expect(icmpOf(open.resolver.sent[0]!.frame).ip.source).toBe(US);
  });

  it('drops echo requests with a bad checksum, counted', () => {
    const { dispatcher, resolver, icmp } = setup();
    const f = echoRequest(1);
    f[42] = f[42]! ^ 1; // a data bit
    dispatcher.input(f);
    expect(resolver.sent).toHaveLength(0);
    expect(icmp.counters.get('rx_bad_checksum')).toBe(1);
  });

  it('does not rate-limit echo replies: 2000 requests in the same instant get 2000 replies', () => {
    const { dispatcher, resolver } = setup();
    for (let i = 0; i < 2000; i++) dispatcher.input(echoRequest(i & 0xffff, 56));
    expect(resolver.sent).toHaveLength(2000);
    const last = icmpOf(resolver.sent[1999]!.frame);
    expect(last.message.verifyChecksum()).toBe(true);
    expect(last.repr).toMatchObject({ kind: 'echo-reply', identifier: 77, sequence: 1999 });
  });
});

describe('errors we send', () => {
  it('answers an unknown protocol with destination unreachable code 2, quoting header + 8 bytes, TOS 0xc0', () => {
    const { dispatcher, resolver, icmp } = setup();
    const f = datagram(99, Uint8Array.from({ length: 40 }, (_, i) => i));
    dispatcher.input(f);
    expect(resolver.sent).toHaveLength(1);
    const { ip, message, repr } = icmpOf(resolver.sent[0]!.frame);
    expect(ip.destination).toBe(PEER);
    expect(ip.source).toBe(US);
    expect(ip.dscp).toBe(0x30);
    expect(message.verifyChecksum()).toBe(true);
    expect(repr).toEqual({ kind: 'destination-unreachable', code: 2, nextHopMtu: 0, quoted: f.subarray(14, 14 + 28) });
    expect(icmp.counters.get('tx_errors')).toBe(1);
  });

  it('matches the kernel port unreachable for the UDP fixture (quote cut to header + 8)', () => {
    const frames = fixtureFrames('linux-udp-port-unreachable.pcap');
    const { icmp, resolver } = setup();
    expect(icmp.sendError({ kind: 'destination-unreachable', code: 3 }, frames[4]!.subarray(14))).toBe('sent');
    const ours = icmpOf(resolver.sent[0]!.frame);
    const kernel = icmpOf(frames[5]!);
    expect(ours.ip.dscp).toBe(kernel.ip.dscp);
    expect([ours.ip.source, ours.ip.destination]).toEqual([kernel.ip.source, kernel.ip.destination]);
    if (kernel.repr.kind !== 'destination-unreachable' || ours.repr.kind !== 'destination-unreachable') throw new Error('kind');
    expect(ours.repr.code).toBe(kernel.repr.code);
    expect(ours.repr.quoted).toEqual(kernel.repr.quoted.subarray(0, 28));
  });

  it('sends time exceeded code 1 when reassembly times out with the first fragment in', () => {
    const { dispatcher, resolver, clock, ip } = setup();
    const first = datagram(17, new Uint8Array(800).fill(3), { moreFragments: true, identification: 42 });
    dispatcher.input(first);
    dispatcher.input(datagram(17, new Uint8Array(800), { fragmentOffset: 1600, identification: 43 })); // no first fragment
    clock.advance(30_000);
    expect(ip.reassembly.bytesHeld).toBe(0);
    expect(resolver.sent).toHaveLength(1);
    const { repr } = icmpOf(resolver.sent[0]!.frame);
    expect(repr).toEqual({ kind: 'time-exceeded', code: 1, quoted: first.subarray(14, 14 + 28) });
  });

  it('hands a received error to the listeners of the quoted protocol only, and to those of every protocol', () => {
    const { icmp, dispatcher, errors } = setup();
    const udp: IcmpErrorReport[] = [];
    const tcp: IcmpErrorReport[] = [];
    icmp.onError(17, (e) => udp.push(e));
    icmp.onError(6, (e) => tcp.push(e));
    // our UDP datagram to 10.0.0.1, quoted in its port unreachable
    const quoted = datagram(17, hex8(0)).subarray(14);
    quoted.set([10, 0, 0, 2], 12);
    quoted.set([10, 0, 0, 1], 16);
    dispatcher.input(datagram(1, IcmpRepr.build({ kind: 'destination-unreachable', code: 3, nextHopMtu: 0, quoted })));
    expect(udp.map((e) => e.original.protocol)).toEqual([17]);
    expect(tcp).toEqual([]);
    expect(errors).toHaveLength(1);
  });

  it('never sends an error about an ICMP error, a group destination, a later fragment or a bad source', () => {
    const { icmp, resolver } = setup();
    const d = (protocol: number, payload: Uint8Array, extra: Partial<Ipv4Repr> = {}) => datagram(protocol, payload, extra).subarray(14);
    const unreachable = IcmpRepr.build({ kind: 'destination-unreachable', code: 3, nextHopMtu: 0, quoted: new Uint8Array(28) });
    const err = { kind: 'destination-unreachable' as const, code: 2 };
    expect(icmp.sendError(err, d(1, unreachable))).toBe('about_icmp_error');
    expect(icmp.sendError(err, d(1, hex8(42)))).toBe('about_icmp_error'); // unknown type: assumed an error
    expect(icmp.sendError(err, d(99, hex8(0), { destination: ipv4('10.0.0.255') }))).toBe('about_group');
    expect(icmp.sendError(err, d(99, hex8(0), { destination: ipv4('224.0.0.1') }))).toBe('about_group');
    expect(icmp.sendError(err, d(99, hex8(0)), { linkGroup: true })).toBe('about_group');
    expect(icmp.sendError(err, d(99, hex8(0), { fragmentOffset: 8 }))).toBe('about_fragment');
    for (const source of ['0.0.0.0', '127.0.0.1', '224.1.2.3', '255.255.255.255', '10.0.0.255', '240.0.0.1']) {
      expect(icmp.sendError(err, d(99, hex8(0), { source: ipv4(source) })), source).toBe('about_bad_source');
    }
    expect(icmp.sendError(err, new Uint8Array(12))).toBe('bad_datagram');
    expect(resolver.sent).toHaveLength(0);
    // but an error about an echo request is fine
    expect(icmp.sendError(err, d(1, hex8(8)))).toBe('sent');
  });

  it('rate-limits errors host-wide like Linux: a burst of 50, then 1000 per second (per-peer limit off)', () => {
    const { dispatcher, resolver, icmp, clock } = setup({ icmpRatelimit: 0 });
    for (let i = 0; i < 60; i++) dispatcher.input(datagram(99, new Uint8Array(8)));
    expect(resolver.sent).toHaveLength(50);
    expect(icmp.counters.get('tx_error_rate_limited_global')).toBe(10);
    clock.advance(5);
    for (let i = 0; i < 10; i++) dispatcher.input(datagram(99, new Uint8Array(8)));
    expect(resolver.sent).toHaveLength(55);
    clock.advance(1000);
    for (let i = 0; i < 60; i++) dispatcher.input(datagram(99, new Uint8Array(8)));
    expect(resolver.sent).toHaveLength(105);
    expect(icmp.counters.get('tx_error_rate_limited_host')).toBe(0);
  });
});

describe('echo replies with IP options (as Linux echoes them)', () => {
  const rr = () => {
    const o = new Uint8Array(40);
    o.set([7, 39, 8, 10, 0, 0, 1]); // ping -R: the sender's address in slot 1
    return o;
  };
  /** A frame from the peer with `options` in its IP header and `payload` after them. */
  const withOptions = (payload: Uint8Array, options: Uint8Array, extra: Partial<Ipv4Repr> = {}): Uint8Array => {
    const repr: Ipv4Repr = {
      source: PEER, destination: US, protocol: 1, ttl: 64, identification: 0x2222, dscp: 0, ecn: 0,
      dontFragment: false, moreFragments: false, fragmentOffset: 0, options, payloadLength: payload.length, ...extra,
    };
    const f = new Uint8Array(14 + Ipv4Repr.bufferLength(repr));
    OUR_MAC.writeTo(f, 0);
    PEER_MAC.writeTo(f, 6);
    f[12] = 8;
    Ipv4Repr.emit(repr, f, 14);
    f.set(payload, 34 + options.length);
    return f;
  };
  const echo = (size: number) => IcmpRepr.build({ kind: 'echo-request', identifier: 77, sequence: 1, data: new Uint8Array(size).fill(5) });

  it('answers a record-route request with RR carrying our address twice, in a 60-byte header', () => {
    const { dispatcher, resolver, icmp } = setup();
    dispatcher.input(withOptions(echo(8), rr()));
    expect(resolver.sent).toHaveLength(1);
    const { ip, repr } = icmpOf(resolver.sent[0]!.frame);
    expect(repr.kind).toBe('echo-reply');
    expect(ip.headerLength).toBe(60);
    expect(ip.verifyChecksum()).toBe(true);
    expect(Buffer.from(ip.options).toString('hex')).toBe(`0727100a0000010a0000020a000002${'00'.repeat(25)}`);
    expect(icmp.counters.get('tx_echo_replies')).toBe(1);
  });

  it('stamps the time from the injected clock for a timestamp request', () => {
    const { dispatcher, resolver } = setup({ timestamp: () => 3_600_000 });
    dispatcher.input(withOptions(echo(8), Uint8Array.from([68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0])));
    const { ip } = icmpOf(resolver.sent[0]!.frame);
    expect(Buffer.from(ip.options).toString('hex')).toBe('440c0d000036ee800036ee80');
  });

  it('drops a source-routed request and counts it (Linux: accept_source_route 0 on a host)', () => {
    const { dispatcher, resolver, icmp } = setup();
    dispatcher.input(withOptions(echo(8), Uint8Array.from([131, 7, 4, 10, 0, 0, 9, 0])));
    expect(resolver.sent).toHaveLength(0);
    expect(icmp.counters.get('rx_echo_source_route')).toBe(1);
  });

  it('fragments a big reply with options: RR in the first fragment, no-ops in its place after', () => {
    const { dispatcher, resolver } = setup();
    const message = echo(3000);
    for (let offset = 0; offset < message.length; offset += 1440) {
      const part = message.subarray(offset, offset + 1440);
      dispatcher.input(withOptions(part, offset === 0 ? rr() : new Uint8Array(40).fill(1), { fragmentOffset: offset, moreFragments: offset + 1440 < message.length }));
    }
    const sent = resolver.sent.map((x) => new Ipv4Packet(x.frame.subarray(14)));
    expect(sent.map((p) => p.fragmentOffset)).toEqual([0, 1440, 2880]);
    expect(sent.every((p) => p.headerLength === 60 && p.verifyChecksum())).toBe(true);
    expect(sent[0]!.options[0]).toBe(7);
    // RR's 39 bytes become no-ops; the END that pads them to 40 stays (Linux's ip_options_fragment)
    for (const p of sent.slice(1)) expect(Buffer.from(p.options).toString('hex')).toBe(`${'01'.repeat(39)}00`);
  });
});

describe('per-peer error rate limit (Linux icmp_ratelimit, icmp_ratemask)', () => {
  const from = (source: string, protocol = 99) => datagram(protocol, new Uint8Array(8), { source: ipv4(source) });
  const errorsTo = (sent: { frame: Uint8Array }[], peer: string) => sent.filter((s) => new Ipv4Packet(s.frame.subarray(14)).destination === ipv4(peer)).length;

  it('gives one peer a burst of 6, then one error per 1000 ms, and refills to at most 6', () => {
    const { dispatcher, resolver, icmp, clock } = setup();
    for (let i = 0; i < 20; i++) dispatcher.input(from('10.0.0.1'));
    expect(resolver.sent).toHaveLength(6);
    expect(icmp.counters.get('tx_error_rate_limited_host')).toBe(14);
    expect(icmp.counters.get('tx_error_rate_limited_global')).toBe(0);
    clock.advance(999);
    dispatcher.input(from('10.0.0.1'));
    expect(resolver.sent).toHaveLength(6);
    clock.advance(1); // 1000 ms since the burst: one interval earned (the refused attempt did not cost one)
    dispatcher.input(from('10.0.0.1'));
    dispatcher.input(from('10.0.0.1'));
    expect(resolver.sent).toHaveLength(7);
    clock.advance(60_000); // a minute earns 60 intervals, but the bucket holds 6
    for (let i = 0; i < 20; i++) dispatcher.input(from('10.0.0.1'));
    expect(resolver.sent).toHaveLength(13);
    expect(icmp.counters.get('tx_errors')).toBe(13);
  });

  it('keeps a bucket per peer: another source gets its own burst', () => {
    const { dispatcher, resolver } = setup();
    for (let i = 0; i < 10; i++) dispatcher.input(from('10.0.0.1'));
    for (let i = 0; i < 10; i++) dispatcher.input(from('10.0.0.7'));
    expect(errorsTo(resolver.sent, '10.0.0.1')).toBe(6);
    expect(errorsTo(resolver.sent, '10.0.0.7')).toBe(6);
  });

  it('honours icmpRatelimit: 250 ms per error after the burst', () => {
    const { dispatcher, resolver, clock } = setup({ icmpRatelimit: 250 });
    for (let i = 0; i < 10; i++) dispatcher.input(from('10.0.0.1'));
    expect(resolver.sent).toHaveLength(6);
    clock.advance(500);
    for (let i = 0; i < 10; i++) dispatcher.input(from('10.0.0.1'));
    expect(resolver.sent).toHaveLength(8);
  });

  it('checks the host-wide bucket first and takes its token only when the peer allowed the error', () => {
    const { dispatcher, resolver, icmp } = setup({ errorRateLimit: { burst: 8 } });
    for (let i = 0; i < 20; i++) dispatcher.input(from('10.0.0.1')); // 6 out, 14 refused by the peer bucket
    for (let i = 0; i < 20; i++) dispatcher.input(from('10.0.0.7')); // the 2 host-wide tokens left
    expect(errorsTo(resolver.sent, '10.0.0.1')).toBe(6);
    expect(errorsTo(resolver.sent, '10.0.0.7')).toBe(2);
    expect(icmp.counters.get('tx_error_rate_limited_host')).toBe(14);
    expect(icmp.counters.get('tx_error_rate_limited_global')).toBe(18);
  });

  it('limits only the types in icmpRatemask, and never "fragmentation needed"', () => {
    const unmasked = setup({ icmpRatemask: 0 });
    for (let i = 0; i < 70; i++) unmasked.dispatcher.input(from('10.0.0.1'));
    expect(unmasked.resolver.sent).toHaveLength(70); // neither limit applies
    const timeExceededOnly = setup({ icmpRatemask: 1 << 11 });
    for (let i = 0; i < 20; i++) timeExceededOnly.dispatcher.input(from('10.0.0.1'));
    expect(timeExceededOnly.resolver.sent).toHaveLength(20); // protocol unreachable is type 3: not in the mask
    const { icmp, resolver } = setup();
    const d = from('10.0.0.1').subarray(14);
    for (let i = 0; i < 20; i++) expect(icmp.sendError({ kind: 'destination-unreachable', code: 4, nextHopMtu: 1400 }, d)).toBe('sent');
    for (let i = 0; i < 20; i++) icmp.sendError({ kind: 'destination-unreachable', code: 3 }, d);
    expect(resolver.sent).toHaveLength(26);
    expect(icmp.sendError({ kind: 'time-exceeded', code: 1 }, d)).toBe('rate_limited_host');
  });

  it('does not limit errors to ourselves per peer (Linux exempts loopback)', () => {
    const { icmp } = setup();
    const ours = datagram(99, new Uint8Array(8), { source: US }).subarray(14);
    for (let i = 0; i < 20; i++) expect(icmp.sendError({ kind: 'destination-unreachable', code: 2 }, ours)).toBe('sent');
    expect(icmp.counters.get('tx_error_rate_limited_host')).toBe(0);
  });

  it('remembers a bounded number of peers: the stalest is forgotten and starts again with a full burst', () => {
    const { dispatcher, resolver, icmp } = setup({ icmpRatelimitPeers: 2 });
    for (let i = 0; i < 6; i++) dispatcher.input(from('10.0.0.1')); // burst of 10.0.0.1 spent
    dispatcher.input(from('10.0.0.1'));
    expect(resolver.sent).toHaveLength(6);
    dispatcher.input(from('10.0.0.3'));
    dispatcher.input(from('10.0.0.4')); // table full: 10.0.0.1, the stalest, is forgotten
    expect(icmp.counters.get('tx_error_rate_limit_peers_evicted')).toBe(1);
    dispatcher.input(from('10.0.0.1')); // ...so it is a new peer again (evicting 10.0.0.3)
    expect(errorsTo(resolver.sent, '10.0.0.1')).toBe(7);
    dispatcher.input(from('10.0.0.4')); // 10.0.0.4 was used more recently than 10.0.0.3: still known
    expect(icmp.counters.get('tx_error_rate_limit_peers_evicted')).toBe(2);
  });

  it('holds at most maxPeers buckets however many sources an attacker makes up', () => {
    const clock = new VirtualClock();
    const limiter = new PeerRateLimiter(clock, { icmpRatelimit: 1000, maxPeers: 64 });
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 500 }), (peers) => {
        for (const p of peers) {
          limiter.allow(p as Ipv4Address);
          clock.advance(1);
        }
        return limiter.size <= 64;
      }),
    );
    for (let i = 0; i < 10_000; i++) limiter.allow((0x0a000000 + i) as Ipv4Address);
    expect(limiter.size).toBe(64);
    expect(limiter.evicted).toBeGreaterThanOrEqual(10_000 - 64);
  });
});

describe('errors we receive', () => {
  it('hands destination unreachable and time exceeded to listeners with the quoted datagram', () => {
    const { dispatcher, errors, icmp } = setup();
    const original = datagram(17, hex8(0), { source: US, destination: PEER }).subarray(14, 14 + 28);
    dispatcher.input(datagram(1, IcmpRepr.build({ kind: 'destination-unreachable', code: 3, nextHopMtu: 0, quoted: original })));
    dispatcher.input(datagram(1, IcmpRepr.build({ kind: 'time-exceeded', code: 0, quoted: original })));
    dispatcher.input(datagram(1, IcmpRepr.build({ kind: 'time-exceeded', code: 0, quoted: new Uint8Array(10) })));
    expect(errors.map((e) => [e.kind, e.code, e.from, e.original.protocol, e.original.destination, e.local])).toEqual([
      ['destination-unreachable', 3, PEER, 17, PEER, false],
      ['time-exceeded', 0, PEER, 17, PEER, false],
    ]);
    expect(icmp.counters.get('rx_error_bad_quote')).toBe(1);
  });
});

function hex8(type: number): Uint8Array {
  const b = new Uint8Array(8);
  b[0] = type;
  return b;
}

