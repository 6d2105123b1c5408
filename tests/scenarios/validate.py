#!/usr/bin/env python3
"""Validate Tapio scenarios against docs/evidence-format.md and docs/scenarios.md.

    python3 tests/scenarios/validate.py [DIR...]     # default: every scenario directory

Checks every batch and event the way tapio-server's strict decoder does (and a few
semantic rules on top: the attributes the agent's event types carry, Kubernetes objects
that look like what a watch returns, expected.json's vocabulary and that the entities it
names exist in the stream). Exit status 1 when anything is wrong; every problem is printed
as `scenario:line: message`.
"""

import datetime as dt
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_RE = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
TYPE_RE = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+\.[a-z0-9_]+$")
KEY_RE = re.compile(r"^[a-z0-9_.]{1,64}$")
SEVERITIES = {"debug", "info", "warning", "error", "critical"}
ENTITY_KEYS = {"cluster", "node", "namespace", "pod", "pod_uid", "container", "container_id",
               "service", "workload"}
EVENT_KEYS = {"id", "time", "type", "severity", "entity", "attributes", "object"}
BATCH_KEYS = {"version", "agent_id", "node", "seq", "sent_at", "events"}
CAUSES = {"bad_rollout", "memory_limit_too_low", "node_memory_pressure", "node_failure",
          "dns_outage", "no_ready_endpoints", "disk_failure", "image_pull_failure",
          "unschedulable", "config_change", "admission_webhook_failure", "certificate_expired",
          "cpu_pressure", "io_pressure", "dependency_failure", "cascade_origin", "none"}
BASE_CAUSES = set(CAUSES)
CAUSES |= {
          # Issue 14's wider vocabulary: causes a senior SRE names that the first suite
          # never needed (docs/scenarios.md, "Root-cause kinds").
          "volume_full", "volume_attach_failure", "network_plugin_failure", "ip_exhaustion",
          "node_resource_exhaustion", "cpu_throttling", "autoscaling_limit", "job_failure",
          "control_plane_failure", "node_group_failure", "zone_failure", "eviction",
          "quota_exceeded", "probe_misconfiguration"}
CAUSES |= {"volume_provisioning_failure"}  # CreateVolume failed (StorageClass / CSI provisioner), not an attach
NAMESPACED = {"Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "Service",
              "EndpointSlice", "ConfigMap", "Secret", "Event", "CronJob",
              "HorizontalPodAutoscaler", "PersistentVolumeClaim", "Ingress", "ResourceQuota"}
# Cluster-scoped kinds an expected entity may name as Kind/name.
CLUSTER_SCOPED = {"Node", "Namespace", "PersistentVolume", "ValidatingWebhookConfiguration",
                  "MutatingWebhookConfiguration", "StorageClass"}
# A common factor of several nodes (a node group, a zone): no object of its own; the
# expectation's `involves` names the nodes.
FACTOR_KINDS = {"NodeGroup", "Zone"}
# Attributes each agent / alert event type must carry (docs/agent.md, evidence-format.md).
REQUIRED_ATTRS = {
    "kernel.network.connection_refused": {"dst_addr", "dst_port", "pid", "comm", "count"},
    "kernel.network.connection_timeout": {"dst_addr", "dst_port", "pid", "comm", "count"},
    "kernel.network.connect_stats": {"dst_addr", "dst_port", "attempts", "successes", "refused",
                                     "timed_out", "errors", "interval_seconds"},
    "kernel.container.oom_kill": {"pid", "comm"},
    "kernel.container.abnormal_exit": {"pid", "comm", "count"},
    "kernel.storage.io_error": {"device", "status_name", "count"},
    "kernel.storage.latency_spike": {"device", "latency_ms", "count"},
    "node.pressure.cpu": {"some_avg10", "threshold", "sustained_seconds"},
    "node.pressure.memory": {"some_avg10", "threshold", "sustained_seconds"},
    "node.pressure.io": {"some_avg10", "threshold", "sustained_seconds"},
    "node.kernel.hung_task": {"comm", "pid", "blocked_seconds"},
    "alert.prometheus.firing": {"alertname", "fingerprint", "starts_at"},
    "alert.prometheus.resolved": {"alertname", "fingerprint", "starts_at", "ends_at"},
}
PSI_THRESHOLD = {"cpu": 80.0, "memory": 20.0, "io": 30.0}
I64 = (-(2**63), 2**63 - 1)


