//! Edge filtering: kernel records and per-interval statistics in, evidence out.
//!
//! Pure and clock-injected: every method takes the record time (nanoseconds since boot)
//! or the interval's time, so the windows are tested without sleeping. Every threshold is
//! a field of [`Thresholds`] (documented in `docs/agent.md`). State is bounded: each map
//! holds at most [`Thresholds::max_keys`] entries; expired windows are swept, and when
//! a map is still full the oldest windows are evicted and counted.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tapio_proto::{AttrValue, Entity, Event, EventSeverity, EventType};
use ulid::Ulid;

use crate::abi::{
    BLK_COUNTERS, BlockRecord, ConnectOutcome, ConnectRecord, DST_COUNTERS, Destination,
    ExitRecord, OomRecord,
};
use crate::metrics::Metrics;

const NS: u64 = 1_000_000_000;

/// Every edge-filtering threshold. Defaults are chosen so that one stray fact is not
/// evidence, while a real failure is reported within a second of the threshold being met.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Length of the counting windows, seconds.
    pub window_seconds: u64,
    /// Refused connects from one process to one destination within a window before
    /// `connection_refused` is reported (every refusal is still counted in connect stats).
    pub refused_min: u32,
    /// Timed-out connects (one already means a peer silent for the whole SYN retry cycle).
    pub timeout_min: u32,
    /// Connects failing with another error (unreachable, …) within a window.
    pub connect_error_min: u32,
    /// Interval of the per-destination connect statistics, seconds.
    pub stats_interval_seconds: u64,
    /// Destinations reported per interval at most (those with failures first).
    pub stats_max_destinations: usize,
    /// Resets received from one destination per interval before a `reset_storm` …
    pub reset_min: u64,
    /// … and at least this many times its baseline.
    pub reset_factor: f64,
    /// Retransmits to one destination per interval before a `retransmit_spike` …
    pub retransmit_min: u64,
    /// … and at least this many times its baseline.
    pub retransmit_factor: f64,
    /// Mean handshake RTT (ms) to one destination in an interval before `rtt_degradation` …
    pub rtt_min_ms: f64,
    /// … and at least this many times its baseline …
    pub rtt_factor: f64,
    /// … measured over at least this many connects.
    pub rtt_min_samples: u64,
    /// Weight of the newest interval in a baseline (exponential moving average).
    pub baseline_alpha: f64,
    /// Intervals a destination must be seen before its baseline is trusted for the
    /// relative conditions (until then only the absolute minimums apply).
    pub baseline_warmup_intervals: u32,
    /// Process names whose non-zero exits are not evidence (shell utilities that signal
    /// "false" with exit codes).
    pub exit_ignore_comms: Vec<String>,
    /// Exit codes that are not evidence.
    pub exit_ignore_codes: Vec<u32>,
    /// Signals that are not evidence (SIGPIPE 13: a closed pipe; SIGTERM 15: an asked-for stop).
    pub exit_ignore_signals: Vec<u32>,
    /// Kernel-side slow I/O threshold, milliseconds (requests slower are reported).
    pub slow_io_ms: u64,
    /// Slow requests on one device within a window before a `latency_spike`.
    pub slow_io_min: u32,
    /// Failed requests on one device within a window before an `io_error`.
    pub io_error_min: u32,
    /// Entries per filter map.
    pub max_keys: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            window_seconds: 10,
            refused_min: 3,
            timeout_min: 1,
            connect_error_min: 3,
            stats_interval_seconds: 10,
            stats_max_destinations: 512,
            reset_min: 10,
            reset_factor: 3.0,
            retransmit_min: 20,
            retransmit_factor: 3.0,
            rtt_min_ms: 50.0,
            rtt_factor: 3.0,
            rtt_min_samples: 5,
            baseline_alpha: 0.2,
            baseline_warmup_intervals: 3,
            exit_ignore_comms: [
                "grep", "egrep", "fgrep", "test", "[", "false", "diff", "cmp", "which", "pgrep",
                "pidof", "timeout", "ldconfig",
            ]
            .map(String::from)
            .to_vec(),
            exit_ignore_codes: Vec::new(),
            exit_ignore_signals: vec![13, 15],
            slow_io_ms: 100,
            slow_io_min: 3,
            io_error_min: 1,
            max_keys: 8192,
        }
    }
}

impl Thresholds {
    /// Values that make no sense are refused with the field named.
    pub fn validate(&self) -> Result<(), String> {
        let pos = |name: &str, v: u64| {
            if v == 0 {
                Err(format!("{name} must be at least 1 (got 0)"))
            } else {
                Ok(())
            }
        };
        pos("window_seconds", self.window_seconds)?;
        pos("stats_interval_seconds", self.stats_interval_seconds)?;
        pos("refused_min", self.refused_min.into())?;
        pos("timeout_min", self.timeout_min.into())?;
        pos("connect_error_min", self.connect_error_min.into())?;
        pos("slow_io_min", self.slow_io_min.into())?;
        pos("io_error_min", self.io_error_min.into())?;
        pos("max_keys", self.max_keys as u64)?;
        for (name, v) in [
            ("reset_factor", self.reset_factor),
            ("retransmit_factor", self.retransmit_factor),
            ("rtt_factor", self.rtt_factor),
        ] {
            if !(v.is_finite() && v >= 1.0) {
                return Err(format!("{name} must be a number ≥ 1 (got {v})"));
            }
        }
        if !(self.baseline_alpha > 0.0 && self.baseline_alpha <= 1.0) {
            return Err(format!(
                "baseline_alpha must be in (0, 1] (got {})",
                self.baseline_alpha
            ));
        }
        Ok(())
    }
}

