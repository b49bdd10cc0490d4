/**
 * An IPv4 address with a prefix length, as `ip addr` shows it: `10.0.0.2/24` is the address
 * 10.0.0.2 on the network 10.0.0.0/24, whose directed broadcast is 10.0.0.255. The address keeps
 * its host bits (it is an interface address, or a route destination when the host bits are 0).
 */
import { formatIpv4, parseIpv4, type Ipv4Address } from '@tapstack/link';

export class Ipv4Cidr {
  /** The netmask as an address: /24 is 255.255.255.0. */
  readonly netmask: Ipv4Address;

  constructor(
    readonly address: Ipv4Address,
    readonly prefixLength: number,
  ) {
    if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > 32) {
      throw new RangeError(`prefix length ${prefixLength} must be an integer 0-32`);
    }
    this.netmask = maskOf(prefixLength);
  }

  /** Parses `10.0.0.2/24` (a bare address means /32). Throws on bad input: this is for people. */
  static parse(text: string): Ipv4Cidr {
    const [addr, len, extra] = text.trim().split('/');
    if (extra !== undefined || addr === undefined) throw new Error(`invalid CIDR "${text}": expected like 10.0.0.2/24`);
    if (len === undefined) return new Ipv4Cidr(parseIpv4(addr), 32);
    if (!/^(0|[1-9][0-9]?)$/.test(len) || Number(len) > 32) {
      throw new Error(`invalid CIDR "${text}": the prefix length must be 0-32`);
    }
    return new Ipv4Cidr(parseIpv4(addr), Number(len));
  }

  /** The network address (host bits zero): 10.0.0.0 for 10.0.0.2/24. */
  get network(): Ipv4Address {
    return ((this.address & this.netmask) >>> 0) as Ipv4Address;
  }

  /** The directed broadcast (host bits one): 10.0.0.255 for 10.0.0.2/24. */
  get broadcast(): Ipv4Address {
    return ((this.address | ~this.netmask) >>> 0) as Ipv4Address;
  }

  /** This prefix with the host bits cleared: 10.0.0.0/24 for 10.0.0.2/24. */
  get networkCidr(): Ipv4Cidr {
    return new Ipv4Cidr(this.network, this.prefixLength);
  }

  /** True when `address` is on this network. */
  contains(address: Ipv4Address): boolean {
    return ((address & this.netmask) >>> 0) === this.network;
  }

  /**
   * True when `address` is this network's directed broadcast (prefixes up to /30 only: a /31
   * has no broadcast, RFC 3021, and a /32 is a single host).
   */
  isBroadcast(address: Ipv4Address): boolean {
    return this.prefixLength <= 30 && address === this.broadcast;
  }

  equals(other: Ipv4Cidr): boolean {
    return this.address === other.address && this.prefixLength === other.prefixLength;
  }

  format(): string {
    return `${formatIpv4(this.address)}/${this.prefixLength}`;
  }

  toString(): string {
    return this.format();
  }

  toJSON(): string {
    return this.format();
  }
}

function maskOf(prefixLength: number): Ipv4Address {
  return (prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0) as Ipv4Address;
}
