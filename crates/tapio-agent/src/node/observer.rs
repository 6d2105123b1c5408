//! [`NodeObserver`]: the node observers together, polled with the current time, and
//! [`NodeStatus`]: which sources work and, for those that do not, why.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tapio_proto::{AttrValue, Event};

use super::*;
use crate::enrich::SharedPods;
use crate::limits::{
    self, EVENT_CONNTRACK, InotifyScan, Limit, LimitReading, LimitWatcher, ThrottleConfig,
    ThrottleWatcher,
};
use crate::metrics::Metrics;
use crate::mountinfo::parse_mountinfo;

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
    use crate::node::testutil::*;
    use std::fs::OpenOptions;
    use std::io::Write;
    use tapio_proto::EventSeverity;

    /// A fake procfs and cgroup tree where every limit is near full, a kernel log file, and
    /// the observer polled twice, 30 s apart. One scenario kept whole (building the tree is
    /// most of its length): the second poll's assertions depend on the first's state.
    #[test]
    fn node_observer_reports_limits_throttling_and_kmsg_facts() {
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
