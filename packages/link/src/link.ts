/**
 * The one seam between the stack and the world. A Link moves whole Ethernet frames: a TAP
 * device, one end of an in-memory wire, or a wrapper (capture, fault injection) around either.
 */
import { Counters } from './counters.ts';
import { ETHERNET_HEADER_LENGTH } from './ethernet.ts';
import type { MacAddress } from './mac.ts';

/**
 * What a link knows about a frame besides its bytes: the offloads of a TAP device in virtio-net
 * header mode (virtio-net.ts; docs/01-link.md, "The virtio-net header"). A plain frame has none:
 * every field here is about a frame the kernel and we agreed to treat specially.
 *
 * Offsets count from the first byte of the Ethernet header, as the kernel's csum_start does.
 */
export interface FrameOffload {
  /**
   * The transport checksum (TCP's, UDP's):
   * - 'unverified': nobody checked it; the receiver must (as for a plain frame);
   * - 'valid': the kernel checked it (VIRTIO_NET_HDR_F_DATA_VALID);
   * - 'partial': not computed at all (VIRTIO_NET_HDR_F_NEEDS_CSUM). The field at
   *   checksumStart + checksumOffset holds only the pseudo-header's sum; the sum of the bytes
   *   from checksumStart to the end, folded and complemented, is the real checksum. On receive
   *   the frame came from the kernel's own stack, so it is as good as verified; on send the
   *   kernel (or the segments it cuts) fills it in.
   */
  readonly checksum: 'unverified' | 'valid' | 'partial';
  /** 'partial' only: where the checksummed bytes start (the transport header). */
  readonly checksumStart: number;
  /** 'partial' only: where the checksum field is, from checksumStart (16 for TCP, 6 for UDP). */
  readonly checksumOffset: number;
  /**
   * 'tcpv4': a TCP/IPv4 super-frame, longer than the MTU allows, standing for segments of
   * `segmentSize` bytes of data each (the last may be shorter): what the kernel would have sent
   * (received) or will cut it into (sent). Its IPv4 total length covers the whole super-frame.
   * 'tcpv6': the same over IPv6 (VIRTIO_NET_HDR_GSO_TCPV6), its payload length covering it all.
   */
  readonly gso: 'none' | 'tcpv4' | 'tcpv6';
  /** 'tcpv4'/'tcpv6' only: data bytes per segment (the MSS the connection uses; gso_size). */
  readonly segmentSize: number;
  /** 'tcpv4'/'tcpv6' only: Ethernet, IP and TCP headers together, in bytes (hdr_len). */
  readonly headerLength: number;
}

/**
 * What a transport asks of the device when it sends (through IPv4's or IPv6's `send`): its
 * checksum left partial, and for a TCP super-frame the size of the segments to cut it into.
 */
export interface TransportOffloadRequest {
  /**
   * Where the transport's checksum field is, from the start of the IP payload (16 for TCP). The
   * transport wrote the pseudo-header's sum there, folded, not complemented, and left the rest
   * of the checksum to the device.
   */
  readonly checksumOffset: number;
  /** A TCP super-frame: data bytes per segment the device cuts it into (0: one segment). */
  readonly segmentSize: number;
  /** The transport header's length (TCP with options), for the device's hdr_len. */
  readonly transportHeaderLength: number;
}

/**
 * A transport's request in the frame's terms: offsets from the Ethernet header on, the transport
 * starting at `transportStart`. `gso` names the super-frame kind the IP layer can offer ('none'
 * for a transport that cannot be cut); one segment's worth of data is no super-frame.
 */
export function partialChecksumOffload(request: TransportOffloadRequest, transportStart: number, payloadLength: number, gso: 'none' | 'tcpv4' | 'tcpv6'): FrameOffload {
  const cut = gso !== 'none' && request.segmentSize > 0 && payloadLength - request.transportHeaderLength > request.segmentSize;
  return {
    checksum: 'partial',
    checksumStart: transportStart,
    checksumOffset: request.checksumOffset,
    gso: cut ? gso : 'none',
    segmentSize: cut ? request.segmentSize : 0,
    headerLength: cut ? transportStart + request.transportHeaderLength : 0,
  };
}

