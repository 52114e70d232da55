#!/usr/bin/env bash
# Records capture-fixtures/veth-v4-many-clients.pcap (root): 50 clients connect to one
# server port, 5 of them reset by a real `iptables -j REJECT --reject-with tcp-reset`
# rule on the target that matches their source addresses. Then writes its expected
# replay output (NAME.expected.jsonl, .expected.txt with --ascii, .expected.ladder.txt
# with --ladder --explain).
#
#   sudo capture-fixtures/make-many-clients.sh            build release, record, expect
#   sudo capture-fixtures/make-many-clients.sh --no-build use target/release/synack
#
# In the lab's namespaces only (synack lab, 198.18.0.0/15): the clients are 198.18.1.10
# to 198.18.1.59, added to the scanner namespace's veth; the target 198.18.2.1 listens on
# 443 (a Python accept-and-close loop); the REJECT rule matches 198.18.1.20, .25, .30, .35
# and .40. Every client marks its SYN with DSCP AF11 (IP_TOS 0x28), as synack does, and
# client .10 first connects once to the closed port 444, whose RST from the target's own
# stack reflects that DSCP: the baseline that tells the REJECT's resets apart.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BIN=$(realpath -m "${SYNACK_BIN:-$ROOT/target/release/synack}")
TAG=mc
NAME=veth-v4-many-clients.pcap

build=1
for arg in "$@"; do
    case $arg in
        --no-build) build=0 ;;
        *) echo "make-many-clients.sh: unknown argument '$arg'" >&2; exit 2 ;;
    esac
done
log() { printf 'make-many-clients.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "recording needs root (network namespaces, packet capture)"
for tool in ip iptables tcpdump python3 timeout; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
if [[ $build == 1 ]]; then
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
fi
[[ -x $BIN ]] || die "$BIN is missing"

WORK=$(mktemp -d /tmp/synack-many.XXXXXX)
chmod 755 "$WORK"
LAB_PID=
CAP_PID=
LISTEN_PID=
LAB_NAMES=()
# shellcheck source=scripts/proc.sh
source "$ROOT/scripts/proc.sh"

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
exec 9>"$WORK/lab.in"
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

# 50 client addresses on the scanner's veth (the lab's 198.18.1.0/24).
for i in $(seq 10 59); do
    ip netns exec "$SCAN" ip addr add "198.18.1.$i/24" dev to-rtr 9>&-
done
# The real rule: the target's firewall resets 5 of the clients.
for i in 20 25 30 35 40; do
    ip netns exec "$TARGET" iptables -I INPUT -p tcp --dport 443 -s "198.18.1.$i" \
        -j REJECT --reject-with tcp-reset 9>&-
done
# A listener on 443 that accepts, reads what comes and closes.
ip netns exec "$TARGET" python3 -c '
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.2.1", 443)); s.listen(64)
while True:
    c, _ = s.accept(); c.settimeout(1)
    try: c.recv(100)
    except OSError: pass
    c.close()
' 9>&- &
LISTEN_PID=$!
sleep 0.5

rm -f "$WORK/cap.err"
ip netns exec "$SCAN" tcpdump -Z root -U -w "$WORK/$NAME" -i to-rtr 'tcp or icmp' 9>&- 2>"$WORK/cap.err" &
CAP_PID=$!
for ((i = 0; i < 100; i++)); do
    grep -Eq '^(tcpdump: )?listening on' "$WORK/cap.err" 2>/dev/null && break
    sleep 0.1
done
grep -Eq '^(tcpdump: )?listening on' "$WORK/cap.err" || die "tcpdump did not start"
sleep 0.3

timeout 120 ip netns exec "$SCAN" python3 -c '
import socket, time
def connect(src, port, data):
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x28)
    s.bind((src, 0)); s.settimeout(3)
    try:
        s.connect(("198.18.2.1", port))
        if data: s.sendall(b"hello\n")
        return "connected"
    except OSError as e:
        return e.strerror
    finally:
        s.close()
        time.sleep(0.02)
print("444 from .10:", connect("198.18.1.10", 444, False))
for i in range(10, 60):
    print(f"443 from .{i}:", connect(f"198.18.1.{i}", 443, True))
' 9>&- >&2

sleep 1.5
stop_pid "$CAP_PID" INT 50
CAP_PID=
grep -E 'captured|dropped' "$WORK/cap.err" | sed 's/^/    /' >&2 || true
if grep -Eq '^[1-9][0-9]* packets? dropped by kernel' "$WORK/cap.err"; then
    die "the capture dropped packets"
fi
[[ -s $WORK/$NAME ]] || die "capture $NAME is empty"
install -m 0644 "$WORK/$NAME" "$HERE/$NAME"
log "recorded $NAME ($(stat -c %s "$HERE/$NAME") bytes)"

cd "$HERE"
timeout 60 "$BIN" replay "$NAME" --json >"$NAME.expected.jsonl"
timeout 60 "$BIN" replay "$NAME" --ascii >"$NAME.expected.txt"
timeout 60 "$BIN" replay "$NAME" --ladder --explain >"$NAME.expected.ladder.txt"
log "expected output written for $NAME"
