/**
 * LineFile, the --tcp-log writer: lines are gathered and written in one go (at 64 KiB, after half
 * a second, or on close), and a write error stops the file with one report instead of a throw.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LineFile } from '../src/line-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'tapstack-line-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('LineFile', () => {
  it('creates the file at once, keeps short lines until close, then has every line in order', () => {
    const path = join(dir, 'a.jsonl');
    const file = new LineFile(path);
    expect(existsSync(path)).toBe(true);
    for (let i = 0; i < 3; i++) file.write(`{"n":${i}}\n`);
    expect(readFileSync(path, 'utf8')).toBe('');
    file.close();
    expect(readFileSync(path, 'utf8')).toBe('{"n":0}\n{"n":1}\n{"n":2}\n');
    file.write('after close\n'); // ignored
    expect(readFileSync(path, 'utf8')).not.toContain('after close');
  });

  it('writes as soon as 64 KiB have gathered, without waiting for close', () => {
    const path = join(dir, 'b.jsonl');
    const file = new LineFile(path);
    const line = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 64; i++) file.write(line);
    expect(readFileSync(path, 'utf8').length).toBe(64 * 1024);
    file.close();
  });

  it('a file that cannot be created throws at once; a write error (a full disk: /dev/full) is reported once and stops the file', () => {
    expect(() => new LineFile(join(dir, 'missing', 'c.jsonl'))).toThrow(/ENOENT/);
    const errors: Error[] = [];
    const full = new LineFile('/dev/full', (e) => errors.push(e));
    full.write('one\n');
    full.close();
    full.write('two\n');
    full.close();
    expect(errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ENOSPC']);
  });
});