/// Resolves who a kernel fact concerns (container, pod, workload, or unit on a plain host).
pub trait Resolve {
    fn resolve(&mut self, pid: u32, cgroup_id: u64, comm: &str) -> Resolved;
}

#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub entity: Entity,
    pub attrs: Vec<(String, String)>,
}

/// A resolver for tests and for hosts where nothing can be resolved: only the node.
pub struct NodeOnly(pub String);

impl Resolve for NodeOnly {
    fn resolve(&mut self, _pid: u32, _cgroup_id: u64, _comm: &str) -> Resolved {
        Resolved {
            entity: Entity {
                node: Some(self.0.clone()),
                ..Entity::default()
            },
            attrs: Vec::new(),
        }
    }
}

/// Converts kernel boot-time nanoseconds into wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Wall clock at boot, nanoseconds since the Unix epoch.
    pub boot_epoch_ns: i128,
}

impl Clock {
    pub fn wall(&self, boot_ns: u64) -> DateTime<Utc> {
        let ns = self.boot_epoch_ns + boot_ns as i128;
        DateTime::from_timestamp_nanos(ns.clamp(0, i64::MAX as i128) as i64)
    }
}

/// One counting window per key: starts at the first fact, reports once the minimum is met.
#[derive(Debug, Clone, Copy)]
struct Window {
    start_ns: u64,
    last_ns: u64,
    count: u64,
    reported: bool,
}

struct Windows<K> {
    map: HashMap<K, Window>,
}

impl<K: Hash + Eq + Clone> Windows<K> {
    fn new() -> Self {
        Self {
            map: HashMap::new(),
        }
    }

    /// Count one fact; `Some(window)` when this fact makes the window reach `min`.
    fn hit(
        &mut self,
        key: &K,
        now: u64,
        window_ns: u64,
        min: u64,
        max_keys: usize,
        metrics: &Metrics,
    ) -> Option<Window> {
        if !self.map.contains_key(key) && self.map.len() >= max_keys {
            self.sweep(now, window_ns, max_keys, metrics);
        }
        let w = self.map.entry(key.clone()).or_insert(Window {
            start_ns: now,
            last_ns: now,
            count: 0,
            reported: false,
        });
        if now.saturating_sub(w.start_ns) >= window_ns {
            *w = Window {
                start_ns: now,
                last_ns: now,
                count: 0,
                reported: false,
            };
        }
        w.count += 1;
        w.last_ns = now;
        if !w.reported && w.count >= min {
            w.reported = true;
            return Some(*w);
        }
        None
    }

    fn sweep(&mut self, now: u64, window_ns: u64, max_keys: usize, metrics: &Metrics) {
        self.map
            .retain(|_, w| now.saturating_sub(w.start_ns) < window_ns);
        if self.map.len() >= max_keys {
            // Still full of live windows: evict the oldest half.
            let mut starts: Vec<u64> = self.map.values().map(|w| w.start_ns).collect();
            starts.sort_unstable();
            let cut = starts[starts.len() / 2];
            let before = self.map.len();
            self.map.retain(|_, w| w.start_ns > cut);
            metrics
                .filter_state_evictions
                .inc_by((before - self.map.len()) as u64);
        }
    }
}

/// Baseline of one destination's per-interval figures.
#[derive(Debug, Clone, Copy, Default)]
struct Baseline {
    intervals: u32,
    retransmits: f64,
    resets: f64,
    rtt_ms: f64,
    rtt_seen: bool,
    last: [u64; DST_COUNTERS],
    last_seen_interval: u64,
}

pub struct Detector {
    pub t: Thresholds,
    node: String,
    clock: Clock,
    metrics: Arc<Metrics>,
    /// Keyed by destination and caller (cgroup and process name, not pid: a client that
    /// restarts, or a shell loop, is the same caller).
    refused: Windows<(Destination, u64, String)>,
    timeouts: Windows<(Destination, u64, String)>,
    errors: Windows<(Destination, u64, String)>,
    exits: Windows<(String, u64, u32)>,
    slow_io: Windows<u32>,
    io_errors: Windows<u32>,
    baselines: HashMap<Destination, Baseline>,
    blk_last: HashMap<u32, [u64; BLK_COUNTERS]>,
    interval_no: u64,
}

fn attr_s(v: impl Into<String>) -> AttrValue {
    AttrValue::String(v.into())
}
fn attr_i(v: impl TryInto<i64>) -> AttrValue {
    AttrValue::Int(v.try_into().unwrap_or(i64::MAX))
}

