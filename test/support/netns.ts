/**
 * Private networks for end-to-end tests and demos. Every test that touches a real TAP device
 * creates its own network namespace, creates the device inside it, uses only 10.0.0.0/24 inside
 * it, and deletes the namespace afterwards, also when the test fails. Nothing here ever
 * configures anything in the root namespace.
 *
 *   const ns = Netns.create('arp');             // ip netns add tapstack-arp-<pid>-<n>
 *   await ns.run('ip', ['addr']);                // ip netns exec <ns> ip addr
 *   ns.destroy();                                // ip netns del <ns> (idempotent)
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

let counter = 0;
const live = new Set<Netns>();

/** Throws, loudly, when this machine cannot run end-to-end tests. They must never skip. */
export function requireE2eCapabilities(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('end-to-end tests need root (they create network namespaces and TAP devices): run them as root, e.g. sudo npm test');
  }
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    throw new Error('end-to-end tests need /dev/net/tun: load the module with `modprobe tun`');
  }
  requireTools(['ip', 'ping', 'arping', 'tshark']);
}

/** Throws, loudly, naming the first of `tools` this machine lacks (a test that needs it must fail, not skip). */
export function requireTools(tools: readonly string[]): void {
  for (const tool of tools) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      throw new Error(`end-to-end tests need \`${tool}\`: install it (bash .ci/run installs everything the tests use; scripts/test-tools.sh lists them)`);
    }
  }
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

export class Netns {
  private destroyed = false;
  private readonly children = new Set<ChildProcess>();

  private constructor(readonly name: string) {}

  /** Creates `tapstack-<label>-<pid>-<n>` with its loopback up. */
  static create(label: string): Netns {
    requireE2eCapabilities();
    const name = `tapstack-${label}-${process.pid}-${counter++}`;
    execFileSync('ip', ['netns', 'add', name]);
    const ns = new Netns(name);
    live.add(ns);
    ns.exec('ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** Runs a command inside the namespace and waits for it; throws on a non-zero exit. */
  exec(cmd: string, args: string[], timeoutMs = 30_000): string {
    return execFileSync('ip', ['netns', 'exec', this.name, cmd, ...args], {
      encoding: 'utf8',
      timeout: timeoutMs,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** Runs a command inside the namespace without blocking the event loop; never throws on exit status. */
  run(cmd: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const child = this.spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ status: code ?? (signal ? 128 : 1), stdout, stderr });
      });
    });
  }

  /** Starts a long-running command inside the namespace; it is killed by destroy(). */
  spawn(cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], options);
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** Kills what we started in it and deletes the namespace (and every device in it). Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const c of this.children) c.kill('SIGKILL');
    try {
      execFileSync('ip', ['netns', 'pids', this.name], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .forEach((pid) => {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* already gone */
          }
        });
    } catch {
      /* namespace already gone */
    }
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
}

// A crashed test run must not leave namespaces behind.
process.on('exit', () => {
  for (const ns of live) ns.destroy();
});
