/**
 * The composition root: one function that wires the layers together the way docs/architecture.md
 * draws them. Receive: link -> EtherTypeDispatcher -> (0x0806 ARP | 0x0800 IPv4 -> protocol 1
 * ICMP, 6 TCP, 17 UDP). Send: ICMP/UDP/TCP -> IPv4 (route, fragment) -> ARP resolver (queue while
 * INCOMPLETE) -> link.
 * Every layer registers itself with the one below; nothing below knows what sits above.
 */
import { Arp, type NeighbourParams } from '@tapstack/arp';
import { IcmpLayer, type IcmpLayerOptions } from '@tapstack/icmp';
import { IpProtocol, Ipv4Cidr, Ipv4Layer } from '@tapstack/ipv4';
import { UdpLayer, formatUdp, type UdpReceiveQueueLimits } from '@tapstack/udp';
import { TcpLayer, TcpTraceFormatter, type TcpLayerOptions } from '@tapstack/tcp';
import { Icmpv6Layer } from '@tapstack/icmpv6';
import { Ipv6Addresses, Ipv6Cidr, Ipv6Layer } from '@tapstack/ipv6';
import { Ndp, type NdpOptions } from '@tapstack/ndp';
import { frameDescriber, type PayloadDescriber } from './describe.ts';
import {
  EtherTypeDispatcher,
  SystemClock,
  formatIpv4,
  parseIpv4,
  type Clock,
  type Ipv4Address,
  type Link,
} from '@tapstack/link';

export interface StackOptions {
  /** Where frames go in and out: a TapDevice, one end of a MemoryLink pair, or a wrapper of either. */
  link: Link;
  /** The stack's address and prefix, `10.0.0.2/24`. */
  ip: string | Ipv4Cidr;
  /** Default gateway (optional: without one, only the connected prefix is reachable). */
  gateway?: string | Ipv4Address;
  /** Clock for every timer (default: the system clock). Pass a VirtualClock in simulations. */
  clock?: Clock;
  /** Neighbour subsystem tunables, Linux names in camelCase (baseReachableTimeMs, ...). */
  neighbour?: Partial<NeighbourParams>;
  arp?: {
    /** Let unsolicited ARP replies create entries (Linux arp_accept). Default false. */
    arpAccept?: boolean;
    /** Send a gratuitous ARP on start (default true). */
    announce?: boolean;
    /** Probe for the address first, RFC 5227 (default false). */
    probe?: boolean;
  };
  /**
   * ICMP settings, Linux names in camelCase: echoIgnoreBroadcasts (true), errorRateLimit
   * (host-wide, 1000/s burst 50), icmpRatelimit (per peer, 1000 ms), icmpRatemask (6168),
   * icmpRatelimitPeers (4096).
   */
  icmp?: Omit<IcmpLayerOptions, 'ipv4' | 'clock'>;
  /** TCP settings: connection tunables (Linux names), SYN backlog, SYN cookies, challenge-ACK limit. */
  tcp?: Omit<TcpLayerOptions, 'ipv4' | 'icmp' | 'ipv6' | 'icmpv6' | 'clock'>;
  udp?: {
    /** Ports for sockets that name none (default 49152-65535). */
    ephemeralPorts?: { low: number; high: number };
    /** Default receive queue limits of new sockets (default 1024 datagrams, 1 MiB). */
    receiveQueue?: UdpReceiveQueueLimits;
  };
  /**
   * IPv6 (on by default): the link-local address from the MAC, these addresses (`fd00:10::2/64`),
   * each through DAD, router solicitation and SLAAC. `false`: IPv4 only.
   */
  ipv6?:
    | false
    | {
        addresses?: readonly (string | Ipv6Cidr)[];
        /** NDP switches: dad, routerSolicitation, slaac, mld (all default true), delays (random jitter, default true). */
        ndp?: Partial<Pick<NdpOptions, 'dad' | 'routerSolicitation' | 'slaac' | 'mld' | 'delays'>>;
      };
  /** Print one line per frame in and out (true: to stderr). */
  trace?: boolean | ((line: string) => void);
  /** Randomness for reachable-time jitter (default Math.random); seed it in simulations. */
  random?: () => number;
}

/**
 * What a layer registers with the stack, once, to appear everywhere the stack lists its layers:
 * in `counters()`, in `close()` (in reverse order of registration) and, with `ipProtocol` and
 * `describe`, in the `--trace` lines of its IP protocol. The built-in layers register this way,
 * and so does a reader's own (docs/extending.md).
 */
