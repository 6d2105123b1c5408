//! Human output. Plain text, no colour, aligned columns: readable at 3 a.m. and in a pager.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use tapio_core::Incident;
use tapio_proto::text::cut_chars;
use tapio_proto::{AgentStatus, HealthReport, HealthStatus, IncidentSummary};

pub fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds().max(0);
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86_400 => format!("{}h{}m ago", s / 3600, (s % 3600) / 60),
        _ => format!("{}d ago", s / 86_400),
    }
}

fn status_word(s: HealthStatus) -> &'static str {
    match s {
        HealthStatus::Healthy => "healthy",
        HealthStatus::Degraded => "DEGRADED",
        HealthStatus::Unhealthy => "UNHEALTHY",
    }
}

pub fn incident_table(incs: &[Incident], now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<4} {:<26} {:<13} {:<52} {:<14} STARTED",
        "SEV", "ID", "STATUS", "TITLE", "NAMESPACE"
    );
    for i in incs {
        let _ = writeln!(
            out,
            "{:<4} {:<26} {:<13} {:<52} {:<14} {}",
            i.severity.as_str(),
            i.id.to_string(),
            i.status.as_str(),
            cut_chars(&i.title, 52),
            cut_chars(i.namespace.as_deref().unwrap_or("-"), 14),
            ago(i.started_at, now)
        );
    }
    out
}

pub fn incident_detail(i: &Incident, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}  {}  {}", i.severity, i.status, i.title);
    let _ = writeln!(out, "  id           {}", i.id);
    let _ = writeln!(
        out,
        "  severity     {} {}: {}",
        i.severity,
        i.severity.label(),
        i.severity_reason
    );
    let _ = writeln!(
        out,
        "  started      {} ({})",
        i.started_at.to_rfc3339(),
        ago(i.started_at, now)
    );
    let _ = writeln!(
        out,
        "  detected     {} ({})",
        i.detected_at.to_rfc3339(),
        ago(i.detected_at, now)
    );
    if let Some(t) = i.acknowledged_at {
        let _ = writeln!(out, "  acknowledged {}", t.to_rfc3339());
    }
    if let Some(t) = i.resolved_at {
        let _ = writeln!(out, "  resolved     {}", t.to_rfc3339());
    }
    let _ = writeln!(
        out,
        "  identity     {}{}/{} problem={}",
        i.identity
            .namespace
            .as_deref()
            .map(|n| format!("{n}/"))
            .unwrap_or_default(),
        i.identity.kind,
        i.identity.name,
        i.identity.problem
    );
    let _ = writeln!(out, "  affected     {}", i.affected.join(", "));
    if i.hypotheses.is_empty() {
        let _ = writeln!(out, "  root cause   (no hypothesis yet)");
    }
    for h in &i.hypotheses {
        let _ = writeln!(
            out,
            "  hypothesis   {} on {} ({:.0}%)",
            h.cause,
            h.entity,
            h.confidence * 100.0
        );
    }
    let _ = writeln!(out, "\nTimeline");
    for e in &i.timeline {
        let rep = if e.count > 1 {
            format!(" (x{})", e.count)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {}  {:<16} {}{rep}",
            e.at.format("%Y-%m-%d %H:%M:%S"),
            format!("{:?}", e.kind).to_lowercase(),
            e.message
        );
    }
    let _ = writeln!(
        out,
        "\nEvidence ({} in all, first {} listed)",
        i.evidence_count,
        i.evidence.len()
    );
    for r in i.evidence.iter().take(20) {
        let _ = writeln!(
            out,
            "  {}  {}  {}  {}",
            r.time.format("%H:%M:%S%.3f"),
            r.id,
            r.kind,
            r.entity
        );
    }
    out
}

