/**
 * The TAP device's NAPI mode (`tapstack up --napi --gro-flush-timeout NS`, plain frames) against
 * the real kernel, in a namespace of its own (10.0.0.0/24 only):
 *
 *   - the device's gro_flush_timeout reads back as set, in the namespace's own sysfs;
 *   - curl fetches 4 MiB whole (sha256) while the kernel's IP takes in fewer packets than the
 *     2,897 full-sized segments the body needs: GRO merged segments we wrote one per write(2)
 *     (no timing in that: without GRO every segment is an IP packet of its own);
 *   - ping and arping are still answered (small frames go through the same poll, unmerged).
 *
 * packages/link/test/napi.e2e.test.ts covers the device option itself (TapDevice.open with a
 * namespace, the checks on a wrong setting).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireE2eCapabilities, requireTools, type Netns } from './support/netns.ts';
import { expectedBytes, sha256 } from './support/http-body.ts';
import { perTest } from './support/per-test.ts';
import { spawnTapstack } from './support/watch.ts';

const { namespace, tempDir, defer } = perTest('napi');

const BODY = 4 * 1024 * 1024;
/** Full-sized segments (MSS 1460 less 12 bytes of timestamps) the body needs at least. */
const SEGMENTS = Math.ceil(BODY / 1448);

beforeAll(() => {
  requireE2eCapabilities();
  requireTools(['curl', 'ping', 'arping']);
});

/** The kernel's IP InReceives in the namespace (/proc/net/snmp: the reader's namespace). */
function ipInReceives(ns: Netns): number {
  const lines = ns.exec('cat', ['/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Ip: '));
  return Number(lines[1]!.split(' ')[lines[0]!.split(' ').indexOf('InReceives')]);
}

describe('tapstack up --napi (plain frames through the kernel NAPI poll and GRO)', () => {
  it('sets gro_flush_timeout, delivers a 4 MiB download whole in fewer IP packets than segments, and still answers ping and arping', async () => {
    const ns = namespace('napi-up');
    const dir = tempDir();
    const up = spawnTapstack(ns, [
      'up', '--no-vnet-hdr', '--napi', '--gro-flush-timeout', '50000',
      '--tap', 'tap0', '--ip', '10.0.0.2/24', '--host-ip', '10.0.0.1/24', '--http', '80',
    ]);
    defer(() => void up.stop('SIGKILL'));
    await up.waitFor(/http on 10\.0\.0\.2:80/);
    expect(ns.exec('cat', ['/sys/class/net/tap0/gro_flush_timeout']).trim()).toBe('50000');

    const before = ipInReceives(ns);
    const file = join(dir, 'body.bin');
    const curl = await ns.run('curl', ['-s', '-S', '-m', '60', '-o', file, `http://10.0.0.2/bytes/${BODY}`], 70_000);
    expect(curl.stderr).toBe('');
    expect(curl.status).toBe(0);
    expect(sha256(readFileSync(file))).toBe(sha256(expectedBytes(BODY)));
    const packets = ipInReceives(ns) - before;
    expect(packets).toBeGreaterThan(0);
    expect(packets).toBeLessThan(SEGMENTS);

    const ping = await ns.run('ping', ['-c', '3', '-i', '0.2', '-W', '2', '10.0.0.2']);
    expect(ping.stdout).toMatch(/3 packets transmitted, 3 received, 0% packet loss/);
    const arping = await ns.run('arping', ['-c', '2', '-w', '5', '-I', 'tap0', '10.0.0.2']);
    expect(arping.stdout).toMatch(/Received 2 response/);

    expect(await up.stop('SIGINT')).toEqual({ code: 0, signal: null });
  });
});
