//! Delivery of spooled evidence to `tapio-server`.
//!
//! One shipper thread takes the spool's next batch (the same sequence number and the same
//! events until it is acknowledged, even across agent restarts), posts it gzip-compressed
//! to `POST /api/v1/evidence`, and only on `200` tells the spool to forget it. The server
//! acknowledges after its fsync and recognises a resent batch by `(agent_id, seq)` and
//! its first event id, so every event arrives exactly once.
//!
//! Failures back off exponentially (with jitter, honouring `Retry-After`) and rotate
//! through the configured endpoints. A batch the server refuses as invalid (400, 413,
//! 415, 422) would be refused forever: it is discarded, logged and counted, so one bad
//! batch cannot block the node's evidence. Authentication failures and unknown routes are
//! configuration errors and are retried, never discarded.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tapio_proto::EvidenceBatch;

use crate::metrics::{Metrics, ReasonLabel};
use crate::spool::Spool;

#[derive(Debug, Clone)]
pub struct ShipConfig {
    /// Base URLs, e.g. `http://tapio-server.tapio-system:8080`; tried in turn on failure.
    pub endpoints: Vec<String>,
    pub agent_id: String,
    pub node: String,
    pub batch_max_events: usize,
    pub request_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub token: Option<String>,
    /// TLS policy for `https://` endpoints (crate::client).
    pub tls: crate::client::ClientTls,
}

/// What `/health` and heartbeats report about delivery.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShipState {
    pub endpoint: String,
    pub last_success: Option<DateTime<Utc>>,
    pub last_attempt: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    pub last_error: String,
    pub backoff_ms: u64,
    pub last_acked_seq: u64,
}

/// Wakes the shipper when the spool has something new.
#[derive(Default)]
pub struct Wake {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Wake {
    pub fn notify(&self) {
        if let Ok(mut f) = self.flag.lock() {
            *f = true;
            self.cv.notify_all();
        }
    }

    /// Wait until notified or the timeout passes.
    pub fn wait(&self, timeout: Duration) {
        if let Ok(mut f) = self.flag.lock() {
            if !*f {
                f = match self.cv.wait_timeout(f, timeout) {
                    Ok((g, _)) => g,
                    Err(_) => return,
                };
            }
            *f = false;
        }
    }
}

enum Outcome {
    Acked,
    /// Refused as invalid: never acceptable, drop it.
    Refused(String),
    /// Try again later (optionally after the server's Retry-After).
    Retry(String, Option<Duration>),
}

pub struct Shipper {
    cfg: ShipConfig,
    spool: Arc<Mutex<Spool>>,
    wake: Arc<Wake>,
    metrics: Arc<Metrics>,
    pub state: Arc<Mutex<ShipState>>,
    agent: ureq::Agent,
    endpoint: usize,
}

impl Shipper {
    pub fn new(
        cfg: ShipConfig,
        spool: Arc<Mutex<Spool>>,
        wake: Arc<Wake>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let agent = cfg.tls.agent(cfg.request_timeout);
        let state = Arc::new(Mutex::new(ShipState {
            endpoint: cfg.endpoints.first().cloned().unwrap_or_default(),
            ..ShipState::default()
        }));
        Self {
            cfg,
            spool,
            wake,
            metrics,
            state,
            agent,
            endpoint: 0,
        }
    }

    fn url(&self, path: &str) -> String {
        let base = self
            .cfg
            .endpoints
            .get(self.endpoint)
            .map(|s| s.trim_end_matches('/'))
            .unwrap_or("http://127.0.0.1:8080");
        format!("{base}{path}")
    }

    fn count(&self, result: &str) {
        self.metrics
            .ship_attempts
            .get_or_create(&ReasonLabel {
                reason: result.into(),
            })
            .inc();
    }

