//! Partition balance: which replica should own which partition (a stable preference),
//! and one round of taking free partitions and giving up surplus ones.

use super::*;

/// Rendezvous score: each replica prefers a different spread of partitions, so replicas
/// starting together rarely contend for the same lease.
pub(super) fn preference(replica: &str, part: i32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in replica.as_bytes().iter().chain(part.to_le_bytes().iter()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// One round of the lease loop: heartbeat, renew, take free partitions, give up surplus.
// Many arguments: the lease loop's own state (workers, the leader lease) is borrowed
// mutably for the round; bundling it would only move the same fields into a struct.
#[allow(clippy::too_many_arguments)]
pub(super) async fn balance_round(
    c: &tapio_store::pg::Control,
    cluster: &Arc<Cluster>,
    outcomes: &Arc<Outcomes>,
    me: &str,
    ttl_ms: i64,
    workers: &mut BTreeMap<i32, Worker>,
    leader: &mut Option<(Fence, watch::Sender<bool>, Instant)>,
    make_correlator: &CorrelatorFactory,
    leader_duties: &LeaderDuties,
) -> Result<(), StoreError> {
    let metrics = &outcomes.metrics;
    c.heartbeat(me, &cluster.cfg.address, false).await?;
    // Renew what we hold; whatever was not renewed is no longer ours.
    let held: Vec<(i32, i64)> = workers
        .values()
        .map(|w| (w.fence.part, w.fence.epoch))
        .collect();
    let renewed = c.renew(me, &held, ttl_ms).await?;
    for (p, _) in held {
        if !renewed.contains(&p)
            && let Some(w) = workers.remove(&p)
        {
            tracing::warn!(
                component = "cluster",
                partition = p,
                "partition lease lost; stopping its work"
            );
            unregister(cluster, p);
            w.stop().await;
            metrics
                .cluster
                .lease_changes
                .get_or_create(&ReasonLabel {
                    reason: "lost".into(),
                })
                .inc();
        }
    }
    let replicas = c.replicas(ttl_ms).await?;
    // Replicas gone for an hour leave the table (their leases expired long before).
    if replicas.iter().any(|r| !r.live) {
        c.forget_replicas(3_600_000).await?;
    }
    let live = replicas
        .iter()
        .filter(|r| r.live && !r.stopping)
        .count()
        .max(1);
    let target = (cluster.partitions as usize).div_ceil(live);
    // Hand one partition off per round when over the fair share (a replica joined).
    if workers.len() > target
        && let Some(p) = workers.keys().copied().min_by_key(|p| preference(me, *p))
        && let Some(w) = workers.remove(&p)
    {
        let fence = w.fence.clone();
        unregister(cluster, p);
        w.stop().await;
        c.release(&fence).await?;
        notify_released(cluster).await;
        metrics
            .cluster
            .lease_changes
            .get_or_create(&ReasonLabel {
                reason: "released".into(),
            })
            .inc();
        tracing::info!(
            component = "cluster",
            partition = p,
            target,
            "partition handed off to balance replicas"
        );
    }
    let leases = c.leases().await?;
    let owned_before = workers.len();
    if workers.len() < target {
        let mut free: Vec<&LeaseRow> = leases
            .iter()
            .filter(|l| l.part >= 0 && !l.live && !workers.contains_key(&l.part))
            .collect();
        free.sort_by_key(|l| std::cmp::Reverse(preference(me, l.part)));
        for l in free {
            if workers.len() >= target {
                break;
            }
            if let Some(fence) = c.acquire(l.part, me, ttl_ms).await? {
                let t = Instant::now();
                match start_worker(cluster, outcomes, fence.clone(), make_correlator).await {
                    Ok(w) => {
                        metrics
                            .cluster
                            .lease_changes
                            .get_or_create(&ReasonLabel {
                                reason: "acquired".into(),
                            })
                            .inc();
                        tracing::info!(
                            component = "cluster",
                            partition = l.part,
                            epoch = fence.epoch,
                            previous_owner = l.owner.as_deref().unwrap_or("none"),
                            start_ms = t.elapsed().as_millis() as u64,
                            "partition acquired"
                        );
                        workers.insert(l.part, w);
                    }
                    Err(e) => {
                        tracing::error!(component = "cluster", partition = l.part, error = %e, "cannot start partition work; releasing it");
                        let _ = c.release(&fence).await;
                    }
                }
            }
        }
    }
    // The leader lease.
    match c.acquire(LEADER_PART, me, ttl_ms).await? {
        Some(fence) => match leader {
            Some((f, _, renewed)) if f.epoch == fence.epoch => *renewed = Instant::now(),
            _ => {
                step_down(leader, cluster, metrics);
                let (tx, rx) = watch::channel(false);
                leader_duties(rx);
                cluster.leader.store(true, Ordering::Relaxed);
                metrics.cluster.leader.set(1);
                tracing::info!(
                    component = "cluster",
                    epoch = fence.epoch,
                    "leader lease acquired: this replica sends notifications"
                );
                *leader = Some((fence, tx, Instant::now()));
            }
        },
        None => step_down(leader, cluster, metrics),
    }
    // The view shows this round's acquisitions, not the leases as they were before them.
    let leases = if workers.len() != owned_before {
        c.leases().await?
    } else {
        leases
    };
    refresh_view(cluster, outcomes, replicas, leases, workers).await;
    Ok(())
}
