/* Network observer: TCP connect outcomes, per-destination statistics, resets and
 * retransmits. Attached as BTF tracepoints (no tracefs needed). */
#include "common.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_CLOSE 7
#define ECONNREFUSED 111
#define ETIMEDOUT 110

/* Who called connect(): recorded at CLOSE -> SYN_SENT (process context), read back when
 * the outcome arrives, which may be in softirq context of an unrelated task. */
struct pending_connect {
	__u64 start_ns;
	__u32 pid;
	__u32 tgid;
	__u64 cgroup_id;
	char comm[TAPIO_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct pending_connect);
} connecting SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct tapio_dst_key);
	__type(value, __u64[TAPIO_DST_COUNTERS]);
} conn_stats SEC(".maps");

static __always_inline int dst_key(const struct sock *sk, struct tapio_dst_key *key)
{
	__builtin_memset(key, 0, sizeof(*key));
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	key->family = family;
	key->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		__be32 a = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(key->addr, &a, 4);
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&key->addr, sk, __sk_common.skc_v6_daddr);
	} else {
		return -1;
	}
	return 0;
}

static __always_inline void stat_add(const struct tapio_dst_key *key, __u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&conn_stats, key);
	if (!v) {
		__u64 zero[TAPIO_DST_COUNTERS] = {};
		bpf_map_update_elem(&conn_stats, key, zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&conn_stats, key);
		if (!v)
			return;
	}
	if (idx < TAPIO_DST_COUNTERS)
		__sync_fetch_and_add(&v[idx], n);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tapio_sock_state, const struct sock *sk, const int oldstate, const int newstate)
{
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	__u64 skp = (__u64)sk;

	if (newstate == TCP_SYN_SENT) {
		struct tapio_dst_key key;
		if (dst_key(sk, &key) == 0)
			stat_add(&key, TAPIO_DST_ATTEMPTS, 1);
		struct pending_connect pc = {};
		__u64 id = bpf_get_current_pid_tgid();
		pc.start_ns = bpf_ktime_get_boot_ns();
		pc.pid = (__u32)id;
		pc.tgid = id >> 32;
		pc.cgroup_id = bpf_get_current_cgroup_id();
		bpf_get_current_comm(pc.comm, sizeof(pc.comm));
		bpf_map_update_elem(&connecting, &skp, &pc, BPF_ANY);
		return 0;
	}
	if (oldstate != TCP_SYN_SENT)
		return 0;

	struct tapio_dst_key key;
	if (dst_key(sk, &key) != 0)
		return 0;
	if (newstate == TCP_ESTABLISHED) {
		stat_add(&key, TAPIO_DST_SUCCESSES, 1);
		const struct tcp_sock *tp = (const struct tcp_sock *)sk;
		__u32 srtt = BPF_CORE_READ(tp, srtt_us) >> 3;
		stat_add(&key, TAPIO_DST_RTT_SUM_US, srtt);
		bpf_map_delete_elem(&connecting, &skp);
		return 0;
	}
	if (newstate != TCP_CLOSE)
		return 0;

	int err = BPF_CORE_READ(sk, sk_err);
	__u8 outcome;
	if (err == ECONNREFUSED) {
		outcome = TAPIO_CONNECT_REFUSED;
		stat_add(&key, TAPIO_DST_REFUSED, 1);
	} else if (err == ETIMEDOUT) {
		outcome = TAPIO_CONNECT_TIMEOUT;
		stat_add(&key, TAPIO_DST_TIMEOUTS, 1);
	} else if (err != 0) {
		outcome = TAPIO_CONNECT_ERROR;
		stat_add(&key, TAPIO_DST_ERRORS, 1);
	} else {
		/* Closed by its owner before an answer (e.g. a cancelled non-blocking connect). */
		bpf_map_delete_elem(&connecting, &skp);
		return 0;
	}

	struct pending_connect *pc = bpf_map_lookup_elem(&connecting, &skp);
	struct tapio_connect *rec = reserve(sizeof(*rec));
	if (!rec) {
		if (pc)
			bpf_map_delete_elem(&connecting, &skp);
		return 0;
	}
	__u64 now = bpf_ktime_get_boot_ns();
	rec->h.ts_ns = now;
	rec->h.kind = TAPIO_REC_CONNECT;
	rec->h._pad = 0;
	if (pc) {
		rec->h.pid = pc->pid;
		rec->h.tgid = pc->tgid;
		rec->h.cgroup_id = pc->cgroup_id;
		__builtin_memcpy(rec->h.comm, pc->comm, TAPIO_COMM_LEN);
		rec->waited_ns = now - pc->start_ns;
	} else {
		/* Connect started before the agent: no owner known. */
		count_drop(TAPIO_DROP_CONNECT_UNTRACKED);
		rec->h.pid = 0;
		rec->h.tgid = 0;
		rec->h.cgroup_id = 0;
		__builtin_memset(rec->h.comm, 0, TAPIO_COMM_LEN);
		rec->waited_ns = 0;
	}
	__builtin_memset(rec->saddr, 0, sizeof(rec->saddr));
	if (key.family == AF_INET) {
		__be32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__builtin_memcpy(rec->saddr, &s, 4);
	} else {
		BPF_CORE_READ_INTO(&rec->saddr, sk, __sk_common.skc_v6_rcv_saddr);
	}
	__builtin_memcpy(rec->daddr, key.addr, 16);
	/* At CLOSE skc_num is already 0: the bound port lives on in inet_sport. */
	const struct inet_sock *inet = (const struct inet_sock *)sk;
	rec->sport = bpf_ntohs(BPF_CORE_READ(inet, inet_sport));
	rec->dport = key.port;
	rec->family = key.family;
	rec->outcome = outcome;
	rec->_pad = 0;
	rec->sk_err = err;
	rec->_pad2 = 0;
	submit(rec);
	if (pc)
		bpf_map_delete_elem(&connecting, &skp);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tapio_tcp_reset, struct sock *sk)
{
	/* A reset answering our SYN is a refused connect, counted above. */
	if (BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_SYN_SENT)
		return 0;
	struct tapio_dst_key key;
	if (dst_key(sk, &key) == 0)
		stat_add(&key, TAPIO_DST_RESETS, 1);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tapio_tcp_retransmit, const struct sock *sk)
{
	struct tapio_dst_key key;
	if (dst_key(sk, &key) == 0)
		stat_add(&key, TAPIO_DST_RETRANSMITS, 1);
	return 0;
}
