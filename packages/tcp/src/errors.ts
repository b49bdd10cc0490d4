/**
 * Errors a TCP socket reports, with Node's codes so code written for `net` handles them as it
 * would there (`err.code === 'ECONNREFUSED'`).
 */
export type TcpErrorCode =
  /** The peer answered our SYN with a RST, or an ICMP port/protocol unreachable arrived in SYN-SENT. */
  | 'ECONNREFUSED'
  /** The peer reset an established connection. */
  | 'ECONNRESET'
  /** Retransmissions (or SYN retries, or keepalive probes) gave up. */
  | 'ETIMEDOUT'
  /** Writing after the connection closed. */
  | 'EPIPE'
  /** The stack (or its TCP layer) was closed under the connection. */
  | 'ECONNABORTED'
  /** The port (and address) is taken. */
  | 'EADDRINUSE'
  /** The address is not one of the stack's. */
  | 'EADDRNOTAVAIL'
  /** No route, or the neighbour never answered (soft errors that became the reason on timeout). */
  | 'EHOSTUNREACH'
  /** An operation that needs a connection, on a socket without one. */
  | 'ENOTCONN'
  /** Every ephemeral port is in use. */
  | 'EAGAIN'
  /** A bad argument (port, address). */
  | 'EINVAL';

export class TcpError extends Error {
  override readonly name = 'TcpError';
  constructor(
    readonly code: TcpErrorCode,
    message: string,
  ) {
    super(message);
  }
}
