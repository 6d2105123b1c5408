#!/usr/bin/env python3
"""Generate Tapio's scenario suite: evidence streams with ground truth.

    python3 tests/scenarios/generate.py            # (re)write every scenario, then validate
    python3 tests/scenarios/generate.py --check    # regenerate in memory, compare with disk

Each scenario is a directory `NN-name/` holding `stream.jsonl` (replay format, one evidence
batch per line, docs/evidence-format.md) and `expected.json` (docs/scenarios.md). The
output is deterministic: a fixed seed per scenario, a fixed base time
(2026-11-27T10:00:00Z), ULIDs derived from the event time and a per-scenario counter, so a
re-run reproduces every file byte for byte.

Conventions used by every scenario:

* Senders, each with its own `seq` starting at 1:
  - `kube-watch` — Kubernetes state (`kubernetes.watch.added|modified|deleted`, severity
    `info`, the real object in `object`; core/v1 `Event` objects included). The first
    batch is the initial snapshot (ADDED for everything present before the incident).
  - `tapio-agent-<node>` — one per node, the facts `tapio-agent` sends (docs/agent.md),
    entity enriched with node/namespace/pod/pod_uid/container/container_id/workload, plus
    the enrichment attributes `cgroup`, `runtime`, `qos_class`. `connect_stats` are
    per node and destination (entity: node only), as the agent reports them; the agents
    in these scenarios run with `stats_interval_seconds: 30`.
  - `alertmanager:tapio` — alerts exactly as the Alertmanager receiver stores them
    (crates/tapio-server/src/pipeline/alertmanager.rs): time = startsAt (firing) / endsAt
    (resolved), entity from the labels, deterministic ids, one event per alert state.
  - `argocd`, `platform-ops`, `k8s-audit`, `kubectl-audit`, `ci-azure-devops` — change
    markers (`change.deployment.rollout`, `change.config.updated`,
    `change.node.maintenance`, `change.cluster.upgrade`).
* Kubernetes state events carry entity `{cluster, namespace}` (or `{cluster, node}` for
  Node objects); the cluster is `prod`. Agent facts carry no `cluster` (the agent does not
  know it). Alerts carry the `cluster` label like every kube-prometheus alert.
* Batches are in the order a live server stores them: by arrival time. Within a batch,
  event times never decrease. Only alerts delivered late (Alertmanager could not reach
  Tapio, 08-zalando-dns-outage) carry an event time earlier than the batch before them.
* A node that dies stops sending: its agent is silent from the failure on.
* Event times run up to ~96 minutes past the base time. Replaying to a live server whose
  clock is earlier than that needs `tapio-server --max-future-skew 3h`.

How it works: a `World` holds the cluster's objects (Node, Pod, Deployment + ReplicaSet,
StatefulSet, DaemonSet, Job, Service + EndpointSlice, ConfigMap, Secret) and emits a watch
event whenever an object's rendering changes; derived state (EndpointSlice readiness,
ReplicaSet/Deployment/StatefulSet/DaemonSet/Job status) is computed from the pods, so it
is always consistent. Story steps are generator "processes" yielding the absolute time of
their next step; `Sim` runs them interleaved in time order and flushes the changes of one
instant together. Agent facts and alerts are emitted directly. To add a scenario, write a
function decorated with `@scenario(name, description, source)` that builds the world,
calls `w.snapshot(0)`, spawns its processes, `w.run()`s and states `sc.expect(...)`.
"""

import base64
import copy
import datetime as dt
import hashlib
import heapq
import json
import os
import random
import sys

sys.dont_write_bytecode = True  # keep tests/scenarios free of __pycache__

BASE = dt.datetime(2026, 11, 27, 10, 0, 0, tzinfo=dt.timezone.utc)
SEED = 20261127
CLUSTER = "prod"
HERE = os.path.dirname(os.path.abspath(__file__))
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Kubernetes' SafeEncodeString alphabet (pod-template-hash, generated name suffixes).
K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
STATS_INTERVAL = 30

# ---------------------------------------------------------------------------------------
# Time, ids, quantities
# ---------------------------------------------------------------------------------------


def at(t):
    """RFC 3339 for BASE + t seconds (t may be negative or fractional; millisecond precision)."""
    total_ms = int(round(t * 1000))
    when = BASE + dt.timedelta(milliseconds=total_ms)
    ms = total_ms % 1000
    if ms:
        return when.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % ms
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def unix_ms(t):
    return int(round(BASE.timestamp() * 1000 + t * 1000))


def ulid_encode(value):
    out = []
    for _ in range(26):
        out.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(out))


def ulid(ms, random80):
    return ulid_encode(((ms & ((1 << 48) - 1)) << 80) | (random80 & ((1 << 80) - 1)))


def nanos_rfc3339(t):
    """chrono's to_rfc3339_opts(SecondsFormat::Nanos, true)."""
    total_ms = int(round(t * 1000))
    when = BASE + dt.timedelta(milliseconds=total_ms)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + ".%09dZ" % ((total_ms % 1000) * 1_000_000)


def autosi_rfc3339(t):
    """chrono's SecondsFormat::AutoSi: no fraction when whole seconds."""
    return at(t)


def mib(n):
    return n * 1024 * 1024


def gib(n):
    return n * 1024 * 1024 * 1024


# ---------------------------------------------------------------------------------------
# Scenario: emission, batching, output
# ---------------------------------------------------------------------------------------

REGISTRY = []


def scenario(name, description, source):
    def deco(fn):
        REGISTRY.append((name, description, source, fn))
        return fn

    return deco


class Scenario:
    def __init__(self, name, description, source):
        self.name = name
        self.description = description
        self.source = source
        self.rng = random.Random(f"{SEED}/{name}")
        self.items = []  # (store_t, order, agent_id, node, event)
        self.order = 0
        self.counter = 0
        self.agent_node = {}
        self.incidents = []
        self.cluster = CLUSTER

    # -- ids ---------------------------------------------------------------------------
    def hexstr(self, n):
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def uuid(self):
        h = self.hexstr(32)
        h = h[:12] + "4" + h[13:16] + self.rng.choice("89ab") + h[17:]
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def k8s_suffix(self, n):
        return "".join(self.rng.choice(K8S_ALPHABET) for _ in range(n))

    def choice_len(self):
        """Length of a generated pod-template-hash (9 or 10 characters)."""
        return self.rng.choice([9, 10, 10, 10])

    def next_ulid(self, t):
        self.counter += 1
        digest = hashlib.sha256(f"tapio-scenarios/{self.name}/{self.counter}".encode()).digest()
        return ulid(unix_ms(t), int.from_bytes(digest[:10], "big"))

    # -- emission ----------------------------------------------------------------------
    def register_agent(self, agent_id, node):
        self.agent_node.setdefault(agent_id, node)

    def emit(self, t, agent_id, typ, severity, entity=None, attributes=None, obj=None,
             event_id=None, store_t=None):
        ev = {"id": event_id or self.next_ulid(t), "time": at(t), "type": typ,
              "severity": severity}
        if entity:
            ev["entity"] = entity
        if attributes:
            ev["attributes"] = attributes
        if obj is not None:
            ev["object"] = obj
        self.order += 1
        self.items.append((t if store_t is None else store_t, self.order, agent_id, ev, t))
        return ev

    def expect(self, severity, severity_reason, cause, entity, involves=()):
        inc = {"severity": severity, "severity_reason": severity_reason, "cause": cause,
               "entity": entity}
        if involves:
            inc["involves"] = list(involves)
        self.incidents.append(inc)

    # -- output ------------------------------------------------------------------------
    def batches(self):
        items = sorted(self.items, key=lambda x: (x[0], x[1]))
        out = []
        seq = {}
        cur = None
        for store_t, _order, agent, ev, ev_t in items:
            window = 1.0 if agent == "kube-watch" else 2.0
            if (cur is None or cur["agent_id"] != agent or store_t - cur["_start"] > window
                    or len(cur["events"]) >= 500):
                seq[agent] = seq.get(agent, 0) + 1
                cur = {"version": 1, "agent_id": agent, "node": self.agent_node[agent],
                       "seq": seq[agent], "events": [], "_start": store_t}
                out.append(cur)
            cur["events"].append(ev)
        for b in out:
            del b["_start"]
            # A sender sorts what it sends by event time (stable for equal times).
            b["events"].sort(key=lambda e: e["time"])
        return out

    def stream_text(self):
        return "".join(json.dumps(b, separators=(",", ":"), ensure_ascii=False) + "\n"
                       for b in self.batches())

    def expected_text(self):
        doc = {"description": self.description, "source": self.source,
               "incidents": self.incidents}
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------------
# Kubernetes objects
# ---------------------------------------------------------------------------------------

WATCH = "kube-watch"


class Model:
    kind = "?"
    namespaced = True

    def key(self):
        return (self.kind, getattr(self, "ns", None), self.name)


class Node(Model):
    kind = "Node"
    namespaced = False

    def __init__(self, w, name, ip, zone, pod_cidr, cpu=8, mem_gi=32, instance_type="m6i.2xlarge",
                 taints=None, labels=None, created=-86400 * 21, reserved_mem_mi=1536,
                 kubelet="v1.30.6", provider="aws"):
        self.w, self.name, self.ip, self.zone, self.pod_cidr = w, name, ip, zone, pod_cidr
        self.uid = w.sc.uuid()
        self.cpu, self.mem_gi, self.instance_type = cpu, mem_gi, instance_type
        self.taints = list(taints or [])
        self.labels = dict(labels or {})
        self.created = created
        self.reserved_mem_mi = reserved_mem_mi
        self.kubelet = kubelet
        self.provider = provider
        self.unschedulable = False
        self.heartbeat = created
        since = created + 40
        self.conds = {
            "MemoryPressure": ["False", "KubeletHasSufficientMemory",
                               "kubelet has sufficient memory available", since],
            "DiskPressure": ["False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure",
                             since],
            "PIDPressure": ["False", "KubeletHasSufficientPID",
                            "kubelet has sufficient PID available", since],
            "Ready": ["True", "KubeletReady", "kubelet is posting ready status", since],
        }

    def set_cond(self, t, typ, status, reason, message, heartbeat=True):
        c = self.conds[typ]
        if c[0] != status:
            c[3] = t
        c[0], c[1], c[2] = status, reason, message
        if heartbeat:
            self.heartbeat = t

    def add_taint(self, t, key, effect, value=None):
        taint = {"key": key, "effect": effect}
        if value is not None:
            taint["value"] = value
        if effect == "NoExecute":
            taint["timeAdded"] = at(t)
        self.taints.append(taint)

    def remove_taint(self, key, effect=None):
        self.taints = [x for x in self.taints
                       if not (x["key"] == key and (effect is None or x["effect"] == effect))]

    def render(self):
        alloc_mem_ki = self.mem_gi * 1024 * 1024 - self.reserved_mem_mi * 1024 - 100 * 1024
        labels = {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "node.kubernetes.io/instance-type": self.instance_type,
            "topology.kubernetes.io/region": self.zone[:-1],
            "topology.kubernetes.io/zone": self.zone,
        }
        labels.update(self.labels)
        spec = {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]}
        if self.provider == "aws":
            spec["providerID"] = f"aws:///{self.zone}/i-0{self.uid.replace('-', '')[:16]}"
        else:
            spec["providerID"] = f"gce://prod-project/{self.zone}/{self.name}"
        if self.taints:
            spec["taints"] = copy.deepcopy(self.taints)
        if self.unschedulable:
            spec["unschedulable"] = True
        conds = []
        for typ in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready"):
            s, r, m, since = self.conds[typ]
            conds.append({"type": typ, "status": s, "lastHeartbeatTime": at(self.heartbeat),
                          "lastTransitionTime": at(since), "reason": r, "message": m})
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.name, "uid": self.uid, "resourceVersion": "",
                         "creationTimestamp": at(self.created), "labels": labels,
                         "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                         "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
            "spec": spec,
            "status": {
                "capacity": {"cpu": str(self.cpu), "ephemeral-storage": "104845292Ki",
                             "hugepages-2Mi": "0", "memory": f"{self.mem_gi * 1024 * 1024}Ki",
                             "pods": "110"},
                "allocatable": {"cpu": f"{self.cpu * 1000 - 90}m",
                                "ephemeral-storage": "95551679124",
                                "hugepages-2Mi": "0", "memory": f"{alloc_mem_ki}Ki",
                                "pods": "110"},
                "conditions": conds,
                "addresses": [{"type": "InternalIP", "address": self.ip},
                              {"type": "Hostname", "address": self.name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"architecture": "amd64", "bootID": self.uid[::-1],
                             "containerRuntimeVersion": "containerd://1.7.23",
                             "kernelVersion": "6.1.112-124.190.amzn2023.x86_64",
                             "kubeProxyVersion": self.kubelet, "kubeletVersion": self.kubelet,
                             "machineID": self.uid.replace("-", ""),
                             "operatingSystem": "linux",
                             "osImage": "Amazon Linux 2023.6.20241111",
                             "systemUUID": self.uid},
            },
        }


class Container:
    def __init__(self, name, image, comm, req_cpu="250m", req_mem="256Mi", lim_mem="512Mi",
                 lim_cpu=None, port=8080, env_cm=None, volume_cm=None, readiness=None,
                 liveness=None, secret_volume=None, port_name="http", env_refs=None):
        self.name, self.image, self.comm = name, image, comm
        self.env_refs = env_refs
        self.port_name = port_name
        self.req_cpu, self.req_mem, self.lim_mem, self.lim_cpu = req_cpu, req_mem, lim_mem, lim_cpu
        self.port = port
        self.env_cm, self.volume_cm, self.secret_volume = env_cm, volume_cm, secret_volume
        self.readiness = readiness
        self.liveness = liveness
        # status
        self.state = ("running", None)
        self.last = None
        self.restarts = 0
        self.ready = True
        self.started = True
        self.cid = None
        self.image_id = None

    def spec(self):
        c = {"name": self.name, "image": self.image, "imagePullPolicy": "IfNotPresent"}
        if self.port:
            c["ports"] = [{"name": self.port_name, "containerPort": self.port, "protocol": "TCP"}]
        res = {}
        req = {}
        if self.req_cpu:
            req["cpu"] = self.req_cpu
        if self.req_mem:
            req["memory"] = self.req_mem
        lim = {}
        if self.lim_cpu:
            lim["cpu"] = self.lim_cpu
        if self.lim_mem:
            lim["memory"] = self.lim_mem
        if lim:
            res["limits"] = lim
        if req:
            res["requests"] = req
        c["resources"] = res
        if self.env_cm:
            c["envFrom"] = [{"configMapRef": {"name": self.env_cm}}]
        if self.env_refs:
            c["env"] = [{"name": n, "valueFrom": {"configMapKeyRef": {"name": cm, "key": k}}}
                        for (n, cm, k) in self.env_refs]
        mounts = []
        if self.volume_cm:
            mounts.append({"name": "config", "mountPath": "/etc/app", "readOnly": True})
        if self.secret_volume:
            mounts.append({"name": "tls", "mountPath": "/etc/tls", "readOnly": True})
        if mounts:
            c["volumeMounts"] = mounts
        if self.readiness is not None:
            c["readinessProbe"] = self.readiness
        elif self.port:
            c["readinessProbe"] = {"httpGet": {"path": "/ready", "port": self.port,
                                               "scheme": "HTTP"},
                                   "periodSeconds": 5, "timeoutSeconds": 1,
                                   "failureThreshold": 3, "successThreshold": 1}
        if self.liveness is not None:
            c["livenessProbe"] = self.liveness
        c["terminationMessagePath"] = "/dev/termination-log"
        c["terminationMessagePolicy"] = "FallbackToLogsOnError"
        return c

    def status(self):
        s = {"name": self.name, "image": self.image, "ready": self.ready,
             "restartCount": self.restarts, "started": self.started}
        if self.cid:
            s["containerID"] = "containerd://" + self.cid
        if self.image_id:
            s["imageID"] = self.image_id
        st = self.state
        if st[0] == "running":
            s["state"] = {"running": {"startedAt": at(st[1])}}
        elif st[0] == "waiting":
            w = {"reason": st[1]}
            if st[2]:
                w["message"] = st[2]
            s["state"] = {"waiting": w}
        else:
            s["state"] = {"terminated": term_dict(st)}
        s["lastState"] = {"terminated": term_dict(self.last)} if self.last else {}
        return s


def term_dict(st):
    # ("terminated", reason, exit_code, started, finished, message, cid)
    d = {"exitCode": st[2], "reason": st[1], "startedAt": at(st[3]), "finishedAt": at(st[4])}
    if st[5]:
        d["message"] = st[5]
    if len(st) > 6 and st[6]:
        d["containerID"] = "containerd://" + st[6]
    return d


class Pod(Model):
    kind = "Pod"

    def __init__(self, w, ns, name, labels, owner, containers, node=None, created=0,
                 qos="Burstable", tolerations=None, priority_class=None, annotations=None,
                 node_selector=None, restart_policy="Always"):
        self.w, self.ns, self.name = w, ns, name
        self.uid = w.sc.uuid()
        self.labels = dict(labels)
        self.owner = owner  # (apiVersion, kind, name, uid) or None
        self.containers = containers
        self.node = node
        self.ip = None
        self.created = created
        self.qos = qos
        self.tolerations = tolerations
        self.priority_class = priority_class
        self.annotations = annotations
        self.node_selector = node_selector
        self.restart_policy = restart_policy
        self.phase = "Pending"
        self.reason = None
        self.message = None
        self.sched = None  # None | ("True",) | ("False", reason, message)
        self.deletion = None
        self.start_time = None
        self.force_unready = False
        self.cond_since = {}

    # -- derived ---------------------------------------------------------------------------
    def containers_ready(self):
        return all(c.ready for c in self.containers)

    def is_ready(self):
        return (self.phase == "Running" and self.containers_ready() and not self.force_unready)

    def active(self):
        return self.deletion is None and self.phase not in ("Succeeded", "Failed")

    def workload(self):
        if not self.owner:
            return None
        _api, kind, name, _uid = self.owner
        if kind == "ReplicaSet" and "pod-template-hash" in self.labels:
            return {"kind": "Deployment", "name": name.rsplit("-", 1)[0]}
        return {"kind": kind, "name": name}

    def _cond(self, typ, status, now, reason=None, message=None):
        prev = self.cond_since.get(typ)
        if prev is None:
            self.cond_since[typ] = (status, self.start_time if self.start_time is not None else now)
        elif prev[0] != status:
            self.cond_since[typ] = (status, now)
        c = {"type": typ, "status": status, "lastProbeTime": None,
             "lastTransitionTime": at(self.cond_since[typ][1])}
        if reason:
            c["reason"] = reason
        if message:
            c["message"] = message
        return c

    def render(self):
        now = self.w.now
        md = {"name": self.name, "namespace": self.ns, "uid": self.uid, "resourceVersion": "",
              "creationTimestamp": at(self.created), "labels": dict(self.labels)}
        if self.annotations:
            md["annotations"] = dict(self.annotations)
        if self.owner:
            api, kind, name, uid = self.owner
            md["ownerReferences"] = [{"apiVersion": api, "kind": kind, "name": name, "uid": uid,
                                      "controller": True, "blockOwnerDeletion": True}]
        if self.deletion is not None:
            md["deletionTimestamp"] = at(self.deletion)
            md["deletionGracePeriodSeconds"] = 30
        spec = {"containers": [c.spec() for c in self.containers],
                "restartPolicy": self.restart_policy, "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
                "schedulerName": "default-scheduler", "enableServiceLinks": True,
                "preemptionPolicy": "PreemptLowerPriority", "priority": 0}
        if self.priority_class:
            spec["priorityClassName"] = self.priority_class
            spec["priority"] = 2000001000 if self.priority_class.startswith("system-") else 1000
        vols = []
        for c in self.containers:
            if c.volume_cm:
                vols.append({"name": "config", "configMap": {"name": c.volume_cm,
                                                             "defaultMode": 420}})
            if c.secret_volume:
                vols.append({"name": "tls", "secret": {"secretName": c.secret_volume,
                                                       "defaultMode": 420}})
        vols.append({"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}})
        spec["volumes"] = vols
        if self.node:
            spec["nodeName"] = self.node
        if self.node_selector:
            spec["nodeSelector"] = dict(self.node_selector)
        tol = [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                "effect": "NoExecute", "tolerationSeconds": 300},
               {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                "effect": "NoExecute", "tolerationSeconds": 300}]
        if self.tolerations:
            tol = list(self.tolerations) + tol
        spec["tolerations"] = tol

        status = {"phase": self.phase, "qosClass": self.qos}
        if self.reason:
            status["reason"] = self.reason
        if self.message:
            status["message"] = self.message
        conds = []
        if self.sched is None:
            pass
        elif self.sched[0] == "True":
            if self.phase not in ("Pending",) or self.start_time is not None:
                conds.append(self._cond("PodReadyToStartContainers",
                                        "True" if self.phase == "Running" else "False", now))
                conds.append(self._cond("Initialized", "True", now))
                ready = self.is_ready()
                cr = self.containers_ready()
                not_ready = [c.name for c in self.containers if not c.ready]
                msg = (f"containers with unready status: [{' '.join(not_ready)}]"
                       if not_ready else None)
                if self.phase in ("Succeeded", "Failed"):
                    conds.append(self._cond("Ready", "False", now, "PodCompleted"))
                    conds.append(self._cond("ContainersReady", "False", now, "PodCompleted"))
                elif self.force_unready and cr:
                    conds.append(self._cond("Ready", "False", now))
                    conds.append(self._cond("ContainersReady", "True", now))
                else:
                    conds.append(self._cond("Ready", "True" if ready else "False", now,
                                            None if ready else "ContainersNotReady", msg))
                    conds.append(self._cond("ContainersReady", "True" if cr else "False", now,
                                            None if cr else "ContainersNotReady", msg))
            conds.append(self._cond("PodScheduled", "True", now))
        else:
            conds.append(self._cond("PodScheduled", "False", now, self.sched[1], self.sched[2]))
        if conds:
            status["conditions"] = conds
        if self.node and self.start_time is not None:
            node = self.w.get("Node", None, self.node)
            if node:
                status["hostIP"] = node.ip
                status["hostIPs"] = [{"ip": node.ip}]
        if self.ip and self.start_time is not None:
            status["podIP"] = self.ip
            status["podIPs"] = [{"ip": self.ip}]
        if self.start_time is not None:
            status["startTime"] = at(self.start_time)
            status["containerStatuses"] = [c.status() for c in self.containers]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec,
                "status": status}


class ReplicaSet(Model):
    kind = "ReplicaSet"

    def __init__(self, w, dep, pod_hash, revision, containers, replicas, created):
        self.w, self.dep, self.ns = w, dep, dep.ns
        self.name = f"{dep.name}-{pod_hash}"
        self.hash = pod_hash
        self.uid = w.sc.uuid()
        self.revision = revision
        self.containers = containers
        self.replicas = replicas
        self.created = created
        self.failure = None  # (reason, message, since)

    def pods(self):
        return [p for p in self.w.pods() if p.owner and p.owner[3] == self.uid]

    def render(self):
        pods = [p for p in self.pods() if p.active()]
        ready = sum(1 for p in pods if p.is_ready())
        labels = dict(self.dep.labels)
        labels["pod-template-hash"] = self.hash
        status = {"replicas": len(pods), "fullyLabeledReplicas": len(pods),
                  "readyReplicas": ready, "availableReplicas": ready,
                  "observedGeneration": self.dep.generation}
        if not ready:
            del status["readyReplicas"]
            del status["availableReplicas"]
        if not pods:
            del status["fullyLabeledReplicas"]
        if self.failure:
            status["conditions"] = [{"type": "ReplicaFailure", "status": "True",
                                     "lastTransitionTime": at(self.failure[2]),
                                     "reason": self.failure[0], "message": self.failure[1]}]
        return {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": self.name, "namespace": self.ns, "uid": self.uid,
                         "resourceVersion": "", "generation": self.dep.generation,
                         "creationTimestamp": at(self.created), "labels": labels,
                         "annotations": {"deployment.kubernetes.io/desired-replicas": str(self.dep.replicas),
                                         "deployment.kubernetes.io/max-replicas": str(self.dep.replicas + 1),
                                         "deployment.kubernetes.io/revision": str(self.revision)},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": self.dep.name, "uid": self.dep.uid,
                                              "controller": True, "blockOwnerDeletion": True}]},
            "spec": {"replicas": self.replicas,
                     "selector": {"matchLabels": {**self.dep.selector,
                                                  "pod-template-hash": self.hash}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [c.spec() for c in self.containers]}}},
            "status": status,
        }


class Deployment(Model):
    kind = "Deployment"

    def __init__(self, w, ns, name, replicas, labels, created, revision=1, max_surge="25%",
                 max_unavailable="25%", annotations=None):
        self.w, self.ns, self.name = w, ns, name
        self.uid = w.sc.uuid()
        self.replicas = replicas
        self.labels = dict(labels)
        self.selector = {"app": labels["app"]}
        self.created = created
        self.revision = revision
        self.generation = revision + w.sc.rng.randint(0, 3)
        self.max_surge, self.max_unavailable = max_surge, max_unavailable
        self.rs = []
        self.progress_override = None  # (status, reason, message, since)
        self.annotations = annotations or {}
        self.cond_since = {}
        self.template_annotations = {}

    @property
    def current(self):
        return self.rs[-1]

    def pods(self):
        uids = {r.uid for r in self.rs}
        return [p for p in self.w.pods() if p.owner and p.owner[3] in uids]

    def max_unavailable_abs(self):
        mu = self.max_unavailable
        if mu.endswith("%"):
            return int(self.replicas * int(mu[:-1]) / 100)
        return int(mu)

    def _cond(self, typ, status, reason, message, update_on=None):
        prev = self.cond_since.get(typ)
        now = self.w.now
        if prev is None:
            self.cond_since[typ] = (status, reason, self.created + 30, self.created + 30)
        elif prev[0] != status or prev[1] != reason:
            self.cond_since[typ] = (status, reason, now if prev[0] != status else prev[2], now)
        s = self.cond_since[typ]
        return {"type": typ, "status": status, "lastUpdateTime": at(s[3]),
                "lastTransitionTime": at(s[2]), "reason": reason, "message": message}

    def render(self):
        pods = [p for p in self.pods() if p.active()]
        cur = self.current
        updated = [p for p in pods if p.owner[3] == cur.uid]
        ready = sum(1 for p in pods if p.is_ready())
        unavailable = max(0, self.replicas - ready)
        status = {"observedGeneration": self.generation, "replicas": len(pods),
                  "updatedReplicas": len(updated), "readyReplicas": ready,
                  "availableReplicas": ready, "unavailableReplicas": unavailable}
        if not ready:
            del status["readyReplicas"]
            del status["availableReplicas"]
        if not unavailable:
            del status["unavailableReplicas"]
        avail_ok = ready >= self.replicas - self.max_unavailable_abs()
        conds = [self._cond("Available", "True" if avail_ok else "False",
                            "MinimumReplicasAvailable" if avail_ok else "MinimumReplicasUnavailable",
                            "Deployment has minimum availability." if avail_ok
                            else "Deployment does not have minimum availability.")]
        if self.progress_override:
            st, reason, message = self.progress_override
            conds.append(self._cond("Progressing", st, reason, message))
        elif (len(updated) == self.replicas and ready >= self.replicas
              and len(pods) == self.replicas and all(p.is_ready() for p in updated)):
            conds.append(self._cond("Progressing", "True", "NewReplicaSetAvailable",
                                    f'ReplicaSet "{cur.name}" has successfully progressed.'))
        else:
            conds.append(self._cond("Progressing", "True", "ReplicaSetUpdated",
                                    f'ReplicaSet "{cur.name}" is progressing.'))
        if cur.failure:
            conds.append(self._cond("ReplicaFailure", "True", cur.failure[0], cur.failure[1]))
        status["conditions"] = conds
        tmpl_md = {"labels": dict(self.labels)}
        if self.template_annotations:
            tmpl_md["annotations"] = dict(self.template_annotations)
        return {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": self.name, "namespace": self.ns, "uid": self.uid,
                         "resourceVersion": "", "generation": self.generation,
                         "creationTimestamp": at(self.created), "labels": dict(self.labels),
                         "annotations": {"deployment.kubernetes.io/revision": str(self.revision),
                                         **self.annotations}},
            "spec": {"replicas": self.replicas, "selector": {"matchLabels": dict(self.selector)},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": self.max_surge,
                                                    "maxUnavailable": self.max_unavailable}},
                     "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                     "template": {"metadata": tmpl_md,
                                  "spec": {"containers": [c.spec() for c in cur.containers]}}},
            "status": status,
        }


class StatefulSet(Model):
    kind = "StatefulSet"

    def __init__(self, w, ns, name, replicas, labels, service, containers, created):
        self.w, self.ns, self.name = w, ns, name
        self.uid = w.sc.uuid()
        self.replicas, self.labels, self.service = replicas, dict(labels), service
        self.containers = containers
        self.created = created
        self.generation = 3
        self.revision = f"{name}-{w.sc.k8s_suffix(10)}"

    def pods(self):
        return [p for p in self.w.pods() if p.owner and p.owner[3] == self.uid]

    def render(self):
        pods = [p for p in self.pods() if p.active()]
        ready = sum(1 for p in pods if p.is_ready())
        status = {"observedGeneration": self.generation, "replicas": len(pods),
                  "readyReplicas": ready, "currentReplicas": len(pods),
                  "updatedReplicas": len(pods), "availableReplicas": ready,
                  "currentRevision": self.revision, "updateRevision": self.revision,
                  "collisionCount": 0}
        if not ready:
            del status["readyReplicas"]
        return {
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": self.name, "namespace": self.ns, "uid": self.uid,
                         "resourceVersion": "", "generation": self.generation,
                         "creationTimestamp": at(self.created), "labels": dict(self.labels)},
            "spec": {"replicas": self.replicas, "serviceName": self.service,
                     "podManagementPolicy": "OrderedReady",
                     "selector": {"matchLabels": {"app": self.labels["app"]}},
                     "updateStrategy": {"type": "RollingUpdate",
                                        "rollingUpdate": {"partition": 0}},
                     "template": {"metadata": {"labels": dict(self.labels)},
                                  "spec": {"containers": [c.spec() for c in self.containers]}}},
            "status": status,
        }


