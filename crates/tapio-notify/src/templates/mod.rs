//! The runbook's communication templates: which message ([`NotificationKind`]), the
//! compiled templates ([`Templates`]) and what they render from an incident. The only I/O
//! is reading user template files in [`Templates::load`].
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

mod facts;
pub(crate) mod samples;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use tapio_core::Incident;
use tapio_proto::text::cut_chars;
use ulid::Ulid;

pub(crate) use facts::hhmm;
pub use facts::human_duration;
use facts::template_vars;
pub(crate) use facts::{acknowledged_by, rfc3339, rfc3339_full, root_cause, root_cause_text, top};
use samples::samples;

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
        message.push_str(&format!(" (in `{}`)", cut_chars(text, 120)));
    }
    TemplateError {
        file: e.name().unwrap_or(file).to_owned(),
        line,
        message,
    }
}
