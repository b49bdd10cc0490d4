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