impl Detector {
    pub fn new(t: Thresholds, node: String, clock: Clock, metrics: Arc<Metrics>) -> Self {
        Self {
            t,
            node,
            clock,
            metrics,
            refused: Windows::new(),
            timeouts: Windows::new(),
            errors: Windows::new(),
            exits: Windows::new(),
            slow_io: Windows::new(),
            io_errors: Windows::new(),
            baselines: HashMap::new(),
            blk_last: HashMap::new(),
            interval_no: 0,
        }
    }

    fn window_ns(&self) -> u64 {
        self.t.window_seconds.saturating_mul(NS)
    }

    fn event(
        &self,
        kind: &str,
        severity: EventSeverity,
        time: DateTime<Utc>,
        resolved: Resolved,
        attrs: Vec<(&str, AttrValue)>,
    ) -> Event {
        let mut attributes = BTreeMap::new();
        for (k, v) in resolved.attrs {
            attributes.insert(k, AttrValue::String(v));
        }
        for (k, v) in attrs {
            attributes.insert(k.to_owned(), v);
        }
        let mut entity = resolved.entity;
        if entity.node.is_none() {
            entity.node = Some(self.node.clone());
        }
        self.metrics
            .evidence
            .get_or_create(&crate::metrics::TypeLabel {
                event_type: kind.into(),
            })
            .inc();
        Event {
            id: Ulid::new(),
            time,
            // The type names are constants of this module and always valid.
            kind: EventType::parse(kind).unwrap_or_else(|_| {
                EventType::parse("kernel.agent.invalid_type").expect("constant type")
            }),
            severity,
            entity,
            attributes,
            object: None,
        }
    }

    fn node_entity(&self) -> Resolved {
        Resolved {
            entity: Entity {
                node: Some(self.node.clone()),
                ..Entity::default()
            },
            attrs: Vec::new(),
        }
    }

    pub fn connect(&mut self, r: &ConnectRecord, res: &mut dyn Resolve) -> Option<Event> {
        let (kind_name, min, windows, typ) = match r.outcome {
            ConnectOutcome::Refused => (
                "refused",
                self.t.refused_min,
                &mut self.refused,
                "kernel.network.connection_refused",
            ),
            ConnectOutcome::Timeout => (
                "timeout",
                self.t.timeout_min,
                &mut self.timeouts,
                "kernel.network.connection_timeout",
            ),
            ConnectOutcome::Error => (
                "error",
                self.t.connect_error_min,
                &mut self.errors,
                "kernel.network.connection_error",
            ),
        };
        self.metrics.record("network", kind_name);
        let dst = Destination {
            addr: r.dst,
            port: r.dport,
        };
        let window_ns = self.t.window_seconds.saturating_mul(NS);
        let Some(w) = windows.hit(
            &(dst, r.header.cgroup_id, r.header.comm.clone()),
            r.header.ts_ns,
            window_ns,
            min.into(),
            self.t.max_keys,
            &self.metrics,
        ) else {
            self.metrics.filter("network", "below_threshold");
            return None;
        };
        let resolved = res.resolve(r.header.tgid, r.header.cgroup_id, &r.header.comm);
        let mut attrs = vec![
            ("dst_addr", attr_s(r.dst.to_string())),
            ("dst_port", attr_i(r.dport)),
            ("src_addr", attr_s(r.src.to_string())),
            ("src_port", attr_i(r.sport)),
            ("pid", attr_i(r.header.tgid)),
            ("comm", attr_s(r.header.comm.clone())),
            ("count", attr_i(w.count)),
            ("window_seconds", attr_i(self.t.window_seconds)),
            ("errno", attr_i(r.sk_err)),
            ("errno_name", attr_s(errno_name(r.sk_err))),
            ("observer", attr_s("ebpf")),
        ];
        if r.outcome == ConnectOutcome::Timeout {
            attrs.push(("waited_ms", attr_i(r.waited_ns / 1_000_000)));
        }
        if r.header.tgid == 0 {
            attrs.push(("process_unknown", AttrValue::Bool(true)));
        }
        let time = self.clock.wall(w.start_ns);
        Some(self.event(typ, EventSeverity::Warning, time, resolved, attrs))
    }

