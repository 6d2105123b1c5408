//! Prometheus as a data source (`--prometheus-url`, optional).
//!
//! For the Services in open incidents, Tapio asks Prometheus how much traffic they take
//! and what share of it fails, and stores the answer as evidence
//! (`metrics.service.red`: `request_rate`, `error_ratio`, `window_seconds`,
//! `source=prometheus`). The engine then judges severity by measured user impact and
//! traffic volume — a Service called 0.01 times a second does not page — and says that
//! Prometheus decided. Without it, alert values and the agent's connect statistics decide,
//! as before.
//!
//! The queries are templates (`$namespace`, `$service`), so clusters whose request metric
//! is not `http_requests_total{code}` set their own. One poller runs (the leader's, when
//! scaled out); the number of Services asked per round is bounded, each query has a
//! timeout, and a Prometheus that does not answer costs one logged error per round.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use tapio_proto::{AttrValue, Entity, Event, EventSeverity, EventType};
use tokio::sync::watch;
use ulid::Ulid;

use crate::pipeline::ingest::Ingest;

/// Sender identity of the evidence this source stores.
pub const AGENT_ID: &str = "prometheus-source";

/// Default request-rate query (requests per second over 5 minutes).
pub const DEFAULT_RATE_QUERY: &str =
    r#"sum(rate(http_requests_total{namespace="$namespace",service="$service"}[5m]))"#;
/// Default error-ratio query (share of 5xx over 5 minutes).
pub const DEFAULT_ERROR_QUERY: &str = r#"sum(rate(http_requests_total{namespace="$namespace",service="$service",code=~"5.."}[5m])) / sum(rate(http_requests_total{namespace="$namespace",service="$service"}[5m]))"#;

#[derive(Debug, Clone)]
pub struct PromConfig {
    /// Base URL of the Prometheus HTTP API (`http://prometheus-k8s.monitoring:9090`).
    pub url: String,
    pub every: Duration,
    pub rate_query: String,
    pub error_query: String,
    /// The window the queries average over, in seconds (5m → 300): with the rate, how
    /// many requests a ratio stands for.
    pub window_seconds: f64,
    /// Services asked per round, at most.
    pub max_services: usize,
    pub timeout: Duration,
}

impl PromConfig {
    /// Validate a base URL: `http(s)://host[:port][/path]`, no query.
    pub fn parse_url(url: &str) -> Result<String, String> {
        let u = url.trim().trim_end_matches('/');
        if !(u.starts_with("http://") || u.starts_with("https://")) || u.contains('?') {
            return Err(format!(
                "--prometheus-url {url:?}: give the base URL of the Prometheus HTTP API, like http://prometheus-k8s.monitoring:9090"
            ));
        }
        Ok(u.to_owned())
    }
}

/// A query template filled in for one Service. Label values are escaped for PromQL
/// double-quoted strings (names are DNS labels, but nothing outside is trusted).
pub fn fill(template: &str, namespace: &str, service: &str) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    template
        .replace("$namespace", &esc(namespace))
        .replace("$service", &esc(service))
}

/// The value of an instant query's answer: the first sample of a vector, or a scalar.
/// `None` when Prometheus has no series (unknown, not zero) or the value is not finite.
pub fn instant_value(body: &serde_json::Value) -> Option<f64> {
    if body["status"] != "success" {
        return None;
    }
    let data = &body["data"];
    let v = match data["resultType"].as_str()? {
        "vector" => &data["result"].as_array()?.first()?["value"],
        "scalar" => &data["result"],
        _ => return None,
    };
    v.get(1)?
        .as_str()?
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
}

/// The evidence for one Service's measured traffic and errors.
pub fn red_event(
    namespace: &str,
    service: &str,
    rate: f64,
    ratio: Option<f64>,
    window_seconds: f64,
) -> Event {
    let now = Utc::now();
    let ratio = ratio.map(|r| r.clamp(0.0, 1.0));
    let mut attributes = std::collections::BTreeMap::new();
    attributes.insert("request_rate".to_owned(), AttrValue::Float(rate.max(0.0)));
    if let Some(r) = ratio {
        attributes.insert("error_ratio".to_owned(), AttrValue::Float(r));
    }
    attributes.insert(
        "window_seconds".to_owned(),
        AttrValue::Float(window_seconds),
    );
    attributes.insert("source".to_owned(), AttrValue::String("prometheus".into()));
    Event {
        id: Ulid::from_datetime(now.into()),
        time: now,
        kind: EventType::parse("metrics.service.red").expect("valid type"),
        severity: if ratio.is_some_and(|r| r >= 0.01) {
            EventSeverity::Warning
        } else {
            EventSeverity::Info
        },
        entity: Entity {
            namespace: Some(namespace.to_owned()),
            service: Some(service.to_owned()),
            ..Entity::default()
        },
        attributes,
        object: None,
    }
}

