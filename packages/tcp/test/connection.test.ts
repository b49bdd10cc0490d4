/**
 * One connection driven by hand: segments in as TcpReprs, segments out collected, time on a
 * virtual clock. Every transition, every timer, the acceptance and RST rules.
 */
import { describe, expect, it } from 'vitest';
import { VirtualClock, ipv4 } from '@tapstack/link';
import { TcpConnection, type ConnectionCounter, type ConnectionHost, type TcpParams } from '../src/connection.ts';
import type { TcpErrorCode } from '../src/errors.ts';
import { NO_OPTIONS, TcpFlag, formatTcpFlags, type TcpOptions, TcpRepr } from '../src/header.ts';
import { seqAdd } from '../src/seq.ts';
import { segmentBytes, type SegmentData } from '../src/send-buffer.ts';
import type { SocketEvents } from '../src/socket.ts';

const { SYN, ACK, FIN, RST, PSH } = TcpFlag;
const ISS = 1000;
const PEER_ISS = 5000;

interface Sent {
  at: number;
  repr: TcpRepr;
  payload: Uint8Array;
}

class Harness implements ConnectionHost, SocketEvents {
  readonly clock = new VirtualClock();
  readonly sent: Sent[] = [];
  readonly counts = new Map<string, number>();
  readonly events: string[] = [];
  closedWith: TcpErrorCode | 'clean' | undefined;
  forgotten = false;
  allowChallenges = true;
  connection!: TcpConnection;

  output(_c: TcpConnection, repr: TcpRepr, payload: SegmentData): void {
    this.sent.push({ at: this.clock.now(), repr: TcpRepr.copy(repr), payload: segmentBytes(payload) });
  }
  established(): void {
    this.events.push('established');
  }
  forget(): void {
    this.forgotten = true;
  }
  count(name: ConnectionCounter, by = 1): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + by);
  }
  allowChallengeAck(): boolean {
    return this.allowChallenges;
  }
  // socket side
  connectionEstablished(): void {
    this.events.push('connect');
  }
  dataArrived(): void {
    this.events.push('data');
  }
  peerFinished(): void {
    this.events.push('end');
  }
  sendSpace(): void {}
  connectionClosed(error?: TcpErrorCode): void {
    this.closedWith = error ?? 'clean';
  }

  /** Segments sent since the last call. */
  take(): Sent[] {
    return this.sent.splice(0);
  }
  /** The peer sends a segment. */
  peer(flags: number, seq: number, ack: number, payload: Uint8Array = new Uint8Array(0), options: TcpOptions = NO_OPTIONS, window = 65535): void {
    this.connection.input({ sourcePort: 80, destinationPort: 40000, seq, ack, flags, window, urgentPointer: 0, options }, payload);
  }
}

const LOCAL = { address: ipv4('10.0.0.2'), port: 40000 };
const REMOTE = { address: ipv4('10.0.0.1'), port: 80 };

function active(params: Partial<TcpParams> = {}): Harness {
  const h = new Harness();
  h.connection = TcpConnection.connect(h, { local: LOCAL, remote: REMOTE, iss: ISS, localMss: 1460, params });
  h.connection.attach(h);
  return h;
}

/** An established connection (we opened it; the peer offered only MSS 1460, so no options on segments). */
function established(params: Partial<TcpParams> = {}): Harness {
  const h = active(params);
  h.take();
  h.peer(SYN | ACK, PEER_ISS, ISS + 1, undefined, { mss: 1460 });
  expect(h.connection.state).toBe('ESTABLISHED');
  h.take();
  return h;
}

const flags = (s: Sent[]): string[] => s.map((x) => formatTcpFlags(x.repr.flags));
const bytes = (n: number, fill = 0x61): Uint8Array => new Uint8Array(n).fill(fill);

