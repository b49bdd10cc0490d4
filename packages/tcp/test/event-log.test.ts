/**
 * The TCP event log (src/event-log.ts) on a simulated lossy transfer: two stacks on an in-memory
 * wire and a virtual clock, 1% of the frames towards the receiver dropped with a fixed seed, so
 * the run (and so every line of the log) is the same each time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { formatTcpLogEvent, jsonLinesSink, TcpEventLog, type TcpLogEvent } from '../src/event-log.ts';
import { established } from './harness.ts';
import { collect, IP_B, pair, pattern, runUntil, type Pair } from './support.ts';

let pairs: Pair[] = [];
afterEach(() => {
  for (const p of pairs.splice(0)) p.close();
});

const FIELDS = ['t', 'event', 'local', 'remote', 'state', 'cwnd', 'ssthresh', 'srtt', 'rttvar', 'rto', 'inflight'];
const SERVER = '10.0.0.2:80';

/** B serves `bytes` on port 80; A fetches them over a wire that drops `drop` of what reaches A (or reorders `reorder` of it). */
async function transfer(bytes: number, drop: number, tcpLog: (e: TcpLogEvent) => void, reorder = 0): Promise<Pair> {
  const p = pair({ faults: { drop, reorder, direction: 'rx', seed: 3 }, latencyMs: 5, tcp: { tcpLog } });
  pairs.push(p);
  const data = pattern(bytes);
  p.b.tcp
    .createServer((s) => {
      s.on('error', () => {});
      s.end(data);
    })
    .listen(80);
  const client = p.a.tcp.connect({ host: IP_B, port: 80 });
  const got = collect(client);
  await runUntil(p.clock, () => got.ended);
  expect(Buffer.compare(got.bytes(), Buffer.from(data))).toBe(0);
  client.end();
  // The server closed first: it waits 60 s in TIME-WAIT, then is forgotten (its CLOSED line).
  await runUntil(p.clock, () => p.b.tcp.connectionCount === 0, 70_000, 100);
  return p;
}

