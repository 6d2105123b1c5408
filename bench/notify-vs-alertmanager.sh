#!/usr/bin/env bash
# Notifications sent by Prometheus Alertmanager vs Tapio for the same alert stream, and the
# time from the first alert to the first notification of each. Side by side, on this host:
#
#   a counting webhook receiver (bench/notify_bench.py receive)
#   one real Alertmanager (Debian package prometheus-alertmanager), default timers
#   two tapio-servers fed by that Alertmanager, each notifying one webhook receiver
#   a driver playing the scenario into Alertmanager's POST /api/v2/alerts like Prometheus
#
# Alertmanager config (written below): route {receiver: counter, group_by: [alertname,
# namespace]} with the DEFAULT timers (group_wait 30s, group_interval 5m, repeat_interval
# 4h); receiver `counter` has two webhooks: the counting receiver at /am (what is counted
# for Alertmanager) and tapio "grouped" (it sees exactly what Alertmanager sends, batched
# by those timers). A sibling route (continue: true, group_by ['...'], group_wait 0s,
# group_interval 1s) feeds tapio "direct" each alert change within a second: how one
# would point Alertmanager at Tapio, which does its own grouping. Neither changes what
# Alertmanager sends to /am. Each Tapio notifies one `webhook` receiver through one
# route with no filters (all severities, P1-P4), since Alertmanager notifies every
# severity too; [dispatch] is left at its defaults.
#
# Usage:  bench/notify-vs-alertmanager.sh [outage|single]
# Env:    RUN_SECONDS=N   run length after the first push (default: the scenario's, 365 s;
#                         Tapio resolves an incident 5 min after its last symptom, so
#                         RUN_SECONDS=560 also counts Tapio's resolutions of `outage`)
#         CUTOFF=N        the "first N s" column (default 365)
#         TAPIO_BIN_DIR=D use tapio-server from D instead of building (cargo build
#                         --release -p tapio-server -p tapio-cli); TAPIO_COMMIT=C
#                         records which commit it was built from
#         KEEP=1          also keep the Tapio stores and Alertmanager data (logs,
#                         pushes, notifications and results.json are always kept)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
HELPER="$ROOT/bench/notify_bench.py"
SCENARIO="${1:-outage}"
AM_BIN="${AM_BIN:-prometheus-alertmanager}"

command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }
command -v "$AM_BIN" >/dev/null || {
    echo "$AM_BIN not found (apt-get install prometheus-alertmanager)" >&2; exit 1; }

if [[ -n "${TAPIO_BIN_DIR:-}" ]]; then
    BIN="$TAPIO_BIN_DIR"
    BUILD="prebuilt ($BIN), commit ${TAPIO_COMMIT:-not given: set TAPIO_COMMIT}"
else
    cargo build --release -p tapio-server -p tapio-cli
    BIN="$ROOT/target/release"
    BUILD="working tree at $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    [[ -n "$(git status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]] \
        && BUILD="$BUILD with uncommitted changes"
fi
[[ -x "$BIN/tapio-server" ]] || { echo "no $BIN/tapio-server" >&2; exit 1; }

RUN_SECONDS="${RUN_SECONDS:-$(python3 "$HELPER" run-seconds "$SCENARIO")}"
CUTOFF="${CUTOFF:-365}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tapio-notify-bench.XXXXXX")"
read -r P_RECV P_AM P_DIRECT P_GROUPED < <(python3 "$HELPER" ports 4)

PIDS=()
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ -z "${KEEP:-}" ]]; then
        rm -rf "$WORK/tapio-direct/data" "$WORK/tapio-grouped/data" "$WORK/am-data"
    fi
    [[ $rc -ne 0 ]] && echo "failed; logs in $WORK" >&2
    exit $rc
}
trap cleanup EXIT
trap "exit 130" INT TERM

# --- counting receiver ---------------------------------------------------------------
python3 "$HELPER" receive --port "$P_RECV" --log "$WORK/notifications.jsonl" \
    >"$WORK/receiver.log" 2>&1 &