class DaemonSet(Model):
    kind = "DaemonSet"

    def __init__(self, w, ns, name, labels, containers, created, desired):
        self.w, self.ns, self.name = w, ns, name
        self.uid = w.sc.uuid()
        self.labels = dict(labels)
        self.containers = containers
        self.created = created
        self.generation = 4
        self.desired = desired
        self.revision_hash = w.sc.k8s_suffix(10)
        self.tolerations = None

    def pods(self):
        return [p for p in self.w.pods() if p.owner and p.owner[3] == self.uid]

    def render(self):
        pods = [p for p in self.pods() if p.active()]
        ready = sum(1 for p in pods if p.is_ready())
        updated = sum(1 for p in pods
                      if p.labels.get("controller-revision-hash") == self.revision_hash)
        status = {"currentNumberScheduled": len(pods), "desiredNumberScheduled": self.desired,
                  "numberAvailable": ready, "numberMisscheduled": 0, "numberReady": ready,
                  "observedGeneration": self.generation, "updatedNumberScheduled": updated}
        if self.desired - ready > 0:
            status["numberUnavailable"] = self.desired - ready
        tspec = {"containers": [c.spec() for c in self.containers]}
        if self.tolerations:
            tspec["tolerations"] = self.tolerations
        return {
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": self.name, "namespace": self.ns, "uid": self.uid,
                         "resourceVersion": "", "generation": self.generation,
                         "creationTimestamp": at(self.created), "labels": dict(self.labels),
                         "annotations": {"deprecated.daemonset.template.generation": str(self.generation)}},
            "spec": {"selector": {"matchLabels": {"app": self.labels["app"]}},
                     "updateStrategy": {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
                     "revisionHistoryLimit": 10,
                     "template": {"metadata": {"labels": dict(self.labels)}, "spec": tspec}},
            "status": status,
        }


class Job(Model):
    kind = "Job"

    def __init__(self, w, ns, name, cronjob, created, containers):
        self.w, self.ns, self.name = w, ns, name
        self.uid = w.sc.uuid()
        self.cronjob = cronjob
        self.cron_uid = w.sc.uuid()
        self.created = created
        self.containers = containers
        self.complete_at = None
        self.failed_at = None
        self.failed_reason = None

    def pods(self):
        return [p for p in self.w.pods() if p.owner and p.owner[3] == self.uid]

    def render(self):
        pods = self.pods()
        active = sum(1 for p in pods if p.active())
        succeeded = sum(1 for p in pods if p.phase == "Succeeded")
        failed = sum(1 for p in pods if p.phase == "Failed")
        status = {"startTime": at(self.created), "uncountedTerminatedPods": {}}
        if active:
            status["active"] = active
            status["ready"] = sum(1 for p in pods if p.is_ready())
        else:
            status["ready"] = 0
        if succeeded:
            status["succeeded"] = succeeded
        if failed:
            status["failed"] = failed
        status["terminating"] = 0
        if self.complete_at is not None:
            status["completionTime"] = at(self.complete_at)
            status["conditions"] = [
                {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": at(self.complete_at),
                 "lastTransitionTime": at(self.complete_at)},
                {"type": "Complete", "status": "True", "lastProbeTime": at(self.complete_at),
                 "lastTransitionTime": at(self.complete_at)}]
        if self.failed_at is not None:
            status["conditions"] = [
                {"type": "Failed", "status": "True", "lastProbeTime": at(self.failed_at),
                 "lastTransitionTime": at(self.failed_at), "reason": self.failed_reason[0],
                 "message": self.failed_reason[1]}]
        labels = {"batch.kubernetes.io/controller-uid": self.uid,
                  "batch.kubernetes.io/job-name": self.name, "controller-uid": self.uid,
                  "job-name": self.name}
        return {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": self.name, "namespace": self.ns, "uid": self.uid,
                         "resourceVersion": "", "generation": 1,
                         "creationTimestamp": at(self.created), "labels": labels,
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                                              "name": self.cronjob, "uid": self.cron_uid,
                                              "controller": True, "blockOwnerDeletion": True}]},
            "spec": {"parallelism": 1, "completions": 1, "backoffLimit": 6,
                     "completionMode": "NonIndexed", "suspend": False,
                     "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": self.uid}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [c.spec() for c in self.containers],
                                           "restartPolicy": "Never"}}},
            "status": status,
        }


class Service(Model):
    kind = "Service"

    def __init__(self, w, ns, name, selector, cluster_ip, ports, created, headless=False):
        self.w, self.ns, self.name = w, ns, name
        self.uid = w.sc.uuid()
        self.selector, self.cluster_ip, self.ports = dict(selector), cluster_ip, ports
        self.created = created
        self.headless = headless

    def render(self):
        ports = [{"name": n, "port": p, "targetPort": tp, "protocol": proto}
                 for (n, p, tp, proto) in self.ports]
        ip = "None" if self.headless else self.cluster_ip
        return {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": self.name, "namespace": self.ns, "uid": self.uid,
                         "resourceVersion": "", "creationTimestamp": at(self.created),
                         "labels": {"app": self.selector.get("app", self.name)}},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                     "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                     "internalTrafficPolicy": "Cluster", "sessionAffinity": "None",
                     "selector": dict(self.selector), "ports": ports},
            "status": {"loadBalancer": {}},
        }


class EndpointSlice(Model):
    kind = "EndpointSlice"

    def __init__(self, w, svc):
        self.w, self.svc, self.ns = w, svc, svc.ns
        self.name = f"{svc.name}-{w.sc.k8s_suffix(5)}"
        self.uid = w.sc.uuid()
        self.created = svc.created + 1

    def render(self):
        eps = []
        for p in self.w.pods():
            if p.ns != self.ns or not p.ip or p.start_time is None:
                continue
            if p.phase in ("Succeeded", "Failed"):
                continue
            if any(p.labels.get(k) != v for k, v in self.svc.selector.items()):
                continue
            term = p.deletion is not None
            node = self.w.get("Node", None, p.node)
            ep = {"addresses": [p.ip],
                  "conditions": {"ready": p.is_ready() and not term,
                                 "serving": p.is_ready(), "terminating": term},
                  "nodeName": p.node,
                  "targetRef": {"kind": "Pod", "name": p.name, "namespace": p.ns, "uid": p.uid}}
            if node:
                ep["zone"] = node.zone
            eps.append(ep)
        eps.sort(key=lambda e: tuple(int(x) for x in e["addresses"][0].split(".")))
        ports = [{"name": n, "port": tp, "protocol": proto}
                 for (n, _p, tp, proto) in self.svc.ports]
        return {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": self.name, "namespace": self.ns, "uid": self.uid,
                         "resourceVersion": "", "generation": 1,
                         "creationTimestamp": at(self.created),
                         "generateName": f"{self.svc.name}-",
                         "labels": {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                                    "kubernetes.io/service-name": self.svc.name},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service",
                                              "name": self.svc.name, "uid": self.svc.uid,
                                              "controller": True, "blockOwnerDeletion": True}]},
            "addressType": "IPv4",
            "endpoints": eps,
            "ports": ports,
        }


class ConfigMap(Model):
    kind = "ConfigMap"

    def __init__(self, w, ns, name, data, created, labels=None):
        self.w, self.ns, self.name = w, ns, name
        self.uid = w.sc.uuid()
        self.data = dict(data)
        self.created = created
        self.labels = labels

    def render(self):
        md = {"name": self.name, "namespace": self.ns, "uid": self.uid, "resourceVersion": "",
              "creationTimestamp": at(self.created)}
        if self.labels:
            md["labels"] = dict(self.labels)
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md,
                "data": dict(self.data)}


class Secret(Model):
    kind = "Secret"

    def __init__(self, w, ns, name, typ, data, created, annotations=None):
        self.w, self.ns, self.name = w, ns, name
        self.uid = w.sc.uuid()
        self.typ = typ
        self.data = dict(data)
        self.created = created
        self.annotations = annotations

    def render(self):
        md = {"name": self.name, "namespace": self.ns, "uid": self.uid, "resourceVersion": "",
              "creationTimestamp": at(self.created)}
        if self.annotations:
            md["annotations"] = dict(self.annotations)
        return {"apiVersion": "v1", "kind": "Secret", "metadata": md, "type": self.typ,
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in self.data.items()}}


KIND_ORDER = ["Node", "ConfigMap", "Secret", "Service", "Deployment", "StatefulSet",
              "DaemonSet", "Job", "ReplicaSet", "Pod", "EndpointSlice"]
SYNC_ORDER = ["Node", "Pod", "ConfigMap", "Secret", "Service", "EndpointSlice", "ReplicaSet",
              "Deployment", "StatefulSet", "DaemonSet", "Job"]
DERIVED_DELAY = {"EndpointSlice": 1, "ReplicaSet": 1, "Deployment": 1, "StatefulSet": 1,
                 "DaemonSet": 1, "Job": 1}


class World:
    """The cluster's state; emits watch events for what changes."""

    def __init__(self, sc, watch_node):
        self.sc = sc
        self.objs = {}  # key -> model (insertion ordered)
        self.last = {}  # key -> canonical json of the last emitted render
        self.live = False
        self.now = 0
        self.rv = 48_000_000 + sc.rng.randint(0, 999_999)
        self.events = {}  # aggregation key -> Event object
        self.ip_next = {}
        self.svc_ip_next = 10
        sc.register_agent(WATCH, watch_node)
        self.watch_node = watch_node
        self.agents = {}
        self.sim = Sim()
        self.sim.world = self
        self.pending = False

    def spawn(self, gen):
        self.sim.spawn(gen)

    def run(self):
        self.sim.run()

    # -- registry ---------------------------------------------------------------------------
    def get(self, kind, ns, name):
        return self.objs.get((kind, ns, name))

    def pods(self):
        return [m for m in self.objs.values() if m.kind == "Pod"]

    def nodes(self):
        return [m for m in self.objs.values() if m.kind == "Node"]

    def _entity(self, m):
        if m.kind == "Node":
            return {"cluster": self.sc.cluster, "node": m.name}
        return {"cluster": self.sc.cluster, "namespace": m.ns}

    def _emit_obj(self, t, verb, m, obj=None):
        obj = obj if obj is not None else m.render()
        self.rv += self.sc.rng.randint(1, 40)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.sc.emit(t, WATCH, f"kubernetes.watch.{verb}", "info", self._entity(m), obj=obj)
        return obj

    @staticmethod
    def _canon(obj):
        o = copy.deepcopy(obj)
        o["metadata"]["resourceVersion"] = ""
        return json.dumps(o, sort_keys=True)

    def add(self, t, m):
        assert m.key() not in self.objs, m.key()
        self.objs[m.key()] = m
        if self.live:
            self.now = t
            obj = self._emit_obj(t, "added", m)
            self.last[m.key()] = self._canon(obj)
        return m

    def delete(self, t, m):
        self.now = t
        obj = m.render()
        self._emit_obj(t, "deleted", m, obj)
        del self.objs[m.key()]
        self.last.pop(m.key(), None)

    def snapshot(self, t=0):
        self.now = t
        for kind in KIND_ORDER:
            for m in list(self.objs.values()):
                if m.kind == kind:
                    obj = self._emit_obj(t, "added", m)
                    self.last[m.key()] = self._canon(obj)
        self.live = True

    def sync(self, t):
        """Mark the world changed at t. Inside the simulation the changes of one instant are
        flushed together when time moves on (one MODIFIED per object per instant, as a
        controller coalesces updates); outside it they are flushed at once."""
        if self.sim.running:
            self.pending = True
            return
        self.flush(t)

    def flush(self, t):
        """Emit MODIFIED for every object whose rendering changed."""
        self.pending = False
        self.now = t
        for kind in SYNC_ORDER:
            for m in list(self.objs.values()):
                if m.kind != kind:
                    continue
                obj = m.render()
                c = self._canon(obj)
                if self.last.get(m.key()) != c:
                    self.now = t + DERIVED_DELAY.get(kind, 0)
                    obj = m.render()
                    c = self._canon(obj)
                    self._emit_obj(self.now, "modified", m, obj)
                    self.last[m.key()] = c
                    self.now = t

    # -- core/v1 Events ---------------------------------------------------------------------
    def event(self, t, involved, reason, message, typ="Normal", component="kubelet",
              host=None, field_path=None, count_as_new=False):
        """Record a core/v1 Event; repeats of (object, reason, message) aggregate (count+1,
        MODIFIED), as the event recorder does."""
        ikind, ins, iname, iuid = involved
        key = (ikind, ins, iname, reason, message, component)
        ev = self.events.get(key)
        if ev and not count_as_new:
            ev["count"] += 1
            ev["lastTimestamp"] = at(t)
            obj = copy.deepcopy(ev)
            self.rv += self.sc.rng.randint(1, 40)
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self.sc.emit(t, WATCH, "kubernetes.watch.modified", "info",
                         {"cluster": self.sc.cluster, "namespace": ins or "default"}, obj=obj)
            return
        ns = ins or "default"
        name = f"{iname}.{unix_ms(t) * 1_000_000 + self.sc.rng.randint(0, 999_999):x}"
        inv = {"apiVersion": {"Pod": "v1", "Node": "v1", "Service": "v1",
                              "ReplicaSet": "apps/v1", "Deployment": "apps/v1",
                              "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
                              "Job": "batch/v1", "CronJob": "batch/v1",
                              "HorizontalPodAutoscaler": "autoscaling/v2"}.get(ikind, "v1"),
               "kind": ikind, "name": iname}
        if ins:
            inv["namespace"] = ins
        if iuid:
            inv["uid"] = iuid
        if field_path:
            inv["fieldPath"] = field_path
        src = {"component": component}
        if host:
            src["host"] = host
        ev = {"apiVersion": "v1", "kind": "Event",
              "metadata": {"name": name, "namespace": ns, "uid": self.sc.uuid(),
                           "resourceVersion": "", "creationTimestamp": at(t)},
              "involvedObject": inv, "reason": reason, "message": message, "source": src,
              "firstTimestamp": at(t), "lastTimestamp": at(t), "count": 1, "type": typ,
              "eventTime": None, "reportingComponent": component,
              "reportingInstance": host or ""}
        self.events[key] = ev
        obj = copy.deepcopy(ev)
        self.rv += self.sc.rng.randint(1, 40)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.sc.emit(t, WATCH, "kubernetes.watch.added", "info",
                     {"cluster": self.sc.cluster, "namespace": ns}, obj=obj)

    # -- builders ---------------------------------------------------------------------------
    def node(self, name, ip, zone, pod_cidr, **kw):
        n = Node(self, name, ip, zone, pod_cidr, **kw)
        self.add(0, n)
        self.ip_next[name] = 10 + self.sc.rng.randint(0, 20)
        return n

    def pod_ip(self, node):
        n = self.get("Node", None, node)
        base = n.pod_cidr.split("/")[0].rsplit(".", 1)[0]
        self.ip_next[node] += self.sc.rng.randint(1, 7)
        return f"{base}.{self.ip_next[node]}"

    def service_ip(self):
        self.svc_ip_next += self.sc.rng.randint(3, 60)
        return f"10.96.{self.svc_ip_next // 250}.{self.svc_ip_next % 250 + 2}"

    def configmap(self, ns, name, data, created=-86400 * 9, labels=None):
        return self.add(0, ConfigMap(self, ns, name, data, created, labels))

    def secret(self, ns, name, typ, data, created=-86400 * 80, annotations=None):
        return self.add(0, Secret(self, ns, name, typ, data, created, annotations))

    def service(self, ns, name, selector, ports, cluster_ip=None, created=-86400 * 120,
                headless=False):
        svc = self.add(0, Service(self, ns, name, selector, cluster_ip or self.service_ip(),
                                  ports, created, headless))
        self.add(0, EndpointSlice(self, svc))
        return svc

    def _running_pod(self, pod, node, started):
        pod.node = node
        pod.ip = self.pod_ip(node)
        pod.phase = "Running"
        pod.sched = ("True",)
        pod.start_time = started
        for c in pod.containers:
            c.state = ("running", started + self.sc.rng.randint(2, 9))
            c.ready = True
            c.started = True
            c.cid = self.sc.hexstr(64)
            c.image_id = c.image.split(":")[0] + "@sha256:" + self.sc.hexstr(64)
        return pod

    def deploy(self, ns, name, replicas, nodes, image, comm, port=8080, req_cpu="250m",
               req_mem="256Mi", lim_mem="512Mi", lim_cpu=None, svc=True, svc_port=None,
               created=-86400 * 40, started=-86400 * 3, env_cm=None, volume_cm=None,
               revision=None, labels=None, max_surge="25%", max_unavailable="25%",
               container_name=None, qos="Burstable", readiness=None, liveness=None,
               secret_volume=None, tolerations=None, priority_class=None, port_name="http"):
        """A Deployment with its ReplicaSet, running pods (placed on `nodes` in turn), and
        optionally a Service + EndpointSlice."""
        lab = {"app": name, "app.kubernetes.io/name": name}
        if labels:
            lab.update(labels)
        rev = revision or self.sc.rng.randint(3, 30)
        d = Deployment(self, ns, name, replicas, lab, created, revision=rev,
                       max_surge=max_surge, max_unavailable=max_unavailable)
        self.add(0, d)
        cname = container_name or name

        def mk():
            return [Container(cname, image, comm, req_cpu=req_cpu, req_mem=req_mem,
                              lim_mem=lim_mem, lim_cpu=lim_cpu, port=port, env_cm=env_cm,
                              volume_cm=volume_cm, readiness=readiness, liveness=liveness,
                              secret_volume=secret_volume, port_name=port_name)]

        d.mk_containers = mk
        d.qos = qos
        d.tolerations = tolerations
        d.priority_class = priority_class
        rs = ReplicaSet(self, d, self.sc.k8s_suffix(self.sc.choice_len()), rev, mk(), replicas,
                        started - 60)
        d.rs.append(rs)
        self.add(0, rs)
        for i in range(replicas):
            self.add(0, self._running_pod(self.new_rs_pod(rs, started - 5), nodes[i % len(nodes)],
                                          started + i * 7))
        if svc:
            sp = svc_port or port
            d.service = self.service(ns, name, {"app": name}, [("http", sp, port, "TCP")])
        else:
            d.service = None
        return d

    def new_rs_pod(self, rs, created):
        d = rs.dep
        labels = dict(d.labels)
        labels["pod-template-hash"] = rs.hash
        return Pod(self, d.ns, f"{rs.name}-{self.sc.k8s_suffix(5)}", labels,
                   ("apps/v1", "ReplicaSet", rs.name, rs.uid), d.mk_containers(),
                   created=created, qos=d.qos, tolerations=d.tolerations,
                   priority_class=d.priority_class,
                   annotations=d.template_annotations or None)

    def statefulset(self, ns, name, replicas, nodes, image, comm, port, service_name=None,
                    req_cpu="500m", req_mem="1Gi", lim_mem="2Gi", created=-86400 * 200,
                    started=-86400 * 6, svc=True):
        lab = {"app": name, "app.kubernetes.io/name": name}
        cont = Container(name, image, comm, req_cpu=req_cpu, req_mem=req_mem, lim_mem=lim_mem,
                         port=port)
        s = StatefulSet(self, ns, name, replicas, lab, service_name or name, [cont], created)
        self.add(0, s)
        s.mk_containers = lambda: [Container(name, image, comm, req_cpu=req_cpu,
                                             req_mem=req_mem, lim_mem=lim_mem, port=port)]
        for i in range(replicas):
            labels = dict(lab)
            labels["controller-revision-hash"] = s.revision
            labels["statefulset.kubernetes.io/pod-name"] = f"{name}-{i}"
            labels["apps.kubernetes.io/pod-index"] = str(i)
            p = Pod(self, ns, f"{name}-{i}", labels, ("apps/v1", "StatefulSet", name, s.uid),
                    s.mk_containers(), created=started + i * 40)
            self.add(0, self._running_pod(p, nodes[i % len(nodes)], started + i * 40))
        if svc:
            s.svc = self.service(ns, service_name or name, {"app": name},
                                 [("tcp", port, port, "TCP")])
        return s

    def daemonset(self, ns, name, nodes, image, comm, port=None, req_cpu="100m",
                  req_mem="128Mi", lim_mem="256Mi", created=-86400 * 150, started=-86400 * 10,
                  qos="Burstable", priority_class="system-node-critical", tolerations=None):
        lab = {"app": name, "app.kubernetes.io/name": name}
        mk = lambda: [Container(name, image, comm, req_cpu=req_cpu, req_mem=req_mem,
                                lim_mem=lim_mem, port=port)]
        ds = DaemonSet(self, ns, name, lab, mk(), created, len(nodes))
        ds.tolerations = tolerations
        ds.mk_containers = mk
        self.add(0, ds)
        for i, n in enumerate(nodes):
            self.add(0, self._running_pod(self.new_ds_pod(ds, started), n, started + i * 3))
        return ds

    def new_ds_pod(self, ds, created):
        labels = dict(ds.labels)
        labels["controller-revision-hash"] = ds.revision_hash
        labels["pod-template-generation"] = str(ds.generation)
        return Pod(self, ds.ns, f"{ds.name}-{self.sc.k8s_suffix(5)}", labels,
                   ("apps/v1", "DaemonSet", ds.name, ds.uid), ds.mk_containers(),
                   created=created, priority_class="system-node-critical",
                   tolerations=ds.tolerations)

    # -- pod lifecycle (single instants) -------------------------------------------------
    def create_pod(self, t, pod):
        """A new pod as the API sees it: ADDED (unscheduled)."""
        pod.created = t
        self.add(t, pod)
        return pod

    def crash(self, t, pod, reason="Error", exit_code=1, message=None, backoff=10, cname=None,
              waiting="CrashLoopBackOff"):
        """The container exits; the kubelet shows CrashLoopBackOff until the back-off ends."""
        c = [x for x in pod.containers if cname is None or x.name == cname][0]
        started = c.state[1] if c.state[0] == "running" else t - 3
        c.last = ("terminated", reason, exit_code, started, t, message, c.cid)
        c.restarts += 1
        c.ready = False
        if waiting:
            c.state = ("waiting", waiting,
                       f"back-off {backoff}s restarting failed container={c.name} pod={pod.name}_{pod.ns}({pod.uid})")
        else:
            c.state = ("running", t + 1)
            c.cid = self.sc.hexstr(64)
        self.sync(t)
        return c

    def restart(self, t, pod, ready=False, cname=None):
        c = [x for x in pod.containers if cname is None or x.name == cname][0]
        c.state = ("running", t)
        c.cid = self.sc.hexstr(64)
        c.ready = ready
        self.sync(t)
        return c

    def set_ready(self, t, pod, ready):
        for c in pod.containers:
            c.ready = ready
        self.sync(t)

    # -- pod lifecycle (processes: generators yielding the next absolute time) ------------
    def schedule(self, t, pod, node, pull=True, ready_after=8, start=True):
        """Bind, start containers, become ready; with the Normal events of a healthy start."""
        yield t
        pod.node = node
        pod.sched = ("True",)
        pod.start_time = t
        pod.ip = self.pod_ip(node)
        for c in pod.containers:
            c.state = ("waiting", "ContainerCreating", None)
            c.ready = False
            c.started = False
        self.sync(t)
        ref = ("Pod", pod.ns, pod.name, pod.uid)
        self.event(t, ref, "Scheduled", f"Successfully assigned {pod.ns}/{pod.name} to {node}",
                   component="default-scheduler")
        if not start:
            return
        tp = t + 1
        yield tp
        pulls = []
        for c in pod.containers:
            if pull:
                self.event(tp, ref, "Pulling", f'Pulling image "{c.image}"', host=node,
                           field_path=f"spec.containers{{{c.name}}}")
                secs = round(1.2 + self.sc.rng.random() * 3, 3)
                pulls.append(secs)
                tp += int(secs) + 1
            else:
                pulls.append(None)
        yield tp
        for c, secs in zip(pod.containers, pulls):
            fp = f"spec.containers{{{c.name}}}"
            if secs is not None:
                size = self.sc.rng.randint(30_000_000, 180_000_000)
                self.event(tp, ref, "Pulled",
                           f'Successfully pulled image "{c.image}" in {secs}s ({secs}s including waiting). Image size: {size} bytes.',
                           host=node, field_path=fp)
            else:
                self.event(tp, ref, "Pulled",
                           f'Container image "{c.image}" already present on machine',
                           host=node, field_path=fp)
            self.event(tp, ref, "Created", f"Created container {c.name}", host=node,
                       field_path=fp)
            self.event(tp, ref, "Started", f"Started container {c.name}", host=node,
                       field_path=fp)
            c.state = ("running", tp)
            c.started = True
            c.cid = self.sc.hexstr(64)
            c.image_id = c.image.split(":")[0] + "@sha256:" + self.sc.hexstr(64)
        pod.phase = "Running"
        self.sync(tp)
        if ready_after is not None:
            yield tp + ready_after
            for c in pod.containers:
                c.ready = True
            self.sync(tp + ready_after)

    def terminate(self, t, pod, grace=20, event=True):
        """Graceful deletion: deletionTimestamp + Killing, containers stop, DELETED."""
        yield t
        if pod.deletion is None:
            pod.deletion = t + 30
        self.sync(t)
        if event and pod.node:
            for c in pod.containers:
                self.event(t, ("Pod", pod.ns, pod.name, pod.uid), "Killing",
                           f"Stopping container {c.name}", host=pod.node,
                           field_path=f"spec.containers{{{c.name}}}")
        yield t + grace
        for c in pod.containers:
            c.ready = False
            if c.state[0] == "running":
                c.state = ("terminated", "Completed", 0, c.state[1], t + grace, None, c.cid)
        self.sync(t + grace)
        yield t + grace + 1
        self.delete(t + grace + 1, pod)
        self.sync(t + grace + 1)


class Sim:
    """A tiny discrete-event scheduler: world changes happen in time order even when several
    processes (generators yielding absolute times) interleave."""

    def __init__(self):
        self.q = []
        self.n = 0
        self.now = 0
        self.running = False
        self.world = None

    def spawn(self, gen):
        def step():
            try:
                nt = next(gen)
            except StopIteration:
                return
            assert nt >= self.now - 1e-9, f"process went back in time: {nt} < {self.now}"
            self.n += 1
            heapq.heappush(self.q, (nt, self.n, step))

        step()

    def run(self):
        self.running = True
        while self.q:
            t, _n, fn = heapq.heappop(self.q)
            self.now = t
            fn()
            if self.world.pending and (not self.q or self.q[0][0] > t):
                self.world.flush(t)
        self.running = False


# ---------------------------------------------------------------------------------------
# Node agents, alerts, change markers
# ---------------------------------------------------------------------------------------


