//! Embedded SQLite backend (WAL).
//!
//! One writer thread owns the only write connection and commits in groups: it takes one
//! command, then whatever else is already queued (up to [`MAX_GROUP`]), runs each inside
//! its own savepoint of a single transaction and commits once, then answers every caller.
//! With `synchronous=FULL` the commit is fsynced before any caller is answered, so an
//! acknowledged batch survives a kill -9 and a power cut; grouping amortises the fsync.
//! Reads use a small set of separate connections (WAL lets them run beside the writer).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tapio_core::{Incident, Severity, Status};
use tapio_proto::{AgentStatus, Event};
use tokio::sync::oneshot;
use ulid::Ulid;

use crate::migrations;
use crate::{IncidentFilter, IngestBatch, IngestOutcome, Store, StoreError, StoreStats};

/// Most write commands committed in one transaction.
const MAX_GROUP: usize = 256;
/// Bound of the writer's command queue; callers wait (backpressure) when it is full.
const WRITE_QUEUE: usize = 1024;
const READERS: usize = 3;
const PRUNE_CHUNK: i64 = 20_000;

/// How hard commits are flushed. `Full` fsyncs every commit (survives power loss);
/// `Normal` survives a process kill but not a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Full,
    Normal,
}

/// A small write run inside the writer's transaction; returns rows changed.
type ExecFn = Box<dyn FnOnce(&rusqlite::Savepoint<'_>) -> Result<u64, StoreError> + Send>;

enum WriteCmd {
    Ingest(
        IngestBatch,
        oneshot::Sender<Result<IngestOutcome, StoreError>>,
    ),
    Incidents(
        Vec<Incident>,
        i64,
        Vec<crate::OutboxItem>,
        oneshot::Sender<Result<(), StoreError>>,
    ),
    /// Any other small write, run in the writer's transaction; returns rows changed.
    Exec(ExecFn, oneshot::Sender<Result<u64, StoreError>>),
    Prune(i64, oneshot::Sender<Result<u64, StoreError>>),
}

pub struct SqliteStore {
    path: PathBuf,
    tx: SyncSender<WriteCmd>,
    queued: Arc<AtomicUsize>,
    readers: Arc<Vec<Mutex<Connection>>>,
    next_reader: AtomicUsize,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

fn open_conn(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let open_err = |e: rusqlite::Error| StoreError::Open {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(open_err)?;
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;"
    ))
    .map_err(open_err)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<i64, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)",
    )?;
    let current: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    let newest = migrations::newest(migrations::SQLITE);
    if current > newest {
        return Err(StoreError::Open {
            path: conn.path().unwrap_or("?").to_owned(),
            detail: migrations::too_new(current, newest),
        });
    }
    for m in migrations::SQLITE.iter().filter(|m| m.version > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(m.sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES (?1, ?2)",
            params![m.version, ms(Utc::now())],
        )?;
        tx.commit()?;
        tracing::info!(
            version = m.version,
            file = m.file,
            "store migration applied"
        );
    }
    Ok(newest)
}

impl SqliteStore {
    /// Open (creating if needed) `dir/tapio.db`, run migrations, start the writer.
    pub fn open(dir: &Path, durability: Durability) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: dir.display().to_string(),
            detail: format!("cannot create data directory: {e}"),
        })?;
        let path = dir.join("tapio.db");
        let mut writer = open_conn(&path, durability)?;
        migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| open_conn(&path, durability).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        let (tx, rx) = sync_channel(WRITE_QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        std::thread::Builder::new()
            .name("tapio-sqlite-writer".into())
            .spawn(move || writer_loop(writer, rx, q))
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                detail: format!("cannot start writer thread: {e}"),
            })?;
        Ok(Self {
            path,
            tx,
            queued,
            readers: Arc::new(readers),
            next_reader: AtomicUsize::new(0),
        })
    }

    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> WriteCmd,
    ) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        let cmd = make(reply);
        self.queued.fetch_add(1, Ordering::Relaxed);
        // A full queue blocks; do that off the async workers.
        let tx = self.tx.clone();
        let sent = match tx.try_send(cmd) {
            Ok(()) => Ok(()),
            Err(std::sync::mpsc::TrySendError::Full(cmd)) => {
                tokio::task::spawn_blocking(move || tx.send(cmd).map_err(|_| ()))
                    .await
                    .map_err(|_| ())
                    .and_then(|r| r)
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => Err(()),
        };
        if sent.is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(StoreError::Closed);
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let readers = self.readers.clone();
        // On the blocking pool, so a stalled disk never blocks an async worker and callers'
        // timeouts (health checks) still fire.
        tokio::task::spawn_blocking(move || {
            // A free connection first (a long read — the correlator's chunk — must not make
            // a health check wait behind it), else wait for this caller's turn.
            let n = readers.len();
            let free = (0..n).find_map(|k| readers[(i + k) % n].try_lock().ok());
            let conn = match free {
                Some(c) => c,
                None => readers[i]
                    .lock()
                    .map_err(|_| StoreError::Database("reader connection poisoned".into()))?,
            };
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Database(format!("read task failed: {e}")))?
    }
}