describe('opening', () => {
  it('active open: the SYN carries MSS, SACK-permitted, timestamps and window scale; SYN-ACK then ACK; ESTABLISHED', () => {
    const h = active();
    const [syn] = h.take();
    expect(syn!.repr.flags).toBe(SYN);
    expect(syn!.repr.seq).toBe(ISS);
    expect(syn!.repr.options.mss).toBe(1460);
    expect(syn!.repr.options.sackPermitted).toBe(true);
    expect(syn!.repr.options.timestamps?.echo).toBe(0);
    expect(syn!.repr.options.windowScale).toBeGreaterThan(0);
    h.peer(SYN | ACK, PEER_ISS, ISS + 1, undefined, { mss: 1400, windowScale: 7, sackPermitted: true, timestamps: { value: 77, echo: syn!.repr.options.timestamps!.value } });
    const [ack] = h.take();
    expect(formatTcpFlags(ack!.repr.flags)).toBe('[.]');
    expect(ack!.repr.seq).toBe(ISS + 1);
    expect(ack!.repr.ack).toBe(PEER_ISS + 1);
    expect(ack!.repr.options.timestamps?.echo).toBe(77);
    expect(h.connection.state).toBe('ESTABLISHED');
    expect(h.events).toContain('connect');
    // MSS: the smaller of the two, less the 12 bytes timestamps take on every segment
    expect(h.connection.info().mss).toBe(1400 - 12);
  });

  it('SYN retries: 1, 2, 4, 8, 16, 32 s apart (tcp_syn_retries 6), then ETIMEDOUT 64 s after the last', () => {
    const h = active();
    h.clock.advance(200_000);
    const syns = h.take();
    expect(syns.map((s) => s.at)).toEqual([0, 1000, 3000, 7000, 15000, 31000, 63000]);
    expect(syns.every((s) => s.repr.flags === SYN && s.repr.seq === ISS)).toBe(true);
    expect(h.closedWith).toBe('ETIMEDOUT');
    expect(h.forgotten).toBe(true);
    expect(h.clock.pending).toBe(0);
  });

  it('a RST that acknowledges our SYN refuses the connection; one that does not is ignored', () => {
    const h = active();
    h.take();
    h.peer(RST | ACK, 0, ISS + 5); // wrong ACK: answered with nothing, ignored
    expect(h.connection.state).toBe('SYN-SENT');
    h.peer(RST | ACK, 0, ISS + 1);
    expect(h.closedWith).toBe('ECONNREFUSED');
  });

  it('passive open: SYN-ACK with the options the SYN offered, then ESTABLISHED on the ACK', () => {
    const h = new Harness();
    h.connection = TcpConnection.accept(h, { local: LOCAL, remote: REMOTE, iss: ISS, localMss: 1460 }, {
      sourcePort: 80,
      destinationPort: 40000,
      seq: PEER_ISS,
      ack: 0,
      flags: SYN,
      window: 64240,
      urgentPointer: 0,
      options: { mss: 1460, sackPermitted: true },
    });
    const [synAck] = h.take();
    expect(synAck!.repr.flags).toBe(SYN | ACK);
    expect(synAck!.repr.ack).toBe(PEER_ISS + 1);
    // no timestamps and no window scale in the answer: the SYN offered neither (RFC 7323)
    expect(synAck!.repr.options).toEqual({ mss: 1460, sackPermitted: true });
    h.peer(ACK, PEER_ISS + 1, ISS + 1);
    expect(h.connection.state).toBe('ESTABLISHED');
    expect(h.events).toEqual(['established']);
  });

  it('SYN-ACK retries (tcp_synack_retries 5), then the half-open connection is dropped', () => {
    const h = new Harness();
    h.connection = TcpConnection.accept(h, { local: LOCAL, remote: REMOTE, iss: ISS, localMss: 1460 }, { sourcePort: 80, destinationPort: 40000, seq: PEER_ISS, ack: 0, flags: SYN, window: 64240, urgentPointer: 0, options: { mss: 1460 } });
    h.clock.advance(100_000);
    expect(h.take().map((s) => s.at)).toEqual([0, 1000, 3000, 7000, 15000, 31000]);
    expect(h.connection.state).toBe('CLOSED');
    expect(h.forgotten).toBe(true);
  });

  it('simultaneous open (RFC 9293 figure 8): SYN crosses SYN, both answer SYN-ACK, then ESTABLISHED', () => {
    const h = active();
    h.take();
    h.peer(SYN, PEER_ISS, 0, undefined, { mss: 1460 });
    expect(h.connection.state).toBe('SYN-RECEIVED');
    const [synAck] = h.take();
    expect(synAck!.repr.flags).toBe(SYN | ACK);
    expect(synAck!.repr.seq).toBe(ISS);
    expect(synAck!.repr.ack).toBe(PEER_ISS + 1);
    h.peer(SYN | ACK, PEER_ISS, ISS + 1, undefined, { mss: 1460 });
    // the peer's SYN-ACK: a SYN on a half-synchronized connection, its ACK completes ours
    h.peer(ACK, PEER_ISS + 1, ISS + 1);
    expect(h.connection.state).toBe('ESTABLISHED');
  });
});

