/**
 * The command line of the single-row benches (bench/acks.ts, bulk.ts, idle.ts): numbers with
 * defaults, comma-separated lists, flags, and `--tapstack-arg=ARG` (repeatable) for the stack's
 * `tapstack up`. Unknown options are an error, so a mistyped `--round 5` does not quietly run
 * the default.
 */
import { parseArgs } from 'node:util';

export interface BenchOptionSpec<N extends string, L extends string, F extends string> {
  numbers: Record<N, number>;
  lists?: Record<L, string>;
  flags?: readonly F[];
}

export interface BenchOptions<N extends string, L extends string, F extends string> {
  numbers: Record<N, number>;
  lists: Record<L, string[]>;
  flags: Record<F, boolean>;
  tapstackArgs: string[];
}

export function benchOptions<N extends string, L extends string = never, F extends string = never>(
  spec: BenchOptionSpec<N, L, F>,
  argv: readonly string[] = process.argv.slice(2),
): BenchOptions<N, L, F> {
  type Declared = Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;
  const declared: Declared = { 'tapstack-arg': { type: 'string', multiple: true } };
  const numberNames = Object.keys(spec.numbers) as N[];
  const listNames = Object.keys(spec.lists ?? {}) as L[];
  const flagNames = spec.flags ?? [];
  for (const name of [...numberNames, ...listNames]) declared[name] = { type: 'string' };
  for (const name of flagNames) declared[name] = { type: 'boolean' };
  const { values } = parseArgs({ args: [...argv], options: declared, strict: true, allowPositionals: false });
  const numbers = {} as Record<N, number>;
  for (const name of numberNames) {
    const given = values[name];
    const n = typeof given === 'string' ? Number(given) : spec.numbers[name];
    if (!Number.isFinite(n)) throw new Error(`--${name} ${String(given)}: not a number`);
    numbers[name] = n;
  }
  const lists = {} as Record<L, string[]>;
  for (const name of listNames) {
    const given = values[name];
    lists[name] = (typeof given === 'string' ? given : spec.lists![name]).split(',').filter(Boolean);
  }
  const flags = {} as Record<F, boolean>;
  for (const name of flagNames) flags[name] = values[name] === true;
  const extra = values['tapstack-arg'];
  return { numbers, lists, flags, tapstackArgs: Array.isArray(extra) ? extra.filter((a): a is string => typeof a === 'string') : [] };
}
