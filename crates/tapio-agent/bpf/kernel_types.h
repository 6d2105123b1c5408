/* Minimal kernel type declarations for CO-RE.
 *
 * Only the fields Tapio reads are declared. Every struct carries
 * preserve_access_index, so each field access becomes a relocation that the loader
 * resolves by *name* against the running kernel's BTF (/sys/kernel/btf/vmlinux):
 * offsets here are irrelevant, names and sizes matter. This keeps the build independent
 * of the machine's kernel (no generated vmlinux.h), so the committed objects are
 * byte-for-byte reproducible from these sources with the same clang.
 */
#ifndef TAPIO_KERNEL_TYPES_H
#define TAPIO_KERNEL_TYPES_H

#include <linux/types.h>

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct in6_addr___tapio {
	__u8 s6_addr[16];
};

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	volatile unsigned char skc_state;
	struct in6_addr___tapio skc_v6_daddr;
	struct in6_addr___tapio skc_v6_rcv_saddr;
};

struct sock {
	struct sock_common __sk_common;
	int sk_err;
	__u16 sk_protocol;
};

struct inet_sock {
	struct sock sk;
	__be16 inet_sport;
};

struct tcp_sock {
	__u32 srtt_us;
};

struct kernfs_node {
	__u64 id;
	const char *name;
};

struct cgroup {
	struct kernfs_node *kn;
};

struct cgroup_subsys_state {
	struct cgroup *cgroup;
};

struct css_set {
	struct cgroup_subsys_state *subsys[12];
	struct cgroup *dfl_cgrp;
};

typedef struct {
	long counter;
} atomic_long_t___tapio;

struct page_counter {
	atomic_long_t___tapio usage;
	unsigned long max;
};

struct mem_cgroup {
	struct cgroup_subsys_state css;
	struct page_counter memory;
};

struct percpu_counter {
	__s64 count;
};

struct mm_struct {
	unsigned long total_vm;
	struct percpu_counter rss_stat[4];
};

struct task_struct {
	int pid;
	int tgid;
	int exit_code;
	char comm[16];
	struct css_set *cgroups;
	struct mm_struct *mm;
};

struct gendisk {
	int major;
	int first_minor;
	char disk_name[32];
};

struct request_queue {
	struct gendisk *disk;
};

struct request {
	struct request_queue *q;
	unsigned int cmd_flags;
	unsigned int __data_len;
	__u64 __sector;
};

#pragma clang attribute pop

/* The memory controller's index in css_set.subsys[] depends on the kernel's config:
 * resolved at load time by an enum value relocation. */
enum cgroup_subsys_id { memory_cgrp_id = 4 };

#endif
