//! The store's health as `/health` and `/ready` see it: its statistics, refreshed off the
//! request path ([`StatsCache`]), and whether its writes succeed ([`StoreWrites`],
//! recorded by [`WatchedStore`]). The report itself is `crate::api::health`.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use std::sync::Arc;

/// The store's statistics for `/health`, at most [`STATS_EVERY`] old.
#[derive(Default)]
pub struct StatsCache(std::sync::Mutex<Option<(std::time::Instant, serde_json::Value)>>);

/// How often [`refresh_stats`] recounts.
pub const STATS_EVERY: Duration = Duration::from_secs(5);

impl StatsCache {
    fn fresh(&self) -> Option<serde_json::Value> {
        let g = self.0.lock().ok()?;
        let (at, v) = g.as_ref()?;
        (at.elapsed() < STATS_EVERY * 3).then(|| v.clone())
    }

    fn put(&self, v: serde_json::Value) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some((std::time::Instant::now(), v));
        }
    }

    /// The cached statistics, or counted now when there are none yet (or the refresher
    /// stalled).
    pub async fn get(&self, store: &dyn tapio_store::Store) -> serde_json::Value {
        if let Some(v) = self.fresh() {
            return v;
        }
        match tokio::time::timeout(Duration::from_secs(2), store.stats()).await {
            Ok(Ok(s)) => {
                let v = json!(s);
                self.put(v.clone());
                v
            }
            _ => serde_json::Value::Null,
        }
    }
}

/// Recounts the store's statistics every [`STATS_EVERY`] until shutdown.
pub async fn refresh_stats(
    store: Arc<dyn tapio_store::Store>,
    writes: Arc<StoreWrites>,
    stats: Arc<StatsCache>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(STATS_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        writes.probe();
        if let Ok(Ok(s)) = tokio::time::timeout(STATS_EVERY, store.stats()).await {
            stats.put(json!(s));
        }
    }
}

/// Whether the store can write: the outcome of the latest writes, for `/health` and
/// `/ready`. A write that fails (a full disk, a read-only or broken file system, a lost
/// database) marks the store failing until a write succeeds again — or, for the embedded
/// store, until its directory has free space again ([`RECOVERY_FREE_BYTES`]), so an
/// instance taken out of rotation by `/ready` can come back without traffic.
pub struct StoreWrites {
    /// (since ms, failed writes since, latest error).
    failing: std::sync::Mutex<Option<(i64, u64, String)>>,
    /// The embedded store's directory (free-space probe); `None` for PostgreSQL.
    data_dir: Option<std::path::PathBuf>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// Free space in the embedded store's directory at which a failing store is retried.
pub const RECOVERY_FREE_BYTES: u64 = 16 << 20;
/// Without a directory to look at (PostgreSQL), a failing mark lapses after this long
/// without a new failure.
const FAILING_LAPSE_MS: i64 = 30_000;

impl StoreWrites {
    pub fn new(
        data_dir: Option<std::path::PathBuf>,
        metrics: Option<Arc<crate::metrics::Metrics>>,
    ) -> Self {
        Self {
            failing: std::sync::Mutex::new(None),
            data_dir,
            metrics,
        }
    }

    fn outcome<T>(&self, r: &Result<T, tapio_store::StoreError>) {
        use tapio_store::StoreError;
        let Ok(mut g) = self.failing.lock() else {
            return;
        };
        match r {
            Ok(_) => {
                // On a full disk a small write may still fit: one success clears the mark
                // only when the directory has room again (else /ready would flap).
                let room = self
                    .data_dir
                    .as_deref()
                    .is_none_or(|dir| free_bytes(dir).is_none_or(|b| b >= RECOVERY_FREE_BYTES));
                if g.is_some() && room {
                    *g = None;
                    tracing::info!(component = "store", "store writes succeed again");
                }
            }
            // A lease taken over is the cluster's business, not the store's health.
            Err(StoreError::Fenced { .. }) => {}
            Err(e) => {
                let now = Utc::now().timestamp_millis();
                if let Some(m) = &self.metrics {
                    m.dropped("store_write_failed", 1);
                }
                match &mut *g {
                    Some((_, n, last)) => {
                        *n += 1;
                        *last = e.to_string();
                    }
                    None => {
                        tracing::error!(component = "store", error = %e, "store write failed: /ready answers 503 until writes succeed again");
                        *g = Some((now, 1, e.to_string()));
                    }
                }
            }
        }
    }

    /// `Some((since_ms, failed writes, latest error))` while writes fail.
    pub fn failing(&self) -> Option<(i64, u64, String)> {
        self.failing.lock().ok().and_then(|g| g.clone())
    }

    /// Clears the failing mark when the reason has gone away (see the type's doc).
    pub fn probe(&self) {
        let Some((since, _, err)) = self.failing() else {
            return;
        };
        let clear = match &self.data_dir {
            Some(dir) => free_bytes(dir).is_some_and(|b| b >= RECOVERY_FREE_BYTES),
            None => Utc::now().timestamp_millis() - since > FAILING_LAPSE_MS,
        };
        if clear && let Ok(mut g) = self.failing.lock() {
            tracing::info!(component = "store", previous_error = %err, "store has room again; writes are retried");
            *g = None;
        }
    }
}

/// Free space (for unprivileged writers) of the file system holding `dir`.
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(dir).ok()?;
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Some(s.blocks_available() as u64 * s.fragment_size() as u64)
}

/// The store, with every write's outcome noted in a [`StoreWrites`].
pub struct WatchedStore {
    inner: Arc<dyn tapio_store::Store>,
    writes: Arc<StoreWrites>,
}

