/**
 * Congestion control with exact numbers: CUBIC's window against RFC 9438's formulas worked by
 * hand (the arithmetic is in the comments), its Reno-friendly region and fast convergence, and
 * NewReno as it was (RFC 5681 / RFC 6582), alone and inside a connection.
 */
import { describe, expect, it } from 'vitest';
import { VirtualClock, ipv4 } from '@tapstack/link';
import { NewReno, type AckSample, type CongestionControl } from '../src/congestion.ts';
import { TcpConnection, type ConnectionHost } from '../src/connection.ts';
import { CUBIC_ALPHA, Cubic } from '../src/cubic.ts';
import { NO_OPTIONS, TcpFlag, TcpRepr } from '../src/header.ts';
import { seqAdd } from '../src/seq.ts';

const MSS = 1000;

/** An ACK that leaves data in flight (an ACK that leaves none marks an application pause). */
function ack(now: number, ackedBytes: number, srttMs = 100): AckSample {
  return { now, ackedBytes, mss: MSS, flightBytes: 50_000, srttMs };
}

/** A CUBIC that lost a segment at `lossWindow` bytes and, recovery over, runs at the new ssthresh. */
function cubicAfterLoss(lossWindow: number, fastConvergence = true): Cubic {
  const c = new Cubic(MSS, { fastConvergence });
  c.cwnd = lossWindow;
  c.ssthresh = c.ssthreshAfterLoss({ now: 0, flightBytes: lossWindow, mss: MSS, cause: 'duplicate-acks' });
  c.cwnd = c.ssthresh; // what the connection leaves at the end of recovery
  return c;
}