fn writer_loop(mut conn: Connection, rx: Receiver<WriteCmd>, queued: Arc<AtomicUsize>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(c) => group.push(c),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        queued.fetch_sub(group.len(), Ordering::Relaxed);
        run_group(&mut conn, group);
    }
    tracing::debug!("sqlite writer stopped");
}

enum Done {
    Ingest(
        oneshot::Sender<Result<IngestOutcome, StoreError>>,
        Result<IngestOutcome, StoreError>,
    ),
    Incidents(
        oneshot::Sender<Result<(), StoreError>>,
        Result<(), StoreError>,
    ),
    Prune(
        oneshot::Sender<Result<u64, StoreError>>,
        Result<u64, StoreError>,
    ),
}

impl Done {
    /// Answer with `err` instead of the computed result (the transaction did not commit).
    fn fail(self, err: StoreError) {
        match self {
            Done::Ingest(r, _) => drop(r.send(Err(err))),
            Done::Incidents(r, _) => drop(r.send(Err(err))),
            Done::Prune(r, _) => drop(r.send(Err(err))),
        }
    }
}

fn run_group(conn: &mut Connection, group: Vec<WriteCmd>) {
    let mut done = Vec::with_capacity(group.len());
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            let err = || StoreError::Database(format!("begin: {e}"));
            for cmd in group {
                let reply = match cmd {
                    WriteCmd::Ingest(_, r) => Done::Ingest(r, Ok(IngestOutcome::default())),
                    WriteCmd::Incidents(_, _, _, r) => Done::Incidents(r, Ok(())),
                    WriteCmd::Prune(_, r) | WriteCmd::Exec(_, r) => Done::Prune(r, Ok(0)),
                };
                reply.fail(err());
            }
            return;
        }
    };
    let mut tx = tx;
    for cmd in group {
        match cmd {
            WriteCmd::Ingest(batch, reply) => {
                let res = in_savepoint(&mut tx, |sp| ingest_tx(sp, batch));
                done.push(Done::Ingest(reply, res));
            }
            WriteCmd::Incidents(changes, cursor, outbox, reply) => {
                let res = in_savepoint(&mut tx, |sp| {
                    incidents_tx(sp, &changes, cursor)?;
                    enqueue_tx(sp, &outbox).map(|_| ())
                });
                done.push(Done::Incidents(reply, res));
            }
            WriteCmd::Exec(f, reply) => {
                let res = in_savepoint(&mut tx, f);
                done.push(Done::Prune(reply, res));
            }
            WriteCmd::Prune(cutoff, reply) => {
                let res = in_savepoint(&mut tx, |sp| prune_tx(sp, cutoff));
                done.push(Done::Prune(reply, res));
            }
        }
    }
    // Nobody is answered before the commit is durable.
    if let Err(e) = tx.commit() {
        tracing::error!(error = %e, "store commit failed; the group's writers get an error");
        for d in done {
            d.fail(StoreError::Database(format!("commit: {e}")));
        }
        return;
    }
    for d in done {
        match d {
            Done::Ingest(r, v) => drop(r.send(v)),
            Done::Incidents(r, v) => drop(r.send(v)),
            Done::Prune(r, v) => drop(r.send(v)),
        }
    }
}

