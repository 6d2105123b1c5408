#!/usr/bin/env bash
# Scale-out benchmark (docs/scale-out.md): release tapio-server replicas on this host,
# sharing one PostgreSQL and one NATS JetStream (scripts/test-services.sh), driven by
# `tapio-loadgen --workload cluster` (the stream tapio-corrbench measures: a Kubernetes
# snapshot, healthy churn, noise, a failure episode every 5,000 chunks) from WORKERS
# senders, each the slice of one of CLUSTERS clusters (a cluster is one partition).
#
# 1. Role costs: 2 replicas, 1 partition, senders talk only to the replica that does not
#    own it. One replica then only ingests (HTTP + publish), the other only stores and
#    correlates: the CPU per 100k events of each role, and the end-to-end rate of ONE
#    partition (one cluster's ceiling on this host).
# 2. For 1, 2 and 3 replicas, senders spread over all of them:
#    - accepted events/s (acknowledged to the senders, i.e. durable on the bus);
#    - end-to-end events/s: events stored in PostgreSQL and correlated, divided by the
#      time from the first send until the bus and every partition's correlator caught up;
#    - CPU seconds per 100k events: replicas (summed) and PostgreSQL + NATS; peak RSS;
#    - a MISMATCH line if the events stored differ from the events acknowledged.
# 3. With 3 replicas, FAILOVERS times: SIGKILL the replica owning most partitions, time
#    until its partitions are owned by the others and until their warm-ups are done;
#    then the same for a graceful SIGTERM.
#
#   bench/scale-out.sh                       # 20 s of load per run, 8 senders, 8 clusters
#   SECONDS_LOAD=30 CLUSTERS=16 WORKERS=16 bench/scale-out.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_LOAD=${SECONDS_LOAD:-20}
CLUSTERS=${CLUSTERS:-8}
WORKERS=${WORKERS:-8}
PODS=${PODS:-1000} # per sender's slice of its cluster
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
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# PostgreSQL's and NATS's CPU (all their processes; backends that exited in between are
# missed, but the replicas keep their connections open).
svc_ticks() {
    local t=0 p
    for p in $(pgrep -x postgres; pgrep -x nats-server); do t=$((t + $(cpu_ticks "$p" 2>/dev/null || echo 0))); done
    echo "$t"
}
# CPU of a process's threads whose name starts with $2 (e.g. the partitions' correlators).
thread_ticks() {
    local t=0 d
    for d in /proc/"$1"/task/*; do
        case "$(cat "$d/comm" 2>/dev/null)" in "$2"*) t=$((t + $(awk '{print $14 + $15}' "$d/stat"))) ;; esac
    done
    echo "$t"
}
rss_mb() { awk '/VmHWM/ {print int($2/1024)}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)

new_run() { # partitions → sets db, url, prefix, parts; clears pids
    db="bench_$(date +%s%N)"
    psql_q "$PG_ADMIN" "CREATE DATABASE $db"
    url="${PG_ADMIN%/*}/$db"
    prefix="bench$RANDOM"
    parts=$1
    pids=()
}

end_run() {
    local i
    for i in "${!pids[@]}"; do kill "${pids[$i]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql_q "$PG_ADMIN" "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
    scripts/nats-prune.py --name "${prefix^^}_EVIDENCE" >/dev/null || true
}

start_replica() { # index
    local i=$1
    mkdir -p "$work/r$i"
    "$bin/tapio-server" --listen "127.0.0.1:$((18600 + i))" --data-dir "$work/r$i/db" \
        --config-dir "$work/r$i/cfg" --database-url "$url" --nats-url "$NATS" --nats-prefix "$prefix" \
        --partitions "$parts" --lease-ttl "$TTL" --replica-id "r$i" --kube off \
        --log-format logfmt --bus-max-bytes 2Gi --shed-capacity 1000000000 2>>"$work/r$i.log" &
    pids[$i]=$!
    for _ in $(seq 200); do curl -sf "http://127.0.0.1:$((18600 + i))/ready" >/dev/null && return; sleep 0.05; done
    echo "replica r$i did not start:"; tail -5 "$work/r$i.log"; exit 1
}

cluster_json() { curl -sf "http://127.0.0.1:$((18600 + $1))/api/v1/cluster"; }

owned_by() { # replica index → "partitions owned, total, owners"
    cluster_json "$1" | python3 -c '
import json,sys
d=json.load(sys.stdin); ps=d["partition_owners"]
print(sum(1 for p in ps if p["owned"]), len(ps), " ".join(sorted({p["owner"] or "-" for p in ps})))'
}

wait_all_owned() { # replica index to ask
    local owned
    for _ in $(seq 150); do
        read -r owned _ _ < <(owned_by "$1") || true
        [ "${owned:-0}" = "$parts" ] && return
        sleep 0.2
    done
    echo "partitions not all owned after 30 s"; exit 1
}

# Caught up: nothing waits on the bus and every partition's owner has correlated all it
# stored (each replica reports its own partitions' lag; the lease loop refreshes that every
# ttl/4; only views refreshed after the load ended count). Cheap to ask, unlike counting
# rows while the store is busy.
wait_caught_up() { # replica indexes...
    local lagging i since
    since=$(date +%s.%N)
    for _ in $(seq 4800); do
        lagging=$(for i in "$@"; do cluster_json "$i" || echo '{}'; echo; done | python3 -c '
import json,sys,datetime
since=float(sys.argv[1])
bad=0
for line in sys.stdin:
    line=line.strip()
    if not line: continue
    d=json.loads(line)
    if "replica" not in d or not d.get("updated_at"): bad+=1; continue
    if datetime.datetime.fromisoformat(d["updated_at"].replace("Z","+00:00")).timestamp() < since: bad+=1; continue
    bad+=d["bus_pending_total"] is None or d["bus_pending_total"]>0
    bad+=sum(1 for p in d["partition_owners"] if p["owner"]==d["replica"] and (p["correlator_lag"] or 0)>0)
print(bad)' "$since")
        [ "$lagging" = 0 ] && return
        sleep 0.25
    done
    echo "not caught up after 20 minutes"; exit 1
}

load() { # comma-separated servers, clusters → prints the sender's report on one line
    "$bin/tapio-loadgen" --server "$1" --mode throughput --batch 500 --workers "$WORKERS" \
        --clusters "$2" --seconds "$SECONDS_LOAD" --workload cluster --pods "$PODS" \
        --nodes "$NODES" | tr '\n' ' '
}
sent_of() { echo "$1" | sed -E 's/throughput: ([0-9]+) events.*/\1/'; }
rate_of() { echo "$1" | sed -E 's/.* = ([0-9]+) events\/s.*/\1/'; }

check_stored() { # acknowledged
    local stored
    stored=$(psql_q "$url" "SELECT COUNT(*) FROM evidence")
    [ "$stored" = "$1" ] || echo "  MISMATCH: $1 events acknowledged, $stored stored"
    echo "$stored" >"$work/stored"
}

# Stop replica $3 with signal $2; time until its partitions are owned by the others
# (kill → owned) and until their warm-ups are done (→ correlating again).
take_over() {
    local label=$1 sig=$2 victim=$3 i owned owners
    local watcher=$((victim % 3 + 1))
    local mine
    mine=$(cluster_json "$watcher" |
        python3 -c "import json,sys; print(sum(1 for p in json.load(sys.stdin)['partition_owners'] if p['owner']=='r$victim'))")
    declare -A lines0=()
    for i in 1 2 3; do [ "$i" = "$victim" ] || lines0[$i]=$(wc -l <"$work/r$i.log"); done
    local tk tf tw
    tk=$(date +%s.%N)
    kill "-$sig" "${pids[$victim]}"
    while :; do
        read -r owned _ owners < <(owned_by "$watcher") || true
        if [ "${owned:-0}" = "$parts" ] && [[ " $owners " != *" r$victim "* ]]; then break; fi
        sleep 0.05
    done
    tf=$(date +%s.%N)
    warm() { for i in "${!lines0[@]}"; do tail -n +"$((lines0[$i] + 1))" "$work/r$i.log"; done | grep 'partition warm-up done' || true; }
    for _ in $(seq 1200); do [ "$(warm | wc -l)" -ge "$mine" ] && break; sleep 0.05; done
    tw=$(date +%s.%N)
    warm | python3 -c "
import re,sys
ev=[int(m) for m in re.findall(r'events=(\d+)', sys.stdin.read())]
print(f'$label of r$victim ($mine partitions): owned by the others in {$tf - $tk:.2f} s; '
      f'warmed up and correlating in {$tw - $tk:.2f} s (replayed {sum(ev):,} stored events, largest partition {max(ev, default=0):,})')"
}

echo "scale-out bench: $WORKERS senders × $PODS pods / $NODES nodes, $CLUSTERS clusters, $PARTITIONS partitions, ${SECONDS_LOAD}s load, lease ttl $TTL, $(nproc) cores"

# 1. Role costs on one partition.
new_run 1
start_replica 1
start_replica 2
wait_all_owned 1
owner=$(cluster_json 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["partition_owners"][0]["owner"][1:])')
ingest=$((3 - owner))
c_in=$(cpu_ticks "${pids[$ingest]}"); c_own=$(cpu_ticks "${pids[$owner]}"); s0=$(svc_ticks)
c_corr=$(thread_ticks "${pids[$owner]}" correlator-p)
t0=$(date +%s.%N)
report=$(load "http://127.0.0.1:$((18600 + ingest))" 1)
wait_caught_up 1 2
t1=$(date +%s.%N)
check_stored "$(sent_of "$report")"
python3 - "$(cat "$work/stored")" "$t0" "$t1" "$hz" "$(rate_of "$report")" \
    $(($(cpu_ticks "${pids[$ingest]}") - c_in)) $(($(cpu_ticks "${pids[$owner]}") - c_own)) \
    $(($(svc_ticks) - s0)) "$(rss_mb "${pids[$owner]}")" \
    $(($(thread_ticks "${pids[$owner]}" correlator-p) - c_corr)) <<'EOF'
import sys
done, t0, t1, hz, acc, c_in, c_own, svc, rss, c_corr = sys.argv[1:]
done, el, hz = int(done), float(t1) - float(t0), int(hz)
per = lambda t: int(t) / hz / max(done, 1) * 1e5
print(f"one partition (one cluster), 2 replicas: accepted {int(acc):,} ev/s; end-to-end {done / el:,.0f} ev/s "
      f"({done:,} events in {el:.1f} s); CPU per 100k events: ingest replica {per(c_in):.2f} s, "
      f"owner (store + correlate) {per(c_own):.2f} s, of which its correlator thread {per(c_corr):.2f} s "
      f"(reads back from PostgreSQL, decodes, correlates: one thread per partition), PostgreSQL+NATS {per(svc):.2f} s; "
      f"owner peak RSS {rss} MB")
EOF
end_run

# 2. 1, 2 and 3 replicas, senders spread over them.
for n in 1 2 3; do
    new_run "$PARTITIONS"
    for i in $(seq 1 "$n"); do start_replica "$i"; done
    wait_all_owned 1
    servers=$(for i in $(seq 1 "$n"); do printf 'http://127.0.0.1:%s,' $((18600 + i)); done)
    declare -A c0=()
    for i in $(seq 1 "$n"); do c0[$i]=$(cpu_ticks "${pids[$i]}"); done
    s0=$(svc_ticks)
    t0=$(date +%s.%N)
    report=$(load "${servers%,}" "$CLUSTERS")
    wait_caught_up $(seq 1 "$n")
    t1=$(date +%s.%N)
    check_stored "$(sent_of "$report")"
    cpu=0; rss=""
    for i in $(seq 1 "$n"); do
        cpu=$((cpu + $(cpu_ticks "${pids[$i]}") - c0[$i]))
        rss="$rss r$i=$(rss_mb "${pids[$i]}")MB"
    done
    python3 - "$n" "$(rate_of "$report")" "$(cat "$work/stored")" "$t0" "$t1" "$cpu" "$hz" "$rss" \
        $(($(svc_ticks) - s0)) "$(psql_q "$url" "SELECT COUNT(*) FROM incidents")" "$report" <<'EOF'
import sys
n, acc, done, t0, t1, cpu, hz, rss, svc, inc, report = sys.argv[1:]
done, el, hz = int(done), float(t1) - float(t0), int(hz)
per = lambda t: int(t) / hz / max(done, 1) * 1e5
print(f"replicas {n}: accepted {int(acc):,} ev/s; end-to-end (stored + correlated) {done / el:,.0f} ev/s "
      f"({done:,} events in {el:.1f} s, {inc} incidents); CPU per 100k events: replicas {per(cpu):.2f} s, "
      f"PostgreSQL+NATS {per(svc):.2f} s; peak RSS{rss}")
print(f"  sender: {report}")
EOF
    # 3. Failover and graceful hand-off.
    if [ "$n" = 3 ]; then
        for k in $(seq 1 "$FAILOVERS"); do
            victim=$(cluster_json 1 | python3 -c '
import json,sys,collections
d=json.load(sys.stdin); c=collections.Counter(p["owner"] for p in d["partition_owners"] if p["owner"])
print(c.most_common(1)[0][0][1:])')
            take_over "failover $k: SIGKILL" KILL "$victim"
            start_replica "$victim"
            sleep 8
        done
        take_over "graceful stop: SIGTERM" TERM 1
    fi
    end_run
done
