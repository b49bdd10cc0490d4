/**
 * Multicast Listener Discovery version 2 (RFC 3810): how a host tells the routers on its link
 * which multicast groups it listens to. Switches snoop on it too, which is why a host that does
 * not report its solicited-node groups may miss the neighbour solicitations sent to them.
 *
 * Report (type 143, RFC 3810 5.2), sent to ff02::16 with hop limit 1 and a router alert:
 * | 143 | reserved | checksum | reserved (16) | number of address records (16) | records...
 * each record:
 * | record type (8) | aux data len (8, in 32-bit words) | number of sources (16) |
 * | multicast address (128) | source addresses (128 each) | auxiliary data |
 *
 * Query (type 130, RFC 3810 5.1); an MLDv1 query (RFC 2710) is the first 24 bytes of it:
 * | 130 | 0 | checksum | maximum response code (16) | reserved (16) | multicast address (128) |
 * | resv (4) S (1) QRV (3) | QQIC (8) | number of sources (16) | source addresses...
 *
 * A host joining a group in any-source mode sends a report with one record
 * CHANGE_TO_EXCLUDE_MODE and no sources ("exclude nothing": everything), and leaving sends
 * CHANGE_TO_INCLUDE_MODE with no sources (RFC 3810 6.1); Linux does exactly that, as the
 * captures show.
 */
import { fail, Ipv6Address, ok, type ParseResult } from '@tapstack/link';
import { fillIcmpv6Checksum, Icmpv6Packet, Icmpv6Type } from './packet.ts';

/** MLD messages are sent with hop limit 1 (RFC 3810 5): they never leave the link. */
export const MLD_HOP_LIMIT = 1;
export const MLDV1_QUERY_LENGTH = 24;
export const MLDV2_QUERY_MIN_LENGTH = 28;
export const MLDV2_REPORT_MIN_LENGTH = 8;
export const MLDV2_RECORD_MIN_LENGTH = 20;

/** Address record types (RFC 3810 5.2.12). */
export const MldRecordType = {
  MODE_IS_INCLUDE: 1,
  MODE_IS_EXCLUDE: 2,
  CHANGE_TO_INCLUDE_MODE: 3,
  CHANGE_TO_EXCLUDE_MODE: 4,
  ALLOW_NEW_SOURCES: 5,
  BLOCK_OLD_SOURCES: 6,
} as const;

export interface MldAddressRecord {
  /** MldRecordType. */
  readonly type: number;
  readonly multicastAddress: Ipv6Address;
  readonly sources: readonly Ipv6Address[];
  /** Auxiliary data (none is defined; kept as bytes, a multiple of 4). */
  readonly auxData: Uint8Array;
}

export interface MldReportRepr {
  readonly records: readonly MldAddressRecord[];
}

export interface MldQueryRepr {
  /** 1 for a 24-byte MLDv1 query, 2 for the longer MLDv2 one. */
  readonly version: 1 | 2;
  /** The raw field; `mldMaxResponseDelayMs` decodes it. */
  readonly maxResponseCode: number;
  /** :: for a general query, else the group asked about. */
  readonly multicastAddress: Ipv6Address;
  /** S: routers suppress their timer updates (MLDv2). */
  readonly suppressRouterProcessing: boolean;
  /** QRV: the querier's robustness variable, 0 when above 7 (MLDv2). */
  readonly robustness: number;
  /** QQIC, the raw field; `mldQueryIntervalSeconds` decodes it (MLDv2). */
  readonly queryIntervalCode: number;
  readonly sources: readonly Ipv6Address[];
}

export type MldParseFailure = 'unsupported_type' | 'too_short' | 'truncated_record' | 'bad_length';

