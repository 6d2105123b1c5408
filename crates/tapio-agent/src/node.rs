//! Node observers that need no BPF: pressure stall information (PSI), filesystem fill, the
//! kernel log (`/dev/kmsg`), kernel limits and container CPU throttling.
//!
//! They run on every node, and they are what the agent still sees when its BPF programs
//! cannot be loaded. Each observer is a pure core (text in, facts out, clock injected) and a
//! thin reader of the real file, so every decision is tested without a kernel:
//!
//! | source | core | reader | events |
//! |---|---|---|---|
//! | `/proc/pressure/{cpu,memory,io}` | [`parse_psi`], [`PsiWatcher`] | [`read_psi`] | `node.pressure.cpu`, `node.pressure.memory`, `node.pressure.io` |
//! | `/proc/self/mountinfo` + `statvfs` | [`parse_mountinfo`], [`select_filesystems`], [`FillWatcher`] | [`stat_filesystem`] | `node.filesystem.nearly_full` |
//! | `/dev/kmsg` | [`parse_kmsg_records`], [`classify_kmsg`], [`parse_fs_error`], [`KmsgClassifier`] | [`KmsgReader`] | `node.kernel.hung_task`, `kernel.storage.io_error`, `kernel.container.oom_kill`, `node.kernel.fs_error`, `node.kernel.soft_lockup`, `node.limits.conntrack` (table full) |
//! | `/proc/sys/...`, `/proc/loadavg`, `/proc/*/fd` | [`crate::limits`] parsers, [`LimitWatcher`] | [`crate::limits`] readers | `node.limits.file_descriptors`, `node.limits.pids`, `node.limits.conntrack`, `node.limits.inotify` |
//! | cgroup `cpu.stat` | [`crate::limits::parse_cpu_stat`], [`ThrottleWatcher`] | [`crate::limits::find_container_cgroups`] | `kernel.container.cpu_throttled` |
//!
//! [`NodeObserver`] combines them, polled by the caller with the current time, and
//! reports through [`NodeObserver::status`] which sources work and, for those that do not,
//! why. Every threshold and default is a documented field of [`NodeConfig`].
//!
//! Conditions (pressure, a filling filesystem) are reported once when they start, again every
//! repeat interval while they last, and not at all when they end: the absence of repeats is
//! the end. Watchers keep their state across that, so a condition that clears and comes back
//! is reported as new.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tapio_proto::{AttrValue, Entity, Event, EventSeverity, EventType};
use ulid::Ulid;

use crate::enrich::SharedPods;
use crate::limits::{
    self, EVENT_CONNTRACK, InotifyScan, Limit, LimitReading, LimitWatcher, ThrottleConfig,
    ThrottleWatcher,
};
use crate::metrics::Metrics;

/// CPU pressure sustained above its threshold.
pub const EVENT_PRESSURE_CPU: &str = "node.pressure.cpu";
/// Memory pressure sustained above its threshold.
pub const EVENT_PRESSURE_MEMORY: &str = "node.pressure.memory";
/// I/O pressure sustained above its threshold.
pub const EVENT_PRESSURE_IO: &str = "node.pressure.io";
/// A block filesystem (space or inodes) above its fill threshold.
pub const EVENT_FILESYSTEM_NEARLY_FULL: &str = "node.filesystem.nearly_full";
/// The kernel's hung-task detector reported a task blocked in D state.
pub const EVENT_HUNG_TASK: &str = "node.kernel.hung_task";
/// The kernel logged a storage I/O error (block layer, buffer cache or filesystem).
pub const EVENT_IO_ERROR: &str = "kernel.storage.io_error";
/// The kernel OOM killer killed a process.
pub const EVENT_OOM_KILL: &str = "kernel.container.oom_kill";
/// A filesystem reported an error (ext4, XFS, btrfs), or was remounted read-only.
pub const EVENT_FS_ERROR: &str = "node.kernel.fs_error";
/// A CPU was stuck in the kernel (soft lockup watchdog) or RCU detected a stall.
pub const EVENT_SOFT_LOCKUP: &str = "node.kernel.soft_lockup";

/// Value of the `observer` attribute on facts read from the kernel log.
const OBSERVER_KMSG: &str = "kmsg";

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// Settings of the node observers. Every field has a default, so an empty section is valid;
/// unknown fields are refused. Durations are whole seconds, percentages are 0–100.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Watch pressure stall information. Default `true`.
    pub psi_enabled: bool,
    /// Directory holding the PSI files `cpu`, `memory` and `io`. Default `/proc/pressure`.
    /// PSI is system-wide, so the container's own `/proc` serves.
    pub psi_dir: PathBuf,
    /// CPU pressure threshold on `some avg10`, in percent. Default `80`: some runnable task
    /// waited for a CPU during 80 % of the last 10 s. Busy but healthy nodes routinely sit at
    /// 10–40 %, so only real saturation crosses it.
    pub psi_cpu_threshold_percent: f64,
    /// Memory pressure threshold on `some avg10`, in percent. Default `20`: tasks stalled on
    /// reclaim or refaults a fifth of the time, which is already thrashing (healthy nodes sit
    /// near 0 %).
    pub psi_memory_threshold_percent: f64,
    /// I/O pressure threshold on `some avg10`, in percent. Default `30`: tasks waited on
    /// block I/O almost a third of the time; lower values fire on ordinary busy disks.
    pub psi_io_threshold_percent: f64,
    /// How long `some avg10` must stay at or above the threshold, across consecutive polls,
    /// before pressure is reported. Default `30` (a single spike of a 10 s average is not
    /// sustained pressure). `0` reports on the first poll at or above the threshold.
    pub psi_sustain_seconds: u64,
    /// Hysteresis: reported pressure ends only when `some avg10` falls below
    /// threshold × this ratio. Default `0.5`. Must be in (0, 1]; `1` disables hysteresis.
    pub psi_clear_ratio: f64,
    /// While pressure lasts (until it clears), the event is repeated this often so the server
    /// sees it is still going on. Default `300` (5 min). `0` repeats on every poll.
    pub psi_repeat_seconds: u64,

    /// Watch filesystem fill. Default `true`.
    pub fs_enabled: bool,
    /// Mount table to read. Default `/proc/self/mountinfo`. In a container that should see
    /// the host's filesystems, use `/proc/1/mountinfo` (with `hostPID`) and set `fs_root`.
    pub fs_mountinfo_path: PathBuf,
    /// Prefix under which the mount points of `fs_mountinfo_path` are reachable for
    /// `statvfs`. Default `/`. With the host's mount table read through `/proc/1/mountinfo`,
    /// use `/proc/1/root` (or wherever the host root is mounted, e.g. `/host`).
    pub fs_root: PathBuf,
    /// Filesystem types that are real block filesystems and are watched; everything else
    /// (proc, sysfs, tmpfs, overlay, cgroup, cgroup2, nsfs, squashfs, bpf, tracefs, devtmpfs,
    /// network and FUSE filesystems, ...) is skipped. Default: ext2, ext3, ext4, xfs, btrfs,
    /// zfs, f2fs, vfat, exfat, ntfs3, jfs, reiserfs, bcachefs, nilfs2.
    pub fs_types: Vec<String>,
    /// Skip mounts that are read-only (nothing writes to them, so their fill cannot cause
    /// failures). Default `true`.
    pub fs_skip_read_only: bool,
    /// How often the mount table is re-read and every filesystem is `statvfs`ed, in seconds.
    /// Default `30`. The first poll always checks.
    pub fs_check_interval_seconds: u64,
    /// Warning when the used share of the space available to unprivileged users (what `df`
    /// shows as Use%) or the used share of inodes reaches this percentage. Default `90`.
    pub fs_warning_percent: f64,
    /// Error when either share reaches this percentage. Default `97`.
    pub fs_error_percent: f64,
    /// Hysteresis in percentage points: a reported filesystem is no longer nearly full once
    /// both shares are below `fs_warning_percent` minus this, and drops from error to warning
    /// once below `fs_error_percent` minus this. Default `2`.
    pub fs_hysteresis_percent: f64,
    /// While a filesystem stays nearly full, the event is repeated this often. Default `300`.
    /// A rise from warning to error is reported at once. `0` repeats on every check.
    pub fs_repeat_seconds: u64,

    /// Read the kernel log. Default `true`. Needs `CAP_SYSLOG` (or `kernel.dmesg_restrict=0`)
    /// and the host's `/dev/kmsg` in the container.
    pub kmsg_enabled: bool,
    /// Kernel log device. Default `/dev/kmsg`.
    pub kmsg_path: PathBuf,
    /// Report OOM kills seen in the kernel log. Default `true`. Turn off (or call
    /// [`NodeObserver::set_emit_oom`]) while the BPF OOM observer is attached, so each kill is
    /// reported once.
    pub kmsg_emit_oom: bool,
    /// Report storage I/O errors seen in the kernel log. Default `true`. Turn off (or call
    /// [`NodeObserver::set_emit_io_errors`]) while the BPF block I/O observer is attached.
    /// Hung tasks are always reported.
    pub kmsg_emit_io_errors: bool,
    /// Device name prefixes whose I/O errors are ignored, e.g. `["loop", "sr", "fd"]` for
    /// loop devices, optical and floppy drives. Default: none ignored.
    pub kmsg_ignore_io_devices: Vec<String>,
    /// The kernel logs an OOM kill as an `oom-kill:` summary record followed by a
    /// `Killed process` record; both are merged into one event. A summary whose partner has
    /// not arrived within this many seconds is reported alone. Default `2`.
    pub kmsg_oom_merge_seconds: u64,
    /// Most kernel log records read per poll, so a flood cannot stall the agent; the rest is
    /// read on the next poll (or, if the kernel overwrites it first, counted as lost).
    /// Default `10000`.
    pub kmsg_max_records_per_poll: usize,
    /// Filesystem errors and conntrack "table full" records come in bursts: the first of a
    /// kind (filesystem type, device and error class; or conntrack) is reported at once,
    /// the rest within this many seconds are folded into one more event carrying their
    /// `count`. Default `10`. `0` reports every record.
    pub kmsg_fold_seconds: u64,

    /// Watch the kernel limits: open files, tasks, connection tracking and inotify
    /// instances. Default `true`.
    pub limits_enabled: bool,
    /// procfs the limits are read from. Default: the agent's `--proc-root` (`/proc`).
    /// `sys/net/netfilter` shows the reader's network namespace: in a pod, use
    /// `hostNetwork` for the node's conntrack table; the inotify scan needs `hostPID`.
    pub limits_proc_root: Option<PathBuf>,
    /// Interval of the inotify scan, and the shortest interval between two events of one
    /// limit while it stays above its threshold. Default `30`. The single-file limits (open
    /// files, tasks, conntrack) are read on every poll, so a crossing is reported at once.
    pub limits_interval_seconds: u64,
    /// Open files (`fs/file-nr`: allocated / `fs.file-max`) ratio reported as a warning.
    /// Default `0.90`.
    pub limits_fd_threshold: f64,
    /// Tasks (threads) / `kernel.pid_max` (or `kernel.threads-max` when lower). Default
    /// `0.90`.
    pub limits_pids_threshold: f64,
    /// `nf_conntrack_count / nf_conntrack_max`. Default `0.90`.
    pub limits_conntrack_threshold: f64,
    /// inotify instances of the worst user / `fs.inotify.max_user_instances`. Default `0.90`.
    pub limits_inotify_threshold: f64,
    /// A limit at or above this ratio is reported as an error instead of a warning. Default
    /// `0.98`. At least every `limits_*_threshold`.
    pub limits_error_ratio: f64,
    /// Hysteresis: a reported limit is re-armed (its episode ends, the next crossing is
    /// reported at once) only below threshold − this. Default `0.05`.
    pub limits_hysteresis: f64,
    /// Scan `/proc/*/fd` for inotify instances. Default `true`.
    pub limits_inotify_enabled: bool,
    /// Processes listed at most by one inotify scan. Default `10000`.
    pub limits_inotify_max_processes: usize,
    /// fd links read at most by one inotify scan. Default `20000`.
    pub limits_inotify_max_fds: usize,

    /// Report containers throttled by their CPU limit. Default `true`.
    pub cpu_throttle_enabled: bool,
    /// Root of the cgroup hierarchy holding the `cpu` controller (cgroup v2 mount, or the v1
    /// `cpu` controller directory). Default: found in `/proc/self/mountinfo`. In a pod, mount
    /// the host's `/sys/fs/cgroup` and point here.
    pub cpu_throttle_cgroup_root: Option<PathBuf>,
    /// Interval over which throttling is measured (cgroups found, `cpu.stat` read and
    /// compared with the previous reading). Default `30`.
    pub cpu_throttle_interval_seconds: u64,
    /// Throttled periods / periods in the interval at or above this is reported. Default
    /// `0.25`.
    pub cpu_throttle_ratio: f64,
    /// … when the interval had at least this many periods (100 ms each by default).
    /// Default `10`.
    pub cpu_throttle_min_periods: u64,
    /// Container cgroups tracked at most; the rest are counted in
    /// `tapio_agent_node_untracked_total{reason="cpu_cgroups_over_limit"}`. Default `2048`.
    pub cpu_throttle_max_cgroups: usize,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            psi_enabled: true,
            psi_dir: PathBuf::from("/proc/pressure"),
            psi_cpu_threshold_percent: 80.0,
            psi_memory_threshold_percent: 20.0,
            psi_io_threshold_percent: 30.0,
            psi_sustain_seconds: 30,
            psi_clear_ratio: 0.5,
            psi_repeat_seconds: 300,
            fs_enabled: true,
            fs_mountinfo_path: PathBuf::from("/proc/self/mountinfo"),
            fs_root: PathBuf::from("/"),
            fs_types: [
                "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "vfat", "exfat", "ntfs3",
                "jfs", "reiserfs", "bcachefs", "nilfs2",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
            fs_skip_read_only: true,
            fs_check_interval_seconds: 30,
            fs_warning_percent: 90.0,
            fs_error_percent: 97.0,
            fs_hysteresis_percent: 2.0,
            fs_repeat_seconds: 300,
            kmsg_enabled: true,
            kmsg_path: PathBuf::from("/dev/kmsg"),
            kmsg_emit_oom: true,
            kmsg_emit_io_errors: true,
            kmsg_ignore_io_devices: Vec::new(),
            kmsg_oom_merge_seconds: 2,
            kmsg_max_records_per_poll: 10_000,
            kmsg_fold_seconds: 10,
            limits_enabled: true,
            limits_proc_root: None,
            limits_interval_seconds: 30,
            limits_fd_threshold: 0.90,
            limits_pids_threshold: 0.90,
            limits_conntrack_threshold: 0.90,
            limits_inotify_threshold: 0.90,
            limits_error_ratio: 0.98,
            limits_hysteresis: 0.05,
            limits_inotify_enabled: true,
            limits_inotify_max_processes: 10_000,
            limits_inotify_max_fds: 20_000,
            cpu_throttle_enabled: true,
            cpu_throttle_cgroup_root: None,
            cpu_throttle_interval_seconds: 30,
            cpu_throttle_ratio: 0.25,
            cpu_throttle_min_periods: 10,
            cpu_throttle_max_cgroups: 2048,
        }
    }
}

/// A [`NodeConfig`] value outside its accepted range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node observer config: {0}")]
pub struct NodeConfigError(pub String);

impl NodeConfig {
    /// Refuses values the observers cannot work with, naming the field and the accepted range.
    pub fn validate(&self) -> Result<(), NodeConfigError> {
        let percent = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 && v <= 100.0 {
                Ok(())
            } else {
                Err(NodeConfigError(format!(
                    "`{name}` is {v}; use a percentage greater than 0 and at most 100"
                )))
            }
        };
        percent("psi_cpu_threshold_percent", self.psi_cpu_threshold_percent)?;
        percent(
            "psi_memory_threshold_percent",
            self.psi_memory_threshold_percent,
        )?;
        percent("psi_io_threshold_percent", self.psi_io_threshold_percent)?;
        if !(self.psi_clear_ratio.is_finite()
            && self.psi_clear_ratio > 0.0
            && self.psi_clear_ratio <= 1.0)
        {
            return Err(NodeConfigError(format!(
                "`psi_clear_ratio` is {}; use a ratio greater than 0 and at most 1",
                self.psi_clear_ratio
            )));
        }
        percent("fs_warning_percent", self.fs_warning_percent)?;
        percent("fs_error_percent", self.fs_error_percent)?;
        if self.fs_error_percent < self.fs_warning_percent {
            return Err(NodeConfigError(format!(
                "`fs_error_percent` ({}) is below `fs_warning_percent` ({}); the error level must be at least the warning level",
                self.fs_error_percent, self.fs_warning_percent
            )));
        }
        if !(self.fs_hysteresis_percent.is_finite()
            && self.fs_hysteresis_percent >= 0.0
            && self.fs_hysteresis_percent < self.fs_warning_percent)
        {
            return Err(NodeConfigError(format!(
                "`fs_hysteresis_percent` is {}; use 0 or more, below `fs_warning_percent` ({})",
                self.fs_hysteresis_percent, self.fs_warning_percent
            )));
        }
        if self.kmsg_max_records_per_poll == 0 {
            return Err(NodeConfigError(
                "`kmsg_max_records_per_poll` is 0; use at least 1".to_owned(),
            ));
        }
        let ratio = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 && v <= 1.0 {
                Ok(())
            } else {
                Err(NodeConfigError(format!(
                    "`{name}` is {v}; use a ratio greater than 0 and at most 1 (0.9 is 90 %)"
                )))
            }
        };
        let thresholds = [
            ("limits_fd_threshold", self.limits_fd_threshold),
            ("limits_pids_threshold", self.limits_pids_threshold),
            (
                "limits_conntrack_threshold",
                self.limits_conntrack_threshold,
            ),
            ("limits_inotify_threshold", self.limits_inotify_threshold),
        ];
        for (name, v) in thresholds {
            ratio(name, v)?;
        }
        ratio("limits_error_ratio", self.limits_error_ratio)?;
        for (name, v) in thresholds {
            if self.limits_error_ratio < v {
                return Err(NodeConfigError(format!(
                    "`limits_error_ratio` ({}) is below `{name}` ({v}); the error level must be at least every threshold",
                    self.limits_error_ratio
                )));
            }
        }
        let lowest = thresholds.iter().map(|(_, v)| *v).fold(1.0, f64::min);
        if !(self.limits_hysteresis.is_finite()
            && self.limits_hysteresis >= 0.0
            && self.limits_hysteresis < lowest)
        {
            return Err(NodeConfigError(format!(
                "`limits_hysteresis` is {}; use 0 or more, below the lowest `limits_*_threshold` ({lowest})",
                self.limits_hysteresis
            )));
        }
        ratio("cpu_throttle_ratio", self.cpu_throttle_ratio)?;
        for (name, v) in [
            ("limits_interval_seconds", self.limits_interval_seconds),
            (
                "cpu_throttle_interval_seconds",
                self.cpu_throttle_interval_seconds,
            ),
            ("cpu_throttle_min_periods", self.cpu_throttle_min_periods),
            (
                "limits_inotify_max_processes",
                self.limits_inotify_max_processes as u64,
            ),
            ("limits_inotify_max_fds", self.limits_inotify_max_fds as u64),
            (
                "cpu_throttle_max_cgroups",
                self.cpu_throttle_max_cgroups as u64,
            ),
        ] {
            if v == 0 {
                return Err(NodeConfigError(format!("`{name}` is 0; use at least 1")));
            }
        }
        Ok(())
    }
}

/// Whole seconds as a chrono delta, saturating instead of panicking on huge values.
pub(crate) fn seconds(s: u64) -> TimeDelta {
    TimeDelta::try_seconds(i64::try_from(s).unwrap_or(i64::MAX)).unwrap_or(TimeDelta::MAX)
}

fn whole_seconds(d: TimeDelta) -> i64 {
    d.num_seconds().max(0)
}

pub(crate) fn int(v: u64) -> AttrValue {
    AttrValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

/// Rounds a ratio or percentage to 4 decimals, enough for any decision and readable.
pub(crate) fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Builds one node-scoped event. The id sorts by the event's time.
pub(crate) fn node_event(
    node: &str,
    kind: &str,
    severity: EventSeverity,
    time: DateTime<Utc>,
    attributes: BTreeMap<String, AttrValue>,
) -> Option<Event> {
    let kind = match EventType::parse(kind) {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %e, "node observer built an invalid event type; dropped");
            return None;
        }
    };
    Some(Event {
        id: Ulid::from_datetime(SystemTime::from(time)),
        time,
        kind,
        severity,
        entity: Entity {
            node: Some(node.to_owned()),
            ..Entity::default()
        },
        attributes,
        object: None,
    })
}

// ---------------------------------------------------------------------------------------------
// PSI
// ---------------------------------------------------------------------------------------------

