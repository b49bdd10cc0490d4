/**
 * ARP packets (RFC 826) for Ethernet and IPv4, in the smoltcp `wire` style: field offsets as
 * constants, a zero-copy view with typed accessors, a plain Repr with parse/emit/bufferLength,
 * and a one-line tcpdump-like formatter.
 *
 *  0        2        4    5    6        8                 14       18                24       28
 * +--------+--------+----+----+--------+-----------------+--------+-----------------+--------+
 * | htype  | ptype  |hlen|plen| oper   | sender MAC (sha)| sender | target MAC (tha)| target |
 * | 1      | 0x0800 | 6  | 4  | 1 or 2 |                 | IP spa |                 | IP tpa |
 * +--------+--------+----+----+--------+-----------------+--------+-----------------+--------+
 *
 * The address fields sit at offsets computed from hlen/plen, so the view is checked in two
 * stages, as PyTCP does: `ArpPacket.check` (integrity: is there a header, and as many bytes as
 * the header's own lengths declare?) and `ArpRepr.parse` (sanity: are the values ones we
 * understand: Ethernet, IPv4, 6 and 4, request or reply?). Neither ever throws; each failure has
 * its own reason, which the ARP layer counts as `arp.rx_<reason>`.
 */
import {
  ETHERNET_HEADER_LENGTH,
  EtherType,
  EthernetRepr,
  MacAddress,
  fail,
  formatIpv4,
  ok,
  readIpv4,
  writeIpv4,
  type Ipv4Address,
  type ParseResult,
} from '@tapstack/link';

/** Field offsets of the fixed header and (for Ethernet/IPv4) of the addresses. */
export const ArpField = {
  HTYPE: 0,
  PTYPE: 2,
  HLEN: 4,
  PLEN: 5,
  OPER: 6,
  SHA: 8,
  SPA: 14,
  THA: 18,
  TPA: 24,
} as const;

/** Bytes before the addresses. */
export const ARP_HEADER_LENGTH = 8;
/** A whole Ethernet/IPv4 ARP packet. */
export const ARP_PACKET_LENGTH = 28;

/** Hardware type 1: Ethernet (IANA "Hardware Types"). */
export const ARP_HTYPE_ETHERNET = 1;
/** Protocol type: the IPv4 EtherType. */
export const ARP_PTYPE_IPV4 = 0x0800;

/** Opcodes on the wire (IANA "Operation Codes"); we speak 1 and 2. */
export const ArpOpcode = {
  REQUEST: 1,
  REPLY: 2,
} as const;

export type ArpOperation = 'request' | 'reply';

/** Integrity failures: the bytes cannot hold what the header says. */
export type ArpIntegrityError =
  /** Fewer than the 8 bytes of fixed header. */
  | 'truncated_header'
  /** Fewer bytes than 8 + 2 * (hlen + plen). */
  | 'truncated_addresses';

/** Sanity failures: the header is readable but describes something we do not speak. */
export type ArpSanityError = 'bad_htype' | 'bad_ptype' | 'bad_hlen' | 'bad_plen' | 'bad_opcode';

export type ArpParseError = ArpIntegrityError | ArpSanityError;

/** Every reason `check` and `parse` can give, for declaring counters. */
export const ARP_PARSE_ERRORS: readonly ArpParseError[] = [
  'truncated_header',
  'truncated_addresses',
  'bad_htype',
  'bad_ptype',
  'bad_hlen',
  'bad_plen',
  'bad_opcode',
];

/**
 * A zero-copy view of an ARP packet (the Ethernet payload). The header and the raw address
 * accessors work for any packet that passed `check`, at the offsets hlen and plen give; the typed
 * ones (`senderMac`, `senderIp`, ...) are defined for Ethernet/IPv4 (hlen 6, plen 4) and
 * undefined otherwise, so no accessor of a checked packet throws.
 */
export class ArpPacket {
  private readonly view: DataView;

  /** Wraps `bytes` without checking; use `check` for network input. */
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Integrity check: enough bytes for the fixed header and for the addresses it declares. */
  static check(bytes: Uint8Array): ParseResult<ArpPacket, ArpIntegrityError> {
    if (bytes.length < ARP_HEADER_LENGTH) return fail('truncated_header');
    const hlen = bytes[ArpField.HLEN]!;
    const plen = bytes[ArpField.PLEN]!;
    if (bytes.length < ARP_HEADER_LENGTH + 2 * (hlen + plen)) return fail('truncated_addresses');
    return ok(new ArpPacket(bytes));
  }

