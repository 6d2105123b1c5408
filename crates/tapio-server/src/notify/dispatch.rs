//! The dispatcher: delivers due outbox items, one attempt at a time per item, with
//! exponential backoff (honouring Retry-After, e.g. PagerDuty's 429 past ~120 events a
//! minute per key), a bounded number of attempts, then the receiver's fallback. A pager
//! only ever gets the newest state of an incident: an older undelivered state is
//! superseded, so nothing pages after an acknowledgement.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tapio_core::Incident;
use tapio_core::notify::{NotificationKind, RenderContext, Templates};
use tapio_store::{OutboxItem, OutboxRow, OutboxUpdate, Store};
use tokio::sync::{Notify, watch};

use super::config::{Kind, NotifyConfig, Receiver};
use crate::metrics::Metrics;

pub struct Dispatcher {
    pub store: Arc<dyn Store>,
    pub cfg: Arc<NotifyConfig>,
    pub templates: Arc<Templates>,
    pub wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    pub silences: crate::silences::Shared,
    /// To record escalations on the incident's timeline (through its single writer).
    pub commands: tokio::sync::mpsc::Sender<crate::correlator::Command>,
}

/// URL, JSON body and extra headers of one delivery.
type Request = (String, String, Vec<(String, String)>);

enum Sent {
    Ok,
    Retry(String, Option<Duration>),
    /// The receiver refuses this message for good (4xx other than 408/429).
    Refused(String),
}

fn kind_of(s: &str) -> NotificationKind {
    match s {
        // The escalation target hears about the incident for the first time.
        "initial" | "escalation" => NotificationKind::Initial,
        "resolution" => NotificationKind::Resolution,
        _ => NotificationKind::Update,
    }
}