/// A resource with pressure stall information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PsiResource {
    Cpu,
    Memory,
    Io,
}

impl PsiResource {
    pub const ALL: [PsiResource; 3] = [PsiResource::Cpu, PsiResource::Memory, PsiResource::Io];

    /// File name under `/proc/pressure`, and the last segment of the event type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Memory => "memory",
            Self::Io => "io",
        }
    }

    pub fn event_type(self) -> &'static str {
        match self {
            Self::Cpu => EVENT_PRESSURE_CPU,
            Self::Memory => EVENT_PRESSURE_MEMORY,
            Self::Io => EVENT_PRESSURE_IO,
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Cpu => 0,
            Self::Memory => 1,
            Self::Io => 2,
        }
    }
}

/// One line of a PSI file: the share of wall time (percent) in which tasks stalled, averaged
/// over 10 s, 60 s and 300 s, and the total stall time in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PsiLine {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    pub total_us: u64,
}

/// One PSI file. `full` is absent for CPU on kernels before 5.13.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PsiSnapshot {
    /// Some task stalled.
    pub some: PsiLine,
    /// All non-idle tasks stalled at once.
    pub full: Option<PsiLine>,
}

/// Parses a PSI file (`some avg10=1.23 avg60=0.50 avg300=0.10 total=12345`, optionally a
/// `full ...` line).
pub fn parse_psi(text: &str) -> Result<PsiSnapshot, String> {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("some ") {
            some = Some(parse_psi_line(rest)?);
        } else if let Some(rest) = line.strip_prefix("full ") {
            full = Some(parse_psi_line(rest)?);
        }
    }
    let some = some.ok_or_else(|| "PSI text has no `some` line".to_owned())?;
    Ok(PsiSnapshot { some, full })
}

fn parse_psi_line(rest: &str) -> Result<PsiLine, String> {
    let (mut a10, mut a60, mut a300, mut total) = (None, None, None, 0);
    for tok in rest.split_whitespace() {
        let Some((k, v)) = tok.split_once('=') else {
            return Err(format!("PSI field {tok:?} is not key=value"));
        };
        let avg = || -> Result<f64, String> {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| format!("PSI {k}={v:?} is not a percentage"))
        };
        match k {
            "avg10" => a10 = Some(avg()?),
            "avg60" => a60 = Some(avg()?),
            "avg300" => a300 = Some(avg()?),
            "total" => {
                total = v
                    .parse()
                    .map_err(|_| format!("PSI total={v:?} is not a number"))?
            }
            _ => {} // a future kernel's extra field
        }
    }
    match (a10, a60, a300) {
        (Some(avg10), Some(avg60), Some(avg300)) => Ok(PsiLine {
            avg10,
            avg60,
            avg300,
            total_us: total,
        }),
        _ => Err(format!("PSI line {rest:?} lacks avg10, avg60 or avg300")),
    }
}

/// Reads and parses `<dir>/<resource>`. A parse failure is `InvalidData`.
pub fn read_psi(dir: &Path, resource: PsiResource) -> io::Result<PsiSnapshot> {
    let text = std::fs::read_to_string(dir.join(resource.as_str()))?;
    parse_psi(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[derive(Debug, Clone, Copy, Default)]
struct PsiState {
    /// First poll of the current run of polls at or above the threshold.
    streak_start: Option<DateTime<Utc>>,
    /// Pressure has been reported and has not cleared yet.
    active: bool,
    last_emit: Option<DateTime<Utc>>,
}

/// Turns PSI snapshots into pressure events.
///
/// Per resource: `some avg10` must stay at or above the threshold on consecutive polls
/// covering at least `psi_sustain_seconds`; then one event (warning; error when `full avg10`
/// is at or above the threshold too) is emitted, and repeated every `psi_repeat_seconds`
/// while the pressure lasts. It lasts until `some avg10` falls below threshold ×
/// `psi_clear_ratio`. Clearing emits nothing; the watcher keeps its state so the next
/// episode is reported again from the start. A poll below the threshold before pressure was
/// reported restarts the sustain window.
///
/// Attributes: `some_avg10`, `some_avg60`, `full_avg10` (when the kernel reports `full`),
/// `threshold` (percent), `sustained_seconds` (since the first poll of the episode).
#[derive(Debug, Clone)]
pub struct PsiWatcher {
    node: String,
    thresholds: [f64; 3],
    sustain: TimeDelta,
    repeat: TimeDelta,
    clear_ratio: f64,
    state: [PsiState; 3],
}

impl PsiWatcher {
    pub fn new(node: impl Into<String>, config: &NodeConfig) -> Self {
        Self {
            node: node.into(),
            thresholds: [
                config.psi_cpu_threshold_percent,
                config.psi_memory_threshold_percent,
                config.psi_io_threshold_percent,
            ],
            sustain: seconds(config.psi_sustain_seconds),
            repeat: seconds(config.psi_repeat_seconds),
            clear_ratio: config.psi_clear_ratio,
            state: [PsiState::default(); 3],
        }
    }

    /// The `some avg10` threshold of `resource`, in percent.
    pub fn threshold(&self, resource: PsiResource) -> f64 {
        self.thresholds[resource.index()]
    }

    /// Whether pressure on `resource` has been reported and has not cleared yet.
    pub fn is_active(&self, resource: PsiResource) -> bool {
        self.state[resource.index()].active
    }

    /// Feeds one poll of `resource` taken at `now`; returns the event to emit, if any.
    pub fn observe(
        &mut self,
        resource: PsiResource,
        snapshot: &PsiSnapshot,
        now: DateTime<Utc>,
    ) -> Option<Event> {
        let threshold = self.threshold(resource);
        let some = snapshot.some.avg10;
        let st = &mut self.state[resource.index()];
        if st.active {
            if some < threshold * self.clear_ratio {
                *st = PsiState::default();
                return None;
            }
            let due = st.last_emit.is_none_or(|t| now - t >= self.repeat);
            if !due {
                return None;
            }
            st.last_emit = Some(now);
        } else if some >= threshold {
            let start = *st.streak_start.get_or_insert(now);
            if now - start < self.sustain {
                return None;
            }
            st.active = true;
            st.last_emit = Some(now);
        } else {
            st.streak_start = None;
            return None;
        }
        let start = st.streak_start.unwrap_or(now);
        let full10 = snapshot.full.map(|f| f.avg10);
        let severity = if full10.is_some_and(|f| f >= threshold) {
            EventSeverity::Error
        } else {
            EventSeverity::Warning
        };
        let mut attrs = BTreeMap::new();
        attrs.insert("some_avg10".into(), AttrValue::Float(some));
        attrs.insert("some_avg60".into(), AttrValue::Float(snapshot.some.avg60));
        if let Some(f) = full10 {
            attrs.insert("full_avg10".into(), AttrValue::Float(f));
        }
        attrs.insert("threshold".into(), AttrValue::Float(threshold));
        attrs.insert(
            "sustained_seconds".into(),
            AttrValue::Int(whole_seconds(now - start)),
        );
        node_event(&self.node, resource.event_type(), severity, now, attrs)
    }
}

// ---------------------------------------------------------------------------------------------
// Filesystems
// ---------------------------------------------------------------------------------------------

/// One line of `/proc/<pid>/mountinfo`, escapes decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_id: u64,
    pub parent_id: u64,
    /// `major:minor` of the filesystem; bind mounts of one filesystem share it.
    pub device_id: String,
    /// Directory of the filesystem that is mounted here (`/` unless a bind mount of a subtree).
    pub root: String,
    pub mount_point: String,
    /// The per-mount options include `ro`.
    pub read_only: bool,
    pub fs_type: String,
    /// Mount source, e.g. `/dev/sda1`, `/dev/mapper/vg-root`, `rpool/data`.
    pub source: String,
}

/// Decodes the octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash)
/// the kernel writes in mountinfo fields.
pub fn unescape_mountinfo(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..=i + 3].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (u32::from(b[i + 1] - b'0') << 6)
                | (u32::from(b[i + 2] - b'0') << 3)
                | u32::from(b[i + 3] - b'0');
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a mountinfo table; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let mut it = line.split_whitespace();
    let mount_id = it.next()?.parse().ok()?;
    let parent_id = it.next()?.parse().ok()?;
    let device_id = it.next()?.to_owned();
    let root = unescape_mountinfo(it.next()?);
    let mount_point = unescape_mountinfo(it.next()?);
    let read_only = it.next()?.split(',').any(|o| o == "ro");
    // Optional fields (shared:N, master:N, ...) up to the "-" separator.
    for f in it.by_ref() {
        if f == "-" {
            break;
        }
    }
    let fs_type = unescape_mountinfo(it.next()?);
    let source = unescape_mountinfo(it.next()?);
    Some(MountEntry {
        mount_id,
        parent_id,
        device_id,
        root,
        mount_point,
        read_only,
        fs_type,
        source,
    })
}

/// Keeps the mounts whose type is in `fs_types` (and, with `skip_read_only`, that are
/// writable), one per filesystem: of several mounts of one device (bind mounts, e.g. the
/// kubelet's volume mounts), the one mounting the filesystem's root at the shortest path.
/// Order follows the first appearance of each device.
pub fn select_filesystems(
    mounts: &[MountEntry],
    fs_types: &[String],
    skip_read_only: bool,
) -> Vec<MountEntry> {
    let mut order: Vec<String> = Vec::new();
    let mut best: HashMap<String, &MountEntry> = HashMap::new();
    let rank = |m: &MountEntry| (m.root != "/", m.mount_point.len());
    for m in mounts {
        if !fs_types.contains(&m.fs_type) || (skip_read_only && m.read_only) {
            continue;
        }
        match best.get(&m.device_id) {
            None => {
                order.push(m.device_id.clone());
                best.insert(m.device_id.clone(), m);
            }
            Some(cur) if rank(m) < rank(cur) => {
                best.insert(m.device_id.clone(), m);
            }
            Some(_) => {}
        }
    }
    order
        .iter()
        .filter_map(|d| best.get(d).map(|m| (*m).clone()))
        .collect()
}

/// Space and inode counts of one filesystem, as `statvfs` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsUsage {
    pub mount_point: String,
    /// Mount source (`/dev/sda1`, ...).
    pub device: String,
    /// `major:minor`, the identity the watcher tracks.
    pub device_id: String,
    pub fs_type: String,
    /// Size in bytes of the units counted by the block fields (`f_frsize`).
    pub fragment_size: u64,
    pub blocks: u64,
    pub blocks_free: u64,
    /// Free blocks available to unprivileged users (excludes the root reserve).
    pub blocks_available: u64,
    pub files: u64,
    pub files_free: u64,
}

impl FsUsage {
    /// Used share of the space unprivileged users can use, as `df` computes Use%:
    /// used / (used + available).
    pub fn used_ratio(&self) -> f64 {
        let used = self.blocks.saturating_sub(self.blocks_free);
        let denom = used.saturating_add(self.blocks_available);
        if denom == 0 {
            0.0
        } else {
            used as f64 / denom as f64
        }
    }

    /// Used share of inodes; `None` when the filesystem has no fixed inode count (btrfs).
    pub fn inodes_used_ratio(&self) -> Option<f64> {
        (self.files > 0)
            .then(|| self.files.saturating_sub(self.files_free) as f64 / self.files as f64)
    }

    pub fn available_bytes(&self) -> u64 {
        self.blocks_available.saturating_mul(self.fragment_size)
    }

    /// The fuller of space and inodes, in percent.
    pub fn fill_percent(&self) -> f64 {
        self.used_ratio()
            .max(self.inodes_used_ratio().unwrap_or(0.0))
            * 100.0
    }
}

fn to_u64<T: Into<u64>>(v: T) -> u64 {
    v.into()
}

/// `statvfs` of `mount`, reached under `root` (see [`NodeConfig::fs_root`]).
pub fn stat_filesystem(mount: &MountEntry, root: &Path) -> io::Result<FsUsage> {
    let path = root.join(mount.mount_point.trim_start_matches('/'));
    let st = nix::sys::statvfs::statvfs(&path).map_err(io::Error::from)?;
    Ok(FsUsage {
        mount_point: mount.mount_point.clone(),
        device: mount.source.clone(),
        device_id: mount.device_id.clone(),
        fs_type: mount.fs_type.clone(),
        fragment_size: to_u64(st.fragment_size()),
        blocks: to_u64(st.blocks()),
        blocks_free: to_u64(st.blocks_free()),
        blocks_available: to_u64(st.blocks_available()),
        files: to_u64(st.files()),
        files_free: to_u64(st.files_free()),
    })
}

#[derive(Debug, Clone, Copy)]
struct FillState {
    severity: EventSeverity,
    last_emit: DateTime<Utc>,
}

/// Turns filesystem usage into `node.filesystem.nearly_full` events.
///
/// A filesystem whose space or inode fill reaches `fs_warning_percent` is reported once
/// (warning, or error at `fs_error_percent`), again every `fs_repeat_seconds` while it stays
/// nearly full, and at once when it rises from warning to error. It stops being nearly full
/// below `fs_warning_percent − fs_hysteresis_percent` (nothing is emitted then) and drops
/// from error to warning below `fs_error_percent − fs_hysteresis_percent`. Filesystems
/// missing from an observation (unmounted) are forgotten.
///
/// Attributes: `mount_point`, `device`, `fs_type`, `used_ratio`, `inodes_used_ratio` (when
/// the filesystem has an inode count), `available_bytes`.
#[derive(Debug, Clone)]
pub struct FillWatcher {
    node: String,
    warning: f64,
    error: f64,
    hysteresis: f64,
    repeat: TimeDelta,
    state: HashMap<String, FillState>,
}

impl FillWatcher {
    pub fn new(node: impl Into<String>, config: &NodeConfig) -> Self {
        Self {
            node: node.into(),
            warning: config.fs_warning_percent,
            error: config.fs_error_percent,
            hysteresis: config.fs_hysteresis_percent,
            repeat: seconds(config.fs_repeat_seconds),
            state: HashMap::new(),
        }
    }

    /// How many filesystems are currently nearly full.
    pub fn nearly_full(&self) -> usize {
        self.state.len()
    }

    /// Feeds one check of every watched filesystem; returns the events to emit.
    pub fn observe(&mut self, usages: &[FsUsage], now: DateTime<Utc>) -> Vec<Event> {
        self.state
            .retain(|dev, _| usages.iter().any(|u| u.device_id == *dev));
        let mut out = Vec::new();
        for u in usages {
            let pct = u.fill_percent();
            let emit = match self.state.get_mut(&u.device_id) {
                None => {
                    if pct < self.warning {
                        continue;
                    }
                    let severity = if pct >= self.error {
                        EventSeverity::Error
                    } else {
                        EventSeverity::Warning
                    };
                    self.state.insert(
                        u.device_id.clone(),
                        FillState {
                            severity,
                            last_emit: now,
                        },
                    );
                    Some(severity)
                }
                Some(st) => {
                    if pct < self.warning - self.hysteresis {
                        self.state.remove(&u.device_id);
                        continue;
                    }
                    let severity = match st.severity {
                        EventSeverity::Error if pct < self.error - self.hysteresis => {
                            EventSeverity::Warning
                        }
                        EventSeverity::Error => EventSeverity::Error,
                        _ if pct >= self.error => EventSeverity::Error,
                        _ => EventSeverity::Warning,
                    };
                    let escalated = severity > st.severity;
                    st.severity = severity;
                    if escalated || now - st.last_emit >= self.repeat || now < st.last_emit {
                        st.last_emit = now;
                        Some(severity)
                    } else {
                        None
                    }
                }
            };
            if let Some(severity) = emit {
                let mut attrs = BTreeMap::new();
                attrs.insert("mount_point".into(), u.mount_point.clone().into());
                attrs.insert("device".into(), u.device.clone().into());
                attrs.insert("fs_type".into(), u.fs_type.clone().into());
                attrs.insert("used_ratio".into(), round4(u.used_ratio()).into());
                if let Some(r) = u.inodes_used_ratio() {
                    attrs.insert("inodes_used_ratio".into(), round4(r).into());
                }
                attrs.insert("available_bytes".into(), int(u.available_bytes()));
                out.extend(node_event(
                    &self.node,
                    EVENT_FILESYSTEM_NEARLY_FULL,
                    severity,
                    now,
                    attrs,
                ));
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Kernel log
// ---------------------------------------------------------------------------------------------

/// One `/dev/kmsg` record: `pri,seq,ts_usec,flags[,...];message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsgRecord {
    /// Syslog level, 0 (emerg) to 7 (debug).
    pub level: u8,
    /// Syslog facility; 0 is the kernel, anything else was written by user space.
    pub facility: u8,
    /// Record sequence number; a gap means records were lost.
    pub seq: u64,
    /// Kernel monotonic time of the record, in microseconds since boot.
    pub ts_usec: u64,
    pub message: String,
}

/// Parses one record. Only the first line is the record; the continuation lines that may
/// follow (starting with a space: ` SUBSYSTEM=...`, ` DEVICE=...`) are ignored.
pub fn parse_kmsg_record(raw: &str) -> Option<KmsgRecord> {
    let line = raw.lines().next()?;
    let (header, message) = line.split_once(';')?;
    let mut fields = header.split(',');
    let pri: u32 = fields.next()?.trim().parse().ok()?;
    let seq = fields.next()?.parse().ok()?;
    let ts_usec = fields.next()?.parse().ok()?;
    Some(KmsgRecord {
        level: u8::try_from(pri & 7).ok()?,
        facility: u8::try_from(pri >> 3).ok()?,
        seq,
        ts_usec,
        message: message.trim_end().to_owned(),
    })
}

/// Parses a text of records, one per line; continuation lines (starting with a space) and
/// malformed lines are skipped.
pub fn parse_kmsg_records(text: &str) -> Vec<KmsgRecord> {
    text.lines()
        .filter(|l| !l.starts_with(' ') && !l.is_empty())
        .filter_map(parse_kmsg_record)
        .collect()
}

/// Where in the storage stack an I/O error was reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IoErrorLayer {
    /// The block layer failed a request (`I/O error, dev sda, sector ...`).
    Block,
    /// The buffer cache failed a read or write (`Buffer I/O error on dev ...`).
    Buffer,
    /// A filesystem reported an error (`EXT4-fs error (device ...)`, XFS, btrfs).
    Filesystem,
}

impl IoErrorLayer {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Buffer => "buffer",
            Self::Filesystem => "filesystem",
        }
    }
}

/// A storage I/O error from the kernel log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoErrorFact {
    /// Kernel device name (`sda`, `sdb1`, `nvme0n1`, `dm-0`, `loop0`).
    pub device: String,
    pub layer: IoErrorLayer,
    /// Failed sector (block layer).
    pub sector: Option<u64>,
    /// Request operation (`READ`, `WRITE`, `FLUSH`, ...; block layer on kernels ≥ 5.x).
    pub op: Option<String>,
    /// Block status name (`I/O`, `critical medium`, `timeout`, ...; block layer).
    pub blk_status: Option<String>,
    /// Logical block (buffer layer).
    pub logical_block: Option<u64>,
    /// Filesystem type (filesystem layer: `ext4`, `xfs`, `btrfs`).
    pub fs_type: Option<String>,
}

/// The `oom-kill:` summary record the kernel writes before killing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OomSummary {
    pub pid: u32,
    /// `task=`: the victim's command name.
    pub task: Option<String>,
    /// `constraint=`: `CONSTRAINT_NONE`, `CONSTRAINT_MEMCG`, `CONSTRAINT_CPUSET`, ...
    pub constraint: Option<String>,
    /// `oom_memcg=`: the cgroup whose limit was hit.
    pub oom_memcg: Option<String>,
    /// `task_memcg=`: the victim's own cgroup.
    pub task_memcg: Option<String>,
    pub uid: Option<u32>,
}

/// The `... Killed process <pid> (<comm>) total-vm:...` record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OomKilled {
    pub pid: u32,
    pub comm: String,
    /// Written as `Memory cgroup out of memory: Killed process ...`.
    pub memcg: bool,
    pub total_vm_kb: Option<u64>,
    pub anon_rss_kb: Option<u64>,
    pub file_rss_kb: Option<u64>,
    pub shmem_rss_kb: Option<u64>,
    pub uid: Option<u32>,
    pub oom_score_adj: Option<i64>,
}

