/**
 * Our stack on a real TAP device against the Linux kernel, in a network namespace this file
 * creates and deletes (also on failure). Inside it: the kernel's tap0 is 10.0.0.1/24, our stack
 * 10.0.0.2/24; nothing else is touched. The kernel's `ping` pings us (small, odd, the largest
 * unfragmented, fragmented both ways, flood), tcpdump captures tap0 the whole time and tshark
 * must decode every frame we sent with valid IP and ICMP checksums, and our ping client pings
 * the kernel.
 * Fails, never skips, without root, /dev/net/tun or the tools.
 */
import { type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Arp } from '@tapstack/arp';
import { Ipv4Cidr, Ipv4Layer } from '@tapstack/ipv4';
import { EtherTypeDispatcher, MacAddress, SystemClock, TapDevice, ipv4, readPcap, type Clock, type Link } from '@tapstack/link';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Netns, requireE2eCapabilities, requireTools, type RunResult } from '../../../test/support/netns.ts';
import { expectEveryRequestAnswered, PING_DEADLINE_S, pingCount } from '../../../test/support/ping.ts';
import { IcmpLayer } from '../src/layer.ts';
import { formatPingSummary } from '../src/ping.ts';

const STACK_MAC = MacAddress.parse('02:00:00:00:00:02');
const HOST = ipv4('10.0.0.1');

/** The composition createStack will do: dispatcher, ARP, IPv4, ICMP on one link. */
function composeStack(link: Link, clock: Clock, cidr: string) {
  const address = Ipv4Cidr.parse(cidr);
  const dispatcher = new EtherTypeDispatcher(link);
  const arp = new Arp({ dispatcher, clock, addresses: [address.address], broadcasts: [address.broadcast] });
  const ip = new Ipv4Layer({ dispatcher, resolver: arp, clock, address });
  const icmp = new IcmpLayer({ ipv4: ip, clock });
  void arp.start();
  return {
    arp,
    ip,
    icmp,
    close(): void {
      icmp.close();
      ip.close();
      arp.close();
    },
  };
}

let ns: Netns | undefined;
let tap: TapDevice | undefined;
let stack: ReturnType<typeof composeStack> | undefined;
let capture: ChildProcess | undefined;
let dir: string | undefined;
let captureFile = '';
/** What tcpdump printed on stderr (at exit: how many frames it received and the kernel dropped). */
let captureErr = '';

