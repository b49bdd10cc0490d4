/**
 * The Neighbour Discovery messages as Ndp acts on them (RFC 4861 section 4): plain values, already
 * validated (RFC 4861 7.1.1, 7.1.2, 6.1.2 are the codec's and Ndp's input checks). The codecs of
 * @tapstack/icmpv6 read them from the wire and write them back; this file only says what Ndp
 * needs of each, so the state machines in ndp.ts, dad.ts and router.ts read without bytes.
 */
import type { Ipv6Address, MacAddress } from '@tapstack/link';

export interface PrefixInformation {
  readonly prefix: Ipv6Address;
  readonly prefixLength: number;
  /** L: the prefix is on-link. */
  readonly onLink: boolean;
  /** A: addresses may be formed from it (SLAAC). */
  readonly autonomous: boolean;
  /** Seconds; 0xffffffff is infinity. */
  readonly validLifetime: number;
  readonly preferredLifetime: number;
}

export type NdpMessage =
  | { readonly kind: 'router-solicitation'; readonly sourceLinkLayer: MacAddress | undefined }
  | {
      readonly kind: 'router-advertisement';
      readonly curHopLimit: number;
      readonly managed: boolean;
      readonly other: boolean;
      /** Seconds as a default router; 0: not one. */
      readonly routerLifetime: number;
      /** Milliseconds; 0: unspecified. */
      readonly reachableTime: number;
      readonly retransTimer: number;
      readonly sourceLinkLayer: MacAddress | undefined;
      readonly mtu: number | undefined;
      readonly prefixes: readonly PrefixInformation[];
    }
  | {
      readonly kind: 'neighbour-solicitation';
      readonly target: Ipv6Address;
      readonly sourceLinkLayer: MacAddress | undefined;
      /** The nonce option (RFC 7527) a DAD probe carries: 6 random bytes, so the sender knows its own probe. */
      readonly nonce?: Uint8Array | undefined;
    }
  | {
      readonly kind: 'neighbour-advertisement';
      readonly router: boolean;
      readonly solicited: boolean;
      readonly override: boolean;
      readonly target: Ipv6Address;
      readonly targetLinkLayer: MacAddress | undefined;
    }
  | {
      readonly kind: 'redirect';
      /** The better first hop (a router's link-local address), or the destination itself when it is on-link. */
      readonly target: Ipv6Address;
      readonly destination: Ipv6Address;
      readonly targetLinkLayer: MacAddress | undefined;
    };

/** Infinity in an NDP lifetime field (RFC 4861 4.6.2). */
export const INFINITE_LIFETIME = 0xffffffff;

/** A lifetime field in seconds as milliseconds (Infinity for 0xffffffff). */
export function lifetimeMs(seconds: number): number {
  return seconds === INFINITE_LIFETIME ? Infinity : seconds * 1000;
}
