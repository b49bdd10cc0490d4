/**
 * The Internet checksum (RFC 1071): the 16-bit one's complement of the one's complement sum of
 * the data taken as big-endian 16-bit words (an odd last byte is padded with a zero byte).
 * IPv4 uses it over its header, ICMP over its whole message, UDP and TCP over a pseudo-header
 * plus their segment.
 *
 * Speed matters: it runs over every packet, twice on an echo (verify, then build the reply).
 * Two facts from RFC 1071 make it cheap in JavaScript:
 *  - The sum can be accumulated in a wider register and folded once at the end: carries out of
 *    bit 15 are only deferred, never lost, because 2^16 = 1 (mod 2^16 - 1). A JS number holds
 *    integers exactly up to 2^53, so we add whole 32-bit words (two 16-bit words at once) and
 *    fold once; 65535 bytes of 32-bit words sum to less than 2^46.
 *  - The sum is independent of how the words are grouped, so adding 32-bit big-endian words is
 *    the same as adding their two 16-bit halves.
 */

/**
 * Adds `bytes` to a running one's complement sum and returns the new (unfolded) sum. Chain calls
 * to checksum data in pieces; every piece except the last must have an even length.
 */
export function checksumAdd(bytes: Uint8Array, sum = 0, offset = 0, end = bytes.length): number {
  let i = offset;
  // Four bytes at a time. Long runs read one 32-bit big-endian word per step through a DataView
  // (about twice as fast from a few hundred bytes on), summed in an exact double; short ones,
  // like a 20-byte header, are faster without allocating it.
  const end4 = end - ((end - i) & 3);
  if (end4 - i >= 256) {
    // A segment's data on a little-endian machine: step to a 4-byte boundary of the memory if
    // that is an even number of bytes away, then add the native 32-bit words of an aligned
    // Uint32Array (no byte swapping per word, two sums to keep the adds independent) and swap
    // the folded sum's bytes once: RFC 1071 2(B), the sum does not depend on the byte order.
    // About twice as fast as the DataView loop below on a 1448-byte segment.
    if (LITTLE_ENDIAN && ((bytes.byteOffset + i) & 1) === 0) {
      if (((bytes.byteOffset + i) & 3) === 2) {
        sum += (bytes[i]! << 8) | bytes[i + 1]!;
        i += 2;
      }
      const words = wordsOf(bytes.buffer);
      let k = (bytes.byteOffset + i) >>> 2;
      const last = k + ((end - i) >>> 2);
      let even = 0;
      let odd = 0;
      for (const last4 = last - ((last - k) & 3); k < last4; k += 4) {
        even += words[k]! + words[k + 1]!;
        odd += words[k + 2]! + words[k + 3]!;
      }
      for (; k < last; k++) even += words[k]!;
      const folded = foldChecksum(even + odd);
      sum += ((folded & 0xff) << 8) | (folded >>> 8);
      i = (k << 2) - bytes.byteOffset;
    } else {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (; i < end4; i += 4) sum += view.getUint32(i);
    }
  } else {
    // Short runs (a header, a ping's message) add 16-bit words instead, two per step: under 256
    // bytes they sum to less than 2^23, so the sum stays a small integer (a 32-bit word above
    // 2^31 turns it into a double) and foldChecksum needs no division.
    let words = 0;
    for (; i < end4; i += 4) {
      words += ((bytes[i]! << 8) | bytes[i + 1]!) + ((bytes[i + 2]! << 8) | bytes[i + 3]!);
    }
    sum += words;
  }
  if (end - i >= 2) {
    sum += (bytes[i]! << 8) | bytes[i + 1]!;
    i += 2;
  }
  if (i < end) sum += bytes[i]! << 8;
  return sum;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The 32-bit words of an ArrayBuffer, kept for the last one asked about: the send path sums its
 * segments in one reused frame, so this makes no view per segment.
 */
let wordsBuffer: ArrayBufferLike | undefined;
let words32: Uint32Array<ArrayBufferLike> = new Uint32Array(0);
function wordsOf(buffer: ArrayBufferLike): Uint32Array<ArrayBufferLike> {
  if (buffer !== wordsBuffer) {
    wordsBuffer = buffer;
    words32 = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
  }
  return words32;
}

/** Folds a wide sum into 16 bits (end-around carry), without complementing it. */
export function foldChecksum(sum: number): number {
  // Up to 32 bits (a header or a short message), shifts do it: two folds absorb every carry.
  if (sum <= 0xffffffff) {
    sum = (sum >>> 16) + (sum & 0xffff);
    return (sum >>> 16) + (sum & 0xffff);
  }
  // The sum may exceed 32 bits, so divide rather than shift.
  while (sum > 0xffff) {
    const high = Math.floor(sum / 0x10000);
    sum = sum - high * 0x10000 + high;
  }
  return sum;
}

/**
 * The Internet checksum of `bytes[offset..end)`, optionally continuing a partial sum `initial`
 * (from `checksumAdd` or `pseudoHeaderSum`). Write the result into the checksum field (which
 * must be zero while summing) big-endian. Verifying: the checksum over data that already
 * contains a correct checksum is 0.
 */
export function internetChecksum(bytes: Uint8Array, initial = 0, offset = 0, end = bytes.length): number {
  return ~foldChecksum(checksumAdd(bytes, initial, offset, end)) & 0xffff;
}

/**
 * The partial sum of the IPv4 pseudo-header that UDP and TCP checksums cover (RFC 768, RFC 793):
 * source, destination, zero byte + protocol, and the upper-layer length. Pass it as `initial`
 * to `internetChecksum` over the UDP or TCP header and data.
 */
export function pseudoHeaderSum(source: number, destination: number, protocol: number, length: number): number {
  return (
    (source >>> 16) + (source & 0xffff) + (destination >>> 16) + (destination & 0xffff) + (protocol & 0xff) + (length & 0xffff)
  );
}

/**
 * Updates a checksum after one 16-bit word of the covered data changed from `oldWord` to
 * `newWord`, without summing everything again (RFC 1624, equation 3: HC' = ~(~HC + ~m + m')).
 *
 * Equation 3 gives +0 (0x0000) whenever the new data sums to zero. When the data has become all
 * zeros (an echo reply with identifier 0, sequence 0 and zero data) only -0 (0xffff) verifies,
 * and -0 verifies in every other such case too, so +0 is never returned.
 */
export function updateChecksum(checksum: number, oldWord: number, newWord: number): number {
  const sum = (~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  return ~foldChecksum(sum) & 0xffff || 0xffff;
}
