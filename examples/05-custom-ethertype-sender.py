#!/usr/bin/env python3
"""The host side of example 05: send "shout" requests (EtherType 0x88B5) on a device and print
the answers. A raw AF_PACKET socket writes whole Ethernet frames, header included, so nothing of
the kernel's IP stack is involved. Needs root (CAP_NET_RAW); run it inside the example's namespace:

    sudo ip netns exec tapstack-custom python3 examples/05-custom-ethertype-sender.py tap0 02:00:00:00:88:b5 hello world

Exits 1 when an answer does not come within a second.
"""
import socket
import struct
import sys

ETHERTYPE = 0x88B5
REQUEST, REPLY = 1, 2

if len(sys.argv) < 4:
    sys.exit(f"usage: {sys.argv[0]} DEVICE DESTINATION-MAC WORD...")
device, destination, words = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), sys.argv[3:]

sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
sock.bind((device, ETHERTYPE))  # receive only our EtherType, only on this device
sock.settimeout(1.0)
source = sock.getsockname()[4]  # the device's own MAC (the kernel's side of the TAP)

for sequence, word in enumerate(words, start=1):
    text = word.encode()
    # Ethernet header, then kind, reserved, sequence, length, text (all big-endian)
    sock.send(destination + source + struct.pack("!HBBHH", ETHERTYPE, REQUEST, 0, sequence, len(text)) + text)
    while True:
        try:
            frame = sock.recv(2048)
        except socket.timeout:
            sys.exit(f"seq {sequence}: no answer within 1 s")
        kind, _, got_sequence, length = struct.unpack("!BBHH", frame[14:20])
        if kind == REPLY and got_sequence == sequence:
            break
    answer = frame[20 : 20 + length].decode(errors="replace")
    print(f"seq {sequence}: sent {word!r}, got {answer!r} from {frame[6:12].hex(':')}")
