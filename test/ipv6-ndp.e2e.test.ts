/**
 * NDP and MLD against the kernel and the NDP tools, each in a network namespace of its own
 * (deleted afterwards, also on failure); fd00:10::/64 only:
 *  - `tapstack up` answers ndisc6 (our MAC); our router solicitations are on the wire; radvd
 *    advertises a prefix, hop limit 42, timers and MTU 1400: rdisc6 reads that RA, and the stack
 *    applies it (ping -6 shows ttl=42, our replies are cut into fragments of at most 1400 bytes);
 *    `tapstack ping -6 ff02::1%tap0` prints the zone like iputils and gets the kernel's answer;
 *  - a Linux bridge with multicast snooping as the MLD querier: our stack, on a port of it,
 *    answers the kernel's general query with a Current State report (MODE_IS_EXCLUDE), and the
 *    bridge's own multicast table lists our solicited-node group on that port.
 * tcpdump captures; tshark decodes the capture and must find nothing malformed.
 * Fails, never skips, without root, /dev/net/tun or the tools.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MacAddress, TapDevice } from '@tapstack/link';
import { createStack, type Stack } from '@tapstack/stack';
import { Netns, requireE2eCapabilities, requireTools } from './support/netns.ts';
import { tsharkFields, tsharkFrames } from './support/tshark.ts';
import { parseCounters, spawnTapstack } from './support/watch.ts';

let dir = '';

beforeAll(() => {
  requireE2eCapabilities();
  requireTools(['ndisc6', 'rdisc6', 'radvd', 'tcpdump', 'tshark', 'bridge']);
  dir = mkdtempSync(join(tmpdir(), 'tapstack-ndpfin-'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** tcpdump in the namespace writing `file`, resolved once it listens. */
async function capture(ns: Netns, device: string, file: string, filter = 'ip6'): Promise<{ stop(): Promise<void> }> {
  const dump = ns.spawn('tcpdump', ['-i', device, '-n', '-U', '--immediate-mode', '-w', file, filter], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 10_000);
    dump.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        dump.once('exit', () => resolve());
        dump.kill('SIGINT');
      }),
  };
}

/** tshark over a capture: `fields` of each packet matching `filter`, joined with `|`. */
function tshark(file: string, filter: string, fields: string[]): string[] {
  return tsharkFields(file, fields, { filter }).map((row) => row.join('|'));
}

describe('tapstack up against ndisc6, rdisc6 and radvd', () => {
  it('ndisc6 gets our MAC; our RS is on the wire; radvd\'s RA (rdisc6 reads it) sets our hop limit, timers and MTU', async () => {
    const ns = Netns.create('ndpfin-up');
    try {
      const up = spawnTapstack(ns, ['up', '--tap', 'tap0', '--mac', '02:00:00:00:00:02']);
      try {
        await up.waitFor(/IPv6: fd00:10::2\/64, fe80::ff:fe00:2%tap0/, 30_000);
        const pcap = join(dir, 'up.pcap');
        const dump = await capture(ns, 'tap0', pcap);
        const r = await ns.run('ndisc6', ['-1', '-r', '3', '-w', '1000', 'fd00:10::2', 'tap0'], 15_000);
        expect(r.stdout).toMatch(/Target link-layer address: 02:00:00:00:00:02/i);
        // our router solicitations: three, 4 s apart, the first just after DAD; wait for one in the capture
        // (the kernel's own tap0 solicits routers too: wait for ours, from fe80::ff:fe00:2)
        const ourRs = 'icmpv6.type == 133 && ipv6.src == fe80::ff:fe00:2';
        for (let i = 0; i < 60 && tshark(pcap, ourRs, ['ipv6.src']).length === 0; i++) await sleep(200);
        expect(tshark(pcap, 'icmpv6.type == 133', ['ipv6.src', 'ipv6.dst', 'ipv6.hlim'])).toContain('fe80::ff:fe00:2|ff02::2|255');
        // radvd as the router (forwarding on, in this namespace only)
        const conf = join(dir, 'radvd.conf');
        writeFileSync(
          conf,
          'interface tap0 {\n  AdvSendAdvert on;\n  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 4;\n  AdvCurHopLimit 42;\n  AdvReachableTime 20000;\n  AdvRetransTimer 2000;\n  AdvLinkMTU 1400;\n' +
            '  prefix fd00:10:0:1::/64 { AdvOnLink on; AdvAutonomous on; };\n};\n',
        );
        ns.exec('sysctl', ['-q', '-w', 'net.ipv6.conf.all.forwarding=1']);
        const radvd = ns.spawn('radvd', ['-n', '-C', conf, '-p', join(dir, 'radvd.pid'), '-m', 'stderr'], { stdio: ['ignore', 'ignore', 'pipe'] });
        try {
          const rd = await ns.run('rdisc6', ['-1', '-r', '5', '-w', '2000', 'tap0'], 20_000);
          expect(rd.stdout).toMatch(/Hop limit\s*:\s*42/);
          expect(rd.stdout).toMatch(/MTU\s*:\s*1400 bytes/);
          expect(rd.stdout).toMatch(/Prefix\s*:\s*fd00:10:0:1::\/64/);
          // the stack took the RA: replies leave with hop limit 42, in fragments of at most 1400 bytes
          let ping = '';
          for (let i = 0; i < 20 && !/ttl=42/.test(ping); i++) {
            ping = (await ns.run('ping', ['-6', '-c', '1', '-W', '2', '-s', '2000', 'fd00:10::2'], 10_000)).stdout;
            if (!/ttl=42/.test(ping)) await sleep(500);
          }
          expect(ping).toMatch(/2008 bytes from fd00:10::2: icmp_seq=1 ttl=42/);
        } finally {
          radvd.kill('SIGKILL');
        }
        await dump.stop();
        const fragments = tshark(pcap, 'ipv6.src == fd00:10::2 && ipv6.nxt == 44', ['ipv6.plen', 'ipv6.hlim']);
        expect(fragments.length).toBeGreaterThanOrEqual(2);
        for (const f of fragments) {
          const [plen, hlim] = f.split('|').map(Number);
          expect(40 + plen!).toBeLessThanOrEqual(1400);
          expect(hlim).toBe(42);
        }
        expect(tsharkFrames(pcap, '_ws.malformed || _ws.expert.severity >= "error"')).toEqual([]);
        expect(await up.stop('SIGINT')).toEqual({ code: 0, signal: null });
        const counters = parseCounters(up.output);
        expect(counters.get('ndp.ra_hop_limit_set')).toBe(1);
        expect(counters.get('ndp.ra_mtu_set')).toBe(1);
        expect(counters.get('ndp.ra_reachable_time_set')).toBe(1);
        expect(counters.get('ndp.ra_retrans_timer_set')).toBe(1);
        expect(counters.get('ndp.tx_router_solicitations')).toBeGreaterThanOrEqual(1);
      } finally {
        up.child.kill('SIGKILL');
      }
      // tapstack ping -6 with a zone prints it like iputils; the kernel answers all-nodes (from the
      // address it picks for our source: its link-local one, or fd00:10::1 when we sent from fd00:10::2)
      const ping = spawnTapstack(ns, ['ping', '-6', 'ff02::1%tap0', '-c', '1', '-W', '2', '--mac', '02:00:00:00:00:02']);
      expect(await ping.exited).toEqual({ code: 0, signal: null });
      expect(ping.output).toMatch(/^PING ff02::1%tap0 \(ff02::1%tap0\) 56 data bytes$/m);
      expect(ping.output).toMatch(/^64 bytes from (fe80::[0-9a-f:]+|fd00:10::1): icmp_seq=1 ttl=64/m);
    } finally {
      ns.destroy();
    }
  }, 90_000);
});

