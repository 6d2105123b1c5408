"""Held-out scenarios 49-59: the Kubernetes vocabulary real clusters emit.

Warning Events with their real reasons and message texts (kubelet, scheduler, controllers,
CNI plugins, CSI drivers, node-problem-detector), and the object kinds a cause can sit on
(PersistentVolumeClaim, StorageClass, ResourceQuota, CronJob, MutatingWebhookConfiguration,
a zone's subnet). Each scenario names its public source and how it was adapted.

Loaded by generate.py (`gen_*.py` beside it); registers with @scenario like generate.py.
New object kinds are rendered as a watch returns them; `KWorld` snapshots and syncs them
alongside the kinds generate.py knows.
"""

from generate import *  # noqa: F401,F403
from generate import (BASE, CLUSTER, WATCH, Model, Node, Pod, Job, Container, World,  # noqa: F401
                      Service, EndpointSlice, ReplicaSet, Alert)

import base64 as _b64

from generate import (KIND_ORDER, SYNC_ORDER, DERIVED_DELAY, agents, add_coredns, img, pods_of,
                      pod_on, ent, wl, every, alive, change, crash_loop, healthy_stats,
                      stats_series, alert_flap, job_noise, reschedule, new_revision, scale_rs,
                      replace_pod, evict, unschedulable, at, unix_ms, mib, gib)

ECR = "602401143452.dkr.ecr.eu-west-1.amazonaws.com"
AWS_NODE_IMG = f"{ECR}/amazon-k8s-cni:v1.18.6-eksbuild.1"
PAUSE_IMG = f"{ECR}/eks/pause:3.5"

# ---------------------------------------------------------------------------------------
# World with the extra kinds
# ---------------------------------------------------------------------------------------

EXTRA_API = {"PersistentVolumeClaim": "v1", "PersistentVolume": "v1", "Namespace": "v1",
             "ResourceQuota": "v1", "StorageClass": "storage.k8s.io/v1",
             "VolumeAttachment": "storage.k8s.io/v1",
             "MutatingWebhookConfiguration": "admissionregistration.k8s.io/v1",
             "ValidatingWebhookConfiguration": "admissionregistration.k8s.io/v1",
             "CronJob": "batch/v1", "HorizontalPodAutoscaler": "autoscaling/v2"}

FULL_ORDER = ["Namespace", "Node", "StorageClass", "PersistentVolume",
              "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "ConfigMap",
              "Secret", "ResourceQuota", "Service", "PersistentVolumeClaim", "Deployment",
              "StatefulSet", "DaemonSet", "CronJob", "HorizontalPodAutoscaler", "Job",
              "ReplicaSet", "Pod", "EndpointSlice", "VolumeAttachment"]
EXTRA_SYNC = ["Namespace", "StorageClass", "PersistentVolume", "MutatingWebhookConfiguration",
              "ValidatingWebhookConfiguration", "PersistentVolumeClaim", "VolumeAttachment",
              "ResourceQuota", "HorizontalPodAutoscaler", "CronJob"]
EXTRA_DELAY = {"ResourceQuota": 1, "HorizontalPodAutoscaler": 1, "CronJob": 1}


class KWorld(World):
    """World that also snapshots and syncs the kinds defined in this module."""

    def _entity(self, m):
        if m.kind == "Node":
            return {"cluster": self.sc.cluster, "node": m.name}
        if not m.namespaced:
            return {"cluster": self.sc.cluster}
        return {"cluster": self.sc.cluster, "namespace": m.ns}

    def snapshot(self, t=0):
        self.now = t
        for kind in FULL_ORDER:
            for m in list(self.objs.values()):
                if m.kind == kind:
                    obj = self._emit_obj(t, "added", m)
                    self.last[m.key()] = self._canon(obj)
        self.live = True

    def flush(self, t):
        World.flush(self, t)
        for kind in EXTRA_SYNC:
            for m in list(self.objs.values()):
                if m.kind != kind:
                    continue
                obj = m.render()
                c = self._canon(obj)
                if self.last.get(m.key()) != c:
                    self.now = t + EXTRA_DELAY.get(kind, 0)
                    obj = m.render()
                    c = self._canon(obj)
                    self._emit_obj(self.now, "modified", m, obj)
                    self.last[m.key()] = c
                    self.now = t

    def event(self, t, involved, reason, message, typ="Normal", component="kubelet",
              host=None, field_path=None, count_as_new=False):
        n = len(self.sc.items)
        World.event(self, t, involved, reason, message, typ=typ, component=component,
                    host=host, field_path=field_path, count_as_new=count_as_new)
        api = EXTRA_API.get(involved[0])
        if api:
            key = (involved[0], involved[1], involved[2], reason, message, component)
            self.events[key]["involvedObject"]["apiVersion"] = api
            for item in self.sc.items[n:]:
                item[3]["object"]["involvedObject"]["apiVersion"] = api


def ref(m):
    return (m.kind, getattr(m, "ns", None) if m.namespaced else None, m.name, m.uid)


def aws_name(ip, region="eu-west-1"):
    return f"ip-{ip.replace('.', '-')}.{region}.compute.internal"


def kcluster(sc, specs, coredns_nodes=None, **node_kw):
    """specs: [(name, ip, zone, pod_cidr)] -> (world, agents, names)."""
    w = KWorld(sc, specs[0][0])
    for name, ip, zone, cidr in specs:
        w.node(name, ip=ip, zone=zone, pod_cidr=cidr, **node_kw)
    names = [s[0] for s in specs]
    ag = agents(w, *names)
    w.coredns = add_coredns(w, coredns_nodes or names[:2])
    return w, ag, names


# ---------------------------------------------------------------------------------------
# Quantities
# ---------------------------------------------------------------------------------------


def cpu_m(q):
    q = str(q)
    return int(q[:-1]) if q.endswith("m") else int(float(q) * 1000)


def mem_b(q):
    q = str(q)
    for suf, mul in (("Ki", 1024), ("Mi", 1024 ** 2), ("Gi", 1024 ** 3)):
        if q.endswith(suf):
            return int(float(q[:-2]) * mul)
    return int(q)


def fmt_cpu(m):
    return str(m // 1000) if m % 1000 == 0 else f"{m}m"


def fmt_mem(b):
    if b % (1024 ** 3) == 0:
        return f"{b // 1024 ** 3}Gi"
    return f"{b // 1024 ** 2}Mi"


# ---------------------------------------------------------------------------------------
# New object kinds
# ---------------------------------------------------------------------------------------


class Namespace(Model):
    kind = "Namespace"
    namespaced = False

    def __init__(self, w, name, labels=None, created=-86400 * 400):
        self.w, self.name, self.uid = w, name, w.sc.uuid()
        self.labels = {"kubernetes.io/metadata.name": name}
        self.labels.update(labels or {})
        self.created = created

    def render(self):
        return {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": self.name, "uid": self.uid, "resourceVersion": "",
                             "creationTimestamp": at(self.created), "labels": dict(self.labels)},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


class StorageClass(Model):
    kind = "StorageClass"
    namespaced = False

    def __init__(self, w, name, provisioner, parameters, binding="WaitForFirstConsumer",
                 created=-86400 * 300, default=False, annotations=None):
        self.w, self.name, self.uid = w, name, w.sc.uuid()
        self.provisioner, self.parameters, self.binding = provisioner, dict(parameters), binding
        self.created, self.default = created, default
        self.annotations = dict(annotations or {})

    def render(self):
        ann = dict(self.annotations)
        if self.default:
            ann["storageclass.kubernetes.io/is-default-class"] = "true"
        md = {"name": self.name, "uid": self.uid, "resourceVersion": "",
              "creationTimestamp": at(self.created)}
        if ann:
            md["annotations"] = ann
        return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": md,
                "provisioner": self.provisioner, "parameters": dict(self.parameters),
                "reclaimPolicy": "Delete", "volumeBindingMode": self.binding,
                "allowVolumeExpansion": True}


class PersistentVolumeClaim(Model):
    kind = "PersistentVolumeClaim"

    def __init__(self, w, ns, name, storage_class, size, provisioner, labels=None,
                 created=-86400 * 200):
        self.w, self.ns, self.name, self.uid = w, ns, name, w.sc.uuid()
        self.storage_class, self.size, self.provisioner = storage_class, size, provisioner
        self.labels = dict(labels or {})
        self.created = created
        self.volume = None  # PV name when bound
        self.selected_node = None

    def render(self):
        ann = {"volume.beta.kubernetes.io/storage-provisioner": self.provisioner,
               "volume.kubernetes.io/storage-provisioner": self.provisioner}
        if self.volume:
            ann["pv.kubernetes.io/bind-completed"] = "yes"
            ann["pv.kubernetes.io/bound-by-controller"] = "yes"
        if self.selected_node:
            ann["volume.kubernetes.io/selected-node"] = self.selected_node
        md = {"name": self.name, "namespace": self.ns, "uid": self.uid, "resourceVersion": "",
              "creationTimestamp": at(self.created), "annotations": ann,
              "finalizers": ["kubernetes.io/pvc-protection"]}
        if self.labels:
            md["labels"] = dict(self.labels)
        spec = {"accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": self.size}},
                "storageClassName": self.storage_class, "volumeMode": "Filesystem"}
        if self.volume:
            spec["volumeName"] = self.volume
            status = {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                      "capacity": {"storage": self.size}}
        else:
            status = {"phase": "Pending"}
        return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": md,
                "spec": spec, "status": status}


class PersistentVolume(Model):
    kind = "PersistentVolume"
    namespaced = False

    def __init__(self, w, pvc, zone=None, node=None, local_path=None, created=None,
                 handle=None):
        self.w, self.pvc = w, pvc
        self.name = f"pvc-{pvc.uid}"
        self.uid = w.sc.uuid()
        self.zone, self.node, self.local_path = zone, node, local_path
        self.created = pvc.created + 4 if created is None else created
        self.handle = handle or f"vol-0{w.sc.hexstr(16)}"
        pvc.volume = self.name

    def render(self):
        pvc = self.pvc
        md = {"name": self.name, "uid": self.uid, "resourceVersion": "",
              "creationTimestamp": at(self.created),
              "annotations": {"pv.kubernetes.io/provisioned-by": pvc.provisioner},
              "finalizers": ["kubernetes.io/pv-protection"]}
        spec = {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": pvc.size},
                "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                             "name": pvc.name, "namespace": pvc.ns, "uid": pvc.uid},
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": pvc.storage_class, "volumeMode": "Filesystem"}
        if self.local_path:
            md["annotations"]["openebs.io/cas-type"] = "local-hostpath"
            spec["local"] = {"fsType": "", "path": self.local_path}
            spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [self.node]}]}]}}
        else:
            md["finalizers"].append("external-attacher/ebs-csi-aws-com")
            md["annotations"]["volume.kubernetes.io/provisioner-deletion-secret-name"] = ""
            md["annotations"]["volume.kubernetes.io/provisioner-deletion-secret-namespace"] = ""
            spec["csi"] = {"driver": "ebs.csi.aws.com", "fsType": "ext4",
                           "volumeHandle": self.handle,
                           "volumeAttributes": {"storage.kubernetes.io/csiProvisionerIdentity":
                                                "1761204018835-8081-ebs.csi.aws.com"}}
            spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "topology.kubernetes.io/zone", "operator": "In",
                 "values": [self.zone]}]}]}}
        return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": md, "spec": spec,
                "status": {"phase": "Bound", "lastPhaseTransitionTime": at(self.created + 1)}}


class VolumeAttachment(Model):
    kind = "VolumeAttachment"
    namespaced = False

    def __init__(self, w, pv, node, node_id, created):
        self.w, self.pv, self.node, self.node_id = w, pv, node, node_id
        self.name = "csi-" + w.sc.hexstr(64)
        self.uid = w.sc.uuid()
        self.created = created
        self.attached = False
        self.attach_error = None  # (t, message)
        self.detach_error = None
        self.deletion = None

    def render(self):
        md = {"name": self.name, "uid": self.uid, "resourceVersion": "",
              "creationTimestamp": at(self.created),
              "annotations": {"csi.alpha.kubernetes.io/node-id": self.node_id},
              "finalizers": ["external-attacher/ebs-csi-aws-com"]}
        if self.deletion is not None:
            md["deletionTimestamp"] = at(self.deletion)
            md["deletionGracePeriodSeconds"] = 0
        status = {"attached": self.attached}
        if self.attached:
            status["attachmentMetadata"] = {"devicePath": "/dev/xvdaa"}
        if self.attach_error:
            status["attachError"] = {"time": at(self.attach_error[0]),
                                     "message": self.attach_error[1]}
        if self.detach_error:
            status["detachError"] = {"time": at(self.detach_error[0]),
                                     "message": self.detach_error[1]}
        return {"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment", "metadata": md,
                "spec": {"attacher": "ebs.csi.aws.com", "nodeName": self.node,
                         "source": {"persistentVolumeName": self.pv.name}},
                "status": status}


class ResourceQuota(Model):
    kind = "ResourceQuota"

    def __init__(self, w, ns, name, hard, created=-86400 * 90):
        self.w, self.ns, self.name, self.uid = w, ns, name, w.sc.uuid()
        self.hard = dict(hard)
        self.created = created

    def used(self):
        pods = [p for p in self.w.pods() if p.ns == self.ns and p.active()]
        u = {}
        for k in self.hard:
            if k == "pods":
                u[k] = str(len(pods))
            elif k == "requests.cpu":
                u[k] = fmt_cpu(sum(cpu_m(c.req_cpu or "0") for p in pods for c in p.containers))
            elif k == "requests.memory":
                u[k] = fmt_mem(sum(mem_b(c.req_mem or "0") for p in pods for c in p.containers))
            elif k == "limits.memory":
                u[k] = fmt_mem(sum(mem_b(c.lim_mem or "0") for p in pods for c in p.containers))
        return u

    def render(self):
        return {"apiVersion": "v1", "kind": "ResourceQuota",
                "metadata": {"name": self.name, "namespace": self.ns, "uid": self.uid,
                             "resourceVersion": "", "creationTimestamp": at(self.created)},
                "spec": {"hard": dict(self.hard)},
                "status": {"hard": dict(self.hard), "used": self.used()}}


