/**
 * What the plain path (no virtio-net header) costs per byte in the stack's own process, both
 * ways, in figures that do not depend on the machine's load: heap bytes allocated per MiB (the
 * `allocated=` of V8's `--trace-gc-nvp` lines, summed over each transfer; a 1 MB young
 * generation keeps the error under one collection's worth, about 10 KB per MiB over 100 MiB)
 * and CPU ms per MiB (/proc/PID/stat), with the rate beside them. For issue 14's segment-cost
 * work; run it with `--repo` pointed at another checkout (main) for the figures before.
 *
 *   npx tsx bench/segment-cost.ts [--rounds 3] [--mib 100] [--seconds 5] [--repo DIR] [--vnet] [--netns PREFIX]
 *
 * Down: curl fetching `GET /bytes/N`. Up: iperf (iperf2) into the discard port. The namespace is
 * segcost-*, deleted afterwards; only 10.0.0.0/24 inside.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './table.ts';
import { quietIpv6 } from './targets.ts';
import { curlDown, type TcpTarget } from './tcp.ts';
import { Netns } from '../test/support/netns.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    mib: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '5' },
    repo: { type: 'string', default: fileURLToPath(new URL('..', import.meta.url)) },
    /** The virtio-net header on (the stack's default since session 5); off by default here: this bench is about the plain path. */
    vnet: { type: 'boolean', default: false },
    /** The namespace's name prefix (helpers working side by side each use their own). */
    netns: { type: 'string', default: 'segcost' },
  },
});
const rounds = Number(args.rounds);
const bytes = Number(args.mib) * 2 ** 20;
const seconds = Number(args.seconds);

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const ns = Netns.create(`${args.netns}-a`);
quietIpv6(ns);
const binary = join(resolve(args.repo!), 'packages/stack/bin/tapstack.js');
const child = ns.spawn(process.execPath, ['--trace-gc-nvp', '--max-semi-space-size=1', binary, 'up', args.vnet ? '--vnet-hdr' : '--no-vnet-hdr', '--http', '80', '--tcp-discard', '9'], { stdio: ['pipe', 'pipe', 'pipe'] });
let output = '';
child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
/** Heap bytes V8 reported allocated in the GC lines printed since `mark`. */
const allocatedSince = (mark: number): number => [...output.slice(mark).matchAll(/\ballocated=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);

try {
  for (let i = 0; !/tapstack is up/.test(output); i++) {
    if (i > 1500 || child.exitCode !== null) throw new Error(`tapstack up did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const pid = child.pid!;
  const t: TcpTarget = { name: 'tapstack', client: ns, device: 'tap0', pid, close: () => ns.destroy() };
  await curlDown(t, 8 * 2 ** 20); // warm-up: ARP, the JIT
  await ns.run('iperf', ['-c', '10.0.0.2', '-p', '9', '-t', '1'], 30_000);
  const rows: Record<'down' | 'up', { mbit: number[]; heap: number[]; cpu: number[] }> = { down: { mbit: [], heap: [], cpu: [] }, up: { mbit: [], heap: [], cpu: [] } };
  for (let round = 1; round <= rounds; round++) {
    for (const way of ['down', 'up'] as const) {
      // a collection at the start and one at the end bound the transfer's allocations
      await new Promise((r) => setTimeout(r, 300));
      const mark = output.length;
      const cpu0 = cpuMs(pid);
      let mib: number;
      let mbit: number;
      if (way === 'down') {
        mbit = await curlDown(t, bytes);
        mib = bytes / 2 ** 20;
      } else {
        const r = await ns.run('iperf', ['-c', '10.0.0.2', '-p', '9', '-t', String(seconds), '-y', 'C'], (seconds + 30) * 1000);
        const line = r.stdout.trim().split('\n').filter((l) => /^\d{14},/.test(l)).pop();
        if (!line) throw new Error(`iperf: ${r.stderr || r.stdout}`);
        const fields = line.split(',');
        mib = Number(fields[fields.length - 2]) / 2 ** 20;
        mbit = Number(fields[fields.length - 1]) / 1e6;
      }
      const cpu = (cpuMs(pid) - cpu0) / mib;
      await new Promise((r) => setTimeout(r, 300));
      const heap = allocatedSince(mark) / mib;
      rows[way].mbit.push(mbit);
      rows[way].heap.push(heap);
      rows[way].cpu.push(cpu);
      process.stdout.write(`round ${round} ${way.padEnd(4)} ${mbit.toFixed(0).padStart(5)} Mbit/s, ${cpu.toFixed(2)} ms CPU per MiB, ${(heap / 1024).toFixed(1)} KB heap allocated per MiB\n`);
    }
  }
  for (const way of ['down', 'up'] as const) {
    const r = rows[way];
    process.stdout.write(`median ${way.padEnd(4)} ${median(r.mbit).toFixed(0)} Mbit/s, ${median(r.cpu).toFixed(2)} ms CPU per MiB, ${(median(r.heap) / 1024).toFixed(1)} KB heap per MiB\n`);
  }
} finally {
  child.kill('SIGTERM');
  ns.destroy();
}
