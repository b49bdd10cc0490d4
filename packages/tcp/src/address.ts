/**
 * TCP's addresses of both families. IPv4's is a number (the stack's Ipv4Address), IPv6's an
 * Ipv6Address, the same pair UDP uses: `typeof address === 'number'` tells the family apart
 * without a tag, so an IPv4 connection carries exactly what it carried before IPv6 came.
 */
import { formatIpv4, Ipv6Address, parseIpv4, parseIpv6WithZone, type Ipv4Address } from '@tapstack/link';
import { TcpError } from './errors.ts';

/** An address of either family: IPv4's is a number, IPv6's an Ipv6Address. */
export type TcpAddress = Ipv4Address | Ipv6Address;

/** Node's names for the families (`socket.remoteFamily`, `server.address().family`). */
export type TcpFamily = 'IPv4' | 'IPv6';

export function tcpFamilyOf(address: TcpAddress): TcpFamily {
  return typeof address === 'number' ? 'IPv4' : 'IPv6';
}

/** `10.0.0.2`, `fd00:10::2` (RFC 5952 text). */
export function formatTcpAddress(address: TcpAddress): string {
  return typeof address === 'number' ? formatIpv4(address) : address.toString();
}

/** An address and a port as ss prints them: `10.0.0.2:80`, `[fd00:10::2]:80`, `*:80` for `::` (both families). */
export function formatTcpEndpoint(address: TcpAddress, port: number | string): string {
  if (typeof address === 'number') return `${formatIpv4(address)}:${port}`;
  return address.isUnspecified ? `*:${port}` : `[${address.toString()}]:${port}`;
}

/** True for the same address of the same family. */
export function sameTcpAddress(a: TcpAddress, b: TcpAddress): boolean {
  if (typeof a === 'number') return a === b;
  return typeof b !== 'number' && a.equals(b);
}

/**
 * An address given by the caller: a number, an Ipv6Address, or text of either (a `:` makes it
 * IPv6; `[...]` brackets as in URLs and a `%zone` suffix as in `fe80::1%tap0` are allowed, the zone
 * is dropped: this stack has one link). Throws TcpError EINVAL on anything else.
 */
export function toTcpAddress(address: string | TcpAddress): TcpAddress {
  if (typeof address !== 'string') return address;
  try {
    if (!address.includes(':')) return parseIpv4(address);
    const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
    return parseIpv6WithZone(bare).address;
  } catch (err) {
    throw new TcpError('EINVAL', (err as Error).message);
  }
}
