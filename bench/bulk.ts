/**
 * Only the two plain bulk rows of the TCP bench, for work on the send and receive paths: iperf
 * into the discard port (host -> stack) and curl fetching 100 MiB (stack -> host), for tapstack
 * and lwIP in the same run, round after round, with the same-run ratio. tapstack's plain frames
 * run with the TAP addon's writer thread, their default (--tapstack-arg=--no-io-threads: without). Beside each figure it
 * reads the server's CPU time from /proc (user + system over the transfer's wall time): a stack
 * that is busy 55% of a transfer's time waited the rest, for the peer, the window or the device.
 *
 *   npx tsx bench/bulk.ts [--rounds 3] [--seconds 5] [--mib 100] [--rows up,down] [--tapstack-only] [--tapstack-arg=ARG ...]
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
import { LwipTcp, TapstackTcp, buildLwip, curlDown, iperfUp, withFrameMode, type TcpTarget } from './tcp.ts';

const options = benchOptions({ numbers: { rounds: 3, seconds: 5, mib: 100 }, lists: { rows: 'up,down' }, flags: ['tapstack-only'] });
const { rounds, seconds, mib } = options.numbers;
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

const built = buildLwip(mkdtempSync(join(tmpdir(), 'bulk-lwip-')));
if (!('binary' in built)) throw new Error(`lwIP: ${built.error}`);
const targets: (TapstackTcp | LwipTcp)[] = [];
const results: Record<string, { up: Sample[]; down: Sample[] }> = { tapstack: { up: [], down: [] }, lwip: { up: [], down: [] } };
try {
  // plain frames (the lwIP comparison) unless --tapstack-arg=--vnet-hdr asks for the header
  targets.push(await TapstackTcp.start('tapstack', 'bulk-a', withFrameMode(extra, 'plain')));
  if (!tapstackOnly) targets.push(await LwipTcp.start('bulk-l', built.binary));
  // BULK_TXQLEN=N: an experiment, the kernel's tap0 queue towards the stack (txqueuelen) set to N
  if (process.env.BULK_TXQLEN) for (const t of targets) t.client.exec('ip', ['link', 'set', 'tap0', 'txqueuelen', process.env.BULK_TXQLEN]);
  for (const t of targets) {
    await iperfUp(t, 1);
    await curlDown(t, 1024 * 1024);
  }
  for (let round = 1; round <= rounds; round++) {
    for (const t of targets) {
      const up = await measure(t, 'up', () => iperfUp(t, seconds));
      const down = await measure(t, 'down', () => curlDown(t, mib * 1024 * 1024));
      results[t.name]!.up.push(up);
      results[t.name]!.down.push(down);
      process.stderr.write(
        `round ${round} ${t.name}: up ${up.mbits.toFixed(0)} Mbit/s (busy ${(up.busy * 100).toFixed(0)}%), ` +
          `down ${down.mbits.toFixed(0)} Mbit/s (busy ${(down.busy * 100).toFixed(0)}%)\n`,
      );
    }
  }
  if (process.env.BULK_COUNTERS) {
    // the stack's counters, then the kernel's side of tap0: its drops, and TCP's view in nstat
    console.log(await (targets[0] as TapstackTcp).counters());
    const client = targets[0]!.client;
    console.log((await client.run('ip', ['-s', '-s', 'link', 'show', 'tap0'], 5000)).stdout);
    console.log((await client.run('nstat', ['-a'], 5000)).stdout);
    console.log(readFileSync('/proc/net/softnet_stat', 'utf8'));
  }
  // let the stack end by itself (SIGTERM), so that a --cpu-prof from TAPSTACK_NODE_ARGS is written
  const stack = (targets[0] as TapstackTcp).target.process;
  const exited = new Promise<void>((resolve) => stack.once('exit', () => resolve()));
  stack.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
} finally {
  for (const t of targets) t.close();
}
for (const dir of ['up', 'down'] as const) {
  const tap = results.tapstack![dir];
  if (!rows.includes(dir)) continue;
  const lwip = results.lwip![dir];
  if (lwip.length === 0) lwip.push(...tap.map(() => ({ mbits: Number.NaN, busy: Number.NaN })));
  const mt = median(tap.map((s) => s.mbits));
  const ml = median(lwip.map((s) => s.mbits));
  const ratios = tap.map((s, i) => (s.mbits / lwip[i]!.mbits).toFixed(2)).join(' ');
  console.log(
    `bulk ${dir.padEnd(4)} tapstack ${mt.toFixed(0)} Mbit/s (busy ${(median(tap.map((s) => s.busy)) * 100).toFixed(0)}%), ` +
      `lwIP ${ml.toFixed(0)} Mbit/s (busy ${(median(lwip.map((s) => s.busy)) * 100).toFixed(0)}%), ratio ${(mt / ml).toFixed(2)}x (per round: ${ratios})`,
  );
}