class MutatingWebhookConfiguration(Model):
    kind = "MutatingWebhookConfiguration"
    namespaced = False

    def __init__(self, w, name, webhook, svc_ns, svc_name, path, ns_selector, ca_pem,
                 created=-86400 * 365, labels=None):
        self.w, self.name, self.uid = w, name, w.sc.uuid()
        self.webhook, self.svc_ns, self.svc_name, self.path = webhook, svc_ns, svc_name, path
        self.ns_selector = dict(ns_selector)
        self.ca_pem = ca_pem
        self.created = created
        self.labels = dict(labels or {})
        self.generation = 1

    def render(self):
        md = {"name": self.name, "uid": self.uid, "resourceVersion": "",
              "generation": self.generation, "creationTimestamp": at(self.created)}
        if self.labels:
            md["labels"] = dict(self.labels)
        return {"apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration", "metadata": md,
                "webhooks": [{
                    "name": self.webhook, "admissionReviewVersions": ["v1", "v1beta1"],
                    "clientConfig": {"service": {"name": self.svc_name,
                                                 "namespace": self.svc_ns,
                                                 "path": self.path, "port": 443},
                                     "caBundle": _b64.b64encode(self.ca_pem.encode()).decode()},
                    "failurePolicy": "Fail", "matchPolicy": "Equivalent",
                    "namespaceSelector": {"matchLabels": dict(self.ns_selector)},
                    "objectSelector": {}, "reinvocationPolicy": "Never",
                    "rules": [{"apiGroups": [""], "apiVersions": ["v1"],
                               "operations": ["CREATE"], "resources": ["pods"], "scope": "*"}],
                    "sideEffects": "None", "timeoutSeconds": 30}]}


class HorizontalPodAutoscaler(Model):
    kind = "HorizontalPodAutoscaler"

    def __init__(self, w, dep, min_r, max_r, cpu_util=70, created=-86400 * 60):
        self.w, self.dep, self.ns, self.name = w, dep, dep.ns, dep.name
        self.uid = w.sc.uuid()
        self.min_r, self.max_r, self.cpu_util = min_r, max_r, cpu_util
        self.created = created
        self.current_util = 48
        self.last_scale = -3600 * 5

    def render(self):
        cur = len([p for p in self.dep.pods() if p.active()])
        return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": self.name, "namespace": self.ns, "uid": self.uid,
                             "resourceVersion": "", "creationTimestamp": at(self.created)},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                            "name": self.dep.name},
                         "minReplicas": self.min_r, "maxReplicas": self.max_r,
                         "metrics": [{"type": "Resource", "resource": {
                             "name": "cpu", "target": {"type": "Utilization",
                                                       "averageUtilization": self.cpu_util}}}]},
                "status": {"currentReplicas": cur, "desiredReplicas": self.dep.replicas,
                           "lastScaleTime": at(self.last_scale),
                           "currentMetrics": [{"type": "Resource", "resource": {
                               "name": "cpu", "current": {"averageUtilization": self.current_util,
                                                          "averageValue": f"{self.current_util * 5}m"}}}],
                           "conditions": [
                               {"type": "AbleToScale", "status": "True",
                                "lastTransitionTime": at(self.created + 60),
                                "reason": "ReadyForNewScale",
                                "message": "recommended size matches current size"},
                               {"type": "ScalingActive", "status": "True",
                                "lastTransitionTime": at(self.created + 60),
                                "reason": "ValidMetricFound",
                                "message": "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"},
                               {"type": "ScalingLimited", "status": "False",
                                "lastTransitionTime": at(self.created + 60),
                                "reason": "DesiredWithinRange",
                                "message": "the desired count is within the acceptable range"}]}}


class CronJob(Model):
    kind = "CronJob"

    def __init__(self, w, ns, name, schedule, containers, backoff_limit=6,
                 created=-86400 * 120, last_schedule=None, last_success=None):
        self.w, self.ns, self.name, self.uid = w, ns, name, w.sc.uuid()
        self.schedule, self.containers = schedule, containers
        self.backoff_limit = backoff_limit
        self.created = created
        self.last_schedule, self.last_success = last_schedule, last_success
        self.jobs = []

    def render(self):
        status = {}
        active = [j for j in self.jobs if j.key() in self.w.objs
                  and j.complete_at is None and j.failed_at is None]
        if active:
            status["active"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": j.name,
                                 "namespace": self.ns, "uid": j.uid} for j in active]
        if self.last_schedule is not None:
            status["lastScheduleTime"] = at(self.last_schedule)
        if self.last_success is not None:
            status["lastSuccessfulTime"] = at(self.last_success)
        return {"apiVersion": "batch/v1", "kind": "CronJob",
                "metadata": {"name": self.name, "namespace": self.ns, "uid": self.uid,
                             "resourceVersion": "", "generation": 2,
                             "creationTimestamp": at(self.created)},
                "spec": {"schedule": self.schedule, "concurrencyPolicy": "Forbid",
                         "suspend": False, "successfulJobsHistoryLimit": 3,
                         "failedJobsHistoryLimit": 3,
                         "jobTemplate": {"spec": {
                             "backoffLimit": self.backoff_limit,
                             "template": {"spec": {
                                 "containers": [c.spec() for c in self.containers],
                                 "restartPolicy": "Never"}}}}},
                "status": status}


class CronRunJob(Job):
    """A Job owned by a CronJob object of this module (its uid, its backoffLimit)."""

    def __init__(self, w, cron, t, containers):
        sched = int((BASE.timestamp() + t) // 60)
        Job.__init__(self, w, cron.ns, f"{cron.name}-{sched}", cron.name, t, containers)
        self.cron_uid = cron.uid
        self.backoff_limit = cron.backoff_limit

    def render(self):
        d = Job.render(self)
        d["spec"]["backoffLimit"] = self.backoff_limit
        return d


class VolPod(Pod):
    """A pod with a PersistentVolumeClaim volume mounted in its first container."""

    def render(self):
        d = Pod.render(self)
        d["spec"]["volumes"].insert(0, {"name": "data", "persistentVolumeClaim":
                                        {"claimName": self.claim}})
        c = d["spec"]["containers"][0]
        c.setdefault("volumeMounts", []).insert(0, {"name": "data", "mountPath": self.mount})
        return d


def with_claim(pod, claim, mount):
    pod.__class__ = VolPod
    pod.claim, pod.mount = claim, mount
    return pod


def sts_with_claims(sts, storage_class, size, mount):
    """Give a StatefulSet volumeClaimTemplates (render) and its pods their claims."""
    base_render = type(sts).render

    class _S(type(sts)):
        def render(self):
            d = base_render(self)
            c = d["spec"]["template"]["spec"]["containers"][0]
            c.setdefault("volumeMounts", []).insert(0, {"name": "data", "mountPath": mount})
            d["spec"]["volumeClaimTemplates"] = [{
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                         "resources": {"requests": {"storage": size}},
                         "volumeMode": "Filesystem"},
                "status": {"phase": "Pending"}}]
            d["spec"]["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": "Retain",
                                                                 "whenScaled": "Retain"}
            return d

    _S.__name__ = "StatefulSet"
    sts.__class__ = _S
    for p in sts.pods():
        with_claim(p, f"data-{p.name}", mount)
    return sts


class NPDNode(Node):
    """An Ubuntu EKS node with node-problem-detector's kernel-monitor conditions."""

    def render(self):
        d = Node.render(self)
        d["status"]["nodeInfo"].update({"osImage": "Ubuntu 22.04.5 LTS",
                                        "kernelVersion": "6.8.0-1019-aws",
                                        "containerRuntimeVersion": "containerd://1.7.22"})
        extra = []
        for typ in ("KernelDeadlock", "ReadonlyFilesystem", "XfsShutdown"):
            s, r, m, since = self.npd[typ]
            extra.append({"type": typ, "status": s, "lastHeartbeatTime": at(self.npd_hb),
                          "lastTransitionTime": at(since), "reason": r, "message": m})
        d["status"]["conditions"] = extra + d["status"]["conditions"]
        return d


def npd_node(n):
    n.__class__ = NPDNode
    since = n.created + 90
    n.npd = {"KernelDeadlock": ["False", "KernelHasNoDeadlock", "kernel has no deadlock", since],
             "ReadonlyFilesystem": ["False", "FilesystemIsNotReadOnly",
                                    "Filesystem is not read-only", since],
             "XfsShutdown": ["False", "XfsHasNotShutDown", "XFS has not shutdown", since]}
    n.npd_hb = -240
    return n


# ---------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------

SANDBOX_GAPS = [12, 14, 19, 27, 40, 60, 90, 120, 150, 180, 240, 300]


def repeated_event(w, involved, reason, times, message, typ="Warning", component="kubelet",
                   host=None, distinct=4, alive_fn=None):
    """An event the component repeats; when each occurrence carries its own detail (a new
    sandbox id, the current time), the first `distinct` are separate Events and the event
    correlator then folds the rest into one "(combined from similar events)" Event whose
    count grows."""
    combined = None
    first = None
    for i, tt in enumerate(times):
        yield tt
        if alive_fn and not alive_fn():
            return
        msg = message(tt) if callable(message) else message
        first = msg if first is None else first
        if i < distinct or (msg == first and combined is None):
            # identical repeats are simply counted by the event recorder
            w.event(tt, involved, reason, msg, typ=typ, component=component, host=host)
        else:
            if combined is None:
                combined = "(combined from similar events): " + msg
            w.event(tt, involved, reason, combined, typ=typ, component=component, host=host)


def times_from(t0, t_end, gaps=SANDBOX_GAPS):
    out, t, i = [], t0, 0
    while t <= t_end:
        out.append(t)
        t += gaps[min(i, len(gaps) - 1)]
        i += 1
    return out


def bind_without_sandbox(w, t, pod, node):
    """Scheduled, but the kubelet cannot create the pod sandbox: ContainerCreating, no IP."""
    pod.node = node
    pod.sched = ("True",)
    pod.start_time = t
    pod.ip = None
    for c in pod.containers:
        c.state = ("waiting", "ContainerCreating", None)
        c.ready = False
        c.started = False
    w.sync(t)
    w.event(t, ("Pod", pod.ns, pod.name, pod.uid), "Scheduled",
            f"Successfully assigned {pod.ns}/{pod.name} to {node}", component="default-scheduler")


def stuck_sandbox(w, t, pod, node, message, t_end, distinct=4):
    """A pod bound to `node` whose sandbox creation keeps failing with `message(sid)`."""
    yield t
    bind_without_sandbox(w, t, pod, node)
    sc = w.sc
    yield from repeated_event(
        w, ("Pod", pod.ns, pod.name, pod.uid), "FailedCreatePodSandBox",
        times_from(t + 2, t_end), lambda tt: message(sc.hexstr(64)), host=node,
        distinct=distinct, alive_fn=lambda: alive(w, pod))


def sts_pod(w, sts, i, created):
    labels = dict(sts.labels)
    labels["controller-revision-hash"] = sts.revision
    labels["statefulset.kubernetes.io/pod-name"] = f"{sts.name}-{i}"
    labels["apps.kubernetes.io/pod-index"] = str(i)
    return Pod(w, sts.ns, f"{sts.name}-{i}", labels, ("apps/v1", "StatefulSet", sts.name, sts.uid),
               sts.mk_containers(), created=created)


def new_service(w, t, ns, name, selector, ports):
    svc = Service(w, ns, name, selector, w.service_ip(), ports, t)
    w.add(t, svc)
    es = EndpointSlice(w, svc)
    es.created = t
    w.add(t, es)
    return svc


def delete_service(w, t, svc):
    for m in list(w.objs.values()):
        if m.kind == "EndpointSlice" and m.svc is svc:
            w.delete(t, m)
    w.delete(t, svc)


def surge_rollout(w, t, dep, image, nodes, start, step=16, annotations=None):
    """RollingUpdate maxSurge 1 / maxUnavailable 0 through `nodes`: each new pod is started
    by start(pod, node, t) -> True when it will become ready; the first that will not stalls
    the rollout (the old replicas keep serving). Returns the new ReplicaSet."""
    yield t
    old_rs = dep.current
    rs = new_revision(w, t, dep, image=image, annotations=annotations)
    olds = [p for p in old_rs.pods() if p.active()]
    tt = t + 1
    for i, node in enumerate(nodes):
        yield tt
        scale_rs(w, tt, rs, i + 1)
        p = w.new_rs_pod(rs, tt)
        w.create_pod(tt, p)
        w.event(tt, ("ReplicaSet", rs.ns, rs.name, rs.uid), "SuccessfulCreate",
                f"Created pod: {p.name}", component="replicaset-controller")
        if not start(p, node, tt + 1):
            return rs
        tt += step
        yield tt
        old = olds[i]
        scale_rs(w, tt, old_rs, len(olds) - i - 1)
        w.event(tt, ("ReplicaSet", old_rs.ns, old_rs.name, old_rs.uid), "SuccessfulDelete",
                f"Deleted pod: {old.name}", component="replicaset-controller")
        w.spawn(w.terminate(tt, old, grace=3))
        tt += 2
    return rs


def progress_deadline(w, t, dep, rs):
    yield t
    dep.progress_override = ("False", "ProgressDeadlineExceeded",
                             f'ReplicaSet "{rs.name}" has timed out progressing.')
    w.sync(t)


def aws_node_ds(w, nodes):
    return w.daemonset("kube-system", "aws-node", nodes, AWS_NODE_IMG, "aws-k8s-agent",
                       req_cpu="25m", req_mem="64Mi", lim_mem=None,
                       tolerations=[{"operator": "Exists"}])


def cron_pod(w, job, containers, t):
    labels = {"batch.kubernetes.io/controller-uid": job.uid,
              "batch.kubernetes.io/job-name": job.name, "controller-uid": job.uid,
              "job-name": job.name}
    return Pod(w, job.ns, f"{job.name}-{w.sc.k8s_suffix(5)}", labels,
               ("batch/v1", "Job", job.name, job.uid), containers, created=t,
               restart_policy="Never")


