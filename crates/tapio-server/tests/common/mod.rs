//! Harness for end-to-end tests: the real `tapio-server` binary on a loopback port, and
//! the real `tapio` CLI binary.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// The `tapio` CLI lives in another package, so Cargo does not build it for this
/// package's tests; build it once per test process (a no-op when up to date).
pub fn cli_bin() -> PathBuf {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "tapio-cli", "--bin", "tapio"])
            .current_dir(repo_root())
            .status()
            .expect("run cargo build for the tapio CLI");
        assert!(status.success(), "building the tapio CLI failed");
    });
    let server = PathBuf::from(env!("CARGO_BIN_EXE_tapio-server"));
    server.with_file_name("tapio")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A user made with `tapio auth add-user` in `dir`; the token it prints once.
pub fn add_user(dir: &Path, name: &str, role: &str) -> String {
    let out = Command::new(cli_bin())
        .args(["auth", "add-user", name, "--role", role, "--auth-dir"])
        .arg(dir)
        .output()
        .expect("tapio auth add-user");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(token.starts_with("tapio_") && token.len() > 40, "{token}");
    token
}

/// An HTTP client that returns every status as a response (the tests read 4xx and 5xx).
pub fn http_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// An executable on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// An executable the test cannot run without: its path, or a panic with the install hint.
pub fn require(bin: &str, package: &str) -> PathBuf {
    which(bin).unwrap_or_else(|| {
        panic!("this test needs {bin}: apt-get install {package} (or run .ci/run)")
    })
}

/// A real Prometheus or Alertmanager (Debian packages `prometheus`,
/// `prometheus-alertmanager`, installed by `.ci/run`) on a loopback port, its data and log
/// in a directory the caller owns; killed when dropped.
pub struct Daemon {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Daemon {
    /// Prometheus with `config` and `args`, ready (`/-/ready`).
    pub fn prometheus(config: &Path, dir: &Path, args: &[&str]) -> Self {
        let bin = require("prometheus", "prometheus");
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prometheus-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(args);
        Self::spawn("prometheus", cmd, port, dir)
    }

    /// Alertmanager with `config`, alone (no cluster gossip), ready (`/-/ready`).
    pub fn alertmanager(config: &Path, dir: &Path) -> Self {
        let bin = require("prometheus-alertmanager", "prometheus-alertmanager");
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.join("alertmanager-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=");
        Self::spawn("alertmanager", cmd, port, dir)
    }

    fn spawn(name: &str, mut cmd: Command, port: u16, dir: &Path) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let mut d = Self { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = ureq::get(format!("{}/-/ready", d.url()))
                .call()
                .is_ok_and(|r| r.status().as_u16() == 200);
            if ready {
                return d;
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("{name} exited ({status}); log:\n{}", d.logs());
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not become ready; log:\n{}",
                d.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Server {
    pub child: Option<Child>,
    pub port: u16,
    pub data: tempfile::TempDir,
    pub config_dir: PathBuf,
    pub log: PathBuf,
    extra: Vec<String>,
}

impl Server {
    pub fn start(extra: &[&str]) -> Self {
        let data = tempfile::tempdir().expect("tempdir");
        let config_dir = data.path().join("config");
        std::fs::create_dir_all(&config_dir).expect("config dir");
        let mut s = Self {
            child: None,
            port: free_port(),
            log: data.path().join("server.log"),
            data,
            config_dir,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        s.spawn();
        s
    }

    /// Start (again) on the same port, data and config.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_tapio-server"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(self.data.path().join("db"))
            .arg("--config-dir")
            .arg(&self.config_dir)
            .args(["--log-format", "logfmt"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tapio-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok((200, _)) = self.get("/ready") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("tapio-server did not become ready; log:\n{}", self.logs());
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGKILL: no shutdown path runs.
            c.kill().expect("kill");
            c.wait().expect("wait");
        }
    }

    /// SIGTERM and wait: the graceful shutdown path runs.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            c.wait().expect("wait");
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn agent() -> ureq::Agent {
        http_agent(Duration::from_secs(30))
    }

    pub fn get(&self, path: &str) -> Result<(u16, String), ureq::Error> {
        let mut r = Self::agent().get(format!("{}{path}", self.url())).call()?;
        let status = r.status().as_u16();
        Ok((status, r.body_mut().read_to_string()?))
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path).expect("GET");
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).expect("json")
    }

    pub fn post(
        &self,
        path: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let mut req = Self::agent().post(format!("{}{path}", self.url()));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut r = req.send(body).expect("POST");
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().expect("body");
        let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, v)
    }

    /// Poll until `f` holds, for at most `secs`.
    pub fn wait_for(&self, secs: u64, what: &str, mut f: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if f(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}; server log:\n{}", self.logs());
    }

    pub fn incidents(&self, query: &str) -> Vec<serde_json::Value> {
        self.get_json(&format!("/api/v1/incidents{query}"))["incidents"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Sum of a metric's samples (all label sets) in the `/metrics` text.
    pub fn metric(&self, name: &str) -> f64 {
        let (_, text) = self.get("/metrics").expect("metrics");
        metric_sum(&text, name)
    }

    /// Write a config key like Kubernetes does: a new data dir, then swap `..data`.
    pub fn set_config(&self, key: &str, value: &str) {
        let root = &self.config_dir;
        let mut values: Vec<(String, String)> = std::fs::read_dir(root)
            .expect("read config dir")
            .filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().starts_with(".."))
            .filter_map(|e| {
                let k = e.file_name().to_string_lossy().into_owned();
                std::fs::read_to_string(e.path()).ok().map(|v| (k, v))
            })
            .filter(|(k, _)| k != key)
            .collect();
        values.push((key.to_owned(), value.to_owned()));
        let gen_name = format!("..{}", ulid::Ulid::new());
        let gen_dir = root.join(&gen_name);
        std::fs::create_dir_all(&gen_dir).expect("gen dir");
        for (k, v) in &values {
            let mut f = std::fs::File::create(gen_dir.join(k)).expect("create");
            f.write_all(v.as_bytes()).expect("write");
        }
        let tmp = root.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&gen_name, &tmp).expect("symlink");
        std::fs::rename(&tmp, root.join("..data")).expect("swap ..data");
        for (k, _) in &values {
            let link = root.join(k);
            if std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()) {
                continue;
            }
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(format!("..data/{k}"), &link).expect("key symlink");
        }
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(cli_bin())
            .arg("--server")
            .arg(self.url())
            .args(args)
            .output()
            .expect("run tapio")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn example(name: &str) -> Vec<u8> {
    std::fs::read(repo_root().join("examples").join(name)).expect("example file")
}

/// One batch of `n` OOM events for workload `w`, as JSON.
pub fn oom_batch(agent: &str, seq: u64, workload: &str, n: usize) -> String {
    let now = chrono::Utc::now().to_rfc3339();
    let events: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"id":"{}","time":"{now}","type":"kernel.container.oom_kill","severity":"critical","entity":{{"namespace":"shop","pod":"{workload}-{i}","workload":{{"kind":"Deployment","name":"{workload}"}}}},"attributes":{{"comm":"java","pid":{i}}}}}"#,
                ulid::Ulid::new()
            )
        })
        .collect();
    format!(
        r#"{{"version":1,"agent_id":"{agent}","node":"worker-1","seq":{seq},"events":[{}]}}"#,
        events.join(",")
    )
}

