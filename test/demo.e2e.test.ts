/**
 * `npm run demo` as CI's smoke test: tapstack up in a namespace of its own, the real ping and
 * arping against it, its tables, Ctrl-C, and the namespace removed afterwards.
 */
import { execFileSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { requireE2eCapabilities } from './support/netns.ts';
import { expectEveryRequestAnswered } from './support/ping.ts';
import { repoRoot, Watched } from './support/watch.ts';

it('npm run demo: ping and arping answered, tables printed, exits 0, leaves no namespace behind', async () => {
  requireE2eCapabilities();
  const before = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  const demo = new Watched(spawn('npm', ['run', '--silent', 'demo'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] }));
  const exit = await demo.exited;
  const out = demo.output;
  expect(out).toMatch(/tapstack is up on tap0 in namespace \S+: 10\.0\.0\.2/);
  expectEveryRequestAnswered({ status: 0, stdout: out }, 3);
  expect(out).toMatch(/Received 2 response\(s\)/);
  expect(out).toMatch(/10\.0\.0\.2 lladdr [0-9a-f:]{17} \w+/); // the kernel's neighbour entry for us
  expect(out).toMatch(/10\.0\.0\.1 dev tap0 lladdr [0-9a-f:]{17}(?: used \S+ probes \d+)? [A-Z]+/); // ours for the kernel
  // one reply to each request ping sent (more than 3 when it waited for a late reply)
  expect(out).toMatch(new RegExp(`icmp\\.tx_echo_replies ${out.match(/(\d+) packets transmitted/)?.[1]}\\n`));
  expect(out).toMatch(/tapstack exited 0 and tap0 is gone/);
  expect(exit, out).toEqual({ code: 0, signal: null });
  const namespace = out.match(/# namespace (\S+) created/)?.[1];
  expect(namespace).toBeDefined();
  expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(namespace!);
  expect(before).not.toContain(namespace!);
});
