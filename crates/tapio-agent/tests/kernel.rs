//! The agent on the real kernel: each observer produces the evidence it promises, with the
//! exact figures (port, process, exit code, signal, cgroup, device).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Agent, attr, require_root, sh};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

fn low_thresholds() -> serde_json::Value {
    json!({"thresholds": {"refused_min": 1, "stats_interval_seconds": 1,
        "slow_io_ms": 0, "slow_io_min": 1, "exit_ignore_signals": []},
        "node": {"kmsg_enabled": false}})
}

#[test]
fn refused_connect_names_the_port_and_the_process_and_is_counted_per_destination() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(dir.path(), low_thresholds(), &["--observers", "network"]);
    // A port nobody listens on: bind, note it, close.
    let port = common::free_port();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    let me = std::process::id() as i64;
    let ev = agent.wait_event("connection_refused to our port", WAIT, |e| {
        e["type"] == "kernel.network.connection_refused" && attr(e, "dst_port") == port as i64
    });
    assert_eq!(attr(&ev, "pid"), me, "the connecting process: {ev}");
    assert_eq!(attr(&ev, "dst_addr"), "127.0.0.1");
    assert_eq!(attr(&ev, "errno_name"), "ECONNREFUSED");
    assert_eq!(ev["entity"]["node"], "test-node");
    let stats = agent.wait_event("connect statistics for the port", WAIT, |e| {
        e["type"] == "kernel.network.connect_stats" && attr(e, "dst_port") == port as i64
    });
    assert_eq!(attr(&stats, "attempts"), 1, "{stats}");
    assert_eq!(attr(&stats, "refused"), 1, "{stats}");
    assert_eq!(attr(&stats, "successes"), 0, "{stats}");
}

#[test]
fn with_default_thresholds_a_single_refusal_is_only_counted() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(
        dir.path(),
        json!({"thresholds": {"stats_interval_seconds": 1}}),
        &["--observers", "network"],
    );
    let port = common::free_port();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    agent.wait_event("connect statistics for the port", WAIT, |e| {
        e["type"] == "kernel.network.connect_stats"
            && attr(e, "dst_port") == port as i64
            && attr(e, "refused") == 1
    });
    assert!(
        !agent
            .events()
            .iter()
            .any(|e| e["type"] == "kernel.network.connection_refused"
                && attr(e, "dst_port") == port as i64),
        "one refusal must not be connection_refused evidence at the default threshold"
    );
    // Three within the window are.
    for _ in 0..3 {
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }
    let ev = agent.wait_event("connection_refused after three", WAIT, |e| {
        e["type"] == "kernel.network.connection_refused" && attr(e, "dst_port") == port as i64
    });
    assert_eq!(attr(&ev, "count"), 3);
    assert!(
        agent.metric("tapio_agent_filtered_total{observer=\"network\",reason=\"below_threshold\"}")
            >= 1.0
    );
}

/// A SYN dropped by a firewall: in a network namespace of the test's own (a DROP rule on
/// its loopback, one SYN retry so the timeout takes ~3 s instead of ~2 minutes).
#[test]
fn dropped_syns_become_a_connection_timeout() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(dir.path(), low_thresholds(), &["--observers", "network"]);
    let ns = format!("tapio-t{}", std::process::id());
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    sh(&format!("ip netns add {ns}"));
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _c = Cleanup(ns.clone());
    sh(&format!(
        "ip netns exec {ns} ip link set lo up && \
         ip netns exec {ns} sysctl -qw net.ipv4.tcp_syn_retries=1 && \
         (ip netns exec {ns} iptables -A INPUT -p tcp --dport 9 -j DROP || \
          ip netns exec {ns} nft 'add table ip t; add chain ip t in {{ type filter hook input priority 0; }}; add rule ip t in tcp dport 9 drop')"
    ));
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            "bash",
            "-c",
            "exec 3<>/dev/tcp/127.0.0.1/9",
        ])
        .spawn()
        .expect("spawn the connecting client");
    let client_pid = child.id() as i64;
    let out = child.wait_with_output().expect("client");
    assert!(!out.status.success(), "the connect must fail");
    let ev = agent.wait_event("connection_timeout to port 9", WAIT, |e| {
        e["type"] == "kernel.network.connection_timeout" && attr(e, "dst_port") == 9
    });
    assert_eq!(attr(&ev, "errno_name"), "ETIMEDOUT");
    assert_eq!(attr(&ev, "comm"), "bash");
    // `ip netns exec` execs the shell in the same process.
    assert_eq!(attr(&ev, "pid"), client_pid, "{ev}");
    let waited = attr(&ev, "waited_ms").as_i64().expect("waited_ms");
    assert!(
        waited >= 900,
        "the SYN was retried before timing out: {waited} ms"
    );
}

