//! Every metric tapio-agent exports (prefix `tapio_agent_`). Label values are bounded:
//! observers, record kinds, event types and reasons all come from code.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObserverKind {
    pub observer: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObserverReason {
    pub observer: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub event_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProgramLabel {
    pub program: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScanLabel {
    pub scan: String,
}

pub struct Metrics {
    pub registry: Registry,
    /// Records read from the kernel, by observer and record kind.
    pub kernel_records: Family<ObserverKind, Counter>,
    /// Records the kernel could not hand over (ring buffer full, ambiguous block match…),
    /// read from the programs' drop counters.
    pub kernel_drops: Family<ObserverReason, Gauge>,
    /// Records that failed to decode.
    pub malformed: Family<ObserverReason, Counter>,
    /// Kernel facts that did not become evidence (below threshold, ignored exit…).
    pub filtered: Family<ObserverReason, Counter>,
    /// Evidence produced, by event type.
    pub evidence: Family<TypeLabel, Counter>,
    /// Evidence written to the spool.
    pub spooled: Counter,
    /// Evidence acknowledged by the server (or written by a stdout/file sink).
    pub shipped: Counter,
    /// Evidence lost, by reason (spool_full_<severity>, rejected_by_server, queue_full…).
    pub dropped: Family<ReasonLabel, Counter>,
    pub spool_bytes: Gauge,
    pub spool_pending_events: Gauge,
    pub spool_corrupt_records: Counter,
    pub ship_attempts: Family<ReasonLabel, Counter>,
    pub ship_backoff_seconds: Gauge,
    /// 1 when the program is attached.
    pub program_attached: Family<ProgramLabel, Gauge>,
    pub filter_state_evictions: Counter,
    /// What the node observers left out because a bound was reached, by reason
    /// (`cpu_cgroups_over_limit`, `inotify_scan_truncated`).
    pub node_untracked: Family<ReasonLabel, Counter>,
    /// Duration of the last periodic node scan, by scan (`inotify`, `cpu_throttle`).
    pub node_scan_seconds: Family<ScanLabel, Gauge<f64, AtomicU64>>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tapio_agent");
        let m = Self {
            kernel_records: Family::default(),
            kernel_drops: Family::default(),
            malformed: Family::default(),
            filtered: Family::default(),
            evidence: Family::default(),
            spooled: Counter::default(),
            shipped: Counter::default(),
            dropped: Family::default(),
            spool_bytes: Gauge::default(),
            spool_pending_events: Gauge::default(),
            spool_corrupt_records: Counter::default(),
            ship_attempts: Family::default(),
            ship_backoff_seconds: Gauge::default(),
            program_attached: Family::default(),
            filter_state_evictions: Counter::default(),
            node_untracked: Family::default(),
            node_scan_seconds: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "kernel_records",
            "Records read from the kernel's ring buffers, by observer and kind",
            m.kernel_records.clone(),
        );
        registry.register(
            "kernel_drops",
            "Records the BPF programs could not deliver or match, by observer and reason (cumulative since load)",
            m.kernel_drops.clone(),
        );
        registry.register(
            "malformed_records",
            "Kernel records that failed to decode",
            m.malformed.clone(),
        );
        registry.register(
            "filtered",
            "Kernel facts that did not become evidence (below threshold, ignored), by observer and reason",
            m.filtered.clone(),
        );
        registry.register(
            "evidence",
            "Evidence produced, by event type",
            m.evidence.clone(),
        );
        registry.register(
            "spooled_events",
            "Evidence written to the disk spool",
            m.spooled.clone(),
        );
        registry.register(
            "shipped_events",
            "Evidence acknowledged by the server or written by a local sink",
            m.shipped.clone(),
        );
        registry.register(
            "dropped_events",
            "Evidence lost, by reason",
            m.dropped.clone(),
        );
        registry.register(
            "spool_bytes",
            "Bytes in the disk spool",
            m.spool_bytes.clone(),
        );
        registry.register(
            "spool_pending_events",
            "Evidence in the spool not yet acknowledged",
            m.spool_pending_events.clone(),
        );
        registry.register(
            "spool_corrupt_records",
            "Spool records skipped because they were corrupt",
            m.spool_corrupt_records.clone(),
        );
        registry.register(
            "ship_attempts",
            "Batch deliveries to the server, by result",
            m.ship_attempts.clone(),
        );
        registry.register(
            "ship_backoff_seconds",
            "Current delay before the next delivery attempt",
            m.ship_backoff_seconds.clone(),
        );
        registry.register(
            "program_attached",
            "1 when the BPF program is attached",
            m.program_attached.clone(),
        );
        registry.register(
            "filter_state_evictions",
            "Filter windows evicted because the bounded state was full",
            m.filter_state_evictions.clone(),
        );
        registry.register(
            "node_untracked",
            "Node facts left out because a bound was reached, by reason (cpu_cgroups_over_limit: container cgroups not tracked per interval; inotify_scan_truncated: scans cut short)",
            m.node_untracked.clone(),
        );
        registry.register(
            "node_scan_seconds",
            "Duration of the last periodic node scan (inotify: /proc/*/fd; cpu_throttle: cgroup walk and cpu.stat reads)",
            m.node_scan_seconds.clone(),
        );
        Self { registry, ..m }
    }

    pub fn record(&self, observer: &str, kind: &str) {
        self.kernel_records
            .get_or_create(&ObserverKind {
                observer: observer.into(),
                kind: kind.into(),
            })
            .inc();
    }

    pub fn filter(&self, observer: &str, reason: &str) {
        self.filtered
            .get_or_create(&ObserverReason {
                observer: observer.into(),
                reason: reason.into(),
            })
            .inc();
    }

    pub fn drop_evidence(&self, reason: &str, n: u64) {
        self.dropped
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc_by(n);
    }

    pub fn node_untracked(&self, reason: &str, n: u64) {
        if n > 0 {
            self.node_untracked
                .get_or_create(&ReasonLabel {
                    reason: reason.into(),
                })
                .inc_by(n);
        }
    }

    pub fn node_scan(&self, scan: &str, seconds: f64) {
        self.node_scan_seconds
            .get_or_create(&ScanLabel { scan: scan.into() })
            .set(seconds);
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
