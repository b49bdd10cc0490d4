/**
 * Buffer autotuning and silly window syndrome avoidance, with exact figures on the virtual clock:
 * the receive buffer grows with what the application reads per round trip (Linux's
 * tcp_rcv_space_adjust), the window scale covers the largest buffer, the send buffer follows the
 * congestion window, and neither side offers or sends silly small pieces (RFC 9293 3.8.6.2).
 */
import { describe, expect, it } from 'vitest';
import { ipv4 } from '@tapstack/link';
import { ReceiveAutotuner, sendBufferTarget } from '../src/autotune.ts';
import { TcpConnection, windowScaleFor, type TcpParams } from '../src/connection.ts';
import { TcpFlag } from '../src/header.ts';
import { seqAdd } from '../src/seq.ts';
import type { TcpSocket } from '../src/socket.ts';
import { Harness, ISS, PEER_ISS } from './harness.ts';
import { collect, IP_B, pair, pattern, runUntil, sha256 } from './support.ts';

const LOCAL = { address: ipv4('10.0.0.2'), port: 40000 };
const REMOTE = { address: ipv4('10.0.0.1'), port: 80 };

/**
 * Our connection to a peer offering MSS 1000 and window scale `peerScale`, no timestamps, no
 * SACK; the SYN-ACK comes `rttMs` after the SYN, so SRTT starts at `rttMs`.
 */
function open(params: Partial<TcpParams>, rttMs = 100, peerWindow = 65535, peerScale: number | 'none' = 7): Harness {
  const h = new Harness();
  h.connection = TcpConnection.connect(h, { local: LOCAL, remote: REMOTE, iss: ISS, localMss: 1000, params: { timestamps: false, sack: false, ...params } });
  h.connection.attach(h);
  h.clock.advance(rttMs);
  h.peer(TcpFlag.SYN | TcpFlag.ACK, PEER_ISS, ISS + 1, undefined, { mss: 1000, ...(peerScale !== 'none' ? { windowScale: peerScale } : {}) }, peerWindow);
  return h;
}

/** The peer sends `count` segments of 1000 bytes from `seq`; returns the next sequence number. */
function peerData(h: Harness, seq: number, count: number): number {
  for (let i = 0; i < count; i++) {
    h.peer(TcpFlag.ACK, seq, ISS + 1, new Uint8Array(1000));
    seq = seqAdd(seq, 1000);
  }
  return seq;
}

/** The application reads everything waiting; returns the bytes. */
function readAll(h: Harness): number {
  let n = 0;
  for (let d = h.connection.read(1 << 20); d; d = h.connection.read(1 << 20)) n += d.length;
  return n;
}

