#!/usr/bin/env bash
# API fuzz: schemathesis (from PyPI, in a venv under the user's cache dir) generates
# requests from the OpenAPI document tapio-server serves (GET /api/v1/openapi.json) —
# schema-valid and schema-violating ones, plus stateful sequences that follow the
# document's links (declare an incident, then ack / resolve / note it, ...) — against a
# debug server on a loopback port with a temporary data dir.
#
# Two runs, each on a fresh server:
#   auth  --auth-dir with an admin user made by `tapio auth add-user`: every handler is
#         reached with a valid token, and requests without / with a wrong token must be
#         401 (checks ignored_auth, missing_required_header).
#   open  no --auth-dir: the bodies' `by` reach the handlers (with a token the
#         authenticated user replaces it).
# Checks: not_a_server_error, status_code_conformance, content_type_conformance,
# response_headers_conformance, response_schema_conformance (the document describes
# every answer, errors included), unsupported_method and allow_header_conformance (405
# with Allow). Rate limits are off on the fuzzed servers (0) so the generated requests
# reach the handlers rather than 429. Each run stops after FUZZ_MAX_TIME seconds (100).
#
# The server gets a kubeconfig naming a loopback port nothing listens on, not a cluster:
# with --kube off, GET /api/v1/pods answers every valid request with its designed 503
# `kubernetes_not_configured`, which a 5xx check cannot tell from a failure; with an
# unreachable cluster the pod index is empty and the route answers 200. Nothing leaves
# the machine.
#
# Prints, per run and in total, the requests the server answered (its own
# tapio_http_requests_total, so every request of every check counts) and how many were
# 5xx; exits non-zero on any 5xx, any schemathesis failure, or a server that died.
#
#   bench/api-fuzz.sh                        # both runs, 100 s each
#   MAX_EXAMPLES=200 FUZZ_RUNS=open bench/api-fuzz.sh
#   SEED=123 bench/api-fuzz.sh               # reproduce a run (the seed is printed)
#   TAPIO_BIN_DIR=DIR bench/api-fuzz.sh      # prebuilt tapio-server and tapio
# Binaries: TAPIO_BIN_DIR, else ${CARGO_TARGET_DIR:-target}/debug, built with cargo unless
# CI=true finds both there already (.ci/run calls this right after the tests built them).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

ST_VERSION=4.32.5
MAX_EXAMPLES="${MAX_EXAMPLES:-40}"
FUZZ_RUNS="${FUZZ_RUNS:-auth open}"
# Per run; schemathesis stops generating when it is spent (the run still passes).
FUZZ_MAX_TIME="${FUZZ_MAX_TIME:-100}"
SEED="${SEED:-$(python3 -c 'import random; print(random.randrange(1, 2**31))')}"

venv="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/tapio-schemathesis"
st="$venv/bin/schemathesis"
if ! "$st" --version 2>/dev/null | grep -qF "$ST_VERSION"; then
    echo "installing schemathesis $ST_VERSION into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

if [[ -n "${TAPIO_BIN_DIR:-}" ]]; then
    BIN="$TAPIO_BIN_DIR"
