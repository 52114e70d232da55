#!/usr/bin/env bash
# Writes the crafted and derived capture fixtures, then their expected replay output
# (NAME.expected.jsonl, NAME.expected.txt, NAME.expected.ladder.txt). No root, no network:
#
#   crafted-encap.pcap, crafted-fragments.pcap, crafted-icmp-udp.pcap
#       built byte by byte by make-crafted.py (see its docstring for why crafted)
#   veth-v4-standard-snap68.pcap
#       the real veth-v4-standard.pcap cut to 68 bytes per packet by `editcap -s 68`, as
#       `tcpdump -s 68` (tcpdump's old default snap length) would have recorded it
#   veth-v4-standard.pcap.gz, veth-v4-standard.pcap.zst
#       the same real capture compressed (`gzip -9 -n`, `zstd -19`); not fixtures of
#       their own (the extension is not .pcap): tests/fixtures.rs replays them and holds
#       them to veth-v4-standard.pcap's expectations
#
#   capture-fixtures/make-crafted.sh             build release, write all, then expectations
#   capture-fixtures/make-crafted.sh --no-build  use target/release/synack as it is
#
# Deterministic: running it twice gives the same files. Review the expectations by hand
# (docs/fixtures.md says how) before committing.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BIN=${SYNACK_BIN:-$ROOT/target/release/synack}

build=1
for arg in "$@"; do
    case $arg in
        --no-build) build=0 ;;
        *)
            echo "make-crafted.sh: unknown argument '$arg'" >&2
            exit 2
            ;;
    esac
done
log() { printf 'make-crafted.sh: %s\n' "$*" >&2; }

for tool in python3 editcap gzip zstd; do
    command -v "$tool" >/dev/null || { log "error: $tool is not installed"; exit 1; }
done
if [[ $build == 1 ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
fi

WORK=$(mktemp -d /tmp/synack-crafted.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

python3 "$HERE/make-crafted.py" "$WORK"
editcap -F pcap -s 68 "$HERE/veth-v4-standard.pcap" "$WORK/veth-v4-standard-snap68.pcap"
gzip -9 -n -c "$HERE/veth-v4-standard.pcap" >"$WORK/veth-v4-standard.pcap.gz"
zstd -19 -q -c "$HERE/veth-v4-standard.pcap" >"$WORK/veth-v4-standard.pcap.zst"

NEW=(crafted-encap.pcap crafted-fragments.pcap crafted-icmp-udp.pcap crafted-order.pcap crafted-one-sided.pcap veth-v4-standard-snap68.pcap)
for f in "${NEW[@]}" veth-v4-standard.pcap.gz veth-v4-standard.pcap.zst; do
    install -m 0644 "$WORK/$f" "$HERE/$f"
    log "wrote $f ($(stat -c %s "$HERE/$f") bytes)"
done

# Replayed from inside the directory with the bare file name, as tests/fixtures.rs does.
cd "$HERE"
for name in "${NEW[@]}"; do
    timeout 60 "$BIN" replay "$name" --json >"$name.expected.jsonl"
    timeout 60 "$BIN" replay "$name" --ascii >"$name.expected.txt"
    timeout 60 "$BIN" replay "$name" --ladder --explain >"$name.expected.ladder.txt"
    log "expected output written for $name"
done
