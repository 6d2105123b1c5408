"""Scenarios 60-70: structure, attribution, impact and ranking.

The classes where a naive engine splits one cause into many incidents (a node group, a zone,
a node whose pods live in several namespaces, a shared dependency), blames the wrong entity
(hostNetwork pods sharing a node IP), pages for what has no impact (a rarely called
endpoint, one replica of three), ranks a symptom above its cause (disk -> database ->
callers; DNS errors seen downstream before CoreDNS itself), or merges what is unrelated
(two failures on one node). Loaded by generate.py (`gen_*.py`); the helpers below are
this file's own, generate.py is untouched.
"""

from generate import *  # noqa: F401,F403  (World, Node, Pod, Agent, Alert, crash_loop, ...)

# ---------------------------------------------------------------------------------------
# Helpers: nodes with provider labels and nodeInfo, hostNetwork pods, small stories
# ---------------------------------------------------------------------------------------


class NodeX(Node):
    """A Node as a cloud provider's node group renders it: provider labels (passed as
    `labels`) and the node image's nodeInfo (kernel, OS image, container runtime)."""

    def __init__(self, w, name, ip, zone, pod_cidr, node_info=None, annotations=None, **kw):
        super().__init__(w, name, ip, zone, pod_cidr, **kw)
        self.node_info = dict(node_info or {})
        self.extra_annotations = dict(annotations or {})

    def render(self):
        obj = super().render()
        obj["status"]["nodeInfo"].update(self.node_info)
        obj["metadata"]["annotations"].update(self.extra_annotations)
        return obj


def add_node(w, name, ip, zone, pod_cidr, **kw):
    n = NodeX(w, name, ip, zone, pod_cidr, **kw)
    w.add(0, n)
    w.ip_next[name] = 10 + w.sc.rng.randint(0, 20)
    return n


# EKS optimized AMIs (release, AMI id, launch template version, what nodeInfo shows).
AL2_20261030 = {"release": "1.31.2-20261030", "ami": "ami-0c7e1f3b9d2a45e61",
                "lt": "lt-04f1d2e3c4b5a6978", "lt_version": "6",
                "kernel": "5.10.228-219.884.amzn2.x86_64", "os": "Amazon Linux 2",
                "runtime": "containerd://1.7.23", "kubelet": "v1.31.2-eks-7f9249a"}
AL2023_20261030 = {"release": "1.31.2-20261030", "ami": "ami-0b3f7a91c2d4e5f68",
                   "lt": "lt-0a9e8d7c6b5a41302", "lt_version": "11",
                   "kernel": "6.1.112-124.190.amzn2023.x86_64",
                   "os": "Amazon Linux 2023.6.20261028", "runtime": "containerd://1.7.23",
                   "kubelet": "v1.31.2-eks-7f9249a"}
AL2023_20261118 = {"release": "1.31.3-20261118", "ami": "ami-0e4b8d2c6a1f9e357",
                   "lt": "lt-0d2c3b4a5f6e71809", "lt_version": "8",
                   "kernel": "6.1.128-136.201.amzn2023.x86_64",
                   "os": "Amazon Linux 2023.6.20261117", "runtime": "containerd://1.7.25",
                   "kubelet": "v1.31.3-eks-59bf375"}
AL2023_CTRD2 = {"release": "1.31.3-20261118", "ami": "ami-07a1c9e3b5d2f4681",
                "lt": "lt-0f1e2d3c4b5a69788", "lt_version": "2",
                "kernel": "6.1.128-136.201.amzn2023.x86_64",
                "os": "Amazon Linux 2023.6.20261117", "runtime": "containerd://2.1.5",
                "kubelet": "v1.31.3-eks-59bf375"}


def eks_node(w, name, ip, zone, pod_cidr, group, image, instance_type="m6i.2xlarge",
             created=-86400 * 9, taints=None, cpu=8, mem_gi=32):
    labels = {
        "eks.amazonaws.com/capacityType": "ON_DEMAND",
        "eks.amazonaws.com/nodegroup": group,
        "eks.amazonaws.com/nodegroup-image": image["ami"],
        "eks.amazonaws.com/sourceLaunchTemplateId": image["lt"],
        "eks.amazonaws.com/sourceLaunchTemplateVersion": image["lt_version"],
        "k8s.io/cloud-provider-aws": "5f0c1e9a7b3d24c68e1f0a9b8c7d6e5f",
    }
    info = {"kernelVersion": image["kernel"], "osImage": image["os"],
            "containerRuntimeVersion": image["runtime"]}
    return add_node(w, name, ip, zone, pod_cidr, instance_type=instance_type, labels=labels,
                    node_info=info, kubelet=image["kubelet"], created=created, taints=taints,
                    cpu=cpu, mem_gi=mem_gi,
                    annotations={"alpha.kubernetes.io/provided-node-ip": ip})


def node_world(sc, make_nodes, coredns_nodes, dns_ip="10.96.0.10"):
    """A World whose nodes `make_nodes(w)` creates (returns their names), with agents and
    CoreDNS, like generate.base() for clusters with real node-group labels."""
    w = World(sc, "kube-watch")
    names = make_nodes(w)
    w.watch_node = names[0]
    sc.agent_node[WATCH] = names[0]
    ag = agents(w, *names)
    w.coredns = add_coredns(w, coredns_nodes, dns_ip=dns_ip)
    return w, ag, names


class HostContainer(Container):
    """A container of a hostNetwork pod: several ports, each also a hostPort."""

    def __init__(self, *a, host_ports=None, **kw):
        super().__init__(*a, **kw)
        self.host_ports = list(host_ports or [])  # [(name, port, protocol)]

    def spec(self):
        c = super().spec()
        if self.host_ports:
            c["ports"] = [{"name": n, "containerPort": p, "hostPort": p, "protocol": proto}
                          for (n, p, proto) in self.host_ports]
        return c


class HostPod(Pod):
    """A hostNetwork pod: its podIP is the node's IP."""

    def render(self):
        obj = super().render()
        obj["spec"]["hostNetwork"] = True
        obj["spec"]["dnsPolicy"] = "ClusterFirstWithHostNet"
        return obj


