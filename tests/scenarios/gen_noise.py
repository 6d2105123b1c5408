"""Scenarios 71-81: changes (what is and is not a cause) and routine noise.

Loaded by generate.py (`load_extensions`), sharing its REGISTRY. Expectations are what a
senior SRE concludes from the evidence, written before the engine was run.
"""

import json

from generate import *  # noqa: F401,F403  (World, Agent, Alert, base, shop, ... )

E = "node-e"

# ---------------------------------------------------------------------------------------
# Helpers (routine cluster mechanics the base generator does not model)
# ---------------------------------------------------------------------------------------


def patch_render(m, fn):
    """Wrap one model's render: fn(obj) edits the rendered object in place."""
    orig = m.render

    def render():
        obj = orig()
        fn(obj)
        return obj

    m.render = render


def disruption(w, t, pod, reason, message):
    """The DisruptionTarget pod condition the API server / controllers set before an
    eviction or a taint-manager deletion (PodDisruptionConditions, GA in 1.31)."""
    cond = {"type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
            "lastTransitionTime": at(t), "reason": reason, "message": message}

    def fn(obj):
        obj["status"].setdefault("conditions", []).insert(0, dict(cond))

    patch_render(pod, fn)
    w.sync(t)


def cordon(w, t, node_name):
    n = w.get("Node", None, node_name)
    n.unschedulable = True
    n.add_taint(t, "node.kubernetes.io/unschedulable", "NoSchedule")
    w.event(t, ("Node", None, node_name, n.uid), "NodeNotSchedulable",
            f"Node {node_name} status is now: NodeNotSchedulable", host=node_name)
    w.sync(t)


def uncordon(w, t, node_name):
    n = w.get("Node", None, node_name)
    n.unschedulable = False
    n.remove_taint("node.kubernetes.io/unschedulable")
    w.event(t, ("Node", None, node_name, n.uid), "NodeSchedulable",
            f"Node {node_name} status is now: NodeSchedulable", host=node_name)
    w.sync(t)


def start_containers(w, t, pod, node, ready_after=8):
    """The second half of a pod start (image present): Pulled / Created / Started, Running,
    Ready after `ready_after` s."""
    yield t
    ref = ("Pod", pod.ns, pod.name, pod.uid)
    for c in pod.containers:
        fp = f"spec.containers{{{c.name}}}"
        w.event(t, ref, "Pulled", f'Container image "{c.image}" already present on machine',
                host=node, field_path=fp)
        w.event(t, ref, "Created", f"Created container {c.name}", host=node, field_path=fp)
        w.event(t, ref, "Started", f"Started container {c.name}", host=node, field_path=fp)
        c.state = ("running", t)
        c.started = True
        c.cid = w.sc.hexstr(64)
        c.image_id = c.image.split(":")[0] + "@sha256:" + w.sc.hexstr(64)
    pod.phase = "Running"
    w.sync(t)
    if ready_after is not None:
        yield t + ready_after
        if alive(w, pod):
            for c in pod.containers:
                c.ready = True
            w.sync(t + ready_after)


def evict(w, t, p, target, by="api", grace=20, ready_after=8, pull=False,
          karpenter_reason="Underutilized"):
    """Move one pod off its node the way a drain does. `by`: "api" (kubectl drain /
    eviction API), "ca" (cluster-autoscaler scale-down), "taint" (NoExecute taint,
    taint-eviction-controller), "karpenter" (Karpenter disruption). ReplicaSet pods are
    replaced on `target` at once; StatefulSet pods are recreated (same name) on `target`
    after the old one is gone. Returns the replacement (None for StatefulSet pods)."""
    ref = ("Pod", p.ns, p.name, p.uid)
    if by == "ca":
        w.event(t, ref, "ScaleDown", "deleting pod for node scale down",
                component="cluster-autoscaler")
        disruption(w, t, p, "EvictionByEvictionAPI", "Eviction API: evicting")
    elif by == "taint":
        w.event(t, ref, "TaintManagerEviction", f"Marking for deletion Pod {p.ns}/{p.name}",
                component="taint-eviction-controller")
        disruption(w, t, p, "DeletionByTaintManager", "Taint manager: deleting due to NoExecute taint")
    elif by == "karpenter":
        w.event(t, ref, "Evicted", f"Evicted pod: {karpenter_reason}", component="karpenter")
        disruption(w, t, p, "EvictionByEvictionAPI", "Eviction API: evicting")
    else:
        disruption(w, t, p, "EvictionByEvictionAPI", "Eviction API: evicting")
    kind = p.owner[1] if p.owner else None
    if kind == "ReplicaSet":
        new = replace_pod(w, t, p, None)
        w.spawn(w.schedule(t + 1, new, target, pull=pull, ready_after=ready_after))
        w.spawn(w.terminate(t, p, grace=grace))
        return new
    if kind == "StatefulSet":
        w.spawn(sts_move(w, t, p, target, grace, ready_after))
        return None
    w.spawn(w.terminate(t, p, grace=grace))
    return None


def sts_move(w, t, p, target, grace=20, ready_after=15):
    yield from w.terminate(t, p, grace=grace)
    t2 = w.sim.now + 1
    yield t2
    sts = [m for m in w.objs.values() if m.kind == "StatefulSet" and m.uid == p.owner[3]][0]
    np_ = Pod(w, p.ns, p.name, dict(p.labels), p.owner, sts.mk_containers(), created=t2)
    w.create_pod(t2, np_)
    w.event(t2, ("StatefulSet", sts.ns, sts.name, sts.uid), "SuccessfulCreate",
            f"create Pod {p.name} in StatefulSet {sts.name} successful",
            component="statefulset-controller")
    yield from w.schedule(t2 + 1, np_, target, pull=False, ready_after=ready_after)


def workload_key(p):
    wl_ = p.workload()
    return (p.ns, wl_["kind"], wl_["name"]) if wl_ else (p.ns, "Pod", p.name)


def spread_target(w, p, candidates, planned):
    """The candidate node with the fewest pods of p's workload (the scheduler's default
    PodTopologySpread / SelectorSpread scoring), then the fewest pods; `planned` holds
    (workload, node) of replacements not bound yet."""
    key = workload_key(p)

    def score(n):
        same = sum(1 for q in w.pods() if q.node == n and q.active() and workload_key(q) == key)
        same += sum(1 for k, pn in planned if k == key and pn == n)
        total = sum(1 for q in w.pods() if q.node == n and q.active())
        return (same, total, candidates.index(n))

    return min(candidates, key=score)


def drain(w, t, node_name, targets, by="api", grace=20, step=1):
    """Evict every non-DaemonSet pod of a node, one every `step` s; each replacement goes to
    the target node with the fewest replicas of its workload. A process."""
    yield t
    victims = [p for p in w.pods() if p.node == node_name and p.active()
               and not (p.owner and p.owner[1] == "DaemonSet")]
    planned = []
    for i, p in enumerate(victims):
        tt = t + i * step
        yield tt
        if alive(w, p):
            n = spread_target(w, p, list(targets), planned)
            planned.append((workload_key(p), n))
            evict(w, tt, p, n, by=by, grace=grace)


def remove_node(w, t, node_name, event=True):
    """The Node object goes away (instance terminated): its remaining pods (DaemonSet
    pods) are deleted with it."""
    n = w.get("Node", None, node_name)
    for p in [p for p in w.pods() if p.node == node_name]:
        if p.owner and p.owner[1] == "DaemonSet":
            ds = [m for m in w.objs.values() if m.kind == "DaemonSet" and m.uid == p.owner[3]]
            if ds:
                ds[0].desired -= 1
        w.delete(t, p)
    w.delete(t, n)
    if event:
        w.event(t + 1, ("Node", None, node_name, n.uid), "RemovingNode",
                f"Node {node_name} event: Removing Node {node_name} from Controller",
                component="node-controller")
    w.sync(t)


def join_node(w, ag, t, name, ip, zone, cidr, ready_after=35, daemonsets=(), labels=None,
              instance_type="m6i.2xlarge", taints=None):
    """A new node registers (NotReady until the CNI is up), then DaemonSet pods start."""
    yield t
    n = Node(w, name, ip, zone, cidr, created=t, labels=labels, instance_type=instance_type,
             taints=taints)
    n.set_cond(t, "Ready", "False", "KubeletNotReady",
               "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
               "message:Network plugin returns error: cni plugin not initialized")
    w.add(t, n)
    w.ip_next[name] = 10
    a = Agent(w, name)
    w.agents[name] = a
    ag[name] = a
    w.event(t, ("Node", None, name, n.uid), "RegisteredNode",
            f"Node {name} event: Registered Node {name} in Controller", component="node-controller")
    w.event(t + 1, ("Node", None, name, n.uid), "Starting", "Starting kubelet.", host=name)
    yield t + ready_after
    n.set_cond(t + ready_after, "Ready", "True", "KubeletReady", "kubelet is posting ready status")
    w.event(t + ready_after, ("Node", None, name, n.uid), "NodeReady",
            f"Node {name} status is now: NodeReady", host=name)
    w.sync(t + ready_after)
    for ds in daemonsets:
        ds.desired += 1
        p = w.new_ds_pod(ds, t + ready_after)
        w.create_pod(t + ready_after, p)
        w.event(t + ready_after, ("DaemonSet", ds.ns, ds.name, ds.uid), "SuccessfulCreate",
                f"Created pod: {p.name}", component="daemonset-controller")
        w.spawn(w.schedule(t + ready_after + 1, p, name, pull=True, ready_after=3))
    return n


