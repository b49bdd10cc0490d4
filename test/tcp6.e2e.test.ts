/**
 * TCP over IPv6 against the real kernel (issue 12): the kernel's tools talk to the stack on a TAP
 * device over fd00:10::/64 and the link-local addresses, in network namespaces this file creates
 * and removes (also on failure).
 *
 *   server: `tapstack up --tcp-echo 7 --tcp-discard 9 --http 80 --pcap` (listeners on `::`, both
 *           families): curl -6 fetches 10 MB (sha256 checked) and the same listener answers IPv4;
 *           nc -6 and socat echo; Node's http client gets 1 MB over IPv6; nc reaches our
 *           link-local address with %tap0; the kernel's `ss -ti` shows the connection with SACK and
 *           timestamps; a closed port is refused by our RST; tshark finds every checksum good and
 *           nothing malformed.
 *   client: `tapstack get http://[fd00:10::1]:8000/...` from python3's http.server (sha256) and
 *           `tapstack connect fd00:10::1 7` to socat.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireE2eCapabilities, requireTools, type Netns } from './support/netns.ts';
import { expectedBytes, sha256 } from './support/http-body.ts';
import { perTest } from './support/per-test.ts';
import { tsharkFields, tsharkFrames } from './support/tshark.ts';
import { parseCounters, repoRoot, spawnTapstack, type Watched } from './support/watch.ts';

const { namespace, tempDir, defer } = perTest('tcp6');

const TAPSTACK = join(repoRoot, 'packages/stack/bin/tapstack.js');
/** The stack's link-local address for MAC 02:00:00:00:00:02 (modified EUI-64, RFC 4291 2.5.1). */
const OUR_LINK_LOCAL = 'fe80::ff:fe00:2';

beforeAll(() => {
  requireE2eCapabilities();
  requireTools(['curl', 'nc', 'socat', 'python3', 'tshark', 'ss']);
});

async function upWithServices(ns: Netns, extra: string[] = []): Promise<Watched> {
  // plain frames unless the test asks for the header: the checks read single segments in the capture
  const up = spawnTapstack(ns, ['up', ...(extra.includes('--vnet-hdr') ? [] : ['--no-vnet-hdr']), '--tap', 'tap0', '--mac', '02:00:00:00:00:02', '--tcp-echo', '7', '--tcp-discard', '9', '--http', '80', ...extra]);
  defer(() => void up.stop('SIGKILL'));
  // the IPv6 line comes once DAD passed: then fd00:10::2 (and the link-local address) are ours
  await up.waitFor(/IPv6: fd00:10::2\/64.*\n/, 30_000);
  return up;
}

