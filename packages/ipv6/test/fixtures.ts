/**
 * The Linux IPv6 captures in ./fixtures (made by ./fixtures/capture.sh: two namespaces on a veth
 * pair, fd00:10::1 at 02:00:00:00:0a:01 and fd00:10::2 at 02:00:00:00:0b:02; see the README
 * there). Every frame was written by the kernel (or, for the router advertisements, by radvd),
 * so they are independent ground truth for the IPv6, ICMPv6, NDP and MLD codecs. Other packages'
 * tests (icmpv6) import this file too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readPcap } from '@tapstack/link';

export const IPV6_FIXTURE_DIR = fileURLToPath(new URL('./fixtures/', import.meta.url));

export interface Ipv6FixtureFrame {
  readonly file: string;
  readonly index: number;
  /** The whole Ethernet frame. */
  readonly frame: Uint8Array;
  /** The IPv6 packet (bytes 14 on). */
  readonly packet: Uint8Array;
}

export function ipv6FixtureNames(): string[] {
  const names = readdirSync(IPV6_FIXTURE_DIR)
    .filter((n) => n.endsWith('.pcap'))
    .sort();
  if (names.length === 0) throw new Error(`no fixtures in ${IPV6_FIXTURE_DIR}`);
  return names;
}

/** The frames of one capture, in order. */
export function ipv6FixtureFrames(file: string): Ipv6FixtureFrame[] {
  return readPcap(readFileSync(IPV6_FIXTURE_DIR + file)).map((r, index) => ({ file, index, frame: r.frame, packet: r.frame.subarray(14) }));
}

/** Every frame of every capture (all of them are IPv6). */
export function allIpv6Frames(): Ipv6FixtureFrame[] {
  return ipv6FixtureNames().flatMap(ipv6FixtureFrames);
}
