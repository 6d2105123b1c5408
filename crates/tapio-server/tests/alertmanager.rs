//! The Alertmanager webhook receiver: a re-notified alert is one signal, and a real
//! Alertmanager (Debian package `prometheus-alertmanager`, installed by `.ci/run`) delivers
//! alerts that arrive as evidence.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tapio_testkit::{Daemon, Server, require};

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A notification as Alertmanager 0.25+ sends it: one firing and one resolved alert.
fn payload(firing_start: DateTime<Utc>, resolved_end: DateTime<Utc>) -> Value {
    json!({
        "version": "4",
        "groupKey": "{}/{}:{alertname=\"CheckoutErrors\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "tapio",
        "groupLabels": {"alertname": "CheckoutErrors"},
        "commonLabels": {"alertname": "CheckoutErrors", "namespace": "shop"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.monitoring:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "CheckoutErrors", "severity": "critical", "cluster": "prod",
                    "namespace": "shop", "deployment": "checkout", "service": "checkout",
                    "job": "kubernetes-pods", "team": "payments"
                },
                "annotations": {
                    "summary": "checkout answers 5xx to 27% of requests",
                    "runbook_url": "https://runbooks.example.com/checkout-errors",
                    "error_ratio": "0.27"
                },
                "startsAt": rfc3339(firing_start),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=checkout_errors",
                "fingerprint": "5b1f0e4c2a9d8e71"
            },
            {
                "status": "resolved",
                "labels": {
                    "alertname": "CheckoutErrors", "severity": "critical", "cluster": "prod",
                    "namespace": "shop", "deployment": "cart"
                },
                "annotations": {"summary": "cart answers 5xx"},
                "startsAt": rfc3339(resolved_end - chrono::Duration::minutes(10)),
                "endsAt": rfc3339(resolved_end),
                "generatorURL": "http://prometheus:9090/graph?g0.expr=cart_errors",
                "fingerprint": "9c07d2e1f3a4b5c6"
            }
        ]
    })
}

fn evidence(s: &Server, kind: &str) -> Vec<Value> {
    s.get_json(&format!("/api/v1/evidence?type={kind}"))["evidence"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["event"].clone())
        .collect()
}

#[test]
fn renotification_is_one_signal() {
    let s = Server::start(&[]);
    let now = Utc::now();
    let body = serde_json::to_vec(&payload(
        now - chrono::Duration::minutes(3),
        now - chrono::Duration::minutes(1),
    ))
    .expect("json");

    let (status, ack) = s.post("/api/v1/alertmanager", &body, &[]);
    assert_eq!(status, 200, "{ack}");
    assert_eq!(
        ack,
        json!({"received": 2, "accepted": 2, "duplicates": 0, "shed": 0})
    );

    // Alertmanager re-sends the same alerts (repeat_interval, group changes), gzipped here.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&body).expect("gzip");
    let gz = enc.finish().expect("gzip");
    let (status, ack) = s.post("/api/v1/alertmanager", &gz, &[("content-encoding", "gzip")]);
    assert_eq!(status, 200, "{ack}");
    assert_eq!(
        ack,
        json!({"received": 2, "accepted": 0, "duplicates": 2, "shed": 0})
    );

    let firing = evidence(&s, "alert.prometheus.firing");
    assert_eq!(firing.len(), 1, "stored once: {firing:?}");
    let ev = &firing[0];
    assert_eq!(ev["severity"], "critical");
    assert_eq!(
        ev["entity"],
        json!({"cluster": "prod", "namespace": "shop", "service": "checkout",
               "workload": {"kind": "Deployment", "name": "checkout"}})
    );
    let a = &ev["attributes"];
    assert_eq!(a["alertname"], "CheckoutErrors");
    assert_eq!(a["fingerprint"], "5b1f0e4c2a9d8e71");
    assert_eq!(a["error_ratio"], 0.27);
    assert_eq!(a["team"], "payments");
    assert_eq!(a["job"], "kubernetes-pods");
    assert_eq!(
        a["runbook_url"],
        "https://runbooks.example.com/checkout-errors"
    );
    let resolved = evidence(&s, "alert.prometheus.resolved");
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert_eq!(resolved[0]["entity"]["workload"]["name"], "cart");
    assert!(
        resolved[0]["attributes"].get("error_ratio").is_none(),
        "{resolved:?}"
    );

    assert_eq!(s.metric("tapio_alertmanager_alerts_received_total"), 4.0);
    assert!(s.metric("tapio_events_dropped_total") >= 2.0);

    // The firing alert is evidence like any other: the correlator opens an incident.
    s.wait_for(20, "an incident from the firing alert", |s| {
        !s.incidents("").is_empty()
    });

    // Not version "4": refused, naming the field and value; nothing stored.
    let v3 = String::from_utf8(body.clone())
        .expect("utf8")
        .replace(r#""version":"4""#, r#""version":"3""#);
    assert!(v3.contains(r#""version":"3""#));
    let (status, err) = s.post("/api/v1/alertmanager", v3.as_bytes(), &[]);
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["code"], "unsupported_version");
    assert_eq!(err["error"]["field"], "version");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"3\"")),
        "{err}"
    );
    let bad = String::from_utf8(body).expect("utf8").replacen(
        r#""startsAt":""#,
        r#""startsAt":"soon"#,
        1,
    );
    let (status, err) = s.post("/api/v1/alertmanager", bad.as_bytes(), &[]);
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["field"], "alerts[0].startsAt");
    assert_eq!(evidence(&s, "alert.prometheus.firing").len(), 1);
}

