//! Time nobody outside can move: one source's fast clock, or an alert dated in the future,
//! must not advance the engine's "now" and resolve every open incident early.

use chrono::{Duration, Utc};
use tapio_testkit::{Server, oom_batch};

/// One batch from an agent whose clock runs `skew` ahead: its events and `sent_at` both
/// read that clock.
fn skewed_batch(agent: &str, seq: u64, skew: Duration) -> String {
    let t = (Utc::now() + skew).to_rfc3339();
    format!(
        r#"{{"version":1,"agent_id":"{agent}","node":"worker-9","seq":{seq},"sent_at":"{t}","events":[{{"id":"{}","time":"{t}","type":"kernel.container.abnormal_exit","severity":"warning","entity":{{"namespace":"batch","pod":"x-1","workload":{{"kind":"Deployment","name":"x"}}}},"attributes":{{"exit_code":1}}}}]}}"#,
        ulid::Ulid::new()
    )
}

fn open_oom(s: &Server) -> String {
    let (status, v) = s.post(
        "/api/v1/evidence",
        oom_batch("agent-a", 1, "checkout", 3).as_bytes(),
        &[("content-type", "application/json")],
    );
    assert_eq!(status, 200, "{v}");
    s.wait_for(10, "the OOM incident", |s| {
        s.incidents("?status=open")
            .iter()
            .any(|i| i["title"].as_str().unwrap_or("").contains("checkout"))
    });
    s.incidents("?status=open")
        .iter()
        .find(|i| i["title"].as_str().unwrap_or("").contains("checkout"))
        .and_then(|i| i["id"].as_str())
        .expect("id")
        .to_owned()
}

fn still_open_after(s: &Server, id: &str, secs: u64) {
    std::thread::sleep(std::time::Duration::from_secs(secs));
    let inc = s.get_json(&format!("/api/v1/incidents/{id}"));
    assert_eq!(
        inc["status"],
        "open",
        "one source's clock resolved an incident early: {inc}\nlog:\n{}",
        s.logs()
    );
}

#[test]
fn one_agent_with_a_fast_clock_resolves_nothing() {
    let s = Server::start(&[]);
    let id = open_oom(&s);
    // Inside the 5-minute future allowance, so it is accepted.
    let (status, v) = s.post(
        "/api/v1/evidence",
        skewed_batch("agent-fast", 1, Duration::seconds(298)).as_bytes(),
        &[("content-type", "application/json")],
    );
    assert_eq!(status, 200, "{v}");
    still_open_after(&s, &id, 4);
    // The fast agent's evidence is kept, at the server's time, and counted.
    assert!(s.metric("tapio_evidence_time_corrected_total") >= 1.0);
    let ev = s.get_json("/api/v1/evidence?type=kernel.container.abnormal_exit");
    let text = ev.to_string();
    assert!(text.contains("source_time"), "{text}");
}

#[test]
fn an_alert_dated_in_the_future_resolves_nothing() {
    let s = Server::start(&[]);
    let id = open_oom(&s);
    let starts = (Utc::now() + Duration::days(3650)).to_rfc3339();
    let body = format!(
        r#"{{"version":"4","status":"firing","receiver":"tapio","groupKey":"k","alerts":[{{"status":"firing","labels":{{"alertname":"KubePodCrashLooping","severity":"warning","namespace":"other","pod":"y-1"}},"annotations":{{"description":"y"}},"startsAt":"{starts}","endsAt":"0001-01-01T00:00:00Z","fingerprint":"abc"}}]}}"#
    );
    let (status, v) = s.post(
        "/api/v1/alertmanager",
        body.as_bytes(),
        &[("content-type", "application/json")],
    );
    assert!(status < 300, "{status} {v}");
    still_open_after(&s, &id, 4);
}

#[test]
fn an_agent_with_a_slow_clock_has_its_evidence_placed_at_server_time() {
    // A clock 4 minutes behind: its symptoms would look 4 minutes old and their incident
    // would resolve (5-minute quiet period) a minute after it opens.
    let s = Server::start(&[]);
    let skew = Duration::seconds(-240);
    for seq in 1..=3 {
        let (status, v) = s.post(
            "/api/v1/evidence",
            skewed_batch("agent-slow", seq, skew).as_bytes(),
            &[("content-type", "application/json")],
        );
        assert_eq!(status, 200, "{v}");
    }
    let ev = s.get_json("/api/v1/evidence?type=kernel.container.abnormal_exit");
    let times: Vec<chrono::DateTime<Utc>> = ev["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .filter_map(|e| e["event"]["time"].as_str()?.parse().ok())
        .collect();
    assert_eq!(times.len(), 3, "{ev}");
    for t in times {
        let off = (Utc::now() - t).num_seconds();
        assert!(
            off.abs() < 30,
            "stored {off} s from the server's clock: {t}"
        );
    }
}

#[test]
fn an_agent_ten_minutes_fast_is_accepted_and_placed_at_server_time() {
    // Beyond the 5-minute future allowance on the server's clock, but the batch's sent_at
    // shows the sender's clock runs ahead: its evidence is kept, not refused forever.
    let s = Server::start(&[]);
    let (status, v) = s.post(
        "/api/v1/evidence",
        skewed_batch("agent-ahead", 1, Duration::seconds(600)).as_bytes(),
        &[("content-type", "application/json")],
    );
    assert_eq!(status, 200, "{v}");
    let ev = s.get_json("/api/v1/evidence?type=kernel.container.abnormal_exit");
    let t: chrono::DateTime<Utc> = ev["evidence"][0]["event"]["time"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("time");
    assert!((Utc::now() - t).num_seconds().abs() < 30, "stored at {t}");
    // Without sent_at nothing vouches for the sender's clock: still refused.
    let no_sent_at = skewed_batch("agent-ahead-2", 1, Duration::seconds(600)).replacen(
        r#""sent_at""#,
        r#""sent_at_unused""#,
        1,
    );
    let (status, v) = s.post(
        "/api/v1/evidence",
        no_sent_at.as_bytes(),
        &[("content-type", "application/json")],
    );
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["error"]["code"], "timestamp_in_future", "{v}");
}