describe('receive-buffer autotuning (Linux tcp_rcv_space_adjust)', () => {
  it('the window scale covers the largest buffer autotuning may reach: 7 for the default 6 MiB, as Linux; from the buffer itself when autotuning is off', () => {
    expect(windowScaleFor(6 * 1024 * 1024)).toBe(7); // 0xffff << 6 = 4 194 240 is short of 6 291 456
    const h = new Harness();
    TcpConnection.connect(h, { local: LOCAL, remote: REMOTE, iss: ISS, localMss: 1460 });
    expect(h.take()[0]!.repr.options.windowScale).toBe(7);
    const fixed = new Harness();
    TcpConnection.connect(fixed, { local: LOCAL, remote: REMOTE, iss: ISS, localMss: 1460, params: { receiveBufferAutotune: false } });
    expect(fixed.take()[0]!.repr.options.windowScale).toBe(3); // 256 KiB: 0xffff << 2 = 262 140 is 4 bytes short
  });

  it('grows once per RTT when the application read more than its best RTT so far, up to the maximum, and the ACK offers the larger window at once', () => {
    // 64 KiB to start, 500 000 at most (window scale 3: 0xffff << 3 = 524 280 covers it); SRTT 100 ms.
    const h = open({ receiveBufferBytes: 65_536, receiveBufferMaxBytes: 500_000 }, 100);
    expect(h.connection.info().receiveBufferBytes).toBe(65_536);
    // Each read takes one segment; a measure happens at the first read a full RTT after the last
    // one and counts every byte read since, that read's included.
    // t = 100: the first read measures 1000 bytes since the connection was made (t = 0): no more
    // than the initial estimate of 10 segments (10 000), so nothing grows; 29 000 more are read.
    let seq = peerData(h, PEER_ISS + 1, 30);
    expect(readAll(h)).toBe(30_000);
    expect(h.connection.info().receiveBufferBytes).toBe(65_536);
    // t = 200: 29 000 + 1000 = 30 000 in the RTT, three times the best so far:
    // 2 * 30 000 + 16 * 1000 = 76 000, plus 2 * 76 000 * (30 000 - 10 000) / 10 000 = 304 000
    // for a sender that may still be doubling: 380 000.
    h.clock.advance(100);
    h.take();
    seq = peerData(h, seq, 60);
    readAll(h);
    expect(h.connection.info().receiveBufferBytes).toBe(380_000);
    // The last update went out with one segment still unread (the final 1000 bytes are less than
    // the two segments that make another update worth sending): 379 000 = 47 375 << 3.
    expect(h.take().at(-1)!.repr.window).toBe(47_375);
    // Half an RTT later reads do not measure.
    h.clock.advance(50);
    seq = peerData(h, seq, 40);
    readAll(h);
    expect(h.connection.info().receiveBufferBytes).toBe(380_000);
    // t = 300: 59 000 + 40 000 + 1000 = 100 000: 2 * 100 000 + 16 000 = 216 000, plus
    // 2 * 216 000 * 70 000 / 30 000 = 1 008 000: 1 224 000, capped at 500 000.
    h.clock.advance(50);
    seq = peerData(h, seq, 100);
    readAll(h);
    expect(h.connection.info().receiveBufferBytes).toBe(500_000);
    // t = 400: 99 000 + 1000 = 100 000, no more than the best RTT (100 000): nothing changes.
    h.clock.advance(100);
    peerData(h, seq, 10);
    readAll(h);
    expect(h.connection.info().receiveBufferBytes).toBe(500_000);
  });

  it('an application that does not read keeps the buffer where it is, however much the peer sends', () => {
    const h = open({ receiveBufferBytes: 65_536, receiveBufferMaxBytes: 1 << 20 }, 100);
    peerData(h, PEER_ISS + 1, 65);
    h.clock.advance(1000);
    peerData(h, seqAdd(PEER_ISS + 1, 65_000), 10); // past the window: trimmed away
    expect(h.connection.info().receiveBufferBytes).toBe(65_536);
    expect(h.connection.info().receiveQueue).toBe(65_536);
  });

  it('off (tcp_moderate_rcvbuf 0): the buffer stays as configured', () => {
    const h = open({ receiveBufferBytes: 65_536, receiveBufferAutotune: false }, 100);
    peerData(h, PEER_ISS + 1, 30);
    readAll(h);
    expect(h.connection.info().receiveBufferBytes).toBe(65_536);
  });

  it('the receiver RTT from echoed timestamps: a moving average with weight 1/8, at least 1 ms', () => {
    const tuner = new ReceiveAutotuner(10_000, 0);
    tuner.rttSample(40);
    expect(tuner.rttMs).toBe(40);
    tuner.rttSample(80);
    expect(tuner.rttMs).toBe(45); // 40 + (80 - 40) / 8
    tuner.rttSample(0);
    expect(tuner.rttMs).toBe(39.5); // 45 + (1 - 45) / 8
    // once an RTT of 39.5 ms has passed, reading 20 000 measures: 2 * 20 000 + 16 000 = 56 000, + 2 * 56 000 = 168 000
    expect(tuner.consumed(20_000, 39, tuner.rttMs, 1000, 65_536, 6 << 20)).toBeUndefined();
    expect(tuner.consumed(0, 40, tuner.rttMs, 1000, 65_536, 6 << 20)).toBe(168_000);
  });
});

describe('send-buffer autotuning (Linux tcp_sndbuf_expand)', () => {
  it('twice the congestion window (at least twice the initial window), up to the maximum', () => {
    expect(sendBufferTarget(12_000, 10_000, 16_384, 4 << 20)).toBe(24_000);
    expect(sendBufferTarget(5_000, 10_000, 16_384, 4 << 20)).toBe(20_000);
    expect(sendBufferTarget(5_000, 10_000, 32_768, 4 << 20)).toBeUndefined();
    expect(sendBufferTarget(4 << 20, 10_000, 32_768, 4 << 20)).toBe(4 << 20);
  });

  it('in a connection: the buffer follows cwnd as ACKs grow it in slow start', () => {
    const h = open({ sendBufferBytes: 16_384, sendBufferMaxBytes: 25_000, congestionControl: 'newreno' }, 100);
    expect(h.connection.write(new Uint8Array(30_000))).toBe(16_384);
    expect(h.connection.info().cwnd).toBe(10_000);
    h.peer(TcpFlag.ACK, PEER_ISS + 1, ISS + 1 + 2000);
    expect(h.connection.info().cwnd).toBe(12_000);
    expect(h.connection.info().sendBufferBytes).toBe(24_000); // 2 * 12 000
    h.peer(TcpFlag.ACK, PEER_ISS + 1, ISS + 1 + 4000);
    expect(h.connection.info().cwnd).toBe(14_000);
    expect(h.connection.info().sendBufferBytes).toBe(25_000); // 28 000, capped
    const fixed = open({ sendBufferBytes: 16_384, sendBufferAutotune: false }, 100);
    fixed.connection.write(new Uint8Array(30_000));
    fixed.peer(TcpFlag.ACK, PEER_ISS + 1, ISS + 1 + 4000);
    expect(fixed.connection.info().sendBufferBytes).toBe(16_384);
  });
});

