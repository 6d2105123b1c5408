//! Kernel limits that real outages come from, and CPU throttling of containers.
//!
//! Each limit is a pure parser (text in, reading out), a reader of the real file, and one
//! shared [`LimitWatcher`] that turns readings into events with a threshold, an error level,
//! hysteresis and a repeat interval. Container CPU throttling is [`parse_cpu_stat`] and
//! [`ThrottleWatcher`] over the cgroups [`find_container_cgroups`] finds.
//!
//! | limit | source | event |
//! |---|---|---|
//! | open files | `/proc/sys/fs/file-nr` | `node.limits.file_descriptors` |
//! | tasks | `/proc/loadavg` (threads) vs `kernel.pid_max` (or the lower `kernel.threads-max`) | `node.limits.pids` |
//! | connection tracking | `/proc/sys/net/netfilter/nf_conntrack_{count,max}` | `node.limits.conntrack` |
//! | inotify instances per user | `/proc/*/fd` links `anon_inode:inotify` vs `fs.inotify.max_user_instances` | `node.limits.inotify` |
//! | CPU throttling | cgroup `cpu.stat` (v2 `throttled_usec`, v1 `throttled_time`) | `kernel.container.cpu_throttled` |
//!
//! [`crate::node::NodeObserver`] drives them: the cheap single-file limits on every poll, the
//! inotify scan every `limits_interval_seconds`, the cgroup walk every
//! `cpu_throttle_interval_seconds`.
//!
//! The cgroup side (CPU throttling) is in [`throttle`]; the rest is here.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use tapio_proto::{AttrValue, Event, EventSeverity};

use crate::node::{NodeConfig, int, node_event, round4, seconds};

pub mod throttle;

pub use throttle::*;

/// Open files (allocated file handles) near `fs.file-max`.
pub const EVENT_FILE_DESCRIPTORS: &str = "node.limits.file_descriptors";
/// Tasks (threads) near `kernel.pid_max` / `kernel.threads-max`.
pub const EVENT_PIDS: &str = "node.limits.pids";
/// Connection tracking entries near `nf_conntrack_max`, or the kernel dropping packets
/// because the table is full.
pub const EVENT_CONNTRACK: &str = "node.limits.conntrack";
/// One user's inotify instances near `fs.inotify.max_user_instances`.
pub const EVENT_INOTIFY: &str = "node.limits.inotify";
/// A container spent a large share of its CFS periods throttled by its CPU limit.
pub const EVENT_CPU_THROTTLED: &str = "kernel.container.cpu_throttled";

/// What `/proc/<pid>/fd/<n>` points to for an inotify instance.
pub const INOTIFY_LINK: &str = "anon_inode:inotify";

// ---------------------------------------------------------------------------------------------
// Readings and the shared threshold policy
// ---------------------------------------------------------------------------------------------

/// A kernel limit the agent watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    FileDescriptors,
    Pids,
    Conntrack,
    Inotify,
}

impl Limit {
    pub const ALL: [Limit; 4] = [
        Limit::FileDescriptors,
        Limit::Pids,
        Limit::Conntrack,
        Limit::Inotify,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::FileDescriptors => "file_descriptors",
            Self::Pids => "pids",
            Self::Conntrack => "conntrack",
            Self::Inotify => "inotify",
        }
    }

    pub fn event_type(self) -> &'static str {
        match self {
            Self::FileDescriptors => EVENT_FILE_DESCRIPTORS,
            Self::Pids => EVENT_PIDS,
            Self::Conntrack => EVENT_CONNTRACK,
            Self::Inotify => EVENT_INOTIFY,
        }
    }

    fn index(self) -> usize {
        match self {
            Self::FileDescriptors => 0,
            Self::Pids => 1,
            Self::Conntrack => 2,
            Self::Inotify => 3,
        }
    }
}

/// One reading of a limit: how much is used of how much.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitReading {
    pub used: u64,
    pub max: u64,
    /// Attributes that say more about this reading (`uid` for inotify, `limit` for pids).
    pub extra: Vec<(&'static str, AttrValue)>,
}

