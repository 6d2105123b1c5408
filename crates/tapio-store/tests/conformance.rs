//! The storage contract, run against every backend: the embedded SQLite store and a real
//! PostgreSQL (started by `scripts/test-services.sh`). Every test runs on both.

mod support;

use chrono::{DateTime, Duration, Utc};
use tapio_core::config::CorrelationDepth;
use tapio_core::{CorrelationEngine, IncidentEngine, Severity, Status};
use tapio_proto::{Entity, Event, EventSeverity, EventType, WorkloadRef};
use tapio_store::pg::PgStore;
use tapio_store::sqlite::{Durability, SqliteStore};
use tapio_store::{IncidentFilter, IngestBatch, Store};
use ulid::Ulid;

fn now() -> DateTime<Utc> {
    "2026-11-27T10:00:00Z".parse().expect("time")
}

fn event(t: &str, workload: &str) -> Event {
    Event {
        id: Ulid::new(),
        time: now(),
        kind: EventType::parse(t).expect("type"),
        severity: EventSeverity::Critical,
        entity: Entity {
            namespace: Some("shop".into()),
            pod: Some(format!("{workload}-1")),
            workload: Some(WorkloadRef {
                kind: "Deployment".into(),
                name: workload.into(),
            }),
            ..Entity::default()
        },
        attributes: Default::default(),
        object: None,
    }
}

fn batch(agent: &str, seq: u64, events: Vec<Event>) -> IngestBatch {
    IngestBatch {
        agent_id: agent.into(),
        node: "n1".into(),
        seq: Some(seq),
        first_event_id: events.first().map(|e| e.id),
        events,
        received_at: now(),
    }
}