describe('silly window syndrome avoidance (RFC 9293 3.8.6.2)', () => {
  it('receiver: a full buffer read a little at a time offers no window below one MSS, and says so only once it has grown by two', () => {
    const h = open({ receiveBufferBytes: 8000, receiveBufferAutotune: false, windowScaling: false }, 100, 65535, 'none');
    const next = peerData(h, PEER_ISS + 1, 8);
    expect(h.take().at(-1)!.repr.window).toBe(0);
    expect(h.connection.read(500)!.length).toBe(500); // 500 free: less than min(8000 / 2, 1000)
    expect(h.take()).toEqual([]); // no window update for 500 bytes
    // A zero-window probe (SND.UNA - 1, no data) is answered, and the answer still offers 0.
    h.peer(TcpFlag.ACK, seqAdd(next, -1), ISS + 1);
    expect(h.take().map((s) => s.repr.window)).toEqual([0]);
    h.connection.read(500); // 1000 free: worth offering, but not grown by two segments yet
    expect(h.take()).toEqual([]);
    h.connection.read(1000); // 2000 free: grown by 2 * 1000, the update goes
    expect(h.take().map((s) => s.repr.window)).toEqual([2000]);
  });

  it('sender: a piece smaller than an MSS that only the peer window limits waits while data is in flight', () => {
    const h = open({ congestionControl: 'newreno' }, 100, 10_000, 'none');
    h.take();
    h.connection.write(new Uint8Array(20_000));
    expect(h.take().map((s) => s.payload.length)).toEqual(Array(10).fill(1000));
    // 9500 acknowledged, window 10 000: 9500 of room, 500 in flight. Nine full segments go; the
    // last 500 bytes of room would make a silly segment (less than half the largest window).
    h.peer(TcpFlag.ACK, PEER_ISS + 1, ISS + 1 + 9500, undefined, undefined, 10_000);
    expect(h.take().map((s) => s.payload.length)).toEqual(Array(9).fill(1000));
    // everything acknowledged: the rest goes in full segments
    h.peer(TcpFlag.ACK, PEER_ISS + 1, ISS + 1 + 19_000, undefined, undefined, 10_000);
    expect(h.take().map((s) => s.payload.length)).toEqual([1000]);
  });
});

describe('autotuning between two stacks', () => {
  it('an 8 MiB transfer over a 20 ms RTT: the receiver grows its buffer past the initial 256 KiB and the sender sees the larger window (scale 7)', async () => {
    const p = pair({ latencyMs: 10 });
    try {
      const data = pattern(8 << 20, 5);
      let got: ReturnType<typeof collect> | undefined;
      p.b.tcp.createServer((socket: TcpSocket) => (got = collect(socket))).listen(9);
      const client = p.a.tcp.connect({ host: IP_B, port: 9 });
      const clientGot = collect(client);
      client.end(data);
      let largestWindow = 0;
      let largestSendBuffer = 0;
      await runUntil(
        p.clock,
        () => {
          const sender = p.a.tcp.connectionInfo()[0];
          if (sender) {
            largestWindow = Math.max(largestWindow, sender.sendWindow);
            largestSendBuffer = Math.max(largestSendBuffer, sender.sendBufferBytes);
          }
          return got?.ended === true;
        },
        120_000,
        5,
      );
      expect(clientGot.error).toBeUndefined();
      expect(sha256(got!.bytes())).toBe(sha256(data));
      const receiver = p.b.tcp.connectionInfo()[0]!;
      expect(receiver.receiveBufferBytes).toBeGreaterThan(256 * 1024);
      expect(receiver.receiveBufferBytes).toBeLessThanOrEqual(6 * 1024 * 1024);
      expect(largestWindow).toBeGreaterThan(256 * 1024);
      expect(largestSendBuffer).toBeGreaterThanOrEqual(256 * 1024);
    } finally {
      p.close();
    }
  });
});
