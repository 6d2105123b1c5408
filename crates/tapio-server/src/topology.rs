//! The server's topology: which components run, how they are wired together, and in
//! what order they start and stop. `main.rs` only parses the flags ([`Args`]) and calls
//! [`run`].
//!
//! Ingest (`crate::pipeline::ingest`) feeds the store or, scaled out, the bus; the
//! correlator (one thread, or one per owned partition) turns stored evidence into
//! incidents and fills the notification outbox; the dispatcher (`crate::notify`) sends
//! it; the API (`crate::api`) serves people, agents and probes behind the request guard.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::logging::{self, LogFormat};
use crate::metrics::Metrics;
use crate::pipeline::correlator::{Correlator, CorrelatorStatus};
use crate::runtime_config::ConfigSource;
use crate::{AppState, app, health};
use anyhow::{Context, bail};
use clap::Parser;
use tapio_core::CorrelationEngine;
use tapio_core::duration::parse_duration;
use tapio_store::Store;
use tapio_store::sqlite::{Durability, SqliteStore};
use tokio::sync::{Notify, watch};

/// Tapio server: evidence ingest, incidents, health and metrics on one port.
#[derive(Parser, Debug)]
#[command(name = "tapio-server", version)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "TAPIO_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Directory for the embedded store (SQLite, WAL).
    #[arg(long, env = "TAPIO_DATA_DIR", default_value = "/var/lib/tapio")]
    pub data_dir: PathBuf,
    /// Runtime config directory in the shape of a mounted ConfigMap (one file per key).
    #[arg(long, env = "TAPIO_CONFIG_DIR", default_value = "/etc/tapio/config")]
    pub config_dir: PathBuf,
    /// Store location: `sqlite://PATH-TO-DIR` (default: --data-dir), or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB` for the shared store replicas use
    /// (docs/scale-out.md).
    #[arg(long, env = "TAPIO_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Scale out: NATS with JetStream (`nats://HOST:4222`) as the evidence bus between
    /// replicas; needs a postgres:// --database-url (docs/scale-out.md).
    #[arg(long, env = "TAPIO_NATS_URL")]
    pub nats_url: Option<String>,
    /// Require TLS to NATS (implied by a tls:// URL, --nats-ca or --nats-cert).
    #[arg(long, env = "TAPIO_NATS_TLS")]
    pub nats_tls: bool,
    /// PEM CA bundle for the NATS server's certificate (default: the system's roots).
    #[arg(long, env = "TAPIO_NATS_CA")]
    pub nats_ca: Option<PathBuf>,
    /// Client certificate (PEM) for NATS servers that verify clients; with --nats-key.
    #[arg(long, env = "TAPIO_NATS_CERT", requires = "nats_key")]
    pub nats_cert: Option<PathBuf>,
    /// Client key (PEM) for --nats-cert.
    #[arg(long, env = "TAPIO_NATS_KEY", requires = "nats_cert")]
    pub nats_key: Option<PathBuf>,
    /// NATS credentials file (.creds: user JWT and NKey seed). User and password may
    /// instead be given in the URL (nats://user:pass@host:4222).
    #[arg(long, env = "TAPIO_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// NATS subject prefix (stream `<PREFIX>_EVIDENCE`), so installations can share a NATS.
    #[arg(long, env = "TAPIO_NATS_PREFIX", default_value = "tapio")]
    pub nats_prefix: String,
    /// Bound of the evidence stream on NATS (reserved from JetStream's storage); past it
    /// ingest answers 503 and agents keep spooling.
    #[arg(long, env = "TAPIO_BUS_MAX_BYTES", default_value = "1Gi")]
    pub bus_max_bytes: String,
    /// This replica's name in the cluster (default: POD_NAME, else the host name and port).
    #[arg(long, env = "TAPIO_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// Where other replicas and `tapio check --all` reach this one (default: http://LISTEN,
    /// with the host name for a wildcard address).
    #[arg(long, env = "TAPIO_ADVERTISE")]
    pub advertise: Option<String>,
    /// Correlation partitions (fixed by the cluster's first replica; a cluster's facts
    /// always go to one partition).
    #[arg(long, env = "TAPIO_PARTITIONS", default_value_t = 16, value_parser = clap::value_parser!(i32).range(1..=1024))]
    pub partitions: i32,
    /// Partition lease lifetime: a dead replica's partitions move after at most this.
    #[arg(long, env = "TAPIO_LEASE_TTL", default_value = "5s", value_parser = parse_duration)]
    pub lease_ttl: Duration,
    /// Log line format.
    #[arg(long, env = "TAPIO_LOG_FORMAT", value_enum, default_value = "json")]
    pub log_format: LogFormat,
    /// Largest request body accepted, in bytes, after decompression.
    #[arg(long, env = "TAPIO_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// How long raw evidence is kept (incidents are kept).
    #[arg(long, env = "TAPIO_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub retention: Duration,
    /// Trailing window of the MTTD/MTTA/MTTR/MTBF figures on /metrics.
    #[arg(long, env = "TAPIO_MTTX_WINDOW", default_value = "30d", value_parser = parse_duration)]
    pub mttx_window: Duration,
    /// How often the MTTx figures on /metrics are recomputed.
    #[arg(long, env = "TAPIO_MTTX_EVERY", default_value = "60s", value_parser = parse_duration)]
    pub mttx_every: Duration,
    /// How far in the future an event time may be before it is refused.
    #[arg(long, env = "TAPIO_MAX_FUTURE_SKEW", default_value = "5m", value_parser = parse_duration)]
    pub max_future_skew: Duration,
    /// How often the config directory is re-read.
    #[arg(long, env = "TAPIO_CONFIG_POLL", default_value = "1s", value_parser = parse_duration)]
    pub config_poll: Duration,
    /// `full`: fsync every commit (survives power loss). `normal`: survives a process
    /// crash but may lose the last commits on power loss; faster on slow disks.
    #[arg(long, env = "TAPIO_DURABILITY", default_value = "full", value_parser = ["full", "normal"])]
    pub durability: String,
    /// Correlator backlog (events) at which load shedding reaches full pressure.
    #[arg(long, env = "TAPIO_SHED_CAPACITY", default_value_t = 100_000)]
    pub shed_capacity: u64,
    /// Serve HTTPS with this certificate chain (PEM; re-read when the file changes).
    /// Needs --tls-key.
    #[arg(long, env = "TAPIO_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM). Needs --tls-cert.
    #[arg(long, env = "TAPIO_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Requests served at once (probes excepted); past shares of it the lowest classes are
    /// refused with 503 first (docs/security.md, "Load shedding").
    #[arg(long, env = "TAPIO_MAX_INFLIGHT", default_value_t = 256)]
    pub max_inflight: usize,
    /// Resident memory past which only people's actions and P1 evidence are accepted:
    /// `auto` (85 % of the cgroup memory limit; off without one), `off`, or a size (768Mi).
    #[arg(long, env = "TAPIO_MEMORY_LIMIT", default_value = "auto")]
    pub memory_limit: String,
    /// Notification receivers and routes (TOML, docs/notifications.md); an invalid file
    /// stops the server naming the receiver or route and field.
    #[arg(long, env = "TAPIO_NOTIFY")]
    pub notify: Option<PathBuf>,
    /// Extra causal rules (TOML, docs/rules.md); a rule named like a built-in replaces it.
    /// An invalid file stops the server with the rule and field named.
    #[arg(long, env = "TAPIO_RULES")]
    pub rules: Vec<PathBuf>,
    /// Namespaces whose P1/P2 incidents the public status page (`/status`) shows, comma
    /// separated; `shop=Online shop` names the service as customers know it. Declared
    /// incidents are always shown.
    #[arg(long, env = "TAPIO_STATUS_NAMESPACES", default_value = "")]
    pub status_namespaces: String,
    /// Prometheus HTTP API to ask for the request rate and error ratio of the Services in
    /// open incidents, so severity follows measured impact and traffic volume (optional;
    /// without it alert values and the agent's connect statistics decide).
    #[arg(long, env = "TAPIO_PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// How often to ask Prometheus.
    #[arg(long, env = "TAPIO_PROMETHEUS_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub prometheus_interval: std::time::Duration,
    /// PromQL for a Service's requests per second (`$namespace`, `$service` filled in).
    #[arg(long, env = "TAPIO_PROMETHEUS_RATE_QUERY", default_value = crate::pipeline::promsource::DEFAULT_RATE_QUERY)]
    pub prometheus_rate_query: String,
    /// PromQL for a Service's share of failing requests, 0–1.
    #[arg(long, env = "TAPIO_PROMETHEUS_ERROR_QUERY", default_value = crate::pipeline::promsource::DEFAULT_ERROR_QUERY)]
    pub prometheus_error_query: String,
    /// The window the queries average over (the `[5m]` in them).
    #[arg(long, env = "TAPIO_PROMETHEUS_WINDOW", default_value = "5m", value_parser = parse_duration)]
    pub prometheus_window: std::time::Duration,
    /// Kubernetes watches: `auto` uses a kubeconfig (--kubeconfig, KUBECONFIG,
    /// ~/.kube/config) or the in-cluster service account when there is one; `off` never.
    #[arg(long, env = "TAPIO_KUBE", default_value = "auto", value_parser = ["auto", "off"])]
    pub kube: String,
    /// Kubeconfig file (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long, env = "TAPIO_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig (default: its current context).
    #[arg(long, env = "TAPIO_KUBE_CONTEXT")]
    pub kube_context: Option<String>,
    /// Cluster name on Kubernetes evidence (default: the context name, or "in-cluster").
    #[arg(long, env = "TAPIO_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// Users and tokens: one file per user (the mounted `tapio-auth` Secret; docs/security.md).
    /// Without it the API needs no token (the one-machine quick start).
    #[arg(long, env = "TAPIO_AUTH_DIR")]
    pub auth_dir: Option<PathBuf>,
    /// Requests per second per authenticated user (agents excepted), burst twice that;
    /// 0 = no limit.
    #[arg(long, env = "TAPIO_RATE_LIMIT_TOKEN", default_value_t = 20.0)]
    pub rate_limit_token: f64,
    /// Requests per second per client address (agents included), burst twice that;
    /// 0 = no limit.
    #[arg(long, env = "TAPIO_RATE_LIMIT_CLIENT", default_value_t = 200.0)]
    pub rate_limit_client: f64,
    /// Requests per second per client address without a valid token (every route,
    /// ingest included), burst twice that; 0 = no limit.
    #[arg(long, env = "TAPIO_RATE_LIMIT_UNAUTHENTICATED", default_value_t = 5.0)]
    pub rate_limit_unauthenticated: f64,
    /// How long a person's action (ack, note, declare…) waits for its result before it
    /// is answered 202 Accepted with an operation to follow.
    #[arg(long, env = "TAPIO_ACTION_WAIT", default_value = "10s", value_parser = parse_duration)]
    pub action_wait: Duration,
    /// Audit records older than this are deleted.
    #[arg(long, env = "TAPIO_AUDIT_RETENTION", default_value = "30d", value_parser = parse_duration)]
    pub audit_retention: Duration,
    /// At most this many audit records are kept (the oldest are deleted first).
    #[arg(long, env = "TAPIO_AUDIT_MAX_RECORDS", default_value_t = 5_000_000)]
    pub audit_max_records: u64,
    /// Require a token for /metrics too (default: public, for Prometheus).
    #[arg(long, env = "TAPIO_METRICS_AUTH")]
    pub metrics_auth: bool,
    /// A connection must send a complete request head within this after it opens and
    /// after each response (slow or idle clients are closed; counted in
    /// tapio_input_refused_total{reason="header_read_timeout"}).
    #[arg(long, env = "TAPIO_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// A connection with no request in progress for this long is closed.
    #[arg(long, env = "TAPIO_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Open connections at most; 0 = automatic: the open-file limit (raised to its hard
    /// limit at start) less room for the store and files, at most 10000. Near the cap, idle
    /// connections are closed first; past it new ones are (reason="connection_limit").
    #[arg(long, env = "TAPIO_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,
    /// On SIGTERM, how long requests in progress may take before their connections are
    /// closed.
    #[arg(long, env = "TAPIO_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// A request body must arrive whole within this (408 past it, counted as
    /// reason="body_read_timeout").
    #[arg(long, env = "TAPIO_BODY_READ_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_read_timeout: Duration,
    /// Heading of the public status page.
    #[arg(long, env = "TAPIO_STATUS_TITLE", default_value = crate::api::status_page::DEFAULT_TITLE)]
    pub status_title: String,
}

