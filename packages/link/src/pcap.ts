/**
 * Classic libpcap files (the format of `tcpdump -w`), Ethernet link type, microsecond
 * timestamps: a writer, a reader (to replay the kernel fixtures), and a capture wrapper that
 * records every frame a Link sends and receives, so any run can be opened in Wireshark/tshark.
 *
 * File header (24 bytes, written in little-endian):     Record header (16 bytes) + frame:
 *   0  magic        0xa1b2c3d4 (µs timestamps)             0  ts_sec     seconds since 1970
 *   4  version      2.4                                     4  ts_usec    microseconds
 *   8  thiszone     0 (UTC)                                 8  incl_len   bytes saved
 *  12  sigfigs      0                                      12  orig_len   bytes on the wire
 *  16  snaplen      largest saved frame                    16  the frame (incl_len bytes)
 *  20  network      1 = LINKTYPE_ETHERNET
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { LinkWrapper, type FrameOffload, type Link } from './link.ts';

export const PCAP_MAGIC_MICROSECONDS = 0xa1b2c3d4;
export const PCAP_MAGIC_NANOSECONDS = 0xa1b23c4d;
export const LINKTYPE_ETHERNET = 1;
export const PCAP_FILE_HEADER_LENGTH = 24;
export const PCAP_RECORD_HEADER_LENGTH = 16;
/** tcpdump's default snap length: every frame is saved whole. */
export const PCAP_DEFAULT_SNAPLEN = 262144;

/** Where a PcapWriter puts its bytes. */
export interface PcapSink {
  write(chunk: Uint8Array): void;
  close(): void;
}

/** Writes to a file, synchronously: what is written is on disk when write() returns. */
export class FilePcapSink implements PcapSink {
  private fd: number | undefined;
  constructor(readonly path: string) {
    this.fd = openSync(path, 'w');
  }
  write(chunk: Uint8Array): void {
    if (this.fd === undefined) return;
    let done = 0;
    while (done < chunk.length) done += writeSync(this.fd, chunk, done, chunk.length - done);
  }
  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Keeps the file in memory (tests, or to send it somewhere). */
export class MemoryPcapSink implements PcapSink {
  private readonly chunks: Uint8Array[] = [];
  write(chunk: Uint8Array): void {
    this.chunks.push(new Uint8Array(chunk));
  }
  close(): void {}
  /** The whole file so far. */
  bytes(): Uint8Array {
    const length = this.chunks.reduce((n, c) => n + c.length, 0);
    const out = new Uint8Array(length);
    let offset = 0;
    for (const c of this.chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out;
  }
}

export interface PcapWriterOptions {
  /** Frames longer than this are cut (orig_len keeps the real length). Default 262144. */
  snapLength?: number;
  /** Microseconds since 1970 for frames written without a timestamp. Default: the wall clock. */
  now?: () => number;
}

/** Wall-clock microseconds, with sub-millisecond resolution. */
export function wallClockMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

export class PcapWriter {
  private readonly sink: PcapSink;
  private readonly snapLength: number;
  private readonly now: () => number;
  private isClosed = false;
  private count = 0;

  /** `target` is a file path (created or truncated) or a sink. The file header is written at once. */
  constructor(target: string | PcapSink, options: PcapWriterOptions = {}) {
    this.snapLength = options.snapLength ?? PCAP_DEFAULT_SNAPLEN;
    if (!Number.isInteger(this.snapLength) || this.snapLength < 1) throw new RangeError(`snapLength ${this.snapLength} must be a positive integer`);
    this.now = options.now ?? wallClockMicros;
    this.sink = typeof target === 'string' ? new FilePcapSink(target) : target;
    const header = new Uint8Array(PCAP_FILE_HEADER_LENGTH);
    const view = new DataView(header.buffer);
    view.setUint32(0, PCAP_MAGIC_MICROSECONDS, true);
    view.setUint16(4, 2, true);
    view.setUint16(6, 4, true);
    view.setInt32(8, 0, true);
    view.setUint32(12, 0, true);
    view.setUint32(16, this.snapLength, true);
    view.setUint32(20, LINKTYPE_ETHERNET, true);
    this.sink.write(header);
  }