/** The multicast listener report version 2 (RFC 3810 5.2). */
export const MldReportRepr = {
  parse(packet: Icmpv6Packet): ParseResult<MldReportRepr, MldParseFailure> {
    const b = packet.bytes;
    if (packet.type !== Icmpv6Type.MULTICAST_LISTENER_REPORT_V2) return fail('unsupported_type');
    if (b.length < MLDV2_REPORT_MIN_LENGTH) return fail('too_short');
    const count = (b[6]! << 8) | b[7]!;
    const records: MldAddressRecord[] = [];
    let at = MLDV2_REPORT_MIN_LENGTH;
    for (let i = 0; i < count; i++) {
      if (b.length - at < MLDV2_RECORD_MIN_LENGTH) return fail('truncated_record');
      const auxLength = b[at + 1]! * 4;
      const sourceCount = (b[at + 2]! << 8) | b[at + 3]!;
      const end = at + MLDV2_RECORD_MIN_LENGTH + sourceCount * 16 + auxLength;
      if (end > b.length) return fail('truncated_record');
      const sources: Ipv6Address[] = [];
      for (let s = 0; s < sourceCount; s++) sources.push(Ipv6Address.fromBytes(b, at + 20 + s * 16));
      records.push({
        type: b[at]!,
        multicastAddress: Ipv6Address.fromBytes(b, at + 4),
        sources,
        auxData: b.subarray(end - auxLength, end),
      });
      at = end;
    }
    // RFC 3810 does not allow bytes after the records; Linux ignores them, and so do we.
    return ok({ records });
  },

  bufferLength(repr: MldReportRepr): number {
    let n = MLDV2_REPORT_MIN_LENGTH;
    for (const r of repr.records) n += MLDV2_RECORD_MIN_LENGTH + r.sources.length * 16 + r.auxData.length;
    return n;
  },

  emit(repr: MldReportRepr, buffer: Uint8Array, source: Ipv6Address, destination: Ipv6Address, offset = 0): void {
    const b = buffer;
    const o = offset;
    b[o] = Icmpv6Type.MULTICAST_LISTENER_REPORT_V2;
    b.fill(0, o + 1, o + 6);
    b[o + 6] = (repr.records.length >>> 8) & 0xff;
    b[o + 7] = repr.records.length & 0xff;
    let at = o + MLDV2_REPORT_MIN_LENGTH;
    for (const r of repr.records) {
      if (r.auxData.length % 4 !== 0) throw new RangeError('MLD auxiliary data must be a multiple of 4 bytes');
      b[at] = r.type;
      b[at + 1] = r.auxData.length / 4;
      b[at + 2] = (r.sources.length >>> 8) & 0xff;
      b[at + 3] = r.sources.length & 0xff;
      r.multicastAddress.writeTo(b, at + 4);
      at += MLDV2_RECORD_MIN_LENGTH;
      for (const s of r.sources) {
        s.writeTo(b, at);
        at += 16;
      }
      b.set(r.auxData, at);
      at += r.auxData.length;
    }
    fillIcmpv6Checksum(b, source, destination, o, at);
  },

  build(repr: MldReportRepr, source: Ipv6Address, destination: Ipv6Address): Uint8Array {
    const out = new Uint8Array(MldReportRepr.bufferLength(repr));
    MldReportRepr.emit(repr, out, source, destination);
    return out;
  },

  /** The report a host sends when it starts listening to `groups` (any source): one CHANGE_TO_EXCLUDE_MODE record each. */
  join(groups: readonly Ipv6Address[]): MldReportRepr {
    return { records: groups.map((g) => ({ type: MldRecordType.CHANGE_TO_EXCLUDE_MODE, multicastAddress: g, sources: [], auxData: NO_BYTES })) };
  },

  /** The report a host sends when it stops listening to `groups`: one CHANGE_TO_INCLUDE_MODE record each, no sources. */
  leave(groups: readonly Ipv6Address[]): MldReportRepr {
    return { records: groups.map((g) => ({ type: MldRecordType.CHANGE_TO_INCLUDE_MODE, multicastAddress: g, sources: [], auxData: NO_BYTES })) };
  },
};

const NO_BYTES = new Uint8Array(0);

