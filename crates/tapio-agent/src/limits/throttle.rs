//! Container CPU throttling: a cgroup's `cpu.stat` parsed ([`parse_cpu_stat`]) and its CPU
//! limit read, the container cgroups found below the cpu hierarchy
//! ([`find_container_cgroups`], bounded) and [`ThrottleWatcher`], which reports a container
//! that spent a large share of its CFS periods throttled over an interval.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use tapio_proto::{AttrValue, Event, EventSeverity};

use crate::enrich::{self, SharedPods, parse_cgroup_path};
use crate::mountinfo;
use crate::node::{NodeConfig, int, node_event, round4};

use super::*;

/// Directories visited at most by one cgroup walk (a node has a few thousand).
pub const MAX_CGROUP_WALK_DIRS: usize = 50_000;
/// Cgroup directories deeper than this below the root are not visited.
const MAX_CGROUP_WALK_DEPTH: usize = 16;

/// The CFS bandwidth counters of a cgroup's `cpu.stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuStat {
    /// Enforcement periods in which the cgroup had runnable tasks.
    pub nr_periods: u64,
    /// Periods in which it used up its quota and was throttled.
    pub nr_throttled: u64,
    /// Total time throttled, in microseconds.
    pub throttled_usec: u64,
}

/// Parses `cpu.stat`: cgroup v2 (`throttled_usec`) or v1 (`throttled_time`, nanoseconds).
/// `None` when the file has no `nr_periods`/`nr_throttled` (cgroup v2 without the `cpu`
/// controller shows only `usage_usec`, `user_usec`, `system_usec`).
pub fn parse_cpu_stat(text: &str) -> Option<CpuStat> {
    let (mut periods, mut throttled, mut usec, mut nsec) = (None, None, None, None);
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(k), Some(v)) = (it.next(), it.next()) else {
            continue;
        };
        let Ok(v) = v.parse::<u64>() else { continue };
        match k {
            "nr_periods" => periods = Some(v),
            "nr_throttled" => throttled = Some(v),
            "throttled_usec" => usec = Some(v),
            "throttled_time" => nsec = Some(v),
            _ => {}
        }
    }
    Some(CpuStat {
        nr_periods: periods?,
        nr_throttled: throttled?,
        throttled_usec: usec.or(nsec.map(|n| n / 1000)).unwrap_or(0),
    })
}

/// The CPU limit in cores from cgroup v2 `cpu.max` (`quota period`, or `max period` for
/// none).
pub fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut it = text.split_whitespace();
    let quota: f64 = it.next()?.parse().ok()?;
    let period: f64 = it.next()?.parse().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

