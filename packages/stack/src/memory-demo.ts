/**
 * The no-root demo: two stacks on an in-memory wire. Stack A pings stack B; the trace shows A's
 * first echo request waiting while ARP resolves B (queued in the INCOMPLETE entry, not lost),
 * then the replies. Then A fetches a page from B over TCP (Node's http client on A's sockets,
 * Node's http server on B's): the trace shows the handshake, the request, the response and the
 * close. Last, both neighbour tables, both connection tables and the counters.
 */
import http from 'node:http';
import type { Writable } from 'node:stream';
import { MacAddress, MemoryLink } from '@tapstack/link';
import { formatPingReply, formatPingSummary, indent, pingHeader } from './output.ts';
import { httpServer } from './services.ts';
import { createStack, type Stack } from './stack.ts';

export async function runMemoryDemo(out: Writable, options: { count?: number; intervalMs?: number } = {}): Promise<void> {
  const write = (s: string): void => {
    out.write(`${s}\n`);
  };
  const [wireA, wireB] = MemoryLink.pair({
    names: ['wire-a', 'wire-b'],
    macs: [MacAddress.parse('02:00:00:00:0a:01'), MacAddress.parse('02:00:00:00:0b:02')],
  });
  const a = createStack({ link: wireA, ip: '10.0.0.1/24', trace: (line) => write(`  A ${line}`), arp: { announce: false } });
  const b = createStack({ link: wireB, ip: '10.0.0.2/24', trace: (line) => write(`  B ${line}`), arp: { announce: false } });
  try {
    write('Two stacks on an in-memory wire: A is 10.0.0.1 (02:00:00:00:0a:01), B is 10.0.0.2 (02:00:00:00:0b:02).');
    write('A pings B. A does not know B\'s MAC yet, so its first echo request waits in the ARP queue.\n');
    write(pingHeader(b.address, 56));
    const summary = await a.icmp.ping(b.address, {
      count: options.count ?? 3,
      size: 56,
      intervalMs: options.intervalMs ?? 200,
      timeoutMs: 1000,
      onReply: (reply) => write(formatPingReply(reply)),
    });
    write(`\n${formatPingSummary(summary)}\n`);
    write('B runs an HTTP server (Node\'s http on B\'s TCP); A fetches / with Node\'s http client on A\'s TCP.\n');
    httpServer(b.tcp, 80, '10.0.0.2');
    const page = await fetchPage(a);
    // let the close finish (the FINs and their ACKs) before printing the tables
    await new Promise((resolve) => setTimeout(resolve, 100));
    write(`\nA got HTTP ${page.status}, ${page.body.length} bytes: ${page.body.split('\n').find((l) => l.startsWith('<p>')) ?? ''}\n`);
    write(`A's neighbour table (ip neigh show):\n${indent(a.neighbours())}`);
    write(`B's neighbour table:\n${indent(b.neighbours())}\n`);
    write(`A's connections (ss -tan):\n${indent(a.connections())}`);
    write(`B's connections:\n${indent(b.connections())}\n`);
    write(`A's counters:\n${indent(a.counters())}`);
    write(`B's counters:\n${indent(b.counters())}`);
  } finally {
    a.close();
    b.close();
  }
}

/** GET http://10.0.0.2/ through A's TCP (no agent: Node then uses createConnection and never the kernel). */
function fetchPage(a: Stack): Promise<{ status: number; body: string }> {
  const release = a.clock.hold();
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request({ host: '10.0.0.2', port: 80, path: '/', createConnection: () => a.tcp.connect({ host: '10.0.0.2', port: 80 }) as never }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  }).finally(release);
}
