/**
 * `tapstack plot` against tshark, and on a real transfer.
 *
 *   fixtures: for every kernel capture linux-tcp-*.pcap, the segments our series calls
 *             retransmissions are the frames tshark flags (tcp.analysis.retransmission ||
 *             tcp.analysis.out_of_order), and the ACKs with SACK blocks are the frames with
 *             tcp.options.sack_le; the command prints those counts and draws one mark each.
 *   pcapng:   the same capture converted by editcap plots the same.
 *   transfer: `tapstack up --http 80 --pcap --tcp-log` in a namespace, curl fetching 2 MB with
 *             2% loss each way (../shared/tools/link-loss.sh); our capture, tshark, the counters
 *             and the event log agree on the retransmissions, and both graphs draw them; the
 *             kernel's own capture of it (tcpdump -i any: Linux cooked frames) plots as well.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCapture, readPcap } from '@tapstack/link';
import { dataDirection, tcpSeries } from '../packages/stack/src/plot/tcp-series.ts';
import { readTcpLog } from '../packages/stack/src/plot/tcp-log-chart.ts';
import { FIXTURE_DIR, fixtureNames } from './support/fixtures.ts';
import { requireE2eCapabilities, requireTools } from './support/netns.ts';
import { perTest } from './support/per-test.ts';
import { tsharkFrames } from './support/tshark.ts';
import { parseCounters, repoRoot, spawnTapstack, tapstackBin } from './support/watch.ts';

const { namespace, tempDir, defer } = perTest('plot');
const LINK_LOSS = join(repoRoot, '..', 'shared', 'tools', 'link-loss.sh');

/** In one tshark run: the frames it calls retransmissions (or out-of-order), and those with SACK blocks. */
function tsharkAnalysis(file: string): { retransmissions: number[]; sacks: number[] } {
  const out = execFileSync(
    'tshark',
    ['-r', file, '-T', 'fields', '-E', 'separator=/t', '-e', 'frame.number', '-e', 'tcp.analysis.retransmission', '-e', 'tcp.analysis.out_of_order', '-e', 'tcp.options.sack_le'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const rows = out.split('\n').filter(Boolean).map((l) => l.split('\t'));
  return {
    retransmissions: rows.filter((r) => r[1] || r[2]).map((r) => Number(r[0])),
    sacks: rows.filter((r) => r[3]).map((r) => Number(r[0])),
  };
}

const RETRANSMISSION = 'tcp.analysis.retransmission || tcp.analysis.out_of_order';

function plot(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [tapstackBin, 'plot', ...args], { cwd: repoRoot, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const marks = (svg: string, className: string): number => svg.split(`class="${className}"`).length - 1;

beforeAll(() => requireTools(['tshark']));

describe('the series against tshark, on the kernel captures', () => {
  const names = fixtureNames().filter((n) => n.startsWith('linux-tcp-'));

  it.each(names)('%s: the same retransmitted segments and the same ACKs with SACK blocks as tshark', (name) => {
    const file = join(FIXTURE_DIR, name);
    const capture = tcpSeries(readPcap(readFileSync(file)));
    const ours = capture.connections.flatMap((c) => [...c.forward.retransmissions, ...c.reverse.retransmissions].map((r) => r.frame)).sort((a, b) => a - b);
    const sacks = capture.connections.flatMap((c) => [...c.forward.sacks, ...c.reverse.sacks].map((s) => s.frame)).sort((a, b) => a - b);
    const tshark = tsharkAnalysis(file);
    expect(ours).toEqual(tshark.retransmissions);
    expect(sacks).toEqual(tshark.sacks);
  });

  it('the bulk transfer with loss: 8 retransmitted segments and 35 ACKs with SACK blocks, as tshark counts, and 8 marks in the SVG', () => {
    const file = join(FIXTURE_DIR, 'linux-tcp-bulk-loss.pcap');
    const tshark = tsharkAnalysis(file);
    expect(tshark.retransmissions).toHaveLength(8);
    expect(tshark.sacks).toHaveLength(35);
    const run = plot([file]);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toContain('connection 1: 10.0.0.2:5001 > 10.0.0.1:50576, 311584 data bytes in 220 segments, 8 retransmitted, 35 ACKs with SACK blocks');
    expect(marks(run.stdout, 'retransmission')).toBe(8);
    expect(run.stdout).toMatch(/^<\?xml[^]*<\/svg>\n$/);
  });

  it('reads pcapng too: the same capture converted by editcap gives the same counts', () => {
    const dir = tempDir();
    const ng = join(dir, 'bulk.pcapng');
    execFileSync('editcap', ['-F', 'pcapng', join(FIXTURE_DIR, 'linux-tcp-bulk-loss.pcap'), ng]);
    expect(readFileSync(ng).readUInt32LE(0)).toBe(0x0a0d0d0a);
    const run = plot([ng]);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toContain('311584 data bytes in 220 segments, 8 retransmitted, 35 ACKs with SACK blocks');
    expect(marks(run.stdout, 'retransmission')).toBe(8);
  });

  it('says what it cannot draw: a connection that is not there, a file that is not a capture', () => {
    const file = join(FIXTURE_DIR, 'linux-tcp-bulk-loss.pcap');
    const none = plot([file, '--conn', '2']);
    expect(none.status).toBe(1);
    expect(none.stderr).toContain('--conn 2: ');
    expect(none.stderr).toContain('has 1 TCP connection (1-1)');
    const notPcap = plot([join(FIXTURE_DIR, 'README.md')]);
    expect(notPcap.status).toBe(1);
    expect(notPcap.stderr).toMatch(/not a pcap or pcapng file/);
    expect(notPcap.stdout).toBe('');
  });
});

/** Polls a capture tcpdump is writing (-U) until the server's data direction, FIN included, is acknowledged. */
async function untilAcknowledged(file: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = 'nothing readable';
  for (;;) {
    let finished = false;
    try {
      const connections = tcpSeries(readCapture(readFileSync(file))).connections;
      const d = connections.length === 1 ? dataDirection(connections[0]!) : undefined;
      finished = d !== undefined && d.highestSeq > 2_000_000 && d.acks.some((a) => a.ack >= d.highestSeq);
      const acked = d?.acks.reduce((most, a) => Math.max(most, a.ack), 0);
      seen = `${connections.length} connection(s); our highest sequence ${d?.highestSeq}, the kernel's highest ACK ${acked}`;
    } catch {
      // tcpdump may be half-way through writing a record: read again on the next round
    }
    if (finished) return;
    if (Date.now() > deadline) throw new Error(`the kernel's capture never showed the whole transfer acknowledged within ${timeoutMs} ms: ${seen}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a real transfer: tapstack up --pcap --tcp-log, curl, 2% loss each way', () => {
  it('the capture, tshark, the counters and the event log agree on every retransmission, and both graphs mark them', async () => {
    requireE2eCapabilities();
    if (!existsSync(LINK_LOSS)) throw new Error(`${LINK_LOSS} is missing: the test uses the shared link-loss tool`);
    const ns = namespace('plot-loss');
    const dir = tempDir();
    const pcap = join(dir, 'run.pcap');
    const log = join(dir, 'tcp.jsonl');
    // --no-vnet-hdr: the checks read single frames and segments on the wire, not 64 KB super-frames
    const up = spawnTapstack(ns, ['up', '--no-vnet-hdr', '--tap', 'tap0', '--ip', '10.0.0.2/24', '--host-ip', '10.0.0.1/24', '--http', '80', '--pcap', pcap, '--tcp-log', log]);
    defer(() => void up.stop('SIGKILL'));
    await up.waitFor(/http on 10\.0\.0\.2:80/);
    // The kernel's view too: tcpdump -i any writes Linux cooked frames (SLL or SLL2), not Ethernet.
    const kernelPcap = join(dir, 'kernel.pcap');
    const tcpdump = ns.spawn('tcpdump', ['-i', 'any', '--immediate-mode', '-U', '-w', kernelPcap, 'tcp port 80'], { stdio: ['ignore', 'ignore', 'pipe'] });
    defer(() => tcpdump.kill('SIGKILL'));
    await new Promise<void>((resolve, reject) => {
      let said = '';
      tcpdump.stderr!.on('data', (b: Buffer) => {
        said += b.toString();
        if (said.includes('listening on')) resolve();
      });
      tcpdump.on('exit', () => reject(new Error(`tcpdump ended: ${said}`)));
    });
    ns.exec('bash', [LINK_LOSS, 'tap0', '2']);
    const curl = await ns.run('curl', ['-s', '-S', '-m', '60', '-o', '/dev/null', '-w', '%{size_download}', 'http://10.0.0.2/bytes/2000000'], 70_000);
    expect(curl.status, curl.stderr).toBe(0);
    expect(curl.stdout).toBe('2000000');
    ns.exec('bash', [LINK_LOSS, 'tap0', 'off']);
    // curl is done once it has the body, but our FIN (or a last segment) may have been lost and is
    // resent after that: wait until the kernel's capture shows all of our sequence space, FIN
    // included, acknowledged, so that it holds every segment our own capture does.
    // (45 s: once on a loaded machine 15 s were not enough; a lost FIN is resent with backoff)
    await untilAcknowledged(kernelPcap, 45_000);
    tcpdump.kill('SIGINT');
    await new Promise((r) => tcpdump.once('exit', r));
    const stopMark = up.output.length;
    expect(await up.stop('SIGINT')).toMatchObject({ code: 0 });
    const counters = parseCounters(up.output.slice(stopMark));

    // Our capture holds every frame we sent (it is taken at the stack, before the loss).
    const capture = tcpSeries(readPcap(readFileSync(pcap)));
    const http = capture.connections.filter((c) => c.forward.to === '10.0.0.2:80' || c.forward.from === '10.0.0.2:80');
    expect(http).toHaveLength(1);
    const d = dataDirection(http[0]!);
    expect(d.from).toBe('10.0.0.2:80');
    expect(d.highestSeq).toBeGreaterThan(2_000_000);
    const retransmitted = d.retransmissions.length;
    expect(retransmitted).toBe(counters.get('tcp.RetransSegs') ?? 0);
    expect(d.retransmissions.map((r) => r.frame)).toEqual(tsharkFrames(pcap, `(${RETRANSMISSION} || tcp.analysis.spurious_retransmission) && tcp.srcport == 80`));

    // The event log: the same retransmissions, at the same relative sequence numbers.
    const events = readTcpLog(readFileSync(log, 'utf8'));
    expect(events.badLines).toBe(0);
    const ours = events.connections.filter((c) => c.local === '10.0.0.2:80');
    expect(ours).toHaveLength(1);
    const logged = ours[0]!.events.filter((e) => e.event === 'retransmit');
    expect(logged.map((e) => e.seq)).toEqual(d.retransmissions.map((r) => r.seq));
    expect(ours[0]!.events.at(-1)!.state).toBe('CLOSED');

    const seq = plot([pcap, '--conn', String(http[0]!.index)]);
    expect(seq.status, seq.stderr).toBe(0);
    expect(marks(seq.stdout, 'retransmission')).toBe(retransmitted);
    const cwnd = plot(['--tcp-log', log, '--conn', String(ours[0]!.index)]);
    expect(cwnd.status, cwnd.stderr).toBe(0);
    expect(marks(cwnd.stdout, 'retransmission')).toBe(retransmitted);

    // The kernel's capture: another link type, the same connection, every byte of it seen.
    const kernel = tcpSeries(readCapture(readFileSync(kernelPcap)));
    expect(kernel.connections).toHaveLength(1);
    const k = dataDirection(kernel.connections[0]!);
    expect(k.from).toBe('10.0.0.2:80');
    expect(k.highestSeq).toBe(d.highestSeq);
    const kernelPlot = plot([kernelPcap]);
    expect(kernelPlot.status, kernelPlot.stderr).toBe(0);
    expect(kernelPlot.stderr).toContain('connection 1: 10.0.0.2:80 > 10.0.0.1:');
  }, 120_000);
});
