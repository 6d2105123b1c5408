//! Every metric tapio-server exports, defined in one place. Label values are bounded:
//! sources come from a fixed list, routes from the router's templates, drop reasons and
//! error codes from code.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    pub stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    pub queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub method: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SeverityLabel {
    pub severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabel {
    pub key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    /// `firing` or `resolved` (decoded into an enum first, so bounded).
    pub status: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 10 µs .. ~5 s
    Histogram::new(exponential_buckets(0.000_01, 2.0, 20))
}

pub struct Metrics {
    pub registry: Registry,
    pub cluster: ClusterMetrics,
    pub events_ingested: Family<SourceLabel, Counter>,
    pub events_processed: Family<SourceLabel, Counter>,
    pub stage_duration: HistogramFamily<StageLabel>,
    pub queue_depth: Family<QueueLabel, Gauge>,
    pub events_dropped: Family<ReasonLabel, Counter>,
    pub batches_accepted: Counter,
    pub batches_duplicate: Counter,
    pub batches_rejected: Family<CodeLabel, Counter>,
    pub sequence_gaps: Counter,
    pub sequence_resets: Counter,
    /// Evidence moved by its source's estimated clock offset (`clock`).
    pub evidence_time_corrected: Counter,
    /// Evidence still dated in the future after that, placed at its arrival (`clock`).
    pub evidence_time_clamped: Counter,
    /// Requests, values and files refused by input validation (issue 15), by reason.
    pub input_refused: Family<ReasonLabel, Counter>,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: HistogramFamily<RouteLabel>,
    pub incidents_opened: Family<SeverityLabel, Counter>,
    pub incidents_active: Gauge,
    pub config_generation: Gauge,
    pub config_rejections: Family<KeyLabel, Counter>,
    pub evidence_pruned: Counter,
    pub alerts_received: Family<AlertLabels, Counter>,
    /// Notification delivery attempts by receiver (from the config: bounded) and result.
    pub notifications: Family<NotificationLabels, Counter>,
    /// MTTD / MTTA / MTTR / MTBF over the trailing window (crate::pipeline::mttx), per severity.
    pub mttx: Family<MttxLabels, FloatGauge>,
    /// The same per service (the most frequent [`crate::pipeline::mttx::MAX_SERVICES`] services).
    pub service_mttx: Family<ServiceMttxLabels, FloatGauge>,
    /// Share of measured incidents that met the runbook's MTTA / MTTR target.
    pub target_met: Family<MttxLabels, FloatGauge>,
    /// Incidents that started in the trailing window, per severity.
    pub window_incidents: Family<SeverityLabel, Gauge>,
    pub mttx_window: Gauge,
    /// Audit records emitted (at the current audit level) and dropped (queue full).
    pub audit_records: Counter,
    pub audit_dropped: Counter,
    /// Authentication failures folded into one summary audit record per client and
    /// interval (instead of a record each), and audit records deleted by retention.
    pub audit_failures_folded: Counter,
    pub audit_pruned: Counter,
    /// People's actions by outcome (applied, accepted_pending, refused_queue_full,
    /// idempotent_replay, idempotency_mismatch, idempotency_in_progress, key_evicted).
    pub actions: Family<ReasonLabel, Counter>,
    /// Requests answered 429 by the rate limits, by scope (token, client).
    pub rate_limited_total: Family<ScopeLabel, Counter>,
    /// Requests refused with 503 by admission control (crate::security::protect), by class and reason.
    pub requests_shed: Family<ShedLabels, Counter>,
    /// Requests being served now (probes excepted).
    pub requests_in_flight: Gauge,
    /// The server's resident memory, sampled every second.
    pub resident_bytes: Gauge,
    /// TLS handshakes by result (ok, failed, timeout) and certificate reloads (ok, failed).
    pub tls_handshakes: Family<ResultLabel, Counter>,
    pub tls_reloads: Family<ResultLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShedLabels {
    /// critical | ingest | read | debug
    pub class: String,
    /// concurrency | memory | pressure
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabel {
    pub scope: String,
}

pub type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MttxLabels {
    /// mttd | mtta | mttr | mtbf
    pub measure: String,
    pub severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceMttxLabels {
    pub measure: String,
    pub service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    pub partition: String,
}

/// Scale-out (docs/scale-out.md): replicas, partition ownership and the bus. Partition
/// labels are bounded by the cluster's partition count (at most 1024).
#[derive(Default)]
pub struct ClusterMetrics {
    pub replicas: Gauge,
    pub partitions_owned: Gauge,
    pub partition_owned: Family<PartitionLabel, Gauge>,
    pub bus_pending: Family<PartitionLabel, Gauge>,
    pub bus_published: Counter,
    pub bus_duplicates: Counter,
    pub bus_poison: Counter,
    pub lease_changes: Family<ReasonLabel, Counter>,
    pub leader: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    pub receiver: String,
    pub result: String,
}

pub const DROP_REASONS: &[&str] = &["load_shed", "duplicate_event"];
pub const STAGES: &[&str] = &["decode", "store", "correlate"];

impl Metrics {
    /// Every metric, registered once. Long (about 360 lines) on purpose: it is the
    /// catalogue of what `/metrics` exports, one registration with its help text each, in
    /// the order listed; split across functions it would no longer read as one list.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tapio");
        let events_ingested = Family::<SourceLabel, Counter>::default();
        registry.register(
            "events_ingested",
            "Evidence events durably stored and acknowledged, by source",
            events_ingested.clone(),
        );
        let events_processed = Family::<SourceLabel, Counter>::default();
        registry.register(
            "events_processed",
            "Evidence events processed by the correlator, by source",
            events_processed.clone(),
        );
        let stage_duration: HistogramFamily<StageLabel> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "event_processing_duration_seconds",
            "Time spent per pipeline stage (decode: per batch body; store: per batch until durable; correlate: per event)",
            stage_duration.clone(),
        );
        let queue_depth = Family::<QueueLabel, Gauge>::default();
        registry.register(
            "queue_depth",
            "Items waiting: correlator = stored events not yet correlated; store_writer = write commands queued",
            queue_depth.clone(),
        );
        let events_dropped = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "events_dropped",
            "Evidence events not stored, by reason",
            events_dropped.clone(),
        );
        let batches_accepted = Counter::default();
        registry.register(
            "batches_accepted",
            "Evidence batches acknowledged (new)",
            batches_accepted.clone(),
        );
        let batches_duplicate = Counter::default();
        registry.register(
            "batches_duplicate",
            "Evidence batches acknowledged as retries of a stored (agent, seq)",
            batches_duplicate.clone(),
        );
        let batches_rejected = Family::<CodeLabel, Counter>::default();
        registry.register(
            "batches_rejected",
            "Request bodies refused, by error code",
            batches_rejected.clone(),
        );
        let sequence_gaps = Counter::default();
        registry.register(
            "agent_sequence_gaps",
            "Batches found missing: an agent's sequence jumped past them",
            sequence_gaps.clone(),
        );
        let sequence_resets = Counter::default();
        registry.register(
            "agent_sequence_resets",
            "Agents that restarted their batch sequence (a reused seq with different content)",
            sequence_resets.clone(),
        );
        let evidence_time_corrected = Counter::default();
        registry.register(
            "evidence_time_corrected",
            "Events moved onto the server's time line because their source's clock is off by more than 2 s (sent_at vs arrival)",
            evidence_time_corrected.clone(),
        );
        let evidence_time_clamped = Counter::default();
        registry.register(
            "evidence_time_clamped",
            "Events dated later than their arrival (after clock correction), placed at their arrival",
            evidence_time_clamped.clone(),
        );
        let input_refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "input_refused",
            "Inputs refused or distrusted by validation (bad Content-Type, repeated Authorization, overflowing ids, out-of-range values, implausible sequence jumps, unreadable or conflicting user files), by reason",
            input_refused.clone(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route template, method and status",
            http_requests.clone(),
        );
        let http_duration: HistogramFamily<RouteLabel> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route template",
            http_duration.clone(),
        );
        let incidents_opened = Family::<SeverityLabel, Counter>::default();
        registry.register(
            "incidents_opened",
            "Incidents opened, by severity",
            incidents_opened.clone(),
        );
        let incidents_active = Gauge::default();
        registry.register(
            "incidents_active",
            "Incidents held active by the correlator",
            incidents_active.clone(),
        );
        let config_generation = Gauge::default();
        registry.register(
            "config_generation",
            "Generation of the effective runtime config (increments on every applied change)",
            config_generation.clone(),
        );
        let config_rejections = Family::<KeyLabel, Counter>::default();
        registry.register(
            "config_rejections",
            "Runtime config values refused, by key",
            config_rejections.clone(),
        );
        let evidence_pruned = Counter::default();
        registry.register(
            "evidence_pruned",
            "Evidence rows deleted by retention",
            evidence_pruned.clone(),
        );
        let alerts_received = Family::<AlertLabels, Counter>::default();
        registry.register(
            "alertmanager_alerts_received",
            "Alerts received from Alertmanager webhooks (re-notifications included), by alert status",
            alerts_received.clone(),
        );
        let notifications = Family::<NotificationLabels, Counter>::default();
        registry.register(
            "notifications",
            "Notification delivery attempts by receiver and result (delivered, retry, failed, superseded)",
            notifications.clone(),
        );
        let mttx = Family::<MttxLabels, FloatGauge>::default();
        registry.register(
            "incident_mttx_seconds",
            "Mean time to detect (first evidence to detection), acknowledge, resolve, and between failures, over the trailing window (tapio_incident_mttx_window_seconds), per severity",
            mttx.clone(),
        );
        let service_mttx = Family::<ServiceMttxLabels, FloatGauge>::default();
        registry.register(
            "service_mttx_seconds",
            "The same means per service (namespace/workload), for the services with the most incidents in the window",
            service_mttx.clone(),
        );
        let target_met = Family::<MttxLabels, FloatGauge>::default();
        registry.register(
            "incident_target_met_ratio",
            "Share of incidents in the window that met the runbook target (P1 MTTA 5m / MTTR 2h, P2 15m / 8h, P3 1h / 24h), per severity and measure",
            target_met.clone(),
        );
        let window_incidents = Family::<SeverityLabel, Gauge>::default();
        registry.register(
            "incident_window_incidents",
            "Incidents that started in the trailing window, per severity (merged ones not counted)",
            window_incidents.clone(),
        );
        let mttx_window = Gauge::default();
        registry.register(
            "incident_mttx_window_seconds",
            "Length of the trailing window the MTTx figures cover",
            mttx_window.clone(),
        );
        let audit_records = Counter::default();
        registry.register(
            "audit_records",
            "Security audit records emitted at the current audit-level",
            audit_records.clone(),
        );
        let audit_dropped = Counter::default();
        registry.register(
            "audit_dropped",
            "Audit records not stored because the audit queue was full or the store failed (still logged)",
            audit_dropped.clone(),
        );
        let audit_failures_folded = Counter::default();
        registry.register(
            "audit_auth_failures_folded",
            "Authentication failures counted in a per-client summary audit record instead of a record each",
            audit_failures_folded.clone(),
        );
        let audit_pruned = Counter::default();
        registry.register(
            "audit_pruned",
            "Audit records deleted by the audit retention (--audit-retention, --audit-max-records)",
            audit_pruned.clone(),
        );
        let actions = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "actions",
            "People's actions and idempotency keys by outcome (applied, accepted_pending, refused_queue_full, idempotent_replay, idempotency_mismatch, idempotency_in_progress, key_evicted)",
            actions.clone(),
        );
        let rate_limited_total = Family::<ScopeLabel, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused with 429 by the rate limits, by scope (token, client)",
            rate_limited_total.clone(),
        );
        let requests_shed = Family::<ShedLabels, Counter>::default();
        registry.register(
            "requests_shed",
            "Requests refused with 503 by admission control, by class (critical, ingest, read, debug) and reason (concurrency, memory, pressure)",
            requests_shed.clone(),
        );
        let requests_in_flight = Gauge::default();
        registry.register(
            "requests_in_flight",
            "Requests being served (probes excepted)",
            requests_in_flight.clone(),
        );
        let resident_bytes = Gauge::default();
        registry.register(
            "resident_memory_bytes",
            "Resident memory of tapio-server, sampled every second (the memory shedding input)",
            resident_bytes.clone(),
        );
        let tls_handshakes = Family::<ResultLabel, Counter>::default();
        registry.register(
            "tls_handshakes",
            "TLS handshakes on the HTTPS listener by result (ok, failed, timeout)",
            tls_handshakes.clone(),
        );
        let tls_reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "tls_reloads",
            "TLS certificate reloads after a file change, by result (ok, failed: the previous certificate stays)",
            tls_reloads.clone(),
        );
        let build_info = Family::<Vec<(String, String)>, Gauge>::default();
        registry.register("build_info", "tapio-server build", build_info.clone());
        build_info
            .get_or_create(&vec![(
                "version".to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            )])
            .set(1);

        let cluster = ClusterMetrics::default();
        registry.register(
            "cluster_replicas",
            "Replicas with a live heartbeat (scale-out mode; 0 otherwise)",
            cluster.replicas.clone(),
        );
        registry.register(
            "cluster_partitions_owned",
            "Correlation partitions this replica owns",
            cluster.partitions_owned.clone(),
        );
        registry.register(
            "cluster_partition_owned",
            "1 when this replica owns the partition",
            cluster.partition_owned.clone(),
        );
        registry.register(
            "bus_pending",
            "Evidence messages on the bus not yet stored by the partition's owner (bus lag)",
            cluster.bus_pending.clone(),
        );
        registry.register(
            "bus_published",
            "Evidence messages published to the bus and acknowledged by it",
            cluster.bus_published.clone(),
        );
        registry.register(
            "bus_duplicates",
            "Publishes the bus recognised as duplicates by message id (an agent's retry)",
            cluster.bus_duplicates.clone(),
        );
        registry.register(
            "bus_poison",
            "Bus messages that could not be decoded (acknowledged and dropped)",
            cluster.bus_poison.clone(),
        );
        registry.register(
            "cluster_lease_changes",
            "Partition lease changes on this replica: acquired, released (hand-off), lost",
            cluster.lease_changes.clone(),
        );
        registry.register(
            "cluster_leader",
            "1 when this replica holds the leader lease (notifications, Kubernetes watches)",
            cluster.leader.clone(),
        );
        for r in ["acquired", "released", "lost"] {
            let _ = cluster.lease_changes.get_or_create(&ReasonLabel {
                reason: r.to_owned(),
            });
        }

        let m = Self {
            cluster,
            registry,
            events_ingested,
            events_processed,
            stage_duration,
            queue_depth,
            events_dropped,
            batches_accepted,
            batches_duplicate,
            batches_rejected,
            sequence_gaps,
            sequence_resets,
            evidence_time_corrected,
            evidence_time_clamped,
            input_refused,
            http_requests,
            http_duration,
            incidents_opened,
            incidents_active,
            config_generation,
            config_rejections,
            evidence_pruned,
            alerts_received,
            notifications,
            mttx,
            service_mttx,
            target_met,
            window_incidents,
            mttx_window,
            audit_records,
            audit_dropped,
            audit_failures_folded,
            audit_pruned,
            actions,
            rate_limited_total,
            requests_shed,
            requests_in_flight,
            resident_bytes,
            tls_handshakes,
            tls_reloads,
        };
        // Pre-create bounded series so dashboards and alerts see zeros, not absence.
        for r in DROP_REASONS {
            let _ = m.events_dropped.get_or_create(&ReasonLabel {
                reason: (*r).to_owned(),
            });
        }
        for s in tapio_proto::KNOWN_SOURCES.iter().chain(["other"].iter()) {
            let l = SourceLabel {
                source: (*s).to_owned(),
            };
            let _ = m.events_ingested.get_or_create(&l);
            let _ = m.events_processed.get_or_create(&l);
        }
        for q in ["correlator", "store_writer"] {
            let _ = m.queue_depth.get_or_create(&QueueLabel {
                queue: q.to_owned(),
            });
        }
        for s in tapio_core::Severity::ALL {
            let _ = m.incidents_opened.get_or_create(&SeverityLabel {
                severity: s.as_str().to_owned(),
            });
        }
        for status in ["firing", "resolved"] {
            let _ = m.alerts_received.get_or_create(&AlertLabels {
                status: status.to_owned(),
            });
        }
        m
    }

    pub fn observe_stage(&self, stage: &str, seconds: f64) {
        self.stage_duration
            .get_or_create(&StageLabel {
                stage: stage.to_owned(),
            })
            .observe(seconds);
    }

    pub fn dropped(&self, reason: &str, n: u64) {
        self.events_dropped
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc_by(n);
    }

    pub fn tls_handshake(&self, result: &str) {
        self.tls_handshakes
            .get_or_create(&ResultLabel {
                result: result.to_owned(),
            })
            .inc();
    }

    pub fn tls_reload(&self, result: &str) {
        self.tls_reloads
            .get_or_create(&ResultLabel {
                result: result.to_owned(),
            })
            .inc();
    }

    /// Count one input refused by validation (`reason` comes from code: bounded).
    pub fn refused(&self, reason: &str) {
        self.input_refused
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Count one people's action outcome (`outcome` comes from code: bounded).
    pub fn action(&self, outcome: &str) {
        self.actions
            .get_or_create(&ReasonLabel {
                reason: outcome.to_owned(),
            })
            .inc();
    }

    pub fn rate_limited(&self, scope: &str) {
        self.rate_limited_total
            .get_or_create(&ScopeLabel {
                scope: scope.to_owned(),
            })
            .inc();
    }

    pub fn notification(&self, receiver: &str, result: &str) {
        self.notifications
            .get_or_create(&NotificationLabels {
                receiver: receiver.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    pub fn rejected(&self, code: &str) {
        self.batches_rejected
            .get_or_create(&CodeLabel {
                code: code.to_owned(),
            })
            .inc();
    }

    pub fn set_queue(&self, queue: &str, depth: i64) {
        self.queue_depth
            .get_or_create(&QueueLabel {
                queue: queue.to_owned(),
            })
            .set(depth);
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
