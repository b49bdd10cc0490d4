/**
 * The SACK blocks our ACKs carry (RFC 2018 4): the block holding the segment that triggered the
 * ACK first, then the others highest first, as many as fit. The pure choice first, then a
 * connection with more holes than an ACK has room for.
 */
import { describe, expect, it } from 'vitest';
import { TcpFlag } from '../src/header.ts';
import { sackBlocksToSend } from '../src/sack-blocks.ts';
import { established, ISS, PEER_ISS } from './harness.ts';

const { ACK } = TcpFlag;
const b = (left: number, right: number) => ({ left, right });
const FIVE = [b(200, 300), b(400, 500), b(600, 700), b(800, 900), b(1000, 1100)];

describe('sackBlocksToSend', () => {
  it('the newest arrival at the top: the highest blocks, highest first (as before)', () => {
    expect(sackBlocksToSend(FIVE, 1000, 3)).toEqual([b(1000, 1100), b(800, 900), b(600, 700)]);
    expect(sackBlocksToSend(FIVE, undefined, 4)).toEqual([b(1000, 1100), b(800, 900), b(600, 700), b(400, 500)]);
  });

  it('an arrival below the highest blocks leads, even when the highest-first choice would leave it out', () => {
    expect(sackBlocksToSend(FIVE, 250, 3)).toEqual([b(200, 300), b(1000, 1100), b(800, 900)]);
    expect(sackBlocksToSend(FIVE, 650, 4)).toEqual([b(600, 700), b(1000, 1100), b(800, 900), b(400, 500)]);
  });

  it('a newest sequence number no block holds (since delivered) changes nothing; fewer blocks than room', () => {
    expect(sackBlocksToSend(FIVE, 50, 3)).toEqual([b(1000, 1100), b(800, 900), b(600, 700)]);
    expect(sackBlocksToSend([b(200, 300), b(400, 500)], 250, 4)).toEqual([b(200, 300), b(400, 500)]);
  });

  it('across the wrap of the sequence space', () => {
    const wrapped = [b(0xffffff00, 0xffffff80), b(0x10, 0x20), b(0x40, 0x50), b(0x60, 0x70)];
    expect(sackBlocksToSend(wrapped, 0xffffff10, 3)).toEqual([b(0xffffff00, 0xffffff80), b(0x60, 0x70), b(0x40, 0x50)]);
  });
});

describe('a receiving connection with five holes', () => {
  it('reports the block of a segment that lands below the four highest first (RFC 2018 4), then the highest', () => {
    const h = established();
    for (const at of [201, 401, 601, 801, 1001]) h.peer(ACK, PEER_ISS + at, ISS + 1, new Uint8Array(100));
    const before = h.take().at(-1)!;
    expect(before.repr.ack).toBe(PEER_ISS + 1);
    // no timestamps: room for four blocks, the highest four
    expect(before.repr.options.sackBlocks).toEqual([1001, 801, 601, 401].map((at) => b(PEER_ISS + at, PEER_ISS + at + 100)));
    // 101-150 arrives: highest first alone would leave its block out of the ACK it triggers
    h.peer(ACK, PEER_ISS + 101, ISS + 1, new Uint8Array(50));
    const after = h.take().at(-1)!;
    expect(after.repr.ack).toBe(PEER_ISS + 1);
    expect(after.repr.options.sackBlocks).toEqual([b(PEER_ISS + 101, PEER_ISS + 151), ...[1001, 801, 601].map((at) => b(PEER_ISS + at, PEER_ISS + at + 100))]);
  });
});
