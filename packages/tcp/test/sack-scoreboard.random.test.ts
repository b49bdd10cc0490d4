/**
 * The scoreboard's kept counts, hint and send-time order against a naive model that walks every
 * record for every question (what the scoreboard did before it kept counts): thousands of random
 * sequences of sends, SACK blocks (valid, invalid, D-SACK, cutting super-frames), cumulative
 * ACKs, loss marks, retransmissions, splits, timeouts, undos, reneging and RACK walks, with
 * sequence numbers that wrap. After every operation `verify` recomputes the counts by a walk
 * (as Linux's tcp_verify_left_out), and every answer must equal the model's.
 */
import { describe, expect, it } from 'vitest';
import type { SackBlock } from '../src/header.ts';
import { DUP_THRESH, SackScoreboard, isValidBlock, type SentSegment } from '../src/sack-scoreboard.ts';
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from '../src/seq.ts';
import { established, ISS } from './harness.ts';

interface ModelRecord {
  start: number;
  end: number;
  sentAt: number;
  everRetransmitted: boolean;
  retransmitInFlight: boolean;
  sacked: boolean;
  lost: boolean;
  segmentSize?: number | undefined;
}

/** Every question answered by a walk over all records, in sequence order. */
class NaiveScoreboard {
  records: ModelRecord[] = [];
  constructor(readonly maxRecords: number) {}

  sentNew(start: number, end: number, now: number, segmentSize?: number): void {
    const last = this.records.at(-1);
    if (last && seqGt(end, last.end) && seqLt(start, last.end)) start = last.end;
    if (last && seqLe(end, last.end)) return;
    if (last && this.records.length >= this.maxRecords && last.end === start && !last.sacked) {
      last.end = end;
      last.sentAt = now;
      last.segmentSize = undefined;
      return;
    }
    const r: ModelRecord = { start, end, sentAt: now, everRetransmitted: false, retransmitInFlight: false, sacked: false, lost: false };
    if (segmentSize !== undefined && segmentSize > 0 && seqDiff(end, start) > segmentSize) r.segmentSize = segmentSize;
    this.records.push(r);
  }

  retransmitted(r: ModelRecord, now: number): void {
    r.sentAt = now;
    r.everRetransmitted = true;
    r.retransmitInFlight = true;
  }

  split(r: ModelRecord, at: number): void {
    const i = this.records.indexOf(r);
    const tail = { ...r, start: at };
    r.end = at;
    this.records.splice(i + 1, 0, tail);
  }

  acknowledge(una: number): number[] {
    let n = 0;
    while (n < this.records.length && seqLe(this.records[n]!.end, una)) n++;
    const gone = this.records.splice(0, n).map((r) => r.start);
    const head = this.records[0];
    if (head && seqLt(head.start, una)) head.start = una;
    return gone;
  }

  clearSacks(): void {
    for (const r of this.records) r.sacked = false;
  }

  applySack(blocks: readonly SackBlock[], ack: number, una: number, sndMax: number, maxWindow: number): { dsack: boolean; newly: number; discarded: number; starts: number[] } {
    const out = { dsack: false, newly: 0, discarded: 0, starts: [] as number[] };
    if (blocks.length === 0) return out;
    const first = blocks[0]!;
    const second = blocks[1];
    if (seqGt(first.right, first.left) && (seqLt(first.left, ack) || (second && seqGe(first.left, second.left) && seqLe(first.right, second.right)))) {
      if (seqLe(first.right, sndMax) && seqGe(first.left, seqAdd(una, -Math.max(maxWindow, 1))) && seqDiff(first.right, first.left) <= Math.max(maxWindow, 1)) out.dsack = true;
      else out.discarded++;
    }
    for (let i = out.dsack || out.discarded > 0 ? 1 : 0; i < blocks.length; i++) {
      const b = blocks[i]!;
      if (!isValidBlock(b, una, sndMax, maxWindow)) {
        out.discarded++;
        continue;
      }
      for (let j = 0; j < this.records.length; j++) {
        let r = this.records[j]!;
        if (seqLe(r.end, b.left)) continue;
        if (seqGe(r.start, b.right)) break;
        if (r.sacked) continue;
        if (seqLt(r.start, b.left) || seqGt(r.end, b.right)) {
          const size = r.segmentSize;
          if (size === undefined) continue;
          const length = seqDiff(r.end, r.start);
          const from = Math.max(0, Math.ceil(seqDiff(b.left, r.start) / size) * size);
          const to = Math.min(length, Math.floor(seqDiff(b.right, r.start) / size) * size);
          if (to - from < size) continue;
          if (this.records.length + (from > 0 ? 1 : 0) + (to < length ? 1 : 0) > this.maxRecords) continue;
          const piece = (a: number, z: number): ModelRecord => ({ ...r, start: seqAdd(r.start, a), end: seqAdd(r.start, z), segmentSize: z - a <= size ? undefined : size });
          const parts = [];
          if (from > 0) parts.push(piece(0, from));
          const covered = parts.length;
          parts.push(piece(from, to));
          if (to < length) parts.push(piece(to, length));
          this.records.splice(j, 1, ...parts);
          j += covered;
          r = this.records[j]!;
        }
        r.sacked = true;
        r.lost = false;
        r.retransmitInFlight = false;
        out.newly += seqDiff(r.end, r.start);
        out.starts.push(r.start);
      }
    }
    return out;
  }

