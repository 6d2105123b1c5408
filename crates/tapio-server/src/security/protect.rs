//! Admission control: bounded concurrency, memory and backlog protection, and the order in
//! which work is shed (docs/security.md, "Load shedding").
//!
//! Every request (probes excepted) takes a slot among `--max-inflight`. A request's class
//! decides how full the server may be for it to still get in, so the least important work
//! is refused first and people acting on an incident and P1 evidence last:
//!
//! | class | requests | refused when in-flight ≥ | also refused |
//! |---|---|---|---|
//! | probe | `/health`, `/ready`, `/metrics` | never | never |
//! | critical | people's actions (every other POST), and ingest marked `x-tapio-priority: critical` (the agent marks batches holding a P1-class fact) | 100 % | never |
//! | ingest | evidence, events, Alertmanager webhooks, heartbeats | 85 % | memory over the limit |
//! | read | every other GET | 50 % | memory over the limit |
//! | debug | raw evidence reads (`GET /api/v1/evidence`) | 25 % | memory over the limit; shedding active at pressure ≥ 0.5 |
//!
//! Shedding is *active* with `load-shedding-enabled=true`, or on its own once pressure
//! reaches [`AUTO_SHED_PRESSURE`]. Pressure (0.0–1.0) is the highest of: correlator backlog
//! over `--shed-capacity`, resident memory over `--memory-limit`, and in-flight requests over
//! `--max-inflight`. While active, evidence inside admitted requests is shed by rank
//! ([`tapio_core::shed`]): P1-class facts never.
//!
//! A refused request gets `503` with a reason and `Retry-After`; it is counted in
//! `tapio_requests_shed_total{class,reason}`. Agents keep a refused batch in their spool
//! and send it again, so nothing acknowledged is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::Method;

/// Pressure at which shedding turns itself on, without `load-shedding-enabled`.
pub const AUTO_SHED_PRESSURE: f64 = 0.9;
/// The header an agent sets on a batch holding a P1-class fact.
pub const PRIORITY_HEADER: &str = "x-tapio-priority";
/// Share of the cgroup memory limit used as `--memory-limit auto`.
const AUTO_MEMORY_SHARE: f64 = 0.85;
/// A refused request's body is read and dropped when at most this big (and quick).
pub(crate) const DRAIN_MAX: usize = 1 << 20;
pub(crate) const DRAIN_TIME: Duration = Duration::from_secs(2);
/// How long a refusal keeps `/health` showing "shedding".
const SHED_WINDOW_MS: i64 = 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Debug,
    Read,
    Ingest,
    Critical,
    Probe,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Debug => "debug",
            Class::Read => "read",
            Class::Ingest => "ingest",
            Class::Critical => "critical",
            Class::Probe => "probe",
        }
    }

    /// Share of `--max-inflight` this class may fill.
    fn share(self) -> f64 {
        match self {
            Class::Debug => 0.25,
            Class::Read => 0.5,
            Class::Ingest => 0.85,
            Class::Critical | Class::Probe => 1.0,
        }
    }
}

const INGEST_ROUTES: &[&str] = &[
    "/api/v1/evidence",
    "/api/v1/events",
    "/api/v1/alertmanager",
    "/api/v1/agents/heartbeat",
];

/// The class of a request by method, matched route and priority header.
pub fn classify(method: &Method, route: Option<&str>, critical_header: bool) -> Class {
    let Some(route) = route else {
        return Class::Read;
    };
    if matches!(route, "/health" | "/ready" | "/metrics") {
        return Class::Probe;
    }
    let read = *method == Method::GET || *method == Method::HEAD;
    if !read && INGEST_ROUTES.contains(&route) {
        return if critical_header {
            Class::Critical
        } else {
            Class::Ingest
        };
    }
    if !read {
        // A person acting on an incident: ack, resolve, notes, declare, silences.
        return Class::Critical;
    }
    if route == "/api/v1/evidence" {
        return Class::Debug;
    }
    Class::Read
}

/// Limits and live figures of admission control.
pub struct Protect {
    pub max_inflight: usize,
    /// Bytes; 0 = no memory limit.
    pub memory_limit: u64,
    /// Where the memory limit came from ("--memory-limit", "cgroup", "off").
    pub memory_source: String,
    pub(crate) inflight: AtomicUsize,
    rss: AtomicU64,
    pub(crate) last_shed_ms: AtomicI64,
    /// Refusals by class index (Debug, Read, Ingest, Critical).
    pub(crate) refused: [AtomicU64; 4],
    /// Slots for CPU-heavy request work ([`cpu`]): one per core.
    cpu: tokio::sync::Semaphore,
    /// Requests whose body is being received (before they take an in-flight slot).
    pub(crate) receiving: AtomicUsize,
    /// A body must arrive whole within this (`--body-read-timeout`).
    pub body_read_timeout: Duration,
}