PIDS+=($!)

# --- two Tapio servers ---------------------------------------------------------------
for name in direct grouped; do
    port_var="P_${name^^}"
    dir="$WORK/tapio-$name"
    mkdir -p "$dir/data" "$dir/config"
    cat >"$dir/notify.toml" <<EOF
# One webhook receiver, one route with no filters: every severity (P1-P4), every namespace.
[[receiver]]
name = "counter"
kind = "webhook"
url = "http://127.0.0.1:$P_RECV/tapio-$name"

[[route]]
receivers = ["counter"]
EOF
    "$BIN/tapio-server" --listen "127.0.0.1:${!port_var}" --data-dir "$dir/data" \
        --config-dir "$dir/config" --log-format logfmt --notify "$dir/notify.toml" \
        >"$dir/server.log" 2>&1 &
    PIDS+=($!)
done

# --- Alertmanager --------------------------------------------------------------------
mkdir -p "$WORK/am-data"
cat >"$WORK/alertmanager.yml" <<EOF
route:
  receiver: counter
  group_by: [alertname, namespace]
  # default timers: group_wait 30s, group_interval 5m, repeat_interval 4h
  routes:
    # Tapio "direct": every alert change within a second (Tapio groups by itself).
    - receiver: tapio-direct
      group_by: ['...']
      group_wait: 0s
      group_interval: 1s
      repeat_interval: 4h
      continue: true
    # What Alertmanager itself notifies, default timers inherited from the root.
    - receiver: counter
receivers:
  - name: counter
    webhook_configs:
      - url: http://127.0.0.1:$P_RECV/am
        send_resolved: true
      # Tapio "grouped": exactly the notifications Alertmanager sends.
      - url: http://127.0.0.1:$P_GROUPED/api/v1/alertmanager
        send_resolved: true
  - name: tapio-direct
    webhook_configs:
      - url: http://127.0.0.1:$P_DIRECT/api/v1/alertmanager
        send_resolved: true
EOF
"$AM_BIN" --config.file="$WORK/alertmanager.yml" --storage.path="$WORK/am-data" \
    --web.listen-address="127.0.0.1:$P_AM" --cluster.listen-address= \
    --log.level=info >"$WORK/alertmanager.log" 2>&1 &
PIDS+=($!)

python3 "$HELPER" wait "http://127.0.0.1:$P_RECV/" "http://127.0.0.1:$P_AM/-/ready" \
    "http://127.0.0.1:$P_DIRECT/ready" "http://127.0.0.1:$P_GROUPED/ready"

echo "work dir $WORK"
echo "alertmanager $("$AM_BIN" --version 2>&1 | head -1 | sed 's/alertmanager, //')" \
     "on :$P_AM; tapio-server ($BIN) direct :$P_DIRECT, grouped :$P_GROUPED;" \
     "receiver :$P_RECV"
python3 "$HELPER" drive --am "http://127.0.0.1:$P_AM" --scenario "$SCENARIO" \
    --log "$WORK/pushes.jsonl" --t0-file "$WORK/t0" \
    --notifications "$WORK/notifications.jsonl" --run-seconds "$RUN_SECONDS" &
PIDS+=($!)
wait $!   # in the background so that INT/TERM run the cleanup at once
sleep 2   # deliveries in flight

python3 "$HELPER" report --dir "$WORK" --scenario "$SCENARIO" --cutoff "$CUTOFF" \
    --meta "tapio_server=$BIN/tapio-server" \
    --meta "tapio_build=$BUILD" \
    --meta "alertmanager=$("$AM_BIN" --version 2>&1 | head -1)" \
    --meta "run_seconds=$RUN_SECONDS" \
    --column "alertmanager,/am" \
    --column "tapio-direct,/tapio-direct,http://127.0.0.1:$P_DIRECT" \
    --column "tapio-grouped,/tapio-grouped,http://127.0.0.1:$P_GROUPED"
