#!/usr/bin/env python3
"""The adversarial phases of bench/adversarial.sh (see there). Standard library only.

usage: adversarial.py PORT DIR STORM_EVENTS BIN_DIR
"""
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

PORT, DIR, STORM, BIN = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
ADMIN = "Bearer bench-admin-token-0123456789abcdef"
AGENT = "Bearer bench-agent-token-0123456789abcdef"
RESPONDER = "Bearer bench-responder-token-0123456789abcdef"
stats = {"requests": 0, "status_5xx": 0, "by_status": {}}
lock = threading.Lock()
CROCK = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid():
    ms = int(time.time() * 1000)
    n = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(CROCK[(n >> (5 * (25 - i))) & 31] for i in range(26))


def now(delta=0.0):
    t = datetime.now(timezone.utc) + timedelta(seconds=delta)
    return t.isoformat().replace("+00:00", "Z")


def pid():
    with open(f"{DIR}/pid") as f:
        return int(f.read().strip())


def rss_mb():
    try:
        with open(f"/proc/{pid()}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0


def alive():
    try:
        os.kill(pid(), 0)
        return True
    except OSError:
        return False


def req(method, path, body=None, headers=None, timeout=30):
    """One request; (status, parsed body or text). Counts every answer."""
    h = {"content-type": "application/json"}
    h.update(headers or {})
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    try:
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        text = r.read()
        c.close()
        status = r.status
    except (OSError, http.client.HTTPException) as e:
        status, text = 0, str(e).encode()  # 0: the connection closed without an answer
    with lock:
        stats["requests"] += 1
        stats["by_status"][str(status)] = stats["by_status"].get(str(status), 0) + 1
        if status >= 500:
            stats["status_5xx"] += 1
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text.decode(errors="replace")


def metric(name):
    _, text = req("GET", "/metrics", headers={"authorization": ADMIN})
    total = 0.0
    for line in str(text).splitlines():
        if line.startswith(name) and not line.startswith("#"):
            try:
                total += float(line.rsplit(" ", 1)[1])
            except ValueError:
                pass
    return total


def batch(agent, seq, events, sent_at=None):
    b = {"version": 1, "agent_id": agent, "node": agent, "seq": seq, "events": events}
    if sent_at:
        b["sent_at"] = sent_at
    return b


def refusal(k):
    w = k % 200
    return {"id": ulid(), "time": now(), "type": "kernel.network.connection_refused",
            "severity": "warning",
            "entity": {"namespace": f"storm-{w % 20}", "pod": f"app-{w}-1",
                       "workload": {"kind": "Deployment", "name": f"app-{w}"}, "node": f"node-{w % 10}"},
            "attributes": {"dst_addr": f"172.{16 + (k >> 16) % 16}.{(k >> 8) % 256}.{k % 256}",
                           "dst_port": 1024 + k % 50000, "count": 5}}


def correlator_lag(health, default):
    try:
        return health["components"]["correlator"]["details"]["lag_events"]
    except (KeyError, TypeError):
        return default


def audit_records():
    out, after = [], 0
    while True:
        s, v = req("GET", f"/api/v1/audit?after={after}&limit=5000", headers={"authorization": ADMIN})
        if s != 200 or not isinstance(v, dict):
            return out
        out.extend(v.get("records", []))
        if not v.get("more") or v.get("next", after) == after:
            return out
        after = v["next"]


def incidents(query):
    s, v = req("GET", f"/api/v1/incidents{query}", headers={"authorization": ADMIN})
    return v.get("incidents", []) if s == 200 and isinstance(v, dict) else []


def storm(result):
    per = 500
    n_batches = max(1, STORM // per)
    rates, lags, rss = [], [], []
    done = threading.Event()

    def sample():
        # The correlator's rate over each 0.5 s in which it had a backlog at both ends
        # (busy throughout: partial intervals at the start and the end are not its rate).
        last = (time.time(), metric("tapio_events_processed_total"), 0)
        while not done.is_set():
            time.sleep(0.5)
            cur_n = metric("tapio_events_processed_total")
            _, h = req("GET", "/health", headers={"authorization": ADMIN})
            lag = correlator_lag(h, 0)
            t_now = time.time()
            lags.append(lag)
            if lag > 0 and last[2] > 0:
                rates.append(round((cur_n - last[1]) / (t_now - last[0])))
            last = (t_now, cur_n, lag)
            rss.append(rss_mb())

    t = threading.Thread(target=sample)
    t.start()
    p1_sent = p1_seen = None
    t0 = time.time()
    sent = 0
    for i in range(n_batches):
        evs = [refusal(i * per + j) for j in range(per)]
        s, v = req("POST", "/api/v1/evidence", batch("storm-agent", i + 1, evs), {"authorization": AGENT})
        if s == 200:
            sent += per
        if i == n_batches // 2:
            body = {"type": "kubernetes.workload.unavailable", "severity": "critical", "producer": "adversarial",
                    "entity": {"namespace": "pay", "workload": {"kind": "Deployment", "name": "payments"}},
                    "attributes": {"desired_replicas": 3, "available_replicas": 0}}
            s, v = req("POST", "/api/v1/events", body, {"authorization": AGENT})
            p1_sent = time.time()
            threading.Thread(target=lambda: watch_p1(result, p1_sent)).start()
    ingest_s = time.time() - t0
    # Wait for the correlator to drain (bounded).
    until = time.time() + 300
    while time.time() < until:
        _, h = req("GET", "/health", headers={"authorization": ADMIN})
        lag = correlator_lag(h, 1)
        if lag == 0 and "p1_latency_s" in result:
            break
        time.sleep(0.5)
    done.set()
    t.join()
    opened = len(incidents("?status=open&limit=1000"))
    busy = [r for r in rates if r > 0]
    result.update({
        "storm_events_sent": sent, "storm_ingest_seconds": round(ingest_s, 1),
        "storm_ingest_events_per_second": round(sent / ingest_s),
        "correlator_events_per_second_min": min(busy) if busy else None,
        "correlator_events_per_second_median": statistics.median(busy) if busy else None,
        "correlator_samples": len(busy),
        "open_incidents_after_storm": opened,
        "rss_mb_max_storm": round(max(rss or [0]), 1),
    })


def watch_p1(result, sent):
    until = sent + 120
    while time.time() < until:
        for i in incidents("?severity=P1"):
            if "payments" in json.dumps(i):
                result["p1_latency_s"] = round(time.time() - sent, 2)
                return
        time.sleep(0.1)
    result["p1_latency_s"] = None


def clock(result):
    evs = [{"id": ulid(), "time": now(), "type": "kernel.container.oom_kill", "severity": "critical",
            "entity": {"namespace": "clock", "pod": f"c-{i}", "workload": {"kind": "Deployment", "name": "clockwork"}},
            "attributes": {"comm": "java", "pid": i}} for i in range(3)]
    req("POST", "/api/v1/evidence", batch("clock-a", 1, evs), {"authorization": AGENT})
    inc = None
    for _ in range(100):
        found = [i for i in incidents("?status=open&limit=1000") if "clockwork" in i.get("title", "")]
        if found:
            inc = found[0]["id"]
            break
        time.sleep(0.1)
    fast = now(298)
    ev = {"id": ulid(), "time": fast, "type": "kernel.container.abnormal_exit", "severity": "warning",
          "entity": {"namespace": "clock", "pod": "f-1", "workload": {"kind": "Deployment", "name": "fast"}},
          "attributes": {"exit_code": 1}}
    req("POST", "/api/v1/evidence", batch("clock-fast", 1, [ev], sent_at=fast), {"authorization": AGENT})
    time.sleep(5)
    _, v = req("GET", f"/api/v1/incidents/{inc}", headers={"authorization": ADMIN})
    result["clock_skew_incident_still_open"] = isinstance(v, dict) and v.get("status") == "open"


def flood(result):
    _, before = req("GET", "/api/v1/audit?limit=1", headers={"authorization": ADMIN})
    counts = {}
    stop = time.time() + 15

    def hammer():
        c = None
        while time.time() < stop:
            try:
                if c is None:
                    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
                c.request("POST", "/api/v1/evidence", body=b"{}", headers={"content-type": "application/json"})
                r = c.getresponse()
                r.read()
                s = r.status
            except (OSError, http.client.HTTPException):
                s, c = 0, None
            with lock:
                counts[s] = counts.get(s, 0) + 1
                stats["requests"] += 1
                if s >= 500:
                    stats["status_5xx"] += 1

    ts = [threading.Thread(target=hammer) for _ in range(8)]
    for t in ts:
        t.start()
    # A genuine responder action in the middle of the flood must be audited.
    time.sleep(5)
    s, v = req("POST", "/api/v1/incidents", {"severity": "P4", "title": "flood-time declare"},
               {"authorization": RESPONDER, "idempotency-key": str(uuid.uuid4())})
    for t in ts:
        t.join()
    time.sleep(2)
    records = audit_records()
    rows = [r for r in records if r.get("kind") == "auth_failure"]
    text = json.dumps(records)
    result.update({
        "flood_requests": sum(counts.values()),
        "flood_by_status": {str(k): v for k, v in sorted(counts.items())},
        "flood_auth_failure_audit_rows": len(rows),
        "flood_auth_failure_counted": sum(int(r.get("count", 1) or 1) for r in rows),
        "flood_genuine_action_audited": any(r.get("kind") == "mutation" and r.get("route") == "/api/v1/incidents" for r in records),
    })


def slowloris(result):
    socks = []
    for _ in range(500):
        try:
            s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError:
            break
    lat = []
    t_end = time.time() + 25
    while time.time() < t_end:
        t = time.time()
        s, _ = req("GET", "/health", timeout=10)
        lat.append((time.time() - t) * 1000 if s else 10000)
        for s in socks:
            try:
                s.sendall(b"X")
            except OSError:
                pass
        time.sleep(1)
    closed = 0
    for s in socks:
        try:
            s.sendall(b"-a: b\r\n")
            s.settimeout(0.2)
            if s.recv(1) == b"":
                closed += 1
        except (OSError, socket.timeout):
            closed += 1
        finally:
            s.close()
    lat.sort()
    result.update({
        "slowloris_connections": len(socks),
        "slowloris_closed_by_server": closed,
        "slowloris_health_ms_p50": round(statistics.median(lat), 1),
        "slowloris_health_ms_max": round(lat[-1], 1),
    })


def heartbeats(result):
    before = rss_mb()
    statuses = {}
    big = "x" * 4_000_000
    for i in range(100):
        hb = {"agent_id": f"hb-{i}", "node": f"hb-{i}", "version": "x", "started_at": now(), "sent_at": "2099-01-01T00:00:00Z",
              "kernel": {"kernel_release": "6", "btf_present": True, "bpf_allowed": True, "programs": []},
              "sources": [], "spool_pending_events": 0, "spool_bytes": 0, "last_error": big}
        s, _ = req("POST", "/api/v1/agents/heartbeat", hb, {"authorization": AGENT})
        statuses[s] = statuses.get(s, 0) + 1
    t = time.time()
    s, _ = req("GET", "/api/v1/agents", headers={"authorization": ADMIN})
    result.update({
        "heartbeat_4mb_by_status": {str(k): v for k, v in statuses.items()},
        "heartbeat_rss_growth_mb": round(rss_mb() - before, 1),
        "agents_read_ms": round((time.time() - t) * 1000, 1),
    })


def action(result):
    # A backlog: 20,000 events queued for the correlator, then one declare sent twice.
    for i in range(40):
        evs = [refusal(1_000_000 + i * 500 + j) for j in range(500)]
        req("POST", "/api/v1/evidence", batch("backlog-agent", i + 1, evs), {"authorization": AGENT})
    key = str(uuid.uuid4())
    title = f"declared during a backlog {key[:8]}"
    answers = []
    for _ in range(2):
        s, v = req("POST", "/api/v1/incidents", {"severity": "P3", "title": title},
                   {"authorization": RESPONDER, "idempotency-key": key})
        answers.append(s)
    time.sleep(3)
    made = [i for i in incidents("?limit=1000") if i.get("title") == title]
    result.update({"declare_twice_answers": answers, "declare_twice_incidents": len(made)})


def kill9(result):
    acked = 0
    for i in range(20):
        evs = [{"id": ulid(), "time": now(), "type": "kernel.container.abnormal_exit", "severity": "warning",
                "entity": {"namespace": "k9", "pod": f"k-{i}", "workload": {"kind": "Deployment", "name": "k9"}},
                "attributes": {"exit_code": 1}} for _ in range(500)]
        s, v = req("POST", "/api/v1/evidence", batch("kill-agent", i + 1, evs), {"authorization": AGENT})
        if s == 200 and isinstance(v, dict):
            acked += v.get("accepted", 0)
    os.kill(pid(), signal.SIGKILL)
    time.sleep(0.5)
    child = subprocess.Popen(
        [f"{BIN}/tapio-server", "--listen", f"127.0.0.1:{PORT}", "--data-dir", f"{DIR}/db",
         "--config-dir", f"{DIR}/cfg", "--auth-dir", f"{DIR}/auth", "--kube", "off", "--log-format", "logfmt"],
        stderr=open(f"{DIR}/server.log", "a"), stdout=subprocess.DEVNULL)
    with open(f"{DIR}/pid", "w") as f:
        f.write(str(child.pid))
    for _ in range(300):
        s, _ = req("GET", "/ready", timeout=2)
        if s == 200:
            break
        time.sleep(0.1)
    stored, after = 0, 0
    while True:
        s, v = req("GET", f"/api/v1/evidence?after={after}&limit=5000&type=kernel.container.abnormal_exit",
                   headers={"authorization": ADMIN})
        if s != 200 or not isinstance(v, dict):
            break
        stored += sum(1 for e in v["evidence"] if e["event"]["entity"].get("namespace") == "k9")
        if v["next"] == after:
            break
        after = v["next"]
    result.update({"kill9_acked": acked, "kill9_stored": stored, "lost_events": acked - stored})


def main():
    result = {"storm_destinations": STORM}
    crashes = 0
    for phase in (storm, clock, flood, slowloris, heartbeats, action):
        t = time.time()
        phase(result)
        result[f"{phase.__name__}_seconds"] = round(time.time() - t, 1)
        if not alive():
            crashes += 1
            result[f"{phase.__name__}_crashed"] = True
    result["rss_mb_before_kill"] = round(rss_mb(), 1)
    kill9(result)
    result["crashes"] = crashes
    result["requests"] = stats["requests"]
    result["status_5xx"] = stats["status_5xx"]
    result["by_status"] = stats["by_status"]
    print(json.dumps(result, indent=1))


main()