impl Protect {
    pub fn new(max_inflight: usize, memory_limit: u64, memory_source: impl Into<String>) -> Self {
        Self {
            max_inflight: max_inflight.max(1),
            memory_limit,
            memory_source: memory_source.into(),
            inflight: AtomicUsize::new(0),
            rss: AtomicU64::new(resident_bytes().unwrap_or(0)),
            last_shed_ms: AtomicI64::new(i64::MIN / 2),
            refused: Default::default(),
            cpu: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            receiving: AtomicUsize::new(0),
            body_read_timeout: crate::body::BODY_READ_TIMEOUT,
        }
    }

    pub fn with_body_read_timeout(mut self, t: Duration) -> Self {
        self.body_read_timeout = t;
        self
    }

    /// Requests whose body is still arriving.
    pub fn receiving(&self) -> usize {
        self.receiving.load(Ordering::Relaxed)
    }

    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Relaxed)
    }

    pub fn rss(&self) -> u64 {
        self.rss.load(Ordering::Relaxed)
    }

    /// Resident memory over the limit, 0.0 without a limit (may exceed 1.0).
    pub fn memory_ratio(&self) -> f64 {
        if self.memory_limit == 0 {
            return 0.0;
        }
        self.rss() as f64 / self.memory_limit as f64
    }

    pub fn concurrency_ratio(&self) -> f64 {
        self.inflight() as f64 / self.max_inflight as f64
    }

    pub fn refused(&self, class: Class) -> u64 {
        match class {
            Class::Debug => self.refused[0].load(Ordering::Relaxed),
            Class::Read => self.refused[1].load(Ordering::Relaxed),
            Class::Ingest => self.refused[2].load(Ordering::Relaxed),
            Class::Critical => self.refused[3].load(Ordering::Relaxed),
            Class::Probe => 0,
        }
    }

    /// True when a request was refused in the last minute.
    pub fn shed_recently(&self, now_ms: i64) -> bool {
        now_ms - self.last_shed_ms.load(Ordering::Relaxed) < SHED_WINDOW_MS
    }

    /// Refresh the resident memory figure (every second, from a task).
    pub fn sample(&self) {
        if let Some(r) = resident_bytes() {
            self.rss.store(r, Ordering::Relaxed);
        }
    }

    /// Admission: `Err((reason, message))` when a request of this class must be refused.
    pub(crate) fn admit(
        &self,
        class: Class,
        pressure: f64,
        active: bool,
    ) -> Result<(), (&'static str, String)> {
        if class == Class::Probe {
            return Ok(());
        }
        let inflight = self.inflight();
        let allowed = ((self.max_inflight as f64) * class.share()).ceil() as usize;
        if inflight >= allowed.max(1) {
            return Err((
                "concurrency",
                format!(
                    "overloaded: {inflight} requests in flight ({} of --max-inflight {} allowed for {} requests)",
                    allowed,
                    self.max_inflight,
                    class.as_str()
                ),
            ));
        }
        if class < Class::Critical && self.memory_ratio() >= 1.0 {
            return Err((
                "memory",
                format!(
                    "overloaded: resident memory {} MiB is over the limit {} MiB ({}); only people's actions and P1 evidence are accepted",
                    self.rss() >> 20,
                    self.memory_limit >> 20,
                    self.memory_source
                ),
            ));
        }
        if class == Class::Debug && active && pressure >= 0.5 {
            return Err((
                "pressure",
                format!(
                    "load shedding: raw evidence reads are paused at pressure {pressure:.2}; incidents stay readable"
                ),
            ));
        }
        Ok(())
    }
}

/// Holds one in-flight slot; gives it back on drop (also when the handler is cancelled).
pub(crate) struct Slot<'a>(
    pub(crate) &'a Protect,
    pub(crate) &'a crate::metrics::Metrics,
);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let n = self.0.inflight.fetch_sub(1, Ordering::Relaxed);
        self.1.requests_in_flight.set(n.saturating_sub(1) as i64);
    }
}