impl WatchedStore {
    pub fn new(inner: Arc<dyn tapio_store::Store>, writes: Arc<StoreWrites>) -> Self {
        Self { inner, writes }
    }
}

macro_rules! watched {
    ($self:ident, $call:expr) => {{
        let r = $call.await;
        $self.writes.outcome(&r);
        r
    }};
}

#[async_trait::async_trait]
impl tapio_store::Store for WatchedStore {
    async fn ingest(
        &self,
        batch: tapio_store::IngestBatch,
    ) -> Result<tapio_store::IngestOutcome, tapio_store::StoreError> {
        if batch.events.is_empty() {
            return self.inner.ingest(batch).await;
        }
        watched!(self, self.inner.ingest(batch))
    }
    async fn evidence_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, tapio_proto::Event)>, tapio_store::StoreError> {
        self.inner.evidence_after(after, limit).await
    }
    async fn apply_incidents(
        &self,
        changes: Vec<tapio_core::Incident>,
        cursor: i64,
    ) -> Result<(), tapio_store::StoreError> {
        watched!(self, self.inner.apply_incidents(changes, cursor))
    }
    async fn apply_incidents_outbox(
        &self,
        changes: Vec<tapio_core::Incident>,
        cursor: i64,
        outbox: Vec<tapio_store::OutboxItem>,
    ) -> Result<(), tapio_store::StoreError> {
        watched!(
            self,
            self.inner.apply_incidents_outbox(changes, cursor, outbox)
        )
    }
    async fn outbox_enqueue(
        &self,
        items: Vec<tapio_store::OutboxItem>,
    ) -> Result<u64, tapio_store::StoreError> {
        if items.is_empty() {
            return self.inner.outbox_enqueue(items).await;
        }
        watched!(self, self.inner.outbox_enqueue(items))
    }
    async fn outbox_due(
        &self,
        now: chrono::DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<tapio_store::OutboxRow>, tapio_store::StoreError> {
        self.inner.outbox_due(now, limit).await
    }
    async fn outbox_update(
        &self,
        id: i64,
        update: tapio_store::OutboxUpdate,
    ) -> Result<(), tapio_store::StoreError> {
        watched!(self, self.inner.outbox_update(id, update))
    }
    async fn audit_append(
        &self,
        records: Vec<(chrono::DateTime<Utc>, String)>,
    ) -> Result<(), tapio_store::StoreError> {
        if records.is_empty() {
            return self.inner.audit_append(records).await;
        }
        watched!(self, self.inner.audit_append(records))
    }
    async fn audit_since(
        &self,
        since: chrono::DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, tapio_store::StoreError> {
        self.inner.audit_since(since, limit).await
    }
    async fn audit_page(
        &self,
        since: chrono::DateTime<Utc>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, tapio_store::StoreError> {
        self.inner.audit_page(since, after, limit).await
    }
    async fn audit_prune(
        &self,
        cutoff: chrono::DateTime<Utc>,
        max_records: u64,
    ) -> Result<u64, tapio_store::StoreError> {
        watched!(self, self.inner.audit_prune(cutoff, max_records))
    }
    async fn silence_put(
        &self,
        id: ulid::Ulid,
        ends_at: chrono::DateTime<Utc>,
        body: String,
    ) -> Result<(), tapio_store::StoreError> {
        watched!(self, self.inner.silence_put(id, ends_at, body))
    }
    async fn silences(
        &self,
        ended_after: chrono::DateTime<Utc>,
    ) -> Result<Vec<String>, tapio_store::StoreError> {
        self.inner.silences(ended_after).await
    }
    async fn outbox_counts(&self) -> Result<Vec<(String, String, u64)>, tapio_store::StoreError> {
        self.inner.outbox_counts().await
    }
    async fn correlator_cursor(&self) -> Result<i64, tapio_store::StoreError> {
        self.inner.correlator_cursor().await
    }
    async fn list_incidents(
        &self,
        filter: tapio_store::IncidentFilter,
    ) -> Result<Vec<tapio_core::Incident>, tapio_store::StoreError> {
        self.inner.list_incidents(filter).await
    }
    async fn get_incident(
        &self,
        id: ulid::Ulid,
    ) -> Result<Option<tapio_core::Incident>, tapio_store::StoreError> {
        self.inner.get_incident(id).await
    }
    async fn active_incidents(&self) -> Result<Vec<tapio_core::Incident>, tapio_store::StoreError> {
        self.inner.active_incidents().await
    }
    async fn incident_counts(
        &self,
    ) -> Result<Vec<(tapio_core::Status, tapio_core::Severity, u64)>, tapio_store::StoreError> {
        self.inner.incident_counts().await
    }
    async fn agents(&self) -> Result<Vec<tapio_proto::AgentStatus>, tapio_store::StoreError> {
        self.inner.agents().await
    }
    async fn prune_evidence(
        &self,
        cutoff: chrono::DateTime<Utc>,
    ) -> Result<u64, tapio_store::StoreError> {
        // Deleting may succeed on a full disk: only its failures tell anything.
        let r = self.inner.prune_evidence(cutoff).await;
        if r.is_err() {
            self.writes.outcome(&r);
        }
        r
    }
    async fn ping(&self) -> Result<(), tapio_store::StoreError> {
        self.inner.ping().await
    }
    async fn stats(&self) -> Result<tapio_store::StoreStats, tapio_store::StoreError> {
        self.inner.stats().await
    }
    fn pending_writes(&self) -> usize {
        self.inner.pending_writes()
    }
}
