/**
 * The stack's shared TCP memory (memory.ts), with literal bytes and exact figures: send-buffer
 * pages are reused rather than left to the collector, a buffer with nothing outstanding holds no
 * page, the account counts send pages and receive truesize, and its marks act as Linux's tcp_mem
 * does: above pressure no buffer grows (and receive buffers copy rather than keep device reads),
 * at the limit a send buffer gets no page beyond its first, and below the low mark growth resumes.
 */
import { describe, expect, it } from 'vitest';
import { Counters, ipv4 } from '@tapstack/link';
import { TcpConnection, type TcpParams } from '../src/connection.ts';
import { TcpFlag } from '../src/header.ts';
import { TCP_MEMORY_COUNTERS, TcpMemory } from '../src/memory.ts';
import { ReceiveBuffer } from '../src/receive-buffer.ts';
import { markUnchanging, SendBuffer, segmentBytes } from '../src/send-buffer.ts';
import { seqAdd } from '../src/seq.ts';
import { Harness, ISS, PEER_ISS } from './harness.ts';
import { collect, IP_B, pair, pattern, runUntil, sha256 } from './support.ts';

const bytes = (...b: number[]): Uint8Array => new Uint8Array(b);
const run = (from: number, n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (from + i) & 255);

describe('TcpMemory', () => {
  it('gives back the same pages it was given, and caches no more than it may', () => {
    const m = new TcpMemory({ pageBytes: 4, cacheBytes: 8 });
    const a = m.takePage(0)!;
    const b = m.takePage(1)!;
    const c = m.takePage(2)!;
    expect(a.length).toBe(4);
    expect(m.sendPageBytes).toBe(12);
    m.givePage(a);
    m.givePage(b);
    m.givePage(c); // the cache holds 8 bytes: two pages; the third goes to the collector
    expect(m.sendPageBytes).toBe(0);
    expect(m.cachedBytes).toBe(8);
    expect(m.takePage(0)).toBe(b);
    expect(m.takePage(0)).toBe(a);
    expect(m.takePage(0)).not.toBe(c);
  });

  it('over the limit, refuses every page but a buffer first; pressure from above its mark until below the low one; the counters follow', () => {
    const counters = new Counters<string>('tcp', TCP_MEMORY_COUNTERS);
    const m = new TcpMemory({ pageBytes: 100, lowBytes: 200, pressureBytes: 300, limitBytes: 500 }, counters);
    m.chargeReceive(300);
    expect(m.underPressure).toBe(false); // at the mark, not above
    const p1 = m.takePage(0)!;
    expect(m.underPressure).toBe(true);
    expect(counters.get('TCPMemoryPressures')).toBe(1);
    const p2 = m.takePage(1)!;
    expect(m.usedBytes).toBe(500);
    expect(m.takePage(2)).toBeUndefined(); // 600 > 500
    expect(m.takePage(0)).toBeDefined(); // a buffer's first page is guaranteed (tcp_wmem[0])
    expect(counters.get('mem_send_refused')).toBe(1);
    expect(counters.get('mem_send_bytes')).toBe(300);
    expect(counters.get('mem_receive_bytes')).toBe(300);
    expect(counters.get('mem_peak_bytes')).toBe(600);
    m.chargeReceive(-300);
    expect(m.usedBytes).toBe(300);
    expect(m.underPressure).toBe(true); // below pressure, but not below the low mark yet
    m.givePage(p1);
    m.givePage(p2);
    expect(m.usedBytes).toBe(100);
    expect(m.underPressure).toBe(false);
    expect(counters.get('TCPMemoryPressures')).toBe(1);
    expect(counters.get('mem_send_bytes')).toBe(100);
    expect(() => new TcpMemory({ pressureBytes: 10, limitBytes: 5 })).toThrow(RangeError);
  });
});

