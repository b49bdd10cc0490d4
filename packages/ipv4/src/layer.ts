/**
 * The IPv4 layer of a host (RFC 791, RFC 1122 section 3): validates what arrives, reassembles
 * fragments, hands datagrams for us to the protocol registered for them, and sends datagrams
 * through the routing table and the neighbour resolver, fragmenting them to the link MTU.
 * Nothing is forwarded: a host that is not the destination drops the datagram (counted).
 *
 * Upper layers plug in through the protocol dispatch table (`register(1, icmpHandler)`), the
 * same way this layer plugs into the EtherType table below it. Errors this layer discovers
 * (no handler for a protocol, a reassembly timeout, a neighbour that never answered) are handed
 * to an error reporter that ICMP installs, since ICMP sits above IPv4 and IPv4 must not know it.
 */
import debugFactory from 'debug';
import type { NeighbourResolver, ResolveOutcome } from '@tapstack/arp';
import {
  Counters,
  hotPathLogging,
  ETHERNET_HEADER_LENGTH,
  EtherType,
  IPV4_BROADCAST,
  formatIpv4,
  isIpv4Loopback,
  isIpv4Multicast,
  partialChecksumOffload,
  readEtherType,
  type Clock,
  type EtherTypeDispatcher,
  type FrameOffload,
  type TransportOffloadRequest,
  type Ipv4Address,
  FrameMemory,
} from '@tapstack/link';
import { checksumAdd, foldChecksum } from './checksum.ts';
import { Ipv4Cidr } from './cidr.ts';
import {
  IPV4_MAX_DATAGRAM_LENGTH,
  IPV4_MIN_HEADER_LENGTH,
  IpProtocol,
  Ipv4Flag,
  Ipv4Packet,
  formatIpv4Packet,
  writePlainHeader,
  type Ipv4CheckFailure,
} from './header.ts';
import { buildDatagram, buildFrames, payloadOf, type DatagramHeader } from './fragment.ts';
import { REASSEMBLY_COUNTERS, Reassembler, type ReassemblyLimits } from './reassembly.ts';
import { RouteTable } from './routes.ts';

const log = debugFactory('tapstack:ipv4');
/** `log.enabled` for the per-frame lines, read once per run (see hot-path-log.ts in @tapstack/link). */
const logging = hotPathLogging(log);

export const IPV4_COUNTERS = [
  'rx_packets',
  'rx_delivered',
  // integrity, in the order checked
  'rx_truncated',
  'rx_bad_version',
  'rx_bad_ihl',
  'rx_header_truncated',
  'rx_bad_checksum',
  'rx_bad_total_length',
  // sanity of the addresses
  'rx_source_multicast',
  'rx_source_broadcast',
  'rx_source_loopback',
  'rx_source_unspecified',
  'rx_source_is_ours',
  'rx_not_forwarded',
  'rx_unicast_in_link_broadcast',
  // delivery
  'rx_unknown_protocol',
  'rx_group_unwanted',
  'rx_handler_error',
  ...REASSEMBLY_COUNTERS,
  'tx_packets',
  'tx_fragments',
  'tx_frames',
  'tx_queued',
  'tx_dropped',
  'tx_no_route',
  'tx_unspecified_destination',
  'tx_fragmentation_needed',
  'tx_too_long',
  'tx_loopback',
  'tx_loopback_dropped',
  'tx_resolution_failed',
] as const;
export type Ipv4CounterName = (typeof IPV4_COUNTERS)[number];

const CHECK_FAILURE_COUNTER: Record<Ipv4CheckFailure, Ipv4CounterName> = {
  truncated: 'rx_truncated',
  bad_version: 'rx_bad_version',
  bad_ihl: 'rx_bad_ihl',
  header_truncated: 'rx_header_truncated',
  bad_checksum: 'rx_bad_checksum',
  bad_total_length: 'rx_bad_total_length',
};

/**
 * How a datagram handed to a protocol handler was addressed. The layer keeps one of these and
 * rewrites it for every datagram (see `Ipv4Handler`): read it during the call, copy what you
 * need later.
 */
