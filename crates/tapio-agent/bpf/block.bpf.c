/* Storage observer: block requests matched issue -> complete by request address. */
#include "common.h"

/* Requests at least this slow are reported one by one (set by the loader). */
const volatile __u64 slow_ns = 100 * 1000 * 1000ULL;

struct inflight {
	__u64 issue_ns;
	__u64 sector;
	__u32 dev;
	__u32 tgid;
	__u64 cgroup_id;
	__u8 ambiguous;
	__u8 _pad[7];
	char comm[TAPIO_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct inflight);
} blk_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64[TAPIO_BLK_COUNTERS]);
} blk_stats SEC(".maps");

static __always_inline __u32 rq_dev(struct request *rq)
{
	struct gendisk *disk = BPF_CORE_READ(rq, q, disk);
	if (!disk)
		return 0;
	__u32 major = BPF_CORE_READ(disk, major);
	__u32 minor = BPF_CORE_READ(disk, first_minor);
	return (major << 20) | minor;
}

static __always_inline void blk_add(__u32 dev, __u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&blk_stats, &dev);
	if (!v) {
		__u64 zero[TAPIO_BLK_COUNTERS] = {};
		bpf_map_update_elem(&blk_stats, &dev, zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&blk_stats, &dev);
		if (!v)
			return;
	}
	if (idx < TAPIO_BLK_COUNTERS)
		__sync_fetch_and_add(&v[idx], n);
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(tapio_block_issue, struct request *rq)
{
	__u64 key = (__u64)rq;
	struct inflight *old = bpf_map_lookup_elem(&blk_inflight, &key);
	if (old) {
		/* Issued again before completing (a requeue): which issue the completion belongs
		 * to is ambiguous, so this request's latency will not be reported. */
		old->ambiguous = 1;
		old->issue_ns = bpf_ktime_get_boot_ns();
		return 0;
	}
	struct inflight in = {};
	__u64 id = bpf_get_current_pid_tgid();
	in.issue_ns = bpf_ktime_get_boot_ns();
	in.sector = BPF_CORE_READ(rq, __sector);
	in.dev = rq_dev(rq);
	in.tgid = id >> 32;
	in.cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(in.comm, sizeof(in.comm));
	bpf_map_update_elem(&blk_inflight, &key, &in, BPF_ANY);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(tapio_block_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	__u64 key = (__u64)rq;
	struct inflight *in = bpf_map_lookup_elem(&blk_inflight, &key);
	__u32 dev = rq_dev(rq);
	if (!in) {
		/* Issued before the agent started, or evicted: no start time to measure from. */
		count_drop(TAPIO_DROP_BLOCK_UNMATCHED);
		blk_add(dev, TAPIO_BLK_IOS, 1);
		if (error)
			blk_add(dev, TAPIO_BLK_ERRORS, 1);
		return 0;
	}
	struct inflight copy = *in;
	bpf_map_delete_elem(&blk_inflight, &key);
	blk_add(dev, TAPIO_BLK_IOS, 1);
	if (error)
		blk_add(dev, TAPIO_BLK_ERRORS, 1);
	if (copy.ambiguous || copy.dev != dev) {
		count_drop(TAPIO_DROP_BLOCK_AMBIGUOUS);
		if (!error)
			return 0;
	}
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 lat = (copy.ambiguous || copy.dev != dev) ? 0 : now - copy.issue_ns;
	if (lat)
		blk_add(dev, TAPIO_BLK_LAT_SUM_NS, lat);
	int slow = lat >= slow_ns && lat > 0;
	if (slow)
		blk_add(dev, TAPIO_BLK_SLOW, 1);
	if (!slow && !error)
		return 0;

	struct tapio_block *rec = reserve(sizeof(*rec));
	if (!rec)
		return 0;
	rec->h.ts_ns = now;
	rec->h.kind = TAPIO_REC_BLOCK;
	rec->h.pid = copy.tgid;
	rec->h.tgid = copy.tgid;
	rec->h._pad = 0;
	rec->h.cgroup_id = copy.cgroup_id;
	__builtin_memcpy(rec->h.comm, copy.comm, TAPIO_COMM_LEN);
	rec->latency_ns = lat;
	rec->sector = copy.sector;
	rec->dev = dev;
	rec->nr_bytes = nr_bytes;
	rec->cmd_flags = BPF_CORE_READ(rq, cmd_flags);
	rec->status = error;
	__builtin_memset(rec->disk, 0, sizeof(rec->disk));
	struct gendisk *disk = BPF_CORE_READ(rq, q, disk);
	if (disk)
		BPF_CORE_READ_STR_INTO(&rec->disk, disk, disk_name);
	submit(rec);
	return 0;
}
