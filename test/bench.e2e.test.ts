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

/** bench/run.ts's ping counts, as its JSON report carries them. */
interface PingCounts {
  rtt: number;
  serial: number;
  flood: number;
  bulk: number;
  frag: number;
}

/** What each loss row's ping sent, and how many requests it keeps in flight (-l). */
function pingRuns(c: PingCounts): Record<string, { sent: number; inFlight: number }> {
  return {
    serial_loss: { sent: c.serial, inFlight: 1 },
    flood_loss: { sent: c.flood, inFlight: 32 },
    bulk_loss: { sent: c.bulk, inFlight: 32 },
    frag_loss: { sent: c.frag, inFlight: 1 },
    serial6_loss: { sent: c.serial, inFlight: 1 },
    flood6_loss: { sent: c.flood, inFlight: 32 },
  };
}

/**
 * Nothing was lost but, at most, the replies still in flight when ping stopped. iputils ping waits
 * only twice its slowest round trip after its last request before it prints the summary (its
 * schedule_exit), and a fast responder's slowest round trip is short: the C floor's is about
 * 0.1 ms, and once on a loaded CI machine it was descheduled for longer than that right at the end
 * and 20 of its 5,000 replies (0.4%) came too late to count. `ping -w` does not help: it stops at
 * the count-th reply and counts the requests sent after it as lost. So the check is that what
 * went unanswered fits in the in-flight window of the last requests (32 for `-l 32`, 1 for a
 * serial run); one request more than that fails it.
 */
function expectOnlyTailUnanswered(lossPercent: number, run: { sent: number; inFlight: number }, label: string): void {
  const unanswered = Math.round((lossPercent * run.sent) / 100);
  expect(unanswered, `${label}: ${lossPercent}% of ${run.sent} unanswered, more than the ${run.inFlight} in flight at the end`).toBeLessThanOrEqual(
    run.inFlight,
  );
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

  it('measured every ping figure for both stacks, in both placements, losing none but the replies in flight at the end', () => {
    const report = JSON.parse(readFileSync(jsonFile, 'utf8')) as {
      pingCounts: PingCounts;
      ping: { figures: Record<string, FigureJson[]>; floors: Record<string, { key: string; medians: Record<string, number> }[]> };
    };
    const runs = pingRuns(report.pingCounts);
    for (const placement of ['free', 'same-cpu']) {
      // the bare responders answered too (C on the TAP device, node + the addon)
      for (const row of report.ping.floors[placement]!) {
        for (const who of ['tapstack', 'node-floor', 'c-floor', 'kernel']) {
          const label = `${placement} ${row.key} ${who}`;
          if (row.key.endsWith('_loss')) expectOnlyTailUnanswered(row.medians[who]!, runs[row.key]!, label);
          else expect(row.medians[who], label).toBeGreaterThan(0);
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
          expectOnlyTailUnanswered(f.tapstack, runs[f.key]!, `${placement} ${f.key} tapstack`);
          expectOnlyTailUnanswered(f.kernel, runs[f.key]!, `${placement} ${f.key} kernel`);
        } else {
          expect(f.tapstack, `${placement} ${f.key}`).toBeGreaterThan(0);
          expect(f.kernel, `${placement} ${f.key}`).toBeGreaterThan(0);
        }
      }
    }
  });

  it('measured the ping -6 rows for tapstack and the kernel, losing none but the replies in flight at the end, beside the IPv4 ones', () => {
    const report = JSON.parse(readFileSync(jsonFile, 'utf8')) as { pingCounts: PingCounts; ping6: { rows: { key: string; tapstack: number; kernel: number }[] } };
    const runs = pingRuns(report.pingCounts);
    expect(report.ping6.rows.map((r) => r.key)).toEqual(['serial6_time', 'serial6_loss', 'flood6_time', 'flood6_loss']);
    for (const r of report.ping6.rows) {
      if (r.key.endsWith('_loss')) {
        expectOnlyTailUnanswered(r.tapstack, runs[r.key]!, `${r.key} tapstack`);
        expectOnlyTailUnanswered(r.kernel, runs[r.key]!, `${r.key} kernel`);
      } else expect(Math.min(r.tapstack, r.kernel), r.key).toBeGreaterThan(0);
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
    // each step is one ping -f -l 32 run of the pings since the step before
    report.memory.steps.forEach((s, i) => {
      const sent = s.pings - (i === 0 ? 0 : report.memory.steps[i - 1]!.pings);
      expectOnlyTailUnanswered(s.lossPercent, { sent, inFlight: 32 }, `memory step ${s.pings}`);
    });
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
        mix: { target: string; connections: number; active: number; exchanges: number; bad: number }[];
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
    // the active mix: a tenth of the connections echoed 16 KiB at a time, every echo of ours
    // whole. lwIP's bad echoes are the peer's own (some of its echoing connections stall under
    // load: 94-149 of them at 10,000 connections in one sitting, none yet at 1,000): counted, not
    // held against it here.
    expect(tcp.mix.map((m) => [m.target, m.connections, m.active])).toEqual([
      ['tapstack', 1_000, 100],
      ['lwip', 1_000, 100],
    ]);
    expect(tcp.mix[0]!.bad, 'tapstack: echoes short, different or missing').toBe(0);
    for (const m of tcp.mix) expect(m.exchanges, m.target).toBeGreaterThan(0);
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
