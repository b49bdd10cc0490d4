/**
 * The kernel's own loss recovery as a reference: linux-tcp-bulk-loss.pcap is Linux sending
 * 300000 bytes with 3% of its segments dropped before the receiver, captured at the sender (the
 * dropped originals are in it, then their retransmissions). Its data segments are replayed into
 * our scoreboard as sent, and the receiver's ACKs (35 with SACK blocks) as received: every
 * block must be valid, and the segments our RFC 6675 rule judges lost must be segments the
 * kernel retransmitted.
 */
import { describe, expect, it } from 'vitest';
import { Ipv4Packet } from '@tapstack/ipv4';
import { fixtureFrames } from '../../../test/support/fixtures.ts';
import { TcpPacket, TcpRepr } from '../src/header.ts';
import { SackScoreboard } from '../src/sack-scoreboard.ts';
import { seqAdd, seqDiff, seqGt } from '../src/seq.ts';

interface Segment {
  repr: TcpRepr;
  length: number;
  fromSender: boolean;
}

function replaySegments(): Segment[] {
  const frames = fixtureFrames('linux-tcp-bulk-loss.pcap');
  const parsed = frames.map((frame) => {
    const ip = Ipv4Packet.check(frame.subarray(14));
    if (!ip.ok) throw new Error('not IPv4');
    const tcp = new TcpPacket(ip.value.payload);
    return { repr: TcpRepr.parse(tcp), length: tcp.payload.length };
  });
  // the sender is the side that sends the data
  const senderPort = parsed.find((p) => p.length > 0)!.repr.sourcePort;
  return parsed.map((p) => ({ ...p, fromSender: p.repr.sourcePort === senderPort }));
}

describe("replaying the kernel's SACK recovery (linux-tcp-bulk-loss.pcap)", () => {
  it('every SACK block is valid against our scoreboard, and what RFC 6675 judges lost the kernel retransmitted', () => {
    const segments = replaySegments();
    const board = new SackScoreboard();
    let sndMax: number | undefined;
    let una: number | undefined;
    let maxWindow = 0;
    // the receiver's window scale, from its SYN (RFC 7323 2.2)
    const shift = segments.find((s) => !s.fromSender && s.repr.options.windowScale !== undefined)!.repr.options.windowScale!;
    const retransmittedByKernel = new Set<number>();
    const judgedLost = new Set<number>();
    let blocks = 0;
    let firstSeq: number | undefined;
    let discarded = 0;
    let dsacks = 0;
    for (const s of segments) {
      if (s.fromSender) {
        if (s.length === 0) continue;
        const end = seqAdd(s.repr.seq, s.length);
        if (sndMax === undefined) una = firstSeq = s.repr.seq;
        if (sndMax === undefined || seqGt(end, sndMax)) {
          board.sentNew(s.repr.seq, end, 0);
          sndMax = end;
        } else {
          retransmittedByKernel.add(s.repr.seq);
          const r = board.find(s.repr.seq);
          if (r) board.retransmitted(r, 0);
        }
        continue;
      }
      if (sndMax === undefined || una === undefined) continue; // the handshake
      maxWindow = Math.max(maxWindow, s.repr.window << shift);
      if (seqGt(s.repr.ack, una)) {
        una = s.repr.ack;
        board.acknowledge(una);
      }
      const sack = s.repr.options.sackBlocks ?? [];
      blocks += sack.length;
      const update = board.applySack(sack, s.repr.ack, una, sndMax, maxWindow);
      discarded += update.discarded;
      if (update.dsack) dsacks++;
      board.markLostByDupThresh(1448);
      for (const r of board.records) if (r.lost) judgedLost.add(r.start);
    }
    const rel = (x: number) => seqDiff(x, firstSeq!) + 1; // Wireshark's relative sequence numbers
    expect(blocks).toBeGreaterThanOrEqual(35);
    expect(discarded).toBe(0);
    expect(dsacks).toBe(0);
    expect([...retransmittedByKernel].map(rel)).toEqual([20273, 43441, 118737, 163625, 197409, 214785, 245713, 252953]);
    // Seven of the eight by DupThresh; the kernel sent 245713 again (frame 245) after one SACKed
    // segment above it, already in recovery: RACK with no reordering window, before three
    // segments above it were SACKed (frame 247), so our replay found it retransmitted already.
    expect([...judgedLost].map(rel)).toEqual([20273, 43441, 118737, 163625, 197409, 214785, 252953]);
  });
});
