/**
 * RACK when the ACKs come late: on a real clock a busy process (or a queue in front of the
 * peer) makes every round trip longer than the least one seen, so the rules that tell an ACK for
 * a retransmission from one for its original by the round trip alone (an ACK quicker than
 * min_RTT cannot be for the resend) stop telling them apart. One connection driven by hand as in
 * recovery-undo-partial.test.ts: ISS 1000, data from 1001, 988 bytes per segment (timestamps
 * on), NewReno, RTT 10 ms, so min_RTT 10 ms and RACK's reordering window 2.5 ms once reordering
 * is seen. Each scenario failed before its fix (named in the test).
 */
import { describe, expect, it } from 'vitest';
import { established, type Harness } from './harness.ts';

const MSS = 988;
const seq = (i: number): number => 1001 + i * MSS;

/** Ten segments sent at t = 10; returns the TSval they carried. */
function tenSent(h: Harness): number {
  h.connection.write(new Uint8Array(10 * MSS));
  const sent = h.take();
  expect(sent.map((s) => s.repr.seq)).toEqual(Array.from({ length: 10 }, (_, i) => seq(i)));
  return sent[0]!.repr.options.timestamps!.value;
}

/** Segment 0 late, 1-3 SACKed at t = 20: RACK resends 0 at once; returns the original's TSval and the resend's. */
function recovering(h: Harness): { original: number; resend: number } {
  const original = tenSent(h);
  h.clock.advance(10);
  h.ack(seq(0), [{ left: seq(1), right: seq(4) }], original);
  const data = h.take().filter((s) => s.payload.length > 0);
  expect(data.map((s) => s.repr.seq)).toEqual([seq(0)]);
  return { original, resend: data[0]!.repr.options.timestamps!.value };
}

describe('RACK: an ACK for an original is not taken for its retransmission (RFC 8985 6.2 step 2, the TSecr test)', () => {
  it('the late original fills the hole 15 ms after the resend (longer than min_RTT: a queue): partial undo, and 4-9, sent before the resend, are not judged lost', () => {
    const h = established({ timestamps: true });
    const { original } = recovering(h);
    // The ACK echoes the original's TSval: the resend (sent at t = 20) is not what arrived. Its
    // round trip "15 ms" is above min_RTT, so only the echo tells; taken for the resend, RACK
    // would move its clock to t = 20 and judge 4-9 (sent at t = 10, unacknowledged because the
    // ACKs are late) lost: a new recovery and six needless resends on the undo's own ACK.
    h.clock.advance(15);
    h.ack(seq(4), [], original);
    expect(h.counter('TCPPartialUndo')).toBe(1);
    expect(h.connection.info().inRecovery).toBe(false);
    expect(h.takeSeqs()).toEqual([]);
    expect(h.counter('RetransSegs')).toBe(1);
    expect(h.counter('TCPSackRecovery')).toBe(1);
    // and when their ACKs come, nothing was lost
    h.ack(seq(10), [], original);
    expect(h.counter('RetransSegs')).toBe(1);
  });

  it('its twin: the same late ACK echoing the resend says the resend arrived, so 4-9, sent 10 ms before it, are lost (RACK as it should be)', () => {
    const h = established({ timestamps: true });
    const { resend } = recovering(h);
    h.clock.advance(15);
    h.ack(seq(4), [], resend);
    expect(h.counter('TCPPartialUndo')).toBe(0);
    expect(h.connection.info().inRecovery).toBe(true);
    expect(h.takeSeqs()).toEqual([seq(4), seq(5), seq(6), seq(7)]);
  });
});

describe('RACK.rtt is the round trip of the latest-sent segment each ACK delivers (RFC 8985 6.2 step 2)', () => {
  it('an ACK that delivers only an older segment, later than before, stretches RACK.rtt: the segments sent with it get as long before they are judged lost', () => {
    const h = established({ timestamps: true });
    const original = tenSent(h);
    // t = 20: 9 arrived first (10 ms round trip); 0-8, sent in the same instant, get RACK.rtt
    // plus the reordering window (2.5 ms, reordering seen below) from their sending: t = 22.5
    h.clock.advance(10);
    h.ack(seq(0), [{ left: seq(9), right: seq(10) }], original);
    // t = 22: 5 arrives, 12 ms after it was sent: the path's round trip is now 12 ms, so 0-8 are
    // due at t = 24.5. With RACK.rtt left at 10 ms (5 was sent before 9) they were due at 22.5.
    h.clock.advance(2);
    h.ack(seq(0), [{ left: seq(5), right: seq(6) }, { left: seq(9), right: seq(10) }], original);
    h.clock.advance(1);
    expect(h.takeSeqs()).toEqual([]);
    expect(h.counter('RetransSegs')).toBe(0);
    // t = 23: they were only late
    h.ack(seq(10), [], original);
    h.clock.advance(5);
    expect(h.counter('RetransSegs')).toBe(0);
    expect(h.counter('TCPSackRecovery')).toBe(0);
  });

  it('its twin: nothing more arrives, and at t = 24.5 RACK judges 0-4 and 6-8 lost', () => {
    const h = established({ timestamps: true });
    const original = tenSent(h);
    h.clock.advance(10);
    h.ack(seq(0), [{ left: seq(9), right: seq(10) }], original);
    h.clock.advance(2);
    h.ack(seq(0), [{ left: seq(5), right: seq(6) }, { left: seq(9), right: seq(10) }], original);
    h.clock.advance(2);
    expect(h.takeSeqs()).toEqual([]);
    h.clock.advance(0.5);
    expect(h.counter('TCPSackRecovery')).toBe(1);
    expect(h.takeSeqs()[0]).toBe(seq(0));
  });
});
