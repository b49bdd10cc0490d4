/**
 * The 1% loss rows of the TCP bench alone (issue 14's "under 1% loss at least 0.25x the kernel"),
 * for work on loss recovery: tapstack and the kernel in the same run, round after round, each
 * round iperf up and curl down with 1% random loss both ways on the host's device
 * (../shared/tools/link-loss.sh). Besides Mbit/s it prints what tapstack's counters say each
 * row cost: retransmissions, D-SACKs received (each one a retransmission that was not needed,
 * as there is no reordering on a TAP), timeouts, loss probes, recoveries and undos.
 *
 *   node --import tsx bench/loss.ts [--rounds 3] [--seconds 5] [--tapstack-arg --tcp-log ...]
 */
import { parseArgs } from 'node:util';
import { median } from './table.ts';
import { KernelTcp, TapstackTcp, curlDownFor, iperfUp, setLoss, type TcpTarget } from './tcp.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    'tapstack-arg': { type: 'string', multiple: true },
  },
});
const rounds = Number(args.rounds);
const seconds = Number(args.seconds);

/** The counters a row of loss recovery is judged by (TcpLayer's names, as Linux's netstat -s). */
const WATCHED = ['RetransSegs', 'TCPDSACKRecv', 'TCPTimeouts', 'TCPLossProbes', 'TCPSackRecovery', 'TCPLostRetransmit', 'TCPDSACKUndo', 'TCPLossUndo', 'TCPFullUndo', 'TCPSpuriousRTOs', 'OutSegs'];

function parseCounters(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const r = /^\s*tcp\.(\w+)\s+(\d+)/.exec(line);
    if (r) m.set(r[1]!, Number(r[2]));
  }
  return m;
}

async function row(t: TcpTarget, what: 'up' | 'down'): Promise<number> {
  setLoss(t, 1);
  try {
    return what === 'up' ? await iperfUp(t, seconds) : await curlDownFor(t, seconds);
  } finally {
    setLoss(t, 'off');
  }
}

const results: Record<string, number[]> = { tap_up: [], tap_down: [], kern_up: [], kern_down: [] };
const costs: Record<'up' | 'down', Map<string, number>[]> = { up: [], down: [] };
const tapstack = await TapstackTcp.start('tapstack', 'rec-loss-a', args['tapstack-arg'] ?? []);
const kernel = await KernelTcp.start('rec-loss-k').catch((err: unknown) => {
  tapstack.close();
  throw err;
});
try {
  for (const t of [tapstack, kernel] as TcpTarget[]) await iperfUp(t, 1); // warm-up: ARP, the JIT
  for (let round = 1; round <= rounds; round++) {
    for (const what of ['up', 'down'] as const) {
      const before = parseCounters(await tapstack.counters());
      const tap = await row(tapstack, what);
      const after = parseCounters(await tapstack.counters());
      const cost = new Map<string, number>();
      for (const k of WATCHED) cost.set(k, (after.get(k) ?? 0) - (before.get(k) ?? 0));
      costs[what].push(cost);
      const kern = await row(kernel, what);
      results[`tap_${what}`]!.push(tap);
      results[`kern_${what}`]!.push(kern);
      const c = [...cost].filter(([, v]) => v !== 0).map(([k, v]) => `${k} ${v}`).join(', ');
      process.stderr.write(`round ${round} ${what}: tapstack ${tap.toFixed(1)} kernel ${kern.toFixed(1)} Mbit/s (${(tap / kern).toFixed(3)}x); ${c}\n`);
    }
  }
} finally {
  tapstack.close();
  kernel.close();
}
for (const what of ['up', 'down'] as const) {
  const tap = median(results[`tap_${what}`]!);
  const kern = median(results[`kern_${what}`]!);
  const sum = (k: string): number => costs[what].reduce((s, m) => s + (m.get(k) ?? 0), 0);
  console.log(
    `1% loss ${what}: tapstack ${tap.toFixed(1)} Mbit/s, kernel ${kern.toFixed(1)} Mbit/s, ratio ${(tap / kern).toFixed(3)} ` +
      `(medians of ${rounds}: tapstack ${results[`tap_${what}`]!.map((v) => v.toFixed(0)).join('/')}, kernel ${results[`kern_${what}`]!.map((v) => v.toFixed(0)).join('/')}); ` +
      `summed over rounds: ${WATCHED.map((k) => `${k} ${sum(k)}`).join(', ')}`,
  );
}
