//! The Jira receiver (REST API v2): one issue per P1/P2 incident for tracking, later state
//! changes as comments on it.
//!
//! The issue carries the label `tapio-<incident id>`; before creating, the receiver looks
//! for that label. A retry after a lost response therefore finds the issue it already
//! created instead of making a second one, and a restart needs no local record of the
//! issue key.

use tapio_core::Incident;
use tapio_core::notify::NotificationKind;

use super::config::JiraCfg;
use super::dispatch::{Sent, outcome};

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
            tapio_core::notify::base64(format!("{user}:{token}").as_bytes())
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
    Err(Sent::Refused(super::redact::redact_urls(&format!(
        "Jira search not found at {base}/rest/api/2/search[/jql] ({}); is url the Jira base URL?",
        last.unwrap_or_default()
    ))))
}

/// Create the incident's issue, or comment on it for an Update or Resolution.
pub(super) fn send(
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
            let mut body = tapio_core::notify::jira_payload(inc, &cfg.project, &cfg.issue_type);
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
            let body = serde_json::json!({ "body": tapio_core::notify::jira_comment(text) });
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
