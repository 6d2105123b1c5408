//! Authentication, roles and the audit stream against a real server: users made with
//! `tapio auth add-user`, every route tried with every role, a removed user refused
//! within 5 seconds without a restart, audit records per class and level, exported by the
//! CLI and kept across a restart, and no token ever in the logs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tapio_testkit::{Server, add_user, cli_bin, example, http_agent};

fn agent() -> ureq::Agent {
    http_agent(Duration::from_secs(20))
}

/// Status of a request with an optional token.
fn call(s: &Server, method: &str, path: &str, body: &[u8], token: Option<&str>) -> (u16, String) {
    let url = format!("{}{path}", s.url());
    let a = agent();
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut r = if method == "GET" {
        let mut req = a.get(&url);
        if let Some(h) = &auth {
            req = req.header("authorization", h);
        }
        req.call().expect("GET")
    } else {
        let mut req = a.post(&url).header("content-type", "application/json");
        if let Some(h) = &auth {
            req = req.header("authorization", h);
        }
        req.send(body).expect("POST")
    };
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap_or_default())
}

struct Setup {
    s: Server,
    dir: tempfile::TempDir,
    tokens: BTreeMap<&'static str, String>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tokens = BTreeMap::new();
    for (name, role) in [
        ("vera", "viewer"),
        ("rita", "responder"),
        ("adam", "admin"),
        ("node-agent", "agent"),
    ] {
        tokens.insert(name, add_user(dir.path(), name, role));
    }
    let s = Server::start(&["--auth-dir", &dir.path().display().to_string()]);
    Setup { s, dir, tokens }
}

