/**
 * The send buffer: bytes the application wrote that the peer has not acknowledged yet, from
 * SND.UNA on. Bytes before SND.NXT have been sent (and are kept for retransmission); the rest
 * waits for window. Bounded: `write` takes only what fits, and the socket waits for room.
 *
 * Stored as a queue of chunks. A write is copied in (the application may reuse its buffer as soon
 * as the write is done, as with Node's sockets), into fixed-size pages of the stack's shared
 * `TcpMemory` (memory.ts): a page takes writes until it is full, each chunk is a view of the part
 * one write (or a run of writes) filled, and the page goes back to the pool once every byte in it
 * is acknowledged, to be filled again by this connection or another, so sending leaves nothing
 * for the garbage collector. A buffer with nothing unacknowledged holds no page. A write whose
 * bytes were marked unchanging (`markUnchanging`) is not copied: the chunk is the application's
 * own view, kept by reference.
 * A segment's data never becomes an array of its own: `range` names where it lies, and the layer
 * copies it from the chunks straight into the frame it builds. So a byte is copied twice on its
 * way to the device (into the buffer, into the frame), or once when the application's buffer is
 * unchanging, as Linux's sendfile(2) sends page-cache pages without copying them into the socket.
 */
import { TcpMemory } from './memory.ts';

/**
 * A segment's data as a connection hands it to its host: `length` bytes that `copyTo` writes into
 * a frame. The object may be reused for the next segment: a host that keeps the bytes copies them
 * (`segmentBytes`) during the call.
 */
export interface SegmentData {
  readonly length: number;
  /** Writes the `length` bytes into `target` from `offset` on. */
  copyTo(target: Uint8Array, offset: number): void;
}

/** No data (ACKs, SYNs, RSTs). */
export const NO_DATA: SegmentData = { length: 0, copyTo: () => {} };

/** A segment's data as an array of its own (a copy). */
export function segmentBytes(data: SegmentData): Uint8Array {
  const out = new Uint8Array(data.length);
  data.copyTo(out, 0);
  return out;
}

/** Bytes given to `SegmentData` form: `copyTo` copies all of them. */
export function bytesAsSegmentData(bytes: Uint8Array): SegmentData {
  return { length: bytes.length, copyTo: (target, offset) => target.set(bytes, offset) };
}

const unchanging = new WeakSet<ArrayBufferLike>();

/**
 * A promise from the application: the bytes of `bytes.buffer` (the whole ArrayBuffer, not only
 * this view) never change again. Writes of views into that memory are then kept by reference,
 * not copied into the send buffer. Wrong use corrupts data on the wire, so mark only memory made
 * for the purpose (never a Buffer from Node's shared pool: `Buffer.allocUnsafe` of less than 4 KB).
 */
export function markUnchanging(bytes: Uint8Array): void {
  unchanging.add(bytes.buffer);
}

/** `markUnchanging` was called for this memory. */
export function isUnchanging(bytes: Uint8Array): boolean {
  return unchanging.has(bytes.buffer);
}

export class SendBuffer {
  private chunks: Uint8Array[] = [];
  /** Bytes of chunks[0] already acknowledged. */
  private headOffset = 0;
  private bytes = 0;
  /**
   * The pages the copied chunks lie in, oldest first. A page's chunks follow each other in
   * `chunks` (a page is filled only while it is the last one, and a referenced write closes it),
   * so the head page is free once the last chunk in it is acknowledged.
   */
  private pages: Uint8Array[] = [];
  /** The last page still takes bytes, from `fill` on. */
  private tailOpen = false;
  private fill = 0;
  /**
   * Where the last lookup ended: the chunk and its first byte's position counted from the start
   * of chunks[0]. Segments are read in order, so the next lookup starts there instead of walking
   * every chunk from the head (which costs O(chunks) per segment when the application writes small).
   */
  private cursorIndex = 0;
  private cursorStart = 0;
  private readonly view = new SendBufferRange(this);
  /** Writes kept by reference (unchanging memory), for counters and tests. */
  referencedWrites = 0;

  /**
   * `memory`: the pool pages come from and go back to, shared by the stack's connections (a
   * buffer made without one has a pool of its own, with the defaults).
   */
  constructor(
    private size: number,
    private readonly memory: TcpMemory = new TcpMemory(),
  ) {}

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

  /** Pages of the pool it holds now. */
  get pagesHeld(): number {
    return this.pages.length;
  }