  get hardwareType(): number {
    return this.view.getUint16(ArpField.HTYPE);
  }
  set hardwareType(value: number) {
    this.view.setUint16(ArpField.HTYPE, value);
  }

  get protocolType(): number {
    return this.view.getUint16(ArpField.PTYPE);
  }
  set protocolType(value: number) {
    this.view.setUint16(ArpField.PTYPE, value);
  }

  get hardwareLength(): number {
    return this.bytes[ArpField.HLEN]!;
  }
  set hardwareLength(value: number) {
    this.bytes[ArpField.HLEN] = value;
  }

  get protocolLength(): number {
    return this.bytes[ArpField.PLEN]!;
  }
  set protocolLength(value: number) {
    this.bytes[ArpField.PLEN] = value;
  }

  /** The raw opcode (1 request, 2 reply; others exist: RARP, InARP). */
  get opcode(): number {
    return this.view.getUint16(ArpField.OPER);
  }
  set opcode(value: number) {
    this.view.setUint16(ArpField.OPER, value);
  }

  /**
   * The four addresses follow the fixed header, each as long as the header says (RFC 826):
   * sender hardware (hlen bytes), sender protocol (plen), target hardware (hlen), target protocol
   * (plen). These views are valid for any packet that passed `check`, whatever hlen and plen say.
   */
  get senderHardwareAddress(): Uint8Array {
    return this.bytes.subarray(ARP_HEADER_LENGTH, ARP_HEADER_LENGTH + this.hardwareLength);
  }
  get senderProtocolAddress(): Uint8Array {
    const at = ARP_HEADER_LENGTH + this.hardwareLength;
    return this.bytes.subarray(at, at + this.protocolLength);
  }
  get targetHardwareAddress(): Uint8Array {
    const at = ARP_HEADER_LENGTH + this.hardwareLength + this.protocolLength;
    return this.bytes.subarray(at, at + this.hardwareLength);
  }
  get targetProtocolAddress(): Uint8Array {
    const at = ARP_HEADER_LENGTH + 2 * this.hardwareLength + this.protocolLength;
    return this.bytes.subarray(at, at + this.protocolLength);
  }

  /** True when the addresses are a MAC and an IPv4 address each (hlen 6, plen 4): the typed accessors below then apply. */
  get isEthernetIpv4(): boolean {
    return this.hardwareLength === MacAddress.LENGTH && this.protocolLength === 4;
  }

  /** The sender's MAC, or undefined when hlen/plen are not Ethernet/IPv4's. */
  get senderMac(): MacAddress | undefined {
    return this.isEthernetIpv4 ? MacAddress.fromBytes(this.bytes, ArpField.SHA) : undefined;
  }
  set senderMac(mac: MacAddress) {
    mac.writeTo(this.bytes, ArpField.SHA);
  }

  get senderIp(): Ipv4Address | undefined {
    return this.isEthernetIpv4 ? readIpv4(this.bytes, ArpField.SPA) : undefined;
  }
  set senderIp(ip: Ipv4Address) {
    writeIpv4(this.bytes, ArpField.SPA, ip);
  }

  get targetMac(): MacAddress | undefined {
    return this.isEthernetIpv4 ? MacAddress.fromBytes(this.bytes, ArpField.THA) : undefined;
  }
  set targetMac(mac: MacAddress) {
    mac.writeTo(this.bytes, ArpField.THA);
  }

  get targetIp(): Ipv4Address | undefined {
    return this.isEthernetIpv4 ? readIpv4(this.bytes, ArpField.TPA) : undefined;
  }
  set targetIp(ip: Ipv4Address) {
    writeIpv4(this.bytes, ArpField.TPA, ip);
  }
}

/** The parsed, owned form of an Ethernet/IPv4 ARP packet. */
export interface ArpRepr {
  readonly operation: ArpOperation;
  readonly senderMac: MacAddress;
  readonly senderIp: Ipv4Address;
  readonly targetMac: MacAddress;
  readonly targetIp: Ipv4Address;
}

