/**
 * `ping -6` inside the stack: sessions of ICMPv6 echo requests (RFC 4443 4.1), each with its
 * identifier, the replies and errors matched back to them, and iputils' summary. The IPv4 client
 * (@tapstack/icmp's ping-client.ts) is the model; what differs is the address type, the hop limit
 * in place of the TTL, and that the checksum is the IPv6 layer's to fill in (it covers the
 * pseudo-header, so it needs the source address the layer chooses).
 */
import { rttStatistics } from '@tapstack/icmp';
import type { Clock, Counters, Ipv6Address, Timer } from '@tapstack/link';
import type { Ipv6Layer, Ipv6Packet, Ipv6SendOutcome } from '@tapstack/ipv6';
import type { Icmpv6CounterName, Icmpv6ErrorReport } from './layer.ts';

export interface Ping6Options {
  count?: number;
  /** Data bytes after the 8-byte ICMPv6 header (default 56). */
  size?: number;
  intervalMs?: number;
  timeoutMs?: number;
  hopLimit?: number;
  onReply?: (reply: Ping6Reply) => void;
  onError?: (error: Ping6Error) => void;
}

export interface Ping6Reply {
  readonly from: Ipv6Address;
  readonly sequence: number;
  /** ICMPv6 bytes received (header + data). */
  readonly bytes: number;
  readonly hopLimit: number;
  readonly rttMs: number;
  readonly duplicate: boolean;
  readonly corrupted: boolean;
}

export interface Ping6Error {
  readonly sequence: number;
  readonly from: Ipv6Address | undefined;
  readonly message: string;
}

export interface Ping6Summary {
  readonly target: Ipv6Address;
  readonly transmitted: number;
  readonly received: number;
  readonly duplicates: number;
  readonly corrupted: number;
  readonly errors: number;
  readonly lossPercent: number;
  readonly timeMs: number;
  readonly rtt: ReturnType<typeof rttStatistics>;
  readonly replies: readonly Ping6Reply[];
  readonly errorList: readonly Ping6Error[];
}

interface Session {
  readonly identifier: number;
  readonly target: Ipv6Address;
  readonly count: number;
  readonly size: number;
  readonly options: Ping6Options;
  readonly sentAt: Map<number, number>;
  readonly answered: Set<number>;
  readonly rtts: number[];
  readonly replies: Ping6Reply[];
  readonly errorList: Ping6Error[];
  readonly start: number;
  transmitted: number;
  received: number;
  duplicates: number;
  corrupted: number;
  errors: number;
  timer: Timer | undefined;
  finish: () => void;
}

export class Ping6Client {
  private readonly sessions = new Map<number, Session>();
  private nextIdentifier: number;

  constructor(private readonly options: { ipv6: Ipv6Layer; clock: Clock; counters: Counters<Icmpv6CounterName>; firstIdentifier: number }) {
    this.nextIdentifier = options.firstIdentifier & 0xffff;
  }

