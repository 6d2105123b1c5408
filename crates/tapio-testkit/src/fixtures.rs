//! Fixtures several tests share: users and their tokens, example files, evidence batches,
//! an open P1.

use std::path::Path;
use std::process::Command;

use crate::{Server, bins};

/// A user made with `tapio auth add-user` in `dir`; the token it prints once.
pub fn add_user(dir: &Path, name: &str, role: &str) -> String {
    let out = Command::new(bins::cli_bin())
        .args(["auth", "add-user", name, "--role", role, "--auth-dir"])
        .arg(dir)
        .output()
        .expect("tapio auth add-user");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(token.starts_with("tapio_") && token.len() > 40, "{token}");
    token
}

/// A file of the repository's `examples/` directory.
pub fn example(name: &str) -> Vec<u8> {
    std::fs::read(bins::repo_root().join("examples").join(name)).expect("example file")
}

/// One batch of `n` OOM events for workload `workload`, as JSON.
pub fn oom_batch(agent: &str, seq: u64, workload: &str, n: usize) -> String {
    let now = chrono::Utc::now().to_rfc3339();
    let events: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"id":"{}","time":"{now}","type":"kernel.container.oom_kill","severity":"critical","entity":{{"namespace":"shop","pod":"{workload}-{i}","workload":{{"kind":"Deployment","name":"{workload}"}}}},"attributes":{{"comm":"java","pid":{i}}}}}"#,
                ulid::Ulid::new()
            )
        })
        .collect();
    format!(
        r#"{{"version":1,"agent_id":"{agent}","node":"worker-1","seq":{seq},"events":[{}]}}"#,
        events.join(",")
    )
}

/// A P1 from another tool (payments has no replica available); its incident id.
pub fn open_p1(s: &Server) -> String {
    let (status, v) = s.post(
        "/api/v1/events",
        br#"{"type":"kubernetes.workload.unavailable","severity":"critical","producer":"ci",
             "entity":{"namespace":"shop","workload":{"kind":"Deployment","name":"payments"}},
             "attributes":{"desired_replicas":3,"available_replicas":0}}"#,
        &[],
    );
    assert_eq!(status, 202, "{v}");
    s.wait_for(10, "the P1", |s| !s.incidents("?severity=P1").is_empty());
    s.incidents("?severity=P1")[0]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}
