#!/usr/bin/env bash
# Runs every scenario of the published comparison (docs/benchmarks.md) against one server.
#
#   bench/suite.sh SERVER OUT_ROOT [RUNS]
#   bench/suite.sh herald bench/results/2026-11-23/herald 3
#
# SERVER is herald, sockudo or soketi (see bench/run-server.sh). Each scenario gets its own
# directory under OUT_ROOT with run-N.json and summary.json. ONLY=name,name runs a subset.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
server=$1
root=$2
runs=${3:-3}
run=$(dirname "$0")/run-server.sh
only=${ONLY:-}

wanted() {
    [[ -z $only || ,$only, == *,$1,* ]]
}

# Idle memory and connect + subscribe rate: 10,000 connections on 100 channels.
if wanted idle; then
    "$run" "$server" "$root/idle" "$runs" \
        idle --connections 10000 --channels 100 --hold 5s --source-ips 127.0.0.2,127.0.0.3
fi

# 5,000 subscribers on one channel: the highest rate with p99 <= 500 ms...
if wanted max-one-channel; then
    BENCH_OPTS="--drain 2s" "$run" "$server" "$root/max-one-channel" "$runs" \
        maxfanout --connections 5000 --channels 1 --publishers 32 --start-rate 4 --step-factor 1.25 \
        --step-warmup 1s --step-duration 3s --max-p99-ms 500 --max-steps 30
fi

# ...and latency at 50,000 deliveries/s (10 events/s to 5,000 subscribers).
if wanted one-channel-50k; then
    BENCH_OPTS="--warmup 2s --duration 10s" "$run" "$server" "$root/one-channel-50k" "$runs" \
        fanout --connections 5000 --channels 1 --rate 10
fi

# 10,000 subscribers on 1,000 channels: the highest rate with p99 <= 100 ms...
if wanted max-many-channels; then
    BENCH_OPTS="--drain 2s" "$run" "$server" "$root/max-many-channels" "$runs" \
        maxfanout --connections 10000 --channels 1000 --publishers 64 --start-rate 2000 --step-factor 1.1 \
        --step-warmup 1s --step-duration 3s --max-p99-ms 100 --max-steps 30
fi

# ...and latency at half of that server's own median maximum.
if wanted many-channels-half; then
    best=$(jq '.figures["best.deliveries_per_s"].median' "$root/max-many-channels/summary.json")
    rate=$(jq -n "$best / 2 / 10 | floor")
    echo "half of $best deliveries/s: $rate events/s" >&2
    BENCH_OPTS="--warmup 2s --duration 10s" "$run" "$server" "$root/many-channels-half" "$runs" \
        fanout --connections 10000 --channels 1000 --rate "$rate" --publishers 64
fi

# Signed REST publishing with 64 concurrent requests and nobody subscribed.
if wanted publish; then
    BENCH_OPTS="--warmup 1s --duration 5s" "$run" "$server" "$root/publish" "$runs" \
        publish --concurrency 64
fi

# Two nodes and a Redis: 2,000 subscribers on node B over 200 channels, 1,000 events/s on node A.
if wanted cluster; then
    NODES=2 BENCH_OPTS="--warmup 2s --duration 10s" "$run" "$server" "$root/cluster" "$runs" \
        cluster --connections 2000 --channels 200 --rate 1000 --publishers 8
fi

# The same load on one node, as the baseline that the cluster figures are compared with.
if wanted one-node; then
    BENCH_OPTS="--warmup 2s --duration 10s" "$run" "$server" "$root/one-node" "$runs" \
        fanout --connections 2000 --channels 200 --rate 1000 --publishers 8
fi