describe('MLD against a Linux bridge as the querier', () => {
  let ns: Netns | undefined;
  let tap: TapDevice | undefined;
  let stack: Stack | undefined;

  afterAll(() => {
    try {
      stack?.close();
      tap?.close();
    } finally {
      ns?.destroy();
    }
  });

  it('the kernel\'s general query gets our Current State report, and the bridge lists our group on our port', async () => {
    ns = Netns.create('ndpfin-mld');
    // no DAD for the bridge's link-local address: the querier needs one to send from
    ns.exec('sysctl', ['-q', '-w', 'net.ipv6.conf.default.accept_dad=0']);
    ns.exec('sysctl', ['-q', '-w', 'net.ipv6.conf.all.accept_dad=0']);
    // MLDv2 queries, a 1 s maximum response delay, startup queries 2 s apart
    ns.exec('ip', ['link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '1', 'mcast_querier', '1', 'mcast_mld_version', '2', 'mcast_query_response_interval', '100', 'mcast_startup_query_interval', '200', 'mcast_startup_query_count', '5']);
    const mac = MacAddress.parse('02:00:00:00:00:02');
    tap = TapDevice.open({ name: 'tap0', netns: ns.name, mac });
    ns.exec('ip', ['link', 'set', 'tap0', 'master', 'br0']);
    ns.exec('ip', ['link', 'set', 'tap0', 'up']);
    ns.exec('ip', ['link', 'set', 'br0', 'up']);
    const pcap = join(dir, 'mld.pcap');
    const dump = await capture(ns, 'br0', pcap);
    stack = createStack({ link: tap, ip: '10.0.0.2/24', ipv6: { addresses: ['fd00:10::2/64'] } });
    stack.start();
    await stack.ndp!.settled();
    // wait (20 s at most) for a report with an is_ex record: the answer to a query (joining sends to_ex)
    const deadline = Date.now() + 20_000;
    let seen = '';
    const ours = /fe80::ff:fe00:2 > ff02::16:.*is_ex/;
    while (!ours.test(seen) && Date.now() < deadline) {
      await sleep(300);
      seen = execFileSync('tcpdump', ['-r', pcap, '-n', '-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    }
    await dump.stop();
    expect(seen).toMatch(ours);
    const answers = tshark(pcap, 'ipv6.src == fe80::ff:fe00:2 && icmpv6.type == 143 && icmpv6.mldr.mar.record_type == 2', ['ipv6.src', 'icmpv6.mldr.mar.multicast_address']);
    const queries = tshark(pcap, 'icmpv6.type == 130', ['ipv6.src', 'ipv6.dst', 'icmpv6.mld.maximum_response_code']);
    expect(queries.length).toBeGreaterThanOrEqual(1);
    expect(queries[0]).toMatch(/^fe80::[0-9a-f:]+\|ff02::1\|1000$/);
    expect(answers[0]).toBe('fe80::ff:fe00:2|ff02::1:ff00:2');
    expect(stack.ndp!.counters.get('rx_mld_general_queries')).toBeGreaterThanOrEqual(1);
    expect(tsharkFrames(pcap, '_ws.malformed || _ws.expert.severity >= "error"')).toEqual([]);
    expect(ns.exec('bridge', ['mdb', 'show', 'dev', 'br0'])).toMatch(/port tap0 grp ff02::1:ff00:2/);
  }, 60_000);
});
