/**
 * End to end: our Arp on a real TAP device, the Linux kernel on the other side of tap0, inside a
 * network namespace of our own (10.0.0.0/24 only; removed afterwards, also on failure).
 *
 *   kernel: tap0 10.0.0.1/24  <-- TAP -->  tapstack: Arp for 10.0.0.2
 */
import { EtherTypeDispatcher, SystemClock, TapDevice, ipv4 } from '@tapstack/link';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Netns, requireE2eCapabilities } from '../../../test/support/netns.ts';
import { Arp } from '../src/index.ts';

const OURS = ipv4('10.0.0.2');
const KERNEL = ipv4('10.0.0.1');

let ns: Netns | undefined;
let tap: TapDevice | undefined;
let arp: Arp;

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (condition()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return condition();
}

beforeAll(async () => {
  requireE2eCapabilities();
  ns = Netns.create('arp');
  tap = TapDevice.open({ name: 'tap0', netns: ns.name });
  tap.configureHost({ address: '10.0.0.1/24' });
  const dispatcher = new EtherTypeDispatcher(tap);
  arp = new Arp({ dispatcher, clock: new SystemClock(), addresses: [OURS] });
  await arp.start();
});

afterAll(() => {
  arp?.close();
  tap?.close();
  ns?.destroy();
});

describe('Arp against the Linux kernel on tap0', () => {
  it('resolves the kernel: our table shows its MAC REACHABLE and the waiting frame goes out', async () => {
    arp.table.remove(KERNEL); // start from nothing, whatever the kernel sent us so far
    const frame = new Uint8Array(60);
    frame[12] = 0x88; // IEEE local experimental EtherType: the kernel drops it quietly
    frame[13] = 0xb5;
    const requestsBefore = arp.counters.get('tx_requests');
    expect(arp.resolve(KERNEL, frame)).toBe('queued');
    expect(await waitFor(() => arp.table.lookup(KERNEL)?.state === 'REACHABLE', 3000)).toBe(true);
    expect(arp.table.lookup(KERNEL)?.mac?.toString()).toBe(tap!.hostMac.toString());
    expect(arp.table.show()).toContain(`10.0.0.1 dev tap0 lladdr ${tap!.hostMac} REACHABLE`);
    expect(arp.counters.get('tx_requests') - requestsBefore).toBe(1);
    expect(arp.counters.get('resolve_queued')).toBe(1);
    expect(arp.table.lookup(KERNEL)?.queued).toBe(0); // the waiting frame went out on the reply
    expect(arp.counters.get('tx_link_refused')).toBe(0);
  });

  it('arping gets 3 unicast replies with our MAC', async () => {
    const before = arp.counters.get('tx_replies');
    const r = await ns!.run('arping', ['-c', '3', '-I', 'tap0', '10.0.0.2'], 20_000);
    expect(r.stdout).toMatch(/Received 3 response\(s\)/);
    expect(r.stdout.toLowerCase()).toContain(`unicast reply from 10.0.0.2 [${tap!.mac.toString()}]`);
    expect(r.status).toBe(0);
    expect(arp.counters.get('tx_replies') - before).toBe(3);
  });

  it('arping -D (an RFC 5227 probe) gets an answer: exit status 1, address in use', async () => {
    const before = arp.counters.get('tx_probe_replies');
    const r = await ns!.run('arping', ['-D', '-c', '2', '-w', '3', '-I', 'tap0', '10.0.0.2'], 20_000);
    expect(r.stdout).toMatch(/Received 1 response\(s\)/);
    expect(r.status).toBe(1);
    expect(arp.counters.get('rx_probes')).toBeGreaterThanOrEqual(1);
    expect(arp.counters.get('tx_probe_replies') - before).toBeGreaterThanOrEqual(1);
  });

  it("after the kernel sends us traffic, its neighbour table has our MAC; ours has the kernel's", async () => {
    await ns!.run('ip', ['neigh', 'flush', 'dev', 'tap0']);
    // No IPv4 layer here, so the echo goes unanswered: ping is only the kernel's reason to ARP.
    await ns!.run('ping', ['-c', '1', '-W', '1', '10.0.0.2'], 10_000);
    const neigh = await ns!.run('ip', ['neigh', 'show', '10.0.0.2', 'dev', 'tap0']);
    expect(neigh.stdout).toMatch(new RegExp(`^10\\.0\\.0\\.2 lladdr ${tap!.mac.toString()} (REACHABLE|STALE|DELAY)`, 'm'));
    // we learned the kernel from its request (it asked for us): usable entry with its MAC
    const entry = arp.table.lookup(KERNEL);
    expect(entry?.mac?.toString()).toBe(tap!.hostMac.toString());
    expect(['REACHABLE', 'STALE', 'DELAY', 'PROBE']).toContain(entry?.state);
    expect(arp.counters.get('rx_own_mac')).toBe(0);
    expect(arp.counters.get('rx_conflicts')).toBe(0);
  });
});
