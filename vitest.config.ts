import { defineConfig } from 'vitest/config';

// Two projects: `unit` runs anywhere (codecs, simulation on in-memory links with a virtual
// clock); `e2e` needs root and /dev/net/tun and talks to the real Linux kernel inside network
// namespaces that each test creates and removes. `npm test` runs both, e2e one file at a time
// (--no-file-parallelism: floods of real pings must not compete for the 2 cores of CI); e2e fails
// loudly, it never skips, when the machine cannot run it.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          // Generous: CI machines have 2 cores, and property tests run hundreds of cases.
          testTimeout: 30_000,
          include: ['packages/*/test/**/*.test.ts'],
          exclude: ['packages/*/test/**/*.e2e.test.ts'],
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/**/*.e2e.test.ts', 'packages/*/test/**/*.e2e.test.ts'],
          // Generous too: a limit, not a speed check. On a loaded 2-vCPU machine (two busy loops and
          // a third at nice -5) tests of 5-10 s at idle took 15-36 s (16 starts of node in one test:
          // 24 s); 60 s left too little room for a CI machine busier than that.
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
