/**
 * The SACK scoreboard with literal sequence numbers: which blocks count (RFC 2018, Linux's
 * tcp_is_sackblock_valid), D-SACK detection (RFC 2883 section 4), IsLost with DupThresh 3 and
 * pipe (RFC 6675), reneging, and the bound on its size.
 */
import { describe, expect, it } from 'vitest';
import { SackScoreboard } from '../src/sack-scoreboard.ts';

/** Ten 100-byte segments 1000..2000 sent at t = 0..9. */
function tenSegments(): SackScoreboard {
  const s = new SackScoreboard();
  for (let i = 0; i < 10; i++) s.sentNew(1000 + 100 * i, 1100 + 100 * i, i);
  return s;
}
const WINDOW = 65535;

describe('SackScoreboard', () => {
  it('marks whole segments covered by a block, counts the new bytes, and reports the newest delivered by send time', () => {
    const s = tenSegments();
    const u = s.applySack([{ left: 1200, right: 1400 }], 1000, 1000, 2000, WINDOW);
    expect(u).toMatchObject({ dsack: false, newlySackedBytes: 200, discarded: 0 });
    expect(u.newlySacked.map((r) => r.start)).toEqual([1200, 1300]);
    expect(s.records.filter((r) => r.sacked).map((r) => r.start)).toEqual([1200, 1300]);
    // the same block again adds nothing; a block covering part of a segment marks nothing
    expect(s.applySack([{ left: 1200, right: 1400 }, { left: 1450, right: 1600 }], 1000, 1000, 2000, WINDOW).newlySackedBytes).toBe(100);
    expect(s.records.filter((r) => r.sacked).map((r) => r.start)).toEqual([1200, 1300, 1500]);
    expect(s.sackedBytes).toBe(300);
    expect(s.sackedSegments).toBe(3);
    expect(s.highestSackedEnd()).toBe(1600);
  });

  it("cuts a super-frame's record between segments where a block covers part of it, edges rounded inwards", () => {
    // a super-frame of six 100-byte segments 1000..1600: one record for five, the last alone
    const s = new SackScoreboard();
    s.sentNew(1000, 1500, 0, 100);
    s.sentNew(1500, 1600, 0);
    expect(s.records.map((r) => [r.start, r.end])).toEqual([[1000, 1500], [1500, 1600]]);
    // 1150..1380 covers segments 1200..1300 whole: the record is cut at 1200 and 1300, only that one marked
    const u = s.applySack([{ left: 1150, right: 1380 }], 1000, 1000, 1600, WINDOW);
    expect(u.newlySackedBytes).toBe(100);
    expect(s.records.map((r) => [r.start, r.end, r.sacked])).toEqual([
      [1000, 1200, false],
      [1200, 1300, true],
      [1300, 1500, false],
      [1500, 1600, false],
    ]);
    // a block inside one segment cuts nothing; a block to the end takes the rest whole
    expect(s.applySack([{ left: 1310, right: 1390 }], 1000, 1000, 1600, WINDOW).newlySackedBytes).toBe(0);
    expect(s.records.length).toBe(4);
    expect(s.applySack([{ left: 1300, right: 1600 }], 1000, 1000, 1600, WINDOW).newlySackedBytes).toBe(300);
    expect(s.records.map((r) => [r.start, r.end, r.sacked])).toEqual([
      [1000, 1200, false],
      [1200, 1300, true],
      [1300, 1500, true],
      [1500, 1600, true],
    ]);
    // DupThresh counts the bytes above: 1000..1200 is lost, and pipe is what is left
    expect(s.markLostByDupThresh(100)).toBe(200);
    expect(s.pipe()).toBe(0);
  });

  it('cuts no further than maxRecords, however a peer places its blocks', () => {
    const s = new SackScoreboard(3);
    s.sentNew(0, 4000, 0, 100);
    for (let left = 50; left < 4000; left += 200) s.applySack([{ left, right: left + 150 }], 0, 0, 4000, WINDOW);
    expect(s.records.length).toBeLessThanOrEqual(3);
  });

  it('throws away blocks below SND.UNA, past SND.MAX, empty or inverted, or bigger than the window', () => {
    const s = tenSegments();
    const bad = [
      { left: 1900, right: 2100 }, // past SND.MAX 2000
      { left: 1500, right: 1500 }, // empty
      { left: 1600, right: 1500 }, // inverted
    ];
    s.acknowledge(1200);
    // the first block is good; the second lies below SND.UNA 1200 (and is not first, so no D-SACK)
    const u = s.applySack([{ left: 1300, right: 1400 }, { left: 1100, right: 1200 }, ...bad], 1200, 1200, 2000, WINDOW);
    expect(u.discarded).toBe(4);
    expect(s.sackedBytes).toBe(100);
    expect(s.applySack([{ left: 1300, right: 1900 }], 1000, 1000, 2000, 500).discarded).toBe(1); // 600 bytes > window 500
    // sequence numbers that wrap: una 0xffffff00, a block across 2^32
    const w = new SackScoreboard();
    w.sentNew(0xffffff00, 0xffffff80, 0);
    w.sentNew(0xffffff80, 0x00000000, 1);
    w.sentNew(0x00000000, 0x00000080, 2);
    expect(w.applySack([{ left: 0xffffff80, right: 0x00000080 }], 0xffffff00, 0xffffff00, 0x80, WINDOW).newlySackedBytes).toBe(256);
  });

  it('D-SACK (RFC 2883 4): a first block below the cumulative ACK, or inside the second block, marks nothing', () => {
    const s = tenSegments();
    s.acknowledge(1300);
    // below the ACK: the peer got 1100-1200 twice
    const below = s.applySack([{ left: 1100, right: 1200 }], 1300, 1300, 2000, WINDOW);
    expect(below).toMatchObject({ dsack: true, dsackBlock: { left: 1100, right: 1200 }, newlySackedBytes: 0 });
    // inside the second block: 1500-1600 twice, and 1400-1700 is held out of order
    const inside = s.applySack([{ left: 1500, right: 1600 }, { left: 1400, right: 1700 }], 1300, 1300, 2000, WINDOW);
    expect(inside.dsack).toBe(true);
    expect(inside.newlySackedBytes).toBe(300);
    // an ordinary first block is not a D-SACK
    expect(s.applySack([{ left: 1800, right: 1900 }, { left: 1400, right: 1700 }], 1300, 1300, 2000, WINDOW).dsack).toBe(false);
    // a "D-SACK" for data far older than any window is discarded
    expect(s.applySack([{ left: 1, right: 100 }], 1300, 1300, 2000, 1000)).toMatchObject({ dsack: false, discarded: 1 });
  });

  it('IsLost with DupThresh 3 (RFC 6675 4): three SACKed segments above, or more than 2 * SMSS SACKed bytes', () => {
    const s = tenSegments();
    s.applySack([{ left: 1100, right: 1300 }], 1000, 1000, 2000, WINDOW);
    expect(s.markLostByDupThresh(100)).toBe(0); // two above 1000: not yet
    s.applySack([{ left: 1100, right: 1400 }], 1000, 1000, 2000, WINDOW);
    expect(s.markLostByDupThresh(100)).toBe(100); // three above 1000
    expect(s.nextLost()?.start).toBe(1000);
    // with a larger SMSS, bytes decide: 300 > 2 * 140 as well
    const t = tenSegments();
    t.applySack([{ left: 1300, right: 1600 }], 1000, 1000, 2000, WINDOW);
    expect(t.markLostByDupThresh(140)).toBe(300); // 1000, 1100, 1200
    expect(t.records.filter((r) => r.lost).map((r) => r.start)).toEqual([1000, 1100, 1200]);
  });

  it('pipe (RFC 6675 SetPipe, as Linux counts it): not SACKed and not lost, plus retransmissions in flight', () => {
    const s = tenSegments();
    expect(s.pipe()).toBe(1000);
    s.applySack([{ left: 1100, right: 1400 }], 1000, 1000, 2000, WINDOW);
    s.markLostByDupThresh(100);
    expect(s.pipe()).toBe(1000 - 300 - 100);
    s.retransmitted(s.nextLost()!, 20);
    expect(s.pipe()).toBe(1000 - 300 - 100 + 100); // lost and retransmitted: counted once
    s.retransmitted(s.records.at(-1)!, 21); // a probe of a segment not judged lost: counted twice
    expect(s.pipe()).toBe(1000 - 300 - 100 + 100 + 100);
    expect(s.nextLost()).toBeUndefined();
    // a timeout: everything not SACKed is lost, nothing is in the network
    s.markAllLost();
    expect(s.pipe()).toBe(0);
    expect(s.lostBytes()).toBe(700);
  });

  it('acknowledge drops and trims records; a SACKed record left at SND.UNA is reneging', () => {
    const s = tenSegments();
    s.applySack([{ left: 1200, right: 1300 }], 1000, 1000, 2000, WINDOW);
    expect(s.acknowledge(1150).map((r) => r.start)).toEqual([1000]);
    expect(s.records[0]).toMatchObject({ start: 1150, end: 1200 });
    s.acknowledge(1200);
    expect(s.headIsSacked()).toBe(true);
    s.clearSacks();
    expect(s.sackedBytes).toBe(0);
    expect(s.headIsSacked()).toBe(false);
  });

  it('stays bounded: past maxRecords new data joins the last record', () => {
    const s = new SackScoreboard(4);
    for (let i = 0; i < 100; i++) s.sentNew(i * 10, i * 10 + 10, i);
    expect(s.records.length).toBe(4);
    expect(s.records[3]).toMatchObject({ start: 30, end: 1000 });
  });
});
