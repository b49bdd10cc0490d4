/**
 * TCP against the real kernel: curl, nc, ab and Python's http.server talk to the stack on a TAP
 * device. Every test runs in a network namespace of its own (10.0.0.0/24 only) and removes it.
 *
 *   server: `tapstack up --tcp-echo 7 --tcp-discard 9 --http 80 --pcap` serves curl (10 MB,
 *           sha256 checked), nc (echo both ways, half-close with -N), ab (1000 requests, 0
 *           failed); a closed port is refused; tshark finds no bad checksum and no malformed segment.
 *   client: `tapstack get` fetches 10 MB from python3 -m http.server (sha256 checked);
 *           a closed kernel port gives ECONNREFUSED.
 *   loss:   with 5% random loss each way on tap0 (../shared/tools/link-loss.sh, tc + BPF) the 10 MB
 *           curl and a 2 MB echo still arrive whole.
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireE2eCapabilities, requireTools, type Netns } from './support/netns.ts';
import { expectedBytes, sha256 } from './support/http-body.ts';
import { perTest } from './support/per-test.ts';
import { parseCounters, repoRoot, spawnTapstack, type Watched } from './support/watch.ts';

const { namespace, tempDir, defer } = perTest('tcp');

const LINK_LOSS = join(repoRoot, '..', 'shared', 'tools', 'link-loss.sh');

beforeAll(() => {
  requireE2eCapabilities();
  requireTools(['curl', 'nc', 'ab', 'python3', 'tc']);
});

async function upWithServices(ns: Netns, extra: string[] = []): Promise<Watched> {
  // --no-vnet-hdr: the checks read single frames and segments on the wire, not 64 KB super-frames
  const up = spawnTapstack(ns, ['up', '--no-vnet-hdr', '--tap', 'tap0', '--ip', '10.0.0.2/24', '--host-ip', '10.0.0.1/24', '--tcp-echo', '7', '--tcp-discard', '9', '--http', '80', ...extra]);
  defer(() => void up.stop('SIGKILL'));
  await up.waitFor(/http on 10\.0\.0\.2:80/);
  return up;
}

describe('the stack as a TCP server for the kernel', () => {
  it('curl, nc and ab get whole answers; a closed port is refused; tshark finds every segment sound', async () => {
    const ns = namespace('tcp-server');
    const dir = tempDir();
    const pcap = join(dir, 'tcp.pcap');
    const up = await upWithServices(ns, ['--pcap', pcap]);

    // curl: a page, then 10 MB streamed from Node's http over our TCP
    const page = await ns.run('curl', ['-s', '-m', '10', 'http://10.0.0.2/']);
    expect(page.status).toBe(0);
    expect(page.stdout).toContain('Hello from tapstack');
    const file = join(dir, 'ten.bin');
    const curl = await ns.run('curl', ['-s', '-S', '-m', '60', '-o', file, 'http://10.0.0.2/bytes/10485760'], 70_000);
    expect(curl.stderr).toBe('');
    expect(curl.status).toBe(0);
    expect(sha256(readFileSync(file))).toBe(sha256(expectedBytes(10485760)));

    // nc: echo a line, then 2 MB of random bytes; -N half-closes after stdin, the echo still comes back whole
    const line = await ns.run('sh', ['-c', 'printf "hello, tapstack\\n" | nc -N -w 5 10.0.0.2 7']);
    expect(line.stdout).toBe('hello, tapstack\n');
    const random = randomBytes(2 * 1024 * 1024);
    const input = join(dir, 'in.bin');
    writeFileSync(input, random);
    const echoed = await ns.run('sh', ['-c', `nc -N -w 10 10.0.0.2 7 < ${input} | sha256sum`], 60_000);
    expect(echoed.stdout.split(' ')[0]).toBe(sha256(random));

    // discard: 5 MB in, nothing back, a clean close
    const discard = await ns.run('sh', ['-c', 'head -c 5000000 /dev/zero | nc -N -w 10 10.0.0.2 9 | wc -c'], 60_000);
    expect(discard.stdout.trim()).toBe('0');
    expect(discard.status).toBe(0);

    // ab: 1000 requests, 10 at a time, none failed
    const ab = await ns.run('ab', ['-q', '-n', '1000', '-c', '10', 'http://10.0.0.2/'], 60_000);
    expect(ab.stdout).toMatch(/Complete requests:\s+1000/);
    expect(ab.stdout).toMatch(/Failed requests:\s+0/);

    // a closed port: the kernel's connect() is refused by our RST
    const refused = await ns.run('python3', ['-c', 'import socket\ntry:\n  socket.create_connection(("10.0.0.2", 81), timeout=5)\nexcept Exception as e:\n  print(type(e).__name__)']);
    expect(refused.stdout.trim()).toBe('ConnectionRefusedError');

    const stopMark = up.output.length;
    expect(await up.stop('SIGINT')).toEqual({ code: 0, signal: null });
    const counters = parseCounters(up.output.slice(stopMark));
    expect(counters.get('tcp.PassiveOpens')).toBeGreaterThanOrEqual(1004);
    expect(counters.get('tcp.OutRsts')).toBeGreaterThanOrEqual(1);
    expect(counters.get('tcp.InCsumErrors') ?? 0).toBe(0);

    // tshark: every TCP checksum in the capture is right (ours and the kernel's), nothing malformed
    const fields = (filter: string): string[] =>
      execFileSync('tshark', ['-r', pcap, '-o', 'tcp.check_checksum:TRUE', '-Y', filter, '-T', 'fields', '-e', 'frame.number'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        maxBuffer: 64 * 1024 * 1024,
      })
        .split('\n')
        .filter(Boolean);
    expect(fields('tcp').length).toBeGreaterThan(5000);
    // Wireshark calls a checksum field of 0xffff bad where the computed one is 0x0000; they are the
    // same number in one's complement (+0 and -0), and Linux writes 0xffff for a computed 0 when
    // it finishes a checksum in software (skb_checksum_help: CSUM_MANGLED_0). So those are not errors.
    const MANGLED_ZERO = '!(tcp.checksum == 0xffff)';
    const bad = execFileSync('tshark', ['-r', pcap, '-o', 'tcp.check_checksum:TRUE', '-Y', `tcp.checksum.status == 0 && ${MANGLED_ZERO}`, '-T', 'fields', '-e', 'frame.number', '-e', 'ip.src', '-e', 'tcp.srcport', '-e', 'tcp.dstport', '-e', 'tcp.seq_raw', '-e', 'tcp.len', '-e', 'tcp.flags.str'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 * 1024 * 1024 });
    expect(bad).toBe(''); // status 0: bad
    const errors = execFileSync('tshark', ['-r', pcap, '-o', 'tcp.check_checksum:TRUE', '-Y', `_ws.malformed || (_ws.expert.severity == error && ${MANGLED_ZERO})`, '-T', 'fields', '-e', 'frame.number', '-e', '_ws.col.Info', '-e', '_ws.expert.message'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 * 1024 * 1024 });
    expect(errors).toBe('');
  }, 240_000);
});

describe('the stack as a TCP client of the kernel', () => {
  it('tapstack get fetches 10 MB from python3 -m http.server whole; a closed port gives ECONNREFUSED', async () => {
    const ns = namespace('tcp-client');
    const dir = tempDir();
    const data = randomBytes(10 * 1024 * 1024);
    writeFileSync(join(dir, 'file.bin'), data);
    const server = ns.spawn('python3', ['-m', 'http.server', '8000', '--bind', '0.0.0.0', '--directory', dir], { stdio: 'ignore' });
    defer(() => server.kill('SIGKILL'));
    // the server is ready when it accepts a connection on loopback
    for (let i = 0; i < 50; i++) {
      const probe = await ns.run('sh', ['-c', 'nc -z 127.0.0.1 8000 && echo ok']);
      if (probe.stdout.includes('ok')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const out = join(dir, 'got.bin');
    const get = await ns.run('sh', ['-c', `node ${join(repoRoot, 'packages/stack/bin/tapstack.js')} get http://10.0.0.1:8000/file.bin > ${out}`], 90_000);
    expect(get.status, get.stderr).toBe(0);
    // our socket, not the kernel's: the connection starts at the stack's address
    expect(get.stderr).toMatch(/connecting from 10\.0\.0\.2 \(tapstack\) to 10\.0\.0\.1:8000/);
    expect(get.stderr).toMatch(/10485760 bytes in [\d.]+ s .*HTTP 200/);
    expect(sha256(readFileSync(out))).toBe(sha256(data));

    const closed = await ns.run('node', [join(repoRoot, 'packages/stack/bin/tapstack.js'), 'get', 'http://10.0.0.1:8001/'], 30_000);
    expect(closed.status).toBe(1);
    expect(closed.stderr).toMatch(/connecting from 10\.0\.0\.2 \(tapstack\)/);
    expect(closed.stderr).toMatch(/ECONNREFUSED 10\.0\.0\.1:8001/);
  }, 120_000);
});

describe('tapstack connect, like nc', () => {
  it('sends stdin to a kernel echo server and prints what comes back; half-closes when stdin ends', async () => {
    const ns = namespace('tcp-connect');
    const echo = ns.spawn('socat', ['TCP-LISTEN:7,fork,reuseaddr', 'EXEC:cat'], { stdio: 'ignore' });
    defer(() => echo.kill('SIGKILL'));
    for (let i = 0; i < 50; i++) {
      if ((await ns.run('sh', ['-c', 'nc -z 127.0.0.1 7 && echo ok'])).stdout.includes('ok')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const run = await ns.run('sh', ['-c', `printf 'hello over our tcp\n' | node ${join(repoRoot, 'packages/stack/bin/tapstack.js')} connect 10.0.0.1 7`], 30_000);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/connected to 10\.0\.0\.1:7 from 10\.0\.0\.2:\d+/);
    expect(run.stdout).toBe('hello over our tcp\n');
  }, 60_000);
});

describe('TCP under random loss on the wire', () => {
  it('with 5% loss each way on tap0, a 10 MB curl and a 2 MB echo still arrive whole', async () => {
    if (!existsSync(LINK_LOSS)) throw new Error(`${LINK_LOSS} is missing: the loss test uses the shared link-loss tool`);
    const ns = namespace('tcp-loss');
    const dir = tempDir();
    const up = await upWithServices(ns);
    ns.exec('bash', [LINK_LOSS, 'tap0', '5']);
    const file = join(dir, 'ten.bin');
    const curl = await ns.run('curl', ['-s', '-S', '-m', '120', '-o', file, 'http://10.0.0.2/bytes/10485760'], 130_000);
    expect(curl.status, curl.stderr).toBe(0);
    expect(sha256(readFileSync(file))).toBe(sha256(expectedBytes(10485760)));
    const random = randomBytes(2 * 1024 * 1024);
    const input = join(dir, 'in.bin');
    writeFileSync(input, random);
    const echoed = await ns.run('sh', ['-c', `nc -N -w 30 10.0.0.2 7 < ${input} | sha256sum`], 130_000);
    expect(echoed.stdout.split(' ')[0]).toBe(sha256(random));
    // the loss was real: tc dropped frames on the way in
    expect(ns.exec('tc', ['-s', 'filter', 'show', 'dev', 'tap0', 'ingress'])).toMatch(/bpf/);
    const stopMark = up.output.length;
    await up.stop('SIGINT');
    const counters = parseCounters(up.output.slice(stopMark));
    expect(counters.get('tcp.RetransSegs')).toBeGreaterThan(0);
  }, 300_000);
});
