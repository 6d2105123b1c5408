/* Records the BPF programs put on their ring buffers, and the keys and values of the
 * statistics maps. The Rust decoder (src/abi.rs) reads the same offsets; a Rust test
 * parses the _Static_assert lines below and checks them against its constants, so the
 * two sides cannot drift apart silently. Little-endian (x86_64, arm64). */
#ifndef TAPIO_ABI_H
#define TAPIO_ABI_H

#define TAPIO_COMM_LEN 16
#define TAPIO_NAME_LEN 64

enum tapio_record_kind {
	TAPIO_REC_CONNECT = 1,
	TAPIO_REC_EXIT = 2,
	TAPIO_REC_OOM = 3,
	TAPIO_REC_BLOCK = 4,
};

/* Connect outcomes in struct tapio_connect.outcome. */
enum tapio_connect_outcome {
	TAPIO_CONNECT_REFUSED = 1,
	TAPIO_CONNECT_TIMEOUT = 2,
	TAPIO_CONNECT_ERROR = 3,
};

/* Reasons counted in the `drops` array map. */
enum tapio_drop_reason {
	TAPIO_DROP_RINGBUF_FULL = 0,
	TAPIO_DROP_BLOCK_AMBIGUOUS = 1,
	TAPIO_DROP_BLOCK_UNMATCHED = 2,
	TAPIO_DROP_CONNECT_UNTRACKED = 3,
	TAPIO_DROP_REASONS = 4,
};

struct tapio_header {
	__u64 ts_ns;      /* bpf_ktime_get_boot_ns() */
	__u32 kind;       /* enum tapio_record_kind */
	__u32 pid;        /* thread id */
	__u32 tgid;       /* process id */
	__u32 _pad;
	__u64 cgroup_id;  /* cgroup v2 id (inode of the cgroup directory) */
	char comm[TAPIO_COMM_LEN];
};
_Static_assert(sizeof(struct tapio_header) == 48, "tapio_header size");
_Static_assert(__builtin_offsetof(struct tapio_header, kind) == 8, "tapio_header.kind");
_Static_assert(__builtin_offsetof(struct tapio_header, pid) == 12, "tapio_header.pid");
_Static_assert(__builtin_offsetof(struct tapio_header, tgid) == 16, "tapio_header.tgid");
_Static_assert(__builtin_offsetof(struct tapio_header, cgroup_id) == 24, "tapio_header.cgroup_id");
_Static_assert(__builtin_offsetof(struct tapio_header, comm) == 32, "tapio_header.comm");

/* A failed outbound TCP connect; the process is the one that called connect(). */
struct tapio_connect {
	struct tapio_header h;
	__u8 saddr[16];   /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
	__u16 sport;      /* host order */
	__u16 dport;      /* host order */
	__u16 family;     /* AF_INET 2, AF_INET6 10 */
	__u8 outcome;     /* enum tapio_connect_outcome */
	__u8 _pad;
	__u32 sk_err;     /* errno the socket failed with */
	__u32 _pad2;
	__u64 waited_ns;  /* connect() to failure */
};
_Static_assert(sizeof(struct tapio_connect) == 104, "tapio_connect size");
_Static_assert(__builtin_offsetof(struct tapio_connect, saddr) == 48, "tapio_connect.saddr");
_Static_assert(__builtin_offsetof(struct tapio_connect, daddr) == 64, "tapio_connect.daddr");
_Static_assert(__builtin_offsetof(struct tapio_connect, sport) == 80, "tapio_connect.sport");
_Static_assert(__builtin_offsetof(struct tapio_connect, dport) == 82, "tapio_connect.dport");
_Static_assert(__builtin_offsetof(struct tapio_connect, family) == 84, "tapio_connect.family");
_Static_assert(__builtin_offsetof(struct tapio_connect, outcome) == 86, "tapio_connect.outcome");
_Static_assert(__builtin_offsetof(struct tapio_connect, sk_err) == 88, "tapio_connect.sk_err");
_Static_assert(__builtin_offsetof(struct tapio_connect, waited_ns) == 96, "tapio_connect.waited_ns");

/* A process that exited with a non-zero code or was killed by a signal. */
struct tapio_exit {
	struct tapio_header h;
	__u32 exit_code;  /* wait status: code << 8, or signal | 0x80 core flag */
	__u32 _pad;
};
_Static_assert(sizeof(struct tapio_exit) == 56, "tapio_exit size");
_Static_assert(__builtin_offsetof(struct tapio_exit, exit_code) == 48, "tapio_exit.exit_code");

