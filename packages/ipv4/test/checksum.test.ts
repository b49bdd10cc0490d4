import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checksumAdd, foldChecksum, internetChecksum, pseudoHeaderSum, updateChecksum } from '../src/checksum.ts';
import { hex } from '../../../test/support/fixtures.ts';

/** The textbook definition, one 16-bit word at a time with the carry folded every step. */
function referenceChecksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    const word = (bytes[i]! << 8) | (i + 1 < bytes.length ? bytes[i + 1]! : 0);
    sum += word;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ~sum & 0xffff;
}

describe('internetChecksum', () => {
  it('matches the worked example of RFC 1071 section 3', () => {
    // 00 01 f2 03 f4 f5 f6 f7: one's complement sum ddf2, checksum 220d.
    const bytes = hex('0001f203f4f5f6f7');
    expect(foldChecksum(checksumAdd(bytes))).toBe(0xddf2);
    expect(internetChecksum(bytes)).toBe(0x220d);
  });

  it('computes the header checksum the kernel wrote (10.0.0.1 > 10.0.0.2 echo request, 0x8e98)', () => {
    const header = hex('4500001c984640004001 0000 0a0000010a000002');
    expect(internetChecksum(header)).toBe(0x8e98);
    header[10] = 0x8e;
    header[11] = 0x98;
    expect(internetChecksum(header)).toBe(0);
  });

  it('pads an odd last byte with zero', () => {
    expect(internetChecksum(hex('01'))).toBe(~0x0100 & 0xffff);
    expect(internetChecksum(hex('0102 03'))).toBe(~(0x0102 + 0x0300) & 0xffff);
  });

  it('is 0xffff over nothing', () => {
    expect(internetChecksum(new Uint8Array(0))).toBe(0xffff);
  });

  it('agrees with the word-at-a-time definition on any bytes, at any offset range', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(), fc.nat(), (bytes, a, b) => {
        expect(internetChecksum(bytes)).toBe(referenceChecksum(bytes));
        const start = bytes.length === 0 ? 0 : a % bytes.length;
        const end = start + (bytes.length === start ? 0 : b % (bytes.length - start + 1));
        expect(internetChecksum(bytes, 0, start, end)).toBe(referenceChecksum(bytes.subarray(start, end)));
      }),
    );
  });

  it('agrees with the definition for views at every alignment of their memory (the aligned-word path)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 256, maxLength: 1600 }), fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 7 }), (data, at, from) => {
        // the same bytes at another offset of another buffer, summed from an even or odd start
        const memory = new Uint8Array(data.length + 16).fill(0x5a);
        memory.set(data, at);
        const view = memory.subarray(at, at + data.length);
        expect(internetChecksum(view, 0, from)).toBe(referenceChecksum(data.subarray(from)));
        expect(internetChecksum(data, 0, from)).toBe(referenceChecksum(data.subarray(from)));
        memory.fill(0xff, at, at + 4);
        data.fill(0xff, 0, 4);
        expect(internetChecksum(view)).toBe(referenceChecksum(data));
      }),
    );
  });

  it('handles the largest datagram without losing carries (all 0xff)', () => {
    const bytes = new Uint8Array(65535).fill(0xff);
    expect(internetChecksum(bytes)).toBe(referenceChecksum(bytes));
  });

  it('chains: summing in even-length pieces equals summing the whole', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.nat(), (bytes, cut) => {
        const at = bytes.length === 0 ? 0 : (cut % bytes.length) & ~1;
        const partial = checksumAdd(bytes.subarray(0, at));
        expect(internetChecksum(bytes.subarray(at), partial)).toBe(internetChecksum(bytes));
      }),
    );
  });

  it('foldChecksum folds every carry, below 2^32 (shifts) and above (division), as one fold at a time does', () => {
    const oneAtATime = (sum: number): number => {
      while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
      return sum;
    };
    for (const sum of [0, 0xffff, 0x10000, 0x1fffe, 0x7fffffff, 0x80000000, 0xfffeffff, 0xffffffff, 0x100000000, 2 ** 46 - 1]) {
      expect(foldChecksum(sum)).toBe(oneAtATime(sum));
    }
    fc.assert(
      fc.property(fc.oneof(fc.nat({ max: 0xffffffff }), fc.integer({ min: 0, max: 2 ** 46 })), (sum) => {
        expect(foldChecksum(sum)).toBe(oneAtATime(sum));
      }),
      { numRuns: 2000 },
    );
  });

  it('verifies to zero once the checksum is written into the data', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 1500 }), (bytes) => {
        bytes[2] = 0;
        bytes[3] = 0;
        const c = internetChecksum(bytes);
        bytes[2] = c >>> 8;
        bytes[3] = c & 0xff;
        expect(internetChecksum(bytes)).toBe(0);
      }),
    );
  });
});

