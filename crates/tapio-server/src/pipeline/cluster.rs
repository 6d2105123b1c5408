//! Scale-out: `tapio-server` replicas on PostgreSQL (state) and NATS JetStream (the bus).
//! The design and its guarantees are in `docs/scale-out.md`; in short:
//!
//! - **Ingest** (any replica): an acknowledged batch is first published to the JetStream
//!   stream `TAPIO_EVIDENCE` on `tapio.evidence.<partition>` (prefix `--nats-prefix`), with the batch's identity as
//!   `Nats-Msg-Id`, and the agent is answered only after JetStream's publish ack. A retry
//!   of the same batch (to any replica) is recognised by JetStream's duplicate window and,
//!   beyond it, by the store's `(agent_id, seq)` and event-id uniqueness.
//! - **Partitions.** Correlation needs all of a cluster's facts in one engine, so the
//!   partition of a fact is a stable hash of its Kubernetes cluster (`entity.cluster`, else
//!   `--cluster-name`). Each partition has exactly one owner at a time: a lease row in
//!   PostgreSQL with an epoch (the fencing token) and an expiry on the database's clock.
//! - **The owner** pulls its partition's durable consumer, stores the batches in
//!   PostgreSQL (fenced), acknowledges them to JetStream after the commit, and runs the
//!   partition's correlator (the same code as one-node mode) over the stored evidence;
//!   incident changes, the partition's cursor and the notifications they cause commit in
//!   one fenced transaction.
//! - **Failover.** Leases are renewed every `ttl/4`; a replica that dies stops renewing
//!   and its partitions are taken within one `ttl` by the survivors (fewest first), which
//!   restore the partition's open incidents and resume from its cursor. A graceful stop
//!   releases its leases at once.
//! - **Leader.** One more lease (partition -1) elects the replica that sends
//!   notifications and watches Kubernetes, so each outbox row has one sender.
//! - People's actions on incidents go to the owner of the incident's partition: locally,
//!   or as a NATS request on `tapio.cmd.<partition>`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tapio_proto::Event;
use tapio_store::pg::{Fence, LeaseRow, PartitionStore, PgStore, ReplicaRow};
use tapio_store::{IngestBatch, StoreError};
use tokio::sync::{mpsc, oneshot, watch};
use ulid::Ulid;

use crate::metrics::{PartitionLabel, ReasonLabel};
use crate::pipeline::correlator::{
    Command, CommandError, CommandKind, Correlator, CorrelatorStatus,
};
use crate::pipeline::ingest::Ingest;

/// The leader lease (notifications, Kubernetes watches) lives in the leases table too.
pub const LEADER_PART: i32 = -1;
/// Most messages stored per pull (they commit in one group), and most bytes: what one pull
/// holds unacknowledged must be stored well within the ack wait, even behind a backlog.
const PULL_BATCH: usize = 32;
const PULL_MAX_BYTES: usize = 4 << 20;

/// What a replica needs to join the cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub nats_url: String,
    pub replica_id: String,
    /// Where other replicas and `tapio check --all` can reach this one.
    pub address: String,
    pub partitions: i32,
    pub lease_ttl: Duration,
    /// Partition key of facts that name no cluster.
    pub default_cluster: String,
    /// Subject prefix on NATS (`<prefix>.evidence.<p>`, `<prefix>.cmd.<p>`; stream
    /// `<PREFIX>_EVIDENCE`), so several Tapio installations can share one NATS.
    pub nats_prefix: String,
    /// Bound of the bus stream: past it publishes are refused with 503 (agents keep
    /// spooling), nothing is dropped. JetStream reserves it from its storage.
    pub bus_max_bytes: u64,
}

