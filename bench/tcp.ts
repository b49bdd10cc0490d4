/**
 * The TCP rows of `npm run bench` (issue 14): tapstack, lwIP (the C peer) and the Linux kernel
 * serving the same three services, measured from the kernel at 10.0.0.1 with the same tools in the
 * same run, round after round, each target in namespaces of its own:
 *
 *   tapstack:  `tapstack up --tcp-echo 7 --tcp-discard 9 --http 80` behind tap0 (namespace A)
 *   lwIP:      ../shared/peers/lwip-tap's lwip_tap_poll (lwIP 2.1.3, one thread, raw API) behind
 *              tap0 in a namespace of its own, host side 10.0.0.1/24
 *   kernel:    a veth pair between two namespaces; at 10.0.0.2 `iperf -s -p 9` (discard),
 *              `socat ... PIPE` (echo on 7) and bench/kernel-http.ts, our --http server's own
 *              code on node:net (HTTP on 80)
 *
 * The rows: iperf (iperf2) into the discard port (host -> target); curl fetching 100 MiB of
 * `GET /bytes/N` (target -> host); the mean time of 50 fetches of 1 MiB; `ab -n 2000 -c 10`;
 * 1-byte ping-pong over one connection to the echo port; the two bulk rows again with 1% random
 * loss both ways (../shared/tools/link-loss.sh on the host's device: tap0 or veth0), and with
 * 10 ms of delay each way plus that loss. The kernel here has no netem, so the delay comes from
 * our link fault injector (`tapstack up --link-delay 10`): only tapstack gets those rows. The
 * lossy rows of the plain tapstack are also set beside a second kernel whose veth pair has
 * TSO/GSO/GRO off and whose server sends with CUBIC (`kernel-plain`): the kernel's download then
 * crosses the pair as 1514-byte frames, lost one at a time as our plain frames are, where the
 * first kernel's 64 KB skbs are lost whole, and its window answers random loss as ours does (the
 * first kernel runs this machine's default, bbr, which does not back off on random loss).
 * Then memory: tapstack's and lwIP's RSS at 10,000 idle connections, and tapstack's RSS sampled
 * through a 10 GiB transfer.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Netns } from '../test/support/netns.ts';
import { formatKb, formatNumber, markdownTable, median } from './table.ts';
import { KernelTarget, TapstackTarget, quietIpv6, rssKb } from './targets.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const SHARED = join(REPO, '../shared');
const LWIP_BUILD = join(SHARED, 'peers/lwip-tap/build.sh');
const LINK_LOSS = join(SHARED, 'tools/link-loss.sh');
const ADDRESS = '10.0.0.2';

export type TcpTargetName = 'tapstack' | 'lwip' | 'kernel';

/** One thing that serves echo 7, discard 9 and HTTP 80 at 10.0.0.2, and where to measure it from. */
export interface TcpTarget {
  readonly name: TcpTargetName | 'tapstack-delay' | 'tapstack-vnet' | 'kernel-plain';
  /** The namespace of 10.0.0.1, where the clients run. */
  readonly client: Netns;
  /** The host's device in `client` towards the target: loss is set on it. */
  readonly device: string;
  /** The process serving (for RSS), if it is one process. */
  readonly pid: number | undefined;
  close(): void;
}

// ------------------------------------------------------------------------------ the targets

/**
 * How `tapstack up` moves frames: 'plain' (--no-vnet-hdr, one frame per system call: the path the
 * lwIP comparison and the teaching chapters use) or 'vnet' (the virtio-net header, the default).
 * An explicit --vnet-hdr or --no-vnet-hdr among the extra arguments wins over `mode`.
 */
export type FrameMode = 'plain' | 'vnet';

export function withFrameMode(extra: readonly string[], mode: FrameMode): string[] {
  if (extra.includes('--vnet-hdr') || extra.includes('--no-vnet-hdr')) return [...extra];
  return [mode === 'plain' ? '--no-vnet-hdr' : '--vnet-hdr', ...extra];
}

/** The mode the arguments give `tapstack up`, for the rows' labels. */
export function frameModeOf(args: readonly string[]): FrameMode {
  return args.includes('--no-vnet-hdr') ? 'plain' : 'vnet';
}

export class TapstackTcp implements TcpTarget {
  readonly device = 'tap0';
  private constructor(
    readonly name: 'tapstack' | 'tapstack-delay' | 'tapstack-vnet',
    readonly target: TapstackTarget,
  ) {}

  static async start(name: 'tapstack' | 'tapstack-delay' | 'tapstack-vnet', label: string, extra: readonly string[] = []): Promise<TapstackTcp> {
    return new TapstackTcp(name, await TapstackTarget.start(label, ['--tcp-echo', '7', '--tcp-discard', '9', '--http', '80', ...extra]));
  }

  get client(): Netns {
    return this.target.pinger;
  }
  get pid(): number {
    return this.target.pid;
  }
  counters(): Promise<string> {
    return this.target.counters();
  }
  close(): void {
    this.target.close();
  }
}

