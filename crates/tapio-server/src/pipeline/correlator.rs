//! The correlator task: the single owner of the incident engine.
//!
//! It reads stored evidence in storage order (the store is the log in single-node mode),
//! feeds each fact to the engine, and persists the resulting incident changes together
//! with its read position in one transaction. Ingest only wakes it. So:
//! - evidence acknowledged to an agent is correlated even if the server dies right after
//!   the acknowledgement (the restart resumes from the stored position);
//! - the live path and a restart's catch-up are the same code, in the same order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use tapio_core::IncidentEngine;
use tapio_core::config::CorrelationDepth;
use tapio_store::Store;
use tokio::sync::{Notify, watch};

use crate::metrics::{Metrics, SeverityLabel, SourceLabel};
use crate::runtime_config::Effective;

const READ_CHUNK: usize = 2048;

#[derive(Default)]
pub struct CorrelatorStatus {
    /// Storage position processed up to.
    pub cursor: AtomicI64,
    /// Highest storage position known to be stored.
    pub head: AtomicI64,
    /// Unix ms of the last loop iteration (liveness).
    pub heartbeat_ms: AtomicI64,
    pub active: AtomicU64,
    pub processed: AtomicU64,
    pub last_error: Mutex<Option<String>>,
    pub depth: Mutex<Option<CorrelationDepth>>,
}

impl CorrelatorStatus {
    pub fn lag(&self) -> u64 {
        let head = self.head.load(Ordering::Relaxed);
        let cursor = self.cursor.load(Ordering::Relaxed);
        u64::try_from(head - cursor).unwrap_or(0)
    }

    fn set_error(&self, e: Option<String>) {
        if let Ok(mut g) = self.last_error.lock() {
            *g = e;
        }
    }
}

/// A person's action on an incident, carried to the correlator task: it owns the engine,
/// so lifecycle changes and detection never overwrite each other.
pub enum CommandKind {
    Act {
        id: ulid::Ulid,
        action: tapio_core::lifecycle::Action,
        by: String,
    },
    Declare(tapio_core::lifecycle::Declare),
}

#[derive(Debug)]
pub enum CommandError {
    NotFound(String),
    Invalid(tapio_core::lifecycle::ActionError),
    Store(String),
}

pub struct Command {
    pub kind: CommandKind,
    pub reply: tokio::sync::oneshot::Sender<Result<tapio_core::Incident, CommandError>>,
}

/// Commands waiting for the correlator (bounded: callers wait when it is full).
pub const COMMAND_QUEUE: usize = 256;

pub struct Correlator {
    pub commands: tokio::sync::mpsc::Receiver<Command>,
    /// Decides which changes notify whom (None: no notification config).
    pub notifier: Option<tapio_notify::outbox::Notifier>,
    /// Wakes the notification dispatcher after new items are stored.
    pub dispatch_wake: Arc<Notify>,
    pub store: Arc<dyn Store>,
    pub engine: Box<dyn IncidentEngine>,
    pub status: Arc<CorrelatorStatus>,
    pub wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    pub config: watch::Receiver<Effective>,
}

impl Correlator {
    /// Restore state from the store. Errors here are fatal at start-up.
    pub async fn restore(&mut self) -> Result<(), tapio_store::StoreError> {
        let active = self.store.active_incidents().await?;
        let n = active.len();
        self.engine.restore(active);
        let cursor = self.store.correlator_cursor().await?;
        self.status.cursor.store(cursor, Ordering::Relaxed);
        self.status.head.fetch_max(cursor, Ordering::Relaxed);
        self.note_active();
        tracing::info!(
            component = "correlator",
            cursor,
            active_incidents = n,
            "correlator restored"
        );
        Ok(())
    }

