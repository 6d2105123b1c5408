//! Live detection latency, end to end on this host with the real agent and server: a
//! service on a loopback port stops (its port now refuses) while a client keeps
//! connecting; measured from the client's first refused connect to the incident being
//! visible through the API.
//!
//! `TAPIO_LATENCY_TRIALS` sets the number of trials (default 3 in the test suite;
//! `bench/detect-latency.sh` runs 20 and prints p50 / p99). Nothing here asserts a time:
//! the test asserts that every trial is detected, and prints the figures.

mod common;

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{Agent, Server, free_port, get_json, require_root};
use serde_json::json;

#[test]
fn a_stopped_service_becomes_an_incident_and_the_latency_is_reported() {
    if !require_root() {
        return;
    }
    let trials: usize = std::env::var("TAPIO_LATENCY_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_in(&dir.path().join("server"), free_port(), &[]);
    let _agent = Agent::start(
        &dir.path().join("agent"),
        // Default thresholds: three refusals within 10 s make connection_refused.
        json!({"node": {"kmsg_enabled": false}}),
        &[
            "--sink",
            "server",
            "--server",
            &server.url(),
            "--observers",
            "network",
            "--agent-id",
            "latency-agent",
        ],
    );
    let mut latencies = Vec::new();
    for trial in 0..trials {
        // The service runs and answers...
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        // ...then stops.
        drop(listener);
        let needle = format!("Destination/127.0.0.1:{port}");
        let mut first_refused: Option<Instant> = None;
        let deadline = Instant::now() + Duration::from_secs(15);
        let seen = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    first_refused.get_or_insert_with(Instant::now);
                }
                _ => {}
            }
            let found = get_json(&format!("{}/api/v1/incidents?limit=1000", server.url()))
                .and_then(|v| v["incidents"].as_array().cloned())
                .is_some_and(|incs| {
                    incs.iter().any(|i| {
                        i["affected"]
                            .as_array()
                            .is_some_and(|a| a.iter().any(|x| x == needle.as_str()))
                    })
                });
            if found {
                break Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "trial {trial}: no incident for the stopped service on port {port} within 15 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let ms = seen
            .duration_since(first_refused.expect("at least one refused connect"))
            .as_secs_f64()
            * 1000.0;
        latencies.push(ms);
    }
    latencies.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "detection latency over {} trials (first refused connect → incident in the API): \
         p50 {:.0} ms, p99 {:.0} ms, min {:.0} ms, max {:.0} ms; all: {:?}",
        latencies.len(),
        pct(0.5),
        pct(0.99),
        latencies[0],
        latencies[latencies.len() - 1],
        latencies
            .iter()
            .map(|l| l.round() as i64)
            .collect::<Vec<_>>()
    );
}
