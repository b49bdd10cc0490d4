/**
 * Mistakes in using a socket (not network input: that is never thrown, only counted). The codes
 * are the ones Node's `dgram` and the Linux socket calls use, so they read the same.
 */
export type UdpErrorCode =
  /** The port (on that address, or on any address) is bound by another socket. */
  | 'EADDRINUSE'
  /** The address to bind is not one of the stack's own. */
  | 'EADDRNOTAVAIL'
  /** More data than one datagram carries over IPv4 (65507 bytes). */
  | 'EMSGSIZE'
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
  | 'ENONET';

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
};

/** The errno Linux reports for an ICMP error (time exceeded reads as EHOSTUNREACH). */
export function icmpErrno(kind: 'destination-unreachable' | 'time-exceeded', code: number): UdpIcmpErrorCode {
  if (kind === 'time-exceeded') return 'EHOSTUNREACH';
  return UNREACHABLE_ERRNO[code] ?? 'EHOSTUNREACH';
}

/**
 * An ICMP error about a datagram this socket sent, handed to `socket.on('error')`: port
 * unreachable is ECONNREFUSED, "Connection refused", as a Linux socket reports it.
 */
export class UdpIcmpError extends Error {
  override readonly name = 'UdpIcmpError';

  constructor(
    readonly code: UdpIcmpErrorCode,
    /** Where the datagram the error is about was going. */
    readonly address: number,
    readonly port: number,
    /** Who sent the ICMP error (our own address for errors found locally, like a failed ARP). */
    readonly from: number,
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
