/**
 * The Linux captures every package's tests use as ground truth. They live in the repository's
 * test/fixtures (copies of ../shared/fixtures, so a fresh clone has them; see the README there):
 * every frame in them was written by the kernel. Read with the link package's own pcap reader.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readPcap, type PcapRecord } from '@tapstack/link';

export const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/', import.meta.url));

/** Every .pcap in the fixture folder, sorted. */
export function fixtureNames(): string[] {
  const names = readdirSync(FIXTURE_DIR)
    .filter((n) => n.endsWith('.pcap'))
    .sort();
  if (names.length === 0) throw new Error(`no fixtures in ${FIXTURE_DIR}`);
  return names;
}

/** The records (timestamp and frame) of one capture. */
export function readFixture(name: string): PcapRecord[] {
  return readPcap(readFileSync(FIXTURE_DIR + name));
}

/** The frames of one capture, in order. */
export function fixtureFrames(name: string): Uint8Array[] {
  return readFixture(name).map((r) => r.frame);
}

/** Every frame of one EtherType in every capture, with where it came from. */
export function framesOfType(etherType: number): { file: string; index: number; frame: Uint8Array }[] {
  const out: { file: string; index: number; frame: Uint8Array }[] = [];
  for (const file of fixtureNames()) {
    fixtureFrames(file).forEach((frame, index) => {
      if (((frame[12]! << 8) | frame[13]!) === etherType) out.push({ file, index, frame });
    });
  }
  return out;
}

/** Every IPv4 frame of every capture. */
export function allIpv4Frames(): { file: string; index: number; frame: Uint8Array }[] {
  return framesOfType(0x0800);
}

/** The parts one after another, in a new buffer. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Hex text (any separators) to bytes: `hex('ff ff 08 06')`. */
export function hex(text: string): Uint8Array {
  const clean = text.replace(/[^0-9a-fA-F]/g, '');
  if (clean.length % 2 !== 0) throw new Error(`hex: odd number of digits in "${text}"`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}
