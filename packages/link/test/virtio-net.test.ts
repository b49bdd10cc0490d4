// The virtio-net header codec (virtio-net.ts) against literal bytes, and TapDevice's header mode
// against a scripted native handle: how a read is split into header and frame, what the layers
// are told, what is dropped and counted, and what goes in front of a frame we write.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FrameOffload } from '../src/link.ts';
import { TapDevice, type TapHandle } from '../src/tap.ts';
import {
  PLAIN_VIRTIO_NET_HEADER,
  VirtioNetFlag,
  VirtioNetGso,
  VirtioNetHeader,
  VirtioNetHeaderRepr,
  formatVirtioNetHeader,
  headerOfOffload,
  offloadOfHeader,
} from '../src/virtio-net.ts';
import { concat, hex } from '../../../test/support/fixtures.ts';

// What the kernel puts in front of a TCP super-frame from its own stack (tun_put_user): checksum
// partial (NEEDS_CSUM), GSO TCPV4, hdr_len 66 (14 + 20 + 32: TCP with timestamps), gso_size 1448,
// csum_start 34 (the TCP header), csum_offset 16 (TCP's checksum field). Little-endian.
const SUPER_FRAME_HEADER = hex('01 01  42 00  a8 05  22 00  10 00');

describe('VirtioNetHeader (view) and VirtioNetHeaderRepr', () => {
  it('reads the fields of a literal TSO header', () => {
    const h = new VirtioNetHeader(SUPER_FRAME_HEADER);
    expect(h.flags).toBe(VirtioNetFlag.NEEDS_CSUM);
    expect(h.gsoType).toBe(VirtioNetGso.TCPV4);
    expect(h.headerLength).toBe(66);
    expect(h.gsoSize).toBe(1448);
    expect(h.checksumStart).toBe(34);
    expect(h.checksumOffset).toBe(16);
  });

  it('parses and emits the same bytes', () => {
    const r = VirtioNetHeaderRepr.parse(SUPER_FRAME_HEADER);
    expect(r).toEqual({ ok: true, value: { flags: 1, gsoType: 1, headerLength: 66, gsoSize: 1448, checksumStart: 34, checksumOffset: 16 } });
    if (!r.ok) return;
    const out = new Uint8Array(10);
    VirtioNetHeaderRepr.emit(r.value, out);
    expect(out).toEqual(SUPER_FRAME_HEADER);
  });

  it('writes num_buffers 0 in the 12-byte form', () => {
    const out = new Uint8Array(12).fill(0xee);
    VirtioNetHeaderRepr.emit(PLAIN_VIRTIO_NET_HEADER, out);
    expect(out).toEqual(new Uint8Array(12));
  });

  it('refuses fewer than 10 bytes', () => {
    expect(VirtioNetHeaderRepr.parse(SUPER_FRAME_HEADER.subarray(0, 9))).toEqual({ ok: false, reason: 'truncated' });
  });

  it('formats one line', () => {
    expect(formatVirtioNetHeader({ flags: 1, gsoType: 0x81, headerLength: 66, gsoSize: 1448, checksumStart: 34, checksumOffset: 16 })).toBe(
      'vnet flags NEEDS_CSUM gso TCPV4|ECN hdr_len 66 gso_size 1448 csum_start 34 csum_offset 16',
    );
  });

  it('emit then parse gives the same repr (property)', () => {
    const u16 = fc.integer({ min: 0, max: 0xffff });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), u16, u16, u16, u16, (flags, gsoType, headerLength, gsoSize, checksumStart, checksumOffset) => {
        const repr = { flags, gsoType, headerLength, gsoSize, checksumStart, checksumOffset };
        const out = new Uint8Array(10);
        VirtioNetHeaderRepr.emit(repr, out);
        expect(VirtioNetHeaderRepr.parse(out)).toEqual({ ok: true, value: repr });
      }),
    );
  });
});

