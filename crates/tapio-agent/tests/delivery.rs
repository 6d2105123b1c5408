//! Shipping without loss: the real agent and the real server, the server killed for a
//! minute, the agent killed with a full spool, and a corrupted spool.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Agent, Server, attr, free_port, refuse_ports, require_root, wait_until};
use serde_json::json;

fn config() -> serde_json::Value {
    json!({"thresholds": {"refused_min": 1, "stats_interval_seconds": 1},
        "node": {"kmsg_enabled": false, "psi_enabled": false, "fs_enabled": false}})
}

/// How often each of `ports` arrived at the server as connection_refused.
fn refused_counts(server: &Server, ports: &[u16]) -> HashMap<u16, usize> {
    let mut counts: HashMap<u16, usize> = ports.iter().map(|p| (*p, 0)).collect();
    let me = std::process::id() as i64;
    for e in server.evidence() {
        // The agent sees every process on the machine: count this test's connects only.
        if e["type"] == "kernel.network.connection_refused"
            && attr(&e, "pid") == me
            && let Some(p) = attr(&e, "dst_port").as_u64()
            && let Some(c) = counts.get_mut(&(p as u16))
        {
            *c += 1;
        }
    }
    counts
}

fn assert_exactly_once(server: &Server, ports: &[u16]) {
    let counts = wait_until(
        "every refused port at the server",
        Duration::from_secs(90),
        || {
            let c = refused_counts(server, ports);
            c.values().all(|n| *n >= 1).then_some(c)
        },
    );
    let dup: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dup.is_empty(), "ports not delivered exactly once: {dup:?}");
}

fn agent_args(server: &str, id: &str) -> Vec<String> {
    vec![
        "--sink".into(),
        "server".into(),
        "--server".into(),
        server.into(),
        "--observers".into(),
        "network".into(),
        "--agent-id".into(),
        id.into(),
        "--heartbeat-seconds".into(),
        "1".into(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn server_down_for_a_minute_loses_nothing_and_duplicates_nothing() {
    if !require_root() {
        return;
    }
    let outage: u64 = std::env::var("TAPIO_OUTAGE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start_in(&dir.path().join("server"), free_port(), &[]);
    let id = format!("outage-{}", std::process::id());
    let agent = Agent::start(
        &dir.path().join("agent"),
        config(),
        &strs(&agent_args(&server.url(), &id)),
    );
    let mut ports = refuse_ports(10);
    wait_until(
        "first evidence at the server",
        Duration::from_secs(20),
        || {
            refused_counts(&server, &ports)
                .values()
                .all(|n| *n >= 1)
                .then_some(())
        },
    );

    server.kill9();
    let until = std::time::Instant::now() + Duration::from_secs(outage);
    while std::time::Instant::now() < until {
        ports.extend(refuse_ports(5));
        std::thread::sleep(Duration::from_millis(500));
    }
    let pending = agent.health()["spool"]["pending_events"]
        .as_u64()
        .unwrap_or(0);
    assert!(pending > 0, "evidence waits in the spool during the outage");
    server.spawn();
    ports.extend(refuse_ports(10));
    assert_exactly_once(&server, &ports);

    // Everything the agent produced is at the server, once: its evidence counter, its
    // spool and the server's per-agent count agree once the spool is empty.
    wait_until("agent and server agree", Duration::from_secs(60), || {
        let produced = agent.metric("tapio_agent_evidence_total");
        let shipped = agent.metric("tapio_agent_shipped_events_total");
        let stored = server.agent_view(&id)?["events"].as_f64()?;
        let pending = agent.health()["spool"]["pending_events"].as_u64()?;
        (pending == 0 && produced == shipped && shipped == stored).then_some(())
    });
    let a = server.agent_view(&id).expect("agent listed");
    assert_eq!(a["missing_batches"], 0, "{a}");
    assert_eq!(agent.metric("tapio_agent_dropped_events_total"), 0.0);
    // The heartbeat made it too, with the kernel's capabilities.
    assert_eq!(a["heartbeat"]["kernel"]["bpf_allowed"], true, "{a}");
}

#[test]
fn agent_killed_with_a_full_spool_delivers_it_after_restart() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let id = format!("restart-{}", std::process::id());
    let url = format!("http://127.0.0.1:{port}");
    let mut agent = Agent::start(
        &dir.path().join("agent"),
        config(),
        &strs(&agent_args(&url, &id)),
    );
    let mut ports = refuse_ports(20);
    // Everything produced so far is in the spool (fsynced) before the kill.
    wait_until("evidence spooled", Duration::from_secs(20), || {
        let m = agent.metrics();
        let sum = |p: &str| -> f64 {
            m.lines()
                .filter(|l| l.starts_with(p))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        let produced = sum("tapio_agent_evidence_total");
        (produced >= 20.0 && sum("tapio_agent_spooled_events_total") >= produced).then_some(())
    });
    agent.kill9();
    agent.spawn();
    ports.extend(refuse_ports(5));
    let server = Server::start_in(&dir.path().join("server"), port, &[]);
    assert_exactly_once(&server, &ports);
}

#[test]
fn a_corrupted_spool_is_skipped_and_counted_not_a_crash_loop() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let id = format!("corrupt-{}", std::process::id());
    let url = format!("http://127.0.0.1:{port}");
    let mut agent = Agent::start(
        &dir.path().join("agent"),
        config(),
        &strs(&agent_args(&url, &id)),
    );
    refuse_ports(30);
    wait_until("evidence spooled", Duration::from_secs(20), || {
        (agent.metric("tapio_agent_spooled_events_total") >= 30.0).then_some(())
    });
    agent.stop();
    // Overwrite bytes in the middle of every segment.
    let spool = dir.path().join("agent/spool");
    let mut damaged = 0;
    for entry in std::fs::read_dir(&spool).expect("spool dir") {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "log") {
            let mut bytes = std::fs::read(&p).expect("segment");
            if bytes.len() > 200 {
                let mid = bytes.len() / 2;
                for b in &mut bytes[mid..mid + 64] {
                    *b = 0xAB;
                }
                std::fs::write(&p, bytes).expect("write segment");
                damaged += 1;
            }
        }
    }
    assert!(damaged > 0, "the spool had a segment to damage");
    agent.spawn();
    assert!(
        agent.metric("tapio_agent_spool_corrupt_records_total") >= 1.0,
        "corrupt records are counted"
    );
    let after = refuse_ports(5);
    let server = Server::start_in(&dir.path().join("server"), port, &[]);
    // What came after the damage arrives exactly once; the damage cost only itself.
    assert_exactly_once(&server, &after);
    assert!(agent.health()["status"] != "unhealthy");
}