/** Resolves once tcpdump says it listens: its packet socket is bound then, so it misses nothing after. */
function waitForCaptureStart(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('tcpdump did not start capturing within 30 s')), 30_000);
    child.stderr!.on('data', (d: Buffer) => {
      captureErr += d.toString();
      if (/listening on/.test(captureErr)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tcpdump exited (${code}): ${captureErr}`));
    });
  });
}

/** Frames from our MAC in the capture tcpdump is writing (a half-written last record: -1, read again). */
function framesFromUs(): number {
  try {
    return readPcap(readFileSync(captureFile)).filter((r) => MacAddress.fromBytes(r.frame, 6).equals(STACK_MAC)).length;
  } catch {
    return -1;
  }
}

beforeAll(async () => {
  requireE2eCapabilities();
  requireTools(['tcpdump']);
  ns = Netns.create('ping');
  tap = TapDevice.open({ name: 'tap0', netns: ns.name, mac: STACK_MAC });
  tap.configureHost({ address: '10.0.0.1/24' });
  dir = mkdtempSync(join(tmpdir(), 'tapstack-ping-'));
  captureFile = join(dir, 'tap0.pcap');
  // tcpdump, not tshark's dumpcap: it writes each frame to the file as it reads it (-U,
  // --immediate-mode), so the test can see when the capture holds everything before stopping it;
  // dumpcap buffered its file and needed fixed pauses before and after. -s 2048: in immediate
  // mode libpcap's ring is a slot per frame, and a slot can be sized by the snapshot length
  // (256 KiB by default), leaving few slots for a flood (CI once saw 10 of 2,019 replies missing
  // from the capture, with nothing missing in our counters); our frames are 1514 bytes at most.
  // tcpdump's exit lines (frames the kernel dropped) go into the failure messages below.
  capture = ns.spawn('tcpdump', ['-i', 'tap0', '-n', '-U', '--immediate-mode', '-s', '2048', '-B', '16384', '-w', captureFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  await waitForCaptureStart(capture);
  // only now, so the capture sees every frame the stack sends (its ARP announcements included)
  stack = composeStack(tap, new SystemClock(), '10.0.0.2/24');
});

afterAll(() => {
  try {
    stack?.close();
    tap?.close();
    capture?.kill('SIGKILL');
  } finally {
    ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
});

async function ping(args: string[], timeoutMs = 30_000): Promise<RunResult> {
  return ns!.run('ping', [...args, '10.0.0.2'], timeoutMs);
}

/** The requests ping sent (more than -c when it waited for a late reply: test/support/ping.ts). */
function transmitted(run: RunResult): number {
  return Number(run.stdout.match(/(\d+) packets transmitted/)?.[1] ?? NaN);
}

/** Waits (10 s at most) for the stack to catch up with what the kernel sent; the caller checks. */
async function until(done: () => boolean): Promise<void> {
  for (const end = Date.now() + 10_000; !done() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
}

/** How many echo requests the kernel sent us in all (each must get one reply: see the tshark test). */
let requestsSent = 0;

describe('the kernel pings our stack', () => {
  it('ping -c 5: 0% loss', async () => {
    const run = await ping([...pingCount(5), '-i', '0.2']);
    expectEveryRequestAnswered(run, 5);
    requestsSent += transmitted(run);
  });

  it('ping -s 0 and -s 1 (no timestamp, odd length): 0% loss', async () => {
    for (const size of ['0', '1']) {
      const run = await ping([...pingCount(3), '-i', '0.2', '-s', size]);
      expectEveryRequestAnswered(run, 3, `ping -s ${size}`);
      requestsSent += transmitted(run);
    }
  });

  it('ping -s 1472, the largest unfragmented: 0% loss, no reassembly', async () => {
    const before = stack!.ip.counters.get('reasm_ok');
    const run = await ping([...pingCount(3), '-i', '0.2', '-s', '1472', '-M', 'do']);
    expectEveryRequestAnswered(run, 3);
    requestsSent += transmitted(run);
    expect(run.stdout).toMatch(/1480 bytes from 10\.0\.0\.2/);
    expect(stack!.ip.counters.get('reasm_ok')).toBe(before);
  });

  it('ping -s 4000: fragmented both ways, 0% loss', async () => {
    const reasm = stack!.ip.counters.get('reasm_ok');
    const frags = stack!.ip.counters.get('tx_fragments');
    const run = await ping([...pingCount(5), '-i', '0.2', '-s', '4000']);
    expectEveryRequestAnswered(run, 5);
    const sent = transmitted(run);
    requestsSent += sent;
    expect(run.stdout).toMatch(/4008 bytes from 10\.0\.0\.2/);
    // each request reassembled once and each reply cut in three (a late reply makes ping send more than 5)
    await until(() => stack!.ip.counters.get('reasm_ok') - reasm === sent);
    expect(stack!.ip.counters.get('reasm_ok') - reasm).toBe(sent);
    expect(stack!.ip.counters.get('tx_fragments') - frags).toBe(3 * sent);
  });

  it('ping -f -c 2000: 0% loss', async () => {
    // A flood prints a dot per request, not a line per reply, and keeps more than one request out
    // when a reply is late: so ping's own count says only that 2000 replies came (with -w it waits
    // for them), and the loss check is ours: every request ping sent reached the stack and was
    // answered (the counters), and the capture shows each answer on the wire (the tshark test).
    const requests = stack!.icmp.counters.get('rx_echo_requests');
    const replies = stack!.icmp.counters.get('tx_echo_replies');
    const run = await ping(['-f', ...pingCount(2000)], (PING_DEADLINE_S + 30) * 1000);
    // (more than 2000 when late replies came together: ping counts what it read before it stops)
    expect(Number(run.stdout.match(/\d+ packets transmitted, (\d+) received,/)?.[1]), run.stdout + run.stderr).toBeGreaterThanOrEqual(2000);
    expect(run.status).toBe(0);
    const sent = transmitted(run);
    requestsSent += sent;
    // the requests still in flight when ping stopped are answered after it: wait for them
    await until(() => stack!.icmp.counters.get('tx_echo_replies') - replies === sent);
    expect(stack!.icmp.counters.get('rx_echo_requests') - requests).toBe(sent);
    expect(stack!.icmp.counters.get('tx_echo_replies') - replies).toBe(sent);
  });
});

describe('our stack pings the kernel', () => {
  it('ping 10.0.0.1 from 10.0.0.2: 0% loss', async () => {
    // (timeoutMs: how long ours waits after its last request for a late reply; it ends at the last one)
    const lines: string[] = [];
    const summary = await stack!.icmp.ping(HOST, { count: 5, intervalMs: 100, timeoutMs: 10_000, size: 56 });
    lines.push(formatPingSummary(summary));
    expect(summary).toMatchObject({ transmitted: 5, received: 5, errors: 0, lossPercent: 0 });
    expect(lines[0]).toMatch(/5 packets transmitted, 5 received, 0% packet loss/);
    expect(summary.rtt!.maxMs).toBeGreaterThan(0);
    const big = await stack!.icmp.ping(HOST, { count: 3, intervalMs: 100, timeoutMs: 10_000, size: 4000 });
    expect(big.received).toBe(3);
  });
});

describe('tshark on the host side', () => {
  it('decodes every frame we sent, none malformed, IP and ICMP checksums valid', async () => {
    // Quiet the stack first (ARP keeps probing its neighbours), so the count below is final.
    stack!.close();
    const txFrames = tap!.counters.get('tx_frames');
    // until the capture holds as many frames from us as we sent (15 s at most; checked below)
    for (const end = Date.now() + 15_000; framesFromUs() < txFrames && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
    capture!.kill('SIGINT');
    await new Promise<void>((resolve) => {
      if (capture!.exitCode !== null) resolve();
      else capture!.on('exit', () => resolve());
    });
    // IP header checksums are only verified when asked; tshark's ICMP dissector always verifies
    // (tshark 4.0 has no icmp.check_checksum preference), and checks the reassembled message.
    const checks = ['-o', 'ip.check_checksum:TRUE'];
    const ours = `eth.src == ${STACK_MAC}`;
    const count = async (filter: string): Promise<number> => {
      const r = await ns!.run('tshark', ['-r', captureFile, ...checks, '-Y', filter, '-T', 'fields', '-e', 'frame.number'], 60_000);
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.split('\n').filter(Boolean).length;
    };
    const sent = await count(ours);
    const bad = await count(
      `${ours} && (_ws.malformed || _ws.expert.severity == "Error" || ip.checksum.status == "Bad" || icmp.checksum.status == "Bad")`,
    );
    // A fragmented message shows as ICMP once, on the frame that completes it (tshark reassembles).
    const replies = await count(`${ours} && icmp.type == 0 && icmp.checksum.status == "Good" && ip.checksum.status == "Good"`);
    const requests = await count(`${ours} && icmp.type == 8 && icmp.checksum.status == "Good" && ip.checksum.status == "Good"`);
    expect(bad).toBe(0);
    // (tcpdump's exit lines say whether the kernel dropped frames before it could write them)
    const said = `tcpdump: ${captureErr.trim().split('\n').slice(-3).join(' / ')}`;
    // one reply to each of the kernel's pings (at least 5 + 3 + 3 + 3 + 5 + 2000: more when a late
    // reply made ping send more), our own requests (5 + 3)
    expect(requestsSent).toBeGreaterThanOrEqual(2019);
    expect(replies, said).toBe(requestsSent);
    expect(requests, said).toBe(8);
    // the capture saw as many frames from our MAC as the link says it sent
    expect(sent, said).toBe(txFrames);
  });
});
