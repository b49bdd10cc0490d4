/**
 * Undo of a spurious recovery and RACK's reordering window, one connection driven by hand (the
 * numbers of recovery.test.ts: ISS 1000, data from 1001, MSS 1000, NewReno so that ssthresh is
 * half the flight, the SYN-ACK after 10 ms so SRTT and min RTT start at 10 ms, RTO 200 ms).
 *
 * Each test plays a path that delays a segment rather than losing it, or delays the ACKs, so
 * that the sender's recovery turns out to have been a mistake; the peer's ACKs say so with a
 * D-SACK (RFC 2883, RFC 3708), with an echoed timestamp older than the retransmission (RFC 3522,
 * Eifel), or by acknowledging data the sender never resent after a timeout (RFC 5682, F-RTO).
 */
import { describe, expect, it } from 'vitest';
import { established, type Harness } from './harness.ts';

const windows = (h: Harness) => ({ cwnd: h.connection.info().cwnd, ssthresh: h.connection.info().ssthresh });
/** NewReno's ssthresh before any loss ("infinite", as Linux's TCP_INFINITE_SSTHRESH). */
const INFINITE = Number.MAX_SAFE_INTEGER;
/** The initial window: 10 segments of our own MSS (1460), RFC 6928. */
const IW = 14_600;

describe('undo by D-SACK (RFC 3708, Linux tcp_try_undo_dsack)', () => {
  it('a segment delayed, not lost: RACK resends it, the original fills the hole, the D-SACK for the resend undoes the recovery: cwnd and ssthresh as before', () => {
    const h = established();
    h.connection.write(new Uint8Array(10_000));
    expect(h.takeSeqs()).toEqual([1001, 2001, 3001, 4001, 5001, 6001, 7001, 8001, 9001, 10_001]);
    h.clock.advance(10);
    // 1001 is late; three segments above it arrive: no reordering seen yet, so RACK's window is
    // 0 with three SACKed, and 1001 (sent with them, RACK.rtt 10 ms ago) is lost at once
    h.ack(1001, [{ left: 2001, right: 5001 }]);
    expect(h.takeSeqs()).toEqual([1001]);
    // PRR: pipe 6000 > ssthresh, so ceil(3000 delivered * 5000 / 10000) = 1500 may go beyond the pipe
    expect(windows(h)).toEqual({ cwnd: 6000 + 1500, ssthresh: 5000 });
    expect(h.counter('TCPSackRecovery')).toBe(1);
    // the original arrives: everything up to 5001 is acknowledged, recovery goes on (RecoveryPoint 11001)
    h.ack(5001);
    // then the retransmission: a duplicate below the cumulative ACK, reported in a D-SACK
    h.ack(5001, [{ left: 1001, right: 2001 }]);
    expect(h.counter('TCPDSACKRecv')).toBe(1);
    expect(h.counter('TCPDSACKUndo')).toBe(1);
    // the window and threshold from before the recovery (NewReno's ssthresh was still infinite)
    expect(windows(h)).toEqual({ cwnd: IW, ssthresh: INFINITE });
    expect(h.connection.info().inRecovery).toBe(false);
    // and the window is used: 6000 in flight of 14600, so eight new segments go at once
    h.connection.write(new Uint8Array(10_000));
    expect(h.takeSeqs()).toEqual([11_001, 12_001, 13_001, 14_001, 15_001, 16_001, 17_001, 18_001]);
    expect(h.counter('RetransSegs')).toBe(1);
  });

  it('no undo while a retransmission of the episode is still unaccounted for: one D-SACK of two retransmissions leaves the reduction in place', () => {
    const h = established();
    h.connection.write(new Uint8Array(10_000));
    h.takeSeqs();
    h.clock.advance(10);
    // 1001 and 2001 late, 3001-8001 arrive: both lost for RACK, resent as PRR lets them go
    h.ack(1001, [{ left: 3001, right: 6001 }]);
    h.ack(1001, [{ left: 3001, right: 7001 }]);
    h.ack(1001, [{ left: 3001, right: 8001 }]);
    expect(h.takeSeqs()).toEqual([1001, 2001]);
    // 1001's original arrives and its resend is reported a duplicate; 2001 really was lost
    h.ack(2001, [{ left: 3001, right: 8001 }]);
    h.ack(2001, [{ left: 1001, right: 2001 }, { left: 3001, right: 8001 }]);
    expect(h.counter('TCPDSACKRecv')).toBe(1);
    h.ack(11_001);
    expect(h.counter('TCPDSACKUndo')).toBe(0);
    expect(h.counter('TCPFullUndo')).toBe(0);
    expect(windows(h)).toEqual({ cwnd: 5000, ssthresh: 5000 }); // the end of recovery: cwnd = ssthresh
  });

  it('a late D-SACK after the recovery ended still undoes it (Linux keeps undo_marker until the next episode)', () => {
    const h = established();
    h.connection.write(new Uint8Array(10_000));
    h.takeSeqs();
    h.clock.advance(10);
    h.ack(1001, [{ left: 2001, right: 5001 }]);
    expect(h.takeSeqs()).toEqual([1001]);
    h.ack(11_001); // recovery over, not proven spurious yet: cwnd = ssthresh
    expect(windows(h)).toEqual({ cwnd: 5000, ssthresh: 5000 });
    h.ack(11_001, [{ left: 1001, right: 2001 }]);
    expect(h.counter('TCPDSACKUndo')).toBe(1);
    expect(windows(h)).toEqual({ cwnd: IW, ssthresh: INFINITE });
  });
});

