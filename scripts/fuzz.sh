#!/usr/bin/env bash
# Runs synack's cargo-fuzz targets, each for a bounded time, and reports executions and
# findings.
#
#   scripts/fuzz.sh [SECONDS [TARGET...]]    default: 60 s each, targets decode and replay
#
# Stable toolchain with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Z flags: sanitizer, coverage).
# Seeds come from fuzz/corpus/<target>/ (committed, never written to); what libFuzzer
# finds goes to fuzz/corpus-work/<target>/ and crashes to fuzz/artifacts/<target>/, both
# ignored by git. Exit status: 0 when no target found anything, 1 when one did, 2 on
# bad arguments.

set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FUZZ=$ROOT/fuzz

secs=${1:-60}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(decode replay)
if ! [[ $secs =~ ^[0-9]+$ ]] || ((secs < 1 || secs > 86400)); then
    echo "fuzz.sh: SECONDS must be a whole number from 1 to 86400, not '$secs'" >&2
    exit 2
fi
for t in "${targets[@]}"; do
    if [[ ! -f $FUZZ/fuzz_targets/$t.rs ]]; then
        echo "fuzz.sh: no target '$t' (fuzz/fuzz_targets/$t.rs)" >&2
        exit 2
    fi
done

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

cd "$FUZZ"
for t in "${targets[@]}"; do
    echo "fuzz.sh: building $t (release, AddressSanitizer)" >&2
    timeout 1800 cargo fuzz build "$t"
done

found=0
summary=()
for t in "${targets[@]}"; do
    work=$FUZZ/corpus-work/$t
    artifacts=$FUZZ/artifacts/$t
    mkdir -p "$work" "$artifacts"
    log=$FUZZ/target/fuzz-$t.log
    mkdir -p "$(dirname "$log")"
    before=$(find "$artifacts" -type f | sort)
    echo "fuzz.sh: $t for ${secs}s (log: ${log#"$ROOT"/})" >&2
    # The outer timeout only guards against a hung build or a runaway process: libFuzzer
    # stops itself after -max_total_time. The work dir comes first: new inputs go there.
    set +e
    timeout --signal=INT --kill-after=30 $((secs + 600)) \
        cargo fuzz run "$t" "$work" "$FUZZ/corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 || true)
    corpus=$(find "$work" -type f | wc -l)
    new=$(comm -13 <(printf '%s\n' "$before") <(find "$artifacts" -type f | sort) | sed '/^$/d')
    line="$t: ${execs:-?} executions (${rate:-?}/s), ${cov:-cov ?}, work corpus $corpus inputs"
    if [[ -n $new || $rc -ne 0 ]]; then
        found=1
        line+=", FINDINGS (libFuzzer exit $rc)"
        grep -E '^==[0-9]+==|panicked at|^SUMMARY|Test unit written' "$log" | head -n 20 >&2 || true
        while IFS= read -r f; do
            [[ -n $f ]] || continue
            echo "  ${f#"$ROOT"/} ($(stat -c %s "$f") bytes):" >&2
            xxd -p "$f" | head -n 40 | sed 's/^/    /' >&2
        done <<<"$new"
    else
        line+=", no findings"
    fi
    summary+=("$line")
done

echo
printf '%s\n' "${summary[@]}"
exit "$found"
