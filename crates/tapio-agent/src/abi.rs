//! Decoding of the records the BPF programs write (layouts in `bpf/tapio_abi.h`).
//!
//! Records are read with bounds-checked little-endian reads, never by casting memory, so
//! a short or garbled record is an error that is counted, not undefined behaviour. The
//! offsets below are checked against the C header's `_Static_assert`s by a test.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const HEADER_SIZE: usize = 48;
pub const CONNECT_SIZE: usize = 104;
pub const EXIT_SIZE: usize = 56;
pub const OOM_SIZE: usize = 160;
pub const BLOCK_SIZE: usize = 112;
pub const DST_KEY_SIZE: usize = 24;
pub const DST_COUNTERS: usize = 8;
pub const BLK_COUNTERS: usize = 4;
pub const DROP_REASONS: u32 = 4;

/// (struct, field, offset) exactly as asserted in `tapio_abi.h`.
pub const OFFSETS: &[(&str, &str, usize)] = &[
    ("tapio_header", "kind", 8),
    ("tapio_header", "pid", 12),
    ("tapio_header", "tgid", 16),
    ("tapio_header", "cgroup_id", 24),
    ("tapio_header", "comm", 32),
    ("tapio_connect", "saddr", 48),
    ("tapio_connect", "daddr", 64),
    ("tapio_connect", "sport", 80),
    ("tapio_connect", "dport", 82),
    ("tapio_connect", "family", 84),
    ("tapio_connect", "outcome", 86),
    ("tapio_connect", "sk_err", 88),
    ("tapio_connect", "waited_ns", 96),
    ("tapio_exit", "exit_code", 48),
    ("tapio_oom", "memcg_limit_bytes", 48),
    ("tapio_oom", "memcg_usage_bytes", 56),
    ("tapio_oom", "anon_rss_bytes", 64),
    ("tapio_oom", "file_rss_bytes", 72),
    ("tapio_oom", "total_vm_bytes", 80),
    ("tapio_oom", "uid", 88),
    ("tapio_oom", "memcg_name", 96),
    ("tapio_block", "latency_ns", 48),
    ("tapio_block", "sector", 56),
    ("tapio_block", "dev", 64),
    ("tapio_block", "nr_bytes", 68),
    ("tapio_block", "cmd_flags", 72),
    ("tapio_block", "status", 76),
    ("tapio_block", "disk", 80),
    ("tapio_dst_key", "port", 16),
    ("tapio_dst_key", "family", 18),
];

/// (struct, size) exactly as asserted in `tapio_abi.h`.
pub const SIZES: &[(&str, usize)] = &[
    ("tapio_header", HEADER_SIZE),
    ("tapio_connect", CONNECT_SIZE),
    ("tapio_exit", EXIT_SIZE),
    ("tapio_oom", OOM_SIZE),
    ("tapio_block", BLOCK_SIZE),
    ("tapio_dst_key", DST_KEY_SIZE),
];

