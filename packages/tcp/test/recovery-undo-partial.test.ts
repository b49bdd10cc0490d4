/**
 * Partial undo (Linux tcp_try_undo_partial) and undo on the NewReno path, one connection driven
 * by hand as in recovery-undo.test.ts (ISS 1000, data from 1001, the peer's MSS 1000, timestamps
 * on, so 988 bytes of data per segment; NewReno, so ssthresh is half the flight; RTT 10 ms, RTO
 * 200 ms). Each undo has its twin where the retransmission was needed, and nothing is undone.
 *
 * How the peer's timestamps tell (RFC 7323 4.3, RFC 3522): the ACK that a segment filling a hole
 * brings echoes that segment's TSval. If the hole was filled by the original, the echo is older
 * than our first retransmission: the original was delayed, not lost.
 */
import { describe, expect, it } from 'vitest';
import { established, type Harness } from './harness.ts';

const MSS = 988;
const seq = (i: number): number => 1001 + i * MSS;
const windows = (h: Harness) => ({ cwnd: h.connection.info().cwnd, ssthresh: h.connection.info().ssthresh });
/** NewReno's ssthresh before any loss. */
const INFINITE = Number.MAX_SAFE_INTEGER;
/** The initial window: 10 segments of our own MSS (1460), RFC 6928. */
const IW = 14_600;

/**
 * How every episode here starts: `written` segments written at t = 0, of which the first `sent`
 * go out (the initial window); `wait` ms later `provoke` (the ACKs that start a recovery; none
 * for a timeout) makes the sender resend exactly one segment, segment 0, with the TSval of that
 * moment, and leaves the windows at `windows`. Returns the TSval of the original (every segment
 * of the first flight carries it) and of the resend: the echo in the peer's next ACK tells which
 * of the two filled the hole.
 */
function episode(o: {
  sack: boolean;
  written: number;
  sent: number;
  wait: number;
  provoke?: (h: Harness, original: number) => void;
  windows: { cwnd: number; ssthresh: number };
}): { h: Harness; original: number; resend: number } {
  const h = established({ sack: o.sack, timestamps: true });
  h.connection.write(new Uint8Array(o.written * MSS));
  const sent = h.take();
  expect(sent.map((s) => s.repr.seq)).toEqual(Array.from({ length: o.sent }, (_, i) => seq(i)));
  const original = sent[0]!.repr.options.timestamps!.value;
  h.clock.advance(o.wait);
  o.provoke?.(h, original);
  const data = h.take().filter((s) => s.payload.length > 0);
  expect(data.length).toBe(1);
  expect(data[0]!.repr.seq).toBe(seq(0));
  const resend = data[0]!.repr.options.timestamps!.value;
  expect(resend).toBe(original + o.wait);
  expect(windows(h)).toEqual(o.windows);
  return { h, original, resend };
}