/// What a kernel log message says, for the messages the observer knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KmsgFact {
    /// `INFO: task <comm>:<pid> blocked for more than <n> seconds.`
    HungTask {
        comm: String,
        pid: u32,
        blocked_seconds: u64,
    },
    IoError(IoErrorFact),
    OomSummary(OomSummary),
    OomKilled(OomKilled),
    /// `watchdog: BUG: soft lockup - CPU#<n> stuck for <s>s! [<comm>:<pid>]`
    SoftLockup {
        cpu: u32,
        stuck_seconds: u64,
        comm: Option<String>,
        pid: Option<u32>,
    },
    /// `rcu: INFO: rcu_sched self-detected stall on CPU` or
    /// `rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:`
    RcuStall {
        /// `rcu_sched`, `rcu_preempt`, `rcu_tasks`, ...
        flavor: String,
        self_detected: bool,
        /// The stalled CPU, when the record names it (older kernels: `{ 3}`).
        cpu: Option<u32>,
    },
    /// `nf_conntrack: table full, dropping packet` (also `table full in netns <n>`).
    ConntrackFull {
        netns: Option<u64>,
    },
}

/// A filesystem error from the kernel log (see [`parse_fs_error`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsErrorFact {
    /// `ext4` (also ext2, ext3), `xfs`, `btrfs`.
    pub fs_type: String,
    /// Kernel device name (`sda1`, `dm-0`, `nvme0n1p2`) when the record names one.
    pub device: Option<String>,
    /// `error`, `warning` (EXT4-fs warning), `critical` (BTRFS critical), `corruption`,
    /// `io_error` (XFS metadata or log I/O error), `shutdown` (XFS shut down),
    /// `read_only` (remounted read-only).
    pub class: &'static str,
}

impl FsErrorFact {
    /// Warnings are reported as warnings; every other class as an error.
    pub fn severity(&self) -> EventSeverity {
        if self.class == "warning" {
            EventSeverity::Warning
        } else {
            EventSeverity::Error
        }
    }
}

/// Classifies one kernel log message; `None` for everything the observer does not report.
pub fn classify_kmsg(message: &str) -> Option<KmsgFact> {
    let m = message.trim();
    if let Some(f) = parse_hung_task(m) {
        return Some(f);
    }
    if let Some(s) = parse_oom_summary(m) {
        return Some(KmsgFact::OomSummary(s));
    }
    if let Some(k) = parse_oom_killed(m) {
        return Some(KmsgFact::OomKilled(k));
    }
    if let Some(f) = parse_soft_lockup(m) {
        return Some(f);
    }
    if let Some(f) = parse_rcu_stall(m) {
        return Some(f);
    }
    if let Some(f) = parse_conntrack_full(m) {
        return Some(f);
    }
    parse_io_error(m).map(KmsgFact::IoError)
}

/// `kernel/watchdog.c`: `pr_emerg("BUG: soft lockup - CPU#%d stuck for %us! [%s:%d]\n")`
/// with `pr_fmt` `"watchdog: "` (kernels before 4.13 print it without the prefix). The
/// comm may hold `:`; the pid follows the last one.
fn parse_soft_lockup(m: &str) -> Option<KmsgFact> {
    const BUG: &str = "BUG: soft lockup - CPU#";
    let rest = m
        .strip_prefix("watchdog: ")
        .unwrap_or(m)
        .strip_prefix(BUG)?;
    let cpu = u32::try_from(leading_u64(rest)?).ok()?;
    let (_, after) = rest.split_once(" stuck for ")?;
    let stuck_seconds = leading_u64(after)?;
    let task = after
        .find('[')
        .and_then(|i| {
            after
                .rfind(']')
                .filter(|j| *j > i)
                .map(|j| &after[i + 1..j])
        })
        .and_then(|t| t.rsplit_once(':'));
    Some(KmsgFact::SoftLockup {
        cpu,
        stuck_seconds,
        comm: task.map(|(c, _)| c.to_owned()),
        pid: task.and_then(|(_, p)| p.parse().ok()),
    })
}

/// `kernel/rcu/tree_stall.h`: `pr_err("INFO: %s self-detected stall on CPU\n")` and
/// `pr_err("INFO: %s detected stalls on CPUs/tasks:\n")` with `pr_fmt` `"rcu: "`; older
/// kernels print the CPUs on the same line (`… stall on CPU { 3}  (t=60000 jiffies …)`).
fn parse_rcu_stall(m: &str) -> Option<KmsgFact> {
    let rest = m
        .strip_prefix("rcu: ")
        .unwrap_or(m)
        .strip_prefix("INFO: ")?;
    let (flavor, tail) = rest.split_once(' ')?;
    if !flavor.starts_with("rcu") {
        return None;
    }
    let self_detected = tail.starts_with("self-detected stall on CPU");
    if !self_detected
        && !tail.starts_with("detected stall")
        && !tail.starts_with("detected expedited stall")
    {
        return None;
    }
    let cpu = tail
        .find('{')
        .and_then(|i| leading_u64(tail[i + 1..].trim_start()))
        .and_then(|c| u32::try_from(c).ok());
    Some(KmsgFact::RcuStall {
        flavor: flavor.to_owned(),
        self_detected,
        cpu: if self_detected { cpu } else { None },
    })
}

/// `net/netfilter/nf_conntrack_core.c`: `net_warn_ratelimited("nf_conntrack: table full,
/// dropping packet\n")` — printed as `nf_conntrack: nf_conntrack: table full, dropping
/// packet` where the module prefixes its messages — and, since 6.5, `table full in netns
/// %u, dropping packet` for namespaces other than the initial one.
fn parse_conntrack_full(m: &str) -> Option<KmsgFact> {
    const FULL: &str = "nf_conntrack: table full";
    let i = m.find(FULL)?;
    let tail = &m[i + FULL.len()..];
    if !tail.contains("dropping packet") {
        return None;
    }
    let netns = tail.strip_prefix(" in netns ").and_then(leading_u64);
    Some(KmsgFact::ConntrackFull { netns })
}

/// Filesystem errors, as the filesystems print them:
/// * ext4 (`fs/ext4/super.c`): `EXT4-fs error (device %s): %s:%d: …` (also
///   `… (device %s) in %s:%d: %s` from `__ext4_std_error`), `EXT4-fs warning (device %s):
///   …`, and `EXT4-fs (%s): Remounting filesystem read-only` (`ext4_msg`); ext2 and ext3
///   alike.
/// * XFS (`fs/xfs/xfs_message.c`: `XFS (%s): %pV`): messages with "corruption" (`Corruption
///   detected. Unmount and run xfs_repair`, `Metadata corruption detected at …`,
///   `Corruption of in-memory data (0x8) detected at …`), I/O errors (`metadata I/O error in
///   "…" at daddr …`, `log I/O error -5`) and shutdowns.
/// * btrfs (`BTRFS %s (device %s%s): %pV`): the `error` and `critical` levels.
/// * Any `Remounting filesystem read-only`.
pub fn parse_fs_error(m: &str) -> Option<FsErrorFact> {
    let lower = m.to_ascii_lowercase();
    let read_only = lower.contains("remounting filesystem read-only");
    // ext2/3/4: "EXT4-fs error (device sda1): ...", "EXT4-fs (sda1): ..."
    if m.starts_with("EXT")
        && let Some(dash) = m.find("-fs ")
    {
        let fs_type = m[..dash].to_ascii_lowercase();
        let after = &m[dash + "-fs ".len()..];
        let (class, tail) = if let Some(t) = after.strip_prefix("error (device ") {
            ("error", t)
        } else if let Some(t) = after.strip_prefix("warning (device ") {
            ("warning", t)
        } else if let Some(t) = after.strip_prefix('(') {
            if !read_only {
                return None;
            }
            ("read_only", t)
        } else {
            return None;
        };
        let class = if read_only { "read_only" } else { class };
        return Some(FsErrorFact {
            fs_type,
            device: token_until(tail, &[')', ':', ',']).map(str::to_owned),
            class,
        });
    }
    if let Some(tail) = m.strip_prefix("XFS (") {
        let (device, msg) = tail.split_once("): ")?;
        let msg = msg.to_ascii_lowercase();
        let class = if msg.contains("corruption") {
            "corruption"
        } else if msg.contains("i/o error") {
            "io_error"
        } else if msg.contains("shut down") || msg.contains("shutting down filesystem") {
            "shutdown"
        } else if read_only {
            "read_only"
        } else {
            return None;
        };
        return Some(FsErrorFact {
            fs_type: "xfs".to_owned(),
            device: Some(device.to_owned()),
            class,
        });
    }
    for (prefix, class) in [
        ("BTRFS error (device ", "error"),
        ("BTRFS critical (device ", "critical"),
    ] {
        if let Some(tail) = m.strip_prefix(prefix) {
            return Some(FsErrorFact {
                fs_type: "btrfs".to_owned(),
                device: token_until(tail, &[')', ':', ',']).map(str::to_owned),
                class: if read_only { "read_only" } else { class },
            });
        }
    }
    // Other filesystems: "F2FS-fs (sda1): ... Remounting filesystem read-only".
    read_only.then(|| FsErrorFact {
        fs_type: m
            .split([' ', ':', '('])
            .next()
            .and_then(|first| first.strip_suffix("-fs"))
            .filter(|t| !t.is_empty())
            .map_or_else(|| "unknown".to_owned(), str::to_ascii_lowercase),
        device: m
            .find('(')
            .and_then(|i| token_until(&m[i + 1..], &[')', ':', ',']))
            .map(|d| d.trim_start_matches("device ").to_owned()),
        class: "read_only",
    })
}

/// At most this many bytes of a kernel message go into a `message` attribute.
const MESSAGE_MAX_BYTES: usize = 512;

/// `m` cut to [`MESSAGE_MAX_BYTES`] on a character boundary.
fn truncate_message(m: &str) -> String {
    if m.len() <= MESSAGE_MAX_BYTES {
        return m.to_owned();
    }
    let mut end = MESSAGE_MAX_BYTES;
    while !m.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &m[..end])
}

fn leading_u64(s: &str) -> Option<u64> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    s[..n].parse().ok()
}

/// The text up to the first of `stops`, if not empty.
fn token_until<'a>(s: &'a str, stops: &[char]) -> Option<&'a str> {
    let t = s
        .split(|c: char| stops.contains(&c) || c.is_whitespace())
        .next()?;
    (!t.is_empty()).then_some(t)
}

fn parse_hung_task(m: &str) -> Option<KmsgFact> {
    let rest = m.strip_prefix("INFO: task ")?;
    let (who, after) = rest.split_once(" blocked for more than ")?;
    let (comm, pid) = who.rsplit_once(':')?;
    Some(KmsgFact::HungTask {
        comm: comm.to_owned(),
        pid: pid.parse().ok()?,
        blocked_seconds: leading_u64(after)?,
    })
}

/// Block status names the block layer prints as `<name> error, dev ...`; "operation not
/// supported" (a discard or write-zeroes the device lacks) and transient resource shortages
/// are not storage failures and are left out.
const BLK_STATUS_NAMES: &[&str] = &[
    "I/O",
    "critical medium",
    "critical target",
    "critical nexus",
    "critical space allocation",
    "timeout",
    "recoverable transport",
    "protection",
    "offline",
];

fn parse_io_error(m: &str) -> Option<IoErrorFact> {
    const BLOCK: &str = " error, dev ";
    if let Some(i) = m.find(BLOCK) {
        // "I/O error, dev sda, ..." or "blk_update_request: I/O error, dev loop0, ..."
        let status = m[..i].rsplit(": ").next()?;
        if !BLK_STATUS_NAMES.contains(&status) {
            return None;
        }
        let tail = &m[i + BLOCK.len()..];
        let device = token_until(tail, &[','])?;
        let sector = tail
            .find("sector ")
            .and_then(|j| leading_u64(&tail[j + "sector ".len()..]));
        let op = tail.find(" op 0x").and_then(|j| {
            let after = &tail[j..];
            let open = after.find(":(")? + 2;
            let close = after[open..].find(')')?;
            Some(after[open..open + close].to_owned())
        });
        return Some(IoErrorFact {
            device: device.to_owned(),
            layer: IoErrorLayer::Block,
            sector,
            op,
            blk_status: Some(status.to_owned()),
            logical_block: None,
            fs_type: None,
        });
    }
    let buffer = m
        .strip_prefix("Buffer I/O error on dev ")
        .or_else(|| m.strip_prefix("Buffer I/O error on device "));
    if let Some(tail) = buffer {
        let device = token_until(tail, &[','])?;
        let logical_block = tail
            .find("logical block ")
            .and_then(|j| leading_u64(&tail[j + "logical block ".len()..]));
        return Some(IoErrorFact {
            device: device.to_owned(),
            layer: IoErrorLayer::Buffer,
            sector: None,
            op: None,
            blk_status: None,
            logical_block,
            fs_type: None,
        });
    }
    let fs = |fs_type: &str, tail: &str| {
        Some(IoErrorFact {
            device: token_until(tail, &[')', ':', ','])?.to_owned(),
            layer: IoErrorLayer::Filesystem,
            sector: None,
            op: None,
            blk_status: None,
            logical_block: None,
            fs_type: Some(fs_type.to_owned()),
        })
    };
    // "EXT4-fs error (device sda1): ext4_find_entry:1455: inode #2: ..."
    if m.starts_with("EXT")
        && let Some(i) = m.find("-fs error (device ")
    {
        return fs(
            &m[..i].to_ascii_lowercase(),
            &m[i + "-fs error (device ".len()..],
        );
    }
    let io_error = m.to_ascii_lowercase().contains("i/o error");
    // "XFS (sdb1): metadata I/O error in \"xfs_buf_ioend\" at daddr 0x1 len 1 error 5"
    if let Some(tail) = m.strip_prefix("XFS (")
        && io_error
    {
        return fs("xfs", tail);
    }
    // "BTRFS error (device sda1): bdev /dev/sda1 errs: wr 1, rd 0, flush 0, ..."
    if let Some(tail) = m.strip_prefix("BTRFS error (device ")
        && (io_error || m.contains(" errs: "))
    {
        return fs("btrfs", tail);
    }
    None
}

fn parse_oom_summary(m: &str) -> Option<OomSummary> {
    const KEYS: &[&str] = &[
        "constraint",
        "nodemask",
        "cpuset",
        "mems_allowed",
        "oom_memcg",
        "task_memcg",
        "task",
        "pid",
        "uid",
    ];
    let body = m.strip_prefix("oom-kill:")?;
    // Values may hold commas (`mems_allowed=0-1,3`): a piece without a known key continues
    // the previous value.
    let mut fields: Vec<(&str, String)> = Vec::new();
    for piece in body.split(',') {
        match piece.split_once('=') {
            Some((k, v)) if KEYS.contains(&k) => fields.push((k, v.to_owned())),
            _ => {
                if let Some((_, v)) = fields.last_mut() {
                    v.push(',');
                    v.push_str(piece);
                }
            }
        }
    }
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty() && v != "(null)")
    };
    Some(OomSummary {
        pid: get("pid")?.parse().ok()?,
        task: get("task"),
        constraint: get("constraint"),
        oom_memcg: get("oom_memcg"),
        task_memcg: get("task_memcg"),
        uid: get("uid").and_then(|u| u.parse().ok()),
    })
}

fn parse_oom_killed(m: &str) -> Option<OomKilled> {
    const KILLED: &str = "Killed process ";
    let i = m.find(KILLED)?;
    let prefix = m[..i].trim_end().trim_end_matches(':');
    // "Out of memory", "Memory cgroup out of memory", or nothing on old kernels.
    if !(prefix.is_empty() || prefix.to_ascii_lowercase().contains("out of memory")) {
        return None;
    }
    let rest = &m[i + KILLED.len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let pid = rest[..digits].parse().ok()?;
    let rest = rest[digits..].strip_prefix(" (")?;
    // The comm may itself hold ") ": cut at the numbers that follow it.
    let (comm, tail) = match rest.find(") total-vm:") {
        Some(j) => (&rest[..j], &rest[j + 1..]),
        None => {
            let j = rest.rfind(')')?;
            (&rest[..j], &rest[j + 1..])
        }
    };
    let mut k = OomKilled {
        pid,
        comm: comm.to_owned(),
        memcg: prefix.starts_with("Memory cgroup"),
        ..OomKilled::default()
    };
    for tok in tail.split([',', ' ']).filter(|t| !t.is_empty()) {
        let Some((key, val)) = tok.split_once(':') else {
            continue;
        };
        let kb = || val.strip_suffix("kB").and_then(|v| v.parse().ok());
        match key {
            "total-vm" => k.total_vm_kb = kb(),
            "anon-rss" => k.anon_rss_kb = kb(),
            "file-rss" => k.file_rss_kb = kb(),
            "shmem-rss" => k.shmem_rss_kb = kb(),
            "UID" => k.uid = val.parse().ok(),
            "oom_score_adj" => k.oom_score_adj = val.parse().ok(),
            _ => {}
        }
    }
    Some(k)
}

#[derive(Debug, Clone)]
struct PendingOom {
    summary: OomSummary,
    seen_at: DateTime<Utc>,
}

/// At most this many `oom-kill:` summaries wait for their `Killed process` partner; more
/// than that means partners are not coming, and the oldest is reported alone.
const MAX_PENDING_OOM: usize = 16;

/// Turns kernel log records into events, merging the two records of one OOM kill.
///
/// * `node.kernel.hung_task` (error): `comm`, `pid`, `blocked_seconds`, `observer`. Always
///   emitted.
/// * `kernel.storage.io_error` (error): `device`, `layer` (block, buffer, filesystem),
///   `sector`, `op`, `blk_status`, `logical_block`, `fs_type` (whichever the message
///   gives), `observer`. Only with `emit_io_errors`, and not for ignored devices.
/// * `kernel.container.oom_kill` (critical): `pid`, `comm`, `cgroup` (the victim's memory
///   cgroup, `task_memcg`), `oom_memcg`, `constraint`, `anon_rss_kb`, `total_vm_kb`,
///   `file_rss_kb`, `shmem_rss_kb`, `uid`, `oom_score_adj` (whichever are known),
///   `observer`. Only with `emit_oom`. The `oom-kill:` summary is held until the
///   `Killed process` record with the same pid arrives (one event for both) or until
///   `kmsg_oom_merge_seconds` pass (see [`KmsgClassifier::flush`]), then reported alone. A
///   `Killed process` record without a summary (older kernels, rate-limited summaries) is
///   reported alone at once.
/// * `node.kernel.fs_error` (error; warning for `EXT4-fs warning`): `fs_type`, `device`
///   (when named), `class`, `message` (at most 512 bytes), `count`, `observer`. Always
///   emitted, also while BPF observes block I/O (a filesystem error is not a failed block
///   request). A filesystem record that is also an I/O error still gives its
///   `kernel.storage.io_error` as before.
/// * `node.kernel.soft_lockup` (error): soft lockups with `cpu`, `stuck_seconds`, `comm`,
///   `pid`; RCU stalls with `flavor`, `self_detected` and `cpu` when named; both with
///   `detector` (`soft_lockup`, `rcu_stall`), `message`, `observer`.
/// * `node.limits.conntrack` (error) for `nf_conntrack: table full, dropping packet`:
///   `dropping` = true, `message`, `count`, `netns` (when named), `observer`.
///
/// Filesystem errors and conntrack drops are folded: the first record of a kind (filesystem
/// type, device and class; conntrack per netns) is reported at once with `count` 1; the
/// like records in the next `kmsg_fold_seconds` become one more event (at the end of the
/// window, see [`KmsgClassifier::flush`]) with their `count` and the last `message`.
///
/// Every event carries `observer=kmsg`. Records not from the kernel (facility ≠ 0, i.e.
/// written to `/dev/kmsg` by user space) are ignored, so no process can forge facts.
#[derive(Debug, Clone)]
pub struct KmsgClassifier {
    node: String,
    emit_oom: bool,
    emit_io_errors: bool,
    ignore_io_devices: Vec<String>,
    merge_window: TimeDelta,
    pending: VecDeque<PendingOom>,
    fold_window: TimeDelta,
    folds: Vec<Fold>,
}

/// At most this many bursts are folded at once; a further kind reports the oldest burst.
const MAX_FOLDS: usize = 64;

/// Records folded into one report.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Folded {
    Fs(FsErrorFact),
    Conntrack { netns: Option<u64> },
}

impl Folded {
    fn key(&self) -> String {
        match self {
            Self::Fs(f) => format!(
                "fs|{}|{}|{}",
                f.fs_type,
                f.device.as_deref().unwrap_or(""),
                f.class
            ),
            Self::Conntrack { netns } => format!("conntrack|{}", netns.unwrap_or(0)),
        }
    }
}

/// A burst whose first record was reported; `suppressed` like records came since.
#[derive(Debug, Clone)]
struct Fold {
    key: String,
    what: Folded,
    started: DateTime<Utc>,
    last_at: DateTime<Utc>,
    suppressed: u64,
    last_message: String,
}

impl KmsgClassifier {
    pub fn new(node: impl Into<String>, config: &NodeConfig) -> Self {
        Self {
            node: node.into(),
            emit_oom: config.kmsg_emit_oom,
            emit_io_errors: config.kmsg_emit_io_errors,
            ignore_io_devices: config.kmsg_ignore_io_devices.clone(),
            merge_window: seconds(config.kmsg_oom_merge_seconds),
            pending: VecDeque::new(),
            fold_window: seconds(config.kmsg_fold_seconds),
            folds: Vec::new(),
        }
    }

