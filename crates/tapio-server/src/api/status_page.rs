//! The public status page: `GET /status` (HTML) and `GET /status.json` (the same content).
//!
//! **Public on purpose.** Both routes are read-only and need no login. When API
//! authentication lands it must exempt exactly these two routes (nothing under `/api/`);
//! everything they show is chosen here to be safe for customers.
//!
//! Customer-facing incidents:
//! - incidents in a namespace listed in `--status-namespaces` (`TAPIO_STATUS_NAMESPACES`,
//!   comma-separated; `shop=Online shop` names the service as customers know it) that are,
//!   or were at their peak, P1 or P2;
//! - incidents declared by people (`POST /api/v1/incidents`), whatever their namespace.
//!
//! What is shown: an overall banner (any active P1: major outage, P2: partial outage, P3:
//! degraded performance, else operational), the services with their state, the active
//! incidents and those resolved in the last 7 days, each with its customer-worded impact,
//! status (Investigating, Identified, Monitoring, Resolved), start time and updates.
//!
//! What is never shown: evidence, hypotheses, root causes, entity names (pods, nodes,
//! workloads), severity reasons, who acted, and notes Tapio wrote itself (they name root
//! causes and entities). Titles of detected incidents name entities, so customers see
//! "Service disruption affecting …" instead; titles of declared incidents were written by
//! people for this. Status changes are shown in standard customer wording, with a person's
//! note made at the same moment as its text. **Every note people add to a customer-facing
//! incident is public.**
//!
//! The page is rebuilt at most every [`CACHE_TTL`] (a busy outage brings many readers), and
//! the last page is served while the store does not answer.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tapio_core::{Incident, Severity, Status, TimelineKind};
use tapio_store::{IncidentFilter, StoreError};

use crate::api::AppState;

/// Heading of the page when `TAPIO_STATUS_TITLE` is not set.
pub const DEFAULT_TITLE: &str = "Service status";
/// Resolved incidents are listed for this many calendar days (UTC), today included.
pub const HISTORY_DAYS: i64 = 7;
/// How long a built page is served before it is rebuilt from the store.
pub const CACHE_TTL: Duration = Duration::from_secs(2);
/// Most updates listed per incident (newest first).
pub const MAX_UPDATES: usize = 25;
/// A person's note this close after their status change words that change.
const NOTE_JOINS_CHANGE: chrono::TimeDelta = chrono::TimeDelta::minutes(2);

/// Which incidents are public and how the page is titled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusConfig {
    pub title: String,
    /// (namespace, name customers see), in the configured order.
    pub namespaces: Vec<(String, String)>,
}

impl StatusConfig {
    /// `namespaces` as in `--status-namespaces`: `shop,api=Public API` (blanks ignored).
    pub fn new(title: &str, namespaces: &str) -> Self {
        let mut list: Vec<(String, String)> = Vec::new();
        for part in namespaces.split(',') {
            let (ns, name) = part.split_once('=').unwrap_or((part, ""));
            let (ns, name) = (ns.trim(), name.trim());
            if ns.is_empty() || list.iter().any(|(n, _)| n == ns) {
                continue;
            }
            let name = if name.is_empty() { ns } else { name };
            list.push((ns.to_owned(), name.to_owned()));
        }
        let title = title.trim();
        Self {
            title: if title.is_empty() {
                DEFAULT_TITLE
            } else {
                title
            }
            .to_owned(),
            namespaces: list,
        }
    }

    /// From `TAPIO_STATUS_TITLE` and `TAPIO_STATUS_NAMESPACES`.
    pub fn from_env() -> Self {
        Self::new(
            &std::env::var("TAPIO_STATUS_TITLE").unwrap_or_default(),
            &std::env::var("TAPIO_STATUS_NAMESPACES").unwrap_or_default(),
        )
    }

    fn service_of(&self, namespace: Option<&str>) -> Option<&str> {
        let ns = namespace?;
        self.namespaces
            .iter()
            .find(|(n, _)| n == ns)
            .map(|(_, name)| name.as_str())
    }

    /// Whether customers see this incident.
    pub fn is_public(&self, inc: &Incident) -> bool {
        if inc.identity.kind == "Declared" {
            return true;
        }
        let worst = inc
            .peak_severity
            .map_or(inc.severity, |p| p.min(inc.severity));
        worst.is_urgent() && self.service_of(inc.namespace.as_deref()).is_some()
    }
}

