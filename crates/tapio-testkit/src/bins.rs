//! The repository and the workspace's binaries (`tapio-server`, `tapio-agent`, `tapio`).
//!
//! Cargo builds a package's own binaries before its integration tests, but not another
//! package's: a server test that runs the CLI, or an agent test that runs the server, has
//! it built here, once per test process (a no-op when up to date). A test never rebuilds
//! its own package's binary: that one is fresh already.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The repository root (the workspace directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// The directory Cargo writes binaries to (`target/debug`): a test executable lives in its
/// `deps/` subdirectory.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("test executable directory");
    if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("target profile directory").to_owned()
    } else {
        deps.to_owned()
    }
}

/// The path of binary `bin` of workspace package `package`, built first when it belongs to
/// another package than the test's (Cargo tells a running test its package in
/// `CARGO_PKG_NAME`; without it, build to be safe).
pub fn workspace_bin(package: &str, bin: &str) -> PathBuf {
    static BUILT: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let own = std::env::var("CARGO_PKG_NAME").is_ok_and(|p| p == package);
    if !own {
        let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
        if !built.contains(bin) {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--quiet", "-p", package, "--bin", bin])
                .current_dir(repo_root())
                .status()
                .unwrap_or_else(|e| panic!("run cargo build for {bin}: {e}"));
            assert!(status.success(), "building {bin} failed");
            built.insert(bin.to_owned());
        }
    }
    bin_dir().join(bin)
}

/// The `tapio-server` binary.
pub fn server_bin() -> PathBuf {
    workspace_bin("tapio-server", "tapio-server")
}

/// The `tapio` CLI binary.
pub fn cli_bin() -> PathBuf {
    workspace_bin("tapio-cli", "tapio")
}

/// The `tapio-agent` binary.
pub fn agent_bin() -> PathBuf {
    workspace_bin("tapio-agent", "tapio-agent")
}

/// An executable on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// An executable the test cannot run without: its path, or a panic with the install hint.
pub fn require(bin: &str, package: &str) -> PathBuf {
    which(bin).unwrap_or_else(|| {
        panic!("this test needs {bin}: apt-get install {package} (or run .ci/run)")
    })
}
