/**
 * The 1% loss rows of the TCP bench alone (issue 14's "under 1% loss at least 0.25x the kernel"),
 * for work on loss recovery: tapstack as `tapstack up` runs by default (the virtio-net header,
 * `vnet`), tapstack on plain frames (--no-vnet-hdr) and the kernel, in the same run, round after
 * round, each round iperf up and curl down with 1% random loss both ways on the host's device
 * (../shared/tools/link-loss.sh drops per skb: a 64 KB super-frame towards a vnet tapstack is
 * lost whole, as a GSO skb on the kernel's veth is). Besides Mbit/s it prints what each
 * tapstack's counters say the row cost: retransmissions, D-SACKs received (each one a
 * retransmission that was not needed, as there is no reordering on a TAP), timeouts, loss probes,
 * recoveries and undos, and the ACKs it sent (OutSegs on the upload).
 *
 * Kernels beside them (`--kernels`, each a veth pair of its own): `offload`, the pair as it comes
 * (TSO/GSO/GRO on) with the namespace's default congestion control (bbr on this machine, which
 * does not back off on random loss); `plain`, TSO/GSO/GRO off on both ends, so that the data the
 * kernel sends down crosses the pair as 1514-byte frames and is lost one frame at a time, as ours
 * on tap0; `-cubic` after either sets the server's route to CUBIC (`ip route ... congctl`), our
 * default. `plain-cubic` is the like-for-like reference of our plain rows. Up, the kernel is the
 * sender for all of them (the client's namespace keeps its default) and its egress hands tc GSO
 * bundles whatever the device's offloads (link-loss.sh), so that row loses the same way for all.
 *
 * `--compare ARG` (repeatable) adds a plain tapstack (`--compare-mode vnet`: one with the header)
 * with those arguments as well (`plain+ARG...`): an A/B of a switch in one run, e.g.
 * `--modes plain --compare=--no-sack-compression`.
 *
 *   npx tsx bench/loss.ts [--rounds 3] [--seconds 5] [--modes vnet,plain] [--kernels offload,plain,plain-cubic] [--compare ARG]... [--tapstack-arg --tcp-log ...]
 */
import { parseArgs } from 'node:util';
import { median } from './table.ts';
import { KernelTcp, TapstackTcp, curlDownFor, iperfUp, underLoss, withFrameMode, type FrameMode, type KernelFrames, type TcpTarget } from './tcp.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    modes: { type: 'string', default: 'vnet,plain' },
    kernels: { type: 'string', default: 'offload,plain,plain-cubic' },
    'tapstack-arg': { type: 'string', multiple: true },
    // one more plain tapstack with these arguments too, for a change measured in the same run
    compare: { type: 'string', multiple: true },
    'compare-mode': { type: 'string', default: 'plain' },
  },
});
const rounds = Number(args.rounds);
const seconds = Number(args.seconds);
const modes = args.modes.split(',').map((m) => {
  if (m !== 'vnet' && m !== 'plain') throw new Error(`--modes: vnet or plain, not ${m}`);
  return m as FrameMode;
});
const KERNELS = ['offload', 'plain', 'offload-cubic', 'plain-cubic'] as const;
type KernelName = (typeof KERNELS)[number];
const kernelNames = args.kernels.split(',').map((k) => {
  if (!(KERNELS as readonly string[]).includes(k)) throw new Error(`--kernels: ${KERNELS.join(', ')}, not ${k}`);
  return k as KernelName;
});
const given = (args['tapstack-arg'] ?? []).filter((a) => a !== '--vnet-hdr' && a !== '--no-vnet-hdr');

/** The counters a row of loss recovery is judged by (TcpLayer's names, as Linux's netstat -s). */
const WATCHED = ['RetransSegs', 'TCPDSACKRecv', 'TCPTimeouts', 'TCPLossProbes', 'TCPSackRecovery', 'TCPLostRetransmit', 'TCPDSACKUndo', 'TCPLossUndo', 'TCPFullUndo', 'TCPSpuriousRTOs', 'TCPAckCompressed', 'OutSegs'];

function parseCounters(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const r = /^\s*tcp\.(\w+)\s+(\d+)/.exec(line);
    if (r) m.set(r[1]!, Number(r[2]));
  }
  return m;
}

