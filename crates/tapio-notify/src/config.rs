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
    /// Email over SMTP (`url = "smtp://host:587"` or `smtps://host:465`).
    Email,
    /// A Jira issue per P1/P2 incident (REST v2), later changes as comments.
    Jira,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS after EHLO, required (the default for `smtp://`).
    StartTls,
    /// TLS from the first byte (`smtps://`, port 465).
    Implicit,
    /// Plain text; only when asked for explicitly (`tls = "none"`).
    None,
}

#[derive(Debug, Clone)]
pub struct EmailCfg {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub from: String,
    pub to: Vec<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Clone)]
pub struct JiraCfg {
    pub project: String,
    pub issue_type: String,
    pub username: Option<String>,
    pub token: Option<String>,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::PagerDuty => "pagerduty",
            Self::Webhook => "webhook",
            Self::Email => "email",
            Self::Jira => "jira",
        }
    }
    /// Pagers: only the newest state matters, and nothing pages after acknowledgement.
    pub fn is_pager(self) -> bool {
        self == Self::PagerDuty
    }
    /// Receivers that get the periodic Update while a P1/P2 is open.
    pub fn gets_cadence(self) -> bool {
        matches!(self, Self::Slack | Self::Webhook | Self::Email)
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
    pub email: Option<EmailCfg>,
    pub jira: Option<JiraCfg>,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub receivers: Vec<String>,
    pub severity: Vec<Severity>,
    pub namespaces: Vec<String>,
    /// `name` or `kind/name`: the incident is about or affects one of them.
    pub workloads: Vec<String>,
    /// Confident root-cause kinds (`bad_rollout`, `node_failure`, …).
    pub causes: Vec<String>,
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
    /// Events sent per minute per PagerDuty routing key (PagerDuty answers 429 past
    /// about 120); beyond it deliveries wait, without using up an attempt.
    pub pager_events_per_minute: u32,
    /// Acknowledgement deadline per severity (the runbook's response times).
    pub response: [Duration; 4],
    /// Template files replacing the runbook defaults.
    pub templates: Vec<(crate::templates::NotificationKind, std::path::PathBuf)>,
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
    pager_events_per_minute: Option<u32>,
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
    // email
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    tls: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password_env: Option<String>,
    #[serde(default)]
    password_file: Option<std::path::PathBuf>,
    // jira
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    issue_type: Option<String>,
    #[serde(default)]
    token_env: Option<String>,
    #[serde(default)]
    token_file: Option<std::path::PathBuf>,
}

/// A secret from an environment variable or a file (e.g. a mounted Secret), never inline.
fn secret(
    env: Option<&str>,
    file: Option<&std::path::Path>,
    what: &str,
) -> Result<Option<String>, (String, String)> {
    match (env, file) {
        (Some(_), Some(_)) => Err((
            format!("{what}_env"),
            format!("give either {what}_env or {what}_file, not both"),
        )),
        (Some(var), None) => match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_owned())),
            _ => Err((
                format!("{what}_env"),
                format!(
                    "environment variable {var:?} is not set or empty; export it before starting the server"
                ),
            )),
        },
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_owned())),
            Ok(_) => Err((
                format!("{what}_file"),
                format!("{} is empty", path.display()),
            )),
            Err(e) => Err((
                format!("{what}_file"),
                format!("{} cannot be read: {e}", path.display()),
            )),
        },
        (None, None) => Ok(None),
    }
}

