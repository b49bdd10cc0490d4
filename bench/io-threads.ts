/**
 * The TAP addon's I/O threads (TapOptions.ioThreads) against the main-thread path: 1-byte
 * ping-pong round trips on the echo port for tapstack with and without the threads, on plain frames
 * and with the virtio-net header (tapstack up's default), and lwIP, in the same run, round after
 * round: a hand-off between threads costs a wake-up, and this says what it costs a round trip.
 * Bulk: bench/bulk.ts (--tapstack-arg=--io-threads).
 *
 *   npx tsx bench/io-threads.ts [--rounds 3] [--pingpongs 5000]
 *
 * Namespaces are named iot-*, deleted afterwards; only 10.0.0.0/24 inside.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median } from './table.ts';
import { LwipTcp, TapstackTcp, buildLwip, pingPong, type TcpTarget } from './tcp.ts';

const args = process.argv.slice(2);
function option(name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}
const rounds = option('--rounds', 3);
const pingPongs = option('--pingpongs', 5000);

const built = buildLwip(mkdtempSync(join(tmpdir(), 'iot-lwip-')));
if (!('binary' in built)) throw new Error(`lwIP: ${built.error}`);
const targets: { label: string; t: TcpTarget }[] = [];
const us: Record<string, number[]> = {};
try {
  targets.push({ label: 'tapstack --no-vnet-hdr --io-threads', t: await TapstackTcp.start('tapstack', 'iot-a', ['--no-vnet-hdr', '--io-threads']) });
  targets.push({ label: 'tapstack --no-vnet-hdr --no-io-threads', t: await TapstackTcp.start('tapstack', 'iot-b', ['--no-vnet-hdr', '--no-io-threads']) });
  targets.push({ label: 'tapstack (default: virtio-net header, no threads)', t: await TapstackTcp.start('tapstack', 'iot-c') });
  targets.push({ label: 'tapstack --io-threads (virtio-net header)', t: await TapstackTcp.start('tapstack', 'iot-d', ['--io-threads']) });
  targets.push({ label: 'lwIP', t: await LwipTcp.start('iot-l', built.binary) });
  for (const { label, t } of targets) {
    us[label] = [];
    await pingPong(t, 500); // warm-up
  }
  for (let round = 0; round < rounds; round++) {
    for (const { label, t } of targets) {
      const v = await pingPong(t, pingPongs);
      us[label]!.push(v);
      console.log(`round ${round + 1} ${label}: ${v.toFixed(1)} us`);
    }
  }
} finally {
  for (const { t } of targets) t.close();
}
const lwip = median(us['lwIP']!);
console.log(`| target | ping-pong us (median) | /lwIP |`);
console.log(`|---|---|---|`);
for (const [label, v] of Object.entries(us)) console.log(`| ${label} | ${median(v).toFixed(1)} | ${(median(v) / lwip).toFixed(2)}x |`);
