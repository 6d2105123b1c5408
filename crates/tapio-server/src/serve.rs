//! The HTTP/1.1 connection loop: bounded in time and in number, whatever clients do.
//!
//! - **Header-read timeout** (`--header-read-timeout`, 10 s): a connection must send a
//!   complete request head within this after it opens and after each response (so it is
//!   also the keep-alive idle limit); else it is closed (counted,
//!   `tapio_input_refused_total{reason="header_read_timeout"}`). Slowloris clients that
//!   trickle header bytes are cut off here.
//! - **Idle timeout** (`--idle-timeout`, 60 s): a connection with no request in progress
//!   for this long is closed, whatever hyper is waiting for.
//! - **Connection cap** (`--max-connections`, default automatic: below the open-file
//!   limit, with room left for the store, config and auth files). At 90 % of the cap,
//!   connections with no request in progress for over a second are closed, oldest
//!   first in effect, so a flood of idle connections cannot keep `/health` out; past the
//!   cap a new connection is closed at once (counted, `reason="connection_limit"`).
//! - **Bounded shutdown** (`--shutdown-timeout`, 10 s): on SIGTERM the listener closes,
//!   idle connections are closed, requests in progress may finish within the bound; then
//!   whatever is left is dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::metrics::Metrics;

/// Limits of the connection loop (see the module documentation).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_timeout: Duration,
}

/// Above this, `--max-connections auto` stops growing with the file limit.
pub const AUTO_MAX_CONNECTIONS: usize = 10_000;
/// A connection this long without a request in progress may be closed under pressure.
const REAP_IDLE: Duration = Duration::from_secs(1);
/// At most one pressure sweep per this.
const REAP_EVERY_MS: i64 = 250;

/// File descriptors kept free of connections out of `nofile`: the store (database, WAL,
/// shared memory, journal), config and auth directory reads, certificates, logs, the
/// Kubernetes and notification clients.
pub fn fd_headroom(nofile: u64) -> u64 {
    64 + nofile / 8
}

/// Raises the soft open-file limit to the hard one (as far as it goes) and returns it.
pub fn raise_nofile() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    let want = hard.min(1 << 20);
    if want > soft && setrlimit(Resource::RLIMIT_NOFILE, want, hard).is_ok() {
        return want;
    }
    soft
}

/// The connection cap: `requested` (0 = automatic) bounded below the open-file limit.
/// Returns (cap, open-file limit, whether `requested` was lowered).
pub fn connection_cap(requested: usize, nofile: u64) -> (usize, u64, bool) {
    let room = nofile.saturating_sub(fd_headroom(nofile)).max(16) as usize;
    if requested == 0 {
        (room.min(AUTO_MAX_CONNECTIONS), nofile, false)
    } else {
        (requested.min(room), nofile, requested > room)
    }
}

/// What one connection is doing, for the idle and pressure checks.
struct Activity {
    in_flight: AtomicUsize,
    /// Milliseconds since `epoch` of the last request start or end.
    last_ms: AtomicI64,
}

struct Busy(Arc<Activity>, Instant);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0
            .last_ms
            .store(self.1.elapsed().as_millis() as i64, Ordering::Relaxed);
    }
}

