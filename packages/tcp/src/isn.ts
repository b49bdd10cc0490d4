/**
 * Initial sequence numbers (RFC 6528) and SYN cookies (RFC 4987 3.6), both built on one keyed
 * hash of the connection's 4-tuple with a secret chosen per stack.
 *
 * ISN = M + F(local address, local port, remote address, remote port, secret), where M is a
 * clock ticking every 4 microseconds: a new connection between the same two ports starts
 * beyond the old one's sequence numbers, and nobody off the path can guess where.
 *
 * A SYN cookie is an ISN that carries the state a listener did not keep: when the SYN queue is
 * full, the SYN-ACK's sequence number encodes a coarse time, the peer's MSS (as an index into a
 * small table) and a hash binding both to the 4-tuple and the peer's ISN. The ACK that completes
 * the handshake gives it back (as ACK - 1), and the listener checks it before creating anything.
 * Layout (Linux uses the same ingredients in another order): 8 bits of time (64 s steps), 2 bits
 * of MSS index, 22 bits of hash.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { TcpAddress } from './address.ts';

/**
 * MSS values a cookie can carry (Linux's msstab for IPv4). IPv6 uses the same four: 1440 is
 * IPv6's MSS on a 1500-byte link, and an IPv6 peer announcing 1440 gets 1440 back.
 */
export const COOKIE_MSS_TABLE = [536, 1300, 1440, 1460] as const;
/** Seconds per cookie time step, and how many steps old a cookie may be (Linux: 64 s, 2 steps). */
const COOKIE_STEP_S = 64;
const COOKIE_MAX_AGE = 2;

export interface FourTuple {
  readonly localAddress: TcpAddress;
  readonly localPort: number;
  readonly remoteAddress: TcpAddress;
  readonly remotePort: number;
}

export class SequenceSecrets {
  private readonly key: Buffer;

  constructor(key: Uint8Array = randomBytes(32)) {
    this.key = Buffer.from(key);
  }

  /** The keyed hash F of RFC 6528 (HMAC-SHA-256, first 32 bits), with `extra` words mixed in. */
  hash(t: FourTuple, ...extra: number[]): number {
    const local = t.localAddress;
    const remote = t.remoteAddress;
    // IPv4: 4 bytes each, as before; IPv6: the 16 bytes of each address (RFC 6528 hashes the whole tuple).
    const a = typeof local === 'number' ? 4 : 16;
    const b = Buffer.alloc(2 * a + 4 + 4 * extra.length);
    if (typeof local === 'number') b.writeUInt32BE(local >>> 0, 0);
    else b.set(local.bytes, 0);
    if (typeof remote === 'number') b.writeUInt32BE(remote >>> 0, a);
    else b.set(remote.bytes, a);
    b.writeUInt16BE(t.localPort, 2 * a);
    b.writeUInt16BE(t.remotePort, 2 * a + 2);
    extra.forEach((w, i) => b.writeUInt32BE(w >>> 0, 2 * a + 4 + 4 * i));
    return createHmac('sha256', this.key).update(b).digest().readUInt32BE(0);
  }

  /** RFC 6528's ISN for a connection starting at `nowMs` (a 4-microsecond clock plus the hash). */
  isn(t: FourTuple, nowMs: number): number {
    return (Math.floor(nowMs * 250) + this.hash(t)) >>> 0;
  }

  /** A SYN cookie for a SYN with sequence number `peerIsn` and MSS `peerMss`, at `nowMs`. */
  cookie(t: FourTuple, peerIsn: number, peerMss: number, nowMs: number): number {
    let index = 0;
    for (let i = COOKIE_MSS_TABLE.length - 1; i >= 0; i--) {
      if (peerMss >= COOKIE_MSS_TABLE[i]!) {
        index = i;
        break;
      }
    }
    const step = Math.floor(nowMs / 1000 / COOKIE_STEP_S) & 0xff;
    const h = this.hash(t, peerIsn, step, index) & 0x3fffff;
    return ((step << 24) | (index << 22) | h) >>> 0;
  }

  /**
   * Checks a cookie returned as ACK - 1 by the peer whose ISN was `peerIsn` (its ACK's seq - 1);
   * gives the MSS it carries, or undefined when it is forged or too old.
   */
  checkCookie(t: FourTuple, cookie: number, peerIsn: number, nowMs: number): number | undefined {
    const step = cookie >>> 24;
    const index = (cookie >>> 22) & 0x3;
    const now = Math.floor(nowMs / 1000 / COOKIE_STEP_S) & 0xff;
    if (((now - step) & 0xff) > COOKIE_MAX_AGE) return undefined;
    if ((this.hash(t, peerIsn, step, index) & 0x3fffff) !== (cookie & 0x3fffff)) return undefined;
    return COOKIE_MSS_TABLE[index];
  }
}
