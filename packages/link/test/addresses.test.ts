import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  IPV4_BROADCAST,
  formatIpv4,
  ipv4,
  ipv4FromNumber,
  isIpv4LimitedBroadcast,
  isIpv4Loopback,
  isIpv4Multicast,
  isIpv4Unspecified,
  parseIpv4,
  readIpv4,
  writeIpv4,
} from '../src/ipv4-address.ts';
import { MacAddress } from '../src/mac.ts';
import { seededRandom } from '../src/random.ts';

describe('MacAddress', () => {
  it('parses colon and dash forms, any case, and formats lower-case with colons', () => {
    const mac = MacAddress.parse('02:00:00:00:0A:01');
    expect(Array.from(mac.bytes)).toEqual([0x02, 0, 0, 0, 0x0a, 0x01]);
    expect(mac.toString()).toBe('02:00:00:00:0a:01');
    expect(MacAddress.parse('aa-bb-cc-dd-ee-ff').toString()).toBe('aa:bb:cc:dd:ee:ff');
    expect(MacAddress.parse(' 2:0:0:0:a:1 ').toString()).toBe('02:00:00:00:0a:01');
    expect(JSON.stringify({ mac })).toBe('{"mac":"02:00:00:00:0a:01"}');
  });

  it('refuses what is not six hex bytes, saying what it expected', () => {
    for (const bad of ['', '02:00:00:00:0a', '02:00:00:00:0a:01:02', '02:00:00:00:0a:1g', '020:00:00:00:0a:01', 'hello']) {
      expect(() => MacAddress.parse(bad)).toThrow(/six hex bytes/);
    }
  });

  it('classifies broadcast, multicast, unicast, locally administered and zero', () => {
    expect(MacAddress.BROADCAST.isBroadcast).toBe(true);
    expect(MacAddress.BROADCAST.isMulticast).toBe(true);
    const ipv4Multicast = MacAddress.parse('01:00:5e:00:00:01');
    expect(ipv4Multicast.isMulticast).toBe(true);
    expect(ipv4Multicast.isBroadcast).toBe(false);
    const local = MacAddress.parse('02:00:00:00:0a:01');
    expect(local.isUnicast).toBe(true);
    expect(local.isLocallyAdministered).toBe(true);
    const global = MacAddress.parse('00:1b:21:0a:0b:0c');
    expect(global.isLocallyAdministered).toBe(false);
    expect(MacAddress.ZERO.isZero).toBe(true);
    expect(local.isZero).toBe(false);
  });

  it('copies its bytes: changing the source buffer (even a Node Buffer) does not change the address', () => {
    for (const buffer of [new Uint8Array([9, 9, 2, 0, 0, 0, 0x0a, 0x01]), Buffer.from([9, 9, 2, 0, 0, 0, 0x0a, 0x01])]) {
      const mac = MacAddress.fromBytes(buffer, 2);
      buffer.fill(0xee);
      expect(mac.toString()).toBe('02:00:00:00:0a:01');
    }
    expect(() => MacAddress.fromBytes(new Uint8Array(5))).toThrow(RangeError);
    expect(() => MacAddress.fromBytes(new Uint8Array(8), 3)).toThrow(RangeError);
  });

  it('compares by value, also against bytes inside a frame', () => {
    const a = MacAddress.parse('02:00:00:00:0a:01');
    expect(a.equals(MacAddress.parse('02:00:00:00:0a:01'))).toBe(true);
    expect(a.equals(MacAddress.parse('02:00:00:00:0a:02'))).toBe(false);
    const frame = new Uint8Array([0xff, 2, 0, 0, 0, 0x0a, 0x01]);
    expect(MacAddress.equalsAt(a, frame, 1)).toBe(true);
    expect(MacAddress.equalsAt(a, frame, 0)).toBe(false);
    const out = new Uint8Array(8);
    a.writeTo(out, 1);
    expect(Array.from(out)).toEqual([0, 2, 0, 0, 0, 0x0a, 0x01, 0]);
  });

  it('makes random addresses that are unicast and locally administered', () => {
    const random = seededRandom(42);
    for (let i = 0; i < 1000; i++) {
      const mac = MacAddress.randomLocal(random);
      expect(mac.isUnicast).toBe(true);
      expect(mac.isLocallyAdministered).toBe(true);
    }
    // the same seed gives the same address
    expect(MacAddress.randomLocal(seededRandom(7)).equals(MacAddress.randomLocal(seededRandom(7)))).toBe(true);
  });

  it('format then parse is the identity (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 6, maxLength: 6 }), (bytes) => {
        const mac = MacAddress.fromBytes(bytes);
        expect(MacAddress.parse(mac.toString()).bytes).toEqual(mac.bytes);
        expect(mac.toString()).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      }),
    );
  });
});

describe('Ipv4Address', () => {
  it('parses dotted quads to host-order numbers and formats them back', () => {
    expect(parseIpv4('10.0.0.1')).toBe(0x0a000001);
    expect(ipv4('192.168.1.254')).toBe(0xc0a801fe);
    expect(ipv4('255.255.255.255')).toBe(IPV4_BROADCAST);
    expect(ipv4('0.0.0.0')).toBe(0);
    expect(formatIpv4(ipv4('10.0.0.2'))).toBe('10.0.0.2');
    expect(formatIpv4(ipv4FromNumber(0xffffffff))).toBe('255.255.255.255');
    expect(formatIpv4(ipv4FromNumber(-1))).toBe('255.255.255.255');
  });

  it('refuses malformed text', () => {
    for (const bad of ['', '10.0.0', '10.0.0.1.2', '256.0.0.1', '10.0.0.-1', '010.0.0.1', '10.0.0.1/24', 'a.b.c.d', '10..0.1']) {
      expect(() => parseIpv4(bad)).toThrow(/invalid IPv4 address/);
    }
  });

  it('reads and writes four bytes in network order', () => {
    const buffer = new Uint8Array(6);
    writeIpv4(buffer, 1, ipv4('10.0.0.2'));
    expect(Array.from(buffer)).toEqual([0, 10, 0, 0, 2, 0]);
    expect(readIpv4(buffer, 1)).toBe(ipv4('10.0.0.2'));
    writeIpv4(buffer, 2, ipv4('255.254.253.252'));
    expect(readIpv4(buffer, 2)).toBe(0xfffefdfc);
  });

  it('classifies special addresses', () => {
    expect(isIpv4Multicast(ipv4('224.0.0.1'))).toBe(true);
    expect(isIpv4Multicast(ipv4('239.255.255.255'))).toBe(true);
    expect(isIpv4Multicast(ipv4('240.0.0.1'))).toBe(false);
    expect(isIpv4Multicast(ipv4('223.255.255.255'))).toBe(false);
    expect(isIpv4LimitedBroadcast(ipv4('255.255.255.255'))).toBe(true);
    expect(isIpv4LimitedBroadcast(ipv4('10.0.0.255'))).toBe(false);
    expect(isIpv4Unspecified(ipv4('0.0.0.0'))).toBe(true);
    expect(isIpv4Loopback(ipv4('127.1.2.3'))).toBe(true);
    expect(isIpv4Loopback(ipv4('128.0.0.1'))).toBe(false);
  });

  it('format then parse, and write then read, are the identity (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => {
        const a = ipv4FromNumber(n);
        expect(parseIpv4(formatIpv4(a))).toBe(a);
        const b = new Uint8Array(4);
        writeIpv4(b, 0, a);
        expect(readIpv4(b, 0)).toBe(a);
      }),
    );
  });
});
