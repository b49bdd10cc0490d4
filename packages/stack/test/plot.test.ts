/**
 * `tapstack plot` cannot lie: the series it draws are checked against what tshark says about the
 * kernel's captures (the figures below are tshark's, and test/plot.e2e.test.ts asks tshark again
 * for every linux-tcp-* capture), the SVG is checked for one mark per retransmission, the SVG
 * writer against a tiny literal series, and a simulated lossy transfer against the sender's own
 * counters and event log.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FaultInjector, MacAddress, MemoryLink, MemoryPcapSink, PcapWriter, VirtualClock, readPcap, withCapture, type FaultOptions, type PcapRecord } from '@tapstack/link';
import { jsonLinesSink } from '@tapstack/tcp';
import { createStack } from '../src/stack.ts';
import { readTcpLog, tcpLogSvg } from '../src/plot/tcp-log-chart.ts';
import { dataDirection, tcpSeries, type DirectionSeries } from '../src/plot/tcp-series.ts';
import { timeSequenceSvg } from '../src/plot/time-sequence.ts';
import { niceTicks } from '../src/plot/svg.ts';
import { fixtureNames, readFixture } from '../../../test/support/fixtures.ts';

/** How many elements of the SVG carry exactly this class. */
function marks(svg: string, className: string): number {
  return svg.split(`class="${className}"`).length - 1;
}

describe('tcpSeries on the kernel bulk transfer with loss (linux-tcp-bulk-loss.pcap)', () => {
  const capture = tcpSeries(readFixture('linux-tcp-bulk-loss.pcap'));

  it('finds one connection, 300000 bytes from the server 10.0.0.2:5001, every frame used', () => {
    expect(capture.connections).toHaveLength(1);
    expect(capture.skipped).toEqual({});
    const c = capture.connections[0]!;
    expect(c.frames).toBe(282);
    const d = dataDirection(c);
    expect(d.from).toBe('10.0.0.2:5001');
    expect(d.to).toBe('10.0.0.1:50576');
    // 300000 bytes + SYN + FIN: the highest relative sequence number is 300002 (tshark: the FIN at 300001).
    expect(d.highestSeq).toBe(300_002);
    expect(d.synSeen).toBe(true);
    expect(d.windowScale).toBe(10); // the client's SYN offered wscale 10, the server's too
  });

  it('8 retransmitted segments, the frames tshark flags (tcp.analysis.retransmission || tcp.analysis.out_of_order)', () => {
    // tshark -r linux-tcp-bulk-loss.pcap -Y 'tcp.analysis.retransmission || tcp.analysis.out_of_order' -T fields -e frame.number
    const d = dataDirection(capture.connections[0]!);
    expect(d.retransmissions.map((r) => r.frame)).toEqual([71, 87, 170, 172, 227, 229, 245, 249]);
    expect(d.retransmissions.every((r) => r.length === 1448)).toBe(true);
    // tshark's relative sequence numbers of the first two (tcp.seq): 20273 and 43441
    expect(d.retransmissions.slice(0, 2).map((r) => r.seq)).toEqual([20273, 43441]);
    expect(capture.connections[0]!.forward.retransmissions).toEqual([]);
  });

  it('SACK blocks in 35 ACKs, the frames tshark finds with tcp.options.sack_le', () => {
    const d = dataDirection(capture.connections[0]!);
    expect(d.sacks.map((s) => s.frame)).toEqual([
      38, 39, 40, 41, 42, 55, 56, 57, 58, 59, 70, 72, 73, 75, 77, 80, 82, 84, 86, 88, 135, 136, 137, 138, 141, 169, 171, 226, 228, 230, 231, 244, 246, 247, 248,
    ]);
    // Each block lies above the ACK that carried it (data held beyond a hole), inside what was sent.
    for (const s of d.sacks) {
      const ack = d.acks.find((a) => a.frame === s.frame)!;
      for (const b of s.blocks) {
        expect(b.left).toBeGreaterThan(ack.ack);
        expect(b.right).toBeGreaterThan(b.left);
        expect(b.right).toBeLessThanOrEqual(d.highestSeq);
      }
    }
  });

  it('the SVG has exactly one retransmission mark per retransmitted segment, and a bar for every other segment', () => {
    const d = dataDirection(capture.connections[0]!);
    const svg = timeSequenceSvg([{ title: 'bulk', series: d }]);
    expect(marks(svg, 'retransmission')).toBe(8);
    expect(marks(svg, 'segment')).toBe(d.segments.length - 8);
    expect(marks(svg, 'sack')).toBe(d.sacks.reduce((n, s) => n + s.blocks.length, 0));
    expect(marks(svg, 'ack')).toBe(1);
    expect(marks(svg, 'window')).toBe(1);
    expect(svg).toContain('311584 data bytes in 220 segments, 8 retransmitted, 35 ACKs with SACK blocks');
  });
});

