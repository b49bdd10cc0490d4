/**
 * The IPv6 layer of a host (RFC 8200; RFC 4861 5.2 for where packets go; RFC 8504 for what a
 * host must do): checks what arrives, hands packets for our addresses and joined groups to the
 * upper layer registered for their next header, and sends packets through the routes and NDP.
 * Nothing is forwarded.
 *
 * It is the twin of Ipv4Layer, and what differs is the lesson:
 *  - no header checksum: the upper layers' checksums cover the addresses through the pseudo-header,
 *    so a send request may ask the layer to fill in the upper-layer checksum once it has chosen
 *    the source address (`checksumOffset`, what Linux calls CHECKSUM_PARTIAL);
 *  - several addresses per interface, each with a state (addresses.ts): a packet to a tentative
 *    address is not ours yet (RFC 4862 5.4), and the source of a reply is chosen by scope
 *    (RFC 6724): link-local to link-local, global to the rest;
 *  - multicast replaces broadcast: we receive only for the groups we joined (addresses.ts joins
 *    their 33:33 MACs on the link);
 *  - only the source fragments (RFC 8200 4.5): nothing here fragments another host's packet, and
 *    a packet we send is cut to the path MTU, which Packet Too Big messages lower.
 *
 * Upper layers register by next header like they do with IPv4 (`register(58, icmpv6Handler)`;
 * UDP and TCP can join the same way). Errors this layer finds are handed to the reporter ICMPv6
 * installs, since ICMPv6 sits above IPv6 and IPv6 must not know it.
 */
import debugFactory from 'debug';
import {
  Counters,
  ETHERNET_HEADER_LENGTH,
  EtherType,
  Ipv6Address,
  hotPathLogging,
  partialChecksumOffload,
  readEtherType,
  type Clock,
  type EtherTypeDispatcher,
  type FrameOffload,
  type TransportOffloadRequest,
  FrameMemory,
} from '@tapstack/link';
import type { ResolveOutcome } from '@tapstack/neighbour';
import { ipv6PseudoHeaderSum } from './checksum.ts';
import { IPV6_HEADER_LENGTH, IPV6_MAX_PAYLOAD_LENGTH, IPV6_MIN_MTU, Ipv6Packet, Ipv6Repr, emitIpv6Header, formatIpv6Packet, type Ipv6CheckFailure } from './header.ts';
import { walkExtensionHeaders } from './extension.ts';
import { fragmentIpv6 } from './fragment.ts';
import { IPV6_REASSEMBLY_COUNTERS, Ipv6Reassembler, type Ipv6ReassemblyLimits } from './reassembly.ts';
import { Ipv6Addresses } from './addresses.ts';
import { Ipv6Routes } from './routes.ts';
import { checksumAdd, finishChecksum, foldChecksum } from '@tapstack/ipv4';

const log = debugFactory('tapstack:ipv6');
const logging = hotPathLogging(log);

/** Linux's Ip6* MIB names (/proc/net/snmp6), then a counter per drop reason. */
export const IPV6_COUNTERS = [
  'Ip6InReceives',
  'Ip6InHdrErrors',
  'Ip6InAddrErrors',
  'Ip6InUnknownProtos',
  'Ip6InTruncatedPkts',
  'Ip6InDiscards',
  'Ip6InDelivers',
  'Ip6InMcastPkts',
  'Ip6OutRequests',
  'Ip6OutDiscards',
  'Ip6OutNoRoutes',
  'Ip6OutMcastPkts',
  'Ip6FragOKs',
  'Ip6FragFails',
  'Ip6FragCreates',
  // why, for the drops
  'rx_truncated',
  'rx_bad_version',
  'rx_bad_payload_length',
  'rx_source_multicast',
  'rx_source_loopback',
  'rx_source_is_ours',
  'rx_destination_tentative',
  'rx_not_for_us',
  'rx_group_unwanted',
  'rx_nested_fragment',
  'rx_no_next_header',
  // the extension-header walker's refusals (extension.ts)
  'rx_ext_truncated_header',
  'rx_ext_hop_by_hop_not_first',
  'rx_ext_unknown_next_header',
  'rx_ext_unknown_routing_type',
  'rx_ext_unknown_option_discard',
  'rx_ext_unknown_option',
  'rx_ext_bad_option_length',
  'rx_ext_too_much_padding',
  'rx_ext_too_many_headers',
  'rx_handler_error',
  'tx_no_source',
  'tx_too_long',
  'tx_packet_too_big',
  'tx_queued',
  'tx_resolution_failed',
  'tx_loopback',
  'tx_loopback_dropped',
  'path_mtu_updates',
  ...IPV6_REASSEMBLY_COUNTERS,
] as const;
export type Ipv6CounterName = (typeof IPV6_COUNTERS)[number];

const CHECK_FAILURE_COUNTER: Record<Ipv6CheckFailure, Ipv6CounterName> = {
  truncated: 'rx_truncated',
  bad_version: 'rx_bad_version',
  bad_payload_length: 'rx_bad_payload_length',
};

