//! The security audit stream (docs/security.md): authentication failures, authorization
//! denials, mutating calls (and, at `audit-level=VERBOSE`, reads) as structured records
//! with `component=security-auditor` — in the log, and appended to the store, where they
//! survive restarts and can be exported (`tapio audit export --since 24h`).
//!
//! `audit-level` (the runtime config key) is read per record, so a change applies at
//! once: OFF records nothing, BASIC failures, denials and mutations, VERBOSE also reads.
//! Records reach the store through a bounded queue written in batches; when it is full a
//! record is dropped and counted (`tapio_audit_dropped_total`) — it is still logged.
//! Mutations are different: their record is written by the task that carries the change
//! out (`auth::guard`), which waits for room in the queue, so a client that drops the
//! connection cannot leave a change unaudited.
//!
//! Authentication failures are folded: the first from a client address in each
//! [`FOLD_INTERVAL`] is recorded as it happens, the rest of that interval become one
//! summary record with a `count` (`tapio_audit_auth_failures_folded_total`), so a flood of
//! bad tokens costs a few rows, not one per request.
//!
//! Retention: records older than `--audit-retention` (default 30d) and the oldest beyond
//! `--audit-max-records` are deleted, at start and every 10 minutes
//! (`tapio_audit_pruned_total`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::Method;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tapio_core::config::AuditLevel;
use tapio_store::Store;
use tokio::sync::{mpsc, watch};

use crate::metrics::Metrics;
use crate::runtime_config::Effective;
use crate::security::auth::Caller;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    AuthFailure,
    Denied,
    Mutation,
    Read,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    pub component: &'static str,
    pub kind: AuditKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    pub client: String,
    pub method: String,
    pub route: String,
    pub path: String,
    pub status: u16,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// How many requests this record stands for (folded authentication failures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl AuditRecord {
    // One argument per column of the record; every caller names each of them.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: AuditKind,
        caller: Option<&Caller>,
        client: &str,
        method: &Method,
        route: &str,
        path: &str,
        status: u16,
        detail: &str,
    ) -> Self {
        Self {
            at: Utc::now(),
            component: "security-auditor",
            kind,
            user: caller.map(|c| c.name.clone()),
            role: caller.map(|c| c.role.as_str()),
            client: client.to_owned(),
            method: method.as_str().to_owned(),
            route: route.to_owned(),
            // Paths carry ids, never secrets (tokens travel in a header).
            path: path.chars().take(512).collect(),
            status,
            detail: detail.to_owned(),
            count: None,
        }
    }
}

/// Authentication failures of one client address are folded over this interval.
pub const FOLD_INTERVAL: Duration = Duration::from_secs(10);
/// Client addresses folded at once; beyond it the rest share one entry.
const FOLD_CLIENTS: usize = 10_000;
const OTHER_CLIENTS: &str = "(other clients)";

struct Fold {
    started: Instant,
    /// The latest failure folded (its route, status and detail are shown).
    last: AuditRecord,
    count: u64,
    limited: u64,
}

#[derive(Default)]
struct Folds {
    map: HashMap<String, Fold>,
}

impl Folds {
    /// Summaries of the windows that ended (all of them when `all`).
    fn take_due(&mut self, now: Instant, all: bool) -> Vec<AuditRecord> {
        let due: Vec<String> = self
            .map
            .iter()
            .filter(|(_, f)| all || now.saturating_duration_since(f.started) >= FOLD_INTERVAL)
            .map(|(k, _)| k.clone())
            .collect();
        due.into_iter()
            .filter_map(|k| self.map.remove(&k))
            .filter_map(|f| summary(f, now))
            .collect()
    }
}

fn summary(f: Fold, now: Instant) -> Option<AuditRecord> {
    if f.count == 0 {
        return None;
    }
    let secs = now.saturating_duration_since(f.started).as_secs().max(1);
    let mut r = f.last;
    r.at = Utc::now();
    r.detail = format!(
        "{} more refused requests (authentication failures, blocked address) from {} in {secs} s, {} of them answered 429 by the unauthenticated rate limit; last: {}",
        f.count, r.client, f.limited, r.detail
    );
    r.count = Some(f.count);
    Some(r)
}

/// How long audit records are kept, and how many at most.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_age: Duration,
    pub max_records: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(30 * 24 * 3600),
            max_records: 5_000_000,
        }
    }
}

