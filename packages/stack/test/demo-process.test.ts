/**
 * `tapstack demo` as a real process: two stacks on an in-memory wire with the system clock. The
 * stack's own timers never keep a process alive, so this also checks that an awaited ping does
 * (Clock.hold): without it the process ends after the first reply and no summary is printed.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));

it('runs to the end: three replies, the iputils summary, both neighbour tables, exit 0', async () => {
  const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', 'packages/stack/src/main.ts', 'demo'],
      { cwd: root, timeout: 30_000 },
      (err, out) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: out }),
    );
    child.stdin?.end();
  });
  expect(stdout.match(/^64 bytes from 10\.0\.0\.2: icmp_seq=[123] ttl=64 time=[\d.]+ ms$/gm)).toHaveLength(3);
  expect(stdout).toMatch(/^3 packets transmitted, 3 received, 0% packet loss, time \d+ms$/m);
  expect(stdout).toMatch(/A's neighbour table \(ip neigh show\):\n\s+10\.0\.0\.2 dev wire-a lladdr 02:00:00:00:0b:02 REACHABLE/);
  // then TCP: A's SYN, B's SYN-ACK, the page, and the connection tables
  expect(stdout).toMatch(/A out .*10\.0\.0\.1\.\d+ > 10\.0\.0\.2\.80: Flags \[S\], seq \d+, win 64240, options \[mss 1460,sackOK,TS val \d+ ecr 0,nop,wscale 7\]/);
  expect(stdout).toMatch(/B out .*10\.0\.0\.2\.80 > 10\.0\.0\.1\.\d+: Flags \[S\.\]/);
  expect(stdout).toMatch(/A got HTTP 200, \d+ bytes: <p>Hello from tapstack/);
  expect(stdout).toMatch(/connections \(ss -tan\):\n\s+State/);
  expect(code).toBe(0);
});