describe('undo by timestamps (RFC 3522 Eifel detection, Linux tcp_try_undo_recovery)', () => {
  it('the ACK that ends the recovery echoes the TSval of the original, older than the retransmission: full undo (TCPFullUndo)', () => {
    const h = established({ timestamps: true }); // the MSS is 988 with the timestamp option on every segment
    h.connection.write(new Uint8Array(10 * 988));
    const sent = h.take();
    const seqs = sent.map((s) => s.repr.seq);
    expect(seqs).toEqual(Array.from({ length: 10 }, (_, i) => 1001 + i * 988));
    const originalTsval = sent[0]!.repr.options.timestamps!.value;
    h.clock.advance(10);
    h.ack(seqs[0]!, [{ left: seqs[1]!, right: seqs[4]! }], originalTsval);
    const [resent] = h.take().filter((s) => s.payload.length > 0);
    expect(resent!.repr.seq).toBe(1001);
    expect(resent!.repr.options.timestamps!.value).toBe(originalTsval + 10);
    // PRR as above: pipe 6 segments, plus ceil(2964 * 4940 / 9880)
    expect(windows(h)).toEqual({ cwnd: 6 * 988 + 1482, ssthresh: (10 * 988) / 2 });
    // the original filled the hole: the receiver's TS.Recent, echoed on the ACK of everything, is its TSval
    h.clock.advance(1);
    h.ack(1001 + 10 * 988, [], originalTsval);
    expect(h.counter('TCPFullUndo')).toBe(1);
    expect(windows(h)).toEqual({ cwnd: IW, ssthresh: INFINITE });
  });

  it('the same ACK echoing the retransmission: the loss was real, no undo', () => {
    const h = established({ timestamps: true });
    h.connection.write(new Uint8Array(10 * 988));
    const sent = h.take();
    const originalTsval = sent[0]!.repr.options.timestamps!.value;
    h.clock.advance(10);
    h.ack(1001, [{ left: 1001 + 988, right: 1001 + 4 * 988 }], originalTsval);
    const resendTsval = h.take().find((s) => s.payload.length > 0)!.repr.options.timestamps!.value;
    h.clock.advance(10);
    h.ack(1001 + 10 * 988, [], resendTsval);
    expect(h.counter('TCPFullUndo')).toBe(0);
    expect(windows(h)).toEqual({ cwnd: (10 * 988) / 2, ssthresh: (10 * 988) / 2 });
  });
});

