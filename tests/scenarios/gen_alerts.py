"""Scenarios 38-48: kube-prometheus alerts as real clusters send them.

Loaded by generate.py (`gen_*.py` beside it). Each scenario's alerts are the rules of
../shared/reference/kube-prometheus (or, where named, the etcd mixin and one custom rule) with
the label sets their expressions really produce — including the scrape target's own labels
(`job`, `service`, `instance`, `pod`, `container`, `endpoint`, `namespace`) that survive a
rule's `by`/`without` clauses, so kube-state-metrics and node-exporter alerts name
`Service/monitoring/kube-state-metrics`, `pod=kube-state-metrics-…` or `pod=node-exporter-…`
although neither is at fault — and annotations rendered as Prometheus renders them.

Delivery is modelled on Alertmanager's defaults in kube-prometheus(-stack):
`group_by: [namespace]`, `group_wait: 30s`, `group_interval: 5m` — an alert is stored when
its group is flushed (the first flush 30 s after the group appears, then every 5 minutes),
so an alert joining an existing group waits up to five minutes; `startsAt` is when the
rule's `for:` elapsed (Prometheus' FiredAt), `endsAt` when the condition cleared. The
cluster (`kube-prometheus-stack` with short fullnames) scrapes kube-state-metrics on
`:8080` (`endpoint="http"`) with honorLabels, node-exporter with `instance` relabelled to
the node name, and the kubelet on `:10250`.
"""

import hashlib
import math

from generate import *  # noqa: F401,F403  (World, Alert, Agent, base helpers, BASE...)
from generate import World, Alert, Model, KIND_ORDER, SYNC_ORDER, ALERT_AGENT  # explicit

RUNBOOK = "https://runbooks.prometheus-operator.dev/runbooks/"

# ---------------------------------------------------------------------------------------
# Rendering helpers (Go text/template + Prometheus' template functions)
# ---------------------------------------------------------------------------------------


def g4(v):
    """printf "%.4g" (Go and Python agree for the values used here)."""
    return "%.4g" % v


def hpct(v):
    """humanizePercentage: humanize(v * 100) + "%"."""
    x = v * 100
    if abs(x) >= 1 or x == 0:
        return "%.4g%%" % x
    return "%.4gm%%" % (x * 1000)


def gofloat(v):
    """{{ $value }} of a float64: Go's strconv 'g' shortest representation."""
    r = repr(float(v))
    if r.endswith(".0"):
        r = r[:-2]
    return r


# ---------------------------------------------------------------------------------------
# Extra object kinds (PersistentVolume(Claim), HPA, CronJob, ResourceQuota) and a World that
# snapshots and syncs them without touching generate.py's module lists.
# ---------------------------------------------------------------------------------------

X_KINDS = ["PersistentVolume", "PersistentVolumeClaim", "HorizontalPodAutoscaler", "CronJob"]


class XWorld(World):
    def _kinds(self, order):
        return list(order) + [k for k in X_KINDS if k not in order]

    def _entity(self, m):
        if m.kind != "Node" and not m.namespaced:
            return {"cluster": self.sc.cluster}
        return World._entity(self, m)

    def snapshot(self, t=0):
        self.now = t
        for kind in self._kinds(KIND_ORDER):
            for m in list(self.objs.values()):
                if m.kind == kind:
                    obj = self._emit_obj(t, "added", m)
                    self.last[m.key()] = self._canon(obj)
        self.live = True

    def flush(self, t):
        self.pending = False
        self.now = t
        for kind in self._kinds(SYNC_ORDER):
            for m in list(self.objs.values()):
                if m.kind != kind:
                    continue
                obj = m.render()
                c = self._canon(obj)
                if self.last.get(m.key()) != c:
                    self.now = t + (1 if kind in ("HorizontalPodAutoscaler", "CronJob") else 0)
                    obj = m.render()
                    c = self._canon(obj)
                    self._emit_obj(self.now, "modified", m, obj)
                    self.last[m.key()] = c
                    self.now = t


def xbase(sc, nodes=("node-a", "node-b", "node-c"), coredns=True, cpu=8, mem_gi=32,
          zones=ZONES, instance_type="m6i.2xlarge", coredns_nodes=None, node_kw=None):
    """generate.base() with an XWorld."""
    w = XWorld(sc, nodes[0])
    for i, n in enumerate(nodes):
        kw = dict((node_kw or {}).get(n, {}))
        w.node(n, ip=f"10.0.{i % 3 + 1}.{21 + i * 13}", zone=kw.pop("zone", zones[i % len(zones)]),
               pod_cidr=f"10.1.{i}.0/24", cpu=kw.pop("cpu", cpu), mem_gi=kw.pop("mem_gi", mem_gi),
               instance_type=kw.pop("instance_type", instance_type), **kw)
    ag = agents(w, *nodes)
    if coredns:
        w.coredns = add_coredns(w, coredns_nodes or [nodes[0], nodes[1 % len(nodes)]])
    return w, ag


class PersistentVolume(Model):
    kind = "PersistentVolume"
    namespaced = False

    def __init__(self, w, name, size, zone, claim, handle, created):
        self.w, self.name, self.size, self.zone, self.claim = w, name, size, zone, claim
        self.uid = w.sc.uuid()
        self.handle, self.created = handle, created

    def render(self):
        c = self.claim
        return {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": self.name, "uid": self.uid, "resourceVersion": "",
                         "creationTimestamp": at(self.created),
                         "annotations": {"pv.kubernetes.io/provisioned-by": "ebs.csi.aws.com",
                                         "volume.kubernetes.io/provisioner-deletion-secret-name": "",
                                         "volume.kubernetes.io/provisioner-deletion-secret-namespace": ""},
                         "finalizers": ["external-provisioner.volume.kubernetes.io/finalizer",
                                        "kubernetes.io/pv-protection"]},
            "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": self.size},
                     "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                  "name": c.name, "namespace": c.ns, "uid": c.uid},
                     "csi": {"driver": "ebs.csi.aws.com", "fsType": "ext4",
                             "volumeAttributes": {"storage.kubernetes.io/csiProvisionerIdentity": "1762951011207-8081-ebs.csi.aws.com"},
                             "volumeHandle": self.handle},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "topology.kubernetes.io/zone", "operator": "In",
                          "values": [self.zone]}]}]}},
                     "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "gp3",
                     "volumeMode": "Filesystem"},
            "status": {"phase": "Bound", "lastPhaseTransitionTime": at(self.created + 2)},
        }


class PersistentVolumeClaim(Model):
    kind = "PersistentVolumeClaim"

    def __init__(self, w, ns, name, size, labels, node, created):
        self.w, self.ns, self.name, self.size = w, ns, name, size
        self.uid = w.sc.uuid()
        self.labels, self.node, self.created = dict(labels), node, created
        self.volume = f"pvc-{self.uid}"

    def render(self):
        return {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": self.name, "namespace": self.ns, "uid": self.uid,
                         "resourceVersion": "", "creationTimestamp": at(self.created),
                         "labels": dict(self.labels),
                         "annotations": {"pv.kubernetes.io/bind-completed": "yes",
                                         "pv.kubernetes.io/bound-by-controller": "yes",
                                         "volume.beta.kubernetes.io/storage-provisioner": "ebs.csi.aws.com",
                                         "volume.kubernetes.io/selected-node": self.node,
                                         "volume.kubernetes.io/storage-provisioner": "ebs.csi.aws.com"},
                         "finalizers": ["kubernetes.io/pvc-protection"]},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": self.size}},
                     "storageClassName": "gp3", "volumeMode": "Filesystem",
                     "volumeName": self.volume},
            "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                       "capacity": {"storage": self.size}},
        }


class HorizontalPodAutoscaler(Model):
    kind = "HorizontalPodAutoscaler"

    def __init__(self, w, dep, min_r, max_r, target_cpu, created):
        self.w, self.dep, self.ns, self.name = w, dep, dep.ns, dep.name
        self.uid = w.sc.uuid()
        self.min_r, self.max_r, self.target_cpu, self.created = min_r, max_r, target_cpu, created
        self.current = dep.replicas
        self.desired = dep.replicas
        self.cpu_util = 52
        self.last_scale = created + 3600
        self.limited = False
        self.cond_since = {}

    def _cond(self, typ, status, reason, message):
        prev = self.cond_since.get(typ)
        if prev is None or prev[0] != status:
            self.cond_since[typ] = (status, self.w.now if prev else self.created + 30)
        return {"type": typ, "status": status,
                "lastTransitionTime": at(self.cond_since[typ][1]), "reason": reason,
                "message": message}

    def render(self):
        conds = [self._cond("AbleToScale", "True", "ReadyForNewScale",
                            "recommended size matches current size"),
                 self._cond("ScalingActive", "True", "ValidMetricFound",
                            "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)")]
        if self.limited:
            conds.append(self._cond("ScalingLimited", "True", "TooManyReplicas",
                                    "the desired replica count is more than the maximum replica count"))
        else:
            conds.append(self._cond("ScalingLimited", "False", "DesiredWithinRange",
                                    "the desired count is within the acceptable range"))
        return {
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": self.name, "namespace": self.ns, "uid": self.uid,
                         "resourceVersion": "", "creationTimestamp": at(self.created),
                         "labels": {"app": self.dep.name}},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": self.dep.name},
                     "minReplicas": self.min_r, "maxReplicas": self.max_r,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization",
                                                   "averageUtilization": self.target_cpu}}}]},
            "status": {"currentReplicas": self.current, "desiredReplicas": self.desired,
                       "lastScaleTime": at(self.last_scale),
                       "currentMetrics": [{"type": "Resource", "resource": {
                           "name": "cpu", "current": {"averageUtilization": self.cpu_util,
                                                      "averageValue": f"{self.cpu_util * 10}m"}}}],
                       "conditions": conds},
        }


class CronJob(Model):
    kind = "CronJob"

    def __init__(self, w, ns, name, schedule, image, comm, created):
        self.w, self.ns, self.name, self.schedule = w, ns, name, schedule
        self.uid = w.sc.uuid()
        self.image, self.comm, self.created = image, comm, created
        self.last_schedule = None
        self.last_success = created + 3600
        self.active = []

    def containers(self):
        return [Container(self.name, self.image, self.comm, req_cpu="200m", req_mem="256Mi",
                          lim_mem="512Mi", port=None)]

    def render(self):
        status = {"lastSuccessfulTime": at(self.last_success)}
        if self.last_schedule is not None:
            status["lastScheduleTime"] = at(self.last_schedule)
        if self.active:
            status["active"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": j.name,
                                 "namespace": self.ns, "uid": j.uid} for j in self.active]
        return {
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": self.name, "namespace": self.ns, "uid": self.uid,
                         "resourceVersion": "", "generation": 3,
                         "creationTimestamp": at(self.created), "labels": {"app": self.name}},
            "spec": {"schedule": self.schedule, "concurrencyPolicy": "Forbid",
                     "suspend": False, "successfulJobsHistoryLimit": 3,
                     "failedJobsHistoryLimit": 3, "startingDeadlineSeconds": 300,
                     "jobTemplate": {"spec": {"backoffLimit": 2, "template": {"spec": {
                         "containers": [c.spec() for c in self.containers()],
                         "restartPolicy": "Never"}}}}},
            "status": status,
        }