describe('CUBIC (RFC 9438)', () => {
  it('alpha_cubic is 3 (1 - 0.7) / (1 + 0.7) = 0.9 / 1.7', () => {
    expect(CUBIC_ALPHA).toBeCloseTo(0.5294117647, 10);
  });

  it('a loss at 100 segments: ssthresh 0.7 of the flight (70 000 bytes), W_max 100, and at the first ACK K = cbrt((100 - 70) / 0.4) = cbrt(75) s', () => {
    const c = cubicAfterLoss(100_000);
    expect(c.ssthresh).toBe(70_000);
    expect(c.wMax).toBe(100);
    expect(c.cwndPrior).toBe(100);
    c.onAck(ack(1000, 70_000));
    expect(c.epochStart).toBe(1000);
    expect(c.cwndEpoch).toBe(70);
    expect(c.k).toBeCloseTo(4.2171633265, 9); // 75^(1/3)
    // W(t) = 0.4 (t - K)^3 + 100
    expect(c.windowAt(0)).toBeCloseTo(70, 9); // 0.4 * -75 + 100
    expect(c.windowAt(1)).toBeCloseTo(86.680763835, 8); // 0.4 * (-3.2171633)^3 + 100 = 0.4 * -33.29809 + 100
    expect(c.windowAt(2)).toBeCloseTo(95.640335687, 8); // 0.4 * (-2.2171633)^3 + 100 = 0.4 * -10.89916 + 100
    expect(c.windowAt(3)).toBeCloseTo(99.278715555, 8); // 0.4 * (-1.2171633)^3 + 100 = 0.4 * -1.80321 + 100
    expect(c.windowAt(c.k)).toBe(100); // the plateau: back at W_max after K seconds
    expect(c.windowAt(5)).toBeCloseTo(100.191899339, 8); // 0.4 * 0.7828367^3 + 100: convex from here
    expect(c.windowAt(6)).toBeCloseTo(102.266703256, 8); // 0.4 * 1.7828367^3 + 100
  });

  it('ACKs of a whole window once a second (SRTT 100 ms): cwnd follows W(t + RTT), concave up to W_max and convex beyond, at most 1.5x per step', () => {
    const c = cubicAfterLoss(100_000);
    // The first ACK opens the stage at t = 0: W(0) = 70 is below the Reno estimate
    // W_est = 70 + alpha * 70 / 70 = 70.5294, so the Reno-friendly window wins.
    c.onAck(ack(1000, c.cwnd));
    expect(c.cwnd).toBe(70_529);
    // From then on each ACK acknowledges cwnd / MSS segments, so one step
    // cwnd + (target - cwnd) / cwnd * segments_acked lands on target = W(t + 0.1) exactly.
    const steps: [number, number][] = [
      [1900, 86_680], // W(1.0) = 86.68076
      [2900, 95_640], // W(2.0) = 95.64034
      [3900, 99_278], // W(3.0) = 99.27872
      [4900, 99_995], // W(4.0) = 99.99590: the plateau near W_max
      [5900, 100_191], // W(5.0) = 100.19190
      [6900, 102_266], // W(6.0) = 102.26670
      [20_900, 153_399], // W(20.0) = 1 672.6, clamped to 1.5 * 102.266 = 153.399 segments
    ];
    for (const [now, cwnd] of steps) {
      c.onAck(ack(now, c.cwnd));
      expect(c.cwnd, `at ${now} ms`).toBe(cwnd);
    }
  });

  it('the Reno-friendly region: with a 10 ms RTT the Reno estimate outgrows W(t), alpha 0.5294 per RTT until W_est passes cwnd_prior (20 segments), then 1', () => {
    const c = cubicAfterLoss(20_000);
    expect(c.ssthresh).toBe(14_000);
    const windows: number[] = [];
    for (let i = 0; i < 14; i++) {
      c.onAck(ack(i * 10, c.cwnd, 10));
      windows.push(c.cwnd);
      // W(t) stays near its start: W(0.13) = 0.4 (0.13 - cbrt(15))^3 + 20 = 14.90 segments
      expect(c.windowAt(i / 100)).toBeLessThan(c.wEst);
    }
    expect(c.k).toBeCloseTo(2.466212074, 8); // cbrt((20 - 14) / 0.4)
    // W_est = 14 + n * 0.5294118 while below 20: 14.5294, 15.0588, ... 20.3529 (n = 12),
    // then + 1 per window: 21.3529, 22.3529.
    expect(windows).toEqual([14_529, 15_058, 15_588, 16_117, 16_647, 17_176, 17_705, 18_235, 18_764, 19_294, 19_823, 20_352, 21_352, 22_352]);
  });

  it('fast convergence: a second loss below the last W_max remembers (1 + 0.7) / 2 of the window, so K is shorter', () => {
    for (const fastConvergence of [true, false]) {
      const c = cubicAfterLoss(100_000, fastConvergence);
      c.cwnd = 80_000; // the next loss comes before the window is back at W_max = 100
      c.ssthresh = c.ssthreshAfterLoss({ now: 5000, flightBytes: 80_000, mss: MSS, cause: 'duplicate-acks' });
      c.cwnd = c.ssthresh;
      expect(c.ssthresh).toBe(56_000);
      c.onAck(ack(6000, MSS));
      if (fastConvergence) {
        expect(c.wMax).toBe(68); // 80 * 1.7 / 2
        expect(c.k).toBeCloseTo(3.107232506, 8); // cbrt((68 - 56) / 0.4) = cbrt(30)
      } else {
        expect(c.wMax).toBe(80);
        expect(c.k).toBeCloseTo(3.914867641, 8); // cbrt((80 - 56) / 0.4) = cbrt(60)
      }
    }
    // A loss above the last W_max takes the window as it is.
    const c = cubicAfterLoss(100_000);
    c.cwnd = 120_000;
    c.ssthreshAfterLoss({ now: 9000, flightBytes: 120_000, mss: MSS, cause: 'duplicate-acks' });
    expect(c.wMax).toBe(120);
  });

  it('undo (a spurious loss): W_max, K and the stage go back to where they stood, so the curve goes on as if nothing happened', () => {
    const c = cubicAfterLoss(100_000); // W_max 100, the stage begins at the first ACK
    c.onAck(ack(1000, MSS));
    const stage = { wMax: c.wMax, k: c.k, epochStart: c.epochStart, cwndEpoch: c.cwndEpoch, wEst: c.wEst, cwndPrior: c.cwndPrior };
    expect(stage.wMax).toBe(100);
    // a second loss at 80 segments, before W_max: fast convergence would lower W_max to 68
    c.cwnd = 80_000;
    c.ssthresh = c.ssthreshAfterLoss({ now: 5000, flightBytes: 80_000, mss: MSS, cause: 'duplicate-acks' });
    expect(c.wMax).toBe(68);
    expect(c.epochStart).toBeUndefined();
    // ...which D-SACKs prove spurious: the connection restores cwnd and ssthresh, CUBIC its curve
    c.undo();
    expect({ wMax: c.wMax, k: c.k, epochStart: c.epochStart, cwndEpoch: c.cwndEpoch, wEst: c.wEst, cwndPrior: c.cwndPrior }).toEqual(stage);
    c.undo(); // once only: nothing more to restore
    expect(c.wMax).toBe(100);
    // a timeout undone: the next stage is not the K = 0 one of RFC 9438 4.8
    const t = cubicAfterLoss(100_000);
    t.onAck(ack(1000, MSS));
    t.ssthreshAfterLoss({ now: 2000, flightBytes: 90_000, mss: MSS, cause: 'timeout' });
    t.onStateChange('loss');
    t.undo();
    t.onAck(ack(2100, MSS));
    expect(t.k).toBeCloseTo(Math.cbrt((100 - 70) / 0.4), 9);
  });

  it('after a timeout the first stage has K = 0 and W_max = cwnd_epoch (RFC 9438 4.8): W(t) = 0.4 t^3 + cwnd_epoch', () => {
    const c = new Cubic(MSS);
    c.cwnd = 100_000;
    c.ssthresh = c.ssthreshAfterLoss({ now: 0, flightBytes: 100_000, mss: MSS, cause: 'timeout' });
    c.onStateChange('loss');
    expect(c.ssthresh).toBe(70_000);
    c.cwnd = MSS; // the loss window
    // slow start back to ssthresh: every byte acknowledged counts, a stretch ACK too (Linux)
    c.onAck(ack(200, 4 * MSS));
    expect(c.cwnd).toBe(5 * MSS);
    c.onAck(ack(300, 100_000));
    expect(c.cwnd).toBe(70_000); // no further than ssthresh
    c.cwnd = 70_000;
    c.onAck(ack(1000, MSS));
    expect(c.k).toBe(0);
    expect(c.wMax).toBe(70);
    expect(c.windowAt(2)).toBeCloseTo(73.2, 9); // 0.4 * 8 + 70
  });

  it('an application pause is not time on the curve: the stage start moves by the idle time less one SRTT', () => {
    const c = cubicAfterLoss(100_000);
    c.onAck(ack(1000, c.cwnd)); // the stage begins at 1000 ms: cwnd 70 529 (as above)
    c.onAck({ ...ack(1900, c.cwnd), flightBytes: 0 }); // W(1.0): 86 680, and nothing left in flight
    expect(c.cwnd).toBe(86_680);
    // Ten seconds later the application writes again; its first ACK comes one SRTT (100 ms)
    // after the send. Idle: 11 900 - 100 - 1900 = 9900 ms, so t is 11.9 - 1.0 - 9.9 = 1.0 s, not 10.9.
    c.onAck(ack(11_900, c.cwnd));
    expect(c.epochStart).toBe(10_900);
    // A whole window acknowledged steps onto the target W(1.0 + 0.1) = 87.88457 segments; without
    // the shift it would be W(11.0) = 224.8, clamped to 1.5 x 86.68: 130 020 bytes.
    expect(c.cwnd).toBe(87_884);
  });

  it('starts with 10 segments and slow-starts like Reno', () => {
    const c = new Cubic(1460);
    expect(c.cwnd).toBe(14_600);
    c.onAck({ now: 0, ackedBytes: 2920, mss: 1460, flightBytes: 0, srttMs: undefined });
    expect(c.cwnd).toBe(17_520);
  });
});