describe('a spurious retransmission timeout (RFC 5682 F-RTO, Linux tcp_process_loss)', () => {
  /** 20000 bytes written: 14 segments go in the initial window, a loss probe sends the 15th at t = 32, the RTO fires at t = 232 and resends 1001. */
  function stalled(params = {}): Harness {
    const h = established({ params });
    h.connection.write(new Uint8Array(20_000));
    expect(h.takeSeqs()).toEqual(Array.from({ length: 14 }, (_, i) => 1001 + i * 1000));
    h.clock.advance(22);
    expect(h.takeSeqs()).toEqual([15_001]); // the tail loss probe: new data
    h.clock.advance(200);
    expect(h.takeSeqs()).toEqual([1001]); // the timeout
    expect(h.counter('TCPTimeouts')).toBe(1);
    expect(windows(h)).toEqual({ cwnd: 1000, ssthresh: 7500 });
    return h;
  }

  it('the ACKs were only late: after the first one F-RTO sends new data, not the window again; the next acknowledges data never resent, and the timeout is undone', () => {
    const h = stalled();
    h.clock.advance(5);
    h.ack(2001); // the first late ACK (it may be for the original 1001 or the resend: without timestamps nobody knows)
    // step 2b: two new segments (slow start made cwnd 2000), none of the segments the timeout marked lost
    expect(h.takeSeqs()).toEqual([16_001, 17_001]);
    h.ack(5001); // step 3b: 2001-4001 were sent once, before the timeout, and arrived
    expect(h.counter('TCPSpuriousRTOs')).toBe(1);
    expect(h.counter('TCPLossUndo')).toBe(1);
    // cwnd back to the initial window, slow start goes on from there with the 3000 bytes of this
    // ACK (counted whole below ssthresh, as Linux counts a stretch ACK)
    expect(windows(h)).toEqual({ cwnd: IW + 3000, ssthresh: INFINITE });
    // nothing is resent: the rest of the new data goes (12000 in flight of 17600)
    expect(h.takeSeqs()).toEqual([18_001, 19_001, 20_001]);
    h.ack(21_001);
    expect(h.counter('RetransSegs')).toBe(1);
  });

  it('without F-RTO the same late ACKs make the sender resend the window behind SND.UNA (what F-RTO prevents)', () => {
    const h = stalled({ frto: false });
    h.clock.advance(5);
    h.ack(2001);
    expect(h.takeSeqs()).toEqual([2001, 3001]);
    h.ack(5001);
    expect(h.takeSeqs()).toEqual([5001, 6001, 7001, 8001, 9001]);
    expect(h.counter('TCPSpuriousRTOs')).toBe(0);
    expect(h.counter('RetransSegs')).toBe(8);
  });

  it('the loss was real: the ACK after the new data SACKs only the new data, so F-RTO gives up (step 3a) and the marked segments go again', () => {
    const h = stalled();
    h.clock.advance(5);
    h.ack(2001);
    expect(h.takeSeqs()).toEqual([16_001, 17_001]);
    h.ack(2001, [{ left: 16_001, right: 17_001 }]);
    expect(h.takeSeqs()).toEqual([2001]); // cwnd 2000, and 17001 is still in the network
    expect(h.counter('TCPSpuriousRTOs')).toBe(0);
    expect(h.counter('TCPLossUndo')).toBe(0);
    expect(windows(h)).toEqual({ cwnd: 2000, ssthresh: 7500 });
  });

  it('with timestamps the first late ACK already proves it (Eifel): its TSecr is older than the resend, and the timeout is undone at once', () => {
    const h = established({ timestamps: true });
    h.connection.write(new Uint8Array(20 * 988));
    const first = h.take();
    expect(first.length).toBe(14);
    h.clock.advance(22);
    h.take(); // the probe
    h.clock.advance(200);
    expect(h.takeSeqs()).toEqual([1001]);
    h.clock.advance(5);
    h.ack(1001 + 3 * 988, [], first[0]!.repr.options.timestamps!.value);
    expect(h.counter('TCPLossUndo')).toBe(1);
    expect(h.counter('TCPSpuriousRTOs')).toBe(0); // Eifel found it, not F-RTO
    expect(h.connection.info().inRecovery).toBe(false);
    // nothing resent; new data as the window restored (14600, then slow start) allows over 12 segments in flight
    expect(h.takeSeqs()).toEqual([1001 + 15 * 988, 1001 + 16 * 988, 1001 + 17 * 988, 1001 + 18 * 988, 1001 + 19 * 988]);
    expect(h.counter('RetransSegs')).toBe(1);
  });

  it('a second timeout in the same episode does not lower ssthresh again (Linux tcp_enter_loss)', () => {
    const h = stalled();
    h.clock.advance(400); // the RTO doubled
    expect(h.takeSeqs()).toEqual([1001]);
    expect(h.counter('TCPTimeouts')).toBe(2);
    expect(windows(h)).toEqual({ cwnd: 1000, ssthresh: 7500 });
  });
});

