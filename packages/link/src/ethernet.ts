/**
 * Ethernet II frames (IEEE 802.3 with an EtherType), in the smoltcp `wire` style:
 * field offsets as constants, a zero-copy view with typed accessors, a plain Repr with
 * parse/emit/bufferLength, and a one-line formatter.
 *
 *  0                   6                   12      14
 * +-------------------+-------------------+-------+----------------------+
 * | destination MAC   | source MAC        | type  | payload (46-1500)    |
 * +-------------------+-------------------+-------+----------------------+
 *
 * The frame check sequence is not seen on a TAP device; nor is the 60-byte minimum padding
 * enforced by it (the kernel sends short frames as written), so neither is required here.
 */
import { MacAddress } from './mac.ts';
import { fail, ok, type ParseResult } from './result.ts';

export const ETHERNET_HEADER_LENGTH = 14;

/** Field offsets. */
export const EthernetField = {
  DESTINATION: 0,
  SOURCE: 6,
  ETHERTYPE: 12,
  PAYLOAD: 14,
} as const;

/** EtherType values (IEEE registry). */
export const EtherType = {
  IPV4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  IPV6: 0x86dd,
  /** IEEE 802 local experimental EtherType 1: free for your own protocols (see examples/05). */
  LOCAL_EXPERIMENTAL_1: 0x88b5,
  LOCAL_EXPERIMENTAL_2: 0x88b6,
} as const;

export function etherTypeName(type: number): string {
  switch (type) {
    case EtherType.IPV4:
      return 'IPv4';
    case EtherType.ARP:
      return 'ARP';
    case EtherType.VLAN:
      return '802.1Q';
    case EtherType.IPV6:
      return 'IPv6';
    default:
      return `0x${type.toString(16).padStart(4, '0')}`;
  }
}

/** A zero-copy view of an Ethernet frame. Construct with `EthernetFrame.check` on network input. */
export class EthernetFrame {
  private readonly view: DataView;

  /** Wraps `bytes` without checking; use `check` for network input. */
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  static check(bytes: Uint8Array): ParseResult<EthernetFrame, 'truncated'> {
    if (bytes.length < ETHERNET_HEADER_LENGTH) return fail('truncated');
    return ok(new EthernetFrame(bytes));
  }

  get destination(): MacAddress {
    return MacAddress.fromBytes(this.bytes, EthernetField.DESTINATION);
  }
  set destination(mac: MacAddress) {
    mac.writeTo(this.bytes, EthernetField.DESTINATION);
  }

  get source(): MacAddress {
    return MacAddress.fromBytes(this.bytes, EthernetField.SOURCE);
  }
  set source(mac: MacAddress) {
    mac.writeTo(this.bytes, EthernetField.SOURCE);
  }

  get etherType(): number {
    return this.view.getUint16(EthernetField.ETHERTYPE);
  }
  set etherType(value: number) {
    this.view.setUint16(EthernetField.ETHERTYPE, value);
  }

  /** The bytes after the header (a view, not a copy). */
  get payload(): Uint8Array {
    return this.bytes.subarray(EthernetField.PAYLOAD);
  }
}

/** The parsed, owned form of an Ethernet header. */
export interface EthernetRepr {
  readonly destination: MacAddress;
  readonly source: MacAddress;
  readonly etherType: number;
}

export const EthernetRepr = {
  parse(frame: EthernetFrame): EthernetRepr {
    return { destination: frame.destination, source: frame.source, etherType: frame.etherType };
  },

  /** Header length; the payload follows. */
  bufferLength(_repr: EthernetRepr, payloadLength = 0): number {
    return ETHERNET_HEADER_LENGTH + payloadLength;
  },

  /** Writes the 14-byte header at the start of `buffer`. */
  emit(repr: EthernetRepr, buffer: Uint8Array): void {
    writeEthernetAddresses(buffer, repr.destination, repr.source);
    writeEtherType(buffer, repr.etherType);
  },
};

/**
 * The two halves of writing an Ethernet header, for the layers that build frames in place: the
 * layer that makes a frame knows its EtherType (IPv4, ARP), the neighbour resolver learns the
 * destination MAC later and fills in the addresses just before the frame goes. Every header in
 * the stack is written through these two (EthernetRepr.emit too); no allocation.
 */
export function writeEtherType(frame: Uint8Array, etherType: number): void {
  frame[EthernetField.ETHERTYPE] = etherType >>> 8;
  frame[EthernetField.ETHERTYPE + 1] = etherType & 0xff;
}

/** The EtherType of a frame (the caller has checked it holds a header). */
export function readEtherType(frame: Uint8Array): number {
  return (frame[EthernetField.ETHERTYPE]! << 8) | frame[EthernetField.ETHERTYPE + 1]!;
}

/** Writes the destination and source MACs (bytes 0-11). */
export function writeEthernetAddresses(frame: Uint8Array, destination: MacAddress, source: MacAddress): void {
  destination.writeTo(frame, EthernetField.DESTINATION);
  source.writeTo(frame, EthernetField.SOURCE);
}

/** Builds a whole frame: header plus a copy of `payload`. */
export function buildEthernetFrame(repr: EthernetRepr, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(ETHERNET_HEADER_LENGTH + payload.length);
  EthernetRepr.emit(repr, frame);
  frame.set(payload, ETHERNET_HEADER_LENGTH);
  return frame;
}

/** One line, tcpdump -e style: `02:00:00:00:0a:01 > ff:ff:ff:ff:ff:ff, ARP, length 42`. */
export function formatEthernet(bytes: Uint8Array): string {
  if (bytes.length < ETHERNET_HEADER_LENGTH) return `[truncated ethernet, length ${bytes.length}]`;
  const f = new EthernetFrame(bytes);
  return `${f.source} > ${f.destination}, ${etherTypeName(f.etherType)}, length ${bytes.length}`;
}