def stuck_job(w, t, node, ns, cron, image, comm, message, t_end):
    """A CronJob run whose pod lands on a node that cannot create its sandbox."""
    yield t
    mk = lambda: [Container(cron, image, comm, req_cpu="100m", req_mem="128Mi",
                            lim_mem="256Mi", port=None)]
    job = Job(w, ns, f"{cron}-{int((BASE.timestamp() + t) // 60)}", cron, t, mk())
    w.add(t, job)
    w.event(t, ("CronJob", ns, cron, job.cron_uid), "SuccessfulCreate", f"Created job {job.name}",
            component="cronjob-controller")
    p = w.create_pod(t, cron_pod(w, job, mk(), t))
    w.event(t, ("Job", ns, job.name, job.uid), "SuccessfulCreate", f"Created pod: {p.name}",
            component="job-controller")
    yield from stuck_sandbox(w, t + 1, p, node, message, t_end)


# =======================================================================================
# 49 — AWS VPC CNI: the zone's subnet runs out of addresses during a scale-up
# =======================================================================================


@scenario("49-vpc-cni-subnet-ip-exhaustion",
          "Black-Friday traffic: the HPA scales checkout from 4 to 10. The two nodes in "
          "eu-west-1c share one small /24 subnet that has run out of free addresses, so the "
          "aws-node IPAM daemon cannot grow their warm pools: the four new pods scheduled there "
          "stay ContainerCreating with FailedCreatePodSandBox 'failed to assign an IP address to "
          "container' (and so does a CronJob pod on one of them), while the two new pods in "
          "eu-west-1a/b start; checkout runs 6 of 10 replicas, saturated, p99 6.1 s",
          "aws/amazon-vpc-cni-k8s#547 (private /27 subnets per AZ exhausted, 'add cmd: failed "
          "to assign an IP address to container'), message text as in #668 / karpenter-provider-"
          "aws#3989 (plugin type=\"aws-cni\" ... failed (add)); adapted: one exhausted zone subnet "
          "shared by two nodes, surfaced by an HPA scale-up")
def s49(sc):
    specs = [(aws_name("10.0.32.5"), "10.0.32.5", "eu-west-1a", "10.0.32.0/24"),
             (aws_name("10.0.40.5"), "10.0.40.5", "eu-west-1b", "10.0.40.0/24"),
             (aws_name("10.0.48.5"), "10.0.48.5", "eu-west-1c", "10.0.48.0/24"),
             (aws_name("10.0.48.6"), "10.0.48.6", "eu-west-1c", "10.0.48.0/24")]
    w, ag, (NA, NB, NC, ND) = kcluster(sc, specs, instance_type="m6i.2xlarge")
    w.ip_next[ND] = 140
    aws_node_ds(w, [NA, NB, NC, ND])
    co = w.deploy("shop", "checkout", 4, [NA, NB, NC, ND], img("shop/checkout", "2.8.0"),
                  "checkout", req_cpu="1", req_mem="512Mi", lim_mem="1Gi")
    fe = w.deploy("shop", "frontend", 4, [NA, NB, NC, ND], img("shop/frontend", "4.12.0"), "node",
                  port=3000)
    cat = w.deploy("shop", "catalog", 2, [NA, NB], img("shop/catalog", "7.3.0"), "gunicorn",
                   port=8000)
    hpa = w.add(0, HorizontalPodAutoscaler(w, co, 4, 12))
    w.snapshot(0)
    cip = co.service.cluster_ip
    healthy_stats(ag, 30, 1140, [(NA, cip, 8080, 260), (NB, cip, 8080, 250),
                                 (NA, cat.service.cluster_ip, 8000, 120)], step=120)
    alert_flap(sc, 150, "CPUThrottlingHigh", "shop",
               {"pod": pod_on(fe, NB).name, "container": "frontend"}, 140)
    w.spawn(reschedule(w, 90, cat, NA, probe_blip=True))
    msg = lambda sid: (f'Failed to create pod sandbox: rpc error: code = Unknown desc = failed to '
                       f'setup network for sandbox "{sid}": plugin type="aws-cni" name="aws-cni" '
                       f'failed (add): add cmd: failed to assign an IP address to container')
    T, END = 240, 1140

    def scale():
        yield T
        hpa.current_util = 131
        hpa.last_scale = T
        w.event(T, ref(hpa), "SuccessfulRescale",
                "New size: 10; reason: cpu resource utilization (percentage of request) above target",
                component="horizontal-pod-autoscaler")
        co.replicas = 10
        co.generation += 1
        co.current.replicas = 10
        w.sync(T)
        rs = co.current
        w.event(T, ("Deployment", "shop", "checkout", co.uid), "ScalingReplicaSet",
                f"Scaled up replica set {rs.name} from 4 to 10", component="deployment-controller")
        yield T + 1
        for i, node in enumerate([NA, NC, NB, ND, NC, ND]):
            p = w.new_rs_pod(rs, T + 1)
            w.create_pod(T + 1, p)
            w.event(T + 1, ("ReplicaSet", "shop", rs.name, rs.uid), "SuccessfulCreate",
                    f"Created pod: {p.name}", component="replicaset-controller")
            if node in (NC, ND):
                w.spawn(stuck_sandbox(w, T + 2 + i, p, node, msg, END))
            else:
                w.spawn(w.schedule(T + 2 + i, p, node, pull=False))

    w.spawn(scale())
    w.spawn(stuck_job(w, 600, NC, "batch", "report-export",
                      img("batch/report-export", "1.4.2"), "python3", msg, END))
    Alert(sc, "HighLatency", "critical", {"namespace": "shop", "service": "checkout"},
          {"summary": "checkout p99 latency above 5 s", "p99_latency_seconds": "6.1"}).fire(T + 190)
    Alert(sc, "KubeDeploymentReplicasMismatch", "warning",
          {"namespace": "shop", "deployment": "checkout"},
          {"summary": "Deployment has not matched the expected number of replicas."}).fire(T + 720)
    w.run()
    sc.expect("P2", "P2: slow response times (p99 6.1 s > 5 s) — 4 of the 6 replicas the scale-up "
              "needs never get a network, the running ones are saturated",
              "ip_exhaustion", "Zone/eu-west-1c",
              [f"Node/{NC}", f"Node/{ND}", ent("Deployment", "shop", "checkout"),
               ent("Service", "shop", "checkout")])


# =======================================================================================
# 50 — aws-node (IPAM daemon) dead on one node
# =======================================================================================


@scenario("50-aws-node-ipamd-down-one-node",
          "the aws-node pod on one node stops answering on :50051: its liveness probe fails, "
          "the kubelet kills it (exit 137) and it crash-loops waiting for IPAM-D. Existing pods "
          "there keep their network, but every new pod on that node stays ContainerCreating: "
          "FailedCreatePodSandBox 'plugin type=\"aws-cni\" ... failed (add): add cmd: Error "
          "received from AddNetwork gRPC call ... dial tcp 127.0.0.1:50051: connect: connection "
          "refused'. A payments-api rollout stalls on its second pod and a CronJob pod never "
          "starts; the old replicas keep serving",
          "aws/amazon-vpc-cni-k8s#1425 (aws-node restarting with exit 137, pods on that node "
          "stuck ContainerCreating) and #3016 (the AddNetwork gRPC connection-refused message); "
          "adapted: one node, a rollout and a CronJob run land on it")
def s50(sc):
    specs = [(aws_name("10.0.1.45"), "10.0.1.45", "eu-west-1a", "10.0.1.0/24"),
             (aws_name("10.0.2.71"), "10.0.2.71", "eu-west-1b", "10.0.2.0/24"),
             (aws_name("10.0.3.33"), "10.0.3.33", "eu-west-1c", "10.0.3.0/24")]
    w, ag, (NA, NB, NC) = kcluster(sc, specs, cpu=4, mem_gi=16, instance_type="m5.xlarge")
    an = aws_node_ds(w, [NA, NB, NC])
    pay = w.deploy("payments", "payments-api", 3, [NA, NB, NC],
                   img("payments/payments-api", "8.1.5"), "payments-api",
                   max_surge="1", max_unavailable="0", revision=41)
    led = w.deploy("payments", "ledger", 2, [NA, NC], img("payments/ledger", "4.2.0"), "ledger",
                   port=8443, port_name="grpc")
    fe = w.deploy("shop", "frontend", 3, [NA, NB, NC], img("shop/frontend", "4.12.0"), "node",
                  port=3000)
    w.snapshot(0)
    pip = pay.service.cluster_ip
    healthy_stats(ag, 30, 1200, [(NA, pip, 8080, 180), (NC, pip, 8080, 170),
                                 (NA, led.service.cluster_ip, 8443, 90)], step=150)
    alert_flap(sc, 520, "CPUThrottlingHigh", "shop",
               {"pod": pod_on(fe, NA).name, "container": "frontend"}, 130)
    victim = pod_on(an, NB)
    vref = ("Pod", victim.ns, victim.name, victim.uid)
    F = 200
    probe = lambda tt: ('Liveness probe failed: {"level":"info","ts":"%s","caller":'
                        '"/root/sdk/go1.22.8/src/runtime/proc.go:271","msg":"timeout: failed to '
                        'connect service \\":50051\\" within 5s"}' % at(tt).replace("Z", ".000Z"))
    logs = ('{"level":"info","ts":"2026-11-27T10:04:11.204Z","caller":"entrypoint.sh","msg":"Checking for IPAM connectivity ... "}\n'
            '{"level":"info","ts":"2026-11-27T10:04:13.211Z","caller":"entrypoint.sh","msg":"Retrying waiting for IPAM-D"}\n'
            '{"level":"info","ts":"2026-11-27T10:04:15.218Z","caller":"entrypoint.sh","msg":"Retrying waiting for IPAM-D"}')

    def cni_down():
        for k, tt in enumerate((F, F + 10, F + 20)):
            yield tt
            w.event(tt, vref, "Unhealthy", probe(tt), typ="Warning", host=NB,
                    field_path="spec.containers{aws-node}")
            if k == 0:
                w.set_ready(tt, victim, False)
        yield F + 21
        w.event(F + 21, vref, "Killing", "Container aws-node failed liveness probe, will be restarted",
                host=NB, field_path="spec.containers{aws-node}")
        yield from crash_loop(w, victim, F + 26, 1200, run=65, signal=9, message=logs,
                              agent=ag[NB], event_every=2)

    w.spawn(cni_down())
    msg = lambda sid: (f'Failed to create pod sandbox: rpc error: code = Unknown desc = failed to '
                       f'setup network for sandbox "{sid}": plugin type="aws-cni" name="aws-cni" '
                       f'failed (add): add cmd: Error received from AddNetwork gRPC call: rpc error: '
                       f'code = Unavailable desc = connection error: desc = "transport: Error while '
                       f'dialing: dial tcp 127.0.0.1:50051: connect: connection refused"')
    T, END = 330, 1200
    change(sc, T, "change.deployment.rollout", wl("payments", "Deployment", "payments-api"),
           {"revision": 42, "image": img("payments/payments-api", "8.2.0"),
            "previous_image": img("payments/payments-api", "8.1.5"),
            "application": "payments-api"}, node=NA)

    def start(p, node, tt):
        if node == NB:
            w.spawn(stuck_sandbox(w, tt, p, node, msg, END))
            return False
        w.spawn(w.schedule(tt, p, node, pull=True, ready_after=6))
        return True

    def rollout():
        rs = yield from surge_rollout(w, T + 1, pay, img("payments/payments-api", "8.2.0"),
                                      [NC, NB, NA], start)
        yield from progress_deadline(w, T + 603, pay, rs)

    w.spawn(rollout())
    w.spawn(stuck_job(w, 560, NB, "payments", "settlement-export",
                      img("payments/settlement-export", "2.0.3"), "python3", msg, END))
    Alert(sc, "KubePodCrashLooping", "warning",
          {"namespace": "kube-system", "pod": victim.name, "container": "aws-node"},
          {"summary": "Pod is crash looping."}).fire(F + 420)
    Alert(sc, "KubeDeploymentRolloutStuck", "warning",
          {"namespace": "payments", "deployment": "payments-api"},
          {"summary": "Deployment rollout is not progressing."}).fire(T + 660)
    w.run()
    sc.expect("P3", "P3: non-critical component failure — the CNI daemon on one node is down; "
              "new pods there cannot start, a rollout and a CronJob run are blocked, the "
              "services keep serving from their existing replicas",
              "network_plugin_failure", ent("DaemonSet", "kube-system", "aws-node"),
              [f"Node/{NB}", ent("Deployment", "payments", "payments-api")])


# =======================================================================================
# 51 — the sandbox (pause) image was garbage-collected and cannot be pulled again
# =======================================================================================


@scenario("51-pause-image-gc-node-sandbox-pull",
          "a node's root filesystem crosses the kubelet's image-GC threshold; image garbage "
          "collection removes the unpinned sandbox image, and containerd cannot pull it back "
          "from ECR (no credentials for the sandbox image): every new pod on that node fails "
          "FailedCreatePodSandBox 'failed to get sandbox image ... 401 Unauthorized'. A "
          "recommendations rollout stalls, a rebalanced catalog replica and a CronJob pod never "
          "start; running pods are unaffected",
          "awslabs/amazon-eks-ami#1597 ('Sandbox container image being GC'd in 1.29', 401 "
          "Unauthorized pulling eks/pause:3.5; also #1740, #2166); adapted: one node, three "
          "workloads' new pods")