def reboot(w, t, node_name, down=90, kubelet=None, os_image=None, kernel=None):
    """A node reboots (OS / kubelet upgrade): the kubelet goes silent, the node controller
    marks it Unknown after the 40 s grace period, the kubelet comes back `down` s later
    (Starting, Rebooted, NodeReady) with a new boot id; pods still on it (DaemonSet pods)
    get their containers restarted. A process."""
    n = w.get("Node", None, node_name)
    yield t + 40
    node_unreachable(w, t + 40, node_name, pod_events=True)
    tb = t + down
    yield tb
    boot = w.sc.uuid()
    if kubelet:
        n.kubelet = kubelet

    def fn(obj):
        ni = obj["status"]["nodeInfo"]
        ni["bootID"] = boot
        if os_image:
            ni["osImage"] = os_image
        if kernel:
            ni["kernelVersion"] = kernel

    patch_render(n, fn)
    w.event(tb, ("Node", None, node_name, n.uid), "Starting", "Starting kubelet.", host=node_name)
    w.event(tb, ("Node", None, node_name, n.uid), "Rebooted",
            f"Node {node_name} has been rebooted, boot id: {boot}", typ="Warning", host=node_name)
    node_ready_again(w, tb, node_name)
    for p in [p for p in w.pods() if p.node == node_name and p.active()]:
        for c in p.containers:
            started = c.state[1] if c.state[0] == "running" else t - 600
            c.last = ("terminated", "Unknown", 255, started, t, None, c.cid)
            c.restarts += 1
            c.state = ("running", tb + 6)
            c.cid = w.sc.hexstr(64)
            c.ready = False
    w.sync(tb)
    yield tb + 9
    for p in [p for p in w.pods() if p.node == node_name and p.active()]:
        for c in p.containers:
            c.ready = True
    w.sync(tb + 9)


def hpa_up(w, t, dep, to, nodes, reason="cpu resource utilization (percentage of request) above target",
           starter=None):
    """HPA scale-up; the new pods start together (one instant), on `nodes` round robin.
    `starter(pod, node, t)` may replace the default healthy start."""
    yield t
    frm = dep.replicas
    if to <= frm:
        return
    w.event(t, ("HorizontalPodAutoscaler", dep.ns, dep.name, None), "SuccessfulRescale",
            f"New size: {to}; reason: {reason}", component="horizontal-pod-autoscaler")
    dep.replicas = to
    dep.generation += 1
    dep.current.replicas = to
    w.event(t, ("Deployment", dep.ns, dep.name, dep.uid), "ScalingReplicaSet",
            f"Scaled up replica set {dep.current.name} from {frm} to {to}",
            component="deployment-controller")
    w.sync(t)
    yield t + 1
    for i in range(to - frm):
        p = w.new_rs_pod(dep.current, t + 1)
        w.create_pod(t + 1, p)
        w.event(t + 1, ("ReplicaSet", dep.ns, dep.current.name, dep.current.uid),
                "SuccessfulCreate", f"Created pod: {p.name}", component="replicaset-controller")
        n = nodes[i % len(nodes)]
        if starter:
            w.spawn(starter(p, n, t + 2))
        else:
            w.spawn(w.schedule(t + 2, p, n, pull=False, ready_after=8))


def hpa_down(w, t, dep, to, reason="All metrics below target"):
    """HPA scale-down (after the 5 min stabilization window): the newest pods go."""
    yield t
    frm = dep.replicas
    if to >= frm:
        return
    w.event(t, ("HorizontalPodAutoscaler", dep.ns, dep.name, None), "SuccessfulRescale",
            f"New size: {to}; reason: {reason}", component="horizontal-pod-autoscaler")
    dep.replicas = to
    dep.generation += 1
    rs = dep.current
    rs.replicas = to
    w.event(t, ("Deployment", dep.ns, dep.name, dep.uid), "ScalingReplicaSet",
            f"Scaled down replica set {rs.name} from {frm} to {to}",
            component="deployment-controller")
    live = sorted([p for p in rs.pods() if p.active()], key=lambda p: p.created)
    for p in live[to:]:
        w.event(t, ("ReplicaSet", rs.ns, rs.name, rs.uid), "SuccessfulDelete",
                f"Deleted pod: {p.name}", component="replicaset-controller")
        w.spawn(quick_delete(w, t, p, grace=4))
    w.sync(t)


def quick_delete(w, t, p, grace=4):
    """Graceful deletion as a watch with coalesced updates shows it: deletionTimestamp +
    Killing, then DELETED once the containers have stopped."""
    yield t
    p.deletion = t + 30
    for c in p.containers:
        w.event(t, ("Pod", p.ns, p.name, p.uid), "Killing", f"Stopping container {c.name}",
                host=p.node, field_path=f"spec.containers{{{c.name}}}")
    w.sync(t)
    yield t + grace
    for c in p.containers:
        c.ready = False
        if c.state[0] == "running":
            c.state = ("terminated", "Completed", 0, c.state[1], t + grace, None, c.cid)
    w.delete(t + grace, p)
    w.sync(t + grace)


def warmup_probes(w, p, fails=4, period=5, first_refused=2):
    """A starting pod's readiness probe fails while it warms up (connection refused, then
    503), as the kubelet reports it; the pod becomes ready afterwards. A process."""
    t = w.sim.now
    while True:
        t += 2
        yield t
        if not alive(w, p):
            return
        if p.containers[0].state[0] == "running" and p.ip:
            break
    c = p.containers[0]
    t0 = t + 1
    for k in range(fails):
        tk = t0 + k * period
        yield tk
        if not alive(w, p) or p.is_ready():
            return
        if k < first_refused:
            msg = (f'Readiness probe failed: Get "http://{p.ip}:{c.port}/ready": dial tcp '
                   f'{p.ip}:{c.port}: connect: connection refused')
        else:
            msg = "Readiness probe failed: HTTP probe failed with statuscode: 503"
        w.event(tk, ("Pod", p.ns, p.name, p.uid), "Unhealthy", msg, typ="Warning", host=p.node,
                field_path=f"spec.containers{{{c.name}}}")


def rollout_restart(w, sc, t, dep, nodes, user="oncall@example.com", step=16, ready_after=6,
                    agent="kubectl-audit", on_new=None):
    """`kubectl rollout restart`: the only template change is the restartedAt annotation;
    same image, same spec. Emits the audit marker and spawns the rolling update."""
    image = dep.current.containers[0].image
    change(sc, t, "change.deployment.rollout", wl(dep.ns, "Deployment", dep.name),
           {"revision": dep.revision + 1, "image": image, "previous_image": image,
            "trigger": "kubectl rollout restart", "user": user,
            "annotation": "kubectl.kubernetes.io/restartedAt"}, agent=agent, node=nodes[0])
    w.spawn(rolling_update(w, t + 1, dep, nodes, step=step, ready_after=ready_after,
                           annotations={"kubectl.kubernetes.io/restartedAt": at(int(t))},
                           pull_first=False, on_new=on_new))


class CronJob(Model):
    """batch/v1 CronJob (not part of the base world: emitted by hand, see cron_touch)."""
    kind = "CronJob"

    def __init__(self, w, ns, name, schedule, image, comm, created=-86400 * 60, backoff_limit=1):
        self.w, self.ns, self.name = w, ns, name
        self.uid = w.sc.uuid()
        self.schedule = schedule
        self.image, self.comm = image, comm
        self.created = created
        self.backoff_limit = backoff_limit
        self.active = []
        self.last_schedule = None
        self.last_success = None

    def containers(self):
        return [Container(self.name, self.image, self.comm, req_cpu="200m", req_mem="256Mi",
                          lim_mem="512Mi", port=None)]

    def render(self):
        status = {}
        if self.active:
            status["active"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": j.name,
                                 "namespace": self.ns, "uid": j.uid} for j in self.active]
        if self.last_schedule is not None:
            status["lastScheduleTime"] = at(self.last_schedule)
        if self.last_success is not None:
            status["lastSuccessfulTime"] = at(self.last_success)
        return {
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": self.name, "namespace": self.ns, "uid": self.uid,
                         "resourceVersion": "", "generation": 1,
                         "creationTimestamp": at(self.created),
                         "labels": {"app.kubernetes.io/name": self.name}},
            "spec": {"schedule": self.schedule, "concurrencyPolicy": "Forbid",
                     "suspend": False, "successfulJobsHistoryLimit": 3,
                     "failedJobsHistoryLimit": 1,
                     "jobTemplate": {"spec": {"backoffLimit": self.backoff_limit,
                                              "template": {"spec": {
                                                  "containers": [c.spec() for c in self.containers()],
                                                  "restartPolicy": "Never"}}}}},
            "status": status,
        }


def cron_touch(w, t, cj):
    w._emit_obj(t, "modified", cj)


def cron_cleanup(w, t, cj, keep=3):
    """The CronJob controller deletes finished Jobs beyond successfulJobsHistoryLimit
    (the garbage collector removes their pods)."""
    hist = getattr(cj, "history", [])
    while len(hist) > keep:
        job = hist.pop(0)
        w.event(t, ("CronJob", cj.ns, cj.name, cj.uid), "SuccessfulDelete",
                f"Deleted job {job.name}", component="cronjob-controller")
        for p in job.pods():
            w.delete(t, p)
        w.delete(t, job)
    w.sync(t)


