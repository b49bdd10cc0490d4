/**
 * A UDP socket that reads like Node's `dgram`: bind a port, `send(data, port, address)`, receive
 * datagrams with `for await (const d of socket)` or `socket.on('message', ...)`, `close()`.
 *
 * The receive queue is bounded (datagrams and bytes, like a socket's receive buffer): when the
 * reader falls behind, new datagrams are dropped and counted (`rx_queue_full`, Linux's
 * RcvbufErrors) instead of growing memory.
 */
import { Counters, IPV4_UNSPECIFIED, Ipv6Address, isIpv4Multicast, parseIpv4, type Ipv4Address } from '@tapstack/link';
import type { Ipv4SendOutcome } from '@tapstack/ipv4';
import type { Ipv6SendOutcome } from '@tapstack/ipv6';
import { UdpIcmpError, UdpSocketError } from './errors.ts';
import { formatUdpEndpoint, type UdpAddress } from './ports.ts';
import { UDP_MAX_PAYLOAD, UDP_MAX_PAYLOAD_IPV6 } from './udp.ts';

/**
 * One received datagram. `data` is a view into the received frame; copy it to keep it past a
 * later change. `family` says which kind of address `address` and `destination` are, so
 * TypeScript narrows them: `if (d.family === 'IPv6') d.address.toString()`.
 */
export type UdpDatagram = UdpIpv4Datagram | UdpIpv6Datagram;

export interface UdpIpv4Datagram {
  readonly family: 'IPv4';
  readonly data: Uint8Array;
  /** The sender's address and port (Node's `rinfo.address`/`rinfo.port`). */
  readonly address: Ipv4Address;
  readonly port: number;
  /** The address the datagram was sent to: ours, a broadcast or a multicast group. */
  readonly destination: Ipv4Address;
}

export interface UdpIpv6Datagram {
  readonly family: 'IPv6';
  readonly data: Uint8Array;
  readonly address: Ipv6Address;
  readonly port: number;
  /** Ours, or a multicast group we joined. */
  readonly destination: Ipv6Address;
}

/**
 * Who sent a datagram, as the 'message' listener gets it: Node's `rinfo` (`family`, `address`,
 * `port`, `size`), with the address as this stack's value for its family (an IPv4 number,
 * `formatIpv4` prints it; an Ipv6Address, whose `toString()` does). Pass it to `reply`.
 */
export type UdpRemoteInfo =
  | { readonly family: 'IPv4'; readonly address: Ipv4Address; readonly port: number; readonly size: number }
  | { readonly family: 'IPv6'; readonly address: Ipv6Address; readonly port: number; readonly size: number };

/**
 * What the IP layer did with a datagram: `sent`, `queued` (waiting for ARP or NDP), or why not:
 * `dropped` (resolver or link refused it), `no_route`, `fragmentation_needed` (IPv4, DF set),
 * `too_long`, `no_source` (IPv6 had no usable source address for the destination), `closed`.
 */
export type UdpSendOutcome = Ipv4SendOutcome | Ipv6SendOutcome;

/**
 * What `reply` did: IPv4's outcome, or `unanswerable` when the sender cannot be answered and
 * nothing was sent (source port 0, RFC 768's "no reply expected"; source 0.0.0.0, a host without
 * an address yet; a broadcast or multicast source, which no host may have, RFC 1122 3.2.1.3).
 */
export type UdpReplyOutcome = UdpSendOutcome | 'unanswerable';

export interface UdpReceiveQueueLimits {
  /** Datagrams waiting at most (default 1024). */
  maxDatagrams?: number;
  /** Bytes of data waiting at most (default 1 MiB; always room for one datagram). */
  maxBytes?: number;
}

export const DEFAULT_RECEIVE_QUEUE = { maxDatagrams: 1024, maxBytes: 1 << 20 } as const;

export const SOCKET_COUNTERS = ['rx_datagrams', 'rx_bytes', 'rx_queue_full', 'rx_icmp_errors', 'tx_datagrams', 'tx_bytes', 'tx_dropped', 'tx_unanswerable'] as const;
export type SocketCounterName = (typeof SOCKET_COUNTERS)[number];

export type MessageListener = (data: Uint8Array, from: UdpRemoteInfo) => void;
export type CloseListener = () => void;
export type ErrorListener = (error: UdpIcmpError) => void;

