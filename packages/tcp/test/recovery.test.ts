/**
 * Loss recovery, one connection driven by hand: the peer's ACKs (with SACK blocks) are written
 * out literally, and each test checks which sequence numbers go again, when, and the window
 * (cwnd, ssthresh) afterwards. The numbers: ISS 1000, so data starts at 1001; MSS 1000; the
 * initial window is 10 segments of our own MSS (14600 bytes), so ten segments go at once.
 */
import { describe, expect, it } from 'vitest';
import { TcpFlag } from '../src/header.ts';
import type { SackScoreboard } from '../src/sack-scoreboard.ts';
import { established, ISS, PEER_ISS, type Harness } from './harness.ts';

const { ACK } = TcpFlag;

const windows = (h: Harness) => ({ cwnd: h.connection.info().cwnd, ssthresh: h.connection.info().ssthresh });
const TEN = [1001, 2001, 3001, 4001, 5001, 6001, 7001, 8001, 9001, 10001];

/** RFC 6675's DupThresh rule alone: RACK and TLP off (Linux: tcp_recovery 0, tcp_early_retrans 0). */
const RFC6675_ONLY = { params: { rack: false, tailLossProbe: false } };

describe('SACK loss recovery (RFC 6675) with PRR (RFC 6937)', () => {
  it('two segments lost of ten: each goes again once three SACKed segments lie above it, PRR paces the window down to ssthresh, recovery ends there', () => {
    const h = established(RFC6675_ONLY);
    h.connection.write(new Uint8Array(10_000));
    expect(h.takeSeqs()).toEqual(TEN);
    // 2001 and 5001 are lost; the peer acknowledges 1001 and SACKs what follows as it arrives
    // (the block with the newest segment first, RFC 2018 4)
    h.clock.advance(10);
    h.ack(2001);
    h.ack(2001, [{ left: 3001, right: 4001 }]);
    h.ack(2001, [{ left: 3001, right: 5001 }]);
    expect(h.takeSeqs()).toEqual([]); // two SACKed segments above 2001: not lost yet (DupThresh 3)
    h.ack(2001, [{ left: 6001, right: 7001 }, { left: 3001, right: 5001 }]);
    // Recovery: FlightSize 9000, ssthresh 4500 (NewReno's half). pipe 5000 > ssthresh, so PRR's
    // proportional part allows ceil(1000 * 4500 / 9000) = 500, raised to one segment for the
    // fast retransmit: cwnd = pipe + 1000.
    expect(h.takeSeqs()).toEqual([2001]);
    expect(windows(h)).toEqual({ cwnd: 6000, ssthresh: 4500 });
    expect(h.counter('TCPSackRecovery')).toBe(1);
    h.ack(2001, [{ left: 6001, right: 8001 }, { left: 3001, right: 5001 }]);
    expect(h.takeSeqs()).toEqual([]); // prr_delivered 2000 allows 1000 in all, and 1000 went
    h.ack(2001, [{ left: 6001, right: 9001 }, { left: 3001, right: 5001 }]);
    // 5001 now has three SACKed segments above it. pipe 3000 <= ssthresh: the slow-start
    // reduction bound gives min(4500 - 3000, max(3000 - 1000, 1000) + 1000) = 1500.
    expect(h.takeSeqs()).toEqual([5001]);
    expect(windows(h)).toEqual({ cwnd: 4500, ssthresh: 4500 });
    h.ack(2001, [{ left: 6001, right: 11001 }, { left: 3001, right: 5001 }]);
    h.ack(5001, [{ left: 6001, right: 11001 }]);
    expect(h.takeSeqs()).toEqual([]);
    h.ack(11001);
    expect(windows(h)).toEqual({ cwnd: 4500, ssthresh: 4500 });
    expect(h.counter('RetransSegs')).toBe(2);
    expect(h.counter('TCPFastRetrans')).toBe(2);
    expect(h.counter('TCPTimeouts')).toBe(0);
  });

  it('before recovery each SACKed segment lets a new one go (pipe shrinks); in recovery new data goes as PRR allows, after the lost segment', () => {
    const h = established(RFC6675_ONLY);
    h.connection.write(new Uint8Array(20_000));
    // 14 segments fit the initial window of 14600 bytes (the 600 left over waits: sender-side SWS avoidance)
    expect(h.takeSeqs()).toEqual([...TEN, 11001, 12001, 13001, 14001]);
    h.clock.advance(10);
    h.ack(1001, [{ left: 2001, right: 3001 }]);
    expect(h.takeSeqs()).toEqual([15001]); // as RFC 3042's limited transmit: pipe fell by a segment
    h.ack(1001, [{ left: 2001, right: 4001 }]);
    expect(h.takeSeqs()).toEqual([16001]);
    h.ack(1001, [{ left: 2001, right: 5001 }]);
    // FlightSize 16000, ssthresh 8000, pipe 12000: one segment for the fast retransmit
    expect(h.takeSeqs()).toEqual([1001]);
    expect(windows(h)).toEqual({ cwnd: 13_000, ssthresh: 8000 });
    h.ack(1001, [{ left: 2001, right: 6001 }]);
    h.ack(1001, [{ left: 2001, right: 7001 }]);
    expect(h.takeSeqs()).toEqual([]); // prr_delivered 3000: 1500 allowed, 1000 sent, 500 is less than a segment
    h.ack(1001, [{ left: 2001, right: 8001 }]);
    expect(h.takeSeqs()).toEqual([17001]); // prr_delivered 4000: 2000 allowed
    h.ack(1001, [{ left: 2001, right: 9001 }]);
    h.ack(1001, [{ left: 2001, right: 10_001 }]);
    expect(h.takeSeqs()).toEqual([18001]);
  });

  it('a timeout during SACK recovery resends only what the peer has not SACKed, one segment first, then in slow start', () => {
    const h = established(RFC6675_ONLY);
    h.connection.write(new Uint8Array(10_000));
    expect(h.takeSeqs()).toEqual(TEN);
    h.clock.advance(10);
    h.ack(2001, [{ left: 3001, right: 4001 }]); // the RTT sample (10 ms) makes the RTO 200 ms
    h.clock.advance(199);
    expect(h.takeSeqs()).toEqual([]);
    h.clock.advance(1);
    expect(h.takeSeqs()).toEqual([2001]);
    expect(windows(h)).toEqual({ cwnd: 1000, ssthresh: 4500 });
    expect(h.counter('TCPTimeouts')).toBe(1);
    h.ack(4001); // 3001 was SACKed: it is not sent again
    // slow start counts the 2000 bytes acknowledged (RFC 3465, L = 2): cwnd 3000
    expect(h.takeSeqs()).toEqual([4001, 5001, 6001]);
    expect(windows(h).cwnd).toBe(3000);
    h.ack(6001);
    expect(h.takeSeqs()).toEqual([7001, 8001, 9001, 10_001]);
    expect(h.counter('TCPSackRecovery')).toBe(0);
  });

  it('without SACK the fallback is NewReno: three duplicate ACKs, one retransmission, a partial ACK retransmits the next hole', () => {
    const h = established({ sack: false });
    h.connection.write(new Uint8Array(10_000));
    expect(h.takeSeqs()).toEqual(TEN);
    h.clock.advance(10);
    h.ack(2001);
    h.ack(2001);
    h.ack(2001);
    expect(h.takeSeqs()).toEqual([]);
    h.ack(2001);
    expect(h.takeSeqs()).toEqual([2001]);
    expect(windows(h)).toEqual({ cwnd: 4500 + 3000, ssthresh: 4500 });
    h.ack(5001); // partial: 5001 was lost too
    expect(h.takeSeqs()).toEqual([5001]);
    h.ack(11001);
    // RFC 6582 3.2 step 3's first option: min(ssthresh, FlightSize + SMSS), and nothing is in flight
    expect(windows(h)).toEqual({ cwnd: 1000, ssthresh: 4500 });
    expect(h.counter('TCPRenoRecovery')).toBe(1);
    expect(h.counter('TCPSackRecovery')).toBe(0);
  });

  it('hostile SACK blocks (past SND.MAX, below SND.UNA, inverted) are discarded and counted; a reneging peer is noticed', () => {
    const h = established();
    h.connection.write(new Uint8Array(10_000));
    h.take();
    h.ack(2001, [{ left: 20_001, right: 30_001 }, { left: 5001, right: 4001 }, { left: 0xfffff000, right: 3001 }]);
    expect(h.counter('TCPSACKDiscard')).toBe(3);
    h.ack(2001, [{ left: 3001, right: 4001 }]);
    h.ack(3001); // acknowledges up to the SACKed segment, not past it
    expect(h.counter('TCPSACKReneging')).toBe(1);
  });
});