export interface StackLayer {
  readonly name: string;
  readonly counters?: { format(all?: boolean): string };
  close?(): void;
  /** The IP protocol number this layer's trace describer decodes. */
  readonly ipProtocol?: number;
  describe?: PayloadDescriber;
}

export interface Stack {
  readonly link: Link;
  readonly dispatcher: EtherTypeDispatcher;
  readonly arp: Arp;
  readonly ipv4: Ipv4Layer;
  readonly icmp: IcmpLayer;
  /** UDP sockets: `stack.udp.bind(7)`, like Node's dgram. */
  readonly udp: UdpLayer;
  /** TCP: `stack.tcp.createServer(onConnection).listen(80)`, `stack.tcp.connect({ host, port })`, like Node's net. */
  readonly tcp: TcpLayer;
  readonly address: Ipv4Address;
  /** IPv6, ICMPv6 and Neighbour Discovery (undefined with `ipv6: false`). */
  readonly ipv6: Ipv6Layer | undefined;
  readonly icmpv6: Icmpv6Layer | undefined;
  readonly ndp: Ndp | undefined;
  readonly clock: Clock;
  /** Sends the gratuitous ARP (and the RFC 5227 probe first, when asked). Not called by createStack: call it once, when the stack is ready to answer (tapstack up does). */
  start(): void;
  /** Every layer's counters, one `layer.name value` line each (non-zero only unless `all`). */
  counters(all?: boolean): string;
  /**
   * The neighbour tables, like `ip neigh show`: ARP's (IPv4) then NDP's (IPv6), or one of them
   * with `family` (`ip -4 neigh` / `ip -6 neigh`); `statistics: true` is `ip -s neigh`.
   */
  neighbours(options?: { statistics?: boolean; family?: 4 | 6 }): string;
  /** TCP connections and listeners, like `ss -tan`. */
  connections(): string;
  /**
   * Adds a layer to the stack's list: its counters join `counters()`, its `close()` runs on
   * `stack.close()` (before the layers below it), and its describer joins `--trace`.
   */
  register(layer: StackLayer): void;
  /** The registered layers, bottom first. */
  readonly layers: readonly StackLayer[];
  /** Stops every timer and closes the link. Idempotent. */
  close(): void;
}