/** The multicast listener query, version 1 (24 bytes) or 2 (RFC 3810 5.1, 8.1: the length tells them apart). */
export const MldQueryRepr = {
  parse(packet: Icmpv6Packet): ParseResult<MldQueryRepr, MldParseFailure> {
    const b = packet.bytes;
    if (packet.type !== Icmpv6Type.MULTICAST_LISTENER_QUERY) return fail('unsupported_type');
    const maxResponseCode = (b[4]! << 8) | b[5]!;
    if (b.length < MLDV1_QUERY_LENGTH) return fail('too_short');
    const multicastAddress = Ipv6Address.fromBytes(b, 8);
    if (b.length === MLDV1_QUERY_LENGTH) {
      return ok({ version: 1, maxResponseCode, multicastAddress, suppressRouterProcessing: false, robustness: 0, queryIntervalCode: 0, sources: [] });
    }
    // RFC 3810 8.1: 25-27 bytes is neither version, and is ignored.
    if (b.length < MLDV2_QUERY_MIN_LENGTH) return fail('bad_length');
    const sourceCount = (b[26]! << 8) | b[27]!;
    if (b.length < MLDV2_QUERY_MIN_LENGTH + sourceCount * 16) return fail('truncated_record');
    const sources: Ipv6Address[] = [];
    for (let s = 0; s < sourceCount; s++) sources.push(Ipv6Address.fromBytes(b, 28 + s * 16));
    return ok({
      version: 2,
      maxResponseCode,
      multicastAddress,
      suppressRouterProcessing: (b[24]! & 0x08) !== 0,
      robustness: b[24]! & 0x07,
      queryIntervalCode: b[25]!,
      sources,
    });
  },

  bufferLength(repr: MldQueryRepr): number {
    return repr.version === 1 ? MLDV1_QUERY_LENGTH : MLDV2_QUERY_MIN_LENGTH + repr.sources.length * 16;
  },

  emit(repr: MldQueryRepr, buffer: Uint8Array, source: Ipv6Address, destination: Ipv6Address, offset = 0): void {
    const b = buffer;
    const o = offset;
    const length = MldQueryRepr.bufferLength(repr);
    b.fill(0, o, o + length);
    b[o] = Icmpv6Type.MULTICAST_LISTENER_QUERY;
    b[o + 4] = (repr.maxResponseCode >>> 8) & 0xff;
    b[o + 5] = repr.maxResponseCode & 0xff;
    repr.multicastAddress.writeTo(b, o + 8);
    if (repr.version === 2) {
      b[o + 24] = (repr.suppressRouterProcessing ? 0x08 : 0) | (repr.robustness & 0x07);
      b[o + 25] = repr.queryIntervalCode;
      b[o + 26] = (repr.sources.length >>> 8) & 0xff;
      b[o + 27] = repr.sources.length & 0xff;
      repr.sources.forEach((s, i) => s.writeTo(b, o + 28 + i * 16));
    }
    fillIcmpv6Checksum(b, source, destination, o, o + length);
  },

  build(repr: MldQueryRepr, source: Ipv6Address, destination: Ipv6Address): Uint8Array {
    const out = new Uint8Array(MldQueryRepr.bufferLength(repr));
    MldQueryRepr.emit(repr, out, source, destination);
    return out;
  },
};

/**
 * The MLDv1 report (RFC 2710 3, type 131): 24 bytes naming one group, sent to that group. An
 * MLDv2 host falls back to it while an MLDv1 querier is on the link (RFC 3810 8.2), since such a
 * querier does not read version 2 reports.
 * | 131 | 0 | checksum | maximum response delay (16, 0 in a report) | reserved (16) | group (128) |
 */