describe('NewReno (RFC 5681, RFC 6582), unchanged', () => {
  it('slow start by every byte acknowledged (a stretch ACK counts whole) up to ssthresh; congestion avoidance one segment per window', () => {
    const r = new NewReno(MSS);
    expect(r.cwnd).toBe(10_000);
    r.onAck(ack(0, 1000));
    r.onAck(ack(0, 5000));
    expect(r.cwnd).toBe(16_000); // + 1000, + 5000: an ACK for five segments counts as five
    r.ssthresh = 17_000;
    r.onAck(ack(0, 5000));
    expect(r.cwnd).toBe(17_000); // capped at ssthresh
    r.cwnd = 13_000;
    r.ssthresh = 13_000;
    for (let i = 0; i < 12; i++) r.onAck(ack(0, 1000));
    expect(r.cwnd).toBe(13_000); // 12 000 bytes of credit: one short of a window
    r.onAck(ack(0, 1000));
    expect(r.cwnd).toBe(14_000);
    expect(r.ssthreshAfterLoss({ now: 0, flightBytes: 14_000, mss: MSS, cause: 'duplicate-acks' })).toBe(7000);
    expect(r.ssthreshAfterLoss({ now: 0, flightBytes: 3000, mss: MSS, cause: 'timeout' })).toBe(2000); // at least two segments
  });
});