class HostDaemonSet(DaemonSet):
    def render(self):
        obj = super().render()
        obj["spec"]["template"]["spec"]["hostNetwork"] = True
        obj["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirstWithHostNet"
        return obj


def hostnet_daemonset(w, ns, name, nodes, image, comm, host_ports, req_cpu="100m",
                      req_mem="128Mi", lim_mem="256Mi", readiness=None, liveness=None,
                      created=-86400 * 150, started=-86400 * 10, labels=None,
                      priority_class="system-node-critical"):
    lab = {"app": name, "app.kubernetes.io/name": name}
    if labels:
        lab.update(labels)

    def mk():
        return [HostContainer(name, image, comm, req_cpu=req_cpu, req_mem=req_mem,
                              lim_mem=lim_mem, port=None, readiness=readiness,
                              liveness=liveness, host_ports=host_ports)]

    ds = HostDaemonSet(w, ns, name, lab, mk(), created, len(nodes))
    ds.tolerations = [{"operator": "Exists"}]
    ds.mk_containers = mk
    w.add(0, ds)
    for i, n in enumerate(nodes):
        plab = dict(lab)
        plab["controller-revision-hash"] = ds.revision_hash
        plab["pod-template-generation"] = str(ds.generation)
        p = HostPod(w, ns, f"{name}-{w.sc.k8s_suffix(5)}", plab,
                    ("apps/v1", "DaemonSet", name, ds.uid), mk(), created=started,
                    priority_class=priority_class, tolerations=ds.tolerations)
        w._running_pod(p, n, started + i * 3)
        p.ip = w.get("Node", None, n).ip
        w.add(0, p)
    return ds


def evict_pending(w, t, node_name, message, t_end):
    """Taint eviction of a NotReady node's pods whose replacements cannot be placed
    anywhere: TaintManagerEviction, the replacement pod, FailedScheduling."""
    yield t
    news = []
    for p in [p for p in w.pods() if p.node == node_name and p.active()]:
        if p.owner and p.owner[1] == "DaemonSet":
            continue
        w.event(t, ("Pod", p.ns, p.name, p.uid), "TaintManagerEviction",
                f"Marking for deletion Pod {p.ns}/{p.name}", component="taint-eviction-controller")
        p.deletion = t + 30
        if p.owner and p.owner[1] == "ReplicaSet":
            new = replace_pod(w, t, p, None)
            if new:
                new.node_selector = p.node_selector
                news.append(new)
    w.sync(t)
    for i, new in enumerate(news):
        w.spawn(unschedulable(w, t + 1 + i, new, message, t_end, every=60))


def scale_to_zero(w, t, dep):
    """A Deployment scaled to 0 replicas (kubectl scale / a Git change): its pods go."""
    yield t
    dep.replicas = 0
    dep.generation += 1
    rs = dep.current
    scale_rs(w, t, rs, 0)
    for p in [p for p in rs.pods() if p.active()]:
        w.event(t, ("ReplicaSet", rs.ns, rs.name, rs.uid), "SuccessfulDelete",
                f"Deleted pod: {p.name}", component="replicaset-controller")
        w.spawn(w.terminate(t, p, grace=4))


def unready_for(w, pod, t0, t1, message, every_s=10, event_every=60):
    """A pod failing its readiness probe from t0 (unready after 3 failures) until t1."""
    ref = ("Pod", pod.ns, pod.name, pod.uid)
    c = pod.containers[0]
    fp = f"spec.containers{{{c.name}}}"
    for k in range(3):
        yield t0 + k * every_s
        w.event(t0 + k * every_s, ref, "Unhealthy", message, typ="Warning", host=pod.node,
                field_path=fp)
    yield t0 + 2 * every_s + 1
    w.set_ready(t0 + 2 * every_s + 1, pod, False)
    t = t0 + 2 * every_s + event_every
    while t < t1:
        yield t
        w.event(t, ref, "Unhealthy", message, typ="Warning", host=pod.node, field_path=fp)
        t += event_every
    yield t1
    if alive(w, pod):
        w.set_ready(t1, pod, True)


def sts_pod(sts, i):
    return [p for p in pods_of(sts) if p.name == f"{sts.name}-{i}"][0]


# ---------------------------------------------------------------------------------------
# 60  node group: a node-image (AMI) update makes every node of one group NotReady
# ---------------------------------------------------------------------------------------


@scenario("60-eks-nodegroup-ami-runtime-deadlock",
          "the EKS managed node group apps-v2 was moved to AMI release 1.31.3-20261118 "
          "(launch template v8) during the last two hours; under the morning load the "
          "release's containerd deadlocks (hung containerd tasks, runtime calls time out, "
          "PLEG not healthy) and all four nodes of the group — in three zones — report "
          "NotReady within two minutes of each other. Every shop/search API pod runs there "
          "(nodeSelector on the group), their Services lose every ready endpoint and the "
          "gateway on the system group (older AMI, still Ready) gets refused connects: a total "
          "outage. Evicted pods cannot be placed anywhere. One cause (the group's node image), "
          "not four node failures",
          "awslabs/amazon-eks-ami#648 (EKS AMI v20210329: nodes of the upgraded node group fail "
          "with container runtime calls timing out, DeadlineExceeded) — adapted: four nodes of "
          "one group fail together")
def s60(sc):
    Z = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    S1, S2 = "ip-10-40-1-17.eu-west-1.compute.internal", "ip-10-40-2-203.eu-west-1.compute.internal"
    P = ["ip-10-40-1-88.eu-west-1.compute.internal", "ip-10-40-2-41.eu-west-1.compute.internal",
         "ip-10-40-3-150.eu-west-1.compute.internal", "ip-10-40-2-119.eu-west-1.compute.internal"]

    def nodes(w):
        eks_node(w, S1, "10.40.1.17", Z[0], "100.64.0.0/24", "system-v1", AL2023_20261030,
                 instance_type="m6i.xlarge", cpu=4, mem_gi=16)
        eks_node(w, S2, "10.40.2.203", Z[1], "100.64.1.0/24", "system-v1", AL2023_20261030,
                 instance_type="m6i.xlarge", cpu=4, mem_gi=16)
        for i, (n, z) in enumerate(zip(P, [Z[0], Z[1], Z[2], Z[1]])):
            eks_node(w, n, n.split(".")[0][3:].replace("-", "."), z, f"100.64.{2 + i}.0/24",
                     "apps-v2", AL2023_20261118, created=-6900 + i * 1260)
        return [S1, S2] + P

    w, ag, _ = node_world(sc, nodes, [S1, S2])
    gw = w.deploy("edge", "gateway", 2, [S1, S2], img("edge/gateway", "1.31.2", "docker.io/envoyproxy"),
                  "envoy", port=8080)
    co = shop(w, "checkout", 2, [P[0], P[2]])
    cat = shop(w, "catalog", 2, [P[1], P[3]])
    cart = shop(w, "cart", 2, [P[0], P[3]])
    srch = shop(w, "search-api", 2, [P[1], P[2]], ns="search")
    sel = {"eks.amazonaws.com/nodegroup": "apps-v2"}
    for d in (co, cat, cart, srch):
        for p in pods_of(d):
            p.node_selector = sel
    w.snapshot(0)
    change(sc, 25, "change.node.maintenance", {"cluster": CLUSTER},
           {"action": "nodegroup_update", "nodegroup": "apps-v2", "status": "Successful",
            "release_version": "1.31.3-20261118", "ami": AL2023_20261118["ami"],
            "launch_template_version": "8", "previous_release_version": "1.31.2-20261030",
            "started_at": at(-7200)}, agent="platform-ops", node=S1)
    std_noise(w, ag, sc, job=(70, S2),
              flap=(150, "CPUThrottlingHigh", "edge", {"pod": pod_on(gw, S1).name, "container": "gateway"}))
    healthy_stats(ag, 30, 230, [(P[1], cat.service.cluster_ip, 8000, 110),
                                (P[0], cart.service.cluster_ip, 8080, 90)], 60)
    # the deadlock: containerd hangs ~3 min before the kubelet gives up (PLEG threshold)
    NR = {P[0]: 300, P[2]: 334, P[1]: 369, P[3]: 407}
    for n, t in NR.items():
        ag[n].hung_task(t - 62, "containerd", 121)
        ag[n].hung_task(t - 4, "containerd-shim", 181)
    pleg = ("container runtime is down, PLEG is not healthy: pleg was last seen active "
            "3m4.118s ago; threshold is 3m0s")
    msg = ("0/6 nodes are available: 2 node(s) didn't match Pod's node affinity/selector, "
           "4 node(s) had untolerated taint {node.kubernetes.io/not-ready: }. preemption: 0/6 "
           "nodes are available: 6 Preemption is not helpful for scheduling.")

    def story():
        for n in sorted(NR, key=NR.get):
            yield NR[n]
            kubelet_not_ready(w, NR[n], n, pleg, pod_events=True)
        for n in (P[0], P[2]):
            yield NR[n] + 300
            yield from evict_pending(w, NR[n] + 300, n, msg, 720)

    w.spawn(story())
    # the gateway (system group) calls every API: refused once a Service has no endpoint
    down = {co.service.cluster_ip: (8080, 335), srch.service.cluster_ip: (8080, 370),
            cat.service.cluster_ip: (8000, 408), cart.service.cluster_ip: (8080, 408)}
    flows = [(node, ip, port, att) for node in (S1, S2)
             for ip, (port, _) in down.items() for att in [90]]
    downs = [down[ip][1] for (_n, ip, _p, _a) in flows]
    stats_series(ag, 30, 720, flows, lambda t, i: (1.0 if t >= downs[i] else 0.0, 0, 1.0),
                 step=60)
    for t in every(350, 710, 120):
        for g in pods_of(gw):
            for ip, (port, t0) in down.items():
                if t >= t0 + 10:
                    ag[g.node].refused(t + sc.rng.randint(0, 20), g, ip, port,
                                       sc.rng.randint(30, 140), comm="envoy")
    Alert(sc, "HighErrorRate", "critical", {"namespace": "edge", "service": "gateway"},
          {"summary": "gateway 5xx ratio above 5 %", "error_ratio": "0.31"}).fire(365)
    Alert(sc, "ErrorBudgetBurn", "critical", {"namespace": "edge", "service": "gateway",
                                              "slo": "availability-99.9"},
          {"summary": "gateway availability SLO burning 14x", "error_ratio": "0.98"}).fire(450)
    Alert(sc, "TargetDown", "warning", {"namespace": "kube-system", "job": "kubelet",
                                        "service": "kubelet"},
          {"summary": "66.7% of the kubelet/kubelet targets in kube-system namespace are down."}).fire(470)
    w.run()
    sc.expect("P1", "P1: complete service unavailability — every shop and search API has no "
              "ready endpoint, the gateway fails 98 % of requests",
              "node_group_failure", "NodeGroup/apps-v2",
              [f"Node/{n}" for n in P] +
              [ent("Deployment", "shop", "checkout"), ent("Deployment", "shop", "catalog"),
               ent("Deployment", "shop", "cart"), ent("Deployment", "search", "search-api"),
               ent("Service", "shop", "checkout"), ent("Service", "shop", "catalog"),
               ent("Service", "shop", "cart"), ent("Service", "search", "search-api"),
               ent("Deployment", "edge", "gateway")])


# ---------------------------------------------------------------------------------------
# 61  zone outage: every node of one availability zone unreachable
# ---------------------------------------------------------------------------------------


@scenario("61-aws-zone-power-loss",
          "a power loss in one availability zone (us-east-1b): both nodes there stop at once "
          "(their agents go silent), the node controller marks them Unknown 40 s later, "
          "callers in the other zones time out to the pods that were there until the endpoints "
          "drop them; NodeDown fires per node; after 300 s the pods are evicted and replaced in "
          "the surviving zones, redis-1 (its EBS volume is in the dead zone) stays "
          "Terminating. Every service keeps two of three replicas: degraded, not down. One "
          "incident on the zone, not one per node",
          "AWS us-east-1 use1-az4 power loss, 2021-12-22 (AWS post-event summary; "
          "elastisys.com/the-challenges-of-availability-zone-outages)")
def s61(sc):
    Z = ["us-east-1a", "us-east-1b", "us-east-1c"]
    N = {"a1": ("ip-10-20-0-36.ec2.internal", "10.20.0.36", Z[0]),
         "a2": ("ip-10-20-1-201.ec2.internal", "10.20.1.201", Z[0]),
         "b1": ("ip-10-20-32-14.ec2.internal", "10.20.32.14", Z[1]),
         "b2": ("ip-10-20-33-97.ec2.internal", "10.20.33.97", Z[1]),
         "c1": ("ip-10-20-64-52.ec2.internal", "10.20.64.52", Z[2]),
         "c2": ("ip-10-20-65-180.ec2.internal", "10.20.65.180", Z[2])}
    n = {k: v[0] for k, v in N.items()}

    def nodes(w):
        for i, (k, (name, ip, zone)) in enumerate(N.items()):
            eks_node(w, name, ip, zone, f"100.65.{i}.0/24", "general", AL2023_20261030,
                     instance_type="m6i.2xlarge", created=-86400 * (5 + i))
        return list(n.values())

    w, ag, _ = node_world(sc, nodes, [n["a1"], n["c1"]])
    fe = shop(w, "frontend", 3, [n["a1"], n["b1"], n["c1"]])
    co = shop(w, "checkout", 3, [n["a2"], n["b2"], n["c1"]])
    cat = shop(w, "catalog", 3, [n["a1"], n["b2"], n["c2"]])
    redis = w.statefulset("shop", "redis", 3, [n["a2"], n["b1"], n["c2"]],
                          "docker.io/library/redis:7.4.1", "redis-server", 6379,
                          req_mem="512Mi", lim_mem="1Gi")
    w.snapshot(0)
    cip, kip = co.service.cluster_ip, cat.service.cluster_ip
    std_noise(w, ag, sc, job=(55, n["c2"]),
              flap=(120, "CPUThrottlingHigh", "shop", {"pod": pod_on(co, n["a2"]).name,
                                                       "container": "checkout"}))
    T = 240
    flows = [(n["a1"], cip, 8080, 170), (n["c1"], cip, 8080, 160), (n["a1"], kip, 8000, 210),
             (n["c1"], kip, 8000, 190)]
    healthy_stats(ag, 30, T - 30, flows + [(n["b1"], cip, 8080, 150), (n["b2"], kip, 8000, 140)], 90)
    stats_series(ag, T + 20, T + 110, flows,
                 lambda t, i: (0, 0.31 if t < T + 45 else (0.03 if t < T + 80 else 0.0), 1.0),
                 step=30)
    healthy_stats(ag, T + 140, 1020, flows, 120)
    redis1 = sts_pod(redis, 1)
    for k in ("a1", "c1"):
        fp = pod_on(fe, n[k])
        ag[n[k]].timeout(T + 6, fp, cip, 8080, sc.rng.randint(3, 7), waited_ms=3000, comm="node")
        ag[n[k]].timeout(T + 11, fp, kip, 8000, sc.rng.randint(4, 9), waited_ms=3000, comm="node")
        ag[n[k]].timeout(T + 24, fp, redis1.ip, 6379, sc.rng.randint(1, 3), waited_ms=5000, comm="node")

    def story():
        yield T + 40
        node_unreachable(w, T + 40, n["b1"])
        yield T + 43
        node_unreachable(w, T + 43, n["b2"])
        yield T + 340
        yield from taint_evict(w, T + 340, n["b1"], [n["a1"], n["c2"]])
        yield T + 343
        yield from taint_evict(w, T + 343, n["b2"], [n["c1"], n["a2"]])

    w.spawn(story())
    Alert(sc, "HighErrorRate", "warning", {"namespace": "shop", "service": "frontend"},
          {"summary": "frontend 5xx ratio above 1 %", "error_ratio": "0.06"}).fire(T + 50).resolve(T + 260)
    Alert(sc, "NodeDown", "critical", {"node": n["b1"], "job": "node-exporter"},
          {"summary": f"Node {n['b1']} is unreachable: node-exporter down for 1 minute."}).fire(T + 75)
    Alert(sc, "NodeDown", "critical", {"node": n["b2"], "job": "node-exporter"},
          {"summary": f"Node {n['b2']} is unreachable: node-exporter down for 1 minute."}).fire(T + 77)
    Alert(sc, "RedisReplicaDown", "warning", {"namespace": "shop", "statefulset": "redis",
                                              "pod": "redis-1"},
          {"summary": "Redis replica redis-1 is down."}).fire(T + 130)
    w.run()
    sc.expect("P2", "P2: partial functionality unavailable — one zone's capacity lost, every "
              "service on two of three replicas, 6 % errors for three minutes",
              "zone_failure", "Zone/us-east-1b",
              [f"Node/{n['b1']}", f"Node/{n['b2']}", ent("Deployment", "shop", "frontend"),
               ent("Deployment", "shop", "checkout"), ent("Deployment", "shop", "catalog"),
               ent("StatefulSet", "shop", "redis")])


# ---------------------------------------------------------------------------------------
# 62  container runtime upgrade on a subset of nodes breaks fd-heavy pods there
# ---------------------------------------------------------------------------------------


@scenario("62-containerd2-nofile-new-nodegroup",
          "a node-group migration is half done: three nodes of the new group apps-al2023 run "
          "containerd 2.1.5, whose unit no longer sets LimitNOFILE, so containers get a soft "
          "open-files limit of 1024; the three old apps-al2 nodes (containerd 1.7.23) are fine. "
          "Under the midday load the fd-heavy pods on the new nodes fail within a minute of each "
          "other — Kafka broker kafka-1 ('Too many open files', crash loop), loki-ingester-2 "
          "(crash loop) and the envoy replica there (readiness fails) — while their replicas on "
          "old nodes and the ordinary pods on the new nodes keep working. Three namespaces, "
          "one common factor: the node image's container runtime",
          "containerd/containerd#8924 (LimitNOFILE removed from containerd.service) and "
          "awslabs/amazon-eks-ami#1551 (an EKS AMI that lowered the limit had to be reverted)")
def s62(sc):
    Z = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]
    O = ["ip-10-60-4-12.eu-central-1.compute.internal", "ip-10-60-5-77.eu-central-1.compute.internal",
         "ip-10-60-6-140.eu-central-1.compute.internal"]
    NW = ["ip-10-60-4-201.eu-central-1.compute.internal", "ip-10-60-5-18.eu-central-1.compute.internal",
          "ip-10-60-6-93.eu-central-1.compute.internal"]

    def nodes(w):
        for i, name in enumerate(O):
            eks_node(w, name, name.split(".")[0][3:].replace("-", "."), Z[i], f"100.66.{i}.0/24",
                     "apps-al2", AL2_20261030, instance_type="r6i.2xlarge", mem_gi=64,
                     created=-86400 * (30 + i))
        for i, name in enumerate(NW):
            eks_node(w, name, name.split(".")[0][3:].replace("-", "."), Z[i], f"100.66.{3 + i}.0/24",
                     "apps-al2023", AL2023_CTRD2, instance_type="r6i.2xlarge", mem_gi=64,
                     created=-5400 + i * 900)
        return O + NW

    w, ag, _ = node_world(sc, nodes, [O[0], O[1]])
    kafka = w.statefulset("streaming", "kafka", 3, [O[0], NW[0], O[1]],
                          "docker.io/bitnami/kafka:3.8.1", "java", 9092, req_mem="4Gi",
                          lim_mem="8Gi")
    loki = w.statefulset("observability", "loki-ingester", 3, [O[1], O[2], NW[2]],
                         "docker.io/grafana/loki:3.2.1", "loki", 3100, req_mem="2Gi",
                         lim_mem="4Gi")
    envoy = w.deploy("edge", "envoy", 3, [O[0], NW[1], O[2]],
                     img("envoyproxy/envoy", "v1.32.1", "docker.io"), "envoy", port=8080)
    fe = shop(w, "frontend", 3, [NW[0], NW[1], O[2]])
    orders = shop(w, "orders-api", 2, [O[2], NW[2]])
    cat = shop(w, "catalog", 2, [NW[2], O[1]])
    w.snapshot(0)
    change(sc, 30, "change.node.maintenance", {"cluster": CLUSTER},
           {"action": "nodegroup_migration", "from_nodegroup": "apps-al2",
            "to_nodegroup": "apps-al2023", "progress": "3/6 nodes", "ticket": "PLAT-2291"},
           agent="platform-ops", node=O[0])
    std_noise(w, ag, sc, resched=(95, cat, O[0], True), job=(640, O[2]),
              flap=(180, "CPUThrottlingHigh", "shop", {"pod": pod_on(fe, NW[0]).name,
                                                       "container": "frontend"}, 120))
    kip = kafka.svc.cluster_ip
    k1 = sts_pod(kafka, 1)
    l2 = sts_pod(loki, 2)
    ev = pod_on(envoy, NW[1])
    healthy_stats(ag, 30, 1080, [(O[2], kip, 9092, 140), (NW[1], cat.service.cluster_ip, 8000, 160),
                                 (NW[0], orders.service.cluster_ip, 8080, 120)], 120)
    T = 270
    kmsg = ("[2026-11-27 10:04:30,118] ERROR Error while rolling log segment for orders-events-7 "
            "in dir /bitnami/kafka/data (org.apache.kafka.storage.internals.log.LogDirFailureChannel)\n"
            "java.io.IOException: Too many open files\n"
            "[2026-11-27 10:04:30,131] ERROR Shutdown broker because all log dirs in "
            "/bitnami/kafka/data have failed (kafka.log.LogManager)")
    lmsg = ('level=error ts=2026-11-27T10:05:11.402Z caller=wal.go:187 msg="failed to open WAL '
            'segment" err="open /var/loki/wal/00001452: too many open files"\n'
            'level=error caller=main.go:74 msg="error running loki" err="init ingester: too many '
            'open files"')
    w.spawn(crash_loop(w, k1, T, 1080, run=25, exit_code=1, message=kmsg, agent=ag[NW[0]],
                       event_every=2))
    w.spawn(crash_loop(w, l2, T + 41, 1080, run=12, exit_code=1, message=lmsg, agent=ag[NW[2]],
                       event_every=2))
    w.spawn(unready_for(w, ev, T + 22, 1090, "Readiness probe failed: HTTP probe failed with "
                        "statuscode: 503", event_every=150))
    # producers lose broker 1 (refused while it is down); the edge sees envoy's accept errors
    for t in every(T + 15, 1060, 120):
        for p in pods_of(orders):
            ag[p.node].refused(t + sc.rng.randint(0, 20), p, k1.ip, 9092, sc.rng.randint(4, 18),
                               comm="orders-api")
    Alert(sc, "HighErrorRate", "critical", {"namespace": "edge", "service": "envoy"},
          {"summary": "envoy 5xx ratio above 5 %", "error_ratio": "0.06"}).fire(T + 40).resolve(T + 330)
    Alert(sc, "KafkaUnderReplicatedPartitions", "warning", {"namespace": "streaming",
                                                            "statefulset": "kafka"},
          {"summary": "Kafka has 212 under-replicated partitions."}).fire(T + 70)
    Alert(sc, "LokiRequestErrors", "critical", {"namespace": "observability", "service": "loki-distributor",
                                                "route": "loki_api_v1_push"},
          {"summary": "loki push requests fail: 11 % errors", "error_ratio": "0.11"}).fire(T + 95)
    w.run()
    sc.expect("P2", "P2: partial functionality unavailable — three production services each lost "
              "their replica on the new nodes (Kafka under-replicated, 11 % of log pushes fail, "
              "edge errors 6 %)",
              "node_group_failure", "NodeGroup/apps-al2023",
              [f"Node/{x}" for x in NW] +
              [ent("StatefulSet", "streaming", "kafka"), ent("StatefulSet", "observability", "loki-ingester"),
               ent("Deployment", "edge", "envoy"), ent("Service", "edge", "envoy"),
               ent("Deployment", "shop", "orders-api")])


