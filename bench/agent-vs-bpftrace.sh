#!/usr/bin/env bash
# Side by side in one run: tapio-agent and bpftrace watch the same steady stream of refused
# TCP connects (tapio-refuse), and we compare CPU per event, lost events, RSS and size.
#
#   bench/agent-vs-bpftrace.sh                 # 20,000 connects/s for 30 s
#   RATE=5000 DURATION=10 bench/agent-vs-bpftrace.sh
#
# Needs root, bpftrace (apt-get install bpftrace) and tracefs (mounted if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${RATE:-20000}"
DURATION="${DURATION:-30}"
command -v bpftrace >/dev/null || { echo "bpftrace is missing: apt-get install -y bpftrace" >&2; exit 2; }
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
cargo build --release --quiet -p tapio-agent -p tapio-bench
T=target/release
work="$(mktemp -d)"
trap 'kill $APID $BPID 2>/dev/null || true; rm -rf "$work"' EXIT
PORT="$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')"
APORT="$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')"
echo '{"thresholds":{"stats_interval_seconds":2}}' > "$work/agent.json"

"$T/tapio-agent" --sink "file:$work/agent.jsonl" --spool-dir "$work/spool" \
    --listen "127.0.0.1:$APORT" --observers network --config "$work/agent.json" \
    2> "$work/agent.log" &
APID=$!
# bpftrace: every refused connect (SYN_SENT -> CLOSE) of the same tracepoint, as JSON.
bpftrace -f json -o "$work/bpftrace.json" -e '
tracepoint:sock:inet_sock_set_state /args->oldstate == 2 && args->newstate == 7/ {
  printf("{\"pid\":%d,\"comm\":\"%s\",\"sport\":%d,\"dport\":%d,\"daddr\":\"%s\"}\n",
         pid, comm, args->sport, args->dport, ntop(args->daddr));
}' &
BPID=$!
for _ in $(seq 100); do
    curl -sf "127.0.0.1:$APORT/health" >/dev/null 2>&1 && grep -q attached_probes "$work/bpftrace.json" 2>/dev/null && break
    sleep 0.2
done
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK="$(getconf CLK_TCK)"
a0=$(cpu $APID); b0=$(cpu $BPID)
load="$("$T/tapio-refuse" --rate "$RATE" --seconds "$DURATION" --port "$PORT")"
sleep 4   # let both drain and the agent publish its kernel counters
a1=$(cpu $APID); b1=$(cpu $BPID)
metric() { curl -s "127.0.0.1:$APORT/metrics" | awk -v m="$1" 'index($0, m) == 1 {s += $NF} END {print s + 0}'; }
agent_seen=$(metric 'tapio_agent_kernel_records_total{observer="network",kind="refused"}')
agent_ring_lost=$(metric 'tapio_agent_kernel_drops{observer="network",reason="ringbuf_full"}')
agent_rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$APID/status")
kill -INT $BPID; wait $BPID 2>/dev/null || true
bt_seen=$(grep -c "\\\\\"dport\\\\\":$PORT," "$work/bpftrace.json" || true)
bt_lost=$( (grep -o '"lost_events"[^}]*' "$work/bpftrace.json" || true) | (grep -o '[0-9]\+' || true) | awk '{s += $1} END {print s + 0}')
cp "$T/tapio-agent" "$work/agent-stripped"; strip "$work/agent-stripped"
size=$(stat -c %s "$work/agent-stripped")
refused=$(echo "$load" | python3 -c 'import json,sys;print(json.load(sys.stdin)["refused"])')
python3 - "$refused" "$agent_seen" "$agent_ring_lost" "$a0" "$a1" "$bt_seen" "$bt_lost" "$b0" "$b1" "$TICK" "$agent_rss_kb" "$size" "$load" <<'PY'
import json, sys
refused, a_seen, a_lost, a0, a1, b_seen, b_lost, b0, b1, tick, rss, size = map(float, sys.argv[1:13])
load = json.loads(sys.argv[13])
a_cpu, b_cpu = (a1 - a0) / tick, (b1 - b0) / tick
per = lambda cpu, n: cpu / n * 100_000 if n else float("nan")
res = {
  "load": load,
  "agent": {"events_seen": int(a_seen), "lost": int(max(refused - a_seen, 0)), "ringbuf_lost": int(a_lost),
            "cpu_seconds": round(a_cpu, 3), "cpu_s_per_100k": round(per(a_cpu, a_seen), 4),
            "peak_rss_mb": round(rss / 1024, 1), "stripped_binary_mb": round(size / 1048576, 2)},
  "bpftrace": {"events_seen": int(b_seen), "lost": int(max(refused - b_seen, 0)), "reported_lost": int(b_lost),
               "cpu_seconds": round(b_cpu, 3), "cpu_s_per_100k": round(per(b_cpu, b_seen), 4)},
}
res["agent_cpu_per_event_vs_bpftrace"] = round(per(a_cpu, a_seen) / per(b_cpu, b_seen), 3) if b_seen and b_cpu else None
print(json.dumps(res, indent=2))
PY
