/**
 * The virtio-net header (struct virtio_net_hdr in linux/virtio_net.h): what a TAP device opened
 * with IFF_VNET_HDR puts in front of every frame it hands us, and wants in front of every frame
 * we write. It is how a virtual machine's network card (virtio-net, QEMU) and the kernel agree on
 * offloads: a frame may be a TCP "super-frame" of up to 64 KB that stands for many MSS-sized
 * segments (GSO/TSO), and its transport checksum may be left for the other side (partial) or
 * already checked (valid). With it, one read(2) or write(2) moves up to 64 KB instead of one
 * 1514-byte frame. The codec is in the smoltcp style: offsets, a view, a Repr with parse/emit.
 *
 *  0       1          2          4          6            8             10
 * +-------+----------+----------+----------+------------+-------------+
 * | flags | gso_type | hdr_len  | gso_size | csum_start | csum_offset |  (12 with num_buffers)
 * +-------+----------+----------+----------+------------+-------------+
 *
 * The 16-bit fields are little-endian: the tun driver uses virtio 1.0's order when asked
 * (TUNSETVNETLE) and the host's own order otherwise, which on x86 and arm64 is the same.
 * The two-byte num_buffers of the 12-byte form (virtio_net_hdr_mrg_rxbuf) means nothing on a TAP
 * device: we write 0 and ignore what we read.
 */
import type { FrameOffload } from './link.ts';
import { fail, ok, type ParseResult } from './result.ts';

/** sizeof(struct virtio_net_hdr): the header length this stack asks for by default. */
export const VIRTIO_NET_HEADER_LENGTH = 10;
/** sizeof(struct virtio_net_hdr_mrg_rxbuf): the other length TUNSETVNETHDRSZ is commonly given. */
export const VIRTIO_NET_HEADER_MRG_LENGTH = 12;

/** Field offsets. */
export const VirtioNetField = {
  FLAGS: 0,
  GSO_TYPE: 1,
  HDR_LEN: 2,
  GSO_SIZE: 4,
  CSUM_START: 6,
  CSUM_OFFSET: 8,
  NUM_BUFFERS: 10,
} as const;

/** Bits of `flags`. */
export const VirtioNetFlag = {
  /** The checksum is partial: sum from csum_start to the end, store at csum_start + csum_offset. */
  NEEDS_CSUM: 0x01,
  /** The checksum was verified by whoever handed us the frame. */
  DATA_VALID: 0x02,
} as const;

/** Values of `gso_type` (the low 7 bits), and the ECN bit that may be or-ed in. */
export const VirtioNetGso = {
  NONE: 0,
  TCPV4: 1,
  UDP: 3,
  TCPV6: 4,
  ECN: 0x80,
} as const;

export interface VirtioNetHeaderRepr {
  readonly flags: number;
  readonly gsoType: number;
  readonly headerLength: number;
  readonly gsoSize: number;
  readonly checksumStart: number;
  readonly checksumOffset: number;
}

/** Why a header (or the frame behind it) was not taken; each is a counter of the TAP device. */
export type VirtioNetProblem =
  /** Fewer bytes than the header length: a read that cannot be a header and a frame. */
  | 'truncated'
  /** A gso_type we did not ask for (TUNSETOFFLOAD enables TCPV4 and TCPV6 only): UDP, unknown. */
  | 'unsupported_gso'
  /** gso_type TCPV4 or TCPV6 with a gso_size of 0. */
  | 'bad_gso_size'
  /** NEEDS_CSUM whose checksum field lies past the end of the frame. */
  | 'bad_csum_start';

/** A zero-copy view of a virtio-net header. */
export class VirtioNetHeader {
  private readonly view: DataView;

  /** Wraps `bytes` (at least 10) without further checks. */
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get flags(): number {
    return this.bytes[VirtioNetField.FLAGS]!;
  }
  get gsoType(): number {
    return this.bytes[VirtioNetField.GSO_TYPE]!;
  }
  get headerLength(): number {
    return this.view.getUint16(VirtioNetField.HDR_LEN, true);
  }
  get gsoSize(): number {
    return this.view.getUint16(VirtioNetField.GSO_SIZE, true);
  }
  get checksumStart(): number {
    return this.view.getUint16(VirtioNetField.CSUM_START, true);
  }
  get checksumOffset(): number {
    return this.view.getUint16(VirtioNetField.CSUM_OFFSET, true);
  }
}

