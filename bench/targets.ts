/**
 * The two things the bench pings, each in namespaces of its own (only 10.0.0.0/24 inside, always
 * deleted afterwards):
 *
 *   tapstack:  namespace A: the kernel's tap0 is 10.0.0.1/24; behind it `tapstack up` (its own
 *              node process, exactly as a user runs it) answers as 10.0.0.2.
 *   kernel:    namespace B (10.0.0.1/24 on veth0) <-> veth pair <-> namespace C (10.0.0.2/24 on
 *              veth1): Linux answers the same pings.
 *
 * The pinger is the kernel of the 10.0.0.1 side in both cases, so the only difference is what
 * answers: our stack behind a TAP device, or the kernel behind a veth.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Netns } from '../test/support/netns.ts';

const TAPSTACK_BIN = fileURLToPath(new URL('../packages/stack/bin/tapstack.js', import.meta.url));

export interface Target {
  readonly name: 'tapstack' | 'kernel' | 'node-floor' | 'c-floor';
  /** The namespace the pings are sent from (the 10.0.0.1 side). */
  readonly pinger: Netns;
  /** Who answers. */
  readonly address: string;
  close(): void;
}

/** Resident set size of a process in kB (VmRSS in /proc/<pid>/status). */
export function rssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** IPv6 off inside the namespace: no router solicitations or MLD reports mixed into the figures. */
export function quietIpv6(ns: Netns): void {
  ns.exec('sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']);
  ns.exec('sysctl', ['-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1']);
}

export class TapstackTarget implements Target {
  readonly name = 'tapstack';
  readonly address = '10.0.0.2';
  private output = '';
  private exited = false;

  private constructor(
    readonly pinger: Netns,
    readonly process: ChildProcess,
  ) {
    process.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    process.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    process.on('exit', () => (this.exited = true));
  }

  /** Starts `node packages/stack/bin/tapstack.js up [args]` on tap0 inside a new namespace. */
  static async start(label: string, args: readonly string[] = []): Promise<TapstackTarget> {
    const ns = Netns.create(label);
    try {
      quietIpv6(ns);
      // `ip netns exec` execs the command, so the child's pid is node's own.
      // TAPSTACK_NODE_ARGS: node flags for the stack's process only, e.g. '--cpu-prof --cpu-prof-dir=/tmp/p'
      // (NODE_OPTIONS refuses --cpu-prof, and would profile the bench too).
      const nodeArgs = (process.env.TAPSTACK_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
      const child = ns.spawn(process.execPath, [...nodeArgs, TAPSTACK_BIN, 'up', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      const target = new TapstackTarget(ns, child);
      await target.waitFor(/tapstack is up/, 30_000);
      return target;
    } catch (err) {
      ns.destroy();
      throw err;
    }
  }

  get pid(): number {
    return this.process.pid!;
  }

  rssKb(): number {
    return rssKb(this.pid);
  }

  /**
   * Runs the stack's main thread (the one that reads, answers and writes) on `cpu` only, or
   * anywhere again with undefined. Node's helper threads (GC, libuv pool) stay unpinned.
   */
  placeOn(cpu: number | undefined): void {
    const list = cpu === undefined ? `0-${cpus().length - 1}` : String(cpu);
    execFileSync('taskset', ['-p', '-c', list, String(this.pid)], { stdio: 'ignore' });
  }

  /** Asks the running stack for its neighbour table (the `neigh` command) and counts the entries. */
  async neighbourCount(): Promise<number> {
    const mark = this.output.length;
    this.process.stdin!.write('neigh\n');
    await this.waitFor(/dev tap0|no neighbours/, 5000, mark);
    await new Promise((r) => setTimeout(r, 200)); // the rest of the lines
    const text = this.output.slice(mark);
    // ARP's entries only: `neigh` lists NDP's table after ARP's (IPv6 is on by default), and the
    // flood this counts is an ARP one.
    return text.split('\n').filter((l) => /^\s*\d+\.\d+\.\d+\.\d+ dev tap0 /.test(l)).length;
  }

  /** The stack's counters (the `stats` command), one `layer.name value` per line. */
  async counters(): Promise<string> {
    const mark = this.output.length;
    this.process.stdin!.write('stats\n');
    await this.waitFor(/link\.rx_frames/, 5000, mark);
    await new Promise((r) => setTimeout(r, 200));
    return this.output.slice(mark).trim();
  }

  private waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<void> {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const check = (): void => {
        if (pattern.test(this.output.slice(from))) return resolve();
        if (this.exited) return reject(new Error(`tapstack up exited:\n${this.output}`));
        if (Date.now() - started > timeoutMs) return reject(new Error(`tapstack up: no ${pattern} after ${timeoutMs} ms:\n${this.output}`));
        setTimeout(check, 20);
      };
      check();
    });
  }

  close(): void {
    if (!this.exited) this.process.kill('SIGTERM');
    this.pinger.destroy();
  }
}

export class KernelTarget implements Target {
  readonly name = 'kernel';
  readonly address = '10.0.0.2';