/// The writer's end of the audit queue ([`run_writer`]).
pub struct AuditQueue {
    rx: mpsc::Receiver<AuditRecord>,
    folds: Arc<Mutex<Folds>>,
    pub retention: Retention,
}

/// Records waiting for the store.
const QUEUE: usize = 10_000;

pub struct Audit {
    tx: mpsc::Sender<AuditRecord>,
    config: watch::Receiver<Effective>,
    metrics: Arc<Metrics>,
    folds: Arc<Mutex<Folds>>,
}

impl Audit {
    /// The recorder and the receiving end its writer drains ([`run_writer`]).
    pub fn new(config: watch::Receiver<Effective>, metrics: Arc<Metrics>) -> (Self, AuditQueue) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let folds = Arc::new(Mutex::new(Folds::default()));
        (
            Self {
                tx,
                config,
                metrics,
                folds: folds.clone(),
            },
            AuditQueue {
                rx,
                folds,
                retention: Retention::default(),
            },
        )
    }

    fn level(&self) -> AuditLevel {
        self.config.borrow().config.audit_level
    }

    fn wanted(&self, kind: AuditKind) -> bool {
        !matches!(
            (self.level(), kind),
            (AuditLevel::Off, _) | (AuditLevel::Basic, AuditKind::Read)
        )
    }

    /// Record if the current level asks for this kind.
    pub fn record(&self, r: AuditRecord) {
        if !self.wanted(r.kind) {
            return;
        }
        log(&r);
        self.metrics.audit_records.inc();
        if self.tx.try_send(r).is_err() {
            self.metrics.audit_dropped.inc();
        }
    }

    /// Record a mutation: waits (up to 10 s) for room in the queue rather than dropping
    /// the record of a change that was made.
    pub async fn record_wait(&self, r: AuditRecord) {
        if !self.wanted(r.kind) {
            return;
        }
        log(&r);
        self.metrics.audit_records.inc();
        let sent = tokio::time::timeout(Duration::from_secs(10), self.tx.send(r)).await;
        if !matches!(sent, Ok(Ok(()))) {
            self.metrics.audit_dropped.inc();
        }
    }

    /// An authentication failure (401, or 429 from the unauthenticated limit): recorded
    /// if it is the client's first in this [`FOLD_INTERVAL`], else counted into the
    /// client's summary record.
    pub fn auth_failure(&self, r: AuditRecord) {
        if !self.wanted(r.kind) {
            return;
        }
        let now = Instant::now();
        let first = {
            let Ok(mut folds) = self.folds.lock() else {
                return;
            };
            let key = if folds.map.contains_key(&r.client) || folds.map.len() < FOLD_CLIENTS {
                r.client.clone()
            } else {
                OTHER_CLIENTS.to_owned()
            };
            match folds.map.get_mut(&key) {
                Some(f) if now.saturating_duration_since(f.started) < FOLD_INTERVAL => {
                    f.count += 1;
                    if r.status == 429 {
                        f.limited += 1;
                    }
                    f.last = r.clone();
                    if key == OTHER_CLIENTS {
                        f.last.client = key;
                    }
                    self.metrics.audit_failures_folded.inc();
                    None
                }
                _ => {
                    // A new window: the previous one's summary goes first.
                    let prev = folds.map.remove(&key).and_then(|f| summary(f, now));
                    let mut last = r.clone();
                    last.client = key.clone();
                    folds.map.insert(
                        key,
                        Fold {
                            started: now,
                            last,
                            count: 0,
                            limited: 0,
                        },
                    );
                    Some((prev, r))
                }
            }
        };
        if let Some((prev, r)) = first {
            if let Some(p) = prev {
                self.record(p);
            }
            self.record(r);
        }
    }
}

fn log(r: &AuditRecord) {
    match r.kind {
        AuditKind::AuthFailure | AuditKind::Denied => tracing::warn!(
                component = "security-auditor", kind = ?r.kind, user = r.user.as_deref().unwrap_or("-"),
                client = %r.client, method = %r.method, route = %r.route, status = r.status, detail = %r.detail,
                "audit"),
        _ => tracing::info!(
                component = "security-auditor", kind = ?r.kind, user = r.user.as_deref().unwrap_or("-"),
                client = %r.client, method = %r.method, route = %r.route, status = r.status,
                "audit"),
    }
}