enum StoreLocation {
    Sqlite(PathBuf),
    Postgres(String),
}

fn store_location(args: &Args) -> anyhow::Result<StoreLocation> {
    match args.database_url.as_deref() {
        None | Some("") => Ok(StoreLocation::Sqlite(args.data_dir.clone())),
        Some(url) if url.starts_with("sqlite://") => Ok(StoreLocation::Sqlite(PathBuf::from(
            url.trim_start_matches("sqlite://"),
        ))),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(StoreLocation::Postgres(url.to_owned()))
        }
        Some(url) => bail!(
            "--database-url {}: unknown scheme; use sqlite://DIR or postgres://USER@HOST/DB",
            tapio_store::pg::redact(url)
        ),
    }
}

/// Run the server with `args` until SIGTERM or Ctrl-C: open the store, start every
/// component, serve, then drain. Longer than most (about 240 lines) because it is the
/// start-up order itself: each step hands its handles to the next, and reading it top to
/// bottom is reading how the server starts; the steps with logic of their own are the
/// functions below.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    // Logging starts at INFO so config loading is itself logged, then takes the
    // configured level.
    let level_handle = logging::init(args.log_format, tapio_core::config::LogLevel::Info);
    let (config_source, config_rx) = ConfigSource::load(args.config_dir.clone(), metrics.clone());
    let initial = config_rx.borrow().config.log_level;
    if let Err(e) = level_handle.modify(|f| *f = logging::level_filter(initial)) {
        tracing::error!(error = %e, "could not set the configured log level");
    }

    let (store, pg, store_writes) = open_store(&args, &metrics).await?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut rules = tapio_core::correlate::rules::default_rules();
    for path in &args.rules {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the rules file {}", path.display()))?;
        let extra = tapio_core::correlate::rules::parse_rules(&text, &path.display().to_string())
            .map_err(|e| anyhow::anyhow!("{e} (see docs/rules.md)"))?;
        tracing::info!(file = %path.display(), rules = extra.len(), "loaded causal rules");
        rules = tapio_core::correlate::rules::merge(rules, extra);
    }
    let (commands_tx, commands_rx) =
        tokio::sync::mpsc::channel(crate::pipeline::correlator::COMMAND_QUEUE);
    let dispatch_wake = Arc::new(tokio::sync::Notify::new());
    let silences: crate::silences::Shared = Arc::new(std::sync::RwLock::new(
        crate::silences::load(store.as_ref(), chrono::Utc::now()).await,
    ));
    let (notify_cfg, templates) = load_notifications(&args)?;
    let engine_depth = config_rx.borrow().config.correlation_depth;
    let make_correlator: crate::pipeline::cluster::CorrelatorFactory = {
        let notify_cfg = notify_cfg.clone();
        let silences = silences.clone();
        let dispatch_wake = dispatch_wake.clone();
        let metrics = metrics.clone();
        let config_rx = config_rx.clone();
        let rules = rules.clone();
        Arc::new(move |store, commands, status| Correlator {
            commands,
            notifier: notify_cfg
                .clone()
                .map(|c| crate::notify::outbox::Notifier::new(c, silences.clone())),
            dispatch_wake: dispatch_wake.clone(),
            store,
            engine: Box::new(CorrelationEngine::new(
                tapio_core::correlate::EngineConfig::default(),
                rules.clone(),
                engine_depth,
            )),
            status,
            wake: Arc::new(Notify::new()),
            metrics: metrics.clone(),
            config: config_rx.clone(),
        })
    };
    let cluster = connect_cluster(&args, pg.as_ref()).await?;
    // One node: one correlator over the whole store. Scale-out: each owned partition gets
    // its own (cluster::run), and people's actions are routed to the partition's owner.
    let correlator_status = Arc::new(CorrelatorStatus::default());
    let wake = Arc::new(Notify::new());
    let single = match &cluster {
        None => {
            let mut c = make_correlator(store.clone(), commands_rx, correlator_status.clone());
            c.wake = wake.clone();
            c.restore()
                .await
                .context("restoring the correlator from the store")?;
            Some(c)
        }
        Some(cl) => {
            let cl = cl.clone();
            let mut rx = commands_rx;
            tokio::spawn(async move {
                while let Some(cmd) = rx.recv().await {
                    let cl = cl.clone();
                    tokio::spawn(async move { cl.route(cmd).await });
                }
            });
            None
        }
    };

    let limits = tapio_proto::Limits {
        max_future_skew: chrono::Duration::from_std(args.max_future_skew)
            .context("--max-future-skew is too large")?,
        ..tapio_proto::Limits::default()
    };
    let (auth, audit, audit_rx, rate, protect) = security(&args, &config_rx, &metrics)?;
    let protect = Arc::new(protect);
    let ingest = Arc::new(crate::pipeline::ingest::Ingest {
        store: store.clone(),
        metrics: metrics.clone(),
        outcomes: Arc::new(crate::pipeline::outcome::Outcomes {
            metrics: metrics.clone(),
            status: Default::default(),
            correlator: correlator_status.clone(),
        }),
        clocks: Default::default(),
        cluster: cluster.clone(),
        stored: wake,
        limits: limits.clone(),
        load: crate::security::protect::Load {
            protect: protect.clone(),
            correlator: correlator_status.clone(),
            capacity: args.shed_capacity,
            config: config_rx.clone(),
        },
    });
    let kube_status = Arc::new(crate::pipeline::kubewatch::KubeStatus::default());
    let store_stats = Arc::new(health::StatsCache::default());
    let state = Arc::new(AppState {
        store: store.clone(),
        metrics: metrics.clone(),
        config: config_rx.clone(),
        config_dir: args.config_dir.display().to_string(),
        limits,
        max_body_bytes: args.max_body_bytes,
        correlator: correlator_status,
        ingest: ingest.clone(),
        started: Instant::now(),
        shutting_down: Arc::new(AtomicBool::new(false)),
        heartbeats: Default::default(),
        cluster: cluster.clone(),
        commands: commands_tx.clone(),
        actions: crate::api::lifecycle::Actions::new(args.action_wait),
        silences: silences.clone(),
        kube: kube_status.clone(),
        auth: auth.clone(),
        protect: protect.clone(),
        store_stats: store_stats.clone(),
        store_writes: store_writes.clone(),
        audit: Arc::new(audit),
        rate: rate.clone(),
    });
    {
        let rate = rate.clone();
        let dir = args.config_dir.clone();
        let mut shutdown = shutdown_rx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.changed() => return,
                }
                rate.blocklist.reload(&dir);
            }
        });
    }
    tokio::spawn(crate::health::refresh_stats(
        store.clone(),
        store_writes.clone(),
        store_stats,
        shutdown_rx.clone(),
    ));
    tokio::spawn(crate::security::protect::sampler(
        protect,
        metrics.clone(),
        shutdown_rx.clone(),
    ));
    tokio::spawn(crate::security::auth::reload_loop(
        auth.clone(),
        metrics.clone(),
        shutdown_rx.clone(),
    ));
    tokio::spawn(crate::security::audit::run_writer(
        store.clone(),
        audit_rx,
        metrics.clone(),
        shutdown_rx.clone(),
    ));
    let kube = connect_kube(&args, &kube_status).await?;
    let prom_cfg = prometheus_source(&args)?;
    // Notifications and Kubernetes watches: here in one-node mode; on the leader only when
    // scaled out, so each notification has one sender and each change one watcher.
    let leader_duties = LeaderWork {
        ingest: ingest.clone(),
        kube_status,
        kube,
        prom_cfg,
        notify_cfg,
        templates,
        store: store.clone(),
        dispatch_wake,
        metrics: metrics.clone(),
        commands: commands_tx.clone(),
        silences,
    }
    .into_duties();

    let (correlator_done_tx, correlator_done) = tokio::sync::oneshot::channel::<()>();
    let (handoff_tx, handoff_rx) = watch::channel(false);
    match (single, &cluster) {
        (Some(correlator), _) => {
            spawn_correlator_thread(correlator, shutdown_rx.clone(), correlator_done_tx)?;
            leader_duties(shutdown_rx.clone());
        }
        (None, Some(cl)) => {
            // The hand-off starts at the signal, alongside the HTTP drain: ingest only
            // publishes to the bus, so the partitions can move while requests finish.
            let (cl, outcomes, shutdown) =
                (cl.clone(), ingest.outcomes.clone(), handoff_rx.clone());
            let make = make_correlator.clone();
            tokio::spawn(async move {
                crate::pipeline::cluster::run(cl, outcomes, make, leader_duties, shutdown).await;
                let _ = correlator_done_tx.send(());
            });
        }
        (None, None) => bail!("internal: no correlator and no cluster"),
    }
    tokio::spawn(config_source.run(args.config_poll, shutdown_rx.clone()));
    tokio::spawn(apply_log_level(config_rx.clone(), level_handle));
    tokio::spawn(crate::pipeline::mttx::run(
        store.clone(),
        metrics.clone(),
        args.mttx_window,
        args.mttx_every.max(Duration::from_secs(1)),
        shutdown_rx.clone(),
    ));
    tokio::spawn(retention(
        store.clone(),
        metrics.clone(),
        args.retention,
        shutdown_rx.clone(),
    ));

    let shutting_down = state.shutting_down.clone();
    let graceful = async move {
        shutdown_signal().await;
        shutting_down.store(true, Ordering::Relaxed);
        let _ = handoff_tx.send(true);
        tracing::info!("shutdown requested; draining requests");
    };
    listen_and_serve(&args, app(state), &metrics, &shutdown_rx, graceful).await?;
    let _ = shutdown_tx.send(true);
    if tokio::time::timeout(Duration::from_secs(10), correlator_done)
        .await
        .is_err()
    {
        tracing::warn!(
            "correlator did not stop within 10 s; its position is stored, it resumes on restart"
        );
    }
    tracing::info!("tapio-server stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

async fn apply_log_level(
    mut rx: watch::Receiver<crate::runtime_config::Effective>,
    handle: logging::LevelHandle,
) {
    let mut current = rx.borrow_and_update().config.log_level;
    while rx.changed().await.is_ok() {
        let level = rx.borrow().config.log_level;
        if level != current {
            match handle.modify(|f| *f = logging::level_filter(level)) {
                Ok(()) => tracing::info!(log_level = %level, "log level changed"),
                Err(e) => tracing::error!(error = %e, "could not change the log level"),
            }
            current = level;
        }
    }
}

async fn retention(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    keep: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        // A retention too long for the calendar means "keep everything".
        let Some(cutoff) = chrono::Duration::from_std(keep)
            .ok()
            .and_then(|k| chrono::Utc::now().checked_sub_signed(k))
        else {
            return;
        };
        match store.prune_evidence(cutoff).await {
            Ok(0) => {}
            Ok(n) => {
                metrics.evidence_pruned.inc_by(n);
                tracing::info!(
                    component = "store",
                    deleted = n,
                    "evidence past retention pruned"
                );
            }
            Err(e) => tracing::error!(component = "store", error = %e, "retention prune failed"),
        }
    }
}

