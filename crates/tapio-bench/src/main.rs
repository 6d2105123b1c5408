//! Load tool for tapio-server's ingest path.
//!
//! `throughput`: W workers post batches back to back for a duration; reports sustained
//! events/s and acknowledgement latency. `latency`: posts at a fixed event rate and reports
//! POST→durable-acknowledgement percentiles. Every batch is a valid envelope with fresh
//! event ids, so each one is really stored (no dedupe shortcut).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use tapio_bench::workload::{Gen, Stream};

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Throughput,
    Latency,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Workload {
    /// Network evidence with 1 % OOM kills, every batch with fresh destinations: an ingest
    /// load (it opens an incident per destination, far more than any real cluster).
    Synthetic,
    /// The cluster stream `tapio-corrbench` measures (workload.rs): a Kubernetes snapshot,
    /// then healthy churn, noise and a failure episode every 5,000 chunks, at wall-clock
    /// time. Worker i speaks for its own slice of cluster i mod n (disjoint names).
    Cluster,
}

#[derive(Parser)]
#[command(name = "tapio-loadgen")]
struct Args {
    /// Server address; throughput mode takes a comma-separated list of replicas (worker i
    /// sends to address i mod n).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Kubernetes clusters the evidence names (worker i speaks for cluster i mod n): with
    /// replicas, each cluster is one correlation partition.
    #[arg(long, default_value_t = 1)]
    clusters: usize,
    #[arg(long, value_enum, default_value = "throughput")]
    mode: Mode,
    /// What the evidence is (throughput mode).
    #[arg(long, value_enum, default_value = "synthetic")]
    workload: Workload,
    /// Pods per worker's slice (cluster workload).
    #[arg(long, default_value_t = 1000)]
    pods: usize,
    /// Nodes per worker's slice (cluster workload).
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Events per batch.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Concurrent senders (throughput mode).
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Events per second (latency mode).
    #[arg(long, default_value_t = 5000)]
    rate: u64,
}

fn batch_body(agent: &str, seq: u64, n: usize) -> String {
    batch_body_in(agent, seq, n, "bench")
}

