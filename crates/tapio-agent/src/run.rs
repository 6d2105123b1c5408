//! The agent's threads and how evidence flows between them:
//!
//! ```text
//! kernel thread (ring buffers, stats maps) ─┐
//! node thread (PSI, filesystems, kmsg) ─────┼─> bounded channel ─> spool writer ─> spool ─> shipper ─> server
//! pod-index thread (kubelet /pods or file) ─┘ (enrichment)           (or stdout / file sink)
//! heartbeat thread ─> server;  HTTP thread: /metrics, /health
//! ```
//!
//! Every queue is bounded and every drop is counted in `tapio_agent_dropped_events_total`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tapio_proto::{AgentHeartbeat, Event, EventSeverity, KernelCapabilities, SourceStatus};

use crate::abi::{self, Destination, Record};
use crate::bpf::LoadedObserver;
use crate::detect::{Clock, Detector, Resolve, Resolved};
use crate::enrich::Enricher;
use crate::metrics::{Metrics, ObserverReason};
use crate::ship::{ShipState, Wake};
use crate::spool::Spool;

/// Where evidence goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// Through the durable spool to the server's evidence API.
    Server,
    /// One JSON event per line on standard output.
    Stdout,
    /// One JSON event per line appended to a file.
    File(PathBuf),
}

impl std::str::FromStr for Sink {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "server" => Ok(Self::Server),
            "stdout" => Ok(Self::Stdout),
            _ => match s.strip_prefix("file:") {
                Some(p) if !p.is_empty() => Ok(Self::File(PathBuf::from(p))),
                _ => Err(format!(
                    "unknown sink {s:?}: use server, stdout or file:/path/to/events.jsonl"
                )),
            },
        }
    }
}

/// Sends evidence into the bounded channel; never blocks the kernel reader for
/// low-severity evidence, waits for room for error and critical evidence.
#[derive(Clone)]
pub struct Out {
    pub tx: SyncSender<Event>,
    pub metrics: Arc<Metrics>,
}

impl Out {
    pub fn send(&self, ev: Event) {
        if ev.severity >= EventSeverity::Error {
            if self.tx.send(ev).is_err() {
                self.metrics.drop_evidence("shutdown", 1);
            }
            return;
        }
        match self.tx.try_send(ev) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.metrics.drop_evidence("queue_full", 1),
            Err(TrySendError::Disconnected(_)) => self.metrics.drop_evidence("shutdown", 1),
        }
    }
}

/// Boot time → wall clock, from CLOCK_REALTIME and CLOCK_BOOTTIME read together.
pub fn boot_clock() -> Clock {
    use nix::time::{ClockId, clock_gettime};
    let ns = |c: ClockId| {
        clock_gettime(c)
            .map(|t| t.tv_sec() as i128 * 1_000_000_000 + t.tv_nsec() as i128)
            .unwrap_or(0)
    };
    let real = ns(ClockId::CLOCK_REALTIME);
    let boot = ns(ClockId::CLOCK_BOOTTIME);
    Clock {
        boot_epoch_ns: real - boot,
    }
}

impl Resolve for Enricher {
    fn resolve(&mut self, pid: u32, cgroup_id: u64, comm: &str) -> Resolved {
        let e = Enricher::resolve(self, pid, cgroup_id, comm);
        Resolved {
            entity: e.entity,
            attrs: e.attrs,
        }
    }
}

