//! A real Prometheus (Debian package `prometheus`, installed by `.ci/run`) scrapes
//! `/metrics`, and a query returns what was posted.

use tapio_testkit::{Daemon, Server, example, require};

fn query(port: u16, q: &str) -> Option<f64> {
    let url = format!("http://127.0.0.1:{port}/api/v1/query");
    let mut resp = ureq::get(&url).query("query", q).call().ok()?;
    let v: serde_json::Value = resp.body_mut().read_json().ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn prometheus_scrapes_events_processed() {
    require("prometheus", "prometheus");
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
    let prom = Daemon::prometheus(&cfg, dir.path(), &[]);
    let port = prom.port;
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
