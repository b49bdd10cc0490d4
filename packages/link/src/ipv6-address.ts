/**
 * IPv6 addresses (RFC 4291), one representation for the whole stack: a value object around its
 * sixteen bytes in wire order, like MacAddress. 128 bits do not fit a JavaScript number, so where
 * IPv4 uses a branded number IPv6 uses this class; `key` gives the canonical text once, for Maps
 * (the neighbour table keys its entries with it), and `equals` compares bytes.
 *
 * The type lives in the link package, next to Ipv4Address and MacAddress, because Neighbour
 * Discovery (which the neighbour table serves, below IPv6's routing) needs it, and because the
 * multicast MAC mapping (RFC 2464 section 7) joins an IPv6 address to an Ethernet one.
 */
import { MacAddress } from './mac.ts';

export class Ipv6Address {
  static readonly LENGTH = 16;
  /** ::, the unspecified address (RFC 4291 2.5.2): the source of DAD probes. */
  static readonly UNSPECIFIED = new Ipv6Address(new Uint8Array(16));
  /** ::1 */
  static readonly LOOPBACK = Ipv6Address.fromWords([0, 0, 0, 0, 0, 0, 0, 1]);
  /** ff02::1, all nodes on the link (RFC 4291 2.7.1). */
  static readonly ALL_NODES = Ipv6Address.fromWords([0xff02, 0, 0, 0, 0, 0, 0, 1]);
  /** ff02::2, all routers on the link: where router solicitations go. */
  static readonly ALL_ROUTERS = Ipv6Address.fromWords([0xff02, 0, 0, 0, 0, 0, 0, 2]);
  /** ff02::16, where MLDv2 reports go (RFC 3810 5.2.14). */
  static readonly ALL_MLDV2_ROUTERS = Ipv6Address.fromWords([0xff02, 0, 0, 0, 0, 0, 0, 0x16]);

  /** The sixteen bytes, in wire order. Do not modify. */
  readonly bytes: Uint8Array;
  private text: string | undefined;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /** Copies sixteen bytes starting at `offset` into a new address (the caller has checked the length). */
  static fromBytes(buffer: Uint8Array, offset = 0): Ipv6Address {
    if (offset < 0 || offset + 16 > buffer.length) {
      throw new RangeError(`Ipv6Address.fromBytes: need 16 bytes at offset ${offset}, buffer has ${buffer.length}`);
    }
    return new Ipv6Address(new Uint8Array(buffer.subarray(offset, offset + 16)));
  }

  /** From eight 16-bit groups, the way the text form writes them. */
  static fromWords(words: readonly number[]): Ipv6Address {
    if (words.length !== 8) throw new RangeError(`Ipv6Address.fromWords: need 8 groups, got ${words.length}`);
    const b = new Uint8Array(16);
    words.forEach((w, i) => {
      b[2 * i] = (w >>> 8) & 0xff;
      b[2 * i + 1] = w & 0xff;
    });
    return new Ipv6Address(b);
  }