/// Drop reasons counted by the BPF programs (index into the `drops` map).
pub const DROP_REASON_NAMES: [&str; DROP_REASONS as usize] = [
    "ringbuf_full",
    "block_ambiguous",
    "block_unmatched",
    "connect_untracked",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Nanoseconds since boot (CLOCK_BOOTTIME).
    pub ts_ns: u64,
    pub pid: u32,
    pub tgid: u32,
    pub cgroup_id: u64,
    pub comm: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectOutcome {
    Refused,
    Timeout,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRecord {
    pub header: Header,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub outcome: ConnectOutcome,
    pub sk_err: u32,
    pub waited_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitRecord {
    pub header: Header,
    /// The wait status: `code << 8` for an exit, `signal | 0x80?` for a kill.
    pub status: u32,
}

impl ExitRecord {
    /// The exit code when the process exited by itself.
    pub fn exit_code(&self) -> Option<u32> {
        (self.status & 0x7f == 0).then_some((self.status >> 8) & 0xff)
    }
    /// The signal that killed the process.
    pub fn signal(&self) -> Option<u32> {
        let sig = self.status & 0x7f;
        (sig != 0).then_some(sig)
    }
    pub fn core_dumped(&self) -> bool {
        self.signal().is_some() && self.status & 0x80 != 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomRecord {
    pub header: Header,
    pub memcg_limit_bytes: u64,
    pub memcg_usage_bytes: u64,
    pub anon_rss_bytes: u64,
    pub file_rss_bytes: u64,
    pub total_vm_bytes: u64,
    pub uid: u32,
    pub memcg_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRecord {
    pub header: Header,
    pub latency_ns: u64,
    pub sector: u64,
    pub dev: u32,
    pub nr_bytes: u32,
    pub cmd_flags: u32,
    pub status: i32,
    pub disk: String,
}

impl BlockRecord {
    pub fn major(&self) -> u32 {
        self.dev >> 20
    }
    pub fn minor(&self) -> u32 {
        self.dev & 0xfffff
    }
    /// The request operation (REQ_OP_*).
    pub fn op(&self) -> &'static str {
        match self.cmd_flags & 0xff {
            0 => "read",
            1 => "write",
            2 => "flush",
            3 => "discard",
            5 => "secure_erase",
            9 => "write_zeroes",
            _ => "other",
        }
    }
    /// Name of the `blk_status_t` (include/linux/blk_types.h).
    pub fn status_name(&self) -> &'static str {
        match self.status {
            0 => "ok",
            1 => "not_supported",
            2 => "timeout",
            3 => "nospc",
            4 => "transport",
            5 => "target",
            6 => "resv_conflict",
            7 => "medium",
            8 => "protection",
            9 => "resource",
            10 => "ioerr",
            11 => "dm_requeue",
            12 => "again",
            13 => "dev_resource",
            14 => "zone_open_resource",
            15 => "zone_active_resource",
            16 => "offline",
            17 => "duration_limit",
            _ => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Connect(ConnectRecord),
    Exit(ExitRecord),
    Oom(OomRecord),
    Block(BlockRecord),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than the {need} bytes its kind {kind} needs")]
    Short { kind: u32, len: usize, need: usize },
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
    #[error("unknown connect outcome {0}")]
    BadOutcome(u8),
    #[error("unknown address family {0}")]
    BadFamily(u16),
}

impl DecodeError {
    /// Stable label for the `malformed` metric.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Short { .. } => "short",
            Self::UnknownKind(_) => "unknown_kind",
            Self::BadOutcome(_) => "bad_outcome",
            Self::BadFamily(_) => "bad_family",
        }
    }
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[off..off + 2]);
    u16::from_le_bytes(a)
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}
/// A NUL-terminated C string field, lossily decoded.
fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn addr(family: u16, raw: &[u8]) -> Result<IpAddr, DecodeError> {
    match family {
        2 => Ok(IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))),
        10 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&raw[..16]);
            let v6 = Ipv6Addr::from(a);
            // A v4-mapped peer of a dual-stack socket is reported as the IPv4 it is.
            Ok(v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)))
        }
        f => Err(DecodeError::BadFamily(f)),
    }
}

fn header(b: &[u8]) -> Header {
    Header {
        ts_ns: u64_at(b, 0),
        pid: u32_at(b, 12),
        tgid: u32_at(b, 16),
        cgroup_id: u64_at(b, 24),
        comm: cstr(&b[32..48]),
    }
}

