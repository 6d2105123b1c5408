//! PostgreSQL backend (`--database-url postgres://…`), shared by every `tapio-server`
//! replica.
//!
//! Same shape as the SQLite backend, for the same reasons:
//! - **One writer per process** owns one connection and commits in groups (each command in
//!   its own savepoint of one transaction). Only the commit answers callers, so an
//!   acknowledged write is durable in PostgreSQL.
//! - **Storage order.** Evidence positions come from a sequence. A reader can only rely on
//!   "everything below the position I saw is committed" when a single writer inserts a
//!   partition's evidence, one transaction after another: that is this process's writer,
//!   and across replicas the partition's lease holder (see [`Fence`]).
//! - **Fencing.** Cluster writes carry a [`Fence`] (partition, owner, lease epoch). The
//!   transaction first locks the lease row `FOR KEY SHARE` and checks the epoch is still
//!   this owner's. `epoch` is in a unique index, so a takeover (a new epoch: a key update)
//!   waits for the write to commit, after which the old owner (paused, partitioned) can no
//!   longer write that partition's evidence, incidents, cursor or notifications. A renewal
//!   changes only `expires_at` (not a key), so it never waits behind the owner's writes:
//!   with `FOR SHARE` it did, and a renewal of several rows deadlocked against a group
//!   commit holding others. Expiry is not checked here: an expiry that nobody acted on is
//!   not a takeover.
//! - Reads use separate connections (tokio-postgres pipelines concurrent queries on one).
//! - A lost connection is re-established on the next use; the commands in flight fail with
//!   a clear error and their callers retry (agents resend unacknowledged batches).
//!
//! Where things are: this file holds [`PgStore`] and its reads; `writer` the single
//! writer and every write transaction; `connection` connecting and migrating (the schema
//! itself is `migrations/postgres/*.sql`); `cluster` leases, fences, replica heartbeats
//! and the per-partition [`PartitionStore`].

mod cluster;
mod connection;
mod tls;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use tapio_core::{Incident, Severity, Status};
use tapio_proto::{AgentStatus, Event};
use tokio::sync::{RwLock, mpsc, oneshot};
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;
use ulid::Ulid;

use crate::{
    IncidentFilter, IngestBatch, IngestOutcome, OutboxItem, OutboxRow, OutboxUpdate, Store,
    StoreError, StoreStats,
};
pub use cluster::{Control, Fence, LeaseRow, PartitionStore, ReplicaRow};
pub use connection::redact;
use connection::{connect, migrate};
use tls::ConnectOptions;
pub use writer::FENCE_CHECK_SQL;
use writer::{Op, Out, Reply, writer_loop};

/// Most write commands committed in one transaction.
const MAX_GROUP: usize = 256;
/// Bound of the writer's command queue; callers wait (backpressure) when it is full.
const WRITE_QUEUE: usize = 1024;
/// Reader connections, used in turn.
const READERS: usize = 2;
/// Most rows one prune transaction deletes (the caller loops until less come back).
const PRUNE_CHUNK: i64 = 20_000;