def cron_run(w, t, cj, nodes, outcomes, agent_of=None, message=None, run_secs=(25, 50),
             cleanup=False):
    """One CronJob run: a Job whose pods run in turn; `outcomes` lists each attempt
    ("fail" or "ok"). A last "fail" with no retry left ends in BackoffLimitExceeded."""
    yield t
    if cleanup:
        cj.history = getattr(cj, "history", [])
        cron_cleanup(w, t, cj)
    ns = cj.ns
    job = Job(w, ns, f"{cj.name}-{int((BASE.timestamp() + t) // 60)}", cj.name, t, cj.containers())
    job.cron_uid = cj.uid
    bl = cj.backoff_limit

    def fn(obj):
        obj["spec"]["backoffLimit"] = bl

    patch_render(job, fn)
    w.add(t, job)
    if cleanup:
        cj.history.append(job)
    cj.active = [job]
    cj.last_schedule = t
    cron_touch(w, t, cj)
    w.event(t, ("CronJob", ns, cj.name, cj.uid), "SuccessfulCreate", f"Created job {job.name}",
            component="cronjob-controller")
    labels = {"batch.kubernetes.io/controller-uid": job.uid,
              "batch.kubernetes.io/job-name": job.name, "controller-uid": job.uid,
              "job-name": job.name}
    tt = t
    for k, outcome in enumerate(outcomes):
        p = Pod(w, ns, f"{job.name}-{w.sc.k8s_suffix(5)}", labels,
                ("batch/v1", "Job", job.name, job.uid), cj.containers(), created=tt,
                restart_policy="Never")
        w.create_pod(tt, p)
        w.event(tt, ("Job", ns, job.name, job.uid), "SuccessfulCreate", f"Created pod: {p.name}",
                component="job-controller")
        node = nodes[k % len(nodes)]
        yield from w.schedule(tt + 1, p, node, pull=False, ready_after=0)
        te = w.sim.now + w.sc.rng.randint(*run_secs)
        yield te
        ok = outcome == "ok"
        if not ok and agent_of:
            agent_of(node).exit(te, p, exit_code=1)
        for c in p.containers:
            c.ready = False
            c.state = ("terminated", "Completed" if ok else "Error", 0 if ok else 1, c.state[1],
                       te, None if ok else message, c.cid)
        p.phase = "Succeeded" if ok else "Failed"
        if ok:
            job.complete_at = te + 1
            w.sync(te)
            w.event(te + 1, ("Job", ns, job.name, job.uid), "Completed", "Job completed",
                    component="job-controller")
            cj.active = []
            cj.last_success = te + 1
            cron_touch(w, te + 2, cj)
            w.event(te + 2, ("CronJob", ns, cj.name, cj.uid), "SawCompletedJob",
                    f"Saw completed job: {job.name}, status: Complete",
                    component="cronjob-controller")
            return job
        w.sync(te)
        if k == len(outcomes) - 1:
            job.failed_at = te + 1
            job.failed_reason = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
            w.sync(te + 1)
            w.event(te + 1, ("Job", ns, job.name, job.uid), "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit", typ="Warning",
                    component="job-controller")
            cj.active = []
            cron_touch(w, te + 2, cj)
            w.event(te + 2, ("CronJob", ns, cj.name, cj.uid), "SawCompletedJob",
                    f"Saw completed job: {job.name}, status: Failed",
                    component="cronjob-controller")
            return job
        tt = te + 10 * (2 ** k)  # the job controller's pod-failure back-off


def stats_windows(ag, t0, t1, flows, step, silent=()):
    """healthy_stats that skips nodes while their agent is silent: silent = [(node, a, b)]."""
    t = t0
    while t <= t1:
        for node, addr, port, attempts in flows:
            if any(node == n and a <= t < b for n, a, b in silent):
                continue
            a_ = ag[node]
            a_.connect_stats(t, addr, port,
                             max(1, int(attempts * (0.8 + 0.4 * a_.sc.rng.random()))))
        t += step


# =======================================================================================
# 71-80
# =======================================================================================

PG_EIO = ('2026-11-27 10:08:12.804 UTC [1] PANIC:  could not fdatasync file "pg_wal/000000010000004A000000C3": '
          'Input/output error\n2026-11-27 10:08:12.806 UTC [1] LOG:  database system is shut down')


@scenario("71-rollout-restart-then-disk-failure",
          "someone runs `kubectl rollout restart deployment/catalog` (new pods, same image and "
          "spec; only the kubectl.kubernetes.io/restartedAt template annotation differs) and the "
          "restart completes healthy; four minutes later the data disk (nvme1n1) of node-b starts "
          "failing: block I/O errors, multi-second I/O latency, hung tasks, postgres replica "
          "orders-db-1 fails its liveness probe and crash-loops on EIO, and the freshly restarted "
          "catalog pod that landed on node-b crash-loops too while its siblings on node-a and "
          "node-c (same revision) stay healthy; orders-api reads fail 6 %. The restart is not the "
          "cause: the failing pods are exactly the ones on node-b",
          "kubectl reference, `kubectl rollout restart` (kubernetes.io/docs/reference/kubectl/"
          "generated/kubectl_rollout/kubectl_rollout_restart) — it only patches "
          "spec.template.metadata.annotations[kubectl.kubernetes.io/restartedAt] "
          "(kubernetes-client/csharp#657 shows the request body); adapted: the restart is "
          "followed by an unrelated NVMe data-disk failure (the failing-disk chain of scenario 10)")
def s71(sc):
    w, ag = base(sc)
    db = w.statefulset("shop", "orders-db", 3, [A, B, C], "docker.io/library/postgres:16.4",
                       "postgres", 5432, req_mem="2Gi", lim_mem="4Gi")
    api = shop(w, "orders-api", 2, [A, C])
    cat = shop(w, "catalog", 3, [A, B, C], revision=29)
    fe = shop(w, "frontend", 2, [A, C])
    w.snapshot(0)
    std_noise(w, ag, sc, job=(640, C),
              flap=(120, "CPUThrottlingHigh", "shop", {"pod": pod_on(fe, A).name, "container": "frontend"}),
              stats=(30, 1080, [(A, cat.service.cluster_ip, 8000, 210),
                                (C, api.service.cluster_ip, 8080, 160)], 150))
    R = 180
    news = []
    rollout_restart(w, sc, R, cat, [A, B, C], user="maria.k@example.com",
                    on_new=lambda p: news.append(p))
    T = 480  # first disk error, 4 minutes after the restart finished
    ab = ag[B]
    db1 = [p for p in pods_of(db) if p.name == "orders-db-1"][0]

    def disk():
        yield T
        cat_b = [p for p in news if p.node == B][0]
        ab.io_error(T, "nvme1n1", "ioerr", op="write", count=2, pod=db1)
        ab.latency_spike(T + 7, "nvme1n1", 2840.0, count=6, pod=db1)
        ab.io_error(T + 19, "nvme1n1", "medium", op="read", count=3)
        ab.io_error(T + 41, "nvme1n1", "ioerr", op="write", count=7, pod=cat_b)
        ab.latency_spike(T + 52, "nvme1n1", 5120.0, count=12)
        ab.pressure(T + 60, "io", 61.3, 44.0, 30, full10=49.5)
        ab.hung_task(T + 124, "jbd2/nvme1n1-8", 122)
        ab.io_error(T + 200, "nvme1n1", "ioerr", op="write", count=16)
        ab.pressure(T + 360, "io", 73.8, 68.1, 330, full10=64.0)
        for k in range(3):
            yield T + 30 + k * 10
            w.event(T + 30 + k * 10, ("Pod", db1.ns, db1.name, db1.uid), "Unhealthy",
                    'Liveness probe failed: command timed out: "pg_isready -U postgres -h 127.0.0.1 -p 5432" timed out after 5s',
                    typ="Warning", host=B, field_path="spec.containers{orders-db}")
        w.set_ready(T + 50, db1, False)
        yield T + 51
        w.event(T + 51, ("Pod", db1.ns, db1.name, db1.uid), "Killing",
                "Container orders-db failed liveness probe, will be restarted", host=B,
                field_path="spec.containers{orders-db}")
        yield T + 81
        ab.exit(T + 81, db1, signal=9)
        w.crash(T + 81, db1, reason="Error", exit_code=137, waiting=None)
        yield T + 96
        yield from crash_loop(w, db1, T + 96, 1080, run=3, exit_code=1, message=PG_EIO,
                              agent=ab, event_every=2)

    def catalog_b():
        yield T + 45
        p = [p for p in news if p.node == B][0]
        for k in range(2):
            yield T + 45 + k * 10
            w.event(T + 45 + k * 10, ("Pod", p.ns, p.name, p.uid), "Unhealthy",
                    f'Liveness probe failed: Get "http://{p.ip}:8000/healthz": context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
                    typ="Warning", host=B, field_path="spec.containers{catalog}")
        yield from crash_loop(w, p, T + 75, 1080, run=12, exit_code=1,
                              message="OSError: [Errno 5] Input/output error: '/var/cache/catalog/index-0042.bin'",
                              agent=ab, event_every=2)

    w.spawn(disk())
    w.spawn(catalog_b())
    for t in every(T + 60, 1060, 90):
        p = pod_on(api, A)
        ag[A].refused(t + sc.rng.randint(0, 9), p, db1.ip, 5432, sc.rng.randint(3, 8), comm="orders-api")
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "orders-api"},
          {"summary": "orders-api 5xx ratio above 5 %", "error_ratio": "0.06"}).fire(T + 100)
    Alert(sc, "PostgresReplicaDown", "warning", {"namespace": "shop", "statefulset": "orders-db",
                                                 "pod": "orders-db-1"},
          {"summary": "Postgres replica orders-db-1 is down."}).fire(T + 260)
    w.run()
    sc.expect("P2", "P2: partial functionality unavailable — a database replica and a catalog "
              "replica on the failing node are down; orders-api read errors 6 % > 5 %",
              "disk_failure", "Node/node-b",
              [ent("StatefulSet", "shop", "orders-db"), ent("Deployment", "shop", "catalog"),
               ent("Deployment", "shop", "orders-api")])


@scenario("72-hotfix-after-upstream-failure",
          "billing's subscriptions service loses all ready endpoints (readiness 503, no change "
          "and no infrastructure symptom on it); billing-api gets refused connects and fails "
          "46 %, frontend's billing pages fail 14 %; five minutes into the outage the billing "
          "team ships a hotfix of billing-api (2.4.1: shorter client timeout and retries) which "
          "rolls out healthy, yet the errors continue unchanged until subscriptions recovers, "
          "13 minutes after the outage began. The rollout came after the first symptom: it is not "
          "the cause",
          "PubNub status, 2022-08-30 (status.pubnub.com/incidents/51l13cw6w4nd): an upstream "
          "subscription-management provider failed; the team worked around it while it stayed "
          "down, and recovery came only when the provider recovered. Adapted: the upstream is "
          "an in-cluster service with no ready endpoints; the workaround is a caller rollout")