/* The OOM killer chose a victim. The header describes the victim, not the allocator. */
struct tapio_oom {
	struct tapio_header h;
	__u64 memcg_limit_bytes;  /* 0 when unknown or unlimited */
	__u64 memcg_usage_bytes;
	__u64 anon_rss_bytes;
	__u64 file_rss_bytes;
	__u64 total_vm_bytes;
	__u32 uid;
	__u32 _pad;
	char memcg_name[TAPIO_NAME_LEN];  /* leaf name of the victim's memory cgroup */
};
_Static_assert(sizeof(struct tapio_oom) == 160, "tapio_oom size");
_Static_assert(__builtin_offsetof(struct tapio_oom, memcg_limit_bytes) == 48, "tapio_oom.memcg_limit_bytes");
_Static_assert(__builtin_offsetof(struct tapio_oom, memcg_usage_bytes) == 56, "tapio_oom.memcg_usage_bytes");
_Static_assert(__builtin_offsetof(struct tapio_oom, anon_rss_bytes) == 64, "tapio_oom.anon_rss_bytes");
_Static_assert(__builtin_offsetof(struct tapio_oom, file_rss_bytes) == 72, "tapio_oom.file_rss_bytes");
_Static_assert(__builtin_offsetof(struct tapio_oom, total_vm_bytes) == 80, "tapio_oom.total_vm_bytes");
_Static_assert(__builtin_offsetof(struct tapio_oom, uid) == 88, "tapio_oom.uid");
_Static_assert(__builtin_offsetof(struct tapio_oom, memcg_name) == 96, "tapio_oom.memcg_name");

/* A block request that failed or took longer than the slow threshold.
 * The header names the task that issued the request. */
struct tapio_block {
	struct tapio_header h;
	__u64 latency_ns;
	__u64 sector;
	__u32 dev;        /* major << 20 | minor (kernel dev_t) */
	__u32 nr_bytes;
	__u32 cmd_flags;  /* op in the low 8 bits */
	__s32 status;     /* blk_status_t, 0 = ok */
	char disk[32];
};
_Static_assert(sizeof(struct tapio_block) == 112, "tapio_block size");
_Static_assert(__builtin_offsetof(struct tapio_block, latency_ns) == 48, "tapio_block.latency_ns");
_Static_assert(__builtin_offsetof(struct tapio_block, sector) == 56, "tapio_block.sector");
_Static_assert(__builtin_offsetof(struct tapio_block, dev) == 64, "tapio_block.dev");
_Static_assert(__builtin_offsetof(struct tapio_block, nr_bytes) == 68, "tapio_block.nr_bytes");
_Static_assert(__builtin_offsetof(struct tapio_block, cmd_flags) == 72, "tapio_block.cmd_flags");
_Static_assert(__builtin_offsetof(struct tapio_block, status) == 76, "tapio_block.status");
_Static_assert(__builtin_offsetof(struct tapio_block, disk) == 80, "tapio_block.disk");

/* Per-destination connection statistics (LRU hash `conn_stats`). Cumulative; user space
 * takes deltas per interval, so no counter is ever reset under a racing writer. */
struct tapio_dst_key {
	__u8 addr[16];
	__u16 port;       /* host order */
	__u16 family;
	__u32 _pad;
};
_Static_assert(sizeof(struct tapio_dst_key) == 24, "tapio_dst_key size");
_Static_assert(__builtin_offsetof(struct tapio_dst_key, port) == 16, "tapio_dst_key.port");
_Static_assert(__builtin_offsetof(struct tapio_dst_key, family) == 18, "tapio_dst_key.family");

enum tapio_dst_counter {
	TAPIO_DST_ATTEMPTS = 0,
	TAPIO_DST_SUCCESSES = 1,
	TAPIO_DST_REFUSED = 2,
	TAPIO_DST_TIMEOUTS = 3,
	TAPIO_DST_ERRORS = 4,
	TAPIO_DST_RTT_SUM_US = 5,   /* handshake RTT, summed over successes */
	TAPIO_DST_RETRANSMITS = 6,
	TAPIO_DST_RESETS = 7,       /* RSTs received on established connections */
	TAPIO_DST_COUNTERS = 8,
};

/* Per-device block statistics (hash `blk_stats`, key: dev). Cumulative. */
enum tapio_blk_counter {
	TAPIO_BLK_IOS = 0,
	TAPIO_BLK_ERRORS = 1,
	TAPIO_BLK_SLOW = 2,
	TAPIO_BLK_LAT_SUM_NS = 3,
	TAPIO_BLK_COUNTERS = 4,
};

#endif
