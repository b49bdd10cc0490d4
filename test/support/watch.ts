/**
 * Watching a long-running child process (tapstack up, an example) from a test: collect what it
 * prints, wait for a line, stop it with a signal and learn how it exited.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Netns } from './netns.ts';

/** The checkout's root, and the paths tests run things from. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const tapstackBin = fileURLToPath(new URL('../../packages/stack/bin/tapstack.js', import.meta.url));
export const tsxBin = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Watched {
  private text = '';
  readonly exited: Promise<Exit>;
  private exit: Exit | undefined;

  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.text += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.text += d.toString()));
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  /** Everything printed so far, stdout and stderr interleaved as they arrived. */
  get output(): string {
    return this.text;
  }

  /** Resolves when the output (from `from` on) matches; rejects with the output on timeout or exit. */
  waitFor(pattern: RegExp, timeoutMs = 30_000, from = 0): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const poll = setInterval(() => {
        const m = this.text.slice(from).match(pattern);
        if (m) {
          clearInterval(poll);
          resolve(m);
        } else if (this.exit || Date.now() - started > timeoutMs) {
          clearInterval(poll);
          const why = this.exit ? `it exited (${JSON.stringify(this.exit)})` : `${timeoutMs} ms passed`;
          reject(new Error(`waiting for ${pattern}: ${why}; output so far:\n${this.text}`));
        }
      }, 25);
    });
  }

  /** Sends a signal and waits for the exit (SIGKILL after `timeoutMs`). */
  async stop(signal: NodeJS.Signals = 'SIGINT', timeoutMs = 10_000): Promise<Exit> {
    if (!this.exit) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** `tapstack ARGS` inside the namespace, watched. */
export function spawnTapstack(ns: Netns, args: string[], env: NodeJS.ProcessEnv = process.env): Watched {
  return new Watched(ns.spawn(process.execPath, [tapstackBin, ...args], { stdio: ['pipe', 'pipe', 'pipe'], cwd: repoRoot, env }));
}

/** Parses `  link.tx_frames 12` lines (the counters tapstack prints) into a map. */
export function parseCounters(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^\s*([a-z0-9_]+\.[A-Za-z0-9_]+) (\d+)$/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}
