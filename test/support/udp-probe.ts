/**
 * The kernel's side of a closed-port test: a python3 script whose UDP socket, connected to
 * (address, port), sends one datagram and prints what the kernel made of the answer. An ICMP or
 * ICMPv6 port unreachable reaches a connected socket as ECONNREFUSED (Linux's
 * __udp4_lib_err/__udp6_lib_err), so the script prints `Connection refused 111`; no answer
 * prints `timeout`, an answer `got a reply`.
 */
export function closedPortProbe(family: 'AF_INET' | 'AF_INET6', address: string, port: number): string {
  return [
    'import socket',
    `s = socket.socket(socket.${family}, socket.SOCK_DGRAM)`,
    's.settimeout(3)',
    `s.connect(("${address}", ${port}))`,
    's.send(b"anyone there?")',
    'try:',
    '    s.recv(100)',
    '    print("got a reply")',
    'except ConnectionRefusedError as e:',
    '    print("Connection refused", e.errno)',
    'except socket.timeout:',
    '    print("timeout")',
  ].join('\n');
}
