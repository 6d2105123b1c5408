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

use chrono::Duration;
use clap::Parser;
use serde_json::{Value, json};
use tapio_bench::workload::{Gen, Stream};
use tapio_core::IncidentEngine;
use tapio_core::config::CorrelationDepth;
use tapio_core::correlate::CorrelationEngine;

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
    /// Instead of the steady stream: an incident storm of this many connection refusals to
    /// distinct unknown addresses (interleaved 1:1 with the steady stream), with a P1
    /// outage of one Service injected halfway. Reports the slowest tenth's rate, the engine
    /// time from the P1 fact to its P1 incident, incidents opened and memory.
    #[arg(long)]
    storm: Option<u64>,
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
    let mut stream = Stream::new(Gen::new(
        0,
        None,
        a.pods,
        a.nodes,
        "2026-11-27T10:00:00Z".parse().expect("time"),
        Duration::milliseconds(2),
    ));
    let snapshot_len = stream.snapshot_len;
    let mut engine = CorrelationEngine::with_defaults(depth);
    let mut lat_ns: Vec<u32> = Vec::with_capacity(a.events);
    let mut busy = std::time::Duration::ZERO;
    let mut processed = 0usize;
    let mut opened = 0usize;
    let mut rss = Vec::new();
    let checkpoints = [a.events / 4, a.events / 2, a.events * 3 / 4, a.events];
    let mut next_cp = 0;
    let mut by_kind: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
    while processed < a.events {
        let Some(ev) = stream.next() else { break };
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

fn storm(a: &Args, depth: CorrelationDepth, n: u64) -> Value {
    let mut stream = Stream::new(Gen::new(
        0,
        None,
        a.pods,
        a.nodes,
        "2026-11-27T10:00:00Z".parse().expect("time"),
        Duration::milliseconds(2),
    ));
    let mut engine = CorrelationEngine::with_defaults(depth);
    // Warm up: the cluster snapshot and some steady traffic (not measured).
    for _ in 0..stream.snapshot_len + 50_000 {
        let Some(ev) = stream.next() else { break };
        engine.observe(&ev, ev.time);
    }
    let tenth = (n / 10).max(1);
    let mut window = std::time::Duration::ZERO;
    let mut window_events = 0u64;
    let mut rates = Vec::new();
    let mut busy = std::time::Duration::ZERO;
    let mut events = 0u64;
    let mut opened = 0usize;
    let mut max_active = 0usize;
    let mut p1_started: Option<std::time::Duration> = None;
    let mut p1_after: Option<f64> = None;
    let mut p1_events = 0u64;
    let target = 17usize;
    let want = format!("app-{target}");
    let want_key = format!("Service/ns-{}/{want}", target % 50);
    let feed = |engine: &mut CorrelationEngine, ev: &tapio_proto::Event| {
        let t = Instant::now();
        let mut changes = engine.observe(ev, ev.time);
        // The server reports incidents that only gained evidence at the end of each read
        // of up to 2,048 stored events (`flush`); so does this.
        if ev.id.random().is_multiple_of(2048) {
            changes.extend(engine.flush());
        }
        (t.elapsed(), changes)
    };
    for k in 0..n {
        let mut batch = vec![stream.source.storm_refusal(k)];
        if let Some(ev) = stream.next() {
            batch.push(ev);
        }
        if k == n / 2 {
            batch.extend(stream.source.total_outage(target));
            p1_started = Some(busy);
        }
        for ev in &batch {
            let (d, changes) = feed(&mut engine, ev);
            busy += d;
            window += d;
            events += 1;
            window_events += 1;
            if p1_started.is_some() && p1_after.is_none() {
                p1_events += 1;
            }
            for c in &changes {
                if matches!(c, tapio_core::IncidentChange::Opened(_)) {
                    opened += 1;
                }
                let inc = c.incident();
                if p1_after.is_none()
                    && inc.severity == tapio_core::Severity::P1
                    && (inc.title.contains(&want_key) || inc.severity_reason.contains(&want_key))
                    && let Some(s) = p1_started
                {
                    p1_after = Some((busy - s).as_secs_f64());
                }
            }
        }
        max_active = max_active.max(engine.active_count());
        if (k + 1) % tenth == 0 {
            rates.push((window_events as f64 / window.as_secs_f64().max(1e-9)).round());
            window = std::time::Duration::ZERO;
            window_events = 0;
        }
    }
    let slowest = rates.iter().copied().fold(f64::INFINITY, f64::min);
    json!({
        "depth": depth.to_string(),
        "storm_destinations": n,
        "events": events,
        "engine_seconds": (busy.as_secs_f64() * 1000.0).round() / 1000.0,
        "events_per_second": (events as f64 / busy.as_secs_f64()).round(),
        "slowest_tenth_events_per_second": slowest,
        "per_tenth_events_per_second": rates,
        "p1_engine_seconds": p1_after,
        "p1_events_until_incident": p1_events,
        "incidents_opened": opened,
        "max_active": max_active,
        "active_at_end": engine.active_count(),
        "rss_mb": (rss_mb() * 10.0).round() / 10.0,
        "pages_and_storm_incidents": engine.incidents().iter().filter(|i| i.title.contains(&want) || i.severity <= tapio_core::Severity::P2 || i.title.contains("storm")).map(|i| format!("{} {} {}", i.severity, i.title, i.severity_reason)).collect::<Vec<_>>(),
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
        match a.storm {
            Some(n) => println!("{}", storm(&a, d, n)),
            None => println!("{}", run(&a, d)),
        }
    }
    Ok(())
}
