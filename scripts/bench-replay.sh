#!/usr/bin/env bash
# Replay throughput: `synack replay FILE` (table; and --json) against `tcpdump -n -r FILE` on a full-range
# scan capture (about 131,000 packets), plus synack's peak memory.
#
#   scripts/bench-replay.sh                 record target/bench/full-range.pcap once (root),
#                                           then reuse it
#   scripts/bench-replay.sh --fresh         record it again
#   scripts/bench-replay.sh FILE            benchmark an existing capture instead
#   options: --no-build (use target/release/synack as it is), --runs N (default 10)
#
# The capture is real: `synack lab bench` builds the namespace lab (src/lab/src/lib.rs) and
# tcpdump records the scanner's veth while `synack scan 198.18.1.254 -p-` probes every port
# of the router's own address, where nothing listens: 65,535 SYNs and 65,535 RST/ACKs.
# Traffic stays inside the lab's namespaces (198.18.0.0/15). The capture is ~12 MB and is
# never committed.
#
# Targets: at least 2,000,000 packets/s, and at most 0.1x tcpdump's time.

set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${SYNACK_BIN:-$ROOT/target/release/synack}
FILE=
fresh=0
build=1
runs=10
while [[ $# -gt 0 ]]; do
    case $1 in
        --fresh) fresh=1 ;;
        --no-build) build=0 ;;
        --runs)
            runs=${2:-}
            shift
            ;;
        -h | --help)
            sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        -*)
            echo "bench-replay.sh: unknown option '$1' (try --help)" >&2
            exit 2
            ;;
        *) FILE=$1 ;;
    esac
    shift
done
if ! [[ $runs =~ ^[0-9]+$ ]] || ((runs < 1 || runs > 1000)); then
    echo "bench-replay.sh: --runs must be 1 to 1000" >&2
    exit 2
fi

log() { printf 'bench-replay.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

if [[ $build == 1 ]]; then
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
fi
[[ -x $BIN ]] || die "$BIN is missing: run cargo build --release"
command -v tcpdump >/dev/null || die "tcpdump is not installed (apt-get install tcpdump)"

WORK=$(mktemp -d /tmp/synack-bench.XXXXXX)
chmod 755 "$WORK"
# A private copy: a rebuild by someone else must not swap the binary mid-measurement.
cp "$BIN" "$WORK/synack"
SYNACK=$WORK/synack

LAB_PID=
CAP_PID=
LAB_NAMES=()

# wait_gone, stop_pid, stop_lab
# shellcheck source=scripts/proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/proc.sh"

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$CAP_PID" INT 50
    stop_lab
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------
# The capture

record() {
    local out=$1
    [[ $(id -u) == 0 ]] || die "recording the capture needs root (or pass a FILE)"
    command -v ip >/dev/null || die "iproute2 is not installed"
    mkfifo "$WORK/lab.in"
    "$SYNACK" lab bench <"$WORK/lab.in" >"$WORK/lab.out" 2>"$WORK/lab.err" &
    LAB_PID=$!
    exec 9>"$WORK/lab.in"
    local i
    for ((i = 0; i < 600; i++)); do
        grep -qx ready "$WORK/lab.out" 2>/dev/null && break
        kill -0 "$LAB_PID" 2>/dev/null || break
        sleep 0.1
    done
    grep -qx ready "$WORK/lab.out" || die "the lab did not come up: $(cat "$WORK/lab.err")"
    local f scan=
    read -r -a fields <"$WORK/lab.out"
    for f in "${fields[@]}"; do
        LAB_NAMES+=("${f#*=}")
        [[ $f == scanner=* ]] && scan=${f#scanner=}
    done
    [[ -n $scan ]] || die "no scanner namespace in: $(cat "$WORK/lab.out")"

    # A 64 MiB ring (-B, KiB) so that the scan's bursts are not dropped.
    ip netns exec "$scan" tcpdump -Z root -B 65536 -i to-rtr -w "$WORK/full-range.pcap" \
        'tcp or icmp' 9>&- 2>"$WORK/cap.err" &
    CAP_PID=$!
    for ((i = 0; i < 100; i++)); do
        grep -q 'listening on' "$WORK/cap.err" 2>/dev/null && break
        kill -0 "$CAP_PID" 2>/dev/null || break
        sleep 0.1
    done
    grep -q 'listening on' "$WORK/cap.err" || die "tcpdump did not start: $(cat "$WORK/cap.err")"
    sleep 0.3
    log "scanning 198.18.1.254 -p- in $scan"
    timeout 300 ip netns exec "$scan" "$SYNACK" scan 198.18.1.254 -p- --json 9>&- \
        | tail -n 1 >&2
    # Longer than libpcap's 1 s ring-block timeout: every packet reaches tcpdump first.
    sleep 1.5
    stop_pid "$CAP_PID" INT 100
    CAP_PID=
    sed 's/^/    /' "$WORK/cap.err" >&2
    if grep -Eq '^[1-9][0-9]* packets? dropped by kernel' "$WORK/cap.err"; then
        log "warning: tcpdump dropped packets; the capture is usable but not complete"
    fi
    exec 9>&-
    wait_gone "$LAB_PID" 150 || stop_pid "$LAB_PID" TERM 150
    wait "$LAB_PID" 2>/dev/null || true
    LAB_PID=
    mkdir -p "$(dirname "$out")"
    mv "$WORK/full-range.pcap" "$out"
}

if [[ -z $FILE ]]; then
    FILE=$ROOT/target/bench/full-range.pcap
    if [[ $fresh == 1 || ! -s $FILE ]]; then
        record "$FILE"
    else
        log "reusing $FILE (--fresh records it again)"
    fi
fi
[[ -r $FILE ]] || die "cannot read $FILE"

# ---------------------------------------------------------------------------------------
# The measurements

packets=$(tcpdump -n -r "$FILE" 2>/dev/null | wc -l)
size=$(stat -c %s "$FILE")
log "$FILE: $packets packets, $size bytes"
((packets > 0)) || die "no packets in $FILE"

# Sanity: the replay sees what the scan saw.
"$SYNACK" replay "$FILE" --json | tail -n 1 | sed 's/^/replay summary: /'

# Rounds of one run of each, in an order that rotates every round, so that the machine's
# slow and fast spells fall on all three alike. Each run is timed with bash's own clock
# ($EPOCHREALTIME: no `date` process inside the measured time, which had added a
# millisecond or two to every run). The fastest run of each is compared, and the median
# too.
cmds=(table json tcpdump)
: >"$WORK/times"
for ((i = 0; i < runs; i++)); do
    for ((k = 0; k < 3; k++)); do
        c=${cmds[(i + k) % 3]}
        t0=$EPOCHREALTIME
        case $c in
            table) "$SYNACK" replay "$FILE" ;;
            json) "$SYNACK" replay "$FILE" --json ;;
            tcpdump) tcpdump -n -r "$FILE" ;;
        esac >/dev/null 2>&1
        t1=$EPOCHREALTIME
        echo "$c $t0 $t1" >>"$WORK/times"
    done