// One test (~220 lines) on purpose: one server and its users, then the table of routes
// and roles checked in turn; split, each part would start its own server.
#[test]
fn every_route_refuses_the_roles_it_must_and_people_act_as_themselves() {
    let Setup {
        s,
        dir: _dir,
        tokens,
    } = setup();
    // Public without a token.
    for p in ["/health", "/ready", "/status", "/status.json", "/metrics"] {
        assert_eq!(call(&s, "GET", p, b"", None).0, 200, "{p}");
    }
    // Everything else needs one.
    let (st, body) = call(&s, "GET", "/api/v1/incidents", b"", None);
    assert_eq!(st, 401, "{body}");
    assert!(body.contains("Bearer"), "{body}");
    assert_eq!(
        call(
            &s,
            "GET",
            "/api/v1/incidents",
            b"",
            Some("tapio_not_a_real_token")
        )
        .0,
        401
    );

    // An incident to act on, declared by the responder (`by` in the body is ignored:
    // the caller acts as themself).
    let (st, body) = call(
        &s,
        "POST",
        "/api/v1/incidents",
        br#"{"severity":"P3","title":"search slow","by":"mallory"}"#,
        Some(&tokens["rita"]),
    );
    assert_eq!(st, 201, "{body}");
    let inc: serde_json::Value = serde_json::from_str(&body).expect("json");
    let id = inc["id"].as_str().expect("id").to_owned();
    assert!(body.contains("declared by rita"), "{body}");

    let evidence = example("evidence-batch.json");
    let routes: Vec<(&str, String, Vec<u8>, [bool; 4])> = vec![
        // (method, path, body, allowed for [viewer, responder, admin, agent])
        (
            "GET",
            "/api/v1/incidents".into(),
            vec![],
            [true, true, true, false],
        ),
        (
            "GET",
            format!("/api/v1/incidents/{id}"),
            vec![],
            [true, true, true, false],
        ),
        (
            "GET",
            format!("/api/v1/incidents/{id}/timeline"),
            vec![],
            [true, true, true, false],
        ),
        (
            "GET",
            "/api/v1/incidents/summary".into(),
            vec![],
            [true, true, true, false],
        ),
        (
            "GET",
            "/api/v1/evidence".into(),
            vec![],
            [true, true, true, false],
        ),
        (
            "GET",
            "/api/v1/agents".into(),
            vec![],
            [true, true, true, false],
        ),
        (
            "GET",
            "/api/v1/config".into(),
            vec![],
            [true, true, true, false],
        ),
        (
            "GET",
            "/api/v1/silences".into(),
            vec![],
            [true, true, true, false],
        ),
        (
            "GET",
            "/api/v1/audit".into(),
            vec![],
            [false, false, true, false],
        ),
        (
            "GET",
            "/api/v1/pods?node=n".into(),
            vec![],
            [false, false, true, true],
        ),
        (
            "POST",
            format!("/api/v1/incidents/{id}/notes"),
            br#"{"text":"checking"}"#.to_vec(),
            [false, true, true, false],
        ),
        (
            "POST",
            format!("/api/v1/incidents/{id}/severity"),
            br#"{"severity":"P2"}"#.to_vec(),
            [false, true, true, false],
        ),
        (
            "POST",
            format!("/api/v1/incidents/{id}/ack"),
            vec![],
            [false, true, true, false],
        ),
        (
            "POST",
            format!("/api/v1/incidents/{id}/mitigate"),
            vec![],
            [false, true, true, false],
        ),
        (
            "POST",
            format!("/api/v1/incidents/{id}/resolve"),
            vec![],
            [false, true, true, false],
        ),
        (
            "POST",
            format!("/api/v1/incidents/{id}/reopen"),
            vec![],
            [false, true, true, false],
        ),
        (
            "POST",
            "/api/v1/incidents".into(),
            br#"{"severity":"P4","title":"t"}"#.to_vec(),
            [false, true, true, false],
        ),
        (
            "POST",
            "/api/v1/silences".into(),
            br#"{"matchers":{"namespace":"x"},"duration":"1m"}"#.to_vec(),
            [false, true, true, false],
        ),
        (
            "POST",
            "/api/v1/silences/01JDR2K8Q4X1V6N3M7P9T2W5Y8/expire".into(),
            vec![],
            [false, true, true, false],
        ),
        (
            "POST",
            "/api/v1/evidence".into(),
            evidence.clone(),
            [false, false, true, true],
        ),
        (
            "POST",
            "/api/v1/events".into(),
            br#"{"type":"change.deployment.rollout","entity":{"namespace":"x"}}"#.to_vec(),
            [false, false, true, true],
        ),
        (
            "POST",
            "/api/v1/alertmanager".into(),
            br#"{"version":"4","status":"firing","alerts":[]}"#.to_vec(),
            [false, false, true, true],
        ),
        (
            "POST",
            "/api/v1/agents/heartbeat".into(),
            br#"{}"#.to_vec(),
            [false, false, true, true],
        ),
    ];
    for (method, path, body, allowed) in &routes {
        for (who, ok) in ["vera", "rita", "adam", "node-agent"].iter().zip(allowed) {
            let (st, text) = call(&s, method, path, body, Some(&tokens[who]));
            assert_ne!(st, 401, "{method} {path} as {who}: {text}");
            if *ok {
                assert_ne!(st, 403, "{method} {path} must be allowed for {who}: {text}");
            } else {
                assert_eq!(st, 403, "{method} {path} must be refused to {who}: {text}");
                assert!(text.contains(who), "the refusal names the user: {text}");
            }
        }
    }
    let tl = call(
        &s,
        "GET",
        &format!("/api/v1/incidents/{id}/timeline"),
        b"",
        Some(&tokens["vera"]),
    )
    .1;
    assert!(tl.contains("acknowledged by rita"), "{tl}");

    // The CLI sends its token.
    let out = s.cli(&["--token", &tokens["vera"], "incidents", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s.cli(&["incidents", "list"]);
    assert!(!out.status.success());

    // Tokens never reach the log.
    std::thread::sleep(Duration::from_millis(300));
    let logs = s.logs();
    for (who, t) in &tokens {
        assert!(!logs.contains(t.as_str()), "{who}'s token is in the log");
    }
}

#[test]
fn a_removed_user_is_refused_within_5_seconds_without_a_restart() {
    let Setup { s, dir, tokens } = setup();
    assert_eq!(
        call(&s, "GET", "/api/v1/incidents", b"", Some(&tokens["vera"])).0,
        200
    );
    // The runbook: kubectl patch secret tapio-auth … remove /data/<user>.
    std::fs::remove_file(dir.path().join("vera")).expect("remove");
    let t = Instant::now();
    loop {
        let st = call(&s, "GET", "/api/v1/incidents", b"", Some(&tokens["vera"])).0;
        if st == 401 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "still accepted after 5 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Others are unaffected; a user added now works without a restart too.
    assert_eq!(
        call(&s, "GET", "/api/v1/incidents", b"", Some(&tokens["rita"])).0,
        200
    );
    let new = add_user(dir.path(), "nina", "viewer");
    s.wait_for(5, "the new user", |s| {
        call(s, "GET", "/api/v1/incidents", b"", Some(&new)).0 == 200
    });
}

fn audit(s: &Server, admin: &str) -> Vec<serde_json::Value> {
    let (st, body) = call(s, "GET", "/api/v1/audit?since=1h", b"", Some(admin));
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    v["records"].as_array().cloned().unwrap_or_default()
}

fn count(records: &[serde_json::Value], kind: &str, route: &str) -> usize {
    records
        .iter()
        .filter(|r| r["kind"] == kind && r["route"] == route)
        .count()
}

#[test]
fn audit_records_each_class_at_each_level_and_survive_a_restart() {
    let Setup {
        mut s,
        dir: _dir,
        tokens,
    } = setup();
    let admin = tokens["adam"].clone();
    // BASIC (the default): failures, denials, mutations; not reads.
    call(&s, "GET", "/api/v1/incidents", b"", None);
    call(
        &s,
        "POST",
        "/api/v1/incidents",
        br#"{"severity":"P4","title":"x"}"#,
        Some(&tokens["vera"]),
    );
    call(
        &s,
        "POST",
        "/api/v1/incidents",
        br#"{"severity":"P4","title":"y"}"#,
        Some(&tokens["rita"]),
    );
    call(&s, "GET", "/api/v1/agents", b"", Some(&tokens["vera"]));
    s.wait_for(5, "the basic records", |s| {
        count(&audit(s, &admin), "mutation", "/api/v1/incidents") == 1
    });
    let r = audit(&s, &admin);
    assert_eq!(count(&r, "auth_failure", "/api/v1/incidents"), 1, "{r:#?}");
    assert_eq!(count(&r, "denied", "/api/v1/incidents"), 1, "{r:#?}");
    let m = r
        .iter()
        .find(|x| x["kind"] == "mutation")
        .expect("mutation");
    assert_eq!(m["user"], "rita");
    assert_eq!(m["role"], "responder");
    assert_eq!(m["component"], "security-auditor");
    assert_eq!(m["status"], 201);
    assert_eq!(
        count(&r, "read", "/api/v1/agents"),
        0,
        "BASIC records no reads"
    );

    // VERBOSE, live: reads too.
    s.set_config("audit-level", "VERBOSE");
    s.wait_for(5, "a read record", |s| {
        call(s, "GET", "/api/v1/agents", b"", Some(&tokens["vera"]));
        count(&audit(s, &admin), "read", "/api/v1/agents") >= 1
    });
    // OFF: nothing new.
    s.set_config("audit-level", "OFF");
    std::thread::sleep(Duration::from_millis(1500));
    let before = audit(&s, &admin).len();
    call(&s, "GET", "/api/v1/incidents", b"", None);
    call(
        &s,
        "POST",
        "/api/v1/incidents",
        br#"{"severity":"P4","title":"z"}"#,
        Some(&tokens["rita"]),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(audit(&s, &admin).len(), before, "OFF records nothing");

    // Append-only in the store: still there after a kill -9 and restart.
    s.kill9();
    s.spawn();
    let after = audit(&s, &admin);
    assert!(after.len() >= before, "{} < {before}", after.len());
    // The runbook's evidence preservation.
    let file = s.data.path().join("security-events.jsonl");
    let out = std::process::Command::new(cli_bin())
        .args([
            "--server",
            &s.url(),
            "--token",
            &admin,
            "audit",
            "export",
            "--since",
            "24h",
            "-o",
        ])
        .arg(&file)
        .output()
        .expect("tapio audit export");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).expect("export");
    assert!(text.lines().count() >= before, "{text}");
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
    assert!(text.contains("\"kind\":\"auth_failure\""));
}

#[test]
fn rate_limits_answer_429_with_retry_after_and_blocked_addresses_are_refused_live() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = add_user(dir.path(), "rita", "responder");
    let s = Server::start(&[
        "--auth-dir",
        &dir.path().display().to_string(),
        "--rate-limit-token",
        "2",
    ]);
    // Burst of 4, then 429 with Retry-After.
    let mut limited = None;
    for _ in 0..10 {
        let mut r = agent()
            .get(format!("{}/api/v1/incidents", s.url()))
            .header("authorization", format!("Bearer {token}"))
            .call()
            .expect("GET");
        if r.status().as_u16() == 429 {
            let ra = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            limited = Some((ra, r.body_mut().read_to_string().unwrap_or_default()));
            break;
        }
    }
    let (ra, body) = limited.expect("a 429 within 10 quick requests at 2/s");
    assert!(
        ra.is_some_and(|v| v.parse::<u64>().is_ok_and(|n| n >= 1)),
        "Retry-After"
    );
    assert!(body.contains("rita"), "{body}");
    assert!(s.metric("tapio_rate_limited_total{scope=\"token\"}") >= 1.0);

    // Block this client by config, live; health stays reachable.
    std::thread::sleep(Duration::from_secs(2));
    s.set_config("blocked-clients", "203.0.113.0/24, 127.0.0.1");
    s.wait_for(5, "the block", |s| {
        call(s, "GET", "/api/v1/incidents", b"", Some(&token)).0 == 403
    });
    let (_, body) = call(&s, "GET", "/api/v1/incidents", b"", Some(&token));
    assert!(body.contains("blocked"), "{body}");
    assert_eq!(call(&s, "GET", "/health", b"", None).0, 200);
    s.set_config("blocked-clients", "203.0.113.0/24");
    s.wait_for(5, "the unblock", |s| {
        call(s, "GET", "/api/v1/incidents", b"", Some(&token)).0 == 200
    });
}