describe('D-SACK (RFC 2883)', () => {
  it('a segment received twice is reported in the first SACK block of the ACK, once: below RCV.NXT (TCPDSACKOldSent) and in the out-of-order queue (TCPDSACKOfoSent)', () => {
    const h = established();
    const data = new Uint8Array(100);
    h.peer(ACK, PEER_ISS + 1, ISS + 1, data);
    h.clock.advance(100); // the delayed ACK goes
    expect(h.take().map((s) => s.repr.ack)).toEqual([PEER_ISS + 101]);
    h.peer(ACK, PEER_ISS + 1, ISS + 1, data); // again
    const [old] = h.take();
    expect(old!.repr.ack).toBe(PEER_ISS + 101);
    expect(old!.repr.options.sackBlocks).toEqual([{ left: PEER_ISS + 1, right: PEER_ISS + 101 }]);
    expect(h.counter('TCPDSACKOldSent')).toBe(1);
    // out of order: 5201-5301 with a hole at 5101, then the same again
    h.peer(ACK, PEER_ISS + 201, ISS + 1, data);
    expect(h.take()[0]!.repr.options.sackBlocks).toEqual([{ left: PEER_ISS + 201, right: PEER_ISS + 301 }]);
    h.peer(ACK, PEER_ISS + 201, ISS + 1, data);
    expect(h.take()[0]!.repr.options.sackBlocks).toEqual([
      { left: PEER_ISS + 201, right: PEER_ISS + 301 },
      { left: PEER_ISS + 201, right: PEER_ISS + 301 },
    ]);
    expect(h.counter('TCPDSACKOfoSent')).toBe(1);
    // the next ACK reports the duplicate no more
    h.peer(ACK, PEER_ISS + 101, ISS + 1, data);
    expect(h.take()[0]!.repr.options.sackBlocks).toBeUndefined();
  });

  it('the sender counts a D-SACK it receives (TCPDSACKRecv) and marks nothing with it', () => {
    const h = established();
    h.connection.write(new Uint8Array(3000));
    h.take();
    h.ack(3001, [{ left: 1001, right: 2001 }]);
    expect(h.counter('TCPDSACKRecv')).toBe(1);
    expect(h.counter('TCPSACKDiscard')).toBe(0);
  });
});

