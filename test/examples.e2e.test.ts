/**
 * Every example runs as its docs chapter says, with short bounded runs: the ones with a TAP
 * device against the kernel's real tools inside their own namespace (given a unique name here
 * with --netns, and checked to be gone after Ctrl-C), the in-memory ones as they are.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Netns, requireE2eCapabilities } from './support/netns.ts';
import { expectEveryRequestAnswered, pingCount, PING_DEADLINE_S } from './support/ping.ts';
import { repoRoot, tsxBin, Watched } from './support/watch.ts';

let serial = 0;
const namespaces: string[] = [];
const cleanups: (() => void)[] = [];

/** A namespace name the example creates itself; removed here too if the example failed to. */
function exampleNamespace(label: string): string {
  const name = `tapstack-ex${label}-${process.pid}-${serial++}`;
  namespaces.push(name);
  return name;
}

function namespaceExists(name: string): boolean {
  // (ip netns list complains on stderr about a namespace that is being created at that moment)
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    .split('\n')
    .some((line) => line.split(' ')[0] === name);
}

/** `ip netns exec NAME cmd args`, never throwing; for namespaces the example owns. */
function inNamespace(name: string, cmd: string, args: string[], input?: string, timeoutMs = 20_000): { status: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync('ip', ['netns', 'exec', name, cmd, ...args], { encoding: 'utf8', timeout: timeoutMs, input, stdio: ['pipe', 'pipe', 'pipe'] });
    return { status: 0, stdout, stderr: '' };
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string };
    return { status: e.status ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function example(file: string, args: string[] = [], wrap: string[] = []): Watched {
  const argv = [...wrap, tsxBin, `examples/${file}`, ...args];
  const w = new Watched(spawn(argv[0]!, argv.slice(1), { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] }));
  cleanups.push(() => w.child.kill('SIGKILL'));
  return w;
}

beforeAll(() => requireE2eCapabilities());
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
  for (const name of namespaces.splice(0)) {
    try {
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    } catch {
      /* the example removed it, as it should */
    }
  }
});

