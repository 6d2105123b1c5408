//! Notifications: the runbook's communication templates and the payloads each channel
//! expects. Pure: nothing here sends anything. The only I/O is reading user template files
//! in [`Templates::load`].
//!
//! # Templates
//!
//! The runbook ("Communication Templates") defines three messages, one per
//! [`NotificationKind`]:
//!
//! ```text
//! 🚨 INCIDENT: [P1/P2/P3] - [Brief Description]   📊 UPDATE: [Incident ID]   ✅ RESOLVED: [Incident ID]
//! Started: [Timestamp]                             Status: [Current status]   Duration: [Total time]
//! Impact: [Customer impact description]            Progress: [...]            Cause: [Root cause summary]
//! Status: Investigating                            Next Steps: [...]          Resolution: [What fixed it]
//! Lead: @[engineer-name]                           ETA: [...]                 Follow-up: [...]
//! Thread: [link to thread]
//! ```
//!
//! [`Templates::defaults`] renders exactly these from an [`Incident`]. Each can be replaced
//! by a [MiniJinja](https://docs.rs/minijinja/2) (Jinja2) template file with
//! [`Templates::load`]; the built-in sources ([`NotificationKind::default_template`]) are
//! the place to start from. Templates are plain text (no HTML escaping). Block tags swallow
//! the newline that follows them (`trim_blocks`) and the whitespace before them on their line
//! (`lstrip_blocks`), so `{% if %}` lines leave no blank lines; trailing whitespace of the
//! result is removed.
//!
//! Undefined variables are errors (strict undefined behaviour): every variable below is
//! always defined, with `none` where it has no value, so `{% if acknowledged_at %}` works
//! while a typo such as `{{ titel }}` fails. [`Templates::load`] renders every loaded template
//! against sample incidents (one complete and resolved, one bare and open), so typos,
//! unknown filters and syntax errors are reported when the file is loaded, as
//! `FILE:LINE: message` ([`TemplateError`]).
//!
//! ## Variables
//!
//! The incident's own fields, at the top level and also under `incident` (`{{ title }}` and
//! `{{ incident.title }}` are the same). Times are RFC 3339 strings (whole seconds at the top
//! level); optional values are `none` when unset:
//!
//! | variable | value |
//! |---|---|
//! | `id` | the incident's ULID |
//! | `title` | one-line description |
//! | `severity` | `P1`…`P4` |
//! | `severity_reason` | why this severity, in the runbook's terms |
//! | `status` | `open`, `acknowledged`, `mitigated`, `resolved` |
//! | `started_at`, `detected_at`, `updated_at`, `last_evidence_at` | times |
//! | `acknowledged_at`, `mitigated_at`, `resolved_at` | times or `none` |
//! | `namespace` | string or `none` |
//! | `affected` | list of entities (`Deployment/shop/checkout`) |
//! | `hypotheses` | list of `{cause, entity, confidence, explanation, mitigations, chain, rule, evidence}`, best first |
//! | `root_cause_confident` | true when the top hypothesis is the root cause |
//! | `changes` | list of `{at, entity, kind, description, evidence}` |
//! | `timeline` | list of `{at, kind, message, count, last_at, by}` (`by` and `last_at` may be `none`) |
//! | `identity`, `fingerprint`, `evidence`, `evidence_count`, `merged_into`, `peak_severity` | as in the API |
//!
//! Derived for the messages:
//!
//! | variable | value |
//! |---|---|
//! | `kind` | `initial`, `update` or `resolution` |
//! | `severity_label` | the runbook's name of the level: `Critical (Service Down)`… |
//! | `status_label` | `Investigating`, `Investigating (acknowledged)`, `Mitigated (monitoring)`, `Resolved` |
//! | `started` | `started_at` and the time of day: `2026-01-01T10:04:00Z (10:04 UTC)` |
//! | `started_hhmm` | `10:04 UTC` |
//! | `lead` | who acknowledged (the `by` of the "acknowledged by" timeline entry, else whoever's mitigate/resolve acknowledged it), or `unassigned` |
//! | `acknowledged_by` | the same name, or `none` |
//! | `impact` | `severity_reason` and the affected entities |
//! | `affected_summary` | the first affected entities and how many more, or `none` |
//! | `top_hypothesis` | the best hypothesis (even if not confident), or `none` |
//! | `root_cause` | the top hypothesis when `root_cause_confident`, else `none` |
//! | `progress` | the root cause (or `no confident root cause yet`) and the latest note |
//! | `latest_note` | `{at, by, message}` of the latest note, or `none` |
//! | `next_steps` | the top hypothesis's first mitigations, or what to do without one |
//! | `eta` | the text of the latest note starting with `ETA` (`ETA: 15:30 UTC`), `resolved` once resolved, else `unknown` |
//! | `duration` | from the start (earliest of started/detected) to `resolved_at`, like `1 h 12 min`; `… (ongoing)` before that |
//! | `cause` | `<cause> on <entity>` of the confident root cause, else `no confident root cause` |
//! | `resolution` | the latest note, else `resolved by <who>` (or how Tapio resolved it) |
//! | `resolved_by` | who resolved it, or `none` |
//! | `follow_up` | `post-mortem: tapio postmortem <id>` |
//! | `link` | `{base_url}/api/v1/incidents/{id}` when a base URL is configured, else `none` |
//! | `base_url` | the configured base URL, or `none` |
//! | `now` | the render time |
//!
//! `none` prints as `none`: write `{{ namespace or '-' }}`, `{{ namespace | default('-', true) }}`
//! or test it with `{% if namespace %}`. `default` without `true` only replaces *undefined*
//! values, and every variable here is defined.
//!
//! Filters: MiniJinja's built-ins (`default`, `join`, `length`, `upper`, `first`, `map`,
//! `selectattr`, `replace`, `trim`, …) and `hhmm`, which turns an RFC 3339 time into
//! `HH:MM UTC` (`{{ acknowledged_at | hhmm }}`).
//!
//! # Payloads
//!
//! [`slack_payload`], [`pagerduty_payload`], [`webhook_payload`], [`jira_payload`] and
//! [`email_message`] turn a rendered text and the incident into what each receiver
//! documents (Slack Block Kit incoming webhook, PagerDuty Events API v2, Tapio's own
//! webhook, Jira REST v2 "create issue", an RFC 5322 message), respecting their size limits.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use ulid::Ulid;

use crate::incident::*;

// ---------------------------------------------------------------------------------------
// Kinds
// ---------------------------------------------------------------------------------------

/// Which of the runbook's three messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// "🚨 INCIDENT": the incident was detected or declared.
    Initial,
    /// "📊 UPDATE": a state change or news while it is active.
    Update,
    /// "✅ RESOLVED": it is over.
    Resolution,
}

impl NotificationKind {
    pub const ALL: [NotificationKind; 3] = [Self::Initial, Self::Update, Self::Resolution];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::Update => "update",
            Self::Resolution => "resolution",
        }
    }

    /// The built-in template (MiniJinja source) for this kind: the runbook's format.
    pub fn default_template(self) -> &'static str {
        match self {
            Self::Initial => DEFAULT_INITIAL,
            Self::Update => DEFAULT_UPDATE,
            Self::Resolution => DEFAULT_RESOLUTION,
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Initial => 0,
            Self::Update => 1,
            Self::Resolution => 2,
        }
    }
}

impl fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NotificationKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "initial" => Ok(Self::Initial),
            "update" => Ok(Self::Update),
            "resolution" => Ok(Self::Resolution),
            _ => Err(format!(
                "notification kind {s:?} is not one of initial, update, resolution"
            )),
        }
    }
}

/// The runbook's Initial Notification.
const DEFAULT_INITIAL: &str = "\
🚨 INCIDENT: {{ severity }} - {{ title }}
Started: {{ started }}
Impact: {{ impact }}
Status: {{ status_label }}
Lead: {{ '@' ~ acknowledged_by if acknowledged_by else 'unassigned' }}
{% if link %}
Thread: {{ link }}
{% endif %}
";

/// The runbook's Update Notification.
const DEFAULT_UPDATE: &str = "\
📊 UPDATE: {{ id }} ({{ severity }} - {{ title }})
Status: {{ status_label }}
Progress: {{ progress }}
Next Steps: {{ next_steps }}
ETA: {{ eta }}
{% if link %}
Thread: {{ link }}
{% endif %}
";

/// The runbook's Resolution Notification.
const DEFAULT_RESOLUTION: &str = "\
✅ RESOLVED: {{ id }} ({{ severity }} - {{ title }})
Duration: {{ duration }}
Cause: {{ cause }}
Resolution: {{ resolution }}
Follow-up: {{ follow_up }}
{% if link %}
Thread: {{ link }}
{% endif %}
";

// ---------------------------------------------------------------------------------------
// Errors and context
// ---------------------------------------------------------------------------------------

/// A template that cannot be read, compiled or rendered. Displays as `FILE:LINE: message`
/// (`FILE: message` when no line applies, e.g. the file cannot be read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError {
    /// The template file (or `<built-in KIND>` for the defaults).
    pub file: String,
    /// 1-based line of the error, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// What a render needs besides the incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderContext {
    /// Where Tapio's API is reachable by the people notified (`https://tapio.example.com`);
    /// gives the `link` variable.
    pub base_url: Option<String>,
    /// The render time (durations of incidents still active run up to it).
    pub now: DateTime<Utc>,
}