/** What a socket needs from the UDP layer; kept narrow so the socket reads on its own. */
export interface UdpSocketHost {
  /** Binds `port` (0: ephemeral) on `address` (0.0.0.0: all IPv4, `::` both families); returns the port. Throws when taken. */
  bindPort(socket: UdpSocket, port: number, address: UdpAddress): number;
  /** What `bind()` without an address means: `::` (both families) when the stack has IPv6, else 0.0.0.0. */
  readonly defaultAddress: UdpAddress;
  releasePort(socket: UdpSocket, port: number): void;
  /** Whether `address` is a broadcast address for this stack (limited or directed). */
  isBroadcast(address: Ipv4Address): boolean;
  /** A reply was not sent because its destination cannot be answered (the layer counts it). */
  unanswerable(): void;
  /** Sends over the destination's family; `source` is the bound address (a wildcard: the layer picks). */
  sendDatagram(
    source: UdpAddress,
    sourcePort: number,
    destination: UdpAddress,
    destinationPort: number,
    data: Uint8Array,
    options: { ttl?: number },
  ): UdpSendOutcome;
}

export interface UdpSocketOptions {
  receiveQueue?: UdpReceiveQueueLimits;
}

/** An address given by the caller: an IPv4 number, an Ipv6Address, or text of either (a `:` makes it IPv6). */
function toAddress(address: UdpAddress | string): UdpAddress {
  if (typeof address === 'string') {
    try {
      return address.includes(':') ? Ipv6Address.parse(address) : parseIpv4(address);
    } catch (err) {
      throw new UdpSocketError('EINVAL', (err as Error).message);
    }
  }
  if (address instanceof Ipv6Address) return address;
  if (!Number.isInteger(address) || address < 0 || address > 0xffffffff) {
    throw new UdpSocketError('EINVAL', `${String(address)} is not an IPv4 address`);
  }
  return address;
}

function checkPort(port: number, allowZero: boolean): void {
  if (!Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > 65535) {
    throw new UdpSocketError('EINVAL', `port ${String(port)} is not ${allowZero ? '0-65535' : '1-65535'}`);
  }
}

const encoder = new TextEncoder();

export class UdpSocket implements AsyncIterable<UdpDatagram> {
  readonly counters = new Counters<SocketCounterName>('udp.socket', SOCKET_COUNTERS);
  private localAddress: UdpAddress = IPV4_UNSPECIFIED;
  private localPort = 0;
  private isClosed = false;
  private broadcast = false;
  private ttl: number | undefined;
  private readonly maxDatagrams: number;
  private readonly maxBytes: number;
  // The receive queue: an array used as a ring by `head`, compacted now and then.
  private queue: UdpDatagram[] = [];
  private head = 0;
  private queuedBytes = 0;
  private readonly waiters: ((d: UdpDatagram | undefined) => void)[] = [];
  private readonly messageListeners: MessageListener[] = [];
  private readonly closeListeners: CloseListener[] = [];
  private readonly errorListeners: ErrorListener[] = [];

  constructor(
    private readonly host: UdpSocketHost,
    options: UdpSocketOptions = {},
  ) {
    this.maxDatagrams = Math.max(1, options.receiveQueue?.maxDatagrams ?? DEFAULT_RECEIVE_QUEUE.maxDatagrams);
    this.maxBytes = Math.max(UDP_MAX_PAYLOAD, options.receiveQueue?.maxBytes ?? DEFAULT_RECEIVE_QUEUE.maxBytes);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get bound(): boolean {
    return this.localPort !== 0;
  }

  /**
   * Binds a local port (0 or none: an ephemeral one, 49152-65535) on one of the stack's
   * addresses (IPv4 or IPv6) or on a wildcard: none or '::' takes both families when the stack
   * has IPv6 (Linux with bindv6only=0), '0.0.0.0' IPv4 only. Throws `EADDRINUSE` when taken,
   * like `dgram`'s bind does through its 'error' event. Returns the socket for chaining.
   */
  bind(port = 0, address?: UdpAddress | string): this {
    this.checkOpen();
    checkPort(port, true);
    if (this.bound) throw new UdpSocketError('EINVAL', `socket is already bound to ${this.describe()}`);
    const addr = address === undefined ? this.host.defaultAddress : toAddress(address);
    this.localPort = this.host.bindPort(this, port, addr);
    this.localAddress = addr;
    return this;
  }

  /**
   * The bound address and port, like `dgram`'s `socket.address()` (`::` for a socket that takes
   * both families). Throws when not bound.
   */
  address(): { family: 'IPv4'; address: Ipv4Address; port: number } | { family: 'IPv6'; address: Ipv6Address; port: number } {
    if (!this.bound) throw new UdpSocketError('EINVAL', 'socket is not bound');
    const address = this.localAddress;
    const port = this.localPort;
    return typeof address === 'number' ? { family: 'IPv4', address, port } : { family: 'IPv6', address, port };
  }

  /** Allows sending to broadcast addresses (SO_BROADCAST; off by default, as in Linux and Node). */
  setBroadcast(on: boolean): void {
    this.broadcast = on;
  }

  /** TTL (IPv4) or hop limit (IPv6) of datagrams sent from now on (1-255; default: the IP layer's). */
  setTTL(ttl: number): void {
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) throw new UdpSocketError('EINVAL', `TTL ${ttl} is not 1-255`);
    this.ttl = ttl;
  }

