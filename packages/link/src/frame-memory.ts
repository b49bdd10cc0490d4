/**
 * The memory an IP layer builds its outgoing frames in. On a link that copies each frame before
 * `send` returns (the TAP device's staging buffer: `Link.copiesFrames`), a frame whose bytes are
 * all written anew can be built in one reused buffer: a new ArrayBuffer per frame, zeroed and
 * later collected, was a large part of the send path's cost (docs/performance.md). Anywhere else a
 * frame gets memory of its own, because the link (or a neighbour resolver's queue) may keep it.
 *
 * IPv4 and IPv6 each own one. Ownership: the frame `frame()` returns is the caller's until the
 * link's `send` returns; if the neighbour resolver queued it instead (waiting for ARP or NDP), the
 * caller says so with `kept()` and the next frame is built in new memory.
 */
export class FrameMemory {
  private memory: Uint8Array | undefined;
  /** The view of `memory` handed out last, handed out again for a frame of the same length. */
  private view: Uint8Array | undefined;

  /**
   * Memory for one frame of `length` bytes. `reusable`: the link copies frames and every byte of
   * this one will be written. `capacity`: the size to allocate the reused buffer at (the largest
   * frame the layer sends, a super-frame included), so it is not outgrown frame by frame.
   */
  frame(length: number, reusable: boolean, capacity: number): Uint8Array {
    if (!reusable) return new Uint8Array(length);
    let memory = this.memory;
    if (memory === undefined || memory.length < length) {
      memory = new Uint8Array(Math.max(length, capacity));
      this.memory = memory;
    }
    // Kept for the next frame of the same length (most are full segments): a new view per frame
    // was the largest allocation left on a download's send path.
    let view = this.view;
    if (view === undefined || view.length !== length || view.buffer !== memory.buffer) {
      view = memory.subarray(0, length);
      this.view = view;
    }
    return view;
  }

  /** Someone else keeps `frame` now (a resolver queued it): if it is the reused buffer, let it go. */
  kept(frame: Uint8Array): void {
    if (frame.buffer === this.memory?.buffer) {
      this.memory = undefined;
      this.view = undefined;
    }
  }
}