/// The PostgreSQL store: one writer task, a few reader connections.
pub struct PgStore {
    location: String,
    tx: mpsc::Sender<(Op, Reply)>,
    queued: Arc<AtomicUsize>,
    readers: Vec<RwLock<Client>>,
    config: ConnectOptions,
    next_reader: AtomicUsize,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

impl PgStore {
    /// Connect, migrate and start the writer. `url` is a libpq-style URL
    /// (`postgres://user:password@host:port/db?…`); `sslmode` and `sslrootcert` choose TLS
    /// (see the `tls` module: without `sslmode` the connection is plain text, as before).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let location = redact(url);
        let config = ConnectOptions::parse(url).map_err(|detail| StoreError::Open {
            path: location.clone(),
            detail,
        })?;
        let mut writer = connect(&config, &location).await?;
        migrate(&mut writer, &location).await?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(RwLock::new(connect(&config, &location).await?));
        }
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        tokio::spawn(writer_loop(
            writer,
            config.clone(),
            location.clone(),
            rx,
            queued.clone(),
        ));
        Ok(Self {
            location,
            tx,
            queued,
            readers,
            config,
            next_reader: AtomicUsize::new(0),
        })
    }

    async fn write(&self, op: Op) -> Result<Out, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send((op, reply)).await.is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(StoreError::Closed);
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn write_n(&self, op: Op) -> Result<u64, StoreError> {
        match self.write(op).await? {
            Out::N(n) => Ok(n),
            Out::Ingest(_) => Err(StoreError::Database(
                "writer answered the wrong kind".into(),
            )),
        }
    }

    /// A reader connection, re-established if it was lost.
    async fn reader(&self) -> Result<tokio::sync::RwLockReadGuard<'_, Client>, StoreError> {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let slot = &self.readers[i];
        {
            let c = slot.read().await;
            if !c.is_closed() {
                return Ok(c);
            }
        }
        let mut w = slot.write().await;
        if w.is_closed() {
            *w = connect(&self.config, &self.location).await?;
        }
        Ok(w.downgrade())
    }

    /// Ingest into a partition (cluster mode: with the owner's fence).
    pub async fn ingest_part(
        &self,
        part: i32,
        fence: Option<Fence>,
        batch: IngestBatch,
    ) -> Result<IngestOutcome, StoreError> {
        match self.write(Op::Ingest(part, fence, batch)).await? {
            Out::Ingest(o) => Ok(o),
            Out::N(_) => Err(StoreError::Database(
                "writer answered the wrong kind".into(),
            )),
        }
    }

    /// Persist a partition's incident changes, its cursor and the notifications they cause
    /// in one transaction (cluster mode: fenced).
    pub async fn apply_part(
        &self,
        part: i32,
        fence: Option<Fence>,
        changes: Vec<Incident>,
        cursor: i64,
        outbox: Vec<OutboxItem>,
    ) -> Result<(), StoreError> {
        self.write(Op::Incidents {
            part,
            fence,
            changes,
            cursor,
            outbox,
        })
        .await
        .map(|_| ())
    }

    pub async fn evidence_after_part(
        &self,
        part: i32,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Event)>, StoreError> {
        let c = self.reader().await?;
        let rows = c
            .query(
                "SELECT pos, body FROM evidence WHERE part = $1 AND pos > $2 ORDER BY pos LIMIT $3",
                &[&part, &after, &(limit as i64)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let pos: i64 = r.get(0);
                let body: &str = r.get(1);
                serde_json::from_str(body)
                    .map(|ev| (pos, ev))
                    .map_err(|e| StoreError::Corrupt {
                        what: format!("evidence at position {pos}"),
                        detail: e.to_string(),
                    })
            })
            .collect()
    }

    pub async fn cursor_part(&self, part: i32) -> Result<i64, StoreError> {
        let c = self.reader().await?;
        let row = c
            .query_opt("SELECT pos FROM cursors WHERE part = $1", &[&part])
            .await?;
        Ok(row.map_or(0, |r| r.get(0)))
    }

    /// Highest evidence position stored for a partition (for lag).
    pub async fn head_part(&self, part: i32) -> Result<i64, StoreError> {
        let c = self.reader().await?;
        let row = c
            .query_one(
                "SELECT COALESCE(MAX(pos), 0)::BIGINT FROM evidence WHERE part = $1",
                &[&part],
            )
            .await?;
        Ok(row.get(0))
    }

    pub async fn active_incidents_part(&self, part: i32) -> Result<Vec<Incident>, StoreError> {
        let c = self.reader().await?;
        let rows = c
            .query(
                "SELECT body FROM incidents WHERE part = $1 AND status <> 'resolved' ORDER BY detected_ms",
                &[&part],
            )
            .await?;
        rows.iter().map(|r| decode_incident(r.get(0))).collect()
    }

    /// The partition an incident belongs to (`None`: no such incident).
    pub async fn incident_part(&self, id: Ulid) -> Result<Option<i32>, StoreError> {
        let c = self.reader().await?;
        let row = c
            .query_opt(
                "SELECT part FROM incidents WHERE id = $1",
                &[&id.to_string()],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// A control connection for leases and replica heartbeats: separate from the writer so a
    /// renewal never waits behind a write group.
    pub async fn control(&self) -> Result<Control, StoreError> {
        Ok(Control {
            client: connect(&self.config, &self.location).await?,
        })
    }

    pub fn location(&self) -> &str {
        &self.location
    }
}

fn decode_incident(body: &str) -> Result<Incident, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt {
        what: "incident".into(),
        detail: e.to_string(),
    })
}