describe('acceptance and resets (RFC 9293 3.10.7.4, RFC 5961)', () => {
  it('data outside the window is answered with an ACK and not delivered', () => {
    const h = established();
    h.peer(ACK | PSH, PEER_ISS + 1 + 10_000_000, ISS + 1, bytes(10));
    const [ack] = h.take();
    expect(ack!.repr.ack).toBe(PEER_ISS + 1);
    expect(h.connection.read(100)).toBeUndefined();
    expect(h.counts.get('rx_out_of_window')).toBe(1);
  });

  it('a RST exactly at RCV.NXT resets: ECONNRESET', () => {
    const h = established();
    h.peer(RST, PEER_ISS + 1, 0);
    expect(h.closedWith).toBe('ECONNRESET');
    expect(h.take()).toEqual([]);
  });

  it('a RST in the window but not at RCV.NXT gets a challenge ACK and changes nothing; a second within 500 ms gets none', () => {
    const h = established();
    h.peer(RST, PEER_ISS + 100, 0);
    const [challenge] = h.take();
    expect(challenge!.repr.flags).toBe(ACK);
    expect(challenge!.repr.ack).toBe(PEER_ISS + 1);
    expect(h.connection.state).toBe('ESTABLISHED');
    h.clock.advance(100);
    h.peer(RST, PEER_ISS + 200, 0);
    expect(h.take()).toEqual([]);
    h.clock.advance(500);
    h.peer(RST, PEER_ISS + 300, 0);
    expect(h.take().length).toBe(1);
    expect(h.counts.get('TCPChallengeACK')).toBe(2);
  });

  it('the host-wide challenge-ACK limit silences them too', () => {
    const h = established();
    h.allowChallenges = false;
    h.peer(RST, PEER_ISS + 100, 0);
    expect(h.take()).toEqual([]);
  });

  it('a RST outside the window is dropped silently', () => {
    const h = established();
    h.peer(RST, PEER_ISS + 1 + 10_000_000, 0);
    expect(h.take()).toEqual([]);
    expect(h.connection.state).toBe('ESTABLISHED');
  });

  it('a SYN on an established connection gets a challenge ACK (RFC 5961 4), never a reset', () => {
    const h = established();
    h.peer(SYN, PEER_ISS + 1, 0);
    const [challenge] = h.take();
    expect(challenge!.repr.flags).toBe(ACK);
    expect(h.connection.state).toBe('ESTABLISHED');
  });

  it('an ACK of data never sent gets a challenge ACK and is dropped (RFC 5961 5.2)', () => {
    const h = established();
    h.peer(ACK | PSH, PEER_ISS + 1, ISS + 5000, bytes(5));
    expect(flags(h.take())).toEqual(['[.]']);
    expect(h.connection.read(10)).toBeUndefined();
    expect(h.counts.get('rx_ack_of_unsent')).toBe(1);
  });
});