    /// Turns OOM events on or off; off also drops summaries waiting for a partner.
    pub fn set_emit_oom(&mut self, on: bool) {
        self.emit_oom = on;
        if !on {
            self.pending.clear();
        }
    }

    pub fn set_emit_io_errors(&mut self, on: bool) {
        self.emit_io_errors = on;
    }

    pub fn emit_oom(&self) -> bool {
        self.emit_oom
    }

    pub fn emit_io_errors(&self) -> bool {
        self.emit_io_errors
    }

    /// Feeds one record read at `now`; returns the events to emit.
    pub fn push(&mut self, record: &KmsgRecord, now: DateTime<Utc>) -> Vec<Event> {
        if record.facility != 0 {
            return Vec::new();
        }
        let message = record.message.trim();
        let mut out = Vec::new();
        if let Some(fs) = parse_fs_error(message) {
            out.extend(self.fold(Folded::Fs(fs), message, now));
        }
        let Some(fact) = classify_kmsg(message) else {
            return out;
        };
        match fact {
            KmsgFact::SoftLockup {
                cpu,
                stuck_seconds,
                comm,
                pid,
            } => {
                let mut attrs = BTreeMap::new();
                attrs.insert("detector".into(), "soft_lockup".into());
                attrs.insert("cpu".into(), AttrValue::Int(cpu.into()));
                attrs.insert("stuck_seconds".into(), int(stuck_seconds));
                if let Some(c) = comm {
                    attrs.insert("comm".into(), c.into());
                }
                if let Some(p) = pid {
                    attrs.insert("pid".into(), AttrValue::Int(p.into()));
                }
                attrs.insert("message".into(), truncate_message(message).into());
                attrs.insert("observer".into(), OBSERVER_KMSG.into());
                out.extend(node_event(
                    &self.node,
                    EVENT_SOFT_LOCKUP,
                    EventSeverity::Error,
                    now,
                    attrs,
                ));
            }
            KmsgFact::RcuStall {
                flavor,
                self_detected,
                cpu,
            } => {
                let mut attrs = BTreeMap::new();
                attrs.insert("detector".into(), "rcu_stall".into());
                attrs.insert("flavor".into(), flavor.into());
                attrs.insert("self_detected".into(), AttrValue::Bool(self_detected));
                if let Some(c) = cpu {
                    attrs.insert("cpu".into(), AttrValue::Int(c.into()));
                }
                attrs.insert("message".into(), truncate_message(message).into());
                attrs.insert("observer".into(), OBSERVER_KMSG.into());
                out.extend(node_event(
                    &self.node,
                    EVENT_SOFT_LOCKUP,
                    EventSeverity::Error,
                    now,
                    attrs,
                ));
            }
            KmsgFact::ConntrackFull { netns } => {
                out.extend(self.fold(Folded::Conntrack { netns }, message, now));
            }
            KmsgFact::HungTask {
                comm,
                pid,
                blocked_seconds,
            } => {
                let mut attrs = BTreeMap::new();
                attrs.insert("comm".into(), comm.into());
                attrs.insert("pid".into(), AttrValue::Int(pid.into()));
                attrs.insert("blocked_seconds".into(), int(blocked_seconds));
                attrs.insert("observer".into(), OBSERVER_KMSG.into());
                out.extend(node_event(
                    &self.node,
                    EVENT_HUNG_TASK,
                    EventSeverity::Error,
                    now,
                    attrs,
                ));
            }
            KmsgFact::IoError(f) => {
                let ignored = self
                    .ignore_io_devices
                    .iter()
                    .any(|p| f.device.starts_with(p.as_str()));
                if self.emit_io_errors && !ignored {
                    out.extend(self.io_error_event(f, now));
                }
            }
            KmsgFact::OomSummary(summary) => {
                if self.emit_oom {
                    if self.pending.len() >= MAX_PENDING_OOM
                        && let Some(old) = self.pending.pop_front()
                    {
                        out.extend(self.oom_event(Some(&old.summary), None, old.seen_at));
                    }
                    self.pending.push_back(PendingOom {
                        summary,
                        seen_at: now,
                    });
                }
            }
            KmsgFact::OomKilled(killed) => {
                if self.emit_oom {
                    let partner = self
                        .pending
                        .iter()
                        .position(|p| p.summary.pid == killed.pid)
                        .and_then(|i| self.pending.remove(i));
                    let time = partner.as_ref().map_or(now, |p| p.seen_at);
                    out.extend(self.oom_event(
                        partner.as_ref().map(|p| &p.summary),
                        Some(&killed),
                        time,
                    ));
                }
            }
        }
        out
    }

    /// Reports summaries that waited `kmsg_oom_merge_seconds` without a partner, and the
    /// folded records of bursts whose `kmsg_fold_seconds` window has passed.
    pub fn flush(&mut self, now: DateTime<Utc>) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(p) = self.pending.front() {
            if now - p.seen_at < self.merge_window && now >= p.seen_at {
                break;
            }
            if let Some(p) = self.pending.pop_front() {
                out.extend(self.oom_event(Some(&p.summary), None, p.seen_at));
            }
        }
        let window = self.fold_window;
        let (expired, open): (Vec<Fold>, Vec<Fold>) = std::mem::take(&mut self.folds)
            .into_iter()
            .partition(|f| now < f.started || now - f.started >= window);
        self.folds = open;
        out.extend(expired.iter().filter_map(|f| self.fold_summary(f)));
        out
    }

    /// Reports every waiting summary and folded burst (at shutdown).
    pub fn flush_all(&mut self) -> Vec<Event> {
        let pending: Vec<PendingOom> = self.pending.drain(..).collect();
        let folds = std::mem::take(&mut self.folds);
        pending
            .iter()
            .filter_map(|p| self.oom_event(Some(&p.summary), None, p.seen_at))
            .chain(folds.iter().filter_map(|f| self.fold_summary(f)))
            .collect()
    }

    /// Reports the first record of a burst at once and counts the like ones that follow
    /// within the fold window.
    fn fold(&mut self, what: Folded, message: &str, now: DateTime<Utc>) -> Vec<Event> {
        let key = what.key();
        let mut out = Vec::new();
        if let Some(i) = self.folds.iter().position(|f| f.key == key) {
            let f = &mut self.folds[i];
            if now >= f.started && now - f.started < self.fold_window {
                f.suppressed += 1;
                f.last_at = now;
                f.last_message = truncate_message(message);
                return out;
            }
            let old = self.folds.remove(i);
            out.extend(self.fold_summary(&old));
        }
        if self.fold_window > TimeDelta::zero() {
            if self.folds.len() >= MAX_FOLDS {
                let old = self.folds.remove(0);
                out.extend(self.fold_summary(&old));
            }
            self.folds.push(Fold {
                key,
                what: what.clone(),
                started: now,
                last_at: now,
                suppressed: 0,
                last_message: String::new(),
            });
        }
        out.extend(self.folded_event(&what, message, 1, now));
        out
    }

    fn fold_summary(&self, f: &Fold) -> Option<Event> {
        if f.suppressed == 0 {
            return None;
        }
        self.folded_event(&f.what, &f.last_message, f.suppressed, f.last_at)
    }

    fn folded_event(
        &self,
        what: &Folded,
        message: &str,
        count: u64,
        time: DateTime<Utc>,
    ) -> Option<Event> {
        let mut attrs = BTreeMap::new();
        attrs.insert("message".into(), truncate_message(message).into());
        attrs.insert("count".into(), int(count));
        attrs.insert("observer".into(), OBSERVER_KMSG.into());
        match what {
            Folded::Fs(f) => {
                attrs.insert("fs_type".into(), f.fs_type.clone().into());
                if let Some(d) = &f.device {
                    attrs.insert("device".into(), d.clone().into());
                }
                attrs.insert("class".into(), f.class.into());
                node_event(&self.node, EVENT_FS_ERROR, f.severity(), time, attrs)
            }
            Folded::Conntrack { netns } => {
                attrs.insert("dropping".into(), AttrValue::Bool(true));
                if let Some(n) = netns {
                    attrs.insert("netns".into(), int(*n));
                }
                node_event(
                    &self.node,
                    crate::limits::EVENT_CONNTRACK,
                    EventSeverity::Error,
                    time,
                    attrs,
                )
            }
        }
    }

    fn io_error_event(&self, f: IoErrorFact, now: DateTime<Utc>) -> Option<Event> {
        let mut attrs = BTreeMap::new();
        attrs.insert("device".into(), f.device.into());
        attrs.insert("layer".into(), f.layer.as_str().into());
        if let Some(s) = f.sector {
            attrs.insert("sector".into(), int(s));
        }
        if let Some(op) = f.op {
            attrs.insert("op".into(), op.into());
        }
        if let Some(s) = f.blk_status {
            attrs.insert("blk_status".into(), s.into());
        }
        if let Some(b) = f.logical_block {
            attrs.insert("logical_block".into(), int(b));
        }
        if let Some(t) = f.fs_type {
            attrs.insert("fs_type".into(), t.into());
        }
        attrs.insert("observer".into(), OBSERVER_KMSG.into());
        node_event(&self.node, EVENT_IO_ERROR, EventSeverity::Error, now, attrs)
    }

    fn oom_event(
        &self,
        summary: Option<&OomSummary>,
        killed: Option<&OomKilled>,
        time: DateTime<Utc>,
    ) -> Option<Event> {
        let mut attrs = BTreeMap::new();
        let pid = killed.map(|k| k.pid).or(summary.map(|s| s.pid))?;
        attrs.insert("pid".into(), AttrValue::Int(pid.into()));
        let comm = killed
            .map(|k| k.comm.clone())
            .or_else(|| summary.and_then(|s| s.task.clone()));
        if let Some(c) = comm {
            attrs.insert("comm".into(), c.into());
        }
        if let Some(s) = summary {
            if let Some(c) = &s.task_memcg {
                attrs.insert("cgroup".into(), c.clone().into());
            }
            if let Some(c) = &s.oom_memcg {
                attrs.insert("oom_memcg".into(), c.clone().into());
            }
        }
        let constraint = summary.and_then(|s| s.constraint.clone()).or_else(|| {
            killed
                .filter(|k| k.memcg)
                .map(|_| "CONSTRAINT_MEMCG".to_owned())
        });
        if let Some(c) = constraint {
            attrs.insert("constraint".into(), c.into());
        }
        if let Some(k) = killed {
            for (key, v) in [
                ("anon_rss_kb", k.anon_rss_kb),
                ("total_vm_kb", k.total_vm_kb),
                ("file_rss_kb", k.file_rss_kb),
                ("shmem_rss_kb", k.shmem_rss_kb),
            ] {
                if let Some(v) = v {
                    attrs.insert(key.into(), int(v));
                }
            }
            if let Some(a) = k.oom_score_adj {
                attrs.insert("oom_score_adj".into(), AttrValue::Int(a));
            }
        }
        if let Some(uid) = killed.and_then(|k| k.uid).or(summary.and_then(|s| s.uid)) {
            attrs.insert("uid".into(), AttrValue::Int(uid.into()));
        }
        attrs.insert("observer".into(), OBSERVER_KMSG.into());
        node_event(
            &self.node,
            EVENT_OOM_KILL,
            EventSeverity::Critical,
            time,
            attrs,
        )
    }
}

/// Reads new records from `/dev/kmsg` without blocking.
///
/// The device is opened non-blocking and positioned at its end, so only records written
/// after [`KmsgReader::open`] are read (no replay of the boot log on every agent restart).
/// Each `read` of `/dev/kmsg` returns one record; if the kernel overwrote records before
/// they were read, `read` fails with `EPIPE`: this is counted (see [`KmsgReader::lost`])
/// and reading continues at the oldest record still held.
#[derive(Debug)]
pub struct KmsgReader {
    file: File,
    buf: Vec<u8>,
    max_records: usize,
    last_seq: Option<u64>,
    overrun_pending: bool,
    lost: u64,
    overruns: u64,
}

/// Larger than the longest record the kernel hands out (`CONSOLE_EXT_LOG_MAX`, 8 KiB);
/// a smaller buffer makes `read` fail with `EINVAL`.
const KMSG_BUF: usize = 16 * 1024;

impl KmsgReader {
    /// Opens `path` non-blocking and seeks to its end.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(path.as_ref())?;
        file.seek(SeekFrom::End(0))?;
        Ok(Self {
            file,
            buf: vec![0; KMSG_BUF],
            max_records: 10_000,
            last_seq: None,
            overrun_pending: false,
            lost: 0,
            overruns: 0,
        })
    }

    /// Caps the records returned by one [`read_available`](Self::read_available) call.
    pub fn with_max_records(mut self, max: usize) -> Self {
        self.max_records = max.max(1);
        self
    }

    /// Records lost because the kernel overwrote them before they were read (from sequence
    /// gaps; at least one per overrun).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// How often a read failed with `EPIPE` (records overwritten).
    pub fn overruns(&self) -> u64 {
        self.overruns
    }

    /// Reads every record available now (up to the cap) and returns at once when there is
    /// none (`EAGAIN`). An error is returned only if nothing was read; records read before
    /// an error are returned and the error recurs on the next call.
    pub fn read_available(&mut self) -> io::Result<Vec<KmsgRecord>> {
        let mut out = Vec::new();
        let mut reads = 0usize;
        while out.len() < self.max_records && reads < self.max_records.saturating_mul(2) {
            reads += 1;
            match self.file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => {
                    let text = String::from_utf8_lossy(&self.buf[..n]);
                    for rec in parse_kmsg_records(&text) {
                        self.account(rec.seq);
                        out.push(rec);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => {
                    self.overruns += 1;
                    self.overrun_pending = true;
                }
                Err(e) => {
                    if out.is_empty() {
                        return Err(e);
                    }
                    break;
                }
            }
        }
        Ok(out)
    }

    fn account(&mut self, seq: u64) {
        let mut gap = match self.last_seq {
            Some(last) if seq > last => seq - last - 1,
            _ => 0,
        };
        if self.overrun_pending {
            gap = gap.max(1);
            self.overrun_pending = false;
        }
        self.lost += gap;
        self.last_seq = Some(seq);
    }
}

// ---------------------------------------------------------------------------------------------
// Combined observer
// ---------------------------------------------------------------------------------------------

/// Whether a source delivers, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SourceStatus {
    /// Working.
    Available,
    /// Working in part (some files, mounts or reads fail).
    Degraded { reason: String },
    /// Not working; its events are missing.
    Unavailable { reason: String },
    /// Turned off in the configuration.
    Disabled,
}

impl SourceStatus {
    pub fn is_available(&self) -> bool {
        matches!(self, Self::Available | Self::Degraded { .. })
    }
}

/// What the node observers see and what they miss.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeStatus {
    pub psi: SourceStatus,
    pub filesystems: SourceStatus,
    pub kmsg: SourceStatus,
    /// Kernel log records overwritten before they were read.
    pub kmsg_lost: u64,
    /// Whether OOM kills / I/O errors from the kernel log are reported (off while the BPF
    /// observers cover them).
    pub kmsg_emit_oom: bool,
    pub kmsg_emit_io_errors: bool,
    /// Resources under reported pressure now.
    pub pressure_active: Vec<PsiResource>,
    /// Filesystems watched at the last check, and how many of them are nearly full.
    pub filesystems_watched: usize,
    pub filesystems_nearly_full: usize,
    /// Kernel limits (open files, tasks, conntrack, inotify).
    pub limits: SourceStatus,
    /// Limits in a reported episode now.
    pub limits_active: Vec<Limit>,
    /// The last inotify scan: what it covered and what it cost.
    pub inotify_last_scan: Option<InotifyScanReport>,
    /// Container CPU throttling.
    pub cpu_throttle: SourceStatus,
    /// Container cgroups with a `cpu.stat` baseline.
    pub cpu_cgroups_tracked: usize,
    /// Container cgroups not tracked because of `cpu_throttle_max_cgroups`, summed over
    /// intervals.
    pub cpu_cgroups_untracked_total: u64,
}

/// What one inotify scan covered and cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InotifyScanReport {
    pub processes: usize,
    pub unreadable: usize,
    pub fds: usize,
    pub truncated: bool,
    /// The user with the most instances, and how many.
    pub worst_uid: Option<u32>,
    pub worst_instances: u64,
    pub duration_ms: f64,
}

/// The node observers together: PSI, filesystem fill, the kernel log, kernel limits and
/// container CPU throttling.
#[derive(Debug)]
pub struct NodeObserver {
    config: NodeConfig,
    psi: PsiWatcher,
    fill: FillWatcher,
    classifier: KmsgClassifier,
    kmsg: Option<KmsgReader>,
    psi_status: SourceStatus,
    fs_status: SourceStatus,
    kmsg_status: SourceStatus,
    fs_last_check: Option<DateTime<Utc>>,
    fs_watched: usize,
    limits: LimitWatcher,
    limits_status: SourceStatus,
    proc_root: PathBuf,
    conntrack_absent: bool,
    last_conntrack: Option<LimitReading>,
    inotify_last_check: Option<DateTime<Utc>>,
    inotify_failure: Option<String>,
    inotify_last_scan: Option<InotifyScanReport>,
    throttle: ThrottleWatcher,
    throttle_root: Option<PathBuf>,
    throttle_status: SourceStatus,
    throttle_last_check: Option<DateTime<Utc>>,
    cpu_cgroups_untracked: u64,
    metrics: Option<Arc<Metrics>>,
}

/// Whether a periodic check last done at `last` is due again at `now`.
fn due(last: Option<DateTime<Utc>>, now: DateTime<Utc>, interval_seconds: u64) -> bool {
    last.is_none_or(|l| now < l || now - l >= seconds(interval_seconds))
}

fn describe_io_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "does not exist".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ if e.raw_os_error() == Some(nix::libc::EOPNOTSUPP) => "not supported".to_owned(),
        _ => e.to_string(),
    }
}

impl NodeObserver {
    /// Validates `config` and starts the observers: `/dev/kmsg` is opened (and positioned at
    /// its end) now; PSI and filesystems are read on each [`poll`](Self::poll). A source that
    /// cannot be used is reported in [`status`](Self::status), never an error here.
    pub fn new(node: impl Into<String>, config: NodeConfig) -> Result<Self, NodeConfigError> {
        config.validate()?;
        let node = node.into();
        let (kmsg, kmsg_status) = if config.kmsg_enabled {
            match KmsgReader::open(&config.kmsg_path) {
                Ok(r) => (
                    Some(r.with_max_records(config.kmsg_max_records_per_poll)),
                    SourceStatus::Available,
                ),
                Err(e) => {
                    let path = config.kmsg_path.display();
                    let reason = match e.kind() {
                        io::ErrorKind::PermissionDenied => format!(
                            "cannot open {path}: permission denied; reading the kernel log needs CAP_SYSLOG (or kernel.dmesg_restrict=0): hung tasks, and OOM kills and I/O errors unless BPF observes them, are not reported"
                        ),
                        io::ErrorKind::NotFound => format!(
                            "{path} does not exist (in a container, mount the host's /dev/kmsg): hung tasks, and OOM kills and I/O errors unless BPF observes them, are not reported"
                        ),
                        _ => format!(
                            "cannot open {path}: {e}: hung tasks, and OOM kills and I/O errors unless BPF observes them, are not reported"
                        ),
                    };
                    tracing::warn!(source = "kmsg", %reason, "node observer source unavailable");
                    (None, SourceStatus::Unavailable { reason })
                }
            }
        } else {
            (None, SourceStatus::Disabled)
        };
        let psi_status = if config.psi_enabled {
            SourceStatus::Available
        } else {
            SourceStatus::Disabled
        };
        let fs_status = if config.fs_enabled {
            SourceStatus::Available
        } else {
            SourceStatus::Disabled
        };
        let limits_status = if config.limits_enabled {
            SourceStatus::Available
        } else {
            SourceStatus::Disabled
        };
        let (throttle_root, throttle_status) = if !config.cpu_throttle_enabled {
            (None, SourceStatus::Disabled)
        } else if let Some(root) = &config.cpu_throttle_cgroup_root {
            (Some(root.clone()), SourceStatus::Available)
        } else {
            let found = std::fs::read_to_string("/proc/self/mountinfo")
                .ok()
                .and_then(|m| limits::detect_cpu_cgroup_root(&m));
            match found {
                Some(root) => (Some(root), SourceStatus::Available),
                None => {
                    let reason = "no cgroup hierarchy with the cpu controller in /proc/self/mountinfo; set cpu_throttle_cgroup_root (the host's cgroup v2 mount, or its cgroup v1 cpu controller directory): container CPU throttling is not reported".to_owned();
                    tracing::warn!(source = "cpu_throttle", %reason, "node observer source unavailable");
                    (None, SourceStatus::Unavailable { reason })
                }
            }
        };
        Ok(Self {
            psi: PsiWatcher::new(node.clone(), &config),
            fill: FillWatcher::new(node.clone(), &config),
            classifier: KmsgClassifier::new(node.clone(), &config),
            kmsg,
            psi_status,
            fs_status,
            kmsg_status,
            fs_last_check: None,
            fs_watched: 0,
            limits: LimitWatcher::new(node.clone(), &config),
            limits_status,
            proc_root: config
                .limits_proc_root
                .clone()
                .unwrap_or_else(|| PathBuf::from("/proc")),
            conntrack_absent: false,
            last_conntrack: None,
            inotify_last_check: None,
            inotify_failure: None,
            inotify_last_scan: None,
            throttle: ThrottleWatcher::new(
                node,
                SharedPods::default(),
                ThrottleConfig::from_config(&config),
            ),
            throttle_root,
            throttle_status,
            throttle_last_check: None,
            cpu_cgroups_untracked: 0,
            metrics: None,
            config,
        })
    }