export const MldV1ReportRepr = {
  parse(packet: Icmpv6Packet): ParseResult<Ipv6Address, MldParseFailure> {
    if (packet.type !== Icmpv6Type.MULTICAST_LISTENER_REPORT_V1) return fail('unsupported_type');
    if (packet.bytes.length < MLDV1_QUERY_LENGTH) return fail('too_short');
    return ok(Ipv6Address.fromBytes(packet.bytes, 8));
  },

  /** A report (type 131), or with `done` the Done message (type 132, RFC 2710 3.8: same layout, sent to ff02::2 on leaving). */
  build(group: Ipv6Address, source: Ipv6Address, destination: Ipv6Address, done = false): Uint8Array {
    const b = new Uint8Array(MLDV1_QUERY_LENGTH);
    b[0] = done ? Icmpv6Type.MULTICAST_LISTENER_DONE : Icmpv6Type.MULTICAST_LISTENER_REPORT_V1;
    group.writeTo(b, 8);
    fillIcmpv6Checksum(b, source, destination, 0, b.length);
    return b;
  },
};

/**
 * The maximum response delay of a query in milliseconds (RFC 3810 5.1.3): the code itself below
 * 32768, else a floating-point form (mantissa 12 bits, exponent 3 bits).
 */
export function mldMaxResponseDelayMs(maxResponseCode: number): number {
  if (maxResponseCode < 0x8000) return maxResponseCode;
  const mantissa = maxResponseCode & 0x0fff;
  const exponent = (maxResponseCode >>> 12) & 0x07;
  return (mantissa | 0x1000) * 2 ** (exponent + 3);
}

/** The querier's query interval in seconds (RFC 3810 5.1.9): below 128 the code itself, else a floating-point form. */
export function mldQueryIntervalSeconds(code: number): number {
  if (code < 0x80) return code;
  const mantissa = code & 0x0f;
  const exponent = (code >>> 4) & 0x07;
  return (mantissa | 0x10) << (exponent + 3);
}

/** Why a received MLD message is refused (RFC 3810 5.1.14, 5.2.13 and 7.4: link-local scope). */
export type MldInvalidReason = 'bad_hop_limit' | 'no_router_alert' | 'source_not_link_local' | 'bad_code' | 'bad_checksum';

/**
 * RFC 3810 5.1.14 and 5.2.13: MLD messages come with hop limit 1, the router alert option in a
 * hop-by-hop header (RFC 2710 3, RFC 3810 5: `routerAlert`, the option's value as the
 * extension-header walker read it, 0 for MLD) and (RFC 3810 7.4, 7.6) a link-local source
 * (reports may come from :: while the host has no address yet, 5.2.13).
 */
export function validateMld(packet: Icmpv6Packet, context: { source: Ipv6Address; destination: Ipv6Address; hopLimit: number; routerAlert: number | undefined }): MldInvalidReason | undefined {
  if (context.hopLimit !== MLD_HOP_LIMIT) return 'bad_hop_limit';
  if (context.routerAlert !== 0) return 'no_router_alert';
  if (!context.source.isLinkLocal && !(packet.type === Icmpv6Type.MULTICAST_LISTENER_REPORT_V2 && context.source.isUnspecified)) return 'source_not_link_local';
  if (packet.code !== 0) return 'bad_code';
  if (!packet.verifyChecksum(context.source, context.destination)) return 'bad_checksum';
  return undefined;
}

const RECORD_NAMES = ['', 'is_in', 'is_ex', 'to_in', 'to_ex', 'allow', 'block'];

/** One line for a trace, like tcpdump: `multicast listener report v2, 1 group record(s) [gaddr ff02::1:ff00:2 to_ex, 0 source(s)]`. */
export function describeMldReport(repr: MldReportRepr): string {
  const records = repr.records.map((r) => `[gaddr ${r.multicastAddress} ${RECORD_NAMES[r.type] ?? `type ${r.type}`}, ${r.sources.length} source(s)]`);
  return `multicast listener report v2, ${repr.records.length} group record(s)${records.length ? ` ${records.join(' ')}` : ''}`;
}

export function describeMldQuery(repr: MldQueryRepr): string {
  const group = repr.multicastAddress.isUnspecified ? 'general' : `gaddr ${repr.multicastAddress}`;
  return `multicast listener query v${repr.version}, ${group}, max resp delay ${mldMaxResponseDelayMs(repr.maxResponseCode)}ms`;
}
