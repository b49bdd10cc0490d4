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

export const TCP_PROTOCOL = 6;
export const TCP_MIN_HEADER_LENGTH = 20;
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
