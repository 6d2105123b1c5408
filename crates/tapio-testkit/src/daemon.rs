//! A real Prometheus or Alertmanager (Debian packages `prometheus`,
//! `prometheus-alertmanager`, installed by `.ci/run`) on a loopback port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use crate::{bins, ports, process};

/// A daemon with its data and log in a directory the caller owns; killed when dropped.
pub struct Daemon {
    child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
}

impl Daemon {
    /// Prometheus with `config` and `args`, ready (`/-/ready`).
    pub fn prometheus(config: &Path, dir: &Path, args: &[&str]) -> Self {
        let bin = bins::require("prometheus", "prometheus");
        let port = ports::free_port();
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
        let bin = bins::require("prometheus-alertmanager", "prometheus-alertmanager");
        let port = ports::free_port();
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
        let _ = std::fs::remove_file(&log);
        let mut child = process::spawn_logged(name, &mut cmd, &log);
        let ready = format!("http://127.0.0.1:{port}/-/ready");
        process::wait_ready(
            name,
            &mut child,
            &log,
            Duration::from_secs(30),
            Duration::from_millis(100),
            || {
                ureq::get(&ready)
                    .call()
                    .is_ok_and(|r| r.status().as_u16() == 200)
            },
        );
        Self {
            child: Some(child),
            port,
            log,
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
        process::kill9(&mut self.child);
    }
}