describe('pseudoHeaderSum', () => {
  it('equals summing the 12-byte pseudo-header (RFC 768)', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), fc.nat({ max: 255 }), fc.nat({ max: 0xffff }), (s, d, p, l) => {
        const ph = new Uint8Array(12);
        const v = new DataView(ph.buffer);
        v.setUint32(0, s);
        v.setUint32(4, d);
        ph[9] = p;
        v.setUint16(10, l);
        expect(foldChecksum(pseudoHeaderSum(s, d, p, l))).toBe(foldChecksum(checksumAdd(ph)));
      }),
    );
  });

  // The fixture's UDP checksum field holds 0x141f, only the pseudo-header part: the kernel left
  // the rest to checksum offload on the veth. tshark computes the full one as 0xc715.
  it('gives the full UDP checksum of the fixture datagram (10.0.0.1:45645 > 10.0.0.2:9 "hi\\n": 0xc715, as tshark computes)', () => {
    const udp = hex('b24d0009000b0000 68690a');
    const src = 0x0a000001;
    const dst = 0x0a000002;
    expect(internetChecksum(udp, pseudoHeaderSum(src, dst, 17, udp.length))).toBe(0xc715);
    // and what the kernel left in the field is exactly the folded pseudo-header sum
    expect(foldChecksum(pseudoHeaderSum(src, dst, 17, udp.length))).toBe(0x141f);
  });
});

describe('updateChecksum (RFC 1624)', () => {
  it('equals recomputing after one word changes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 8, maxLength: 200 }), fc.nat({ max: 0xffff }), (bytes, word) => {
        const data = bytes.subarray(0, bytes.length & ~1);
        data[2] = 0;
        data[3] = 0;
        const before = internetChecksum(data);
        const old = (data[0]! << 8) | data[1]!;
        data[0] = word >>> 8;
        data[1] = word & 0xff;
        const after = internetChecksum(data);
        // One's complement has two zeros; a verifier accepts either, so compare as sums.
        const updated = updateChecksum(before, old, word);
        expect(updated === after || (updated | after) === 0xffff && (updated & after) === 0 && (updated === 0 || after === 0)).toBe(true);
        data[2] = updated >>> 8;
        data[3] = updated & 0xff;
        expect(internetChecksum(data)).toBe(0);
      }),
    );
  });

  it('verifies when the change leaves the data all zeros (echo reply with id 0, seq 0, no data)', () => {
    // Echo request 08 00 f7ff 0000 0000; the reply changes the type word 0x0800 to 0x0000. Every
    // other word is zero, so only -0 (0xffff) verifies: eqn 3 alone yields +0 (0x0000) here.
    const message = hex('0800f7ff00000000');
    expect(internetChecksum(message)).toBe(0);
    const updated = updateChecksum(0xf7ff, 0x0800, 0x0000);
    message[0] = 0;
    message[2] = updated >>> 8;
    message[3] = updated & 0xff;
    expect(internetChecksum(message)).toBe(0);
    expect(updated).toBe(0xffff);
    // The same with zero data after the header (ping -p 00 with identifier 0).
    const padded = new Uint8Array(64);
    padded[0] = 8;
    padded[2] = 0xf7;
    padded[3] = 0xff;
    expect(internetChecksum(padded)).toBe(0);
    const again = updateChecksum(0xf7ff, 0x0800, 0x0000);
    padded[0] = 0;
    padded[2] = again >>> 8;
    padded[3] = again & 0xff;
    expect(internetChecksum(padded)).toBe(0);
  });
});
