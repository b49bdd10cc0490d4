/**
 * What an end-to-end test makes and must remove when it ends, pass or fail: network namespaces,
 * temporary directories, processes. Call once at the top of a test file; everything made
 * through it is removed after each test, newest first.
 *
 *   const { namespace, tempDir, defer } = perTest('tcp');
 *   const ns = namespace('server');          // Netns.create, destroyed after the test
 *   defer(() => child.kill('SIGKILL'));      // anything else
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { Netns } from './netns.ts';

export function perTest(label: string): { namespace(name: string): Netns; tempDir(): string; defer(cleanup: () => void): void } {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0).reverse()) c();
  });
  return {
    namespace(name) {
      const ns = Netns.create(name);
      cleanups.push(() => ns.destroy());
      return ns;
    },
    tempDir() {
      const dir = mkdtempSync(join(tmpdir(), `tapstack-${label}-`));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      return dir;
    },
    defer(cleanup) {
      cleanups.push(cleanup);
    },
  };
}
