/**
 * From a capture to the numbers a time-sequence graph draws (the "Stevens graph" of TCP/IP
 * Illustrated, tcptrace's and Wireshark's): for each TCP connection in a pcap, and for each
 * direction of it, the data segments (sequence range against time), the ACKs and the right edge
 * of the receive window the other side sent back, its SACK blocks, and which segments were sent
 * again. A pure function of the records: the SVG writer (time-sequence.ts) only draws what this
 * returns, so the tests check the numbers here and the drawing separately.
 *
 * Sequence numbers are shown relative to the direction's initial sequence number, as tcpdump and
 * Wireshark do (the SYN is 0, the first data byte 1), and unwrapped: a transfer longer than 4 GiB
 * keeps climbing instead of falling back to 0. A segment is a retransmission when it carries
 * sequence space (data, SYN or FIN) below the highest already seen in its direction: tcptrace's
 * rule, which at the sender's side of the wire finds every segment sent twice. (Wireshark calls
 * one it cannot explain by loss "out-of-order"; both count here, as the capture's README says.)
 *
 * Nothing in a capture is trusted: frames that are not IPv4 + TCP (over Ethernet, Linux SLL/SLL2,
 * raw IP or loopback: link/src/capture-file.ts finds the datagram), fragments, and
 * headers that do not check are skipped and counted by reason, never thrown on. Checksums are not
 * verified (a capture taken where the kernel offloads them holds partial ones; tshark does not
 * check by default either). Captures cut short by a snap length (`tcpdump -s 96`) work: the
 * payload length comes from the IP header, not from the bytes saved.
 */
import { formatIpv4, ipv4Datagram, type CaptureRecord, type PcapRecord } from '@tapstack/link';
import { IpProtocol, Ipv4Packet } from '@tapstack/ipv4';
import { TCP_MAX_WINDOW_SCALE, TcpFlag, TcpPacket, TcpRepr } from '@tapstack/tcp';

/** One segment that carried sequence space (data, SYN or FIN). */
export interface SeriesSegment {
  /** Seconds since the connection's first frame. */
  readonly time: number;
  /** First sequence number, relative to the direction's ISN (unwrapped). */
  readonly seq: number;
  /** Sequence space it occupies: data bytes, plus one for SYN and for FIN. */
  readonly length: number;
  /** It repeats sequence space already seen in this direction. */
  readonly retransmission: boolean;
  /** Frame number in the file, 1-based like Wireshark's. */
  readonly frame: number;
}

/** An acknowledgement, and the window that came with it, from the receiving side. */
export interface SeriesAck {
  readonly time: number;
  /** The next byte expected (relative, unwrapped). */
  readonly ack: number;
  /** The right edge of the offered window: ack + (window << scale). */
  readonly windowEdge: number;
  readonly frame: number;
}

/** An ACK that carried SACK blocks (RFC 2018; a D-SACK block of RFC 2883 counts too). */
export interface SeriesSack {
  readonly time: number;
  /** [left, right) ranges, relative to the data direction's ISN. */
  readonly blocks: readonly { readonly left: number; readonly right: number }[];
  readonly frame: number;
}

/** One direction of a connection: what `from` sent, and what `to` answered about it. */
export interface DirectionSeries {
  /** "10.0.0.2:5001" */
  readonly from: string;
  readonly to: string;
  readonly segments: readonly SeriesSegment[];
  readonly acks: readonly SeriesAck[];
  readonly sacks: readonly SeriesSack[];
  /** The segments of `segments` that are retransmissions, in order. */
  readonly retransmissions: readonly SeriesSegment[];
  /** Data bytes carried, retransmissions included. */
  readonly bytes: number;
  /** Highest sequence number reached (relative): the distinct sequence space covered. */
  readonly highestSeq: number;
  /** The initial sequence number was seen (a SYN), so relative numbers start at 0. */
  readonly synSeen: boolean;
  /** The window scale applied to the ACKs in this direction's graph (0 when the SYNs were not seen). */
  readonly windowScale: number;
}

export interface ConnectionSeries {
  /** 1-based, in order of first appearance (tapstack plot --conn N). */
  readonly index: number;
  /** Microseconds since 1970 of the connection's first frame; times in the series count from it. */
  readonly startUs: number;
  /** Seconds from the first frame to the last. */
  readonly duration: number;
  readonly frames: number;
  /** The direction of the first frame (the client's, when the SYN was captured) and the other. */
  readonly forward: DirectionSeries;
  readonly reverse: DirectionSeries;
}

