/**
 * Reads the kernel-written pcap fixtures in /work/shared/fixtures (see its README). A tiny
 * classic-pcap reader (little- or big-endian, microsecond timestamps) so these tests do not
 * depend on anything but the files.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const here = fileURLToPath(new URL('.', import.meta.url));
/** $TAPSTACK_FIXTURES, else the repository's test/fixtures, else ../shared/fixtures next to the checkout. */
export const FIXTURES_DIR =
  process.env.TAPSTACK_FIXTURES ??
  [join(here, '../../../../test/fixtures'), join(here, '../../../../../shared/fixtures')].find((d) =>
    existsSync(join(d, 'linux-ping-odd-sizes.pcap')),
  ) ??
  join(here, '../../../../../shared/fixtures');

export function readPcapFrames(bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, true);
  let little: boolean;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) little = true;
  else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) little = false;
  else throw new Error('not a pcap file');
  const frames: Uint8Array[] = [];
  let offset = 24;
  while (offset + 16 <= bytes.length) {
    const captured = view.getUint32(offset + 8, little);
    offset += 16;
    frames.push(bytes.slice(offset, offset + captured));
    offset += captured;
  }
  return frames;
}

export function fixtureFrames(name: string): Uint8Array[] {
  return readPcapFrames(new Uint8Array(readFileSync(join(FIXTURES_DIR, name))));
}

export const FIXTURE_FILES = [
  'linux-arp-and-ping.pcap',
  'linux-ping-odd-sizes.pcap',
  'linux-ping-4000-fragmented.pcap',
  'linux-udp-port-unreachable.pcap',
  'linux-arp-probe-dad.pcap',
  'linux-gratuitous-arp.pcap',
  'linux-ping-unresolved-host.pcap',
] as const;

/** Every IPv4 frame of every fixture, with where it came from. */
export function allIpv4Frames(): { file: string; index: number; frame: Uint8Array }[] {
  const out: { file: string; index: number; frame: Uint8Array }[] = [];
  for (const file of FIXTURE_FILES) {
    fixtureFrames(file).forEach((frame, index) => {
      if (frame[12] === 0x08 && frame[13] === 0x00) out.push({ file, index, frame });
    });
  }
  return out;
}

export function hex(text: string): Uint8Array {
  const clean = text.replace(/[^0-9a-fA-F]/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}
