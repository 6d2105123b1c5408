//! The real server binary and CLI, end to end.

use std::io::Write;
use std::time::{Duration, Instant};

use tapio_testkit::{Server, example, oom_batch};

fn check_json(s: &Server, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec!["check", "-o", "json"];
    args.extend_from_slice(extra);
    let out = s.cli(&args);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check -o json is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

#[test]
fn example_batch_opens_an_incident_seen_by_api_and_check() {
    let s = Server::start(&[]);
    let (code, _) = check_json(&s, &[]);
    assert_eq!(code, 0, "empty healthy server: exit 0");

    let (status, ack) = s.post("/api/v1/evidence", &example("evidence-batch.json"), &[]);
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["accepted"], 3);
    s.wait_for(5, "the OOM incident", |s| s.incidents("").len() == 1);
    let inc = &s.incidents("")[0];
    assert_eq!(inc["severity"], "P3");
    assert_eq!(inc["status"], "open");
    assert_eq!(
        inc["evidence_count"], 2,
        "kernel and kubernetes OOM facts join one incident"
    );
    assert!(
        inc["severity_reason"]
            .as_str()
            .unwrap_or("")
            .contains("runbook P3")
    );
    let id = inc["id"].as_str().expect("id");
    let one = s.get_json(&format!("/api/v1/incidents/{id}"));
    assert_eq!(one["title"], inc["title"]);

    let (code, v) = check_json(&s, &[]);
    assert_eq!(code, 0, "a P3 alone does not fail check: {v}");
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["active_incidents"]["P3"], 1);

    // A P1 from another tool (the events API) makes check exit 1.
    let (status, _) = s.post(
        "/api/v1/events",
        br#"{"type":"kubernetes.workload.unavailable","severity":"critical","producer":"ci",
             "entity":{"namespace":"shop","workload":{"kind":"Deployment","name":"payments"}},
             "attributes":{"desired_replicas":3,"available_replicas":0}}"#,
        &[],
    );
    assert_eq!(status, 202);
    s.wait_for(5, "the P1 incident", |s| {
        !s.incidents("?severity=P1").is_empty()
    });
    let (code, v) = check_json(&s, &["--all"]);
    assert_eq!(code, 1, "open P1: exit 1: {v}");
    assert_eq!(v["active_incidents"]["P1"], 1);
    assert_eq!(v["agents"][0]["agent_id"], "tapio-agent-worker-1");
    // The example's OOM evidence is from 09:30; the P1 fact is from now. Event time is the
    // engine's clock, so the OOM incident has been quiet for longer than the quiet period
    // and is resolved: only the P1 is still open.
    assert_eq!(v["incidents"].as_array().map(Vec::len), Some(1), "{v}");

    let table = s.cli(&["check"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("Open incidents: 1 P1"), "{text}");
    assert!(text.contains("Deployment/shop/payments"), "{text}");
}