/**
 * How a packet handed to an upper layer was addressed. The layer keeps one of these and rewrites
 * it for every packet (see `Ipv6Handler`): read it during the call, copy what you need.
 */
export interface Ipv6DeliveryInfo {
  /** To one of our addresses, or to a group we joined. */
  readonly destinationKind: 'unicast' | 'multicast';
  /** It came in a link-layer multicast or broadcast frame (RFC 4443 2.4 (e.3): no errors about it). */
  readonly linkGroup: boolean;
  /** Rebuilt from fragments. */
  readonly reassembled: boolean;
  /**
   * Where the upper-layer message starts, counted from the packet's start (40 plus the extension
   * headers walked): the message is `packet.buffer[packet.start + payloadOffset .. packet.end)`.
   */
  readonly payloadOffset: number;
  /**
   * The Ethernet frame it arrived in, when it came whole in one frame (the packet is this frame
   * from byte 14 on). The handler owns it and may turn it into its answer (`sendInPlace`).
   */
  readonly frame: Uint8Array | undefined;
  /**
   * What the device said about the frame (virtio-net header mode), for protocols registered
   * with `offloads: true` only (TCP): a transport checksum the kernel checked ('valid') or never
   * computed ('partial'). Other protocols get the checksum finished by this layer first, as
   * IPv4 does for them (`finishChecksum`).
   */
  readonly offload: FrameOffload | undefined;
  /**
   * The value of the router alert option (RFC 2711) when a hop-by-hop header carried one: 0
   * marks an MLD message, which must carry it (RFC 2710 3, RFC 3810 5); undefined when absent.
   */
  readonly routerAlert: number | undefined;
}

/**
 * Receives one packet for a next header, IPv4's contract (`Ipv4Handler`) for IPv6: nothing is
 * allocated to deliver it. `packet` is the layer's one view, re-pointed at every packet, and
 * `info` its one delivery info, so both are valid only during the call: keep values read from
 * them (`Ipv6Repr.parse(packet)`, `{ ...info }`), never the objects. The bytes are the
 * handler's (the link hands each frame up once): it may keep `packet.buffer` or any view of
 * it, or write into it (ICMPv6 turns an echo request into its reply in place). The upper-layer
 * message lies at `packet.start + info.payloadOffset` up to `packet.end`; `upperLayerMessage`
 * makes a Uint8Array of it for a handler that wants one (an allocation, as IPv4's
 * `packet.payload`). `packet.source` and `packet.destination` make addresses on the spot too;
 * `packet.sourceOffset` and `destinationOffset` say where their bytes are.
 */
export type Ipv6Handler = (packet: Ipv6Packet, info: Ipv6DeliveryInfo) => void;

/** The upper-layer message of a delivered packet, as a view of its bytes (made on the spot). */
export function upperLayerMessage(packet: Ipv6Packet, info: Ipv6DeliveryInfo): Uint8Array {
  return packet.buffer.subarray(packet.start + info.payloadOffset, packet.end);
}

export interface Ipv6ProtocolOptions {
  /** Also deliver packets sent to a multicast group we joined (default false). */
  multicast?: boolean;
  /** The handler reads `info.offload` (TCP does): a partial checksum reaches it as it is. */
  offloads?: boolean;
}

/** Writes a payload straight into the outgoing frame. */
export interface Ipv6PayloadWriter {
  readonly length: number;
  write(target: Uint8Array): void;
  /**
   * True when `write` sets every one of the `length` bytes: the frame may then be memory that
   * held an earlier frame (see `Link.copiesFrames`). Absent: the target starts zeroed.
   */
  readonly writesEveryByte?: boolean;
  /** `write` into `frame` from `offset` on, without a view of the payload's bytes (optional; TCP's segments). */
  writeAt?(frame: Uint8Array, offset: number): void;
}

export interface Ipv6SendRequest {
  readonly destination: Ipv6Address;
  /** The upper layer's number (58 ICMPv6, 17 UDP, 6 TCP): the fixed header's next header. */
  readonly nextHeader: number;
  readonly payload: Uint8Array | Ipv6PayloadWriter;
  /** Default: chosen by addresses.selectSource (RFC 6724). `::` is allowed (DAD, RFC 4862 5.4.2). */
  readonly source?: Ipv6Address;
  /** Default 64 (Linux's hop_limit); NDP sends 255 (RFC 4861 6.1). */
  readonly hopLimit?: number;
  readonly trafficClass?: number;
  /**
   * Where the upper layer's 16-bit checksum sits in the payload: the layer computes it over the
   * pseudo-header (RFC 8200 8.1) once the source is known and writes it there. The payload must
   * carry zero in that field.
   */
  readonly checksumOffset?: number;
  /**
   * A TCP super-frame for a link with `gsoMaxSize` (virtio-net header mode, TSO6): the transport
   * wrote the pseudo-header's sum into its checksum field (at `checksumOffset` of the payload)
   * and the device finishes the checksum and cuts the payload into segments of `segmentSize`
   * data bytes. It may be longer than the path MTU (not its segments), and is never fragmented.
   * On a link without offloads the checksum is finished here and the payload must fit the MTU.
   */
  readonly offload?: Ipv6SendOffload;
}

