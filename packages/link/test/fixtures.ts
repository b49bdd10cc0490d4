/**
 * The Linux captures in the repository's test/fixtures (copies of ../shared/fixtures, so a
 * fresh clone has them): every frame in them was written by the kernel.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readPcap, type PcapRecord } from '../src/pcap.ts';

export const FIXTURE_DIR = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));

export function fixtureNames(): string[] {
  const names = readdirSync(FIXTURE_DIR).filter((n) => n.endsWith('.pcap')).sort();
  if (names.length === 0) throw new Error(`no fixtures in ${FIXTURE_DIR}`);
  return names;
}

export function readFixture(name: string): PcapRecord[] {
  return readPcap(readFileSync(FIXTURE_DIR + name));
}

export function hex(text: string): Uint8Array {
  const clean = text.replace(/[^0-9a-fA-F]/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}