# ---------------------------------------------------------------------------------------
# 63  one node fails; its symptoms show up in three namespaces
# ---------------------------------------------------------------------------------------


@scenario("63-node-failure-three-namespaces",
          "node-c fails (EC2 system status check failed): its agent goes silent, the node turns "
          "Unknown 40 s later. Its pods belong to three teams: a checkout replica (shop), "
          "auth-api's second replica and the single token-signer (identity), and the postgres "
          "replica ledger-db-2 (payments). Callers time out to the lost pods; once the endpoints "
          "drop them, auth-api gets refused connects to the token-signer Service (no endpoint "
          "left) until its replacement starts after the 300 s eviction; ledger-db-2 stays "
          "Terminating. Symptoms in three namespaces, one cause: the node",
          "synthetic trap (per-namespace splitting of one node failure); AWS EC2 "
          "'system status check failed' instance failures")
def s63(sc):
    w, ag = base(sc, nodes=(A, B, C, D))
    fe = shop(w, "frontend", 3, [A, B, D])
    co = shop(w, "checkout", 3, [A, C, D])
    auth = w.deploy("identity", "auth-api", 2, [B, C], img("identity/auth-api", "8.4.1"), "auth-api")
    signer = w.deploy("identity", "token-signer", 1, [C], img("identity/token-signer", "2.0.7"),
                      "token-signer", port=9443)
    ledger = w.statefulset("payments", "ledger-db", 3, [A, B, C], "docker.io/library/postgres:16.4",
                           "postgres", 5432, req_mem="2Gi", lim_mem="4Gi")
    papi = w.deploy("payments", "payments-api", 2, [A, D], img("payments/payments-api", "4.2.0"),
                    "payments-api")
    w.snapshot(0)
    cip, sip = co.service.cluster_ip, signer.service.cluster_ip
    FAIL = 240
    std_noise(w, ag, sc, job=(60, D),
              flap=(130, "CPUThrottlingHigh", "shop", {"pod": pod_on(fe, A).name, "container": "frontend"}))
    healthy_stats(ag, 30, FAIL - 20, [(C, ledger.svc.cluster_ip, 5432, 60), (C, sip, 9443, 80)], 90)
    flows = [(A, cip, 8080, 170), (B, cip, 8080, 160), (D, cip, 8080, 150)]
    healthy_stats(ag, 30, FAIL - 20, flows, 90)
    stats_series(ag, FAIL + 20, FAIL + 80, flows,
                 lambda t, i: (0, 0.3 if t < FAIL + 45 else 0.0, 1.0), step=30)
    healthy_stats(ag, FAIL + 150, 1020, flows, 150)
    ab = ag[B]
    ap = pod_on(auth, B)
    # token-signer: timeouts while its endpoint is still listed, refused once none is left,
    # until the replacement (scheduled at FAIL+341) is ready at FAIL+351
    ab.timeout(FAIL + 4, ap, sip, 9443, sc.rng.randint(3, 6), waited_ms=2000, comm="auth-api")
    ab.timeout(FAIL + 19, ap, sip, 9443, sc.rng.randint(5, 9), waited_ms=2000, comm="auth-api")
    for t in every(FAIL + 55, FAIL + 340, 60):
        ab.refused(t + sc.rng.randint(0, 9), ap, sip, 9443, sc.rng.randint(15, 40), comm="auth-api")
    stats_series(ag, FAIL + 30, FAIL + 390, [(B, sip, 9443, 80)],
                 lambda t, i: (1.0 if FAIL + 45 <= t <= FAIL + 350 else 0, 0.4 if t < FAIL + 45 else 0, 1.0),
                 step=60)
    l2 = sts_pod(ledger, 2)
    for node in (A, D):
        p = pod_on(papi, node)
        ag[node].timeout(FAIL + 7, p, l2.ip, 5432, 2, waited_ms=5000, comm="payments-api")
        ag[node].timeout(FAIL + 33, p, l2.ip, 5432, 1, waited_ms=10000, comm="payments-api")
    for node in (A, D):
        ag[node].timeout(FAIL + 9, pod_on(fe, node), cip, 8080, sc.rng.randint(3, 6), waited_ms=3000,
                         comm="node")

    def story():
        yield FAIL + 40
        node_unreachable(w, FAIL + 40, C)
        yield FAIL + 340
        yield from taint_evict(w, FAIL + 340, C, [D, A, B])

    w.spawn(story())
    Alert(sc, "NodeDown", "critical", {"node": C, "job": "node-exporter"},
          {"summary": "Node node-c is unreachable: node-exporter down for 1 minute."}).fire(FAIL + 75)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "identity", "service": "auth-api"},
          {"summary": "auth-api 5xx ratio above 5 %", "error_ratio": "0.12"}).fire(FAIL + 70).resolve(FAIL + 400)
    Alert(sc, "PostgresReplicaDown", "warning", {"namespace": "payments", "statefulset": "ledger-db",
                                                 "pod": "ledger-db-2"},
          {"summary": "Postgres replica ledger-db-2 is down."}).fire(FAIL + 150)
    w.run()
    sc.expect("P2", "P2: partial functionality unavailable — one node lost; new logins fail for "
              "six minutes (auth-api 12 % errors), a database replica down, other services keep "
              "ready endpoints",
              "node_failure", "Node/node-c",
              [ent("Deployment", "shop", "checkout"), ent("Deployment", "shop", "frontend"),
               ent("Deployment", "identity", "auth-api"), ent("Deployment", "identity", "token-signer"),
               ent("Service", "identity", "token-signer"), ent("StatefulSet", "payments", "ledger-db"),
               ent("Deployment", "payments", "payments-api")])