class Agent:
    """What `tapio-agent` on one node sends."""

    def __init__(self, w, node):
        self.w, self.sc, self.node = w, w.sc, node
        self.id = f"tapio-agent-{node}"
        self.sc.register_agent(self.id, node)
        self.pid = 4000 + self.sc.rng.randint(0, 30000)

    def _pid(self):
        self.pid += self.sc.rng.randint(3, 400)
        return self.pid

    def _pod_entity(self, pod, cname=None):
        c = [x for x in pod.containers if cname is None or x.name == cname][0]
        e = {"node": self.node, "namespace": pod.ns, "pod": pod.name, "pod_uid": pod.uid,
             "container": c.name}
        if c.cid:
            e["container_id"] = c.cid
        wl = pod.workload()
        if wl:
            e["workload"] = wl
        qos = pod.qos.lower()
        slice_ = "kubepods.slice" if qos == "guaranteed" else \
            f"kubepods.slice/kubepods-{qos}.slice"
        podslice = (f"kubepods-pod{pod.uid.replace('-', '_')}.slice" if qos == "guaranteed"
                    else f"kubepods-{qos}-pod{pod.uid.replace('-', '_')}.slice")
        cg = f"/{slice_}/{podslice}/cri-containerd-{c.cid or '0' * 64}.scope"
        return e, {"cgroup": cg, "runtime": "containerd", "qos_class": qos}, c

    def _emit(self, t, typ, sev, entity, attrs):
        return self.sc.emit(t, self.id, typ, sev, entity, attrs)

    def connect_stats(self, t, dst_addr, dst_port, attempts, refused=0, timed_out=0, errors=0,
                      rtt_ms=None, retransmits=None, resets=0):
        failed = refused + timed_out + errors
        successes = attempts - failed
        assert successes >= 0
        attrs = {"dst_addr": dst_addr, "dst_port": dst_port,
                 "interval_seconds": STATS_INTERVAL, "observer": "ebpf",
                 "attempts": attempts, "successes": successes, "refused": refused,
                 "timed_out": timed_out, "errors": errors,
                 "retransmits": retransmits if retransmits is not None
                 else self.sc.rng.randint(0, max(1, attempts // 200)) + timed_out * 5,
                 "resets": resets}
        if successes > 0:
            base = rtt_ms if rtt_ms is not None else 0.25 + self.sc.rng.random() * 0.9
            attrs["rtt_avg_ms"] = round(base, 3)
        return self._emit(t, "kernel.network.connect_stats", "warning" if failed else "info",
                          {"node": self.node}, attrs)

    def _connect_fact(self, t, typ, pod, dst_addr, dst_port, count, errno, errno_name,
                      comm=None, waited_ms=None, cname=None):
        e, enr, c = self._pod_entity(pod, cname)
        attrs = dict(enr)
        attrs.update({"dst_addr": dst_addr, "dst_port": dst_port, "src_addr": pod.ip,
                      "src_port": self.sc.rng.randint(32768, 60999), "pid": self._pid(),
                      "comm": comm or c.comm, "count": count, "window_seconds": 10,
                      "errno": errno, "errno_name": errno_name, "observer": "ebpf"})
        if waited_ms is not None:
            attrs["waited_ms"] = waited_ms
        return self._emit(t, typ, "warning", e, attrs)

    def refused(self, t, pod, dst_addr, dst_port, count, comm=None):
        return self._connect_fact(t, "kernel.network.connection_refused", pod, dst_addr,
                                  dst_port, count, 111, "ECONNREFUSED", comm)

    def timeout(self, t, pod, dst_addr, dst_port, count, waited_ms=3000, comm=None):
        return self._connect_fact(t, "kernel.network.connection_timeout", pod, dst_addr,
                                  dst_port, count, 110, "ETIMEDOUT", comm, waited_ms)

    def exit(self, t, pod, exit_code=None, signal=None, count=1, cname=None, comm=None):
        e, enr, c = self._pod_entity(pod, cname)
        attrs = dict(enr)
        attrs.update({"pid": self._pid(), "comm": comm or c.comm, "count": count,
                      "observer": "ebpf"})
        sev = "warning"
        if exit_code is not None:
            attrs["exit_code"] = exit_code
        else:
            names = {6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 7: "SIGBUS"}
            attrs["signal"] = signal
            attrs["signal_name"] = names[signal]
            attrs["core_dumped"] = False
            if signal in (4, 6, 7, 8, 11):
                sev = "error"
        return self._emit(t, "kernel.container.abnormal_exit", sev, e, attrs)

    def oom(self, t, pod, anon_rss, limit=None, cname=None, comm=None, memcg_usage=None):
        e, enr, c = self._pod_entity(pod, cname)
        attrs = dict(enr)
        attrs.update({"pid": self._pid(), "comm": comm or c.comm, "anon_rss_bytes": anon_rss,
                      "file_rss_bytes": self.sc.rng.randint(2, 40) * 1024 * 1024,
                      "total_vm_bytes": anon_rss * 2 + self.sc.rng.randint(0, 500) * 1024 * 1024,
                      "memcg_usage_bytes": memcg_usage if memcg_usage is not None
                      else (limit if limit else anon_rss + mib(30)),
                      "uid": 65532, "cgroup_id": self.sc.rng.randint(10_000, 99_999),
                      "observer": "ebpf"})
        if limit:
            attrs["memory_limit_bytes"] = limit
        attrs["memcg"] = attrs["cgroup"].rsplit("/", 1)[1]
        return self._emit(t, "kernel.container.oom_kill", "critical", e, attrs)

    def oom_host(self, t, comm, anon_rss, pid=None, unit=None):
        """An OOM kill of a process outside any pod (node-level)."""
        attrs = {"pid": pid or self._pid(), "comm": comm, "anon_rss_bytes": anon_rss,
                 "file_rss_bytes": mib(12), "total_vm_bytes": anon_rss * 2,
                 "memcg_usage_bytes": anon_rss + mib(200), "uid": 0,
                 "cgroup_id": self.sc.rng.randint(1000, 9999), "observer": "ebpf"}
        if unit:
            attrs["systemd_unit"] = unit
            attrs["cgroup"] = f"/system.slice/{unit}"
            attrs["memcg"] = unit
        return self._emit(t, "kernel.container.oom_kill", "critical", {"node": self.node},
                          attrs)

    def io_error(self, t, device, status_name, op="write", count=1, pod=None, issuer="jbd2",
                 status=None):
        codes = {"ioerr": 10, "medium": 7, "timeout": 2, "transport": 4, "target": 5}
        attrs = {"device": device, "dev": {"nvme1n1": "259:1", "nvme0n1": "259:0",
                                           "xvdf": "202:80", "sdb": "8:16"}.get(device, "259:2"),
                 "op": op, "sector": self.sc.rng.randint(10**6, 10**9), "bytes": 4096 * self.sc.rng.choice([1, 2, 8, 32]),
                 "count": count, "window_seconds": 10, "observer": "ebpf",
                 "status": status or codes.get(status_name, 10), "status_name": status_name}
        if pod:
            e, enr, c = self._pod_entity(pod)
            attrs.update(enr)
            attrs["issuer_pid"] = self._pid()
            attrs["issuer_comm"] = c.comm
        else:
            e = {"node": self.node}
            attrs["issuer_pid"] = 0
            attrs["issuer_comm"] = issuer
        return self._emit(t, "kernel.storage.io_error", "error", e, attrs)

    def latency_spike(self, t, device, latency_ms, count=3, pod=None, op="write"):
        attrs = {"device": device, "dev": {"nvme1n1": "259:1", "nvme0n1": "259:0",
                                           "xvdf": "202:80", "sdb": "8:16"}.get(device, "259:2"),
                 "op": op, "sector": self.sc.rng.randint(10**6, 10**9), "bytes": 4096 * 8,
                 "count": count, "window_seconds": 10, "observer": "ebpf",
                 "latency_ms": float(latency_ms), "threshold_ms": 100}
        if pod:
            e, enr, c = self._pod_entity(pod)
            attrs.update(enr)
            attrs["issuer_pid"] = self._pid()
            attrs["issuer_comm"] = c.comm
        else:
            e = {"node": self.node}
            attrs["issuer_pid"] = 0
            attrs["issuer_comm"] = "kworker/u16:2"
        return self._emit(t, "kernel.storage.latency_spike", "warning", e, attrs)

    def pressure(self, t, resource, some10, some60, sustained, full10=None):
        threshold = {"cpu": 80.0, "memory": 20.0, "io": 30.0}[resource]
        assert some10 >= threshold or sustained > 30, (resource, some10)
        attrs = {"some_avg10": float(some10), "some_avg60": float(some60),
                 "threshold": threshold, "sustained_seconds": int(sustained)}
        sev = "warning"
        if full10 is not None:
            attrs["full_avg10"] = float(full10)
            if full10 >= threshold:
                sev = "error"
        return self._emit(t, f"node.pressure.{resource}", sev, {"node": self.node}, attrs)

    def pressure_episode(self, t0, t1, resource, some10_fn, full10_fn=None, repeat=300):
        """PSI reported as the agent does: first after 30 s sustained, then every 5 min."""
        t = t0 + 30
        while t <= t1:
            s10 = some10_fn(t)
            self.pressure(t, resource, round(s10, 2), round(s10 * 0.85, 2), t - t0,
                          round(full10_fn(t), 2) if full10_fn else None)
            t += repeat

    def hung_task(self, t, comm, blocked):
        return self._emit(t, "node.kernel.hung_task", "error", {"node": self.node},
                          {"comm": comm, "pid": self._pid(), "blocked_seconds": blocked,
                           "observer": "kmsg"})

    def fs_nearly_full(self, t, mount, device, used_ratio, sev="warning"):
        return self._emit(t, "node.filesystem.nearly_full", sev, {"node": self.node},
                          {"mount_point": mount, "device": device, "fs_type": "xfs",
                           "used_ratio": used_ratio, "available_bytes": gib(3),
                           "observer": "statvfs"})


def agents(w, *nodes):
    out = {}
    for n in nodes:
        a = Agent(w, n)
        w.agents[n] = a
        out[n] = a
    return out


ALERT_AGENT = "alertmanager:tapio"


class Alert:
    """One Prometheus alert, stored as the Alertmanager receiver stores it."""

    def __init__(self, sc, alertname, severity, labels=None, annotations=None, node="-"):
        self.sc = sc
        self.labels = {"alertname": alertname, "severity": severity,
                       "cluster": sc.cluster, "prometheus": "monitoring/k8s"}
        self.labels.update(labels or {})
        self.annotations = dict(annotations or {})
        sc.register_agent(ALERT_AGENT, node)
        h = hashlib.sha256()
        for k in sorted(self.labels):
            h.update(k.encode() + b"\xff" + self.labels[k].encode() + b"\xff")
        self.fingerprint = h.hexdigest()[:16]
        self.starts = None

    def _event(self, status, t_start, t_end, store_t):
        at_t = t_start if status == "firing" else t_end
        h = hashlib.sha256()
        h.update(b"tapio.alertmanager.v1\0")
        h.update(self.fingerprint.encode())
        h.update(b"\0")
        h.update(status.encode())
        h.update(b"\0")
        h.update(nanos_rfc3339(t_start).encode())
        if status == "resolved":
            h.update(b"\0")
            h.update(nanos_rfc3339(t_end).encode())
        rnd = int.from_bytes(h.digest()[:16], "big")
        eid = ulid(unix_ms(at_t), rnd)
        entity = {}
        used = set()
        for key, labs in (("cluster", ["cluster"]), ("node", ["node", "kubernetes_node"]),
                          ("namespace", ["namespace"]), ("pod", ["pod"]),
                          ("container", ["container"]), ("service", ["service"])):
            for l in labs:
                if l in self.labels:
                    entity[key] = self.labels[l]
                    used.add(l)
                    break
        for l, kind in (("deployment", "Deployment"), ("statefulset", "StatefulSet"),
                        ("daemonset", "DaemonSet"), ("job_name", "Job")):
            if l in self.labels:
                entity["workload"] = {"kind": kind, "name": self.labels[l]}
                used.add(l)
                break
        attrs = {"alertname": self.labels["alertname"], "fingerprint": self.fingerprint,
                 "starts_at": autosi_rfc3339(t_start)}
        firing = status == "firing"
        if not firing:
            attrs["ends_at"] = autosi_rfc3339(t_end)
        for k in ("error_ratio", "p99_latency_seconds", "latency_seconds", "value"):
            if not firing and k != "value":
                continue
            v = self.annotations.get(k, self.labels.get(k))
            if v is not None:
                attrs[k] = float(v)
        for k in ("summary", "description", "runbook_url"):
            if self.annotations.get(k):
                attrs[k] = self.annotations[k]
        for k in sorted(self.labels):
            if k == "alertname" or k in used:
                continue
            if not firing and k in ("priority", "error_ratio", "latency_seconds",
                                    "p99_latency_seconds"):
                continue
            if k not in attrs:
                attrs[k] = self.labels[k]
        sev = {"critical": "critical", "error": "error", "high": "error", "warning": "warning",
               "info": "info"}.get(self.labels["severity"], "warning")
        self.sc.emit(at_t, ALERT_AGENT, f"alert.prometheus.{status}", sev, entity, attrs,
                     event_id=eid, store_t=store_t if store_t is not None else at_t + 1)

    def fire(self, t, store_t=None):
        # Prometheus stamps startsAt/endsAt with the rule evaluation time (milliseconds).
        t = t + self.sc.rng.randint(1, 999) / 1000
        self.starts = t
        self._event("firing", t, None, store_t)
        return self

    def resolve(self, t, store_t=None):
        t = t + self.sc.rng.randint(1, 999) / 1000
        self._event("resolved", self.starts, t, store_t)


def change(sc, t, typ, entity, attrs, agent="argocd", node="node-a"):
    sc.register_agent(agent, node)
    sc.emit(t, agent, typ, "info", entity, attrs)


# ---------------------------------------------------------------------------------------
# Reusable patterns (processes are generators yielding absolute times)
# ---------------------------------------------------------------------------------------

BACKOFFS = [10, 20, 40, 80, 160, 300, 300, 300, 300, 300, 300, 300]


def alive(w, pod):
    return pod.key() in w.objs and pod.deletion is None


def crash_loop(w, pod, t0, t_end, run=4, reason="Error", exit_code=1, signal=None,
               message=None, agent=None, oom=None, ready_for=None, start_backoff=0,
               event_every=1, facts=True, recover=False):
    """Crash, back off (10 s doubling to 300 s), restart, crash again... until t_end.
    Emits the agent's facts (abnormal exit, OOM kill) and the kubelet's BackOff event.
    `oom=(anon_rss, limit)` makes every exit an OOM kill."""
    t = t0
    i = start_backoff
    ref = ("Pod", pod.ns, pod.name, pod.uid)
    c0 = pod.containers[0]
    while t <= t_end:
        yield t
        if not alive(w, pod):
            return
        if agent and facts:
            if oom:
                agent.oom(t, pod, anon_rss=oom[0] - w.sc.rng.randint(0, 4) * 65536,
                          limit=oom[1])
                agent.exit(t, pod, signal=9)
            elif signal:
                agent.exit(t, pod, signal=signal)
            else:
                agent.exit(t, pod, exit_code=exit_code)
        bo = BACKOFFS[min(i, len(BACKOFFS) - 1)]
        w.crash(t, pod, reason="OOMKilled" if oom else reason,
                exit_code=137 if oom else (128 + signal if signal else exit_code),
                message=message, backoff=bo)
        if i < 2 or i % event_every == 0:
            w.event(t + 1, ref, "BackOff",
                    f"Back-off restarting failed container {c0.name} in pod {pod.name}_{pod.ns}({pod.uid})",
                    typ="Warning", host=pod.node, field_path=f"spec.containers{{{c0.name}}}")
        t_restart = t + bo + 1
        if t_restart > t_end:
            if recover:
                yield t_restart
                if alive(w, pod):
                    w.restart(t_restart, pod, ready=False)
                    yield t_restart + 8
                    if alive(w, pod):
                        w.set_ready(t_restart + 8, pod, True)
            return
        yield t_restart
        if not alive(w, pod):
            return
        w.restart(t_restart, pod, ready=False)
        if ready_for:
            yield t_restart + 8
            if not alive(w, pod):
                return
            w.set_ready(t_restart + 8, pod, True)
            t = t_restart + 8 + ready_for
        else:
            t = t_restart + run
        i += 1


def reschedule(w, t, dep, target_node, pull=False, probe_blip=False, victim=None):
    """Healthy churn: one pod of `dep` is deleted (rebalanced) and replaced elsewhere, with
    SuccessfulCreate / Scheduled / Pulled / Created / Started / Killing events."""
    yield t
    rs = dep.current
    old = victim or [p for p in rs.pods() if p.active()][-1]
    new = w.new_rs_pod(rs, t)
    old.deletion = t + 30
    w.sync(t)
    for c in old.containers:
        w.event(t, ("Pod", old.ns, old.name, old.uid), "Killing", f"Stopping container {c.name}",
                host=old.node, field_path=f"spec.containers{{{c.name}}}")
    w.create_pod(t, new)
    w.event(t, ("ReplicaSet", rs.ns, rs.name, rs.uid), "SuccessfulCreate",
            f"Created pod: {new.name}", component="replicaset-controller")
    yield from w.schedule(t + 1, new, target_node, pull=pull, ready_after=None)
    if probe_blip:
        yield t + 7
        c = new.containers[0]
        w.event(t + 7, ("Pod", new.ns, new.name, new.uid), "Unhealthy",
                f'Readiness probe failed: Get "http://{new.ip}:{c.port}/ready": dial tcp {new.ip}:{c.port}: connect: connection refused',
                typ="Warning", host=target_node, field_path=f"spec.containers{{{c.name}}}")
    yield t + 12
    w.set_ready(t + 12, new, True)
    yield t + 14
    for c in old.containers:
        c.ready = False
        c.state = ("terminated", "Completed", 0, c.state[1], t + 14, None, c.cid)
    w.sync(t + 14)
    yield t + 15
    w.delete(t + 15, old)
    w.sync(t + 15)


def job_noise(w, t, node, ns="batch", cron="report-export", image=None, comm="python3",
              second_node=None, fail_first=True):
    """A CronJob run whose first pod exits with code 1; the retry succeeds."""
    yield t
    image = image or f"registry.example.com/{ns}/{cron}:1.4.2"
    sched_min = int((BASE.timestamp() + t) // 60)

    def mk():
        return [Container(cron, image, comm, req_cpu="100m", req_mem="128Mi", lim_mem="256Mi",
                          port=None)]

    job = Job(w, ns, f"{cron}-{sched_min}", cron, t, mk())
    w.add(t, job)
    w.event(t, ("CronJob", ns, cron, job.cron_uid), "SuccessfulCreate", f"Created job {job.name}",
            component="cronjob-controller")
    agent = w.agents.get(node)

    def pod():
        labels = {"batch.kubernetes.io/controller-uid": job.uid,
                  "batch.kubernetes.io/job-name": job.name, "controller-uid": job.uid,
                  "job-name": job.name}
        return Pod(w, ns, f"{job.name}-{w.sc.k8s_suffix(5)}", labels,
                   ("batch/v1", "Job", job.name, job.uid), mk(), created=t,
                   restart_policy="Never")

    p1 = w.create_pod(t, pod())
    w.event(t, ("Job", ns, job.name, job.uid), "SuccessfulCreate", f"Created pod: {p1.name}",
            component="job-controller")
    yield from w.schedule(t + 1, p1, node, pull=False, ready_after=None)
    t2 = w.sim.now
    if fail_first:
        tf = t2 + 12 + w.sc.rng.randint(0, 20)
        yield tf
        if agent:
            agent.exit(tf, p1, exit_code=1)
        for c in p1.containers:
            c.state = ("terminated", "Error", 1, c.state[1], tf, None, c.cid)
        p1.phase = "Failed"
        w.sync(tf)
        t2 = tf + 11
        yield t2
        p2 = w.create_pod(t2, pod())
        w.event(t2, ("Job", ns, job.name, job.uid), "SuccessfulCreate", f"Created pod: {p2.name}",
                component="job-controller")
        yield from w.schedule(t2 + 1, p2, second_node or node, pull=False, ready_after=None)
    else:
        p2 = p1
    tc = w.sim.now + 30 + w.sc.rng.randint(0, 25)
    yield tc
    for c in p2.containers:
        c.state = ("terminated", "Completed", 0, c.state[1], tc, None, c.cid)
    p2.phase = "Succeeded"
    job.complete_at = tc + 1
    w.sync(tc)
    w.event(tc + 1, ("Job", ns, job.name, job.uid), "Completed", "Job completed",
            component="job-controller")
    w.event(tc + 2, ("CronJob", ns, cron, job.cron_uid), "SawCompletedJob",
            f"Saw completed job: {job.name}, status: Complete", component="cronjob-controller")


FLAP_SUMMARY = {
    "CPUThrottlingHigh": "Processes experience elevated CPU throttling.",
    "KubePodNotReady": "Pod has been in a non-ready state for more than 15 minutes.",
    "HighLatencyP99": "p99 latency above 1 s for 2 minutes.",
    "TargetDown": "Some targets were not reachable from the monitoring server.",
    "KubeHpaMaxedOut": "HPA is running at max replicas.",
    "NodeClockSkewDetected": "Clock skew detected.",
}


def alert_flap(sc, t, name="CPUThrottlingHigh", ns="shop", labels=None, duration=150,
               annotations=None, severity="warning"):
    """A warning alert that fires and resolves within a few minutes (noise)."""
    lab = {"namespace": ns}
    lab.update(labels or {})
    ann = {"summary": FLAP_SUMMARY.get(name, name)}
    ann.update(annotations or {})
    a = Alert(sc, name, severity, lab, ann)
    a.fire(t)
    a.resolve(t + duration)
    return a


def healthy_stats(ag, t0, t1, flows, step=60):
    """Connect statistics with no failures: flows = [(node, dst_addr, dst_port, attempts)]."""
    t = t0
    while t <= t1:
        for node, addr, port, attempts in flows:
            a = ag[node]
            a.connect_stats(t, addr, port, max(1, int(attempts * (0.8 + 0.4 * a.sc.rng.random()))))
        t += step


def stats_series(ag, t0, t1, flows, fail, step=STATS_INTERVAL):
    """Connect statistics over time: fail(t, i) -> (refused, timed_out, attempts_factor)."""
    t = t0
    while t <= t1:
        for i, (node, addr, port, attempts) in enumerate(flows):
            a = ag[node]
            r, to, f = fail(t, i)
            n = max(1, int(attempts * f * (0.9 + 0.2 * a.sc.rng.random())))
            r = min(n, int(round(r * n))) if isinstance(r, float) else min(n, r)
            to = min(n - r, int(round(to * n))) if isinstance(to, float) else min(n - r, to)
            a.connect_stats(t, addr, port, n, refused=r, timed_out=to)
        t += step


def hpa_scale(w, t, dep, to, nodes, reason="cpu resource utilization (percentage of request) above target"):
    """HPA scales a Deployment; new pods start normally on `nodes` (None: stay Pending)."""
    yield t
    frm = dep.replicas
    w.event(t, ("HorizontalPodAutoscaler", dep.ns, dep.name, None), "SuccessfulRescale",
            f"New size: {to}; reason: {reason}", component="horizontal-pod-autoscaler")
    dep.replicas = to
    dep.generation += 1
    dep.current.replicas = to
    w.sync(t)
    w.event(t, ("Deployment", dep.ns, dep.name, dep.uid), "ScalingReplicaSet",
            f"Scaled up replica set {dep.current.name} from {frm} to {to}",
            component="deployment-controller")
    yield t + 1
    news = []
    for i in range(to - frm):
        p = w.new_rs_pod(dep.current, t + 1)
        w.create_pod(t + 1, p)
        w.event(t + 1, ("ReplicaSet", dep.ns, dep.current.name, dep.current.uid),
                "SuccessfulCreate", f"Created pod: {p.name}", component="replicaset-controller")
        news.append(p)
    for i, p in enumerate(news):
        n = nodes[i % len(nodes)] if nodes else None
        if n is not None:
            w.spawn(w.schedule(t + 2 + i, p, n, pull=False))
    return news


def new_revision(w, t, dep, image=None, mutate=None, annotations=None):
    """A new pod template: revision+1, generation+1, a new ReplicaSet with 0 replicas."""
    dep.revision += 1
    dep.generation += 1
    old_mk = dep.mk_containers

    def mk():
        cs = old_mk()
        for c in cs:
            if image:
                c.image = image
            if mutate:
                mutate(c)
        return cs

    dep.mk_containers = mk
    if annotations:
        dep.template_annotations.update(annotations)
    rs = ReplicaSet(w, dep, w.sc.k8s_suffix(w.sc.choice_len()), dep.revision, mk(), 0, t)
    dep.rs.append(rs)
    w.add(t, rs)
    w.sync(t)
    return rs


def scale_rs(w, t, rs, to):
    frm = rs.replicas
    if frm == to:
        return
    rs.replicas = to
    w.event(t, ("Deployment", rs.ns, rs.dep.name, rs.dep.uid), "ScalingReplicaSet",
            f"Scaled {'up' if to > frm else 'down'} replica set {rs.name} from {frm} to {to}",
            component="deployment-controller")
    w.sync(t)


def rolling_update(w, t, dep, nodes, image=None, step=14, ready_after=6, on_new=None,
                   mutate=None, annotations=None, pull_first=True):
    """A RollingUpdate with maxSurge 1 / maxUnavailable 0 that replaces every pod. With
    `ready_after=None` new pods never become ready and the rollout stops after the first
    surge pod. Returns (new_rs, new_pods, t_done)."""
    yield t
    old_rs = dep.current
    rs = new_revision(w, t, dep, image=image, mutate=mutate, annotations=annotations)
    olds = [p for p in old_rs.pods() if p.active()]
    news = []
    tt = t + 1
    for i, old in enumerate(olds):
        yield tt
        scale_rs(w, tt, rs, i + 1)
        p = w.new_rs_pod(rs, tt)
        w.create_pod(tt, p)
        w.event(tt, ("ReplicaSet", rs.ns, rs.name, rs.uid), "SuccessfulCreate",
                f"Created pod: {p.name}", component="replicaset-controller")
        w.spawn(w.schedule(tt + 1, p, nodes[i % len(nodes)], pull=(pull_first and i == 0),
                           ready_after=ready_after))
        news.append(p)
        if on_new:
            on_new(p)
        if ready_after is None:
            break
        tt += step
        yield tt
        scale_rs(w, tt, old_rs, len(olds) - i - 1)
        w.event(tt, ("ReplicaSet", old_rs.ns, old_rs.name, old_rs.uid), "SuccessfulDelete",
                f"Deleted pod: {old.name}", component="replicaset-controller")
        w.spawn(w.terminate(tt, old, grace=3))
        tt += 2
    return rs, news, tt


# ---------------------------------------------------------------------------------------
# Cluster building blocks
# ---------------------------------------------------------------------------------------

ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]


def img(path, tag, registry="registry.example.com"):
    return f"{registry}/{path}:{tag}"


def base(sc, nodes=("node-a", "node-b", "node-c"), coredns=True, cpu=8, mem_gi=32,
         zones=ZONES, instance_type="m6i.2xlarge", provider="aws", coredns_nodes=None,
         coredns_limit="170Mi", coredns_image="registry.k8s.io/coredns/coredns:v1.11.3",
         subnet=0, dns_ip="10.96.0.10", **node_kw):
    w = World(sc, nodes[0])
    for i, n in enumerate(nodes):
        w.node(n, ip=f"10.{subnet}.{i % 3 + 1}.{21 + i * 13}", zone=zones[i % len(zones)],
               pod_cidr=f"10.{subnet + 1}.{i}.0/24", cpu=cpu, mem_gi=mem_gi,
               instance_type=instance_type, provider=provider, **node_kw)
    ag = agents(w, *nodes)
    if coredns:
        w.coredns = add_coredns(w, coredns_nodes or [nodes[0], nodes[1 % len(nodes)]],
                                coredns_limit, coredns_image, dns_ip=dns_ip)
    return w, ag


COREFILE = """.:53 {
    errors
    health {
        lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
        max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
"""


def add_coredns(w, nodes, limit="170Mi", image="registry.k8s.io/coredns/coredns:v1.11.3",
                replicas=2, dns_ip="10.96.0.10"):
    w.configmap("kube-system", "coredns", {"Corefile": COREFILE}, created=-86400 * 300)
    d = w.deploy("kube-system", "coredns", replicas, nodes, image, "coredns", port=53,
                 port_name="dns", req_cpu="100m", req_mem="70Mi", lim_mem=limit, svc=False,
                 labels={"k8s-app": "kube-dns"}, revision=2, max_unavailable="1",
                 created=-86400 * 300, started=-86400 * 12, volume_cm="coredns",
                 readiness={"httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"},
                            "periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3,
                            "successThreshold": 1},
                 liveness={"httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"},
                           "initialDelaySeconds": 60, "periodSeconds": 10, "timeoutSeconds": 5,
                           "failureThreshold": 5, "successThreshold": 1},
                 priority_class="system-cluster-critical")
    d.service = w.service("kube-system", "kube-dns", {"app": "coredns"},
                          [("dns", 53, 53, "UDP"), ("dns-tcp", 53, 53, "TCP"),
                           ("metrics", 9153, 9153, "TCP")], cluster_ip=dns_ip,
                          created=-86400 * 300)
    return d


SHOP = {
    "frontend": ("shop/frontend", "4.12.0", "node", 3000),
    "checkout": ("shop/checkout", "2.8.0", "checkout", 8080),
    "cart": ("shop/cart", "3.0.4", "java", 8080),
    "payments": ("shop/payments", "1.19.2", "payments", 8080),
    "inventory": ("shop/inventory", "5.2.1", "inventory", 8080),
    "catalog": ("shop/catalog", "7.3.0", "gunicorn", 8000),
    "recommendations": ("shop/recommendations", "0.31.0", "python3", 8080),
    "reviews": ("shop/reviews", "3.3.2", "node", 3000),
    "pricing": ("shop/pricing", "2.2.0", "pricing", 8080),
    "orders-api": ("shop/orders-api", "6.0.3", "orders-api", 8080),
    "search-api": ("search/search-api", "1.44.0", "java", 8080),
}


def shop(w, name, replicas, nodes, ns="shop", **kw):
    path, tag, comm, port = SHOP[name]
    return w.deploy(ns, name, replicas, nodes, img(path, tag), comm, port=port, **kw)


def pods_of(dep):
    return [p for p in dep.pods() if p.active()]


def pod_on(dep, node):
    return [p for p in pods_of(dep) if p.node == node][0]


def ent(kind, ns, name=None):
    """Entity reference for expected.json: Kind/ns/name or Node/name."""
    return f"{kind}/{ns}" if name is None else f"{kind}/{ns}/{name}"


def std_noise(w, ag, sc, *, resched=None, job=None, flap=None, stats=None):
    """The background most scenarios share. Each argument is optional:
    resched=(t, dep, node), job=(t, node), flap=(t, name, ns, labels),
    stats=(t0, t1, flows, step)."""
    if resched:
        t, dep, node = resched[:3]
        w.spawn(reschedule(w, t, dep, node, probe_blip=len(resched) > 3 and resched[3]))
    if job:
        t, node = job[:2]
        kw = job[2] if len(job) > 2 else {}
        w.spawn(job_noise(w, t, node, **kw))
    if flap:
        t, name, ns, labels = flap[:4]
        alert_flap(sc, t, name, ns, labels, duration=flap[4] if len(flap) > 4 else 150)
    if stats:
        t0, t1, flows, step = stats
        healthy_stats(ag, t0, t1, flows, step)


def node_unreachable(w, t, node_name, pod_events=True):
    """The node controller gives up on a silent kubelet: every condition Unknown, the
    unreachable taints, pods marked not ready (NodeNotReady events)."""
    n = w.get("Node", None, node_name)
    for typ in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready"):
        n.set_cond(t, typ, "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.",
                   heartbeat=False)
    was_not_ready = any(x["key"] == "node.kubernetes.io/not-ready" for x in n.taints)
    n.remove_taint("node.kubernetes.io/not-ready")
    n.add_taint(t, "node.kubernetes.io/unreachable", "NoSchedule")
    n.add_taint(t, "node.kubernetes.io/unreachable", "NoExecute")
    if was_not_ready:
        w.sync(t)
        return
    w.event(t, ("Node", None, node_name, n.uid), "NodeNotReady",
            f"Node {node_name} status is now: NodeNotReady", component="node-controller")
    for p in [p for p in w.pods() if p.node == node_name and p.active()]:
        p.force_unready = True
        if pod_events:
            w.event(t, ("Pod", p.ns, p.name, p.uid), "NodeNotReady", "Node is not ready",
                    typ="Warning", component="node-controller")
    w.sync(t)


def kubelet_not_ready(w, t, node_name, message, pod_events=False):
    """The kubelet itself reports NotReady (PLEG, runtime down...)."""
    n = w.get("Node", None, node_name)
    n.set_cond(t, "Ready", "False", "KubeletNotReady", message)
    n.add_taint(t, "node.kubernetes.io/not-ready", "NoSchedule")
    n.add_taint(t, "node.kubernetes.io/not-ready", "NoExecute")
    w.event(t, ("Node", None, node_name, n.uid), "NodeNotReady",
            f"Node {node_name} status is now: NodeNotReady", host=node_name)
    for p in [p for p in w.pods() if p.node == node_name and p.active()]:
        p.force_unready = True
        if pod_events:
            w.event(t, ("Pod", p.ns, p.name, p.uid), "NodeNotReady", "Node is not ready",
                    typ="Warning", component="node-controller")
    w.sync(t)


def node_ready_again(w, t, node_name):
    n = w.get("Node", None, node_name)
    n.set_cond(t, "MemoryPressure", "False", "KubeletHasSufficientMemory",
               "kubelet has sufficient memory available")
    n.set_cond(t, "DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure")
    n.set_cond(t, "PIDPressure", "False", "KubeletHasSufficientPID",
               "kubelet has sufficient PID available")
    n.set_cond(t, "Ready", "True", "KubeletReady", "kubelet is posting ready status")
    for key in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready",
                "node.kubernetes.io/memory-pressure"):
        n.remove_taint(key)
    w.event(t, ("Node", None, node_name, n.uid), "NodeReady",
            f"Node {node_name} status is now: NodeReady", host=node_name)
    for p in [p for p in w.pods() if p.node == node_name and p.active()]:
        p.force_unready = False
    w.sync(t)


def memory_pressure(w, t, node_name, on=True):
    n = w.get("Node", None, node_name)
    if on:
        n.set_cond(t, "MemoryPressure", "True", "KubeletHasInsufficientMemory",
                   "kubelet has insufficient memory available")
        n.add_taint(t, "node.kubernetes.io/memory-pressure", "NoSchedule")
        w.event(t, ("Node", None, node_name, n.uid), "NodeHasInsufficientMemory",
                f"Node {node_name} status is now: NodeHasInsufficientMemory", host=node_name)
        w.event(t + 1, ("Node", None, node_name, n.uid), "EvictionThresholdMet",
                "Attempting to reclaim memory", typ="Warning", host=node_name)
    else:
        n.set_cond(t, "MemoryPressure", "False", "KubeletHasSufficientMemory",
                   "kubelet has sufficient memory available")
        n.remove_taint("node.kubernetes.io/memory-pressure")
        w.event(t, ("Node", None, node_name, n.uid), "NodeHasSufficientMemory",
                f"Node {node_name} status is now: NodeHasSufficientMemory", host=node_name)
    w.sync(t)