describe('tcpSeries on every linux-tcp-* capture', () => {
  const names = fixtureNames().filter((n) => n.startsWith('linux-tcp-'));

  it.each(names)('%s: parses without error, every frame used, one connection', (name) => {
    const capture = tcpSeries(readFixture(name));
    expect(capture.skipped).toEqual({});
    expect(capture.connections).toHaveLength(1);
    const svg = timeSequenceSvg([{ title: name, series: dataDirection(capture.connections[0]!) }]);
    expect(svg.startsWith('<?xml')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  });

  it('the zero-window capture: its tail-loss probe (frame 8) is the one retransmission, its D-SACK (frame 9) the one SACK; the 0-byte window probes are not retransmissions', () => {
    const d = dataDirection(tcpSeries(readFixture('linux-tcp-zero-window.pcap')).connections[0]!);
    expect(d.retransmissions.map((r) => r.frame)).toEqual([8]);
    expect(d.sacks.map((s) => s.frame)).toEqual([9]);
    expect(d.windowScale).toBe(0); // the receiver asked for wscale 0
    // The window closes: some ACK offers nothing beyond itself.
    expect(d.acks.some((a) => a.windowEdge === a.ack)).toBe(true);
  });

  it('the HTTP capture: data both ways, the server direction carries more', () => {
    const c = tcpSeries(readFixture('linux-tcp-http-get.pcap')).connections[0]!;
    expect(c.forward.bytes).toBe(82);
    expect(c.reverse.bytes).toBe(231);
    expect(dataDirection(c)).toBe(c.reverse);
  });
});

describe('tcpSeries never throws on what it reads', () => {
  const bulk = readFixture('linux-tcp-bulk-loss.pcap');

  it('non-TCP frames are skipped and counted by reason', () => {
    const capture = tcpSeries(readFixture('linux-arp-and-ping.pcap'));
    expect(capture.connections).toEqual([]);
    expect(capture.skipped).toEqual({ not_ipv4: 2, not_tcp: 4 });
  });

  it('frames cut to any length, and random bytes, are skipped or used, never thrown on (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(bulk.length - 1), fc.nat(100), fc.uint8Array({ maxLength: 80 }))), (cuts) => {
        const records: PcapRecord[] = cuts.map(([i, keep, noise]) => {
          const r = bulk[i]!;
          const frame = new Uint8Array([...r.frame.subarray(0, keep), ...noise]);
          return { timestampUs: r.timestampUs, frame, originalLength: r.originalLength };
        });
        const capture = tcpSeries(records);
        for (const c of capture.connections) expect(() => timeSequenceSvg([{ title: 'x', series: dataDirection(c) }])).not.toThrow();
      }),
    );
  });

  it('a capture cut by a snap length (tcpdump -s 96) gives the same series: the lengths come from the IP header', () => {
    const cut = bulk.map((r) => ({ ...r, frame: r.frame.subarray(0, 96) }));
    const whole = dataDirection(tcpSeries(bulk).connections[0]!);
    const headersOnly = dataDirection(tcpSeries(cut).connections[0]!);
    expect(headersOnly.segments).toEqual(whole.segments);
    expect(headersOnly.retransmissions.length).toBe(8);
  });

  it('sequence numbers unwrap past 2^32: a transfer across the wrap keeps climbing', () => {
    // Two segments of 1000 bytes either side of the wrap, hand-made from the fixture's first data frame.
    const template = bulk.find((r) => r.frame.length > 1000)!;
    const at = (seq: number, t: number): PcapRecord => {
      const frame = new Uint8Array(template.frame);
      new DataView(frame.buffer).setUint32(14 + 20 + 4, seq >>> 0);
      return { timestampUs: t, frame, originalLength: frame.length };
    };
    const d = dataDirection(tcpSeries([at(0xffffff00, 0), at(0xffffff00 + 1448, 1000)]).connections[0]!);
    expect(d.segments.map((s) => s.seq)).toEqual([0, 1448]);
    expect(d.retransmissions).toEqual([]);
  });
});

