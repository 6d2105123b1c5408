#!/usr/bin/env bash
# Validates Tapio's deploy artefacts offline; run by CI through crates/tapio-cli/tests/deploy.rs.
#
#   deploy/validate.sh                       every check below; exits non-zero on the first failure
#   deploy/validate.sh render OUT [VALUES]   render the Helm chart (VALUES: a JSON object) into OUT
#   deploy/validate.sh json FILE...          the YAML documents of FILEs as one JSON array
#
# Checks:
#  1. deploy/kubernetes/*.yaml against the Kubernetes OpenAPI schemas of $K8S_VERSIONS with
#     `kubernetes-validate --strict` (unknown fields are errors); deploy/kubernetes/production/
#     links every manifest and nothing else.
#  2. The Helm chart deploy/helm/tapio: `helm lint --strict` for each version, then rendered
#     with its defaults and with every option switched on, each validated like (1); values
#     the chart must refuse (a fifth ConfigMap key, a capability the agent does not use) fail.
#  3. deploy/monitoring/tapio-alerts.yaml: `promtool check rules`, `promtool test rules`
#     (tapio-alerts.test.yaml); the chart's copy is identical; the PrometheusRule the chart
#     renders holds valid rules.
#  4. deploy/monitoring/grafana-dashboard.json: valid JSON, and every query parses as PromQL.
#
# Tools, installed when missing (idempotent; pip from PyPI, pinned): kubernetes-validate,
# and helm-python-sdk, which carries Helm's own Go engine (Helm SDK v4.2) as a shared
# library, so the chart is linted and rendered by Helm itself without a helm binary.
# promtool comes from Debian's `prometheus` package (.ci/run installs it).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

K8S_VERSIONS="${K8S_VERSIONS:-1.30.0 1.33.0}"
PYTHON="${PYTHON:-python3}"
KUBERNETES_VALIDATE_VERSION="1.37.0"
HELM_PYTHON_SDK_VERSION="0.2.2"
CHART="deploy/helm/tapio"

die() {
    echo "deploy/validate.sh: $*" >&2
    exit 1
}

# Installs the Python tools once; a lock keeps parallel test processes from racing pip.
deps() {
    command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found"
    local lock="${TMPDIR:-/tmp}/tapio-deploy-validate.lock"
    exec 9>"$lock"
    flock 9
    if ! "$PYTHON" -c 'import kubernetes_validate, yaml' >/dev/null 2>&1; then
        echo "--- installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION (PyPI)" >&2
        PIP_BREAK_SYSTEM_PACKAGES=1 "$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
            "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" >&2
    fi
    if ! "$PYTHON" -c 'import helm_python' >/dev/null 2>&1; then
        echo "--- installing helm-python-sdk==$HELM_PYTHON_SDK_VERSION (PyPI; Helm's Go engine)" >&2
        PIP_BREAK_SYSTEM_PACKAGES=1 "$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
            "helm-python-sdk==$HELM_PYTHON_SDK_VERSION" >&2
    fi
    flock -u 9
    exec 9>&-
}

# render OUT_DIR [VALUES_JSON]: OUT_DIR/objects.yaml (Kubernetes objects) and
# OUT_DIR/prometheusrule.yaml (the PrometheusRule, empty unless enabled).
render() {
    local out="$1" values="${2:-{\}}"
    mkdir -p "$out"
    "$PYTHON" - "$CHART" "$values" "$out" <<'PY'
import json, os, sys
import helm_python as helm

chart_dir, values, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
try:
    rendered = helm.Chart.load(chart_dir).render(
        values, name="tapio", namespace="tapio-system", is_install=True)
except helm.HelmError as e:
    sys.exit(f"helm render failed: {e}")
objects, rules = [], []
for path in sorted(rendered):
    text = rendered[path].strip()
    if path.endswith("NOTES.txt") or not text:
        continue
    doc = f"---\n# Source: {path}\n{text}\n"
    (rules if path.endswith("/prometheusrule.yaml") else objects).append(doc)
with open(os.path.join(out, "objects.yaml"), "w") as f:
    f.write("".join(objects))
with open(os.path.join(out, "prometheusrule.yaml"), "w") as f:
    f.write("".join(rules))
PY
}

to_json() {
    "$PYTHON" - "$@" <<'PY'
import json, sys, yaml
docs = []
for path in sys.argv[1:]:
    with open(path) as f:
        docs.extend(d for d in yaml.safe_load_all(f) if d is not None)
json.dump(docs, sys.stdout)
PY
}

