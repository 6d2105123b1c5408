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
//! | `/proc/self/mountinfo` + `statvfs` | [`crate::mountinfo::parse_mountinfo`], [`select_filesystems`], [`FillWatcher`] | [`stat_filesystem`] | `node.filesystem.nearly_full` |
//! | `/dev/kmsg` | [`parse_kmsg_records`], [`classify_kmsg`], [`parse_fs_error`], [`KmsgClassifier`] | [`KmsgReader`] | `node.kernel.hung_task`, `kernel.storage.io_error`, `kernel.container.oom_kill`, `node.kernel.fs_error`, `node.kernel.soft_lockup`, `node.limits.conntrack` (table full) |
//! | `/proc/sys/...`, `/proc/loadavg`, `/proc/*/fd` | [`crate::limits`] parsers, [`crate::limits::LimitWatcher`] | [`crate::limits`] readers | `node.limits.file_descriptors`, `node.limits.pids`, `node.limits.conntrack`, `node.limits.inotify` |
//! | cgroup `cpu.stat` | [`crate::limits::parse_cpu_stat`], [`crate::limits::ThrottleWatcher`] | [`crate::limits::find_container_cgroups`] | `kernel.container.cpu_throttled` |
//!
//! [`NodeObserver`] combines them, polled by the caller with the current time, and
//! reports through [`NodeObserver::status`] which sources work and, for those that do not,
//! why. Every threshold and default is a documented field of [`NodeConfig`].
//!
//! Conditions (pressure, a filling filesystem) are reported once when they start, again every
//! repeat interval while they last, and not at all when they end: the absence of repeats is
//! the end. Watchers keep their state across that, so a condition that clears and comes back
//! is reported as new.
//!
//! One module per source: [`config`] (every setting), [`psi`], [`filesystems`], [`kmsg`]
//! (the kernel log) and [`observer`] (all of them together); kernel limits and CPU
//! throttling are in [`crate::limits`], mountinfo parsing in [`crate::mountinfo`].

use std::collections::BTreeMap;
use std::time::SystemTime;

use chrono::{DateTime, TimeDelta, Utc};
use tapio_proto::{AttrValue, Entity, Event, EventSeverity, EventType};
use ulid::Ulid;

pub mod config;
pub mod filesystems;
pub mod kmsg;
pub mod observer;
pub mod psi;
#[cfg(test)]
mod testutil;

pub use config::*;
pub use filesystems::*;
pub use kmsg::*;
pub use observer::*;
pub use psi::*;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