/// Decode one ring-buffer record.
pub fn decode(b: &[u8]) -> Result<Record, DecodeError> {
    if b.len() < HEADER_SIZE {
        let kind = if b.len() >= 12 { u32_at(b, 8) } else { 0 };
        return Err(DecodeError::Short {
            kind,
            len: b.len(),
            need: HEADER_SIZE,
        });
    }
    let kind = u32_at(b, 8);
    let need = match kind {
        1 => CONNECT_SIZE,
        2 => EXIT_SIZE,
        3 => OOM_SIZE,
        4 => BLOCK_SIZE,
        k => return Err(DecodeError::UnknownKind(k)),
    };
    if b.len() < need {
        return Err(DecodeError::Short {
            kind,
            len: b.len(),
            need,
        });
    }
    let h = header(b);
    Ok(match kind {
        1 => {
            let family = u16_at(b, 84);
            let outcome = match b[86] {
                1 => ConnectOutcome::Refused,
                2 => ConnectOutcome::Timeout,
                3 => ConnectOutcome::Error,
                o => return Err(DecodeError::BadOutcome(o)),
            };
            Record::Connect(ConnectRecord {
                header: h,
                src: addr(family, &b[48..64])?,
                dst: addr(family, &b[64..80])?,
                sport: u16_at(b, 80),
                dport: u16_at(b, 82),
                outcome,
                sk_err: u32_at(b, 88),
                waited_ns: u64_at(b, 96),
            })
        }
        2 => Record::Exit(ExitRecord {
            header: h,
            status: u32_at(b, 48),
        }),
        3 => Record::Oom(OomRecord {
            header: h,
            memcg_limit_bytes: u64_at(b, 48),
            memcg_usage_bytes: u64_at(b, 56),
            anon_rss_bytes: u64_at(b, 64),
            file_rss_bytes: u64_at(b, 72),
            total_vm_bytes: u64_at(b, 80),
            uid: u32_at(b, 88),
            memcg_name: cstr(&b[96..160]),
        }),
        _ => Record::Block(BlockRecord {
            header: h,
            latency_ns: u64_at(b, 48),
            sector: u64_at(b, 56),
            dev: u32_at(b, 64),
            nr_bytes: u32_at(b, 68),
            cmd_flags: u32_at(b, 72),
            status: u32_at(b, 76) as i32,
            disk: cstr(&b[80..112]),
        }),
    })
}

/// A destination of the `conn_stats` map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination {
    pub addr: IpAddr,
    pub port: u16,
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

pub fn decode_dst_key(k: &[u8; DST_KEY_SIZE]) -> Result<Destination, DecodeError> {
    let family = u16_at(k, 18);
    Ok(Destination {
        addr: addr(family, &k[0..16])?,
        port: u16_at(k, 16),
    })
}

/// Encode a record the way the kernel writes it (used by tests and the benchmark's fake
/// kernel; also documents the layout once more).
pub fn encode_connect(r: &ConnectRecord) -> Vec<u8> {
    let mut b = vec![0u8; CONNECT_SIZE];
    put_header(&mut b, &r.header, 1);
    let family: u16 = match (r.src, r.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            b[48..52].copy_from_slice(&s.octets());
            b[64..68].copy_from_slice(&d.octets());
            2
        }
        (s, d) => {
            b[48..64].copy_from_slice(&v6(s).octets());
            b[64..80].copy_from_slice(&v6(d).octets());
            10
        }
    };
    b[80..82].copy_from_slice(&r.sport.to_le_bytes());
    b[82..84].copy_from_slice(&r.dport.to_le_bytes());
    b[84..86].copy_from_slice(&family.to_le_bytes());
    b[86] = match r.outcome {
        ConnectOutcome::Refused => 1,
        ConnectOutcome::Timeout => 2,
        ConnectOutcome::Error => 3,
    };
    b[88..92].copy_from_slice(&r.sk_err.to_le_bytes());
    b[96..104].copy_from_slice(&r.waited_ns.to_le_bytes());
    b
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

