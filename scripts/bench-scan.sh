#!/usr/bin/env bash
# Scan benchmark, all in one run on this machine, inside a throw-away namespace lab:
#  throughput: full 65,535-port scans of the router's own address (every port closed)
#              by synack (capturing and tracing every packet), a bare nonblocking connect
#              loop (examples/bare_connect.rs) and nmap -sT;
#  mixed:      full-range scans of the lab target (open, DROP, REJECT ports) by synack and
#              nmap -sT;
#  many hosts: the target namespace answers for 198.19.0.0/16 (an AnyIP route, 443 open
#              everywhere): 198.19.0.0/20 x nmap's top 100 ports by synack and
#              nmap -sT -Pn -n --top-ports 100 (both -Pn; RUNS_MANY rounds), then synack alone on
#              /20, /18 and /16 x 10 ports, to show that its memory stays flat;
#  discovery:  a dead /24 (a blackhole route in the router) + 128 live hosts x top 100
#              ports, with host discovery (dead hosts one line each) and without;
#  near + far: the lab target beside a copy of it 200 ms away (2001:db8:c8::1, behind a
#              delaying relay in the router), by synack (with discovery and -Pn) and
#              nmap -sT -Pn -n: times, and whether every far verdict equals the near one.
# Prints medians of RUNS runs, ratios, synack's peak RSS and capture drops. Needs root.
# PREVIOUS_BIN=/path/to/an/older/synack adds that build as a contender in the same rounds
# (to check that a change costs no speed).
# Traffic stays inside the lab's namespaces (198.18.0.0/15).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-3}"
export DEBIAN_FRONTEND=noninteractive
for t in nmap:nmap /usr/bin/time:time iptables:iptables bc:bc; do
  command -v "${t%%:*}" >/dev/null 2>&1 || { apt-get update -qq; apt-get install -y -qq "${t#*:}" >/dev/null; }
done
cargo build --release --quiet --bin synack --example bare_connect
BIN=target/release/synack
BARE=target/release/examples/bare_connect

