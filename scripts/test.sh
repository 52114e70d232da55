#!/usr/bin/env bash
# Runs every test synack has. As root (the live tests build network namespaces); with
# CI=true a test that needs root and cannot run fails instead of skipping.
# Installs what the tests need on a fresh Debian machine first.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in ip:iproute2 iptables:iptables tcpdump:tcpdump tshark:tshark nmap:nmap setpriv:util-linux prlimit:util-linux; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
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
command -v cargo >/dev/null 2>&1 || { echo "cargo (Rust 1.85+) is needed: https://rustup.rs" >&2; exit 1; }

cargo test --all-targets "$@"