/** What a transport asks the device to do with one super-frame (`Ipv6SendRequest.offload`); IPv4's twin is Ipv4SendOffload. */
export type Ipv6SendOffload = TransportOffloadRequest;

/** What `send` did: sent, queued (NDP resolving), dropped, or why it did not try. */
export type Ipv6SendOutcome = 'sent' | 'queued' | 'dropped' | 'no_route' | 'no_source' | 'too_long' | 'closed';

/** Problems this layer finds that deserve an ICMPv6 error (RFC 4443 3 and 4, RFC 8200 4). */
export type Ipv6ErrorKind =
  /**
   * The extension-header walk refused the packet (RFC 8200 4): parameter problem with the code
   * and pointer in the context (code 1 for a next header nobody registered, 2 for an option whose
   * type says to report it, 0 for a bad header field).
   */
  | 'parameter-problem'
  /** Fragments did not complete in time: time exceeded code 1 (first fragment arrived). */
  | 'reassembly-timeout'
  /** A packet we sent was dropped because NDP failed: destination unreachable code 3, told locally. */
  | 'address-unreachable';

export interface Ipv6ErrorContext {
  readonly linkGroup: boolean;
  readonly destinationKind: Ipv6DeliveryInfo['destinationKind'];
  /** Our own packet: report to local listeners, not on the wire. */
  readonly local: boolean;
  /** For a parameter problem: its code, and the offset in the packet of the offending byte. */
  readonly code?: number;
  readonly pointer?: number;
}

export interface Ipv6ErrorReporter {
  report(kind: Ipv6ErrorKind, packet: Uint8Array, context: Ipv6ErrorContext): void;
}

/** What IPv6 asks of Neighbour Discovery (Ndp implements it): the IPv6 twin of ARP's NeighbourResolver. */
export interface Ipv6NeighbourResolver {
  /**
   * Fills in the MACs of a whole frame and sends it to `nextHop`, or queues it while resolving.
   * `offload` (a super-frame, virtio-net header mode) goes to the link with the frame.
   */
  resolve(nextHop: Ipv6Address, frame: Uint8Array, offload?: FrameOffload): ResolveOutcome;
  onResolutionFailed(listener: (nextHop: Ipv6Address, frames: readonly Uint8Array[]) => void): void;
}

export interface Ipv6LayerOptions {
  dispatcher: EtherTypeDispatcher;
  clock: Clock;
  addresses: Ipv6Addresses;
  /** Set here or later with setResolver (NDP is built after the layer it resolves for). */
  resolver?: Ipv6NeighbourResolver;
  /** Hop limit of packets we send (default 64, Linux's net.ipv6.conf.*.hop_limit). */
  hopLimit?: number;
  /** The link MTU for IPv6 (default the link's; at least 1280, RFC 8200 5). */
  mtu?: number;
  reassembly?: Partial<Ipv6ReassemblyLimits>;
  /** For the first fragment identification (default Math.random). */
  random?: () => number;
}

interface ProtocolEntry {
  readonly handler: Ipv6Handler;
  readonly multicast: boolean;
  readonly offloads: boolean;
}

/** Path MTUs remembered from Packet Too Big (RFC 8201), and for how long (Linux's ip6_rt_mtu_expires: 10 min). */
const PATH_MTU_LIMIT = 256;
const PATH_MTU_EXPIRES_MS = 600_000;
const LOOPBACK_QUEUE_LIMIT = 256;

export class Ipv6Layer {
  readonly counters = new Counters<Ipv6CounterName>('ipv6', IPV6_COUNTERS);
  private readonly inReceives = this.counters.counter('Ip6InReceives');
  private readonly inDelivers = this.counters.counter('Ip6InDelivers');
  private readonly outRequests = this.counters.counter('Ip6OutRequests');
  readonly addresses: Ipv6Addresses;
  readonly routes: Ipv6Routes;
  readonly reassembly: Ipv6Reassembler;
  /** The hop limit of packets we send (CurHopLimit, RFC 4861 6.3.2): 64, or what a router advertised. */
  get hopLimit(): number {
    return this.curHopLimit;
  }
  /** The IPv6 MTU of the link: the device's, or less when a router's MTU option said so (RFC 4861 6.3.4). */
  get mtu(): number {
    return this.linkMtu;
  }
  /** The device's MTU (or the `mtu` option): the ceiling for an advertised MTU. */
  readonly deviceMtu: number;
  private curHopLimit: number;
  private linkMtu: number;
  private readonly dispatcher: EtherTypeDispatcher;
  private readonly clock: Clock;
  private resolver: Ipv6NeighbourResolver | undefined;
  private readonly protocols: (ProtocolEntry | undefined)[] = new Array(256).fill(undefined);
  private readonly pathMtus = new Map<string, { mtu: number; until: number }>();
  private reporter: Ipv6ErrorReporter | undefined;
  private loopback: Uint8Array[] = [];
  /** The memory outgoing frames are built in: one reused buffer on a link that copies them. */
  private readonly txMemory = new FrameMemory();
  /** The receive path's one packet view and one delivery info, re-pointed per packet (see Ipv6Handler). */
  private readonly rxView = new Ipv6Packet(new Uint8Array(IPV6_HEADER_LENGTH));
  private readonly rxInfo: MutableDeliveryInfo = newDeliveryInfo();
  /** A handler is running (a packet fed in from inside one gets views of its own). */
  private delivering = false;
  private nextIdentification: number;
  private closed = false;