describe("RACK's reordering window (RFC 8985 6.2 step 4)", () => {
  /**
   * One round: two segments go, the second is SACKed 10 ms later, the first is lost once the
   * reordering window has passed; it is resent and everything acknowledged 10 ms later. Returns
   * how long after the SACK the resend went, ms.
   */
  function lossRound(h: Harness): number {
    const before = h.connection.info().inflight;
    expect(before).toBe(0);
    h.connection.write(new Uint8Array(2000));
    const [a, b] = h.takeSeqs();
    h.clock.advance(10);
    h.ack(a!, [{ left: b!, right: b! + 1000 }]);
    const sackedAt = h.clock.now();
    let resentAt: number | undefined;
    for (let i = 0; i < 100 && resentAt === undefined; i++) {
      h.clock.advance(0.5);
      const resent = h.take().find((s) => s.payload.length > 0);
      if (resent) {
        expect(resent.repr.seq).toBe(a);
        resentAt = resent.at;
      }
    }
    h.clock.advance(10);
    h.ack(b! + 1000);
    return resentAt! - sackedAt;
  }

  it('one step (min RTT / 4) at first; a D-SACK makes it two steps for the next 16 recoveries, then it falls back to one', () => {
    const h = established();
    expect(lossRound(h)).toBe(2.5);
    // a round whose resend was spurious: the late original fills the hole, the resend comes back as a D-SACK
    h.connection.write(new Uint8Array(2000));
    const [a, b] = h.takeSeqs();
    h.clock.advance(10);
    h.ack(a!, [{ left: b!, right: b! + 1000 }]);
    h.clock.advance(2.5);
    expect(h.takeSeqs()).toEqual([a]);
    h.clock.advance(5);
    h.ack(b! + 1000);
    h.ack(b! + 1000, [{ left: a!, right: a! + 1000 }]);
    expect(h.counter('TCPDSACKRecv')).toBe(1);
    for (let i = 1; i <= 16; i++) expect(lossRound(h)).toBe(5);
    expect(lossRound(h)).toBe(2.5);
    expect(h.counter('TCPTimeouts')).toBe(0);
  });

  it('no DupThresh with RACK on (Linux tcp_recovery 1): once reordering was seen, three SACKed segments above a hole wait for the reordering window; with RACK off they mark it at once', () => {
    const run = (rack: boolean): number[] => {
      const h = established({ params: { rack } });
      h.connection.write(new Uint8Array(10_000));
      h.takeSeqs();
      h.clock.advance(10);
      // reordering: 2001 SACKed, then 1001 (never resent) arrives below it
      h.ack(1001, [{ left: 2001, right: 3001 }]);
      h.ack(3001);
      // now 3001 is missing with three segments SACKed above it
      h.ack(3001, [{ left: 4001, right: 7001 }]);
      const at = h.take().filter((s) => s.payload.length > 0 && s.repr.seq === 3001).map((s) => s.at);
      h.clock.advance(1);
      at.push(...h.take().filter((s) => s.payload.length > 0 && s.repr.seq === 3001).map((s) => s.at));
      h.clock.advance(2);
      at.push(...h.take().filter((s) => s.payload.length > 0 && s.repr.seq === 3001).map((s) => s.at));
      expect(h.connection.info().retransmits).toBe(1);
      return at;
    };
    expect(run(false)).toEqual([20]); // DupThresh: three SACKed above
    expect(run(true)).toEqual([22.5]); // RACK: 10 + RACK.rtt 10 + min RTT / 4
  });
});

describe('a peer that reports the hole filled by its D-SACKs only', () => {
  it('D-SACK blocks below SND.UNA from before the episode do not count towards its undo', () => {
    const h = established();
    h.connection.write(new Uint8Array(10_000));
    h.takeSeqs();
    h.clock.advance(10);
    h.ack(3001);
    h.ack(3001, [{ left: 4001, right: 7001 }]);
    expect(h.takeSeqs()).toEqual([3001]);
    // a duplicate of 1001 (sent before the episode began at 3001): says nothing of this episode
    h.ack(3001, [{ left: 1001, right: 2001 }, { left: 4001, right: 7001 }]);
    expect(h.counter('TCPDSACKRecv')).toBe(1);
    expect(h.counter('TCPDSACKUndo')).toBe(0);
    expect(h.connection.info().inRecovery).toBe(true);
  });
});