# ---------------------------------------------------------------------------------------
# 64  common onset in three namespaces, explained by a shared dependency
# ---------------------------------------------------------------------------------------


@scenario("64-shared-redis-busy-cross-namespace",
          "the shared Redis in namespace platform (one primary, used by three teams) is blocked "
          "by a long-running Lua script someone ran for a one-off data fix: every command "
          "answers 'BUSY Redis is busy running a script', the readiness probe fails and the "
          "redis Service has no ready endpoint; cart (shop), session-api (identity) and the "
          "notifier (notifications) all start failing within 30 s — alerts in three namespaces "
          "at once, refused connects to the Redis ClusterIP from three nodes. SCRIPT KILL "
          "after nine minutes ends it. One incident, on the shared dependency",
          "synthetic trap (common onset across namespaces with a shared cause); Redis "
          "BUSY / lua-time-limit behaviour (redis.io EVAL documentation)")
def s64(sc):
    w, ag = base(sc)
    redis = w.statefulset("platform", "redis", 1, [C], "docker.io/library/redis:7.4.1",
                          "redis-server", 6379, req_mem="8Gi", lim_mem="12Gi")
    ready = {"exec": {"command": ["sh", "-c", "redis-cli -h 127.0.0.1 ping | grep -q PONG"]},
             "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3, "successThreshold": 1}
    live = {"tcpSocket": {"port": 6379}, "periodSeconds": 10, "timeoutSeconds": 5,
            "failureThreshold": 5, "successThreshold": 1}
    for c in [redis.containers[0]] + [p.containers[0] for p in pods_of(redis)]:
        c.readiness, c.liveness = ready, live
    cart = shop(w, "cart", 2, [A, B])
    fe = shop(w, "frontend", 2, [A, B])
    sess = w.deploy("identity", "session-api", 2, [A, C], img("identity/session-api", "3.7.0"),
                    "session-api")
    notif = w.deploy("notifications", "notifier", 2, [B, C], img("notifications/notifier", "1.12.4"),
                     "python3", port=None, svc=False)
    cat = shop(w, "catalog", 2, [B, C])
    w.snapshot(0)
    rip = redis.svc.cluster_ip
    std_noise(w, ag, sc, resched=(80, cat, A), job=(700, A),
              flap=(150, "HighLatencyP99", "shop", {"service": "catalog"}, 90),
              stats=(30, 1140, [(B, cat.service.cluster_ip, 8000, 200)], 120))
    T, FIX = 300, 860
    r0 = sts_pod(redis, 0)
    busy = ("Readiness probe failed: BUSY Redis is busy running a script. You can only call "
            "SCRIPT KILL or SHUTDOWN NOSAVE.")
    w.spawn(unready_for(w, r0, T, FIX, busy, event_every=120))
    flows = [(A, rip, 6379, 220), (B, rip, 6379, 180), (C, rip, 6379, 150)]
    stats_series(ag, 60, 1140, flows,
                 lambda t, i: (1.0 if T + 22 <= t <= FIX + 1 else 0.0, 0, 1.0 if t < T else 1.6),
                 step=60)
    callers = [(pod_on(cart, A), "java"), (pod_on(sess, A), "session-api"),
               (pod_on(cart, B), "java"), (pod_on(notif, B), "python3"),
               (pod_on(sess, C), "session-api"), (pod_on(notif, C), "python3")]
    for k, t in enumerate(every(T + 25, FIX - 10, 75)):
        for p, comm in callers[k % 2::2]:
            ag[p.node].refused(t + sc.rng.randint(0, 15), p, rip, 6379, sc.rng.randint(20, 90),
                               comm=comm)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "cart"},
          {"summary": "cart 5xx ratio above 5 %", "error_ratio": "0.88"}).fire(T + 45).resolve(FIX + 60)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "identity", "service": "session-api"},
          {"summary": "session-api 5xx ratio above 5 %", "error_ratio": "0.93"}).fire(T + 52).resolve(FIX + 60)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "frontend"},
          {"summary": "frontend 5xx ratio above 5 %", "error_ratio": "0.41"}).fire(T + 58).resolve(FIX + 75)
    Alert(sc, "NotifierDeliveryFailures", "warning", {"namespace": "notifications",
                                                      "deployment": "notifier"},
          {"summary": "notifier failed to dequeue for 1 minute"}).fire(T + 70).resolve(FIX + 40)
    Alert(sc, "RedisDown", "critical", {"namespace": "platform", "service": "redis"},
          {"summary": "Redis instance is down (redis_up == 0)."}).fire(T + 85).resolve(FIX + 30)
    w.run()
    sc.expect("P1", "P1: complete service unavailability — carts and sessions fail 88–93 %, "
              "the shared Redis has no ready endpoint",
              "no_ready_endpoints", ent("Service", "platform", "redis"),
              [ent("StatefulSet", "platform", "redis"), ent("Deployment", "shop", "cart"),
               ent("Deployment", "shop", "frontend"), ent("Deployment", "identity", "session-api"),
               ent("Deployment", "notifications", "notifier")])


