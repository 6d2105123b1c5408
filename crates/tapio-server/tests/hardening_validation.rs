//! Issue 15, the "validate the rest" items, against the real server binary: a failed read
//! of the auth directory keeps the known users; a token in two user files authenticates
//! no one; two Authorization headers are refused; overflowing ULIDs are refused; an
//! implausible sequence jump is a reset, not 9.2e18 missing batches; out-of-range values
//! and control characters are refused; a non-JSON Content-Type is 415.

use std::time::Duration;

use tapio_testkit::{Server, add_user, http_agent};

const OVERFLOW: &str = "8ZZZZZZZZZZZZZZZZZZZZZZZZZ";

fn agent() -> ureq::Agent {
    http_agent(Duration::from_secs(20))
}

/// GET with any headers: (status, body).
fn get(s: &Server, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = agent().get(format!("{}{path}", s.url()));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut r = req.call().expect("GET");
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap_or_default())
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn refused(s: &Server, reason: &str) -> f64 {
    let (_, text) = s.get("/metrics").expect("metrics");
    text.lines()
        .filter(|l| {
            l.starts_with("tapio_input_refused_total{")
                && l.contains(&format!("reason=\"{reason}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The auth directory failing to read (here a user file, then the directory itself,
/// turned into symlink loops: ELOOP, an I/O error like EMFILE) keeps the known users;
/// only a good read without the user removes it.
#[test]
fn auth_dir_read_failure_keeps_known_users() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("auth");
    std::fs::create_dir(&dir).expect("mkdir");
    let alice = add_user(&dir, "alice", "admin");
    let bob = add_user(&dir, "bob", "viewer");
    let s = Server::start(&["--auth-dir", &dir.display().to_string()]);
    let alice_h = bearer(&alice);
    let ok = |h: &str| get(&s, "/api/v1/incidents", &[("authorization", h)]).0;
    assert_eq!(ok(&alice_h), 200);

    // alice's file cannot be read: she keeps working (3 reload rounds).
    std::fs::remove_file(dir.join("alice")).expect("rm");
    std::os::unix::fs::symlink("alice", dir.join("alice")).expect("loop");
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(ok(&alice_h), 200, "log:\n{}", s.logs());

    // The directory itself cannot be listed: everyone known keeps working.
    let moved = root.path().join("moved");
    std::fs::rename(&dir, &moved).expect("mv");
    std::os::unix::fs::symlink("auth", &dir).expect("dir loop");
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(ok(&alice_h), 200, "log:\n{}", s.logs());
    assert_eq!(ok(&bearer(&bob)), 200);
    assert!(refused(&s, "auth_read_failed") >= 1.0);
    assert!(s.logs().contains("kept"), "log:\n{}", s.logs());

    // A good read without alice removes her (and only her).
    std::fs::remove_file(&dir).expect("rm loop");
    std::fs::rename(&moved, &dir).expect("mv back");
    std::fs::remove_file(dir.join("alice")).expect("rm alice");
    s.wait_for(10, "alice removed", |s| {
        get(s, "/api/v1/incidents", &[("authorization", &alice_h)]).0 == 401
    });
    assert_eq!(ok(&bearer(&bob)), 200);
}

/// A token digest in two user files (a responder's file copied to an admin's) is
/// refused for both, with both files named in the log and counted.
#[test]
fn shared_token_digest_authenticates_no_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = add_user(dir.path(), "pager", "responder");
    let own = add_user(dir.path(), "vera", "viewer");
    std::fs::copy(dir.path().join("pager"), dir.path().join("boss")).expect("copy");
    // Make the copy an admin: the first file in name order ("boss") used to win.
    let text = std::fs::read_to_string(dir.path().join("boss"))
        .expect("read")
        .replace("role: responder", "role: admin");
    std::fs::write(dir.path().join("boss"), text).expect("write");
    let s = Server::start(&["--auth-dir", &dir.path().display().to_string()]);
    let (status, body) = get(&s, "/api/v1/audit", &[("authorization", &bearer(&token))]);
    assert_eq!(status, 401, "the shared token acted as someone: {body}");
    assert_eq!(
        get(
            &s,
            "/api/v1/incidents",
            &[("authorization", &bearer(&token))]
        )
        .0,
        401
    );
    assert_eq!(
        get(&s, "/api/v1/incidents", &[("authorization", &bearer(&own))]).0,
        200
    );
    let logs = s.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("boss") && l.contains("pager") && l.contains("token-sha256")),
        "log:\n{logs}"
    );
    s.wait_for(5, "counted", |s| refused(s, "auth_duplicate_token") >= 2.0);
}

/// Two Authorization headers: 400 naming the problem, counted, whichever is valid.
#[test]
fn two_authorization_headers_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = add_user(dir.path(), "adam", "admin");
    let viewer = add_user(dir.path(), "vera", "viewer");
    let s = Server::start(&["--auth-dir", &dir.path().display().to_string()]);
    let (a, v) = (bearer(&admin), bearer(&viewer));
    let (status, body) = get(
        &s,
        "/api/v1/audit",
        &[("authorization", &v), ("authorization", &a)],
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("2 Authorization headers"), "{body}");
    let (status, _) = get(
        &s,
        "/api/v1/incidents",
        &[("authorization", &a), ("authorization", &a)],
    );
    assert_eq!(status, 400);
    assert_eq!(get(&s, "/api/v1/audit", &[("authorization", &a)]).0, 200);
    assert!(refused(&s, "repeated_authorization") >= 2.0);
}

