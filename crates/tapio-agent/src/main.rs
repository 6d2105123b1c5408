//! `tapio-agent`: the node agent. See `docs/agent.md`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use serde::Deserialize;
use tapio_agent::bpf::{self, LoadOptions};
use tapio_agent::detect::{Detector, Thresholds};
use tapio_agent::enrich::{Enricher, PodIndex, PodSource, SharedPods};
use tapio_agent::http::{self, Response};
use tapio_agent::metrics::{Metrics, ProgramLabel};
use tapio_agent::node::{NodeConfig, NodeObserver, SourceStatus as NodeSource};
use tapio_agent::run::{self, Out, Sink, Status};
use tapio_agent::ship::{ShipConfig, Shipper, Wake};
use tapio_agent::spool::{Spool, SpoolConfig};

#[derive(Parser, Debug)]
#[command(
    name = "tapio-agent",
    version,
    about = "Tapio node agent: kernel evidence from eBPF, enriched and shipped without loss"
)]
struct Args {
    /// tapio-server base URL; repeat or comma-separate for several (tried in turn).
    #[arg(
        long,
        env = "TAPIO_SERVER",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8080"
    )]
    server: Vec<String>,
    /// Where evidence goes: server (through the spool), stdout, or file:/path.jsonl.
    #[arg(long, env = "TAPIO_SINK", default_value = "server")]
    sink: Sink,
    /// Durable spool directory (survives restarts; keep it on the node, e.g. a hostPath).
    #[arg(
        long,
        env = "TAPIO_SPOOL_DIR",
        default_value = "/var/lib/tapio-agent/spool"
    )]
    spool_dir: PathBuf,
    /// Spool size limit in bytes; when full, the lowest-severity evidence goes first.
    #[arg(long, env = "TAPIO_SPOOL_MAX_BYTES", default_value_t = 256 << 20)]
    spool_max_bytes: u64,
    /// Node name (in Kubernetes: the downward API's spec.nodeName).
    #[arg(long, env = "NODE_NAME")]
    node: Option<String>,
    /// Agent identity; the server tracks sequence numbers per agent id.
    #[arg(long, env = "TAPIO_AGENT_ID")]
    agent_id: Option<String>,
    /// Listen address of /metrics and /health.
    #[arg(long, env = "TAPIO_AGENT_LISTEN", default_value = "0.0.0.0:9091")]
    listen: SocketAddr,
    /// Observers to run: network, process, storage (eBPF) and node (PSI, filesystems, kmsg,
    /// kernel limits, container CPU throttling).
    #[arg(
        long,
        env = "TAPIO_OBSERVERS",
        value_delimiter = ',',
        default_value = "network,process,storage,node"
    )]
    observers: Vec<String>,
    /// JSON file with `thresholds` and `node` sections (docs/agent.md); unknown keys are errors.
    #[arg(long, env = "TAPIO_AGENT_CONFIG")]
    config: Option<PathBuf>,
    /// Pod index: a kubelet /pods URL (http://…) or a file holding a Kubernetes PodList.
    #[arg(long, env = "TAPIO_PODS")]
    pods: Option<String>,
    /// Bearer token file for the pod index URL (a service account token).
    #[arg(long, env = "TAPIO_PODS_TOKEN_FILE")]
    pods_token_file: Option<PathBuf>,
    /// Root of the host's /proc (in a container with the host's /proc mounted elsewhere).
    #[arg(long, env = "TAPIO_PROC_ROOT", default_value = "/proc")]
    proc_root: PathBuf,
    /// Events per batch to the server.
    #[arg(long, default_value_t = 500)]
    batch_max_events: usize,
    /// API token for the server (agent token kind).
    #[arg(long, env = "TAPIO_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the API token (the agent's key of the `tapio-auth` Secret, as
    /// `tapio auth add-user NAME --role agent` writes it, or just the token). Overrides
    /// --token.
    #[arg(long, env = "TAPIO_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// CA certificate (PEM) that signed the server's certificate, for `https://` servers;
    /// only it is trusted. Without it, the bundled Mozilla roots are.
    #[arg(long, env = "TAPIO_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Heartbeat interval in seconds.
    #[arg(long, default_value_t = 10)]
    heartbeat_seconds: u64,
    /// Log format: json or logfmt.
    #[arg(long, env = "TAPIO_LOG_FORMAT", default_value = "logfmt")]
    log_format: String,
    /// Log level: debug, info, warn, error.
    #[arg(long, env = "TAPIO_LOG_LEVEL", default_value = "info")]
    log_level: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct FileConfig {
    thresholds: Thresholds,
    node: NodeConfig,
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<FileConfig> {
    let Some(p) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(p)
        .with_context(|| format!("cannot read the agent config {}", p.display()))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    let cfg: FileConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        anyhow::anyhow!(
            "agent config {}: at {}: {} (see docs/agent.md for every key)",
            p.display(),
            e.path(),
            e.inner()
        )
    })?;
    cfg.thresholds
        .validate()
        .map_err(|e| anyhow::anyhow!("agent config {}: thresholds.{e}", p.display()))?;
    cfg.node
        .validate()
        .map_err(|e| anyhow::anyhow!("agent config {}: node: {}", p.display(), e.0))?;
    Ok(cfg)
}