/// Where a backend keeps its data, so a test can open it again ("reopen" = a restart).
enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Backend {
    async fn open(&self) -> Box<dyn Store> {
        match self {
            Backend::Sqlite(dir) => {
                Box::new(SqliteStore::open(dir.path(), Durability::Full).expect("open sqlite"))
            }
            Backend::Postgres(url) => Box::new(PgStore::connect(url).await.expect("open postgres")),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Run SQL behind the store's back (what an operator with a SQL shell could do).
    async fn raw(&self, sql: &str) -> Result<(), String> {
        match self {
            Backend::Sqlite(dir) => {
                let conn = rusqlite::Connection::open(dir.path().join("tapio.db"))
                    .map_err(|e| e.to_string())?;
                conn.execute(sql, []).map(|_| ()).map_err(|e| e.to_string())
            }
            Backend::Postgres(url) => {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                client.batch_execute(sql).await.map_err(|e| {
                    e.as_db_error()
                        .map_or_else(|| e.to_string(), |d| d.message().to_owned())
                })
            }
        }
    }
}

async fn backends() -> Vec<Backend> {
    vec![
        Backend::Sqlite(tempfile::tempdir().expect("tempdir")),
        Backend::Postgres(support::services::fresh_database().await),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn retried_batch_is_stored_once() {
    for b in backends().await {
        let s = b.open().await;
        let evs = vec![event("kernel.container.oom_kill", "api"); 1];
        let first = s.ingest(batch("a", 1, evs.clone())).await.expect("ingest");
        assert_eq!(first.stored.len(), 1);
        assert!(!first.duplicate_batch);
        let again = s.ingest(batch("a", 1, evs)).await.expect("ingest retry");
        assert!(again.duplicate_batch);
        assert!(again.stored.is_empty());
        let agents = s.agents().await.expect("agents");
        assert_eq!(agents[0].batches, 1);
        assert_eq!(agents[0].events, 1);
        assert_eq!(s.evidence_after(0, 100).await.expect("read").len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gaps_are_counted_and_late_batches_fill_them() {
    for b in backends().await {
        let s = b.open().await;
        s.ingest(batch("a", 1, vec![])).await.expect("1");
        let o = s.ingest(batch("a", 5, vec![])).await.expect("5");
        assert_eq!(o.new_missing, 3);
        assert_eq!(s.agents().await.expect("agents")[0].missing_batches, 3);
        s.ingest(batch("a", 3, vec![event("kernel.container.oom_kill", "x")]))
            .await
            .expect("3");
        let a = &s.agents().await.expect("agents")[0];
        assert_eq!(a.missing_batches, 2);
        assert_eq!(a.last_seq, 5);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_sequence_is_not_mistaken_for_a_retry() {
    for b in backends().await {
        let s = b.open().await;
        s.ingest(batch("a", 1, vec![event("kernel.container.oom_kill", "x")]))
            .await
            .expect("first life");
        let o = s
            .ingest(batch("a", 1, vec![event("kernel.container.oom_kill", "y")]))
            .await
            .expect("second life");
        assert!(o.sequence_reset);
        assert!(!o.duplicate_batch);
        assert_eq!(
            o.stored.len(),
            1,
            "new evidence after a sequence reset is kept"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_event_ids_are_ignored_across_batches() {
    for b in backends().await {
        let s = b.open().await;
        let ev = event("kernel.container.oom_kill", "api");
        s.ingest(batch("a", 1, vec![ev.clone()])).await.expect("1");
        let o = s.ingest(batch("b", 1, vec![ev])).await.expect("2");
        assert_eq!(o.duplicate_events, 1);
        assert!(o.stored.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn incidents_and_cursor_commit_together_and_filter() {
    for b in backends().await {
        let s = b.open().await;
        let o = s
            .ingest(batch(
                "a",
                1,
                vec![
                    event("kernel.container.oom_kill", "api"),
                    event("kubernetes.pod.crash_loop_backoff", "web"),
                ],
            ))
            .await
            .expect("ingest");
        let mut engine = CorrelationEngine::with_defaults(CorrelationDepth::Standard);
        let mut changes = Vec::new();
        let mut cursor = 0;
        for (pos, ev) in &o.stored {
            for c in engine.observe(ev, now()) {
                changes.push(c.incident().clone());
            }
            cursor = *pos;
        }
        assert_eq!(changes.len(), 2);
        s.apply_incidents(changes, cursor).await.expect("apply");
        assert_eq!(s.correlator_cursor().await.expect("cursor"), cursor);
        assert!(
            s.evidence_after(cursor, 10)
                .await
                .expect("after")
                .is_empty()
        );

        let p2 = s
            .list_incidents(IncidentFilter {
                severity: vec![Severity::P2],
                ..Default::default()
            })
            .await
            .expect("list");
        assert_eq!(p2.len(), 1);
        assert!(p2[0].title.contains("Crash loop"), "{}", p2[0].title);
        let all_open = s
            .list_incidents(IncidentFilter {
                status: vec![Status::Open],
                namespace: Some("shop".into()),
                ..Default::default()
            })
            .await
            .expect("list");
        assert_eq!(all_open.len(), 2);
        assert_eq!(all_open[0].severity, Severity::P2, "most severe first");
        let none = s
            .list_incidents(IncidentFilter {
                namespace: Some("other".into()),
                ..Default::default()
            })
            .await
            .expect("list");
        assert!(none.is_empty());
        let got = s.get_incident(p2[0].id).await.expect("get").expect("found");
        assert_eq!(got, p2[0]);
        assert_eq!(s.active_incidents().await.expect("active").len(), 2);
        let mut counts = s.incident_counts().await.expect("counts");
        counts.sort_by_key(|c| c.1);
        assert_eq!(
            counts,
            vec![
                (Status::Open, Severity::P2, 1),
                (Status::Open, Severity::P3, 1)
            ]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_removes_only_old_evidence() {
    for b in backends().await {
        let s = b.open().await;
        let mut old = batch("a", 1, vec![event("kernel.container.oom_kill", "a")]);
        old.received_at = now() - Duration::days(8);
        s.ingest(old).await.expect("old");
        s.ingest(batch("a", 2, vec![event("kernel.container.oom_kill", "b")]))
            .await
            .expect("new");
        let n = s
            .prune_evidence(now() - Duration::days(7))
            .await
            .expect("prune");
        assert_eq!(n, 0, "nothing is pruned before the correlator has read it");
        let rows = s.evidence_after(0, 10).await.expect("read");
        s.apply_incidents(vec![], rows[1].0).await.expect("cursor");
        let n = s
            .prune_evidence(now() - Duration::days(7))
            .await
            .expect("prune");
        assert_eq!(n, 1);
        assert_eq!(s.evidence_after(0, 10).await.expect("read").len(), 1);
        // Positions are never reused, so the cursor stays meaningful after pruning.
        let mut all_old = batch("a", 3, vec![event("kernel.container.oom_kill", "c")]);
        all_old.received_at = now() - Duration::days(8);
        s.ingest(all_old).await.expect("old again");
        let o = s
            .ingest(batch("a", 4, vec![event("kernel.container.oom_kill", "d")]))
            .await
            .expect("new");
        assert!(o.stored[0].0 > rows[1].0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn data_survives_reopen() {
    for b in backends().await {
        {
            let s = b.open().await;
            s.ingest(batch("a", 1, vec![event("kernel.container.oom_kill", "a")]))
                .await
                .expect("ingest");
        }
        let s = b.open().await;
        assert_eq!(
            s.evidence_after(0, 10).await.expect("read").len(),
            1,
            "{}",
            b.name()
        );
        let version = s.stats().await.expect("stats").schema_version;
        match b {
            // Migration 5: the audit trigger lets only the retention's own prune delete.
            Backend::Sqlite(_) => assert_eq!(version, 5),
            // PostgreSQL adds migrations 5 (partitions, leases, replicas) and 6 (the
            // lease epoch as a key, so renewals do not wait for fenced writes), and 7
            // (the audit prune gate).
            Backend::Postgres(_) => assert_eq!(version, 7),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_records_are_append_only_and_survive_reopen() {
    let t = Utc::now();
    for b in backends().await {
        {
            let s = b.open().await;
            s.audit_append(vec![
                (t, r#"{"kind":"denied"}"#.into()),
                (t, r#"{"kind":"mutation"}"#.into()),
            ])
            .await
            .expect("append");
        }
        let s = b.open().await;
        let rows = s
            .audit_since(t - Duration::seconds(1), 10)
            .await
            .expect("read");
        assert_eq!(rows, [r#"{"kind":"denied"}"#, r#"{"kind":"mutation"}"#]);
        // The table refuses changes, whoever asks.
        let e = b.raw("DELETE FROM audit").await.expect_err("append-only");
        assert!(e.contains("append-only"), "{}: {e}", b.name());
        assert!(b.raw("UPDATE audit SET body = '{}'").await.is_err());
        assert_eq!(
            s.audit_since(t - Duration::seconds(1), 10)
                .await
                .expect("read")
                .len(),
            2
        );
    }
}

fn item(key: &str, receiver: &str) -> tapio_store::OutboxItem {
    tapio_store::OutboxItem {
        key: key.into(),
        incident: Ulid::from_parts(1, 7),
        receiver: receiver.into(),
        kind: "initial".into(),
        body: "{}".into(),
        created_at: now(),
    }
}

/// One notification per state change per receiver: the same key enqueued twice (a replay
/// after a crash) is stored once; delivery states are kept across a reopen.
#[tokio::test(flavor = "multi_thread")]
async fn outbox_is_exactly_once_per_key_and_durable() {
    use tapio_store::OutboxUpdate;
    for b in backends().await {
        {
            let s = b.open().await;
            s.apply_incidents_outbox(
                Vec::new(),
                0,
                vec![item("i1:1:slack", "slack"), item("i1:1:pd", "pd")],
            )
            .await
            .expect("apply");
            assert_eq!(
                s.outbox_enqueue(vec![item("i1:1:slack", "slack")])
                    .await
                    .expect("again"),
                0
            );
            let due = s.outbox_due(now(), 10).await.expect("due");
            assert_eq!(due.len(), 2);
            s.outbox_update(due[0].id, OutboxUpdate::Delivered { at: now() })
                .await
                .expect("delivered");
            s.outbox_update(
                due[1].id,
                OutboxUpdate::Retry {
                    next_at: now() + chrono::Duration::minutes(5),
                    error: "503".into(),
                },
            )
            .await
            .expect("retry");
            assert!(
                s.outbox_due(now(), 10).await.expect("due").is_empty(),
                "delivered and backed-off rows are not due"
            );
        }
        let s = b.open().await;
        let due = s
            .outbox_due(now() + chrono::Duration::minutes(6), 10)
            .await
            .expect("due later");
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].attempts, 1);
        assert_eq!(due[0].item.receiver, "pd");
        s.outbox_update(
            due[0].id,
            OutboxUpdate::Failed {
                error: "gave up".into(),
            },
        )
        .await
        .expect("failed");
        let counts = s.outbox_counts().await.expect("counts");
        assert!(
            counts.contains(&("slack".into(), "delivered".into(), 1)),
            "{counts:?}"
        );
        assert!(
            counts.contains(&("pd".into(), "failed".into(), 1)),
            "{counts:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn silences_are_kept_until_they_end() {
    for b in backends().await {
        let s = b.open().await;
        let (a, c) = (Ulid::from_parts(1, 1), Ulid::from_parts(1, 2));
        s.silence_put(a, now() + chrono::Duration::hours(1), "{\"a\":1}".into())
            .await
            .expect("put a");
        s.silence_put(c, now() - chrono::Duration::hours(1), "{\"b\":1}".into())
            .await
            .expect("put b");
        s.silence_put(a, now() + chrono::Duration::hours(2), "{\"a\":2}".into())
            .await
            .expect("replace a");
        let live = s.silences(now()).await.expect("list");
        assert_eq!(live, vec!["{\"a\":2}".to_owned()], "{}", b.name());
    }
}