#[async_trait]
impl Store for PgStore {
    async fn ingest(&self, batch: IngestBatch) -> Result<IngestOutcome, StoreError> {
        self.ingest_part(0, None, batch).await
    }

    async fn evidence_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Event)>, StoreError> {
        self.evidence_after_part(0, after, limit).await
    }

    async fn apply_incidents_outbox(
        &self,
        changes: Vec<Incident>,
        cursor: i64,
        outbox: Vec<OutboxItem>,
    ) -> Result<(), StoreError> {
        self.apply_part(0, None, changes, cursor, outbox).await
    }

    async fn outbox_enqueue(&self, items: Vec<OutboxItem>) -> Result<u64, StoreError> {
        self.write_n(Op::Enqueue(items)).await
    }

    async fn outbox_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let c = self.reader().await?;
        let rows = c
            .query(
                "SELECT id, key, incident, receiver, kind, body, created_ms, attempts, next_ms, status = 'sending'
                 FROM outbox WHERE status IN ('pending', 'sending') AND next_ms <= $1 ORDER BY id LIMIT $2",
                &[&ms(now), &(limit as i64)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.get(0);
                let incident: &str = r.get(2);
                let incident = Ulid::from_string(incident).map_err(|e| StoreError::Corrupt {
                    what: format!("outbox row {id}"),
                    detail: e.to_string(),
                })?;
                Ok(OutboxRow {
                    id,
                    item: OutboxItem {
                        key: r.get(1),
                        incident,
                        receiver: r.get(3),
                        kind: r.get(4),
                        body: r.get(5),
                        created_at: from_ms(r.get(6)),
                    },
                    attempts: r.get::<_, i32>(7).max(0) as u32,
                    next_at: from_ms(r.get(8)),
                    in_doubt: r.get(9),
                })
            })
            .collect()
    }

    async fn outbox_update(&self, id: i64, update: OutboxUpdate) -> Result<(), StoreError> {
        self.write_n(Op::OutboxUpdate(id, update)).await.map(|_| ())
    }

    async fn audit_append(&self, records: Vec<(DateTime<Utc>, String)>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        self.write_n(Op::Audit(records)).await.map(|_| ())
    }

    async fn audit_since(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let c = self.reader().await?;
        let rows = c
            .query(
                "SELECT body FROM audit WHERE at_ms >= $1 ORDER BY seq LIMIT $2",
                &[&ms(since), &(limit as i64)],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn audit_page(
        &self,
        since: DateTime<Utc>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let c = self.reader().await?;
        let rows = c
            .query(
                "SELECT seq, body FROM audit WHERE seq > $1 AND at_ms >= $2 ORDER BY seq LIMIT $3",
                &[&after, &ms(since), &(limit as i64)],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn audit_prune(
        &self,
        cutoff: DateTime<Utc>,
        max_records: u64,
    ) -> Result<u64, StoreError> {
        let cutoff = ms(cutoff);
        let keep = i64::try_from(max_records).unwrap_or(i64::MAX);
        let mut total = 0;
        loop {
            let n = self.write_n(Op::AuditPrune(cutoff, keep)).await?;
            total += n;
            if n < PRUNE_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    async fn silence_put(
        &self,
        id: Ulid,
        ends_at: DateTime<Utc>,
        body: String,
    ) -> Result<(), StoreError> {
        self.write_n(Op::SilencePut(id, ends_at, body))
            .await
            .map(|_| ())
    }

    async fn silences(&self, ended_after: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let c = self.reader().await?;
        let rows = c
            .query(
                "SELECT body FROM silences WHERE ends_ms > $1 ORDER BY id",
                &[&ms(ended_after)],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn outbox_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let c = self.reader().await?;
        let rows = c
            .query(
                "SELECT receiver, status, COUNT(*) FROM outbox GROUP BY receiver, status ORDER BY receiver, status",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2).max(0) as u64))
            .collect())
    }

    async fn correlator_cursor(&self) -> Result<i64, StoreError> {
        self.cursor_part(0).await
    }

    async fn list_incidents(&self, f: IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        let mut sql = String::from("SELECT body FROM incidents WHERE TRUE");
        let status: Vec<String> = f.status.iter().map(|s| s.as_str().to_owned()).collect();
        let severity: Vec<String> = f.severity.iter().map(|s| s.as_str().to_owned()).collect();
        let since = f.since.map(ms);
        let limit = if f.limit == 0 { 100 } else { f.limit.min(1000) } as i64;
        let mut args: Vec<&(dyn ToSql + Sync)> = Vec::new();
        if !status.is_empty() {
            args.push(&status);
            sql.push_str(&format!(" AND status = ANY(${})", args.len()));
        }
        if !severity.is_empty() {
            args.push(&severity);
            sql.push_str(&format!(" AND severity = ANY(${})", args.len()));
        }
        if let Some(ns) = &f.namespace {
            args.push(ns);
            sql.push_str(&format!(" AND namespace = ${}", args.len()));
        }
        if let Some(since) = &since {
            args.push(since);
            sql.push_str(&format!(" AND updated_ms >= ${}", args.len()));
        }
        args.push(&limit);
        sql.push_str(&format!(
            " ORDER BY severity ASC, detected_ms DESC LIMIT ${}",
            args.len()
        ));
        let c = self.reader().await?;
        let rows = c.query(&sql, &args).await?;
        rows.iter().map(|r| decode_incident(r.get(0))).collect()
    }

    async fn get_incident(&self, id: Ulid) -> Result<Option<Incident>, StoreError> {
        let c = self.reader().await?;
        let row = c
            .query_opt(
                "SELECT body FROM incidents WHERE id = $1",
                &[&id.to_string()],
            )
            .await?;
        row.map(|r| decode_incident(r.get(0))).transpose()
    }

    async fn active_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let c = self.reader().await?;
        let rows = c
            .query(
                "SELECT body FROM incidents WHERE status <> $1 ORDER BY detected_ms",
                &[&Status::Resolved.as_str()],
            )
            .await?;
        rows.iter().map(|r| decode_incident(r.get(0))).collect()
    }

    async fn incident_counts(&self) -> Result<Vec<(Status, Severity, u64)>, StoreError> {
        let c = self.reader().await?;
        let rows = c
            .query(
                "SELECT status, severity, COUNT(*) FROM incidents GROUP BY status, severity",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let corrupt = |d: String| StoreError::Corrupt {
                    what: "incident counts".into(),
                    detail: d,
                };
                Ok((
                    r.get::<_, &str>(0).parse::<Status>().map_err(corrupt)?,
                    r.get::<_, &str>(1).parse::<Severity>().map_err(corrupt)?,
                    r.get::<_, i64>(2).max(0) as u64,
                ))
            })
            .collect()
    }

    async fn agents(&self) -> Result<Vec<AgentStatus>, StoreError> {
        let c = self.reader().await?;
        let rows = c
            .query(
                "SELECT agent_id, node, max_seq, last_seen_ms, batches, events, missing
                 FROM agents ORDER BY agent_id",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| AgentStatus {
                agent_id: r.get(0),
                node: r.get(1),
                last_seq: r.get::<_, i64>(2).max(0) as u64,
                last_seen: from_ms(r.get(3)),
                batches: r.get::<_, i64>(4).max(0) as u64,
                events: r.get::<_, i64>(5).max(0) as u64,
                missing_batches: r.get::<_, i64>(6).max(0) as u64,
                heartbeat: None,
            })
            .collect())
    }

    async fn prune_evidence(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let cutoff = ms(cutoff);
        let mut total = 0;
        loop {
            let n = self.write_n(Op::Prune(cutoff)).await?;
            total += n;
            if n < PRUNE_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let c = self.reader().await?;
        c.query_one("SELECT 1", &[]).await?;
        Ok(())
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let c = self.reader().await?;
        let r = c
            .query_one(
                "SELECT (SELECT COALESCE(MAX(pos) - MIN(pos) + 1, 0) FROM evidence)::BIGINT,
                        (SELECT COUNT(*) FROM incidents)::BIGINT,
                        pg_database_size(current_database())::BIGINT,
                        (SELECT COALESCE(MAX(version), 0) FROM schema_migrations)::BIGINT",
                &[],
            )
            .await?;
        Ok(StoreStats {
            backend: "postgres",
            location: self.location.clone(),
            evidence_rows: r.get::<_, i64>(0).max(0) as u64,
            incidents: r.get::<_, i64>(1).max(0) as u64,
            size_bytes: r.get::<_, i64>(2).max(0) as u64,
            schema_version: r.get(3),
        })
    }

    fn pending_writes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}
