/**
 * The table is one state machine for every protocol that uses it, as Linux's neigh_table is for
 * arp_tbl and nd_tbl: the same NUD walk, run here for IPv4 addresses (ARP's) and for a second,
 * made-up family whose addresses are strings (standing in for NDP's IPv6 addresses), so nothing in
 * the table may assume a 32-bit number.
 */
import { describe, expect, it } from 'vitest';
import { MacAddress, VirtualClock, ipv4 } from '@tapstack/link';
import { IPV4_NEIGHBOUR_FAMILY, NeighbourTable, type NeighbourFamily } from '../src/index.ts';

const MAC = MacAddress.parse('02:00:00:00:0a:01');
const TEXT_FAMILY: NeighbourFamily<string> = { key: (a) => a, format: (a) => a.toLowerCase() };

function walk<A>(family: NeighbourFamily<A>, address: A, printed: string): void {
  const clock = new VirtualClock();
  const solicits: string[] = [];
  const sent: Uint8Array[] = [];
  const failed: A[] = [];
  const table = new NeighbourTable<A>({
    clock,
    random: () => 0.5,
    device: 'eth0',
    family,
    hooks: {
      solicit: (a, unicastTo) => solicits.push(`${family.format(a)} ${unicastTo ? 'unicast' : 'broadcast'}`),
      sendTo: (frame) => sent.push(frame) > 0,
      failed: (a) => failed.push(a),
    },
  });
  // INCOMPLETE: the frame waits, a broadcast solicitation goes out, then two more a second apart
  expect(table.output(address, new Uint8Array(20))).toBe('queued');
  expect(table.lookup(address)?.state).toBe('INCOMPLETE');
  clock.advance(3000);
  expect(table.lookup(address)?.state).toBe('FAILED');
  expect(solicits).toEqual([`${printed} broadcast`, `${printed} broadcast`, `${printed} broadcast`]);
  expect(failed).toEqual([address]);
  // an answer: REACHABLE, sending works at once
  table.update(address, MAC, { state: 'REACHABLE', override: 'always', create: true });
  expect(table.output(address, new Uint8Array(20))).toBe('sent');
  // reachable_time (30 s x 0.5..1.5, here 1.0) runs out: STALE; used: DELAY; 5 s later: PROBE
  clock.advance(30_001);
  expect(table.lookup(address)?.state).toBe('STALE');
  table.output(address, new Uint8Array(20));
  expect(table.lookup(address)?.state).toBe('DELAY');
  clock.advance(5_000);
  expect(table.lookup(address)?.state).toBe('PROBE');
  expect(solicits.at(-1)).toBe(`${printed} unicast`);
  expect(table.show()).toBe(`${printed} dev eth0 lladdr 02:00:00:00:0a:01 PROBE`);
  table.close();
  expect(clock.pending).toBe(0);
}

describe('one neighbour table, two families', () => {
  it('IPv4 addresses (ARP)', () => walk(IPV4_NEIGHBOUR_FAMILY, ipv4('10.0.0.1'), '10.0.0.1'));
  it('another protocol whose addresses are not numbers (as NDP will be)', () => walk(TEXT_FAMILY, 'FD00:10::1', 'fd00:10::1'));
});

describe('what NDP asks of the table beyond ARP', () => {
  const OTHER_MAC = MacAddress.parse('02:00:00:00:0b:02');
  function ndTable(clock: VirtualClock): NeighbourTable<string> {
    return new NeighbourTable<string>({ clock, random: () => 0.5, family: TEXT_FAMILY, name: 'ndisc_cache', hooks: { sendTo: () => true } });
  }

  it('counts under its own name (ndisc_cache beside arp_cache)', () => {
    const table = ndTable(new VirtualClock());
    table.output('fd00:10::1', new Uint8Array(20));
    expect(table.stats.format()).toContain('ndisc_cache.lookups 1');
    table.close();
  });

  it("a weak override (NA without O) keeps the known MAC and makes REACHABLE STALE (RFC 4861 7.2.5)", () => {
    const clock = new VirtualClock();
    const table = ndTable(clock);
    table.update('fd00:10::1', MAC, { state: 'REACHABLE', override: 'always', create: true });
    clock.advance(5000); // well past locktime: it is the O flag, not the time, that decides
    expect(table.update('fd00:10::1', OTHER_MAC, { state: 'REACHABLE', override: 'weak', create: false })).toBe('ignored_weak');
    expect(table.lookup('fd00:10::1')).toMatchObject({ state: 'STALE', mac: MAC });
    // not REACHABLE: nothing changes at all
    expect(table.update('fd00:10::1', OTHER_MAC, { state: 'STALE', override: 'weak', create: false })).toBe('ignored_weak');
    expect(table.lookup('fd00:10::1')).toMatchObject({ state: 'STALE', mac: MAC });
    // the same MAC, solicited: confirmed
    expect(table.update('fd00:10::1', MAC, { state: 'REACHABLE', override: 'weak', create: false })).toBe('updated');
    expect(table.lookup('fd00:10::1')?.state).toBe('REACHABLE');
    // with O set, a different MAC is taken at once, even within locktime
    expect(table.update('fd00:10::1', OTHER_MAC, { state: 'STALE', override: 'always', create: false })).toBe('updated');
    expect(table.lookup('fd00:10::1')).toMatchObject({ state: 'STALE', mac: OTHER_MAC });
    table.close();
  });
});
