#!/usr/bin/env python3
"""Send frames on a device and record what comes back, for the differential suite.

Reads a JSON spec on stdin:
  {"ifname": "dut0", "barrier_id": 0xb4b4, "scenarios": [{"name": ..., "frames": [hex...],
   "command": [argv] | null, "window_ms": 300, "barrier": hex}]}
For each scenario, in order: drain what is pending, write the raw frames (whole Ethernet frames)
with an AF_PACKET socket, run the command if any, keep reading for window_ms, then send the
scenario's barrier (an echo request with ICMP identifier barrier_id and the scenario's number as
its sequence) and keep reading until its reply comes (10 s at most). Both answerers handle what
they receive in order, so every answer to the scenario came before the barrier's reply, however
long the answerer was off the CPU: window_ms alone let a late answer fall into the next
scenario (where it was dropped). The barrier's reply itself is not kept. Only frames that arrive
on the device (not the ones it sends) with EtherType ARP or IPv4 are kept.
Prints {"<name>": {"frames": [hex...], "times": [s...], "status": int|null, "output": str,
"barrier": bool}} as JSON: "times" has, for each frame, when the kernel received it (SO_TIMESTAMPNS,
seconds since 1970: when the answerer sent it, not when this script got to read it), and
"barrier" is false when the barrier's reply never came.
Runs as root inside the sender's network namespace; touches nothing but that device.
"""
import json
import select
import socket
import struct
import subprocess
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
KEEP = (0x0800, 0x0806)
SO_TIMESTAMPNS = 35  # <asm-generic/socket.h>; SCM_TIMESTAMPNS has the same number

spec = json.load(sys.stdin)
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
sock.bind((spec["ifname"], 0))
sock.setblocking(False)
sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)


def is_barrier_reply(data, sequence):
    """An IPv4 ICMP echo reply with the barrier's identifier and this sequence."""
    if len(data) < 34 or data[12:14] != b"\x08\x00" or data[23] != 1:
        return False
    icmp = 14 + (data[14] & 0x0F) * 4
    if len(data) < icmp + 8 or data[icmp] != 0:
        return False
    return int.from_bytes(data[icmp + 4 : icmp + 6], "big") == spec["barrier_id"] and int.from_bytes(data[icmp + 6 : icmp + 8], "big") == sequence


def received_at(ancillary):
    """The kernel's receive time of a frame (SCM_TIMESTAMPNS), in seconds."""
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
            seconds, nanoseconds = struct.unpack("qq", value[:16])
            return seconds + nanoseconds / 1e9
    return time.time()


def read_ready(keep, barrier=None):
    """Reads what is pending into keep ({"frames", "times"}; None: drop it); True once the barrier's reply was read."""
    while True:
        try:
            data, ancillary, _flags, address = sock.recvmsg(65535, socket.CMSG_SPACE(16))
        except BlockingIOError:
            return False
        if keep is None or address[2] == PACKET_OUTGOING:
            continue
        if barrier is not None and is_barrier_reply(data, barrier):
            return True
        if int.from_bytes(data[12:14], "big") in KEEP:
            keep["frames"].append(data.hex())
            keep["times"].append(received_at(ancillary))


def collect_until(deadline, keep, barrier=None):
    """Reads into keep until the deadline, or until the barrier's reply when one is given."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([sock], [], [], left)
        if ready and read_ready(keep, barrier):
            return True


result = {}
for number, scenario in enumerate(spec["scenarios"]):
    read_ready(None)  # drop whatever came before this scenario
    kept = {"frames": [], "times": []}
    for frame in scenario["frames"]:
        sock.send(bytes.fromhex(frame))
    status, output = None, ""
    if scenario.get("command"):
        process = subprocess.Popen(scenario["command"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        while process.poll() is None:
            collect_until(time.monotonic() + 0.02, kept)
        status, output = process.returncode, process.stdout.read()
    collect_until(time.monotonic() + scenario["window_ms"] / 1000, kept)
    sock.send(bytes.fromhex(scenario["barrier"]))
    barrier = collect_until(time.monotonic() + 10, kept, number)
    result[scenario["name"]] = {**kept, "status": status, "output": output, "barrier": barrier}

print(json.dumps(result))