/// The CPU limit of the cgroup directory `dir` in cores: v2 `cpu.max`, else v1
/// `cpu.cfs_quota_us / cpu.cfs_period_us` (`-1` is no limit).
pub fn read_cpu_limit_cores(dir: &Path) -> Option<f64> {
    if let Ok(t) = std::fs::read_to_string(dir.join("cpu.max")) {
        return parse_cpu_max(&t);
    }
    let quota: i64 = std::fs::read_to_string(dir.join("cpu.cfs_quota_us"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let period: i64 = std::fs::read_to_string(dir.join("cpu.cfs_period_us"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
}

/// The hierarchy holding the `cpu` controller: a cgroup2 mount whose `cgroup.controllers`
/// lists `cpu` (unified), else the cgroup v1 `cpu` mount (legacy and hybrid).
pub fn detect_cpu_cgroup_root(mountinfo: &str) -> Option<PathBuf> {
    let (v2, v1) = mountinfo::cpu_cgroup_mounts(&mountinfo::parse_mountinfo(mountinfo));
    for root in v2 {
        let has_cpu = std::fs::read_to_string(root.join("cgroup.controllers"))
            .is_ok_and(|c| c.split_whitespace().any(|x| x == "cpu"));
        if has_cpu {
            return Some(root);
        }
    }
    v1
}

/// The container cgroups below a cgroup root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupWalk {
    /// Paths relative to the root (`/kubepods.slice/…/cri-containerd-<id>.scope`), sorted:
    /// directories whose path names a container (see [`parse_cgroup_path`]) that their parent
    /// does not (sub-cgroups of a container are not counted again; a kind node's own
    /// container and the containers inside it are both found).
    pub containers: Vec<String>,
    /// Directories visited.
    pub dirs: usize,
    /// The walk stopped at [`MAX_CGROUP_WALK_DIRS`].
    pub truncated: bool,
}

/// Walks `root` (bounded: [`MAX_CGROUP_WALK_DIRS`] directories, 16 levels). Fails only when
/// `root` itself cannot be listed.
pub fn find_container_cgroups(root: &Path) -> io::Result<CgroupWalk> {
    let mut walk = CgroupWalk::default();
    std::fs::read_dir(root)?;
    let mut stack: Vec<(PathBuf, String, usize, Option<String>)> =
        vec![(root.to_path_buf(), String::new(), 0, None)];
    'walk: while let Some((dir, rel, depth, parent_id)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            // cgroupfs has no symlinks; not following any keeps a loop from hanging us.
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if walk.dirs >= MAX_CGROUP_WALK_DIRS {
                walk.truncated = true;
                break 'walk;
            }
            walk.dirs += 1;
            let child = format!("{rel}/{}", entry.file_name().to_string_lossy());
            let id = parse_cgroup_path(&child).container_id;
            if id.is_some() && id != parent_id {
                walk.containers.push(child.clone());
            }
            if depth + 1 < MAX_CGROUP_WALK_DEPTH {
                stack.push((entry.path(), child, depth + 1, id));
            }
        }
    }
    walk.containers.sort();
    Ok(walk)
}

/// The directory of the cgroup `rel` (as in [`CgroupWalk::containers`]) below `root`.
pub fn cgroup_dir(root: &Path, rel: &str) -> PathBuf {
    root.join(rel.trim_start_matches('/'))
}

/// Settings of [`ThrottleWatcher`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleConfig {
    /// Reported when throttled periods / periods in the interval reach this.
    pub ratio: f64,
    /// … and the interval had at least this many periods.
    pub min_periods: u64,
    /// Cgroups tracked at most.
    pub max_cgroups: usize,
}

impl ThrottleConfig {
    pub fn from_config(c: &NodeConfig) -> Self {
        Self {
            ratio: c.cpu_throttle_ratio,
            min_periods: c.cpu_throttle_min_periods,
            max_cgroups: c.cpu_throttle_max_cgroups,
        }
    }
}

/// Turns successive `cpu.stat` readings of container cgroups into
/// `kernel.container.cpu_throttled` events.
///
/// The first reading of a cgroup is its baseline. Each later reading is compared with the
/// previous one: when the interval had at least `min_periods` periods and
/// `nr_throttled / nr_periods` reached `ratio`, a warning is emitted. Counters that went
/// back (a cgroup recreated under the same path) restart the baseline; cgroups missing
/// from a reading are forgotten.
///
/// Attributes: `nr_periods`, `nr_throttled` (deltas), `ratio`, `throttled_seconds`,
/// `threshold`, `interval_seconds`, `cpu_limit_cores` (when the limit can be read), and the
/// enrichment of the cgroup path (`cgroup`, `runtime`, `qos_class`, `systemd_unit`); the
/// entity names the node, pod uid and container id from the path, and pod, namespace,
/// container and workload from the pod index.
#[derive(Debug)]
pub struct ThrottleWatcher {
    node: String,
    pods: SharedPods,
    config: ThrottleConfig,
    prev: HashMap<String, (CpuStat, DateTime<Utc>)>,
}

impl ThrottleWatcher {
    pub fn new(node: impl Into<String>, pods: SharedPods, config: ThrottleConfig) -> Self {
        Self {
            node: node.into(),
            pods,
            config,
            prev: HashMap::new(),
        }
    }