#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename the list
pub fn check(
    server: &str,
    h: &HealthReport,
    sum: &IncidentSummary,
    incs: &[Incident],
    agents: Option<&[AgentStatus]>,
    all: bool,
    now: DateTime<Utc>,
) -> String {
    let mut out = String::new();
    if h.version.is_empty() {
        // The public form of /health (authentication on, no viewer token): statuses only.
        let _ = writeln!(
            out,
            "Tapio  {server}  {}  (status only: details need a viewer token, --token / TAPIO_TOKEN)",
            status_word(h.status)
        );
    } else {
        let _ = writeln!(
            out,
            "Tapio  {server}  {}  (v{}, up {}s, config generation {})",
            status_word(h.status),
            h.version,
            h.uptime_seconds,
            h.config_generation
        );
    }
    for (name, c) in &h.components {
        let _ = writeln!(
            out,
            "  {:<11} {:<10} {}",
            name,
            status_word(c.status),
            c.message
        );
        if all && !c.details.is_null() {
            let _ = writeln!(out, "              {}", c.details);
        }
    }
    let n = |s: &str| sum.active.get(s).copied().unwrap_or(0);
    let _ = writeln!(
        out,
        "\nOpen incidents: {} P1 · {} P2 · {} P3 · {} P4",
        n("P1"),
        n("P2"),
        n("P3"),
        n("P4")
    );
    if !incs.is_empty() {
        out.push_str(&incident_table(incs, now));
        if !all && n("P1") + n("P2") > incs.len() as u64 {
            let _ = writeln!(out, "  … more: tapio incidents list --severity P1,P2");
        }
    }
    if let Some(agents) = agents {
        let _ = writeln!(out, "\nAgents: {}", agents.len());
        if !agents.is_empty() {
            let _ = writeln!(
                out,
                "{:<32} {:<20} {:>10} {:>10} {:>8}  LAST SEEN",
                "AGENT", "NODE", "LAST SEQ", "EVENTS", "MISSING"
            );
        }
        for a in agents {
            let _ = writeln!(
                out,
                "{:<32} {:<20} {:>10} {:>10} {:>8}  {}",
                cut_chars(&a.agent_id, 32),
                cut_chars(&a.node, 20),
                a.last_seq,
                a.events,
                a.missing_batches,
                ago(a.last_seen, now)
            );
            if let Some(hb) = &a.heartbeat {
                let progs = &hb.kernel.programs;
                let attached = progs
                    .iter()
                    .filter(|p| p.state == tapio_proto::ProgramState::Attached)
                    .count();
                let dropped: u64 = hb.dropped.values().sum();
                let _ = writeln!(
                    out,
                    "  kernel {} · BTF {} · BPF {}/{} programs attached · spool {} pending · {} dropped · {} lost in kernel · reported {}",
                    hb.kernel.kernel_release,
                    if hb.kernel.btf_present { "yes" } else { "no" },
                    attached,
                    progs.len(),
                    hb.spool_pending_events,
                    dropped,
                    hb.kernel_drops,
                    ago(hb.sent_at, now)
                );
                for p in progs
                    .iter()
                    .filter(|p| p.state != tapio_proto::ProgramState::Attached)
                {
                    let state = serde_json::to_value(&p.state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "  ! {}/{} ({}): {}{}",
                        p.observer,
                        p.program,
                        p.tracepoint,
                        state.replace('_', " "),
                        if p.detail.is_empty() {
                            String::new()
                        } else {
                            format!(" — {}", cut_chars(&p.detail, 120))
                        }
                    );
                }
                for src in hb.sources.iter().filter(|s| !s.available) {
                    let _ = writeln!(
                        out,
                        "  ! {} unavailable: {}",
                        src.name,
                        cut_chars(&src.detail, 120)
                    );
                }
                if !hb.last_error.is_empty() {
                    let _ = writeln!(
                        out,
                        "  ! last delivery error: {}",
                        cut_chars(&hb.last_error, 120)
                    );
                }
            }
        }
    }
    out
}

