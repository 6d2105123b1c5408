//! Starting a child process with its stderr in a log file, waiting until it is ready, and
//! stopping it (SIGKILL, or SIGTERM for the graceful path).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Start `cmd` with stdout discarded and stderr appended to `log` (created if missing).
pub fn spawn_logged(what: &str, cmd: &mut Command, log: &Path) -> Child {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("log file {}: {e}", log.display()));
    cmd.stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"))
}

/// Poll `ready` every `every` until it holds, for at most `timeout`. A child that exits
/// first, or a deadline passed, is a panic showing the log (the child is killed first: the
/// caller does not hold it yet, so nothing else would).
pub fn wait_ready(
    what: &str,
    child: &mut Child,
    log: &Path,
    timeout: Duration,
    every: Duration,
    mut ready: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    let logs = || std::fs::read_to_string(log).unwrap_or_default();
    loop {
        if ready() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited ({status}); log:\n{}", logs());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not become ready; log:\n{}", logs());
        }
        std::thread::sleep(every);
    }
}

/// SIGKILL and reap: no shutdown path runs. Nothing to do when already stopped.
pub fn kill9(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// SIGTERM and wait for the exit: the graceful shutdown path runs.
pub fn terminate(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let pid = i32::try_from(c.id()).expect("pid fits in pid_t");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        c.wait().expect("wait");
    }
}
