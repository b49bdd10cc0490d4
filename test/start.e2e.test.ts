/**
 * `npm start` for someone without root: it cannot open a TAP device, so it runs the in-memory
 * demo (two stacks on a virtual wire) and says how to run the real thing. Run here as the user
 * nobody (setpriv), with a HOME and npm cache of its own, inside a namespace of its own.
 */
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { Netns } from './support/netns.ts';
import { asUnprivileged } from './support/nobody.ts';
import { repoRoot } from './support/watch.ts';

let ns: Netns | undefined;
let home: string | undefined;
afterAll(() => {
  ns?.destroy();
  if (home) rmSync(home, { recursive: true, force: true });
});

it('npm start without privileges runs the in-memory demo: 0% loss, both neighbour tables, and how to run the real TAP', async () => {
  ns = Netns.create('start');
  home = mkdtempSync(join(tmpdir(), 'tapstack-nobody-'));
  const env = { HOME: home, npm_config_cache: join(home, '.npm'), PATH: process.env.PATH ?? '/usr/bin:/bin' };
  // As nobody where nobody can read the checkout; as root with no capabilities otherwise (a clone under /root).
  const { argv, who } = asUnprivileged('sh', ['-c', `cd "$0" && exec npm start`, repoRoot], env);
  if (who === 'nobody') chownSync(home, 65534, 65534);
  const run = await ns.run(argv[0], argv[1], 100_000); // npm and node starting: 2 s at idle, 10 s under load
  const out = run.stdout;
  expect(out).toMatch(
    who === 'nobody'
      ? /No TAP device here: not running as root \(a TAP device needs CAP_NET_ADMIN\)\./
      : /No TAP device here: running as root but without CAP_NET_ADMIN/,
  );
  expect(out).toMatch(/For the real thing, as root in a network namespace of its own/);
  expect(out).toContain('sudo ip netns add tapstack && sudo ip netns exec tapstack npm start');
  expect(out).toContain('sudo ip netns exec tapstack ping 10.0.0.2');
  // A's first echo request waits while ARP resolves B: the request goes out before any echo.
  const arpRequest = out.indexOf('A out 02:00:00:00:0a:01 > ff:ff:ff:ff:ff:ff, ARP, Request who-has 10.0.0.2 tell 10.0.0.1');
  const firstEcho = out.indexOf('ICMP echo request');
  expect(arpRequest).toBeGreaterThan(-1);
  expect(firstEcho).toBeGreaterThan(arpRequest);
  expect(out.match(/^64 bytes from 10\.0\.0\.2: icmp_seq=\d+ ttl=64 time=[\d.]+ ms$/gm)).toHaveLength(3);
  expect(out).toMatch(/3 packets transmitted, 3 received, 0% packet loss/);
  expect(out).toMatch(/A's neighbour table \(ip neigh show\):\n\s+10\.0\.0\.2 dev \S+ lladdr 02:00:00:00:0b:02 REACHABLE/);
  expect(out).toMatch(/B's neighbour table:\n\s+10\.0\.0\.1 dev \S+ lladdr 02:00:00:00:0a:01 \w+/);
  expect(out).toMatch(/arp\.resolve_queued 1/);
  expect(run.status).toBe(0);
});
