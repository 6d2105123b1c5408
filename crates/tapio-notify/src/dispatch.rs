//! The dispatcher: delivers due outbox items, one attempt at a time per item, with
//! exponential backoff (honouring Retry-After, e.g. PagerDuty's 429 past ~120 events a
//! minute per key), a bounded number of attempts, then the receiver's fallback. A pager
//! only ever gets the newest state of an incident: an older undelivered state is
//! superseded, so nothing pages after an acknowledgement.
//!
//! It also enqueues what time brings ([`crate::schedule`]: escalations, cadence updates).
//! What it needs from the program that runs it (counting outcomes, writing an escalation
//! onto the incident's timeline) comes through [`Host`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tapio_core::Incident;
use tapio_store::{OutboxItem, OutboxRow, OutboxUpdate, Store};
use tokio::sync::{Notify, watch};
use ulid::Ulid;

use crate::Silences;
use crate::channel::{self, Message, Sent};
use crate::config::{NotifyConfig, Receiver};
use crate::templates::{NotificationKind, RenderContext, Templates};

/// What the dispatcher needs from the program around it.
#[async_trait::async_trait]
pub trait Host: Send + Sync {
    /// Count one outcome for `receiver`: `delivered`, `retry`, `failed`, `superseded`,
    /// `deferred` or `in_doubt`.
    fn count(&self, receiver: &str, result: &str);
    /// Record `note` on the incident's timeline (an escalation), returning once it is
    /// recorded or could not be.
    async fn note(&self, incident: Ulid, note: String);
}

pub struct Dispatcher {
    pub store: Arc<dyn Store>,
    pub cfg: Arc<NotifyConfig>,
    pub templates: Arc<Templates>,
    pub wake: Arc<Notify>,
    /// Silenced incidents get no escalations or cadence updates.
    pub silences: Silences,
    pub host: Arc<dyn Host>,
}

/// A sliding one-minute window of sends per key (a PagerDuty routing key).
pub struct RateWindow {
    per_minute: usize,
    sent: HashMap<String, std::collections::VecDeque<std::time::Instant>>,
}

impl RateWindow {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1) as usize,
            sent: HashMap::new(),
        }
    }

    /// `Ok` (and the send is counted) when `key` has room now; otherwise how long until
    /// it has.
    pub fn admit(&mut self, key: &str, now: std::time::Instant) -> Result<(), Duration> {
        const MINUTE: Duration = Duration::from_secs(60);
        let q = self.sent.entry(key.to_owned()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= MINUTE) {
            q.pop_front();
        }
        if q.len() < self.per_minute {
            q.push_back(now);
            return Ok(());
        }
        let oldest = q.front().copied().unwrap_or(now);
        Err(MINUTE.saturating_sub(now.duration_since(oldest)))
    }

    /// Forget keys with nothing in the window (bounded by the configured receivers' keys
    /// anyway).
    pub fn tidy(&mut self) {
        self.sent.retain(|_, q| !q.is_empty());
    }
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
        let mut pager_rate = RateWindow::new(self.cfg.pager_events_per_minute);
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
            let mut newest: HashMap<(Ulid, String), i64> = HashMap::new();
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
                if let Some(key) = self
                    .cfg
                    .receiver(&row.item.receiver)
                    .filter(|r| r.kind.is_pager())
                    .and_then(|r| r.routing_key.clone())
                    && let Err(wait) = pager_rate.admit(&key, std::time::Instant::now())
                {
                    self.count(&row.item.receiver, "deferred");
                    let next_at = now + chrono::Duration::from_std(wait).unwrap_or_default();
                    let _ = self
                        .store
                        .outbox_update(row.id, OutboxUpdate::Defer { next_at })
                        .await;
                    continue;
                }
                self.deliver(&agent, row).await;
            }
            pager_rate.tidy();
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
        let s = crate::schedule::scheduled(&active, &self.cfg, now);
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
            self.host.note(id, note).await;
        }
    }

    fn count(&self, receiver: &str, result: &str) {
        self.host.count(receiver, result);
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
        if row.in_doubt {
            // Its sender died between claiming and recording the outcome: the receiver may
            // have it. Sent again with the same idempotency key (webhooks) / dedup key
            // (PagerDuty), which receivers use to drop the repeat.
            self.count(&row.item.receiver, "in_doubt");
            tracing::warn!(component = "notify", incident = %row.item.incident, receiver = %row.item.receiver,
                key = %row.item.key, "a sender died while sending this notification; sending it again with the same idempotency key");
        } else if let Err(e) = self
            .store
            .outbox_update(row.id, OutboxUpdate::Sending)
            .await
        {
            // Not claimed, not sent: it stays pending for the next round.
            tracing::error!(component = "notify", error = %e, "recording the send attempt failed");
            return;
        }
        let sent = self.send(agent, &rcv, &row.item, &inc).await;
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

    /// Deliver one notification to one receiver, on a blocking thread.
    async fn send(
        &self,
        agent: &ureq::Agent,
        rcv: &Receiver,
        item: &OutboxItem,
        inc: &Incident,
    ) -> Sent {
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
        let text = match self.templates.render(kind, inc, &ctx) {
            Ok(t) => t,
            Err(e) => return Sent::Refused(e.to_string()),
        };
        let agent = agent.clone();
        let rcv = rcv.clone();
        let inc = inc.clone();
        let key = item.key.clone();
        let timeout = self.cfg.timeout;
        let job = move || -> Sent {
            let msg = Message {
                kind,
                incident: &inc,
                text: &text,
                link: link.as_deref(),
                key: &key,
            };
            channel::deliver(&agent, &rcv, timeout, &msg)
        };
        tokio::task::spawn_blocking(job)
            .await
            .unwrap_or_else(|e| Sent::Retry(e.to_string(), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn the_pager_window_holds_sends_past_the_rate_until_the_oldest_leaves() {
        let mut w = RateWindow::new(3);
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(w.admit("key", t0 + Duration::from_secs(i)).is_ok());
        }
        // Fourth within the minute: wait until the first send is a minute old.
        assert_eq!(
            w.admit("key", t0 + Duration::from_secs(10)),
            Err(Duration::from_secs(50))
        );
        // Another key has its own budget.
        assert!(w.admit("other", t0 + Duration::from_secs(10)).is_ok());
        // A minute after the first send there is room for one more.
        assert!(w.admit("key", t0 + Duration::from_secs(60)).is_ok());
        assert!(w.admit("key", t0 + Duration::from_secs(60)).is_err());
    }
}