def s72(sc):
    w, ag = base(sc)
    sub = w.deploy("billing", "subscriptions", 2, [B, C], img("billing/subscriptions", "3.12.0"),
                   "subscriptions", port=8080)
    api = w.deploy("billing", "billing-api", 3, [A, B, C], img("billing/billing-api", "2.4.0"),
                   "billing-api", port=8080, revision=31)
    fe = shop(w, "frontend", 2, [A, C])
    cat = shop(w, "catalog", 2, [A, B])
    w.snapshot(0)
    sip = sub.service.cluster_ip
    std_noise(w, ag, sc, job=(860, B),
              flap=(90, "CPUThrottlingHigh", "shop", {"pod": pod_on(cat, A).name, "container": "catalog"}),
              stats=(30, 1260, [(A, cat.service.cluster_ip, 8000, 200)], 180))
    T, HF, R = 200, 500, 980

    def story():
        for i, p in enumerate(pods_of(sub)):
            yield T + i * 5
            w.event(T + i * 5, ("Pod", p.ns, p.name, p.uid), "Unhealthy",
                    "Readiness probe failed: HTTP probe failed with statuscode: 503",
                    typ="Warning", host=p.node, field_path="spec.containers{subscriptions}")
        for i, p in enumerate(pods_of(sub)):
            yield T + 12 + i * 5
            w.set_ready(T + 12 + i * 5, p, False)
        for t in every(T + 150, R - 40, 200):
            for p in pods_of(sub):
                yield t
                w.event(t, ("Pod", p.ns, p.name, p.uid), "Unhealthy",
                        "Readiness probe failed: HTTP probe failed with statuscode: 503",
                        typ="Warning", host=p.node, field_path="spec.containers{subscriptions}")
        for i, p in enumerate(pods_of(sub)):
            yield R + i * 6
            w.set_ready(R + i * 6, p, True)

    def callers():
        for t in every(T + 25, R, 100):
            yield t
            for p in [p for p in pods_of(api) if p.is_ready()]:
                ag[p.node].refused(t + sc.rng.randint(0, 12), p, sip, 8080, sc.rng.randint(12, 55),
                                   comm="billing-api")

    w.spawn(story())
    w.spawn(callers())
    change(sc, HF, "change.deployment.rollout", wl("billing", "Deployment", "billing-api"),
           {"revision": 32, "image": img("billing/billing-api", "2.4.1"),
            "previous_image": img("billing/billing-api", "2.4.0"), "application": "billing-api",
            "commit_message": "hotfix: 2s client timeout + retries for subscriptions calls"})
    w.spawn(rolling_update(w, HF + 2, api, [A, B, C], image=img("billing/billing-api", "2.4.1"),
                           step=15))
    stats_series(ag, 60, 1260, [(A, sip, 8080, 150), (B, sip, 8080, 140), (C, sip, 8080, 150)],
                 lambda t, i: (1.0 if T + 20 <= t <= R + 10 else 0.0, 0, 1.0), step=120)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "billing", "service": "billing-api"},
          {"summary": "billing-api 5xx ratio above 5 %", "error_ratio": "0.46"}).fire(T + 60).resolve(R + 60)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "frontend"},
          {"summary": "frontend 5xx ratio above 5 %", "error_ratio": "0.14"}).fire(T + 80).resolve(R + 70)
    w.run()
    sc.expect("P1", "P1: complete service unavailability — subscriptions has no ready endpoints; "
              "every billing call that needs it fails (billing-api 46 %, frontend 14 %)",
              "dependency_failure", ent("Service", "billing", "subscriptions"),
              [ent("Deployment", "billing", "subscriptions"), ent("Deployment", "billing", "billing-api"),
               ent("Service", "billing", "billing-api"), ent("Deployment", "shop", "frontend")])


FEATURES_OK = "\n".join(f"feature_{i:03d}: true" for i in range(180)) + "\n"
FEATURES_BAD = "\n".join(f"feature_{i:03d}: true" for i in range(212)) + "\n"
CART_PANIC = ('Exception in thread "config-watcher" java.lang.IllegalStateException: features.yaml '
              'holds 212 features, more than the preallocated limit of 200\n'
              '\tat com.example.cart.features.FeatureTable.load(FeatureTable.java:88)\n'
              '\tat com.example.cart.config.Reloader.onChange(Reloader.java:41)')


@scenario("73-configmap-change-crashloop-with-unrelated-restart",
          "cart-config's generated features.yaml grows from 180 to 212 entries (a hard limit of "
          "200 in cart); a minute later the kubelet syncs the mounted volume, every cart pod "
          "hot-reloads it, throws and then crash-loops on start; cart has no ready endpoints and "
          "frontend's add-to-cart fails 34 %. Twenty seconds after the ConfigMap edit an "
          "unrelated `kubectl rollout restart` of reviews rolls healthy pods. Reverted after 12 "
          "minutes",
          "Cloudflare, 2025-11-18 outage (blog.cloudflare.com/18-november-2025-outage): a "
          "generated feature file doubled in size, was propagated to every proxy, which failed "
          "on loading it past a preallocated limit. Adapted: the file is a mounted ConfigMap "
          "(kubelet volume sync, kubernetes.io/docs/concepts/configuration/configmap) and a "
          "harmless restart of another workload happens the same minute")
def s73(sc):
    w, ag = base(sc)
    cm = w.configmap("shop", "cart-config", {"features.yaml": FEATURES_OK,
                                             "application.yaml": "redis:\n  url: redis://cart-redis:6379\n"})
    cart = shop(w, "cart", 3, [A, B, C], volume_cm="cart-config")
    rev = shop(w, "reviews", 2, [B, C], revision=12)
    fe = shop(w, "frontend", 2, [A, C])
    w.snapshot(0)
    cip = cart.service.cluster_ip
    std_noise(w, ag, sc, flap=(900, "CPUThrottlingHigh", "shop",
                               {"pod": pod_on(fe, C).name, "container": "frontend"}),
              stats=(30, 1200, [(B, rev.service.cluster_ip, 3000, 120)], 180))
    T, REV = 180, 900
    change(sc, T, "change.config.updated", {"cluster": CLUSTER, "namespace": "shop"},
           {"kind": "ConfigMap", "name": "cart-config", "application": "shop-cart",
            "revision": "4be07a1"})

    def story():
        yield T + 1
        cm.data["features.yaml"] = FEATURES_BAD
        w.sync(T + 1)
        for i, p in enumerate(pods_of(cart)):
            w.spawn(crash_loop(w, p, T + 62 + i * 9, REV + 40, run=6, exit_code=1,
                               message=CART_PANIC, agent=ag[p.node], event_every=2, recover=True))
        yield REV
        cm.data["features.yaml"] = FEATURES_OK
        w.sync(REV)

    w.spawn(story())
    rollout_restart(w, sc, T + 20, rev, [B, C], user="devon.r@example.com")
    change(sc, REV - 1, "change.config.updated", {"cluster": CLUSTER, "namespace": "shop"},
           {"kind": "ConfigMap", "name": "cart-config", "application": "shop-cart",
            "revision": "91d3c5e", "rollback": True})
    for t in every(T + 90, REV + 60, 120):
        for p in pods_of(fe):
            ag[p.node].refused(t + sc.rng.randint(0, 10), p, cip, 8080, sc.rng.randint(8, 30))
    stats_series(ag, 60, 1200, [(A, cip, 8080, 130), (C, cip, 8080, 120)],
                 lambda t, i: (0.9 if T + 75 <= t <= REV + 60 else 0.0, 0, 1.0), step=120)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "frontend"},
          {"summary": "frontend 5xx ratio above 5 %", "error_ratio": "0.34"}).fire(T + 130).resolve(REV + 120)
    w.run()
    sc.expect("P1", "P1: complete service unavailability — cart has 0 ready replicas and no ready "
              "endpoints; add-to-cart fails (frontend 34 %)",
              "config_change", ent("ConfigMap", "shop", "cart-config"),
              [ent("Deployment", "shop", "cart"), ent("Service", "shop", "cart"),
               ent("Deployment", "shop", "frontend")])


def start_after_failed_mount(w, t, pod, node, cm_name, clear_after=26, ready_after=8):
    """kubelet starts a pod before its ConfigMap / kube-root-ca.crt informers have
    registered it: MountVolume.SetUp fails with `... not registered` (retried with a
    back-off, events aggregated), then succeeds and the pod starts normally."""
    yield from w.schedule(t, pod, node, start=False)
    ref = ("Pod", pod.ns, pod.name, pod.uid)
    msgs = [f'MountVolume.SetUp failed for volume "config" : object "{pod.ns}"/"{cm_name}" not registered',
            f'MountVolume.SetUp failed for volume "kube-api-access" : object "{pod.ns}"/"kube-root-ca.crt" not registered']
    for dt_ in (1, 2, 4, 8, 16):
        if dt_ >= clear_after:
            break
        yield t + dt_
        for m in msgs:
            w.event(t + dt_, ref, "FailedMount", m, typ="Warning", host=node)
    yield from start_containers(w, t + clear_after, pod, node, ready_after=ready_after)


@scenario("74-transient-failedmount-not-registered",
          "the HPA scales checkout 3 -> 5; both new pods land on nodes whose kubelet has not yet "
          "registered the pods' ConfigMap and kube-root-ca.crt objects, so MountVolume.SetUp "
          "fails with 'object \"shop\"/\"checkout-config\" not registered' (Warning FailedMount, "
          "retried and aggregated) for ~25 s, then the volumes mount, the containers start and "
          "the pods become ready; routine background otherwise — nothing should open an incident",
          "kubernetes/kubernetes#105204 ('sporadic \"MountVolume.SetUp failed for volume ... not "
          "registered\" failures seen'): a kubelet race between pod admission and the "
          "configmap/secret manager's registration; the retry succeeds. Adapted: two pods of an "
          "HPA scale-up hit it and recover within ~25 s")
