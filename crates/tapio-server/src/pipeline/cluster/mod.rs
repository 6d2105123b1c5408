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
use crate::pipeline::outcome::Outcomes;

mod balance;
mod leases;
mod view;
mod worker;

use balance::*;
pub use leases::run;
use leases::*;
use view::*;
pub use view::{ClusterView, PartitionView};
use worker::*;

/// The leader lease (notifications, Kubernetes watches) lives in the leases table too.
pub const LEADER_PART: i32 = -1;
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
    /// How to reach NATS securely (TLS, client certificate, credentials).
    pub nats_security: NatsSecurity,
}

/// `user:pass` (or a lone token) from `nats://user:pass@host:4222`, percent-decoded.
fn url_credentials(url: &str) -> Option<(String, Option<String>)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (userinfo, _) = authority.rsplit_once('@')?;
    let decode = |s: &str| {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if b[i] == b'%'
                && i + 2 < b.len()
                && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
            {
                out.push((h * 16 + l) as u8);
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    match userinfo.split_once(':') {
        Some((u, p)) => Some((decode(u), Some(decode(p)))),
        None if !userinfo.is_empty() => Some((decode(userinfo), None)),
        None => None,
    }
}

/// The URL without its credentials, for logs and errors.
pub fn redact_nats_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let shown = match rest[..end].rsplit_once('@') {
        Some((_, host)) => format!("***@{host}{}", &rest[end..]),
        None => rest.to_owned(),
    };
    if scheme.is_empty() {
        shown
    } else {
        format!("{scheme}://{shown}")
    }
}

/// TLS and credentials for NATS. A `tls://` URL, a CA or a client certificate require
/// TLS; user and password may also be in the URL (`nats://user:pass@host:4222`).
#[derive(Debug, Clone, Default)]
pub struct NatsSecurity {
    /// Require TLS even with a `nats://` URL.
    pub require_tls: bool,
    /// PEM CA bundle that signed the NATS server's certificate (else the system roots).
    pub ca: Option<std::path::PathBuf>,
    /// Client certificate and key (PEM), for servers that verify clients (mutual TLS).
    pub client_cert: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// A NATS credentials file (`.creds`: user JWT and NKey seed), as NGS and
    /// operator-mode servers issue.
    pub creds: Option<std::path::PathBuf>,
}

impl NatsSecurity {
    /// Connect options carrying these settings; a file that cannot be read is an error
    /// naming it.
    pub async fn options(&self, url: &str) -> anyhow::Result<async_nats::ConnectOptions> {
        use anyhow::Context;
        let mut o = async_nats::ConnectOptions::new();
        if let Some(path) = &self.creds {
            o = o.credentials_file(path).await.with_context(|| {
                format!(
                    "cannot read the NATS credentials file {} (--nats-creds): give a .creds file with a user JWT and seed",
                    path.display()
                )
            })?;
        }
        for (flag, path) in [("--nats-ca", self.ca.as_ref())].into_iter().chain(
            self.client_cert
                .iter()
                .flat_map(|(c, k)| [("--nats-cert", Some(c)), ("--nats-key", Some(k))]),
        ) {
            if let Some(p) = path
                && !p.is_file()
            {
                anyhow::bail!(
                    "{flag} {}: no such file (a PEM file is expected)",
                    p.display()
                );
            }
        }
        // async-nats does not read credentials from the URL itself.
        match url_credentials(url) {
            Some((user, Some(pass))) => o = o.user_and_password(user, pass),
            Some((token, None)) => o = o.token(token),
            None => {}
        }
        if let Some(ca) = &self.ca {
            o = o.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &self.client_cert {
            o = o.add_client_certificate(cert.clone(), key.clone());
        }
        let tls_url = url.trim_start().to_ascii_lowercase().starts_with("tls://");
        if self.require_tls || tls_url || self.ca.is_some() || self.client_cert.is_some() {
            o = o.require_tls(true);
        }
        Ok(o)
    }
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
        let nats = cfg
            .nats_security
            .options(&cfg.nats_url)
            .await?
            .name(format!("tapio-server {}", cfg.replica_id))
            .retry_on_initial_connect()
            .connect(cfg.nats_url.as_str())
            .await
            .with_context(|| {
                format!(
                    "cannot connect to NATS at {} (--nats-url)",
                    redact_nats_url(&cfg.nats_url)
                )
            })?;
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
                redact_nats_url(&cfg.nats_url)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_url_credentials_are_read_and_never_shown() {
        assert_eq!(
            url_credentials("tls://tapio:s%40cret@nats:4222"),
            Some(("tapio".into(), Some("s@cret".into())))
        );
        assert_eq!(
            url_credentials("nats://TOKEN@nats:4222/x"),
            Some(("TOKEN".into(), None))
        );
        assert_eq!(url_credentials("nats://nats:4222"), None);
        assert_eq!(
            redact_nats_url("tls://tapio:s3cret@nats:4222"),
            "tls://***@nats:4222"
        );
        assert_eq!(redact_nats_url("nats://nats:4222"), "nats://nats:4222");
    }

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
