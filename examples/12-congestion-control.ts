/**
 * Example 12: your own congestion control, in one file. No root, no TAP device.
 *
 * A congestion control is a `name` and four things (see packages/tcp/src/congestion.ts): `cwnd`
 * and `ssthresh`, in bytes; `onAck`, called for each ACK of new data while all is well, which
 * grows the window; and `ssthreshAfterLoss`, called when the connection finds a loss, which says
 * how far to fall (`onStateChange` and `undo`, after a spurious loss, are optional). The
 * connection does the rest: it retransmits, runs the window during recovery, and sets it to one
 * segment after a timeout.
 *
 * `Aimd` below is the oldest idea there is, without slow start: add one segment per round trip,
 * and on a loss keep `decrease` of what was in flight. It is plugged into a connection with the
 * `congestionControl` option, like Linux's TCP_CONGESTION socket option; 'cubic' (the default)
 * and 'newreno' are the built-in ones. Two stacks on an in-memory wire that drops 1% of the
 * frames, a virtual clock (the whole run takes a moment and goes the same way every time), one
 * 4 MiB transfer per algorithm, and the sender's cwnd printed every 100 ms of virtual time.
 *
 *   npx tsx examples/12-congestion-control.ts
 *   npx tsx examples/12-congestion-control.ts --decrease 0.5 --drop 0.02 --seed 3
 */
import { parseArgs } from 'node:util';
import { MacAddress, MemoryLink, VirtualClock, withFaults } from '@tapstack/link';
import { createStack } from '@tapstack/stack';
import type { AckSample, CongestionControl, CongestionControlChoice, LossSample } from '@tapstack/tcp';

/** Additive increase, multiplicative decrease: one segment per window of ACKs, `decrease` of the flight on a loss. */
class Aimd implements CongestionControl {
  readonly name = 'aimd';
  cwnd: number;
  /** Aimd has no slow start; the connection keeps the threshold here, and recovery aims at it. */
  ssthresh: number;
  /** Bytes acknowledged since the window last grew. */
  private credit = 0;

  constructor(
    mss: number,
    private readonly decrease: number,
  ) {
    this.cwnd = 2 * mss;
    this.ssthresh = this.cwnd;
  }

  onAck(ack: AckSample): void {
    this.credit += ack.ackedBytes;
    if (this.credit >= this.cwnd) {
      this.credit -= this.cwnd;
      this.cwnd += ack.mss;
    }
  }

  ssthreshAfterLoss(loss: LossSample): number {
    this.credit = 0;
    return Math.max(Math.floor(loss.flightBytes * this.decrease), 2 * loss.mss);
  }
}

const { values } = parseArgs({
  options: {
    decrease: { type: 'string', default: '0.7' },
    drop: { type: 'string', default: '0.01' },
    seed: { type: 'string', default: '1' },
  },
});
const decrease = Number(values.decrease);
const drop = Number(values.drop);
const seed = Number(values.seed);
if (!(decrease > 0 && decrease < 1) || !(drop >= 0 && drop < 0.5) || !Number.isInteger(seed)) {
  console.error('--decrease must be between 0 and 1, --drop between 0 and 0.5, --seed an integer');
  process.exit(2);
}

const BYTES = 4 << 20;

/** One transfer A -> B with `choice`; returns cwnd every 100 ms and the virtual time it took. */
async function transfer(choice: CongestionControlChoice): Promise<{ windows: number[]; ms: number; retransmitted: number }> {
  const clock = new VirtualClock();
  const [wireA, wireB] = MemoryLink.pair({ clock, latencyMs: 10, macs: [MacAddress.parse('02:00:00:00:0a:01'), MacAddress.parse('02:00:00:00:0b:02')] });
  const a = createStack({ link: withFaults(wireA, { drop, seed }), ip: '10.0.0.1/24', clock, random: () => 0.5, arp: { announce: false } });
  const b = createStack({ link: wireB, ip: '10.0.0.2/24', clock, random: () => 0.5, arp: { announce: false } });
  let received = 0;
  // B counts what arrives and closes its side when A has finished (a discard server).
  b.tcp.createServer((socket) => socket.on('data', (chunk: Buffer) => (received += chunk.length)).on('end', () => socket.end())).listen(9);
  const socket = a.tcp.connect({ host: '10.0.0.2', port: 9, congestionControl: choice });
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.resume(); // A reads B's (empty) side to its end, so the close completes
  socket.end(new Uint8Array(BYTES));
  const windows: number[] = [];
  let ms = 0;
  while (!closed) {
    clock.advance(10);
    await new Promise<void>((resolve) => setImmediate(resolve)); // let the sockets' streams run
    const sender = a.tcp.connectionInfo()[0];
    if (clock.now() % 100 === 0 && sender && received < BYTES) windows.push(sender.cwnd);
    if (received === BYTES && ms === 0) ms = clock.now();
    if (clock.now() > 600_000) throw new Error('not done after 10 minutes of virtual time');
  }
  const retransmitted = a.tcp.counters.get('RetransSegs');
  a.close();
  b.close();
  if (received !== BYTES) throw new Error(`B got ${received} bytes of ${BYTES}`);
  return { windows, ms, retransmitted };
}

const runs = {
  aimd: await transfer((mss) => new Aimd(mss, decrease)),
  newreno: await transfer('newreno'),
  cubic: await transfer('cubic'),
};

console.log(`4 MiB from A to B, 20 ms round trip, ${drop * 100}% of frames dropped (seed ${seed}); the sender's cwnd in bytes:\n`);
console.log(`${'time'.padStart(7)} ${'aimd'.padStart(9)} ${'newreno'.padStart(9)} ${'cubic'.padStart(9)}`);
const rows = Math.max(...Object.values(runs).map((r) => r.windows.length));
for (let i = 0; i < rows; i++) {
  const cell = (w: number[]): string => (i < w.length ? String(w[i]) : '').padStart(9);
  console.log(`${`${((i + 1) / 10).toFixed(1)}s`.padStart(7)} ${cell(runs.aimd.windows)} ${cell(runs.newreno.windows)} ${cell(runs.cubic.windows)}`);
}
console.log('');
for (const [name, run] of Object.entries(runs)) {
  console.log(`${name.padEnd(8)} done in ${(run.ms / 1000).toFixed(2)} s of virtual time, ${run.retransmitted} segments retransmitted`);
}