def s51(sc):
    specs = [(aws_name("10.0.1.18"), "10.0.1.18", "eu-west-1a", "10.0.1.0/24"),
             (aws_name("10.0.2.204"), "10.0.2.204", "eu-west-1b", "10.0.2.0/24"),
             (aws_name("10.0.3.96"), "10.0.3.96", "eu-west-1c", "10.0.3.0/24")]
    w, ag, (NA, NB, NC) = kcluster(sc, specs, kubelet="v1.29.10-eks-94953ac")
    aws_node_ds(w, [NA, NB, NC])
    rec = w.deploy("shop", "recommendations", 3, [NA, NB, NC],
                   img("shop/recommendations", "0.31.0"), "python3", max_surge="1",
                   max_unavailable="0", revision=12, req_mem="1Gi", lim_mem="2Gi")
    cat = w.deploy("shop", "catalog", 2, [NA, NB], img("shop/catalog", "7.3.0"), "gunicorn",
                   port=8000)
    fe = w.deploy("shop", "frontend", 3, [NA, NB, NC], img("shop/frontend", "4.12.0"), "node",
                  port=3000)
    w.snapshot(0)
    healthy_stats(ag, 30, 1200, [(NA, cat.service.cluster_ip, 8000, 150),
                                 (NC, rec.service.cluster_ip, 8080, 90)], step=150)
    alert_flap(sc, 700, "HighLatencyP99", "shop", {"service": "catalog"}, 120)
    ag[NB].fs_nearly_full(95, "/", "/dev/nvme0n1p1", 0.87)
    msg = lambda sid: (f'Failed to create pod sandbox: rpc error: code = Unknown desc = failed to '
                       f'get sandbox image "{PAUSE_IMG}": failed to pull image "{PAUSE_IMG}": '
                       f'failed to pull and unpack image "{PAUSE_IMG}": failed to resolve reference '
                       f'"{PAUSE_IMG}": unexpected status from HEAD request to '
                       f'https://{ECR}/v2/eks/pause/manifests/3.5: 401 Unauthorized')
    T, END = 240, 1200
    new_img = img("shop/recommendations", "0.32.0")
    change(sc, T, "change.deployment.rollout", wl("shop", "Deployment", "recommendations"),
           {"revision": 13, "image": new_img, "previous_image": img("shop/recommendations", "0.31.0"),
            "application": "shop-recommendations"}, node=NA)

    def start(p, node, tt):
        if node == NB:
            w.spawn(stuck_sandbox(w, tt, p, node, msg, END))
            return False
        w.spawn(w.schedule(tt, p, node, pull=True, ready_after=9))
        return True

    def rollout():
        rs = yield from surge_rollout(w, T + 1, rec, new_img, [NA, NB, NC], start)
        yield from progress_deadline(w, T + 603, rec, rs)

    w.spawn(rollout())
    w.spawn(stuck_job(w, 420, NB, "batch", "report-export", img("batch/report-export", "1.4.2"),
                      "python3", msg, END))

    def rebalance():
        # the descheduler evicts a catalog replica from the crowded node-a; the new one lands
        # on the broken node
        t = 560
        yield t
        old = pod_on(cat, NA)
        old.deletion = t + 30
        w.sync(t)
        w.event(t, ("Pod", old.ns, old.name, old.uid), "Descheduled",
                f"pod evicted from {NA} node by sigs.k8s.io/descheduler",
                component="sigs.k8s.io/descheduler")
        w.event(t, ("Pod", old.ns, old.name, old.uid), "Killing", "Stopping container catalog",
                host=NA, field_path="spec.containers{catalog}")
        rs = cat.current
        p = w.new_rs_pod(rs, t)
        w.create_pod(t, p)
        w.event(t, ("ReplicaSet", rs.ns, rs.name, rs.uid), "SuccessfulCreate",
                f"Created pod: {p.name}", component="replicaset-controller")
        w.spawn(stuck_sandbox(w, t + 1, p, NB, msg, END))
        w.spawn(w.terminate(t + 1, old, grace=10, event=False))

    w.spawn(rebalance())
    Alert(sc, "KubeDeploymentRolloutStuck", "warning",
          {"namespace": "shop", "deployment": "recommendations"},
          {"summary": "Deployment rollout is not progressing."}).fire(T + 660)
    w.run()
    sc.expect("P3", "P3: non-critical component failure — one node cannot start any new pod; a "
              "rollout, a rebalanced replica and a CronJob run are blocked while the existing "
              "replicas keep serving",
              "image_pull_failure", f"Node/{NB}",
              [ent("Deployment", "shop", "recommendations"), ent("Deployment", "shop", "catalog")])


# =======================================================================================
# 52 — Multi-Attach: the database volume stays attached to the drained node
# =======================================================================================


@scenario("52-ebs-multi-attach-postgres-after-drain",
          "node maintenance drains a node in eu-west-1c; the single postgres replica "
          "(StatefulSet, EBS gp3 volume) is rescheduled to the other node in the zone, but EC2 "
          "leaves the volume stuck 'detaching' from the old instance: the attach/detach "
          "controller reports Multi-Attach errors, the kubelet times out mounting, postgres-0 "
          "stays ContainerCreating and orders-api fails every request for 13 minutes until the "
          "volume is force-detached",
          "kubernetes-sigs/aws-ebs-csi-driver#1801 (volumes stuck in the wrong attachment "
          "state) and the attach/detach controller's text (pkg/controller/volume/attachdetach/"
          "reconciler: 'Multi-Attach error for volume ... Volume is already exclusively attached "
          "to one node and can't be attached to another'); adapted: a drain of the node running a "
          "single-replica database")
def s52(sc):
    specs = [(aws_name("10.0.1.77"), "10.0.1.77", "eu-west-1a", "10.0.1.0/24"),
             (aws_name("10.0.2.19"), "10.0.2.19", "eu-west-1b", "10.0.2.0/24"),
             (aws_name("10.0.3.140"), "10.0.3.140", "eu-west-1c", "10.0.3.0/24"),
             (aws_name("10.0.3.201"), "10.0.3.201", "eu-west-1c", "10.0.3.0/24")]
    w, ag, (NA, NB, NC, ND) = kcluster(sc, specs)
    w.ip_next[ND] = 150
    aws_node_ds(w, [NA, NB, NC, ND])
    w.add(0, StorageClass(w, "gp3", "ebs.csi.aws.com", {"type": "gp3", "encrypted": "true"},
                          default=True))
    pg = w.statefulset("orders", "postgres", 1, [NC], "docker.io/library/postgres:16.4",
                       "postgres", 5432, req_cpu="2", req_mem="4Gi", lim_mem="8Gi")
    pvc = w.add(0, PersistentVolumeClaim(w, "orders", "data-postgres-0", "gp3", "200Gi",
                                         "ebs.csi.aws.com", labels={"app": "postgres"},
                                         created=-86400 * 200))
    pv = w.add(0, PersistentVolume(w, pvc, zone="eu-west-1c"))
    sts_with_claims(pg, "gp3", "200Gi", "/var/lib/postgresql/data")
    node_id = lambda n: w.get("Node", None, n).render()["spec"]["providerID"].rsplit("/", 1)[1]
    va_old = VolumeAttachment(w, pv, NC, node_id(NC), -86400 * 6)
    va_old.attached = True
    w.add(0, va_old)
    api = w.deploy("orders", "orders-api", 3, [NA, NB, ND], img("orders/orders-api", "6.0.3"),
                   "orders-api")
    fe = w.deploy("shop", "frontend", 3, [NA, NB, NC], img("shop/frontend", "4.12.0"), "node",
                  port=3000)
    w.snapshot(0)
    pgip, oip = pg.svc.cluster_ip, api.service.cluster_ip
    healthy_stats(ag, 30, 1380, [(NB, oip, 8080, 150)], step=180)
    alert_flap(sc, 70, "CPUThrottlingHigh", "shop",
               {"pod": pod_on(fe, NA).name, "container": "frontend"}, 120)
    T = 150
    change(sc, T, "change.node.maintenance", {"cluster": CLUSTER, "node": NC},
           {"action": "drain", "reason": "kernel patching (ALAS2023-2026-812)", "user": "platform-bot"},
           agent="platform-ops", node=NA)
    FIX = 960
    dev = pv.handle
    pg0 = pod_on(pg, NC)

    def drain():
        yield T
        n = w.get("Node", None, NC)
        n.unschedulable = True
        n.add_taint(T, "node.kubernetes.io/unschedulable", "NoSchedule")
        w.sync(T)
        w.event(T, ("Node", None, NC, n.uid), "NodeNotSchedulable",
                f"Node {NC} status is now: NodeNotSchedulable", host=NC)
        yield T + 2
        # frontend's replica moves to node-d
        fe_c = pod_on(fe, NC)
        fe_c.deletion = T + 32
        w.sync(T + 2)
        w.event(T + 2, ("Pod", fe_c.ns, fe_c.name, fe_c.uid), "Killing", "Stopping container frontend",
                host=NC, field_path="spec.containers{frontend}")
        replace_pod(w, T + 2, fe_c, ND)
        w.spawn(w.terminate(T + 3, fe_c, grace=6, event=False))
        # postgres-0 is evicted
        pg0.deletion = T + 32
        w.sync(T + 2)
        w.event(T + 2, ("Pod", pg0.ns, pg0.name, pg0.uid), "Killing", "Stopping container postgres",
                host=NC, field_path="spec.containers{postgres}")
        yield T + 14
        for c in pg0.containers:
            c.ready = False
            c.state = ("terminated", "Completed", 0, c.state[1], T + 14, None, c.cid)
        w.sync(T + 14)
        yield T + 15
        w.delete(T + 15, pg0)
        w.sync(T + 15)
        yield T + 16
        # kubelet unmounted; the detach is issued but EC2 keeps the volume 'detaching'
        va_old.deletion = T + 16
        w.sync(T + 16)
        p = with_claim(sts_pod(w, pg, 0, T + 16), "data-postgres-0", "/var/lib/postgresql/data")
        w.create_pod(T + 16, p)
        w.event(T + 16, ("StatefulSet", "orders", "postgres", pg.uid), "SuccessfulCreate",
                "create Pod postgres-0 in StatefulSet postgres successful",
                component="statefulset-controller")
        yield T + 17
        bind_without_sandbox(w, T + 17, p, ND)
        pref = ("Pod", p.ns, p.name, p.uid)
        multi = (f'Multi-Attach error for volume "{pv.name}" Volume is already exclusively attached '
                 f"to one node and can't be attached to another")
        mount = ("Unable to attach or mount volumes: unmounted volumes=[data], unattached "
                 "volumes=[data], failed to process volumes=[]: timed out waiting for the condition")
        yield T + 18
        w.event(T + 18, pref, "FailedAttachVolume", multi, typ="Warning",
                component="attachdetach-controller")
        plan = [(T + 78, "detach")]
        t_att = T + 18
        for gap in [20, 40, 80, 160, 200, 200, 200, 200, 200]:
            t_att += gap
            if t_att < FIX:
                plan.append((t_att, "attach"))
        plan += [(t, "mount") for t in range(T + 17 + 130, FIX, 130)]
        for t, what in sorted(plan):
            yield t
            if what == "attach":
                w.event(t, pref, "FailedAttachVolume", multi, typ="Warning",
                        component="attachdetach-controller")
            elif what == "mount":
                w.event(t, pref, "FailedMount", mount, typ="Warning", host=ND)
            else:
                va_old.detach_error = (t, "rpc error: code = DeadlineExceeded desc = context "
                                          "deadline exceeded")
                w.sync(t)
        # the on-call force-detaches the volume in EC2
        yield FIX
        change(sc, FIX, "change.infrastructure.volume", {"cluster": CLUSTER},
               {"action": "force-detach", "volume_id": dev, "instance": node_id(NC),
                "user": "oncall"}, agent="platform-ops", node=NA)
        yield FIX + 6
        w.delete(FIX + 6, va_old)
        va = VolumeAttachment(w, pv, ND, node_id(ND), FIX + 7)
        yield FIX + 7
        w.add(FIX + 7, va)
        yield FIX + 12
        va.attached = True
        w.sync(FIX + 12)
        w.event(FIX + 12, pref, "SuccessfulAttachVolume",
                f'AttachVolume.Attach succeeded for volume "{pv.name}" ',
                component="attachdetach-controller")
        yield FIX + 20
        p.ip = w.pod_ip(ND)
        for c in p.containers:
            c.state = ("running", FIX + 20)
            c.started = True
            c.cid = sc.hexstr(64)
        p.phase = "Running"
        w.sync(FIX + 20)
        for r, m in (("Pulled", 'Container image "docker.io/library/postgres:16.4" already present on machine'),
                     ("Created", "Created container postgres"), ("Started", "Started container postgres")):
            w.event(FIX + 20, pref, r, m, host=ND, field_path="spec.containers{postgres}")
        yield FIX + 34
        w.set_ready(FIX + 34, p, True)
        yield FIX + 120
        n = w.get("Node", None, NC)
        n.unschedulable = False
        n.remove_taint("node.kubernetes.io/unschedulable")
        w.sync(FIX + 120)
        w.event(FIX + 120, ("Node", None, NC, n.uid), "NodeSchedulable",
                f"Node {NC} status is now: NodeSchedulable", host=NC)

    w.spawn(drain())
    DOWN0, DOWN1 = T + 14, FIX + 34
    for t in every(DOWN0 + 20, DOWN1, 120):
        for p in pods_of(api):
            ag[p.node].refused(t + sc.rng.randint(0, 15), p, pgip, 5432, sc.rng.randint(20, 60),
                               comm="orders-api")
    stats_series(ag, 60, 1380, [(NA, pgip, 5432, 90), (NB, pgip, 5432, 85)],
                 lambda t, i: (1.0 if DOWN0 < t < DOWN1 else 0.0, 0, 1.0), step=120)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "orders", "service": "orders-api"},
          {"summary": "orders-api 5xx ratio above 5 %", "error_ratio": "1.0"}).fire(DOWN0 + 70).resolve(DOWN1 + 60)
    Alert(sc, "KubeStatefulSetReplicasMismatch", "warning",
          {"namespace": "orders", "statefulset": "postgres"},
          {"summary": "StatefulSet has not matched the expected number of replicas."}).fire(DOWN0 + 300).resolve(DOWN1 + 40)
    w.run()
    sc.expect("P1", "P1: complete service unavailability — the only database replica cannot "
              "attach its volume; orders-api fails every request for 13 minutes",
              "volume_attach_failure", ent("PersistentVolumeClaim", "orders", "data-postgres-0"),
              [ent("StatefulSet", "orders", "postgres"), ent("Service", "orders", "postgres"),
               ent("Deployment", "orders", "orders-api"), f"PersistentVolume/{pv.name}",
               f"Node/{NC}", f"Node/{ND}"])


