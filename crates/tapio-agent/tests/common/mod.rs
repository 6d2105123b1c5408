//! The agent's end-to-end tests: the real `tapio-agent` binary, on this machine's real
//! kernel, and (for delivery tests) the real `tapio-server`, through the shared test
//! support (`tapio-testkit`); what only the agent's tests need is here.
//!
//! These tests need root and BPF, as the agent does in production; CI runs as root. On a
//! machine without them set `TAPIO_SKIP_ROOT_TESTS=1` to skip them explicitly — they
//! never pass silently.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::process::Command;

pub use tapio_testkit::*;

/// False (skip) only when explicitly asked; otherwise root is required.
pub fn require_root() -> bool {
    if std::env::var("TAPIO_SKIP_ROOT_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("skipped: TAPIO_SKIP_ROOT_TESTS=1");
        return false;
    }
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test loads BPF programs and needs root (CI runs as root); \
         set TAPIO_SKIP_ROOT_TESTS=1 to skip it explicitly"
    );
    true
}

/// One attribute of an evidence event.
pub fn attr<'a>(ev: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    &ev["attributes"][key]
}

/// Run `cmd` with `sh -c`; its trimmed stdout, or a panic with its stderr.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