describe('timestamps (RFC 7323)', () => {
  const ts = (value: number, echo = 0) => ({ timestamps: { value, echo } });

  it('PAWS (5): a segment whose TSval is older than TS.Recent is dropped and answered with an ACK; after 24 days idle it is accepted', () => {
    const h = established({ timestamps: true });
    const data = new Uint8Array(100).fill(7);
    h.peer(ACK, PEER_ISS + 1, ISS + 1, data, ts(h.peerTs + 10));
    h.clock.advance(100);
    h.take();
    // a forged (or very old) segment: the next bytes, but TSval from before TS.Recent
    h.peer(ACK, PEER_ISS + 101, ISS + 1, data, ts(h.peerTs + 5));
    const [ack] = h.take();
    expect(ack!.repr.ack).toBe(PEER_ISS + 101); // not taken
    expect(ack!.repr.options.timestamps!.echo).toBe(h.peerTs + 10); // TSecr: TS.Recent
    expect(h.counter('PAWSEstab')).toBe(1);
    expect(h.connection.info().receiveQueue).toBe(100);
    // TSval wrapped past 2^32 is newer, not older
    h.peer(ACK, PEER_ISS + 101, ISS + 1, data, ts((h.peerTs + 0x80000000) >>> 0));
    expect(h.connection.info().receiveQueue).toBe(200);
    // 24 days and a bit with nothing heard: TS.Recent says nothing any more (RFC 7323 5.5)
    h.clock.advance(24 * 24 * 3600 * 1000 + 1000);
    h.peer(ACK, PEER_ISS + 201, ISS + 1, data, ts(h.peerTs));
    expect(h.connection.info().receiveQueue).toBe(300);
    expect(h.counter('PAWSEstab')).toBe(1);
  });

  it('every ACK that advances SND.UNA gives an RTT sample from its TSecr (RFC 7323 4)', () => {
    const h = established({ timestamps: true });
    h.connection.write(new Uint8Array(3000));
    const sent = h.take();
    const tsval = sent[0]!.repr.options.timestamps!.value;
    h.clock.advance(50);
    // the handshake gave the first sample (10 ms); this ACK echoes the first segment's TSval
    h.peer(ACK, PEER_ISS + 1, ISS + 1 + 988, undefined, ts(h.peerTs + 1, tsval));
    expect(h.connection.info().srttMs).toBe(0.875 * 10 + 0.125 * 50);
    h.clock.advance(30);
    h.peer(ACK, PEER_ISS + 1, ISS + 1 + 2 * 988, undefined, ts(h.peerTs + 2, tsval + 50));
    expect(h.connection.info().srttMs).toBe(0.875 * (0.875 * 10 + 0.125 * 50) + 0.125 * 30);
  });
});

