//! `tapio eval`, `tapio why` and in-process `tapio replay`: the correlation engine run
//! from the command line.

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use tapio_core::config::CorrelationDepth;
use tapio_core::correlate::CorrelationEngine;
use tapio_core::eval::{self, Expected, ScenarioResult};
use tapio_core::{Incident, IncidentEngine};
use tapio_proto::{EvidenceBatch, Limits};

use crate::Output;
use crate::client::Client;

/// Read a replay file (one batch per line), validating each line as the server would.
pub fn read_batches(file: &str) -> Result<Vec<(usize, String, EvidenceBatch)>, String> {
    let reader: Box<dyn BufRead> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file).map_err(|e| format!("cannot open {file}: {e}"))?,
        ))
    };
    // Replays are historical: no future-skew check against this machine's clock.
    let limits = Limits {
        max_future_skew: chrono::Duration::days(365 * 100),
        ..Limits::default()
    };
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("{file}:{}: cannot read: {e}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let b = tapio_proto::decode_batch(line.as_bytes(), Utc::now(), &limits).map_err(|e| {
            format!(
                "{file}:{}: {}{}",
                i + 1,
                e.message,
                e.field.map(|f| format!(" (field {f})")).unwrap_or_default()
            )
        })?;
        out.push((i + 1, line, b));
    }
    Ok(out)
}

struct Progress {
    on: bool,
    total: usize,
    last: Instant,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            on: std::io::stderr().is_terminal() && total >= 20,
            total,
            last: Instant::now() - Duration::from_secs(1),
        }
    }
    fn tick(&mut self, done: usize) {
        if !self.on || (self.last.elapsed() < Duration::from_millis(100) && done < self.total) {
            return;
        }
        self.last = Instant::now();
        let width = 30;
        let filled = done * width / self.total.max(1);
        eprint!(
            "\r[{}{}] {done}/{} batches",
            "#".repeat(filled),
            " ".repeat(width - filled),
            self.total
        );
        if done >= self.total {
            eprintln!();
        }
        let _ = std::io::stderr().flush();
    }
}

/// Replay to a server, paced by event time (`speed` × real time) or as fast as it answers.
/// Replay to one server or to several replicas (`--server a,b,c`). Like an agent: a batch
/// that gets no answer, a 5xx or a 429 is sent again, unchanged (same agent, sequence and
/// events), to the next address, so a replica dying mid-replay loses and repeats nothing.
pub fn replay_to_server(clients: &[Client], file: &str, speed: Option<f64>) -> Result<(), String> {
    if clients.is_empty() {
        return Err("no server address given".into());
    }
    let mut current = 0usize;
    let mut failovers = 0usize;
    let batches = read_batches(file)?;
    let (mut accepted, mut dup) = (0usize, 0usize);
    let mut progress = Progress::new(batches.len());
    let start = Instant::now();
    let t0 = batches
        .iter()
        .filter_map(|(_, _, b)| b.events.iter().map(|e| e.time).min())
        .min();
    for (n, (line_no, line, b)) in batches.iter().enumerate() {
        if let (Some(speed), Some(t0), Some(t)) = (speed, t0, b.events.iter().map(|e| e.time).min())
        {
            let due = (t - t0).to_std().unwrap_or_default().div_f64(speed);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let mut backoff = Duration::from_millis(50);
        let ack: tapio_proto::IngestAck = loop {
            match clients[current].post_once("/api/v1/evidence", line.as_bytes()) {
                Ok(a) => break a,
                Err(e) if e.is_retryable() => {
                    if clients[current].remaining_time().is_zero() {
                        return Err(format!("{file}:{line_no}: {e} (and --timeout ran out)"));
                    }
                    eprintln!("  {file}:{line_no}: {e}; sending it to the next address");
                    current = (current + 1) % clients.len();
                    failovers += 1;
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(format!("{file}:{line_no}: {e}")),
            }
        };
        accepted += ack.accepted;
        dup += ack.duplicate_events + usize::from(ack.duplicate_batch);
        progress.tick(n + 1);
    }
    let to = clients
        .iter()
        .map(Client::base)
        .collect::<Vec<_>>()
        .join(",");
    println!(
        "replayed {} batches to {to}: {accepted} events stored, {dup} duplicates ignored, {failovers} resends to another address",
        batches.len(),
    );
    Ok(())
}

/// Replay in-process: the engine alone, no server; print the incidents it produces.
pub fn replay_in_process(
    file: &str,
    depth: CorrelationDepth,
    output: Output,
) -> Result<(), String> {
    let batches = read_batches(file)?;
    let mut engine = CorrelationEngine::with_defaults(depth);
    let mut progress = Progress::new(batches.len());
    let mut events = 0usize;
    for (n, (_, _, b)) in batches.iter().enumerate() {
        for ev in &b.events {
            engine.observe(ev, ev.time);
            events += 1;
        }
        progress.tick(n + 1);
    }
    let mut incs = engine.incidents();
    incs.sort_by_key(|i| (i.severity, i.detected_at));
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&incs).unwrap_or_default()
        ),
        Output::Table => {
            println!(
                "{events} events from {} batches at depth {depth}: {} incidents",
                batches.len(),
                incs.len()
            );
            for i in &incs {
                println!();
                print!("{}", why_text(i));
            }
        }
    }
    Ok(())
}

