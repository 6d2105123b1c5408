//! Prometheus as a data source (`--prometheus-url`): a real Prometheus scrapes request
//! counters this test serves; Tapio asks it for the request rate and error ratio of the
//! Services in open incidents, and severity follows the measured impact and traffic.

use std::time::{Duration, Instant};

use tapio_testkit::fake_http::{self, Reply};
use tapio_testkit::{Daemon, Server, wait};

/// Serve `http_requests_total` counters that grow with time: checkout takes 10 requests/s
/// of which 20 % fail; report-admin is called once every 100 s and always fails.
fn serve_counters() -> u16 {
    let start = Instant::now();
    fake_http::serve(move |_| {
        let t = start.elapsed().as_secs_f64();
        let body = format!(
            "# TYPE http_requests_total counter\n\
             http_requests_total{{namespace=\"shop\",service=\"checkout\",code=\"200\"}} {}\n\
             http_requests_total{{namespace=\"shop\",service=\"checkout\",code=\"500\"}} {}\n\
             http_requests_total{{namespace=\"backoffice\",service=\"report-admin\",code=\"500\"}} {}\n",
            (8.0 * t).floor(),
            (2.0 * t).floor(),
            1.0 + (0.01 * t).floor(),
        );
        Some(Reply::with_type(200, "text/plain; version=0.0.4", body))
    })
}

/// A critical alert about a Service (what opens an incident on it before Prometheus is
/// asked).
fn alert(ns: &str, svc: &str, seq: u64) -> Vec<u8> {
    let now = chrono::Utc::now();
    let id = ulid::Ulid::from_datetime(now.into());
    serde_json::json!({
        "version": 1, "agent_id": "test-alerts", "node": "-", "seq": seq,
        "sent_at": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "events": [{
            "id": id.to_string(),
            "time": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "type": "alert.prometheus.firing", "severity": "critical",
            "entity": {"namespace": ns, "service": svc},
            "attributes": {"alertname": "ServiceProbeFailing", "fingerprint": format!("fp-{svc}"),
                           "starts_at": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}
        }]
    })
    .to_string()
    .into_bytes()
}

fn incident_of<'a>(incs: &'a [serde_json::Value], svc: &str) -> Option<&'a serde_json::Value> {
    incs.iter().find(|i| {
        i["identity"]["name"] == svc && i["merged_into"].is_null() && i["status"] != "resolved"
    })
}

#[test]
fn severity_follows_the_request_rate_and_error_ratio_prometheus_measures() {
    let counters = serve_counters();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: apps\n    honor_labels: true\n    static_configs:\n      - targets: ['127.0.0.1:{counters}']\n"
        ),
    )
    .expect("write config");
    let prom = Daemon::prometheus(&cfg, dir.path(), &[]);
    let rate_q =
        r#"sum(rate(http_requests_total{namespace="$namespace",service="$service"}[20s]))"#;
    let err_q = r#"sum(rate(http_requests_total{namespace="$namespace",service="$service",code=~"5.."}[20s])) / sum(rate(http_requests_total{namespace="$namespace",service="$service"}[20s]))"#;
    let url = prom.url();
    let tapio = Server::start(&[
        "--kube",
        "off",
        "--prometheus-url",
        &url,
        "--prometheus-interval",
        "1s",
        "--prometheus-window",
        "20s",
        "--prometheus-rate-query",
        rate_q,
        "--prometheus-error-query",
        err_q,
    ]);
    // Prometheus needs a few scrapes before rate() answers.
    wait("Prometheus to have the counters", 30, || {
        ureq::get(format!("{url}/api/v1/query"))
            .query(
                "query",
                r#"sum(rate(http_requests_total{service="checkout"}[20s]))"#,
            )
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .is_some_and(|b| b.contains("\"value\""))
    });

    for (seq, (ns, svc)) in [("shop", "checkout"), ("backoffice", "report-admin")]
        .into_iter()
        .enumerate()
    {
        let (status, ack) = tapio.post("/api/v1/evidence", &alert(ns, svc, seq as u64 + 1), &[]);
        assert_eq!(status, 200, "{ack}");
    }

    // checkout: 20 % of 10 requests/s fail, measured twice in a row → P2, and the reason
    // says Prometheus measured it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let checkout = loop {
        let incs = tapio.incidents("");
        if let Some(i) = incident_of(&incs, "checkout")
            && i["severity"] == "P2"
        {
            break i.clone();
        }
        assert!(
            Instant::now() < deadline,
            "checkout never reached P2 from Prometheus's figures: {:#}\nserver log:\n{}",
            incs.iter()
                .map(|i| format!("{} {} {}", i["severity"], i["title"], i["severity_reason"]))
                .collect::<Vec<_>>()
                .join("\n"),
            tapio.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let reason = checkout["severity_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("Prometheus") && reason.contains("> 5 %"),
        "the reason names the figure and who measured it: {reason}"
    );
    // The measurement is stored evidence like any other, from its own sender.
    let evidence = tapio.get_json("/api/v1/evidence?type=metrics.service.red&limit=5000");
    let measured: Vec<&serde_json::Value> = evidence["evidence"]
        .as_array()
        .map(|a| a.iter().map(|e| &e["event"]).collect())
        .unwrap_or_default();
    assert!(
        measured.iter().any(|e| e["entity"]["service"] == "checkout"
            && e["attributes"]["source"] == "prometheus"
            && e["attributes"]["error_ratio"]
                .as_f64()
                .is_some_and(|r| r > 0.1)),
        "{evidence}"
    );

    // report-admin: every call fails, but there are 0.01 calls a second: Prometheus's
    // figure never makes it a page.
    let incs = tapio.incidents("");
    let admin = incident_of(&incs, "report-admin").expect("report-admin's incident");
    assert!(
        admin["severity"] != "P1" && admin["severity"] != "P2",
        "a rarely-called service paged: {} {}",
        admin["severity"],
        admin["severity_reason"]
    );
}
