/**
 * Runs the real iputils `ping` inside a namespace and reads its summary, and measures the
 * `ping -6` flood rows (ping6Section):
 *
 *   20000 packets transmitted, 20000 received, 0% packet loss, time 642ms
 *   rtt min/avg/max/mdev = 0.006/0.021/12.894/0.185 ms, ipg/ewma 0.032/0.010 ms
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Netns } from '../test/support/netns.ts';
import { formatNumber, markdownTable, median } from './table.ts';

export interface PingResult {
  transmitted: number;
  received: number;
  lossPercent: number;
  /** ping's own `time`: from the first request to the end of the run, in ms. */
  timeMs: number;
  rttMinMs: number;
  rttAvgMs: number;
  rttMaxMs: number;
}

/** Parses ping's summary lines; throws with the output when they are not there. */
export function parsePingSummary(output: string): PingResult {
  const counts = /(\d+) packets transmitted, (\d+) received,(?: \+\d+ duplicates,)?(?: \+\d+ errors,)? ([\d.]+)% packet loss, time (\d+)ms/.exec(
    output,
  );
  if (!counts) throw new Error(`no ping summary in:\n${output}`);
  const rtt = /rtt min\/avg\/max\/mdev = ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(output);
  return {
    transmitted: Number(counts[1]),
    received: Number(counts[2]),
    lossPercent: Number(counts[3]),
    timeMs: Number(counts[4]),
    rttMinMs: rtt ? Number(rtt[1]) : Number.NaN,
    rttAvgMs: rtt ? Number(rtt[2]) : Number.NaN,
    rttMaxMs: rtt ? Number(rtt[3]) : Number.NaN,
  };
}

/**
 * `ping -q <args> <target>` inside `ns`, without blocking our event loop. `-W 1` bounds the wait
 * for the last replies, so a lossy run ends in a second instead of ping's 10 s linger.
 */
export async function ping(ns: Netns, target: string, args: string[], options: { cpu?: number; timeoutMs?: number } = {}): Promise<PingResult> {
  const command = ['ping', '-q', '-W', '1', ...args, target];
  // With `cpu`, ping runs on that CPU only (taskset), next to a responder placed there too.
  const [cmd, ...rest] = options.cpu === undefined ? command : ['taskset', '-c', String(options.cpu), ...command];
  const r = await ns.run(cmd!, rest, options.timeoutMs ?? 300_000);
  // ping exits 1 when some replies were missing: the summary still says how many.
  if (r.status !== 0 && r.status !== 1) throw new Error(`ping ${args.join(' ')} ${target} failed (${r.status}): ${r.stderr || r.stdout}`);
  return parsePingSummary(r.stdout);
}

// ------------------------------------------------------------------------------ ping -6 floods

/**
 * The `ping -6` rows (issue 12): the kernel at fd00:10::1 floods fd00:10::2, answered by
 * `tapstack up` behind a TAP device (its ICMPv6 echo, through NDP) or by the kernel behind a veth
 * pair, in namespaces of their own, alternately, several rounds. The same commands as the IPv4
 * rows, so the two tables read side by side.
 */
export interface Ping6Row {
  key: string;
  label: string;
  tapstack: number;
  kernel: number;
  /** tapstack / kernel, the figure to compare (load hits both). */
  ratio: number;
  all: { tapstack: number[]; kernel: number[] };
}

export interface Ping6Section {
  rounds: number;
  rows: Ping6Row[];
}

const TAPSTACK_BIN = fileURLToPath(new URL('../packages/stack/bin/tapstack.js', import.meta.url));

/** No router solicitations from the kernel's side: nothing but the pings on the wire. */
function quietRouterSolicitations(ns: Netns): void {
  ns.exec('sysctl', ['-q', '-w', 'net.ipv6.conf.all.router_solicitations=0']);
  ns.exec('sysctl', ['-q', '-w', 'net.ipv6.conf.default.router_solicitations=0']);
}

