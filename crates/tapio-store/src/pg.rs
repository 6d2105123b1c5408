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

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use tapio_core::{Incident, Severity, Status};
use tapio_proto::{AgentStatus, Event};
use tokio::sync::{RwLock, mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Transaction};
use ulid::Ulid;

use crate::{
    IncidentFilter, IngestBatch, IngestOutcome, OutboxItem, OutboxRow, OutboxUpdate, Store,
    StoreError, StoreStats,
};

const MAX_GROUP: usize = 256;
const WRITE_QUEUE: usize = 1024;
const READERS: usize = 2;
const PRUNE_CHUNK: i64 = 20_000;
/// Advisory lock key held while migrating, so replicas starting together migrate once.
const MIGRATION_LOCK: i64 = 0x7a70_1008;

/// Migrations, applied in order under an advisory lock; each recorded in `schema_migrations`.
/// Numbered like SQLite's so `stats().schema_version` means the same on both (5: cluster, 6: lease epoch as a key).
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE evidence (
    pos          BIGSERIAL PRIMARY KEY,   -- storage order within a partition; the correlator's cursor
    id           TEXT NOT NULL UNIQUE,    -- event ULID
    part         INTEGER NOT NULL DEFAULT 0,
    time_ms      BIGINT NOT NULL,
    received_ms  BIGINT NOT NULL,
    type         TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    body         TEXT NOT NULL            -- the event as JSON
);
CREATE INDEX evidence_part_pos ON evidence (part, pos);
CREATE INDEX evidence_received ON evidence (received_ms);
CREATE TABLE batches (
    agent_id        TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    received_ms     BIGINT NOT NULL,
    events          BIGINT NOT NULL,
    first_event_id  TEXT,
    PRIMARY KEY (agent_id, seq)
);
CREATE INDEX batches_received ON batches (received_ms);
CREATE TABLE agents (
    agent_id      TEXT PRIMARY KEY,
    node          TEXT NOT NULL,
    max_seq       BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL,
    batches       BIGINT NOT NULL,
    events        BIGINT NOT NULL,
    missing       BIGINT NOT NULL
);
CREATE TABLE incidents (
    id           TEXT PRIMARY KEY,
    part         INTEGER NOT NULL DEFAULT 0,
    fingerprint  TEXT NOT NULL,
    status       TEXT NOT NULL,
    severity     TEXT NOT NULL,
    namespace    TEXT,
    detected_ms  BIGINT NOT NULL,
    updated_ms   BIGINT NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX incidents_status ON incidents (status, severity);
CREATE INDEX incidents_updated ON incidents (updated_ms);
CREATE INDEX incidents_part ON incidents (part) WHERE status <> 'resolved';
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"#,
    ),
    (
        2,
        r#"
CREATE TABLE outbox (
    id            BIGSERIAL PRIMARY KEY,
    key           TEXT NOT NULL UNIQUE,      -- incident:state:receiver: one per state change per receiver
    incident      TEXT NOT NULL,
    receiver      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending',
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_ms       BIGINT NOT NULL,
    done_ms       BIGINT,
    last_error    TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_ms);
"#,
    ),
    (
        3,
        r#"
CREATE TABLE silences (
    id       TEXT PRIMARY KEY,
    ends_ms  BIGINT NOT NULL,
    body     TEXT NOT NULL
);
"#,
    ),
    (
        4,
        r#"
CREATE TABLE audit (
    seq    BIGSERIAL PRIMARY KEY,
    at_ms  BIGINT NOT NULL,
    body   TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at_ms);
CREATE FUNCTION tapio_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'audit records are append-only'; END $$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION tapio_audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION tapio_audit_append_only();
"#,
    ),
    (
        5,
        r#"
-- Scale-out: per-partition correlator positions, partition leases, live replicas.
CREATE TABLE cursors (part INTEGER PRIMARY KEY, pos BIGINT NOT NULL);
CREATE TABLE leases (
    part        INTEGER PRIMARY KEY,
    owner       TEXT,                    -- replica id; NULL when released
    epoch       BIGINT NOT NULL DEFAULT 0, -- +1 on every change of owner (the fencing token)
    expires_at  TIMESTAMPTZ NOT NULL DEFAULT 'epoch',
    acquired_at TIMESTAMPTZ
);
CREATE TABLE replicas (
    id           TEXT PRIMARY KEY,
    address      TEXT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL,
    stopping     BOOLEAN NOT NULL DEFAULT FALSE
);
"#,
    ),
    (
        6,
        // Renewals must never wait behind the owner's own writes (under load they did, and
        // with a group commit holding several partitions' rows the two deadlocked). A
        // unique index makes `epoch` a key column: a write's fence check takes FOR KEY
        // SHARE, which a renewal (only `expires_at`) does not conflict with, while a
        // takeover (a new epoch: a key update) still waits for in-flight fenced writes.
        r#"
CREATE UNIQUE INDEX leases_part_epoch ON leases (part, epoch);
"#,
    ),
    (
        7,
        // Audit retention: deletions stay refused, except inside the retention's own
        // transaction, which sets `tapio.audit_prune` (audit_prune).
        r#"
CREATE OR REPLACE FUNCTION tapio_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN
    IF TG_OP = 'DELETE' AND current_setting('tapio.audit_prune', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit records are append-only';
END $$;
"#,
    ),
];

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