#[test]
fn abnormal_exits_carry_the_code_or_the_signal() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(dir.path(), low_thresholds(), &["--observers", "process"]);
    let child = Command::new("sh")
        .args(["-c", "exit 3"])
        .spawn()
        .expect("spawn sh");
    let exit_pid = child.id() as i64;
    child.wait_with_output().expect("wait");
    let mut sleeper = Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    let kill_pid = sleeper.id() as i64;
    sleeper.kill().expect("SIGKILL");
    sleeper.wait().expect("reap");

    let ev = agent.wait_event("exit code 3", WAIT, |e| {
        e["type"] == "kernel.container.abnormal_exit" && attr(e, "pid") == exit_pid
    });
    assert_eq!(attr(&ev, "exit_code"), 3, "{ev}");
    assert_eq!(attr(&ev, "comm"), "sh");
    let ev = agent.wait_event("SIGKILL", WAIT, |e| {
        e["type"] == "kernel.container.abnormal_exit" && attr(e, "pid") == kill_pid
    });
    assert_eq!(attr(&ev, "signal"), 9, "{ev}");
    assert_eq!(attr(&ev, "signal_name"), "SIGKILL");
    assert_eq!(attr(&ev, "comm"), "sleep");
    assert!(attr(&ev, "exit_code").is_null());
}