fn init_logging(format: &str, level: &str) -> anyhow::Result<()> {
    let level: tracing::Level = match level {
        "debug" => tracing::Level::DEBUG,
        "info" => tracing::Level::INFO,
        "warn" => tracing::Level::WARN,
        "error" => tracing::Level::ERROR,
        other => bail!("unknown --log-level {other:?}: use debug, info, warn or error"),
    };
    let b = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr);
    match format {
        "json" => b.json().init(),
        "logfmt" => b.with_ansi(false).init(),
        other => bail!("unknown --log-format {other:?}: use json or logfmt"),
    }
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("tapio-agent: {e:#}");
        std::process::exit(2);
    }
}

fn real_main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    init_logging(&args.log_format, &args.log_level)?;
    for o in &args.observers {
        if !["network", "process", "storage", "node"].contains(&o.as_str()) {
            bail!("unknown observer {o:?} in --observers: use network, process, storage, node");
        }
    }
    if args.batch_max_events == 0 || args.batch_max_events > 10_000 {
        bail!(
            "--batch-max-events {} is out of range: use 1..=10000 (the server's batch limit)",
            args.batch_max_events
        );
    }
    if let Some(path) = &args.token_file {
        args.token = Some(read_token_file(path)?);
    }
    let cfg = load_config(args.config.as_ref())?;
    let tls = tapio_agent::client::ClientTls::from_args(&args.server, args.ca_file.as_deref())
        .map_err(anyhow::Error::msg)?;
    // Bind first: a port conflict must stop the agent before it attaches anything.
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {} (set --listen)", args.listen))?;
    listener.set_nonblocking(true)?;
    let node = args.node.clone().unwrap_or_else(hostname);
    let agent_id = args
        .agent_id
        .clone()
        .unwrap_or_else(|| format!("tapio-agent-{node}"));
    let metrics = Arc::new(Metrics::new());
    let stop = Arc::new(AtomicBool::new(false));
    let started_at = chrono::Utc::now();

    // Spool or local sink first: refuse to start when evidence would have nowhere to go.
    let (tx, rx) = std::sync::mpsc::sync_channel(8_192);
    let out = Out {
        tx,
        metrics: metrics.clone(),
    };
    let wake = Arc::new(Wake::default());
    let mut workers = Workers {
        metrics: metrics.clone(),
        stop: stop.clone(),
        threads: Vec::new(),
    };
    let (spool_handle, ship_state) =
        start_sink(&args, &tls, &agent_id, &node, rx, &wake, &mut workers)?;

    // Enrichment: pod index (optional) and the cgroup resolver.
    let pods = SharedPods::new(PodIndex::default());
    let sources = start_pod_index(&args, &tls, &pods, &mut workers)?;
    let enricher = Enricher::new(node.clone(), pods.clone()).with_proc_root(&args.proc_root);

    // eBPF observers.
    let enabled: Vec<String> = args
        .observers
        .iter()
        .filter(|o| *o != "node")
        .cloned()
        .collect();
    let (observers, kernel) = bpf::load_all(&LoadOptions {
        enabled,
        wakeup_bytes: 256 * 1024,
        slow_io_ns: cfg.thresholds.slow_io_ms.saturating_mul(1_000_000),
        ring_bytes: 1 << 20,
    });
    report_programs(&metrics, &kernel);
    let attached = |obs: &str| {
        kernel
            .programs
            .iter()
            .any(|p| p.observer == obs && p.state == tapio_proto::ProgramState::Attached)
    };
    let (bpf_oom, bpf_io) = (attached("process"), attached("storage"));
    if !observers.is_empty() {
        let det = Detector::new(
            cfg.thresholds.clone(),
            node.clone(),
            run::boot_clock(),
            metrics.clone(),
        );
        let (k_out, k_stop) = (out.clone(), stop.clone());
        workers.threads.push(
            std::thread::Builder::new()
                .name("kernel".into())
                .spawn(move || run::kernel_loop(observers, det, enricher, k_out, k_stop))?,
        );
    } else {
        tracing::warn!(
            "no BPF observer attached: only node pressure, filesystems and kmsg are watched"
        );
    }

    let status = Arc::new(Status {
        agent_id: agent_id.clone(),
        node: node.clone(),
        started_at,
        kernel,
        sources: Mutex::new(sources),
        ship: ship_state,
        spool: spool_handle,
        metrics: metrics.clone(),
    });

    // Node observers (PSI, filesystems, kmsg): also the fallback for OOM kills and I/O
    // errors when the BPF observers for them are not attached.
    if args.observers.iter().any(|o| o == "node") {
        let node_observers = NodeStart {
            config: &cfg.node,
            bpf_oom,
            bpf_io,
            pods: &pods,
        };
        start_node_observers(&args, &node, node_observers, &status, &out, &mut workers)?;
    }
    drop(out);

    if args.sink == Sink::Server && args.heartbeat_seconds > 0 {
        let (h_status, h_stop) = (status.clone(), stop.clone());
        let servers = args.server.clone();
        let token = args.token.clone();
        let h_agent = tls.agent(Duration::from_secs(5));
        let every = Duration::from_secs(args.heartbeat_seconds);
        workers.threads.push(
            std::thread::Builder::new()
                .name("heartbeat".into())
                .spawn(move || heartbeat_loop(h_status, servers, token, h_agent, every, h_stop))?,
        );
    }

    tracing::info!(agent_id = %agent_id, node = %node, listen = %args.listen, sink = ?args.sink,
        "tapio-agent running");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(listener, status))?;

    tracing::info!("shutting down: finishing spool writes");
    stop.store(true, Ordering::Relaxed);
    wake.notify();
    for t in workers.threads {
        let _ = t.join();
    }
    Ok(())
}

