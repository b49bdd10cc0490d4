export * from './packet.ts';
// The neighbour subsystem is its own package; ARP is one of its users. Re-exported for users of ARP.
export * from '@tapstack/neighbour';
export * from './arp.ts';
export type { NeighbourResolver, ResolveOutcome, ResolutionFailedListener } from './resolver-api.ts';
export * from './address-claims.ts';
