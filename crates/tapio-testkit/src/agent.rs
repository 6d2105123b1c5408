//! The real `tapio-agent` on a loopback port (its `/health` and `/metrics`), its evidence
//! going to a file in its directory unless the test names another sink; killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use crate::http::{get_json, http};
use crate::{bins, ports, process};

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
        let mut a = Self::prepare(dir, config, extra);
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
        let _ = Command::new("chmod").args(["-R", "777"]).arg(dir).status();
        let mut a = Self::prepare(dir, config, extra);
        a.uid = Some(uid);
        a.spawn();
        a
    }

    /// The config file written and the command line decided; not started.
    fn prepare(dir: &Path, config: serde_json::Value, extra: &[&str]) -> Self {
        std::fs::create_dir_all(dir).expect("agent dir");
        let cfg = dir.join("agent.json");
        std::fs::write(&cfg, config.to_string()).expect("write config");
        let port = ports::free_port();
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
        Self {
            child: None,
            port,
            dir: dir.to_owned(),
            args,
            log: dir.join("agent.log"),
            uid: None,
        }
    }

    /// Start (again) with the same flags; wait until `/health` answers.
    pub fn spawn(&mut self) {
        let mut cmd = Command::new(bins::agent_bin());
        if let Some(uid) = self.uid {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(uid);
        }
        cmd.args(&self.args);
        let mut child = process::spawn_logged("tapio-agent", &mut cmd, &self.log);
        let health = format!("http://127.0.0.1:{}/health", self.port);
        process::wait_ready(
            "tapio-agent",
            &mut child,
            &self.log,
            Duration::from_secs(20),
            Duration::from_millis(100),
            || get_json(&health).is_some(),
        );
        self.child = Some(child);
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

    /// The events written to the file sink so far.
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
        crate::wait_until(what, timeout, || {
            self.events().into_iter().find(|e| pred(e))
        })
    }

    pub fn kill9(&mut self) {
        process::kill9(&mut self.child);
    }

    /// SIGTERM and wait: the agent finishes its spool writes.
    pub fn stop(&mut self) {
        process::terminate(&mut self.child);
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}
