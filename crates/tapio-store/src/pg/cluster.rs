//! Scale-out bookkeeping: partition leases and their fences, replica heartbeats (on a
//! [`Control`] connection of their own), and [`PartitionStore`], one partition's fenced
//! view of the shared [`PgStore`].

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tapio_core::{Incident, Severity, Status};
use tapio_proto::{AgentStatus, Event};
use tokio_postgres::Client;
use ulid::Ulid;

use super::{PgStore, from_ms};
use crate::{
    IncidentFilter, IngestBatch, IngestOutcome, OutboxItem, OutboxRow, OutboxUpdate, Store,
    StoreError, StoreStats,
};

/// A cluster write's right to touch a partition: the lease epoch it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub part: i32,
    pub owner: String,
    pub epoch: i64,
}

/// One partition's lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaseRow {
    pub part: i32,
    pub owner: Option<String>,
    pub epoch: i64,
    pub expires_at: DateTime<Utc>,
    /// Held now (by the database's clock).
    pub live: bool,
}

/// A replica as it last reported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplicaRow {
    pub id: String,
    pub address: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    pub stopping: bool,
    /// Heartbeat within the liveness window (by the database's clock).
    pub live: bool,
}

/// Lease and replica bookkeeping on its own connection. Every time comparison uses the
/// database's clock (`clock_timestamp()`), so replicas' clocks never disagree about expiry.
pub struct Control {
    pub(super) client: Client,
}

impl Control {
    /// The cluster's partition count: fixed by the first replica that starts; later
    /// replicas must agree (a different `--partitions` would move facts between owners).
    pub async fn partitions(&self, wanted: i32) -> Result<i32, StoreError> {
        self.client
            .execute(
                "INSERT INTO meta (key, value) VALUES ('partitions', $1) ON CONFLICT (key) DO NOTHING",
                &[&wanted.to_string()],
            )
            .await?;
        let v: String = self
            .client
            .query_one("SELECT value FROM meta WHERE key = 'partitions'", &[])
            .await?
            .get(0);
        let n: i32 = v.parse().map_err(|_| StoreError::Corrupt {
            what: "meta.partitions".into(),
            detail: v.clone(),
        })?;
        self.client
            .execute(
                "INSERT INTO leases (part) SELECT generate_series(0, $1 - 1) ON CONFLICT DO NOTHING",
                &[&n],
            )
            .await?;
        Ok(n)
    }

    /// Make sure a lease row exists (the leader lease lives beside the partitions').
    pub async fn ensure_lease_row(&self, part: i32) -> Result<(), StoreError> {
        self.client
            .execute(
                "INSERT INTO leases (part) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&part],
            )
            .await?;
        Ok(())
    }

    pub async fn heartbeat(
        &self,
        id: &str,
        address: &str,
        stopping: bool,
    ) -> Result<(), StoreError> {
        self.client
            .execute(
                "INSERT INTO replicas (id, address, started_at, heartbeat_at, stopping)
                 VALUES ($1, $2, clock_timestamp(), clock_timestamp(), $3)
                 ON CONFLICT (id) DO UPDATE SET address = $2, heartbeat_at = clock_timestamp(),
                     stopping = $3",
                &[&id, &address, &stopping],
            )
            .await?;
        Ok(())
    }

    /// Replicas seen within `live_ms` (and any others, marked not live).
    pub async fn replicas(&self, live_ms: i64) -> Result<Vec<ReplicaRow>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT id, address, (EXTRACT(EPOCH FROM started_at) * 1000)::BIGINT,
                        (EXTRACT(EPOCH FROM heartbeat_at) * 1000)::BIGINT, stopping,
                        heartbeat_at > clock_timestamp() - make_interval(secs => $1::BIGINT / 1000.0)
                 FROM replicas ORDER BY id",
                &[&live_ms],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ReplicaRow {
                id: r.get(0),
                address: r.get(1),
                started_at: from_ms(r.get(2)),
                heartbeat_at: from_ms(r.get(3)),
                stopping: r.get(4),
                live: r.get(5),
            })
            .collect())
    }

    /// Forget replicas silent for longer than `forget_ms` (their leases expired long ago).
    pub async fn forget_replicas(&self, forget_ms: i64) -> Result<u64, StoreError> {
        Ok(self
            .client
            .execute(
                "DELETE FROM replicas WHERE heartbeat_at < clock_timestamp() - make_interval(secs => $1::BIGINT / 1000.0)",
                &[&forget_ms],
            )
            .await?)
    }

    pub async fn leases(&self) -> Result<Vec<LeaseRow>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT part, owner, epoch, (EXTRACT(EPOCH FROM expires_at) * 1000)::BIGINT,
                        owner IS NOT NULL AND expires_at > clock_timestamp()
                 FROM leases ORDER BY part",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| LeaseRow {
                part: r.get(0),
                owner: r.get(1),
                epoch: r.get(2),
                expires_at: from_ms(r.get(3)),
                live: r.get(4),
            })
            .collect())
    }

    /// Take a partition that is free, expired or already ours; returns the fence (a new
    /// epoch when the owner changes).
    pub async fn acquire(
        &self,
        part: i32,
        owner: &str,
        ttl_ms: i64,
    ) -> Result<Option<Fence>, StoreError> {
        let row = self
            .client
            .query_opt(
                "UPDATE leases SET
                     epoch = CASE WHEN owner IS DISTINCT FROM $2 THEN epoch + 1 ELSE epoch END,
                     acquired_at = CASE WHEN owner IS DISTINCT FROM $2 THEN clock_timestamp() ELSE acquired_at END,
                     owner = $2,
                     expires_at = clock_timestamp() + make_interval(secs => $3::BIGINT / 1000.0)
                 WHERE part = $1 AND (owner = $2 OR owner IS NULL OR expires_at <= clock_timestamp())
                 RETURNING epoch",
                &[&part, &owner, &ttl_ms],
            )
            .await?;
        Ok(row.map(|r| Fence {
            part,
            owner: owner.to_owned(),
            epoch: r.get(0),
        }))
    }

    /// Extend the leases this owner still holds at these epochs; returns the partitions
    /// renewed (a missing one was taken over: stop working on it). A renewal that comes
    /// late, after expiry but before anyone took the lease, still renews it: nobody else
    /// wrote in between (the epoch is unchanged), so the owner's state is still exact, and
    /// an overloaded owner does not throw away its engine for nothing.
    pub async fn renew(
        &self,
        owner: &str,
        held: &[(i32, i64)],
        ttl_ms: i64,
    ) -> Result<Vec<i32>, StoreError> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let parts: Vec<i32> = held.iter().map(|h| h.0).collect();
        let epochs: Vec<i64> = held.iter().map(|h| h.1).collect();
        let rows = self
            .client
            .query(
                "UPDATE leases l SET expires_at = clock_timestamp() + make_interval(secs => $4::BIGINT / 1000.0)
                 FROM UNNEST($2::INT[], $3::BIGINT[]) AS h(part, epoch)
                 WHERE l.part = h.part AND l.epoch = h.epoch AND l.owner = $1
                 RETURNING l.part",
                &[&owner, &parts, &epochs, &ttl_ms],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Give a partition up now (graceful hand-off): the next replica may take it at once.
    pub async fn release(&self, fence: &Fence) -> Result<bool, StoreError> {
        let n = self
            .client
            .execute(
                "UPDATE leases SET owner = NULL, expires_at = clock_timestamp()
                 WHERE part = $1 AND owner = $2 AND epoch = $3",
                &[&fence.part, &fence.owner, &fence.epoch],
            )
            .await?;
        Ok(n == 1)
    }
}

