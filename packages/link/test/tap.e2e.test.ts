/**
 * TapDevice against the real kernel. Every device lives in a network namespace this file
 * creates (and deletes in afterAll, also on failure); only 10.0.0.0/24 is used, inside it.
 * Fails, never skips, without root, /dev/net/tun or the tools.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Netns, requireE2eCapabilities } from '../../../test/support/netns.ts';
import { runTsSnippet, spawnTsSnippet } from '../../../test/support/subprocess.ts';
import { Watched } from '../../../test/support/watch.ts';
import { buildEthernetFrame, EtherType } from '../src/ethernet.ts';
import { formatIpv4, ipv4, readIpv4, writeIpv4 } from '../src/ipv4-address.ts';
import type { Link } from '../src/link.ts';
import { MacAddress } from '../src/mac.ts';
import { readPcap, withCapture } from '../src/pcap.ts';
import { TapDevice, TapError } from '../src/tap.ts';

const HOST_IP = ipv4('10.0.0.1');
const STACK_IP = ipv4('10.0.0.2');

interface ArpFields {
  operation: number;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
}

/** Reads an Ethernet/IPv4 ARP packet by hand (the ARP codec lives in @tapstack/arp, above us). */
function arpOf(frame: Uint8Array): ArpFields | undefined {
  if (frame.length < 42 || frame[12] !== 0x08 || frame[13] !== 0x06) return undefined;
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (v.getUint16(14) !== 1 || v.getUint16(16) !== 0x0800 || frame[18] !== 6 || frame[19] !== 4) return undefined;
  return {
    operation: v.getUint16(20),
    senderMac: MacAddress.fromBytes(frame, 22).toString(),
    senderIp: formatIpv4(readIpv4(frame, 28)),
    targetMac: MacAddress.fromBytes(frame, 32).toString(),
    targetIp: formatIpv4(readIpv4(frame, 38)),
  };
}

/** A gratuitous ARP request: "10.0.0.2 is at <mac>", sender and target IP both the announced one. */
function gratuitousArp(mac: MacAddress, ip: number): Uint8Array {
  const arp = new Uint8Array(28);
  const v = new DataView(arp.buffer);
  v.setUint16(0, 1); // Ethernet
  v.setUint16(2, 0x0800); // IPv4
  arp[4] = 6;
  arp[5] = 4;
  v.setUint16(6, 1); // request
  mac.writeTo(arp, 8);
  writeIpv4(arp, 14, ip as ReturnType<typeof ipv4>);
  writeIpv4(arp, 24, ip as ReturnType<typeof ipv4>);
  return buildEthernetFrame({ destination: MacAddress.BROADCAST, source: mac, etherType: EtherType.ARP }, arp);
}

