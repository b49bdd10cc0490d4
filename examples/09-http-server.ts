/**
 * Example 09: Node's own `http` module serving pages over our TCP, `curl` as the client.
 *
 * Node's http.Server does not care where its sockets come from: hand it one with
 * `server.emit('connection', socket)` and it parses requests and writes responses on it. Here
 * every socket is one of ours, so every byte curl receives was segmented, acknowledged,
 * retransmitted if need be, and flow-controlled by packages/tcp.
 *
 * Run it (root: it creates a TAP device inside a network namespace of its own):
 *
 *   sudo npx tsx examples/09-http-server.ts
 *
 * and from another terminal:
 *
 *   sudo ip netns exec tapstack-http-demo curl http://10.0.0.2/
 *   sudo ip netns exec tapstack-http-demo curl -o /dev/null -w '%{size_download} bytes, %{speed_download} B/s\n' http://10.0.0.2/count/10000000
 *   sudo ip netns exec tapstack-http-demo ab -n 1000 -c 10 http://10.0.0.2/
 *
 * `/count/N` streams N bytes with backpressure: res.write() returns false when our send buffer
 * is full, and the next chunk waits for 'drain', so memory stays flat however large N is.
 * Ctrl-C prints the counters and removes the namespace. Options: --netns NAME, --port N (default 80),
 * --no-vnet-hdr (plain frames, one per system call: the path of docs/01-link.md's first sections).
 * By default the TAP device carries a virtio-net header and TCP moves super-frames of up to 64 KB
 * per system call (the fast path of docs/01-link.md; the device's counters show how many), as
 * `tapstack up` does; --vnet-hdr is accepted and changes nothing.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { TapDevice } from '@tapstack/link';
import { createStack } from '@tapstack/stack';
import { onStop, ownNamespace } from './support/own-namespace.ts';

const { values } = parseArgs({
  options: {
    netns: { type: 'string', default: 'tapstack-http-demo' },
    port: { type: 'string', default: '80' },
    'vnet-hdr': { type: 'boolean', default: false },
    'no-vnet-hdr': { type: 'boolean', default: false },
  },
});
const port = Number(values.port);

const ns = ownNamespace(values.netns!);
const tap = TapDevice.open({ name: 'tap0', netns: ns.name, vnetHeader: !values['no-vnet-hdr'] });
tap.configureHost({ address: '10.0.0.1/24' });
const stack = createStack({ link: tap, ip: '10.0.0.2/24' });
stack.start();

// An ordinary Node HTTP server...
const app = http.createServer((req, res) => {
  const count = /^\/count\/(\d{1,10})$/.exec(req.url ?? '');
  if (!count) {
    res.end(`hello from tapstack: ${req.method} ${req.url}, from ${req.socket.remoteAddress}:${req.socket.remotePort}\n`);
    return;
  }
  let left = Number(count[1]);
  res.writeHead(200, { 'content-length': left });
  const chunk = Buffer.alloc(64 * 1024, 'x');
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      left -= n;
      if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
});

// ...fed with our sockets.
stack.tcp.createServer((socket) => app.emit('connection', socket)).listen(port);
console.log(`HTTP on 10.0.0.2:${port} (Node's http over tapstack's TCP; tap0 in netns ${ns.name})`);
console.log(`try: sudo ip netns exec ${ns.name} curl http://10.0.0.2:${port}/`);

onStop(() => {
  console.log(`\n${stack.tcp.counters.format()}`);
  if (tap.vnetHeaderLength > 0) console.log(tap.tapCounters.format()); // tap.rx_gso_frames, tap.tx_gso_frames, ...
  stack.close();
});