export interface Ipv4DeliveryInfo {
  /** To our address, to a broadcast address (limited or our prefix's), or to a multicast group. */
  readonly destinationKind: 'unicast' | 'broadcast' | 'multicast';
  /** It arrived in a link-layer broadcast or multicast frame (RFC 1122 forbids ICMP errors about these). */
  readonly linkGroup: boolean;
  /** It was rebuilt from fragments. */
  readonly reassembled: boolean;
  /**
   * The whole Ethernet frame the datagram arrived in, when it came in one frame; undefined when
   * it was reassembled or looped back. The datagram is this frame from byte 14 on (then
   * `packet.buffer` is this frame too), so the handler's payload starts at byte 14 + the header
   * length. The handler owns the frame: nothing below looks at it again, so it may keep it or
   * turn it into its answer (`sendInPlace`).
   */
  readonly frame?: Uint8Array;
  /**
   * What the link said about that frame (a TAP device in virtio-net header mode), given only to
   * protocols registered with `offloads: true`: the transport checksum already checked
   * ('valid') or never computed ('partial', from the kernel's own stack), and for a TCP
   * super-frame (`gso: 'tcpv4'`) the segment size the sender used. Other protocols never see a
   * partial checksum: this layer finishes it for them first (see `finishChecksum`).
   */
  readonly offload?: FrameOffload;
}

/**
 * Receives one datagram for a protocol, without anything allocated for it (RFC 1122 3.2.1's
 * checks done, reassembled if it was fragmented).
 *
 * `packet` is a view of the datagram: its header through getters (`packet.source`,
 * `packet.protocol`, ...) and its payload where it lies, `packet.buffer` from
 * `packet.payloadOffset` for `packet.payloadLength` bytes. `packet.payload` gives the payload
 * as a Uint8Array of its own when a handler wants one (that is a view made on the spot, an
 * allocation; the echo path does without).
 *
 * The rule for keeping things: `packet` and `info` are the layer's, one of each re-pointed at
 * every datagram, so they are valid only during the call; a handler that keeps something for
 * later keeps values read from them (`Ipv4Repr.parse(packet)`, `{ ...info }`), not the objects.
 * The bytes are the handler's: the link hands every frame up once and never writes it again, so
 * `packet.buffer`, `packet.bytes`, `packet.payload` and any view of them may be kept (UDP queues
 * its datagrams as views, TCP its segments' data) or written (ICMP turns a request into its
 * reply).
 */
export type Ipv4Handler = (packet: Ipv4Packet, info: Ipv4DeliveryInfo) => void;

export interface ProtocolOptions {
  /** Also deliver datagrams sent to a broadcast address (default false). */
  broadcast?: boolean;
  /** Also deliver datagrams sent to a multicast group (default false). */
  multicast?: boolean;
  /** The handler reads `info.offload` (TCP does): partial checksums and super-frames reach it as they are. */
  offloads?: boolean;
}

/**
 * Offloads a transport asks for on a datagram it sends (`Ipv4SendRequest.offload`), in the
 * transport's own terms; this layer turns them into the frame's FrameOffload. Only worth asking
 * for on a link with `gsoMaxSize` (see `Ipv4Layer.gsoMaxSize`); elsewhere this layer does the
 * work itself (finishes the checksum) and the datagram must fit the MTU.
 */
export type Ipv4SendOffload = TransportOffloadRequest;

/** Writes a payload straight into the outgoing frame (saves a copy; ICMP echo replies use it). */
export interface PayloadWriter {
  readonly length: number;
  /** Fills `target` (exactly `length` bytes). */
  write(target: Uint8Array): void;
  /**
   * True when `write` sets every one of the `length` bytes: the frame may then be memory that
   * held an earlier frame (see `Link.copiesFrames`). Absent: the target starts zeroed.
   */
  readonly writesEveryByte?: boolean;
  /** `write` into `frame` from `offset` on, without a view of the payload's bytes (optional; TCP's segments). */
  writeAt?(frame: Uint8Array, offset: number): void;
}

export interface Ipv4SendRequest {
  readonly destination: Ipv4Address;
  readonly protocol: number;
  readonly payload: Uint8Array | PayloadWriter;
  /** Default: the interface address. */
  readonly source?: Ipv4Address;
  /** Default: the layer's TTL (64). */
  readonly ttl?: number;
  /** Set DF; a datagram too big for the link is then refused with `fragmentation_needed`. */
  readonly dontFragment?: boolean;
  readonly dscp?: number;
  /**
   * IP options, as they go in the header (a multiple of 4 bytes, at most 40; ICMP echoes a
   * request's). In fragments after the first, options without the copy flag become no-ops, as
   * Linux's ip_options_fragment does (the header keeps its length).
   */
  readonly options?: Uint8Array;
  /** Leave the checksum (and the segmentation of a TCP super-frame) to the link: see Ipv4SendOffload. */
  readonly offload?: Ipv4SendOffload;
}