# ---------------------------------------------------------------------------------------
# 65  hostNetwork pods share the node IP: attribute by port
# ---------------------------------------------------------------------------------------


@scenario("65-hostnetwork-ingress-oom-shared-node-ip",
          "four hostNetwork DaemonSets run on every node and share its IP: ingress-nginx "
          "(80/443/10254), node-exporter (9100), node-local-dns (53/9253) and kube-proxy "
          "(10249/10256). On node-b the ingress controller is OOM-killed at its 512Mi limit "
          "(a burst of large uploads buffered in memory; the node has 20 GiB free) and "
          "crash-loops: connects to node-b's IP on 10254 and a few through the ingress Service "
          "on 443 are refused, while node-b's IP on 9100 / 10249 / 9253 answers normally. The "
          "failure belongs to the ingress controller, not to node-exporter, node-local-dns, "
          "kube-proxy or the node; the other two controllers carry the traffic (3 % errors)",
          "synthetic trap (address attribution by IP and port); kubernetes/ingress-nginx#2062 "
          "(hostNetwork controllers share ports and addresses with other host processes)")
def s65(sc):
    w, ag = base(sc)
    probe = lambda path, port: {"httpGet": {"path": path, "port": port, "scheme": "HTTP"},
                                "periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3,
                                "successThreshold": 1}
    ing = hostnet_daemonset(w, "ingress-nginx", "ingress-nginx-controller", [A, B, C],
                            "registry.k8s.io/ingress-nginx/controller:v1.11.3", "nginx",
                            [("http", 80, "TCP"), ("https", 443, "TCP"), ("metrics", 10254, "TCP")],
                            req_cpu="500m", req_mem="384Mi", lim_mem="512Mi",
                            readiness=probe("/healthz", 10254), liveness=probe("/healthz", 10254),
                            labels={"app.kubernetes.io/component": "controller"}, priority_class=None)
    hostnet_daemonset(w, "monitoring", "node-exporter", [A, B, C],
                      "quay.io/prometheus/node-exporter:v1.8.2", "node_exporter",
                      [("metrics", 9100, "TCP")], req_mem="64Mi", lim_mem="128Mi",
                      readiness=probe("/", 9100))
    hostnet_daemonset(w, "kube-system", "node-local-dns", [A, B, C],
                      "registry.k8s.io/dns/k8s-dns-node-cache:1.23.1", "node-cache",
                      [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9253, "TCP")],
                      req_mem="32Mi", lim_mem="128Mi", labels={"k8s-app": "node-local-dns"})
    hostnet_daemonset(w, "kube-system", "kube-proxy", [A, B, C],
                      "602401143452.dkr.ecr.eu-west-1.amazonaws.com/eks/kube-proxy:v1.30.6-eksbuild.3",
                      "kube-proxy", [("metrics", 10249, "TCP"), ("healthz", 10256, "TCP")],
                      req_mem="64Mi", lim_mem="256Mi")
    isvc = w.service("ingress-nginx", "ingress-nginx-controller", {"app": "ingress-nginx-controller"},
                     [("http", 80, 80, "TCP"), ("https", 443, 443, "TCP")])
    w.service("ingress-nginx", "ingress-nginx-controller-metrics", {"app": "ingress-nginx-controller"},
              [("metrics", 10254, 10254, "TCP")], headless=True)
    w.service("monitoring", "node-exporter", {"app": "node-exporter"},
              [("metrics", 9100, 9100, "TCP")], headless=True)
    w.service("kube-system", "node-local-dns", {"app": "node-local-dns"},
              [("metrics", 9253, 9253, "TCP")], headless=True)
    prom = w.statefulset("monitoring", "prometheus-k8s", 1, [A], "quay.io/prometheus/prometheus:v2.55.1",
                         "prometheus", 9090, req_mem="2Gi", lim_mem="4Gi")
    fe = shop(w, "frontend", 2, [A, C])
    cat = shop(w, "catalog", 2, [B, C])
    w.snapshot(0)
    ip = {n: w.get("Node", None, n).ip for n in (A, B, C)}
    iip = isvc.cluster_ip
    std_noise(w, ag, sc, resched=(100, cat, A, True), job=(560, C),
              flap=(200, "CPUThrottlingHigh", "shop", {"pod": pod_on(fe, A).name, "container": "frontend"}),
              stats=(30, 1260, [(C, cat.service.cluster_ip, 8000, 220)], 120))
    T = 300
    ib = pod_on(ing, B)
    lim = mib(512)
    w.spawn(crash_loop(w, ib, T, 1260, run=45, oom=(lim - mib(1), lim), agent=ag[B], event_every=2))
    # Prometheus (node-a) scrapes every exporter on node-b's IP: only 10254 fails
    scrape = [(A, ip[B], 10254, 4), (A, ip[B], 9100, 4), (A, ip[B], 10249, 4), (A, ip[B], 9253, 4),
              (A, ip[C], 10254, 4)]
    stats_series(ag, 60, 1260, scrape,
                 lambda t, i: (0.75 if i == 0 and t >= T + 10 else 0.0, 0, 1.0), step=90)
    pp = sts_pod(prom, 0)
    for t in every(T + 40, 1240, 150):
        ag[A].refused(t + sc.rng.randint(0, 20), pp, ip[B], 10254, sc.rng.randint(1, 3), comm="prometheus")
    # callers through the ingress Service: the few connects kube-proxy still sends to node-b
    # between a crash and the endpoint update are refused (about 3 %)
    stats_series(ag, 60, 1260, [(A, iip, 443, 260), (C, iip, 443, 240)],
                 lambda t, i: (0.03 if t >= T + 10 else 0.0, 0, 1.0), step=90)
    for t in (T + 15, T + 320, T + 650):
        p = pod_on(fe, A)
        ag[A].refused(t, p, iip, 443, sc.rng.randint(2, 6), comm="node")
    Alert(sc, "HighErrorRate", "warning", {"namespace": "ingress-nginx", "service": "ingress-nginx-controller"},
          {"summary": "ingress 5xx ratio above 1 %", "error_ratio": "0.03"}).fire(T + 120)
    Alert(sc, "TargetDown", "warning", {"namespace": "ingress-nginx", "job": "ingress-nginx-controller-metrics",
                                        "service": "ingress-nginx-controller-metrics"},
          {"summary": "33.3% of the ingress-nginx-controller-metrics targets in ingress-nginx namespace are down."}).fire(T + 600)
    Alert(sc, "KubePodCrashLooping", "warning", {"namespace": "ingress-nginx", "pod": ib.name,
                                                 "container": "ingress-nginx-controller"},
          {"summary": "Pod is crash looping."}).fire(T + 900)
    w.run()
    sc.expect("P3", "P3: moderate error rate (3 %) — one of three ingress controllers crash-loops "
              "(OOM at its limit), the other two carry the traffic",
              "memory_limit_too_low", ent("DaemonSet", "ingress-nginx", "ingress-nginx-controller"),
              [ent("Service", "ingress-nginx", "ingress-nginx-controller"),
               ent("Service", "ingress-nginx", "ingress-nginx-controller-metrics"),
               ent("Deployment", "shop", "frontend"), ent("StatefulSet", "monitoring", "prometheus-k8s")])


