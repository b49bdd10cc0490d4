/**
 * The sender's SACK scoreboard (RFC 6675 section 3, Linux's retransmission queue with its
 * `sacked` bits): one record per segment sent and not yet cumulatively acknowledged, in sequence
 * order, each marked as SACKed by the peer, as lost, and as retransmitted. Loss recovery reads
 * it: which segments are lost (RFC 6675 IsLost, or RACK's time rule), how many bytes are still
 * in the network (`pipe`), and which segment to send next (NextSeg).
 *
 * The peer's SACK blocks are hostile input. A block is used only if it lies between SND.UNA and
 * SND.MAX and is no bigger than the largest window the peer ever offered (Linux's
 * tcp_is_sackblock_valid); a first block below the cumulative ACK, or inside the second block,
 * is a D-SACK (RFC 2883 section 4): it reports a duplicate and marks nothing. A record counts
 * as SACKed only when a block covers it whole. A record may stand for several segments (a
 * super-frame on a GSO link): a valid block that covers part of one cuts it at the block's edge,
 * as Linux fragments a TSO skb, but never past `maxRecords` records, so the peer cannot make the
 * scoreboard grow without bound; past `maxRecords` new data is merged into the last record too.
 *
 * Everything is in sequence numbers (modulo 2^32) through seq.ts.
 */
import type { SackBlock } from './header.ts';
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from './seq.ts';

/** One segment sent and not yet cumulatively acknowledged. */
export interface SentSegment {
  /** First sequence number. */
  start: number;
  /** One after the last (a FIN counts one). */
  end: number;
  /** When it was last (re)transmitted, ms on the stack's clock (RACK reads it). */
  sentAt: number;
  /** Retransmitted at least once (Karn: its ACK says nothing of the RTT). */
  everRetransmitted: boolean;
  /** A retransmission of it is in the network (RFC 6675 pipe counts it once more). */
  retransmitInFlight: boolean;
  /** The peer reported it in a SACK block. */
  sacked: boolean;
  /**
   * Bytes per segment when the record stands for several (a super-frame's segments but the
   * last, on a GSO link); absent: the record is one segment. SACK blocks cut it only between segments.
   */
  segmentSize?: number;
  /**
   * Judged lost (by DupThresh, RACK, or a timeout). It stays marked after its retransmission
   * (as Linux's TCPCB_LOST), which `retransmitInFlight` tells apart.
   */
  lost: boolean;
}

/** RFC 6675's DupThresh (and Linux's default tcp_reordering, 3). */
export const DUP_THRESH = 3;

/** What one ACK's SACK blocks told the scoreboard. */
export interface SackUpdate {
  /** The first block was a D-SACK (RFC 2883): the peer got something twice. */
  dsack: boolean;
  /** The D-SACK block, when there was one (for undo and counters). */
  dsackBlock: SackBlock | undefined;
  /** Bytes of segments SACKed for the first time by this ACK (PRR's DeliveredData adds them). */
  newlySackedBytes: number;
  /** Blocks thrown away as invalid (Linux's TCPSACKDiscard). */
  discarded: number;
  /** The segments SACKed for the first time by this ACK (RACK looks at their send times). */
  newlySacked: SentSegment[];
}

export class SackScoreboard {
  private segments: SentSegment[] = [];
  /** Bytes of records marked SACKed. */
  private sackedTotal = 0;
  /** Records marked SACKed (Linux's sacked_out, in segments). */
  private sackedCount = 0;

  constructor(readonly maxRecords = 4096) {}

  /** The records, oldest sequence first (read-only for callers: mark through the methods). */
  get records(): readonly SentSegment[] {
    return this.segments;
  }

  get sackedBytes(): number {
    return this.sackedTotal;
  }

  get sackedSegments(): number {
    return this.sackedCount;
  }

  /** The highest sequence number a SACK block has covered (HighSACK's end), or undefined. */
  highestSackedEnd(): number | undefined {
    if (this.sackedCount === 0) return undefined; // the usual case: no walk
    for (let i = this.segments.length - 1; i >= 0; i--) if (this.segments[i]!.sacked) return this.segments[i]!.end;
    return undefined;
  }

  /** New data [start, end) went out for the first time at `now`: one segment, or segments of `segmentSize` bytes. */
  sentNew(start: number, end: number, now: number, segmentSize?: number): void {
    const last = this.segments[this.segments.length - 1];
    if (last && seqGt(end, last.end) && seqLt(start, last.end)) start = last.end;
    if (last && seqLe(end, last.end)) return; // nothing new
    if (last && this.segments.length >= this.maxRecords && last.end === start && !last.sacked) {
      // Full: the new bytes join the last record (coarser, but bounded).
      last.end = end;
      last.sentAt = now;
      last.segmentSize = undefined;
      return;
    }
    const record: SentSegment = { start, end, sentAt: now, everRetransmitted: false, retransmitInFlight: false, sacked: false, lost: false };
    if (segmentSize !== undefined && segmentSize > 0 && seqDiff(end, start) > segmentSize) record.segmentSize = segmentSize;
    this.segments.push(record);
  }

