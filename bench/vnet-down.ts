/**
 * The bulk-down row alone, with the virtio-net header, against lwIP in the same run: curl fetching
 * `GET /bytes/N` from `tapstack up --vnet-hdr --http 80` and from the C peer, round after round,
 * alternating, each in a namespace of its own. For working on the send path without the whole
 * bench (issue 14, "with the virtio-net header on, bulk at least 2x lwIP").
 *
 *   npx tsx bench/vnet-down.ts [--rounds 5] [--mib 100] [--plain] [--prof DIR] [--strace FILE] [--no-lwip] [--node-arg=--trace-gc ...] [--netns PREFIX] [--repo DIR]
 *
 * --prof DIR runs tapstack under `node --cpu-prof --cpu-prof-dir=DIR` (the profile is written when
 * it quits, after the rounds); --strace FILE counts its system calls (`strace -c -f`) over the
 * rounds; --plain leaves the header off. Prints each round, the medians, the ratio and tapstack's
 * counters of the send path.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './table.ts';
import { quietIpv6 } from './targets.ts';
import { buildLwip, curlDown, type TcpTarget } from './tcp.ts';
import { Netns } from '../test/support/netns.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    mib: { type: 'string', default: '100' },
    plain: { type: 'boolean', default: false },
    prof: { type: 'string' },
    strace: { type: 'string' },
    'no-lwip': { type: 'boolean', default: false },
    'node-arg': { type: 'string', multiple: true, default: [] },
    /** The namespaces' name prefix (helpers working side by side each use their own). */
    netns: { type: 'string', default: 'vnetdown' },
    /** The checkout whose tapstack runs (another worktree, main, for the figures before a change). */
    repo: { type: 'string', default: fileURLToPath(new URL('..', import.meta.url)) },
  },
});
const rounds = Number(args.rounds);
const bytes = Number(args.mib) * 1024 * 1024;
const extra = ['--http', '80', args.plain ? '--no-vnet-hdr' : '--vnet-hdr'];

/** User + system CPU time of a process so far, ms (/proc/PID/stat fields 14 and 15, in clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

// tapstack up, as TapstackTarget starts it, with node's profiler when asked
const ns = Netns.create(`${args.netns}-a`);
quietIpv6(ns);
const nodeArgs = [...(args.prof ? ['--cpu-prof', `--cpu-prof-dir=${args.prof}`] : []), ...(args['node-arg'] ?? [])];
const child = ns.spawn(process.execPath, [...nodeArgs, join(args.repo!, 'packages/stack/bin/tapstack.js'), 'up', ...extra], { stdio: ['pipe', 'pipe', 'pipe'] });
let output = '';
child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
for (let i = 0; !/tapstack is up/.test(output); i++) {
  if (i > 1500 || child.exitCode !== null) throw new Error(`tapstack up did not start:\n${output}`);
  await new Promise((r) => setTimeout(r, 20));
}
const targets: TcpTarget[] = [{ name: 'tapstack', client: ns, device: 'tap0', pid: child.pid, close: () => ns.destroy() }];
let lwipNs: Netns | undefined;
try {
  if (!args['no-lwip']) {
    const built = buildLwip(mkdtempSync(join(tmpdir(), 'vnetdown-lwip-')));
    if ('error' in built) throw new Error(built.error);
    const lns = Netns.create(`${args.netns}-l`);
    lwipNs = lns;
    quietIpv6(lns);
    const lwip = lns.spawn(built.binary, ['tap0', '10.0.0.2', '10.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    lwip.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    lwip.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    for (let i = 0; !/lwIP .* on tap0/.test(out); i++) {
      if (i > 500) throw new Error(`lwip did not start: ${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    lns.exec('ip', ['addr', 'add', '10.0.0.1/24', 'dev', 'tap0']);
    lns.exec('ip', ['link', 'set', 'tap0', 'up']);
    targets.push({ name: 'lwip', client: lns, device: 'tap0', pid: lwip.pid, close: () => lns.destroy() });
  }
  for (const t of targets) await curlDown(t, 8 * 1024 * 1024); // warm-up: ARP, the JIT
  const strace = args.strace ? spawn('strace', ['-c', '-f', '-o', args.strace, '-p', String(child.pid)], { stdio: 'ignore' }) : undefined;
  if (strace) await new Promise((r) => setTimeout(r, 500));
  const results: Record<string, number[]> = { tapstack: [], lwip: [] };
  const cpu: Record<string, number[]> = { tapstack: [], lwip: [] };
  for (let round = 1; round <= rounds; round++) {
    for (const t of targets) {
      const before = t.pid === undefined ? 0 : cpuMs(t.pid);
      const mbit = await curlDown(t, bytes);
      const used = t.pid === undefined ? 0 : cpuMs(t.pid) - before;
      results[t.name]!.push(mbit);
      cpu[t.name]!.push(used / (bytes / 2 ** 20));
      process.stdout.write(`round ${round} ${t.name.padEnd(8)} ${mbit.toFixed(0)} Mbit/s, ${(used / (bytes / 2 ** 20)).toFixed(2)} ms CPU per MiB\n`);
    }
  }
  if (strace) {
    strace.kill('SIGINT');
    await new Promise((r) => strace.on('exit', r));
  }
  const t = median(results.tapstack!);
  const l = median(results.lwip!);
  process.stdout.write(`median tapstack ${t.toFixed(0)}, lwip ${l.toFixed(0)}, ratio ${(t / l).toFixed(2)} (per round: ${results.tapstack!.map((v, i) => (v / results.lwip![i]!).toFixed(2)).join(' ')})\n`);
  process.stdout.write(`median CPU per MiB: tapstack ${median(cpu.tapstack!).toFixed(2)} ms, lwip ${median(cpu.lwip!).toFixed(2)} ms\n`);
  const mark = output.length;
  child.stdin!.write('stats\n');
  await new Promise((r) => setTimeout(r, 1000));
  process.stdout.write(
    output
      .slice(mark)
      .split('\n')
      .filter((l) => /tx_gso_frames|tx_csum|OutSegs|InSegs|TCPPureAcks|rx_frames|tx_frames|RetransSegs|rx_gso|DelayedACK/.test(l))
      .join('\n') + '\n',
  );
  if (args['node-arg']!.length > 0) process.stdout.write(output.split('\n').filter((l) => /Scavenge|Mark-Compact|Mark-sweep|Minor|ms: /.test(l)).slice(-400).join('\n') + '\n');
  if (args.prof) {
    child.stdin!.write('quit\n');
    await new Promise((r) => child.on('exit', r));
  }
} finally {
  ns.destroy();
  lwipNs?.destroy();
}
