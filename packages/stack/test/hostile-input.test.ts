/**
 * Hostile input against a whole stack (createStack: link dispatch, ARP, IPv4, ICMP, UDP) on one
 * end of a MemoryLink pair with a VirtualClock. The other end plays the attacker: it sends
 * random frames and mutations of valid frames of every kind (ARP request/reply/probe/gratuitous,
 * echo requests, fragments of a 4000-byte echo, UDP to open and closed ports, ICMP errors, IP
 * options, unknown protocols), and captures everything the stack sends back.
 *
 * What must hold, whatever arrives:
 *  - nothing throws, and no layer swallows an exception: the dispatcher's and IPv4's
 *    `rx_handler_error` stay 0 and no `... threw` line is logged (the layers catch exceptions of
 *    handlers and listeners, so without these checks a crash would be hidden);
 *  - memory stays bounded: the neighbour table never exceeds gc_thresh3, reassembly stays under
 *    its byte and datagram limits and drains once the timeout has passed; after close() no timer
 *    is left on the clock;
 *  - nothing is sent that the RFCs forbid: no ICMP error about an ICMP error, about a
 *    broadcast/multicast destination or source, about a non-first fragment, or about a frame that
 *    came in a link-layer broadcast; no echo reply to a broadcast/multicast echo; no ARP reply to
 *    a request whose sender MAC is broadcast/multicast/zero, or that was not for our address; no
 *    defence of our address more often than once per 10 s (RFC 5227); no ARP request to one
 *    target more often than once per retrans_time; every IPv4 header, ICMP and UDP checksum
 *    correct (verified here with an independent RFC 1071 sum, over reassembled datagrams for
 *    fragmented replies); every frame at most mtu + 14 bytes.
 *
 * Frames are generated from descriptors (template, mutations, which checksums to repair), so
 * the seeded bulk run and the fast-check property (which shrinks a failure to a few frames)
 * share one generator. A sent frame is attributed to the received frame being handled when it
 * was sent (the stack answers synchronously), which is how "a reply to what" is checked.
 */
import debug from 'debug';
import fc from 'fast-check';
import { format } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LinkWrapper, MemoryLink, VirtualClock, seededRandom, type Link } from '@tapstack/link';
import { DEFAULT_NEIGHBOUR_PARAMS } from '@tapstack/arp';
import { DEFAULT_REASSEMBLY_LIMITS } from '@tapstack/ipv4';
import { createStack, type Stack } from '../src/stack.ts';

// ---------------------------------------------------------------------------------------------
// Addresses

const MTU = 1500;
const MAX_FRAME = MTU + 14;
const STACK_MAC = [0x02, 0, 0, 0, 0, 0x01];
const PEER_MAC = [0x02, 0, 0, 0, 0, 0x02];
const BROADCAST_MAC = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
const ZERO_MAC = [0, 0, 0, 0, 0, 0];
const MULTICAST_MAC = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];
const OTHER_MAC = [0x02, 0x33, 0x33, 0x33, 0x33, 0x33];

const ip = (a: number, b: number, c: number, d: number): number => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
const US = ip(10, 0, 0, 2);
const PEER = ip(10, 0, 0, 1);
const NETWORK = ip(10, 0, 0, 0);
const DIRECTED_BROADCAST = ip(10, 0, 0, 255);
const LIMITED_BROADCAST = 0xffffffff;

/** The MAC the attacker's side answers ARP with for a neighbour in 10.0.0.0/24. */
const macFor = (address: number): number[] => (address === PEER ? PEER_MAC : [0x02, 0xaa, 0, 0, 0, address & 0xff]);

