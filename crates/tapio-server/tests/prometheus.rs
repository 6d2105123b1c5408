//! A real Prometheus (Debian package `prometheus`, installed by `.ci/run`) scrapes
//! `/metrics`, and a query returns what was posted.

mod common;

use std::process::{Command, Stdio};

use common::{Server, example, free_port};

struct Prometheus(std::process::Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn query(port: u16, q: &str) -> Option<f64> {
    let url = format!("http://127.0.0.1:{port}/api/v1/query");
    let mut resp = ureq::get(&url).query("query", q).call().ok()?;
    let v: serde_json::Value = resp.body_mut().read_json().ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn prometheus_scrapes_events_processed() {
    let bin = which("prometheus").unwrap_or_else(|| {
        panic!("this test needs Prometheus: apt-get install prometheus (or run .ci/run)")
    });
    let s = Server::start(&[]);
    let (status, _) = s.post("/api/v1/evidence", &example("evidence-batch.json"), &[]);
    assert_eq!(status, 200);

    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tapio\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            s.port
        ),
    )
    .expect("write config");
    let port = free_port();
    let _prom = Prometheus(
        Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let q = "sum(tapio_events_processed_total)";
    s.wait_for(60, "Prometheus to report 3 processed events", |_| {
        query(port, q) == Some(3.0)
    });
    assert_eq!(query(port, "up{job=\"tapio\"}"), Some(1.0));
    assert_eq!(
        query(port, "sum(tapio_events_processed_total{source=\"kernel\"})"),
        Some(2.0)
    );
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}
