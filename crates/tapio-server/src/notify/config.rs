//! The notification configuration file (`--notify FILE`, TOML; docs/notifications.md).
//! Validated strictly on load: an unknown field is an error with its line and column, a
//! bad value names the receiver or route and the field.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;
use tapio_core::Severity;
use tapio_core::duration::parse_duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Slack,
    PagerDuty,
    Webhook,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::PagerDuty => "pagerduty",
            Self::Webhook => "webhook",
        }
    }
    /// Pagers: only the newest state matters, and nothing pages after acknowledgement.
    pub fn is_pager(self) -> bool {
        self == Self::PagerDuty
    }
}

#[derive(Debug, Clone)]
pub struct Receiver {
    pub name: String,
    pub kind: Kind,
    pub url: String,
    pub routing_key: Option<String>,
    pub fallback: Option<String>,
    /// Receiver told when an incident routed here is not acknowledged in time.
    pub escalate_to: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub receivers: Vec<String>,
    pub severity: Vec<Severity>,
    pub namespaces: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub base_url: Option<String>,
    pub receivers: Vec<Receiver>,
    pub routes: Vec<Route>,
    pub max_attempts: u32,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub timeout: Duration,
    /// While a P1/P2 is open, an Update to chat receivers this often.
    pub update_every: Duration,
    /// Acknowledgement deadline per severity (the runbook's response times).
    pub response: [Duration; 4],
    /// Template files replacing the runbook defaults.
    pub templates: Vec<(tapio_core::notify::NotificationKind, std::path::PathBuf)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    dispatch: RawDispatch,
    #[serde(default)]
    receiver: Vec<RawReceiver>,
    #[serde(default)]
    route: Vec<RawRoute>,
    #[serde(default)]
    escalation: RawEscalation,
    #[serde(default)]
    templates: RawTemplates,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEscalation {
    #[serde(rename = "P1")]
    p1: Option<String>,
    #[serde(rename = "P2")]
    p2: Option<String>,
    #[serde(rename = "P3")]
    p3: Option<String>,
    #[serde(rename = "P4")]
    p4: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTemplates {
    initial: Option<std::path::PathBuf>,
    update: Option<std::path::PathBuf>,
    resolution: Option<std::path::PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDispatch {
    max_attempts: Option<u32>,
    backoff_min: Option<String>,
    backoff_max: Option<String>,
    timeout: Option<String>,
    update_every: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReceiver {
    name: String,
    kind: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    routing_key: Option<String>,
    #[serde(default)]
    fallback: Option<String>,
    #[serde(default)]
    escalate_to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    receivers: Vec<String>,
    #[serde(default)]
    severity: Vec<String>,
    #[serde(default)]
    namespaces: Vec<String>,
}

pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

fn duration(v: Option<&str>, default: Duration, field: &str) -> Result<Duration, String> {
    match v {
        None => Ok(default),
        Some(s) => parse_duration(s)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                format!("dispatch: field {field:?}: {s:?} is not a duration like 2s or 5m")
            }),
    }
}

/// Parse and validate a notification configuration.
pub fn parse(text: &str, origin: &str) -> Result<NotifyConfig, String> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|sp| {
                let upto = &text[..sp.start.min(text.len())];
                format!(
                    "line {}, column {}",
                    upto.matches('\n').count() + 1,
                    upto.len() - upto.rfind('\n').map_or(0, |i| i + 1) + 1
                )
            })
            .unwrap_or_else(|| "file".into());
        format!("{origin}: {at}: {}", e.message())
    })?;
    let err = |m: String| format!("{origin}: {m}");
    let mut names = BTreeSet::new();
    let mut receivers = Vec::new();
    for r in &raw.receiver {
        let at =
            |field: &str, m: String| err(format!("receiver {:?}, field {field:?}: {m}", r.name));
        if r.name.trim().is_empty() || !names.insert(r.name.clone()) {
            return Err(err(format!(
                "receiver name {:?} is empty or used twice",
                r.name
            )));
        }
        let kind = match r.kind.as_str() {
            "slack" => Kind::Slack,
            "pagerduty" => Kind::PagerDuty,
            "webhook" => Kind::Webhook,
            other => {
                return Err(at(
                    "kind",
                    format!("{other:?} is not one of slack, pagerduty, webhook"),
                ));
            }
        };
        let url = match (&r.url, kind) {
            (Some(u), _) => u.clone(),
            (None, Kind::PagerDuty) => PAGERDUTY_EVENTS_URL.to_owned(),
            (None, _) => return Err(at("url", "is required for this kind".into())),
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(at(
                "url",
                format!("{url:?} must be an http:// or https:// URL"),
            ));
        }
        if kind == Kind::PagerDuty && r.routing_key.as_deref().is_none_or(|k| k.trim().is_empty()) {
            return Err(at(
                "routing_key",
                "a PagerDuty receiver needs its integration's routing key".into(),
            ));
        }
        receivers.push(Receiver {
            name: r.name.clone(),
            kind,
            url,
            routing_key: r.routing_key.clone(),
            fallback: r.fallback.clone(),
            escalate_to: r.escalate_to.clone(),
        });
    }
    for r in &receivers {
        for (field, v) in [("fallback", &r.fallback), ("escalate_to", &r.escalate_to)] {
            if let Some(f) = v
                && (f == &r.name || !names.contains(f))
            {
                return Err(err(format!(
                    "receiver {:?}, field {field:?}: {f:?} is not another receiver",
                    r.name
                )));
            }
        }
    }
    let mut routes = Vec::new();
    for (i, r) in raw.route.iter().enumerate() {
        let at = |field: &str, m: String| err(format!("route {}, field {field:?}: {m}", i + 1));
        if r.receivers.is_empty() {
            return Err(at("receivers", "needs at least one receiver".into()));
        }
        for name in &r.receivers {
            if !names.contains(name) {
                return Err(at("receivers", format!("{name:?} is not a receiver")));
            }
        }
        let severity = r
            .severity
            .iter()
            .map(|s| s.parse::<Severity>().map_err(|e| at("severity", e)))
            .collect::<Result<Vec<_>, _>>()?;
        routes.push(Route {
            receivers: r.receivers.clone(),
            severity,
            namespaces: r.namespaces.clone(),
        });
    }
    let d = &raw.dispatch;
    let max_attempts = d.max_attempts.unwrap_or(6);
    if !(1..=50).contains(&max_attempts) {
        return Err(err(format!(
            "dispatch: field \"max_attempts\": {max_attempts} must be 1-50"
        )));
    }
    Ok(NotifyConfig {
        base_url: raw.base_url.map(|u| u.trim_end_matches('/').to_owned()),
        receivers,
        routes,
        max_attempts,
        backoff_min: duration(
            d.backoff_min.as_deref(),
            Duration::from_secs(2),
            "backoff_min",
        )
        .map_err(&err)?,
        backoff_max: duration(
            d.backoff_max.as_deref(),
            Duration::from_secs(300),
            "backoff_max",
        )
        .map_err(&err)?,
        timeout: duration(d.timeout.as_deref(), Duration::from_secs(10), "timeout")
            .map_err(&err)?,
        update_every: duration(
            d.update_every.as_deref(),
            Duration::from_secs(15 * 60),
            "update_every",
        )
        .map_err(&err)?,
        response: {
            let e = &raw.escalation;
            let mut out = [Duration::ZERO; 4];
            for (i, (name, v)) in [("P1", &e.p1), ("P2", &e.p2), ("P3", &e.p3), ("P4", &e.p4)]
                .into_iter()
                .enumerate()
            {
                let default = tapio_core::Severity::ALL[i]
                    .response_time()
                    .to_std()
                    .unwrap_or(Duration::from_secs(3600));
                out[i] =
                    match v {
                        None => default,
                        Some(s) => parse_duration(s).ok().filter(|d| !d.is_zero()).ok_or_else(
                            || {
                                err(format!(
                                    "escalation: field {name:?}: {s:?} is not a duration like 5m"
                                ))
                            },
                        )?,
                    };
            }
            out
        },
        templates: {
            use tapio_core::notify::NotificationKind as K;
            let t = &raw.templates;
            [
                (K::Initial, &t.initial),
                (K::Update, &t.update),
                (K::Resolution, &t.resolution),
            ]
            .into_iter()
            .filter_map(|(k, p)| p.clone().map(|p| (k, p)))
            .collect()
        },
    })
}

