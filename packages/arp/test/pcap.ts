/**
 * A minimal pcap reader for the fixtures (libpcap format: 24-byte global header, then per frame
 * a 16-byte record header and the bytes). Test-only; the link package has the real one.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface PcapRecord {
  timestampUs: number;
  frame: Uint8Array;
}

export function parsePcap(bytes: Uint8Array): PcapRecord[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, true);
  let little: boolean;
  let nanos = false;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) little = true;
  else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) little = false;
  else throw new Error(`not a pcap file (magic 0x${magic.toString(16)})`);
  if (magic === 0xa1b23c4d || magic === 0x4d3cb2a1) nanos = true;
  const linkType = view.getUint32(20, little);
  if (linkType !== 1) throw new Error(`pcap link type ${linkType} is not Ethernet`);
  const records: PcapRecord[] = [];
  let off = 24;
  while (off + 16 <= bytes.length) {
    const sec = view.getUint32(off, little);
    const frac = view.getUint32(off + 4, little);
    const incl = view.getUint32(off + 8, little);
    off += 16;
    if (off + incl > bytes.length) throw new Error('truncated pcap record');
    records.push({ timestampUs: sec * 1e6 + (nanos ? Math.floor(frac / 1000) : frac), frame: bytes.slice(off, off + incl) });
    off += incl;
  }
  return records;
}

export const FIXTURES = fileURLToPath(new URL('../../../../shared/fixtures/', import.meta.url));

export function fixture(name: string): PcapRecord[] {
  return parsePcap(new Uint8Array(readFileSync(FIXTURES + name)));
}

/** Hex text (spaces allowed) to bytes. */
export function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}
