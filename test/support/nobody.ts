/**
 * Running a command as an unprivileged user (nobody/nogroup, no supplementary groups), to test
 * what tapstack says and does without root. setpriv keeps the environment, so callers pass a
 * HOME of their own (npm wants a writable cache).
 */
import { execFileSync } from 'node:child_process';
import { repoRoot } from './watch.ts';

/** `setpriv ... env VARS cmd args`: the argv that runs `cmd` as nobody. */
export function asNobody(cmd: string, args: string[], env: Record<string, string> = {}): [string, string[]] {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return ['setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--', 'env', ...vars, cmd, ...args]];
}

/**
 * Fails loudly (never skips) when nobody cannot read the checkout and its node_modules: a
 * checkout under /root (mode 700) cannot be run by another user. The fix is to clone somewhere
 * readable, or `chmod o+rx` the directories on the way.
 */
export function requireNobodyCanRun(): void {
  const [cmd, args] = asNobody(process.execPath, [
    '-e',
    "require('fs').accessSync(process.argv[1] + 'packages/stack/src/main.ts'); require('fs').accessSync(process.argv[1] + 'node_modules/tsx/package.json')",
    repoRoot,
  ]);
  try {
    execFileSync(cmd, args, { stdio: 'pipe' });
  } catch (err) {
    throw new Error(
      `the non-root tests run tapstack as the user nobody, who cannot run node (${process.execPath}) or read ${repoRoot} ` +
        `and its node_modules (${String((err as { stderr?: Buffer }).stderr ?? err).trim().split('\n')[0]}): ` +
        'install node and clone the repository where every user can read them (e.g. /usr/local, /opt or /srv), ' +
        'or chmod o+rx every directory on the way',
    );
  }
}

/** Whether the user nobody can run node and read the checkout (false for a clone under /root). */
export function nobodyCanRun(): boolean {
  try {
    requireNobodyCanRun();
    return true;
  } catch {
    return false;
  }
}

/**
 * The argv that runs `cmd` without the privileges a TAP device needs: as nobody where nobody can
 * read the checkout, otherwise as root with every capability dropped (effective, inheritable,
 * ambient and bounding sets), which is what a TAP open sees as "not permitted" too. Says which.
 */
export function asUnprivileged(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): { argv: [string, string[]]; who: 'nobody' | 'root-without-capabilities' } {
  if (nobodyCanRun()) return { argv: asNobody(cmd, args, env), who: 'nobody' };
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return {
    argv: ['setpriv', ['--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', '--', 'env', ...vars, cmd, ...args]],
    who: 'root-without-capabilities',
  };
}
