/**
 * readCapture and ipv4Datagram: pcapng built block by block from the format's layout, classic
 * pcap in both byte orders, and the link types of a Linux capture (SLL from `tcpdump -i any`,
 * SLL2, raw IP, 802.1Q-tagged Ethernet), all around one frame of a kernel fixture.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipv4Datagram, LinkType, readCapture } from '../src/capture-file.ts';
import { PcapFormatError } from '../src/pcap.ts';
import { concat, FIXTURE_DIR, hex, readFixture } from '../../../test/support/fixtures.ts';
import { readFileSync } from 'node:fs';

const records = readFixture('linux-tcp-echo-session.pcap');
const frame = records[0]!.frame; // the SYN, Ethernet
const datagram = frame.subarray(14);

/** One pcapng block, little-endian: type, length, body padded to 4, length again. */
function block(type: number, body: Uint8Array): Uint8Array {
  const padded = body.length + ((4 - (body.length % 4)) % 4);
  const out = new Uint8Array(12 + padded);
  const v = new DataView(out.buffer);
  v.setUint32(0, type, true);
  v.setUint32(4, out.length, true);
  out.set(body, 8);
  v.setUint32(out.length - 4, out.length, true);
  return out;
}

const SHB = block(0x0a0d0d0a, hex('4d3c2b1a 0100 0000 ffffffff ffffffff'));
/** An interface block: link type, snap length 0, and an if_tsresol option when given. */
function idb(linkType: number, tsresol?: number): Uint8Array {
  const options = tsresol === undefined ? new Uint8Array(0) : concat(hex('0900 0100'), new Uint8Array([tsresol, 0, 0, 0]), hex('0000 0000'));
  const body = new Uint8Array(8 + options.length);
  new DataView(body.buffer).setUint16(0, linkType, true);
  body.set(options, 8);
  return block(1, body);
}
/** An enhanced packet block on interface `iface` with a 64-bit timestamp in the interface's units. */
function epb(iface: number, units: bigint, data: Uint8Array): Uint8Array {
  const body = new Uint8Array(20 + data.length);
  const v = new DataView(body.buffer);
  v.setUint32(0, iface, true);
  v.setUint32(4, Number(units >> 32n), true);
  v.setUint32(8, Number(units & 0xffffffffn), true);
  v.setUint32(12, data.length, true);
  v.setUint32(16, data.length, true);
  body.set(data, 20);
  return block(6, body);
}

