//! Notifications end to end: real HTTP receivers started by the test, payloads checked
//! against the vendors' documented shapes, exactly one notification per state change per
//! receiver (also across a kill -9), bounded retries then the fallback, and nothing that
//! pages after an acknowledgement.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tapio_testkit::{Receiver, Server, open_p1, wait};

fn config(
    dir: &std::path::Path,
    pd: &Receiver,
    slack: &Receiver,
    hook: &Receiver,
    attempts: u32,
) -> String {
    let path = dir.join("notify.toml");
    std::fs::write(
        &path,
        format!(
            r#"base_url = "https://tapio.example.com"
[dispatch]
max_attempts = {attempts}
backoff_min = "100ms"
backoff_max = "400ms"
timeout = "2s"

[[receiver]]
name = "pagerduty-oncall"
kind = "pagerduty"
url = "{}"
routing_key = "R0UTINGKEY0123456789012345678901"
fallback = "ops-webhook"

[[receiver]]
name = "slack-incidents"
kind = "slack"
url = "{}"

[[receiver]]
name = "ops-webhook"
kind = "webhook"
url = "{}"

[[route]]
receivers = ["pagerduty-oncall", "slack-incidents"]
severity = ["P1", "P2"]
"#,
            pd.url("/v2/enqueue"),
            slack.url("/services/T/B/X"),
            hook.url("/hook")
        ),
    )
    .expect("write config");
    path.display().to_string()
}

#[test]
fn one_notification_per_state_change_with_the_vendors_shapes() {
    let (pd, slack, hook) = (
        Receiver::start(202),
        Receiver::start(200),
        Receiver::start(200),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &pd, &slack, &hook, 5);
    let s = Server::start(&["--notify", &cfg]);
    let id = open_p1(&s);
    wait("the page and the Slack message", 10, || {
        pd.accepted().len() == 1 && slack.accepted().len() == 1
    });
    let page = &pd.accepted()[0];
    assert_eq!(page["event_action"], "trigger", "{page}");
    assert_eq!(page["routing_key"], "R0UTINGKEY0123456789012345678901");
    assert_eq!(page["dedup_key"], format!("tapio-{id}"), "{page}");
    assert_eq!(page["payload"]["severity"], "critical", "{page}");
    assert!(
        page["payload"]["summary"]
            .as_str()
            .is_some_and(|x| !x.is_empty()),
        "{page}"
    );
    assert!(page["payload"]["source"].is_string(), "{page}");
    let msg = &slack.accepted()[0];
    assert!(
        msg["text"].as_str().is_some_and(|t| t.contains("INCIDENT")),
        "{msg}"
    );
    let blocks = msg["blocks"].as_array().expect("Block Kit blocks");
    assert_eq!(blocks[0]["type"], "header", "{msg}");

    // Acknowledge: PagerDuty hears "acknowledge" (no new trigger), Slack gets an update.
    let (st, _) = s.post(
        &format!("/api/v1/incidents/{id}/ack"),
        br#"{"by":"alice"}"#,
        &[],
    );
    assert_eq!(st, 200);
    wait("the acknowledgement", 10, || {
        pd.accepted().len() == 2 && slack.accepted().len() == 2
    });
    assert_eq!(pd.accepted()[1]["event_action"], "acknowledge");
    assert_eq!(pd.accepted()[1]["dedup_key"], format!("tapio-{id}"));
    // Resolve: PagerDuty resolve, Slack resolution.
    let (st, _) = s.post(
        &format!("/api/v1/incidents/{id}/resolve"),
        br#"{"by":"alice"}"#,
        &[],
    );
    assert_eq!(st, 200);
    wait("the resolution", 10, || {
        pd.accepted().len() == 3 && slack.accepted().len() == 3
    });
    assert_eq!(pd.accepted()[2]["event_action"], "resolve");
    assert!(
        slack.accepted()[2]["text"]
            .as_str()
            .is_some_and(|t| t.contains("RESOLVED")),
        "{}",
        slack.accepted()[2]
    );
    // Nothing more, ever: exactly one per state change per receiver, no triggers after ack.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(pd.attempts(), 3);
    assert_eq!(slack.attempts(), 3);
    assert_eq!(
        pd.accepted()
            .iter()
            .filter(|p| p["event_action"] == "trigger")
            .count(),
        1
    );
    assert_eq!(hook.attempts(), 0, "no fallback when delivery works");
}

