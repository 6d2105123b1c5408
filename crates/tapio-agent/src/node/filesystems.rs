//! Filesystem fill: which mounts are watched ([`select_filesystems`]), how full they are
//! ([`stat_filesystem`], [`FsUsage`]) and when that is reported ([`FillWatcher`]).

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use tapio_proto::{Event, EventSeverity};

use super::*;
use crate::mountinfo::MountEntry;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::testutil::*;

    use crate::mountinfo::{parse_mountinfo, tests::MOUNTINFO};

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
}
