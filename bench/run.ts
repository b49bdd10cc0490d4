/**
 * `npm run bench`: tapstack against the Linux kernel, answering the real iputils ping, in the
 * same run, reported as ratios. Needs root (it creates network namespaces and a TAP device).
 *
 *   npm run bench                     the full run: 3 rounds, medians, memory, ARP flood, UDP echo
 *   npm run bench -- --quick          small counts, 1 round: seconds; CI runs it to keep it working
 *   npm run bench -- --rounds 5 --memory-pings 2000000 --skip udp,arp --json out.json
 *
 * What it measures, for (a) `tapstack up` behind tap0 and (b) the kernel behind a veth pair
 * (bench/targets.ts), alternately, round after round:
 *   ping -c 500 -i 0.002                RTT avg and min
 *   ping -f -c 20000                    serial flood: total time, loss
 *   ping -f -l 32 -c 50000              flood with 32 in flight: total time, loss
 *   ping -f -l 32 -s 1400 -c 20000      bytes/s
 *   ping -c 200 -i 0.002 -s 4000        fragmented both ways: loss (the interval is ours: with
 *                                       ping's default of 1 s the figure would take 200 s)
 * each in two placements: as the scheduler places the processes, and with ping and the responder
 * on one CPU (taskset -c 0; for tapstack its main thread). On a VM a wake-up on the other CPU
 * costs an inter-processor interrupt, and the TAP path needs two wake-ups per echo while the
 * kernel answers inside ping's own send; the second placement shows what is left without them.
 * Then the in-memory input path (frames/s), memory under a long flood and under an ARP flood,
 * the UDP engineer's echo benchmark (packages/udp/bench), and TCP against lwIP and the kernel
 * (bench/tcp.ts: bulk both ways, 1 MiB fetches, ab, ping-pong, under loss and delay, memory at
 * 10,000 idle connections and through a 10 GiB transfer).
 *
 * With --floors it also pings two bare responders with no stack behind them (bench/floors): C
 * on the TAP device (the device's own floor) and node with our addon (the runtime's floor), so
 * the table shows how much of each figure is the stack and how much is the way in and out.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchUdpEcho, type UdpEchoBenchResult } from '../packages/udp/bench/udp-echo.ts';
import { measureEchoPath, type EchoPathFigure } from './echo-path.ts';
import { arpFloodInMemory, arpFloodOnTap, pingFloodRss, type ArpFloodInMemoryResult, type ArpFloodOnTapResult } from './memory.ts';
import { formatPing6Section, ping, ping6Section, type Ping6Section, type PingResult } from './ping.ts';
import { formatKb, formatNumber, markdownTable, median } from './table.ts';
import { FloorTarget, KernelTarget, TapstackTarget, type Target } from './targets.ts';
import { formatTcpSection, tcpSection, type TcpSection } from './tcp.ts';

// ------------------------------------------------------------------------------ options

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    'memory-pings': { type: 'string' },
    'arp-senders': { type: 'string' },
    placement: { type: 'string' },
    floors: { type: 'boolean', default: false },
    skip: { type: 'string', default: '' },
    'tapstack-arg': { type: 'string', multiple: true, default: [] },
    json: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (args.help) {
  console.log(`usage: npm run bench [-- --quick] [--rounds N] [--memory-pings N] [--arp-senders N]
                       [--placement free,same-cpu] [--floors] [--skip ping,ping6,inmemory,memory,arp,udp,tcp] [--json FILE]
                       [--tapstack-arg=ARG ...]   more arguments for the TCP rows' tapstack up (e.g. --tapstack-arg=--pcap=/tmp/t.pcap)`);
  process.exit(0);
}

const quick = args.quick === true;
const floors = args.floors === true;
const REPO = fileURLToPath(new URL('..', import.meta.url));
const skip = new Set((args.skip ?? '').split(',').filter(Boolean));
const rounds = Number(args.rounds ?? (quick ? 1 : 3));
const memoryPings = Number(args['memory-pings'] ?? (quick ? 20_000 : 1_000_000));
const arpSenders = Number(args['arp-senders'] ?? (quick ? 1_000 : 10_000));
type Placement = 'free' | 'same-cpu';
const placements = (args.placement ?? 'free,same-cpu').split(',').filter(Boolean) as Placement[];
for (const p of placements) if (p !== 'free' && p !== 'same-cpu') throw new Error(`--placement ${p}: free or same-cpu`);
const PLACEMENT_TITLE: Record<Placement, string> = {
  free: 'placed by the scheduler',
  'same-cpu': 'ping and the responder on CPU 0 (taskset)',
};

/** The counts of the issue; --quick divides them (same commands, fewer packets). */
const counts = quick
  ? { rtt: 50, serial: 2_000, flood: 5_000, bulk: 2_000, frag: 20, warmup: 500 }
  : { rtt: 500, serial: 20_000, flood: 50_000, bulk: 20_000, frag: 200, warmup: 5_000 };