    pub fn exit(&mut self, r: &ExitRecord, res: &mut dyn Resolve) -> Option<Event> {
        self.metrics.record("process", "exit");
        let comm = &r.header.comm;
        if self.t.exit_ignore_comms.iter().any(|c| c == comm) {
            self.metrics.filter("process", "ignored_comm");
            return None;
        }
        if let Some(code) = r.exit_code()
            && self.t.exit_ignore_codes.contains(&code)
        {
            self.metrics.filter("process", "ignored_code");
            return None;
        }
        if let Some(sig) = r.signal()
            && self.t.exit_ignore_signals.contains(&sig)
        {
            self.metrics.filter("process", "ignored_signal");
            return None;
        }
        // The same process name failing the same way in the same cgroup is one report per
        // window, carrying how often it happened.
        let key = (comm.clone(), r.header.cgroup_id, r.status);
        let window_ns = self.window_ns();
        let Some(w) = self.exits.hit(
            &key,
            r.header.ts_ns,
            window_ns,
            1,
            self.t.max_keys,
            &self.metrics,
        ) else {
            self.metrics.filter("process", "repeat_in_window");
            return None;
        };
        let resolved = res.resolve(r.header.tgid, r.header.cgroup_id, comm);
        let mut attrs = vec![
            ("pid", attr_i(r.header.tgid)),
            ("comm", attr_s(comm.clone())),
            ("count", attr_i(w.count)),
            ("observer", attr_s("ebpf")),
        ];
        let severity = match (r.exit_code(), r.signal()) {
            (Some(code), _) => {
                attrs.push(("exit_code", attr_i(code)));
                EventSeverity::Warning
            }
            (None, Some(sig)) => {
                attrs.push(("signal", attr_i(sig)));
                attrs.push(("signal_name", attr_s(signal_name(sig))));
                attrs.push(("core_dumped", AttrValue::Bool(r.core_dumped())));
                if matches!(sig, 4 | 6 | 7 | 8 | 11) {
                    EventSeverity::Error
                } else {
                    EventSeverity::Warning
                }
            }
            (None, None) => EventSeverity::Warning,
        };
        let time = self.clock.wall(r.header.ts_ns);
        Some(self.event(
            "kernel.container.abnormal_exit",
            severity,
            time,
            resolved,
            attrs,
        ))
    }

    pub fn oom(&mut self, r: &OomRecord, res: &mut dyn Resolve) -> Event {
        self.metrics.record("process", "oom");
        let resolved = res.resolve(r.header.tgid, r.header.cgroup_id, &r.header.comm);
        let mut attrs = vec![
            ("pid", attr_i(r.header.tgid)),
            ("comm", attr_s(r.header.comm.clone())),
            ("anon_rss_bytes", attr_i(r.anon_rss_bytes)),
            ("file_rss_bytes", attr_i(r.file_rss_bytes)),
            ("total_vm_bytes", attr_i(r.total_vm_bytes)),
            ("memcg_usage_bytes", attr_i(r.memcg_usage_bytes)),
            ("uid", attr_i(r.uid)),
            ("cgroup_id", attr_i(r.header.cgroup_id)),
            ("observer", attr_s("ebpf")),
        ];
        if r.memcg_limit_bytes > 0 {
            attrs.push(("memory_limit_bytes", attr_i(r.memcg_limit_bytes)));
        }
        if !r.memcg_name.is_empty() {
            attrs.push(("memcg", attr_s(r.memcg_name.clone())));
        }
        let time = self.clock.wall(r.header.ts_ns);
        self.event(
            "kernel.container.oom_kill",
            EventSeverity::Critical,
            time,
            resolved,
            attrs,
        )
    }

    pub fn block(&mut self, r: &BlockRecord, res: &mut dyn Resolve) -> Option<Event> {
        let failed = r.status != 0;
        self.metrics
            .record("storage", if failed { "io_error" } else { "slow_io" });
        let window_ns = self.window_ns();
        let (windows, min, typ, severity) = if failed {
            (
                &mut self.io_errors,
                self.t.io_error_min,
                "kernel.storage.io_error",
                EventSeverity::Error,
            )
        } else {
            (
                &mut self.slow_io,
                self.t.slow_io_min,
                "kernel.storage.latency_spike",
                EventSeverity::Warning,
            )
        };
        let Some(w) = windows.hit(
            &r.dev,
            r.header.ts_ns,
            window_ns,
            min.into(),
            self.t.max_keys,
            &self.metrics,
        ) else {
            self.metrics.filter("storage", "below_threshold");
            return None;
        };
        let resolved = if r.header.tgid != 0 {
            res.resolve(r.header.tgid, r.header.cgroup_id, &r.header.comm)
        } else {
            self.node_entity()
        };
        let device = if r.disk.is_empty() {
            format!("{}:{}", r.major(), r.minor())
        } else {
            r.disk.clone()
        };
        let mut attrs = vec![
            ("device", attr_s(device)),
            ("dev", attr_s(format!("{}:{}", r.major(), r.minor()))),
            ("op", attr_s(r.op())),
            ("sector", attr_i(r.sector)),
            ("bytes", attr_i(r.nr_bytes)),
            ("count", attr_i(w.count)),
            ("window_seconds", attr_i(self.t.window_seconds)),
            ("issuer_pid", attr_i(r.header.tgid)),
            ("issuer_comm", attr_s(r.header.comm.clone())),
            ("observer", attr_s("ebpf")),
        ];
        if failed {
            attrs.push(("status", attr_i(r.status)));
            attrs.push(("status_name", attr_s(r.status_name())));
        } else {
            attrs.push((
                "latency_ms",
                AttrValue::Float(r.latency_ns as f64 / 1_000_000.0),
            ));
            attrs.push(("threshold_ms", attr_i(self.t.slow_io_ms)));
        }
        let time = self.clock.wall(w.start_ns);
        Some(self.event(typ, severity, time, resolved, attrs))
    }