def parse_time(s):
    if not isinstance(s, str) or not TIME_RE.match(s):
        return None
    try:
        return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None


def ulid_ms(u):
    v = 0
    for ch in u:
        v = v * 32 + CROCKFORD.index(ch)
    return v >> 80


def check_name(errs, where, v, max_len=253):
    if not isinstance(v, str) or not v.strip():
        errs.append(f"{where}: must be a non-empty string, got {v!r}")
    elif len(v.encode()) > max_len or any(ord(ch) < 32 or ord(ch) == 127 for ch in v):
        errs.append(f"{where}: {v[:60]!r} is not a valid name (≤{max_len} bytes, no control chars)")


def check_event(errs, where, ev, ids):
    if not isinstance(ev, dict):
        errs.append(f"{where}: event is not an object")
        return None
    for k in ev:
        if k not in EVENT_KEYS:
            errs.append(f"{where}: unknown event field {k!r}")
    for k in ("id", "time", "type", "severity"):
        if k not in ev:
            errs.append(f"{where}: missing {k}")
            return None
    eid = ev["id"]
    if not isinstance(eid, str) or not ULID_RE.match(eid):
        errs.append(f"{where}.id: {eid!r} is not a ULID (26 Crockford base32 chars)")
    elif eid in ids:
        errs.append(f"{where}.id: {eid} is used twice (first at {ids[eid]})")
    else:
        ids[eid] = where
    t = parse_time(ev["time"])
    if t is None:
        errs.append(f"{where}.time: {ev['time']!r} is not RFC 3339")
    typ = ev["type"]
    if not isinstance(typ, str) or len(typ) > 128 or not TYPE_RE.match(typ):
        errs.append(f"{where}.type: {typ!r} is not <source>.<domain>.<anomaly>")
        typ = ""
    if ev["severity"] not in SEVERITIES:
        errs.append(f"{where}.severity: {ev['severity']!r} not one of {sorted(SEVERITIES)}")
    ent = ev.get("entity", {})
    if not isinstance(ent, dict):
        errs.append(f"{where}.entity: not an object")
        ent = {}
    for k, v in ent.items():
        if k not in ENTITY_KEYS:
            errs.append(f"{where}.entity: unknown key {k!r}")
        elif k == "workload":
            if not isinstance(v, dict) or set(v) != {"kind", "name"}:
                errs.append(f"{where}.entity.workload: must be {{kind, name}}, got {v!r}")
            else:
                check_name(errs, f"{where}.entity.workload.kind", v["kind"], 63)
                check_name(errs, f"{where}.entity.workload.name", v["name"])
        else:
            check_name(errs, f"{where}.entity.{k}", v)
    attrs = ev.get("attributes", {})
    if not isinstance(attrs, dict):
        errs.append(f"{where}.attributes: not an object")
        attrs = {}
    if len(attrs) > 64:
        errs.append(f"{where}.attributes: {len(attrs)} keys, limit 64")
    for k, v in attrs.items():
        if not KEY_RE.match(k):
            errs.append(f"{where}.attributes: key {k!r} is not 1-64 chars of a-z 0-9 _ .")
        if isinstance(v, bool):
            continue
        if isinstance(v, int):
            if not I64[0] <= v <= I64[1]:
                errs.append(f"{where}.attributes.{k}: {v} out of i64 range")
        elif isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                errs.append(f"{where}.attributes.{k}: not finite")
        elif isinstance(v, str):
            if len(v.encode()) > 4096:
                errs.append(f"{where}.attributes.{k}: {len(v.encode())} bytes, limit 4096")
        else:
            errs.append(f"{where}.attributes.{k}: {type(v).__name__} is not a scalar")
    # object only on kubernetes.watch.*
    is_watch = typ.startswith("kubernetes.watch.")
    obj = ev.get("object")
    if is_watch:
        if typ.split(".")[2] not in ("added", "modified", "deleted"):
            errs.append(f"{where}.type: {typ} is not kubernetes.watch.added|modified|deleted")
        if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
            errs.append(f"{where}.object: a watch event needs a Kubernetes object with `kind`")
        elif len(json.dumps(obj, separators=(",", ":")).encode()) > 512 * 1024:
            errs.append(f"{where}.object: larger than 512 KiB")
        else:
            check_object(errs, where, ev, obj)
        if ev["severity"] != "info":
            errs.append(f"{where}: watch events are severity info")
    elif "object" in ev:
        errs.append(f"{where}.object: only kubernetes.watch.* events carry an object")
    # semantic checks
    need = REQUIRED_ATTRS.get(typ)
    if need:
        missing = need - set(attrs)
        if missing:
            errs.append(f"{where}: {typ} lacks attributes {sorted(missing)}")
    if typ == "kernel.network.connect_stats" and not (set(REQUIRED_ATTRS[typ]) - set(attrs)):
        if attrs["successes"] + attrs["refused"] + attrs["timed_out"] + attrs["errors"] != attrs["attempts"]:
            errs.append(f"{where}: connect_stats counts do not add up to attempts")
        if set(ent) - {"node"}:
            errs.append(f"{where}: connect_stats is per node (entity: node only)")
    if typ == "kernel.container.abnormal_exit" and "exit_code" not in attrs and "signal" not in attrs:
        errs.append(f"{where}: abnormal_exit needs exit_code or signal")
    if typ.startswith("node.pressure.") and "some_avg10" in attrs:
        res = typ.split(".")[2]
        if attrs["some_avg10"] < PSI_THRESHOLD[res] * 0.5:
            errs.append(f"{where}: {typ} some_avg10 {attrs['some_avg10']} is not pressure")
    if typ.startswith("kernel.") or typ.startswith("node."):
        if "node" not in ent:
            errs.append(f"{where}: agent facts carry entity.node")
    if "error_ratio" in attrs and not (0 <= attrs["error_ratio"] <= 1):
        errs.append(f"{where}: error_ratio {attrs['error_ratio']} outside 0..1")
    if typ.startswith("alert.") and eid and isinstance(eid, str) and ULID_RE.match(eid) and t:
        if ulid_ms(eid) != int(t.timestamp() * 1000):
            errs.append(f"{where}: alert id time part differs from the alert time")
    return t