describe('partial undo with SACK (Linux tcp_try_undo_partial)', () => {
  /** Segment 0 late; 1-3 SACKed: RACK resends 0 at once (three SACKed, no reordering seen yet). */
  function recovering(): { h: Harness; original: number; resend: number } {
    return episode({
      sack: true,
      written: 10,
      sent: 10,
      wait: 10,
      provoke: (h, original) => h.ack(seq(0), [{ left: seq(1), right: seq(4) }], original),
      // PRR: pipe 6 segments > ssthresh, so ceil(3 * 988 * 4940 / 9880) = 1482 beyond the pipe
      windows: { cwnd: 6 * MSS + 1482, ssthresh: 5 * MSS },
    });
  }

  it('the hole is filled by the late original (the ACK to 4 echoes its TSval) while 4-9 are still out: undone, recovery left, reordering of 4 segments learnt', () => {
    const { h, original } = recovering();
    h.clock.advance(1);
    h.ack(seq(4), [], original);
    expect(h.counter('TCPPartialUndo')).toBe(1);
    expect(h.counter('TCPTSReorder')).toBe(1);
    expect(h.connection.info().inRecovery).toBe(false);
    // the window from before, grown by the 4 segments this ACK acknowledged (slow start, ssthresh infinite again)
    expect(windows(h)).toEqual({ cwnd: IW + 4 * MSS, ssthresh: INFINITE });
    // Linux's tcp_check_sack_reordering: from the old SND.UNA to the highest data the peer holds (SND.UNA now)
    expect(h.connection.info().reordering).toBe(4);
    expect(h.connection.info().lastUndo).toEqual({ kind: 'partial', cwndBefore: 6 * MSS + 1482, ssthreshBefore: 5 * MSS, cwndAfter: IW, ssthreshAfter: INFINITE });
    // new data goes with the restored window (6 segments in flight of 18552 bytes: 12 more fit, 10 written)
    h.connection.write(new Uint8Array(10 * MSS));
    expect(h.takeSeqs()).toEqual(Array.from({ length: 10 }, (_, i) => seq(10 + i)));
    // the resend comes back as a duplicate: nothing more to undo
    h.ack(seq(4), [{ left: seq(0), right: seq(1) }], original);
    h.ack(seq(20), [], original + 11);
    expect(h.counter('TCPDSACKUndo')).toBe(0);
    expect(h.counter('RetransSegs')).toBe(1);
    expect(windows(h).ssthresh).toBe(INFINITE);
  });

  it('the same partial ACK echoing the resend: the loss was real, recovery goes on (PRR), no undo', () => {
    const { h, resend } = recovering();
    h.clock.advance(10);
    h.ack(seq(4), [], resend);
    expect(h.counter('TCPPartialUndo')).toBe(0);
    expect(h.counter('TCPTSReorder')).toBe(0);
    expect(h.connection.info().inRecovery).toBe(true);
    expect(h.connection.info().reordering).toBe(3);
    expect(h.connection.info().lastUndo).toBeUndefined();
    // The resend, sent at t = 10, was delivered within RACK.rtt: 4-9, sent before it, are lost
    // too (RFC 8985 6.2). The pipe is empty, so PRR's slow-start part (RFC 6937) sets the pace:
    // min(ssthresh - pipe, max(prr_delivered - prr_out, DeliveredData) + MSS) = min(4940, 2964 + 988)
    expect(windows(h)).toEqual({ cwnd: 4 * MSS, ssthresh: 5 * MSS });
    expect(h.takeSeqs()).toEqual([seq(4), seq(5), seq(6), seq(7)]);
  });

  it('a retransmission of the episode still in the network: reordering is learnt, but nothing is undone yet (Linux waits for it)', () => {
    const h = established({ timestamps: true });
    h.connection.write(new Uint8Array(10 * MSS));
    const sent = h.take();
    expect(sent.map((s) => s.repr.seq)).toEqual(Array.from({ length: 10 }, (_, i) => seq(i)));
    const original = sent[0]!.repr.options.timestamps!.value;
    h.clock.advance(10);
    // 0 and 4 missing, 1-3 and 5-7 SACKed: RACK resends both
    h.ack(seq(0), [{ left: seq(1), right: seq(4) }, { left: seq(5), right: seq(8) }], original);
    expect(h.takeSeqs()).toEqual([seq(0), seq(4)]);
    // the late original of 0 fills the first hole; 4's resend is still out
    h.clock.advance(1);
    h.ack(seq(4), [{ left: seq(5), right: seq(8) }], original);
    expect(h.counter('TCPTSReorder')).toBe(1);
    expect(h.counter('TCPPartialUndo')).toBe(0);
    expect(h.connection.info().inRecovery).toBe(true);
    // the distance from the old SND.UNA to the highest SACKed byte: 8 segments
    expect(h.connection.info().reordering).toBe(8);
  });
});