/// How often audit retention runs.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Append queued records to the store in batches until shutdown (then drain); emit the
/// folded authentication-failure summaries; apply the retention.
pub async fn run_writer(
    store: Arc<dyn Store>,
    queue: AuditQueue,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let AuditQueue {
        mut rx,
        folds,
        retention,
    } = queue;
    let mut buf = Vec::with_capacity(256);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_prune: Option<Instant> = None;
    loop {
        let first = tokio::select! {
            r = rx.recv() => r,
            _ = tick.tick() => {
                let due = folds.lock().map(|mut f| f.take_due(Instant::now(), false)).unwrap_or_default();
                for r in due {
                    log(&r);
                    metrics.audit_records.inc();
                    buf.push(r);
                }
                flush(&*store, &mut buf, &metrics).await;
                if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                    last_prune = Some(Instant::now());
                    prune(&*store, retention, &metrics).await;
                }
                continue;
            }
            _ = shutdown.changed() => None,
        };
        let Some(first) = first else {
            // Shutdown: write what is queued, and the summaries of open windows.
            while let Ok(r) = rx.try_recv() {
                buf.push(r);
            }
            if let Ok(mut f) = folds.lock() {
                buf.extend(f.take_due(Instant::now(), true));
            }
            flush(&*store, &mut buf, &metrics).await;
            return;
        };
        buf.push(first);
        while buf.len() < 256 {
            match rx.try_recv() {
                Ok(r) => buf.push(r),
                Err(_) => break,
            }
        }
        flush(&*store, &mut buf, &metrics).await;
    }
}

/// Delete records past the retention age and the oldest beyond the size bound.
pub async fn prune(store: &dyn Store, retention: Retention, metrics: &Metrics) {
    let cutoff = chrono::Duration::from_std(retention.max_age)
        .ok()
        .and_then(|d| Utc::now().checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    match store.audit_prune(cutoff, retention.max_records).await {
        Ok(0) => {}
        Ok(n) => {
            metrics.audit_pruned.inc_by(n);
            tracing::info!(
                component = "security-auditor",
                deleted = n,
                "audit records past retention deleted"
            );
        }
        Err(e) => {
            tracing::error!(component = "security-auditor", error = %e, "audit retention failed; retrying later");
        }
    }
}

async fn flush(store: &dyn Store, buf: &mut Vec<AuditRecord>, metrics: &Metrics) {
    if buf.is_empty() {
        return;
    }
    let rows: Vec<(DateTime<Utc>, String)> = buf
        .drain(..)
        .filter_map(|r| serde_json::to_string(&r).ok().map(|b| (r.at, b)))
        .collect();
    let n = rows.len() as u64;
    for attempt in 0..5u32 {
        match store.audit_append(rows.clone()).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(component = "security-auditor", error = %e, attempt, "storing audit records failed");
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
        }
    }
    metrics.audit_dropped.inc_by(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(client: &str, status: u16) -> AuditRecord {
        AuditRecord::new(
            AuditKind::AuthFailure,
            None,
            client,
            &Method::POST,
            "/api/v1/evidence",
            "/api/v1/evidence",
            status,
            "unknown or revoked token",
        )
    }

    #[test]
    fn failures_of_a_client_fold_into_one_summary_with_a_count() {
        let (config_tx, config) = watch::channel(Effective {
            config: tapio_core::config::RuntimeConfig::default(),
            generation: 1,
            updated_at: Utc::now(),
            rejected: Default::default(),
        });
        let (audit, queue) = Audit::new(config, Arc::new(Metrics::new()));
        let mut rx = queue.rx;
        for i in 0..1000 {
            audit.auth_failure(failure("203.0.113.9", if i < 10 { 401 } else { 429 }));
        }
        audit.auth_failure(failure("198.51.100.1", 401));
        let mut written = Vec::new();
        while let Ok(r) = rx.try_recv() {
            written.push(r);
        }
        assert_eq!(written.len(), 2, "the first of each client only");
        let summaries = queue
            .folds
            .lock()
            .expect("lock")
            .take_due(Instant::now(), true);
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].count, Some(999));
        assert_eq!(summaries[0].client, "203.0.113.9");
        assert!(
            summaries[0].detail.contains("990 of them answered 429"),
            "{}",
            summaries[0].detail
        );
        drop(config_tx);
    }
}