    /// Take over a partition (scale-out): replay its stored evidence up to its cursor into
    /// the fresh engine, output discarded, so the engine holds the same windows, cluster
    /// state and incident identities the previous owner had; then take the stored
    /// incidents as the truth (`IncidentEngine::resume`) and continue from the cursor.
    /// Returns the events replayed.
    pub async fn warm_up(&mut self) -> Result<u64, tapio_store::StoreError> {
        self.note_depth();
        let cursor = self.store.correlator_cursor().await?;
        let mut pos = 0;
        let mut n = 0u64;
        while pos < cursor {
            let rows = self.store.evidence_after(pos, READ_CHUNK).await?;
            if rows.is_empty() {
                break;
            }
            for (p, ev) in &rows {
                if *p > cursor {
                    pos = cursor;
                    break;
                }
                let _ = self.engine.observe(ev, ev.time);
                pos = *p;
                n += 1;
            }
            let _ = self.engine.flush();
            self.status
                .heartbeat_ms
                .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
        }
        let active = self.store.active_incidents().await?;
        let held = active.len();
        self.engine.resume(active);
        self.status.cursor.store(cursor, Ordering::Relaxed);
        self.status.head.fetch_max(cursor, Ordering::Relaxed);
        self.note_active();
        tracing::info!(
            component = "correlator",
            cursor,
            replayed = n,
            active_incidents = held,
            "correlator warmed up from the stored evidence"
        );
        Ok(n)
    }

    /// The active-incident gauge and status, from the engine (also right after a restore:
    /// it must not read 0 until the next evidence arrives).
    fn note_active(&self) {
        let active = self.engine.active_count() as u64;
        self.status.active.store(active, Ordering::Relaxed);
        self.metrics.incidents_active.set(active as i64);
    }

    fn note_depth(&mut self) {
        let depth = self.config.borrow().config.correlation_depth;
        if let Ok(mut d) = self.status.depth.lock()
            && *d != Some(depth)
        {
            self.engine.set_depth(depth);
            if d.is_some() {
                tracing::info!(
                    component = "correlator",
                    depth = %depth,
                    "correlation depth changed"
                );
            }
            *d = Some(depth);
        }
    }

    fn note_change(&self, change: &tapio_core::IncidentChange) {
        if let tapio_core::IncidentChange::Opened(inc) = change {
            self.metrics
                .incidents_opened
                .get_or_create(&SeverityLabel {
                    severity: inc.severity.as_str().to_owned(),
                })
                .inc();
            tracing::warn!(
                component = "correlator",
                incident = %inc.id,
                severity = %inc.severity,
                title = %inc.title,
                reason = %inc.severity_reason,
                "incident opened"
            );
        }
    }

    /// The notifications these incident changes cause (stored with them).
    fn outbox_for(&mut self, incs: &[tapio_core::Incident]) -> Vec<tapio_store::OutboxItem> {
        let Some(n) = self.notifier.as_mut() else {
            return Vec::new();
        };
        let now = Utc::now();
        let items: Vec<_> = incs.iter().flat_map(|i| n.items_for(i, now)).collect();
        if !items.is_empty() {
            self.dispatch_wake.notify_one();
        }
        items
    }

    /// Carry out one person's action and persist the result with the current position.
    async fn command(&mut self, cmd: Command, cursor: i64) {
        let now = Utc::now();
        let result = match cmd.kind {
            CommandKind::Declare(d) => tapio_core::lifecycle::declare(&d, now, ulid::Ulid::new())
                .map_err(CommandError::Invalid),
            CommandKind::Act { id, action, by } => match self.engine.act(id, &action, &by, now) {
                Some(r) => r.map_err(CommandError::Invalid),
                None => match self.store.get_incident(id).await {
                    Ok(Some(mut inc)) => tapio_core::lifecycle::apply(&mut inc, &action, &by, now)
                        .map(|()| inc)
                        .map_err(CommandError::Invalid),
                    Ok(None) => Err(CommandError::NotFound(format!("no incident {id}"))),
                    Err(e) => Err(CommandError::Store(e.to_string())),
                },
            },
        };
        let result = match result {
            Ok(inc) => {
                let outbox = self.outbox_for(std::slice::from_ref(&inc));
                let stored = self
                    .store
                    .apply_incidents_outbox(vec![inc.clone()], cursor, outbox)
                    .await;
                match stored {
                    Ok(()) => {
                        tracing::info!(component = "correlator", incident = %inc.id, status = %inc.status,
                            "incident changed by a person");
                        Ok(inc)
                    }
                    Err(e) => Err(CommandError::Store(e.to_string())),
                }
            }
            Err(e) => Err(e),
        };
        let _ = cmd.reply.send(result);
    }