def replace_pod(w, t, old, node, ready_after=8, pull=False):
    """The owner (ReplicaSet) creates a replacement for `old` and it starts on `node`."""
    rs = [r for d in w.objs.values() if d.kind == "Deployment" for r in d.rs
          if old.owner and r.uid == old.owner[3]]
    if not rs:
        return None
    rs = rs[0]
    new = w.new_rs_pod(rs, t)
    w.create_pod(t, new)
    w.event(t, ("ReplicaSet", rs.ns, rs.name, rs.uid), "SuccessfulCreate",
            f"Created pod: {new.name}", component="replicaset-controller")
    if node:
        w.spawn(w.schedule(t + 1, new, node, pull=pull, ready_after=ready_after))
    return new


def taint_evict(w, t, node_name, targets):
    """After tolerationSeconds (300 s) the taint-eviction controller deletes the pods of an
    unreachable node; ReplicaSets replace them on `targets` (StatefulSet and DaemonSet pods
    are not replaced: they stay Terminating until the node is gone)."""
    yield t
    i = 0
    for p in [p for p in w.pods() if p.node == node_name and p.active()]:
        if p.owner and p.owner[1] == "DaemonSet":
            continue
        w.event(t, ("Pod", p.ns, p.name, p.uid), "TaintManagerEviction",
                f"Marking for deletion Pod {p.ns}/{p.name}", component="taint-eviction-controller")
        p.deletion = t + 30
        if p.owner and p.owner[1] == "ReplicaSet":
            replace_pod(w, t, p, targets[i % len(targets)] if targets else None)
            i += 1
    w.sync(t)


def evict(w, t, pod, resource="memory", using="1210Mi", request="256Mi", threshold="100Mi",
          available="61244Ki", replace_on=None):
    """A kubelet eviction: Evicted event, pod Failed/Evicted, its owner replaces it."""
    c = pod.containers[0]
    msg = (f"The node was low on resource: {resource}. Threshold quantity: {threshold}, "
           f"available: {available}. Container {c.name} was using {using}, request is "
           f"{request}, has larger consumption of {resource}. ")
    w.event(t, ("Pod", pod.ns, pod.name, pod.uid), "Evicted", msg, typ="Warning", host=pod.node)
    w.event(t, ("Pod", pod.ns, pod.name, pod.uid), "Killing", f"Stopping container {c.name}",
            host=pod.node, field_path=f"spec.containers{{{c.name}}}")
    pod.phase = "Failed"
    pod.reason = "Evicted"
    pod.message = msg
    for x in pod.containers:
        started = x.state[1] if x.state[0] == "running" else t - 60
        x.state = ("terminated", "ContainerStatusUnknown", 137, started, t + 2,
                   "The container could not be located when the pod was terminated", x.cid)
        x.ready = False
    w.sync(t)
    if replace_on is not False:
        return replace_pod(w, t, pod, replace_on)


def image_pull_backoff(w, t, pod, node, failure, t_end, image=None):
    """A pod whose image cannot be pulled: ErrImagePull, then ImagePullBackOff with the
    kubelet's back-off (10 s doubling to 300 s); events aggregate (count)."""
    yield from w.schedule(t, pod, node, start=False)
    c = pod.containers[0]
    image = image or c.image
    ref = ("Pod", pod.ns, pod.name, pod.uid)
    fp = f"spec.containers{{{c.name}}}"
    tt = t + 1
    i = 0
    while tt <= t_end:
        yield tt
        if not alive(w, pod):
            return
        w.event(tt, ref, "Pulling", f'Pulling image "{image}"', host=node, field_path=fp)
        t2 = tt + 1 + (i == 0)
        yield t2
        w.event(t2, ref, "Failed", f'Failed to pull image "{image}": {failure}', typ="Warning",
                host=node, field_path=fp)
        w.event(t2, ref, "Failed", "Error: ErrImagePull", typ="Warning", host=node,
                field_path=fp)
        c.state = ("waiting", "ErrImagePull", f'failed to pull and unpack image "{image}": {failure.split(": ", 1)[-1][:200]}')
        w.sync(t2)
        t3 = t2 + 1
        yield t3
        w.event(t3, ref, "BackOff", f'Back-off pulling image "{image}"', host=node,
                field_path=fp)
        w.event(t3, ref, "Failed", "Error: ImagePullBackOff", typ="Warning", host=node,
                field_path=fp)
        c.state = ("waiting", "ImagePullBackOff", f'Back-off pulling image "{image}"')
        w.sync(t3)
        tt = t3 + BACKOFFS[min(i, len(BACKOFFS) - 1)]
        i += 1


def unschedulable(w, t, pod, message, t_end, every=60, scale_up=None):
    """The scheduler cannot place `pod`: PodScheduled=False/Unschedulable and repeated
    FailedScheduling events (aggregated). `message` may be a function of time."""
    yield t
    ref = ("Pod", pod.ns, pod.name, pod.uid)
    tt = t
    first = True
    while tt <= t_end and alive(w, pod) and pod.node is None:
        m = message(tt) if callable(message) else message
        pod.sched = ("False", "Unschedulable", m)
        w.sync(tt)
        w.event(tt, ref, "FailedScheduling", m, typ="Warning", component="default-scheduler")
        if first and scale_up:
            w.event(tt + 10, ref, scale_up[0], scale_up[1],
                    typ="Normal", component="cluster-autoscaler")
        first = False
        tt += every
        every = min(every * 2, 300)
        yield tt


def fresh_containers(cs):
    out = []
    for c in cs:
        n = copy.copy(c)
        n.state, n.last, n.restarts, n.ready, n.started, n.cid, n.image_id = (
            ("running", None), None, 0, True, True, None, None)
        out.append(n)
    return out


def rollback(w, t, dep, to_rs, nodes, step=10, marker=None):
    """`kubectl rollout undo`: the old ReplicaSet becomes the newest revision and scales
    back up; the bad ReplicaSet's (unready) pods are removed."""
    yield t
    bad = dep.current
    dep.revision += 1
    dep.generation += 1
    to_rs.revision = dep.revision
    dep.rs.remove(to_rs)
    dep.rs.append(to_rs)
    dep.mk_containers = lambda: fresh_containers(to_rs.containers)
    w.sync(t)
    tt = t + 1
    for i in range(dep.replicas):
        yield tt
        scale_rs(w, tt, to_rs, i + 1)
        p = w.new_rs_pod(to_rs, tt)
        w.create_pod(tt, p)
        w.event(tt, ("ReplicaSet", to_rs.ns, to_rs.name, to_rs.uid), "SuccessfulCreate",
                f"Created pod: {p.name}", component="replicaset-controller")
        w.spawn(w.schedule(tt + 1, p, nodes[i % len(nodes)], pull=False, ready_after=6))
        tt += step
    yield tt
    scale_rs(w, tt, bad, 0)
    for p in [p for p in bad.pods() if p.active()]:
        w.event(tt, ("ReplicaSet", bad.ns, bad.name, bad.uid), "SuccessfulDelete",
                f"Deleted pod: {p.name}", component="replicaset-controller")
        w.spawn(w.terminate(tt, p, grace=2))


def wl(ns, kind, name):
    return {"cluster": CLUSTER, "namespace": ns, "workload": {"kind": kind, "name": name}}


def every(t0, t1, step):
    t = t0
    while t <= t1:
        yield t
        t += step


# =======================================================================================
# Scenarios
# =======================================================================================

A, B, C, D = "node-a", "node-b", "node-c", "node-d"
GO_PANIC = ("panic: runtime error: invalid memory address or nil pointer dereference\n"
            "[signal SIGSEGV: segmentation violation code=0x1 addr=0x28 pc=0x14b2f5a]\n\n"
            "goroutine 187 [running]:\nmain.(*PromoEngine).Apply(0x0, {0xc0004a2b40, 0x24})\n"
            "\t/src/internal/promo/engine.go:212 +0x3a")


@scenario("01-bad-rollout-checkout-crashloop",
          "checkout 2.8.1 rolls out (revision 15), passes readiness, then every new pod panics "
          "(exit code 2) and crash-loops; the Service has no ready endpoints, frontend's connects "
          "to checkout are refused and checkout requests fail ~97 %; rolled back after 7 minutes",
          "synthetic")
def s01(sc):
    w, ag = base(sc)
    fe = shop(w, "frontend", 3, [A, B, C])
    co = shop(w, "checkout", 3, [A, B, C], revision=14)
    cat = shop(w, "catalog", 2, [C, A])
    w.snapshot(0)
    chk = co.service.cluster_ip
    cat_pod = pods_of(cat)[0]
    std_noise(w, ag, sc, resched=(75, cat, B, True),
              flap=(250, "CPUThrottlingHigh", "shop", {"pod": cat_pod.name, "container": "catalog"}),
              stats=(30, 600, [(B, cat.service.cluster_ip, 8000, 220)], 120))
    T, RB = 150, 510
    old_rs = co.current
    change(sc, T, "change.deployment.rollout", wl("shop", "Deployment", "checkout"),
           {"revision": 15, "image": img("shop/checkout", "2.8.1"),
            "previous_image": img("shop/checkout", "2.8.0"), "application": "shop-checkout"})

    def on_new(p):
        def proc():
            yield w.sim.now + 46
            if alive(w, p):
                yield from crash_loop(w, p, w.sim.now, RB + 30, run=5, exit_code=2,
                                      message=GO_PANIC, agent=ag[p.node], event_every=2)
        w.spawn(proc())

    w.spawn(rolling_update(w, T + 2, co, [A, B, C], image=img("shop/checkout", "2.8.1"),
                           on_new=on_new))
    # callers: frontend -> checkout ClusterIP
    for t in every(T + 60, RB + 10, 90):
        for p in pods_of(fe):
            ag[p.node].refused(t + sc.rng.randint(0, 9), p, chk, 8080, sc.rng.randint(6, 40))
    stats_series(ag, 60, 600, [(A, chk, 8080, 180), (B, chk, 8080, 170), (C, chk, 8080, 175)],
                 lambda t, i: ((0.0 if t < T + 50 else 0.45 if t < T + 85 else 0.97)
                               if t < RB + 20 else 0.0, 0, 1.0), step=90)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "checkout"},
          {"summary": "checkout 5xx ratio above 5 %", "error_ratio": "0.97"}).fire(T + 95).resolve(RB + 75)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "frontend"},
          {"summary": "frontend 5xx ratio above 5 %", "error_ratio": "0.31"}).fire(T + 110).resolve(RB + 80)
    change(sc, RB, "change.deployment.rollout", wl("shop", "Deployment", "checkout"),
           {"revision": 16, "image": img("shop/checkout", "2.8.0"),
            "previous_image": img("shop/checkout", "2.8.1"), "application": "shop-checkout",
            "rollback": True})
    w.spawn(rollback(w, RB + 1, co, old_rs, [A, B, C]))
    w.run()
    sc.expect("P1", "P1: complete service unavailability — checkout has 0 available replicas and "
              "no ready endpoints; checkout requests fail 97 %",
              "bad_rollout", ent("Deployment", "shop", "checkout"),
              [ent("Service", "shop", "checkout"), ent("Deployment", "shop", "frontend")])


@scenario("02-bad-rollout-cart-partial",
          "cart 3.1.0 rolls out; the new JVM aborts (SIGABRT) under load every few minutes and "
          "crash-loops, but there are always ready endpoints left: cart errors ~9 %",
          "synthetic")
def s02(sc):
    w, ag = base(sc)
    fe = shop(w, "frontend", 2, [B, C])
    cart = shop(w, "cart", 3, [A, B, C], revision=22, req_mem="768Mi", lim_mem="1536Mi")
    cat = shop(w, "catalog", 2, [A, C])
    w.snapshot(0)
    cip = cart.service.cluster_ip
    std_noise(w, ag, sc, flap=(520, "HighLatencyP99", "shop", {"service": "catalog"}, 140),
              stats=(40, 900, [(C, cat.service.cluster_ip, 8000, 200)], 120))
    w.spawn(hpa_scale(w, 430, fe, 3, [A]))
    T = 120
    hs_err = ("#\n# A fatal error has been detected by the Java Runtime Environment:\n#\n"
              "#  SIGSEGV (0xb) at pc=0x00007f3c2d4a1b2e, pid=1, tid=87\n#\n"
              "# JRE version: OpenJDK Runtime Environment Temurin-21.0.5+11 (21.0.5+11)\n"
              "# Problematic frame:\n# C  [libcartnative.so+0x1b2e]  Java_cart_pricing_NativeRounding_round+0x4e\n#\n"
              "# Core dump will be written. Default location: /app/core\n")
    # (first crash after, time serving between crashes): the crash needs a rare request
    # path, so one pod hits it far less often — there is always a ready endpoint left.
    plan = iter([(155, 160), (210, 220), (520, 600)])

    def on_new(p):
        first, serving = next(plan)

        def proc():
            yield w.sim.now + first
            if alive(w, p):
                yield from crash_loop(w, p, w.sim.now, 900, signal=6, message=hs_err,
                                      agent=ag[p.node], ready_for=serving, event_every=2)
        w.spawn(proc())

    w.spawn(rolling_update(w, T, cart, [A, B, C], image=img("shop/cart", "3.1.0"),
                           on_new=on_new, step=20))
    for t in every(T + 200, 900, 120):
        p = pods_of(fe)[0]
        ag[p.node].refused(t + sc.rng.randint(0, 20), p, cip, 8080, sc.rng.randint(3, 6))
    stats_series(ag, 60, 900, [(B, cip, 8080, 260), (C, cip, 8080, 240)],
                 lambda t, i: (0.0 if t < T + 180 else 0.03, 0, 1.0), step=60)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "cart"},
          {"summary": "cart 5xx ratio above 5 %", "error_ratio": "0.09"}).fire(T + 330)
    w.run()
    sc.expect("P2", "P2: high error rate (9 % > 5 %) and partial functionality — cart replicas "
              "crash-loop but the Service keeps ready endpoints",
              "bad_rollout", ent("Deployment", "shop", "cart"),
              [ent("Service", "shop", "cart"), ent("Deployment", "shop", "frontend")])


@scenario("03-bad-rollout-daemonset-fluent-bit",
          "fluent-bit DaemonSet 3.2.0 rolls out; the new pod on node-a exits 1 on a parser its "
          "config no longer finds and crash-loops; the rollout stalls (maxUnavailable 1), log "
          "shipping from node-a stops; no user-facing impact",
          "synthetic")
def s03(sc):
    w, ag = base(sc)
    fb = w.daemonset("logging", "fluent-bit", [A, B, C], "cr.fluentbit.io/fluent/fluent-bit:3.1.9",
                     "fluent-bit", port=2020, req_mem="64Mi", lim_mem="256Mi")
    w.configmap("logging", "fluent-bit-config", {"fluent-bit.conf": "[SERVICE]\n    Flush 1\n    Parsers_File parsers.conf\n[INPUT]\n    Name tail\n    Path /var/log/containers/*.log\n    multiline.parser cri_multiline\n[OUTPUT]\n    Name es\n    Match *\n    Host elasticsearch.logging.svc\n"})
    es = w.statefulset("logging", "elasticsearch", 2, [B, C],
                       "docker.elastic.co/elasticsearch/elasticsearch:8.15.3", "java", 9200)
    fe = shop(w, "frontend", 2, [A, B])
    cat = shop(w, "catalog", 2, [B, C])
    w.snapshot(0)
    esip = es.svc.cluster_ip
    std_noise(w, ag, sc, resched=(90, cat, A), job=(420, B),
              flap=(700, "CPUThrottlingHigh", "logging", {"pod": "elasticsearch-0", "container": "elasticsearch"}),
              stats=(30, 1200, [(B, esip, 9200, 60), (C, esip, 9200, 55)], 150))
    T = 240
    change(sc, T, "change.deployment.rollout", wl("logging", "DaemonSet", "fluent-bit"),
           {"revision": 5, "image": "cr.fluentbit.io/fluent/fluent-bit:3.2.0",
            "previous_image": "cr.fluentbit.io/fluent/fluent-bit:3.1.9",
            "application": "logging-fluent-bit"})
    msg = ("[2026/11/27 10:04:13] [error] [multiline] parser 'cri_multiline' not registered\n"
           "[2026/11/27 10:04:13] [error] [input:tail:tail.0] could not load multiline parsers\n"
           "[2026/11/27 10:04:13] [error] failed initialize input tail.0\n"
           "[2026/11/27 10:04:13] [error] [engine] input initialization failed")

    def story():
        yield T + 1
        fb.generation += 1
        fb.revision_hash = sc.k8s_suffix(10)
        fb.mk_containers = lambda: [Container("fluent-bit", "cr.fluentbit.io/fluent/fluent-bit:3.2.0",
                                              "fluent-bit", req_cpu="100m", req_mem="64Mi",
                                              lim_mem="256Mi", port=2020)]
        fb.containers = fb.mk_containers()
        w.sync(T + 1)
        old = pod_on(fb, A)
        w.event(T + 2, ("DaemonSet", "logging", "fluent-bit", fb.uid), "SuccessfulDelete",
                f"Deleted pod: {old.name}", component="daemonset-controller")
        yield from w.terminate(T + 2, old, grace=5)
        new = w.new_ds_pod(fb, T + 9)
        w.create_pod(T + 9, new)
        w.event(T + 9, ("DaemonSet", "logging", "fluent-bit", fb.uid), "SuccessfulCreate",
                f"Created pod: {new.name}", component="daemonset-controller")
        yield from w.schedule(T + 10, new, A, pull=True, ready_after=None)
        yield from crash_loop(w, new, w.sim.now + 2, 1230, run=2, exit_code=1, message=msg,
                              agent=ag[A], event_every=2)

    w.spawn(story())
    Alert(sc, "KubeDaemonSetRolloutStuck", "warning",
          {"namespace": "logging", "daemonset": "fluent-bit"},
          {"summary": "DaemonSet rollout is stuck."}).fire(T + 905)
    w.run()
    sc.expect("P3", "P3: non-critical component failure — log shipping on one node stopped; no "
              "service impact, no error-rate change",
              "bad_rollout", ent("DaemonSet", "logging", "fluent-bit"))


@scenario("04-memory-limit-too-low-recommendations",
          "recommendations (limit 512Mi) is OOM-killed at its limit again and again after its "
          "model grew; two of three pods crash-loop while every node has >20 GiB free; the "
          "Service keeps one ready endpoint, errors 9 %",
          "synthetic")
def s04(sc):
    w, ag = base(sc)
    fe = shop(w, "frontend", 2, [A, C])
    rec = shop(w, "recommendations", 3, [A, B, C], req_mem="384Mi", lim_mem="512Mi")
    cat = shop(w, "catalog", 2, [B, C])
    w.snapshot(0)
    rip = rec.service.cluster_ip
    cat_pod = pod_on(cat, C)
    std_noise(w, ag, sc, resched=(60, cat, A, True), job=(500, C),
              flap=(300, "CPUThrottlingHigh", "shop", {"pod": cat_pod.name, "container": "catalog"}),
              stats=(45, 900, [(C, cat.service.cluster_ip, 8000, 150)], 150))
    limit = mib(512)
    for p, t0 in ((pod_on(rec, A), 190), (pod_on(rec, B), 260)):
        w.spawn(crash_loop(w, p, t0, 900, oom=(limit - mib(3), limit), agent=ag[p.node],
                           ready_for=55, event_every=2))
    for t in every(300, 900, 150):
        p = pod_on(fe, A)
        ag[A].refused(t + 7, p, rip, 8080, sc.rng.randint(3, 8))
    stats_series(ag, 60, 900, [(A, rip, 8080, 210), (C, rip, 8080, 190)],
                 lambda t, i: (0.0 if t < 190 else 0.04, 0, 1.0), step=60)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "recommendations"},
          {"summary": "recommendations 5xx ratio above 5 %", "error_ratio": "0.09"}).fire(420)
    w.run()
    sc.expect("P2", "P2: partial functionality unavailable and error rate 9 % > 5 % — two of three "
              "replicas crash-loop (OOMKilled at their limit), the Service keeps a ready endpoint",
              "memory_limit_too_low", ent("Deployment", "shop", "recommendations"),
              [ent("Service", "shop", "recommendations")])


@scenario("05-single-oom-recovers",
          "one pdf-renderer container is OOM-killed at its 1 GiB limit rendering a huge document "
          "and restarts cleanly; a handful of refused connects while it restarts; lots of "
          "healthy churn around it",
          "synthetic")
def s05(sc):
    w, ag = base(sc)
    pdf = w.deploy("docs", "pdf-renderer", 2, [B, C], img("docs/pdf-renderer", "2.7.1"),
                   "chromium", port=9000, req_mem="768Mi", lim_mem="1Gi")
    api = w.deploy("docs", "docs-api", 2, [A, B], img("docs/docs-api", "5.0.2"), "node",
                   port=3000)
    fe = shop(w, "frontend", 2, [A, C])
    cat = shop(w, "catalog", 2, [A, C])
    w.snapshot(0)
    pip = pdf.service.cluster_ip
    std_noise(w, ag, sc, resched=(80, cat, B, True), job=(150, A, {"second_node": B}),
              flap=(600, "HighLatencyP99", "shop", {"service": "frontend"}, 120),
              stats=(40, 840, [(A, pip, 9000, 40), (B, pip, 9000, 35),
                               (A, cat.service.cluster_ip, 8000, 190)], 120))
    w.spawn(hpa_scale(w, 480, fe, 3, [B]))
    victim = pod_on(pdf, C)
    t = 340

    def story():
        yield t
        ag[C].oom(t, victim, anon_rss=gib(1) - mib(6), limit=gib(1))
        ag[C].exit(t, victim, signal=9)
        w.crash(t, victim, reason="OOMKilled", exit_code=137, waiting=None)
        yield t + 13
        w.set_ready(t + 13, victim, True)

    w.spawn(story())
    ag[A].refused(t + 2, pods_of(api)[0], pip, 9000, 3)
    w.run()
    sc.expect("P3", "P3: resource usage warning / non-critical component failure — a single "
              "container OOM-killed at its limit, restarted and recovered, no sustained errors",
              "memory_limit_too_low", ent("Deployment", "docs", "pdf-renderer"))


@scenario("06-node-memory-pressure-noisy-neighbour",
          "analytics-worker (Guaranteed, 20 GiB) ramps up on node-b where burstable pods with low "
          "requests overcommit memory: PSI memory pressure, MemoryPressure=True, the kernel "
          "OOM-kills cart and checkout far below their limits and the kubelet evicts catalog "
          "and cart; cart errors 7 %",
          "synthetic")
def s06(sc):
    w, ag = base(sc)
    aw = w.deploy("analytics", "analytics-worker", 1, [B], img("analytics/worker", "9.2.0"),
                  "java", port=None, svc=False, req_cpu="2", req_mem="20Gi", lim_mem="20Gi",
                  lim_cpu="2", qos="Guaranteed")
    fe = shop(w, "frontend", 2, [A, C])
    cart = shop(w, "cart", 2, [B, C], req_mem="128Mi", lim_mem="1Gi")
    co = shop(w, "checkout", 2, [A, B], req_mem="128Mi", lim_mem="768Mi")
    cat = shop(w, "catalog", 2, [B, A], req_mem="256Mi", lim_mem="2Gi")
    rev = shop(w, "reviews", 2, [A, C])
    w.snapshot(0)
    std_noise(w, ag, sc, resched=(70, rev, C), job=(560, C),
              flap=(140, "CPUThrottlingHigh", "analytics", {"pod": pods_of(aw)[0].name, "container": "analytics-worker"}, 200),
              stats=(30, 960, [(A, co.service.cluster_ip, 8080, 120),
                               (C, cart.service.cluster_ip, 8080, 160)], 120))
    ab = ag[B]
    ab.pressure_episode(200, 720, "memory", lambda t: 26 if t < 400 else 41,
                        lambda t: 9 if t < 400 else 23)
    cart_b, co_b, cat_b = pod_on(cart, B), pod_on(co, B), pod_on(cat, B)

    def story():
        yield 260
        memory_pressure(w, 260, B)
        yield 275
        ab.oom(275, cart_b, anon_rss=mib(612), limit=gib(1), memcg_usage=mib(640))
        ab.exit(275, cart_b, signal=9)
        w.crash(275, cart_b, reason="OOMKilled", exit_code=137, waiting=None)
        yield 290
        evict(w, 290, cat_b, using="1210Mi", request="256Mi", available="61244Ki",
              replace_on=C)
        yield 295
        w.set_ready(295, cart_b, True)
        yield 331
        ab.oom(331, co_b, anon_rss=mib(371), limit=mib(768), memcg_usage=mib(402))
        ab.exit(331, co_b, signal=9)
        w.crash(331, co_b, reason="OOMKilled", exit_code=137, waiting=None)
        yield 348
        w.set_ready(348, co_b, True)
        yield 362
        evict(w, 362, cart_b, using="655Mi", request="128Mi", available="48120Ki", replace_on=A)
        yield 430
        ab.oom(430, co_b, anon_rss=mib(366), limit=mib(768), memcg_usage=mib(398))
        ab.exit(430, co_b, signal=9)
        w.crash(430, co_b, reason="OOMKilled", exit_code=137, backoff=10)
        w.event(431, ("Pod", co_b.ns, co_b.name, co_b.uid), "BackOff",
                f"Back-off restarting failed container checkout in pod {co_b.name}_shop({co_b.uid})",
                typ="Warning", host=B, field_path="spec.containers{checkout}")
        yield 441
        w.restart(441, co_b)
        yield 452
        w.set_ready(452, co_b, True)
        yield 760
        memory_pressure(w, 760, B, on=False)

    w.spawn(story())
    stats_series(ag, 60, 960, [(A, cart.service.cluster_ip, 8080, 180)],
                 lambda t, i: (0.06 if 270 <= t <= 480 else 0.0, 0, 1.0), step=60)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "cart"},
          {"summary": "cart 5xx ratio above 5 %", "error_ratio": "0.07"}).fire(300).resolve(840)
    w.run()
    sc.expect("P2", "P2: partial functionality unavailable — pods of several workloads OOM-killed "
              "and evicted on one node; cart error rate 7 % > 5 %",
              "node_memory_pressure", "Node/node-b",
              [ent("Deployment", "shop", "cart"), ent("Deployment", "shop", "catalog"),
               ent("Deployment", "shop", "checkout"),
               ent("Deployment", "analytics", "analytics-worker")])


@scenario("07-node-failure-evictions",
          "node-c stops responding (hardware): its agent goes silent, the node turns NotReady "
          "(Unknown) 40 s later, callers time out to its pods until endpoints drop them; after "
          "300 s its pods are evicted and replaced elsewhere, redis-2 stays Terminating",
          "synthetic")
def s07(sc):
    w, ag = base(sc)
    fe = shop(w, "frontend", 3, [A, B, C])
    co = shop(w, "checkout", 3, [A, B, C])
    cat = shop(w, "catalog", 2, [C, A])
    redis = w.statefulset("shop", "redis", 3, [A, B, C], "docker.io/library/redis:7.4.1",
                          "redis-server", 6379, req_mem="512Mi", lim_mem="1Gi")
    w.snapshot(0)
    cip = co.service.cluster_ip
    std_noise(w, ag, sc, job=(60, A), flap=(880, "CPUThrottlingHigh", "shop", {"pod": pod_on(co, A).name, "container": "checkout"}),
              stats=(20, 230, [(A, cip, 8080, 170), (B, cip, 8080, 160), (C, cip, 8080, 150)], 60))
    w.spawn(reschedule(w, 120, cat, B, victim=pod_on(cat, A)))
    FAIL = 240
    redis2 = [p for p in pods_of(redis) if p.name == "redis-2"][0]
    # callers on A and B: connects to checkout / redis-2 on node-c time out until endpoints update
    for node in (A, B):
        fp = pod_on(fe, node)
        ag[node].timeout(FAIL + 4, fp, cip, 8080, sc.rng.randint(2, 5), waited_ms=3000)
        ag[node].timeout(FAIL + 19, fp, redis2.ip, 6379, 1, waited_ms=7000)
        ag[node].timeout(FAIL + 52, fp, redis2.ip, 6379, sc.rng.randint(2, 4), waited_ms=15000)
    healthy_stats(ag, FAIL + 120, 1080, [(A, cip, 8080, 190), (B, cip, 8080, 180)], 120)
    stats_series(ag, FAIL + 30, FAIL + 90, [(A, cip, 8080, 170), (B, cip, 8080, 165)],
                 lambda t, i: (0, 0.18 if t < FAIL + 60 else 0.02, 1.0), step=30)

    def story():
        yield FAIL + 40
        node_unreachable(w, FAIL + 40, C)
        yield FAIL + 340
        yield from taint_evict(w, FAIL + 340, C, [A, B])

    w.spawn(story())
    Alert(sc, "NodeDown", "critical", {"node": C, "job": "node-exporter"},
          {"summary": "Node node-c is unreachable: node-exporter down for 1 minute."}).fire(FAIL + 75)
    Alert(sc, "HighErrorRate", "warning", {"namespace": "shop", "service": "frontend"},
          {"summary": "frontend 5xx ratio above 1 %", "error_ratio": "0.03"}).fire(FAIL + 70).resolve(FAIL + 250)
    w.run()
    sc.expect("P2", "P2: partial functionality unavailable — a node NotReady, its pods evicted; "
              "services keep ready endpoints elsewhere (errors 3 % briefly)",
              "node_failure", "Node/node-c",
              [ent("Deployment", "shop", "checkout"), ent("Deployment", "shop", "catalog"),
               ent("StatefulSet", "shop", "redis"), ent("Deployment", "shop", "frontend")])


@scenario("08-zalando-dns-outage",
          "Zalando 2019: a downstream (product-reco) starts timing out, the aggregation layer "
          "errors and clients retry; the retry storm multiplies DNS queries (ndots:5, no cache) "
          "until both CoreDNS pods (limit 100Mi) are OOM-killed and crash-loop; with no kube-dns "
          "endpoints every service fails name resolution; Alertmanager itself cannot resolve "
          "its receiver, so most alerts arrive only after DNS is back",
          "failure-stories.md #1 (Zalando, total DNS outage, 2019)")
