/**
 * A listening socket, shaped like Node's `net.Server`: `listen(port[, address][, callback])`,
 * 'connection' with a `TcpSocket` for every completed handshake, `close()`, `address()`.
 *
 * The layer keeps the half-open connections (SYN-RECEIVED) in its connection table and counts
 * them here (`pendingCount`): at `backlog` (Node's default 511, capped by the layer's
 * tcp_max_syn_backlog) further SYNs are answered with SYN cookies instead of new state.
 * Node's servers have no accept queue to drain: each completed connection is handed over at once.
 */
import { EventEmitter } from 'node:events';
import { IPV4_UNSPECIFIED } from '@tapstack/link';
import { formatTcpAddress, tcpFamilyOf, toTcpAddress, type TcpAddress } from './address.ts';
import type { CongestionControlChoice } from './congestion.ts';
import { TcpError } from './errors.ts';
import type { TcpSocket } from './socket.ts';

/** What a server needs from the layer. */
export interface ListenerHost {
  bindListener(server: TcpServer, port: number, address: TcpAddress): number;
  /** What `listen(port)` binds without an address: `::` (both families) with IPv6, else 0.0.0.0. */
  readonly defaultListenAddress: TcpAddress;
  unbindListener(server: TcpServer, port: number): void;
  readonly clock: { hold(): () => void };
}

export class TcpServer extends EventEmitter {
  /** Half-open connections (SYN-RECEIVED) this listener has. */
  pendingCount = 0;
  backlog = 511;
  /**
   * The congestion control of the connections this listener accepts (Linux: TCP_CONGESTION set on
   * the listening socket is inherited); undefined takes the layer's.
   */
  congestionControl: CongestionControlChoice | undefined;
  /**
   * `::` takes both families (Linux's IPv6 socket with bindv6only=0), `0.0.0.0` IPv4 only, one of
   * the stack's addresses only segments to it.
   */
  boundAddress: TcpAddress = IPV4_UNSPECIFIED;
  private port: number | undefined;
  private release: (() => void) | undefined;
  private readonly open = new Set<TcpSocket>();

  constructor(private readonly host: ListenerHost) {
    super();
  }

  get listening(): boolean {
    return this.port !== undefined;
  }

  /**
   * Starts listening on `port` (0: an ephemeral one) of `address` (default: every address of the
   * stack, both families when it has IPv6; text like '0.0.0.0', '::', 'fd00:10::2' or a value).
   */
  listen(port: number, address?: string | TcpAddress | (() => void), callback?: () => void): this {
    if (typeof address === 'function') {
      callback = address;
      address = undefined;
    }
    if (this.port !== undefined) throw new TcpError('EINVAL', `the server is already listening on port ${this.port}`);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TcpError('EINVAL', `port ${port} is not 0-65535`);
    const bound = address === undefined ? this.host.defaultListenAddress : toTcpAddress(address);
    this.port = this.host.bindListener(this, port, bound);
    this.boundAddress = bound;
    this.release = this.host.clock.hold();
    if (callback) queueMicrotask(callback);
    queueMicrotask(() => this.emit('listening'));
    return this;
  }

  /** Whether a SYN to `destination` is for this listener. */
  accepts(destination: TcpAddress): boolean {
    const bound = this.boundAddress;
    if (typeof bound === 'number') return typeof destination === 'number' && (bound === IPV4_UNSPECIFIED || bound === destination);
    return bound.isUnspecified || (typeof destination !== 'number' && bound.equals(destination));
  }

  /** `net.Server.address()`. */
  address(): { address: string; family: string; port: number } | null {
    return this.port === undefined ? null : { address: formatTcpAddress(this.boundAddress), family: tcpFamilyOf(this.boundAddress), port: this.port };
  }

  /** Stops listening; open connections go on (as in net), the callback runs when they have all closed. */
  close(callback?: (error?: Error) => void): this {
    if (this.port === undefined) {
      if (callback) queueMicrotask(() => callback(new TcpError('ENOTCONN', 'the server is not listening')));
      return this;
    }
    this.host.unbindListener(this, this.port);
    this.port = undefined;
    this.release?.();
    this.release = undefined;
    const done = (): void => {
      if (this.open.size > 0) return;
      this.emit('close');
      callback?.();
    };
    if (this.open.size === 0) queueMicrotask(done);
    else for (const s of this.open) s.once('close', done);
    return this;
  }

  /**
   * Node's `net.Server.maxConnections`: past it, a new connection is closed at once and 'drop'
   * is emitted instead of 'connection' (the bound on accepted connections, as Linux's accept
   * queue bounds the ones an application has not taken yet).
   */
  maxConnections = Number.POSITIVE_INFINITY;

  /** The layer hands over a connection that completed its handshake. */
  deliver(socket: TcpSocket): void {
    if (this.open.size >= this.maxConnections) {
      this.emit('drop', { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort, localAddress: socket.localAddress, localPort: socket.localPort });
      socket.destroy();
      return;
    }
    this.open.add(socket);
    socket.acceptedBy = this;
    socket.on('close', leaveServer);
    this.emit('connection', socket);
  }

  /** @internal A socket it accepted closed. */
  socketClosed(socket: TcpSocket): void {
    this.open.delete(socket);
  }

  get connections(): number {
    return this.open.size;
  }
}

// One 'close' listener for every accepted socket (an emitter calls it with the socket as `this`):
// a closure and once()'s wrapper for each were about 150 bytes of every idle connection.
function leaveServer(this: TcpSocket): void {
  this.acceptedBy?.socketClosed(this);
}
