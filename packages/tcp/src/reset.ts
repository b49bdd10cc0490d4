/**
 * The RST a segment gets when no connection wants it (RFC 9293 3.10.7.1, "If the state is
 * CLOSED"): a segment to a port nobody listens on, or one no connection or listener accepts.
 *
 * - A RST is never answered (that would loop).
 * - A segment carrying ACK gets `<SEQ=SEG.ACK><CTL=RST>`: the peer finds the RST inside its
 *   window, because SEG.ACK is what it expects us to send next.
 * - Otherwise `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`: the peer (typically in SYN-SENT)
 *   accepts it because it acknowledges exactly its segment. SEG.LEN counts SYN and FIN.
 *
 * The Linux kernel answers the same way (tcp_v4_send_reset); linux-tcp-rst-closed-port.pcap is
 * its answer to a SYN: RST+ACK, seq 0, ack ISN+1, window 0, no options.
 */
import { NO_OPTIONS, TcpFlag, segmentLength, type TcpRepr } from './header.ts';
import { seqAdd } from './seq.ts';

export function resetFor(segment: TcpRepr, payloadLength: number): TcpRepr | undefined {
  if (segment.flags & TcpFlag.RST) return undefined;
  const common = {
    sourcePort: segment.destinationPort,
    destinationPort: segment.sourcePort,
    window: 0,
    urgentPointer: 0,
    options: NO_OPTIONS,
  };
  if (segment.flags & TcpFlag.ACK) {
    return { ...common, seq: segment.ack, ack: 0, flags: TcpFlag.RST };
  }
  return { ...common, seq: 0, ack: seqAdd(segment.seq, segmentLength(segment, payloadLength)), flags: TcpFlag.RST | TcpFlag.ACK };
}
