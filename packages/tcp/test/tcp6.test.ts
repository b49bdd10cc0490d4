/**
 * TCP's IPv6 pieces without a stack: the RFC 8200 8.1 pseudo-header checksum against segments
 * the Linux kernel wrote (fixtures/linux-tcp6-echo.pcap, made by fixtures/capture-tcp6.sh in two
 * namespaces), the MSS for IPv6, the address helpers, and the connection table with IPv4 and IPv6
 * 4-tuples side by side.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Ipv6Packet } from '@tapstack/ipv6';
import { ipv4, ipv6, readPcap, seededRandom } from '@tapstack/link';
import { hex } from '../../../test/support/fixtures.ts';
import { formatTcpAddress, formatTcpEndpoint, toTcpAddress } from '../src/address.ts';
import { ConnectionTable } from '../src/demux.ts';
import { formatTcp, IPV6_FIXED_HEADER_LENGTH, mssForMtu, tcp6ChecksumAt, tcpChecksum, TcpFlag, TcpPacket, TcpRepr } from '../src/header.ts';

const K1 = ipv6('fd00:10::1');
const K2 = ipv6('fd00:10::2');

/** The kernel's SYN of linux-tcp6-echo.pcap (frame 1), the TCP part: fd00:10::1.41142 > fd00:10::2.7. */
const SYN6 = hex(`
  a0 b6 00 07 eb ea ea d5 00 00 00 00 a0 02 fd 20 a3 c4 00 00
  02 04 05 a0 04 02 08 0a 84 7e b1 0a 00 00 00 00 01 03 03 0a`);

function linuxTcp6(): { packet: Ipv6Packet; tcp: Uint8Array }[] {
  const bytes = readFileSync(new URL('./fixtures/linux-tcp6-echo.pcap', import.meta.url));
  return readPcap(bytes).map((r) => {
    const packet = new Ipv6Packet(r.frame.subarray(14));
    return { packet, tcp: packet.bytes.subarray(40) };
  });
}

describe('the TCP checksum over IPv6 (RFC 8200 8.1 pseudo-header)', () => {
  it("checks the kernel's SYN byte for byte: MSS 1440 (1500 - 60), checksum 0xa3c4 over fd00:10::1 > fd00:10::2", () => {
    const r = TcpPacket.check(SYN6);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect([r.value.sourcePort, r.value.destinationPort, r.value.flags, r.value.checksum]).toEqual([41142, 7, TcpFlag.SYN, 0xa3c4]);
    expect(r.value.verifyChecksum(K1, K2)).toBe(true);
    expect(tcpChecksum(SYN6, K1, K2)).toBe(0);
    // the IPv4 pseudo-header over the same bytes does not match, nor does another address
    expect(r.value.verifyChecksum(ipv4('10.0.0.1'), ipv4('10.0.0.2'))).toBe(false);
    expect(r.value.verifyChecksum(K1, ipv6('fd00:10::3'))).toBe(false);
    expect(TcpRepr.parse(r.value).options.mss).toBe(1440);
    expect(mssForMtu(1500, IPV6_FIXED_HEADER_LENGTH)).toBe(1440);
    expect(mssForMtu(1500)).toBe(1460);
  });

  it("every segment of a Linux IPv6 echo session: the checksum checks, in place and by address; our emit writes the kernel's bytes again", () => {
    const segments = linuxTcp6();
    expect(segments.length).toBe(10);
    for (const { packet, tcp } of segments) {
      expect(packet.nextHeader).toBe(6);
      expect(tcp6ChecksumAt(tcp, packet.bytes)).toBe(0);
      expect(tcpChecksum(tcp, packet.source, packet.destination)).toBe(0);
      const checked = TcpPacket.check(tcp);
      if (!checked.ok) throw new Error(checked.reason);
      const again = new Uint8Array(tcp.length);
      TcpRepr.emit(TcpRepr.parse(checked.value), checked.value.payload, again, packet.source, packet.destination);
      expect(Buffer.from(again).toString('hex')).toBe(Buffer.from(tcp).toString('hex'));
    }
    const payloads = segments.map((s) => TcpPacket.check(s.tcp)).flatMap((r) => (r.ok && r.value.payload.length > 0 ? [Buffer.from(r.value.payload).toString()] : []));
    expect(payloads).toEqual(['hello over six\n', 'hello over six\n']);
  });

  it('one flipped bit anywhere in the segment or in an address fails the check', () => {
    const [{ packet, tcp }] = linuxTcp6().slice(3, 4) as [{ packet: Ipv6Packet; tcp: Uint8Array }];
    for (let i = 0; i < tcp.length; i++) {
      const bad = new Uint8Array(packet.bytes);
      bad[40 + i]! ^= 0x10;
      expect(tcp6ChecksumAt(bad.subarray(40), bad), `byte ${i}`).not.toBe(0);
    }
    for (const at of [8, 23, 24, 39]) {
      const bad = new Uint8Array(packet.bytes);
      bad[at]! ^= 0x01;
      expect(tcp6ChecksumAt(bad.subarray(40), bad), `address byte ${at}`).not.toBe(0);
    }
  });

  it('the trace line reads like tcpdump with IPv6 addresses', () => {
    expect(formatTcp(SYN6, K1, K2)).toBe('fd00:10::1.41142 > fd00:10::2.7: Flags [S], seq 3958041301, win 64800, options [mss 1440,sackOK,TS val 2222895370 ecr 0,nop,wscale 10], length 0');
  });
});