async function waitForListener(ns: Netns, port: number): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if ((await ns.run('sh', ['-c', `nc -6 -z ::1 ${port} && echo ok`])).stdout.includes('ok')) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on [::1]:${port} in the namespace`);
}

describe('the stack as a TCP server for the kernel over IPv6', () => {
  it('curl -6, nc -6, socat and Node http get whole answers; link-local with %tap0; ss -ti on the kernel side sees the connection; SYN-ACKs offer SACK and timestamps; tshark finds every segment sound', async () => {
    const ns = namespace('tcp6-server');
    const dir = tempDir();
    const pcap = join(dir, 'tcp6.pcap');
    const up = await upWithServices(ns, ['--pcap', pcap]);
    // the banner says how to reach the same services over IPv6
    expect(up.output).toMatch(/\n {6}printf hi \| (ip netns exec \S+ )?nc -6 -N fd00:10::2 7\n {6}(ip netns exec \S+ )?curl -6 -g http:\/\/\[fd00:10::2\]:80\/\n/);

    // curl -6: 10 MB from Node's http over our TCP over IPv6; -g: the brackets are the URL's, not a glob
    const file = join(dir, 'ten.bin');
    const curl = await ns.run('curl', ['-6', '-g', '-s', '-S', '-m', '60', '-o', file, 'http://[fd00:10::2]/bytes/10485760'], 70_000);
    expect(curl.stderr).toBe('');
    expect(curl.status).toBe(0);
    expect(sha256(readFileSync(file))).toBe(sha256(expectedBytes(10485760)));
    // the same `::` listener takes IPv4 (bindv6only=0)
    const page4 = await ns.run('curl', ['-4', '-s', '-m', '10', 'http://10.0.0.2/']);
    expect(page4.stdout).toContain('Hello from tapstack');

    // nc -6: a line; socat over TCP6: 1 MB of random bytes, half-closed, back whole
    const line = await ns.run('sh', ['-c', 'printf "hello over six\\n" | nc -6 -N -w 5 fd00:10::2 7']);
    expect(line.stdout, line.stderr).toBe('hello over six\n');
    const random = randomBytes(1024 * 1024);
    const input = join(dir, 'in.bin');
    writeFileSync(input, random);
    const echoed = await ns.run('sh', ['-c', `socat -t 5 - 'TCP6:[fd00:10::2]:7' < ${input} | sha256sum`], 60_000);
    expect(echoed.stdout.split(' ')[0], echoed.stderr).toBe(sha256(random));

    // Node's http client (the kernel's TCP) over IPv6
    const nodeScript = [
      "const http = require('node:http'); const crypto = require('node:crypto');",
      "http.get('http://[fd00:10::2]/bytes/1048576', (res) => {",
      "  const h = crypto.createHash('sha256'); let n = 0;",
      "  res.on('data', (c) => { h.update(c); n += c.length; });",
      "  res.on('end', () => console.log(res.statusCode, n, h.digest('hex')));",
      "}).on('error', (e) => { console.log('error', e.message); });",
    ].join('\n');
    const node = await ns.run('node', ['-e', nodeScript], 30_000);
    expect(node.stdout.trim(), node.stderr).toBe(`200 1048576 ${sha256(expectedBytes(1048576))}`);

    // link-local: the kernel's fe80:: source meets ours (RFC 6724 picks it for a link-local peer)
    const local = await ns.run('sh', ['-c', `printf "hello, link-local\\n" | nc -6 -N -w 5 ${OUR_LINK_LOCAL}%tap0 7`]);
    expect(local.stdout, local.stderr).toBe('hello, link-local\n');

    // the kernel's view of a connection to us while it is open: ESTAB, SACK and timestamps negotiated
    // (looked for until a deadline, not for a count of tries: on a loaded machine starting nc and
    // each ss takes longer, and 30 tries of 100 ms were about all the time nc had to connect)
    const held = ns.spawn('sh', ['-c', "(printf 'x'; sleep 3) | nc -6 -w 5 fd00:10::2 7 > /dev/null"], { stdio: 'ignore' });
    defer(() => held.kill('SIGKILL'));
    let ss = '';
    for (const end = Date.now() + 15_000; !/ESTAB/.test(ss) && Date.now() < end; ) {
      await new Promise((r) => setTimeout(r, 100));
      ss = (await ns.run('ss', ['-tin', 'dst', '[fd00:10::2]:7'])).stdout;
    }
    expect(ss).toMatch(/ESTAB\s+\d+\s+\d+\s+\[fd00:10::1\]:\d+\s+\[fd00:10::2\]:7/);
    // our MSS option said 1440 (1500 - 60) and timestamps are on: 12 bytes of each segment are
    // theirs (this iproute2 prints no `ts sack` words; the SYN-ACK's options are checked below)
    expect(ss).toMatch(/\bmss:1428\b/);

    // a closed port: the kernel's connect() is refused by our RST over IPv6
    const refused = await ns.run('python3', ['-c', 'import socket\ntry:\n  socket.create_connection(("fd00:10::2", 81), timeout=5)\nexcept Exception as e:\n  print(type(e).__name__)']);
    expect(refused.stdout.trim()).toBe('ConnectionRefusedError');

    const stopMark = up.output.length;
    const stopped = await up.stop('SIGINT');
    expect(stopped, up.output.slice(-4000)).toEqual({ code: 0, signal: null });
    const counters = parseCounters(up.output.slice(stopMark));
    expect(counters.get('tcp.Tcp6InSegs')).toBeGreaterThan(1000);
    expect(counters.get('tcp.Tcp6OutSegs')).toBeGreaterThan(7000);
    expect(counters.get('tcp.OutRsts')).toBeGreaterThanOrEqual(1);
    expect(counters.get('tcp.InCsumErrors') ?? 0).toBe(0);
    expect(counters.get('tcp.Tcp6InCsumErrors') ?? 0).toBe(0);

    // tshark: every TCP checksum over IPv6 is right (ours and the kernel's), nothing malformed
    const prefs = ['tcp.check_checksum:TRUE'];
    const ours = tsharkFrames(pcap, 'tcp && ipv6.src == fd00:10::2', { prefs });
    // every SYN-ACK of ours offers SACK and timestamps, with MSS 1440
    const synAcks = tsharkFields(pcap, ['tcp.options.mss_val', 'tcp.options.sack_perm', 'tcp.options.timestamp.tsval'], { filter: 'tcp.flags.syn == 1 && tcp.flags.ack == 1 && ipv6.src == fd00:10::2', prefs });
    expect(synAcks.length).toBeGreaterThanOrEqual(5);
    for (const [mss, sackPermitted, tsval] of synAcks) expect([mss, sackPermitted !== '', /^\d+$/.test(tsval ?? '')]).toEqual(['1440', true, true]);
    expect(ours.length).toBeGreaterThan(7000);
    expect(tsharkFrames(pcap, `tcp && ipv6.src == ${OUR_LINK_LOCAL}`).length).toBeGreaterThanOrEqual(3);
    // 0xffff for a computed 0 is +0 for -0 in one's complement (see tcp.e2e.test.ts): not an error
    const MANGLED_ZERO = '!(tcp.checksum == 0xffff)';
    expect(tsharkFields(pcap, ['frame.number', 'ipv6.src', 'tcp.srcport', 'tcp.dstport'], { filter: `tcp.checksum.status == 0 && ${MANGLED_ZERO}`, prefs })).toEqual([]);
    expect(tsharkFields(pcap, ['frame.number', '_ws.col.Info', '_ws.expert.message'], { filter: `_ws.malformed || (_ws.expert.severity == error && ${MANGLED_ZERO})`, prefs })).toEqual([]);
  }, 240_000);
});

describe('TCP over IPv6 with --vnet-hdr', () => {
  it('TSO6 both ways (GSO_TCPV6 super-frames) and partial checksums: curl -6 gets 10 MB whole, 20 MB go up to discard, nc -6 and UDP6 get their echo', async () => {
    const ns = namespace('tcp6-vnet');
    const dir = tempDir();
    const up = await upWithServices(ns, ['--vnet-hdr', '--udp-echo', '7']);
    const file = join(dir, 'ten.bin');
    const curl = await ns.run('curl', ['-6', '-g', '-s', '-S', '-m', '60', '-o', file, 'http://[fd00:10::2]/bytes/10485760'], 70_000);
    expect(curl.status, curl.stderr).toBe(0);
    expect(sha256(readFileSync(file))).toBe(sha256(expectedBytes(10485760)));
    const line = await ns.run('sh', ['-c', 'printf "hello over six\\n" | nc -6 -N -w 5 fd00:10::2 7']);
    expect(line.stdout, line.stderr).toBe('hello over six\n');
    const udp = await ns.run('sh', ['-c', "printf 'udp over six' | socat -t 2 - 'UDP6:[fd00:10::2]:7'"]);
    expect(udp.stdout, udp.stderr).toBe('udp over six');
    // upload: with TUN_F_TSO6 the kernel hands us its TCP/IPv6 segments unsegmented
    const discard = await ns.run('sh', ['-c', 'head -c 20000000 /dev/zero | nc -6 -N -w 10 fd00:10::2 9 | wc -c'], 60_000);
    expect(discard.stdout.trim(), discard.stderr).toBe('0');
    const stopMark = up.output.length;
    expect(await up.stop('SIGINT')).toEqual({ code: 0, signal: null });
    const counters = parseCounters(up.output.slice(stopMark));
    // the partial checksums were taken as the kernel's word (TCP) or finished by IPv6 (UDP);
    // super-frames went both ways, and each counts as the segments it stands for
    expect(counters.get('tap.rx_csum_partial')).toBeGreaterThan(100);
    expect(counters.get('tap.tx_gso_frames')).toBeGreaterThan(20);
    expect(counters.get('tap.rx_gso_frames')).toBeGreaterThan(20);
    expect(counters.get('tcp.Tcp6InSegs')).toBeGreaterThan(20_000_000 / 1440);
    expect(counters.get('tcp.Tcp6OutSegs')).toBeGreaterThan(10_485_760 / 1440);
    expect(counters.get('tcp.InCsumErrors') ?? 0).toBe(0);
    expect(counters.get('udp.rx_bad_checksum') ?? 0).toBe(0);
    expect(counters.get('udp.Udp6InDatagrams')).toBe(1);
  }, 120_000);
});

describe('the stack as a TCP client of the kernel over IPv6', () => {
  it('tapstack get http://[fd00:10::1]:8000/ fetches 4 MB whole; tapstack connect fd00:10::1 7 echoes through socat', async () => {
    const ns = namespace('tcp6-client');
    const dir = tempDir();
    const data = randomBytes(4 * 1024 * 1024);
    writeFileSync(join(dir, 'file.bin'), data);
    const server = ns.spawn('python3', ['-m', 'http.server', '8000', '--bind', '::', '--directory', dir], { stdio: 'ignore' });
    defer(() => server.kill('SIGKILL'));
    const echo = ns.spawn('socat', ['TCP6-LISTEN:7,fork,reuseaddr', 'EXEC:cat'], { stdio: 'ignore' });
    defer(() => echo.kill('SIGKILL'));
    await waitForListener(ns, 8000);
    await waitForListener(ns, 7);

    const out = join(dir, 'got.bin');
    const get = await ns.run('sh', ['-c', `node ${TAPSTACK} get 'http://[fd00:10::1]:8000/file.bin' > ${out}`], 90_000);
    expect(get.status, get.stderr).toBe(0);
    // our socket, not the kernel's: the connection starts at the stack's IPv6 address
    expect(get.stderr).toMatch(/connecting from fd00:10::2 \(tapstack\) to \[fd00:10::1\]:8000/);
    expect(get.stderr).toMatch(/4194304 bytes in [\d.]+ s .*HTTP 200/);
    expect(sha256(readFileSync(out))).toBe(sha256(data));

    const run = await ns.run('sh', ['-c', `printf 'hello over our tcp6\\n' | node ${TAPSTACK} connect fd00:10::1 7`], 30_000);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/connected to \[fd00:10::1\]:7 from \[fd00:10::2\]:\d+/);
    expect(run.stdout).toBe('hello over our tcp6\n');
  }, 150_000);
});
