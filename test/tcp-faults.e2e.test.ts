/**
 * TCP against the kernel over a wire that delays, reorders and loses, all at once (issue 14's
 * "end to end with loss, delay and reordering, integrity by hash"). This kernel has no netem, so
 * the delay and the reordering come from our own link fault injector on the TAP device
 * (`tapstack up --link-delay 5/2 --link-reorder 0.01/3`: every frame held 5 ms plus up to 2 ms
 * each way, and 1% of them held 3 ms more while later ones pass), and the loss from tc + BPF on
 * the host's side of tap0 (../shared/tools/link-loss.sh, 1% each way). The namespace holds
 * 10.0.0.0/24 only and is removed afterwards, pass or fail.
 *
 * Checked: the ping round trip carries the delay; curl's 4 MiB download and a 1 MiB echo both
 * ways arrive whole (sha256); and the counters show that every fault happened: frames held and
 * reordered by the injector, frames dropped by the BPF filter, data queued out of order and
 * segments resent by us.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectedBytes, sha256 } from './support/http-body.ts';
import { requireE2eCapabilities, requireTools } from './support/netns.ts';
import { perTest } from './support/per-test.ts';
import { parseCounters, repoRoot, spawnTapstack } from './support/watch.ts';

const { namespace, tempDir, defer } = perTest('tcp-faults');

const LINK_LOSS = join(repoRoot, '..', 'shared', 'tools', 'link-loss.sh');

beforeAll(() => {
  requireE2eCapabilities();
  requireTools(['curl', 'nc', 'ping', 'python3', 'tc']);
  if (!existsSync(LINK_LOSS)) throw new Error(`${LINK_LOSS} is missing: this test takes its wire loss from the shared link-loss tool`);
});

describe('TCP over a wire that delays, reorders and loses', () => {
  it('5 ms (+2) each way, 1% of frames held 3 ms behind later ones, 1% loss each way: a 4 MiB curl and a 1 MiB echo arrive whole', async () => {
    const ns = namespace('tcp-faults');
    const dir = tempDir();
    // --no-vnet-hdr: the injector then holds and reorders single segments, as a wire would
    const up = spawnTapstack(ns, [
      'up',
      '--no-vnet-hdr',
      '--tap',
      'tap0',
      '--ip',
      '10.0.0.2/24',
      '--host-ip',
      '10.0.0.1/24',
      '--tcp-echo',
      '7',
      '--http',
      '80',
      '--link-delay',
      '5/2',
      '--link-reorder',
      '0.01/3',
    ]);
    defer(() => void up.stop('SIGKILL'));
    await up.waitFor(/http on 10\.0\.0\.2:80/);
    expect(up.output).toMatch(/link delay: 5 ms each way plus up to 2 ms of jitter/);
    expect(up.output).toMatch(/link reorder: 1% of the frames held 3 ms while later ones pass/);

    // the delay is on the wire: no round trip under the 10 ms the two holds add (before the loss,
    // so that ping's count is exact; -w: a late reply is waited for, not counted lost)
    const ping = await ns.run('ping', ['-c', '3', '-i', '0.2', '-w', '20', '10.0.0.2'], 30_000);
    expect(ping.stdout).toMatch(/3 packets transmitted, 3 received, 0% packet loss/);
    const rttMin = Number(/rtt min\/avg\/max\/mdev = ([\d.]+)\//.exec(ping.stdout)?.[1]);
    expect(rttMin, ping.stdout).toBeGreaterThanOrEqual(10);

    ns.exec('bash', [LINK_LOSS, 'tap0', '1']);
    const file = join(dir, 'four.bin');
    const size = 4 * 1024 * 1024;
    const curl = await ns.run('curl', ['-s', '-S', '-m', '120', '-o', file, `http://10.0.0.2/bytes/${size}`], 130_000);
    expect(curl.status, curl.stderr).toBe(0);
    expect(sha256(readFileSync(file))).toBe(sha256(expectedBytes(size)));

    const random = randomBytes(1024 * 1024);
    const input = join(dir, 'in.bin');
    writeFileSync(input, random);
    const echoed = await ns.run('sh', ['-c', `nc -N -w 30 10.0.0.2 7 < ${input} | sha256sum`], 130_000);
    expect(echoed.stdout.split(' ')[0]).toBe(sha256(random));

    // the BPF filter dropped frames on their way in (tc counts those drops on the clsact qdisc)
    const qdisc = ns.exec('tc', ['-s', 'qdisc', 'show', 'dev', 'tap0']);
    expect(Number(/clsact[\s\S]*?dropped (\d+)/.exec(qdisc)?.[1]), qdisc).toBeGreaterThan(0);

    const stopMark = up.output.length;
    await up.stop('SIGINT');
    const counters = parseCounters(up.output.slice(stopMark));
    const counter = (name: string): number => counters.get(name) ?? Number.NaN;
    // the injector held every frame, and some behind later ones
    expect(counter('faults.delayed')).toBeGreaterThan(1000);
    expect(counter('faults.reordered')).toBeGreaterThan(0);
    // none dropped for a full delay line (counters are printed only when not zero)
    expect(counters.has('faults.delay_overflows'), 'faults.delay_overflows').toBe(false);
    // TCP saw it: out-of-order data queued, segments resent (loss or a late one taken for lost)
    expect(counter('tcp.TCPOFOQueue')).toBeGreaterThan(0);
    expect(counter('tcp.RetransSegs')).toBeGreaterThan(0);
  }, 300_000);
});