describe('examples with a TAP device (each in a namespace of its own)', () => {
  it('01-print-frames: prints the kernel ARPing for 10.0.0.2, Ctrl-C ends it', async () => {
    const ns = Netns.create('ex01');
    cleanups.push(() => ns.destroy());
    const run = example('01-print-frames.ts', [], ['ip', 'netns', 'exec', ns.name]);
    await run.waitFor(/listening on tap0: kernel side 10\.0\.0\.1\/24/);
    const ping = await ns.run('ping', ['-c', '1', '-W', '1', '10.0.0.2']);
    expect(ping.status).not.toBe(0); // nobody answers at the link layer alone
    await run.waitFor(/\d\d:\d\d:\d\d\.\d{6} [0-9a-f:]{17} > ff:ff:ff:ff:ff:ff, ARP.*: Request who-has 10\.0\.0\.2 tell 10\.0\.0\.1/);
    expect(await run.stop('SIGINT')).toEqual({ code: 0, signal: null });
    expect(run.output).toMatch(/\n\d+ frames\n/);
  });

  it('02-arp-responder: arping gets answers; Ctrl-C prints the table and removes the namespace', async () => {
    const name = exampleNamespace('02');
    const run = example('02-arp-responder.ts', ['--netns', name]);
    await run.waitFor(/answering ARP for 10\.0\.0\.2 on tap0/);
    const arping = inNamespace(name, 'arping', ['-c', '2', '-w', '5', '-I', 'tap0', '10.0.0.2']);
    expect(arping.stdout).toMatch(/Received 2 response/);
    expect(await run.stop('SIGINT')).toEqual({ code: 0, signal: null });
    expect(run.output).toMatch(/arp\.tx_replies 2/);
    expect(namespaceExists(name)).toBe(false);
  });

  it('03-ping-me: answers ping (56 and 4000 bytes); Ctrl-C prints counters and removes the namespace', async () => {
    const name = exampleNamespace('03');
    const run = example('03-ping-me.ts', ['--netns', name]);
    await run.waitFor(new RegExp(`Ping me from another terminal:\\n  sudo ip netns exec ${name} ping -c 3 10\\.0\\.0\\.2`));
    const ping = inNamespace(name, 'ping', [...pingCount(3), '-i', '0.2', '10.0.0.2'], undefined, (PING_DEADLINE_S + 10) * 1000);
    expectEveryRequestAnswered(ping, 3);
    const big = inNamespace(name, 'ping', [...pingCount(1), '-s', '4000', '10.0.0.2'], undefined, (PING_DEADLINE_S + 10) * 1000);
    expect(big.stdout).toMatch(/4008 bytes from 10\.0\.0\.2: icmp_seq=1/);
    await run.waitFor(/out .* 10\.0\.0\.2 > 10\.0\.0\.1: ICMP echo reply, id \d+, seq 3, length 64/);
    expect(await run.stop('SIGINT')).toEqual({ code: 0, signal: null });
    // one reply to each request the two pings sent (more than 3 + 1 when one waited for a late reply)
    const sent = [ping, big].reduce((sum, r) => sum + Number(r.stdout.match(/(\d+) packets transmitted/)![1]), 0);
    expect(run.output).toMatch(new RegExp(`icmp\\.tx_echo_replies ${sent}\\n`));
    expect(run.output).toMatch(/neighbour table \(ip neigh show\):\n10\.0\.0\.1 dev tap0 lladdr/);
    expect(namespaceExists(name)).toBe(false);
  });

  it('04-stack-pings-host: the first request waits in an INCOMPLETE entry, then 0% loss, and it exits on its own', async () => {
    const name = exampleNamespace('04');
    const run = example('04-stack-pings-host.ts', ['--netns', name, '--count', '3']);
    const exit = await run.exited;
    const out = run.output;
    expect(exit, out).toEqual({ code: 0, signal: null });
    expect(out).toMatch(/neighbour table right after the first request:\n  10\.0\.0\.1 INCOMPLETE, 1 packet\(s\) queued/);
    // the queued request leaves only after the kernel's ARP reply
    const reply = out.indexOf('ARP, Reply 10.0.0.1 is-at');
    const firstEcho = out.search(/out .*ICMP echo request, id \d+, seq 1/);
    expect(reply).toBeGreaterThan(-1);
    expect(firstEcho).toBeGreaterThan(reply);
    expect(out).toMatch(/3 packets transmitted, 3 received, 0% packet loss/);
    expect(out).toMatch(/neighbour table after:\n  10\.0\.0\.1 REACHABLE lladdr [0-9a-f:]{17}, 0 packet\(s\) queued/);
    expect(out).toMatch(/ipv4\.tx_queued 1/);
    expect(namespaceExists(name)).toBe(false);
  });

  it('05-custom-ethertype: the Python sender gets its words back in capitals over EtherType 0x88B5; ping still works next to it', async () => {
    const name = exampleNamespace('05');
    const run = example('05-custom-ethertype.ts', ['--netns', name]);
    await run.waitFor(/listening for EtherType 0x88b5 on tap0 \(mac 02:00:00:00:88:b5\)/);
    const sender = inNamespace(name, 'python3', ['examples/05-custom-ethertype-sender.py', 'tap0', '02:00:00:00:88:b5', 'hello', 'world']);
    expect(sender.stderr).toBe('');
    expect(sender.stdout).toBe("seq 1: sent 'hello', got 'HELLO' from 02:00:00:00:88:b5\nseq 2: sent 'world', got 'WORLD' from 02:00:00:00:88:b5\n");
    // a truncated shout (EtherType and 3 bytes) is dropped and counted, not answered
    const truncated = inNamespace(name, 'python3', [
      '-c',
      "import socket; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('tap0', 0)); " +
        "s.send(bytes.fromhex('02000000 88b5'.replace(' ', '')) + s.getsockname()[4] + bytes.fromhex('88b5010000'))",
    ]);
    expect(truncated.status).toBe(0);
    expect(inNamespace(name, 'ping', ['-c', '1', '-W', '2', '10.0.0.2']).status).toBe(0);
    expect(await run.stop('SIGINT')).toEqual({ code: 0, signal: null });
    expect(run.output).toMatch(/shout #1 from [0-9a-f:]{17}: 'hello' -> 'HELLO'/);
    expect(run.output).toMatch(/shout\.rx_requests 2\n/);
    expect(run.output).toMatch(/shout\.rx_truncated 1\n/);
    expect(run.output).toMatch(/shout\.tx_replies 2\n/);
    expect(run.output).toMatch(/icmp\.tx_echo_replies 1/);
    expect(namespaceExists(name)).toBe(false);
  });

  it('07-udp-echo: socat gets its datagram back; Ctrl-C removes the namespace', async () => {
    const name = exampleNamespace('07');
    const run = example('07-udp-echo.ts', ['--netns', name]);
    await run.waitFor(/UDP echo on 10\.0\.0\.2:7777/);
    const echo = inNamespace(name, 'socat', ['-t', '1', '-', 'UDP4:10.0.0.2:7777'], 'hello');
    expect(echo.stdout).toBe('hello');
    expect(await run.stop('SIGINT')).toEqual({ code: 0, signal: null });
    expect(namespaceExists(name)).toBe(false);
  });
});

describe('TCP examples', () => {
  it('08-tcp-echo: nc gets its line back and 200 kB byte for byte, nc -6 its line over IPv6; Ctrl-C removes the namespace', async () => {
    const name = exampleNamespace('08');
    const run = example('08-tcp-echo.ts', ['--netns', name]);
    await run.waitFor(/TCP echo on 10\.0\.0\.2:7/);
    const line = inNamespace(name, 'nc', ['-N', '-w', '5', '10.0.0.2', '7'], 'hello, tcp\n');
    expect(line.stdout).toBe('hello, tcp\n');
    const data = Array.from({ length: 200_000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
    const big = inNamespace(name, 'nc', ['-N', '-w', '5', '10.0.0.2', '7'], data);
    expect(big.stdout.length).toBe(data.length);
    expect(big.stdout === data).toBe(true);
    await run.waitFor(/closed after 200000 bytes/);
    // the same server over IPv6, once DAD has passed
    await run.waitFor(/and over IPv6 on \[fd00:10::2\]:7/);
    const six = inNamespace(name, 'nc', ['-6', '-N', '-w', '5', 'fd00:10::2', '7'], 'hello, six\n');
    expect(six.stdout).toBe('hello, six\n');
    await run.waitFor(/connection from fd00:10::1:\d+/);
    expect(await run.stop('SIGINT')).toEqual({ code: 0, signal: null });
    expect(run.output).toMatch(/tcp\.PassiveOpens 3/);
    expect(namespaceExists(name)).toBe(false);
  });

  it('09-http-server: curl gets the page and /count/1000000 whole; Ctrl-C removes the namespace', async () => {
    const name = exampleNamespace('09');
    const run = example('09-http-server.ts', ['--netns', name]);
    await run.waitFor(/HTTP on 10\.0\.0\.2:80/);
    const page = inNamespace(name, 'curl', ['-s', '-m', '10', 'http://10.0.0.2/hello']);
    expect(page.stdout).toMatch(/^hello from tapstack: GET \/hello, from 10\.0\.0\.1:\d+$/m);
    const count = inNamespace(name, 'curl', ['-s', '-m', '20', '-o', '/dev/null', '-w', '%{size_download}', 'http://10.0.0.2/count/1000000']);
    expect(count.stdout).toBe('1000000');
    expect(await run.stop('SIGINT')).toEqual({ code: 0, signal: null });
    expect(namespaceExists(name)).toBe(false);
  });
});

describe('a layer of your own', () => {
  it('11-ip-protocol: a raw socket gets its bytes reversed (also 3000 of them, fragmented both ways); the layer shows in --trace and the counters', async () => {
    const name = exampleNamespace('11');
    const run = example('11-ip-protocol.ts', ['--netns', name, '--trace']);
    await run.waitFor(/"reverse" on IP protocol 253/);
    const small = inNamespace(name, 'python3', ['examples/11-ip-protocol-client.py', '10.0.0.2', 'hello, protocol 253']);
    expect(small.stdout).toBe("got '352 locotorp ,olleh' from 10.0.0.2\n");
    const text = Array.from({ length: 3000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
    const big = inNamespace(name, 'python3', ['examples/11-ip-protocol-client.py', '10.0.0.2', text]);
    expect(big.stdout).toBe(`got '${[...text].reverse().join('')}' from 10.0.0.2\n`);
    await run.waitFor(/10\.0\.0\.1 > 10\.0\.0\.2: reverse, 19 bytes/);
    expect(await run.stop('SIGINT')).toEqual({ code: 0, signal: null });
    expect(run.output).toMatch(/reverse\.rx_datagrams 2/);
    expect(run.output).toMatch(/reverse\.tx_answers 2/);
    expect(namespaceExists(name)).toBe(false);
  });
});

describe('examples clean up after a failure', () => {
  it('02, 03, 04, 05, 07, 08 and 09 remove their namespace when an error kills them mid-run', async () => {
    // A preload that turns SIGUSR2 into an uncaught exception: a crash at a moment we choose,
    // after the example has created its namespace and device.
    const dir = mkdtempSync(join(tmpdir(), 'tapstack-inject-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const inject = join(dir, 'inject.mjs');
    writeFileSync(inject, "process.on('SIGUSR2', () => { throw new Error('injected failure'); });\n");
    const cases: [string, string[], RegExp][] = [
      ['02-arp-responder.ts', [], /answering ARP for/],
      ['03-ping-me.ts', [], /Ping me from another terminal/],
      ['04-stack-pings-host.ts', ['--count', '50'], /PING 10\.0\.0\.1 from 10\.0\.0\.2/],
      ['05-custom-ethertype.ts', [], /listening for EtherType 0x88b5/],
      ['07-udp-echo.ts', [], /UDP echo on/],
      ['08-tcp-echo.ts', [], /TCP echo on/],
      ['09-http-server.ts', [], /HTTP on/],
    ];
    await Promise.all(
      cases.map(async ([file, args, ready]) => {
        const name = exampleNamespace(file.slice(0, 2));
        const argv = ['--import', 'tsx', '--import', inject, `examples/${file}`, '--netns', name, ...args];
        const w = new Watched(spawn(process.execPath, argv, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] }));
        cleanups.push(() => w.child.kill('SIGKILL'));
        await w.waitFor(ready);
        expect(namespaceExists(name), file).toBe(true);
        w.child.kill('SIGUSR2');
        const exit = await w.exited;
        expect(w.output, file).toMatch(/Error: injected failure/);
        expect(exit.code, file).not.toBe(0);
        expect(namespaceExists(name), `${file} left ${name} behind`).toBe(false);
      }),
    );
  });
});

describe('examples without root', () => {
  it('10-http-client: Node http client and server on two in-memory stacks; the trace shows the handshake', async () => {
    // Run inside a namespace of its own anyway: if the client ever fell back to the kernel's TCP,
    // it could reach nothing there.
    const name = exampleNamespace('10');
    execFileSync('ip', ['netns', 'add', name]);
    const run = example('10-http-client.ts', ['--bytes', '5000'], ['ip', 'netns', 'exec', name]);
    const exit = await run.exited;
    expect(exit, run.output).toEqual({ code: 0, signal: null });
    expect(run.output).toMatch(/A out .*10\.0\.0\.1\.\d+ > 10\.0\.0\.2\.80: Flags \[S\]/);
    expect(run.output).toMatch(/B out .*10\.0\.0\.2\.80 > 10\.0\.0\.1\.\d+: Flags \[S\.\]/);
    expect(run.output).toContain('A got 5000 bytes from B over TCP');
    expect(run.output).toMatch(/TIME-WAIT/);
  });

  it('15-plot-a-transfer: a lossy transfer on a virtual clock, captured, logged and drawn; every count agrees', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tapstack-ex14-'));
    cleanups.push(() => rmSync(out, { recursive: true, force: true }));
    const run = example('15-plot-a-transfer.ts', ['--out', out]);
    const exit = await run.exited;
    expect(exit, run.output).toEqual({ code: 0, signal: null });
    expect(run.output).toMatch(/A received 1048576 bytes in [\d.]+ s of virtual time; the wire lost [1-9]\d* frames/);
    const seen = Number(run.output.match(/(\d+) retransmitted/)?.[1]);
    const counted = Number(run.output.match(/counted (\d+) retransmissions/)?.[1]);
    expect(seen).toBeGreaterThan(0);
    expect(seen).toBe(counted);
    const marks = (file: string): number => readFileSync(join(out, file), 'utf8').split('class="retransmission"').length - 1;
    expect(marks('time-sequence.svg')).toBe(seen);
    expect(marks('cwnd.svg')).toBe(seen);
    // tapstack plot redraws the saved capture with the same count
    const plot = execFileSync(process.execPath, [join(repoRoot, 'packages/stack/bin/tapstack.js'), 'plot', join(out, 'transfer.pcap')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(plot.split('class="retransmission"').length - 1).toBe(seen);
  });

  it('02b-neighbour-table: INCOMPLETE -> REACHABLE -> STALE -> DELAY -> PROBE -> FAILED on a virtual clock', async () => {
    const run = example('02b-neighbour-table.ts');
    const exit = await run.exited;
    expect(exit, run.output).toEqual({ code: 0, signal: null });
    for (const state of ['INCOMPLETE', 'REACHABLE', 'STALE', 'DELAY', 'PROBE', 'FAILED']) expect(run.output).toContain(state);
  });

  it('13-decode-ipv6: decodes the Linux IPv6 captures; every NDP and MLD message valid; a damaged NS names its broken rule', async () => {
    const run = example('13-decode-ipv6.ts');
    const exit = await run.exited;
    expect(exit, run.output).toEqual({ code: 0, signal: null });
    const out = run.output;
    expect(out).toContain('IP6 :: > ff02::1:ff00:2: ICMP6, neighbor solicitation, who has fd00:10::2, length 32  -> valid (RFC 4861)');
    expect(out).toMatch(/IP6 fd00:10::1 > fd00:10::2: frag \(0\|1448\) ICMP6, echo request, id \d+, seq 1, length 1448/);
    expect(out).toContain('ICMP6, router advertisement, hop limit 64, flags [O], router lifetime 1800s');
    expect(out).not.toContain('invalid');
    // the same NS with hop limit 254, written to a pcap of its own
    const dir = mkdtempSync(join(tmpdir(), 'tapstack-12b-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const ns = '3333ff000002 02000000 0a01 86dd 6000 0000 0020 3afe fd00 0010 0000 0000 0000 0000 0000 0001 ff02 0000 0000 0000 0000 0001 ff00 0002 8700 7377 0000 0000 fd00 0010 0000 0000 0000 0000 0000 0002 0101 0200 0000 0a01';
    const frame = Buffer.from(ns.replace(/ /g, ''), 'hex');
    const header = Buffer.from('d4c3b2a1020004000000000000000000ffff000001000000', 'hex');
    const record = Buffer.alloc(16);
    record.writeUInt32LE(frame.length, 8);
    record.writeUInt32LE(frame.length, 12);
    writeFileSync(join(dir, 'bad.pcap'), Buffer.concat([header, record, frame]));
    const bad = example('13-decode-ipv6.ts', [join(dir, 'bad.pcap')]);
    expect(await bad.exited, bad.output).toEqual({ code: 0, signal: null });
    expect(bad.output).toContain('IP6 fd00:10::1 > ff02::1:ff00:2: ICMP6, neighbor solicitation, who has fd00:10::2, length 32  -> invalid: bad_hop_limit');
  });

  it('12-congestion-control: a hand-written AIMD, NewReno and CUBIC each move 4 MiB over a lossy in-memory wire; cwnd over time for all three', async () => {
    const run = example('12-congestion-control.ts', ['--seed', '1']);
    const exit = await run.exited;
    const out = run.output;
    expect(exit, out).toEqual({ code: 0, signal: null });
    expect(out).toMatch(/^\s+time\s+aimd\s+newreno\s+cubic$/m);
    expect(out).toMatch(/^\s+0\.1s\s+\d+\s+\d+\s+\d+$/m);
    for (const name of ['aimd', 'newreno', 'cubic']) expect(out).toMatch(new RegExp(`^${name}\\s+done in [\\d.]+ s of virtual time, [1-9]\\d* segments retransmitted$`, 'm'));
  });

  it('06-faulty-wire: loss, duplicates and reordering show in ping and in the counters', async () => {
    const run = example('06-faulty-wire.ts', ['--count', '40', '--seed', '7']);
    const exit = await run.exited;
    const out = run.output;
    expect(exit, out).toEqual({ code: 0, signal: null });
    const summary = out.match(/40 packets transmitted, (\d+) received, \+(\d+) duplicates, ([\d.]+)% packet loss/);
    expect(summary, out).not.toBeNull();
    const [received, duplicates] = [Number(summary![1]), Number(summary![2])];
    expect(received).toBeGreaterThan(20);
    expect(received).toBeLessThan(40);
    expect(out.match(/\(DUP!\)/g)).toHaveLength(duplicates);
    expect(out).toMatch(/\(out of order\)/);
    const fault = (name: string): number => Number(out.match(new RegExp(`faults\\.${name} (\\d+)`))?.[1]);
    for (const name of ['dropped', 'duplicated', 'corrupted', 'reordered']) expect(fault(name)).toBeGreaterThan(0);
  });
});