export interface CaptureSeries {
  readonly connections: readonly ConnectionSeries[];
  /** Frames that were not used, by reason (not_ipv4, fragment, not_tcp, truncated, ...). */
  readonly skipped: Readonly<Record<string, number>>;
}

/** The direction that carried more data: the one a time-sequence graph is usually about. */
export function dataDirection(connection: ConnectionSeries): DirectionSeries {
  return connection.reverse.bytes > connection.forward.bytes ? connection.reverse : connection.forward;
}

// ---------------------------------------------------------------------------------------------
// Building

interface DirectionState {
  from: string;
  to: string;
  segments: SeriesSegment[];
  acks: SeriesAck[];
  sacks: SeriesSack[];
  retransmissions: SeriesSegment[];
  bytes: number;
  /** Unwrapping: the last absolute sequence number seen in this direction's space, and its relative value. */
  base: number | undefined;
  lastAbsolute: number;
  lastRelative: number;
  highest: number;
  synSeen: boolean;
  /** The shift this side announced in its SYN (undefined: none, or SYN not seen). */
  announcedScale: number | undefined;
}

interface ConnectionState {
  index: number;
  key: string;
  startUs: number;
  lastUs: number;
  frames: number;
  forward: DirectionState;
  reverse: DirectionState;
  /** The ISN of the SYN that opened it (a SYN with another ISN on the same 4-tuple starts a new connection). */
  clientIsn: number | undefined;
}

function direction(from: string, to: string): DirectionState {
  return { from, to, segments: [], acks: [], sacks: [], retransmissions: [], bytes: 0, base: undefined, lastAbsolute: 0, lastRelative: 0, highest: -Infinity, synSeen: false, announcedScale: undefined };
}

/** The relative, unwrapped position of `seq` in direction `d`'s sequence space. */
function relative(d: DirectionState, seq: number): number {
  if (d.base === undefined) {
    d.base = seq;
    d.lastAbsolute = seq;
    d.lastRelative = 0;
    return 0;
  }
  // The distance the short way round modulo 2^32 (as seq.ts compares), added to the last position.
  const r = d.lastRelative + ((seq - d.lastAbsolute) | 0);
  d.lastAbsolute = seq >>> 0;
  d.lastRelative = r;
  return r;
}

/** The scale that applies to windows `d`'s side sends: its own shift, if both SYNs carried one (RFC 7323 2.2). */
function scaleOf(d: DirectionState, other: DirectionState): number {
  if (d.announcedScale === undefined || other.announcedScale === undefined) return 0;
  return Math.min(d.announcedScale, TCP_MAX_WINDOW_SCALE);
}

function freeze(d: DirectionState, other: DirectionState): DirectionSeries {
  return {
    from: d.from,
    to: d.to,
    segments: d.segments,
    acks: d.acks,
    sacks: d.sacks,
    retransmissions: d.retransmissions,
    bytes: d.bytes,
    highestSeq: d.segments.length > 0 ? d.highest : 0,
    synSeen: d.synSeen,
    windowScale: scaleOf(other, d),
  };
}

/**
 * The connections of a capture and their series (see the file comment). Records from `readPcap`
 * are Ethernet; those from `readCapture` say their link type (SLL, raw IP, ...). Never throws on
 * frame contents.
 */
