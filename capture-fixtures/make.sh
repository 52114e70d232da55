#!/usr/bin/env bash
# Records the capture fixtures in capture-fixtures/ from a throw-away namespace lab, then
# writes each fixture's expected replay output (NAME.expected.jsonl, NAME.expected.txt,
# NAME.expected.ladder.txt with --ladder --explain, NAME.expected.connections.txt with
# --connections: one row per connection attempt).
#
#   capture-fixtures/make.sh                  build, record every fixture, write expectations
#   capture-fixtures/make.sh --no-build       use target/release/synack as it is
#   capture-fixtures/make.sh --expected-only  only rewrite the expectations from the
#                                             committed captures (no root, no lab)
#
# Recording needs root: `synack lab fx` builds three network namespaces (scanner, router,
# target; see src/lab/src/lib.rs) with addresses from 198.18.0.0/15 and 2001:db8::/32. Every
# packet recorded here stays inside those namespaces or on their loopback interfaces.
# The lab tears itself down when its stdin (a fifo this script holds) closes; the EXIT
# trap closes it, stops every process the script started, and removes the namespaces by
# name if the lab could not.
#
# Timestamps, ports and ISNs differ per run: fixtures are recorded once and committed.
# After re-recording, review the expectations by hand (docs/fixtures.md says how) before
# committing: they are what tests/fixtures.rs holds the replay to.

set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BIN=${SYNACK_BIN:-$ROOT/target/release/synack}
TAG=fx

build=1
record=1
for arg in "$@"; do
    case $arg in
        --no-build) build=0 ;;
        --expected-only) record=0 ;;
        -h | --help)
            sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "make.sh: unknown argument '$arg' (try --help)" >&2
            exit 2
            ;;
    esac
done

