#!/usr/bin/env bash
# Runs one herald-bench scenario several times against a fresh, pinned Herald release build.
#
#   bench/run-herald.sh OUT_DIR RUNS SCENARIO [scenario options...]
#   bench/run-herald.sh /tmp/bench-fanout 3 fanout --connections 1000 --channels 10 --rate 200
#
# Each run starts its own Herald (so RSS figures start from a fresh process) on core 0
# (HERALD_CPU) and the generator on core 1 (BENCH_CPU), writes OUT_DIR/run-N.json, and stops
# that Herald. At the end OUT_DIR/summary.json holds the median and spread over the runs.
# Options placed before the scenario (e.g. --duration) go in BENCH_OPTS.
set -euo pipefail

if [[ $# -lt 3 ]]; then
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
out_dir=$1
runs=$2
shift 2

repo=$(cd "$(dirname "$0")/.." && pwd)
port=${HERALD_PORT:-16001}
herald_cpu=${HERALD_CPU:-0}
bench_cpu=${BENCH_CPU:-1}
herald_workers=${HERALD_WORKERS:-1}

cd "$repo"
cargo build --release --bin herald >&2
cargo build --release -p herald-bench >&2
mkdir -p "$out_dir"

config="$out_dir/herald.toml"
cat >"$config" <<EOF
[server]
host = "127.0.0.1"
port = $port
workers = $herald_workers

[log]
level = "warn"

[apps.1]
key = "bench-key"
secret = "bench-secret"
EOF

herald_pid=""
stop_herald() {
    if [[ -n $herald_pid ]] && kill -0 "$herald_pid" 2>/dev/null; then
        kill "$herald_pid"
        wait "$herald_pid" 2>/dev/null || true
    fi
    herald_pid=""
}
trap stop_herald EXIT

for run in $(seq 1 "$runs"); do
    taskset -c "$herald_cpu" target/release/herald --config "$config" >"$out_dir/herald-$run.log" 2>&1 &
    herald_pid=$!
    for _ in $(seq 1 50); do
        if curl -sf "http://127.0.0.1:$port/" >/dev/null; then break; fi
        sleep 0.1
    done
    echo "run $run/$runs: herald pid $herald_pid" >&2
    # shellcheck disable=SC2086 # BENCH_OPTS is a list of options.
    taskset -c "$bench_cpu" target/release/herald-bench \
        --ws-url "ws://127.0.0.1:$port" --http-url "http://127.0.0.1:$port" \
        --app-id 1 --key bench-key --secret bench-secret --server-pid "$herald_pid" \
        ${BENCH_OPTS:-} "$@" >"$out_dir/run-$run.json"
    stop_herald
done

target/release/herald-bench summary "$out_dir"/run-*.json | tee "$out_dir/summary.json"