/**
 * What `send` did: `sent` (every frame left), `queued` (waiting for ARP), `dropped` (the
 * resolver or link refused a frame), or why it did not try: no route, DF set on a datagram
 * bigger than the MTU, more than 65535 bytes, layer closed.
 */
export type Ipv4SendOutcome = 'sent' | 'queued' | 'dropped' | 'no_route' | 'fragmentation_needed' | 'too_long' | 'closed';

/** Problems this layer finds that deserve an ICMP error (RFC 792 / RFC 1122). */
export type Ipv4ErrorKind =
  /** A datagram for us carried a protocol nobody registered: destination unreachable, code 2. */
  | 'protocol-unreachable'
  /** Fragments did not complete in time: time exceeded, code 1 (only when offset 0 had arrived). */
  | 'reassembly-timeout'
  /** A datagram we originated was dropped because ARP failed: destination unreachable, code 1, told locally. */
  | 'host-unreachable';

export interface Ipv4ErrorContext {
  readonly linkGroup: boolean;
  readonly destinationKind: Ipv4DeliveryInfo['destinationKind'];
  /** The datagram was ours (host-unreachable): report to local listeners, not on the wire. */
  readonly local: boolean;
}

/** Installed by ICMP. `datagram` is the offending datagram's header plus at least 8 bytes of it. */
export interface Ipv4ErrorReporter {
  report(kind: Ipv4ErrorKind, datagram: Uint8Array, context: Ipv4ErrorContext): void;
}

export interface Ipv4LayerOptions {
  dispatcher: EtherTypeDispatcher;
  resolver: NeighbourResolver;
  clock: Clock;
  /** The interface address and prefix, e.g. Ipv4Cidr.parse('10.0.0.2/24'). */
  address: Ipv4Cidr;
  /** Default gateway (must be on the connected prefix). */
  gateway?: Ipv4Address;
  routes?: readonly { destination: Ipv4Cidr; gateway?: Ipv4Address }[];
  /** TTL of datagrams we send (default 64, Linux's ip_default_ttl). */
  ttl?: number;
  reassembly?: Partial<ReassemblyLimits>;
  /** Largest datagram per frame (default: the link's MTU). */
  mtu?: number;
  /** Start of the identification counter (default random). */
  random?: () => number;
}

interface ProtocolEntry {
  readonly handler: Ipv4Handler;
  readonly broadcast: boolean;
  readonly multicast: boolean;
  readonly offloads: boolean;
}

/** Datagrams to our own address waiting to be delivered locally. */
const LOOPBACK_QUEUE_LIMIT = 256;

export class Ipv4Layer {
  readonly counters = new Counters<Ipv4CounterName>('ipv4', IPV4_COUNTERS);
  // Counted on every datagram: the cells themselves, no lookup by name.
  private readonly rxPackets = this.counters.counter('rx_packets');
  private readonly rxDelivered = this.counters.counter('rx_delivered');
  private readonly txPackets = this.counters.counter('tx_packets');
  private readonly txFrames = this.counters.counter('tx_frames');
  readonly routes: RouteTable;
  readonly reassembly: Reassembler;
  readonly address: Ipv4Cidr;
  readonly ttl: number;
  readonly mtu: number;
  private readonly protocols: (ProtocolEntry | undefined)[] = new Array(256).fill(undefined);
  private readonly dispatcher: EtherTypeDispatcher;
  private readonly resolver: NeighbourResolver;
  private reporter: Ipv4ErrorReporter | undefined;
  private nextId: number;
  private closed = false;
  private loopback: Uint8Array[] = [];
  /** The memory outgoing frames are built in: one reused buffer on a link that copies them. */
  private readonly txMemory = new FrameMemory();
  /** The receive path's one datagram view and one delivery info, re-pointed per datagram (see Ipv4Handler). */
  private readonly rxView = new Ipv4Packet(EMPTY);
  private readonly rxInfo: MutableDeliveryInfo = newDeliveryInfo();
  /** A handler is running (a datagram fed in from inside one gets views of its own). */
  private delivering = false;