/// The store the flags name (embedded SQLite or PostgreSQL), opened and migrated, with
/// every write's outcome watched for `/health` and `/ready`.
async fn open_store(
    args: &Args,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<(
    Arc<dyn Store>,
    Option<Arc<tapio_store::pg::PgStore>>,
    Arc<health::StoreWrites>,
)> {
    let durability = if args.durability == "normal" {
        Durability::Normal
    } else {
        Durability::Full
    };
    let mut pg: Option<Arc<tapio_store::pg::PgStore>> = None;
    let store: Arc<dyn Store> = match store_location(args)? {
        StoreLocation::Sqlite(dir) => {
            let s = SqliteStore::open(&dir, durability)
                .with_context(|| format!("opening the store in {}", dir.display()))?;
            tracing::info!(component = "store", data_dir = %dir.display(), "store open, migrations applied");
            Arc::new(s)
        }
        StoreLocation::Postgres(url) => {
            let s = Arc::new(
                tapio_store::pg::PgStore::connect(&url)
                    .await
                    .with_context(|| {
                        format!(
                            "opening the PostgreSQL store {} (--database-url)",
                            tapio_store::pg::redact(&url)
                        )
                    })?,
            );
            tracing::info!(component = "store", database = %s.location(), "store open (postgres), migrations applied");
            pg = Some(s.clone());
            s
        }
    };
    // Every write's outcome feeds /health and /ready: a full disk is not "healthy".
    let store_writes = Arc::new(health::StoreWrites::new(
        match store_location(args)? {
            StoreLocation::Sqlite(dir) => Some(dir),
            StoreLocation::Postgres(_) => None,
        },
        Some(metrics.clone()),
    ));
    let store: Arc<dyn Store> = Arc::new(health::WatchedStore::new(store, store_writes.clone()));
    Ok((store, pg, store_writes))
}

/// The notification config (`--notify`) and its template overrides, compiled and
/// test-rendered now: an error names the file and line.
#[allow(clippy::type_complexity)] // a pair read once at start; a struct would only rename it
fn load_notifications(
    args: &Args,
) -> anyhow::Result<(
    Option<Arc<crate::notify::config::NotifyConfig>>,
    Option<crate::notify::Templates>,
)> {
    let notify_cfg = match &args.notify {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("cannot read the notification config {}", path.display())
            })?;
            let cfg = crate::notify::config::parse(&text, &path.display().to_string())
                .map_err(|e| anyhow::anyhow!("{e} (see docs/notifications.md)"))?;
            tracing::info!(file = %path.display(), receivers = cfg.receivers.len(), routes = cfg.routes.len(),
                "notifications configured");
            Some(Arc::new(cfg))
        }
    };
    // Template overrides are compiled and test-rendered now: an error names file and line.
    let templates = match &notify_cfg {
        Some(cfg) if !cfg.templates.is_empty() => Some(
            crate::notify::Templates::load(&cfg.templates)
                .map_err(|e| anyhow::anyhow!("notification template {e}"))?,
        ),
        _ => None,
    };
    Ok((notify_cfg, templates))
}

