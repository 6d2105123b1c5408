#!/usr/bin/env bash
# Scale-out benchmark (docs/scale-out.md): 1, 2 and 3 release tapio-server replicas on this
# host, sharing one PostgreSQL and one NATS JetStream (scripts/test-services.sh), driven by
# tapio-loadgen spread over the replicas and over CLUSTERS clusters (one partition each).
#
# For each replica count it prints:
#   - accepted events/s (acknowledged to the senders, i.e. durable on the bus);
#   - end-to-end events/s: events stored in PostgreSQL and correlated, divided by the time
#     from the first send until the bus and every partition's correlator have caught up;
#   - CPU seconds per 100k events, summed over the replicas (the per-replica cost);
#   - peak RSS per replica.
# Then, with 3 replicas, FAILOVERS times: SIGKILL the replica owning most partitions and
# time until every partition is owned again (kill → owned), restarting it in between;
# then SIGTERM one replica and time the graceful hand-off.
#
#   bench/scale-out.sh                       # 20 s of load per replica count, 8 clusters
#   SECONDS_LOAD=30 CLUSTERS=16 bench/scale-out.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_LOAD=${SECONDS_LOAD:-20}
CLUSTERS=${CLUSTERS:-8}
WORKERS=${WORKERS:-8}
PODS=${PODS:-1000}   # per sender's slice of its cluster
NODES=${NODES:-100}
PARTITIONS=${PARTITIONS:-16}
FAILOVERS=${FAILOVERS:-3}
TTL=${TTL:-5s}

mapfile -t svc < <(scripts/test-services.sh)
PG_ADMIN=${svc[0]}
NATS=${svc[1]}
cargo build --release --quiet -p tapio-server -p tapio-bench
bin=./target/release
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

psql_q() { psql "$1" -Atq -c "$2"; }

start_replica() { # db prefix index
    local i=$3
    mkdir -p "$work/r$i"
    "$bin/tapio-server" --listen "127.0.0.1:$((18600 + i))" --data-dir "$work/r$i/db" \
        --config-dir "$work/r$i/cfg" --database-url "$1" --nats-url "$NATS" --nats-prefix "$2" \
        --partitions "$PARTITIONS" --lease-ttl "$TTL" --replica-id "r$i" --kube off \
        --log-format logfmt --bus-max-bytes 512Mi 2>>"$work/r$i.log" &
    pids[$i]=$!
    for _ in $(seq 200); do curl -sf "http://127.0.0.1:$((18600 + i))/ready" >/dev/null && return; sleep 0.05; done
    echo "replica r$i did not start:"; tail -5 "$work/r$i.log"; exit 1
}