done
read -r t_synack t_json t_tcpdump m_synack m_json m_tcpdump < <(python3 -c '
import statistics, sys
t = {"table": [], "json": [], "tcpdump": []}
for line in open(sys.argv[1]):
    c, a, b = line.split()
    t[c].append(float(b) - float(a))
print(*[min(t[c]) for c in ("table", "json", "tcpdump")], *[statistics.median(t[c]) for c in ("table", "json", "tcpdump")])' "$WORK/times")
method="fastest of $runs interleaved rounds"

if [[ ! -x /usr/bin/time ]] && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "installing GNU time for the peak RSS"
    apt-get install -y -qq time >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq time >/dev/null; } ||
        log "warning: could not install GNU time"
fi
if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -f %M -o "$WORK/rss" "$SYNACK" replay "$FILE" >/dev/null
    rss_kb=$(tail -n 1 "$WORK/rss")
    rss_tcpdump_kb=$(
        /usr/bin/time -f %M -o "$WORK/rss2" tcpdump -n -r "$FILE" >/dev/null 2>&1
        tail -n 1 "$WORK/rss2"
    )
else
    rss_kb=? rss_tcpdump_kb=?
fi

python3 - "$packets" "$t_synack" "$t_tcpdump" "$rss_kb" "$rss_tcpdump_kb" "$method" "$t_json" \
    "$m_synack" "$m_json" "$m_tcpdump" <<'EOF'
import sys
packets, ts, tt = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
rss, rss_t, method, tj = sys.argv[4], sys.argv[5], sys.argv[6], float(sys.argv[7])
ms, mj, mt = float(sys.argv[8]), float(sys.argv[9]), float(sys.argv[10])
pps, ratio = packets / ts, ts / tt
print(f"packets:          {packets}")
print(f"synack replay:    {ts * 1000:.1f} ms  ({pps / 1e6:.2f} M packets/s)  [{method}]  (table)")
print(f"  with --json:    {tj * 1000:.1f} ms  ({packets / tj / 1e6:.2f} M packets/s, {tj / tt:.3f}x tcpdump)")
print(f"tcpdump -n -r:    {tt * 1000:.1f} ms  ({packets / tt / 1e6:.2f} M packets/s)")
print(f"ratio:            {ratio:.3f}x tcpdump's time")
print(f"medians:          table {ms * 1000:.1f} ms ({ms / mt:.3f}x), --json {mj * 1000:.1f} ms ({mj / mt:.3f}x), tcpdump {mt * 1000:.1f} ms")
print(f"peak RSS:         synack {rss} KiB, tcpdump {rss_t} KiB")
ok_pps, ok_ratio = pps >= 2e6, ratio <= 0.1
print(f"target >= 2 M packets/s:     {'met' if ok_pps else 'MISSED'}")
print(f"target <= 0.1x tcpdump time: {'met' if ok_ratio else 'MISSED'}")
EOF

# ---------------------------------------------------------------------------------------
# Many exchanges: a generated capture of 1,500,000 SYN -> RST/ACK exchanges to distinct
# (target, port) pairs (23 targets, 50,000 exchanges a second of capture time; made by
# examples/gen_exchanges.rs, never sent). Every one must be reported, in flat memory.

GEN=$ROOT/target/release/examples/gen_exchanges
if [[ ! -x $GEN || $build == 1 ]]; then
    (cd "$ROOT" && cargo build --release --quiet --example gen_exchanges) || die "cannot build gen_exchanges"
fi
MANY=$WORK/exchanges.pcap
"$GEN" 1500000 50000 >"$MANY"
if [[ -x /usr/bin/time ]]; then
    for fmt in table json; do
        args=()
        [[ $fmt == json ]] && args=(--json)
        t0=$(date +%s.%N)
        /usr/bin/time -f %M -o "$WORK/rss-many" "$SYNACK" replay "$MANY" "${args[@]}" >"$WORK/many.out"
        t1=$(date +%s.%N)
        if [[ $fmt == json ]]; then
            reported=$(grep -c '"type":"port"' "$WORK/many.out")
        else
            reported=$(sed -n 's/^synack done: \([0-9]*\) ports.*/\1/p' "$WORK/many.out")
        fi
        printf '1.5 M exchanges (%s): %s ports reported, %.2f s, peak RSS %s KiB\n' \
            "$fmt" "$reported" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$(tail -n 1 "$WORK/rss-many")"
    done
fi