    /// One statistics interval: cumulative per-destination counters from the kernel in,
    /// `connect_stats` (per active destination) and spike evidence out.
    pub fn connect_interval(
        &mut self,
        now: DateTime<Utc>,
        cumulative: &[(Destination, [u64; DST_COUNTERS])],
    ) -> Vec<Event> {
        let mut active = self.connect_deltas(cumulative);
        let mut out = Vec::new();
        // Failures first, then by attempts, for the per-interval cap.
        active.sort_by(|a, b| {
            let fa = a.1[2] + a.1[3] + a.1[4];
            let fb = b.1[2] + b.1[3] + b.1[4];
            fb.cmp(&fa).then(b.1[0].cmp(&a.1[0])).then(a.0.cmp(&b.0))
        });
        let truncated = active.len().saturating_sub(self.t.stats_max_destinations);
        if truncated > 0 {
            self.metrics.filter("network", "stats_truncated");
        }
        for (i, (dst, d, base)) in active.iter().enumerate() {
            let with_stats = i < self.t.stats_max_destinations;
            self.judge_destination(now, dst, d, base, with_stats, &mut out);
            // Update the baseline after judging this interval against it.
            self.update_baseline(dst, d);
        }
        out
    }

    /// This interval's counts per destination that saw traffic (from the kernel's
    /// cumulative counters and the last values), with the baseline as it was before it.
    fn connect_deltas(
        &mut self,
        cumulative: &[(Destination, [u64; DST_COUNTERS])],
    ) -> Vec<(Destination, [u64; DST_COUNTERS], Baseline)> {
        self.interval_no += 1;
        let interval = self.interval_no;
        let mut active: Vec<(Destination, [u64; DST_COUNTERS], Baseline)> = Vec::new();
        for (dst, cur) in cumulative {
            let b = self.baselines.entry(*dst).or_default();
            let mut delta = [0u64; DST_COUNTERS];
            for i in 0..DST_COUNTERS {
                // A counter below its last value: the kernel map evicted and re-created
                // the entry; count from zero.
                delta[i] = if cur[i] >= b.last[i] {
                    cur[i] - b.last[i]
                } else {
                    cur[i]
                };
            }
            b.last = *cur;
            if delta.iter().any(|&d| d > 0) {
                b.last_seen_interval = interval;
                active.push((*dst, delta, *b));
            }
        }
        // Forget destinations silent for a long time (bounded state).
        if self.baselines.len() > self.t.max_keys {
            let horizon = interval.saturating_sub(60);
            self.baselines.retain(|_, b| b.last_seen_interval > horizon);
        }
        active
    }

    /// The evidence of one destination in one interval: its `connect_stats` (when
    /// `with_stats`, i.e. within the per-interval cap) and any reset, retransmit or RTT
    /// spike against its baseline.
    fn judge_destination(
        &self,
        now: DateTime<Utc>,
        dst: &Destination,
        d: &[u64; DST_COUNTERS],
        base: &Baseline,
        with_stats: bool,
        out: &mut Vec<Event>,
    ) {
        let t = &self.t;
        let [
            attempts,
            successes,
            refused,
            timeouts,
            errors,
            rtt_sum,
            retrans,
            resets,
        ] = *d;
        let warm = base.intervals >= t.baseline_warmup_intervals;
        let dst_attrs = || {
            vec![
                ("dst_addr", attr_s(dst.addr.to_string())),
                ("dst_port", attr_i(dst.port)),
                ("interval_seconds", attr_i(t.stats_interval_seconds)),
                ("observer", attr_s("ebpf")),
            ]
        };
        if with_stats {
            let mut a = dst_attrs();
            a.extend([
                ("attempts", attr_i(attempts)),
                ("successes", attr_i(successes)),
                ("refused", attr_i(refused)),
                ("timed_out", attr_i(timeouts)),
                ("errors", attr_i(errors)),
                ("retransmits", attr_i(retrans)),
                ("resets", attr_i(resets)),
            ]);
            if successes > 0 {
                a.push((
                    "rtt_avg_ms",
                    AttrValue::Float(rtt_sum as f64 / successes as f64 / 1000.0),
                ));
            }
            let failed = refused + timeouts + errors;
            let sev = if failed > 0 {
                EventSeverity::Warning
            } else {
                EventSeverity::Info
            };
            out.push(self.event(
                "kernel.network.connect_stats",
                sev,
                now,
                self.node_entity(),
                a,
            ));
        }
        // Spikes against the baseline.
        let spike =
            |v: f64, min: f64, base: f64, factor: f64| v >= min && (!warm || v >= base * factor);
        if spike(
            resets as f64,
            t.reset_min as f64,
            base.resets,
            t.reset_factor,
        ) {
            let mut a = dst_attrs();
            a.extend([
                ("resets", attr_i(resets)),
                ("baseline", AttrValue::Float(base.resets)),
            ]);
            out.push(self.event(
                "kernel.network.reset_storm",
                EventSeverity::Warning,
                now,
                self.node_entity(),
                a,
            ));
        }
        if spike(
            retrans as f64,
            t.retransmit_min as f64,
            base.retransmits,
            t.retransmit_factor,
        ) {
            let mut a = dst_attrs();
            a.extend([
                ("retransmits", attr_i(retrans)),
                ("baseline", AttrValue::Float(base.retransmits)),
            ]);
            out.push(self.event(
                "kernel.network.retransmit_spike",
                EventSeverity::Warning,
                now,
                self.node_entity(),
                a,
            ));
        }
        let rtt_ms = if successes > 0 {
            rtt_sum as f64 / successes as f64 / 1000.0
        } else {
            0.0
        };
        if successes >= t.rtt_min_samples
            && rtt_ms >= t.rtt_min_ms
            && (!warm || !base.rtt_seen || rtt_ms >= base.rtt_ms * t.rtt_factor)
        {
            let mut a = dst_attrs();
            a.extend([
                ("rtt_avg_ms", AttrValue::Float(rtt_ms)),
                ("baseline_ms", AttrValue::Float(base.rtt_ms)),
                ("samples", attr_i(successes)),
            ]);
            out.push(self.event(
                "kernel.network.rtt_degradation",
                EventSeverity::Warning,
                now,
                self.node_entity(),
                a,
            ));
        }
    }

