/**
 * UDP against the real Linux kernel. A namespace of our own holds the TAP device; the kernel's
 * side is 10.0.0.1/24, our stack is 10.0.0.2. Kernel tools (socat, a tiny python3 client) talk
 * to an echo service in our stack and to a closed port; tcpdump records the wire and tshark
 * checks every UDP checksum on it. The namespace is removed afterwards, also on failure.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPcap, TapDevice } from '@tapstack/link';
import { Netns, requireE2eCapabilities, requireTools } from '../../../test/support/netns.ts';
import { tsharkFields } from '../../../test/support/tshark.ts';
import { closedPortProbe } from '../../../test/support/udp-probe.ts';
import { serveUdpEcho, startHandWiredStack, type HandWiredStack } from './support/hand-wired-stack.ts';

const ECHO_PORT = 7777;
const CLOSED_PORT = 9;

/** An ICMP destination unreachable (type 3) from 10.0.0.2 in an Ethernet/IPv4 frame. */
function isOurUnreachable(frame: Uint8Array): boolean {
  if (frame.length < 34 || frame[12] !== 0x08 || frame[13] !== 0x00 || frame[23] !== 1) return false;
  const from = frame.subarray(26, 30).join('.');
  return from === '10.0.0.2' && frame[14 + (frame[14]! & 0x0f) * 4] === 3;
}

/**
 * Waits (10 s at most) until the capture tcpdump is writing (-U: a record as each frame comes)
 * holds our port unreachable, the last frame the tests cause: tcpdump writes in order, so every
 * frame before it is in the file too. A fixed pause before stopping it lost the last frames when
 * tcpdump was off the CPU that long.
 */
async function untilCaptured(file: string): Promise<void> {
  for (const end = Date.now() + 10_000; Date.now() < end; ) {
    try {
      if (readPcap(readFileSync(file)).some((r) => isOurUnreachable(r.frame))) return;
    } catch {
      // a record half-written: read again
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('UDP against the Linux kernel', () => {
  let ns: Netns;
  let stack: HandWiredStack;
  let dir: string;
  let capture: ReturnType<Netns['spawn']>;
  let captureFile: string;

  beforeAll(async () => {
    requireE2eCapabilities();
    requireTools(['socat', 'python3', 'tcpdump']);
    dir = mkdtempSync(join(tmpdir(), 'tapstack-udp-'));
    captureFile = join(dir, 'wire.pcap');
    ns = Netns.create('udp');
    try {
      const tap = TapDevice.open({ name: 'tap0', netns: ns.name });
      tap.configureHost({ address: '10.0.0.1/24', up: true });
      stack = startHandWiredStack(tap, '10.0.0.2/24');
      serveUdpEcho(stack.udp, ECHO_PORT);
      capture = ns.spawn('tcpdump', ['-i', 'tap0', '--immediate-mode', '-s', '2048', '-U', '-n', '-w', captureFile], { stdio: ['ignore', 'ignore', 'pipe'] });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('tcpdump did not start listening on tap0')), 10_000);
        capture.stderr!.on('data', (d: Buffer) => {
          if (d.toString().includes('listening on')) {
            clearTimeout(timer);
            resolve();
          }
        });
        capture.on('exit', (code) => reject(new Error(`tcpdump exited early with ${code}`)));
      });
    } catch (err) {
      ns.destroy();
      throw err;
    }
  });

  afterAll(() => {
    stack?.close();
    ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('echoes a short datagram back to socat', async () => {
    const r = await ns.run('sh', ['-c', `printf 'hello tapstack' | socat -t 2 - UDP4:10.0.0.2:${ECHO_PORT}`]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hello tapstack');
  });

  it('echoes an 8000-byte datagram (fragmented both ways) back byte for byte', async () => {
    const data = Buffer.alloc(8000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >>> 8)) & 0xff;
    const input = join(dir, 'big.bin');
    const output = join(dir, 'big.out');
    writeFileSync(input, data);
    // stdin, not OPEN:file: socat's second direction would write the echo into the file itself
    const r = await ns.run('sh', ['-c', `socat -t 2 -b 65536 - UDP4:10.0.0.2:${ECHO_PORT} < ${input} > ${output}`]);
    expect(r.status).toBe(0);
    const back = readFileSync(output);
    expect(back.length).toBe(8000);
    expect(back.equals(data)).toBe(true);
    expect(stack.udp.counters.get('rx_datagrams')).toBeGreaterThanOrEqual(2);
  });

  it('echoes to nc -u too', async () => {
    const r = await ns.run('sh', ['-c', `printf 'via netcat' | timeout 3 nc -u -w 1 10.0.0.2 ${ECHO_PORT}; true`]);
    expect(r.stdout).toBe('via netcat');
  });

  it('makes the kernel sender see "Connection refused" for a closed port', async () => {
    const before = stack.udp.counters.get('tx_port_unreachable');
    const r = await ns.run('python3', ['-c', closedPortProbe('AF_INET', '10.0.0.2', CLOSED_PORT)]);
    expect(r.stdout.trim()).toBe('Connection refused 111');
    expect(stack.udp.counters.get('tx_port_unreachable')).toBe(before + 1);
  });

  it('tshark finds every UDP checksum on the wire valid, ours and the kernel\'s', async () => {
    // let tcpdump write the last frame, then stop it (the checks below say what is missing)
    await untilCaptured(captureFile);
    capture.kill('SIGINT');
    await new Promise((r) => capture.once('exit', r));
    // one row per UDP header: icmp.type (empty unless quoted in an ICMP error), ip.src, udp.length, status
    const all = tsharkFields(captureFile, ['icmp.type', 'ip.src', 'udp.length', 'udp.checksum.status'], { filter: 'udp', prefs: ['udp.check_checksum:TRUE'] });
    const fields = all.map((r) => r.join(' ')).join('\n');
    const rows = all.filter((r) => r[0] === '').map((r) => r.slice(1));
    const fromUs = rows.filter((r) => r[0] === '10.0.0.2');
    const fromKernel = rows.filter((r) => r[0] === '10.0.0.1');
    // hello, 8000 bytes, netcat: three each way (and the closed-port probe from the kernel)
    expect(fromUs.length, fields).toBeGreaterThanOrEqual(3);
    expect(fromKernel.length, fields).toBeGreaterThanOrEqual(4);
    expect(fromUs.map((r) => r[1])).toContain('8008');
    for (const r of rows) expect(r[2], `checksum status of ${r.join(' ')}`).toBe('1'); // 1 = Good
    // and our port unreachable is on the wire: type 3, code 3, a good ICMP checksum (tshark always checks it)
    const icmp = tsharkFields(captureFile, ['icmp.type', 'icmp.code', 'icmp.checksum.status', 'udp.dstport'], { filter: 'icmp && ip.src == 10.0.0.2' });
    expect(icmp).toEqual([['3', '3', '1', `${CLOSED_PORT}`]]);
  });
});
