/**
 * Hand-built frames for the differential suite, and a normaliser that turns a captured answer
 * into a plain object two hosts can be compared on. Written from the RFCs with plain byte
 * arithmetic, independent of the stack's own codecs (the point is to check those against the
 * kernel, not against themselves).
 */

export type Mac = Uint8Array;

export function mac(text: string): Mac {
  return Uint8Array.from(text.split(':').map((h) => parseInt(h, 16)));
}

function ip(text: string): number[] {
  return text.split('.').map(Number);
}

const BROADCAST = mac('ff:ff:ff:ff:ff:ff');
const ZERO_MAC = mac('00:00:00:00:00:00');

/** RFC 1071 checksum of `bytes` (plus an initial sum). */
export function checksum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length % 2) sum += bytes[bytes.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function ethernet(destination: Mac, source: Mac, etherType: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  f.set(destination, 0);
  f.set(source, 6);
  f[12] = etherType >> 8;
  f[13] = etherType & 0xff;
  f.set(payload, 14);
  return f;
}

export function arp(op: 1 | 2, senderMac: Mac, senderIp: string, targetMac: Mac, targetIp: string): Uint8Array {
  return Uint8Array.from([0, 1, 8, 0, 6, 4, 0, op, ...senderMac, ...ip(senderIp), ...targetMac, ...ip(targetIp)]);
}

export interface Ipv4Fields {
  source: string;
  destination: string;
  protocol: number;
  payload: Uint8Array;
  identification?: number;
  ttl?: number;
  dontFragment?: boolean;
  moreFragments?: boolean;
  /** In bytes (a multiple of 8). */
  fragmentOffset?: number;
  /** Total length as if the whole datagram were here (for fragments: this fragment's). */
  badChecksum?: boolean;
}

export function ipv4(f: Ipv4Fields): Uint8Array {
  const h = new Uint8Array(20 + f.payload.length);
  const total = h.length;
  const id = f.identification ?? 0x1234;
  const flagsOffset = (f.dontFragment ? 0x4000 : 0) | (f.moreFragments ? 0x2000 : 0) | ((f.fragmentOffset ?? 0) / 8);
  h.set([0x45, 0, total >> 8, total & 0xff, id >> 8, id & 0xff, flagsOffset >> 8, flagsOffset & 0xff, f.ttl ?? 64, f.protocol, 0, 0]);
  h.set(ip(f.source), 12);
  h.set(ip(f.destination), 16);
  let sum = checksum(h.subarray(0, 20));
  if (f.badChecksum) sum ^= 0x5a5a;
  h[10] = sum >> 8;
  h[11] = sum & 0xff;
  h.set(f.payload, 20);
  return h;
}

/** An ICMP echo request with `size` bytes of data (a fixed pattern, so answers compare byte for byte). */
export function echoRequest(identifier: number, sequence: number, size: number): Uint8Array {
  const m = new Uint8Array(8 + size);
  m.set([8, 0, 0, 0, identifier >> 8, identifier & 0xff, sequence >> 8, sequence & 0xff]);
  for (let i = 0; i < size; i++) m[8 + i] = (i * 7 + 3) & 0xff;
  const c = checksum(m);
  m[2] = c >> 8;
  m[3] = c & 0xff;
  return m;
}

export function udp(source: string, destination: string, sourcePort: number, destinationPort: number, data: Uint8Array): Uint8Array {
  const u = new Uint8Array(8 + data.length);
  u.set([sourcePort >> 8, sourcePort & 0xff, destinationPort >> 8, destinationPort & 0xff, u.length >> 8, u.length & 0xff, 0, 0]);
  u.set(data, 8);
  const pseudo = Uint8Array.from([...ip(source), ...ip(destination), 0, 17, u.length >> 8, u.length & 0xff]);
  const c = checksum(u, 0xffff - checksum(pseudo)) || 0xffff;
  u[6] = c >> 8;
  u[7] = c & 0xff;
  return u;
}

/**
 * A TCP segment with a correct checksum; `options` are the option bytes as they go on the wire
 * (a multiple of 4). Built by hand, independently of the stack's codec.
 */
export function tcp(
  source: string,
  destination: string,
  f: { sourcePort: number; destinationPort: number; seq: number; ack?: number; flags: number; window?: number; options?: number[]; data?: Uint8Array },
): Uint8Array {
  const options = f.options ?? [];
  const data = f.data ?? new Uint8Array(0);
  const headerLength = 20 + options.length;
  const t = new Uint8Array(headerLength + data.length);
  const u32 = (v: number): number[] => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
  const window = f.window ?? 64240;
  t.set([f.sourcePort >> 8, f.sourcePort & 0xff, f.destinationPort >> 8, f.destinationPort & 0xff, ...u32(f.seq), ...u32(f.ack ?? 0), (headerLength / 4) << 4, f.flags, window >> 8, window & 0xff, 0, 0, 0, 0]);
  t.set(options, 20);
  t.set(data, headerLength);
  const pseudo = Uint8Array.from([...ip(source), ...ip(destination), 0, 6, t.length >> 8, t.length & 0xff]);
  const c = checksum(t, 0xffff - checksum(pseudo));
  t[16] = c >> 8;
  t[17] = c & 0xff;
  return t;
}

/** Splits an IP payload into fragments of at most `mtu` bytes of datagram each (offsets in bytes). */
export function fragments(base: Omit<Ipv4Fields, 'payload'>, payload: Uint8Array, mtu = 1500): Uint8Array[] {
  const per = Math.floor((mtu - 20) / 8) * 8;
  const out: Uint8Array[] = [];
  for (let offset = 0; offset < payload.length; offset += per) {
    const part = payload.subarray(offset, Math.min(payload.length, offset + per));
    out.push(ipv4({ ...base, payload: part, fragmentOffset: offset, moreFragments: offset + per < payload.length }));
  }
  return out;
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export { BROADCAST, ZERO_MAC };

// ---------------------------------------------------------------------------------------------
// Normalising captured answers

export interface Names {
  /** The sender's own MAC (the host side of the device). */
  host: string;
  /** The MAC of whoever answers (tapstack, or the kernel on the veth peer). */
  peer: string;
}

function macName(bytes: Uint8Array, names: Names): string {
  const m = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
  if (m === names.host) return 'HOST';
  if (m === names.peer) return 'PEER';
  if (m === 'ff:ff:ff:ff:ff:ff') return 'BROADCAST';
  if (m === '00:00:00:00:00:00') return 'ZERO';
  return `other ${m}`;
}

const dotted = (b: Uint8Array, at: number): string => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

/** What an answer is, with MACs named, IP IDs numbered by first appearance and checksums checked. */
export type Normalised = Record<string, string | number | boolean>;

/**
 * One object per captured frame; IPv4 fragments are also reassembled into one extra `datagram`
 * entry so the ICMP message they carry can be checked (checksum over the whole message).
 */
export function normalise(framesHex: readonly string[], names: Names): Normalised[] {
  const ids = new Map<number, string>();
  const out: Normalised[] = [];
  const pieces = new Map<number, { offset: number; data: Uint8Array; more: boolean; header: Uint8Array }[]>();
  for (const h of framesHex) {
    const f = Uint8Array.from(Buffer.from(h, 'hex'));
    const type = (f[12]! << 8) | f[13]!;
    const n: Normalised = { length: f.length, to: macName(f.subarray(0, 6), names), from: macName(f.subarray(6, 12), names) };
    const p = f.subarray(14);
    if (type === 0x0806) {
      Object.assign(n, {
        kind: 'arp',
        arpHeader: hex(p.subarray(0, 6)),
        op: (p[6]! << 8) | p[7]!,
        senderMac: macName(p.subarray(8, 14), names),
        senderIp: dotted(p, 14),
        targetMac: macName(p.subarray(18, 24), names),
        targetIp: dotted(p, 24),
        trailer: p.length - 28,
      });
    } else if (type === 0x0800) {
      const ihl = (p[0]! & 0x0f) * 4;
      const total = (p[2]! << 8) | p[3]!;
      const id = (p[4]! << 8) | p[5]!;
      if (!ids.has(id)) ids.set(id, `id${ids.size}`);
      const flags = (p[6]! << 8) | p[7]!;
      const header = p.subarray(0, ihl);
      const data = p.subarray(ihl, total);
      Object.assign(n, {
        kind: 'ipv4',
        versionIhl: p[0]!,
        tos: p[1]!,
        totalLength: total,
        id: ids.get(id)!,
        dontFragment: (flags & 0x4000) !== 0,
        moreFragments: (flags & 0x2000) !== 0,
        fragmentOffset: (flags & 0x1fff) * 8,
        ttl: p[8]!,
        protocol: p[9]!,
        source: dotted(p, 12),
        destination: dotted(p, 16),
        headerChecksum: checksum(header) === 0 ? 'ok' : 'BAD',
        trailer: p.length - total,
      });
      if (ihl > 20) n.ipOptions = describeOptions(header.subarray(20));
      if ((flags & 0x3fff) === 0) Object.assign(n, describePayload(p[9]!, data, header));
      else {
        const list = pieces.get(id) ?? [];
        list.push({ offset: (flags & 0x1fff) * 8, data, more: (flags & 0x2000) !== 0, header });
        pieces.set(id, list);
      }
    } else {
      n.kind = `ethertype 0x${type.toString(16)}`;
    }
    out.push(n);
  }
  for (const [id, list] of pieces) {
    list.sort((a, b) => a.offset - b.offset);
    const last = list[list.length - 1]!;
    let complete = !last.more && list[0]!.offset === 0;
    const size = last.offset + last.data.length;
    const whole = new Uint8Array(size);
    let covered = 0;
    for (const piece of list) {
      if (piece.offset !== covered) complete = false;
      whole.set(piece.data, piece.offset);
      covered = piece.offset + piece.data.length;
    }
    const entry: Normalised = { kind: 'datagram', id: ids.get(id)!, complete, length: size };
    if (complete) Object.assign(entry, describePayload(list[0]!.header[9]!, whole, list[0]!.header));
    out.push(entry);
  }
  return out;
}

/**
 * IP options as hex, with the times in timestamp options (RFC 791: milliseconds since midnight
 * UT, which differ from run to run) replaced by `<time>` when they are within ten minutes of this
 * machine's clock and `<bad time>` otherwise. Addresses, pointers and flags stay as they are.
 */
export function describeOptions(options: Uint8Array): string {
  let out = '';
  for (let i = 0; i < options.length; ) {
    const type = options[i]!;
    if (type === 0 || type === 1 || i + 1 >= options.length) {
      out += hex(options.subarray(i, i + 1));
      i++;
      continue;
    }
    const length = Math.max(2, Math.min(options[i + 1]!, options.length - i));
    const option = options.subarray(i, i + length);
    if (type === 68 && length >= 4) {
      const pointer = option[2]!;
      const flag = option[3]! & 0x0f;
      const entry = flag === 0 ? 4 : 8;
      out += hex(option.subarray(0, 4));
      for (let at = 4; at + entry <= length; at += entry) {
        if (flag !== 0) out += hex(option.subarray(at, at + 4));
        const timeAt = flag === 0 ? at : at + 4;
        const time = ((option[timeAt]! << 24) | (option[timeAt + 1]! << 16) | (option[timeAt + 2]! << 8) | option[timeAt + 3]!) >>> 0;
        if (timeAt + 4 > pointer - 1) out += hex(option.subarray(timeAt, timeAt + 4));
        else {
          const now = Date.now() % 86_400_000;
          const off = Math.abs(time - now);
          out += Math.min(off, 86_400_000 - off) <= 600_000 ? '<time>' : '<bad time>';
        }
      }
      out += hex(option.subarray(4 + Math.floor((length - 4) / entry) * entry));
    } else out += hex(option);
    out += ' ';
    i += length;
  }
  return out.trim();
}

function describePayload(protocol: number, data: Uint8Array, header: Uint8Array): Normalised {
  if (protocol === 1 && data.length >= 8) {
    const n: Normalised = {
      icmpType: data[0]!,
      icmpCode: data[1]!,
      icmpChecksum: checksum(data) === 0 ? 'ok' : 'BAD',
      icmpRest: hex(data.subarray(4, 8)),
      icmpLength: data.length,
    };
    // An error quotes the offending datagram: name its checksum state instead of its bytes'
    // values that both runs share anyway (we sent them), and keep the rest byte for byte.
    n.icmpData = hex(data.subarray(8));
    return n;
  }
  if (protocol === 17 && data.length >= 8) {
    return { udpPorts: `${(data[0]! << 8) | data[1]!} > ${(data[2]! << 8) | data[3]!}`, udpLength: (data[4]! << 8) | data[5]!, udpData: hex(data.subarray(8)) };
  }
  if (protocol === 6 && data.length >= 20) {
    const u32 = (at: number): number => ((data[at]! << 24) | (data[at + 1]! << 16) | (data[at + 2]! << 8) | data[at + 3]!) >>> 0;
    const flags = data[13]!;
    const headerLength = (data[12]! >> 4) * 4;
    const pseudo = Uint8Array.from([...header.subarray(12, 20), 0, 6, data.length >> 8, data.length & 0xff]);
    return {
      tcpPorts: `${(data[0]! << 8) | data[1]!} > ${(data[2]! << 8) | data[3]!}`,
      tcpFlags: flags,
      // an initial sequence number is random in both worlds: named, not compared
      tcpSeq: flags & 0x02 ? '<isn>' : u32(4),
      tcpAck: u32(8),
      tcpWindow: (data[14]! << 8) | data[15]!,
      tcpOptions: describeTcpOptions(data.subarray(20, headerLength)),
      tcpChecksum: checksum(data, 0xffff - checksum(pseudo)) === 0 ? 'ok' : 'BAD',
      tcpData: hex(data.subarray(headerLength)),
    };
  }
  return { ipPayload: hex(data) };
}

/** TCP options by kind, in order, with the values that do not change from run to run (timestamps are named). */
function describeTcpOptions(o: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < o.length; ) {
    const kind = o[i]!;
    if (kind === 0 || kind === 1) {
      parts.push(kind === 0 ? 'eol' : 'nop');
      i++;
      continue;
    }
    const length = o[i + 1] ?? 2;
    if (kind === 2) parts.push(`mss ${(o[i + 2]! << 8) | o[i + 3]!}`);
    else if (kind === 3) parts.push(`wscale ${o[i + 2]}`);
    else if (kind === 4) parts.push('sackOK');
    else if (kind === 8) {
      const echo = ((o[i + 6]! << 24) | (o[i + 7]! << 16) | (o[i + 8]! << 8) | o[i + 9]!) >>> 0;
      parts.push(`TS val <t> ecr ${echo === 0x01020304 ? 'ours' : echo}`);
    } else parts.push(`kind ${kind} length ${length}`);
    i += Math.max(2, length);
  }
  return parts.join(',');
}
