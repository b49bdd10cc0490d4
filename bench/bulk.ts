/**
 * The two plain bulk rows of the TCP bench, for work on the send and receive paths: iperf into the
 * discard port (host -> stack) and curl fetching 100 MiB (stack -> host), for tapstack and lwIP in
 * the same run, round after round, with the same-run ratio; optionally the 1-byte ping-pong on the
 * echo port (--rows ...,pingpong). tapstack's plain frames run with the TAP addon's writer thread,
 * their default (--tapstack-arg=--no-io-threads: without). Beside each figure it reads the
 * server's CPU time from /proc (user + system over the transfer's wall time): a stack that is busy
 * 55% of a transfer's time waited the rest, for the peer, the window or the device.
 *
 * For each download it also prints what does not depend on the machine's load, per MiB: the
 * server's CPU ms, the IP packets the host's kernel took in (one per frame, fewer when GRO merged
 * them) and sent (its ACKs), and for tapstack the frames it wrote (one write(2) each) and read,
 * and the frames per read wake-up.
 *
 * --variants runs several tapstacks in the same run, each `LABEL:ARGS` with its own `tapstack up`
 * arguments joined by '+', e.g. the TAP device's NAPI mode against the default:
 *
 *   npx tsx bench/bulk.ts --rows down,pingpong --variants 'plain:,napi:--napi+--gro-flush-timeout+20000'
 *
 *   npx tsx bench/bulk.ts [--rounds 3] [--seconds 5] [--mib 100] [--pingpongs 5000] [--rows up,down[,pingpong]]
 *       [--tapstack-only] [--tapstack-arg=ARG ...] [--variants 'LABEL:ARG+ARG,LABEL:...']
 *
 * BULK_ATTACH='strace -c -f -p {pid}' runs that command against the stack's process during each
 * of its transfers (ended with SIGINT afterwards; its output goes to stderr): syscalls per MiB,
 * or `perf record -g -p {pid}`. TAPSTACK_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR' profiles it.
 *
 * Namespaces are named bulk-*, deleted afterwards; only 10.0.0.0/24 inside.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchOptions } from './options.ts';
import { median } from './table.ts';
import { LwipTcp, TapstackTcp, buildLwip, curlDown, iperfUp, pingPong, withFrameMode, type TcpTarget } from './tcp.ts';

const options = benchOptions({ numbers: { rounds: 3, seconds: 5, mib: 100, pingpongs: 5000 }, lists: { rows: 'up,down', variants: '' }, flags: ['tapstack-only'] });
const { rounds, seconds, mib, pingpongs } = options.numbers;
const rows = options.lists.rows;
const tapstackOnly = options.flags['tapstack-only'];
const extra = options.tapstackArgs;

/** utime + stime of a process, in seconds (fields 14 and 15 of /proc/<pid>/stat, in clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface Sample {
  mbits: number;
  /** CPU seconds of the server over wall seconds of the transfer. */
  busy: number;
}

async function measure(t: TcpTarget, row: string, run: () => Promise<number>): Promise<Sample> {
  if (!rows.includes(row)) return { mbits: Number.NaN, busy: Number.NaN };
  const pid = t.pid!;
  const attach = t.name === 'tapstack' && process.env.BULK_ATTACH ? process.env.BULK_ATTACH.replaceAll('{pid}', String(pid)).split(' ') : undefined;
  const attached = attach ? spawn(attach[0]!, attach.slice(1), { stdio: ['ignore', 'inherit', 'inherit'] }) : undefined;
  if (attached) await new Promise((r) => setTimeout(r, 1000));
  const cpu0 = cpuSeconds(pid);
  const wall0 = performance.now();
  const mbits = await run();
  const wall = (performance.now() - wall0) / 1000;
  const busy = (cpuSeconds(pid) - cpu0) / wall;
  if (attached) {
    const done = new Promise((r) => attached.once('exit', r));
    attached.kill('SIGINT');
    await done;
  }
  return { mbits, busy };
}

/** The kernel's IP counters in the client's namespace (/proc/net/snmp): packets IP took in and sent. */
function hostIp(t: TcpTarget): { in: number; out: number } {
  const lines = t.client.exec('cat', ['/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Ip: '));
  const names = lines[0]!.split(' ');
  const values = lines[1]!.split(' ').map(Number);
  return { in: values[names.indexOf('InReceives')]!, out: values[names.indexOf('OutRequests')]! };
}