  constructor(options: Ipv6LayerOptions) {
    this.dispatcher = options.dispatcher;
    this.clock = options.clock;
    this.addresses = options.addresses;
    this.curHopLimit = options.hopLimit ?? 64;
    this.deviceMtu = options.mtu ?? options.dispatcher.link.mtu;
    this.linkMtu = this.deviceMtu;
    if (this.deviceMtu < IPV6_MIN_MTU) throw new RangeError(`an IPv6 link needs an MTU of at least ${IPV6_MIN_MTU} (RFC 8200 5), got ${this.deviceMtu}`);
    this.routes = new Ipv6Routes(options.clock, () => this.addresses.onLinkPrefixes(), (d) => this.addresses.coversOnLink(d));
    this.nextIdentification = Math.floor((options.random ?? Math.random)() * 0x100000000) >>> 0;
    // RFC 8200 4.5: 60 s, then time exceeded code 1 about the first fragment (if it came).
    this.reassembly = new Ipv6Reassembler(options.clock, this.counters, options.reassembly, (first) => {
      if (first) this.reportError('reassembly-timeout', first, { linkGroup: false, destinationKind: 'unicast', local: false });
    });
    if (options.resolver) this.setResolver(options.resolver);
    // RFC 4291 2.8: every interface is in all-nodes.
    this.addresses.join(Ipv6Address.ALL_NODES);
    this.dispatcher.register(EtherType.IPV6, (frame, offload) => this.input(frame, offload));
  }

  setResolver(resolver: Ipv6NeighbourResolver): void {
    this.resolver = resolver;
    resolver.onResolutionFailed((nextHop, frames) => this.resolutionFailed(nextHop, frames));
  }

  /** Registers the handler for a next header (58 ICMPv6, 17 UDP, 6 TCP). A second one throws. */
  register(nextHeader: number, handler: Ipv6Handler, options: Ipv6ProtocolOptions = {}): void {
    if (!Number.isInteger(nextHeader) || nextHeader < 0 || nextHeader > 255) throw new RangeError(`next header ${nextHeader} must be 0-255`);
    if (this.protocols[nextHeader]) throw new Error(`next header ${nextHeader} already has a handler`);
    this.protocols[nextHeader] = { handler, multicast: options.multicast ?? false, offloads: options.offloads ?? false };
  }

  unregister(nextHeader: number): void {
    this.protocols[nextHeader] = undefined;
  }

  setErrorReporter(reporter: Ipv6ErrorReporter | undefined): void {
    this.reporter = reporter;
  }

  // ---------------------------------------------------------------------------------------
  // Receive

  /** Takes one whole Ethernet frame of EtherType 0x86DD (and what the device said about it). Never throws on its content. */
  input(frame: Uint8Array, offload?: FrameOffload): void {
    const c = this.counters;
    this.inReceives.value++;
    if (logging()) log('in  %s', formatIpv6Packet(frame.subarray(ETHERNET_HEADER_LENGTH)));
    // Checked where it lies in the frame, then the layer's one view is pointed at it: nothing is
    // allocated for a packet to one of our unicast addresses (see Ipv6Handler).
    const failure = Ipv6Packet.checkAt(frame, ETHERNET_HEADER_LENGTH);
    if (failure !== undefined) {
      c.inc(failure === 'bad_payload_length' ? 'Ip6InTruncatedPkts' : 'Ip6InHdrErrors');
      c.inc(CHECK_FAILURE_COUNTER[failure]);
      return;
    }
    // A handler that feeds a frame back in (re-entry, rare) gets views of its own, so the view
    // its caller is still reading is not re-pointed under it.
    const reentered = this.delivering;
    const packet = reentered ? new Ipv6Packet(frame) : this.rxView;
    packet.repoint(frame, ETHERNET_HEADER_LENGTH, Ipv6Packet.endAt(frame, ETHERNET_HEADER_LENGTH));
    const so = packet.sourceOffset;
    // RFC 4291 2.7: a multicast address is never a source; ::1 never comes from the wire (RFC 4291 2.5.3).
    if (frame[so] === 0xff) return this.hdrError('rx_source_multicast');
    if (isLoopbackAt(frame, so)) return this.hdrError('rx_source_loopback');
    if (this.addresses.isAssignedAt(frame, so)) return this.hdrError('rx_source_is_ours');
    const dof = packet.destinationOffset;
    let kind: Ipv6DeliveryInfo['destinationKind'];
    if (frame[dof] === 0xff) {
      if (!this.addresses.isMember(packet.destination)) {
        c.inc('Ip6InAddrErrors');
        return c.inc('rx_not_for_us');
      }
      kind = 'multicast';
      c.inc('Ip6InMcastPkts');
    } else if (this.addresses.isAssignedAt(frame, dof)) {
      kind = 'unicast';
    } else {
      // RFC 4862 5.4: a tentative address is not ours yet; a host does not forward (RFC 8504 5.1).
      c.inc('Ip6InAddrErrors');
      return c.inc(this.addresses.isTentative(packet.destination) ? 'rx_destination_tentative' : 'rx_not_for_us');
    }
    const info = reentered ? newDeliveryInfo() : this.rxInfo;
    info.destinationKind = kind;
    info.linkGroup = (frame[0]! & 1) === 1;
    info.reassembled = false;
    info.payloadOffset = IPV6_HEADER_LENGTH;
    info.frame = frame;
    info.offload = offload;
    info.routerAlert = undefined;
    const next = packet.nextHeader;
    // The common case, an upper layer right after the fixed header, without walking anything.
    if (this.protocols[next] !== undefined) return this.deliver(packet, next, info);
    this.walk(packet, info);
  }