# ---------------------------------------------------------------------------------------
# 66  impact: a destination called once every ~100 s fails 100 %
# ---------------------------------------------------------------------------------------


@scenario("66-rare-caller-decommissioned-admin-service",
          "report-admin, a legacy back-office service, is decommissioned on purpose (Git change: "
          "replicas 1 -> 0, ticket OPS-5120); its Service has no endpoint from then on. One "
          "forgotten link in support-portal still calls it about once every 100 s (0.01 calls "
          "per second, support staff opening an old report page): every one of those connects "
          "is refused — 100 % failure of almost nothing, while support-portal's real traffic "
          "(hundreds of connects a minute) is clean. Informational: a ticket to remove the "
          "dangling link, no page",
          "synthetic trap (error ratio without traffic volume)")
def s66(sc):
    w, ag = base(sc)
    portal = w.deploy("backoffice", "support-portal", 2, [A, B], img("backoffice/support-portal", "2.14.0"),
                      "node", port=3000)
    radmin = w.deploy("backoffice", "report-admin", 1, [C], img("backoffice/report-admin", "0.9.3"),
                      "java", port=8080)
    sapi = w.deploy("backoffice", "support-api", 2, [B, C], img("backoffice/support-api", "2.14.0"),
                    "support-api")
    fe = shop(w, "frontend", 2, [A, C])
    cat = shop(w, "catalog", 2, [B, C])
    w.snapshot(0)
    rip, sip = radmin.service.cluster_ip, sapi.service.cluster_ip
    std_noise(w, ag, sc, resched=(70, cat, A, True), job=(480, B),
              flap=(900, "CPUThrottlingHigh", "shop", {"pod": pod_on(fe, A).name, "container": "frontend"}),
              stats=(30, 1320, [(A, sip, 8080, 160), (B, sip, 8080, 150),
                                (A, cat.service.cluster_ip, 8000, 220)], 120))
    T = 180
    change(sc, T - 2, "change.deployment.rollout", wl("backoffice", "Deployment", "report-admin"),
           {"revision": radmin.revision, "change": "spec.replicas 1 -> 0",
            "reason": "decommission report-admin, replaced by support-api reports (OPS-5120)",
            "application": "backoffice-report-admin"})
    w.spawn(scale_to_zero(w, T, radmin))
    # before: a handful of calls a quarter hour, all answered
    for t in (45, 150):
        ag[A].connect_stats(t, rip, 8080, 1)
    t = T + 40
    while t < 1320:
        p = pods_of(portal)[sc.rng.randint(0, 1)]
        ag[p.node].refused(t, p, rip, 8080, 1, comm="node")
        ag[p.node].connect_stats((int(t) // 30 + 1) * 30, rip, 8080, 1, refused=1)
        t += sc.rng.randint(70, 135)
    w.run()
    sc.expect("P4", "P4: informational — a deliberately decommissioned service still gets ~0.01 "
              "calls/s from one forgotten link; no user-facing impact worth a page",
              "no_ready_endpoints", ent("Service", "backoffice", "report-admin"),
              [ent("Deployment", "backoffice", "report-admin"),
               ent("Deployment", "backoffice", "support-portal")])


# ---------------------------------------------------------------------------------------
# 67  impact: one replica of three crash-loops, the Service keeps answering
# ---------------------------------------------------------------------------------------


@scenario("67-one-of-three-replicas-crashloop-local-cache",
          "catalog runs three replicas; the one on node-b crash-loops because its node-local "
          "index cache (a hostPath left behind by an earlier pod killed mid-write) fails its "
          "checksum at start-up. No rollout, no config change, the other two replicas stay "
          "ready and the Service keeps answering: frontend sees a refused connect now and then "
          "(0.5 %). One replica of three down is reduced capacity, not an outage; nothing "
          "names a rule-level cause beyond the pod's own local state",
          "synthetic trap (a crash loop is not automatically a P2)")
def s67(sc):
    w, ag = base(sc)
    cat = shop(w, "catalog", 3, [A, B, C])
    fe = shop(w, "frontend", 2, [A, C])
    co = shop(w, "checkout", 2, [A, B])
    rev = shop(w, "reviews", 2, [B, C])
    w.snapshot(0)
    kip = cat.service.cluster_ip
    std_noise(w, ag, sc, resched=(90, rev, A, True), job=(610, C),
              flap=(420, "HighLatencyP99", "shop", {"service": "reviews"}, 120),
              stats=(30, 1200, [(B, co.service.cluster_ip, 8080, 150)], 120))
    T = 240
    cb = pod_on(cat, B)
    msg = ("FATAL cache: /var/cache/catalog/index/segments_4f2: checksum mismatch (expected "
           "9c1e07b2, got 00000000); refusing to start with a corrupt local index. Remove the "
           "node-local cache directory to rebuild it.")
    w.spawn(crash_loop(w, cb, T, 1200, run=6, exit_code=2, message=msg, agent=ag[B], event_every=2))
    stats_series(ag, 60, 1200, [(A, kip, 8000, 260), (C, kip, 8000, 240)],
                 lambda t, i: (0.006 if t >= T else 0.0, 0, 1.0), step=90)
    for t in (T + 12, T + 410, T + 800):
        p = pod_on(fe, A)
        ag[A].refused(t, p, kip, 8000, 1, comm="node")
    Alert(sc, "KubePodCrashLooping", "warning", {"namespace": "shop", "pod": cb.name,
                                                 "container": "catalog"},
          {"summary": "Pod is crash looping."}).fire(T + 900)
    w.run()
    sc.expect("P3", "P3: non-critical component failure — one replica of three crash-loops, the "
              "Service answers on two (0.5 % refused connects), no user-visible outage",
              "none", ent("Deployment", "shop", "catalog"), [ent("Service", "shop", "catalog")])


# ---------------------------------------------------------------------------------------
# 68  ranking chain: disk -> database -> Service without endpoints -> callers
# ---------------------------------------------------------------------------------------


@scenario("68-disk-failure-db-no-endpoints-callers",
          "the EBS data volume (nvme1n1) of node-b degrades: slow writes, then I/O errors and "
          "hung tasks; the single postgres primary orders-db-0 on it PANICs ('could not write to "
          "file pg_wal/...: Input/output error') and crash-loops; the orders-db Service has no "
          "ready endpoint, orders-api gets refused connects and fails 97 %, checkout fails 64 %. "
          "The loudest signals (no endpoints, crash loop, error alerts) are symptoms: the cause "
          "is the node's disk, which was first",
          "synthetic; AWS EBS 'volume impaired' degradation pattern (cf. failure-stories.md "
          "chains: block I/O errors before the pod fails)")
def s68(sc):
    w, ag = base(sc)
    db = w.statefulset("orders", "orders-db", 1, [B], "docker.io/library/postgres:16.4",
                       "postgres", 5432, req_mem="4Gi", lim_mem="8Gi")
    oapi = w.deploy("orders", "orders-api", 2, [A, C], img("orders/orders-api", "6.0.3"), "orders-api")
    co = shop(w, "checkout", 2, [A, C])
    fe = shop(w, "frontend", 2, [A, C])
    cat = shop(w, "catalog", 2, [B, C])
    w.snapshot(0)
    dip, oip = db.svc.cluster_ip, oapi.service.cluster_ip
    std_noise(w, ag, sc, resched=(75, cat, A), job=(560, C),
              flap=(160, "CPUThrottlingHigh", "shop", {"pod": pod_on(fe, A).name, "container": "frontend"}),
              stats=(30, 1140, [(A, co.service.cluster_ip, 8080, 150), (C, cat.service.cluster_ip, 8000, 200)], 150))
    ab = ag[B]
    d0 = sts_pod(db, 0)
    T = 300
    ab.latency_spike(T, "nvme1n1", 1840.0, count=4, pod=d0)
    ab.io_error(T + 8, "nvme1n1", "ioerr", op="write", count=2, pod=d0)
    ab.latency_spike(T + 15, "nvme1n1", 4120.5, count=9, pod=d0)
    ab.io_error(T + 25, "nvme1n1", "timeout", op="write", count=6)
    ab.pressure(T + 40, "io", 62.7, 44.1, 30, full10=51.3)
    ab.io_error(T + 44, "nvme1n1", "ioerr", op="write", count=11, pod=d0)
    ab.hung_task(T + 128, "jbd2/nvme1n1-8", 121)
    ab.io_error(T + 200, "nvme1n1", "ioerr", op="read", count=4)
    ab.pressure(T + 340, "io", 74.2, 69.0, 330, full10=66.8)
    pg = ('2026-11-27 10:05:45.102 UTC [1] PANIC:  could not write to file "pg_wal/xlogtemp.61": '
          'Input/output error\n2026-11-27 10:05:45.104 UTC [1] LOG:  database system is shut down')
    w.spawn(crash_loop(w, d0, T + 45, 1140, run=5, exit_code=1, message=pg, agent=ab, event_every=2))
    w.event(T + 20, ("Pod", d0.ns, d0.name, d0.uid), "Unhealthy",
            'Readiness probe failed: command timed out: "pg_isready -U postgres -h 127.0.0.1 -p 5432" timed out after 5s',
            typ="Warning", host=B, field_path="spec.containers{orders-db}")
    flows = [(A, dip, 5432, 140), (C, dip, 5432, 130)]
    stats_series(ag, 60, 1140, flows,
                 lambda t, i: (1.0 if t >= T + 50 else 0.0, 0.3 if T <= t < T + 50 else 0.0, 1.0),
                 step=60)
    for t in every(T + 50, 1120, 90):
        for p in pods_of(oapi):
            ag[p.node].refused(t + sc.rng.randint(0, 15), p, dip, 5432, sc.rng.randint(10, 45),
                               comm="orders-api")
    Alert(sc, "PostgresDown", "critical", {"namespace": "orders", "statefulset": "orders-db",
                                           "pod": "orders-db-0"},
          {"summary": "Postgres orders-db-0 is down."}).fire(T + 110)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "orders", "service": "orders-api"},
          {"summary": "orders-api 5xx ratio above 5 %", "error_ratio": "0.97"}).fire(T + 80)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "checkout"},
          {"summary": "checkout 5xx ratio above 5 %", "error_ratio": "0.64"}).fire(T + 95)
    w.run()
    sc.expect("P1", "P1: complete service unavailability — the orders database is down, "
              "orders-api fails 97 %, no order can be placed",
              "disk_failure", "Node/node-b",
              [ent("StatefulSet", "orders", "orders-db"), ent("Service", "orders", "orders-db"),
               ent("Deployment", "orders", "orders-api"), ent("Service", "orders", "orders-api"),
               ent("Deployment", "shop", "checkout")])