static CONFIG: OnceLock<StatusConfig> = OnceLock::new();

/// Set the page's configuration (the server flags); the first call wins and `false` says
/// it was already set. Without a call, the environment is read when the page is first built.
pub fn configure(cfg: StatusConfig) -> bool {
    CONFIG.set(cfg).is_ok()
}

fn config() -> &'static StatusConfig {
    CONFIG.get_or_init(StatusConfig::from_env)
}

/// Customer impact: of an incident, of a service and (never `Maintenance`) of everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    Operational,
    Maintenance,
    DegradedPerformance,
    PartialOutage,
    MajorOutage,
}

impl Impact {
    pub fn of(severity: Severity) -> Self {
        match severity {
            Severity::P1 => Self::MajorOutage,
            Severity::P2 => Self::PartialOutage,
            Severity::P3 => Self::DegradedPerformance,
            Severity::P4 => Self::Maintenance,
        }
    }

    /// The incident's impact in customer words.
    pub fn incident_label(self) -> &'static str {
        match self {
            Self::MajorOutage => "Major outage",
            Self::PartialOutage => "Partial outage",
            Self::DegradedPerformance => "Degraded performance",
            Self::Maintenance => "Maintenance/informational",
            Self::Operational => "Operational",
        }
    }

    fn service_label(self) -> &'static str {
        match self {
            Self::Maintenance => "Maintenance",
            other => other.incident_label(),
        }
    }

    fn banner_label(self) -> &'static str {
        match self {
            Self::Operational | Self::Maintenance => "All systems operational",
            other => other.incident_label(),
        }
    }

    fn css(self) -> &'static str {
        match self {
            Self::Operational => "ok",
            Self::Maintenance => "maint",
            Self::DegradedPerformance => "degraded",
            Self::PartialOutage => "partial",
            Self::MajorOutage => "major",
        }
    }
}

/// Where the incident stands, in the words status pages use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

impl Phase {
    pub fn of(status: Status) -> Self {
        match status {
            Status::Open => Self::Investigating,
            Status::Acknowledged => Self::Identified,
            Status::Mitigated => Self::Monitoring,
            Status::Resolved => Self::Resolved,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Investigating => "Investigating",
            Self::Identified => "Identified",
            Self::Monitoring => "Monitoring",
            Self::Resolved => "Resolved",
        }
    }

    /// What a status change says when no note came with it.
    fn default_message(self) -> &'static str {
        match self {
            Self::Investigating => "We are investigating this issue.",
            Self::Identified => "The issue has been identified and a fix is being worked on.",
            Self::Monitoring => "A fix has been applied and we are monitoring the results.",
            Self::Resolved => "This incident has been resolved.",
        }
    }
}

