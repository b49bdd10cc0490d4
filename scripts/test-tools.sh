#!/usr/bin/env bash
# The system tools the tests use: ip, ping, arping, tshark, tcpdump, socat, nc, python3, curl, ab, ethtool, iperf,
# ndisc6, radvd (and make, g++ for the TAP addon; liblwip-dev and pkg-config for the bench's C peer, ../shared/peers/lwip-tap).
# Installs the missing ones with apt when run as root on Debian; otherwise
# says what to install. Run by `npm test` (pretest) and by .ci/run, so `npm install && npm test`
# sets up a fresh machine. Never fails the run by itself: an end-to-end test that lacks a tool
# fails loudly on its own, naming it.
set -uo pipefail

packages=(iproute2 iputils-ping iputils-arping tshark tcpdump socat netcat-openbsd python3 curl apache2-utils ethtool iperf liblwip-dev pkg-config ndisc6 radvd make g++)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "test tools: all installed (${packages[*]})"
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "test tools: missing ${missing[*]}; install them (Debian: apt-get install ${missing[*]}) and run the tests as root" >&2
  exit 0
fi
echo "test tools: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark's wireshark-common asks whether non-root users may capture; answer no, without a prompt.
echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"