log() { printf 'make.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# ---------------------------------------------------------------------------------------
# Expectations: the replay's own output, to be reviewed by hand.

write_expected() {
    local name=$1
    # Replayed from inside the directory with the bare file name, as tests/fixtures.rs
    # does, so that no path leaks into the output.
    (
        cd "$HERE"
        timeout 60 "$BIN" replay "$name" --json >"$name.expected.jsonl.tmp"
        timeout 60 "$BIN" replay "$name" --ascii >"$name.expected.txt.tmp"
        timeout 60 "$BIN" replay "$name" --ladder --explain >"$name.expected.ladder.txt.tmp"
        timeout 60 "$BIN" replay "$name" --connections --ascii >"$name.expected.connections.txt.tmp"
        mv "$name.expected.jsonl.tmp" "$name.expected.jsonl"
        mv "$name.expected.connections.txt.tmp" "$name.expected.connections.txt"
        mv "$name.expected.txt.tmp" "$name.expected.txt"
        mv "$name.expected.ladder.txt.tmp" "$name.expected.ladder.txt"
    )
    log "expected output written for $name"
}

all_captures() {
    (
        cd "$HERE"
        shopt -s nullglob
        printf '%s\n' *.pcap *.pcapng | sort
    )
}

if [[ $build == 1 ]]; then
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
fi
[[ -x $BIN ]] || die "$BIN is missing: run cargo build --release (or drop --no-build)"

if [[ $record == 0 ]]; then
    captures=$(all_captures)
    [[ -n $captures ]] || die "no captures in $HERE"
    for name in $captures; do write_expected "$name"; done
    exit 0
fi

[[ $(id -u) == 0 ]] || die "recording needs root (network namespaces, packet capture)"
for tool in ip tcpdump dumpcap nmap python3 timeout; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done

# ---------------------------------------------------------------------------------------
# The lab, held open through a fifo; everything started here is stopped by the trap.

WORK=$(mktemp -d /tmp/synack-fixtures.XXXXXX)
chmod 755 "$WORK"
LAB_PID=
CAP_PID=
LISTEN_PID=
LAB_NAMES=()

# wait_gone, stop_pid, stop_lab
# shellcheck source=scripts/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/proc.sh"

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$CAP_PID" INT 50
    stop_pid "$LISTEN_PID" TERM 20
    stop_lab
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkfifo "$WORK/lab.in"
"$BIN" lab "$TAG" <"$WORK/lab.in" >"$WORK/lab.out" 2>"$WORK/lab.err" &
LAB_PID=$!
exec 9>"$WORK/lab.in" # the lab's stdin stays open as long as fd 9 does

for ((i = 0; i < 600; i++)); do
    grep -qx ready "$WORK/lab.out" 2>/dev/null && break
    kill -0 "$LAB_PID" 2>/dev/null || break
    sleep 0.1
done
grep -qx ready "$WORK/lab.out" || die "the lab did not come up: $(cat "$WORK/lab.err")"
read -r -a fields <"$WORK/lab.out"
for f in "${fields[@]}"; do
    case $f in
        scanner=*) SCAN=${f#scanner=} ;;
        router=*) ROUTER=${f#router=} ;;
        target=*) TARGET=${f#target=} ;;
    esac
done
LAB_NAMES=("$SCAN" "$ROUTER" "$TARGET")
log "lab up: scanner=$SCAN router=$ROUTER target=$TARGET"

# Runs a command in the scanner namespace, bounded in time, without the lab's fifo.
in_scanner() {
    timeout 120 ip netns exec "$SCAN" "$@" 9>&-
}

# ---------------------------------------------------------------------------------------
# Captures: one at a time, started and confirmed before the traffic, stopped after it.

# start_capture TOOL OUTFILE ARGS...: tcpdump or dumpcap in the scanner namespace, in the
# background; returns once the tool says it is capturing.
start_capture() {
    local tool=$1 out=$2
    shift 2
    local ready_re
    rm -f "$out" "$WORK/cap.err"
    case $tool in
        tcpdump)
            ready_re='^(tcpdump: )?listening on'
            # -Z root: tcpdump would otherwise drop to user tcpdump before opening -w.
            # Not --immediate-mode: on `-i any` it made the kernel drop up to half of
            # nmap's packets (libpcap 1.10.3); stop_capture waits out the ring instead.
            ip netns exec "$SCAN" tcpdump -Z root -U -w "$out" "$@" 9>&- 2>"$WORK/cap.err" &
            ;;
        dumpcap)
            ready_re="^Capturing on"
            ip netns exec "$SCAN" dumpcap -q -w "$out" "$@" 9>&- 2>"$WORK/cap.err" &
            ;;
        *) die "unknown capture tool $tool" ;;
    esac
    CAP_PID=$!
    for ((i = 0; i < 100; i++)); do
        grep -Eq "$ready_re" "$WORK/cap.err" 2>/dev/null && break
        kill -0 "$CAP_PID" 2>/dev/null || break
        sleep 0.1
    done
    grep -Eq "$ready_re" "$WORK/cap.err" || die "$tool did not start: $(cat "$WORK/cap.err")"
    # The socket is bound and filtered once the tool says so; give the ring a moment.
    sleep 0.3
}

# stop_capture: lets late answers arrive, then SIGINT (flushes the file), bounded wait.
# 1.5 s: longer than libpcap's 1 s TPACKET_V3 block timeout. Packets still in a block
# that has not timed out are lost when the tool stops, and no drop counter shows it: with
# a 0.5 s wait the whole self-connect exchange vanished from its capture.
stop_capture() {
    sleep 1.5
    stop_pid "$CAP_PID" INT 50
    CAP_PID=
    grep -E 'captured|dropped' "$WORK/cap.err" | sed 's/^/    /' >&2 || true
    # tcpdump: "N packets dropped by kernel"; dumpcap: "received/dropped on ...: R/D (...)".
    if grep -Eq '^[1-9][0-9]* packets? dropped by kernel|dropped on interface .*: [0-9]+/[1-9]' \
        "$WORK/cap.err"; then
        die "the capture dropped packets: $(cat "$WORK/cap.err")"
    fi
}

# install NAME: moves a finished capture into place (so a failed run keeps the old one).
install_capture() {
    local name=$1
    [[ -s $WORK/$name ]] || die "capture $name is empty"
    install -m 0644 "$WORK/$name" "$HERE/$name"
    chown --reference="$HERE" "$HERE/$name" 2>/dev/null || true
    log "recorded $name ($(stat -c %s "$HERE/$name") bytes)"
}

V4_FILTER='tcp or icmp or icmp6'
STD_PORTS=22,80-90