/// Scale-out (`--nats-url`): join the cluster on NATS and the shared PostgreSQL.
async fn connect_cluster(
    args: &Args,
    pg: Option<&Arc<tapio_store::pg::PgStore>>,
) -> anyhow::Result<Option<Arc<crate::pipeline::cluster::Cluster>>> {
    Ok(match (&args.nats_url, pg) {
        (None, _) => None,
        (Some(_), None) => bail!(
            "--nats-url needs the shared store: add --database-url postgres://USER@HOST/DB (docs/scale-out.md)"
        ),
        (Some(url), Some(pg)) => {
            let port = args.listen.port();
            let host = std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".into());
            let replica_id = args
                .replica_id
                .clone()
                .or_else(|| std::env::var("POD_NAME").ok().filter(|p| !p.is_empty()))
                .unwrap_or_else(|| format!("{host}:{port}"));
            let address = args.advertise.clone().unwrap_or_else(|| {
                if args.listen.ip().is_unspecified() {
                    format!("http://{host}:{port}")
                } else {
                    format!("http://{}", args.listen)
                }
            });
            if !crate::pipeline::cluster::valid_prefix(&args.nats_prefix) {
                bail!(
                    "--nats-prefix {:?}: use letters, digits, - and _ in dot-separated tokens (e.g. tapio or tapio.prod)",
                    args.nats_prefix
                );
            }
            if args.lease_ttl < Duration::from_secs(1) {
                bail!(
                    "--lease-ttl {:?} is too short: use at least 1s (default 5s)",
                    args.lease_ttl
                );
            }
            let c = crate::pipeline::cluster::Cluster::connect(
                crate::pipeline::cluster::ClusterConfig {
                    nats_url: url.clone(),
                    replica_id,
                    address,
                    partitions: args.partitions,
                    lease_ttl: args.lease_ttl,
                    default_cluster: args
                        .cluster_name
                        .clone()
                        .unwrap_or_else(|| "default".into()),
                    nats_prefix: args.nats_prefix.clone(),
                    nats_security: crate::pipeline::cluster::NatsSecurity {
                        require_tls: args.nats_tls,
                        ca: args.nats_ca.clone(),
                        client_cert: args.nats_cert.clone().zip(args.nats_key.clone()),
                        creds: args.nats_creds.clone(),
                    },
                    bus_max_bytes: crate::security::protect::parse_size(&args.bus_max_bytes)
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "--bus-max-bytes {:?} is not a size: use bytes with an optional Ki/Mi/Gi suffix (e.g. 1Gi)",
                                args.bus_max_bytes
                            )
                        })?,
                },
                pg.clone(),
            )
            .await?;
            tracing::info!(component = "cluster", replica = %c.cfg.replica_id, partitions = c.partitions,
                nats = %crate::pipeline::cluster::redact_nats_url(url), "scale-out mode: evidence goes through the bus, partitions are leased");
            Some(c)
        }
    })
}