    /// Run until `stop` is set; the batch in flight at that moment stays in the spool.
    pub fn run(mut self, stop: Arc<AtomicBool>) {
        let mut backoff = Duration::ZERO;
        let mut attempt: u32 = 0;
        while !stop.load(Ordering::Relaxed) {
            if !backoff.is_zero() {
                self.sleep(backoff, &stop);
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
            let batch = match self.spool.lock() {
                Ok(mut s) => s.next_batch(self.cfg.batch_max_events),
                Err(_) => break,
            };
            let batch = match batch {
                Ok(Some(b)) => b,
                Ok(None) => {
                    backoff = Duration::ZERO;
                    self.wake.wait(Duration::from_millis(500));
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "reading the spool failed; retrying");
                    backoff = self.cfg.backoff_max.min(Duration::from_secs(5));
                    continue;
                }
            };
            let n = batch.events.len() as u64;
            let seq = batch.seq;
            let outcome = self.post(EvidenceBatch {
                version: 1,
                agent_id: self.cfg.agent_id.clone(),
                node: self.cfg.node.clone(),
                seq,
                sent_at: Some(Utc::now()),
                events: batch.events,
            });
            let now = Utc::now();
            match outcome {
                Outcome::Acked => {
                    self.count("acked");
                    if let Ok(mut s) = self.spool.lock()
                        && let Err(e) = s.ack(seq)
                    {
                        tracing::error!(error = %e, seq, "recording the acknowledgement failed");
                    }
                    self.metrics.shipped.inc_by(n);
                    attempt = 0;
                    backoff = Duration::ZERO;
                    if let Ok(mut st) = self.state.lock() {
                        st.last_success = Some(now);
                        st.last_attempt = Some(now);
                        st.consecutive_failures = 0;
                        st.backoff_ms = 0;
                        st.last_acked_seq = seq;
                    }
                }
                Outcome::Refused(why) => {
                    self.count("refused");
                    tracing::error!(seq, events = n, reason = %why,
                        "the server refused a batch as invalid; it is dropped and counted");
                    if let Ok(mut s) = self.spool.lock()
                        && let Err(e) = s.discard(seq)
                    {
                        tracing::error!(error = %e, seq, "discarding the refused batch failed");
                    }
                    self.metrics.drop_evidence("rejected_by_server", n);
                    attempt = 0;
                    backoff = Duration::ZERO;
                    if let Ok(mut st) = self.state.lock() {
                        st.last_attempt = Some(now);
                        st.last_error = why;
                    }
                }
                Outcome::Retry(why, retry_after) => {
                    self.count("retry");
                    attempt = attempt.saturating_add(1);
                    backoff = next_backoff(
                        attempt,
                        self.cfg.backoff_min,
                        self.cfg.backoff_max,
                        retry_after,
                    );
                    if self.cfg.endpoints.len() > 1 {
                        self.endpoint = (self.endpoint + 1) % self.cfg.endpoints.len();
                    }
                    if attempt == 1 || attempt.is_power_of_two() {
                        tracing::warn!(seq, attempt, backoff_ms = backoff.as_millis() as u64,
                            reason = %why, "delivery failed; evidence stays in the spool");
                    }
                    if let Ok(mut st) = self.state.lock() {
                        st.last_attempt = Some(now);
                        st.consecutive_failures = attempt;
                        st.last_error = why;
                        st.backoff_ms = backoff.as_millis() as u64;
                        st.endpoint = self.url("");
                    }
                }
            }
            self.metrics
                .ship_backoff_seconds
                .set(backoff.as_secs() as i64);
        }
    }

    fn sleep(&self, d: Duration, stop: &AtomicBool) {
        let until = Instant::now() + d;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(
                until
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(100)),
            );
        }
    }

    fn post(&self, batch: EvidenceBatch) -> Outcome {
        // A batch holding a P1-class fact goes in the server's critical lane: admitted
        // while ordinary ingest is refused for load (the same ranking the server sheds by).
        let critical = batch.events.iter().any(tapio_proto::shed::is_never_shed);
        let json = match serde_json::to_vec(&batch) {
            Ok(j) => j,
            Err(e) => return Outcome::Refused(format!("cannot encode the batch: {e}")),
        };
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let body = match gz.write_all(&json).and_then(|_| gz.finish()) {
            Ok(b) => b,
            Err(e) => return Outcome::Retry(format!("gzip: {e}"), None),
        };
        let mut req = self
            .agent
            .post(self.url("/api/v1/evidence"))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip");
        if let Some(t) = &self.cfg.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if critical {
            req = req.header("x-tapio-priority", "critical");
        }
        let mut resp = match req.send(&body[..]) {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(format!("{}: {e}", self.url("")), None),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        match status {
            200..=299 => Outcome::Acked,
            400 | 413 | 415 | 422 => Outcome::Refused(format!("{status}: {text}")),
            _ => Outcome::Retry(format!("{status}: {text}"), retry_after),
        }
    }
}

/// Exponential backoff with ±20 % jitter, at least the server's Retry-After.
pub fn next_backoff(
    attempt: u32,
    min: Duration,
    max: Duration,
    retry_after: Option<Duration>,
) -> Duration {
    let exp = min.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let base = exp.min(max);
    // Jitter from the clock's nanoseconds: no RNG dependency, enough to spread agents.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = 0.8 + 0.4 * (nanos % 1000) as f64 / 1000.0;
    let d = base.mul_f64(jitter).min(max);
    match retry_after {
        Some(r) if r > d => r.min(max.max(r)),
        _ => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_and_respects_retry_after() {
        let min = Duration::from_millis(200);
        let max = Duration::from_secs(30);
        let b1 = next_backoff(1, min, max, None);
        assert!(b1 >= Duration::from_millis(160) && b1 <= Duration::from_millis(240));
        let b4 = next_backoff(4, min, max, None);
        assert!(b4 >= Duration::from_millis(1280) && b4 <= Duration::from_millis(1920));
        assert!(next_backoff(40, min, max, None) <= max);
        assert!(next_backoff(1, min, max, Some(Duration::from_secs(7))) >= Duration::from_secs(7));
    }
}