/// A real OOM kill in a memory-limited cgroup of the test's own (cgroup v1 memory
/// controller, 64 MiB), inside a cgroup v2 directory shaped like a kubelet pod, with a
/// PodList naming that pod: the evidence arrives attributed to the pod and its workload.
#[test]
fn oom_kill_in_a_limited_cgroup_is_attributed_to_its_pod() {
    if !require_root() {
        return;
    }
    let memcg = format!("/sys/fs/cgroup/memory/tapio-test-{}", std::process::id());
    let uid = "5f0c1b7e-2d3a-4c8e-9b1f-7a6d5e4c3b2a";
    let cid = "3f1e6a2b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
    let v2root = if std::path::Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
        "/sys/fs/cgroup/unified"
    } else {
        "/sys/fs/cgroup"
    };
    let podcg = format!("{v2root}/kubepods/burstable/pod{uid}/{cid}");
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists();
    struct Cleanup(Vec<String>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for d in &self.0 {
                let _ = std::fs::remove_dir(d);
            }
        }
    }
    let _c = Cleanup(vec![
        memcg.clone(),
        podcg.clone(),
        format!("{v2root}/kubepods/burstable/pod{uid}"),
        format!("{v2root}/kubepods/burstable"),
        format!("{v2root}/kubepods"),
    ]);
    std::fs::create_dir_all(&podcg).expect("pod cgroup");
    let limit_file = if v1 {
        std::fs::create_dir_all(&memcg).expect("memory cgroup");
        std::fs::write(format!("{memcg}/memory.limit_in_bytes"), "67108864").expect("limit");
        format!("{memcg}/cgroup.procs")
    } else {
        // Pure cgroup v2: the limit goes on the pod's own cgroup.
        let _ = std::fs::write(format!("{v2root}/cgroup.subtree_control"), "+memory");
        std::fs::write(format!("{podcg}/memory.max"), "67108864").expect("limit");
        format!("{podcg}/cgroup.procs")
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let pods = dir.path().join("pods.json");
    std::fs::write(
        &pods,
        json!({"kind": "PodList", "apiVersion": "v1", "items": [{
            "metadata": {"name": "web-7d9f8b6c5-x2x9q", "namespace": "shop", "uid": uid,
                "labels": {"pod-template-hash": "7d9f8b6c5"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "web-7d9f8b6c5", "uid": "0d4c1e2f-0000-4000-8000-000000000001",
                    "controller": true}]},
            "spec": {"nodeName": "test-node", "containers": [{"name": "app", "image": "web:1"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "app",
                "containerID": format!("containerd://{cid}"), "ready": true,
                "restartCount": 0, "image": "web:1", "imageID": "", "started": true,
                "state": {"running": {"startedAt": "2026-11-27T10:00:00Z"}}}]}
        }]})
        .to_string(),
    )
    .expect("pod list");
    let agent = Agent::start(
        dir.path(),
        low_thresholds(),
        &[
            "--observers",
            "process",
            "--pods",
            pods.to_str().expect("utf-8 path"),
        ],
    );
    let script = if v1 {
        format!("echo $$ > {podcg}/cgroup.procs && echo $$ > {limit_file} && exec tail /dev/zero")
    } else {
        format!("echo $$ > {limit_file} && exec tail /dev/zero")
    };
    let child = Command::new("sh")
        .args(["-c", &script])
        .spawn()
        .expect("spawn the memory hog");
    let pid = child.id() as i64;
    let out = child.wait_with_output().expect("wait for the hog");
    assert!(!out.status.success(), "the hog must be killed");
    let ev = agent.wait_event("oom_kill of the hog", WAIT, |e| {
        e["type"] == "kernel.container.oom_kill" && attr(e, "pid") == pid
    });
    assert_eq!(attr(&ev, "comm"), "tail", "{ev}");
    assert_eq!(attr(&ev, "memory_limit_bytes"), 67_108_864, "{ev}");
    assert!(
        attr(&ev, "anon_rss_bytes").as_i64().unwrap_or(0) > 32 << 20,
        "{ev}"
    );
    assert_eq!(ev["severity"], "critical");
    assert_eq!(ev["entity"]["pod_uid"], uid, "{ev}");
    assert_eq!(ev["entity"]["container_id"], cid, "{ev}");
    assert_eq!(ev["entity"]["pod"], "web-7d9f8b6c5-x2x9q", "{ev}");
    assert_eq!(ev["entity"]["namespace"], "shop", "{ev}");
    assert_eq!(ev["entity"]["container"], "app", "{ev}");
    assert_eq!(ev["entity"]["workload"]["kind"], "Deployment", "{ev}");
    assert_eq!(ev["entity"]["workload"]["name"], "web", "{ev}");
}

struct Loop {
    dev: String,
    mount: Option<String>,
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
        if let Some(m) = &self.mount {
            let _ = Command::new("umount").arg(m).status();
        }
    }
}