fn scenario_dirs(dir: &Path) -> Result<Vec<PathBuf>, String> {
    if dir.join("expected.json").exists() {
        return Ok(vec![dir.to_owned()]);
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expected.json").exists() && p.join("stream.jsonl").exists())
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(format!(
            "no scenario in {}: a scenario is a directory with stream.jsonl and expected.json (docs/scenarios.md)",
            dir.display()
        ));
    }
    Ok(out)
}

/// Run every scenario under `dir`.
pub fn eval_dir(
    dir: &Path,
    depth: Option<CorrelationDepth>,
) -> Result<Vec<ScenarioResult>, String> {
    let mut results = Vec::new();
    for d in scenario_dirs(dir)? {
        let name = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let exp_path = d.join("expected.json");
        let text = std::fs::read_to_string(&exp_path)
            .map_err(|e| format!("cannot read {}: {e}", exp_path.display()))?;
        let de = &mut serde_json::Deserializer::from_str(&text);
        let expected: Expected = serde_path_to_error::deserialize(de)
            .map_err(|e| format!("{}: at {}: {}", exp_path.display(), e.path(), e.inner()))?;
        let stream = d.join("stream.jsonl");
        let batches = read_batches(&stream.to_string_lossy())?;
        let events: Vec<_> = batches.into_iter().flat_map(|(_, _, b)| b.events).collect();
        results.push(
            eval::run_scenario(&name, &events, &expected, depth)
                .map_err(|e| format!("{}: {e}", exp_path.display()))?,
        );
    }
    Ok(results)
}

pub fn eval_report(results: &[ScenarioResult], output: Output) -> String {
    let summary = eval::summarize(results);
    if output == Output::Json {
        return serde_json::to_string_pretty(&serde_json::json!({
            "summary": summary,
            "scenarios": results,
        }))
        .unwrap_or_default();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<44} {:>4} {:>4} {:>5} {:>5} {:>5} {:>5} {:>5} {:>7}  NOTES",
        "SCENARIO", "EXP", "GOT", "AC@1", "AC@3", "SEV", "SPLIT", "MERGE", "SIGNALS"
    );
    for r in results {
        let n = r.incidents.len().max(1);
        let c = |f: fn(&eval::IncidentScore) -> bool| r.incidents.iter().filter(|s| f(s)).count();
        let ratio = |k: usize| {
            if r.incidents.is_empty() {
                "-".to_owned()
            } else {
                format!("{k}/{n}")
            }
        };
        let mut notes = Vec::new();
        for s in &r.incidents {
            if !s.ac_at_1 || !s.severity_exact {
                notes.push(format!(
                    "want {} {} {} got {} {} {}",
                    s.expected_severity,
                    s.expected_cause,
                    s.expected_entity,
                    s.got_severity
                        .map(|x| x.to_string())
                        .unwrap_or_else(|| "-".into()),
                    if s.confident {
                        s.got_cause.clone().unwrap_or_default()
                    } else {
                        "none".into()
                    },
                    s.got_entity.clone().unwrap_or_default()
                ));
            }
        }
        for sp in &r.spurious {
            notes.push(format!("spurious: {sp}"));
        }
        for p in &r.noise_pages {
            notes.push(format!("PAGE ON NOISE: {p}"));
        }
        let _ = writeln!(
            out,
            "{:<44} {:>4} {:>4} {:>5} {:>5} {:>5} {:>5} {:>5} {:>7}  {}",
            r.name.chars().take(44).collect::<String>(),
            r.expected,
            r.produced,
            ratio(c(|s| s.ac_at_1)),
            ratio(c(|s| s.ac_at_3)),
            ratio(c(|s| s.severity_exact)),
            r.over_split,
            r.over_merge,
            r.signals,
            notes.join("; ")
        );
    }
    let _ = writeln!(
        out,
        "\n{} scenarios, {} expected incidents: AC@1 {:.3} · AC@3 {:.3} · severity exact {:.3} · over-merge {} · over-split {} · spurious {} (pages on noise {}) · missed {} · abstained {} · detection delay p50 {:.1} s p99 {:.1} s · {} raw signals → {} incidents",
        summary.scenarios,
        summary.expected_incidents,
        summary.ac_at_1,
        summary.ac_at_3,
        summary.severity_exact,
        summary.over_merge,
        summary.over_split,
        summary.spurious,
        summary.noise_pages,
        summary.missed,
        summary.abstained,
        summary.detection_delay_p50_s,
        summary.detection_delay_p99_s,
        summary.signals,
        summary.incidents
    );
    out
}