fn put_header(b: &mut [u8], h: &Header, kind: u32) {
    b[0..8].copy_from_slice(&h.ts_ns.to_le_bytes());
    b[8..12].copy_from_slice(&kind.to_le_bytes());
    b[12..16].copy_from_slice(&h.pid.to_le_bytes());
    b[16..20].copy_from_slice(&h.tgid.to_le_bytes());
    b[24..32].copy_from_slice(&h.cgroup_id.to_le_bytes());
    let c = h.comm.as_bytes();
    let n = c.len().min(15);
    b[32..32 + n].copy_from_slice(&c[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The C header and this module agree on every asserted size and offset.
    #[test]
    fn offsets_match_the_c_header() {
        let h = include_str!("../bpf/tapio_abi.h");
        let mut seen = 0;
        for line in h.lines().filter(|l| l.starts_with("_Static_assert(")) {
            if let Some(rest) = line.strip_prefix("_Static_assert(sizeof(struct ") {
                let (name, rest) = rest.split_once(')').expect("sizeof(struct x)");
                let n: usize = rest
                    .trim_start_matches(" == ")
                    .split(',')
                    .next()
                    .and_then(|n| n.trim().parse().ok())
                    .expect("size number");
                let ours = SIZES
                    .iter()
                    .find(|(s, _)| *s == name)
                    .unwrap_or_else(|| panic!("no Rust size for {name}"));
                assert_eq!(ours.1, n, "size of {name}");
                seen += 1;
            } else if let Some(rest) =
                line.strip_prefix("_Static_assert(__builtin_offsetof(struct ")
            {
                let (name, rest) = rest.split_once(", ").expect("struct, field");
                let (field, rest) = rest.split_once(')').expect("field)");
                let n: usize = rest
                    .trim_start_matches(" == ")
                    .split(',')
                    .next()
                    .and_then(|n| n.trim().parse().ok())
                    .expect("offset number");
                let ours = OFFSETS
                    .iter()
                    .find(|(s, f, _)| *s == name && *f == field)
                    .unwrap_or_else(|| panic!("no Rust offset for {name}.{field}"));
                assert_eq!(ours.2, n, "offset of {name}.{field}");
                seen += 1;
            }
        }
        assert_eq!(
            seen,
            OFFSETS.len() + SIZES.len(),
            "every assert has a Rust twin"
        );
    }

    #[test]
    fn connect_round_trip_v4_and_v6() {
        for (src, dst) in [("127.0.0.1", "127.0.0.1"), ("fd00::1", "fd00::2")] {
            let r = ConnectRecord {
                header: Header {
                    ts_ns: 42,
                    pid: 7,
                    tgid: 7,
                    cgroup_id: 99,
                    comm: "curl".into(),
                },
                src: src.parse().expect("ip"),
                dst: dst.parse().expect("ip"),
                sport: 40000,
                dport: 8080,
                outcome: ConnectOutcome::Refused,
                sk_err: 111,
                waited_ns: 1000,
            };
            assert_eq!(decode(&encode_connect(&r)), Ok(Record::Connect(r)));
        }
    }

    #[test]
    fn v4_mapped_destinations_read_as_ipv4() {
        let mut key = [0u8; DST_KEY_SIZE];
        key[10] = 0xff;
        key[11] = 0xff;
        key[12..16].copy_from_slice(&[10, 0, 0, 7]);
        key[16..18].copy_from_slice(&53u16.to_le_bytes());
        key[18..20].copy_from_slice(&10u16.to_le_bytes());
        let d = decode_dst_key(&key).expect("decodes");
        assert_eq!(d.to_string(), "10.0.0.7:53");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(decode(&[1, 2, 3]), Err(DecodeError::Short { .. })));
        let mut b = vec![0u8; 200];
        b[8] = 77;
        assert_eq!(decode(&b), Err(DecodeError::UnknownKind(77)));
        b[8] = 1;
        b[84] = 2;
        b[86] = 9;
        assert_eq!(decode(&b), Err(DecodeError::BadOutcome(9)));
        b[86] = 1;
        b[84] = 99;
        assert_eq!(decode(&b), Err(DecodeError::BadFamily(99)));
        b[8] = 3;
        assert!(matches!(
            decode(&b[..100]),
            Err(DecodeError::Short { need: 160, .. })
        ));
    }

    #[test]
    fn exit_status_splits_code_and_signal() {
        let mk = |status| ExitRecord {
            header: Header {
                ts_ns: 0,
                pid: 1,
                tgid: 1,
                cgroup_id: 0,
                comm: String::new(),
            },
            status,
        };
        assert_eq!(mk(0x300).exit_code(), Some(3));
        assert_eq!(mk(0x300).signal(), None);
        assert_eq!(mk(9).signal(), Some(9));
        assert_eq!(mk(9).exit_code(), None);
        assert!(mk(0x80 | 11).core_dumped());
    }
}