work=$(mktemp -d)
mkfifo "$work/hold"
"$BIN" lab bench --many-hosts 198.19.0.0/16 --far 2001:db8:c8::/64 --far-delay 200ms < "$work/hold" > "$work/lab.out" 2>&1 &
lab_pid=$!
exec 3> "$work/hold"
cleanup() { exec 3>&- || true; wait "$lab_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
for _ in $(seq 1 100); do grep -q '^ready' "$work/lab.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^ready' "$work/lab.out" || { cat "$work/lab.out"; exit 1; }
NS=$(grep -o 'scanner=[^ ]*' "$work/lab.out" | cut -d= -f2)
ROUTER=$(grep -o 'router=[^ ]*' "$work/lab.out" | cut -d= -f2)
in_ns() { ip netns exec "$NS" "$@"; }

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Runs "$@" once in the scanner namespace; appends its wall time to $work/$name.times.
run_once() {
  local name=$1; shift
  local t0 t1; t0=$(now); in_ns "$@" > "$work/$name.out" 2>&1; t1=$(now)
  echo "$t1 - $t0" | bc -l >> "$work/$name.times"
}
med() { median < "$work/$1.times"; }

# The contenders take turns, RUNS rounds, so drift in the machine's load hits all alike.
echo "== throughput: 65,535 closed ports on 198.18.1.254 (median of $RUNS interleaved rounds) =="
for _ in $(seq 1 "$RUNS"); do
  run_once bare "$BARE" 198.18.1.254 1 65535 512
  run_once synack /usr/bin/time -f 'maxrss_kb %M' "$BIN" scan 198.18.1.254 -p-
  run_once synack_json /usr/bin/time -f 'maxrss_kb %M' "$BIN" scan 198.18.1.254 -p- --json
  run_once nmap nmap -sT -p- -n -Pn 198.18.1.254
  if [ -n "${PREVIOUS_BIN:-}" ]; then
    run_once previous /usr/bin/time -f 'maxrss_kb %M' "$PREVIOUS_BIN" scan 198.18.1.254 -p-
  fi
done
bare=$(med bare); syn=$(med synack); syn_json=$(med synack_json); nmap_t=$(med nmap)
grep bare_connect "$work/bare.out"
rss=$(grep maxrss_kb "$work/synack.out" | awk '{print $2}')
summary=$(grep '^synack done' "$work/synack.out")
rss_json=$(grep maxrss_kb "$work/synack_json.out" | awk '{print $2}')
drops=$(grep '"type":"summary"' "$work/synack_json.out" | sed 's/.*"capture_drops":\([0-9]*\).*/\1/')
closed=$(grep '"type":"summary"' "$work/synack_json.out" | sed 's/.*"closed":\([0-9]*\).*/\1/')
printf '  bare connect loop        %6.3f s\n' "$bare"
printf '  synack (capture, table)  %6.3f s   %.2fx bare   %.2fx nmap   peak RSS %d MB\n' \
  "$syn" "$(echo "$syn / $bare" | bc -l)" "$(echo "$syn / $nmap_t" | bc -l)" "$((rss / 1024))"
printf '  synack (capture, --json) %6.3f s   %.2fx bare   peak RSS %d MB   capture drops %s   closed %s\n' \
  "$syn_json" "$(echo "$syn_json / $bare" | bc -l)" "$((rss_json / 1024))" "$drops" "$closed"
printf '  nmap -sT                 %6.3f s   %.2fx bare\n' "$nmap_t" "$(echo "$nmap_t / $bare" | bc -l)"
echo "  $summary"
if [ -n "${PREVIOUS_BIN:-}" ]; then
  prev=$(med previous)
  rss_prev=$(grep maxrss_kb "$work/previous.out" | awk '{print $2}')
  printf '  previous synack (table)  %6.3f s   %.2fx bare   this build %.2fx previous   peak RSS %d MB\n' \
    "$prev" "$(echo "$prev / $bare" | bc -l)" "$(echo "$syn / $prev" | bc -l)" "$((rss_prev / 1024))"
fi

echo "== mixed: 65,535 ports on the lab target 198.18.2.1 (open, closed, DROP, REJECT), median of $RUNS =="
for _ in $(seq 1 "$RUNS"); do
  run_once synack_m "$BIN" scan 198.18.2.1 -p-
  run_once nmap_m nmap -sT -p- -n -Pn 198.18.2.1
done
syn_m=$(med synack_m); nmap_m=$(med nmap_m)
grep -E '^[0-9]+/tcp|^synack done' "$work/synack_m.out" | cut -c1-110
grep -E '^[0-9]+/tcp' "$work/nmap_m.out" | head -20 | tr '\n' ';'; echo
printf '  synack   %6.3f s   %.2fx nmap\n' "$syn_m" "$(echo "$syn_m / $nmap_m" | bc -l)"
printf '  nmap -sT %6.3f s\n' "$nmap_m"

RUNS_MANY="${RUNS_MANY:-3}"
echo "== many hosts: 198.19.0.0/20 x top 100 ports (409,600), median of $RUNS_MANY interleaved rounds =="
for _ in $(seq 1 "$RUNS_MANY"); do
  run_once many_synack /usr/bin/time -f 'maxrss_kb %M' "$BIN" scan 198.19.0.0/20 -Pn
  run_once many_nmap /usr/bin/time -f 'maxrss_kb %M' nmap -sT -Pn -n --top-ports 100 198.19.0.0/20
done
many_s=$(med many_synack); many_n=$(med many_nmap)
rss_ms=$(grep maxrss_kb "$work/many_synack.out" | awk '{print $2}' | sort -n | tail -1)
rss_mn=$(grep maxrss_kb "$work/many_nmap.out" | awk '{print $2}' | sort -n | tail -1)
grep '^synack done' "$work/many_synack.out" | tail -1 | sed 's/^/  /'
grep '^Nmap done' "$work/many_nmap.out" | tail -1 | sed 's/^/  /'
printf '  synack   %6.3f s   %.2fx nmap   peak RSS %d MB (largest of the rounds)\n' \
  "$many_s" "$(echo "$many_s / $many_n" | bc -l)" "$((rss_ms / 1024))"
printf '  nmap -sT %6.3f s   peak RSS %d MB\n' "$many_n" "$((rss_mn / 1024))"

echo "== discovery: a dead /24 (router blackhole 198.19.128.0/24) + 128 live hosts x top 100 ports, median of $RUNS_MANY =="
# The dead /24 exists only for this section (the memory rows below scan all of the /16).
ip netns exec "$ROUTER" ip route add blackhole 198.19.128.0/24
# Live hosts first, as in issue 12's measurement: without discovery, dead hosts listed
# first are probed before any round trip is measured (1 s timeouts: ~95 s instead of ~10 s).
DISC_TARGETS="198.19.0.0/25 198.19.128.0/24"
for _ in $(seq 1 "$RUNS_MANY"); do
  run_once disc "$BIN" scan $DISC_TARGETS
  run_once disc_json "$BIN" scan $DISC_TARGETS --json
  run_once nodisc "$BIN" scan $DISC_TARGETS --no-discovery --json
done
ip netns exec "$ROUTER" ip route del blackhole 198.19.128.0/24
down_lines=$(grep -c ': down: no answer to ' "$work/disc.out" || true)
reports=$(grep -c '^synack report for ' "$work/disc.out" || true)
hosts_json=$(grep -c '"type":"host"' "$work/disc_json.out" || true)
open_json=$(grep '"type":"port"' "$work/disc_json.out" | grep -c '"state":"open"' || true)
rows_nodisc=$(grep -c '"type":"port"' "$work/nodisc.out" || true)
open_nodisc=$(grep '"type":"port"' "$work/nodisc.out" | grep -c '"state":"open"' || true)
grep '^synack done' "$work/disc.out" | tail -1 | sed 's/^/  /'
printf '  discovery     %6.3f s (table)  %6.3f s (--json)   %d down lines, %d host reports, %d JSON host objects, %d/128 open ports found\n' \
  "$(med disc)" "$(med disc_json)" "$down_lines" "$reports" "$hosts_json" "$open_json"
printf '  no-discovery  %6.3f s (--json)   %d port rows, %d/128 open ports found\n' \
  "$(med nodisc)" "$rows_nodisc" "$open_nodisc"

echo "== near + far: 2001:db8:2::1 and 2001:db8:c8::1 (200 ms away) x ports 22,80-85, median of $RUNS =="
NF_PORTS=22,80-85
for _ in $(seq 1 "$RUNS"); do
  run_once nf_disc "$BIN" scan 2001:db8:2::1 2001:db8:c8::1 -p "$NF_PORTS" --json
  run_once nf_pn "$BIN" scan 2001:db8:2::1 2001:db8:c8::1 -p "$NF_PORTS" --json -Pn
  run_once nf_nmap nmap -6 -sT -Pn -n -p "$NF_PORTS" -oG - 2001:db8:2::1 2001:db8:c8::1
done
# "port state" lines of one host, from synack's JSON or nmap's grepable output.
syn_states() { grep '"type":"port"' "$work/$1.out" | grep "\"target\":\"$2\"" \
  | sed 's/.*"port":\([0-9]*\).*"state":"\([a-z|]*\)".*/\1 \2/' | sort -n; }
nmap_states() { grep "^Host: $2 .*Ports:" "$work/nf_nmap.out" | tail -1 | sed 's/.*Ports: //' \
  | tr ',' '\n' | sed 's#^ *\([0-9]*\)/\([a-z|]*\)/.*#\1 \2#' | sort -n; }
same() { # how many of the near host's ports the far host has the same state on
  local near far; near=$("$1" "$2" 2001:db8:2::1); far=$("$1" "$2" 2001:db8:c8::1)
  echo "$(comm -12 <(echo "$near") <(echo "$far") | grep -c .)/$(echo "$near" | grep -c .)"
}
printf '  synack          %6.3f s   far = near on %s ports\n' "$(med nf_disc)" "$(same syn_states nf_disc)"
printf '  synack -Pn      %6.3f s   far = near on %s ports\n' "$(med nf_pn)" "$(same syn_states nf_pn)"
printf '  nmap -sT -Pn -n %6.3f s   far = near on %s ports\n' "$(med nf_nmap)" "$(same nmap_states nf_nmap)"
for h in 2001:db8:2::1 2001:db8:c8::1; do
  echo "  $h synack -Pn: $(syn_states nf_pn $h | tr '\n' ' ')"
  echo "  $h nmap:       $(nmap_states nf_nmap $h | tr '\n' ' ')"
done

echo "== memory as the target count grows: synack, 10 ports (21-23,25,53,80,110,443,3389,8080) =="
for prefix in 198.19.0.0/20 198.19.0.0/18 198.19.0.0/16; do
  rm -f "$work/flat.times"
  run_once flat /usr/bin/time -f 'maxrss_kb %M' "$BIN" scan "$prefix" -Pn -p 21-23,25,53,80,110,443,3389,8080
  done_line=$(grep '^synack done' "$work/flat.out")
  rss_f=$(grep maxrss_kb "$work/flat.out" | awk '{print $2}')
  printf '  %-15s %7.2f s   peak RSS %3d MB   %s\n' "$prefix" "$(med flat)" "$((rss_f / 1024))" "${done_line%%:*}: ${done_line#*: }"
done