  markLostByDupThresh(mss: number): number {
    let above = 0;
    let bytesAbove = 0;
    let newly = 0;
    for (let i = this.records.length - 1; i >= 0; i--) {
      const r = this.records[i]!;
      if (r.sacked) {
        above++;
        bytesAbove += seqDiff(r.end, r.start);
        continue;
      }
      if (r.lost || r.retransmitInFlight) continue;
      if (above >= DUP_THRESH || bytesAbove > (DUP_THRESH - 1) * mss) {
        r.lost = true;
        newly += seqDiff(r.end, r.start);
      }
    }
    return newly;
  }

  markAllLost(): void {
    for (const r of this.records) {
      if (r.sacked) continue;
      r.lost = true;
      r.retransmitInFlight = false;
    }
  }

  clearLost(): void {
    for (const r of this.records) r.lost = false;
  }

  markLost(r: ModelRecord): number {
    if (r.sacked || (r.lost && !r.retransmitInFlight)) return 0;
    r.lost = true;
    r.retransmitInFlight = false;
    return seqDiff(r.end, r.start);
  }

  /** RACK's walk as it was: every record in sequence order. */
  rackMarkLost(xmitTime: number, endSeq: number, rtt: number, reo: number, now: number): { newly: number; wait: number; lostRetransmits: number } {
    let newly = 0;
    let wait = 0;
    let lostRetransmits = 0;
    for (const r of this.records) {
      if (r.sacked || (r.lost && !r.retransmitInFlight)) continue;
      const sentBefore = r.sentAt < xmitTime || (r.sentAt === xmitTime && seqLt(r.end, endSeq));
      if (!sentBefore) continue;
      const remaining = r.sentAt + rtt + reo - now;
      if (remaining <= 0) {
        if (r.retransmitInFlight) lostRetransmits++;
        newly += this.markLost(r);
      } else {
        wait = Math.max(wait, remaining);
      }
    }
    return { newly, wait, lostRetransmits };
  }

  pipe(): number {
    let pipe = 0;
    for (const r of this.records) {
      if (r.sacked) continue;
      const bytes = seqDiff(r.end, r.start);
      if (!r.lost) pipe += bytes;
      if (r.retransmitInFlight) pipe += bytes;
    }
    return pipe;
  }

  nextLost(): ModelRecord | undefined {
    return this.records.find((r) => r.lost && !r.sacked && !r.retransmitInFlight);
  }

  lostBytes(): number {
    let n = 0;
    for (const r of this.records) if (r.lost && !r.sacked && !r.retransmitInFlight) n += seqDiff(r.end, r.start);
    return n;
  }

  sacked(): { bytes: number; count: number } {
    let bytes = 0;
    let count = 0;
    for (const r of this.records) if (r.sacked) (bytes += seqDiff(r.end, r.start)), count++;
    return { bytes, count };
  }
}

/** A small seeded generator (mulberry32), so that a failure names its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MSS = 100;

/** expect(...).toEqual, but only once a cheap comparison has found a difference (millions of checks). */
function same(actual: unknown, expected: unknown, context: string): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) expect(actual, context).toEqual(expected);
}

function snapshot(records: readonly (SentSegment | ModelRecord)[]): unknown[] {
  return records.map((r) => [r.start, r.end, r.sentAt, r.everRetransmitted, r.retransmitInFlight, r.sacked, r.lost, r.segmentSize]);
}

