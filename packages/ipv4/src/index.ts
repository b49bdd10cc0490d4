// The one representation of IPv4 addresses for the whole stack lives in @tapstack/link (ARP,
// below us, needs it too); re-exported here next to the CIDR type.
export {
  type Ipv4Address,
  IPV4_BROADCAST,
  IPV4_UNSPECIFIED,
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
} from '@tapstack/link';
export * from './cidr.ts';
export * from './checksum.ts';
export * from './header.ts';
export * from './routes.ts';
export * from './reassembly.ts';
export * from './fragment.ts';
export * from './layer.ts';
// What IPv4 sends through (implemented by @tapstack/arp's Arp), for layers and tests that
// compose the stack by hand.
export type { NeighbourResolver, ResolveOutcome, ResolutionFailedListener } from '@tapstack/arp';