/** A connection on a virtual clock whose segments are collected, with the algorithm given. */
function connection(cc?: CongestionControl | 'newreno' | 'cubic'): { c: TcpConnection; sent: TcpRepr[]; clock: VirtualClock; peer(ack: number): void } {
  const clock = new VirtualClock();
  const sent: TcpRepr[] = [];
  const host: ConnectionHost = {
    clock,
    output: (_c, repr) => void sent.push(TcpRepr.copy(repr)),
    established: () => {},
    forget: () => {},
    count: () => {},
    allowChallengeAck: () => true,
  };
  const options = { local: { address: ipv4('10.0.0.2'), port: 40000 }, remote: { address: ipv4('10.0.0.1'), port: 80 }, iss: 1000, localMss: 1000, params: { timestamps: false, sack: false } };
  const c =
    cc === undefined
      ? TcpConnection.connect(host, options)
      : typeof cc === 'string'
        ? TcpConnection.connect(host, { ...options, params: { ...options.params, congestionControl: cc } })
        : TcpConnection.connect(host, { ...options, congestion: cc });
  const peer = (ackNumber: number, flags: number = TcpFlag.ACK, seq = 5001): void =>
    c.input({ sourcePort: 80, destinationPort: 40000, seq, ack: ackNumber, flags, window: 65535, urgentPointer: 0, options: NO_OPTIONS }, new Uint8Array(0));
  // the handshake: the peer offers MSS 1000, no timestamps, so segments carry 1000 bytes
  c.input({ sourcePort: 80, destinationPort: 40000, seq: 5000, ack: 1001, flags: TcpFlag.SYN | TcpFlag.ACK, window: 65535, urgentPointer: 0, options: { mss: 1000 } }, new Uint8Array(0));
  sent.length = 0;
  return { c, sent, clock, peer: (n) => peer(n) };
}

describe('the connection drives the algorithm', () => {
  it('cubic is the default; newreno is chosen by name', () => {
    expect(connection().c.info().congestionControl).toBe('cubic');
    expect(connection('newreno').c.info().congestionControl).toBe('newreno');
  });

  it('NewReno fast recovery inside a connection: ssthresh = flight / 2, cwnd = ssthresh + 3 MSS, +1 MSS per duplicate, partial ACK deflates, exit at min(ssthresh, flight + MSS)', () => {
    const { c, sent, peer } = connection('newreno');
    expect(c.info().mss).toBe(1000);
    c.write(new Uint8Array(10_000)); // the initial window: 10 segments of 1000
    expect(sent.length).toBe(10);
    const base = 1001;
    // segment 1 is lost: the peer acknowledges nothing new three times
    for (let i = 0; i < 3; i++) peer(base);
    expect(c.info().ssthresh).toBe(5000); // 10 000 in flight / 2
    expect(c.info().cwnd).toBe(8000); // 5000 + 3 * 1000
    peer(base);
    expect(c.info().cwnd).toBe(9000);
    // a partial ACK (segments 1 and 2 arrive, 3 was lost too): deflate by 2000, add 1000 back
    peer(seqAdd(base, 2000));
    expect(c.info().cwnd).toBe(8000);
    // everything acknowledged: recovery ends with min(ssthresh, 0 + 1000)
    peer(seqAdd(base, 10_000));
    expect(c.info().cwnd).toBe(1000);
    expect(c.info().ssthresh).toBe(5000);
  });

  it('a timeout: ssthresh from the algorithm (CUBIC: 0.7 of the flight), cwnd one segment, and the algorithm hears loss (then open, without SACK)', () => {
    const states: string[] = [];
    const cubic = new Cubic(1000);
    const spy: CongestionControl = {
      name: 'spy',
      get cwnd() {
        return cubic.cwnd;
      },
      set cwnd(v: number) {
        cubic.cwnd = v;
      },
      get ssthresh() {
        return cubic.ssthresh;
      },
      set ssthresh(v: number) {
        cubic.ssthresh = v;
      },
      onAck: (s) => cubic.onAck(s),
      ssthreshAfterLoss: (l) => cubic.ssthreshAfterLoss(l),
      onStateChange: (s, now) => {
        states.push(s);
        cubic.onStateChange(s);
        void now;
      },
    };
    const { c, clock, peer } = connection(spy);
    c.write(new Uint8Array(10_000));
    clock.advance(200); // the first RTO: the SYN took 0 ms, so RTO min, 200 ms
    expect(c.info().ssthresh).toBe(7000);
    expect(c.info().cwnd).toBe(1000);
    // Without SACK the connection goes back to SND.UNA (go-back-N) and stays in 'loss' until
    // SND.UNA passes what was sent before the timeout (Linux's tcp_process_loss for Reno).
    expect(states).toEqual(['loss']);
    peer(1001 + 10_000);
    expect(c.info().cwnd).toBe(7000); // slow start: 1000 + 10 000 acked, stopped at ssthresh
    // everything acknowledged, exactly up to `recover`: held until something above it is (RFC 6582 5)
    expect(states).toEqual(['loss']);
  });
});
