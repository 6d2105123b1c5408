//! What one kernel log message says: [`classify_kmsg`] and [`parse_fs_error`] turn the
//! text of a record into a [`KmsgFact`] (hung task, I/O error, OOM kill, soft lockup or RCU
//! stall, conntrack table full, filesystem error). Pure: text in, facts out.

use serde::Serialize;
use tapio_proto::EventSeverity;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