# =======================================================================================
# 53 — a host-path volume fills the node's root disk: ephemeral-storage evictions
# =======================================================================================


@scenario("53-hostpath-volume-fills-node-evictions",
          "Loki's local (openebs-hostpath) volume lives on node-c's root filesystem and grows "
          "past what the disk holds; the PVC-usage alert fires, image GC finds nothing to free, "
          "DiskPressure turns True and the kubelet evicts pods of four other workloads one after "
          "another ('The node was low on resource: ephemeral-storage') without reclaiming the "
          "space, because the volume is not pod ephemeral storage. Replacements start on the "
          "other nodes; the services keep serving. Loki's retention is cut and the pressure ends",
          "SREGym/SREGym#537 ('Loki disk usage causing pod evictions': an openebs-hostpath PVC on "
          "the root disk, NodeHasDiskPressure, social-network pods evicted); event texts from the "
          "kubelet (pkg/kubelet/eviction/helpers.go, image_gc_manager.go)")
def s53(sc):
    w, ag, (NA, NB, NC) = kcluster(sc, [("node-a", "10.0.1.21", "eu-west-1a", "10.1.0.0/24"),
                                        ("node-b", "10.0.2.34", "eu-west-1b", "10.1.1.0/24"),
                                        ("node-c", "10.0.3.47", "eu-west-1c", "10.1.2.0/24")])
    w.add(0, StorageClass(w, "openebs-hostpath", "openebs.io/local",
                          {}, annotations={"cas.openebs.io/config":
                                           "- name: StorageType\n  value: \"hostpath\"\n- name: BasePath\n  value: \"/var/openebs/local\"\n"}))
    loki = w.statefulset("observe", "loki", 1, [NC], "docker.io/grafana/loki:3.2.1", "loki", 3100,
                         req_cpu="500m", req_mem="1Gi", lim_mem="4Gi", created=-86400 * 12,
                         started=-86400 * 10)
    pvc = w.add(0, PersistentVolumeClaim(w, "observe", "storage-loki-0", "openebs-hostpath",
                                         "10Gi", "openebs.io/local", labels={"app": "loki"},
                                         created=-86400 * 12))
    pv = w.add(0, PersistentVolume(w, pvc, node=NC, local_path="/var/openebs/local/"
                                   f"pvc-{pvc.uid}"))
    sts_with_claims(loki, "openebs-hostpath", "10Gi", "/var/loki")
    svcs = {}
    for name, comm, nodes in (("nginx-thrift", "nginx", [NA, NC]),
                              ("compose-post-service", "ComposePostServ", [NB, NC]),
                              ("home-timeline-service", "HomeTimelineSer", [NA, NC]),
                              ("user-timeline-service", "UserTimelineSer", [NB, NC]),
                              ("media-frontend", "nginx", [NA, NC]),
                              ("social-graph-service", "SocialGraphServ", [NA, NB])):
        svcs[name] = w.deploy("social", name, 2, nodes, img(f"deathstarbench/{name}", "0.4.1",
                                                             "docker.io"), comm)
    w.snapshot(0)
    ngip = svcs["nginx-thrift"].service.cluster_ip
    healthy_stats(ag, 30, 1140, [(NA, ngip, 8080, 210), (NB, ngip, 8080, 200),
                                 (NB, svcs["home-timeline-service"].service.cluster_ip, 8080, 140)],
                  step=120)
    alert_flap(sc, 110, "CPUThrottlingHigh", "social",
               {"pod": pod_on(svcs["compose-post-service"], NB).name,
                "container": "compose-post-service"}, 140)
    Alert(sc, "KubePersistentVolumeFillingUp", "warning",
          {"namespace": "observe", "persistentvolumeclaim": "storage-loki-0",
           "kubelet_node": NC, "job": "kubelet", "metrics_path": "/metrics"},
          {"summary": "PersistentVolume is filling up.",
           "description": "The PersistentVolume claimed by storage-loki-0 in Namespace observe is "
                          "only 9.8% free."}).fire(60)
    a = ag[NC]
    a.fs_nearly_full(150, "/", "/dev/nvme0n1p1", 0.88)
    a.fs_nearly_full(330, "/", "/dev/nvme0n1p1", 0.91, sev="error")
    a.fs_nearly_full(570, "/", "/dev/nvme0n1p1", 0.93, sev="error")
    n = w.get("Node", None, NC)
    P = 330
    victims = [("home-timeline-service", "412Ki", P + 12), ("media-frontend", "3620Ki", P + 40),
               ("compose-post-service", "884Ki", P + 95), ("user-timeline-service", "531Ki", P + 170),
               ("nginx-thrift", "9216Ki", P + 260)]

    def pressure():
        yield P
        w.event(P, ("Node", None, NC, n.uid), "FreeDiskSpaceFailed",
                "Failed to garbage collect required amount of images. Attempted to free "
                "9378641510 bytes, but only found 0 bytes eligible to free.", typ="Warning", host=NC)
        w.event(P, ("Node", None, NC, n.uid), "ImageGCFailed",
                "Failed to garbage collect required amount of images. Attempted to free "
                "9378641510 bytes, but only found 0 bytes eligible to free.", typ="Warning", host=NC)
        yield P + 8
        n.set_cond(P + 8, "DiskPressure", "True", "KubeletHasDiskPressure", "kubelet has disk pressure")
        n.add_taint(P + 8, "node.kubernetes.io/disk-pressure", "NoSchedule")
        w.sync(P + 8)
        w.event(P + 8, ("Node", None, NC, n.uid), "NodeHasDiskPressure",
                f"Node {NC} status is now: NodeHasDiskPressure", host=NC)
        w.event(P + 9, ("Node", None, NC, n.uid), "EvictionThresholdMet",
                "Attempting to reclaim ephemeral-storage", typ="Warning", host=NC)
        avail = [9786524, 9790112, 9771880, 9766304, 9802436]
        for k, (name, using, t) in enumerate(victims):
            yield t
            victim = pod_on(svcs[name], NC)
            evict(w, t, victim, resource="ephemeral-storage", using=using, request="0",
                  threshold="10234234Ki", available=f"{avail[k]}Ki",
                  replace_on=[NA, NB][k % 2])
            if k == 2:
                w.event(t, ("Node", None, NC, n.uid), "EvictionThresholdMet",
                        "Attempting to reclaim ephemeral-storage", typ="Warning", host=NC)
        yield 700
        change(sc, 700, "change.config.updated", {"cluster": CLUSTER, "namespace": "observe"},
               {"kind": "ConfigMap", "name": "loki", "field": "limits_config.retention_period",
                "value": "72h", "previous": "744h", "user": "oncall"}, agent="kubectl-audit", node=NA)
        yield 820
        n.set_cond(820, "DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure")
        n.remove_taint("node.kubernetes.io/disk-pressure")
        w.sync(820)
        w.event(820, ("Node", None, NC, n.uid), "NodeHasNoDiskPressure",
                f"Node {NC} status is now: NodeHasNoDiskPressure", host=NC)

    w.spawn(pressure())
    Alert(sc, "KubeNodeEviction", "warning",
          {"node": NC, "eviction_signal": "nodefs.available"},
          {"summary": "Node is evicting pods."}).fire(P + 20).resolve(860)
    w.run()
    sc.expect("P3", "P3: resource usage warning — one node out of disk evicts five pods of five "
              "workloads; each is replaced within seconds on another node and the services keep "
              "serving",
              "eviction", f"Node/{NC}",
              [ent("StatefulSet", "observe", "loki"),
               ent("PersistentVolumeClaim", "observe", "storage-loki-0"),
               ent("Deployment", "social", "home-timeline-service"),
               ent("Deployment", "social", "media-frontend"),
               ent("Deployment", "social", "compose-post-service"),
               ent("Deployment", "social", "user-timeline-service"),
               ent("Deployment", "social", "nginx-thrift")])


# =======================================================================================
# 54 — node-problem-detector: the root filesystem remounts read-only
# =======================================================================================


@scenario("54-npd-readonly-filesystem-node",
          "the EBS root volume of one node starts failing writes; node-problem-detector reports "
          "IOError and Ext4Error kernel events and sets ReadonlyFilesystem=True "
          "(FilesystemIsReadOnly: 'Remounting filesystem read-only'). The node stays Ready, so "
          "checkout's replica there keeps receiving traffic but fails every request that writes "
          "(checkout errors 31 %); fluent-bit there crash-loops on its storage path. Resolved "
          "when the node is drained 10 minutes later",
          "kubernetes/node-problem-detector config/kernel-monitor.json (conditions "
          "KernelDeadlock / ReadonlyFilesystem / XfsShutdown, temporary reasons IOError / "
          "Ext4Error, permanent FilesystemIsReadOnly) and pkg/util GenerateConditionChangeEvent "
          "text; adapted: an Ubuntu EKS node whose root EBS volume fails")
def s54(sc):
    specs = [(aws_name("10.0.1.52"), "10.0.1.52", "eu-west-1a", "10.0.1.0/24"),
             (aws_name("10.0.2.88"), "10.0.2.88", "eu-west-1b", "10.0.2.0/24"),
             (aws_name("10.0.3.17"), "10.0.3.17", "eu-west-1c", "10.0.3.0/24")]
    w, ag, (NA, NB, NC) = kcluster(sc, specs)
    for nm in (NA, NB, NC):
        npd_node(w.get("Node", None, nm))
    w.daemonset("kube-system", "node-problem-detector", [NA, NB, NC],
                "registry.k8s.io/node-problem-detector/node-problem-detector:v0.8.20",
                "node-problem-de", port=None, req_cpu="10m", req_mem="80Mi", lim_mem="80Mi")
    fb = w.daemonset("logging", "fluent-bit", [NA, NB, NC], "cr.fluentbit.io/fluent/fluent-bit:3.1.9",
                     "fluent-bit", port=2020, req_mem="64Mi", lim_mem="256Mi")
    co = w.deploy("shop", "checkout", 3, [NA, NB, NC], img("shop/checkout", "2.8.0"), "checkout")
    fe = w.deploy("shop", "frontend", 3, [NA, NB, NC], img("shop/frontend", "4.12.0"), "node",
                  port=3000)
    cat = w.deploy("shop", "catalog", 2, [NA, NC], img("shop/catalog", "7.3.0"), "gunicorn",
                   port=8000)
    w.snapshot(0)
    cip = co.service.cluster_ip
    healthy_stats(ag, 30, 1200, [(NA, cip, 8080, 200), (NC, cip, 8080, 190),
                                 (NA, cat.service.cluster_ip, 8000, 120)], step=150)
    alert_flap(sc, 90, "CPUThrottlingHigh", "shop",
               {"pod": pod_on(cat, NA).name, "container": "catalog"}, 120)
    w.spawn(job_noise(w, 120, NC))
    node = w.get("Node", None, NB)
    nref = ("Node", None, NB, node.uid)
    a = ag[NB]
    T = 240

    def npd():
        yield T
        a.io_error(T, "nvme0n1", "timeout", op="write", count=3)
        w.event(T + 1, nref, "IOError",
                "Buffer I/O error on dev nvme0n1p1, logical block 1835261, lost async page write",
                typ="Warning", component="kernel-monitor", host=NB)
        yield T + 6
        a.io_error(T + 6, "nvme0n1", "ioerr", op="write", count=11)
        w.event(T + 6, nref, "IOError",
                "Buffer I/O error on dev nvme0n1p1, logical block 1835262, lost async page write",
                typ="Warning", component="kernel-monitor", host=NB)
        w.event(T + 7, nref, "Ext4Error",
                "EXT4-fs error (device nvme0n1p1): ext4_journal_check_start:83: comm kubelet: "
                "Detected aborted journal", typ="Warning", component="kernel-monitor", host=NB)
        yield T + 8
        line = "EXT4-fs (nvme0n1p1): Remounting filesystem read-only"
        node.npd["ReadonlyFilesystem"] = ["True", "FilesystemIsReadOnly", line, T + 8]
        node.npd_hb = T + 8
        w.sync(T + 8)
        w.event(T + 8, nref, "FilesystemIsReadOnly",
                f'Node condition ReadonlyFilesystem is now: True, reason: FilesystemIsReadOnly, '
                f'message: "{line}"', typ="Warning", component="kernel-monitor", host=NB)
        for tt in (T + 130, T + 400):
            yield tt
            a.io_error(tt, "nvme0n1", "ioerr", op="write", count=4)

    w.spawn(npd())
    fbp = pod_on(fb, NB)
    fb_msg = ("[2026/11/27 10:04:19] [error] [storage] [cio file] cannot open/create "
              "/var/fluent-bit/state/flb-storage/tail.0/1-1764237859.flb: Read-only file system\n"
              "[2026/11/27 10:04:19] [error] [input chunk] could not create chunk file\n"
              "[2026/11/27 10:04:19] [engine] caught signal (SIGSEGV)")
    DRAIN = 840
    w.spawn(crash_loop(w, fbp, T + 19, DRAIN + 30, run=6, signal=11, message=fb_msg, agent=a,
                       event_every=2))
    cop = pod_on(co, NB)

    def drain():
        yield DRAIN
        change(sc, DRAIN, "change.node.maintenance", {"cluster": CLUSTER, "node": NB},
               {"action": "cordon-and-drain", "reason": "ReadonlyFilesystem", "user": "oncall"},
               agent="platform-ops", node=NA)
        node.unschedulable = True
        node.add_taint(DRAIN, "node.kubernetes.io/unschedulable", "NoSchedule")
        w.sync(DRAIN)
        w.event(DRAIN, nref, "NodeNotSchedulable", f"Node {NB} status is now: NodeNotSchedulable",
                host=NB)
        yield DRAIN + 2
        cop.deletion = DRAIN + 32
        w.sync(DRAIN + 2)
        w.event(DRAIN + 2, ("Pod", cop.ns, cop.name, cop.uid), "Killing",
                "Stopping container checkout", host=NB, field_path="spec.containers{checkout}")
        replace_pod(w, DRAIN + 2, cop, NC)
        w.spawn(w.terminate(DRAIN + 3, cop, grace=8, event=False))

    w.spawn(drain())
    for t in every(T + 30, DRAIN, 120):
        for p in pods_of(fe):
            if p.node != NB:
                ag[p.node].connect_stats(t + 5, cip, 8080, sc.rng.randint(160, 220))
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "checkout"},
          {"summary": "checkout 5xx ratio above 5 %", "error_ratio": "0.31"}).fire(T + 75).resolve(DRAIN + 90)
    Alert(sc, "KubePodCrashLooping", "warning",
          {"namespace": "logging", "pod": fbp.name, "container": "fluent-bit"},
          {"summary": "Pod is crash looping."}).fire(T + 330)
    w.run()
    sc.expect("P2", "P2: high error rate (31 % > 5 %) — the replica on the read-only node keeps "
              "taking traffic and fails",
              "disk_failure", f"Node/{NB}",
              [ent("Deployment", "shop", "checkout"), ent("Service", "shop", "checkout"),
               ent("DaemonSet", "logging", "fluent-bit")])