/// Poll `f` until it holds, for at most `secs` (no server involved).
pub fn wait(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// A P1 from another tool (payments has no replica available); its incident id.
pub fn open_p1(s: &Server) -> String {
    let (status, v) = s.post(
        "/api/v1/events",
        br#"{"type":"kubernetes.workload.unavailable","severity":"critical","producer":"ci",
             "entity":{"namespace":"shop","workload":{"kind":"Deployment","name":"payments"}},
             "attributes":{"desired_replicas":3,"available_replicas":0}}"#,
        &[],
    );
    assert_eq!(status, 202, "{v}");
    s.wait_for(10, "the P1", |s| !s.incidents("?severity=P1").is_empty());
    s.incidents("?severity=P1")[0]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// A receiver: records every request body and answers with `status`.
#[derive(Clone)]
pub struct Receiver {
    pub port: u16,
    pub got: Arc<Mutex<Vec<serde_json::Value>>>,
    pub status: Arc<AtomicU16>,
}

impl Receiver {
    pub fn start(status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let r = Self {
            port,
            got: Arc::new(Mutex::new(Vec::new())),
            status: Arc::new(AtomicU16::new(status)),
        };
        let me = r.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut reader = BufReader::new(conn);
                let mut len = 0usize;
                let mut key = serde_json::Value::Null;
                let mut line = String::new();
                let mut first = true;
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if first {
                        first = false;
                        continue;
                    }
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = l.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap_or(0);
                        } else if k.eq_ignore_ascii_case("idempotency-key") {
                            key = v.trim().into();
                        }
                    }
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                let status = me.status.load(Ordering::SeqCst);
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                    me.got
                        .lock()
                        .expect("lock")
                        .push(serde_json::json!({"status": status, "body": v, "key": key}));
                }
                let mut conn = reader.into_inner();
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                );
            }
        });
        r
    }
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
    /// Bodies the receiver accepted (answered 2xx).
    pub fn accepted(&self) -> Vec<serde_json::Value> {
        self.accepted_field("body")
    }
    /// Idempotency keys of the accepted requests, in arrival order.
    pub fn accepted_keys(&self) -> Vec<String> {
        self.accepted_field("key")
            .iter()
            .map(|k| k.as_str().unwrap_or("").to_owned())
            .collect()
    }
    /// One field of each record the receiver answered with a 2xx, in arrival order.
    fn accepted_field(&self, field: &str) -> Vec<serde_json::Value> {
        self.got
            .lock()
            .expect("lock")
            .iter()
            .filter(|x| {
                x["status"]
                    .as_u64()
                    .is_some_and(|s| (200..300).contains(&s))
            })
            .map(|x| x[field].clone())
            .collect()
    }
    pub fn attempts(&self) -> usize {
        self.got.lock().expect("lock").len()
    }
}