/**
 * Receives the frames of one wake-up. The array and the frames belong to the receiver.
 * `offloads`, when given, runs parallel to `frames`: `offloads[i]` says what the device knows
 * about `frames[i]` (undefined for a plain frame). Links without offloads never pass it.
 */
export type FrameHandler = (frames: readonly Uint8Array[], offloads?: readonly (FrameOffload | undefined)[]) => void;

export const LINK_COUNTERS = [
  'rx_frames',
  'rx_bytes',
  'tx_frames',
  'tx_bytes',
  'tx_dropped_too_big',
  'tx_dropped_closed',
  'tx_errors',
  'rx_dropped_no_receiver',
  'rx_dropped_iterator_full',
  // a capture (withCapture) that could not write its file and stopped; the link goes on
  'capture_write_failed',
] as const;
export type LinkCounterName = (typeof LINK_COUNTERS)[number];

export interface Link {
  /** A name for logs: `tap0`, `mem-a`, ... */
  readonly name: string;
  /** The stack's own MAC on this link. */
  readonly mac: MacAddress;
  /**
   * What Linux calls the MTU: the largest IP datagram the link carries (1500 on Ethernet).
   * The largest frame is `mtu + 14`.
   */
  readonly mtu: number;
  readonly counters: Counters<LinkCounterName>;
  readonly closed: boolean;
  /**
   * The largest TCP/IPv4 super-frame datagram the link takes with `gso: 'tcpv4'` (like Linux's
   * gso_max_size): 0 or absent when it takes none, so every datagram must fit the MTU. A TAP
   * device in virtio-net header mode says 65535.
   */
  readonly gsoMaxSize?: number;
  /**
   * Sends one whole frame (header included). Returns false, and counts why, when the frame is
   * dropped (larger than mtu + 14, link closed, device error). Never throws on a full device.
   * `offload` (only where `gsoMaxSize` says the link takes it) marks a super-frame or a
   * partial checksum for the device to finish; a link that does not know offloads ignores it.
   */
  send(frame: Uint8Array, offload?: FrameOffload): boolean;
  /**
   * True when `send` has copied the frame (or written it) by the time it returns, so the sender
   * may build its next frame in the same memory (the TAP device copies into its staging buffer).
   * Absent or false: the link may keep the frame (an in-memory wire, a delay line), and each
   * frame needs memory of its own.
   */
  readonly copiesFrames?: boolean;
  /**
   * Puts on the medium at once whatever `send` staged. A link may hold sent frames for a moment
   * to hand the device a batch (the TAP device does, until the end of the current run of
   * JavaScript at the latest); the dispatcher calls this at the end of each received batch,
   * after the layers above had their say. Links that put every frame out at once do nothing.
   */
  flush?(): void;
  /**
   * Frames a sender should hand this link in one run of JavaScript before letting the event loop
   * read what came back (0 or absent: no limit). A TAP device says 256: each frame written makes
   * the kernel answer at once into a queue of 1000 towards us, so a sender that writes thousands
   * of frames in one go, reading nothing, makes the kernel drop its own ACKs. TCP holds the rest
   * of its window until the next turn of the event loop (docs/05-tcp.md).
   */
  readonly sendBurstLimit?: number;
  /**
   * Reads what the medium holds now and delivers it to the receiver before returning, as a
   * wake-up would. Node's event loop runs timers before it polls for I/O, so after a stall (a
   * long burst, a process that lost its CPU) a retransmission timer would fire while the ACKs
   * that make it needless wait unread in the device; the stack calls this first
   * (TimerQueue.beforeFiring). Optional: links that deliver as frames come have nothing to read.
   */
  receivePending?(): void;
  /** Sets the one batched receiver (replacing any earlier one); `undefined` detaches. */
  setReceiver(handler: FrameHandler | undefined): void;
  /**
   * Received frames one at a time, for readable examples: `for await (const f of link.frames())`.
   * Takes the receiver slot. Ends when the link closes.
   */
  frames(): AsyncIterableIterator<Uint8Array>;
  /** Runs `listener` once when the link closes (at once if it already has). */
  onClose(listener: () => void): void;
  /** Releases the link; ends any `frames()` iterator. Idempotent. */
  close(): void;
}

