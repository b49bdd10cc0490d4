/**
 * The upper-layer checksum over the IPv6 pseudo-header (RFC 8200 8.1).
 *
 * IPv6 has no header checksum, so every upper layer that has a checksum (ICMPv6, UDP, TCP) covers
 * the addresses itself, through a pseudo-header it never sends:
 *
 * +---------------------------------------------------------------+
 * |                 Source Address (16 bytes)                     |
 * +---------------------------------------------------------------+
 * |              Destination Address (16 bytes)                   |
 * +---------------------------------------------------------------+
 * |                   Upper-Layer Packet Length (32 bits)         |
 * +-----------------------------------------------+---------------+
 * |                      zero                     |  Next Header  |
 * +-----------------------------------------------+---------------+
 *
 * The length is that of the upper-layer header and data (not of extension headers before it),
 * the next header is the upper layer's number (58, 17, 6) even when extension headers come
 * between, and the destination is the final one (after a routing header). Unlike IPv4's UDP, a
 * UDP checksum is mandatory over IPv6 (RFC 8200 8.1). ICMPv6 covers the pseudo-header too (RFC
 * 4443 2.3), where ICMPv4 did not.
 *
 * The one's complement arithmetic is IPv4's (packages/ipv4/src/checksum.ts): the same
 * `checksumAdd`/`foldChecksum` primitives, imported rather than copied.
 */
import { checksumAdd, foldChecksum } from '@tapstack/ipv4';
import type { Ipv6Address } from '@tapstack/link';

/**
 * The partial (unfolded) sum of the pseudo-header; pass it as `initial` to `internetChecksum`
 * over the upper-layer message. `length` is the upper-layer length (up to 32 bits).
 */
export function ipv6PseudoHeaderSum(source: Ipv6Address, destination: Ipv6Address, nextHeader: number, length: number): number {
  let sum = checksumAdd(source.bytes);
  sum = checksumAdd(destination.bytes, sum);
  return sum + Math.floor(length / 0x10000) + (length & 0xffff) + (nextHeader & 0xff);
}

/**
 * The same sum with the addresses read where they lie: source and destination are the 32 bytes
 * at `addressesOffset` (a fixed header's bytes 8..40), so a received packet is summed without
 * making Ipv6Address values.
 */
export function ipv6PseudoHeaderSumAt(buffer: Uint8Array, addressesOffset: number, nextHeader: number, length: number): number {
  const sum = checksumAdd(buffer, 0, addressesOffset, addressesOffset + 32);
  return sum + Math.floor(length / 0x10000) + (length & 0xffff) + (nextHeader & 0xff);
}

/**
 * The checksum to write into an upper-layer message (its checksum field must be zero while
 * summing), or, over a message that carries a correct checksum, 0.
 */
export function ipv6UpperLayerChecksum(
  source: Ipv6Address,
  destination: Ipv6Address,
  nextHeader: number,
  message: Uint8Array,
  offset = 0,
  end = message.length,
): number {
  const sum = checksumAdd(message, ipv6PseudoHeaderSum(source, destination, nextHeader, end - offset), offset, end);
  return ~foldChecksum(sum) & 0xffff;
}