else
    target="${CARGO_TARGET_DIR:-target}"
    [[ "$target" = /* ]] || target="$root/$target"
    BIN="$target/debug"
    if [[ "${CI:-}" == true && -x "$BIN/tapio-server" && -x "$BIN/tapio" ]]; then
        echo "using the debug binaries the tests built: $BIN"
    else
        cargo build --quiet --locked -p tapio-server -p tapio-cli
    fi
fi
for b in tapio-server tapio; do
    [[ -x "$BIN/$b" ]] || { echo "api-fuzz: $BIN/$b is missing" >&2; exit 2; }
done

work=$(mktemp -d)
pid=""
cleanup() {
    if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# Two distinct free loopback ports (both held while they are picked).
free_ports() {
    python3 -c '
import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0))
b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])'
}

# Answers by route, method and status class, from the server's /metrics.
breakdown() {
    curl -sf "http://127.0.0.1:$1/metrics" | python3 -c '
import collections, re, sys
by = collections.defaultdict(collections.Counter)
for line in sys.stdin:
    m = re.match(r"tapio_http_requests_total\{(.*)\} (\S+)$", line)
    if m:
        labels = dict(re.findall(r"(\w+)=\"([^\"]*)\"", m.group(1)))
        method = labels["method"]
        key = method + " " + labels["route"] if method in ("GET", "POST") else "other methods"
        by[key][labels["status"]] += int(float(m.group(2)))
# A method a route does not serve (only 405 answers) joins "other methods".
for key in [k for k in by if k != "other methods" and set(by[k]) == {"405"}]:
    by["other methods"].update(by.pop(key))
for key in sorted(by):
    print("    %-44s %s" % (key, " ".join("%s:%d" % kv for kv in sorted(by[key].items()))))'
}

# Requests answered, and 5xx among them, from the server's /metrics.
count() {
    curl -sf "http://127.0.0.1:$1/metrics" | python3 -c '
import re, sys
total = err = 0
for line in sys.stdin:
    m = re.match(r"tapio_http_requests_total\{(.*)\} (\S+)$", line)
    if m:
        n = int(float(m.group(2)))
        total += n
        if re.search(r"status=\"5\d\d\"", m.group(1)):
            err += n
print(total, err)'
}

fail=0
passed=0
failed=0
sum_requests=0
sum_5xx=0
sum_cases=0
t_start=$(date +%s)
echo "schemathesis $ST_VERSION, seed $SEED, max examples $MAX_EXAMPLES per operation, runs: $FUZZ_RUNS"
for run in $FUZZ_RUNS; do
    d="$work/$run"
    mkdir -p "$d/cfg"
    # The server's port, and one nothing listens on for the kubeconfig.
    read -r port nobody < <(free_ports)
    cat >"$d/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: nowhere, cluster: {server: "http://127.0.0.1:$nobody"}}]
users: [{name: nobody, user: {}}]
contexts: [{name: nowhere, context: {cluster: nowhere, user: nobody}}]
current-context: nowhere
EOF
    args=(--listen "127.0.0.1:$port" --data-dir "$d/db" --config-dir "$d/cfg"
        --log-format logfmt --kubeconfig "$d/kubeconfig"
        --rate-limit-token 0 --rate-limit-client 0 --rate-limit-unauthenticated 0)
    headers=()
    checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method,allow_header_conformance
    case "$run" in
    auth)
        mkdir -p "$d/auth"
        # The CLI prints the token alone on stdout (the note goes to stderr).
        token=$("$BIN/tapio" auth add-user fuzz --role admin --auth-dir "$d/auth" 2>/dev/null)
        args+=(--auth-dir "$d/auth")
        headers=(-H "Authorization: Bearer $token")
        checks+=,ignored_auth,missing_required_header
        ;;
    open) ;;
    *) echo "api-fuzz: unknown run $run (auth, open)" >&2; exit 2 ;;
    esac
    "$BIN/tapio-server" "${args[@]}" 2>"$d/server.log" &
    pid=$!
    for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
    read -r before _ < <(count "$port")
    before=$((before + 1)) # this scrape itself
    t0=$(date +%s)
    rc=0
    # From the run's directory: schemathesis keeps a cache (.schemathesis/) where it runs.
    (cd "$d" && "$st" run "http://127.0.0.1:$port/api/v1/openapi.json" "${headers[@]}" \
        --checks "$checks" --max-examples "$MAX_EXAMPLES" --max-time "$FUZZ_MAX_TIME" \
        --seed "$SEED" --workers 2 --request-timeout 30 --generation-database none \
        --no-color --report json --report-json-path "$d/report.json" \
        >"$d/schemathesis.txt" 2>&1) || rc=$?
    secs=$(($(date +%s) - t0))
    alive=yes
    kill -0 "$pid" 2>/dev/null || alive=no
    if [[ $alive == yes ]]; then
        read -r after errors < <(count "$port")
        echo "run $run: answers by route and status"
        breakdown "$port"
    else
        after=$before errors=unknown
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
    requests=$((after - before))
    cases=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["test_cases"]["generated"])' \
        "$d/report.json" 2>/dev/null || echo "?")
    echo "run $run: $requests requests answered, $errors of them 5xx; $cases test cases; schemathesis exit $rc; ${secs}s"
    if [[ $rc -ne 0 || $alive != yes || $errors != 0 ]]; then
        fail=1
        failed=$((failed + 1))
        echo "--- run $run: schemathesis output (tail)"
        tail -n 150 "$d/schemathesis.txt"
        echo "--- run $run: server log (tail)"
        tail -n 40 "$d/server.log"
        [[ $alive == yes ]] || echo "run $run: the server died"
    else
        passed=$((passed + 1))
    fi
    sum_requests=$((sum_requests + requests))
    [[ $errors == unknown ]] || sum_5xx=$((sum_5xx + errors))
    [[ $cases == "?" ]] || sum_cases=$((sum_cases + cases))
done
echo "API fuzz: $sum_requests requests tried, $sum_5xx answered 5xx ($sum_cases test cases; schemathesis $ST_VERSION; seed $SEED; $(($(date +%s) - t_start))s)"
# The plain closing line CI reads: each run is one test.
echo "api-fuzz: $passed passed, $failed failed"
if [[ $fail -ne 0 ]]; then
    echo "API fuzz FAILED (reproduce with SEED=$SEED bench/api-fuzz.sh)"
    exit 1
fi