describe('timeSequenceSvg on a tiny literal series', () => {
  // Two segments, the first sent again at 2 s; ACKs at 0.5, 1.5 (a duplicate, with a SACK block) and 2.5 s.
  const series: DirectionSeries = {
    from: '10.0.0.2:80',
    to: '10.0.0.1:40000',
    segments: [
      { time: 0, seq: 1, length: 1000, retransmission: false, frame: 1 },
      { time: 1, seq: 1001, length: 1000, retransmission: false, frame: 2 },
      { time: 2, seq: 1, length: 1000, retransmission: true, frame: 4 },
    ],
    acks: [
      { time: 0.5, ack: 1, windowEdge: 5001, frame: 3 },
      { time: 1.5, ack: 1, windowEdge: 5001, frame: 5 },
      { time: 2.5, ack: 2001, windowEdge: 6001, frame: 6 },
    ],
    sacks: [{ time: 1.5, blocks: [{ left: 1001, right: 2001 }], frame: 5 }],
    retransmissions: [{ time: 2, seq: 1, length: 1000, retransmission: true, frame: 4 }],
    bytes: 3000,
    highestSeq: 2001,
    synSeen: true,
    windowScale: 7,
  };
  const svg = timeSequenceSvg([{ title: 'a < b & "c"', series }]);

  // The plot area is x 84..936, y 64..492 (960 x 540). Time 0..2.55 s (the last event, 2.5 s, plus 2%);
  // sequence 1..2501 (the data reaches 2001; the window line, up to 6001, may add a quarter more).
  // So x(t) = 84 + t * 852 / 2.55 and y(s) = 492 - (s - 1) * 428 / 2500.
  it('draws each segment as a bar from seq to seq + length at its time, the retransmission in its own class', () => {
    expect(svg).toContain('<path class="segment" d="M84 492V320.8M82 320.8h4"/>');
    expect(svg).toContain('<path class="segment" d="M418.1 320.8V149.6M416.1 149.6h4"/>');
    expect(svg).toContain('<path class="retransmission" d="M752.2 492V320.8M748.2 316.8l8 8m0 -8l-8 8"/>');
    expect(marks(svg, 'segment')).toBe(2);
    expect(marks(svg, 'retransmission')).toBe(1);
  });

  it('draws the ACK and window lines as stairs to the right edge, and the SACK block beside its ACK', () => {
    expect(svg).toContain('<path class="ack" d="M251.1 492H585.2V492H919.3V149.6H936"/>');
    // The window edge 5001 and 6001 are above the graph's top (2501): drawn, and clipped.
    expect(svg).toContain('<path class="window" d="M251.1 -364H585.2V-364H919.3V-535.2H936"/>');
    expect(svg).toContain('<line class="sack" x1="587.2" y1="320.8" x2="587.2" y2="149.6"/>');
    expect(svg).toContain('clip-path="url(#time-sequence-1)"');
  });

  it('has the axis labels, round ticks, a legend and an escaped title', () => {
    expect(svg).toContain('>time (s)</text>');
    expect(svg).toContain('>relative sequence number (bytes)</text>');
    for (const t of ['0', '0.5', '1', '1.5', '2', '2.5', '500', '1k', '1.5k', '2k', '2.5k']) expect(svg).toContain(`>${t}</text>`);
    for (const c of ['segment', 'retransmission', 'ack', 'window', 'sack']) expect(marks(svg, `legend-${c}`)).toBe(1);
    expect(svg).toContain('>a &lt; b &amp; &quot;c&quot;</text>');
    expect(svg).toContain('3000 data bytes in 3 segments, 1 retransmitted, 1 ACKs with SACK blocks, window scale 7');
  });

  it('a time range draws only what happened in it, the ACK line starting from the ACK in force', () => {
    const part = timeSequenceSvg([{ title: 't', series, timeRange: [1.2, 2.2] }]);
    expect(marks(part, 'segment')).toBe(0);
    expect(marks(part, 'retransmission')).toBe(1);
    expect(marks(part, 'sack')).toBe(1);
    // x(t) = 84 + (t - 1.2) * 852; the ACK of 0.5 s (ack 1) is carried to 1.2 s, the left edge;
    // the sequence axis still reaches 2501 (the SACK block's 2001, a quarter more for the window).
    expect(part).toContain('<path class="ack" d="M84 492H339.6V492H936"/>');
    expect(part).toContain('<line class="sack" x1="341.6" y1="320.8" x2="341.6" y2="149.6"/>');
    expect(part).toContain('; showing 1.2 to 2.2 s');
    expect(part).toContain('>1.2</text>');
  });

  it('niceTicks picks steps of 1, 2 or 5 times a power of ten', () => {
    expect(niceTicks(0, 2.55, 8)).toEqual([0, 0.5, 1, 1.5, 2, 2.5]);
    expect(niceTicks(1, 2501, 7)).toEqual([500, 1000, 1500, 2000, 2500]);
    expect(niceTicks(0, 0.037, 8)).toEqual([0, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035]);
  });
});