impl LimitReading {
    pub fn new(used: u64, max: u64) -> Self {
        Self {
            used,
            max,
            extra: Vec::new(),
        }
    }

    /// `used / max`, clamped to 0–1 (root may allocate a few file handles past
    /// `file-max`); 0 when `max` is 0.
    pub fn ratio(&self) -> f64 {
        if self.max == 0 {
            0.0
        } else {
            (self.used as f64 / self.max as f64).clamp(0.0, 1.0)
        }
    }
}

/// When a limit is reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitPolicy {
    /// Reported (warning) when the ratio reaches this.
    pub threshold: f64,
    /// Error instead of warning at or above this ratio.
    pub error_ratio: f64,
    /// Re-armed (the episode ends) below `threshold - hysteresis`.
    pub hysteresis: f64,
    /// At most one event per this interval while the ratio stays at or above the threshold.
    pub repeat: TimeDelta,
}

impl LimitPolicy {
    /// The policy of `limit` from the `node` configuration section.
    pub fn from_config(limit: Limit, c: &NodeConfig) -> Self {
        let threshold = match limit {
            Limit::FileDescriptors => c.limits_fd_threshold,
            Limit::Pids => c.limits_pids_threshold,
            Limit::Conntrack => c.limits_conntrack_threshold,
            Limit::Inotify => c.limits_inotify_threshold,
        };
        Self {
            threshold,
            error_ratio: c.limits_error_ratio,
            hysteresis: c.limits_hysteresis,
            repeat: seconds(c.limits_interval_seconds),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct LimitState {
    /// Reported and not re-armed yet.
    active: bool,
    last_emit: Option<DateTime<Utc>>,
}

/// Turns limit readings into `node.limits.*` events.
///
/// A reading at or above the threshold starts an episode and is reported at once
/// (`warning`, or `error` at or above the error ratio). While the episode lasts, readings at
/// or above the threshold are reported at most once per repeat interval, with the severity
/// of that reading; readings between `threshold - hysteresis` and the threshold are quiet.
/// Below `threshold - hysteresis` the episode ends silently and the watcher is re-armed, so
/// the next crossing is reported at once again.
///
/// Attributes: `used` (int), `max` (int), `ratio` (float 0–1), `threshold` (float), plus the
/// reading's own (`uid`, `limit`).
#[derive(Debug, Clone)]
pub struct LimitWatcher {
    node: String,
    policies: [LimitPolicy; 4],
    state: [LimitState; 4],
}

impl LimitWatcher {
    pub fn new(node: impl Into<String>, config: &NodeConfig) -> Self {
        Self::with_policies(
            node,
            Limit::ALL.map(|l| LimitPolicy::from_config(l, config)),
        )
    }

    /// `policies` in the order of [`Limit::ALL`].
    pub fn with_policies(node: impl Into<String>, policies: [LimitPolicy; 4]) -> Self {
        Self {
            node: node.into(),
            policies,
            state: [LimitState::default(); 4],
        }
    }

    pub fn policy(&self, limit: Limit) -> LimitPolicy {
        self.policies[limit.index()]
    }

    /// Whether `limit` is in a reported episode (not re-armed yet).
    pub fn is_active(&self, limit: Limit) -> bool {
        self.state[limit.index()].active
    }

    /// Feeds one reading taken at `now`; returns the event to emit, if any.
    pub fn observe(
        &mut self,
        limit: Limit,
        reading: &LimitReading,
        now: DateTime<Utc>,
    ) -> Option<Event> {
        let p = self.policies[limit.index()];
        let st = &mut self.state[limit.index()];
        let ratio = reading.ratio();
        if st.active {
            if ratio < p.threshold - p.hysteresis {
                st.active = false;
                return None;
            }
            if ratio < p.threshold {
                return None;
            }
            // A clock that went back does not silence the limit.
            if st.last_emit.is_some_and(|t| now >= t && now - t < p.repeat) {
                return None;
            }
        } else {
            if ratio < p.threshold {
                return None;
            }
            st.active = true;
        }
        st.last_emit = Some(now);
        let severity = if ratio >= p.error_ratio {
            EventSeverity::Error
        } else {
            EventSeverity::Warning
        };
        node_event(
            &self.node,
            limit.event_type(),
            severity,
            now,
            limit_attributes(reading, p.threshold),
        )
    }
}

/// `used`, `max`, `ratio`, `threshold` and the reading's own attributes.
pub fn limit_attributes(reading: &LimitReading, threshold: f64) -> BTreeMap<String, AttrValue> {
    let mut attrs = BTreeMap::new();
    attrs.insert("used".into(), int(reading.used));
    attrs.insert("max".into(), int(reading.max));
    attrs.insert("ratio".into(), AttrValue::Float(round4(reading.ratio())));
    attrs.insert("threshold".into(), AttrValue::Float(threshold));
    for (k, v) in &reading.extra {
        attrs.insert((*k).to_owned(), v.clone());
    }
    attrs
}

// ---------------------------------------------------------------------------------------------
// Parsers and readers of the single-file limits
// ---------------------------------------------------------------------------------------------

fn number(field: &str, what: &str) -> Result<u64, String> {
    field
        .trim()
        .parse()
        .map_err(|_| format!("{what}: {field:?} is not a number"))
}

/// `/proc/sys/fs/file-nr`: `allocated  free  max` (tab-separated; `free` is always 0 since
/// Linux 2.6). Used is allocated − free.
pub fn parse_file_nr(text: &str) -> Result<LimitReading, String> {
    let f: Vec<&str> = text.split_whitespace().collect();
    let [allocated, free, max] = f.as_slice() else {
        return Err(format!("file-nr {text:?} is not `allocated free max`"));
    };
    let allocated = number(allocated, "file-nr allocated")?;
    let free = number(free, "file-nr free")?;
    let max = number(max, "file-nr max")?;
    if max == 0 {
        return Err("file-nr max is 0".to_owned());
    }
    Ok(LimitReading::new(allocated.saturating_sub(free), max))
}

/// A file holding one number (`pid_max`, `threads-max`, `nf_conntrack_count`, ...).
pub fn parse_number_file(text: &str) -> Result<u64, String> {
    number(text, "value")
}

/// `/proc/loadavg`: `0.43 0.82 1.20 3/149 16715`; the 4th field is runnable/total
/// scheduling entities (threads, system-wide). Returns the total.
pub fn parse_loadavg_tasks(text: &str) -> Result<u64, String> {
    let field = text
        .split_whitespace()
        .nth(3)
        .ok_or_else(|| format!("loadavg {text:?} has no 4th field"))?;
    let (_, total) = field
        .split_once('/')
        .ok_or_else(|| format!("loadavg field {field:?} is not running/total"))?;
    number(total, "loadavg total")
}

/// Tasks against the lower of `pid_max` and `threads-max` (every thread takes a pid; the
/// attribute `limit` names which bound applies).
pub fn pids_reading(tasks: u64, pid_max: u64, threads_max: Option<u64>) -> LimitReading {
    let (max, limit) = match threads_max {
        Some(t) if t > 0 && t < pid_max => (t, "kernel.threads-max"),
        _ => (pid_max, "kernel.pid_max"),
    };
    let mut r = LimitReading::new(tasks, max);
    r.extra.push(("limit", limit.into()));
    r
}

fn invalid(path: &Path, e: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {e}", path.display()),
    )
}

fn read_with<T>(path: &Path, parse: impl Fn(&str) -> Result<T, String>) -> io::Result<T> {
    let text = std::fs::read_to_string(path)?;
    parse(&text).map_err(|e| invalid(path, e))
}

/// `<proc>/sys/fs/file-nr`.
pub fn read_file_descriptors(proc_root: &Path) -> io::Result<LimitReading> {
    read_with(&proc_root.join("sys/fs/file-nr"), parse_file_nr)
}

/// `<proc>/loadavg` against `<proc>/sys/kernel/pid_max` and `threads-max`.
pub fn read_pids(proc_root: &Path) -> io::Result<LimitReading> {
    let tasks = read_with(&proc_root.join("loadavg"), parse_loadavg_tasks)?;
    let pid_max = read_with(&proc_root.join("sys/kernel/pid_max"), parse_number_file)?;
    let threads_max = read_with(&proc_root.join("sys/kernel/threads-max"), parse_number_file).ok();
    Ok(pids_reading(tasks, pid_max, threads_max))
}

/// `<proc>/sys/net/netfilter/nf_conntrack_{count,max}`; `NotFound` when the conntrack
/// module is not loaded. The count is that of the reader's network namespace.
pub fn read_conntrack(proc_root: &Path) -> io::Result<LimitReading> {
    let dir = proc_root.join("sys/net/netfilter");
    let count = read_with(&dir.join("nf_conntrack_count"), parse_number_file)?;
    let max = read_with(&dir.join("nf_conntrack_max"), parse_number_file)?;
    Ok(LimitReading::new(count, max))
}

/// `<proc>/sys/fs/inotify/max_user_instances`.
pub fn read_inotify_max(proc_root: &Path) -> io::Result<u64> {
    read_with(
        &proc_root.join("sys/fs/inotify/max_user_instances"),
        parse_number_file,
    )
}

// ---------------------------------------------------------------------------------------------
// inotify instances per user
// ---------------------------------------------------------------------------------------------

/// The result of one bounded walk over `/proc/*/fd`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InotifyScan {
    /// inotify instances (fds linking to `anon_inode:inotify`) by effective uid.
    pub instances_by_uid: BTreeMap<u32, u64>,
    /// Processes whose fd directory was listed.
    pub processes: usize,
    /// Processes skipped: gone, or fds not readable (only what can be read is counted).
    pub unreadable: usize,
    /// fd links read.
    pub fds: usize,
    /// The walk stopped at the process or fd bound; counts are then lower bounds.
    pub truncated: bool,
}

/// The effective uid from `/proc/<pid>/status` (`Uid:\treal\teffective\tsaved\tfs`): the
/// uid an inotify instance is charged to.
pub fn parse_status_euid(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Counts inotify instances per user under `proc_root`, listing at most `max_processes`
/// processes and reading at most `max_fds` fd links. An instance inherited by a child (or
/// `dup`ed) is counted once per fd, as the kernel cannot tell them apart through procfs;
/// that errs towards reporting. Fails only when `proc_root` cannot be listed.
pub fn scan_inotify(
    proc_root: &Path,
    max_processes: usize,
    max_fds: usize,
) -> io::Result<InotifyScan> {
    let mut scan = InotifyScan::default();
    'procs: for entry in std::fs::read_dir(proc_root)?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if scan.processes >= max_processes {
            scan.truncated = true;
            break;
        }
        let dir = proc_root.join(pid);
        let fds = match std::fs::read_dir(dir.join("fd")) {
            Ok(fds) => fds,
            Err(_) => {
                scan.unreadable += 1;
                continue;
            }
        };
        scan.processes += 1;
        let mut instances = 0u64;
        for fd in fds.flatten() {
            if scan.fds >= max_fds {
                scan.truncated = true;
                if instances > 0 {
                    add_instances(&mut scan, &dir, instances);
                }
                break 'procs;
            }
            scan.fds += 1;
            if std::fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == INOTIFY_LINK) {
                instances += 1;
            }
        }
        if instances > 0 {
            add_instances(&mut scan, &dir, instances);
        }
    }
    Ok(scan)
}