describe('readCapture', () => {
  it('reads the classic pcap fixtures as readPcap does, link type Ethernet', () => {
    const bytes = readFileSync(`${FIXTURE_DIR}linux-tcp-echo-session.pcap`);
    const got = readCapture(bytes);
    expect(got.map((r) => [r.timestampUs, [...r.frame]])).toEqual(records.map((r) => [r.timestampUs, [...r.frame]]));
    expect(new Set(got.map((r) => r.linkType))).toEqual(new Set([LinkType.ETHERNET]));
  });

  it('reads a big-endian pcap with nanosecond timestamps', () => {
    const header = hex('a1b23c4d 0002 0004 00000000 00000000 00040000 00000065'); // link type 101, raw IP
    const record = concat(hex('00000002 3b9ac9ff'), hex(`${datagram.length.toString(16).padStart(8, '0')}`.repeat(2)), datagram);
    const [r] = readCapture(concat(header, record));
    expect(r!.timestampUs).toBe(2_999_999); // 2 s + 999 999 999 ns, cut to µs
    expect(r!.linkType).toBe(LinkType.RAW);
    expect(ipv4Datagram(r!)).toEqual(datagram);
  });

  it('reads pcapng: sections, interfaces with their link types and timestamp resolutions, enhanced packets', () => {
    const file = concat(SHB, idb(LinkType.ETHERNET), idb(LinkType.RAW, 9), block(4, hex('0000 0000')), epb(0, 1_700_000_000_123_456n, frame), epb(1, 1_700_000_000_123_456_789n, datagram));
    const got = readCapture(file);
    expect(got.map((r) => [r.linkType, r.timestampUs])).toEqual([
      [LinkType.ETHERNET, 1_700_000_000_123_456],
      [LinkType.RAW, 1_700_000_000_123_456],
    ]);
    expect(ipv4Datagram(got[0]!)).toEqual(datagram);
    expect(ipv4Datagram(got[1]!)).toEqual(datagram);
  });

  it('partial: a file cut in the middle of a record (still being written) gives the records before it', () => {
    const bytes = readFileSync(`${FIXTURE_DIR}linux-tcp-echo-session.pcap`);
    const cut = bytes.subarray(0, bytes.length - 10);
    expect(() => readCapture(cut)).toThrow(/says \d+ bytes but the file ends/);
    const told: string[] = [];
    const got = readCapture(cut, { partial: true, onTruncated: (e) => told.push(e.message) });
    expect(got).toHaveLength(records.length - 1);
    expect(told).toHaveLength(1);
    const ng = concat(SHB, idb(LinkType.ETHERNET), epb(0, 5n, frame), epb(0, 6n, frame));
    expect(readCapture(ng.subarray(0, ng.length - 3), { partial: true })).toHaveLength(1);
    // Not a capture at all stays an error.
    expect(() => readCapture(new Uint8Array(64), { partial: true })).toThrow(/not a pcap or pcapng file/);
  });

  it('says what is wrong with a file it cannot read, and never throws anything else (property)', () => {
    expect(() => readCapture(hex('00 01 02'))).toThrow(PcapFormatError);
    expect(() => readCapture(new Uint8Array(64))).toThrow(/not a pcap or pcapng file/);
    expect(() => readCapture(concat(SHB, epb(0, 0n, frame)))).toThrow(/interface 0, which was not described/);
    expect(() => readCapture(concat(SHB, idb(1)).subarray(0, SHB.length + 10))).toThrow(/cut short|says/);
    const good = concat(SHB, idb(LinkType.ETHERNET), epb(0, 5n, frame));
    fc.assert(
      fc.property(fc.nat(good.length), fc.uint8Array({ maxLength: 40 }), (cut, noise) => {
        try {
          readCapture(concat(good.subarray(0, cut), noise));
        } catch (err) {
          expect(err).toBeInstanceOf(PcapFormatError);
        }
      }),
    );
  });
});

describe('ipv4Datagram by link type', () => {
  const at = (linkType: number, bytes: Uint8Array) => ({ timestampUs: 0, frame: bytes, originalLength: bytes.length, linkType });

  it('Ethernet, also behind an 802.1Q tag; nothing for ARP', () => {
    expect(ipv4Datagram(at(LinkType.ETHERNET, frame))).toEqual(datagram);
    const tagged = concat(frame.subarray(0, 12), hex('8100 0064'), frame.subarray(12));
    expect(ipv4Datagram(at(LinkType.ETHERNET, tagged))).toEqual(datagram);
    expect(ipv4Datagram(readFixture('linux-arp-and-ping.pcap')[0]!)).toBeUndefined();
  });

  it('Linux cooked captures (tcpdump -i any): SLL (protocol at 14) and SLL2 (protocol at 0)', () => {
    const sll = concat(hex('0000 0001 0006 020000000a01 0000 0800'), datagram);
    expect(ipv4Datagram(at(LinkType.LINUX_SLL, sll))).toEqual(datagram);
    const sll2 = concat(hex('0800 0000 00000002 0001 00 06 020000000a01 0000'), datagram);
    expect(ipv4Datagram(at(LinkType.LINUX_SLL2, sll2))).toEqual(datagram);
    expect(ipv4Datagram(at(LinkType.LINUX_SLL, concat(hex('0000 0001 0006 020000000a01 0000 86dd'), datagram)))).toBeUndefined();
  });

  it('raw IP and BSD loopback (AF_INET in either byte order); an unknown link type gives nothing', () => {
    expect(ipv4Datagram(at(LinkType.IPV4, datagram))).toEqual(datagram);
    expect(ipv4Datagram(at(LinkType.NULL, concat(hex('02000000'), datagram)))).toEqual(datagram);
    expect(ipv4Datagram(at(LinkType.NULL, concat(hex('00000002'), datagram)))).toEqual(datagram);
    expect(ipv4Datagram(at(147, datagram))).toBeUndefined();
  });
});
