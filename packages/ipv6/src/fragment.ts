/**
 * The fragment header and fragmentation on send (RFC 8200 4.5).
 *
 * IPv6 routers never fragment: only the source does, for the path MTU it knows (at least 1280,
 * RFC 8200 5), and it says so in an 8-byte extension header:
 *
 *  0               1               2               3
 * +---------------+---------------+-------------------------+-+-+
 * |  Next Header  |   Reserved    |     Fragment Offset     |Res|M|
 * +---------------+---------------+-------------------------+---+-+
 * |                        Identification                         |
 * +---------------------------------------------------------------+
 *
 * The offset counts 8-byte units of the fragmentable part (what follows the fragment header in
 * the original packet); M says more fragments follow. Every fragment carries the same
 * identification, chosen by the source (RFC 7739: unpredictable, which is the caller's part).
 */
import { fail, ok, type Ipv6Address, type ParseResult } from '@tapstack/link';
import { IPV6_HEADER_LENGTH, IPV6_MAX_PAYLOAD_LENGTH, IPV6_MIN_MTU, IpNextHeader, Ipv6Repr } from './header.ts';

export const IPV6_FRAGMENT_HEADER_LENGTH = 8;
/** Offsets count 8-byte units. */
export const IPV6_FRAGMENT_UNIT = 8;

export interface Ipv6FragmentRepr {
  /** The type of the first header of the fragmentable part (in every fragment, RFC 8200 4.5). */
  readonly nextHeader: number;
  /** In bytes, a multiple of 8. */
  readonly offset: number;
  readonly moreFragments: boolean;
  readonly identification: number;
}

export const Ipv6FragmentRepr = {
  /** Reads the fragment header at `bytes[at..at+8)`. */
  parse(bytes: Uint8Array, at = 0): ParseResult<Ipv6FragmentRepr, 'truncated'> {
    if (bytes.length - at < IPV6_FRAGMENT_HEADER_LENGTH) return fail('truncated');
    const word = (bytes[at + 2]! << 8) | bytes[at + 3]!;
    return ok({
      nextHeader: bytes[at]!,
      offset: word & 0xfff8,
      moreFragments: (word & 1) !== 0,
      identification: ((bytes[at + 4]! << 24) | (bytes[at + 5]! << 16) | (bytes[at + 6]! << 8) | bytes[at + 7]!) >>> 0,
    });
  },

  /** Writes the 8 bytes at `at` (reserved fields zero). Throws on an offset that is not a multiple of 8 or too large. */
  emit(repr: Ipv6FragmentRepr, buffer: Uint8Array, at = 0): void {
    if (repr.offset % IPV6_FRAGMENT_UNIT !== 0 || repr.offset > 0xfff8) throw new RangeError(`fragment offset ${repr.offset}: a multiple of 8 up to 65528`);
    const word = repr.offset | (repr.moreFragments ? 1 : 0);
    buffer[at] = repr.nextHeader;
    buffer[at + 1] = 0;
    buffer[at + 2] = word >>> 8;
    buffer[at + 3] = word & 0xff;
    const id = repr.identification >>> 0;
    buffer[at + 4] = id >>> 24;
    buffer[at + 5] = (id >>> 16) & 0xff;
    buffer[at + 6] = (id >>> 8) & 0xff;
    buffer[at + 7] = id & 0xff;
  },
};

/** What every packet of a send repeats: the fixed header's fields but the length. */
export type Ipv6PacketHeader = Omit<Ipv6Repr, 'payloadLength'>;

export interface FragmentOptions {
  /** Bytes left free before each packet (14 for an Ethernet header to be written there). */
  readonly headroom?: number;
}

/**
 * The packets that carry `payload` (the upper-layer message, of type `header.nextHeader`) to a
 * path of `mtu` bytes: one packet when it fits, else fragments of the largest multiple of 8 that
 * fits beside the 40-byte header and the 8-byte fragment header (1448 bytes on a 1500 MTU, as
 * Linux cuts them), all with `identification`. Each buffer holds `headroom` free bytes, then the
 * packet. Extension headers of the unfragmentable part are not supported: the stack sends none
 * with large packets.
 */
export function fragmentIpv6(header: Ipv6PacketHeader, payload: Uint8Array, mtu: number, identification: number, options: FragmentOptions = {}): Uint8Array[] {
  const headroom = options.headroom ?? 0;
  if (mtu < IPV6_MIN_MTU) throw new RangeError(`IPv6 path MTU ${mtu} is below the minimum of 1280 (RFC 8200 5)`);
  if (IPV6_HEADER_LENGTH + payload.length <= mtu) {
    const out = new Uint8Array(headroom + IPV6_HEADER_LENGTH + payload.length);
    Ipv6Repr.emit({ ...header, payloadLength: payload.length }, out, headroom);
    out.set(payload, headroom + IPV6_HEADER_LENGTH);
    return [out];
  }
  if (payload.length + IPV6_FRAGMENT_HEADER_LENGTH > IPV6_MAX_PAYLOAD_LENGTH) throw new RangeError(`IPv6 payload of ${payload.length} bytes cannot be fragmented (65527 at most)`);
  const chunk = Math.floor((mtu - IPV6_HEADER_LENGTH - IPV6_FRAGMENT_HEADER_LENGTH) / IPV6_FRAGMENT_UNIT) * IPV6_FRAGMENT_UNIT;
  const packets: Uint8Array[] = [];
  const fragmentHeader = { ...header, nextHeader: IpNextHeader.FRAGMENT };
  for (let offset = 0; offset < payload.length; offset += chunk) {
    const size = Math.min(chunk, payload.length - offset);
    const out = new Uint8Array(headroom + IPV6_HEADER_LENGTH + IPV6_FRAGMENT_HEADER_LENGTH + size);
    Ipv6Repr.emit({ ...fragmentHeader, payloadLength: IPV6_FRAGMENT_HEADER_LENGTH + size }, out, headroom);
    Ipv6FragmentRepr.emit(
      { nextHeader: header.nextHeader, offset, moreFragments: offset + size < payload.length, identification },
      out,
      headroom + IPV6_HEADER_LENGTH,
    );
    out.set(payload.subarray(offset, offset + size), headroom + IPV6_HEADER_LENGTH + IPV6_FRAGMENT_HEADER_LENGTH);
    packets.push(out);
  }
  return packets;
}

/** The key fragments of one packet share (RFC 8200 4.5: source, destination, identification). */
export function fragmentKey(source: Ipv6Address, destination: Ipv6Address, identification: number): string {
  return `${source.key}/${destination.key}/${identification}`;
}
