//! The synthetic cluster stream shared by `tapio-corrbench` (engine only, one core) and
//! `tapio-loadgen --workload cluster` (through the server, as agents and the Kubernetes
//! watch would send it), so the two measure the same evidence.
//!
//! A cluster of N nodes and P pods (10 per Deployment, each Deployment with a Service and
//! an EndpointSlice) is announced as watch events, then a stream of healthy churn (pod
//! updates, Normal events, healthy connect statistics), noise (single refusals, short
//! abnormal exits, informational alerts) and recurring failure episodes (a Deployment
//! crash-loops, its Service loses its endpoints, its callers' connects fail, then it
//! recovers; rollouts before some of them).

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use tapio_proto::{AttrValue, Entity, Event, EventSeverity, EventType, WorkloadRef};
use ulid::Ulid;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One cluster's generator. `Gen::new` with index 0 and a 2 ms step is the stream
/// `tapio-corrbench` has always measured; other indexes give disjoint names, addresses and
/// event ids, so several clusters' streams never collide in one correlation partition.
pub struct Gen {
    rng: Rng,
    t: DateTime<Utc>,
    n: u128,
    id_hi: u128,
    step: Duration,
    deployments: usize,
    nodes: usize,
    pods_per: usize,
    cluster: Option<String>,
    prefix: String,
    net: usize,
}

impl Gen {
    /// `index` 0 keeps the historical names (`ns-3`, `node-7`, 10.1.x.x); index k > 0
    /// prefixes them with `c{k}-` and moves the addresses to their own /16s.
    pub fn new(
        index: usize,
        cluster: Option<String>,
        pods: usize,
        nodes: usize,
        start: DateTime<Utc>,
        step: Duration,
    ) -> Self {
        Gen {
            rng: Rng(0x9E37_79B9_7F4A_7C15 ^ (index as u64).wrapping_mul(0x2545_F491_4F6C_DD1D)),
            t: start,
            n: 0,
            id_hi: (index as u128) << 48,
            step,
            deployments: (pods / 10).max(1),
            nodes: nodes.max(1),
            pods_per: 10,
            cluster,
            prefix: if index == 0 {
                String::new()
            } else {
                format!("c{index}-")
            },
            net: index % 90,
        }
    }

    /// Let event time follow the wall clock (never backwards).
    pub fn follow(&mut self, now: DateTime<Utc>) {
        if now > self.t {
            self.t = now;
        }
    }

    fn ns(&self, d: usize) -> String {
        format!("{}ns-{}", self.prefix, d % 50)
    }

    fn node(&self, n: usize) -> String {
        format!("{}node-{}", self.prefix, n % self.nodes)
    }

