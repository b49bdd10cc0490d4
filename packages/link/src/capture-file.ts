/**
 * Reading captures from any tool, for analysis (`tapstack plot`): classic pcap in either byte
 * order with µs or ns timestamps, and pcapng (what Wireshark and dumpcap write by default), with
 * the link types a Linux capture uses: Ethernet, Linux "cooked" SLL and SLL2 (`tcpdump -i any`),
 * raw IP, and BSD loopback. Each record keeps its link type; `ipv4Datagram` finds the IPv4
 * datagram inside a record, whatever the link type, so an analysis need not care where it came from.
 *
 * pcapng (draft-ietf-opsawg-pcapng) is a list of blocks, each: type (4 bytes), total length (4),
 * body, total length again. A Section Header Block (0x0A0D0D0A) starts a section and fixes its
 * byte order with the magic 0x1A2B3C4D; each Interface Description Block (1) gives one interface's
 * link type and timestamp resolution (option if_tsresol, 9; default microseconds); Enhanced Packet
 * Blocks (6) carry a frame with its interface and a 64-bit timestamp, Simple Packet Blocks (3) a
 * frame without either. Other blocks (name resolution, statistics, ...) are skipped by length.
 *
 * A file that is neither, or that is cut short, is a PcapFormatError that says where; the frames
 * themselves are never judged here.
 */
import { PCAP_FILE_HEADER_LENGTH, PCAP_MAGIC_MICROSECONDS, PCAP_MAGIC_NANOSECONDS, PCAP_RECORD_HEADER_LENGTH, PcapFormatError, type PcapRecord } from './pcap.ts';

/** Link types (www.tcpdump.org/linktypes.html) that `ipv4Datagram` understands. */
export const LinkType = {
  NULL: 0,
  ETHERNET: 1,
  RAW: 101,
  LINUX_SLL: 113,
  IPV4: 228,
  LINUX_SLL2: 276,
} as const;

export interface CaptureRecord extends PcapRecord {
  /** The record's link type (LINKTYPE_*): how its bytes begin. */
  readonly linkType: number;
}

const PCAPNG_SECTION_HEADER = 0x0a0d0d0a;
const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const PCAPNG_INTERFACE = 1;
const PCAPNG_SIMPLE_PACKET = 3;
const PCAPNG_ENHANCED_PACKET = 6;
const IF_TSRESOL = 9;

/**
 * The records of a pcap or pcapng file. Throws PcapFormatError when it is neither or is cut short,
 * unless `partial`: then a file that ends in the middle of a record (one still being written by
 * tcpdump) gives the records before it, and `onTruncated` hears where it ended.
 */
