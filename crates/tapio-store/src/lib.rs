//! Tapio's storage: one trait, [`Store`], that every backend implements: the embedded
//! SQLite backend ([`sqlite::SqliteStore`], the one-machine default) and PostgreSQL
//! ([`pg::PgStore`], shared by scaled-out replicas).
//!
//! Contract every backend keeps (the conformance tests in `tests/` check it):
//! - `ingest` returns only after the batch is durable; a process kill after it returns
//!   loses nothing.
//! - A batch is identified by (agent_id, seq): a retried batch is not stored twice.
//! - Evidence has a storage position (`pos`) that only grows; the correlator reads in that
//!   order and records how far it got in the same transaction as its incident changes, so
//!   a restart resumes exactly where it stopped.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tapio_core::{Incident, Severity, Status};
use tapio_proto::{AgentStatus, Event};
use ulid::Ulid;

mod migrations;
pub mod pg;
pub mod sqlite;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store is closed (shutting down or the writer stopped)")]
    Closed,
    #[error("database error: {0}")]
    Database(String),
    #[error("stored record {what} could not be decoded: {detail}")]
    Corrupt { what: String, detail: String },
    /// A cluster write whose partition lease was taken over (see `pg::Fence`).
    #[error(
        "partition {part} is no longer owned by this replica (its lease epoch {epoch} was taken over)"
    )]
    Fenced { part: i32, epoch: i64 },
    #[error("cannot open store at {path}: {detail}")]
    Open { path: String, detail: String },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(e.to_string())
    }
}

/// A batch to store. `seq` is `None` for single events from the events API.
#[derive(Debug, Clone)]
pub struct IngestBatch {
    pub agent_id: String,
    pub node: String,
    pub seq: Option<u64>,
    /// First event id of the batch as sent (before any load shedding): together with
    /// (agent_id, seq) it tells a retry from a restarted sequence.
    pub first_event_id: Option<Ulid>,
    pub events: Vec<Event>,
    pub received_at: DateTime<Utc>,
}

/// Largest forward jump of an agent's batch sequence whose skipped batches are counted
/// as missing. An agent ships at most a few batches a second: a million skipped batches
/// is not lost evidence but a sequence that restarted elsewhere (or a sender that lies),
/// and is recorded as a sequence reset instead (issue 15: one batch with seq 2^63−1
/// showed 9.2e18 missing batches on `/health` and wrapped the gap counter).
pub const MAX_SEQ_JUMP: i64 = 1_000_000;

/// An agent's sequence after a batch with `seq` that is not a retry: `(max_seq,
/// missing, newly_missing, reset)`. `reset` when the jump is beyond [`MAX_SEQ_JUMP`]:
/// the sequence continues from `seq` and nothing is added to `missing`. Saturating.
pub fn advance_seq(max_seq: i64, missing: i64, seq: i64) -> (i64, i64, u64, bool) {
    if seq <= max_seq {
        // A batch that fills an earlier gap.
        return (max_seq, missing.saturating_sub(1).max(0), 0, false);
    }
    let gap = seq.saturating_sub(max_seq).saturating_sub(1);
    if gap > MAX_SEQ_JUMP {
        return (seq, missing, 0, true);
    }
    (
        seq,
        missing.saturating_add(gap),
        u64::try_from(gap).unwrap_or(0),
        false,
    )
}

#[derive(Debug, Clone, Default)]
pub struct IngestOutcome {
    /// (agent_id, seq) was stored before with the same content: nothing stored again.
    pub duplicate_batch: bool,
    /// (agent_id, seq) was stored before with different content: the sender restarted its
    /// sequence. The events were stored; the agent's sequence tracking restarts here.
    pub sequence_reset: bool,
    /// Events newly stored, with their storage position.
    pub stored: Vec<(i64, Event)>,
    /// Events whose id was already stored.
    pub duplicate_events: usize,
    /// Batches newly found missing by this one (its seq jumped past them).
    pub new_missing: u64,
    /// The seq jumped further than [`MAX_SEQ_JUMP`]: tracking restarted there, nothing
    /// counted missing (also `sequence_reset`'s meaning for people: the agent's sequence
    /// is not the one known).
    pub sequence_jump: bool,
}

#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub status: Vec<Status>,
    pub severity: Vec<Severity>,
    pub namespace: Option<String>,
    /// Incidents updated at or after this time.
    pub since: Option<DateTime<Utc>>,
    pub limit: usize,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StoreStats {
    pub backend: &'static str,
    pub location: String,
    pub evidence_rows: u64,
    pub incidents: u64,
    pub size_bytes: u64,
    pub schema_version: i64,
}