/** One random sequence of `steps` operations on both; throws (with the step) where they differ. */
function run(seed: number, steps: number): void {
  const rnd = random(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const maxRecords = rnd() < 0.3 ? 4 + int(12) : 4096;
  const board = new SackScoreboard(maxRecords);
  const model = new NaiveScoreboard(maxRecords);
  const iss = rnd() < 0.5 ? 0xffffffff - int(3000) : int(0xffffffff);
  let una = iss;
  let sndMax = iss;
  let now = 0;
  const window = rnd() < 0.2 ? 400 : 65535;
  const pick = (): [SentSegment, ModelRecord] | undefined => {
    const recs = board.records;
    if (recs.length === 0) return undefined;
    const i = int(recs.length);
    return [recs[i]!, model.records[i]!];
  };
  const at = (from: number, span: number): number => seqAdd(from, rnd() < 0.7 ? int(Math.max(1, Math.floor(span / MSS)) + 1) * MSS : int(span + 1));
  for (let step = 0; step < steps; step++) {
    if (rnd() < 0.5) now += int(3); // equal send times happen often, as on a millisecond clock
    const op = int(100);
    let what = '';
    if (op < 25) {
      const segments = 1 + int(rnd() < 0.3 ? 6 : 1);
      const length = segments * MSS - (rnd() < 0.1 ? int(MSS) : 0);
      const size = segments > 1 ? MSS : undefined;
      what = `sentNew ${length}`;
      board.sentNew(sndMax, seqAdd(sndMax, length), now, size);
      model.sentNew(sndMax, seqAdd(sndMax, length), now, size);
      sndMax = seqAdd(sndMax, length);
    } else if (op < 45) {
      const span = seqDiff(sndMax, una);
      const blocks: SackBlock[] = [];
      for (let n = 1 + int(4); n > 0; n--) {
        const kind = int(10);
        if (kind < 7 && span > 0) {
          const left = at(una, span);
          blocks.push({ left, right: seqAdd(left, Math.min(seqDiff(sndMax, left), 1 + int(4 * MSS))) });
        } else if (kind < 8) {
          const left = seqAdd(una, -int(5 * MSS) - 1); // below SND.UNA (a D-SACK when first)
          blocks.push({ left, right: seqAdd(left, int(3 * MSS)) });
        } else {
          const left = seqAdd(una, int(span + 500) - 200); // anything: past SND.MAX, inverted, empty
          blocks.push({ left, right: seqAdd(left, int(600) - 100) });
        }
      }
      what = `applySack ${JSON.stringify(blocks)}`;
      const u = board.applySack(blocks, una, una, sndMax, window);
      const m = model.applySack(blocks, una, una, sndMax, window);
      same([u.dsack, u.newlySackedBytes, u.discarded, u.newlySacked.map((r) => r.start)], [m.dsack, m.newly, m.discarded, m.starts], what);
    } else if (op < 57) {
      const span = seqDiff(sndMax, una);
      if (span > 0) {
        const to = seqAdd(una, 1 + int(Math.min(span, 6 * MSS)));
        const target = rnd() < 0.7 ? (board.find(to)?.end ?? to) : to;
        what = `acknowledge ${seqDiff(target, una)}`;
        una = target;
        same(board.acknowledge(una).map((r) => r.start), model.acknowledge(una), what);
      }
    } else if (op < 65) {
      const p = pick();
      if (p) {
        what = `markLost ${p[0].start}`;
        same(board.markLost(p[0]), model.markLost(p[1]), what);
      }
    } else if (op < 77) {
      const lost = rnd() < 0.7;
      const b = lost ? board.nextLost() : pick()?.[0];
      const m = lost ? model.nextLost() : model.records[board.records.indexOf(b!)];
      same(b?.start, m?.start, 'retransmit');
      if (b && m) {
        what = `retransmitted ${b.start}`;
        if (seqDiff(b.end, b.start) > 1 && rnd() < 0.2) {
          const cut = seqAdd(b.start, 1 + int(seqDiff(b.end, b.start) - 1));
          board.split(b, cut);
          model.split(m, cut);
        }
        board.retransmitted(b, now);
        model.retransmitted(m, now);
      }
    } else if (op < 87) {
      const span = seqDiff(sndMax, una);
      const xmitRecord = pick();
      const xmitTime = xmitRecord && rnd() < 0.8 ? xmitRecord[0].sentAt : now - int(5);
      const endSeq = seqAdd(una, int(span + 1));
      const rtt = int(4);
      const reo = rnd() < 0.5 ? 0 : rnd() * 2;
      what = `rack ${xmitTime} ${endSeq}`;
      const newly = board.rackMarkLost(xmitTime, endSeq, rtt, reo, now);
      const m = model.rackMarkLost(xmitTime, endSeq, rtt, reo, now);
      same([newly, board.rackWait, board.rackLostRetransmits], [m.newly, m.wait, m.lostRetransmits], what);
    } else if (op < 93) {
      what = 'markLostByDupThresh';
      same(board.markLostByDupThresh(MSS), model.markLostByDupThresh(MSS), what);
    } else if (op < 95) {
      what = 'markAllLost';
      board.markAllLost();
      model.markAllLost();
    } else if (op < 97) {
      what = 'clearLost';
      board.clearLost();
      model.clearLost();
    } else if (op < 98) {
      what = 'clearSacks';
      board.clearSacks();
      model.clearSacks();
    } else {
      const p = pick();
      if (p && seqDiff(p[0].end, p[0].start) > 1) {
        const cut = seqAdd(p[0].start, 1 + int(seqDiff(p[0].end, p[0].start) - 1));
        what = `split ${p[0].start} at ${cut}`;
        board.split(p[0], cut);
        model.split(p[1], cut);
      }
    }
    const context = `seed ${seed} step ${step} after ${what}`;
    try {
      board.verify();
    } catch (e) {
      throw new Error(`${context}: ${(e as Error).message}`);
    }
    // The hint is only a starting point: ask only now and then, so that it also goes stale.
    if (rnd() < 0.5) same(board.nextLost()?.start, model.nextLost()?.start, context);
    const sacked = model.sacked();
    same(
      [board.pipe(), board.lostBytes(), board.sackedBytes, board.sackedSegments, board.retransmitsInFlight(), board.size],
      [model.pipe(), model.lostBytes(), sacked.bytes, sacked.count, model.records.filter((r) => r.retransmitInFlight).length, model.records.length],
      context,
    );
    same(
      [board.first()?.start, board.lastNotSacked()?.start, board.headIsSacked(), board.highestSackedEnd()],
      [model.records[0]?.start, model.records.findLast((r) => !r.sacked)?.start, model.records[0]?.sacked === true, model.records.findLast((r) => r.sacked)?.end],
      context,
    );
    if (rnd() < 0.1 || step === steps - 1) same(snapshot(board.records), snapshot(model.records), context);
  }
}

describe('SackScoreboard against a naive model', () => {
  it('2000 random sequences of 200 operations: the kept counts, the hint and the send-time order give the walks’ answers', () => {
    for (let seed = 1; seed <= 2000; seed++) run(seed, 200);
  });

  it('a long one: 20,000 operations on one scoreboard', () => {
    run(424242, 20_000);
  });
});

describe('the scoreboard inside a connection', () => {
  it('a 200 KB transfer through 3% random loss: after every ACK a walk agrees with the kept counts, and everything arrives', () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) {
      const rnd = random(seed);
      const h = established();
      const board = (h.connection as unknown as { scoreboard: SackScoreboard }).scoreboard;
      const total = 200_000; // within the send buffer
      h.connection.write(new Uint8Array(total));
      // The receiver: what arrived above its cumulative ACK, as ranges [left, right).
      let rcvNxt = ISS + 1;
      let held: [number, number][] = [];
      for (let round = 0; round < 20_000 && rcvNxt < ISS + 1 + total; round++) {
        for (const s of h.take()) {
          if (s.payload.length === 0 || rnd() < 0.03) continue;
          const left = s.repr.seq;
          const right = left + s.payload.length;
          if (right <= rcvNxt) {
            h.ack(rcvNxt, [{ left, right }]); // a duplicate: D-SACK
          } else {
            held.push([Math.max(left, rcvNxt), right]);
            held.sort((a, b) => a[0] - b[0]);
            const merged: [number, number][] = [];
            for (const r of held) {
              const last = merged.at(-1);
              if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
              else merged.push([r[0], r[1]]);
            }
            if (merged[0]![0] <= rcvNxt) rcvNxt = merged.shift()![1];
            held = merged;
            // the block with the newest segment first (RFC 2018 4), then the others
            const blocks = held.map(([l, r]) => ({ left: l, right: r })).sort((a, b) => Number(b.left <= left && left < b.right) - Number(a.left <= left && left < a.right));
            h.ack(rcvNxt, blocks.slice(0, 3));
          }
          board.verify();
        }
        h.clock.advance(1 + Math.floor(rnd() * 3));
        board.verify();
      }
      expect(rcvNxt, `seed ${seed}`).toBe(ISS + 1 + total);
      expect(h.counter('RetransSegs'), `seed ${seed}`).toBeGreaterThan(0);
    }
  });
});
