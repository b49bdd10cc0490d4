/**
 * IPv4 addresses, one representation for the whole stack: an unsigned 32-bit number in host
 * order (10.0.0.1 is 0x0a000001). Numbers compare with `===`, key a Map without allocation and
 * mask with `&`. The brand keeps a port number or a length from being passed by mistake.
 *
 * The type lives in the link package, the bottom of the stack, because ARP (below IPv4) needs it
 * too; `@tapstack/ipv4` re-exports it next to its CIDR type.
 */
export type Ipv4Address = number & { readonly __brand: 'Ipv4Address' };

/** 0.0.0.0 */
export const IPV4_UNSPECIFIED = 0 as Ipv4Address;
/** 255.255.255.255, the limited broadcast address. */
export const IPV4_BROADCAST = 0xffffffff as Ipv4Address;

/** Parses dotted-quad text; throws on anything else (this is for user input, not the wire). */
export function parseIpv4(text: string): Ipv4Address {
  const parts = text.trim().split('.');
  if (parts.length !== 4 || parts.some((p) => !/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255)) {
    throw new Error(`invalid IPv4 address "${text}": expected four numbers 0-255 like 10.0.0.2`);
  }
  return (((Number(parts[0]) << 24) | (Number(parts[1]) << 16) | (Number(parts[2]) << 8) | Number(parts[3])) >>> 0) as Ipv4Address;
}

/** Shorthand for parseIpv4, for literals in code and tests: `ipv4('10.0.0.2')`. */
export const ipv4 = parseIpv4;

/** The address from a 32-bit number (masked to 32 bits, made unsigned). */
export function ipv4FromNumber(value: number): Ipv4Address {
  return (value >>> 0) as Ipv4Address;
}

/** Reads four bytes in network order. The caller has checked the length. */
export function readIpv4(buffer: Uint8Array, offset: number): Ipv4Address {
  return (((buffer[offset]! << 24) | (buffer[offset + 1]! << 16) | (buffer[offset + 2]! << 8) | buffer[offset + 3]!) >>> 0) as Ipv4Address;
}

/** Writes four bytes in network order. */
export function writeIpv4(buffer: Uint8Array, offset: number, address: Ipv4Address): void {
  buffer[offset] = address >>> 24;
  buffer[offset + 1] = (address >>> 16) & 0xff;
  buffer[offset + 2] = (address >>> 8) & 0xff;
  buffer[offset + 3] = address & 0xff;
}

export function formatIpv4(address: Ipv4Address): string {
  return `${address >>> 24}.${(address >>> 16) & 0xff}.${(address >>> 8) & 0xff}.${address & 0xff}`;
}

/** 224.0.0.0/4 (RFC 5771). */
export function isIpv4Multicast(address: Ipv4Address): boolean {
  return address >>> 28 === 0xe;
}

/** 255.255.255.255 only; a directed broadcast needs the prefix, see Ipv4Cidr in @tapstack/ipv4. */
export function isIpv4LimitedBroadcast(address: Ipv4Address): boolean {
  return address === IPV4_BROADCAST;
}

export function isIpv4Unspecified(address: Ipv4Address): boolean {
  return address === 0;
}

/** 127.0.0.0/8 */
export function isIpv4Loopback(address: Ipv4Address): boolean {
  return address >>> 24 === 127;
}

/**
 * Where an IPv4 header keeps the source address (RFC 791: bytes 12-15). Defined here, next to
 * the address type, because ARP (below IPv4) reads it too: a request's sender address is the
 * source of the datagram waiting for the answer (Linux's arp_solicit). `Ipv4Field.SOURCE` in
 * @tapstack/ipv4 is this same number.
 */
export const IPV4_SOURCE_FIELD = 12;

/** The source address of the IPv4 datagram that starts at `offset` in `bytes` (the caller has checked the length). */
export function ipv4DatagramSource(bytes: Uint8Array, offset = 0): Ipv4Address {
  return readIpv4(bytes, offset + IPV4_SOURCE_FIELD);
}