owned_by() { # port → "partitions owned, all owned?"
    curl -sf "http://127.0.0.1:$1/api/v1/cluster" | python3 -c '
import json,sys
d=json.load(sys.stdin); ps=d["partition_owners"]
print(sum(1 for p in ps if p["owned"]), len(ps), " ".join(sorted({p["owner"] or "-" for p in ps})))'
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# PostgreSQL's and NATS's CPU (all their processes; backends that exited in between are
# missed, but the replicas keep their connections open).
svc_ticks() { local t=0; for p in $(pgrep -x postgres; pgrep -x nats-server); do t=$((t + $(cpu_ticks "$p" 2>/dev/null || echo 0))); done; echo "$t"; }
rss_mb() { awk '/VmHWM/ {print int($2/1024)}' "/proc/$1/status"; }

echo "scale-out bench: $WORKERS senders, $CLUSTERS clusters, $PARTITIONS partitions, ${SECONDS_LOAD}s load, lease ttl $TTL, $(nproc) cores"
for n in 1 2 3; do
    db="bench_$(date +%s%N)"
    psql_q "$PG_ADMIN" "CREATE DATABASE $db"
    url="${PG_ADMIN%/*}/$db"
    prefix="bench$RANDOM$n"
    pids=()
    for i in $(seq 1 "$n"); do start_replica "$url" "$prefix" "$i"; done
    for _ in $(seq 100); do
        read -r owned total _ < <(owned_by 18601) || true
        [ "${owned:-0}" = "$PARTITIONS" ] && break; sleep 0.2
    done
    servers=$(for i in $(seq 1 "$n"); do printf 'http://127.0.0.1:%s,' $((18600 + i)); done)
    servers=${servers%,}
    declare -A c0=()
    for i in $(seq 1 "$n"); do c0[$i]=$(cpu_ticks "${pids[$i]}"); done
    s0=$(svc_ticks)
    t0=$(date +%s.%N)
    load=$("$bin/tapio-loadgen" --server "$servers" --mode throughput --batch 500 \
        --workers "$WORKERS" --clusters "$CLUSTERS" --seconds "$SECONDS_LOAD" \
        --workload cluster --pods "$PODS" --nodes "$NODES" | tr "\n" " ")
    accepted=$(echo "$load" | sed -E 's/.* = ([0-9]+) events\/s.*/\1/')
    sent=$(echo "$load" | sed -E 's/throughput: ([0-9]+) events.*/\1/')
    # Caught up: nothing waits on the bus and every partition's owner has correlated all
    # it stored (each replica reports its own partitions' lag; the lease loop refreshes
    # that every ttl/4). Cheap to ask, unlike counting rows while the store is busy.
    for _ in $(seq 2400); do
        lagging=$(for i in $(seq 1 "$n"); do curl -sf "http://127.0.0.1:$((18600 + i))/api/v1/cluster" || echo '{}'; echo; done |
            python3 -c '
import json,sys
bad=0
for line in sys.stdin:
    line=line.strip()
    if not line: continue
    d=json.loads(line)
    if "replica" not in d: bad+=1; continue
    bad+=d["bus_pending_total"]>0
    bad+=sum(1 for p in d["partition_owners"] if p["owner"]==d["replica"] and (p["correlator_lag"] or 0)>0)
print(bad)')
        [ "$lagging" = 0 ] && break
        sleep 0.25
    done
    t1=$(date +%s.%N)
    done_n=$(psql_q "$url" "SELECT COUNT(*) FROM evidence")
    cpu=0; rss=""
    for i in $(seq 1 "$n"); do
        cpu=$((cpu + $(cpu_ticks "${pids[$i]}") - c0[$i]))
        rss="$rss r$i=$(rss_mb "${pids[$i]}")MB"
    done
    svc=$(( $(svc_ticks) - s0 ))
    incidents=$(psql_q "$url" "SELECT COUNT(*) FROM incidents")
    python3 - "$n" "$accepted" "$sent" "$done_n" "$t0" "$t1" "$cpu" "$(getconf CLK_TCK)" "$rss" "$svc" "$incidents" "$load" <<'EOF'
import sys
n, acc, sent, done, t0, t1, cpu, hz, rss, svc, inc, load = sys.argv[1:]
el = float(t1) - float(t0)
per = lambda ticks: int(ticks) / int(hz) / max(int(done), 1) * 1e5
print(f"replicas {n}: accepted {int(acc):,} ev/s; end-to-end (stored + correlated) {int(done)/el:,.0f} ev/s "
      f"({int(done):,} events in {el:.1f} s, {inc} incidents); CPU per 100k events: replicas {per(cpu):.2f} s, "
      f"PostgreSQL+NATS {per(svc):.2f} s; peak RSS{rss}")
print(f"  sender: {load}")
if int(done) != int(sent):
    print(f"  MISMATCH: {int(sent):,} events acknowledged, {int(done):,} stored")
EOF
    if [ "$n" = 3 ]; then
        for k in $(seq 1 "$FAILOVERS"); do
            # The replica owning most partitions dies.
            victim=$(curl -sf http://127.0.0.1:18601/api/v1/cluster | python3 -c '
import json,sys,collections
d=json.load(sys.stdin); c=collections.Counter(p["owner"] for p in d["partition_owners"] if p["owner"])
print(c.most_common(1)[0][0][1:])')
            watcher=$(( victim % 3 + 1 ))
            before=$(owned_by $((18600 + watcher)))
            tk=$(date +%s.%N)
            kill -9 "${pids[$victim]}"
            while :; do
                read -r owned total owners < <(owned_by $((18600 + watcher))) || true
                if [ "${owned:-0}" = "$PARTITIONS" ] && [[ " $owners " != *" r$victim "* ]]; then break; fi
                sleep 0.05
            done
            tf=$(date +%s.%N)
            python3 -c "print(f'failover {$k}: killed r$victim ($before) → all $PARTITIONS partitions owned again in {$tf - $tk:.2f} s')"
            start_replica "$url" "$prefix" "$victim"
            sleep 8
        done
        # Graceful: SIGTERM hands partitions off without waiting for lease expiry.
        victim=1; watcher=2
        tk=$(date +%s.%N)
        kill -TERM "${pids[$victim]}"
        while :; do
            read -r owned total owners < <(owned_by $((18600 + watcher))) || true
            if [ "${owned:-0}" = "$PARTITIONS" ] && [[ " $owners " != *" r$victim "* ]]; then break; fi
            sleep 0.05
        done
        tf=$(date +%s.%N)
        python3 -c "print(f'graceful stop (SIGTERM r$victim) → all $PARTITIONS partitions owned by the others in {$tf - $tk:.2f} s')"
    fi
    for i in $(seq 1 "$n"); do kill "${pids[$i]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql_q "$PG_ADMIN" "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
done
