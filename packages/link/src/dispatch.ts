/**
 * The receive side of the link layer: takes every frame a Link delivers, drops what is not for
 * us (runts, other hosts' unicast, multicast groups we have not joined, unknown EtherTypes),
 * counting each reason, and hands the rest to the handler registered for its EtherType.
 * Upper layers register themselves; nothing here knows what ARP or IPv4 are.
 */
import debugFactory from 'debug';
import { Counters } from './counters.ts';
import { ETHERNET_HEADER_LENGTH, EthernetField, formatEthernet, readEtherType } from './ethernet.ts';
import type { FrameOffload, Link } from './link.ts';
import { MacAddress } from './mac.ts';

const log = debugFactory('tapstack:link');

/**
 * Handles one frame of a registered EtherType. `frame` is the whole frame (header included;
 * the payload starts at byte 14). It stays valid after the call, so a handler may keep it.
 * `offload` is what the device said about the frame (virtio-net header mode only; see
 * FrameOffload): a handler that does not care may ignore it.
 */
export type EtherTypeHandler = (frame: Uint8Array, offload?: FrameOffload) => void;

export const DISPATCH_COUNTERS = [
  'rx_delivered',
  'rx_runt',
  'rx_not_for_us',
  'rx_multicast_not_joined',
  'rx_unknown_ethertype',
  'rx_handler_error',
] as const;
export type DispatchCounterName = (typeof DISPATCH_COUNTERS)[number];

export interface DispatcherOptions {
  /** Deliver unicast frames for other MACs too (default false). */
  promiscuous?: boolean;
  /** Trace every frame in and out as one line (default: debug's `tapstack:link`, when enabled). */
  trace?: (line: string) => void;
  /**
   * How a traced frame is written: the link layer alone knows only Ethernet (formatEthernet);
   * the stack passes a describer that also decodes ARP, IPv4, ICMP and UDP.
   */
  describe?: (frame: Uint8Array) => string;
}

export class EtherTypeDispatcher {
  readonly counters = new Counters<DispatchCounterName>('link', DISPATCH_COUNTERS);
  private readonly rxDelivered = this.counters.counter('rx_delivered');
  private readonly handlers = new Map<number, EtherTypeHandler>();
  private readonly batchEndListeners: (() => void)[] = [];
  private batchOpen = false;
  private readonly groups: { mac: MacAddress; users: number }[] = [];
  private readonly promiscuous: boolean;
  private readonly trace: ((line: string) => void) | undefined;
  private readonly describe: (frame: Uint8Array) => string;

  constructor(
    readonly link: Link,
    options: DispatcherOptions = {},
  ) {
    this.promiscuous = options.promiscuous ?? false;
    this.trace = options.trace ?? (log.enabled ? (line: string) => log(line) : undefined);
    this.describe = options.describe ?? formatEthernet;
    link.setReceiver((frames, offloads) => {
      this.batchOpen = true;
      if (offloads) for (let i = 0; i < frames.length; i++) this.input(frames[i]!, offloads[i]);
      else for (let i = 0; i < frames.length; i++) this.input(frames[i]!);
      this.endBatch();
    });
  }

  /**
   * Runs `listener` after every batch of received frames (one wake-up of the device) has gone
   * through the handlers: the place for work that is cheaper once per batch than once per frame,
   * such as one ACK for several in-order segments. Listeners run in the order registered; then
   * the link's staged frames go out (Link.flush), what the listeners sent included.
   */
  onBatchEnd(listener: () => void): void {
    this.batchEndListeners.push(listener);
  }

  /** The end of one received batch: the listeners, then the link's flush. Never throws. */
  private endBatch(): void {
    this.batchOpen = false;
    const listeners = this.batchEndListeners;
    for (let i = 0; i < listeners.length; i++) {
      try {
        listeners[i]!();
      } catch (err) {
        this.counters.inc('rx_handler_error');
        log('end-of-batch listener threw: %O', err);
      }
    }
    this.link.flush?.();
  }