impl RenderContext {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            base_url: None,
            now,
        }
    }

    /// The incident's link when a base URL is configured.
    pub fn link(&self, inc: &Incident) -> Option<String> {
        self.base_url
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(|b| incident_link(b, inc.id))
    }
}

/// `{base_url}/api/v1/incidents/{id}` (one slash between them whatever `base_url` ends with).
pub fn incident_link(base_url: &str, id: Ulid) -> String {
    format!("{}/api/v1/incidents/{id}", base_url.trim_end_matches('/'))
}

// ---------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------

/// The three compiled templates, ready to render. Cheap to clone; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Templates {
    env: Environment<'static>,
    /// Template name per kind (index: [`NotificationKind::index`]): the file path for
    /// overrides, `<built-in KIND>` for the defaults.
    names: [String; 3],
}

impl Templates {
    /// The runbook's three templates.
    pub fn defaults() -> Self {
        let mut env = environment();
        let names = NotificationKind::ALL.map(builtin_name);
        for kind in NotificationKind::ALL {
            // The built-in sources are fixed and covered by tests; a failure here is a bug
            // in this file, so it is surfaced on first render rather than by panicking.
            let _ = env.add_template_owned(builtin_name(kind), kind.default_template());
        }
        Self { env, names }
    }

    /// The defaults with some kinds replaced by template files (the last entry wins when a
    /// kind is given twice). Each file is read, compiled and rendered against sample
    /// incidents, so syntax errors, unknown filters and undefined variables are reported
    /// now, with the file and line.
    pub fn load(overrides: &[(NotificationKind, PathBuf)]) -> Result<Self, TemplateError> {
        let mut t = Self::defaults();
        for (kind, path) in overrides {
            let file = path.display().to_string();
            let source = std::fs::read_to_string(path).map_err(|e| TemplateError {
                file: file.clone(),
                line: None,
                message: format!("cannot read the template: {e}"),
            })?;
            t.add(*kind, file, source)?;
        }
        for (kind, _) in overrides {
            for (inc, ctx) in samples() {
                t.render(*kind, &inc, &ctx)?;
            }
        }
        Ok(t)
    }

    /// Compile `source` as the template for `kind`, named `file` in errors.
    fn add(
        &mut self,
        kind: NotificationKind,
        file: String,
        source: String,
    ) -> Result<(), TemplateError> {
        self.env
            .add_template_owned(file.clone(), source.clone())
            .map_err(|e| template_error(&e, &file, &source))?;
        self.names[kind.index()] = file;
        Ok(())
    }

    /// The name errors use for `kind`'s template (its file, or `<built-in KIND>`).
    pub fn name(&self, kind: NotificationKind) -> &str {
        &self.names[kind.index()]
    }

    /// Render `kind` for `inc`. Errors name the template file and line.
    pub fn render(
        &self,
        kind: NotificationKind,
        inc: &Incident,
        ctx: &RenderContext,
    ) -> Result<String, TemplateError> {
        let name = self.name(kind);
        let tmpl = self.env.get_template(name).map_err(|e| TemplateError {
            file: name.to_owned(),
            line: None,
            message: e.to_string(),
        })?;
        let vars = minijinja::Value::from_serialize(template_vars(kind, inc, ctx));
        let out = tmpl
            .render(vars)
            .map_err(|e| template_error(&e, name, tmpl.source()))?;
        Ok(out.trim_end().to_owned())
    }
}

fn builtin_name(kind: NotificationKind) -> String {
    format!("<built-in {kind}>")
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_filter(
        "hhmm",
        |v: minijinja::Value| -> Result<String, minijinja::Error> {
            let bad = |why: String| minijinja::Error::new(ErrorKind::InvalidOperation, why);
            let Some(s) = v.as_str() else {
                return Err(bad(format!(
                    "hhmm needs an RFC 3339 time, got {} (guard optional times: \
                     `{{% if acknowledged_at %}}`)",
                    if v.is_none() {
                        "none".to_owned()
                    } else {
                        v.kind().to_string()
                    }
                )));
            };
            DateTime::parse_from_rfc3339(s)
                .map(|t| hhmm(t.with_timezone(&Utc)))
                .map_err(|e| bad(format!("hhmm: {s:?} is not an RFC 3339 time ({e})")))
        },
    );
    env
}

/// A MiniJinja error as `file:line: message`, quoting the offending line.
fn template_error(e: &minijinja::Error, file: &str, source: &str) -> TemplateError {
    let line = e.line();
    let mut message = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(text) = line
        .and_then(|n| source.lines().nth(n.saturating_sub(1)))
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        message.push_str(&format!(" (in `{}`)", truncate(text, 120)));
    }
    TemplateError {
        file: e.name().unwrap_or(file).to_owned(),
        line,
        message,
    }
}

// ---------------------------------------------------------------------------------------
// What the messages say (shared by the template variables and the payloads)
// ---------------------------------------------------------------------------------------

const MAX_LISTED_AFFECTED: usize = 5;
const MAX_NEXT_STEPS: usize = 3;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Machine-readable time, same format as the incident's own serialization.
fn rfc3339_full(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn hhmm(t: DateTime<Utc>) -> String {
    t.format("%H:%M UTC").to_string()
}

/// "1 h 12 min", "45 s", "2 d 3 h".
pub fn human_duration(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, mins) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

fn status_label(s: Status) -> &'static str {
    match s {
        Status::Open => "Investigating",
        Status::Acknowledged => "Investigating (acknowledged)",
        Status::Mitigated => "Mitigated (monitoring)",
        Status::Resolved => "Resolved",
    }
}

fn is_status_change(e: &TimelineEntry, prefix: &str) -> bool {
    e.kind == TimelineKind::StatusChanged && e.message.starts_with(prefix)
}

/// Who acknowledged: the latest "acknowledged by" entry, else the person whose mitigate or
/// resolve acknowledged it implicitly (the entry at `acknowledged_at`).
fn acknowledged_by(inc: &Incident) -> Option<&str> {
    inc.timeline
        .iter()
        .rev()
        .find(|e| is_status_change(e, "acknowledged by ") && e.by.is_some())
        .or_else(|| {
            let at = inc.acknowledged_at?;
            inc.timeline.iter().find(|e| {
                e.at == at
                    && e.by.is_some()
                    && (is_status_change(e, "mitigated by ") || is_status_change(e, "resolved by "))
            })
        })
        .and_then(|e| e.by.as_deref())
}

/// The entry that resolved it (a person's, Tapio's quiet-period one, or a merge).
fn resolved_entry(inc: &Incident) -> Option<&TimelineEntry> {
    if inc.status != Status::Resolved {
        return None;
    }
    inc.timeline.iter().rev().find(|e| {
        e.kind == TimelineKind::StatusChanged
            && (e.message.starts_with("resolved") || e.message.starts_with("merged into"))
    })
}

fn latest_note(inc: &Incident) -> Option<&TimelineEntry> {
    inc.timeline
        .iter()
        .rev()
        .find(|e| e.kind == TimelineKind::Note)
}

fn top(inc: &Incident) -> Option<&Hypothesis> {
    inc.hypotheses.first()
}

/// The top hypothesis when it is confident enough to be called the root cause.
fn root_cause(inc: &Incident) -> Option<&Hypothesis> {
    top(inc).filter(|_| inc.root_cause_confident)
}

fn cause_on_entity(h: &Hypothesis) -> String {
    if h.entity.is_empty() {
        h.cause.clone()
    } else {
        format!("{} on {}", h.cause, h.entity)
    }
}

fn affected_summary(inc: &Incident) -> Option<String> {
    if inc.affected.is_empty() {
        return None;
    }
    let shown = &inc.affected[..inc.affected.len().min(MAX_LISTED_AFFECTED)];
    let mut s = shown.join(", ");
    let more = inc.affected.len() - shown.len();
    if more > 0 {
        s.push_str(&format!(" (+{more} more)"));
    }
    Some(s)
}

fn impact(inc: &Incident) -> String {
    let mut s = if inc.severity_reason.trim().is_empty() {
        format!("{} {}", inc.severity, inc.severity.label())
    } else {
        inc.severity_reason.trim().to_owned()
    };
    if let Some(a) = affected_summary(inc) {
        s.push_str("; affected: ");
        s.push_str(&a);
    }
    s
}

/// The confident root cause's explanation, or why there is none.
fn root_cause_text(inc: &Incident) -> String {
    match (root_cause(inc), top(inc)) {
        (Some(h), _) if !h.explanation.trim().is_empty() => h.explanation.trim().to_owned(),
        (Some(h), _) => cause_on_entity(h),
        (None, Some(h)) => format!(
            "no confident root cause yet (leading hypothesis: {}, {:.0} %)",
            cause_on_entity(h),
            h.confidence * 100.0
        ),
        (None, None) => "no confident root cause yet".to_owned(),
    }
}

fn progress(inc: &Incident) -> String {
    let mut s = root_cause_text(inc);
    if root_cause(inc).is_some() {
        s.insert_str(0, "root cause: ");
    }
    if let Some(n) = latest_note(inc) {
        s.push_str("; latest note (");
        if let Some(by) = &n.by {
            s.push_str(by);
            s.push_str(", ");
        }
        s.push_str(&hhmm(n.at));
        s.push_str("): ");
        s.push_str(n.message.trim());
    }
    s
}