/** Some of the stack's counters, from its `stats` command. */
async function stackCounters(t: TapstackTcp): Promise<Map<string, number>> {
  const text = await t.counters();
  const map = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([\w.]+) (\d+)$/.exec(line.trim());
    if (m) map.set(m[1]!, Number(m[2]));
  }
  return map;
}

/** Per MiB of a download: the load-independent side of it (see the header). */
interface PerMib {
  cpuMs: number;
  /** IP packets the host's kernel took in: frames, or fewer when GRO merged them. */
  hostPackets: number;
  /** IP packets the host sent: its ACKs (curl sends nothing else during a download). */
  hostAcks: number;
  /** tapstack only: frames we wrote (one write(2) each on plain frames), frames we read, and frames per read wake-up. */
  writes: number;
  reads: number;
  framesPerWake: number;
}

async function downPerMib(t: TapstackTcp | LwipTcp, run: () => Promise<number>): Promise<{ sample: Sample; perMib: PerMib }> {
  const stack = t instanceof TapstackTcp ? t : undefined;
  const c0 = stack ? await stackCounters(stack) : undefined;
  const h0 = hostIp(t);
  const cpu0 = cpuSeconds(t.pid!);
  const sample = await measure(t, 'down', run);
  const cpu = cpuSeconds(t.pid!) - cpu0;
  const h1 = hostIp(t);
  const c1 = stack ? await stackCounters(stack) : undefined;
  const delta = (name: string): number => (c0 && c1 ? (c1.get(name) ?? 0) - (c0.get(name) ?? 0) : Number.NaN);
  const reads = delta('link.rx_frames');
  return {
    sample,
    perMib: {
      cpuMs: (cpu * 1000) / mib,
      hostPackets: (h1.in - h0.in) / mib,
      hostAcks: (h1.out - h0.out) / mib,
      writes: delta('link.tx_frames') / mib,
      reads: reads / mib,
      framesPerWake: reads / delta('tap.rx_batches'),
    },
  };
}