// ------------------------------------------------------------------------------ preconditions

function fail(message: string): never {
  console.error(`bench: ${message}`);
  process.exit(2);
}

function requireBenchCapabilities(): void {
  if (process.getuid?.() !== 0) {
    fail('needs root: it creates network namespaces, a TAP device and a veth pair. Run it as root: sudo npm run bench');
  }
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    fail('needs /dev/net/tun: load the module with `modprobe tun` (in a container: --device /dev/net/tun)');
  }
  const tools = ['ip', 'ping', 'python3', 'taskset', ...(skip.has('tcp') ? [] : ['iperf', 'curl', 'ab', 'socat', 'tc'])];
  for (const tool of tools) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      fail(`needs \`${tool}\` (iproute2, iputils-ping, python3; for TCP iperf, curl, apache2-utils, socat): bash scripts/test-tools.sh installs them`);
    }
  }
  const version = execFileSync('ping', ['-V'], { encoding: 'utf8' });
  if (!/iputils/.test(version)) fail(`needs the iputils ping (found: ${version.split('\n')[0]})`);
}

// ------------------------------------------------------------------------------ the ping figures

interface Figure {
  key: string;
  label: string;
  /** Which way is better. */
  better: 'lower' | 'higher';
  /** Target for tapstack/kernel (a bound on the ratio), if the issue sets one. */
  target?: { ratio: number } | { equals: number };
  value(results: RoundResults): number;
}

interface RoundResults {
  rtt: PingResult;
  serial: PingResult;
  flood: PingResult;
  bulk: PingResult;
  frag: PingResult;
}

const FIGURES: Figure[] = [
  { key: 'rtt_avg', label: `RTT avg, ms (ping -c ${counts.rtt} -i 0.002)`, better: 'lower', target: { ratio: 4 }, value: (r) => r.rtt.rttAvgMs },
  { key: 'rtt_min', label: 'RTT min, ms', better: 'lower', value: (r) => r.rtt.rttMinMs },
  { key: 'serial_time', label: `serial flood, ms (ping -f -c ${counts.serial})`, better: 'lower', target: { ratio: 8 }, value: (r) => r.serial.timeMs },
  { key: 'serial_loss', label: 'serial flood loss, %', better: 'lower', target: { equals: 0 }, value: (r) => r.serial.lossPercent },
  { key: 'flood_time', label: `flood 32 in flight, ms (ping -f -l 32 -c ${counts.flood})`, better: 'lower', target: { ratio: 1.5 }, value: (r) => r.flood.timeMs },
  { key: 'flood_loss', label: 'flood 32 in flight loss, %', better: 'lower', target: { equals: 0 }, value: (r) => r.flood.lossPercent },
  {
    key: 'bulk_rate',
    label: `1400-byte flood, MB/s each way (ping -f -l 32 -s 1400 -c ${counts.bulk})`,
    better: 'higher',
    value: (r) => (r.bulk.received * 1400) / (r.bulk.timeMs / 1000) / 1e6,
  },
  { key: 'bulk_loss', label: '1400-byte flood loss, %', better: 'lower', value: (r) => r.bulk.lossPercent },
  { key: 'frag_loss', label: `fragmented, loss % (ping -c ${counts.frag} -i 0.002 -s 4000)`, better: 'lower', target: { equals: 0 }, value: (r) => r.frag.lossPercent },
  { key: 'frag_rtt', label: 'fragmented, RTT avg, ms', better: 'lower', value: (r) => r.frag.rttAvgMs },
];