describe('tcpLog: one JSON line per connection event', () => {
  it('a lossy transfer: every line parses with the documented fields, the sender walks its states, and cwnd drops at the loss', async () => {
    const text: string[] = [];
    const p = await transfer(512 * 1024, 0.01, jsonLinesSink((line) => text.push(line)));
    expect(p.faultsA!.faultCounters.get('dropped')).toBeGreaterThan(0);
    const lines = text.join('').split('\n').filter(Boolean);
    const events = lines.map((l) => JSON.parse(l) as TcpLogEvent);
    for (const e of events) {
      for (const f of FIELDS) expect(e, `field ${f}`).toHaveProperty(f);
      expect(Number.isFinite(e.t)).toBe(true);
    }
    // Times never go back.
    for (let i = 1; i < events.length; i++) expect(events[i]!.t).toBeGreaterThanOrEqual(events[i - 1]!.t);

    const server = events.filter((e) => e.local === SERVER);
    expect(server[0]!.event).toBe('open');
    expect(server.filter((e) => e.event === 'state').map((e) => `${e.from}>${e.state}`)).toEqual([
      'SYN-RECEIVED>ESTABLISHED',
      'ESTABLISHED>FIN-WAIT-1',
      'FIN-WAIT-1>FIN-WAIT-2',
      'FIN-WAIT-2>TIME-WAIT',
      'TIME-WAIT>CLOSED',
    ]);
    // Every retransmission the sender counted is a line, and each one is below data already sent.
    const retransmits = server.filter((e) => e.event === 'retransmit');
    expect(retransmits.length).toBe(p.b.tcp.counters.get('RetransSegs'));
    expect(retransmits.length).toBeGreaterThan(0);
    for (const r of retransmits) expect(r.length).toBeGreaterThan(0);

    // The loss: where the sender first reacts (fast recovery or a timeout), ssthresh is set and
    // cwnd is below what it had reached before.
    const at = server.findIndex((e) => e.event === 'recovery-enter' || e.event === 'timeout');
    expect(at).toBeGreaterThan(0);
    const before = Math.max(...server.slice(0, at).map((e) => e.cwnd));
    const reaction = server[at]!;
    expect(reaction.ssthresh).not.toBeNull();
    expect(reaction.cwnd).toBeLessThan(before);
    expect(reaction.ssthresh!).toBeLessThan(before);
    // Before the loss, slow start: cwnd only grew, from the initial window of 10 segments.
    const early = server.slice(0, at).map((e) => e.cwnd);
    for (let i = 1; i < early.length; i++) expect(early[i]!).toBeGreaterThanOrEqual(early[i - 1]!);
    // RTT samples: each 'rtt' line carries the measurement and the smoothed value after it.
    const rtts = server.filter((e) => e.event === 'rtt');
    expect(rtts.length).toBeGreaterThan(10);
    for (const r of rtts) {
      expect(r.sample).toBeGreaterThanOrEqual(10); // two 5 ms hops at least
      expect(r.srtt).not.toBeNull();
    }
  });

  it('a clean transfer logs no retransmission, no recovery and no timeout, and the client side has its own lines', async () => {
    const events: TcpLogEvent[] = [];
    await transfer(64 * 1024, 0, (e) => events.push(e));
    expect(events.filter((e) => ['retransmit', 'recovery-enter', 'recovery-exit', 'timeout'].includes(e.event))).toEqual([]);
    const client = events.filter((e) => e.local !== SERVER);
    expect(client[0]!.event).toBe('open');
    expect(client[0]!.state).toBe('SYN-SENT');
    expect(client.some((e) => e.event === 'state' && e.state === 'ESTABLISHED')).toBe(true);
    // The client closed on a segment (LAST-ACK -> CLOSED): its CLOSED line is its last, and it is
    // not opened again by the segment that closed it.
    expect(client.filter((e) => e.event === 'open')).toHaveLength(1);
    expect(client.at(-1)).toMatchObject({ event: 'state', from: 'LAST-ACK', state: 'CLOSED' });
    expect(events.filter((e) => e.local === SERVER && e.event === 'open')).toHaveLength(1);
  });

  it('heavy loss both ways: every retransmission timeout and every retransmission the sender counted is a line', async () => {
    const events: TcpLogEvent[] = [];
    const p = pair({ faults: { drop: 0.15, direction: 'both', seed: 2 }, latencyMs: 5, tcp: { tcpLog: (e) => events.push(e) } });
    pairs.push(p);
    const data = pattern(256 * 1024);
    p.b.tcp
      .createServer((s) => {
        s.on('error', () => {});
        s.end(data);
      })
      .listen(80);
    const client = p.a.tcp.connect({ host: IP_B, port: 80 });
    client.on('error', () => {});
    const got = collect(client);
    await runUntil(p.clock, () => got.ended, 600_000, 5);
    const server = events.filter((e) => e.local === SERVER);
    const timeouts = server.filter((e) => e.event === 'timeout');
    expect(timeouts.length).toBeGreaterThan(0);
    expect(timeouts.length).toBe(p.b.tcp.counters.get('TCPTimeouts'));
    expect(server.filter((e) => e.event === 'retransmit').length).toBe(p.b.tcp.counters.get('RetransSegs'));
    // RFC 6298 5.5: each timeout at least doubles the RTO it fired with (up to the 120 s ceiling).
    for (const t of timeouts) expect(t.rto).toBeGreaterThanOrEqual(400);
  });

  it('a transfer over a wire that reorders: each undo the sender counted is an undo line, its window and threshold back up', async () => {
    const events: TcpLogEvent[] = [];
    const p = await transfer(512 * 1024, 0, (e) => events.push(e), 0.02);
    expect(p.faultsA!.faultCounters.get('reordered')).toBeGreaterThan(0);
    const undos = events.filter((e) => e.local === SERVER && e.event === 'undo');
    const c = p.b.tcp.counters;
    const counted = c.get('TCPDSACKUndo') + c.get('TCPFullUndo') + c.get('TCPPartialUndo') + c.get('TCPLossUndo');
    expect(counted).toBeGreaterThan(0);
    expect(undos.length).toBe(counted);
    for (const u of undos) {
      expect(['dsack', 'full', 'partial', 'loss']).toContain(u.undo);
      expect(u.cwndAfter!).toBeGreaterThanOrEqual(u.cwndBefore!);
      // null is "infinite": an undo never lowers ssthresh
      if (u.ssthreshAfter !== null) expect(u.ssthreshAfter!).toBeGreaterThanOrEqual(u.ssthreshBefore!);
      expect(u.cwnd).toBeGreaterThanOrEqual(u.cwndAfter!);
    }
    expect(undos.filter((u) => u.undo === 'dsack').length).toBe(c.get('TCPDSACKUndo'));
    // the client sent no data: nothing of its own to undo
    expect(events.filter((e) => e.local !== SERVER && e.event === 'undo')).toEqual([]);
  });

  it('an undo and a new recovery on one ACK: the log says undo, recovery-exit, recovery-enter, in that order (exact, virtual clock)', () => {
    // One connection driven by hand (harness.ts: MSS 988 with timestamps, RTT 10 ms). Segments
    // 0-9 go at t = 10 and 10-13 at t = 15; at t = 20 the peer SACKs 1-3, so RACK resends 0 and
    // recovery begins. At t = 21 the late original of 0 fills the hole (the ACK to 4 echoes its
    // TSval: a partial undo) and the same ACK SACKs 10-13, sent 5 ms after 4-9: those are lost
    // for RACK (5 ms > its 2.5 ms window), so a new recovery begins on that ACK.
    const MSS = 988;
    const seq = (i: number): number => 1001 + i * MSS;
    const h = established({ timestamps: true });
    const events: TcpLogEvent[] = [];
    const log = new TcpEventLog(h.clock, (e) => events.push(e));
    log.changed(h.connection);
    h.connection.write(new Uint8Array(10 * MSS));
    const original = h.take()[0]!.repr.options.timestamps!.value;
    h.clock.advance(5);
    h.connection.write(new Uint8Array(4 * MSS));
    expect(h.takeSeqs()).toEqual([seq(10), seq(11), seq(12), seq(13)]);
    h.clock.advance(5);
    h.ack(seq(0), [{ left: seq(1), right: seq(4) }], original);
    log.changed(h.connection);
    expect(h.takeSeqs()).toEqual([seq(0)]);
    h.clock.advance(1);
    h.ack(seq(4), [{ left: seq(10), right: seq(14) }], original);
    log.changed(h.connection);
    expect(h.counter('TCPPartialUndo')).toBe(1);
    expect(h.counter('TCPSackRecovery')).toBe(2);
    expect(h.connection.info().inRecovery).toBe(true);
    const episode = events.filter((e) => e.event === 'recovery-enter' || e.event === 'recovery-exit' || e.event === 'undo');
    expect(episode.map((e) => `${e.t * 1000} ${e.event}`)).toEqual(['10 recovery-enter', '11 undo', '11 recovery-exit', '11 recovery-enter']);
  });

  it('formats an undo record with its kind and the windows before and after it', () => {
    const line = formatTcpLogEvent({
      t: 0.25,
      event: 'undo',
      local: '10.0.0.2:80',
      remote: '10.0.0.1:41866',
      state: 'ESTABLISHED',
      undo: 'partial',
      cwndBefore: 7410,
      ssthreshBefore: 4940,
      cwndAfter: 14600,
      ssthreshAfter: null,
      cwnd: 18552,
      ssthresh: null,
      srtt: 10,
      rttvar: 5,
      rto: 200,
      inflight: 5928,
    });
    expect(line).toBe(
      '{"t":0.25,"event":"undo","local":"10.0.0.2:80","remote":"10.0.0.1:41866","state":"ESTABLISHED","undo":"partial","cwndBefore":7410,' +
        '"ssthreshBefore":4940,"cwndAfter":14600,"ssthreshAfter":null,"cwnd":18552,"ssthresh":null,"srtt":10,"rttvar":5,"rto":200,"inflight":5928}',
    );
  });

  it('formats a record as one JSON line, fields in the documented order', () => {
    const line = formatTcpLogEvent({
      t: 1.5,
      event: 'retransmit',
      local: '10.0.0.2:80',
      remote: '10.0.0.1:41866',
      state: 'ESTABLISHED',
      seq: 1449,
      length: 1448,
      cwnd: 14480,
      ssthresh: null,
      srtt: 1.25,
      rttvar: 0.5,
      rto: 201.25,
      inflight: 2896,
    });
    expect(line).toBe(
      '{"t":1.5,"event":"retransmit","local":"10.0.0.2:80","remote":"10.0.0.1:41866","state":"ESTABLISHED","seq":1449,"length":1448,' +
        '"cwnd":14480,"ssthresh":null,"srtt":1.25,"rttvar":0.5,"rto":201.25,"inflight":2896}',
    );
  });

  it('a sink that throws stops the log, not the connection', async () => {
    let calls = 0;
    const p = await transfer(64 * 1024, 0, () => {
      calls++;
      throw new Error('disk full');
    });
    expect(calls).toBe(2); // one per stack: each layer has its own log, and each stopped at its first record
    expect(p.b.tcp.connectionCount).toBe(0);
  });
});