/// The kernel thread: drains the ring buffers, turns records into evidence, and every
/// statistics interval reads the per-destination and per-device maps.
pub fn kernel_loop(
    mut observers: Vec<LoadedObserver>,
    mut det: Detector,
    mut resolver: Enricher,
    out: Out,
    stop: Arc<AtomicBool>,
) {
    let metrics = out.metrics.clone();
    let interval = Duration::from_secs(det.t.stats_interval_seconds);
    let mut next_stats = Instant::now() + interval;
    while !stop.load(Ordering::Relaxed) {
        for o in observers.iter_mut() {
            let name = o.name;
            let Some(ring) = o.ring.as_mut() else {
                continue;
            };
            while let Some(item) = ring.next() {
                let decoded = abi::decode(&item);
                drop(item);
                match decoded {
                    Ok(rec) => {
                        let ev = match rec {
                            Record::Connect(r) => det.connect(&r, &mut resolver),
                            Record::Exit(r) => det.exit(&r, &mut resolver),
                            Record::Oom(r) => Some(det.oom(&r, &mut resolver)),
                            Record::Block(r) => det.block(&r, &mut resolver),
                        };
                        if let Some(ev) = ev {
                            out.send(ev);
                        }
                    }
                    Err(e) => {
                        metrics
                            .malformed
                            .get_or_create(&ObserverReason {
                                observer: name.into(),
                                reason: e.reason().into(),
                            })
                            .inc();
                    }
                }
            }
        }
        if Instant::now() >= next_stats {
            next_stats += interval;
            if next_stats < Instant::now() {
                next_stats = Instant::now() + interval;
            }
            let now = Utc::now();
            for o in &observers {
                if let Some(map) = &o.conn_stats {
                    let mut cum: Vec<(Destination, [u64; abi::DST_COUNTERS])> = Vec::new();
                    for (k, v) in map.iter().flatten() {
                        if let Ok(d) = abi::decode_dst_key(&k) {
                            cum.push((d, v));
                        }
                    }
                    for ev in det.connect_interval(now, &cum) {
                        out.send(ev);
                    }
                }
                if let Some(map) = &o.blk_stats {
                    let cum: Vec<_> = map.iter().flatten().collect();
                    det.block_interval(&cum);
                }
                for (reason, n) in o.drop_counts() {
                    metrics
                        .kernel_drops
                        .get_or_create(&ObserverReason {
                            observer: o.name.into(),
                            reason: reason.into(),
                        })
                        .set(n as i64);
                }
            }
        }
        // Sleep until a ring buffer has a backlog (the programs wake us past 256 KiB) or
        // 25 ms pass: bounded latency without a wakeup per record.
        let mut fds: Vec<nix::poll::PollFd<'_>> = observers
            .iter()
            .filter_map(|o| o.ring_fd())
            .map(|fd| nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN))
            .collect();
        if fds.is_empty() {
            std::thread::sleep(Duration::from_millis(25));
        } else {
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(25u16));
        }
    }
}

/// Total records lost in the kernel so far (ring buffer full), for heartbeats.
pub fn kernel_lost(metrics: &Metrics, observers: &[&str]) -> u64 {
    observers
        .iter()
        .map(|o| {
            metrics
                .kernel_drops
                .get_or_create(&ObserverReason {
                    observer: (*o).into(),
                    reason: "ringbuf_full".into(),
                })
                .get()
                .max(0) as u64
        })
        .sum()
}