describe('data, ACKs and the receive window', () => {
  it('one segment is acknowledged after the 40 ms delayed-ACK time; two full segments at once', () => {
    const h = established();
    h.peer(ACK | PSH, PEER_ISS + 1, ISS + 1, bytes(100));
    expect(h.take()).toEqual([]);
    h.clock.advance(39);
    expect(h.take()).toEqual([]);
    h.clock.advance(1);
    const [delayed] = h.take();
    expect(delayed!.repr.ack).toBe(PEER_ISS + 101);
    expect(delayed!.at).toBe(40);
    h.peer(ACK, PEER_ISS + 101, ISS + 1, bytes(1460));
    expect(h.take()).toEqual([]);
    h.peer(ACK, PEER_ISS + 1561, ISS + 1, bytes(1460));
    const [quick] = h.take();
    expect(quick!.repr.ack).toBe(PEER_ISS + 3021);
    expect(new TextDecoder().decode(h.connection.read(100_000)!).length).toBe(100);
  });

  it('out-of-order data is acknowledged at once, held, and delivered once the hole fills; duplicates are not delivered twice', () => {
    const h = established();
    h.peer(ACK, PEER_ISS + 11, ISS + 1, bytes(10, 0x62));
    const [dup] = h.take();
    expect(dup!.repr.ack).toBe(PEER_ISS + 1);
    h.peer(ACK, PEER_ISS + 11, ISS + 1, bytes(10, 0x62)); // the same again
    h.take();
    expect(h.connection.read(100)).toBeUndefined();
    h.peer(ACK, PEER_ISS + 1, ISS + 1, bytes(15, 0x61)); // fills the hole and overlaps 5 bytes
    const [ack] = h.take();
    expect(ack!.repr.ack).toBe(PEER_ISS + 21);
    const all: number[] = [];
    for (let d = h.connection.read(100); d; d = h.connection.read(100)) all.push(...d);
    // the new in-order bytes win the overlap, as Linux's tcp_ofo_queue trims the queued piece
    expect(String.fromCharCode(...all)).toBe('a'.repeat(15) + 'b'.repeat(5));
  });

  it('the window shrinks as unread data piles up, its right edge never moves left, and reading reopens it', () => {
    const h = established({ receiveBufferBytes: 8192 });
    let seq = PEER_ISS + 1;
    const edges: number[] = [];
    for (let i = 0; i < 6; i++) {
      h.peer(ACK, seq, ISS + 1, bytes(1460));
      seq += 1460;
      for (const s of h.take()) edges.push(seqAdd(s.repr.ack, s.repr.window));
    }
    for (let i = 1; i < edges.length; i++) expect(edges[i]).toBeGreaterThanOrEqual(edges[i - 1]!);
    h.clock.advance(100);
    const last = h.take().at(-1) ?? { repr: { window: -1 } };
    expect(last.repr.window).toBeLessThan(2000);
    while (h.connection.read(100_000)) {}
    const updates = h.take();
    expect(updates.length).toBeGreaterThan(0);
    expect(Math.max(...updates.map((u) => u.repr.window))).toBeGreaterThanOrEqual(5840);
  });
});