export function tcpSeries(records: readonly (PcapRecord | CaptureRecord)[]): CaptureSeries {
  const skipped: Record<string, number> = {};
  const skip = (reason: string): void => {
    skipped[reason] = (skipped[reason] ?? 0) + 1;
  };
  const open = new Map<string, ConnectionState>();
  const all: ConnectionState[] = [];

  records.forEach((record, i) => {
    const ipBytes = ipv4Datagram(record);
    if (!ipBytes) return skip('not_ipv4');
    const header = Ipv4Packet.checkHeader(ipBytes);
    if (!header.ok) return skip(`ipv4_${header.reason}`);
    const ip = header.value;
    if (ip.protocol !== IpProtocol.TCP) return skip('not_tcp');
    if (ip.moreFragments || ip.fragmentOffset !== 0) return skip('fragment');
    const totalLength = ip.totalLength;
    if (totalLength < ip.headerLength) return skip('ipv4_bad_total_length');
    // The segment as saved: up to the IP total length (Ethernet padding left out), maybe cut by the snap length.
    const tcpBytes = ipBytes.subarray(ip.headerLength, Math.min(totalLength, ipBytes.length));
    const checked = TcpPacket.check(tcpBytes);
    if (!checked.ok) return skip(`tcp_${checked.reason}`);
    const tcp = checked.value;
    const payloadLength = totalLength - ip.headerLength - tcp.headerLength;
    if (payloadLength < 0) return skip('tcp_bad_data_offset');
    const repr = TcpRepr.parse(tcp);
    add(record.timestampUs, i + 1, formatIpv4(ip.source), formatIpv4(ip.destination), repr, payloadLength);
  });

  function add(timeUs: number, frameNumber: number, source: string, destination: string, seg: TcpRepr, payloadLength: number): void {
    const from = `${source}:${seg.sourcePort}`;
    const to = `${destination}:${seg.destinationPort}`;
    const key = from < to ? `${from} ${to}` : `${to} ${from}`;
    let c = open.get(key);
    const isSyn = (seg.flags & (TcpFlag.SYN | TcpFlag.ACK)) === TcpFlag.SYN;
    // A fresh SYN (another ISN) on a 4-tuple already seen opens a new connection (port reuse).
    if (c && isSyn && c.clientIsn !== undefined && c.clientIsn !== seg.seq) c = undefined;
    if (!c) {
      c = { index: all.length + 1, key, startUs: timeUs, lastUs: timeUs, frames: 0, forward: direction(from, to), reverse: direction(to, from), clientIsn: isSyn ? seg.seq : undefined };
      open.set(key, c);
      all.push(c);
    }
    c.frames++;
    c.lastUs = timeUs;
    const time = (timeUs - c.startUs) / 1e6;
    const mine = c.forward.from === from ? c.forward : c.reverse;
    const theirs = mine === c.forward ? c.reverse : c.forward;

    if (seg.flags & TcpFlag.SYN) {
      mine.synSeen = true;
      mine.announcedScale = seg.options.windowScale;
      // The SYN's sequence number is the ISN: position 0 (as Wireshark's relative numbers).
      if (mine.base === undefined || mine.segments.length === 0) {
        mine.base = seg.seq;
        mine.lastAbsolute = seg.seq;
        mine.lastRelative = 0;
      }
    }
    const seq = relative(mine, seg.seq);
    const length = payloadLength + (seg.flags & TcpFlag.SYN ? 1 : 0) + (seg.flags & TcpFlag.FIN ? 1 : 0);
    if (length > 0 && !(seg.flags & TcpFlag.RST)) {
      const retransmission = seq < mine.highest;
      const mark: SeriesSegment = { time, seq, length, retransmission, frame: frameNumber };
      mine.segments.push(mark);
      if (retransmission) mine.retransmissions.push(mark);
      mine.bytes += payloadLength;
      mine.highest = Math.max(mine.highest, seq + length);
    }
    if (seg.flags & TcpFlag.ACK && !(seg.flags & TcpFlag.RST)) {
      // An ACK is about the other direction's sequence space; a SYN-ACK's window is never scaled (RFC 7323 2.2).
      const ack = relative(theirs, seg.ack);
      const scale = seg.flags & TcpFlag.SYN ? 0 : scaleOf(mine, theirs);
      theirs.acks.push({ time, ack, windowEdge: ack + seg.window * 2 ** scale, frame: frameNumber });
      const blocks = seg.options.sackBlocks;
      if (blocks && blocks.length > 0) {
        theirs.sacks.push({ time, blocks: blocks.map((b) => ({ left: relative(theirs, b.left), right: relative(theirs, b.right) })), frame: frameNumber });
      }
    }
  }

  return {
    connections: all.map((c) => ({
      index: c.index,
      startUs: c.startUs,
      duration: (c.lastUs - c.startUs) / 1e6,
      frames: c.frames,
      forward: freeze(c.forward, c.reverse),
      reverse: freeze(c.reverse, c.forward),
    })),
    skipped,
  };
}
