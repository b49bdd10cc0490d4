/**
 * Heap bytes allocated per ICMP echo on the in-memory path (echo-path.ts), a figure that does
 * not depend on the machine's load: run with a young generation large enough that no garbage
 * collection happens during the measured echoes, so the growth of the heap is what they
 * allocated. The harness's own share (the batch's ArrayBuffer and a view per frame, what the TAP
 * addon makes per wake-up) is measured alone and subtracted. Give the young generation its size
 * from the start (--min-semi-space-size as well as --max-): it otherwise starts small and grows,
 * and a path that allocates much is scavenged during the run and measured far too low (the
 * ICMPv6 path's 2,000 bytes per echo came out as 85 with --max-semi-space-size alone).
 *
 *   node --expose-gc --min-semi-space-size=256 --max-semi-space-size=256 --import tsx bench/echo-allocations.ts [--ipv6]
 *
 * --ipv6: ICMPv6 echoes (`ping -6`'s) to fd00:10::2 instead, through IPv6, ICMPv6 and NDP.
 */
import { createEchoPath } from './echo-path.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc (see the header)');
const BATCH = 32;
const BATCHES = 400; // 12,800 echoes: well inside a 256 MB young generation

function allocated(run: () => void): number {
  gc!();
  const before = process.memoryUsage().heapUsed;
  run();
  return process.memoryUsage().heapUsed - before;
}

const ipv6 = process.argv.includes('--ipv6');
const path = createEchoPath({ batchSize: BATCH, ipv6 });
path.run(1); // the first replies wait for the neighbour's answer (a microtask away)
await new Promise((resolve) => setImmediate(resolve));
path.run(3000); // warm-up: the JIT compiles the path
const frameLength = ipv6 ? 14 + 40 + 64 : 14 + 20 + 64;
const frames = new Uint8Array(frameLength * BATCH);
const harness: number[] = [];
const whole: number[] = [];
for (let round = 0; round < 5; round++) {
  // the harness alone: the batch buffer and its views, as createEchoPath.run makes them
  harness.push(
    allocated(() => {
      for (let b = 0; b < BATCHES; b++) {
        const buffer = new ArrayBuffer(frames.length);
        new Uint8Array(buffer).set(frames);
        const views = new Array<Uint8Array>(BATCH);
        for (let i = 0; i < BATCH; i++) views[i] = new Uint8Array(buffer, i * frameLength, frameLength);
        if (views.length !== BATCH) throw new Error('unreachable');
      }
    }),
  );
  let replies = 0;
  whole.push(allocated(() => (replies = path.run(BATCHES))));
  if (replies !== BATCHES * BATCH) throw new Error(`${BATCHES * BATCH} requests, ${replies} replies`);
}
path.close();
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const echoes = BATCHES * BATCH;
const perEcho = median(whole) / echoes;
const harnessPerEcho = median(harness) / echoes;
console.log(
  `heap bytes per ${ipv6 ? 'ICMPv6 ' : ''}echo: ${perEcho.toFixed(1)} with the harness, ${harnessPerEcho.toFixed(1)} the harness alone, ` +
    `${(perEcho - harnessPerEcho).toFixed(1)} the stack (median of 5 rounds of ${echoes} echoes)`,
);
