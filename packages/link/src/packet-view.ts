/**
 * The part every re-pointable header view shares (Ipv4Packet, Ipv6Packet, TcpPacket): where the
 * packet lies, `buffer[start..end)`, and `repoint` to move the view to the next packet without
 * making a new one. The receive path keeps one view per layer and re-points it at every packet,
 * so a good packet costs no allocation (the handler contract of docs/03-ipv4-icmp.md); a view
 * made with `new` or `check` is the same object, used once.
 *
 * Only these accessors live here. The fields of each header stay in its own class, read at
 * `from` + the field's offset, and the subclasses never override what is here: each getter
 * then sees at most three shapes (one per header class), which V8 keeps polymorphic and inlines,
 * rather than the megamorphic lookups a deeper or wider hierarchy would cost per packet.
 */
export abstract class PacketView {
  /** The bytes the packet lies in: on the receive path the whole Ethernet frame. */
  protected buf: Uint8Array;
  /** Where the packet starts in `buf`. */
  protected from: number;
  /** Where it ends in `buf` (padding after it left out). */
  protected to: number;
  /** `buf[from..to)` as one view, made on first use (or `buf` itself when that is all of it). */
  private view: Uint8Array | undefined;

  /** Wraps `buffer[start..end)` (by default all of it) without checking. */
  constructor(buffer: Uint8Array, start = 0, end = buffer.length) {
    this.buf = buffer;
    this.from = start;
    this.to = end;
    this.view = start === 0 && end === buffer.length ? buffer : undefined;
  }

  /**
   * Points this view at another packet, `buffer[start..end)`, without checking (each class's
   * `checkAt` checks where the bytes lie). Anything that kept this view sees the new packet
   * from now on, so handlers keep values read from it, never the view.
   */
  repoint(buffer: Uint8Array, start: number, end: number): void {
    this.buf = buffer;
    this.from = start;
    this.to = end;
    this.view = undefined;
  }

  /** The whole packet, header and payload (a view, made on first use). */
  get bytes(): Uint8Array {
    return (this.view ??= this.buf.subarray(this.from, this.to));
  }
  /** The bytes the packet lies in (a whole frame on the receive path), from `start` to `end`. */
  get buffer(): Uint8Array {
    return this.buf;
  }
  /** Where the packet starts in `buffer`. */
  get start(): number {
    return this.from;
  }
  /** Where it ends in `buffer`. */
  get end(): number {
    return this.to;
  }
}