class PodWithVolume(Pod):
    """A Pod that mounts a PersistentVolumeClaim (a StatefulSet's volumeClaimTemplate)."""

    def render(self):
        o = Pod.render(self)
        spec = o["spec"]
        spec["volumes"].insert(0, {"name": "data", "persistentVolumeClaim": {
            "claimName": self.pvc.name}})
        spec["containers"][0].setdefault("volumeMounts", []).insert(
            0, {"name": "data", "mountPath": self.mount_path})
        return o


class SizedNode(Node):
    """A node whose pod capacity is not 110 (EKS: the ENI-bound max-pods of its type)."""

    def render(self):
        o = Node.render(self)
        o["status"]["capacity"]["pods"] = str(self.max_pods)
        o["status"]["allocatable"]["pods"] = str(self.max_pods)
        return o


# ---------------------------------------------------------------------------------------
# Alertmanager: the receiver's view of a kube-prometheus alert
# ---------------------------------------------------------------------------------------


class KAlert(Alert):
    """An alert as the Tapio receiver stores it (as generate.Alert), with severity `none`
    stored as info (the receiver maps none/info/low to info) and deliveries timed by `AM`."""

    def __init__(self, am, alertname, severity, labels, annotations):
        Alert.__init__(self, am.sc, alertname, severity, labels, annotations)
        self.am = am

    def _event(self, status, t_start, t_end, store_t):
        Alert._event(self, status, t_start, t_end, store_t)
        if self.labels["severity"] in ("none", "low"):
            ev = self.sc.items[-1][3]
            ev["severity"] = "info"

    def fire(self, t, store_t=None):
        t = t + self.sc.rng.randint(1, 999) / 1000
        self.starts = t
        self.am.items.append((t, len(self.am.items), "firing", self, t, None))
        return self

    def resolve(self, t, store_t=None):
        t = t + self.sc.rng.randint(1, 999) / 1000
        self.am.items.append((t, len(self.am.items), "resolved", self, self.starts, t))
        return self

    def renotify(self, t_start, delivered):
        """An alert firing since long before the window, re-sent (repeat_interval) within it."""
        self.starts = t_start
        Alert._event(self, "firing", t_start, None, delivered)
        if self.labels["severity"] in ("none", "low"):
            self.sc.items[-1][3]["severity"] = "info"
        return self


class AM:
    """Alertmanager's dispatcher in front of the Tapio webhook: group_by [namespace],
    group_wait 30 s, group_interval 5 min; a group disappears once everything in it has
    been notified resolved. Call deliver() after w.run()."""

    def __init__(self, sc, wait=30, interval=300):
        self.sc, self.wait, self.interval = sc, wait, interval
        self.items = []

    def alert(self, name, severity, labels, summary, description=None, runbook=None,
              extra=None):
        ann = {"summary": summary}
        if description:
            ann["description"] = description
        if runbook is not False:
            ann["runbook_url"] = runbook or RUNBOOK + RUNBOOK_PATH.get(name, "kubernetes/" + name.lower())
        if extra:
            ann.update(extra)
        return KAlert(self, name, severity, labels, ann)

    def deliver(self, horizon=0):
        """Store every alert state at its group's flush. A flush before `horizon` (the
        stream's start) was received before the window: those alerts reach the stream with
        the group's first notification inside it (each notification carries every alert of
        the group that is still firing)."""
        groups = {}
        early = {}
        for t, _o, status, a, t_start, t_end in sorted(self.items, key=lambda x: (x[0], x[1])):
            key = a.labels.get("namespace", "")
            arrive = t + 0.4
            g = groups.get(key)
            if g is None or (g["dead"] is not None and arrive > g["dead"]):
                g = {"first": arrive + self.wait, "dead": None, "firing": set()}
                groups[key] = g
            if arrive <= g["first"]:
                flush = g["first"]
            else:
                k = math.ceil((arrive - g["first"]) / self.interval)
                flush = g["first"] + k * self.interval
            g["dead"] = None
            if status == "firing":
                g["firing"].add(a.fingerprint)
            else:
                g["firing"].discard(a.fingerprint)
            if not g["firing"]:
                g["dead"] = flush
            store = flush + 0.05 * ((len(key) % 7) + 1)
            if flush < horizon:
                if status == "firing":
                    early.setdefault(key, {})[a.fingerprint] = (a, t_start)
                else:
                    early.get(key, {}).pop(a.fingerprint, None)
                continue
            for b, b_start in early.pop(key, {}).values():
                if b.fingerprint in g["firing"] or b is not a:
                    b._event("firing", b_start, None, store)
            a._event(status, t_start, t_end, store)


RUNBOOK_PATH = {
    "TargetDown": "general/targetdown", "Watchdog": "general/watchdog",
    "InfoInhibitor": "general/infoinhibitor",
    "NodeFilesystemSpaceFillingUp": "node/nodefilesystemspacefillingup",
    "NodeFilesystemAlmostOutOfSpace": "node/nodefilesystemalmostoutofspace",
}


class Mon:
    """The monitoring stack's own objects and the labels its targets give alerts."""

    def __init__(self, w, nodes, ksm_node, created=-86400 * 200):
        self.w = w
        self.ksm = w.deploy("monitoring", "kube-state-metrics", 1, [ksm_node],
                            "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.13.0",
                            "kube-state-metrics", port=8080, req_cpu="10m", req_mem="190Mi",
                            lim_mem="250Mi", revision=6, created=created, started=-86400 * 9)
        self.ne = w.daemonset("monitoring", "node-exporter", list(nodes),
                              "quay.io/prometheus/node-exporter:v1.8.2", "node_exporter",
                              port=9100, req_cpu="102m", req_mem="180Mi", lim_mem="180Mi",
                              created=created)
        self.ne_svc = w.service("monitoring", "node-exporter", {"app": "node-exporter"},
                                [("http-metrics", 9100, 9100, "TCP")], headless=True,
                                created=created)

    @property
    def ksm_pod(self):
        return pods_of(self.ksm)[0]

    def ne_pod(self, node):
        return [p for p in self.ne.pods() if p.node == node][0]

    def ksm_labels(self, **kw):
        d = {"container": "kube-state-metrics", "endpoint": "http",
             "instance": f"{self.ksm_pod.ip}:8080", "job": "kube-state-metrics",
             "namespace": "monitoring", "pod": self.ksm_pod.name,
             "service": "kube-state-metrics"}
        d.update(kw)
        return d

    def ne_labels(self, node, **kw):
        d = {"container": "node-exporter", "endpoint": "http-metrics", "instance": node,
             "job": "node-exporter", "namespace": "monitoring",
             "pod": self.ne_pod(node).name, "service": "node-exporter"}
        d.update(kw)
        return d

    def kubelet_labels(self, node, **kw):
        n = self.w.get("Node", None, node)
        d = {"endpoint": "https-metrics", "instance": f"{n.ip}:10250", "job": "kubelet",
             "metrics_path": "/metrics", "namespace": "kube-system", "node": node,
             "service": "kubelet"}
        d.update(kw)
        return d


# --- the kube-prometheus rules used below, rendered ---------------------------------------


def target_down(am, job, ns, service, pct):
    return am.alert("TargetDown", "warning", {"job": job, "namespace": ns, "service": service},
                    "One or more targets are unreachable.",
                    f"{g4(pct)}% of the {job}/{service} targets in {ns} namespace are down.")


def pod_not_ready(am, pod):
    return am.alert("KubePodNotReady", "warning",
                    {"namespace": pod.ns, "pod": pod.name, "job": "kube-state-metrics"},
                    "Pod has been in a non-ready state for more than 15 minutes.",
                    f"Pod {pod.ns}/{pod.name} has been in a non-ready state for longer than 15 "
                    f"minutes on cluster {CLUSTER}.")


def pod_crash_looping(am, mon, pod):
    c = pod.containers[0]
    return am.alert("KubePodCrashLooping", "warning",
                    mon.ksm_labels(container=c.name, namespace=pod.ns, pod=pod.name,
                                   reason="CrashLoopBackOff", uid=pod.uid),
                    "Pod is crash looping.",
                    f'Pod {pod.ns}/{pod.name} ({c.name}) is in waiting state (reason: '
                    f'"CrashLoopBackOff") on cluster {CLUSTER}.')


def deploy_mismatch(am, mon, dep):
    return am.alert("KubeDeploymentReplicasMismatch", "warning",
                    mon.ksm_labels(namespace=dep.ns, deployment=dep.name),
                    "Deployment has not matched the expected number of replicas.",
                    f"Deployment {dep.ns}/{dep.name} has not matched the expected number of "
                    f"replicas for longer than 15 minutes on cluster {CLUSTER}.")


def sts_mismatch(am, mon, sts):
    return am.alert("KubeStatefulSetReplicasMismatch", "warning",
                    mon.ksm_labels(namespace=sts.ns, statefulset=sts.name),
                    "StatefulSet has not matched the expected number of replicas.",
                    f"StatefulSet {sts.ns}/{sts.name} has not matched the expected number of "
                    f"replicas for longer than 15 minutes on cluster {CLUSTER}.")


def ds_rollout_stuck(am, mon, ds):
    return am.alert("KubeDaemonSetRolloutStuck", "warning",
                    mon.ksm_labels(namespace=ds.ns, daemonset=ds.name),
                    "DaemonSet rollout is stuck.",
                    f"DaemonSet {ds.ns}/{ds.name} has not finished or progressed for at least "
                    f"15m on cluster {CLUSTER}.")


def cpu_throttling(am, w, pod, ratio, cname=None):
    c = pod.containers[0] if cname is None else [x for x in pod.containers if x.name == cname][0]
    n = w.get("Node", None, pod.node)
    return am.alert("CPUThrottlingHigh", "info",
                    {"container": c.name, "instance": f"{n.ip}:10250", "namespace": pod.ns,
                     "pod": pod.name, "service": "kubelet"},
                    "Processes experience elevated CPU throttling.",
                    f"{hpct(ratio)} throttling of CPU in namespace {pod.ns} for container "
                    f"{c.name} in pod {pod.name} on cluster {CLUSTER}.")


def watchdog(am):
    return am.alert("Watchdog", "none", {}, "An alert that should always be firing to certify "
                    "that Alertmanager is working properly.",
                    "This is an alert meant to ensure that the entire alerting pipeline is "
                    "functional.\nThis alert is always firing, therefore it should always be "
                    "firing in Alertmanager\nand always fire against a receiver. There are "
                    "integrations with various notification\nmechanisms that send a "
                    "notification when this alert is not firing. For example the\n"
                    "\"DeadMansSnitch\" integration in PagerDuty.\n")


def info_inhibitor(am, ns=None):
    return am.alert("InfoInhibitor", "none", {"namespace": ns} if ns else {},
                    "Info-level alert inhibition.",
                    "This is an alert that is used to inhibit info alerts.\nBy themselves, the "
                    "info-level alerts are sometimes very noisy, but they are relevant when "
                    "combined with\nother alerts.\nThis alert fires whenever there's a "
                    "severity=\"info\" alert, and stops firing when another alert with a\n"
                    "severity of 'warning' or 'critical' starts firing on the same namespace.\n"
                    "This alert should be routed to a null receiver and configured to inhibit "
                    "alerts with severity=\"info\".\n")


