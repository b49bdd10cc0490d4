/**
 * Whether a `debug` logger is on, for code that runs on every frame.
 *
 * `if (log.enabled) log(...)` is the guard everywhere else. On the per-frame path it is too dear:
 * debug defines `enabled` as an accessor on the logger (a function object with a dozen
 * properties), and the echo path read it four times per frame: taking those reads out made the
 * in-memory echo path about a fifth faster. So a hot path asks a guard made once per logger:
 *
 *   const logging = hotPathLogging(log);
 *   ...
 *   if (logging()) log('in  %s', formatIpv4Packet(...));
 *
 * The guard reads `log.enabled` at its first use in a synchronous run of JavaScript (a TAP
 * wake-up's batch of frames, a timer callback) and answers from that until the run ends: a
 * `debug.enable()` or `log.enabled = true` takes effect from the next run on. One microtask per
 * run, shared by every guard, marks the end of the run.
 */
import type { Debugger } from 'debug';

/** Counts finished runs in which some guard was read; a guard's answer is good for one run. */
let run = 0;
let endOfRunQueued = false;

function endRun(): void {
  run++;
  endOfRunQueued = false;
}

export function hotPathLogging(log: Debugger): () => boolean {
  let readInRun = -1;
  let enabled = false;
  return () => {
    if (readInRun !== run) {
      enabled = log.enabled;
      readInRun = run;
      if (!endOfRunQueued) {
        endOfRunQueued = true;
        queueMicrotask(endRun);
      }
    }
    return enabled;
  };
}