def check_object(errs, where, ev, obj):
    kind = obj["kind"]
    md = obj.get("metadata")
    if not isinstance(md, dict) or not md.get("name"):
        errs.append(f"{where}.object.metadata.name missing")
        return
    if not md.get("resourceVersion"):
        errs.append(f"{where}.object.metadata.resourceVersion missing")
    ent = ev.get("entity", {})
    if kind in NAMESPACED:
        if not md.get("namespace"):
            errs.append(f"{where}.object: {kind} without metadata.namespace")
        elif ent.get("namespace") != md["namespace"]:
            errs.append(f"{where}.entity.namespace differs from the object's namespace")
    if kind == "Pod":
        if not md.get("uid"):
            errs.append(f"{where}.object: Pod without uid")
        st = obj.get("status", {})
        for cs in st.get("containerStatuses", []):
            if "restartCount" not in cs:
                errs.append(f"{where}.object: containerStatus without restartCount")
    if kind == "EndpointSlice":
        if "kubernetes.io/service-name" not in md.get("labels", {}):
            errs.append(f"{where}.object: EndpointSlice without kubernetes.io/service-name")
        for e in obj.get("endpoints", []):
            if "ready" not in e.get("conditions", {}):
                errs.append(f"{where}.object: endpoint without conditions.ready")
    if kind == "Event":
        for k in ("involvedObject", "reason", "message", "type", "count"):
            if k not in obj:
                errs.append(f"{where}.object: Event without {k}")
        if obj.get("type") not in ("Normal", "Warning"):
            errs.append(f"{where}.object: Event type {obj.get('type')!r}")
    if kind == "ReplicaSet":
        if not md.get("ownerReferences"):
            errs.append(f"{where}.object: ReplicaSet without ownerReferences")
        if "deployment.kubernetes.io/revision" not in md.get("annotations", {}):
            errs.append(f"{where}.object: ReplicaSet without revision annotation")