  constructor(options: Ipv4LayerOptions) {
    this.dispatcher = options.dispatcher;
    this.resolver = options.resolver;
    this.address = options.address;
    this.ttl = options.ttl ?? 64;
    this.mtu = options.mtu ?? options.dispatcher.link.mtu;
    if (this.mtu < 68) throw new RangeError(`an IPv4 link needs an MTU of at least 68 (RFC 791), got ${this.mtu}`);
    this.nextId = Math.floor((options.random ?? Math.random)() * 0x10000) & 0xffff;
    this.routes = new RouteTable(options.dispatcher.link.name);
    this.routes.add(this.address.networkCidr, undefined, 'connected');
    for (const r of options.routes ?? []) this.routes.add(r.destination, r.gateway);
    if (options.gateway !== undefined) this.routes.add(new Ipv4Cidr(0 as Ipv4Address, 0), options.gateway);
    this.reassembly = new Reassembler(options.clock, this.counters, options.reassembly, (quote) => {
      if (quote) this.reportError('reassembly-timeout', quote, { linkGroup: false, destinationKind: 'unicast', local: false });
    });
    this.dispatcher.register(EtherType.IPV4, (frame, offload) => this.input(frame, offload));
    this.resolver.onResolutionFailed((nextHop, frames) => this.resolutionFailed(nextHop, frames));
  }

  /**
   * Registers the handler for an IP protocol number (1 ICMP, 6 TCP, 17 UDP, ...). A second
   * registration for the same protocol throws.
   */
  register(protocol: number, handler: Ipv4Handler, options: ProtocolOptions = {}): void {
    if (!Number.isInteger(protocol) || protocol < 0 || protocol > 255) {
      throw new RangeError(`IP protocol ${protocol} must be an integer 0-255`);
    }
    if (this.protocols[protocol]) throw new Error(`IP protocol ${protocol} already has a handler`);
    this.protocols[protocol] = { handler, broadcast: options.broadcast ?? false, multicast: options.multicast ?? false, offloads: options.offloads ?? false };
  }

  unregister(protocol: number): void {
    this.protocols[protocol] = undefined;
  }

  /**
   * Runs `listener` after each batch of received frames (the link dispatcher's end-of-batch
   * hook), for work a transport does once per batch rather than per datagram: TCP sends its
   * coalesced ACKs there.
   */
  onBatchEnd(listener: () => void): void {
    this.dispatcher.onBatchEnd(listener);
  }

  /** True while a received batch is being handled: an onBatchEnd listener runs before the stack goes idle. */
  get inBatch(): boolean {
    return this.dispatcher.inBatch;
  }

  /** Installs the reporter for errors this layer finds (ICMP does this); undefined removes it. */
  setErrorReporter(reporter: Ipv4ErrorReporter | undefined): void {
    this.reporter = reporter;
  }

  /** True for 255.255.255.255 and our prefix's directed broadcast. */
  isBroadcast(address: Ipv4Address): boolean {
    return address === IPV4_BROADCAST || this.address.isBroadcast(address);
  }

  // ---------------------------------------------------------------------------------------
  // Receive

  /**
   * The largest datagram a TCP super-frame may be on this link (0: none; every datagram fits
   * the MTU). TCP asks before it builds segments longer than the MSS.
   */
  get gsoMaxSize(): number {
    return this.dispatcher.link.gsoMaxSize ?? 0;
  }

  /** The link's Link.sendBurstLimit (0: none): frames a sender should write per run before reading. */
  get sendBurstLimit(): number {
    return this.dispatcher.link.sendBurstLimit ?? 0;
  }

