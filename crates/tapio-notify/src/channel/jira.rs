//! Jira (REST API v2): one issue per P1/P2 incident for tracking, later state changes as
//! comments on it. The issue description is Jira wiki markup, escaped.
//!
//! The issue carries the label `tapio-<incident id>`; before creating, the receiver looks
//! for that label. A retry after a lost response therefore finds the issue it already
//! created instead of making a second one, and a restart needs no local record of the
//! issue key.

use base64::Engine as _;
use serde_json::{Value, json};
use tapio_core::Incident;
use tapio_proto::text::cut_chars;

use super::http::outcome;
use super::{Sent, one_line};
use crate::config::JiraCfg;
use crate::redact;
use crate::templates::{NotificationKind, hhmm, rfc3339, root_cause_text, top};

/// Jira's summary field limit.
pub const JIRA_SUMMARY_MAX: usize = 255;

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
pub fn comment(text: &str) -> String {
    cut_chars(&jira_escape(text.trim()), JIRA_COMMENT_MAX)
}

/// A Jira REST v2 "create issue" body. The description is Jira wiki markup: severity and
/// why, status, start, namespace, affected entities, root cause and mitigations.
pub fn payload(inc: &Incident, project_key: &str, issue_type: &str) -> Value {
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
            "summary": cut_chars(
                &format!("[{}] {}", inc.severity, one_line(&inc.title)),
                JIRA_SUMMARY_MAX,
            ),
            "description": d.join("\n"),
            "issuetype": {"name": issue_type},
            "labels": ["tapio", inc.severity.as_str().to_ascii_lowercase()],
        }
    })
}

/// The label that ties a Jira issue to its incident.
pub fn incident_label(inc: &Incident) -> String {
    format!("tapio-{}", inc.id)
}

fn auth(cfg: &JiraCfg) -> String {
    let token = cfg.token.as_deref().unwrap_or("");
    match &cfg.username {
        // Jira Cloud: account email + API token.
        Some(user) => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"))
        ),
        // Jira Data Center: a personal access token.
        None => format!("Bearer {token}"),
    }
}

/// The key of the issue already made for this incident, if any. Tries the current search
/// endpoint (`/search/jql`) and falls back to the classic one for Jira Data Center.
fn find(
    agent: &ureq::Agent,
    base: &str,
    cfg: &JiraCfg,
    inc: &Incident,
) -> Result<Option<String>, Sent> {
    // The label is [A-Za-z0-9-]: safe inside a quoted JQL string and a query string.
    let jql = format!("labels%20%3D%20%22{}%22", incident_label(inc));
    let mut last = None;
    for path in ["rest/api/2/search/jql", "rest/api/2/search"] {
        let url = format!("{base}/{path}?jql={jql}&fields=key&maxResults=1");
        let res = agent
            .get(&url)
            .header("authorization", auth(cfg))
            .header("accept", "application/json")
            .call();
        let (sent, body) = outcome(res);
        match sent {
            Sent::Ok => {
                let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| {
                    Sent::Retry(format!("Jira search answered unreadable JSON: {e}"), None)
                })?;
                return Ok(v["issues"]
                    .as_array()
                    .and_then(|a| a.first())
                    .and_then(|i| i["key"].as_str())
                    .map(str::to_owned));
            }
            // Not this Jira's endpoint: try the other one.
            Sent::Refused(m) if m.starts_with("404") || m.starts_with("410") => last = Some(m),
            other => return Err(other),
        }
    }
    Err(Sent::Refused(redact::redact_urls(&format!(
        "Jira search not found at {base}/rest/api/2/search[/jql] ({}); is url the Jira base URL?",
        last.unwrap_or_default()
    ))))
}

/// Create the incident's issue, or comment on it for an Update or Resolution.
pub fn send(
    agent: &ureq::Agent,
    base: &str,
    cfg: &JiraCfg,
    kind: NotificationKind,
    inc: &Incident,
    text: &str,
) -> Sent {
    let base = base.trim_end_matches('/');
    let existing = match find(agent, base, cfg, inc) {
        Ok(k) => k,
        Err(s) => return s,
    };
    match existing {
        None => {
            // Also for a first Update (an incident that became P2 later): the new issue's
            // description already shows the current state.
            let mut body = payload(inc, &cfg.project, &cfg.issue_type);
            if let Some(labels) = body["fields"]["labels"].as_array_mut() {
                labels.push(incident_label(inc).into());
            }
            outcome(
                agent
                    .post(&format!("{base}/rest/api/2/issue"))
                    .header("authorization", auth(cfg))
                    .header("content-type", "application/json")
                    .send(body.to_string().as_bytes()),
            )
            .0
        }
        // A retried Initial whose first attempt did create the issue.
        Some(_) if kind == NotificationKind::Initial => Sent::Ok,
        Some(key) => {
            let body = serde_json::json!({ "body": comment(text) });
            outcome(
                agent
                    .post(&format!("{base}/rest/api/2/issue/{key}/comment"))
                    .header("authorization", auth(cfg))
                    .header("content-type", "application/json")
                    .send(body.to_string().as_bytes()),
            )
            .0
        }
    }
}

#[cfg(test)]
mod tests {
    // Test code: unwrap failures are the test failing.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::fixtures::*;

    #[test]
    fn jira_fields() {
        let inc = confident();
        let p = payload(&inc, "OPS", "Incident");
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
        let p = payload(&long, "OPS", "Bug");
        let s = p["fields"]["summary"].as_str().unwrap();
        assert!(s.chars().count() <= JIRA_SUMMARY_MAX && !s.contains('\n'));
        assert_eq!(p["fields"]["labels"][1], "p2");
    }
}
