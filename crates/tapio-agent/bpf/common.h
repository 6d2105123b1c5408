/* Shared by every Tapio BPF object: the ring buffer, the drop counters, the header fill. */
#ifndef TAPIO_COMMON_H
#define TAPIO_COMMON_H

#include <linux/bpf.h>
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "tapio_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before load (aya EbpfLoader::set_max_entries). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TAPIO_DROP_REASONS);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Wake the reader only once this much is waiting; the reader also polls on a short
 * timer, so a lone record waits at most that long. Saves a wakeup per record. */
const volatile __u64 wakeup_bytes = 256 * 1024;

static __always_inline void count_drop(__u32 reason)
{
	__u64 *v = bpf_map_lookup_elem(&drops, &reason);
	if (v)
		*v += 1;
}

static __always_inline void *reserve(__u64 size)
{
	void *rec = bpf_ringbuf_reserve(&events, size, 0);
	if (!rec)
		count_drop(TAPIO_DROP_RINGBUF_FULL);
	return rec;
}

static __always_inline void submit(void *rec)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	bpf_ringbuf_submit(rec, avail >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline void fill_current(struct tapio_header *h, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	h->ts_ns = bpf_ktime_get_boot_ns();
	h->kind = kind;
	h->pid = (__u32)id;
	h->tgid = id >> 32;
	h->_pad = 0;
	h->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

#endif