fn batch_body_in(agent: &str, seq: u64, n: usize, cluster: &str) -> String {
    let now = chrono::Utc::now().to_rfc3339();
    let mut s = String::with_capacity(n * 330 + 128);
    s.push_str(&format!(
        r#"{{"version":1,"agent_id":"{agent}","node":"bench-node","seq":{seq},"events":["#
    ));
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        // 1 in 100 is an OOM kill on one of 10 workloads (opens/updates incidents); the
        // rest are plain network evidence.
        let (t, sev, w) = if i % 100 == 0 {
            (
                "kernel.container.oom_kill",
                "critical",
                format!("w{}", seq % 10),
            )
        } else {
            (
                "kernel.network.retransmit_spike",
                "warning",
                format!("svc{}", i % 50),
            )
        };
        s.push_str(&format!(
            r#"{{"id":"{}","time":"{now}","type":"{t}","severity":"{sev}","entity":{{"cluster":"{cluster}","node":"bench-node","namespace":"bench","pod":"{w}-abc","workload":{{"kind":"Deployment","name":"{w}"}}}},"attributes":{{"dst_addr":"10.0.{}.{}","dst_port":8080,"retransmits":{}}}}}"#,
            ulid::Ulid::new(),
            i % 250,
            seq % 250,
            i % 97
        ));
    }
    s.push_str("]}");
    s
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// `Ok(Some((latency, shed)))` when acknowledged (`shed`: events the server's load
/// shedding dropped, from the acknowledgement), `Ok(None)` when refused for load (503/429: a
/// flood keeps pushing, it is counted), an error otherwise.
fn post(a: &ureq::Agent, url: &str, body: &str) -> anyhow::Result<Option<(Duration, u64)>> {
    let t = Instant::now();
    let mut r = match a
        .post(url)
        .header("content-type", "application/json")
        .send(body)
    {
        Ok(r) => r,
        // A refusing server may close the connection mid-body: refused, not fatal.
        Err(ureq::Error::Io(_)) => return Ok(None),
        Err(e) => return Err(e).context("POST"),
    };
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().context("read ack")?;
    let took = t.elapsed();
    match status {
        200 => {
            let shed = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("shed").and_then(|s| s.as_u64()))
                .unwrap_or(0);
            Ok(Some((took, shed)))
        }
        429 | 503 => Ok(None),
        _ => bail!("server answered {status}: {text}"),
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// This process's user + system CPU seconds (Linux; clock ticks are 100 per second there).
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn report(kind: &str, events: u64, elapsed: Duration, mut lat: Vec<Duration>) {
    lat.sort();
    println!(
        "{kind}: {events} events in {:.1} s = {:.0} events/s; {} batches; ack latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64(),
        lat.len(),
        pct(&lat, 0.50),
        pct(&lat, 0.90),
        pct(&lat, 0.99),
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    );
    // The sender shares the machine with what it measures: say what it cost.
    if let Some(cpu) = own_cpu_seconds() {
        println!("sender CPU {cpu:.1} s");
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let urls: Vec<String> = args
        .server
        .split(',')
        .map(|s| format!("{}/api/v1/evidence", s.trim().trim_end_matches('/')))
        .collect();
    let url = urls[0].clone();
    let run_id = ulid::Ulid::new().to_string();
    match args.mode {
        Mode::Throughput => {
            let stop = Arc::new(AtomicBool::new(false));
            let events = Arc::new(AtomicU64::new(0));
            let refused = Arc::new(AtomicU64::new(0));
            let shed = Arc::new(AtomicU64::new(0));
            let start = Instant::now();
            let handles: Vec<_> = (0..args.workers)
                .map(|w| {
                    let (stop, events) = (stop.clone(), events.clone());
                    let url = urls[w % urls.len()].clone();
                    let cluster = format!("bench-{}", w % args.clusters.max(1));
                    let refused = refused.clone();
                    let shed = shed.clone();
                    let agent_id = format!("bench-{run_id}-{w}");
                    let n = args.batch;
                    let mut stream = (args.workload == Workload::Cluster).then(|| {
                        Stream::new(Gen::new(
                            w,
                            Some(cluster.clone()),
                            args.pods,
                            args.nodes,
                            chrono::Utc::now(),
                            chrono::Duration::microseconds(1),
                        ))
                    });
                    std::thread::spawn(move || -> anyhow::Result<Vec<Duration>> {
                        let a = agent();
                        let mut lat = Vec::new();
                        let mut seq = 0;
                        let mut body = String::new();
                        while !stop.load(Ordering::Relaxed) {
                            if body.is_empty() {
                                seq += 1;
                                body = match stream.as_mut() {
                                    Some(s) => {
                                        s.source.follow(chrono::Utc::now());
                                        let evs: Vec<_> = s.by_ref().take(n).collect();
                                        serde_json::json!({"version": 1, "agent_id": agent_id,
                                            "node": "bench-node", "seq": seq, "events": evs})
                                        .to_string()
                                    }
                                    None => batch_body_in(&agent_id, seq, n, &cluster),
                                };
                            }
                            match post(&a, &url, &body)? {
                                Some((took, dropped)) => {
                                    lat.push(took);
                                    events.fetch_add(n as u64 - dropped, Ordering::Relaxed);
                                    shed.fetch_add(dropped, Ordering::Relaxed);
                                    body.clear();
                                }
                                // The same batch again, at once: a flood, not an agent.
                                None => {
                                    refused.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        Ok(lat)
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_secs(args.seconds));
            stop.store(true, Ordering::Relaxed);
            let mut lat = Vec::new();
            for h in handles {
                lat.extend(h.join().map_err(|_| anyhow::anyhow!("worker panicked"))??);
            }
            report(
                "throughput",
                events.load(Ordering::Relaxed),
                start.elapsed(),
                lat,
            );
            println!(
                "refused for load (503/429): {} batches; shed by the server (acknowledged, not stored): {} events",
                refused.load(Ordering::Relaxed),
                shed.load(Ordering::Relaxed)
            );
        }
        Mode::Latency => {
            let a = agent();
            let interval = Duration::from_secs_f64(args.batch as f64 / args.rate as f64);
            let agent_id = format!("bench-{run_id}-lat");
            let start = Instant::now();
            let mut next = start;
            let mut lat = Vec::new();
            let mut seq = 0;
            while start.elapsed() < Duration::from_secs(args.seconds) {
                seq += 1;
                // Build before the send time so body generation is not measured.
                let body = batch_body(&agent_id, seq, args.batch);
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
                match post(&a, &url, &body)? {
                    Some((took, _)) => lat.push(took),
                    None => bail!(
                        "the server refused a batch for load at {} events/s",
                        args.rate
                    ),
                }
                next += interval;
            }
            report(
                &format!("latency @ {} events/s", args.rate),
                seq * args.batch as u64,
                start.elapsed(),
                lat,
            );
        }
    }
    Ok(())
}