  /**
   * Sends one datagram (a string is sent as UTF-8) to an IPv4 or IPv6 address (a number, an
   * Ipv6Address, or text). An unbound socket is bound to an ephemeral port first, as `dgram`
   * does. Throws on misuse (closed, port out of range, port 0 (Linux's sendto says EINVAL), more
   * than 65507 bytes over IPv4 or 65519 over IPv6, broadcast without `setBroadcast(true)`, a
   * family the socket's bound address does not have); returns what the IP layer did with it. To
   * answer a datagram, use `reply`, which never throws about the sender's address.
   */
  send(data: Uint8Array | string, port: number, address: UdpAddress | string): UdpSendOutcome {
    this.checkOpen();
    checkPort(port, false);
    const destination = toAddress(address);
    const bytes = typeof data === 'string' ? encoder.encode(data) : data;
    const v4 = typeof destination === 'number';
    const max = v4 ? UDP_MAX_PAYLOAD : UDP_MAX_PAYLOAD_IPV6;
    if (bytes.length > max) {
      throw new UdpSocketError('EMSGSIZE', `${bytes.length} bytes do not fit one UDP datagram over ${v4 ? 'IPv4' : 'IPv6'} (at most ${max})`);
    }
    if (v4) {
      if (destination === IPV4_UNSPECIFIED) throw new UdpSocketError('EINVAL', 'cannot send to 0.0.0.0');
      if (!this.broadcast && this.host.isBroadcast(destination)) {
        throw new UdpSocketError('EACCES', `${formatUdpEndpoint(destination, port)} is a broadcast address: call setBroadcast(true) first`);
      }
    } else if (destination.isUnspecified) throw new UdpSocketError('EINVAL', 'cannot send to ::');
    if (!this.bound) this.bind(0);
    const local = this.localAddress;
    // A socket bound to one family's address sends only to that family (`::` sends to both).
    if (v4 ? typeof local !== 'number' && !local.isUnspecified : typeof local === 'number') {
      throw new UdpSocketError('EAFNOSUPPORT', `a socket bound to ${this.describe()} cannot send to ${formatUdpEndpoint(destination, port)}`);
    }
    const outcome = this.host.sendDatagram(
      this.localAddress,
      this.localPort,
      destination,
      port,
      bytes,
      this.ttl === undefined ? {} : { ttl: this.ttl },
    );
    if (outcome === 'sent' || outcome === 'queued') {
      this.counters.inc('tx_datagrams');
      this.counters.inc('tx_bytes', bytes.length);
    } else this.counters.inc('tx_dropped');
    return outcome;
  }

  /**
   * Answers the sender of a received datagram (`to` is the `from` of the 'message' event, or a
   * UdpDatagram): what a server does. Unlike `send`, the destination came from the network, so
   * one that cannot be answered (port 0, 0.0.0.0 or ::, a broadcast or multicast source) is not
   * a mistake to throw about: nothing is sent, `tx_unanswerable` is counted, and the outcome says
   * `unanswerable`. Mistakes of the caller (a closed socket, too much data) still throw.
   */
  reply(data: Uint8Array | string, to: { readonly address: UdpAddress; readonly port: number }): UdpReplyOutcome {
    this.checkOpen();
    const { address, port } = to;
    const unanswerable =
      typeof address === 'number'
        ? address === IPV4_UNSPECIFIED || isIpv4Multicast(address) || this.host.isBroadcast(address)
        : address.isUnspecified || address.isMulticast;
    if (port === 0 || unanswerable) {
      this.counters.inc('tx_unanswerable');
      this.host.unanswerable();
      return 'unanswerable';
    }
    return this.send(data, port, address);
  }

