#!/usr/bin/env bash
# Adversarial load against a release tapio-server with authentication on (issue 15):
# what an untrusted world does to it, and whether it loses anything or fools anyone.
#
#   1. storm      100,000 connection refusals to distinct addresses nobody owns (200
#                 workloads), a P1 fact sent halfway: P1 latency, correlator rate each
#                 second while it has a backlog, incidents opened, RSS.
#   2. clock      an incident open, then one batch from an agent whose clock runs 4 min 58 s
#                 fast: the incident must still be open 5 s later.
#   3. flood      15 s of unauthenticated POSTs from 8 threads: 401s vs 429s, audit rows.
#   4. slowloris  500 connections sending headers one byte every 2 s: /health latency
#                 while they hang, and how many the server closed.
#   5. heartbeat  100 heartbeats of 4 MB: answers and RSS growth.
#   6. action     a declare sent twice with one Idempotency-Key while the correlator has a
#                 backlog: incidents created (must be 1) and the answers.
#   7. kill -9    evidence acknowledged, then SIGKILL and restart: stored == acknowledged.
# Prints one JSON document (also written to $OUT, default target/adversarial.json) with:
# requests, 5xx, crashes, lost events, P1 latency under the storm, RSS max.
#
#   bench/adversarial.sh
#   TAPIO_BIN_DIR=DIR bench/adversarial.sh      # prebuilt tapio-server
#   STORM=20000 bench/adversarial.sh            # a smaller storm
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${TAPIO_BIN_DIR:-}" ]]; then
    BIN="$TAPIO_BIN_DIR"
else
    cargo build --release --quiet -p tapio-server
    BIN=./target/release
fi
dir=$(mktemp -d)
port=${PORT:-18590}
OUT=${OUT:-target/adversarial.json}
mkdir -p "$dir/cfg" "$dir/auth"
python3 - "$dir/auth" <<'EOF'
import hashlib, sys
d = sys.argv[1]
for user, role in [("bench-admin", "admin"), ("bench-agent", "agent"), ("bench-responder", "responder")]:
    token = user + "-token-0123456789abcdef"
    with open(f"{d}/{user}", "w") as f:
        f.write(f"role: {role}\ntoken-sha256: {hashlib.sha256(token.encode()).hexdigest()}\n")
EOF
if curl -s -o /dev/null "http://127.0.0.1:$port/health"; then
    echo "port $port is already in use (a server left from an earlier run?): set PORT" >&2
    exit 1
fi
start() {
    "$BIN/tapio-server" --listen 127.0.0.1:$port --data-dir "$dir/db" --config-dir "$dir/cfg" \
        --auth-dir "$dir/auth" --kube off --log-format logfmt ${SERVER_ARGS:-} 2>>"$dir/server.log" &
    pid=$!
    echo $pid >"$dir/pid"
    for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && return; sleep 0.1; done
    echo "server did not become ready; log: $dir/server.log" >&2
    exit 1
}
trap 'kill $(cat "$dir/pid") 2>/dev/null || true' EXIT
start
python3 bench/adversarial.py "$port" "$dir" "${STORM:-100000}" "$BIN" | tee "$OUT"
echo "server log: $dir/server.log" >&2
