//! Admission control from the outside: over its memory limit the server refuses ordinary
//! reads and ingest with 503, a reason and Retry-After, but still takes people's actions
//! and P1 evidence, keeps answering probes, and shows and counts what it shed.

use serde_json::json;
use tapio_testkit::Server;

fn batch(seq: u64, events: Vec<serde_json::Value>) -> Vec<u8> {
    json!({
        "version": 1,
        "agent_id": "tapio-agent-overload",
        "node": "worker-1",
        "seq": seq,
        "events": events,
    })
    .to_string()
    .into_bytes()
}

fn event(
    kind: &str,
    severity: &str,
    workload: &str,
    attrs: serde_json::Value,
) -> serde_json::Value {
    json!({
        "id": ulid::Ulid::new().to_string(),
        "time": chrono::Utc::now().to_rfc3339(),
        "type": kind,
        "severity": severity,
        "entity": {"namespace": "shop", "workload": {"kind": "Deployment", "name": workload}},
        "attributes": attrs,
    })
}

fn p1() -> serde_json::Value {
    event(
        "kubernetes.workload.unavailable",
        "critical",
        "checkout",
        json!({"desired_replicas": 3, "available_replicas": 0}),
    )
}

fn debug_fact() -> serde_json::Value {
    event(
        "kernel.process.exit",
        "debug",
        "batch",
        json!({"exit_code": 0}),
    )
}

fn retry_after(s: &Server, method: &str, path: &str) -> (u16, Option<String>, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}{path}", s.url());
    let mut r = match method {
        "GET" => agent.get(&url).call(),
        _ => agent
            .post(&url)
            .header("content-type", "application/json")
            .send(&batch(99, vec![debug_fact()])[..]),
    }
    .expect("request");
    let ra = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        r.status().as_u16(),
        ra,
        r.body_mut().read_to_string().unwrap_or_default(),
    )
}

#[test]
fn over_its_memory_limit_the_server_keeps_p1_evidence_and_people_and_sheds_the_rest() {
    // Any real process is over 1 MiB resident: the limit is exceeded from the start.
    let s = Server::start(&["--memory-limit", "1Mi", "--kube", "off"]);

    // Probes answer.
    assert_eq!(s.get("/ready").expect("ready").0, 200);

    // Ordinary reads and ingest: 503 with the reason and when to come back.
    let (code, ra, body) = retry_after(&s, "GET", "/api/v1/incidents");
    assert_eq!(code, 503, "{body}");
    assert_eq!(ra.as_deref(), Some("5"));
    assert!(
        body.contains("\"overloaded\"") && body.contains("resident memory"),
        "{body}"
    );
    let (code, ra, body) = retry_after(&s, "POST", "/api/v1/evidence");
    assert_eq!(code, 503, "{body}");
    assert_eq!(ra.as_deref(), Some("1"), "agents come back soon");
    let (code, _, _) = retry_after(&s, "GET", "/api/v1/evidence");
    assert_eq!(code, 503, "debug reads are shed too");

    // A batch marked critical (it holds a P1-class fact) gets in; the debug fact riding
    // with it is shed (shedding turns itself on at this pressure), the P1 fact is kept.
    let (code, ack) = s.post(
        "/api/v1/evidence",
        &batch(1, vec![p1(), debug_fact()]),
        &[
            ("content-type", "application/json"),
            ("x-tapio-priority", "critical"),
        ],
    );
    assert_eq!(code, 200, "{ack}");
    assert_eq!(ack["accepted"], 1, "{ack}");
    assert_eq!(ack["shed"], 1, "{ack}");

    // A person declaring an incident during the overload is never turned away.
    let (code, inc) = s.post(
        "/api/v1/incidents",
        json!({"severity": "P2", "title": "checkout slow for EU users", "by": "alice"})
            .to_string()
            .as_bytes(),
        &[("content-type", "application/json")],
    );
    assert!(code == 200 || code == 201, "{code} {inc}");

    // /health shows the shedding state and what was refused; /metrics counts it.
    let h = s.get_json("/health");
    let load = &h["components"]["load"];
    assert_eq!(load["status"], "degraded", "{h}");
    assert!(
        load["message"].as_str().unwrap_or("").contains("shedding"),
        "{load}"
    );
    assert_eq!(load["details"]["shedding_active"], true, "{load}");
    assert!(
        load["details"]["refused"]["read"].as_u64() >= Some(1),
        "{load}"
    );
    assert!(
        load["details"]["refused"]["ingest"].as_u64() >= Some(1),
        "{load}"
    );
    assert!(
        load["details"]["refused"]["debug"].as_u64() >= Some(1),
        "{load}"
    );
    assert_eq!(load["details"]["refused"]["critical"], 0, "{load}");
    assert_eq!(load["details"]["memory_limit_bytes"], 1 << 20, "{load}");
    assert!(s.metric("tapio_requests_shed_total{class=\"read\",reason=\"memory\"}") >= 1.0);
    assert!(s.metric("tapio_requests_shed_total{class=\"ingest\",reason=\"memory\"}") >= 1.0);
    assert!(s.metric("tapio_events_dropped_total{reason=\"load_shed\"}") >= 1.0);
}

#[test]
fn a_bad_memory_limit_or_concurrency_is_refused_at_start_naming_the_value() {
    for (args, want) in [
        (&["--memory-limit", "lots"][..], "\"lots\""),
        (&["--max-inflight", "0"][..], "--max-inflight 0"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tapio-server"))
            .args(["--listen", "127.0.0.1:0", "--kube", "off", "--data-dir"])
            .arg(dir.path().join("db"))
            .arg("--config-dir")
            .arg(dir.path())
            .args(args)
            .output()
            .expect("run tapio-server");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
