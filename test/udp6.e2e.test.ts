/**
 * UDP over IPv6 against the Linux kernel (issue 12): `tapstack up --udp-echo 7` in a network
 * namespace this file creates and deletes (also on failure), IPv6 on by default (fd00:10::2/64,
 * the kernel's side fd00:10::1/64). The kernel's tools are the clients: socat over UDP6 and UDP4
 * gets its echo from the one dual-stack socket, a python3 socket connected to a closed port reads
 * ECONNREFUSED (our ICMPv6 port unreachable), and tshark reads the capture the stack wrote
 * (--pcap) and finds every UDP checksum good. Fails, never skips, without root, /dev/net/tun or
 * the tools (socat, python3, tshark).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Netns, requireE2eCapabilities, requireTools } from './support/netns.ts';
import { tsharkFields } from './support/tshark.ts';
import { closedPortProbe } from './support/udp-probe.ts';
import { parseCounters, spawnTapstack, type Watched } from './support/watch.ts';

const CLOSED_PORT = 9;

let ns: Netns | undefined;
let up: Watched | undefined;
let dir: string | undefined;
let capture = '';

beforeAll(async () => {
  requireE2eCapabilities();
  requireTools(['socat', 'python3', 'tshark']);
  dir = mkdtempSync(join(tmpdir(), 'tapstack-udp6-'));
  capture = join(dir, 'wire.pcap');
  ns = Netns.create('udp6');
  // --no-vnet-hdr: the checks read single frames and segments on the wire, not 64 KB super-frames
  up = spawnTapstack(ns, ['up', '--no-vnet-hdr', '--tap', 'tap0', '--mac', '02:00:00:00:00:02', '--udp-echo', '7', '--pcap', capture]);
  // the IPv6 line comes once DAD passed: then fd00:10::2 is ours
  await up.waitFor(/IPv6: fd00:10::2\/64.*\n/, 30_000);
}, 60_000);

afterAll(() => {
  try {
    up?.child.kill('SIGKILL');
  } finally {
    ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
});

describe('UDP over IPv6 between the kernel and tapstack up --udp-echo 7', () => {
  it('the banner says how to try it over IPv6', () => {
    expect(up!.output).toMatch(/\ntry: {2}ping -6 fd00:10::2\n {6}printf hi \| (ip netns exec \S+ )?socat -t 1 - UDP6:\[fd00:10::2\]:7\n/);
  });

  it('socat - UDP6:[fd00:10::2]:7 gets its datagram back; UDP4 to the same socket too', async () => {
    const six = await ns!.run('sh', ['-c', "printf 'hello over six' | socat -t 2 - 'UDP6:[fd00:10::2]:7'"]);
    expect(six.stdout, six.stderr).toBe('hello over six');
    const four = await ns!.run('sh', ['-c', "printf 'hello over four' | socat -t 2 - UDP4:10.0.0.2:7"]);
    expect(four.stdout, four.stderr).toBe('hello over four');
  });

  it('8000 bytes over IPv6: six fragments each way, the same bytes back', async () => {
    const script = [
      'import os, socket',
      'data = os.urandom(8000)',
      's = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)',
      's.settimeout(3)',
      's.sendto(data, ("fd00:10::2", 7))',
      'back, peer = s.recvfrom(65535)',
      'print(len(back), back == data, peer[0], peer[1])',
    ].join('\n');
    const r = await ns!.run('python3', ['-c', script]);
    expect(r.stdout.trim(), r.stderr).toBe('8000 True fd00:10::2 7');
  });

  it('a connected python3 socket to a closed port reads ECONNREFUSED (our ICMPv6 port unreachable)', async () => {
    const r = await ns!.run('python3', ['-c', closedPortProbe('AF_INET6', 'fd00:10::2', CLOSED_PORT)]);
    expect(r.stdout.trim(), r.stderr).toBe('Connection refused 111');
  });

  it('Ctrl-C: the counters say both families, and tshark finds every UDP checksum good and our port unreachable well formed', async () => {
    expect(await up!.stop('SIGINT')).toEqual({ code: 0, signal: null });
    const counters = parseCounters(up!.output);
    expect(counters.get('udp.Udp6InDatagrams')).toBe(2);
    expect(counters.get('udp.Udp6OutDatagrams')).toBe(2);
    expect(counters.get('udp.rx_datagrams')).toBe(3);
    expect(counters.get('udp.Udp6NoPorts')).toBe(1);
    expect(counters.get('udp.tx_port_unreachable')).toBe(1);
    expect(counters.get('udp.rx_bad_checksum')).toBeUndefined();
    const rows = tsharkFields(capture, ['ipv6.src', 'ip.src', 'udp.length', 'udp.checksum.status'], { filter: 'udp && !icmpv6', prefs: ['udp.check_checksum:TRUE'] });
    const fields = rows.map((r) => r.join(' ')).join('\n');
    const ours6 = rows.filter((r) => r[0] === 'fd00:10::2');
    const kernel6 = rows.filter((r) => r[0] === 'fd00:10::1');
    expect(ours6.map((r) => r[2]), fields).toEqual(['22', '8008']);
    expect(kernel6.map((r) => r[2]), fields).toEqual(['22', '8008', '21']);
    expect(rows.filter((r) => r[1] === '10.0.0.2').length, fields).toBe(1);
    for (const r of rows) expect(r[3], `checksum status of ${r.join(' ')}`).toBe('1'); // 1 = Good
    // the port unreachable: ICMPv6 type 1 code 4, its checksum good, quoting the datagram to port 9
    const icmp = tsharkFields(capture, ['icmpv6.type', 'icmpv6.code', 'icmpv6.checksum.status', 'udp.dstport'], { filter: 'icmpv6.type == 1 && ipv6.src == fd00:10::2' });
    expect(icmp).toEqual([['1', '4', '1', `${CLOSED_PORT}`]]);
    // nothing malformed anywhere in the capture
    const expert = execFileSync('tshark', ['-r', capture, '-o', 'udp.check_checksum:TRUE', '-Y', '_ws.malformed || _ws.expert.severity == error'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(expert.trim()).toBe('');
  });
});
