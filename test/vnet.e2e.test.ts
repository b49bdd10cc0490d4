/**
 * The fast path against the real kernel: `tapstack up` (by default, or with --vnet-hdr) opens tap0
 * with a virtio-net header (IFF_VNET_HDR, TUN_F_CSUM | TUN_F_TSO4), so the kernel's TCP sends us super-frames of up
 * to 64 KB with partial checksums, and takes ours. Each test runs in a namespace of its own
 * (10.0.0.0/24 only) and removes it.
 *
 *   bulk:  curl fetches 4 MiB (sha256 checked), nc sends 4 MiB of random bytes through the echo
 *          port and gets them back whole, 4 MB go into the discard port; the device counted
 *          super-frames both ways (tap.rx_gso_frames, tap.tx_gso_frames) and TCP no bad checksum;
 *          the pcap holds frames longer than 1514 bytes (super-frames recorded as they are) that
 *          tshark reads.
 *   plain: ping, arping and a UDP echo (whose checksum the kernel now leaves partial: IPv4
 *          finishes it for UDP) still answer in header mode.
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireE2eCapabilities, requireTools, type Netns } from './support/netns.ts';
import { expectedBytes, sha256 } from './support/http-body.ts';
import { perTest } from './support/per-test.ts';
import { expectEveryRequestAnswered, pingCount } from './support/ping.ts';
import { parseCounters, spawnTapstack, type Watched } from './support/watch.ts';

const { namespace, tempDir, defer } = perTest('vnet');

beforeAll(() => {
  requireE2eCapabilities();
  requireTools(['curl', 'nc', 'arping', 'ethtool', 'tshark', 'python3']);
});

/** `tapstack up` with no mode flag (the header is the default), or with the extra's --vnet-hdr. */
async function upWithVnet(ns: Netns, extra: string[] = []): Promise<Watched> {
  const up = spawnTapstack(ns, ['up', '--tap', 'tap0', '--ip', '10.0.0.2/24', '--host-ip', '10.0.0.1/24', ...extra]);
  defer(() => void up.stop('SIGKILL'));
  await up.waitFor(/10\.0\.0\.2/);
  return up;
}

describe('tapstack up with the virtio-net header', () => {
  it('by default moves bulk TCP both ways in super-frames, whole (sha256), and records them in the pcap as they are', async () => {
    const ns = namespace('vnet-bulk');
    const dir = tempDir();
    const pcap = join(dir, 'vnet.pcap');
    const up = await upWithVnet(ns, ['--tcp-echo', '7', '--tcp-discard', '9', '--http', '80', '--pcap', pcap]);
    await up.waitFor(/http on 10\.0\.0\.2:80/);

    // The kernel's side offers what we asked for: it stops segmenting and checksumming for tap0.
    const features = await ns.run('ethtool', ['-k', 'tap0']);
    expect(features.stdout).toMatch(/tx-checksumming: on/);
    expect(features.stdout).toMatch(/tcp-segmentation-offload: on/);

    // down: 4 MiB from Node's http over our TCP, sent as super-frames the kernel segments
    const file = join(dir, 'down.bin');
    const curl = await ns.run('curl', ['-s', '-S', '-m', '60', '-o', file, 'http://10.0.0.2/bytes/4194304'], 70_000);
    expect(curl.stderr).toBe('');
    expect(curl.status).toBe(0);
    expect(sha256(readFileSync(file))).toBe(sha256(expectedBytes(4194304)));

    // up and back: 4 MiB of random bytes through the echo port, half-closed with -N
    const random = randomBytes(4 * 1024 * 1024);
    const input = join(dir, 'in.bin');
    writeFileSync(input, random);
    const echoed = await ns.run('sh', ['-c', `nc -N -w 10 10.0.0.2 7 < ${input} | sha256sum`], 60_000);
    expect(echoed.stdout.split(' ')[0]).toBe(sha256(random));

    // up: 4 MB into the discard port, nothing back, a clean close
    const discard = await ns.run('sh', ['-c', 'head -c 4000000 /dev/zero | nc -N -w 10 10.0.0.2 9 | wc -c'], 60_000);
    expect(discard.stdout.trim()).toBe('0');
    expect(discard.status).toBe(0);

    const stopMark = up.output.length;
    expect(await up.stop('SIGINT')).toEqual({ code: 0, signal: null });
    const counters = parseCounters(up.output.slice(stopMark));
    expect(counters.get('tap.rx_gso_frames')).toBeGreaterThan(0); // the kernel's super-frames reached us
    expect(counters.get('tap.tx_gso_frames')).toBeGreaterThan(0); // ours reached the kernel
    expect(counters.get('tap.rx_csum_partial')).toBeGreaterThan(0);
    expect(counters.get('tcp.InCsumErrors') ?? 0).toBe(0);
    expect(counters.get('tap.rx_vnet_truncated') ?? 0).toBe(0);
    expect(counters.get('tap.rx_vnet_unsupported_gso') ?? 0).toBe(0);
    // a super-frame counts as the segments it stands for: far more segments than super-frames
    expect(counters.get('tcp.InSegs')!).toBeGreaterThan(counters.get('tap.rx_gso_frames')!);

    // the capture: super-frames recorded whole (longer than any 1500-MTU frame), readable by tshark
    const lengths = execFileSync('tshark', ['-r', pcap, '-Y', 'tcp', '-T', 'fields', '-e', 'frame.len'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 * 1024 * 1024 })
      .split('\n')
      .filter(Boolean)
      .map(Number);
    expect(lengths.length).toBeGreaterThan(100);
    expect(Math.max(...lengths)).toBeGreaterThan(1514);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(65535 + 14);
  }, 180_000);

  it('still answers ping, arping and a UDP echo whose checksum the kernel left partial', async () => {
    const ns = namespace('vnet-plain');
    const up = await upWithVnet(ns, ['--vnet-hdr', '--udp-echo', '7']);

    const ping = await ns.run('ping', [...pingCount(3), '-i', '0.2', '10.0.0.2'], 40_000);
    expectEveryRequestAnswered(ping, 3);
    const big = await ns.run('ping', [...pingCount(2), '-i', '0.2', '-s', '4000', '10.0.0.2'], 40_000); // fragments, both ways
    expectEveryRequestAnswered(big, 2, 'ping -s 4000');
    const arping = await ns.run('arping', ['-c', '2', '-w', '5', '-I', 'tap0', '10.0.0.2']);
    expect(arping.stdout).toMatch(/Received 2 response/);

    // UDP from the kernel's socket goes out of tap0 with NEEDS_CSUM (tx-checksumming is on): IPv4
    // finishes the checksum before UDP sees it, so the echo comes back instead of a drop.
    const udp = await ns.run('python3', [
      '-c',
      'import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.settimeout(5)\ns.sendto(b"hello, vnet", ("10.0.0.2", 7))\nprint(s.recvfrom(100)[0].decode())',
    ]);
    expect(udp.stdout.trim()).toBe('hello, vnet');

    const stopMark = up.output.length;
    expect(await up.stop('SIGINT')).toEqual({ code: 0, signal: null });
    const counters = parseCounters(up.output.slice(stopMark));
    expect(counters.get('icmp.tx_echo_replies')).toBeGreaterThanOrEqual(5);
    expect(counters.get('tap.rx_csum_partial')).toBeGreaterThanOrEqual(1); // the UDP datagram
    expect(counters.get('udp.rx_bad_checksum') ?? 0).toBe(0);
  }, 60_000);
});
