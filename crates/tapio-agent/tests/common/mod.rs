//! Harness for the agent's end-to-end tests: the real `tapio-agent` binary, on this
//! machine's real kernel, and (for delivery tests) the real `tapio-server`.
//!
//! These tests need root and BPF, as the agent does in production; CI runs as root. On a
//! machine without them set `TAPIO_SKIP_ROOT_TESTS=1` to skip them explicitly — they
//! never pass silently.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// False (skip) only when explicitly asked; otherwise root is required.
pub fn require_root() -> bool {
    if std::env::var("TAPIO_SKIP_ROOT_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("skipped: TAPIO_SKIP_ROOT_TESTS=1");
        return false;
    }
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test loads BPF programs and needs root (CI runs as root); \
         set TAPIO_SKIP_ROOT_TESTS=1 to skip it explicitly"
    );
    true
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `tapio-server` lives in another package: build it once per test process.
pub fn server_bin() -> PathBuf {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "tapio-server",
                "--bin",
                "tapio-server",
            ])
            .current_dir(repo_root())
            .status()
            .expect("run cargo build for tapio-server");
        assert!(status.success(), "building tapio-server failed");
    });
    PathBuf::from(env!("CARGO_BIN_EXE_tapio-agent")).with_file_name("tapio-server")
}

pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into()
}

pub fn get_json(url: &str) -> Option<serde_json::Value> {
    let mut r = http().get(url).call().ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.body_mut().read_json().ok()
}

pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < until,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub struct Agent {
    pub child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    args: Vec<String>,
    pub log: PathBuf,
    /// Run as this user id instead of root.
    pub uid: Option<u32>,
}

impl Agent {
    /// Start with a thresholds/node config (JSON) and extra flags; the sink defaults to a
    /// file in the agent's directory.
    pub fn start(dir: &Path, config: serde_json::Value, extra: &[&str]) -> Self {
        std::fs::create_dir_all(dir).expect("agent dir");
        let cfg = dir.join("agent.json");
        std::fs::write(&cfg, config.to_string()).expect("write config");
        let port = free_port();
        let mut args = vec![
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--config".into(),
            cfg.display().to_string(),
            "--spool-dir".into(),
            dir.join("spool").display().to_string(),
            "--node".into(),
            "test-node".into(),
        ];
        if !extra.contains(&"--sink") {
            args.push("--sink".into());
            args.push(format!("file:{}", dir.join("events.jsonl").display()));
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut a = Self {
            child: None,
            port,
            dir: dir.to_owned(),
            args,
            log: dir.join("agent.log"),
            uid: None,
        };
        a.spawn();
        a
    }

    /// Start as an unprivileged user (the directory is made writable for it).
    pub fn start_unprivileged(
        dir: &Path,
        config: serde_json::Value,
        extra: &[&str],
        uid: u32,
    ) -> Self {
        std::fs::create_dir_all(dir).expect("agent dir");
        let _ = std::process::Command::new("chmod")
            .args(["-R", "777"])
            .arg(dir)
            .status();
        let mut a = Self::start_deferred(dir, config, extra);
        a.uid = Some(uid);
        a.spawn();
        a
    }

    fn start_deferred(dir: &Path, config: serde_json::Value, extra: &[&str]) -> Self {
        let cfg = dir.join("agent.json");
        std::fs::write(&cfg, config.to_string()).expect("write config");
        let port = free_port();
        let mut args = vec![
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--config".into(),
            cfg.display().to_string(),
            "--spool-dir".into(),
            dir.join("spool").display().to_string(),
            "--node".into(),
            "test-node".into(),
            "--sink".into(),
            format!("file:{}", dir.join("events.jsonl").display()),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Self {
            child: None,
            port,
            dir: dir.to_owned(),
            args,
            log: dir.join("agent.log"),
            uid: None,
        }
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tapio-agent"));
        if let Some(uid) = self.uid {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(uid);
        }
        let child = cmd
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn tapio-agent");
        self.child = Some(child);
        let port = self.port;
        let log = self.log.clone();
        wait_until("the agent's /health", Duration::from_secs(20), || {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!(
                    "tapio-agent exited with {st}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            get_json(&format!("http://127.0.0.1:{port}/health"))
        });
    }

    pub fn health(&self) -> serde_json::Value {
        get_json(&format!("http://127.0.0.1:{}/health", self.port)).expect("agent /health")
    }

    pub fn metrics(&self) -> String {
        let mut r = http()
            .get(format!("http://127.0.0.1:{}/metrics", self.port))
            .call()
            .expect("agent /metrics");
        r.body_mut().read_to_string().expect("metrics body")
    }

    /// Sum of every sample of a metric whose line starts with `prefix`.
    pub fn metric(&self, prefix: &str) -> f64 {
        self.metrics()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Wait for the first event matching `pred`.
    pub fn wait_event(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        wait_until(what, timeout, || {
            self.events().into_iter().find(|e| pred(e))
        })
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait: the agent finishes its spool writes.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn attr<'a>(ev: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    &ev["attributes"][key]
}

pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The real `tapio-server` on a loopback port with its own data directory.
pub struct ServerProc {
    pub child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
}

impl ServerProc {
    pub fn start(dir: &Path, port: u16) -> Self {
        let mut s = Self {
            child: None,
            port,
            dir: dir.to_owned(),
        };
        s.spawn();
        s
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn spawn(&mut self) {
        std::fs::create_dir_all(self.dir.join("config")).expect("server dirs");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("server log");
        let child = Command::new(server_bin())
            .args([
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                "--data-dir",
                &self.dir.join("data").display().to_string(),
                "--config-dir",
                &self.dir.join("config").display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn tapio-server");
        self.child = Some(child);
        let url = self.url();
        wait_until("tapio-server /ready", Duration::from_secs(20), || {
            http()
                .get(format!("{url}/ready"))
                .call()
                .ok()
                .filter(|r| r.status().is_success())
        });
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Every stored evidence event, in storage order.
    pub fn evidence(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let mut after = 0i64;
        loop {
            let page = get_json(&format!(
                "{}/api/v1/evidence?after={after}&limit=5000",
                self.url()
            ))
            .expect("GET /api/v1/evidence");
            let rows = page["evidence"].as_array().cloned().unwrap_or_default();
            if rows.is_empty() {
                return out;
            }
            after = page["next"].as_i64().expect("next");
            out.extend(rows.into_iter().map(|r| r["event"].clone()));
        }
    }

    pub fn agent(&self, id: &str) -> Option<serde_json::Value> {
        let v = get_json(&format!("{}/api/v1/agents", self.url()))?;
        v["agents"]
            .as_array()?
            .iter()
            .find(|a| a["agent_id"] == id)
            .cloned()
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Refused connects to ports nobody serves, one per port: each becomes exactly one
/// `connection_refused` evidence with `refused_min = 1`.
/// Ports are never reused within a test process, so "exactly once per port" is exact.
pub fn refuse_ports(n: usize) -> Vec<u16> {
    static USED: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut used = USED.lock().expect("ports");
    let mut out = Vec::new();
    while out.len() < n {
        let p = free_port();
        if used.contains(&p) {
            continue;
        }
        used.push(p);
        assert!(std::net::TcpStream::connect(("127.0.0.1", p)).is_err());
        out.push(p);
    }
    out
}