    /// Moves the baseline of `dst` towards this interval's counts (an EWMA; the first
    /// interval, and the first with enough RTT samples, set it).
    fn update_baseline(&mut self, dst: &Destination, d: &[u64; DST_COUNTERS]) {
        let [_, successes, _, _, _, rtt_sum, retrans, resets] = *d;
        let rtt_ms = if successes > 0 {
            rtt_sum as f64 / successes as f64 / 1000.0
        } else {
            0.0
        };
        let t = &self.t;
        if let Some(b) = self.baselines.get_mut(dst) {
            let a = t.baseline_alpha;
            let ewma = |old: f64, new: f64, first: bool| {
                if first { new } else { old + a * (new - old) }
            };
            let first = b.intervals == 0;
            b.resets = ewma(b.resets, resets as f64, first);
            b.retransmits = ewma(b.retransmits, retrans as f64, first);
            if successes >= t.rtt_min_samples {
                b.rtt_ms = ewma(b.rtt_ms, rtt_ms, !b.rtt_seen);
                b.rtt_seen = true;
            }
            b.intervals = b.intervals.saturating_add(1);
        }
    }
    /// Per-device block statistics for one interval; kept for `/metrics`-style context.
    /// Returns (device, ios, errors, slow) deltas of active devices.
    pub fn block_interval(
        &mut self,
        cumulative: &[(u32, [u64; BLK_COUNTERS])],
    ) -> Vec<(u32, [u64; BLK_COUNTERS])> {
        let mut out = Vec::new();
        for (dev, cur) in cumulative {
            let last = self.blk_last.entry(*dev).or_insert([0; BLK_COUNTERS]);
            let mut d = [0u64; BLK_COUNTERS];
            for i in 0..BLK_COUNTERS {
                d[i] = if cur[i] >= last[i] {
                    cur[i] - last[i]
                } else {
                    cur[i]
                };
            }
            *last = *cur;
            if d[0] > 0 {
                out.push((*dev, d));
            }
        }
        if self.blk_last.len() > self.t.max_keys {
            self.blk_last.clear();
        }
        out
    }
}

pub fn errno_name(e: u32) -> &'static str {
    match e {
        111 => "ECONNREFUSED",
        110 => "ETIMEDOUT",
        113 => "EHOSTUNREACH",
        101 => "ENETUNREACH",
        104 => "ECONNRESET",
        103 => "ECONNABORTED",
        1 => "EPERM",
        13 => "EACCES",
        _ => "other",
    }
}

pub fn signal_name(s: u32) -> &'static str {
    match s {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        31 => "SIGSYS",
        _ => "other",
    }
}

