/**
 * Buffer autotuning: the receive buffer (and so the window we offer) and the send buffer grow
 * to what the connection actually moves, up to a maximum, as Linux does it with
 * tcp_rcv_space_adjust ("dynamic right-sizing") and tcp_sndbuf_expand.
 *
 * Receive side. A window smaller than bandwidth x RTT caps the sender however fast the path is;
 * one much larger wastes memory on every idle connection. So each connection starts with a
 * modest buffer and measures, once per round trip, how many bytes the application took. When
 * that beats the best round trip so far, the buffer becomes
 *
 *   2 * copied + 16 * MSS          (room for a round trip lost and resent, plus reordering)
 *   + 2 * that * (copied - before) / before    (the sender may still be doubling: slow start)
 *
 * bounded by `receiveBufferMaxBytes` (tcp_rmem[2], 6 MiB). The buffer never shrinks, and it only
 * grows because the application reads: a peer cannot make us hold more than the application
 * drains, so a hostile sender gains nothing. The round trip is the receiver's own estimate: the
 * age of the timestamp the peer echoes on its data (RFC 7323), else the handshake's RTT.
 *
 * Send side. Data waiting in the send buffer is what the window can draw on; with less than two
 * windows queued, the sender runs dry between ACKs. The buffer grows to twice the congestion
 * window (at least twice the initial window), up to `sendBufferMaxBytes` (tcp_wmem[2], 4 MiB).
 */

/** Linux's rcvq_space and rcv_rtt_est for one connection. */
export class ReceiveAutotuner {
  /** The most the application took in one round trip so far, bytes. */
  space: number;
  /** Bytes taken since `since`. */
  private copied = 0;
  private since: number;
  /** The receiver's RTT estimate, ms (undefined until a sample). */
  rttMs: number | undefined;

  constructor(initialSpace: number, now: number) {
    this.space = initialSpace;
    this.since = now;
  }

  /** One RTT sample from the timestamp echoed on a data segment: a moving average, 1/8 weight (RFC 6298's alpha). */
  rttSample(ms: number): void {
    const sample = Math.max(1, ms);
    this.rttMs = this.rttMs === undefined ? sample : this.rttMs + (sample - this.rttMs) / 8;
  }

  /**
   * The application took `bytes` at `now`. Returns the receive buffer size to grow to, or
   * undefined when it stays (less than a round trip measured, or no faster than before).
   */
  consumed(bytes: number, now: number, rttMs: number | undefined, mss: number, capacity: number, maxBytes: number): number | undefined {
    this.copied += bytes;
    if (rttMs === undefined || rttMs <= 0 || now - this.since < rttMs) return undefined;
    const copied = this.copied;
    this.copied = 0;
    this.since = now;
    if (copied <= this.space) return undefined;
    let window = 2 * copied + 16 * mss;
    window += 2 * Math.floor((window * (copied - this.space)) / this.space);
    this.space = copied;
    const target = Math.min(window, maxBytes);
    return target > capacity ? target : undefined;
  }
}

/** The send buffer to grow to for a congestion window `cwnd`, or undefined when `capacity` is enough. */
export function sendBufferTarget(cwnd: number, initialWindow: number, capacity: number, maxBytes: number): number | undefined {
  const target = Math.min(2 * Math.max(cwnd, initialWindow), maxBytes);
  return target > capacity ? target : undefined;
}