def s74(sc):
    w, ag = base(sc)
    w.configmap("shop", "checkout-config", {"PAYMENTS_URL": "http://payments.shop.svc:8080",
                                            "TIMEOUT_MS": "1500"})
    co = shop(w, "checkout", 3, [A, B, C], volume_cm="checkout-config")
    fe = shop(w, "frontend", 2, [A, C])
    cat = shop(w, "catalog", 2, [B, C])
    w.snapshot(0)
    std_noise(w, ag, sc, resched=(80, cat, A, True), job=(520, B),
              flap=(700, "CPUThrottlingHigh", "shop", {"pod": pod_on(fe, A).name, "container": "frontend"}),
              stats=(30, 960, [(A, co.service.cluster_ip, 8080, 190),
                               (C, cat.service.cluster_ip, 8000, 150)], 120))

    def starter(p, n, t):
        return start_after_failed_mount(w, t, p, n, "checkout-config",
                                        clear_after=22 + sc.rng.randint(0, 8))

    w.spawn(hpa_up(w, 300, co, 5, [B, C], starter=starter))
    alert_flap(sc, 285, "HighLatencyP99", "shop", {"service": "checkout"}, 150,
               annotations={"p99_latency_seconds": "1.2"})
    w.run()


@scenario("75-rolling-update-slow-readiness",
          "search-api 1.45.0 rolls out (maxSurge 1, maxUnavailable 0): each new JVM pod fails its "
          "readiness probe for ~20 s while it warms up (connection refused, then HTTP 503), "
          "becomes ready, and only then is an old pod removed; the rollout completes in about "
          "2.5 minutes with serving capacity never below 4; frontend's p99 rises to 1.4 s for "
          "two minutes — nothing should open an incident",
          "Kubernetes documentation: readiness probes keep a starting pod out of the Service "
          "until it passes (kubernetes.io/docs/tasks/configure-pod-container/"
          "configure-liveness-readiness-startup-probes) and a RollingUpdate with "
          "maxUnavailable 0 removes old pods only once new ones are available "
          "(kubernetes.io/docs/concepts/workloads/controllers/deployment)")
def s75(sc):
    w, ag = base(sc)
    sapi = w.deploy("search", "search-api", 4, [A, B, C, A], img("search/search-api", "1.44.0"),
                    "java", port=8080, revision=17, max_surge="1", max_unavailable="0",
                    req_mem="1Gi", lim_mem="2Gi")
    fe = shop(w, "frontend", 2, [B, C])
    cat = shop(w, "catalog", 2, [A, C])
    w.snapshot(0)
    std_noise(w, ag, sc, job=(760, C),
              flap=(620, "CPUThrottlingHigh", "search", {"pod": pods_of(sapi)[0].name, "container": "search-api"}),
              stats=(30, 960, [(B, sapi.service.cluster_ip, 8080, 260),
                               (C, sapi.service.cluster_ip, 8080, 240),
                               (A, cat.service.cluster_ip, 8000, 150)], 120))
    T = 240
    change(sc, T, "change.deployment.rollout", wl("search", "Deployment", "search-api"),
           {"revision": 18, "image": img("search/search-api", "1.45.0"),
            "previous_image": img("search/search-api", "1.44.0"), "application": "search-api"})
    w.spawn(rolling_update(w, T + 2, sapi, [B, C, A, B], image=img("search/search-api", "1.45.0"),
                           step=34, ready_after=21,
                           on_new=lambda p: w.spawn(warmup_probes(w, p, fails=4))))
    alert_flap(sc, T + 50, "HighLatencyP99", "shop", {"service": "frontend"}, 120,
               annotations={"p99_latency_seconds": "1.4"})
    w.run()


@scenario("76-autoscaler-scale-down-drain",
          "after the morning peak the cluster-autoscaler finds node-d and node-e unneeded: it "
          "soft-taints them, then scales them down one at a time — ToBeDeletedByClusterAutoscaler "
          "taint, ScaleDown events, pods evicted through the eviction API (Killing), replacements "
          "scheduled on node-a..c and Ready within seconds, the instances terminated and the "
          "Node objects (with their node-exporter pods) removed — nothing should open an incident",
          "kubernetes/autoscaler cluster-autoscaler FAQ, 'How does scale-down work?' (a node "
          "unneeded for 10 minutes is tainted, drained respecting PodDisruptionBudgets, and "
          "deleted; CA records ScaleDown events on the node and its pods)")
def s76(sc):
    w, ag = base(sc, nodes=(A, B, C, D, E))
    ne = w.daemonset("monitoring", "node-exporter", [A, B, C, D, E],
                     "quay.io/prometheus/node-exporter:v1.8.2", "node_exporter", port=9100,
                     tolerations=[{"operator": "Exists"}])
    fe = shop(w, "frontend", 3, [A, D, B])
    cat = shop(w, "catalog", 2, [E, C])
    rev = shop(w, "reviews", 2, [D, E])
    co = shop(w, "checkout", 2, [A, C])
    w.snapshot(0)
    std_noise(w, ag, sc, job=(760, C),
              flap=(840, "CPUThrottlingHigh", "shop", {"pod": pod_on(co, A).name, "container": "checkout"}))
    T0, T1, T2 = 60, 240, 520
    ts_ = str(int(BASE.timestamp()) + T0)

    def ca():
        yield T0
        for n in (D, E):
            w.get("Node", None, n).add_taint(T0, "DeletionCandidateOfClusterAutoscaler",
                                             "PreferNoSchedule", ts_)
        w.sync(T0)
        for tn, n, targets in ((T1, D, [B, C]), (T2, E, [A, B])):
            yield tn
            node = w.get("Node", None, n)
            node.add_taint(tn, "ToBeDeletedByClusterAutoscaler", "NoSchedule",
                           str(int(BASE.timestamp()) + tn))
            w.event(tn, ("Node", None, n, node.uid), "ScaleDown",
                    "marked the node as toBeDeleted/unschedulable", component="cluster-autoscaler")
            w.sync(tn)
            w.spawn(drain(w, tn + 1, n, targets, by="ca", grace=15))
            yield tn + 70
            w.event(tn + 70, ("ConfigMap", "kube-system", "cluster-autoscaler-status", None),
                    "ScaleDown", f"Scale-down: node {n} removed with drain",
                    component="cluster-autoscaler")
            yield tn + 95
            remove_node(w, tn + 95, n)

    w.spawn(ca())
    stats_windows(ag, 30, 1020, [(A, fe.service.cluster_ip, 3000, 220), (B, cat.service.cluster_ip, 8000, 180),
                                 (D, co.service.cluster_ip, 8080, 120), (E, fe.service.cluster_ip, 3000, 90)],
                  120, silent=[(D, T1 + 60, 10**6), (E, T2 + 60, 10**6)])
    w.run()


@scenario("77-spot-interruption-drain",
          "node-d is a Spot instance: AWS sends the two-minute interruption notice, the "
          "aws-node-termination-handler taints it (spot-itn, NoExecute) and cordons it, the taint "
          "manager deletes its pods (TaintManagerEviction) and the ReplicaSets recreate them on "
          "node-a..c (frontend and catalog run 3 replicas spread over nodes; email-worker's single "
          "replica is away for ~12 s), the instance terminates, the node goes Unknown, is removed, "
          "and a replacement Spot node joins — nothing should open an incident",
          "AWS EC2 documentation, 'Spot Instance interruption notices' (two-minute warning) and "
          "aws/aws-node-termination-handler (cordon, drain, optional node taint "
          "aws-node-termination-handler/spot-itn); decision: the single-replica queue worker's "
          "~12 s gap (no Service, no callers) is not an incident")
def s77(sc):
    w, ag = base(sc, nodes=(A, B, C, D))
    nd = w.get("Node", None, D)
    nd.labels.update({"eks.amazonaws.com/capacityType": "SPOT",
                      "node.kubernetes.io/lifecycle": "spot"})
    ne = w.daemonset("monitoring", "node-exporter", [A, B, C, D],
                     "quay.io/prometheus/node-exporter:v1.8.2", "node_exporter", port=9100,
                     tolerations=[{"operator": "Exists"}])
    fe = shop(w, "frontend", 3, [A, B, D])
    cat = shop(w, "catalog", 3, [B, C, D])
    mail = w.deploy("comms", "email-worker", 1, [D], img("comms/email-worker", "2.3.1"),
                    "python3", port=None, svc=False)
    w.snapshot(0)
    std_noise(w, ag, sc, job=(700, B))
    T = 200
    itn = "spot-itn-" + sc.hexstr(12)

    def interruption():
        yield T
        w.event(T, ("Node", None, D, nd.uid), "SpotInterruption",
                f"Spot ITN received. Instance will be interrupted at {at(T + 120)}",
                component="aws-node-termination-handler")
        nd.add_taint(T, "aws-node-termination-handler/spot-itn", "NoExecute", itn)
        cordon(w, T, D)
        yield T + 1
        targets = iter([A, C, B, A, C])
        for p in [p for p in w.pods() if p.node == D and p.active()
                  and not (p.owner and p.owner[1] == "DaemonSet")]:
            evict(w, T + 1, p, next(targets), by="taint", grace=25)
        yield T + 30
        w.event(T + 30, ("Node", None, D, nd.uid), "CordonAndDrain",
                "Node successfully cordoned and drained", component="aws-node-termination-handler")
        yield T + 160  # terminated at T+120; node controller gives up 40 s later
        node_unreachable(w, T + 160, D, pod_events=True)
        yield T + 215
        w.event(T + 215, ("Node", None, D, nd.uid), "DeletingNode",
                f"Deleting node {D} because it does not exist in the cloud provider",
                component="cloud-node-lifecycle-controller")
        remove_node(w, T + 215, D)

    w.spawn(interruption())
    w.spawn(join_node(w, ag, T + 300, E, "10.0.2.73", "eu-west-1b", "10.1.4.0/24",
                      daemonsets=[ne], labels={"eks.amazonaws.com/capacityType": "SPOT",
                                               "node.kubernetes.io/lifecycle": "spot"}))
    alert_flap(sc, T + 175, "TargetDown", "monitoring", {"job": "node-exporter", "service": "node-exporter"}, 110)
    stats_windows(ag, 30, 1020, [(A, cat.service.cluster_ip, 8000, 200), (B, fe.service.cluster_ip, 3000, 160),
                                 (D, cat.service.cluster_ip, 8000, 120)], 120,
                  silent=[(D, T + 120, 10**6)])
    w.run()


