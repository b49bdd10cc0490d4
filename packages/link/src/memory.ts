/**
 * An in-memory Ethernet wire between two links in one process, for simulations and examples
 * that need no root. What one end sends, the other receives, in order, batched per tick (all
 * frames sent during one turn of the event loop arrive as one batch, as a TAP read does).
 *
 * With a `clock` and `latencyMs`, delivery happens on that clock instead, so a simulation on a
 * VirtualClock controls exactly when frames cross.
 */
import type { Clock, Timer } from './clock.ts';
import { BaseLink } from './link.ts';
import { MacAddress } from './mac.ts';

export interface MemoryLinkOptions {
  /** MTU of both ends (default 1500). */
  mtu?: number;
  /** MACs of the two ends (default 02:00:00:00:00:01 and 02:00:00:00:00:02). */
  macs?: readonly [MacAddress, MacAddress];
  /** Names for logs (default mem-a, mem-b). */
  names?: readonly [string, string];
  /** Deliver on this clock after `latencyMs` instead of on the next microtask. */
  clock?: Clock;
  latencyMs?: number;
  /** Frames in flight per direction before new ones are dropped (default 65536). */
  capacity?: number;
}

export class MemoryLink extends BaseLink {
  private peer: MemoryLink | undefined;
  private outbox: Uint8Array[] = [];
  private scheduled = false;
  private pendingTimer: Timer | undefined;

  private constructor(
    name: string,
    mac: MacAddress,
    mtu: number,
    private readonly clock: Clock | undefined,
    private readonly latencyMs: number,
    private readonly capacity: number,
  ) {
    super(name, mac, mtu);
  }

  /** Two links joined by a virtual wire. */
  static pair(options: MemoryLinkOptions = {}): [MemoryLink, MemoryLink] {
    const mtu = options.mtu ?? 1500;
    const macs = options.macs ?? [MacAddress.parse('02:00:00:00:00:01'), MacAddress.parse('02:00:00:00:00:02')];
    const names = options.names ?? ['mem-a', 'mem-b'];
    const latency = options.latencyMs ?? 0;
    const capacity = options.capacity ?? 65536;
    const a = new MemoryLink(names[0], macs[0], mtu, options.clock, latency, capacity);
    const b = new MemoryLink(names[1], macs[1], mtu, options.clock, latency, capacity);
    a.peer = b;
    b.peer = a;
    return [a, b];
  }

  /** True while frames sent by this end have not reached the other yet. */
  get inFlight(): number {
    return this.outbox.length;
  }

  protected transmit(frame: Uint8Array): boolean {
    if (!this.peer || this.peer.closed) return true; // a cable with nobody on the other end
    if (this.outbox.length >= this.capacity) return false;
    // The sender may reuse its buffer once send() returns: the wire keeps its own copy.
    this.outbox.push(new Uint8Array(frame)); // a copy, also of a Buffer
    if (!this.scheduled) {
      this.scheduled = true;
      if (this.clock) this.pendingTimer = this.clock.setTimer(this.latencyMs, () => this.deliverOutbox());
      else queueMicrotask(() => this.deliverOutbox());
    }
    return true;
  }

  private deliverOutbox(): void {
    this.scheduled = false;
    this.pendingTimer = undefined;
    const batch = this.outbox;
    this.outbox = [];
    const peer = this.peer;
    if (peer && !peer.closed) peer.deliverFromWire(batch);
  }

  private deliverFromWire(frames: Uint8Array[]): void {
    this.deliver(frames);
  }

  protected release(): void {
    // Frames still on the wire are lost with the cable, and no delivery timer outlives it.
    this.pendingTimer?.cancel();
    this.pendingTimer = undefined;
    this.outbox = [];
  }
}

/** Resolves once neither end of any of the given links has frames in flight (microtask wires). */
export async function settle(...links: MemoryLink[]): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    await new Promise<void>((r) => setImmediate(r));
    if (links.every((l) => l.inFlight === 0)) {
      await new Promise<void>((r) => setImmediate(r));
      if (links.every((l) => l.inFlight === 0)) return;
    }
  }
  throw new Error('settle: links never went quiet (a frame loop?)');
}
