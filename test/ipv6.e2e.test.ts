/**
 * IPv6 against the Linux kernel (issue 12): our whole stack (createStack) on a real TAP device in
 * a network namespace this file creates and deletes (also on failure). The kernel's tap0 is
 * 10.0.0.1/24 and fd00:10::1/64 (nodad: usable at once, so the test does not wait for the
 * kernel's DAD), our stack fd00:10::2/64 plus its link-local address, each through our DAD first.
 * The kernel's tools talk to us: ping -6 (small, 4000 bytes in fragments both ways, link-local
 * with a zone), ndisc6 (a neighbour solicitation answered by our NDP), ip -6 neigh (the kernel
 * learnt our MAC); radvd advertises fd00:10:0:1::/64 and the stack's SLAAC address answers pings;
 * a kernel that holds an address makes our DAD for it fail. Fails, never skips, without root,
 * /dev/net/tun or the tools (ping, ndisc6, radvd).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ipv6Address, MacAddress, TapDevice, ipv6 } from '@tapstack/link';
import { createStack, type Stack } from '@tapstack/stack';
import { Netns, requireE2eCapabilities, requireTools, type RunResult } from './support/netns.ts';
import { expectEveryRequestAnswered, pingCount } from './support/ping.ts';
import { Watched, parseCounters, repoRoot, spawnTapstack, tsxBin } from './support/watch.ts';

const STACK_MAC = MacAddress.parse('02:00:00:00:00:02');
const LINK_LOCAL = Ipv6Address.linkLocalFromMac(STACK_MAC); // fe80::ff:fe00:2

let ns: Netns | undefined;
let tap: TapDevice | undefined;
let stack: Stack | undefined;
let dir: string | undefined;

beforeAll(async () => {
  requireE2eCapabilities();
  requireTools(['ndisc6', 'radvd']);
  ns = Netns.create('ipv6');
  tap = TapDevice.open({ name: 'tap0', netns: ns.name, mac: STACK_MAC });
  tap.configureHost({ address: '10.0.0.1/24' });
  ns.exec('ip', ['-6', 'addr', 'add', 'fd00:10::1/64', 'dev', 'tap0', 'nodad']);
  stack = createStack({ link: tap, ip: '10.0.0.2/24', ipv6: { addresses: ['fd00:10::2/64'] } });
  stack.start();
  await stack.ndp!.settled();
});

afterAll(() => {
  try {
    stack?.close();
  } finally {
    ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
});

/** ping -6, 3 requests, each waited for (test/support/ping.ts). */
async function ping6(target: string, args: string[] = []): Promise<RunResult> {
  return ns!.run('ping', ['-6', ...pingCount(3), '-i', '0.2', ...args, target], 40_000);
}

describe('IPv6 between the kernel and our stack', () => {
  it('our addresses passed DAD', () => {
    expect(stack!.ipv6!.addresses.list().map((a) => `${a.address}/${a.prefixLength} ${a.state}`).sort()).toEqual([
      'fd00:10::2/64 preferred',
      `${LINK_LOCAL}/64 preferred`,
    ]);
  });

  it('ping -6 -c 3 fd00:10::2: 0% loss, and the kernel learnt our MAC (ip -6 neigh REACHABLE or STALE)', async () => {
    expectEveryRequestAnswered(await ping6('fd00:10::2'), 3);
    const neigh = ns!.exec('ip', ['-6', 'neigh', 'show', 'dev', 'tap0']);
    expect(neigh).toMatch(/^fd00:10::2 lladdr 02:00:00:00:00:02 (REACHABLE|STALE|DELAY)/m);
  });

  it('ping -6 -s 4000: full-size replies, reassembled and fragmented by us', async () => {
    const run = await ping6('fd00:10::2', ['-s', '4000']);
    expectEveryRequestAnswered(run, 3);
    expect(run.stdout.match(/^4008 bytes from fd00:10::2/gm)?.length).toBeGreaterThanOrEqual(3);
    expect(stack!.ipv6!.counters.get('reasm_ok')).toBeGreaterThanOrEqual(3);
    expect(stack!.ipv6!.counters.get('Ip6FragCreates')).toBeGreaterThanOrEqual(9);
  });

  it('ping -6 to our link-local address with the zone, fe80::ff:fe00:2%tap0', async () => {
    expectEveryRequestAnswered(await ping6(`${LINK_LOCAL}%tap0`), 3);
  });

  it('ndisc6 fd00:10::2 tap0: our NDP answers the solicitation with our MAC', async () => {
    const r = await ns!.run('ndisc6', ['-1', '-r', '3', '-w', '1000', 'fd00:10::2', 'tap0'], 15_000);
    expect(r.stdout).toMatch(/Target link-layer address: 02:00:00:00:00:02/i);
  });

  it('our ping -6 reaches the kernel (NDP resolves fd00:10::1)', async () => {
    const summary = await stack!.icmpv6!.ping(ipv6('fd00:10::1'), { count: 3, intervalMs: 200, timeoutMs: 3000 });
    expect(summary.received).toBe(3);
    expect(stack!.neighbours({ family: 6 })).toMatch(/^fd00:10::1 dev tap0 lladdr \S+ (REACHABLE|STALE|DELAY)/m);
  });

  it('radvd advertises fd00:10:0:1::/64: the stack forms a SLAAC address (after DAD) that the kernel can ping', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tapstack-radvd-'));
    const conf = join(dir, 'radvd.conf');
    writeFileSync(conf, 'interface tap0 {\n  AdvSendAdvert on;\n  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 4;\n  prefix fd00:10:0:1::/64 { AdvOnLink on; AdvAutonomous on; };\n};\n');
    // radvd only runs on a router: forwarding on, in this namespace only
    ns!.exec('sysctl', ['-q', '-w', 'net.ipv6.conf.all.forwarding=1']);
    ns!.exec('ip', ['-6', 'addr', 'add', 'fd00:10:0:1::1/64', 'dev', 'tap0', 'nodad']);
    const radvd = ns!.spawn('radvd', ['-n', '-C', conf, '-p', join(dir, 'radvd.pid'), '-m', 'stderr'], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const slaac = Ipv6Address.fromPrefixAndMac(ipv6('fd00:10:0:1::'), STACK_MAC);
      const deadline = Date.now() + 20_000;
      while (stack!.ipv6!.addresses.get(slaac)?.state !== 'preferred' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(stack!.ipv6!.addresses.get(slaac)).toMatchObject({ state: 'preferred', origin: 'slaac' });
      expect(stack!.ipv6!.routes.defaultRouter()?.isLinkLocal).toBe(true);
      expectEveryRequestAnswered(await ping6(slaac.toString()), 3);
    } finally {
      radvd.kill('SIGKILL');
    }
  });
});

