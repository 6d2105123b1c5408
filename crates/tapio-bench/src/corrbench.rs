//! `tapio-corrbench`: correlator throughput on one core on a large synthetic stream.
//!
//! A cluster of N nodes and P pods (10 per Deployment, each Deployment with a Service and
//! an EndpointSlice) is announced as watch events, then a stream of healthy churn (pod
//! updates, Normal events, healthy connect statistics), noise (single refusals, short
//! abnormal exits, informational alerts) and recurring failure episodes (a Deployment
//! crash-loops, its Service loses its endpoints, its callers' connects fail, then it
//! recovers; rollouts before some of them). Only the time inside `observe` is measured;
//! generating the stream is not. Prints one JSON line per depth.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use clap::Parser;
use serde_json::{Value, json};
use tapio_core::IncidentEngine;
use tapio_core::config::CorrelationDepth;
use tapio_core::correlate::CorrelationEngine;
use tapio_proto::{AttrValue, Entity, Event, EventSeverity, EventType, WorkloadRef};
use ulid::Ulid;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    #[arg(long, default_value_t = 500)]
    nodes: usize,
    /// basic, standard, deep or all.
    #[arg(long, default_value = "all")]
    depth: String,
}

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

struct Gen {
    rng: Rng,
    t: DateTime<Utc>,
    n: u128,
    deployments: usize,
    nodes: usize,
    pods_per: usize,
}

fn ns_of(d: usize) -> String {
    format!("ns-{}", d % 50)
}