/** The largest frame a link with this MTU sends: Ethernet header plus one full datagram. */
export function maxFrameLength(mtu: number): number {
  return mtu + ETHERNET_HEADER_LENGTH;
}

/**
 * Shared plumbing for Link implementations: the receiver slot, the async iterator (bounded: a
 * consumer that does not keep up loses frames, counted, rather than growing memory), counters and
 * the MTU check on send. Subclasses implement `transmit` and call `deliver` with received frames.
 */
export abstract class BaseLink implements Link {
  readonly counters = new Counters<LinkCounterName>('link', LINK_COUNTERS);
  // Counted on every frame: the cells themselves, no lookup by name.
  private readonly rxFrames = this.counters.counter('rx_frames');
  private readonly rxBytes = this.counters.counter('rx_bytes');
  private readonly txFrames = this.counters.counter('tx_frames');
  private readonly txBytes = this.counters.counter('tx_bytes');
  private receiver: FrameHandler | undefined;
  private isClosed = false;
  private readonly closeListeners: (() => void)[] = [];

  /** Frames the iterator holds at most before dropping new ones. */
  static iteratorCapacity = 4096;

  /** See Link.gsoMaxSize; a subclass whose medium takes super-frames overrides it. */
  get gsoMaxSize(): number {
    return 0;
  }

  constructor(
    readonly name: string,
    readonly mac: MacAddress,
    readonly mtu: number,
  ) {}

  get closed(): boolean {
    return this.isClosed;
  }

  send(frame: Uint8Array, offload?: FrameOffload): boolean {
    if (this.isClosed) {
      this.counters.inc('tx_dropped_closed');
      return false;
    }
    const largest = offload !== undefined && offload.gso !== 'none' && this.gsoMaxSize > 0 ? this.gsoMaxSize : this.mtu;
    if (frame.length > largest + ETHERNET_HEADER_LENGTH) {
      this.counters.inc('tx_dropped_too_big');
      return false;
    }
    if (!this.transmit(frame, offload)) {
      this.counters.inc('tx_errors');
      return false;
    }
    this.txFrames.value++;
    this.txBytes.value += frame.length;
    return true;
  }

  /** See Link.sendBurstLimit; a subclass whose medium answers into a bounded queue overrides it. */
  get sendBurstLimit(): number {
    return 0;
  }

  /** See Link.flush: a link that stages frames overrides it; here every frame went out in `send`. */
  flush(): void {}

  /** Puts one frame on the medium; false when it could not. Media without offloads ignore `offload`. */
  protected abstract transmit(frame: Uint8Array, offload?: FrameOffload): boolean;

  /** Called by subclasses with the frames of one wake-up (and, in offload mode, what each one carries). */
  protected deliver(frames: readonly Uint8Array[], offloads?: readonly (FrameOffload | undefined)[]): void {
    if (this.isClosed || frames.length === 0) return;
    let bytes = 0;
    for (let i = 0; i < frames.length; i++) bytes += frames[i]!.length;
    this.rxFrames.value += frames.length;
    this.rxBytes.value += bytes;
    const r = this.receiver;
    if (r) r(frames, offloads);
    else this.counters.inc('rx_dropped_no_receiver', frames.length);
  }

  setReceiver(handler: FrameHandler | undefined): void {
    this.receiver = handler;
  }

  /** Runs `listener` once when the link closes. */
  onClose(listener: () => void): void {
    if (this.isClosed) listener();
    else this.closeListeners.push(listener);
  }

  frames(): AsyncIterableIterator<Uint8Array> {
    return framesOf(this, (l) => this.onClose(l));
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.receiver = undefined;
    this.release();
    for (const l of this.closeListeners.splice(0)) l();
  }

