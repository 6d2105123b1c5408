//! Loading the BPF objects (aya) and reading what they produce.
//!
//! Three independent objects — network, process, storage — are embedded in the binary
//! (`bpf/obj/*.bpf.o`, committed with the hash of the sources they came from). Each is
//! loaded on its own and each program attached on its own, so a kernel that refuses one
//! program (missing tracepoint, verifier, permissions) still runs the others, and the
//! agent reports per program whether it is attached, unsupported or denied, and why.

use std::io;
use std::os::fd::AsFd;

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::BtfTracePoint;
use aya::{Btf, Ebpf, EbpfLoader};

use crate::abi::{BLK_COUNTERS, DROP_REASON_NAMES, DROP_REASONS, DST_COUNTERS, DST_KEY_SIZE};

pub const NET_OBJ: &[u8] = include_bytes!("../bpf/obj/net.bpf.o");
pub const PROC_OBJ: &[u8] = include_bytes!("../bpf/obj/proc.bpf.o");
pub const BLOCK_OBJ: &[u8] = include_bytes!("../bpf/obj/block.bpf.o");
/// Hash of the BPF sources the embedded objects were built from.
pub const SOURCES_SHA256: &str = include_str!("../bpf/obj/SOURCES.sha256");

/// An observer: one object, its programs and the tracepoints they attach to.
pub struct ObserverSpec {
    pub name: &'static str,
    pub object: &'static [u8],
    pub programs: &'static [(&'static str, &'static str)],
}

pub const OBSERVERS: [ObserverSpec; 3] = [
    ObserverSpec {
        name: "network",
        object: NET_OBJ,
        programs: &[
            ("tapio_sock_state", "inet_sock_set_state"),
            ("tapio_tcp_reset", "tcp_receive_reset"),
            ("tapio_tcp_retransmit", "tcp_retransmit_skb"),
        ],
    },
    ObserverSpec {
        name: "process",
        object: PROC_OBJ,
        programs: &[
            ("tapio_process_exit", "sched_process_exit"),
            ("tapio_oom_victim", "mark_victim"),
        ],
    },
    ObserverSpec {
        name: "storage",
        object: BLOCK_OBJ,
        programs: &[
            ("tapio_block_issue", "block_rq_issue"),
            ("tapio_block_complete", "block_rq_complete"),
        ],
    },
];

pub use tapio_proto::{KernelCapabilities, ProgramState, ProgramStatus};

/// Classify a failure by the OS error somewhere in its source chain.
fn classify(err: &(dyn std::error::Error + 'static)) -> (ProgramState, String) {
    let mut detail = err.to_string();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut errno = None;
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<io::Error>()
            && let Some(code) = io.raw_os_error()
        {
            errno = Some(code);
            detail = format!("{detail}: {io}");
            break;
        }
        cur = e.source();
    }
    let root = nix::unistd::geteuid().is_root();
    let state = match errno {
        Some(libc_eperm) if libc_eperm == nix::errno::Errno::EPERM as i32 => {
            ProgramState::PermissionDenied
        }
        Some(c) if c == nix::errno::Errno::EACCES as i32 && !root => ProgramState::PermissionDenied,
        Some(c)
            if [
                nix::errno::Errno::ENOENT as i32,
                nix::errno::Errno::EINVAL as i32,
                nix::errno::Errno::EOPNOTSUPP as i32,
                nix::errno::Errno::E2BIG as i32,
                nix::errno::Errno::EACCES as i32,
                524, // ENOTSUPP (kernel-internal)
            ]
            .contains(&c) =>
        {
            ProgramState::Unsupported
        }
        _ => ProgramState::Failed,
    };
    if state == ProgramState::PermissionDenied {
        detail = format!(
            "{detail} — loading BPF needs root or CAP_BPF + CAP_PERFMON (and CAP_SYS_RESOURCE on kernels before 5.11)"
        );
    }
    // Verifier logs are long; keep the first lines and the last (the reason).
    if detail.len() > 600 {
        let tail: String = detail
            .chars()
            .rev()
            .take(300)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let head: String = detail.chars().take(280).collect();
        detail = format!("{head} … {tail}");
    }
    (state, detail)
}

/// What a loaded observer hands to the reader.
pub struct LoadedObserver {
    pub name: &'static str,
    /// Keeps the programs attached for as long as it lives.
    _ebpf: Ebpf,
    pub ring: Option<RingBuf<MapData>>,
    pub drops: Option<PerCpuArray<MapData, u64>>,
    pub conn_stats: Option<BpfHashMap<MapData, [u8; DST_KEY_SIZE], [u64; DST_COUNTERS]>>,
    pub blk_stats: Option<BpfHashMap<MapData, u32, [u64; BLK_COUNTERS]>>,
}

impl LoadedObserver {
    /// Cumulative drop counters, summed over CPUs, by reason name.
    pub fn drop_counts(&self) -> Vec<(&'static str, u64)> {
        let Some(d) = &self.drops else {
            return Vec::new();
        };
        (0..DROP_REASONS)
            .filter_map(|i| {
                let per_cpu = d.get(&i, 0).ok()?;
                Some((DROP_REASON_NAMES[i as usize], per_cpu.iter().sum()))
            })
            .collect()
    }

    pub fn ring_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.ring.as_ref().map(|r| r.as_fd())
    }
}