// --variants (see the header): each variant's arguments come after --tapstack-arg's
const variants = options.lists.variants.length > 0 ? options.lists.variants : ['tapstack:'];
const built = buildLwip(mkdtempSync(join(tmpdir(), 'bulk-lwip-')));
if (!('binary' in built)) throw new Error(`lwIP: ${built.error}`);
const targets: { label: string; target: TapstackTcp | LwipTcp }[] = [];
const results: Record<string, { up: Sample[]; down: Sample[]; perMib: PerMib[]; pingpongUs: number[] }> = {};
try {
  for (const [i, variant] of variants.entries()) {
    const colon = variant.indexOf(':');
    const label = colon < 0 ? variant : variant.slice(0, colon);
    const args = colon < 0 ? [] : variant.slice(colon + 1).split('+').filter(Boolean);
    // plain frames (the lwIP comparison) unless --tapstack-arg=--vnet-hdr asks for the header
    targets.push({ label, target: await TapstackTcp.start('tapstack', `bulk-${i}`, withFrameMode([...extra, ...args], 'plain')) });
  }
  if (!tapstackOnly) targets.push({ label: 'lwip', target: await LwipTcp.start('bulk-l', built.binary) });
  for (const { label } of targets) results[label] = { up: [], down: [], perMib: [], pingpongUs: [] };
  // BULK_TXQLEN=N: an experiment, the kernel's tap0 queue towards the stack (txqueuelen) set to N
  if (process.env.BULK_TXQLEN) for (const { target: t } of targets) t.client.exec('ip', ['link', 'set', 'tap0', 'txqueuelen', process.env.BULK_TXQLEN]);
  for (const { target: t } of targets) {
    await iperfUp(t, 1);
    await curlDown(t, 1024 * 1024);
  }
  for (let round = 1; round <= rounds; round++) {
    for (const { label, target: t } of targets) {
      const up = await measure(t, 'up', () => iperfUp(t, seconds));
      const { sample: down, perMib } = rows.includes('down')
        ? await downPerMib(t, () => curlDown(t, mib * 1024 * 1024))
        : { sample: { mbits: Number.NaN, busy: Number.NaN }, perMib: undefined };
      const pingpongUs = rows.includes('pingpong') ? await pingPong(t, pingpongs) : Number.NaN;
      results[label]!.up.push(up);
      results[label]!.down.push(down);
      results[label]!.pingpongUs.push(pingpongUs);
      if (perMib) results[label]!.perMib.push(perMib);
      process.stderr.write(
        `round ${round} ${label}: up ${up.mbits.toFixed(0)} Mbit/s (busy ${(up.busy * 100).toFixed(0)}%), ` +
          `down ${down.mbits.toFixed(0)} Mbit/s (busy ${(down.busy * 100).toFixed(0)}%)` +
          (rows.includes('pingpong') ? `, ping-pong ${pingpongUs.toFixed(1)} us` : '') +
          (perMib ? `, per MiB: cpu ${perMib.cpuMs.toFixed(1)} ms, host packets ${perMib.hostPackets.toFixed(0)}, host acks ${perMib.hostAcks.toFixed(0)}, writes ${perMib.writes.toFixed(0)}, reads ${perMib.reads.toFixed(0)} (${perMib.framesPerWake.toFixed(1)} per wake-up)` : '') +
          '\n',
      );
    }
  }
  if (process.env.BULK_COUNTERS) {
    // the stack's counters, then the kernel's side of tap0: its drops, and TCP's view in nstat
    console.log(await (targets[0]!.target as TapstackTcp).counters());
    const client = targets[0]!.target.client;
    console.log((await client.run('ip', ['-s', '-s', 'link', 'show', 'tap0'], 5000)).stdout);
    console.log((await client.run('nstat', ['-a'], 5000)).stdout);
    console.log(readFileSync('/proc/net/softnet_stat', 'utf8'));
  }
  // let the stacks end by themselves (SIGTERM), so that a --cpu-prof from TAPSTACK_NODE_ARGS is written
  for (const { target } of targets) {
    if (!(target instanceof TapstackTcp)) continue;
    const stack = target.target.process;
    const exited = new Promise<void>((resolve) => stack.once('exit', () => resolve()));
    stack.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
  }
} finally {
  for (const { target } of targets) target.close();
}
const lwipResults = results.lwip;
for (const dir of ['up', 'down'] as const) {
  if (!rows.includes(dir)) continue;
  for (const [label, result] of Object.entries(results)) {
    if (label === 'lwip') continue;
    const tap = result[dir];
    const lwip = lwipResults?.[dir] ?? tap.map(() => ({ mbits: Number.NaN, busy: Number.NaN }));
    const mt = median(tap.map((s) => s.mbits));
    const ml = median(lwip.map((s) => s.mbits));
    const ratios = tap.map((s, i) => (s.mbits / lwip[i]!.mbits).toFixed(2)).join(' ');
    console.log(
      `bulk ${dir.padEnd(4)} ${label} ${mt.toFixed(0)} Mbit/s (busy ${(median(tap.map((s) => s.busy)) * 100).toFixed(0)}%), ` +
        `lwIP ${ml.toFixed(0)} Mbit/s (busy ${(median(lwip.map((s) => s.busy)) * 100).toFixed(0)}%), ratio ${(mt / ml).toFixed(2)}x (per round: ${ratios})`,
    );
  }
}
if (rows.includes('pingpong')) {
  const lwipUs = lwipResults ? median(lwipResults.pingpongUs) : Number.NaN;
  for (const [label, result] of Object.entries(results)) {
    const us = median(result.pingpongUs);
    console.log(`ping-pong ${label} ${us.toFixed(1)} us (median of ${result.pingpongUs.length} rounds of ${pingpongs})` + (label === 'lwip' ? '' : `, ${(us / lwipUs).toFixed(2)}x lwIP`));
  }
}
if (rows.includes('down')) {
  for (const [label, result] of Object.entries(results)) {
    const m = (pick: (p: PerMib) => number): string => median(result.perMib.map(pick)).toFixed(1);
    console.log(
      `per MiB down, ${label}: cpu ${m((p) => p.cpuMs)} ms, host packets ${m((p) => p.hostPackets)}, host acks ${m((p) => p.hostAcks)}` +
        (label === 'lwip' ? '' : `, writes ${m((p) => p.writes)}, reads ${m((p) => p.reads)}, frames per wake-up ${m((p) => p.framesPerWake)}`),
    );
  }
}