export function createStack(options: StackOptions): Stack {
  const clock = options.clock ?? new SystemClock();
  const cidr = typeof options.ip === 'string' ? Ipv4Cidr.parse(options.ip) : options.ip;
  const gateway = typeof options.gateway === 'string' ? parseIpv4(options.gateway) : options.gateway;
  if (gateway !== undefined && !cidr.contains(gateway)) {
    throw new Error(`gateway ${formatIpv4(gateway)} is not inside ${cidr.toString()}: it must be a neighbour on the link`);
  }
  const trace =
    options.trace === true ? (line: string) => process.stderr.write(`${line}\n`) : options.trace || undefined;

  const link = options.link;
  // The trace describer asks this map, which every registered layer with an IP protocol adds to.
  const describers = new Map<number, PayloadDescriber>();
  const dispatcher = new EtherTypeDispatcher(link, trace ? { trace, describe: frameDescriber(describers) } : {});
  const arp = new Arp({
    dispatcher,
    clock,
    addresses: [cidr.address],
    // the prefix's directed broadcast (10.0.0.255) goes to ff:ff:ff:ff:ff:ff without ARP (UDP broadcasts)
    ...(cidr.prefixLength <= 30 ? { broadcasts: [cidr.broadcast] } : {}),
    ...(options.random ? { random: options.random } : {}),
    ...(options.neighbour ? { neighbour: options.neighbour } : {}),
    ...options.arp,
  });
  const ipv4 = new Ipv4Layer({
    dispatcher,
    resolver: arp,
    clock,
    address: cidr,
    ...(gateway !== undefined ? { gateway } : {}),
  });
  const icmp = new IcmpLayer({ ipv4, clock, ...options.icmp });

  // IPv6 beside IPv4 (seed 003: nd_tbl beside arp_tbl): addresses, the layer, ICMPv6 on it, and
  // NDP resolving for the layer and receiving through ICMPv6.
  let ipv6: Ipv6Layer | undefined;
  let icmpv6: Icmpv6Layer | undefined;
  let ndp: Ndp | undefined;
  if (options.ipv6 !== false) {
    const v6 = options.ipv6 ?? {};
    ipv6 = new Ipv6Layer({ dispatcher, clock, addresses: new Ipv6Addresses(dispatcher, clock) });
    icmpv6 = new Icmpv6Layer({ ipv6, clock, ...(options.random ? { random: options.random } : {}) });
    ndp = new Ndp({
      dispatcher,
      ipv6,
      icmpv6,
      clock,
      ...(options.random ? { random: options.random } : {}),
      ...(options.neighbour ? { neighbour: options.neighbour } : {}),
      ...v6.ndp,
    });
    for (const a of v6.addresses ?? []) ndp.addAddress(typeof a === 'string' ? Ipv6Cidr.parse(a) : a);
  }
  // TCP and UDP on both families when IPv6 is there: `listen(80)` and `udp.bind(7)` are then `::`, dual-stack.
  const tcp = new TcpLayer({ ipv4, icmp, ...(ipv6 && icmpv6 ? { ipv6, icmpv6 } : {}), clock, ...(options.random ? { random: options.random } : {}), ...options.tcp });
  // Before TCP's timers act (a retransmission, a loss probe), the device is read: ACKs waiting
  // there would have made them needless (Link.receivePending).
  if (link.receivePending) tcp.timers.beforeFiring = () => link.receivePending?.();
  const udp = new UdpLayer({
    ipv4,
    icmp,
    ...(ipv6 && icmpv6 ? { ipv6, icmpv6 } : {}),
    ...(options.random ? { random: options.random } : {}),
    ...options.udp,
  });

  const layers: StackLayer[] = [];
  const register = (layer: StackLayer): void => {
    if (layers.some((l) => l.name === layer.name)) throw new Error(`a layer named ${layer.name} is already registered`);
    layers.push(layer);
    if (layer.ipProtocol !== undefined && layer.describe) describers.set(layer.ipProtocol, layer.describe);
  };
  register({ name: 'link', counters: link.counters, close: () => link.close() });
  register({ name: 'ethertype', counters: dispatcher.counters });
  register({ name: 'arp', counters: arp.counters, close: () => arp.close() });
  register({ name: 'ipv4', counters: ipv4.counters, close: () => ipv4.close() });
  register({ name: 'icmp', counters: icmp.counters, close: () => icmp.close() });
  if (ipv6 && icmpv6 && ndp) {
    const [v6, i6, nd] = [ipv6, icmpv6, ndp];
    register({ name: 'ipv6', counters: v6.counters, close: () => v6.close() });
    register({ name: 'ndp', counters: { format: (all?: boolean) => [nd.counters.format(all), nd.invalid.format(all), nd.table.stats.format(all)].filter(Boolean).join('\n') }, close: () => nd.close() });
    register({ name: 'icmpv6', counters: i6.counters, close: () => i6.close() });
  }
  register({ name: 'udp', counters: udp.counters, close: () => udp.close(), ipProtocol: IpProtocol.UDP, describe: formatUdp });
  const tcpTrace = new TcpTraceFormatter();
  register({ name: 'tcp', counters: tcp.counters, close: () => tcp.close(), ipProtocol: IpProtocol.TCP, describe: (bytes, source, destination) => tcpTrace.format(bytes, source, destination) });

  let closed = false;
  const stack: Stack = {
    link,
    dispatcher,
    arp,
    ipv4,
    icmp,
    udp,
    tcp,
    clock,
    layers,
    register,
    address: cidr.address,
    ipv6,
    icmpv6,
    ndp,
    start() {
      arp.start();
      ndp?.start();
    },
    counters(all = false) {
      return layers
        .map((l) => l.counters?.format(all) ?? '')
        .filter(Boolean)
        .join('\n');
    },
    neighbours(options = {}) {
      const v4 = options.family === 6 ? '' : arp.table.show(options);
      const v6 = options.family === 4 || !ndp ? '' : ndp.table.show(options);
      return [v4, v6].filter(Boolean).join('\n');
    },
    connections() {
      return tcp.show();
    },
    close() {
      if (closed) return;
      closed = true;
      // top down: a layer closes before the ones it sends through
      for (const layer of [...layers].reverse()) layer.close?.();
    },
  };
  return stack;
}