fn next_steps(inc: &Incident) -> String {
    if inc.status == Status::Resolved {
        return format!("post-mortem: tapio postmortem {}", inc.id);
    }
    let Some(h) = top(inc) else {
        return format!(
            "investigate: timeline and evidence in `tapio incidents show {}`",
            inc.id
        );
    };
    let steps: Vec<&str> = h
        .mitigations
        .iter()
        .map(|m| m.trim())
        .filter(|m| !m.is_empty())
        .take(MAX_NEXT_STEPS)
        .collect();
    match (inc.root_cause_confident, steps.is_empty()) {
        (true, false) => steps.join("; "),
        (true, true) => format!("address {}", cause_on_entity(h)),
        (false, false) => format!("confirm {}, then: {}", cause_on_entity(h), steps.join("; ")),
        (false, true) => format!("confirm or rule out {}", cause_on_entity(h)),
    }
}

/// The text after "ETA" of the latest note that starts with it.
fn eta(inc: &Incident) -> String {
    if inc.status == Status::Resolved {
        return "resolved".to_owned();
    }
    inc.timeline
        .iter()
        .rev()
        .filter(|e| e.kind == TimelineKind::Note)
        .find_map(|e| {
            let m = e.message.trim();
            let head = m.get(..3)?;
            let rest = &m[3..];
            (head.eq_ignore_ascii_case("eta") && rest.starts_with([':', ' ', '\t']))
                .then(|| rest.trim_start_matches([':', ' ', '\t']).trim())
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn start(inc: &Incident) -> DateTime<Utc> {
    inc.started_at.min(inc.detected_at)
}

fn duration(inc: &Incident, now: DateTime<Utc>) -> String {
    match inc.resolved_at {
        Some(end) => human_duration(end - start(inc)),
        None => format!("{} (ongoing)", human_duration(now - start(inc))),
    }
}

fn cause(inc: &Incident) -> String {
    root_cause(inc)
        .map(cause_on_entity)
        .unwrap_or_else(|| "no confident root cause".to_owned())
}

fn resolution(inc: &Incident) -> String {
    if let Some(n) = latest_note(inc) {
        return n.message.trim().to_owned();
    }
    match resolved_entry(inc) {
        Some(e) => match &e.by {
            Some(by) => format!("resolved by {by}"),
            None => e.message.clone(),
        },
        None if inc.status == Status::Resolved => "resolved".to_owned(),
        None => "not resolved yet".to_owned(),
    }
}

fn follow_up(inc: &Incident) -> String {
    format!("post-mortem: tapio postmortem {}", inc.id)
}

/// The incident as JSON with every optional field present (`null` when unset), so strict
/// templates can test them.
fn incident_json(inc: &Incident) -> Map<String, Value> {
    let mut m = match serde_json::to_value(inc) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for key in [
        "acknowledged_at",
        "mitigated_at",
        "resolved_at",
        "namespace",
        "merged_into",
        "peak_severity",
    ] {
        m.entry(key).or_insert(Value::Null);
    }
    m.entry("changes").or_insert_with(|| json!([]));
    if let Some(Value::Object(id)) = m.get_mut("identity") {
        id.entry("cluster").or_insert(Value::Null);
        id.entry("namespace").or_insert(Value::Null);
    }
    if let Some(Value::Array(tl)) = m.get_mut("timeline") {
        for e in tl.iter_mut() {
            if let Value::Object(e) = e {
                e.entry("count").or_insert(json!(1));
                e.entry("last_at").or_insert(Value::Null);
                e.entry("by").or_insert(Value::Null);
            }
        }
    }
    // Whole seconds at the top level: these are for people.
    let times = [
        ("started_at", Some(inc.started_at)),
        ("detected_at", Some(inc.detected_at)),
        ("updated_at", Some(inc.updated_at)),
        ("last_evidence_at", Some(inc.last_evidence_at)),
        ("acknowledged_at", inc.acknowledged_at),
        ("mitigated_at", inc.mitigated_at),
        ("resolved_at", inc.resolved_at),
    ];
    for (key, t) in times {
        m.insert(
            key.to_owned(),
            t.map(rfc3339).map_or(Value::Null, Value::String),
        );
    }
    m
}

fn opt_str(s: Option<String>) -> Value {
    s.map_or(Value::Null, Value::String)
}

/// Every variable a template sees (documented in the module doc).
fn template_vars(kind: NotificationKind, inc: &Incident, ctx: &RenderContext) -> Value {
    let incident = incident_json(inc);
    let mut vars = incident.clone();
    let hypothesis = |h: Option<&Hypothesis>| {
        h.and_then(|h| serde_json::to_value(h).ok())
            .unwrap_or(Value::Null)
    };
    let derived = [
        ("incident", Value::Object(incident)),
        ("kind", json!(kind.as_str())),
        ("severity_label", json!(inc.severity.label())),
        ("status_label", json!(status_label(inc.status))),
        (
            "started",
            json!(format!(
                "{} ({})",
                rfc3339(inc.started_at),
                hhmm(inc.started_at)
            )),
        ),
        ("started_hhmm", json!(hhmm(inc.started_at))),
        ("lead", json!(acknowledged_by(inc).unwrap_or("unassigned"))),
        (
            "acknowledged_by",
            opt_str(acknowledged_by(inc).map(str::to_owned)),
        ),
        ("impact", json!(impact(inc))),
        ("affected_summary", opt_str(affected_summary(inc))),
        ("top_hypothesis", hypothesis(top(inc))),
        ("root_cause", hypothesis(root_cause(inc))),
        ("progress", json!(progress(inc))),
        (
            "latest_note",
            latest_note(inc).map_or(
                Value::Null,
                |n| json!({"at": rfc3339(n.at), "by": n.by, "message": n.message}),
            ),
        ),
        ("next_steps", json!(next_steps(inc))),
        ("eta", json!(eta(inc))),
        ("duration", json!(duration(inc, ctx.now))),
        ("cause", json!(cause(inc))),
        ("resolution", json!(resolution(inc))),
        (
            "resolved_by",
            opt_str(resolved_entry(inc).and_then(|e| e.by.clone())),
        ),
        ("follow_up", json!(follow_up(inc))),
        ("link", opt_str(ctx.link(inc))),
        (
            "base_url",
            opt_str(ctx.base_url.clone().filter(|b| !b.trim().is_empty())),
        ),
        ("now", json!(rfc3339(ctx.now))),
    ];
    for (k, v) in derived {
        vars.insert(k.to_owned(), v);
    }
    Value::Object(vars)
}

// ---------------------------------------------------------------------------------------
// Sample incidents (load-time validation of user templates)
// ---------------------------------------------------------------------------------------

fn sample_time(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_261_600 + secs, 0).unwrap_or_default()
}

fn sample_entry(secs: i64, kind: TimelineKind, message: &str, by: Option<&str>) -> TimelineEntry {
    TimelineEntry {
        at: sample_time(secs),
        kind,
        message: message.to_owned(),
        count: 1,
        last_at: None,
        by: by.map(str::to_owned),
    }
}

/// A complete, resolved incident (every optional field set, with a base URL) and a bare,
/// open one (nothing optional, no base URL), so both sides of a template's conditionals run.
fn samples() -> [(Incident, RenderContext); 2] {
    let identity = Identity {
        cluster: Some("prod".into()),
        namespace: Some("shop".into()),
        kind: "Deployment".into(),
        name: "checkout".into(),
        problem: "oom".into(),
    };
    let evidence = Ulid::from_parts(1_767_261_600_000, 1);
    let full = Incident {
        id: Ulid::from_parts(1_767_261_600_000, 42),
        title: "checkout is crash-looping (OOMKilled)".into(),
        severity: Severity::P1,
        severity_reason: "P1: checkout serves traffic and 0 of 3 replicas are ready".into(),
        status: Status::Resolved,
        fingerprint: identity.fingerprint(),
        identity: identity.clone(),
        started_at: sample_time(0),
        detected_at: sample_time(20),
        acknowledged_at: Some(sample_time(120)),
        mitigated_at: Some(sample_time(1800)),
        resolved_at: Some(sample_time(4320)),
        updated_at: sample_time(4320),
        last_evidence_at: sample_time(1700),
        namespace: Some("shop".into()),
        affected: vec![
            "Deployment/shop/checkout".into(),
            "Service/shop/checkout".into(),
        ],
        evidence: vec![EvidenceRef {
            id: evidence,
            time: sample_time(0),
            kind: "oom_kill".into(),
            entity: "Pod/shop/checkout-7d9f".into(),
        }],
        evidence_count: 12,
        timeline: vec![
            sample_entry(20, TimelineKind::Detected, "detected: OOMKilled", None),
            sample_entry(
                120,
                TimelineKind::StatusChanged,
                "acknowledged by alice",
                Some("alice"),
            ),
            sample_entry(600, TimelineKind::Note, "ETA: 11:30 UTC", Some("alice")),
            sample_entry(
                1800,
                TimelineKind::StatusChanged,
                "mitigated by alice",
                Some("alice"),
            ),
            sample_entry(
                4300,
                TimelineKind::Note,
                "rolled back to v41; memory limit raised to 1Gi",
                Some("alice"),
            ),
            sample_entry(
                4320,
                TimelineKind::StatusChanged,
                "resolved by alice",
                Some("alice"),
            ),
        ],
        hypotheses: vec![Hypothesis {
            cause: "memory limit too low after rollout".into(),
            entity: "Deployment/shop/checkout".into(),
            confidence: 0.9,
            evidence: vec![evidence],
            chain: vec!["rollout v42".into(), "OOMKilled".into()],
            rule: "oom_after_rollout".into(),
            explanation: "rollout v42 raised memory use past the 512Mi limit".into(),
            mitigations: vec![
                "kubectl rollout undo deployment/checkout -n shop".into(),
                "raise the memory limit of checkout".into(),
            ],
        }],
        root_cause_confident: true,
        changes: vec![ChangeNote {
            at: sample_time(-300),
            entity: "Deployment/shop/checkout".into(),
            kind: "rollout".into(),
            description: "image checkout:v42".into(),
            evidence,
        }],
        merged_into: None,
        peak_severity: Some(Severity::P1),
        severity_set_by: None,
    };
    let bare = Incident {
        id: Ulid::from_parts(1_767_261_600_000, 43),
        title: "node-3 NotReady".into(),
        severity: Severity::P3,
        severity_reason: String::new(),
        status: Status::Open,
        fingerprint: identity.fingerprint(),
        identity,
        started_at: sample_time(0),
        detected_at: sample_time(0),
        acknowledged_at: None,
        mitigated_at: None,
        resolved_at: None,
        updated_at: sample_time(0),
        last_evidence_at: sample_time(0),
        namespace: None,
        affected: Vec::new(),
        evidence: Vec::new(),
        evidence_count: 0,
        timeline: vec![sample_entry(0, TimelineKind::Detected, "detected", None)],
        hypotheses: Vec::new(),
        root_cause_confident: false,
        changes: Vec::new(),
        merged_into: None,
        peak_severity: None,
        severity_set_by: None,
    };
    let now = sample_time(5000);
    [
        (
            full,
            RenderContext {
                base_url: Some("https://tapio.example.com".into()),
                now,
            },
        ),
        (bare, RenderContext::new(now)),
    ]
}

// ---------------------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------------------

/// Slack Block Kit limits (<https://api.slack.com/reference/block-kit/blocks>).
pub const SLACK_HEADER_MAX: usize = 150;
pub const SLACK_SECTION_TEXT_MAX: usize = 3000;
pub const SLACK_FIELD_TEXT_MAX: usize = 2000;
pub const SLACK_FIELDS_MAX: usize = 10;
/// Slack truncates a message's top-level `text` past this.
pub const SLACK_TEXT_MAX: usize = 40_000;
/// PagerDuty Events API v2 `payload.summary` limit.
pub const PAGERDUTY_SUMMARY_MAX: usize = 1024;
/// Jira's summary field limit.
pub const JIRA_SUMMARY_MAX: usize = 255;

/// At most `max` characters; a cut string ends with "…" (counted in `max`).
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Slack mrkdwn escaping (`&`, `<`, `>`), then at most `max` characters, never cutting an
/// escape in two.
fn mrkdwn(s: &str, max: usize) -> String {
    let escaped = |c: char| match c {
        '&' => "&amp;".to_owned(),
        '<' => "&lt;".to_owned(),
        '>' => "&gt;".to_owned(),
        c => c.to_string(),
    };
    let total: usize = s.chars().map(|c| escaped(c).chars().count()).sum();
    let budget = if total <= max {
        max
    } else {
        max.saturating_sub(1)
    };
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let e = escaped(c);
        let n = e.chars().count();
        if used + n > budget {
            out.push('…');
            return out;
        }
        used += n;
        out.push_str(&e);
    }
    out
}

/// The first line of a rendered text and the rest (trimmed).
fn split_heading(text: &str) -> (&str, &str) {
    let text = text.trim();
    match text.split_once('\n') {
        Some((head, rest)) => (head.trim(), rest.trim()),
        None => (text, ""),
    }
}

fn default_heading(kind: NotificationKind, inc: &Incident) -> String {
    match kind {
        NotificationKind::Initial => format!("🚨 INCIDENT: {} - {}", inc.severity, inc.title),
        NotificationKind::Update => format!("📊 UPDATE: {} ({})", inc.id, inc.title),
        NotificationKind::Resolution => format!("✅ RESOLVED: {} ({})", inc.id, inc.title),
    }
}

/// A Slack incoming-webhook message (Block Kit): the first line of `text` as the header,
/// severity / status / started / lead as fields, the rest of `text` as the body, and
/// `tapio · <id>` (with the link) as context. `text` itself is the notification fallback.
/// Every Block Kit limit is respected by cutting with "…".
pub fn slack_payload(
    kind: NotificationKind,
    inc: &Incident,
    text: &str,
    link: Option<&str>,
) -> Value {
    let (head, body) = split_heading(text);
    let head = if head.is_empty() {
        default_heading(kind, inc)
    } else {
        head.to_owned()
    };
    let fallback = if text.trim().is_empty() {
        head.clone()
    } else {
        text.trim().to_owned()
    };
    let field = |name: &str, value: &str| {
        json!({
            "type": "mrkdwn",
            "text": mrkdwn(&format!("*{name}*\n{value}"), SLACK_FIELD_TEXT_MAX),
        })
    };
    let mut fields = vec![
        field("Severity", inc.severity.as_str()),
        field("Status", inc.status.as_str()),
        field(
            "Started",
            &inc.started_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
        field("Lead", acknowledged_by(inc).unwrap_or("unassigned")),
    ];
    fields.truncate(SLACK_FIELDS_MAX);
    let mut blocks = vec![
        json!({
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate(&head, SLACK_HEADER_MAX),
                "emoji": true,
            },
        }),
        json!({"type": "section", "fields": fields}),
    ];
    if !body.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": mrkdwn(body, SLACK_SECTION_TEXT_MAX)},
        }));
    }
    let mut context = mrkdwn(&format!("tapio · {}", inc.id), SLACK_SECTION_TEXT_MAX);
    if let Some(link) = link.map(str::trim).filter(|l| !l.is_empty()) {
        // Slack link syntax: <url|label>, the URL escaped like any mrkdwn text.
        context.push_str(&format!(
            " · <{}|open in Tapio>",
            mrkdwn(&link.replace('|', "%7C"), 2000)
        ));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": context}],
    }));
    json!({
        "text": truncate(&fallback, SLACK_TEXT_MAX),
        "blocks": blocks,
    })
}

