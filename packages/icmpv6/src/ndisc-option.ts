/**
 * Neighbour Discovery options (RFC 4861 4.6): type-length-value records after an NDP message's
 * fixed part, the length counted in units of 8 bytes, type and length included.
 *
 * +---------------+---------------+------------------------------
 * |     Type      |    Length     |  value ... (8 * Length - 2 bytes)
 * +---------------+---------------+------------------------------
 *
 * A length of 0 is invalid and the whole message must be dropped (else a receiver would loop on
 * it forever); options the receiver does not know are skipped by their length (RFC 4861 4.6).
 * The options are kept as an ordered list, unknown ones included, so a message re-emits byte for
 * byte; `ndiscOptionsSummary` gives what a receiver looks up.
 *
 *  type 1/2  source/target link-layer address: the Ethernet MAC (length 1)
 *  type 3    prefix information (length 4):
 *            prefix length (8) | L A reserved (8) | valid lifetime (32) | preferred lifetime (32)
 *            | reserved (32) | prefix (128)
 *  type 4    redirected header (length >= 1): 6 reserved bytes, then as much of the redirected
 *            packet as fits
 *  type 5    MTU (length 1): 2 reserved bytes, MTU (32)
 */
import { fail, Ipv6Address, MacAddress, ok, type ParseResult } from '@tapstack/link';
import { readUint32, writeUint32 } from './packet.ts';

export const NdiscOptionType = {
  SOURCE_LINK_LAYER_ADDRESS: 1,
  TARGET_LINK_LAYER_ADDRESS: 2,
  PREFIX_INFORMATION: 3,
  REDIRECTED_HEADER: 4,
  MTU: 5,
  /**
   * Nonce (RFC 7527, enhanced DAD): Linux puts 6 random bytes in every DAD probe, so a host that
   * hears its own probe looped back can tell it from another host's. Parsed as an `unknown` option
   * (it has no fields beyond the bytes); `ndiscOptionsSummary(...).nonce` gives them.
   */
  NONCE: 14,
} as const;

/** Prefix information flags (RFC 4861 4.6.2). */
export const PrefixInformationFlag = {
  /** L: the prefix is on-link. */
  ON_LINK: 0x80,
  /** A: the prefix may be used for stateless address autoconfiguration (RFC 4862). */
  AUTONOMOUS: 0x40,
} as const;

/** A lifetime of all ones means forever (RFC 4861 4.6.2). */
export const NDISC_INFINITE_LIFETIME = 0xffffffff;

export interface PrefixInformation {
  readonly prefixLength: number;
  readonly onLink: boolean;
  readonly autonomous: boolean;
  /** Seconds; NDISC_INFINITE_LIFETIME is forever. */
  readonly validLifetime: number;
  readonly preferredLifetime: number;
  readonly prefix: Ipv6Address;
  /** The flag bits other than L and A (R of RFC 6275 and reserved), kept so the option re-emits as it came. */
  readonly otherFlags: number;
}

export type NdiscOption =
  | { readonly kind: 'source-link-layer-address'; readonly address: MacAddress }
  | { readonly kind: 'target-link-layer-address'; readonly address: MacAddress }
  | ({ readonly kind: 'prefix-information' } & PrefixInformation)
  | { readonly kind: 'mtu'; readonly mtu: number }
  /** As much of the redirected packet as fits, from its IPv6 header on. */
  | { readonly kind: 'redirected-header'; readonly packet: Uint8Array }
  /** An option this codec does not know: skipped by its length, kept for re-emission. */
  | { readonly kind: 'unknown'; readonly type: number; readonly data: Uint8Array };

/** Why the options of a message were refused; any of these drops the whole message. */
export type NdiscOptionFailure = 'zero_length_option' | 'truncated_option' | 'bad_option_length';

/**
 * Parses the options in `bytes`, in order. The link-layer address options must be 8 bytes
 * (Ethernet, RFC 2464 8), prefix information 32 and MTU 8: Linux drops messages whose option
 * lengths disagree with the option (ndisc_parse_options, ndisc_opt_addr_data).
 */
export function parseNdiscOptions(bytes: Uint8Array): ParseResult<NdiscOption[], NdiscOptionFailure> {
  const options: NdiscOption[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < 2) return fail('truncated_option');
    const type = bytes[at]!;
    const length = bytes[at + 1]! * 8;
    if (length === 0) return fail('zero_length_option');
    if (at + length > bytes.length) return fail('truncated_option');
    const o = at;
    switch (type) {
      case NdiscOptionType.SOURCE_LINK_LAYER_ADDRESS:
      case NdiscOptionType.TARGET_LINK_LAYER_ADDRESS: {
        if (length !== 8) return fail('bad_option_length');
        const address = MacAddress.fromBytes(bytes, o + 2);
        options.push({ kind: type === NdiscOptionType.SOURCE_LINK_LAYER_ADDRESS ? 'source-link-layer-address' : 'target-link-layer-address', address });
        break;
      }
      case NdiscOptionType.PREFIX_INFORMATION: {
        if (length !== 32) return fail('bad_option_length');
        const flags = bytes[o + 3]!;
        options.push({
          kind: 'prefix-information',
          prefixLength: bytes[o + 2]!,
          onLink: (flags & PrefixInformationFlag.ON_LINK) !== 0,
          autonomous: (flags & PrefixInformationFlag.AUTONOMOUS) !== 0,
          otherFlags: flags & 0x3f,
          validLifetime: readUint32(bytes, o + 4),
          preferredLifetime: readUint32(bytes, o + 8),
          prefix: Ipv6Address.fromBytes(bytes, o + 16),
        });
        break;
      }
      case NdiscOptionType.MTU:
        if (length !== 8) return fail('bad_option_length');
        options.push({ kind: 'mtu', mtu: readUint32(bytes, o + 4) });
        break;
      case NdiscOptionType.REDIRECTED_HEADER:
        options.push({ kind: 'redirected-header', packet: bytes.subarray(o + 8, o + length) });
        break;
      default:
        options.push({ kind: 'unknown', type, data: bytes.subarray(o + 2, o + length) });
    }
    at += length;
  }
  return ok(options);
}

