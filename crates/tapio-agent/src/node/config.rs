//! [`NodeConfig`]: every threshold and default of the node observers, and its validation.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::testutil::*;
    use std::path::Path;

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
}