# ---------------------------------------------------------------------------------------
# 69  ranking with merge: DNS errors downstream in two namespaces before CoreDNS fails visibly
# ---------------------------------------------------------------------------------------


@scenario("69-coredns-overload-downstream-first",
          "a backfill job in analytics starts resolving millions of external names (ndots:5: "
          "five lookups each); CoreDNS (limit 170Mi) saturates. For the first 75 s only the "
          "clients show it — DNS timeouts to 10.96.0.10:53 and error alerts in shop and "
          "identity that say nothing about DNS; then CoreDNS fails its readiness probe, "
          "kube-dns loses its endpoints (refused on :53 everywhere) and both CoreDNS pods are "
          "OOM-killed and crash-loop. Fixed after ten minutes (limit raised, backfill scaled "
          "to 0). The early downstream errors belong to the DNS incident",
          "failure-stories.md #1 (Zalando 2019: a query surge amplified by ndots:5 OOM-kills "
          "CoreDNS) — re-timed so the symptoms are seen downstream first")
def s69(sc):
    w, ag = base(sc)
    dns = w.coredns
    co = shop(w, "checkout", 2, [A, C])
    fe = shop(w, "frontend", 2, [B, C])
    auth = w.deploy("identity", "auth-api", 2, [A, B], img("identity/auth-api", "8.4.1"), "auth-api")
    bf = w.deploy("analytics", "feature-backfill", 1, [C], img("analytics/feature-backfill", "0.7.2"),
                  "python3", port=None, svc=False)
    cat = shop(w, "catalog", 2, [B, C])
    w.snapshot(0)
    D = "10.96.0.10"
    std_noise(w, ag, sc, resched=(70, cat, A), job=(140, B),
              flap=(200, "CPUThrottlingHigh", "shop", {"pod": pod_on(co, A).name, "container": "checkout"}),
              stats=(30, 1260, [(B, cat.service.cluster_ip, 8000, 180)], 150))
    T, FIX = 300, 1000
    healthy_stats(ag, 30, T - 30, [(A, D, 53, 40), (B, D, 53, 40), (C, D, 53, 30)], 90)
    # clients: timeouts first (CoreDNS saturated), refused once kube-dns has no endpoint
    stats_series(ag, T, FIX + 120, [(A, D, 53, 40), (B, D, 53, 40), (C, D, 53, 30)],
                 lambda t, i: ((0, 0, 1.0) if t >= FIX + 40 else
                               (0.9, 0.05, 3.0) if t >= T + 97 else
                               (0, 0.35, 2.0 if i < 2 else 25.0)), step=60)
    early = [(pod_on(co, A), "checkout"), (pod_on(auth, B), "auth-api"),
             (pod_on(auth, A), "auth-api"), (pod_on(fe, B), "node")]
    for k, t in enumerate((T + 8, T + 14, T + 31, T + 46, T + 62)):
        p, comm = early[k % len(early)]
        ag[p.node].timeout(t, p, D, 53, sc.rng.randint(3, 12), waited_ms=5000, comm=comm)
    late = early + [(pod_on(bf, C), "python3"), (pod_on(co, C), "checkout")]
    for k, t in enumerate(every(T + 100, FIX + 20, 90)):
        for p, comm in late[k % 2::2]:
            ag[p.node].refused(t + sc.rng.randint(0, 20), p, D, 53, sc.rng.randint(20, 120), comm=comm)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "checkout"},
          {"summary": "checkout 5xx ratio above 5 %", "error_ratio": "0.38"}).fire(T + 35).resolve(FIX + 90)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "identity", "service": "auth-api"},
          {"summary": "auth-api 5xx ratio above 5 %", "error_ratio": "0.27"}).fire(T + 50).resolve(FIX + 95)
    Alert(sc, "HighErrorRate", "critical", {"namespace": "shop", "service": "frontend"},
          {"summary": "frontend 5xx ratio above 5 %", "error_ratio": "0.22"}).fire(T + 64).resolve(FIX + 100)
    Alert(sc, "CoreDNSDown", "critical", {"namespace": "kube-system", "deployment": "coredns"},
          {"summary": "CoreDNS has disappeared from Prometheus target discovery."}).fire(T + 190).resolve(FIX + 50)
    lim = mib(170)
    c1, c2 = pod_on(dns, A), pod_on(dns, B)

    def coredns():
        for k in range(3):
            yield T + 75 + k * 10
            for p in (c1, c2):
                w.event(T + 75 + k * 10, ("Pod", p.ns, p.name, p.uid), "Unhealthy",
                        "Readiness probe failed: HTTP probe failed with statuscode: 503",
                        typ="Warning", host=p.node, field_path="spec.containers{coredns}")
        yield T + 96
        for p in (c1, c2):
            p.containers[0].ready = False
        w.sync(T + 96)

    w.spawn(coredns())
    w.spawn(crash_loop(w, c1, T + 105, FIX + 30, run=20, oom=(lim - mib(1), lim), agent=ag[A],
                       event_every=3))
    w.spawn(crash_loop(w, c2, T + 113, FIX + 30, run=18, oom=(lim - mib(1), lim), agent=ag[B],
                       event_every=3))
    change(sc, FIX - 20, "change.deployment.rollout", wl("analytics", "Deployment", "feature-backfill"),
           {"revision": bf.revision, "change": "spec.replicas 1 -> 0", "reason": "DNS incident"},
           agent="kubectl-audit", node=A)
    w.spawn(scale_to_zero(w, FIX - 20, bf))
    change(sc, FIX, "change.deployment.rollout", wl("kube-system", "Deployment", "coredns"),
           {"revision": 3, "image": "registry.k8s.io/coredns/coredns:v1.11.3",
            "change": "resources.limits.memory 170Mi -> 512Mi", "application": "kube-system"},
           agent="kubectl-audit", node=A)

    def bump(c):
        c.lim_mem = "512Mi"

    w.spawn(rolling_update(w, FIX + 1, dns, [C, A], mutate=bump, step=10, pull_first=False))
    w.run()
    sc.expect("P1", "P1: complete cluster failure — cluster DNS down for ten minutes, services in "
              "every namespace fail (checkout 38 %, auth-api 27 %), kube-dns has no endpoint",
              "dns_outage", ent("Deployment", "kube-system", "coredns"),
              [ent("Service", "kube-system", "kube-dns"), ent("Deployment", "shop", "checkout"),
               ent("Deployment", "shop", "frontend"), ent("Deployment", "identity", "auth-api"),
               ent("Deployment", "analytics", "feature-backfill")])