/**
 * B (10.0.0.2, port 80) sends `bytes` to A (10.0.0.1) over a 5 ms wire on the virtual clock,
 * with the `faults` on A's side of it (what B sends towards A), B's --tcp-log in `lines` and
 * what B's side of the wire carries in `pcap`; resolves when A has read to the end (or after
 * 120 s of virtual time), with how much it read. The caller closes the stacks.
 */
async function transferFromB(faults: FaultOptions, bytes: number) {
  const clock = new VirtualClock();
  const [wireA, wireB] = MemoryLink.pair({ clock, latencyMs: 5, macs: [MacAddress.parse('02:00:00:00:0a:01'), MacAddress.parse('02:00:00:00:0b:02')] });
  const faulty = new FaultInjector(wireA, faults);
  const pcap = new MemoryPcapSink();
  const captured = withCapture(wireB, new PcapWriter(pcap, { now: () => Math.round(clock.now() * 1000) }));
  const lines: string[] = [];
  const a = createStack({ link: faulty, ip: '10.0.0.1/24', clock, arp: { announce: false } });
  const b = createStack({ link: captured, ip: '10.0.0.2/24', clock, arp: { announce: false }, tcp: { tcpLog: jsonLinesSink((l) => lines.push(l)) } });
  const data = Buffer.alloc(bytes, 7);
  b.tcp
    .createServer((s) => {
      s.on('error', () => {}); // ECONNABORTED when the test closes the stacks
      s.end(data);
    })
    .listen(80);
  const socket = a.tcp.connect({ host: '10.0.0.2', port: 80 });
  let received = 0;
  let ended = false;
  socket.on('data', (c: Buffer) => (received += c.length));
  socket.on('end', () => (ended = true));
  socket.on('error', () => {});
  while (!ended && clock.now() < 120_000) {
    clock.advance(1);
    await new Promise((r) => setImmediate(r));
  }
  return { a, b, faulty, pcap, lines, received };
}