/** Resolves with the first frame `match` accepts, from the link's receiver; rejects after timeoutMs. */
function waitForFrame(link: Link, match: (frame: Uint8Array) => boolean, timeoutMs = 10_000): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      link.setReceiver(undefined);
      reject(new Error(`no matching frame within ${timeoutMs} ms`));
    }, timeoutMs);
    link.setReceiver((frames) => {
      for (const f of frames) {
        if (match(f)) {
          clearTimeout(timer);
          link.setReceiver(undefined);
          resolve(f);
          return;
        }
      }
    });
  });
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('TapDevice in a network namespace', () => {
  let ns: Netns;
  let tap: TapDevice;
  const dir = mkdtempSync(join(tmpdir(), 'tapstack-link-e2e-'));

  beforeAll(() => {
    requireE2eCapabilities();
    ns = Netns.create('link');
  });

  afterAll(() => {
    tap?.close();
    ns?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('opens tap0 inside the namespace and configures the host side there (not in ours)', () => {
    tap = TapDevice.open({ name: 'tap0', netns: ns.name, mac: MacAddress.parse('02:00:00:00:0b:02') });
    expect(tap.ifname).toBe('tap0');
    expect(tap.netns).toBe(ns.name);
    tap.configureHost({ address: '10.0.0.1/24', mtu: 1500 });
    const shown = ns.exec('ip', ['-o', '-4', 'addr', 'show', 'dev', 'tap0']);
    expect(shown).toMatch(/inet 10\.0\.0\.1\/24 brd 10\.0\.0\.255/);
    const link = ns.exec('ip', ['-o', 'link', 'show', 'dev', 'tap0']);
    expect(link).toMatch(/<[^>]*\bUP\b[^>]*>/);
    expect(link).toMatch(/mtu 1500/);
    expect(link).toContain(`link/ether ${tap.hostMac}`);
    // the root namespace has no tap0 from us
    const root = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
    expect(root).not.toContain(`link/ether ${tap.hostMac}`);
  });

  it('receives the ARP requests the kernel sends when it pings 10.0.0.2', async () => {
    const request = waitForFrame(tap, (f) => arpOf(f)?.operation === 1);
    const ping = ns.run('ping', ['-c', '1', '-W', '1', '10.0.0.2']);
    const frame = await request;
    const arp = arpOf(frame)!;
    expect(MacAddress.fromBytes(frame, 0).isBroadcast).toBe(true);
    expect(MacAddress.fromBytes(frame, 6).toString()).toBe(tap.hostMac.toString());
    expect(arp).toEqual({
      operation: 1,
      senderMac: tap.hostMac.toString(),
      senderIp: '10.0.0.1',
      targetMac: '00:00:00:00:00:00',
      targetIp: '10.0.0.2',
    });
    expect(frame.length).toBe(42); // not padded on a TAP device
    const result = await ping;
    expect(result.status).not.toBe(0); // nobody answers yet
    expect(tap.counters.get('rx_frames')).toBeGreaterThan(0);
    expect(tap.tapCounters.get('rx_batches')).toBeGreaterThan(0);
  });

  it('sends a gratuitous ARP that the kernel sees (tcpdump) and learns (ip neigh, arp_accept=1)', async () => {
    ns.exec('sysctl', ['-q', '-w', 'net.ipv4.conf.tap0.arp_accept=1']);
    ns.exec('ip', ['neigh', 'flush', 'dev', 'tap0']);
    const dump = ns.spawn('tcpdump', ['-i', 'tap0', '-n', '-e', '-l', '-c', '1', 'arp', 'and', 'ether', 'src', tap.mac.toString()], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let dumped = '';
    let dumpErr = '';
    dump.stdout!.on('data', (d: Buffer) => (dumped += d.toString()));
    dump.stderr!.on('data', (d: Buffer) => (dumpErr += d.toString()));
    const dumpDone = new Promise<number | null>((r) => dump.on('close', (code) => r(code)));
    await until('tcpdump to listen', () => (dumpErr.includes('listening on') ? true : undefined), 10_000);

    const tx = tap.counters.get('tx_frames');
    expect(tap.send(gratuitousArp(tap.mac, STACK_IP))).toBe(true);
    expect(tap.counters.get('tx_frames')).toBe(tx + 1);

    expect(await dumpDone).toBe(0);
    expect(dumped).toContain(`${tap.mac} > ff:ff:ff:ff:ff:ff`);
    expect(dumped).toMatch(/Request who-has 10\.0\.0\.2 tell 10\.0\.0\.2/);

    const neigh = await until('the kernel to learn 10.0.0.2', () => {
      const out = ns.exec('ip', ['neigh', 'show', '10.0.0.2', 'dev', 'tap0']);
      return out.includes('lladdr') ? out : undefined;
    });
    expect(neigh).toContain(`lladdr ${tap.mac}`);
  });

  it('refuses frames longer than mtu + 14 and counts them', () => {
    expect(tap.send(new Uint8Array(tap.mtu + 15))).toBe(false);
    expect(tap.counters.get('tx_dropped_too_big')).toBe(1);
  });

  it('refuses a second open of the same name in the same namespace with a clear EBUSY', () => {
    let error: unknown;
    try {
      TapDevice.open({ name: 'tap0', netns: ns.name }).close();
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(TapError);
    expect((error as TapError).code).toBe('EBUSY');
    expect((error as TapError).message).toMatch(/tap0.*busy.*pick another name/s);
    // a name that belongs to a device of another kind
    let lo: unknown;
    try {
      TapDevice.open({ name: 'lo', netns: ns.name }).close();
    } catch (err) {
      lo = err;
    }
    expect((lo as TapError).code).toBe('EBUSY');
    expect((lo as TapError).message).toMatch(/not a TAP device/);
    // both name the flag a tapstack user types
    expect((error as TapError).message).toContain('--tap tap1');
    expect((lo as TapError).message).toContain('--tap tap1');
  });

  it('opens tap0 in another namespace at the same time: the names do not collide across namespaces', () => {
    const other = Netns.create('link2');
    try {
      const second = TapDevice.open({ name: 'tap0', netns: other.name });
      expect(second.ifname).toBe('tap0');
      expect(second.hostMac.equals(tap.hostMac)).toBe(false);
      second.close();
    } finally {
      other.destroy();
    }
  });

  it('says which namespace is missing', () => {
    let error: unknown;
    try {
      TapDevice.open({ netns: `tapstack-missing-${process.pid}` }).close();
    } catch (err) {
      error = err;
    }
    expect((error as TapError).code).toBe('ENOENT_NETNS');
    expect((error as TapError).message).toMatch(/ip netns add tapstack-missing-/);
    // the addon names the path it tried, not a placeholder
    expect((error as TapError).syscall).toBe(`open(/run/netns/tapstack-missing-${process.pid})`);
    expect((error as TapError).message).not.toContain('<netns>');
  });

  it('without CAP_NET_ADMIN fails with EPERM and says to run as root', async () => {
    const code = `
      import { TapDevice } from '@tapstack/link';
      try { TapDevice.open({ name: 'tapperm' }).close(); console.log(JSON.stringify({ opened: true })); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
    // inside the namespace, with CAP_NET_ADMIN removed from the bounding set (so also from root)
    const result = await ns.run('setpriv', ['--bounding-set=-net_admin', process.execPath, '--import', 'tsx', '--input-type=module', '-e', code]);
    expect(result.stderr).toBe('');
    const out = JSON.parse(result.stdout) as { code?: string; message?: string };
    expect(out.code).toBe('EPERM');
    expect(out.message).toMatch(/not permitted.*root/);
  });

  it('closes when the device is deleted under it, recording why', async () => {
    const doomed = TapDevice.open({ name: 'tapdel', netns: ns.name });
    let closed = false;
    doomed.onClose(() => (closed = true));
    ns.exec('ip', ['link', 'del', 'tapdel']);
    await until('the device to notice', () => (closed ? true : undefined));
    expect(doomed.failure?.code).toBe('EIO');
    // the kernel's reason, not libuv's EBADF for POLLERR: the tun driver says EBADFD once the
    // device is gone, and the addon checked that the interface no longer exists
    expect(doomed.failure?.errno).toBe('EBADFD');
    expect(doomed.failure?.message).toMatch(new RegExp(`TAP device tapdel in network namespace ${ns.name} was deleted \\(ip link del tapdel, or its namespace removed\\)`));
    expect(doomed.send(new Uint8Array(60))).toBe(false);
  });

  it('records a capture that tshark reads without errors, with every frame in and out', async () => {
    const file = join(dir, 'capture.pcap');
    const capture = withCapture(tap, file);
    const request = waitForFrame(capture, (f) => arpOf(f)?.operation === 1);
    ns.exec('ip', ['neigh', 'flush', 'dev', 'tap0']);
    const ping = ns.run('ping', ['-c', '1', '-W', '1', '10.0.0.2']);
    await request;
    capture.send(gratuitousArp(tap.mac, STACK_IP));
    await ping;
    const records = capture.writer.records;
    expect(records).toBeGreaterThanOrEqual(2);
    expect(readPcap(readFileSync(file)).length).toBe(records);

    const read = ns.exec('sh', ['-c', `tshark -r ${file} -T fields -e frame.len -e arp.src.proto_ipv4 -e arp.dst.proto_ipv4 2>&1; echo "exit=$?"`]);
    expect(read).toMatch(/exit=0\s*$/);
    expect(read).not.toMatch(/cut short|corrupt|error|malformed/i);
    const lines = read.split('\n').filter((l) => /^\d+\t/.test(l));
    expect(lines.length).toBe(records);
    expect(lines).toContain('42\t10.0.0.1\t10.0.0.2'); // the kernel's request, received
    expect(lines).toContain('42\t10.0.0.2\t10.0.0.2'); // our gratuitous ARP, sent
    // a wrapper passes through; restore the plain receiver slot for the next test
    tap.setReceiver(undefined);
  });

  it('close() ends the frames() iterator and removes the device', async () => {
    const seen: number[] = [];
    const loop = (async () => {
      for await (const f of tap.frames()) seen.push(f.length);
      return 'ended';
    })();
    await new Promise((r) => setTimeout(r, 50));
    tap.close();
    await expect(loop).resolves.toBe('ended');
    expect(tap.closed).toBe(true);
    expect(tap.send(new Uint8Array(60))).toBe(false);
    expect(() => ns.exec('ip', ['link', 'show', 'dev', 'tap0'])).toThrow();
  });
});

describe('TapDevice and the life of the process', () => {
  let ns: Netns;
  beforeAll(() => {
    requireE2eCapabilities();
    ns = Netns.create('linkproc');
  });
  afterAll(() => ns?.destroy());

  const open = (name: string) =>
    `import { TapDevice } from '@tapstack/link'; const tap = TapDevice.open({ name: '${name}', netns: process.env.TAP_NETNS }); console.log('open', tap.ifname);`;

  it('an open device keeps the process alive (ref is the default)', async () => {
    // Timed from the moment it says the device is open, not from its start: starting node and tsx
    // took 3 s and more on a loaded machine. A process with nothing keeping its loop alive ends
    // within milliseconds of its last line; still running a second later is being kept alive.
    const run = new Watched(spawnTsSnippet(open('tapref'), { ...process.env, TAP_NETNS: ns.name }));
    try {
      await run.waitFor(/open tapref\n/, 30_000);
      await new Promise((r) => setTimeout(r, 1_000));
      expect(run.child.exitCode, run.output).toBeNull();
      expect(run.child.signalCode, run.output).toBeNull();
    } finally {
      await run.stop('SIGKILL');
    }
  });

  it('unref() lets the process exit with the device open', async () => {
    process.env.TAP_NETNS = ns.name;
    const r = await runTsSnippet(`${open('tapunref')} tap.unref();`, { timeoutMs: 15_000 });
    expect(r.stderr).toBe('');
    expect(r.timedOut).toBe(false);
    expect(r.status).toBe(0);
  });

  it('close() leaves nothing that keeps the process alive', async () => {
    process.env.TAP_NETNS = ns.name;
    const r = await runTsSnippet(`${open('tapclose')} setTimeout(() => tap.close(), 100);`, { timeoutMs: 15_000 });
    expect(r.stderr).toBe('');
    expect(r.timedOut).toBe(false);
    expect(r.status).toBe(0);
  });
});
