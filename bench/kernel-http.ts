/**
 * The bench's reference for `tapstack up --http`: the very same server code
 * (packages/stack/src/services.ts, Node's own `http` module) on the kernel's TCP through
 * node:net, so the difference between the two rows is what our TCP costs, not the server.
 *
 *   node --import tsx bench/kernel-http.ts PORT        prints `ready` once listening
 */
import net from 'node:net';
import type { TcpLayer } from '@tapstack/tcp';
import { httpServer } from '../packages/stack/src/services.ts';

const port = Number(process.argv[2] ?? 80);
// httpServer only calls tcp.createServer(listener).listen(port): node:net has that shape.
const kernelTcp = { createServer: (listener: (socket: net.Socket) => void) => net.createServer(listener) } as unknown as TcpLayer;
const { tcp } = httpServer(kernelTcp, port, '10.0.0.2');
(tcp as unknown as net.Server).on('listening', () => process.stdout.write('ready\n'));
