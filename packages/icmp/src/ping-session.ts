/**
 * The part of ping that is the same for both address families: sessions of echo requests, each
 * under an identifier of its own, the replies and errors matched back to them, the bounds on what
 * a session keeps, and iputils' statistics and summary. ICMP's echo (RFC 792) and ICMPv6's
 * (RFC 4443 4.1, 4.2) carry identifier, sequence and data at the same place, so only the edges
 * differ, and they stay with each family: PingClient (here, IPv4) and @tapstack/icmpv6's
 * Ping6Client build and send the request, read the quoted request out of an error, and say which
 * source may answer a target.
 */
import type { Clock, Timer } from '@tapstack/link';

/** What every reply tells, whatever the family (each adds what its IP header says: ttl or hopLimit). */
export interface EchoReply<Address> {
  readonly from: Address;
  readonly sequence: number;
  /** ICMP bytes received (header + data), what ping prints as "64 bytes". */
  readonly bytes: number;
  readonly rttMs: number;
  readonly duplicate: boolean;
  /** The data differed from what we sent. */
  readonly corrupted: boolean;
}

/** An error about one request: an ICMP error quoting it, or a request that could not be sent. */
export interface EchoError {
  readonly sequence: number;
  /** What went wrong, as ping says it: `Destination Host Unreachable`, `no route`, ... */
  readonly message: string;
}

export interface EchoOptions<Reply, Error> {
  /** Echo requests to send (default 4). */
  count?: number;
  /** Bytes of data after the 8-byte ICMP header (default 56, like ping). */
  size?: number;
  /** Time between requests (default 1000 ms). */
  intervalMs?: number;
  /** How long to wait for replies after the last request (default 10 000 ms, ping's -W). */
  timeoutMs?: number;
  /** Called for every reply (duplicates included). */
  onReply?: (reply: Reply) => void;
  /** Called for every ICMP error about one of our requests, and for requests that could not be sent. */
  onError?: (error: Error) => void;
}

/** min/avg/max/mdev of the round trips, in milliseconds. */
export interface RttStatistics {
  readonly minMs: number;
  readonly avgMs: number;
  readonly maxMs: number;
  readonly mdevMs: number;
}

export interface EchoSummary<Address, Reply, Error> {
  readonly target: Address;
  readonly transmitted: number;
  readonly received: number;
  readonly duplicates: number;
  readonly corrupted: number;
  readonly errors: number;
  /** (transmitted - received) / transmitted * 100. */
  readonly lossPercent: number;
  /** From the first request to the end of the run. */
  readonly timeMs: number;
  /** Round-trip statistics over the (non-duplicate) replies; undefined when none came. */
  readonly rtt: RttStatistics | undefined;
  /** The replies in order of arrival: every answer, and up to `count` duplicate or corrupted ones (more are only counted). */
  readonly replies: readonly Reply[];
  /** Every error in order, at most 2 x count (more are only counted in `errors`). */
  readonly errorList: readonly Error[];
}

/** The counters a session touches; each family's layer has them under the same names. */
export type EchoCounterName = 'tx_echo_requests' | 'tx_failed' | 'rx_echo_reply_unmatched';

/**
 * Sends the echo request `sequence` of session `identifier` carrying `data`. Returns undefined when
 * it left or waits for the neighbour's address, otherwise the error to report for it.
 */
export type SendEcho<Error> = (identifier: number, sequence: number, data: Uint8Array) => Error | undefined;

export interface EchoSessionsOptions<Address> {
  clock: Clock;
  counters: { inc(name: EchoCounterName): void };
  /** The first identifier tried (then counting up, skipping those in use). */
  firstIdentifier: number;
  /** The protocol's name, for the error when every identifier is taken ('ICMP', 'ICMPv6'). */
  protocol: string;
  /** Address equality (IPv4 addresses are numbers, IPv6 ones objects). */
  sameAddress(a: Address, b: Address): boolean;
  /** A target anyone may answer (broadcast, multicast): replies from any source count. */
  anyoneAnswers(target: Address): boolean;
}