  ping(target: Ipv6Address, options: Ping6Options = {}): Promise<Ping6Summary> {
    const { ipv6, clock, counters } = this.options;
    const count = options.count ?? 4;
    const size = options.size ?? 56;
    const intervalMs = options.intervalMs ?? 1000;
    const timeoutMs = options.timeoutMs ?? 10_000;
    if (!Number.isInteger(count) || count < 1 || count > 65535) throw new RangeError('ping count must be 1-65535');
    if (!Number.isInteger(size) || size < 0 || size > 65519) throw new RangeError('ping -6 size must be 0-65519 bytes');
    const identifier = this.allocateIdentifier();
    const release = clock.hold();
    return new Promise<Ping6Summary>((resolve) => {
      const session: Session = {
        identifier,
        target,
        count,
        size,
        options,
        sentAt: new Map(),
        answered: new Set(),
        rtts: [],
        replies: [],
        errorList: [],
        start: clock.now(),
        transmitted: 0,
        received: 0,
        duplicates: 0,
        corrupted: 0,
        errors: 0,
        timer: undefined,
        finish: () => {
          if (!this.sessions.has(identifier)) return;
          this.sessions.delete(identifier);
          session.timer?.cancel();
          release();
          const t = session.transmitted;
          resolve({
            target,
            transmitted: t,
            received: session.received,
            duplicates: session.duplicates,
            corrupted: session.corrupted,
            errors: session.errors,
            lossPercent: t === 0 ? 0 : ((t - session.received) * 100) / t,
            timeMs: clock.now() - session.start,
            rtt: rttStatistics(session.rtts),
            replies: session.replies,
            errorList: session.errorList,
          });
        },
      };
      this.sessions.set(identifier, session);
      const sendNext = (): void => {
        if (!this.sessions.has(identifier)) return;
        const sequence = (session.transmitted + 1) & 0xffff;
        session.transmitted++;
        session.sentAt.set(sequence, clock.now());
        const message = new Uint8Array(8 + size);
        message[0] = 128; // echo request; code 0, checksum filled in by the IPv6 layer
        message[4] = identifier >>> 8;
        message[5] = identifier & 0xff;
        message[6] = sequence >>> 8;
        message[7] = sequence & 0xff;
        for (let i = 0; i < size; i++) message[8 + i] = i & 0xff;
        const outcome = ipv6.send({ destination: target, nextHeader: 58, payload: message, checksumOffset: 2, ...(options.hopLimit !== undefined ? { hopLimit: options.hopLimit } : {}) });
        if (outcome === 'sent' || outcome === 'queued') counters.inc('tx_echo_requests');
        else {
          counters.inc('tx_failed');
          this.sessionError(session, { sequence, from: undefined, message: describeSendFailure(outcome) });
          if (!this.sessions.has(identifier)) return;
        }
        session.timer = clock.setTimer(session.transmitted < count ? intervalMs : timeoutMs, () => {
          if (session.transmitted < count) sendNext();
          else session.finish();
        });
      };
      sendNext();
    });
  }

  /** An echo reply (RFC 4443 4.2): matched by identifier, sequence and source. */
  echoReply(packet: Ipv6Packet, message: Uint8Array): void {
    const identifier = (message[4]! << 8) | message[5]!;
    const sequence = (message[6]! << 8) | message[7]!;
    const session = this.sessions.get(identifier);
    const from = packet.source;
    if (!session || !session.sentAt.has(sequence) || !(session.target.isMulticast || session.target.equals(from))) {
      this.options.counters.inc('rx_echo_reply_unmatched');
      return;
    }
    const rttMs = this.options.clock.now() - session.sentAt.get(sequence)!;
    const duplicate = session.answered.has(sequence);
    const data = message.subarray(8);
    let corrupted = data.length !== session.size;
    for (let i = 0; !corrupted && i < data.length; i++) if (data[i] !== (i & 0xff)) corrupted = true;
    const reply: Ping6Reply = { from, sequence, bytes: message.length, hopLimit: packet.hopLimit, rttMs, duplicate, corrupted };
    if (duplicate) session.duplicates++;
    else if (corrupted) session.corrupted++;
    else {
      session.answered.add(sequence);
      session.received++;
      session.rtts.push(rttMs);
    }
    if ((!duplicate && !corrupted) || session.replies.length - session.received < session.count) session.replies.push(reply);
    try {
      session.options.onReply?.(reply);
    } finally {
      this.maybeFinish(session);
    }
  }

  /** An ICMPv6 error quoting one of our echo requests. */
  errorAbout(report: Icmpv6ErrorReport): void {
    const p = report.original.payload;
    if (p.length < 8 || p[0] !== 128) return;
    const session = this.sessions.get((p[4]! << 8) | p[5]!);
    const sequence = (p[6]! << 8) | p[7]!;
    if (session && session.sentAt.has(sequence) && report.original.destination.equals(session.target)) {
      this.sessionError(session, { sequence, from: report.from, message: describeError(report) });
    }
  }

