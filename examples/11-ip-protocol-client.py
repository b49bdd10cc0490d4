#!/usr/bin/env python3
"""The kernel's side of example 11: send bytes on IP protocol 253 and print the answer.

Usage (as root, inside the example's namespace): 11-ip-protocol-client.py ADDRESS TEXT...
A raw IP socket of protocol 253: the kernel writes the IPv4 header, we give only the payload;
what comes back is the whole datagram, header included, which we skip by its IHL.
"""
import socket
import sys

address, text = sys.argv[1], " ".join(sys.argv[2:]) or "hello"
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 253)
s.settimeout(3)
s.sendto(text.encode(), (address, 0))
while True:
    data, (source, _) = s.recvfrom(65535)
    ihl = (data[0] & 0x0F) * 4
    if source == address:
        print(f"got {data[ihl:].decode(errors='replace')!r} from {source}")
        break