describe('sending, retransmission and congestion', () => {
  it('the initial window is 10 segments; the rest waits for ACKs', () => {
    const h = established();
    expect(h.connection.write(bytes(20 * 1460))).toBe(20 * 1460);
    const first = h.take();
    expect(first.length).toBe(10);
    expect(first.every((s) => s.payload.length === 1460)).toBe(true);
    h.peer(ACK, PEER_ISS + 1, ISS + 1 + 2 * 1460);
    // slow start: 2 segments acknowledged, the window grows by 2 MSS: 4 more go out
    expect(h.take().length).toBe(4);
  });

  it('RTO: retransmits with exponential backoff from 200 ms (RTO min), and gives up after tcp_retries2 (15) with ETIMEDOUT', () => {
    const h = established();
    h.connection.write(bytes(100));
    const [first] = h.take();
    expect(first!.payload.length).toBe(100);
    h.clock.advance(2_000_000);
    const retries = h.take();
    expect(retries.length).toBe(15);
    const gaps = retries.map((s, i) => s.at - (i === 0 ? 0 : retries[i - 1]!.at));
    expect(gaps.slice(0, 6)).toEqual([200, 400, 800, 1600, 3200, 6400]);
    expect(Math.max(...gaps)).toBe(120_000);
    expect(retries.every((s) => s.repr.seq === ISS + 1 && s.payload.length === 100)).toBe(true);
    expect(h.closedWith).toBe('ETIMEDOUT');
    expect(h.clock.pending).toBe(0);
  });

  it('three duplicate ACKs retransmit the lost segment at once (fast retransmit), without waiting for the RTO', () => {
    const h = established();
    h.connection.write(bytes(5 * 1460));
    expect(h.take().length).toBe(5);
    for (let i = 0; i < 3; i++) h.peer(ACK, PEER_ISS + 1, ISS + 1);
    const [again] = h.take();
    expect(again!.repr.seq).toBe(ISS + 1);
    expect(again!.at).toBe(0);
    expect(h.counts.get('TCPFastRetrans')).toBe(1);
  });

  it('ICMP fragmentation needed (RFC 1191) lowers the MSS and sends the unacknowledged data again in smaller segments', () => {
    const h = established();
    h.connection.write(bytes(2920));
    expect(h.take().map((s) => s.payload.length)).toEqual([1460, 1460]);
    h.connection.icmpError('fragmentation-needed', 1280);
    expect(h.connection.info().mss).toBe(1240);
    const again = h.take();
    expect(again[0]!.repr.seq).toBe(ISS + 1);
    expect(again.every((s) => s.payload.length <= 1240)).toBe(true);
    // a larger "next-hop MTU" never raises it, a nonsense one (below 68) is ignored
    h.connection.icmpError('fragmentation-needed', 1500);
    h.connection.icmpError('fragmentation-needed', 20);
    expect(h.connection.info().mss).toBe(1240);
  });

  it('Nagle: a small write waits while data is unacknowledged, unless noDelay', () => {
    const h = established();
    h.connection.write(bytes(10));
    expect(h.take().length).toBe(1);
    h.connection.write(bytes(10));
    expect(h.take()).toEqual([]);
    h.peer(ACK, PEER_ISS + 1, ISS + 11);
    expect(h.take().map((s) => s.payload.length)).toEqual([10]);
    h.connection.setNoDelay(true);
    h.connection.write(bytes(10));
    expect(h.take().length).toBe(1);
  });

  it('a zero window is probed with SND.UNA - 1 and no data, backing off, until the window opens', () => {
    const h = established();
    h.peer(ACK, PEER_ISS + 1, ISS + 1, undefined, NO_OPTIONS, 0);
    h.connection.write(bytes(3000));
    expect(h.take()).toEqual([]);
    h.clock.advance(10_000);
    const probes = h.take();
    expect(probes.length).toBeGreaterThanOrEqual(3);
    expect(probes.every((p) => p.repr.seq === ISS && p.payload.length === 0)).toBe(true);
    expect(probes[1]!.at - probes[0]!.at).toBeGreaterThan(probes[0]!.at - 0);
    h.peer(ACK, PEER_ISS + 1, ISS + 1, undefined, NO_OPTIONS, 65535);
    // two full segments go at once; Nagle keeps the last 80 bytes until they are acknowledged
    expect(h.take().map((s) => s.payload.length)).toEqual([1460, 1460]);
    h.peer(ACK, PEER_ISS + 1, ISS + 1 + 2920, undefined, NO_OPTIONS, 65535);
    expect(h.take().map((s) => s.payload.length)).toEqual([80]);
    expect(h.counts.get('TCPWinProbe')).toBe(probes.length);
  });

  it('keepalive: after the idle time, probes every interval; nine unanswered end the connection with ETIMEDOUT', () => {
    const h = established({ keepaliveIntervalMs: 1000, keepaliveProbes: 9 });
    h.connection.setKeepAlive(true, 5000);
    h.clock.advance(5000);
    const [probe] = h.take();
    expect(probe!.repr.seq).toBe(ISS);
    expect(probe!.payload.length).toBe(0);
    // an answer resets the count
    h.peer(ACK, PEER_ISS + 1, ISS + 1);
    h.clock.advance(5000 + 9 * 1000 + 1000);
    expect(h.take().length).toBe(9);
    expect(h.closedWith).toBe('ETIMEDOUT');
  });
});