  /** Frames written so far. */
  get records(): number {
    return this.count;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Appends one frame. */
  write(frame: Uint8Array, timestampUs: number = this.now()): void {
    this.writeBatch([frame], timestampUs);
  }

  /** Appends frames that arrived together, with one timestamp, in one write to the sink. */
  writeBatch(frames: readonly Uint8Array[], timestampUs: number = this.now()): void {
    if (this.isClosed || frames.length === 0) return;
    let length = 0;
    for (const f of frames) length += PCAP_RECORD_HEADER_LENGTH + Math.min(f.length, this.snapLength);
    const out = new Uint8Array(length);
    const view = new DataView(out.buffer);
    const seconds = Math.floor(timestampUs / 1e6);
    const micros = Math.floor(timestampUs - seconds * 1e6);
    let offset = 0;
    for (const f of frames) {
      const saved = Math.min(f.length, this.snapLength);
      view.setUint32(offset, seconds, true);
      view.setUint32(offset + 4, micros, true);
      view.setUint32(offset + 8, saved, true);
      view.setUint32(offset + 12, f.length, true);
      out.set(saved === f.length ? f : f.subarray(0, saved), offset + PCAP_RECORD_HEADER_LENGTH);
      offset += PCAP_RECORD_HEADER_LENGTH + saved;
    }
    this.sink.write(out);
    this.count += frames.length;
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.sink.close();
  }
}

export interface PcapRecord {
  /** Microseconds since 1970. */
  timestampUs: number;
  /** The saved bytes (a copy). */
  frame: Uint8Array;
  /** The frame's length on the wire (larger than frame.length when the capture cut it). */
  originalLength: number;
}

/** A file that is not a pcap file we can read; says what is wrong with it. */
export class PcapFormatError extends Error {
  override readonly name = 'PcapFormatError';
}

/**
 * Reads a classic pcap file (either byte order, µs or ns timestamps) with Ethernet frames.
 * Throws PcapFormatError on anything else, or when the file is cut short.
 */
export function readPcap(bytes: Uint8Array): PcapRecord[] {
  if (bytes.length < PCAP_FILE_HEADER_LENGTH) throw new PcapFormatError(`not a pcap file: ${bytes.length} bytes, the header alone is 24`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let little: boolean;
  let nanos: boolean;
  const magicLe = view.getUint32(0, true);
  const magicBe = view.getUint32(0, false);
  if (magicLe === PCAP_MAGIC_MICROSECONDS || magicLe === PCAP_MAGIC_NANOSECONDS) {
    little = true;
    nanos = magicLe === PCAP_MAGIC_NANOSECONDS;
  } else if (magicBe === PCAP_MAGIC_MICROSECONDS || magicBe === PCAP_MAGIC_NANOSECONDS) {
    little = false;
    nanos = magicBe === PCAP_MAGIC_NANOSECONDS;
  } else if (magicLe === 0x0a0d0d0a) {
    throw new PcapFormatError('this is a pcapng file; convert it with `editcap -F pcap in.pcapng out.pcap`');
  } else {
    throw new PcapFormatError(`not a pcap file: magic 0x${magicLe.toString(16)}`);
  }
  const linkType = view.getUint32(20, little) & 0x0fffffff;
  if (linkType !== LINKTYPE_ETHERNET) throw new PcapFormatError(`link type ${linkType} is not Ethernet (1)`);
  const records: PcapRecord[] = [];
  let offset = PCAP_FILE_HEADER_LENGTH;
  while (offset < bytes.length) {
    if (offset + PCAP_RECORD_HEADER_LENGTH > bytes.length) {
      throw new PcapFormatError(`record ${records.length + 1} is cut short in its header at byte ${offset}`);
    }
    const seconds = view.getUint32(offset, little);
    const fraction = view.getUint32(offset + 4, little);
    const saved = view.getUint32(offset + 8, little);
    const originalLength = view.getUint32(offset + 12, little);
    const start = offset + PCAP_RECORD_HEADER_LENGTH;
    if (start + saved > bytes.length) {
      throw new PcapFormatError(`record ${records.length + 1} says ${saved} bytes but the file ends after ${bytes.length - start}`);
    }
    records.push({
      timestampUs: seconds * 1e6 + (nanos ? Math.floor(fraction / 1000) : fraction),
      frame: new Uint8Array(bytes.subarray(start, start + saved)), // a copy, also of a Buffer
      originalLength,
    });
    offset = start + saved;
  }
  return records;
}

/**
 * A Link that writes every frame it sends and receives to a pcap file; otherwise the link itself.
 *
 * A capture that cannot be written (a full disk, a file system gone away) must not take the stack
 * down with it: the first write error stops the capture, is counted (`link.capture_write_failed`)
 * and reported once through `onError` (stderr by default); frames keep flowing.
 */
export class CaptureLink extends LinkWrapper {
  private failed = false;

  constructor(
    inner: Link,
    readonly writer: PcapWriter,
    private readonly onError: (error: Error) => void = (error) => process.stderr.write(`capture stopped: ${error.message}\n`),
  ) {
    super(inner);
    inner.onClose(() => this.closeWriter());
  }

  /** False once a write failed and the capture stopped. */
  get capturing(): boolean {
    return !this.failed;
  }

  // A super-frame (virtio-net header mode) is recorded as it is, one record of up to 64 KB, the
  // way tcpdump on a host with TSO/GRO shows them: Wireshark decodes it as one long segment
  // (its IPv4 total length covers it all). A 'partial' checksum is recorded unfinished.
  override send(frame: Uint8Array, offload?: FrameOffload): boolean {
    const sent = this.inner.send(frame, offload);
    if (sent && !this.failed) this.guard(() => this.writer.write(frame));
    return sent;
  }

  protected override receive(frames: readonly Uint8Array[], offloads?: readonly (FrameOffload | undefined)[]): void {
    if (!this.failed) this.guard(() => this.writer.writeBatch(frames));
    this.deliverUp(frames, offloads);
  }

  private guard(write: () => void): void {
    try {
      write();
    } catch (err) {
      this.failed = true;
      this.inner.counters.inc('capture_write_failed');
      this.closeWriter();
      try {
        this.onError(err as Error);
      } catch {
        /* a reporter that throws must not stop the frames either */
      }
    }
  }

  private closeWriter(): void {
    try {
      this.writer.close();
    } catch {
      /* closing a file whose writes failed may fail too */
    }
  }
}

/**
 * `withCapture(tap, 'run.pcap')`: the link, recording every frame in and out (sent frames
 * only when the link accepted them). The file is closed when the link closes.
 */
export function withCapture(link: Link, file: string | PcapWriter, options: PcapWriterOptions & { onError?: (error: Error) => void } = {}): CaptureLink {
  return new CaptureLink(link, typeof file === 'string' ? new PcapWriter(file, options) : file, options.onError);
}
