/**
 * The IP options of an echo reply (RFC 1122 3.2.2.6: options of the request SHOULD come back
 * in the reply; record route and timestamp are updated on the way), computed as Linux does it.
 *
 * Linux handles the options of every datagram for it in two steps, and the reply shows both:
 *  1. on receipt (ip_options_compile) it validates them; record route (RR) and timestamp (TS)
 *     options with room left get this host's address / the time written into the received
 *     datagram, their pointer advanced;
 *  2. for the reply (ip_options_echo, ip_options_build) it copies RR and TS (only those: no-ops,
 *     security, stream id, router alert are left out), in that order, and when room remains adds
 *     our address / the time again. So `ping -R` sees the answering host twice.
 * A datagram with a source route is dropped (Linux's accept_source_route is 0 on a host), as is
 * one with options Linux rejects (it sends parameter problem then; we only drop, see docs).
 * When the reply cannot hold what step 2 wants to add (an option with a few bytes left but
 * fewer than an entry), Linux sends no reply at all, and neither do we.
 */
import type { Ipv4Address } from '@tapstack/link';

export const Ipv4OptionType = {
  END: 0,
  NOP: 1,
  RECORD_ROUTE: 7,
  TIMESTAMP: 68,
  SECURITY: 130,
  LOOSE_SOURCE_ROUTE: 131,
  CIPSO: 134,
  STREAM_ID: 136,
  STRICT_SOURCE_ROUTE: 137,
  ROUTER_ALERT: 148,
} as const;

/** The timestamp option's flag (low nibble of its fourth byte, RFC 791). */
export const TimestampFlag = { ONLY: 0, WITH_ADDRESS: 1, PRESPECIFIED: 3 } as const;

export interface EchoOptionsContext {
  /** The address we answer from (written into RR and TS entries). */
  readonly address: Ipv4Address;
  /** Linux's "not a unicast route": ours, broadcast, multicast, 0/8, loopback (a prespecified TS entry we fill in). */
  readonly isLocal: (address: Ipv4Address) => boolean;
  /** Milliseconds since midnight UT (RFC 791's timestamp). */
  readonly timestamp: () => number;
}

export type EchoOptionsResult =
  | { readonly ok: true; readonly options: Uint8Array }
  | { readonly ok: false; readonly reason: 'bad_options' | 'source_route' | 'no_room' };

const write32 = (b: Uint8Array, at: number, v: number): void => {
  b[at] = (v >>> 24) & 0xff;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
};
const read32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

