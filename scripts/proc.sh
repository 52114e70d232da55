# Process helpers shared by the lab scripts (capture-fixtures/make.sh,
# scripts/bench-replay.sh). Source it; the caller defines log().

# Waits up to $2 tenths of a second for process $1 to end; true when it has.
wait_gone() {
    local pid=$1 tenths=$2 i
    for ((i = 0; i < tenths; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    ! kill -0 "$pid" 2>/dev/null
}

# Stops one process: signal $2 first, then SIGKILL after $3 tenths of a second.
stop_pid() {
    local pid=$1 sig=$2 tenths=$3
    [[ -n $pid ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill "-$sig" "$pid" 2>/dev/null || true
        if ! wait_gone "$pid" "$tenths"; then
            log "process $pid ignored SIG$sig, killing it"
            kill -KILL "$pid" 2>/dev/null || true
            wait_gone "$pid" 20 || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

# Tears down a lab started as `synack lab` whose stdin is held on fd 9 (pid in LAB_PID,
# namespace names in the array LAB_NAMES): EOF on its stdin first, SIGTERM if it does
# not end, then any namespace a lab killed the hard way left behind is removed by name.
stop_lab() {
    if [[ -n ${LAB_PID:-} ]]; then
        exec 9>&- || true
        wait_gone "$LAB_PID" 150 || stop_pid "$LAB_PID" TERM 150
        wait "$LAB_PID" 2>/dev/null || true
    fi
    local ns
    for ns in "${LAB_NAMES[@]}"; do
        if ip netns list | grep -qw -- "$ns"; then
            log "removing leftover namespace $ns"
            ip netns delete "$ns" || true
        fi
    done
}
