//! TLS between the agent and the server: the real server on HTTPS (`--tls-cert/--tls-key`),
//! the real agent with `--ca-file`. The agent delivers only to a server whose certificate
//! its CA signed, never falls back to plain HTTP, and the server picks up a rotated
//! certificate without a restart (and keeps the old one when the new files are bad).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::server::ServerOptions;
use common::{Agent, Server, attr, refuse_ports, require_root, wait_until};
use serde_json::json;
use tapio_agent::client::ClientTls;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA named `name` and a server certificate for 127.0.0.1 / localhost signed by it.
/// Returns (ca.pem, server.pem, server.key).
fn pki(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca = vec!["req", "-x509", "-nodes", "-days", "2"];
    ca.extend(ec);
    let (ca_key, ca_pem) = (format!("{name}-ca.key"), format!("{name}-ca.pem"));
    let subj = format!("/CN={name} test CA");
    ca.extend(["-keyout", &ca_key, "-out", &ca_pem, "-subj", &subj]);
    openssl(dir, &ca);
    let (key, csr, pem) = (
        format!("{name}-server.key"),
        format!("{name}-server.csr"),
        format!("{name}-server.pem"),
    );
    let mut req = vec!["req", "-nodes"];
    req.extend(ec);
    req.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=tapio-server"]);
    openssl(dir, &req);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write san.ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &pem,
            "-extfile",
            "san.ext",
        ],
    );
    (dir.join(ca_pem), dir.join(pem), dir.join(key))
}

/// The server on HTTPS with the certificate at `cert`/`key` (paths that rotation rewrites).
fn start_server(dir: &Path, cert: &Path, key: &Path, ca: &Path) -> Server {
    let ca = ca.to_owned();
    let mut args: Vec<String> = vec!["--kube".into(), "off".into()];
    args.extend(["--tls-cert".into(), cert.display().to_string()]);
    args.extend(["--tls-key".into(), key.display().to_string()]);
    Server::start_with(ServerOptions {
        dir: Some(dir.to_owned()),
        args,
        https: true,
        // Ready over HTTPS, trusting only the CA.
        ready: Some(Box::new(move |url: &str| {
            get(url, &ca, "/ready").is_some_and(|(code, _)| code == 200)
        })),
        ..ServerOptions::default()
    })
}

/// GET over HTTPS trusting only `ca`; `None` when the request fails (e.g. verification).
fn get(base: &str, ca: &Path, path: &str) -> Option<(u16, String)> {
    let client = ClientTls::from_args(&[base.to_owned()], Some(ca))
        .expect("client config")
        .agent(Duration::from_secs(5));
    let mut r = client.get(format!("{base}{path}")).call().ok()?;
    let code = r.status().as_u16();
    Some((code, r.body_mut().read_to_string().unwrap_or_default()))
}

