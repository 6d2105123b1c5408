//! Node pressure observers that need no BPF: pressure stall information (PSI), filesystem
//! fill and the kernel log (`/dev/kmsg`).
//!
//! They run on every node, and they are what the agent still sees when its BPF programs
//! cannot be loaded. Each observer is a pure core (text in, facts out, clock injected) and a
//! thin reader of the real file, so every decision is tested without a kernel:
//!
//! | source | core | reader | events |
//! |---|---|---|---|
//! | `/proc/pressure/{cpu,memory,io}` | [`parse_psi`], [`PsiWatcher`] | [`read_psi`] | `node.pressure.cpu`, `node.pressure.memory`, `node.pressure.io` |
//! | `/proc/self/mountinfo` + `statvfs` | [`parse_mountinfo`], [`select_filesystems`], [`FillWatcher`] | [`stat_filesystem`] | `node.filesystem.nearly_full` |
//! | `/dev/kmsg` | [`parse_kmsg_records`], [`classify_kmsg`], [`KmsgClassifier`] | [`KmsgReader`] | `node.kernel.hung_task`, `kernel.storage.io_error`, `kernel.container.oom_kill` |
//!
//! [`NodeObserver`] combines the three, polled by the caller with the current time, and
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
use std::time::SystemTime;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tapio_proto::{AttrValue, Entity, Event, EventSeverity, EventType};
use ulid::Ulid;

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
        Ok(())
    }
}

/// Whole seconds as a chrono delta, saturating instead of panicking on huge values.
fn seconds(s: u64) -> TimeDelta {
    TimeDelta::try_seconds(i64::try_from(s).unwrap_or(i64::MAX)).unwrap_or(TimeDelta::MAX)
}

fn whole_seconds(d: TimeDelta) -> i64 {
    d.num_seconds().max(0)
}

fn int(v: u64) -> AttrValue {
    AttrValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

/// Rounds a ratio or percentage to 4 decimals, enough for any decision and readable.
fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Builds one node-scoped event. The id sorts by the event's time.
fn node_event(
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
    parse_io_error(m).map(KmsgFact::IoError)
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
        let Some(fact) = classify_kmsg(&record.message) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match fact {
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

    /// Reports summaries that waited `kmsg_oom_merge_seconds` without a partner.
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
        out
    }

    /// Reports every waiting summary (at shutdown).
    pub fn flush_all(&mut self) -> Vec<Event> {
        let pending: Vec<PendingOom> = self.pending.drain(..).collect();
        pending
            .iter()
            .filter_map(|p| self.oom_event(Some(&p.summary), None, p.seen_at))
            .collect()
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
}

/// The node observers together: PSI, filesystem fill and the kernel log.
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
        Ok(Self {
            psi: PsiWatcher::new(node.clone(), &config),
            fill: FillWatcher::new(node.clone(), &config),
            classifier: KmsgClassifier::new(node, &config),
            kmsg,
            psi_status,
            fs_status,
            kmsg_status,
            fs_last_check: None,
            fs_watched: 0,
            config,
        })
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
        if let Some(reader) = &mut self.kmsg {
            let status = match reader.read_available() {
                Ok(records) => {
                    for r in &records {
                        out.extend(self.classifier.push(r, now));
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
        out.extend(self.classifier.flush(now));
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
    }
}