    fn ev(
        &mut self,
        kind: &str,
        sev: EventSeverity,
        entity: Entity,
        attrs: Vec<(&str, AttrValue)>,
        object: Option<Value>,
    ) -> Event {
        self.n += 1;
        self.t += self.step;
        let mut entity = entity;
        if entity.cluster.is_none() {
            entity.cluster = self.cluster.clone();
        }
        Event {
            id: Ulid::from_parts(self.t.timestamp_millis() as u64, self.id_hi | self.n),
            time: self.t,
            kind: EventType::parse(kind).expect("valid type"),
            severity: sev,
            entity,
            attributes: attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            object,
        }
    }
    fn watch(&mut self, verb: &str, obj: Value) -> Event {
        self.ev(
            &format!("kubernetes.watch.{verb}"),
            EventSeverity::Info,
            Entity::default(),
            vec![],
            Some(obj),
        )
    }
    fn pod_ip(&self, d: usize, i: usize) -> String {
        let n = d * 10 + i;
        format!("10.{}.{}.{}", 1 + self.net, n / 250 % 256, n % 250 + 1)
    }
    fn svc_ip(&self, d: usize) -> String {
        format!("10.{}.{}.{}", 96 + self.net, d / 250 % 256, d % 250 + 1)
    }
    fn pod(
        &mut self,
        verb: &str,
        d: usize,
        i: usize,
        waiting: Option<&str>,
        restarts: i64,
    ) -> Event {
        let ready = waiting.is_none();
        let mut cs = json!({"name": "app", "ready": ready, "restartCount": restarts, "image": format!("app-{d}:1"),
            "state": {"running": {"startedAt": "2026-11-27T09:00:00Z"}}});
        if let Some(w) = waiting {
            cs["state"] = json!({"waiting": {"reason": w}});
            cs["lastState"] = json!({"terminated": {"reason": "Error", "exitCode": 1}});
        }
        let obj = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("app-{d}-5d8f7c9b4-{i:05}"), "namespace": self.ns(d), "uid": format!("uid-{d}-{i}"),
                "labels": {"app": format!("app-{d}"), "pod-template-hash": "5d8f7c9b4"},
                "ownerReferences": [{"kind": "ReplicaSet", "name": format!("app-{d}-5d8f7c9b4"), "controller": true}]},
            "spec": {"nodeName": self.node(d * self.pods_per + i),
                "containers": [{"name": "app", "image": format!("app-{d}:1"), "resources": {"limits": {"memory": "512Mi"}}}]},
            "status": {"phase": "Running", "podIP": self.pod_ip(d, i),
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}],
                "containerStatuses": [cs]}});
        self.watch(verb, obj)
    }
    fn slice(&mut self, d: usize, ready: bool) -> Event {
        let eps: Vec<Value> = (0..self.pods_per)
            .map(|i| json!({"addresses": [self.pod_ip(d, i)], "conditions": {"ready": ready}}))
            .collect();
        self.watch("modified", json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("app-{d}-x1"), "namespace": self.ns(d), "labels": {"kubernetes.io/service-name": format!("app-{d}")}},
            "endpoints": eps}))
    }
    fn deployment(&mut self, verb: &str, d: usize, image: &str) -> Event {
        self.watch(verb, json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": format!("app-{d}"), "namespace": self.ns(d)},
            "spec": {"replicas": self.pods_per, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
            "status": {"availableReplicas": self.pods_per}}))
    }
    fn stats(&mut self, caller: usize, target: usize, attempts: i64, failed: i64) -> Event {
        let e = Entity {
            node: Some(self.node(caller)),
            namespace: Some(self.ns(caller)),
            workload: Some(WorkloadRef {
                kind: "Deployment".into(),
                name: format!("app-{caller}"),
            }),
            ..Entity::default()
        };
        self.ev(
            "kernel.network.connect_stats",
            if failed > 0 {
                EventSeverity::Warning
            } else {
                EventSeverity::Info
            },
            e,
            vec![
                ("dst_addr", AttrValue::String(self.svc_ip(target))),
                ("dst_port", AttrValue::Int(80)),
                ("attempts", AttrValue::Int(attempts)),
                ("successes", AttrValue::Int(attempts - failed)),
                ("refused", AttrValue::Int(failed)),
                ("interval_seconds", AttrValue::Int(10)),
            ],
            None,
        )
    }

    fn snapshot(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        for n in 0..self.nodes {
            out.push(self.watch("added", json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.node(n)},
                "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}]}})));
        }
        for d in 0..self.deployments {
            out.push(self.deployment("added", d, &format!("app-{d}:1")));
            out.push(self.watch("added", json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": format!("app-{d}-5d8f7c9b4"), "namespace": self.ns(d),
                    "ownerReferences": [{"kind": "Deployment", "name": format!("app-{d}"), "controller": true}]}})));
            out.push(self.watch("added", json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": format!("app-{d}"), "namespace": self.ns(d)},
                "spec": {"selector": {"app": format!("app-{d}")}, "clusterIP": self.svc_ip(d), "ports": [{"port": 80}]}})));
            for i in 0..self.pods_per {
                out.push(self.pod("added", d, i, None, 0));
            }
            out.push(self.slice(d, true));
        }
        out
    }

    /// The next chunk of the stream: mostly healthy, sometimes an episode.
    /// A storm event: a repeated connection refusal (count 5) from a random workload's
    /// pod on its node to the `k`-th of many distinct addresses nobody in the cluster owns
    /// (a scanner, a misconfigured client or a broken egress path).
    pub fn storm_refusal(&mut self, k: u64) -> Event {
        let d = self.rng.below(self.deployments);
        let e = Entity {
            node: Some(self.node(d * self.pods_per)),
            namespace: Some(self.ns(d)),
            workload: Some(WorkloadRef {
                kind: "Deployment".into(),
                name: format!("app-{d}"),
            }),
            ..Entity::default()
        };
        let addr = format!("172.{}.{}.{}", 16 + (k >> 16) % 16, (k >> 8) % 256, k % 256);
        self.ev(
            "kernel.network.connection_refused",
            EventSeverity::Warning,
            e,
            vec![
                ("dst_addr", AttrValue::String(addr)),
                ("dst_port", AttrValue::Int(1024 + (k % 50_000) as i64)),
                ("count", AttrValue::Int(5)),
            ],
            None,
        )
    }

    /// A complete outage of Deployment `d`'s Service seen by its callers: every connect
    /// fails (the runbook's P1 "complete service unavailability").
    pub fn total_outage(&mut self, d: usize) -> Vec<Event> {
        let d = d % self.deployments;
        (0..20)
            .map(|c| {
                let caller = (d + 1 + (c % 4) * 7) % self.deployments;
                self.stats(caller, d, 100, 100)
            })
            .collect()
    }

    fn chunk(&mut self, episode: bool) -> Vec<Event> {
        let mut out = Vec::new();
        if episode {
            let d = self.rng.below(self.deployments);
            if self.rng.below(2) == 0 {
                out.push(self.deployment("modified", d, &format!("app-{d}:2")));
            }
            for i in 0..3 {
                out.push(self.pod("modified", d, i, Some("CrashLoopBackOff"), 3));
            }
            out.push(self.slice(d, false));
            for _ in 0..5 {
                for c in 0..4 {
                    let caller = (d + 1 + c * 7) % self.deployments;
                    out.push(self.stats(caller, d, 100, 60));
                }
            }
            for i in 0..3 {
                out.push(self.pod("modified", d, i, None, 3));
            }
            out.push(self.slice(d, true));
            return out;
        }
        let r = self.rng.below(100);
        let d = self.rng.below(self.deployments);
        match r {
            0..=56 => {
                let t = self.rng.below(self.deployments);
                out.push(self.stats(d, t, 50, 0));
            }
            57..=81 => {
                let i = self.rng.below(self.pods_per);
                out.push(self.pod("modified", d, i, None, 0));
            }
            82..=97 => {
                let i = self.rng.below(self.pods_per);
                out.push(self.watch("added", json!({"apiVersion": "v1", "kind": "Event", "type": "Normal", "reason": "Pulled",
                    "message": "Container image already present on machine",
                    "involvedObject": {"kind": "Pod", "name": format!("app-{d}-5d8f7c9b4-{i:05}"), "namespace": self.ns(d)}})));
            }
            98 => {
                // A short-lived job container exiting 1 now and then, spread over many jobs.
                let job = self.rng.below(50_000);
                let e = Entity {
                    namespace: Some(self.ns(d)),
                    node: Some(self.node(d)),
                    workload: Some(WorkloadRef {
                        kind: "Job".into(),
                        name: format!("cron-{job}"),
                    }),
                    ..Entity::default()
                };
                out.push(self.ev(
                    "kernel.container.abnormal_exit",
                    EventSeverity::Warning,
                    e,
                    vec![("exit_code", AttrValue::Int(1))],
                    None,
                ));
            }
            _ => {
                let e = Entity {
                    node: Some(self.node(d)),
                    ..Entity::default()
                };
                out.push(self.ev(
                    "kernel.network.connection_refused",
                    EventSeverity::Warning,
                    e,
                    vec![
                        ("dst_addr", AttrValue::String("192.0.2.1".into())),
                        ("dst_port", AttrValue::Int(9)),
                        ("count", AttrValue::Int(1)),
                    ],
                    None,
                ));
            }
        }
        out
    }
}

/// The stream in order: the snapshot first, then chunks, one episode every
/// `EPISODE_EVERY` chunks.
pub struct Stream {
    pub source: Gen,
    pending: Vec<Event>,
    since_episode: usize,
    /// Events in the initial snapshot.
    pub snapshot_len: usize,
}

const EPISODE_EVERY: usize = 5_000;

impl Stream {
    pub fn new(mut source: Gen) -> Self {
        let mut pending = source.snapshot();
        let snapshot_len = pending.len();
        pending.reverse();
        Stream {
            source,
            pending,
            since_episode: 0,
            snapshot_len,
        }
    }
}

impl Iterator for Stream {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        while self.pending.is_empty() {
            self.since_episode += 1;
            let episode = self.since_episode >= EPISODE_EVERY;
            if episode {
                self.since_episode = 0;
            }
            self.pending = self.source.chunk(episode);
            self.pending.reverse();
        }
        self.pending.pop()
    }
}