/// A notification to deliver: one per incident state change per receiver (the unique
/// `key` makes a second enqueue of the same change a no-op).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub key: String,
    pub incident: Ulid,
    pub receiver: String,
    /// `initial`, `update`, `resolution`, `escalation`, `cadence`.
    pub kind: String,
    /// The incident as it was at the state change (JSON), so the message shows that state.
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// An outbox row as the dispatcher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub item: OutboxItem,
    pub attempts: u32,
    pub next_at: DateTime<Utc>,
    /// A sender claimed it (`Sending`) and never recorded the outcome: it died mid-send,
    /// so the receiver may or may not have it. Resent with the same idempotency key.
    pub in_doubt: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxUpdate {
    Delivered {
        at: DateTime<Utc>,
    },
    Retry {
        next_at: DateTime<Utc>,
        error: String,
    },
    /// Given up after the last attempt.
    Failed {
        error: String,
    },
    /// A newer state of the same incident for the same pager replaced it before delivery.
    Superseded,
    /// About to be sent: recorded before the attempt, so a sender that dies mid-send
    /// leaves the row visibly in doubt (`OutboxRow::in_doubt`) for the next sender.
    Sending,
    /// Not attempted: held back (e.g. a receiver's rate limit) until `next_at`; the
    /// attempt count is unchanged.
    Defer {
        next_at: DateTime<Utc>,
    },
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Store a batch durably (see the crate contract).
    async fn ingest(&self, batch: IngestBatch) -> Result<IngestOutcome, StoreError>;
    /// Evidence after storage position `after`, in storage order, at most `limit`.
    async fn evidence_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Event)>, StoreError>;
    /// Persist incident changes and the correlator position in one transaction.
    async fn apply_incidents(&self, changes: Vec<Incident>, cursor: i64) -> Result<(), StoreError> {
        self.apply_incidents_outbox(changes, cursor, Vec::new())
            .await
    }
    /// The same, also enqueueing the notifications the changes cause, in the same
    /// transaction: a crash can neither lose nor repeat them.
    async fn apply_incidents_outbox(
        &self,
        changes: Vec<Incident>,
        cursor: i64,
        outbox: Vec<OutboxItem>,
    ) -> Result<(), StoreError>;
    /// Enqueue notifications (escalations, fallbacks); returns how many were new.
    async fn outbox_enqueue(&self, items: Vec<OutboxItem>) -> Result<u64, StoreError>;
    /// Pending notifications due at `now`, oldest first.
    async fn outbox_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError>;
    async fn outbox_update(&self, id: i64, update: OutboxUpdate) -> Result<(), StoreError>;
    /// Append security audit records (time, JSON). Append-only: the store refuses updates
    /// and deletions of audit rows, except the retention's (`audit_prune`).
    async fn audit_append(&self, records: Vec<(DateTime<Utc>, String)>) -> Result<(), StoreError>;
    /// Audit records at or after `since`, oldest first (JSON bodies).
    async fn audit_since(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
    /// One page of audit records at or after `since`, in storage order (oldest first),
    /// after storage position `after` (0: from the start): (position, JSON body). The
    /// last position is the next page's `after`.
    async fn audit_page(
        &self,
        since: DateTime<Utc>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, StoreError>;
    /// Retention: delete audit records older than `cutoff`, and the oldest beyond the
    /// newest `max_records`; returns rows deleted.
    async fn audit_prune(&self, cutoff: DateTime<Utc>, max_records: u64)
    -> Result<u64, StoreError>;
    /// Store (or replace) a silence, as JSON with its end time.
    async fn silence_put(
        &self,
        id: Ulid,
        ends_at: DateTime<Utc>,
        body: String,
    ) -> Result<(), StoreError>;
    /// Silences ending after `ended_after` (JSON bodies).
    async fn silences(&self, ended_after: DateTime<Utc>) -> Result<Vec<String>, StoreError>;
    /// Notifications per (receiver, status) (for metrics and tests).
    async fn outbox_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError>;
    /// How far the correlator has read.
    async fn correlator_cursor(&self) -> Result<i64, StoreError>;
    async fn list_incidents(&self, filter: IncidentFilter) -> Result<Vec<Incident>, StoreError>;
    async fn get_incident(&self, id: Ulid) -> Result<Option<Incident>, StoreError>;
    /// Incidents not yet resolved (to restore the correlator after a restart).
    async fn active_incidents(&self) -> Result<Vec<Incident>, StoreError>;
    /// Count of incidents per (status, severity).
    async fn incident_counts(&self) -> Result<Vec<(Status, Severity, u64)>, StoreError>;
    async fn agents(&self) -> Result<Vec<AgentStatus>, StoreError>;
    /// Delete evidence (and batch records) received before `cutoff`; returns rows deleted.
    async fn prune_evidence(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Cheap liveness probe: a read round trip.
    async fn ping(&self) -> Result<(), StoreError>;
    async fn stats(&self) -> Result<StoreStats, StoreError>;
    /// Write commands waiting for the writer (a gauge).
    fn pending_writes(&self) -> usize;
}

#[cfg(test)]
mod seq_tests {
    use super::*;

    #[test]
    fn implausible_sequence_jump_is_a_reset_not_missing_batches() {
        assert_eq!(advance_seq(10, 0, 11), (11, 0, 0, false));
        assert_eq!(advance_seq(10, 0, 14), (14, 3, 3, false));
        assert_eq!(advance_seq(14, 3, 12), (14, 2, 0, false));
        assert_eq!(advance_seq(1, 0, i64::MAX), (i64::MAX, 0, 0, true));
        assert_eq!(
            advance_seq(1, 5, 2 + MAX_SEQ_JUMP),
            (
                2 + MAX_SEQ_JUMP,
                5 + MAX_SEQ_JUMP,
                MAX_SEQ_JUMP as u64,
                false
            )
        );
        assert_eq!(advance_seq(1, i64::MAX, 3), (3, i64::MAX, 1, false));
    }
}