fn query(agent: &ureq::Agent, base: &str, q: &str) -> Result<Option<f64>, String> {
    let url = format!("{base}/api/v1/query");
    let mut resp = agent
        .get(&url)
        .query("query", q)
        .call()
        .map_err(|e| format!("{url}: {e}"))?;
    if resp.status().as_u16() != 200 {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    let body: serde_json::Value = resp
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_json()
        .map_err(|e| format!("{url}: {e}"))?;
    Ok(instant_value(&body))
}

/// The Services open incidents are about or affect, bounded.
async fn services_in_incidents(
    store: &dyn tapio_store::Store,
    max: usize,
) -> Vec<(String, String)> {
    let Ok(incidents) = store.active_incidents().await else {
        return Vec::new();
    };
    let mut out: BTreeSet<(String, String)> = BTreeSet::new();
    for inc in incidents {
        let id = &inc.identity;
        let mut names: Vec<String> = inc.affected.clone();
        if let Some(ns) = &id.namespace {
            names.push(format!("{}/{}/{}", id.kind, ns, id.name));
        }
        for a in names {
            let mut p = a.splitn(3, '/');
            if let (Some("Service"), Some(ns), Some(name)) = (p.next(), p.next(), p.next()) {
                out.insert((ns.to_owned(), name.to_owned()));
            }
            if out.len() >= max {
                return out.into_iter().collect();
            }
        }
    }
    out.into_iter().collect()
}

/// Ask Prometheus every `every` about the Services in open incidents; store the answers.
pub async fn run(ingest: std::sync::Arc<Ingest>, cfg: PromConfig, mut stop: watch::Receiver<bool>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(cfg.timeout))
        .build()
        .into();
    tracing::info!(component = "prometheus", url = %cfg.url, every_s = cfg.every.as_secs_f64(), "asking Prometheus for the traffic and errors of Services in open incidents");
    loop {
        tokio::select! {
            _ = tokio::time::sleep(cfg.every) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
        let services = services_in_incidents(ingest.store.as_ref(), cfg.max_services).await;
        if services.is_empty() {
            continue;
        }
        let (agent2, cfg2) = (agent.clone(), cfg.clone());
        let answers = tokio::task::spawn_blocking(move || {
            let mut events = Vec::new();
            let mut errors = Vec::new();
            for (ns, svc) in services {
                let rate = query(&agent2, &cfg2.url, &fill(&cfg2.rate_query, &ns, &svc));
                let ratio = query(&agent2, &cfg2.url, &fill(&cfg2.error_query, &ns, &svc));
                match (rate, ratio) {
                    // No series for this Service: unknown, nothing to say.
                    (Ok(None), _) => {}
                    (Ok(Some(rate)), Ok(ratio)) => {
                        // No request at all: the ratio (0/0) is unknown, not healthy.
                        let ratio = ratio.filter(|_| rate > 0.0);
                        events.push(red_event(&ns, &svc, rate, ratio, cfg2.window_seconds));
                    }
                    (Err(e), _) | (_, Err(e)) => errors.push(e),
                }
            }
            (events, errors)
        })
        .await;
        let Ok((events, errors)) = answers else {
            continue;
        };
        if let Some(e) = errors.first() {
            tracing::error!(component = "prometheus", error = %e, failed = errors.len(), "Prometheus did not answer; severity falls back to alerts and connect statistics");
        }
        if events.is_empty() {
            continue;
        }
        let batch = tapio_store::IngestBatch {
            agent_id: AGENT_ID.to_owned(),
            node: String::new(),
            seq: None,
            first_event_id: None,
            events,
            received_at: Utc::now(),
        };
        if let Err(e) = ingest.store_batch(batch).await {
            tracing::error!(component = "prometheus", error = %e.message, "storing Prometheus measurements failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled_and_escaped() {
        assert_eq!(
            fill(DEFAULT_RATE_QUERY, "shop", "checkout"),
            r#"sum(rate(http_requests_total{namespace="shop",service="checkout"}[5m]))"#
        );
        assert_eq!(fill(r#"x{s="$service"}"#, "n", "a\"b"), r#"x{s="a\"b"}"#);
    }

    #[test]
    fn answers_are_read_and_no_series_is_unknown() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1733560000.1,"0.123"]}]}}"#,
        )
        .expect("json");
        assert_eq!(instant_value(&v), Some(0.123));
        let empty: serde_json::Value = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        )
        .expect("json");
        assert_eq!(instant_value(&empty), None);
        let nan: serde_json::Value = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}"#,
        )
        .expect("json");
        assert_eq!(instant_value(&nan), None);
        let err: serde_json::Value =
            serde_json::from_str(r#"{"status":"error","error":"bad"}"#).expect("json");
        assert_eq!(instant_value(&err), None);
    }

    #[test]
    fn bad_urls_are_refused_with_what_to_do() {
        assert!(PromConfig::parse_url("http://prom:9090/").is_ok());
        let e = PromConfig::parse_url("prom:9090").expect_err("no scheme");
        assert!(e.contains("prom:9090") && e.contains("http://"), "{e}");
        assert!(PromConfig::parse_url("http://p/api?x=1").is_err());
    }

    #[test]
    fn the_evidence_validates() {
        let ev = red_event("shop", "checkout", 120.5, Some(0.08), 300.0);
        assert_eq!(ev.kind.as_str(), "metrics.service.red");
        assert_eq!(ev.severity, EventSeverity::Warning);
        assert_eq!(ev.attr_f64("error_ratio"), Some(0.08));
        assert_eq!(ev.entity.service.as_deref(), Some("checkout"));
    }
}
