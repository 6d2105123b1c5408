//! The ingest service: the one way evidence enters Tapio.
//!
//! The evidence API, the Alertmanager receiver, the Kubernetes watcher and the Prometheus
//! source all hand their validated events to [`Ingest`]; so does the scale-out bus
//! consumer for what another replica published ([`Ingest::record_outcome`]). It puts the
//! events on the server's time line (`clock`), sheds what load shedding allows, stores the
//! batch (or publishes it to the bus in scale-out mode), counts what happened, and wakes
//! the correlator.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};
use tapio_proto::{Event, EvidenceBatch, IngestAck, Limits};
use tapio_store::{IngestBatch, Store};
use tokio::sync::Notify;
use ulid::Ulid;

use crate::error::ApiError;
use crate::metrics::{Metrics, SourceLabel};
use crate::pipeline::clock::{self, SourceClocks};
use crate::pipeline::cluster::Cluster;
use crate::pipeline::outcome::Outcomes;
use crate::security::protect::Load;

/// The ingest service (see the module docs). Cheap to share: every part is a handle.
pub struct Ingest {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    /// What storing found, counted (shared with the scale-out partition owners).
    pub outcomes: Arc<Outcomes>,
    /// Each source's estimated clock offset.
    pub clocks: SourceClocks,
    /// Scale-out mode: evidence goes to the bus first.
    pub cluster: Option<Arc<Cluster>>,
    /// Wakes the one-node correlator.
    pub stored: Arc<Notify>,
    pub limits: Limits,
    /// Load shedding's inputs.
    pub load: Load,
}

impl Ingest {
    /// A refused body, counted.
    pub fn reject(&self, e: ApiError) -> ApiError {
        self.metrics.rejected(e.code);
        self.outcomes
            .status
            .rejected
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(component = "ingest", code = e.code, message = %e.message, "body refused");
        e
    }

    /// Drop what load shedding allows, counting it. P1-class facts always pass.
    pub fn shed(&self, events: Vec<Event>) -> (Vec<Event>, usize) {
        let pressure = self.load.pressure();
        if !self.load.shedding_active(pressure) {
            return (events, 0);
        }
        let before = events.len();
        let kept: Vec<_> = events
            .into_iter()
            .filter(|e| !tapio_core::shed::should_shed(e, true, pressure))
            .collect();
        let n = before - kept.len();
        if n > 0 {
            self.metrics.dropped("load_shed", n as u64);
            self.outcomes
                .status
                .shed
                .fetch_add(n as u64, Ordering::Relaxed);
            self.outcomes
                .status
                .last_shed_ms
                .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
        }
        (kept, n)
    }

    /// An agent's decoded batch (its events already shed): moved onto the server's time
    /// line by the sender's clock offset, estimated from its batches' `sent_at`, then
    /// stored.
    pub async fn accept_batch(
        &self,
        batch: EvidenceBatch,
        first_event_id: Option<Ulid>,
        mut events: Vec<Event>,
        received_at: DateTime<Utc>,
    ) -> Result<IngestAck, ApiError> {
        let offset = batch
            .sent_at
            .map(|sent| self.clocks.observe(&batch.agent_id, sent, received_at));
        let done = clock::adjust(&mut events, offset, received_at);
        self.note_time_adjusted(&batch.agent_id, offset, done);
        self.store_batch(IngestBatch {
            agent_id: batch.agent_id,
            node: batch.node,
            seq: Some(batch.seq),
            first_event_id,
            events,
            received_at,
        })
        .await
    }

    /// Store a batch (one node) or publish it to the bus (scale-out), count it and wake
    /// the correlator.
    pub async fn store_batch(&self, mut batch: IngestBatch) -> Result<IngestAck, ApiError> {
        let t = Instant::now();
        // Nothing is believed to have happened after it arrived (alerts' startsAt,
        // producers without sent_at): a future time would move the engine's clock.
        let done = clock::adjust(&mut batch.events, None, batch.received_at);
        self.note_time_adjusted(&batch.agent_id, None, done);
        let agent_id = batch.agent_id.clone();
        let seq = batch.seq.unwrap_or(0);
        if let Some(cluster) = &self.cluster {
            // Scale-out: durable on the bus first; the partition's owner stores it.
            let n_events = batch.events.len();
            let accepted = cluster.publish(batch, &self.metrics).await.map_err(|e| {
                tracing::warn!(component = "ingest", error = %e, "bus publish failed; the sender retries");
                ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "bus_unavailable",
                    format!("{e}; nothing was stored, retry"),
                )
            })?;
            self.metrics
                .observe_stage("store", t.elapsed().as_secs_f64());
            self.metrics.batches_accepted.inc();
            self.outcomes.status.batches.fetch_add(1, Ordering::Relaxed);
            return Ok(IngestAck {
                agent_id,
                seq,
                accepted,
                duplicate_events: n_events - accepted,
                shed: 0,
                duplicate_batch: accepted == 0 && n_events > 0,
            });
        }
        let out = self.store.ingest(batch).await?;
        self.metrics
            .observe_stage("store", t.elapsed().as_secs_f64());
        self.outcomes.record(&out, &agent_id, seq, true);
        if let Some((pos, _)) = out.stored.last() {
            self.outcomes
                .correlator
                .head
                .fetch_max(*pos, Ordering::Relaxed);
        }
        for (_, ev) in &out.stored {
            self.metrics
                .events_ingested
                .get_or_create(&SourceLabel {
                    source: ev.kind.source_label().to_owned(),
                })
                .inc();
        }
        if !out.stored.is_empty() {
            self.stored.notify_one();
        }
        Ok(IngestAck {
            agent_id,
            seq,
            accepted: out.stored.len(),
            duplicate_events: out.duplicate_events,
            shed: 0,
            duplicate_batch: out.duplicate_batch,
        })
    }

    /// Count (and log, at most once a minute per process) evidence moved in time.
    fn note_time_adjusted(&self, source: &str, offset_ms: Option<i64>, done: clock::Adjusted) {
        static LAST_LOG_MS: AtomicI64 = AtomicI64::new(0);
        if done.corrected > 0 {
            self.metrics
                .evidence_time_corrected
                .inc_by(done.corrected as u64);
        }
        if done.clamped > 0 {
            self.metrics
                .evidence_time_clamped
                .inc_by(done.clamped as u64);
        }
        if done.corrected + done.clamped > 0 {
            let now = Utc::now().timestamp_millis();
            let last = LAST_LOG_MS.load(Ordering::Relaxed);
            if now - last >= 60_000
                && LAST_LOG_MS
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::warn!(
                    component = "ingest",
                    source,
                    clock_offset_ms = offset_ms.unwrap_or(0),
                    corrected = done.corrected,
                    placed_at_arrival = done.clamped,
                    "evidence dated off the server's clock was moved onto it (a source's clock is wrong; see tapio_evidence_time_corrected_total)"
                );
            }
        }
    }
}