/// What load shedding reads: the correlator's backlog against its capacity, memory and
/// concurrency, and whether the config turns shedding on.
#[derive(Clone)]
pub struct Load {
    pub protect: Arc<Protect>,
    pub correlator: Arc<crate::pipeline::correlator::CorrelatorStatus>,
    /// Correlator lag (events) at which load shedding reaches full pressure.
    pub capacity: u64,
    pub config: tokio::sync::watch::Receiver<crate::runtime_config::Effective>,
}

impl Load {
    /// Pressure (0.0–1.0): the highest of correlator backlog, memory and concurrency.
    pub fn pressure(&self) -> f64 {
        let lag = self.correlator.lag() as f64 / self.capacity.max(1) as f64;
        let p = &self.protect;
        lag.max(p.memory_ratio())
            .max(p.concurrency_ratio())
            .clamp(0.0, 1.0)
    }

    /// Shedding is active: enabled by config, or forced by pressure.
    pub fn shedding_active(&self, pressure: f64) -> bool {
        self.config.borrow().config.load_shedding_enabled || pressure >= AUTO_SHED_PRESSURE
    }
}

/// Runs CPU-heavy request work (decompressing, decoding, ranking evidence) on the blocking
/// pool, at most one job per core at a time: the async workers stay free for probes and
/// people's requests however hard the agents push. Waiting for a slot is async and counts
/// as in flight, so admission control sees it.
pub async fn cpu<T: Send + 'static>(
    protect: &Protect,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let _permit = protect.cpu.acquire().await.ok();
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Samples resident memory every second until shutdown.
pub async fn sampler(
    protect: Arc<Protect>,
    metrics: Arc<crate::metrics::Metrics>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        protect.sample();
        metrics.resident_bytes.set(protect.rss() as i64);
    }
}

/// This process's resident memory, from /proc/self/statm.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// `--memory-limit`: `auto` (85 % of this process's cgroup memory limit, off without
/// one), `off`, or a size (`512Mi`, `2Gi`, `1500000000`).
pub fn memory_limit(spec: &str) -> Result<(u64, String), String> {
    let spec = spec.trim();
    match spec {
        "off" | "0" => Ok((0, "off".into())),
        "auto" => Ok(match cgroup_memory_max() {
            Some(max) => (
                (max as f64 * AUTO_MEMORY_SHARE) as u64,
                format!("85 % of the cgroup limit {} MiB", max >> 20),
            ),
            None => (0, "off (no cgroup memory limit)".into()),
        }),
        _ => parse_size(spec)
            .map(|b| (b, "--memory-limit".to_owned()))
            .ok_or_else(|| {
                format!(
                    "--memory-limit {spec:?} is not a size: use auto, off, or bytes with an optional Ki/Mi/Gi suffix (e.g. 768Mi)"
                )
            }),
    }
}

/// A byte size: a number with an optional Ki/Mi/Gi (or K/M/G) suffix.
pub fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = [
        ("KiB", 1u64 << 10),
        ("MiB", 1 << 20),
        ("GiB", 1 << 30),
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("K", 1000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ]
    .iter()
    .find_map(|(suf, m)| s.strip_suffix(suf).map(|n| (n, *m)))
    .unwrap_or((s, 1));
    let n: u64 = num.trim().parse().ok()?;
    n.checked_mul(mult).filter(|b| *b > 0)
}

/// The memory limit of this process's cgroup (v2), or its nearest limited ancestor.
fn cgroup_memory_max() -> Option<u64> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cg.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let mut dir = std::path::PathBuf::from("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    loop {
        if let Ok(v) = std::fs::read_to_string(dir.join("memory.max"))
            && let Ok(n) = v.trim().parse::<u64>()
        {
            return Some(n);
        }
        if !dir.pop() || dir == std::path::Path::new("/sys/fs") {
            return None;
        }
    }
}