/// Authentication (`--auth-dir`), the audit stream, rate limits and admission control.
#[allow(clippy::type_complexity)] // the security components, each kept by a different owner
fn security(
    args: &Args,
    config_rx: &watch::Receiver<crate::runtime_config::Effective>,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<(
    Arc<crate::security::auth::Auth>,
    crate::security::audit::Audit,
    crate::security::audit::AuditQueue,
    Arc<crate::security::ratelimit::RateState>,
    crate::security::protect::Protect,
)> {
    if let Some(dir) = &args.auth_dir
        && !dir.is_dir()
    {
        bail!(
            "--auth-dir {}: not a directory (mount the tapio-auth Secret there, or create users with `tapio auth add-user NAME --role ROLE --auth-dir DIR`)",
            dir.display()
        );
    }
    let auth = Arc::new(crate::security::auth::Auth::new(
        args.auth_dir.clone(),
        !args.metrics_auth,
    ));
    if auth.enabled() {
        tracing::info!(
            component = "security-auditor",
            users = auth.user_count(),
            "authentication on: every API call needs a token"
        );
    } else {
        tracing::warn!(
            component = "security-auditor",
            "authentication OFF (no --auth-dir): anyone who can reach the port can read and change incidents"
        );
    }
    let (audit, mut audit_rx) =
        crate::security::audit::Audit::new(config_rx.clone(), metrics.clone());
    audit_rx.retention = crate::security::audit::Retention {
        max_age: args.audit_retention,
        max_records: args.audit_max_records,
    };
    let rate = Arc::new(crate::security::ratelimit::RateState {
        per_token: crate::security::ratelimit::Limiter::new(args.rate_limit_token.max(0.0)),
        per_client: crate::security::ratelimit::Limiter::new(args.rate_limit_client.max(0.0)),
        unauthenticated: crate::security::ratelimit::Limiter::new(
            args.rate_limit_unauthenticated.max(0.0),
        ),
        blocklist: Default::default(),
    });
    rate.blocklist.reload(&args.config_dir);
    let (memory_limit, memory_source) =
        crate::security::protect::memory_limit(&args.memory_limit).map_err(anyhow::Error::msg)?;
    if args.max_inflight == 0 {
        bail!("--max-inflight 0 would refuse every request: use at least 1 (default 256)");
    }
    let protect =
        crate::security::protect::Protect::new(args.max_inflight, memory_limit, memory_source)
            .with_body_read_timeout(args.body_read_timeout.max(Duration::from_secs(1)));
    Ok((auth, audit, audit_rx, rate, protect))
}

/// The Kubernetes API (`--kube`), when there is one to watch.
async fn connect_kube(
    args: &Args,
    kube_status: &crate::pipeline::kubewatch::KubeStatus,
) -> anyhow::Result<Option<(kube::Client, String)>> {
    let kube_args = crate::pipeline::kubewatch::KubeArgs {
        mode: args.kube.clone(),
        kubeconfig: args.kubeconfig.clone(),
        context: args.kube_context.clone(),
        cluster_name: args.cluster_name.clone(),
    };
    Ok(
        match crate::pipeline::kubewatch::connect(&kube_args).await {
            Ok(Some((client, source, cluster_name))) => {
                tracing::info!(component = "kubernetes", source = %source, cluster = %cluster_name, "watching the cluster");
                if let Ok(mut s) = kube_status.source.lock() {
                    *s = source;
                }
                Some((client, cluster_name))
            }
            Ok(None) => {
                let why = if args.kube == "off" {
                    "disabled (--kube off)"
                } else {
                    "no kubeconfig and not in a cluster"
                };
                tracing::info!(component = "kubernetes", "not configured: {why}");
                if let Ok(mut s) = kube_status.source.lock() {
                    *s = why.to_owned();
                }
                None
            }
            Err(e) => bail!("{e}"),
        },
    )
}

/// Prometheus as a data source (`--prometheus-url`).
fn prometheus_source(
    args: &Args,
) -> anyhow::Result<Option<crate::pipeline::promsource::PromConfig>> {
    Ok(
        match args
            .prometheus_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        {
            None => None,
            Some(u) => Some(crate::pipeline::promsource::PromConfig {
                url: crate::pipeline::promsource::PromConfig::parse_url(u)
                    .map_err(|e| anyhow::anyhow!(e))?,
                every: args
                    .prometheus_interval
                    .max(std::time::Duration::from_secs(1)),
                rate_query: args.prometheus_rate_query.clone(),
                error_query: args.prometheus_error_query.clone(),
                window_seconds: args.prometheus_window.as_secs_f64().max(1.0),
                max_services: 50,
                timeout: std::time::Duration::from_secs(5),
            }),
        },
    )
}

/// Listen (`--listen`, TLS with `--tls-cert/--tls-key`) and serve `router` until
/// `graceful` completes, then drain within `--shutdown-timeout`.
async fn listen_and_serve(
    args: &Args,
    router: axum::Router,
    metrics: &Arc<Metrics>,
    shutdown_rx: &watch::Receiver<bool>,
    graceful: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let certs =
                crate::security::tls::CertStore::open(cert, key).map_err(anyhow::Error::msg)?;
            let cfg = certs.server_config().map_err(anyhow::Error::msg)?;
            tokio::spawn(crate::security::tls::reload_loop(
                certs,
                metrics.clone(),
                shutdown_rx.clone(),
            ));
            Some(cfg)
        }
        _ => None,
    };
    let nofile = crate::serve::raise_nofile();
    let (max_connections, _, lowered) = crate::serve::connection_cap(args.max_connections, nofile);
    if lowered {
        tracing::warn!(
            requested = args.max_connections,
            max_connections,
            open_file_limit = nofile,
            "--max-connections lowered to stay below the open-file limit (raise ulimit -n)"
        );
    }
    let serve_cfg = crate::serve::ServeConfig {
        header_read_timeout: args.header_read_timeout.max(Duration::from_millis(100)),
        idle_timeout: args.idle_timeout.max(Duration::from_millis(100)),
        max_connections,
        shutdown_timeout: args.shutdown_timeout,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (--listen / TAPIO_LISTEN)", args.listen))?;
    tracing::info!(
        listen = %args.listen,
        tls = tls.is_some(),
        max_connections,
        open_file_limit = nofile,
        version = env!("CARGO_PKG_VERSION"),
        "tapio-server ready"
    );
    match tls {
        Some(tls_config) => {
            let tls_listener =
                crate::security::tls::TlsListener::spawn(listener, tls_config, metrics.clone());
            crate::serve::serve(tls_listener, router, serve_cfg, metrics.clone(), graceful).await;
        }
        None => {
            crate::serve::serve(listener, router, serve_cfg, metrics.clone(), graceful).await;
        }
    }
    Ok(())
}

