import { describe, expect, it } from 'vitest';
import { Ipv6Address, MacAddress, interfaceIdFromMac, ipv6, parseIpv6WithZone } from '../src/index.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('Ipv6Address', () => {
  it('parses the text forms of RFC 4291 2.2 into bytes', () => {
    expect(hex(ipv6('fd00:10::2').bytes)).toBe('fd000010000000000000000000000002');
    expect(hex(ipv6('::').bytes)).toBe('00000000000000000000000000000000');
    expect(hex(ipv6('::1').bytes)).toBe('00000000000000000000000000000001');
    expect(hex(ipv6('FE80::0200:5EFF:FE00:5301').bytes)).toBe('fe800000000000000200' + '5efffe005301');
    expect(hex(ipv6('1:2:3:4:5:6:7:8').bytes)).toBe('00010002000300040005000600070008');
    expect(hex(ipv6('::ffff:10.0.0.1').bytes)).toBe('00000000000000000000ffff0a000001');
    expect(hex(ipv6('ff02::1:ff00:2').bytes)).toBe('ff0200000000000000000001ff000002');
  });

  it('refuses what is not an address', () => {
    for (const bad of ['', ':', '1::2::3', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', '::1%eth0', '1:2:3:4:5:6:7::8', '::256.0.0.1', '10.0.0.1']) {
      expect(() => ipv6(bad), bad).toThrow(/invalid IPv6 address/);
    }
  });

  it('prints RFC 5952 text: lower case, the longest zero run as ::, the first on a tie, no :: for one group', () => {
    expect(ipv6('FD00:0010:0000:0000:0000:0000:0000:0002').toString()).toBe('fd00:10::2');
    expect(ipv6('1:0:0:2:0:0:0:3').toString()).toBe('1:0:0:2::3');
    expect(ipv6('1:0:0:2:0:0:3:4').toString()).toBe('1::2:0:0:3:4');
    expect(ipv6('1:0:2:3:4:5:6:7').toString()).toBe('1:0:2:3:4:5:6:7');
    expect(Ipv6Address.UNSPECIFIED.toString()).toBe('::');
    expect(ipv6('ff02::16').toString()).toBe('ff02::16');
    expect(ipv6('fd00:10::').toString()).toBe('fd00:10::');
  });

  it('prints an IPv4-mapped address with its IPv4 tail dotted (RFC 4291 2.5.5.2, RFC 5952 5), and parses it back', () => {
    for (const text of ['::ffff:10.0.0.1', '::ffff:0.0.0.0', '::ffff:255.255.255.255', '::ffff:192.0.2.128']) {
      expect(ipv6(text).toString()).toBe(text);
      expect(ipv6(ipv6(text).toString()).equals(ipv6(text))).toBe(true);
    }
    expect(ipv6('0:0:0:0:0:FFFF:0A00:0001').toString()).toBe('::ffff:10.0.0.1');
    expect(ipv6('::ffff:10.0.0.1').key).toBe('::ffff:10.0.0.1');
    // only ::ffff:0:0/96 is mapped: neighbours of it keep the hexadecimal form
    expect(ipv6('::fffe:a00:1').toString()).toBe('::fffe:a00:1');
    expect(ipv6('1::ffff:a00:1').toString()).toBe('1::ffff:a00:1');
    expect(ipv6('::1:ffff:a00:1').toString()).toBe('::1:ffff:a00:1');
    expect(ipv6('::a00:1').toString()).toBe('::a00:1'); // IPv4-compatible (deprecated, RFC 4291 2.5.5.1): hexadecimal, as the kernel's %pI6c prints it
  });

  it('derives the link-local address from a MAC by modified EUI-64 (RFC 4291 appendix A)', () => {
    const mac = MacAddress.parse('02:00:00:00:0a:02');
    expect(hex(interfaceIdFromMac(mac))).toBe('000000fffe000a02');
    expect(Ipv6Address.linkLocalFromMac(mac).toString()).toBe('fe80::ff:fe00:a02');
    expect(Ipv6Address.linkLocalFromMac(MacAddress.parse('00:1b:21:aa:bb:cc')).toString()).toBe('fe80::21b:21ff:feaa:bbcc');
    expect(Ipv6Address.fromPrefixAndMac(ipv6('fd00:10::'), mac).toString()).toBe('fd00:10::ff:fe00:a02');
  });

  it('gives the solicited-node group and its multicast MAC (RFC 4291 2.7.1, RFC 2464 7)', () => {
    const a = ipv6('fd00:10::ff:fe00:a02');
    expect(a.solicitedNode().toString()).toBe('ff02::1:ff00:a02');
    expect(a.solicitedNode().multicastMac().toString()).toBe('33:33:ff:00:0a:02');
    expect(Ipv6Address.ALL_NODES.multicastMac().toString()).toBe('33:33:00:00:00:01');
    expect(() => a.multicastMac()).toThrow(/not a multicast/);
  });

  it('classifies and compares', () => {
    expect(ipv6('fe80::1').isLinkLocal).toBe(true);
    expect(ipv6('febf::1').isLinkLocal).toBe(true);
    expect(ipv6('fec0::1').isLinkLocal).toBe(false);
    expect(ipv6('ff02::1').isMulticast).toBe(true);
    expect(ipv6('ff02::1').multicastScope).toBe(2);
    expect(ipv6('fd00:10::2').multicastScope).toBeUndefined();
    expect(ipv6('::').isUnspecified).toBe(true);
    expect(ipv6('::1').isLoopback).toBe(true);
    expect(ipv6('fd00:10::2').equals(ipv6('fd00:10:0::2'))).toBe(true);
    expect(ipv6('fd00:10::2').equals(ipv6('fd00:10::3'))).toBe(false);
    expect(ipv6('fd00:10::2').key).toBe('fd00:10::2');
  });

  it('matches and cuts prefixes at any length', () => {
    const a = ipv6('fd00:10::ff:fe00:a02');
    expect(a.hasPrefix(ipv6('fd00:10::'), 64)).toBe(true);
    expect(a.hasPrefix(ipv6('fd00:11::'), 64)).toBe(false);
    expect(a.hasPrefix(ipv6('fd00:11::'), 31)).toBe(true);
    expect(a.hasPrefix(ipv6('fd00:11::'), 32)).toBe(false);
    expect(a.prefix(64).toString()).toBe('fd00:10::');
    expect(a.prefix(12).toString()).toBe('fd00::');
    expect(ipv6('ffff::').prefix(9).toString()).toBe('ff80::');
    expect(() => a.prefix(129)).toThrow(RangeError);
  });

  it('splits a zone off a link-local address (RFC 4007 11)', () => {
    const { address, zone } = parseIpv6WithZone('fe80::1%tap0');
    expect(address.toString()).toBe('fe80::1');
    expect(zone).toBe('tap0');
    expect(parseIpv6WithZone('fd00:10::2').zone).toBeUndefined();
    expect(() => parseIpv6WithZone('fe80::1%')).toThrow(/empty zone/);
  });

  it('copies bytes in and round-trips through writeTo', () => {
    const buf = new Uint8Array(20);
    ipv6('fd00:10::2').writeTo(buf, 2);
    const back = Ipv6Address.fromBytes(buf, 2);
    buf.fill(0);
    expect(back.toString()).toBe('fd00:10::2');
    expect(() => Ipv6Address.fromBytes(buf, 10)).toThrow(RangeError);
  });
});