  /**
   * Takes one whole Ethernet frame of EtherType 0x0800. Never throws on its content. `offload`
   * (virtio-net header mode) may make it a super-frame, longer than the MTU: that needs nothing
   * here, since a received datagram is bounded only by its 16-bit total length.
   */
  input(frame: Uint8Array, offload?: FrameOffload): void {
    const c = this.counters;
    this.rxPackets.value++;
    if (logging()) log('in  %s', formatIpv4Packet(frame.subarray(ETHERNET_HEADER_LENGTH)));
    // Integrity: is this a well-formed IPv4 datagram at all? (Checked where it lies in the
    // frame, and then the layer's one view is pointed at it: nothing is allocated.)
    const failure = Ipv4Packet.checkAt(frame, ETHERNET_HEADER_LENGTH);
    if (failure !== undefined) {
      c.inc(CHECK_FAILURE_COUNTER[failure]);
      return;
    }
    // A handler that feeds a frame back in (re-entry, rare) gets views of its own, so the view
    // its caller is still reading is not re-pointed under it.
    const reentered = this.delivering;
    let packet = reentered ? new Ipv4Packet(frame) : this.rxView;
    packet.repoint(frame, ETHERNET_HEADER_LENGTH, ETHERNET_HEADER_LENGTH + ((frame[ETHERNET_HEADER_LENGTH + 2]! << 8) | frame[ETHERNET_HEADER_LENGTH + 3]!));
    // Sanity: are the addresses ones a host may accept (RFC 1122 3.2.1.3, Linux's martians)?
    const source = packet.source;
    const destination = packet.destination;
    if (isIpv4Multicast(source)) return c.inc('rx_source_multicast');
    if (this.isBroadcast(source)) return c.inc('rx_source_broadcast');
    if (isIpv4Loopback(source)) return c.inc('rx_source_loopback');
    if (source === 0 && destination !== IPV4_BROADCAST) return c.inc('rx_source_unspecified');
    if (source === this.address.address) return c.inc('rx_source_is_ours');
    let kind: Ipv4DeliveryInfo['destinationKind'];
    if (destination === this.address.address) kind = 'unicast';
    else if (this.isBroadcast(destination)) kind = 'broadcast';
    else if (isIpv4Multicast(destination)) kind = 'multicast';
    else return c.inc('rx_not_forwarded'); // a host does not forward
    const linkGroup = (frame[0]! & 1) === 1;
    // RFC 1122 3.3.6: a unicast datagram in a link-layer broadcast is discarded.
    if (linkGroup && kind === 'unicast') return c.inc('rx_unicast_in_link_broadcast');

    const info = reentered ? newDeliveryInfo() : this.rxInfo;
    info.destinationKind = kind;
    info.linkGroup = linkGroup;
    if (packet.isFragment) {
      // A fragment's offload means nothing once it is part of a whole (the kernel never sends a
      // partial checksum in fragments): the transport checks the reassembled datagram itself.
      const whole = this.reassembly.input(packet);
      if (!whole) return;
      packet = whole;
      info.reassembled = true;
      info.frame = undefined;
      info.offload = undefined;
    } else {
      info.reassembled = false;
      info.frame = frame;
      info.offload = offload;
    }
    this.deliver(packet, info);
  }

  private deliver(packet: Ipv4Packet, info: MutableDeliveryInfo): void {
    const c = this.counters;
    const entry = this.protocols[packet.protocol];
    if (!entry) {
      c.inc('rx_unknown_protocol');
      if (info.destinationKind === 'unicast') this.reportError('protocol-unreachable', packet.bytes, { destinationKind: info.destinationKind, linkGroup: info.linkGroup, local: false });
      return;
    }
    if ((info.destinationKind === 'broadcast' && !entry.broadcast) || (info.destinationKind === 'multicast' && !entry.multicast)) {
      c.inc('rx_group_unwanted');
      return;
    }
    const o = info.offload;
    if (o !== undefined && !entry.offloads) {
      // A protocol that does not read offloads gets the datagram as a plain frame would bring it:
      // a partial checksum finished, if it starts where the transport header does (one that
      // starts elsewhere is left alone, and the protocol's own check drops the datagram).
      if (o.checksum === 'partial' && o.checksumStart === ETHERNET_HEADER_LENGTH + packet.headerLength) {
        finishChecksum(info.frame!, o, ETHERNET_HEADER_LENGTH + packet.totalLength);
      }
      info.offload = undefined;
    }
    this.rxDelivered.value++;
    const outer = this.delivering;
    this.delivering = true;
    try {
      entry.handler(packet, info);
    } catch (err) {
      c.inc('rx_handler_error');
      log('handler for protocol %d threw: %O', packet.protocol, err);
    } finally {
      this.delivering = outer;
    }
  }

  private reportError(kind: Ipv4ErrorKind, datagram: Uint8Array, context: Ipv4ErrorContext): void {
    const r = this.reporter;
    if (!r) return;
    try {
      r.report(kind, datagram, context);
    } catch (err) {
      log('error reporter threw: %O', err);
    }
  }