enum Op {
    Ingest(i32, Option<Fence>, IngestBatch),
    Incidents {
        part: i32,
        fence: Option<Fence>,
        changes: Vec<Incident>,
        cursor: i64,
        outbox: Vec<OutboxItem>,
    },
    Enqueue(Vec<OutboxItem>),
    OutboxUpdate(i64, OutboxUpdate),
    SilencePut(Ulid, DateTime<Utc>, String),
    Audit(Vec<(DateTime<Utc>, String)>),
    Prune(i64),
    AuditPrune(i64, i64),
}

enum Out {
    Ingest(IngestOutcome),
    N(u64),
}

type Reply = oneshot::Sender<Result<Out, StoreError>>;

pub struct PgStore {
    location: String,
    tx: mpsc::Sender<(Op, Reply)>,
    queued: Arc<AtomicUsize>,
    readers: Vec<RwLock<Client>>,
    config: tokio_postgres::Config,
    next_reader: AtomicUsize,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

fn db(e: tokio_postgres::Error) -> StoreError {
    // The server's message (with its detail) says more than the client's summary.
    match e.as_db_error() {
        Some(d) => StoreError::Database(format!("{}: {}", d.severity(), d.message())),
        None => StoreError::Database(e.to_string()),
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        db(e)
    }
}

/// The URL with any password replaced, for logs and `/health`.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn connect(cfg: &tokio_postgres::Config, location: &str) -> Result<Client, StoreError> {
    let (client, conn) = cfg.connect(NoTls).await.map_err(|e| StoreError::Open {
        path: location.to_owned(),
        detail: format!("cannot connect to PostgreSQL: {e}"),
    })?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

async fn migrate(client: &mut Client, location: &str) -> Result<i64, StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let res = migrate_locked(client, location).await;
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let v = res?;
    unlock?;
    Ok(v)
}

