/**
 * One connection driven by hand for the loss-recovery tests: segments in as TcpReprs, segments
 * out collected, time on a virtual clock, counters in a map.
 */
import { VirtualClock, ipv4 } from '@tapstack/link';
import { TcpConnection, type ConnectionCounter, type ConnectionHost, type TcpParams } from '../src/connection.ts';
import type { TcpErrorCode } from '../src/errors.ts';
import type { TcpMemory } from '../src/memory.ts';
import { NO_OPTIONS, TcpFlag, type SackBlock, type TcpOptions, TcpRepr } from '../src/header.ts';
import { segmentBytes, type SegmentData } from '../src/send-buffer.ts';
import type { SocketEvents } from '../src/socket.ts';

export const ISS = 1000;
export const PEER_ISS = 5000;

export interface Sent {
  at: number;
  repr: TcpRepr;
  payload: Uint8Array;
}

export class Harness implements ConnectionHost, SocketEvents {
  readonly clock = new VirtualClock();
  readonly sent: Sent[] = [];
  readonly counts = new Map<string, number>();
  closedWith: TcpErrorCode | 'clean' | undefined;
  connection!: TcpConnection;
  /** The peer's TSval clock (when timestamps are on). */
  peerTs = 1_000_000;
  /** The memory the connection shares (set before connecting; absent: the connection's own). */
  memory?: TcpMemory;

  output(_c: TcpConnection, repr: TcpRepr, payload: SegmentData): void {
    this.sent.push({ at: this.clock.now(), repr: TcpRepr.copy(repr), payload: segmentBytes(payload) });
  }
  established(): void {}
  forget(): void {}
  count(name: ConnectionCounter, by = 1): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + by);
  }
  counter(name: ConnectionCounter): number {
    return this.counts.get(name) ?? 0;
  }
  allowChallengeAck(): boolean {
    return true;
  }
  connectionEstablished(): void {}
  dataArrived(): void {}
  peerFinished(): void {}
  sendSpace(): void {}
  connectionClosed(error?: TcpErrorCode): void {
    this.closedWith = error ?? 'clean';
  }

  /** Segments sent since the last call. */
  take(): Sent[] {
    return this.sent.splice(0);
  }
  /** Data segments sent since the last call, as their sequence numbers. */
  takeSeqs(): number[] {
    return this.take()
      .filter((s) => s.payload.length > 0 || s.repr.flags & TcpFlag.FIN)
      .map((s) => s.repr.seq);
  }
  /** The peer sends a segment. */
  peer(flags: number, seq: number, ack: number, payload: Uint8Array = new Uint8Array(0), options: TcpOptions = NO_OPTIONS, window = 65535): void {
    this.connection.input({ sourcePort: 80, destinationPort: 40000, seq, ack, flags, window, urgentPointer: 0, options }, payload);
  }
  /** The peer acknowledges `ack` with SACK blocks (and its timestamps when `echo` is given). */
  ack(ack: number, blocks: SackBlock[] = [], echo?: number): void {
    const options: TcpOptions = {
      ...(blocks.length > 0 ? { sackBlocks: blocks } : {}),
      ...(echo !== undefined ? { timestamps: { value: this.peerTs, echo } } : {}),
    };
    this.peer(TcpFlag.ACK, PEER_ISS + 1, ack, undefined, options);
  }
}

const LOCAL = { address: ipv4('10.0.0.2'), port: 40000 };
const REMOTE = { address: ipv4('10.0.0.1'), port: 80 };

/**
 * An established connection we opened; the peer offered MSS `mss`, SACK-permitted when `sack`,
 * timestamps when `timestamps`, no window scaling (a 65535-byte window); the SYN-ACK comes `rttMs`
 * (10) after the SYN. Its congestion control
 * is NewReno unless `params` says otherwise, so that ssthresh is half the flight in the figures.
 */
export function established(options: { sack?: boolean; timestamps?: boolean; mss?: number; rttMs?: number; params?: Partial<TcpParams> } = {}): Harness {
  const h = new Harness();
  h.connection = TcpConnection.connect(h, { local: LOCAL, remote: REMOTE, iss: ISS, localMss: 1460, params: { congestionControl: 'newreno', ...options.params } });
  h.connection.attach(h);
  const [syn] = h.take();
  const synOptions: TcpOptions = {
    mss: options.mss ?? 1000,
    ...(options.sack !== false ? { sackPermitted: true } : {}),
    ...(options.timestamps ? { timestamps: { value: h.peerTs, echo: syn!.repr.options.timestamps!.value } } : {}),
  };
  h.clock.advance(options.rttMs ?? 10); // the handshake's round trip: the first RTT sample
  h.peer(TcpFlag.SYN | TcpFlag.ACK, PEER_ISS, ISS + 1, undefined, synOptions);
  h.take();
  return h;
}