interface Session<Address, Reply, Error> {
  readonly target: Address;
  readonly count: number;
  readonly size: number;
  readonly options: EchoOptions<Reply, Error>;
  /** When each sequence number was sent: a reply for one not in here is not ours. */
  readonly sentAt: Map<number, number>;
  readonly answered: Set<number>;
  readonly rtts: number[];
  readonly replies: Reply[];
  readonly errorList: Error[];
  readonly start: number;
  transmitted: number;
  received: number;
  duplicates: number;
  corrupted: number;
  errors: number;
  timer: Timer | undefined;
  finish: () => void;
}

export class EchoSessions<Address, Reply extends EchoReply<Address>, Error extends EchoError> {
  private readonly sessions = new Map<number, Session<Address, Reply, Error>>();
  private nextIdentifier: number;

  constructor(private readonly options: EchoSessionsOptions<Address>) {
    this.nextIdentifier = options.firstIdentifier & 0xffff;
  }

  /**
   * Runs one session: `count` requests of `size` data bytes (checked by the caller), `intervalMs`
   * apart, then up to `timeoutMs` for the rest of the replies. Resolves with the summary.
   */
  start(target: Address, count: number, size: number, options: EchoOptions<Reply, Error>, send: SendEcho<Error>): Promise<EchoSummary<Address, Reply, Error>> {
    const { clock, counters } = this.options;
    const intervalMs = options.intervalMs ?? 1000;
    const timeoutMs = options.timeoutMs ?? 10_000;
    const identifier = this.allocateIdentifier();
    // The caller awaits this: keep the process alive until the summary is in (see Clock.hold).
    const release = clock.hold();
    return new Promise((resolve) => {
      const session: Session<Address, Reply, Error> = {
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
      const data = pattern(size);
      const sendNext = (): void => {
        if (!this.sessions.has(identifier)) return;
        // count is at most 65535, so the 16-bit sequence number never wraps within a session.
        const sequence = session.transmitted + 1;
        session.transmitted = sequence;
        session.sentAt.set(sequence, clock.now());
        const failure = send(identifier, sequence, data);
        if (failure === undefined) counters.inc('tx_echo_requests');
        else {
          counters.inc('tx_failed');
          this.sessionError(session, failure);
          if (!this.sessions.has(identifier)) return;
        }
        session.timer = clock.setTimer(sequence < count ? intervalMs : timeoutMs, () => {
          if (sequence < count) sendNext();
          else session.finish();
        });
      };
      sendNext();
    });
  }

  /**
   * An echo reply from `from` of `bytes` ICMP bytes carrying `data`: matched to its session by
   * identifier, sequence and source; `complete` adds what the family's reply record has besides.
   */
  reply(from: Address, identifier: number, sequence: number, bytes: number, data: Uint8Array, complete: (reply: EchoReply<Address>) => Reply): void {
    const session = this.sessions.get(identifier);
    const { sameAddress, anyoneAnswers } = this.options;
    if (!session || !session.sentAt.has(sequence) || !(anyoneAnswers(session.target) || sameAddress(session.target, from))) {
      this.options.counters.inc('rx_echo_reply_unmatched');
      return;
    }
    const rttMs = this.options.clock.now() - session.sentAt.get(sequence)!;
    const duplicate = session.answered.has(sequence);
    const corrupted = !patternMatches(data, session.size);
    const reply = complete({ from, sequence, bytes, rttMs, duplicate, corrupted });
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
   * An ICMP error quoting the echo request (`identifier`, `sequence`) that was sent to
   * `destination`: if it is one of ours, its session hears about it.
   */
  error(identifier: number, sequence: number, destination: Address, error: Error): void {
    const session = this.sessions.get(identifier);
    if (session && session.sentAt.has(sequence) && this.options.sameAddress(destination, session.target)) {
      this.sessionError(session, error);
    }
  }

  /** Ends every session (they resolve with what they have). */
  close(): void {
    for (const s of [...this.sessions.values()]) s.finish();
  }

  private sessionError(session: Session<Address, Reply, Error>, error: Error): void {
    session.errors++;
    if (session.errorList.length < 2 * session.count) session.errorList.push(error);
    try {
      session.options.onError?.(error);
    } finally {
      this.maybeFinish(session);
    }
  }

  /** Done early, like ping: every request sent and each answered or failed. */
  private maybeFinish(session: Session<Address, Reply, Error>): void {
    if (session.transmitted === session.count && session.received + session.errors >= session.count) session.finish();
  }

  private allocateIdentifier(): number {
    for (let i = 0; i < 0x10000; i++) {
      const id = this.nextIdentifier;
      this.nextIdentifier = (this.nextIdentifier + 1) & 0xffff;
      if (!this.sessions.has(id)) return id;
    }
    throw new Error(`every ${this.options.protocol} echo identifier is in use`);
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

/** min/avg/max/mdev as iputils computes them: mdev = sqrt(mean(rtt^2) - mean(rtt)^2). */
export function rttStatistics(rtts: readonly number[]): RttStatistics | undefined {
  if (rtts.length === 0) return undefined;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sum2 = 0;
  for (const t of rtts) {
    if (t < min) min = t;
    if (t > max) max = t;
    sum += t;
    sum2 += t * t;
  }
  const avg = sum / rtts.length;
  const mdev = Math.sqrt(Math.max(0, sum2 / rtts.length - avg * avg));
  return { minMs: min, avgMs: avg, maxMs: max, mdevMs: mdev };
}

/**
 * What ping prints for a request the IP layer would not send (either family's send outcome),
 * in the words of the errno sendmsg() returns on Linux.
 */
export function sendFailureMessage(outcome: string): string {
  switch (outcome) {
    case 'no_route':
      return 'sendmsg: Network is unreachable';
    case 'no_source':
      return 'sendmsg: Cannot assign requested address';
    case 'fragmentation_needed':
    case 'too_long':
      return 'sendmsg: Message too long';
    case 'closed':
      return 'sendmsg: stack closed';
    default:
      return 'sendmsg: No buffer space available';
  }
}

/** Like iputils: 0.052 / 1.23 / 12.3 / 123 ms. */
function formatRttShort(ms: number): string {
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  if (ms >= 1) return ms.toFixed(2);
  return ms.toFixed(3);
}

/**
 * `64 bytes from 10.0.0.1: icmp_seq=1 ttl=64 time=0.052 ms`, given the source as text and the
 * TTL or hop limit (iputils prints both as ttl).
 */
export function formatEchoReply(reply: EchoReply<unknown>, from: string, ttl: number): string {
  return (
    `${reply.bytes} bytes from ${from}: icmp_seq=${reply.sequence} ttl=${ttl} ` +
    `time=${formatRttShort(reply.rttMs)} ms${reply.duplicate ? ' (DUP!)' : ''}${reply.corrupted ? ' (BAD DATA)' : ''}`
  );
}

/** printf's %g with 6 significant digits, for the loss percentage: 0, 20, 33.3333, 100. */
function formatG(value: number): string {
  return String(Number(value.toPrecision(6)));
}

/**
 * The iputils summary, given the target as text:
 *
 *   --- 10.0.0.1 ping statistics ---
 *   5 packets transmitted, 5 received, 0% packet loss, time 4005ms
 *   rtt min/avg/max/mdev = 0.041/0.063/0.092/0.017 ms
 */
export function formatEchoSummary(summary: EchoSummary<unknown, unknown, unknown>, target: string): string {
  let counts = `${summary.transmitted} packets transmitted, ${summary.received} received`;
  if (summary.duplicates > 0) counts += `, +${summary.duplicates} duplicates`;
  if (summary.corrupted > 0) counts += `, +${summary.corrupted} corrupted`;
  if (summary.errors > 0) counts += `, +${summary.errors} errors`;
  counts += `, ${formatG(summary.lossPercent)}% packet loss, time ${Math.round(summary.timeMs)}ms`;
  const lines = [`--- ${target} ping statistics ---`, counts];
  const r = summary.rtt;
  if (r) lines.push(`rtt min/avg/max/mdev = ${r.minMs.toFixed(3)}/${r.avgMs.toFixed(3)}/${r.maxMs.toFixed(3)}/${r.mdevMs.toFixed(3)} ms`);
  return lines.join('\n');
}
