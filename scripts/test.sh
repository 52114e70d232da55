#!/usr/bin/env bash
# Runs every test synack has. As root (the live tests build network namespaces); with
# CI=true a test that needs root and cannot run fails instead of skipping.
# Installs what the tests need on a fresh Debian machine first.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in ip:iproute2 iptables:iptables tcpdump:tcpdump tshark:tshark nmap:nmap ndiff:ndiff xmllint:libxml2-utils setpriv:util-linux prlimit:util-linux; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
# replay --filter loads libpcap at run time (pcap_compile, pcap_offline_filter).
ldconfig -p 2>/dev/null | grep -q 'libpcap\.so\.0\.8' || need+=(libpcap0.8)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing tools: ${need[*]} (run as root to install them)" >&2
  fi
fi
if ! command -v cargo >/dev/null 2>&1; then
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || { echo "cargo (Rust 1.88+) is needed: https://rustup.rs" >&2; exit 1; }

# One closing line for the whole run (cargo prints one per test binary, and the last
# binaries, the CLI and the example, have no tests of their own).
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --all-targets "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
read -r passed failed < <(awk '/^test result:/ {
    for (i = 1; i < NF; i++) {
        if ($(i + 1) ~ /^passed/) p += $i
        if ($(i + 1) ~ /^failed/) f += $i
    }
} END { print p + 0, f + 0 }' "$log")
echo "synack: $passed passed, $failed failed"
exit "$status"