@scenario("78-node-os-upgrade-rolling",
          "the platform team rolls an OS + kubelet patch (v1.30.6 -> v1.30.7) through node-a..d "
          "one at a time, each announced by a change.node.maintenance marker: cordon, drain "
          "(eviction API), reboot — the node goes Unknown for ~90 s and its node-exporter pod is "
          "marked not ready — the kubelet comes back (Starting, Rebooted, NodeReady, new boot id), "
          "DaemonSet containers restart once, uncordon; every Deployment keeps ready replicas "
          "throughout — no P1/P2, nothing should open an incident",
          "kubeadm documentation, 'Upgrading kubeadm clusters — upgrade worker nodes' (drain, "
          "upgrade kubelet, restart, uncordon: kubernetes.io/docs/tasks/administer-cluster/"
          "kubeadm/kubeadm-upgrade) and dfds/postmortems PM2024-002 (a node rollover during an "
          "AMI update); adapted: every workload runs >= 2 replicas, so unlike DFDS there is no "
          "user impact")
def s78(sc):
    w, ag = base(sc, nodes=(A, B, C, D))
    ne = w.daemonset("monitoring", "node-exporter", [A, B, C, D],
                     "quay.io/prometheus/node-exporter:v1.8.2", "node_exporter", port=9100,
                     tolerations=[{"operator": "Exists"}])
    fe = shop(w, "frontend", 4, [A, B, C, D])
    co = shop(w, "checkout", 2, [B, D])
    w.snapshot(0)
    std_noise(w, ag, sc, flap=(1500, "CPUThrottlingHigh", "shop",
                               {"pod": pods_of(fe)[0].name, "container": "frontend"}))
    order = [A, B, C, D]
    silent = []
    for k, n in enumerate(order):
        t = 120 + k * 420
        silent.append((n, t + 70, t + 160))
        change(sc, t, "change.node.maintenance", {"cluster": CLUSTER, "node": n},
               {"action": "os_upgrade", "kubelet": "v1.30.7", "previous_kubelet": "v1.30.6",
                "os_image": "Amazon Linux 2023.6.20241121", "ticket": "OPS-5120"},
               agent="platform-ops", node=A)

    def upgrade():
        for k, n in enumerate(order):
            t = 120 + k * 420
            yield t + 5
            cordon(w, t + 5, n)
            others = [x for x in order if x != n]
            w.spawn(drain(w, t + 10, n, others, by="api", grace=20, step=0))
            yield t + 70
            w.spawn(reboot(w, t + 70, n, down=90, kubelet="v1.30.7",
                           os_image="Amazon Linux 2023.6.20241121",
                           kernel="6.1.115-126.197.amzn2023.x86_64"))
            yield t + 200
            uncordon(w, t + 200, n)

    w.spawn(upgrade())
    stats_windows(ag, 30, 1860, [(A, co.service.cluster_ip, 8080, 200), (C, fe.service.cluster_ip, 3000, 140)],
                  300, silent=silent)
    w.run()


@scenario("79-hpa-and-cronjobs-hour",
          "an ordinary hour: the HPA follows load on frontend 3 -> 6 -> 10 and back 10 -> 7 -> 4 "
          "(KubeHpaMaxedOut fires for a few minutes at 10), a metrics-rollup CronJob runs every "
          "5 minutes and two of its runs lose their first pod (exit 1) and succeed on the retry; "
          "clean connect statistics — nothing should open an incident",
          "Kubernetes documentation: HorizontalPodAutoscaler (scale-down after the 300 s "
          "stabilization window: kubernetes.io/docs/tasks/run-application/"
          "horizontal-pod-autoscale) and Jobs' pod back-off failure policy (a failed pod is "
          "retried up to backoffLimit: kubernetes.io/docs/concepts/workloads/controllers/job)")
def s79(sc):
    w, ag = base(sc, coredns=False)
    fe = shop(w, "frontend", 3, [A, B, C])
    cj = CronJob(w, "batch", "metrics-rollup", "*/5 * * * *",
                 img("batch/metrics-rollup", "0.9.4"), "python3", backoff_limit=2)
    w.snapshot(0)
    w.add(0, cj)
    for k in range(11):
        t = 300 + k * 300
        outcomes = ["fail", "ok"] if k in (3, 8) else ["ok"]
        w.spawn(cron_run(w, t, cj, [[A, B, C][k % 3], [A, B, C][(k + 1) % 3]], outcomes,
                         agent_of=lambda n: ag[n], run_secs=(14, 40),
                         message="psycopg2.errors.SerializationFailure: could not serialize access due to concurrent update"))
    w.spawn(hpa_up(w, 600, fe, 6, [A, B, C]))
    w.spawn(hpa_up(w, 1080, fe, 10, [B, C, A]))
    w.spawn(hpa_down(w, 2460, fe, 7))
    w.spawn(hpa_down(w, 2940, fe, 4))
    alert_flap(sc, 1200, "KubeHpaMaxedOut", "shop", {"horizontalpodautoscaler": "frontend"}, 420)
    healthy_stats(ag, 60, 3540, [(A, fe.service.cluster_ip, 3000, 300)], 1200)
    w.run()


INVOICE_410 = ('Traceback (most recent call last):\n  File "/app/export.py", line 212, in <module>\n'
               '    statements = bank.fetch_statements(since)\n  File "/app/bank.py", line 57, in '
               'fetch_statements\n    resp.raise_for_status()\nrequests.exceptions.HTTPError: 410 Client '
               'Error: Gone for url: https://api.partner-bank.example/v1/statements?since=2026-11-27')


@scenario("80-cronjob-always-failing-among-rollouts",
          "a busy release afternoon: catalog, reviews and checkout roll out healthy new versions, "
          "a report CronJob succeeds every run; meanwhile every run of billing's invoice-export "
          "CronJob fails (the partner bank retired its v1 API: HTTP 410), its retry fails too and "
          "each Job ends BackoffLimitExceeded. Nothing else is affected; the one real problem is "
          "the failing batch job",
          "Kubernetes documentation, Jobs: 'Pod backoff failure policy' — after backoffLimit "
          "retries the Job is marked Failed with reason BackoffLimitExceeded "
          "(kubernetes.io/docs/concepts/workloads/controllers/job); adapted: the job's external "
          "API was retired, so every scheduled run fails while rollouts go on around it")
def s80(sc):
    w, ag = base(sc, coredns=False)
    cat = shop(w, "catalog", 2, [A, C], revision=29)
    rev = shop(w, "reviews", 2, [B, C], revision=12)
    co = shop(w, "checkout", 2, [A, B], revision=14)
    inv = CronJob(w, "billing", "invoice-export", "*/20 * * * *",
                  img("billing/invoice-export", "1.7.3"), "python3", backoff_limit=1)
    rep = CronJob(w, "batch", "report-export", "*/20 * * * *",
                  img("batch/report-export", "1.4.2"), "python3", backoff_limit=2)
    w.snapshot(0)
    w.add(0, inv)
    w.add(0, rep)
    jobs = []

    def runs():
        for k in range(3):
            t = 300 + k * 1200
            w.spawn(cron_run(w, t + 40, rep, [[A, B, C][k % 3]], ["ok"]))
            yield t
            job = yield from cron_run(w, t, inv, [[B, C, A][k % 3], [C, A, B][k % 3]],
                                      ["fail", "fail"], agent_of=lambda n: ag[n],
                                      message=INVOICE_410, run_secs=(6, 12))
            jobs.append(job.name)

    w.spawn(runs())
    for t, dep, tag, prev, revn, nodes in ((420, cat, "7.4.0", "7.3.0", 30, [C, A]),
                                           (1560, rev, "3.4.0", "3.3.2", 13, [B, C]),
                                           (2820, co, "2.8.2", "2.8.0", 15, [A, B])):
        path = SHOP[dep.name][0]
        change(sc, t, "change.deployment.rollout", wl("shop", "Deployment", dep.name),
               {"revision": revn, "image": img(path, tag), "previous_image": img(path, prev),
                "application": f"shop-{dep.name}"})
        w.spawn(rolling_update(w, t + 2, dep, nodes, image=img(path, tag), step=15))
    std_noise(w, ag, sc, flap=(2000, "CPUThrottlingHigh", "shop", {"pod": pods_of(co)[0].name, "container": "checkout"}),
              stats=(60, 3300, [(A, cat.service.cluster_ip, 8000, 200), (C, co.service.cluster_ip, 8080, 150)], 600))
    w.run()
    sc.expect("P3", "P3: non-critical component failure — a batch export fails every run "
              "(BackoffLimitExceeded); no user-facing service is affected",
              "job_failure", ent("CronJob", "billing", "invoice-export"),
              [ent("Job", "billing", j) for j in jobs])


# ---------------------------------------------------------------------------------------
# 81: a day of routine churn
# ---------------------------------------------------------------------------------------

