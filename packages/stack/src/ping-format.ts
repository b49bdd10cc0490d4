/** The lines `tapstack ping` prints, in iputils' words. */
import { formatIpv4, type Ipv4Address } from '@tapstack/link';

export { formatPingError, formatPingReply, formatPingSummary } from '@tapstack/icmp';

/** `PING 10.0.0.1 (10.0.0.1) 56(84) bytes of data.` */
export function pingHeader(target: Ipv4Address, size: number): string {
  const t = formatIpv4(target);
  return `PING ${t} (${t}) ${size}(${size + 28}) bytes of data.`;
}