# =======================================================================================
# 55 — a chart upgrade renames the Service the clients resolve
# =======================================================================================


@scenario("55-chart-upgrade-renames-sqlproxy-service",
          "an Argo CD sync bumps the gcloud-sqlproxy chart 0.25.2 -> 0.25.3, which renames its "
          "Service (pg-sqlproxy -> pg-sqlproxy-gcloud-sqlproxy) and rolls the proxy pods "
          "(healthy). Existing connections survive; as connection pools recycle, orders-api and "
          "billing-worker cannot resolve pg-sqlproxy.db.svc.cluster.local and crash-loop — the "
          "DNS error shows only in their termination messages. orders-api has no ready "
          "endpoints, checkout calls to it are refused; CoreDNS is healthy. Rolled back after "
          "14 minutes",
          "rimusz/charts#145 ('Newest version doesn't work 0.25.3': the gcloud-sqlproxy chart's "
          "Service name changed, hours of production downtime); Go/libpq resolver error texts; "
          "adapted to a GKE cluster with two client workloads")
def s55(sc):
    specs = [("gke-prod-pool-1-5c1e8a2f-6kq2", "10.128.0.14", "europe-west4-a", "10.4.0.0/24"),
             ("gke-prod-pool-1-5c1e8a2f-9xw7", "10.128.0.15", "europe-west4-b", "10.4.1.0/24"),
             ("gke-prod-pool-1-5c1e8a2f-t3mb", "10.128.0.16", "europe-west4-c", "10.4.2.0/24")]
    w, ag, (NA, NB, NC) = kcluster(sc, specs, provider="gce", instance_type="n2-standard-8")
    sq = w.deploy("db", "pg-sqlproxy", 2, [NA, NC],
                  "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.13.0", "cloud-sql-proxy",
                  port=5432, port_name="postgres", revision=6,
                  labels={"helm.sh/chart": "gcloud-sqlproxy-0.25.2"}, svc=False)
    sq_svc = w.service("db", "pg-sqlproxy", {"app": "pg-sqlproxy"}, [("postgres", 5432, 5432, "TCP")])
    oa = w.deploy("orders", "orders-api", 3, [NA, NB, NC], img("orders/orders-api", "6.0.3"),
                  "orders-api")
    bw = w.deploy("orders", "billing-worker", 2, [NB, NC], img("orders/billing-worker", "2.3.1"),
                  "python3", port=None, svc=False)
    co = w.deploy("shop", "checkout", 2, [NA, NB], img("shop/checkout", "2.8.0"), "checkout")
    w.snapshot(0)
    oip = oa.service.cluster_ip
    healthy_stats(ag, 30, 1260, [(NA, co.service.cluster_ip, 8080, 140)], step=180)
    alert_flap(sc, 80, "CPUThrottlingHigh", "shop",
               {"pod": pod_on(co, NB).name, "container": "checkout"}, 120)
    T, FIX = 180, 1020
    change(sc, T, "change.deployment.rollout", wl("db", "Deployment", "pg-sqlproxy"),
           {"application": "db-sqlproxy", "chart": "gcloud-sqlproxy-0.25.3",
            "previous_chart": "gcloud-sqlproxy-0.25.2", "revision": 7}, node=NA)

    def upgrade():
        yield T + 2
        delete_service(w, T + 2, sq_svc)
        new_service(w, T + 2, "db", "pg-sqlproxy-gcloud-sqlproxy", {"app": "pg-sqlproxy"},
                    [("postgres", 5432, 5432, "TCP")])
        # the chart label in the pod template changes: a healthy rolling update
        yield from surge_rollout(w, T + 3, sq, None, [NA, NC],
                                 lambda p, n, tt: (w.spawn(w.schedule(tt, p, n, pull=False,
                                                                      ready_after=4)), True)[1],
                                 step=10, annotations={"checksum/config": sc.hexstr(64)})

    w.spawn(upgrade())
    go_err = ("FATAL: orders-api: open database: dial tcp: lookup "
              "pg-sqlproxy.db.svc.cluster.local on 10.96.0.10:53: no such host")
    py_err = ('Traceback (most recent call last):\n  File "/app/worker.py", line 41, in <module>\n'
              '    conn = psycopg2.connect(dsn)\npsycopg2.OperationalError: could not translate host '
              'name "pg-sqlproxy.db.svc.cluster.local" to address: Name or service not known\n')
    dead = {}

    def pool_recycle(p, t0, msg, readiness):
        yield t0
        if readiness:
            w.event(t0, ("Pod", p.ns, p.name, p.uid), "Unhealthy",
                    "Readiness probe failed: HTTP probe failed with statuscode: 503", typ="Warning",
                    host=p.node, field_path=f"spec.containers{{{p.containers[0].name}}}")
            w.set_ready(t0, p, False)
            yield t0 + 12
        dead.setdefault(p.name, t0)
        tt = w.sim.now
        yield from crash_loop(w, p, tt, FIX + 20, run=2, exit_code=1,
                              message=msg.format(m=int(tt // 60) % 10, s=int(tt % 60)) if "{m}" in msg else msg,
                              agent=ag[p.node], event_every=2, recover=True)

    for k, p in enumerate(pods_of(oa)):
        w.spawn(pool_recycle(p, T + 70 + k * 65, go_err, True))
    for k, p in enumerate(pods_of(bw)):
        w.spawn(pool_recycle(p, T + 95 + k * 80, py_err, False))

    def rollback():
        yield FIX
        change(sc, FIX, "change.deployment.rollout", wl("db", "Deployment", "pg-sqlproxy"),
               {"application": "db-sqlproxy", "chart": "gcloud-sqlproxy-0.25.2",
                "previous_chart": "gcloud-sqlproxy-0.25.3", "revision": 8, "rollback": True},
               node=NA)
        yield FIX + 2
        new = w.get("Service", "db", "pg-sqlproxy-gcloud-sqlproxy")
        delete_service(w, FIX + 2, new)
        new_service(w, FIX + 2, "db", "pg-sqlproxy", {"app": "pg-sqlproxy"},
                    [("postgres", 5432, 5432, "TCP")])

    w.spawn(rollback())
    DOWN0 = T + 70 + 2 * 65 + 12
    for t in every(DOWN0 + 10, FIX + 100, 90):
        for p in pods_of(co):
            ag[p.node].refused(t + sc.rng.randint(0, 12), p, oip, 8080, sc.rng.randint(15, 50),
                               comm="checkout")
    stats_series(ag, 60, 1260, [(NA, oip, 8080, 160), (NB, oip, 8080, 150)],
                 lambda t, i: ((0.35 if t < DOWN0 else 1.0) if T + 90 < t < FIX + 110 else 0.0,
                               0, 1.0), step=90)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "orders", "service": "orders-api"},
          {"summary": "orders-api 5xx ratio above 5 %", "error_ratio": "1.0"}).fire(DOWN0 + 40).resolve(FIX + 160)
    Alert(sc, "KubePodCrashLooping", "warning",
          {"namespace": "orders", "pod": pods_of(bw)[0].name, "container": "billing-worker"},
          {"summary": "Pod is crash looping."}).fire(T + 500).resolve(FIX + 200)
    w.run()
    sc.expect("P1", "P1: complete service unavailability — orders-api has no ready replica for "
              "10 minutes, checkout's calls to it are refused",
              "config_change", ent("Service", "db", "pg-sqlproxy"),
              [ent("Deployment", "orders", "orders-api"), ent("Service", "orders", "orders-api"),
               ent("Deployment", "orders", "billing-worker"), ent("Deployment", "db", "pg-sqlproxy"),
               ent("Deployment", "shop", "checkout")])


# =======================================================================================
# 56 — the sidecar injector's serving certificate expires
# =======================================================================================


@scenario("56-sidecar-injector-webhook-cert-expired",
          "the polaris sidecar injector's self-signed serving certificate (one year) expires; "
          "its MutatingWebhookConfiguration has failurePolicy Fail for every namespace labelled "
          "polaris-injection=enabled, so from then on every pod create there is rejected "
          "('failed calling webhook ... x509: certificate has expired or is not yet valid'): "
          "cart's HPA scale-up, a payments-api rollout, a CronJob run and the replacement of a "
          "catalog replica moved by the descheduler all fail; pods in other namespaces start "
          "normally. cart, short of capacity, errors 7 %; fixed when the certificate is "
          "regenerated 15 minutes later",
          "polarismesh/polaris-controller#50 (sidecar injector certificate expired, 'Error "
          "creating: Internal error occurred: failed calling webhook \"polaris.tencent.com\" ... "
          "x509: certificate has expired or is not yet valid'); adapted: two injected "
          "namespaces, four kinds of creates")