  /**
   * Parses RFC 4291 2.2 text: eight groups of up to four hex digits, one `::` for a run of zero
   * groups, an optional dotted-quad IPv4 tail (`::ffff:10.0.0.1`). A `%zone` suffix is refused:
   * the caller splits it off (see `parseIpv6WithZone`). Throws on anything else: this is for
   * user input, not the wire.
   */
  static parse(text: string): Ipv6Address {
    const fail = (): never => {
      throw new Error(`invalid IPv6 address "${text}": expected text like fd00:10::2 or fe80::1`);
    };
    let s = text.trim();
    if (s.length === 0 || s.includes('%')) fail();
    const groups: number[] = [];
    // An IPv4 tail becomes the last two groups.
    const lastColon = s.lastIndexOf(':');
    if (s.indexOf('.', lastColon) !== -1) {
      const quad = s.slice(lastColon + 1).split('.');
      if (quad.length !== 4 || quad.some((p) => !/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255)) fail();
      const [a, b, c, d] = quad.map(Number) as [number, number, number, number];
      s = `${s.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
    }
    const halves = s.split('::');
    if (halves.length > 2) fail();
    const parseHalf = (half: string): number[] =>
      half === ''
        ? []
        : half.split(':').map((g) => (/^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : fail()));
    const head = parseHalf(halves[0]!);
    if (halves.length === 1) {
      if (head.length !== 8) fail();
      groups.push(...head);
    } else {
      const tail = parseHalf(halves[1]!);
      // `::` stands for at least one zero group (RFC 5952 4.2.2 says to write it so; RFC 4291 allows it).
      if (head.length + tail.length > 7) fail();
      groups.push(...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail);
    }
    return Ipv6Address.fromWords(groups);
  }

  /**
   * The link-local address a MAC gives (RFC 4291 2.5.1 and appendix A, RFC 4862 5.3): fe80::/64
   * followed by the modified EUI-64 interface identifier, the MAC with ff:fe in the middle and
   * its universal/local bit (0x02 of the first byte) inverted.
   */
  static linkLocalFromMac(mac: MacAddress): Ipv6Address {
    const b = new Uint8Array(16);
    b[0] = 0xfe;
    b[1] = 0x80;
    b.set(interfaceIdFromMac(mac), 8);
    return new Ipv6Address(b);
  }

  /** The address of a /64 prefix with the interface identifier of `mac` (SLAAC, RFC 4862 5.5.3). */
  static fromPrefixAndMac(prefix: Ipv6Address, mac: MacAddress): Ipv6Address {
    const b = new Uint8Array(16);
    b.set(prefix.bytes.subarray(0, 8), 0);
    b.set(interfaceIdFromMac(mac), 8);
    return new Ipv6Address(b);
  }

  /** The 16-bit group `i` (0..7). */
  word(i: number): number {
    return (this.bytes[2 * i]! << 8) | this.bytes[2 * i + 1]!;
  }

  /**
   * RFC 5952 text (lower case, longest run of two or more zero groups as `::`, first one on a
   * tie); also the Map key. An IPv4-mapped address (::ffff:0:0/96, RFC 4291 2.5.5.2) ends in its
   * IPv4 address dotted, `::ffff:10.0.0.1`, as RFC 5952 5 recommends and Linux prints it.
   */
  toString(): string {
    if (this.text !== undefined) return this.text;
    if (this.isIpv4Mapped) {
      const b = this.bytes;
      this.text = `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
      return this.text;
    }
    const words = Array.from({ length: 8 }, (_, i) => this.word(i));
    let bestStart = -1;
    let bestLength = 1;
    for (let i = 0; i < 8; ) {
      if (words[i] !== 0) {
        i++;
        continue;
      }
      let j = i;
      while (j < 8 && words[j] === 0) j++;
      if (j - i > bestLength) {
        bestStart = i;
        bestLength = j - i;
      }
      i = j;
    }
    const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
    this.text =
      bestStart < 0
        ? hex(words)
        : `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLength))}`;
    return this.text;
  }

  /** In ::ffff:0:0/96 (RFC 4291 2.5.5.2): an IPv4 address as an IPv6 socket sees it. */
  get isIpv4Mapped(): boolean {
    const b = this.bytes;
    for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
    return b[10] === 0xff && b[11] === 0xff;
  }

  /** The canonical text, computed once: what Maps and the neighbour table key on. */
  get key(): string {
    return this.toString();
  }

