#!/usr/bin/env python3
"""Send frames on a device and record what comes back, for the differential suite.

Reads a JSON spec on stdin:
  {"ifname": "dut0", "scenarios": [{"name": ..., "frames": [hex...], "command": [argv] | null,
                                     "window_ms": 300}]}
For each scenario, in order: drain what is pending, write the raw frames (whole Ethernet frames)
with an AF_PACKET socket, run the command if any, then keep reading for window_ms. Only frames
that arrive on the device (not the ones it sends) with EtherType ARP or IPv4 are kept.
Prints {"<name>": {"frames": [hex...], "status": int|null, "output": str}} as JSON.
Runs as root inside the sender's network namespace; touches nothing but that device.
"""
import json
import select
import socket
import subprocess
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
KEEP = (0x0800, 0x0806)

spec = json.load(sys.stdin)
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
sock.bind((spec["ifname"], 0))
sock.setblocking(False)


def read_ready(keep):
    while True:
        try:
            data, address = sock.recvfrom(65535)
        except BlockingIOError:
            return
        if keep is None or address[2] == PACKET_OUTGOING:
            continue
        if int.from_bytes(data[12:14], "big") in KEEP:
            keep.append(data.hex())


def collect_until(deadline, keep):
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        ready, _, _ = select.select([sock], [], [], left)
        if ready:
            read_ready(keep)


result = {}
for scenario in spec["scenarios"]:
    read_ready(None)  # drop whatever came before this scenario
    frames = []
    for frame in scenario["frames"]:
        sock.send(bytes.fromhex(frame))
    status, output = None, ""
    if scenario.get("command"):
        process = subprocess.Popen(scenario["command"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        while process.poll() is None:
            collect_until(time.monotonic() + 0.02, frames)
        status, output = process.returncode, process.stdout.read()
    collect_until(time.monotonic() + scenario["window_ms"] / 1000, frames)
    result[scenario["name"]] = {"frames": frames, "status": status, "output": output}

print(json.dumps(result))
