#!/usr/bin/env python3
"""The challenge ACK of RFC 5961 3.2, asked of whoever answers 10.0.0.2 on IFNAME.

Usage: challenge-ack.py IFNAME PORT (as root, inside the namespace that holds IFNAME, whose
address is 10.0.0.1). Opens an ordinary kernel TCP connection to 10.0.0.2:PORT (an echo
service), watching the device with an AF_PACKET socket to learn both initial sequence numbers,
then writes by hand a RST that lies inside the peer's receive window but 100 bytes past
RCV.NXT. RFC 5961 says the peer must not reset but answer with an ACK that carries its own
RCV.NXT (a challenge ACK). Afterwards the connection must still echo.

Prints JSON: the answer seen (flags, seq and ack relative to each side's ISN, payload length)
and whether the echo still works. Touches nothing but IFNAME.
"""
import json
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4

ifname, port = sys.argv[1], int(sys.argv[2])
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
raw.bind((ifname, 0))
raw.setblocking(False)


def segments(timeout):
    """Yields (outgoing, frame) for TCP frames on the device until timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        ready, _, _ = select.select([raw], [], [], left)
        if not ready:
            continue
        while True:
            try:
                data, address = raw.recvfrom(65535)
            except BlockingIOError:
                break
            if data[12:14] == b"\x08\x00" and data[23] == 6:
                yield address[2] == PACKET_OUTGOING, data


def tcp_fields(frame):
    ihl = (frame[14] & 0x0F) * 4
    t = frame[14 + ihl:]
    sport, dport, seq, ack, off_flags, window = struct.unpack("!HHIIHH", t[:16])
    header = (off_flags >> 12) * 4
    ip_total = struct.unpack("!H", frame[16:18])[0]
    return {"sport": sport, "dport": dport, "seq": seq, "ack": ack, "flags": off_flags & 0xFF, "window": window, "len": ip_total - ihl - header}


def checksum(data):
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


client = socket.socket()
client.setblocking(False)
try:
    client.connect(("10.0.0.2", port))
except BlockingIOError:
    pass

ours = theirs = None
syn_ack_frame = None
# (the waits below end at what they wait for; they are long for an answerer off the CPU a while)
for outgoing, frame in segments(10):
    f = tcp_fields(frame)
    if outgoing and f["flags"] == 0x02 and f["dport"] == port:
        ours = f
    elif not outgoing and f["flags"] == 0x12 and ours and f["dport"] == ours["sport"]:
        theirs = f
        syn_ack_frame = frame
        break
if not (ours and theirs):
    print(json.dumps({"error": "no handshake seen"}))
    sys.exit(0)
# let the handshake finish
client.setblocking(True)
client.settimeout(10)
time.sleep(0.2)

# A RST inside the window, 100 bytes past RCV.NXT (which is our ISN + 1).
src_ip, dst_ip = socket.inet_aton("10.0.0.1"), socket.inet_aton("10.0.0.2")
seq = (ours["seq"] + 1 + 100) & 0xFFFFFFFF
tcp = struct.pack("!HHIIHHHH", ours["sport"], port, seq, 0, (5 << 12) | 0x04, 0, 0, 0)
pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, 6, len(tcp))
tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0x5151, 0x4000, 64, 6, 0, src_ip, dst_ip)
ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
# Ethernet: to the peer's MAC (the SYN-ACK's source), from ours (its destination)
raw.send(syn_ack_frame[6:12] + syn_ack_frame[0:6] + b"\x08\x00" + ip + tcp)

answer = None
for outgoing, frame in segments(10):
    f = tcp_fields(frame)
    if not outgoing and f["dport"] == ours["sport"]:
        answer = {
            "flags": f["flags"],
            "seq": (f["seq"] - theirs["seq"]) & 0xFFFFFFFF,
            "ack": (f["ack"] - ours["seq"]) & 0xFFFFFFFF,
            "len": f["len"],
        }
        break

alive = False
try:
    client.sendall(b"still there?\n")
    alive = client.recv(100) == b"still there?\n"
except OSError:
    alive = False
client.close()
print(json.dumps({"answer": answer, "alive": alive}))
