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
