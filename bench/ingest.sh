#!/usr/bin/env bash
# Ingest benchmark: a release tapio-server with a fresh embedded store, driven by
# tapio-loadgen on the same machine (both share its cores). Prints sustained throughput
# (batches of 500) and POST→durable-ack latency at 5,000 events/s.
#   bench/ingest.sh            # default durability (fsync every commit)
#   DURABILITY=normal bench/ingest.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p tapio-server -p tapio-bench
dir=$(mktemp -d)
port=${PORT:-18480}
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
./target/release/tapio-server --listen 127.0.0.1:$port --data-dir "$dir/db" --config-dir "$dir/cfg" \
    --durability "${DURABILITY:-full}" --log-format logfmt 2>"$dir/server.log" &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
lg=./target/release/tapio-loadgen
$lg --server "http://127.0.0.1:$port" --mode throughput --batch 500 --workers "${WORKERS:-4}" --seconds "${SECONDS_THROUGHPUT:-20}"
$lg --server "http://127.0.0.1:$port" --mode latency --batch 100 --rate 5000 --seconds "${SECONDS_LATENCY:-20}"
$lg --server "http://127.0.0.1:$port" --mode latency --batch 500 --rate 5000 --seconds "${SECONDS_LATENCY:-20}"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^tapio_(events_processed_total|queue_depth)' | grep -v ' 0$' || true
echo "store size: $(du -sh "$dir/db" | cut -f1)"