describe('offloadOfHeader: what the layers are told', () => {
  const header = (over: Partial<VirtioNetHeaderRepr>): VirtioNetHeaderRepr => ({ ...PLAIN_VIRTIO_NET_HEADER, ...over });

  it('a plain header: nothing (the frame is treated as without the header mode)', () => {
    expect(offloadOfHeader(PLAIN_VIRTIO_NET_HEADER, 60)).toEqual({ ok: true, value: undefined });
  });

  it('a TSO super-frame with a partial checksum', () => {
    const r = VirtioNetHeaderRepr.parse(SUPER_FRAME_HEADER);
    if (!r.ok) throw new Error('parse');
    expect(offloadOfHeader(r.value, 14 + 20 + 32 + 3 * 1448)).toEqual({
      ok: true,
      value: { checksum: 'partial', checksumStart: 34, checksumOffset: 16, gso: 'tcpv4', segmentSize: 1448, headerLength: 66 },
    });
  });

  it('DATA_VALID: checked by the kernel', () => {
    expect(offloadOfHeader(header({ flags: VirtioNetFlag.DATA_VALID }), 60)).toEqual({
      ok: true,
      value: { checksum: 'valid', checksumStart: 0, checksumOffset: 0, gso: 'none', segmentSize: 0, headerLength: 0 },
    });
  });

  it('TCPV6 (TUN_F_TSO6): a TCP/IPv6 super-frame, both ways', () => {
    const r = offloadOfHeader(header({ flags: 1, gsoType: VirtioNetGso.TCPV6, headerLength: 86, gsoSize: 1428, checksumStart: 54, checksumOffset: 16 }), 60000);
    expect(r).toEqual({ ok: true, value: { checksum: 'partial', checksumStart: 54, checksumOffset: 16, gso: 'tcpv6', segmentSize: 1428, headerLength: 86 } });
    expect(headerOfOffload({ checksum: 'partial', checksumStart: 54, checksumOffset: 16, gso: 'tcpv6', segmentSize: 1428, headerLength: 86 })).toEqual({
      flags: 1,
      gsoType: VirtioNetGso.TCPV6,
      headerLength: 86,
      gsoSize: 1428,
      checksumStart: 54,
      checksumOffset: 16,
    });
    expect(offloadOfHeader(header({ gsoType: VirtioNetGso.TCPV6, gsoSize: 0 }), 3000)).toEqual({ ok: false, reason: 'bad_gso_size' });
  });

  it('the ECN bit does not change the type', () => {
    const r = offloadOfHeader(header({ flags: 1, gsoType: VirtioNetGso.TCPV4 | VirtioNetGso.ECN, gsoSize: 1000, checksumStart: 34, checksumOffset: 16 }), 3000);
    expect(r.ok && r.value?.gso).toBe('tcpv4');
  });

  it('drops what we did not enable or what cannot be right, saying why', () => {
    expect(offloadOfHeader(header({ gsoType: VirtioNetGso.UDP, gsoSize: 1000 }), 3000)).toEqual({ ok: false, reason: 'unsupported_gso' });
    expect(offloadOfHeader(header({ gsoType: 9 }), 3000)).toEqual({ ok: false, reason: 'unsupported_gso' });
    expect(offloadOfHeader(header({ gsoType: VirtioNetGso.TCPV4, gsoSize: 0 }), 3000)).toEqual({ ok: false, reason: 'bad_gso_size' });
    // the checksum field (csum_start + csum_offset, 2 bytes) must lie inside the frame
    expect(offloadOfHeader(header({ flags: 1, checksumStart: 34, checksumOffset: 16 }), 51)).toEqual({ ok: false, reason: 'bad_csum_start' });
    expect(offloadOfHeader(header({ flags: 1, checksumStart: 34, checksumOffset: 16 }), 52).ok).toBe(true);
  });

  it('never throws on any header (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 10, maxLength: 12 }), fc.integer({ min: 0, max: 70000 }), (bytes, length) => {
        const r = VirtioNetHeaderRepr.parse(bytes);
        if (r.ok) offloadOfHeader(r.value, length);
      }),
    );
  });
});

describe('headerOfOffload: what goes in front of a frame we send', () => {
  it('a super-frame: NEEDS_CSUM, TCPV4, the segment size and the headers length', () => {
    const offload: FrameOffload = { checksum: 'partial', checksumStart: 34, checksumOffset: 16, gso: 'tcpv4', segmentSize: 1448, headerLength: 66 };
    const out = new Uint8Array(10);
    VirtioNetHeaderRepr.emit(headerOfOffload(offload), out);
    expect(out).toEqual(SUPER_FRAME_HEADER);
  });
  it('a plain frame: ten zero bytes', () => {
    const out = new Uint8Array(10).fill(1);
    VirtioNetHeaderRepr.emit(headerOfOffload(undefined), out);
    expect(out).toEqual(new Uint8Array(10));
  });
});