/// The agent's token from `--token-file` (the agent's key of the `tapio-auth` Secret, or a
/// file holding only the token).
fn read_token_file(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read --token-file {} (mount the agent's key of the tapio-auth Secret there)",
            path.display()
        )
    })?;
    let token = tapio_proto::auth::agent_token(&text).ok_or_else(|| {
        anyhow::anyhow!(
            "--token-file {} holds no token: give the file `tapio auth add-user NAME --role agent` wrote (a `token:` line), or just the token",
            path.display()
        )
    })?;
    Ok(token)
}

/// The spool and the shipper's state, for `/health` and heartbeats (none with a local
/// sink).
type SinkHandles = (
    Option<Arc<Mutex<Spool>>>,
    Option<Arc<Mutex<tapio_agent::ship::ShipState>>>,
);

/// What the agent's worker threads share: the metrics, the stop flag, and the threads
/// themselves (joined at shutdown).
struct Workers {
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Where evidence goes: with `--sink server` the spool (opened and reported here), its
/// writer and the shipper, each on a thread; otherwise a thread writing lines to the sink.
/// Fails when evidence would have nowhere to go.
fn start_sink(
    args: &Args,
    tls: &tapio_agent::client::ClientTls,
    agent_id: &str,
    node: &str,
    rx: std::sync::mpsc::Receiver<tapio_proto::Event>,
    wake: &Arc<Wake>,
    w: &mut Workers,
) -> anyhow::Result<SinkHandles> {
    match &args.sink {
        Sink::Server => {
            let (spool, report) = Spool::open(SpoolConfig {
                dir: args.spool_dir.clone(),
                max_bytes: args.spool_max_bytes,
                segment_bytes: (args.spool_max_bytes / 16).clamp(64 << 10, 16 << 20),
            })
            .with_context(|| {
                format!(
                    "cannot open the spool at {} (set --spool-dir to a writable directory)",
                    args.spool_dir.display()
                )
            })?;
            if report.corrupt_records > 0 {
                tracing::warn!(corrupt = report.corrupt_records, dir = %args.spool_dir.display(),
                    "skipped corrupt spool records");
                w.metrics
                    .spool_corrupt_records
                    .inc_by(report.corrupt_records);
            }
            tracing::info!(dir = %args.spool_dir.display(), pending = spool.stats().pending_events,
                "spool open");
            let spool = Arc::new(Mutex::new(spool));
            let shipper = Shipper::new(
                ShipConfig {
                    endpoints: args.server.clone(),
                    agent_id: agent_id.to_owned(),
                    node: node.to_owned(),
                    batch_max_events: args.batch_max_events,
                    request_timeout: Duration::from_secs(10),
                    backoff_min: Duration::from_millis(200),
                    backoff_max: Duration::from_secs(30),
                    token: args.token.clone(),
                    tls: tls.clone(),
                },
                spool.clone(),
                wake.clone(),
                w.metrics.clone(),
            );
            let ship_state = shipper.state.clone();
            let (w_spool, w_wake, w_metrics) = (spool.clone(), wake.clone(), w.metrics.clone());
            w.threads.push(
                std::thread::Builder::new()
                    .name("spool-writer".into())
                    .spawn(move || run::spool_writer(rx, w_spool, w_wake, w_metrics))?,
            );
            let s_stop = w.stop.clone();
            w.threads.push(
                std::thread::Builder::new()
                    .name("shipper".into())
                    .spawn(move || shipper.run(s_stop))?,
            );
            Ok((Some(spool), Some(ship_state)))
        }
        sink => {
            let (sink, m) = (sink.clone(), w.metrics.clone());
            w.threads.push(
                std::thread::Builder::new()
                    .name("sink".into())
                    .spawn(move || {
                        if let Err(e) = run::line_writer(rx, sink, m) {
                            tracing::error!(error = %e, "writing evidence to the sink failed");
                        }
                    })?,
            );
            Ok((None, None))
        }
    }
}

/// The pod index's source (`--pods`), first read now and then refreshed on a thread; its
/// state for the agent's source list (empty without `--pods`).
fn start_pod_index(
    args: &Args,
    tls: &tapio_agent::client::ClientTls,
    pods: &SharedPods,
    w: &mut Workers,
) -> anyhow::Result<Vec<tapio_proto::SourceStatus>> {
    let mut sources = Vec::new();
    if let Some(loc) = &args.pods {
        let mut src = PodSource::new(loc, Duration::from_secs(10), pods.clone());
        if loc.starts_with("https://") {
            src = src.with_client(tls.agent(Duration::from_secs(10)));
        }
        if let Some(t) = &args.token {
            // The server's pod index takes the agent's own token.
            src = src.with_bearer_token(t.clone());
        }
        if let Some(t) = &args.pods_token_file {
            src = src.with_bearer_token_file(t);
        }
        let first = src.refresh();
        sources.push(tapio_proto::SourceStatus {
            name: "pod_index".into(),
            available: first.is_ok(),
            detail: first.err().unwrap_or_default(),
        });
        let p_stop = w.stop.clone();
        w.threads.push(std::thread::Builder::new().name("pods".into()).spawn(move || {
            while !p_stop.load(Ordering::Relaxed) {
                if let Some(Err(e)) = src.poll() {
                    tracing::warn!(error = %e, "pod index refresh failed; keeping the last good one");
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })?);
    }
    Ok(sources)
}

/// Each BPF program's state into `/metrics` and the log.
fn report_programs(metrics: &Metrics, kernel: &tapio_proto::KernelCapabilities) {
    for p in &kernel.programs {
        metrics
            .program_attached
            .get_or_create(&ProgramLabel {
                program: p.program.clone(),
            })
            .set(i64::from(p.state == tapio_proto::ProgramState::Attached));
        if p.state == tapio_proto::ProgramState::Attached {
            tracing::info!(program = %p.program, tracepoint = %p.tracepoint, "attached");
        } else if p.state != tapio_proto::ProgramState::Disabled {
            tracing::warn!(program = %p.program, tracepoint = %p.tracepoint, state = ?p.state,
                detail = %p.detail, "BPF program not attached; the agent runs without it");
        }
    }
}

/// What the node observers start from besides the agent's shared handles.
struct NodeStart<'a> {
    config: &'a NodeConfig,
    /// BPF observes OOM kills / block I/O errors, so the kernel log need not report them.
    bpf_oom: bool,
    bpf_io: bool,
    pods: &'a SharedPods,
}

/// The node observers (PSI, filesystems, kmsg, limits, throttling), polled every second on
/// a thread; also the fallback for OOM kills and I/O errors when the BPF observers for
/// them are not attached.
fn start_node_observers(
    args: &Args,
    node: &str,
    start: NodeStart<'_>,
    status: &Arc<Status>,
    out: &Out,
    w: &mut Workers,
) -> anyhow::Result<()> {
    let mut node_cfg = start.config.clone();
    if node_cfg.limits_proc_root.is_none() {
        node_cfg.limits_proc_root = Some(args.proc_root.clone());
    }
    let mut obs = NodeObserver::new(node.to_owned(), node_cfg)
        .map_err(|e| anyhow::anyhow!("node observer config: {}", e.0))?;
    obs.set_emit_oom(!start.bpf_oom);
    obs.set_emit_io_errors(!start.bpf_io);
    obs.set_pods(start.pods.clone());
    obs.set_metrics(w.metrics.clone());
    publish_node_sources(status, &obs.status());
    let (n_out, n_stop, n_status) = (out.clone(), w.stop.clone(), status.clone());
    w.threads.push(
        std::thread::Builder::new()
            .name("node".into())
            .spawn(move || {
                while !n_stop.load(Ordering::Relaxed) {
                    for ev in obs.poll(chrono::Utc::now()) {
                        n_out.send(ev);
                    }
                    publish_node_sources(&n_status, &obs.status());
                    std::thread::sleep(Duration::from_secs(1));
                }
                for ev in obs.finish() {
                    n_out.send(ev);
                }
            })?,
    );
    Ok(())
}

/// Replace the node observers' entries in the agent's source list.
fn publish_node_sources(status: &Status, st: &tapio_agent::node::NodeStatus) {
    let Ok(mut sources) = status.sources.lock() else {
        return;
    };
    sources.retain(|s| {
        !matches!(
            s.name.as_str(),
            "psi" | "filesystems" | "kmsg" | "limits" | "cpu_throttle"
        )
    });
    for (name, s) in [
        ("psi", &st.psi),
        ("filesystems", &st.filesystems),
        ("kmsg", &st.kmsg),
        ("limits", &st.limits),
        ("cpu_throttle", &st.cpu_throttle),
    ] {
        let (available, detail) = match s {
            NodeSource::Available => (true, String::new()),
            NodeSource::Degraded { reason } => (true, reason.clone()),
            NodeSource::Unavailable { reason } => (false, reason.clone()),
            NodeSource::Disabled => continue,
        };
        sources.push(tapio_proto::SourceStatus {
            name: name.into(),
            available,
            detail,
        });
    }
}

fn heartbeat_loop(
    status: Arc<Status>,
    servers: Vec<String>,
    token: Option<String>,
    agent: ureq::Agent,
    every: Duration,
    stop: Arc<AtomicBool>,
) {
    let mut i = 0usize;
    let mut next = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if std::time::Instant::now() >= next {
            next = std::time::Instant::now() + every;
            let base = servers[i % servers.len()].trim_end_matches('/').to_owned();
            let mut req = agent.post(format!("{base}/api/v1/agents/heartbeat"));
            if let Some(t) = &token {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            match req.send_json(status.heartbeat()) {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => {
                    tracing::debug!(status = r.status().as_u16(), "heartbeat refused");
                    i += 1;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "heartbeat failed");
                    i += 1;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Serves `/metrics` and `/health` until SIGINT or SIGTERM.
async fn serve(listener: std::net::TcpListener, status: Arc<Status>) -> anyhow::Result<()> {
    let route = move |path: &str| match path {
        "/metrics" => Some(Response::new(
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            status.metrics.encode(),
        )),
        "/health" => {
            let h = status.health();
            let code = if h["status"] == "unhealthy" { 503 } else { 200 };
            Some(Response::json(code, &h))
        }
        _ => None,
    };
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
    };
    http::serve(listener, http::Limits::default(), route, shutdown).await?;
    Ok(())
}
