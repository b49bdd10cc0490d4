/**
 * The small services `tapstack up` can run on the stack's TCP: echo (RFC 862), discard (RFC 863)
 * and an HTTP server made of Node's own `http` module over our sockets. Each one is a few lines
 * of ordinary Node code: that is the point, the sockets behave like `net` sockets.
 */
import http from 'node:http';
import { formatIpv4 } from '@tapstack/link';
import type { UdpLayer, UdpSocket } from '@tapstack/udp';
import { markUnchanging, type TcpLayer, type TcpServer, type TcpSocket } from '@tapstack/tcp';

/**
 * A UDP echo (RFC 862) on both families: `bind(port)` is `::` when the stack has IPv6, so IPv4
 * and IPv6 datagrams reach the one socket and `reply` answers each over its own family. Every
 * datagram goes back to its sender, except those that cannot be answered: from source port 0
 * (RFC 768: "no reply expected"), from 0.0.0.0 or :: (a host without an address yet) or from a
 * broadcast or multicast source. `reply` checks that, sends nothing and counts
 * `udp.tx_unanswerable` (the layer also counts `rx_source_port_zero` and `rx_source_unspecified`
 * as they arrive): no exception anywhere, however many of them come.
 */
export function udpEcho(udp: UdpLayer, port: number): UdpSocket {
  const socket = udp.bind(port);
  socket.on('message', (data, from) => {
    socket.reply(data, from);
  });
  return socket;
}

/** RFC 862: every byte goes back. */
export function tcpEcho(tcp: TcpLayer, port: number): TcpServer {
  return tcp
    .createServer((socket) => {
      socket.pipe(socket);
      // a reset, or the stack stopping with the connection open, ends it; nobody to tell (as discard)
      socket.on('error', ignore);
    })
    .listen(port);
}

// The discard service's listeners are shared by all its sockets (an emitter calls a listener with
// itself as `this`): three closures for every connection were about 100 bytes of each idle one.
function ignore(): void {}
function endToo(this: TcpSocket): void {
  this.end();
}

/** RFC 863: read and drop. */
export function tcpDiscard(tcp: TcpLayer, port: number): TcpServer {
  return tcp
    .createServer((socket) => {
      socket.on('data', ignore);
      socket.on('end', endToo);
      socket.on('error', ignore);
    })
    .listen(port);
}

/** The largest body `GET /bytes/N` serves: 4 GiB. */
export const MAX_BYTES = 4 * 1024 ** 3;
const CHUNK = 64 * 1024;
/** The pattern's period: byte i of a body is i mod 251 (a prime, so it does not line up with buffer sizes). */
const PERIOD = 251;

/**
 * The pattern, made once: CHUNK + PERIOD bytes, so that every chunk of the body, wherever it
 * starts, is a view into it (from offset mod 251) and nothing is computed or allocated per chunk.
 * Marked unchanging: the send buffer keeps references to it instead of copies, and its bytes are
 * copied once, into the frames.
 */
const PATTERN = (() => {
  const b = Buffer.from(new ArrayBuffer(CHUNK + PERIOD)); // memory of its own, not Node's shared pool
  for (let i = 0; i < b.length; i++) b[i] = i % PERIOD;
  markUnchanging(b);
  return b;
})();

/** Bytes `offset` to `offset + length` of the pattern `GET /bytes/N` sends (length at most 64 KiB): a view, never to be written. */
export function patternChunk(offset: number, length: number): Buffer {
  if (length > CHUNK) throw new RangeError(`a pattern chunk is at most ${CHUNK} bytes`);
  const start = offset % PERIOD;
  return PATTERN.subarray(start, start + length);
}

/**
 * Node's `http.Server` on our TCP: `GET /` answers a page naming the stack, `GET /bytes/N` streams
 * N bytes of the pattern with backpressure (written only as fast as the connection drains, so a
 * gigabyte is never in memory).
 */
export function httpServer(tcp: TcpLayer, port: number, address: string): { http: http.Server; tcp: TcpServer } {
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const bytes = /^\/bytes\/(\d{1,10})$/.exec(url);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url === '/') {
      const body = `<!doctype html>\n<title>tapstack</title>\n<p>Hello from tapstack, a TCP/IP stack in TypeScript, at ${address}:${port}.</p>\n<p>Try <a href="/bytes/1048576">/bytes/1048576</a>.</p>\n`;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body) }).end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (bytes) {
      const total = Number(bytes[1]);
      if (total > MAX_BYTES) {
        res.writeHead(413, { 'content-type': 'text/plain' }).end(`at most ${MAX_BYTES} bytes\n`);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
      if (req.method === 'HEAD') return void res.end();
      let sent = 0;
      const pump = (): void => {
        while (sent < total) {
          const n = Math.min(CHUNK, total - sent);
          const ok = res.write(patternChunk(sent, n));
          sent += n;
          if (!ok) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try / or /bytes/N\n');
  });
  // Node's net.Server turns Nagle off on each socket it accepts (http's noDelay default); a socket
  // handed to the http server by 'connection' skips that step, so we take it here. With Nagle on,
  // a response's short last piece waits for the ACK of the header, which the client delays.
  const listener = tcp
    .createServer((socket) => {
      socket.setNoDelay(true);
      server.emit('connection', socket);
    })
    .listen(port);
  return { http: server, tcp: listener };
}

export function describeServices(address: number, services: { tcpEcho?: number; tcpDiscard?: number; http?: number }, prefix: string): string {
  const a = formatIpv4(address as never);
  const lines: string[] = [];
  if (services.tcpEcho !== undefined) lines.push(`tcp echo on ${a}:${services.tcpEcho}; try: ${prefix}nc ${a} ${services.tcpEcho}`);
  if (services.tcpDiscard !== undefined) lines.push(`tcp discard on ${a}:${services.tcpDiscard}; try: ${prefix}nc -N ${a} ${services.tcpDiscard} < /dev/zero`);
  if (services.http !== undefined) lines.push(`http on ${a}:${services.http}; try: ${prefix}curl -o /dev/null http://${a}:${services.http}/bytes/10485760`);
  return lines.map((l) => `${l}\n`).join('');
}