describe('a simulated lossy transfer: the capture, the counters and the event log agree', () => {
  it('the series finds every retransmission the sender counted and logged, and the cwnd graph marks each', async () => {
    const { a, b, faulty: lossy, pcap: sink, lines, received } = await transferFromB({ drop: 0.02, direction: 'rx', seed: 5 }, 256 * 1024);
    expect(received).toBe(256 * 1024);
    expect(lossy.faultCounters.get('dropped')).toBeGreaterThan(0);

    const d = dataDirection(tcpSeries(readPcap(sink.bytes())).connections[0]!);
    const counted = b.tcp.counters.get('RetransSegs');
    expect(counted).toBeGreaterThan(0);
    expect(d.retransmissions.length).toBe(counted);
    const log = readTcpLog(lines.join(''));
    expect(log.badLines).toBe(0);
    const server = log.connections.filter((c) => c.local === '10.0.0.2:80');
    expect(server).toHaveLength(1);
    const logged = server[0]!.events.filter((e) => e.event === 'retransmit');
    expect(logged.length).toBe(counted);
    // The same segments: the log's relative sequence numbers are the capture's.
    expect(logged.map((e) => e.seq)).toEqual(d.retransmissions.map((r) => r.seq));
    expect(marks(tcpLogSvg(server), 'retransmission')).toBe(counted);
    expect(marks(timeSequenceSvg([{ title: 't', series: d }]), 'retransmission')).toBe(counted);
    a.close();
    b.close();
  });

  it('a wire that reorders: each undo the sender counted is in the log and is a marker on the cwnd line, at the window after it', async () => {
    const { a, b, lines, received } = await transferFromB({ reorder: 0.02, direction: 'rx', seed: 3 }, 512 * 1024);
    expect(received).toBe(512 * 1024);
    const c = b.tcp.counters;
    const counted = c.get('TCPDSACKUndo') + c.get('TCPFullUndo') + c.get('TCPPartialUndo') + c.get('TCPLossUndo');
    expect(counted).toBeGreaterThan(0);
    const log = readTcpLog(lines.join(''));
    expect(log.badLines).toBe(0);
    const server = log.connections.filter((conn) => conn.local === '10.0.0.2:80');
    const undos = server[0]!.events.filter((e) => e.event === 'undo');
    expect(undos.length).toBe(counted);
    const svg = tcpLogSvg(server);
    expect(marks(svg, 'undo')).toBe(counted);
    expect(marks(svg, 'undo-jump')).toBe(counted);
    expect(svg).toContain(`${counted} undone`);
    // each marker names its undo and the window it restored
    for (const u of undos) expect(svg).toContain(`<title>undo (${u.undo}): cwnd ${u.cwndBefore} to ${u.cwndAfter}</title>`);
    a.close();
    b.close();
  });

  it('an undo line without its windows is not a record (the marker could not be drawn)', () => {
    const undo = '{"t":0.1,"event":"undo","local":"10.0.0.2:80","remote":"10.0.0.1:1","state":"ESTABLISHED","undo":"dsack","cwndBefore":7000,"ssthreshBefore":5000,"cwndAfter":14000,"ssthreshAfter":null,"cwnd":14000,"ssthresh":null,"srtt":1,"rttvar":0.5,"rto":200,"inflight":0}';
    const log = readTcpLog([undo, undo.replace('"cwndBefore":7000,', ''), undo.replace('"undo":"dsack",', '')].join('\n'));
    expect(log.badLineNumbers).toEqual([2, 3]);
    expect(marks(tcpLogSvg(log.connections), 'undo')).toBe(1);
  });

  it('an undo and a new recovery at one instant (undo, recovery-exit, recovery-enter): two shaded bands, the first ending and the second starting there', () => {
    const at = (t: number, event: string, extra = ''): string =>
      `{"t":${t},"event":"${event}","local":"10.0.0.2:80","remote":"10.0.0.1:1","state":"ESTABLISHED",${extra}"cwnd":14000,"ssthresh":7000,"srtt":10,"rttvar":5,"rto":200,"inflight":7000}`;
    const lines = [
      at(0, 'open'),
      at(0.1, 'recovery-enter'),
      at(0.2, 'undo', '"undo":"partial","cwndBefore":7000,"ssthreshBefore":7000,"cwndAfter":14000,"ssthreshAfter":null,'),
      at(0.2, 'recovery-exit'),
      at(0.2, 'recovery-enter'),
      at(0.3, 'recovery-exit'),
      at(0.4, 'cwnd'),
    ];
    const svg = tcpLogSvg(readTcpLog(lines.join('\n')).connections, { width: 800 });
    const bands = [...svg.matchAll(/<rect class="recovery" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(bands).toHaveLength(2);
    const [first, second] = bands as [number[], number[]];
    // the first band ends where the second begins (the undo's instant), and they are equally wide (0.1 s each)
    expect(first[0]! + first[1]!).toBeCloseTo(second[0]!, 1);
    expect(first[1]!).toBeCloseTo(second[1]!, 1);
    expect(svg).toContain('2 fast recoveries, 1 undone');
  });

  it('readTcpLog skips lines that are not records and says which', () => {
    const good = '{"t":0,"event":"open","local":"10.0.0.2:80","remote":"10.0.0.1:1","state":"SYN-RECEIVED","cwnd":14480,"ssthresh":null,"srtt":null,"rttvar":null,"rto":1000,"inflight":0}';
    const log = readTcpLog([good, 'not json', '{"t":"soon"}', '', good.replace('"open"', '"cwnd"')].join('\n'));
    expect(log.badLines).toBe(2);
    expect(log.badLineNumbers).toEqual([2, 3]);
    expect(log.connections).toHaveLength(1);
    expect(log.connections[0]!.events.map((e) => e.event)).toEqual(['open', 'cwnd']);
  });
});