/// `smtp://host[:port]` (STARTTLS, port 587) or `smtps://host[:port]` (TLS, port 465).
fn smtp_endpoint(url: &str) -> Result<(String, u16, SmtpTls), String> {
    let (rest, tls, default_port) = if let Some(r) = url.strip_prefix("smtp://") {
        (r, SmtpTls::StartTls, 587)
    } else if let Some(r) = url.strip_prefix("smtps://") {
        (r, SmtpTls::Implicit, 465)
    } else {
        return Err(format!(
            "{url:?} must be smtp://host[:port] (STARTTLS) or smtps://host[:port] (TLS)"
        ));
    };
    let rest = rest.trim_end_matches('/');
    // host, host:port, [v6], [v6]:port
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, "")) => (h.to_owned(), None),
            Some((h, p)) => (h.to_owned(), p.strip_prefix(':').map(str::to_owned)),
            None => return Err(format!("{url:?}: unclosed \"[\" in the host")),
        },
        None => match rest.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p.to_owned())),
            None => (rest.to_owned(), None),
        },
    };
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("{url:?}: port {p:?} is not a number 1-65535")),
        },
    };
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return Err(format!("{url:?}: {host:?} is not a host name"));
    }
    Ok((host, port, tls))
}

fn plain_address(a: &str) -> bool {
    let addr = a
        .rsplit_once('<')
        .map_or(a, |(_, r)| r.trim_end_matches('>'));
    let addr = addr.trim();
    addr.split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && (d.contains('.') || d == "localhost"))
        && !addr.contains([' ', '\r', '\n', ','])
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    receivers: Vec<String>,
    #[serde(default)]
    severity: Vec<String>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default)]
    workloads: Vec<String>,
    #[serde(default)]
    causes: Vec<String>,
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

/// Parse and validate a notification configuration. Errors never show a URL's password
/// or secret query values (they are logged and shown by `tapio check`).
pub fn parse(text: &str, origin: &str) -> Result<NotifyConfig, String> {
    parse_unredacted(text, origin).map_err(|e| crate::redact::redact_urls(&e))
}

fn parse_unredacted(text: &str, origin: &str) -> Result<NotifyConfig, String> {
    let raw: RawFile = toml::from_str(text).map_err(|e| toml_error(text, origin, &e))?;
    let err = |m: String| format!("{origin}: {m}");
    let mut names = BTreeSet::new();
    let mut receivers = Vec::new();
    for r in &raw.receiver {
        if r.name.trim().is_empty() || !names.insert(r.name.clone()) {
            return Err(err(format!(
                "receiver name {:?} is empty or used twice",
                r.name
            )));
        }
        receivers.push(receiver(r).map_err(&err)?);
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
        routes.push(route(i, r, &names).map_err(&err)?);
    }
    dispatch(&raw, receivers, routes).map_err(err)
}

/// A TOML syntax or shape error, with its line and column.
fn toml_error(text: &str, origin: &str, e: &toml::de::Error) -> String {
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
}

/// One `[[receiver]]`, checked (its name already is). Errors name the receiver and field.
fn receiver(r: &RawReceiver) -> Result<Receiver, String> {
    let at = |field: &str, m: String| format!("receiver {:?}, field {field:?}: {m}", r.name);
    let kind = match r.kind.as_str() {
        "slack" => Kind::Slack,
        "pagerduty" => Kind::PagerDuty,
        "webhook" => Kind::Webhook,
        "email" => Kind::Email,
        "jira" => Kind::Jira,
        other => {
            return Err(at(
                "kind",
                format!("{other:?} is not one of slack, pagerduty, webhook, email, jira"),
            ));
        }
    };
    // Fields that belong to one kind only are refused on the others.
    for (field, set, kinds) in [
        (
            "routing_key",
            r.routing_key.is_some(),
            &[Kind::PagerDuty][..],
        ),
        ("from", r.from.is_some(), &[Kind::Email][..]),
        ("to", !r.to.is_empty(), &[Kind::Email][..]),
        ("tls", r.tls.is_some(), &[Kind::Email][..]),
        ("password_env", r.password_env.is_some(), &[Kind::Email][..]),
        (
            "password_file",
            r.password_file.is_some(),
            &[Kind::Email][..],
        ),
        (
            "username",
            r.username.is_some(),
            &[Kind::Email, Kind::Jira][..],
        ),
        ("project", r.project.is_some(), &[Kind::Jira][..]),
        ("issue_type", r.issue_type.is_some(), &[Kind::Jira][..]),
        ("token_env", r.token_env.is_some(), &[Kind::Jira][..]),
        ("token_file", r.token_file.is_some(), &[Kind::Jira][..]),
    ] {
        if set && !kinds.contains(&kind) {
            return Err(at(
                field,
                format!("is not used by a {} receiver", kind.as_str()),
            ));
        }
    }
    let url = match (&r.url, kind) {
        (Some(u), _) => u.clone(),
        (None, Kind::PagerDuty) => PAGERDUTY_EVENTS_URL.to_owned(),
        (None, _) => return Err(at("url", "is required for this kind".into())),
    };
    let mut email = None;
    let mut jira = None;
    if kind == Kind::Email {
        email = Some(email_cfg(r, &url, &at)?);
    } else if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(at(
            "url",
            format!("{url:?} must be an http:// or https:// URL"),
        ));
    }
    if kind == Kind::Jira {
        jira = Some(jira_cfg(r, &at)?);
    }
    if kind == Kind::PagerDuty && r.routing_key.as_deref().is_none_or(|k| k.trim().is_empty()) {
        return Err(at(
            "routing_key",
            "a PagerDuty receiver needs its integration's routing key".into(),
        ));
    }
    Ok(Receiver {
        name: r.name.clone(),
        kind,
        url,
        routing_key: r.routing_key.clone(),
        fallback: r.fallback.clone(),
        escalate_to: r.escalate_to.clone(),
        email,
        jira,
    })
}