  /**
   * True while the frames of a received batch go through the handlers: the onBatchEnd listeners
   * will run before this run of JavaScript ends, so work may wait for them. False for a frame
   * fed to `input` on its own (a test, a loopback), which gets no batch end.
   */
  get inBatch(): boolean {
    return this.batchOpen;
  }

  /** Registers the handler for an EtherType. A second registration for the same type throws. */
  register(etherType: number, handler: EtherTypeHandler): void {
    if (!Number.isInteger(etherType) || etherType < 0x0600 || etherType > 0xffff) {
      throw new RangeError(`EtherType 0x${etherType.toString(16)} is not a valid EtherType (0x0600-0xffff)`);
    }
    if (this.handlers.has(etherType)) {
      throw new Error(`EtherType 0x${etherType.toString(16).padStart(4, '0')} already has a handler`);
    }
    this.handlers.set(etherType, handler);
  }

  unregister(etherType: number): void {
    this.handlers.delete(etherType);
  }

  /**
   * Accept frames sent to this multicast MAC. Joins are counted, as a NIC's multicast filter
   * counts its users (Linux dev_mc_add): IPv6 joins the 33:33 MAC of each group it is in, and two
   * groups may share one MAC (the solicited-node group of a link-local and of a global address
   * made from the same MAC are the same group), so a MAC is left only when its last user leaves.
   */
  joinMulticast(group: MacAddress): void {
    if (!group.isMulticast) throw new Error(`${group} is not a multicast address`);
    const joined = this.groups.find((g) => g.mac.equals(group));
    if (joined) joined.users++;
    else this.groups.push({ mac: group, users: 1 });
  }

  /** Undoes one joinMulticast; the MAC is no longer accepted when every join is undone. */
  leaveMulticast(group: MacAddress): void {
    const i = this.groups.findIndex((g) => g.mac.equals(group));
    if (i >= 0 && --this.groups[i]!.users === 0) this.groups.splice(i, 1);
  }

  /** The multicast MACs accepted now (broadcast is always accepted and not listed). */
  get multicastGroups(): readonly MacAddress[] {
    return this.groups.map((g) => g.mac);
  }

  /** Sends a whole frame on the link (with its offload, if any), tracing it when tracing is on. */
  send(frame: Uint8Array, offload?: FrameOffload): boolean {
    if (this.trace) this.trace(`out ${this.describe(frame)}`);
    return this.link.send(frame, offload);
  }

  /** Classifies one received frame and hands it to its handler. Never throws. */
  input(frame: Uint8Array, offload?: FrameOffload): void {
    if (this.trace) this.trace(`in  ${this.describe(frame)}`);
    if (frame.length < ETHERNET_HEADER_LENGTH) {
      this.counters.inc('rx_runt');
      return;
    }
    if (frame[0]! & 1) {
      // group address: broadcast, or a multicast group we joined
      if (!isBroadcastAt(frame) && !this.joined(frame)) {
        this.counters.inc('rx_multicast_not_joined');
        return;
      }
    } else if (!this.promiscuous && !MacAddress.equalsAt(this.link.mac, frame, EthernetField.DESTINATION)) {
      this.counters.inc('rx_not_for_us');
      return;
    }
    const type = readEtherType(frame);
    const handler = this.handlers.get(type);
    if (!handler) {
      this.counters.inc('rx_unknown_ethertype');
      return;
    }
    this.rxDelivered.value++;
    try {
      handler(frame, offload);
    } catch (err) {
      // A bug in a layer above must not take the stack down with one bad frame.
      this.counters.inc('rx_handler_error');
      log('handler for 0x%s threw: %O', type.toString(16), err);
    }
  }

  private joined(frame: Uint8Array): boolean {
    for (const g of this.groups) if (MacAddress.equalsAt(g.mac, frame, 0)) return true;
    return false;
  }
}

function isBroadcastAt(frame: Uint8Array): boolean {
  return (frame[0]! & frame[1]! & frame[2]! & frame[3]! & frame[4]! & frame[5]!) === 0xff;
}