/** `tapstack up` (IPv6 on by default: fd00:10::2, the kernel's tap0 fd00:10::1 without DAD); resolves once it says it is up. */
async function startTapstack6(label: string): Promise<{ ns: Netns; child: ChildProcess }> {
  const ns = Netns.create(label);
  try {
    quietRouterSolicitations(ns);
    const child = ns.spawn(process.execPath, [TAPSTACK_BIN, 'up'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const started = Date.now();
    while (!/tapstack is up[\s\S]*IPv6: fd00:10::2\/64/.test(output)) {
      if (child.exitCode !== null || Date.now() - started > 30_000) throw new Error(`tapstack up did not come up with IPv6:\n${output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return { ns, child };
  } catch (err) {
    ns.destroy();
    throw err;
  }
}

/** The kernel on both ends of a veth pair: fd00:10::1 (pinger) and fd00:10::2, no DAD, no RAs. */
function startKernel6(label: string): { pinger: Netns; responder: Netns } {
  const pinger = Netns.create(`${label}-b`);
  let responder: Netns | undefined;
  try {
    responder = Netns.create(`${label}-c`);
    for (const ns of [pinger, responder]) quietRouterSolicitations(ns);
    pinger.exec('ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
    pinger.exec('ip', ['link', 'set', 'veth1', 'netns', responder.name]);
    pinger.exec('ip', ['-6', 'addr', 'add', 'fd00:10::1/64', 'dev', 'veth0', 'nodad']);
    responder.exec('ip', ['-6', 'addr', 'add', 'fd00:10::2/64', 'dev', 'veth1', 'nodad']);
    pinger.exec('ip', ['link', 'set', 'veth0', 'up']);
    responder.exec('ip', ['link', 'set', 'veth1', 'up']);
    return { pinger, responder };
  } catch (err) {
    responder?.destroy();
    pinger.destroy();
    throw err;
  }
}

export async function ping6Section(options: { rounds: number; counts: { serial: number; flood: number; warmup: number } }): Promise<Ping6Section> {
  const { rounds, counts } = options;
  const tap = await startTapstack6('bench-6a');
  let kernel: ReturnType<typeof startKernel6> | undefined;
  try {
    kernel = startKernel6('bench-6k');
    const pingers = { tapstack: tap.ns, kernel: kernel.pinger };
    const target = 'fd00:10::2';
    // Warm-up: neighbours resolved both ways, our JIT warm; not measured.
    for (const ns of Object.values(pingers)) await ping(ns, target, ['-6', '-f', '-c', String(counts.warmup)]);
    const results = { tapstack: [] as { serial: PingResult; flood: PingResult }[], kernel: [] as { serial: PingResult; flood: PingResult }[] };
    for (let round = 1; round <= rounds; round++) {
      for (const name of ['tapstack', 'kernel'] as const) {
        process.stderr.write(`bench: ping -6, round ${round}/${rounds}: ${name}\n`);
        const ns = pingers[name];
        results[name].push({
          serial: await ping(ns, target, ['-6', '-f', '-c', String(counts.serial)]),
          flood: await ping(ns, target, ['-6', '-f', '-l', '32', '-c', String(counts.flood)]),
        });
      }
    }
    const figures: { key: string; label: string; value: (r: { serial: PingResult; flood: PingResult }) => number }[] = [
      { key: 'serial6_time', label: `ping -6 serial flood, ms (ping -6 -f -c ${counts.serial})`, value: (r) => r.serial.timeMs },
      { key: 'serial6_loss', label: 'ping -6 serial flood loss, %', value: (r) => r.serial.lossPercent },
      { key: 'flood6_time', label: `ping -6 flood 32 in flight, ms (ping -6 -f -l 32 -c ${counts.flood})`, value: (r) => r.flood.timeMs },
      { key: 'flood6_loss', label: 'ping -6 flood 32 in flight loss, %', value: (r) => r.flood.lossPercent },
    ];
    const rows = figures.map((f) => {
      const all = { tapstack: results.tapstack.map(f.value), kernel: results.kernel.map(f.value) };
      const a = median(all.tapstack);
      const b = median(all.kernel);
      return { key: f.key, label: f.label, tapstack: a, kernel: b, ratio: b === 0 ? Number.NaN : a / b, all };
    });
    return { rounds, rows };
  } finally {
    kernel?.pinger.destroy();
    kernel?.responder.destroy();
    if (tap.child.exitCode === null) tap.child.kill('SIGTERM');
    tap.ns.destroy();
  }
}

/**
 * The ping -6 table; `ipv4` (the IPv4 rows of the same run, placed by the scheduler) goes beside
 * it, so IPv6's cost over IPv4 reads off directly.
 */
export function formatPing6Section(s: Ping6Section, ipv4: readonly { key: string; label: string; tapstack: number; kernel: number; ratio: number }[] = []): string {
  const row = (f: { label: string; tapstack: number; kernel: number; ratio: number }): string[] => [
    f.label,
    formatNumber(f.tapstack),
    formatNumber(f.kernel),
    Number.isNaN(f.ratio) ? '-' : `${f.ratio.toFixed(2)}x`,
  ];
  const beside = ipv4.filter((f) => f.key === 'serial_time' || f.key === 'flood_time').map((f) => row({ ...f, label: `(IPv4, same run) ${f.label}` }));
  return [
    `ping -6 from fd00:10::1 (iputils), placed by the scheduler; medians of ${s.rounds} round(s), tapstack and kernel alternately:`,
    '',
    markdownTable(['figure', 'tapstack', 'kernel', 'tapstack/kernel'], [...s.rows.map(row), ...beside]),
  ].join('\n');
}