describe('RACK-TLP (RFC 8985), on by default as in Linux', () => {
  it('RACK: a segment sent before one that was SACKed is lost once RACK.rtt plus the reordering window (min RTT / 4) has passed, with only two SACKed above it', () => {
    const h = established(); // SYN-ACK after 10 ms: min RTT and SRTT 10
    h.connection.write(new Uint8Array(4000)); // at t = 10
    expect(h.takeSeqs()).toEqual([1001, 2001, 3001, 4001]);
    h.clock.advance(10);
    h.ack(2001);
    h.ack(2001, [{ left: 3001, right: 4001 }]);
    h.ack(2001, [{ left: 3001, right: 5001 }]);
    // DupThresh needs three SACKed segments; RACK needs time: 3001 and 4001 were sent with 2001
    // and are delivered after RACK.rtt 10 ms, so 2001 is lost at 10 + 10 + 2.5 ms
    h.clock.advance(2);
    expect(h.takeSeqs()).toEqual([]);
    h.clock.advance(1);
    expect(h.takeSeqs()).toEqual([2001]);
    // FlightSize 3000 when recovery began: ssthresh max(1500, 2 * 1000); pipe 0, so PRR's SSRB allows one segment
    expect(windows(h)).toEqual({ cwnd: 1000, ssthresh: 2000 });
    expect(h.counter('TCPSackRecovery')).toBe(1);
    h.clock.advance(10);
    h.ack(5001);
    expect(windows(h)).toEqual({ cwnd: 2000, ssthresh: 2000 });
    expect(h.counter('TCPTimeouts')).toBe(0);
    expect(h.counter('TCPLossProbes')).toBe(0);
  });

  it('RACK: a retransmission that is lost too is found by time (TCPLostRetransmit) and sent again, without a timeout', () => {
    const h = established();
    h.connection.write(new Uint8Array(4000));
    h.takeSeqs();
    h.clock.advance(10);
    h.ack(1001, [{ left: 2001, right: 3001 }]);
    h.ack(1001, [{ left: 2001, right: 4001 }]);
    h.ack(1001, [{ left: 2001, right: 5001 }]); // three SACKed: 1001 lost by DupThresh at t = 20
    expect(h.takeSeqs()).toEqual([1001]);
    h.connection.write(new Uint8Array(1000));
    h.clock.advance(5);
    h.ack(1001, [{ left: 2001, right: 5001 }]); // the window opens for new data
    expect(h.takeSeqs()).toEqual([5001]); // sent at t = 25, after the retransmission of 1001
    h.clock.advance(10);
    h.ack(1001, [{ left: 2001, right: 6001 }]); // 5001 delivered at t = 35: RACK.rtt 10, RACK.xmit_ts 25
    // 1001 went again at 20, before 5001: lost at 20 + 10 + 0 (recovering, no reordering seen)
    expect(h.takeSeqs()).toEqual([1001]);
    expect(h.counter('TCPLostRetransmit')).toBe(1);
    expect(h.counter('TCPTimeouts')).toBe(0);
  });

  it('TLP: the last two segments are lost; 2 * SRTT + 2 ms after the last ACK the last segment is probed, its SACK lets RACK find the other, no timeout', () => {
    const h = established();
    h.connection.write(new Uint8Array(4000));
    expect(h.takeSeqs()).toEqual([1001, 2001, 3001, 4001]);
    h.clock.advance(10);
    h.ack(3001); // t = 20; 3001 and 4001 are lost; SRTT 10, so PTO = 2 * 10 + 2 ms (two segments in flight)
    h.clock.advance(21);
    expect(h.takeSeqs()).toEqual([]);
    h.clock.advance(1);
    expect(h.takeSeqs()).toEqual([4001]); // the probe: the highest segment again (no new data to send)
    expect(h.counter('TCPLossProbes')).toBe(1);
    h.clock.advance(10);
    h.ack(3001, [{ left: 4001, right: 5001 }]); // t = 52: the probe arrived
    expect(h.takeSeqs()).toEqual([3001]);
    // pipe 0 (4001 SACKed, 3001 lost), DeliveredData 1000: SSRB allows min(2000, 1000 + 1000)
    expect(windows(h)).toEqual({ cwnd: 2000, ssthresh: 2000 });
    h.clock.advance(10);
    h.ack(5001);
    expect(windows(h)).toEqual({ cwnd: 2000, ssthresh: 2000 });
    expect(h.counter('TCPTimeouts')).toBe(0);
    expect(h.counter('RetransSegs')).toBe(2);
  });

  it('TLP with new data waiting: the probe is a new segment beyond the congestion window', () => {
    const h = established();
    h.connection.write(new Uint8Array(16_000)); // 14 segments fit the initial window
    expect(h.takeSeqs().length).toBe(14);
    h.clock.advance(21); // PTO: 2 * SRTT + 2 ms
    expect(h.takeSeqs()).toEqual([]);
    h.clock.advance(1);
    expect(h.takeSeqs()).toEqual([15001]);
    expect(h.counter('TCPLossProbes')).toBe(1);
    expect(h.counter('RetransSegs')).toBe(0);
  });

  it('RTO: when everything in flight and the probe are lost, the timer fires and resends from SND.UNA with a one-segment window', () => {
    const h = established();
    h.connection.write(new Uint8Array(3000)); // t = 10, RTO 200 ms (the floor), PTO 22 ms
    expect(h.takeSeqs()).toEqual([1001, 2001, 3001]);
    h.clock.advance(22);
    expect(h.takeSeqs()).toEqual([3001]); // the probe, lost too; the RTO is armed again after it
    h.clock.advance(199);
    expect(h.takeSeqs()).toEqual([]);
    h.clock.advance(1);
    expect(h.takeSeqs()).toEqual([1001]);
    expect(windows(h)).toEqual({ cwnd: 1000, ssthresh: 2000 });
    expect(h.counter('TCPTimeouts')).toBe(1);
    h.clock.advance(10);
    h.ack(2001);
    expect(h.takeSeqs()).toEqual([2001, 3001]); // slow start: cwnd 2000
    h.clock.advance(10);
    h.ack(4001); // the timeout's episode ends; cwnd has reached ssthresh: congestion avoidance, one segment per window acknowledged
    expect(windows(h)).toEqual({ cwnd: 3000, ssthresh: 2000 });
  });
});