  /** The record `segment` was sent again at `now`. */
  retransmitted(segment: SentSegment, now: number): void {
    segment.sentAt = now;
    segment.everRetransmitted = true;
    segment.retransmitInFlight = true;
  }

  /**
   * Cuts `segment` in two at `at` (our own choice: a retransmission must fit a smaller MSS); the
   * second part keeps the marks.
   */
  split(segment: SentSegment, at: number): SentSegment {
    const i = this.segments.indexOf(segment);
    const tail: SentSegment = { ...segment, start: at };
    segment.end = at;
    this.segments.splice(i + 1, 0, tail);
    return tail;
  }

  /**
   * Cuts the record at `index` so that the segments `block` covers whole are one record; returns
   * its index, or -1 when it covers none whole (a record of one segment, a block within a
   * segment) or the cut would pass `maxRecords`. Every part keeps the marks.
   */
  private cutToBlock(index: number, block: SackBlock): number {
    const s = this.segments[index]!;
    const size = s.segmentSize;
    if (size === undefined) return -1;
    const length = seqDiff(s.end, s.start);
    const from = Math.max(0, Math.ceil(seqDiff(block.left, s.start) / size) * size);
    const to = Math.min(length, Math.floor(seqDiff(block.right, s.start) / size) * size);
    if (to - from < size) return -1;
    if (this.segments.length + (from > 0 ? 1 : 0) + (to < length ? 1 : 0) > this.maxRecords) return -1;
    const end = s.end;
    const piece = (a: number, b: number): SentSegment => {
      const r: SentSegment = { ...s, start: seqAdd(s.start, a), end: seqAdd(s.start, b) };
      if (b - a <= size) r.segmentSize = undefined;
      return r;
    };
    const parts: SentSegment[] = [];
    if (from > 0) parts.push(piece(0, from));
    const covered = parts.length;
    parts.push(piece(from, to));
    if (to < length) parts.push({ ...piece(to, length), end });
    this.segments.splice(index, 1, ...parts);
    return index + covered;
  }

  /** The record holding sequence number `seq`, if any. */
  find(seq: number): SentSegment | undefined {
    for (const s of this.segments) if (seqLe(s.start, seq) && seqLt(seq, s.end)) return s;
    return undefined;
  }

  /**
   * SND.UNA moved to `una`: records wholly below it go (returned, oldest first); one that
   * straddles it is trimmed. A record SACKed earlier that is now at SND.UNA means the peer
   * dropped data it had SACKed: the caller checks `headIsSacked` for that (reneging).
   */
  acknowledge(una: number): SentSegment[] {
    let n = 0;
    while (n < this.segments.length && seqLe(this.segments[n]!.end, una)) n++;
    const gone = this.segments.splice(0, n);
    for (const s of gone) {
      if (!s.sacked) continue;
      this.sackedTotal -= seqDiff(s.end, s.start);
      this.sackedCount--;
    }
    const head = this.segments[0];
    if (head && seqLt(head.start, una)) {
      if (head.sacked) this.sackedTotal -= seqDiff(una, head.start);
      head.start = una;
    }
    return gone;
  }

  /** The record at SND.UNA is marked SACKed: the receiver reneged (RFC 2018 8, Linux tcp_check_sack_reneging). */
  headIsSacked(): boolean {
    return this.segments[0]?.sacked === true;
  }

  /** Forgets every SACK mark (after reneging: the peer's word is no longer good). */
  clearSacks(): void {
    for (const s of this.segments) s.sacked = false;
    this.sackedTotal = 0;
    this.sackedCount = 0;
  }

  /**
   * Takes one ACK's SACK blocks. `ack` is the segment's cumulative ACK, `una`/`sndMax` our
   * SND.UNA (after this ACK) and SND.MAX, `maxWindow` the largest window the peer offered.
   */
  applySack(blocks: readonly SackBlock[], ack: number, una: number, sndMax: number, maxWindow: number): SackUpdate {
    const update: SackUpdate = { dsack: false, dsackBlock: undefined, newlySackedBytes: 0, discarded: 0, newlySacked: [] };
    if (blocks.length === 0) return update;
    // RFC 2883 section 4: the first block is a D-SACK if it lies below the cumulative ACK, or
    // inside the second block.
    const first = blocks[0]!;
    const second = blocks[1];
    if (seqGt(first.right, first.left)) {
      if (seqLt(first.left, ack) || (second && seqGe(first.left, second.left) && seqLe(first.right, second.right))) {
        // Like Linux, a D-SACK is believed only if it is no older than a window's worth before
        // SND.UNA and names data we sent.
        if (seqLe(first.right, sndMax) && seqGe(first.left, seqAdd(una, -Math.max(maxWindow, 1))) && seqDiff(first.right, first.left) <= Math.max(maxWindow, 1)) {
          update.dsack = true;
          update.dsackBlock = first;
        } else {
          update.discarded++;
        }
      }
    }
    for (let i = update.dsack || update.discarded > 0 ? 1 : 0; i < blocks.length; i++) {
      const b = blocks[i]!;
      if (!isValidBlock(b, una, sndMax, maxWindow)) {
        update.discarded++;
        continue;
      }
      for (let j = 0; j < this.segments.length; j++) {
        let s = this.segments[j]!;
        if (seqLe(s.end, b.left)) continue;
        if (seqGe(s.start, b.right)) break;
        if (s.sacked) continue;
        if (seqLt(s.start, b.left) || seqGt(s.end, b.right)) {
          // A record of several segments (a super-frame's) that the block covers in part is cut
          // so that the segments it covers whole become a record of their own (Linux's
          // tcp_match_skb_to_sack). Otherwise, or when the records are at their bound, it stays
          // whole and unmarked: only whole records are SACKed.
          const covered = this.cutToBlock(j, b);
          if (covered < 0) continue;
          j = covered;
          s = this.segments[j]!;
        }
        s.sacked = true;
        s.lost = false;
        s.retransmitInFlight = false;
        const bytes = seqDiff(s.end, s.start);
        this.sackedTotal += bytes;
        update.newlySackedBytes += bytes;
        this.sackedCount++;
        update.newlySacked.push(s);
      }
    }
    return update;
  }

