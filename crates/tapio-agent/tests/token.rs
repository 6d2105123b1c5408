//! The agents' own token, the way the DaemonSet gets it: the server runs with `--auth-dir`
//! holding the `tapio-agent` entry that `tapio auth add-user --role agent` writes, and the
//! agent reads that same file with `--token-file`. Its heartbeats are accepted; without the
//! token they are refused.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Agent, Server, free_port, http, wait_until};
use serde_json::json;

fn config() -> serde_json::Value {
    // Pressure and filesystems as the only sources: no BPF, no root needed.
    json!({"node": {"kmsg_enabled": false}})
}

/// A person's entry as `tapio auth add-user NAME --role admin` writes it: the role and the
/// token's SHA-256 (people's files never hold the token itself).
fn admin_file(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest: String = Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("role: admin\ntoken-sha256: {digest}\n")
}

#[test]
fn an_agent_with_its_token_file_is_let_in_and_one_without_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = dir.path().join("auth");
    std::fs::create_dir_all(&auth).expect("auth dir");
    // The Secret's two kinds of entry: the agents' (token itself) and a person's (digest).
    let agent_token = "tapio_agent_token_for_the_test";
    std::fs::write(
        auth.join("tapio-agent"),
        tapio_proto::auth::agent_file(agent_token),
    )
    .expect("agent entry");
    let admin_token = "tapio_admin_token_for_the_test";
    std::fs::write(auth.join("admin"), admin_file(admin_token)).expect("admin entry");

    let sdir = dir.path().join("server");
    let auth_dir = auth.display().to_string();
    let mut server = Server::start_in(
        &sdir,
        free_port(),
        &["--kube", "off", "--auth-dir", &auth_dir],
    );
    let url = server.url();
    let agents = || -> Vec<String> {
        let mut r = http()
            .get(format!("{url}/api/v1/agents"))
            .header("authorization", format!("Bearer {admin_token}"))
            .call()
            .expect("GET agents");
        let v: serde_json::Value = r.body_mut().read_json().expect("agents json");
        v["agents"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["agent_id"].as_str().map(str::to_owned))
            .collect()
    };

    let token_file = auth.join("tapio-agent").display().to_string();
    let with = Agent::start(
        &dir.path().join("with"),
        config(),
        &[
            "--sink",
            "server",
            "--server",
            &url,
            "--observers",
            "node",
            "--agent-id",
            "agent-with-token",
            "--heartbeat-seconds",
            "1",
            "--token-file",
            &token_file,
        ],
    );
    let without = Agent::start(
        &dir.path().join("without"),
        config(),
        &[
            "--sink",
            "server",
            "--server",
            &url,
            "--observers",
            "node",
            "--agent-id",
            "agent-without-token",
            "--heartbeat-seconds",
            "1",
        ],
    );
    wait_until(
        "the agent with its token file known to the server",
        Duration::from_secs(20),
        || {
            agents()
                .contains(&"agent-with-token".to_owned())
                .then_some(())
        },
    );
    // A few more heartbeats of the other one: none may get in.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !agents().contains(&"agent-without-token".to_owned()),
        "{:?}",
        agents()
    );
    drop((with, without));
    server.kill9();
    // The token is never logged.
    let log = std::fs::read_to_string(sdir.join("server.log")).unwrap_or_default();
    assert!(!log.contains(agent_token) && !log.contains(admin_token));
}

#[test]
fn a_token_file_without_a_token_stops_the_agent_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("token");
    std::fs::write(&f, "role: agent\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_tapio-agent"))
        .args([
            "--sink",
            "server",
            "--listen",
            "127.0.0.1:0",
            "--token-file",
        ])
        .arg(&f)
        .arg("--spool-dir")
        .arg(dir.path().join("spool"))
        .output()
        .expect("run tapio-agent");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&f.display().to_string()) && err.contains("holds no token"),
        "{err}"
    );
}