/// Block requests on a loop device are matched issue → complete; with a 0 ms threshold
/// every request is slow, and one backed by a full tmpfs fails (BLK_STS_NOSPC): both are
/// evidence naming the device.
#[test]
fn loop_device_latency_and_io_errors() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(dir.path(), low_thresholds(), &["--observers", "storage"]);

    // Latency: a plain backing file.
    let img = dir.path().join("disk.img");
    sh(&format!("truncate -s 64M {}", img.display()));
    let dev = sh(&format!("losetup --find --show {}", img.display()));
    let lo = Loop {
        dev: dev.clone(),
        mount: None,
    };
    let name = dev.trim_start_matches("/dev/").to_owned();
    sh(&format!(
        "dd if=/dev/zero of={dev} bs=64k count=16 oflag=direct status=none"
    ));
    let ev = agent.wait_event("latency_spike on the loop device", WAIT, |e| {
        e["type"] == "kernel.storage.latency_spike" && attr(e, "device") == name.as_str()
    });
    assert_eq!(attr(&ev, "op"), "write", "{ev}");
    assert!(
        attr(&ev, "latency_ms").as_f64().unwrap_or(-1.0) > 0.0,
        "{ev}"
    );
    assert_eq!(attr(&ev, "issuer_comm"), "dd", "{ev}");
    drop(lo);

    // Errors: a backing file larger than the 4 MiB tmpfs it lives on.
    let mnt = dir.path().join("small");
    std::fs::create_dir_all(&mnt).expect("mount point");
    sh(&format!(
        "mount -t tmpfs -o size=4M tmpfs {}",
        mnt.display()
    ));
    let mut lo = Loop {
        dev: String::new(),
        mount: Some(mnt.display().to_string()),
    };
    let backing = mnt.join("b.img");
    sh(&format!("truncate -s 64M {}", backing.display()));
    let dev = sh(&format!("losetup --find --show {}", backing.display()));
    lo.dev = dev.clone();
    let name = dev.trim_start_matches("/dev/").to_owned();
    let _ = Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={dev}"),
            "bs=1M",
            "count=16",
            "oflag=direct",
            "status=none",
        ])
        .status();
    let ev = agent.wait_event("io_error on the loop device", WAIT, |e| {
        e["type"] == "kernel.storage.io_error" && attr(e, "device") == name.as_str()
    });
    assert_eq!(attr(&ev, "status_name"), "nospc", "{ev}");
    assert_eq!(attr(&ev, "op"), "write", "{ev}");
    assert_eq!(ev["severity"], "error");
    drop(lo);
}

#[test]
fn health_reports_each_program_and_metrics_count_records() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start(
        dir.path(),
        low_thresholds(),
        &["--observers", "network,process"],
    );
    let h = agent.health();
    let programs = h["kernel"]["programs"].as_array().expect("programs");
    let state = |p: &str| {
        programs
            .iter()
            .find(|x| x["program"] == p)
            .map(|x| x["state"].as_str().unwrap_or("").to_owned())
            .unwrap_or_default()
    };
    assert_eq!(state("tapio_sock_state"), "attached", "{h}");
    assert_eq!(state("tapio_process_exit"), "attached", "{h}");
    assert_eq!(state("tapio_block_issue"), "disabled", "{h}");
    assert_eq!(h["kernel"]["btf_present"], true);
    assert_eq!(h["kernel"]["bpf_allowed"], true);
    Command::new("sh")
        .args(["-c", "exit 7"])
        .status()
        .expect("sh");
    common::wait_until("the exit counted in /metrics", WAIT, || {
        (agent.metric("tapio_agent_kernel_records_total{observer=\"process\",kind=\"exit\"}")
            >= 1.0)
            .then_some(())
    });
    assert!(
        agent
            .metrics()
            .contains("tapio_agent_program_attached{program=\"tapio_sock_state\"} 1")
    );
}

/// Without privileges the agent still runs what it can (PSI, filesystems) and says, per
/// program, that BPF was denied and what it needs.
#[test]
fn without_privileges_the_agent_degrades_and_says_why() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = Agent::start_unprivileged(dir.path(), json!({}), &[], 65534);
    let h = agent.health();
    assert_eq!(h["kernel"]["bpf_allowed"], false, "{h}");
    let programs = h["kernel"]["programs"].as_array().expect("programs");
    assert_eq!(programs.len(), 7);
    for p in programs {
        assert_eq!(p["state"], "permission_denied", "{p}");
        assert!(
            p["detail"].as_str().unwrap_or("").contains("CAP_BPF"),
            "{p}"
        );
    }
    assert_eq!(h["status"], "degraded", "{h}");
    let sources = h["sources"].as_array().expect("sources");
    let kmsg = sources
        .iter()
        .find(|s| s["name"] == "kmsg")
        .expect("kmsg listed");
    assert_eq!(kmsg["available"], false, "{kmsg}");
    assert!(
        kmsg["detail"].as_str().unwrap_or("").contains("CAP_SYSLOG"),
        "{kmsg}"
    );
    let psi = sources
        .iter()
        .find(|s| s["name"] == "psi")
        .expect("psi listed");
    assert_eq!(psi["available"], true, "{psi}");
}
