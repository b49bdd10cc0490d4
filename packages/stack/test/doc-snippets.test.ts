/**
 * Every TypeScript snippet in docs/ and in the package READMEs type-checks against the code as it
 * is: a reader who copies one gets no error the page did not warn about.
 *
 * Each ```ts block becomes a file of its own (under packages/stack/.snippets/, git-ignored): the
 * names it uses from the packages are imported for it (as a reader's editor would add them), the
 * free variables a page introduces in its prose (`stack`, `tap`, `bytes`, ...) are declared with
 * their real types, and the body runs inside an async function, so `await` and `for await` are
 * fine. Then one `tsc` run checks them all. A block that is not meant to compile is written as
 * ```ts-sketch instead.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const out = join(root, 'packages/stack/.snippets');

/** Names each package exports, read from its sources: true for a type (imported with `type`). */
function exportsOf(pkg: string): Map<string, boolean> {
  const names = new Map<string, boolean>();
  const dir = join(root, 'packages', pkg, 'src');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
    const text = readFileSync(join(dir, f), 'utf8');
    for (const m of text.matchAll(/^export (?:declare )?(?:abstract )?(const|let|function|class|interface|type|enum) ([A-Za-z_$][\w$]*)/gm)) {
      // `export const X` and `export type X` together (a value and its type): a value
      names.set(m[2]!, (m[1] === 'interface' || m[1] === 'type') && !names.has(m[2]!) ? true : false);
    }
  }
  return names;
}

const PACKAGES = ['link', 'reassembly', 'arp', 'ipv4', 'icmp', 'ipv6', 'icmpv6', 'ndp', 'udp', 'tcp', 'stack'];

/** Variables the pages use without defining them in the block, with their types. */
const FREE: Record<string, string> = {
  stack: "import('@tapstack/stack').Stack",
  ip: "import('@tapstack/ipv4').Ipv4Layer",
  tap: "import('@tapstack/link').TapDevice",
  link: "import('@tapstack/link').Link",
  clock: "import('@tapstack/link').Clock",
  dispatcher: "import('@tapstack/link').EtherTypeDispatcher",
  arp: "import('@tapstack/arp').Arp",
  icmp: "import('@tapstack/icmp').IcmpLayer",
  udp: "import('@tapstack/udp').UdpLayer",
  cidr: "import('@tapstack/ipv4').Ipv4Cidr",
  source: "import('@tapstack/link').Ipv4Address",
  destination: "import('@tapstack/link').Ipv4Address",
  gateway: "import('@tapstack/link').Ipv4Address",
  bytes: 'Uint8Array',
  payload: 'Uint8Array',
  ipPayload: 'Uint8Array',
  frame: 'Uint8Array',
  trace: '(line: string) => void',
  describe: '(frame: Uint8Array) => string',
  options: "import('@tapstack/stack').StackOptions",
};

function blocks(): { page: string; index: number; code: string }[] {
  const pages = [
    ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f)),
    ...PACKAGES.map((p) => join('packages', p, 'README.md')),
  ];
  const found: { page: string; index: number; code: string }[] = [];
  for (const page of pages) {
    const text = readFileSync(join(root, page), 'utf8');
    let index = 0;
    for (const m of text.matchAll(/^```ts\n([\s\S]*?)^```/gm)) found.push({ page, index: index++, code: m[1]! });
  }
  return found;
}

it('every ```ts snippet in the docs and the package READMEs type-checks', () => {
  const exported = new Map(PACKAGES.map((p) => [p, exportsOf(p)]));
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const files = new Map<string, string>();
  for (const { page, index, code } of blocks()) {
    const imports = code.split('\n').filter((l) => /^import /.test(l));
    const body = code.split('\n').filter((l) => !/^import /.test(l)).join('\n');
    const declared = new Set<string>();
    for (const m of code.matchAll(/\b(?:const|let|var|function|class|interface|type)\s+([A-Za-z_$][\w$]*)/g)) declared.add(m[1]!);
    for (const m of code.matchAll(/\b(?:const|let)\s+[[{]([^\]}=]*)[\]}]\s*=/g)) for (const n of m[1]!.split(',')) declared.add(n.trim().split(':').pop()!.trim());
    for (const m of code.matchAll(/^import (?:type )?\{([^}]*)\}/gm)) for (const n of m[1]!.split(',')) declared.add(n.trim().replace(/^type /, '').split(' as ').pop()!.trim());
    for (const m of code.matchAll(/^import (\w+) from/gm)) declared.add(m[1]!);
    // every identifier not after a property dot (a spread's three dots do not count)
    const used = new Set([...body.replaceAll('...', '   ').matchAll(/(?<![.\w$'"`])([A-Za-z_$][\w$]*)/g)].map((m) => m[1]!));
    // `ipv4` is two things on the pages: the address helper when called, else an Ipv4Layer
    const ipv4IsLayer = used.has('ipv4') && !/(?<![.\w])ipv4\(/.test(body) && !declared.has('ipv4');
    const autoImports: string[] = [];
    const taken = new Set(declared);
    for (const pkg of PACKAGES) {
      const names = [...used].filter((n) => exported.get(pkg)!.has(n) && !taken.has(n) && !(n in FREE) && !(n === 'ipv4' && ipv4IsLayer));
      for (const n of names) taken.add(n);
      if (names.length > 0) autoImports.push(`import { ${names.map((n) => (exported.get(pkg)!.get(n) ? `type ${n}` : n)).join(', ')} } from '@tapstack/${pkg}';`);
    }
    const free = Object.entries(FREE)
      .filter(([n]) => used.has(n) && !taken.has(n))
      .map(([n, t]) => `declare const ${n}: ${t};`);
    if (ipv4IsLayer) free.push("declare const ipv4: import('@tapstack/ipv4').Ipv4Layer;");
    const name = `${page.replace(/[/.]/g, '_')}_${index}.ts`;
    const text = [
      `// ${page}, \`\`\`ts block ${index + 1}`,
      ...imports,
      ...autoImports,
      ...free,
      'export async function snippet(): Promise<void> {',
      body,
      '}',
      '',
    ].join('\n');
    writeFileSync(join(out, name), text);
    files.set(name, `${page} (block ${index + 1})`);
  }
  writeFileSync(
    join(out, 'tsconfig.json'),
    JSON.stringify({ extends: '../../../tsconfig.base.json', compilerOptions: { noUnusedLocals: false }, include: ['*.ts'] }, null, 2),
  );
  let report = '';
  try {
    execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', out], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    report = String((err as { stdout?: string }).stdout ?? err);
  }
  // name the page and block of every error, not the generated file
  const errors = report
    .split('\n')
    .filter((l) => /error TS/.test(l))
    .map((l) => {
      const file = /([\w.-]+\.ts)\(/.exec(l)?.[1] ?? '';
      return `${files.get(file) ?? file}: ${l.replace(/^.*?error /, 'error ')}`;
    });
  expect(files.size).toBeGreaterThan(25);
  expect(errors).toEqual([]);
}, 120_000);