def s56(sc):
    w, ag, (NA, NB, NC) = kcluster(sc, [("node-a", "10.0.1.21", "eu-west-1a", "10.1.0.0/24"),
                                        ("node-b", "10.0.2.34", "eu-west-1b", "10.1.1.0/24"),
                                        ("node-c", "10.0.3.47", "eu-west-1c", "10.1.2.0/24")])
    for nsn, lab in (("shop", {"polaris-injection": "enabled"}),
                     ("payments", {"polaris-injection": "enabled"}),
                     ("polaris-system", {}), ("batch", {})):
        w.add(0, Namespace(w, nsn, lab))
    inj = w.deploy("polaris-system", "polaris-sidecar-injector", 2, [NA, NB],
                   "docker.io/polarismesh/polaris-controller:v1.7.3", "polaris-control",
                   port=9443, port_name="https", svc=False)
    w.service("polaris-system", "polaris-sidecar-injector", {"app": "polaris-sidecar-injector"},
              [("https", 443, 9443, "TCP")])
    w.secret("polaris-system", "polaris-sidecar-injector", "kubernetes.io/tls",
             {"tls.crt": "-----BEGIN CERTIFICATE-----\n(self-signed, CN=polaris-sidecar-injector."
                         "polaris-system.svc, notAfter 2026-11-27T10:03:00Z)\n-----END CERTIFICATE-----\n",
              "tls.key": "(redacted)"}, created=-86400 * 365)
    ca_old = ("-----BEGIN CERTIFICATE-----\nMIIDJzCCAg+gAwIBAgIUCC3p5cCAauj+g2+4vUXvB0lL3WkwDQYJKoZIhvcNAQEL\n"
              "(CN=polaris-sidecar-injector.polaris-system.svc, valid 2025-11-27T10:03:00Z..2026-11-27T10:03:00Z)\n"
              "-----END CERTIFICATE-----\n")
    mwc = w.add(0, MutatingWebhookConfiguration(
        w, "polaris-sidecar-injector", "polaris.tencent.com", "polaris-system",
        "polaris-sidecar-injector", "/inject", {"polaris-injection": "enabled"}, ca_old,
        labels={"app": "polaris-sidecar-injector"}))
    cart = w.deploy("shop", "cart", 3, [NA, NB, NC], img("shop/cart", "3.0.4"), "java")
    cat = w.deploy("shop", "catalog", 2, [NB, NC], img("shop/catalog", "7.3.0"), "gunicorn",
                   port=8000)
    pay = w.deploy("payments", "payments-api", 2, [NA, NC], img("payments/payments-api", "8.1.5"),
                   "payments-api", max_surge="1", max_unavailable="0", revision=41)
    hpa = w.add(0, HorizontalPodAutoscaler(w, cart, 3, 8))
    w.snapshot(0)
    cip = cart.service.cluster_ip
    healthy_stats(ag, 30, 1320, [(NA, cat.service.cluster_ip, 8000, 130),
                                 (NC, pay.service.cluster_ip, 8080, 90)], step=180)
    w.spawn(job_noise(w, 470, NB, fail_first=False))
    EXP, FIX = 180, 1080
    err = lambda tt: (f'Internal error occurred: failed calling webhook "polaris.tencent.com": failed '
                      f'to call webhook: Post "https://polaris-sidecar-injector.polaris-system.svc:443'
                      f'/inject?timeout=30s": tls: failed to verify certificate: x509: certificate has '
                      f'expired or is not yet valid: current time {at(tt)} is after 2026-11-27T10:03:00Z')
    retries = [0, 1, 3, 7, 15, 31, 63, 127, 255, 511, 700]

    def failing_creates(t0, involved, component, rs=None):
        times = [t0 + d for d in retries if t0 + d < FIX]
        if rs is not None:
            rs.failure = ("FailedCreate", err(t0), t0)
            w.sync(t0)
        yield from repeated_event(w, involved, "FailedCreate", times,
                                  lambda tt: f"Error creating: {err(tt)}", component=component)

    def cart_scale():
        t = 300
        yield t
        hpa.current_util = 118
        hpa.last_scale = t
        w.event(t, ref(hpa), "SuccessfulRescale",
                "New size: 5; reason: cpu resource utilization (percentage of request) above target",
                component="horizontal-pod-autoscaler")
        cart.replicas = 5
        cart.generation += 1
        cart.current.replicas = 5
        w.sync(t)
        rs = cart.current
        w.event(t, ("Deployment", "shop", "cart", cart.uid), "ScalingReplicaSet",
                f"Scaled up replica set {rs.name} from 3 to 5", component="deployment-controller")
        yield from failing_creates(t + 1, ("ReplicaSet", "shop", rs.name, rs.uid),
                                   "replicaset-controller", rs)

    def pay_rollout():
        t = 420
        yield t
        change(sc, t, "change.deployment.rollout", wl("payments", "Deployment", "payments-api"),
               {"revision": 42, "image": img("payments/payments-api", "8.2.0"),
                "previous_image": img("payments/payments-api", "8.1.5"),
                "application": "payments-api"}, node=NA)
        rs = new_revision(w, t + 1, pay, image=img("payments/payments-api", "8.2.0"))
        yield t + 2
        scale_rs(w, t + 2, rs, 1)
        yield from failing_creates(t + 2, ("ReplicaSet", "payments", rs.name, rs.uid),
                                   "replicaset-controller", rs)

    def cron():
        t = 600
        yield t
        job = Job(w, "payments", f"settlement-export-{int((BASE.timestamp() + t) // 60)}",
                  "settlement-export", t,
                  [Container("settlement-export", img("payments/settlement-export", "2.0.3"),
                             "python3", port=None)])
        w.add(t, job)
        w.event(t, ("CronJob", "payments", "settlement-export", job.cron_uid), "SuccessfulCreate",
                f"Created job {job.name}", component="cronjob-controller")
        cron.job = job
        yield from failing_creates(t + 1, ("Job", "payments", job.name, job.uid), "job-controller")

    def deschedule():
        # the descheduler moves a catalog replica off the busy node; the replacement is refused
        t = 720
        yield t
        victim = pod_on(cat, NC)
        w.event(t, ("Pod", victim.ns, victim.name, victim.uid), "Descheduled",
                f"pod evicted from {NC} node by sigs.k8s.io/descheduler",
                component="sigs.k8s.io/descheduler")
        w.spawn(w.terminate(t, victim, grace=10))
        rs = cat.current
        yield from failing_creates(t + 1, ("ReplicaSet", "shop", rs.name, rs.uid),
                                   "replicaset-controller", rs)

    for proc in (cart_scale(), pay_rollout(), cron(), deschedule()):
        w.spawn(proc)

    def fix():
        yield FIX
        change(sc, FIX, "change.config.updated", {"cluster": CLUSTER},
               {"kind": "MutatingWebhookConfiguration", "name": "polaris-sidecar-injector",
                "field": "webhooks[0].clientConfig.caBundle", "user": "oncall",
                "reason": "regenerated serving certificate"}, agent="k8s-audit", node=NA)
        sec = w.get("Secret", "polaris-system", "polaris-sidecar-injector")
        sec.data["tls.crt"] = ("-----BEGIN CERTIFICATE-----\n(self-signed, CN=polaris-sidecar-injector."
                               "polaris-system.svc, notAfter 2027-11-27T10:18:00Z)\n-----END CERTIFICATE-----\n")
        mwc.ca_pem = ca_old.replace("2025-11-27T10:03:00Z..2026-11-27T10:03:00Z",
                                    "2026-11-27T10:18:00Z..2027-11-27T10:18:00Z")
        mwc.generation += 1
        w.sync(FIX)
        for d in (cart, pay, cat):
            d.current.failure = None
        yield FIX + 30
        rs = cart.current
        for i, node in enumerate([NA, NB]):
            p = w.new_rs_pod(rs, FIX + 30)
            w.create_pod(FIX + 30, p)
            w.event(FIX + 30, ("ReplicaSet", "shop", rs.name, rs.uid), "SuccessfulCreate",
                    f"Created pod: {p.name}", component="replicaset-controller")
            w.spawn(w.schedule(FIX + 31 + i, p, node, pull=False))
        replace_pod(w, FIX + 34, pods_of(cat)[0], NA)
        w.sync(FIX + 34)
        # the payments-api rollout resumes
        new_rs, old_rs = pay.current, pay.rs[-2]
        olds = [p for p in old_rs.pods() if p.active()]
        tt = FIX + 36
        for i, node in enumerate([NA, NC]):
            yield tt
            if i:
                scale_rs(w, tt, new_rs, i + 1)
            p = w.new_rs_pod(new_rs, tt)
            w.create_pod(tt, p)
            w.event(tt, ("ReplicaSet", "payments", new_rs.name, new_rs.uid), "SuccessfulCreate",
                    f"Created pod: {p.name}", component="replicaset-controller")
            w.spawn(w.schedule(tt + 1, p, node, pull=(i == 0), ready_after=6))
            tt += 16
            yield tt
            scale_rs(w, tt, old_rs, len(olds) - i - 1)
            w.event(tt, ("ReplicaSet", "payments", old_rs.name, old_rs.uid), "SuccessfulDelete",
                    f"Deleted pod: {olds[i].name}", component="replicaset-controller")
            w.spawn(w.terminate(tt, olds[i], grace=3))
            tt += 2

    def cron_resumes():
        yield FIX + 40
        job = cron.job
        mk = lambda: [Container("settlement-export", img("payments/settlement-export", "2.0.3"),
                                "python3", port=None)]
        p = w.create_pod(FIX + 40, cron_pod(w, job, mk(), FIX + 40))
        w.event(FIX + 40, ("Job", "payments", job.name, job.uid), "SuccessfulCreate",
                f"Created pod: {p.name}", component="job-controller")
        yield from w.schedule(FIX + 41, p, NB, pull=False, ready_after=None)
        tc = w.sim.now + 48
        yield tc
        for c in p.containers:
            c.state = ("terminated", "Completed", 0, c.state[1], tc, None, c.cid)
        p.phase = "Succeeded"
        job.complete_at = tc + 1
        w.sync(tc)
        w.event(tc + 1, ("Job", "payments", job.name, job.uid), "Completed", "Job completed",
                component="job-controller")

    w.spawn(fix())
    w.spawn(cron_resumes())
    stats_series(ag, 60, 1320, [(NB, cip, 8080, 240)],
                 lambda t, i: (0.07 if 480 <= t <= FIX + 60 else 0.0, 0, 1.0), step=90)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "cart"},
          {"summary": "cart 5xx ratio above 5 %", "error_ratio": "0.07"}).fire(520).resolve(FIX + 120)
    Alert(sc, "KubeHpaReplicasMismatch", "warning",
          {"namespace": "shop", "horizontalpodautoscaler": "cart"},
          {"summary": "HPA has not matched desired number of replicas."}).fire(300 + 600).resolve(FIX + 90)
    w.run()
    sc.expect("P2", "P2: partial functionality unavailable — no pod can be created in two "
              "namespaces (scale-up, rollout, CronJob, replacement all rejected); cart error "
              "rate 7 % > 5 %",
              "certificate_expired",
              "MutatingWebhookConfiguration/polaris-sidecar-injector",
              [ent("Service", "polaris-system", "polaris-sidecar-injector"),
               ent("Deployment", "shop", "cart"), ent("Deployment", "payments", "payments-api"),
               ent("Deployment", "shop", "catalog"), ent("Service", "shop", "cart")])


# =======================================================================================
# 57 — ResourceQuota exhausted: the rollout's surge pod is forbidden
# =======================================================================================


@scenario("57-resourcequota-blocks-rollout-surge",
          "in namespace lending a new backfill-worker Deployment (3 x 1 CPU) takes the "
          "namespace to 11.5 of its 12-CPU quota; the next loan-api rollout needs one surge pod "
          "(1 CPU) and the ReplicaSet controller is refused again and again: 'exceeded quota: "
          "compute-resources, requested: requests.cpu=1, used: requests.cpu=11500m, limited: "
          "requests.cpu=12'. The rollout exceeds its progress deadline; loan-api keeps serving "
          "on the old replicas",
          "Kubernetes resource-quota admission text (plugin/pkg/admission/resourcequota: "
          "'exceeded quota: %s, requested: %s, used: %s, limited: %s', FailedCreate 'Error "
          "creating: pods \"<rs>-\" is forbidden'); adapted: quota consumed by a teammate's new "
          "Deployment, discovered by a rollout's surge")
def s57(sc):
    w, ag, (NA, NB, NC) = kcluster(sc, [("node-a", "10.0.1.21", "eu-west-1a", "10.1.0.0/24"),
                                        ("node-b", "10.0.2.34", "eu-west-1b", "10.1.1.0/24"),
                                        ("node-c", "10.0.3.47", "eu-west-1c", "10.1.2.0/24")],
                                   cpu=16, mem_gi=64, instance_type="m6i.4xlarge")
    rq = w.add(0, ResourceQuota(w, "lending", "compute-resources",
                                {"pods": "40", "requests.cpu": "12", "requests.memory": "24Gi",
                                 "limits.memory": "48Gi"}))
    loan = w.deploy("lending", "loan-api", 4, [NA, NB, NC, NA], img("lending/loan-api", "3.9.0"),
                    "java", req_cpu="1", req_mem="1Gi", lim_mem="2Gi", max_surge="25%",
                    max_unavailable="0", revision=57)
    sco = w.deploy("lending", "scoring", 3, [NA, NB, NC], img("lending/scoring", "1.22.4"),
                   "python3", req_cpu="1", req_mem="2Gi", lim_mem="3Gi")
    docs = w.deploy("lending", "docs-renderer", 3, [NB, NC, NA], img("lending/docs-renderer", "0.9.2"),
                    "node", port=3000, req_cpu="500m", req_mem="512Mi", lim_mem="1Gi")
    fe = w.deploy("shop", "frontend", 3, [NA, NB, NC], img("shop/frontend", "4.12.0"), "node",
                  port=3000)
    w.snapshot(0)
    lip = loan.service.cluster_ip
    healthy_stats(ag, 30, 1380, [(NA, lip, 8080, 180), (NB, lip, 8080, 170),
                                 (NC, sco.service.cluster_ip, 8080, 120)], step=150)
    alert_flap(sc, 260, "CPUThrottlingHigh", "lending",
               {"pod": pod_on(sco, NB).name, "container": "scoring"}, 130)
    w.spawn(reschedule(w, 200, fe, NB))
    B0 = 120
    change(sc, B0, "change.deployment.rollout", wl("lending", "Deployment", "backfill-worker"),
           {"operation": "create", "user": "j.martens", "image": img("lending/backfill-worker", "0.1.0"),
            "replicas": 3}, agent="kubectl-audit", node=NA)

    def backfill():
        yield B0
        d = Deployment_like(w, "lending", "backfill-worker", B0)
        yield B0 + 1
        scale_rs(w, B0 + 1, d.current, 3)
        for i, node in enumerate([NA, NB, NC]):
            p = w.new_rs_pod(d.current, B0 + 1)
            w.create_pod(B0 + 1, p)
            w.event(B0 + 1, ("ReplicaSet", "lending", d.current.name, d.current.uid),
                    "SuccessfulCreate", f"Created pod: {p.name}", component="replicaset-controller")
            w.spawn(w.schedule(B0 + 2 + i, p, node, pull=True))

    w.spawn(backfill())
    T = 360
    new_img = img("lending/loan-api", "3.10.0")
    change(sc, T, "change.deployment.rollout", wl("lending", "Deployment", "loan-api"),
           {"revision": 58, "image": new_img, "previous_image": img("lending/loan-api", "3.9.0"),
            "application": "lending-loan-api"}, node=NA)

    def rollout():
        yield T + 1
        rs = new_revision(w, T + 1, loan, image=new_img)
        yield T + 2
        scale_rs(w, T + 2, rs, 1)
        msg = (f'pods "{rs.name}-" is forbidden: exceeded quota: compute-resources, requested: '
               f'requests.cpu=1, used: requests.cpu=11500m, limited: requests.cpu=12')
        rs.failure = ("FailedCreate", msg, T + 2)
        w.sync(T + 2)
        w.spawn(progress_deadline(w, T + 603, loan, rs))
        yield from repeated_event(
            w, ("ReplicaSet", "lending", rs.name, rs.uid), "FailedCreate",
            [T + 2 + d for d in (0, 1, 2, 5, 10, 21, 42, 85, 170, 341, 682, 1000)],
            f"Error creating: {msg}", component="replicaset-controller")

    w.spawn(rollout())
    Alert(sc, "KubeDeploymentRolloutStuck", "warning",
          {"namespace": "lending", "deployment": "loan-api"},
          {"summary": "Deployment rollout is not progressing."}).fire(T + 660)
    Alert(sc, "KubeQuotaAlmostFull", "info",
          {"namespace": "lending", "resourcequota": "compute-resources", "resource": "requests.cpu"},
          {"summary": "Namespace quota is going to be full.",
           "description": "Namespace lending is using 95.83% of its requests.cpu quota."}).fire(B0 + 905)
    w.run()
    sc.expect("P3", "P3: non-critical component failure — a rollout is blocked by the namespace "
              "quota; loan-api keeps serving on its previous replicas, no error-rate change",
              "quota_exceeded", ent("ResourceQuota", "lending", "compute-resources"),
              [ent("Deployment", "lending", "loan-api"),
               ent("Deployment", "lending", "backfill-worker")])