# ---------------------------------------------------------------------------------------
# Shared story pieces
# ---------------------------------------------------------------------------------------


def keep_pending(w, pod, message, t0, t_end, every=60):
    """A replacement pod the scheduler cannot place: FailedScheduling, aggregated, with the
    scheduler's back-off (doubling to 5 minutes)."""
    return unschedulable(w, t0, pod, message, t_end, every=every)


def refused_series(ag, sc, callers, dst, port, t0, t1, step, lo=5, hi=30):
    for t in every(t0, t1, step):
        for p in callers:
            if p.node in ag:
                ag[p.node].refused(t + sc.rng.randint(0, 9), p, dst, port, sc.rng.randint(lo, hi))


def fs_fill(agent, t, mount, device, fs_type, used_ratio, avail_bytes, inodes_ratio, sev):
    """node.filesystem.nearly_full exactly as tapio-agent's FillWatcher emits it."""
    return agent._emit(t, "node.filesystem.nearly_full", sev, {"node": agent.node},
                       {"mount_point": mount, "device": device, "fs_type": fs_type,
                        "used_ratio": round(used_ratio, 4), "inodes_used_ratio": inodes_ratio,
                        "available_bytes": int(avail_bytes)})


class OperatorService(Service):
    """A Service without a selector whose endpoints the Prometheus operator maintains (the
    kubelet Service of kube-prometheus-stack)."""

    def render(self):
        o = Service.render(self)
        del o["spec"]["selector"]
        o["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "prometheus-operator",
                                   "app.kubernetes.io/name": "kubelet", "k8s-app": "kubelet"}
        o["spec"]["clusterIP"] = "None"
        o["spec"]["clusterIPs"] = ["None"]
        return o


def kubelet_service(w):
    return w.add(0, OperatorService(w, "kube-system", "kubelet", {}, "None",
                                    [("https-metrics", 10250, 10250, "TCP"),
                                     ("http-metrics", 10255, 10255, "TCP"),
                                     ("cadvisor", 4194, 4194, "TCP")], -86400 * 200, True))


TOLERATE_ALL = [{"operator": "Exists"}]


def system_daemonsets(w, nodes):
    """kube-proxy and fluent-bit, each with the Service Prometheus scrapes it through."""
    kp = w.daemonset("kube-system", "kube-proxy", list(nodes),
                     "registry.k8s.io/kube-proxy:v1.30.6", "kube-proxy", port=10249,
                     req_cpu="100m", req_mem="64Mi", lim_mem="128Mi",
                     tolerations=TOLERATE_ALL)
    kp.svc = w.service("kube-system", "kube-proxy", {"app": "kube-proxy"},
                       [("http-metrics", 10249, 10249, "TCP")], headless=True)
    fb = w.daemonset("logging", "fluent-bit", list(nodes),
                     "cr.fluentbit.io/fluent/fluent-bit:3.1.9", "fluent-bit", port=2020,
                     req_mem="64Mi", lim_mem="256Mi", tolerations=TOLERATE_ALL)
    fb.svc = w.service("logging", "fluent-bit", {"app": "fluent-bit"},
                       [("http", 2020, 2020, "TCP")], headless=True)
    return kp, fb


# =======================================================================================
# 38: one node dies -> a storm of kube-prometheus alerts in five namespaces
# =======================================================================================

PCI_SELECTOR = {"pool": "pci"}
PCI_TOLERATION = [{"key": "dedicated", "operator": "Equal", "value": "pci", "effect": "NoSchedule"}]


@scenario("38-node-failure-alert-storm",
          "node-c, the only node of the dedicated PCI pool (pool=pci, taint dedicated=pci), "
          "dies (hardware): its kubelet and agent go silent, the node turns Unknown 40 s later "
          "and both checkout replicas and both payments-api replicas (all pinned to the pool) "
          "lose their endpoints; after 300 s their pods are evicted but the replacements stay "
          "Pending (no other pci node). kube-prometheus then delivers 28 alerts in three "
          "Alertmanager flushes over ~15 minutes across shop, payments, monitoring, kube-system "
          "and logging — TargetDown (100 % for checkout/payments, 25 % for node-exporter, "
          "kubelet, kube-proxy, fluent-bit), KubeNodeNotReady, KubeNodeUnreachable, "
          "KubePodNotReady for every pod on node-c and every Pending replacement, "
          "KubeDeploymentReplicasMismatch, KubeDaemonSetRolloutStuck — most carrying the "
          "kube-state-metrics target's labels (service=kube-state-metrics, "
          "pod=kube-state-metrics-…): one incident, the node",
          "kube-prometheus TargetDown / KubeNodeNotReady / KubeNodeUnreachable / KubePodNotReady "
          "/ KubeDeploymentReplicasMismatch / KubeDaemonSetRolloutStuck rules; the "
          "all-replicas-on-one-node failure of failure-stories.md #2 (Moonlight 2019)")
def s38(sc):
    D = "node-d"
    w, ag = xbase(sc, nodes=(A, B, C, D), coredns_nodes=[A, B], node_kw={
        C: {"labels": dict(PCI_SELECTOR), "instance_type": "m6i.xlarge", "cpu": 4, "mem_gi": 16,
            "taints": [{"key": "dedicated", "value": "pci", "effect": "NoSchedule"}]}})
    am = AM(sc)
    mon = Mon(w, [A, B, C, D], D)
    # node-exporter runs everywhere, the dedicated pool included
    mon.ne.tolerations = TOLERATE_ALL
    for p in mon.ne.pods():
        p.tolerations = TOLERATE_ALL
    kp, fb = system_daemonsets(w, [A, B, C, D])
    kubelet_service(w)
    fe = shop(w, "frontend", 3, [A, B, D])
    cart = shop(w, "cart", 2, [A, D])
    co = shop(w, "checkout", 2, [C, C], tolerations=PCI_TOLERATION, revision=18)
    pay = w.deploy("payments", "payments-api", 2, [C, C], img("payments/payments-api", "4.7.2"),
                   "payments-api", tolerations=PCI_TOLERATION)
    pw = w.deploy("payments", "payments-worker", 1, [C], img("payments/payments-worker", "4.7.2"),
                  "payments-worker", port=9090, port_name="metrics", tolerations=PCI_TOLERATION)
    for d in (co, pay, pw):
        for p in pods_of(d):
            p.node_selector = dict(PCI_SELECTOR)
    w.snapshot(0)
    FAIL = 200
    END = FAIL + 1600
    chk = co.service.cluster_ip
    w.spawn(job_noise(w, 60, A))
    watchdog(am).renotify(-86400 * 6 - 4123.5, 95)
    stats_series(ag, 30, END - 60, [(A, chk, 8080, 150), (B, chk, 8080, 140)],
                 lambda t, i: ((0, 0, 1.0) if t < FAIL else (0, 0.35, 1.0) if t < FAIL + 45
                               else (1.0, 0, 1.0)), step=180)
    # frontends: connects to the dead pods time out until the endpoints drop them, then the
    # ClusterIP with no ready endpoint rejects (ECONNREFUSED)
    for node in (A, B):
        fp = pod_on(fe, node)
        ag[node].timeout(FAIL + 9, fp, chk, 8080, sc.rng.randint(3, 6))
        ag[node].timeout(FAIL + 27, fp, chk, 8080, sc.rng.randint(2, 5))
    refused_series(ag, sc, [pod_on(fe, A), pod_on(fe, B)], chk, 8080, FAIL + 50, END - 60, 180)

    pending_msg = ("0/4 nodes are available: 1 node(s) had untolerated taint "
                   "{node.kubernetes.io/unreachable: }, 3 node(s) didn't match Pod's node "
                   "affinity/selector. preemption: 0/4 nodes are available: 4 Preemption is not "
                   "helpful for scheduling.")
    pendings = []

    def story():
        yield FAIL + 40
        node_unreachable(w, FAIL + 40, C)
        yield FAIL + 340
        for p in [p for p in w.pods() if p.node == C and p.active()]:
            if p.owner and p.owner[1] == "DaemonSet":
                continue
            w.event(FAIL + 340, ("Pod", p.ns, p.name, p.uid), "TaintManagerEviction",
                    f"Marking for deletion Pod {p.ns}/{p.name}",
                    component="taint-eviction-controller")
            p.deletion = FAIL + 370
            new = replace_pod(w, FAIL + 340, p, None)
            new.node_selector = dict(PCI_SELECTOR)
            pendings.append(new)
            w.spawn(keep_pending(w, new, pending_msg, FAIL + 341, END - 30))
        w.sync(FAIL + 340)

    w.spawn(story())
    w.run()

    t_td = FAIL + 631
    for job, ns, svc, pct in (("checkout", "shop", "checkout", 100),
                              ("payments-api", "payments", "payments-api", 100),
                              ("payments-worker", "payments", "payments-worker", 100),
                              ("node-exporter", "monitoring", "node-exporter", 25),
                              ("kubelet", "kube-system", "kubelet", 25),
                              ("kube-proxy", "kube-system", "kube-proxy", 25),
                              ("fluent-bit", "logging", "fluent-bit", 25)):
        target_down(am, job, ns, svc, pct).fire(t_td)
    t_node = FAIL + 957
    am.alert("KubeNodeNotReady", "warning",
             mon.ksm_labels(condition="Ready", node=C, status="true"), "Node is not ready.",
             f"{C} has been unready for more than 15 minutes on cluster {CLUSTER}.").fire(t_node)
    am.alert("KubeNodeUnreachable", "warning",
             mon.ksm_labels(effect="NoSchedule", key="node.kubernetes.io/unreachable", node=C),
             "Node is unreachable.",
             f"{C} is unreachable and some workloads may be rescheduled on cluster {CLUSTER}."
             ).fire(t_node)
    t_apps = FAIL + 962
    on_c = [p for p in w.pods() if p.node == C]
    for p in on_c:
        pod_not_ready(am, p).fire(t_apps)
    for d in (co, pay, pw):
        deploy_mismatch(am, mon, d).fire(t_apps)
    for ds in (mon.ne, kp, fb):
        ds_rollout_stuck(am, mon, ds).fire(t_apps)
    for p in pendings:
        pod_not_ready(am, p).fire(FAIL + 340 + 15 + 907)
    am.deliver()
    sc.expect("P1", "P1: complete service unavailability — checkout and payments-api (every "
              "replica on node-c, the only node of the PCI pool) have no ready endpoint from "
              "40 s after the failure to the end; frontend's connects to checkout are refused",
              "node_failure", "Node/node-c",
              [ent("Deployment", "shop", "checkout"), ent("Service", "shop", "checkout"),
               ent("Deployment", "payments", "payments-api"),
               ent("Service", "payments", "payments-api"),
               ent("Deployment", "payments", "payments-worker"),
               ent("Deployment", "shop", "frontend"),
               ent("DaemonSet", "monitoring", "node-exporter"),
               ent("DaemonSet", "kube-system", "kube-proxy"),
               ent("DaemonSet", "logging", "fluent-bit")])


# =======================================================================================
# 39: a new image crash-loops; maxUnavailable 1 keeps 3 of 4 old replicas serving
# =======================================================================================

