/**
 * The TAP addon's writer thread (TapOptions.ioThreads) against the main-thread path, lwIP in the
 * same run, round after round:
 * - 1-byte ping-pong round trips on the echo port, on plain frames and with the virtio-net header:
 *   what a hand-off between threads would cost a round trip (the hybrid writes a lone frame itself);
 * - bulk transfers (plain and with the header), a 100 MiB download (curl) and an upload (iperf, 3 s), and where their time
 *   goes: Mbit/s, CPU ms per MiB of the stack's main thread, of its tap-writer thread and of its
 *   other threads (V8's, libuv's; /proc/<pid>/task), of the peer (curl or iperf) and of the whole
 *   machine, frames per send batch and per receive wake-up, the share of frames handed to the
 *   writer and per hand-off, how often its ring was full, and its wake-ups (voluntary context
 *   switches) per hand-off.
 * bench/bulk.ts has the same bulk rows (--tapstack-arg=--io-threads or --no-io-threads).
 *
 *   npx tsx bench/io-threads.ts [--rounds 3] [--pingpongs 5000] [--mib 100] [--seconds 3] [--rows pingpong,down,up[,plain-only]]
 *
 * Namespaces are named iot-*, deleted afterwards; only 10.0.0.0/24 inside.
 */
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median } from './table.ts';
import { LwipTcp, TapstackTcp, buildLwip, curlDown, iperfUp, pingPong, type TcpTarget } from './tcp.ts';

const args = process.argv.slice(2);
function option(name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1]! : fallback;
}
const rounds = Number(option('--rounds', '3'));
const pingPongs = Number(option('--pingpongs', '5000'));
const mib = Number(option('--mib', '100'));
const seconds = Number(option('--seconds', '3'));
const rows = option('--rows', 'pingpong,down,up').split(',');

/** CPU ticks (1/100 s) and voluntary context switches of each thread of `pid`, by role. */
interface ThreadTimes {
  main: number;
  writer: number;
  other: number;
  writerSwitches: number;
}
function threadTimes(pid: number): ThreadTimes {
  const times: ThreadTimes = { main: 0, writer: 0, other: 0, writerSwitches: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    let status: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    } catch {
      continue; // the thread ended
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    if (tid === String(pid)) times.main += ticks;
    else if (comm === 'tap-writer') {
      times.writer += ticks;
      times.writerSwitches += Number(/voluntary_ctxt_switches:\s*(\d+)/.exec(status)?.[1] ?? 0);
    } else times.other += ticks;
  }
  return times;
}

