/**
 * Example 10: Node's http client over our TCP, against Node's http server over our TCP: two
 * stacks on an in-memory wire, no root, no kernel in between. The trace shows every segment of
 * the handshake, the request, the response and the close, as tcpdump would.
 *
 *   npx tsx examples/10-http-client.ts            # one GET, traced
 *   npx tsx examples/10-http-client.ts --no-trace --bytes 10000000
 *
 * The client passes `createConnection` to http.request: it returns one of our sockets instead
 * of a kernel one, and the http module does the rest. At the end both connection tables are
 * printed like `ss -tan`: the side that closed first waits in TIME-WAIT, as the kernel's would (here the
 * server: without an agent the request says `Connection: close`, and the server ends the connection).
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { MacAddress, MemoryLink } from '@tapstack/link';
import { createStack } from '@tapstack/stack';

const { values } = parseArgs({
  options: {
    'no-trace': { type: 'boolean', default: false },
    bytes: { type: 'string', default: '100' },
  },
});
const size = Number(values.bytes);

const [wireA, wireB] = MemoryLink.pair({ macs: [MacAddress.parse('02:00:00:00:0a:01'), MacAddress.parse('02:00:00:00:0b:02')] });
const trace = (who: string) => (values['no-trace'] ? false : (line: string) => console.log(`${who} ${line}`));
const client = createStack({ link: wireA, ip: '10.0.0.1/24', trace: trace('A'), arp: { announce: false } });
const server = createStack({ link: wireB, ip: '10.0.0.2/24', trace: trace('B'), arp: { announce: false } });

// B: Node's http server on B's TCP.
const app = http.createServer((_req, res) => res.end(Buffer.alloc(size, 'x')));
server.tcp.createServer((socket) => app.emit('connection', socket)).listen(80);

// A: Node's http client on A's TCP.
const body = await new Promise<Buffer>((resolve, reject) => {
  const req = http.request(
    // No `agent` option: with one (even agent: false) Node ignores createConnection and would ask the kernel.
    { host: '10.0.0.2', port: 80, path: '/', createConnection: () => client.tcp.connect({ host: '10.0.0.2', port: 80 }) as never },
    (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
    },
  );
  req.on('error', reject);
  req.end();
});
console.log(`\nA got ${body.length} bytes from B over TCP on an in-memory wire`);
// let the close finish (FIN, ACK), then show both tables
await new Promise((r) => setTimeout(r, 50));
console.log(`\nA's connections:\n${client.connections()}\n\nB's connections:\n${server.connections()}`);
client.close();
server.close();
