/**
 * A network namespace of the example's own, so nothing an example does touches the machine's
 * real network: `ownNamespace('tapstack-ping-me')` creates it (`ip netns add`) and removes it
 * (`ip netns del`, which also deletes the TAP device inside) when the process exits, whether it
 * ends normally, on Ctrl-C, or with an error.
 *
 *   const ns = ownNamespace('tapstack-ping-me');
 *   const tap = TapDevice.open({ name: 'tap0', netns: ns.name });
 *   onStop(() => { print counters; stack.close(); });    // Ctrl-C / SIGTERM
 */
import { execFileSync } from 'node:child_process';

export interface OwnNamespace {
  readonly name: string;
  /** Runs a command inside the namespace (for example `ip neigh show`) and returns its output. */
  exec(cmd: string, args: string[]): string;
  /** Deletes the namespace now (also done at exit). Idempotent. */
  remove(): void;
}

export function ownNamespace(name: string): OwnNamespace {
  if (process.getuid?.() !== 0) {
    console.error(`This example creates a TAP device in a network namespace of its own, which needs root:`);
    console.error(`  sudo npx tsx ${process.argv[1]?.replace(/^.*\/examples\//, 'examples/') ?? 'examples/...'}`);
    process.exit(1);
  }
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
    console.error(`--netns ${name}: use letters, digits, '-', '_' and '.'`);
    process.exit(2);
  }
  const existing = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (existing.split('\n').some((line) => line.split(' ')[0] === name)) {
    console.error(`network namespace ${name} already exists (left over from an earlier run?):`);
    console.error(`  sudo ip netns del ${name}    or pick another one with --netns NAME`);
    process.exit(1);
  }
  execFileSync('ip', ['netns', 'add', name]);
  let removed = false;
  const ns: OwnNamespace = {
    name,
    exec: (cmd, args) => execFileSync('ip', ['netns', 'exec', name, cmd, ...args], { encoding: 'utf8' }),
    remove() {
      if (removed) return;
      removed = true;
      try {
        execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    },
  };
  ns.exec('ip', ['link', 'set', 'lo', 'up']);
  // 'exit' runs on a normal end, on process.exit() and after an uncaught error.
  process.on('exit', () => ns.remove());
  process.on('uncaughtException', (err) => {
    console.error(err);
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    console.error(err);
    process.exit(1);
  });
  return ns;
}

/** Runs `stop` on Ctrl-C (SIGINT) or SIGTERM, then exits 0 (which removes the namespace). */
export function onStop(stop: () => void): void {
  let stopping = false;
  const handler = (): void => {
    // Ctrl-C reaches every process of the terminal's group (tsx and the script under it, which
    // tsx also relays it to), so a second signal may follow the first: the handler stays
    // installed and ignores it, rather than letting it kill us before the namespace is removed.
    if (stopping) return;
    stopping = true;
    try {
      stop();
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
