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

export class UdpSocketError extends Error {
  override readonly name = 'UdpSocketError';

  constructor(
    readonly code: UdpErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}