/// Everything the page shows; `/status.json` is this.
#[derive(Debug, Clone, Serialize)]
pub struct StatusPage {
    pub title: String,
    pub generated_at: DateTime<Utc>,
    pub overall: Overall,
    pub services: Vec<ServiceView>,
    /// Not yet resolved, most severe first.
    pub incidents: Vec<IncidentView>,
    /// Resolved in the last [`HISTORY_DAYS`] calendar days (UTC), most recent first.
    pub resolved: Vec<IncidentView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Overall {
    pub state: Impact,
    pub label: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceView {
    pub name: String,
    pub state: Impact,
    pub label: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentView {
    pub title: String,
    pub impact: Impact,
    pub impact_label: &'static str,
    pub status: Phase,
    pub status_label: &'static str,
    pub services: Vec<String>,
    pub started_at: DateTime<Utc>,
    /// Time of the latest update.
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Newest first, at most [`MAX_UPDATES`].
    pub updates: Vec<UpdateView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpdateView {
    pub at: DateTime<Utc>,
    pub status: Phase,
    pub status_label: &'static str,
    pub message: String,
}

/// The page from the incidents (any, public or not) as of `now`.
pub fn assemble(cfg: &StatusConfig, incidents: &[Incident], now: DateTime<Utc>) -> StatusPage {
    let cutoff = history_start(now);
    let mut seen = std::collections::HashSet::new();
    let mut active = Vec::new();
    let mut resolved = Vec::new();
    for inc in incidents {
        if !seen.insert(inc.id) || !cfg.is_public(inc) {
            continue;
        }
        if inc.status.is_active() {
            active.push((inc, view(cfg, inc)));
        } else if inc.merged_into.is_none() && inc.resolved_at.is_some_and(|t| t >= cutoff) {
            // A merged incident continues as the one it joined.
            resolved.push(view(cfg, inc));
        }
    }
    active.sort_by(|(_, a), (_, b)| {
        b.impact
            .cmp(&a.impact)
            .then(b.started_at.cmp(&a.started_at))
    });
    resolved.sort_by_key(|v| std::cmp::Reverse(v.resolved_at));

    let mut services: Vec<ServiceView> = cfg
        .namespaces
        .iter()
        .map(|(_, name)| ServiceView {
            name: name.clone(),
            state: Impact::Operational,
            label: "",
        })
        .collect();
    for (inc, v) in &active {
        let mut names: Vec<&str> = v.services.iter().map(String::as_str).collect();
        names.extend(cfg.service_of(inc.namespace.as_deref()));
        for name in names {
            match services.iter_mut().find(|s| s.name == name) {
                Some(s) => s.state = s.state.max(v.impact),
                None => services.push(ServiceView {
                    name: name.to_owned(),
                    state: v.impact,
                    label: "",
                }),
            }
        }
    }
    for s in &mut services {
        s.label = s.state.service_label();
    }
    let overall = active
        .iter()
        .map(|(_, v)| v.impact)
        .filter(|i| *i != Impact::Maintenance)
        .max()
        .unwrap_or(Impact::Operational);
    StatusPage {
        title: cfg.title.clone(),
        generated_at: now,
        overall: Overall {
            state: overall,
            label: overall.banner_label(),
        },
        services,
        incidents: active.into_iter().map(|(_, v)| v).collect(),
        resolved,
    }
}

/// Midnight (UTC) starting the oldest day of the history.
fn history_start(now: DateTime<Utc>) -> DateTime<Utc> {
    (now - chrono::TimeDelta::days(HISTORY_DAYS - 1))
        .date_naive()
        .and_time(chrono::NaiveTime::MIN)
        .and_utc()
}

fn view(cfg: &StatusConfig, inc: &Incident) -> IncidentView {
    let declared = inc.identity.kind == "Declared";
    let mut services: Vec<String> = Vec::new();
    if declared {
        // A declared service is `Service/NS/NAME` or `Service/NAME`, named by a person.
        for a in &inc.affected {
            if let Some(name) = a
                .strip_prefix("Service/")
                .and_then(|r| r.rsplit('/').next())
                && !name.is_empty()
                && !services.iter().any(|s| s == name)
            {
                services.push(name.to_owned());
            }
        }
    }
    if services.is_empty()
        && let Some(name) = cfg.service_of(inc.namespace.as_deref())
    {
        services.push(name.to_owned());
    }
    let title = if declared {
        inc.title.clone()
    } else if services.is_empty() {
        "Service disruption".to_owned()
    } else {
        format!("Service disruption affecting {}", services.join(", "))
    };
    // Active incidents show their present impact; resolved ones the worst they reached.
    // Only a person calls something maintenance: a detected incident is at least degraded.
    let severity = if inc.status.is_active() {
        inc.severity
    } else {
        inc.peak_severity
            .map_or(inc.severity, |p| p.min(inc.severity))
    };
    let mut impact = Impact::of(severity);
    if !declared {
        impact = impact.max(Impact::DegradedPerformance);
    }
    let phase = Phase::of(inc.status);
    let updates = updates(inc);
    IncidentView {
        title,
        impact,
        impact_label: impact.incident_label(),
        status: phase,
        status_label: phase.label(),
        services,
        started_at: inc.started_at,
        updated_at: updates.first().map_or(inc.detected_at, |u| u.at),
        resolved_at: inc.resolved_at.filter(|_| !inc.status.is_active()),
        updates,
    }
}

/// The public updates, newest first: status changes in standard wording, and people's
/// notes (a note right after its author's status change becomes that change's text).
fn updates(inc: &Incident) -> Vec<UpdateView> {
    struct Draft<'a> {
        at: DateTime<Utc>,
        phase: Phase,
        message: &'a str,
        by: Option<&'a str>,
        worded: bool,
    }
    let opener = inc
        .timeline
        .first()
        .filter(|e| e.kind == TimelineKind::Detected);
    let mut out = vec![Draft {
        at: inc.detected_at,
        phase: Phase::Investigating,
        message: Phase::Investigating.default_message(),
        by: opener.and_then(|e| e.by.as_deref()),
        worded: false,
    }];
    let mut phase = Phase::Investigating;
    for e in &inc.timeline {
        match e.kind {
            TimelineKind::StatusChanged => {
                let m = e.message.as_str();
                let Some(next) = (if m.starts_with("acknowledged") {
                    Some(Phase::Identified)
                } else if m.starts_with("mitigated") {
                    Some(Phase::Monitoring)
                } else if m.starts_with("resolved") || m.starts_with("merged into") {
                    Some(Phase::Resolved)
                } else if m.starts_with("reopened") {
                    Some(Phase::Investigating)
                } else {
                    None
                }) else {
                    continue;
                };
                phase = next;
                out.push(Draft {
                    at: e.at,
                    phase,
                    message: if m.starts_with("reopened") {
                        "The issue has returned; we are investigating."
                    } else {
                        phase.default_message()
                    },
                    by: e.by.as_deref(),
                    worded: false,
                });
            }
            // Tapio's own notes (no author) name root causes and entities: never public.
            TimelineKind::Note if e.by.is_some() => {
                let text = e.message.trim();
                if text.is_empty() {
                    continue;
                }
                if let Some(last) = out.last_mut()
                    && !last.worded
                    && last.by.is_some()
                    && last.by == e.by.as_deref()
                    && e.at >= last.at
                    && e.at - last.at <= NOTE_JOINS_CHANGE
                {
                    last.message = text;
                    last.worded = true;
                    continue;
                }
                out.push(Draft {
                    at: e.at,
                    phase,
                    message: text,
                    by: e.by.as_deref(),
                    worded: true,
                });
            }
            _ => {}
        }
    }
    out.iter()
        .rev()
        .take(MAX_UPDATES)
        .map(|d| UpdateView {
            at: d.at,
            status: d.phase,
            status_label: d.phase.label(),
            message: d.message.to_owned(),
        })
        .collect()
}

async fn load(state: &AppState, now: DateTime<Utc>) -> Result<Vec<Incident>, StoreError> {
    let mut incidents = state
        .store
        .list_incidents(IncidentFilter {
            status: vec![Status::Open, Status::Acknowledged, Status::Mitigated],
            limit: 1000,
            ..IncidentFilter::default()
        })
        .await?;
    incidents.extend(
        state
            .store
            .list_incidents(IncidentFilter {
                status: vec![Status::Resolved],
                since: Some(history_start(now)),
                limit: 1000,
                ..IncidentFilter::default()
            })
            .await?,
    );
    Ok(incidents)
}

struct Cached {
    /// Which server state the page was built from (tests run several in one process).
    key: usize,
    built: Instant,
    page: Arc<StatusPage>,
}

static CACHE: Mutex<Option<Cached>> = Mutex::new(None);

/// The page, rebuilt when older than [`CACHE_TTL`]; while the store fails, the last page.
async fn page(state: &Arc<AppState>) -> Result<Arc<StatusPage>, StoreError> {
    let key = Arc::as_ptr(state) as usize;
    let cached = |fresh_only: bool| {
        CACHE.lock().ok().and_then(|c| {
            c.as_ref()
                .filter(|c| c.key == key && (!fresh_only || c.built.elapsed() < CACHE_TTL))
                .map(|c| c.page.clone())
        })
    };
    if let Some(p) = cached(true) {
        return Ok(p);
    }
    let now = Utc::now();
    match load(state, now).await {
        Ok(incidents) => {
            let p = Arc::new(assemble(config(), &incidents, now));
            if let Ok(mut c) = CACHE.lock() {
                *c = Some(Cached {
                    key,
                    built: Instant::now(),
                    page: p.clone(),
                });
            }
            Ok(p)
        }
        Err(e) => {
            tracing::warn!(component = "status_page", error = %e, "store read failed; serving the last page if any");
            cached(false).ok_or(e)
        }
    }
}

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

fn public_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// `GET /status`: the page for people. Public (see the module docs).
pub async fn html(State(state): State<Arc<AppState>>) -> Response {
    let (status, body) = match page(&state).await {
        Ok(p) => (StatusCode::OK, render(&p)),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            unavailable(&config().title),
        ),
    };
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    public_headers(&mut resp);
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    resp
}

/// `GET /status.json`: what `/status` shows, for widgets and other sites. Public.
pub async fn json(State(state): State<Arc<AppState>>) -> Response {
    let mut resp = match page(&state).await {
        Ok(p) => Json(p.as_ref().clone()).into_response(),
        // No store details to the public: they are in the server log.
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"error": {
                "code": "unavailable",
                "message": "the status is temporarily unavailable; retry shortly",
            }})),
        )
            .into_response(),
    };
    public_headers(&mut resp);
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}