describe('SendBuffer on shared pages', () => {
  it('copies a run of writes into one page, across page borders, and reads them back byte for byte', () => {
    const m = new TcpMemory({ pageBytes: 8 });
    const b = new SendBuffer(100, m);
    expect(b.write(run(0, 3))).toBe(3);
    expect(b.write(run(3, 3))).toBe(3);
    expect(b.pagesHeld).toBe(1);
    expect(b.write(run(6, 12))).toBe(12); // 2 more to fill the first page, 8 in a second, 2 in a third
    expect(b.pagesHeld).toBe(3);
    expect(m.sendPageBytes).toBe(24);
    expect(segmentBytes(b.range(0, 18))).toEqual(run(0, 18));
    expect(segmentBytes(b.range(5, 7))).toEqual(run(5, 7));
  });

  it('gives a page back once every byte in it is acknowledged, and the last one when nothing is outstanding', () => {
    const m = new TcpMemory({ pageBytes: 8 });
    const b = new SendBuffer(100, m);
    b.write(run(0, 20)); // pages of 8, 8 and 4 bytes used
    b.acknowledge(7);
    expect(b.pagesHeld).toBe(3);
    b.acknowledge(1);
    expect(b.pagesHeld).toBe(2);
    expect(m.sendPageBytes).toBe(16);
    b.acknowledge(10);
    expect(b.pagesHeld).toBe(1); // the page being filled stays: 2 bytes outstanding in it
    expect(segmentBytes(b.range(0, 2))).toEqual(run(18, 2));
    b.write(run(20, 2));
    expect(b.pagesHeld).toBe(1); // the next write went on in it
    expect(segmentBytes(b.range(0, 4))).toEqual(run(18, 4));
    b.acknowledge(4);
    expect(b.pagesHeld).toBe(0);
    expect(m.sendPageBytes).toBe(0);
    expect(m.cachedBytes).toBe(24);
    // and the next write reuses a cached page: no new memory
    b.write(bytes(9));
    expect(m.cachedBytes).toBe(16);
  });

  it('a referenced write closes the page being filled: later copies go to a new page, and each page goes back after its own bytes', () => {
    const m = new TcpMemory({ pageBytes: 8 });
    const b = new SendBuffer(100, m);
    const fixed = bytes(100, 101);
    markUnchanging(fixed);
    b.write(run(0, 2));
    b.write(fixed);
    b.write(run(2, 2));
    expect(b.pagesHeld).toBe(2);
    expect(segmentBytes(b.range(0, 6))).toEqual(bytes(0, 1, 100, 101, 2, 3));
    b.acknowledge(2);
    expect(b.pagesHeld).toBe(1);
    b.acknowledge(4);
    expect(b.pagesHeld).toBe(0);
  });

  it('at the memory limit takes only what the page being filled still holds, and goes on once its own bytes are acknowledged', () => {
    const counters = new Counters<string>('tcp', TCP_MEMORY_COUNTERS);
    const m = new TcpMemory({ pageBytes: 8, lowBytes: 16, pressureBytes: 16, limitBytes: 16 }, counters);
    m.chargeReceive(16); // other connections hold the whole budget
    const b = new SendBuffer(100, m);
    expect(b.write(run(0, 20))).toBe(8); // its first page only
    expect(b.write(run(8, 12))).toBe(0);
    expect(counters.get('mem_send_refused')).toBe(2);
    b.acknowledge(8);
    expect(b.pagesHeld).toBe(0);
    expect(b.write(run(8, 12))).toBe(8);
    expect(segmentBytes(b.range(0, 8))).toEqual(run(8, 8));
  });

  it('clear() gives every page back', () => {
    const m = new TcpMemory({ pageBytes: 8 });
    const b = new SendBuffer(100, m);
    b.write(run(0, 30));
    expect(m.sendPageBytes).toBe(32);
    b.clear();
    expect(m.sendPageBytes).toBe(0);
    expect(b.length).toBe(0);
  });
});

describe('ReceiveBuffer charges the account', () => {
  it('a kept view is charged its whole read, a copy its length, out-of-order copies theirs; reading gives it back', () => {
    const m = new TcpMemory();
    const r = new ReceiveBuffer(10_000, 0, m);
    const read = new Uint8Array(4000); // one device read holding the segment
    r.receive(0, read.subarray(100, 1100), 10_000);
    expect(m.receiveChargedBytes).toBe(4000);
    r.receive(2000, new Uint8Array(500), 10_000); // out of order: copied
    expect(m.receiveChargedBytes).toBe(4500);
    r.read(1000);
    expect(m.receiveChargedBytes).toBe(500);
    r.clear();
    expect(m.receiveChargedBytes).toBe(0);
  });

  it('under pressure keeps reads alive only up to its size, not twice it: the rest is copied', () => {
    const calm = new TcpMemory();
    const pressed = new TcpMemory({ lowBytes: 0, pressureBytes: 1, limitBytes: 1 << 20 });
    pressed.chargeReceive(2);
    expect(pressed.underPressure).toBe(true);
    for (const [m, charged] of [
      [calm, 2 * 3000],
      [pressed, 3000 + 1000],
    ] as const) {
      const r = new ReceiveBuffer(4000, 0, m);
      r.receive(0, new Uint8Array(3000).subarray(0, 1000), 4000); // kept: 3000 charged
      r.receive(1000, new Uint8Array(3000).subarray(0, 1000), 4000); // 6000 > 4000 under pressure: copied
      expect(r.pinnedBytes).toBe(charged);
    }
  });
});