/// `tapio check --all`: replicas, partition owners and bus lag.
pub fn cluster(v: &serde_json::Value, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    if v["mode"] != "scale-out" {
        let _ = writeln!(
            out,
            "\nCluster  single node (embedded store; no replicas, no bus)"
        );
        return out;
    }
    let parts = v["partition_owners"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let unowned = parts.iter().filter(|p| p["owned"] != true).count();
    let _ = writeln!(
        out,
        "\nCluster  {} partitions, leader {}, bus lag {} messages{}",
        v["partitions"],
        v["leader"].as_str().unwrap_or("NONE"),
        v["bus_pending_total"]
            .as_u64()
            .map_or("?".to_owned(), |n| n.to_string()),
        if unowned > 0 {
            format!("  {unowned} PARTITIONS WITHOUT OWNER")
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "  {:<24} {:<8} {:>10} {:>6}  address",
        "replica", "state", "heartbeat", "parts"
    );
    for r in v["replicas"].as_array().cloned().unwrap_or_default() {
        let id = r["id"].as_str().unwrap_or("?");
        let owned = parts.iter().filter(|p| p["owner"] == id).count();
        let age = r["heartbeat_at"]
            .as_str()
            .and_then(|t| t.parse::<DateTime<Utc>>().ok())
            .map_or("?".to_owned(), |t| {
                format!("{:.1}s ago", (now - t).num_milliseconds() as f64 / 1000.0)
            });
        let state = if r["stopping"] == true {
            "stopping"
        } else if r["live"] == true {
            "live"
        } else {
            "GONE"
        };
        let _ = writeln!(
            out,
            "  {:<24} {:<8} {:>10} {:>6}  {}",
            id,
            state,
            age,
            owned,
            r["address"].as_str().unwrap_or("")
        );
    }
    let _ = writeln!(
        out,
        "  {:<9} {:<24} {:>6} {:>9} {:>9}",
        "partition", "owner", "epoch", "bus lag", "corr lag"
    );
    for p in parts {
        let _ = writeln!(
            out,
            "  {:<9} {:<24} {:>6} {:>9} {:>9}",
            p["partition"].to_string(),
            p["owner"].as_str().unwrap_or("NONE"),
            p["epoch"].to_string(),
            p["bus_pending"]
                .as_u64()
                .map_or("?".to_owned(), |n| n.to_string()),
            p["correlator_lag"]
                .as_u64()
                .map_or("-".to_owned(), |l| l.to_string())
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unknown bus lag (NATS did not answer) must never read as an empty bus.
    #[test]
    fn cluster_shows_an_unknown_bus_lag_as_unknown_not_zero() {
        let now = Utc::now();
        let view = |p1: serde_json::Value, total: serde_json::Value| {
            serde_json::json!({
                "mode": "scale-out", "replica": "r1", "partitions": 2, "leader": "r1",
                "bus_pending_total": total,
                "replicas": [{"id": "r1", "address": "http://a", "live": true, "stopping": false,
                    "heartbeat_at": now.to_rfc3339()}],
                "partition_owners": [
                    {"partition": 0, "owner": "r1", "epoch": 1, "owned": true, "bus_pending": 7, "correlator_lag": 3},
                    {"partition": 1, "owner": "r1", "epoch": 1, "owned": true, "bus_pending": p1, "correlator_lag": null}
                ]
            })
        };
        let unknown = cluster(&view(serde_json::Value::Null, serde_json::Value::Null), now);
        assert!(unknown.contains("bus lag ? messages"), "{unknown}");
        let row = unknown
            .lines()
            .find(|l| l.trim_start().starts_with("1 "))
            .expect("partition 1 row");
        assert!(row.contains(" ?"), "{row}");
        assert!(!row.contains(" 0 "), "{row}");
        let known = cluster(&view(serde_json::json!(5), serde_json::json!(12)), now);
        assert!(known.contains("bus lag 12 messages"), "{known}");
    }
}