/// Spool writer: groups evidence (≤ 1000 events or 50 ms) into one durable append.
pub fn spool_writer(
    rx: Receiver<Event>,
    spool: Arc<Mutex<Spool>>,
    wake: Arc<Wake>,
    metrics: Arc<Metrics>,
) {
    let mut open = true;
    while open {
        let first = match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) => {
                update_spool_gauges(&spool, &metrics);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut group = vec![first];
        let until = Instant::now() + Duration::from_millis(50);
        while group.len() < 1000 {
            let left = until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(ev) => group.push(ev),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let n = group.len() as u64;
        let result = match spool.lock() {
            Ok(mut s) => s.append(group),
            Err(_) => break,
        };
        match result {
            Ok(outcome) => {
                for (sev, k) in &outcome.dropped {
                    if *k > 0 {
                        metrics.drop_evidence(&format!("spool_full_{}", sev.as_str()), *k);
                    }
                }
                metrics.spooled.inc_by(outcome.stored as u64);
            }
            Err(e) => {
                tracing::error!(error = %e, events = n, "writing to the spool failed; evidence lost");
                metrics.drop_evidence("spool_write_failed", n);
            }
        }
        wake.notify();
        update_spool_gauges(&spool, &metrics);
    }
}

fn update_spool_gauges(spool: &Mutex<Spool>, metrics: &Metrics) {
    if let Ok(s) = spool.lock() {
        let st = s.stats();
        metrics.spool_bytes.set(st.bytes as i64);
        metrics.spool_pending_events.set(st.pending_events as i64);
    }
}

/// Local sinks: JSON lines, flushed per group; counted as shipped once written.
pub fn line_writer(rx: Receiver<Event>, sink: Sink, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let mut w: Box<dyn Write> = match &sink {
        Sink::File(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
        _ => Box::new(std::io::stdout()),
    };
    while let Ok(ev) = rx.recv() {
        let mut n = 1u64;
        serde_json::to_writer(&mut w, &ev)?;
        w.write_all(b"\n")?;
        while let Ok(ev) = rx.try_recv() {
            serde_json::to_writer(&mut w, &ev)?;
            w.write_all(b"\n")?;
            n += 1;
        }
        w.flush()?;
        metrics.shipped.inc_by(n);
    }
    Ok(())
}

/// What `/health` and the heartbeat report.
pub struct Status {
    pub agent_id: String,
    pub node: String,
    pub started_at: DateTime<Utc>,
    pub kernel: KernelCapabilities,
    pub sources: Mutex<Vec<SourceStatus>>,
    pub ship: Option<Arc<Mutex<ShipState>>>,
    pub spool: Option<Arc<Mutex<Spool>>>,
    pub metrics: Arc<Metrics>,
}

impl Status {
    pub fn dropped(&self) -> BTreeMap<String, u64> {
        // Read back from the metric families by encoding: a small, bounded set.
        let mut out = BTreeMap::new();
        for line in self.metrics.encode().lines() {
            if let Some(rest) = line.strip_prefix("tapio_agent_dropped_events_total{reason=\"")
                && let Some((reason, n)) = rest.split_once("\"} ")
            {
                out.insert(
                    reason.to_owned(),
                    n.trim().parse::<f64>().unwrap_or(0.0) as u64,
                );
            }
        }
        out
    }

    pub fn heartbeat(&self) -> AgentHeartbeat {
        let (pending, bytes) = self
            .spool
            .as_ref()
            .and_then(|s| {
                s.lock().ok().map(|s| {
                    let st = s.stats();
                    (st.pending_events, st.bytes)
                })
            })
            .unwrap_or((0, 0));
        let last_error = self
            .ship
            .as_ref()
            .and_then(|s| {
                s.lock().ok().map(|s| {
                    if s.consecutive_failures > 0 {
                        s.last_error.clone()
                    } else {
                        String::new()
                    }
                })
            })
            .unwrap_or_default();
        AgentHeartbeat {
            agent_id: self.agent_id.clone(),
            node: self.node.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: self.started_at,
            sent_at: Utc::now(),
            kernel: self.kernel.clone(),
            sources: self.sources.lock().map(|s| s.clone()).unwrap_or_default(),
            spool_pending_events: pending,
            spool_bytes: bytes,
            dropped: self.dropped(),
            kernel_drops: kernel_lost(&self.metrics, &["network", "process", "storage"]),
            last_error,
        }
    }

    /// `ok`: every enabled program attached and delivery working; `degraded`: something
    /// missing or failing but evidence still flows or is spooled; `unhealthy`: no source.
    pub fn health(&self) -> serde_json::Value {
        let hb = self.heartbeat();
        let missing: Vec<_> = hb
            .kernel
            .programs
            .iter()
            .filter(|p| {
                !matches!(
                    p.state,
                    tapio_proto::ProgramState::Attached | tapio_proto::ProgramState::Disabled
                )
            })
            .collect();
        let any_source = hb.kernel.bpf_allowed || hb.sources.iter().any(|s| s.available);
        let ship = self
            .ship
            .as_ref()
            .and_then(|s| s.lock().ok().map(|s| s.clone()));
        let failing = ship.as_ref().is_some_and(|s| s.consecutive_failures >= 3);
        let status = if !any_source {
            "unhealthy"
        } else if !missing.is_empty() || failing {
            "degraded"
        } else {
            "ok"
        };
        serde_json::json!({
            "status": status,
            "agent_id": hb.agent_id,
            "node": hb.node,
            "version": hb.version,
            "started_at": hb.started_at,
            "kernel": hb.kernel,
            "sources": hb.sources,
            "spool": {"pending_events": hb.spool_pending_events, "bytes": hb.spool_bytes},
            "shipping": ship,
            "dropped": hb.dropped,
            "kernel_drops": hb.kernel_drops,
        })
    }
}
