/**
 * Which network namespace the host side of the TAP device lands in, and whether tapstack may
 * configure it there. `tapstack up` (and `ping`, `connect`, `get`, which bring a device up too)
 * gives the kernel's side of the device an address; in the machine's own (root) namespace that
 * changes the machine's real network. So it refuses to configure the host side there unless told
 * explicitly (`--host-ip` or `--no-host-config`), and says how to use a namespace of its own.
 *
 * A namespace is known by its inode: /proc/PID/ns/net is a link whose text is `net:[4026531840]`,
 * the same for every process in that namespace. The root one is init's (/proc/1/ns/net).
 */
import { execFileSync } from 'node:child_process';
import { readlinkSync, statSync } from 'node:fs';

export interface NamespaceIdentity {
  /** `net:[4026531840]`: the namespace's inode, as /proc/PID/ns/net names it (undefined: unreadable). */
  readonly id: string | undefined;
  /** The machine's own network: init's namespace (or, when init's cannot be read, one `ip netns` has no name for). */
  readonly isRoot: boolean;
  /** The name `ip netns` knows it by, when it has one. */
  readonly name: string | undefined;
}

/** Where the answers come from: the system (/proc, /run/netns, `ip netns identify`), or a test. */
export interface NamespaceProbe {
  /** This process's namespace: the text of /proc/self/ns/net. */
  self(): string | undefined;
  /** init's namespace: the text of /proc/1/ns/net (undefined when it cannot be read, e.g. not root). */
  init(): string | undefined;
  /** The namespace `ip netns add NAME` made, `net:[inode of /run/netns/NAME]` (undefined: no such name). */
  named(name: string): string | undefined;
  /** `ip netns identify`: the name of this process's namespace, if it has one. */
  selfName(): string | undefined;
}

function readLink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/**
 * The real probe. TAPSTACK_ASSUME_ROOT_NETNS=1 makes it answer that this process runs in init's
 * namespace (0: that init's is some other one), for the tests of the refusal: they run inside a
 * namespace of their own and must never really touch the machine's.
 */
export function systemProbe(env: NodeJS.ProcessEnv = process.env): NamespaceProbe {
  const override = env.TAPSTACK_ASSUME_ROOT_NETNS;
  const self = (): string | undefined => readLink('/proc/self/ns/net');
  return {
    self,
    init: () => (override === '1' ? self() : override === '0' ? 'net:[not this one]' : readLink('/proc/1/ns/net')),
    named: (name) => {
      try {
        return `net:[${statSync(`/run/netns/${name}`).ino}]`;
      } catch {
        return undefined;
      }
    },
    selfName: () => {
      try {
        const out = execFileSync('ip', ['netns', 'identify', String(process.pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 2000 });
        return out.trim() || undefined;
      } catch {
        return undefined;
      }
    },
  };
}

function judge(id: string | undefined, name: string | undefined, init: string | undefined): NamespaceIdentity {
  // Compare inodes when both can be read; when init's cannot, a namespace without a name is taken
  // for the machine's own (refusing is the safe mistake: --host-ip or --no-host-config says what is meant).
  const isRoot = id !== undefined && init !== undefined ? id === init : name === undefined;
  return { id, isRoot, name };
}

/** The namespace this process runs in. */
export function networkNamespace(probe: NamespaceProbe = systemProbe()): NamespaceIdentity {
  return judge(probe.self(), probe.selfName(), probe.init());
}

/**
 * The namespace the host side lands in: the one named by `--netns` (the device is created there),
 * else this process's own.
 */
export function hostSideNamespace(netns: string | undefined, probe: NamespaceProbe = systemProbe()): NamespaceIdentity {
  if (netns === undefined) return networkNamespace(probe);
  const id = probe.named(netns);
  // A name that does not exist fails when the device is opened, with its own message.
  return id === undefined ? { id, isRoot: false, name: netns } : judge(id, netns, probe.init());
}

/** What to do with the kernel's side of the device. */
export type HostSideDecision =
  /** Give it the address (--host-ip, or the default 10.0.0.1/24 in a namespace of its own). */
  | 'configure'
  /** --no-host-config: the user configures it. */
  | 'leave'
  /** The default address in the machine's own namespace: refuse, say how to use a namespace. */
  | 'refuse';

export function hostSideDecision(where: NamespaceIdentity, device: { hostIp: unknown; hostSideChosen: boolean }): HostSideDecision {
  if (device.hostIp === undefined) return 'leave';
  if (device.hostSideChosen || !where.isRoot) return 'configure';
  return 'refuse';
}

/** The namespace for the banner: its name, or its inode when it has none. */
export function describeNamespace(where: NamespaceIdentity): string {
  if (where.name !== undefined) return `namespace ${where.name}`;
  if (where.isRoot) return "the machine's own network namespace";
  return `namespace ${where.id ?? '(unknown)'} (no ip netns name)`;
}

/** A word of a command line, quoted for sh when it needs it. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Why `tapstack` refuses to configure the host side here, with the two commands to use instead. */
export function rootNamespaceRefusal(argv: readonly string[]): string {
  return [
    `refusing to configure the host side of the TAP device in this machine's own network namespace:`,
    `it would add 10.0.0.1/24 to your real network. Run tapstack in a namespace of its own:`,
    ``,
    `  sudo ip netns add tapstack`,
    `  sudo ip netns exec tapstack npm start -- ${argv.map(shellWord).join(' ')}`,
    ``,
    `(remove it afterwards with: sudo ip netns del tapstack). If you really mean this namespace,`,
    `say so with --host-ip CIDR, or --no-host-config to leave the kernel's side alone.`,
  ].join('\n');
}
