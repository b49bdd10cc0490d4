/**
 * ACK coalescing per received batch (what GRO gives Linux): in-order segments that arrive in one
 * batch get one ACK at its end; out-of-order data, filled holes and duplicates are acknowledged at
 * once (RFC 5681 4.2), with their SACK and D-SACK blocks; a window update the application's reads
 * make during the batch rides on the same ACK. On the virtual clock, with exact counts.
 */
import { describe, expect, it } from 'vitest';
import { TcpConnection, type TcpParams } from '../src/connection.ts';
import { TcpFlag } from '../src/header.ts';
import { ipv4 } from '@tapstack/link';
import { Harness, ISS, PEER_ISS } from './harness.ts';
import { IP_B, pair, runUntil } from './support.ts';
import type { TcpSocket } from '../src/socket.ts';

/** A host that runs receive batches the way TcpLayer does on a link's dispatcher. */
class BatchHarness extends Harness {
  inBatch = false;
  private due: TcpConnection[] = [];
  /** The application reads everything as it arrives (as a flowing socket does). */
  reading = false;

  deferAck(connection: TcpConnection): boolean {
    if (!this.inBatch) return false;
    this.due.push(connection);
    return true;
  }
  /** ...and answers each read with one byte (an echo server in a ping-pong). */
  answering = false;
  override dataArrived(): void {
    if (this.reading || this.answering) while (this.connection.read(1 << 20)) if (this.answering) this.connection.write(Uint8Array.of(1));
  }
  /** The segments of one batch go in, then the batch end: what went out during and after it. */
  batch(segments: [seq: number, length: number][]): { during: Acked[]; after: Acked[] } {
    this.inBatch = true;
    for (const [seq, length] of segments) this.peer(TcpFlag.ACK, DATA + seq, ISS + 1, new Uint8Array(length));
    const during = acks(this.take());
    this.inBatch = false;
    for (const c of this.due.splice(0)) c.flushAck();
    return { during, after: acks(this.take()) };
  }
}

interface Acked {
  ack: number;
  window: number;
  sack: [number, number][];
}
function acks(sent: ReturnType<Harness['take']>): Acked[] {
  return sent.map((s) => ({ ack: s.repr.ack - DATA, window: s.repr.window, sack: (s.repr.options.sackBlocks ?? []).map((b) => [b.left - DATA, b.right - DATA] as [number, number]) }));
}

/** The peer's first data byte. */
const DATA = PEER_ISS + 1;
const MSS = 1000;
const LOCAL = { address: ipv4('10.0.0.2'), port: 40000 };
const REMOTE = { address: ipv4('10.0.0.1'), port: 80 };

/** An established connection (peer MSS 1000, SACK, no timestamps, no window scaling) on a BatchHarness. */
function connection(params: Partial<TcpParams> = {}): BatchHarness {
  const h = new BatchHarness();
  h.connection = TcpConnection.connect(h, { local: LOCAL, remote: REMOTE, iss: ISS, localMss: 1460, params: { receiveBufferBytes: 16_000, receiveBufferAutotune: false, ...params } });
  h.connection.attach(h);
  h.clock.advance(10);
  h.peer(TcpFlag.SYN | TcpFlag.ACK, PEER_ISS, ISS + 1, undefined, { mss: MSS, sackPermitted: true });
  h.take();
  h.counts.clear();
  return h;
}

