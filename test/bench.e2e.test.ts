/**
 * Keeps `npm run bench` working: the quick version (small counts, one round) runs end to end
 * against the kernel (and, for TCP, lwIP: liblwip-dev from scripts/test-tools.sh). Speed is never asserted here (figures on a CI machine mean nothing); what
 * is checked is that every figure was measured, nothing was lost, the in-memory path answered
 * every request, memory and the neighbour table stayed bounded, and every namespace the bench
 * made is gone afterwards.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireE2eCapabilities } from './support/netns.ts';
import { repoRoot } from './support/watch.ts';

interface FigureJson {
  key: string;
  tapstack: number;
  kernel: number;
}

describe('npm run bench -- --quick --floors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tapstack-bench-'));
  const jsonFile = join(dir, 'bench.json');
  let run: { status: number | null; stdout: string; stderr: string; pid: number | undefined };

  beforeAll(async () => {
    requireE2eCapabilities();
    // node itself with tsx's loader (not the tsx command, which runs a second node): the pid in
    // the namespace names is then the child's. Asynchronous: the run takes over a minute, and a
    // worker blocked that long in spawnSync misses vitest's own RPC deadline.
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', '--floors', '--json', jsonFile], { cwd: repoRoot });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGINT'), 300_000);
    const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    clearTimeout(timer);
    run = { status, stdout, stderr, pid: child.pid };
  }, 320_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('exits 0 and prints both tables, the RSS lines and the ARP flood lines', () => {
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('placed by the scheduler');
    expect(run.stdout).toContain('ping and the responder on CPU 0');
    expect(run.stdout).toMatch(/\| RTT avg, ms \(ping -c 50 -i 0\.002\) +\| +[\d.]+ \| +[\d.]+ \| +[\d.]+x \|/);
    expect(run.stdout).toMatch(/tapstack up RSS: [\d.]+ MB at start/);
    expect(run.stdout).toMatch(/memory under ping -f -l 32/);
    expect(run.stdout).toMatch(/ARP flood on tap0: 1,000 senders/);
    expect(run.stdout).toMatch(/UDP echo, datagrams\/s/);
  });

  it('measured every ping figure for both stacks, in both placements, with nothing lost', () => {
    const report = JSON.parse(readFileSync(jsonFile, 'utf8')) as {
      ping: { figures: Record<string, FigureJson[]>; floors: Record<string, { key: string; medians: Record<string, number> }[]> };
    };
    for (const placement of ['free', 'same-cpu']) {
      // the bare responders answered too (C on the TAP device, node + the addon)
      for (const row of report.ping.floors[placement]!) {
        for (const who of ['tapstack', 'node-floor', 'c-floor', 'kernel']) {
          if (row.key.endsWith('_loss')) expect(row.medians[who], `${placement} ${row.key} ${who}`).toBe(0);
          else expect(row.medians[who], `${placement} ${row.key} ${who}`).toBeGreaterThan(0);
        }
      }
    }
    for (const placement of ['free', 'same-cpu']) {
      const figures = report.ping.figures[placement]!;
      expect(figures.map((f) => f.key)).toEqual([
        'rtt_avg',
        'rtt_min',
        'serial_time',
        'serial_loss',
        'flood_time',
        'flood_loss',
        'bulk_rate',
        'bulk_loss',
        'frag_loss',
        'frag_rtt',
      ]);
      for (const f of figures) {
        if (f.key.endsWith('_loss')) {
          expect(f.tapstack, `${placement} ${f.key}`).toBe(0);
          expect(f.kernel, `${placement} ${f.key}`).toBe(0);
        } else {
          expect(f.tapstack, `${placement} ${f.key}`).toBeGreaterThan(0);
          expect(f.kernel, `${placement} ${f.key}`).toBeGreaterThan(0);
        }
      }
    }
  });

  it('measured the ping -6 rows for tapstack and the kernel, with nothing lost, beside the IPv4 ones', () => {
    const report = JSON.parse(readFileSync(jsonFile, 'utf8')) as { ping6: { rows: { key: string; tapstack: number; kernel: number }[] } };
    expect(report.ping6.rows.map((r) => r.key)).toEqual(['serial6_time', 'serial6_loss', 'flood6_time', 'flood6_loss']);
    for (const r of report.ping6.rows) {
      if (r.key.endsWith('_loss')) expect([r.tapstack, r.kernel], r.key).toEqual([0, 0]);
      else expect(Math.min(r.tapstack, r.kernel), r.key).toBeGreaterThan(0);
    }
  });

  it('answered every in-memory request, and kept memory and the neighbour table bounded', () => {
    const report = JSON.parse(readFileSync(jsonFile, 'utf8')) as {
      inMemory: { frames: number; replies: number; framesPerSecond: number };
      inMemoryPerCpu: { cpu: number; frames: number; replies: number }[];
      memory: { steps: { pings: number; rssKb: number; lossPercent: number }[] };
      ping: { arpFlood: { senders: number; received: number; neighboursAfter: number } };
      arpInMemory: { senders: number; largestTable: number; gcThresh3: number };
      udp: { tapstack: { datagramsPerSecond: number }; kernel: { datagramsPerSecond: number } };
    };
    expect(report.inMemory.replies).toBe(report.inMemory.frames);
    expect(report.inMemory.framesPerSecond).toBeGreaterThan(0);
    // and once alone on each CPU
    expect(report.inMemoryPerCpu.map((c) => c.cpu)).toEqual(cpus().map((_, i) => i));
    for (const c of report.inMemoryPerCpu) expect(c.replies).toBe(c.frames);
    expect(report.memory.steps.map((s) => s.pings)).toEqual([2_000, 20_000]);
    for (const s of report.memory.steps) expect(s.lossPercent).toBe(0);
    // 1,000 senders from 10.0.0.3-254: at most the 252 addresses plus the pinger's 10.0.0.1
    expect(report.ping.arpFlood.received).toBe(1_000);
    expect(report.ping.arpFlood.neighboursAfter).toBeLessThanOrEqual(253);
    expect(report.arpInMemory.largestTable).toBeLessThanOrEqual(report.arpInMemory.gcThresh3);
    expect(report.udp.tapstack.datagramsPerSecond).toBeGreaterThan(0);
    expect(report.udp.kernel.datagramsPerSecond).toBeGreaterThan(0);
  });

  it('measured every TCP row for tapstack, lwIP and the kernel, with no failed request', () => {
    expect(run.stdout).toMatch(/\| bulk host -> target, Mbit\/s \(iperf -t 1 into discard\) +\| +[\d.,]+ \| +[\d.,]+ \| +[\d.,]+ \| +[\d.]+x \| +[\d.]+x \|/);
    const report = JSON.parse(readFileSync(jsonFile, 'utf8')) as {
      tcp: {
        rows: { key: string; values: Record<string, number> }[];
        abFailed: Record<string, number[]>;
        idle: { target: string; connections: number; rssAtKb: number }[];
        longTransfer: { bytes: number; samples: unknown[]; mbitPerSecond: number };
      };
    };
    const tcp = report.tcp;
    expect(tcp.rows.map((r) => r.key)).toEqual([
      'bulk_up',
      'bulk_down',
      'vnet_bulk_up',
      'vnet_bulk_down',
      'fetch_1mib',
      'ab',
      'ab_failed',
      'ping_pong',
      'vnet_loss_up',
      'vnet_loss_down',
      'loss_up',
      'loss_down',
      'plain_loss_up',
      'plain_loss_down',
      'delay_loss_up',
      'delay_loss_down',
    ]);
    for (const row of tcp.rows) {
      // the delayed rows are tapstack's only: this kernel has no netem for the others
      const who = row.key.startsWith('delay_') ? ['tapstack'] : ['tapstack', 'lwip', 'kernel'];
      for (const name of who) {
        // lwIP under 1% loss each way (no SACK, a 500 ms timer) sometimes gets nothing through in a
        // quick run's few seconds (seen in CI); that is the peer's figure, not ours: it may be null
        if (name === 'lwip' && row.key.includes('loss_') && row.values[name] === null) continue;
        // a row the bench could not measure holds null: say which, and what the other targets got
        expect(typeof row.values[name], `${row.key} ${name} was not measured: ${JSON.stringify(row.values)}`).toBe('number');
        if (row.key === 'ab_failed') expect(row.values[name], `${row.key} ${name}`).toBe(0);
        else expect(row.values[name], `${row.key} ${name}`).toBeGreaterThan(0);
      }
    }
    expect(tcp.idle.map((i) => [i.target, i.connections])).toEqual([
      ['tapstack', 1_000],
      ['lwip', 1_000],
    ]);
    expect(tcp.longTransfer.bytes).toBe(128 * 1024 ** 2);
    expect(tcp.longTransfer.mbitPerSecond).toBeGreaterThan(0);
  });

  it('left no namespace behind', () => {
    const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.includes(`-${run.pid}-`) || line.startsWith(`tapstack-udpbench-${run.pid}`));
    expect(left).toEqual([]);
  });
});