describe('DAD against the kernel', () => {
  it('a kernel that holds fd00:10::3 makes our DAD for it fail: duplicate, not used', async () => {
    const other = TapDevice.open({ name: 'tap1', netns: ns!.name, mac: MacAddress.parse('02:00:00:00:00:03') });
    let second: Stack | undefined;
    try {
      other.configureHost({});
      ns!.exec('ip', ['-6', 'addr', 'add', 'fd00:10::3/64', 'dev', 'tap1', 'nodad']);
      second = createStack({ link: other, ip: '10.0.0.3/24', ipv6: { addresses: ['fd00:10::3/64'] } });
      const conflicts: string[] = [];
      second.ndp!.onConflict((c) => conflicts.push(c.address.toString()));
      second.start();
      await second.ndp!.settled();
      expect(second.ipv6!.addresses.get(ipv6('fd00:10::3'))?.state).toBe('duplicate');
      expect(conflicts).toEqual(['fd00:10::3']);
      expect(second.ipv6!.addresses.isAssigned(ipv6('fd00:10::3'))).toBe(false);
    } finally {
      second?.close();
      other.close();
    }
  });
});

describe('the tapstack command and the example, over IPv6', () => {
  it('tapstack up: IPv6 by default (banner after DAD, the host side fd00:10::1/64), answers ping -6; tapstack ping -6 pings the kernel', async () => {
    const cli = Netns.create('ipv6cli');
    try {
      const up = spawnTapstack(cli, ['up', '--tap', 'tap0', '--mac', '02:00:00:00:00:02']); // fd00:10::2/64 by default
      try {
        await up.waitFor(/IPv6: fd00:10::2\/64, fe80::ff:fe00:2%tap0 \(host side fd00:10::1\/64\)\n/, 30_000);
        expect(up.output).toMatch(/\ntry:  ping -6 fd00:10::2\n/);
        const r = await cli.run('ping', ['-6', ...pingCount(3), '-i', '0.2', 'fd00:10::2'], 40_000);
        expectEveryRequestAnswered(r, 3);
        expect(await up.stop('SIGINT')).toEqual({ code: 0, signal: null });
        const counters = parseCounters(up.output);
        // one reply to each request ping sent (more than 3 when it waited for a late reply)
        expect(counters.get('icmpv6.tx_echo_replies')).toBe(Number(r.stdout.match(/(\d+) packets transmitted/)![1]));
        expect(counters.get('ndp.dad_succeeded')).toBe(2);
      } finally {
        up.child.kill('SIGKILL');
      }
      // the device is gone with the stack; tapstack ping brings its own up, pings the kernel's side
      const ping = spawnTapstack(cli, ['ping', '-6', 'fd00:10::1', '-c', '2', '-i', '0.2', '--mac', '02:00:00:00:00:02']);
      const exit = await ping.exited;
      expect(ping.output).toMatch(/PING fd00:10::1 \(fd00:10::1\) 56 data bytes/);
      expect(ping.output).toMatch(/64 bytes from fd00:10::1: icmp_seq=1 ttl=64/);
      expect(ping.output).toMatch(/2 packets transmitted, 2 received, 0% packet loss/);
      expect(exit).toEqual({ code: 0, signal: null });
    } finally {
      cli.destroy();
    }
  });

  it('examples/14-ping6-me.ts answers ping -6; Ctrl-C prints both neighbour tables and removes its namespace', async () => {
    const name = `tapstack-ex14-${process.pid}`;
    const run = new Watched(spawn(tsxBin, ['examples/14-ping6-me.ts', '--netns', name, '--quiet'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] }));
    try {
      await run.waitFor(new RegExp(`sudo ip netns exec ${name} ping -6 -c 3 fd00:10::2`), 30_000);
      expect(run.output).toMatch(/inet6 fd00:10::2\/64 scope global\n/);
      const r = execFileSync('ip', ['netns', 'exec', name, 'ping', '-6', ...pingCount(2), '-i', '0.2', 'fd00:10::2'], { encoding: 'utf8' });
      expectEveryRequestAnswered({ status: 0, stdout: r }, 2);
      expect(await run.stop('SIGINT')).toEqual({ code: 0, signal: null });
      expect(run.output).toMatch(/neighbour tables \(ip neigh show: ARP's, then NDP's\):\n(.*\n)*fd00:10::1 dev tap0 lladdr/);
      // one reply to each request ping sent (more than 2 when it waited for a late reply)
      expect(run.output).toMatch(new RegExp(`icmpv6\\.tx_echo_replies ${r.match(/(\d+) packets transmitted/)![1]}\\n`));
      expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(name);
    } finally {
      run.child.kill('SIGKILL');
      try {
        execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
      } catch {
        /* the example removed it, as it should */
      }
    }
  });
});