/// The `load` component of `/health`.
pub fn health(load: &Load, now_ms: i64) -> tapio_proto::ComponentHealth {
    let p = &load.protect;
    let pressure = load.pressure();
    let active = load.shedding_active(pressure);
    let (status, message) = if p.shed_recently(now_ms) {
        (
            tapio_proto::HealthStatus::Degraded,
            "shedding: requests were refused for load in the last minute (see details.refused)",
        )
    } else if active && pressure >= 0.5 {
        (
            tapio_proto::HealthStatus::Degraded,
            "shedding: low-priority evidence and debug reads are being dropped",
        )
    } else {
        (tapio_proto::HealthStatus::Healthy, "within capacity")
    };
    tapio_proto::ComponentHealth {
        status,
        message: message.to_owned(),
        critical: false,
        details: serde_json::json!({
            "shedding_active": active,
            "pressure": pressure,
            "in_flight": p.inflight(),
            "max_inflight": p.max_inflight,
            "resident_bytes": p.rss(),
            "memory_limit_bytes": p.memory_limit,
            "memory_limit_source": p.memory_source,
            "correlator_backlog": load.correlator.lag(),
            "shed_capacity": load.capacity,
            "refused": {
                "critical": p.refused(Class::Critical),
                "ingest": p.refused(Class::Ingest),
                "read": p.refused(Class::Read),
                "debug": p.refused(Class::Debug),
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_order_people_and_p1_evidence_last() {
        let post = Method::POST;
        let get = Method::GET;
        assert_eq!(classify(&get, Some("/health"), false), Class::Probe);
        assert_eq!(classify(&get, Some("/metrics"), false), Class::Probe);
        assert_eq!(
            classify(&post, Some("/api/v1/evidence"), false),
            Class::Ingest
        );
        assert_eq!(
            classify(&post, Some("/api/v1/evidence"), true),
            Class::Critical
        );
        assert_eq!(
            classify(&post, Some("/api/v1/incidents/{id}/ack"), false),
            Class::Critical
        );
        assert_eq!(
            classify(&get, Some("/api/v1/evidence"), false),
            Class::Debug
        );
        assert_eq!(
            classify(&get, Some("/api/v1/incidents"), false),
            Class::Read
        );
        assert_eq!(classify(&get, None, false), Class::Read);
    }

    #[test]
    fn the_lowest_class_is_refused_first_as_slots_fill() {
        let p = Protect::new(8, 0, "off");
        // 2 of 8 in flight: debug (25 %) is refused, the rest get in.
        p.inflight.store(2, Ordering::Relaxed);
        let refused = |c| p.admit(c, 0.0, false).is_err();
        assert!(refused(Class::Debug));
        assert!(!refused(Class::Read));
        p.inflight.store(4, Ordering::Relaxed);
        assert!(refused(Class::Read));
        assert!(!refused(Class::Ingest));
        p.inflight.store(7, Ordering::Relaxed);
        assert!(refused(Class::Ingest));
        assert!(!refused(Class::Critical));
        p.inflight.store(8, Ordering::Relaxed);
        assert!(refused(Class::Critical));
        assert!(!refused(Class::Probe));
        let (reason, msg) = p.admit(Class::Critical, 0.0, false).expect_err("refused");
        assert_eq!(reason, "concurrency");
        assert!(msg.contains("--max-inflight 8"), "{msg}");
    }

    #[test]
    fn over_the_memory_limit_only_critical_work_gets_in() {
        let p = Protect::new(100, 1, "test");
        p.rss.store(2, Ordering::Relaxed);
        for c in [Class::Debug, Class::Read, Class::Ingest] {
            let (reason, _) = p.admit(c, 1.0, true).expect_err("refused");
            assert_eq!(reason, "memory", "{c:?}");
        }
        assert!(p.admit(Class::Critical, 1.0, true).is_ok());
    }

    #[test]
    fn debug_reads_pause_while_shedding_is_active_under_pressure() {
        let p = Protect::new(100, 0, "off");
        assert!(p.admit(Class::Debug, 0.6, false).is_ok());
        assert_eq!(
            p.admit(Class::Debug, 0.6, true).expect_err("refused").0,
            "pressure"
        );
        assert!(p.admit(Class::Debug, 0.4, true).is_ok());
        assert!(p.admit(Class::Read, 0.95, true).is_ok());
    }

    #[test]
    fn memory_limits_parse_sizes_and_name_bad_ones() {
        assert_eq!(memory_limit("768Mi").expect("test setup").0, 768 << 20);
        assert_eq!(memory_limit("2Gi").expect("test setup").0, 2 << 30);
        assert_eq!(memory_limit("1500000").expect("test setup").0, 1_500_000);
        assert_eq!(memory_limit("off").expect("test setup").0, 0);
        let e = memory_limit("lots").expect_err("refused");
        assert!(e.contains("\"lots\"") && e.contains("768Mi"), "{e}");
        assert!(memory_limit("auto").is_ok());
    }
}
