#!/usr/bin/env python3
"""Helper for bench/notify-vs-alertmanager.sh (Python 3 standard library only).

Subcommands:
  ports N                      print N free TCP ports on 127.0.0.1
  receive --port P --log F     counting webhook receiver: every POST is one notification,
                               appended to F as one JSON line (wall time, path, summary)
  wait URL [URL...]            wait until every URL answers 2xx (30 s)
  drive --am URL --log F ...   play a scenario into Alertmanager's POST /api/v2/alerts,
                               like Prometheus would, and wait out the run
  report --dir D ...           count notifications per receiver path, fetch Tapio's
                               incidents, print the table and write D/results.json

The scenarios are data (SCENARIOS below); times are seconds after the first push.
"""

import argparse
import datetime as dt
import http.server
import json
import os
import socket
import socketserver
import sys
import threading
import time
import urllib.error
import urllib.request

# ---------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------

# Five alerts per service, named and labelled like kube-prometheus / a typical RED-metrics
# rule set. Every alert carries namespace, service and deployment labels (kube-prometheus
# pod alerts carry `pod`; the `deployment` label is what a relabelling of
# kube_pod_owner / kube-state-metrics joins adds, and what lets Tapio key them on the
# workload). `{ratio}`, `{p99}` are filled in from the service.
OUTAGE_ALERTS = [
    {
        "alertname": "HighErrorRate",
        "severity": "critical",
        "summary": "{service}: {ratio_pct}% of requests fail",
        "annotations": {"error_ratio": "{ratio}"},
    },
    {
        "alertname": "HighLatencyP99",
        "severity": "warning",
        "summary": "{service}: p99 latency {p99}s",
        "annotations": {"p99_latency_seconds": "{p99}"},
    },
    {
        "alertname": "KubePodCrashLooping",
        "severity": "warning",
        "summary": "Pod shop/{pod} ({service}) is in waiting state (reason: CrashLoopBackOff).",
        "pod": True,
    },
    {
        "alertname": "KubeDeploymentReplicasMismatch",
        "severity": "warning",
        "summary": "Deployment shop/{service} has not matched the expected number of replicas.",
    },
    {
        "alertname": "KubePodNotReady",
        "severity": "warning",
        "summary": "Pod shop/{pod} has been in a non-ready state.",
        "pod": True,
    },
]

SCENARIOS = {
    # A payments database outage cascading through the shop: 8 services x 5 alerts = 40
    # alerts, starting within ~20 s of each other, flapping twice (all resolve, fire again
    # 40 s later, resolve, fire again), then resolving for good.
    "outage": {
        "description": "40 alerts across 8 services in namespace shop, flapping twice",
        "namespace": "shop",
        "services": [
            # name, error ratio, p99 latency (s): the root cause first
            ("payments", 0.92, 8.5),
            ("checkout", 0.41, 6.2),
            ("orders", 0.27, 4.1),
            ("cart", 0.12, 2.3),
            ("frontend", 0.09, 3.4),
            ("shipping", 0.07, 1.9),
            ("recommendations", 0.04, 1.2),
            ("catalog", 0.03, 0.9),
        ],
        "alerts": OUTAGE_ALERTS,
        # (fire, resolve) per episode, before the per-alert stagger is added
        "episodes": [(0, 70), (110, 170), (210, 270)],
        "stagger_service": 2.4,  # service i starts i * 2.4 s after the first
        "stagger_alert": 0.4,  # alert j of a service j * 0.4 s after its first
        "repost_every": 15,  # Prometheus re-sends firing alerts
        "run_seconds": 365,  # covers Alertmanager's first group_interval (5 m) flush
    },
    # A single failing service, no flapping: the base case.
    "single": {
        "description": "1 service (checkout), 5 alerts, one episode of 90 s",
        "namespace": "shop",
        "services": [("checkout", 0.18, 6.0)],
        "alerts": OUTAGE_ALERTS,
        "episodes": [(0, 90)],
        "stagger_service": 0.0,
        "stagger_alert": 2.0,
        "repost_every": 15,
        "run_seconds": 365,
    },
}