ORDERS_FATAL = ('{"level":"fatal","ts":"2026-11-27T10:02:39.118Z","caller":"cmd/orders-api/'
                'main.go:88","msg":"config validation failed","error":"outbox.kafka.brokers: '
                'required when OUTBOX_ENABLED=true (set ORDERS_KAFKA_BROKERS)"}')


@scenario("39-bad-rollout-crashloop-alerts",
          "orders-api 6.1.0 rolls out (4 replicas, maxSurge 1, maxUnavailable 1): one old pod "
          "is replaced and two new pods start, both exit 1 on a config validation error and "
          "crash-loop; the rollout stalls with 3 old replicas serving every request (callers' "
          "connects all succeed). 15 minutes later KubePodCrashLooping fires for both new pods, "
          "then KubeDeploymentRolloutStuck and KubeDeploymentReplicasMismatch (labels of the "
          "kube-state-metrics target); the team rolls back 28 minutes after the rollout and the "
          "alerts resolve",
          "kube-prometheus KubePodCrashLooping / KubeDeploymentReplicasMismatch / "
          "KubeDeploymentRolloutStuck rules; synthetic rollout")
def s39(sc):
    w, ag = xbase(sc)
    am = AM(sc)
    mon = Mon(w, [A, B, C], C)
    fe = shop(w, "frontend", 2, [A, B])
    oa = shop(w, "orders-api", 4, [A, B, C, A], revision=31, max_surge="1", max_unavailable="1")
    cat = shop(w, "catalog", 2, [B, C])
    w.snapshot(0)
    T = 150
    RB = T + 1680
    END = RB + 720
    oip = oa.service.cluster_ip
    std_noise(w, ag, sc, resched=(420, cat, A, True), job=(900, C),
              stats=(40, END - 60, [(A, oip, 8080, 210), (B, oip, 8080, 190)], 150))
    old_rs = oa.current
    new_img = img("shop/orders-api", "6.1.0")
    change(sc, T, "change.deployment.rollout", wl("shop", "Deployment", "orders-api"),
           {"revision": 32, "image": new_img, "previous_image": img("shop/orders-api", "6.0.3"),
            "application": "shop-orders-api"})
    news = []

    def crash(p):
        def proc():
            yield w.sim.now + 4
            if alive(w, p):
                yield from crash_loop(w, p, w.sim.now, RB, run=3, exit_code=1,
                                      message=ORDERS_FATAL, agent=ag[p.node], event_every=2)
        w.spawn(proc())

    def rollout():
        yield T + 1
        rs = new_revision(w, T + 1, oa, image=new_img)
        olds = [p for p in old_rs.pods() if p.active()]
        for i, node in enumerate((B, C)):
            t = T + 1 + i
            yield t
            scale_rs(w, t, rs, i + 1)
            p = w.new_rs_pod(rs, t)
            w.create_pod(t, p)
            w.event(t, ("ReplicaSet", rs.ns, rs.name, rs.uid), "SuccessfulCreate",
                    f"Created pod: {p.name}", component="replicaset-controller")
            w.spawn(w.schedule(t + 1, p, node, pull=(i == 0), ready_after=None))
            news.append(p)
            if i == 0:
                victim = olds[-1]
                scale_rs(w, t, old_rs, 3)
                w.event(t, ("ReplicaSet", old_rs.ns, old_rs.name, old_rs.uid), "SuccessfulDelete",
                        f"Deleted pod: {victim.name}", component="replicaset-controller")
                w.spawn(w.terminate(t, victim, grace=4))
        yield T + 12
        for p in news:
            crash(p)
        yield T + 601
        oa.progress_override = ("False", "ProgressDeadlineExceeded",
                                f'ReplicaSet "{rs.name}" has timed out progressing.')
        w.sync(T + 601)
        yield RB
        change(sc, RB, "change.deployment.rollout", wl("shop", "Deployment", "orders-api"),
               {"revision": 33, "image": img("shop/orders-api", "6.0.3"),
                "previous_image": new_img, "application": "shop-orders-api", "rollback": True})
        oa.revision += 1
        oa.generation += 1
        old_rs.revision = oa.revision
        oa.rs.remove(old_rs)
        oa.rs.append(old_rs)
        oa.mk_containers = lambda: fresh_containers(old_rs.containers)
        oa.progress_override = None
        w.sync(RB)
        yield RB + 1
        scale_rs(w, RB + 1, old_rs, 4)
        p = w.new_rs_pod(old_rs, RB + 1)
        w.create_pod(RB + 1, p)
        w.event(RB + 1, ("ReplicaSet", old_rs.ns, old_rs.name, old_rs.uid), "SuccessfulCreate",
                f"Created pod: {p.name}", component="replicaset-controller")
        w.spawn(w.schedule(RB + 2, p, B, pull=False, ready_after=6))
        scale_rs(w, RB + 1, rs, 0)
        for q in news:
            w.event(RB + 1, ("ReplicaSet", rs.ns, rs.name, rs.uid), "SuccessfulDelete",
                    f"Deleted pod: {q.name}", component="replicaset-controller")
            w.spawn(w.terminate(RB + 1, q, grace=2))

    w.spawn(rollout())
    w.run()
    # KSM sees CrashLoopBackOff at its next scrape after the first back-off; for: 15m
    t_crash = T + 12 + 4 + 15 + 900
    loops = [pod_crash_looping(am, mon, p).fire(t_crash + 2 * i) for i, p in enumerate(news)]
    stuck = am.alert("KubeDeploymentRolloutStuck", "warning",
                     mon.ksm_labels(namespace="shop", deployment="orders-api",
                                    condition="Progressing", status="false"),
                     "Deployment rollout is not progressing.",
                     f"Rollout of deployment shop/orders-api is not progressing for longer than "
                     f"15 minutes on cluster {CLUSTER}.").fire(T + 601 + 14 + 900)
    mism = deploy_mismatch(am, mon, oa).fire(T + 2 + 18 + 600 + 900)
    stuck.resolve(RB + 31)
    mism.resolve(RB + 46)
    for a in loops:
        a.resolve(RB + 331)
    am.deliver()
    sc.expect("P3", "P3: non-critical component failure — the new orders-api revision "
              "crash-loops (2 pods) and the rollout is stuck, but 3 of 4 old replicas keep "
              "serving every request: no errors, no unavailability, reduced redundancy",
              "bad_rollout", ent("Deployment", "shop", "orders-api"),
              [ent("Service", "shop", "orders-api")])


# =======================================================================================
# 40: a database PVC fills up (WAL retained by an abandoned replication slot) -> PANIC
# =======================================================================================


class ClaimedStatefulSet(StatefulSet):
    def render(self):
        o = StatefulSet.render(self)
        o["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
            {"name": "data", "mountPath": self.mount_path}]
        o["spec"]["volumeClaimTemplates"] = [{
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "labels": {"app": self.name}},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "gp3",
                     "resources": {"requests": {"storage": self.size}}, "volumeMode": "Filesystem"},
        }]
        o["spec"]["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": "Retain",
                                                             "whenScaled": "Retain"}
        return o


def claimed_statefulset(w, ns, name, node, image, comm, port, size, mount_path, **kw):
    s = w.statefulset(ns, name, 1, [node], image, comm, port, **kw)
    s.__class__ = ClaimedStatefulSet
    s.size, s.mount_path = size, mount_path
    pod = pods_of(s)[0]
    pvc = PersistentVolumeClaim(w, ns, f"data-{pod.name}", size, {"app": name}, node,
                                s.created + 60)
    n = w.get("Node", None, node)
    pv = PersistentVolume(w, pvc.volume, size, n.zone, pvc, "vol-0" + w.sc.hexstr(16),
                          s.created + 62)
    w.add(0, pvc)
    w.add(0, pv)
    pod.__class__ = PodWithVolume
    pod.pvc, pod.mount_path = pvc, mount_path
    return s, pod, pvc, pv


PG_PANIC = ("2026-11-27 10:22:52.904 UTC [1] LOG:  database system was interrupted; last known "
            "up at 2026-11-27 10:22:49 UTC\n2026-11-27 10:22:53.011 UTC [27] LOG:  database system "
            "was not properly shut down; automatic recovery in progress\n2026-11-27 10:22:53.019 "
            "UTC [27] LOG:  redo starts at 1F3/A4000028\n2026-11-27 10:22:53.771 UTC [27] PANIC:  "
            "could not write to file \"pg_wal/xlogtemp.27\": No space left on device\n2026-11-27 "
            "10:22:53.802 UTC [1] LOG:  startup process (PID 27) was terminated by signal 6: "
            "Aborted\n2026-11-27 10:22:53.802 UTC [1] LOG:  aborting startup due to startup "
            "process failure\n2026-11-27 10:22:53.815 UTC [1] LOG:  database system is shut down\n")


@scenario("40-pvc-full-database-down",
          "the orders database's 100Gi volume fills at ~11 %/h: WAL retained by a replication "
          "slot of a decommissioned CDC connector. KubePersistentVolumeFillingUp warns (4 % "
          "left, fill predicted within 4 days), goes critical at < 3 % (delivered with the "
          "group's next 5-minute flush), the agent reports the volume's mount nearly full, then "
          "error; at 100 % postgres PANICs writing WAL, cannot finish crash recovery and "
          "crash-loops: orders-db has no ready endpoint, orders-api's connects to it are "
          "refused — orders cannot be placed. KubePodCrashLooping, KubePodNotReady and "
          "KubeStatefulSetReplicasMismatch follow 15 minutes later",
          "kube-prometheus KubePersistentVolumeFillingUp (warning and critical) rules; "
          "PostgreSQL's documented behaviour on a full WAL volume (PANIC: could not write to "
          "file pg_wal/xlogtemp: No space left on device)")