/// The one-node correlator. CPU-bound under load, it owns a thread (and a single-threaded
/// runtime for its store calls), so it never holds up the HTTP workers; `done` fires when
/// it has stopped.
fn spawn_correlator_thread(
    correlator: Correlator,
    shutdown: watch::Receiver<bool>,
    done: tokio::sync::oneshot::Sender<()>,
) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("correlator".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(correlator.run(shutdown)),
                Err(e) => tracing::error!(
                    component = "correlator",
                    error = %e,
                    "cannot start the correlator's runtime; no incidents will be made"
                ),
            }
            let _ = done.send(());
        })
        .context("starting the correlator thread")?;
    Ok(())
}

/// What only one replica does (all of it in one-node mode; the leader's when scaled out,
/// so each notification has one sender and each change one watcher): Prometheus queries,
/// Kubernetes watches, and sending notifications.
struct LeaderWork {
    ingest: Arc<crate::pipeline::ingest::Ingest>,
    kube_status: Arc<crate::pipeline::kubewatch::KubeStatus>,
    kube: Option<(kube::Client, String)>,
    prom_cfg: Option<crate::pipeline::promsource::PromConfig>,
    notify_cfg: Option<Arc<crate::notify::config::NotifyConfig>>,
    templates: Option<crate::notify::Templates>,
    store: Arc<dyn Store>,
    dispatch_wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    commands: tokio::sync::mpsc::Sender<crate::pipeline::correlator::Command>,
    silences: crate::silences::Shared,
}

