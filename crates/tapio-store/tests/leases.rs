//! Partition leases on PostgreSQL: one owner at a time, takeover only after expiry, and a
//! replica that lost its lease can no longer write that partition (fencing).

mod support;

use chrono::Utc;
use tapio_proto::{Entity, Event, EventSeverity, EventType};
use tapio_store::pg::PgStore;
use tapio_store::{IngestBatch, StoreError};
use ulid::Ulid;

fn batch(agent: &str, seq: u64) -> IngestBatch {
    let ev = Event {
        id: Ulid::new(),
        time: Utc::now(),
        kind: EventType::parse("kernel.container.oom_kill").expect("type"),
        severity: EventSeverity::Critical,
        entity: Entity {
            namespace: Some("shop".into()),
            pod: Some("api-1".into()),
            ..Entity::default()
        },
        attributes: Default::default(),
        object: None,
    };
    IngestBatch {
        agent_id: agent.into(),
        node: "n1".into(),
        seq: Some(seq),
        first_event_id: Some(ev.id),
        events: vec![ev],
        received_at: Utc::now(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_owner_per_partition_and_a_taken_over_owner_is_fenced() {
    let url = support::services::fresh_database().await;
    let store = PgStore::connect(&url).await.expect("connect");
    let ctl = store.control().await.expect("control");
    assert_eq!(ctl.partitions(4).await.expect("partitions"), 4);
    // A later replica asking for another count gets the cluster's.
    assert_eq!(ctl.partitions(8).await.expect("partitions"), 4);

    let a = ctl
        .acquire(1, "a", 300)
        .await
        .expect("acquire")
        .expect("free");
    assert!(
        ctl.acquire(1, "b", 300).await.expect("acquire").is_none(),
        "held by a: b cannot take it"
    );
    // a writes with its fence.
    store
        .ingest_part(1, Some(a.clone()), batch("agent-1", 1))
        .await
        .expect("owner writes");

    // a stops renewing; its lease expires. Until someone takes it over, a's writes still
    // land (expiry alone is not a takeover; the epoch is the fence).
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    store
        .ingest_part(1, Some(a.clone()), batch("agent-1", 2))
        .await
        .expect("expired but not taken over: still the only writer");
    let b = ctl
        .acquire(1, "b", 5_000)
        .await
        .expect("acquire")
        .expect("expired");
    assert!(b.epoch > a.epoch);
    assert!(
        ctl.renew("a", &[(1, a.epoch)], 300)
            .await
            .expect("renew")
            .is_empty(),
        "taken over: a's renewal fails and a stops"
    );

    // a, paused through all that, wakes and writes: refused, nothing stored.
    let e = store
        .ingest_part(1, Some(a.clone()), batch("agent-1", 3))
        .await
        .expect_err("fenced");
    assert!(matches!(e, StoreError::Fenced { part: 1, .. }), "{e}");
    let e = store
        .apply_part(1, Some(a.clone()), Vec::new(), 99, Vec::new())
        .await
        .expect_err("fenced");
    assert!(matches!(e, StoreError::Fenced { .. }), "{e}");
    assert_eq!(store.cursor_part(1).await.expect("cursor"), 0);
    assert_eq!(
        store
            .evidence_after_part(1, 0, 10)
            .await
            .expect("read")
            .len(),
        2,
        "a's two writes as owner, none after the takeover"
    );

    // b's writes go through; a graceful release lets a take it back at once.
    store
        .ingest_part(1, Some(b.clone()), batch("agent-1", 4))
        .await
        .expect("new owner writes");
    assert_eq!(
        ctl.renew("b", &[(1, b.epoch)], 5_000).await.expect("renew"),
        [1]
    );
    assert!(ctl.release(&b).await.expect("release"));
    let a2 = ctl
        .acquire(1, "a", 5_000)
        .await
        .expect("acquire")
        .expect("released");
    assert!(a2.epoch > b.epoch);
    let leases = ctl.leases().await.expect("leases");
    assert_eq!(leases.len(), 4);
    assert_eq!(leases[1].owner.as_deref(), Some("a"));
    assert!(leases[1].live);
    assert!(!leases[0].live, "never taken");
}

#[tokio::test(flavor = "multi_thread")]
async fn partitions_keep_their_own_evidence_order_and_cursor() {
    let url = support::services::fresh_database().await;
    let store = PgStore::connect(&url).await.expect("connect");
    for seq in 1..=3 {
        store
            .ingest_part(0, None, batch("x", seq))
            .await
            .expect("p0");
        store
            .ingest_part(2, None, batch("y", seq))
            .await
            .expect("p2");
    }
    let p0 = store.evidence_after_part(0, 0, 10).await.expect("p0");
    let p2 = store.evidence_after_part(2, 0, 10).await.expect("p2");
    assert_eq!((p0.len(), p2.len()), (3, 3));
    assert!(p0.windows(2).all(|w| w[0].0 < w[1].0));
    store
        .apply_part(2, None, Vec::new(), p2[1].0, Vec::new())
        .await
        .expect("cursor");
    assert_eq!(store.cursor_part(2).await.expect("c2"), p2[1].0);
    assert_eq!(store.cursor_part(0).await.expect("c0"), 0);
    assert_eq!(
        store
            .evidence_after_part(2, p2[1].0, 10)
            .await
            .expect("rest")
            .len(),
        1
    );
}

/// While an owner's fenced write is open, its own renewal goes through (a renewal that
/// waited behind the owner's writes deadlocked under load), but a takeover waits for the
/// write to commit, so no write of the old epoch lands after the new owner starts.
#[tokio::test(flavor = "multi_thread")]
async fn renewal_never_waits_for_the_owners_writes_but_a_takeover_does() {
    use std::time::Duration;
    let url = support::services::fresh_database().await;
    let store = PgStore::connect(&url).await.expect("connect");
    let ctl = store.control().await.expect("control");
    ctl.partitions(2).await.expect("partitions");
    let a = ctl
        .acquire(0, "a", 300)
        .await
        .expect("acquire")
        .expect("free");
    let b_held = ctl
        .acquire(1, "a", 60_000)
        .await
        .expect("acquire")
        .expect("free");

    // An open fenced write of a on both partitions (what a group commit holds).
    let (mut raw, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect raw");
    tokio::spawn(conn);
    let tx = raw.transaction().await.expect("begin");
    for f in [&a, &b_held] {
        assert!(
            tx.query_opt(
                tapio_store::pg::FENCE_CHECK_SQL,
                &[&f.part, &f.owner, &f.epoch]
            )
            .await
            .expect("fence check")
            .is_some()
        );
    }

    // a renews both while the write is open: answered, not blocked.
    let renewed = tokio::time::timeout(
        Duration::from_secs(30),
        ctl.renew("a", &[(0, a.epoch), (1, b_held.epoch)], 300),
    )
    .await
    .expect("a renewal must not wait behind the owner's open write")
    .expect("renew");
    assert_eq!(renewed, [0, 1]);

    // a's lease on 0 expires; b takes it over: that waits for a's write to commit.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let ctl_b = store.control().await.expect("control b");
    let takeover = tokio::spawn(async move { ctl_b.acquire(0, "b", 5_000).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !takeover.is_finished(),
        "a takeover must wait for the old owner's in-flight fenced write"
    );
    tx.commit().await.expect("commit");
    let b = takeover
        .await
        .expect("join")
        .expect("acquire")
        .expect("expired: b takes it");
    assert!(b.epoch > a.epoch);
    // And a's next write is fenced.
    assert!(matches!(
        store
            .ingest_part(0, Some(a.clone()), batch("agent-9", 1))
            .await,
        Err(StoreError::Fenced { .. })
    ));
}
