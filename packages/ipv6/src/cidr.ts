/**
 * An IPv6 address with a prefix length, as `ip -6 addr` shows it: `fd00:10::2/64` is the address
 * fd00:10::2 on the on-link prefix fd00:10::/64. IPv6 has no broadcast address, so this is smaller
 * than Ipv4Cidr: the address, the prefix, and whether another address is inside it.
 */
import { Ipv6Address } from '@tapstack/link';

export class Ipv6Cidr {
  constructor(
    readonly address: Ipv6Address,
    readonly prefixLength: number,
  ) {
    if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > 128) {
      throw new RangeError(`prefix length ${prefixLength} must be an integer 0-128`);
    }
  }

  /** Parses `fd00:10::2/64` (a bare address means /128). Throws on bad input: this is for people. */
  static parse(text: string): Ipv6Cidr {
    const [addr, len, extra] = text.trim().split('/');
    if (extra !== undefined || addr === undefined) throw new Error(`invalid IPv6 prefix "${text}": expected like fd00:10::2/64`);
    if (len === undefined) return new Ipv6Cidr(Ipv6Address.parse(addr), 128);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(len) || Number(len) > 128) {
      throw new Error(`invalid IPv6 prefix "${text}": the prefix length must be 0-128`);
    }
    return new Ipv6Cidr(Ipv6Address.parse(addr), Number(len));
  }

  /** The prefix itself (host bits zero): fd00:10:: for fd00:10::2/64. */
  get network(): Ipv6Address {
    return this.address.prefix(this.prefixLength);
  }

  contains(address: Ipv6Address): boolean {
    return address.hasPrefix(this.address, this.prefixLength);
  }

  toString(): string {
    return `${this.address.toString()}/${this.prefixLength}`;
  }
}
