/**
 * The socket alone, over a fake pair of connections with small bounded buffers: Node's stream
 * contract (backpressure, half-close, errors) and Node's own http module on top, without any
 * segment. The connection's side of the contract is tested in the connection tests.
 */
import http from 'node:http';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ipv4, type Ipv4Address } from '@tapstack/link';
import { TcpSocket, type SocketConnection } from '../src/socket.ts';
import type { TcpErrorCode } from '../src/errors.ts';

/** One end of a fake connection: what it is written goes, by microtask, into the other end's receive buffer. */
class FakeEnd implements SocketConnection {
  peer!: FakeEnd;
  socket!: TcpSocket;
  sendBuffered = 0;
  receive: Uint8Array[] = [];
  receiveBytes = 0;
  finSent = false;
  finReceived = false;
  closed = false;
  noDelay = false;
  aborts = 0;
  constructor(
    readonly localAddress: Ipv4Address,
    readonly localPort: number,
    readonly remoteAddress: Ipv4Address,
    readonly remotePort: number,
    readonly sendCapacity: number,
    readonly receiveCapacity: number,
  ) {}

  write(data: Uint8Array): number {
    if (this.closed || this.finSent) return 0;
    const room = Math.min(this.sendCapacity - this.sendBuffered, this.peer.receiveCapacity - this.peer.receiveBytes - this.sendBuffered);
    const n = Math.max(0, Math.min(room, data.length));
    if (n === 0) return 0;
    const copy = data.slice(0, n);
    this.sendBuffered += n;
    queueMicrotask(() => {
      this.sendBuffered -= n;
      this.peer.receive.push(copy);
      this.peer.receiveBytes += n;
      this.peer.socket.dataArrived();
      this.socket.sendSpace();
    });
    return n;
  }

  read(max: number): Uint8Array | undefined {
    const first = this.receive[0];
    if (!first) return undefined;
    if (first.length <= max) this.receive.shift();
    else this.receive[0] = first.subarray(max);
    const out = first.subarray(0, max);
    this.receiveBytes -= out.length;
    // reading opens the window: the peer may write again
    queueMicrotask(() => this.peer.socket.sendSpace());
    return out;
  }

  shutdown(): void {
    if (this.finSent) return;
    this.finSent = true;
    const deliver = (): void => {
      if (this.sendBuffered > 0) return void queueMicrotask(deliver);
      this.peer.finReceived = true;
      this.peer.socket.peerFinished();
      if (this.finReceived) this.finish();
    };
    queueMicrotask(deliver);
  }

  private finish(): void {
    queueMicrotask(() => {
      for (const end of [this, this.peer]) {
        if (!end.closed) {
          end.closed = true;
          end.socket.connectionClosed();
        }
      }
    });
  }

  abort(): void {
    this.aborts++;
    if (this.closed) return;
    this.closed = true;
    queueMicrotask(() => {
      if (!this.peer.closed) {
        this.peer.closed = true;
        this.peer.socket.connectionClosed('ECONNRESET' satisfies TcpErrorCode);
      }
    });
  }

  release(): void {
    this.shutdown();
  }

  setNoDelay(noDelay: boolean): void {
    this.noDelay = noDelay;
  }

  setKeepAlive(): void {}
}

function socketPair(capacity = 4096): { client: TcpSocket; server: TcpSocket; clientEnd: FakeEnd; serverEnd: FakeEnd } {
  const a = ipv4('10.0.0.1');
  const b = ipv4('10.0.0.2');
  const clientEnd = new FakeEnd(a, 50000, b, 80, capacity, capacity);
  const serverEnd = new FakeEnd(b, 80, a, 50000, capacity, capacity);
  clientEnd.peer = serverEnd;
  serverEnd.peer = clientEnd;
  const client = new TcpSocket();
  const server = new TcpSocket();
  clientEnd.socket = client;
  serverEnd.socket = server;
  client.attach(clientEnd);
  server.attach(serverEnd);
  client.connectionEstablished();
  server.connectionEstablished();
  return { client, server, clientEnd, serverEnd };
}

function collect(socket: TcpSocket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
  });
}

describe('TcpSocket over a fake connection', () => {
  it('carries 1 MiB through 4 KiB buffers byte for byte, with write() reporting backpressure', async () => {
    const { client, server } = socketPair();
    const data = Buffer.alloc(1 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 8)) & 0xff;
    const received = collect(server);
    let sawBackpressure = false;
    for (let off = 0; off < data.length; off += 16384) {
      if (!client.write(data.subarray(off, off + 16384))) {
        sawBackpressure = true;
        await new Promise((r) => client.once('drain', r));
      }
    }
    client.end();
    const got = await received;
    expect(sawBackpressure).toBe(true);
    expect(got.length).toBe(data.length);
    expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    expect(client.bytesWritten).toBe(data.length);
    expect(server.bytesRead).toBe(data.length);
  });

  it('half-close: after the client ends, the server still writes and the client still reads', async () => {
    const { client, server } = socketPair();
    const serverGot = collect(server);
    const clientGot = collect(client);
    client.end('question');
    expect((await serverGot).toString()).toBe('question');
    server.end('answer after the peer finished');
    expect((await clientGot).toString()).toBe('answer after the peer finished');
  });

  it('a reset reaches the peer as ECONNRESET', async () => {
    const { client, server } = socketPair();
    const error = new Promise<NodeJS.ErrnoException>((resolve) => server.on('error', resolve));
    client.resetAndDestroy();
    expect((await error).code).toBe('ECONNRESET');
  });

  it("Node's http server and client run on it unchanged", async () => {
    const { client, server } = socketPair(8192);
    const body = Buffer.alloc(100_000, 'x');
    const httpServer = http.createServer((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(req.url === '/big' ? body : 'hello');
    });
    httpServer.emit('connection', server);
    const response = await new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const req = http.request({ path: '/big', host: '10.0.0.2', createConnection: () => client as never }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(response.status).toBe(200);
    expect(response.body.equals(body)).toBe(true);
    expect(server.remoteAddress).toBe('10.0.0.1');
    client.destroy();
    httpServer.close();
  });
});
