export * from './packet.ts';
export * from './neighbour-table.ts';
export * from './arp.ts';
export type { NeighbourResolver, ResolveOutcome, ResolutionFailedListener } from './resolver-api.ts';
export * from './address-claims.ts';
