/**
 * Example 13: read IPv6 frames from pcap files and decode them the way the stack's codecs do:
 * one tcpdump-like line per frame, and for Neighbour Discovery and MLD messages the verdict of
 * the RFC 4861 / RFC 3810 validity rules (the reason when one is broken).
 *
 * No device, no root: it reads files. By default it decodes the Linux captures the codecs are
 * tested against (packages/ipv6/test/fixtures, made by capture.sh there):
 *
 *   npx tsx examples/13-decode-ipv6.ts
 *   npx tsx examples/13-decode-ipv6.ts my-capture.pcap       # any Ethernet pcap; IPv6 frames only
 *
 * Try it on a capture of your own (`tcpdump -w x.pcap ip6` while `ping -6` runs) and on a frame
 * you damaged: a hop limit of 254 in an NS prints `invalid: bad_hop_limit`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatIpv6Datagram, Icmpv6Packet, Icmpv6Type, isNdiscType, validateMld, validateNdisc } from '@tapstack/icmpv6';
import { Ipv6Packet, walkExtensionHeaders } from '@tapstack/ipv6';
import { EtherType, readEtherType, readPcap } from '@tapstack/link';

const fixtures = fileURLToPath(new URL('../packages/ipv6/test/fixtures/', import.meta.url));
const files = process.argv.length > 2 ? process.argv.slice(2) : readdirSync(fixtures).filter((f) => f.endsWith('.pcap')).sort().map((f) => join(fixtures, f));

for (const file of files) {
  console.log(`== ${file.split('/').pop()}`);
  for (const { frame } of readPcap(readFileSync(file))) {
    if (frame.length < 14 || readEtherType(frame) !== EtherType.IPV6) continue;
    const packet = frame.subarray(14);
    console.log(`${formatIpv6Datagram(packet)}${verdict(packet)}`);
  }
}

/** ` -> valid` or ` -> invalid: <reason>` for NDP and MLD messages; nothing for the others. */
function verdict(bytes: Uint8Array): string {
  const checked = Ipv6Packet.check(bytes);
  if (!checked.ok) return '';
  const ip = checked.value;
  const walk = walkExtensionHeaders(ip);
  if (walk.kind !== 'upper-layer' || walk.nextHeader !== 58) return '';
  const message = Icmpv6Packet.check(ip.bytes.subarray(walk.offset));
  if (!message.ok) return '';
  const context = { source: ip.source, destination: ip.destination, hopLimit: ip.hopLimit };
  if (isNdiscType(message.value.type)) {
    const r = validateNdisc(message.value, context);
    return r.ok ? '  -> valid (RFC 4861)' : `  -> invalid: ${r.reason}`;
  }
  if (message.value.type === Icmpv6Type.MULTICAST_LISTENER_REPORT_V2 || message.value.type === Icmpv6Type.MULTICAST_LISTENER_QUERY) {
    const reason = validateMld(message.value, { ...context, routerAlert: walk.routerAlert });
    return reason === undefined ? '  -> valid (RFC 3810)' : `  -> invalid: ${reason}`;
  }
  return '';
}
