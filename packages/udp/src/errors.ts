import type { Ipv6Address } from '@tapstack/link';

/**
 * Mistakes in using a socket (not network input: that is never thrown, only counted). The codes
 * are the ones Node's `dgram` and the Linux socket calls use, so they read the same.
 */
export type UdpErrorCode =
  /** The port (on that address, or on any address) is bound by another socket. */
  | 'EADDRINUSE'
  /** The address to bind is not one of the stack's own. */
  | 'EADDRNOTAVAIL'
  /** More data than one datagram carries (65507 bytes over IPv4, 65519 over IPv6). */
  | 'EMSGSIZE'
  /**
   * The address's family does not fit the socket: IPv6 on a stack without it, an IPv6
   * destination from a socket bound to an IPv4 address or `0.0.0.0`, or the other way round.
   */
  | 'EAFNOSUPPORT'
  /** Sending to a broadcast address without `setBroadcast(true)`. */
  | 'EACCES'
  /** Every ephemeral port is in use. */
  | 'EAGAIN'
  /** A port or address out of range, or a socket bound twice. */
  | 'EINVAL'
  /** The socket is closed. */
  | 'ERR_SOCKET_DGRAM_NOT_RUNNING';

/** errno names for ICMP errors about datagrams we sent, as Linux maps them (icmp_err_convert). */
export type UdpIcmpErrorCode =
  | 'ECONNREFUSED'
  | 'EHOSTUNREACH'
  | 'ENETUNREACH'
  | 'EMSGSIZE'
  | 'ENOPROTOOPT'
  | 'EOPNOTSUPP'
  | 'EHOSTDOWN'
  | 'ENONET'
  | 'EACCES'
  | 'EPROTO';

const UNREACHABLE_ERRNO: readonly UdpIcmpErrorCode[] = [
  'ENETUNREACH', // 0 net
  'EHOSTUNREACH', // 1 host
  'ENOPROTOOPT', // 2 protocol
  'ECONNREFUSED', // 3 port
  'EMSGSIZE', // 4 fragmentation needed
  'EOPNOTSUPP', // 5 source route failed
  'ENETUNREACH', // 6 net unknown
  'EHOSTDOWN', // 7 host unknown
  'ENONET', // 8 source host isolated
  'ENETUNREACH', // 9 net prohibited
  'EHOSTUNREACH', // 10 host prohibited
  'ENETUNREACH', // 11 net unreachable for TOS
  'EHOSTUNREACH', // 12 host unreachable for TOS
  'EHOSTUNREACH', // 13 administratively prohibited
  'EHOSTUNREACH', // 14 host precedence violation
  'EHOSTUNREACH', // 15 precedence cutoff
];

const ERRNO_TEXT: Record<UdpIcmpErrorCode, string> = {
  ECONNREFUSED: 'Connection refused',
  EHOSTUNREACH: 'No route to host',
  ENETUNREACH: 'Network is unreachable',
  EMSGSIZE: 'Message too long',
  ENOPROTOOPT: 'Protocol not available',
  EOPNOTSUPP: 'Operation not supported',
  EHOSTDOWN: 'Host is down',
  ENONET: 'Machine is not on the network',
  EACCES: 'Permission denied',
  EPROTO: 'Protocol error',
};

/** The errno Linux reports for an ICMP error (time exceeded reads as EHOSTUNREACH). */
export function icmpErrno(kind: 'destination-unreachable' | 'time-exceeded', code: number): UdpIcmpErrorCode {
  if (kind === 'time-exceeded') return 'EHOSTUNREACH';
  return UNREACHABLE_ERRNO[code] ?? 'EHOSTUNREACH';
}

/** ICMPv6 destination unreachable codes 0-6 (RFC 4443 3.1), as Linux's icmpv6_err_convert maps them. */
const UNREACHABLE6_ERRNO: readonly UdpIcmpErrorCode[] = [
  'ENETUNREACH', // 0 no route
  'EACCES', // 1 administratively prohibited
  'EHOSTUNREACH', // 2 beyond scope of source address
  'EHOSTUNREACH', // 3 address unreachable
  'ECONNREFUSED', // 4 port unreachable
  'EACCES', // 5 source address failed policy
  'EACCES', // 6 reject route
];

/** The errno Linux reports for an ICMPv6 error (time exceeded: EHOSTUNREACH; parameter problem: EPROTO). */
export function icmpv6Errno(kind: 'destination-unreachable' | 'time-exceeded' | 'parameter-problem', code: number): UdpIcmpErrorCode {
  if (kind === 'time-exceeded') return 'EHOSTUNREACH';
  if (kind === 'parameter-problem') return 'EPROTO';
  return UNREACHABLE6_ERRNO[code] ?? 'EHOSTUNREACH';
}

/**
 * An ICMP error about a datagram this socket sent, handed to `socket.on('error')`: port
 * unreachable is ECONNREFUSED, "Connection refused", as a Linux socket reports it.
 */
export class UdpIcmpError extends Error {
  override readonly name = 'UdpIcmpError';

  constructor(
    readonly code: UdpIcmpErrorCode,
    /** Where the datagram the error is about was going (an IPv4 number or an Ipv6Address). */
    readonly address: number | Ipv6Address,
    readonly port: number,
    /** Who sent the ICMP error (our own address for errors found locally, like a failed ARP or NDP). */
    readonly from: number | Ipv6Address,
  ) {
    super(`${code}: ${ERRNO_TEXT[code]}`);
  }
}

export class UdpSocketError extends Error {
  override readonly name = 'UdpSocketError';

  constructor(
    readonly code: UdpErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}
