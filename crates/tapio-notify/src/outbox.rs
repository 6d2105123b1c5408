//! Which incident changes notify whom: one outbox item per state change per routed
//! receiver. The state is (status, severity, reopen count); the item key is built from it,
//! so re-deriving the same change (a replay after a crash) enqueues nothing new.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tapio_core::{Incident, Severity, Status};
use tapio_store::OutboxItem;
use ulid::Ulid;

use crate::config::NotifyConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    status: Status,
    severity: Severity,
    reopens: usize,
}

fn state(inc: &Incident) -> State {
    State {
        status: inc.status,
        severity: inc.severity,
        reopens: inc
            .timeline
            .iter()
            .filter(|e| e.message.starts_with("reopened"))
            .count(),
    }
}

/// Incidents remembered (their last notified state); beyond it the map is cleared, which
/// at worst re-derives states whose items already exist (ignored by their keys).
const MAX_REMEMBERED: usize = 100_000;

pub struct Notifier {
    pub cfg: Arc<NotifyConfig>,
    pub silences: crate::Silences,
    last: HashMap<Ulid, State>,
}

impl Notifier {
    pub fn new(cfg: Arc<NotifyConfig>, silences: crate::Silences) -> Self {
        Self {
            cfg,
            silences,
            last: HashMap::new(),
        }
    }

    /// Outbox items for this incident's current state (none when it did not change).
    pub fn items_for(&mut self, inc: &Incident, now: DateTime<Utc>) -> Vec<OutboxItem> {
        // A merged incident lives on in the one it joined.
        if inc.merged_into.is_some() {
            return Vec::new();
        }
        let st = state(inc);
        let known = self.last.get(&inc.id).copied();
        if known == Some(st) {
            return Vec::new();
        }
        if self.last.len() >= MAX_REMEMBERED {
            self.last.clear();
        }
        self.last.insert(inc.id, st);
        // A silenced incident is recorded as usual; its notifications are held.
        if let Ok(list) = self.silences.read()
            && let Some(s) = tapio_core::silence::silenced_by(&list, inc, now)
        {
            tracing::info!(component = "notify", incident = %inc.id, silence = %s.id,
                "notification held by a silence");
            return Vec::new();
        }
        let kind = match (st.status, known) {
            (Status::Resolved, _) => "resolution",
            (_, None) if st.reopens == 0 && st.status == Status::Open => "initial",
            _ => "update",
        };
        // Route by the most severe level reached, so the people paged for a P1 also hear
        // that it ended.
        let level = inc.peak_severity.unwrap_or(inc.severity).min(inc.severity);
        let body = match serde_json::to_string(inc) {
            Ok(b) => b,
            Err(_) => return Vec::new(),
        };
        self.cfg
            .route(level, inc)
            .into_iter()
            // Jira tracks P1/P2 incidents only (the runbook's tracking rule).
            .filter(|r| r.kind != crate::config::Kind::Jira || level <= Severity::P2)
            .map(|r| OutboxItem {
                key: format!(
                    "{}:{}:{}:{}:{}",
                    inc.id,
                    st.status.as_str(),
                    st.severity.as_str(),
                    st.reopens,
                    r.name
                ),
                incident: inc.id,
                receiver: r.name.clone(),
                kind: kind.into(),
                body: body.clone(),
                created_at: now,
            })
            .collect()
    }
}
