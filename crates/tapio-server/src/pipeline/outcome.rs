//! What storing evidence found, counted in one place: duplicates, missing batches,
//! sequence resets, the correlator's head. Used by the ingest service (one node) and by
//! the scale-out partition owners, which store what other replicas published.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use chrono::Utc;
use tapio_store::IngestOutcome;

use crate::metrics::Metrics;
use crate::pipeline::correlator::CorrelatorStatus;

/// What ingest has seen lately, for `/health`.
#[derive(Default)]
pub struct IngestStatus {
    pub last_gap_ms: AtomicI64,
    pub last_shed_ms: AtomicI64,
    pub batches: AtomicU64,
    pub rejected: AtomicU64,
    pub shed: AtomicU64,
}

/// Where ingest outcomes are counted.
pub struct Outcomes {
    pub metrics: Arc<Metrics>,
    pub status: Arc<IngestStatus>,
    /// The correlator's status: its head moves as evidence is stored.
    pub correlator: Arc<CorrelatorStatus>,
}

impl Outcomes {
    /// Count what storing a batch found: duplicates, missing batches (a sequence gap),
    /// sequence resets and implausible jumps. `accepted` counts a new batch as accepted
    /// too (the scale-out owner does not: the publishing replica counted it).
    pub fn record(&self, out: &IngestOutcome, agent_id: &str, seq: u64, accepted: bool) {
        let m = &self.metrics;
        if out.duplicate_batch {
            m.batches_duplicate.inc();
        } else if accepted {
            m.batches_accepted.inc();
            self.status.batches.fetch_add(1, Ordering::Relaxed);
        }
        if out.duplicate_events > 0 {
            m.dropped("duplicate_event", out.duplicate_events as u64);
        }
        if out.new_missing > 0 {
            m.sequence_gaps.inc_by(out.new_missing);
            self.status
                .last_gap_ms
                .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
            tracing::warn!(
                component = "ingest",
                agent_id = %agent_id,
                seq,
                missing = out.new_missing,
                "evidence batches missing: the agent's sequence skipped ahead"
            );
        }
        if out.sequence_jump {
            m.sequence_resets.inc();
            m.refused("sequence_jump");
            tracing::warn!(component = "ingest", agent_id = %agent_id, seq, max_jump = tapio_store::MAX_SEQ_JUMP, "agent sequence jumped implausibly far: tracked as a sequence reset, the skipped batches are not counted missing");
        }
        if out.sequence_reset {
            m.sequence_resets.inc();
            tracing::warn!(component = "ingest", agent_id = %agent_id, seq, "agent restarted its batch sequence");
        }
    }
}