class FakeHandle implements TapHandle {
  readonly ifname = 'tapfake';
  lengths!: Uint32Array;
  onFrames!: (buffer: ArrayBuffer, count: number) => void;
  written: { frame: number[]; header: number[] | undefined }[] = [];
  start(lengths: Uint32Array, onFrames: FakeHandle['onFrames']): void {
    this.lengths = lengths;
    this.onFrames = onFrames;
  }
  write(frame: Uint8Array, header?: Uint8Array): number {
    this.written.push({ frame: Array.from(frame), header: header && Array.from(header) });
    return frame.length + (header?.length ?? 0);
  }
  wantWritable(): void {}
  configure(): void {}
  hostMac(): Uint8Array {
    return new Uint8Array([2, 0, 0, 0, 0, 1]);
  }
  ref(): void {}
  unref(): void {}
  close(): void {}
  /** Plays one wake-up: each read as the kernel would hand it. */
  reads(...reads: Uint8Array[]): void {
    const total = reads.reduce((n, r) => n + r.length, 0);
    const buffer = new Uint8Array(total);
    let at = 0;
    reads.forEach((r, i) => {
      buffer.set(r, at);
      at += r.length;
      this.lengths[i] = r.length;
    });
    this.onFrames(buffer.buffer, reads.length);
  }
}

describe('TapDevice in virtio-net header mode (scripted handle)', () => {
  const frame = (length: number, fill: number): Uint8Array => new Uint8Array(length).fill(fill);

  it('splits each read into header and frame and hands the offloads up beside the frames', () => {
    const handle = new FakeHandle();
    const tap = TapDevice.fromHandle(handle, { vnetHeaderLength: 10 });
    const got: { frames: Uint8Array[]; offloads: readonly (FrameOffload | undefined)[] | undefined }[] = [];
    tap.setReceiver((frames, offloads) => got.push({ frames: [...frames], offloads }));
    const big = frame(66 + 3 * 1448, 7);
    handle.reads(
      concat(new Uint8Array(10), frame(60, 1)), // plain
      concat(SUPER_FRAME_HEADER, big), // super-frame
      new Uint8Array(5), // shorter than a header: dropped
      concat(hex('00 03  00 00  e8 03  00 00  00 00'), frame(100, 2)), // UDP GSO, never enabled: dropped
    );
    expect(got).toHaveLength(1);
    expect(got[0]!.frames.map((f) => f.length)).toEqual([60, big.length]);
    expect(got[0]!.frames[1]![0]).toBe(7);
    expect(got[0]!.offloads).toEqual([undefined, { checksum: 'partial', checksumStart: 34, checksumOffset: 16, gso: 'tcpv4', segmentSize: 1448, headerLength: 66 }]);
    expect(tap.tapCounters.get('rx_gso_frames')).toBe(1);
    expect(tap.tapCounters.get('rx_csum_partial')).toBe(1);
    expect(tap.tapCounters.get('rx_vnet_truncated')).toBe(1);
    expect(tap.tapCounters.get('rx_vnet_unsupported_gso')).toBe(1);
    expect(tap.counters.get('rx_frames')).toBe(2);
  });

  it('writes the header in front of every frame, and takes super-frames up to 64 KB', () => {
    const handle = new FakeHandle();
    const tap = TapDevice.fromHandle(handle, { vnetHeaderLength: 10 });
    expect(tap.gsoMaxSize).toBe(65535);
    expect(tap.send(frame(60, 1))).toBe(true);
    const offload: FrameOffload = { checksum: 'partial', checksumStart: 34, checksumOffset: 16, gso: 'tcpv4', segmentSize: 1448, headerLength: 66 };
    expect(tap.send(frame(14 + 65535, 2), offload)).toBe(true);
    // without the offload, a frame past the MTU is still too big
    expect(tap.send(frame(14 + 1501, 3))).toBe(false);
    expect(tap.counters.get('tx_dropped_too_big')).toBe(1);
    expect(handle.written.map((w) => w.header)).toEqual([Array.from(new Uint8Array(10)), Array.from(SUPER_FRAME_HEADER)]);
    expect(tap.tapCounters.get('tx_gso_frames')).toBe(1);
    expect(tap.tapCounters.get('tx_csum_partial')).toBe(1);
  });

  it('a plain device takes no super-frames and writes no header', () => {
    const handle = new FakeHandle();
    const tap = TapDevice.fromHandle(handle);
    expect(tap.gsoMaxSize).toBe(0);
    const offload: FrameOffload = { checksum: 'partial', checksumStart: 34, checksumOffset: 16, gso: 'tcpv4', segmentSize: 1448, headerLength: 66 };
    expect(tap.send(frame(14 + 3000, 2), offload)).toBe(false);
    expect(tap.send(frame(60, 1))).toBe(true);
    expect(handle.written).toEqual([{ frame: Array.from(frame(60, 1)), header: undefined }]);
  });
});