    pub fn set_pods(&mut self, pods: SharedPods) {
        self.pods = pods;
    }

    /// Cgroups with a baseline.
    pub fn tracked(&self) -> usize {
        self.prev.len()
    }

    /// Which of `found` to read: those tracked already first (their baselines are worth
    /// keeping), then new ones in order, up to `max_cgroups`. Returns them and how many were
    /// left out.
    pub fn select(&self, found: &[String]) -> (Vec<String>, usize) {
        let max = self.config.max_cgroups;
        let mut chosen: Vec<String> = found
            .iter()
            .filter(|p| self.prev.contains_key(*p))
            .take(max)
            .cloned()
            .collect();
        for p in found {
            if chosen.len() >= max {
                break;
            }
            if !self.prev.contains_key(p) {
                chosen.push(p.clone());
            }
        }
        let left_out = found.len().saturating_sub(chosen.len());
        (chosen, left_out)
    }

    /// Feeds one reading of every tracked cgroup (path relative to the cgroup root, and its
    /// `cpu.stat`) taken at `now`. `limit_cores` is asked for the CPU limit of a cgroup only
    /// when it is reported.
    pub fn observe(
        &mut self,
        samples: &[(String, CpuStat)],
        now: DateTime<Utc>,
        limit_cores: &mut dyn FnMut(&str) -> Option<f64>,
    ) -> Vec<Event> {
        self.prev
            .retain(|path, _| samples.iter().any(|(p, _)| p == path));
        let mut out = Vec::new();
        for (path, cur) in samples {
            let prev = match self.prev.get(path) {
                Some(p) => *p,
                None => {
                    if self.prev.len() < self.config.max_cgroups {
                        self.prev.insert(path.clone(), (*cur, now));
                    }
                    continue;
                }
            };
            self.prev.insert(path.clone(), (*cur, now));
            let (stat, at) = prev;
            if cur.nr_periods < stat.nr_periods || cur.nr_throttled < stat.nr_throttled {
                continue; // counters reset: the new reading is the baseline
            }
            let periods = cur.nr_periods - stat.nr_periods;
            let throttled = cur.nr_throttled - stat.nr_throttled;
            if periods < self.config.min_periods || periods == 0 {
                continue;
            }
            let ratio = throttled as f64 / periods as f64;
            if ratio < self.config.ratio {
                continue;
            }
            let throttled_usec = cur.throttled_usec.saturating_sub(stat.throttled_usec);
            let interval = (now - at).num_milliseconds().max(0) as f64 / 1000.0;
            let enriched = enrich::enrich_cgroup(&self.node, &self.pods, path);
            let mut attrs = BTreeMap::new();
            for (k, v) in enriched.attrs {
                attrs.insert(k, AttrValue::String(v));
            }
            attrs.insert("nr_periods".into(), int(periods));
            attrs.insert("nr_throttled".into(), int(throttled));
            attrs.insert("ratio".into(), AttrValue::Float(round4(ratio)));
            attrs.insert(
                "throttled_seconds".into(),
                AttrValue::Float(round4(throttled_usec as f64 / 1e6)),
            );
            attrs.insert("threshold".into(), AttrValue::Float(self.config.ratio));
            attrs.insert("interval_seconds".into(), AttrValue::Float(interval));
            if let Some(cores) = limit_cores(path) {
                attrs.insert("cpu_limit_cores".into(), AttrValue::Float(round4(cores)));
            }
            if let Some(mut ev) = node_event(
                &self.node,
                EVENT_CPU_THROTTLED,
                EventSeverity::Warning,
                now,
                attrs,
            ) {
                ev.entity = enriched.entity;
                out.push(ev);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::PodIndex;
    use crate::limits::tests::{assert_valid, f, s, t};
    use std::time::Duration;

    #[test]
    fn cpu_stat_v2_v1_and_without_controller() {
        // cgroup v2 (kernel/sched/core.c cpu_extra_stat_show after cgroup_base_stat_cputime_show).
        let v2 = "usage_usec 8861430\nuser_usec 6340062\nsystem_usec 2521368\n\
                  core_sched.force_idle_usec 0\nnr_periods 1234\nnr_throttled 400\n\
                  throttled_usec 5821009\nnr_bursts 0\nburst_usec 0\n";
        assert_eq!(
            parse_cpu_stat(v2),
            Some(CpuStat {
                nr_periods: 1234,
                nr_throttled: 400,
                throttled_usec: 5_821_009
            })
        );
        // cgroup v1: throttled_time in nanoseconds.
        let v1 = "nr_periods 15\nnr_throttled 15\nthrottled_time 1286931503\nnr_bursts 0\nburst_time 0\n";
        assert_eq!(
            parse_cpu_stat(v1),
            Some(CpuStat {
                nr_periods: 15,
                nr_throttled: 15,
                throttled_usec: 1_286_931
            })
        );
        // v2 without the cpu controller (hybrid hierarchy, or not enabled for the subtree).
        assert_eq!(
            parse_cpu_stat("usage_usec 4908108716\nuser_usec 4440893799\nsystem_usec 467214917\n"),
            None
        );
        assert_eq!(parse_cpu_max("10000 100000\n"), Some(0.1));
        assert_eq!(parse_cpu_max("250000 100000\n"), Some(2.5));
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max(""), None);
    }

    const CID: &str = "4246283da53772d9520fb37c388a11f14a5c1953e02e5d27932e9166e7b3672f";
    const POD_SLICE: &str = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod82b77fd4_702b_43c8_b51c_b72599117113.slice";

    fn container_path() -> String {
        format!("{POD_SLICE}/cri-containerd-{CID}.scope")
    }

    #[test]
    fn container_cgroups_are_found_once_each() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let other = "a".repeat(64);
        let kind_node = "b".repeat(64);
        let inner = "c".repeat(64);
        for d in [
            format!("{}/init.scope", container_path()),
            format!("{POD_SLICE}/cri-containerd-{other}.scope"),
            "/system.slice/containerd.service".to_owned(),
            // A kind node: the node's own container, and a pod's container inside it.
            format!(
                "/system.slice/docker-{kind_node}.scope/kubepods/burstable/pod11111111-2222-3333-4444-555555555555/{inner}"
            ),
        ] {
            std::fs::create_dir_all(cgroup_dir(root, &d)).expect("mkdir");
        }
        std::fs::write(cgroup_dir(root, POD_SLICE).join("cpu.stat"), "x").expect("a file");
        let walk = find_container_cgroups(root).expect("walk");
        assert!(!walk.truncated);
        assert_eq!(
            walk.containers,
            vec![
                container_path(),
                format!("{POD_SLICE}/cri-containerd-{other}.scope"),
                format!("/system.slice/docker-{kind_node}.scope"),
                format!(
                    "/system.slice/docker-{kind_node}.scope/kubepods/burstable/pod11111111-2222-3333-4444-555555555555/{inner}"
                ),
            ]
        );
        assert!(walk.dirs >= 10);
        assert!(find_container_cgroups(&root.join("missing")).is_err());
    }

    fn stat(periods: u64, throttled: u64, usec: u64) -> CpuStat {
        CpuStat {
            nr_periods: periods,
            nr_throttled: throttled,
            throttled_usec: usec,
        }
    }

    fn throttle_config() -> ThrottleConfig {
        ThrottleConfig::from_config(&NodeConfig::default())
    }

    #[test]
    fn throttling_over_an_interval_with_enrichment() {
        let index = PodIndex::from_json(include_str!(
            "../../tests/fixtures/enrich_kubelet_pods.json"
        ))
        .expect("fixture");
        let mut w = ThrottleWatcher::new("worker-1", SharedPods::new(index), throttle_config());
        let path = container_path();
        let mut no_limit = |_: &str| None;
        assert!(
            w.observe(
                &[(path.clone(), stat(100, 10, 1_000_000))],
                t(0),
                &mut no_limit
            )
            .is_empty(),
            "first reading is the baseline"
        );
        // 300 periods, 90 throttled (0.30 ≥ 0.25), 4.5 s throttled in 30 s.
        let mut asked = Vec::new();
        let mut limit = |p: &str| {
            asked.push(p.to_owned());
            Some(0.5)
        };
        let ev = w.observe(
            &[(path.clone(), stat(400, 100, 5_500_000))],
            t(30),
            &mut limit,
        );
        assert_eq!(ev.len(), 1);
        let e = &ev[0];
        assert_eq!(e.kind.as_str(), "kernel.container.cpu_throttled");
        assert_eq!(e.severity, EventSeverity::Warning);
        assert_eq!(f(e, "nr_periods"), 300.0);
        assert_eq!(f(e, "nr_throttled"), 90.0);
        assert_eq!(f(e, "ratio"), 0.3);
        assert_eq!(f(e, "throttled_seconds"), 4.5);
        assert_eq!(f(e, "threshold"), 0.25);
        assert_eq!(f(e, "interval_seconds"), 30.0);
        assert_eq!(f(e, "cpu_limit_cores"), 0.5);
        assert_eq!(s(e, "cgroup"), path);
        assert_eq!(s(e, "runtime"), "containerd");
        assert_eq!(s(e, "qos_class"), "burstable");
        assert_eq!(e.entity.node.as_deref(), Some("worker-1"));
        assert_eq!(e.entity.container_id.as_deref(), Some(CID));
        assert_eq!(
            e.entity.pod_uid.as_deref(),
            Some("82b77fd4-702b-43c8-b51c-b72599117113")
        );
        assert_eq!(e.entity.pod.as_deref(), Some("checkout-7d9f8b6c5-x2x7k"));
        assert_eq!(e.entity.namespace.as_deref(), Some("shop"));
        assert_eq!(e.entity.container.as_deref(), Some("checkout"));
        assert_eq!(
            e.entity.workload.as_ref().map(|w| w.name.as_str()),
            Some("checkout")
        );
        assert_valid(e);
        assert_eq!(asked, vec![path.clone()]);
        // Below the ratio (0.2), then too few periods (9) even though all were throttled.
        assert!(
            w.observe(
                &[(path.clone(), stat(500, 120, 6_000_000))],
                t(60),
                &mut no_limit
            )
            .is_empty()
        );
        assert!(
            w.observe(
                &[(path.clone(), stat(509, 129, 6_100_000))],
                t(90),
                &mut no_limit
            )
            .is_empty()
        );
        // Exactly at the ratio and the minimum: reported, without a limit attribute.
        let ev = w.observe(
            &[(path.clone(), stat(519, 131, 6_200_000))],
            t(120),
            &mut no_limit,
        );
        assert_eq!(ev.len(), 0, "2/10 is below 0.25");
        let ev = w.observe(
            &[(path.clone(), stat(531, 134, 6_300_000))],
            t(150),
            &mut no_limit,
        );
        assert_eq!(ev.len(), 1, "3/12 = 0.25");
        assert!(!ev[0].attributes.contains_key("cpu_limit_cores"));
        // Counters went back (the cgroup was recreated): a new baseline, no event.
        assert!(
            w.observe(&[(path.clone(), stat(20, 20, 100))], t(180), &mut no_limit)
                .is_empty()
        );
        let ev = w.observe(&[(path.clone(), stat(40, 40, 200))], t(210), &mut no_limit);
        assert_eq!(ev.len(), 1);
        // Without a pod index the entity still names the pod uid and container id.
        let mut bare = ThrottleWatcher::new("worker-1", SharedPods::default(), throttle_config());
        bare.observe(&[(path.clone(), stat(0, 0, 0))], t(0), &mut no_limit);
        let ev = bare.observe(&[(path.clone(), stat(50, 50, 9))], t(1), &mut no_limit);
        assert_eq!(ev[0].entity.container_id.as_deref(), Some(CID));
        assert_eq!(ev[0].entity.pod, None);
        assert_eq!(f(&ev[0], "interval_seconds"), 1.0);
    }

    #[test]
    fn throttle_tracking_is_bounded_and_forgets_vanished_cgroups() {
        let cfg = ThrottleConfig {
            max_cgroups: 2,
            ..throttle_config()
        };
        let mut w = ThrottleWatcher::new("n1", SharedPods::default(), cfg);
        let found: Vec<String> = ["/a", "/b", "/c"].map(String::from).to_vec();
        let (chosen, left_out) = w.select(&found);
        assert_eq!(chosen, vec!["/a".to_owned(), "/b".to_owned()]);
        assert_eq!(left_out, 1);
        let mut none = |_: &str| None;
        let samples: Vec<(String, CpuStat)> =
            chosen.iter().map(|p| (p.clone(), stat(0, 0, 0))).collect();
        w.observe(&samples, t(0), &mut none);
        assert_eq!(w.tracked(), 2);
        // /a vanishes: forgotten; tracked ones keep their place ahead of new ones.
        let found: Vec<String> = ["/0", "/b", "/c"].map(String::from).to_vec();
        let (chosen, left_out) = w.select(&found);
        assert_eq!(chosen, vec!["/b".to_owned(), "/0".to_owned()]);
        assert_eq!(left_out, 1);
        // observe itself never tracks more than the bound.
        let samples: Vec<(String, CpuStat)> = ["/b", "/x", "/y"]
            .iter()
            .map(|p| ((*p).to_owned(), stat(0, 0, 0)))
            .collect();
        w.observe(&samples, t(1), &mut none);
        assert_eq!(w.tracked(), 2);
    }

    /// The cpu cgroup of this process below `root`, from `/proc/self/cgroup`.
    fn own_cpu_cgroup(root: &Path) -> Option<PathBuf> {
        let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let unified = root.join("cgroup.controllers").exists();
        let rel = text.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            let wanted = if unified {
                ctrls.is_empty()
            } else {
                ctrls.split(',').any(|c| c == "cpu")
            };
            wanted.then(|| path.to_owned())
        })?;
        Some(cgroup_dir(root, &rel))
    }

    #[test]
    fn reads_this_processes_cpu_stat() {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let root = detect_cpu_cgroup_root(&mountinfo)
            .expect("this kernel has a cgroup hierarchy with the cpu controller");
        let own = own_cpu_cgroup(&root).expect("own cpu cgroup");
        let text = std::fs::read_to_string(own.join("cpu.stat")).expect("cpu.stat");
        let st = parse_cpu_stat(&text).unwrap_or_else(|| panic!("{}: {text}", own.display()));
        assert!(st.nr_throttled <= st.nr_periods, "{st:?}");
        let mut w = ThrottleWatcher::new("n1", SharedPods::default(), throttle_config());
        let mut none = |_: &str| None;
        assert!(w.observe(&[("/".into(), st)], t(0), &mut none).is_empty());
        let text = std::fs::read_to_string(own.join("cpu.stat")).expect("cpu.stat");
        let st2 = parse_cpu_stat(&text).expect("cpu.stat");
        assert!(st2.nr_periods >= st.nr_periods);
        for ev in w.observe(&[("/".into(), st2)], t(1), &mut none) {
            assert!((0.0..=1.0).contains(&f(&ev, "ratio")));
        }
    }

    /// A cgroup made for one test, removed (with its process killed) however the test ends.
    struct TestCgroup {
        dirs: Vec<PathBuf>,
        child: Option<std::process::Child>,
    }

    impl Drop for TestCgroup {
        fn drop(&mut self) {
            if let Some(c) = &mut self.child {
                let _ = c.kill();
                let _ = c.wait();
            }
            for d in self.dirs.iter().rev() {
                for _ in 0..100 {
                    if std::fs::remove_dir(d).is_ok() || !d.exists() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// A busy process under `cpu.max = 10000 100000` (10 % of one CPU) for 1.5 s must be
    /// reported as throttled, through the same walk, reader and watcher the agent uses.
    /// cgroup v2 when its root offers the cpu controller, else cgroup v1 (hybrid hosts).
    #[test]
    fn a_cpu_limited_busy_process_is_reported_throttled() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!(
                "NOT RUN: creating a cgroup needs root; run the agent tests as root to cover real CPU throttling"
            );
            return;
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let root = detect_cpu_cgroup_root(&mountinfo)
            .expect("no cgroup hierarchy with the cpu controller");
        let unified = root.join("cgroup.controllers").exists();
        let parent = root.join(format!("tapio-test-throttle-{}", std::process::id()));
        let leaf_rel = format!("/cri-containerd-{}.scope", "d".repeat(64));
        let leaf = cgroup_dir(&parent, &leaf_rel);
        let mut guard = TestCgroup {
            dirs: Vec::new(),
            child: None,
        };
        std::fs::create_dir(&parent)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
        guard.dirs.push(parent.clone());
        if unified {
            std::fs::write(parent.join("cgroup.subtree_control"), "+cpu")
                .expect("enable the cpu controller below the test cgroup");
        }
        std::fs::create_dir(&leaf).expect("leaf cgroup");
        guard.dirs.push(leaf.clone());
        if unified {
            std::fs::write(leaf.join("cpu.max"), "10000 100000").expect("cpu.max");
        } else {
            std::fs::write(leaf.join("cpu.cfs_period_us"), "100000").expect("period");
            std::fs::write(leaf.join("cpu.cfs_quota_us"), "10000").expect("quota");
        }
        let child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("busy loop");
        let pid = child.id();
        guard.child = Some(child);
        std::fs::write(leaf.join("cgroup.procs"), pid.to_string()).expect("move into cgroup");

        let walk = find_container_cgroups(&parent).expect("walk");
        assert_eq!(walk.containers, vec![leaf_rel.clone()]);
        let read = || {
            let text = std::fs::read_to_string(leaf.join("cpu.stat")).expect("cpu.stat");
            parse_cpu_stat(&text).unwrap_or_else(|| panic!("no CFS counters in {text}"))
        };
        let mut w = ThrottleWatcher::new("this-node", SharedPods::default(), throttle_config());
        let mut limit = |rel: &str| read_cpu_limit_cores(&cgroup_dir(&parent, rel));
        let start = Utc::now();
        assert!(
            w.observe(&[(leaf_rel.clone(), read())], start, &mut limit)
                .is_empty()
        );
        std::thread::sleep(Duration::from_millis(1500));
        let after = read();
        let ev = w.observe(
            &[(leaf_rel.clone(), after)],
            start + TimeDelta::milliseconds(1500),
            &mut limit,
        );
        drop(guard);
        eprintln!(
            "{} cgroup {}: {after:?} -> {ev:?}",
            if unified { "v2" } else { "v1" },
            leaf.display()
        );
        assert_eq!(ev.len(), 1, "not reported as throttled: {after:?}");
        let e = &ev[0];
        assert!(f(e, "ratio") >= 0.25, "{e:?}");
        assert!(f(e, "nr_periods") >= 10.0, "{e:?}");
        assert!(f(e, "throttled_seconds") > 0.0, "{e:?}");
        assert_eq!(f(e, "cpu_limit_cores"), 0.1);
        assert_eq!(
            e.entity.container_id.as_deref(),
            Some("d".repeat(64).as_str())
        );
        assert!(!parent.exists(), "test cgroup left behind");
    }
}