/// One partition's view of a [`PgStore`], for that partition's correlator: evidence,
/// cursor, active incidents and incident writes are scoped to the partition and fenced by
/// the lease; everything else is the shared store.
pub struct PartitionStore {
    pub inner: Arc<PgStore>,
    pub fence: Fence,
}

#[async_trait]
impl Store for PartitionStore {
    async fn ingest(&self, batch: IngestBatch) -> Result<IngestOutcome, StoreError> {
        self.inner
            .ingest_part(self.fence.part, Some(self.fence.clone()), batch)
            .await
    }
    async fn evidence_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Event)>, StoreError> {
        self.inner
            .evidence_after_part(self.fence.part, after, limit)
            .await
    }
    async fn apply_incidents_outbox(
        &self,
        changes: Vec<Incident>,
        cursor: i64,
        outbox: Vec<OutboxItem>,
    ) -> Result<(), StoreError> {
        self.inner
            .apply_part(
                self.fence.part,
                Some(self.fence.clone()),
                changes,
                cursor,
                outbox,
            )
            .await
    }
    async fn outbox_enqueue(&self, items: Vec<OutboxItem>) -> Result<u64, StoreError> {
        self.inner.outbox_enqueue(items).await
    }
    async fn outbox_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.inner.outbox_due(now, limit).await
    }
    async fn outbox_update(&self, id: i64, update: OutboxUpdate) -> Result<(), StoreError> {
        self.inner.outbox_update(id, update).await
    }
    async fn audit_append(&self, records: Vec<(DateTime<Utc>, String)>) -> Result<(), StoreError> {
        self.inner.audit_append(records).await
    }
    async fn audit_since(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.inner.audit_since(since, limit).await
    }
    async fn audit_page(
        &self,
        since: DateTime<Utc>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        self.inner.audit_page(since, after, limit).await
    }
    async fn audit_prune(
        &self,
        cutoff: DateTime<Utc>,
        max_records: u64,
    ) -> Result<u64, StoreError> {
        self.inner.audit_prune(cutoff, max_records).await
    }
    async fn silence_put(
        &self,
        id: Ulid,
        ends_at: DateTime<Utc>,
        body: String,
    ) -> Result<(), StoreError> {
        self.inner.silence_put(id, ends_at, body).await
    }
    async fn silences(&self, ended_after: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        self.inner.silences(ended_after).await
    }
    async fn outbox_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.inner.outbox_counts().await
    }
    async fn correlator_cursor(&self) -> Result<i64, StoreError> {
        self.inner.cursor_part(self.fence.part).await
    }
    async fn list_incidents(&self, filter: IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        self.inner.list_incidents(filter).await
    }
    async fn get_incident(&self, id: Ulid) -> Result<Option<Incident>, StoreError> {
        self.inner.get_incident(id).await
    }
    async fn active_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        self.inner.active_incidents_part(self.fence.part).await
    }
    async fn incident_counts(&self) -> Result<Vec<(Status, Severity, u64)>, StoreError> {
        self.inner.incident_counts().await
    }
    async fn agents(&self) -> Result<Vec<AgentStatus>, StoreError> {
        self.inner.agents().await
    }
    async fn prune_evidence(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.prune_evidence(cutoff).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.inner.stats().await
    }
    fn pending_writes(&self) -> usize {
        self.inner.pending_writes()
    }
}