# kv LABEL FILE...: kubernetes-validate --strict against every version; a kind without a
# schema (a typo in apiVersion or kind) is a failure too.
kv() {
    local label="$1"
    shift
    local v log
    for v in $K8S_VERSIONS; do
        log="$(mktemp)"
        if ! "$PYTHON" -m kubernetes_validate --strict --quiet -k "$v" "$@" >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            die "$label does not validate against Kubernetes $v"
        fi
        if grep -q "Couldn't find schema" "$log"; then
            cat "$log" >&2
            rm -f "$log"
            die "$label: a kind unknown to Kubernetes $v"
        fi
        rm -f "$log"
        pass "$label: kubernetes-validate --strict -k $v"
    done
}

PASSED=0
pass() {
    PASSED=$((PASSED + 1))
    echo "ok   $*"
}

main() {
    deps
    command -v promtool >/dev/null 2>&1 ||
        die "promtool not found (Debian package prometheus: apt-get install prometheus)"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT

    # 1. Plain manifests.
    local manifests=(deploy/kubernetes/*.yaml)
    [ ${#manifests[@]} -gt 0 ] || die "no manifests in deploy/kubernetes/"
    kv "deploy/kubernetes/*.yaml" "${manifests[@]}"
    local m name
    for m in "${manifests[@]}"; do
        name="$(basename "$m")"
        [ -L "deploy/kubernetes/production/$name" ] ||
            die "deploy/kubernetes/production/$name is not a link to ../$name"
        [ "$(readlink "deploy/kubernetes/production/$name")" = "../$name" ] ||
            die "deploy/kubernetes/production/$name does not point to ../$name"
    done
    for m in deploy/kubernetes/production/*.yaml; do
        [ -e "deploy/kubernetes/$(basename "$m")" ] || die "$m has no manifest in deploy/kubernetes/"
    done
    pass "deploy/kubernetes/production/ links exactly the manifests"

    # 2. Helm chart.
    local v
    for v in $K8S_VERSIONS; do
        "$PYTHON" - "$CHART" "v$v" <<'PY' || die "helm lint --strict failed for Kubernetes $v"
import sys
import helm_python as helm
report = helm.lint(sys.argv[1], strict=True, kube_version=sys.argv[2])
bad = [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report["errors"]]
for m in bad:
    print(f"helm lint: {m.get('path', '')}: {m['error']}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
        pass "$CHART: helm lint --strict --kube-version $v"
    done
    render "$tmp/default"
    kv "$CHART (default values)" "$tmp/default/objects.yaml"
    [ ! -s "$tmp/default/prometheusrule.yaml" ] || die "the PrometheusRule must be off by default"
    local all_on='{
      "auth": {"users": {"alice": {"role": "admin", "tokenSha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}, "agentToken": "example-agent-token"},
      "server": {"persistence": {"enabled": false}, "extraArgs": ["--retention=14d"],
                 "extraEnv": [{"name": "TAPIO_LOG_FORMAT", "value": "json"}],
                 "replicas": 10, "strategy": {"type": "RollingUpdate"},
                 "scaleOut": {"enabled": true, "databaseUrlSecret": {"name": "tapio-postgres", "key": "url"},
                              "natsUrl": "nats://nats.nats:4222"},
                 "priorityClassName": "system-cluster-critical",
                 "nodeSelector": {"kubernetes.io/os": "linux"}},
      "agent": {"pods": "http://127.0.0.1:10255/pods", "capabilities": ["BPF", "PERFMON", "SYSLOG", "SYS_RESOURCE"],
                "kmsg": false, "seccompProfile": "Unconfined", "priorityClassName": "system-node-critical"},
      "rbac": {"secretMetadata": true},
      "networkPolicy": {"agentExtraEgress": [{"ports": [{"protocol": "TCP", "port": 10255}]}]},
      "image": {"repository": "registry.example/tapio", "tag": "0.1.0", "pullSecrets": [{"name": "regcred"}]},
      "monitoring": {"prometheusRule": {"enabled": true, "labels": {"release": "kube-prometheus-stack"}}}
    }'
    render "$tmp/all-on" "$all_on"
    kv "$CHART (every option on)" "$tmp/all-on/objects.yaml"
    grep -q 'name: TAPIO_NATS_URL' "$tmp/all-on/objects.yaml" || die "scaleOut must set TAPIO_NATS_URL"
    if render "$tmp/replicas-sqlite" '{"server": {"replicas": 3}}' 2>/dev/null; then
        die "server.replicas > 1 without scaleOut must be refused (replicas on SQLite would each correlate alone)"
    fi
    pass "$CHART: replicas > 1 without scaleOut is refused; scaleOut sets the store, the bus and the replica identity"
    to_json "$tmp/all-on/prometheusrule.yaml" >"$tmp/pr.json"
    "$PYTHON" - "$tmp/pr.json" "$tmp/pr-rules.yaml" <<'PY' || die "the chart's PrometheusRule is malformed"
import json, sys, yaml
docs = json.load(open(sys.argv[1]))
assert len(docs) == 1 and docs[0]["kind"] == "PrometheusRule", docs
assert docs[0]["apiVersion"] == "monitoring.coreos.com/v1"
yaml.safe_dump({"groups": docs[0]["spec"]["groups"]}, open(sys.argv[2], "w"))
PY
    promtool check rules "$tmp/pr-rules.yaml" >/dev/null || die "the chart's PrometheusRule holds invalid rules"
    "$PYTHON" - "$tmp/pr-rules.yaml" deploy/monitoring/tapio-alerts.yaml <<'PY' ||
import sys, yaml
a, b = (yaml.safe_load(open(p)) for p in sys.argv[1:])
sys.exit(0 if a == b else 1)
PY
        die "the chart's PrometheusRule differs from deploy/monitoring/tapio-alerts.yaml"
    pass "$CHART: PrometheusRule = deploy/monitoring/tapio-alerts.yaml (promtool check rules)"
    if render "$tmp/bad-key" '{"config": {"extra-key": "1"}}' 2>"$tmp/err"; then
        die "the chart accepted a fifth tapio-config key"
    fi
    grep -q "config.extra-key: tapio-config has exactly the keys" "$tmp/err" ||
        { cat "$tmp/err" >&2; die "the chart failed otherwise than naming the unknown key"; }
    if render "$tmp/bad-cap" '{"agent": {"capabilities": ["BPF", "SYS_ADMIN"]}}' 2>"$tmp/err"; then
        die "the chart accepted CAP_SYS_ADMIN for the agent"
    fi
    grep -q "SYS_ADMIN is not one the agent uses" "$tmp/err" ||
        { cat "$tmp/err" >&2; die "the chart failed otherwise than naming the capability"; }
    pass "$CHART: refuses an unknown tapio-config key and capabilities the agent does not use"

    # 3. Alert rules.
    cmp -s deploy/monitoring/tapio-alerts.yaml "$CHART/files/tapio-alerts.yaml" ||
        die "$CHART/files/tapio-alerts.yaml differs from deploy/monitoring/tapio-alerts.yaml (copy it)"
    pass "$CHART/files/tapio-alerts.yaml is identical to deploy/monitoring/tapio-alerts.yaml"
    promtool check rules deploy/monitoring/tapio-alerts.yaml >"$tmp/promtool.log" 2>&1 ||
        { cat "$tmp/promtool.log" >&2; die "promtool check rules failed"; }
    pass "deploy/monitoring/tapio-alerts.yaml: promtool check rules ($(grep -o '[0-9]* rules found' "$tmp/promtool.log"))"
    promtool test rules deploy/monitoring/tapio-alerts.test.yaml >"$tmp/promtool.log" 2>&1 ||
        { cat "$tmp/promtool.log" >&2; die "promtool test rules failed"; }
    pass "deploy/monitoring/tapio-alerts.test.yaml: promtool test rules"

    # 4. Grafana dashboard: each query as a recording rule, so promtool parses the PromQL.
    "$PYTHON" - deploy/monitoring/grafana-dashboard.json "$tmp/dashboard-rules.yaml" <<'PY' ||
import json, sys, yaml
dash = json.load(open(sys.argv[1]))
exprs = []
def walk(panels):
    for p in panels:
        walk(p.get("panels", []))
        for t in p.get("targets", []):
            exprs.append(t["expr"])
walk(dash["panels"])
if not exprs:
    sys.exit("the dashboard has no queries")
rules = [{"record": f"dashboard:query_{i}", "expr": e.replace("$__rate_interval", "5m")
          .replace("$__interval", "1m").replace("$__range", "1h")} for i, e in enumerate(exprs)]
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"))
PY
        die "deploy/monitoring/grafana-dashboard.json is not a valid dashboard"
    promtool check rules "$tmp/dashboard-rules.yaml" >"$tmp/promtool.log" 2>&1 ||
        { cat "$tmp/promtool.log" >&2; die "a query of grafana-dashboard.json is not valid PromQL"; }
    pass "deploy/monitoring/grafana-dashboard.json: every query parses (promtool)"

    echo "deploy/validate.sh: all $PASSED checks ok"
}

case "${1:-}" in
"") main ;;
render)
    [ $# -ge 2 ] || die "usage: deploy/validate.sh render OUT_DIR [VALUES_JSON]"
    deps
    render "$2" "${3:-{\}}"
    ;;
json)
    shift
    deps
    to_json "$@"
    ;;
*) die "unknown command ${1} (none, render, json)" ;;
esac
