//! Admission control as middleware: outside authentication, an overloaded server refuses
//! by class before any work (`crate::security::protect` decides; this applies it to a
//! request), and a write's body is received before it takes an in-flight slot.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::AppState;
use crate::error::ApiError;
use crate::security::protect::{Class, DRAIN_MAX, DRAIN_TIME, PRIORITY_HEADER, Slot, classify};

/// The middleware (outside authentication: an overloaded server refuses before any work).
pub async fn admit(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str());
    let critical = req
        .headers()
        .get(PRIORITY_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("critical"));
    let class = classify(req.method(), route, critical);
    if class == Class::Probe {
        return next.run(req).await;
    }
    let p = &state.protect;
    // A body is received before the request takes an in-flight slot: clients trickling
    // their bodies must not crowd out reads (they have their own bound, and a deadline).
    let req = match receive_body(&state, class, route.map(str::to_owned), req).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let pressure = state.ingest.load.pressure();
    let active = state.ingest.load.shedding_active(pressure);
    if let Err((reason, message)) = p.admit(class, pressure, active) {
        let idx = match class {
            Class::Debug => 0,
            Class::Read => 1,
            Class::Ingest => 2,
            _ => 3,
        };
        p.refused[idx].fetch_add(1, Ordering::Relaxed);
        p.last_shed_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
        state
            .metrics
            .requests_shed
            .get_or_create(&crate::metrics::ShedLabels {
                class: class.as_str().to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
        let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message);
        e.retry_after = Some(if class >= Class::Ingest { 1 } else { 5 });
        // Read (and drop) a small body first, briefly: a client still sending its batch
        // then reads the 503 and its Retry-After instead of a broken pipe. No decoding.
        let small = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n <= DRAIN_MAX);
        if small {
            use http_body_util::BodyExt;
            let body = http_body_util::Limited::new(req.into_body(), DRAIN_MAX);
            let _ = tokio::time::timeout(DRAIN_TIME, body.collect()).await;
        }
        return e.into_response();
    }
    let n = p.inflight.fetch_add(1, Ordering::Relaxed) + 1;
    state.metrics.requests_in_flight.set(n as i64);
    let _slot = Slot(p, &state.metrics);
    next.run(req).await.into_response()
}

/// Holds one receiving slot.
struct Receiving<'a>(&'a AtomicUsize);

impl Drop for Receiving<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Reads the body of a write (bounded by `--max-body-bytes`, within `--body-read-timeout`)
/// into memory, at most `--max-inflight` at once. Skipped — the handler refuses or reads
/// as before — for a declared length over the bound, and for a caller authentication will
/// refuse (an unauthenticated body is never read).
async fn receive_body(
    state: &AppState,
    class: Class,
    route: Option<String>,
    req: Request,
) -> Result<Request, Response> {
    use axum::http::header::CONTENT_LENGTH;
    let read = *req.method() == Method::GET || *req.method() == Method::HEAD;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let Some(route) = route else {
        return Ok(req);
    };
    let max = if route == "/api/v1/agents/heartbeat" {
        state
            .max_body_bytes
            .min(tapio_proto::HEARTBEAT_MAX_BODY_BYTES)
    } else {
        state.max_body_bytes
    };
    if read || declared == Some(0) || declared.is_some_and(|n| n > max) {
        return Ok(req);
    }
    if state.auth.enabled() {
        let need = crate::security::auth::need(req.method(), &route, state.auth.public_metrics);
        if need != crate::security::auth::Need::Public {
            let ok = req
                .headers()
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .and_then(|(_, t)| state.auth.authenticate(t.trim()))
                .is_some_and(|c| crate::security::auth::allows(c.role, need));
            if !ok {
                return Ok(req);
            }
        }
    }
    let p = &state.protect;
    let n = p.receiving.fetch_add(1, Ordering::Relaxed) + 1;
    let _slot = Receiving(&p.receiving);
    if n > p.max_inflight {
        state
            .metrics
            .requests_shed
            .get_or_create(&crate::metrics::ShedLabels {
                class: class.as_str().to_owned(),
                reason: "receiving".to_owned(),
            })
            .inc();
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!(
                "overloaded: {} request bodies are being received (--max-inflight {}); retry",
                n - 1,
                p.max_inflight
            ),
        );
        e.retry_after = Some(1);
        return Err(e.into_response());
    }
    let (parts, body) = req.into_parts();
    match crate::body::collect_timed(body, max, p.body_read_timeout).await {
        Ok(bytes) => Ok(Request::from_parts(parts, axum::body::Body::from(bytes))),
        Err(e) => {
            state.metrics.refused(match e.code {
                "body_read_timeout" => "body_read_timeout",
                "payload_too_large" => "body_too_large",
                _ => "body_read_failed",
            });
            Err(e.into_response())
        }
    }
}