# ---------------------------------------------------------------------------------------
# 70  two unrelated failures on the same node at the same time
# ---------------------------------------------------------------------------------------


@scenario("70-same-node-two-unrelated-failures",
          "at the same minute, on node-b: (1) auth 5.2.0 rolls out and its new pods (on node-b "
          "and node-c) pass their probes but fail 35 % of logins (a token-refresh bug); "
          "(2) the single recommendations pod on node-b is OOM-killed at its 1Gi limit (a "
          "larger model file) and crash-loops — the node has 18 GiB free, no pressure; frontend "
          "falls back to a static carousel and sees refused connects to recommendations. Same "
          "node, same minute, no common cause: two incidents",
          "synthetic trap (co-location is not causation)")
def s70(sc):
    w, ag = base(sc)
    auth = w.deploy("identity", "auth", 2, [A, C], img("identity/auth", "5.1.4"), "auth", revision=18)
    reco = shop(w, "recommendations", 1, [B], lim_mem="1Gi", req_mem="768Mi")
    fe = shop(w, "frontend", 2, [A, C])
    cat = shop(w, "catalog", 2, [B, C])
    w.snapshot(0)
    std_noise(w, ag, sc, resched=(80, cat, A), job=(700, C),
              flap=(150, "HighLatencyP99", "shop", {"service": "catalog"}, 90),
              stats=(30, 1140, [(A, cat.service.cluster_ip, 8000, 220), (C, auth.service.cluster_ip, 8080, 130)], 150))
    T = 300
    change(sc, T, "change.deployment.rollout", wl("identity", "Deployment", "auth"),
           {"revision": 19, "image": img("identity/auth", "5.2.0"),
            "previous_image": img("identity/auth", "5.1.4"), "application": "identity-auth"})
    w.spawn(rolling_update(w, T + 1, auth, [B, C], image=img("identity/auth", "5.2.0"), step=14))
    Alert(sc, "HighErrorRate", "critical", {"namespace": "identity", "service": "auth"},
          {"summary": "auth 5xx ratio above 5 %", "error_ratio": "0.35"}).fire(T + 70)
    rb = pod_on(reco, B)
    lim = gib(1)
    w.spawn(crash_loop(w, rb, T + 24, 1140, run=35, oom=(lim - mib(1), lim), agent=ag[B],
                       event_every=2))
    rip = reco.service.cluster_ip
    stats_series(ag, 60, 1140, [(A, rip, 8080, 60), (C, rip, 8080, 55)],
                 lambda t, i: (0.85 if t >= T + 30 else 0.0, 0, 1.0), step=90)
    for t in every(T + 40, 1100, 150):
        p = pods_of(fe)[sc.rng.randint(0, 1)]
        ag[p.node].refused(t, p, rip, 8080, sc.rng.randint(5, 20), comm="node")
    w.run()
    sc.expect("P2", "P2: high error rate — 35 % of logins fail since the auth 5.2.0 rollout",
              "bad_rollout", ent("Deployment", "identity", "auth"), [ent("Service", "identity", "auth")])
    sc.expect("P3", "P3: non-critical component failure — recommendations OOM-killed at its limit "
              "and down; the frontend falls back, pages still render",
              "memory_limit_too_low", ent("Deployment", "shop", "recommendations"),
              [ent("Service", "shop", "recommendations"), ent("Deployment", "shop", "frontend")])