#[test]
fn a_kill_9_with_undelivered_notifications_delivers_each_exactly_once() {
    let (pd, slack, hook) = (
        Receiver::start(503),
        Receiver::start(503),
        Receiver::start(200),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &pd, &slack, &hook, 50);
    let mut s = Server::start(&["--notify", &cfg]);
    let id = open_p1(&s);
    wait("a failing attempt", 10, || {
        pd.attempts() >= 1 && slack.attempts() >= 1
    });
    s.kill9();
    pd.status.store(202, Ordering::SeqCst);
    slack.status.store(200, Ordering::SeqCst);
    s.spawn();
    wait("delivery after the restart", 15, || {
        pd.accepted().len() == 1 && slack.accepted().len() == 1
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        pd.accepted().len(),
        1,
        "delivered once, not again after the restart"
    );
    assert_eq!(slack.accepted().len(), 1);
    assert_eq!(pd.accepted()[0]["dedup_key"], format!("tapio-{id}"));
}

#[test]
fn a_receiver_that_stays_down_gets_bounded_retries_then_the_fallback() {
    let (pd, slack, hook) = (
        Receiver::start(500),
        Receiver::start(200),
        Receiver::start(200),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &pd, &slack, &hook, 3);
    let s = Server::start(&["--notify", &cfg]);
    let id = open_p1(&s);
    wait("the fallback", 15, || hook.accepted().len() == 1);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(pd.attempts(), 3, "max_attempts = 3, no retry storm");
    let fb = &hook.accepted()[0];
    assert_eq!(fb["incident"]["id"], id, "{fb}");
    assert!(
        s.metric("tapio_notifications_total{receiver=\"pagerduty-oncall\",result=\"failed\"}")
            >= 1.0
    );
}

#[test]
fn pages_past_the_per_key_rate_wait_instead_of_meeting_pagerdutys_429() {
    let (pd, slack, hook) = (
        Receiver::start(202),
        Receiver::start(200),
        Receiver::start(200),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &pd, &slack, &hook, 5);
    let text = std::fs::read_to_string(&cfg)
        .expect("read")
        .replace("[dispatch]\n", "[dispatch]\npager_events_per_minute = 2\n");
    std::fs::write(&cfg, text).expect("write");
    let s = Server::start(&["--notify", &cfg]);
    // Three P1s at once (three workloads with no replica available), in three
    // namespaces: in one namespace, failures beginning together with nothing to tell them
    // apart would be one incident (common onset, docs/correlation.md).
    for (ns, w) in [
        ("shop", "payments"),
        ("finance", "ledger"),
        ("store", "checkout"),
    ] {
        let body = format!(
            r#"{{"type":"kubernetes.workload.unavailable","severity":"critical","producer":"ci",
                "entity":{{"namespace":"{ns}","workload":{{"kind":"Deployment","name":"{w}"}}}},
                "attributes":{{"desired_replicas":3,"available_replicas":0}}}}"#
        );
        let (status, v) = s.post("/api/v1/events", body.as_bytes(), &[]);
        assert_eq!(status, 202, "{v}");
    }
    wait("three Slack messages", 10, || slack.accepted().len() == 3);
    wait("two pages", 10, || pd.accepted().len() == 2);
    std::thread::sleep(Duration::from_secs(2));
    // The third page waits for the window (a minute) instead of being sent into a 429;
    // waiting costs no attempt.
    assert_eq!(pd.attempts(), 2);
    assert!(
        s.metric("tapio_notifications_total{receiver=\"pagerduty-oncall\",result=\"deferred\"}")
            >= 1.0
    );
    assert_eq!(
        s.metric("tapio_notifications_total{receiver=\"pagerduty-oncall\",result=\"retry\"}"),
        0.0
    );
}