def Deployment_like(w, ns, name, t):
    """Create a Deployment (kubectl create) with a ReplicaSet of 0 replicas at t."""
    from generate import Deployment
    lab = {"app": name, "app.kubernetes.io/name": name}
    d = Deployment(w, ns, name, 3, lab, t, revision=1)
    d.generation = 1
    image = img(f"{ns}/{name}", "0.1.0")
    d.mk_containers = lambda: [Container(name, image, "java", req_cpu="1", req_mem="1Gi",
                                         lim_mem="2Gi", port=None)]
    d.qos, d.tolerations, d.priority_class = "Burstable", None, None
    rs = ReplicaSet(w, d, w.sc.k8s_suffix(w.sc.choice_len()), 1, d.mk_containers(), 0, t)
    d.rs.append(rs)
    w.add(t, d)
    w.add(t, rs)
    w.event(t, ("Deployment", ns, name, d.uid), "ScalingReplicaSet",
            f"Scaled up replica set {rs.name} from 0 to 3", component="deployment-controller")
    d.service = None
    return d


# =======================================================================================
# 58 — a CronJob whose runs keep failing
# =======================================================================================


@scenario("58-cronjob-backofflimitexceeded-reconcile",
          "the invoice-reconcile CronJob (every 10 minutes, backoffLimit 2) meets a ledger row "
          "with no currency: every pod exits 1 with a Python ValueError, each Job ends Failed "
          "(BackoffLimitExceeded) and KubeJobFailed fires for three runs in a row. Nothing "
          "user-facing depends on it; the shop keeps serving normally",
          "Kubernetes job controller text (pkg/controller/job: reason BackoffLimitExceeded, "
          "'Job has reached the specified backoff limit'; cronjob controller 'Saw completed job: "
          "..., status: Failed') and the kube-prometheus KubeJobFailed alert; adapted: a "
          "reconciliation CronJob failing on bad data")
def s58(sc):
    w, ag, (NA, NB, NC) = kcluster(sc, [("node-a", "10.0.1.21", "eu-west-1a", "10.1.0.0/24"),
                                        ("node-b", "10.0.2.34", "eu-west-1b", "10.1.1.0/24"),
                                        ("node-c", "10.0.3.47", "eu-west-1c", "10.1.2.0/24")])
    image = img("billing/invoice-reconcile", "2.4.0")
    mk = lambda: [Container("invoice-reconcile", image, "python3", req_cpu="200m",
                            req_mem="256Mi", lim_mem="512Mi", port=None)]
    cj = w.add(0, CronJob(w, "billing", "invoice-reconcile", "*/10 * * * *", mk(),
                          backoff_limit=2, last_schedule=0, last_success=84))
    fe = w.deploy("shop", "frontend", 3, [NA, NB, NC], img("shop/frontend", "4.12.0"), "node",
                  port=3000)
    cat = w.deploy("shop", "catalog", 2, [NB, NC], img("shop/catalog", "7.3.0"), "gunicorn",
                   port=8000)
    inv = w.deploy("billing", "invoice-api", 2, [NA, NC], img("billing/invoice-api", "5.0.2"),
                   "invoice-api")
    w.snapshot(0)
    healthy_stats(ag, 30, 2100, [(NA, cat.service.cluster_ip, 8000, 160),
                                 (NB, inv.service.cluster_ip, 8080, 70)], step=240)
    alert_flap(sc, 1500, "HighLatencyP99", "shop", {"service": "catalog"}, 120)
    w.spawn(reschedule(w, 950, cat, NA))
    tb = ('Traceback (most recent call last):\n  File "/app/reconcile.py", line 212, in <module>\n'
          '    main()\n  File "/app/reconcile.py", line 187, in main\n    amount = to_eur(row)\n'
          '  File "/app/fx.py", line 44, in to_eur\n    raise ValueError(f"invoice {row.id}: currency is None")\n'
          'ValueError: invoice INV-2026-118204: currency is None\n')
    first = {}

    def run(t0, nodes):
        yield t0
        cj.last_schedule = t0
        job = CronRunJob(w, cj, t0, mk())
        cj.jobs.append(job)
        first.setdefault("job", job.name)
        w.add(t0, job)
        w.event(t0, ref(cj), "SuccessfulCreate", f"Created job {job.name}",
                component="cronjob-controller")
        w.sync(t0)
        tt = t0
        for k in range(cj.backoff_limit + 1):
            p = w.create_pod(tt, cron_pod(w, job, mk(), tt))
            w.event(tt, ("Job", "billing", job.name, job.uid), "SuccessfulCreate",
                    f"Created pod: {p.name}", component="job-controller")
            yield from w.schedule(tt + 1, p, nodes[k % len(nodes)], pull=False, ready_after=None)
            tf = w.sim.now + 14 + sc.rng.randint(0, 6)
            yield tf
            ag[p.node].exit(tf, p, exit_code=1)
            for c in p.containers:
                c.state = ("terminated", "Error", 1, c.state[1], tf, tb, c.cid)
                c.ready = False
            p.phase = "Failed"
            w.sync(tf)
            tt = tf + 10 * (2 ** k)
            if k < cj.backoff_limit:
                yield tt
        job.failed_at = tf + 1
        job.failed_reason = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        yield tf + 1
        w.sync(tf + 1)
        w.event(tf + 1, ("Job", "billing", job.name, job.uid), "BackoffLimitExceeded",
                "Job has reached the specified backoff limit", typ="Warning",
                component="job-controller")
        w.event(tf + 2, ref(cj), "SawCompletedJob",
                f"Saw completed job: {job.name}, status: Failed", component="cronjob-controller")
        Alert(sc, "KubeJobFailed", "warning", {"namespace": "billing", "job_name": job.name},
              {"summary": "Job failed to complete.",
               "description": f"Job billing/{job.name} failed to complete. Removing failed job "
                              "after investigation should clear this alert."}).fire(tf + 60)

    for t0, nodes in ((600, [NB, NC, NA]), (1200, [NC, NA, NB]), (1800, [NA, NB, NC])):
        w.spawn(run(t0, nodes))
    w.run()
    sc.expect("P3", "P3: non-critical component failure — a batch job fails every run; no "
              "user-facing service is affected",
              "job_failure", ent("CronJob", "billing", "invoice-reconcile"),
              [ent("Job", "billing", first["job"])])


# =======================================================================================
# 59 — the StorageClass cannot provision: a StatefulSet scale-up stays Pending
# =======================================================================================


@scenario("59-storageclass-kms-provisioning-failed-kafka",
          "kafka is scaled from 3 to 4 brokers ahead of the sale; the new claim data-kafka-3 "
          "uses StorageClass gp3-encrypted, recreated last week with a new customer-managed KMS "
          "key the EBS CSI driver's role may not use: EC2 creates the volume and deletes it at "
          "once, the provisioner reports ProvisioningFailed '... InvalidVolume.NotFound: The "
          "volume ... does not exist', the scheduler's VolumeBinding pre-bind fails and kafka-3 "
          "stays Pending, cycling. The three existing brokers serve normally",
          "kubernetes-sigs/aws-ebs-csi-driver#1140 and #935 (ProvisioningFailed 'failed to get an "
          "available volume in EC2: InvalidVolume.NotFound', the driver role lacking permission "
          "on the StorageClass's kmsKeyId); scheduler text 'running PreBind plugin "
          "\"VolumeBinding\": binding volumes: provisioning failed for PVC'; adapted: a "
          "StatefulSet scale-up")
def s59(sc):
    specs = [(aws_name("10.0.1.61"), "10.0.1.61", "eu-west-1a", "10.0.1.0/24"),
             (aws_name("10.0.2.83"), "10.0.2.83", "eu-west-1b", "10.0.2.0/24"),
             (aws_name("10.0.3.29"), "10.0.3.29", "eu-west-1c", "10.0.3.0/24")]
    w, ag, (NA, NB, NC) = kcluster(sc, specs, cpu=16, mem_gi=64, instance_type="m6i.4xlarge")
    aws_node_ds(w, [NA, NB, NC])
    w.add(0, StorageClass(w, "gp3", "ebs.csi.aws.com", {"type": "gp3", "encrypted": "true"},
                          default=True))
    key = "arn:aws:kms:eu-west-1:481516234200:key/6f1d2c9e-04b7-4a55-9a3e-c1d8e2b7f310"
    scls = w.add(0, StorageClass(w, "gp3-encrypted", "ebs.csi.aws.com",
                                 {"type": "gp3", "encrypted": "true", "kmsKeyId": key,
                                  "csi.storage.k8s.io/fstype": "ext4"},
                                 created=-86400 * 6))
    kafka = w.statefulset("streaming", "kafka", 3, [NA, NB, NC],
                          "docker.io/bitnami/kafka:3.8.1", "java", 9092, req_cpu="2",
                          req_mem="8Gi", lim_mem="10Gi", service_name="kafka-headless")
    for i, zone in enumerate(("eu-west-1a", "eu-west-1b", "eu-west-1c")):
        pvc = w.add(0, PersistentVolumeClaim(w, "streaming", f"data-kafka-{i}", "gp3-encrypted",
                                             "500Gi", "ebs.csi.aws.com", labels={"app": "kafka"},
                                             created=-86400 * 200 + i * 40))
        w.add(0, PersistentVolume(w, pvc, zone=zone))
    sts_with_claims(kafka, "gp3-encrypted", "500Gi", "/bitnami/kafka")
    ingest = w.deploy("streaming", "event-ingest", 3, [NA, NB, NC],
                      img("streaming/event-ingest", "4.1.0"), "event-ingest")
    fe = w.deploy("shop", "frontend", 3, [NA, NB, NC], img("shop/frontend", "4.12.0"), "node",
                  port=3000)
    w.snapshot(0)
    kip = kafka.svc.cluster_ip
    healthy_stats(ag, 30, 1380, [(NA, kip, 9092, 240), (NB, kip, 9092, 230),
                                 (NC, ingest.service.cluster_ip, 8080, 150)], step=150)
    alert_flap(sc, 120, "CPUThrottlingHigh", "streaming",
               {"pod": pod_on(ingest, NA).name, "container": "event-ingest"}, 130)
    w.spawn(job_noise(w, 700, NC))
    T, END = 240, 1380
    change(sc, T, "change.deployment.rollout", wl("streaming", "StatefulSet", "kafka"),
           {"operation": "scale", "replicas": 4, "previous_replicas": 3, "user": "platform-bot"},
           agent="kubectl-audit", node=NA)
    prov = "ebs.csi.aws.com_ebs-csi-controller-6c8f9d7b54-q7wzs_3b0f2c1e-98d4-4c36-b0a2-5d1e7f6a9c21"

    def scale():
        yield T
        kafka.replicas = 4
        kafka.generation += 1
        w.sync(T)
        yield T + 1
        pvc = PersistentVolumeClaim(w, "streaming", "data-kafka-3", "gp3-encrypted", "500Gi",
                                    "ebs.csi.aws.com", labels={"app": "kafka"}, created=T + 1)
        w.add(T + 1, pvc)
        sref = ("StatefulSet", "streaming", "kafka", kafka.uid)
        w.event(T + 1, sref, "SuccessfulCreate",
                "create Claim data-kafka-3 Pod kafka-3 in StatefulSet kafka success",
                component="statefulset-controller")
        p = with_claim(sts_pod(w, kafka, 3, T + 1), "data-kafka-3", "/bitnami/kafka")
        w.create_pod(T + 1, p)
        w.event(T + 1, sref, "SuccessfulCreate", "create Pod kafka-3 in StatefulSet kafka successful",
                component="statefulset-controller")
        cref = ("PersistentVolumeClaim", "streaming", "data-kafka-3", pvc.uid)
        pref = ("Pod", "streaming", "kafka-3", p.uid)
        w.event(T + 1, cref, "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding",
                component="persistentvolume-controller")
        fail_msg = (f'failed to provision volume with StorageClass "gp3-encrypted": rpc error: code = '
                    f'Internal desc = Could not create volume "pvc-{pvc.uid}": failed to get an '
                    f'available volume in EC2: operation error EC2: DescribeVolumes, https response '
                    f'error StatusCode: 400, RequestID: {{rid}}, api error InvalidVolume.NotFound: The '
                    f"volume 'vol-0{{vid}}' does not exist.")
        bind_msg = ('running PreBind plugin "VolumeBinding": binding volumes: provisioning failed '
                    'for PVC "data-kafka-3"')
        tt = T + 2
        k = 0
        combined = None
        zones = [NB, NC, NA]
        while tt < END:
            yield tt
            node = zones[k % 3]
            pvc.selected_node = node
            w.sync(tt)
            w.event(tt, cref, "ExternalProvisioning",
                    "Waiting for a volume to be created either by the external provisioner "
                    "'ebs.csi.aws.com' or manually by the system administrator. If volume creation "
                    "is delayed, please verify that the provisioner is running and correctly "
                    "registered.", component="persistentvolume-controller")
            w.event(tt, cref, "Provisioning",
                    'External provisioner is provisioning volume for claim "streaming/data-kafka-3"',
                    component=prov)
            t2 = tt + 7 + sc.rng.randint(0, 4)
            yield t2
            m = fail_msg.format(rid=sc.uuid(), vid=sc.hexstr(16))
            if k < 4:
                w.event(t2, cref, "ProvisioningFailed", m, typ="Warning", component=prov)
            else:
                combined = combined or "(combined from similar events): " + m
                w.event(t2, cref, "ProvisioningFailed", combined, typ="Warning", component=prov)
            pvc.selected_node = None
            w.sync(t2)
            yield t2 + 1
            p.sched = ("False", "SchedulerError", bind_msg)
            w.sync(t2 + 1)
            w.event(t2 + 1, pref, "FailedScheduling", bind_msg, typ="Warning",
                    component="default-scheduler")
            tt = t2 + 1 + [20, 40, 80, 160, 240, 300][min(k, 5)]
            k += 1

    w.spawn(scale())
    Alert(sc, "KubeStatefulSetReplicasMismatch", "warning",
          {"namespace": "streaming", "statefulset": "kafka"},
          {"summary": "StatefulSet has not matched the expected number of replicas."}).fire(T + 900)
    w.run()
    sc.expect("P3", "P3: non-critical component failure — a capacity scale-up is blocked; the "
              "existing brokers serve normally, no error-rate change",
              "volume_provisioning_failure", "StorageClass/gp3-encrypted",
              [ent("PersistentVolumeClaim", "streaming", "data-kafka-3"),
               ent("StatefulSet", "streaming", "kafka")])
