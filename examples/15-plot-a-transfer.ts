/**
 * Example 15: see a TCP transfer. Two stacks on an in-memory wire and a virtual clock; B sends
 * 1 MiB to A while the wire loses a share of the frames towards A (seeded, so every run is the
 * same). B's side of the wire is captured to a pcap and B's TCP writes its event log, then both
 * are drawn: the time-sequence graph of the capture and B's cwnd/ssthresh/srtt over time. No
 * root, no device: the same pictures `tapstack plot` draws from a real run.
 *
 *   npx tsx examples/15-plot-a-transfer.ts                 # 1% loss, files in a new temporary folder
 *   npx tsx examples/15-plot-a-transfer.ts --drop 0 --out /tmp/clean
 *
 * Open the two .svg files in a browser. Redraw them, or another run's, with
 * `npx tsx packages/stack/src/main.ts plot FILE.pcap > seq.svg` and `... plot --tcp-log FILE > cwnd.svg`.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FaultInjector, MacAddress, MemoryLink, MemoryPcapSink, PcapWriter, VirtualClock, readPcap, withCapture } from '@tapstack/link';
import { jsonLinesSink } from '@tapstack/tcp';
import { createStack, dataDirection, readTcpLog, tcpLogSvg, tcpSeries, timeSequenceSvg } from '@tapstack/stack';

const { values } = parseArgs({
  options: {
    drop: { type: 'string', default: '0.01' },
    bytes: { type: 'string', default: String(1024 * 1024) },
    seed: { type: 'string', default: '3' },
    out: { type: 'string' },
  },
});
const out = values.out ?? mkdtempSync(join(tmpdir(), 'tapstack-plot-'));
mkdirSync(out, { recursive: true });

// The wire: 5 ms each way, frames towards A lost with probability --drop. B's end is captured,
// stamped with the virtual clock (microseconds), so the graph's time axis is the simulation's.
const clock = new VirtualClock();
const [wireA, wireB] = MemoryLink.pair({ clock, latencyMs: 5, macs: [MacAddress.parse('02:00:00:00:0a:01'), MacAddress.parse('02:00:00:00:0b:02')] });
const lossy = new FaultInjector(wireA, { drop: Number(values.drop), direction: 'rx', seed: Number(values.seed) });
const pcap = new MemoryPcapSink();
const captured = withCapture(wireB, new PcapWriter(pcap, { now: () => Math.round(clock.now() * 1000) }));
const log: string[] = [];
const a = createStack({ link: lossy, ip: '10.0.0.1/24', clock, arp: { announce: false } });
const b = createStack({ link: captured, ip: '10.0.0.2/24', clock, arp: { announce: false }, tcp: { tcpLog: jsonLinesSink((line) => log.push(line)) } });

// B sends the bytes to whoever connects to port 80; A connects and reads to the end.
const data = Buffer.alloc(Number(values.bytes), 'x');
b.tcp.createServer((socket) => socket.end(data)).listen(80);
const socket = a.tcp.connect({ host: '10.0.0.2', port: 80 });
let received = 0;
let ended = false;
socket.on('data', (chunk: Buffer) => (received += chunk.length));
socket.on('end', () => {
  ended = true;
  socket.end();
});
// Virtual time moves only when told: a millisecond at a time, letting the streams run in between.
while (!ended && clock.now() < 600_000) {
  clock.advance(1);
  await new Promise((resolve) => setImmediate(resolve));
}
clock.advance(100); // the last FIN and ACK

const capture = tcpSeries(readPcap(pcap.bytes()));
const connection = capture.connections[0]!;
const direction = dataDirection(connection);
writeFileSync(join(out, 'transfer.pcap'), pcap.bytes());
writeFileSync(join(out, 'tcp-log.jsonl'), log.join(''));
writeFileSync(join(out, 'time-sequence.svg'), timeSequenceSvg([{ title: `1 MiB from B to A, ${Number(values.drop) * 100}% of frames towards A lost`, series: direction }]));
writeFileSync(join(out, 'cwnd.svg'), tcpLogSvg(readTcpLog(log.join('')).connections.filter((c) => c.local === '10.0.0.2:80')));
console.log(
  `A received ${received} bytes in ${(clock.now() / 1000).toFixed(3)} s of virtual time; the wire lost ${lossy.faultCounters.get('dropped')} frames\n` +
    `B's capture: ${direction.segments.length} data segments, ${direction.retransmissions.length} retransmitted, ${direction.sacks.length} ACKs with SACK blocks\n` +
    `B's TCP counted ${b.tcp.counters.get('RetransSegs')} retransmissions (RetransSegs) and logged ${log.length} events\n` +
    `wrote ${['transfer.pcap', 'tcp-log.jsonl', 'time-sequence.svg', 'cwnd.svg'].map((f) => join(out, f)).join(', ')}`,
);
a.close();
b.close();