/// The incident as a tired human reads it in ten seconds.
pub fn why_text(i: &Incident) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{}  {}   [{} · {}]", i.severity, i.title, i.status, i.id);
    match i.hypotheses.first() {
        Some(h) if i.root_cause_confident => {
            let _ = writeln!(
                o,
                "Root cause ({:.0} %): {} on {}",
                h.confidence * 100.0,
                h.cause,
                h.entity
            );
            if !h.explanation.is_empty() {
                let _ = writeln!(o, "  {}", h.explanation);
            }
        }
        Some(h) => {
            let _ = writeln!(
                o,
                "Root cause: no confident root cause (best guess {} on {}, {:.0} %)",
                h.cause,
                h.entity,
                h.confidence * 100.0
            );
        }
        None => {
            let _ = writeln!(o, "Root cause: no confident root cause");
        }
    }
    if let Some(h) = i.hypotheses.first() {
        let _ = writeln!(o, "Chain:");
        for step in &h.chain {
            let _ = writeln!(o, "  {step}");
        }
    }
    if !i.changes.is_empty() {
        let _ = writeln!(o, "What changed before:");
        for c in i.changes.iter().take(5) {
            let _ = writeln!(o, "  {}  {}", c.at.format("%H:%M:%S"), c.description);
        }
    }
    let _ = writeln!(o, "Severity {}: {}", i.severity, i.severity_reason);
    if let Some(h) = i.hypotheses.first().filter(|_| i.root_cause_confident)
        && !h.mitigations.is_empty()
    {
        let _ = writeln!(o, "Do now:");
        for m in &h.mitigations {
            let _ = writeln!(o, "  {m}");
        }
    }
    if i.hypotheses.len() > 1 {
        let others: Vec<String> = i.hypotheses[1..]
            .iter()
            .take(3)
            .map(|h| {
                format!(
                    "{} on {} ({:.0} %)",
                    h.cause,
                    h.entity,
                    h.confidence * 100.0
                )
            })
            .collect();
        let _ = writeln!(o, "Other hypotheses: {}", others.join("; "));
    }
    let _ = writeln!(
        o,
        "Evidence: {} facts, first {} — tapio incidents show {}",
        i.evidence_count,
        i.started_at.format("%Y-%m-%d %H:%M:%S"),
        i.id
    );
    o
}

/// `tapio why ID` or `tapio why pod/NAME -n NS` against a server.
pub fn why(
    client: &Client,
    target: &str,
    namespace: Option<&str>,
    output: Output,
) -> Result<u8, crate::client::ClientError> {
    let incidents: Vec<Incident> = if let Some((kind, name)) = target.split_once('/') {
        let list: serde_json::Value = client.get("/api/v1/incidents?limit=1000")?;
        let all: Vec<Incident> =
            serde_json::from_value(list["incidents"].clone()).unwrap_or_default();
        let kind_l = kind.to_ascii_lowercase();
        all.into_iter()
            .filter(|i| {
                namespace.is_none_or(|ns| {
                    i.namespace.as_deref() == Some(ns)
                        || i.affected.iter().any(|a| a.contains(&format!("/{ns}/")))
                })
            })
            .filter(|i| {
                i.affected.iter().any(|a| {
                    let parts: Vec<&str> = a.split('/').collect();
                    let (ak, an) = (
                        parts.first().copied().unwrap_or(""),
                        parts.last().copied().unwrap_or(""),
                    );
                    (ak.eq_ignore_ascii_case(&kind_l) && an == name)
                        || (kind_l == "pod"
                            && matches!(
                                ak,
                                "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job"
                            )
                            && name.starts_with(&format!("{an}-")))
                })
            })
            .collect()
    } else {
        vec![client.get(&format!("/api/v1/incidents/{target}"))?]
    };
    if incidents.is_empty() {
        println!(
            "no open incident involves {target}{}",
            namespace
                .map(|n| format!(" in namespace {n}"))
                .unwrap_or_default()
        );
        return Ok(0);
    }
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&incidents).unwrap_or_default()
        ),
        Output::Table => {
            for (n, i) in incidents.iter().enumerate() {
                if n > 0 {
                    println!();
                }
                print!("{}", why_text(i));
            }
        }
    }
    Ok(0)
}
