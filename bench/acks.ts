/**
 * The receive side of bulk and latency, for the ACK work: iperf into the discard port (host ->
 * stack) and the 1-byte ping-pong on the echo port, for tapstack with one ACK per received batch
 * (the default), tapstack with --no-ack-coalescing (an ACK per two segments, as before), and lwIP,
 * in the same run, round after round. Beside throughput it prints what does not depend on the
 * machine's load: the ACKs tapstack sent per MiB received (TCPPureAcks), the share of them sent at
 * a batch end (tx_acks_coalesced),.
 *
 *   npx tsx bench/acks.ts [--rounds 3] [--seconds 5] [--pingpongs 5000]
 *
 * Namespaces are named acks-*, deleted afterwards; only 10.0.0.0/24 inside.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchOptions } from './options.ts';
import { median } from './table.ts';
import { LwipTcp, TapstackTcp, buildLwip, iperfUp, pingPong, type TcpTarget } from './tcp.ts';

const { rounds, seconds, pingpongs: pingPongs } = benchOptions({ numbers: { rounds: 3, seconds: 5, pingpongs: 5000 } }).numbers;

function counter(text: string, name: string): number {
  const m = new RegExp(`(^|\\s)${name.replace('.', '\\.')}\\s+(\\d+)`, 'm').exec(text);
  return m ? Number(m[2]) : 0;
}

interface Row {
  mbits: number[];
  pingPongUs: number[];
  acksPerMib: number[];
  coalescedShare: number[];
}

const built = buildLwip(mkdtempSync(join(tmpdir(), 'acks-lwip-')));
if (!('binary' in built)) throw new Error(`lwIP: ${built.error}`);
const targets: { label: string; t: TcpTarget }[] = [];
const rows: Record<string, Row> = {};
try {
  targets.push({ label: 'tapstack (one ACK per batch)', t: await TapstackTcp.start('tapstack', 'acks-a', ['--no-vnet-hdr']) });
  targets.push({ label: 'tapstack --no-ack-coalescing', t: await TapstackTcp.start('tapstack', 'acks-b', ['--no-vnet-hdr', '--no-ack-coalescing']) });
  targets.push({ label: 'lwIP', t: await LwipTcp.start('acks-l', built.binary) });
  for (const { label, t } of targets) {
    rows[label] = { mbits: [], pingPongUs: [], acksPerMib: [], coalescedShare: [] };
    await iperfUp(t, 1); // warm-up
  }
  for (let round = 0; round < rounds; round++) {
    for (const { label, t } of targets) {
      const row = rows[label]!;
      const tap = t instanceof TapstackTcp ? t : undefined;
      const before = tap ? await tap.counters() : '';
      const mbits = await iperfUp(t, seconds);
      row.mbits.push(mbits);
      if (tap) {
        const after = await tap.counters();
        const d = (name: string): number => counter(after, name) - counter(before, name);
        const mib = (mbits * 1e6 * seconds) / 8 / 1024 / 1024;
        row.acksPerMib.push(d('tcp.TCPPureAcks') / mib);
        row.coalescedShare.push(d('tcp.tx_acks_coalesced') / Math.max(1, d('tcp.TCPPureAcks')));
      }
      row.pingPongUs.push(await pingPong(t, pingPongs));
    }
  }
} finally {
  for (const { t } of targets) t.close();
}
const lwip = rows['lwIP']!;
console.log(`| target | bulk up Mbit/s | /lwIP | ping-pong us | /lwIP | ACKs per MiB | at batch end |`);
console.log(`|---|---:|---:|---:|---:|---:|---:|`);
for (const [label, r] of Object.entries(rows)) {
  const up = median(r.mbits);
  const pp = median(r.pingPongUs);
  const acks = r.acksPerMib.length ? median(r.acksPerMib).toFixed(0) : 'n/a';
  const share = r.coalescedShare.length ? `${(median(r.coalescedShare) * 100).toFixed(0)}%` : 'n/a';
  console.log(`| ${label} | ${up.toFixed(0)} | ${(up / median(lwip.mbits)).toFixed(2)}x | ${pp.toFixed(1)} | ${(pp / median(lwip.pingPongUs)).toFixed(2)}x | ${acks} | ${share} |`);
  console.log(`|   rounds | ${r.mbits.map((x) => x.toFixed(0)).join(', ')} | | ${r.pingPongUs.map((x) => x.toFixed(1)).join(', ')} | | ${r.acksPerMib.map((x) => x.toFixed(0)).join(', ')} | |`);
}