const row = (t: TcpTarget, what: 'up' | 'down'): Promise<number> =>
  underLoss(t, () => (what === 'up' ? iperfUp(t, seconds) : curlDownFor(t, seconds)));

type Who = FrameMode | `kernel-${KernelName}` | `${FrameMode}+${string}`;
const results = new Map<string, number[]>();
const costs = new Map<string, Map<string, number>[]>();
const push = <T>(m: Map<string, T[]>, k: string, v: T): void => void (m.get(k) ?? m.set(k, []).get(k)!).push(v);
const tapstacks = new Map<Who, TapstackTcp>();
const compare = args.compare ?? [];
const compareMode = args['compare-mode'] === 'vnet' ? 'vnet' : 'plain';
const compared: Who = `${compareMode}+${compare.join(' ')}`;
const kernels: [Who, KernelTcp][] = [];
try {
  for (const mode of modes) tapstacks.set(mode, await TapstackTcp.start('tapstack', `rec-loss-${mode === 'vnet' ? 'v' : 'p'}`, withFrameMode(given, mode)));
  if (compare.length > 0) tapstacks.set(compared, await TapstackTcp.start('tapstack', 'rec-loss-pb', withFrameMode([...given, ...compare], compareMode)));
  for (const [i, name] of kernelNames.entries()) {
    const frames = name.split('-')[0] as KernelFrames;
    kernels.push([`kernel-${name}`, await KernelTcp.start(`rec-loss-k${i}`, frames, name.endsWith('-cubic') ? 'cubic' : undefined)]);
  }
  const everyone: [Who, TcpTarget][] = [...tapstacks, ...kernels];
  for (const [, t] of everyone) await iperfUp(t, 1); // warm-up: ARP, the JIT
  for (let round = 1; round <= rounds; round++) {
    for (const what of ['up', 'down'] as const) {
      const line: string[] = [];
      for (const [who, t] of everyone) {
        const before = t instanceof TapstackTcp ? parseCounters(await t.counters()) : undefined;
        const mbit = await row(t, what);
        push(results, `${who} ${what}`, mbit);
        if (t instanceof TapstackTcp && before) {
          const after = parseCounters(await t.counters());
          const cost = new Map<string, number>();
          for (const k of WATCHED) cost.set(k, (after.get(k) ?? 0) - (before.get(k) ?? 0));
          push(costs, `${who} ${what}`, cost);
          const c = [...cost].filter(([, v]) => v !== 0).map(([k, v]) => `${k} ${v}`).join(', ');
          line.push(`tapstack ${who} ${mbit.toFixed(1)} (${c})`);
        } else line.push(`${who} ${mbit.toFixed(1)}`);
      }
      process.stderr.write(`round ${round} ${what} Mbit/s: ${line.join('; ')}\n`);
    }
  }
} finally {
  for (const t of tapstacks.values()) t.close();
  for (const [, k] of kernels) k.close();
}
for (const what of ['up', 'down'] as const) {
  const references = kernels.map(([name]) => {
    const all = results.get(`${name} ${what}`)!;
    return { name, median: median(all), all: all.map((v) => v.toFixed(0)).join('/') };
  });
  for (const mode of [...modes, ...(compare.length > 0 ? [compared] : [])]) {
    const all = results.get(`${mode} ${what}`)!;
    const tap = median(all);
    const sum = (k: string): number => costs.get(`${mode} ${what}`)!.reduce((s, m) => s + (m.get(k) ?? 0), 0);
    // the ratio of each round to the kernels' figures of the same round, then their median
    const perRound = (k: string): string => {
      const ks = results.get(`${k} ${what}`)!;
      return median(all.map((v, i) => v / ks[i]!)).toFixed(3);
    };
    console.log(
      `1% loss ${what}, tapstack ${mode}: ${tap.toFixed(1)} Mbit/s (${all.map((v) => v.toFixed(0)).join('/')}); ` +
        references.map((r) => `${r.name} ${r.median.toFixed(1)} (${r.all}), ratio ${(tap / r.median).toFixed(3)} (per round ${perRound(r.name)})`).join('; ') +
        `; medians of ${rounds}; summed over rounds: ${WATCHED.map((k) => `${k} ${sum(k)}`).join(', ')}`,
    );
  }
}