/// The SMTP settings of an email receiver.
fn email_cfg(
    r: &RawReceiver,
    url: &str,
    at: &dyn Fn(&str, String) -> String,
) -> Result<EmailCfg, String> {
    let (host, port, mut tls) = smtp_endpoint(url).map_err(|m| at("url", m))?;
    match r.tls.as_deref() {
        None => {}
        Some("none") => tls = SmtpTls::None,
        Some("starttls") => tls = SmtpTls::StartTls,
        Some("tls") => tls = SmtpTls::Implicit,
        Some(other) => {
            return Err(at(
                "tls",
                format!("{other:?} is not one of starttls, tls, none"),
            ));
        }
    }
    let from = r
        .from
        .clone()
        .ok_or_else(|| at("from", "an email receiver needs a sender address".into()))?;
    if !plain_address(&from) {
        return Err(at("from", format!("{from:?} is not an email address")));
    }
    if r.to.is_empty() {
        return Err(at(
            "to",
            "an email receiver needs at least one recipient".into(),
        ));
    }
    if let Some(bad) = r.to.iter().find(|a| !plain_address(a)) {
        return Err(at("to", format!("{bad:?} is not an email address")));
    }
    let password = secret(
        r.password_env.as_deref(),
        r.password_file.as_deref(),
        "password",
    )
    .map_err(|(f, m)| at(&f, m))?;
    if password.is_some() != r.username.is_some() {
        return Err(at(
            "username",
            "SMTP authentication needs both username and password_env or password_file".into(),
        ));
    }
    Ok(EmailCfg {
        host,
        port,
        tls,
        from,
        to: r.to.clone(),
        username: r.username.clone(),
        password,
    })
}

/// The project settings of a Jira receiver.
fn jira_cfg(r: &RawReceiver, at: &dyn Fn(&str, String) -> String) -> Result<JiraCfg, String> {
    let project = r
        .project
        .clone()
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| {
            at(
                "project",
                "a Jira receiver needs the project key, e.g. \"OPS\"".into(),
            )
        })?;
    let token = secret(r.token_env.as_deref(), r.token_file.as_deref(), "token")
        .map_err(|(f, m)| at(&f, m))?;
    if token.is_none() {
        return Err(at(
            "token_env",
            "a Jira receiver needs an API token (token_env or token_file)".into(),
        ));
    }
    Ok(JiraCfg {
        project,
        issue_type: r.issue_type.clone().unwrap_or_else(|| "Task".into()),
        username: r.username.clone(),
        token,
    })
}