def scenario_alerts(sc):
    """[(offset, labels, annotations)] for every alert of the scenario."""
    out = []
    for i, (svc, ratio, p99) in enumerate(sc["services"]):
        pod = f"{svc}-7c9d8f6b5-{'abcdefgh'[i % 8]}x{i}q2"
        vals = {
            "service": svc,
            "ratio": f"{ratio:g}",
            "ratio_pct": f"{ratio * 100:g}",
            "p99": f"{p99:g}",
            "pod": pod,
        }
        for j, a in enumerate(sc["alerts"]):
            labels = {
                "alertname": a["alertname"],
                "severity": a["severity"],
                "namespace": sc["namespace"],
                "service": svc,
                "deployment": svc,
                "job": "kube-state-metrics" if a["alertname"].startswith("Kube") else svc,
                "prometheus": "monitoring/k8s",
            }
            if a.get("pod"):
                labels["pod"] = pod
                labels["container"] = svc
            ann = {"summary": a["summary"].format(**vals)}
            for k, v in a.get("annotations", {}).items():
                ann[k] = v.format(**vals)
            ann["runbook_url"] = (
                "https://runbooks.prometheus-operator.dev/runbooks/"
                + a["alertname"].lower()
            )
            off = i * sc["stagger_service"] + j * sc["stagger_alert"]
            out.append((off, labels, ann))
    return out


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def rfc3339(t):
    return (
        dt.datetime.fromtimestamp(t, tz=dt.timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def http_json(method, url, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        raw = r.read()
        return r.status, (json.loads(raw) if raw.strip() else None)


def read_jsonl(path):
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
    return out


# ---------------------------------------------------------------------------------------
# ports / wait
# ---------------------------------------------------------------------------------------


def cmd_ports(a):
    socks = []
    for _ in range(a.n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def cmd_wait(a):
    deadline = time.time() + a.timeout
    for url in a.urls:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if 200 <= r.status < 300:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.time() > deadline:
                sys.exit(f"not ready after {a.timeout}s: {url}")
            time.sleep(0.2)


# ---------------------------------------------------------------------------------------
# receive
# ---------------------------------------------------------------------------------------


def summarize(path, body):
    """A small summary of one notification body (Alertmanager or Tapio webhook)."""
    try:
        p = json.loads(body)
    except ValueError:
        return {"json": False}
    if not isinstance(p, dict):
        return {}
    if "alerts" in p:  # Alertmanager webhook, version 4
        alerts = p.get("alerts") or []
        return {
            "source": "alertmanager",
            "status": p.get("status"),
            "groupKey": p.get("groupKey"),
            "firing": sum(1 for x in alerts if x.get("status") == "firing"),
            "resolved": sum(1 for x in alerts if x.get("status") == "resolved"),
        }
    inc = p.get("incident") or {}
    return {
        "source": "tapio",
        "kind": p.get("kind"),
        "incident": inc.get("id"),
        "severity": inc.get("severity"),
        "status": inc.get("status"),
        "title": inc.get("title"),
    }


def cmd_receive(a):
    lock = threading.Lock()
    log = open(a.log, "a", buffering=1)

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, code=200):
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def do_GET(self):  # readiness
            self._reply(200)

        def do_POST(self):
            t = time.time()
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            rec = {"t": t, "path": self.path, "bytes": len(body)}
            rec.update(summarize(self.path, body))
            with lock:
                log.write(json.dumps(rec) + "\n")
            self._reply(200)

        def log_message(self, *args):
            pass

    class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    S(("127.0.0.1", a.port), H).serve_forever()


# ---------------------------------------------------------------------------------------
# drive
# ---------------------------------------------------------------------------------------


def cmd_drive(a):
    sc = SCENARIOS[a.scenario]
    run_seconds = a.run_seconds or sc["run_seconds"]
    alerts = scenario_alerts(sc)
    # Every state change (fire / resolve) of every alert, in time order.
    changes = []  # (at, index, episode, "fire"|"resolve")
    for idx, (off, _, _) in enumerate(alerts):
        for ep, (f, r) in enumerate(sc["episodes"]):
            changes.append((f + off, idx, ep, "fire"))
            changes.append((r + off, idx, ep, "resolve"))
    changes.sort()
    last_change = changes[-1][0]
    push_log = open(a.log, "a", buffering=1)
    url = a.am.rstrip("/") + "/api/v2/alerts"

    state = {}  # idx -> {"startsAt": t} while firing
    t0 = None

    def post(batch, what):
        nonlocal t0
        if not batch:
            return
        now = time.time()
        if t0 is None:
            t0 = now
            with open(a.t0_file, "w") as f:
                f.write(repr(t0))
        code, _ = http_json("POST", url, batch)
        push_log.write(
            json.dumps({"t": now, "rel": round(now - t0, 3), "what": what,
                        "alerts": len(batch), "code": code}) + "\n")

    def firing_alert(idx, now):
        _, labels, ann = alerts[idx]
        return {
            "labels": labels,
            "annotations": ann,
            "startsAt": rfc3339(state[idx]["startsAt"]),
            # Prometheus: valid until 4 x the resend interval; re-sent before then.
            "endsAt": rfc3339(now + 4 * 60),
            "generatorURL": "http://prometheus-k8s.monitoring:9090/graph?g0.expr="
            + labels["alertname"],
        }

    print(f"scenario {a.scenario}: {sc['description']}; {len(alerts)} alerts, "
          f"{len(sc['episodes'])} episodes, run {run_seconds}s", flush=True)
    start = time.time()
    ci = 0
    next_repost = sc["repost_every"]
    next_progress = 30
    while True:
        now = time.time()
        rel = now - (t0 if t0 is not None else start)
        # State changes due now, one batch (Prometheus sends a batch per evaluation).
        fire, resolve = [], []
        while ci < len(changes) and changes[ci][0] <= rel:
            _, idx, ep, kind = changes[ci]
            ci += 1
            if kind == "fire":
                state[idx] = {"startsAt": now}
                fire.append(firing_alert(idx, now))
            else:
                st = state.pop(idx)
                _, labels, ann = alerts[idx]
                resolve.append({
                    "labels": labels,
                    "annotations": ann,
                    "startsAt": rfc3339(st["startsAt"]),
                    "endsAt": rfc3339(now - 0.5),  # in the past: resolved
                    "generatorURL": "http://prometheus-k8s.monitoring:9090/graph?g0.expr="
                    + labels["alertname"],
                })
        post(fire, "fire")
        post(resolve, "resolve")
        if t0 is not None and rel >= next_repost:
            next_repost += sc["repost_every"]
            post([firing_alert(i, now) for i in sorted(state)], "repost")
        if t0 is not None and rel >= next_progress:
            next_progress += 30
            counts = {}
            for r in read_jsonl(a.notifications):
                counts[r["path"]] = counts.get(r["path"], 0) + 1
            print(f"  t+{rel:5.0f}s firing {len(state):2d}/{len(alerts)}  "
                  f"notifications so far: "
                  + (", ".join(f"{p} {n}" for p, n in sorted(counts.items())) or "none"),
                  flush=True)
        if t0 is not None and rel >= max(run_seconds, last_change + 1):
            break
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------


def cmd_report(a):
    t0 = float(open(os.path.join(a.dir, "t0")).read())
    notes = read_jsonl(os.path.join(a.dir, "notifications.jsonl"))
    pushes = read_jsonl(os.path.join(a.dir, "pushes.jsonl"))
    cutoff = a.cutoff
    columns = []  # (label, path, tapio_url or None)
    for spec in a.column:
        label, path, url = (spec.split(",") + [""])[:3]
        columns.append((label, path, url or None))

    results = {
        "scenario": a.scenario,
        "t0": t0,
        "t0_utc": rfc3339(t0),
        "cutoff_seconds": cutoff,
        "meta": dict(m.split("=", 1) for m in a.meta),
        "pushes": {
            "posts": len(pushes),
            "fire": sum(p["alerts"] for p in pushes if p["what"] == "fire"),
            "resolve": sum(p["alerts"] for p in pushes if p["what"] == "resolve"),
            "repost": sum(p["alerts"] for p in pushes if p["what"] == "repost"),
            "non_2xx": sum(1 for p in pushes if not 200 <= p["code"] < 300),
        },
        "receivers": {},
    }
    for label, path, url in columns:
        mine = sorted((r for r in notes if r["path"] == path), key=lambda r: r["t"])
        rel = [r["t"] - t0 for r in mine]
        entry = {
            "path": path,
            "notifications_total": len(mine),
            "notifications_within_cutoff": sum(1 for x in rel if x <= cutoff),
            "first_notification_s": round(rel[0], 3) if rel else None,
            "times_s": [round(x, 3) for x in rel],
        }
        if mine and mine[0].get("source") == "alertmanager":
            entry["by_status"] = {}
            for r in mine:
                entry["by_status"][r["status"]] = entry["by_status"].get(r["status"], 0) + 1
            entry["groups"] = len({r["groupKey"] for r in mine})
            entry["details"] = [
                {"t": round(r["t"] - t0, 3), "status": r["status"], "groupKey": r["groupKey"],
                 "firing": r["firing"], "resolved": r["resolved"]} for r in mine]
        elif mine:
            entry["by_kind"] = {}
            for r in mine:
                entry["by_kind"][r["kind"]] = entry["by_kind"].get(r["kind"], 0) + 1
            entry["details"] = [
                {"t": round(r["t"] - t0, 3), "kind": r["kind"], "incident": r["incident"],
                 "severity": r["severity"], "status": r["status"], "title": r["title"]}
                for r in mine]
        if url:
            try:
                _, body = http_json("GET", url.rstrip("/") + "/api/v1/incidents?limit=1000")
                incs = body.get("incidents", [])
                entry["incidents"] = body.get("count", len(incs))
                entry["incidents_merged"] = sum(1 for i in incs if i.get("merged_into"))
                entry["incident_list"] = [
                    {k: i.get(k) for k in ("id", "title", "severity", "peak_severity",
                                            "status", "merged_into", "namespace",
                                            "started_at", "resolved_at")}
                    for i in incs]
            except (urllib.error.URLError, OSError, ValueError) as e:
                entry["incidents_error"] = str(e)
            try:
                with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=5) as r:
                    entry["metrics"] = [
                        ln for ln in r.read().decode().splitlines()
                        if ln.startswith(("tapio_notifications_total",
                                          "tapio_alertmanager_alerts_received_total"))]
            except (urllib.error.URLError, OSError) as e:
                entry["metrics_error"] = str(e)
        results["receivers"][label] = entry

    out = os.path.join(a.dir, "results.json")
    with open(out, "w") as f:
        json.dump(results, f, indent=2)

    # ---- table -------------------------------------------------------------------
    labels = [c[0] for c in columns]
    rec = results["receivers"]
    base = rec[labels[0]]
    p = results["pushes"]
    end = max([r["t"] - t0 for r in notes] + [cutoff])

    def ratio(x, key):
        b, v = base[key], rec[x][key]
        return f"{b / v:.2f}x" if v else ("-" if b == 0 else "inf")

    def kinds(x):
        d = rec[x].get("by_status") or rec[x].get("by_kind") or {}
        return " ".join(f"{k[:4]}:{v}" for k, v in sorted(d.items())) or "-"

    def first(x):
        v = rec[x]["first_notification_s"]
        return "none" if v is None else f"{v:.2f} s"

    rows = [
        ("", labels),
        (f"notifications, first {cutoff:.0f} s",
         [str(rec[x]["notifications_within_cutoff"]) for x in labels]),
        (f"notifications, whole run (last at {end:.0f} s)",
         [str(rec[x]["notifications_total"]) for x in labels]),
        (f"{labels[0]} / this, first {cutoff:.0f} s",
         [ratio(x, "notifications_within_cutoff") for x in labels]),
        (f"{labels[0]} / this, whole run", [ratio(x, "notifications_total") for x in labels]),
        ("first notification after first push", [first(x) for x in labels]),
        ("by kind (AM: status; Tapio: kind)", [kinds(x) for x in labels]),
        ("Alertmanager groups notified", [str(rec[x].get("groups", "")) for x in labels]),
        ("Tapio incidents (GET /api/v1/incidents)",
         [str(rec[x].get("incidents", "")) for x in labels]),
        ("  of which merged into another",
         [str(rec[x].get("incidents_merged", "")) for x in labels]),
    ]
    w0 = max(len(r[0]) for r in rows) + 2
    wc = max(len(v) for r in rows for v in r[1]) + 2
    print()
    print(f"scenario {a.scenario}: {p['fire']} alert firings, {p['resolve']} resolutions, "
          f"{p['repost']} re-sends in {p['posts']} POSTs to Alertmanager "
          f"({p['non_2xx']} non-2xx); first push {results['t0_utc']}")
    print()
    for i, (name, vals) in enumerate(rows):
        print(f"{name:<{w0}}" + "".join(f"{v:>{wc}}" for v in vals))
        if i == 0:
            print(" " * w0 + "".join(f"{'-' * (wc - 2):>{wc}}" for _ in vals))
    print()
    for x in labels:
        e = results["receivers"][x]
        for inc in e.get("incident_list", []):
            print(f"  {x}: {inc['id']} {inc['severity']} (peak {inc['peak_severity']}) "
                  f"{inc['status']:<9} "
                  f"{inc['title']}" + (f" (merged into {inc['merged_into']})"
                                       if inc.get("merged_into") else ""))
    print()
    print(f"raw counts and timings: {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("ports")
    s.add_argument("n", type=int)
    s.set_defaults(f=cmd_ports)
    s = sub.add_parser("wait")
    s.add_argument("urls", nargs="+")
    s.add_argument("--timeout", type=float, default=30)
    s.set_defaults(f=cmd_wait)
    s = sub.add_parser("receive")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--log", required=True)
    s.set_defaults(f=cmd_receive)
    s = sub.add_parser("drive")
    s.add_argument("--am", required=True, help="Alertmanager base URL")
    s.add_argument("--scenario", choices=sorted(SCENARIOS), default="outage")
    s.add_argument("--log", required=True, help="push log (JSON lines)")
    s.add_argument("--t0-file", required=True)
    s.add_argument("--notifications", required=True, help="receiver log, for progress")
    s.add_argument("--run-seconds", type=float, default=0,
                   help="run length after the first push (default: the scenario's)")
    s.set_defaults(f=cmd_drive)
    s = sub.add_parser("report")
    s.add_argument("--dir", required=True)
    s.add_argument("--scenario", default="outage")
    s.add_argument("--cutoff", type=float, default=365)
    s.add_argument("--meta", action="append", default=[], help="KEY=VALUE kept in results")
    s.add_argument("--column", action="append", required=True,
                   help="LABEL,PATH[,TAPIO_URL]; the first column is the baseline")
    s.set_defaults(f=cmd_report)
    s = sub.add_parser("run-seconds")
    s.add_argument("scenario", choices=sorted(SCENARIOS))
    s.set_defaults(f=lambda a: print(SCENARIOS[a.scenario]["run_seconds"]))
    a = ap.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
