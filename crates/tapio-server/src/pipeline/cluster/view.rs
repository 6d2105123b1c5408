//! The cluster view: replicas, partition owners and the bus backlog, for `/health`,
//! `GET /api/v1/cluster` and `tapio check --all`.

use super::*;

/// One partition as `tapio check --all` and `/api/v1/cluster` show it.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PartitionView {
    pub partition: i32,
    pub owner: Option<String>,
    pub epoch: i64,
    /// A live lease (by the database's clock).
    pub owned: bool,
    /// Bus messages waiting for the owner to store them; `None` when NATS did not answer
    /// (never shown as 0: an unknown lag is not an empty bus).
    pub bus_pending: Option<u64>,
    /// Stored evidence the partition's correlator has not processed (owner only).
    pub correlator_lag: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ClusterView {
    pub replica: String,
    pub partitions: i32,
    pub leader: Option<String>,
    pub replicas: Vec<ReplicaRow>,
    pub partition_owners: Vec<PartitionView>,
    /// Summed over partitions; `None` when any partition's lag is unknown.
    pub bus_pending_total: Option<u64>,
    pub updated_at: Option<DateTime<Utc>>,
    /// Last problem talking to PostgreSQL or NATS (cleared when it answers again).
    pub last_error: Option<String>,
}

pub(super) async fn refresh_view(
    cluster: &Cluster,
    outcomes: &Outcomes,
    replicas: Vec<ReplicaRow>,
    leases: Vec<LeaseRow>,
    workers: &BTreeMap<i32, Worker>,
) {
    let metrics = &outcomes.metrics;
    let stream = cluster.js.get_stream(cluster.cfg.stream()).await.ok();
    let mut parts = Vec::with_capacity(leases.len());
    let mut leader = None;
    let mut total = Some(0u64);
    for l in leases {
        if l.part == LEADER_PART {
            if l.live {
                leader = l.owner.clone();
            }
            continue;
        }
        let pending = match &stream {
            Some(s) => s
                .consumer_info(format!("p{}", l.part))
                .await
                .ok()
                .map(|i| i.num_pending + i.num_ack_pending as u64),
            None => None,
        };
        total = total.zip(pending).map(|(t, p)| t + p);
        let label = PartitionLabel {
            partition: l.part.to_string(),
        };
        if let Some(p) = pending {
            metrics
                .cluster
                .bus_pending
                .get_or_create(&label)
                .set(p as i64);
        }
        let local = workers.get(&l.part);
        metrics
            .cluster
            .partition_owned
            .get_or_create(&label)
            .set(i64::from(local.is_some()));
        parts.push(PartitionView {
            partition: l.part,
            owner: l.owner.filter(|_| l.live),
            epoch: l.epoch,
            owned: l.live,
            bus_pending: pending,
            correlator_lag: local.map(|w| w.status.lag()),
        });
    }
    let live = replicas.iter().filter(|r| r.live).count();
    metrics.cluster.replicas.set(live as i64);
    metrics.cluster.partitions_owned.set(workers.len() as i64);
    // This replica's correlator status for /health: alive while the lease loop runs,
    // lag summed over its partitions.
    let now = Utc::now().timestamp_millis();
    outcomes
        .correlator
        .heartbeat_ms
        .store(now, Ordering::Relaxed);
    let (mut cursor, mut head) = (0i64, 0i64);
    for w in workers.values() {
        cursor += w.status.cursor.load(Ordering::Relaxed);
        head += w.status.head.load(Ordering::Relaxed);
    }
    outcomes.correlator.cursor.store(cursor, Ordering::Relaxed);
    outcomes
        .correlator
        .head
        .store(head.max(cursor), Ordering::Relaxed);
    if let Ok(mut v) = cluster.view.lock() {
        v.replicas = replicas;
        v.partition_owners = parts;
        v.leader = leader;
        v.bus_pending_total = total;
        v.updated_at = Some(Utc::now());
    }
}