export const VirtioNetHeaderRepr = {
  /** Reads the header at the start of `bytes` (the first `VIRTIO_NET_HEADER_LENGTH` bytes). */
  parse(bytes: Uint8Array): ParseResult<VirtioNetHeaderRepr, 'truncated'> {
    if (bytes.length < VIRTIO_NET_HEADER_LENGTH) return fail('truncated');
    const h = new VirtioNetHeader(bytes);
    return ok({
      flags: h.flags,
      gsoType: h.gsoType,
      headerLength: h.headerLength,
      gsoSize: h.gsoSize,
      checksumStart: h.checksumStart,
      checksumOffset: h.checksumOffset,
    });
  },

  /** Writes `repr` into `target` (10 or 12 bytes; num_buffers, when there, becomes 0). */
  emit(repr: VirtioNetHeaderRepr, target: Uint8Array): void {
    const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
    target[VirtioNetField.FLAGS] = repr.flags;
    target[VirtioNetField.GSO_TYPE] = repr.gsoType;
    view.setUint16(VirtioNetField.HDR_LEN, repr.headerLength, true);
    view.setUint16(VirtioNetField.GSO_SIZE, repr.gsoSize, true);
    view.setUint16(VirtioNetField.CSUM_START, repr.checksumStart, true);
    view.setUint16(VirtioNetField.CSUM_OFFSET, repr.checksumOffset, true);
    if (target.length >= VIRTIO_NET_HEADER_MRG_LENGTH) view.setUint16(VirtioNetField.NUM_BUFFERS, 0, true);
  },
};

/** The header of a plain frame: no flags, no GSO. */
export const PLAIN_VIRTIO_NET_HEADER: VirtioNetHeaderRepr = { flags: 0, gsoType: 0, headerLength: 0, gsoSize: 0, checksumStart: 0, checksumOffset: 0 };

/**
 * What the layers above should know about a received frame of `frameLength` bytes (the bytes
 * after the header), from its header: undefined for a plain frame, or the reason to drop it.
 */
export function offloadOfHeader(repr: VirtioNetHeaderRepr, frameLength: number): ParseResult<FrameOffload | undefined, VirtioNetProblem> {
  const gsoType = repr.gsoType & ~VirtioNetGso.ECN;
  if (gsoType !== VirtioNetGso.NONE && gsoType !== VirtioNetGso.TCPV4 && gsoType !== VirtioNetGso.TCPV6) return fail('unsupported_gso');
  const tcp = gsoType === VirtioNetGso.TCPV4 || gsoType === VirtioNetGso.TCPV6;
  if (tcp && repr.gsoSize === 0) return fail('bad_gso_size');
  const partial = (repr.flags & VirtioNetFlag.NEEDS_CSUM) !== 0;
  if (partial && repr.checksumStart + repr.checksumOffset + 2 > frameLength) return fail('bad_csum_start');
  if (!partial && (repr.flags & VirtioNetFlag.DATA_VALID) === 0 && gsoType === VirtioNetGso.NONE) return ok(undefined);
  return ok({
    checksum: partial ? 'partial' : repr.flags & VirtioNetFlag.DATA_VALID ? 'valid' : 'unverified',
    checksumStart: partial ? repr.checksumStart : 0,
    checksumOffset: partial ? repr.checksumOffset : 0,
    gso: gsoType === VirtioNetGso.TCPV4 ? 'tcpv4' : gsoType === VirtioNetGso.TCPV6 ? 'tcpv6' : 'none',
    segmentSize: tcp ? repr.gsoSize : 0,
    headerLength: tcp ? repr.headerLength : 0,
  });
}

/** The header to write in front of a frame we send with `offload` (a plain header without). */
export function headerOfOffload(offload: FrameOffload | undefined): VirtioNetHeaderRepr {
  if (!offload) return PLAIN_VIRTIO_NET_HEADER;
  const partial = offload.checksum === 'partial';
  const gso = offload.gso;
  return {
    flags: partial ? VirtioNetFlag.NEEDS_CSUM : offload.checksum === 'valid' ? VirtioNetFlag.DATA_VALID : 0,
    gsoType: gso === 'tcpv4' ? VirtioNetGso.TCPV4 : gso === 'tcpv6' ? VirtioNetGso.TCPV6 : VirtioNetGso.NONE,
    headerLength: gso !== 'none' ? offload.headerLength : 0,
    gsoSize: gso !== 'none' ? offload.segmentSize : 0,
    checksumStart: partial ? offload.checksumStart : 0,
    checksumOffset: partial ? offload.checksumOffset : 0,
  };
}

/** One line, like the fields of `struct virtio_net_hdr` in a debugger. */
export function formatVirtioNetHeader(repr: VirtioNetHeaderRepr): string {
  const flags = [repr.flags & VirtioNetFlag.NEEDS_CSUM ? 'NEEDS_CSUM' : '', repr.flags & VirtioNetFlag.DATA_VALID ? 'DATA_VALID' : ''].filter(Boolean).join('|') || '0';
  const base = repr.gsoType & ~VirtioNetGso.ECN;
  const type = base === VirtioNetGso.NONE ? 'NONE' : base === VirtioNetGso.TCPV4 ? 'TCPV4' : base === VirtioNetGso.TCPV6 ? 'TCPV6' : base === VirtioNetGso.UDP ? 'UDP' : String(base);
  const ecn = repr.gsoType & VirtioNetGso.ECN ? '|ECN' : '';
  return `vnet flags ${flags} gso ${type}${ecn} hdr_len ${repr.headerLength} gso_size ${repr.gsoSize} csum_start ${repr.checksumStart} csum_offset ${repr.checksumOffset}`;
}