fn in_savepoint<T>(
    tx: &mut Transaction<'_>,
    f: impl FnOnce(&rusqlite::Savepoint<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let sp = tx.savepoint()?;
    let res = f(&sp);
    match res {
        Ok(v) => {
            sp.commit()?;
            Ok(v)
        }
        // Dropping the savepoint rolls it back; the rest of the group is unaffected.
        Err(e) => Err(e),
    }
}

fn ingest_tx(
    tx: &rusqlite::Savepoint<'_>,
    batch: IngestBatch,
) -> Result<IngestOutcome, StoreError> {
    let now_ms = ms(batch.received_at);
    let mut out = IngestOutcome::default();
    let first_id = batch.first_event_id.map(|id| id.to_string());

    if let Some(seq) = batch.seq {
        let seq_i = i64::try_from(seq).map_err(|_| {
            StoreError::Database(format!("batch seq {seq} exceeds the store's range"))
        })?;
        let prior: Option<Option<String>> = tx
            .query_row(
                "SELECT first_event_id FROM batches WHERE agent_id = ?1 AND seq = ?2",
                params![batch.agent_id, seq_i],
                |r| r.get(0),
            )
            .optional()?;
        let agent: Option<(i64, i64)> = tx
            .query_row(
                "SELECT max_seq, missing FROM agents WHERE agent_id = ?1",
                params![batch.agent_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some(prior_first) = prior {
            if prior_first == first_id {
                out.duplicate_batch = true;
                tx.execute(
                    "UPDATE agents SET last_seen_ms = ?2 WHERE agent_id = ?1",
                    params![batch.agent_id, now_ms],
                )?;
                return Ok(out);
            }
            out.sequence_reset = true;
            // The old life's later batches must not be mistaken for this life's.
            tx.execute(
                "DELETE FROM batches WHERE agent_id = ?1 AND seq > ?2",
                params![batch.agent_id, seq_i],
            )?;
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
        tx.execute(
            "INSERT INTO batches (agent_id, seq, received_ms, events, first_event_id)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (agent_id, seq) DO UPDATE SET received_ms = ?3, events = ?4, first_event_id = ?5",
            params![batch.agent_id, seq_i, now_ms, batch.events.len() as i64, first_id],
        )?;
        tx.execute(
            "INSERT INTO agents (agent_id, node, max_seq, last_seen_ms, batches, events, missing)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)
             ON CONFLICT (agent_id) DO UPDATE SET node = ?2, max_seq = ?3, last_seen_ms = ?4,
                 batches = batches + 1, events = events + ?5, missing = ?6",
            params![
                batch.agent_id,
                batch.node,
                max_seq,
                now_ms,
                batch.events.len() as i64,
                missing
            ],
        )?;
    }

    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO evidence (id, time_ms, received_ms, type, agent_id, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for ev in batch.events {
        let body = serde_json::to_string(&ev).map_err(|e| StoreError::Corrupt {
            what: format!("event {}", ev.id),
            detail: e.to_string(),
        })?;
        let n = insert.execute(params![
            ev.id.to_string(),
            ms(ev.time),
            now_ms,
            ev.kind.as_str(),
            batch.agent_id,
            body
        ])?;
        if n == 1 {
            out.stored.push((tx.last_insert_rowid(), ev));
        } else {
            out.duplicate_events += 1;
        }
    }
    Ok(out)
}

fn enqueue_tx(
    tx: &rusqlite::Savepoint<'_>,
    items: &[crate::OutboxItem],
) -> Result<u64, StoreError> {
    let mut ins = tx.prepare_cached(
        "INSERT OR IGNORE INTO outbox (key, incident, receiver, kind, body, created_ms, next_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?;
    let mut n = 0;
    for it in items {
        n += ins.execute(params![
            it.key,
            it.incident.to_string(),
            it.receiver,
            it.kind,
            it.body,
            ms(it.created_at)
        ])? as u64;
    }
    Ok(n)
}

fn incidents_tx(
    tx: &rusqlite::Savepoint<'_>,
    changes: &[Incident],
    cursor: i64,
) -> Result<(), StoreError> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO incidents (id, fingerprint, status, severity, namespace, detected_ms, updated_ms, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET status = ?3, severity = ?4, namespace = ?5,
             updated_ms = ?7, body = ?8",
    )?;
    for inc in changes {
        let body = serde_json::to_string(inc).map_err(|e| StoreError::Corrupt {
            what: format!("incident {}", inc.id),
            detail: e.to_string(),
        })?;
        upsert.execute(params![
            inc.id.to_string(),
            inc.fingerprint,
            inc.status.as_str(),
            inc.severity.as_str(),
            inc.namespace,
            ms(inc.detected_at),
            ms(inc.updated_at),
            body
        ])?;
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('correlator_cursor', ?1)
         ON CONFLICT (key) DO UPDATE SET value = ?1",
        params![cursor.to_string()],
    )?;
    Ok(())
}

fn prune_tx(tx: &rusqlite::Savepoint<'_>, cutoff_ms: i64) -> Result<u64, StoreError> {
    // Never delete what the correlator has not read yet, however old.
    let n = tx.execute(
        "DELETE FROM evidence WHERE pos IN
             (SELECT pos FROM evidence WHERE received_ms < ?1
                AND pos <= COALESCE((SELECT CAST(value AS INTEGER) FROM meta
                                     WHERE key = 'correlator_cursor'), 0)
              ORDER BY received_ms LIMIT ?2)",
        params![cutoff_ms, PRUNE_CHUNK],
    )?;
    tx.execute(
        "DELETE FROM batches WHERE received_ms < ?1",
        params![cutoff_ms],
    )?;
    Ok(n as u64)
}

fn decode_incident(body: &str) -> Result<Incident, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt {
        what: "incident".into(),
        detail: e.to_string(),
    })
}

fn query_incidents(
    conn: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<Incident>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let bodies = stmt
        .query_map(params, |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    bodies.iter().map(|b| decode_incident(b)).collect()
}

#[async_trait]
impl Store for SqliteStore {
    async fn ingest(&self, batch: IngestBatch) -> Result<IngestOutcome, StoreError> {
        self.write(|r| WriteCmd::Ingest(batch, r)).await
    }

    async fn evidence_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Event)>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT pos, body FROM evidence WHERE pos > ?1 ORDER BY pos LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![after, limit as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(pos, body)| {
                    serde_json::from_str(&body)
                        .map(|ev| (pos, ev))
                        .map_err(|e| StoreError::Corrupt {
                            what: format!("evidence at position {pos}"),
                            detail: e.to_string(),
                        })
                })
                .collect()
        })
        .await
    }

    async fn apply_incidents_outbox(
        &self,
        changes: Vec<Incident>,
        cursor: i64,
        outbox: Vec<crate::OutboxItem>,
    ) -> Result<(), StoreError> {
        self.write(|r| WriteCmd::Incidents(changes, cursor, outbox, r))
            .await
    }

    async fn outbox_enqueue(&self, items: Vec<crate::OutboxItem>) -> Result<u64, StoreError> {
        self.write(|r| WriteCmd::Exec(Box::new(move |sp| enqueue_tx(sp, &items)), r))
            .await
    }

    async fn outbox_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<crate::OutboxRow>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, key, incident, receiver, kind, body, created_ms, attempts, next_ms, status = 'sending'
                 FROM outbox WHERE status IN ('pending', 'sending') AND next_ms <= ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = st.query_map(params![ms(now), limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, bool>(9)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, key, incident, receiver, kind, body, created, attempts, next, in_doubt) =
                    row?;
                let incident = Ulid::from_string(&incident).map_err(|e| StoreError::Corrupt {
                    what: format!("outbox row {id}"),
                    detail: e.to_string(),
                })?;
                out.push(crate::OutboxRow {
                    id,
                    item: crate::OutboxItem {
                        key,
                        incident,
                        receiver,
                        kind,
                        body,
                        created_at: from_ms(created),
                    },
                    attempts: attempts.max(0) as u32,
                    next_at: from_ms(next),
                    in_doubt,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn outbox_update(&self, id: i64, update: crate::OutboxUpdate) -> Result<(), StoreError> {
        use crate::OutboxUpdate as U;
        self.write(|r| {
            WriteCmd::Exec(
                Box::new(move |sp| {
                    let n = match update {
                        U::Delivered { at } => sp.execute(
                            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, done_ms = ?2 WHERE id = ?1",
                            params![id, ms(at)],
                        )?,
                        U::Retry { next_at, error } => sp.execute(
                            "UPDATE outbox SET status = 'pending', attempts = attempts + 1, next_ms = ?2, last_error = ?3 WHERE id = ?1",
                            params![id, ms(next_at), error],
                        )?,
                        U::Failed { error } => sp.execute(
                            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
                            params![id, error],
                        )?,
                        U::Defer { next_at } => sp.execute(
                            "UPDATE outbox SET status = 'pending', next_ms = ?2 WHERE id = ?1",
                            params![id, ms(next_at)],
                        )?,
                        U::Sending => sp.execute(
                            "UPDATE outbox SET status = 'sending' WHERE id = ?1 AND status = 'pending'",
                            params![id],
                        )?,
                        U::Superseded => sp.execute(
                            "UPDATE outbox SET status = 'superseded' WHERE id = ?1",
                            params![id],
                        )?,
                    };
                    Ok(n as u64)
                }),
                r,
            )
        })
        .await
        .map(|_| ())
    }

    async fn silence_put(
        &self,
        id: Ulid,
        ends_at: DateTime<Utc>,
        body: String,
    ) -> Result<(), StoreError> {
        self.write(|r| {
            WriteCmd::Exec(
                Box::new(move |sp| {
                    Ok(sp.execute(
                        "INSERT INTO silences (id, ends_ms, body) VALUES (?1, ?2, ?3)
                         ON CONFLICT (id) DO UPDATE SET ends_ms = ?2, body = ?3",
                        params![id.to_string(), ms(ends_at), body],
                    )? as u64)
                }),
                r,
            )
        })
        .await
        .map(|_| ())
    }

    async fn audit_append(&self, records: Vec<(DateTime<Utc>, String)>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        self.write(|r| {
            WriteCmd::Exec(
                Box::new(move |sp| {
                    let mut st =
                        sp.prepare_cached("INSERT INTO audit (at_ms, body) VALUES (?1, ?2)")?;
                    let mut n = 0;
                    for (at, body) in &records {
                        n += st.execute(params![ms(*at), body])? as u64;
                    }
                    Ok(n)
                }),
                r,
            )
        })
        .await
        .map(|_| ())
    }

    async fn audit_since(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.read(move |c| {
            let mut st =
                c.prepare_cached("SELECT body FROM audit WHERE at_ms >= ?1 ORDER BY seq LIMIT ?2")?;
            let rows = st.query_map(params![ms(since), limit as i64], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn audit_page(
        &self,
        since: DateTime<Utc>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT seq, body FROM audit WHERE seq > ?1 AND at_ms >= ?2 ORDER BY seq LIMIT ?3",
            )?;
            let rows = st.query_map(params![after, ms(since), limit as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn audit_prune(
        &self,
        cutoff: DateTime<Utc>,
        max_records: u64,
    ) -> Result<u64, StoreError> {
        let cutoff = ms(cutoff);
        let keep = i64::try_from(max_records).unwrap_or(i64::MAX);
        let mut total = 0;
        // Chunked, so a big prune never holds the writer for long.
        loop {
            let n = self
                .write(|r| {
                    WriteCmd::Exec(
                        Box::new(move |sp| {
                            sp.execute("INSERT INTO audit_prune_gate (open) VALUES (1)", [])?;
                            // Positions are dense (append-only), so the newest `keep` are
                            // those above MAX(seq) - keep.
                            let n = sp.execute(
                                "DELETE FROM audit WHERE seq IN (SELECT seq FROM audit
                                   WHERE at_ms < ?1
                                      OR seq <= (SELECT COALESCE(MAX(seq), 0) FROM audit) - ?2
                                   ORDER BY seq LIMIT ?3)",
                                params![cutoff, keep, PRUNE_CHUNK],
                            )?;
                            sp.execute("DELETE FROM audit_prune_gate", [])?;
                            Ok(n as u64)
                        }),
                        r,
                    )
                })
                .await?;
            total += n;
            if n < PRUNE_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    async fn silences(&self, ended_after: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        self.read(move |c| {
            let mut st =
                c.prepare_cached("SELECT body FROM silences WHERE ends_ms > ?1 ORDER BY id")?;
            let rows = st.query_map(params![ms(ended_after)], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn outbox_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT receiver, status, COUNT(*) FROM outbox GROUP BY receiver, status ORDER BY receiver, status",
            )?;
            let rows = st.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?.max(0) as u64))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn correlator_cursor(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            let v: Option<String> = c
                .query_row(
                    "SELECT value FROM meta WHERE key = 'correlator_cursor'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(v.and_then(|s| s.parse().ok()).unwrap_or(0))
        })
        .await
    }

    async fn list_incidents(&self, f: IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        self.read(move |c| {
            let mut sql = String::from("SELECT body FROM incidents WHERE 1=1");
            let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
            let list = |sql: &mut String,
                        col: &str,
                        vals: Vec<String>,
                        args: &mut Vec<Box<dyn rusqlite::ToSql>>| {
                if vals.is_empty() {
                    return;
                }
                let marks: Vec<String> = vals
                    .into_iter()
                    .map(|v| {
                        args.push(Box::new(v));
                        format!("?{}", args.len())
                    })
                    .collect();
                sql.push_str(&format!(" AND {col} IN ({})", marks.join(",")));
            };
            list(
                &mut sql,
                "status",
                f.status.iter().map(|s| s.as_str().to_owned()).collect(),
                &mut args,
            );
            list(
                &mut sql,
                "severity",
                f.severity.iter().map(|s| s.as_str().to_owned()).collect(),
                &mut args,
            );
            if let Some(ns) = f.namespace {
                args.push(Box::new(ns));
                sql.push_str(&format!(" AND namespace = ?{}", args.len()));
            }
            if let Some(since) = f.since {
                args.push(Box::new(ms(since)));
                sql.push_str(&format!(" AND updated_ms >= ?{}", args.len()));
            }
            let limit = if f.limit == 0 { 100 } else { f.limit.min(1000) };
            args.push(Box::new(limit as i64));
            sql.push_str(&format!(
                " ORDER BY severity ASC, detected_ms DESC LIMIT ?{}",
                args.len()
            ));
            let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(|b| b.as_ref()).collect();
            query_incidents(c, &sql, &refs)
        })
        .await
    }

    async fn get_incident(&self, id: Ulid) -> Result<Option<Incident>, StoreError> {
        self.read(move |c| {
            let body: Option<String> = c
                .query_row(
                    "SELECT body FROM incidents WHERE id = ?1",
                    params![id.to_string()],
                    |r| r.get(0),
                )
                .optional()?;
            body.map(|b| decode_incident(&b)).transpose()
        })
        .await
    }

    async fn active_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        self.read(|c| {
            query_incidents(
                c,
                "SELECT body FROM incidents WHERE status != ?1 ORDER BY detected_ms",
                &[&Status::Resolved.as_str()],
            )
        })
        .await
    }

    async fn incident_counts(&self) -> Result<Vec<(Status, Severity, u64)>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT status, severity, COUNT(*) FROM incidents GROUP BY status, severity",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(st, sev, n)| {
                    let corrupt = |d: String| StoreError::Corrupt {
                        what: "incident counts".into(),
                        detail: d,
                    };
                    Ok((
                        st.parse::<Status>().map_err(corrupt)?,
                        sev.parse::<Severity>().map_err(corrupt)?,
                        n.max(0) as u64,
                    ))
                })
                .collect()
        })
        .await
    }

    async fn agents(&self) -> Result<Vec<AgentStatus>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT agent_id, node, max_seq, last_seen_ms, batches, events, missing
                 FROM agents ORDER BY agent_id",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(AgentStatus {
                        agent_id: r.get(0)?,
                        node: r.get(1)?,
                        last_seq: r.get::<_, i64>(2)?.max(0) as u64,
                        last_seen: from_ms(r.get(3)?),
                        batches: r.get::<_, i64>(4)?.max(0) as u64,
                        events: r.get::<_, i64>(5)?.max(0) as u64,
                        missing_batches: r.get::<_, i64>(6)?.max(0) as u64,
                        heartbeat: None,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn prune_evidence(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let cutoff = ms(cutoff);
        let mut total = 0;
        // Chunked, so a big prune never holds the writer for long.
        loop {
            let n = self.write(|r| WriteCmd::Prune(cutoff, r)).await?;
            total += n;
            if n < PRUNE_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| {
            Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(|_| ())?)
        })
        .await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let location = self.path.display().to_string();
        let size = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
            + std::fs::metadata(self.path.with_extension("db-wal"))
                .map(|m| m.len())
                .unwrap_or(0);
        self.read(move |c| {
            // MAX(pos) - MIN(pos) is exact enough and O(1) where COUNT(*) is O(n).
            let evidence_rows: i64 = c.query_row(
                "SELECT COALESCE(MAX(pos) - MIN(pos) + 1, 0) FROM evidence",
                [],
                |r| r.get(0),
            )?;
            let incidents: i64 = c.query_row("SELECT COUNT(*) FROM incidents", [], |r| r.get(0))?;
            let schema_version: i64 = c.query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |r| r.get(0),
            )?;
            Ok(StoreStats {
                backend: "sqlite",
                location,
                evidence_rows: evidence_rows.max(0) as u64,
                incidents: incidents.max(0) as u64,
                size_bytes: size,
                schema_version,
            })
        })
        .await
    }

    fn pending_writes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}