    /// The pod index that names the pods and containers of throttled cgroups.
    pub fn set_pods(&mut self, pods: SharedPods) {
        self.throttle.set_pods(pods);
    }

    /// Where scan costs and bounded-out facts are counted (`node_scan_seconds`,
    /// `node_untracked_total`).
    pub fn set_metrics(&mut self, metrics: Arc<Metrics>) {
        self.metrics = Some(metrics);
    }

    /// Turns OOM reporting from the kernel log on or off (off while the BPF OOM observer is
    /// attached).
    pub fn set_emit_oom(&mut self, on: bool) {
        self.classifier.set_emit_oom(on);
    }

    /// Turns I/O error reporting from the kernel log on or off (off while the BPF block I/O
    /// observer is attached).
    pub fn set_emit_io_errors(&mut self, on: bool) {
        self.classifier.set_emit_io_errors(on);
    }

    /// Reads every source once and returns the events to ship. Call it periodically (every
    /// few seconds); `now` is the current time.
    pub fn poll(&mut self, now: DateTime<Utc>) -> Vec<Event> {
        let mut out = Vec::new();
        if self.config.psi_enabled {
            self.poll_psi(now, &mut out);
        }
        if self.config.fs_enabled {
            let due = self.fs_last_check.is_none_or(|last| {
                now < last || now - last >= seconds(self.config.fs_check_interval_seconds)
            });
            if due {
                self.fs_last_check = Some(now);
                self.poll_fs(now, &mut out);
            }
        }
        if self.config.limits_enabled {
            self.poll_limits(now, &mut out);
        }
        if self.throttle_root.is_some()
            && due(
                self.throttle_last_check,
                now,
                self.config.cpu_throttle_interval_seconds,
            )
        {
            self.throttle_last_check = Some(now);
            self.poll_throttle(now, &mut out);
        }
        self.poll_kmsg(now, &mut out);
        out
    }

    /// Reports every pending fact (OOM summaries still waiting for a partner); for shutdown.
    pub fn finish(&mut self) -> Vec<Event> {
        self.classifier.flush_all()
    }

    pub fn status(&self) -> NodeStatus {
        NodeStatus {
            psi: self.psi_status.clone(),
            filesystems: self.fs_status.clone(),
            kmsg: self.kmsg_status.clone(),
            kmsg_lost: self.kmsg.as_ref().map_or(0, KmsgReader::lost),
            kmsg_emit_oom: self.classifier.emit_oom(),
            kmsg_emit_io_errors: self.classifier.emit_io_errors(),
            pressure_active: PsiResource::ALL
                .into_iter()
                .filter(|r| self.psi.is_active(*r))
                .collect(),
            filesystems_watched: self.fs_watched,
            filesystems_nearly_full: self.fill.nearly_full(),
            limits: self.limits_status.clone(),
            limits_active: Limit::ALL
                .into_iter()
                .filter(|l| self.limits.is_active(*l))
                .collect(),
            inotify_last_scan: self.inotify_last_scan.clone(),
            cpu_throttle: self.throttle_status.clone(),
            cpu_cgroups_tracked: self.throttle.tracked(),
            cpu_cgroups_untracked_total: self.cpu_cgroups_untracked,
        }
    }

    fn set_status(slot: &mut SourceStatus, source: &str, new: SourceStatus) {
        if *slot != new {
            match &new {
                SourceStatus::Available => {
                    tracing::info!(source, "node observer source available")
                }
                SourceStatus::Degraded { reason } => {
                    tracing::warn!(source, %reason, "node observer source degraded")
                }
                SourceStatus::Unavailable { reason } => {
                    tracing::warn!(source, %reason, "node observer source unavailable")
                }
                SourceStatus::Disabled => {}
            }
            *slot = new;
        }
    }

    fn poll_psi(&mut self, now: DateTime<Utc>, out: &mut Vec<Event>) {
        let dir = &self.config.psi_dir;
        let mut failures = Vec::new();
        let mut all_missing = true;
        for r in PsiResource::ALL {
            match read_psi(dir, r) {
                Ok(s) => out.extend(self.psi.observe(r, &s, now)),
                Err(e) => {
                    all_missing &= e.kind() == io::ErrorKind::NotFound;
                    failures.push(format!(
                        "{}: {}",
                        dir.join(r.as_str()).display(),
                        describe_io_error(&e)
                    ));
                }
            }
        }
        let status = if failures.is_empty() {
            SourceStatus::Available
        } else if failures.len() == PsiResource::ALL.len() {
            let why = if all_missing {
                "the kernel has no PSI (built without CONFIG_PSI, or booted with psi=0 or without psi=1)"
            } else {
                "PSI cannot be read"
            };
            SourceStatus::Unavailable {
                reason: format!(
                    "{why}: {}; CPU, memory and I/O pressure are not reported",
                    failures.join("; ")
                ),
            }
        } else {
            SourceStatus::Degraded {
                reason: format!(
                    "{}; pressure on those resources is not reported",
                    failures.join("; ")
                ),
            }
        };
        Self::set_status(&mut self.psi_status, "psi", status);
    }