  /**
   * RFC 6675 IsLost, for every record at once: a segment not SACKed is lost when DupThresh
   * SACKed segments, or more than (DupThresh - 1) * SMSS SACKed bytes, lie above it. Marks them;
   * returns the bytes newly marked. A segment retransmitted and still in the network is left
   * alone (RACK is what finds a lost retransmission).
   */
  markLostByDupThresh(mss: number): number {
    // Nothing SACKed, nothing above anything: the walk would mark nothing (the usual case on a clean path).
    if (this.sackedCount === 0) return 0;
    let sackedAbove = 0;
    let sackedBytesAbove = 0;
    let newly = 0;
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const s = this.segments[i]!;
      if (s.sacked) {
        sackedAbove++;
        sackedBytesAbove += seqDiff(s.end, s.start);
        continue;
      }
      if (s.lost || s.retransmitInFlight) continue;
      if (sackedAbove >= DUP_THRESH || sackedBytesAbove > (DUP_THRESH - 1) * mss) {
        s.lost = true;
        newly += seqDiff(s.end, s.start);
      }
    }
    return newly;
  }

  /** After a retransmission timeout every record not SACKed is lost (RFC 6675 5.1, Linux tcp_enter_loss). */
  markAllLost(): void {
    for (const s of this.segments) {
      if (s.sacked) continue;
      s.lost = true;
      s.retransmitInFlight = false;
    }
  }

  /**
   * Forgets every loss mark (an undo: the losses were not real, Linux's tcp_undo_cwnd_reduction
   * with unmark_loss). A retransmission still in the network stays counted in `pipe`.
   */
  clearLost(): void {
    for (const s of this.segments) s.lost = false;
  }

  /** Records with a retransmission in the network (Linux's retrans_out, in segments). */
  retransmitsInFlight(): number {
    let n = 0;
    for (const s of this.segments) if (s.retransmitInFlight) n++;
    return n;
  }

  /** Marks one record lost (RACK: also a lost retransmission), and forgets a retransmission of it in flight. */
  markLost(segment: SentSegment): number {
    if (segment.sacked || (segment.lost && !segment.retransmitInFlight)) return 0;
    segment.lost = true;
    segment.retransmitInFlight = false;
    return seqDiff(segment.end, segment.start);
  }

  /**
   * RFC 6675 SetPipe, the way Linux counts it (packets_out - sacked_out - lost_out + retrans_out):
   * bytes sent and neither SACKed nor judged lost, plus retransmissions still in the network (so
   * a lost segment retransmitted counts once, one retransmitted without being judged lost twice).
   */
  pipe(): number {
    let pipe = 0;
    for (const s of this.segments) {
      if (s.sacked) continue;
      const bytes = seqDiff(s.end, s.start);
      if (!s.lost) pipe += bytes;
      if (s.retransmitInFlight) pipe += bytes;
    }
    return pipe;
  }

  /** NextSeg rule 1 (RFC 6675 4): the lowest segment judged lost and not yet retransmitted since. */
  nextLost(): SentSegment | undefined {
    for (const s of this.segments) if (s.lost && !s.sacked && !s.retransmitInFlight) return s;
    return undefined;
  }

  /** Bytes marked lost and not yet retransmitted. */
  lostBytes(): number {
    let n = 0;
    for (const s of this.segments) if (s.lost && !s.sacked && !s.retransmitInFlight) n += seqDiff(s.end, s.start);
    return n;
  }

  clear(): void {
    this.segments = [];
    this.sackedTotal = 0;
    this.sackedCount = 0;
  }
}

/**
 * A SACK block we may use (RFC 2018, Linux tcp_is_sackblock_valid): non-empty, at or above
 * SND.UNA, not past SND.MAX, and no bigger than any window the peer offered.
 */
export function isValidBlock(b: SackBlock, una: number, sndMax: number, maxWindow: number): boolean {
  if (!seqGt(b.right, b.left)) return false;
  if (seqLt(b.left, una) || seqGt(b.right, sndMax)) return false;
  return seqDiff(b.right, b.left) <= Math.max(maxWindow, 1);
}
