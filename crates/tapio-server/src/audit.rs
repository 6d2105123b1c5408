//! The security audit stream (docs/security.md): authentication failures, authorization
//! denials, mutating calls (and, at `audit-level=VERBOSE`, reads) as structured records
//! with `component=security-auditor` — in the log, and appended to the store, where they
//! survive restarts and can be exported (`tapio audit export --since 24h`).
//!
//! `audit-level` (the runtime config key) is read per record, so a change applies at
//! once: OFF records nothing, BASIC failures, denials and mutations, VERBOSE also reads.
//! Records reach the store through a bounded queue written in batches; when it is full a
//! record is dropped and counted (`tapio_audit_dropped_total`) — it is still logged.

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tapio_core::config::AuditLevel;
use tapio_store::Store;
use tokio::sync::{mpsc, watch};

use crate::auth::Caller;
use crate::metrics::Metrics;
use crate::runtime_config::Effective;

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
}

impl AuditRecord {
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
        }
    }
}

/// Records waiting for the store.
const QUEUE: usize = 10_000;

pub struct Audit {
    tx: mpsc::Sender<AuditRecord>,
    config: watch::Receiver<Effective>,
    metrics: Arc<Metrics>,
}

impl Audit {
    /// The recorder and the receiving end its writer drains ([`run_writer`]).
    pub fn new(
        config: watch::Receiver<Effective>,
        metrics: Arc<Metrics>,
    ) -> (Self, mpsc::Receiver<AuditRecord>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (
            Self {
                tx,
                config,
                metrics,
            },
            rx,
        )
    }

    fn level(&self) -> AuditLevel {
        self.config.borrow().config.audit_level
    }

    /// Record if the current level asks for this kind.
    pub fn record(&self, r: AuditRecord) {
        let wanted = !matches!(
            (self.level(), r.kind),
            (AuditLevel::Off, _) | (AuditLevel::Basic, AuditKind::Read)
        );
        if !wanted {
            return;
        }
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
        self.metrics.audit_records.inc();
        if self.tx.try_send(r).is_err() {
            self.metrics.audit_dropped.inc();
        }
    }
}

/// Append queued records to the store in batches until shutdown (then drain).
pub async fn run_writer(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<AuditRecord>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = Vec::with_capacity(256);
    loop {
        let first = tokio::select! {
            r = rx.recv() => r,
            _ = shutdown.changed() => None,
        };
        let Some(first) = first else {
            // Shutdown: write what is queued.
            while let Ok(r) = rx.try_recv() {
                buf.push(r);
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
