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