pub struct LoadOptions {
    pub enabled: Vec<String>,
    pub wakeup_bytes: u64,
    pub slow_io_ns: u64,
    pub ring_bytes: u32,
}

/// Load every enabled observer; never fails as a whole.
pub fn load_all(opts: &LoadOptions) -> (Vec<LoadedObserver>, KernelCapabilities) {
    let btf_present = std::path::Path::new("/sys/kernel/btf/vmlinux").exists();
    let kernel_release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let mut statuses = Vec::new();
    let mut loaded = Vec::new();
    let btf = if btf_present {
        Btf::from_sys_fs().ok()
    } else {
        None
    };
    for spec in &OBSERVERS {
        let mark_all = |statuses: &mut Vec<ProgramStatus>, state: ProgramState, detail: &str| {
            for (prog, tp) in spec.programs {
                statuses.push(ProgramStatus {
                    observer: spec.name.into(),
                    program: (*prog).into(),
                    tracepoint: (*tp).into(),
                    state: state.clone(),
                    detail: detail.into(),
                });
            }
        };
        if !opts.enabled.iter().any(|e| e == spec.name) {
            mark_all(&mut statuses, ProgramState::Disabled, "not in --observers");
            continue;
        }
        let Some(btf) = &btf else {
            mark_all(
                &mut statuses,
                ProgramState::Unsupported,
                "kernel BTF (/sys/kernel/btf/vmlinux) is missing; BTF tracepoints need it",
            );
            continue;
        };
        let mut loader = EbpfLoader::new();
        loader.btf(Some(btf));
        loader.override_global("wakeup_bytes", &opts.wakeup_bytes, true);
        if spec.name == "storage" {
            loader.override_global("slow_ns", &opts.slow_io_ns, true);
        }
        loader.map_max_entries("events", opts.ring_bytes);
        let mut ebpf = match loader.load(spec.object) {
            Ok(e) => e,
            Err(e) => {
                let (state, detail) = classify(&e);
                mark_all(&mut statuses, state, &detail);
                continue;
            }
        };
        let mut any = false;
        for (prog, tp) in spec.programs {
            let result: Result<(), Box<dyn std::error::Error + Send + Sync>> = (|| {
                let p: &mut BtfTracePoint = ebpf
                    .program_mut(prog)
                    .ok_or_else(|| format!("program {prog} missing from the object"))?
                    .try_into()?;
                p.load(tp, btf)?;
                p.attach()?;
                Ok(())
            })();
            let (state, detail) = match result {
                Ok(()) => {
                    any = true;
                    (ProgramState::Attached, String::new())
                }
                Err(e) => classify(e.as_ref()),
            };
            statuses.push(ProgramStatus {
                observer: spec.name.into(),
                program: (*prog).into(),
                tracepoint: (*tp).into(),
                state,
                detail,
            });
        }
        if !any {
            continue;
        }
        let ring = ebpf
            .take_map("events")
            .and_then(|m| RingBuf::try_from(m).ok());
        let drops = ebpf
            .take_map("drops")
            .and_then(|m| PerCpuArray::try_from(m).ok());
        let conn_stats = ebpf
            .take_map("conn_stats")
            .and_then(|m| BpfHashMap::try_from(m).ok());
        let blk_stats = ebpf
            .take_map("blk_stats")
            .and_then(|m| BpfHashMap::try_from(m).ok());
        loaded.push(LoadedObserver {
            name: spec.name,
            _ebpf: ebpf,
            ring,
            drops,
            conn_stats,
            blk_stats,
        });
    }
    let bpf_allowed = statuses.iter().any(|s| s.state == ProgramState::Attached);
    (
        loaded,
        KernelCapabilities {
            kernel_release,
            btf_present,
            bpf_allowed,
            programs: statuses,
            bpf_sources_sha256: SOURCES_SHA256.trim().to_owned(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without clang, `cargo test` still notices BPF sources edited without rebuilding
    /// the committed objects (CI also rebuilds them and compares bytes: bpf/build.sh --check).
    #[test]
    fn embedded_objects_match_their_sources() {
        use sha2::{Digest, Sha256};
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/bpf/");
        let mut h = Sha256::new();
        for f in [
            "tapio_abi.h",
            "kernel_types.h",
            "common.h",
            "net.bpf.c",
            "proc.bpf.c",
            "block.bpf.c",
            "build.sh",
        ] {
            let body = std::fs::read(format!("{dir}{f}")).expect("bpf source readable");
            h.update(f.as_bytes());
            h.update(b"\n");
            h.update(&body);
        }
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            SOURCES_SHA256.trim(),
            "bpf/obj is stale: run crates/tapio-agent/bpf/build.sh and commit the objects"
        );
    }

    #[test]
    fn every_program_is_in_its_object() {
        for spec in &OBSERVERS {
            let obj = aya_obj_names(spec.object);
            for (prog, _) in spec.programs {
                assert!(obj.contains(&prog.to_string()), "{prog} in {}", spec.name);
            }
        }
    }

    fn aya_obj_names(bytes: &[u8]) -> Vec<String> {
        // The program names appear as ELF symbol strings.
        let s = String::from_utf8_lossy(bytes);
        s.split('\0').map(str::to_owned).collect()
    }
}