  equals(other: Ipv6Address): boolean {
    const a = this.bytes;
    const b = other.bytes;
    for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  /** Writes the sixteen bytes at `offset`. */
  writeTo(buffer: Uint8Array, offset: number): void {
    buffer.set(this.bytes, offset);
  }

  /** ff00::/8 (RFC 4291 2.7). */
  get isMulticast(): boolean {
    return this.bytes[0] === 0xff;
  }

  /** fe80::/10 (RFC 4291 2.5.6). */
  get isLinkLocal(): boolean {
    return this.bytes[0] === 0xfe && (this.bytes[1]! & 0xc0) === 0x80;
  }

  get isUnspecified(): boolean {
    return this.equals(Ipv6Address.UNSPECIFIED);
  }

  get isLoopback(): boolean {
    return this.equals(Ipv6Address.LOOPBACK);
  }

  /** The scope of a multicast address, the low 4 bits of its second byte (2: link-local); undefined for unicast. */
  get multicastScope(): number | undefined {
    return this.isMulticast ? this.bytes[1]! & 0x0f : undefined;
  }

  /** True when the first `length` bits equal those of `prefix`. */
  hasPrefix(prefix: Ipv6Address, length: number): boolean {
    if (length < 0 || length > 128) throw new RangeError(`prefix length ${length}: 0..128`);
    const whole = length >>> 3;
    for (let i = 0; i < whole; i++) if (this.bytes[i] !== prefix.bytes[i]) return false;
    const rest = length & 7;
    if (rest === 0) return true;
    const mask = (0xff << (8 - rest)) & 0xff;
    return (this.bytes[whole]! & mask) === (prefix.bytes[whole]! & mask);
  }

  /** The first `length` bits, the rest zero: the prefix as `ip -6 route` prints it. */
  prefix(length: number): Ipv6Address {
    if (length < 0 || length > 128) throw new RangeError(`prefix length ${length}: 0..128`);
    const b = new Uint8Array(16);
    const whole = length >>> 3;
    b.set(this.bytes.subarray(0, whole), 0);
    const rest = length & 7;
    if (rest !== 0) b[whole] = this.bytes[whole]! & ((0xff << (8 - rest)) & 0xff);
    return new Ipv6Address(b);
  }

  /**
   * The solicited-node multicast address (RFC 4291 2.7.1): ff02::1:ff00:0/104 followed by the
   * low 24 bits of this address. Neighbour solicitations for this address go there, so a host
   * joins one such group per address instead of hearing every solicitation on the link.
   */
  solicitedNode(): Ipv6Address {
    const b = new Uint8Array(16);
    b[0] = 0xff;
    b[1] = 0x02;
    b[11] = 0x01;
    b[12] = 0xff;
    b[13] = this.bytes[13]!;
    b[14] = this.bytes[14]!;
    b[15] = this.bytes[15]!;
    return new Ipv6Address(b);
  }

  /** The Ethernet address a multicast IPv6 address is sent to (RFC 2464 7): 33:33 and its low 32 bits. */
  multicastMac(): MacAddress {
    if (!this.isMulticast) throw new Error(`${this.toString()} is not a multicast address`);
    return multicastMacOf(this.bytes, 0);
  }
}

/** 33:33:xx:xx:xx:xx for the multicast IPv6 address whose 16 bytes start at `offset` in `buffer`. */
export function multicastMacOf(buffer: Uint8Array, offset: number): MacAddress {
  const mac = new Uint8Array([0x33, 0x33, buffer[offset + 12]!, buffer[offset + 13]!, buffer[offset + 14]!, buffer[offset + 15]!]);
  return MacAddress.fromBytes(mac);
}

/** The modified EUI-64 interface identifier of a MAC (RFC 4291 appendix A): 8 bytes. */
export function interfaceIdFromMac(mac: MacAddress): Uint8Array {
  const m = mac.bytes;
  return new Uint8Array([m[0]! ^ 0x02, m[1]!, m[2]!, 0xff, 0xfe, m[3]!, m[4]!, m[5]!]);
}

/** Shorthand for Ipv6Address.parse, for literals in code and tests: `ipv6('fd00:10::2')`. */
export function ipv6(text: string): Ipv6Address {
  return Ipv6Address.parse(text);
}

/**
 * Splits `fe80::1%tap0` into the address and its zone (RFC 4007 11): link-local addresses name
 * the link they belong to. No zone gives `zone: undefined`.
 */
export function parseIpv6WithZone(text: string): { address: Ipv6Address; zone: string | undefined } {
  const at = text.indexOf('%');
  if (at === -1) return { address: Ipv6Address.parse(text), zone: undefined };
  const zone = text.slice(at + 1);
  if (zone.length === 0) throw new Error(`invalid IPv6 address "${text}": empty zone after %`);
  return { address: Ipv6Address.parse(text.slice(0, at)), zone };
}
