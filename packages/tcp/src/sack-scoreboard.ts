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
 * What it costs (Linux's model, tcp_input.c): the sums loss recovery reads are kept as counts
 * that each change of a record's marks updates (Linux's packets_out, sacked_out, lost_out and
 * retrans_out, here in bytes), so `pipe` and `lostBytes` are constant-time; `nextLost` starts
 * from a hint (Linux's retransmit_skb_hint) instead of SND.UNA; `acknowledge` drops records from
 * the front of a queue without touching the rest; and beside the sequence order the records
 * still in the network are kept in the order they were last sent (Linux's tsorted_sent_queue),
 * so that RACK walks only the oldest ones and stops at the first sent after the segment it
 * compares with. With nothing SACKed or lost an ACK costs the records it frees and no more.
 * `verify` recomputes every count by a walk (as tcp_verify_left_out checks Linux's); the tests
 * call it after every operation.
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
  /**
   * The TSval its last retransmission carried (0: never retransmitted, or no timestamps): an ACK
   * echoing an older one was sent for an earlier transmission (RFC 8985 6.2 step 2, RACK reads it).
   */
  retransmitTsval: number;
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
  /** The record sent just before this one, in the send-time order (scoreboard bookkeeping). */
  olderSent?: SentSegment | undefined;
  /** The record sent just after this one, in the send-time order (scoreboard bookkeeping). */
  newerSent?: SentSegment | undefined;
  /** In the send-time order: not SACKed, and not lost without a retransmission in flight (scoreboard bookkeeping). */
  inSendOrder?: boolean;
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
  /** The records from `head` on, in sequence order; those before `head` are acknowledged and dropped at the next compaction. */
  private segments: SentSegment[] = [];
  private head = 0;
  /** Bytes of all records (Linux's packets_out, in bytes). */
  private totalBytes = 0;
  /** Bytes of records marked SACKed (sacked_out). */
  private sackedTotal = 0;
  /** Records marked SACKed (Linux's sacked_out, in segments). */
  private sackedCount = 0;
  /**
   * The highest end of a SACKed record while there is one. Records go from the front only, and
   * SACKed ones are cut and trimmed without moving their ends up, so this only has to grow.
   */
  private highSacked = 0;
  /** Bytes of records lost and not SACKed (lost_out). */
  private lostTotal = 0;
  /** Bytes of records not SACKed with a retransmission in the network (retrans_out). */
  private retransTotal = 0;
  /** Records with a retransmission in the network. */
  private retransCount = 0;
  /** Bytes and records lost, not SACKed and not retransmitted since: what NextSeg rule 1 sends. */
  private pendingTotal = 0;
  private pendingCount = 0;
  /**
   * No record below this sequence number waits to be retransmitted (Linux's retransmit_skb_hint):
   * `nextLost` searches from here. Undefined: from the first record.
   */
  private lostHint: number | undefined = undefined;
  /**
   * Where the last DupThresh walk stopped (Linux's lost_skb_hint and lost_cnt_hint): every record
   * below `seq` is SACKed, judged lost, or has a retransmission in flight, and `sacked`/`sackedBytes`
   * are the SACKed records and bytes below it. Undefined: the next walk starts at SND.UNA.
   */
  private dupThreshHint: { seq: number; sacked: number; sackedBytes: number } | undefined = undefined;
  /** The send-time order's ends: least recently sent, most recently sent. */
  private oldest: SentSegment | undefined = undefined;
  private newest: SentSegment | undefined = undefined;
  /** What the last `rackMarkLost` found besides the bytes: ms until the last record it judged not yet due is due (0: none), and lost retransmissions. */
  rackWait = 0;
  rackLostRetransmits = 0;
  /** What the last `acknowledge` freed (reused, so that an ACK allocates nothing here). */
  private readonly freed: SentSegment[] = [];

  constructor(readonly maxRecords = 4096) {}

  /** The records, oldest sequence first (read-only for callers: mark through the methods). */
  get records(): readonly SentSegment[] {
    this.compact(true);
    return this.segments;
  }

  /** How many records there are. */
  get size(): number {
    return this.segments.length - this.head;
  }

  get sackedBytes(): number {
    return this.sackedTotal;
  }

  get sackedSegments(): number {
    return this.sackedCount;
  }

  /** The record at SND.UNA, if any. */
  first(): SentSegment | undefined {
    return this.segments[this.head];
  }

  /** The highest record not SACKed (the one a tail loss probe sends again), if any. */
  lastNotSacked(): SentSegment | undefined {
    for (let i = this.segments.length - 1; i >= this.head; i--) if (!this.segments[i]!.sacked) return this.segments[i];
    return undefined;
  }

  /** The highest sequence number a SACK block has covered (HighSACK's end), or undefined. */
  highestSackedEnd(): number | undefined {
    return this.sackedCount === 0 ? undefined : this.highSacked;
  }

  /** New data [start, end) went out for the first time at `now`: one segment, or segments of `segmentSize` bytes. */
  sentNew(start: number, end: number, now: number, segmentSize?: number): void {
    const last = this.segments.length > this.head ? this.segments[this.segments.length - 1] : undefined;
    if (last && seqGt(end, last.end) && seqLt(start, last.end)) start = last.end;
    if (last && seqLe(end, last.end)) return; // nothing new
    if (last && this.size >= this.maxRecords && last.end === start && !last.sacked) {
      // Full: the new bytes join the last record (coarser, but bounded).
      this.count(last, -1);
      last.end = end;
      last.sentAt = now;
      last.segmentSize = undefined;
      this.count(last, 1);
      if (last.inSendOrder) {
        this.unlinkSent(last);
        this.appendSent(last);
      }
      return;
    }
    const record: SentSegment = { start, end, sentAt: now, everRetransmitted: false, retransmitTsval: 0, retransmitInFlight: false, sacked: false, lost: false };
    if (segmentSize !== undefined && segmentSize > 0 && seqDiff(end, start) > segmentSize) record.segmentSize = segmentSize;
    this.segments.push(record);
    this.count(record, 1);
    this.appendSent(record);
  }

  /** The record `segment` was sent again at `now`: it moves to the newest end of the send-time order. */
  retransmitted(segment: SentSegment, now: number, tsval = 0): void {
    this.count(segment, -1);
    segment.sentAt = now;
    segment.everRetransmitted = true;
    segment.retransmitTsval = tsval;
    segment.retransmitInFlight = true;
    this.count(segment, 1);
    if (segment.inSendOrder) this.unlinkSent(segment);
    if (!segment.sacked) this.appendSent(segment);
  }

  /**
   * Cuts `segment` in two at `at` (our own choice: a retransmission must fit a smaller MSS); the
   * second part keeps the marks.
   */
  split(segment: SentSegment, at: number): SentSegment {
    const i = this.indexOf(segment);
    this.count(segment, -1);
    const tail: SentSegment = { ...segment, start: at, olderSent: undefined, newerSent: undefined, inSendOrder: false };
    segment.end = at;
    // a SACKed record below the DupThresh hint is one more SACKed record there (the bytes stay)
    if (segment.sacked && this.dupThreshHint !== undefined && seqLt(segment.start, this.dupThreshHint.seq)) this.dupThreshBelow(1, 0);
    this.count(segment, 1);
    this.count(tail, 1);
    this.segments.splice(i + 1, 0, tail);
    if (segment.inSendOrder) this.linkAfter(segment, tail); // sent at the same time: beside it
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
    if (this.size + (from > 0 ? 1 : 0) + (to < length ? 1 : 0) > this.maxRecords) return -1;
    const end = s.end;
    const piece = (a: number, b: number): SentSegment => {
      const r: SentSegment = { ...s, start: seqAdd(s.start, a), end: seqAdd(s.start, b), olderSent: undefined, newerSent: undefined, inSendOrder: false };
      if (b - a <= size) r.segmentSize = undefined;
      return r;
    };
    const parts: SentSegment[] = [];
    if (from > 0) parts.push(piece(0, from));
    const covered = parts.length;
    parts.push(piece(from, to));
    if (to < length) parts.push({ ...piece(to, length), end });
    this.count(s, -1);
    for (const p of parts) this.count(p, 1);
    if (s.inSendOrder) {
      // The parts take the whole record's place in the send-time order.
      let after = s;
      for (const p of parts) {
        this.linkAfter(after, p);
        after = p;
      }
      this.unlinkSent(s);
    }
    this.segments.splice(index, 1, ...parts);
    return index + covered;
  }

  /** The record holding sequence number `seq`, if any. */
  find(seq: number): SentSegment | undefined {
    const i = this.firstEndingAfter(seq);
    const s = this.segments[i];
    return s && seqLe(s.start, seq) ? s : undefined;
  }

  /**
   * SND.UNA moved to `una`: records wholly below it go (returned, oldest first); one that
   * straddles it is trimmed. A record SACKed earlier that is now at SND.UNA means the peer
   * dropped data it had SACKed: the caller checks `headIsSacked` for that (reneging). Costs the
   * records it frees: the rest of the queue is not touched. The array returned is the same one
   * every time (no allocation per ACK): it holds this call's records until the next call.
   */
  acknowledge(una: number): readonly SentSegment[] {
    const gone = this.freed;
    gone.length = 0;
    let n = this.head;
    const hint = this.dupThreshHint;
    if (hint !== undefined && !seqGt(hint.seq, una)) this.dupThreshHint = undefined;
    while (n < this.segments.length && seqLe(this.segments[n]!.end, una)) {
      const s = this.segments[n]!;
      if (s.sacked && this.dupThreshHint !== undefined) this.dupThreshBelow(-1, -seqDiff(s.end, s.start));
      this.count(s, -1);
      if (s.inSendOrder) this.unlinkSent(s);
      gone.push(s);
      n++;
    }
    this.head = n;
    const head = this.segments[n];
    if (head && seqLt(head.start, una)) {
      if (head.sacked && this.dupThreshHint !== undefined && seqLt(head.start, this.dupThreshHint.seq)) this.dupThreshBelow(0, -seqDiff(una, head.start));
      this.count(head, -1);
      head.start = una;
      this.count(head, 1);
    }
    if (this.lostHint !== undefined && seqLt(this.lostHint, una)) this.lostHint = undefined;
    this.compact(false);
    return gone;
  }

  /** The record at SND.UNA is marked SACKed: the receiver reneged (RFC 2018 8, Linux tcp_check_sack_reneging). */
  headIsSacked(): boolean {
    return this.segments[this.head]?.sacked === true;
  }

  /** Forgets every SACK mark (after reneging: the peer's word is no longer good). */
  clearSacks(): void {
    for (let i = this.head; i < this.segments.length; i++) this.segments[i]!.sacked = false;
    this.recount();
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
      // The records the block reaches start at the first one ending after its left edge.
      for (let j = this.firstEndingAfter(b.left); j < this.segments.length; j++) {
        let s = this.segments[j]!;
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
        this.count(s, -1);
        s.sacked = true;
        s.lost = false;
        s.retransmitInFlight = false;
        this.count(s, 1);
        if (s.inSendOrder) this.unlinkSent(s);
        const bytes = seqDiff(s.end, s.start);
        if (this.dupThreshHint !== undefined && seqLt(s.start, this.dupThreshHint.seq)) this.dupThreshBelow(1, bytes);
        update.newlySackedBytes += bytes;
        update.newlySacked.push(s);
      }
    }
    return update;
  }

  /**
   * RFC 6675 IsLost, for every record at once: a segment not SACKed is lost when DupThresh
   * SACKed segments, or more than (DupThresh - 1) * SMSS SACKed bytes, lie above it. Marks them;
   * returns the bytes newly marked. A segment retransmitted and still in the network is left
   * alone (RACK is what finds a lost retransmission). Only with RACK off (RACK marks by time).
   */
  markLostByDupThresh(mss: number): number {
    // Nothing SACKed, nothing above anything: the walk would mark nothing (the usual case on a clean path).
    if (this.sackedCount === 0) return 0;
    // "Above a record" is the scoreboard's count less what lies below it, so the walk goes up from
    // SND.UNA (or from where the last one stopped: below there nothing is left to judge) and stops
    // at the first record that is not lost: what lies above it has fewer SACKed records and bytes
    // above it still (Linux's tcp_mark_head_lost, from lost_skb_hint). It costs the records of
    // the holes being repaired, not the whole window, on each ACK that SACKs something.
    const hint = this.dupThreshHint;
    let i = hint === undefined ? this.head : this.firstEndingAfter(hint.seq);
    let sackedBelow = hint?.sacked ?? 0;
    let sackedBytesBelow = hint?.sackedBytes ?? 0;
    let newly = 0;
    for (; i < this.segments.length; i++) {
      const s = this.segments[i]!;
      const bytes = seqDiff(s.end, s.start);
      if (s.sacked) {
        sackedBelow++;
        sackedBytesBelow += bytes;
        continue;
      }
      if (!(this.sackedCount - sackedBelow >= DUP_THRESH || this.sackedTotal - sackedBytesBelow > (DUP_THRESH - 1) * mss)) break;
      if (!s.lost && !s.retransmitInFlight) newly += this.markLost(s);
    }
    const stop = this.segments[i];
    this.dupThreshHint = stop === undefined ? undefined : { seq: stop.start, sacked: sackedBelow, sackedBytes: sackedBytesBelow };
    return newly;
  }

  /** A SACKed record below the DupThresh hint came (1), went (-1), or shrank: its counts follow. */
  private dupThreshBelow(records: number, bytes: number): void {
    const hint = this.dupThreshHint!;
    hint.sacked += records;
    hint.sackedBytes += bytes;
  }

  /** After a retransmission timeout every record not SACKed is lost (RFC 6675 5.1, Linux tcp_enter_loss). */
  markAllLost(): void {
    for (let i = this.head; i < this.segments.length; i++) {
      const s = this.segments[i]!;
      if (s.sacked) continue;
      s.lost = true;
      s.retransmitInFlight = false;
    }
    this.recount();
  }

  /**
   * Forgets every loss mark (an undo: the losses were not real, Linux's tcp_undo_cwnd_reduction
   * with unmark_loss). A retransmission still in the network stays counted in `pipe`.
   */
  clearLost(): void {
    for (let i = this.head; i < this.segments.length; i++) this.segments[i]!.lost = false;
    this.recount();
  }

  /** Records with a retransmission in the network (Linux's retrans_out, in segments). */
  retransmitsInFlight(): number {
    return this.retransCount;
  }

  /** Marks one record lost (RACK: also a lost retransmission), and forgets a retransmission of it in flight. */
  markLost(segment: SentSegment): number {
    if (segment.sacked || (segment.lost && !segment.retransmitInFlight)) return 0;
    this.count(segment, -1);
    segment.lost = true;
    segment.retransmitInFlight = false;
    this.count(segment, 1);
    // Lost and waiting: out of RACK's order until it is sent again; NextSeg finds it from the hint.
    if (segment.inSendOrder) this.unlinkSent(segment);
    if (this.lostHint !== undefined && seqLt(segment.start, this.lostHint)) this.lostHint = segment.start;
    return seqDiff(segment.end, segment.start);
  }

  /**
   * RACK's loss detection walk (RFC 8985 6.2 step 5, Linux's tcp_rack_detect_loss): a record sent
   * before the most recently delivered one (sent at `xmitTime`, ending at `endSeq`) is lost once
   * `rtt` + `reorderWindow` ms have passed since it was sent. The walk goes through the records
   * RACK may judge (not SACKed, not lost and waiting) oldest send first, and ends at the first one
   * sent after `xmitTime`: with nothing lost it costs the records sent in that same instant.
   * Returns the bytes newly marked lost; `rackLostRetransmits` then says how many of them were
   * retransmissions, `rackWait` how long until the last one not due yet is (0: none).
   */
  rackMarkLost(xmitTime: number, endSeq: number, rtt: number, reorderWindow: number, now: number): number {
    let newly = 0;
    let wait = 0;
    let lostRetransmits = 0;
    let next: SentSegment | undefined;
    for (let s = this.oldest; s; s = next) {
      next = s.newerSent;
      if (s.sentAt > xmitTime) break;
      // sent in the same instant: the sequence numbers decide (RFC 8985 6.2, RACK_sent_after)
      if (s.sentAt === xmitTime && !seqLt(s.end, endSeq)) continue;
      const remaining = s.sentAt + rtt + reorderWindow - now;
      if (remaining <= 0) {
        if (s.retransmitInFlight) lostRetransmits++;
        newly += this.markLost(s);
      } else {
        wait = Math.max(wait, remaining);
      }
    }
    this.rackWait = wait;
    this.rackLostRetransmits = lostRetransmits;
    return newly;
  }

  /**
   * RFC 6675 SetPipe, the way Linux counts it (packets_out - sacked_out - lost_out + retrans_out):
   * bytes sent and neither SACKed nor judged lost, plus retransmissions still in the network (so
   * a lost segment retransmitted counts once, one retransmitted without being judged lost twice).
   */
  pipe(): number {
    return this.totalBytes - this.sackedTotal - this.lostTotal + this.retransTotal;
  }

  /** NextSeg rule 1 (RFC 6675 4): the lowest segment judged lost and not yet retransmitted since. */
  nextLost(): SentSegment | undefined {
    if (this.pendingCount === 0) return undefined;
    const from = this.lostHint === undefined ? this.head : this.firstEndingAfter(this.lostHint);
    for (let i = from; i < this.segments.length; i++) {
      const s = this.segments[i]!;
      if (s.lost && !s.sacked && !s.retransmitInFlight) {
        this.lostHint = s.start;
        return s;
      }
    }
    return undefined;
  }

  /** Bytes marked lost and not yet retransmitted. */
  lostBytes(): number {
    return this.pendingTotal;
  }

  clear(): void {
    this.segments = [];
    this.head = 0;
    this.freed.length = 0;
    this.oldest = this.newest = undefined;
    this.recount();
  }

  /**
   * Recomputes every count, the hint's rule and the send-time order by a walk and throws if
   * what is kept differs (Linux's tcp_verify_left_out): for tests and debugging, never on the
   * data path.
   */
  verify(): void {
    let total = 0, sacked = 0, sackedCount = 0, lost = 0, retrans = 0, retransCount = 0, pending = 0, pendingCount = 0;
    const eligible = new Set<SentSegment>();
    for (let i = this.head; i < this.segments.length; i++) {
      const s = this.segments[i]!;
      const bytes = seqDiff(s.end, s.start);
      if (i > this.head && seqLt(s.start, this.segments[i - 1]!.end)) throw new Error(`scoreboard: record ${s.start} overlaps the one before`);
      total += bytes;
      if (s.retransmitInFlight) retransCount++;
      if (s.sacked) {
        sacked += bytes;
        sackedCount++;
        continue;
      }
      if (s.lost) lost += bytes;
      if (s.retransmitInFlight) retrans += bytes;
      else if (s.lost) {
        pending += bytes;
        pendingCount++;
        if (this.lostHint !== undefined && seqLt(s.start, this.lostHint)) throw new Error(`scoreboard: lost record ${s.start} below the hint ${this.lostHint}`);
      }
      if (!(s.lost && !s.retransmitInFlight)) eligible.add(s);
    }
    const hint = this.dupThreshHint;
    if (hint !== undefined) {
      let below = 0;
      let bytesBelow = 0;
      for (let i = this.head; i < this.segments.length && seqLt(this.segments[i]!.start, hint.seq); i++) {
        const s = this.segments[i]!;
        if (s.sacked) {
          below++;
          bytesBelow += seqDiff(s.end, s.start);
        } else if (!s.lost && !s.retransmitInFlight) {
          throw new Error(`scoreboard: record ${s.start} below the DupThresh hint ${hint.seq} was never judged`);
        }
      }
      if (below !== hint.sacked || bytesBelow !== hint.sackedBytes) throw new Error(`scoreboard: DupThresh hint counts ${hint.sacked}/${hint.sackedBytes}, a walk says ${below}/${bytesBelow}`);
    }
    let high: number | undefined;
    for (let i = this.segments.length - 1; i >= this.head && high === undefined; i--) if (this.segments[i]!.sacked) high = this.segments[i]!.end;
    if (this.highestSackedEnd() !== high) throw new Error(`scoreboard: highest SACKed end is ${this.highestSackedEnd()}, a walk says ${high}`);
    const kept = { total: this.totalBytes, sacked: this.sackedTotal, sackedCount: this.sackedCount, lost: this.lostTotal, retrans: this.retransTotal, retransCount: this.retransCount, pending: this.pendingTotal, pendingCount: this.pendingCount };
    const walked = { total, sacked, sackedCount, lost, retrans, retransCount, pending, pendingCount };
    for (const k of Object.keys(walked) as (keyof typeof walked)[]) {
      if (kept[k] !== walked[k]) throw new Error(`scoreboard: ${k} is ${kept[k]}, a walk says ${walked[k]}`);
    }
    let n = 0;
    let before: SentSegment | undefined;
    for (let s = this.oldest; s; s = s.newerSent) {
      if (!eligible.has(s) || !s.inSendOrder) throw new Error(`scoreboard: record ${s.start} in the send-time order should not be`);
      if (s.olderSent !== before) throw new Error(`scoreboard: send-time links broken at ${s.start}`);
      if (before && s.sentAt < before.sentAt) throw new Error(`scoreboard: send-time order out of order at ${s.start}`);
      before = s;
      n++;
    }
    if (before !== this.newest) throw new Error('scoreboard: send-time order ends elsewhere');
    if (n !== eligible.size) throw new Error(`scoreboard: ${n} records in the send-time order, ${eligible.size} should be`);
  }

  /** Adds (`sign` 1) or takes away (-1) one record's share of the counts. */
  private count(s: SentSegment, sign: 1 | -1): void {
    const bytes = sign * seqDiff(s.end, s.start);
    this.totalBytes += bytes;
    if (s.retransmitInFlight) this.retransCount += sign;
    if (s.sacked) {
      this.sackedTotal += bytes;
      this.sackedCount += sign;
      if (sign > 0 && (this.sackedCount === 1 || seqGt(s.end, this.highSacked))) this.highSacked = s.end;
      return;
    }
    if (s.lost) this.lostTotal += bytes;
    if (s.retransmitInFlight) {
      this.retransTotal += bytes;
    } else if (s.lost) {
      this.pendingTotal += bytes;
      this.pendingCount += sign;
    }
  }

  /** Counts and send-time order from scratch (after the rare marks that touch every record). */
  private recount(): void {
    this.totalBytes = this.sackedTotal = this.sackedCount = this.lostTotal = 0;
    this.retransTotal = this.retransCount = this.pendingTotal = this.pendingCount = 0;
    this.lostHint = undefined;
    this.dupThreshHint = undefined;
    const order: SentSegment[] = [];
    for (let i = this.head; i < this.segments.length; i++) {
      const s = this.segments[i]!;
      this.count(s, 1);
      s.olderSent = s.newerSent = undefined;
      s.inSendOrder = false;
      if (!s.sacked && !(s.lost && !s.retransmitInFlight)) order.push(s);
    }
    this.oldest = this.newest = undefined;
    order.sort((a, b) => a.sentAt - b.sentAt); // stable: equal times keep sequence order
    for (const s of order) this.appendSent(s);
  }

  private appendSent(s: SentSegment): void {
    s.olderSent = this.newest;
    s.newerSent = undefined;
    s.inSendOrder = true;
    if (this.newest) this.newest.newerSent = s;
    else this.oldest = s;
    this.newest = s;
  }

  /** Puts `s` into the send-time order right after `at` (a part of `at`, sent at the same time). */
  private linkAfter(at: SentSegment, s: SentSegment): void {
    s.olderSent = at;
    s.newerSent = at.newerSent;
    s.inSendOrder = true;
    if (at.newerSent) at.newerSent.olderSent = s;
    else this.newest = s;
    at.newerSent = s;
  }

  private unlinkSent(s: SentSegment): void {
    if (s.olderSent) s.olderSent.newerSent = s.newerSent;
    else this.oldest = s.newerSent;
    if (s.newerSent) s.newerSent.olderSent = s.olderSent;
    else this.newest = s.olderSent;
    s.olderSent = s.newerSent = undefined;
    s.inSendOrder = false;
  }

  /** Index of the first record ending after `seq` (binary search: the records are in sequence order). */
  private firstEndingAfter(seq: number): number {
    let lo = this.head;
    let hi = this.segments.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqLe(this.segments[mid]!.end, seq)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private indexOf(segment: SentSegment): number {
    const i = this.firstEndingAfter(segment.start);
    return this.segments[i] === segment ? i : this.segments.indexOf(segment, this.head);
  }

  /** Drops the acknowledged records' slots once they are at least half the array (`always`: any). */
  private compact(always: boolean): void {
    if (this.head === 0) return;
    if (this.head === this.segments.length) {
      this.segments.length = 0;
      this.head = 0;
    } else if (always || (this.head >= 64 && this.head * 2 >= this.segments.length)) {
      this.segments.copyWithin(0, this.head);
      this.segments.length -= this.head;
      this.head = 0;
    }
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