describe('addresses of both families', () => {
  it('parses text of either family, URL brackets and a zone; formats ss-style endpoints', () => {
    expect(toTcpAddress('10.0.0.2')).toBe(ipv4('10.0.0.2'));
    expect(formatTcpAddress(toTcpAddress('[fd00:10::2]'))).toBe('fd00:10::2');
    expect(formatTcpAddress(toTcpAddress('fe80::ff:fe00:2%tap0'))).toBe('fe80::ff:fe00:2');
    expect(formatTcpAddress(toTcpAddress('FD00:0010:0000::0002'))).toBe('fd00:10::2');
    expect(() => toTcpAddress('fd00::10::2')).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => toTcpAddress('10.0.0.256')).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(formatTcpEndpoint(ipv4('10.0.0.2'), 80)).toBe('10.0.0.2:80');
    expect(formatTcpEndpoint(K2, 80)).toBe('[fd00:10::2]:80');
    expect(formatTcpEndpoint(ipv6('::'), 80)).toBe('*:80');
  });
});

/** Bytes 8..40 of an IPv6 header from `source` to `destination`: how input6 hands the 4-tuple to the table. */
function headerAddresses(source: string, destination: string): Uint8Array {
  const b = new Uint8Array(40);
  b.set(ipv6(source).bytes, 8);
  b.set(ipv6(destination).bytes, 24);
  return b;
}

describe('ConnectionTable with both families', () => {
  it('IPv4 and IPv6 4-tuples with the same ports live side by side; each is found by its own lookup only', () => {
    const t = new ConnectionTable<string>(seededRandom(1));
    expect(t.add(ipv4('10.0.0.1'), 40000, 80, 'v4', ipv4('10.0.0.2'))).toBe(true);
    expect(t.add(K1, 40000, 80, 'v6', K2)).toBe(true);
    expect(t.size).toBe(2);
    expect(t.get(ipv4('10.0.0.1'), 40000, 80)).toBe('v4');
    expect(t.getIpv6At(headerAddresses('fd00:10::1', 'fd00:10::2'), 8, 40000, 80)).toBe('v6');
    expect(t.find(K1, 40000, 80, K2)).toBe('v6');
    expect(t.find(ipv4('10.0.0.1'), 40000, 80, ipv4('10.0.0.2'))).toBe('v4');
    // ports swapped, another remote, another local address: none of them is the connection
    expect(t.getIpv6At(headerAddresses('fd00:10::1', 'fd00:10::2'), 8, 80, 40000)).toBeUndefined();
    expect(t.getIpv6At(headerAddresses('fd00:10::3', 'fd00:10::2'), 8, 40000, 80)).toBeUndefined();
    expect(t.getIpv6At(headerAddresses('fd00:10::1', 'fe80::ff:fe00:2'), 8, 40000, 80)).toBeUndefined();
    expect(t.usesLocalPort(80)).toBe(true);
    expect(t.values().sort()).toEqual(['v4', 'v6']);
  });

  it('the local address is part of an IPv6 tuple: one peer port may reach our global and our link-local address at once', () => {
    const t = new ConnectionTable<string>(seededRandom(2));
    const ll = ipv6('fe80::ff:fe00:2');
    expect(t.add(K1, 40000, 7, 'global', K2)).toBe(true);
    expect(t.add(K1, 40000, 7, 'link-local', ll)).toBe(true);
    expect(t.add(K1, 40000, 7, 'again', K2)).toBe(false);
    expect(t.getIpv6At(headerAddresses('fd00:10::1', 'fe80::ff:fe00:2'), 8, 40000, 7)).toBe('link-local');
    expect(t.getIpv6At(headerAddresses('fd00:10::1', 'fd00:10::2'), 8, 40000, 7)).toBe('global');
    // delete removes only the entry that is still this connection
    t.delete(K1, 40000, 7, 'someone else', K2);
    expect(t.size).toBe(2);
    t.delete(K1, 40000, 7, 'global', K2);
    expect(t.size).toBe(1);
    expect(t.find(K1, 40000, 7, K2)).toBeUndefined();
    expect(t.find(K1, 40000, 7, ll)).toBe('link-local');
    t.delete(K1, 40000, 7, 'link-local', ll);
    expect([t.size, t.usesLocalPort(7), t.values()]).toEqual([0, false, []]);
  });

  it('5,000 IPv6 connections from one prefix: every one found by header bytes, none by a neighbour tuple', () => {
    const t = new ConnectionTable<number>(seededRandom(3));
    const header = new Uint8Array(40);
    header.set(K2.bytes, 24);
    for (let i = 0; i < 5000; i++) {
      const remote = ipv6(`fd00:10::${(i + 0x100).toString(16)}`);
      expect(t.add(remote, 30000 + (i % 7), 80, i, K2)).toBe(true);
    }
    for (let i = 0; i < 5000; i++) {
      header.set(ipv6(`fd00:10::${(i + 0x100).toString(16)}`).bytes, 8);
      expect(t.getIpv6At(header, 8, 30000 + (i % 7), 80)).toBe(i);
      expect(t.getIpv6At(header, 8, 30000 + ((i + 1) % 7), 80)).toBeUndefined();
    }
    expect(t.size).toBe(5000);
  });
});