    fn poll_fs(&mut self, now: DateTime<Utc>, out: &mut Vec<Event>) {
        let path = &self.config.fs_mountinfo_path;
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                let reason = format!(
                    "cannot read {}: {}; filesystem fill is not reported",
                    path.display(),
                    describe_io_error(&e)
                );
                Self::set_status(
                    &mut self.fs_status,
                    "filesystems",
                    SourceStatus::Unavailable { reason },
                );
                return;
            }
        };
        let mounts = select_filesystems(
            &parse_mountinfo(&text),
            &self.config.fs_types,
            self.config.fs_skip_read_only,
        );
        let mut usages = Vec::with_capacity(mounts.len());
        let mut failures = Vec::new();
        for m in &mounts {
            match stat_filesystem(m, &self.config.fs_root) {
                Ok(u) => usages.push(u),
                Err(e) => failures.push(format!("{}: {}", m.mount_point, describe_io_error(&e))),
            }
        }
        self.fs_watched = usages.len();
        out.extend(self.fill.observe(&usages, now));
        let status = if mounts.is_empty() {
            SourceStatus::Degraded {
                reason: format!(
                    "no writable block filesystem ({}) in {}; in a container, read the host's mount table (/proc/1/mountinfo with hostPID) and set fs_root",
                    self.config.fs_types.join(", "),
                    path.display()
                ),
            }
        } else if failures.is_empty() {
            SourceStatus::Available
        } else {
            let reason = format!(
                "statvfs failed for {}; their fill is not reported",
                failures.join("; ")
            );
            if usages.is_empty() {
                SourceStatus::Unavailable { reason }
            } else {
                SourceStatus::Degraded { reason }
            }
        };
        Self::set_status(&mut self.fs_status, "filesystems", status);
    }

    fn poll_kmsg(&mut self, now: DateTime<Utc>, out: &mut Vec<Event>) {
        let mut events = Vec::new();
        if let Some(reader) = &mut self.kmsg {
            let status = match reader.read_available() {
                Ok(records) => {
                    for r in &records {
                        events.extend(self.classifier.push(r, now));
                    }
                    SourceStatus::Available
                }
                Err(e) => SourceStatus::Degraded {
                    reason: format!(
                        "reading {}: {e}; kernel log facts may be missing",
                        self.config.kmsg_path.display()
                    ),
                },
            };
            Self::set_status(&mut self.kmsg_status, "kmsg", status);
        }
        events.extend(self.classifier.flush(now));
        for mut ev in events {
            self.add_conntrack_reading(&mut ev);
            out.push(ev);
        }
    }

    /// A conntrack "table full" record carries the table's last reading (`used`, `max`,
    /// `ratio`, `threshold`) when the table is read.
    fn add_conntrack_reading(&self, ev: &mut Event) {
        if ev.kind.as_str() != EVENT_CONNTRACK {
            return;
        }
        if let Some(r) = &self.last_conntrack {
            let threshold = self.limits.policy(Limit::Conntrack).threshold;
            for (k, v) in limits::limit_attributes(r, threshold) {
                ev.attributes.entry(k).or_insert(v);
            }
        }
    }

    fn poll_limits(&mut self, now: DateTime<Utc>, out: &mut Vec<Event>) {
        let root = self.proc_root.clone();
        let mut failures = Vec::new();
        let mut read = 0usize;
        match limits::read_file_descriptors(&root) {
            Ok(r) => {
                read += 1;
                out.extend(self.limits.observe(Limit::FileDescriptors, &r, now));
            }
            Err(e) => failures.push(format!(
                "{}: {}",
                root.join("sys/fs/file-nr").display(),
                describe_io_error(&e)
            )),
        }
        match limits::read_pids(&root) {
            Ok(r) => {
                read += 1;
                out.extend(self.limits.observe(Limit::Pids, &r, now));
            }
            Err(e) => failures.push(format!(
                "{}/loadavg, sys/kernel/pid_max: {}",
                root.display(),
                describe_io_error(&e)
            )),
        }
        match limits::read_conntrack(&root) {
            Ok(r) => {
                read += 1;
                if self.conntrack_absent {
                    tracing::info!("nf_conntrack loaded: conntrack table fill is watched");
                    self.conntrack_absent = false;
                }
                out.extend(self.limits.observe(Limit::Conntrack, &r, now));
                self.last_conntrack = Some(r);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Not loaded: nothing to fill. Said once, not a degradation.
                if !self.conntrack_absent {
                    tracing::info!(
                        path = %root.join("sys/net/netfilter").display(),
                        "nf_conntrack is not loaded: conntrack table fill is not watched until it is"
                    );
                    self.conntrack_absent = true;
                }
                self.last_conntrack = None;
            }
            Err(e) => failures.push(format!(
                "{}: {}",
                root.join("sys/net/netfilter/nf_conntrack_count").display(),
                describe_io_error(&e)
            )),
        }
        if self.config.limits_inotify_enabled
            && due(
                self.inotify_last_check,
                now,
                self.config.limits_interval_seconds,
            )
        {
            self.inotify_last_check = Some(now);
            self.inotify_failure = self.poll_inotify(&root, now, out).err();
        }
        if let Some(f) = &self.inotify_failure {
            failures.push(f.clone());
        }
        let truncated = self.inotify_last_scan.as_ref().is_some_and(|s| s.truncated);
        let mut reasons = Vec::new();
        if !failures.is_empty() {
            reasons.push(format!(
                "{}; those limits are not reported",
                failures.join("; ")
            ));
        }
        if truncated {
            reasons.push(format!(
                "the inotify scan stopped at limits_inotify_max_processes ({}) or limits_inotify_max_fds ({}); its counts are lower bounds",
                self.config.limits_inotify_max_processes, self.config.limits_inotify_max_fds
            ));
        }
        let status = if reasons.is_empty() {
            SourceStatus::Available
        } else if read == 0
            && (self.inotify_failure.is_some() || !self.config.limits_inotify_enabled)
        {
            SourceStatus::Unavailable {
                reason: format!(
                    "{}; kernel limits are not reported (set limits_proc_root to the host's /proc)",
                    failures.join("; ")
                ),
            }
        } else {
            SourceStatus::Degraded {
                reason: reasons.join("; "),
            }
        };
        Self::set_status(&mut self.limits_status, "limits", status);
    }

    /// One bounded scan of `/proc/*/fd`; its cost goes to the status and the metrics.
    fn poll_inotify(
        &mut self,
        root: &Path,
        now: DateTime<Utc>,
        out: &mut Vec<Event>,
    ) -> Result<(), String> {
        let describe =
            |p: &Path, e: &io::Error| format!("{}: {}", p.display(), describe_io_error(e));
        let max_path = root.join("sys/fs/inotify/max_user_instances");
        let max = limits::read_inotify_max(root).map_err(|e| describe(&max_path, &e))?;
        let started = Instant::now();
        let scan: InotifyScan = limits::scan_inotify(
            root,
            self.config.limits_inotify_max_processes,
            self.config.limits_inotify_max_fds,
        )
        .map_err(|e| describe(root, &e))?;
        let elapsed = started.elapsed().as_secs_f64();
        let reading = limits::inotify_reading(&scan, max);
        let worst_uid = reading.extra.iter().find_map(|(k, v)| match v {
            AttrValue::Int(u) if *k == "uid" => u32::try_from(*u).ok(),
            _ => None,
        });
        self.inotify_last_scan = Some(InotifyScanReport {
            processes: scan.processes,
            unreadable: scan.unreadable,
            fds: scan.fds,
            truncated: scan.truncated,
            worst_uid,
            worst_instances: reading.used,
            duration_ms: (elapsed * 1e6).round() / 1e3,
        });
        tracing::debug!(
            processes = scan.processes,
            fds = scan.fds,
            truncated = scan.truncated,
            seconds = elapsed,
            "inotify scan"
        );
        if let Some(m) = &self.metrics {
            m.node_scan("inotify", elapsed);
            if scan.truncated {
                m.node_untracked("inotify_scan_truncated", 1);
            }
        }
        out.extend(self.limits.observe(Limit::Inotify, &reading, now));
        Ok(())
    }

    fn poll_throttle(&mut self, now: DateTime<Utc>, out: &mut Vec<Event>) {
        let Some(root) = self.throttle_root.clone() else {
            return;
        };
        let started = Instant::now();
        let walk = match limits::find_container_cgroups(&root) {
            Ok(w) => w,
            Err(e) => {
                let reason = format!(
                    "cannot list {}: {}; container CPU throttling is not reported",
                    root.display(),
                    describe_io_error(&e)
                );
                Self::set_status(
                    &mut self.throttle_status,
                    "cpu_throttle",
                    SourceStatus::Unavailable { reason },
                );
                return;
            }
        };
        let (chosen, left_out) = self.throttle.select(&walk.containers);
        self.cpu_cgroups_untracked += left_out as u64;
        let mut samples = Vec::with_capacity(chosen.len());
        for rel in chosen {
            let dir = limits::cgroup_dir(&root, &rel);
            if let Some(st) = std::fs::read_to_string(dir.join("cpu.stat"))
                .ok()
                .and_then(|t| limits::parse_cpu_stat(&t))
            {
                samples.push((rel, st));
            }
        }
        let mut limit = |rel: &str| limits::read_cpu_limit_cores(&limits::cgroup_dir(&root, rel));
        out.extend(self.throttle.observe(&samples, now, &mut limit));
        if let Some(m) = &self.metrics {
            m.node_scan("cpu_throttle", started.elapsed().as_secs_f64());
            m.node_untracked("cpu_cgroups_over_limit", left_out as u64);
        }
        let status = if walk.truncated {
            SourceStatus::Degraded {
                reason: format!(
                    "more than {} cgroup directories under {}; the walk was cut short and later containers are not watched",
                    limits::MAX_CGROUP_WALK_DIRS,
                    root.display()
                ),
            }
        } else if samples.is_empty() && !walk.containers.is_empty() {
            SourceStatus::Degraded {
                reason: format!(
                    "{} container cgroups under {} but none has CFS counters in cpu.stat (cpu controller not enabled for them); throttling is not reported",
                    walk.containers.len(),
                    root.display()
                ),
            }
        } else if left_out > 0 {
            SourceStatus::Degraded {
                reason: format!(
                    "{left_out} container cgroups beyond cpu_throttle_max_cgroups ({}) are not watched",
                    self.config.cpu_throttle_max_cgroups
                ),
            }
        } else {
            SourceStatus::Available
        };
        Self::set_status(&mut self.throttle_status, "cpu_throttle", status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0)
            .single()
            .expect("valid time")
    }

    fn cfg() -> NodeConfig {
        NodeConfig::default()
    }

    fn snap(some10: f64, full10: Option<f64>) -> PsiSnapshot {
        PsiSnapshot {
            some: PsiLine {
                avg10: some10,
                avg60: some10 / 2.0,
                avg300: 1.0,
                total_us: 1,
            },
            full: full10.map(|f| PsiLine {
                avg10: f,
                ..PsiLine::default()
            }),
        }
    }

    fn f(ev: &Event, key: &str) -> f64 {
        ev.attr_f64(key)
            .unwrap_or_else(|| panic!("attribute {key} missing in {ev:?}"))
    }

    fn s(ev: &Event, key: &str) -> String {
        ev.attr_str(key)
            .unwrap_or_else(|| panic!("attribute {key} missing in {ev:?}"))
    }

    #[test]
    fn event_type_constants_are_valid() {
        for k in [
            EVENT_PRESSURE_CPU,
            EVENT_PRESSURE_MEMORY,
            EVENT_PRESSURE_IO,
            EVENT_FILESYSTEM_NEARLY_FULL,
            EVENT_HUNG_TASK,
            EVENT_IO_ERROR,
            EVENT_OOM_KILL,
            EVENT_FS_ERROR,
            EVENT_SOFT_LOCKUP,
        ] {
            assert!(EventType::parse(k).is_ok(), "{k}");
        }
    }

    #[test]
    fn config_defaults_deserialize_and_validate() {
        let c: NodeConfig = serde_json::from_str("{}").expect("empty config");
        assert_eq!(c, NodeConfig::default());
        assert!(c.validate().is_ok());
        let c: NodeConfig =
            serde_json::from_str(r#"{"psi_memory_threshold_percent": 10, "kmsg_emit_oom": false}"#)
                .expect("partial config");
        assert_eq!(c.psi_memory_threshold_percent, 10.0);
        assert!(!c.kmsg_emit_oom);
        assert!(c.psi_enabled);
        assert!(serde_json::from_str::<NodeConfig>(r#"{"psi_treshold": 1}"#).is_err());
        let bad = NodeConfig {
            fs_error_percent: 80.0,
            ..cfg()
        };
        let e = bad.validate().expect_err("error below warning");
        assert!(e.to_string().contains("fs_error_percent"), "{e}");
        let bad = NodeConfig {
            psi_cpu_threshold_percent: f64::NAN,
            ..cfg()
        };
        assert!(bad.validate().is_err());
        let bad = NodeConfig {
            psi_clear_ratio: 0.0,
            ..cfg()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn limits_config_keys_defaults_and_errors_name_the_value() {
        let c = cfg();
        assert_eq!(c.limits_interval_seconds, 30);
        assert_eq!(
            (
                c.limits_fd_threshold,
                c.limits_pids_threshold,
                c.limits_conntrack_threshold,
                c.limits_inotify_threshold
            ),
            (0.9, 0.9, 0.9, 0.9)
        );
        assert_eq!((c.limits_error_ratio, c.limits_hysteresis), (0.98, 0.05));
        assert_eq!(
            (c.cpu_throttle_ratio, c.cpu_throttle_min_periods),
            (0.25, 10)
        );
        let c: NodeConfig = serde_json::from_str(
            r#"{"limits_fd_threshold": 0.8, "limits_interval_seconds": 60,
                "cpu_throttle_cgroup_root": "/host/sys/fs/cgroup", "kmsg_fold_seconds": 0}"#,
        )
        .expect("limits keys");
        assert_eq!(c.limits_fd_threshold, 0.8);
        assert_eq!(c.limits_interval_seconds, 60);
        assert_eq!(
            c.cpu_throttle_cgroup_root.as_deref(),
            Some(Path::new("/host/sys/fs/cgroup"))
        );
        assert!(c.validate().is_ok());
        for (bad, key, value) in [
            (
                NodeConfig {
                    limits_fd_threshold: 1.5,
                    ..cfg()
                },
                "limits_fd_threshold",
                "1.5",
            ),
            (
                NodeConfig {
                    limits_pids_threshold: 0.0,
                    ..cfg()
                },
                "limits_pids_threshold",
                "0",
            ),
            (
                NodeConfig {
                    limits_error_ratio: 0.85,
                    ..cfg()
                },
                "limits_error_ratio",
                "0.85",
            ),
            (
                NodeConfig {
                    limits_inotify_threshold: 0.99,
                    ..cfg()
                },
                "limits_inotify_threshold",
                "0.99",
            ),
            (
                NodeConfig {
                    limits_hysteresis: 0.95,
                    ..cfg()
                },
                "limits_hysteresis",
                "0.95",
            ),
            (
                NodeConfig {
                    limits_interval_seconds: 0,
                    ..cfg()
                },
                "limits_interval_seconds",
                "0",
            ),
            (
                NodeConfig {
                    cpu_throttle_ratio: f64::NAN,
                    ..cfg()
                },
                "cpu_throttle_ratio",
                "NaN",
            ),
            (
                NodeConfig {
                    cpu_throttle_max_cgroups: 0,
                    ..cfg()
                },
                "cpu_throttle_max_cgroups",
                "0",
            ),
            (
                NodeConfig {
                    limits_inotify_max_fds: 0,
                    ..cfg()
                },
                "limits_inotify_max_fds",
                "0",
            ),
        ] {
            let e = bad.validate().expect_err(key).to_string();
            assert!(e.contains(key) && e.contains(value), "{key}: {e}");
        }
    }

    // --- PSI ---------------------------------------------------------------------------------

    #[test]
    fn psi_parse_with_full_line() {
        let p = parse_psi(
            "some avg10=1.23 avg60=4.56 avg300=7.89 total=123456\n\
             full avg10=0.50 avg60=0.25 avg300=0.10 total=999\n",
        )
        .expect("parse");
        assert_eq!(p.some.avg10, 1.23);
        assert_eq!(p.some.avg60, 4.56);
        assert_eq!(p.some.avg300, 7.89);
        assert_eq!(p.some.total_us, 123_456);
        let full = p.full.expect("full line");
        assert_eq!(full.avg10, 0.5);
        assert_eq!(full.total_us, 999);
    }

    #[test]
    fn psi_parse_without_full_line() {
        let p = parse_psi("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").expect("parse");
        assert_eq!(p.some.avg10, 0.0);
        assert!(p.full.is_none());
    }

    #[test]
    fn psi_parse_refuses_garbage() {
        assert!(parse_psi("").is_err());
        assert!(parse_psi("full avg10=1 avg60=1 avg300=1 total=1").is_err());
        assert!(parse_psi("some avg10=abc avg60=1 avg300=1 total=1").is_err());
        assert!(parse_psi("some avg10=1 total=1").is_err());
    }

    #[test]
    fn psi_sustain_then_repeat_then_hysteresis_clear() {
        let mut w = PsiWatcher::new("n1", &cfg()); // memory: 20 %, sustain 30 s, repeat 300 s
        let m = PsiResource::Memory;
        assert!(w.observe(m, &snap(25.0, None), t(0)).is_none());
        assert!(w.observe(m, &snap(25.0, None), t(10)).is_none());
        assert!(w.observe(m, &snap(25.0, None), t(20)).is_none());
        let ev = w
            .observe(m, &snap(25.0, Some(1.0)), t(30))
            .expect("sustained 30 s");
        assert_eq!(ev.kind.as_str(), "node.pressure.memory");
        assert_eq!(ev.severity, EventSeverity::Warning);
        assert_eq!(ev.entity.node.as_deref(), Some("n1"));
        assert_eq!(ev.time, t(30));
        assert_eq!(f(&ev, "some_avg10"), 25.0);
        assert_eq!(f(&ev, "some_avg60"), 12.5);
        assert_eq!(f(&ev, "full_avg10"), 1.0);
        assert_eq!(f(&ev, "threshold"), 20.0);
        assert_eq!(f(&ev, "sustained_seconds"), 30.0);
        assert!(w.is_active(m));
        // Still above the clear level (10 %) though below the threshold: it lasts, no repeat yet.
        assert!(w.observe(m, &snap(15.0, None), t(40)).is_none());
        assert!(w.observe(m, &snap(25.0, None), t(200)).is_none());
        let rep = w.observe(m, &snap(30.0, None), t(330)).expect("repeat");
        assert_eq!(f(&rep, "sustained_seconds"), 330.0);
        assert!(w.observe(m, &snap(30.0, None), t(340)).is_none());
        // Below threshold × 0.5 clears, silently.
        assert!(w.observe(m, &snap(9.9, None), t(350)).is_none());
        assert!(!w.is_active(m));
        // A new episode needs the full sustain window again.
        assert!(w.observe(m, &snap(25.0, None), t(360)).is_none());
        assert!(w.observe(m, &snap(25.0, None), t(380)).is_none());
        let again = w
            .observe(m, &snap(25.0, None), t(390))
            .expect("new episode");
        assert_eq!(f(&again, "sustained_seconds"), 30.0);
    }

    #[test]
    fn psi_dip_below_threshold_restarts_sustain_window() {
        let mut w = PsiWatcher::new("n1", &cfg()); // io: 30 %
        let io = PsiResource::Io;
        assert!(w.observe(io, &snap(40.0, None), t(0)).is_none());
        assert!(w.observe(io, &snap(20.0, None), t(10)).is_none());
        assert!(w.observe(io, &snap(40.0, None), t(20)).is_none());
        assert!(w.observe(io, &snap(40.0, None), t(40)).is_none());
        assert!(w.observe(io, &snap(40.0, None), t(50)).is_some());
        // Other resources are independent.
        assert!(!w.is_active(PsiResource::Cpu));
    }

    #[test]
    fn psi_error_when_full_also_above_threshold_and_cpu_without_full() {
        let c = NodeConfig {
            psi_sustain_seconds: 0,
            ..cfg()
        };
        let mut w = PsiWatcher::new("n1", &c);
        let ev = w
            .observe(PsiResource::Memory, &snap(50.0, Some(21.0)), t(0))
            .expect("sustain 0 fires at once");
        assert_eq!(ev.severity, EventSeverity::Error);
        let ev = w
            .observe(PsiResource::Cpu, &snap(95.0, None), t(0))
            .expect("cpu");
        assert_eq!(ev.kind.as_str(), "node.pressure.cpu");
        assert_eq!(ev.severity, EventSeverity::Warning);
        assert!(!ev.attributes.contains_key("full_avg10"));
        assert!(
            w.observe(PsiResource::Cpu, &snap(79.9, None), t(5))
                .is_none()
        );
    }

    // --- filesystems -------------------------------------------------------------------------

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime shared:5 - proc proc rw
23 27 0:22 / /sys rw,nosuid - sysfs sysfs rw
27 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
28 27 0:25 / /run rw - tmpfs tmpfs rw,size=100k
29 27 8:2 / /mnt/my\\040data rw,noatime shared:2 master:1 - xfs /dev/sdb\\0401 rw
30 27 8:1 /var/lib/kubelet /var/lib/kubelet rw - ext4 /dev/sda1 rw
31 27 0:26 / /var/lib/containerd/x/rootfs rw - overlay overlay rw,lowerdir=/a
32 27 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
33 27 7:0 / /snap/core/1 ro - squashfs /dev/loop0 ro
34 27 8:3 / /boot/efi ro,relatime - vfat /dev/sda3 ro
35 27 0:28 / /data rw - btrfs /dev/sdc rw,subvol=/
36 27 0:28 / /data/sub rw - btrfs /dev/sdc rw,subvol=/sub
37 27 0:29 / /run/user/0 rw - nsfs nsfs rw
garbage line
";

    #[test]
    fn mountinfo_parse_and_escapes() {
        let all = parse_mountinfo(MOUNTINFO);
        assert_eq!(all.len(), 13, "the garbage line is skipped");
        let xfs = all.iter().find(|m| m.fs_type == "xfs").expect("xfs");
        assert_eq!(xfs.mount_point, "/mnt/my data");
        assert_eq!(xfs.source, "/dev/sdb 1");
        assert_eq!(xfs.device_id, "8:2");
        assert_eq!(xfs.mount_id, 29);
        assert_eq!(xfs.parent_id, 27);
        assert!(!xfs.read_only);
        assert_eq!(unescape_mountinfo(r"a\011b\012c\134d\\"), "a\tb\nc\\d\\\\");
        assert_eq!(
            unescape_mountinfo(r"x\04"),
            r"x\04",
            "truncated escape kept"
        );
        assert_eq!(
            unescape_mountinfo(r"\400"),
            r"\400",
            "out of byte range kept"
        );
    }

    #[test]
    fn mountinfo_filtering_and_dedup() {
        let c = cfg();
        let sel = select_filesystems(&parse_mountinfo(MOUNTINFO), &c.fs_types, true);
        let points: Vec<&str> = sel.iter().map(|m| m.mount_point.as_str()).collect();
        // ext4 once (the bind mount of /var/lib/kubelet is the same device), xfs, btrfs once;
        // no proc, sysfs, tmpfs, overlay, cgroup2, squashfs, nsfs; no read-only vfat.
        assert_eq!(points, vec!["/", "/mnt/my data", "/data"]);
        let with_ro = select_filesystems(&parse_mountinfo(MOUNTINFO), &c.fs_types, false);
        assert!(with_ro.iter().any(|m| m.mount_point == "/boot/efi"));
        // The preferred mount of a device wins even when it comes second.
        let reordered = "30 27 8:1 /var/lib/kubelet /var/lib/kubelet rw - ext4 /dev/sda1 rw\n\
                         27 1 8:1 / / rw - ext4 /dev/sda1 rw\n";
        let sel = select_filesystems(&parse_mountinfo(reordered), &c.fs_types, true);
        assert_eq!(sel.len(), 1);
        assert_eq!(sel[0].mount_point, "/");
    }

    fn usage(dev: &str, used_pct: u64, inode_pct: u64) -> FsUsage {
        // 1000 blocks of 4 KiB, 50 reserved for root.
        let used = used_pct * 950 / 100;
        FsUsage {
            mount_point: format!("/mnt/{dev}"),
            device: format!("/dev/{dev}"),
            device_id: format!("8:{}", dev.len()),
            fs_type: "ext4".into(),
            fragment_size: 4096,
            blocks: 1000,
            blocks_free: 1000 - used,
            blocks_available: 950 - used,
            files: 100,
            files_free: 100 - inode_pct,
        }
    }

    #[test]
    fn fs_usage_ratios_follow_df() {
        let u = usage("sda", 50, 10);
        assert!((u.used_ratio() - 0.5).abs() < 1e-9);
        assert_eq!(u.inodes_used_ratio(), Some(0.1));
        assert_eq!(u.available_bytes(), 475 * 4096);
        let btrfs = FsUsage {
            files: 0,
            files_free: 0,
            ..u
        };
        assert_eq!(btrfs.inodes_used_ratio(), None);
    }

    #[test]
    fn fill_thresholds_repeat_escalation_and_hysteresis() {
        let mut w = FillWatcher::new("n1", &cfg()); // 90 / 97, hysteresis 2, repeat 300 s
        assert!(w.observe(&[usage("sda", 89, 0)], t(0)).is_empty());
        let ev = w.observe(&[usage("sda", 91, 0)], t(10));
        assert_eq!(ev.len(), 1);
        let e = &ev[0];
        assert_eq!(e.kind.as_str(), "node.filesystem.nearly_full");
        assert_eq!(e.severity, EventSeverity::Warning);
        assert_eq!(s(e, "mount_point"), "/mnt/sda");
        assert_eq!(s(e, "device"), "/dev/sda");
        assert_eq!(s(e, "fs_type"), "ext4");
        assert!((f(e, "used_ratio") - 0.91).abs() < 0.01);
        assert_eq!(f(e, "inodes_used_ratio"), 0.0);
        assert!(f(e, "available_bytes") > 0.0);
        // Still above: quiet until the repeat interval.
        assert!(w.observe(&[usage("sda", 92, 0)], t(20)).is_empty());
        // 88.5 % is within the hysteresis band: still nearly full.
        assert!(w.observe(&[usage("sda", 89, 0)], t(30)).is_empty());
        assert_eq!(w.nearly_full(), 1);
        // Rising to error is reported at once.
        let ev = w.observe(&[usage("sda", 98, 0)], t(40));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].severity, EventSeverity::Error);
        // 96 % stays error (hysteresis); the repeat comes after 300 s.
        assert!(w.observe(&[usage("sda", 96, 0)], t(100)).is_empty());
        let ev = w.observe(&[usage("sda", 96, 0)], t(340));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].severity, EventSeverity::Error);
        // Below 95 %: back to warning, silently.
        assert!(w.observe(&[usage("sda", 93, 0)], t(350)).is_empty());
        let ev = w.observe(&[usage("sda", 93, 0)], t(640));
        assert_eq!(ev[0].severity, EventSeverity::Warning);
        // Below 88 %: cleared, silently; crossing again is new.
        assert!(w.observe(&[usage("sda", 85, 0)], t(650)).is_empty());
        assert_eq!(w.nearly_full(), 0);
        assert_eq!(w.observe(&[usage("sda", 90, 0)], t(660)).len(), 1);
    }

    #[test]
    fn fill_inodes_alone_trigger_and_unmounted_are_forgotten() {
        let mut w = FillWatcher::new("n1", &cfg());
        let ev = w.observe(&[usage("sda", 10, 99), usage("sdbb", 10, 10)], t(0));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].severity, EventSeverity::Error);
        assert_eq!(f(&ev[0], "inodes_used_ratio"), 0.99);
        assert!(w.observe(&[], t(10)).is_empty());
        assert_eq!(w.nearly_full(), 0);
        assert_eq!(w.observe(&[usage("sda", 10, 99)], t(20)).len(), 1);
    }

    // --- kmsg --------------------------------------------------------------------------------

    fn rec(pri: u32, seq: u64, msg: &str) -> KmsgRecord {
        parse_kmsg_record(&format!("{pri},{seq},{},-;{msg}\n", seq * 1000)).expect("record")
    }

    #[test]
    fn kmsg_record_parse_and_continuation_lines() {
        let r = parse_kmsg_record(
            "6,339,5140900,-,caller=T123;NET: Registered PF_INET6 protocol family\n \
             SUBSYSTEM=net\n DEVICE=+net:eth0\n",
        )
        .expect("record");
        assert_eq!(r.level, 6);
        assert_eq!(r.facility, 0);
        assert_eq!(r.seq, 339);
        assert_eq!(r.ts_usec, 5_140_900);
        assert_eq!(r.message, "NET: Registered PF_INET6 protocol family");
        let user = parse_kmsg_record("14,2,3,-;systemd[1]: hello").expect("user record");
        assert_eq!((user.facility, user.level), (1, 6));
        let text = "3,1,100,-;first\n SUBSYSTEM=block\n DEVICE=b8:0\n4,2,200,c;second\nbad\n\n";
        let rs = parse_kmsg_records(text);
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[0].message, "first");
        assert_eq!(rs[1].message, "second");
        assert!(parse_kmsg_record("no header").is_none());
        assert!(parse_kmsg_record("x,1,2,-;msg").is_none());
    }

    #[test]
    fn classify_hung_task() {
        let f = classify_kmsg("INFO: task kworker/0:1:123 blocked for more than 120 seconds.");
        assert_eq!(
            f,
            Some(KmsgFact::HungTask {
                comm: "kworker/0:1".into(),
                pid: 123,
                blocked_seconds: 120
            })
        );
        let f = classify_kmsg("INFO: task jbd2/sda1-8:412 blocked for more than 245 seconds.");
        assert!(matches!(
            f,
            Some(KmsgFact::HungTask {
                pid: 412,
                blocked_seconds: 245,
                ..
            })
        ));
        assert_eq!(
            classify_kmsg(
                "\"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message."
            ),
            None
        );
    }

    fn io(msg: &str) -> IoErrorFact {
        match classify_kmsg(msg) {
            Some(KmsgFact::IoError(f)) => f,
            other => panic!("{msg:?} classified as {other:?}"),
        }
    }

    #[test]
    fn classify_io_errors() {
        let f = io(
            "I/O error, dev sda, sector 12345 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 2",
        );
        assert_eq!(f.device, "sda");
        assert_eq!(f.layer, IoErrorLayer::Block);
        assert_eq!(f.sector, Some(12345));
        assert_eq!(f.op.as_deref(), Some("WRITE"));
        assert_eq!(f.blk_status.as_deref(), Some("I/O"));

        let f = io(
            "blk_update_request: I/O error, dev loop0, sector 2048 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 0",
        );
        assert_eq!((f.device.as_str(), f.sector), ("loop0", Some(2048)));
        assert_eq!(f.op.as_deref(), Some("READ"));

        let f = io("print_req_error: I/O error, dev nvme0n1, sector 987654");
        assert_eq!(
            (f.device.as_str(), f.sector, f.op),
            ("nvme0n1", Some(987_654), None)
        );

        let f = io(
            "critical medium error, dev sdb, sector 4096 op 0x0:(READ) flags 0x0 phys_seg 8 prio class 2",
        );
        assert_eq!(f.blk_status.as_deref(), Some("critical medium"));

        let f = io("Buffer I/O error on dev sdb1, logical block 0, async page read");
        assert_eq!(f.device, "sdb1");
        assert_eq!(f.layer, IoErrorLayer::Buffer);
        assert_eq!(f.logical_block, Some(0));
        assert_eq!(f.sector, None);

        let f = io(
            "EXT4-fs error (device sda1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0",
        );
        assert_eq!(f.device, "sda1");
        assert_eq!(f.layer, IoErrorLayer::Filesystem);
        assert_eq!(f.fs_type.as_deref(), Some("ext4"));

        let f = io(
            "XFS (dm-0): metadata I/O error in \"xfs_buf_ioend+0x1b0/0x470 [xfs]\" at daddr 0x1 len 1 error 5",
        );
        assert_eq!(
            (f.device.as_str(), f.fs_type.as_deref()),
            ("dm-0", Some("xfs"))
        );

        let f = io(
            "BTRFS error (device sdc: state EA): bdev /dev/sdc errs: wr 1, rd 0, flush 0, corrupt 0, gen 0",
        );
        assert_eq!(
            (f.device.as_str(), f.fs_type.as_deref()),
            ("sdc", Some("btrfs"))
        );

        // Not storage failures.
        assert_eq!(
            classify_kmsg(
                "operation not supported error, dev sda, sector 0 op 0x3:(DISCARD) flags 0x0"
            ),
            None
        );
        assert_eq!(
            classify_kmsg("EXT4-fs (sda1): mounted filesystem with ordered data mode."),
            None
        );
        assert_eq!(classify_kmsg("XFS (sda1): Mounting V5 Filesystem"), None);
        assert_eq!(
            classify_kmsg("usb 1-1: new high-speed USB device number 2 using xhci_hcd"),
            None
        );
    }

    #[test]
    fn classify_oom_lines() {
        let k = match classify_kmsg(
            "Out of memory: Killed process 1234 (stress) total-vm:1052360kB, anon-rss:1031168kB, file-rss:4kB, shmem-rss:0kB, UID:0 pgtables:2068kB oom_score_adj:0",
        ) {
            Some(KmsgFact::OomKilled(k)) => k,
            other => panic!("{other:?}"),
        };
        assert_eq!(k.pid, 1234);
        assert_eq!(k.comm, "stress");
        assert!(!k.memcg);
        assert_eq!(k.total_vm_kb, Some(1_052_360));
        assert_eq!(k.anon_rss_kb, Some(1_031_168));
        assert_eq!(k.file_rss_kb, Some(4));
        assert_eq!(k.shmem_rss_kb, Some(0));
        assert_eq!(k.uid, Some(0));
        assert_eq!(k.oom_score_adj, Some(0));

        let k = match classify_kmsg(
            "Memory cgroup out of memory: Killed process 4321 (python3) total-vm:524288kB, anon-rss:262144kB, file-rss:1024kB, shmem-rss:0kB, UID:1000 pgtables:1000kB oom_score_adj:937",
        ) {
            Some(KmsgFact::OomKilled(k)) => k,
            other => panic!("{other:?}"),
        };
        assert!(k.memcg);
        assert_eq!((k.pid, k.comm.as_str()), (4321, "python3"));
        assert_eq!(k.oom_score_adj, Some(937));

        // A comm holding ") " is cut at the numbers.
        let k = match classify_kmsg(
            "Out of memory: Killed process 7 (a) b) total-vm:1kB, anon-rss:2kB",
        ) {
            Some(KmsgFact::OomKilled(k)) => k,
            other => panic!("{other:?}"),
        };
        assert_eq!(k.comm, "a) b");
        assert_eq!(k.anon_rss_kb, Some(2));

        let sm = match classify_kmsg(
            "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0-1,3,oom_memcg=/kubepods/burstable/pod1f2e,task_memcg=/kubepods/burstable/pod1f2e/cri-containerd-abc123,task=python3,pid=4321,uid=0",
        ) {
            Some(KmsgFact::OomSummary(s)) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(sm.pid, 4321);
        assert_eq!(sm.task.as_deref(), Some("python3"));
        assert_eq!(sm.constraint.as_deref(), Some("CONSTRAINT_MEMCG"));
        assert_eq!(sm.oom_memcg.as_deref(), Some("/kubepods/burstable/pod1f2e"));
        assert_eq!(
            sm.task_memcg.as_deref(),
            Some("/kubepods/burstable/pod1f2e/cri-containerd-abc123")
        );
        assert_eq!(sm.uid, Some(0));

        // Not kills.
        assert_eq!(
            classify_kmsg(
                "oom_reaper: reaped process 4321 (python3), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"
            ),
            None
        );
        assert_eq!(
            classify_kmsg(
                "python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=937"
            ),
            None
        );
        assert_eq!(
            classify_kmsg("Out of memory: Kill process 1234 (stress) score 900 or sacrifice child"),
            None
        );
        assert_eq!(classify_kmsg("myapp: Killed process 5 (x) for fun"), None);
    }

    const OOM_SUMMARY: &str = "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=cri-containerd-abc123.scope,mems_allowed=0,oom_memcg=/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1f2e.slice,task_memcg=/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1f2e.slice/cri-containerd-abc123.scope,task=python3,pid=4321,uid=0";
    const OOM_KILLED: &str = "Memory cgroup out of memory: Killed process 4321 (python3) total-vm:524288kB, anon-rss:262144kB, file-rss:1024kB, shmem-rss:0kB, UID:0 pgtables:1000kB oom_score_adj:937";

    #[test]
    fn oom_two_records_merge_into_one_event() {
        let mut c = KmsgClassifier::new("n1", &cfg());
        assert!(
            c.push(&rec(4, 10, OOM_SUMMARY), t(0)).is_empty(),
            "held for its partner"
        );
        assert!(c.push(&rec(6, 11, "unrelated line"), t(0)).is_empty());
        let ev = c.push(&rec(3, 12, OOM_KILLED), t(1));
        assert_eq!(ev.len(), 1);
        let e = &ev[0];
        assert_eq!(e.kind.as_str(), "kernel.container.oom_kill");
        assert_eq!(e.severity, EventSeverity::Critical);
        assert_eq!(e.time, t(0));
        assert_eq!(f(e, "pid"), 4321.0);
        assert_eq!(s(e, "comm"), "python3");
        assert!(s(e, "cgroup").ends_with("cri-containerd-abc123.scope"));
        assert!(s(e, "oom_memcg").ends_with("pod1f2e.slice"));
        assert_eq!(s(e, "constraint"), "CONSTRAINT_MEMCG");
        assert_eq!(f(e, "anon_rss_kb"), 262_144.0);
        assert_eq!(f(e, "total_vm_kb"), 524_288.0);
        assert_eq!(s(e, "observer"), "kmsg");
        assert!(c.flush(t(100)).is_empty(), "nothing left over");
    }

    #[test]
    fn oom_lone_records_are_reported_alone() {
        let mut c = KmsgClassifier::new("n1", &cfg());
        // Killed process without summary (old kernel): at once, with what it knows.
        let ev = c.push(
            &rec(3, 1, "Out of memory: Killed process 99 (java) total-vm:10kB, anon-rss:5kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:1kB oom_score_adj:0"),
            t(0),
        );
        assert_eq!(ev.len(), 1);
        assert_eq!(s(&ev[0], "comm"), "java");
        assert!(!ev[0].attributes.contains_key("constraint"));
        assert!(!ev[0].attributes.contains_key("cgroup"));
        // Summary whose partner never comes: reported after the merge window.
        assert!(c.push(&rec(4, 2, OOM_SUMMARY), t(10)).is_empty());
        assert!(c.flush(t(11)).is_empty());
        let ev = c.flush(t(12));
        assert_eq!(ev.len(), 1);
        assert_eq!(s(&ev[0], "comm"), "python3");
        assert_eq!(f(&ev[0], "pid"), 4321.0);
        assert!(!ev[0].attributes.contains_key("anon_rss_kb"));
        // A Killed line with another pid does not take the summary.
        assert!(c.push(&rec(4, 3, OOM_SUMMARY), t(20)).is_empty());
        let ev = c.push(
            &rec(
                3,
                4,
                "Memory cgroup out of memory: Killed process 5 (sh) total-vm:1kB, anon-rss:1kB",
            ),
            t(20),
        );
        assert_eq!(ev.len(), 1);
        assert_eq!(f(&ev[0], "pid"), 5.0);
        assert_eq!(s(&ev[0], "constraint"), "CONSTRAINT_MEMCG");
        assert_eq!(c.flush_all().len(), 1);
    }

    #[test]
    fn kmsg_events_hung_task_and_io_error() {
        let mut c = KmsgClassifier::new("n1", &cfg());
        let ev = c.push(
            &rec(
                3,
                1,
                "INFO: task kworker/0:1:123 blocked for more than 120 seconds.",
            ),
            t(0),
        );
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].kind.as_str(), "node.kernel.hung_task");
        assert_eq!(ev[0].severity, EventSeverity::Error);
        assert_eq!(s(&ev[0], "comm"), "kworker/0:1");
        assert_eq!(f(&ev[0], "pid"), 123.0);
        assert_eq!(f(&ev[0], "blocked_seconds"), 120.0);
        let ev = c.push(
            &rec(3, 2, "I/O error, dev sda, sector 12345 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 2"),
            t(0),
        );
        assert_eq!(ev.len(), 1);
        let e = &ev[0];
        assert_eq!(e.kind.as_str(), "kernel.storage.io_error");
        assert_eq!(e.severity, EventSeverity::Error);
        assert_eq!(s(e, "device"), "sda");
        assert_eq!(f(e, "sector"), 12345.0);
        assert_eq!(s(e, "observer"), "kmsg");
        // User-space records (facility 1) cannot forge facts.
        assert!(
            c.push(
                &rec(11, 3, "INFO: task x:1 blocked for more than 120 seconds."),
                t(0)
            )
            .is_empty()
        );
    }

    #[test]
    fn disabled_oom_and_io_emission_is_honoured() {
        let c0 = NodeConfig {
            kmsg_emit_oom: false,
            kmsg_emit_io_errors: false,
            ..cfg()
        };
        let mut c = KmsgClassifier::new("n1", &c0);
        assert!(c.push(&rec(4, 1, OOM_SUMMARY), t(0)).is_empty());
        assert!(c.push(&rec(3, 2, OOM_KILLED), t(0)).is_empty());
        assert!(
            c.push(
                &rec(
                    3,
                    3,
                    "Buffer I/O error on dev sdb1, logical block 0, async page read"
                ),
                t(0)
            )
            .is_empty()
        );
        assert!(c.flush(t(100)).is_empty());
        // Hung tasks are always reported.
        assert_eq!(
            c.push(
                &rec(3, 4, "INFO: task a:1 blocked for more than 120 seconds."),
                t(0)
            )
            .len(),
            1
        );
        // Turning OOM off at run time drops a held summary.
        let mut c = KmsgClassifier::new("n1", &cfg());
        assert!(c.push(&rec(4, 1, OOM_SUMMARY), t(0)).is_empty());
        c.set_emit_oom(false);
        assert!(c.flush(t(100)).is_empty());
        assert!(c.push(&rec(3, 2, OOM_KILLED), t(100)).is_empty());
        c.set_emit_oom(true);
        c.set_emit_io_errors(false);
        assert_eq!(c.push(&rec(3, 3, OOM_KILLED), t(100)).len(), 1);
        assert!(
            c.push(
                &rec(
                    3,
                    4,
                    "I/O error, dev sda, sector 1 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0"
                ),
                t(100)
            )
            .is_empty()
        );
        // Ignored device prefixes.
        let mut c = KmsgClassifier::new(
            "n1",
            &NodeConfig {
                kmsg_ignore_io_devices: vec!["loop".into()],
                ..cfg()
            },
        );
        assert!(
            c.push(
                &rec(3, 1, "blk_update_request: I/O error, dev loop0, sector 0"),
                t(0)
            )
            .is_empty()
        );
        assert_eq!(
            c.push(
                &rec(3, 2, "blk_update_request: I/O error, dev sda, sector 0"),
                t(0)
            )
            .len(),
            1
        );
    }

    #[test]
    fn kmsg_reader_reads_only_new_records_and_counts_gaps() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kmsg");
        std::fs::write(&path, "6,1,10,-;old record before open\n").expect("write");
        let mut r = KmsgReader::open(&path).expect("open");
        assert!(r.read_available().expect("read").is_empty());
        let mut w = OpenOptions::new().append(true).open(&path).expect("append");
        w.write_all(b"3,2,20,-;INFO: task a:1 blocked for more than 120 seconds.\n SUBSYSTEM=x\n6,5,30,-;later\n")
            .expect("write");
        let recs = r.read_available().expect("read");
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].seq, 2);
        assert_eq!(recs[1].message, "later");
        assert_eq!(r.lost(), 2, "seq 3 and 4 were lost");
        assert!(r.read_available().expect("read").is_empty());
        assert!(KmsgReader::open(dir.path().join("missing")).is_err());
    }

    // --- kernel limits, lockups and filesystem errors in the kernel log ---------------------

    #[test]
    fn classify_soft_lockups_and_rcu_stalls() {
        // kernel/watchdog.c: pr_emerg("BUG: soft lockup - CPU#%d stuck for %us! [%s:%d]\n")
        // with pr_fmt "watchdog: ".
        assert_eq!(
            classify_kmsg("watchdog: BUG: soft lockup - CPU#3 stuck for 23s! [kworker/3:1:1234]"),
            Some(KmsgFact::SoftLockup {
                cpu: 3,
                stuck_seconds: 23,
                comm: Some("kworker/3:1".into()),
                pid: Some(1234)
            })
        );
        // Before 4.13 without the prefix.
        assert_eq!(
            classify_kmsg("BUG: soft lockup - CPU#0 stuck for 67s! [swapper/0:0]"),
            Some(KmsgFact::SoftLockup {
                cpu: 0,
                stuck_seconds: 67,
                comm: Some("swapper/0".into()),
                pid: Some(0)
            })
        );
        // kernel/rcu/tree_stall.h with pr_fmt "rcu: ".
        assert_eq!(
            classify_kmsg("rcu: INFO: rcu_sched self-detected stall on CPU"),
            Some(KmsgFact::RcuStall {
                flavor: "rcu_sched".into(),
                self_detected: true,
                cpu: None
            })
        );
        assert_eq!(
            classify_kmsg("rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:"),
            Some(KmsgFact::RcuStall {
                flavor: "rcu_preempt".into(),
                self_detected: false,
                cpu: None
            })
        );
        assert_eq!(
            classify_kmsg(
                "rcu: INFO: rcu_sched detected expedited stalls on CPUs/tasks: { 3-... } 21002 jiffies s: 845 root: 0x8/."
            ),
            Some(KmsgFact::RcuStall {
                flavor: "rcu_sched".into(),
                self_detected: false,
                cpu: None
            })
        );
        assert_eq!(
            classify_kmsg("rcu: INFO: rcu_tasks detected stalls on tasks:"),
            Some(KmsgFact::RcuStall {
                flavor: "rcu_tasks".into(),
                self_detected: false,
                cpu: None
            })
        );
        // Older kernels name the CPU on the same line.
        assert_eq!(
            classify_kmsg(
                "INFO: rcu_sched self-detected stall on CPU { 3}  (t=60000 jiffies g=6045 c=6044 q=1042)"
            ),
            Some(KmsgFact::RcuStall {
                flavor: "rcu_sched".into(),
                self_detected: true,
                cpu: Some(3)
            })
        );
        // Not stalls.
        assert_eq!(classify_kmsg("rcu: Hierarchical RCU implementation."), None);
        assert_eq!(
            classify_kmsg("rcu: \t3-....: (5249 ticks this GP) idle=e3e/1/0x4000000000000002"),
            None
        );
        assert!(matches!(
            classify_kmsg("INFO: task kworker/0:1:123 blocked for more than 120 seconds."),
            Some(KmsgFact::HungTask { .. })
        ));
    }

    #[test]
    fn classify_conntrack_table_full() {
        // nf_conntrack_core.c: net_warn_ratelimited("nf_conntrack: table full, dropping
        // packet\n"); the module's pr_fmt doubles the prefix on most kernels.
        for line in [
            "nf_conntrack: nf_conntrack: table full, dropping packet",
            "nf_conntrack: table full, dropping packet",
            "nf_conntrack: table full, dropping packet.",
        ] {
            assert_eq!(
                classify_kmsg(line),
                Some(KmsgFact::ConntrackFull { netns: None }),
                "{line}"
            );
        }
        assert_eq!(
            classify_kmsg("nf_conntrack: table full in netns 4026532290, dropping packet"),
            Some(KmsgFact::ConntrackFull {
                netns: Some(4_026_532_290)
            })
        );
        assert_eq!(
            classify_kmsg(
                "nf_conntrack: default automatic helper assignment has been turned off for security reasons and CT-based firewall rule not found. Use the iptables CT target to attach helpers instead."
            ),
            None
        );
    }

    fn fs(m: &str) -> FsErrorFact {
        parse_fs_error(m).unwrap_or_else(|| panic!("{m:?} is not a filesystem error"))
    }

    fn fs_tuple(f: &FsErrorFact) -> (&str, Option<&str>, &str) {
        (f.fs_type.as_str(), f.device.as_deref(), f.class)
    }

    #[test]
    fn parse_filesystem_errors() {
        // fs/ext4/super.c formats.
        for (line, want) in [
            (
                "EXT4-fs error (device sda1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0",
                ("ext4", Some("sda1"), "error"),
            ),
            (
                "EXT4-fs error (device dm-0): ext4_lookup:1855: inode #131074: comm nginx: deleted inode referenced: 131099",
                ("ext4", Some("dm-0"), "error"),
            ),
            (
                "EXT4-fs error (device nvme0n1p1): ext4_validate_block_bitmap:390: comm kworker/u16:2: bg 12: bad block bitmap checksum",
                ("ext4", Some("nvme0n1p1"), "error"),
            ),
            (
                "EXT4-fs error (device sdb1) in ext4_reserve_inode_write:5725: IO failure",
                ("ext4", Some("sdb1"), "error"),
            ),
            (
                "EXT4-fs warning (device sdb1): ext4_dx_add_entry:2509: Directory (ino: 1234) index full, reach max htree level :2",
                ("ext4", Some("sdb1"), "warning"),
            ),
            (
                "EXT4-fs (sda1): Remounting filesystem read-only",
                ("ext4", Some("sda1"), "read_only"),
            ),
            (
                "EXT2-fs (sdc1): error: remounting filesystem read-only",
                ("ext2", Some("sdc1"), "read_only"),
            ),
            // fs/xfs: "XFS (%s): %pV".
            (
                "XFS (sdb1): Corruption detected. Unmount and run xfs_repair",
                ("xfs", Some("sdb1"), "corruption"),
            ),
            (
                "XFS (dm-3): Metadata corruption detected at xfs_dinode_verify.part.0+0x172/0x640 [xfs], inode 0x2f8ff8 dinode",
                ("xfs", Some("dm-3"), "corruption"),
            ),
            (
                "XFS (sda1): Corruption of in-memory data (0x8) detected at xfs_trans_cancel+0x13a/0x160 [xfs] (fs/xfs/xfs_trans.c:1097).  Shutting down filesystem.",
                ("xfs", Some("sda1"), "corruption"),
            ),
            (
                "XFS (dm-0): metadata I/O error in \"xfs_buf_ioend+0x1b0/0x470 [xfs]\" at daddr 0x1 len 1 error 5",
                ("xfs", Some("dm-0"), "io_error"),
            ),
            (
                "XFS (sda1): log I/O error -5",
                ("xfs", Some("sda1"), "io_error"),
            ),
            (
                "XFS (sda1): Filesystem has been shut down due to log error (0x2).",
                ("xfs", Some("sda1"), "shutdown"),
            ),
            // fs/btrfs: "BTRFS %s (device %s%s): %pV".
            (
                "BTRFS error (device sdc: state EA): bdev /dev/sdc errs: wr 1, rd 0, flush 0, corrupt 0, gen 0",
                ("btrfs", Some("sdc"), "error"),
            ),
            (
                "BTRFS critical (device nvme0n1p3): corrupt leaf: root=2 block=30408704 slot=4, invalid key",
                ("btrfs", Some("nvme0n1p3"), "critical"),
            ),
            // The shape of other filesystems' messages.
            (
                "F2FS-fs (sda2): Remounting filesystem read-only",
                ("f2fs", Some("sda2"), "read_only"),
            ),
        ] {
            assert_eq!(fs_tuple(&fs(line)), want, "{line}");
        }
        assert_eq!(
            fs("EXT4-fs warning (device sdb1): ext4_dx_add_entry:2509: Directory index full!")
                .severity(),
            EventSeverity::Warning
        );
        assert_eq!(
            fs("EXT4-fs (sda1): Remounting filesystem read-only").severity(),
            EventSeverity::Error
        );
        for ok in [
            "EXT4-fs (sda1): mounted filesystem 4a5b... r/w with ordered data mode. Quota mode: none.",
            "EXT4-fs (sda1): re-mounted 4a5b... ro. Quota mode: none.",
            "XFS (sda1): Mounting V5 Filesystem 1b2c...",
            "XFS (sda1): Ending clean mount",
            "BTRFS info (device sda1): disk space caching is enabled",
            "BTRFS warning (device sda1): checksum verify failed on logical 123 mirror 1",
            "usb 1-1: new high-speed USB device number 2 using xhci_hcd",
        ] {
            assert_eq!(parse_fs_error(ok), None, "{ok}");
        }
    }

    #[test]
    fn fs_errors_are_reported_at_once_then_folded() {
        let mut c = KmsgClassifier::new("n1", &cfg()); // fold window 10 s
        let line = "EXT4-fs error (device sda1): ext4_lookup:1855: inode #131074: comm nginx: deleted inode referenced: 131099";
        let ev = c.push(&rec(2, 1, line), t(0));
        // The filesystem error, and (as before) the kernel.storage.io_error of the same line.
        let kinds: Vec<&str> = ev.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            vec!["node.kernel.fs_error", "kernel.storage.io_error"]
        );
        let e = &ev[0];
        assert_eq!(e.severity, EventSeverity::Error);
        assert_eq!(s(e, "device"), "sda1");
        assert_eq!(s(e, "fs_type"), "ext4");
        assert_eq!(s(e, "class"), "error");
        assert_eq!(s(e, "message"), line);
        assert_eq!(f(e, "count"), 1.0);
        assert_eq!(s(e, "observer"), "kmsg");
        // Repeats within the window are counted, not reported; another device is its own.
        for i in 0..3 {
            let ev = c.push(&rec(2, 2 + i, line), t(1 + i as i64));
            assert!(ev.iter().all(|e| e.kind.as_str() != "node.kernel.fs_error"));
        }
        let other = c.push(
            &rec(
                2,
                9,
                "EXT4-fs error (device sdb1): ext4_lookup:1855: inode #2: comm x: y",
            ),
            t(4),
        );
        assert_eq!(other[0].kind.as_str(), "node.kernel.fs_error");
        assert!(c.flush(t(9)).is_empty());
        let ev = c.flush(t(10));
        assert_eq!(
            ev.len(),
            1,
            "one folded report for sda1; none for sdb1 (no repeats)"
        );
        assert_eq!(f(&ev[0], "count"), 3.0);
        assert_eq!(s(&ev[0], "device"), "sda1");
        assert_eq!(ev[0].time, t(3), "time of the last folded record");
        // A new burst is reported at once again.
        let ev = c.push(&rec(2, 20, line), t(11));
        assert_eq!(f(&ev[0], "count"), 1.0);
        // Warnings are warnings; read-only remounts are errors of their own class.
        let ev = c.push(
            &rec(
                4,
                21,
                "EXT4-fs warning (device sda1): ext4_dx_add_entry:2509: Directory (ino: 1234) index full, reach max htree level :2",
            ),
            t(11),
        );
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].severity, EventSeverity::Warning);
        let ev = c.push(
            &rec(2, 22, "EXT4-fs (sda1): Remounting filesystem read-only"),
            t(11),
        );
        assert_eq!(s(&ev[0], "class"), "read_only");
        assert_eq!(ev[0].severity, EventSeverity::Error);
        // At shutdown pending counts are reported.
        c.push(&rec(2, 23, line), t(12));
        let ev = c.flush_all();
        assert_eq!(ev.len(), 1);
        assert_eq!(f(&ev[0], "count"), 1.0);
        // Folding off: every record is reported.
        let mut c = KmsgClassifier::new(
            "n1",
            &NodeConfig {
                kmsg_fold_seconds: 0,
                ..cfg()
            },
        );
        for i in 0..3 {
            let ev = c.push(
                &rec(
                    2,
                    i,
                    "XFS (sdb1): Corruption detected. Unmount and run xfs_repair",
                ),
                t(0),
            );
            assert_eq!(ev.len(), 1);
        }
        assert!(c.flush_all().is_empty());
    }

    #[test]
    fn kmsg_events_soft_lockup_rcu_and_conntrack() {
        let mut c = KmsgClassifier::new("n1", &cfg());
        let line = "watchdog: BUG: soft lockup - CPU#3 stuck for 23s! [kworker/3:1:1234]";
        let ev = c.push(&rec(0, 1, line), t(0));
        assert_eq!(ev.len(), 1);
        let e = &ev[0];
        assert_eq!(e.kind.as_str(), "node.kernel.soft_lockup");
        assert_eq!(e.severity, EventSeverity::Error);
        assert_eq!(f(e, "cpu"), 3.0);
        assert_eq!(f(e, "stuck_seconds"), 23.0);
        assert_eq!(s(e, "comm"), "kworker/3:1");
        assert_eq!(f(e, "pid"), 1234.0);
        assert_eq!(s(e, "message"), line);
        assert_eq!(s(e, "detector"), "soft_lockup");
        let ev = c.push(
            &rec(3, 2, "rcu: INFO: rcu_preempt self-detected stall on CPU"),
            t(0),
        );
        assert_eq!(ev[0].kind.as_str(), "node.kernel.soft_lockup");
        assert_eq!(s(&ev[0], "detector"), "rcu_stall");
        assert_eq!(s(&ev[0], "flavor"), "rcu_preempt");
        assert!(!ev[0].attributes.contains_key("cpu"));
        // Conntrack: the first drop at once, the flood folded.
        let drop_line = "nf_conntrack: nf_conntrack: table full, dropping packet";
        let ev = c.push(&rec(4, 3, drop_line), t(0));
        assert_eq!(ev.len(), 1);
        let e = &ev[0];
        assert_eq!(e.kind.as_str(), "node.limits.conntrack");
        assert_eq!(e.severity, EventSeverity::Error);
        assert_eq!(e.attributes.get("dropping"), Some(&AttrValue::Bool(true)));
        assert_eq!(s(e, "message"), drop_line);
        assert_eq!(f(e, "count"), 1.0);
        for i in 0..9 {
            assert!(c.push(&rec(4, 4 + i, drop_line), t(1)).is_empty());
        }
        let ns = c.push(
            &rec(
                4,
                20,
                "nf_conntrack: table full in netns 4026532290, dropping packet",
            ),
            t(1),
        );
        assert_eq!(f(&ns[0], "netns"), 4_026_532_290.0);
        let ev = c.flush(t(10));
        assert_eq!(ev.len(), 1);
        assert_eq!(f(&ev[0], "count"), 9.0);
        // User space cannot forge any of them.
        for m in [
            line,
            drop_line,
            "EXT4-fs (sda1): Remounting filesystem read-only",
        ] {
            assert!(c.push(&rec(12, 30, m), t(20)).is_empty(), "{m}");
        }
        // Long messages are cut.
        let long = format!("XFS (sda1): Corruption detected. {}", "é".repeat(600));
        let ev = c.push(&rec(1, 40, &long), t(30));
        let m = s(&ev[0], "message");
        assert!(m.len() <= MESSAGE_MAX_BYTES + "…".len() && m.ends_with('…'));
    }

    /// A fake procfs and cgroup tree where every limit is near full, a kernel log file, and
    /// the observer polled twice, 30 s apart.
    #[test]
    fn node_observer_reports_limits_throttling_and_kmsg_facts() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        let proc = dir.path().join("proc");
        for d in ["sys/fs/inotify", "sys/kernel", "sys/net/netfilter"] {
            std::fs::create_dir_all(proc.join(d)).expect("mkdir");
        }
        std::fs::write(proc.join("sys/fs/file-nr"), "950\t0\t1000\n").expect("w");
        std::fs::write(proc.join("loadavg"), "1.00 1.00 1.00 2/100 999\n").expect("w");
        std::fs::write(proc.join("sys/kernel/pid_max"), "32768\n").expect("w");
        std::fs::write(proc.join("sys/fs/inotify/max_user_instances"), "128\n").expect("w");
        let fd_dir = proc.join("4242/fd");
        std::fs::create_dir_all(&fd_dir).expect("mkdir");
        std::fs::write(
            proc.join("4242/status"),
            "Name:\tkubelet\nUid:\t0\t0\t0\t0\n",
        )
        .expect("w");
        for i in 0..120 {
            std::os::unix::fs::symlink(limits::INOTIFY_LINK, fd_dir.join(i.to_string()))
                .expect("symlink");
        }
        let cgroups = dir.path().join("cgroup");
        let pod = "/kubepods/burstable/pod82b77fd4-702b-43c8-b51c-b72599117113";
        let containers = [
            format!("{pod}/{}", "4".repeat(64)),
            format!("{pod}/{}", "5".repeat(64)),
        ];
        let write_stat = |rel: &str, periods: u64, throttled: u64| {
            let d = limits::cgroup_dir(&cgroups, rel);
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::write(
                d.join("cpu.stat"),
                format!(
                    "nr_periods {periods}\nnr_throttled {throttled}\nthrottled_time 1000000000\n"
                ),
            )
            .expect("w");
        };
        write_stat(&containers[0], 100, 0);
        write_stat(&containers[1], 100, 0);
        let kmsg = dir.path().join("kmsg");
        std::fs::write(&kmsg, "").expect("w");
        let config = NodeConfig {
            psi_enabled: false,
            fs_enabled: false,
            kmsg_path: kmsg.clone(),
            limits_proc_root: Some(proc.clone()),
            cpu_throttle_cgroup_root: Some(cgroups.clone()),
            cpu_throttle_max_cgroups: 1,
            ..cfg()
        };
        let metrics = Arc::new(Metrics::new());
        let mut o = NodeObserver::new("worker-1", config).expect("observer");
        o.set_metrics(metrics.clone());
        let kinds = |ev: &[Event]| {
            let mut k: Vec<String> = ev.iter().map(|e| e.kind.as_str().to_owned()).collect();
            k.sort();
            k
        };
        let ev = o.poll(t(0));
        assert_eq!(
            kinds(&ev),
            vec!["node.limits.file_descriptors", "node.limits.inotify"],
            "{ev:?}"
        );
        let ino = ev
            .iter()
            .find(|e| e.kind.as_str() == "node.limits.inotify")
            .expect("inotify");
        assert_eq!(
            (f(ino, "used"), f(ino, "max"), f(ino, "uid")),
            (120.0, 128.0, 0.0)
        );
        assert_eq!(ino.severity, EventSeverity::Warning);
        let st = o.status();
        assert_eq!(
            st.limits,
            SourceStatus::Available,
            "conntrack absent is no failure"
        );
        assert_eq!(
            st.cpu_throttle,
            SourceStatus::Degraded {
                reason: "1 container cgroups beyond cpu_throttle_max_cgroups (1) are not watched"
                    .into()
            }
        );
        assert_eq!(st.cpu_cgroups_tracked, 1);
        assert_eq!(st.cpu_cgroups_untracked_total, 1);
        let scan = st.inotify_last_scan.expect("scanned");
        assert_eq!(
            (scan.processes, scan.fds, scan.worst_instances),
            (1, 120, 120)
        );
        assert!(!scan.truncated);

        // 30 s later: conntrack loaded and full, the kernel drops packets, a container is
        // throttled, pids near pid_max.
        std::fs::write(
            proc.join("sys/net/netfilter/nf_conntrack_count"),
            "260000\n",
        )
        .expect("w");
        std::fs::write(proc.join("sys/net/netfilter/nf_conntrack_max"), "262144\n").expect("w");
        std::fs::write(proc.join("loadavg"), "1.00 1.00 1.00 2/32000 999\n").expect("w");
        write_stat(&containers[0], 400, 200);
        write_stat(&containers[1], 400, 400);
        let mut w = OpenOptions::new().append(true).open(&kmsg).expect("append");
        w.write_all(b"4,100,5000,-;nf_conntrack: nf_conntrack: table full, dropping packet\n")
            .expect("w");
        let ev = o.poll(t(30));
        assert_eq!(
            kinds(&ev),
            vec![
                "kernel.container.cpu_throttled",
                "node.limits.conntrack",
                "node.limits.conntrack",
                "node.limits.file_descriptors",
                "node.limits.inotify",
                "node.limits.pids",
            ],
            "{ev:?}"
        );
        let dropping = ev
            .iter()
            .find(|e| e.attributes.contains_key("dropping"))
            .expect("dropping");
        assert_eq!(dropping.severity, EventSeverity::Error);
        assert_eq!(
            f(dropping, "used"),
            260_000.0,
            "the table's reading comes along"
        );
        assert_eq!(f(dropping, "max"), 262_144.0);
        assert_eq!(f(dropping, "threshold"), 0.9);
        let fill = ev
            .iter()
            .find(|e| {
                e.kind.as_str() == "node.limits.conntrack"
                    && e.severity == EventSeverity::Error
                    && !e.attributes.contains_key("dropping")
            })
            .expect("table fill at 0.99 is an error");
        assert_eq!(f(fill, "ratio"), 0.9918);
        let thr = ev
            .iter()
            .find(|e| e.kind.as_str() == "kernel.container.cpu_throttled")
            .expect("throttled");
        assert_eq!(
            f(thr, "ratio"),
            0.6667,
            "the tracked container (the first found)"
        );
        assert_eq!(
            thr.entity.container_id.as_deref(),
            Some("4".repeat(64).as_str())
        );
        assert_eq!(
            thr.entity.pod_uid.as_deref(),
            Some("82b77fd4-702b-43c8-b51c-b72599117113")
        );
        assert_eq!(f(thr, "interval_seconds"), 30.0);
        let pids = ev
            .iter()
            .find(|e| e.kind.as_str() == "node.limits.pids")
            .expect("pids");
        assert_eq!(s(pids, "limit"), "kernel.pid_max");
        assert_eq!(o.status().limits_active.len(), 4);
        let text = metrics.encode();
        assert!(
            text.contains("tapio_agent_node_untracked_total{reason=\"cpu_cgroups_over_limit\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("tapio_agent_node_scan_seconds{scan=\"inotify\"}"),
            "{text}"
        );
        assert!(
            text.contains("tapio_agent_node_scan_seconds{scan=\"cpu_throttle\"}"),
            "{text}"
        );
        for e in &ev {
            let body = serde_json::to_vec(e).expect("json");
            tapio_proto::decode_single_event(&body, e.time, &tapio_proto::Limits::default())
                .unwrap_or_else(|err| panic!("{e:?}: {err}"));
        }
        // Unreadable limits are said, not hidden.
        std::fs::remove_file(proc.join("sys/fs/file-nr")).expect("rm");
        o.poll(t(31));
        assert!(
            matches!(&o.status().limits, SourceStatus::Degraded { reason } if reason.contains("file-nr")),
            "{:?}",
            o.status().limits
        );
        let json = serde_json::to_value(o.status()).expect("json");
        assert_eq!(json["cpu_throttle"]["state"], "degraded");
        // A scan cut short says its counts are lower bounds.
        let mut o = NodeObserver::new(
            "worker-1",
            NodeConfig {
                psi_enabled: false,
                fs_enabled: false,
                kmsg_enabled: false,
                cpu_throttle_enabled: false,
                limits_proc_root: Some(proc.clone()),
                limits_inotify_max_fds: 10,
                ..cfg()
            },
        )
        .expect("observer");
        o.poll(t(0));
        let st = o.status();
        assert!(st.inotify_last_scan.expect("scanned").truncated);
        assert!(
            matches!(&st.limits, SourceStatus::Degraded { reason } if reason.contains("lower bounds")),
            "{:?}",
            st.limits
        );
    }

    #[test]
    fn missing_proc_and_cgroup_roots_are_said_not_hidden() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut o = NodeObserver::new(
            "n1",
            NodeConfig {
                psi_enabled: false,
                fs_enabled: false,
                kmsg_enabled: false,
                limits_proc_root: Some(dir.path().join("no-proc")),
                cpu_throttle_cgroup_root: Some(dir.path().join("no-cgroup")),
                ..cfg()
            },
        )
        .expect("observer");
        assert!(o.poll(t(0)).is_empty());
        let st = o.status();
        assert!(
            matches!(&st.limits, SourceStatus::Unavailable { reason }
                if reason.contains("file-nr") && reason.contains("max_user_instances") && reason.contains("limits_proc_root")),
            "{:?}",
            st.limits
        );
        assert!(
            matches!(&st.cpu_throttle, SourceStatus::Unavailable { reason } if reason.contains("no-cgroup")),
            "{:?}",
            st.cpu_throttle
        );
        let off = NodeObserver::new(
            "n1",
            NodeConfig {
                limits_enabled: false,
                cpu_throttle_enabled: false,
                kmsg_enabled: false,
                ..cfg()
            },
        )
        .expect("observer")
        .status();
        assert_eq!(
            (off.limits, off.cpu_throttle),
            (SourceStatus::Disabled, SourceStatus::Disabled)
        );
    }

    /// A loop-mounted ext4 image, unmounted and removed however the test ends.
    struct LoopExt4 {
        dir: tempfile::TempDir,
        mounted: bool,
    }

    impl Drop for LoopExt4 {
        fn drop(&mut self) {
            if self.mounted {
                let _ = std::process::Command::new("umount")
                    .arg(self.dir.path().join("mnt"))
                    .status();
            }
        }
    }

    /// The kernel's own `EXT4-fs error` and `Remounting filesystem read-only` records, made
    /// through ext4's `trigger_fs_error` knob on a throw-away loop-mounted image (no
    /// corruption needed), read back from `/dev/kmsg` and classified.
    #[test]
    fn a_real_ext4_error_becomes_fs_error() {
        use std::process::Command;
        if !nix::unistd::geteuid().is_root() {
            eprintln!(
                "NOT RUN: mounting a loop image needs root; run the agent tests as root to cover real ext4 errors"
            );
            return;
        }
        let mut kmsg = KmsgReader::open("/dev/kmsg").expect("/dev/kmsg as root");
        let dir = tempfile::tempdir().expect("tempdir");
        let img = dir.path().join("fs.img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).expect("mkdir");
        std::fs::File::create(&img)
            .and_then(|f| f.set_len(8 << 20))
            .expect("image");
        let mkfs = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&img)
            .status()
            .expect("mkfs.ext4 (e2fsprogs) is needed for this test");
        assert!(mkfs.success(), "mkfs.ext4 failed");
        let mut guard = LoopExt4 {
            dir,
            mounted: false,
        };
        let mount = Command::new("mount")
            .args(["-o", "loop,errors=remount-ro"])
            .arg(&img)
            .arg(&mnt)
            .status()
            .expect("mount");
        assert!(mount.success(), "mounting a loop ext4 image failed");
        guard.mounted = true;
        let source = Command::new("findmnt")
            .args(["-no", "SOURCE"])
            .arg(&mnt)
            .output()
            .expect("findmnt");
        let device = String::from_utf8_lossy(&source.stdout)
            .trim()
            .trim_start_matches("/dev/")
            .to_owned();
        assert!(device.starts_with("loop"), "{device:?}");
        std::fs::write(
            format!("/sys/fs/ext4/{device}/trigger_fs_error"),
            "tapio test error",
        )
        .expect("trigger_fs_error");
        drop(guard);
        let mut c = KmsgClassifier::new("this-node", &cfg());
        let mut events = Vec::new();
        for _ in 0..50 {
            for r in kmsg.read_available().expect("read /dev/kmsg") {
                events.extend(c.push(&r, Utc::now()));
            }
            let done = events
                .iter()
                .filter(|e| e.kind.as_str() == "node.kernel.fs_error")
                .filter(|e| e.attr_str("device").as_deref() == Some(device.as_str()))
                .count()
                >= 2;
            if done {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let ours: Vec<&Event> = events
            .iter()
            .filter(|e| e.kind.as_str() == "node.kernel.fs_error")
            .filter(|e| e.attr_str("device").as_deref() == Some(device.as_str()))
            .collect();
        let classes: Vec<String> = ours.iter().map(|e| s(e, "class")).collect();
        assert_eq!(classes, vec!["error", "read_only"], "{events:?}");
        let error = ours[0];
        assert_eq!(error.severity, EventSeverity::Error);
        assert_eq!(s(error, "fs_type"), "ext4");
        assert!(
            s(error, "message").starts_with(&format!("EXT4-fs error (device {device}): ")),
            "{error:?}"
        );
        assert!(s(error, "message").contains("tapio test error"));
        assert_eq!(f(error, "count"), 1.0);
    }

    // --- combined observer and the real machine ----------------------------------------------

    #[test]
    fn node_observer_reports_sources_and_events() {
        let dir = tempfile::tempdir().expect("tempdir");
        let psi = dir.path().join("pressure");
        std::fs::create_dir(&psi).expect("mkdir");
        std::fs::write(
            psi.join("memory"),
            "some avg10=50.00 avg60=40.00 avg300=10.00 total=1\nfull avg10=5.00 avg60=1.00 avg300=0.00 total=1\n",
        )
        .expect("write");
        std::fs::write(
            psi.join("cpu"),
            "some avg10=1.00 avg60=1.00 avg300=1.00 total=1\n",
        )
        .expect("write");
        let mountinfo = dir.path().join("mountinfo");
        std::fs::write(&mountinfo, "1 0 0:1 / / rw - proc proc rw\n").expect("write");
        let config = NodeConfig {
            psi_dir: psi.clone(),
            psi_sustain_seconds: 0,
            fs_mountinfo_path: mountinfo,
            kmsg_path: dir.path().join("no-kmsg"),
            limits_enabled: false,
            cpu_throttle_enabled: false,
            ..cfg()
        };
        let mut o = NodeObserver::new("worker-1", config).expect("observer");
        let ev = o.poll(t(0));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].kind.as_str(), "node.pressure.memory");
        assert_eq!(ev[0].entity.node.as_deref(), Some("worker-1"));
        let st = o.status();
        assert!(matches!(&st.psi, SourceStatus::Degraded { reason } if reason.contains("io")));
        assert!(
            matches!(&st.kmsg, SourceStatus::Unavailable { reason } if reason.contains("does not exist"))
        );
        assert!(
            matches!(&st.filesystems, SourceStatus::Degraded { reason } if reason.contains("no writable block filesystem"))
        );
        assert_eq!(st.pressure_active, vec![PsiResource::Memory]);
        assert!(st.kmsg_emit_oom);
        std::fs::remove_dir_all(&psi).expect("rm");
        assert!(o.poll(t(10)).is_empty());
        assert!(
            matches!(&o.status().psi, SourceStatus::Unavailable { reason } if reason.contains("no PSI"))
        );
        let json = serde_json::to_value(o.status()).expect("json");
        assert_eq!(json["psi"]["state"], "unavailable");
        assert!(
            NodeObserver::new(
                "w",
                NodeConfig {
                    fs_warning_percent: 0.0,
                    ..cfg()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn reads_this_machines_pressure_mountinfo_and_kmsg() {
        let dir = Path::new("/proc/pressure");
        for r in PsiResource::ALL {
            match read_psi(dir, r) {
                Ok(p) => assert!(p.some.avg10 >= 0.0 && p.some.avg10 <= 100.0),
                Err(e) => eprintln!("skipping PSI {}: {e}", r.as_str()),
            }
        }
        match std::fs::read_to_string("/proc/self/mountinfo") {
            Ok(text) => {
                let all = parse_mountinfo(&text);
                assert!(!all.is_empty(), "mountinfo parsed to nothing");
                let c = cfg();
                for m in select_filesystems(&all, &c.fs_types, true) {
                    if let Ok(u) = stat_filesystem(&m, Path::new("/")) {
                        assert!((0.0..=1.0).contains(&u.used_ratio()), "{u:?}");
                    }
                }
            }
            Err(e) => eprintln!("skipping mountinfo: {e}"),
        }
        match KmsgReader::open("/dev/kmsg") {
            Ok(mut r) => {
                r.read_available().expect("non-blocking read of /dev/kmsg");
            }
            Err(e) => eprintln!("skipping /dev/kmsg: {e}"),
        }
        // The whole observer on real paths: never panics, always says what it sees.
        let mut o = NodeObserver::new("this-node", cfg()).expect("observer");
        o.poll(Utc::now());
        let st = o.status();
        assert_ne!(st.psi, SourceStatus::Disabled);
        // Kernel limits are readable on any Linux (file-nr, loadavg, pid_max are world-readable).
        assert!(st.limits.is_available(), "{:?}", st.limits);
        let scan = st.inotify_last_scan.expect("the first poll scans");
        assert!(scan.processes > 0 && scan.fds > 0, "{scan:?}");
        assert_ne!(st.cpu_throttle, SourceStatus::Disabled);
    }
}