  /**
   * Follows the extension-header chain (RFC 8200 4.1, extension.ts) and acts on where it ends:
   * an upper layer we have (delivered at its offset), a fragment, nothing (next header 59), or a
   * refusal, with the parameter problem the walker says to send.
   */
  private walk(packet: Ipv6Packet, info: MutableDeliveryInfo): void {
    const c = this.counters;
    const result = walkExtensionHeaders(packet, { isUpperLayer: this.isUpperLayer });
    switch (result.kind) {
      case 'upper-layer':
        info.payloadOffset = result.offset;
        info.routerAlert = result.routerAlert;
        return this.deliver(packet, result.nextHeader, info);
      case 'fragment': {
        if (info.reassembled) return c.inc('rx_nested_fragment'); // a fragment inside a reassembled packet
        const r = this.reassembly.input(packet, { offset: result.offset, nextHeaderFieldOffset: result.nextHeaderFieldOffset });
        if (r.kind === 'complete') {
          // a packet of its own (the reassembler's bytes), with an info of its own
          const whole = newDeliveryInfo();
          whole.destinationKind = info.destinationKind;
          whole.linkGroup = info.linkGroup;
          whole.reassembled = true;
          return this.walk(r.packet, whole);
        }
        if (r.kind === 'parameter-problem') {
          const problem = r.parameterProblem;
          this.reportError('parameter-problem', packet.bytes, { linkGroup: info.linkGroup, destinationKind: info.destinationKind, local: false, code: problem.code, pointer: problem.pointer });
        }
        return;
      }
      case 'no-next-header':
        return c.inc('rx_no_next_header');
      case 'error': {
        c.inc(result.reason === 'unknown_next_header' ? 'Ip6InUnknownProtos' : 'Ip6InHdrErrors');
        c.inc(`rx_ext_${result.reason}`);
        const problem = result.parameterProblem;
        if (problem) {
          this.reportError('parameter-problem', packet.bytes, { linkGroup: info.linkGroup, destinationKind: info.destinationKind, local: false, code: problem.code, pointer: problem.pointer });
        }
      }
    }
  }

  private readonly isUpperLayer = (nextHeader: number): boolean => this.protocols[nextHeader] !== undefined;

  private hdrError(reason: Ipv6CounterName): void {
    this.counters.inc('Ip6InHdrErrors');
    this.counters.inc(reason);
  }

  /** Hands the upper-layer message at `info.payloadOffset` (of the packet) to the handler of `nextHeader`. */
  private deliver(packet: Ipv6Packet, nextHeader: number, info: MutableDeliveryInfo): void {
    const c = this.counters;
    const entry = this.protocols[nextHeader];
    if (!entry) {
      // Only from the loopback path: the walker refuses unknown next headers on the wire.
      c.inc('Ip6InUnknownProtos');
      return;
    }
    if (info.destinationKind === 'multicast' && !entry.multicast) {
      c.inc('Ip6InDiscards');
      return c.inc('rx_group_unwanted');
    }
    const o = info.offload;
    if (o !== undefined && !entry.offloads) {
      // A plain frame's view for a protocol that does not read offloads: a partial checksum that
      // starts where this upper layer does is finished (one that starts elsewhere is left, and
      // the protocol's own check drops the packet).
      if (o.checksum === 'partial' && info.frame && o.checksumStart === ETHERNET_HEADER_LENGTH + info.payloadOffset) finishChecksum(info.frame, o, packet.end);
      info.offload = undefined;
    }
    this.inDelivers.value++;
    const outer = this.delivering;
    this.delivering = true;
    try {
      entry.handler(packet, info);
    } catch (err) {
      c.inc('rx_handler_error');
      log('handler for next header %d threw: %O', nextHeader, err);
    } finally {
      this.delivering = outer;
    }
  }