describe('ACK coalescing per received batch', () => {
  it('eight in-order segments in one batch: nothing during it, one ACK for all eight at its end', () => {
    const h = connection();
    const { during, after } = h.batch([0, 1, 2, 3, 4, 5, 6, 7].map((i) => [i * MSS, MSS]));
    expect(during).toEqual([]);
    expect(after).toEqual([{ ack: 8000, window: 8000, sack: [] }]);
    expect(h.counter('tx_acks_coalesced')).toBe(1);
    expect(h.counter('TCPPureAcks')).toBe(1);
  });

  it('a batch of 70 segments (70 kB): one ACK once 64 KB wait (GRO\'s limit), one for the rest at the end', () => {
    const h = connection({ receiveBufferBytes: 256 * 1024 });
    const { during, after } = h.batch(Array.from({ length: 70 }, (_, i): [number, number] => [i * MSS, MSS]));
    expect(during.map((a) => a.ack)).toEqual([66_000]);
    expect(after.map((a) => a.ack)).toEqual([70_000]);
  });

  it('without coalescing the same batch gets an ACK per two segments, at once', () => {
    const h = connection({ ackCoalescing: false });
    const { during, after } = h.batch([0, 1, 2, 3, 4, 5, 6, 7].map((i) => [i * MSS, MSS]));
    expect(during.map((a) => a.ack)).toEqual([2000, 4000, 6000, 8000]);
    expect(after).toEqual([]);
  });

  it('one segment in a batch waits for the delayed-ACK timer (40 ms), as before; with quickAck it goes at the batch end', () => {
    const h = connection();
    expect(h.batch([[0, MSS]])).toEqual({ during: [], after: [] });
    h.clock.advance(39);
    expect(h.take()).toEqual([]);
    h.clock.advance(1);
    expect(acks(h.take()).map((a) => a.ack)).toEqual([1000]);
    expect(h.counter('DelayedACKs')).toBe(1);

    const quick = connection({ quickAck: true });
    expect(quick.batch([[0, MSS]])).toEqual({ during: [], after: [{ ack: 1000, window: 15_000, sack: [] }] });
    // and outside a batch (a segment fed on its own), at once
    quick.peer(TcpFlag.ACK, DATA + 1000, ISS + 1, new Uint8Array(MSS));
    expect(acks(quick.take()).map((a) => a.ack)).toEqual([2000]);
  });

  it('out-of-order data in the batch is acknowledged at once with its SACK blocks; the filled hole too; nothing is left for the batch end', () => {
    const h = connection();
    // 0 and 1 in order, 3 and 4 after a hole at 2
    const first = h.batch([
      [0, MSS],
      [1000, MSS],
      [3000, MSS],
      [4000, MSS],
    ]);
    expect(first.during).toEqual([
      { ack: 2000, window: 14_000, sack: [[3000, 4000]] },
      { ack: 2000, window: 14_000, sack: [[3000, 5000]] },
    ]);
    expect(first.after).toEqual([]);
    // the hole fills: at once, no SACK left
    const second = h.batch([[2000, MSS]]);
    expect(second.during).toEqual([{ ack: 5000, window: 11_000, sack: [] }]);
    expect(second.after).toEqual([]);
    expect(h.counter('tx_acks_coalesced')).toBe(0);
  });

  it('a duplicate in the batch gets its D-SACK at once, and the in-order segments after it one ACK at the end', () => {
    const h = connection();
    h.batch([
      [0, MSS],
      [1000, MSS],
    ]);
    const { during, after } = h.batch([
      [1000, MSS], // again
      [2000, MSS],
      [3000, MSS],
    ]);
    expect(during).toEqual([{ ack: 2000, window: 14_000, sack: [[1000, 2000]] }]);
    expect(after).toEqual([{ ack: 4000, window: 12_000, sack: [] }]);
  });

  it('the window the application opens by reading during the batch rides on the one ACK', () => {
    const h = connection();
    h.reading = true;
    const { during, after } = h.batch([0, 1, 2, 3, 4, 5].map((i) => [i * MSS, MSS]));
    expect(during).toEqual([]);
    expect(after).toEqual([{ ack: 6000, window: 16_000, sack: [] }]);
  });
});