def s08(sc):
    N1, N2, N3, N4 = ("ip-10-2-14-201.eu-central-1.compute.internal",
                      "ip-10-2-15-17.eu-central-1.compute.internal",
                      "ip-10-2-16-88.eu-central-1.compute.internal",
                      "ip-10-2-14-93.eu-central-1.compute.internal")
    zones = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]
    w, ag = base(sc, nodes=(N1, N2, N3, N4), zones=zones, coredns_limit="100Mi",
                 coredns_nodes=[N1, N2], coredns_image="registry.k8s.io/coredns/coredns:v1.2.6",
                 subnet=2)
    dns = w.coredns
    agg = w.deploy("shop", "shop-aggregator", 3, [N1, N3, N4], img("shop/shop-aggregator", "19.4.2"),
                   "skipper", port=9090)
    reco = w.deploy("shop", "product-reco", 2, [N2, N3], img("shop/product-reco", "3.8.0"), "java")
    cat = shop(w, "catalog", 2, [N3, N4])
    co = shop(w, "checkout", 2, [N1, N2])
    fe = shop(w, "frontend", 2, [N2, N4])
    w.snapshot(0)
    D = "10.96.0.10"
    rip = reco.service.cluster_ip
    w.spawn(reschedule(w, 45, cat, N1, victim=pod_on(cat, N4)))
    healthy_stats(ag, 30, 150, [(N1, D, 53, 20), (N3, rip, 8080, 160)], 60)
    # 1) the downstream times out, the aggregator errors, clients retry
    for t in (128, 190, 255, 330):
        for p in [pod_on(agg, N1), pod_on(agg, N3)]:
            ag[p.node].timeout(t + sc.rng.randint(0, 9), p, rip, 8080, sc.rng.randint(3, 12),
                               waited_ms=3000, comm="skipper")
    stats_series(ag, 180, 420, [(N3, rip, 8080, 160), (N1, D, 53, 20), (N3, D, 53, 20)],
                 lambda t, i: ((0, 0.22, 3.0) if i == 0 else (0, 0, 4 + (t - 180) / 20)), step=60)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "shop-aggregator"},
          {"summary": "shop-aggregator 5xx ratio above 5 %", "error_ratio": "0.08"}).fire(170).resolve(1380)
    # 2) CoreDNS OOM-killed together, crash-loops
    lim = mib(100)
    c1, c2 = pod_on(dns, N1), pod_on(dns, N2)
    w.spawn(crash_loop(w, c1, 420, 1225, run=7, oom=(lim - mib(1), lim), agent=ag[N1],
                       event_every=3))
    w.spawn(crash_loop(w, c2, 433, 1225, run=6, oom=(lim - mib(1), lim), agent=ag[N2],
                       event_every=3))
    # 3) DNS failures everywhere: refused to the kube-dns ClusterIP (no endpoints: REJECT)
    callers = [pod_on(agg, N1), pod_on(fe, N2), pod_on(cat, N3), pod_on(fe, N4),
               pod_on(co, N1), pod_on(agg, N4)]
    comms = {"shop-aggregator": "skipper", "frontend": "node", "catalog": "gunicorn",
             "checkout": "checkout"}
    for k, t in enumerate(every(450, 1260, 90)):
        for p in callers[k % 2::2]:
            ag[p.node].refused(t + sc.rng.randint(0, 20), p, D, 53, sc.rng.randint(20, 120),
                               comm=comms[p.workload()["name"]])
    stats_series(ag, 450, 1500, [(N1, D, 53, 25), (N2, D, 53, 25), (N3, D, 53, 25), (N4, D, 53, 25)],
                 lambda t, i: ((0.93, 0.05, 12.0) if t < 1290 else (0, 0, 1.5)), step=90)
    # 4) the fix: CoreDNS memory limit raised to 2Gi (new revision), DNS back
    FIX = 1230
    change(sc, FIX, "change.deployment.rollout", wl("kube-system", "Deployment", "coredns"),
           {"revision": 3, "image": "registry.k8s.io/coredns/coredns:v1.2.6",
            "change": "resources.limits.memory 100Mi -> 2Gi", "application": "kube-system"},
           agent="kubectl-audit", node=N1)

    def bump(c):
        c.lim_mem = "2Gi"
        c.req_mem = "200Mi"
    w.spawn(rolling_update(w, FIX + 1, dns, [N3, N4], mutate=bump, step=10, pull_first=False))
    # 5) alerts: those that started during the outage are delivered once DNS works again
    late = 1300
    for svc, ratio, st in (("frontend", "0.92", 470), ("checkout", "0.97", 480),
                           ("catalog", "0.95", 490)):
        Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": svc},
              {"summary": f"{svc} 5xx ratio above 5 %", "error_ratio": ratio}).fire(st, store_t=late).resolve(1350)
    Alert(sc, "CoreDNSDown", "critical", {"namespace": "kube-system", "deployment": "coredns"},
          {"summary": "CoreDNS has disappeared from Prometheus target discovery."}).fire(500, store_t=late).resolve(1290)
    w.run()
    sc.expect("P1", "P1: complete cluster failure — cluster-wide DNS outage, every service fails "
              "(error ratio 0.92–0.97), kube-dns has no ready endpoints",
              "dns_outage", ent("Deployment", "kube-system", "coredns"),
              [ent("Service", "kube-system", "kube-dns"), ent("Deployment", "shop", "shop-aggregator"),
               ent("Deployment", "shop", "product-reco"), ent("Deployment", "shop", "frontend"),
               ent("Deployment", "shop", "checkout"), ent("Deployment", "shop", "catalog")])


@scenario("09-no-ready-endpoints-inventory",
          "both inventory pods fail their readiness probe (HTTP 503) with no change and no "
          "infrastructure symptom; the Service has no ready endpoints, checkout and frontend "
          "get refused connects to its ClusterIP and 5xx; recovers after 13 minutes",
          "synthetic")
def s09(sc):
    w, ag = base(sc)
    inv = shop(w, "inventory", 2, [B, C])
    co = shop(w, "checkout", 2, [A, B])
    fe = shop(w, "frontend", 2, [A, C])
    cat = shop(w, "catalog", 2, [A, B])
    w.snapshot(0)
    iip = inv.service.cluster_ip
    std_noise(w, ag, sc, resched=(95, cat, C), job=(600, A),
              flap=(1020, "CPUThrottlingHigh", "shop", {"pod": pod_on(co, A).name, "container": "checkout"}),
              stats=(30, 1140, [(B, cat.service.cluster_ip, 8000, 200)], 180))
    T, R = 200, 980

    def story():
        for i, p in enumerate(pods_of(inv)):
            yield T + i * 6
            w.event(T + i * 6, ("Pod", p.ns, p.name, p.uid), "Unhealthy",
                    "Readiness probe failed: HTTP probe failed with statuscode: 503",
                    typ="Warning", host=p.node, field_path="spec.containers{inventory}")
        for i, p in enumerate(pods_of(inv)):
            yield T + 10 + i * 6
            w.set_ready(T + 10 + i * 6, p, False)
        for t in every(T + 60, R - 30, 120):
            for p in pods_of(inv):
                yield t + (p.node == C) * 4
                w.event(t + (p.node == C) * 4, ("Pod", p.ns, p.name, p.uid), "Unhealthy",
                        "Readiness probe failed: HTTP probe failed with statuscode: 503",
                        typ="Warning", host=p.node, field_path="spec.containers{inventory}")
        for i, p in enumerate(pods_of(inv)):
            yield R + i * 8
            w.set_ready(R + i * 8, p, True)

    w.spawn(story())
    for t in every(T + 25, R, 90):
        for p in (pod_on(co, A), pod_on(fe, C)):
            ag[p.node].refused(t + sc.rng.randint(0, 15), p, iip, 8080, sc.rng.randint(8, 60))
    stats_series(ag, 60, 1140, [(A, iip, 8080, 150), (C, iip, 8080, 90)],
                 lambda t, i: (1.0 if T + 20 <= t <= R + 10 else 0.0, 0, 1.0), step=90)
    Alert(sc, "ProbeFailed", "critical", {"namespace": "shop", "service": "inventory",
                                          "job": "blackbox"},
          {"summary": "Synthetic probe of inventory failing", "error_ratio": "1"}).fire(T + 75).resolve(R + 60)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "checkout"},
          {"summary": "checkout 5xx ratio above 5 %", "error_ratio": "0.41"}).fire(T + 90).resolve(R + 70)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "frontend"},
          {"summary": "frontend 5xx ratio above 5 %", "error_ratio": "0.22"}).fire(T + 100).resolve(R + 75)
    w.run()
    sc.expect("P1", "P1: complete service unavailability — inventory has no ready endpoints, "
              "every request to it fails",
              "no_ready_endpoints", ent("Service", "shop", "inventory"),
              [ent("Deployment", "shop", "inventory"), ent("Deployment", "shop", "checkout"),
               ent("Deployment", "shop", "frontend")])


@scenario("10-disk-failure-node-b",
          "the data disk (nvme1n1) of node-b starts failing writes: block I/O errors, slow I/O, "
          "hung tasks; postgres replica orders-db-1 on it fails its liveness probe, is killed "
          "and then crash-loops on 'Input/output error', ingest-worker on the same node fails "
          "too; read errors 7 %",
          "synthetic")
def s10(sc):
    w, ag = base(sc)
    db = w.statefulset("shop", "orders-db", 3, [A, B, C], "docker.io/library/postgres:16.4",
                       "postgres", 5432, req_mem="2Gi", lim_mem="4Gi")
    api = shop(w, "orders-api", 2, [A, C])
    ing = w.deploy("shop", "ingest-worker", 2, [B, C], img("shop/ingest-worker", "1.9.0"),
                   "python3", port=None, svc=False)
    cat = shop(w, "catalog", 2, [A, C])
    w.snapshot(0)
    dbip = db.svc.cluster_ip
    std_noise(w, ag, sc, resched=(70, cat, B), job=(520, C),
              flap=(140, "CPUThrottlingHigh", "shop", {"pod": pod_on(api, A).name, "container": "orders-api"}),
              stats=(30, 1000, [(A, dbip, 5432, 80), (C, dbip, 5432, 75)], 150))
    ab = ag[B]
    db1 = [p for p in pods_of(db) if p.name == "orders-db-1"][0]
    ing_b = pod_on(ing, B)
    T = 300
    ab.io_error(T, "nvme1n1", "ioerr", op="write", count=1, pod=db1)
    ab.io_error(T + 6, "nvme1n1", "ioerr", op="write", count=4, pod=db1)
    ab.latency_spike(T + 9, "nvme1n1", 2310.5, count=5, pod=db1)
    ab.io_error(T + 21, "nvme1n1", "medium", op="read", count=2)
    ab.io_error(T + 44, "nvme1n1", "ioerr", op="write", count=9, pod=ing_b)
    ab.latency_spike(T + 50, "nvme1n1", 4870.0, count=11)
    ab.pressure(T + 60, "io", 58.4, 41.2, 30, full10=47.9)
    ab.hung_task(T + 125, "jbd2/nvme1n1-8", 122)
    ab.hung_task(T + 126, "postgres", 121)
    ab.io_error(T + 190, "nvme1n1", "ioerr", op="write", count=14)
    ab.pressure(T + 360, "io", 71.0, 66.3, 330, full10=63.2)
    pg_msg = ('2026-11-27 10:08:41.317 UTC [1] PANIC:  could not write to file "pg_wal/xlogtemp.27": '
              'Input/output error\n2026-11-27 10:08:41.318 UTC [1] LOG:  database system is shut down')

    def story():
        for k in range(3):
            yield T + 35 + k * 10
            w.event(T + 35 + k * 10, ("Pod", db1.ns, db1.name, db1.uid), "Unhealthy",
                    'Liveness probe failed: command timed out: "pg_isready -U postgres -h 127.0.0.1 -p 5432" timed out after 5s',
                    typ="Warning", host=B, field_path="spec.containers{orders-db}")
        w.set_ready(T + 55, db1, False)
        yield T + 56
        w.event(T + 56, ("Pod", db1.ns, db1.name, db1.uid), "Killing",
                "Container orders-db failed liveness probe, will be restarted", host=B,
                field_path="spec.containers{orders-db}")
        yield T + 86
        ab.exit(T + 86, db1, signal=9)
        w.crash(T + 86, db1, reason="Error", exit_code=137, waiting=None)
        yield T + 101
        yield from crash_loop(w, db1, T + 101, 1000, run=3, exit_code=1, message=pg_msg, agent=ab,
                              event_every=2)

    def ingest():
        yield T + 70
        w.event(T + 70, ("Pod", ing_b.ns, ing_b.name, ing_b.uid), "Unhealthy",
                "Liveness probe failed: command timed out: \"python3 /app/healthcheck.py\" timed out after 10s",
                typ="Warning", host=B, field_path="spec.containers{ingest-worker}")
        yield from crash_loop(w, ing_b, T + 100, 1000, run=15, exit_code=1,
                              message="OSError: [Errno 5] Input/output error: '/scratch/batch-88213.parquet'",
                              agent=ab, event_every=2)

    w.spawn(story())
    w.spawn(ingest())
    for t in every(T + 40, T + 100, 30):
        p = pod_on(api, A)
        ag[A].refused(t, p, db1.ip, 5432, sc.rng.randint(3, 7), comm="orders-api")
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "orders-api"},
          {"summary": "orders-api 5xx ratio above 5 %", "error_ratio": "0.07"}).fire(T + 80).resolve(T + 420)
    Alert(sc, "PostgresReplicaDown", "warning", {"namespace": "shop", "statefulset": "orders-db",
                                                 "pod": "orders-db-1"},
          {"summary": "Postgres replica orders-db-1 is down."}).fire(T + 240)
    w.run()
    sc.expect("P2", "P2: partial functionality unavailable — a database replica and a worker on the "
              "failing node are down; read error rate 7 % > 5 %",
              "disk_failure", "Node/node-b",
              [ent("StatefulSet", "shop", "orders-db"), ent("Deployment", "shop", "ingest-worker"),
               ent("Deployment", "shop", "orders-api")])


@scenario("11-image-pull-failure-bad-tag",
          "reviews is rolled to a tag that does not exist (3.40 instead of 3.4.0); the surge pod "
          "cycles ErrImagePull / ImagePullBackOff, the rollout stalls and exceeds its progress "
          "deadline; the old replicas keep serving",
          "synthetic")
def s11(sc):
    w, ag = base(sc)
    rev = shop(w, "reviews", 3, [A, B, C], revision=31)
    fe = shop(w, "frontend", 2, [A, B])
    cat = shop(w, "catalog", 2, [B, C])
    w.snapshot(0)
    std_noise(w, ag, sc, resched=(60, cat, A, True), job=(330, C),
              flap=(470, "HighLatencyP99", "shop", {"service": "catalog"}, 130),
              stats=(30, 930, [(A, rev.service.cluster_ip, 3000, 140),
                               (B, rev.service.cluster_ip, 3000, 150)], 90))
    T = 200
    bad = img("shop/reviews", "3.40")
    change(sc, T, "change.deployment.rollout", wl("shop", "Deployment", "reviews"),
           {"revision": 32, "image": bad, "previous_image": img("shop/reviews", "3.3.2"),
            "application": "shop-reviews"})
    failure = (f'rpc error: code = NotFound desc = failed to pull and unpack image "{bad}": '
               f'failed to resolve reference "{bad}": {bad}: not found')

    def story():
        yield T + 1
        rs = new_revision(w, T + 1, rev, image=bad)
        yield T + 2
        scale_rs(w, T + 2, rs, 1)
        p = w.new_rs_pod(rs, T + 2)
        w.create_pod(T + 2, p)
        w.event(T + 2, ("ReplicaSet", rs.ns, rs.name, rs.uid), "SuccessfulCreate",
                f"Created pod: {p.name}", component="replicaset-controller")
        w.spawn(image_pull_backoff(w, T + 3, p, C, failure, 960))
        yield T + 603
        rev.progress_override = ("False", "ProgressDeadlineExceeded",
                                 f'ReplicaSet "{rs.name}" has timed out progressing.')
        w.sync(T + 603)

    w.spawn(story())
    Alert(sc, "KubeDeploymentRolloutStuck", "warning", {"namespace": "shop", "deployment": "reviews"},
          {"summary": "Deployment rollout is not progressing."}).fire(T + 660)
    w.run()
    sc.expect("P3", "P3: non-critical component failure — the rollout is blocked by an image that "
              "cannot be pulled; the previous replicas keep serving, no error-rate change",
              "image_pull_failure", ent("Deployment", "shop", "reviews"))


@scenario("12-unschedulable-insufficient-cpu",
          "traffic surge: the HPA scales search-api from 3 to 6, but no node has 2 CPUs left and "
          "the node group is at its maximum; 3 pods stay Pending (Insufficient cpu), the 3 "
          "running pods are saturated and p99 latency reaches 6.4 s",
          "synthetic")
def s12(sc):
    w, ag = base(sc)
    sa = w.deploy("search", "search-api", 3, [A, B, C], img("search/search-api", "1.44.0"), "java",
                  req_cpu="2", req_mem="3Gi", lim_mem="4Gi")
    idx = w.deploy("search", "search-indexer", 2, [A, B], img("search/search-indexer", "1.44.0"),
                   "java", req_cpu="3", req_mem="4Gi", lim_mem="6Gi", svc=False)
    fe = shop(w, "frontend", 3, [A, B, C], req_cpu="1")
    cat = shop(w, "catalog", 2, [C, B], req_cpu="1500m")
    w.snapshot(0)
    sip = sa.service.cluster_ip
    std_noise(w, ag, sc, job=(90, C, {"ns": "search", "cron": "synonyms-refresh"}),
              flap=(130, "CPUThrottlingHigh", "shop", {"pod": pod_on(fe, A).name, "container": "frontend"}, 120),
              stats=(30, 1020, [(A, sip, 8080, 320), (B, sip, 8080, 300), (C, sip, 8080, 310)], 90))
    T = 240
    msg = ("0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
           "3 No preemption victims found for incoming pod.")

    def story():
        news = yield from hpa_scale(w, T, sa, 6, None)
        for i, p in enumerate(news):
            w.spawn(unschedulable(w, T + 1 + i, p, msg, 1020, every=30,
                                  scale_up=("NotTriggerScaleUp",
                                            "pod didn't trigger scale-up: 1 max node group size reached") if i == 0 else None))

    w.spawn(story())
    Alert(sc, "KubeHpaMaxedOut", "warning", {"namespace": "search", "horizontalpodautoscaler": "search-api"},
          {"summary": "HPA is running at max replicas."}).fire(T + 60)
    Alert(sc, "HighLatency", "critical", {"namespace": "search", "service": "search-api"},
          {"summary": "search-api p99 latency above 5 s", "p99_latency_seconds": "6.4"}).fire(T + 150)
    w.run()
    sc.expect("P2", "P2: slow response times (p99 6.4 s > 5 s) — half the desired replicas cannot "
              "be scheduled, the running ones are saturated",
              "unschedulable", ent("Deployment", "search", "search-api"),
              [ent("Service", "search", "search-api")])


@scenario("13-gamefabric-untolerated-taint",
          "GameFabric 2026-05: platform maintenance adds a new taint to the game-server node pool; "
          "the node start-up DaemonSet does not tolerate it, so new nodes never lose their "
          "'not ready' start-up taint; every new game-server pod stays Pending (untolerated taint) "
          "while running sessions drain; allocations fail 35 %",
          "failure-stories.md #10 (GameFabric, 2026-05)")
def s13(sc):
    nodes = ("gs-eu-west-1", "gs-eu-west-2", "gs-eu-west-3", "gs-eu-west-4")
    startup = {"key": "gamefabric.io/node-not-ready", "value": "true", "effect": "NoSchedule"}
    maint = {"key": "platform.gamefabric.io/maintenance", "value": "2026-05", "effect": "NoSchedule"}
    w, ag = base(sc, nodes=nodes, cpu=16, mem_gi=64, instance_type="c6i.4xlarge",
                 labels={"gamefabric.io/pool": "gs-eu"})
    w.daemonset("kube-system", "node-init", list(nodes), img("platform/node-init", "2.3.1"),
                "node-init", tolerations=[{"key": "gamefabric.io/node-not-ready",
                                           "operator": "Exists", "effect": "NoSchedule"}])
    gs = w.deploy("gameservers", "game-server", 8, list(nodes), img("games/arena-server", "5.12.0"),
                  "arena-server", port=7777, req_cpu="7", req_mem="8Gi", lim_mem="10Gi", svc=False,
                  max_surge="25%", max_unavailable="0")
    alloc = w.deploy("gameservers", "allocator", 2, [nodes[0], nodes[1]],
                     img("games/allocator", "1.8.4"), "allocator", req_cpu="500m")
    w.snapshot(0)
    std_noise(w, ag, sc, flap=(90, "CPUThrottlingHigh", "gameservers",
                               {"pod": pod_on(alloc, nodes[0]).name, "container": "allocator"}, 120),
              stats=(30, 1080, [(nodes[0], alloc.service.cluster_ip, 8080, 90)], 150))
    change(sc, 60, "change.node.maintenance", {"cluster": CLUSTER},
           {"pool": "gs-eu", "action": "add_node_taint",
            "taint": "platform.gamefabric.io/maintenance=2026-05:NoSchedule"},
           agent="platform-ops", node=nodes[0])
    new_nodes = ["gs-eu-west-5", "gs-eu-west-6"]

    def msg(t):
        if t < 330:
            return ("0/4 nodes are available: 4 Insufficient cpu. preemption: 0/4 nodes are "
                    "available: 4 No preemption victims found for incoming pod.")
        return ("0/6 nodes are available: 2 node(s) had untolerated taint "
                "{gamefabric.io/node-not-ready: true}, 4 Insufficient cpu. preemption: 0/6 nodes "
                "are available: 2 Preemption is not helpful for scheduling, 4 No preemption "
                "victims found for incoming pod.")

    def story():
        news = yield from hpa_scale(w, 150, gs, 12, None,
                                    reason="fleet autoscaler: ready buffer below 4")
        for i, p in enumerate(news):
            w.spawn(unschedulable(w, 152 + i, p, msg, 1080, every=40,
                                  scale_up=("TriggeredScaleUp",
                                            "pod triggered scale-up: [{gs-eu 4->6 (max: 30)}]") if i == 0 else None))
        for k, nn in enumerate(new_nodes):
            yield 260 + k * 12
            n = Node(w, nn, f"10.0.{k + 1}.{140 + k}", ZONES[k], f"10.1.{4 + k}.0/24", cpu=16,
                     mem_gi=64, instance_type="c6i.4xlarge", created=260 + k * 12,
                     labels={"gamefabric.io/pool": "gs-eu"},
                     taints=[dict(startup), dict(maint)])
            n.set_cond(260 + k * 12, "Ready", "False", "KubeletNotReady",
                       "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady")
            n.heartbeat = 260 + k * 12
            w.add(260 + k * 12, n)
            w.ip_next[nn] = 10
        for k, nn in enumerate(new_nodes):
            yield 300 + k * 12
            n = w.get("Node", None, nn)
            n.set_cond(300 + k * 12, "Ready", "True", "KubeletReady", "kubelet is posting ready status")
            w.event(300 + k * 12, ("Node", None, nn, n.uid), "NodeReady",
                    f"Node {nn} status is now: NodeReady", host=nn)
            w.sync(300 + k * 12)
        # sessions end; their pods are replaced by pods that cannot be scheduled either
        for t, node in ((520, nodes[1]), (700, nodes[3]), (880, nodes[0])):
            yield t
            old = pod_on(gs, node)
            w.event(t, ("Pod", old.ns, old.name, old.uid), "Killing",
                    "Stopping container game-server", host=node,
                    field_path="spec.containers{game-server}")
            old.deletion = t + 30
            new = replace_pod(w, t, old, None)
            w.sync(t)
            w.spawn(w.terminate(t + 1, old, grace=4, event=False))
            w.spawn(unschedulable(w, t + 1, new, msg, 1080, every=60))

    w.spawn(story())
    Alert(sc, "GameServerAllocationFailures", "critical", {"namespace": "gameservers",
                                                          "service": "allocator"},
          {"summary": "More than 5 % of game-server allocations fail.", "error_ratio": "0.35"}).fire(420)
    w.run()
    sc.expect("P2", "P2: partial functionality unavailable and error rate 35 % > 5 % — no new "
              "game sessions can be allocated; running sessions continue",
              "unschedulable", ent("Deployment", "gameservers", "game-server"),
              ["Node/gs-eu-west-5", "Node/gs-eu-west-6", ent("DaemonSet", "kube-system", "node-init"),
               ent("Deployment", "gameservers", "allocator")])


@scenario("14-config-change-crashloop",
          "pricing-config (rules.yaml) is edited with an unknown currency; a minute later the "
          "kubelet syncs the volume, pricing hot-reloads, panics, and then crash-loops on start; "
          "no ready endpoints, checkout fails 88 %; reverted after 12 minutes",
          "synthetic")
def s14(sc):
    w, ag = base(sc)
    rules = ("rules:\n  - name: black-friday-eu\n    currency: EUR\n    discount: 0.2\n"
             "  - name: default\n    currency: EUR\n    discount: 0\n")
    cm = w.configmap("shop", "pricing-config", {"rules.yaml": rules, "refresh": "30s"})
    pr = shop(w, "pricing", 3, [A, B, C], volume_cm="pricing-config")
    co = shop(w, "checkout", 2, [A, C])
    fe = shop(w, "frontend", 2, [B, C])
    cat = shop(w, "catalog", 2, [A, B])
    w.snapshot(0)
    pip = pr.service.cluster_ip
    std_noise(w, ag, sc, resched=(70, cat, C), job=(1000, B),
              flap=(120, "HighLatencyP99", "shop", {"service": "frontend"}, 110),
              stats=(30, 1140, [(B, cat.service.cluster_ip, 8000, 210)], 180))
    T, REV = 180, 900
    msg = ('panic: pricing rules: unknown currency "EURO" in rule "black-friday-eu"\n\n'
           'goroutine 1 [running]:\nmain.mustLoadRules({0xc00012e000, 0x13})\n\t/src/cmd/pricing/main.go:88 +0x2a5')

    def story():
        yield T
        cm.data["rules.yaml"] = rules.replace("currency: EUR\n    discount: 0.2", "currency: EURO\n    discount: 0.25")
        w.sync(T)
        for i, p in enumerate(pods_of(pr)):
            w.spawn(crash_loop(w, p, T + 58 + i * 7, REV, run=3, exit_code=2, message=msg,
                               agent=ag[p.node], event_every=2, recover=True))
        yield REV
        cm.data["rules.yaml"] = rules
        w.sync(REV)

    w.spawn(story())
    for t in every(T + 80, REV + 200, 90):
        for p in pods_of(co):
            ag[p.node].refused(t + sc.rng.randint(0, 12), p, pip, 8080, sc.rng.randint(10, 45))
    stats_series(ag, 60, 1140, [(A, pip, 8080, 140), (C, pip, 8080, 130)],
                 lambda t, i: (0.92 if T + 75 <= t <= REV + 180 else 0.0, 0, 1.0), step=90)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "checkout"},
          {"summary": "checkout 5xx ratio above 5 %", "error_ratio": "0.88"}).fire(T + 140).resolve(REV + 240)
    Alert(sc, "KubeDeploymentReplicasMismatch", "warning", {"namespace": "shop", "deployment": "pricing"},
          {"summary": "Deployment has not matched the expected number of replicas."}).fire(T + 960)
    w.run()
    sc.expect("P1", "P1: complete service unavailability — pricing has 0 available replicas and no "
              "ready endpoints; checkout fails 88 %",
              "config_change", ent("ConfigMap", "shop", "pricing-config"),
              [ent("Deployment", "shop", "pricing"), ent("Service", "shop", "pricing"),
               ent("Deployment", "shop", "checkout")])


@scenario("15-dfds-pm2020-008-admission-webhook-timeout",
          "DFDS PM2020-008: a validating webhook registered during a workshop answers too slowly; "
          "from then on every pod create times out (FailedCreate 'context deadline exceeded') — "
          "a scale-down eviction is not replaced, a CronJob cannot start, an HPA scale-up and a "
          "CI deploy fail; detected after 88 minutes, when the webhook is removed",
          "failure-stories.md #6 (DFDS PM2020-008)")
