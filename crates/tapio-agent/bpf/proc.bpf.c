/* Process observer: abnormal exits and OOM kills. */
#include "common.h"

SEC("tp_btf/sched_process_exit")
int BPF_PROG(tapio_process_exit, struct task_struct *p)
{
	int code = BPF_CORE_READ(p, exit_code);
	if (code == 0)
		return 0;
	/* One record per process: the thread-group leader, not each thread. */
	if (BPF_CORE_READ(p, pid) != BPF_CORE_READ(p, tgid))
		return 0;
	struct tapio_exit *rec = reserve(sizeof(*rec));
	if (!rec)
		return 0;
	fill_current(&rec->h, TAPIO_REC_EXIT);
	rec->exit_code = code;
	rec->_pad = 0;
	submit(rec);
	return 0;
}

SEC("tp_btf/mark_victim")
int BPF_PROG(tapio_oom_victim, struct task_struct *task, __u32 uid)
{
	/* Runs in the allocating task's context: everything is read from the victim. */
	struct tapio_oom *rec = reserve(sizeof(*rec));
	if (!rec)
		return 0;
	rec->h.ts_ns = bpf_ktime_get_boot_ns();
	rec->h.kind = TAPIO_REC_OOM;
	rec->h.pid = BPF_CORE_READ(task, pid);
	rec->h.tgid = BPF_CORE_READ(task, tgid);
	rec->h._pad = 0;
	rec->h.cgroup_id = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
	BPF_CORE_READ_STR_INTO(&rec->h.comm, task, comm);
	rec->uid = uid;
	rec->_pad = 0;

	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	long anon = 0, file = 0;
	unsigned long vm = 0;
	if (mm) {
		file = BPF_CORE_READ(mm, rss_stat[0].count);
		anon = BPF_CORE_READ(mm, rss_stat[1].count);
		vm = BPF_CORE_READ(mm, total_vm);
	}
	rec->anon_rss_bytes = anon > 0 ? (__u64)anon * 4096 : 0;
	rec->file_rss_bytes = file > 0 ? (__u64)file * 4096 : 0;
	rec->total_vm_bytes = (__u64)vm * 4096;

	int memcg_id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	struct cgroup_subsys_state *css = 0;
	struct css_set *cs = BPF_CORE_READ(task, cgroups);
	if (cs && memcg_id >= 0 && memcg_id < 12)
		bpf_probe_read_kernel(&css, sizeof(css),
				      (void *)cs + bpf_core_field_offset(struct css_set, subsys) +
					      memcg_id * sizeof(void *));
	rec->memcg_limit_bytes = 0;
	rec->memcg_usage_bytes = 0;
	__builtin_memset(rec->memcg_name, 0, sizeof(rec->memcg_name));
	if (css) {
		struct mem_cgroup *memcg = (struct mem_cgroup *)css;
		unsigned long max = BPF_CORE_READ(memcg, memory.max);
		long usage = BPF_CORE_READ(memcg, memory.usage.counter);
		/* PAGE_COUNTER_MAX (unlimited) is LONG_MAX / PAGE_SIZE. */
		if (max < (0x7fffffffffffffffUL / 4096))
			rec->memcg_limit_bytes = (__u64)max * 4096;
		rec->memcg_usage_bytes = usage > 0 ? (__u64)usage * 4096 : 0;
		const char *name = BPF_CORE_READ(css, cgroup, kn, name);
		if (name)
			bpf_probe_read_kernel_str(rec->memcg_name, sizeof(rec->memcg_name), name);
	}
	submit(rec);
	return 0;
}