/// Route number `i` (0-based), checked against the receiver `names`.
fn route(i: usize, r: &RawRoute, names: &BTreeSet<String>) -> Result<Route, String> {
    let at = |field: &str, m: String| format!("route {}, field {field:?}: {m}", i + 1);
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
    if let Some(w) = r.workloads.iter().find(|w| {
        w.trim().is_empty() || w.split('/').count() > 2 || w.split('/').any(str::is_empty)
    }) {
        return Err(at(
            "workloads",
            format!("{w:?} is not a workload: name or kind/name, e.g. deployment/checkout"),
        ));
    }
    if let Some(c) = r.causes.iter().find(|c| {
        c.is_empty()
            || !c
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
    }) {
        return Err(at(
            "causes",
            format!("{c:?} is not a cause kind (lower_snake_case, as in rules/default.toml)"),
        ));
    }
    Ok(Route {
        receivers: r.receivers.clone(),
        severity,
        namespaces: r.namespaces.clone(),
        workloads: r.workloads.clone(),
        causes: r.causes.clone(),
    })
}

/// The `[dispatch]`, `[escalation]` and `[templates]` sections around the checked
/// receivers and routes.
fn dispatch(
    raw: &RawFile,
    receivers: Vec<Receiver>,
    routes: Vec<Route>,
) -> Result<NotifyConfig, String> {
    let d = &raw.dispatch;
    let max_attempts = d.max_attempts.unwrap_or(6);
    if !(1..=50).contains(&max_attempts) {
        return Err(format!(
            "dispatch: field \"max_attempts\": {max_attempts} must be 1-50"
        ));
    }
    let pager_events_per_minute = d.pager_events_per_minute.unwrap_or(100);
    if !(1..=120).contains(&pager_events_per_minute) {
        return Err(format!(
            "dispatch: field \"pager_events_per_minute\": {pager_events_per_minute} must be 1-120 (PagerDuty refuses more than about 120 a minute per key)"
        ));
    }
    Ok(NotifyConfig {
        pager_events_per_minute,
        base_url: raw
            .base_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_owned()),
        receivers,
        routes,
        max_attempts,
        backoff_min: duration(
            d.backoff_min.as_deref(),
            Duration::from_secs(2),
            "backoff_min",
        )?,
        backoff_max: duration(
            d.backoff_max.as_deref(),
            Duration::from_secs(300),
            "backoff_max",
        )?,
        timeout: duration(d.timeout.as_deref(), Duration::from_secs(10), "timeout")?,
        update_every: duration(
            d.update_every.as_deref(),
            Duration::from_secs(15 * 60),
            "update_every",
        )?,
        response: response_times(&raw.escalation)?,
        templates: {
            use crate::templates::NotificationKind as K;
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

/// The acknowledgement deadline per severity (`[escalation]`), the runbook's by default.
fn response_times(e: &RawEscalation) -> Result<[Duration; 4], String> {
    let mut out = [Duration::ZERO; 4];
    for (i, (name, v)) in [("P1", &e.p1), ("P2", &e.p2), ("P3", &e.p3), ("P4", &e.p4)]
        .into_iter()
        .enumerate()
    {
        let default = tapio_core::Severity::ALL[i]
            .response_time()
            .to_std()
            .unwrap_or(Duration::from_secs(3600));
        out[i] = match v {
            None => default,
            Some(s) => parse_duration(s)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    format!("escalation: field {name:?}: {s:?} is not a duration like 5m")
                })?,
        };
    }
    Ok(out)
}

impl NotifyConfig {
    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.name == name)
    }

    /// The acknowledgement deadline of a severity.
    pub fn response_time(&self, s: Severity) -> Duration {
        self.response[s as usize]
    }

    /// Receivers routed for an incident at this (peak) severity: every route whose
    /// matchers all hold (an empty matcher list matches everything).
    pub fn route(&self, severity: Severity, inc: &tapio_core::Incident) -> Vec<&Receiver> {
        let mut out: Vec<&Receiver> = Vec::new();
        for r in &self.routes {
            let sev_ok = r.severity.is_empty() || r.severity.contains(&severity);
            let ns_ok = r.namespaces.is_empty()
                || inc
                    .namespace
                    .as_deref()
                    .is_some_and(|ns| r.namespaces.iter().any(|n| n == ns));
            let workload_ok = r.workloads.is_empty()
                || r.workloads
                    .iter()
                    .any(|w| tapio_core::silence::involves_workload(inc, w));
            let cause_ok = r.causes.is_empty()
                || tapio_core::silence::confident_cause(inc)
                    .is_some_and(|c| r.causes.iter().any(|x| x == c));
            if sev_ok && ns_ok && workload_ok && cause_ok {
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

    /// A declared incident in `ns` about Service `svc`; with `cause`, a confident root cause.
    fn incident(ns: Option<&str>, svc: &str, cause: Option<&str>) -> tapio_core::Incident {
        let d = tapio_core::lifecycle::Declare {
            severity: Severity::P2,
            title: "t".into(),
            by: None,
            namespace: ns.map(str::to_owned),
            service: Some(svc.into()),
            description: None,
        };
        let mut inc =
            tapio_core::lifecycle::declare(&d, chrono::Utc::now(), ulid::Ulid::new()).expect("ok");
        if let Some(c) = cause {
            inc.hypotheses.push(tapio_core::Hypothesis {
                cause: c.into(),
                entity: format!("Deployment/{}/{svc}", ns.unwrap_or("")),
                confidence: 0.9,
                evidence: Vec::new(),
                chain: Vec::new(),
                rule: String::new(),
                explanation: String::new(),
                mitigations: Vec::new(),
            });
            inc.root_cause_confident = true;
        }
        inc
    }

    #[test]
    fn routes_by_severity_namespace_workload_and_cause() {
        let c = parse(
            &format!(
                "{GOOD}\n[[route]]\nreceivers = [\"hook\"]\nworkloads = [\"service/payments\"]\ncauses = [\"bad_rollout\"]\n"
            ),
            "n.toml",
        )
        .expect("valid");
        let names = |v: Vec<&Receiver>| v.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        let plain = incident(None, "cart", None);
        assert_eq!(names(c.route(Severity::P1, &plain)), ["pd", "slack"]);
        assert_eq!(
            names(c.route(Severity::P3, &incident(Some("shop"), "cart", None))),
            ["slack"]
        );
        assert!(
            c.route(Severity::P3, &incident(Some("other"), "cart", None))
                .is_empty()
        );
        // Both the workload and the confident cause must hold.
        let rollout = incident(Some("other"), "payments", Some("bad_rollout"));
        assert_eq!(names(c.route(Severity::P3, &rollout)), ["hook"]);
        let other_cause = incident(Some("other"), "payments", Some("node_failure"));
        assert!(c.route(Severity::P3, &other_cause).is_empty());
        let other_workload = incident(Some("other"), "ledger", Some("bad_rollout"));
        assert!(c.route(Severity::P3, &other_workload).is_empty());
        assert_eq!(
            c.receiver("pd").map(|r| r.url.as_str()),
            Some(PAGERDUTY_EVENTS_URL)
        );
        assert_eq!(c.base_url.as_deref(), Some("https://tapio.example.com"));
        assert_eq!(c.max_attempts, 4);
    }

    const MAIL_AND_JIRA: &str = r#"
[[receiver]]
name = "mail"
kind = "email"
url = "smtp://mail.example.com"
from = "Tapio <tapio@example.com>"
to = ["oncall@example.com"]

[[receiver]]
name = "jira"
kind = "jira"
url = "https://example.atlassian.net"
project = "OPS"
token_file = "TOKEN_FILE"
"#;

    #[test]
    fn email_and_jira_receivers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = dir.path().join("token");
        std::fs::write(&token, "tok\n").expect("write");
        let good = MAIL_AND_JIRA.replace("TOKEN_FILE", &token.display().to_string());
        let c = parse(&good, "n.toml").expect("valid");
        let m = c
            .receiver("mail")
            .and_then(|r| r.email.clone())
            .expect("email");
        assert_eq!(
            (m.host.as_str(), m.port, m.tls),
            ("mail.example.com", 587, SmtpTls::StartTls)
        );
        let j = c
            .receiver("jira")
            .and_then(|r| r.jira.clone())
            .expect("jira");
        assert_eq!((j.project.as_str(), j.issue_type.as_str()), ("OPS", "Task"));
        assert_eq!(j.token.as_deref(), Some("tok"));
        let tls = parse(
            &good.replace("smtp://mail.example.com", "smtps://[::1]:2465"),
            "n.toml",
        )
        .expect("valid");
        let m = tls
            .receiver("mail")
            .and_then(|r| r.email.clone())
            .expect("email");
        assert_eq!(
            (m.host.as_str(), m.port, m.tls),
            ("::1", 2465, SmtpTls::Implicit)
        );
        for (bad, needle) in [
            (MAIL_AND_JIRA.replace("smtp://", "http://"), "smtp://host"),
            (
                MAIL_AND_JIRA.replace("mail.example.com\"", "mail.example.com:0\""),
                "port \"0\"",
            ),
            (
                MAIL_AND_JIRA.replace("to = [\"oncall@example.com\"]", "to = []"),
                "field \"to\"",
            ),
            (
                MAIL_AND_JIRA.replace("to = [\"oncall@example.com\"]", "to = [\"oncall\"]"),
                "\"oncall\" is not an email address",
            ),
            (
                MAIL_AND_JIRA.replace(
                    "from = \"Tapio <tapio@example.com>\"\n",
                    "tls = \"ssl\"\nfrom = \"t@x.io\"\n",
                ),
                "field \"tls\"",
            ),
            (
                MAIL_AND_JIRA.replace(
                    "to = [\"oncall@example.com\"]",
                    "to = [\"a@x.io\"]\nusername = \"u\"",
                ),
                "field \"username\"",
            ),
            (
                MAIL_AND_JIRA.replace("project = \"OPS\"\n", ""),
                "field \"project\"",
            ),
            (
                good.replace(
                    &format!("token_file = {:?}", token.display().to_string()),
                    "token_env = \"TAPIO_TEST_JIRA_TOKEN_UNSET\"",
                ),
                "TAPIO_TEST_JIRA_TOKEN_UNSET",
            ),
            (MAIL_AND_JIRA.to_owned(), "TOKEN_FILE cannot be read"),
            (
                MAIL_AND_JIRA.replace("project = \"OPS\"", "project = \"OPS\"\nfrom = \"a@x.io\""),
                "is not used by a jira receiver",
            ),
        ] {
            let bad = if bad.contains("TOKEN_FILE") && !needle.contains("TOKEN_FILE") {
                bad.replace("TOKEN_FILE", &token.display().to_string())
            } else {
                bad
            };
            let e = parse(&bad, "n.toml").expect_err(needle);
            assert!(e.contains("n.toml") && e.contains(needle), "{needle}: {e}");
        }
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
            (
                GOOD.replace("namespaces = [\"shop\"]", "workloads = [\"a/b/c\"]"),
                "route 2, field \"workloads\"",
            ),
            (
                GOOD.replace("namespaces = [\"shop\"]", "causes = [\"Bad Rollout\"]"),
                "route 2, field \"causes\"",
            ),
        ] {
            let e = parse(&bad, "n.toml").expect_err(needle);
            assert!(e.contains("n.toml") && e.contains(needle), "{needle}: {e}");
        }
    }

    /// A config error about a URL names the receiver and shows the URL without its
    /// password or token.
    #[test]
    fn config_errors_never_print_url_secrets() {
        let bad = GOOD.replace(
            "url = \"http://127.0.0.1:9/h\"",
            "url = \"ftp://bot:hunter2@hooks.example.com/h?token=abc123&x=1\"",
        );
        let e = parse(&bad, "n.toml").expect_err("ftp");
        assert!(!e.contains("hunter2") && !e.contains("abc123"), "{e}");
        assert!(
            e.contains("ftp://bot:***@hooks.example.com/h?token=***&x=1"),
            "{e}"
        );
    }
}
