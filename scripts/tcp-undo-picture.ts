/**
 * Makes the TCP chapter's picture of undo (docs/img/tcp-cwnd-undo.svg and its zoom): a real
 * transfer over a TAP device in a network namespace of its own, where the link fault injector
 * holds 0.5% of the frames 4 ms while later ones pass, each way (`tapstack up --link-reorder
 * 0.005/4`), and every frame 5 ms each way (`--link-delay 5`, so that timestamps can tell an
 * original from its resend). The kernel's curl fetches 2 MB from our HTTP server; a segment held
 * back looks lost, RACK resends it, and the late original then shows the resend was needless:
 * the recovery is undone. Our sender's --tcp-log is drawn with `tapstack plot --tcp-log`, once
 * whole and once around the first undo, and the counters are printed for the chapter's text. A
 * run on a real clock differs from the next (the machine's load moves the numbers).
 *
 *   sudo npx tsx scripts/tcp-undo-picture.ts [--out DIR]     (default docs/img)
 *
 * The namespace is tapstack-undo-pic-<pid>-0, removed at the end, also on failure; only
 * 10.0.0.0/24 is used inside it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Netns } from '../test/support/netns.ts';
import { parseCounters, repoRoot, spawnTapstack, tapstackBin } from '../test/support/watch.ts';
import { readTcpLog } from '../packages/stack/src/plot/tcp-log-chart.ts';

const { values } = parseArgs({ options: { out: { type: 'string', default: join(repoRoot, 'docs', 'img') } } });
const out = values.out!;
const BYTES = 2 * 1024 * 1024;
const UNDO_COUNTERS = ['tcp.TCPDSACKUndo', 'tcp.TCPFullUndo', 'tcp.TCPPartialUndo', 'tcp.TCPLossUndo'];

const dir = mkdtempSync(join(tmpdir(), 'tapstack-undo-pic-'));
const ns = Netns.create('undo-pic');
try {
  const log = join(dir, 'undo.jsonl');
  const stack = spawnTapstack(ns, [
    'up', '--tap', 'tap0', '--ip', '10.0.0.2/24', '--host-ip', '10.0.0.1/24', '--no-ipv6', '--http', '80',
    '--link-delay', '5', '--link-reorder', '0.005/4', '--tcp-log', log,
  ]);
  await stack.waitFor(/http on 10\.0\.0\.2:80/);
  const down = await ns.run('curl', ['-s', '-S', '-m', '60', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', `http://10.0.0.2/bytes/${BYTES}`], 70_000);
  if (down.status !== 0 || !down.stdout.startsWith(String(BYTES))) throw new Error(`curl: ${down.status} ${down.stdout} ${down.stderr}`);
  const mark = stack.output.length;
  await stack.stop('SIGINT');
  const counters = parseCounters(stack.output.slice(mark));
  const figures = ['tcp.RetransSegs', 'tcp.TCPSackRecovery', 'tcp.TCPDSACKRecv', 'tcp.TCPTSReorder', 'tcp.TCPTimeouts', ...UNDO_COUNTERS].map((k) => `${k.slice(4)} ${counters.get(k) ?? 0}`);
  console.log(`curl: ${down.stdout} s; ${figures.join(', ')}`);

  const server = readTcpLog(readFileSync(log, 'utf8')).connections.filter((c) => c.local === '10.0.0.2:80');
  if (server.length !== 1) throw new Error(`expected one server connection in the log, found ${server.length}`);
  const events = server[0]!.events;
  const t0 = events[0]!.t;
  const undos = events.filter((e) => e.event === 'undo');
  for (const u of undos.slice(0, 8)) console.log(`undo at ${(u.t - t0).toFixed(4)} s: ${u.undo}, cwnd ${u.cwndBefore} -> ${u.cwndAfter}, ssthresh ${u.ssthreshBefore} -> ${u.ssthreshAfter}`);
  if (undos.length === 0) throw new Error('no undo in this run: nothing to show (run again)');

  const plot = (args: string[], file: string): void => {
    const r = spawnSync(process.execPath, [tapstackBin, 'plot', '--tcp-log', log, ...args], { cwd: repoRoot, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`plot ${args.join(' ')}: ${r.stderr}`);
    writeFileSync(join(out, file), r.stdout);
    console.log(`${join(out, file)}: ${r.stderr.trim()}`);
  };
  plot([], 'tcp-cwnd-undo.svg');
  // 40 ms around the first undo: the drop into recovery, the resend, and the window put back
  const first = undos[0]!.t - t0;
  const from = Math.max(0, Math.round((first - 0.025) * 1000) / 1000);
  plot(['--from', String(from), '--to', String(Math.round((from + 0.04) * 1000) / 1000)], 'tcp-cwnd-undo-zoom.svg');
} finally {
  ns.destroy();
  rmSync(dir, { recursive: true, force: true });
}