  /**
   * Calls `listener(data, { address, port, size })` for every datagram, like `dgram`'s
   * 'message' event. While a message listener is registered, datagrams go to the listeners
   * and not to the receive queue. `on('error')` hears ICMP errors about datagrams this socket
   * sent (port unreachable: ECONNREFUSED); `on('close')` runs once when the socket closes.
   */
  on(event: 'message', listener: MessageListener): this;
  on(event: 'error', listener: ErrorListener): this;
  on(event: 'close', listener: CloseListener): this;
  on(event: 'message' | 'error' | 'close', listener: MessageListener | ErrorListener | CloseListener): this {
    if (event === 'message') this.messageListeners.push(listener as MessageListener);
    else if (event === 'error') this.errorListeners.push(listener as ErrorListener);
    else if (this.isClosed) (listener as CloseListener)();
    else this.closeListeners.push(listener as CloseListener);
    return this;
  }

  off(event: 'message' | 'error' | 'close', listener: MessageListener | ErrorListener | CloseListener): this {
    const list: unknown[] = event === 'message' ? this.messageListeners : event === 'error' ? this.errorListeners : this.closeListeners;
    const i = list.indexOf(listener);
    if (i >= 0) list.splice(i, 1);
    return this;
  }

  /** The next datagram, waiting for one; `undefined` once the socket is closed. */
  receive(): Promise<UdpDatagram | undefined> {
    if (this.head < this.queue.length) return Promise.resolve(this.shift());
    if (this.isClosed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Datagrams as they arrive, until the socket closes: `for await (const { data, address, port } of socket)`. */
  [Symbol.asyncIterator](): AsyncIterator<UdpDatagram> {
    return {
      next: async (): Promise<IteratorResult<UdpDatagram>> => {
        const d = await this.receive();
        return d === undefined ? { value: undefined, done: true } : { value: d, done: false };
      },
      return: async (): Promise<IteratorResult<UdpDatagram>> => {
        this.close();
        return { value: undefined, done: true };
      },
    };
  }

  /** Datagrams waiting in the receive queue. */
  get queued(): number {
    return this.queue.length - this.head;
  }

  /** Releases the port, ends every iterator and pending `receive()`. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.bound) this.host.releasePort(this, this.localPort);
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    for (const w of this.waiters.splice(0)) w(undefined);
    for (const l of this.closeListeners.splice(0)) l();
  }

  /** `0.0.0.0:7`, `[fd00:10::2]:7`, `*:7` (`::`, both families) */
  describe(): string {
    return formatUdpEndpoint(this.localAddress, this.localPort);
  }

  /**
   * Called by the UDP layer with a datagram for this socket. Returns false when the receive
   * queue was full and the datagram was dropped (the layer counts it too).
   */
  deliver(datagram: UdpDatagram): boolean {
    if (this.isClosed) return false;
    const size = datagram.data.length;
    if (this.messageListeners.length > 0) {
      this.counters.inc('rx_datagrams');
      this.counters.inc('rx_bytes', size);
      const from: UdpRemoteInfo =
        datagram.family === 'IPv4'
          ? { family: 'IPv4', address: datagram.address, port: datagram.port, size }
          : { family: 'IPv6', address: datagram.address, port: datagram.port, size };
      for (const l of this.messageListeners) l(datagram.data, from);
      return true;
    }
    const waiter = this.waiters.shift();
    if (waiter) {
      this.counters.inc('rx_datagrams');
      this.counters.inc('rx_bytes', size);
      waiter(datagram);
      return true;
    }
    if (this.queued >= this.maxDatagrams || this.queuedBytes + size > this.maxBytes) {
      this.counters.inc('rx_queue_full');
      return false;
    }
    this.counters.inc('rx_datagrams');
    this.counters.inc('rx_bytes', size);
    // The data is a view into the received frame, which may be a view into a whole TAP read:
    // a datagram that waits in the queue keeps only its own bytes, the ones maxBytes counts.
    const data = datagram.data;
    this.queue.push(data.byteLength === data.buffer.byteLength ? datagram : { ...datagram, data: new Uint8Array(data) });
    this.queuedBytes += size;
    return true;
  }

  /** Called by the UDP layer with an ICMP or ICMPv6 error about a datagram this socket sent. */
  reportError(error: UdpIcmpError): void {
    if (this.isClosed) return;
    this.counters.inc('rx_icmp_errors');
    for (const l of this.errorListeners) l(error);
  }

  private shift(): UdpDatagram {
    const d = this.queue[this.head++]!;
    this.queuedBytes -= d.data.length;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return d;
  }

  private checkOpen(): void {
    if (this.isClosed) throw new UdpSocketError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'socket is closed');
  }
}