impl Gen {
    fn ev(
        &mut self,
        kind: &str,
        sev: EventSeverity,
        entity: Entity,
        attrs: Vec<(&str, AttrValue)>,
        object: Option<Value>,
    ) -> Event {
        self.n += 1;
        self.t += Duration::milliseconds(2);
        Event {
            id: Ulid::from_parts(self.t.timestamp_millis() as u64, self.n),
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
    fn pod_ip(d: usize, i: usize) -> String {
        let n = d * 10 + i;
        format!("10.1.{}.{}", n / 250, n % 250 + 1)
    }
    fn svc_ip(d: usize) -> String {
        format!("10.96.{}.{}", d / 250, d % 250 + 1)
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
            "metadata": {"name": format!("app-{d}-5d8f7c9b4-{i:05}"), "namespace": ns_of(d), "uid": format!("uid-{d}-{i}"),
                "labels": {"app": format!("app-{d}"), "pod-template-hash": "5d8f7c9b4"},
                "ownerReferences": [{"kind": "ReplicaSet", "name": format!("app-{d}-5d8f7c9b4"), "controller": true}]},
            "spec": {"nodeName": format!("node-{}", (d * self.pods_per + i) % self.nodes),
                "containers": [{"name": "app", "image": format!("app-{d}:1"), "resources": {"limits": {"memory": "512Mi"}}}]},
            "status": {"phase": "Running", "podIP": Self::pod_ip(d, i),
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}],
                "containerStatuses": [cs]}});
        self.watch(verb, obj)
    }
    fn slice(&mut self, d: usize, ready: bool) -> Event {
        let eps: Vec<Value> = (0..self.pods_per)
            .map(|i| json!({"addresses": [Self::pod_ip(d, i)], "conditions": {"ready": ready}}))
            .collect();
        self.watch("modified", json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("app-{d}-x1"), "namespace": ns_of(d), "labels": {"kubernetes.io/service-name": format!("app-{d}")}},
            "endpoints": eps}))
    }
    fn deployment(&mut self, verb: &str, d: usize, image: &str) -> Event {
        self.watch(verb, json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": format!("app-{d}"), "namespace": ns_of(d)},
            "spec": {"replicas": self.pods_per, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
            "status": {"availableReplicas": self.pods_per}}))
    }
    fn stats(&mut self, caller: usize, target: usize, attempts: i64, failed: i64) -> Event {
        let e = Entity {
            node: Some(format!("node-{}", caller % self.nodes)),
            namespace: Some(ns_of(caller)),
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
                ("dst_addr", AttrValue::String(Self::svc_ip(target))),
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
            out.push(self.watch("added", json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": format!("node-{n}")},
                "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}]}})));
        }
        for d in 0..self.deployments {
            out.push(self.deployment("added", d, &format!("app-{d}:1")));
            out.push(self.watch("added", json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": format!("app-{d}-5d8f7c9b4"), "namespace": ns_of(d),
                    "ownerReferences": [{"kind": "Deployment", "name": format!("app-{d}"), "controller": true}]}})));
            out.push(self.watch("added", json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": format!("app-{d}"), "namespace": ns_of(d)},
                "spec": {"selector": {"app": format!("app-{d}")}, "clusterIP": Self::svc_ip(d), "ports": [{"port": 80}]}})));
            for i in 0..self.pods_per {
                out.push(self.pod("added", d, i, None, 0));
            }
            out.push(self.slice(d, true));
        }
        out
    }

    /// The next chunk of the stream: mostly healthy, sometimes an episode.
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
                    "involvedObject": {"kind": "Pod", "name": format!("app-{d}-5d8f7c9b4-{i:05}"), "namespace": ns_of(d)}})));
            }
            98 => {
                // A short-lived job container exiting 1 now and then, spread over many jobs.
                let job = self.rng.below(50_000);
                let e = Entity {
                    namespace: Some(ns_of(d)),
                    node: Some(format!("node-{}", d % self.nodes)),
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
                    node: Some(format!("node-{}", d % self.nodes)),
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

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn run(a: &Args, depth: CorrelationDepth) -> Value {
    let mut g = Gen {
        rng: Rng(0x9E37_79B9_7F4A_7C15),
        t: "2026-11-27T10:00:00Z".parse().expect("time"),
        n: 0,
        deployments: (a.pods / 10).max(1),
        nodes: a.nodes.max(1),
        pods_per: 10,
    };
    let mut engine = CorrelationEngine::with_defaults(depth);
    let mut lat_ns: Vec<u32> = Vec::with_capacity(a.events);
    let mut busy = std::time::Duration::ZERO;
    let mut processed = 0usize;
    let mut opened = 0usize;
    let mut rss = Vec::new();
    let checkpoints = [a.events / 4, a.events / 2, a.events * 3 / 4, a.events];
    let mut next_cp = 0;
    let mut pending = g.snapshot();
    let snapshot_len = pending.len();
    pending.reverse();
    let mut since_episode = 0usize;
    let mut by_kind: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
    while processed < a.events {
        if pending.is_empty() {
            since_episode += 1;
            let episode = since_episode >= 5_000;
            if episode {
                since_episode = 0;
            }
            pending = g.chunk(episode);
            pending.reverse();
        }
        let Some(ev) = pending.pop() else { continue };
        let kind_label = match &ev.object {
            Some(o) => format!(
                "watch:{}",
                o.get("kind").and_then(|k| k.as_str()).unwrap_or("")
            ),
            None => ev.kind.as_str().to_owned(),
        };
        let t = Instant::now();
        let changes = engine.observe(&ev, ev.time);
        let d = t.elapsed();
        busy += d;
        lat_ns.push(d.as_nanos().min(u32::MAX as u128) as u32);
        if processed >= snapshot_len {
            by_kind
                .entry(kind_label)
                .or_default()
                .push(d.as_nanos().min(u32::MAX as u128) as u32);
        }
        opened += changes
            .iter()
            .filter(|c| matches!(c, tapio_core::IncidentChange::Opened(_)))
            .count();
        processed += 1;
        if next_cp < checkpoints.len() && processed >= checkpoints[next_cp] {
            rss.push(json!({"events": processed, "rss_mb": (rss_mb() * 10.0).round() / 10.0}));
            next_cp += 1;
        }
    }
    // The initial snapshot (every object ADDED once) and the steady stream separately.
    let mut stream: Vec<u32> = lat_ns.split_off(snapshot_len.min(lat_ns.len()));
    stream.sort_unstable();
    lat_ns.sort_unstable();
    let pct_of = |v: &[u32], p: f64| {
        if v.is_empty() {
            0.0
        } else {
            v[((v.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0
        }
    };
    let snapshot_p99 = pct_of(&lat_ns, 0.99);
    lat_ns = stream;
    let pct = |p: f64| pct_of(&lat_ns, p);
    json!({
        "depth": depth.to_string(),
        "events": processed,
        "pods": a.pods, "nodes": a.nodes,
        "engine_seconds": (busy.as_secs_f64() * 1000.0).round() / 1000.0,
        "events_per_second": (processed as f64 / busy.as_secs_f64()).round(),
        "latency_us": {"p50": pct(0.5), "p99": pct(0.99), "p999": pct(0.999), "max": pct(1.0)},
        "snapshot_events": snapshot_len,
        "by_kind_us": by_kind.iter_mut().map(|(k, v)| {
            v.sort_unstable();
            let total: f64 = v.iter().map(|x| *x as f64).sum::<f64>() / 1000.0;
            (k.clone(), json!({"n": v.len(), "p50": pct_of(v, 0.5), "p99": pct_of(v, 0.99), "total_ms": (total / 1000.0).round()}))
        }).collect::<serde_json::Map<String, Value>>(),
        "snapshot_p99_us": snapshot_p99,
        "incidents_opened": opened,
        "active_at_end": engine.active_count(),
        "rss_mb": rss,
    })
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let depths: Vec<CorrelationDepth> = match a.depth.as_str() {
        "all" => vec![
            CorrelationDepth::Basic,
            CorrelationDepth::Standard,
            CorrelationDepth::Deep,
        ],
        d => vec![tapio_core::eval::parse_depth(Some(d)).map_err(anyhow::Error::msg)?],
    };
    for d in depths {
        println!("{}", run(&a, d));
    }
    Ok(())
}
