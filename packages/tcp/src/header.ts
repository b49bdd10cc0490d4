/**
 * The TCP header (RFC 9293 3.1) and its options (RFC 9293 3.2, RFC 7323, RFC 2018).
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |          Source Port          |       Destination Port        |
 *    |                        Sequence Number                        |
 *    |                    Acknowledgment Number                      |
 *    |  Data |       |C|E|U|A|P|R|S|F|                               |
 *    | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
 *    |       |       |R|E|G|K|H|T|N|N|                               |
 *    |           Checksum            |         Urgent Pointer        |
 *    |                    Options                    |    Padding    |
 *    |                             Data                              |
 *
 * What is settled here and shared by the whole package: the flag bits, the option kinds, and the
 * plain `TcpRepr` every other file speaks (the connection takes and makes `TcpRepr`s, never bytes).
 */
import { foldChecksum, internetChecksum, IPV4_MIN_HEADER_LENGTH, IpProtocol, pseudoHeaderSum } from '@tapstack/ipv4';
import { ipv6PseudoHeaderSum, ipv6PseudoHeaderSumAt } from '@tapstack/ipv6';
import { fail, formatIpv4, ok, PacketView, type Ipv4Address, type ParseResult } from '@tapstack/link';
import type { SegmentData } from './send-buffer.ts';
import type { TcpAddress } from './address.ts';

/** The flag bits of header byte 13. */
export const TcpFlag = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

/** Option kinds (IANA "TCP Option Kind Numbers"). */
export const TcpOptionKind = {
  END: 0,
  NOP: 1,
  MSS: 2,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMPS: 8,
} as const;

export const TCP_MIN_HEADER_LENGTH = 20;
/** RFC 9293 3.7.1: the MSS a peer that sends no MSS option is taken to accept. */
export const TCP_DEFAULT_MSS = 536;

/**
 * The MSS a path of this MTU carries: the MTU less the two fixed headers (RFC 9293 3.7.1), IPv4's
 * 20 bytes by default; over IPv6 pass its 40 (RFC 8200 8.3: MTU - 60).
 */
export function mssForMtu(mtu: number, ipHeaderLength: number = IPV4_MIN_HEADER_LENGTH): number {
  return mtu - ipHeaderLength - TCP_MIN_HEADER_LENGTH;
}
/** The fixed IPv6 header's length, for `mssForMtu` over IPv6. */
export const IPV6_FIXED_HEADER_LENGTH = 40;
export const TCP_MAX_HEADER_LENGTH = 60;
/** RFC 7323 2.3: a shift count above 14 is used as 14. */
export const TCP_MAX_WINDOW_SCALE = 14;

/** One SACK block (RFC 2018): the bytes [left, right) arrived. Sequence numbers. */
export interface SackBlock {
  readonly left: number;
  readonly right: number;
}

/** The options of a segment that this stack understands; unknown ones are skipped by length. */
export interface TcpOptions {
  /** Maximum segment size (SYN only). */
  readonly mss?: number;
  /** Window scale shift count as sent (SYN only; 0-14, larger values are clamped by the reader). */
  readonly windowScale?: number;
  /** SACK-permitted (SYN only). */
  readonly sackPermitted?: boolean;
  /** SACK blocks (at most 4; 3 when timestamps are present). */
  readonly sackBlocks?: readonly SackBlock[];
  /** Timestamps: TSval and TSecr (RFC 7323). */
  readonly timestamps?: { readonly value: number; readonly echo: number };
}

/**
 * A segment's header as plain values. `window` is the raw 16-bit field (the scaling is the
 * connection's business); `ack` is meaningful only with the ACK flag. The payload travels
 * beside it, never inside it.
 */
export interface TcpRepr {
  readonly sourcePort: number;
  readonly destinationPort: number;
  readonly seq: number;
  readonly ack: number;
  /** Bits of TcpFlag. */
  readonly flags: number;
  readonly window: number;
  readonly urgentPointer: number;
  readonly options: TcpOptions;
}

