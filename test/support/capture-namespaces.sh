# Sourced by the fixture capture scripts (packages/*/test/fixtures/capture*.sh), which record the
# kernel's own frames between two network namespaces:
#   capture_namespaces LABEL
# makes namespaces "a" and "b" (their names in $a and $b: tapstack-LABEL-a-<pid>, ...-b-<pid>),
# loopbacks up, joined by a veth pair: va in a (02:00:00:00:0a:01) and vb in b (02:00:00:00:0b:02),
# the MACs of test/fixtures, both still down; and $tmp, a scratch folder. On exit, also on failure,
# every process whose pid is in a $tmp/*.pid file is stopped and both namespaces are deleted.
# Nothing outside the two namespaces is touched. $out is where the captures go: the script's own
# folder, or $CAPTURE_OUT (to try a script without replacing the committed captures).

capture_cleanup() {
  for p in "$tmp"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done
  ip netns del "$a" 2>/dev/null || true
  ip netns del "$b" 2>/dev/null || true
  rm -rf "$tmp"
}

capture_namespaces() {
  a="tapstack-$1-a-$$"
  b="tapstack-$1-b-$$"
  tmp="$(mktemp -d)"
  trap capture_cleanup EXIT
  ip netns add "$a"
  ip netns add "$b"
  ip -n "$a" link set lo up
  ip -n "$b" link set lo up
  ip -n "$a" link add va address 02:00:00:00:0a:01 type veth peer name vb netns "$b"
  ip -n "$b" link set vb address 02:00:00:00:0b:02
}

out="${CAPTURE_OUT:-$(cd "$(dirname "$0")" && pwd)}"
