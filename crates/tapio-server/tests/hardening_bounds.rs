//! Issue 15, bounded everything: heartbeats cannot exhaust memory, slow and idle clients
//! cannot take the server off the air (header-read timeout, connection cap below the file
//! limit, body-read timeout, bounded shutdown), a full disk fails `/ready`, and public
//! `/health` shows statuses only.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tapio_testkit::server::ServerOptions;
use tapio_testkit::{Server, add_user, http_agent};

fn agent() -> ureq::Agent {
    http_agent(Duration::from_secs(10))
}

fn get(url: &str, token: Option<&str>) -> Result<(u16, String), ureq::Error> {
    let mut req = agent().get(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut r = req.call()?;
    let status = r.status().as_u16();
    Ok((status, r.body_mut().read_to_string()?))
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

fn heartbeat(agent: &str, last_error: &str) -> String {
    serde_json::json!({
        "agent_id": agent, "node": agent, "version": "0.1.0",
        "started_at": "2026-01-01T00:00:00Z", "sent_at": "2099-01-01T00:00:00Z",
        "kernel": {"kernel_release": "6.1", "btf_present": true, "bpf_allowed": true, "programs": []},
        "spool_pending_events": 0, "spool_bytes": 0, "last_error": last_error,
    })
    .to_string()
}

/// "/health answers 200 within `secs`" (retrying: a connection may be closed under load).
fn health_answers(url: &str, secs: u64) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if let Ok((200, _)) = get(&format!("{url}/health"), None) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn huge_heartbeats_are_refused_and_kept_ones_are_bounded() {
    let s = Server::start(&["--kube", "off"]);
    let pid = s.child.as_ref().expect("child").id();
    let before = rss_kib(pid);
    let big = heartbeat("node-big", &"e".repeat(4_000_000));
    for _ in 0..100 {
        let r = agent()
            .post(format!("{}/api/v1/agents/heartbeat", s.url()))
            .send(big.as_bytes());
        // Refused with 413 (or the connection closed while the client was still sending).
        if let Ok(mut r) = r {
            let status = r.status().as_u16();
            let body = r.body_mut().read_to_string().unwrap_or_default();
            assert_eq!(status, 413, "{body}");
            assert!(body.contains("65536"), "{body}");
        }
    }
    // Just under the body cap: kept, but last_error cut to its bound with a marker.
    for i in 0..100 {
        let (status, v) = s.post(
            "/api/v1/agents/heartbeat",
            heartbeat(&format!("node-{i:03}"), &"e".repeat(60_000)).as_bytes(),
            &[],
        );
        assert_eq!(status, 204, "{v}");
    }
    let t = Instant::now();
    let v = s.get_json("/api/v1/agents?limit=50");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(v["count"], 50);
    assert_eq!(v["next"], "node-049");
    let e = v["agents"][0]["heartbeat"]["last_error"]
        .as_str()
        .expect("kept");
    assert!(
        e.len() < 1100 && e.ends_with("…[cut: 60000 bytes]"),
        "{}",
        e.len()
    );
    let page2 = s.get_json("/api/v1/agents?limit=50&after=node-049");
    assert_eq!(page2["agents"][0]["agent_id"], "node-050");
    assert!(page2["next"].is_null() || page2["count"] == 50);
    assert!(s.metric("tapio_input_refused_total") >= 200.0);
    let grown_mib = rss_kib(pid).saturating_sub(before) / 1024;
    println!("RSS growth after 100 × 4 MB and 100 × 60 kB heartbeats: {grown_mib} MiB");
    assert!(grown_mib < 50, "RSS grew {grown_mib} MiB");
    assert!(health_answers(&s.url(), 5));
    // `tapio check --all` pages through every agent.
    let out = s.cli(&["check", "--all", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["agents"].as_array().map(Vec::len), Some(100), "{v}");
}

#[test]
fn public_health_shows_statuses_only_and_a_viewer_token_shows_details() {
    let auth = tempfile::tempdir().expect("tempdir");
    let viewer = add_user(auth.path(), "vera", "viewer");
    let agent_token = add_user(auth.path(), "node-agent", "agent");
    let s = Server::start(&[
        "--kube",
        "off",
        "--auth-dir",
        &auth.path().display().to_string(),
    ]);
    let (status, body) = s.post(
        "/api/v1/agents/heartbeat",
        heartbeat("secret-node-7", "").as_bytes(),
        &[("Authorization", &format!("Bearer {agent_token}"))],
    );
    assert_eq!(status, 204, "{body}");
    let (code, public) = get(&format!("{}/health", s.url()), None).expect("health");
    assert_eq!(code, 200);
    let data_dir = s.data.path().display().to_string();
    for secret in [
        data_dir.as_str(),
        "secret-node-7",
        "\"details\"",
        "config_dir",
    ] {
        assert!(
            !public.contains(secret),
            "public /health shows {secret}: {public}"
        );
    }
    let v: serde_json::Value = serde_json::from_str(&public).expect("json");
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["components"]["store"]["status"], "healthy");
    // An agent token is no viewer: still the public form.
    let (_, as_agent) = get(&format!("{}/health", s.url()), Some(&agent_token)).expect("health");
    assert!(!as_agent.contains("\"details\""), "{as_agent}");
    let (code, full) = get(&format!("{}/health", s.url()), Some(&viewer)).expect("health");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&full).expect("json");
    assert!(
        v["components"]["config"]["details"]["config_dir"].is_string(),
        "{full}"
    );
    // `tapio check` with a token: the details; without: told it needs one.
    let out = s.cli(&["--token", &viewer, "check", "--all"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("HEALTHY") || text.contains("healthy"),
        "{text}"
    );
    assert!(text.contains("config_dir"), "{text}");
    let out = s.cli(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("token"), "{text}");
}

#[test]
fn slowloris_connections_are_closed_and_health_keeps_answering() {
    let s = Server::start(&["--kube", "off", "--header-read-timeout", "3s"]);
    let addr = format!("127.0.0.1:{}", s.port);
    let mut slow: Vec<TcpStream> = (0..500)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    assert!(slow.len() >= 450, "{}", slow.len());
    for c in &mut slow {
        let _ = c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n");
        let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    }
    let t = Instant::now();
    assert!(
        health_answers(&s.url(), 5),
        "/health did not answer beside 500 slow clients"
    );
    println!(
        "/health beside 500 slowloris connections: {:?}",
        t.elapsed()
    );
    // Keep trickling; the server closes them at the header-read timeout all the same.
    for _ in 0..2 {
        std::thread::sleep(Duration::from_secs(1));
        for c in &mut slow {
            let _ = c.write_all(b"X");
        }
    }
    let mut closed = 0;
    for c in &mut slow {
        let mut buf = [0u8; 512];
        // EOF (or a reset) = closed by the server; a timeout would mean still open.
        match c.read(&mut buf) {
            Ok(_) => closed += 1,
            Err(e)
                if e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut =>
            {
                closed += 1
            }
            Err(_) => {}
        }
    }
    assert_eq!(closed, slow.len(), "slow connections left open");
    assert!(s.metric("tapio_input_refused_total") >= 450.0);
}

#[test]
fn idle_connections_at_the_file_limit_leave_health_answering() {
    let mut s = Server::start_with(ServerOptions {
        args: vec!["--kube".into(), "off".into()],
        wrapper: vec!["prlimit".into(), "--nofile=256:256".into(), "--".into()],
        // Started means /health answers 200 (as `health_answers` asks below).
        ready: Some(Box::new(|url: &str| {
            matches!(get(&format!("{url}/health"), None), Ok((200, _)))
        })),
        ..ServerOptions::default()
    });
    let port = s.port;
    let url = s.url();
    let idle: Vec<TcpStream> = (0..600)
        .filter_map(|_| TcpStream::connect(format!("127.0.0.1:{port}")).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let t = Instant::now();
    let ok = health_answers(&url, 10);
    let took = t.elapsed();
    let metrics = get(&format!("{url}/metrics"), None)
        .map(|r| r.1)
        .unwrap_or_default();
    s.kill9();
    drop(idle);
    assert!(
        ok,
        "/health did not answer with 600 idle connections at a 256-file limit"
    );
    println!("/health with 600 idle connections at nofile=256: {took:?}");
    assert!(
        metrics.contains("reason=\"connection_limit\"")
            || metrics.contains("reason=\"connection_reaped\""),
        "{metrics}"
    );
}

#[test]
fn sigterm_with_a_partial_request_exits_promptly() {
    let mut s = Server::start(&["--kube", "off", "--header-read-timeout", "60s"]);
    let mut c = TcpStream::connect(format!("127.0.0.1:{}", s.port)).expect("connect");
    c.write_all(b"GET /health HTTP/1.1\r\nHo").expect("write");
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    s.stop();
    println!(
        "SIGTERM to exit with a partial-header connection: {:?}",
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
}

#[test]
fn trickling_bodies_do_not_make_reads_answer_503() {
    let s = Server::start(&["--kube", "off", "--body-read-timeout", "6s"]);
    let addr = format!("127.0.0.1:{}", s.port);
    let mut slow: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    for c in &mut slow {
        let _ = c.write_all(
            b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..20 {
        let (status, body) = get(&format!("{}/api/v1/incidents", s.url()), None).expect("GET");
        assert_eq!(status, 200, "a read beside 300 trickling writes: {body}");
        for c in slow.iter_mut().take(50) {
            let _ = c.write_all(b" ");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The trickling writes are answered 408 at --body-read-timeout (or 503 past the bound).
    std::thread::sleep(Duration::from_secs(6));
    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    for c in &mut slow {
        let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
        let mut buf = [0u8; 64];
        let n = c.read(&mut buf).unwrap_or(0);
        let line = String::from_utf8_lossy(&buf[..n]);
        *answers
            .entry(line.split(' ').nth(1).unwrap_or("none").to_owned())
            .or_default() += 1;
    }
    println!("trickling POST answers: {answers:?}");
    assert!(
        answers.get("408").copied().unwrap_or(0) >= 200,
        "{answers:?}"
    );
    assert_eq!(answers.get("none"), None, "{answers:?}");
}

#[test]
fn a_full_disk_fails_ready_and_health_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mnt = dir.path().join("small");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m", "tapio-test"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        mounted,
        "this test mounts a tmpfs: run it as root (CI does)"
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let db = mnt.join("db");
    let s = Server::start(&[
        "--kube",
        "off",
        "--database-url",
        &format!("sqlite://{}", db.display()),
    ]);
    // Fill the file system, leaving the store nowhere to grow.
    let filler = mnt.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "count=100"])
        .arg(format!("of={}", filler.display()))
        .stderr(Stdio::null())
        .status();
    let mut refused = false;
    for seq in 1..=400 {
        let (status, _) = s.post(
            "/api/v1/evidence",
            tapio_testkit::oom_batch("fill", seq, "api", 200).as_bytes(),
            &[],
        );
        if status == 503 {
            refused = true;
            break;
        }
    }
    assert!(refused, "writes never failed on a full disk");
    let (code, ready) = get(&format!("{}/ready", s.url()), None).expect("ready");
    assert_eq!(code, 503, "{ready}");
    let h = s.get_json("/health");
    let store = &h["components"]["store"];
    assert_eq!(store["status"], "degraded", "{h}");
    let msg = store["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("writes failing") && msg.contains("full"),
        "{msg}"
    );
    assert_ne!(h["status"], "healthy");
    // Tiny writes that may still fit (a heartbeat-sized batch, a note) do not make a
    // full disk look ready again: /ready must not flap while there is no room.
    for seq in 500..520 {
        let _ = s.post(
            "/api/v1/evidence",
            tapio_testkit::oom_batch("tiny", seq, "api", 1).as_bytes(),
            &[],
        );
        let (code, ready) = get(&format!("{}/ready", s.url()), None).expect("ready");
        assert_eq!(code, 503, "ready again on a full disk: {ready}");
    }
    // Room again: ready again without any traffic, and writes succeed.
    std::fs::remove_file(&filler).expect("rm filler");
    s.wait_for(15, "/ready 200 after freeing space", |s| {
        matches!(s.get("/ready"), Ok((200, _)))
    });
    let (status, v) = s.post(
        "/api/v1/evidence",
        tapio_testkit::oom_batch("fill", 1000, "api", 5).as_bytes(),
        &[],
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        s.get_json("/health")["components"]["store"]["status"],
        "healthy"
    );
}