impl NotifyConfig {
    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.name == name)
    }

    /// The acknowledgement deadline of a severity.
    pub fn response_time(&self, s: Severity) -> Duration {
        self.response[s as usize]
    }

    /// Receivers routed for an incident of this severity in this namespace.
    pub fn route(&self, severity: Severity, namespace: Option<&str>) -> Vec<&Receiver> {
        let mut out: Vec<&Receiver> = Vec::new();
        for r in &self.routes {
            let sev_ok = r.severity.is_empty() || r.severity.contains(&severity);
            let ns_ok = r.namespaces.is_empty()
                || namespace.is_some_and(|ns| r.namespaces.iter().any(|n| n == ns));
            if sev_ok && ns_ok {
                for name in &r.receivers {
                    if let Some(rcv) = self.receiver(name)
                        && !out.iter().any(|o| o.name == rcv.name)
                    {
                        out.push(rcv);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
base_url = "https://tapio.example.com/"
[dispatch]
max_attempts = 4
backoff_min = "1s"

[[receiver]]
name = "pd"
kind = "pagerduty"
routing_key = "R0UTING"
fallback = "hook"

[[receiver]]
name = "slack"
kind = "slack"
url = "https://hooks.slack.com/services/T/B/X"

[[receiver]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:9/h"

[[route]]
receivers = ["pd", "slack"]
severity = ["P1", "P2"]

[[route]]
receivers = ["slack"]
namespaces = ["shop"]
"#;

    #[test]
    fn routes_by_severity_and_namespace() {
        let c = parse(GOOD, "n.toml").expect("valid");
        let names = |v: Vec<&Receiver>| v.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(c.route(Severity::P1, None)), ["pd", "slack"]);
        assert_eq!(names(c.route(Severity::P3, Some("shop"))), ["slack"]);
        assert!(c.route(Severity::P3, Some("other")).is_empty());
        assert_eq!(
            c.receiver("pd").map(|r| r.url.as_str()),
            Some(PAGERDUTY_EVENTS_URL)
        );
        assert_eq!(c.base_url.as_deref(), Some("https://tapio.example.com"));
        assert_eq!(c.max_attempts, 4);
    }

    #[test]
    fn mistakes_are_named() {
        for (bad, needle) in [
            (
                GOOD.replace("kind = \"slack\"", "kind = \"teams\""),
                "field \"kind\"",
            ),
            (GOOD.replace("routing_key = \"R0UTING\"", ""), "routing_key"),
            (
                GOOD.replace("fallback = \"hook\"", "fallback = \"nobody\""),
                "fallback",
            ),
            (
                GOOD.replace("severity = [\"P1\", \"P2\"]", "severity = [\"P9\"]"),
                "route 1, field \"severity\"",
            ),
            (
                GOOD.replace("receivers = [\"slack\"]", "receivers = [\"sms\"]"),
                "route 2",
            ),
            (
                GOOD.replace("max_attempts = 4", "max_attempts = 4\nretries = 2"),
                "line 5",
            ),
            (
                GOOD.replace("url = \"http://127.0.0.1:9/h\"", "url = \"ftp://x\""),
                "http://",
            ),
        ] {
            let e = parse(&bad, "n.toml").expect_err(needle);
            assert!(e.contains("n.toml") && e.contains(needle), "{needle}: {e}");
        }
    }
}
