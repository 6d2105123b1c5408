//! tapio-agent: watches the node's kernel with eBPF (and, without BPF, PSI, filesystems
//! and `/dev/kmsg`), turns what it sees into named evidence, enriches it with the container
//! and pod it concerns, and ships it to `tapio-server` through a durable, bounded spool.

pub mod abi;
pub mod bpf;
pub mod client;
pub mod detect;
pub mod enrich;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod mountinfo;
pub mod node;
pub mod run;
pub mod ship;
pub mod spool;