impl ClusterConfig {
    pub fn stream(&self) -> String {
        let up: String = self
            .nats_prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("{up}_EVIDENCE")
    }
    fn evidence_subject(&self, part: i32) -> String {
        format!("{}.evidence.{part}", self.nats_prefix)
    }
    fn cmd_subject(&self, part: i32) -> String {
        format!("{}.cmd.{part}", self.nats_prefix)
    }
    /// A replica that released partitions says so here; the others run a lease round at
    /// once instead of at their next tick (a graceful hand-off then takes one round trip).
    fn released_subject(&self) -> String {
        format!("{}.leases.released", self.nats_prefix)
    }
}

/// A NATS subject prefix: tokens of letters, digits, `-` and `_`, separated by dots.
pub fn valid_prefix(p: &str) -> bool {
    !p.is_empty()
        && p.split('.').all(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// A stable partition for a cluster name (FNV-1a; never `std`'s hasher, whose output may
/// change between Rust releases and would move facts between owners on upgrade).
pub fn partition_of(cluster: &str, partitions: i32) -> i32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in cluster.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % partitions.max(1) as u64) as i32
}

/// Rendezvous score: each replica prefers a different spread of partitions, so replicas
/// starting together rarely contend for the same lease.
fn preference(replica: &str, part: i32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in replica.as_bytes().iter().chain(part.to_le_bytes().iter()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A batch as carried on the bus.
#[derive(Debug, Serialize, Deserialize)]
struct BusBatch {
    agent_id: String,
    node: String,
    seq: Option<u64>,
    first_event_id: Option<Ulid>,
    received_at: DateTime<Utc>,
    events: Vec<Event>,
}

/// A person's action on the wire (to the partition's owner) and its answer.
#[derive(Debug, Serialize, Deserialize)]
enum WireCommand {
    Act {
        id: Ulid,
        action: tapio_core::lifecycle::Action,
        by: String,
    },
    Declare(tapio_core::lifecycle::Declare),
}

#[derive(Debug, Serialize, Deserialize)]
enum WireAnswer {
    Ok(Box<tapio_core::Incident>),
    NotFound(String),
    Invalid { code: String, message: String },
    Store(String),
}

impl From<Result<tapio_core::Incident, CommandError>> for WireAnswer {
    fn from(r: Result<tapio_core::Incident, CommandError>) -> Self {
        match r {
            Ok(i) => Self::Ok(Box::new(i)),
            Err(CommandError::NotFound(m)) => Self::NotFound(m),
            Err(CommandError::Invalid(e)) => Self::Invalid {
                code: e.code.to_owned(),
                message: e.message,
            },
            Err(CommandError::Store(m)) => Self::Store(m),
        }
    }
}

impl From<WireAnswer> for Result<tapio_core::Incident, CommandError> {
    fn from(a: WireAnswer) -> Self {
        match a {
            WireAnswer::Ok(i) => Ok(*i),
            WireAnswer::NotFound(m) => Err(CommandError::NotFound(m)),
            WireAnswer::Invalid { code, message } => {
                Err(CommandError::Invalid(tapio_core::lifecycle::ActionError {
                    code: if code == "invalid_transition" {
                        "invalid_transition"
                    } else {
                        "invalid_field"
                    },
                    message,
                }))
            }
            WireAnswer::Store(m) => Err(CommandError::Store(m)),
        }
    }
}

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

/// Everything the rest of the server needs from the cluster.
pub struct Cluster {
    pub cfg: ClusterConfig,
    pub partitions: i32,
    pub store: Arc<PgStore>,
    pub nats: async_nats::Client,
    pub js: async_nats::jetstream::Context,
    pub view: Mutex<ClusterView>,
    /// Local partitions' command channels (the partitions this replica owns now).
    local: Mutex<HashMap<i32, mpsc::Sender<Command>>>,
    pub leader: AtomicBool,
}

/// Errors publishing to the bus (the agent is told to retry).
#[derive(Debug, thiserror::Error)]
#[error("the evidence bus (NATS JetStream) did not take the batch: {0}")]
pub struct BusError(pub String);

impl Cluster {
    /// Connect to NATS, make sure the stream exists, and fix the partition count.
    pub async fn connect(cfg: ClusterConfig, store: Arc<PgStore>) -> anyhow::Result<Arc<Self>> {
        use anyhow::Context;
        let nats = async_nats::ConnectOptions::new()
            .name(format!("tapio-server {}", cfg.replica_id))
            .retry_on_initial_connect()
            .connect(cfg.nats_url.as_str())
            .await
            .with_context(|| format!("cannot connect to NATS at {} (--nats-url)", cfg.nats_url))?;
        let js = async_nats::jetstream::new(nats.clone());
        use async_nats::jetstream::stream;
        tokio::time::timeout(
            Duration::from_secs(15),
            js.get_or_create_stream(stream::Config {
                name: cfg.stream(),
                subjects: vec![format!("{}.evidence.*", cfg.nats_prefix)],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                max_bytes: i64::try_from(cfg.bus_max_bytes).unwrap_or(i64::MAX),
                discard: stream::DiscardPolicy::New,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            }),
        )
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "NATS at {} did not answer JetStream requests within 15 s: is JetStream enabled (nats-server -js)?",
                cfg.nats_url
            )
        })?
        .map_err(|e| anyhow::anyhow!("creating the JetStream stream {}: {e}", cfg.stream()))?;
        let ctl = store.control().await?;
        let partitions = ctl.partitions(cfg.partitions).await?;
        if partitions != cfg.partitions {
            tracing::warn!(
                component = "cluster",
                configured = cfg.partitions,
                cluster = partitions,
                "--partitions differs from the cluster's; using the cluster's (fixed by its first replica)"
            );
        }
        // The leader lease row.
        ctl.ensure_lease_row(LEADER_PART).await?;
        Ok(Arc::new(Self {
            view: Mutex::new(ClusterView {
                replica: cfg.replica_id.clone(),
                partitions,
                ..ClusterView::default()
            }),
            cfg,
            partitions,
            store,
            nats,
            js,
            local: Mutex::new(HashMap::new()),
            leader: AtomicBool::new(false),
        }))
    }

    pub fn partition_for(&self, ev: &Event) -> i32 {
        let c = ev
            .entity
            .cluster
            .as_deref()
            .unwrap_or(&self.cfg.default_cluster);
        partition_of(c, self.partitions)
    }

    /// Publish a batch (split by partition) and wait for the bus's acknowledgement: only
    /// then may the agent be answered. Returns how many events the bus took as new.
    pub async fn publish(
        &self,
        batch: IngestBatch,
        metrics: &crate::metrics::Metrics,
    ) -> Result<usize, BusError> {
        let mut groups: BTreeMap<i32, Vec<Event>> = BTreeMap::new();
        let first_part = batch.events.first().map_or_else(
            || partition_of(&self.cfg.default_cluster, self.partitions),
            |e| self.partition_for(e),
        );
        for ev in batch.events {
            groups.entry(self.partition_for(&ev)).or_default().push(ev);
        }
        if groups.is_empty() {
            groups.insert(first_part, Vec::new());
        }
        let mut acks = Vec::with_capacity(groups.len());
        let mut new_events = 0;
        for (part, events) in groups {
            // The first part carries the agent's sequence (the store tracks gaps by it);
            // a batch spanning clusters is rare (one agent runs in one cluster).
            let seq = if part == first_part { batch.seq } else { None };
            let first_event_id = if part == first_part {
                batch.first_event_id
            } else {
                events.first().map(|e| e.id)
            };
            let id = match seq {
                Some(s) => format!(
                    "b:{}:{s}:{}:{part}",
                    batch.agent_id,
                    first_event_id.map(|u| u.to_string()).unwrap_or_default()
                ),
                None => format!(
                    "e:{}:{}:{part}",
                    first_event_id.map(|u| u.to_string()).unwrap_or_default(),
                    events.len()
                ),
            };
            let n = events.len();
            let body = serde_json::to_vec(&BusBatch {
                agent_id: batch.agent_id.clone(),
                node: batch.node.clone(),
                seq,
                first_event_id,
                received_at: batch.received_at,
                events,
            })
            .map_err(|e| BusError(e.to_string()))?;
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", id.as_str());
            let ack = self
                .js
                .publish_with_headers(self.cfg.evidence_subject(part), headers, body.into())
                .await
                .map_err(|e| BusError(e.to_string()))?;
            acks.push((ack, n));
        }
        for (ack, n) in acks {
            let a = ack.await.map_err(|e| BusError(e.to_string()))?;
            metrics.cluster.bus_published.inc();
            if a.duplicate {
                metrics.cluster.bus_duplicates.inc();
            } else {
                new_events += n;
            }
        }
        Ok(new_events)
    }

    /// Carry a person's action to the owner of the incident's partition.
    pub async fn route(&self, cmd: Command) {
        let part = match &cmd.kind {
            CommandKind::Act { id, .. } => match self.store.incident_part(*id).await {
                Ok(Some(p)) => p,
                Ok(None) => {
                    let _ = cmd
                        .reply
                        .send(Err(CommandError::NotFound(format!("no incident {id}"))));
                    return;
                }
                Err(e) => {
                    let _ = cmd.reply.send(Err(CommandError::Store(e.to_string())));
                    return;
                }
            },
            CommandKind::Declare(_) => partition_of(&self.cfg.default_cluster, self.partitions),
        };
        let local = self.local.lock().ok().and_then(|l| l.get(&part).cloned());
        if let Some(tx) = local {
            if let Err(mpsc::error::SendError(cmd)) = tx.send(cmd).await {
                let _ = cmd.reply.send(Err(CommandError::Store(format!(
                    "partition {part} is changing owner; retry"
                ))));
            }
            return;
        }
        let wire = match cmd.kind {
            CommandKind::Act { id, action, by } => WireCommand::Act { id, action, by },
            CommandKind::Declare(d) => WireCommand::Declare(d),
        };
        let answer = async {
            let body = serde_json::to_vec(&wire).map_err(|e| e.to_string())?;
            let msg = tokio::time::timeout(
                Duration::from_secs(10),
                self.nats.request(self.cfg.cmd_subject(part), body.into()),
            )
            .await
            .map_err(|_| format!("partition {part}'s owner did not answer within 10 s; retry"))?
            .map_err(|e| format!("partition {part} has no owner right now ({e}); retry"))?;
            serde_json::from_slice::<WireAnswer>(&msg.payload).map_err(|e| e.to_string())
        }
        .await;
        let _ = cmd.reply.send(match answer {
            Ok(a) => a.into(),
            Err(e) => Err(CommandError::Store(e)),
        });
    }

    pub fn snapshot(&self) -> ClusterView {
        self.view.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// Builds a partition's correlator (engine, notifier…): the same as one-node mode.
pub type CorrelatorFactory = Arc<
    dyn Fn(
            Arc<dyn tapio_store::Store>,
            mpsc::Receiver<Command>,
            Arc<CorrelatorStatus>,
        ) -> Correlator
        + Send
        + Sync,
>;

/// Leader duties (notifications, Kubernetes watches): started on gaining the leader
/// lease with a stop signal that fires on losing it.
pub type LeaderDuties = Arc<dyn Fn(watch::Receiver<bool>) + Send + Sync>;

struct Worker {
    fence: Fence,
    stop: watch::Sender<bool>,
    status: Arc<CorrelatorStatus>,
    done: Vec<tokio::task::JoinHandle<()>>,
    correlator_done: Option<oneshot::Receiver<()>>,
}

impl Worker {
    async fn stop(mut self) {
        let _ = self.stop.send(true);
        for h in self.done.drain(..) {
            let _ = h.await;
        }
        if let Some(rx) = self.correlator_done.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
        }
    }
}