    /// Idle: let time pass in the engine (quiet incidents resolve), keeping the cursor.
    /// The engine's clock is event time; idle wall time is added to the newest event time
    /// seen, so a replayed stream of old events is not resolved at once by the wall clock —
    /// and never beyond the wall clock, which no source can move.
    async fn tick(&mut self, cursor: i64, clock: Option<(chrono::DateTime<Utc>, Instant)>) {
        let Some((event_time, seen)) = clock else {
            return;
        };
        let idle = chrono::Duration::from_std(seen.elapsed()).unwrap_or_default();
        let changes = self.engine.tick((event_time + idle).min(Utc::now()));
        if changes.is_empty() {
            return;
        }
        let incs: Vec<_> = changes.iter().map(|c| c.incident().clone()).collect();
        let outbox = self.outbox_for(&incs);
        if let Err(e) = self
            .store
            .apply_incidents_outbox(incs, cursor, outbox)
            .await
        {
            tracing::error!(component = "correlator", error = %e, "persisting resolved incidents failed");
        }
    }

    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut cursor = self.status.cursor.load(Ordering::Relaxed);
        // From the engine's restored or warmed-up clock: a partition taken over after the
        // last evidence still lets idle time pass (deferred outages come due, quiet
        // incidents resolve) without waiting for new evidence.
        let mut clock: Option<(chrono::DateTime<Utc>, Instant)> = self
            .engine
            .clock()
            .map(|t| (t.min(Utc::now()), Instant::now()));
        loop {
            self.status
                .heartbeat_ms
                .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
            while let Ok(cmd) = self.commands.try_recv() {
                self.command(cmd, cursor).await;
            }
            self.note_depth();
            if *shutdown.borrow() {
                break;
            }
            let rows = match self.store.evidence_after(cursor, READ_CHUNK).await {
                Ok(rows) => {
                    if rows.is_empty() {
                        // The store answers again: a past read error no longer applies.
                        self.status.set_error(None);
                    }
                    rows
                }
                Err(e) => {
                    tracing::error!(component = "correlator", error = %e, "reading evidence failed; retrying");
                    self.status.set_error(Some(e.to_string()));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if rows.is_empty() {
                self.metrics.set_queue("correlator", 0);
                self.tick(cursor, clock).await;
                tokio::select! {
                    Some(cmd) = self.commands.recv() => self.command(cmd, cursor).await,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let mut changes = BTreeMap::new();
            let mut last = cursor;
            for (pos, ev) in &rows {
                let t = Instant::now();
                // Ingest already puts evidence on the server's time line; evidence stored
                // before that (or by an older replica) is bounded here: nothing the engine
                // sees is later than now, so its clock cannot run ahead of the wall clock.
                let wall = Utc::now();
                let bounded;
                let ev = if ev.time
                    > wall + chrono::Duration::milliseconds(crate::pipeline::clock::TRUSTED_SKEW_MS)
                {
                    let mut e = ev.clone();
                    e.time = wall;
                    bounded = e;
                    &bounded
                } else {
                    ev
                };
                if clock.is_none_or(|(c, _)| ev.time > c) {
                    clock = Some((ev.time, t));
                }
                for change in self.engine.observe(ev, wall) {
                    self.note_change(&change);
                    let inc = change.incident().clone();
                    changes.insert(inc.id, inc);
                }
                self.metrics
                    .observe_stage("correlate", t.elapsed().as_secs_f64());
                self.metrics
                    .events_processed
                    .get_or_create(&SourceLabel {
                        source: ev.kind.source_label().to_owned(),
                    })
                    .inc();
                last = *pos;
            }
            for change in self.engine.flush() {
                let inc = change.incident().clone();
                changes.insert(inc.id, inc);
            }
            let n = rows.len() as u64;
            // Persist incidents and position together; on failure, re-read from the old
            // position (the engine may then see facts twice; the next restart restores
            // it from the store, which is exact).
            let changes: Vec<_> = changes.into_values().collect();
            let outbox = self.outbox_for(&changes);
            loop {
                match self
                    .store
                    .apply_incidents_outbox(changes.clone(), last, outbox.clone())
                    .await
                {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::error!(component = "correlator", error = %e, "persisting incidents failed; retrying");
                        self.status.set_error(Some(e.to_string()));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        if *shutdown.borrow() {
                            return;
                        }
                    }
                }
            }
            self.status.set_error(None);
            cursor = last;
            self.status.cursor.store(cursor, Ordering::Relaxed);
            self.status.head.fetch_max(cursor, Ordering::Relaxed);
            self.status.processed.fetch_add(n, Ordering::Relaxed);
            self.note_active();
            self.metrics
                .set_queue("correlator", self.status.lag() as i64);
        }
        tracing::info!(component = "correlator", cursor, "correlator stopped");
    }
}
