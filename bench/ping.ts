/**
 * Runs the real iputils `ping` inside a namespace and reads its summary:
 *
 *   20000 packets transmitted, 20000 received, 0% packet loss, time 642ms
 *   rtt min/avg/max/mdev = 0.006/0.021/12.894/0.185 ms, ipg/ewma 0.032/0.010 ms
 */
import type { Netns } from '../test/support/netns.ts';

export interface PingResult {
  transmitted: number;
  received: number;
  lossPercent: number;
  /** ping's own `time`: from the first request to the end of the run, in ms. */
  timeMs: number;
  rttMinMs: number;
  rttAvgMs: number;
  rttMaxMs: number;
}

/** Parses ping's summary lines; throws with the output when they are not there. */
export function parsePingSummary(output: string): PingResult {
  const counts = /(\d+) packets transmitted, (\d+) received,(?: \+\d+ duplicates,)?(?: \+\d+ errors,)? ([\d.]+)% packet loss, time (\d+)ms/.exec(
    output,
  );
  if (!counts) throw new Error(`no ping summary in:\n${output}`);
  const rtt = /rtt min\/avg\/max\/mdev = ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(output);
  return {
    transmitted: Number(counts[1]),
    received: Number(counts[2]),
    lossPercent: Number(counts[3]),
    timeMs: Number(counts[4]),
    rttMinMs: rtt ? Number(rtt[1]) : Number.NaN,
    rttAvgMs: rtt ? Number(rtt[2]) : Number.NaN,
    rttMaxMs: rtt ? Number(rtt[3]) : Number.NaN,
  };
}

/**
 * `ping -q <args> <target>` inside `ns`, without blocking our event loop. `-W 1` bounds the wait
 * for the last replies, so a lossy run ends in a second instead of ping's 10 s linger.
 */
export async function ping(ns: Netns, target: string, args: string[], options: { cpu?: number; timeoutMs?: number } = {}): Promise<PingResult> {
  const command = ['ping', '-q', '-W', '1', ...args, target];
  // With `cpu`, ping runs on that CPU only (taskset), next to a responder placed there too.
  const [cmd, ...rest] = options.cpu === undefined ? command : ['taskset', '-c', String(options.cpu), ...command];
  const r = await ns.run(cmd!, rest, options.timeoutMs ?? 300_000);
  // ping exits 1 when some replies were missing: the summary still says how many.
  if (r.status !== 0 && r.status !== 1) throw new Error(`ping ${args.join(' ')} ${target} failed (${r.status}): ${r.stderr || r.stdout}`);
  return parsePingSummary(r.stdout);
}