  /**
   * Takes as much of `data` as fits (a copy, or a reference to unchanging memory); returns the
   * bytes taken. Less than fits when the stack's memory is at its limit (TcpMemory): then only
   * what the page being filled still takes.
   */
  write(data: Uint8Array): number {
    const n = Math.min(data.length, this.free);
    if (n <= 0) return 0;
    if (unchanging.has(data.buffer)) {
      this.chunks.push(n === data.length ? data : data.subarray(0, n));
      this.referencedWrites++;
      this.tailOpen = false; // bytes copied later must not land in a page before this chunk
      this.bytes += n;
      return n;
    }
    let taken = 0;
    while (taken < n) {
      let page = this.pages[this.pages.length - 1];
      if (!this.tailOpen || page === undefined || this.fill === page.length) {
        const fresh = this.memory.takePage(this.pages.length);
        if (!fresh) break;
        this.pages.push(fresh);
        page = fresh;
        this.tailOpen = true;
        this.fill = 0;
      }
      const k = Math.min(n - taken, page.length - this.fill);
      page.set(k === data.length ? data : data.subarray(taken, taken + k), this.fill);
      // A run of writes into one page is one chunk: the last one grows when it ends where these bytes begin.
      const lastIndex = this.chunks.length - 1;
      const last = this.chunks[lastIndex];
      if (last !== undefined && last.buffer === page.buffer && last.byteOffset + last.length === this.fill) {
        this.chunks[lastIndex] = new Uint8Array(page.buffer, last.byteOffset, last.length + k);
      } else {
        this.chunks.push(page.subarray(this.fill, this.fill + k));
      }
      this.fill += k;
      taken += k;
    }
    this.bytes += taken;
    return taken;
  }

  /**
   * `length` bytes starting `offset` bytes after the first unacknowledged one, as `SegmentData`
   * (nothing copied yet). The same object comes back from the next call: use it before.
   */
  range(offset: number, length: number): SegmentData {
    this.check(offset, length);
    this.view.offset = offset;
    this.view.length = length;
    return this.view;
  }

  /** Copies `length` bytes from `offset` into `target` at `at`. */
  copyTo(offset: number, length: number, target: Uint8Array, at: number): void {
    this.check(offset, length);
    if (length === 0) return;
    let i = this.locate(offset);
    let skip = offset + this.headOffset - this.cursorStart;
    let filled = 0;
    while (filled < length) {
      const c = this.chunks[i++]!;
      const take = Math.min(c.length - skip, length - filled);
      target.set(skip === 0 && take === c.length ? c : c.subarray(skip, skip + take), at + filled);
      filled += take;
      skip = 0;
    }
  }

  /**
   * `length` bytes from `offset` as one array: a view when they lie in one chunk, else a copy. A
   * view of a page is valid only until those bytes are acknowledged (the page is then reused).
   */
  read(offset: number, length: number): Uint8Array {
    this.check(offset, length);
    if (length === 0) return EMPTY;
    const i = this.locate(offset);
    const skip = offset + this.headOffset - this.cursorStart;
    const first = this.chunks[i]!;
    if (skip + length <= first.length) return first.subarray(skip, skip + length);
    const out = new Uint8Array(length);
    this.copyTo(offset, length, out, 0);
    return out;
  }

  /** The peer acknowledged the first `n` bytes: forget them, and give back the pages they emptied. */
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
        // Positions count from chunks[0]: the cursor moves with it.
        this.cursorIndex--;
        this.cursorStart -= c.length;
        if (this.cursorIndex < 0) {
          this.cursorIndex = 0;
          this.cursorStart = 0;
        }
        this.chunkDone(c);
      } else {
        this.headOffset += left;
        left = 0;
      }
    }
  }

  /** Forgets everything and gives every page back (the connection is over). */
  clear(): void {
    this.chunks = [];
    this.headOffset = 0;
    this.bytes = 0;
    this.cursorIndex = 0;
    this.cursorStart = 0;
    for (const page of this.pages) this.memory.givePage(page);
    this.pages = [];
    this.tailOpen = false;
    this.fill = 0;
  }

  /** Chunk `c` is acknowledged: its page goes back once no chunk lies in it and no write will fill it. */
  private chunkDone(c: Uint8Array): void {
    const head = this.pages[0];
    if (head === undefined || c.buffer !== head.buffer) return;
    const next = this.chunks[0];
    if (next !== undefined && next.buffer === head.buffer) return;
    // The page being filled stays while bytes are outstanding (the next write goes on in it); with
    // nothing left to acknowledge it goes too, so an idle connection holds no page.
    if (this.tailOpen && this.pages.length === 1 && this.bytes > 0) return;
    this.pages.shift();
    if (this.pages.length === 0) this.tailOpen = false;
    this.memory.givePage(head);
  }

  private check(offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > this.bytes) throw new RangeError(`send buffer holds ${this.bytes} bytes, asked for ${offset}+${length}`);
  }

  /** The index of the chunk holding byte `offset` (offset > 0 bytes held); leaves the cursor on it. */
  private locate(offset: number): number {
    const position = offset + this.headOffset;
    let i = 0;
    let start = 0;
    if (position >= this.cursorStart && this.cursorIndex < this.chunks.length) {
      i = this.cursorIndex;
      start = this.cursorStart;
    }
    while (position - start >= this.chunks[i]!.length) start += this.chunks[i++]!.length;
    this.cursorIndex = i;
    this.cursorStart = start;
    return i;
  }
}

/** The reusable `SegmentData` of one send buffer. */
class SendBufferRange implements SegmentData {
  offset = 0;
  length = 0;

  constructor(private readonly buffer: SendBuffer) {}

  copyTo(target: Uint8Array, offset: number): void {
    this.buffer.copyTo(this.offset, this.length, target, offset);
  }
}

const EMPTY = new Uint8Array(0);