fn add_instances(scan: &mut InotifyScan, proc_dir: &Path, n: u64) {
    let uid = std::fs::read_to_string(proc_dir.join("status"))
        .ok()
        .and_then(|s| parse_status_euid(&s))
        .or_else(|| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(proc_dir).ok().map(|m| m.uid())
        });
    match uid {
        Some(uid) => *scan.instances_by_uid.entry(uid).or_default() += n,
        None => scan.unreadable += 1, // exited between the two reads
    }
}

/// The user with the most instances against `max` (`fs.inotify.max_user_instances`), with
/// the attribute `uid`; `used` 0 and no `uid` when nobody holds one.
pub fn inotify_reading(scan: &InotifyScan, max: u64) -> LimitReading {
    let mut worst: Option<(u32, u64)> = None;
    for (&uid, &n) in &scan.instances_by_uid {
        if worst.is_none_or(|(_, w)| n > w) {
            worst = Some((uid, n));
        }
    }
    match worst {
        Some((uid, n)) => {
            let mut r = LimitReading::new(n, max);
            r.extra.push(("uid", AttrValue::Int(uid.into())));
            r
        }
        None => LimitReading::new(0, max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::path::PathBuf;
    use std::time::Duration;

    pub(crate) fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0)
            .single()
            .expect("valid time")
    }

    pub(crate) fn f(ev: &Event, key: &str) -> f64 {
        ev.attr_f64(key)
            .unwrap_or_else(|| panic!("attribute {key} missing in {ev:?}"))
    }

    pub(crate) fn s(ev: &Event, key: &str) -> String {
        ev.attr_str(key)
            .unwrap_or_else(|| panic!("attribute {key} missing in {ev:?}"))
    }

    /// The event passes the server's own validation (type name, attribute keys and sizes).
    pub(crate) fn assert_valid(ev: &Event) {
        let body = serde_json::to_vec(ev).expect("json");
        tapio_proto::decode_single_event(&body, ev.time, &tapio_proto::Limits::default())
            .unwrap_or_else(|e| panic!("{ev:?} does not validate: {e}"));
    }

    #[test]
    fn event_type_constants_are_valid() {
        for k in [
            EVENT_FILE_DESCRIPTORS,
            EVENT_PIDS,
            EVENT_CONNTRACK,
            EVENT_INOTIFY,
            EVENT_CPU_THROTTLED,
        ] {
            assert!(tapio_proto::EventType::parse(k).is_ok(), "{k}");
        }
        for l in Limit::ALL {
            assert!(l.event_type().ends_with(l.as_str()));
        }
    }

    // --- parsers -----------------------------------------------------------------------------

    #[test]
    fn file_nr_as_the_kernel_prints_it() {
        // fs/file_table.c: "%lu\t%lu\t%lu\n" (allocated, 0, max).
        let r = parse_file_nr("1712\t0\t2466239\n").expect("file-nr");
        assert_eq!((r.used, r.max), (1712, 2_466_239));
        assert!((r.ratio() - 1712.0 / 2_466_239.0).abs() < 1e-12);
        // fs.file-max defaults to LONG_MAX on some distributions.
        let r = parse_file_nr("3456\t0\t9223372036854775807\n").expect("huge max");
        assert_eq!(r.max, i64::MAX as u64);
        assert!(r.ratio() < 1e-12);
        // Root may pass file-max a little: the ratio stays within 0–1.
        assert_eq!(parse_file_nr("1001\t0\t1000\n").expect("over").ratio(), 1.0);
        assert!(parse_file_nr("").is_err());
        assert!(parse_file_nr("1 2").is_err());
        assert!(parse_file_nr("a\t0\t10").is_err());
        assert!(parse_file_nr("1\t0\t0").is_err());
    }

    #[test]
    fn loadavg_pid_max_and_threads_max() {
        assert_eq!(
            parse_loadavg_tasks("0.43 0.82 1.20 3/149 16715\n").expect("loadavg"),
            149
        );
        assert!(parse_loadavg_tasks("0.43 0.82 1.20").is_err());
        assert!(parse_loadavg_tasks("0.43 0.82 1.20 3 1").is_err());
        assert_eq!(parse_number_file("32768\n").expect("pid_max"), 32768);
        assert!(parse_number_file("").is_err());
        let r = pids_reading(149, 32768, Some(192_735));
        assert_eq!((r.used, r.max), (149, 32768));
        assert_eq!(r.extra, vec![("limit", AttrValue::from("kernel.pid_max"))]);
        let r = pids_reading(900, 4_194_304, Some(1000));
        assert_eq!(r.max, 1000);
        assert_eq!(
            r.extra,
            vec![("limit", AttrValue::from("kernel.threads-max"))]
        );
        assert!((r.ratio() - 0.9).abs() < 1e-12);
        assert_eq!(pids_reading(1, 100, None).max, 100);
    }

    #[test]
    fn limit_readers_on_a_fake_proc() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        for d in ["sys/fs/inotify", "sys/kernel", "sys/net/netfilter"] {
            std::fs::create_dir_all(p.join(d)).expect("mkdir");
        }
        std::fs::write(p.join("sys/fs/file-nr"), "950\t0\t1000\n").expect("w");
        std::fs::write(p.join("loadavg"), "1.00 1.00 1.00 2/29500 999\n").expect("w");
        std::fs::write(p.join("sys/kernel/pid_max"), "32768\n").expect("w");
        std::fs::write(p.join("sys/fs/inotify/max_user_instances"), "128\n").expect("w");
        let fd = read_file_descriptors(p).expect("fds");
        assert_eq!((fd.used, fd.max), (950, 1000));
        let pids = read_pids(p).expect("pids without threads-max");
        assert_eq!((pids.used, pids.max), (29500, 32768));
        assert_eq!(
            read_conntrack(p).expect_err("module not loaded").kind(),
            io::ErrorKind::NotFound
        );
        std::fs::write(p.join("sys/net/netfilter/nf_conntrack_count"), "262000\n").expect("w");
        std::fs::write(p.join("sys/net/netfilter/nf_conntrack_max"), "262144\n").expect("w");
        let ct = read_conntrack(p).expect("conntrack");
        assert_eq!((ct.used, ct.max), (262_000, 262_144));
        assert_eq!(read_inotify_max(p).expect("max"), 128);
        std::fs::write(p.join("sys/fs/file-nr"), "garbage\n").expect("w");
        let e = read_file_descriptors(p).expect_err("garbage");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("file-nr"), "{e}");
    }

    // --- threshold, error level, hysteresis, repeat ------------------------------------------

    fn policy(threshold: f64) -> LimitPolicy {
        LimitPolicy {
            threshold,
            error_ratio: 0.98,
            hysteresis: 0.05,
            repeat: TimeDelta::seconds(30),
        }
    }

    fn watcher() -> LimitWatcher {
        LimitWatcher::with_policies("n1", [policy(0.9); 4])
    }

    fn per_mille(used: u64) -> LimitReading {
        LimitReading::new(used, 1000)
    }

    #[test]
    fn limit_threshold_repeat_and_hysteresis() {
        let fd = Limit::FileDescriptors;
        let mut w = watcher();
        assert!(w.observe(fd, &per_mille(899), t(0)).is_none());
        let ev = w.observe(fd, &per_mille(900), t(1)).expect("crossing");
        assert_eq!(ev.kind.as_str(), "node.limits.file_descriptors");
        assert_eq!(ev.severity, EventSeverity::Warning);
        assert_eq!(ev.entity.node.as_deref(), Some("n1"));
        assert_eq!(f(&ev, "used"), 900.0);
        assert_eq!(f(&ev, "max"), 1000.0);
        assert_eq!(f(&ev, "ratio"), 0.9);
        assert_eq!(f(&ev, "threshold"), 0.9);
        assert!(matches!(ev.attributes["used"], AttrValue::Int(900)));
        assert!(matches!(ev.attributes["ratio"], AttrValue::Float(_)));
        assert_valid(&ev);
        assert!(w.is_active(fd));
        // Still above: at most once per interval (30 s), even when it reaches error.
        assert!(w.observe(fd, &per_mille(950), t(10)).is_none());
        assert!(w.observe(fd, &per_mille(990), t(30)).is_none());
        let ev = w.observe(fd, &per_mille(990), t(31)).expect("repeat");
        assert_eq!(ev.severity, EventSeverity::Error);
        // In the hysteresis band (0.85–0.90): quiet, not re-armed.
        assert!(w.observe(fd, &per_mille(860), t(100)).is_none());
        assert!(w.is_active(fd));
        // Back above after the band: a repeat of the same episode, rate-limited.
        let ev = w.observe(fd, &per_mille(920), t(101)).expect("repeat");
        assert_eq!(ev.severity, EventSeverity::Warning);
        assert!(w.observe(fd, &per_mille(860), t(102)).is_none());
        assert!(
            w.observe(fd, &per_mille(920), t(103)).is_none(),
            "rate-limited"
        );
        // Below 0.85: re-armed, silently; the next crossing is reported at once.
        assert!(w.observe(fd, &per_mille(849), t(104)).is_none());
        assert!(!w.is_active(fd));
        let ev = w.observe(fd, &per_mille(985), t(105)).expect("new episode");
        assert_eq!(ev.severity, EventSeverity::Error);
        // Limits are independent.
        assert!(!w.is_active(Limit::Pids));
        assert!(w.observe(Limit::Pids, &per_mille(100), t(105)).is_none());
    }

    #[test]
    fn limit_policy_from_config_and_extra_attributes() {
        let c = NodeConfig {
            limits_conntrack_threshold: 0.8,
            limits_interval_seconds: 60,
            ..NodeConfig::default()
        };
        let p = LimitPolicy::from_config(Limit::Conntrack, &c);
        assert_eq!(p.threshold, 0.8);
        assert_eq!(p.error_ratio, 0.98);
        assert_eq!(p.hysteresis, 0.05);
        assert_eq!(p.repeat, TimeDelta::seconds(60));
        assert_eq!(LimitPolicy::from_config(Limit::Pids, &c).threshold, 0.9);
        let mut w = LimitWatcher::new("n1", &c);
        let ev = w
            .observe(Limit::Conntrack, &LimitReading::new(81, 100), t(0))
            .expect("conntrack");
        assert_eq!(ev.kind.as_str(), "node.limits.conntrack");
        let mut r = pids_reading(95, 100, None);
        r.extra.push(("uid", AttrValue::Int(0)));
        let ev = w.observe(Limit::Pids, &r, t(0)).expect("pids");
        assert_eq!(s(&ev, "limit"), "kernel.pid_max");
        assert_eq!(f(&ev, "uid"), 0.0);
        assert_valid(&ev);
    }

    // --- inotify ------------------------------------------------------------------------------

    #[test]
    fn status_effective_uid() {
        let status = "Name:\tcat\nUmask:\t0022\nState:\tR (running)\nTgid:\t4711\nPid:\t4711\n\
                      PPid:\t1\nTracerPid:\t0\nUid:\t1000\t65534\t1000\t1000\nGid:\t0\t0\t0\t0\n";
        assert_eq!(parse_status_euid(status), Some(65534));
        assert_eq!(parse_status_euid("Name:\tx\n"), None);
    }

    fn fake_process(root: &Path, pid: u32, euid: u32, links: &[&str]) {
        let dir = root.join(pid.to_string());
        std::fs::create_dir_all(dir.join("fd")).expect("mkdir");
        std::fs::write(
            dir.join("status"),
            format!("Name:\tp{pid}\nUid:\t{euid}\t{euid}\t{euid}\t{euid}\n"),
        )
        .expect("status");
        for (i, target) in links.iter().enumerate() {
            std::os::unix::fs::symlink(target, dir.join("fd").join(i.to_string()))
                .expect("symlink");
        }
    }

    #[test]
    fn inotify_scan_counts_per_user_and_is_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        fake_process(
            p,
            10,
            0,
            &["/dev/null", INOTIFY_LINK, INOTIFY_LINK, "pipe:[1]"],
        );
        fake_process(p, 11, 0, &[INOTIFY_LINK]);
        fake_process(
            p,
            12,
            1000,
            &[INOTIFY_LINK, "anon_inode:[eventpoll]", "socket:[9]"],
        );
        fake_process(p, 13, 1000, &[]);
        std::fs::create_dir(p.join("self")).expect("not a pid");
        std::fs::create_dir(p.join("14")).expect("a process whose fds cannot be read");
        let scan = scan_inotify(p, 100, 100).expect("scan");
        assert_eq!(scan.instances_by_uid, BTreeMap::from([(0, 3), (1000, 1)]));
        assert_eq!(scan.processes, 4);
        assert_eq!(scan.unreadable, 1);
        assert_eq!(scan.fds, 8);
        assert!(!scan.truncated);
        let r = inotify_reading(&scan, 128);
        assert_eq!((r.used, r.max), (3, 128));
        assert_eq!(r.extra, vec![("uid", AttrValue::Int(0))]);
        // Bounded: at most 2 processes, or 5 fds; what was seen is still counted.
        let scan = scan_inotify(p, 2, 100).expect("scan");
        assert!(scan.truncated);
        assert_eq!(scan.processes, 2);
        let scan = scan_inotify(p, 100, 5).expect("scan");
        assert!(scan.truncated);
        assert_eq!(scan.fds, 5);
        assert!(scan.instances_by_uid.values().sum::<u64>() >= 1);
        // Nobody holds one: used 0, no uid.
        let r = inotify_reading(&InotifyScan::default(), 128);
        assert_eq!((r.used, r.max), (0, 128));
        assert!(r.extra.is_empty());
        assert!(scan_inotify(&p.join("missing"), 1, 1).is_err());
    }

    // --- this machine's kernel -----------------------------------------------------------------

    #[test]
    fn reads_this_kernels_file_nr_pids_conntrack_and_inotify() {
        let proc = Path::new("/proc");
        let fd = read_file_descriptors(proc).expect("/proc/sys/fs/file-nr");
        assert!(fd.max > 0 && fd.used > 0, "{fd:?}");
        assert!((0.0..=1.0).contains(&fd.ratio()));
        let pids = read_pids(proc).expect("/proc/loadavg and kernel.pid_max");
        assert!(pids.max > 0 && pids.used > 0, "{pids:?}");
        assert!((0.0..=1.0).contains(&pids.ratio()));
        match read_conntrack(proc) {
            Ok(ct) => {
                assert!(ct.max > 0, "{ct:?}");
                assert!((0.0..=1.0).contains(&ct.ratio()));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                eprintln!("nf_conntrack is not loaded on this kernel: conntrack fill not read")
            }
            Err(e) => panic!("conntrack: {e}"),
        }
        let max = read_inotify_max(proc).expect("fs.inotify.max_user_instances");
        assert!(max > 0);
        // A process of ours that holds an inotify instance: GNU tail -f watches its file.
        let file = tempfile::NamedTempFile::new().expect("tempfile");
        let mut tail = std::process::Command::new("tail")
            .arg("-f")
            .arg(file.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("tail -f");
        let fd_dir = PathBuf::from(format!("/proc/{}/fd", tail.id()));
        let mut holds = false;
        for _ in 0..100 {
            holds = std::fs::read_dir(&fd_dir).is_ok_and(|d| {
                d.flatten().any(|e| {
                    std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == INOTIFY_LINK)
                })
            });
            if holds {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let scan = scan_inotify(proc, 1_000_000, 10_000_000).expect("scan /proc");
        let _ = tail.kill();
        let _ = tail.wait();
        assert!(holds, "tail -f did not open an inotify instance");
        assert!(scan.processes > 0 && scan.fds > 0, "{scan:?}");
        let euid = nix::unistd::geteuid().as_raw();
        assert!(
            scan.instances_by_uid.get(&euid).copied().unwrap_or(0) >= 1,
            "{scan:?}"
        );
        let r = inotify_reading(&scan, max);
        assert!(r.used >= 1 && (0.0..=1.0).contains(&r.ratio()), "{r:?}");
    }
}