/** The bytes `option` takes on the wire (a multiple of 8). */
export function ndiscOptionLength(option: NdiscOption): number {
  switch (option.kind) {
    case 'source-link-layer-address':
    case 'target-link-layer-address':
    case 'mtu':
      return 8;
    case 'prefix-information':
      return 32;
    case 'redirected-header':
      return roundUp8(8 + option.packet.length);
    case 'unknown':
      return roundUp8(2 + option.data.length);
  }
}

/** Bytes all of `options` take. */
export function ndiscOptionsLength(options: readonly NdiscOption[]): number {
  let n = 0;
  for (const o of options) n += ndiscOptionLength(o);
  return n;
}

/** Writes `options` at `offset`, padding each to its 8-byte multiple with zeros; returns the end. */
export function emitNdiscOptions(options: readonly NdiscOption[], buffer: Uint8Array, offset: number): number {
  let at = offset;
  for (const option of options) {
    const length = ndiscOptionLength(option);
    if (length > 255 * 8) throw new RangeError(`NDP option of ${length} bytes exceeds 2040`);
    buffer.fill(0, at, at + length);
    buffer[at + 1] = length / 8;
    switch (option.kind) {
      case 'source-link-layer-address':
      case 'target-link-layer-address':
        buffer[at] = option.kind === 'source-link-layer-address' ? NdiscOptionType.SOURCE_LINK_LAYER_ADDRESS : NdiscOptionType.TARGET_LINK_LAYER_ADDRESS;
        buffer.set(option.address.bytes, at + 2);
        break;
      case 'prefix-information':
        buffer[at] = NdiscOptionType.PREFIX_INFORMATION;
        buffer[at + 2] = option.prefixLength;
        buffer[at + 3] = (option.onLink ? PrefixInformationFlag.ON_LINK : 0) | (option.autonomous ? PrefixInformationFlag.AUTONOMOUS : 0) | (option.otherFlags & 0x3f);
        writeUint32(buffer, at + 4, option.validLifetime);
        writeUint32(buffer, at + 8, option.preferredLifetime);
        option.prefix.writeTo(buffer, at + 16);
        break;
      case 'mtu':
        buffer[at] = NdiscOptionType.MTU;
        writeUint32(buffer, at + 4, option.mtu);
        break;
      case 'redirected-header':
        buffer[at] = NdiscOptionType.REDIRECTED_HEADER;
        buffer.set(option.packet, at + 8);
        break;
      case 'unknown':
        buffer[at] = option.type;
        buffer.set(option.data, at + 2);
        break;
    }
    at += length;
  }
  return at;
}

/**
 * What a receiver looks up in a message's options. When an option that should appear once
 * appears twice, the first counts (Linux's ndisc_parse_options ignores the duplicate).
 */
export interface NdiscOptionsSummary {
  readonly sourceLinkLayerAddress: MacAddress | undefined;
  readonly targetLinkLayerAddress: MacAddress | undefined;
  readonly mtu: number | undefined;
  readonly prefixes: readonly PrefixInformation[];
  readonly redirectedHeader: Uint8Array | undefined;
  /** The nonce option's bytes (RFC 7527), when there is one. */
  readonly nonce: Uint8Array | undefined;
  /** Unknown option types seen (skipped, RFC 4861 4.6); the nonce counts among them. */
  readonly unknownTypes: readonly number[];
}

export function ndiscOptionsSummary(options: readonly NdiscOption[]): NdiscOptionsSummary {
  let sourceLinkLayerAddress: MacAddress | undefined;
  let targetLinkLayerAddress: MacAddress | undefined;
  let mtu: number | undefined;
  let redirectedHeader: Uint8Array | undefined;
  let nonce: Uint8Array | undefined;
  const prefixes: PrefixInformation[] = [];
  const unknownTypes: number[] = [];
  for (const o of options) {
    switch (o.kind) {
      case 'source-link-layer-address':
        sourceLinkLayerAddress ??= o.address;
        break;
      case 'target-link-layer-address':
        targetLinkLayerAddress ??= o.address;
        break;
      case 'mtu':
        mtu ??= o.mtu;
        break;
      case 'redirected-header':
        redirectedHeader ??= o.packet;
        break;
      case 'prefix-information':
        prefixes.push(o);
        break;
      case 'unknown':
        unknownTypes.push(o.type);
        if (o.type === NdiscOptionType.NONCE) nonce ??= o.data;
        break;
    }
  }
  return { sourceLinkLayerAddress, targetLinkLayerAddress, mtu, prefixes, redirectedHeader, nonce, unknownTypes };
}

/** True when any option is a source link-layer address (the rules of RFC 4861 6.1.1 and 7.1.1 ask). */
export function hasSourceLinkLayerOption(options: readonly NdiscOption[]): boolean {
  return options.some((o) => o.kind === 'source-link-layer-address');
}

function roundUp8(n: number): number {
  return (n + 7) & ~7;
}