/** Builds lwip_tap_poll with the peer's own build.sh; undefined (and why) when it cannot. */
export function buildLwip(dir: string): { binary: string } | { error: string } {
  if (!existsSync(LWIP_BUILD)) return { error: `${LWIP_BUILD} not found` };
  try {
    const out = execFileSync('sh', [LWIP_BUILD, dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { binary: out.trim().split('\n').pop()! };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return { error: (e.stderr || e.message).trim() };
  }
}

export class LwipTcp implements TcpTarget {
  readonly name = 'lwip';
  readonly device = 'tap0';
  private output = '';
  private constructor(
    readonly client: Netns,
    readonly process: ChildProcess,
  ) {
    process.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    process.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
  }

  /** lwip_tap_poll creates tap0 in the namespace; the host side is ours to configure. */
  static async start(label: string, binary: string): Promise<LwipTcp> {
    const ns = Netns.create(label);
    try {
      quietIpv6(ns);
      const child = ns.spawn(binary, ['tap0', ADDRESS, '10.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
      const target = new LwipTcp(ns, child);
      const started = Date.now();
      while (!/lwIP .* on tap0/.test(target.output)) {
        if (child.exitCode !== null || Date.now() - started > 10_000) throw new Error(`lwip_tap_poll did not start:\n${target.output}`);
        await sleep(20);
      }
      ns.exec('ip', ['addr', 'add', '10.0.0.1/24', 'dev', 'tap0']);
      ns.exec('ip', ['link', 'set', 'tap0', 'up']);
      return target;
    } catch (err) {
      ns.destroy();
      throw err;
    }
  }

  get pid(): number {
    return this.process.pid!;
  }
  close(): void {
    this.client.destroy();
  }
}

/**
 * How the kernel's veth pair carries TCP: 'offload' as veth comes (TSO, GSO and GRO on: one skb
 * of up to 64 KB crosses the pair, and link-loss.sh drops such an skb whole), or 'plain' with
 * `ethtool -K vethN tso off gso off gro off` on both ends, so that the sender's frames cross the
 * pair one 1514-byte frame at a time, as our plain (--no-vnet-hdr) frames cross tap0: the
 * like-for-like reference for the plain loss rows.
 */
export type KernelFrames = 'offload' | 'plain';

export class KernelTcp implements TcpTarget {
  readonly device = 'veth0';
  readonly pid = undefined;
  private constructor(
    private readonly pair: KernelTarget,
    readonly name: 'kernel' | 'kernel-plain',
  ) {}

  /**
   * `congestionControl`: the algorithm of the responder's connections (it sends the download),
   * set on its route to 10.0.0.0/24 (`ip route ... congctl`, RTAX_CC_ALGO), or undefined for the
   * namespace's default. This machine's default is bbr, which does not take random loss for
   * congestion, where ours is CUBIC; a namespace may only choose a default among
   * net.ipv4.tcp_allowed_congestion_control (reno bbr here, a root-namespace setting we leave
   * alone), while a route's algorithm is the namespace's own.
   */
  static async start(label: string, frames: KernelFrames = 'offload', congestionControl?: 'cubic' | 'bbr' | 'reno'): Promise<KernelTcp> {
    const pair = KernelTarget.start(label);
    try {
      const c = pair.responder;
      if (congestionControl) c.exec('ip', ['route', 'replace', '10.0.0.0/24', 'dev', 'veth1', 'proto', 'kernel', 'scope', 'link', 'src', ADDRESS, 'congctl', congestionControl]);
      if (frames === 'plain') {
        // Both ends: the sender segments before the pair (no TSO/GSO), the receiver does not merge
        // frames again before tc's ingress hook sees them (no GRO).
        pair.pinger.exec('ethtool', ['-K', 'veth0', 'tso', 'off', 'gso', 'off', 'gro', 'off']);
        c.exec('ethtool', ['-K', 'veth1', 'tso', 'off', 'gso', 'off', 'gro', 'off']);
      }
      // discard: iperf's own server reads and drops; echo: socat copies each connection to itself
      c.spawn('iperf', ['-s', '-p', '9'], { stdio: 'ignore' });
      c.spawn('socat', ['TCP-LISTEN:7,fork,reuseaddr,backlog=1024', 'PIPE'], { stdio: 'ignore' });
      const http = c.spawn(process.execPath, ['--import', 'tsx', join(REPO, 'bench/kernel-http.ts'), '80'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      http.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      http.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const started = Date.now();
      while (!/ready/.test(out)) {
        if (http.exitCode !== null || Date.now() - started > 30_000) throw new Error(`bench/kernel-http.ts did not start:\n${out}`);
        await sleep(20);
      }
      // iperf and socat listen within milliseconds; wait until both ports answer
      for (const port of [7, 9]) await waitForPort(pair.pinger, port);
      return new KernelTcp(pair, frames === 'plain' ? 'kernel-plain' : 'kernel');
    } catch (err) {
      pair.close();
      throw err;
    }
  }

  /** The namespace of the 10.0.0.2 side (the servers), e.g. for a capture on veth1. */
  get responder(): Netns {
    return this.pair.responder;
  }
  get client(): Netns {
    return this.pair.pinger;
  }
  close(): void {
    this.pair.close();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitForPort(ns: Netns, port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await ns.run('python3', ['-c', `import socket; socket.create_connection(("${ADDRESS}", ${port}), 1).close()`], 5000);
    if (r.status === 0) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on ${ADDRESS}:${port}`);
}

// ------------------------------------------------------------------------------ the measurements

/** iperf2 into the discard port for `seconds`: bits/s as the client counted them. */
export async function iperfUp(t: TcpTarget, seconds: number): Promise<number> {
  const r = await t.client.run('iperf', ['-c', ADDRESS, '-p', '9', '-t', String(seconds), '-y', 'C'], (seconds + 30) * 1000);
  // -y C: ...,interval,bytes,bits_per_second (the last line is the whole run)
  const line = r.stdout.trim().split('\n').filter((l) => /^\d{14},/.test(l)).pop();
  if (!line) return failed(`iperf into ${t.name}`, r.stderr || r.stdout);
  return Number(line.split(',').pop()) / 1e6;
}

interface CurlResult {
  bytes: number;
  seconds: number;
  code: number;
  exit: number;
}

async function curl(t: TcpTarget, path: string, maxSeconds: number): Promise<CurlResult> {
  const r = await t.client.run(
    'curl',
    ['-s', '-o', '/dev/null', '--max-time', String(maxSeconds), '-w', '%{size_download} %{time_total} %{http_code}', `http://${ADDRESS}:80${path}`],
    (maxSeconds + 10) * 1000,
  );
  const [bytes, seconds, code] = r.stdout.trim().split(' ').map(Number);
  return { bytes: bytes ?? 0, seconds: seconds ?? Number.NaN, code: code ?? 0, exit: r.status };
}

/** curl fetching `bytes` of `GET /bytes/N`: Mbit/s; NaN unless all of it came. */
export async function curlDown(t: TcpTarget, bytes: number): Promise<number> {
  const r = await curl(t, `/bytes/${bytes}`, 120);
  if (r.bytes !== bytes || r.code !== 200) return failed(`curl from ${t.name}`, `${r.bytes} of ${bytes} bytes, HTTP ${r.code}, exit ${r.exit}`);
  return (r.bytes * 8) / r.seconds / 1e6;
}

/** curl fetching a large body for at most `seconds`: Mbit/s over what came in that time (for the lossy rows). */
export async function curlDownFor(t: TcpTarget, seconds: number): Promise<number> {
  const r = await curl(t, `/bytes/${4 * 1024 ** 3}`, seconds);
  if (r.bytes === 0 || !(r.seconds > 0)) return failed(`curl from ${t.name}`, `nothing in ${seconds} s (exit ${r.exit})`);
  return (r.bytes * 8) / r.seconds / 1e6;
}

/** `count` fetches of 1 MiB, each its own curl and connection: mean ms (curl's time_total). */
export async function fetchMean(t: TcpTarget, count: number): Promise<number> {
  let total = 0;
  for (let i = 0; i < count; i++) {
    const r = await curl(t, `/bytes/${1024 * 1024}`, 30);
    if (r.bytes !== 1024 * 1024) return failed(`1 MiB fetch from ${t.name}`, `${r.bytes} bytes, exit ${r.exit}`);
    total += r.seconds * 1000;
  }
  return total / count;
}

export interface AbResult {
  requestsPerSecond: number;
  failed: number;
  complete: number;
}

/** `ab -n N -c 10` on `GET /bytes/1024` (a new connection per request: ab speaks HTTP/1.0). */
export async function ab(t: TcpTarget, requests: number): Promise<AbResult> {
  const r = await t.client.run('ab', ['-q', '-s', '10', '-n', String(requests), '-c', '10', `http://${ADDRESS}:80/bytes/1024`], 120_000);
  const rps = /Requests per second:\s+([\d.]+)/.exec(r.stdout);
  const fails = /Failed requests:\s+(\d+)/.exec(r.stdout);
  const complete = /Complete requests:\s+(\d+)/.exec(r.stdout);
  if (!rps || !fails || !complete) {
    failed(`ab against ${t.name}`, r.stderr || r.stdout);
    return { requestsPerSecond: Number.NaN, failed: requests, complete: 0 };
  }
  return { requestsPerSecond: Number(rps[1]), failed: Number(fails[1]) + requests - Number(complete[1]), complete: Number(complete[1]) };
}

const PING_PONG = `
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((host, port), 5)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def rounds(k):
    for _ in range(k):
        s.sendall(b"x")
        if len(s.recv(1)) != 1:
            sys.exit("the echo closed the connection")
rounds(min(1000, n // 10 + 1))
t = time.perf_counter()
rounds(n)
print((time.perf_counter() - t) / n * 1e6)
s.close()
`;

/** 1-byte round trips over one connection to the echo port (TCP_NODELAY): us per round trip. */
export async function pingPong(t: TcpTarget, count: number): Promise<number> {
  const r = await t.client.run('python3', ['-c', PING_PONG, ADDRESS, '7', String(count)], 120_000);
  const us = Number(r.stdout.trim());
  if (r.status !== 0 || !(us > 0)) return failed(`ping-pong with ${t.name}`, r.stderr || r.stdout);
  return us;
}

/** 1% random loss both ways on the host's device (../shared/tools/link-loss.sh), or off. */
export function setLoss(t: TcpTarget, percent: number | 'off'): void {
  t.client.exec('bash', [LINK_LOSS, t.device, String(percent)]);
}

/** Runs `measure` with 1% loss both ways on the target's device, and takes the loss off again, also when it throws. */
export async function underLoss<T>(t: TcpTarget, measure: () => Promise<T>): Promise<T> {
  setLoss(t, 1);
  try {
    return await measure();
  } finally {
    setLoss(t, 'off');
  }
}

/** The two lossy rows: iperf up, then curl down, both under 1% loss. */
async function lossRows(t: TcpTarget, seconds: number): Promise<{ up: number; down: number }> {
  return underLoss(t, async () => ({ up: await iperfUp(t, seconds), down: await curlDownFor(t, seconds) }));
}

function failed(what: string, detail: string): number {
  process.stderr.write(`bench: ${what} failed: ${detail.trim().split('\n').slice(-3).join(' / ')}\n`);
  return Number.NaN;
}

// ------------------------------------------------------------------------------ memory

const IDLE_CONNECTIONS = `
import resource, socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 1024, n + 1024))
socks = []
for i in range(n):
    s = socket.create_connection((host, port), 10)
    socks.append(s)
print("open", len(socks), flush=True)
sys.stdin.read()
for s in socks:
    s.close()
`;

export interface IdleConnections {
  target: TcpTargetName;
  connections: number;
  rssBeforeKb: number;
  rssAtKb: number;
  bytesPerConnection: number;
}

/** Opens `count` connections to the discard port from one client and holds them; RSS before and with them. */
export async function idleConnections(t: TcpTarget & { pid: number }, count: number, settleMs: number): Promise<IdleConnections | undefined> {
  // a warm-up: the accept path compiled and its first allocations made
  await t.client.run('python3', ['-c', IDLE_CONNECTIONS.replace('sys.stdin.read()', ''), ADDRESS, '9', '200'], 60_000);
  await sleep(settleMs);
  const rssBeforeKb = rssKb(t.pid);
  const client = t.client.spawn('python3', ['-c', IDLE_CONNECTIONS, ADDRESS, '9', String(count)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  client.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  client.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const started = Date.now();
  while (!/^open \d+/m.test(out)) {
    if (client.exitCode !== null || Date.now() - started > 180_000) {
      client.kill('SIGKILL');
      failed(`${count} connections to ${t.name}`, out);
      return undefined;
    }
    await sleep(50);
  }
  await sleep(2 * settleMs); // the last handshakes done, timers settled
  const rssAtKb = rssKb(t.pid);
  client.stdin!.end();
  await new Promise((r) => client.once('exit', r));
  return {
    target: t.name as TcpTargetName,
    connections: count,
    rssBeforeKb,
    rssAtKb,
    bytesPerConnection: Math.round(((rssAtKb - rssBeforeKb) * 1024) / count),
  };
}

// The active mix: `n` connections to the echo port from one client, and every `every`-th one
// exchanging data while the rest stay idle. Each active connection sends 16 KiB of its own
// pattern, reads the echo back whole and compares it, then sends the next; when the time is up no
// new exchange starts, the ones under way finish (10 s at most), and any that did not come back
// whole, or came back different, is counted bad.
const ACTIVE_MIX = `
import resource, selectors, socket, sys, time
host, port, n, every, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 1024, n + 1024))
socks = [socket.create_connection((host, port), 10) for _ in range(n)]
print("open", len(socks), flush=True)
sys.stdin.readline()
CHUNK = 16384
class Exchange:
    def __init__(self, i):
        self.pattern = bytes((i * 7 + k) & 255 for k in range(CHUNK))
        self.sent = 0
        self.got = bytearray()
sel = selectors.DefaultSelector()
for i in range(0, n, every):
    socks[i].setblocking(False)
    sel.register(socks[i], selectors.EVENT_READ | selectors.EVENT_WRITE, Exchange(i))
started = time.monotonic()
end = started + seconds
exchanges = bad = 0
while sel.get_map():
    now = time.monotonic()
    if now > end + 10:
        bad += len(sel.get_map())
        break
    for key, events in sel.select(0.1):
        s, x = key.fileobj, key.data
        try:
            if events & selectors.EVENT_WRITE and x.sent < CHUNK:
                x.sent += s.send(x.pattern[x.sent:])
                if x.sent == CHUNK:
                    sel.modify(s, selectors.EVENT_READ, x)
            if events & selectors.EVENT_READ:
                data = s.recv(65536)
                if not data:
                    bad += 1
                    sel.unregister(s)
                    continue
                x.got += data
                if len(x.got) >= CHUNK:
                    if bytes(x.got) != x.pattern:
                        bad += 1
                    exchanges += 1
                    x.got = bytearray()
                    x.sent = 0
                    if time.monotonic() < end:
                        sel.modify(s, selectors.EVENT_READ | selectors.EVENT_WRITE, x)
                    else:
                        sel.unregister(s)
        except BlockingIOError:
            pass
print("done", exchanges, bad, round(time.monotonic() - started, 3), flush=True)
sys.stdin.read()
for s in socks:
    s.close()
`;

export interface ActiveMix {
  target: TcpTargetName;
  connections: number;
  /** How many of them exchanged data (every `connections / active`-th). */
  active: number;
  rssBeforeKb: number;
  /** The largest RSS sampled while the data moved (every 100 ms). */
  rssMaxKb: number;
  bytesPerConnection: number;
  /** 16 KiB round trips completed, whole and equal to what was sent. */
  exchanges: number;
  /** Exchanges that came back short, different, or not at all. */
  bad: number;
  /** Echoed payload per second, both directions counted once. */
  mbitPerSecond: number;
}

/** Holds `count` connections to the echo port, `active` of them echoing 16 KiB at a time for `seconds`; RSS before and the most while they run. */
export async function activeMix(t: TcpTarget & { pid: number }, count: number, active: number, seconds: number, settleMs: number): Promise<ActiveMix | undefined> {
  // the same warm-up as the idle row
  await t.client.run('python3', ['-c', IDLE_CONNECTIONS.replace('sys.stdin.read()', ''), ADDRESS, '7', '200'], 60_000);
  await sleep(settleMs);
  const rssBeforeKb = rssKb(t.pid);
  const every = Math.max(1, Math.floor(count / active));
  const client = t.client.spawn('python3', ['-c', ACTIVE_MIX, ADDRESS, '7', String(count), String(every), String(seconds)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  client.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  client.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const waitFor = async (pattern: RegExp, ms: number): Promise<RegExpExecArray | undefined> => {
    const started = Date.now();
    for (;;) {
      const m = pattern.exec(out);
      if (m) return m;
      if (client.exitCode !== null || Date.now() - started > ms) return undefined;
      await sleep(50);
    }
  };
  try {
    if (!(await waitFor(/^open \d+/m, 180_000))) {
      failed(`${count} connections (${active} active) to ${t.name}`, out);
      return undefined;
    }
    await sleep(2 * settleMs);
    let rssMaxKb = rssKb(t.pid);
    const timer = setInterval(() => (rssMaxKb = Math.max(rssMaxKb, rssKb(t.pid))), 100);
    client.stdin!.write('go\n');
    const done = await waitFor(/^done (\d+) (\d+) ([\d.]+)/m, (seconds + 30) * 1000);
    clearInterval(timer);
    if (!done) {
      failed(`the active mix on ${t.name}`, out);
      return undefined;
    }
    const exchanges = Number(done[1]);
    return {
      target: t.name as TcpTargetName,
      connections: count,
      active: Math.ceil(count / every),
      rssBeforeKb,
      rssMaxKb,
      bytesPerConnection: Math.round(((rssMaxKb - rssBeforeKb) * 1024) / count),
      exchanges,
      bad: Number(done[2]),
      mbitPerSecond: (exchanges * 16384 * 8) / Number(done[3]) / 1e6,
    };
  } finally {
    client.stdin!.end();
    if (client.exitCode === null) {
      const exited = new Promise((r) => client.once('exit', r));
      const killer = setTimeout(() => client.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(killer);
    }
  }
}

export interface LongTransfer {
  bytes: number;
  seconds: number;
  mbitPerSecond: number;
  /** [seconds since the start, RSS kB] */
  samples: [number, number][];
  startKb: number;
  /** RSS once 10% of the time had passed, and the largest and the last sample after that. */
  earlyKb: number;
  maxKb: number;
  endKb: number;
}

/** iperf sends `bytes` into a fresh tapstack's discard port while its RSS is read every 100 ms. */
async function longTransfer(t: TapstackTcp, bytes: number): Promise<LongTransfer | undefined> {
  const startKb = rssKb(t.pid);
  const samples: [number, number][] = [];
  const started = Date.now();
  // Every 100 ms: --quick's 128 MiB can pass in under a second, and the figure needs two samples.
  const timer = setInterval(() => samples.push([(Date.now() - started) / 1000, rssKb(t.pid)]), 100);
  const r = await t.client.run('iperf', ['-c', ADDRESS, '-p', '9', '-n', String(bytes), '-y', 'C'], 1_800_000);
  clearInterval(timer);
  const seconds = (Date.now() - started) / 1000;
  const line = r.stdout.trim().split('\n').filter((l) => /^\d{14},/.test(l)).pop();
  if (!line || samples.length < 2) {
    failed('long transfer into tapstack', r.stderr || r.stdout);
    return undefined;
  }
  const after = samples.filter(([s]) => s >= seconds * 0.1);
  return {
    bytes,
    seconds,
    mbitPerSecond: Number(line.split(',').pop()) / 1e6,
    samples,
    startKb,
    earlyKb: after[0]![1],
    maxKb: Math.max(...after.map(([, kb]) => kb)),
    endKb: after[after.length - 1]![1],
  };
}

// ------------------------------------------------------------------------------ the section

export interface TcpCounts {
  rounds: number;
  iperfSeconds: number;
  curlBytes: number;
  fetches: number;
  abRequests: number;
  pingPongs: number;
  lossSeconds: number;
  connections: number;
  /** How long a tenth of the connections echo data in the active mix. */
  mixSeconds: number;
  longBytes: number;
}

export function tcpCounts(quick: boolean, rounds: number): TcpCounts {
  return quick
    ? // lossSeconds 3, not 1: at 1% loss each way a lost SYN, SYN-ACK or request waits out the 1 s
      // initial RTO (RFC 6298), and a 1 s curl then got nothing: a row CI could not measure.
      { rounds, iperfSeconds: 1, curlBytes: 10 * 1024 ** 2, fetches: 5, abRequests: 200, pingPongs: 2_000, lossSeconds: 3, connections: 1_000, mixSeconds: 1, longBytes: 128 * 1024 ** 2 }
    : { rounds, iperfSeconds: 5, curlBytes: 100 * 1024 ** 2, fetches: 50, abRequests: 2_000, pingPongs: 20_000, lossSeconds: 5, connections: 10_000, mixSeconds: 5, longBytes: 10 * 1024 ** 3 };
}

type Better = 'higher' | 'lower';

interface RowSpec {
  key: string;
  label: string;
  better: Better;
  /** tapstack's ratio to whom, and the bound (>= for higher-is-better, <= for lower). */
  target?: { to: 'lwip' | 'kernel'; ratio: number };
  /** Only tapstack can be measured (the delayed rows: no netem for the others). */
  tapstackOnly?: string;
  /**
   * The row's tapstack figure comes from the second tapstack, with the virtio-net header; lwIP's
   * and the kernel's from their `peerKey` figure (they have one mode: the same measurement).
   */
  vnet?: { peerKey: string };
  /**
   * The row's kernel figure comes from the kernel with TSO/GSO/GRO off on its veth pair (the
   * like-for-like reference for plain frames); tapstack's (plain) and lwIP's from `peerKey`.
   */
  kernelPlain?: { peerKey: string };
}

export interface TcpRow {
  key: string;
  label: string;
  values: Record<TcpTargetName, number>;
  all: Record<TcpTargetName, number[]>;
  ratioLwip: number;
  ratioKernel: number;
  target: string;
  met: string;
  note?: string;
}

export interface TcpSection {
  counts: TcpCounts;
  lwip: { binary?: string; error?: string };
  /** What the plain `tapstack up` got besides the services (--no-vnet-hdr and any --tapstack-arg). */
  tapstackArgs: string[];
  /** The same for the second tapstack, the one with the virtio-net header (the vnet rows). */
  vnetArgs: string[];
  rows: TcpRow[];
  abFailed: Record<TcpTargetName, number[]>;
  idle: IdleConnections[];
  /** The same number of connections with a tenth of them echoing data (fresh processes again). */
  mix: ActiveMix[];
  longTransfer?: LongTransfer;
  counters?: string;
}

function rowSpecs(c: TcpCounts): RowSpec[] {
  const mib = (b: number): string => `${b / 1024 ** 2} MiB`;
  // Rows of the plain tapstack (--no-vnet-hdr) say nothing; the virtio-net header's rows say `vnet`.
  return [
    { key: 'bulk_up', label: `bulk host -> target, Mbit/s (iperf -t ${c.iperfSeconds} into discard)`, better: 'higher', target: { to: 'lwip', ratio: 1 } },
    { key: 'bulk_down', label: `bulk target -> host, Mbit/s (curl ${mib(c.curlBytes)} of GET /bytes/N)`, better: 'higher', target: { to: 'lwip', ratio: 1 } },
    { key: 'vnet_bulk_up', label: `  the same, tapstack vnet: host -> target, Mbit/s`, better: 'higher', target: { to: 'lwip', ratio: 2 }, vnet: { peerKey: 'bulk_up' } },
    { key: 'vnet_bulk_down', label: `  the same, tapstack vnet: target -> host, Mbit/s`, better: 'higher', target: { to: 'lwip', ratio: 2 }, vnet: { peerKey: 'bulk_down' } },
    { key: 'fetch_1mib', label: `1 MiB fetch, ms (curl, mean of ${c.fetches})`, better: 'lower' },
    { key: 'ab', label: `ab -n ${c.abRequests} -c 10, requests/s (GET /bytes/1024)`, better: 'higher', target: { to: 'kernel', ratio: 0.7 } },
    { key: 'ab_failed', label: 'ab failed requests (the worst round)', better: 'lower' },
    { key: 'ping_pong', label: `1-byte ping-pong, us per round trip (${c.pingPongs} over one connection)`, better: 'lower', target: { to: 'lwip', ratio: 1.5 } },
    // under loss tapstack runs as `tapstack up` does by default (vnet), with the plain rows beside
    { key: 'vnet_loss_up', label: `1% loss both ways, tapstack vnet: host -> target, Mbit/s (iperf -t ${c.lossSeconds})`, better: 'higher', target: { to: 'kernel', ratio: 0.25 }, vnet: { peerKey: 'loss_up' } },
    { key: 'vnet_loss_down', label: `1% loss both ways, tapstack vnet: target -> host, Mbit/s (curl for ${c.lossSeconds} s)`, better: 'higher', target: { to: 'kernel', ratio: 0.25 }, vnet: { peerKey: 'loss_down' } },
    { key: 'loss_up', label: `1% loss both ways: host -> target, Mbit/s (iperf -t ${c.lossSeconds})`, better: 'higher', target: { to: 'kernel', ratio: 0.25 } },
    { key: 'loss_down', label: `1% loss both ways: target -> host, Mbit/s (curl for ${c.lossSeconds} s)`, better: 'higher', target: { to: 'kernel', ratio: 0.25 } },
    // the same two figures of ours (and lwIP's) beside the kernel on plain frames: veth with
    // TSO/GSO/GRO off, so that the kernel's download is lost one 1514-byte frame at a time too,
    // and CUBIC sending it, as ours does (the machine's default, bbr, ignores random loss)
    { key: 'plain_loss_up', label: `  the same, kernel plain frames + CUBIC: host -> target`, better: 'higher', target: { to: 'kernel', ratio: 0.25 }, kernelPlain: { peerKey: 'loss_up' } },
    { key: 'plain_loss_down', label: `  the same, kernel plain frames + CUBIC: target -> host`, better: 'higher', target: { to: 'kernel', ratio: 0.25 }, kernelPlain: { peerKey: 'loss_down' } },
    { key: 'delay_loss_up', label: `10 ms each way + 1% loss: host -> target, Mbit/s`, better: 'higher', tapstackOnly: 'n/a (no netem)' },
    { key: 'delay_loss_down', label: `10 ms each way + 1% loss: target -> host, Mbit/s`, better: 'higher', tapstackOnly: 'n/a (no netem)' },
  ];
}

type Measured = Record<string, number>;

async function measureTarget(t: TcpTarget, c: TcpCounts): Promise<Measured> {
  const m: Measured = {};
  const step = (what: string): void => void process.stderr.write(`bench: tcp ${t.name}: ${what}\n`);
  step('iperf');
  m.bulk_up = await iperfUp(t, c.iperfSeconds);
  step('curl');
  m.bulk_down = await curlDown(t, c.curlBytes);
  step('1 MiB fetches');
  m.fetch_1mib = await fetchMean(t, c.fetches);
  step('ab');
  const a = await ab(t, c.abRequests);
  m.ab = a.requestsPerSecond;
  m.ab_failed = a.failed;
  step('ping-pong');
  m.ping_pong = await pingPong(t, c.pingPongs);
  step('1% loss');
  const loss = await lossRows(t, c.lossSeconds);
  m.loss_up = loss.up;
  m.loss_down = loss.down;
  return m;
}

/** The second tapstack, with the virtio-net header: bulk both ways, and both ways under 1% loss. */
async function measureVnet(t: TcpTarget, c: TcpCounts): Promise<Measured> {
  const m: Measured = {};
  process.stderr.write(`bench: tcp tapstack vnet: iperf, curl, 1% loss\n`);
  m.vnet_bulk_up = await iperfUp(t, c.iperfSeconds);
  m.vnet_bulk_down = await curlDown(t, c.curlBytes);
  const loss = await lossRows(t, c.lossSeconds);
  m.vnet_loss_up = loss.up;
  m.vnet_loss_down = loss.down;
  return m;
}

async function measureDelayed(t: TcpTarget, c: TcpCounts): Promise<Measured> {
  process.stderr.write(`bench: tcp tapstack --link-delay 10: 1% loss\n`);
  const loss = await lossRows(t, c.lossSeconds);
  return { delay_loss_up: loss.up, delay_loss_down: loss.down };
}

/** The kernel with TSO/GSO/GRO off on its veth pair: the lossy rows only (the plain rows' like-for-like reference). */
async function measureKernelPlain(t: TcpTarget, c: TcpCounts): Promise<Measured> {
  process.stderr.write(`bench: tcp kernel, plain frames: 1% loss\n`);
  const loss = await lossRows(t, c.lossSeconds);
  return { plain_loss_up: loss.up, plain_loss_down: loss.down };
}

function verdict(spec: RowSpec, values: Record<TcpTargetName, number>, abFailed: number): { ratio: number; target: string; met: string } {
  if (!spec.target) return { ratio: Number.NaN, target: '', met: '' };
  const ratio = values.tapstack / values[spec.target.to];
  const who = spec.target.to === 'lwip' ? 'lwIP' : 'kernel';
  const bound = `${spec.better === 'higher' ? '>=' : '<='} ${spec.target.ratio}x ${who}`;
  if (Number.isNaN(ratio)) return { ratio, target: bound + (spec.key === 'ab' ? ', 0 failed' : ''), met: '-' };
  let ok = spec.better === 'higher' ? ratio >= spec.target.ratio : ratio <= spec.target.ratio;
  if (spec.key === 'ab') ok = ok && abFailed === 0;
  return { ratio, target: bound + (spec.key === 'ab' ? ', 0 failed' : ''), met: ok ? 'yes' : 'NO' };
}

export async function tcpSection(options: { quick: boolean; rounds: number; scratch: string; tapstackArgs?: readonly string[] }): Promise<TcpSection> {
  // The plain rows are the lwIP comparison (lwIP has no virtio-net header): --no-vnet-hdr unless
  // --tapstack-arg says otherwise; the vnet rows come from a second tapstack with the header.
  const given = [...(options.tapstackArgs ?? [])].filter((a) => a !== '--vnet-hdr' && a !== '--no-vnet-hdr');
  const extra = withFrameMode(options.tapstackArgs ?? [], 'plain');
  const vnetExtra = withFrameMode(given, 'vnet');
  const c = tcpCounts(options.quick, options.rounds);
  const built = buildLwip(options.scratch);
  if ('error' in built) process.stderr.write(`bench: lwIP not measured: ${built.error}\n`);
  const specs = rowSpecs(c);
  const results: Record<TcpTargetName, Measured[]> = { tapstack: [], lwip: [], kernel: [] };
  const delayed: Measured[] = [];
  const vnet: Measured[] = [];
  const kernelPlain: Measured[] = [];
  const targets: TcpTarget[] = [];
  const section: TcpSection = { counts: c, lwip: built, tapstackArgs: extra, vnetArgs: vnetExtra, rows: [], abFailed: { tapstack: [], lwip: [], kernel: [] }, idle: [], mix: [] };
  try {
    const tapstack = await TapstackTcp.start('tapstack', 'bench-tcp-a', extra);
    targets.push(tapstack);
    const lwip = 'binary' in built ? await LwipTcp.start('bench-tcp-l', built.binary) : undefined;
    if (lwip) targets.push(lwip);
    targets.push(await KernelTcp.start('bench-tcp-k'));
    // the plain rows' reference: plain frames, and CUBIC as ours (this machine's default is bbr)
    targets.push(await KernelTcp.start('bench-tcp-kp', 'plain', 'cubic'));
    targets.push(await TapstackTcp.start('tapstack-vnet', 'bench-tcp-v', vnetExtra));
    const tapDelay = await TapstackTcp.start('tapstack-delay', 'bench-tcp-d', [...extra, '--link-delay', '10']);
    targets.push(tapDelay);
    // warm-up, not measured: ARP, the JIT, the first allocations
    for (const t of targets) {
      await iperfUp(t, options.quick ? 0.5 : 1);
      await curl(t, `/bytes/${1024 * 1024}`, 30);
    }
    for (let round = 1; round <= c.rounds; round++) {
      for (const t of targets) {
        process.stderr.write(`bench: tcp round ${round}/${c.rounds}: ${t.name}\n`);
        if (t.name === 'tapstack-delay') delayed.push(await measureDelayed(t, c));
        else if (t.name === 'tapstack-vnet') vnet.push(await measureVnet(t, c));
        else if (t.name === 'kernel-plain') kernelPlain.push(await measureKernelPlain(t, c));
        else results[t.name].push(await measureTarget(t, c));
      }
    }
    section.counters = await tapstack.counters();
    for (const t of targets) t.close();
    targets.length = 0;

    for (const spec of specs) {
      const all = {} as Record<TcpTargetName, number[]>;
      for (const name of ['tapstack', 'lwip', 'kernel'] as const) {
        const source = spec.tapstackOnly
          ? name === 'tapstack' ? delayed : []
          : spec.vnet && name === 'tapstack' ? vnet
          : spec.kernelPlain && name === 'kernel' ? kernelPlain
          : results[name];
        const key = spec.vnet && name !== 'tapstack' ? spec.vnet.peerKey : spec.kernelPlain && name !== 'kernel' ? spec.kernelPlain.peerKey : spec.key;
        all[name] = source.map((m) => m[key] ?? Number.NaN);
      }
      // failed requests: the worst round, not the median (a round with failures must show)
      const pick = spec.key === 'ab_failed' ? (v: number[]) => (v.length === 0 ? Number.NaN : Math.max(...v)) : median;
      const values = { tapstack: pick(all.tapstack), lwip: pick(all.lwip), kernel: pick(all.kernel) };
      const abFailed = Math.max(0, ...results.tapstack.map((m) => m.ab_failed ?? 0));
      const v = verdict(spec, values, abFailed);
      section.rows.push({
        key: spec.key,
        label: spec.label,
        values,
        all,
        ratioLwip: values.tapstack / values.lwip,
        ratioKernel: values.tapstack / values.kernel,
        target: v.target,
        met: v.met,
        ...(spec.tapstackOnly ? { note: spec.tapstackOnly } : {}),
      });
    }
    for (const name of ['tapstack', 'lwip', 'kernel'] as const) section.abFailed[name] = results[name].map((m) => m.ab_failed ?? Number.NaN);

    // memory: fresh processes, so nothing of the rows above is in the figures
    process.stderr.write(`bench: tcp memory: ${c.connections.toLocaleString('en')} idle connections\n`);
    const memTap = await TapstackTcp.start('tapstack', 'bench-tcp-m', extra);
    targets.push(memTap);
    const idleTap = await idleConnections(memTap, c.connections, options.quick ? 300 : 1000);
    if (idleTap) section.idle.push(idleTap);
    if ('binary' in built) {
      const memLwip = await LwipTcp.start('bench-tcp-ml', built.binary);
      targets.push(memLwip);
      const idleLwip = await idleConnections(memLwip, c.connections, options.quick ? 300 : 1000);
      if (idleLwip) section.idle.push(idleLwip);
    }
    memTap.close();
    const active = Math.round(c.connections / 10);
    process.stderr.write(`bench: tcp memory: ${c.connections.toLocaleString('en')} connections, ${active.toLocaleString('en')} of them echoing\n`);
    const mixTap = await TapstackTcp.start('tapstack', 'bench-tcp-x', extra);
    targets.push(mixTap);
    const mixOfTap = await activeMix(mixTap, c.connections, active, c.mixSeconds, options.quick ? 300 : 1000);
    if (mixOfTap) section.mix.push(mixOfTap);
    mixTap.close();
    if ('binary' in built) {
      const mixLwip = await LwipTcp.start('bench-tcp-xl', built.binary);
      targets.push(mixLwip);
      const mixOfLwip = await activeMix(mixLwip, c.connections, active, c.mixSeconds, options.quick ? 300 : 1000);
      if (mixOfLwip) section.mix.push(mixOfLwip);
      mixLwip.close();
    }
    process.stderr.write(`bench: tcp memory: RSS through a ${formatBytes(c.longBytes)} transfer\n`);
    const longTap = await TapstackTcp.start('tapstack', 'bench-tcp-lt', extra);
    targets.push(longTap);
    const lt = await longTransfer(longTap, c.longBytes);
    if (lt) section.longTransfer = lt;
    return section;
  } finally {
    for (const t of targets) t.close();
  }
}

function formatBytes(b: number): string {
  return b >= 1024 ** 3 ? `${b / 1024 ** 3} GiB` : `${b / 1024 ** 2} MiB`;
}

function ratio(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}x` : '-';
}

/**
 * A memory row of the TCP table, tapstack's RSS beside lwIP's (undefined: lwIP not measured) with
 * the "< 200 MB at 10,000" target (met only if `ok` too), and the figure shown under it.
 */
function memoryRows(label: string, connections: number, rssKb: [number, number | undefined], ok: boolean, under: [string, number, number | undefined]): string[][] {
  const [tapKb, lwipKb] = rssKb;
  const mb = (kb: number): string => formatKb(kb).replace(' MB', '');
  const [underLabel, tapValue, lwipValue] = under;
  return [
    [
      label,
      mb(tapKb),
      lwipKb === undefined ? 'n/a' : mb(lwipKb),
      'n/a (kernel memory)',
      lwipKb === undefined ? '-' : ratio(tapKb / lwipKb),
      '',
      '< 200 MB at 10,000',
      connections >= 10_000 ? (tapKb * 1024 < 200 * 1024 ** 2 && ok ? 'yes' : 'NO') : '',
    ],
    [underLabel, formatNumber(tapValue), lwipValue === undefined ? 'n/a' : formatNumber(lwipValue), 'n/a', lwipValue === undefined ? '-' : ratio(tapValue / lwipValue), '', '', ''],
  ];
}

export function formatTcpSection(s: TcpSection): string {
  const out: string[] = [];
  out.push(
    `TCP from 10.0.0.1: tapstack (up ${s.tapstackArgs.join(' ')}; the vnet rows: up ${s.vnetArgs.join(' ')}) behind tap0, lwIP 2.1.3 behind tap0 (../shared/peers/lwip-tap), the kernel over veth (iperf -s, socat, ` +
      `our --http server on node:net; in the "kernel plain frames + CUBIC" rows a second veth pair with TSO/GSO/GRO off and CUBIC on the server's route); medians of ${s.counts.rounds} round(s), the targets in turn:`,
    '',
  );
  const header = ['figure', 'tapstack', 'lwIP', 'kernel', 'tapstack/lwIP', 'tapstack/kernel', 'target', 'met'];
  const rows = s.rows.map((r) => {
    const other = (v: number): string => (r.note ?? formatNumber(v));
    return [
      r.label,
      formatNumber(r.values.tapstack),
      r.note ? other(r.values.lwip) : s.lwip.error ? 'n/a' : formatNumber(r.values.lwip),
      r.note ? other(r.values.kernel) : formatNumber(r.values.kernel),
      // a ratio of failure counts means nothing: the row shows the counts only
      r.note || r.key === 'ab_failed' ? '' : ratio(r.ratioLwip),
      r.note || r.key === 'ab_failed' ? '' : ratio(r.ratioKernel),
      r.target,
      r.met,
    ];
  });
  const idle = (name: TcpTargetName): IdleConnections | undefined => s.idle.find((i) => i.target === name);
  const t = idle('tapstack');
  const l = idle('lwip');
  if (t) {
    rows.push(
      ...memoryRows(`RSS at ${t.connections.toLocaleString('en')} idle connections, MB`, t.connections, [t.rssAtKb, l?.rssAtKb], true, [
        '  bytes per idle connection (RSS growth / connections)',
        t.bytesPerConnection,
        l?.bytesPerConnection,
      ]),
    );
  }
  const mixOf = (name: TcpTargetName): ActiveMix | undefined => s.mix.find((m) => m.target === name);
  const mt = mixOf('tapstack');
  const ml = mixOf('lwip');
  if (mt) {
    rows.push(
      ...memoryRows(
        `RSS at ${mt.connections.toLocaleString('en')} connections, ${mt.active.toLocaleString('en')} echoing, MB (most while echoing)`,
        mt.connections,
        [mt.rssMaxKb, ml?.rssMaxKb],
        mt.bad === 0,
        ['  their echo, Mbit/s (16 KiB round trips, every byte compared)', mt.mbitPerSecond, ml?.mbitPerSecond],
      ),
    );
  }
  out.push(markdownTable(header, rows), '');
  if (s.lwip.error) out.push(`lwIP not measured: ${s.lwip.error}`);
  const failedNote = (name: TcpTargetName): string => s.abFailed[name].map((x) => (Number.isNaN(x) ? '-' : String(x))).join('/');
  out.push(`ab failed requests per round: tapstack ${failedNote('tapstack')}, lwIP ${failedNote('lwip') || '-'}, kernel ${failedNote('kernel')}`);
  for (const i of s.idle) {
    out.push(
      `${i.target === 'lwip' ? 'lwIP' : 'tapstack'} at ${i.connections.toLocaleString('en')} idle connections (fresh process, 200 opened and closed first): RSS ${formatKb(i.rssBeforeKb)} -> ${formatKb(i.rssAtKb)}, ${i.bytesPerConnection.toLocaleString('en')} bytes each`,
    );
  }
  for (const m of s.mix) {
    out.push(
      `${m.target === 'lwip' ? 'lwIP' : 'tapstack'} at ${m.connections.toLocaleString('en')} connections, ${m.active.toLocaleString('en')} of them echoing (fresh process): RSS ${formatKb(m.rssBeforeKb)} -> at most ${formatKb(m.rssMaxKb)}, ` +
        `${m.bytesPerConnection.toLocaleString('en')} bytes per connection; ${m.exchanges.toLocaleString('en')} 16 KiB exchanges, ${m.bad} bad`,
    );
  }
  const lt = s.longTransfer;
  if (lt) {
    // flat: nothing after the first 10% of the time above the RSS at 10% by more than 10%
    const growth = (lt.maxKb - lt.earlyKb) / lt.earlyKb;
    out.push(
      `tapstack RSS through a ${formatBytes(lt.bytes)} iperf transfer into discard (${formatNumber(lt.mbitPerSecond)} Mbit/s, ${lt.seconds.toFixed(0)} s, ${lt.samples.length} samples): ` +
        `${formatKb(lt.startKb)} at start, ${formatKb(lt.earlyKb)} at 10% of the time, at most ${formatKb(lt.maxKb)} after that, ${formatKb(lt.endKb)} at the end; ` +
        `largest growth over the RSS at 10% ${(growth * 100).toFixed(1)}% (flat within 10%: ${growth <= 0.1 ? 'yes' : 'NO'})`,
    );
  }
  return out.join('\n');
}
