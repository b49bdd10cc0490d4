/**
 * A minimal NeighbourResolver for unit tests of IPv4 without ARP: every neighbour "is at" a MAC
 * derived from its address, frames are recorded (and optionally sent on the dispatcher), and a
 * test can make resolution fail to see what IPv4 does with the dropped frames.
 */
import type { NeighbourResolver, ResolutionFailedListener, ResolveOutcome } from '@tapstack/arp';
import { MacAddress, type EtherTypeDispatcher, type FrameOffload, type Ipv4Address } from '@tapstack/link';

export function macFor(ip: Ipv4Address): MacAddress {
  return MacAddress.parse(
    `02:00:${[ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`,
  );
}

export class RecordingResolver implements NeighbourResolver {
  readonly sent: { nextHop: Ipv4Address; frame: Uint8Array; offload?: FrameOffload }[] = [];
  outcome: ResolveOutcome = 'sent';
  private readonly listeners: ResolutionFailedListener[] = [];

  constructor(
    private readonly ownMac: MacAddress,
    private readonly dispatcher?: EtherTypeDispatcher,
    /** Known neighbours; others get macFor(ip). */
    private readonly macs: ReadonlyMap<Ipv4Address, MacAddress> = new Map(),
  ) {}

  resolve(nextHop: Ipv4Address, frame: Uint8Array, offload?: FrameOffload): ResolveOutcome {
    const dst = nextHop === 0xffffffff || (nextHop & 0xff) === 0xff ? MacAddress.BROADCAST : this.macs.get(nextHop) ?? macFor(nextHop);
    dst.writeTo(frame, 0);
    this.ownMac.writeTo(frame, 6);
    this.sent.push(offload ? { nextHop, frame, offload } : { nextHop, frame });
    if (this.outcome === 'sent' && this.dispatcher) this.dispatcher.send(frame, offload);
    return this.outcome;
  }

  onResolutionFailed(listener: ResolutionFailedListener): void {
    this.listeners.push(listener);
  }

  /** Pretends resolution of `nextHop` failed with the frames queued so far. */
  fail(nextHop: Ipv4Address): void {
    const frames = this.sent.filter((s) => s.nextHop === nextHop).map((s) => s.frame);
    for (const l of this.listeners) l(nextHop, frames);
  }
}
