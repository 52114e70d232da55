#!/usr/bin/env bash
# The main job: `synack demo` — a throw-away namespace lab scanned over IPv4 and IPv6
# with ladder diagrams and explanations, then removed. As root; installs iproute2 and
# iptables first on a fresh Debian machine. Without root, synack replays a capture of the
# same lab that is embedded in the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then
  need=()
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
  command -v iptables >/dev/null 2>&1 || need+=(iptables)
  if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  . "$HOME/.cargo/env"
fi
cargo build --release --quiet
exec target/release/synack demo "$@"
