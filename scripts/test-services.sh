#!/usr/bin/env bash
# Start (idempotently) the throwaway PostgreSQL and NATS JetStream the scale-out tests use,
# and print their URLs. The tests call this themselves (crates/*/tests/support/services.rs),
# so `cargo nextest run` needs no manual step; `.ci/run` only installs the packages.
#
#   PostgreSQL 15, trust auth, 127.0.0.1:55432   (postgres://postgres@127.0.0.1:55432/postgres)
#   nats-server -js,           127.0.0.1:54222   (nats://127.0.0.1:54222), monitoring :58222
#
# Data lives under $TAPIO_TEST_SERVICES (default /var/tmp/tapio-test-services); `stop` ends both.
set -euo pipefail
ROOT=${TAPIO_TEST_SERVICES:-/var/tmp/tapio-test-services}
PG_PORT=55432
NATS_PORT=54222
NATS_MON=58222
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

mkdir -p "$ROOT"
exec 9>"$ROOT/.lock"
flock 9

if [ "${1:-start}" = stop ]; then
    [ -n "$PG_BIN" ] && [ -d "$ROOT/pg/data" ] &&
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$ROOT/pg/data" -m fast stop >/dev/null 2>&1 || true
    [ -f "$ROOT/nats.pid" ] && kill "$(cat "$ROOT/nats.pid")" 2>/dev/null || true
    exit 0
fi

if [ -z "$PG_BIN" ]; then
    echo "PostgreSQL is not installed: apt-get install postgresql (or run .ci/run)" >&2
    exit 1
fi
if ! command -v nats-server >/dev/null; then
    echo "nats-server is not installed: apt-get install nats-server (or run .ci/run)" >&2
    exit 1
fi

# PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
if ! "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p $PG_PORT; then
    install -d -o postgres -g postgres "$ROOT/pg"
    if [ ! -f "$ROOT/pg/data/PG_VERSION" ]; then
        runuser -u postgres -- "$PG_BIN/initdb" -D "$ROOT/pg/data" -A trust -U postgres >/dev/null
    fi
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$ROOT/pg/data" -l "$ROOT/pg/log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $ROOT/pg -c max_connections=400 -c fsync=on" \
        start >/dev/null 9>&-
fi

if ! curl -fsS "http://127.0.0.1:$NATS_MON/healthz" >/dev/null 2>&1; then
    mkdir -p "$ROOT/nats"
    setsid nats-server -js -a 127.0.0.1 -p $NATS_PORT -m $NATS_MON -sd "$ROOT/nats" \
        >"$ROOT/nats.log" 2>&1 </dev/null 9>&- &
    echo $! >"$ROOT/nats.pid"
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$NATS_MON/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
fi
# Every test makes its own database (t_<ulid>); drop those older than an hour so repeated
# runs on one machine do not fill its disk (no test runs that long).
runuser -u postgres -- "$PG_BIN/psql" -h 127.0.0.1 -p $PG_PORT -U postgres -Atq -c \
    "SELECT datname FROM pg_database WHERE datname LIKE 't\_%'
       AND (pg_stat_file('base/' || oid || '/PG_VERSION')).modification < now() - interval '1 hour'" \
    2>/dev/null | while read -r db; do
    runuser -u postgres -- "$PG_BIN/psql" -h 127.0.0.1 -p $PG_PORT -U postgres -q \
        -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
done

curl -fsS "http://127.0.0.1:$NATS_MON/healthz" >/dev/null || {
    echo "nats-server did not start; see $ROOT/nats.log" >&2
    exit 1
}
# Likewise streams: each reserves its max bytes of the server's storage, and left behind
# they exhaust it ("insufficient storage resources available" when a replica starts).
"$(dirname "$0")/nats-prune.py" --older-than 3600 >/dev/null 2>&1 || true

echo "postgres://postgres@127.0.0.1:$PG_PORT/postgres"
echo "nats://127.0.0.1:$NATS_PORT"
