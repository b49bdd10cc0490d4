/**
 * The kernel's `ping` (iputils) as the witness that a stack answered every echo request, in a way
 * that a loaded machine cannot fake.
 *
 * `ping -c N` alone stops waiting soon after its last request: twice its slowest round trip, or
 * one interval when that is longer (iputils' schedule_exit). With `-i 0.2` that is 200 ms, so a
 * responder that is off the CPU for 200 ms right at the end has its last reply counted as lost,
 * although it came. With a deadline (`-w S`) as well, ping waits until N replies came (or S
 * seconds passed): a late reply is counted as received. While it waits it goes on sending one
 * request per interval, so the summary may say `4 packets transmitted, 3 received`, or `5, 5`
 * when the late replies come together; neither is a loss. What is a loss is a request among the
 * first N that never got its reply, and that shows in ping's reply lines, one per reply with its
 * icmp_seq: the check is that icmp_seq 1 to N each have exactly one, none duplicated.
 */
import { expect } from 'vitest';

/** How long ping may wait for the N-th reply: far past any stall, and ping stops at the N-th. */
export const PING_DEADLINE_S = 20;

/** `-c N -w DEADLINE`: N requests, each waited for (see above). */
export function pingCount(count: number): string[] {
  return ['-c', String(count), '-w', String(PING_DEADLINE_S)];
}

/** The icmp_seq of each reply line (`64 bytes from ...: icmp_seq=3 ...`), and of the duplicates. */
export function pingReplies(output: string): { sequences: number[]; duplicates: number[] } {
  const sequences: number[] = [];
  const duplicates: number[] = [];
  for (const m of output.matchAll(/^\d+ bytes from \S+: icmp_seq=(\d+) .*$/gm)) {
    (m[0].endsWith('(DUP!)') ? duplicates : sequences).push(Number(m[1]));
  }
  return { sequences, duplicates };
}

/**
 * Requests 1 to `count` were each answered once, nothing duplicated, and ping exited 0 (with -w,
 * iputils exits 0 only once it has `count` replies). Replaces matching `N packets transmitted, N
 * received, 0% packet loss`, which a late last reply breaks (see above).
 */
export function expectEveryRequestAnswered(run: { status: number | null; stdout: string; stderr?: string }, count: number, label = 'ping'): void {
  const all = run.stdout + (run.stderr ?? '');
  const { sequences, duplicates } = pingReplies(run.stdout);
  const first = sequences.filter((s) => s <= count).sort((a, b) => a - b);
  expect(first, `${label}: the replies to requests 1-${count}\n${all}`).toEqual(Array.from({ length: count }, (_, i) => i + 1));
  expect(duplicates, `${label}: duplicated replies\n${all}`).toEqual([]);
  const received = run.stdout.match(/\d+ packets transmitted, (\d+) received/)?.[1];
  expect(Number(received ?? -1), `${label}: the replies ping counted\n${all}`).toBeGreaterThanOrEqual(count);
  expect(run.status, `${label}: exit status\n${all}`).toBe(0);
}