# 1. SYN loss and the kernel's own retransmission. First, while the router's every-2nd-SYN
#    counter for port 90 is fresh: the first SYN is dropped, the retransmission (same
#    source port, same sequence number, ~1 s later) is answered. Nanosecond pcap.
name=veth-v4-syn-retransmit.pcap
start_capture tcpdump "$WORK/$name" -i to-rtr --time-stamp-precision=nano "$V4_FILTER"
in_scanner "$BIN" scan 198.18.2.1 -p 90 --timeout 3s --ascii >&2
stop_capture
install_capture "$name"

# 2. The standard scenario over IPv4, Ethernet on the scanner's veth, microsecond pcap.
name=veth-v4-standard.pcap
start_capture tcpdump "$WORK/$name" -i to-rtr "$V4_FILTER"
in_scanner "$BIN" scan 198.18.2.1 -p "$STD_PORTS" --ascii >&2
stop_capture
install_capture "$name"

# 3. The standard scenario over IPv6, pcapng written by dumpcap (Wireshark's capture
#    engine: section header and interface options tcpdump does not write).
name=veth-v6-standard.pcapng
start_capture dumpcap "$WORK/$name" -i to-rtr -f 'tcp or icmp6'
in_scanner "$BIN" scan 2001:db8:2::1 -p "$STD_PORTS" --ascii >&2
stop_capture
install_capture "$name"

# 4. nmap's connect scan of the same ports, `-i any` (LINUX_SLL2): nmap marks no DSCP.
name=any-nmap-v4.pcap
start_capture tcpdump "$WORK/$name" -i any "$V4_FILTER"
in_scanner nmap -sT -Pn -n -p "$STD_PORTS" 198.18.2.1 >&2
stop_capture
install_capture "$name"

# 5. Loopback in the scanner namespace: a listener on 127.0.0.1:2222 and [::1]:2222,
#    nothing on 2223. The scanner namespace's own `lo`, Ethernet link type.
name=lo-listener-closed.pcap
ip netns exec "$SCAN" timeout 60 python3 -c '
import socket, time
socks = []
for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 2222))
    s.listen(16)
    socks.append(s)
print("listening", flush=True)
time.sleep(30)
' 9>&- >"$WORK/listen.out" &
LISTEN_PID=$!
for ((i = 0; i < 50; i++)); do
    grep -q listening "$WORK/listen.out" 2>/dev/null && break
    sleep 0.1
done
grep -q listening "$WORK/listen.out" || die "the loopback listener did not start"
start_capture tcpdump "$WORK/$name" -i lo "$V4_FILTER"
in_scanner "$BIN" scan 127.0.0.1 ::1 -p 2222,2223 --ascii >&2
stop_capture
stop_pid "$LISTEN_PID" TERM 20
LISTEN_PID=
install_capture "$name"

# 6. A loopback self-connect. With the ephemeral range narrowed to the one port 40123,
#    connect() to 127.0.0.1:40123 binds 40123 and meets its own SYN: a TCP simultaneous
#    open (RFC 9293 §3.5, figure 8) with itself. It "connects" although nothing listens.
#    Last, because it changes the scanner namespace's port range (restored after).
name=lo-self-connect.pcap
old_range=$(ip netns exec "$SCAN" sysctl -n net.ipv4.ip_local_port_range 9>&-)
ip netns exec "$SCAN" sysctl -q -w net.ipv4.ip_local_port_range="40123 40123" 9>&-
start_capture tcpdump "$WORK/$name" -i lo "$V4_FILTER"
in_scanner python3 -c '
import socket
s = socket.socket()
s.settimeout(5)
s.connect(("127.0.0.1", 40123))
assert s.getsockname() == s.getpeername(), (s.getsockname(), s.getpeername())
print("self-connected:", s.getsockname(), "->", s.getpeername())
s.close()
' >&2
stop_capture
ip netns exec "$SCAN" sysctl -q -w net.ipv4.ip_local_port_range="$old_range" 9>&-
install_capture "$name"

# ---------------------------------------------------------------------------------------

for name in $(all_captures); do write_expected "$name"; done
log "done. Review the expectations before committing (see docs/fixtures.md):"
log "  git diff --stat -- capture-fixtures/"
