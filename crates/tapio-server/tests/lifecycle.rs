//! The incident lifecycle people drive, through the API and the CLI: declare, acknowledge,
//! note, mitigate, resolve, reopen; invalid transitions refused clearly; detection never
//! overwrites what people did.

use tapio_testkit::{Server, example};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_declared_incident_runs_the_whole_lifecycle_from_the_cli() {
    let s = Server::start(&[]);
    let out = s.cli(&[
        "incidents",
        "declare",
        "--severity",
        "p2",
        "--title",
        "Checkout slow for EU users",
        "-n",
        "shop",
        "--service",
        "checkout",
        "--description",
        "3 tickets since 10:05",
        "--by",
        "alice",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out)
        .split_whitespace()
        .nth(2)
        .expect("declared P2 <id>")
        .to_owned();
    let inc = s.get_json(&format!("/api/v1/incidents/{id}"));
    assert_eq!(inc["severity"], "P2");
    assert_eq!(inc["status"], "open");
    assert_eq!(inc["affected"][0], "Service/shop/checkout");

    for (args, status) in [
        (vec!["incidents", "ack", &id, "--by", "bob"], "acknowledged"),
        (
            vec![
                "incidents",
                "mitigate",
                &id,
                "--by",
                "bob",
                "--note",
                "rolled back 2.8.1",
            ],
            "mitigated",
        ),
        (
            vec!["incidents", "resolve", &id, "--by", "carol"],
            "resolved",
        ),
    ] {
        let out = s.cli(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).contains(status), "{}", stdout(&out));
    }
    // Acknowledging a resolved incident is refused, naming what is allowed.
    let out = s.cli(&["incidents", "ack", &id, "--by", "bob"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("409") && err.contains("allowed now: reopen, note, severity"),
        "{err}"
    );
    // The post-incident review re-classifies it.
    let out = s.cli(&[
        "incidents",
        "severity",
        &id,
        "p1",
        "--reason",
        "EU checkout revenue lost",
        "--by",
        "carol",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("is now P1"), "{}", stdout(&out));

    let out = s.cli(&[
        "incidents",
        "note",
        &id,
        "customer comms sent",
        "--by",
        "dave",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = s.cli(&["incidents", "timeline", &id]);
    let text = stdout(&out);
    for needle in [
        "declared by alice",
        "3 tickets since 10:05",
        "acknowledged by bob",
        "mitigated by bob",
        "rolled back 2.8.1",
        "resolved by carol",
        "customer comms sent  (dave)",
        "severity P2 → P1: set by carol: EU checkout revenue lost",
    ] {
        assert!(text.contains(needle), "{needle:?} in\n{text}");
    }
    let inc = s.get_json(&format!("/api/v1/incidents/{id}"));
    assert!(
        inc["acknowledged_at"].is_string()
            && inc["mitigated_at"].is_string()
            && inc["resolved_at"].is_string(),
        "{inc}"
    );
    let out = s.cli(&["incidents", "reopen", &id, "--by", "erin"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        s.get_json(&format!("/api/v1/incidents/{id}"))["status"],
        "open"
    );
}

#[test]
fn detection_keeps_what_people_did() {
    let s = Server::start(&[]);
    let (status, _) = s.post("/api/v1/evidence", &example("evidence-batch.json"), &[]);
    assert_eq!(status, 200);
    s.wait_for(5, "the OOM incident", |s| s.incidents("").len() == 1);
    let id = s.incidents("")[0]["id"].as_str().expect("id").to_owned();
    let (status, inc) = s.post(
        &format!("/api/v1/incidents/{id}/ack"),
        br#"{"by": "alice", "note": "looking at the heap"}"#,
        &[],
    );
    assert_eq!(status, 200, "{inc}");
    assert_eq!(inc["status"], "acknowledged");
    // More evidence of the same chain: the engine updates the incident, and keeps the ack.
    let more = String::from_utf8(example("evidence-batch.json"))
        .expect("utf-8")
        .replace("\"seq\": 1", "\"seq\": 2")
        .replace("01JDR2K8Q4X1V6N3M7P9T2W5Y8", "01JDR2K8Q4X1V6N3M7P9T2W6A1")
        .replace("01JDR2K8Q4X1V6N3M7P9T2W5Y9", "01JDR2K8Q4X1V6N3M7P9T2W6A2")
        .replace("01JDR2K8Q4X1V6N3M7P9T2W5YA", "01JDR2K8Q4X1V6N3M7P9T2W6A3");
    let (status, ack) = s.post("/api/v1/evidence", more.as_bytes(), &[]);
    assert_eq!(status, 200, "{ack}");
    s.wait_for(5, "the new evidence", |s| {
        s.get_json(&format!("/api/v1/incidents/{id}"))["evidence_count"].as_u64() >= Some(3)
    });
    let inc = s.get_json(&format!("/api/v1/incidents/{id}"));
    assert_eq!(inc["status"], "acknowledged", "{inc}");
    assert!(inc["timeline"].to_string().contains("looking at the heap"));

    // A person re-classifies: customers cannot check out, so P1 whatever the evidence says.
    let detected = inc["severity"].as_str().expect("severity").to_owned();
    assert_ne!(detected, "P1", "the example is not a P1 by evidence: {inc}");
    let (status, inc) = s.post(
        &format!("/api/v1/incidents/{id}/severity"),
        br#"{"by": "alice", "severity": "P1", "reason": "customers cannot check out"}"#,
        &[],
    );
    assert_eq!(status, 200, "{inc}");
    assert_eq!(inc["severity"], "P1");
    assert_eq!(inc["severity_set_by"], "alice");
    assert!(
        inc["severity_reason"]
            .as_str()
            .is_some_and(|r| r.contains("customers cannot check out")),
        "{inc}"
    );
    // More evidence: detection would classify it lower, but the person's P1 stays.
    let again = more
        .replace("\"seq\": 2", "\"seq\": 3")
        .replace("01JDR2K8Q4X1V6N3M7P9T2W6A", "01JDR2K8Q4X1V6N3M7P9T2W6B");
    let (status, ack) = s.post("/api/v1/evidence", again.as_bytes(), &[]);
    assert_eq!(status, 200, "{ack}");
    s.wait_for(5, "the third batch", |s| {
        s.get_json(&format!("/api/v1/incidents/{id}"))["evidence_count"].as_u64() >= Some(5)
    });
    let inc = s.get_json(&format!("/api/v1/incidents/{id}"));
    assert_eq!(inc["severity"], "P1", "{inc}");
    let tl = inc["timeline"].to_string();
    assert!(
        tl.contains(&format!("severity {detected} → P1: set by alice")),
        "{tl}"
    );
    let (status, e) = s.post(
        &format!("/api/v1/incidents/{id}/severity"),
        br#"{"severity": "P9"}"#,
        &[],
    );
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["field"], "severity", "{e}");
}

#[test]
fn bad_lifecycle_requests_are_refused_clearly() {
    let s = Server::start(&[]);
    let (status, e) = s.post("/api/v1/incidents/not-an-id/ack", b"", &[]);
    assert_eq!(status, 400, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("not-an-id"),
        "{e}"
    );
    let (status, e) = s.post("/api/v1/incidents/01JDR2K8Q4X1V6N3M7P9T2W5Y8/ack", b"", &[]);
    assert_eq!(status, 404, "{e}");
    let (status, e) = s.post(
        "/api/v1/incidents",
        br#"{"severity": "P7", "title": "x"}"#,
        &[],
    );
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["field"], "severity", "{e}");
    let (status, e) = s.post(
        "/api/v1/incidents",
        br#"{"severity": "P3", "title": "x", "sev": 1}"#,
        &[],
    );
    assert_eq!(status, 400, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap_or("").contains("sev"),
        "{e}"
    );
    let (status, inc) = s.post(
        "/api/v1/incidents",
        br#"{"severity": "P3", "title": "Search flaky"}"#,
        &[],
    );
    assert_eq!(status, 201, "{inc}");
    let id = inc["id"].as_str().expect("id");
    let (status, e) = s.post(
        &format!("/api/v1/incidents/{id}/notes"),
        br#"{"text": "   "}"#,
        &[],
    );
    assert_eq!(status, 400, "{e}");
}