/// The lease loop: heartbeat, renew, balance, fail over; until `shutdown`, then hand
/// every partition off.
pub async fn run(
    cluster: Arc<Cluster>,
    ingest: Arc<Ingest>,
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
    let metrics = ingest.metrics.clone();
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
            &ingest,
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
async fn notify_released(cluster: &Cluster) {
    let _ = cluster
        .nats
        .publish(cluster.cfg.released_subject(), Vec::new().into())
        .await;
    let _ = cluster.nats.flush().await;
}

fn set_error(cluster: &Cluster, e: Option<String>) {
    if let Ok(mut v) = cluster.view.lock() {
        v.last_error = e;
    }
}

async fn sleep_or_stop(d: Duration, shutdown: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = shutdown.changed() => {}
    }
}

fn unregister(cluster: &Cluster, part: i32) {
    if let Ok(mut l) = cluster.local.lock() {
        l.remove(&part);
    }
}

fn step_down(
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

async fn stop_all(
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

#[allow(clippy::too_many_arguments)]
async fn balance_round(
    c: &tapio_store::pg::Control,
    cluster: &Arc<Cluster>,
    ingest: &Arc<Ingest>,
    me: &str,
    ttl_ms: i64,
    workers: &mut BTreeMap<i32, Worker>,
    leader: &mut Option<(Fence, watch::Sender<bool>, Instant)>,
    make_correlator: &CorrelatorFactory,
    leader_duties: &LeaderDuties,
) -> Result<(), StoreError> {
    let metrics = &ingest.metrics;
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
                match start_worker(cluster, ingest, fence.clone(), make_correlator).await {
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
    refresh_view(cluster, ingest, replicas, leases, workers).await;
    Ok(())
}

async fn refresh_view(
    cluster: &Cluster,
    ingest: &Ingest,
    replicas: Vec<ReplicaRow>,
    leases: Vec<LeaseRow>,
    workers: &BTreeMap<i32, Worker>,
) {
    let metrics = &ingest.metrics;
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
    ingest.correlator.heartbeat_ms.store(now, Ordering::Relaxed);
    let (mut cursor, mut head) = (0i64, 0i64);
    for w in workers.values() {
        cursor += w.status.cursor.load(Ordering::Relaxed);
        head += w.status.head.load(Ordering::Relaxed);
    }
    ingest.correlator.cursor.store(cursor, Ordering::Relaxed);
    ingest
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

/// Start owning a partition: its correlator (restored from the store), the bus consumer
/// that stores its evidence, and the command subscription.
async fn start_worker(
    cluster: &Arc<Cluster>,
    ingest: &Arc<Ingest>,
    fence: Fence,
    make_correlator: &CorrelatorFactory,
) -> anyhow::Result<Worker> {
    use async_nats::jetstream::consumer;
    let part = fence.part;
    let stream = cluster.js.get_stream(cluster.cfg.stream()).await?;
    let name = format!("p{part}");
    let pull: consumer::PullConsumer = stream
        .get_or_create_consumer(
            &name,
            consumer::pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: cluster.cfg.evidence_subject(part),
                ack_policy: consumer::AckPolicy::Explicit,
                // Messages a dead owner fetched but never acknowledged come back after
                // this: tied to the lease so failover is not held up by it (a slow store
                // that outlives it only causes a redelivery, which the store dedupes).
                ack_wait: (cluster.cfg.lease_ttl * 2)
                    .clamp(Duration::from_secs(2), Duration::from_secs(30)),
                max_ack_pending: 20_000,
                ..Default::default()
            },
        )
        .await?;
    let status = Arc::new(CorrelatorStatus::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (cmd_tx, cmd_rx) = mpsc::channel(crate::pipeline::correlator::COMMAND_QUEUE);
    let pstore: Arc<dyn tapio_store::Store> = Arc::new(PartitionStore {
        inner: cluster.store.clone(),
        fence: fence.clone(),
    });
    let correlator = make_correlator(pstore, cmd_rx, status.clone());
    let wake = correlator.wake.clone();
    let (done_tx, done_rx) = oneshot::channel();
    {
        let stop = stop_rx.clone();
        // The warm-up runs on the partition's own thread: the lease loop keeps renewing.
        std::thread::Builder::new()
            .name(format!("correlator-p{part}"))
            .spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(warm_up_then_run(correlator, part, stop));
                }
                let _ = done_tx.send(());
            })?;
    }
    if let Ok(mut l) = cluster.local.lock() {
        l.insert(part, cmd_tx.clone());
    }
    let consume = tokio::spawn(consume(
        cluster.clone(),
        ingest.clone(),
        pull,
        fence.clone(),
        status.clone(),
        wake,
        stop_rx.clone(),
    ));
    let commands = tokio::spawn(serve_commands(cluster.clone(), part, cmd_tx, stop_rx));
    Ok(Worker {
        fence,
        stop: stop_tx,
        status,
        done: vec![consume, commands],
        correlator_done: Some(done_rx),
    })
}

async fn warm_up_then_run(mut correlator: Correlator, part: i32, stop: watch::Receiver<bool>) {
    let t = Instant::now();
    loop {
        match correlator.warm_up().await {
            Ok(n) => {
                tracing::info!(
                    component = "cluster",
                    partition = part,
                    events = n,
                    ms = t.elapsed().as_millis() as u64,
                    "partition warm-up done"
                );
                break;
            }
            Err(e) => {
                tracing::error!(component = "cluster", partition = part, error = %e,
                    "partition warm-up failed; retrying");
                if *stop.borrow() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    correlator.run(stop).await;
}

/// Bus → store for one partition: pull, store (fenced, one group commit), then ack.
async fn consume(
    cluster: Arc<Cluster>,
    ingest: Arc<Ingest>,
    pull: async_nats::jetstream::consumer::PullConsumer,
    fence: Fence,
    status: Arc<CorrelatorStatus>,
    wake: Arc<tokio::sync::Notify>,
    stop: watch::Receiver<bool>,
) {
    let part = fence.part;
    // Bytes in flight per pull, too: with large batches (Kubernetes objects) 32 messages
    // could take longer to store than the ack wait under a backlog, and were then
    // delivered twice. Never below the server's largest message, or one would never fit.
    let max_bytes = PULL_MAX_BYTES.max(cluster.nats.server_info().max_payload);
    while !*stop.borrow() {
        let batch = pull
            .batch()
            .max_messages(PULL_BATCH)
            .max_bytes(max_bytes)
            .expires(Duration::from_millis(500))
            .messages()
            .await;
        let mut msgs = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(component = "cluster", partition = part, error = %e, "bus pull failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut got = Vec::new();
        while let Some(m) = msgs.next().await {
            match m {
                Ok(m) => got.push(m),
                Err(e) => {
                    tracing::warn!(component = "cluster", partition = part, error = %e, "bus message error");
                    break;
                }
            }
        }
        if got.is_empty() || *stop.borrow() {
            continue;
        }
        let mut batches = Vec::with_capacity(got.len());
        let mut ids = Vec::with_capacity(got.len());
        let mut keep = Vec::with_capacity(got.len());
        for m in got {
            match serde_json::from_slice::<BusBatch>(&m.payload) {
                Ok(b) => {
                    ids.push((b.agent_id.clone(), b.seq.unwrap_or(0)));
                    batches.push(IngestBatch {
                        agent_id: b.agent_id,
                        node: b.node,
                        seq: b.seq,
                        first_event_id: b.first_event_id,
                        events: b.events,
                        received_at: b.received_at,
                    });
                    keep.push(m);
                }
                Err(e) => {
                    tracing::error!(component = "cluster", partition = part, error = %e, "undecodable bus message dropped");
                    ingest.metrics.cluster.bus_poison.inc();
                    let _ = m.ack().await;
                }
            }
        }
        // Sent in order, answered together: the store's writer commits them as one group.
        let results = futures_util::future::join_all(
            batches
                .into_iter()
                .map(|b| cluster.store.ingest_part(part, Some(fence.clone()), b)),
        )
        .await;
        let mut fenced = false;
        for ((m, r), (agent_id, seq)) in keep.into_iter().zip(results).zip(ids) {
            match r {
                Ok(out) => {
                    // Counted as accepted by the replica that published it.
                    ingest.record_outcome(&out, &agent_id, seq, false);
                    if let Some((pos, _)) = out.stored.last() {
                        status.head.fetch_max(*pos, Ordering::Relaxed);
                    }
                    let _ = m.ack().await;
                }
                Err(StoreError::Fenced { .. }) => fenced = true,
                Err(e) => {
                    tracing::error!(component = "cluster", partition = part, error = %e, "storing bus evidence failed; it is redelivered");
                    let _ = m
                        .ack_with(async_nats::jetstream::AckKind::Nak(Some(
                            Duration::from_secs(1),
                        )))
                        .await;
                }
            }
        }
        wake.notify_one();
        if fenced {
            tracing::warn!(
                component = "cluster",
                partition = part,
                "fenced: another replica owns this partition now"
            );
            return;
        }
    }
}

/// Answer people's actions routed to this partition by other replicas.
async fn serve_commands(
    cluster: Arc<Cluster>,
    part: i32,
    tx: mpsc::Sender<Command>,
    mut stop: watch::Receiver<bool>,
) {
    let mut sub = match cluster.nats.subscribe(cluster.cfg.cmd_subject(part)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(component = "cluster", partition = part, error = %e, "cannot subscribe to commands");
            return;
        }
    };
    loop {
        let msg = tokio::select! {
            m = sub.next() => m,
            _ = stop.changed() => None,
        };
        let Some(msg) = msg else { break };
        let Some(reply_to) = msg.reply.clone() else {
            continue;
        };
        let answer: WireAnswer = match serde_json::from_slice::<WireCommand>(&msg.payload) {
            Err(e) => WireAnswer::Store(format!("undecodable command: {e}")),
            Ok(w) => {
                let kind = match w {
                    WireCommand::Act { id, action, by } => CommandKind::Act { id, action, by },
                    WireCommand::Declare(d) => CommandKind::Declare(d),
                };
                let (rtx, rrx) = oneshot::channel();
                if tx.send(Command { kind, reply: rtx }).await.is_err() {
                    WireAnswer::Store(format!("partition {part} is changing owner; retry"))
                } else {
                    match rrx.await {
                        Ok(r) => r.into(),
                        Err(_) => {
                            WireAnswer::Store(format!("partition {part} is changing owner; retry"))
                        }
                    }
                }
            }
        };
        if let Ok(body) = serde_json::to_vec(&answer) {
            let _ = cluster.nats.publish(reply_to, body.into()).await;
        }
    }
    let _ = sub.unsubscribe().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_spread() {
        // Fixed values: a change would move every cluster to another owner on upgrade.
        assert_eq!(partition_of("prod", 16), partition_of("prod", 16));
        let spread: std::collections::BTreeSet<i32> = (0..64)
            .map(|i| partition_of(&format!("cluster-{i}"), 16))
            .collect();
        assert!(spread.len() >= 12, "{spread:?}");
        assert!((0..1000).all(|i| (0..7).contains(&partition_of(&i.to_string(), 7))));
    }

    #[test]
    fn answers_cross_the_wire_unchanged() {
        let e = CommandError::Invalid(tapio_core::lifecycle::ActionError {
            code: "invalid_transition",
            message: "incident is resolved".into(),
        });
        let w: WireAnswer = Err::<tapio_core::Incident, _>(e).into();
        let back: WireAnswer =
            serde_json::from_slice(&serde_json::to_vec(&w).expect("encode")).expect("decode");
        match Result::<tapio_core::Incident, CommandError>::from(back) {
            Err(CommandError::Invalid(a)) => {
                assert_eq!(a.code, "invalid_transition");
                assert_eq!(a.message, "incident is resolved");
            }
            other => panic!("{other:?}"),
        }
    }
}