def s40(sc):
    w, ag = xbase(sc)
    am = AM(sc)
    mon = Mon(w, [A, B, C], A)
    oa = shop(w, "orders-api", 3, [A, B, C], revision=9)
    fe = shop(w, "frontend", 2, [A, C])
    db, dbp, pvc, pv = claimed_statefulset(w, "shop", "orders-db", B,
                                           "docker.io/library/postgres:16.4", "postgres", 5432,
                                           "100Gi", "/var/lib/postgresql/data",
                                           req_cpu="2", req_mem="8Gi", lim_mem="8Gi")
    w.snapshot(0)
    END = 2700
    dip = db.svc.cluster_ip
    std_noise(w, ag, sc, resched=(300, fe, B, True),
              stats=(45, END - 60, [(A, oa.service.cluster_ip, 8080, 240)], 300))
    # available share of the volume (kubelet_volume_stats_available_bytes / capacity)
    WARN, RATE = 60, 11.0 / 3600  # percent, per second
    avail = lambda t: max(0.0, 4.0 - RATE * (t - WARN))  # noqa: E731
    FULL = WARN + 4.0 / RATE  # ~1369
    cap = gib(98.3)
    mount = ("/var/lib/kubelet/plugins/kubernetes.io/csi/ebs.csi.aws.com/"
             + hashlib.sha256(pv.name.encode()).hexdigest() + "/globalmount")

    def used_ratio(t):
        return (1 - avail(t) / 100 - 0.05) / 0.95

    for t in [12, 312, 442, 742, 1042, 1342, 1642, 1942, 2242, 2542]:
        sev = "error" if used_ratio(t) >= 0.97 else "warning"
        fs_fill(ag[B], t, mount, "/dev/nvme1n1", "ext4", used_ratio(t), cap * avail(t) / 100,
                0.0021, sev)
    # callers: orders-api -> orders-db
    stats_series(ag, 30, END - 60, [(A, dip, 5432, 90), (C, dip, 5432, 85)],
                 lambda t, i: (0.0 if t < FULL + 5 else 1.0, 0, 1.0), step=150)
    callers = [pod_on(oa, A), pod_on(oa, C)]
    for t in every(int(FULL) + 12, END - 60, 150):
        for p in callers:
            ag[p.node].refused(t + sc.rng.randint(0, 9), p, dip, 5432, sc.rng.randint(4, 20),
                               comm="orders-api")

    def story():
        yield FULL
        # a backend PANICs on WAL write (SIGABRT), the postmaster kills the others (exit 2),
        # crash recovery PANICs too and the postmaster exits 1: the container dies
        ag[B].exit(FULL, dbp, signal=6, comm="postgres")
        ag[B].exit(FULL + 1, dbp, exit_code=2, count=14, comm="postgres")
        yield FULL + 3
        ag[B].exit(FULL + 3, dbp, signal=6, comm="postgres")
        yield from crash_loop(w, dbp, FULL + 3, END, run=2, exit_code=1, message=PG_PANIC,
                              agent=ag[B], event_every=2)

    w.spawn(story())
    w.run()
    klab = mon.kubelet_labels(B, namespace="shop", persistentvolumeclaim=pvc.name)
    am.alert("KubePersistentVolumeFillingUp", "warning", klab, "PersistentVolume is filling up.",
             f"Based on recent sampling, the PersistentVolume claimed by {pvc.name} in Namespace "
             f"shop on Cluster {CLUSTER} is expected to fill up within four days. Currently "
             f"{hpct(avail(WARN) / 100)} is available.").fire(WARN)
    t_crit = 450
    am.alert("KubePersistentVolumeFillingUp", "critical", klab, "PersistentVolume is filling up.",
             f"The PersistentVolume claimed by {pvc.name} in Namespace shop on Cluster "
             f"{CLUSTER} is only {hpct(avail(t_crit) / 100)} free.").fire(t_crit)
    t_k = FULL + 3 + 15 + 900
    pod_crash_looping(am, mon, dbp).fire(t_k + 12)
    pod_not_ready(am, dbp).fire(t_k)
    sts_mismatch(am, mon, db).fire(t_k)
    am.deliver()
    sc.expect("P1", "P1: complete service unavailability — the orders database is down "
              "(crash-looping on a full volume, no ready endpoint) and every connect from "
              "orders-api to it is refused: orders can be neither placed nor read",
              "volume_full", ent("PersistentVolumeClaim", "shop", pvc.name),
              [ent("StatefulSet", "shop", "orders-db"), ent("Service", "shop", "orders-db"),
               ent("Pod", "shop", "orders-db-0"), f"PersistentVolume/{pv.name}",
               ent("Deployment", "shop", "orders-api")])


# =======================================================================================
# 41: TargetDown at 33 % — one replica's /metrics times out, the service is fine
# =======================================================================================


@scenario("41-targetdown-one-of-three",
          "one of catalog's three replicas (the longest-running) stops answering Prometheus' "
          "scrapes: its /metrics handler merges thousands of leftover prometheus_client "
          "multiprocess files and exceeds the 10 s scrape timeout. TargetDown fires at "
          "33.33 % after 10 minutes and resolves when a developer deletes the pod 13 minutes "
          "later; all three replicas stay Ready and catalog's callers connect without a single "
          "failure — a monitoring gap, not an outage",
          "kube-prometheus TargetDown rule; prometheus/client_python multiprocess-mode "
          "exposition slowing down as dead workers' .db files accumulate")
def s41(sc):
    w, ag = xbase(sc)
    am = AM(sc)
    Mon(w, [A, B, C], A)
    cat = shop(w, "catalog", 3, [A, B, C], revision=21)
    fe = shop(w, "frontend", 2, [A, C])
    rev = shop(w, "reviews", 2, [B, C])
    w.snapshot(0)
    END = 1860
    cip = cat.service.cluster_ip
    std_noise(w, ag, sc, resched=(260, rev, A, True), job=(980, C),
              stats=(30, END - 60, [(A, cip, 8000, 230), (C, cip, 8000, 210)], 150))
    slow = pod_on(cat, B)
    FIX = 1500
    w.spawn(reschedule(w, FIX, cat, B, victim=slow))
    w.run()
    td = target_down(am, "catalog", "shop", "catalog", 100 / 3).fire(120 + 15 + 600)
    td.resolve(FIX + 28)
    am.deliver()
    sc.expect("P3", "P3: non-critical component failure — one of three catalog metrics targets "
              "unreachable (33.33 %) for 13 minutes; catalog keeps three ready endpoints and "
              "callers see no failure (not a page)",
              "none", ent("Service", "shop", "catalog"), [ent("Deployment", "shop", "catalog")])


# =======================================================================================
# 42: CPUThrottlingHigh (info) flapping on several containers, nothing else
# =======================================================================================


@scenario("42-noise-cpu-throttling-flaps",
          "CPUThrottlingHigh (severity info since kube-prometheus 0.11) fires and resolves "
          "seven times on four containers of shop whose CPU limits are tight, with "
          "InfoInhibitor for the namespace firing alongside (this cluster's Alertmanager keeps "
          "no inhibit rules, so info alerts reach Tapio); latency and connects are clean, no "
          "pod restarts — noise, nothing should open an incident",
          "kube-prometheus CPUThrottlingHigh / InfoInhibitor rules")
def s42(sc):
    w, ag = xbase(sc)
    am = AM(sc)
    Mon(w, [A, B, C], B)
    fe = shop(w, "frontend", 2, [A, B], lim_cpu="500m", req_cpu="250m")
    rec = shop(w, "recommendations", 2, [B, C], lim_cpu="1", req_cpu="500m")
    cat = shop(w, "catalog", 2, [A, C], lim_cpu="1")
    co = shop(w, "checkout", 2, [B, C])
    w.snapshot(0)
    END = 2400
    std_noise(w, ag, sc, resched=(700, co, A, True), job=(1300, B),
              stats=(30, END - 60, [(A, cat.service.cluster_ip, 8000, 240),
                                    (B, co.service.cluster_ip, 8080, 160),
                                    (C, rec.service.cluster_ip, 8080, 200)], 180))
    watchdog(am).renotify(-86400 * 4 - 911.25, 50)
    w.run()
    flaps = [(pods_of(fe)[0], [(310, 640, 0.3127), (1390, 1655, 0.2981)]),
             (pods_of(fe)[1], [(430, 715, 0.2711)]),
             (pods_of(rec)[0], [(905, 1210, 0.4406), (1930, 2160, 0.3382)]),
             (pods_of(cat)[1], [(1510, 1745, 0.2664)]),
             (pods_of(rec)[1], [(2050, 2290, 0.2592)])]
    for pod, eps in flaps:
        for f, r, ratio in eps:
            cpu_throttling(am, w, pod, ratio).fire(f).resolve(r)
    # ALERTS{severity="info"} counts pending alerts too: the inhibitor fires with the first
    # pending CPUThrottlingHigh and lasts while any is pending or firing
    info_inhibitor(am, "shop").fire(-590).resolve(2300)
    am.deliver()


# =======================================================================================
# 43: an HPA pinned at maxReplicas while latency climbs
# =======================================================================================


def hpa_scale_to(w, t, hpa, to, nodes, util):
    """The HPA scales its Deployment (capped at maxReplicas); new pods start on `nodes`."""
    dep = hpa.dep
    frm = dep.replicas
    hpa.cpu_util = util
    want = max(to, frm)
    capped = min(want, hpa.max_r)
    hpa.limited = want > hpa.max_r
    hpa.desired = capped
    if capped != frm:
        w.event(t, ("HorizontalPodAutoscaler", dep.ns, dep.name, hpa.uid), "SuccessfulRescale",
                f"New size: {capped}; reason: cpu resource utilization (percentage of request) "
                f"above target", component="horizontal-pod-autoscaler")
        dep.replicas = capped
        dep.generation += 1
        dep.current.replicas = capped
        hpa.last_scale = t
        w.event(t, ("Deployment", dep.ns, dep.name, dep.uid), "ScalingReplicaSet",
                f"Scaled up replica set {dep.current.name} from {frm} to {capped}",
                component="deployment-controller")
        for i in range(capped - frm):
            p = w.new_rs_pod(dep.current, t)
            w.create_pod(t, p)
            w.event(t, ("ReplicaSet", dep.ns, dep.current.name, dep.current.uid),
                    "SuccessfulCreate", f"Created pod: {p.name}", component="replicaset-controller")
            w.spawn(w.schedule(t + 1 + i, p, nodes[i % len(nodes)], pull=False, ready_after=9))
    hpa.current = capped
    w.sync(t)


SEARCH_LAT = ("search-api p99 latency is {v}s over the last 5 minutes (SLO: 800ms).")


@scenario("43-hpa-maxed-out-latency",
          "a campaign triples search traffic: search-api's HPA (min 3, max 6, CPU target 70 %) "
          "scales 3 -> 5 -> 6 and is capped (ScalingLimited TooManyReplicas, desired 9) with "
          "CPU at ~130 % of requests; pods throttle at their 1-CPU limit and p99 latency climbs "
          "to 6.2 s (the search team's own latency alert), KubeHpaMaxedOut fires after 15 "
          "minutes (kube-state-metrics target labels), CPUThrottlingHigh on the pods. A platform "
          "engineer raises maxReplicas to 12: the HPA scales to 10 and everything resolves",
          "kube-prometheus KubeHpaMaxedOut / CPUThrottlingHigh rules; custom latency rule of "
          "the search team")
