import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ETHERNET_HEADER_LENGTH,
  EtherType,
  EtherTypeDispatcher,
  EthernetFrame,
  EthernetRepr,
  buildEthernetFrame,
  etherTypeName,
  formatEthernet,
} from '../src/index.ts';
import { MacAddress } from '../src/mac.ts';
import { MemoryLink } from '../src/memory.ts';
import { readFileSync } from 'node:fs';
import { FIXTURE_DIR, fixtureNames, hex, readFixture } from '../../../test/support/fixtures.ts';

// The first frame of linux-arp-and-ping.pcap: 10.0.0.1 asks who has 10.0.0.2 (broadcast).
const ARP_REQUEST = hex(`
  ff ff ff ff ff ff  02 00 00 00 0a 01  08 06
  00 01 08 00 06 04 00 01  02 00 00 00 0a 01  0a 00 00 01  00 00 00 00 00 00  0a 00 00 02`);

describe('EthernetFrame (view)', () => {
  it('reads the fields of a literal ARP request', () => {
    const r = EthernetFrame.check(ARP_REQUEST);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const f = r.value;
    expect(f.destination.toString()).toBe('ff:ff:ff:ff:ff:ff');
    expect(f.destination.isBroadcast).toBe(true);
    expect(f.source.toString()).toBe('02:00:00:00:0a:01');
    expect(f.etherType).toBe(0x0806);
    expect(f.etherType).toBe(EtherType.ARP);
    expect(f.payload.length).toBe(28);
    expect(Array.from(f.payload.subarray(0, 4))).toEqual([0x00, 0x01, 0x08, 0x00]);
  });

  it('writes fields in place through the setters', () => {
    const bytes = ARP_REQUEST.slice();
    const f = new EthernetFrame(bytes);
    f.destination = MacAddress.parse('02:00:00:00:0b:02');
    f.source = MacAddress.parse('0a:0b:0c:0d:0e:0f');
    f.etherType = 0x86dd;
    expect(Array.from(bytes.subarray(0, 14))).toEqual([2, 0, 0, 0, 0x0b, 2, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x86, 0xdd]);
    expect(Array.from(bytes.subarray(14))).toEqual(Array.from(ARP_REQUEST.subarray(14)));
  });

  it('works on a view that does not start at byte 0 of its buffer (TAP batches are such views)', () => {
    const big = new Uint8Array(100);
    big.set(ARP_REQUEST, 37);
    const f = new EthernetFrame(big.subarray(37, 37 + ARP_REQUEST.length));
    expect(f.etherType).toBe(0x0806);
    expect(f.source.toString()).toBe('02:00:00:00:0a:01');
  });

  it('rejects frames shorter than the 14-byte header as truncated', () => {
    for (const n of [0, 1, 13]) {
      const r = EthernetFrame.check(ARP_REQUEST.subarray(0, n));
      expect(r).toEqual({ ok: false, reason: 'truncated' });
    }
    expect(EthernetFrame.check(ARP_REQUEST.subarray(0, 14)).ok).toBe(true);
  });
});

describe('EthernetRepr', () => {
  it('parses and emits the literal frame byte for byte', () => {
    const repr = EthernetRepr.parse(new EthernetFrame(ARP_REQUEST));
    expect(repr.destination.equals(MacAddress.BROADCAST)).toBe(true);
    expect(repr.source.toString()).toBe('02:00:00:00:0a:01');
    expect(repr.etherType).toBe(0x0806);
    expect(EthernetRepr.bufferLength(repr, 28)).toBe(42);
    const rebuilt = buildEthernetFrame(repr, ARP_REQUEST.subarray(14));
    expect(rebuilt).toEqual(ARP_REQUEST);
  });

  it('emits only the 14 header bytes', () => {
    const buffer = new Uint8Array(20).fill(0xaa);
    EthernetRepr.emit({ destination: MacAddress.parse('01:02:03:04:05:06'), source: MacAddress.parse('0a:0b:0c:0d:0e:0f'), etherType: 0x0800 }, buffer);
    expect(Array.from(buffer)).toEqual([1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14, 15, 8, 0, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa]);
  });
});

describe('formatEthernet', () => {
  it('prints one tcpdump -e like line', () => {
    expect(formatEthernet(ARP_REQUEST)).toBe('02:00:00:00:0a:01 > ff:ff:ff:ff:ff:ff, ARP, length 42');
    expect(formatEthernet(ARP_REQUEST.subarray(0, 5))).toBe('[truncated ethernet, length 5]');
  });
  it('names the EtherTypes it knows and prints the rest in hex', () => {
    expect(etherTypeName(0x0800)).toBe('IPv4');
    expect(etherTypeName(0x86dd)).toBe('IPv6');
    expect(etherTypeName(0x88b5)).toBe('0x88b5');
    expect(etherTypeName(0x0042)).toBe('0x0042');
  });
});