/// Serves `router` on `listener` until `signal` resolves, then shuts down within
/// `cfg.shutdown_timeout`.
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    cfg: ServeConfig,
    metrics: Arc<Metrics>,
    signal: impl std::future::Future<Output = ()> + Send,
) where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let epoch = Instant::now();
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (reap_tx, reap_rx) = watch::channel(0u64);
    let last_reap = AtomicI64::new(i64::MIN / 2);
    tokio::pin!(signal);
    loop {
        let (io, peer) = tokio::select! {
            c = listener.accept() => c,
            _ = &mut signal => break,
        };
        let now_ms = epoch.elapsed().as_millis() as i64;
        let pressure_sweep = || {
            if now_ms - last_reap.load(Ordering::Relaxed) >= REAP_EVERY_MS {
                last_reap.store(now_ms, Ordering::Relaxed);
                reap_tx.send_modify(|n| *n += 1);
            }
        };
        if slots.available_permits() <= cfg.max_connections / 10 {
            pressure_sweep();
        }
        let permit = slots.clone().try_acquire_owned().ok();
        let (router, metrics, cfg) = (router.clone(), metrics.clone(), cfg.clone());
        let (slots, mut stop, mut reap) = (slots.clone(), stop_rx.clone(), reap_rx.clone());
        tokio::spawn(async move {
            // Full: idle connections were just asked to close; wait a moment for one.
            let _permit = match permit {
                Some(p) => p,
                None => {
                    match tokio::time::timeout(Duration::from_millis(250), slots.acquire_owned())
                        .await
                    {
                        Ok(Ok(p)) => p,
                        _ => {
                            metrics.refused("connection_limit");
                            tracing::debug!(component = "http", peer = %peer, max = cfg.max_connections, "connection refused: at --max-connections");
                            return;
                        }
                    }
                }
            };
            let activity = Arc::new(Activity {
                in_flight: AtomicUsize::new(0),
                last_ms: AtomicI64::new(epoch.elapsed().as_millis() as i64),
            });
            let act = activity.clone();
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                act.in_flight.fetch_add(1, Ordering::Relaxed);
                let busy = Busy(act.clone(), epoch);
                let router = router.clone();
                async move {
                    let resp = router.oneshot(req.map(axum::body::Body::new)).await;
                    drop(busy);
                    resp
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(cfg.header_read_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(io), svc);
            tokio::pin!(conn);
            let idle_for = |a: &Activity| {
                if a.in_flight.load(Ordering::Relaxed) > 0 {
                    return Duration::ZERO;
                }
                let since = a.last_ms.load(Ordering::Relaxed);
                Duration::from_millis((epoch.elapsed().as_millis() as i64 - since).max(0) as u64)
            };
            let mut stopping = *stop.borrow();
            if stopping {
                conn.as_mut().graceful_shutdown();
            }
            loop {
                let idle = idle_for(&activity);
                let idle_left = cfg
                    .idle_timeout
                    .saturating_sub(idle)
                    .max(Duration::from_millis(50));
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            if e.is_timeout() {
                                metrics.refused("header_read_timeout");
                            }
                            tracing::debug!(component = "http", peer = %peer, error = %e, "connection ended");
                        }
                        return;
                    }
                    _ = stop.changed(), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    _ = reap.changed() => {
                        if idle_for(&activity) >= REAP_IDLE {
                            metrics.refused("connection_reaped");
                            return;
                        }
                    }
                    _ = tokio::time::sleep(idle_left) => {
                        if idle_for(&activity) >= cfg.idle_timeout {
                            metrics.refused("idle_timeout");
                            return;
                        }
                    }
                }
            }
        });
    }
    // Shutdown: no new connections; idle ones close, requests in progress get the bound.
    drop(listener);
    let _ = stop_tx.send(true);
    let all = u32::try_from(cfg.max_connections).unwrap_or(u32::MAX);
    let open = cfg.max_connections - slots.available_permits();
    tracing::info!(
        component = "http",
        open_connections = open,
        "listener closed; waiting for requests in progress"
    );
    if tokio::time::timeout(cfg.shutdown_timeout, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            component = "http",
            left = cfg.max_connections - slots.available_permits(),
            timeout = ?cfg.shutdown_timeout,
            "connections still open at --shutdown-timeout are closed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_below_the_file_limit() {
        let (cap, _, lowered) = connection_cap(0, 1024);
        assert_eq!(cap, 1024 - 64 - 128);
        assert!(!lowered);
        let (cap, _, lowered) = connection_cap(5000, 256);
        assert_eq!(cap, 256 - 64 - 32);
        assert!(lowered);
        assert_eq!(connection_cap(0, 1 << 20).0, AUTO_MAX_CONNECTIONS);
        assert_eq!(connection_cap(100, 1 << 20), (100, 1 << 20, false));
    }
}