fn metric(base: &str, ca: &Path, name: &str) -> f64 {
    let (_, text) = get(base, ca, "/metrics").expect("metrics");
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn agent_args(server: &str, id: &str, ca: &Path) -> Vec<String> {
    [
        "--sink",
        "server",
        "--server",
        server,
        "--observers",
        "network",
        "--agent-id",
        id,
        "--heartbeat-seconds",
        "1",
        "--ca-file",
        &ca.display().to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn config() -> serde_json::Value {
    json!({"thresholds": {"refused_min": 1, "stats_interval_seconds": 1},
        "node": {"kmsg_enabled": false, "psi_enabled": false, "fs_enabled": false}})
}

#[test]
fn the_agent_ships_only_to_a_server_its_ca_signed_and_rotation_needs_no_restart() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let pkid = dir.path().join("pki");
    std::fs::create_dir_all(&pkid).expect("pki dir");
    let (ca, cert1, key1) = pki(&pkid, "good");
    let (rogue_ca, cert2, key2) = pki(&pkid, "other");
    // The paths the server reads; rotation rewrites them.
    let (cert, key) = (pkid.join("tls.crt"), pkid.join("tls.key"));
    std::fs::copy(&cert1, &cert).expect("cert");
    std::fs::copy(&key1, &key).expect("key");
    let server = start_server(&dir.path().join("server"), &cert, &key, &ca);

    // 1. The agent trusting the server's CA delivers evidence over HTTPS.
    let id = format!("tls-{}", std::process::id());
    let args = agent_args(&server.url(), &id, &ca);
    let agent = Agent::start(
        &dir.path().join("agent"),
        config(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let ports = refuse_ports(3);
    let me = std::process::id() as i64;
    wait_until(
        "the agent's evidence at the HTTPS server",
        Duration::from_secs(30),
        || {
            let (_, body) = get(&server.url(), &ca, "/api/v1/evidence?limit=5000")?;
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            let n = v["evidence"]
                .as_array()?
                .iter()
                .map(|r| &r["event"])
                .filter(|e| {
                    e["type"] == "kernel.network.connection_refused"
                        && attr(e, "pid") == me
                        && attr(e, "dst_port")
                            .as_u64()
                            .is_some_and(|p| ports.contains(&(p as u16)))
                })
                .count();
            (n >= ports.len()).then_some(())
        },
    );
    drop(agent);

    // 2. An agent trusting another CA refuses the server's certificate: nothing arrives,
    //    the failure is visible in its health, and the server counts failed handshakes.
    let rogue_id = format!("tls-rogue-{}", std::process::id());
    let args = agent_args(&server.url(), &rogue_id, &rogue_ca);
    let rogue = Agent::start(
        &dir.path().join("rogue"),
        config(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    refuse_ports(2);
    let err = wait_until(
        "the rogue agent's delivery error",
        Duration::from_secs(30),
        || {
            let h = rogue.health();
            let e = h["shipping"]["last_error"].as_str()?.to_owned();
            (!e.is_empty()).then_some(e)
        },
    );
    assert!(
        err.to_lowercase().contains("certificate") || err.to_lowercase().contains("tls"),
        "the agent names the TLS failure: {err}"
    );
    assert!(err.contains("https://"), "it never tried plain HTTP: {err}");
    let (_, agents) = get(&server.url(), &ca, "/api/v1/agents").expect("agents");
    assert!(
        !agents.contains(&rogue_id),
        "an agent that cannot verify the server sent nothing: {agents}"
    );
    assert!(
        metric(
            &server.url(),
            &ca,
            "tapio_tls_handshakes_total{result=\"failed\"}"
        ) >= 1.0
    );
    drop(rogue);

    // 3. Rotation: the files now hold a certificate from the other CA. New connections
    //    get it within seconds, without a restart.
    std::fs::copy(&key2, &key).expect("rotate key");
    std::fs::copy(&cert2, &cert).expect("rotate cert");
    wait_until(
        "the rotated certificate served",
        Duration::from_secs(15),
        || get(&server.url(), &rogue_ca, "/ready").filter(|(c, _)| *c == 200),
    );
    assert!(
        get(&server.url(), &ca, "/ready").is_none(),
        "the old certificate is no longer served"
    );

    // 4. A broken rotation (key of the first pair with the second certificate) is
    //    refused and the working certificate stays in force.
    std::fs::copy(&key1, &key).expect("bad key");
    wait_until(
        "the refused reload counted",
        Duration::from_secs(15),
        || {
            (metric(
                &server.url(),
                &rogue_ca,
                "tapio_tls_reloads_total{result=\"failed\"}",
            ) >= 1.0)
                .then_some(())
        },
    );
    assert_eq!(
        get(&server.url(), &rogue_ca, "/ready").map(|(c, _)| c),
        Some(200),
        "still serving the last good certificate"
    );
}

#[test]
fn the_agent_refuses_to_start_when_it_could_downgrade() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_tapio-agent"))
        .args([
            "--server",
            "https://tapio-a:8443,http://tapio-b:8080",
            "--sink",
            "server",
            "--listen",
            "127.0.0.1:0",
            "--spool-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("run tapio-agent");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"http://tapio-b:8080\"") && err.contains("never downgrades"),
        "{err}"
    );
}