// Fields of every frame as tshark 4.0 reports them (tshark -T fields -e frame.len -e eth.src
// -e eth.dst -e eth.type), an independent reading of the same files.
const A = '02:00:00:00:0a:01';
const B = '02:00:00:00:0b:02';
const BC = 'ff:ff:ff:ff:ff:ff';
const TSHARK: Record<string, [number, string, string, number][]> = {
  'linux-arp-and-ping.pcap': [
    [42, A, BC, 0x0806], [42, B, A, 0x0806], [98, A, B, 0x0800], [98, B, A, 0x0800], [98, A, B, 0x0800], [98, B, A, 0x0800],
  ],
  'linux-arp-probe-dad.pcap': [[42, A, BC, 0x0806], [42, B, A, 0x0806]],
  'linux-gratuitous-arp.pcap': [[42, A, BC, 0x0806], [42, A, BC, 0x0806]],
  'linux-ping-4000-fragmented.pcap': [
    [42, A, BC, 0x0806], [42, B, A, 0x0806], [1514, A, B, 0x0800], [1514, A, B, 0x0800], [1082, A, B, 0x0800],
    [1514, B, A, 0x0800], [1514, B, A, 0x0800], [1082, B, A, 0x0800],
  ],
  'linux-ping-odd-sizes.pcap': [
    [42, A, BC, 0x0806], [42, B, A, 0x0806], [42, A, B, 0x0800], [42, B, A, 0x0800], [43, A, B, 0x0800], [43, B, A, 0x0800],
    [1514, A, B, 0x0800], [1514, B, A, 0x0800],
  ],
  'linux-ping-unresolved-host.pcap': [[42, A, BC, 0x0806], [42, A, BC, 0x0806], [42, A, BC, 0x0806]],
  'linux-udp-port-unreachable.pcap': [
    [42, B, A, 0x0806], [42, A, B, 0x0806], [42, A, BC, 0x0806], [42, B, A, 0x0806], [45, A, B, 0x0800], [73, B, A, 0x0800],
  ],
};
// The TCP captures are long (up to 282 frames): their tshark reading is kept beside them in a
// tab-separated file, one frame a line, made with the same tshark command.
for (const line of readFileSync(`${FIXTURE_DIR}linux-tcp-ethernet.tsv`, 'utf8').split('\n')) {
  if (line === '' || line.startsWith('#')) continue;
  const [file, length, source, destination, etherType] = line.split('\t') as [string, string, string, string, string];
  (TSHARK[file] ??= []).push([Number(length), source, destination, Number(etherType)]);
}

describe('Linux fixtures', () => {
  it('has every fixture file covered by the tshark table', () => {
    expect(fixtureNames()).toEqual(Object.keys(TSHARK).sort());
  });

  for (const name of Object.keys(TSHARK)) {
    it(`${name}: parses every frame as tshark does and re-emits it byte for byte`, () => {
      const records = readFixture(name);
      const expected = TSHARK[name]!;
      expect(records.length).toBe(expected.length);
      records.forEach(({ frame }, i) => {
        const [length, source, destination, etherType] = expected[i]!;
        const r = EthernetFrame.check(frame);
        expect(r.ok).toBe(true);
        if (!r.ok) return;
        const repr = EthernetRepr.parse(r.value);
        expect(frame.length).toBe(length);
        expect(repr.source.toString()).toBe(source);
        expect(repr.destination.toString()).toBe(destination);
        expect(repr.etherType).toBe(etherType);
        const rebuilt = buildEthernetFrame(repr, r.value.payload);
        expect(rebuilt).toEqual(frame);
        // emit into a buffer that holds the payload already: same bytes
        const inPlace = new Uint8Array(frame.length);
        inPlace.set(frame.subarray(ETHERNET_HEADER_LENGTH), ETHERNET_HEADER_LENGTH);
        EthernetRepr.emit(repr, inPlace);
        expect(inPlace).toEqual(frame);
      });
    });
  }
});

const macArb = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => MacAddress.fromBytes(b));

describe('properties', () => {
  it('emit then parse gives the same Repr (and the payload is untouched)', () => {
    fc.assert(
      fc.property(macArb, macArb, fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 1500 }), (destination, source, etherType, payload) => {
        const repr: EthernetRepr = { destination, source, etherType };
        const frame = buildEthernetFrame(repr, payload);
        expect(frame.length).toBe(EthernetRepr.bufferLength(repr, payload.length));
        const r = EthernetFrame.check(frame);
        if (!r.ok) throw new Error('a built frame failed check');
        const back = EthernetRepr.parse(r.value);
        expect(back.destination.equals(destination)).toBe(true);
        expect(back.source.equals(source)).toBe(true);
        expect(back.etherType).toBe(etherType);
        expect(r.value.payload).toEqual(payload);
      }),
      { numRuns: 500 },
    );
  });

  it('parse then emit gives the same bytes for any frame of at least 14 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 14, maxLength: 200 }), (bytes) => {
        const r = EthernetFrame.check(bytes);
        if (!r.ok) throw new Error('14+ bytes failed check');
        expect(buildEthernetFrame(EthernetRepr.parse(r.value), r.value.payload)).toEqual(bytes);
      }),
    );
  });

  it('random bytes never throw through EthernetFrame.check, formatEthernet or EtherTypeDispatcher.input', () => {
    const [link] = MemoryLink.pair();
    const dispatcher = new EtherTypeDispatcher(link);
    let delivered = 0;
    dispatcher.register(0x0800, () => delivered++);
    dispatcher.register(0x0806, () => {
      throw new Error('a buggy handler');
    });
    let inputs = 0;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        inputs++;
        const r = EthernetFrame.check(bytes);
        expect(r.ok).toBe(bytes.length >= 14);
        formatEthernet(bytes);
        dispatcher.input(bytes);
      }),
      { numRuns: 2000 },
    );
    // every input is accounted for under exactly one outcome
    const c = dispatcher.counters;
    const outcomes =
      c.get('rx_delivered') + c.get('rx_runt') + c.get('rx_not_for_us') + c.get('rx_multicast_not_joined') + c.get('rx_unknown_ethertype');
    expect(outcomes).toBe(inputs);
    expect(c.get('rx_handler_error')).toBeLessThanOrEqual(c.get('rx_delivered'));
    expect(delivered).toBeLessThanOrEqual(c.get('rx_delivered'));
    link.close();
  });
});