describe('a connection under memory pressure (tcp_mem[1])', () => {
  const LOCAL = { address: ipv4('10.0.0.2'), port: 40000 };
  const REMOTE = { address: ipv4('10.0.0.1'), port: 80 };

  function open(memory: TcpMemory, params: Partial<TcpParams>): Harness {
    const h = new Harness();
    h.memory = memory;
    h.connection = TcpConnection.connect(h, { local: LOCAL, remote: REMOTE, iss: ISS, localMss: 1000, params: { timestamps: false, sack: false, ...params } });
    h.connection.attach(h);
    h.clock.advance(100); // SRTT 100 ms
    h.peer(TcpFlag.SYN | TcpFlag.ACK, PEER_ISS, ISS + 1, undefined, { mss: 1000, windowScale: 7 }, 65535);
    return h;
  }

  function peerDataAndRead(h: Harness, seq: number, count: number): number {
    for (let i = 0; i < count; i++) {
      h.peer(TcpFlag.ACK, seq, ISS + 1, new Uint8Array(1000));
      seq = seqAdd(seq, 1000);
    }
    while (h.connection.read(1 << 20));
    return seq;
  }

  it('the receive buffer stops growing while the account is above pressure, and grows again once it fell below the low mark', () => {
    // the marks well above what this connection holds itself (65 536 at most, unread)
    const m = new TcpMemory({ pageBytes: 1000, lowBytes: 90_000, pressureBytes: 100_000, limitBytes: 200_000 });
    const h = open(m, { receiveBufferBytes: 65_536, receiveBufferMaxBytes: 500_000 });
    m.chargeReceive(100_001); // the other connections' buffers
    let seq = peerDataAndRead(h, PEER_ISS + 1, 30);
    h.clock.advance(100);
    seq = peerDataAndRead(h, seq, 60);
    // Unpressed this read grows the buffer to 380 000 (autotune.test.ts, the same steps).
    expect(h.connection.info().receiveBufferBytes).toBe(65_536);
    expect(m.receiveChargedBytes).toBe(100_001); // what it read is given back
    m.chargeReceive(-100_000);
    expect(m.underPressure).toBe(false);
    // the same reads as autotune.test.ts from here: 40 segments half an RTT on, 100 at the next RTT
    h.clock.advance(50);
    seq = peerDataAndRead(h, seq, 40);
    h.clock.advance(50);
    peerDataAndRead(h, seq, 100);
    // t = 300: 59 000 + 40 000 + 1000 read since the last measure, against the best of 30 000 that
    // the measure under pressure recorded: 216 000 + 2 * 216 000 * 70 000 / 30 000, capped
    expect(h.connection.info().receiveBufferBytes).toBe(500_000);
  });

  it('the send buffer stops following cwnd while the account is above pressure', () => {
    const m = new TcpMemory({ pageBytes: 1000, lowBytes: 20_000, pressureBytes: 40_000, limitBytes: 1 << 20 });
    const h = open(m, { sendBufferBytes: 16_384, sendBufferMaxBytes: 25_000, congestionControl: 'newreno' });
    m.chargeReceive(30_000);
    expect(h.connection.write(new Uint8Array(30_000))).toBe(16_384); // 17 pages: 47 000, above 40 000
    expect(m.underPressure).toBe(true);
    h.peer(TcpFlag.ACK, PEER_ISS + 1, ISS + 1 + 2000);
    expect(h.connection.info().cwnd).toBe(12_000);
    expect(h.connection.info().sendBufferBytes).toBe(16_384); // 24 000 unpressed
    m.chargeReceive(-30_000); // 15 000: below the low mark
    h.peer(TcpFlag.ACK, PEER_ISS + 1, ISS + 1 + 4000);
    expect(h.connection.info().sendBufferBytes).toBe(25_000);
    expect(m.sendPageBytes).toBe(13_000); // 16 384 - 4000 acknowledged: 12 384 bytes in 13 pages
  });

  it('a closed connection gives back what it held: pages and unread data', () => {
    const m = new TcpMemory({ pageBytes: 1000 });
    const h = open(m, {});
    h.connection.write(new Uint8Array(5000));
    h.peer(TcpFlag.ACK, PEER_ISS + 1, ISS + 1, new Uint8Array(700));
    expect(m.sendPageBytes).toBe(5000);
    expect(m.receiveChargedBytes).toBe(700);
    h.connection.abort();
    expect(m.usedBytes).toBe(0);
  });
});

describe('two stacks on an in-memory wire', () => {
  it('20 connections echo 64 KiB each whole; the account peaks while they run and is back at zero once all are closed', async () => {
    const p = pair();
    try {
      p.b.tcp.createServer((socket) => socket.pipe(socket)).listen(7);
      const runs = Array.from({ length: 20 }, (_, i) => {
        const data = pattern(64 * 1024, i + 1);
        const client = p.a.tcp.connect({ host: IP_B, port: 7 });
        const got = collect(client);
        client.end(data);
        return { data, got };
      });
      await runUntil(p.clock, () => runs.every((r) => r.got.ended));
      for (const r of runs) expect(sha256(r.got.bytes())).toBe(sha256(r.data));
      // both sides held pages and received data while the echoes ran
      for (const host of [p.a, p.b]) expect(host.tcp.counters.get('mem_peak_bytes')).toBeGreaterThan(64 * 1024);
      await runUntil(p.clock, () => p.a.tcp.connectionCount === 0 && p.b.tcp.connectionCount === 0, 120_000, 100);
      for (const host of [p.a, p.b]) {
        expect(host.tcp.memory.usedBytes).toBe(0);
        expect(host.tcp.counters.get('mem_send_bytes')).toBe(0);
        expect(host.tcp.counters.get('mem_receive_bytes')).toBe(0);
      }
    } finally {
      p.close();
    }
  });
});