describe('hostile SACK blocks', () => {
  it('5000 ACKs with random blocks: nothing throws, the scoreboard holds no more records than segments sent, and the transfer still completes', () => {
    const h = established();
    h.connection.write(new Uint8Array(60_000));
    let random = 12345;
    const next = () => (random = (Math.imul(random, 1103515245) + 12345) >>> 0);
    const board = (h.connection as unknown as { scoreboard: SackScoreboard }).scoreboard;
    for (let i = 0; i < 5000; i++) {
      const blocks = Array.from({ length: 1 + (next() % 4) }, () => {
        const left = next() % 3 === 0 ? next() : ISS + 1 + (next() % 70_000);
        return { left, right: next() % 2 === 0 ? next() : (left + (next() % 5000)) >>> 0 };
      });
      h.ack(ISS + 1, blocks);
      if (i % 100 !== 0) continue;
      h.clock.advance(1);
      const sentSegments = new Set(h.sent.filter((s) => s.payload.length > 0).map((s) => s.repr.seq)).size;
      expect(board.records.length).toBeLessThanOrEqual(sentSegments);
    }
    expect(h.counter('TCPSACKDiscard')).toBeGreaterThan(1000);
    // an honest peer now: acknowledge whatever was sent until everything is
    for (let round = 0; round < 1000 && h.connection.info().sendQueue > 0; round++) {
      const highest = h.take().reduce((m, s) => Math.max(m, s.repr.seq + s.payload.length), 0);
      if (highest > ISS + 1) h.ack(highest);
      h.clock.advance(10);
    }
    expect(h.connection.info().sendQueue).toBe(0);
  });
});