async fn migrate_locked(client: &mut Client, location: &str) -> Result<i64, StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
        )
        .await?;
    let current: i64 = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    let newest = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > newest {
        return Err(StoreError::Open {
            path: location.to_owned(),
            detail: format!(
                "database schema version {current} is newer than this build knows ({newest}); \
                 run the newer tapio-server or restore a backup"
            ),
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
            &[version, &ms(Utc::now())],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(version, "store migration applied (postgres)");
    }
    Ok(newest)
}

impl PgStore {
    /// Connect, migrate and start the writer. `url` is a libpq-style URL
    /// (`postgres://user:password@host:port/db?…`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let location = redact(url);
        let config: tokio_postgres::Config = url.parse().map_err(|e| StoreError::Open {
            path: location.clone(),
            detail: format!(
                "not a PostgreSQL URL ({e}); expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
            ),
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

/// Lease and replica bookkeeping on its own connection. Every time comparison uses the
/// database's clock (`clock_timestamp()`), so replicas' clocks never disagree about expiry.
pub struct Control {
    client: Client,
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

async fn writer_loop(
    client: Client,
    cfg: tokio_postgres::Config,
    location: String,
    mut rx: mpsc::Receiver<(Op, Reply)>,
    queued: Arc<AtomicUsize>,
) {
    let mut client = Some(client);
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(c) => group.push(c),
                Err(_) => break,
            }
        }
        queued.fetch_sub(group.len(), Ordering::Relaxed);
        if client.as_ref().is_none_or(Client::is_closed) {
            client = match connect(&cfg, &location).await {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "PostgreSQL writer cannot reconnect; the group's writers get an error");
                    for (_, r) in group {
                        let _ = r.send(Err(StoreError::Database(e.to_string())));
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
        }
        if let Some(c) = client.as_mut() {
            run_group(c, group).await;
        }
    }
    tracing::debug!("postgres writer stopped");
}

async fn run_group(client: &mut Client, group: Vec<(Op, Reply)>) {
    let mut tx = match client.transaction().await {
        Ok(tx) => tx,
        Err(e) => {
            let msg = db(e).to_string();
            for (_, r) in group {
                let _ = r.send(Err(StoreError::Database(format!("begin: {msg}"))));
            }
            return;
        }
    };
    let mut done = Vec::with_capacity(group.len());
    for (op, reply) in group {
        let res = match tx.savepoint("g").await {
            Ok(mut sp) => {
                let res = run_op(&mut sp, op).await;
                match res {
                    Ok(v) => sp.commit().await.map(|()| v).map_err(db),
                    Err(e) => {
                        // Only this command is undone; the rest of the group commits.
                        if let Err(re) = sp.rollback().await {
                            tracing::error!(error = %re, "savepoint rollback failed");
                        }
                        Err(e)
                    }
                }
            }
            Err(e) => Err(db(e)),
        };
        done.push((reply, res));
    }
    match tx.commit().await {
        Ok(()) => {
            for (r, v) in done {
                let _ = r.send(v);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "store commit failed (postgres); the group's writers get an error");
            let msg = db(e).to_string();
            for (r, _) in done {
                let _ = r.send(Err(StoreError::Database(format!("commit: {msg}"))));
            }
        }
    }
}

/// The fence check every fenced write runs first in its transaction (parameters: part,
/// owner, epoch); public so the lock semantics it relies on are tested against it.
pub const FENCE_CHECK_SQL: &str =
    "SELECT 1 FROM leases WHERE part = $1 AND owner = $2 AND epoch = $3 FOR KEY SHARE";

async fn check_fence(tx: &Transaction<'_>, fence: &Option<Fence>) -> Result<(), StoreError> {
    let Some(f) = fence else { return Ok(()) };
    let held = tx
        .query_opt(FENCE_CHECK_SQL, &[&f.part, &f.owner, &f.epoch])
        .await?;
    if held.is_none() {
        return Err(StoreError::Fenced {
            part: f.part,
            epoch: f.epoch,
        });
    }
    Ok(())
}

async fn run_op(tx: &mut Transaction<'_>, op: Op) -> Result<Out, StoreError> {
    match op {
        Op::Ingest(part, fence, batch) => {
            check_fence(tx, &fence).await?;
            ingest_tx(tx, part, batch).await.map(Out::Ingest)
        }
        Op::Incidents {
            part,
            fence,
            changes,
            cursor,
            outbox,
        } => {
            check_fence(tx, &fence).await?;
            incidents_tx(tx, part, &changes, cursor).await?;
            enqueue_tx(tx, &outbox).await.map(Out::N)
        }
        Op::Enqueue(items) => enqueue_tx(tx, &items).await.map(Out::N),
        Op::OutboxUpdate(id, update) => outbox_update_tx(tx, id, update).await.map(Out::N),
        Op::SilencePut(id, ends, body) => Ok(Out::N(
            tx.execute(
                "INSERT INTO silences (id, ends_ms, body) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET ends_ms = $2, body = $3",
                &[&id.to_string(), &ms(ends), &body],
            )
            .await?,
        )),
        Op::Audit(records) => {
            let at: Vec<i64> = records.iter().map(|r| ms(r.0)).collect();
            let bodies: Vec<&str> = records.iter().map(|r| r.1.as_str()).collect();
            Ok(Out::N(
                tx.execute(
                    "INSERT INTO audit (at_ms, body) SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[])",
                    &[&at, &bodies],
                )
                .await?,
            ))
        }
        Op::Prune(cutoff) => prune_tx(tx, cutoff).await.map(Out::N),
        Op::AuditPrune(cutoff, keep) => {
            tx.batch_execute("SET LOCAL tapio.audit_prune = 'on'")
                .await?;
            let n = tx
                .execute(
                    "DELETE FROM audit WHERE seq IN (SELECT seq FROM audit
                       WHERE at_ms < $1
                          OR seq <= (SELECT COALESCE(MAX(seq), 0) FROM audit) - $2
                       ORDER BY seq LIMIT $3)",
                    &[&cutoff, &keep, &PRUNE_CHUNK],
                )
                .await?;
            tx.batch_execute("SET LOCAL tapio.audit_prune = 'off'")
                .await?;
            Ok(Out::N(n))
        }
    }
}

async fn ingest_tx(
    tx: &Transaction<'_>,
    part: i32,
    batch: IngestBatch,
) -> Result<IngestOutcome, StoreError> {
    let now_ms = ms(batch.received_at);
    let mut out = IngestOutcome::default();
    let first_id = batch.first_event_id.map(|id| id.to_string());

    if let Some(seq) = batch.seq {
        let seq_i = i64::try_from(seq).map_err(|_| {
            StoreError::Database(format!("batch seq {seq} exceeds the store's range"))
        })?;
        let agent = tx
            .query_opt(
                "SELECT max_seq, missing FROM agents WHERE agent_id = $1 FOR UPDATE",
                &[&batch.agent_id],
            )
            .await?
            .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)));
        let prior = tx
            .query_opt(
                "SELECT first_event_id FROM batches WHERE agent_id = $1 AND seq = $2",
                &[&batch.agent_id, &seq_i],
            )
            .await?
            .map(|r| r.get::<_, Option<String>>(0));
        if let Some(prior_first) = prior {
            if prior_first == first_id {
                out.duplicate_batch = true;
                tx.execute(
                    "UPDATE agents SET last_seen_ms = $2 WHERE agent_id = $1",
                    &[&batch.agent_id, &now_ms],
                )
                .await?;
                return Ok(out);
            }
            out.sequence_reset = true;
            tx.execute(
                "DELETE FROM batches WHERE agent_id = $1 AND seq > $2",
                &[&batch.agent_id, &seq_i],
            )
            .await?;
        }
        let (max_seq, missing) = match agent {
            None => (seq_i, 0),
            Some(_) if out.sequence_reset => (seq_i, 0),
            Some((max, missing)) => {
                let (max, missing, new_missing, jump) = crate::advance_seq(max, missing, seq_i);
                out.new_missing = new_missing;
                out.sequence_jump = jump;
                (max, missing)
            }
        };
        let n_events = batch.events.len() as i64;
        tx.execute(
            "INSERT INTO batches (agent_id, seq, received_ms, events, first_event_id)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (agent_id, seq) DO UPDATE SET received_ms = $3, events = $4, first_event_id = $5",
            &[&batch.agent_id, &seq_i, &now_ms, &n_events, &first_id],
        )
        .await?;
        tx.execute(
            "INSERT INTO agents (agent_id, node, max_seq, last_seen_ms, batches, events, missing)
             VALUES ($1, $2, $3, $4, 1, $5, $6)
             ON CONFLICT (agent_id) DO UPDATE SET node = $2, max_seq = $3, last_seen_ms = $4,
                 batches = agents.batches + 1, events = agents.events + $5, missing = $6",
            &[
                &batch.agent_id,
                &batch.node,
                &max_seq,
                &now_ms,
                &n_events,
                &missing,
            ],
        )
        .await?;
    }

    if batch.events.is_empty() {
        return Ok(out);
    }
    let mut ids = Vec::with_capacity(batch.events.len());
    let mut times = Vec::with_capacity(batch.events.len());
    let mut types = Vec::with_capacity(batch.events.len());
    let mut bodies = Vec::with_capacity(batch.events.len());
    for ev in &batch.events {
        bodies.push(serde_json::to_string(ev).map_err(|e| StoreError::Corrupt {
            what: format!("event {}", ev.id),
            detail: e.to_string(),
        })?);
        ids.push(ev.id.to_string());
        times.push(ms(ev.time));
        types.push(ev.kind.as_str().to_owned());
    }
    // One statement for the whole batch, in the batch's order (WITH ORDINALITY), so
    // positions follow the order the agent sent.
    let rows = tx
        .query(
            "INSERT INTO evidence (id, part, time_ms, received_ms, type, agent_id, body)
             SELECT u.id, $5, u.t, $6, u.ty, $7, u.b
             FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[]) WITH ORDINALITY
                  AS u(id, t, ty, b, n)
             ORDER BY u.n
             ON CONFLICT (id) DO NOTHING
             RETURNING id, pos",
            &[
                &ids,
                &times,
                &types,
                &bodies,
                &part,
                &now_ms,
                &batch.agent_id,
            ],
        )
        .await?;
    let mut pos_of: HashMap<String, i64> = rows
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
        .collect();
    for ev in batch.events {
        match pos_of.remove(&ev.id.to_string()) {
            Some(pos) => out.stored.push((pos, ev)),
            None => out.duplicate_events += 1,
        }
    }
    out.stored.sort_by_key(|s| s.0);
    Ok(out)
}

