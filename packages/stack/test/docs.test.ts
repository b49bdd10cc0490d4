/**
 * The docs hold together: every relative link in docs/ and the package READMEs points at a file
 * that exists, every file path a command mentions exists, and every example is referenced from
 * at least one docs chapter (the commands themselves are run by test/examples.e2e.test.ts).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const docs = readdirSync(join(root, 'docs'))
  .filter((f) => f.endsWith('.md'))
  .map((f) => join('docs', f));
const readmes = readdirSync(join(root, 'packages'))
  .map((p) => join('packages', p, 'README.md'))
  .filter((f) => existsSync(join(root, f)));
const pages = [...docs, ...readmes];

describe('docs', () => {
  it('has the chapters the series promises', () => {
    for (const f of ['index.md', 'architecture.md', 'testing.md', 'extending.md']) expect(docs).toContain(join('docs', f));
  });

  it.each(pages)('%s: every relative link points at a file that exists', (page) => {
    const text = readFileSync(join(root, page), 'utf8');
    const links = [...text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));
    const missing = links.filter((l) => !existsSync(join(root, dirname(page), l)));
    expect(missing).toEqual([]);
  });

  it.each(pages)('%s: every examples/, test/ and packages/ path it names exists', (page) => {
    const text = readFileSync(join(root, page), 'utf8');
    const paths = [...text.matchAll(/(?<![\w/.])((?:examples|test|packages)\/[\w./-]+\.(?:ts|py|md))/g)].map((m) => m[1]!);
    const missing = paths.filter((p) => !existsSync(join(root, p)) && !p.includes('*'));
    expect(missing).toEqual([]);
  });

  it('every example is referenced from a docs chapter', () => {
    const all = docs.map((d) => readFileSync(join(root, d), 'utf8')).join('\n');
    const examples = readdirSync(join(root, 'examples')).filter((f) => /^\d.*\.(ts|py)$/.test(f));
    expect(examples.length).toBeGreaterThanOrEqual(8);
    const unreferenced = examples.filter((e) => !all.includes(`examples/${e}`));
    expect(unreferenced).toEqual([]);
  });
});
