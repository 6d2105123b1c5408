//! [`KmsgClassifier`]: kernel log records to events, with the two records of one OOM kill
//! merged and bursts of filesystem errors and conntrack drops folded.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use tapio_proto::{AttrValue, Event, EventSeverity};

use super::facts::*;
use super::reader::KmsgRecord;
use crate::node::*;
use tapio_proto::text::cut_bytes_marked;

/// At most this many bytes of a kernel message go into a `message` attribute (cut on a
/// character boundary and marked with "…").
const MESSAGE_MAX_BYTES: usize = 512;

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
                attrs.insert(
                    "message".into(),
                    cut_bytes_marked(message, MESSAGE_MAX_BYTES).into(),
                );
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
                attrs.insert(
                    "message".into(),
                    cut_bytes_marked(message, MESSAGE_MAX_BYTES).into(),
                );
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
                f.last_message = cut_bytes_marked(message, MESSAGE_MAX_BYTES);
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
        attrs.insert(
            "message".into(),
            cut_bytes_marked(message, MESSAGE_MAX_BYTES).into(),
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::testutil::*;

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
}
