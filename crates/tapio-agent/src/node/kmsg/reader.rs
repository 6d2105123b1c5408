//! The kernel log device: one `/dev/kmsg` record parsed ([`parse_kmsg_record`]) and new
//! records read without blocking ([`KmsgReader`]), with lost records counted.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::KmsgClassifier;
    use crate::node::testutil::*;
    use chrono::Utc;
    use std::io::Write;
    use std::process::Command;
    use tapio_proto::Event;
    use tapio_proto::EventSeverity;

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
    fn kmsg_reader_reads_only_new_records_and_counts_gaps() {
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
}