def s15(sc):
    N1, N2, N3 = ("ip-10-0-1-45.eu-west-1.compute.internal",
                  "ip-10-0-2-71.eu-west-1.compute.internal",
                  "ip-10-0-3-33.eu-west-1.compute.internal")
    w, ag = base(sc, nodes=(N1, N2, N3), cpu=4, mem_gi=16, instance_type="m5.xlarge")
    ss = w.deploy("selfservice", "selfservice-api", 3, [N1, N2, N3],
                  img("selfservice/selfservice-api", "2024.3.1", "579478677147.dkr.ecr.eu-west-1.amazonaws.com"),
                  "dotnet", port=8080)
    cap = w.deploy("capability", "capability-service", 2, [N1, N2],
                   img("capability/capability-service", "1.33.0", "579478677147.dkr.ecr.eu-west-1.amazonaws.com"),
                   "dotnet", port=8080)
    wv = w.deploy("workshop", "workshop-validator", 1, [N1], img("workshop/validator", "0.1.0"),
                  "python3", port=8443)
    w.snapshot(0)
    wh = 'validate.workshop.dfds.cloud'
    err = (f'Internal error occurred: failed calling webhook "{wh}": failed to call webhook: Post '
           f'"https://workshop-validator.workshop.svc:443/validate?timeout=10s": context deadline exceeded')
    std_noise(w, ag, sc, flap=(600, "CPUThrottlingHigh", "capability",
                               {"pod": pod_on(cap, N1).name, "container": "capability-service"}, 140),
              stats=(60, 5700, [(N1, ss.service.cluster_ip, 8080, 120)], 600))
    T = 300
    change(sc, T, "change.config.updated", {"cluster": CLUSTER},
           {"kind": "ValidatingWebhookConfiguration", "name": "workshop-validator",
            "operation": "create", "user": "workshop-admin", "webhook": wh,
            "failure_policy": "Fail", "timeout_seconds": 10}, agent="k8s-audit", node=N1)
    FIX = T + 88 * 60

    def failed_create(t, rs_ref, count_new=False):
        w.event(t, rs_ref, "FailedCreate", f"Error creating: {err}", typ="Warning",
                component="replicaset-controller")

    def story():
        # cluster-autoscaler scales down N3: its selfservice-api pod is evicted, not replaced
        yield 900
        n3 = w.get("Node", None, N3)
        n3.add_taint(900, "ToBeDeletedByClusterAutoscaler", "NoSchedule", value="1764237900")
        w.event(900, ("Node", None, N3, n3.uid), "ScaleDown",
                "marked the node as toBeDeleted/unschedulable", component="cluster-autoscaler")
        w.sync(900)
        victim = pod_on(ss, N3)
        rs = ss.current
        w.spawn(w.terminate(905, victim, grace=20))
        yield 906
        failed_create(906, ("ReplicaSet", rs.ns, rs.name, rs.uid))
        rs.failure = ("FailedCreate", err, 906)
        w.sync(906)
        yield 960
        w.delete(960, n3)
        w.event(960, ("Node", None, N3, n3.uid), "RemovingNode",
                f"Node {N3} event: Removing Node {N3} from Controller", component="node-controller")
        # the ReplicaSet controller keeps retrying with back-off
        for t in (1000, 1200, 1700, 2600, 3500, 4400, 5300):
            yield t
            failed_create(t, ("ReplicaSet", rs.ns, rs.name, rs.uid))
        yield FIX + 40
        rs.failure = None
        replace_pod(w, FIX + 40, victim, N1)

    def cron():
        yield 1500
        job = Job(w, "capability", f"capability-sync-{int((BASE.timestamp() + 1500) // 60)}",
                  "capability-sync", 1500,
                  [Container("capability-sync", img("capability/sync", "1.2.0"), "dotnet",
                             port=None)])
        w.add(1500, job)
        w.event(1500, ("CronJob", "capability", "capability-sync", job.cron_uid), "SuccessfulCreate",
                f"Created job {job.name}", component="cronjob-controller")
        for t in (1511, 1530, 1570, 1650, 1810):
            yield t
            w.event(t, ("Job", job.ns, job.name, job.uid), "FailedCreate", f"Error creating: {err}",
                    typ="Warning", component="job-controller")

    def hpa():
        yield 2400
        w.event(2400, ("HorizontalPodAutoscaler", "capability", "capability-service", None),
                "SuccessfulRescale",
                "New size: 4; reason: cpu resource utilization (percentage of request) above target",
                component="horizontal-pod-autoscaler")
        cap.replicas = 4
        cap.generation += 1
        cap.current.replicas = 4
        w.sync(2400)
        w.event(2400, ("Deployment", "capability", "capability-service", cap.uid), "ScalingReplicaSet",
                f"Scaled up replica set {cap.current.name} from 2 to 4", component="deployment-controller")
        rs = cap.current
        for t in (2401, 2412, 2440, 2520, 2900, 3800, 4700):
            yield t
            failed_create(t, ("ReplicaSet", rs.ns, rs.name, rs.uid))
            if t == 2401:
                rs.failure = ("FailedCreate", err, 2401)
                w.sync(t)
        yield FIX + 45
        rs.failure = None
        for i in range(2):
            replace_pod(w, FIX + 45 + i, pods_of(cap)[0], [N1, N2][i])

    w.spawn(story())
    w.spawn(cron())
    w.spawn(hpa())
    change(sc, 2700, "change.deployment.rollout", wl("selfservice", "Deployment", "selfservice-api"),
           {"image": img("selfservice/selfservice-api", "2024.3.2", "579478677147.dkr.ecr.eu-west-1.amazonaws.com"),
            "outcome": "failed", "pipeline": "azure-devops",
            "error": f"Internal error occurred: failed calling webhook \"{wh}\": context deadline exceeded"},
           agent="ci-azure-devops", node=N1)
    Alert(sc, "KubeDeploymentReplicasMismatch", "warning",
          {"namespace": "selfservice", "deployment": "selfservice-api"},
          {"summary": "Deployment has not matched the expected number of replicas."}).fire(1806).resolve(FIX + 120)
    Alert(sc, "KubeHpaReplicasMismatch", "warning",
          {"namespace": "capability", "horizontalpodautoscaler": "capability-service"},
          {"summary": "HPA has not matched desired number of replicas."}).fire(3300).resolve(FIX + 130)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "capability", "service": "capability-service"},
          {"summary": "capability-service 5xx ratio above 5 %", "error_ratio": "0.06"}).fire(3000).resolve(FIX + 200)
    change(sc, FIX, "change.config.updated", {"cluster": CLUSTER},
           {"kind": "ValidatingWebhookConfiguration", "name": "workshop-validator",
            "operation": "delete", "user": "oncall", "webhook": wh}, agent="k8s-audit", node=N1)
    w.run()
    sc.expect("P2", "P2: partial functionality unavailable — every create in the cluster fails: "
              "evicted replicas are not replaced, scale-ups, CronJobs and deploys fail; "
              "capability-service error rate 6 % > 5 %",
              "admission_webhook_failure", ent("Deployment", "selfservice", "selfservice-api"),
              [ent("Deployment", "capability", "capability-service"),
               ent("Deployment", "workshop", "workshop-validator"),
               ent("Service", "workshop", "workshop-validator")])


@scenario("16-certificate-expired-ledger",
          "the TLS certificate in Secret payments/ledger-tls expires (cert-manager could not "
          "renew: ACME rate limit); ledger's gRPC readiness probe fails with 'x509: certificate "
          "has expired', all pods go unready, payments-api gets refused connects and fails 96 %; "
          "a renewed certificate arrives 13 minutes later",
          "synthetic")
def s16(sc):
    w, ag = base(sc)
    w.secret("payments", "ledger-tls", "kubernetes.io/tls",
             {"tls.crt": "-----BEGIN CERTIFICATE-----\n(synthetic, notAfter 2026-11-27T10:05:00Z)\n-----END CERTIFICATE-----\n",
              "tls.key": "(redacted)", "ca.crt": "(synthetic CA)"},
             annotations={"cert-manager.io/certificate-name": "ledger-tls",
                          "cert-manager.io/issuer-name": "letsencrypt-prod",
                          "cert-manager.io/issuer-kind": "ClusterIssuer"})
    probe = {"exec": {"command": ["/bin/grpc_health_probe", "-addr=:8443", "-tls",
                                  "-tls-ca-cert=/etc/tls/ca.crt"]},
             "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3, "successThreshold": 1}
    led = w.deploy("payments", "ledger", 3, [A, B, C], img("payments/ledger", "4.2.0"), "ledger",
                   port=8443, port_name="grpc", secret_volume="ledger-tls", readiness=probe,
                   liveness={"tcpSocket": {"port": 8443}, "periodSeconds": 20})
    api = w.deploy("payments", "payments-api", 2, [A, B], img("payments/payments-api", "8.1.5"),
                   "payments-api", port=8080)
    fe = shop(w, "frontend", 2, [B, C])
    cat = shop(w, "catalog", 2, [A, C])
    w.snapshot(0)
    lip = led.service.cluster_ip
    std_noise(w, ag, sc, resched=(150, cat, B, True), job=(700, C),
              stats=(30, 1260, [(C, cat.service.cluster_ip, 8000, 200)], 180))
    w.event(40, ("Certificate", "payments", "ledger-tls", None), "Failed",
            'The certificate request has failed to complete and will be retried: Failed to wait for '
            'order resource "ledger-tls-8fkq2-1572360883" to become ready: order is in "errored" '
            'state: Failed to create Order: 429 urn:ietf:params:acme:error:rateLimited: too many '
            'certificates (5) already issued for this exact set of domains in the last 168h0m0s',
            typ="Warning", component="cert-manager-certificates-issuing")
    EXP, FIX = 300, 1080

    def story():
        msgs = {}
        for i, p in enumerate(pods_of(led)):
            yield EXP + 3 + i * 3
            now = at(EXP + 3 + i * 3).replace("Z", "Z")
            msgs[p.name] = (f'Readiness probe failed: error: failed to connect service at ":8443": '
                            f'x509: certificate has expired or is not yet valid: current time {now} '
                            f'is after 2026-11-27T10:05:00Z')
            w.event(EXP + 3 + i * 3, ("Pod", p.ns, p.name, p.uid), "Unhealthy", msgs[p.name],
                    typ="Warning", host=p.node, field_path="spec.containers{ledger}")
        for i, p in enumerate(pods_of(led)):
            yield EXP + 23 + i * 3
            w.set_ready(EXP + 23 + i * 3, p, False)
        for t in every(EXP + 90, FIX + 40, 150):
            for p in pods_of(led):
                yield t
                w.event(t, ("Pod", p.ns, p.name, p.uid), "Unhealthy", msgs[p.name],
                        typ="Warning", host=p.node, field_path="spec.containers{ledger}")
        yield FIX
        sec = w.get("Secret", "payments", "ledger-tls")
        sec.data["tls.crt"] = "-----BEGIN CERTIFICATE-----\n(synthetic, notAfter 2027-02-25T10:18:00Z)\n-----END CERTIFICATE-----\n"
        w.sync(FIX)
        w.event(FIX, ("Certificate", "payments", "ledger-tls", None), "Issuing",
                "The certificate has been successfully issued", component="cert-manager-certificates-issuing")
        for i, p in enumerate(pods_of(led)):
            yield FIX + 70 + i * 4
            w.set_ready(FIX + 70 + i * 4, p, True)

    w.spawn(story())
    for t in every(EXP + 30, FIX + 70, 90):
        for p in pods_of(api):
            ag[p.node].refused(t + sc.rng.randint(0, 12), p, lip, 8443, sc.rng.randint(10, 50),
                               comm="payments-api")
    stats_series(ag, 60, 1260, [(A, lip, 8443, 160), (B, lip, 8443, 150)],
                 lambda t, i: (1.0 if EXP + 25 <= t <= FIX + 75 else 0.0, 0, 1.0), step=90)
    Alert(sc, "X509CertificateExpired", "critical",
          {"namespace": "payments", "secret_namespace": "payments", "secret_name": "ledger-tls",
           "subject_cn": "ledger.payments.svc"},
          {"summary": "Certificate payments/ledger-tls has expired."}).fire(EXP + 60).resolve(FIX + 60)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "payments", "service": "payments-api"},
          {"summary": "payments-api 5xx ratio above 5 %", "error_ratio": "0.96"}).fire(EXP + 75).resolve(FIX + 150)
    w.run()
    sc.expect("P1", "P1: complete service unavailability — ledger has no ready endpoints, "
              "payments-api fails 96 %",
              "certificate_expired", ent("Deployment", "payments", "ledger"),
              [ent("Secret", "payments", "ledger-tls"), ent("Service", "payments", "ledger"),
               ent("Deployment", "payments", "payments-api")])


@scenario("17-cpu-pressure-node-a",
          "a batch of uploads makes video-transcoder (no CPU limit) saturate node-a: sustained "
          "CPU PSI ~90 %, readiness probes of frontend and catalog on node-a time out now and "
          "then, p99 latency 3.2 s and 2.4 % errors; clears when the batch ends",
          "synthetic")
def s17(sc):
    w, ag = base(sc)
    vt = w.deploy("media", "video-transcoder", 2, [A, A], img("media/video-transcoder", "3.0.1"),
                  "ffmpeg", port=None, svc=False, req_cpu="500m", req_mem="1Gi", lim_mem="4Gi")
    fe = shop(w, "frontend", 3, [A, B, C])
    cat = shop(w, "catalog", 2, [A, B])
    rev = shop(w, "reviews", 2, [B, C])
    w.snapshot(0)
    std_noise(w, ag, sc, resched=(60, rev, A), job=(980, C),
              stats=(30, 1100, [(B, cat.service.cluster_ip, 8000, 200),
                                (C, rev.service.cluster_ip, 3000, 110)], 150))
    aa = ag[A]
    aa.pressure_episode(150, 930, "cpu", lambda t: 87.5 if t < 400 else 93.1 if t < 700 else 90.4,
                        lambda t: 14.2 if t < 400 else 21.7)
    fe_a, cat_a = pod_on(fe, A), pod_on(cat, A)

    def flap(p, t, port):
        yield t
        msg = (f'Readiness probe failed: Get "http://{p.ip}:{port}/ready": context deadline exceeded '
               f'(Client.Timeout exceeded while awaiting headers)')
        w.event(t, ("Pod", p.ns, p.name, p.uid), "Unhealthy", msg, typ="Warning", host=A,
                field_path=f"spec.containers{{{p.containers[0].name}}}")
        yield t + 10
        w.event(t + 10, ("Pod", p.ns, p.name, p.uid), "Unhealthy", msg, typ="Warning", host=A,
                field_path=f"spec.containers{{{p.containers[0].name}}}")
        yield t + 15
        w.set_ready(t + 15, p, False)
        yield t + 40
        w.set_ready(t + 40, p, True)

    for t in (300, 610, 820):
        w.spawn(flap(fe_a, t, 3000))
    w.spawn(flap(cat_a, 450, 8000))
    stats_series(ag, 60, 1100, [(A, cat.service.cluster_ip, 8000, 220)],
                 lambda t, i: (0, 0.015 if 180 <= t <= 930 else 0.0, 1.0), step=90)
    Alert(sc, "HighLatencyP99", "warning", {"namespace": "shop", "service": "frontend"},
          {"summary": "frontend p99 latency above 1 s", "p99_latency_seconds": "3.2"}).fire(330).resolve(990)
    Alert(sc, "HighErrorRate", "warning", {"namespace": "shop", "service": "frontend"},
          {"summary": "frontend 5xx ratio above 1 %", "error_ratio": "0.024"}).fire(360).resolve(980)
    w.run()
    sc.expect("P3", "P3: moderate error rate (2.4 %, 1–5 %) and resource usage warning — CPU "
              "saturation on one node, p99 3.2 s stays under 5 s",
              "cpu_pressure", "Node/node-a",
              [ent("Deployment", "media", "video-transcoder"), ent("Deployment", "shop", "frontend"),
               ent("Deployment", "shop", "catalog")])


@scenario("18-io-pressure-node-c",
          "a reindex job on node-c saturates its disk: sustained I/O PSI (full > threshold), "
          "slow block I/O but no I/O errors; the postgres primary on the same node slows down "
          "and orders-api p99 latency reaches 7.2 s until the job ends",
          "synthetic")
def s18(sc):
    w, ag = base(sc)
    db = w.statefulset("shop", "orders-db", 2, [C, A], "docker.io/library/postgres:16.4",
                       "postgres", 5432, req_mem="2Gi", lim_mem="4Gi")
    api = shop(w, "orders-api", 2, [A, B])
    fe = shop(w, "frontend", 2, [A, B])
    cat = shop(w, "catalog", 2, [B, C])
    w.snapshot(0)
    dbip = db.svc.cluster_ip
    std_noise(w, ag, sc, resched=(40, cat, A),
              flap=(1010, "CPUThrottlingHigh", "shop", {"pod": pod_on(api, A).name, "container": "orders-api"}),
              stats=(30, 1140, [(A, dbip, 5432, 90), (B, dbip, 5432, 85)], 120))
    ac = ag[C]
    db0 = [p for p in pods_of(db) if p.name == "orders-db-0"][0]

    def reindex():
        yield 100
        sched_min = int((BASE.timestamp() + 100) // 60)
        job = Job(w, "search", f"reindex-{sched_min}", "reindex", 100,
                  [Container("reindex", img("search/reindex", "1.44.0"), "java", port=None)])
        w.add(100, job)
        w.event(100, ("CronJob", "search", "reindex", job.cron_uid), "SuccessfulCreate",
                f"Created job {job.name}", component="cronjob-controller")
        labels = {"batch.kubernetes.io/controller-uid": job.uid,
                  "batch.kubernetes.io/job-name": job.name, "controller-uid": job.uid,
                  "job-name": job.name}
        p = Pod(w, "search", f"{job.name}-{sc.k8s_suffix(5)}", labels,
                ("batch/v1", "Job", job.name, job.uid),
                [Container("reindex", img("search/reindex", "1.44.0"), "java", port=None,
                           req_cpu="1", req_mem="2Gi", lim_mem="4Gi")], created=100,
                restart_policy="Never")
        w.create_pod(100, p)
        w.event(100, ("Job", "search", job.name, job.uid), "SuccessfulCreate",
                f"Created pod: {p.name}", component="job-controller")
        yield from w.schedule(101, p, C, pull=True, ready_after=None)
        for c in p.containers:
            c.ready = True
        w.sync(w.sim.now)
        for t, ms, who in ((190, 480.0, db0), (260, 955.5, p), (420, 1310.0, db0),
                           (600, 870.2, db0), (780, 1120.9, p)):
            yield t
            ac.latency_spike(t, "nvme0n1", ms, count=sc.rng.randint(4, 19), pod=who,
                             op="write" if who is p else "read")
        yield 905
        for c in p.containers:
            c.ready = False
            c.state = ("terminated", "Completed", 0, c.state[1], 905, None, c.cid)
        p.phase = "Succeeded"
        job.complete_at = 906
        w.sync(905)
        w.event(906, ("Job", "search", job.name, job.uid), "Completed", "Job completed",
                component="job-controller")
        sc.reindex_job = job.name

    w.spawn(reindex())
    ac.pressure_episode(130, 900, "io", lambda t: 62.3 if t < 500 else 68.8,
                        lambda t: 45.1 if t < 500 else 51.6)
    Alert(sc, "HighLatency", "warning", {"namespace": "shop", "service": "orders-api"},
          {"summary": "orders-api p99 latency above 5 s", "p99_latency_seconds": "7.2"}).fire(300).resolve(960)
    Alert(sc, "PostgresSlowQueries", "warning", {"namespace": "shop", "statefulset": "orders-db",
                                                 "pod": "orders-db-0"},
          {"summary": "Postgres queries slower than 2 s."}).fire(280).resolve(950)
    w.run()
    sc.expect("P2", "P2: slow response times — orders-api p99 7.2 s > 5 s while the node's disk is "
              "saturated",
              "io_pressure", "Node/node-c",
              [ent("StatefulSet", "shop", "orders-db"), ent("Deployment", "shop", "orders-api"),
               ent("Job", "search", sc.reindex_job)])


@scenario("19-dependency-failure-payments",
          "deep cascade: payments' pods all go unready (no change, no infra symptom) so the "
          "payments Service has no ready endpoints; checkout — itself healthy — gets refused "
          "connects and fails 94 %, and frontend's checkout page fails 18 %",
          "synthetic")
def s19(sc):
    w, ag = base(sc)
    pay = shop(w, "payments", 2, [B, C])
    co = shop(w, "checkout", 2, [A, B])
    fe = shop(w, "frontend", 2, [A, C])
    cat = shop(w, "catalog", 2, [B, C])
    w.snapshot(0)
    pip = pay.service.cluster_ip
    std_noise(w, ag, sc, resched=(60, cat, A), job=(820, B),
              flap=(130, "HighLatencyP99", "shop", {"service": "catalog"}, 100),
              stats=(30, 1140, [(A, co.service.cluster_ip, 8080, 160),
                                (C, co.service.cluster_ip, 8080, 150)], 120))
    T, R = 240, 1020

    def story():
        for i, p in enumerate(pods_of(pay)):
            yield T + i * 4
            w.event(T + i * 4, ("Pod", p.ns, p.name, p.uid), "Unhealthy",
                    "Readiness probe failed: HTTP probe failed with statuscode: 503",
                    typ="Warning", host=p.node, field_path="spec.containers{payments}")
        for i, p in enumerate(pods_of(pay)):
            yield T + 10 + i * 4
            w.set_ready(T + 10 + i * 4, p, False)
        for t in every(T + 120, R - 60, 180):
            for p in pods_of(pay):
                yield t
                w.event(t, ("Pod", p.ns, p.name, p.uid), "Unhealthy",
                        "Readiness probe failed: HTTP probe failed with statuscode: 503",
                        typ="Warning", host=p.node, field_path="spec.containers{payments}")
        for i, p in enumerate(pods_of(pay)):
            yield R + i * 5
            w.set_ready(R + i * 5, p, True)

    w.spawn(story())
    for t in every(T + 20, R, 90):
        for p in pods_of(co):
            ag[p.node].refused(t + sc.rng.randint(0, 15), p, pip, 8080, sc.rng.randint(9, 40))
    stats_series(ag, 60, 1140, [(A, pip, 8080, 120), (B, pip, 8080, 115)],
                 lambda t, i: (1.0 if T + 15 <= t <= R + 10 else 0.0, 0, 1.0), step=90)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "checkout"},
          {"summary": "checkout 5xx ratio above 5 %", "error_ratio": "0.94"}).fire(T + 45).resolve(R + 60)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "frontend"},
          {"summary": "frontend 5xx ratio above 5 %", "error_ratio": "0.18"}).fire(T + 60).resolve(R + 70)
    w.run()
    sc.expect("P1", "P1: complete service unavailability — payments has no ready endpoints and "
              "every checkout fails (94 %)",
              "dependency_failure", ent("Service", "shop", "payments"),
              [ent("Deployment", "shop", "payments"), ent("Deployment", "shop", "checkout"),
               ent("Service", "shop", "checkout"), ent("Deployment", "shop", "frontend")])


@scenario("20-moonlight-cpu-packing-node-crash",
          "Moonlight 2019: the scheduler packed three of four CPU-heavy api pods onto one node "
          "(no anti-affinity); under the afternoon traffic peak that node runs at 100 % CPU, "
          "hangs and panics; its pods and redis become unreachable — first read as a network "
          "problem — and are rescheduled together onto another node, which saturates and dies "
          "the same way: total outage",
          "failure-stories.md #2 (Moonlight, 2019)")
def s20(sc):
    nodes = ("gke-moonlight-default-pool-3f2a9c1e-7k2x", "gke-moonlight-default-pool-3f2a9c1e-b9qd",
             "gke-moonlight-default-pool-3f2a9c1e-m4fz", "gke-moonlight-default-pool-3f2a9c1e-x1rt")
    N1, N2, N3, N4 = nodes
    w, ag = base(sc, nodes=nodes, cpu=4, mem_gi=15, zones=["us-central1-a", "us-central1-b",
                                                            "us-central1-c"],
                 instance_type="n1-standard-4", provider="gce", coredns_nodes=[N1, N4])
    api = w.deploy("moonlight", "api", 4, [N2, N2, N2, N3],
                   img("moonlight/api", "2019.02.11", "gcr.io/moonlight-prod"), "node", port=8080,
                   req_cpu="500m", req_mem="512Mi", lim_mem="2Gi", started=-86400 * 2)
    redis = w.statefulset("moonlight", "redis", 1, [N2], "docker.io/library/redis:5.0.3",
                          "redis-server", 6379, req_cpu="250m", req_mem="1Gi", lim_mem="2Gi")
    wk = w.deploy("moonlight", "worker", 2, [N1, N4], img("moonlight/worker", "2019.02.11", "gcr.io/moonlight-prod"),
                  "node", port=None, svc=False)
    web = w.deploy("moonlight", "web", 2, [N1, N4], img("moonlight/web", "2019.02.08", "gcr.io/moonlight-prod"),
                   "nginx", port=80)
    w.snapshot(0)
    rip = redis.svc.cluster_ip
    aip = api.service.cluster_ip
    std_noise(w, ag, sc, job=(40, N4, {"ns": "moonlight", "cron": "digest-mailer", "comm": "node"}),
              stats=(30, 400, [(N1, aip, 8080, 300), (N4, aip, 8080, 280)], 90))
    healthy_stats(ag, 30, 400, [(N3, rip, 6379, 240)], 90)
    a2, a3 = ag[N2], ag[N3]
    a2.pressure_episode(130, 400, "cpu", lambda t: 96.4 if t < 300 else 99.1, lambda t: 71.3)
    a2.hung_task(390, "containerd", 122)
    a2.hung_task(395, "kubelet", 121)
    PANIC2 = 420

    def story():
        yield 250
        for p in [p for p in pods_of(api) if p.node == N2]:
            w.event(250, ("Pod", p.ns, p.name, p.uid), "Unhealthy",
                    f'Readiness probe failed: Get "http://{p.ip}:8080/healthz": context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
                    typ="Warning", host=N2, field_path="spec.containers{api}")
        yield PANIC2 + 40
        node_unreachable(w, PANIC2 + 40, N2)
        yield PANIC2 + 340
        yield from taint_evict(w, PANIC2 + 340, N2, [N3])
        # N3 saturates with the moved pods and dies the same way
        yield 1000
        node_unreachable(w, 1000, N3)

    w.spawn(story())
    a3.pressure_episode(800, 960, "cpu", lambda t: 97.8, lambda t: 66.0)
    a3.hung_task(955, "kubelet", 120)
    # workers lose redis (on the dead node): connects time out — looks like a network outage
    for t in every(PANIC2 + 10, 1150, 60):
        for p in pods_of(wk):
            ag[p.node].timeout(t + sc.rng.randint(0, 9), p, rip, 6379, sc.rng.randint(2, 9),
                               waited_ms=5000)
    stats_series(ag, 420, 1150, [(N1, rip, 6379, 240)], lambda t, i: (0, 1.0, 0.4), step=90)
    stats_series(ag, 420, 1150, [(N1, aip, 8080, 300), (N4, aip, 8080, 280)],
                 lambda t, i: (0.0 if t < 1000 else 0.98, 0.06 if t < 1000 else 0.0, 1.0), step=90)
    Alert(sc, "RedisDown", "critical", {"namespace": "moonlight", "service": "redis"},
          {"summary": "Redis instance is down."}).fire(PANIC2 + 90)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "moonlight", "service": "api"},
          {"summary": "api 5xx ratio above 5 %", "error_ratio": "0.42"}).fire(PANIC2 + 70)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "moonlight", "service": "web"},
          {"summary": "web 5xx ratio above 5 %", "error_ratio": "1.0"}).fire(1030)
    w.run()
    sc.expect("P1", "P1: complete service unavailability — both nodes running the api died, api "
              "has 0 available replicas and no ready endpoints, every request fails",
              "cpu_pressure", f"Node/{N2}",
              [f"Node/{N3}", ent("Deployment", "moonlight", "api"),
               ent("StatefulSet", "moonlight", "redis"), ent("Deployment", "moonlight", "web")])


def cron_job(w, t, ns, cron, image, comm, node=None, req_cpu=None, req_mem=None, lim_mem=None,
             message=None, t_end=None):
    """A CronJob run: Job + pod; the pod is scheduled on `node` (or stays Pending when the
    scheduler cannot place it: message). Returns (job, pod) through StopIteration."""
    yield t
    job = Job(w, ns, f"{cron}-{int((BASE.timestamp() + t) // 60)}", cron, t,
              [Container(cron, image, comm, req_cpu=req_cpu, req_mem=req_mem, lim_mem=lim_mem,
                         port=None)])
    w.add(t, job)
    w.event(t, ("CronJob", ns, cron, job.cron_uid), "SuccessfulCreate", f"Created job {job.name}",
            component="cronjob-controller")
    labels = {"batch.kubernetes.io/controller-uid": job.uid,
              "batch.kubernetes.io/job-name": job.name, "controller-uid": job.uid,
              "job-name": job.name}
    qos = "BestEffort" if not (req_cpu or req_mem or lim_mem) else "Burstable"
    p = Pod(w, ns, f"{job.name}-{w.sc.k8s_suffix(5)}", labels, ("batch/v1", "Job", job.name, job.uid),
            [Container(cron, image, comm, req_cpu=req_cpu, req_mem=req_mem, lim_mem=lim_mem,
                       port=None)], created=t, restart_policy="Never", qos=qos)
    w.create_pod(t, p)
    w.event(t, ("Job", ns, job.name, job.uid), "SuccessfulCreate", f"Created pod: {p.name}",
            component="job-controller")
    if node:
        yield from w.schedule(t + 1, p, node, pull=False, ready_after=None)
        for c in p.containers:
            c.ready = True
        w.sync(w.sim.now)
    elif message:
        w.spawn(unschedulable(w, t + 1, p, message, t_end, every=30))
    return job, p


def finish_job(w, t, job, p, ok=True):
    for c in p.containers:
        c.ready = False
        c.state = ("terminated", "Completed" if ok else "Error", 0 if ok else 1, c.state[1], t,
                   None, c.cid)
    p.phase = "Succeeded" if ok else "Failed"
    if ok:
        job.complete_at = t + 1
    w.sync(t)
    if ok:
        w.event(t + 1, ("Job", job.ns, job.name, job.uid), "Completed", "Job completed",
                component="job-controller")


@scenario("21-nu-nl-elastalert-node-starvation",
          "NU.nl 2019: a misconfigured ElastAlert without a memory limit reads a whole "
          "Elasticsearch index; node 1 runs out of memory, Elasticsearch (no CPU limits) bursts on "
          "nodes 1 and 2 and starves the kubelets: both nodes go NotReady, ingress loses two of "
          "three backends, the site errors 38 % and monitoring is degraded until the kernel "
          "OOM-kills ElastAlert",
          "failure-stories.md #4 (NU.nl, 2019)")
def s21(sc):
    N1, N2, N3 = ("ip-10-1-1-10.eu-west-1.compute.internal", "ip-10-1-2-11.eu-west-1.compute.internal",
                  "ip-10-1-3-12.eu-west-1.compute.internal")
    w, ag = base(sc, nodes=(N1, N2, N3), cpu=4, mem_gi=16, instance_type="m5.xlarge", subnet=4,
                 coredns_nodes=[N1, N3])
    ea = w.deploy("monitoring", "elastalert", 1, [N1], img("monitoring/elastalert", "0.2.4", "docker.io/bitsensor"),
                  "python3", port=None, svc=False, req_mem="256Mi", lim_mem=None, req_cpu="100m")
    es = w.statefulset("monitoring", "elasticsearch", 3, [N1, N2, N3],
                       "docker.elastic.co/elasticsearch/elasticsearch:6.5.4", "java", 9200,
                       req_cpu="500m", req_mem="4Gi", lim_mem="6Gi")
    prom = w.statefulset("monitoring", "prometheus", 2, [N2, N3], "quay.io/prometheus/prometheus:v2.6.1",
                         "prometheus", 9090, req_mem="2Gi", lim_mem="4Gi")
    ing = w.deploy("ingress-nginx", "ingress-nginx-controller", 3, [N1, N2, N3],
                   "quay.io/kubernetes-ingress-controller/nginx-ingress-controller:0.21.0", "nginx",
                   port=80)
    web = w.deploy("nunl", "web", 3, [N1, N2, N3], img("nunl/web", "2019.01.28"), "node", port=3000)
    w.snapshot(0)
    std_noise(w, ag, sc, stats=(30, 170, [(N3, web.service.cluster_ip, 3000, 300)], 70))
    a1, a2 = ag[N1], ag[N2]
    a1.pressure_episode(120, 700, "cpu", lambda t: 88.2 if t < 400 else 95.7)
    a2.pressure_episode(150, 780, "cpu", lambda t: 86.9 if t < 400 else 97.3, lambda t: 40.1)
    a1.pressure_episode(180, 700, "memory", lambda t: 34.0 if t < 450 else 62.4,
                        lambda t: 12.5 if t < 450 else 41.0)
    a1.hung_task(330, "kubelet", 122)
    a2.hung_task(440, "kubelet", 120)
    eap = pods_of(ea)[0]

    def story():
        yield 340
        node_unreachable(w, 340, N1)
        yield 460
        node_unreachable(w, 460, N2)
        yield 700
        a1.oom(700, eap, anon_rss=gib(13) + mib(610), limit=None, memcg_usage=gib(13) + mib(700))
        a1.exit(700, eap, signal=9)
        yield 730
        node_ready_again(w, 730, N1)
        yield 731
        w.crash(731, eap, reason="OOMKilled", exit_code=137, waiting=None)
        yield 760
        ea.replicas = 0
        ea.generation += 1
        scale_rs(w, 760, ea.current, 0)
        yield from w.terminate(761, eap, grace=5)
        yield 800
        node_ready_again(w, 800, N2)

    w.spawn(story())
    ing3 = pod_on(ing, N3)
    for t in every(350, 790, 60):
        for p in pods_of(web):
            if p.node in (N1, N2) and (p.node == N1 or t >= 460):
                ag[N3].timeout(t + sc.rng.randint(0, 9), ing3, p.ip, 3000, sc.rng.randint(3, 14),
                               waited_ms=5000, comm="nginx")
    stats_series(ag, 200, 1000, [(N3, web.service.cluster_ip, 3000, 420)],
                 lambda t, i: (0, 0.0 if t < 340 else 0.35 if 340 <= t < 800 else 0.0, 1.0), step=60)
    Alert(sc, "NginxHighErrorRate", "critical", {"namespace": "ingress-nginx",
                                                 "service": "ingress-nginx-controller"},
          {"summary": "Ingress 5xx ratio above 5 %", "error_ratio": "0.38"}).fire(390).resolve(900)
    Alert(sc, "KubeNodeUnreachable", "warning", {"node": N1},
          {"summary": "Node is unreachable and some workloads may be rescheduled."}).fire(400).resolve(880)
    w.run()
    sc.expect("P2", "P2: high error rate (38 % > 5 %) and partial functionality — two of three "
              "nodes NotReady, the site degraded but not down; in-cluster monitoring degraded too "
              "(one of two Prometheus replicas unreachable)",
              "node_memory_pressure", f"Node/{N1}",
              [f"Node/{N2}", ent("Deployment", "monitoring", "elastalert"),
               ent("StatefulSet", "monitoring", "elasticsearch"),
               ent("Deployment", "ingress-nginx", "ingress-nginx-controller"),
               ent("Deployment", "nunl", "web"), ent("StatefulSet", "monitoring", "prometheus")])