DAY = 86400
N10 = [f"node-{x}" for x in "abcdefghij"]
NA, NB, NC, ND, NE, NF, NG, NH, NI, NJ = N10
NK = "node-k"
STABLE = [NA, NB, ND, NE, NG, NH]


def bump(tag, minor=False):
    a, b, c = (int(x) for x in tag.split("."))
    return f"{a}.{b + 1}.0" if minor else f"{a}.{b}.{c + 1}"


def fast_canon(obj):
    """World._canon without the deep copy (same string): blank resourceVersion, dump,
    restore. The day scenario re-renders a large world thousands of times."""
    md = obj["metadata"]
    rv = md.get("resourceVersion")
    md["resourceVersion"] = ""
    s = json.dumps(obj, sort_keys=True)
    md["resourceVersion"] = rv
    return s


@scenario("81-routine-churn-day",
          "24 hours (10:00 to 10:00 UTC) of a 10-node production cluster (Karpenter-managed, two "
          "Spot nodes) with 22 workloads (17 Deployments, a StatefulSet, 2 DaemonSets, 2 CronJobs) "
          "in 8 namespaces doing nothing unusual: 15 healthy "
          "rollouts (four with ~15 s of readiness-probe failures while new pods warm up, one a "
          "Reloader restart after a ConfigMap edit), two more ConfigMap edits that need no "
          "restart, CronJobs every 15 minutes and hourly (three runs lose their first pod and "
          "succeed on the retry; old Jobs are cleaned up), three HPAs following the day's traffic "
          "curve (frontend touches its max of 10 at the evening peak), a Spot interruption of "
          "node-j at 21:23 (Karpenter's Warning SpotInterrupted / TerminatingOnInterruption / "
          "FailedDraining / InstanceTerminating events, pods evicted and rescheduled, node-k "
          "launched), Karpenter consolidating the underutilized node-i at 03:00, kernel upgrades "
          "of node-c and node-f after midnight (cordon, drain, reboot, uncordon), scattered "
          "single kubelet probe timeouts, warning alerts that resolve within minutes "
          "(CPUThrottlingHigh, KubePodNotReady, KubeHpaMaxedOut, TargetDown, "
          "NodeClockSkewDetected, HighLatencyP99 at 1.6 s) and clean connect statistics — "
          "nothing should open an incident",
          "documented Kubernetes behaviour, combined: Deployment rolling updates and readiness "
          "probes, HPA with its 300 s scale-down stabilization, CronJob/Job back-off and "
          "history limits (kubernetes.io/docs), kubectl drain + kubelet restart for node "
          "upgrades (kubeadm upgrade docs), Karpenter's Spot-interruption handling and "
          "consolidation (karpenter.sh docs; the event sequence as real clusters record it), "
          "stakater Reloader rolling restarts on ConfigMap change")
