/**
 * One line per frame for `--trace`, decoded as deep as the stack understands it, tcpdump style:
 *
 *   02:00:00:00:0a:01 > ff:ff:ff:ff:ff:ff, ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28
 *   02:00:00:00:0a:01 > 02:00:00:00:0b:02, IPv4, 10.0.0.1 > 10.0.0.2: ICMP echo request, id 7, seq 1, length 64
 *
 * Each layer brings its own formatter; this file only chains them. Never throws.
 */
import { formatArp } from '@tapstack/arp';
import { formatIcmp } from '@tapstack/icmp';
import { IpProtocol, Ipv4Packet, ipProtocolName } from '@tapstack/ipv4';
import { formatIpv6Datagram } from '@tapstack/icmpv6';
import { EtherType, EthernetFrame, etherTypeName, formatIpv4, type Ipv4Address, type Ipv6Address } from '@tapstack/link';

export type PayloadDescriber = (payload: Uint8Array, source: Ipv4Address, destination: Ipv4Address) => string;
export type Ipv6PayloadDescriber = (payload: Uint8Array, source: Ipv6Address, destination: Ipv6Address) => string;

/**
 * Builds the describer; `protocols` adds formatters for IP protocols above ICMP (UDP, ...), and
 * `protocols6` the same for next headers above IPv6.
 */
export function frameDescriber(
  protocols: ReadonlyMap<number, PayloadDescriber> = new Map(),
  protocols6: ReadonlyMap<number, Ipv6PayloadDescriber> = new Map(),
): (frame: Uint8Array) => string {
  const upper6 = (nextHeader: number, message: Uint8Array, source: Ipv6Address, destination: Ipv6Address): string | undefined =>
    protocols6.get(nextHeader)?.(message, source, destination);
  return (frame) => {
    const checked = EthernetFrame.check(frame);
    if (!checked.ok) return `[truncated frame, length ${frame.length}]`;
    const eth = checked.value;
    const head = `${eth.source} > ${eth.destination}, `;
    const payload = eth.payload;
    switch (eth.etherType) {
      case EtherType.ARP:
        return head + formatArp(payload);
      case EtherType.IPV4: {
        const ip = Ipv4Packet.check(payload, { verifyChecksum: false });
        if (!ip.ok) return `${head}IPv4, [${ip.reason}], length ${payload.length}`;
        const p = ip.value;
        const addrs = `${formatIpv4(p.source)} > ${formatIpv4(p.destination)}`;
        const frag =
          p.fragmentOffset > 0 || p.moreFragments
            ? ` (frag id ${p.identification}, offset ${p.fragmentOffset}${p.moreFragments ? ', more' : ''})`
            : '';
        const inner = p.payload;
        // Only a whole datagram can be decoded further (a first fragment's checksum covers bytes
        // that have not arrived yet).
        if (frag) return `${head}IPv4, ${addrs}: fragment of proto ${ipProtocolName(p.protocol)}, length ${inner.length}${frag}`;
        if (p.protocol === IpProtocol.ICMP) return `${head}IPv4, ${addrs}: ${formatIcmp(inner)}${frag}`;
        const more = protocols.get(p.protocol);
        if (more) return `${head}IPv4, ${more(inner, p.source, p.destination)}`;
        return `${head}IPv4, ${addrs}: proto ${p.protocol}, length ${inner.length}${frag}`;
      }
      case EtherType.IPV6:
        return head + formatIpv6Datagram(payload, upper6);
      default:
        return `${head}${etherTypeName(eth.etherType)}, length ${frame.length}`;
    }
  };
}