export function readCapture(bytes: Uint8Array, options: { partial?: boolean; onTruncated?: (error: PcapFormatError) => void } = {}): CaptureRecord[] {
  if (bytes.length < 12) throw new PcapFormatError(`not a capture file: ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: CaptureRecord[] = [];
  try {
    if (view.getUint32(0, true) === PCAPNG_SECTION_HEADER) readPcapng(bytes, view, records);
    else readClassic(bytes, view, records);
  } catch (err) {
    if (!options.partial || records.length === 0 || !(err instanceof TruncatedCapture)) throw err;
    options.onTruncated?.(err);
  }
  return records;
}

/** The file ends inside a record: the records before it are sound. */
class TruncatedCapture extends PcapFormatError {}

function readClassic(bytes: Uint8Array, view: DataView, records: CaptureRecord[]): void {
  if (bytes.length < PCAP_FILE_HEADER_LENGTH) throw new PcapFormatError(`not a pcap file: ${bytes.length} bytes, the header alone is 24`);
  const le = view.getUint32(0, true);
  const be = view.getUint32(0, false);
  const known = (m: number): boolean => m === PCAP_MAGIC_MICROSECONDS || m === PCAP_MAGIC_NANOSECONDS;
  if (!known(le) && !known(be)) throw new PcapFormatError(`not a pcap or pcapng file: magic 0x${le.toString(16)}`);
  const little = known(le);
  const nanos = (little ? le : be) === PCAP_MAGIC_NANOSECONDS;
  // The upper bits of the link-type field may carry FCS information (pcap-savefile(5)).
  const linkType = view.getUint32(20, little) & 0x0fffffff;
  let offset = PCAP_FILE_HEADER_LENGTH;
  while (offset < bytes.length) {
    if (offset + PCAP_RECORD_HEADER_LENGTH > bytes.length) throw new TruncatedCapture(`record ${records.length + 1} is cut short in its header at byte ${offset}`);
    const seconds = view.getUint32(offset, little);
    const fraction = view.getUint32(offset + 4, little);
    const saved = view.getUint32(offset + 8, little);
    const start = offset + PCAP_RECORD_HEADER_LENGTH;
    if (start + saved > bytes.length) throw new TruncatedCapture(`record ${records.length + 1} says ${saved} bytes but the file ends after ${bytes.length - start}`);
    records.push({
      timestampUs: seconds * 1e6 + (nanos ? Math.floor(fraction / 1000) : fraction),
      frame: bytes.subarray(start, start + saved),
      originalLength: view.getUint32(offset + 12, little),
      linkType,
    });
    offset = start + saved;
  }
}

interface Interface {
  linkType: number;
  /** Timestamp units per second. */
  unitsPerSecond: bigint;
}

function readPcapng(bytes: Uint8Array, view: DataView, records: CaptureRecord[]): void {
  let little = true;
  let interfaces: Interface[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (offset + 12 > bytes.length) throw new TruncatedCapture(`pcapng block at byte ${offset} is cut short`);
    const type = view.getUint32(offset, little);
    if (view.getUint32(offset, true) === PCAPNG_SECTION_HEADER) {
      // A new section: its own byte order, its own interfaces.
      const magic = view.getUint32(offset + 8, true);
      if (magic === PCAPNG_BYTE_ORDER_MAGIC) little = true;
      else if (view.getUint32(offset + 8, false) === PCAPNG_BYTE_ORDER_MAGIC) little = false;
      else throw new PcapFormatError(`pcapng section at byte ${offset} has no byte-order magic`);
      interfaces = [];
    }
    const length = view.getUint32(offset + 4, little);
    if (length < 12 || length % 4 !== 0) throw new PcapFormatError(`pcapng block at byte ${offset} says ${length} bytes`);
    if (offset + length > bytes.length) throw new TruncatedCapture(`pcapng block at byte ${offset} says ${length} bytes (the file has ${bytes.length - offset} left)`);
    const body = offset + 8;
    const end = offset + length - 4;
    if (type === PCAPNG_INTERFACE && end - body >= 8) {
      interfaces.push({ linkType: view.getUint16(body, little), unitsPerSecond: timestampResolution(view, body + 8, end, little) });
    } else if (type === PCAPNG_ENHANCED_PACKET && end - body >= 20) {
      const iface = interfaces[view.getUint32(body, little)];
      const saved = view.getUint32(body + 12, little);
      const data = body + 20;
      if (!iface) throw new PcapFormatError(`pcapng packet at byte ${offset} names interface ${view.getUint32(body, little)}, which was not described`);
      if (data + saved > end) throw new PcapFormatError(`pcapng packet at byte ${offset} says ${saved} bytes, more than its block holds`);
      const units = (BigInt(view.getUint32(body + 4, little)) << 32n) | BigInt(view.getUint32(body + 8, little));
      records.push({
        timestampUs: Number((units * 1_000_000n) / iface.unitsPerSecond),
        frame: bytes.subarray(data, data + saved),
        originalLength: view.getUint32(body + 16, little),
        linkType: iface.linkType,
      });
    } else if (type === PCAPNG_SIMPLE_PACKET && end - body >= 4) {
      const iface = interfaces[0];
      if (!iface) throw new PcapFormatError(`pcapng packet at byte ${offset} comes before any interface`);
      const originalLength = view.getUint32(body, little);
      const saved = Math.min(originalLength, end - body - 4);
      records.push({ timestampUs: 0, frame: bytes.subarray(body + 4, body + 4 + saved), originalLength, linkType: iface.linkType });
    }
    offset += length;
  }
}

/** The if_tsresol option of an interface block: 10^-n (top bit clear) or 2^-n seconds; default µs. */
function timestampResolution(view: DataView, start: number, end: number, little: boolean): bigint {
  let o = start;
  while (o + 4 <= end) {
    const code = view.getUint16(o, little);
    const length = view.getUint16(o + 2, little);
    if (code === 0) break;
    if (code === IF_TSRESOL && length >= 1 && o + 5 <= end) {
      const v = view.getUint8(o + 4);
      const exponent = BigInt(Math.min(v & 0x7f, 60));
      return v & 0x80 ? 1n << exponent : 10n ** exponent;
    }
    o += 4 + length + ((4 - (length % 4)) % 4);
  }
  return 1_000_000n;
}

/**
 * Where the IPv4 datagram of a captured frame starts, by link type (Ethernet with or without
 * 802.1Q tags, SLL, SLL2, raw IP, BSD loopback); undefined when the record holds no IPv4.
 */
export function ipv4Datagram(record: CaptureRecord | PcapRecord): Uint8Array | undefined {
  const f = record.frame;
  const linkType = 'linkType' in record ? record.linkType : LinkType.ETHERNET;
  const u16 = (at: number): number => (f[at]! << 8) | f[at + 1]!;
  switch (linkType) {
    case LinkType.ETHERNET: {
      let at = 12;
      // 802.1Q and 802.1ad tags: four bytes each before the real EtherType.
      while (at + 2 <= f.length && (u16(at) === 0x8100 || u16(at) === 0x88a8) && at < 12 + 4 * 4) at += 4;
      if (at + 2 > f.length || u16(at) !== 0x0800) return undefined;
      return f.subarray(at + 2);
    }
    case LinkType.LINUX_SLL:
      return f.length >= 16 && u16(14) === 0x0800 ? f.subarray(16) : undefined;
    case LinkType.LINUX_SLL2:
      return f.length >= 20 && u16(0) === 0x0800 ? f.subarray(20) : undefined;
    case LinkType.RAW:
    case LinkType.IPV4:
      return f.length >= 1 && f[0]! >> 4 === 4 ? f : undefined;
    case LinkType.NULL: {
      // The address family in the host's byte order of the machine that captured: 2 is AF_INET either way round.
      if (f.length < 4) return undefined;
      const le = f[0]! | (f[1]! << 8) | (f[2]! << 16) | (f[3]! << 24);
      const be = (f[0]! << 24) | (f[1]! << 16) | (f[2]! << 8) | f[3]!;
      return le === 2 || be === 2 ? f.subarray(4) : undefined;
    }
    default:
      return undefined;
  }
}