describe('closing', () => {
  it('we close first: FIN-WAIT-1, FIN-WAIT-2, then TIME-WAIT on the peer FIN, CLOSED 60 s later', () => {
    const h = established();
    h.connection.shutdown();
    const [fin] = h.take();
    expect(fin!.repr.flags).toBe(FIN | ACK);
    expect(h.connection.state).toBe('FIN-WAIT-1');
    h.peer(ACK, PEER_ISS + 1, ISS + 2);
    expect(h.connection.state).toBe('FIN-WAIT-2');
    expect(h.take()).toEqual([]);
    h.peer(FIN | ACK, PEER_ISS + 1, ISS + 2);
    expect(h.connection.state).toBe('TIME-WAIT');
    expect(h.take().map((s) => s.repr.ack)).toEqual([PEER_ISS + 2]);
    expect(h.closedWith).toBe('clean');
    // the peer's FIN again (our ACK was lost): acknowledged again, and the 60 s start over
    h.clock.advance(30_000);
    h.peer(FIN | ACK, PEER_ISS + 1, ISS + 2);
    expect(h.take().length).toBe(1);
    h.clock.advance(59_999);
    expect(h.connection.state).toBe('TIME-WAIT');
    h.clock.advance(1);
    expect(h.connection.state).toBe('CLOSED');
    expect(h.clock.pending).toBe(0);
  });

  it('the peer closes first: CLOSE-WAIT (we may still send), LAST-ACK, CLOSED', () => {
    const h = established();
    h.peer(FIN | ACK, PEER_ISS + 1, ISS + 1);
    expect(h.connection.state).toBe('CLOSE-WAIT');
    expect(h.events).toContain('end');
    expect(h.connection.write(bytes(5))).toBe(5);
    h.connection.shutdown();
    const out = h.take();
    expect(out.at(-1)!.repr.flags & FIN).toBe(FIN);
    expect(h.connection.state).toBe('LAST-ACK');
    h.peer(ACK, PEER_ISS + 2, ISS + 7);
    expect(h.connection.state).toBe('CLOSED');
    expect(h.closedWith).toBe('clean');
  });

  it('simultaneous close: FINs cross, CLOSING, then TIME-WAIT', () => {
    const h = established();
    h.connection.shutdown();
    h.take();
    h.peer(FIN | ACK, PEER_ISS + 1, ISS + 1); // their FIN does not acknowledge ours
    expect(h.connection.state).toBe('CLOSING');
    h.peer(ACK, PEER_ISS + 2, ISS + 2);
    expect(h.connection.state).toBe('TIME-WAIT');
  });

  it('an orphaned connection leaves FIN-WAIT-2 after tcp_fin_timeout (60 s)', () => {
    const h = established();
    h.connection.release();
    h.take();
    h.peer(ACK, PEER_ISS + 1, ISS + 2);
    expect(h.connection.state).toBe('FIN-WAIT-2');
    h.clock.advance(60_000);
    expect(h.connection.state).toBe('CLOSED');
  });

  it('closing with unread data resets the connection (RFC 2525 2.17, as Linux)', () => {
    const h = established();
    h.peer(ACK | PSH, PEER_ISS + 1, ISS + 1, bytes(10));
    h.take();
    h.connection.release();
    expect(flags(h.take())).toEqual(['[R]']);
    expect(h.counts.get('TCPAbortOnClose')).toBe(1);
  });
});
