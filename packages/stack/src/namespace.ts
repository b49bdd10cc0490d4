/**
 * Which network namespace this process runs in. `tapstack up` creates a TAP device and gives the
 * kernel's side an address in the namespace it runs in; run in the machine's own (root)
 * namespace, that changes the machine's real network. So the command refuses to configure the
 * host side there unless told explicitly (`--host-ip` or `--no-host-config`), and says how to
 * use a namespace of its own instead.
 */
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';

export interface NamespaceIdentity {
  /**
   * This looks like the machine's own network, not a namespace made for the stack: it shares
   * init's network namespace, or `ip netns` has no name for it.
   */
  readonly isRoot: boolean;
  /** The name `ip netns` knows it by, when it has one. */
  readonly name: string | undefined;
}

/**
 * A namespace counts as the stack's own only when `ip netns` names it (it was made with
 * `ip netns add`) and it is not init's (/proc/self/ns/net differs from /proc/1/ns/net, when init's
 * can be read). Anything else is treated as the machine's own network: refusing is the safe
 * mistake (a container's network, say, where --host-ip or --no-host-config says what is meant).
 * TAPSTACK_ASSUME_ROOT_NETNS=1 (or 0) overrides the answer, for the tests of the refusal, which
 * run inside a namespace and must never really touch the machine's own.
 */
export function networkNamespace(): NamespaceIdentity {
  let name: string | undefined;
  try {
    name = execFileSync('ip', ['netns', 'identify', String(process.pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 2000 }).trim() || undefined;
  } catch {
    name = undefined;
  }
  const override = process.env.TAPSTACK_ASSUME_ROOT_NETNS;
  if (override === '1' || override === '0') return { isRoot: override === '1', name };
  let sharesInit = false;
  try {
    sharesInit = readlinkSync('/proc/self/ns/net') === readlinkSync('/proc/1/ns/net');
  } catch {
    sharesInit = false; // init's link is not readable from here (not root, or a sandbox): the name decides
  }
  return { isRoot: sharesInit || name === undefined, name };
}

/** Why `tapstack` refuses to configure the host side here, with the commands to use instead. */
export function rootNamespaceRefusal(command: string): string {
  return [
    `refusing to configure the host side of the TAP device in this machine's own network namespace:`,
    `it would add 10.0.0.1/24 to your real network. Run tapstack in a namespace of its own:`,
    ``,
    `  sudo ip netns add tapstack`,
    `  sudo ip netns exec tapstack npm start -- ${command}`,
    ``,
    `(remove it afterwards with: sudo ip netns del tapstack). If you really mean this namespace,`,
    `say so with --host-ip CIDR, or --no-host-config to leave the kernel's side alone.`,
  ].join('\n');
}
