//! The HTTP surface: the router, its handlers (one module per resource) and request
//! metrics. The top layer: handlers call the pipeline, security and the store; nothing
//! below imports from here.

pub mod admission;
pub mod agents;
pub mod alertmanager;
pub mod audit;
pub mod config;
pub mod evidence;
pub use crate::body::{
    BODY_IDLE_TIMEOUT, BODY_READ_TIMEOUT, collect_body, collect_timed, content_encoding,
    decode_body, read_body,
};
pub use crate::security::auth::OPENAPI_PATH;
pub use evidence::reject;
pub use state::AppState;
pub mod guard;
pub mod health;
pub mod incidents;
pub mod lifecycle;
pub mod silences;
pub mod state;
pub mod status_page;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{FromRequestParts, MatchedPath, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};

use crate::error::ApiError;
use crate::metrics::{HttpLabels, RouteLabel};

pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(metrics))
        // Public, no login: API authentication must exempt these (see status_page).
        .route("/status", get(status_page::html))
        .route("/status.json", get(status_page::json))
        // This API described as OpenAPI 3.0 (public, like the status page).
        .route(OPENAPI_PATH, get(openapi))
        .route(
            "/api/v1/evidence",
            post(evidence::post_evidence).get(evidence::list_evidence),
        )
        .route("/api/v1/pods", get(evidence::node_pods))
        .route("/api/v1/events", post(evidence::post_event))
        .route("/api/v1/alertmanager", post(alertmanager::receive))
        .route(
            "/api/v1/incidents",
            get(incidents::list_incidents).post(lifecycle::declare),
        )
        .route(
            "/api/v1/incidents/{id}/ack",
            lifecycle::act_route(tapio_core::lifecycle::Action::Ack),
        )
        .route("/api/v1/incidents/{id}/severity", post(lifecycle::severity))
        .route(
            "/api/v1/incidents/{id}/mitigate",
            lifecycle::act_route(tapio_core::lifecycle::Action::Mitigate),
        )
        .route(
            "/api/v1/incidents/{id}/resolve",
            lifecycle::act_route(tapio_core::lifecycle::Action::Resolve),
        )
        .route(
            "/api/v1/incidents/{id}/reopen",
            lifecycle::act_route(tapio_core::lifecycle::Action::Reopen),
        )
        .route("/api/v1/incidents/{id}/notes", post(lifecycle::note))
        .route("/api/v1/incidents/{id}/timeline", get(lifecycle::timeline))
        .route("/api/v1/silences", get(silences::list).post(silences::add))
        .route("/api/v1/silences/{id}/expire", post(silences::expire))
        .route(
            "/api/v1/incidents/summary",
            get(incidents::incident_summary),
        )
        .route("/api/v1/incidents/{id}", get(incidents::get_incident))
        .route("/api/v1/agents", get(agents::list_agents))
        .route("/api/v1/agents/heartbeat", post(agents::post_heartbeat))
        .route("/api/v1/config", get(config::get_config))
        .route("/api/v1/cluster", get(config::get_cluster))
        .route("/api/v1/audit", get(audit::get_audit))
        .route("/api/v1/operations/{id}", get(lifecycle::operation))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard::guard))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            admission::admit,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// The OpenAPI 3.0 document of every route above, kept by hand next to the handlers
/// (`tests/openapi.rs` checks that it lists exactly the router's paths).
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route {} {}; see the API list in README.md",
        req.method(),
        req.uri().path()
    ))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

/// The `{id}` of a route. Like `Path<String>`, except that a path segment that does not
/// decode (bad percent-encoding, invalid UTF-8) is the API's JSON 400 naming `id`
/// rather than axum's plain-text rejection.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Self(id))
            .map_err(|e| {
                ApiError::bad_request(
                    "invalid_id",
                    Some("id"),
                    format!("the id in the path is not valid: {}", e.body_text()),
                )
            })
    }
}

/// Counts every request by route template (bounded), method and status.
async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    // A fixed set: arbitrary extension methods must not create new series.
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m,
        _ => "other",
    }
    .to_owned();
    let t = Instant::now();
    let resp = next.run(req).await;
    if let Some(r) = resp.extensions().get::<crate::error::Refused>()
        && crate::security::bounds::COUNTED_CODES.contains(&r.0)
    {
        state.metrics.refused(r.0);
    }
    state
        .metrics
        .http_duration
        .get_or_create(&RouteLabel {
            route: route.clone(),
        })
        .observe(t.elapsed().as_secs_f64());
    state
        .metrics
        .http_requests
        .get_or_create(&HttpLabels {
            route,
            method,
            status: resp.status().as_u16().to_string(),
        })
        .inc();
    resp
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    state
        .metrics
        .set_queue("store_writer", state.store.pending_writes() as i64);
    state
        .metrics
        .set_queue("correlator", state.correlator.lag() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

pub fn parse_list<T: std::str::FromStr<Err = String>>(
    field: &str,
    v: Option<&String>,
) -> Result<Vec<T>, ApiError> {
    v.map(|s| {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| p.parse::<T>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::bad_request("invalid_query", Some(field), e))
    })
    .transpose()
    .map(Option::unwrap_or_default)
}

/// `after` (a position, default 0: the `next` of the previous page) and `limit` (1 to
/// `max`, default 1000) of a paged list.
pub fn parse_page(q: &HashMap<String, String>, max: usize) -> Result<(i64, usize), ApiError> {
    let after = match q.get("after") {
        None => 0,
        Some(a) => a.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                Some("after"),
                format!("after={a:?} must be a position ≥ 0 (the `next` of the previous page)"),
            )
        })?,
    };
    let limit = match q.get("limit") {
        None => 1000,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    Some("limit"),
                    format!("limit={l:?} must be a number from 1 to {max}"),
                )
            })?,
    };
    Ok((after, limit))
}

pub fn parse_since(v: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = tapio_core::duration::parse_duration(v).map_err(|_| {
        ApiError::bad_request(
            "invalid_query",
            Some("since"),
            format!("since={v:?} is neither an RFC 3339 time nor a duration like 2h or 7d"),
        )
    })?;
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| Utc::now().checked_sub_signed(d))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                Some("since"),
                format!("since={v:?} reaches before the earliest representable time; use a shorter duration"),
            )
        })
}
