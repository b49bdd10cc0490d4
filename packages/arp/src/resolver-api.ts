/**
 * The contract between the neighbour subsystem and the layers that send through it (IPv4 now,
 * anything later). Kept in its own file so a reader of the IPv4 chapter sees exactly what IPv4
 * asks of ARP, and nothing more.
 */
import type { FrameOffload, Ipv4Address } from '@tapstack/link';

import type { ResolveOutcome } from '@tapstack/neighbour';

export type { ResolveOutcome };

/** Called when resolution of `nextHop` fails: the frames that were waiting are dropped. */
export type ResolutionFailedListener = (nextHop: Ipv4Address, droppedFrames: readonly Uint8Array[]) => void;

export interface NeighbourResolver {
  /**
   * Sends a whole Ethernet frame to the neighbour `nextHop`. The caller has built the frame
   * with 14 bytes of Ethernet header at the front and the EtherType already set; the resolver
   * writes the destination and source MACs into bytes 0-11 (in place, no copy) and sends it,
   * or queues it while the neighbour is being resolved. The resolver owns the frame afterwards.
   * A frame with an `offload` (a TCP super-frame) goes to the link with it; it is never queued
   * (dropped and counted instead: unresolved_offload_discards).
   */
  resolve(nextHop: Ipv4Address, frame: Uint8Array, offload?: FrameOffload): ResolveOutcome;
  /** Registers a listener for failed resolutions (for ICMP host-unreachable, ping errors). */
  onResolutionFailed(listener: ResolutionFailedListener): void;
}