describe('SACK compression (Linux tcp_comp_sack_nr): out-of-order segments behind one hole', () => {
  /** Segment 0 in order, then segments 2..n+1 behind the hole at 1 (MSS-sized). */
  const behindHole = (n: number): [number, number][] => Array.from({ length: n }, (_, i): [number, number] => [(i + 2) * MSS, MSS]);

  it('the first three go at once (the duplicate ACKs a sender counts), the rest share one ACK at the batch end with the SACK block as it stands then', () => {
    const h = connection();
    h.batch([[0, MSS]]);
    h.clock.advance(40); // the delayed ACK for segment 0
    h.take();
    const { during, after } = h.batch(behindHole(8));
    expect(during).toEqual([
      { ack: 1000, window: 15_000, sack: [[2000, 3000]] },
      { ack: 1000, window: 15_000, sack: [[2000, 4000]] },
      { ack: 1000, window: 15_000, sack: [[2000, 5000]] },
    ]);
    expect(after).toEqual([{ ack: 1000, window: 15_000, sack: [[2000, 10_000]] }]);
    expect(h.counter('TCPAckCompressed')).toBe(5);
    // the next batch behind the same hole: nothing at once, the count of three is per RCV.NXT
    const next = h.batch([[10_000, MSS]]);
    expect(next).toEqual({ during: [], after: [{ ack: 1000, window: 15_000, sack: [[2000, 11_000]] }] });
    // the hole fills: at once, as before
    expect(h.batch([[1000, MSS]]).during).toEqual([{ ack: 11_000, window: 5_000, sack: [] }]);
  });

  it('at most 44 wait for one ACK: the 45th after the first three goes at once', () => {
    const h = connection({ receiveBufferBytes: 256 * 1024 });
    h.batch([[0, MSS]]);
    h.clock.advance(40);
    h.take();
    const { during, after } = h.batch(behindHole(50));
    expect(during.map((a) => a.sack[0]![1] / MSS)).toEqual([3, 4, 5, 50]);
    expect(after.map((a) => a.sack[0]![1] / MSS)).toEqual([52]);
    expect(h.counter('TCPAckCompressed')).toBe(46);
  });

  it('off (sackCompression: false), or with no batch running, every out-of-order segment is acknowledged at once', () => {
    const off = connection({ sackCompression: false });
    off.batch([[0, MSS]]);
    off.clock.advance(40);
    off.take();
    const a = off.batch(behindHole(8));
    expect(a.during.map((x) => x.sack[0]![1] / MSS)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
    expect(a.after).toEqual([]);
    const unbatched = connection();
    unbatched.peer(TcpFlag.ACK, DATA, ISS + 1, new Uint8Array(MSS));
    unbatched.clock.advance(40);
    unbatched.take();
    for (const [seq, length] of behindHole(6)) unbatched.peer(TcpFlag.ACK, DATA + seq, ISS + 1, new Uint8Array(length));
    expect(acks(unbatched.take()).map((x) => x.sack[0]![1] / MSS)).toEqual([3, 4, 5, 6, 7, 8]);
    expect(unbatched.counter('TCPAckCompressed')).toBe(0);
  });
});

describe('ACKs in a ping-pong', () => {
  it('an answer written while the data is handed up carries the ACK, and no delayed ACK follows it', () => {
    const h = connection();
    h.answering = true;
    for (let round = 0; round < 3; round++) {
      h.peer(TcpFlag.ACK, DATA + round, ISS + 1 + round, Uint8Array.of(7));
      const out = h.take();
      expect(out.map((s) => [s.repr.ack - DATA, s.payload.length])).toEqual([[round + 1, 1]]);
      h.clock.advance(100); // past the delayed-ACK time: nothing more goes out
      expect(h.take()).toEqual([]);
    }
    expect(h.counter('DelayedACKs')).toBe(0);
    expect(h.counter('TCPPureAcks')).toBe(0);
  });
});

describe('ACK coalescing through the stack (dispatcher end-of-batch hook, TcpLayer)', () => {
  it('the initial window crosses as one batch and gets one ACK, which acknowledges all of it', async () => {
    const p = pair();
    try {
      const server = p.b.tcp.createServer((s: TcpSocket) => s.on('error', () => {}).resume()).listen(9);
      let connected = false;
      const client = p.a.tcp.connect({ host: IP_B, port: 9 }, () => (connected = true));
      client.on('error', () => {});
      await runUntil(p.clock, () => connected);
      await runUntil(p.clock, () => p.b.tcp.connectionCount === 1 && p.b.tcp.connectionInfo()[0]!.state === 'ESTABLISHED');
      const b = p.b.tcp.counters;
      const before = { segs: b.get('InSegs'), acks: b.get('TCPPureAcks'), coalesced: b.get('tx_acks_coalesced') };
      const mss = p.a.tcp.connectionInfo()[0]!.mss;
      client.write(new Uint8Array(10 * mss)); // the initial window: ten segments, sent in one turn
      await runUntil(p.clock, () => p.a.tcp.connectionInfo()[0]!.sendQueue === 0);
      expect(b.get('InSegs') - before.segs).toBe(10);
      expect(b.get('TCPPureAcks') - before.acks).toBe(1);
      expect(b.get('tx_acks_coalesced') - before.coalesced).toBe(1);
      client.destroy();
      server.close();
    } finally {
      p.close();
    }
  });
});
