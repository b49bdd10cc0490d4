/**
 * Reading a capture with tshark, the way the end-to-end tests check what went over the wire: a
 * display filter, the fields wanted (`-T fields`), and tshark's preferences (`-o`, such as
 * `udp.check_checksum:TRUE`, so that a bad checksum shows in the field `udp.checksum.status`).
 */
import { execFileSync } from 'node:child_process';

export interface TsharkQuery {
  /** Display filter (`-Y`); every frame when absent. */
  readonly filter?: string;
  /** Preferences, `name:value` each (`-o`). */
  readonly prefs?: readonly string[];
}

/** One row a frame (lines with no field at all left out), one string a field, '' where absent. */
export function tsharkFields(file: string, fields: readonly string[], query: TsharkQuery = {}): string[][] {
  const args = ['-r', file, ...(query.prefs ?? []).flatMap((p) => ['-o', p]), ...(query.filter !== undefined ? ['-Y', query.filter] : []), '-T', 'fields', ...fields.flatMap((f) => ['-e', f])];
  // A large capture's fields run to megabytes (execFileSync's default limit is 1 MB).
  const out = execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 256 * 1024 * 1024 });
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.split('\t'));
}

/** The numbers of the frames a display filter selects. */
export function tsharkFrames(file: string, filter: string, query: Omit<TsharkQuery, 'filter'> = {}): number[] {
  return tsharkFields(file, ['frame.number'], { ...query, filter }).map((r) => Number(r[0]));
}