const NOT_MEASURED: PingResult = {
  transmitted: 0,
  received: 0,
  lossPercent: Number.NaN,
  timeMs: Number.NaN,
  rttMinMs: Number.NaN,
  rttAvgMs: Number.NaN,
  rttMaxMs: Number.NaN,
};

/** The five pings; the bare floors do not reassemble, so they skip the fragmented one. */
async function pingRound(t: Target, cpu: number | undefined): Promise<RoundResults> {
  const p = (a: string[]): Promise<PingResult> => ping(t.pinger, t.address, a, cpu === undefined ? {} : { cpu });
  const floor = t.name === 'node-floor' || t.name === 'c-floor';
  return {
    rtt: await p(['-c', String(counts.rtt), '-i', '0.002']),
    serial: await p(['-f', '-c', String(counts.serial)]),
    flood: await p(['-f', '-l', '32', '-c', String(counts.flood)]),
    bulk: await p(['-f', '-l', '32', '-s', '1400', '-c', String(counts.bulk)]),
    frag: floor ? NOT_MEASURED : await p(['-c', String(counts.frag), '-i', '0.002', '-s', '4000']),
  };
}

/** Compiles the C floor (bench/floors/tap-echo.c) into a temporary directory. */
function buildCFloor(dir: string): string {
  const out = join(dir, 'tap-echo');
  try {
    execFileSync('cc', ['-O2', '-Wall', '-o', out, join(REPO, 'bench/floors/tap-echo.c')], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    fail(`--floors needs a C compiler (cc) for bench/floors/tap-echo.c: ${(err as Error).message}`);
  }
  return out;
}

interface FigureResult {
  key: string;
  label: string;
  tapstack: number;
  kernel: number;
  ratio: number;
  target: string;
  met: string;
  all: { tapstack: number[]; kernel: number[] };
}

interface FloorRow {
  key: string;
  label: string;
  medians: Record<Target['name'], number>;
}

interface PingSection {
  figures: Partial<Record<Placement, FigureResult[]>>;
  floors?: Partial<Record<Placement, FloorRow[]>>;
  rss: { startKb: number; afterWarmupKb: number; afterRoundsKb: number };
  arpFlood?: ArpFloodOnTapResult;
  counters: string;
}

function verdict(f: Figure, tapstack: number, ratio: number): { target: string; met: string } {
  if (!f.target) return { target: '', met: '' };
  if ('ratio' in f.target) return { target: `<= ${f.target.ratio}x`, met: ratio <= f.target.ratio ? 'yes' : 'NO' };
  return { target: `${f.target.equals}`, met: tapstack === f.target.equals ? 'yes' : 'NO' };
}

async function pingSection(): Promise<PingSection> {
  const tap = await TapstackTarget.start('bench-a');
  let kernel: KernelTarget | undefined;
  const floorTargets: FloorTarget[] = [];
  const scratch = floors ? mkdtempSync(join(tmpdir(), 'tapstack-bench-')) : undefined;
  try {
    kernel = KernelTarget.start('bench-k');
    if (scratch) {
      floorTargets.push(await FloorTarget.start('c-floor', 'bench-fc', buildCFloor(scratch), []));
      floorTargets.push(
        await FloorTarget.start('node-floor', 'bench-fn', process.execPath, ['--import', 'tsx', join(REPO, 'bench/floors/bare-echo.ts')]),
      );
    }
    const responders: Target[] = [tap, kernel, ...floorTargets];
    const startKb = tap.rssKb();
    // Warm-up, all: ARP resolved, caches and (ours) the JIT warm; not measured.
    for (const t of responders) await ping(t.pinger, t.address, ['-f', '-c', String(counts.warmup)]);
    const afterWarmupKb = tap.rssKb();
    const results = new Map<Placement, Record<Target['name'], RoundResults[]>>();
    for (const placement of placements) results.set(placement, { tapstack: [], kernel: [], 'node-floor': [], 'c-floor': [] });
    for (let round = 1; round <= rounds; round++) {
      for (const placement of placements) {
        const cpu = placement === 'same-cpu' ? 0 : undefined;
        tap.placeOn(cpu);
        for (const f of floorTargets) f.placeOn(cpu);
        for (const t of responders) {
          process.stderr.write(`bench: round ${round}/${rounds}, ${placement}: ${t.name}\n`);
          results.get(placement)![t.name].push(await pingRound(t, cpu));
        }
      }
    }
    tap.placeOn(undefined);
    const afterRoundsKb = tap.rssKb();
    const figures: PingSection['figures'] = {};
    for (const [placement, r] of results) {
      figures[placement] = FIGURES.map((f) => {
        const all = { tapstack: r.tapstack.map(f.value), kernel: r.kernel.map(f.value) };
        const a = median(all.tapstack);
        const b = median(all.kernel);
        const ratio = b === 0 ? Number.NaN : a / b;
        return { key: f.key, label: f.label, tapstack: a, kernel: b, ratio, ...verdict(f, a, ratio), all };
      });
    }
    const section: PingSection = { figures, rss: { startKb, afterWarmupKb, afterRoundsKb }, counters: await tap.counters() };
    if (floorTargets.length > 0) {
      section.floors = {};
      for (const [placement, r] of results) {
        section.floors[placement] = FIGURES.filter((f) => !f.key.startsWith('frag')).map((f) => ({
          key: f.key,
          label: f.label,
          medians: {
            tapstack: median(r.tapstack.map(f.value)),
            'node-floor': median(r['node-floor'].map(f.value)),
            'c-floor': median(r['c-floor'].map(f.value)),
            kernel: median(r.kernel.map(f.value)),
          },
        }));
      }
    }
    if (!skip.has('arp')) {
      process.stderr.write(`bench: ARP flood from ${arpSenders} MACs on tap0\n`);
      section.arpFlood = await arpFloodOnTap(tap, arpSenders);
    }
    return section;
  } finally {
    for (const f of floorTargets) f.close();
    kernel?.close();
    tap.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------ main

interface Report {
  date: string;
  machine: { cpus: number; model: string; kernel: string; node: string; loadBefore: number[]; loadAfter?: number[] };
  quick: boolean;
  rounds: number;
  /** How many requests each ping sent (the loss figures are percentages of these). */
  pingCounts: typeof counts;
  ping?: PingSection;
  ping6?: Ping6Section;
  inMemory?: EchoPathFigure;
  /** The same measurement in a child process pinned to each CPU in turn (taskset -c N). */
  inMemoryPerCpu?: (EchoPathFigure & { cpu: number })[];
  memory?: Awaited<ReturnType<typeof pingFloodRss>>;
  arpInMemory?: ArpFloodInMemoryResult;
  udp?: UdpEchoBenchResult;
  tcp?: TcpSection;
}

function printReport(r: Report): void {
  const out: string[] = [];
  const m = r.machine;
  out.push(
    `tapstack bench, ${r.date}${r.quick ? ' (--quick: small counts, not comparable figures)' : ''}`,
    `machine: ${m.cpus} x ${m.model}, Linux ${m.kernel}, node ${m.node}; load average before ${m.loadBefore.map((l) => l.toFixed(2)).join(' ')}` +
      (m.loadAfter ? `, after ${m.loadAfter.map((l) => l.toFixed(2)).join(' ')}` : ''),
    '',
  );
  const header = ['figure', 'tapstack', 'kernel', 'tapstack/kernel', 'target', 'met'];
  if (r.ping) {
    for (const placement of placements) {
      const figures = r.ping.figures[placement];
      if (!figures) continue;
      out.push(`ping from 10.0.0.1 (iputils), ${PLACEMENT_TITLE[placement]}; medians of ${r.rounds} round(s), tapstack and kernel alternately:`, '');
      const rows = figures.map((f) => [
        f.label,
        formatNumber(f.tapstack),
        formatNumber(f.kernel),
        Number.isNaN(f.ratio) ? '-' : `${f.ratio.toFixed(2)}x`,
        f.target,
        f.met,
      ]);
      out.push(markdownTable(header, rows), '');
    }
    for (const placement of placements) {
      const floorRows = r.ping.floors?.[placement];
      if (!floorRows) continue;
      out.push(`the floors, ${PLACEMENT_TITLE[placement]}: bare responders with no stack (bench/floors), same pings, medians:`, '');
      const rows = floorRows.map((f) => [
        f.label,
        formatNumber(f.medians.tapstack),
        formatNumber(f.medians['node-floor']),
        formatNumber(f.medians['c-floor']),
        formatNumber(f.medians.kernel),
      ]);
      out.push(markdownTable(['figure', 'tapstack', 'node + addon, no stack', 'C on the TAP device', 'kernel (veth)'], rows), '');
    }
  }
  if (r.ping6) out.push(formatPing6Section(r.ping6, r.ping?.figures.free ?? []), '');
  const rows: string[][] = [];
  if (r.udp) {
    const u = r.udp;
    rows.push([
      `UDP echo, datagrams/s (${u.options.size} B, ${u.options.window} in flight, ${u.options.durationS} s)`,
      formatNumber(u.tapstack.datagramsPerSecond),
      formatNumber(u.kernel.datagramsPerSecond),
      `${u.ratio.toFixed(2)}x`,
      '',
      '',
    ]);
  }
  if (r.inMemory) {
    const m = r.inMemory;
    rows.push([
      `in-memory echo path, frames/s (median of ${m.windows} windows; best ${formatNumber(m.bestFramesPerSecond)})`,
      formatNumber(m.framesPerSecond),
      '',
      '',
      '>= 1,000,000',
      m.framesPerSecond >= 1_000_000 ? 'yes' : 'NO',
    ]);
    for (const c of r.inMemoryPerCpu ?? []) {
      rows.push([
        `  the same, alone on CPU ${c.cpu} (taskset; best ${formatNumber(c.bestFramesPerSecond)})`,
        formatNumber(c.framesPerSecond),
        '',
        '',
        '>= 1,000,000',
        c.framesPerSecond >= 1_000_000 ? 'yes' : 'NO',
      ]);
    }
  }
  if (rows.length > 0) out.push(markdownTable(header, rows), '');
  if (r.ping) {
    const s = r.ping.rss;
    out.push(
      `tapstack up RSS: ${formatKb(s.startKb)} at start, ${formatKb(s.afterWarmupKb)} after the warm-up, ${formatKb(s.afterRoundsKb)} after the rounds`,
    );
  }
  if (r.memory) {
    const steps = r.memory.steps;
    const first = steps[0]!;
    const last = steps[steps.length - 1]!;
    const growth = (last.rssKb - first.rssKb) / first.rssKb;
    out.push(
      `memory under ping -f -l 32 (fresh tapstack up, RSS ${formatKb(r.memory.startKb)} at start): ` +
        steps.map((s) => `${s.pings.toLocaleString('en')} pings ${formatKb(s.rssKb)} (loss ${s.lossPercent}%)`).join(', ') +
        `; growth ${(growth * 100).toFixed(1)}% (target within 10%: ${Math.abs(growth) <= 0.1 ? 'met' : 'NOT met'})`,
    );
  }
  if (r.ping?.arpFlood) {
    const a = r.ping.arpFlood;
    out.push(
      `ARP flood on tap0: ${a.senders.toLocaleString('en')} senders (different MACs, addresses in 10.0.0.0/24), ${a.received.toLocaleString('en')} requests reached the stack; ` +
        `neighbours ${a.neighboursBefore} -> ${a.neighboursAfter}, RSS ${formatKb(a.rssBeforeKb)} -> ${formatKb(a.rssAfterKb)}`,
    );
  }
  if (r.arpInMemory) {
    const a = r.arpInMemory;
    out.push(
      `ARP flood in memory: ${a.senders.toLocaleString('en')} senders with different addresses; largest table ${a.largestTable} ` +
        `(gc_thresh3 ${a.gcThresh3}: ${a.largestTable <= a.gcThresh3 ? 'within' : 'EXCEEDED'}), final ${a.finalTable}, ` +
        `forced GC runs ${a.forcedGcRuns}, table full ${a.tableFulls}; heap ${formatKb(a.heapBeforeKb)} -> ${formatKb(a.heapAfterKb)}`,
    );
  }
  if (r.tcp) out.push('', formatTcpSection(r.tcp));
  console.log(out.join('\n'));
}

async function main(): Promise<void> {
  requireBenchCapabilities();
  // Ctrl-C: exit through process.exit so every namespace is deleted (test/support/netns.ts).
  process.on('SIGINT', () => process.exit(130));
  process.on('SIGTERM', () => process.exit(143));
  const report: Report = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '?', kernel: release(), node: process.version, loadBefore: loadavg() },
    quick,
    rounds,
    pingCounts: counts,
  };
  if (!skip.has('ping')) report.ping = await pingSection();
  if (!skip.has('ping6')) report.ping6 = await ping6Section({ rounds, counts });
  if (!skip.has('udp')) {
    process.stderr.write('bench: UDP echo (packages/udp/bench)\n');
    report.udp = await benchUdpEcho({ durationS: quick ? 0.5 : 3 });
  }
  if (!skip.has('tcp')) {
    const scratch = mkdtempSync(join(tmpdir(), 'tapstack-bench-tcp-'));
    try {
      report.tcp = await tcpSection({ quick, rounds, scratch, tapstackArgs: args['tapstack-arg'] ?? [] });
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
  if (!skip.has('inmemory')) {
    process.stderr.write('bench: in-memory echo path\n');
    report.inMemory = measureEchoPath(quick ? 300 : 3000);
    // A VM's CPUs need not be equal (on ours one ran at about half speed at times): each CPU alone.
    report.inMemoryPerCpu = [];
    for (let cpu = 0; cpu < cpus().length; cpu++) {
      const out = execFileSync(
        'taskset',
        ['-c', String(cpu), process.execPath, '--import', 'tsx', join(REPO, 'bench/echo-path.ts'), String(quick ? 300 : 2000), '--json'],
        { cwd: REPO, encoding: 'utf8' },
      );
      report.inMemoryPerCpu.push({ cpu, ...(JSON.parse(out.trim().split('\n').pop()!) as EchoPathFigure) });
    }
  }
  if (!skip.has('memory')) {
    const steps = quick ? [2_000, memoryPings] : [10_000, 100_000, memoryPings].filter((n, i, a) => i === 0 || n > a[i - 1]!);
    process.stderr.write(`bench: memory under a flood of ${memoryPings.toLocaleString('en')} pings\n`);
    report.memory = await pingFloodRss(steps, 'bench-m');
  }
  if (!skip.has('arp')) {
    process.stderr.write(`bench: ARP flood in memory, ${arpSenders} senders\n`);
    report.arpInMemory = arpFloodInMemory(arpSenders);
  }
  report.machine.loadAfter = loadavg();
  printReport(report);
  if (args.json) writeFileSync(args.json, `${JSON.stringify(report, null, 2)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
