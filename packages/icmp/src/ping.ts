/**
 * The ping client's types and its iputils-style output. The session logic lives in IcmpLayer
 * (`icmp.ping`), which owns the echo identifiers; this file only says what a ping returns and
 * how it prints.
 */
import { formatIpv4, type Ipv4Address } from '@tapstack/link';

export interface PingOptions {
  /** Echo requests to send (default 4). */
  count?: number;
  /** Bytes of data after the 8-byte ICMP header (default 56, like ping). */
  size?: number;
  /** Time between requests (default 1000 ms). */
  intervalMs?: number;
  /** How long to wait for replies after the last request (default 10 000 ms, ping's -W). */
  timeoutMs?: number;
  /** TTL of the requests (default the IPv4 layer's). */
  ttl?: number;
  /** Called for every reply (duplicates included). */
  onReply?: (reply: PingReply) => void;
  /** Called for every ICMP error about one of our requests, and for requests that could not be sent. */
  onError?: (error: PingError) => void;
}

export interface PingReply {
  readonly from: Ipv4Address;
  readonly sequence: number;
  /** ICMP bytes received (header + data), what ping prints as "64 bytes". */
  readonly bytes: number;
  readonly ttl: number;
  readonly rttMs: number;
  readonly duplicate: boolean;
  /** The data differed from what we sent. */
  readonly corrupted: boolean;
}

export interface PingError {
  readonly sequence: number;
  /** Who reported it (our own address for local errors such as a failed ARP resolution). */
  readonly from: Ipv4Address;
  /** What went wrong, as ping says it: `Destination Host Unreachable`, `no route`, ... */
  readonly message: string;
}

export interface PingSummary {
  readonly target: Ipv4Address;
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
  readonly rtt: { readonly minMs: number; readonly avgMs: number; readonly maxMs: number; readonly mdevMs: number } | undefined;
  /** The replies in order of arrival: every answer, and up to `count` duplicate or corrupted ones (more are only counted). */
  readonly replies: readonly PingReply[];
  /** Every error in order, at most 2 x count (more are only counted in `errors`). */
  readonly errorList: readonly PingError[];
}

/** Like iputils: 0.052 / 1.23 / 12.3 / 123 ms. */
function formatRttShort(ms: number): string {
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  if (ms >= 1) return ms.toFixed(2);
  return ms.toFixed(3);
}

/** `64 bytes from 10.0.0.1: icmp_seq=1 ttl=64 time=0.052 ms` */
export function formatPingReply(reply: PingReply): string {
  return (
    `${reply.bytes} bytes from ${formatIpv4(reply.from)}: icmp_seq=${reply.sequence} ttl=${reply.ttl} ` +
    `time=${formatRttShort(reply.rttMs)} ms${reply.duplicate ? ' (DUP!)' : ''}${reply.corrupted ? ' (BAD DATA)' : ''}`
  );
}

/** `From 10.0.0.2 icmp_seq=1 Destination Host Unreachable` */
export function formatPingError(error: PingError): string {
  return `From ${formatIpv4(error.from)} icmp_seq=${error.sequence} ${error.message}`;
}

/** printf's %g with 6 significant digits, for the loss percentage: 0, 20, 33.3333, 100. */
function formatG(value: number): string {
  return String(Number(value.toPrecision(6)));
}

/**
 * The iputils summary:
 *
 *   --- 10.0.0.1 ping statistics ---
 *   5 packets transmitted, 5 received, 0% packet loss, time 4005ms
 *   rtt min/avg/max/mdev = 0.041/0.063/0.092/0.017 ms
 */
export function formatPingSummary(summary: PingSummary): string {
  let counts = `${summary.transmitted} packets transmitted, ${summary.received} received`;
  if (summary.duplicates > 0) counts += `, +${summary.duplicates} duplicates`;
  if (summary.corrupted > 0) counts += `, +${summary.corrupted} corrupted`;
  if (summary.errors > 0) counts += `, +${summary.errors} errors`;
  counts += `, ${formatG(summary.lossPercent)}% packet loss, time ${Math.round(summary.timeMs)}ms`;
  const lines = [`--- ${formatIpv4(summary.target)} ping statistics ---`, counts];
  const r = summary.rtt;
  if (r) lines.push(`rtt min/avg/max/mdev = ${r.minMs.toFixed(3)}/${r.avgMs.toFixed(3)}/${r.maxMs.toFixed(3)}/${r.mdevMs.toFixed(3)} ms`);
  return lines.join('\n');
}

/** min/avg/max/mdev as iputils computes them: mdev = sqrt(mean(rtt^2) - mean(rtt)^2). */
export function rttStatistics(rtts: readonly number[]): PingSummary['rtt'] {
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