def s43(sc):
    w, ag = xbase(sc)
    am = AM(sc)
    mon = Mon(w, [A, B, C], C)
    sa = w.deploy("search", "search-api", 3, [A, B, C], img("search/search-api", "1.44.0"),
                  "java", req_cpu="500m", lim_cpu="1", req_mem="1Gi", lim_mem="2Gi", revision=17)
    hpa = w.add(0, HorizontalPodAutoscaler(w, sa, 3, 6, 70, -86400 * 90))
    fe = shop(w, "frontend", 2, [A, B])
    cat = shop(w, "catalog", 2, [B, C])
    w.snapshot(0)
    END = 2100
    sip = sa.service.cluster_ip
    std_noise(w, ag, sc, job=(1200, A),
              stats=(30, END - 60, [(C, cat.service.cluster_ip, 8000, 180)], 180))
    FIX = 1500

    def load(t, i):
        if t < 60 or t >= FIX + 120:
            return (0, 0, 1.0)
        return (0, 0.004 if 420 <= t < FIX + 60 else 0, 3.0)

    for t in every(30, END - 60, 120):
        for node, n in ((A, 150), (B, 140)):
            f = load(t, 0)
            att = max(1, int(n * f[2] * (0.9 + 0.2 * sc.rng.random())))
            to = int(round(att * f[1]))
            rtt = 0.6 if f[2] == 1.0 else (1.1 if t < 420 else 4.8 + sc.rng.random() * 3)
            ag[node].connect_stats(t, sip, 8080, att, timed_out=to, rtt_ms=rtt)

    def story():
        yield 95
        hpa_scale_to(w, 95, hpa, 5, [A, B], 128)
        yield 215
        hpa_scale_to(w, 215, hpa, 9, [C], 131)
        yield FIX
        change(sc, FIX, "change.config.updated", {"cluster": CLUSTER, "namespace": "search"},
               {"kind": "HorizontalPodAutoscaler", "name": "search-api",
                "operation": "patch", "field": "spec.maxReplicas", "old": "6", "new": "12",
                "user": "platform-oncall"}, agent="k8s-audit", node=A)
        hpa.max_r = 12
        w.sync(FIX)
        yield FIX + 15
        hpa_scale_to(w, FIX + 15, hpa, 10, [A, B, C], 118)
        yield FIX + 135
        hpa.cpu_util = 71
        hpa.desired = 10
        w.sync(FIX + 135)

    w.spawn(story())
    w.run()
    lat = am.alert("SearchAPILatencyHigh", "critical",
                   {"namespace": "search", "service": "search-api", "team": "search"},
                   "search-api is slow", SEARCH_LAT.format(v="6.24"),
                   runbook="https://wiki.example.com/search/runbooks#latency")
    lat.fire(630).resolve(FIX + 190)
    maxed = am.alert("KubeHpaMaxedOut", "warning",
                     mon.ksm_labels(namespace="search", horizontalpodautoscaler="search-api"),
                     "HPA is running at max replicas",
                     f"HPA search/search-api has been running at max replicas for longer than 15 "
                     f"minutes on cluster {CLUSTER}.")
    maxed.fire(215 + 12 + 900).resolve(FIX + 15 + 14)
    for i, (p, ratio) in enumerate(zip(pods_of(sa)[:4], (0.4412, 0.3896, 0.4157, 0.3619))):
        cpu_throttling(am, w, p, ratio).fire(1050 + i * 0.2).resolve(FIX + 260)
    am.deliver()
    sc.expect("P2", "P2: slow response times — search-api p99 6.2 s > 5 s while its HPA is "
              "pinned at maxReplicas 6 (desired 9)",
              "autoscaling_limit", ent("HorizontalPodAutoscaler", "search", "search-api"),
              [ent("Deployment", "search", "search-api"), ent("Service", "search", "search-api")])


# =======================================================================================
# 44: a CronJob fails every run (expired partner API credential)
# =======================================================================================

INVOICE_TB = ("Traceback (most recent call last):\n  File \"/app/sync.py\", line 142, in <module>\n"
              "    main()\n  File \"/app/sync.py\", line 131, in main\n    resp.raise_for_status()\n"
              "  File \"/usr/local/lib/python3.12/site-packages/requests/models.py\", line 1024, in "
              "raise_for_status\n    raise HTTPError(http_error_msg, response=self)\n"
              "requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: "
              "https://api.ledgerly.example.com/v2/invoices?since=2026-11-27T09%3A40%3A00Z\n")