  private reportError(kind: Ipv6ErrorKind, packet: Uint8Array, context: Ipv6ErrorContext): void {
    const r = this.reporter;
    if (!r) return;
    try {
      r.report(kind, packet, context);
    } catch (err) {
      log('error reporter threw: %O', err);
    }
  }

  private resolutionFailed(_nextHop: Ipv6Address, frames: readonly Uint8Array[]): void {
    for (const frame of frames) {
      if (frame.length < ETHERNET_HEADER_LENGTH + IPV6_HEADER_LENGTH || readEtherType(frame) !== EtherType.IPV6) continue;
      this.counters.inc('tx_resolution_failed');
      const p = new Ipv6Packet(frame.subarray(ETHERNET_HEADER_LENGTH));
      if (this.addresses.get(p.source)) {
        this.reportError('address-unreachable', p.bytes, { linkGroup: false, destinationKind: 'unicast', local: true });
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Send

  /** The source this layer would choose for `destination` (RFC 6724), if any address is usable. */
  sourceFor(destination: Ipv6Address): Ipv6Address | undefined {
    return this.addresses.selectSource(destination);
  }

  /** The largest super-frame datagram the link takes (0: none; a TAP device with a virtio-net header: 65535). */
  get gsoMaxSize(): number {
    return this.dispatcher.link.gsoMaxSize ?? 0;
  }

  /** The MTU towards `destination`: the link's, or less after a Packet Too Big (RFC 8201). */
  pathMtu(destination: Ipv6Address): number {
    // Asked on every send: with no Packet Too Big on record (the usual case) there is nothing to
    // look up, and a fresh address would otherwise format its text key just for the lookup.
    if (this.pathMtus.size === 0) return this.mtu;
    const p = this.pathMtus.get(destination.key);
    if (!p) return this.mtu;
    if (p.until <= this.clock.now()) {
      this.pathMtus.delete(destination.key);
      return this.mtu;
    }
    return p.mtu;
  }

  /**
   * A router advertised an MTU option (RFC 4861 6.3.4, 4.6.4): the link's IPv6 MTU becomes it.
   * Like Linux (ndisc_router_discovery), a value below 1280 or above the device's MTU is refused,
   * since neither can be true of this link. Remembered path MTUs above the new value come down with it.
   */
  setLinkMtu(mtu: number): boolean {
    if (!Number.isInteger(mtu) || mtu < IPV6_MIN_MTU || mtu > this.deviceMtu) return false;
    this.linkMtu = mtu;
    for (const [key, p] of this.pathMtus) if (p.mtu > mtu) this.pathMtus.delete(key);
    return true;
  }

  /** A router advertised a Cur Hop Limit (RFC 4861 6.3.4): our packets leave with it. 0 means unspecified. */
  setHopLimit(hopLimit: number): boolean {
    if (!Number.isInteger(hopLimit) || hopLimit < 1 || hopLimit > 255) return false;
    this.curHopLimit = hopLimit;
    return true;
  }

  /** A Packet Too Big said `mtu` (RFC 8201 4: never below 1280, never raised by one). */
  updatePathMtu(destination: Ipv6Address, mtu: number): void {
    const value = Math.max(IPV6_MIN_MTU, Math.min(mtu, this.mtu));
    if (value >= this.pathMtu(destination)) return;
    if (this.pathMtus.size >= PATH_MTU_LIMIT) this.pathMtus.delete(this.pathMtus.keys().next().value!);
    this.pathMtus.set(destination.key, { mtu: value, until: this.clock.now() + PATH_MTU_EXPIRES_MS });
    this.counters.inc('path_mtu_updates');
  }

  /**
   * Sends one packet: 1. route (next hop, source address), 2. build the frame (header, payload,
   * upper-layer checksum), 3. NDP resolves the next hop's MAC and sends, or queues while it asks.
   * The request is read during the call only, so a caller may rewrite one request object for
   * every packet (TCP does, per segment); on a link that copies frames, a payload writer that
   * writes every byte is written into one reused frame buffer, as IPv4 does.
   */
  send(request: Ipv6SendRequest): Ipv6SendOutcome {
    const c = this.counters;
    if (this.closed) return 'closed';
    this.outRequests.value++;
    const payloadLength = request.payload.length;
    const destination = request.destination;
    if (payloadLength > IPV6_MAX_PAYLOAD_LENGTH) {
      c.inc('Ip6OutDiscards');
      c.inc('tx_too_long');
      return 'too_long';
    }
    const source = request.source ?? this.addresses.selectSource(destination);
    if (!source) {
      c.inc('Ip6OutNoRoutes');
      c.inc('tx_no_source');
      return 'no_source';
    }
    if (!destination.isMulticast && this.addresses.isAssigned(destination)) return this.deliverLocally(request, source);
    const nextHop = this.routes.nextHop(destination);
    if (nextHop === undefined) {
      c.inc('Ip6OutNoRoutes');
      return 'no_route';
    }
    if (destination.isMulticast) c.inc('Ip6OutMcastPkts');
    const mtu = this.pathMtu(destination);
    const offload = request.offload;
    // A super-frame goes whole to a link that cuts it (up to gsoMaxSize); anywhere else its
    // checksum is finished here and it must fit the MTU like any packet.
    const gso = offload !== undefined && this.gsoMaxSize > 0 && IPV6_HEADER_LENGTH + payloadLength <= this.gsoMaxSize;
    if (!gso && IPV6_HEADER_LENGTH + payloadLength > mtu) return this.sendFragments(request, source, nextHop, mtu);
    const writer = request.payload;
    const at = ETHERNET_HEADER_LENGTH + IPV6_HEADER_LENGTH;
    const frame = this.txMemory.frame(
      at + payloadLength,
      (writer instanceof Uint8Array || writer.writesEveryByte === true) && this.dispatcher.link.copiesFrames === true,
      ETHERNET_HEADER_LENGTH + Math.max(this.mtu, this.gsoMaxSize),
    );
    if (writer instanceof Uint8Array) frame.set(writer, at);
    else if (writer.writeAt) writer.writeAt(frame, at);
    else writer.write(frame.subarray(at));
    this.writeHeader(frame, request, source, payloadLength);
    if (offload !== undefined) {
      const o = frameOffloadOf(offload, payloadLength);
      if (gso) return this.resolveAndSend(nextHop, frame, o);
      finishChecksum(frame, o, frame.length);
    }
    return this.resolveAndSend(nextHop, frame);
  }

  /**
   * RFC 8200 4.5: only the source fragments. The whole packet is built first (the upper-layer
   * checksum covers all of it), then cut by fragment.ts into fragments of the path MTU, each
   * resolved and sent like any frame.
   */
  private sendFragments(request: Ipv6SendRequest, source: Ipv6Address, nextHop: Ipv6Address, mtu: number): Ipv6SendOutcome {
    const c = this.counters;
    const payloadLength = request.payload.length;
    if (payloadLength + 8 > IPV6_MAX_PAYLOAD_LENGTH) {
      c.inc('Ip6FragFails');
      c.inc('tx_too_long');
      return 'too_long';
    }
    const whole = new Uint8Array(ETHERNET_HEADER_LENGTH + IPV6_HEADER_LENGTH + payloadLength);
    const payload = whole.subarray(ETHERNET_HEADER_LENGTH + IPV6_HEADER_LENGTH);
    if (request.payload instanceof Uint8Array) payload.set(request.payload);
    else request.payload.write(payload);
    this.writeHeader(whole, request, source, payloadLength);
    // fragments cannot carry an offload: a checksum left to the device is finished here
    if (request.offload) finishChecksum(whole, frameOffloadOf(request.offload, payloadLength), whole.length);
    const identification = this.nextIdentification;
    this.nextIdentification = (identification + 1) >>> 0;
    const header = { source, destination: request.destination, nextHeader: request.nextHeader, hopLimit: request.hopLimit ?? this.hopLimit, trafficClass: request.trafficClass ?? 0, flowLabel: 0 };
    const frames = fragmentIpv6(header, payload, mtu, identification, { headroom: ETHERNET_HEADER_LENGTH });
    c.inc('Ip6FragOKs');
    c.inc('Ip6FragCreates', frames.length);
    let outcome: Ipv6SendOutcome = 'sent';
    for (const frame of frames) {
      frame[12] = EtherType.IPV6 >>> 8;
      frame[13] = EtherType.IPV6 & 0xff;
      const r = this.resolveAndSend(nextHop, frame);
      if (r === 'dropped') outcome = 'dropped';
      else if (r === 'queued' && outcome === 'sent') outcome = 'queued';
    }
    return outcome;
  }

  /**
   * `send` for a payload already in place: `frame` is a whole frame of 14 + 40 + payload bytes,
   * typically a received packet turned into its answer (ICMPv6 echo). The header (and the
   * checksum, with `checksumOffset`) is written over it: no copy.
   */
  sendInPlace(frame: Uint8Array, request: Omit<Ipv6SendRequest, 'payload'>): Ipv6SendOutcome {
    const offset = ETHERNET_HEADER_LENGTH + IPV6_HEADER_LENGTH;
    const payloadLength = frame.length - offset;
    const source = request.source ?? this.addresses.selectSource(request.destination);
    if (this.closed || !source || this.addresses.isAssigned(request.destination) || IPV6_HEADER_LENGTH + payloadLength > this.pathMtu(request.destination)) {
      return this.send({ ...request, payload: frame.slice(offset) });
    }
    const route = this.routes.lookup(request.destination);
    if (route.kind === 'none') return this.send({ ...request, payload: frame.subarray(offset) });
    this.outRequests.value++;
    this.writeHeader(frame, request, source, payloadLength);
    return this.resolveAndSend(route.nextHop, frame);
  }

  private writeHeader(frame: Uint8Array, request: Omit<Ipv6SendRequest, 'payload'>, source: Ipv6Address, payloadLength: number): void {
    frame[12] = EtherType.IPV6 >>> 8;
    frame[13] = EtherType.IPV6 & 0xff;
    emitIpv6Header(frame, ETHERNET_HEADER_LENGTH, source, request.destination, request.nextHeader, request.hopLimit ?? this.hopLimit, request.trafficClass ?? 0, 0, payloadLength);
    const at = request.checksumOffset;
    if (at !== undefined) {
      const start = ETHERNET_HEADER_LENGTH + IPV6_HEADER_LENGTH;
      frame[start + at] = 0;
      frame[start + at + 1] = 0;
      const sum = checksumAdd(frame, ipv6PseudoHeaderSum(source, request.destination, request.nextHeader, payloadLength), start, frame.length);
      const checksum = ~foldChecksum(sum) & 0xffff;
      frame[start + at] = checksum >>> 8;
      frame[start + at + 1] = checksum & 0xff;
    }
  }

  private resolveAndSend(nextHop: Ipv6Address, frame: Uint8Array, offload?: FrameOffload): ResolveOutcome {
    if (logging()) log('out %s via %s', formatIpv6Packet(frame.subarray(ETHERNET_HEADER_LENGTH)), nextHop.toString());
    const resolver = this.resolver;
    if (!resolver) {
      this.counters.inc('Ip6OutDiscards');
      return 'dropped';
    }
    const r = offload ? resolver.resolve(nextHop, frame, offload) : resolver.resolve(nextHop, frame);
    if (r === 'queued') {
      this.counters.inc('tx_queued');
      // NDP keeps the frame until the neighbour answers: the next frame needs memory of its own
      this.txMemory.kept(frame);
    } else if (r === 'dropped') this.counters.inc('Ip6OutDiscards');
    return r;
  }

  /** Packets to our own address go up without touching the link, on a later microtask. */
  private deliverLocally(request: Ipv6SendRequest, source: Ipv6Address): Ipv6SendOutcome {
    if (this.loopback.length >= LOOPBACK_QUEUE_LIMIT) {
      this.counters.inc('tx_loopback_dropped');
      return 'dropped';
    }
    const frame = new Uint8Array(ETHERNET_HEADER_LENGTH + IPV6_HEADER_LENGTH + request.payload.length);
    const payload = frame.subarray(ETHERNET_HEADER_LENGTH + IPV6_HEADER_LENGTH);
    if (request.payload instanceof Uint8Array) payload.set(request.payload);
    else request.payload.write(payload);
    this.writeHeader(frame, request, source, request.payload.length);
    if (request.offload) finishChecksum(frame, frameOffloadOf(request.offload, request.payload.length), frame.length);
    this.counters.inc('tx_loopback');
    this.loopback.push(frame.subarray(ETHERNET_HEADER_LENGTH));
    if (this.loopback.length === 1) {
      queueMicrotask(() => {
        const batch = this.loopback;
        this.loopback = [];
        for (const bytes of batch) {
          if (this.closed) return;
          const p = new Ipv6Packet(bytes);
          this.deliver(p, p.nextHeader, newDeliveryInfo());
        }
      });
    }
    return 'sent';
  }

  /** Unregisters from the dispatcher and stops the address timers. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dispatcher.unregister(EtherType.IPV6);
    this.addresses.close();
    this.reassembly.clear();
    this.loopback = [];
  }
}

/** A transport's super-frame request in the frame's terms (offsets from the Ethernet header on). */
function frameOffloadOf(offload: Ipv6SendOffload, payloadLength: number): FrameOffload {
  return partialChecksumOffload(offload, ETHERNET_HEADER_LENGTH + IPV6_HEADER_LENGTH, payloadLength, 'tcpv6');
}

/** Ipv6DeliveryInfo as the layer writes it: every field present, so the one object keeps its shape. */
interface MutableDeliveryInfo {
  destinationKind: Ipv6DeliveryInfo['destinationKind'];
  linkGroup: boolean;
  reassembled: boolean;
  payloadOffset: number;
  frame: Uint8Array | undefined;
  offload: FrameOffload | undefined;
  routerAlert: number | undefined;
}

/** A delivery info for a unicast packet whole in its bytes (the shape of the layer's reused one). */
function newDeliveryInfo(): MutableDeliveryInfo {
  return { destinationKind: 'unicast', linkGroup: false, reassembled: false, payloadOffset: IPV6_HEADER_LENGTH, frame: undefined, offload: undefined, routerAlert: undefined };
}

/** ::1 at `bytes[offset]` (RFC 4291 2.5.3), read without making an address. */
function isLoopbackAt(bytes: Uint8Array, offset: number): boolean {
  for (let i = 0; i < 15; i++) if (bytes[offset + i] !== 0) return false;
  return bytes[offset + 15] === 1;
}
