//! The single writer: commands queued by [`PgStore`](super::PgStore) are committed in
//! groups, each command in its own savepoint of one transaction, and answered only after
//! the commit. Fenced commands check their partition lease first (see [`FENCE_CHECK_SQL`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tapio_core::Incident;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Client, Transaction};
use ulid::Ulid;

use super::connection::{connect, db};
use super::tls::ConnectOptions;
use super::{Fence, MAX_GROUP, PRUNE_CHUNK, ms};
use crate::{IngestBatch, IngestOutcome, OutboxItem, OutboxUpdate, StoreError};

pub(super) enum Op {
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

pub(super) enum Out {
    Ingest(IngestOutcome),
    N(u64),
}

pub(super) type Reply = oneshot::Sender<Result<Out, StoreError>>;

pub(super) async fn writer_loop(
    client: Client,
    cfg: ConnectOptions,
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