/// Whether an address is the node talking to itself (kept: a local service refusing is
/// evidence too, but the attribute lets the server tell).
pub fn is_loopback(a: &IpAddr) -> bool {
    a.is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::Header;

    fn det(t: Thresholds) -> Detector {
        Detector::new(
            t,
            "node-1".into(),
            Clock {
                boot_epoch_ns: 1_700_000_000 * NS as i128,
            },
            Arc::new(Metrics::new()),
        )
    }

    fn refused(ts_s: f64, port: u16, pid: u32) -> ConnectRecord {
        ConnectRecord {
            header: Header {
                ts_ns: (ts_s * NS as f64) as u64,
                pid,
                tgid: pid,
                cgroup_id: 1,
                comm: format!("client{}", pid % 10),
            },
            src: "127.0.0.1".parse().expect("ip"),
            dst: "127.0.0.1".parse().expect("ip"),
            sport: 50000,
            dport: port,
            outcome: ConnectOutcome::Refused,
            sk_err: 111,
            waited_ns: 10_000,
        }
    }

    #[test]
    fn one_refusal_is_not_evidence_three_in_a_window_are() {
        let mut d = det(Thresholds::default());
        let mut r = NodeOnly("node-1".into());
        assert!(d.connect(&refused(1.0, 9, 10), &mut r).is_none());
        assert!(d.connect(&refused(2.0, 9, 10), &mut r).is_none());
        let ev = d
            .connect(&refused(3.0, 9, 10), &mut r)
            .expect("third refusal reports");
        assert_eq!(ev.kind.as_str(), "kernel.network.connection_refused");
        assert_eq!(ev.attributes.get("dst_port"), Some(&AttrValue::Int(9)));
        assert_eq!(ev.attributes.get("count"), Some(&AttrValue::Int(3)));
        assert_eq!(
            ev.attributes.get("comm"),
            Some(&AttrValue::String("client0".into()))
        );
        // Further refusals in the same window are counted, not reported again.
        assert!(d.connect(&refused(4.0, 9, 10), &mut r).is_none());
        // A new window reports again once the minimum is met.
        assert!(d.connect(&refused(12.0, 9, 10), &mut r).is_none());
        assert!(d.connect(&refused(12.1, 9, 10), &mut r).is_none());
        assert!(d.connect(&refused(12.2, 9, 10), &mut r).is_some());
    }

    #[test]
    fn refusals_spread_over_windows_never_report() {
        let mut d = det(Thresholds::default());
        let mut r = NodeOnly("node-1".into());
        for i in 0..10 {
            assert!(d.connect(&refused(i as f64 * 6.0, 9, 10), &mut r).is_none());
        }
    }

    #[test]
    fn a_restarting_client_is_one_caller() {
        let mut d = det(Thresholds::default());
        let mut r = NodeOnly("node-1".into());
        // pids 10, 20, 30: new processes, same name and cgroup.
        assert!(d.connect(&refused(1.0, 9, 10), &mut r).is_none());
        assert!(d.connect(&refused(1.1, 9, 20), &mut r).is_none());
        let ev = d
            .connect(&refused(1.2, 9, 30), &mut r)
            .expect("same caller");
        assert_eq!(ev.attributes.get("pid"), Some(&AttrValue::Int(30)));
    }

    #[test]
    fn different_processes_and_ports_count_separately() {
        let mut d = det(Thresholds::default());
        let mut r = NodeOnly("node-1".into());
        for (port, pid) in [(9, 1), (9, 2), (10, 1), (9, 1), (9, 2), (10, 1)] {
            assert!(d.connect(&refused(1.0, port, pid), &mut r).is_none());
        }
        assert!(d.connect(&refused(1.5, 9, 1), &mut r).is_some());
    }

    #[test]
    fn one_timeout_is_evidence_with_the_wait() {
        let mut d = det(Thresholds::default());
        let mut r = NodeOnly("node-1".into());
        let mut rec = refused(1.0, 443, 5);
        rec.outcome = ConnectOutcome::Timeout;
        rec.sk_err = 110;
        rec.waited_ns = 3_000_000_000;
        let ev = d.connect(&rec, &mut r).expect("timeout reports");
        assert_eq!(ev.kind.as_str(), "kernel.network.connection_timeout");
        assert_eq!(ev.attributes.get("waited_ms"), Some(&AttrValue::Int(3000)));
    }

    #[test]
    fn bounded_windows_evict_and_count() {
        let mut d = det(Thresholds {
            max_keys: 4,
            ..Thresholds::default()
        });
        let mut r = NodeOnly("node-1".into());
        for port in 0..100 {
            d.connect(&refused(1.0 + port as f64 * 0.001, port, 1), &mut r);
        }
        assert!(d.refused.map.len() <= 4);
        assert!(d.metrics.filter_state_evictions.get() > 0);
    }

    fn exit(status: u32, comm: &str, ts: f64) -> ExitRecord {
        ExitRecord {
            header: Header {
                ts_ns: (ts * NS as f64) as u64,
                pid: 7,
                tgid: 7,
                cgroup_id: 3,
                comm: comm.into(),
            },
            status,
        }
    }

    #[test]
    fn exits_report_code_or_signal_and_honour_the_ignore_lists() {
        let mut d = det(Thresholds::default());
        let mut r = NodeOnly("n".into());
        let ev = d.exit(&exit(0x300, "app", 1.0), &mut r).expect("exit 3");
        assert_eq!(ev.attributes.get("exit_code"), Some(&AttrValue::Int(3)));
        let ev = d.exit(&exit(9, "app", 1.0), &mut r).expect("killed");
        assert_eq!(ev.attributes.get("signal"), Some(&AttrValue::Int(9)));
        assert_eq!(
            ev.attributes.get("signal_name"),
            Some(&AttrValue::String("SIGKILL".into()))
        );
        assert!(d.exit(&exit(0x100, "grep", 1.0), &mut r).is_none());
        assert!(d.exit(&exit(15, "app", 1.0), &mut r).is_none());
        let ev = d.exit(&exit(11 | 0x80, "app", 1.0), &mut r).expect("segv");
        assert_eq!(ev.severity, EventSeverity::Error);
        assert_eq!(
            ev.attributes.get("core_dumped"),
            Some(&AttrValue::Bool(true))
        );
        // A crash loop within one window is one report.
        assert!(d.exit(&exit(0x300, "app", 2.0), &mut r).is_none());
    }

    fn stats(att: u64, ok: u64, refused: u64, rtt_us: u64, retrans: u64) -> [u64; DST_COUNTERS] {
        [att, ok, refused, 0, 0, rtt_us * ok, retrans, 0]
    }

    #[test]
    fn connect_stats_are_per_interval_deltas() {
        let mut d = det(Thresholds::default());
        let dst = Destination {
            addr: "10.0.0.1".parse().expect("ip"),
            port: 80,
        };
        let now = Utc::now();
        let ev = d.connect_interval(now, &[(dst, stats(10, 9, 1, 1000, 0))]);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].attributes.get("attempts"), Some(&AttrValue::Int(10)));
        assert_eq!(ev[0].attributes.get("refused"), Some(&AttrValue::Int(1)));
        let ev = d.connect_interval(now, &[(dst, stats(15, 13, 2, 1000, 0))]);
        assert_eq!(ev[0].attributes.get("attempts"), Some(&AttrValue::Int(5)));
        assert_eq!(ev[0].attributes.get("successes"), Some(&AttrValue::Int(4)));
        // Nothing new: nothing reported.
        assert!(
            d.connect_interval(now, &[(dst, stats(15, 13, 2, 1000, 0))])
                .is_empty()
        );
        // A counter going backwards (map entry evicted and re-created) counts from zero.
        let ev = d.connect_interval(now, &[(dst, stats(2, 2, 0, 1000, 0))]);
        assert_eq!(ev[0].attributes.get("attempts"), Some(&AttrValue::Int(2)));
    }

    #[test]
    fn a_retransmit_spike_needs_the_minimum_and_the_baseline_factor() {
        let mut d = det(Thresholds::default());
        let dst = Destination {
            addr: "10.0.0.2".parse().expect("ip"),
            port: 5432,
        };
        let now = Utc::now();
        let kinds = |ev: &[Event]| -> Vec<String> {
            ev.iter().map(|e| e.kind.as_str().to_owned()).collect()
        };
        let mut cum = [0u64; DST_COUNTERS];
        // A single retransmit is not a spike.
        cum[6] += 1;
        cum[0] += 1;
        assert!(
            !kinds(&d.connect_interval(now, &[(dst, cum)]))
                .contains(&"kernel.network.retransmit_spike".to_owned())
        );
        // A steady 30 per interval builds the baseline (first intervals report: absolute).
        for _ in 0..6 {
            cum[6] += 30;
            cum[0] += 1;
            d.connect_interval(now, &[(dst, cum)]);
        }
        // 40 is above the minimum but not 3× the ~30 baseline: not a spike.
        cum[6] += 40;
        cum[0] += 1;
        assert!(
            !kinds(&d.connect_interval(now, &[(dst, cum)]))
                .contains(&"kernel.network.retransmit_spike".to_owned())
        );
        // 200 is.
        cum[6] += 200;
        cum[0] += 1;
        assert!(
            kinds(&d.connect_interval(now, &[(dst, cum)]))
                .contains(&"kernel.network.retransmit_spike".to_owned())
        );
    }

    #[test]
    fn rtt_degradation_against_the_baseline() {
        let mut d = det(Thresholds::default());
        let dst = Destination {
            addr: "10.0.0.3".parse().expect("ip"),
            port: 443,
        };
        let now = Utc::now();
        let mut cum = [0u64; DST_COUNTERS];
        for _ in 0..5 {
            cum[0] += 10;
            cum[1] += 10;
            cum[5] += 10 * 20_000; // 20 ms
            let ev = d.connect_interval(now, &[(dst, cum)]);
            assert!(
                ev.iter()
                    .all(|e| e.kind.as_str() != "kernel.network.rtt_degradation")
            );
        }
        cum[0] += 10;
        cum[1] += 10;
        cum[5] += 10 * 90_000; // 90 ms: above 50 ms and 3× 20 ms
        let ev = d.connect_interval(now, &[(dst, cum)]);
        assert!(
            ev.iter()
                .any(|e| e.kind.as_str() == "kernel.network.rtt_degradation")
        );
    }

    #[test]
    fn validation_names_the_field() {
        let t = Thresholds {
            window_seconds: 0,
            ..Thresholds::default()
        };
        assert!(
            t.validate()
                .expect_err("refused")
                .contains("window_seconds")
        );
        let t = Thresholds {
            rtt_factor: 0.5,
            ..Thresholds::default()
        };
        assert!(t.validate().expect_err("refused").contains("rtt_factor"));
        assert!(Thresholds::default().validate().is_ok());
    }
}