  close(): void {
    for (const s of [...this.sessions.values()]) s.finish();
  }

  private sessionError(session: Session, error: Ping6Error): void {
    session.errors++;
    if (session.errorList.length < 2 * session.count) session.errorList.push(error);
    try {
      session.options.onError?.(error);
    } finally {
      this.maybeFinish(session);
    }
  }

  private maybeFinish(session: Session): void {
    if (session.transmitted === session.count && session.received + session.errors >= session.count) session.finish();
  }

  private allocateIdentifier(): number {
    for (let i = 0; i < 0x10000; i++) {
      const id = this.nextIdentifier;
      this.nextIdentifier = (this.nextIdentifier + 1) & 0xffff;
      if (!this.sessions.has(id)) return id;
    }
    throw new Error('every ICMPv6 echo identifier is in use');
  }
}

/** iputils' words for ICMPv6 errors (ping6_common.c). */
function describeError(report: Icmpv6ErrorReport): string {
  switch (report.kind) {
    case 'destination-unreachable':
      return ['Destination unreachable: No route', 'Destination unreachable: Administratively prohibited', 'Destination unreachable: Beyond scope of source address', 'Destination unreachable: Address unreachable', 'Destination unreachable: Port unreachable'][report.code] ?? `Destination unreachable: Unknown code ${report.code}`;
    case 'packet-too-big':
      return `Packet too big: mtu=${report.parameter}`;
    case 'time-exceeded':
      return report.code === 0 ? 'Time exceeded: Hop limit' : 'Time exceeded: Defragmentation failure';
    case 'parameter-problem':
      return `Parameter problem: code ${report.code} at ${report.parameter}`;
  }
}

function describeSendFailure(outcome: Ipv6SendOutcome): string {
  switch (outcome) {
    case 'no_route':
      return 'sendmsg: Network is unreachable';
    case 'no_source':
      return 'sendmsg: Cannot assign requested address';
    case 'too_long':
      return 'sendmsg: Message too long';
    case 'closed':
      return 'sendmsg: stack closed';
    default:
      return 'sendmsg: No buffer space available';
  }
}

/** `64 bytes from fd00:10::1: icmp_seq=1 ttl=64 time=0.052 ms` (iputils prints the hop limit as ttl). */
export function formatPing6Reply(reply: Ping6Reply): string {
  const t = reply.rttMs >= 100 ? reply.rttMs.toFixed(0) : reply.rttMs >= 10 ? reply.rttMs.toFixed(1) : reply.rttMs >= 1 ? reply.rttMs.toFixed(2) : reply.rttMs.toFixed(3);
  return `${reply.bytes} bytes from ${reply.from.toString()}: icmp_seq=${reply.sequence} ttl=${reply.hopLimit} time=${t} ms${reply.duplicate ? ' (DUP!)' : ''}${reply.corrupted ? ' (BAD DATA)' : ''}`;
}

export function formatPing6Error(error: Ping6Error): string {
  return `From ${error.from?.toString() ?? 'this host'} icmp_seq=${error.sequence} ${error.message}`;
}

export function formatPing6Summary(s: Ping6Summary): string {
  let counts = `${s.transmitted} packets transmitted, ${s.received} received`;
  if (s.duplicates > 0) counts += `, +${s.duplicates} duplicates`;
  if (s.corrupted > 0) counts += `, +${s.corrupted} corrupted`;
  if (s.errors > 0) counts += `, +${s.errors} errors`;
  counts += `, ${String(Number(s.lossPercent.toPrecision(6)))}% packet loss, time ${Math.round(s.timeMs)}ms`;
  const lines = [`--- ${s.target.toString()} ping statistics ---`, counts];
  const r = s.rtt;
  if (r) lines.push(`rtt min/avg/max/mdev = ${r.minMs.toFixed(3)}/${r.avgMs.toFixed(3)}/${r.maxMs.toFixed(3)}/${r.mdevMs.toFixed(3)} ms`);
  return lines.join('\n');
}
