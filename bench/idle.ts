/**
 * Only the memory row of the TCP bench at 10,000 idle connections, for work on what a connection
 * costs: a fresh `tapstack up` (200 connections opened and closed first), then `--connections`
 * opened to its discard port from one Python client and held; VmRSS before and with them, and
 * the growth per connection, round after round (a fresh process each round).
 *
 *   npx tsx bench/idle.ts [--rounds 3] [--connections 10000] [--tapstack-arg=ARG ...]
 *   npx tsx bench/idle.ts --active 1000 [--seconds 5] [--lwip]   the active mix instead
 *   npx tsx bench/idle.ts --in-memory [--connections 2000]
 *
 * --active N: the same connections to the echo port, N of them exchanging 16 KiB at a time for
 * --seconds while the rest stay idle (every echo compared byte for byte); RSS the most while they
 * run. --lwip measures lwIP (../shared/peers/lwip-tap) the same way after us.
 *
 * --in-memory needs no root and does not depend on the machine's load: two in-memory stacks on
 * the virtual clock, the heap's growth per idle connection (a client's and a server's together)
 * and a heap snapshot's account of what it is made of, by constructor.
 *
 * Namespaces are named idle-*, deleted afterwards; only 10.0.0.0/24 inside.
 */
import { idleConnectionsInMemory } from './memory.ts';
import { benchOptions } from './options.ts';
import { median } from './table.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LwipTcp, TapstackTcp, activeMix, buildLwip, idleConnections } from './tcp.ts';

const options = benchOptions({ numbers: { rounds: 3, connections: 10_000, active: 0, seconds: 5 }, flags: ['in-memory', 'lwip'] });
const { rounds, connections, active, seconds } = options.numbers;

if (options.flags['in-memory']) {
  const r = await idleConnectionsInMemory(connections);
  console.log(`${r.connections} idle connections in memory: ${r.heapBytesPerPair.toLocaleString('en')} heap bytes per pair (client + server)`);
  console.log('| what | bytes per pair | objects per pair |\n|---|---:|---:|');
  for (const row of r.breakdown) console.log(`| ${row.name} | ${row.bytesPerPair} | ${row.countPerPair} |`);
  process.exit(0);
}

if (active > 0) {
  const scratch = mkdtempSync(join(tmpdir(), 'tapstack-idle-'));
  try {
    const built = options.flags.lwip ? buildLwip(scratch) : undefined;
    if (built && 'error' in built) throw new Error(`lwIP: ${built.error}`);
    for (let round = 0; round < rounds; round++) {
      const targets: (TapstackTcp | LwipTcp)[] = [await TapstackTcp.start('tapstack', 'idle-x', options.tapstackArgs)];
      if (built && 'binary' in built) targets.push(await LwipTcp.start('idle-xl', built.binary));
      for (const t of targets) {
        try {
          const m = await activeMix(t, connections, active, seconds, 1000);
          if (m) {
            console.log(
              `round ${round + 1}, ${t.name}: RSS ${m.rssBeforeKb} kB -> at most ${m.rssMaxKb} kB with ${m.connections} connections, ${m.active} echoing: ` +
                `${m.bytesPerConnection} bytes each; ${m.exchanges} exchanges of 16 KiB, ${m.bad} bad, ${m.mbitPerSecond.toFixed(1)} Mbit/s`,
            );
          }
        } finally {
          t.close();
        }
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  process.exit(0);
}

const perConnection: number[] = [];
for (let round = 0; round < rounds; round++) {
  const t = await TapstackTcp.start('tapstack', 'idle', options.tapstackArgs);
  try {
    const r = await idleConnections(t, connections, 1000);
    if (!r) continue;
    perConnection.push(r.bytesPerConnection);
    console.log(`round ${round + 1}: RSS ${r.rssBeforeKb} kB -> ${r.rssAtKb} kB at ${connections} idle connections, ${r.bytesPerConnection} bytes each`);
  } finally {
    t.close();
  }
}
if (perConnection.length) console.log(`median: ${Math.round(median(perConnection)).toLocaleString('en')} bytes per idle connection (${perConnection.join(', ')})`);