@scenario("22-dfds-pm2024-001-hangfire-system-oom",
          "DFDS PM2024-001: a dev Hangfire worker OOM-crash-loops at its limit on a node already "
          "loaded by a memory-hungry grafana-agent; every restart reconnects to RDS (10x "
          "traffic); node memory pressure ends in a system OOM, the kubelet stalls and the node "
          "goes NotReady (noticed after 4 min); the replacement node fails the same way later",
          "failure-stories.md #5 (DFDS PM2024-001)")
def s22(sc):
    N1, N2, N3, N4 = ("ip-10-0-1-45.eu-central-1.compute.internal",
                      "ip-10-0-2-71.eu-central-1.compute.internal",
                      "ip-10-0-3-33.eu-central-1.compute.internal",
                      "ip-10-0-1-88.eu-central-1.compute.internal")
    zones = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]
    w, ag = base(sc, nodes=(N1, N2, N3), cpu=4, mem_gi=16, zones=zones, instance_type="m5.xlarge")
    ga = w.daemonset("monitoring", "grafana-agent", [N1, N2, N3], "docker.io/grafana/agent:v0.39.1",
                     "grafana-agent", port=12345, req_mem="512Mi", lim_mem=None,
                     priority_class="system-node-critical")
    hf = w.deploy("dev", "hangfire", 1, [N1], img("dev/hangfire-worker", "0.9.3", "579478677147.dkr.ecr.eu-central-1.amazonaws.com"),
                  "dotnet", port=None, svc=False, req_mem="512Mi", lim_mem="1Gi")
    bd = w.deploy("dev", "booking-dev", 2, [N1, N2], img("dev/booking", "5.3.0-rc1"), "dotnet")
    bk = w.deploy("booking", "booking-api", 2, [N2, N3], img("booking/booking-api", "5.2.7"), "dotnet")
    w.snapshot(0)
    RDS = "10.0.12.201"
    std_noise(w, ag, sc, stats=(30, 3600, [(N2, bk.service.cluster_ip, 8080, 150)], 600))
    a1 = ag[N1]
    lim = gib(1)
    hfp = pods_of(hf)[0]
    w.spawn(crash_loop(w, hfp, 120, 550, oom=(lim - mib(2), lim), agent=a1, ready_for=40))
    stats_series(ag, 60, 540, [(N1, RDS, 5432, 80)],
                 lambda t, i: (0, 0.0 if t < 150 else 0.01, 1.0 if t < 150 else 10.0), step=60)
    a1.pressure_episode(300, 540, "memory", lambda t: 28.4 if t < 450 else 55.9,
                        lambda t: 9.0 if t < 450 else 31.2)
    ga1 = pod_on(ga, N1)

    def first_node():
        yield 480
        a1.oom(480, ga1, anon_rss=gib(9) + mib(110), limit=None, memcg_usage=gib(9) + mib(200))
        a1.exit(480, ga1, signal=9)
        w.crash(480, ga1, reason="OOMKilled", exit_code=137, waiting=None)
        yield 500
        kubelet_not_ready(w, 500, N1, "PLEG is not healthy: pleg was last seen active 3m5.294s ago; threshold is 3m0s")
        yield 600
        node_unreachable(w, 600, N1)
        # ASG replaces the unhealthy instance
        yield 700
        n4 = Node(w, N4, "10.0.1.88", "eu-central-1a", "10.1.3.0/24", cpu=4, mem_gi=16,
                  instance_type="m5.xlarge", created=700)
        n4.set_cond(700, "Ready", "False", "KubeletNotReady",
                    "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized")
        w.add(700, n4)
        w.ip_next[N4] = 10
        ag4 = Agent(w, N4)
        w.agents[N4] = ag4
        ag[N4] = ag4
        yield 740
        n4.set_cond(740, "Ready", "True", "KubeletReady", "kubelet is posting ready status")
        w.event(740, ("Node", None, N4, n4.uid), "NodeReady", f"Node {N4} status is now: NodeReady",
                host=N4)
        ga.desired = 4
        w.sync(740)
        gp = w.new_ds_pod(ga, 741)
        w.create_pod(741, gp)
        w.spawn(w.schedule(742, gp, N4, pull=True, ready_after=5))
        yield 800
        yield from taint_evict(w, 800, N1, [N4])
        # the replacement hangfire on the new node goes the same way
        new_hf = [p for p in pods_of(hf)][0]
        w.spawn(crash_loop(w, new_hf, 880, 3350, oom=(lim - mib(1), lim), agent=ag4,
                           ready_for=40, event_every=3))
        yield 1100
        n1 = w.get("Node", None, N1)
        for p in [p for p in w.pods() if p.node == N1]:
            w.delete(1100, p)
        w.delete(1100, n1)
        ga.desired = 3
        w.sync(1100)

    def second_node():
        yield 3300
        gp = pod_on(ga, N4)
        ag[N4].oom(3300, gp, anon_rss=gib(9) + mib(40), limit=None, memcg_usage=gib(9) + mib(120))
        ag[N4].exit(3300, gp, signal=9)
        w.crash(3300, gp, reason="OOMKilled", exit_code=137, waiting=None)
        yield 3320
        kubelet_not_ready(w, 3320, N4, "PLEG is not healthy: pleg was last seen active 3m1.007s ago; threshold is 3m0s")
        yield 3420
        node_unreachable(w, 3420, N4)
        yield 3600
        hf.replicas = 0
        hf.generation += 1
        scale_rs(w, 3600, hf.current, 0)
        for p in pods_of(hf):
            p.deletion = 3630
        w.sync(3600)

    w.spawn(first_node())
    w.spawn(second_node())

    def later_facts():
        # facts of the second node exist only once its agent runs
        yield 900
        a4 = ag[N4]
        stats_series(ag, 900, 3360, [(N4, RDS, 5432, 80)], lambda t, i: (0, 0.01, 10.0), step=300)
        a4.pressure_episode(3000, 3370, "memory", lambda t: 30.2 if t < 3200 else 58.7,
                            lambda t: 11.0 if t < 3200 else 33.5)

    w.spawn(later_facts())
    Alert(sc, "KubeNodeNotReady", "critical", {"node": N1},
          {"summary": "Node is not ready."}).fire(740).resolve(1105)
    Alert(sc, "KubeNodeNotReady", "critical", {"node": N4},
          {"summary": "Node is not ready."}).fire(3560)
    w.run()
    sc.expect("P2", "P2: partial functionality unavailable — a node NotReady (twice), the dev "
              "workloads and monitoring on it down; production services keep ready endpoints",
              "node_memory_pressure", f"Node/{N1}",
              [f"Node/{N4}", ent("Deployment", "dev", "hangfire"),
               ent("DaemonSet", "monitoring", "grafana-agent")])


@scenario("23-dfds-pm2020-004-coredns-upgrade-crashloop",
          "DFDS PM2020-004: after the EKS 1.13 -> 1.14 upgrade the CoreDNS Deployment is moved to "
          "the new image without the vendor-specific Corefile change; the new pods come up and "
          "then exit (loop detected) and crash-loop, DNS fails cluster-wide, KIAM (credentials) "
          "and the pods depending on it crash-loop; fixed by the Corefile change 18 minutes later",
          "failure-stories.md #7 (DFDS PM2020-004)")
def s23(sc):
    N1, N2, N3 = ("ip-10-0-1-45.eu-west-1.compute.internal", "ip-10-0-2-71.eu-west-1.compute.internal",
                  "ip-10-0-3-33.eu-west-1.compute.internal")
    ecr = "602401143452.dkr.ecr.eu-west-1.amazonaws.com"
    w, ag = base(sc, nodes=(N1, N2, N3), cpu=4, mem_gi=16, instance_type="m5.xlarge",
                 coredns_image=f"{ecr}/eks/coredns:v1.2.6", dns_ip="10.100.0.10", kubelet="v1.14.9-eks-1f0ca9")
    dns = w.coredns
    ks = w.deploy("kube-system", "kiam-server", 2, [N1, N2], "quay.io/uswitch/kiam:v3.4", "kiam",
                  port=443, port_name="grpc", req_mem="64Mi", lim_mem="256Mi",
                  priority_class="system-cluster-critical")
    ka = w.daemonset("kube-system", "kiam-agent", [N1, N2, N3], "quay.io/uswitch/kiam:v3.4", "kiam",
                     port=8181)
    ss = w.deploy("selfservice", "selfservice-api", 2, [N2, N3],
                  img("selfservice/selfservice-api", "2020.2.4", "579478677147.dkr.ecr.eu-west-1.amazonaws.com"),
                  "dotnet")
    w.snapshot(0)
    D = "10.100.0.10"
    std_noise(w, ag, sc, stats=(30, 1500, [(N3, ss.service.cluster_ip, 8080, 120)], 300))
    healthy_stats(ag, 30, 290, [(N2, D, 53, 30), (N3, D, 53, 25)], 90)
    change(sc, 120, "change.cluster.upgrade", {"cluster": CLUSTER},
           {"platform": "eks", "from_version": "1.13", "to_version": "1.14",
            "component": "control-plane"}, agent="platform-ops", node=N1)
    T, FIX = 300, 1200
    loop_msg = ('[FATAL] plugin/loop: Loop (127.0.0.1:55953 -> :53) detected for zone ".", see '
                'https://coredns.io/plugins/loop#troubleshooting. Query: "HINFO 4547991504243258144.3688648895315093531."')
    change(sc, T, "change.deployment.rollout", wl("kube-system", "Deployment", "coredns"),
           {"revision": 3, "image": f"{ecr}/eks/coredns:v1.6.6",
            "previous_image": f"{ecr}/eks/coredns:v1.2.6", "application": "eks-upgrade"},
           agent="platform-ops", node=N1)

    def on_new(p):
        def proc():
            yield w.sim.now + 14
            if alive(w, p):
                yield from crash_loop(w, p, w.sim.now, FIX, run=4, exit_code=1,
                                      message=loop_msg, agent=ag[p.node], event_every=3,
                                      recover=True)
        w.spawn(proc())

    w.spawn(rolling_update(w, T + 1, dns, [N1, N2], image=f"{ecr}/eks/coredns:v1.6.6",
                           on_new=on_new, step=10))
    kiam_srv_msg = ('level=fatal msg="error creating server" error="dial tcp: lookup '
                    'sts.eu-west-1.amazonaws.com on 10.100.0.10:53: read udp 10.1.0.14:41876->10.100.0.10:53: i/o timeout"')
    kiam_ag_msg = ('level=fatal msg="error creating server gateway" error="rpc error: code = Unavailable '
                   'desc = all SubConns are in TransientFailure: dial tcp: lookup kiam-server on '
                   '10.100.0.10:53: no such host"')
    for i, p in enumerate(pods_of(ks)):
        w.spawn(crash_loop(w, p, T + 90 + i * 11, FIX + 60, run=25, exit_code=1,
                           message=kiam_srv_msg, agent=ag[p.node], event_every=3, recover=True))
    for i, p in enumerate(pods_of(ka)):
        if p.node != N3:
            w.spawn(crash_loop(w, p, T + 130 + i * 9, FIX + 60, run=15, exit_code=1,
                               message=kiam_ag_msg, agent=ag[p.node], event_every=3,
                               recover=True))
    for t in every(T + 70, FIX + 20, 150):
        for p in pods_of(ss):
            ag[p.node].refused(t + sc.rng.randint(0, 15), p, D, 53, sc.rng.randint(12, 60),
                               comm="dotnet")
    stats_series(ag, T + 60, 1500, [(N2, D, 53, 30), (N3, D, 53, 25)],
                 lambda t, i: ((0.9, 0.06, 6.0) if t < FIX + 30 else (0, 0, 1.2)), step=120)

    def fix():
        yield FIX
        cm = w.get("ConfigMap", "kube-system", "coredns")
        cm.data["Corefile"] = COREFILE.replace("forward . /etc/resolv.conf", "forward . 10.0.0.2")
        w.sync(FIX)

    w.spawn(fix())
    Alert(sc, "CoreDNSDown", "critical", {"namespace": "kube-system", "deployment": "coredns"},
          {"summary": "CoreDNS has disappeared from Prometheus target discovery."}).fire(T + 120).resolve(FIX + 90)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "selfservice", "service": "selfservice-api"},
          {"summary": "selfservice-api 5xx ratio above 5 %", "error_ratio": "0.97"}).fire(T + 150).resolve(FIX + 180)
    w.run()
    sc.expect("P1", "P1: complete cluster failure — DNS down cluster-wide, credentials (KIAM) "
              "crash-loop, dependent services fail 97 %",
              "bad_rollout", ent("Deployment", "kube-system", "coredns"),
              [ent("Service", "kube-system", "kube-dns"), ent("Deployment", "kube-system", "kiam-server"),
               ent("DaemonSet", "kube-system", "kiam-agent"),
               ent("Deployment", "selfservice", "selfservice-api")])


def cronjob_starvation_hour(w, ag, t0, node, jobs, booking, other, evict_booking):
    """One hourly run of DFDS PM2025-001: BestEffort CronJob pods starve the node."""
    yield t0
    created = []

    def run(cron, comm, k):
        created.append((yield from cron_job(w, t0 + k, "finance", cron,
                                            img(f"finance/{cron}", "3.1.0"), comm, node=node)))

    for k, (cron, comm) in enumerate(jobs):
        w.spawn(run(cron, comm, k))
    a = ag[node]
    a.pressure_episode(t0 + 30, t0 + 330, "memory", lambda t: 31.5 if t < t0 + 200 else 47.2,
                       lambda t: 14.0 if t < t0 + 200 else 26.9)
    a.pressure_episode(t0 + 40, t0 + 330, "cpu", lambda t: 93.4, lambda t: 22.0)
    yield t0 + 90
    memory_pressure(w, t0 + 90, node)
    yield t0 + 100
    job, p = created[-1]
    evict(w, t0 + 100, p, using="5312Mi", request="0", available="88212Ki", replace_on=False)
    yield t0 + 130
    kubelet_not_ready(w, t0 + 130, node,
                      "PLEG is not healthy: pleg was last seen active 3m2.113s ago; threshold is 3m0s",
                      pod_events=True)
    if evict_booking:
        yield t0 + 150
        bp = pod_on(booking, node)
        evict(w, t0 + 150, bp, using="1893Mi", request="512Mi", available="51200Ki", replace_on=other)
    yield t0 + 330
    for job, p in created[:-1]:
        finish_job(w, t0 + 330, job, p)
    yield t0 + 360
    memory_pressure(w, t0 + 360, node, on=False)
    yield t0 + 370
    node_ready_again(w, t0 + 370, node)
    return created


@scenario("24-dfds-pm2025-001-cronjob-starvation",
          "DFDS PM2025-001: hourly CronJobs (BestEffort, no requests) start together on one node "
          "and starve its system resources: memory and CPU pressure, evictions, the kubelet "
          "reports NotReady (PLEG); it recovers when the jobs end — and does it again the next "
          "hour",
          "failure-stories.md #9 (DFDS PM2025-001, first phase)")
def s24(sc):
    N1, N2, N3 = ("ip-10-0-1-45.eu-west-1.compute.internal", "ip-10-0-2-71.eu-west-1.compute.internal",
                  "ip-10-0-3-33.eu-west-1.compute.internal")
    w, ag = base(sc, nodes=(N1, N2, N3), cpu=4, mem_gi=16, instance_type="m5.xlarge",
                 reserved_mem_mi=512)
    bk = w.deploy("booking", "booking-api", 3, [N1, N2, N3], img("booking/booking-api", "5.2.7"),
                  "dotnet", req_mem="512Mi", lim_mem="2Gi")
    bw = w.deploy("booking", "booking-worker", 2, [N2, N3], img("booking/booking-worker", "5.2.7"),
                  "dotnet", port=None, svc=False)
    w.snapshot(0)
    bip = bk.service.cluster_ip
    std_noise(w, ag, sc, stats=(30, 4200, [(N2, bip, 8080, 160)], 420),
              flap=(1900, "CPUThrottlingHigh", "booking", {"pod": pods_of(bw)[0].name, "container": "booking-worker"}))
    jobs = [("invoice-sync", "dotnet"), ("price-import", "python3"), ("report-build", "java")]
    first = {}

    def hours():
        created = yield from cronjob_starvation_hour(w, ag, 120, N1, jobs, bk, N2, True)
        first["job"] = created[0][0].name
        yield from cronjob_starvation_hour(w, ag, 3720, N1, jobs, bk, N3, False)

    w.spawn(hours())
    w.spawn(job_noise(w, 1800, N3, ns="booking", cron="booking-cleanup", comm="dotnet"))
    stats_series(ag, 240, 480, [(N2, bip, 8080, 170)],
                 lambda t, i: (0, 0.07 if t < 420 else 0.0, 1.0), step=60)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "booking", "service": "booking-api"},
          {"summary": "booking-api 5xx ratio above 5 %", "error_ratio": "0.06"}).fire(280).resolve(540)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "booking", "service": "booking-api"},
          {"summary": "booking-api 5xx ratio above 5 %", "error_ratio": "0.06"}).fire(3880).resolve(4100)
    w.run()
    sc.expect("P2", "P2: partial functionality unavailable — a node NotReady with evictions every "
              "hour; booking-api error rate 6 % > 5 % while it lasts",
              "node_memory_pressure", f"Node/{N1}",
              [ent("Job", "finance", first["job"]), ent("Deployment", "booking", "booking-api")])


@scenario("25-dfds-pm2025-001-over-reserved-pending",
          "DFDS PM2025-001, second phase: the fix raises kubelet systemReserved on every node; "
          "allocatable memory shrinks, and the next rollout of booking-api and the next CronJob "
          "run stay Pending (Insufficient memory); the rollout stalls with 3 of 4 replicas and "
          "p99 latency reaches 5.8 s",
          "failure-stories.md #9 (DFDS PM2025-001, second phase)")
def s25(sc):
    N1, N2, N3 = ("ip-10-0-1-45.eu-west-1.compute.internal", "ip-10-0-2-71.eu-west-1.compute.internal",
                  "ip-10-0-3-33.eu-west-1.compute.internal")
    w, ag = base(sc, nodes=(N1, N2, N3), cpu=4, mem_gi=16, instance_type="m5.xlarge",
                 reserved_mem_mi=1024)
    bk = w.deploy("booking", "booking-api", 4, [N1, N2, N3, N1], img("booking/booking-api", "5.2.7"),
                  "dotnet", req_mem="2Gi", lim_mem="3Gi", revision=41)
    bw = w.deploy("booking", "booking-worker", 3, [N1, N2, N3], img("booking/booking-worker", "5.2.7"),
                  "dotnet", port=None, svc=False, req_mem="3Gi", lim_mem="4Gi")
    fa = w.deploy("finance", "finance-api", 3, [N1, N2, N3], img("finance/finance-api", "2.9.0"),
                  "java", req_mem="2560Mi", lim_mem="3Gi")
    w.snapshot(0)
    std_noise(w, ag, sc, stats=(30, 1260, [(N2, bk.service.cluster_ip, 8080, 200),
                                           (N3, fa.service.cluster_ip, 8080, 90)], 180))
    change(sc, 60, "change.node.maintenance", {"cluster": CLUSTER},
           {"action": "kubelet_config", "setting": "systemReserved.memory", "value": "4Gi",
            "previous": "1Gi", "ticket": "PM2025-001"}, agent="platform-ops", node=N1)

    def reserve():
        for k, n in enumerate((N1, N2, N3)):
            t = 120 + k * 80
            yield t
            node = w.get("Node", None, n)
            node.reserved_mem_mi = 4096
            node.heartbeat = t
            w.event(t, ("Node", None, n, node.uid), "Starting", "Starting kubelet.", host=n)
            w.event(t + 1, ("Node", None, n, node.uid), "NodeAllocatableEnforced",
                    "Updated Node Allocatable limit across pods", host=n)
            w.sync(t)

    w.spawn(reserve())
    msg = ("0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: "
           "3 No preemption victims found for incoming pod.")
    T = 420
    change(sc, T, "change.deployment.rollout", wl("booking", "Deployment", "booking-api"),
           {"revision": 42, "image": img("booking/booking-api", "5.3.0"),
            "previous_image": img("booking/booking-api", "5.2.7"), "application": "booking-api"})

    def rollout():
        yield T + 1
        old = bk.current
        rs = new_revision(w, T + 1, bk, image=img("booking/booking-api", "5.3.0"))
        yield T + 2
        scale_rs(w, T + 2, rs, 2)
        scale_rs(w, T + 2, old, 3)
        victim = pod_on(bk, N1)
        w.event(T + 2, ("ReplicaSet", old.ns, old.name, old.uid), "SuccessfulDelete",
                f"Deleted pod: {victim.name}", component="replicaset-controller")
        w.spawn(w.terminate(T + 2, victim, grace=10))
        for i in range(2):
            p = w.new_rs_pod(rs, T + 2)
            w.create_pod(T + 2, p)
            w.event(T + 2, ("ReplicaSet", rs.ns, rs.name, rs.uid), "SuccessfulCreate",
                    f"Created pod: {p.name}", component="replicaset-controller")
            w.spawn(unschedulable(w, T + 3 + i, p, msg, 1260, every=30))
        yield T + 603
        bk.progress_override = ("False", "ProgressDeadlineExceeded",
                                f'ReplicaSet "{rs.name}" has timed out progressing.')
        w.sync(T + 603)

    w.spawn(rollout())
    st = {}

    def cron():
        job, p = yield from cron_job(w, 600, "finance", "invoice-sync", img("finance/invoice-sync", "3.1.0"),
                                     "dotnet", req_cpu="500m", req_mem="3Gi", lim_mem="4Gi",
                                     message=msg, t_end=1260)
        st["job"] = job.name

    w.spawn(cron())
    Alert(sc, "HighLatency", "critical", {"namespace": "booking", "service": "booking-api"},
          {"summary": "booking-api p99 latency above 5 s", "p99_latency_seconds": "5.8"}).fire(700)
    Alert(sc, "KubeDeploymentRolloutStuck", "warning", {"namespace": "booking", "deployment": "booking-api"},
          {"summary": "Deployment rollout is not progressing."}).fire(T + 660)
    w.run()
    sc.expect("P2", "P2: slow response times (p99 5.8 s > 5 s) and partial functionality — a "
              "rollout and a CronJob cannot be scheduled, booking-api runs with 3 of 4 replicas",
              "unschedulable", ent("Deployment", "booking", "booking-api"),
              [f"Node/{N1}", f"Node/{N2}", f"Node/{N3}", ent("Job", "finance", st["job"])])


@scenario("26-twin-oom-crashloop-and-image-pull",
          "two independent incidents at once: one recommendations replica OOM-crash-loops at its "
          "512Mi limit (errors 6 %), and — in another namespace, two minutes later — the "
          "report-api rollout cannot pull its image (registry credentials missing)",
          "synthetic")
def s26(sc):
    w, ag = base(sc)
    rec = shop(w, "recommendations", 3, [A, B, C], req_mem="384Mi", lim_mem="512Mi")
    fe = shop(w, "frontend", 2, [A, C])
    ra = w.deploy("analytics", "report-api", 2, [A, C], img("analytics/report-api", "1.9.4"),
                  "python3", revision=12)
    w.snapshot(0)
    rip = rec.service.cluster_ip
    std_noise(w, ag, sc, job=(60, A),
              flap=(860, "HighLatencyP99", "shop", {"service": "frontend"}, 100),
              stats=(30, 960, [(A, ra.service.cluster_ip, 8080, 60)], 150))
    lim = mib(512)
    rb = pod_on(rec, B)
    w.spawn(crash_loop(w, rb, 200, 960, oom=(lim - mib(2), lim), agent=ag[B], ready_for=45,
                       event_every=2))
    stats_series(ag, 60, 960, [(A, rip, 8080, 200), (C, rip, 8080, 190)],
                 lambda t, i: (0.0 if t < 200 else 0.035, 0, 1.0), step=90)
    for t in (320, 610):
        ag[C].refused(t, pod_on(fe, C), rip, 8080, 4)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "recommendations"},
          {"summary": "recommendations 5xx ratio above 5 %", "error_ratio": "0.06"}).fire(380)
    T = 320
    new = img("analytics/report-api", "2.0.0", "registry.internal.example.com")
    change(sc, T, "change.deployment.rollout", wl("analytics", "Deployment", "report-api"),
           {"revision": 13, "image": new, "previous_image": img("analytics/report-api", "1.9.4"),
            "application": "analytics-report-api"})
    failure = (f'rpc error: code = Unknown desc = failed to pull and unpack image "{new}": failed to '
               f'resolve reference "{new}": pull access denied, repository does not exist or may '
               f'require authorization: authorization failed: no basic auth credentials')

    def rollout():
        yield T + 1
        rs = new_revision(w, T + 1, ra, image=new)
        yield T + 2
        scale_rs(w, T + 2, rs, 1)
        p = w.new_rs_pod(rs, T + 2)
        w.create_pod(T + 2, p)
        w.event(T + 2, ("ReplicaSet", rs.ns, rs.name, rs.uid), "SuccessfulCreate",
                f"Created pod: {p.name}", component="replicaset-controller")
        w.spawn(image_pull_backoff(w, T + 3, p, C, failure, 960))

    w.spawn(rollout())
    w.run()
    sc.expect("P2", "P2: partial functionality unavailable — a replica crash-loops (OOMKilled at "
              "its limit), the Service keeps ready endpoints; error rate 6 % > 5 %",
              "memory_limit_too_low", ent("Deployment", "shop", "recommendations"),
              [ent("Service", "shop", "recommendations")])
    sc.expect("P3", "P3: non-critical component failure — a rollout blocked by an image pull "
              "failure; the previous replicas keep serving",
              "image_pull_failure", ent("Deployment", "analytics", "report-api"))


@scenario("27-twin-node-failure-and-bad-rollout",
          "two independent incidents at once: checkout 2.9.0 (pods on node-a and node-b only) "
          "crash-loops after its rollout, and a minute later node-c — running catalog, reviews "
          "and redis-2, nothing of checkout — dies",
          "synthetic")
def s27(sc):
    w, ag = base(sc)
    co = shop(w, "checkout", 2, [A, B], revision=40)
    fe = shop(w, "frontend", 2, [A, B])
    cat = shop(w, "catalog", 2, [C, A])
    rev = shop(w, "reviews", 2, [C, B])
    redis = w.statefulset("shop", "redis", 3, [A, B, C], "docker.io/library/redis:7.4.1",
                          "redis-server", 6379, req_mem="512Mi", lim_mem="1Gi")
    w.snapshot(0)
    chk = co.service.cluster_ip
    std_noise(w, ag, sc, job=(40, B),
              stats=(30, 1020, [(B, cat.service.cluster_ip, 8000, 180)], 150))
    T = 240
    change(sc, T, "change.deployment.rollout", wl("shop", "Deployment", "checkout"),
           {"revision": 41, "image": img("shop/checkout", "2.9.0"),
            "previous_image": img("shop/checkout", "2.8.0"), "application": "shop-checkout"})
    msg = ("panic: config: required key CHECKOUT_TAX_SERVICE_URL missing\n\ngoroutine 1 [running]:\n"
           "main.main()\n\t/src/cmd/checkout/main.go:41 +0x1d9")

    def on_new(p):
        def proc():
            yield w.sim.now + 30
            if alive(w, p):
                yield from crash_loop(w, p, w.sim.now, 1020, run=3, exit_code=2, message=msg,
                                      agent=ag[p.node], event_every=2)
        w.spawn(proc())

    w.spawn(rolling_update(w, T + 1, co, [A, B], image=img("shop/checkout", "2.9.0"),
                           on_new=on_new, step=12))
    for t in every(T + 60, 1020, 120):
        for p in pods_of(fe):
            ag[p.node].refused(t + sc.rng.randint(0, 10), p, chk, 8080, sc.rng.randint(8, 35))
    stats_series(ag, 60, 1020, [(A, chk, 8080, 150), (B, chk, 8080, 140)],
                 lambda t, i: (0.0 if t < T + 40 else 0.96, 0, 1.0), step=90)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "checkout"},
          {"summary": "checkout 5xx ratio above 5 %", "error_ratio": "0.96"}).fire(T + 90)
    FAIL = 300
    redis2 = [p for p in pods_of(redis) if p.name == "redis-2"][0]
    for node in (A, B):
        ag[node].timeout(FAIL + 15, pod_on(fe, node), redis2.ip, 6379, 2, waited_ms=7000)

    def node():
        yield FAIL + 40
        node_unreachable(w, FAIL + 40, C)
        yield FAIL + 340
        yield from taint_evict(w, FAIL + 340, C, [A, B])

    w.spawn(node())
    Alert(sc, "NodeDown", "critical", {"node": C, "job": "node-exporter"},
          {"summary": "Node node-c is unreachable: node-exporter down for 1 minute."}).fire(FAIL + 75)
    w.run()
    sc.expect("P1", "P1: complete service unavailability — checkout has 0 available replicas and no "
              "ready endpoints, 96 % of checkout requests fail",
              "bad_rollout", ent("Deployment", "shop", "checkout"),
              [ent("Service", "shop", "checkout"), ent("Deployment", "shop", "frontend")])
    sc.expect("P2", "P2: partial functionality unavailable — a node NotReady, its pods evicted and "
              "replaced; the services on it keep ready endpoints elsewhere",
              "node_failure", "Node/node-c",
              [ent("Deployment", "shop", "catalog"), ent("Deployment", "shop", "reviews"),
               ent("StatefulSet", "shop", "redis")])


