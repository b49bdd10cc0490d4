/**
 * A TCP socket as Node's `net.Socket` shows one: a `stream.Duplex` whose writable side feeds the
 * connection's send buffer and whose readable side drains its receive buffer. Node's own `http`
 * module runs on it unchanged (`server.emit('connection', socket)`, `http.request({ createConnection })`).
 *
 * The socket never sees a segment: it talks to its connection through the narrow
 * `SocketConnection` interface below, and the connection calls back through `SocketEvents`.
 * Flow control is the stream's: `write()` returns false once the send buffer is full, and the
 * write callback waits until the connection has room ('drain' follows); `push()` returning
 * false stops reading from the connection, so its receive window closes and the peer slows down.
 */
import { Duplex } from 'node:stream';
import { formatTcpAddress, tcpFamilyOf, type TcpAddress, type TcpFamily } from './address.ts';
import { TcpError, type TcpErrorCode } from './errors.ts';
import type { TcpServer } from './server.ts';

/** What a socket asks of its connection. */
export interface SocketConnection {
  /** Copies as much of `data` as the send buffer takes; returns the bytes taken (0 when full). */
  write(data: Uint8Array): number;
  /** Takes up to `max` bytes of in-order received data out of the receive buffer (opening the window), or undefined when none is waiting. */
  read(max: number): Uint8Array | undefined;
  /** Sends FIN once everything written has gone (half-close: reading goes on). */
  shutdown(): void;
  /** Closes at once with a RST; queued data is thrown away. */
  abort(): void;
  /** The socket is gone: the connection finishes its close on its own (orphaned, as Linux does). */
  release(): void;
  setNoDelay(noDelay: boolean): void;
  setKeepAlive(enable: boolean, initialDelayMs: number): void;
  readonly localAddress: TcpAddress;
  readonly localPort: number;
  readonly remoteAddress: TcpAddress;
  readonly remotePort: number;
}

/** What the connection tells its socket. */
export interface SocketEvents {
  /** The handshake completed. */
  connectionEstablished(): void;
  /** In-order data is waiting to be read. */
  dataArrived(): void;
  /** The peer sent FIN: no more data will come (after what is waiting). */
  peerFinished(): void;
  /** The send buffer has room again. */
  sendSpace(): void;
  /** The connection is over: `error` says why when it did not close cleanly. */
  connectionClosed(error?: TcpErrorCode): void;
}

/** Bytes taken out of the connection per read, at most (one push). */
const READ_CHUNK = 64 * 1024;

export interface TcpSocketOptions {
  /** Keeps the process alive while the socket is open (default: the stack clock's hold()). */
  hold?: () => () => void;
  /** Allow a half-open connection: the readable side may end while writing goes on (default true, as `allowHalfOpen` in net). */
  allowHalfOpen?: boolean;
}

export class TcpSocket extends Duplex implements SocketEvents {
  /** True until the handshake completes (net.Socket's `connecting`). */
  connecting = true;
  /**
   * @internal The TcpServer that accepted it (undefined for a socket that connected). Not named
   * `server` as net.Socket's is: Node's http.Server sets `socket.server` to itself.
   */
  acceptedBy: TcpServer | undefined = undefined;
  private connection: SocketConnection | undefined;
  /** A write waiting for room in the send buffer: the rest of its data and its callback. */
  private pendingWrite: { data: Uint8Array; callback: (error?: Error | null) => void } | undefined;
  private pendingFinal: ((error?: Error | null) => void) | undefined;
  private wantRead = false;
  private readEnded = false;
  private release: (() => void) | undefined;
  private sent = 0;
  private received = 0;

  constructor(options: TcpSocketOptions = {}) {
    super({ allowHalfOpen: options.allowHalfOpen ?? true, decodeStrings: true });
    this.release = options.hold?.();
  }

  /** Joins the socket to its connection (the layer does this once). */
  attach(connection: SocketConnection): void {
    this.connection = connection;
  }

  get bytesWritten(): number {
    return this.sent;
  }

  get bytesRead(): number {
    return this.received;
  }

  get remoteAddress(): string | undefined {
    return this.connection ? formatTcpAddress(this.connection.remoteAddress) : undefined;
  }

  get remotePort(): number | undefined {
    return this.connection?.remotePort;
  }

  get localAddress(): string | undefined {
    return this.connection ? formatTcpAddress(this.connection.localAddress) : undefined;
  }

  get localPort(): number | undefined {
    return this.connection?.localPort;
  }

  /** 'IPv4' or 'IPv6', as net.Socket says it (IPv4 before the socket has a connection). */
  get remoteFamily(): TcpFamily {
    return this.connection ? tcpFamilyOf(this.connection.remoteAddress) : 'IPv4';
  }