const isMulticastIp = (a: number): boolean => a >>> 28 === 0xe;
const isBroadcastIp = (a: number): boolean => a === LIMITED_BROADCAST || a === DIRECTED_BROADCAST;
const inPrefix = (a: number): boolean => a >>> 8 === NETWORK >>> 8;
const isGroupMac = (b: Uint8Array, at: number): boolean => (b[at]! & 1) === 1;
const isZeroMac = (b: Uint8Array, at: number): boolean => b.subarray(at, at + 6).every((x) => x === 0);
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
const macAt = (b: Uint8Array, at: number): Uint8Array => b.subarray(at, at + 6);
const readU16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;
const readU32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
const writeU16 = (b: Uint8Array, at: number, v: number): void => {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
};
const writeU32 = (b: Uint8Array, at: number, v: number): void => {
  writeU16(b, at, v >>> 16);
  writeU16(b, at + 2, v & 0xffff);
};
const dotted = (a: number): string => `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;

// ---------------------------------------------------------------------------------------------
// An independent RFC 1071 checksum (not the stack's), for building and for verifying.

function sum16(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  const end = bytes.length & ~1;
  for (let i = 0; i < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length & 1) sum += bytes[bytes.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}
const checksum = (bytes: Uint8Array, initial = 0): number => ~sum16(bytes, initial) & 0xffff;
const pseudoSum = (src: number, dst: number, protocol: number, length: number): number =>
  (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;

// ---------------------------------------------------------------------------------------------
// Builders of valid frames

function ethernet(dst: readonly number[], src: readonly number[], type: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  f.set(dst, 0);
  f.set(src, 6);
  writeU16(f, 12, type);
  f.set(payload, 14);
  return f;
}

function arpPacket(op: number, sha: readonly number[], spa: number, tha: readonly number[], tpa: number): Uint8Array {
  const p = new Uint8Array(28);
  p.set([0, 1, 8, 0, 6, 4, 0, op]);
  p.set(sha, 8);
  writeU32(p, 14, spa);
  p.set(tha, 18);
  writeU32(p, 24, tpa);
  return p;
}

interface IpFields {
  src: number;
  dst: number;
  protocol: number;
  payload: Uint8Array;
  id?: number;
  ttl?: number;
  more?: boolean;
  offset?: number;
  options?: Uint8Array;
}

function ipPacket(f: IpFields): Uint8Array {
  const options = f.options ?? new Uint8Array(0);
  const hl = 20 + options.length;
  const p = new Uint8Array(hl + f.payload.length);
  p[0] = 0x40 | (hl >>> 2);
  writeU16(p, 2, p.length);
  writeU16(p, 4, f.id ?? 0x4242);
  writeU16(p, 6, (f.more ? 0x2000 : 0) | ((f.offset ?? 0) >>> 3));
  p[8] = f.ttl ?? 64;
  p[9] = f.protocol;
  writeU32(p, 12, f.src);
  writeU32(p, 16, f.dst);
  p.set(options, 20);
  writeU16(p, 10, checksum(p.subarray(0, hl)));
  p.set(f.payload, hl);
  return p;
}

function icmpMessage(type: number, code: number, rest: number, data: Uint8Array): Uint8Array {
  const m = new Uint8Array(8 + data.length);
  m[0] = type;
  m[1] = code;
  writeU32(m, 4, rest);
  m.set(data, 8);
  writeU16(m, 2, checksum(m));
  return m;
}

function pattern(size: number, salt = 0): Uint8Array {
  const d = new Uint8Array(size);
  for (let i = 0; i < size; i++) d[i] = (i * 7 + salt) & 0xff;
  return d;
}

const echo = (id: number, seq: number, size: number): Uint8Array => icmpMessage(8, 0, (id << 16) | seq, pattern(size, seq));

function udpDatagram(src: number, dst: number, sport: number, dport: number, data: Uint8Array): Uint8Array {
  const u = new Uint8Array(8 + data.length);
  writeU16(u, 0, sport);
  writeU16(u, 2, dport);
  writeU16(u, 4, u.length);
  u.set(data, 8);
  writeU16(u, 6, checksum(u, pseudoSum(src, dst, 17, u.length)) || 0xffff);
  return u;
}

const toUs = (payload: Uint8Array, dst: readonly number[] = STACK_MAC): Uint8Array => ethernet(dst, PEER_MAC, 0x0800, payload);
const arpFrame = (dst: readonly number[], payload: Uint8Array, src: readonly number[] = PEER_MAC): Uint8Array =>
  ethernet(dst, src, 0x0806, payload);

/** The fragments of a 4000-byte echo request, as the kernel sends them over a 1500 MTU. */
function fragmentedEcho(id: number, seq: number, src = PEER, dst = US): Uint8Array[] {
  const message = echo(id, seq, 4000 - 28);
  const out: Uint8Array[] = [];
  for (let offset = 0; offset < message.length; offset += 1480) {
    const part = message.subarray(offset, Math.min(message.length, offset + 1480));
    out.push(toUs(ipPacket({ src, dst, protocol: 1, payload: part, id, offset, more: offset + 1480 < message.length })));
  }
  return out;
}

/**
 * Valid frames of every kind the stack handles. Each takes a number to vary itself (ids, sizes,
 * neighbour addresses) so templates do not all collide in the reassembly and neighbour tables.
 */
const TEMPLATES: readonly ((n: number) => Uint8Array)[] = [
  // ARP
  () => arpFrame(BROADCAST_MAC, arpPacket(1, PEER_MAC, PEER, ZERO_MAC, US)),
  () => arpFrame(STACK_MAC, arpPacket(1, PEER_MAC, PEER, STACK_MAC, US)),
  (n) => arpFrame(BROADCAST_MAC, arpPacket(1, macFor(ip(10, 0, 0, 3 + (n % 250))), ip(10, 0, 0, 3 + (n % 250)), ZERO_MAC, US)),
  (n) => arpFrame(BROADCAST_MAC, arpPacket(1, PEER_MAC, PEER, ZERO_MAC, ip(10, 0, 0, 3 + (n % 250)))),
  () => arpFrame(STACK_MAC, arpPacket(2, PEER_MAC, PEER, STACK_MAC, US)),
  (n) => arpFrame(STACK_MAC, arpPacket(2, macFor(ip(10, 0, 0, 3 + (n % 250))), ip(10, 0, 0, 3 + (n % 250)), STACK_MAC, US)),
  () => arpFrame(BROADCAST_MAC, arpPacket(1, PEER_MAC, 0, ZERO_MAC, US)), // RFC 5227 probe for our address
  (n) => arpFrame(BROADCAST_MAC, arpPacket(1, PEER_MAC, 0, ZERO_MAC, ip(10, 0, 0, 3 + (n % 250)))),
  () => arpFrame(BROADCAST_MAC, arpPacket(1, PEER_MAC, PEER, ZERO_MAC, PEER)), // gratuitous request
  () => arpFrame(BROADCAST_MAC, arpPacket(2, PEER_MAC, PEER, BROADCAST_MAC, PEER)), // gratuitous reply
  () => arpFrame(BROADCAST_MAC, arpPacket(1, OTHER_MAC, US, ZERO_MAC, US), OTHER_MAC), // someone claims our address
  (n) => arpFrame(BROADCAST_MAC, arpPacket(1, [0x02, 0xbb, 0, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff], ip(192, 168, (n >>> 8) & 0xff, n & 0xff), ZERO_MAC, US)),
  // ICMP echo, unicast, of several sizes
  (n) => toUs(ipPacket({ src: PEER, dst: US, protocol: 1, payload: echo(0x100 + (n & 0xff), n & 0xffff, [0, 1, 56, 1000, 1472][n % 5]!) })),
  (n) => toUs(ipPacket({ src: ip(10, 0, 0, 3 + (n % 250)), dst: US, protocol: 1, payload: echo(7, n & 0xffff, 56) })),
  // echo to broadcast and multicast destinations (must not be answered)
  (n) => toUs(ipPacket({ src: PEER, dst: DIRECTED_BROADCAST, protocol: 1, payload: echo(8, n & 0xffff, 56) }), BROADCAST_MAC),
  (n) => toUs(ipPacket({ src: PEER, dst: LIMITED_BROADCAST, protocol: 1, payload: echo(9, n & 0xffff, 56) }), BROADCAST_MAC),
  (n) => toUs(ipPacket({ src: PEER, dst: ip(224, 0, 0, 1), protocol: 1, payload: echo(10, n & 0xffff, 56) }), BROADCAST_MAC),
  (n) => toUs(ipPacket({ src: PEER, dst: ip(224, 0, 0, 1), protocol: 1, payload: echo(11, n & 0xffff, 56) })),
  // one fragment of a 4000-byte echo (first, middle or last)
  (n) => fragmentedEcho(0x2000 + (n & 0x3ff), 1)[n % 3]!,
  // UDP: the echo port, the discard port (never read: its queue fills), a closed port, a broadcast
  (n) => toUs(ipPacket({ src: PEER, dst: US, protocol: 17, payload: udpDatagram(PEER, US, 40000, 7, pattern(n % 1400)) })),
  (n) => toUs(ipPacket({ src: PEER, dst: US, protocol: 17, payload: udpDatagram(PEER, US, 40001, 9, pattern(n % 64)) })),
  (n) => toUs(ipPacket({ src: PEER, dst: US, protocol: 17, payload: udpDatagram(PEER, US, 40002, 1000 + (n % 5000), pattern(20)) })),
  (n) => toUs(ipPacket({ src: PEER, dst: DIRECTED_BROADCAST, protocol: 17, payload: udpDatagram(PEER, DIRECTED_BROADCAST, 68, 1000 + (n % 100), pattern(20)) }), BROADCAST_MAC),
  // ICMP errors that arrive (about a UDP datagram we sent, about an echo), one with a short quote
  () => {
    const sent = ipPacket({ src: US, dst: PEER, protocol: 17, payload: udpDatagram(US, PEER, 7, 40000, pattern(4)) });
    return toUs(ipPacket({ src: PEER, dst: US, protocol: 1, payload: icmpMessage(3, 3, 0, sent.subarray(0, 28)) }));
  },
  () => {
    const sent = ipPacket({ src: US, dst: PEER, protocol: 1, payload: echo(1, 1, 56) });
    return toUs(ipPacket({ src: PEER, dst: US, protocol: 1, payload: icmpMessage(11, 0, 0, sent.subarray(0, 28)) }));
  },
  () => toUs(ipPacket({ src: PEER, dst: US, protocol: 1, payload: icmpMessage(3, 1, 0, pattern(12)) })),
  // an unknown protocol (protocol unreachable), IP options, TTL 0
  (n) => toUs(ipPacket({ src: PEER, dst: US, protocol: 99 + (n % 5), payload: pattern(n % 30) })),
  (n) => toUs(ipPacket({ src: PEER, dst: US, protocol: 1, options: Uint8Array.from([0x01, 0x01, 0x01, 0x00]), payload: echo(12, n & 0xffff, 32) })),
  (n) => toUs(ipPacket({ src: PEER, dst: US, protocol: 1, ttl: 0, payload: echo(13, n & 0xffff, 32) })),
];

// ---------------------------------------------------------------------------------------------
// Mutations. Each is (frame, a, b) => frame with two free numbers, so fast-check can shrink them.

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 0x04, 0x05, 0x06, 0x08, 0x0f, 0x11, 0x45, 0x46];
const INTERESTING_U16 = [0, 1, 7, 8, 19, 20, 27, 28, 60, 64, 576, 1480, 1500, 1514, 8191, 0x1fff, 0x2000, 0x3fff, 0x4000, 0x7fff, 0x8000, 0xffff];
const interestingIp = (a: number): number => {
  const list = [
    0,
    LIMITED_BROADCAST,
    DIRECTED_BROADCAST,
    NETWORK,
    US,
    PEER,
    ip(10, 0, 0, 3 + (a % 250)),
    ip(224, 0, 0, 1),
    ip(239, 255, 255, 250),
    ip(127, 0, 0, 1),
    ip(240, 0, 0, 1),
    ip(192, 168, (a >>> 8) & 0xff, a & 0xff),
    (a * 2654435761) >>> 0,
  ];
  return list[a % list.length]!;
};
const interestingMac = (a: number): number[] =>
  [STACK_MAC, PEER_MAC, BROADCAST_MAC, ZERO_MAC, MULTICAST_MAC, OTHER_MAC, [0x03, 0, 0, 0, 0, 1], macFor(ip(10, 0, 0, 3 + (a % 250)))][a % 8]!;

const isIpFrame = (f: Uint8Array): boolean => f.length >= 34 && readU16(f, 12) === 0x0800;
const isArpFrame = (f: Uint8Array): boolean => f.length >= 22 && readU16(f, 12) === 0x0806;
const ihlOf = (f: Uint8Array): number => (f[14]! & 0x0f) * 4;

type Mutation = (f: Uint8Array, a: number, b: number) => Uint8Array;
const MUTATIONS: readonly Mutation[] = [
  // anywhere in the frame
  (f, a, b) => {
    for (let i = 0; i <= b % 8; i++) if (f.length) f[(a + i * 7919) % f.length]! ^= 1 << ((b + i) % 8);
    return f;
  },
  (f, a, b) => {
    if (f.length) f[a % f.length] = INTERESTING_BYTES[b % INTERESTING_BYTES.length]!;
    return f;
  },
  (f, a) => f.slice(0, a % (f.length + 1)),
  (f, a, b) => {
    const extra = Math.min((a % 200) + 1, Math.max(0, MAX_FRAME - f.length));
    const out = new Uint8Array(f.length + extra);
    out.set(f);
    for (let i = 0; i < extra; i++) out[f.length + i] = (b * 31 + i * 17) & 0xff;
    return out;
  },
  // Ethernet header
  (f, a) => {
    if (f.length >= 6) f.set(interestingMac(a), 0);
    return f;
  },
  (f, a) => {
    if (f.length >= 12) f.set(interestingMac(a), 6);
    return f;
  },
  (f, a) => {
    if (f.length >= 14) writeU16(f, 12, [0x0800, 0x0806, 0x86dd, 0x8100, a & 0xffff][a % 5]!);
    return f;
  },
  // IPv4 header fields
  (f, a) => {
    if (isIpFrame(f)) f[14] = (f[14]! & 0xf0) | (a % 16); // IHL
    return f;
  },
  (f, a) => {
    if (isIpFrame(f)) f[14] = ((a % 16) << 4) | (f[14]! & 0x0f); // version
    return f;
  },
  (f, a, b) => {
    if (isIpFrame(f)) {
      const real = f.length - 14;
      const options = [0, 19, 20, ihlOf(f) - 1, ihlOf(f), real - 1, real, real + 1, 65535, INTERESTING_U16[b % INTERESTING_U16.length]!];
      writeU16(f, 16, options[a % options.length]! & 0xffff); // total length
    }
    return f;
  },
  (f, a, b) => {
    if (isIpFrame(f)) {
      const flags = [0, 0x2000, 0x4000, 0x8000, 0x6000][b % 5]!;
      const offsets = [0, 1, 185, 370, 8189, 8190, 8191, a & 0x1fff];
      writeU16(f, 20, flags | offsets[a % offsets.length]!); // flags and fragment offset
    }
    return f;
  },
  (f, a) => {
    if (isIpFrame(f)) f[22] = [0, 1, 2, 64, 255][a % 5]!; // TTL
    return f;
  },
  (f, a) => {
    if (isIpFrame(f)) f[23] = [1, 17, 6, 0, 2, 99, 255][a % 7]!; // protocol
    return f;
  },
  (f, a) => {
    if (isIpFrame(f)) writeU32(f, 26, interestingIp(a)); // source
    return f;
  },
  (f, a) => {
    if (isIpFrame(f)) writeU32(f, 30, interestingIp(a)); // destination
    return f;
  },
  (f, a) => {
    if (isIpFrame(f)) writeU16(f, 18, a & 0xffff); // identification
    return f;
  },
  // ICMP and UDP fields (at the IHL the header says)
  (f, a, b) => {
    const at = 14 + ihlOf(f);
    if (isIpFrame(f) && f.length >= at + 2) {
      f[at] = [0, 3, 4, 5, 8, 11, 12, 13, 17, 42, 255][a % 11]!;
      f[at + 1] = [0, 1, 2, 3, 4, 15, 16, 255][b % 8]!;
    }
    return f;
  },
  (f, a, b) => {
    const at = 14 + ihlOf(f);
    if (isIpFrame(f) && f.length >= at + 8) {
      const real = f.length - at;
      writeU16(f, at + 4, [0, 7, 8, real - 1, real, real + 1, 65535, INTERESTING_U16[b % INTERESTING_U16.length]!][a % 8]! & 0xffff); // UDP length
    }
    return f;
  },
  (f, a) => {
    const at = 14 + ihlOf(f);
    if (isIpFrame(f) && f.length >= at + 4) writeU16(f, at + 2, [7, 9, 0, 53, 65535, a & 0xffff][a % 6]!); // UDP destination port
    return f;
  },
  (f, a) => {
    const at = 14 + ihlOf(f);
    if (isIpFrame(f) && f.length >= at + 8) writeU16(f, at + 6, [0, 0xffff, a & 0xffff][a % 3]!); // UDP checksum
    return f;
  },
  // ARP fields
  (f, a, b) => {
    if (isArpFrame(f)) {
      const at = 14 + [0, 2, 4, 5, 6][a % 5]!;
      if ((a % 5) < 2 || a % 5 === 4) writeU16(f, at, [0, 1, 6, 0x0800, 0x86dd, 3, 4, 0xffff][b % 8]!);
      else f[at] = [0, 1, 4, 6, 8, 16, 255][b % 7]!; // hlen / plen
    }
    return f;
  },
  (f, a, b) => {
    if (isArpFrame(f) && f.length >= 42) f.set(interestingMac(b), 14 + (a % 2 === 0 ? 8 : 18)); // sha / tha
    return f;
  },
  (f, a, b) => {
    if (isArpFrame(f) && f.length >= 42) writeU32(f, 14 + (a % 2 === 0 ? 14 : 24), interestingIp(b)); // spa / tpa
    return f;
  },
];

/** Repairs the checksums a mutation broke, so the mutated fields reach the deeper layers. */
function repair(f: Uint8Array, transport: boolean, header: boolean): Uint8Array {
  if (!isIpFrame(f)) return f;
  const ihl = ihlOf(f);
  if (ihl < 20 || 14 + ihl > f.length) return f;
  if (transport) {
    const total = Math.min(readU16(f, 16), f.length - 14);
    if (total > ihl) {
      const t = f.subarray(14 + ihl, 14 + total);
      if (f[23] === 1 && t.length >= 4) {
        writeU16(t, 2, 0);
        writeU16(t, 2, checksum(t));
      } else if (f[23] === 17 && t.length >= 8) {
        writeU16(t, 6, 0);
        writeU16(t, 6, checksum(t, pseudoSum(readU32(f, 26), readU32(f, 30), 17, t.length)) || 0xffff);
      }
    }
  }
  if (header) {
    writeU16(f, 24, 0);
    writeU16(f, 24, checksum(f.subarray(14, 14 + ihl)));
  }
  return f;
}

interface FrameRecipe {
  /** A template index, or -1 for random bytes. */
  template: number;
  n: number;
  mutations: [number, number, number][];
  repairTransport: boolean;
  repairHeader: boolean;
}

function randomBytesFrame(n: number): Uint8Array {
  const r = seededRandom(n);
  const f = new Uint8Array(Math.floor(r() * MAX_FRAME) + 1);
  for (let i = 0; i < f.length; i++) f[i] = Math.floor(r() * 256);
  // Most random frames get an Ethernet header the stack accepts, so they reach ARP and IPv4.
  const kind = n % 4;
  if (kind > 0 && f.length >= 14) {
    f.set(kind === 1 ? BROADCAST_MAC : STACK_MAC, 0);
    writeU16(f, 12, kind === 3 ? 0x0806 : 0x0800);
    if (kind === 2 && f.length >= 34) f[14] = 0x45;
  }
  return f;
}

function build(recipe: FrameRecipe): Uint8Array {
  let f = recipe.template < 0 ? randomBytesFrame(recipe.n) : TEMPLATES[recipe.template % TEMPLATES.length]!(recipe.n);
  for (const [op, a, b] of recipe.mutations) f = MUTATIONS[op % MUTATIONS.length]!(f, a, b);
  if (recipe.mutations.length > 0) f = repair(f, recipe.repairTransport, recipe.repairHeader);
  return f;
}

function randomRecipe(r: () => number): FrameRecipe {
  const int = (n: number): number => Math.floor(r() * n);
  const template = r() < 0.08 ? -1 : int(TEMPLATES.length);
  const mutations: [number, number, number][] = [];
  if (r() > 0.2) {
    const count = 1 + int(4);
    for (let i = 0; i < count; i++) mutations.push([int(MUTATIONS.length), int(0x10000), int(0x10000)]);
  }
  return { template, n: int(0x1000000), mutations, repairTransport: r() < 0.7, repairHeader: r() < 0.85 };
}

const recipeArbitrary: fc.Arbitrary<FrameRecipe> = fc.record({
  template: fc.integer({ min: -1, max: TEMPLATES.length - 1 }),
  n: fc.nat(0xffffff),
  mutations: fc.array(fc.tuple(fc.nat(MUTATIONS.length - 1), fc.nat(0xffff), fc.nat(0xffff)), { maxLength: 4 }),
  repairTransport: fc.boolean(),
  repairHeader: fc.boolean(),
});

// ---------------------------------------------------------------------------------------------
// The harness: the stack, a wrapper that attributes every frame it sends to the frame it was
// handling, and the attacker's end of the wire.

/** Delivers received frames one at a time and remembers which one is being handled. */
class AttributingLink extends LinkWrapper {
  current: Uint8Array | undefined;
  constructor(
    inner: Link,
    private readonly onSend: (frame: Uint8Array, cause: Uint8Array | undefined) => void,
  ) {
    super(inner);
  }

  /** Hands frames to the stack as if they came off the wire (for frames larger than the MTU). */
  inject(frames: readonly Uint8Array[]): void {
    this.receive(frames);
  }

  protected override receive(frames: readonly Uint8Array[]): void {
    for (const f of frames) {
      this.current = f.slice(); // the stack may turn the frame into its answer
      try {
        this.deliverUp([f]);
      } finally {
        this.current = undefined;
      }
    }
  }

  override send(frame: Uint8Array): boolean {
    this.onSend(frame, this.current);
    return super.send(frame);
  }
}

/** Checks every frame the stack sends against the RFCs; collects violations. */
class Auditor {
  readonly violations: string[] = [];
  readonly seen = { frames: 0, arpReplies: 0, arpRequests: 0, defends: 0, echoReplies: 0, correlatedEchoReplies: 0, icmpErrors: 0, udp: 0, fragments: 0, reassembledChecked: 0 };
  private readonly lastRequestAt = new Map<number, number>();
  private lastDefendAt = Number.NEGATIVE_INFINITY;
  private timerAnnouncements = 0;
  private readonly fragments = new Map<number, { parts: { offset: number; data: Uint8Array; more: boolean }[]; header: Uint8Array; cause: Uint8Array | undefined }>();

  constructor(private readonly clock: VirtualClock) {}

  private fail(what: string, frame: Uint8Array, cause?: Uint8Array): void {
    if (this.violations.length < 20) {
      const hex = (b: Uint8Array): string => Buffer.from(b.subarray(0, 80)).toString('hex');
      this.violations.push(`${what} @${this.clock.now()}ms: sent ${hex(frame)}${cause ? ` in answer to ${hex(cause)}` : ''}`);
    } else this.violations.length++;
  }

  sent(frame: Uint8Array, cause: Uint8Array | undefined): void {
    this.seen.frames++;
    if (frame.length > MAX_FRAME) return this.fail(`frame of ${frame.length} bytes > mtu + 14`, frame, cause);
    if (frame.length < 14 || !sameBytes(macAt(frame, 6), Uint8Array.from(STACK_MAC))) return this.fail('not from our MAC', frame, cause);
    const type = readU16(frame, 12);
    if (type === 0x0806) return this.arp(frame, cause);
    if (type === 0x0800) return this.ipv4(frame, cause);
    this.fail(`EtherType 0x${type.toString(16)}`, frame, cause);
  }

  private arp(frame: Uint8Array, cause: Uint8Array | undefined): void {
    const p = frame.subarray(14);
    if (p.length < 28 || readU16(p, 0) !== 1 || readU16(p, 2) !== 0x0800 || p[4] !== 6 || p[5] !== 4) return this.fail('malformed ARP', frame, cause);
    if (!sameBytes(macAt(p, 8), Uint8Array.from(STACK_MAC))) return this.fail('ARP sender MAC not ours', frame, cause);
    const op = readU16(p, 6);
    const spa = readU32(p, 14);
    const tpa = readU32(p, 24);
    if (op === 2) {
      this.seen.arpReplies++;
      // Only ever a synchronous answer to a valid request for our own address.
      if (!cause || !isArpFrame(cause) || cause.length < 42) return this.fail('ARP reply not caused by an ARP frame', frame, cause);
      const q = cause.subarray(14);
      if (readU16(q, 6) !== 1) return this.fail('ARP reply to something that is not a request', frame, cause);
      if (isGroupMac(q, 8) || isZeroMac(q, 8)) return this.fail('ARP reply to a broadcast/multicast/zero sender MAC', frame, cause);
      if (sameBytes(macAt(q, 8), Uint8Array.from(STACK_MAC)) || sameBytes(macAt(cause, 6), Uint8Array.from(STACK_MAC))) return this.fail('ARP reply to our own MAC', frame, cause);
      const qspa = readU32(q, 14);
      if (isBroadcastIp(qspa) || isMulticastIp(qspa) || qspa >>> 24 === 127) return this.fail('ARP reply to a group/loopback sender IP', frame, cause);
      if (readU32(q, 24) !== US || spa !== US) return this.fail('ARP reply for an address that is not ours', frame, cause);
      if (!sameBytes(macAt(p, 18), macAt(q, 8)) || !sameBytes(macAt(frame, 0), macAt(q, 8)) || tpa !== qspa) {
        return this.fail('ARP reply not addressed to the requester', frame, cause);
      }
      return;
    }
    if (op !== 1) return this.fail(`ARP opcode ${op}`, frame, cause);
    this.seen.arpRequests++;
    const now = this.clock.now();
    if (spa === US && tpa === US) {
      if (cause) {
        // A defence (RFC 5227 2.4): at most one per DEFEND_INTERVAL.
        this.seen.defends++;
        if (now - this.lastDefendAt < 10_000) this.fail(`defended again after ${now - this.lastDefendAt} ms`, frame, cause);
        this.lastDefendAt = now;
      } else if (++this.timerAnnouncements > 2) this.fail('more than ANNOUNCE_NUM announcements from timers', frame);
      return;
    }
    if (spa !== US) return this.fail('ARP request with a sender IP that is not ours', frame, cause);
    if (!inPrefix(tpa) || tpa === US || tpa === DIRECTED_BROADCAST) return this.fail('ARP request for a non-neighbour', frame, cause);
    if (isZeroMac(frame, 0)) return this.fail('ARP request to the zero MAC', frame, cause);
    const last = this.lastRequestAt.get(tpa);
    if (last !== undefined && now - last < DEFAULT_NEIGHBOUR_PARAMS.retransTimeMs) {
      this.fail(`ARP request for ${dotted(tpa)} ${now - last} ms after the previous one`, frame, cause);
    }
    this.lastRequestAt.set(tpa, now);
  }

  private ipv4(frame: Uint8Array, cause: Uint8Array | undefined): void {
    const p = frame.subarray(14);
    if (p.length < 20 || p[0] !== 0x45) return this.fail('not a plain IPv4 header', frame, cause);
    if (checksum(p.subarray(0, 20)) !== 0) return this.fail('bad IPv4 header checksum', frame, cause);
    if (readU16(p, 2) !== p.length) return this.fail('total length does not match the frame', frame, cause);
    if (p[8] === 0) return this.fail('TTL 0', frame, cause);
    const src = readU32(p, 12);
    const dst = readU32(p, 16);
    if (src !== US) return this.fail('source is not our address', frame, cause);
    // The prefix's lowest address (10.0.0.0) is a host, as in Linux since 5.14 and FreeBSD 14.
    if (!inPrefix(dst) || dst === US || dst === DIRECTED_BROADCAST) return this.fail(`destination ${dotted(dst)}`, frame, cause);
    const flags = readU16(p, 6);
    if ((flags & 0x3fff) !== 0) {
      this.seen.fragments++;
      return this.fragment(p, flags, cause, frame);
    }
    this.datagram(p, p.subarray(20), cause, frame);
  }

  private fragment(p: Uint8Array, flags: number, cause: Uint8Array | undefined, frame: Uint8Array): void {
    const id = readU16(p, 4);
    const offset = (flags & 0x1fff) * 8;
    const more = (flags & 0x2000) !== 0;
    const data = p.subarray(20).slice();
    if (more && (data.length === 0 || data.length % 8 !== 0)) return this.fail('non-last fragment not a multiple of 8', frame, cause);
    const entry = this.fragments.get(id) ?? { parts: [], header: p.subarray(0, 20).slice(), cause };
    entry.parts.push({ offset, data, more });
    this.fragments.set(id, entry);
    const parts = [...entry.parts].sort((a, b) => a.offset - b.offset);
    let covered = 0;
    for (const part of parts) {
      if (part.offset !== covered) return;
      covered += part.data.length;
    }
    if (parts[parts.length - 1]!.more) return;
    this.fragments.delete(id);
    const whole = new Uint8Array(20 + covered);
    whole.set(entry.header);
    for (const part of parts) whole.set(part.data, 20 + part.offset);
    writeU16(whole, 2, whole.length);
    this.seen.reassembledChecked++;
    this.datagram(whole, whole.subarray(20), entry.cause, frame);
  }

  private datagram(p: Uint8Array, payload: Uint8Array, cause: Uint8Array | undefined, frame: Uint8Array): void {
    const protocol = p[9];
    if (protocol === 17) {
      this.seen.udp++;
      if (payload.length < 8 || readU16(payload, 4) !== payload.length) return this.fail('UDP length field', frame, cause);
      if (readU16(payload, 6) === 0) return this.fail('UDP sent without a checksum', frame, cause);
      if (checksum(payload, pseudoSum(readU32(p, 12), readU32(p, 16), 17, payload.length)) !== 0) return this.fail('bad UDP checksum', frame, cause);
      if (readU16(payload, 0) !== 7) return this.fail('UDP from a port other than the echo service', frame, cause);
      return;
    }
    if (protocol !== 1) return this.fail(`IP protocol ${protocol}`, frame, cause);
    if (payload.length < 8 || checksum(payload) !== 0) return this.fail('bad ICMP checksum', frame, cause);
    const type = payload[0]!;
    const causeIp = cause && isIpFrame(cause) ? cause.subarray(14) : undefined;
    if (type === 0) {
      this.seen.echoReplies++;
      if (!causeIp) return; // a reply that waited for ARP goes out when the ARP reply arrives
      // The request that caused this reply: unicast, to us, in a unicast frame to our MAC.
      if (isGroupMac(cause!, 0)) return this.fail('echo reply to a request in a link-layer broadcast/multicast', frame, cause);
      if (readU32(causeIp, 16) !== US) return this.fail(`echo reply to a request for ${dotted(readU32(causeIp, 16))}`, frame, cause);
      if (readU32(causeIp, 12) !== readU32(p, 16)) return this.fail('echo reply not to the requester', frame, cause);
      const causeFlags = readU16(causeIp, 6);
      if ((causeFlags & 0x3fff) === 0) {
        const ihl = (causeIp[0]! & 0x0f) * 4;
        const request = causeIp.subarray(ihl, readU16(causeIp, 2));
        if (request[0] !== 8 || !sameBytes(request.subarray(4), payload.subarray(4))) return this.fail('echo reply does not carry the request', frame, cause);
        this.seen.correlatedEchoReplies++;
      }
      return;
    }
    if (type !== 3 && type !== 11) return this.fail(`ICMP type ${type}`, frame, cause);
    this.seen.icmpErrors++;
    const code = payload[1]!;
    if (!((type === 3 && (code === 2 || code === 3)) || (type === 11 && code === 1))) return this.fail(`ICMP ${type}/${code}`, frame, cause);
    const q = payload.subarray(8);
    const qihl = q.length >= 20 ? (q[0]! & 0x0f) * 4 : 0;
    if (q.length < 20 || q[0]! >>> 4 !== 4 || qihl < 20 || qihl > q.length) return this.fail('ICMP error without a whole quoted header', frame, cause);
    const qsrc = readU32(q, 12);
    const qdst = readU32(q, 16);
    if (qsrc !== readU32(p, 16)) return this.fail('ICMP error not sent to the source of the datagram', frame, cause);
    if (qsrc === 0 || isBroadcastIp(qsrc) || isMulticastIp(qsrc) || qsrc >>> 24 === 127 || qsrc >>> 28 === 0xf) {
      return this.fail('ICMP error about a datagram from a non-host source', frame, cause);
    }
    if (isBroadcastIp(qdst) || isMulticastIp(qdst)) return this.fail('ICMP error about a broadcast/multicast datagram', frame, cause);
    if ((readU16(q, 6) & 0x1fff) !== 0) return this.fail('ICMP error about a non-first fragment', frame, cause);
    if (q[9] === 1) {
      if (q.length <= qihl) return this.fail('ICMP error about an ICMP message it cannot see the type of', frame, cause);
      if (![0, 8, 9, 10, 13, 14, 15, 16, 17, 18].includes(q[qihl]!)) return this.fail(`ICMP error about an ICMP error (type ${q[qihl]})`, frame, cause);
    }
    if (q.length < Math.min(qihl + 8, readU16(q, 2))) return this.fail('ICMP error quotes less than the header + 8 bytes', frame, cause);
    if (type === 11) {
      // From the reassembly timer, or flushed from ARP's queue; never while handling a datagram.
      if (cause && !isArpFrame(cause)) return this.fail('reassembly timeout sent while handling a frame', frame, cause);
      return;
    }
    // Unreachables are sent while handling the offending datagram (or flushed from ARP's queue
    // when the neighbour answers): the datagram must have come in a unicast frame.
    if (!causeIp) {
      if (cause && !isArpFrame(cause)) this.fail('unreachable sent while handling a frame that is neither IPv4 nor ARP', frame, cause);
      return;
    }
    if (isGroupMac(cause!, 0)) return this.fail('ICMP error about a frame that came in a link-layer broadcast/multicast', frame, cause);
  }
}

/** Swallowed exceptions show up only in debug output (`... threw: ...`): capture them. */
function captureSwallowedExceptions(): { lines: string[]; stop(): void } {
  const lines: string[] = [];
  const previousLog = debug.log;
  const previousNamespaces = debug.disable();
  // Only the lines that report a caught exception; the rest of the trace is discarded unformatted.
  debug.log = (...args: unknown[]): void => {
    if (typeof args[0] === 'string' && args[0].includes('threw')) lines.push(format(...args));
  };
  debug.enable('tapstack:*');
  return {
    lines,
    stop(): void {
      debug.disable();
      if (previousNamespaces) debug.enable(previousNamespaces);
      debug.log = previousLog;
    },
  };
}

interface Harness {
  stack: Stack;
  clock: VirtualClock;
  link: AttributingLink;
  attacker: MemoryLink;
  auditor: Auditor;
  /** Puts frames on the wire (oversized ones are handed in past the MTU check), then moves time. */
  feed(frames: readonly Uint8Array[], advanceMs: number): void;
  /** Asserts the bounds that must hold at every moment. */
  checkBounds(): void;
  wireFrames: number;
}

function harness(seed: number): Harness {
  const clock = new VirtualClock();
  const [ours, attacker] = MemoryLink.pair({ clock, latencyMs: 0, mtu: MTU });
  const auditor = new Auditor(clock);
  const link = new AttributingLink(ours, (frame, cause) => auditor.sent(frame, cause));
  // IPv4 only: the rules checked here are IPv4's (IPv6's hostile input: ipv6-simulation.test.ts)
  const stack = createStack({ link, ip: '10.0.0.2/24', clock, random: seededRandom(seed), trace: () => {}, ipv6: false });
  // An echo service (answers go through the UDP send path) and a port nobody reads.
  const echoSocket = stack.udp.bind(7);
  echoSocket.on('message', (data, from) => {
    if (from.address !== 0 && from.port !== 0) echoSocket.send(data, from.port, from.address);
  });
  stack.udp.bind(9);
  stack.start();

  const arpAnswers: Uint8Array[] = [];
  const h: Harness = {
    stack,
    clock,
    link,
    attacker,
    auditor,
    wireFrames: 0,
    feed(frames, advanceMs) {
      const small: Uint8Array[] = [];
      for (const f of frames) {
        if (f.length <= MAX_FRAME) attacker.send(f);
        else small.push(f);
      }
      for (const f of arpAnswers.splice(0)) attacker.send(f);
      if (small.length) link.inject(small);
      clock.advance(advanceMs);
    },
    checkBounds() {
      const s = stack;
      expect(s.dispatcher.counters.get('rx_handler_error'), 'dispatcher caught an exception').toBe(0);
      expect(s.ipv4.counters.get('rx_handler_error'), 'IPv4 caught an exception of a protocol handler').toBe(0);
      expect(s.link.counters.get('tx_dropped_too_big'), 'the stack tried to send a frame over the MTU').toBe(0);
      // Against the documented defaults, not the live objects (which a bug could change).
      expect(s.arp.table.size, 'neighbour entries').toBeLessThanOrEqual(DEFAULT_NEIGHBOUR_PARAMS.gcThresh3);
      const r = s.ipv4.reassembly;
      expect(r.bytesHeld, 'reassembly bytes').toBeLessThanOrEqual(DEFAULT_REASSEMBLY_LIMITS.highWaterBytes);
      expect(r.bytesHeld).toBeGreaterThanOrEqual(0);
      expect(r.datagramsInFlight, 'datagrams in reassembly').toBeLessThanOrEqual(DEFAULT_REASSEMBLY_LIMITS.maxDatagrams);
    },
  };
  // The attacker's end sees everything on the wire: check it again there, and answer the
  // stack's ARP requests for most of the prefix (the rest stay unanswered: FAILED paths).
  attacker.setReceiver((frames) => {
    for (const f of frames) {
      h.wireFrames++;
      if (f.length > MAX_FRAME) auditor.violations.push(`frame of ${f.length} bytes on the wire`);
      if (isArpFrame(f) && f.length >= 42 && readU16(f, 20) === 1) {
        const tpa = readU32(f, 38);
        const spa = readU32(f, 28);
        if (inPrefix(tpa) && tpa !== US && (tpa & 0xff) < 200 && spa === US) {
          arpAnswers.push(arpFrame(STACK_MAC, arpPacket(2, macFor(tpa), tpa, STACK_MAC, US), macFor(tpa)));
        }
      }
    }
  });
  return h;
}

/** Runs out every timeout, closes the stack and checks that nothing is left behind. */
function drainAndClose(h: Harness): void {
  for (let i = 0; i < 40; i++) h.feed([], 1_000);
  h.checkBounds();
  expect(h.stack.ipv4.reassembly.bytesHeld, 'reassembly memory after the timeout').toBe(0);
  expect(h.stack.ipv4.reassembly.datagramsInFlight).toBe(0);
  h.stack.close();
  h.attacker.close();
  expect(h.clock.pending, 'timers left on the clock after close()').toBe(0);
}

// ---------------------------------------------------------------------------------------------

describe('hostile input against a whole stack', () => {
  let swallowed: ReturnType<typeof captureSwallowedExceptions>;
  beforeAll(() => {
    swallowed = captureSwallowedExceptions();
  });
  afterAll(() => swallowed.stop());
  beforeEach(() => {
    swallowed.lines.length = 0;
  });

  const FRAMES = Number(process.env.TAPSTACK_HOSTILE_FRAMES ?? 300_000);

  it(`survives ${FRAMES} random and mutated frames without a forbidden answer`, () => {
    const h = harness(1);
    const r = seededRandom(0x7a95);
    const BATCH = 64;
    let batch: Uint8Array[] = [];
    for (let i = 0; i < FRAMES; i++) {
      batch.push(build(randomRecipe(r)));
      if (batch.length === BATCH) {
        // A valid 4000-byte echo now and then: reassembly must keep working under attack.
        if (i % (BATCH * 50) === BATCH - 1) batch.push(...fragmentedEcho(0x1000 + ((i >>> 6) & 0xfff), 1));
        h.feed(batch, 20);
        batch = [];
        if ((i >>> 6) % 16 === 0) h.checkBounds();
      }
    }
    // Oversized frames (a TAP device can deliver them) and a fragment flood over the byte limit.
    h.link.inject([ethernet(STACK_MAC, PEER_MAC, 0x0800, pattern(9000)), toUs(ipPacket({ src: PEER, dst: US, protocol: 1, payload: echo(1, 1, 8000) }))]);
    for (let id = 0; id < 200; id++) {
      const frames = fragmentedEcho(id, 2).slice(0, 2);
      const big = echo(id, 3, 60_000);
      for (let offset = 0; offset + 1480 < big.length; offset += 1480) {
        frames.push(toUs(ipPacket({ src: PEER, dst: US, protocol: 1, payload: big.subarray(offset, offset + 1480), id: 0x8000 | id, offset, more: true })));
      }
      h.feed(frames, 0);
      h.checkBounds();
    }
    h.checkBounds();

    const s = h.stack;
    const a = h.auditor;
    const counters = s.counters();
    expect(a.violations, counters).toEqual([]);
    expect(swallowed.lines).toEqual([]);
    // The run reached every path it claims to test (otherwise the checks above prove nothing).
    expect(a.seen.correlatedEchoReplies).toBeGreaterThan(1000);
    expect(a.seen.reassembledChecked).toBeGreaterThan(0);
    expect(a.seen.arpReplies).toBeGreaterThan(500);
    expect(a.seen.defends).toBeGreaterThan(0);
    expect(a.seen.icmpErrors).toBeGreaterThan(100);
    expect(a.seen.udp).toBeGreaterThan(100);
    expect(h.wireFrames).toBe(a.seen.frames);
    expect(s.ipv4.counters.get('reasm_ok')).toBeGreaterThan(0);
    expect(s.ipv4.counters.get('reasm_evicted')).toBeGreaterThan(0);
    expect(s.ipv4.counters.get('reasm_timeout')).toBeGreaterThan(0);
    expect(s.icmp.counters.get('rx_echo_group_ignored')).toBeGreaterThan(0);
    expect(s.icmp.counters.get('tx_error_about_icmp_error') + s.icmp.counters.get('tx_error_about_group')).toBeGreaterThan(0);
    expect(s.arp.counters.get('rx_bad_sender_mac')).toBeGreaterThan(0);
    expect(s.arp.table.stats.get('forced_gc_runs')).toBeGreaterThan(0);
    expect(s.udp.counters.get('rx_queue_full')).toBeGreaterThan(0);
    drainAndClose(h);
    expect(swallowed.lines).toEqual([]);
  }, 600_000);

  it('property: any short sequence of mutated frames leaves a stack that obeys the same rules', () => {
    fc.assert(
      fc.property(fc.array(recipeArbitrary, { minLength: 1, maxLength: 40 }), fc.array(fc.nat(3_000), { maxLength: 4 }), (recipes, pauses) => {
        const h = harness(2);
        const frames = recipes.map(build);
        const chunk = Math.ceil(frames.length / (pauses.length + 1));
        for (let i = 0, p = 0; i < frames.length; i += chunk, p++) h.feed(frames.slice(i, i + chunk), pauses[p] ?? 0);
        h.checkBounds();
        drainAndClose(h);
        expect(h.auditor.violations).toEqual([]);
        expect(swallowed.lines).toEqual([]);
        expect(h.wireFrames).toBe(h.auditor.seen.frames);
      }),
      { numRuns: 1000, seed: 0x5eed },
    );
  }, 300_000);
});
