/**
 * The root-namespace guard, decided from injected namespace identities (no /proc, no device):
 * tapstack configures the host side of its device only in a namespace that is not init's, unless
 * --host-ip or --no-host-config says what is meant. The e2e side (the refusal printed, no device
 * created) is in test/cli.e2e.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { parseCommand, type DeviceOptions } from '../src/cli.ts';
import {
  describeNamespace,
  hostSideDecision,
  hostSideNamespace,
  networkNamespace,
  rootNamespaceRefusal,
  systemProbe,
  type NamespaceProbe,
} from '../src/namespace.ts';

const INIT = 'net:[4026531840]';
const LAB = 'net:[4026532301]';

function probe(self: string, options: { init?: string | undefined; name?: string; named?: Record<string, string> } = {}): NamespaceProbe {
  return {
    self: () => self,
    init: () => ('init' in options ? options.init : INIT),
    named: (n) => options.named?.[n],
    selfName: () => options.name,
  };
}

function device(argv: string[]): DeviceOptions {
  const c = parseCommand(argv);
  if (c.kind !== 'up' && c.kind !== 'ping') throw new Error(`not a device command: ${c.kind}`);
  return c.device;
}

describe('the root-namespace guard', () => {
  it('in init\'s namespace: the default host side is refused; --host-ip or --no-host-config is the user saying so', () => {
    const root = networkNamespace(probe(INIT));
    expect(root).toEqual({ id: INIT, isRoot: true, name: undefined });
    expect(hostSideDecision(root, device(['up']))).toBe('refuse');
    expect(hostSideDecision(root, device(['ping', '10.0.0.1']))).toBe('refuse');
    expect(hostSideDecision(root, device(['up', '--host-ip', '10.0.0.1/24']))).toBe('configure');
    expect(hostSideDecision(root, device(['up', '--no-host-config']))).toBe('leave');
  });

  it('init\'s namespace is root even when ip netns has a name for it (ip netns attach NAME 1)', () => {
    expect(networkNamespace(probe(INIT, { name: 'attached' })).isRoot).toBe(true);
  });

  it('in a namespace of its own, named or not, the host side is configured', () => {
    const lab = networkNamespace(probe(LAB, { name: 'lab' }));
    expect(lab).toEqual({ id: LAB, isRoot: false, name: 'lab' });
    expect(hostSideDecision(lab, device(['up']))).toBe('configure');
    // unshare -n: no name, but not init's inode
    const unnamed = networkNamespace(probe(LAB));
    expect(unnamed.isRoot).toBe(false);
    expect(hostSideDecision(unnamed, device(['up']))).toBe('configure');
  });

  it('init\'s namespace unreadable (not root): only a namespace ip netns names counts as its own', () => {
    expect(networkNamespace(probe(LAB, { init: undefined })).isRoot).toBe(true);
    expect(networkNamespace(probe(LAB, { init: undefined, name: 'lab' })).isRoot).toBe(false);
  });

  it('--netns NAME from the root namespace: judged by NAME, where the device and its host side go', () => {
    const p = probe(INIT, { named: { lab: LAB, init: INIT } });
    expect(hostSideDecision(hostSideNamespace('lab', p), device(['up', '--netns', 'lab']))).toBe('configure');
    // a name for init's own namespace is still init's
    expect(hostSideDecision(hostSideNamespace('init', p), device(['up', '--netns', 'init']))).toBe('refuse');
    // without --netns, the process's own
    expect(hostSideDecision(hostSideNamespace(undefined, p), device(['up']))).toBe('refuse');
    // a name that does not exist: the device open fails with its own message, not this guard
    expect(hostSideNamespace('missing', p)).toEqual({ id: undefined, isRoot: false, name: 'missing' });
  });

  it('the banner names the namespace: its ip netns name, else its inode', () => {
    expect(describeNamespace({ id: LAB, isRoot: false, name: 'lab' })).toBe('namespace lab');
    expect(describeNamespace({ id: LAB, isRoot: false, name: undefined })).toBe('namespace net:[4026532301] (no ip netns name)');
    expect(describeNamespace({ id: INIT, isRoot: true, name: undefined })).toBe("the machine's own network namespace");
  });

  it('the refusal gives the two ip netns commands, with the command line that was refused', () => {
    const text = rootNamespaceRefusal(['ping', '10.0.0.1', '-c', '3']);
    expect(text).toContain('  sudo ip netns add tapstack\n');
    expect(text).toContain('  sudo ip netns exec tapstack npm start -- ping 10.0.0.1 -c 3\n');
    expect(rootNamespaceRefusal(['up', '--pcap', 'my run.pcap'])).toContain("npm start -- up --pcap 'my run.pcap'");
    expect(text).not.toMatch(/<\w+>/);
  });

  it('TAPSTACK_ASSUME_ROOT_NETNS=1 makes the system probe answer "init\'s" (for the e2e test of the refusal)', () => {
    const p = systemProbe({ TAPSTACK_ASSUME_ROOT_NETNS: '1' });
    expect(p.init()).toBe(p.self());
    expect(systemProbe({ TAPSTACK_ASSUME_ROOT_NETNS: '0' }).init()).not.toBe(p.self());
  });
});
