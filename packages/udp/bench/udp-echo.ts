/**
 * UDP echo throughput: datagrams per second through our stack's echo service, against the
 * Linux kernel's UDP answering the same client in the same run, reported as a ratio.
 *
 *   ours:   client (kernel, netns A, 10.0.0.1 on tap0)  <->  tapstack 10.0.0.2, UdpLayer echo
 *   kernel: client (kernel, netns K1, 10.0.0.1 on veth) <->  netns K2, 10.0.0.3, a recvfrom/sendto echo
 *
 * Both servers are a userspace echo loop over a UDP socket, so the difference is the stack under
 * it (ours in TypeScript on a TAP device, vs Linux's over a veth). The client is the same small
 * python3 program: `window` datagrams in flight (1 = strict ping-pong, the latency-bound figure),
 * each reply sends the next; a datagram lost for 200 ms is replaced, counted as lost.
 *
 * Every namespace is our own, uses only 10.0.0.0/24, and is deleted afterwards, also on failure.
 * Run on its own (root):  npx tsx packages/udp/bench/udp-echo.ts [--duration 3] [--size 64] [--window 1]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { TapDevice } from '@tapstack/link';
import { serveUdpEcho, startHandWiredStack } from '../test/support/hand-wired-stack.ts';

export interface UdpEchoBenchOptions {
  /** Seconds per measurement (default 3). */
  durationS?: number;
  /** Data bytes per datagram (default 64). */
  size?: number;
  /** Datagrams in flight (default 1: ping-pong). */
  window?: number;
}

export interface UdpEchoFigure {
  datagramsPerSecond: number;
  lost: number;
}

export interface UdpEchoBenchResult {
  options: Required<UdpEchoBenchOptions>;
  tapstack: UdpEchoFigure;
  kernel: UdpEchoFigure;
  /** tapstack / kernel. */
  ratio: number;
}

const CLIENT = `
import socket, sys, time
host, port, size, window, duration = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((host, port))
s.settimeout(0.2)
data = bytes(i & 0xff for i in range(size))
# warm up: ARP, caches
for _ in range(20):
    s.send(data)
    try: s.recv(65536)
    except socket.timeout: pass
done = lost = 0
for _ in range(window): s.send(data)
start = time.monotonic()
end = start + duration
while True:
    try:
        s.recv(65536)
        done += 1
    except socket.timeout:
        lost += 1
    now = time.monotonic()
    if now >= end: break
    s.send(data)
print(done / (now - start), lost)
`;

const SERVER = `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.0.0.3", 7777))
print("ready", flush=True)
while True:
    d, a = s.recvfrom(65536)
    s.sendto(d, a)
`;

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' });
}

function inNs(ns: string, cmd: string, args: string[]): string[] {
  return ['netns', 'exec', ns, cmd, ...args];
}

/** Runs the client inside `ns` without blocking the event loop (our stack must keep running). */
function runClient(ns: string, host: string, o: Required<UdpEchoBenchOptions>): Promise<UdpEchoFigure> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', inNs(ns, 'python3', ['-c', CLIENT, host, '7777', String(o.size), String(o.window), String(o.durationS)]), {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), (o.durationS + 30) * 1000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const [rate, lost] = out.trim().split(/\s+/).map(Number);
      if (code !== 0 || rate === undefined || !Number.isFinite(rate)) reject(new Error(`udp echo client failed (${code}): ${err || out}`));
      else resolve({ datagramsPerSecond: Math.round(rate), lost: lost ?? 0 });
    });
  });
}

async function measureTapstack(o: Required<UdpEchoBenchOptions>, tag: string): Promise<UdpEchoFigure> {
  const ns = `tapstack-udpbench-${tag}`;
  ip(['netns', 'add', ns]);
  let close = (): void => {};
  try {
    ip(inNs(ns, 'ip', ['link', 'set', 'lo', 'up']));
    const tap = TapDevice.open({ name: 'tap0', netns: ns });
    tap.configureHost({ address: '10.0.0.1/24', up: true });
    const stack = startHandWiredStack(tap, '10.0.0.2/24');
    close = () => stack.close();
    serveUdpEcho(stack.udp, 7777);
    return await runClient(ns, '10.0.0.2', o);
  } finally {
    close();
    ip(['netns', 'del', ns]);
  }
}

async function measureKernel(o: Required<UdpEchoBenchOptions>, tag: string): Promise<UdpEchoFigure> {
  const client = `tapstack-udpbench-${tag}-k1`;
  const server = `tapstack-udpbench-${tag}-k2`;
  let echo: ChildProcess | undefined;
  ip(['netns', 'add', client]);
  try {
    ip(['netns', 'add', server]);
    for (const ns of [client, server]) ip(inNs(ns, 'ip', ['link', 'set', 'lo', 'up']));
    // the veth pair is created inside the client namespace, then one end moves to the server's
    ip(inNs(client, 'ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']));
    ip(inNs(client, 'ip', ['link', 'set', 'veth1', 'netns', server]));
    ip(inNs(client, 'ip', ['addr', 'add', '10.0.0.1/24', 'dev', 'veth0']));
    ip(inNs(server, 'ip', ['addr', 'add', '10.0.0.3/24', 'dev', 'veth1']));
    ip(inNs(client, 'ip', ['link', 'set', 'veth0', 'up']));
    ip(inNs(server, 'ip', ['link', 'set', 'veth1', 'up']));
    echo = spawn('ip', inNs(server, 'python3', ['-c', SERVER]), { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('kernel echo server did not start')), 10_000);
      echo!.stdout!.on('data', () => {
        clearTimeout(t);
        resolve();
      });
    });
    return await runClient(client, '10.0.0.3', o);
  } finally {
    echo?.kill('SIGKILL');
    try {
      ip(['netns', 'del', server]);
    } catch {
      /* not created */
    }
    ip(['netns', 'del', client]);
  }
}

/** Measures both, one after the other, in namespaces of their own. Needs root, python3. */
export async function benchUdpEcho(options: UdpEchoBenchOptions = {}): Promise<UdpEchoBenchResult> {
  const o: Required<UdpEchoBenchOptions> = { durationS: options.durationS ?? 3, size: options.size ?? 64, window: options.window ?? 1 };
  const tag = `${process.pid}`;
  const tapstack = await measureTapstack(o, tag);
  const kernel = await measureKernel(o, tag);
  return { options: o, tapstack, kernel, ratio: tapstack.datagramsPerSecond / kernel.datagramsPerSecond };
}

export function formatUdpEchoResult(r: UdpEchoBenchResult): string {
  const { size, window, durationS } = r.options;
  return (
    `udp echo, ${size} bytes, ${window} in flight, ${durationS}s: ` +
    `tapstack ${r.tapstack.datagramsPerSecond} datagrams/s (lost ${r.tapstack.lost}), ` +
    `kernel ${r.kernel.datagramsPerSecond} datagrams/s (lost ${r.kernel.lost}), ratio ${r.ratio.toFixed(2)}`
  );
}

const isEntry = process.argv[1] !== undefined && /udp-echo\.ts$/.test(process.argv[1]);
if (isEntry) {
  const { values } = parseArgs({
    options: { duration: { type: 'string', default: '3' }, size: { type: 'string', default: '64' }, window: { type: 'string', default: '1' } },
  });
  benchUdpEcho({ durationS: Number(values.duration), size: Number(values.size), window: Number(values.window) }).then(
    (r) => {
      console.log(formatUdpEchoResult(r));
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