#[test]
fn replay_file_gives_one_incident_per_problem() {
    let s = Server::start(&[]);
    let path = tapio_testkit::repo_root().join("examples/replay.jsonl");
    let out = s.cli(&["replay", path.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.wait_for(5, "replay incidents", |s| s.incidents("").len() == 2);
    let incs = s.incidents("");
    let titles: Vec<&str> = incs.iter().filter_map(|i| i["title"].as_str()).collect();
    assert!(
        titles.contains(&"Bad rollout on Deployment/shop/checkout"),
        "{titles:?}"
    );
    assert!(
        titles.iter().any(|t| t.contains("10.96.14.7:8080")),
        "{titles:?}"
    );
    // The crash-looping rollout: partial functionality unavailable (P2). The refused
    // connects: 87 % failing in a single 10 s interval, not yet "sustained" (P3 until a
    // second interval confirms it).
    let sev = |t: &str| {
        incs.iter()
            .find(|i| i["title"].as_str().is_some_and(|x| x.contains(t)))
            .map(|i| i["severity"].clone())
    };
    assert_eq!(sev("checkout"), Some("P2".into()), "{incs:?}");
    assert_eq!(sev("10.96.14.7:8080"), Some("P3".into()), "{incs:?}");
    // Replaying again stores nothing new and opens nothing new.
    let again = s.cli(&["replay", path.to_str().expect("path")]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 events stored"));
    assert_eq!(s.incidents("").len(), 2);
}

#[test]
fn retried_batch_is_not_double_counted() {
    let s = Server::start(&[]);
    let body = example("evidence-batch.json");
    let (_, first) = s.post("/api/v1/evidence", &body, &[]);
    let (status, retry) = s.post("/api/v1/evidence", &body, &[]);
    assert_eq!(
        status, 200,
        "a retry is acknowledged so the agent stops resending"
    );
    assert_eq!(first["duplicate_batch"], false);
    assert_eq!(retry["duplicate_batch"], true);
    assert_eq!(retry["accepted"], 0);
    s.wait_for(5, "processing", |s| {
        s.metric("tapio_events_processed_total") >= 3.0
    });
    assert_eq!(s.metric("tapio_events_ingested_total"), 3.0);
    assert_eq!(s.metric("tapio_batches_duplicate_total"), 1.0);
    let agents = s.get_json("/api/v1/agents");
    assert_eq!(agents["agents"][0]["events"], 3);
    // The processed counter moves before the chunk's incidents are stored: wait for them.
    s.wait_for(5, "the incident", |s| !s.incidents("").is_empty());
    assert_eq!(s.incidents("")[0]["evidence_count"], 2);
}

#[test]
fn sequence_gaps_are_reported() {
    let s = Server::start(&[]);
    s.post(
        "/api/v1/evidence",
        oom_batch("a1", 1, "w", 1).as_bytes(),
        &[],
    );
    s.post(
        "/api/v1/evidence",
        oom_batch("a1", 4, "w", 1).as_bytes(),
        &[],
    );
    assert_eq!(s.metric("tapio_agent_sequence_gaps_total"), 2.0);
    let h = s.get_json("/health");
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(
        h["components"]["ingest"]["details"]["sequence_gaps"][0]["missing_batches"],
        2
    );
    let (code, _) = check_json(&s, &[]);
    assert_eq!(code, 2, "missing evidence degrades Tapio: exit 2");
}

#[test]
fn kill_9_after_acknowledgement_loses_nothing() {
    let mut s = Server::start(&[]);
    let batches = 40;
    for seq in 1..=batches {
        let (status, ack) = s.post(
            "/api/v1/evidence",
            oom_batch("agent-k", seq, &format!("w{seq}"), 50).as_bytes(),
            &[],
        );
        assert_eq!(status, 200, "{ack}");
        assert_eq!(ack["accepted"], 50);
    }
    // Kill at once: the last acknowledgement was a moment ago.
    s.kill9();
    s.spawn();
    let agents = s.get_json("/api/v1/agents");
    assert_eq!(agents["agents"][0]["events"], 40 * 50);
    assert_eq!(agents["agents"][0]["last_seq"], 40);
    // Every acknowledged fact is correlated after the restart: one incident per workload.
    s.wait_for(10, "40 incidents after restart", |s| {
        s.incidents("?limit=1000").len() == 40
    });
    let total: u64 = s
        .incidents("?limit=1000")
        .iter()
        .filter_map(|i| i["evidence_count"].as_u64())
        .sum();
    assert_eq!(total, 40 * 50);
}

#[test]
fn config_changes_apply_live_and_bad_values_are_refused() {
    let s = Server::start(&[]);
    s.set_config("correlation-depth", "standard");
    s.set_config("log-level", "INFO");
    s.wait_for(5, "initial config", |s| {
        s.get_json("/api/v1/config")["correlation_depth"] == "standard"
    });
    let g0 = s.get_json("/api/v1/config")["generation"]
        .as_u64()
        .expect("gen");

    let t = Instant::now();
    s.set_config("correlation-depth", "deep");
    s.set_config("log-level", "DEBUG");
    s.wait_for(5, "depth=deep and DEBUG", |s| {
        let c = s.get_json("/api/v1/config");
        c["correlation_depth"] == "deep" && c["log_level"] == "DEBUG"
    });
    assert!(t.elapsed() < Duration::from_secs(5));
    let c = s.get_json("/api/v1/config");
    assert!(c["generation"].as_u64().expect("gen") > g0);
    assert_eq!(s.get_json("/health")["config_generation"], c["generation"]);
    assert_eq!(
        s.get_json("/health")["components"]["correlator"]["details"]["depth"],
        "deep"
    );
    // DEBUG is in force: a refused body is now logged at DEBUG.
    s.post("/api/v1/evidence", b"{not json", &[]);
    s.wait_for(5, "a DEBUG log line", |s| s.logs().contains("level=DEBUG"));

    // An invalid value is refused, named in the log, and the previous value stays.
    s.set_config("correlation-depth", "extreme");
    s.wait_for(5, "the refusal", |s| {
        s.logs().contains("level=ERROR") && s.logs().contains("extreme")
    });
    let after = s.get_json("/api/v1/config");
    assert_eq!(after["correlation_depth"], "deep");
    assert_eq!(after["generation"], c["generation"]);
    assert_eq!(after["rejected"]["correlation-depth"], "extreme");
    let h = s.get_json("/health");
    assert_eq!(h["components"]["config"]["status"], "degraded");
    assert!(s.metric("tapio_config_rejections_total") >= 1.0);
}

#[test]
fn load_shedding_drops_low_priority_never_p1() {
    let s = Server::start(&[]);
    s.set_config("load-shedding-enabled", "true");
    s.wait_for(5, "shedding on", |s| {
        s.get_json("/api/v1/config")["load_shedding_enabled"] == true
    });
    let now = chrono::Utc::now().to_rfc3339();
    let body = format!(
        r#"{{"version":1,"agent_id":"a","node":"n","seq":1,"events":[
          {{"id":"{}","time":"{now}","type":"kernel.network.retransmit","severity":"info","entity":{{"node":"n"}}}},
          {{"id":"{}","time":"{now}","type":"kubernetes.workload.unavailable","severity":"critical","entity":{{"namespace":"shop","workload":{{"kind":"Deployment","name":"api"}}}}}}]}}"#,
        ulid::Ulid::new(),
        ulid::Ulid::new()
    );
    let (status, ack) = s.post("/api/v1/evidence", body.as_bytes(), &[]);
    assert_eq!(status, 200);
    assert_eq!(ack["shed"], 1, "{ack}");
    assert_eq!(ack["accepted"], 1, "the P1 fact is kept: {ack}");
    let text = s.get("/metrics").expect("metrics").1;
    assert!(
        text.contains(r#"tapio_events_dropped_total{reason="load_shed"} 1"#),
        "{text}"
    );
    s.wait_for(5, "the P1", |s| s.incidents("?severity=P1").len() == 1);
}

#[test]
fn check_exit_codes_unreachable_and_timeout() {
    // Nothing listens: exit 3 at once.
    let port = tapio_testkit::free_port();
    let out = std::process::Command::new(tapio_testkit::cli_bin())
        .args(["--server", &format!("http://127.0.0.1:{port}"), "check"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("UNREACHABLE"));

    // Something accepts connections but never answers: --timeout bounds the command.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = hung.local_addr().expect("addr");
    let t = Instant::now();
    let out = std::process::Command::new(tapio_testkit::cli_bin())
        .args([
            "--server",
            &format!("http://{addr}"),
            "check",
            "--timeout",
            "2s",
            "-o",
            "json",
        ])
        .output()
        .expect("run");
    let took = t.elapsed();
    drop(hung);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // ~2 s: generous upper bound for a loaded 2-core CI machine.
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "took {took:?}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["status"], "unreachable");
}

#[test]
fn gzip_bodies_are_accepted() {
    let s = Server::start(&[]);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&example("evidence-batch.json"))
        .expect("gzip");
    let gz = enc.finish().expect("gzip");
    let (status, ack) = s.post("/api/v1/evidence", &gz, &[("content-encoding", "gzip")]);
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["accepted"], 3);
}