  /** Frees the medium (fd, peer); called once by close(). */
  protected abstract release(): void;
}

/**
 * An async iterator over any link's frames, for wrappers that are not BaseLinks. Bounded by
 * BaseLink.iteratorCapacity; frames past it are dropped and counted.
 */
export function framesOf(link: Link, onClose: (listener: () => void) => void): AsyncIterableIterator<Uint8Array> {
  const queue: Uint8Array[] = [];
  let head = 0;
  let wake: ((r: IteratorResult<Uint8Array>) => void) | undefined;
  let done = link.closed;
  link.setReceiver((frames) => {
    for (const f of frames) {
      if (wake) {
        const w = wake;
        wake = undefined;
        w({ value: f, done: false });
      } else if (queue.length - head < BaseLink.iteratorCapacity) {
        queue.push(f);
      } else {
        link.counters.inc('rx_dropped_iterator_full');
      }
    }
  });
  const finish = (): void => {
    done = true;
    if (wake) {
      const w = wake;
      wake = undefined;
      w({ value: undefined, done: true });
    }
  };
  onClose(finish);
  const iterator: AsyncIterableIterator<Uint8Array> = {
    next(): Promise<IteratorResult<Uint8Array>> {
      if (head < queue.length) {
        const value = queue[head++]!;
        if (head > 1024 && head * 2 > queue.length) {
          queue.splice(0, head);
          head = 0;
        }
        return Promise.resolve({ value, done: false });
      }
      if (done) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => {
        wake = resolve;
      });
    },
    return(): Promise<IteratorResult<Uint8Array>> {
      link.setReceiver(undefined);
      finish();
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

/**
 * Base for middleware links (capture, fault injection): wraps any Link, sees every frame in
 * both directions, and otherwise looks exactly like the link inside it.
 */
export abstract class LinkWrapper implements Link {
  private receiver: FrameHandler | undefined;

  constructor(protected readonly inner: Link) {
    inner.setReceiver((frames, offloads) => this.receive(frames, offloads));
  }

  get name(): string {
    return this.inner.name;
  }
  get mac(): MacAddress {
    return this.inner.mac;
  }
  get mtu(): number {
    return this.inner.mtu;
  }
  get counters(): Counters<LinkCounterName> {
    return this.inner.counters;
  }
  get closed(): boolean {
    return this.inner.closed;
  }
  get gsoMaxSize(): number {
    return this.inner.gsoMaxSize ?? 0;
  }
  get sendBurstLimit(): number {
    return this.inner.sendBurstLimit ?? 0;
  }

  /** Default: pass the frame down unchanged. */
  send(frame: Uint8Array, offload?: FrameOffload): boolean {
    return this.inner.send(frame, offload);
  }

  receivePending(): void {
    this.inner.receivePending?.();
  }

  /** Frames this wrapper holds itself (a delay line) are its own business; the inner link's staged ones go out. */
  flush(): void {
    this.inner.flush?.();
  }

  /**
   * Default: pass received frames up unchanged. Override to look at or change them; an override
   * that reorders or replaces frames must keep `offloads` parallel to them (or drop it, which
   * makes the layers above verify every checksum, and a 'partial' one fails).
   */
  protected receive(frames: readonly Uint8Array[], offloads?: readonly (FrameOffload | undefined)[]): void {
    this.deliverUp(frames, offloads);
  }

  protected deliverUp(frames: readonly Uint8Array[], offloads?: readonly (FrameOffload | undefined)[]): void {
    if (frames.length === 0) return;
    const r = this.receiver;
    if (r) r(frames, offloads);
    else this.inner.counters.inc('rx_dropped_no_receiver', frames.length);
  }

  setReceiver(handler: FrameHandler | undefined): void {
    this.receiver = handler;
  }

  frames(): AsyncIterableIterator<Uint8Array> {
    return framesOf(this, (l) => this.onClose(l));
  }

  onClose(listener: () => void): void {
    this.inner.onClose(listener);
  }

  close(): void {
    this.inner.close();
  }
}