/// PagerDuty's severity for a runbook level.
pub fn pagerduty_severity(s: Severity) -> &'static str {
    match s {
        Severity::P1 => "critical",
        Severity::P2 => "error",
        Severity::P3 => "warning",
        Severity::P4 => "info",
    }
}

/// The Events API v2 action for the incident's status: resolved → `resolve`,
/// acknowledged or mitigated → `acknowledge`, open → `trigger`.
pub fn pagerduty_action(s: Status) -> &'static str {
    match s {
        Status::Resolved => "resolve",
        Status::Acknowledged | Status::Mitigated => "acknowledge",
        Status::Open => "trigger",
    }
}

/// The PagerDuty dedup key: stable for the incident's whole life, so its trigger,
/// acknowledge and resolve events land on one alert.
pub fn pagerduty_dedup_key(inc: &Incident) -> String {
    format!("tapio-{}", inc.id)
}

/// A PagerDuty Events API v2 event. The action follows the incident's status
/// ([`pagerduty_action`]); `acknowledge` and `resolve` carry exactly `routing_key`,
/// `event_action` and `dedup_key` (PagerDuty ignores anything else there). A `trigger`
/// carries the payload. `kind` is reported in `custom_details.notification`.
/// [`pagerduty_payload_with_link`] adds the incident's link.
pub fn pagerduty_payload(
    kind: NotificationKind,
    inc: &Incident,
    routing_key: &str,
    source: &str,
) -> Value {
    pagerduty_payload_with_link(kind, inc, routing_key, source, None)
}

/// [`pagerduty_payload`], and when `link` is given a trigger also carries it in
/// `custom_details.link` and `links: [{href, text}]`.
pub fn pagerduty_payload_with_link(
    kind: NotificationKind,
    inc: &Incident,
    routing_key: &str,
    source: &str,
    link: Option<&str>,
) -> Value {
    let action = pagerduty_action(inc.status);
    let dedup_key = pagerduty_dedup_key(inc);
    if action != "trigger" {
        return json!({
            "routing_key": routing_key,
            "event_action": action,
            "dedup_key": dedup_key,
        });
    }
    let link = link.map(str::trim).filter(|l| !l.is_empty());
    let component = top(inc)
        .map(|h| h.entity.clone())
        .filter(|e| !e.is_empty())
        .or_else(|| inc.affected.first().cloned())
        .unwrap_or_else(|| format!("{}/{}", inc.identity.kind, inc.identity.name));
    // The class is the type of event: the confident cause, else the normalised problem.
    let class = root_cause(inc)
        .map(|h| h.cause.clone())
        .or_else(|| Some(inc.identity.problem.clone()))
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    let mitigations: Vec<&str> = top(inc)
        .map(|h| h.mitigations.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let mut details = json!({
        "incident_id": inc.id.to_string(),
        "notification": kind.as_str(),
        "severity": inc.severity.as_str(),
        "severity_reason": inc.severity_reason,
        "status": inc.status.as_str(),
        "root_cause": root_cause_text(inc),
        "mitigations": mitigations,
        "affected": inc.affected,
    });
    if let Some(l) = link {
        details["link"] = json!(l);
    }
    let mut payload = json!({
        "summary": truncate(
            &format!("[{}] {}", inc.severity, one_line(&inc.title)),
            PAGERDUTY_SUMMARY_MAX,
        ),
        "source": source,
        "severity": pagerduty_severity(inc.severity),
        "timestamp": rfc3339_full(inc.detected_at),
        "component": component,
        "class": class,
        "custom_details": details,
    });
    if let Some(ns) = &inc.namespace {
        payload["group"] = json!(ns);
    }
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key,
        "payload": payload,
    });
    if let Some(l) = link {
        event["links"] = json!([{"href": l, "text": format!("Tapio incident {}", inc.id)}]);
    }
    event
}

