//! The lease loop: heartbeat, renew, balance, fail over, and hand every partition off
//! at shutdown.

use super::*;

/// The lease loop: heartbeat, renew, balance, fail over; until `shutdown`, then hand
/// every partition off.
pub async fn run(
    cluster: Arc<Cluster>,
    outcomes: Arc<Outcomes>,
    make_correlator: CorrelatorFactory,
    leader_duties: LeaderDuties,
    mut shutdown: watch::Receiver<bool>,
) {
    let ttl = cluster.cfg.lease_ttl;
    let ttl_ms = ttl.as_millis() as i64;
    let tick = (ttl / 4).max(Duration::from_millis(200));
    let me = cluster.cfg.replica_id.clone();
    let mut workers: BTreeMap<i32, Worker> = BTreeMap::new();
    let mut leader: Option<(Fence, watch::Sender<bool>, Instant)> = None;
    let mut ctl = None;
    let metrics = outcomes.metrics.clone();
    let mut released = cluster
        .nats
        .subscribe(cluster.cfg.released_subject())
        .await
        .map_err(|e| {
            tracing::warn!(component = "cluster", error = %e,
                "cannot subscribe to hand-off notices; partitions released by others are taken at the next tick")
        })
        .ok();
    loop {
        if *shutdown.borrow() {
            break;
        }
        if ctl.is_none() {
            match cluster.store.control().await {
                Ok(c) => ctl = Some(c),
                Err(e) => {
                    set_error(&cluster, Some(e.to_string()));
                    // Without the database no lease can be renewed: stop working before
                    // the leases expire, so nobody works a partition twice.
                    stop_all(&mut workers, &metrics, "lost").await;
                    step_down(&mut leader, &cluster, &metrics);
                    sleep_or_stop(tick, &mut shutdown).await;
                    continue;
                }
            }
        }
        let Some(c) = ctl.as_ref() else { continue };
        let round = balance_round(
            c,
            &cluster,
            &outcomes,
            &me,
            ttl_ms,
            &mut workers,
            &mut leader,
            &make_correlator,
            &leader_duties,
        )
        .await;
        match round {
            Ok(()) => set_error(&cluster, None),
            Err(e) => {
                tracing::error!(component = "cluster", error = %e, "lease round failed");
                set_error(&cluster, Some(e.to_string()));
                ctl = None;
            }
        }
        // A lease not renewed for most of its ttl may already be someone else's.
        let deadline = ttl.mul_f64(0.75);
        if let Some((_, _, renewed)) = &leader
            && renewed.elapsed() > deadline
        {
            step_down(&mut leader, &cluster, &metrics);
        }
        match released.as_mut() {
            Some(sub) => tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => {}
                // Another replica handed partitions off: take them now. A short pause
                // lets its other releases land so one round sees them all.
                Some(_) = sub.next() => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            None => sleep_or_stop(tick, &mut shutdown).await,
        }
    }
    // Graceful hand-off: stop each partition's work, then release its lease so another
    // replica takes it on its next round instead of waiting for expiry.
    let held = workers.len();
    tracing::info!(
        component = "cluster",
        partitions = held,
        "handing partitions off"
    );
    if let Some(c) = ctl.as_ref() {
        let _ = c.heartbeat(&me, &cluster.cfg.address, true).await;
    }
    // All partitions at once: each stops (its pull ends, its correlator finishes the
    // chunk in hand) and is released as soon as it has stopped.
    let ctl_ref = ctl.as_ref();
    let cluster_ref = &cluster;
    futures_util::future::join_all(std::mem::take(&mut workers).into_iter().map(
        |(p, w)| async move {
            let fence = w.fence.clone();
            w.stop().await;
            unregister(cluster_ref, p);
            if let Some(c) = ctl_ref {
                let _ = c.release(&fence).await;
            }
        },
    ))
    .await;
    notify_released(&cluster).await;
    metrics
        .cluster
        .lease_changes
        .get_or_create(&ReasonLabel {
            reason: "released".into(),
        })
        .inc_by(held as u64);
    if let Some((fence, stop, _)) = leader.take() {
        let _ = stop.send(true);
        if let Some(c) = ctl.as_ref() {
            let _ = c.release(&fence).await;
        }
    }
    tracing::info!(component = "cluster", "partitions handed off");
}

/// Tell the other replicas partitions were released (best effort: without it they take
/// them at their next tick).
pub(super) async fn notify_released(cluster: &Cluster) {
    let _ = cluster
        .nats
        .publish(cluster.cfg.released_subject(), Vec::new().into())
        .await;
    let _ = cluster.nats.flush().await;
}

pub(super) fn set_error(cluster: &Cluster, e: Option<String>) {
    if let Ok(mut v) = cluster.view.lock() {
        v.last_error = e;
    }
}

pub(super) async fn sleep_or_stop(d: Duration, shutdown: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = shutdown.changed() => {}
    }
}

pub(super) fn unregister(cluster: &Cluster, part: i32) {
    if let Ok(mut l) = cluster.local.lock() {
        l.remove(&part);
    }
}

pub(super) fn step_down(
    leader: &mut Option<(Fence, watch::Sender<bool>, Instant)>,
    cluster: &Cluster,
    metrics: &crate::metrics::Metrics,
) {
    if let Some((_, stop, _)) = leader.take() {
        let _ = stop.send(true);
        cluster.leader.store(false, Ordering::Relaxed);
        metrics.cluster.leader.set(0);
        tracing::warn!(
            component = "cluster",
            "leader lease lost: notifications stop here"
        );
    }
}

pub(super) async fn stop_all(
    workers: &mut BTreeMap<i32, Worker>,
    metrics: &crate::metrics::Metrics,
    why: &str,
) {
    for (p, w) in std::mem::take(workers) {
        w.stop().await;
        metrics
            .cluster
            .lease_changes
            .get_or_create(&ReasonLabel { reason: why.into() })
            .inc();
        tracing::warn!(
            component = "cluster",
            partition = p,
            "partition work stopped ({why})"
        );
    }
}