/// `8ZZZ…` is not read as `0ZZZ…`: the API and the CLI refuse it naming the rule.
#[test]
fn overflowing_ulids_are_refused() {
    let s = Server::start(&[]);
    let (status, body) = s
        .get(&format!("/api/v1/incidents/{OVERFLOW}"))
        .expect("GET");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("0-7"), "{body}");
    for path in [
        format!("/api/v1/incidents/{OVERFLOW}/ack"),
        format!("/api/v1/incidents/{OVERFLOW}/notes"),
        format!("/api/v1/silences/{OVERFLOW}/expire"),
    ] {
        let (status, v) = s.post(&path, br#"{"text":"x"}"#, &[]);
        assert_eq!(status, 400, "{path}: {v}");
        assert!(v.to_string().contains("0-7"), "{path}: {v}");
    }
    let (status, v) = s.post(
        "/api/v1/events",
        format!(r#"{{"id":"{OVERFLOW}","type":"change.deployment.rollout"}}"#).as_bytes(),
        &[],
    );
    assert_eq!(status, 400, "{v}");
    let out = s.cli(&["incidents", "show", OVERFLOW]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("0-7"), "{err}");
    assert!(refused(&s, "invalid_id") >= 5.0);
}

/// A batch sequence jumping to 2^63−1 is a sequence reset: no 9.2e18 missing batches,
/// no wrapped gap counter; a real gap is still counted.
#[test]
fn implausible_sequence_jump_is_a_reset() {
    let s = Server::start(&[]);
    let batch = |seq: u64| tapio_testkit::oom_batch("jumper", seq, "api", 1);
    for seq in [1, i64::MAX as u64] {
        let (status, v) = s.post("/api/v1/evidence", batch(seq).as_bytes(), &[]);
        assert_eq!(status, 200, "{v}");
    }
    let agents = s.get_json("/api/v1/agents");
    let row = agents["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["agent_id"] == "jumper"))
        .cloned()
        .expect("agent row");
    assert_eq!(row["missing_batches"], 0, "{row}");
    assert_eq!(s.metric("tapio_agent_sequence_gaps_total"), 0.0);
    assert_eq!(s.metric("tapio_agent_sequence_resets_total"), 1.0);
    assert_eq!(refused(&s, "sequence_jump"), 1.0);
    // An ordinary gap (3 batches) is still missing evidence.
    let (status, _) = s.post("/api/v1/evidence", batch(1).as_bytes(), &[]);
    assert_eq!(status, 200);
    let other = |seq: u64| tapio_testkit::oom_batch("gappy", seq, "api", 1);
    for seq in [1, 5] {
        let (status, v) = s.post("/api/v1/evidence", other(seq).as_bytes(), &[]);
        assert_eq!(status, 200, "{v}");
    }
    assert_eq!(s.metric("tapio_agent_sequence_gaps_total"), 3.0);
}

/// Out-of-range values and control characters are refused naming the field.
#[test]
fn out_of_range_values_are_refused() {
    let s = Server::start(&[]);
    let now = chrono::Utc::now().to_rfc3339();
    let event = |time: &str, attrs: &str| {
        format!(
            r#"{{"type":"app.http.error_rate","severity":"error","time":"{time}","entity":{{"namespace":"shop","service":"api"}},"attributes":{attrs}}}"#
        )
    };
    for (body, field) in [
        (
            event(&now, r#"{"error_ratio":-5}"#),
            "attributes.error_ratio",
        ),
        (
            event(&now, r#"{"error_ratio":1e308}"#),
            "attributes.error_ratio",
        ),
        (
            event("0001-01-01T00:00:00Z", r#"{"error_ratio":0.5}"#),
            "time",
        ),
    ] {
        let (status, v) = s.post("/api/v1/events", body.as_bytes(), &[]);
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{v}");
    }
    let (status, v) = s.post(
        "/api/v1/events",
        event(&now, r#"{"error_ratio":0.5}"#).as_bytes(),
        &[],
    );
    assert_eq!(status, 202, "{v}");

    // People's text: no NUL, no terminal escapes.
    let (status, v) = s.post(
        "/api/v1/incidents",
        br#"{"severity":"P3","title":"checkout \u001b]0;owned\u0007 slow"}"#,
        &[],
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["field"], "title", "{v}");
    let (status, v) = s.post(
        "/api/v1/incidents",
        br#"{"severity":"P3","title":"checkout slow","description":"line one\nline two"}"#,
        &[],
    );
    assert!(
        status == 201 || status == 200 || status == 202,
        "{status} {v}"
    );
    let id = v["id"].as_str().map(str::to_owned).unwrap_or_else(|| {
        s.wait_for(10, "the declared incident", |s| !s.incidents("").is_empty());
        s.incidents("")[0]["id"].as_str().expect("id").to_owned()
    });
    let (status, v) = s.post(
        &format!("/api/v1/incidents/{id}/notes"),
        b"{\"text\":\"restarted\\u0000\"}",
        &[],
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["field"], "text", "{v}");

    // Silences: at most 90 days; comments without escapes.
    let silence = |extra: &str| format!(r#"{{"matchers":{{"namespace":"shop"}},{extra}}}"#);
    for extra in [
        r#""ends_at":"9999-12-31T00:00:00Z""#,
        r#""duration":"91d""#,
        r#""duration":"2h","comment":"\u001b[2J""#,
    ] {
        let (status, v) = s.post("/api/v1/silences", silence(extra).as_bytes(), &[]);
        assert_eq!(status, 400, "{extra}: {v}");
    }
    let (status, v) = s.post(
        "/api/v1/silences",
        silence(r#""ends_at":"9999-12-31T00:00:00Z""#).as_bytes(),
        &[],
    );
    assert!(v.to_string().contains("90 days"), "{status} {v}");
    let (status, v) = s.post(
        "/api/v1/silences",
        silence(r#""duration":"2h","comment":"deploy\nwindow""#).as_bytes(),
        &[],
    );
    assert_eq!(status, 201, "{v}");
    assert!(refused(&s, "control_character") >= 3.0);
    assert!(refused(&s, "silence_too_long") >= 2.0);
}

/// A JSON route refuses a body labelled as something else (a browser form or text/plain
/// post from another site, too) with 415 naming the type; no Content-Type and
/// application/json (what the agent and CLI send) are accepted.
#[test]
fn non_json_content_type_is_415() {
    let s = Server::start(&[]);
    let ev = br#"{"type":"change.deployment.rollout","entity":{"namespace":"shop"}}"#;
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let (status, v) = s.post("/api/v1/events", ev, &[("content-type", ct)]);
        assert_eq!(status, 415, "{ct}: {v}");
        let m = v["error"]["message"].as_str().unwrap_or_default();
        assert!(m.contains(ct) && m.contains("application/json"), "{m}");
    }
    let (status, _) = s.post(
        "/api/v1/incidents",
        br#"{"severity":"P3","title":"x"}"#,
        &[("content-type", "text/plain")],
    );
    assert_eq!(status, 415);
    let (status, _) = s.post(
        "/api/v1/evidence",
        &tapio_testkit::example("evidence-batch.json"),
        &[("content-type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(status, 415);
    assert_eq!(s.post("/api/v1/events", ev, &[]).0, 202);
    assert_eq!(
        s.post(
            "/api/v1/events",
            ev,
            &[("content-type", "application/json; charset=utf-8")]
        )
        .0,
        202
    );
    // The CLI's own requests still go through.
    let out = s.cli(&[
        "incidents",
        "declare",
        "--severity",
        "P3",
        "--title",
        "from the CLI",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(refused(&s, "unsupported_media_type") >= 5.0);
}
