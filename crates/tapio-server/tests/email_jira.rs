//! The email (SMTP) and Jira receivers end to end, against a local SMTP server and a local
//! Jira REST API started by the test: the message and the issue in the shapes the vendors
//! document, one per state change, threads and comments tied to the incident, and no
//! duplicate issue when Jira's answer to a create is lost.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tapio_testkit::fake_http::{self, Reply};
use tapio_testkit::{Server, open_p1, wait};

fn act(s: &Server, id: &str, what: &str) {
    let (st, v) = s.post(
        &format!("/api/v1/incidents/{id}/{what}"),
        br#"{"by":"alice"}"#,
        &[],
    );
    assert_eq!(st, 200, "{what}: {v}");
}

// ---------------------------------------------------------------------------------------
// A local SMTP server
// ---------------------------------------------------------------------------------------

#[derive(Default, Clone, Debug)]
struct Mail {
    auth: Option<String>,
    from: String,
    to: Vec<String>,
    data: String,
}

#[derive(Clone)]
struct Smtp {
    port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    sessions: Arc<Mutex<usize>>,
}

impl Smtp {
    /// `starttls`: whether EHLO offers STARTTLS (never completed here: the test of a server
    /// without it is what matters). `fail_first`: answer the first DATA with 451.
    fn start(offer_starttls: bool, fail_first: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let me = Self {
            port: listener.local_addr().expect("addr").port(),
            mails: Arc::default(),
            sessions: Arc::default(),
        };
        let m = me.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let n = {
                    let mut s = m.sessions.lock().expect("lock");
                    *s += 1;
                    *s
                };
                let fail = fail_first && n == 1;
                let _ = m.session(conn, offer_starttls, fail);
            }
        });
        me
    }

    fn session(&self, conn: TcpStream, offer_starttls: bool, fail: bool) -> std::io::Result<()> {
        let mut out = conn.try_clone()?;
        let mut r = BufReader::new(conn);
        let mut mail = Mail::default();
        write!(out, "220 mail.test ESMTP ready\r\n")?;
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let cmd = line.trim_end().to_owned();
            let upper = cmd.to_ascii_uppercase();
            if upper.starts_with("EHLO") {
                write!(out, "250-mail.test\r\n250-8BITMIME\r\n")?;
                if offer_starttls {
                    write!(out, "250-STARTTLS\r\n")?;
                }
                write!(out, "250 AUTH LOGIN PLAIN\r\n")?;
            } else if upper.starts_with("AUTH PLAIN ") {
                mail.auth = Some(cmd[11..].to_owned());
                write!(out, "235 2.7.0 ok\r\n")?;
            } else if upper.starts_with("MAIL FROM:") {
                mail.from = cmd[10..].to_owned();
                write!(out, "250 ok\r\n")?;
            } else if upper.starts_with("RCPT TO:") {
                let to = cmd[8..].to_owned();
                if to.contains("nobody@") {
                    write!(out, "550 5.1.1 no such user\r\n")?;
                } else {
                    mail.to.push(to);
                    write!(out, "250 ok\r\n")?;
                }
            } else if upper == "DATA" {
                write!(out, "354 go ahead\r\n")?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    // Undo dot-stuffing.
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                if fail {
                    write!(out, "451 4.3.0 try again later\r\n")?;
                } else {
                    mail.data = data;
                    self.mails.lock().expect("lock").push(mail.clone());
                    write!(out, "250 2.0.0 queued\r\n")?;
                }
            } else if upper == "QUIT" {
                write!(out, "221 bye\r\n")?;
                return Ok(());
            } else {
                write!(out, "502 unknown\r\n")?;
            }
        }
    }

    fn mails(&self) -> Vec<Mail> {
        self.mails.lock().expect("lock").clone()
    }
}

/// A header's value, unfolded, RFC 2047 encoded-words decoded.
fn header(data: &str, name: &str) -> Option<String> {
    let head = data.split("\r\n\r\n").next()?.replace("\r\n ", " ");
    let raw = head
        .split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))?;
    Some(
        raw.split(' ')
            .map(|w| {
                w.strip_prefix("=?UTF-8?B?")
                    .and_then(|w| w.strip_suffix("?="))
                    .map_or(w.to_owned(), |b| {
                        String::from_utf8(unbase64(b)).expect("UTF-8 in an encoded-word")
                    })
            })
            .collect::<Vec<_>>()
            .join(" ")
            // Adjacent encoded-words join without the folding space (RFC 2047 §6.2).
            .replace("  ", " "),
    )
}

