//! `tapio up`: tapio-server and tapio-agent together on this host, embedded defaults, so a
//! newcomer sees real evidence from their own machine in a minute.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal, kill};
use nix::unistd::Pid;

pub struct UpArgs {
    pub data_dir: PathBuf,
    pub config_dir: PathBuf,
    pub listen: String,
    pub agent_listen: String,
    pub no_agent: bool,
}

fn sibling(name: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let p = me.with_file_name(name);
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{} not found next to {}: build every binary first (cargo build --release --bins)",
            name,
            me.display()
        ))
    }
}

fn stop(child: &mut Child) {
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

pub fn run(a: UpArgs) -> Result<(), String> {
    let server_bin = sibling("tapio-server")?;
    let agent_bin = if a.no_agent {
        None
    } else {
        Some(sibling("tapio-agent")?)
    };
    for d in [&a.data_dir, &a.config_dir] {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    let mut server = Command::new(&server_bin)
        .arg("--listen")
        .arg(&a.listen)
        .arg("--data-dir")
        .arg(&a.data_dir)
        .arg("--config-dir")
        .arg(&a.config_dir)
        .args(["--log-format", "logfmt"])
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", server_bin.display()))?;
    let base = format!("http://{}", a.listen.replace("0.0.0.0", "127.0.0.1"));
    wait_ready(&base, &mut server)?;
    eprintln!(
        "tapio up: tapio-server ready on {base} (data in {})",
        a.data_dir.display()
    );

    let mut agent = match &agent_bin {
        None => None,
        Some(bin) => {
            if !nix::unistd::geteuid().is_root() {
                eprintln!(
                    "tapio up: not root: the agent runs without eBPF (PSI and filesystems only); \
                     run as root for kernel evidence"
                );
            }
            let spool = a.data_dir.join("agent-spool");
            Some(
                Command::new(bin)
                    .arg("--server")
                    .arg(&base)
                    .arg("--spool-dir")
                    .arg(&spool)
                    .arg("--listen")
                    .arg(&a.agent_listen)
                    .spawn()
                    .map_err(|e| format!("cannot start {}: {e}", bin.display()))?,
            )
        }
    };
    if agent.is_some() {
        eprintln!(
            "tapio up: tapio-agent watching this host (metrics and health on {})",
            a.agent_listen
        );
    }
    eprintln!(
        "tapio up: try `tapio check --all`, `tapio incidents list`, or \
         `curl -s {base}/api/v1/evidence | jq` ; Ctrl-C stops both"
    );

    // Now that both children run (they inherited an unblocked mask, so they handle
    // SIGINT/SIGTERM themselves), block those signals here and wait for them on a thread.
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block()
        .map_err(|e| format!("cannot set up signal handling: {e}"))?;
    let stopping = Arc::new(AtomicBool::new(false));
    {
        let stopping = stopping.clone();
        std::thread::spawn(move || {
            if set.wait().is_ok() {
                stopping.store(true, Ordering::Relaxed);
            }
        });
    }

    let mut result = Ok(());
    while !stopping.load(Ordering::Relaxed) {
        if let Ok(Some(st)) = server.try_wait() {
            result = Err(format!("tapio-server exited ({st})"));
            break;
        }
        if let Some(ag) = agent.as_mut()
            && let Ok(Some(st)) = ag.try_wait()
        {
            result = Err(format!("tapio-agent exited ({st})"));
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // The agent first, so its last evidence can still reach the server.
    if let Some(ag) = agent.as_mut() {
        stop(ag);
    }
    stop(&mut server);
    result
}

fn wait_ready(base: &str, server: &mut Child) -> Result<(), String> {
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if let Ok(Some(st)) = server.try_wait() {
            return Err(format!("tapio-server exited before it was ready ({st})"));
        }
        if http
            .get(format!("{base}/ready"))
            .call()
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(server);
    Err(format!(
        "tapio-server did not become ready at {base} within 30 s"
    ))
}