  /** net.Socket's address(): the local end. */
  address(): { address: string; family: string; port: number } | Record<string, never> {
    const c = this.connection;
    return c ? { address: formatTcpAddress(c.localAddress), family: tcpFamilyOf(c.localAddress), port: c.localPort } : {};
  }

  setNoDelay(noDelay = true): this {
    this.connection?.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable = false, initialDelayMs = 0): this {
    this.connection?.setKeepAlive(enable, initialDelayMs);
    return this;
  }

  /** Accepted for Node compatibility (http calls it); an idle timeout is not implemented: returns this. */
  setTimeout(_ms: number, callback?: () => void): this {
    if (callback) this.once('timeout', callback);
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  // -------------------------------------------------------------------------------------
  // Duplex plumbing

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const c = this.connection;
    if (!c) return callback(new TcpError('ENOTCONN', 'the socket has no connection'));
    const data = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const taken = c.write(data);
    this.sent += taken;
    if (taken === data.length) return callback();
    this.pendingWrite = { data: data.subarray(taken), callback };
  }

  override _final(callback: (error?: Error | null) => void): void {
    const c = this.connection;
    if (!c) return callback();
    this.pendingFinal = callback;
    c.shutdown();
    // The FIN is queued behind the data: end() has done its part once the connection has it.
    this.pendingFinal = undefined;
    callback();
  }

  override _read(): void {
    this.wantRead = true;
    this.pull();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const c = this.connection;
    if (c) {
      // destroy() without an error on a connection that is not over: Node's net sends RST only
      // when asked (resetAndDestroy); a plain destroy closes. We let the connection finish its
      // close on its own (FIN, TIME-WAIT) unless data would be lost: then it resets.
      if (error) c.abort();
      else c.release();
    }
    this.pendingWrite?.callback(error ?? new TcpError('EPIPE', 'the socket was destroyed'));
    this.pendingWrite = undefined;
    this.pendingFinal = undefined;
    this.releaseHold();
    callback(error);
  }

  /** Node's net.Socket.resetAndDestroy(): close with a RST. */
  resetAndDestroy(): this {
    this.connection?.abort();
    this.destroy();
    return this;
  }

  private pull(): void {
    const c = this.connection;
    if (!c || !this.wantRead) return;
    for (;;) {
      const data = c.read(READ_CHUNK);
      if (!data) break;
      this.received += data.length;
      if (!this.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength))) {
        this.wantRead = false;
        return;
      }
    }
    if (this.readEnded) this.push(null);
  }

  private releaseHold(): void {
    const r = this.release;
    this.release = undefined;
    r?.();
  }

  // -------------------------------------------------------------------------------------
  // SocketEvents: what the connection tells us

  connectionEstablished(): void {
    this.connecting = false;
    this.emit('connect');
    this.emit('ready');
  }

  dataArrived(): void {
    this.pull();
  }

  peerFinished(): void {
    if (this.readEnded) return;
    this.readEnded = true;
    this.wantRead = true;
    this.pull();
  }

  sendSpace(): void {
    const p = this.pendingWrite;
    const c = this.connection;
    if (!p || !c) return;
    const taken = c.write(p.data);
    this.sent += taken;
    if (taken === p.data.length) {
      this.pendingWrite = undefined;
      p.callback();
    } else {
      p.data = p.data.subarray(taken);
    }
  }

  connectionClosed(error?: TcpErrorCode): void {
    this.connecting = false;
    this.releaseHold();
    if (error) {
      this.destroy(new TcpError(error, describeClose(error, this)));
      return;
    }
    if (!this.readEnded) this.peerFinished();
    // A clean close: anything still waiting to be written can no longer go.
    if (this.pendingWrite) {
      this.pendingWrite.callback(new TcpError('EPIPE', 'the connection closed before the data could be sent'));
      this.pendingWrite = undefined;
    }
    this.pendingFinal?.();
    this.pendingFinal = undefined;
  }
}

function describeClose(code: TcpErrorCode, socket: TcpSocket): string {
  const address = socket.remoteAddress ?? '?';
  const peer = `${address.includes(':') ? `[${address}]` : address}:${socket.remotePort ?? '?'}`;
  switch (code) {
    case 'ECONNREFUSED':
      return `connect ECONNREFUSED ${peer}`;
    case 'ECONNRESET':
      return `read ECONNRESET: ${peer} reset the connection`;
    case 'ETIMEDOUT':
      return `ETIMEDOUT: ${peer} stopped answering (retransmissions gave up)`;
    case 'EPIPE':
      return `write EPIPE: the connection to ${peer} is closed`;
    case 'ECONNABORTED':
      return `ECONNABORTED: the stack closed the connection to ${peer}`;
    case 'EHOSTUNREACH':
      return `EHOSTUNREACH: ${peer} cannot be reached (its address does not resolve)`;
    default:
      return `${code}: ${peer}`;
  }
}
