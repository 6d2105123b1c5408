//! Issue 15, items 3, 5, 6 and 7 against a real server:
//! - people's actions are applied exactly once and answered honestly: a retried declare
//!   with the same `Idempotency-Key` creates one incident, a key reused for another body
//!   is refused 422, and an action made while the correlator is backlogged is answered
//!   with its result or 202 + an operation to follow (never a false 503), once;
//! - a mutation whose client resets the connection right after sending it is audited;
//! - a 15 s flood without a valid token gets 429s, costs a few audit rows (with counts),
//!   and neither a valid agent nor a responder is refused or loses a record meanwhile;
//! - `tapio audit export` pages through more than 50,000 records.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tapio_testkit::{Server, add_user, http_agent, oom_batch};

fn agent() -> ureq::Agent {
    http_agent(Duration::from_secs(30))
}

/// POST with headers: status, headers of interest, JSON (or text) body.
fn post(
    s: &Server,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, Option<String>, serde_json::Value) {
    let mut req = agent()
        .post(format!("{}{path}", s.url()))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut r = req.send(body.as_bytes()).expect("POST");
    let status = r.status().as_u16();
    let replayed = r
        .headers()
        .get("idempotent-replayed")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = r.body_mut().read_to_string().unwrap_or_default();
    let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, replayed, v)
}

fn get(s: &Server, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = agent().get(format!("{}{path}", s.url()));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let mut r = req.call().expect("GET");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// Every audit record since the start, paged (admin token when authentication is on).
fn audit_records(s: &Server, token: Option<&str>) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let (st, v) = get(
            s,
            &format!("/api/v1/audit?since=1h&after={after}&limit=5000"),
            token,
        );
        assert_eq!(st, 200, "{v}");
        out.extend(v["records"].as_array().cloned().unwrap_or_default());
        if v["more"] != true {
            return out;
        }
        after = v["next"].as_i64().expect("next");
    }
}