  private resolutionFailed(_nextHop: Ipv4Address, frames: readonly Uint8Array[]): void {
    for (const frame of frames) {
      if (frame.length < ETHERNET_HEADER_LENGTH + IPV4_MIN_HEADER_LENGTH) continue;
      if (readEtherType(frame) !== EtherType.IPV4) continue;
      this.counters.inc('tx_resolution_failed');
      const p = new Ipv4Packet(frame.subarray(ETHERNET_HEADER_LENGTH));
      // Tell the sender once per datagram: about the first fragment only.
      if (p.fragmentOffset === 0 && p.source === this.address.address) {
        this.reportError('host-unreachable', p.bytes, { linkGroup: false, destinationKind: 'unicast', local: true });
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Send

  /**
   * Sends one datagram, in three stages, the same for every datagram:
   *   1. route: the next hop, or why not (no route, DF and too big, ...), or "it is for us";
   *   2. build: the frame(s), each with room for the Ethernet header in front: one frame with
   *      the payload written in behind a 20-byte header (the common case), or, for a datagram
   *      with options or larger than the MTU, the frames fragment.ts makes;
   *   3. resolve and send: the neighbour resolver fills in the MACs and sends each frame, or
   *      queues it while ARP asks.
   * The request is read during the call only (what is kept, a queued frame, is bytes of its own),
   * so a caller may rewrite one request object for every datagram: TCP does, per segment.
   */
  send(request: Ipv4SendRequest): Ipv4SendOutcome {
    const optionsLength = request.options?.length ?? 0;
    const payloadLength = request.payload.length;
    // A super-frame (the link cuts it into segments) may be longer than the MTU, up to gsoMaxSize.
    const offload = request.offload !== undefined && optionsLength === 0 && this.gsoMaxSize > 0 ? request.offload : undefined;
    const largest = offload && offload.segmentSize > 0 ? this.gsoMaxSize : this.mtu;
    const plain = optionsLength === 0 && IPV4_MIN_HEADER_LENGTH + payloadLength <= largest;
    // 1. route (it counts a 20-byte header: options go in as part of the length)
    const nextHop = this.route(request.destination, optionsLength + payloadLength, (request.dontFragment ?? false) && largest === this.mtu);
    if (typeof nextHop !== 'number') return nextHop === 'loopback' ? this.deliverLocally(request) : nextHop;
    this.txPackets.value++;
    const identification = this.allocateIdentification();
    if (plain) {
      // 2. build: one frame, the payload behind room for the headers, the headers written over it
      const payload = request.payload;
      const frame = this.txMemory.frame(
        ETHERNET_HEADER_LENGTH + IPV4_MIN_HEADER_LENGTH + payloadLength,
        (payload instanceof Uint8Array || payload.writesEveryByte === true) && this.dispatcher.link.copiesFrames === true,
        ETHERNET_HEADER_LENGTH + Math.max(this.mtu, this.gsoMaxSize),
      );
      const at = ETHERNET_HEADER_LENGTH + IPV4_MIN_HEADER_LENGTH;
      if (payload instanceof Uint8Array) frame.set(payload, at);
      else if (payload.writeAt) payload.writeAt(frame, at);
      else payload.write(frame.subarray(at));
      this.writeHeaderInPlace(frame, request, identification, payloadLength);
      // 3. resolve and send
      if (offload) return this.resolveAndSend(nextHop, frame, frameOffload(offload, request.protocol, payloadLength));
      if (request.offload) finishChecksum(frame, frameOffload(request.offload, request.protocol, payloadLength), frame.length);
      return this.resolveAndSend(nextHop, frame);
    }
    // 2. build: fragments (or one frame with options), each 3. resolved and sent. A checksum the
    // transport left to the link is finished here first: fragments cannot carry the offload.
    const payload = payloadOf(request);
    if (request.offload) finishChecksumOfPayload(request.offload, payload);
    const frames = buildFrames(this.headerFields(request, identification), payload, this.mtu);
    if (frames.length > 1) this.counters.inc('tx_fragments', frames.length);
    let outcome: Ipv4SendOutcome = 'sent';
    for (const frame of frames) {
      const r = this.resolveAndSend(nextHop, frame);
      if (r === 'dropped') outcome = 'dropped';
      else if (r === 'queued' && outcome === 'sent') outcome = 'queued';
    }
    return outcome;
  }

  /**
   * `send` for a datagram whose payload is already in place: `frame` is a whole Ethernet frame
   * of exactly 14 + 20 + payload bytes with the payload at byte 34, typically a received frame
   * turned into its answer (ICMP echo). The same stages, with stage 2 writing the EtherType and
   * a 20-byte header over bytes 12-33 of the frame given: no allocation, no copy. The caller
   * gives the frame up. A datagram that needs options or fragments is handed to `send`.
   */
  sendInPlace(frame: Uint8Array, request: Omit<Ipv4SendRequest, 'payload'>): Ipv4SendOutcome {
    const payloadOffset = ETHERNET_HEADER_LENGTH + IPV4_MIN_HEADER_LENGTH;
    if (frame.length < payloadOffset) throw new RangeError(`sendInPlace needs a frame of at least ${payloadOffset} bytes`);
    const payloadLength = frame.length - payloadOffset;
    if (IPV4_MIN_HEADER_LENGTH + payloadLength > this.mtu || (request.options?.length ?? 0) > 0) return this.send({ ...request, payload: frame.subarray(payloadOffset) });
    const nextHop = this.route(request.destination, payloadLength, request.dontFragment ?? false);
    if (typeof nextHop !== 'number') {
      return nextHop === 'loopback' ? this.deliverLocally({ ...request, payload: frame.subarray(payloadOffset) }) : nextHop;
    }
    this.txPackets.value++;
    this.writeHeaderInPlace(frame, request, this.allocateIdentification(), payloadLength);
    return this.resolveAndSend(nextHop, frame);
  }

  /** Stage 2 for a plain datagram: the EtherType and a 20-byte header, written in place. */
  private writeHeaderInPlace(frame: Uint8Array, request: Omit<Ipv4SendRequest, 'payload'>, identification: number, payloadLength: number): void {
    writePlainHeader(
      frame,
      request.source ?? this.address.address,
      request.destination,
      request.protocol,
      request.ttl ?? this.ttl,
      request.dscp ?? 0,
      identification,
      request.dontFragment ? Ipv4Flag.DONT_FRAGMENT : 0,
      IPV4_MIN_HEADER_LENGTH + payloadLength,
    );
  }

  /** The header fields of a datagram (everything but the fragment fields and the payload length). */
  private headerFields(request: Omit<Ipv4SendRequest, 'payload'>, identification: number): DatagramHeader {
    return {
      source: request.source ?? this.address.address,
      destination: request.destination,
      protocol: request.protocol,
      ttl: request.ttl ?? this.ttl,
      identification,
      dscp: request.dscp ?? 0,
      dontFragment: request.dontFragment ?? false,
      options: request.options ?? EMPTY,
    };
  }

  /** The identification of the next datagram we send (RFC 791: unique per source, destination, protocol while it lives). */
  private allocateIdentification(): number {
    const id = this.nextId;
    this.nextId = (id + 1) & 0xffff;
    return id;
  }

  /**
   * Where a datagram of `payloadLength` bytes to `destination` goes: the next hop, or why it
   * does not go out on the link ('loopback': to ourselves). Counts the refusals.
   */
  private route(destination: Ipv4Address, payloadLength: number, dontFragment: boolean): Ipv4Address | 'loopback' | Exclude<Ipv4SendOutcome, 'sent' | 'queued' | 'dropped'> {
    const c = this.counters;
    if (this.closed) return 'closed';
    if (IPV4_MIN_HEADER_LENGTH + payloadLength > IPV4_MAX_DATAGRAM_LENGTH) {
      c.inc('tx_too_long');
      return 'too_long';
    }
    let nextHop: Ipv4Address;
    if (destination === 0) {
      // RFC 1122 3.2.1.3 (a): 0.0.0.0 is never a destination (a default route would match it).
      c.inc('tx_unspecified_destination');
      return 'no_route';
    }
    if (this.isBroadcast(destination) || isIpv4Multicast(destination)) {
      nextHop = destination; // the resolver maps these to group MACs without asking (NOARP)
    } else if (destination === this.address.address || isIpv4Loopback(destination)) {
      return 'loopback';
    } else {
      const found = this.routes.lookup(destination);
      if (!found) {
        c.inc('tx_no_route');
        return 'no_route';
      }
      nextHop = found.nextHop;
    }
    if (IPV4_MIN_HEADER_LENGTH + payloadLength > this.mtu && dontFragment) {
      c.inc('tx_fragmentation_needed');
      return 'fragmentation_needed';
    }
    return nextHop;
  }

  /** The last stage: the neighbour resolver fills in the MACs and sends, or queues while it asks. */
  private resolveAndSend(nextHop: Ipv4Address, frame: Uint8Array, offload?: FrameOffload): ResolveOutcome {
    if (logging()) log('out %s via %s', formatIpv4Packet(frame.subarray(ETHERNET_HEADER_LENGTH)), formatIpv4(nextHop));
    this.txFrames.value++;
    const r = offload ? this.resolver.resolve(nextHop, frame, offload) : this.resolver.resolve(nextHop, frame);
    if (r === 'queued') {
      this.counters.inc('tx_queued');
      // the resolver keeps the frame until ARP answers: the next frame needs memory of its own
      this.txMemory.kept(frame);
    }
    else if (r === 'dropped') this.counters.inc('tx_dropped');
    return r;
  }

  /** Datagrams to ourselves go up without touching the link, on a later microtask. */
  private deliverLocally(request: Ipv4SendRequest): Ipv4SendOutcome {
    if (this.loopback.length >= LOOPBACK_QUEUE_LIMIT) {
      this.counters.inc('tx_loopback_dropped');
      return 'dropped';
    }
    const payload = payloadOf(request);
    if (request.offload) finishChecksumOfPayload(request.offload, payload);
    const bytes = buildDatagram(this.headerFields(request, this.allocateIdentification()), payload);
    this.counters.inc('tx_loopback');
    this.loopback.push(bytes);
    if (this.loopback.length === 1) {
      queueMicrotask(() => {
        const batch = this.loopback;
        this.loopback = [];
        for (const b of batch) if (!this.closed) this.deliver(new Ipv4Packet(b), newDeliveryInfo());
      });
    }
    return 'sent';
  }

  /** Unregisters from the dispatcher, drops every fragment and cancels the reassembly timers. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dispatcher.unregister(EtherType.IPV4);
    this.reassembly.clear();
    this.loopback = [];
  }
}

const EMPTY = new Uint8Array(0);

/**
 * Finishes a partial transport checksum in place, as Linux's skb_checksum_help does for a
 * device that cannot: the one's complement sum of bytes `checksumStart` to `end` (the field
 * already holds the pseudo-header's sum, so it is counted in), folded and complemented, written
 * into the field. 0 is written as 0xffff, which UDP needs (0 means "no checksum") and which
 * verifies the same for TCP (RFC 768; RFC 1071's -0).
 */
export function finishChecksum(frame: Uint8Array, offload: FrameOffload, end: number): void {
  const at = offload.checksumStart + offload.checksumOffset;
  if (at + 2 > end || end > frame.length) return;
  const checksum = ~foldChecksum(checksumAdd(frame, 0, offload.checksumStart, end)) & 0xffff || 0xffff;
  frame[at] = checksum >>> 8;
  frame[at + 1] = checksum & 0xff;
}

/** The same on a datagram's payload alone (before it is cut into fragments, or looped back). */
function finishChecksumOfPayload(offload: Ipv4SendOffload, payload: Uint8Array): void {
  finishChecksum(payload, { checksum: 'partial', checksumStart: 0, checksumOffset: offload.checksumOffset, gso: 'none', segmentSize: 0, headerLength: 0 }, payload.length);
}

/** A transport's offload request in the frame's terms; only TCP's data is cut into segments. */
function frameOffload(offload: Ipv4SendOffload, protocol: number, payloadLength: number): FrameOffload {
  return partialChecksumOffload(offload, ETHERNET_HEADER_LENGTH + IPV4_MIN_HEADER_LENGTH, payloadLength, protocol === IpProtocol.TCP ? 'tcpv4' : 'none');
}

/** Where a received datagram starts in its frame, for Ipv4Packet.check. */
const IN_FRAME = { offset: ETHERNET_HEADER_LENGTH } as const;

/** Ipv4DeliveryInfo as the layer writes it: every field present, so the one object keeps its shape. */
interface MutableDeliveryInfo {
  destinationKind: Ipv4DeliveryInfo['destinationKind'];
  linkGroup: boolean;
  reassembled: boolean;
  frame: Uint8Array | undefined;
  offload: FrameOffload | undefined;
}

/** A delivery info for a datagram to our own address (the shape of the layer's reused one). */
function newDeliveryInfo(): MutableDeliveryInfo {
  return { destinationKind: 'unicast', linkGroup: false, reassembled: false, frame: undefined, offload: undefined };
}