/** The options to send in the echo reply to a request that carried `received` (not modified). */
export function echoOptions(received: Uint8Array, ctx: EchoOptionsContext): EchoOptionsResult {
  const opt = received.slice();
  const bad = { ok: false, reason: 'bad_options' } as const;
  let rr = -1;
  let rrNeedsAddress = false;
  let ts = -1;
  let tsNeedsAddress = false;
  let tsNeedsTime = false;
  let sourceRoute = false;
  // Step 1: what Linux does on receipt.
  for (let i = 0; i < opt.length; ) {
    const type = opt[i]!;
    if (type === Ipv4OptionType.END) {
      opt.fill(Ipv4OptionType.END, i);
      break;
    }
    if (type === Ipv4OptionType.NOP) {
      i++;
      continue;
    }
    const left = opt.length - i;
    if (left < 2) return bad;
    const length = opt[i + 1]!;
    if (length < 2 || length > left) return bad;
    const pointer = length >= 3 ? opt[i + 2]! : 0;
    switch (type) {
      case Ipv4OptionType.LOOSE_SOURCE_ROUTE:
      case Ipv4OptionType.STRICT_SOURCE_ROUTE:
        if (length < 3 || pointer < 4 || sourceRoute) return bad;
        sourceRoute = true;
        break;
      case Ipv4OptionType.RECORD_ROUTE:
        if (rr >= 0 || length < 3 || pointer < 4) return bad;
        if (pointer <= length) {
          if (pointer + 3 > length) return bad;
          write32(opt, i + pointer - 1, ctx.address);
          opt[i + 2] = pointer + 4;
          rrNeedsAddress = true;
        }
        rr = i;
        break;
      case Ipv4OptionType.TIMESTAMP: {
        if (ts >= 0 || length < 4 || pointer < 5) return bad;
        const flag = opt[i + 3]! & 0x0f;
        if (pointer <= length) {
          if (pointer + 3 > length) return bad;
          if (flag === TimestampFlag.ONLY) {
            write32(opt, i + pointer - 1, ctx.timestamp());
            opt[i + 2] = pointer + 4;
            tsNeedsTime = true;
          } else if (flag === TimestampFlag.WITH_ADDRESS) {
            if (pointer + 7 > length) return bad;
            write32(opt, i + pointer - 1, ctx.address);
            write32(opt, i + pointer + 3, ctx.timestamp());
            opt[i + 2] = pointer + 8;
            tsNeedsAddress = true;
            tsNeedsTime = true;
          } else if (flag === TimestampFlag.PRESPECIFIED) {
            if (pointer + 7 > length) return bad;
            if (ctx.isLocal(read32(opt, i + pointer - 1) as Ipv4Address)) {
              write32(opt, i + pointer + 3, ctx.timestamp());
              opt[i + 2] = pointer + 8;
              tsNeedsTime = true;
            }
          }
          // other flags: accepted, left alone
        } else if (flag !== TimestampFlag.PRESPECIFIED) {
          // Full: count the hop in the overflow nibble.
          const overflow = opt[i + 3]! >>> 4;
          if (overflow === 15) return bad;
          opt[i + 3] = flag | ((overflow + 1) << 4);
        }
        ts = i;
        break;
      }
      case Ipv4OptionType.ROUTER_ALERT:
        if (length < 4) return bad;
        break;
      case Ipv4OptionType.CIPSO:
        return bad; // no CIPSO domain of interpretation is configured: Linux rejects it
      default:
        break; // security, stream id and unknown options: accepted (and not echoed)
    }
    i += length;
  }
  if (sourceRoute) return { ok: false, reason: 'source_route' };

  // Step 2: the reply's options, RR then TS.
  const parts: Uint8Array[] = [];
  if (rr >= 0) {
    const part = opt.slice(rr, rr + opt[rr + 1]!);
    const pointer = part[2]!;
    if (rrNeedsAddress && pointer <= part.length) {
      if (pointer + 3 > part.length) return { ok: false, reason: 'no_room' };
      write32(part, pointer - 1, ctx.address);
      part[2] = pointer + 4;
    }
    parts.push(part);
  }
  if (ts >= 0) {
    const part = opt.slice(ts, ts + opt[ts + 1]!);
    let pointer = part[2]!;
    if (pointer <= part.length) {
      const flag = part[3]! & 0x0f;
      let addressAt = -1;
      let timeAt = -1;
      if (tsNeedsAddress) {
        if (pointer + 3 > part.length) return { ok: false, reason: 'no_room' };
        addressAt = pointer - 1;
        pointer += 4;
      }
      if (tsNeedsTime) {
        if (pointer + 3 > part.length) return { ok: false, reason: 'no_room' };
        if (flag !== TimestampFlag.PRESPECIFIED) {
          timeAt = pointer - 1;
          pointer += 4;
        } else if (pointer + 7 <= part.length && ctx.isLocal(read32(part, pointer - 1) as Ipv4Address)) {
          timeAt = pointer + 3;
          pointer += 8;
        }
      }
      if (addressAt >= 0) write32(part, addressAt, ctx.address);
      if (timeAt >= 0) write32(part, timeAt, ctx.timestamp());
      part[2] = pointer;
    }
    parts.push(part);
  }
  const length = parts.reduce((n, p) => n + p.length, 0);
  const options = new Uint8Array((length + 3) & ~3); // padded with END (0)
  let at = 0;
  for (const p of parts) {
    options.set(p, at);
    at += p.length;
  }
  return { ok: true, options };
}

/** Milliseconds since midnight UT, as RFC 791's timestamp option carries them. */
export function millisecondsSinceMidnightUt(now: number = Date.now()): number {
  return now % 86_400_000;
}