/** The options of a segment that carries none. */
export const NO_OPTIONS: TcpOptions = Object.freeze({});

/** The length a segment occupies in sequence space: its data, plus one each for SYN and FIN. */
export function segmentLength(repr: TcpRepr, payloadLength: number): number {
  return payloadLength + (repr.flags & TcpFlag.SYN ? 1 : 0) + (repr.flags & TcpFlag.FIN ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------
// The codec: offsets, a zero-copy view, parse/emit of the Repr, the checksum, a formatter.


/** Field offsets. */
export const TcpField = {
  SOURCE_PORT: 0,
  DESTINATION_PORT: 2,
  SEQ: 4,
  ACK: 8,
  /** Data offset (high 4 bits, in 32-bit words) and the reserved bits. */
  DATA_OFFSET: 12,
  FLAGS: 13,
  WINDOW: 14,
  CHECKSUM: 16,
  URGENT_POINTER: 18,
  OPTIONS: 20,
} as const;

/** Why bytes are not a TCP segment (each is a drop counter of the layer). */
export type TcpCheckError =
  /** Fewer than 20 bytes. */
  | 'truncated'
  /** Data offset below 5 words, or past the end of the bytes. */
  | 'bad_data_offset'
  /** An option whose length is 0 or 1, runs past the header, or has the wrong length for its kind. */
  | 'bad_option_length';

/**
 * The Internet checksum of a segment under its pseudo-header: IPv4's (RFC 9293 3.1) for IPv4
 * addresses, IPv6's (RFC 8200 8.1: both 16-byte addresses, a 32-bit length, next header 6) for
 * IPv6 ones. 0 over a segment with a correct checksum.
 */
export function tcpChecksum(bytes: Uint8Array, source: TcpAddress, destination: TcpAddress): number {
  return internetChecksum(bytes, tcpPseudoHeaderSum(source, destination, bytes.length));
}

/** The partial (unfolded) sum of the pseudo-header of a segment of `length` bytes. */
export function tcpPseudoHeaderSum(source: TcpAddress, destination: TcpAddress, length: number): number {
  if (typeof source === 'number') return pseudoHeaderSum(source, destination as Ipv4Address, IpProtocol.TCP, length);
  if (typeof destination === 'number') throw new TypeError('a TCP pseudo-header needs two addresses of one family');
  return ipv6PseudoHeaderSum(source, destination, IpProtocol.TCP, length);
}

/**
 * The checksum of a received IPv6 segment with the addresses read where they lie (`ipv6Packet`
 * starts with the fixed header): no Ipv6Address is made per segment. 0 when it is right.
 */
export function tcp6ChecksumAt(bytes: Uint8Array, ipv6Packet: Uint8Array): number {
  return internetChecksum(bytes, ipv6PseudoHeaderSumAt(ipv6Packet, 8, IpProtocol.TCP, bytes.length));
}

/**
 * Walks an option list and calls `visit(kind, offset, length)` for every option but NOP and
 * EOL (`offset` is where the option starts in `bytes`). Returns false when the list is
 * malformed: a length below 2, an option running past the end, or a known option whose length
 * is not the one its RFC gives. Unknown options are skipped by their length.
 */
function walkOptions(bytes: Uint8Array, start: number, end: number, visit?: (kind: number, offset: number, length: number) => void): boolean {
  let i = start;
  while (i < end) {
    const kind = bytes[i]!;
    if (kind === TcpOptionKind.END) return true;
    if (kind === TcpOptionKind.NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) return false;
    const length = bytes[i + 1]!;
    if (length < 2 || i + length > end) return false;
    switch (kind) {
      case TcpOptionKind.MSS:
        if (length !== 4) return false;
        break;
      case TcpOptionKind.WINDOW_SCALE:
        if (length !== 3) return false;
        break;
      case TcpOptionKind.SACK_PERMITTED:
        if (length !== 2) return false;
        break;
      case TcpOptionKind.TIMESTAMPS:
        if (length !== 10) return false;
        break;
      case TcpOptionKind.SACK:
        if (length < 10 || (length - 2) % 8 !== 0) return false;
        break;
    }
    visit?.(kind, i, length);
    i += length;
  }
  return true;
}

/**
 * A zero-copy view of a TCP segment (header, options and data) at `buffer[start..end)`. On
 * network input construct it with `TcpPacket.check`, which validates the data offset and the
 * option list once; the receive path instead re-points one view per layer at each segment
 * (`checkAt`, then `repoint`), as IPv4 does with its packets, so a segment costs no view of
 * its own: fields are read from the buffer where they lie.
 */
export class TcpPacket extends PacketView {
  /** Wraps `buffer[start..end)` (by default all of it) without checking; use `check` for network input. */
  constructor(buffer: Uint8Array, start = 0, end = buffer.length) {
    super(buffer, start, end);
  }

  /** Checks the length, the data offset and the option list; never throws. */
  static check(bytes: Uint8Array): ParseResult<TcpPacket, TcpCheckError> {
    const failure = TcpPacket.checkAt(bytes, 0, bytes.length);
    return failure === undefined ? ok(new TcpPacket(bytes)) : fail(failure);
  }

  /**
   * `check` without a result or a view: undefined when the segment at `buffer[start..end)`
   * passes, else why not. The receive path uses this, then `repoint`s its one view.
   */
  static checkAt(buffer: Uint8Array, start: number, end: number): TcpCheckError | undefined {
    if (end - start < TCP_MIN_HEADER_LENGTH) return 'truncated';
    const headerLength = (buffer[start + TcpField.DATA_OFFSET]! >>> 4) * 4;
    if (headerLength < TCP_MIN_HEADER_LENGTH || headerLength > end - start) return 'bad_data_offset';
    if (headerLength > TCP_MIN_HEADER_LENGTH && !walkOptions(buffer, start + TcpField.OPTIONS, start + headerLength)) return 'bad_option_length';
    return undefined;
  }

  // repoint, bytes, buffer, start and end: PacketView's (a received segment lies in its frame)

  get sourcePort(): number {
    return this.u16(TcpField.SOURCE_PORT);
  }
  set sourcePort(port: number) {
    this.setU16(TcpField.SOURCE_PORT, port);
  }

  get destinationPort(): number {
    return this.u16(TcpField.DESTINATION_PORT);
  }
  set destinationPort(port: number) {
    this.setU16(TcpField.DESTINATION_PORT, port);
  }

  get seq(): number {
    return readU32(this.buf, this.from + TcpField.SEQ);
  }
  set seq(value: number) {
    writeU32(this.buf, this.from + TcpField.SEQ, value >>> 0);
  }

  get ack(): number {
    return readU32(this.buf, this.from + TcpField.ACK);
  }
  set ack(value: number) {
    writeU32(this.buf, this.from + TcpField.ACK, value >>> 0);
  }

  /** Header length in bytes (the data offset field times 4). */
  get headerLength(): number {
    return (this.buf[this.from + TcpField.DATA_OFFSET]! >>> 4) * 4;
  }

  /** The 8 flag bits (TcpFlag). */
  get flags(): number {
    return this.buf[this.from + TcpField.FLAGS]!;
  }
  set flags(value: number) {
    this.buf[this.from + TcpField.FLAGS] = value & 0xff;
  }

  get window(): number {
    return this.u16(TcpField.WINDOW);
  }
  set window(value: number) {
    this.setU16(TcpField.WINDOW, value);
  }

  get checksum(): number {
    return this.u16(TcpField.CHECKSUM);
  }
  set checksum(value: number) {
    this.setU16(TcpField.CHECKSUM, value);
  }

  get urgentPointer(): number {
    return this.u16(TcpField.URGENT_POINTER);
  }

  /** The option bytes (between the fixed header and the data; a view). */
  get options(): Uint8Array {
    return this.buf.subarray(this.from + TcpField.OPTIONS, this.from + this.headerLength);
  }

  /** Bytes of data after the header. */
  get payloadLength(): number {
    return this.to - this.from - this.headerLength;
  }

  /** The data after the header (a view, not a copy; one shared empty array when there is none). */
  get payload(): Uint8Array {
    const at = this.from + this.headerLength;
    return at === this.to ? EMPTY_PAYLOAD : this.buf.subarray(at, this.to);
  }

  /** True when the checksum is right for these addresses (TCP's checksum is never optional). */
  verifyChecksum(source: TcpAddress, destination: TcpAddress): boolean {
    return internetChecksum(this.buf, tcpPseudoHeaderSum(source, destination, this.to - this.from), this.from, this.to) === 0;
  }

  /** Computes the checksum for these addresses and writes it. */
  fillChecksum(source: TcpAddress, destination: TcpAddress): void {
    this.checksum = 0;
    this.checksum = internetChecksum(this.buf, tcpPseudoHeaderSum(source, destination, this.to - this.from), this.from, this.to);
  }

  private u16(field: number): number {
    return (this.buf[this.from + field]! << 8) | this.buf[this.from + field + 1]!;
  }
  private setU16(field: number, value: number): void {
    this.buf[this.from + field] = (value >>> 8) & 0xff;
    this.buf[this.from + field + 1] = value & 0xff;
  }
}

const EMPTY_PAYLOAD = new Uint8Array(0);

/**
 * Options rewritten for every segment: read into by `TcpRepr.readInto` on the receive path, and
 * filled in by a connection for each segment it sends. Every field is present, undefined when
 * the segment does not carry the option, and the SACK blocks and timestamps are objects of its
 * own, overwritten in place. Whoever keeps a value past the segment copies it (`TcpRepr.copy`).
 */
export class ReusedTcpOptions implements TcpOptions {
  mss: number | undefined = undefined;
  windowScale: number | undefined = undefined;
  sackPermitted: boolean | undefined = undefined;
  sackBlocks: readonly SackBlock[] | undefined = undefined;
  timestamps: { readonly value: number; readonly echo: number } | undefined = undefined;
  private readonly ts = { value: 0, echo: 0 };
  /** One array per block count (1-4, RFC 2018 3: at most 4 fit in 40 bytes), its blocks rewritten. */
  private readonly blocks: { left: number; right: number }[][] = [1, 2, 3, 4].map((n) => Array.from({ length: n }, () => ({ left: 0, right: 0 })));

  /**
   * No options: what a segment about to be described starts from, so that nothing of the
   * previous segment's (a SYN's MSS, an ACK's SACK blocks) is carried into the next.
   */
  clear(): void {
    this.mss = undefined;
    this.windowScale = undefined;
    this.sackPermitted = undefined;
    this.sackBlocks = undefined;
    this.timestamps = undefined;
  }

  /** The timestamps option (RFC 7323 3), written into the object this one keeps for it. */
  setTimestamps(value: number, echo: number): void {
    this.ts.value = value;
    this.ts.echo = echo;
    this.timestamps = this.ts;
  }

  /**
   * Reads the options of a checked option list, `bytes[start..end)`, clearing those absent. An
   * unchecked list is read up to its first malformed option, never past `end`.
   */
  read(bytes: Uint8Array, start: number, end: number): void {
    this.clear();
    for (let i = start; i < end; ) {
      const kind = bytes[i]!;
      if (kind === TcpOptionKind.END) break;
      if (kind === TcpOptionKind.NOP) {
        i++;
        continue;
      }
      const length = bytes[i + 1] ?? 0;
      // checked lists never stop here; an unchecked one must not loop or read past its end
      if (length < 2 || i + length > end) break;
      switch (kind) {
        case TcpOptionKind.MSS:
          this.mss = (bytes[i + 2]! << 8) | bytes[i + 3]!;
          break;
        case TcpOptionKind.WINDOW_SCALE:
          this.windowScale = bytes[i + 2]!;
          break;
        case TcpOptionKind.SACK_PERMITTED:
          this.sackPermitted = true;
          break;
        case TcpOptionKind.TIMESTAMPS:
          this.ts.value = readU32(bytes, i + 2);
          this.ts.echo = readU32(bytes, i + 6);
          this.timestamps = this.ts;
          break;
        case TcpOptionKind.SACK: {
          // a checked list: 10, 18, 26 or 34 bytes; more than 4 blocks cannot fit in 40 bytes
          const count = Math.min(4, (length - 2) >>> 3);
          if (count === 0) break;
          const blocks = this.blocks[count - 1]!;
          for (let b = 0; b < count; b++) {
            blocks[b]!.left = readU32(bytes, i + 2 + 8 * b);
            blocks[b]!.right = readU32(bytes, i + 6 + 8 * b);
          }
          this.sackBlocks = blocks;
          break;
        }
      }
      i += length;
    }
  }
}

/**
 * A TcpRepr rewritten for every segment, so that a segment costs no objects of its own: the
 * receive path reads each segment into the layer's one (`TcpRepr.readInto`), and the send path
 * describes each outgoing segment in one that the connections share (connection.ts, `OUTGOING`).
 * Valid until the next segment is written into it.
 */
export class ReusedTcpRepr implements TcpRepr {
  sourcePort = 0;
  destinationPort = 0;
  seq = 0;
  ack = 0;
  flags = 0;
  window = 0;
  urgentPointer = 0;
  readonly options = new ReusedTcpOptions();
}

/** Reads the options this stack understands out of a checked option list. */
export function parseOptions(bytes: Uint8Array, start: number, end: number): TcpOptions {
  let mss: number | undefined;
  let windowScale: number | undefined;
  let sackPermitted = false;
  let sackBlocks: SackBlock[] | undefined;
  let timestamps: { value: number; echo: number } | undefined;
  walkOptions(bytes, start, end, (kind, o) => {
    switch (kind) {
      case TcpOptionKind.MSS:
        mss = (bytes[o + 2]! << 8) | bytes[o + 3]!;
        break;
      case TcpOptionKind.WINDOW_SCALE:
        windowScale = bytes[o + 2]!;
        break;
      case TcpOptionKind.SACK_PERMITTED:
        sackPermitted = true;
        break;
      case TcpOptionKind.TIMESTAMPS:
        timestamps = { value: readU32(bytes, o + 2), echo: readU32(bytes, o + 6) };
        break;
      case TcpOptionKind.SACK: {
        const length = bytes[o + 1]!;
        sackBlocks = [];
        for (let b = o + 2; b + 8 <= o + length; b += 8) sackBlocks.push({ left: readU32(bytes, b), right: readU32(bytes, b + 4) });
        break;
      }
    }
  });
  const out: { -readonly [K in keyof TcpOptions]: TcpOptions[K] } = {};
  if (mss !== undefined) out.mss = mss;
  if (windowScale !== undefined) out.windowScale = windowScale;
  if (sackPermitted) out.sackPermitted = true;
  if (sackBlocks) out.sackBlocks = sackBlocks;
  if (timestamps) out.timestamps = timestamps;
  return out;
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/**
 * Bytes the options take on the wire, in the layout Linux writes (tcp_options_write), which is
 * always a multiple of 4: MSS (4); timestamps (12: NOP NOP TS, or SACK-permitted TS when both);
 * SACK-permitted alone (4: NOP NOP SACK-perm); window scale (4: NOP WS); SACK blocks
 * (4 + 8 per block: NOP NOP SACK).
 */
export function optionsLength(options: TcpOptions): number {
  let n = 0;
  if (options.mss !== undefined) n += 4;
  if (options.timestamps) n += 12;
  else if (options.sackPermitted) n += 4;
  if (options.windowScale !== undefined) n += 4;
  if (options.sackBlocks && options.sackBlocks.length > 0) n += 4 + 8 * options.sackBlocks.length;
  return n;
}

function emitOptions(options: TcpOptions, b: Uint8Array, o: number): void {
  if (options.mss !== undefined) {
    b[o++] = TcpOptionKind.MSS;
    b[o++] = 4;
    b[o++] = options.mss >>> 8;
    b[o++] = options.mss & 0xff;
  }
  if (options.timestamps) {
    if (options.sackPermitted) {
      b[o++] = TcpOptionKind.SACK_PERMITTED;
      b[o++] = 2;
    } else {
      b[o++] = TcpOptionKind.NOP;
      b[o++] = TcpOptionKind.NOP;
    }
    b[o++] = TcpOptionKind.TIMESTAMPS;
    b[o++] = 10;
    writeU32(b, o, options.timestamps.value);
    writeU32(b, o + 4, options.timestamps.echo);
    o += 8;
  } else if (options.sackPermitted) {
    b[o++] = TcpOptionKind.NOP;
    b[o++] = TcpOptionKind.NOP;
    b[o++] = TcpOptionKind.SACK_PERMITTED;
    b[o++] = 2;
  }
  if (options.windowScale !== undefined) {
    b[o++] = TcpOptionKind.NOP;
    b[o++] = TcpOptionKind.WINDOW_SCALE;
    b[o++] = 3;
    b[o++] = options.windowScale;
  }
  const blocks = options.sackBlocks;
  if (blocks && blocks.length > 0) {
    b[o++] = TcpOptionKind.NOP;
    b[o++] = TcpOptionKind.NOP;
    b[o++] = TcpOptionKind.SACK;
    b[o++] = 2 + 8 * blocks.length;
    for (const block of blocks) {
      writeU32(b, o, block.left);
      writeU32(b, o + 4, block.right);
      o += 8;
    }
  }
}

export const TcpRepr = {
  /** The Repr of a checked segment (options this stack does not know are left out). */
  parse(packet: TcpPacket): TcpRepr {
    return {
      sourcePort: packet.sourcePort,
      destinationPort: packet.destinationPort,
      seq: packet.seq,
      ack: packet.ack,
      flags: packet.flags,
      window: packet.window,
      urgentPointer: packet.urgentPointer,
      options: packet.headerLength > TCP_MIN_HEADER_LENGTH ? parseOptions(packet.buffer, packet.start + TcpField.OPTIONS, packet.start + packet.headerLength) : NO_OPTIONS,
    };
  },

  /**
   * `parse` into `into` instead of a new object: the fields read where they lie in the buffer,
   * the options into `into.options` (absent ones cleared). Allocates nothing.
   */
  readInto(packet: TcpPacket, into: ReusedTcpRepr): ReusedTcpRepr {
    const b = packet.buffer;
    const o = packet.start;
    into.sourcePort = (b[o]! << 8) | b[o + 1]!;
    into.destinationPort = (b[o + 2]! << 8) | b[o + 3]!;
    into.seq = readU32(b, o + TcpField.SEQ);
    into.ack = readU32(b, o + TcpField.ACK);
    into.flags = b[o + TcpField.FLAGS]!;
    into.window = (b[o + TcpField.WINDOW]! << 8) | b[o + TcpField.WINDOW + 1]!;
    into.urgentPointer = (b[o + TcpField.URGENT_POINTER]! << 8) | b[o + TcpField.URGENT_POINTER + 1]!;
    into.options.read(b, o + TcpField.OPTIONS, o + packet.headerLength);
    return into;
  },

  /**
   * A Repr of its own with the same values (options and SACK blocks copied): for whoever keeps a
   * segment's description past the call that handed it over (a reused one is rewritten next).
   */
  copy(repr: TcpRepr): TcpRepr {
    const o = repr.options;
    const options: { -readonly [K in keyof TcpOptions]: TcpOptions[K] } = {};
    if (o.mss !== undefined) options.mss = o.mss;
    if (o.windowScale !== undefined) options.windowScale = o.windowScale;
    if (o.sackPermitted) options.sackPermitted = true;
    if (o.sackBlocks) options.sackBlocks = o.sackBlocks.map((b) => ({ left: b.left, right: b.right }));
    if (o.timestamps) options.timestamps = { value: o.timestamps.value, echo: o.timestamps.echo };
    const { sourcePort, destinationPort, seq, ack, flags, window, urgentPointer } = repr;
    return { sourcePort, destinationPort, seq, ack, flags, window, urgentPointer, options };
  },

  /** Header length in bytes for these options (20 + options, at most 60). */
  headerLength(repr: TcpRepr): number {
    return TCP_MIN_HEADER_LENGTH + optionsLength(repr.options);
  },

  /** Bytes the whole segment takes: header, options and `payloadLength` bytes of data. */
  bufferLength(repr: TcpRepr, payloadLength: number): number {
    return TcpRepr.headerLength(repr) + payloadLength;
  },

  /**
   * Writes the segment into `buffer` (exactly `bufferLength` bytes from `offset`): header,
   * options, `payload` (bytes, or a send buffer's range copied straight in), then the checksum for `source` and `destination`. Throws when the
   * options do not fit in 40 bytes (a programming error, not network input).
   * With `partialChecksum` the checksum field gets only the pseudo-header's sum, folded and not
   * complemented, for a device to finish over the segment (virtio-net NEEDS_CSUM): the bytes are
   * not summed at all.
   */
  emit(repr: TcpRepr, payload: Uint8Array | SegmentData, buffer: Uint8Array, source: TcpAddress, destination: TcpAddress, offset = 0, partialChecksum = false): void {
    const headerLength = TcpRepr.headerLength(repr);
    if (headerLength > TCP_MAX_HEADER_LENGTH) throw new RangeError(`TCP options of ${headerLength - 20} bytes do not fit in 40`);
    // written at `offset` into the buffer itself: a view of the segment per send costs more than the header's writes
    const b = buffer;
    const o = offset;
    const length = headerLength + payload.length;
    if (o + length > b.length) throw new RangeError(`a segment of ${length} bytes does not fit at ${o} in ${b.length}`);
    b[o] = repr.sourcePort >>> 8;
    b[o + 1] = repr.sourcePort & 0xff;
    b[o + 2] = repr.destinationPort >>> 8;
    b[o + 3] = repr.destinationPort & 0xff;
    writeU32(b, o + TcpField.SEQ, repr.seq);
    writeU32(b, o + TcpField.ACK, repr.flags & TcpFlag.ACK ? repr.ack : 0);
    b[o + TcpField.DATA_OFFSET] = (headerLength / 4) << 4;
    b[o + TcpField.FLAGS] = repr.flags & 0xff;
    b[o + TcpField.WINDOW] = repr.window >>> 8;
    b[o + TcpField.WINDOW + 1] = repr.window & 0xff;
    b[o + TcpField.CHECKSUM] = 0;
    b[o + TcpField.CHECKSUM + 1] = 0;
    b[o + TcpField.URGENT_POINTER] = repr.urgentPointer >>> 8;
    b[o + TcpField.URGENT_POINTER + 1] = repr.urgentPointer & 0xff;
    emitOptions(repr.options, b, o + TcpField.OPTIONS);
    if (payload.length > 0) {
      if (payload instanceof Uint8Array) b.set(payload, o + headerLength);
      else payload.copyTo(b, o + headerLength);
    }
    const pseudo = tcpPseudoHeaderSum(source, destination, length);
    const sum = partialChecksum ? foldChecksum(pseudo) : internetChecksum(b, pseudo, o, o + length);
    b[o + TcpField.CHECKSUM] = sum >>> 8;
    b[o + TcpField.CHECKSUM + 1] = sum & 0xff;
  },
};

const FLAG_LETTERS: readonly [number, string][] = [
  [TcpFlag.FIN, 'F'],
  [TcpFlag.SYN, 'S'],
  [TcpFlag.RST, 'R'],
  [TcpFlag.PSH, 'P'],
  [TcpFlag.ACK, '.'],
  [TcpFlag.URG, 'U'],
  [TcpFlag.ECE, 'E'],
  [TcpFlag.CWR, 'W'],
];

/** tcpdump's flag letters: `[S.]` for SYN+ACK, `[P.]` for PSH+ACK, `[none]` for no flags. */
export function formatTcpFlags(flags: number): string {
  let s = '';
  for (const [bit, letter] of FLAG_LETTERS) if (flags & bit) s += letter;
  return `[${s || 'none'}]`;
}

/** tcpdump's spelling of the options: `mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7`. */
export function formatTcpOptions(bytes: Uint8Array, start: number, end: number): string {
  const parts: string[] = [];
  for (let i = start; i < end; ) {
    const kind = bytes[i]!;
    if (kind === TcpOptionKind.END) {
      parts.push('eol');
      break;
    }
    if (kind === TcpOptionKind.NOP) {
      parts.push('nop');
      i++;
      continue;
    }
    const length = bytes[i + 1] ?? 0;
    if (length < 2 || i + length > end) {
      parts.push('bad opt');
      break;
    }
    switch (kind) {
      case TcpOptionKind.MSS:
        parts.push(`mss ${(bytes[i + 2]! << 8) | bytes[i + 3]!}`);
        break;
      case TcpOptionKind.WINDOW_SCALE:
        parts.push(`wscale ${bytes[i + 2]}`);
        break;
      case TcpOptionKind.SACK_PERMITTED:
        parts.push('sackOK');
        break;
      case TcpOptionKind.TIMESTAMPS:
        parts.push(`TS val ${readU32(bytes, i + 2)} ecr ${readU32(bytes, i + 6)}`);
        break;
      case TcpOptionKind.SACK: {
        const blocks: string[] = [];
        for (let b = i + 2; b + 8 <= i + length; b += 8) blocks.push(`{${readU32(bytes, b)}:${readU32(bytes, b + 4)}}`);
        parts.push(`sack ${blocks.length} ${blocks.join('')}`);
        break;
      }
      default:
        parts.push(`unknown-${kind}`);
    }
    i += length;
  }
  return parts.join(',');
}

/**
 * One line like tcpdump's: `10.0.0.1.41866 > 10.0.0.2.7: Flags [S], seq 3094795631, win 64240,
 * options [mss 1460,sackOK,TS val 409240835 ecr 0,nop,wscale 10], length 0`. With `base`, the
 * sequence and acknowledgement numbers are printed relative to it (tcpdump's default), as
 * `seq 1:7` for data. Never throws.
 */
export function formatTcp(
  bytes: Uint8Array,
  source?: TcpAddress,
  destination?: TcpAddress,
  base?: { seq: number; ack: number },
): string {
  const checked = TcpPacket.check(bytes);
  const text = (a: TcpAddress): string => (typeof a === 'number' ? formatIpv4(a) : a.toString());
  const prefix = (sp: number, dp: number): string =>
    source !== undefined && destination !== undefined ? `${text(source)}.${sp} > ${text(destination)}.${dp}: ` : `${sp} > ${dp}: `;
  if (!checked.ok) {
    if (bytes.length >= 4) return `${prefix((bytes[0]! << 8) | bytes[1]!, (bytes[2]! << 8) | bytes[3]!)}TCP [${checked.reason}], length ${bytes.length}`;
    return `TCP [${checked.reason}], length ${bytes.length}`;
  }
  const p = checked.value;
  const length = p.payload.length;
  const seq = base ? (p.seq - base.seq) >>> 0 : p.seq;
  let line = `${prefix(p.sourcePort, p.destinationPort)}Flags ${formatTcpFlags(p.flags)}`;
  if (length > 0 || p.flags & (TcpFlag.SYN | TcpFlag.FIN | TcpFlag.RST)) {
    line += length > 0 ? `, seq ${seq}:${(seq + length) >>> 0}` : `, seq ${seq}`;
  }
  if (p.flags & TcpFlag.ACK) line += `, ack ${base ? (p.ack - base.ack) >>> 0 : p.ack}`;
  line += `, win ${p.window}`;
  if (p.headerLength > TCP_MIN_HEADER_LENGTH) line += `, options [${formatTcpOptions(p.bytes, TcpField.OPTIONS, p.headerLength)}]`;
  return `${line}, length ${length}`;
}
