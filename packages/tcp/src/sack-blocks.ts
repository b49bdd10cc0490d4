/**
 * Which SACK blocks an ACK of ours carries, and in what order (RFC 2018 4). The first block
 * must be the one holding the segment that triggered the ACK: with more holes than an ACK has
 * room for (three blocks beside timestamps, four without), the sender still hears of every new
 * arrival, even one that lands below the highest blocks (a retransmission filling part of an
 * older hole). The other blocks follow highest first: data mostly arrives in sequence order, so
 * those are the ones the last ACKs reported, as the RFC asks the rest to repeat.
 */
import type { SackBlock } from './header.ts';
import { seqLe, seqLt } from './seq.ts';

/**
 * `ranges`: the out-of-order queue's blocks in sequence order (ReceiveBuffer.outOfOrderRanges);
 * `newest`: the sequence number of the latest out-of-order segment taken, if any; `room`: how
 * many blocks fit.
 */
export function sackBlocksToSend(ranges: readonly SackBlock[], newest: number | undefined, room: number): SackBlock[] {
  const highestFirst = ranges.slice(-room).reverse();
  if (newest === undefined) return highestFirst;
  const holding = ranges.findIndex((r) => seqLe(r.left, newest) && seqLt(newest, r.right));
  if (holding < 0 || holding === ranges.length - 1) return highestFirst;
  const first = ranges[holding]!;
  const rest: SackBlock[] = [];
  for (let i = ranges.length - 1; i >= 0 && rest.length < room - 1; i--) if (i !== holding) rest.push(ranges[i]!);
  return [first, ...rest];
}