describe('undo without SACK (NewReno, Linux tcp_try_undo_partial / tcp_try_undo_recovery / tcp_try_undo_loss)', () => {
  /** Segment 0 late; three duplicate ACKs: fast retransmit of 0, cwnd ssthresh + 3 segments. */
  function fastRetransmit(): { h: Harness; original: number; resend: number } {
    const e = episode({
      sack: false,
      written: 10,
      sent: 10,
      wait: 10,
      provoke: (h, original) => {
        for (let i = 0; i < 3; i++) h.ack(seq(0), [], original);
      },
      windows: { cwnd: 5 * MSS + 3 * MSS, ssthresh: 5 * MSS },
    });
    expect(e.h.counter('TCPRenoRecovery')).toBe(1);
    return e;
  }

  it('partial undo: the partial ACK echoes the original; undone, open again, and the reordering estimate is all that was sent (10 segments)', () => {
    const { h, original } = fastRetransmit();
    h.clock.advance(1);
    h.ack(seq(4), [], original);
    expect(h.counter('TCPPartialUndo')).toBe(1);
    expect(h.counter('TCPTSReorder')).toBe(1);
    expect(h.connection.info().inRecovery).toBe(false);
    expect(windows(h)).toEqual({ cwnd: IW + 4 * MSS, ssthresh: INFINITE });
    expect(h.connection.info().reordering).toBe(10);
    expect(h.takeSeqs()).toEqual([]); // no resend of segment 4
    // three more duplicates (the resend of 0 arriving, and 5-6 say): not enough now for a fast retransmit
    for (let i = 0; i < 3; i++) h.ack(seq(4), [], original);
    expect(h.takeSeqs()).toEqual([]);
    expect(h.counter('TCPRenoRecovery')).toBe(1);
    expect(h.counter('RetransSegs')).toBe(1);
  });

  it('the partial ACK echoes the resend: the loss was real: deflate by 4, add 1 (RFC 6582) and resend segment 4', () => {
    const { h, resend } = fastRetransmit();
    h.clock.advance(10);
    h.ack(seq(4), [], resend);
    expect(h.counter('TCPPartialUndo')).toBe(0);
    expect(h.connection.info().inRecovery).toBe(true);
    expect(windows(h)).toEqual({ cwnd: 8 * MSS - 4 * MSS + MSS, ssthresh: 5 * MSS });
    expect(h.takeSeqs()).toEqual([seq(4)]);
    expect(h.counter('RetransSegs')).toBe(2);
  });

  it('full undo: the ACK of everything echoes the original; recovery is held at `recover` until data above it is acknowledged, and duplicates meanwhile change nothing', () => {
    const { h, original } = fastRetransmit();
    h.clock.advance(1);
    h.ack(seq(10), [], original);
    expect(h.counter('TCPFullUndo')).toBe(1);
    expect(windows(h)).toEqual({ cwnd: IW, ssthresh: INFINITE });
    expect(h.connection.info().lastUndo?.kind).toBe('full');
    expect(h.connection.info().inRecovery).toBe(true); // held (Linux: tcp_is_non_sack_preventing_reopen)
    // new data, and the duplicate ACKs the needless resend of 0 brings: no fast retransmit, no inflation
    h.connection.write(new Uint8Array(5 * MSS));
    expect(h.takeSeqs()).toEqual([seq(10), seq(11), seq(12), seq(13), seq(14)]);
    for (let i = 0; i < 3; i++) h.ack(seq(10), [], original);
    expect(h.takeSeqs()).toEqual([]);
    expect(windows(h)).toEqual({ cwnd: IW, ssthresh: INFINITE });
    h.clock.advance(10);
    h.ack(seq(15), [], original + 11);
    expect(h.connection.info().inRecovery).toBe(false);
    expect(h.counter('TCPFullUndo')).toBe(1);
    expect(h.counter('RetransSegs')).toBe(1);
  });

  it('the ACK of everything echoes the resend: no undo, the window comes down to min(ssthresh, FlightSize + SMSS)', () => {
    const { h, resend } = fastRetransmit();
    h.clock.advance(10);
    h.ack(seq(10), [], resend);
    expect(h.counter('TCPFullUndo')).toBe(0);
    expect(windows(h)).toEqual({ cwnd: MSS, ssthresh: 5 * MSS });
    expect(h.connection.info().lastUndo).toBeUndefined();
  });

  /** 20 segments written: the initial window takes 14; no ACK comes, the RTO fires at t = 210 and resends 0 (go-back-N). */
  function timedOut(): { h: Harness; original: number; resend: number } {
    const e = episode({ sack: false, written: 20, sent: 14, wait: 200, windows: { cwnd: MSS, ssthresh: 7 * MSS } });
    expect(e.h.counter('TCPTimeouts')).toBe(1);
    return e;
  }

  it('loss undo: the first ACK after the timeout echoes the original (Eifel): the window is back, and sending goes on after the 14 segments instead of going back', () => {
    const { h, original } = timedOut();
    h.clock.advance(5);
    h.ack(seq(3), [], original);
    expect(h.counter('TCPLossUndo')).toBe(1);
    expect(h.counter('TCPSpuriousRTOs')).toBe(0);
    // IW back, and slow start with the 3 segments acknowledged
    expect(windows(h)).toEqual({ cwnd: IW + 3 * MSS, ssthresh: INFINITE });
    expect(h.connection.info().lastUndo).toEqual({ kind: 'loss', cwndBefore: MSS, ssthreshBefore: 7 * MSS, cwndAfter: IW, ssthreshAfter: INFINITE });
    // 11 in flight, 17564 allowed: the 6 unsent segments go, none of 3-13 again
    expect(h.takeSeqs()).toEqual(Array.from({ length: 6 }, (_, i) => seq(14 + i)));
    h.ack(seq(20), [], original + 6);
    expect(h.counter('RetransSegs')).toBe(1);
  });

  it('the first ACK after the timeout echoes the resend: the loss was real, go-back-N resends from 3 as slow start allows (4 segments)', () => {
    const { h, resend } = timedOut();
    h.clock.advance(10);
    h.ack(seq(3), [], resend);
    expect(h.counter('TCPLossUndo')).toBe(0);
    expect(windows(h)).toEqual({ cwnd: 4 * MSS, ssthresh: 7 * MSS });
    expect(h.takeSeqs()).toEqual([seq(3), seq(4), seq(5), seq(6)]);
  });
});
