/** The lines `tapstack` prints: ping's in iputils' words, and tables indented under a heading. */
import { formatIpv4, type Ipv4Address } from '@tapstack/link';

export { formatPingError, formatPingReply, formatPingSummary } from '@tapstack/icmp';

/** `PING 10.0.0.1 (10.0.0.1) 56(84) bytes of data.` */
export function pingHeader(target: Ipv4Address, size: number): string {
  const t = formatIpv4(target);
  return `PING ${t} (${t}) ${size}(${size + 28}) bytes of data.`;
}

/** Each line of `text` indented by two spaces, for a table printed under a heading. */
export function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}
