#!/usr/bin/env node
// Builds the TAP addon (native/tap.cc -> build/Release/tap.node) with node-gyp.
// Run by `npm ci` / `npm install` (this package's `install` script), or by hand:
//   npm run build:native -w @tapstack/link
//
// It uses the Node headers installed next to this node binary when there are any (Debian's
// nodejs package and the official tarballs ship them in <prefix>/include/node), so the build
// needs no network. node-gyp itself is the one npm ships (npm puts it on PATH for scripts),
// unless a node-gyp is installed in node_modules.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

if (process.platform !== 'linux') {
  console.warn('@tapstack/link: the TAP addon is Linux-only; skipping the native build');
  process.exit(0);
}

const args = ['rebuild'];
const prefix = resolve(dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${prefix}`);
}

let command = 'node-gyp';
let commandArgs = args;
try {
  const require = createRequire(join(packageDir, 'package.json'));
  const local = require.resolve('node-gyp/bin/node-gyp.js');
  command = process.execPath;
  commandArgs = [local, ...args];
} catch {
  const bundled = process.env.npm_config_node_gyp;
  if (bundled && existsSync(bundled)) {
    command = process.execPath;
    commandArgs = [bundled, ...args];
  }
}

const result = spawnSync(command, commandArgs, { cwd: packageDir, stdio: 'inherit' });
if (result.error) {
  console.error(`@tapstack/link: could not run node-gyp (${result.error.message}).`);
  console.error('Run this from an npm script (npm ships node-gyp) or install it: npm install -g node-gyp');
  process.exit(1);
}
if (result.status !== 0) {
  console.error('@tapstack/link: building the TAP addon failed. It needs python3, make, g++ and the Node headers');
  console.error('(apt-get install python3 make g++; the headers come with the nodejs package or `node-gyp install`).');
  process.exit(result.status ?? 1);
}
