import { describe, expect, it } from 'vitest';
import { NO_OPTIONS, TcpFlag, type TcpRepr } from '../src/header.ts';
import { resetFor } from '../src/reset.ts';

const segment = (flags: number, seq: number, ack = 0): TcpRepr => ({
  sourcePort: 40000,
  destinationPort: 81,
  seq,
  ack,
  flags,
  window: 64240,
  urgentPointer: 0,
  options: NO_OPTIONS,
});

describe('the RST for a segment nobody wants (RFC 9293 3.10.7.1)', () => {
  it('a SYN gets RST+ACK, seq 0, ack ISN+1, window 0, no options (as linux-tcp-rst-closed-port.pcap)', () => {
    expect(resetFor(segment(TcpFlag.SYN, 0xfffffffe), 0)).toEqual({
      sourcePort: 81,
      destinationPort: 40000,
      seq: 0,
      ack: 0xffffffff,
      flags: TcpFlag.RST | TcpFlag.ACK,
      window: 0,
      urgentPointer: 0,
      options: NO_OPTIONS,
    });
  });

  it('data with FIN and no ACK: ack covers the data and the FIN, wrapping past 2^32', () => {
    expect(resetFor(segment(TcpFlag.FIN, 0xfffffff0), 0x20)?.ack).toBe(0x11);
  });

  it('a segment with ACK gets a bare RST whose seq is the ACK it carried', () => {
    const r = resetFor(segment(TcpFlag.ACK | TcpFlag.PSH, 1000, 0xdeadbeef), 5);
    expect(r?.flags).toBe(TcpFlag.RST);
    expect(r?.seq).toBe(0xdeadbeef);
    expect(r?.ack).toBe(0);
  });

  it('a RST is never answered', () => {
    expect(resetFor(segment(TcpFlag.RST, 1), 0)).toBeUndefined();
    expect(resetFor(segment(TcpFlag.RST | TcpFlag.ACK, 1, 2), 0)).toBeUndefined();
  });
});