async fn enqueue_tx(tx: &Transaction<'_>, items: &[OutboxItem]) -> Result<u64, StoreError> {
    let mut n = 0;
    for it in items {
        n += tx
            .execute(
                "INSERT INTO outbox (key, incident, receiver, kind, body, created_ms, next_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (key) DO NOTHING",
                &[
                    &it.key,
                    &it.incident.to_string(),
                    &it.receiver,
                    &it.kind,
                    &it.body,
                    &ms(it.created_at),
                ],
            )
            .await?;
    }
    Ok(n)
}

async fn outbox_update_tx(
    tx: &Transaction<'_>,
    id: i64,
    update: OutboxUpdate,
) -> Result<u64, StoreError> {
    use OutboxUpdate as U;
    let n = match update {
        U::Delivered { at } => {
            tx.execute(
                "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, done_ms = $2 WHERE id = $1",
                &[&id, &ms(at)],
            )
            .await?
        }
        U::Retry { next_at, error } => {
            tx.execute(
                "UPDATE outbox SET status = 'pending', attempts = attempts + 1, next_ms = $2, last_error = $3 WHERE id = $1",
                &[&id, &ms(next_at), &error],
            )
            .await?
        }
        U::Failed { error } => {
            tx.execute(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $2 WHERE id = $1",
                &[&id, &error],
            )
            .await?
        }
        U::Defer { next_at } => {
            tx.execute(
                "UPDATE outbox SET status = 'pending', next_ms = $2 WHERE id = $1",
                &[&id, &ms(next_at)],
            )
            .await?
        }
        U::Sending => {
            tx.execute(
                "UPDATE outbox SET status = 'sending' WHERE id = $1 AND status = 'pending'",
                &[&id],
            )
            .await?
        }
        U::Superseded => {
            tx.execute(
                "UPDATE outbox SET status = 'superseded' WHERE id = $1",
                &[&id],
            )
            .await?
        }
    };
    Ok(n)
}

