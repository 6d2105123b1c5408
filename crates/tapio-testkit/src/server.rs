//! The real `tapio-server` on a loopback port, with its own data, config and log, killed
//! when dropped; and the requests tests make to it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use crate::http::{get_json, http_agent, metric_sum};
use crate::{bins, ports, process};

/// Where a server keeps its files: a temporary directory it owns, or one the test owns.
pub enum Workdir {
    Temp(tempfile::TempDir),
    Given(PathBuf),
}

impl Workdir {
    pub fn path(&self) -> &Path {
        match self {
            Self::Temp(t) => t.path(),
            Self::Given(p) => p,
        }
    }
}

/// A readiness probe given the server's base URL.
pub type ReadyProbe = Box<dyn Fn(&str) -> bool>;

/// How to start a server beyond the defaults of [`Server::start`].
#[derive(Default)]
pub struct ServerOptions {
    /// Files under this directory instead of a temporary one.
    pub dir: Option<PathBuf>,
    /// This port instead of a free one (e.g. one an agent was told before).
    pub port: Option<u16>,
    /// Extra command-line flags.
    pub args: Vec<String>,
    /// A command the server runs under (e.g. `prlimit --nofile=256:256 --`).
    pub wrapper: Vec<String>,
    /// Serves HTTPS (`--tls-cert`/`--tls-key` in `args`): [`Server::url`] says so.
    pub https: bool,
    /// Readiness probe given the base URL, instead of `GET /ready` answering 200.
    pub ready: Option<ReadyProbe>,
}

/// A `tapio-server` process: `<dir>/db` data, `<dir>/config` live config, `<dir>/server.log`.
pub struct Server {
    pub child: Option<Child>,
    pub port: u16,
    pub data: Workdir,
    pub config_dir: PathBuf,
    pub log: PathBuf,
    opts: ServerOptions,
}

impl Server {
    /// A server in a temporary directory on a free port, with `extra` flags, ready.
    pub fn start(extra: &[&str]) -> Self {
        Self::start_with(ServerOptions {
            args: extra.iter().map(|s| (*s).to_owned()).collect(),
            ..ServerOptions::default()
        })
    }

    /// A server with its files under `dir`, on `port`, with `extra` flags, ready.
    pub fn start_in(dir: &Path, port: u16, extra: &[&str]) -> Self {
        Self::start_with(ServerOptions {
            dir: Some(dir.to_owned()),
            port: Some(port),
            args: extra.iter().map(|s| (*s).to_owned()).collect(),
            ..ServerOptions::default()
        })
    }

    pub fn start_with(mut opts: ServerOptions) -> Self {
        let data = match opts.dir.take() {
            Some(d) => Workdir::Given(d),
            None => Workdir::Temp(tempfile::tempdir().expect("tempdir")),
        };
        let config_dir = data.path().join("config");
        std::fs::create_dir_all(&config_dir).expect("config dir");
        let mut s = Self {
            child: None,
            port: opts.port.unwrap_or_else(ports::free_port),
            log: data.path().join("server.log"),
            data,
            config_dir,
            opts,
        };
        s.spawn();
        s
    }

    /// Start (again) on the same port, data and config; wait until ready.
    pub fn spawn(&mut self) {
        let bin = bins::server_bin();
        let mut cmd = match self.opts.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(self.data.path().join("db"))
            .arg("--config-dir")
            .arg(&self.config_dir)
            .args(["--log-format", "logfmt"])
            .args(&self.opts.args);
        let mut child = process::spawn_logged("tapio-server", &mut cmd, &self.log);
        let url = self.url();
        let ready = || match &self.opts.ready {
            Some(f) => f(&url),
            None => matches!(self.get("/ready"), Ok((200, _))),
        };
        process::wait_ready(
            "tapio-server",
            &mut child,
            &self.log,
            Duration::from_secs(20),
            Duration::from_millis(50),
            ready,
        );
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill9(&mut self) {
        process::kill9(&mut self.child);
    }

    /// SIGTERM and wait: the graceful shutdown path runs.
    pub fn stop(&mut self) {
        process::terminate(&mut self.child);
    }

    pub fn url(&self) -> String {
        let scheme = if self.opts.https { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
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

    /// The server's view of agent `id` (`/api/v1/agents`), if it knows it.
    pub fn agent_view(&self, id: &str) -> Option<serde_json::Value> {
        let v = get_json(&format!("{}/api/v1/agents", self.url()))?;
        v["agents"]
            .as_array()?
            .iter()
            .find(|a| a["agent_id"] == id)
            .cloned()
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

    /// The `tapio` CLI pointed at this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bins::cli_bin())
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