fn push_alerts(port: u16, alerts: &Value) {
    let url = format!("http://127.0.0.1:{port}/api/v2/alerts");
    let resp = ureq::post(&url)
        .send_json(alerts)
        .expect("POST /api/v2/alerts");
    assert_eq!(resp.status().as_u16(), 200);
}

#[test]
fn real_alertmanager_delivers_alerts_as_evidence() {
    require("prometheus-alertmanager", "prometheus-alertmanager");
    let s = Server::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("alertmanager.yml");
    std::fs::write(
        &cfg,
        format!(
            "route:\n  receiver: tapio\n  group_by: ['alertname']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: tapio\n    webhook_configs:\n      - url: http://127.0.0.1:{}/api/v1/alertmanager\n        send_resolved: true\n",
            s.port
        ),
    )
    .expect("write config");
    let am = Daemon::alertmanager(&cfg, dir.path());
    let port = am.port;

    // Two alerts of one group, as Prometheus would push them.
    let start = Utc::now() - chrono::Duration::minutes(2);
    let alert = |pod: &str| {
        json!({
            "labels": {"alertname": "PodErrors", "severity": "warning", "namespace": "shop",
                       "pod": pod, "priority": "P2"},
            "annotations": {"summary": format!("{pod} answers errors"), "value": "0.42"},
            "startsAt": rfc3339(start),
            "generatorURL": "http://prometheus:9090/graph?g0.expr=pod_errors"
        })
    };
    push_alerts(port, &json!([alert("api-1"), alert("api-2")]));
    s.wait_for(60, "Alertmanager to deliver both firing alerts", |s| {
        evidence(s, "alert.prometheus.firing").len() == 2
    });
    let firing = evidence(&s, "alert.prometheus.firing");
    for ev in &firing {
        assert_eq!(ev["severity"], "warning");
        assert_eq!(ev["entity"]["namespace"], "shop");
        assert_eq!(ev["attributes"]["alertname"], "PodErrors");
        assert_eq!(ev["attributes"]["priority"], "P2");
        assert_eq!(ev["attributes"]["value"], 0.42);
        assert!(
            ev["attributes"]["fingerprint"]
                .as_str()
                .is_some_and(|f| !f.is_empty())
        );
        let t: DateTime<Utc> = ev["time"].as_str().expect("time").parse().expect("rfc3339");
        assert_eq!(rfc3339(t), rfc3339(start));
    }

    // Resolve one: the group's next notification carries it resolved and the other one
    // firing again, which must not be stored twice.
    let end = Utc::now();
    let mut resolved = alert("api-1");
    resolved["endsAt"] = json!(rfc3339(end));
    push_alerts(port, &json!([resolved]));
    s.wait_for(60, "Alertmanager to deliver the resolved alert", |s| {
        evidence(s, "alert.prometheus.resolved").len() == 1
    });
    let resolved = evidence(&s, "alert.prometheus.resolved");
    assert_eq!(resolved[0]["entity"]["pod"], "api-1");
    let t: DateTime<Utc> = resolved[0]["time"]
        .as_str()
        .expect("time")
        .parse()
        .expect("rfc3339");
    assert_eq!(rfc3339(t), rfc3339(end));
    assert!(resolved[0]["attributes"].get("priority").is_none());
    assert!(
        s.metric("tapio_alertmanager_alerts_received_total") >= 4.0,
        "the re-sent firing alert was received"
    );
    assert_eq!(evidence(&s, "alert.prometheus.firing").len(), 2);
}