/// Tapio's generic webhook body (version "1"): the kind, the incident's essentials with the
/// root cause (`null` when there is no confident one), and the rendered text.
pub fn webhook_payload(kind: NotificationKind, inc: &Incident, text: &str) -> Value {
    let t = |t: Option<DateTime<Utc>>| t.map(rfc3339_full);
    let root_cause = root_cause(inc).map_or(Value::Null, |h| {
        json!({
            "cause": h.cause,
            "entity": h.entity,
            "confidence": h.confidence,
            "explanation": h.explanation,
            "mitigations": h.mitigations,
        })
    });
    json!({
        "version": "1",
        "kind": kind,
        "incident": {
            "id": inc.id.to_string(),
            "title": inc.title,
            "severity": inc.severity,
            "status": inc.status,
            "severity_reason": inc.severity_reason,
            "started_at": rfc3339_full(inc.started_at),
            "detected_at": rfc3339_full(inc.detected_at),
            "acknowledged_at": t(inc.acknowledged_at),
            "mitigated_at": t(inc.mitigated_at),
            "resolved_at": t(inc.resolved_at),
            "namespace": inc.namespace,
            "affected": inc.affected,
            "root_cause": root_cause,
        },
        "text": text,
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Escape the characters that start Jira wiki markup macros, links and tables.
fn jira_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '{' | '}' | '[' | ']' | '|') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Jira's comment size limit, with room for the escapes.
const JIRA_COMMENT_MAX: usize = 32_000;

/// A notification's text as a Jira comment body (wiki markup escaped, within the limit).
pub fn jira_comment(text: &str) -> String {
    truncate(&jira_escape(text.trim()), JIRA_COMMENT_MAX)
}

/// A Jira REST v2 "create issue" body. The description is Jira wiki markup: severity and
/// why, status, start, namespace, affected entities, root cause and mitigations.
pub fn jira_payload(inc: &Incident, project_key: &str, issue_type: &str) -> Value {
    let mut d = Vec::new();
    d.push(format!(
        "*Severity:* {} — {}",
        inc.severity,
        inc.severity.label()
    ));
    if !inc.severity_reason.trim().is_empty() {
        d.push(format!(
            "*Why:* {}",
            jira_escape(inc.severity_reason.trim())
        ));
    }
    d.push(format!("*Status:* {}", inc.status));
    d.push(format!(
        "*Started:* {} ({})",
        rfc3339(inc.started_at),
        hhmm(inc.started_at)
    ));
    if let Some(ns) = &inc.namespace {
        d.push(format!("*Namespace:* {}", jira_escape(ns)));
    }
    if !inc.affected.is_empty() {
        d.push("*Affected:*".to_owned());
        d.extend(inc.affected.iter().map(|a| format!("* {}", jira_escape(a))));
    }
    d.push(format!(
        "*Root cause:* {}",
        jira_escape(&root_cause_text(inc))
    ));
    if let Some(h) = top(inc).filter(|h| !h.mitigations.is_empty()) {
        d.push(if inc.root_cause_confident {
            "*Mitigations:*".to_owned()
        } else {
            "*Mitigations (if the leading hypothesis is confirmed):*".to_owned()
        });
        d.extend(
            h.mitigations
                .iter()
                .map(|m| format!("# {}", jira_escape(m))),
        );
    }
    d.push(format!(
        "*Tapio incident:* {} (tapio incidents show {}; post-mortem: tapio postmortem {})",
        inc.id, inc.id, inc.id
    ));
    json!({
        "fields": {
            "project": {"key": project_key},
            "summary": truncate(
                &format!("[{}] {}", inc.severity, one_line(&inc.title)),
                JIRA_SUMMARY_MAX,
            ),
            "description": d.join("\n"),
            "issuetype": {"name": issue_type},
            "labels": ["tapio", inc.severity.as_str().to_ascii_lowercase()],
        }
    })
}

// ---------------------------------------------------------------------------------------
// Email (RFC 5322 / MIME / RFC 2047)
// ---------------------------------------------------------------------------------------

/// Longest body line sent (RFC 5322 allows 998 octets before CRLF).
const EMAIL_MAX_LINE: usize = 998;
/// Recommended header line length (RFC 5322 §2.1.1).
const EMAIL_FOLD_AT: usize = 78;

/// Standard base64 (RFC 4648 §4, padded); used by the email builder and the SMTP client.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Header values never carry line breaks (no header injection).
fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// RFC 2047 "B" encoded-words, each whole UTF-8 characters and at most 64 characters long,
/// separated by folding whitespace.
fn encoded_words(s: &str) -> String {
    const MAX_BYTES: usize = 36; // 48 base64 characters + 12 of "=?UTF-8?B?" and "?=".
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in s.chars() {
        if chunk.len() + c.len_utf8() > MAX_BYTES {
            words.push(format!("=?UTF-8?B?{}?=", base64(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", base64(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

/// `Name: value`, folded at spaces to about 78 characters; non-ASCII values as encoded-words.
fn unstructured_header(name: &str, value: &str) -> String {
    let value = header_safe(value);
    if !value.is_ascii() {
        return format!("{name}: {}", encoded_words(&value));
    }
    let mut out = format!("{name}:");
    let mut line_len = out.len();
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        if line_len + 1 + word.len() > EMAIL_FOLD_AT && line_len > name.len() + 1 {
            out.push_str("\r\n");
            line_len = 0;
        }
        out.push(' ');
        out.push_str(word);
        line_len += 1 + word.len();
    }
    out
}

/// One mailbox: `Name <addr>` with a non-ASCII name encoded, or a bare address.
fn mailbox(s: &str) -> String {
    let s = header_safe(s);
    match s.rsplit_once('<') {
        Some((name, addr)) if !name.trim().is_empty() => {
            let name = name.trim().trim_matches('"');
            let name = if name.is_ascii() {
                format!("\"{}\"", name.replace(['\\', '"'], ""))
            } else {
                encoded_words(name)
            };
            format!("{name} <{}", addr.trim())
        }
        Some((_, addr)) => format!("<{}", addr.trim()),
        None => s,
    }
}

/// `Name: a, b, c`, folded between mailboxes.
fn address_header(name: &str, addrs: &[String]) -> String {
    if addrs.is_empty() {
        // An empty group: the header stays valid (RFC 5322 §3.4).
        return format!("{name}: undisclosed-recipients:;");
    }
    let mut out = format!("{name}:");
    let mut line_len = out.len();
    for (i, a) in addrs.iter().map(|a| mailbox(a)).enumerate() {
        let sep = if i + 1 < addrs.len() { "," } else { "" };
        let first_line = a.split("\r\n").next().unwrap_or("");
        if i > 0 && line_len + 1 + first_line.len() + sep.len() > EMAIL_FOLD_AT {
            out.push_str("\r\n");
            line_len = 0;
        }
        out.push(' ');
        out.push_str(&a);
        out.push_str(sep);
        line_len += 1 + a.rsplit("\r\n").next().unwrap_or("").len() + sep.len();
    }
    out
}

/// The domain of the From address, for Message-IDs.
fn mail_domain(from: &str) -> String {
    let domain = from
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>').trim())
        .unwrap_or("");
    if !domain.is_empty()
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        domain.to_ascii_lowercase()
    } else {
        "tapio.invalid".to_owned()
    }
}

/// The Message-ID of an incident's thread: the Initial message's own ID, and what every
/// later message of the incident replies to.
pub fn email_thread_id(inc: &Incident, from: &str) -> String {
    format!("<tapio.{}@{}>", inc.id, mail_domain(from))
}

/// Split `line` into pieces of at most `max` bytes, at a space where possible, never inside
/// a character.
fn wrap_line(line: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(space) = rest[..cut].rfind(' ').filter(|&i| i > 0) {
            cut = space;
        }
        out.push(&rest[..cut]);
        rest = rest[cut..].strip_prefix(' ').unwrap_or(&rest[cut..]);
    }
    out.push(rest);
    out
}

/// An RFC 5322 message ready for SMTP `DATA` (CRLF line endings; the SMTP client does the
/// dot-stuffing). Subject: `[P1] ` and the first line of `text`, RFC 2047-encoded when not
/// ASCII; body: `text` as UTF-8 plain text, lines kept under 998 octets. The Initial
/// message's Message-ID is the incident's thread ID ([`email_thread_id`]); Updates and
/// Resolutions get their own Message-ID and `In-Reply-To`/`References` pointing at it, so
/// mail clients thread one incident's messages together.
pub fn email_message(
    kind: NotificationKind,
    inc: &Incident,
    text: &str,
    from: &str,
    to: &[String],
    now: DateTime<Utc>,
) -> String {
    let (head, _) = split_heading(text);
    let head = if head.is_empty() {
        default_heading(kind, inc)
    } else {
        head.to_owned()
    };
    let domain = mail_domain(from);
    let thread = email_thread_id(inc, from);
    let message_id = match kind {
        NotificationKind::Initial => thread.clone(),
        _ => {
            let digest = Sha256::digest(text.as_bytes());
            let tag: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
            format!(
                "<tapio.{}.{}.{}.{tag}@{domain}>",
                inc.id,
                kind,
                now.timestamp_millis()
            )
        }
    };
    let mut headers = vec![
        format!("Date: {}", now.to_rfc2822()),
        address_header("From", &[from.to_owned()]),
        address_header("To", to),
        unstructured_header("Subject", &format!("[{}] {}", inc.severity, head)),
        format!("Message-ID: {message_id}"),
    ];
    if kind != NotificationKind::Initial {
        headers.push(format!("In-Reply-To: {thread}"));
        headers.push(format!("References: {thread}"));
    }
    headers.extend([
        "MIME-Version: 1.0".to_owned(),
        "Content-Type: text/plain; charset=utf-8".to_owned(),
        "Content-Transfer-Encoding: 8bit".to_owned(),
        "Auto-Submitted: auto-generated".to_owned(),
        format!("X-Tapio-Incident: {}", inc.id),
    ]);
    let mut msg = headers.join("\r\n");
    msg.push_str("\r\n\r\n");
    for line in text.trim_end().split('\n') {
        for piece in wrap_line(line.trim_end_matches('\r'), EMAIL_MAX_LINE) {
            msg.push_str(piece);
            msg.push_str("\r\n");
        }
    }
    msg
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_261_600 + secs, 0).unwrap()
    }

    fn entry(secs: i64, kind: TimelineKind, message: &str, by: Option<&str>) -> TimelineEntry {
        sample_entry(secs, kind, message, by)
    }

    /// Open at 10:00, acknowledged by bob, confident root cause, a note.
    fn confident() -> Incident {
        let (mut inc, _) = samples().into_iter().next().unwrap();
        inc.id = Ulid::from_parts(1_767_261_600_000, 7);
        inc.status = Status::Acknowledged;
        inc.started_at = t(0);
        inc.detected_at = t(30);
        inc.acknowledged_at = Some(t(240));
        inc.mitigated_at = None;
        inc.resolved_at = None;
        inc.timeline = vec![
            entry(30, TimelineKind::Detected, "detected: OOMKilled", None),
            entry(
                240,
                TimelineKind::StatusChanged,
                "acknowledged by bob",
                Some("bob"),
            ),
            entry(600, TimelineKind::Note, "rolling back to v41", Some("bob")),
        ];
        inc
    }

    /// Open, P2, hypotheses but not confident, nobody acknowledged, no notes.
    fn unsure() -> Incident {
        let mut inc = confident();
        inc.id = Ulid::from_parts(1_767_261_600_000, 8);
        inc.severity = Severity::P2;
        inc.status = Status::Open;
        inc.acknowledged_at = None;
        inc.root_cause_confident = false;
        inc.hypotheses[0].confidence = 0.4;
        inc.timeline.truncate(1);
        inc
    }

    fn ctx() -> RenderContext {
        RenderContext {
            base_url: Some("https://tapio.example.com/".into()),
            now: t(3600),
        }
    }

    fn render(kind: NotificationKind, inc: &Incident, ctx: &RenderContext) -> String {
        Templates::defaults().render(kind, inc, ctx).unwrap()
    }

    #[test]
    fn initial_follows_the_runbook() {
        let inc = confident();
        let s = render(NotificationKind::Initial, &inc, &ctx());
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines,
            [
                "🚨 INCIDENT: P1 - checkout is crash-looping (OOMKilled)",
                "Started: 2026-01-01T10:00:00Z (10:00 UTC)",
                "Impact: P1: checkout serves traffic and 0 of 3 replicas are ready; \
                 affected: Deployment/shop/checkout, Service/shop/checkout",
                "Status: Investigating (acknowledged)",
                "Lead: @bob",
                &format!(
                    "Thread: https://tapio.example.com/api/v1/incidents/{}",
                    inc.id
                ),
            ],
            "{s}"
        );
    }

    #[test]
    fn initial_without_lead_or_link() {
        let s = render(
            NotificationKind::Initial,
            &unsure(),
            &RenderContext::new(t(60)),
        );
        assert!(s.contains("Status: Investigating\n"), "{s}");
        assert!(s.ends_with("Lead: unassigned"), "{s}");
        assert!(!s.contains("Thread"), "{s}");
    }

    #[test]
    fn update_with_confident_root_cause() {
        let inc = confident();
        let s = render(NotificationKind::Update, &inc, &ctx());
        assert!(
            s.starts_with(&format!(
                "📊 UPDATE: {} (P1 - checkout is crash-looping (OOMKilled))\n",
                inc.id
            )),
            "{s}"
        );
        assert!(s.contains("Status: Investigating (acknowledged)\n"), "{s}");
        assert!(
            s.contains(
                "Progress: root cause: rollout v42 raised memory use past the 512Mi limit; \
                 latest note (bob, 10:10 UTC): rolling back to v41\n"
            ),
            "{s}"
        );
        assert!(
            s.contains(
                "Next Steps: kubectl rollout undo deployment/checkout -n shop; \
                 raise the memory limit of checkout\n"
            ),
            "{s}"
        );
        assert!(s.contains("ETA: unknown\n"), "{s}");
    }

    #[test]
    fn update_without_confident_root_cause() {
        let mut inc = unsure();
        inc.timeline.push(entry(
            900,
            TimelineKind::Note,
            "eta: 10:45 UTC",
            Some("carol"),
        ));
        let s = render(NotificationKind::Update, &inc, &RenderContext::new(t(1000)));
        assert!(s.contains("Status: Investigating\n"), "{s}");
        assert!(
            s.contains(
                "Progress: no confident root cause yet (leading hypothesis: memory limit too \
                 low after rollout on Deployment/shop/checkout, 40 %)"
            ),
            "{s}"
        );
        assert!(
            s.contains("Next Steps: confirm memory limit too low after rollout on"),
            "{s}"
        );
        assert!(s.ends_with("ETA: 10:45 UTC"), "{s}");

        let mut bare = unsure();
        bare.hypotheses.clear();
        let s = render(
            NotificationKind::Update,
            &bare,
            &RenderContext::new(t(1000)),
        );
        assert!(s.contains("Progress: no confident root cause yet\n"), "{s}");
        assert!(s.contains("Next Steps: investigate"), "{s}");
    }

    #[test]
    fn resolution_with_and_without_root_cause() {
        let mut inc = confident();
        inc.status = Status::Resolved;
        inc.resolved_at = Some(t(4320));
        inc.timeline.push(entry(
            4320,
            TimelineKind::StatusChanged,
            "resolved by bob",
            Some("bob"),
        ));
        let s = render(NotificationKind::Resolution, &inc, &ctx());
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines[..5],
            [
                format!(
                    "✅ RESOLVED: {} (P1 - checkout is crash-looping (OOMKilled))",
                    inc.id
                )
                .as_str(),
                "Duration: 1 h 12 min",
                "Cause: memory limit too low after rollout on Deployment/shop/checkout",
                "Resolution: rolling back to v41",
                &format!("Follow-up: post-mortem: tapio postmortem {}", inc.id),
            ],
            "{s}"
        );

        // No note, no confident cause, resolved by a person.
        let mut inc = unsure();
        inc.status = Status::Resolved;
        inc.resolved_at = Some(t(125));
        inc.timeline.push(entry(
            125,
            TimelineKind::StatusChanged,
            "resolved by dave",
            Some("dave"),
        ));
        let s = render(
            NotificationKind::Resolution,
            &inc,
            &RenderContext::new(t(200)),
        );
        assert!(s.contains("Duration: 2 min\n"), "{s}");
        assert!(s.contains("Cause: no confident root cause\n"), "{s}");
        assert!(s.contains("Resolution: resolved by dave\n"), "{s}");

        // Resolved by Tapio after the quiet period.
        inc.timeline.pop();
        inc.timeline.push(entry(
            125,
            TimelineKind::StatusChanged,
            "resolved: no new symptom for 15 min and no condition still active",
            None,
        ));
        let s = render(
            NotificationKind::Resolution,
            &inc,
            &RenderContext::new(t(200)),
        );
        assert!(
            s.contains("Resolution: resolved: no new symptom for 15 min"),
            "{s}"
        );
    }

    #[test]
    fn lead_from_an_implicit_acknowledgement() {
        let mut inc = unsure();
        inc.status = Status::Mitigated;
        inc.acknowledged_at = Some(t(300));
        inc.mitigated_at = Some(t(300));
        inc.timeline.push(entry(
            300,
            TimelineKind::StatusChanged,
            "mitigated by erin",
            Some("erin"),
        ));
        let s = render(NotificationKind::Initial, &inc, &ctx());
        assert!(s.contains("Lead: @erin"), "{s}");
    }

    #[test]
    fn durations_read_like_people_write_them() {
        let d = chrono::Duration::seconds;
        assert_eq!(human_duration(d(45)), "45 s");
        assert_eq!(human_duration(d(12 * 60 + 5)), "12 min");
        assert_eq!(human_duration(d(3600)), "1 h");
        assert_eq!(human_duration(d(4320)), "1 h 12 min");
        assert_eq!(human_duration(d(2 * 86_400 + 3 * 3600 + 60)), "2 d 3 h");
        assert_eq!(human_duration(d(-5)), "0 s");
        let s = render(NotificationKind::Resolution, &unsure(), &ctx());
        assert!(s.contains("Duration: 1 h (ongoing)"), "{s}");
    }

    fn write(dir: &std::path::Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("tapio-notify-{}", Ulid::new()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn overrides_load_and_render() {
        let dir = tempdir();
        let p = write(
            &dir,
            "initial.j2",
            "{{ severity }} {{ title | upper }}\n\
             {% for a in affected %}\n\
             - {{ a }}\n\
             {% endfor %}\n\
             lead={{ lead }} ns={{ namespace | default('-', true) }} \
             ack={{ acknowledged_at | hhmm if acknowledged_at else 'no' }}\n\
             {% if root_cause %}cause={{ root_cause.cause }}{% endif %}\n",
        );
        let t = Templates::load(&[(NotificationKind::Initial, p.clone())]).unwrap();
        assert_eq!(t.name(NotificationKind::Initial), p.display().to_string());
        let s = t
            .render(NotificationKind::Initial, &confident(), &ctx())
            .unwrap();
        assert_eq!(
            s,
            "P1 CHECKOUT IS CRASH-LOOPING (OOMKILLED)\n\
             - Deployment/shop/checkout\n\
             - Service/shop/checkout\n\
             lead=bob ns=shop ack=10:04 UTC\n\
             cause=memory limit too low after rollout"
        );
        // The other kinds keep the defaults.
        let u = t
            .render(NotificationKind::Update, &confident(), &ctx())
            .unwrap();
        assert!(u.starts_with("📊 UPDATE:"), "{u}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let dir = tempdir();
        let p = write(
            &dir,
            "update.j2",
            "UPDATE {{ id }}\nStatus: {{ status }}\nProgress: {% if progress %}{{ progress }\n",
        );
        let e = Templates::load(&[(NotificationKind::Update, p.clone())]).unwrap_err();
        assert_eq!(e.file, p.display().to_string());
        assert_eq!(e.line, Some(3), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("{}:3: syntax error", p.display())),
            "{e}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn undefined_variable_is_caught_at_load() {
        let dir = tempdir();
        let p = write(
            &dir,
            "resolution.j2",
            "RESOLVED {{ id }}\n\nCause: {{ root_cuase }}\n",
        );
        let e = Templates::load(&[(NotificationKind::Resolution, p.clone())]).unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("{}:3: undefined value", p.display())),
            "{shown}"
        );
        assert!(shown.contains("root_cuase"), "{shown}");

        // A typo in a branch only one of the samples takes is caught too.
        let p = write(
            &dir,
            "initial.j2",
            "{% if root_cause %}ok{% else %}{{ nope }}{% endif %}",
        );
        let e = Templates::load(&[(NotificationKind::Initial, p)]).unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");

        // An attribute of a value that is none for some incidents.
        let p = write(&dir, "update.j2", "x\n{{ root_cause.cause }}");
        let e = Templates::load(&[(NotificationKind::Update, p)]).unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");

        // An optional time formatted without a guard.
        let p = write(&dir, "update.j2", "acked {{ acknowledged_at | hhmm }}");
        let e = Templates::load(&[(NotificationKind::Update, p)]).unwrap_err();
        assert!(
            e.message.contains("hhmm needs an RFC 3339 time, got none"),
            "{e}"
        );

        // An unknown filter.
        let p = write(&dir, "update.j2", "{{ title | shout }}");
        let e = Templates::load(&[(NotificationKind::Update, p)]).unwrap_err();
        assert!(e.message.contains("shout"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unreadable_file_is_an_error_without_a_line() {
        let e = Templates::load(&[(
            NotificationKind::Initial,
            PathBuf::from("/nonexistent/tapio/initial.j2"),
        )])
        .unwrap_err();
        assert_eq!(e.line, None);
        assert!(
            e.to_string()
                .starts_with("/nonexistent/tapio/initial.j2: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn defaults_render_every_sample() {
        let t = Templates::defaults();
        for kind in NotificationKind::ALL {
            for (inc, ctx) in samples() {
                let s = t.render(kind, &inc, &ctx).unwrap();
                assert!(!s.contains("\n\n"), "{kind}: {s}");
            }
        }
    }

    #[test]
    fn kind_serde_and_parse() {
        assert_eq!(
            serde_json::to_string(&NotificationKind::Resolution).unwrap(),
            "\"resolution\""
        );
        assert_eq!(
            "Update".parse::<NotificationKind>(),
            Ok(NotificationKind::Update)
        );
        assert!("final".parse::<NotificationKind>().is_err());
    }

    #[test]
    fn slack_payload_shape() {
        let inc = confident();
        let text = render(NotificationKind::Initial, &inc, &ctx());
        let link = ctx().link(&inc).unwrap();
        let p = slack_payload(NotificationKind::Initial, &inc, &text, Some(&link));
        assert_eq!(p["text"], json!(text));
        let blocks = p["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 4);
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["type"], "plain_text");
        assert_eq!(blocks[0]["text"]["emoji"], true);
        assert_eq!(
            blocks[0]["text"]["text"],
            "🚨 INCIDENT: P1 - checkout is crash-looping (OOMKilled)"
        );
        assert_eq!(blocks[1]["type"], "section");
        assert_eq!(
            blocks[1]["fields"],
            json!([
                {"type": "mrkdwn", "text": "*Severity*\nP1"},
                {"type": "mrkdwn", "text": "*Status*\nacknowledged"},
                {"type": "mrkdwn", "text": "*Started*\n2026-01-01 10:00 UTC"},
                {"type": "mrkdwn", "text": "*Lead*\nbob"},
            ])
        );
        assert_eq!(blocks[2]["text"]["type"], "mrkdwn");
        assert!(
            blocks[2]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with("Started: ")
        );
        assert_eq!(blocks[3]["type"], "context");
        assert_eq!(
            blocks[3]["elements"][0]["text"],
            json!(format!("tapio · {} · <{link}|open in Tapio>", inc.id))
        );
    }

    #[test]
    fn slack_payload_respects_block_kit_limits() {
        let mut inc = confident();
        inc.title = "x".repeat(500);
        let body = "<&>".repeat(2000);
        let text = format!("🚨 INCIDENT: P1 - {}\n{body}", inc.title);
        let p = slack_payload(NotificationKind::Initial, &inc, &text, None);
        let blocks = p["blocks"].as_array().unwrap();
        let header = blocks[0]["text"]["text"].as_str().unwrap();
        assert_eq!(header.chars().count(), SLACK_HEADER_MAX);
        assert!(header.ends_with('…'));
        let section = blocks[2]["text"]["text"].as_str().unwrap();
        assert!(section.chars().count() <= SLACK_SECTION_TEXT_MAX);
        // Cut after a whole escape, never inside one.
        assert!(
            section.ends_with(";…"),
            "{}",
            &section[section.len() - 20..]
        );
        assert!(section.starts_with("&lt;&amp;&gt;"));
        assert!(blocks[1]["fields"].as_array().unwrap().len() <= SLACK_FIELDS_MAX);
        for f in blocks[1]["fields"].as_array().unwrap() {
            assert!(f["text"].as_str().unwrap().chars().count() <= SLACK_FIELD_TEXT_MAX);
        }
        // No body: no empty section (Slack refuses empty text).
        let p = slack_payload(NotificationKind::Update, &inc, "", None);
        let blocks = p["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 3);
        assert!(
            blocks[0]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with("📊 UPDATE:")
        );
    }

    #[test]
    fn pagerduty_actions_follow_the_status() {
        let mut inc = confident();
        for (status, action) in [
            (Status::Open, "trigger"),
            (Status::Acknowledged, "acknowledge"),
            (Status::Mitigated, "acknowledge"),
            (Status::Resolved, "resolve"),
        ] {
            inc.status = status;
            let p = pagerduty_payload(NotificationKind::Update, &inc, "R0UT1NG", "tapio");
            assert_eq!(p["event_action"], action);
            assert_eq!(p["dedup_key"], json!(format!("tapio-{}", inc.id)));
            if action != "trigger" {
                assert_eq!(
                    p,
                    json!({
                        "routing_key": "R0UT1NG",
                        "event_action": action,
                        "dedup_key": format!("tapio-{}", inc.id),
                    })
                );
            }
        }
    }

    #[test]
    fn pagerduty_trigger_payload() {
        let mut inc = confident();
        inc.status = Status::Open;
        inc.title = "y".repeat(2000);
        let link = "https://tapio.example.com/api/v1/incidents/x";
        let p = pagerduty_payload_with_link(
            NotificationKind::Initial,
            &inc,
            "R0UT1NG",
            "tapio-server.prod",
            Some(link),
        );
        let payload = &p["payload"];
        assert_eq!(payload["severity"], "critical");
        assert_eq!(payload["source"], "tapio-server.prod");
        assert_eq!(payload["timestamp"], "2026-01-01T10:00:30Z");
        assert_eq!(payload["component"], "Deployment/shop/checkout");
        assert_eq!(payload["group"], "shop");
        assert_eq!(payload["class"], "memory limit too low after rollout");
        let summary = payload["summary"].as_str().unwrap();
        assert_eq!(summary.chars().count(), PAGERDUTY_SUMMARY_MAX);
        assert!(summary.starts_with("[P1] yyy") && summary.ends_with('…'));
        let d = &payload["custom_details"];
        assert_eq!(d["link"], link);
        assert_eq!(
            d["mitigations"][0],
            "kubectl rollout undo deployment/checkout -n shop"
        );
        assert_eq!(
            d["root_cause"],
            "rollout v42 raised memory use past the 512Mi limit"
        );
        assert_eq!(
            p["links"],
            json!([{"href": link, "text": format!("Tapio incident {}", inc.id)}])
        );

        // Same incident later: same dedup key. Without a link: no links.
        let again = pagerduty_payload(NotificationKind::Update, &inc, "R0UT1NG", "x");
        assert_eq!(again["dedup_key"], p["dedup_key"]);
        assert!(again.get("links").is_none());

        // Severity mapping; no namespace → no group; unsure → the problem as class.
        let mut inc = unsure();
        inc.namespace = None;
        for (sev, pd) in [
            (Severity::P1, "critical"),
            (Severity::P2, "error"),
            (Severity::P3, "warning"),
            (Severity::P4, "info"),
        ] {
            inc.severity = sev;
            let p = pagerduty_payload(NotificationKind::Initial, &inc, "k", "s");
            assert_eq!(p["payload"]["severity"], pd);
            assert!(p["payload"].get("group").is_none());
            assert_eq!(p["payload"]["class"], "oom");
        }
    }

    #[test]
    fn webhook_payload_shape() {
        let inc = confident();
        let p = webhook_payload(NotificationKind::Update, &inc, "hello");
        assert_eq!(p["version"], "1");
        assert_eq!(p["kind"], "update");
        assert_eq!(p["text"], "hello");
        let i = &p["incident"];
        assert_eq!(i["id"], json!(inc.id.to_string()));
        assert_eq!(i["severity"], "P1");
        assert_eq!(i["status"], "acknowledged");
        assert_eq!(i["started_at"], "2026-01-01T10:00:00Z");
        assert_eq!(i["acknowledged_at"], "2026-01-01T10:04:00Z");
        assert_eq!(i["resolved_at"], Value::Null);
        assert_eq!(i["namespace"], "shop");
        assert_eq!(i["root_cause"]["entity"], "Deployment/shop/checkout");
        assert_eq!(i["root_cause"]["confidence"], 0.9);
        let p = webhook_payload(NotificationKind::Initial, &unsure(), "");
        assert_eq!(p["incident"]["root_cause"], Value::Null);
    }

    #[test]
    fn jira_fields() {
        let inc = confident();
        let p = jira_payload(&inc, "OPS", "Incident");
        let f = &p["fields"];
        assert_eq!(f["project"], json!({"key": "OPS"}));
        assert_eq!(f["issuetype"], json!({"name": "Incident"}));
        assert_eq!(f["summary"], "[P1] checkout is crash-looping (OOMKilled)");
        assert_eq!(f["labels"], json!(["tapio", "p1"]));
        let d = f["description"].as_str().unwrap();
        assert!(
            d.contains("*Severity:* P1 — Critical (Service Down)"),
            "{d}"
        );
        assert!(
            d.contains("# kubectl rollout undo deployment/checkout -n shop"),
            "{d}"
        );
        assert!(d.contains(&format!("tapio postmortem {}", inc.id)), "{d}");
        let mut long = unsure();
        long.title = "a\nb ".repeat(200);
        let p = jira_payload(&long, "OPS", "Bug");
        let s = p["fields"]["summary"].as_str().unwrap();
        assert!(s.chars().count() <= JIRA_SUMMARY_MAX && !s.contains('\n'));
        assert_eq!(p["fields"]["labels"][1], "p2");
    }

    fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
        let head = msg.split("\r\n\r\n").next().unwrap();
        head.split("\r\n")
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
    }

    #[test]
    fn email_headers_and_crlf() {
        let inc = confident();
        let text = render(NotificationKind::Initial, &inc, &ctx());
        let to = vec![
            "oncall@example.com".to_owned(),
            "Ops Team <ops@example.com>".to_owned(),
        ];
        let m = email_message(
            NotificationKind::Initial,
            &inc,
            &text,
            "Tapio <tapio@alerts.example.com>",
            &to,
            t(60),
        );
        // CRLF only.
        assert!(!m.replace("\r\n", "").contains(['\r', '\n']));
        assert!(m.ends_with("\r\n"));
        assert_eq!(header(&m, "Date"), Some("Thu, 1 Jan 2026 10:01:00 +0000"));
        assert_eq!(
            header(&m, "From"),
            Some("\"Tapio\" <tapio@alerts.example.com>")
        );
        assert_eq!(
            header(&m, "To"),
            Some("oncall@example.com, \"Ops Team\" <ops@example.com>")
        );
        assert_eq!(header(&m, "MIME-Version"), Some("1.0"));
        assert_eq!(
            header(&m, "Content-Type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(header(&m, "Content-Transfer-Encoding"), Some("8bit"));
        let thread = format!("<tapio.{}@alerts.example.com>", inc.id);
        assert_eq!(header(&m, "Message-ID"), Some(thread.as_str()));
        assert_eq!(header(&m, "In-Reply-To"), None);

        // Subject: non-ASCII → RFC 2047 encoded-words, folded; decodes back.
        let head = m.split("\r\n\r\n").next().unwrap();
        let subject_start = head.find("Subject: ").unwrap();
        let subject: Vec<&str> = head[subject_start + 9..]
            .split("\r\n")
            .take_while(|l| !l.contains(": ") || l.starts_with(' '))
            .collect();
        let mut decoded = Vec::new();
        for (i, w) in subject.iter().enumerate() {
            let w = if i == 0 {
                *w
            } else {
                w.strip_prefix(' ').unwrap()
            };
            assert!(
                w.len() <= 75 && w.starts_with("=?UTF-8?B?") && w.ends_with("?="),
                "{w}"
            );
            decoded.extend(decode_b64(&w[10..w.len() - 2]));
        }
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "[P1] 🚨 INCIDENT: P1 - checkout is crash-looping (OOMKilled)"
        );
        // The body is the text, CRLF.
        let body = m.split_once("\r\n\r\n").unwrap().1;
        assert_eq!(body, format!("{}\r\n", text.replace('\n', "\r\n")));

        // An update threads under the initial message.
        let text = render(NotificationKind::Update, &inc, &ctx());
        let u = email_message(
            NotificationKind::Update,
            &inc,
            &text,
            "tapio@alerts.example.com",
            &to,
            t(900),
        );
        assert_eq!(header(&u, "In-Reply-To"), Some(thread.as_str()));
        assert_eq!(header(&u, "References"), Some(thread.as_str()));
        let id = header(&u, "Message-ID").unwrap();
        assert_ne!(id, thread);
        assert!(
            id.starts_with('<') && id.ends_with("@alerts.example.com>"),
            "{id}"
        );
    }

    #[test]
    fn email_ascii_subject_folds_and_long_lines_wrap() {
        let mut inc = unsure();
        inc.title = "word ".repeat(40);
        let text = format!("INCIDENT {}\n{}\nend", inc.title.trim(), "z".repeat(2500));
        let m = email_message(
            NotificationKind::Initial,
            &inc,
            &text,
            "Hälytys <tapio@example.com>",
            &["a@example.com".to_owned()],
            t(0),
        );
        for line in m.split("\r\n") {
            assert!(line.len() <= EMAIL_MAX_LINE, "{}", line.len());
        }
        let head = m.split("\r\n\r\n").next().unwrap();
        assert!(head.contains("Subject: [P2] INCIDENT word word"), "{head}");
        assert!(head.contains("\r\n word"), "{head}");
        for line in head.split("\r\n") {
            assert!(line.len() <= EMAIL_FOLD_AT, "{line}");
        }
        assert!(
            header(&m, "From")
                .unwrap()
                .starts_with("=?UTF-8?B?SMOkbHl0eXM=?= <tapio@example.com>"),
            "{m}"
        );
        // Header injection is neutralised.
        let m = email_message(
            NotificationKind::Initial,
            &inc,
            "x",
            "a@example.com\r\nBcc: evil@example.com",
            &["b@example.com".to_owned()],
            t(0),
        );
        assert!(!m.contains("\r\nBcc:"), "{m}");
    }

    fn decode_b64(s: &str) -> Vec<u8> {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bits = 0u32;
        let mut n = 0;
        let mut out = Vec::new();
        for c in s.bytes().filter(|&c| c != b'=') {
            bits = (bits << 6) | A.iter().position(|&a| a == c).unwrap() as u32;
            n += 6;
            if n >= 8 {
                n -= 8;
                out.push((bits >> n) as u8);
            }
        }
        out
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
    }
}
