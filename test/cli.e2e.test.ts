/**
 * The `tapstack` command against the real kernel. Every test runs the command inside a network
 * namespace of its own (the TAP device is created there, 10.0.0.0/24 only) and removes it after.
 *
 *   up: answers the kernel's `ping` and `arping`; --pcap writes a file tshark reads, with one
 *       frame per frame the stack counted in and out; SIGUSR1 prints the tables; Ctrl-C (SIGINT)
 *       exits 0, prints the counters and the device is gone.
 *   ping: `tapstack ping 10.0.0.1 -c 3` pings the kernel side, 0% loss.
 *   mistakes: bad arguments exit 2 with a message and the usage; no root and no /dev/net/tun
 *       exit 1 with a message naming the fix.
 *   faults of issue 11: the device deleted under up and under ping (exit 1, said on stderr); a
 *       capture on a full tmpfs (stops, says so once, the stack answers on); the root-namespace
 *       guard (played with TAPSTACK_ASSUME_ROOT_NETNS inside a test namespace, never for real).
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireE2eCapabilities } from './support/netns.ts';
import { expectEveryRequestAnswered, pingCount, PING_DEADLINE_S } from './support/ping.ts';
import { perTest } from './support/per-test.ts';
import { tsharkFrames } from './support/tshark.ts';
import { asUnprivileged } from './support/nobody.ts';
import { parseCounters, repoRoot, spawnTapstack, tapstackBin, Watched } from './support/watch.ts';

const { namespace, tempDir, defer } = perTest('cli');

beforeAll(() => {
  requireE2eCapabilities();
});

describe('tapstack up', () => {
  it('answers ping and arping, records a pcap tshark reads frame for frame, SIGUSR1 prints tables, SIGINT exits 0 and removes tap0', async () => {
    const ns = namespace('cli-up');
    const dir = tempDir();
    const pcap = join(dir, 'up.pcap');
    const up = spawnTapstack(ns, ['up', '--no-vnet-hdr', '--tap', 'tap0', '--ip', '10.0.0.2/24', '--host-ip', '10.0.0.1/24', '--pcap', pcap]);
    await up.waitFor(/tapstack is up on tap0 in namespace \S+: 10\.0\.0\.2 at ([0-9a-f:]{17}) \(host side 10\.0\.0\.1\/24\)/);
    expect(up.output).toMatch(/try:\s+ping 10\.0\.0\.2/);
    // the banner says how to print the tables
    expect(up.output).toMatch(/tables: type `neigh` .*`conns` .*`stats`.*\n.*SIGUSR1 \(kill -USR1 \d+\)/);
    expect(ns.exec('ip', ['-o', 'addr', 'show', 'dev', 'tap0'])).toMatch(/inet 10\.0\.0\.1\/24/);

    const ping = await ns.run('ping', [...pingCount(3), '-i', '0.2', '10.0.0.2']);
    expectEveryRequestAnswered(ping, 3);
    // one reply to each request ping sent (more than 3 when it waited for a late reply)
    const pingSent = Number(ping.stdout.match(/(\d+) packets transmitted/)![1]);

    const arping = await ns.run('arping', ['-c', '2', '-w', '5', '-I', 'tap0', '10.0.0.2']);
    expect(arping.stdout).toMatch(/Received 2 response/);
    expect(arping.status).toBe(0);

    const mark = up.output.length;
    up.child.kill('SIGUSR1');
    // like ip -s neigh: seconds since used/confirmed/updated, and the probes sent
    await up.waitFor(new RegExp(`neighbours:\\n\\s+10\\.0\\.0\\.1 dev \\S+ lladdr [0-9a-f:]{17} used \\d+/\\d+/\\d+ probes \\d+ \\w+[\\s\\S]*counters:[\\s\\S]*icmp\\.tx_echo_replies ${pingSent}(?!\\d)`), 15_000, mark);

    const stopMark = up.output.length;
    const exit = await up.stop('SIGINT');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(ns.exec('ip', ['-o', 'link', 'show'])).not.toMatch(/tap0/);

    // The counters printed on exit: every frame in and out went through the capture.
    const counters = parseCounters(up.output.slice(stopMark));
    const rx = counters.get('link.rx_frames') ?? 0;
    const tx = counters.get('link.tx_frames') ?? 0;
    expect(counters.get('icmp.tx_echo_replies')).toBe(pingSent);
    // 3 echo replies + at least 2 ARP replies (arping) + the gratuitous announcement
    expect(tx).toBeGreaterThanOrEqual(6);
    expect(rx).toBeGreaterThanOrEqual(5);

    expect(statSync(pcap).size).toBeGreaterThan(24);
    const tshark = (filter: string): number[] => tsharkFrames(pcap, filter);
    expect(tshark('frame').length).toBe(rx + tx);
    expect(tshark('icmp.type == 8 && ip.dst == 10.0.0.2').length).toBe(pingSent);
    expect(tshark('icmp.type == 0 && ip.src == 10.0.0.2').length).toBe(pingSent);
    expect(tshark('arp.opcode == 2 && arp.src.proto_ipv4 == 10.0.0.2').length).toBe(counters.get('arp.tx_replies'));
    expect(tshark('arp.opcode == 2 && arp.src.proto_ipv4 == 10.0.0.2').length).toBeGreaterThanOrEqual(2);
    // tshark checks every checksum it can and flags the bad ones
    expect(tshark('ip.checksum.status == "Bad" || icmp.checksum.status == "Bad" || _ws.expert.severity >= "error"')).toEqual([]);
  });

  it('--trace prints one decoded line per frame in and out, and SIGTERM also exits 0', async () => {
    const ns = namespace('cli-trace');
    const up = spawnTapstack(ns, ['up', '--no-vnet-hdr', '--trace']);
    await up.waitFor(/tapstack is up on tap0/);
    const ping = await ns.run('ping', ['-c', '1', '-W', '2', '10.0.0.2']);
    expect(ping.status).toBe(0);
    // stamped like tcpdump -tttt: date, time to the microsecond
    await up.waitFor(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} out [0-9a-f:]{17} > [0-9a-f:]{17}, IPv4, 10\.0\.0\.2 > 10\.0\.0\.1: ICMP echo reply, id \d+, seq 1, length 64/);
    expect(up.output).toMatch(/in  [0-9a-f:]{17} > [0-9a-f:]{17}, IPv4, 10\.0\.0\.1 > 10\.0\.0\.2: ICMP echo request, id \d+, seq 1, length 64/);
    expect(up.output).toMatch(/ARP, Reply 10\.0\.0\.2 is-at/);
    expect(await up.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(ns.exec('ip', ['-o', 'link', 'show'])).not.toMatch(/tap0/);
    // --trace=rel: time since the first line, like tcpdump -ttttt
    const rel = spawnTapstack(ns, ['up', '--no-vnet-hdr', '--trace=rel']);
    await rel.waitFor(/^00:00:00\.000000 out [0-9a-f:]{17} > ff:ff:ff:ff:ff:ff, ARP/m);
    await rel.waitFor(/^00:00:0\d\.\d{6} out .*ARP/m, 15_000, rel.output.indexOf('00:00:00.000000') + 20);
    expect(await rel.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  });
});

describe('tapstack ping', () => {
  it('pings the kernel side (10.0.0.1) from the stack: 0% packet loss', async () => {
    const ns = namespace('cli-ping');
    // -W 10: ours waits that long for a late reply, and ends as soon as the last one is in
    const run = await ns.run(process.execPath, [tapstackBin, 'ping', '10.0.0.1', '-c', '3', '-i', '0.2', '-W', '10'], 30_000);
    expect(run.stdout).toMatch(/^PING 10\.0\.0\.1 \(10\.0\.0\.1\) 56\(84\) bytes of data\./m);
    expect(run.stdout.match(/^64 bytes from 10\.0\.0\.1: icmp_seq=\d ttl=64 time=[\d.]+ ms$/gm)).toHaveLength(3);
    expect(run.stdout).toMatch(/3 packets transmitted, 3 received, 0% packet loss/);
    expect(run.status).toBe(0);
    expect(ns.exec('ip', ['-o', 'link', 'show'])).not.toMatch(/tap0/);
  });
});

describe('small CLI promises', () => {
  it('ping stopped with Ctrl-C after replies came exits 0, like iputils', async () => {
    const ns = namespace('cli-ping-int');
    const ping = spawnTapstack(ns, ['ping', '10.0.0.1', '-c', '100', '-i', '0.2']);
    await ping.waitFor(/icmp_seq=2 /);
    const exit = await ping.stop('SIGINT');
    expect(ping.output).toMatch(/packets transmitted, \d+ received/);
    expect(exit).toEqual({ code: 0, signal: null });
  });

  it('up --help prints the help of up and exits 0', async () => {
    const run = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, [tapstackBin, 'up', '--help'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('close', (code) => resolve({ code, out }));
    });
    expect(run.code).toBe(0);
    expect(run.out).toMatch(/^usage:\n  tapstack up /);
    expect(run.out).not.toMatch(/Unknown option/);
  });

  it('a taken device name: the message says to pick another with --tap; a missing namespace is named in the message', async () => {
    const ns = namespace('cli-busy');
    const first = spawnTapstack(ns, ['up']);
    await first.waitFor(/tapstack is up on tap0/);
    const second = await ns.run(process.execPath, [tapstackBin, 'up'], 20_000);
    expect(second.status).toBe(1);
    expect(second.stderr).toMatch(/busy.*--tap tap1/s);
    await first.stop('SIGINT');
    const missing = await ns.run(process.execPath, [tapstackBin, 'up', '--netns', 'no-such-namespace-here'], 20_000);
    expect(missing.stderr).toMatch(/network namespace "no-such-namespace-here" does not exist \(open\(\/run\/netns\/no-such-namespace-here\)/);
    expect(missing.stderr).not.toContain('<netns>');
  });
});

describe('the device deleted under a running stack', () => {
  it('ip link del tap0: tapstack says what happened on stderr and exits 1 (it used to exit 0 silently)', async () => {
    const ns = namespace('cli-del');
    const up = spawnTapstack(ns, ['up']);
    await up.waitFor(/tapstack is up on tap0/);
    ns.exec('ip', ['link', 'del', 'tap0']);
    const exit = await up.exited;
    expect(exit).toEqual({ code: 1, signal: null });
    expect(up.output).toMatch(/tapstack: TAP device tap0 was deleted \(ip link del tap0, or its namespace removed\) and is closed: read: .*\(EBADFD\)/);
  });

  it('under tapstack ping: it says so, ends with the summary and exits 1, although replies came', async () => {
    const ns = namespace('cli-del-ping');
    const ping = spawnTapstack(ns, ['ping', '10.0.0.1', '-c', '100', '-i', '0.2']);
    await ping.waitFor(/icmp_seq=2 /);
    ns.exec('ip', ['link', 'del', 'tap0']);
    const exit = await ping.exited;
    expect(exit).toEqual({ code: 1, signal: null });
    expect(ping.output).toMatch(/tapstack: TAP device tap0 was deleted/);
    expect(ping.output).toMatch(/\d+ packets transmitted, \d+ received/);
    expect(ping.output).not.toMatch(/sendmsg/);
  });
});

describe('a capture on a full disk', () => {
  it('--pcap on a 64 KiB tmpfs: the capture stops with one message, the stack keeps answering, exit 0', async () => {
    const ns = namespace('cli-full');
    const dir = tempDir();
    // One shell inside the namespace: its mount of the tiny tmpfs is private to it (ip netns exec
    // gives each command a mount namespace of its own), so nothing outside sees it.
    const script = [
      `mount -t tmpfs -o size=64k tapstack-full ${dir}`,
      `node ${tapstackBin} up --pcap ${dir}/full.pcap > ${dir}.out 2>&1 < /dev/null &`,
      'pid=$!',
      // up once it says so (its banner comes after the host side is configured), 30 s at most
      `for i in $(seq 300); do grep -q 'tapstack is up' ${dir}.out && break; sleep 0.1; done`,
      `ping ${pingCount(200).join(' ')} -i 0.01 -s 1000 10.0.0.2`,
      'echo "ping exit $?"',
      'kill -INT $pid; wait $pid; echo "tapstack exit $?"',
      `umount ${dir}`,
    ].join('\n');
    const run = await ns.run('sh', ['-c', script], (PING_DEADLINE_S + 40) * 1000);
    const out = readFileSync(`${dir}.out`, 'utf8');
    rmSync(`${dir}.out`, { force: true });
    expect(run.stdout).toContain('ping exit 0');
    expectEveryRequestAnswered({ status: 0, stdout: run.stdout, stderr: run.stderr }, 200);
    expect(run.stdout).toContain('tapstack exit 0');
    expect(out.match(/capture stopped/g)).toHaveLength(1);
    expect(out).toMatch(/--pcap .*full\.pcap: capture stopped \(ENOSPC/);
    expect(parseCounters(out).get('link.capture_write_failed')).toBe(1);
  }, 90_000);
});

describe('the root-namespace guard', () => {
  // The guard compares /proc/self/ns/net with init's. These tests run inside a namespace of their
  // own and make tapstack believe it is in the root one (TAPSTACK_ASSUME_ROOT_NETNS=1): nothing
  // here ever runs in the machine's own namespace.
  const rootEnv = { ...process.env, TAPSTACK_ASSUME_ROOT_NETNS: '1' };

  it('up refuses to configure the host side there: exit 2, the two namespace commands, no device created', async () => {
    const ns = namespace('cli-guard');
    const up = spawnTapstack(ns, ['up'], rootEnv);
    const exit = await up.exited;
    expect(exit).toEqual({ code: 2, signal: null });
    expect(up.output).toMatch(/refusing to configure the host side of the TAP device in this machine's own network namespace/);
    expect(up.output).toContain('sudo ip netns add tapstack');
    expect(up.output).toContain('sudo ip netns exec tapstack npm start -- up');
    expect(ns.exec('ip', ['-o', 'link', 'show'])).not.toMatch(/tap0/);
  });

  it('--no-host-config (or an explicit --host-ip) is the user saying so: it comes up; the banner names the namespace', async () => {
    const ns = namespace('cli-guard-ok');
    const up = spawnTapstack(ns, ['up', '--no-host-config'], rootEnv);
    await up.waitFor(new RegExp(`tapstack is up on tap0 in namespace ${ns.name}: 10\\.0\\.0\\.2`));
    // It left the kernel's side alone: the device exists but is not up and has no address.
    const link = ns.exec('ip', ['-o', 'link', 'show', 'dev', 'tap0']);
    expect(link).toMatch(/tap0: <[^>]*>/);
    expect(link).not.toMatch(/tap0: <[^>]*\bUP\b/);
    expect(ns.exec('ip', ['-o', 'addr', 'show', 'dev', 'tap0'])).not.toMatch(/inet/);
    expect(await up.stop('SIGINT')).toEqual({ code: 0, signal: null });
    const named = spawnTapstack(ns, ['up']);
    await named.waitFor(new RegExp(`tapstack is up on tap0 in namespace ${ns.name}: 10\\.0\\.0\\.2`));
    expect(await named.stop('SIGINT')).toEqual({ code: 0, signal: null });
  });

  it('ping is refused the same way, and the refusal repeats its own command line, not up\'s', async () => {
    const ns = namespace('cli-guard-ping');
    const run = await ns.run('env', ['TAPSTACK_ASSUME_ROOT_NETNS=1', process.execPath, tapstackBin, 'ping', '10.0.0.1', '-c', '1'], 20_000);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/refusing to configure the host side/);
    expect(run.stderr).toContain('sudo ip netns exec tapstack npm start -- ping 10.0.0.1 -c 1');
    expect(ns.exec('ip', ['-o', 'link', 'show'])).not.toMatch(/tap0/);
  });

  it('--netns NAME from the root namespace is judged by NAME, where the host side goes: it comes up there', async () => {
    const home = namespace('cli-guard-home');
    const lab = namespace('cli-guard-lab');
    const up = spawnTapstack(home, ['up', '--netns', lab.name], rootEnv);
    await up.waitFor(new RegExp(`tapstack is up on tap0 in namespace ${lab.name}: 10\\.0\\.0\\.2 .*\\(host side 10\\.0\\.0\\.1/24\\)`));
    expect(lab.exec('ip', ['-o', 'addr', 'show', 'dev', 'tap0'])).toMatch(/inet 10\.0\.0\.1\/24/);
    expect(home.exec('ip', ['-o', 'link', 'show'])).not.toMatch(/tap0/);
    expect(await up.stop('SIGINT')).toEqual({ code: 0, signal: null });
  });

  it('a namespace without an ip netns name (unshare -n) that is not init\'s is a namespace of its own: the banner gives its inode', async () => {
    const ns = namespace('cli-guard-unnamed');
    const out = join(tempDir(), 'up.out');
    // Where init's namespace cannot be read (a sandbox's pid 1), a namespace without a name is
    // refused, the safe mistake; TAPSTACK_ASSUME_ROOT_NETNS=0 plays a machine where it can.
    // The shell waits for the banner (30 s at most; a fixed 3 s was too short for node to start on
    // a loaded machine), looks at the host side, stops it and prints everything it said.
    const script = `"$0" "$1" up > ${out} 2>&1 & pid=$!; for i in $(seq 300); do grep -q 'tapstack is up' ${out} && break; grep -q refusing ${out} && break; sleep 0.1; done; ip -o addr show dev tap0; kill -INT $pid; wait $pid; cat ${out}`;
    const run = await ns.run('env', ['TAPSTACK_ASSUME_ROOT_NETNS=0', 'unshare', '--net', 'sh', '-c', script, process.execPath, tapstackBin], 60_000);
    expect(run.stdout).toMatch(/tapstack is up on tap0 in namespace net:\[\d+\] \(no ip netns name\): 10\.0\.0\.2/);
    expect(run.stdout).toMatch(/inet 10\.0\.0\.1\/24/);
    expect(run.stdout).not.toMatch(/refusing/);
  });

  it('npm start with no command runs the in-memory demo there and says how to use a namespace', async () => {
    const ns = namespace('cli-guard-start');
    const start = new Watched(ns.spawn(process.execPath, [tapstackBin], { cwd: repoRoot, env: rootEnv, stdio: ['ignore', 'pipe', 'pipe'] }));
    const exit = await start.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(start.output).toMatch(/This is the machine's own network namespace/);
    expect(start.output).toContain('sudo ip netns exec tapstack npm start');
    expect(start.output).toMatch(/3 packets transmitted, 3 received/);
    expect(ns.exec('ip', ['-o', 'link', 'show'])).not.toMatch(/tap0/);
  });
});

describe('mistakes', () => {
  it('bad arguments exit 2 with the reason and the usage', async () => {
    const ns = namespace('cli-args');
    for (const [args, reason] of [
      [['up', '--bogus'], /Unknown option '--bogus'/],
      [['up', '--ip', '10.0.0.300/24'], /--ip: /],
      [['ping'], /ping needs exactly one TARGET/],
      [['ping', '10.0.0.1', '-c', 'many'], /-c many: expected a whole number/],
      [['fly'], /unknown command "fly"/],
      [['up', '--pcap', '/nonexistent/dir/x.pcap'], /--pcap \/nonexistent\/dir\/x\.pcap: cannot write in \/nonexistent\/dir/],
      // found when the file is opened (before the device is made): a directory, a file system that refuses it
      [['up', '--pcap', '/tmp'], /--pcap \/tmp: EISDIR/],
      [['up', '--pcap', '/proc/x.pcap'], /--pcap \/proc\/x\.pcap: ENOENT/],
      [['ping', '10.0.0.1', '--pcap', '/tmp'], /--pcap \/tmp: EISDIR/],
      [['up', '--mac', '00:00:00:00:00:00'], /all zeros/],
      [['up', '--mac', '01:00:5e:00:00:01'], /multicast/],
      [['up', '--mac', 'ff:ff:ff:ff:ff:ff'], /broadcast/],
      [['up', '--gateway', '10.0.0.0'], /network address/],
      [['up', '--gateway', '10.0.0.255'], /broadcast address/],
      [['up', '--udp-echo', '0x7'], /--udp-echo 0x7: expected a whole number/],
      [['up', '--udp-echo', '1e1'], /--udp-echo 1e1: expected a whole number/],
    ] as const) {
      const run = await ns.run(process.execPath, [tapstackBin, ...args]);
      expect(run.status, `${args.join(' ')}: ${run.stderr}`).toBe(2);
      expect(run.stderr).toMatch(new RegExp(`^tapstack: .*${reason.source}`, 'm'));
      // one line of reason, then the usage: never a JavaScript stack trace
      expect(run.stderr).toMatch(/^tapstack: [^\n]*\n\nusage:/);
      expect(run.stderr).not.toMatch(/^\s+at /m);
      expect(run.stderr).toMatch(/usage:\n\s+tapstack up/);
      expect(run.stdout).toBe('');
    }
    expect(ns.exec('ip', ['-o', 'link', 'show'])).not.toMatch(/tap0/);
  });

  it('--ip without a prefix: /24, and it says so', async () => {
    const ns = namespace('cli-noprefix');
    const up = spawnTapstack(ns, ['up', '--ip', '10.0.0.2']);
    await up.waitFor(/tapstack is up on tap0 .*: 10\.0\.0\.2 at/);
    expect(up.output).toMatch(/tapstack: --ip 10\.0\.0\.2 has no prefix length: using 10\.0\.0\.2\/24/);
    const ping = await ns.run('ping', ['-c', '1', '-W', '2', '10.0.0.2']);
    expect(ping.status).toBe(0);
    expect(await up.stop('SIGINT')).toEqual({ code: 0, signal: null });
  });

  it('without root: exit 1, and the message says to run as root or give node CAP_NET_ADMIN', async () => {
    const ns = namespace('cli-noroot');
    const { argv } = asUnprivileged(process.execPath, [tapstackBin, 'up'], { HOME: '/tmp' });
    const run = await ns.run(argv[0], argv[1]);
    expect(run.stderr).toMatch(/tapstack: opening TAP device "tap0" is not permitted .*: run it as root \(e\.g\. with sudo\), or give node CAP_NET_ADMIN/);
    expect(run.status).toBe(1);
    expect(ns.exec('ip', ['-o', 'link', 'show'])).not.toMatch(/tap0/);
  });

  it('without /dev/net/tun: exit 1, and the message says modprobe tun', async () => {
    const ns = namespace('cli-notun');
    // A private mount namespace where /dev/net is an empty tmpfs: the device file is gone for
    // this process alone (unshare makes the mounts private, nothing leaks to the machine).
    const run = await ns.run('unshare', ['--mount', 'sh', '-c', `mount -t tmpfs none /dev/net && exec "$0" "$@"`, process.execPath, tapstackBin, 'up'], 30_000);
    expect(run.stderr).toMatch(/tapstack: \/dev\/net\/tun is missing .*: load the tun module with `sudo modprobe tun`/);
    expect(run.status).toBe(1);
    expect(statSync('/dev/net/tun').isCharacterDevice()).toBe(true);
  });

  it('npm start without /dev/net/tun (as root) falls back to the in-memory demo and says why', async () => {
    const ns = namespace('cli-notun-start');
    const tsx = join(repoRoot, 'node_modules/.bin/tsx');
    const run = await ns.run('unshare', ['--mount', 'sh', '-c', `mount -t tmpfs none /dev/net && cd "$0" && exec "$1" packages/stack/src/main.ts`, repoRoot, tsx], 30_000);
    expect(run.stdout).toMatch(/No TAP device here: \/dev\/net\/tun is missing \(load it with `modprobe tun`\)/);
    expect(run.stdout).toMatch(/3 packets transmitted, 3 received, 0% packet loss/);
    expect(run.status).toBe(0);
  });
});