export const ArpRepr = {
  /** Sanity check and field extraction. The packet has passed `ArpPacket.check`. */
  parse(packet: ArpPacket): ParseResult<ArpRepr, ArpSanityError> {
    if (packet.hardwareType !== ARP_HTYPE_ETHERNET) return fail('bad_htype');
    if (packet.protocolType !== ARP_PTYPE_IPV4) return fail('bad_ptype');
    if (packet.hardwareLength !== MacAddress.LENGTH) return fail('bad_hlen');
    if (packet.protocolLength !== 4) return fail('bad_plen');
    const op = packet.opcode;
    const operation: ArpOperation | undefined =
      op === ArpOpcode.REQUEST ? 'request' : op === ArpOpcode.REPLY ? 'reply' : undefined;
    if (operation === undefined) return fail('bad_opcode');
    return ok({
      operation,
      // hlen 6 and plen 4 were checked above, so the typed accessors are defined
      senderMac: packet.senderMac!,
      senderIp: packet.senderIp!,
      targetMac: packet.targetMac!,
      targetIp: packet.targetIp!,
    });
  },

  /** Both stages at once, from raw bytes (the Ethernet payload). */
  parseBytes(bytes: Uint8Array): ParseResult<ArpRepr, ArpParseError> {
    const checked = ArpPacket.check(bytes);
    if (!checked.ok) return checked;
    return ArpRepr.parse(checked.value);
  },

  bufferLength(_repr: ArpRepr): number {
    return ARP_PACKET_LENGTH;
  },

  /** Writes the 28 bytes at the start of `buffer` (which must hold them). */
  emit(repr: ArpRepr, buffer: Uint8Array): void {
    const packet = new ArpPacket(buffer);
    packet.hardwareType = ARP_HTYPE_ETHERNET;
    packet.protocolType = ARP_PTYPE_IPV4;
    packet.hardwareLength = MacAddress.LENGTH;
    packet.protocolLength = 4;
    packet.opcode = repr.operation === 'request' ? ArpOpcode.REQUEST : ArpOpcode.REPLY;
    packet.senderMac = repr.senderMac;
    packet.senderIp = repr.senderIp;
    packet.targetMac = repr.targetMac;
    packet.targetIp = repr.targetIp;
  },
};

/** RFC 5227 probe: a request whose sender IP is 0.0.0.0. */
export function isArpProbe(repr: ArpRepr): boolean {
  return repr.operation === 'request' && repr.senderIp === 0;
}

/** Gratuitous ARP (an announcement): sender and target IP are the same, and not 0.0.0.0. */
export function isGratuitousArp(repr: ArpRepr): boolean {
  return repr.senderIp === repr.targetIp && repr.senderIp !== 0;
}

/**
 * One line, as tcpdump prints ARP:
 * `ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28`,
 * `ARP, Request who-has 10.0.0.2 (ff:ff:ff:ff:ff:ff) tell 0.0.0.0, length 28` (target MAC shown
 * when not zero), `ARP, Reply 10.0.0.2 is-at 02:00:00:00:0b:02, length 28`.
 * `bytes` is the Ethernet payload; its length is the one printed. Never throws.
 */
export function formatArp(bytes: Uint8Array): string {
  const checked = ArpPacket.check(bytes);
  if (!checked.ok) return `ARP, [${checked.reason.replace('_', ' ')}], length ${bytes.length}`;
  const packet = checked.value;
  const parsed = ArpRepr.parse(packet);
  if (!parsed.ok) {
    return (
      `ARP, unsupported (htype ${packet.hardwareType}, ptype 0x${packet.protocolType.toString(16).padStart(4, '0')}, ` +
      `hlen ${packet.hardwareLength}, plen ${packet.protocolLength}, opcode ${packet.opcode}), length ${bytes.length}`
    );
  }
  const r = parsed.value;
  if (r.operation === 'request') {
    const tha = r.targetMac.isZero ? '' : ` (${r.targetMac})`;
    return `ARP, Request who-has ${formatIpv4(r.targetIp)}${tha} tell ${formatIpv4(r.senderIp)}, length ${bytes.length}`;
  }
  return `ARP, Reply ${formatIpv4(r.senderIp)} is-at ${r.senderMac}, length ${bytes.length}`;
}

/** Builds a whole Ethernet frame carrying `repr` (header plus 28 bytes, no padding). */
export function buildArpFrame(destination: MacAddress, source: MacAddress, repr: ArpRepr): Uint8Array {
  const frame = new Uint8Array(ETHERNET_HEADER_LENGTH + ARP_PACKET_LENGTH);
  EthernetRepr.emit({ destination, source, etherType: EtherType.ARP }, frame);
  ArpRepr.emit(repr, frame.subarray(ETHERNET_HEADER_LENGTH));
  return frame;
}