fn declare_body(title: &str) -> String {
    format!(r#"{{"title":"{title}","severity":"P3","description":"checkout is slow"}}"#)
}

/// Declare an incident; its id (following a 202 to its operation).
fn declare(s: &Server, title: &str) -> String {
    let (st, _, v) = post(s, "/api/v1/incidents", &declare_body(title), &[]);
    match st {
        201 => v["id"].as_str().expect("id").to_owned(),
        202 => {
            let location = v["location"].as_str().expect("location").to_owned();
            let mut id = String::new();
            s.wait_for(60, "the declare", |s| {
                let (_, op) = get(s, &location, None);
                id = op["result"]["id"].as_str().unwrap_or("").to_owned();
                op["state"] == "done"
            });
            id
        }
        _ => panic!("declare: {st} {v}"),
    }
}

fn notes_with(inc: &serde_json::Value, text: &str) -> usize {
    inc["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e.to_string().contains(text))
        .count()
}

#[test]
fn a_retried_declare_with_the_same_key_creates_one_incident_and_a_reused_key_is_refused() {
    let s = Server::start(&[]);
    let body = declare_body("Checkout slow for EU customers");
    let key = [("idempotency-key", "declare-7f3a")];
    let (st1, replay1, first) = post(&s, "/api/v1/incidents", &body, &key);
    assert_eq!(st1, 201, "{first}");
    assert_eq!(replay1, None);
    // The client did not see the answer and sends the same request again.
    let (st2, replay2, second) = post(&s, "/api/v1/incidents", &body, &key);
    assert_eq!(st2, 201, "the first answer again: {second}");
    assert_eq!(replay2.as_deref(), Some("true"));
    assert_eq!(first["id"], second["id"], "the same incident");
    let same: Vec<_> = s
        .incidents("?limit=1000")
        .into_iter()
        .filter(|i| i["title"] == "Checkout slow for EU customers")
        .collect();
    assert_eq!(same.len(), 1, "declared once: {same:?}");
    // The same key for another request: refused, naming the key.
    let (st3, _, err) = post(
        &s,
        "/api/v1/incidents",
        &declare_body("Another thing"),
        &key,
    );
    assert_eq!(st3, 422, "{err}");
    assert!(err.to_string().contains("declare-7f3a"), "{err}");
    // A bad key is named.
    let long = "k".repeat(300);
    let (st4, _, err) = post(
        &s,
        "/api/v1/incidents",
        &body,
        &[("idempotency-key", long.as_str())],
    );
    assert_eq!(st4, 400, "{err}");
    assert!(err.to_string().contains("Idempotency-Key"), "{err}");
    assert!(
        s.metric("tapio_actions_total") >= 2.0,
        "replay and mismatch counted"
    );
}

#[test]
fn an_action_while_the_correlator_is_backlogged_is_applied_once_and_answered_honestly() {
    // The server waits 1 ms for the correlator's answer: every action outlives it, as
    // under a real backlog (the default is 10 s).
    let s = Server::start(&["--action-wait", "1ms"]);
    let id = declare(&s, "Payments down");
    // A backlog: thousands of events for the correlator, sent as fast as they are taken.
    for seq in 1..=20 {
        let (st, _, v) = post(
            &s,
            "/api/v1/evidence",
            &oom_batch("node-a", seq, &format!("w{seq}"), 500),
            &[],
        );
        assert_eq!(st, 200, "{v}");
    }
    let path = format!("/api/v1/incidents/{id}/notes");
    let note = r#"{"text":"restarted the payments pods"}"#;
    let key = [("idempotency-key", "note-1")];
    let t = Instant::now();
    let (st, _, answer) = post(&s, &path, note, &key);
    assert!(t.elapsed() < Duration::from_secs(10), "answered in time");
    assert!(
        st == 200 || st == 202,
        "the result or 202, never a 503: {st} {answer}"
    );
    if st == 202 {
        let location = answer["location"].as_str().expect("location").to_owned();
        let mut done = serde_json::Value::Null;
        s.wait_for(120, "the operation to be done", |s| {
            let (_, v) = get(s, &location, None);
            done = v.clone();
            v["state"] == "done"
        });
        assert_eq!(done["status"], 200, "{done}");
        assert_eq!(done["result"]["id"].as_str(), Some(id.as_str()));
    }
    // The client retries (it never saw an answer): the first answer, nothing twice.
    let (st2, replayed, _) = post(&s, &path, note, &key);
    assert_eq!(st2, st);
    assert_eq!(replayed.as_deref(), Some("true"));
    s.wait_for(120, "the note", |s| {
        let (_, inc) = get(s, &format!("/api/v1/incidents/{id}"), None);
        notes_with(&inc, "restarted the payments pods") >= 1
    });
    // Once the backlog is worked off, still exactly one.
    s.wait_for(300, "the backlog", |s| {
        s.metric("tapio_queue_depth{queue=\"correlator\"}") == 0.0
    });
    let (_, inc) = get(&s, &format!("/api/v1/incidents/{id}"), None);
    assert_eq!(notes_with(&inc, "restarted the payments pods"), 1, "{inc}");
    // The audit says what the client was told.
    s.wait_for(10, "both audit records", |s| {
        audit_records(s, None)
            .iter()
            .filter(|r| r["path"] == path.as_str())
            .count()
            >= 2
    });
    let recs = audit_records(&s, None);
    let noted: Vec<_> = recs.iter().filter(|r| r["path"] == path.as_str()).collect();
    assert_eq!(noted.len(), 2, "{noted:?}");
    assert!(noted.iter().all(|r| r["status"] == st), "{noted:?}");
    // The CLI follows a 202 to the result (and sends its own key).
    let out = s.cli(&[
        "--timeout",
        "60s",
        "incidents",
        "note",
        &id,
        "rolled back 1.4.2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("noted on"));
    let (_, inc) = get(&s, &format!("/api/v1/incidents/{id}"), None);
    assert_eq!(notes_with(&inc, "rolled back 1.4.2"), 1, "{inc}");
}

/// Send `request`, wait `delay` (the server is then reading it, or carrying it out) and
/// reset the connection (RST) before any answer is read.
fn send_and_reset(port: u16, request: &[u8], delay: Duration) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut std = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        std.write_all(request).expect("write");
        std::thread::sleep(delay);
        std.set_nonblocking(true).expect("nonblocking");
        let t = tokio::net::TcpStream::from_std(std).expect("tokio stream");
        t.set_zero_linger().expect("SO_LINGER 0");
        drop(t); // close with SO_LINGER 0: RST
    });
}

#[test]
fn a_mutation_whose_client_resets_the_connection_is_still_audited() {
    let s = Server::start(&[]);
    let id = declare(&s, "Search broken");
    let path = format!("/api/v1/incidents/{id}/notes");
    for i in 0..50 {
        let body = format!(r#"{{"text":"reset-note-{i}"}}"#);
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        send_and_reset(s.port, req.as_bytes(), Duration::from_millis(i % 10));
    }
    // Let whatever was started finish, then compare.
    std::thread::sleep(Duration::from_secs(3));
    let (_, inc) = get(&s, &format!("/api/v1/incidents/{id}"), None);
    let applied: Vec<usize> = (0..50)
        .filter(|i| notes_with(&inc, &format!("\"reset-note-{i}\"")) > 0)
        .collect();
    eprintln!(
        "{} of 50 reset notes applied, {} audited as applied so far",
        applied.len(),
        audit_records(&s, None)
            .iter()
            .filter(|r| r["path"] == path.as_str() && r["status"] == 200)
            .count()
    );
    s.wait_for(10, "the audit writer", |s| {
        audit_records(s, None)
            .iter()
            .filter(|r| r["path"] == path.as_str() && r["status"] == 200)
            .count()
            >= applied.len()
    });
    let audited = audit_records(&s, None)
        .iter()
        .filter(|r| r["path"] == path.as_str() && r["status"] == 200)
        .count();
    eprintln!(
        "{} of 50 reset notes applied, {audited} audited as applied",
        applied.len()
    );
    assert_eq!(
        audited,
        applied.len(),
        "every applied note has its audit record"
    );
}

#[test]
fn an_unauthenticated_flood_gets_429s_and_a_bounded_audit_without_losing_genuine_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rita = add_user(dir.path(), "rita", "responder");
    let adam = add_user(dir.path(), "adam", "admin");
    let node = add_user(dir.path(), "node-agent", "agent");
    let s = Server::start(&["--auth-dir", &dir.path().display().to_string()]);
    let (st, _, inc) = post(
        &s,
        "/api/v1/incidents",
        &declare_body("Login errors"),
        &[("authorization", &format!("Bearer {rita}"))],
    );
    assert_eq!(st, 201, "{inc}");
    let id = inc["id"].as_str().expect("id").to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let counts: Arc<[AtomicU64; 3]> = Arc::new(Default::default()); // 401, 429, other
    let url = s.url();
    let flooders: Vec<_> = (0..2)
        .map(|t| {
            let (stop, counts, url) = (stop.clone(), counts.clone(), url.clone());
            std::thread::spawn(move || {
                let a = agent();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let path = if (i + t).is_multiple_of(2) {
                        "/api/v1/evidence"
                    } else {
                        "/api/v1/incidents"
                    };
                    let mut req = a.post(format!("{url}{path}"));
                    if !i.is_multiple_of(3) {
                        req = req.header("authorization", "Bearer tapio_not_a_real_token");
                    }
                    let Ok(r) = req.send(b"{}".as_slice()) else {
                        continue;
                    };
                    let slot = match r.status().as_u16() {
                        401 => 0,
                        429 => 1,
                        _ => 2,
                    };
                    counts[slot].fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Meanwhile a responder works the incident and an agent sends evidence.
    let started = Instant::now();
    let mut notes = 0;
    let mut agent_refused = 0;
    let mut seq = 0;
    while started.elapsed() < Duration::from_secs(15) {
        let (st, _, v) = post(
            &s,
            &format!("/api/v1/incidents/{id}/notes"),
            &format!(r#"{{"text":"flood-note-{notes}"}}"#),
            &[("authorization", &format!("Bearer {rita}"))],
        );
        assert_eq!(st, 200, "the responder is served during the flood: {v}");
        notes += 1;
        seq += 1;
        let (st, _, v) = post(
            &s,
            "/api/v1/evidence",
            &oom_batch("node-b", seq, "cart", 2),
            &[("authorization", &format!("Bearer {node}"))],
        );
        if st != 200 {
            agent_refused += 1;
            eprintln!("agent refused: {st} {v}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        f.join().expect("flooder");
    }
    let (n401, n429, other) = (
        counts[0].load(Ordering::Relaxed),
        counts[1].load(Ordering::Relaxed),
        counts[2].load(Ordering::Relaxed),
    );
    eprintln!("flood: {n401} × 401, {n429} × 429, {other} other; {notes} notes");
    assert_eq!(agent_refused, 0, "a valid agent is never refused");
    assert!(
        n429 > 10 * n401.max(1) / 2,
        "mostly 429s: {n401} 401, {n429} 429"
    );
    assert_eq!(other, 0);
    // The open window's summary is written when it ends.
    std::thread::sleep(Duration::from_secs(12));
    let recs = audit_records(&s, Some(&adam));
    let failures: Vec<_> = recs
        .iter()
        .filter(|r| r["kind"] == "auth_failure")
        .collect();
    let counted: u64 = failures
        .iter()
        .map(|r| r["count"].as_u64().unwrap_or(1))
        .sum();
    eprintln!(
        "{} audit rows in all, {} for authentication failures standing for {counted}",
        recs.len(),
        failures.len()
    );
    assert!(failures.len() <= 10, "a few rows: {}", failures.len());
    assert!(
        counted >= n401 + n429,
        "every failure counted: {counted} < {}",
        n401 + n429
    );
    let noted = recs
        .iter()
        .filter(|r| {
            r["kind"] == "mutation"
                && r["user"] == "rita"
                && r["route"] == "/api/v1/incidents/{id}/notes"
        })
        .count();
    assert_eq!(noted, notes, "every genuine record is there");
    assert_eq!(s.metric("tapio_audit_dropped_total"), 0.0);
    assert!(s.metric("tapio_rate_limited_total{scope=\"unauthenticated\"}") >= n429 as f64);
    assert!(s.metric("tapio_audit_auth_failures_folded_total") > 0.0);
}

#[test]
fn audit_export_pages_through_more_than_50k_records() {
    let mut s = Server::start(&[]);
    s.stop();
    // 60,000 records straight into the store (as a busy cluster's heartbeats make them).
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            use tapio_store::Store;
            let store = tapio_store::sqlite::SqliteStore::open(
                &s.data.path().join("db"),
                tapio_store::sqlite::Durability::Normal,
            )
            .expect("open store");
            let now = chrono::Utc::now();
            for chunk in 0..60 {
                let rows: Vec<_> = (0..1000)
                    .map(|i| {
                        let n = chunk * 1000 + i;
                        (
                            now,
                            format!(
                                r#"{{"at":"{}","component":"security-auditor","kind":"mutation","user":"node-agent","role":"agent","client":"10.0.3.{}","method":"POST","route":"/api/v1/agents/heartbeat","path":"/api/v1/agents/heartbeat","status":204,"detail":"record {n:06} padding padding padding padding padding padding padding"}}"#,
                                now.to_rfc3339(),
                                n % 250
                            ),
                        )
                    })
                    .collect();
                store.audit_append(rows).await.expect("append");
            }
        });
    }
    s.spawn();
    let out_file = s.data.path().join("audit.jsonl");
    let out = s.cli(&[
        "--timeout",
        "30s",
        "audit",
        "export",
        "--since",
        "1h",
        "--output",
        &out_file.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&out_file).expect("export");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        text.len() > 10 << 20,
        "more than the old 10 MiB answer: {}",
        text.len()
    );
    let mine = lines.iter().filter(|l| l.contains("padding")).count();
    assert_eq!(mine, 60_000, "every record, once");
    assert!(
        lines
            .iter()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
    // In order: record numbers ascend.
    let nums: Vec<u32> = lines
        .iter()
        .filter_map(|l| l.split("record ").nth(1)?.get(..6)?.parse().ok())
        .collect();
    assert!(nums.windows(2).all(|w| w[0] < w[1]), "oldest first");
    // The API pages: `next` and `more`.
    let (st, page) = get(&s, "/api/v1/audit?since=1h&limit=1000", None);
    assert_eq!(st, 200);
    assert_eq!(page["count"], 1000);
    assert_eq!(page["more"], true);
    let next = page["next"].as_i64().expect("next");
    let (_, page2) = get(
        &s,
        &format!("/api/v1/audit?since=1h&limit=1000&after={next}"),
        None,
    );
    assert_eq!(page2["count"], 1000);
    assert!(page2["records"][0]["pos"].as_i64().expect("pos") > next);
    let (st, bad) = get(&s, "/api/v1/audit?after=-3", None);
    assert_eq!(st, 400);
    assert!(bad.to_string().contains("after"), "{bad}");
}

#[test]
fn audit_retention_deletes_by_age_and_count_and_nothing_else_may_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        use tapio_store::Store;
        let store = tapio_store::sqlite::SqliteStore::open(
            dir.path(),
            tapio_store::sqlite::Durability::Normal,
        )
        .expect("open store");
        let now = chrono::Utc::now();
        let old = now - chrono::Duration::days(40);
        let rows: Vec<_> = (0..30)
            .map(|i| {
                let at = if i < 10 { old } else { now };
                (at, format!(r#"{{"n":{i}}}"#))
            })
            .collect();
        store.audit_append(rows).await.expect("append");
        // 30 days, at most 15: the 10 old ones go, then the oldest 5 of the rest.
        let deleted = store
            .audit_prune(now - chrono::Duration::days(30), 15)
            .await
            .expect("prune");
        assert_eq!(deleted, 15);
        let left = store
            .audit_page(old - chrono::Duration::days(1), 0, 100)
            .await
            .expect("page");
        let ns: Vec<String> = left.iter().map(|(_, b)| b.clone()).collect();
        assert_eq!(
            ns.first().map(String::as_str),
            Some(r#"{"n":15}"#),
            "{ns:?}"
        );
        assert_eq!(ns.len(), 15);
        // Paging: after the 5th position, the rest.
        let after = left[4].0;
        let rest = store
            .audit_page(old - chrono::Duration::days(1), after, 100)
            .await
            .expect("page");
        assert_eq!(rest.len(), 10);
    });
    drop(rt);
    // The table still refuses any other deletion.
    let conn = rusqlite_delete(dir.path());
    assert!(conn.contains("append-only"), "{conn}");
}

/// Try to delete an audit row with the sqlite3 shell; its error text.
fn rusqlite_delete(dir: &std::path::Path) -> String {
    let Some(sqlite3) = tapio_testkit::which("sqlite3") else {
        return "append-only (sqlite3 not installed; not checked)".into();
    };
    // The store's writer thread may still be closing the database it held: retry while
    // SQLite says "locked" (that is not the answer this test is about).
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let out = std::process::Command::new(&sqlite3)
            .arg(dir.join("tapio.db"))
            .arg(".timeout 2000")
            .arg("DELETE FROM audit;")
            .output()
            .expect("sqlite3");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if !err.contains("database is locked") || std::time::Instant::now() > until {
            return err;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
