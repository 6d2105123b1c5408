//! The real PostgreSQL and NATS JetStream the scale-out tests use, started once per machine
//! by `scripts/test-services.sh` (idempotent; shared by every test process). Each test gets
//! its own database (and its own NATS stream names), so tests never see each other's data.
// Each test binary compiles this module for itself and uses only part of it (these tests
// need the PostgreSQL URL, not the NATS one), so some items are unused in every binary.
#![allow(dead_code)]

use std::sync::OnceLock;

pub struct Services {
    pub postgres: String,
    pub nats: String,
}

pub fn services() -> &'static Services {
    static S: OnceLock<Services> = OnceLock::new();
    S.get_or_init(|| {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/test-services.sh"
        );
        let out = std::process::Command::new(script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
        assert!(
            out.status.success(),
            "{script} failed (PostgreSQL and nats-server are needed; .ci/run installs them):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = text.lines();
        Services {
            postgres: lines.next().expect("postgres url").to_owned(),
            nats: lines.next().expect("nats url").to_owned(),
        }
    })
}

/// A new, empty database on the test PostgreSQL; returns its URL.
pub async fn fresh_database() -> String {
    let admin = &services().postgres;
    let (client, conn) = tokio_postgres::connect(admin, tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    tokio::spawn(conn);
    let name = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    let base = admin.rsplit_once('/').expect("url has a database").0;
    format!("{base}/{name}")
}