async fn incidents_tx(
    tx: &Transaction<'_>,
    part: i32,
    changes: &[Incident],
    cursor: i64,
) -> Result<(), StoreError> {
    let upsert = tx
        .prepare(
            "INSERT INTO incidents (id, part, fingerprint, status, severity, namespace, detected_ms, updated_ms, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (id) DO UPDATE SET status = $4, severity = $5, namespace = $6,
                 updated_ms = $8, body = $9",
        )
        .await?;
    for inc in changes {
        let body = serde_json::to_string(inc).map_err(|e| StoreError::Corrupt {
            what: format!("incident {}", inc.id),
            detail: e.to_string(),
        })?;
        tx.execute(
            &upsert,
            &[
                &inc.id.to_string(),
                &part,
                &inc.fingerprint,
                &inc.status.as_str(),
                &inc.severity.as_str(),
                &inc.namespace,
                &ms(inc.detected_at),
                &ms(inc.updated_at),
                &body,
            ],
        )
        .await?;
    }
    tx.execute(
        "INSERT INTO cursors (part, pos) VALUES ($1, $2) ON CONFLICT (part) DO UPDATE SET pos = $2",
        &[&part, &cursor],
    )
    .await?;
    Ok(())
}

async fn prune_tx(tx: &Transaction<'_>, cutoff_ms: i64) -> Result<u64, StoreError> {
    // Never delete what a partition's correlator has not read yet, however old.
    let n = tx
        .execute(
            "DELETE FROM evidence WHERE pos IN
                 (SELECT e.pos FROM evidence e WHERE e.received_ms < $1
                    AND e.pos <= COALESCE((SELECT c.pos FROM cursors c WHERE c.part = e.part), 0)
                  ORDER BY e.received_ms LIMIT $2)",
            &[&cutoff_ms, &PRUNE_CHUNK],
        )
        .await?;
    tx.execute("DELETE FROM batches WHERE received_ms < $1", &[&cutoff_ms])
        .await?;
    Ok(n)
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

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact("postgres://tapio:s3cret@db:5432/tapio"),
            "postgres://tapio:***@db:5432/tapio"
        );
        assert_eq!(
            redact("postgres://tapio@db/tapio"),
            "postgres://tapio@db/tapio"
        );
        assert_eq!(redact("postgres://db/tapio"), "postgres://db/tapio");
    }
}
