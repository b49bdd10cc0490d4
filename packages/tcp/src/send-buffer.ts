/**
 * The send buffer: bytes the application wrote that the peer has not acknowledged yet, from
 * SND.UNA on. Bytes before SND.NXT have been sent (and are kept for retransmission); the rest
 * waits for window. Bounded: `write` takes only what fits, and the socket waits for room.
 *
 * Stored as a queue of chunks copied from the writes (one copy per byte on the way in); a
 * segment's data is a view into one chunk when it fits inside it, otherwise a copy of the pieces.
 */
export class SendBuffer {
  private chunks: Uint8Array[] = [];
  /** Bytes of chunks[0] already acknowledged. */
  private headOffset = 0;
  private bytes = 0;

  constructor(private size: number) {}

  /** Bytes it may hold. */
  get capacity(): number {
    return this.size;
  }

  /** Autotuning made it larger (never smaller). */
  grow(capacity: number): void {
    if (capacity > this.size) this.size = capacity;
  }

  /** Bytes held (sent or not, unacknowledged). */
  get length(): number {
    return this.bytes;
  }

  get free(): number {
    return this.size - this.bytes;
  }

  /** Copies as much of `data` as fits; returns the bytes taken. */
  write(data: Uint8Array): number {
    const n = Math.min(data.length, this.free);
    if (n <= 0) return 0;
    this.chunks.push(data.slice(0, n));
    this.bytes += n;
    return n;
  }

  /** `length` bytes starting `offset` bytes after the first unacknowledged one. */
  read(offset: number, length: number): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.bytes) throw new RangeError(`send buffer holds ${this.bytes} bytes, asked for ${offset}+${length}`);
    if (length === 0) return EMPTY;
    let skip = offset + this.headOffset;
    let i = 0;
    while (skip >= this.chunks[i]!.length) skip -= this.chunks[i++]!.length;
    const first = this.chunks[i]!;
    if (skip + length <= first.length) return first.subarray(skip, skip + length);
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const c = this.chunks[i++]!;
      const piece = c.subarray(skip, Math.min(c.length, skip + length - filled));
      out.set(piece, filled);
      filled += piece.length;
      skip = 0;
    }
    return out;
  }

  /** The peer acknowledged the first `n` bytes: forget them. */
  acknowledge(n: number): void {
    let left = Math.min(n, this.bytes);
    this.bytes -= left;
    while (left > 0) {
      const c = this.chunks[0]!;
      const inChunk = c.length - this.headOffset;
      if (left >= inChunk) {
        this.chunks.shift();
        this.headOffset = 0;
        left -= inChunk;
      } else {
        this.headOffset += left;
        left = 0;
      }
    }
  }

  clear(): void {
    this.chunks = [];
    this.headOffset = 0;
    this.bytes = 0;
  }
}

const EMPTY = new Uint8Array(0);
