/**
 * Stage 2 of the send path for the datagrams that are not one plain frame: those with IP options,
 * and those larger than the MTU, which are cut into fragments (RFC 791 3.2): every piece but the
 * last carries a multiple of 8 bytes, each gets the header again with its offset and the
 * more-fragments flag, and options without the copy flag go in the first fragment only (later
 * ones get no-ops in their place, as Linux's ip_options_fragment does, so the header keeps its
 * length). Headers are written with Ipv4Repr.emit: the per-fragment cost is small next to the copy.
 */
import { ETHERNET_HEADER_LENGTH, EtherType, writeEtherType } from '@tapstack/link';
import { IPV4_FRAGMENT_UNIT, IPV4_MAX_HEADER_LENGTH, IPV4_MIN_HEADER_LENGTH, Ipv4Repr } from './header.ts';

/** What every fragment's header repeats: a Repr but for the fragment fields, ECN and the length. */
export type DatagramHeader = Omit<Ipv4Repr, 'ecn' | 'moreFragments' | 'fragmentOffset' | 'payloadLength'>;

/** The payload as bytes (a PayloadWriter writes itself into a new buffer). */
export function payloadOf(request: { readonly payload: Uint8Array | { readonly length: number; write(target: Uint8Array): void } }): Uint8Array {
  const payload = request.payload;
  if (payload instanceof Uint8Array) return payload;
  const data = new Uint8Array(payload.length);
  payload.write(data);
  return data;
}

/**
 * The Ethernet frames (EtherType set, MACs left for the resolver) that carry `data` under
 * `header` on a link of `mtu`: one when it fits, else fragments.
 */
export function buildFrames(header: DatagramHeader, data: Uint8Array, mtu: number): Uint8Array[] {
  const options = header.options;
  if (options.length % 4 !== 0 || options.length > IPV4_MAX_HEADER_LENGTH - IPV4_MIN_HEADER_LENGTH) {
    throw new RangeError(`IPv4 options must be a multiple of 4 bytes and at most 40, got ${options.length}`);
  }
  const headerLength = IPV4_MIN_HEADER_LENGTH + options.length;
  const whole = headerLength + data.length <= mtu;
  const chunk = whole ? data.length : Math.floor((mtu - headerLength) / IPV4_FRAGMENT_UNIT) * IPV4_FRAGMENT_UNIT;
  const frames: Uint8Array[] = [];
  const later = whole ? options : optionsForLaterFragments(options);
  let offset = 0;
  do {
    const size = Math.min(chunk, data.length - offset);
    const frame = new Uint8Array(ETHERNET_HEADER_LENGTH + headerLength + size);
    writeEtherType(frame, EtherType.IPV4);
    Ipv4Repr.emit(reprOf(header, offset === 0 ? options : later, offset, offset + size < data.length, size), frame, ETHERNET_HEADER_LENGTH);
    frame.set(data.subarray(offset, offset + size), ETHERNET_HEADER_LENGTH + headerLength);
    frames.push(frame);
    offset += size;
  } while (offset < data.length);
  return frames;
}

/** One whole datagram (no Ethernet header, no fragments), for delivery to ourselves. */
export function buildDatagram(header: DatagramHeader, data: Uint8Array): Uint8Array {
  const headerLength = IPV4_MIN_HEADER_LENGTH + header.options.length;
  const bytes = new Uint8Array(headerLength + data.length);
  Ipv4Repr.emit(reprOf(header, header.options, 0, false, data.length), bytes);
  bytes.set(data, headerLength);
  return bytes;
}

function reprOf(header: DatagramHeader, options: Uint8Array, fragmentOffset: number, moreFragments: boolean, payloadLength: number): Ipv4Repr {
  return { ...header, ecn: 0, moreFragments, fragmentOffset, options, payloadLength };
}

/** RFC 791: options whose type lacks the copy flag (0x80) go in the first fragment only; later ones get no-ops in their place. */
export function optionsForLaterFragments(options: Uint8Array): Uint8Array {
  const out = options.slice();
  for (let i = 0; i < out.length; ) {
    const type = out[i]!;
    if (type === 0) break; // end of options
    if (type === 1) {
      i++;
      continue;
    }
    const length = out[i + 1] ?? 0;
    if (length < 2 || i + length > out.length) break;
    if ((type & 0x80) === 0) out.fill(1, i, i + length);
    i += length;
  }
  return out;
}
