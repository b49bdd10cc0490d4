/**
 * The ping client (what iputils' ping does, inside the stack): sessions of echo requests with an
 * identifier each, the replies and ICMP errors matched back to them, and the iputils-style summary.
 * The ICMP layer owns one and hands it what arrives for it (`echoReply`, `errorAbout`); the
 * session state, its bounds and its timers live here.
 */
import { IpProtocol, type Ipv4Layer, type Ipv4Packet, type Ipv4SendOutcome } from '@tapstack/ipv4';
import type { Clock, Counters, Ipv4Address, Timer } from '@tapstack/link';
import { IcmpRepr, IcmpType, UnreachableCode, type IcmpPacket } from './packet.ts';
import { rttStatistics, type PingError, type PingOptions, type PingReply, type PingSummary } from './ping.ts';
import type { IcmpCounterName, IcmpErrorReport } from './layer.ts';

export interface PingClientOptions {
  ipv4: Ipv4Layer;
  clock: Clock;
  /** The ICMP layer's counters (tx_echo_requests, tx_failed, rx_echo_replies, rx_echo_reply_unmatched). */
  counters: Counters<IcmpCounterName>;
  /** The first identifier tried (then counting up, skipping those in use). */
  firstIdentifier: number;
}

interface PingSession {
  readonly identifier: number;
  readonly target: Ipv4Address;
  readonly count: number;
  readonly size: number;
  readonly options: PingOptions;
  readonly sentAt: Map<number, number>;
  readonly answered: Set<number>;
  readonly rtts: number[];
  readonly replies: PingReply[];
  readonly errorList: PingError[];
  readonly start: number;
  transmitted: number;
  received: number;
  duplicates: number;
  corrupted: number;
  errors: number;
  timer: Timer | undefined;
  finish: () => void;
}

export class PingClient {
  private readonly ipv4: Ipv4Layer;
  private readonly clock: Clock;
  private readonly counters: Counters<IcmpCounterName>;
  private readonly sessions = new Map<number, PingSession>();
  private nextIdentifier: number;

  constructor(options: PingClientOptions) {
    this.ipv4 = options.ipv4;
    this.clock = options.clock;
    this.counters = options.counters;
    this.nextIdentifier = options.firstIdentifier & 0xffff;
  }