impl LeaderWork {
    /// Started on becoming leader (at once in one-node mode), stopped by `stop`.
    fn into_duties(self) -> crate::pipeline::cluster::LeaderDuties {
        Arc::new(move |stop: watch::Receiver<bool>| {
            if let Some(cfg) = self.prom_cfg.clone() {
                tokio::spawn(crate::pipeline::promsource::run(
                    self.ingest.clone(),
                    cfg,
                    stop.clone(),
                ));
            }
            if let Some((client, cluster_name)) = &self.kube {
                crate::pipeline::kubewatch::start(
                    self.ingest.clone(),
                    self.kube_status.clone(),
                    client.clone(),
                    cluster_name.clone(),
                    stop.clone(),
                );
            }
            if let Some(cfg) = self.notify_cfg.clone() {
                let dispatcher = crate::notify::dispatch::Dispatcher {
                    store: self.store.clone(),
                    cfg,
                    templates: Arc::new(
                        self.templates
                            .clone()
                            .unwrap_or_else(crate::notify::Templates::defaults),
                    ),
                    wake: self.dispatch_wake.clone(),
                    metrics: self.metrics.clone(),
                    commands: self.commands.clone(),
                    silences: self.silences.clone(),
                };
                tokio::spawn(dispatcher.run(stop));
            }
        })
    }
}

