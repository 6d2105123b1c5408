//! `/proc/<pid>/mountinfo`: the one parser of the mount table, for every part of the agent
//! that needs a mount (the filesystems watched for fill, the cgroup2 mount enrichment walks,
//! the cgroup hierarchy with the `cpu` controller).

use std::path::PathBuf;

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
    /// The filesystem's own options (`rw,nsdelegate`; for cgroup v1 the controllers, as in
    /// `rw,cpu,cpuacct`); empty when the line has none.
    pub super_options: String,
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
    let super_options = it.next().map(unescape_mountinfo).unwrap_or_default();
    Some(MountEntry {
        mount_id,
        parent_id,
        device_id,
        root,
        mount_point,
        read_only,
        fs_type,
        source,
        super_options,
    })
}

/// The cgroup2 mount point in a mount table, preferring one that shows the whole hierarchy
/// (root `/`) over a mount of a sub-tree.
pub fn cgroup2_root(mounts: &[MountEntry]) -> Option<PathBuf> {
    let mut fallback = None;
    for m in mounts.iter().filter(|m| m.fs_type == "cgroup2") {
        if m.root == "/" {
            return Some(PathBuf::from(&m.mount_point));
        }
        fallback.get_or_insert_with(|| PathBuf::from(&m.mount_point));
    }
    fallback
}

/// Mounts that may carry the `cpu` controller: cgroup2 mount points (whether `cpu` is
/// enabled is in their `cgroup.controllers`), and the first cgroup v1 mount whose super
/// options name `cpu`.
pub fn cpu_cgroup_mounts(mounts: &[MountEntry]) -> (Vec<PathBuf>, Option<PathBuf>) {
    let v2 = mounts
        .iter()
        .filter(|m| m.fs_type == "cgroup2")
        .map(|m| PathBuf::from(&m.mount_point))
        .collect();
    let v1 = mounts
        .iter()
        .find(|m| m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == "cpu"))
        .map(|m| PathBuf::from(&m.mount_point));
    (v2, v1)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const MOUNTINFO: &str = "\
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
    fn cgroup2_mount_detection() {
        let hybrid = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
32 25 0:27 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
33 32 0:28 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
35 32 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
";
        assert_eq!(
            cgroup2_root(&parse_mountinfo(hybrid)),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let v2 = "\
1200 1100 0:30 /kubepods.slice/x /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw
1201 1100 0:30 / /host/sys/fs\\040cgroup rw,nosuid - cgroup2 cgroup rw,nsdelegate
";
        assert_eq!(
            cgroup2_root(&parse_mountinfo(v2)),
            Some(PathBuf::from("/host/sys/fs cgroup"))
        );
        assert_eq!(cgroup2_root(&parse_mountinfo("garbage\n")), None);
    }

    #[test]
    fn cpu_cgroup_mount_detection() {
        let hybrid = "\
25 20 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset
";
        let (v2, v1) = cpu_cgroup_mounts(&parse_mountinfo(hybrid));
        assert_eq!(v2, vec![PathBuf::from("/sys/fs/cgroup/unified")]);
        assert_eq!(v1, Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")));
        let unified = "35 24 0:30 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let (v2, v1) = cpu_cgroup_mounts(&parse_mountinfo(unified));
        assert_eq!(v2, vec![PathBuf::from("/sys/fs/cgroup")]);
        assert_eq!(v1, None);
        // cpuset alone is not cpu.
        let (_, v1) = cpu_cgroup_mounts(&parse_mountinfo(
            "31 25 0:28 / /x rw - cgroup cgroup rw,cpuset\n",
        ));
        assert_eq!(v1, None);
    }
}