  /**
   * Pings `target`: `count` echo requests of `size` data bytes, `intervalMs` apart, then waits
   * up to `timeoutMs` for the rest of the replies. Resolves with the iputils-style summary
   * (print it with formatPingSummary). The first request to a neighbour not yet resolved waits
   * in ARP's queue and goes out with the reply, so it is not lost.
   */
  ping(target: Ipv4Address, options: PingOptions = {}): Promise<PingSummary> {
    const count = options.count ?? 4;
    const size = options.size ?? 56;
    const intervalMs = options.intervalMs ?? 1000;
    const timeoutMs = options.timeoutMs ?? 10_000;
    if (!Number.isInteger(count) || count < 1) throw new RangeError('ping count must be a positive integer');
    if (!Number.isInteger(size) || size < 0 || size > 65507) throw new RangeError('ping size must be 0-65507 bytes');
    if (count > 65535) throw new RangeError('ping count is limited to 65535 (the sequence number space)');
    const identifier = this.allocateIdentifier();
    // The caller awaits this: keep the process alive until the summary is in (see Clock.hold).
    const release = this.clock.hold();
    return new Promise<PingSummary>((resolve) => {
      const session: PingSession = {
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
        start: this.clock.now(),
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
            timeMs: this.clock.now() - session.start,
            rtt: rttStatistics(session.rtts),
            replies: session.replies,
            errorList: session.errorList,
          });
        },
      };
      this.sessions.set(identifier, session);
      const data = pattern(size);
      const sendNext = (): void => {
        if (!this.sessions.has(identifier)) return;
        const sequence = session.transmitted + 1;
        session.transmitted = sequence;
        session.sentAt.set(sequence, this.clock.now());
        const message = IcmpRepr.build({ kind: 'echo-request', identifier, sequence, data });
        const outcome = this.ipv4.send({
          destination: target,
          protocol: IpProtocol.ICMP,
          payload: message,
          ...(options.ttl !== undefined ? { ttl: options.ttl } : {}),
        });
        if (outcome === 'sent' || outcome === 'queued') this.counters.inc('tx_echo_requests');
        else {
          this.counters.inc('tx_failed');
          this.sessionError(session, { sequence, from: this.ipv4.address.address, message: describeSendFailure(outcome) });
          if (!this.sessions.has(identifier)) return;
        }
        session.timer = this.clock.setTimer(sequence < count ? intervalMs : timeoutMs, () => {
          if (sequence < count) sendNext();
          else session.finish();
        });
      };
      sendNext();
    });
  }

  private sessionError(session: PingSession, error: PingError): void {
    session.errors++;
    if (session.errorList.length < 2 * session.count) session.errorList.push(error);
    try {
      session.options.onError?.(error);
    } finally {
      this.maybeFinish(session);
    }
  }

  /** Done early, like ping: every request sent and each answered or failed. */
  private maybeFinish(session: PingSession): void {
    if (session.transmitted === session.count && session.received + session.errors >= session.count) session.finish();
  }

  private allocateIdentifier(): number {
    for (let i = 0; i < 0x10000; i++) {
      const id = this.nextIdentifier;
      this.nextIdentifier = (this.nextIdentifier + 1) & 0xffff;
      if (!this.sessions.has(id)) return id;
    }
    throw new Error('every ICMP echo identifier is in use');
  }

  /** An echo reply arrived: match it to its session (identifier, sequence, source). */
  echoReply(packet: Ipv4Packet, message: IcmpPacket, identifier: number, sequence: number, data: Uint8Array): void {
    this.counters.inc('rx_echo_replies');
    const session = this.sessions.get(identifier);
    if (!session || !session.sentAt.has(sequence) || (session.target !== packet.source && !this.ipv4.isBroadcast(session.target))) {
      this.counters.inc('rx_echo_reply_unmatched');
      return;
    }
    const rttMs = this.clock.now() - session.sentAt.get(sequence)!;
    const duplicate = session.answered.has(sequence);
    const corrupted = !patternMatches(data, session.size);
    const reply: PingReply = { from: packet.source, sequence, bytes: message.bytes.length, ttl: packet.ttl, rttMs, duplicate, corrupted };
    if (duplicate) session.duplicates++;
    else if (corrupted) session.corrupted++;
    else {
      session.answered.add(sequence);
      session.received++;
      session.rtts.push(rttMs);
    }
    // Bounded: anyone can repeat a reply at will. Each answer is kept (one per sequence), and
    // duplicate or corrupted ones up to `count` more; past that they are only counted.
    if ((!duplicate && !corrupted) || session.replies.length - session.received < session.count) session.replies.push(reply);
    try {
      session.options.onReply?.(reply);
    } finally {
      this.maybeFinish(session);
    }
  }

  /**
   * An ICMP error quoting `quotedMessage` (the ICMP part of a datagram we sent to `destination`):
   * if it is one of our echo requests, its session hears about it.
   */
  errorAbout(quotedMessage: Uint8Array, destination: Ipv4Address, from: Ipv4Address, kind: IcmpErrorReport['kind'], code: number): void {
    const p = quotedMessage;
    if (p.length < 8 || p[0] !== IcmpType.ECHO_REQUEST) return;
    const session = this.sessions.get((p[4]! << 8) | p[5]!);
    const sequence = (p[6]! << 8) | p[7]!;
    if (session && session.sentAt.has(sequence) && destination === session.target) {
      this.sessionError(session, { sequence, from, message: describeError(kind, code) });
    }
  }

  /** Ends every session (they resolve with what they have). */
  close(): void {
    for (const s of [...this.sessions.values()]) s.finish();
  }
}

/** The data of our echo requests: byte i is i mod 256 (ping fills its pattern the same way). */
function pattern(size: number): Uint8Array {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = i & 0xff;
  return data;
}

function patternMatches(data: Uint8Array, size: number): boolean {
  if (data.length !== size) return false;
  for (let i = 0; i < size; i++) if (data[i] !== (i & 0xff)) return false;
  return true;
}

function describeError(kind: IcmpErrorReport['kind'], code: number): string {
  if (kind === 'time-exceeded') return code === 0 ? 'Time to live exceeded' : 'Frag reassembly time exceeded';
  switch (code) {
    case UnreachableCode.NET:
      return 'Destination Net Unreachable';
    case UnreachableCode.HOST:
      return 'Destination Host Unreachable';
    case UnreachableCode.PROTOCOL:
      return 'Destination Protocol Unreachable';
    case UnreachableCode.PORT:
      return 'Destination Port Unreachable';
    case UnreachableCode.FRAGMENTATION_NEEDED:
      return 'Frag needed and DF set';
    default:
      return `Destination Unreachable, code ${code}`;
  }
}

function describeSendFailure(outcome: Ipv4SendOutcome): string {
  switch (outcome) {
    case 'no_route':
      return 'sendmsg: Network is unreachable';
    case 'fragmentation_needed':
    case 'too_long':
      return 'sendmsg: Message too long';
    case 'closed':
      return 'sendmsg: stack closed';
    default:
      return 'sendmsg: No buffer space available';
  }
}

