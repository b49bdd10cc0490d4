/**
 * `--trace` for TCP, as tcpdump prints it: sequence and acknowledgement numbers relative to each
 * direction's initial sequence number, so a connection reads `seq 1:1449, ack 1` instead of ten
 * digits. The ISNs are learned from the SYNs seen; a connection whose SYNs were not seen is
 * printed with absolute numbers. The table of connections is bounded (the oldest forgotten).
 */
import { readIpv4 } from '@tapstack/link';
import type { TcpAddress } from './address.ts';
import { formatTcp, TcpFlag } from './header.ts';

const MAX_CONNECTIONS = 4096;

export class TcpTraceFormatter {
  /** Initial sequence number by direction: "source:port>destination:port". */
  private readonly isn = new Map<string, number>();

  /** One line for the segment `bytes` from `source` to `destination` (never throws). */
  format(bytes: Uint8Array, source: TcpAddress, destination: TcpAddress): string {
    if (bytes.length < 20) return formatTcp(bytes, source, destination);
    const sourcePort = (bytes[0]! << 8) | bytes[1]!;
    const destinationPort = (bytes[2]! << 8) | bytes[3]!;
    const forward = `${source}:${sourcePort}>${destination}:${destinationPort}`;
    const backward = `${destination}:${destinationPort}>${source}:${sourcePort}`;
    const flags = bytes[13]!;
    if (flags & TcpFlag.SYN) {
      if (this.isn.size >= MAX_CONNECTIONS && !this.isn.has(forward)) {
        const oldest = this.isn.keys().next().value;
        if (oldest !== undefined) this.isn.delete(oldest);
      }
      // a new SYN starts a new connection: the SYN itself is printed absolute, as tcpdump does
      this.isn.set(forward, readIpv4(bytes, 4));
      return formatTcp(bytes, source, destination);
    }
    const ours = this.isn.get(forward);
    const theirs = this.isn.get(backward);
    if (ours === undefined || theirs === undefined) return formatTcp(bytes, source, destination);
    if (flags & TcpFlag.RST && !(flags & TcpFlag.ACK)) this.forget(forward, backward);
    return formatTcp(bytes, source, destination, { seq: ours, ack: theirs });
  }

  private forget(a: string, b: string): void {
    this.isn.delete(a);
    this.isn.delete(b);
  }
}