/// Text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn time(t: DateTime<Utc>) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        t.format("%Y-%m-%dT%H:%M:%SZ"),
        t.format("%b %-d, %H:%M UTC")
    )
}

fn lasted(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let m = (to - from).num_minutes().max(1);
    match (m / 1440, m % 1440 / 60, m % 60) {
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

const ICON_OK: &str = r##"<svg viewBox="0 0 24 24" width="28" height="28" aria-hidden="true"><circle cx="12" cy="12" r="12" fill="#fff" fill-opacity=".22"/><path d="M7 12.4l3.3 3.3L17.2 8.8" fill="none" stroke="#fff" stroke-width="2.5" stroke-linecap="round" stroke-linejoin="round"/></svg>"##;
const ICON_ALERT: &str = r##"<svg viewBox="0 0 24 24" width="28" height="28" aria-hidden="true"><circle cx="12" cy="12" r="12" fill="#fff" fill-opacity=".22"/><path d="M12 6.5v7" stroke="#fff" stroke-width="2.6" stroke-linecap="round"/><circle cx="12" cy="17.3" r="1.5" fill="#fff"/></svg>"##;

const STYLE: &str = r#"
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:#f4f6f8;color:#1f2328;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans","DejaVu Sans",sans-serif;-webkit-font-smoothing:antialiased}
.wrap{max-width:780px;margin:0 auto;padding:20px 16px 40px}
.masthead{background:#fff;border-bottom:1px solid #d1d9e0}
.masthead .wrap{display:flex;flex-wrap:wrap;align-items:baseline;justify-content:space-between;gap:2px 16px;padding-top:18px;padding-bottom:16px}
h1{margin:0;font-size:1.375rem;line-height:1.25;letter-spacing:-.01em;overflow-wrap:anywhere}
time{white-space:nowrap}
.muted{color:#59636e}
.small{font-size:.875rem}
.masthead p{margin:0}
.banner{display:flex;align-items:center;gap:14px;margin:0;padding:18px 20px;border-radius:12px;color:#fff;font-size:1.25rem;font-weight:650;line-height:1.3;box-shadow:0 1px 3px rgba(31,35,40,.12)}
.banner svg{flex:none}
.b-ok{background:#1a7f37}.b-degraded{background:#9a6700}.b-partial{background:#bc4c00}.b-major{background:#cf222e}.b-maint{background:#0969da}
section{margin-top:36px}
h2{margin:0 0 12px;font-size:1.125rem;line-height:1.3}
.incident,.card{background:#fff;border:1px solid #d1d9e0;border-radius:12px;box-shadow:0 1px 2px rgba(31,35,40,.04)}
.incident{position:relative;margin:0 0 16px;padding:16px 18px 6px 22px;overflow:hidden}
.incident::before{content:"";position:absolute;left:0;top:0;bottom:0;width:6px;background:var(--accent)}
.i-ok{--accent:#1a7f37}.i-degraded{--accent:#9a6700}.i-partial{--accent:#bc4c00}.i-major{--accent:#cf222e}.i-maint{--accent:#0969da}
h3{margin:0 0 8px;font-size:1.0625rem;line-height:1.35;overflow-wrap:anywhere}
.tags{display:flex;flex-wrap:wrap;gap:6px;margin:0 0 8px}
.tag{display:inline-block;padding:2px 10px;border-radius:999px;font-size:.8125rem;font-weight:600;line-height:1.5;white-space:nowrap}
.t-ok{background:#dafbe1;color:#116329}.t-degraded{background:#fff8c5;color:#7d4e00}.t-partial{background:#fff1e5;color:#953800}.t-major{background:#ffebe9;color:#a40e26}.t-maint{background:#ddf4ff;color:#0550ae}
.t-phase{background:#eef1f4;color:#1f2328}
.meta{margin:0 0 12px;font-size:.875rem;color:#59636e;overflow-wrap:anywhere}
.updates{list-style:none;margin:0;padding:0}
.updates li{padding:12px 0;border-top:1px solid #e6eaef}
.updates p{margin:0 0 2px;overflow-wrap:anywhere;white-space:pre-line}
.updates .phase{font-weight:650}
.updates time{font-size:.8125rem;color:#59636e}
.card{list-style:none;margin:0;padding:0;overflow:hidden}
.svc{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:2px 12px;padding:14px 18px;border-top:1px solid #e6eaef}
.svc:first-child{border-top:0}
.svc-name{flex:1 1 auto;font-weight:600;overflow-wrap:anywhere}
.state{display:inline-flex;align-items:center;gap:8px;font-size:.875rem;font-weight:600;white-space:nowrap}
.state::before{content:"";width:10px;height:10px;border-radius:50%;background:currentColor}
.c-ok{color:#1a7f37}.c-degraded{color:#9a6700}.c-partial{color:#bc4c00}.c-major{color:#cf222e}.c-maint{color:#0969da}
.day{padding:14px 18px;border-top:1px solid #e6eaef}
.day:first-child{border-top:0}
.day h3{margin:0 0 4px;font-size:.9375rem;color:#1f2328}
.day>p{margin:0;font-size:.875rem;color:#59636e}
.past{margin:10px 0 4px}
.past h4{margin:0 0 4px;font-size:1rem;line-height:1.35;overflow-wrap:anywhere}
.past .meta{margin:0 0 4px}
details{margin:2px 0 6px;font-size:.9375rem}
summary{cursor:pointer;color:#0550ae;font-size:.875rem;font-weight:600;padding:4px 0}
summary:focus-visible{outline:2px solid #0969da;outline-offset:2px;border-radius:4px}
footer{margin-top:40px;text-align:center;font-size:.8125rem;color:#59636e}
@media (min-width:640px){
.wrap{padding:36px 24px 56px}
.masthead .wrap{padding-top:26px;padding-bottom:22px}
h1{font-size:1.625rem}
.banner{padding:22px 26px;font-size:1.375rem}
.incident{padding:20px 24px 8px 28px}
h3{font-size:1.125rem}
.svc,.day{padding:16px 24px}
}
"#;

fn render_updates(out: &mut String, updates: &[UpdateView]) {
    out.push_str("<ol class=\"updates\">");
    for u in updates {
        let _ = write!(
            out,
            "<li><p><span class=\"phase\">{}</span> — {}</p>{}</li>",
            u.status_label,
            escape(&u.message),
            time(u.at)
        );
    }
    out.push_str("</ol>");
}

/// The HTML page: self-contained (inline CSS, no scripts), every text escaped.
pub fn render(p: &StatusPage) -> String {
    let title = escape(&p.title);
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"refresh\" content=\"60\">\n\
         <meta name=\"color-scheme\" content=\"light\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header class=\"masthead\"><div class=\"wrap\"><h1>{title}</h1>\
         <p class=\"muted small\">Updated {}</p></div></header>\n<div class=\"wrap\">\n<main>\n",
        time(p.generated_at)
    );
    let o = p.overall.state;
    let _ = writeln!(
        out,
        "<p class=\"banner b-{}\" role=\"status\">{}<span>{}</span></p>",
        o.css(),
        if o == Impact::Operational {
            ICON_OK
        } else {
            ICON_ALERT
        },
        o.banner_label()
    );

    if !p.incidents.is_empty() {
        out.push_str(
            "<section aria-labelledby=\"h-active\"><h2 id=\"h-active\">Active incidents</h2>\n",
        );
        for i in &p.incidents {
            let _ = write!(
                out,
                "<article class=\"incident i-{css}\"><h3>{}</h3>\
                 <p class=\"tags\"><span class=\"tag t-{css}\">{}</span><span class=\"tag t-phase\">{}</span></p>\
                 <p class=\"meta\">Started {}{}</p>",
                escape(&i.title),
                i.impact_label,
                i.status_label,
                time(i.started_at),
                affects(&i.services),
                css = i.impact.css(),
            );
            render_updates(&mut out, &i.updates);
            out.push_str("</article>\n");
        }
        out.push_str("</section>\n");
    }

    if !p.services.is_empty() {
        out.push_str("<section aria-labelledby=\"h-services\"><h2 id=\"h-services\">Services</h2>\n<ul class=\"card\">");
        for s in &p.services {
            let _ = write!(
                out,
                "<li class=\"svc\"><span class=\"svc-name\">{}</span><span class=\"state c-{}\">{}</span></li>",
                escape(&s.name),
                s.state.css(),
                s.label
            );
        }
        out.push_str("</ul></section>\n");
    }

    let _ = write!(
        out,
        "<section aria-labelledby=\"h-past\"><h2 id=\"h-past\">Past incidents</h2>\n<div class=\"card\">"
    );
    for back in 0..HISTORY_DAYS {
        let day = (p.generated_at - chrono::TimeDelta::days(back)).date_naive();
        let _ = write!(
            out,
            "<div class=\"day\"><h3>{}</h3>",
            day.format("%a, %b %-d, %Y")
        );
        let mut any = false;
        for i in p
            .resolved
            .iter()
            .filter(|i| i.resolved_at.is_some_and(|t| t.date_naive() == day))
        {
            any = true;
            let resolved = i.resolved_at.unwrap_or(i.updated_at);
            let _ = write!(
                out,
                "<article class=\"past\"><h4>{}</h4><p class=\"meta\"><span class=\"tag t-{}\">{}</span> \
                 Resolved {} · lasted {}{}</p>\
                 <details><summary>Show {} update{}</summary>",
                escape(&i.title),
                i.impact.css(),
                i.impact_label,
                time(resolved),
                lasted(i.started_at, resolved),
                affects(&i.services),
                i.updates.len(),
                if i.updates.len() == 1 { "" } else { "s" },
            );
            render_updates(&mut out, &i.updates);
            out.push_str("</details></article>");
        }
        if !any {
            out.push_str("<p>No incidents reported.</p>");
        }
        out.push_str("</div>\n");
    }
    out.push_str("</div></section>\n</main>\n");
    out.push_str(
        "<footer><p>Times are in UTC. This page refreshes every minute.</p></footer>\n</div>\n</body>\n</html>\n",
    );
    out
}

fn affects(services: &[String]) -> String {
    if services.is_empty() {
        String::new()
    } else {
        format!(" · Affects {}", escape(&services.join(", ")))
    }
}

fn unavailable(title: &str) -> String {
    let title = escape(title);
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"30\"><title>{title}</title><style>{STYLE}</style></head>\
         <body><header class=\"masthead\"><div class=\"wrap\"><h1>{title}</h1></div></header><div class=\"wrap\">\
         <p class=\"banner b-maint\" role=\"status\"><span>The status is temporarily unavailable. \
         This page retries every 30 seconds.</span></p></div></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapio_core::lifecycle::{Action, Declare, apply, declare};
    use ulid::Ulid;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).expect("time")
    }

    fn declared(sev: Severity, title: &str, ns: Option<&str>, service: Option<&str>) -> Incident {
        declare(
            &Declare {
                severity: sev,
                title: title.into(),
                by: Some("alice".into()),
                namespace: ns.map(Into::into),
                service: service.map(Into::into),
                description: None,
            },
            t(0),
            Ulid::new(),
        )
        .expect("declare")
    }

    fn detected(sev: Severity, ns: &str) -> Incident {
        let mut inc = declared(sev, "OOM kills on Deployment/x/checkout", Some(ns), None);
        inc.identity.kind = "Deployment".into();
        inc.identity.name = "checkout".into();
        inc.timeline[0].by = None;
        inc.timeline.push(tapio_core::TimelineEntry {
            at: t(30),
            kind: TimelineKind::Note,
            message: "root cause: memory_limit on Pod/x/checkout-7d9f (91 %)".into(),
            count: 1,
            last_at: None,
            by: None,
        });
        inc
    }

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<b a="1" b='2'>&</b>"#),
            "&lt;b a=&quot;1&quot; b=&#39;2&#39;&gt;&amp;&lt;/b&gt;"
        );
        assert_eq!(escape("plain ü"), "plain ü");
    }

    #[test]
    fn config_parses_names_and_ignores_blanks() {
        let c = StatusConfig::new("  ", " shop , api=Public API,,shop=again");
        assert_eq!(c.title, DEFAULT_TITLE);
        assert_eq!(
            c.namespaces,
            vec![
                ("shop".to_owned(), "shop".to_owned()),
                ("api".to_owned(), "Public API".to_owned())
            ]
        );
    }

    #[test]
    fn only_customer_facing_incidents_and_never_internal_details() {
        let cfg = StatusConfig::new("Acme status", "shop=Online shop");
        let mut decl = declared(
            Severity::P2,
            "Checkout slow",
            Some("shop"),
            Some("checkout"),
        );
        apply(&mut decl, &Action::Ack, "bob", t(60)).expect("ack");
        apply(
            &mut decl,
            &Action::Note {
                text: "Fix being deployed".into(),
            },
            "bob",
            t(61),
        )
        .expect("note");
        let shop_p1 = detected(Severity::P1, "shop");
        let shop_p3 = detected(Severity::P3, "shop");
        let other_p1 = detected(Severity::P1, "backoffice");
        let page = assemble(&cfg, &[decl, shop_p1, shop_p3, other_p1], t(120));
        assert_eq!(page.overall.state, Impact::MajorOutage);
        assert_eq!(page.incidents.len(), 2, "{page:?}");
        let json = serde_json::to_string(&page).expect("json");
        for secret in [
            "Deployment",
            "7d9f",
            "root cause",
            "alice",
            "bob",
            "backoffice",
        ] {
            assert!(!json.contains(secret), "{secret} leaked: {json}");
        }
        let d = &page.incidents[1];
        assert_eq!(d.title, "Checkout slow");
        assert_eq!(d.status, Phase::Identified);
        assert_eq!(d.services, vec!["checkout"]);
        // The note worded the acknowledgement; newest first.
        assert_eq!(d.updates.len(), 2);
        assert_eq!(d.updates[0].message, "Fix being deployed");
        assert_eq!(d.updates[0].status, Phase::Identified);
        assert_eq!(d.updates[1].status, Phase::Investigating);
        assert_eq!(
            page.incidents[0].title,
            "Service disruption affecting Online shop"
        );
        let names: Vec<(&str, Impact)> = page
            .services
            .iter()
            .map(|s| (s.name.as_str(), s.state))
            .collect();
        assert_eq!(
            names,
            vec![
                ("Online shop", Impact::MajorOutage),
                ("checkout", Impact::PartialOutage)
            ]
        );
    }

    #[test]
    fn resolved_history_is_bounded_and_uses_the_peak() {
        let cfg = StatusConfig::new("", "shop");
        let day = 86_400;
        let mut recent = detected(Severity::P3, "shop");
        recent.peak_severity = Some(Severity::P2);
        apply(&mut recent, &Action::Resolve, "bob", t(day + 3600)).expect("resolve");
        let mut old = declared(Severity::P1, "Old", None, None);
        apply(&mut old, &Action::Resolve, "bob", t(60)).expect("resolve");
        // Seven calendar days, today included: `recent` on the oldest, `old` the day before.
        let now = t(7 * day);
        assert_eq!(history_start(now).date_naive(), t(day).date_naive());
        let page = assemble(&cfg, &[recent, old], now);
        assert_eq!(page.overall.state, Impact::Operational);
        assert_eq!(page.resolved.len(), 1);
        assert_eq!(page.resolved[0].impact, Impact::PartialOutage);
        assert_eq!(page.resolved[0].status, Phase::Resolved);
        assert_eq!(page.resolved[0].updates[0].status, Phase::Resolved);
        let html = render(&page);
        assert!(html.contains("All systems operational"));
        assert!(html.contains("lasted 1 d 1 h"), "{html}");
        assert!(html.contains("Service disruption affecting shop"), "{html}");
    }

    #[test]
    fn maintenance_does_not_turn_the_banner() {
        let cfg = StatusConfig::new("", "");
        let page = assemble(
            &cfg,
            &[declared(Severity::P4, "Database upgrade", None, None)],
            t(10),
        );
        assert_eq!(page.overall.state, Impact::Operational);
        assert_eq!(page.incidents[0].impact_label, "Maintenance/informational");
    }
}