/** The machine's busy and total jiffies (/proc/stat's cpu line). */
function machineJiffies(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const idle = f[3]! + f[4]!;
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/**
 * Watches for the transfer's peer process (curl or iperf, the only one of that name in the
 * target's namespace: other work on the machine may run its own) and keeps its last CPU ticks
 * seen, so that what the peer's side costs can stand beside the stack's.
 */
function watchPeer(name: string, netns: string): { stop: () => number } {
  const inode = `net:[${statSync(`/run/netns/${netns}`).ino}]`;
  let pid: string | undefined;
  let ticks = 0;
  const look = (): void => {
    try {
      if (pid === undefined) pid = readdirSync('/proc').find((p) => /^\d+$/.test(p) && readFileSync(`/proc/${p}/comm`, 'utf8').trim() === name && readlinkSync(`/proc/${p}/ns/net`) === inode);
      if (pid === undefined) return;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks = Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone between the listing and the read
    }
  };
  const timer = setInterval(look, 10);
  return { stop: () => (clearInterval(timer), ticks) };
}

function counter(text: string, name: string): number {
  return Number(new RegExp(`^\\s*${name.replace('.', '\\.')}\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
}

interface Transfer {
  mbits: number;
  /** CPU ms per MiB by thread. */
  main: number;
  writer: number;
  other: number;
  machineBusy: number;
  /** CPU ms per MiB of the whole machine: the stack, curl, the kernel's softirqs (and anything else running). */
  machine: number;
  /** CPU ms per MiB of the peer, curl or iperf (its socket's side in the kernel, and its own). */
  peer: number;
  framesPerBatch: number;
  framesPerWakeup: number;
  handedOff: number;
  framesPerHandoff: number;
  /** writeBatch calls that found the writer's ring full (tap.tx_eagain) per MiB. */
  ringFull: number;
  wakeupsPerHandoff: number;
}

async function transfer(t: TcpTarget, tapstack: TapstackTcp | undefined, direction: 'down' | 'up'): Promise<Transfer> {
  const pid = t.pid!;
  const before = tapstack ? await tapstack.counters() : '';
  const t0 = threadTimes(pid);
  const m0 = machineJiffies();
  const peer = watchPeer(direction === 'down' ? 'curl' : 'iperf', t.client.name);
  const mbits = direction === 'down' ? await curlDown(t, mib * 1024 * 1024) : await iperfUp(t, seconds);
  const peerTicks = peer.stop();
  const moved = direction === 'down' ? mib : (mbits * 1e6 * seconds) / 8 / 2 ** 20;
  const t1 = threadTimes(pid);
  const m1 = machineJiffies();
  const after = tapstack ? await tapstack.counters() : '';
  const delta = (name: string): number => counter(after, name) - counter(before, name);
  const perMib = (ticks: number): number => (ticks * 10) / moved;
  const batches = delta('tap.tx_batches');
  const handoffs = delta('tap.tx_handoff_batches');
  return {
    mbits,
    main: perMib(t1.main - t0.main),
    writer: perMib(t1.writer - t0.writer),
    other: perMib(t1.other - t0.other),
    machineBusy: (m1.busy - m0.busy) / (m1.total - m0.total),
    machine: perMib(m1.busy - m0.busy),
    peer: perMib(peerTicks),
    framesPerBatch: batches > 0 ? delta('link.tx_frames') / batches : Number.NaN,
    framesPerWakeup: delta('tap.rx_batches') > 0 ? delta('link.rx_frames') / delta('tap.rx_batches') : Number.NaN,
    handedOff: delta('link.tx_frames') > 0 ? delta('tap.tx_handoff_frames') / delta('link.tx_frames') : Number.NaN,
    framesPerHandoff: handoffs > 0 ? delta('tap.tx_handoff_frames') / handoffs : Number.NaN,
    ringFull: delta('tap.tx_eagain') / moved,
    wakeupsPerHandoff: handoffs > 0 ? (t1.writerSwitches - t0.writerSwitches) / handoffs : Number.NaN,
  };
}

const built = buildLwip(mkdtempSync(join(tmpdir(), 'iot-lwip-')));
if (!('binary' in built)) throw new Error(`lwIP: ${built.error}`);
const targets: { label: string; t: TcpTarget }[] = [];
const us: Record<string, number[]> = {};
const bulk: Record<'down' | 'up', Record<string, Transfer[]>> = { down: {}, up: {} };
const directions = (['down', 'up'] as const).filter((d) => rows.includes(d));
try {
  targets.push({ label: 'tapstack --no-vnet-hdr --io-threads', t: await TapstackTcp.start('tapstack', 'iot-a', ['--no-vnet-hdr', '--io-threads']) });
  targets.push({ label: 'tapstack --no-vnet-hdr --no-io-threads', t: await TapstackTcp.start('tapstack', 'iot-b', ['--no-vnet-hdr', '--no-io-threads']) });
  if (!rows.includes('plain-only')) {
    targets.push({ label: 'tapstack --vnet-hdr --io-threads', t: await TapstackTcp.start('tapstack', 'iot-c', ['--vnet-hdr', '--io-threads']) });
    targets.push({ label: 'tapstack --vnet-hdr --no-io-threads', t: await TapstackTcp.start('tapstack', 'iot-d', ['--vnet-hdr', '--no-io-threads']) });
  }
  targets.push({ label: 'lwIP', t: await LwipTcp.start('iot-l', built.binary) });
  for (const { label, t } of targets) {
    us[label] = [];
    bulk.down[label] = [];
    bulk.up[label] = [];
    if (rows.includes('pingpong')) await pingPong(t, 500); // warm-up
    if (directions.length > 0) {
      await curlDown(t, 1024 * 1024);
      await iperfUp(t, 1);
    }
  }
  for (let round = 0; round < rounds; round++) {
    for (const { label, t } of targets) {
      if (rows.includes('pingpong')) {
        const v = await pingPong(t, pingPongs);
        us[label]!.push(v);
        console.log(`round ${round + 1} ${label}: ping-pong ${v.toFixed(1)} us`);
      }
      for (const direction of directions) {
        const d = await transfer(t, t instanceof TapstackTcp ? t : undefined, direction);
        bulk[direction][label]!.push(d);
        console.log(`round ${round + 1} ${label}: ${direction} ${d.mbits.toFixed(0)} Mbit/s, ${JSON.stringify(d, (_, v: unknown) => (typeof v === 'number' ? Number(v.toFixed(2)) : v))}`);
      }
    }
  }
} finally {
  for (const { t } of targets) t.close();
}
if (rows.includes('pingpong')) {
  const lwip = median(us['lwIP']!);
  console.log(`\n| target | ping-pong us (median) | /lwIP |`);
  console.log(`|---|---|---|`);
  for (const [label, v] of Object.entries(us)) console.log(`| ${label} | ${median(v).toFixed(1)} | ${(median(v) / lwip).toFixed(2)}x |`);
}
for (const direction of directions) {
  const lwip = median(bulk[direction]['lwIP']!.map((d) => d.mbits));
  const m = (list: Transfer[], key: keyof Transfer, digits = 1): string => median(list.map((d) => d[key])).toFixed(digits);
  const what = direction === 'down' ? `download (curl, ${mib} MiB)` : `upload (iperf, ${seconds} s)`;
  console.log(`\n| ${what}, medians | Mbit/s | /lwIP | CPU ms/MiB main / tap-writer / other | ${direction === 'down' ? 'curl' : 'iperf'} CPU ms/MiB | machine CPU ms/MiB (busy) | frames per send batch | frames per receive wake-up | handed to the writer | frames per hand-off | ring full per MiB | writer wake-ups per hand-off |`);
  console.log(`|---|---|---|---|---|---|---|---|---|---|---|---|`);
  for (const [label, list] of Object.entries(bulk[direction])) {
    if (list.length === 0) continue;
    const busy = `${(median(list.map((d) => d.machineBusy)) * 100).toFixed(0)}%`;
    const handed = `${(median(list.map((d) => d.handedOff)) * 100).toFixed(0)}%`;
    console.log(`| ${label} | ${m(list, 'mbits', 0)} | ${(median(list.map((d) => d.mbits)) / lwip).toFixed(2)}x | ${m(list, 'main')} / ${m(list, 'writer')} / ${m(list, 'other')} | ${m(list, 'peer')} | ${m(list, 'machine')} (${busy}) | ${m(list, 'framesPerBatch')} | ${m(list, 'framesPerWakeup')} | ${handed} | ${m(list, 'framesPerHandoff')} | ${m(list, 'ringFull')} | ${m(list, 'wakeupsPerHandoff', 2)} |`);
  }
}
