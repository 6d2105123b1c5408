#!/usr/bin/env bash
# Overload: push a release tapio-server past its capacity for 60 s from a second process
# on loopback (tapio-loadgen, many concurrent senders of full batches) with
# load-shedding-enabled=true, while a probe measures /health latency every 200 ms and
# posts a P1-class fact (a workload with 0 of 3 replicas available) every 500 ms.
# Reports: /health latency (p50, p99, max, over 100 ms), P1 facts sent vs stored, evidence
# shed (tapio_events_dropped_total{reason="load_shed"}), batches accepted, server RSS.
#
#   bench/overload.sh                 # 60 s, 8 senders
#   SECONDS_FLOOD=30 WORKERS=16 bench/overload.sh
#   TAPIO_BIN_DIR=DIR bench/overload.sh   # use prebuilt tapio-server and tapio-loadgen
#   WORKERS=48 SERVER_ARGS="--max-inflight 16" bench/overload.sh   # past admission control
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${TAPIO_BIN_DIR:-}" ]]; then
    BIN="$TAPIO_BIN_DIR"
else
    cargo build --release --quiet -p tapio-server -p tapio-bench
    BIN=./target/release
fi
FLOOD="${SECONDS_FLOOD:-60}"
dir=$(mktemp -d)
port=${PORT:-18490}
mkdir -p "$dir/cfg"
echo true >"$dir/cfg/load-shedding-enabled"
trap 'kill $pid $lg 2>/dev/null || true' EXIT
# SERVER_ARGS: e.g. "--max-inflight 16" so that WORKERS=48 pushes past admission control.
# shellcheck disable=SC2086
"$BIN/tapio-server" --listen 127.0.0.1:$port --data-dir "$dir/db" --config-dir "$dir/cfg" \
    --kube off --log-format logfmt ${SERVER_ARGS:-} 2>"$dir/server.log" &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done

"$BIN/tapio-loadgen" --server "http://127.0.0.1:$port" --mode throughput --batch 500 \
    --workers "${WORKERS:-8}" --seconds "$FLOOD" >"$dir/loadgen.txt" 2>&1 &
lg=$!

python3 - "$port" "$FLOOD" "$pid" "$dir" <<'EOF'
import json, statistics, sys, time, urllib.error, urllib.request

port, flood, pid, d = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
base = f"http://127.0.0.1:{port}"
lat, p1_ids, p1_failed, rss = [], [], 0, []
t_end = time.time() + flood
next_p1 = time.time()
n = 0
while time.time() < t_end:
    t = time.time()
    try:
        with urllib.request.urlopen(base + "/health", timeout=5) as r:
            r.read()
    except Exception:
        pass  # 503 (degraded by shedding) still answers: urlopen raises on it
    lat.append((time.time() - t) * 1000)
    if time.time() >= next_p1:
        next_p1 += 0.5
        n += 1
        body = json.dumps({"type": "kubernetes.workload.unavailable", "severity": "critical",
            "producer": "overload-bench",
            "entity": {"namespace": "bench-p1", "workload": {"kind": "Deployment", "name": f"p1-{n}"}},
            "attributes": {"desired_replicas": 3, "available_replicas": 0}}).encode()
        # Marked critical, as the agent marks a batch holding a P1-class fact; a 503 is
        # retried after Retry-After, as the agent does (counted).
        req = urllib.request.Request(base + "/api/v1/events", data=body,
                                     headers={"content-type": "application/json",
                                              "x-tapio-priority": "critical"})
        for attempt in range(20):
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    p1_ids.append(json.loads(r.read())["id"])
                break
            except urllib.error.HTTPError as e:
                p1_failed += 1
                time.sleep(float(e.headers.get("retry-after") or 1))
            except Exception:
                p1_failed += 1
                time.sleep(1)
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss.append(int(line.split()[1]) // 1024)
    except OSError:
        pass
    time.sleep(max(0.0, 0.2 - (time.time() - t)))

# The correlator catches up on the backlog; raw evidence reads are paused while shedding
# is active under pressure, so wait for it to fall (and measure how long that takes).
t_flood_end = time.time()
while True:
    try:
        with urllib.request.urlopen(base + "/health", timeout=5) as r:
            h = json.loads(r.read())
    except urllib.error.HTTPError as e:
        h = json.loads(e.read())
    if h["components"]["load"]["details"]["pressure"] < 0.5 or time.time() - t_flood_end > 600:
        break
    time.sleep(1)
drain = time.time() - t_flood_end
stored = set()
after = 0
while True:
    with urllib.request.urlopen(f"{base}/api/v1/evidence?after={after}&limit=5000&type=kubernetes.workload.unavailable", timeout=30) as r:
        page = json.loads(r.read())
    for e in page["evidence"]:
        stored.add(e["event"]["id"])
    if page["next"] == after:
        break
    after = page["next"]
with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
    metrics = r.read().decode()
def metric(name):
    return sum(float(l.rsplit(" ", 1)[1]) for l in metrics.splitlines()
               if l.startswith(name) and not l.startswith("#"))
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(f"flood: {flood:.0f} s; /health probes: {len(lat)}, p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms, "
      f"max {lat[-1]:.1f} ms, over 100 ms: {sum(1 for x in lat if x > 100)}")
print(f"P1-class facts: sent {len(p1_ids)} (refused {p1_failed}), stored {len(stored & set(p1_ids))}")
shed_ev = metric('tapio_events_dropped_total{reason="load_shed"}')
ingested = metric('tapio_events_ingested_total')
batches = metric('tapio_batches_accepted_total')
print(f"evidence shed (load_shed): {shed_ev:.0f}; ingested: {ingested:.0f}; batches accepted: {batches:.0f}")
shed_req = {c: metric(f'tapio_requests_shed_total{{class="{c}"') for c in ("critical", "ingest", "read", "debug")}
print(f"requests refused (503) by class: {shed_req}")
print(f"backlog drained below half pressure {drain:.0f} s after the flood")
print(f"server RSS: max {max(rss) if rss else 0} MB; alive at end: yes")
EOF
echo "--- loadgen"
cat "$dir/loadgen.txt"
kill -0 $pid && echo "server still running"