def validate_stream(path, label, all_ids):
    errs = []
    seqs = {}
    objects = set()
    pod_nodes = {}
    n_events = 0
    first = last = None
    with open(path, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            where = f"{label}:{ln}"
            try:
                b = json.loads(line)
            except json.JSONDecodeError as e:
                errs.append(f"{where}: not JSON: {e}")
                continue
            if not isinstance(b, dict):
                errs.append(f"{where}: batch is not an object")
                continue
            for k in b:
                if k not in BATCH_KEYS:
                    errs.append(f"{where}: unknown batch field {k!r}")
            if b.get("version") != 1:
                errs.append(f"{where}: version must be 1")
            check_name(errs, f"{where}.agent_id", b.get("agent_id"))
            check_name(errs, f"{where}.node", b.get("node"))
            seq = b.get("seq")
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
                errs.append(f"{where}.seq: {seq!r} is not an integer ≥ 1")
            else:
                want = seqs.get(b.get("agent_id"), 0) + 1
                if seq != want:
                    errs.append(f"{where}.seq: {b.get('agent_id')} sent seq {seq}, expected {want}")
                seqs[b.get("agent_id")] = seq
            evs = b.get("events")
            if not isinstance(evs, list):
                errs.append(f"{where}.events: not an array")
                continue
            if len(evs) > 10000:
                errs.append(f"{where}.events: more than 10,000 events")
            prev = None
            for i, ev in enumerate(evs):
                t = check_event(errs, f"{where}.events[{i}]", ev, all_ids)
                n_events += 1
                if t is not None:
                    if prev is not None and t < prev:
                        errs.append(f"{where}.events[{i}]: time goes backwards within the batch")
                    prev = t
                    first = t if first is None or t < first else first
                    last = t if last is None or t > last else last
                obj = ev.get("object") if isinstance(ev, dict) else None
                ent = ev.get("entity") if isinstance(ev, dict) else None
                agent = b.get("agent_id", "")
                # A node agent speaks for its own node, about pods the state shows there.
                if isinstance(ent, dict) and agent.startswith("tapio-agent-"):
                    node = agent[len("tapio-agent-"):]
                    if ent.get("node") != node or b.get("node") != node:
                        errs.append(f"{where}.events[{i}]: {agent} reports for node {ent.get('node')!r}")
                    pod = ent.get("pod")
                    if pod and (ent.get("namespace"), pod) not in pod_nodes:
                        errs.append(f"{where}.events[{i}]: pod {pod} is not in the Kubernetes state seen so far")
                    elif pod and pod_nodes[(ent.get("namespace"), pod)] != node:
                        errs.append(f"{where}.events[{i}]: pod {pod} runs on "
                                    f"{pod_nodes[(ent.get('namespace'), pod)]}, not {node}")
                if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
                    md = obj["metadata"]
                    if obj.get("kind") == "Pod" and (obj.get("spec") or {}).get("nodeName"):
                        pod_nodes[(md.get("namespace"), md.get("name"))] = obj["spec"]["nodeName"]
                    if obj.get("kind") in CLUSTER_SCOPED or not md.get("namespace"):
                        objects.add(f"{obj.get('kind')}/{md.get('name')}")
                    else:
                        objects.add(f"{obj.get('kind')}/{md.get('namespace')}/{md.get('name')}")
    return errs, objects, n_events, first, last


def validate_expected(path, label, objects):
    errs = []
    try:
        doc = json.load(open(path, encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        return [f"{label}: {e}"], None
    for k in ("description", "source", "incidents"):
        if k not in doc:
            errs.append(f"{label}: missing {k}")
    incs = doc.get("incidents", [])
    if not isinstance(incs, list):
        return errs + [f"{label}: incidents is not a list"], None
    for i, inc in enumerate(incs):
        w = f"{label}: incidents[{i}]"
        for k in inc:
            if k not in ("severity", "severity_reason", "cause", "entity", "involves"):
                errs.append(f"{w}: unknown field {k!r}")
        if inc.get("severity") not in ("P1", "P2", "P3", "P4"):
            errs.append(f"{w}.severity: {inc.get('severity')!r}")
        if not inc.get("severity_reason"):
            errs.append(f"{w}: severity_reason missing")
        elif not inc["severity_reason"].startswith(inc.get("severity", "?")):
            errs.append(f"{w}: severity_reason should start with the severity it justifies")
        if inc.get("cause") not in CAUSES:
            errs.append(f"{w}.cause: {inc.get('cause')!r} not a root-cause kind")
        refs = [inc.get("entity")] + list(inc.get("involves", []))
        for r in refs:
            if not isinstance(r, str) or not re.match(r"^([A-Z][A-Za-z]+/[^/]+|[A-Z][A-Za-z]+/[^/]+/[^/]+)$", r):
                errs.append(f"{w}: entity reference {r!r} is not Kind/ns/name or Kind/name")
            elif r.split("/")[0] in FACTOR_KINDS:
                if not inc.get("involves"):
                    errs.append(f"{w}: {r} is a common factor; name its nodes in involves")
            elif r not in objects:
                errs.append(f"{w}: {r} does not appear as an object in the stream")
    return errs, doc


def main(argv):
    dirs = argv[1:] or sorted(
        os.path.join(HERE, d) for d in os.listdir(HERE)
        if os.path.isdir(os.path.join(HERE, d)) and not d.startswith((".", "_")))
    all_errs = []
    all_ids = {}
    summary = []
    for d in dirs:
        label = os.path.basename(d.rstrip("/"))
        stream = os.path.join(d, "stream.jsonl")
        expected = os.path.join(d, "expected.json")
        if not os.path.exists(stream) or not os.path.exists(expected):
            all_errs.append(f"{label}: needs stream.jsonl and expected.json")
            continue
        errs, objects, n, first, last = validate_stream(stream, label, all_ids)
        e2, doc = validate_expected(expected, label, objects)
        errs += e2
        # A replayed day of routine churn ("-day" scenarios) is long by design.
        limit = 40000 if label.endswith("-day") else 360
        if not 40 <= n <= limit:
            errs.append(f"{label}: {n} events; keep a scenario between 40 and ~300")
        elif n > 300 and limit == 360:
            print(f"note: {label} has {n} events (above the ~300 guideline)")
        all_errs += errs
        span = (last - first).total_seconds() / 60 if first and last else 0
        incs = doc.get("incidents", []) if doc else []
        summary.append((label, n, span, incs))
    for label, n, span, incs in summary:
        desc = "; ".join(f"{i['severity']} {i['cause']} {i['entity']}" for i in incs) or "(noise only)"
        print(f"{label:55s} {n:4d} events {span:6.1f} min  {desc}")
    if len(argv) == 1:
        incs = [i for _, _, _, x in summary for i in x]
        causes = {i["cause"] for i in incs}
        missing = BASE_CAUSES - causes
        if missing:
            all_errs.append(f"suite: causes never expected: {sorted(missing)}")
        if sum(1 for s in summary if not s[3]) < 2:
            all_errs.append("suite: fewer than 2 noise-only scenarios")
        if sum(1 for s in summary if len(s[3]) >= 2) < 4:
            all_errs.append("suite: fewer than 4 scenarios with two independent incidents")
        if sum(1 for s in summary if any(i["cause"] == "none" for i in s[3])) < 2:
            all_errs.append("suite: fewer than 2 scenarios expecting cause none")
        print(f"{len(summary)} scenarios, {sum(s[1] for s in summary)} events, "
              f"{len(incs)} expected incidents")
    for e in all_errs:
        print("ERROR", e)
    return 1 if all_errs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