def cron_run(w, t, cj, nodes, ag, backoff_limit=2):
    """One scheduled run: the Job's pods each exit 1; after backoffLimit retries the Job
    fails (BackoffLimitExceeded) and the CronJob records it."""
    yield t
    ns = cj.ns
    sched_min = int((BASE.timestamp() + t) // 60)
    job = Job(w, ns, f"{cj.name}-{sched_min}", cj.name, t, cj.containers())
    job.cron_uid = cj.uid
    w.add(t, job)
    cj.last_schedule = t
    cj.active = [job]
    w.event(t, ("CronJob", ns, cj.name, cj.uid), "SuccessfulCreate", f"Created job {job.name}",
            component="cronjob-controller")
    w.sync(t)
    tt = t
    for attempt in range(backoff_limit + 1):
        labels = {"batch.kubernetes.io/controller-uid": job.uid,
                  "batch.kubernetes.io/job-name": job.name, "controller-uid": job.uid,
                  "job-name": job.name}
        p = Pod(w, ns, f"{job.name}-{w.sc.k8s_suffix(5)}", labels,
                ("batch/v1", "Job", job.name, job.uid), cj.containers(), created=tt,
                restart_policy="Never")
        w.create_pod(tt, p)
        w.event(tt, ("Job", ns, job.name, job.uid), "SuccessfulCreate", f"Created pod: {p.name}",
                component="job-controller")
        node = nodes[attempt % len(nodes)]
        yield from w.schedule(tt + 1, p, node, pull=False, ready_after=None)
        tf = w.sim.now + 6 + w.sc.rng.randint(0, 4)
        yield tf
        ag[node].exit(tf, p, exit_code=1, comm="python3")
        for c in p.containers:
            c.state = ("terminated", "Error", 1, c.state[1], tf, INVOICE_TB, c.cid)
            c.ready = False
        p.phase = "Failed"
        w.sync(tf)
        tt = tf + 10 * (2 ** attempt) + 1
        if attempt < backoff_limit:
            yield tt
    job.failed_at = tf + 1
    job.failed_reason = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    cj.active = []
    w.sync(tf + 1)
    w.event(tf + 1, ("Job", ns, job.name, job.uid), "BackoffLimitExceeded",
            "Job has reached the specified backoff limit", typ="Warning",
            component="job-controller")
    w.event(tf + 2, ("CronJob", ns, cj.name, cj.uid), "SawCompletedJob",
            f"Saw completed job: {job.name}, status: Failed", component="cronjob-controller")
    cj.runs.append((job, tf + 1))


@scenario("44-cronjob-fails-every-run",
          "billing's invoice-sync CronJob (every 10 minutes, backoffLimit 2, "
          "failedJobsHistoryLimit 3) fails each run: all three pods of every Job exit 1 with "
          "401 Unauthorized from the invoicing partner's API (its API key expired overnight). "
          "KubeJobFailed fires 15 minutes after each Job fails (job_name label; "
          "kube-state-metrics target labels); nothing else in the cluster is affected — "
          "invoices stop syncing",
          "kube-prometheus KubeJobFailed rule; synthetic")
def s44(sc):
    w, ag = xbase(sc)
    am = AM(sc)
    mon = Mon(w, [A, B, C], B)
    cj = w.add(0, CronJob(w, "billing", "invoice-sync", "*/10 * * * *",
                          img("billing/invoice-sync", "2.3.1"), "python3", -86400 * 120))
    cj.last_success = -3600 * 9 - 598
    cj.runs = []
    fe = shop(w, "frontend", 2, [A, C])
    cat = shop(w, "catalog", 2, [B, C])
    api = w.deploy("billing", "billing-api", 2, [A, B], img("billing/billing-api", "3.9.0"),
                   "billing-api")
    w.snapshot(0)
    END = 2460
    std_noise(w, ag, sc, resched=(500, cat, A, True),
              stats=(30, END - 60, [(A, api.service.cluster_ip, 8080, 120),
                                    (C, cat.service.cluster_ip, 8000, 200)], 180))
    for t in (3, 603, 1203, 1803):
        w.spawn(cron_run(w, t, cj, [B, C, A], ag))
    w.run()
    for job, failed in cj.runs:
        t_fire = failed + 15 + 900
        if t_fire < END - 330:
            am.alert("KubeJobFailed", "warning",
                     mon.ksm_labels(namespace="billing", job_name=job.name, condition="true"),
                     "Job failed to complete.",
                     f"Job billing/{job.name} failed to complete. Removing failed job after "
                     f"investigation should clear this alert on cluster {CLUSTER}.").fire(t_fire)
    am.deliver()
    sc.expect("P3", "P3: non-critical component failure — a batch job fails every run "
              "(invoices stop syncing to the partner); no user-facing service is affected",
              "job_failure", ent("CronJob", "billing", "invoice-sync"),
              [ent("Job", "billing", job.name) for job, _ in cj.runs])


# =======================================================================================
# 45: a node's root filesystem fills (outside any pod) -> DiskPressure evictions
# =======================================================================================


def ne_fs_alert(am, mon, node, name, sev, pct, summary, tail):
    lab = mon.ne_labels(node, device="/dev/nvme0n1p1", fstype="xfs", mountpoint="/")
    return am.alert(name, sev, lab, summary,
                    f"Filesystem on /dev/nvme0n1p1, mounted on /, at {node} has only "
                    f"{pct:.2f}% available space left{tail}")


@scenario("45-node-disk-pressure-evictions",
          "containerd debug logging, left on by a troubleshooting session, floods "
          "/var/log/messages on node-b (rotated daily): the root filesystem (nodefs and imagefs "
          "on one xfs volume) loses ~4.4 %/h. NodeFilesystemSpaceFillingUp warns (10.6 % left); "
          "8 minutes later the kubelet's nodefs.available < 10 % threshold trips: DiskPressure, "
          "image GC cannot free enough, and the kubelet evicts the five evictable pods on the "
          "node one after another (the space is not theirs, so evicting them does not help); "
          "replacements start on node-a/node-c, recommendations (1 replica) is unavailable for "
          "~15 s. An engineer truncates the log; the alert resolves, DiskPressure clears 5 "
          "minutes later. KubeNodePressure (info) reaches Tapio while the warning fires in the "
          "same namespace; KubeNodeEviction and InfoInhibitor are inhibited (default "
          "kube-prometheus Alertmanager config)",
          "kube-prometheus NodeFilesystemSpaceFillingUp / KubeNodePressure rules; kubelet "
          "node-pressure eviction (nodefs.available < 10 %)")
def s45(sc):
    w, ag = xbase(sc)
    am = AM(sc)
    mon = Mon(w, [A, B, C], A)
    fe = shop(w, "frontend", 3, [A, B, C])
    cat = shop(w, "catalog", 2, [B, C])
    rec = shop(w, "recommendations", 1, [B])
    cart = shop(w, "cart", 2, [B, A])
    rw = w.deploy("batch", "reports-worker", 1, [B], img("batch/reports-worker", "0.9.4"),
                  "python3", port=None, svc=False, req_cpu=None, req_mem=None, lim_mem=None,
                  qos="BestEffort")
    w.snapshot(0)
    END = 1800
    WARN, RATE = 60, 4.4 / 3600
    avail = lambda t: 10.6 - RATE * (t - WARN)  # noqa: E731  (percent of the root fs)
    PRESS = 555
    FIX = 1300
    rip = rec.service.cluster_ip
    std_noise(w, ag, sc, job=(150, C),
              stats=(30, END - 60, [(A, cat.service.cluster_ip, 8000, 200),
                                    (C, rip, 8080, 130)], 180))
    cap = 104845292 * 1024
    for t in (561, 861, 1161):
        fs_fill(ag[B], t, "/", "/dev/nvme0n1p1", "xfs", 1 - avail(t) / 100, cap * avail(t) / 100,
                0.0312, "warning")
    node_b = w.get("Node", None, B)
    victims = [(PRESS + 12, pods_of(rw)[0], "2316Ki", C),
               (PRESS + 27, pod_on(cat, B), "5436Ki", C),
               (PRESS + 41, pods_of(rec)[0], "1804Ki", A),
               (PRESS + 58, pod_on(cart, B), "9724Ki", A),
               (PRESS + 74, pod_on(fe, B), "3112Ki", C)]

    def story():
        yield 250
        w.event(250, ("Node", None, B, node_b.uid), "FreeDiskSpaceFailed",
                "Failed to garbage collect required amount of images. Attempted to free "
                "5394120704 bytes, but only found 1268776960 bytes eligible to free.",
                typ="Warning", host=B)
        yield PRESS
        node_b.set_cond(PRESS, "DiskPressure", "True", "KubeletHasDiskPressure",
                        "kubelet has disk pressure")
        node_b.add_taint(PRESS, "node.kubernetes.io/disk-pressure", "NoSchedule")
        w.event(PRESS, ("Node", None, B, node_b.uid), "NodeHasDiskPressure",
                f"Node {B} status is now: NodeHasDiskPressure", host=B)
        w.event(PRESS + 1, ("Node", None, B, node_b.uid), "EvictionThresholdMet",
                "Attempting to reclaim ephemeral-storage", typ="Warning", host=B)
        w.event(PRESS + 2, ("Node", None, B, node_b.uid), "FreeDiskSpaceFailed",
                "Failed to garbage collect required amount of images. Attempted to free "
                "5394120704 bytes, but only found 1268776960 bytes eligible to free.",
                typ="Warning", host=B)
        w.sync(PRESS)
        for t, p, using, to in victims:
            yield t
            c = p.containers[0]
            evict(w, t, p, resource="ephemeral-storage", using=using,
                  request="0", threshold="10484529Ki",
                  available=f"{int(cap * avail(t) / 100 / 1024)}Ki", replace_on=to)
        yield FIX
        change(sc, FIX, "change.node.maintenance", {"cluster": CLUSTER, "node": B},
               {"action": "containerd log_level debug -> info, truncated /var/log/messages "
                          "(58 GiB)", "user": "platform-oncall"}, agent="platform-ops", node=A)
        yield FIX + 300
        node_b.set_cond(FIX + 300, "DiskPressure", "False", "KubeletHasNoDiskPressure",
                        "kubelet has no disk pressure")
        node_b.remove_taint("node.kubernetes.io/disk-pressure")
        w.event(FIX + 300, ("Node", None, B, node_b.uid), "NodeHasNoDiskPressure",
                f"Node {B} status is now: NodeHasNoDiskPressure", host=B)
        w.sync(FIX + 300)

    w.spawn(story())
    # recommendations' only pod is gone for ~15 s: frontend's connects are refused
    for node in (A, C):
        ag[node].refused(PRESS + 46, pod_on(fe, node), rip, 8080, sc.rng.randint(3, 8))
    w.run()
    fill = ne_fs_alert(am, mon, B, "NodeFilesystemSpaceFillingUp", "warning", avail(WARN),
                       "Filesystem is predicted to run out of space within the next 24 hours.",
                       " and is filling up.")
    fill.fire(WARN).resolve(FIX + 34)
    am.alert("KubeNodePressure", "info",
             mon.ksm_labels(condition="DiskPressure", node=B, status="true"),
             "Node has as active Condition.",
             f"{B} on cluster {CLUSTER} has active Condition DiskPressure. This is caused by "
             f"resource usage exceeding eviction thresholds.").fire(PRESS + 14 + 600)
    am.deliver()
    sc.expect("P3", "P3: resource usage warning with intermittent unavailability — a node's "
              "disk crossed the eviction threshold and five pods were evicted and replaced "
              "elsewhere; only recommendations (1 replica) was unavailable, for ~15 s",
              "node_resource_exhaustion", "Node/node-b",
              [ent("Deployment", "shop", "recommendations"), ent("Deployment", "shop", "catalog"),
               ent("Deployment", "shop", "cart"), ent("Deployment", "shop", "frontend"),
               ent("Deployment", "batch", "reports-worker")])


# =======================================================================================
# 46: a healthy cluster's always-on and informational alerts
# =======================================================================================


@scenario("46-noise-always-on-alerts",
          "nothing is wrong. Watchdog (always firing), KubeletTooManyPods (info: node-d, a "
          "t3.small edge node, runs 11 of its 11 pods), InfoInhibitor (with and without a "
          "namespace), CPUThrottlingHigh (info) flapping on the ingress controllers, and one "
          "KubeAggregatedAPIErrors warning for v1beta1.metrics.k8s.io (FailedDiscoveryCheck "
          "for ten minutes while metrics-server stays Ready), resolved three minutes later. "
          "This cluster routes every alert to Tapio with no inhibit rules. Routine churn and "
          "clean connects around it — nothing should open an incident",
          "kube-prometheus Watchdog / InfoInhibitor / KubeletTooManyPods / CPUThrottlingHigh / "
          "KubeAggregatedAPIErrors rules")
def s46(sc):
    D = "node-d"
    w = XWorld(sc, A)
    for i, n in enumerate((A, B, C)):
        w.node(n, ip=f"10.0.{i + 1}.{21 + i * 13}", zone=ZONES[i], pod_cidr=f"10.1.{i}.0/24")
    nd = SizedNode(w, D, "10.0.1.60", ZONES[0], "10.1.3.0/24", cpu=2, mem_gi=2,
                   instance_type="t3.small", reserved_mem_mi=376,
                   labels={"node-role.example.com/edge": "true"})
    nd.max_pods = 11
    w.add(0, nd)
    w.ip_next[D] = 14
    ag = agents(w, A, B, C, D)
    w.coredns = add_coredns(w, [A, B])
    small = dict(req_cpu="100m", req_mem="128Mi", lim_mem="256Mi")
    mon = Mon(w, [A, B, C, D], D)
    kp = w.daemonset("kube-system", "kube-proxy", [A, B, C, D],
                     "registry.k8s.io/kube-proxy:v1.30.6", "kube-proxy", port=10249,
                     req_cpu="100m", req_mem="64Mi", lim_mem="128Mi", tolerations=TOLERATE_ALL)
    fb = w.daemonset("logging", "fluent-bit", [A, B, C, D],
                     "cr.fluentbit.io/fluent/fluent-bit:3.1.9", "fluent-bit", port=2020,
                     req_mem="64Mi", lim_mem="256Mi", tolerations=TOLERATE_ALL)
    ms = w.deploy("kube-system", "metrics-server", 1, [D],
                  "registry.k8s.io/metrics-server/metrics-server:v0.7.2", "metrics-server",
                  port=10250, port_name="https", req_cpu="100m", req_mem="200Mi", lim_mem="400Mi")
    ing = w.deploy("ingress-nginx", "ingress-nginx-controller", 2, [D, D],
                   "registry.k8s.io/ingress-nginx/controller:v1.11.3", "nginx", port=80,
                   req_cpu="100m", req_mem="90Mi", lim_mem="512Mi", lim_cpu="200m",
                   container_name="controller")
    fe = shop(w, "frontend", 3, [A, B, D], **small)
    cat = shop(w, "catalog", 3, [B, C, D], **small)
    cart = shop(w, "cart", 2, [D, A], **small)
    rev = shop(w, "reviews", 2, [D, A], **small)
    assert sum(1 for p in w.pods() if p.node == D) == 11
    w.snapshot(0)
    END = 2100
    w.spawn(reschedule(w, 330, cat, A, probe_blip=True, victim=pod_on(cat, B)))
    std_noise(w, ag, sc, job=(1250, C),
              stats=(30, END - 60, [(A, cat.service.cluster_ip, 8000, 230),
                                    (B, fe.service.cluster_ip, 3000, 260),
                                    (C, cart.service.cluster_ip, 8080, 120)], 180))
    w.run()
    # group "" (no namespace label): Watchdog, InfoInhibitor{} and KubeletTooManyPods
    watchdog(am := AM(sc)).fire(-86400 * 6 - 3307)
    info_inhibitor(am).fire(-771).resolve(903).fire(1090)
    am.alert("KubeletTooManyPods", "info",
             {"instance": f"{nd.ip}:10250", "node": D},
             "Kubelet is running at capacity.",
             f"Kubelet '{D}' is running at {hpct(1.0)} of its Pod capacity on cluster "
             f"{CLUSTER}.").fire(118)
    agg = am.alert("KubeAggregatedAPIErrors", "warning",
                   {"instance": "10.0.128.17:443", "name": "v1beta1.metrics.k8s.io",
                    "reason": "FailedDiscoveryCheck"},
                   "Kubernetes aggregated API has reported errors.",
                   f"Kubernetes aggregated API 10.0.128.17:443/v1beta1.metrics.k8s.io has "
                   f"reported FailedDiscoveryCheck errors on cluster {CLUSTER}.")
    agg.fire(895).resolve(1082)
    info_inhibitor(am, "ingress-nginx").fire(-420).resolve(1930)
    for p, eps in ((pods_of(ing)[0], [(480, 770, 0.3315), (1440, 1700, 0.2873)]),
                   (pods_of(ing)[1], [(505, 760, 0.2948)])):
        for f, r, ratio in eps:
            cpu_throttling(am, w, p, ratio).fire(f).resolve(r)
    am.deliver()


# =======================================================================================
# 47: a custom alert rule Tapio has never seen
# =======================================================================================


def checkout_alert(am, sev, ratio_text):
    return am.alert("CheckoutHighErrorRate", sev,
                    {"namespace": "shop", "service": "checkout", "team": "checkout",
                     "slo": "checkout-availability"},
                    "Checkout is returning 5xx",
                    f"5xx ratio is {ratio_text} over the last 5 minutes (threshold "
                    f"{'5%' if sev == 'critical' else '1%'}).",
                    runbook="https://wiki.example.com/checkout/runbooks#high-error-rate",
                    extra={"dashboard": "https://grafana.example.com/d/checkout-red"})


@scenario("47-custom-alert-checkout-errors",
          "the checkout team's own rule, not part of kube-prometheus: CheckoutHighErrorRate "
          "(labels namespace, service, team, slo; no numeric annotation) fires as a warning "
          "(\"5xx ratio is 3.1%\"), then critical 90 s later (\"5xx ratio is 12.3%\") and "
          "resolves 13 minutes later. Nothing else is wrong in sight: checkout's pods are "
          "Ready, no restart, no rollout, no config change, connects to checkout succeed — "
          "the alert must be understood from its labels and description alone, and its cause "
          "is not in the evidence",
          "custom Prometheus rule (team-owned recording rule over http_requests_total{code=~\"5..\"})")
def s47(sc):
    w, ag = xbase(sc)
    am = AM(sc)
    Mon(w, [A, B, C], C)
    co = shop(w, "checkout", 3, [A, B, C], revision=44)
    fe = shop(w, "frontend", 2, [A, B])
    cart = shop(w, "cart", 2, [B, C])
    cat = shop(w, "catalog", 2, [A, C])
    w.snapshot(0)
    END = 1500
    cip = co.service.cluster_ip
    std_noise(w, ag, sc, resched=(150, cat, B, True), job=(640, C),
              stats=(30, END - 60, [(A, cip, 8080, 180), (B, cip, 8080, 170),
                                    (C, cart.service.cluster_ip, 8080, 150)], 120))
    w.spawn(hpa_scale(w, 820, fe, 3, [C]))
    watchdog(am).renotify(-86400 * 2 - 1723.5, 610)
    w.run()
    warn = checkout_alert(am, "warning", "3.1%").fire(240)
    crit = checkout_alert(am, "critical", "12.3%").fire(330)
    crit.resolve(1110)
    warn.resolve(1141)
    am.deliver()
    sc.expect("P2", "P2: high error rate — checkout's 5xx ratio 12.3 % > 5 % (from the alert's "
              "description); nothing in the evidence explains it",
              "none", ent("Service", "shop", "checkout"), [ent("Deployment", "shop", "checkout")])


# =======================================================================================
# 48: etcd runs out of its space quota -> the API server rejects every write
# =======================================================================================


def static_pod(w, node, component, image, comm, port, started):
    n = w.get("Node", None, node)
    labels = {"component": component, "tier": "control-plane"}
    c = Container(component, image, comm, req_cpu="250m" if component != "etcd" else "100m",
                  req_mem="100Mi", lim_mem=None, port=None,
                  liveness={"httpGet": {"host": n.ip, "path": "/livez" if component != "etcd"
                                        else "/health?exclude=NOSPACE&serializable=true",
                                        "port": port, "scheme": "HTTPS" if component != "etcd"
                                        else "HTTP"},
                            "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 15,
                            "failureThreshold": 8})
    c.readiness = None
    p = Pod(w, "kube-system", f"{component}-{node}", labels, ("v1", "Node", node, n.uid), [c],
            created=started, qos="Burstable", priority_class="system-node-critical",
            annotations={"kubernetes.io/config.hash": w.sc.hexstr(32),
                         "kubernetes.io/config.mirror": w.sc.hexstr(32),
                         "kubernetes.io/config.seen": at(started - 3).replace("Z", ".000000000Z"),
                         "kubernetes.io/config.source": "file"},
            tolerations=[{"operator": "Exists", "effect": "NoExecute"}])
    w._running_pod(p, node, started)
    p.ip = n.ip  # hostNetwork
    w.add(0, p)
    return p


def etcd_labels(pod, **kw):
    d = {"container": "etcd", "endpoint": "http-metrics", "instance": f"{pod.ip}:2381",
         "job": "kube-etcd", "namespace": "kube-system", "pod": pod.name, "service": "kube-etcd"}
    d.update(kw)
    return d


@scenario("48-etcd-nospace-control-plane",
          "kubeadm cluster, three control-plane nodes. A policy engine's background scans have "
          "been writing report objects for days and etcd's database nears its default 2 GiB "
          "quota: etcdExcessiveDatabaseGrowth, then etcdDatabaseQuotaLowSpace (> 95 %) on all "
          "three members. The leader (etcd-cp-1) raises the NOSPACE alarm: every write "
          "(Txn) fails with 'mvcc: database space exceeded', the API server returns 500 for "
          "writes; the leader kube-controller-manager and kube-scheduler lose their leases "
          "and exit, pod statuses and events can no longer be written (the watch goes "
          "quiet). etcdHighNumberOfFailedGRPCRequests and KubeAPIErrorBudgetBurn (critical) "
          "follow. Running workloads keep serving. 15 minutes later an engineer compacts, "
          "defragments and disarms the alarm; writes resume and everything resolves",
          "etcd mixin etcdDatabaseQuotaLowSpace / etcdExcessiveDatabaseGrowth / "
          "etcdHighNumberOfFailedGRPCRequests and kube-prometheus KubeAPIErrorBudgetBurn rules; "
          "Mattermost, 'Troubleshooting a Kubernetes etcd server' (mvcc: database space "
          "exceeded); k8s.co.il, 'How etcd bloat took down our Kubernetes control plane' "
          "(policy reports)")
def s48(sc):
    CPS = ("cp-1", "cp-2", "cp-3")
    cp_kw = {"labels": {"node-role.kubernetes.io/control-plane": ""},
             "taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
             "instance_type": "m6i.xlarge", "cpu": 4, "mem_gi": 16}
    w, ag = xbase(sc, nodes=CPS + (A, B, C), coredns_nodes=[A, B],
                  node_kw={n: dict(cp_kw) for n in CPS})
    am = AM(sc)
    mon = Mon(w, list(CPS + (A, B, C)), C)
    mon.ne.tolerations = TOLERATE_ALL
    for p in mon.ne.pods():
        p.tolerations = TOLERATE_ALL
    pods = {}
    for i, n in enumerate(CPS):
        st = -86400 * 41 + i * 95
        pods[("etcd", n)] = static_pod(w, n, "etcd", "registry.k8s.io/etcd:3.5.15-0", "etcd",
                                       2381, st)
        pods[("apiserver", n)] = static_pod(w, n, "kube-apiserver",
                                            "registry.k8s.io/kube-apiserver:v1.30.6",
                                            "kube-apiserver", 6443, st + 20)
        pods[("kcm", n)] = static_pod(w, n, "kube-controller-manager",
                                      "registry.k8s.io/kube-controller-manager:v1.30.6",
                                      "kube-controller-manager", 10257, st + 22)
        pods[("sched", n)] = static_pod(w, n, "kube-scheduler",
                                        "registry.k8s.io/kube-scheduler:v1.30.6",
                                        "kube-scheduler", 10259, st + 23)
    etcd_svc = w.service("kube-system", "kube-etcd", {"component": "etcd"},
                         [("http-metrics", 2381, 2381, "TCP")], headless=True)
    fe = shop(w, "frontend", 2, [A, B])
    cat = shop(w, "catalog", 2, [B, C])
    w.snapshot(0)
    END = 2400
    NOSPACE, FIX = 920, 1800
    std_noise(w, ag, sc, resched=(400, cat, A, True),
              stats=(30, END - 60, [(A, cat.service.cluster_ip, 8000, 220),
                                    (B, fe.service.cluster_ip, 3000, 240)], 180))
    etcd = [pods[("etcd", n)] for n in CPS]
    kcm1, sched2 = pods[("kcm", "cp-1")], pods[("sched", "cp-2")]

    def story():
        yield NOSPACE + 11
        # leader election: the lease renewal (a write) fails until the renew deadline
        for p, t in ((kcm1, NOSPACE + 11), (sched2, NOSPACE + 13)):
            e, enr, c = ag[p.node]._pod_entity(p)
            e.pop("workload", None)  # a static (mirror) pod: owned by its Node, no workload
            attrs = dict(enr)
            attrs.update({"pid": ag[p.node]._pid(), "comm": c.comm, "count": 1, "exit_code": 1,
                          "observer": "ebpf"})
            sc.emit(t, ag[p.node].id, "kernel.container.abnormal_exit", "warning", e, attrs)
        yield FIX
        change(sc, FIX, "change.cluster.maintenance", {"cluster": CLUSTER},
               {"action": "etcdctl compact 1184733912; etcdctl defrag --cluster; etcdctl alarm "
                          "disarm", "component": "etcd", "user": "platform-oncall"},
               agent="platform-ops", node="cp-1")
        yield FIX + 4
        # writes work again: the kubelets report the restarts, the controllers lead again
        for p, t_exit, msg in ((kcm1, NOSPACE + 11, "leaderelection lost"),
                               (sched2, NOSPACE + 13, "leaderelection lost")):
            c = p.containers[0]
            c.last = ("terminated", "Error", 1, c.state[1], t_exit,
                      f'E1127 10:15:{(t_exit - 900):02d}.402113       1 leaderelection.go:340] '
                      f'error retrieving resource lock kube-system/{c.name}: etcdserver: mvcc: '
                      f'database space exceeded\nF1127 10:15:{(t_exit - 900):02d}.402290       1 '
                      f'{"controllermanager.go:335" if "controller" in c.name else "server.go:250"}] '
                      f'{msg}', c.cid)
            c.restarts += 1
            c.state = ("running", t_exit + 2)
            c.cid = sc.hexstr(64)
        w.sync(FIX + 4)
        for t, lease, holder, comp in ((FIX + 6, "kube-controller-manager", "cp-2",
                                        "kube-controller-manager"),
                                       (FIX + 7, "kube-scheduler", "cp-1", "default-scheduler")):
            w.event(t, ("Lease", "kube-system", lease, None), "LeaderElection",
                    f"{holder}_{sc.uuid()} became leader", component=comp)
            sc.items[-1][3]["object"]["involvedObject"]["apiVersion"] = "coordination.k8s.io/v1"

    w.spawn(story())
    w.run()
    for i, p in enumerate(etcd):
        am.alert("etcdExcessiveDatabaseGrowth", "warning", etcd_labels(p),
                 "etcd cluster database growing very fast.",
                 f'etcd cluster "kube-etcd": Predicting running out of disk space in the next '
                 f'four hours, based on write observations within the past four hours on etcd '
                 f'instance {p.ip}:2381, please check as it might be disruptive.',
                 runbook=False).fire(20 + i * 4).resolve(FIX + 41)
    for i, p in enumerate(etcd):
        am.alert("etcdDatabaseQuotaLowSpace", "critical", etcd_labels(p),
                 "etcd cluster database is running full.",
                 f'etcd cluster "kube-etcd": database size exceeds the defined quota on etcd '
                 f'instance {p.ip}:2381, please defrag or increase the quota as the writes to '
                 f'etcd will be disabled when it is full.',
                 runbook=False).fire(300 + (0 if i == 0 else 30)).resolve(FIX + 38 + i * 9)
    for i, (p, v) in enumerate(zip(etcd, (91.30434782608695, 90.47619047619048,
                                          89.65517241379311))):
        am.alert("etcdHighNumberOfFailedGRPCRequests", "critical",
                 etcd_labels(p, grpc_method="Txn", grpc_service="etcdserverpb.KV"),
                 "etcd cluster has high number of failed grpc requests.",
                 f'etcd cluster "kube-etcd": {gofloat(v)}% of requests for Txn failed on etcd '
                 f'instance {p.ip}:2381.', runbook=False
                 ).fire(NOSPACE + 330 + i * 0.3).resolve(FIX + 290 + i * 0.2)
    am.alert("KubeAPIErrorBudgetBurn", "critical", {"long": "1h", "short": "5m"},
             "The Kube API server is burning too much error budget.",
             f"The Kube API server is burning too much error budget on cluster {CLUSTER}."
             ).fire(NOSPACE + 690).resolve(FIX + 270)
    am.deliver()
    sc.expect("P2", "P2: partial functionality unavailable — the Kubernetes API rejects every "
              "write for 15 minutes (no deploys, scaling, rescheduling or leader election); "
              "reads and running workloads are unaffected",
              "control_plane_failure", ent("Pod", "kube-system", "etcd-cp-1"),
              [ent("Pod", "kube-system", "etcd-cp-2"), ent("Pod", "kube-system", "etcd-cp-3"),
               ent("Service", "kube-system", "kube-etcd"),
               ent("Pod", "kube-system", "kube-apiserver-cp-1"),
               ent("Pod", "kube-system", "kube-apiserver-cp-2"),
               ent("Pod", "kube-system", "kube-apiserver-cp-3"),
               ent("Pod", "kube-system", "kube-controller-manager-cp-1"),
               ent("Pod", "kube-system", "kube-scheduler-cp-2")])
