#!/usr/bin/env bash
# Runs one herald-bench scenario several times against a fresh, pinned server.
#
#   bench/run-server.sh SERVER OUT_DIR RUNS SCENARIO [scenario options...]
#   bench/run-server.sh herald /tmp/bench/fanout 3 fanout --connections 1000 --channels 10 --rate 200
#
# SERVER is herald, sockudo or soketi. With NODES=2 the script also starts its own
# redis-server on a free port and two nodes with their Redis adapter; the scenario must then be
# `cluster` (node B's URL and pid are added to its options).
# Each run starts fresh servers on core 0 (SERVER_CPU) and the generator on core 1 (BENCH_CPU),
# writes OUT_DIR/run-N.json and stops the servers; OUT_DIR/summary.json then holds the median
# and spread over the runs. Options for before the scenario (e.g. --duration) go in BENCH_OPTS.
# Peers are looked for in SOCKUDO_BIN (/tmp/peers/sockudo/bin/sockudo) and SOKETI_DIR
# (/tmp/peers/soketi); docs/benchmarks.md says how to install them.
set -euo pipefail

if [[ $# -lt 4 ]]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
server=$1
out_dir=$2
runs=$3
shift 3

repo=$(cd "$(dirname "$0")/.." && pwd)
base_port=${BASE_PORT:-16001}
server_cpu=${SERVER_CPU:-0}
bench_cpu=${BENCH_CPU:-1}
nodes=${NODES:-1}
sockudo_bin=${SOCKUDO_BIN:-/tmp/peers/sockudo/bin/sockudo}
soketi_dir=${SOKETI_DIR:-/tmp/peers/soketi}
key=bench-key
secret=bench-secret

cd "$repo"
if [[ $server == herald ]]; then
    cargo build --release --bin herald >&2
fi
cargo build --release -p herald-bench >&2
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() {
    local port=$1
    for _ in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on port $port after 30 s" >&2
    return 1
}

# start_node NODE_INDEX PORT REDIS_PORT LOG: starts one server pinned to $server_cpu, sets $started_pid.
start_node() {
    local index=$1 port=$2 redis_port=$3 log=$4
    case $server in
    herald)
        local config="$out_dir/herald-$index.toml"
        {
            printf '[server]\nhost = "127.0.0.1"\nport = %s\nworkers = 1\n\n' "$port"
            printf '[log]\nlevel = "warn"\n\n'
            if [[ -n $redis_port ]]; then
                printf '[adapter]\ndriver = "redis"\nredis_url = "redis://127.0.0.1:%s"\n\n' "$redis_port"
            fi
            printf '[apps.1]\nkey = "%s"\nsecret = "%s"\n' "$key" "$secret"
        } >"$config"
        taskset -c "$server_cpu" target/release/herald --config "$config" >"$log" 2>&1 &
        ;;
    sockudo)
        local dir="$out_dir/sockudo-$index"
        mkdir -p "$dir/config"
        sockudo_config "$port" "$redis_port" "$((port + 3600))" >"$dir/config/config.toml"
        (cd "$dir" && RUST_LOG=warn exec taskset -c "$server_cpu" "$sockudo_bin" --config config/config.toml) >"$log" 2>&1 &
        ;;
    soketi)
        local adapter=()
        if [[ -n $redis_port ]]; then
            adapter=(SOKETI_ADAPTER_DRIVER=redis SOKETI_DB_REDIS_HOST=127.0.0.1 SOKETI_DB_REDIS_PORT="$redis_port")
        fi
        (cd "$soketi_dir" && exec env SOKETI_HOST=127.0.0.1 SOKETI_PORT="$port" \
            SOKETI_DEFAULT_APP_ID=1 SOKETI_DEFAULT_APP_KEY="$key" SOKETI_DEFAULT_APP_SECRET="$secret" \
            SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES=true \
            SOKETI_CLUSTER_HOST=127.0.0.1 SOKETI_CLUSTER_BROADCAST_ADDRESS=127.255.255.255 \
            SOKETI_CLUSTER_PORT="$((port + 3600))" SOKETI_METRICS_ENABLED=false \
            "${adapter[@]}" \
            taskset -c "$server_cpu" node node_modules/@soketi/soketi/bin/server.js start) >"$log" 2>&1 &
        ;;
    *)
        echo "unknown server '$server' (herald, sockudo or soketi)" >&2
        exit 2
        ;;
    esac
    started_pid=$!
    wait_for_port "$port"
}

# sockudo_config PORT REDIS_PORT METRICS_PORT: sockudo's TOML config with its rate limiter, queue and
# per-app limits off, so that the benchmark measures the server and not its protections. Its per-socket
# buffer keeps the default (1,000 messages): it is allocated up front, and at 100,000 a socket cost
# about 10 MB and a connect about 75 ms. Key names are those of sockudo 5.0.1's option structs (it ignores unknown keys).
sockudo_config() {
    local port=$1 redis_port=$2 metrics_port=$3
    cat <<EOF
host = "127.0.0.1"
port = $port
debug = false
max_connections = 0

[app_manager]
driver = "memory"

[[app_manager.array.apps]]
id = "1"
key = "$key"
secret = "$secret"
enabled = true
enable_client_messages = true
max_connections = 0
max_client_events_per_second = 0

[cache]
driver = "memory"

[queue]
driver = "none"

[rate_limiter]
enabled = false

[metrics]
enabled = false
host = "127.0.0.1"
port = $metrics_port
EOF
    if [[ -n $redis_port ]]; then
        cat <<EOF

[adapter]
driver = "redis"
fallback_to_local = false

[database.redis]
host = "127.0.0.1"
port = $redis_port

[idempotency]
enabled = false
EOF
    else
        printf '\n[adapter]\ndriver = "local"\n'
    fi
}

pids=()
redis_pid=""
stop_all() {
    for pid in "${pids[@]}" $redis_pid; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    pids=()
    redis_pid=""
}
trap stop_all EXIT

for run in $(seq 1 "$runs"); do
    redis_port=""
    extra=()
    if [[ $nodes == 2 ]]; then
        redis_port=$(free_port)
        taskset -c "$server_cpu" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
            --appendonly no >"$out_dir/redis-$run.log" 2>&1 &
        redis_pid=$!
        wait_for_port "$redis_port"
    fi
    start_node a "$base_port" "$redis_port" "$out_dir/$server-a-$run.log"
    pids+=("$started_pid")
    pid_a=$started_pid
    if [[ $nodes == 2 ]]; then
        start_node b "$((base_port + 1))" "$redis_port" "$out_dir/$server-b-$run.log"
        pids+=("$started_pid")
        extra=(--ws-url-b "ws://127.0.0.1:$((base_port + 1))" --server-pid-b "$started_pid")
    fi
    echo "run $run/$runs: $server pid(s) ${pids[*]}" >&2
    # shellcheck disable=SC2086 # BENCH_OPTS is a list of options.
    taskset -c "$bench_cpu" target/release/herald-bench \
        --ws-url "ws://127.0.0.1:$base_port" --http-url "http://127.0.0.1:$base_port" \
        --app-id 1 --key "$key" --secret "$secret" --server-pid "$pid_a" \
        ${BENCH_OPTS:-} "$@" "${extra[@]}" >"$out_dir/run-$run.json"
    stop_all
done

target/release/herald-bench summary "$out_dir"/run-*.json | tee "$out_dir/summary.json"