impl Dispatcher {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(self.cfg.timeout))
            .build()
            .into();
        let mut last_schedule = std::time::Instant::now() - Duration::from_secs(60);
        loop {
            if *shutdown.borrow() {
                break;
            }
            let now = Utc::now();
            if last_schedule.elapsed() >= Duration::from_secs(5) {
                last_schedule = std::time::Instant::now();
                self.schedule(now).await;
            }
            let due = match self.store.outbox_due(now, 64).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(component = "notify", error = %e, "reading the outbox failed");
                    Vec::new()
                }
            };
            // Pagers get only the newest state of each incident.
            let mut newest: HashMap<(ulid::Ulid, String), i64> = HashMap::new();
            for r in &due {
                if self
                    .cfg
                    .receiver(&r.item.receiver)
                    .is_some_and(|x| x.kind.is_pager())
                {
                    let e = newest
                        .entry((r.item.incident, r.item.receiver.clone()))
                        .or_insert(r.id);
                    *e = (*e).max(r.id);
                }
            }
            for row in &due {
                if newest
                    .get(&(row.item.incident, row.item.receiver.clone()))
                    .is_some_and(|n| *n != row.id)
                {
                    self.count(&row.item.receiver, "superseded");
                    let _ = self
                        .store
                        .outbox_update(row.id, OutboxUpdate::Superseded)
                        .await;
                    continue;
                }
                self.deliver(&agent, row).await;
            }
            if due.len() < 64 {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    /// Escalations and cadence updates due now (each enqueued once by its key).
    async fn schedule(&self, now: chrono::DateTime<Utc>) {
        let active = match self.store.active_incidents().await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(component = "notify", error = %e, "reading open incidents failed");
                return;
            }
        };
        // Silenced incidents get no escalations or cadence updates either.
        let silences = self.silences.read().map(|l| l.clone()).unwrap_or_default();
        let active: Vec<Incident> = active
            .into_iter()
            .filter(|i| tapio_core::silence::silenced_by(&silences, i, now).is_none())
            .collect();
        let s = super::schedule::scheduled(&active, &self.cfg, now);
        for (item, note) in s.items.into_iter().zip(s.notes) {
            let id = item.incident;
            let new = self.store.outbox_enqueue(vec![item]).await.unwrap_or(0) > 0;
            if !new {
                continue;
            }
            self.wake.notify_one();
            let Some(note) = note else {
                continue;
            };
            tracing::warn!(component = "notify", incident = %id, note = %note, "escalated");
            let (tx, rx) = tokio::sync::oneshot::channel();
            let cmd = crate::correlator::Command {
                kind: crate::correlator::CommandKind::Act {
                    id,
                    action: tapio_core::lifecycle::Action::Note { text: note },
                    by: "tapio".into(),
                },
                reply: tx,
            };
            if self.commands.send(cmd).await.is_ok() {
                let _ = rx.await;
            }
        }
    }

    fn count(&self, receiver: &str, result: &str) {
        self.metrics.notification(receiver, result);
    }

    async fn deliver(&self, agent: &ureq::Agent, row: &OutboxRow) {
        let Some(rcv) = self.cfg.receiver(&row.item.receiver).cloned() else {
            self.count(&row.item.receiver, "failed");
            let _ = self
                .store
                .outbox_update(
                    row.id,
                    OutboxUpdate::Failed {
                        error: format!("receiver {:?} is not configured", row.item.receiver),
                    },
                )
                .await;
            return;
        };
        let inc: Incident = match serde_json::from_str(&row.item.body) {
            Ok(i) => i,
            Err(e) => {
                let _ = self
                    .store
                    .outbox_update(
                        row.id,
                        OutboxUpdate::Failed {
                            error: format!("unreadable incident: {e}"),
                        },
                    )
                    .await;
                return;
            }
        };
        let (url, body, headers) = match self.request(&rcv, &row.item, &inc) {
            Ok(r) => r,
            Err(e) => {
                self.count(&rcv.name, "failed");
                let _ = self
                    .store
                    .outbox_update(row.id, OutboxUpdate::Failed { error: e })
                    .await;
                return;
            }
        };
        let agent = agent.clone();
        let sent = tokio::task::spawn_blocking(move || {
            let mut req = agent.post(&url).header("content-type", "application/json");
            for (k, v) in headers {
                req = req.header(k, v);
            }
            match req.send(body.as_bytes()) {
                Err(e) => Sent::Retry(e.to_string(), None),
                Ok(mut r) => {
                    let status = r.status().as_u16();
                    let retry_after = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = r
                        .body_mut()
                        .with_config()
                        .limit(16 * 1024)
                        .read_to_string()
                        .unwrap_or_default();
                    match status {
                        200..=299 => Sent::Ok,
                        408 | 429 | 500..=599 => {
                            Sent::Retry(format!("{status}: {text}"), retry_after)
                        }
                        _ => Sent::Refused(format!("{status}: {text}")),
                    }
                }
            }
        })
        .await
        .unwrap_or_else(|e| Sent::Retry(e.to_string(), None));
        let now = Utc::now();
        match sent {
            Sent::Ok => {
                self.count(&rcv.name, "delivered");
                let _ = self
                    .store
                    .outbox_update(row.id, OutboxUpdate::Delivered { at: now })
                    .await;
            }
            Sent::Retry(e, retry_after) if row.attempts + 1 < self.cfg.max_attempts => {
                self.count(&rcv.name, "retry");
                let exp = self
                    .cfg
                    .backoff_min
                    .saturating_mul(1u32 << row.attempts.min(16))
                    .min(self.cfg.backoff_max);
                let wait = retry_after.map_or(exp, |r| r.max(exp));
                let next_at = now + chrono::Duration::from_std(wait).unwrap_or_default();
                tracing::warn!(component = "notify", receiver = %rcv.name, attempt = row.attempts + 1,
                    error = %e, "notification not delivered; will retry");
                let _ = self
                    .store
                    .outbox_update(row.id, OutboxUpdate::Retry { next_at, error: e })
                    .await;
            }
            Sent::Retry(e, _) | Sent::Refused(e) => {
                self.count(&rcv.name, "failed");
                tracing::error!(component = "notify", receiver = %rcv.name, error = %e,
                    fallback = ?rcv.fallback, "notification failed for good");
                let _ = self
                    .store
                    .outbox_update(row.id, OutboxUpdate::Failed { error: e })
                    .await;
                if let Some(fb) = &rcv.fallback {
                    let item = OutboxItem {
                        key: format!("{}:fallback:{fb}", row.item.key),
                        receiver: fb.clone(),
                        created_at: now,
                        ..row.item.clone()
                    };
                    let _ = self.store.outbox_enqueue(vec![item]).await;
                    self.wake.notify_one();
                }
            }
        }
    }

    /// URL, JSON body and headers for one notification to one receiver.
    fn request(
        &self,
        rcv: &Receiver,
        item: &OutboxItem,
        inc: &Incident,
    ) -> Result<Request, String> {
        let kind = kind_of(&item.kind);
        let ctx = RenderContext {
            base_url: self.cfg.base_url.clone(),
            now: Utc::now(),
        };
        let link = self
            .cfg
            .base_url
            .as_ref()
            .map(|b| format!("{b}/api/v1/incidents/{}", inc.id));
        let body = match rcv.kind {
            Kind::Slack => {
                let text = self
                    .templates
                    .render(kind, inc, &ctx)
                    .map_err(|e| e.to_string())?;
                tapio_core::notify::slack_payload(kind, inc, &text, link.as_deref())
            }
            Kind::PagerDuty => tapio_core::notify::pagerduty_payload_with_link(
                kind,
                inc,
                rcv.routing_key.as_deref().unwrap_or(""),
                "tapio",
                link.as_deref(),
            ),
            Kind::Webhook => {
                let text = self
                    .templates
                    .render(kind, inc, &ctx)
                    .map_err(|e| e.to_string())?;
                tapio_core::notify::webhook_payload(kind, inc, &text)
            }
        };
        Ok((rcv.url.clone(), body.to_string(), Vec::new()))
    }
}
