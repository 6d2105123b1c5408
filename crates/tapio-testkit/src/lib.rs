//! Test support for Tapio's integration tests (a dev-dependency only, never shipped).
//!
//! One place for what every end-to-end test needs: a free loopback port ([`ports`]), the
//! workspace's own binaries, built when a test needs one from another package ([`bins`]),
//! the real processes on loopback with a readiness wait and kill-on-drop ([`server`],
//! [`agent`], [`daemon`]), polling ([`wait`]), HTTP helpers and a fake HTTP peer
//! ([`http`], [`fake_http`]) and common fixtures ([`fixtures`]).
//!
//! The most used names are re-exported at the crate root, so a test's `common` module can
//! be `pub use tapio_testkit::*;` plus whatever only that crate needs.

pub mod agent;
pub mod bins;
pub mod daemon;
pub mod fake_http;
pub mod fixtures;
pub mod http;
pub mod ports;
pub mod process;
pub mod server;
pub mod wait;

pub use agent::Agent;
pub use bins::{cli_bin, repo_root, require, server_bin, which};
pub use daemon::Daemon;
pub use fake_http::Receiver;
pub use fixtures::{add_user, example, oom_batch, open_p1};
pub use http::{get_json, http, http_agent, metric_sum};
pub use ports::{free_port, refuse_ports};
pub use server::Server;
pub use wait::{wait, wait_until};