#[test]
fn an_invalid_notification_config_stops_the_server_with_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[receiver]]\nname = \"x\"\nkind = \"teams\"\nurl = \"http://h\"\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tapio-server"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("d"))
        .arg("--config-dir")
        .arg(dir.path().join("c"))
        .arg("--notify")
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("receiver \"x\", field \"kind\""), "{err}");
}

#[test]
fn an_unacknowledged_p1_escalates_after_its_deadline_and_the_timeline_says_so() {
    let (pd, slack, hook) = (
        Receiver::start(202),
        Receiver::start(200),
        Receiver::start(200),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = config(dir.path(), &pd, &slack, &hook, 5);
    // Escalate to the webhook when a P1 is not acknowledged within 1 s.
    let text = std::fs::read_to_string(&path).expect("read").replace(
        "fallback = \"ops-webhook\"",
        "fallback = \"ops-webhook\"\nescalate_to = \"ops-webhook\"",
    ) + "\n[escalation]\nP1 = \"1s\"\n";
    std::fs::write(&path, text).expect("write");
    let s = Server::start(&["--notify", &path]);
    let id = open_p1(&s);
    wait("the escalation", 20, || hook.accepted().len() == 1);
    let esc = &hook.accepted()[0];
    assert_eq!(esc["incident"]["id"], id, "{esc}");
    assert_eq!(
        esc["kind"], "initial",
        "the escalation target hears it as new: {esc}"
    );
    s.wait_for(10, "the escalation on the timeline", |s| {
        s.get_json(&format!("/api/v1/incidents/{id}/timeline"))["timeline"]
            .to_string()
            .contains("escalated to ops-webhook: not acknowledged within 1 s (P1 response time)")
    });
    // Once only.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(hook.accepted().len(), 1);
}

#[test]
fn a_silence_holds_notifications_but_the_incident_is_recorded() {
    let (pd, slack, hook) = (
        Receiver::start(202),
        Receiver::start(200),
        Receiver::start(200),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &pd, &slack, &hook, 5);
    let s = Server::start(&["--notify", &cfg]);
    // Maintenance in shop for 2 h, through the CLI.
    let out = s.cli(&[
        "silence",
        "add",
        "-n",
        "shop",
        "--for",
        "2h",
        "--comment",
        "db migration",
        "--by",
        "alice",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sid = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .expect("silence <id>")
        .to_owned();
    let list = String::from_utf8_lossy(&s.cli(&["silence", "list"]).stdout).into_owned();
    assert!(
        list.contains(&sid) && list.contains("active") && list.contains("db migration"),
        "{list}"
    );
    let id = open_p1(&s);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(pd.attempts() + slack.attempts(), 0, "held by the silence");
    assert_eq!(
        s.get_json(&format!("/api/v1/incidents/{id}"))["status"],
        "open",
        "still recorded"
    );
    // The silence ends: the next state change notifies.
    let out = s.cli(&["silence", "expire", &sid]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (st, _) = s.post(
        &format!("/api/v1/incidents/{id}/ack"),
        br#"{"by":"bob"}"#,
        &[],
    );
    assert_eq!(st, 200);
    wait("the update after the silence", 10, || {
        pd.accepted().len() == 1 && slack.accepted().len() == 1
    });
    assert_eq!(pd.accepted()[0]["event_action"], "acknowledge");
    // A silence needs a matcher.
    let (st, e) = s.post(
        "/api/v1/silences",
        br#"{"matchers": {}, "duration": "1h"}"#,
        &[],
    );
    assert_eq!(st, 400, "{e}");
}