/// The API's state over `store` with the defaults of the flags and no background task:
/// no correlator (people's actions answer that the server is shutting down), no audit
/// writer (records are counted, not stored), authentication from `auth_dir` (off
/// without one). For embedding the router — the HTTP contract tests drive it with
/// `tower::ServiceExt::oneshot`, without a socket.
pub fn embedded_state(
    store: Arc<dyn Store>,
    config_dir: PathBuf,
    auth_dir: Option<PathBuf>,
) -> Arc<AppState> {
    let metrics = Arc::new(Metrics::new());
    let (_source, config_rx) = ConfigSource::load(config_dir.clone(), metrics.clone());
    let correlator = Arc::new(CorrelatorStatus::default());
    let protect = Arc::new(crate::security::protect::Protect::new(256, 0, "off"));
    let (commands, _) = tokio::sync::mpsc::channel(1);
    let (audit, _queue) = crate::security::audit::Audit::new(config_rx.clone(), metrics.clone());
    let limits = tapio_proto::Limits::default();
    let ingest = Arc::new(crate::pipeline::ingest::Ingest {
        store: store.clone(),
        metrics: metrics.clone(),
        outcomes: Arc::new(crate::pipeline::outcome::Outcomes {
            metrics: metrics.clone(),
            status: Default::default(),
            correlator: correlator.clone(),
        }),
        clocks: Default::default(),
        cluster: None,
        stored: Arc::new(Notify::new()),
        limits: limits.clone(),
        load: crate::security::protect::Load {
            protect: protect.clone(),
            correlator: correlator.clone(),
            capacity: 100_000,
            config: config_rx.clone(),
        },
    });
    let auth = Arc::new(crate::security::auth::Auth::new(auth_dir, true));
    Arc::new(AppState {
        store,
        metrics,
        config: config_rx,
        config_dir: config_dir.display().to_string(),
        limits,
        max_body_bytes: 4 * 1024 * 1024,
        correlator,
        ingest,
        started: Instant::now(),
        shutting_down: Arc::new(AtomicBool::new(false)),
        heartbeats: Default::default(),
        cluster: None,
        commands,
        actions: crate::api::lifecycle::Actions::new(Duration::from_secs(10)),
        silences: Default::default(),
        kube: Default::default(),
        auth,
        protect,
        store_stats: Default::default(),
        store_writes: Arc::new(health::StoreWrites::new(None, None)),
        audit: Arc::new(audit),
        rate: Arc::new(crate::security::ratelimit::RateState {
            per_token: crate::security::ratelimit::Limiter::new(0.0),
            per_client: crate::security::ratelimit::Limiter::new(0.0),
            unauthenticated: crate::security::ratelimit::Limiter::new(0.0),
            blocklist: Default::default(),
        }),
    })
}
