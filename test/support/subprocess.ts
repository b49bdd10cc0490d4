/**
 * A TypeScript snippet run in a fresh node process (with tsx, from the repository root), its
 * stdout and stderr collected whole, killed with SIGKILL when it runs past its time. For
 * end-to-end tests whose subject is the process itself: whether it exits when a device is closed
 * or unref()ed, or survives a device closed in the middle of a flood.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

export interface SnippetResult {
  /** The exit code, or null when a signal ended it (`signal`). */
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** It was still running after `timeoutMs` and was killed. */
  readonly timedOut: boolean;
}

/** Starts `code` (an ES module) as `node --import tsx -e`, stdout and stderr piped, and leaves it running. */
export function spawnTsSnippet(code: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env });
}

/** Runs `code` (an ES module) as `node --import tsx -e`; resolves when the process has ended, however it ended. */
export function runTsSnippet(code: string, options: { timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<SnippetResult> {
  return new Promise((resolve, reject) => {
    const child = spawnTsSnippet(code, options.env);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, timedOut });
    });
  });
}