def s81(sc):
    w, ag = base(sc, nodes=tuple(N10), coredns_nodes=[NA, NE])
    w._canon = fast_canon
    for n in N10:
        w.get("Node", None, n).labels.update({
            "karpenter.sh/capacity-type": "spot" if n in (NI, NJ) else "on-demand",
            "karpenter.sh/nodepool": "default"})
    ne = w.daemonset("monitoring", "node-exporter", N10, "quay.io/prometheus/node-exporter:v1.8.2",
                     "node_exporter", port=9100, tolerations=[{"operator": "Exists"}])
    fb = w.daemonset("logging", "fluent-bit", N10, "cr.fluentbit.io/fluent/fluent-bit:3.1.9",
                     "fluent-bit", port=2020, tolerations=[{"operator": "Exists"}])
    w.configmap("shop", "frontend-config", {"FEATURE_NEW_SEARCH": "false", "FEATURE_GIFT_CARDS": "true"})
    w.configmap("billing", "invoice-worker-config", {"BATCH_SIZE": "200", "QUEUE_URL": "amqp://rabbitmq.billing.svc:5672/invoices"})
    w.configmap("platform", "ingress-nginx-controller", {"proxy-body-size": "8m", "use-gzip": "true"})
    # workloads: (ns, name, replicas, tag, comm, port, svc, extra)
    specs = [
        ("shop", "frontend", 3, "4.12.0", "node", 3000, True, {"volume_cm": "frontend-config"}),
        ("shop", "checkout", 2, "2.8.0", "checkout", 8080, True, {}),
        ("shop", "cart", 3, "3.0.4", "java", 8080, True, {}),
        ("shop", "catalog", 3, "7.3.0", "gunicorn", 8000, True, {}),
        ("shop", "payments", 2, "1.19.2", "payments", 8080, True, {}),
        ("shop", "reviews", 2, "3.3.2", "node", 3000, True, {}),
        ("shop", "recommendations", 2, "0.31.0", "python3", 8080, True, {}),
        ("shop", "pricing", 2, "2.2.0", "pricing", 8080, True, {}),
        ("shop", "orders-api", 2, "6.0.3", "orders-api", 8080, True, {}),
        ("search", "search-api", 3, "1.44.0", "java", 8080, True, {"req_mem": "1Gi", "lim_mem": "2Gi"}),
        ("search", "search-indexer", 1, "1.44.0", "java", None, False, {}),
        ("billing", "billing-api", 3, "2.4.0", "billing-api", 8080, True, {}),
        ("billing", "subscriptions", 2, "3.12.0", "subscriptions", 8080, True, {}),
        ("billing", "invoice-worker", 2, "1.9.0", "python3", None, False, {"volume_cm": "invoice-worker-config"}),
        ("platform", "ingress-nginx-controller", 3, "1.11.3", "nginx", 80, True, {"volume_cm": "ingress-nginx-controller"}),
        ("platform", "cert-manager", 1, "1.16.1", "controller", None, False, {}),
    ]
    deps, tags = {}, {}
    k = 0
    for ns, name, reps, tag, comm, port, svc, extra in specs:
        nodes = [N10[(k + i) % 10] for i in range(reps)]
        k += reps
        path = f"{ns}/{name}" if ns != "platform" else f"platform/{name}"
        deps[name] = w.deploy(ns, name, reps, nodes, img(path, tag), comm, port=port, svc=svc,
                              revision=sc.rng.randint(8, 40), max_surge="1", max_unavailable="0",
                              **extra)
        deps[name].path = path
        tags[name] = tag
    db = w.statefulset("data", "orders-db", 3, [NB, ND, NG], "docker.io/library/postgres:16.4",
                       "postgres", 5432, req_mem="2Gi", lim_mem="4Gi")
    ledger = CronJob(w, "billing", "ledger-sync", "*/15 * * * *", img("billing/ledger-sync", "2.0.7"),
                     "python3", backoff_limit=3)
    report = CronJob(w, "data", "report-export", "0 * * * *", img("data/report-export", "1.4.2"),
                     "python3", backoff_limit=2)
    w.snapshot(0)
    w.add(0, ledger)
    w.add(0, report)
    rng = sc.rng

    def agent_of(n):
        return ag[n]

    # -- CronJobs: every 15 minutes and hourly ---------------------------------------------
    for i in range(DAY // 900):
        t = 300 + i * 900
        out = ["fail", "ok"] if i in (13, 41, 77) else ["ok"]
        w.spawn(cron_run(w, t, ledger, [STABLE[i % 6], STABLE[(i + 2) % 6]], out,
                         agent_of=agent_of, run_secs=(20, 70), cleanup=True,
                         message="sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) "
                                 "server closed the connection unexpectedly"))
    for i in range(DAY // 3600):
        t = 3300 + i * 3600
        out = ["fail", "ok"] if i == 7 else ["ok"]
        w.spawn(cron_run(w, t, report, [STABLE[(i + 3) % 6], STABLE[(i + 4) % 6]], out,
                         agent_of=agent_of, run_secs=(90, 240), cleanup=True,
                         message="botocore.exceptions.ReadTimeoutError: Read timeout on endpoint URL: "
                                 "\"https://s3.eu-west-1.amazonaws.com/reports-prod/daily.parquet\""))

    # -- rollouts --------------------------------------------------------------------------
    ROLL = [NA, NB, NC, ND, NE, NF, NG, NH]
    warm = {"search-api", "cart", "checkout", "payments"}
    plan = [(1800, "catalog"), (3000, "reviews"), (4800, "checkout"), (6600, "search-api"),
            (9300, "pricing"), (11400, "cart"), (13500, "billing-api"), (15300, "frontend"),
            (18900, "payments"), (20700, "recommendations"), (23100, "orders-api"),
            (25200, "subscriptions"), (80400, "search-indexer"), (83100, "catalog")]
    for j, (t, name) in enumerate(plan):
        dep = deps[name]
        new = bump(tags[name], minor=(j % 3 == 0))
        change(sc, t, "change.deployment.rollout", wl(dep.ns, "Deployment", name),
               {"revision": dep.revision + 1, "image": img(dep.path, new),
                "previous_image": img(dep.path, tags[name]), "application": f"{dep.ns}-{name}"},
               agent="argocd", node=NA)
        tags[name] = new
        nodes = [ROLL[(j * 3 + i) % len(ROLL)] for i in range(8)]
        if name in warm:
            w.spawn(rolling_update(w, t + 2, dep, nodes, image=img(dep.path, new), step=26,
                                   ready_after=17,
                                   on_new=lambda p: w.spawn(warmup_probes(w, p, fails=3))))
        else:
            w.spawn(rolling_update(w, t + 2, dep, nodes, image=img(dep.path, new), step=14))

    # -- ConfigMap edits -------------------------------------------------------------------
    def cm_edit(t, ns, name, key, value, restart=None):
        yield t
        change(sc, t, "change.config.updated", {"cluster": CLUSTER, "namespace": ns},
               {"kind": "ConfigMap", "name": name, "application": f"{ns}-config",
                "revision": sc.hexstr(7)}, agent="argocd", node=NA)
        w.get("ConfigMap", ns, name).data[key] = value
        w.sync(t)
        if restart:
            dep = deps[restart]
            yield t + 4
            w.event(t + 4, ("Deployment", dep.ns, dep.name, dep.uid), "Reloaded",
                    f"Changes detected in 'ConfigMap' {ns}/{name}: rolling upgrade of "
                    f"Deployment {dep.ns}/{dep.name}", component="reloader")
            w.spawn(rolling_update(w, t + 5, dep, [ND, NG, NB], step=14, pull_first=False,
                                   annotations={"reloader.stakater.com/last-reloaded-from":
                                                f'{{"type":"CONFIGMAP","name":"{name}","namespace":"{ns}",'
                                                f'"hash":"{sc.hexstr(40)}"}}'}))

    w.spawn(cm_edit(7200, "shop", "frontend-config", "FEATURE_NEW_SEARCH", "true"))
    w.spawn(cm_edit(16200, "billing", "invoice-worker-config", "BATCH_SIZE", "500", restart="invoice-worker"))
    w.spawn(cm_edit(23700, "platform", "ingress-nginx-controller", "proxy-body-size", "16m"))

    # -- HPAs following the day curve ----------------------------------------------------------
    curves = {
        "frontend": [(2400, 5), (5400, 7), (9000, 8), (14400, 6), (21000, 8), (27600, 10),
                     (31500, 7), (36000, 5), (43200, 3), (79200, 4), (84600, 6)],
        "checkout": [(5700, 3), (27900, 5), (34500, 3), (45600, 2), (82800, 3)],
        "search-api": [(3900, 4), (10200, 6), (17700, 5), (28200, 7), (35700, 4), (46800, 3),
                       (81300, 4)],
    }
    for name, pts in curves.items():
        dep = deps[name]

        def hpa(dep=dep, pts=pts):
            for j, (t, to) in enumerate(pts):
                yield t
                if to > dep.replicas:
                    nodes = [STABLE[(j + i) % 6] for i in range(6)]
                    yield from hpa_up(w, t, dep, to, nodes)
                else:
                    yield from hpa_down(w, t, dep, to)

        w.spawn(hpa())
    alert_flap(sc, 27600 + 60, "KubeHpaMaxedOut", "shop", {"horizontalpodautoscaler": "frontend"}, 900)

    # -- Karpenter: Spot interruption of node-j (replacement node-k), night consolidation -----
    TS, TC = 41000, 61200

    def karpenter_drain(t, n, why):
        node = w.get("Node", None, n)
        node.add_taint(t, "karpenter.sh/disrupted", "NoSchedule")
        w.sync(t)
        victims = [p for p in w.pods() if p.node == n and p.active()
                   and not (p.owner and p.owner[1] == "DaemonSet")]
        planned = []
        for p in victims:
            tgt = spread_target(w, p, STABLE, planned)
            planned.append((workload_key(p), tgt))
            evict(w, t, p, tgt, by="karpenter", grace=25, karpenter_reason=why)
        return len(victims)

    def spot():
        nj = w.get("Node", None, NJ)
        yield TS - 420
        w.event(TS - 420, ("Node", None, NJ, nj.uid), "SpotRebalanceRecommendation",
                "Spot rebalance recommendation was triggered", component="karpenter")
        yield TS
        w.event(TS, ("Node", None, NJ, nj.uid), "SpotInterrupted",
                "Spot interruption warning was triggered", typ="Warning", component="karpenter")
        for p in [p for p in w.pods() if p.node == NJ and p.active()]:
            w.event(TS, ("Pod", p.ns, p.name, p.uid), "SpotInterrupted",
                    "Spot interruption warning was triggered", typ="Warning", component="karpenter")
        w.event(TS, ("Node", None, NJ, nj.uid), "TerminatingOnInterruption",
                "Interruption triggered termination for the Node", typ="Warning",
                component="karpenter")
        yield TS + 1
        waiting = karpenter_drain(TS + 1, NJ, "Interrupted")
        yield TS + 3
        w.event(TS + 3, ("Node", None, NJ, nj.uid), "FailedDraining",
                f"Failed to drain node, {waiting} pods are waiting to be evicted", typ="Warning",
                component="karpenter")
        w.event(TS + 3, ("Node", None, NJ, nj.uid), "DisruptionBlocked",
                "Node is deleting or marked for deletion", component="karpenter")
        yield TS + 60
        w.event(TS + 60, ("Node", None, NJ, nj.uid), "InstanceTerminating", "Instance is terminating",
                typ="Warning", component="karpenter")
        yield TS + 95
        remove_node(w, TS + 95, NJ)

    def consolidate():
        ni = w.get("Node", None, NI)
        yield TC
        w.event(TC, ("Node", None, NI, ni.uid), "DisruptionTerminating",
                "Disrupting Node: Underutilized/Delete", component="karpenter")
        karpenter_drain(TC, NI, "Underutilized")
        yield TC + 70
        remove_node(w, TC + 70, NI)

    w.spawn(spot())
    w.spawn(consolidate())
    w.spawn(join_node(w, ag, TS + 30, NK, "10.0.2.191", "eu-west-1b", "10.1.10.0/24",
                      daemonsets=[ne, fb], labels={"karpenter.sh/capacity-type": "spot",
                                                   "karpenter.sh/nodepool": "default"}))
    alert_flap(sc, TS + 150, "TargetDown", "monitoring", {"job": "node-exporter", "service": "node-exporter"}, 120)

    # -- kernel upgrades of node-c and node-f after midnight ----------------------------------
    silent = [(NJ, TS + 60, 10 ** 9), (NI, TC + 60, 10 ** 9), (NK, 0, TS + 300)]
    for n, t in ((NC, 52200), (NF, 55800)):
        silent.append((n, t + 70, t + 160))
        change(sc, t, "change.node.maintenance", {"cluster": CLUSTER, "node": n},
               {"action": "kernel_upgrade", "kernel": "6.1.115-126.197.amzn2023.x86_64",
                "previous_kernel": "6.1.112-124.190.amzn2023.x86_64", "ticket": "OPS-5188"},
               agent="platform-ops", node=NA)

        def upgrade(n=n, t=t):
            yield t + 5
            cordon(w, t + 5, n)
            w.spawn(drain(w, t + 10, n, STABLE, by="api", grace=20, step=0))
            yield t + 70
            w.spawn(reboot(w, t + 70, n, down=90, kernel="6.1.115-126.197.amzn2023.x86_64"))
            yield t + 200
            uncordon(w, t + 200, n)

        w.spawn(upgrade())

    # -- kubelet probe blips -------------------------------------------------------------------
    def blips():
        times = sorted(rng.randint(600, DAY - 600) for _ in range(36))
        for j, t in enumerate(times):
            yield t
            cands = [p for p in w.pods() if p.active() and p.is_ready() and p.containers[0].port
                     and p.owner and p.owner[1] == "ReplicaSet"]
            p = cands[rng.randrange(len(cands))]
            c = p.containers[0]
            kind = "Liveness" if j % 6 == 5 else "Readiness"
            path = "/healthz" if kind == "Liveness" else "/ready"
            w.event(t, ("Pod", p.ns, p.name, p.uid), "Unhealthy",
                    f'{kind} probe failed: Get "http://{p.ip}:{c.port}{path}": context deadline '
                    f'exceeded (Client.Timeout exceeded while awaiting headers)',
                    typ="Warning", host=p.node, field_path=f"spec.containers{{{c.name}}}")
            if j % 7 == 3:  # three misses in a row: out of the Service for one probe period
                w.set_ready(t + 10, p, False)
                yield t + 20
                if alive(w, p):
                    w.set_ready(t + 20, p, True)

    w.spawn(blips())

    # -- warning alerts that resolve on their own --------------------------------------------
    for j, t in enumerate((4100, 12300, 19800, 26400, 30900, 38700, 61200, 84000)):
        name = ["frontend", "search-api", "cart", "checkout", "billing-api", "catalog",
                "ingress-nginx-controller", "payments"][j]
        dep = deps[name]
        alert_flap(sc, t, "CPUThrottlingHigh", dep.ns, {"pod": pods_of(dep)[0].name, "container": name},
                   rng.randint(150, 420))
    alert_flap(sc, 11450, "KubePodNotReady", "shop", {"pod": pods_of(deps["cart"])[0].name}, 180)
    alert_flap(sc, 80700, "KubePodNotReady", "search", {"pod": pods_of(deps["search-indexer"])[0].name}, 150)
    alert_flap(sc, 47000, "NodeClockSkewDetected", "monitoring", {"node": NH, "job": "node-exporter"}, 300)
    alert_flap(sc, 29000, "HighLatencyP99", "shop", {"service": "frontend"}, 240,
               annotations={"p99_latency_seconds": "1.6"})

    # -- healthy connect statistics -----------------------------------------------------------
    svcs = [deps[x].service.cluster_ip for x in ("frontend", "checkout", "catalog", "cart", "search-api",
                                                 "billing-api", "payments", "pricing")]
    ports = {deps[x].service.cluster_ip: deps[x].service.ports[0][1]
             for x in ("frontend", "checkout", "catalog", "cart", "search-api", "billing-api",
                       "payments", "pricing")}
    flows = []
    for i, n in enumerate(N10 + [NK]):
        for d in (svcs[i % 8], svcs[(i + 3) % 8]):
            flows.append((n, d, ports[d], 120 + 20 * (i % 5)))
    flows.append((NB, db.svc.cluster_ip, 5432, 90))
    stats_windows(ag, 60, DAY - 60, [f for f in flows if f[0] != NK], 600, silent=silent)

    def nk_stats():
        yield TS + 300
        stats_windows(ag, TS + 300 + 60, DAY - 60, [f for f in flows if f[0] == NK], 600)

    w.spawn(nk_stats())
    w.run()