@scenario("28-twin-disk-failure-and-unschedulable",
          "two independent incidents at once: the Kafka data disk on node-b fails (I/O errors, "
          "kafka-1 crash-loops, producers error 6 %), while a new ml trainer asking for 12 CPUs "
          "cannot be scheduled on any 8-CPU node",
          "synthetic")
def s28(sc):
    w, ag = base(sc)
    kafka = w.statefulset("streaming", "kafka", 3, [A, B, C], "docker.io/bitnami/kafka:3.8.1",
                          "java", 9092, req_mem="4Gi", lim_mem="6Gi")
    prod = w.deploy("streaming", "event-ingest", 2, [A, C], img("streaming/event-ingest", "4.4.0"),
                    "event-ingest")
    cat = shop(w, "catalog", 2, [A, C])
    w.snapshot(0)
    kip = kafka.svc.cluster_ip
    std_noise(w, ag, sc, resched=(60, cat, B, True),
              flap=(930, "CPUThrottlingHigh", "shop", {"pod": pod_on(cat, A).name, "container": "catalog"}),
              stats=(30, 1020, [(A, kip, 9092, 260), (C, kip, 9092, 240)], 120))
    ab = ag[B]
    k1 = [p for p in pods_of(kafka) if p.name == "kafka-1"][0]
    T = 260
    ab.io_error(T, "nvme1n1", "ioerr", op="write", count=3, pod=k1)
    ab.io_error(T + 4, "nvme1n1", "ioerr", op="write", count=7, pod=k1)
    ab.latency_spike(T + 8, "nvme1n1", 3120.0, count=6, pod=k1)
    ab.io_error(T + 40, "nvme1n1", "medium", op="read", count=2)
    ab.hung_task(T + 123, "jbd2/nvme1n1-8", 122)
    ab.io_error(T + 300, "nvme1n1", "ioerr", op="write", count=12)
    kmsg = ("[2026-11-27 10:05:02,118] ERROR Error while writing to checkpoint file "
            "/bitnami/kafka/data/orders-3/leader-epoch-checkpoint (kafka.server.LogDirFailureChannel)\n"
            "java.io.IOException: Input/output error\n\tat java.base/sun.nio.ch.FileDispatcherImpl.force0(Native Method)")
    w.spawn(crash_loop(w, k1, T + 5, 1020, run=20, exit_code=1, message=kmsg, agent=ab,
                       event_every=2))
    for t in (T + 8, T + 30):
        p = pod_on(prod, A)
        ag[A].refused(t, p, k1.ip, 9092, sc.rng.randint(4, 9), comm="event-ingest")
    Alert(sc, "KafkaUnderReplicatedPartitions", "warning", {"namespace": "streaming", "statefulset": "kafka"},
          {"summary": "Kafka has under-replicated partitions."}).fire(T + 60)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "streaming", "service": "event-ingest"},
          {"summary": "event-ingest 5xx ratio above 5 %", "error_ratio": "0.06"}).fire(T + 45).resolve(T + 520)
    U = 330
    msg = ("0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
           "3 No preemption victims found for incoming pod.")

    def trainer():
        yield U
        tr = Deployment(w, "ml", "trainer", 1, {"app": "trainer", "app.kubernetes.io/name": "trainer"},
                        U, revision=1)
        tr.generation = 1
        tr.mk_containers = lambda: [Container("trainer", img("ml/trainer", "0.7.0"), "python3",
                                              req_cpu="12", req_mem="24Gi", lim_mem="24Gi",
                                              lim_cpu="12", port=None)]
        tr.qos = "Guaranteed"
        tr.tolerations = None
        tr.priority_class = None
        rs = ReplicaSet(w, tr, sc.k8s_suffix(10), 1, tr.mk_containers(), 1, U)
        tr.rs.append(rs)
        w.add(U, tr)
        w.add(U, rs)
        w.event(U, ("Deployment", "ml", "trainer", tr.uid), "ScalingReplicaSet",
                f"Scaled up replica set {rs.name} from 0 to 1", component="deployment-controller")
        p = w.new_rs_pod(rs, U)
        w.create_pod(U + 1, p)
        w.event(U + 1, ("ReplicaSet", "ml", rs.name, rs.uid), "SuccessfulCreate",
                f"Created pod: {p.name}", component="replicaset-controller")
        w.spawn(unschedulable(w, U + 2, p, msg, 1020, every=30,
                              scale_up=("NotTriggerScaleUp",
                                        "pod didn't trigger scale-up: 1 Insufficient cpu")))

    w.spawn(trainer())
    w.run()
    sc.expect("P2", "P2: partial functionality unavailable — a Kafka broker down on the failing "
              "disk; producer error rate 6 % > 5 %",
              "disk_failure", "Node/node-b",
              [ent("StatefulSet", "streaming", "kafka"), ent("Deployment", "streaming", "event-ingest")])
    sc.expect("P3", "P3: non-critical component failure — a new batch trainer (no Service, not "
              "serving) cannot be scheduled",
              "unschedulable", ent("Deployment", "ml", "trainer"))


@scenario("29-twin-config-change-and-io-pressure",
          "two independent incidents at once: invoice-worker-config loses the key "
          "INVOICE_QUEUE_URL, so the workers the HPA adds fail with "
          "CreateContainerConfigError and the invoice backlog grows; meanwhile a file-system "
          "backup saturates node-a's disk (I/O pressure, catalog p99 2.2 s)",
          "synthetic")
def s29(sc):
    w, ag = base(sc)
    cm = w.configmap("billing", "invoice-worker-config",
                     {"INVOICE_QUEUE_URL": "amqp://rabbitmq.billing.svc:5672/invoices",
                      "BATCH_SIZE": "50"})
    iw = w.deploy("billing", "invoice-worker", 2, [B, C], img("billing/invoice-worker", "7.1.0"),
                  "java", port=None, svc=False)
    for c in pods_of(iw)[0].containers + pods_of(iw)[1].containers:
        c.env_refs = [("INVOICE_QUEUE_URL", "invoice-worker-config", "INVOICE_QUEUE_URL")]
    old_mk = iw.mk_containers

    def mk():
        cs = old_mk()
        for c in cs:
            c.env_refs = [("INVOICE_QUEUE_URL", "invoice-worker-config", "INVOICE_QUEUE_URL")]
        return cs
    iw.mk_containers = mk
    iw.current.containers = mk()
    cat = shop(w, "catalog", 2, [A, B])
    fe = shop(w, "frontend", 2, [A, C])
    velero = w.daemonset("velero", "node-agent", [A, B, C], "velero/velero:v1.15.0", "velero",
                         req_mem="128Mi", lim_mem="1Gi")
    w.snapshot(0)
    std_noise(w, ag, sc, job=(900, C),
              stats=(30, 1080, [(C, cat.service.cluster_ip, 8000, 200)], 150))
    T = 200
    change(sc, T, "change.config.updated", {"cluster": CLUSTER, "namespace": "billing"},
           {"kind": "ConfigMap", "name": "invoice-worker-config", "application": "billing",
            "revision": "9c41e7d"})

    def config():
        yield T + 2
        del cm.data["INVOICE_QUEUE_URL"]
        cm.data["QUEUE_URL"] = "amqp://rabbitmq.billing.svc:5672/invoices"
        w.sync(T + 2)
        news = yield from hpa_scale(w, 420, iw, 4, None,
                                    reason="external metric rabbitmq_queue_messages(&LabelSelector{queue: invoices}) above target")
        err = "couldn't find key INVOICE_QUEUE_URL in ConfigMap billing/invoice-worker-config"
        for i, p in enumerate(news):
            node = [B, C][i]
            w.spawn(w.schedule(423 + i, p, node, start=False))

            def failing(p=p, node=node, t0=425 + i):
                tt = t0
                k = 0
                while tt <= 1080:
                    yield tt
                    w.event(tt, ("Pod", p.ns, p.name, p.uid), "Failed", f"Error: {err}",
                            typ="Warning", host=node, field_path="spec.containers{invoice-worker}")
                    if k == 0:
                        p.containers[0].state = ("waiting", "CreateContainerConfigError", err)
                        w.sync(tt)
                    tt += [10, 20, 40, 80, 160, 300, 300, 300][min(k, 7)]
                    k += 1
            w.spawn(failing())

    w.spawn(config())
    Alert(sc, "InvoiceQueueBacklogHigh", "warning", {"namespace": "billing", "deployment": "invoice-worker",
                                                     "queue": "invoices"},
          {"summary": "invoices queue backlog above 5000 messages for 10 minutes."}).fire(720)
    # io pressure on node-a from the backup
    aa = ag[A]
    aa.pressure_episode(300, 900, "io", lambda t: 41.3 if t < 600 else 44.8, lambda t: 18.2)
    vel_a = pod_on(velero, A)
    for t, ms in ((340, 320.4), (520, 410.9), (760, 288.0)):
        aa.latency_spike(t, "nvme0n1", ms, count=sc.rng.randint(3, 9), pod=vel_a, op="read")
    Alert(sc, "HighLatencyP99", "warning", {"namespace": "shop", "service": "catalog"},
          {"summary": "catalog p99 latency above 1 s", "p99_latency_seconds": "2.2"}).fire(420).resolve(930)
    w.run()
    sc.expect("P3", "P3: non-critical component failure — the workers added by the HPA cannot "
              "start (CreateContainerConfigError); existing workers continue, backlog warning only",
              "config_change", ent("ConfigMap", "billing", "invoice-worker-config"),
              [ent("Deployment", "billing", "invoice-worker")])
    sc.expect("P3", "P3: resource usage warning — sustained I/O pressure on one node, p99 2.2 s "
              "stays under 5 s, no errors",
              "io_pressure", "Node/node-a",
              [ent("DaemonSet", "velero", "node-agent"), ent("Deployment", "shop", "catalog")])


@scenario("30-twin-webhook-denied-and-unexplained-errors",
          "two independent incidents at once: a Gatekeeper constraint switched to deny blocks "
          "the notifications rollout (FailedCreate: admission webhook denied the request), and "
          "search-api shows 7 % errors with no change, no infrastructure symptom — the right "
          "answer for that one is to abstain",
          "synthetic")
def s30(sc):
    w, ag = base(sc)
    nt = w.deploy("comms", "notifications", 2, [A, B], img("comms/notifications", "3.6.0"),
                  "notifier", container_name="notifier", revision=17)
    sa = w.deploy("search", "search-api", 3, [A, B, C], img("search/search-api", "1.44.0"), "java")
    cat = shop(w, "catalog", 2, [B, C])
    w.snapshot(0)
    sip = sa.service.cluster_ip
    std_noise(w, ag, sc, resched=(100, cat, A), job=(500, C),
              stats=(30, 1080, [(A, sip, 8080, 300), (B, sip, 8080, 280), (C, sip, 8080, 290)], 120))
    change(sc, 150, "change.config.updated", {"cluster": CLUSTER},
           {"kind": "K8sPSPAllowedUsers", "name": "must-run-as-nonroot",
            "field": "spec.enforcementAction", "value": "deny", "previous": "dryrun",
            "application": "gatekeeper-policies"})
    T = 300
    change(sc, T, "change.deployment.rollout", wl("comms", "Deployment", "notifications"),
           {"revision": 18, "image": img("comms/notifications", "3.7.0"),
            "previous_image": img("comms/notifications", "3.6.0"), "application": "comms-notifications"})
    err = ('admission webhook "validation.gatekeeper.sh" denied the request: [must-run-as-nonroot] '
           'Container notifier is attempting to run as root')

    def rollout():
        yield T + 1
        rs = new_revision(w, T + 1, nt, image=img("comms/notifications", "3.7.0"))
        yield T + 2
        scale_rs(w, T + 2, rs, 1)
        ref = ("ReplicaSet", rs.ns, rs.name, rs.uid)

        def deadline():
            yield T + 603
            nt.progress_override = ("False", "ProgressDeadlineExceeded",
                                    f'ReplicaSet "{rs.name}" has timed out progressing.')
            w.sync(T + 603)

        w.spawn(deadline())
        for i, t in enumerate((T + 2, T + 3, T + 5, T + 9, T + 17, T + 33, T + 65, T + 200,
                               T + 460, T + 720)):
            yield t
            w.event(t, ref, "FailedCreate", f"Error creating: {err}", typ="Warning",
                    component="replicaset-controller")
            if i == 0:
                rs.failure = ("FailedCreate", f"pods \"{rs.name}-\" is forbidden: {err}", t)
                w.sync(t)

    w.spawn(rollout())
    Alert(sc, "HighErrorRate", "critical", {"namespace": "search", "service": "search-api"},
          {"summary": "search-api 5xx ratio above 5 %", "error_ratio": "0.07"}).fire(240).resolve(990)
    w.run()
    sc.expect("P3", "P3: non-critical component failure — a rollout is blocked by a policy webhook; "
              "the previous replicas keep serving",
              "admission_webhook_failure", ent("Deployment", "comms", "notifications"))
    sc.expect("P2", "P2: high error rate (7 % > 5 %) sustained 12 minutes; no change or "
              "infrastructure symptom explains it",
              "none", ent("Service", "search", "search-api"),
              [ent("Deployment", "search", "search-api")])


@scenario("31-unexplained-error-rate-catalog",
          "catalog returns 8 % errors for 12 minutes; pods are healthy and ready, no rollout, no "
          "config change, no node or network symptom — no rule can name a cause: abstain",
          "synthetic")
def s31(sc):
    w, ag = base(sc)
    cat = shop(w, "catalog", 3, [A, B, C])
    fe = shop(w, "frontend", 2, [A, C])
    rev = shop(w, "reviews", 2, [B, C])
    w.snapshot(0)
    cip = cat.service.cluster_ip
    std_noise(w, ag, sc, resched=(80, rev, A, True), job=(420, B),
              flap=(1000, "CPUThrottlingHigh", "shop", {"pod": pod_on(fe, A).name, "container": "frontend"}),
              stats=(30, 1140, [(A, cip, 8000, 240), (C, cip, 8000, 230),
                                (B, rev.service.cluster_ip, 3000, 90)], 90))
    w.spawn(hpa_scale(w, 600, fe, 3, [B]))
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "catalog"},
          {"summary": "catalog 5xx ratio above 5 %", "error_ratio": "0.08"}).fire(260).resolve(990)
    w.run()
    sc.expect("P2", "P2: high error rate (8 % > 5 %) sustained 12 minutes",
              "none", ent("Service", "shop", "catalog"), [ent("Deployment", "shop", "catalog")])


@scenario("32-unexplained-intermittent-external-timeouts",
          "accounts intermittently times out connecting to an external KYC API (2 % of connects) "
          "and its error ratio sits at 2.1 %; nothing in the cluster changed or is unhealthy — "
          "the cause is outside what Tapio sees: abstain",
          "synthetic")
def s32(sc):
    w, ag = base(sc)
    acc = w.deploy("identity", "accounts", 2, [A, B], img("identity/accounts", "12.0.4"), "accounts")
    fe = shop(w, "frontend", 2, [A, C])
    cat = shop(w, "catalog", 2, [B, C])
    w.snapshot(0)
    KYC = "203.0.113.45"
    std_noise(w, ag, sc, resched=(120, cat, A), job=(700, C),
              flap=(300, "HighLatencyP99", "shop", {"service": "catalog"}, 90),
              stats=(30, 1140, [(C, cat.service.cluster_ip, 8000, 210)], 150))
    stats_series(ag, 60, 1140, [(A, KYC, 443, 95), (B, KYC, 443, 90)],
                 lambda t, i: (0, 0.0 if t < 200 else 0.022, 1.0), step=90)
    for t in (215, 380, 505, 690, 840, 1010):
        p = pods_of(acc)[sc.rng.randint(0, 1)]
        ag[p.node].timeout(t, p, KYC, 443, 1, waited_ms=sc.rng.choice([3000, 7000]))
    Alert(sc, "HighErrorRate", "warning", {"namespace": "identity", "service": "accounts"},
          {"summary": "accounts 5xx ratio above 1 %", "error_ratio": "0.021"}).fire(330)
    w.run()
    sc.expect("P3", "P3: moderate error rate (2.1 %, 1–5 %), some requests intermittently fail",
              "none", ent("Service", "identity", "accounts"), [ent("Deployment", "identity", "accounts")])


@scenario("33-noise-only-routine-churn",
          "an ordinary quarter hour: a successful rollout of catalog, an HPA scale-up, a pod "
          "rebalanced (with one readiness-probe miss while it starts), a CronJob whose first pod "
          "exits 1 and whose retry succeeds, two warning alerts that resolve within minutes, "
          "clean connect statistics — nothing should open an incident",
          "synthetic")
def s33(sc):
    w, ag = base(sc)
    cat = shop(w, "catalog", 3, [A, B, C], revision=29)
    fe = shop(w, "frontend", 2, [A, B])
    rev = shop(w, "reviews", 2, [B, C])
    co = shop(w, "checkout", 2, [A, C])
    w.snapshot(0)
    std_noise(w, ag, sc, resched=(90, rev, A, True), job=(400, C),
              flap=(250, "CPUThrottlingHigh", "shop", {"pod": pod_on(co, A).name, "container": "checkout"}, 180),
              stats=(30, 960, [(A, cat.service.cluster_ip, 8000, 230), (B, co.service.cluster_ip, 8080, 150),
                               (C, rev.service.cluster_ip, 3000, 90)], 120))
    alert_flap(sc, 700, "HighLatencyP99", "shop", {"service": "frontend"}, 120,
               annotations={"p99_latency_seconds": "1.3"})
    change(sc, 540, "change.deployment.rollout", wl("shop", "Deployment", "catalog"),
           {"revision": 30, "image": img("shop/catalog", "7.4.0"),
            "previous_image": img("shop/catalog", "7.3.0"), "application": "shop-catalog"})
    w.spawn(rolling_update(w, 541, cat, [A, B, C], image=img("shop/catalog", "7.4.0"), step=15))
    w.spawn(hpa_scale(w, 300, fe, 3, [C]))
    w.run()


@scenario("34-noise-only-drain-and-autoscale",
          "planned maintenance: node-c is cordoned and drained (pods evicted and rescheduled), "
          "one replacement waits briefly for capacity until the cluster-autoscaler adds node-d, "
          "node-c is removed, node-exporter's target on it goes down for two minutes — all "
          "expected, nothing should open an incident",
          "synthetic")
def s34(sc):
    w, ag = base(sc)
    fe = shop(w, "frontend", 3, [A, B, C], req_cpu="2")
    cat = shop(w, "catalog", 2, [C, A], req_cpu="2")
    rev = shop(w, "reviews", 2, [B, C], req_cpu="1")
    w.snapshot(0)
    std_noise(w, ag, sc, job=(60, A),
              stats=(30, 1020, [(A, fe.service.cluster_ip, 3000, 200), (B, cat.service.cluster_ip, 8000, 180)], 120))
    T = 180
    change(sc, T, "change.node.maintenance", {"cluster": CLUSTER, "node": C},
           {"action": "drain", "reason": "kernel security update", "ticket": "OPS-4471"},
           agent="platform-ops", node=A)

    def drain():
        yield T + 5
        n = w.get("Node", None, C)
        n.unschedulable = True
        n.add_taint(T + 5, "node.kubernetes.io/unschedulable", "NoSchedule")
        w.event(T + 5, ("Node", None, C, n.uid), "NodeNotSchedulable",
                f"Node {C} status is now: NodeNotSchedulable", host=C)
        w.sync(T + 5)
        yield T + 10
        victims = [p for p in w.pods() if p.node == C and p.active() and p.owner and p.owner[1] == "ReplicaSet"]
        news = []
        for i, p in enumerate(victims):
            news.append((p, replace_pod(w, T + 10 + i, p, None)))
            w.spawn(w.terminate(T + 10 + i, p, grace=20))
        # frontend and reviews fit on node-a / node-b; catalog (2 CPU) does not fit anywhere
        msg = ("0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu. "
               "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
               "2 No preemption victims found for incoming pod.")
        pending = None
        for i, (old, new) in enumerate(news):
            if old.labels["app"] == "catalog":
                pending = new
                w.spawn(unschedulable(w, T + 11, new, msg, T + 100, every=30,
                                      scale_up=("TriggeredScaleUp",
                                                "pod triggered scale-up: [{eks-workers-3f2a 3->4 (max: 10)}]")))
            else:
                w.spawn(w.schedule(T + 11 + i, new, [A, B][i % 2], pull=False))
        yield T + 75
        nd = Node(w, D, "10.0.2.60", "eu-west-1b", "10.1.3.0/24", created=T + 75)
        nd.set_cond(T + 75, "Ready", "False", "KubeletNotReady",
                    "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady")
        w.add(T + 75, nd)
        w.ip_next[D] = 10
        ad = Agent(w, D)
        w.agents[D] = ad
        ag[D] = ad
        yield T + 110
        nd.set_cond(T + 110, "Ready", "True", "KubeletReady", "kubelet is posting ready status")
        w.event(T + 110, ("Node", None, D, nd.uid), "NodeReady", f"Node {D} status is now: NodeReady",
                host=D)
        w.sync(T + 110)
        yield T + 112
        yield from w.schedule(T + 112, pending, D, pull=True)
        yield T + 400
        w.event(T + 400, ("Node", None, C, n.uid), "Shutdown", "Node is shutting down", host=C)
        yield T + 460
        for p in [p for p in w.pods() if p.node == C]:
            w.delete(T + 460, p)
        w.delete(T + 460, n)
        w.event(T + 461, ("Node", None, C, n.uid), "RemovingNode",
                f"Node {C} event: Removing Node {C} from Controller", component="node-controller")

    w.spawn(drain())

    def node_d_facts():
        yield T + 180
        healthy_stats(ag, T + 180, 1020, [(D, cat.service.cluster_ip, 8000, 120)], 120)

    w.spawn(node_d_facts())
    alert_flap(sc, T + 420, "TargetDown", "monitoring", {"job": "node-exporter", "service": "node-exporter"}, 110)
    w.run()


@scenario("35-config-drift-p4",
          "someone edits frontend-config by hand (a feature flag) instead of through Git; "
          "nothing restarts and nothing degrades, ArgoCD reports the app OutOfSync (info); "
          "informational configuration drift",
          "synthetic")
def s35(sc):
    w, ag = base(sc)
    cm = w.configmap("shop", "frontend-config", {"FEATURE_NEW_SEARCH": "false",
                                                 "CHECKOUT_URL": "http://checkout.shop.svc:8080"})
    fe = shop(w, "frontend", 3, [A, B, C], env_cm="frontend-config")
    cat = shop(w, "catalog", 2, [A, C])
    co = shop(w, "checkout", 2, [B, C])
    w.snapshot(0)
    std_noise(w, ag, sc, resched=(60, cat, B, True), job=(520, A),
              flap=(760, "CPUThrottlingHigh", "shop", {"pod": pod_on(co, B).name, "container": "checkout"}),
              stats=(30, 960, [(A, cat.service.cluster_ip, 8000, 200), (B, co.service.cluster_ip, 8080, 140)], 120))

    def edit():
        yield 200
        cm.data["FEATURE_NEW_SEARCH"] = "true"
        w.sync(200)

    w.spawn(edit())
    Alert(sc, "ArgoCDAppOutOfSync", "info", {"namespace": "shop", "name": "shop-frontend",
                                              "sync_status": "OutOfSync", "project": "shop"},
          {"summary": "ArgoCD application shop-frontend is out of sync."}).fire(380)
    w.run()
    sc.expect("P4", "P4: minor configuration drift — the live ConfigMap differs from Git; no pod "
              "restarted, no service impact",
              "config_change", ent("ConfigMap", "shop", "frontend-config"),
              [ent("Deployment", "shop", "frontend")])


STORM = [
    # name, error ratio, p99 latency (s): the origin first, hit hardest
    ("payments", 0.92, 8.5),
    ("checkout", 0.41, 6.2),
    ("orders-api", 0.27, 4.1),
    ("cart", 0.12, 2.3),
    ("frontend", 0.09, 3.4),
    ("pricing", 0.07, 1.9),
    ("recommendations", 0.04, 1.2),
    ("catalog", 0.03, 0.9),
]


def red_storm(sc, w, deps, t0, episodes, stagger=2.4):
    """Each workload's RED alerts (error rate, p99 latency, pods not ready), staggered by
    `stagger` s per workload, for each (fire, resolve) episode (flapping)."""
    for i, (name, ratio, p99) in enumerate(STORM):
        dep = deps[name]
        base_labels = {"namespace": "shop", "service": name, "deployment": name}
        alerts = [
            Alert(sc, "HighErrorRate", "critical", dict(base_labels, job=name),
                  {"summary": f"{name}: {ratio * 100:g}% of requests fail",
                   "error_ratio": f"{ratio:g}"}),
            Alert(sc, "HighLatencyP99", "warning", dict(base_labels, job=name),
                  {"summary": f"{name}: p99 latency {p99:g}s",
                   "p99_latency_seconds": f"{p99:g}"}),
            Alert(sc, "KubePodNotReady", "warning",
                  dict(base_labels, job="kube-state-metrics", pod=pods_of(dep)[0].name),
                  {"summary": f"Pod shop/{pods_of(dep)[0].name} has been in a non-ready state."}),
        ]
        for j, a in enumerate(alerts):
            off = t0 + i * stagger + j * 0.4
            for f, r in episodes:
                a.fire(f + off)
                a.resolve(r + off)


@scenario("36-alert-storm-payments-database",
          "the payments database fails: payments' requests fail (92 %), and within 17 s seven "
          "other shop services alert too (error rate, latency, pods not ready), each less hard "
          "hit, flapping twice; the alerts carry no topology and no connection evidence links "
          "the services — one incident (common onset), payments the likely origin",
          "synthetic (bench/notify_bench.py scenario outage)")
def s36(sc):
    w, ag = base(sc)
    deps = {}
    spread = [[A, B], [B, C], [A, C]]
    for i, (name, _, _) in enumerate(STORM):
        deps[name] = shop(w, name, 2, spread[i % 3])
    w.snapshot(0)
    std_noise(w, ag, sc, resched=(90, deps["catalog"], B, True), job=(600, C),
              stats=(30, 960, [(A, deps["catalog"].service.cluster_ip, 8000, 200)], 120))
    red_storm(sc, w, deps, 240, [(0, 70), (110, 170), (210, 270)])
    w.run()
    sc.expect("P2", "P2: error rate 92 % > 5 % on payments (the worst of eight services "
              "failing together); no service lost every replica",
              "cascade_origin", ent("Deployment", "shop", "payments"),
              [ent("Deployment", "shop", n) for n, _, _ in STORM[1:]])


@scenario("37-same-namespace-unrelated-failures",
          "three failures in shop that are not one: catalog returns 8 % errors with no cause in "
          "sight; 10 s later recommendations is OOM-killed at its 512Mi limit (its own cause); "
          "6 minutes later reviews' latency alert fires (no cause either) — three incidents",
          "synthetic")
def s37(sc):
    w, ag = base(sc)
    cat = shop(w, "catalog", 3, [A, B, C])
    rec = shop(w, "recommendations", 2, [A, B], req_mem="384Mi", lim_mem="512Mi")
    rev = shop(w, "reviews", 2, [B, C])
    fe = shop(w, "frontend", 2, [A, C])
    w.snapshot(0)
    std_noise(w, ag, sc, resched=(80, fe, B, True), job=(700, C),
              stats=(30, 1080, [(A, cat.service.cluster_ip, 8000, 220)], 120))
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "catalog"},
          {"summary": "catalog 5xx ratio above 5 %", "error_ratio": "0.08"}).fire(240).resolve(900)
    limit = mib(512)
    victim = pod_on(rec, A)
    t = 250

    def story():
        yield t
        ag[A].oom(t, victim, anon_rss=limit - mib(4), limit=limit)
        ag[A].exit(t, victim, signal=9)
        w.crash(t, victim, reason="OOMKilled", exit_code=137, waiting=None)
        yield t + 14
        w.set_ready(t + 14, victim, True)

    w.spawn(story())
    Alert(sc, "HighLatencyP99", "critical", {"namespace": "shop", "service": "reviews"},
          {"summary": "reviews p99 latency 6.8 s", "p99_latency_seconds": "6.8"}).fire(600).resolve(1000)
    w.run()
    sc.expect("P2", "P2: high error rate (8 % > 5 %) sustained; no change or infrastructure "
              "symptom explains it",
              "none", ent("Service", "shop", "catalog"), [ent("Deployment", "shop", "catalog")])
    sc.expect("P3", "P3: resource usage warning — one container OOM-killed at its limit, "
              "restarted and recovered",
              "memory_limit_too_low", ent("Deployment", "shop", "recommendations"))
    sc.expect("P2", "P2: response time 6.8 s > 5 s; nothing explains it",
              "none", ent("Service", "shop", "reviews"), [ent("Deployment", "shop", "reviews")])


# =======================================================================================
# main
# =======================================================================================


def build_all():
    out = []
    for name, desc, source, fn in REGISTRY:
        sc = Scenario(name, desc, source)
        fn(sc)
        out.append(sc)
    return out


def main(argv):
    check = "--check" in argv
    only = [a for a in argv[1:] if not a.startswith("--")]
    differs = []
    for sc in build_all():
        if only and not any(sc.name.startswith(o) for o in only):
            continue
        d = os.path.join(HERE, sc.name)
        files = {"stream.jsonl": sc.stream_text(), "expected.json": sc.expected_text()}
        for fname, text in files.items():
            path = os.path.join(d, fname)
            if check:
                try:
                    cur = open(path, encoding="utf-8").read()
                except OSError:
                    cur = None
                if cur != text:
                    differs.append(path)
            else:
                os.makedirs(d, exist_ok=True)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
    if check:
        for p in differs:
            print("differs:", p)
        return 1 if differs else 0
    known = {name for name, *_ in REGISTRY}
    for d in sorted(os.listdir(HERE)):
        if os.path.isdir(os.path.join(HERE, d)) and d not in known and not d.startswith("."):
            print(f"warning: {d}/ is not generated by this script", file=sys.stderr)
    import validate
    if not only:
        return validate.main([argv[0]])  # every scenario, plus the suite-level checks
    return validate.main([argv[0]] + [os.path.join(HERE, o) for o in sorted(known)
                                      if any(o.startswith(x) for x in only)])


def load_extensions():
    """Scenario modules beside this file (`gen_*.py`): each does `from generate import *`
    and registers its scenarios with @scenario, so they share this module's REGISTRY."""
    sys.modules.setdefault("generate", sys.modules[__name__])
    sys.path.insert(0, HERE)
    import importlib
    for f in sorted(os.listdir(HERE)):
        if f.startswith("gen_") and f.endswith(".py"):
            importlib.import_module(f[:-3])


if __name__ == "__main__":
    load_extensions()
    sys.exit(main(sys.argv))