  private constructor(
    readonly pinger: Netns,
    /** The 10.0.0.2 side, where the TCP bench runs the kernel's servers. */
    readonly responder: Netns,
  ) {}

  /** Two namespaces joined by a veth pair: 10.0.0.1 pings, the kernel at 10.0.0.2 answers. */
  static start(label: string): KernelTarget {
    const b = Netns.create(`${label}-b`);
    let c: Netns | undefined;
    try {
      c = Netns.create(`${label}-c`);
      quietIpv6(b);
      quietIpv6(c);
      b.exec('ip', ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1']);
      b.exec('ip', ['link', 'set', 'veth1', 'netns', c.name]);
      b.exec('ip', ['addr', 'add', '10.0.0.1/24', 'dev', 'veth0']);
      c.exec('ip', ['addr', 'add', '10.0.0.2/24', 'dev', 'veth1']);
      b.exec('ip', ['link', 'set', 'veth0', 'up']);
      c.exec('ip', ['link', 'set', 'veth1', 'up']);
      return new KernelTarget(b, c);
    } catch (err) {
      c?.destroy();
      b.destroy();
      throw err;
    }
  }

  close(): void {
    this.pinger.destroy();
    this.responder.destroy();
  }
}

/**
 * A bare responder (bench/floors): a program that creates tap0 in a namespace of its own and
 * answers echo requests with no stack behind it, to show what the device and the runtime cost by
 * themselves. The host side is configured here once the program says `ready`.
 */
export class FloorTarget implements Target {
  readonly address = '10.0.0.2';
  private output = '';

  private constructor(
    readonly name: 'node-floor' | 'c-floor',
    readonly pinger: Netns,
    readonly process: ChildProcess,
  ) {
    process.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    process.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
  }

  static async start(name: 'node-floor' | 'c-floor', label: string, command: string, args: string[]): Promise<FloorTarget> {
    const ns = Netns.create(label);
    try {
      quietIpv6(ns);
      const child = ns.spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const target = new FloorTarget(name, ns, child);
      const started = Date.now();
      while (!/ready/.test(target.output)) {
        if (child.exitCode !== null || Date.now() - started > 30_000) throw new Error(`${name} did not start:\n${target.output}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      ns.exec('ip', ['addr', 'add', '10.0.0.1/24', 'dev', 'tap0']);
      ns.exec('ip', ['link', 'set', 'tap0', 'up']);
      return target;
    } catch (err) {
      ns.destroy();
      throw err;
    }
  }

  /** Like TapstackTarget.placeOn: the responder's main thread on `cpu` only, or anywhere. */
  placeOn(cpu: number | undefined): void {
    const list = cpu === undefined ? `0-${cpus().length - 1}` : String(cpu);
    execFileSync('taskset', ['-p', '-c', list, String(this.process.pid)], { stdio: 'ignore' });
  }

  close(): void {
    this.process.kill('SIGTERM');
    this.pinger.destroy();
  }
}