fn unbase64(s: &str) -> Vec<u8> {
    const A: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.chars().take_while(|c| *c != '=') {
        bits = (bits << 6) | A.find(c).expect("base64") as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

#[test]
fn email_over_smtp_one_message_per_state_change_threaded_per_incident() {
    // The first delivery meets a 451: retried, not lost, not doubled.
    let smtp = Smtp::start(false, true);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("smtp-password"), "s3cret\n").expect("write");
    let cfg = dir.path().join("notify.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[dispatch]
backoff_min = "100ms"
backoff_max = "300ms"
timeout = "2s"

[[receiver]]
name = "oncall-email"
kind = "email"
url = "smtp://127.0.0.1:{}"
tls = "none"
from = "Tapio <tapio@example.com>"
to = ["oncall@example.com", "Nobody <nobody@example.com>", "sre-leads@example.com"]
username = "tapio"
password_file = "{}"

[[route]]
receivers = ["oncall-email"]
severity = ["P1", "P2"]
"#,
            smtp.port,
            dir.path().join("smtp-password").display()
        ),
    )
    .expect("write config");
    let s = Server::start(&["--notify", &cfg.display().to_string()]);
    let id = open_p1(&s);
    wait("the Initial email", 15, || smtp.mails().len() == 1);
    let first = &smtp.mails()[0];
    // AUTH PLAIN: "\0user\0password", base64.
    assert_eq!(first.auth.as_deref(), Some("AHRhcGlvAHMzY3JldA=="));
    assert_eq!(first.from, "<tapio@example.com> BODY=8BITMIME");
    // The refused recipient does not stop delivery to the others.
    assert_eq!(
        first.to,
        ["<oncall@example.com>", "<sre-leads@example.com>"]
    );
    let d = &first.data;
    let subject = header(d, "Subject").expect("Subject");
    assert!(subject.starts_with("[P1] "), "{subject}");
    let thread = format!("<tapio.{id}@example.com>");
    assert_eq!(header(d, "Message-ID"), Some(thread.clone()), "{d}");
    assert_eq!(
        header(d, "Content-Type"),
        Some("text/plain; charset=utf-8".into())
    );
    assert!(
        d.contains("INCIDENT"),
        "the runbook's Initial template: {d}"
    );
    assert_eq!(
        *smtp.sessions.lock().expect("lock"),
        2,
        "one 451, one retry"
    );

    act(&s, &id, "ack");
    wait("the Update email", 10, || smtp.mails().len() == 2);
    act(&s, &id, "resolve");
    wait("the Resolution email", 10, || smtp.mails().len() == 3);
    for m in &smtp.mails()[1..] {
        assert_eq!(header(&m.data, "In-Reply-To"), Some(thread.clone()));
        assert_eq!(header(&m.data, "References"), Some(thread.clone()));
        assert_ne!(header(&m.data, "Message-ID"), Some(thread.clone()));
    }
    assert!(
        smtp.mails()[2].data.contains("RESOLVED"),
        "{}",
        smtp.mails()[2].data
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(smtp.mails().len(), 3, "one email per state change");
    let m = s.get("/metrics").expect("metrics").1;
    assert!(
        m.contains(r#"tapio_notifications_total{receiver="oncall-email",result="retry"} 1"#),
        "{m}"
    );
}

#[test]
fn email_never_goes_out_in_plain_text_unless_asked_then_the_fallback_hears() {
    // The server offers no STARTTLS; the receiver (default: STARTTLS required) must refuse
    // to send the credentials and the incident in the clear, and give up at once.
    let smtp = Smtp::start(false, false);
    let got = Arc::new(Mutex::new(Vec::<String>::new()));
    let g = got.clone();
    let hook_port = fake_http::serve(move |req| {
        g.lock().expect("lock").push(req.body_text());
        Some(Reply::json(200, "{}"))
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("notify.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[dispatch]
backoff_min = "100ms"
timeout = "2s"
[[receiver]]
name = "oncall-email"
kind = "email"
url = "smtp://127.0.0.1:{}"
from = "tapio@example.com"
to = ["oncall@example.com"]
fallback = "ops-webhook"
[[receiver]]
name = "ops-webhook"
kind = "webhook"
url = "http://127.0.0.1:{hook_port}/h"
[[route]]
receivers = ["oncall-email"]
"#,
            smtp.port
        ),
    )
    .expect("write config");
    let s = Server::start(&["--notify", &cfg.display().to_string()]);
    open_p1(&s);
    wait("the fallback", 10, || !got.lock().expect("lock").is_empty());
    assert!(smtp.mails().is_empty());
    assert_eq!(*smtp.sessions.lock().expect("lock"), 1, "no retries: final");
    let m = s.get("/metrics").expect("metrics").1;
    assert!(
        m.contains(r#"tapio_notifications_total{receiver="oncall-email",result="failed"} 1"#),
        "{m}"
    );
}

// ---------------------------------------------------------------------------------------
// A local Jira REST API
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct JiraState {
    /// (key, create body)
    issues: Vec<(String, serde_json::Value)>,
    /// (key, comment body)
    comments: Vec<(String, serde_json::Value)>,
    auth: Vec<String>,
    lose_first_create_answer: bool,
}

fn jira() -> (u16, Arc<Mutex<JiraState>>) {
    let state = Arc::new(Mutex::new(JiraState {
        lose_first_create_answer: true,
        ..JiraState::default()
    }));
    let st = state.clone();
    let port = fake_http::serve(move |req| {
        let (method, path, body) = (req.method.as_str(), req.path.as_str(), req.body_text());
        let mut s = st.lock().expect("lock");
        if let Some(a) = req.header("authorization") {
            s.auth.push(a.to_owned());
        }
        let (status, answer) = if method == "GET" && path.starts_with("/rest/api/2/search/jql?") {
            // Like Jira Data Center: only the classic search exists here.
            (404, r#"{"errorMessages":["not found"]}"#.to_owned())
        } else if method == "GET" && path.starts_with("/rest/api/2/search?") {
            let found: Vec<serde_json::Value> = s
                .issues
                .iter()
                .filter(|(_, b)| {
                    b["fields"]["labels"].as_array().is_some_and(|ls| {
                        ls.iter().any(|l| {
                            l.as_str()
                                .is_some_and(|l| path.contains(&format!("%22{l}%22")))
                        })
                    })
                })
                .map(|(k, _)| serde_json::json!({"key": k}))
                .collect();
            (200, serde_json::json!({"issues": found}).to_string())
        } else if method == "POST" && path == "/rest/api/2/issue" {
            let key = format!("OPS-{}", s.issues.len() + 1);
            s.issues
                .push((key.clone(), serde_json::from_str(&body).unwrap_or_default()));
            if s.lose_first_create_answer {
                // Created, but the answer never arrives.
                s.lose_first_create_answer = false;
                return None;
            }
            (
                201,
                serde_json::json!({"key": key, "id": "10001"}).to_string(),
            )
        } else if method == "POST"
            && let Some(key) = path
                .strip_prefix("/rest/api/2/issue/")
                .and_then(|p| p.strip_suffix("/comment"))
        {
            s.comments.push((
                key.to_owned(),
                serde_json::from_str(&body).unwrap_or_default(),
            ));
            (201, r#"{"id":"1"}"#.to_owned())
        } else {
            (404, "{}".to_owned())
        };
        drop(s);
        Some(Reply::json(status, answer))
    });
    (port, state)
}

#[test]
fn jira_one_issue_per_p1_comments_for_changes_and_no_duplicate_after_a_lost_answer() {
    let (port, state) = jira();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("jira-token"), "t0ken\n").expect("write");
    let cfg = dir.path().join("notify.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[dispatch]
backoff_min = "100ms"
backoff_max = "300ms"
timeout = "1s"
[[receiver]]
name = "jira-ops"
kind = "jira"
url = "http://127.0.0.1:{port}/"
project = "OPS"
issue_type = "Incident"
username = "sre-bot@example.com"
token_file = "{}"
[[route]]
receivers = ["jira-ops"]
"#,
            dir.path().join("jira-token").display()
        ),
    )
    .expect("write config");
    let s = Server::start(&["--notify", &cfg.display().to_string()]);
    let id = open_p1(&s);
    // The first create's answer is lost; the retry finds the issue by its label.
    wait("the Jira issue", 15, || {
        s.get("/metrics")
            .expect("metrics")
            .1
            .contains(r#"tapio_notifications_total{receiver="jira-ops",result="delivered"} 1"#)
    });
    {
        let st = state.lock().expect("lock");
        assert_eq!(st.issues.len(), 1, "exactly one issue despite the retry");
        let f = &st.issues[0].1["fields"];
        assert_eq!(f["project"]["key"], "OPS");
        assert_eq!(f["issuetype"]["name"], "Incident");
        assert!(
            f["summary"]
                .as_str()
                .is_some_and(|x| x.starts_with("[P1] ")),
            "{f}"
        );
        let labels: Vec<&str> = f["labels"]
            .as_array()
            .expect("labels")
            .iter()
            .filter_map(|l| l.as_str())
            .collect();
        assert!(
            labels.contains(&format!("tapio-{id}").as_str()),
            "{labels:?}"
        );
        assert!(
            f["description"]
                .as_str()
                .is_some_and(|d| d.contains("*Severity:* P1")),
            "{f}"
        );
        // Basic auth: account email and API token.
        assert!(
            st.auth
                .iter()
                .all(|a| a == "Basic c3JlLWJvdEBleGFtcGxlLmNvbTp0MGtlbg=="),
            "{:?}",
            st.auth
        );
    }
    act(&s, &id, "ack");
    act(&s, &id, "resolve");
    wait("two comments", 10, || {
        state.lock().expect("lock").comments.len() == 2
    });
    std::thread::sleep(Duration::from_secs(1));
    let st = state.lock().expect("lock");
    assert_eq!(st.issues.len(), 1);
    assert_eq!(st.comments.len(), 2);
    assert!(st.comments.iter().all(|(k, _)| k == "OPS-1"));
    assert!(
        st.comments[1].1["body"]
            .as_str()
            .is_some_and(|b| b.contains("RESOLVED")),
        "{:?}",
        st.comments[1]
    );
}
