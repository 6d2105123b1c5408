//! The HTTP surface: the router, its handlers (one module per resource) and request
//! metrics. The top layer: handlers call the pipeline, security and the store; nothing
//! below imports from here.

pub mod alertmanager;
pub use crate::OPENAPI_PATH;
pub use crate::body::{
    BODY_IDLE_TIMEOUT, BODY_READ_TIMEOUT, collect_body, collect_timed, content_encoding,
    decode_body, read_body,
};
pub mod guard;
pub mod health;
pub mod lifecycle;
pub mod silences;
pub mod status_page;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::json;
use tapio_core::{Severity, Status};
use tapio_proto::{ConfigView, IngestAck};
use tapio_store::{IncidentFilter, IngestBatch};

use crate::AppState;
use crate::error::ApiError;
use crate::metrics::{HttpLabels, RouteLabel};

pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(metrics))
        // Public, no login: API authentication must exempt these (see status_page).
        .route("/status", get(crate::api::status_page::html))
        .route("/status.json", get(crate::api::status_page::json))
        // This API described as OpenAPI 3.0 (public, like the status page).
        .route(OPENAPI_PATH, get(openapi))
        .route("/api/v1/evidence", post(post_evidence).get(list_evidence))
        .route("/api/v1/pods", get(node_pods))
        .route("/api/v1/events", post(post_event))
        .route("/api/v1/alertmanager", post(alertmanager::receive))
        .route(
            "/api/v1/incidents",
            get(list_incidents).post(crate::api::lifecycle::declare),
        )
        .route(
            "/api/v1/incidents/{id}/ack",
            post(crate::api::lifecycle::ack),
        )
        .route(
            "/api/v1/incidents/{id}/severity",
            post(crate::api::lifecycle::severity),
        )
        .route(
            "/api/v1/incidents/{id}/mitigate",
            post(crate::api::lifecycle::mitigate),
        )
        .route(
            "/api/v1/incidents/{id}/resolve",
            post(crate::api::lifecycle::resolve),
        )
        .route(
            "/api/v1/incidents/{id}/reopen",
            post(crate::api::lifecycle::reopen),
        )
        .route(
            "/api/v1/incidents/{id}/notes",
            post(crate::api::lifecycle::note),
        )
        .route(
            "/api/v1/incidents/{id}/timeline",
            get(crate::api::lifecycle::timeline),
        )
        .route("/api/v1/silences", get(silences::list).post(silences::add))
        .route("/api/v1/silences/{id}/expire", post(silences::expire))
        .route("/api/v1/incidents/summary", get(incident_summary))
        .route("/api/v1/incidents/{id}", get(get_incident))
        .route("/api/v1/agents", get(list_agents))
        .route("/api/v1/agents/heartbeat", post(post_heartbeat))
        .route("/api/v1/config", get(get_config))
        .route("/api/v1/cluster", get(get_cluster))
        .route("/api/v1/audit", get(get_audit))
        .route(
            "/api/v1/operations/{id}",
            get(crate::api::lifecycle::operation),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), guard::guard))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::security::protect::admit,
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
    if let Some(r) = resp.extensions().get::<crate::security::bounds::Refused>()
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

/// A refused evidence body, counted (`Ingest::reject`).
pub fn reject(state: &AppState, e: ApiError) -> ApiError {
    state.ingest.reject(e)
}

async fn post_evidence(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestAck>, ApiError> {
    let t = Instant::now();
    let raw = collect_body(&headers, body, state.max_body_bytes)
        .await
        .map_err(|e| reject(&state, e))?;
    // Decompressing, decoding and ranking a batch is CPU work: off the async workers, so
    // probes and people's requests stay responsive under a flood.
    let encoding = content_encoding(&headers);
    let st = state.clone();
    let (batch, first_event_id, events, shed) = crate::security::protect::cpu(&state, move || {
        let bytes = decode_body(encoding.as_deref(), &raw, st.max_body_bytes)?;
        let mut batch = tapio_proto::decode_batch(&bytes, Utc::now(), &st.limits)?;
        // The batch's identity is its first event as sent, before any is shed.
        let first = batch.events.first().map(|e| e.id);
        let (events, n) = st.ingest.shed(std::mem::take(&mut batch.events));
        Ok::<_, ApiError>((batch, first, events, n))
    })
    .await
    .map_err(|e| reject(&state, e))?;
    state
        .metrics
        .observe_stage("decode", t.elapsed().as_secs_f64());
    let (agent_id, seq) = (batch.agent_id.clone(), batch.seq);
    let ack = state
        .ingest
        .accept_batch(batch, first_event_id, events, Utc::now())
        .await?;
    Ok(Json(IngestAck {
        agent_id,
        seq,
        shed,
        ..ack
    }))
}

async fn post_event(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let bytes = read_body(&headers, body, state.max_body_bytes)
        .await
        .map_err(|e| reject(&state, e))?;
    let (ev, producer) = tapio_proto::decode_single_event(&bytes, Utc::now(), &state.limits)
        .map_err(|e| reject(&state, e.into()))?;
    let id = ev.id;
    let (events, shed) = state.ingest.shed(vec![ev]);
    let ack = state
        .ingest
        .store_batch(IngestBatch {
            agent_id: format!("api:{producer}"),
            node: String::new(),
            seq: None,
            first_event_id: Some(id),
            events,
            received_at: Utc::now(),
        })
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "id": id,
            "accepted": ack.accepted == 1,
            "duplicate": ack.duplicate_events == 1,
            "shed": shed == 1,
        })),
    ))
}

fn parse_list<T: std::str::FromStr<Err = String>>(
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

fn parse_since(v: &str) -> Result<DateTime<Utc>, ApiError> {
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

/// `GET /api/v1/audit?since=24h|RFC3339&after=POS&limit=N` (admin): the audit trail in
/// storage order (oldest first), one page: `limit` (1–100000, default 1000) records after
/// position `after` (0, the default: from the start). The answer's `next` is the `after`
/// of the following page; `more` says whether there may be one (a full page).
async fn get_audit(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let known = ["since", "after", "limit"];
    if let Some(k) = q.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            "invalid_query",
            Some(k),
            format!("unknown query parameter {k:?}; known: since, after, limit"),
        ));
    }
    let since = match q.get("since") {
        None => Utc::now() - chrono::Duration::hours(24),
        // Checked: a duration reaching before the calendar's start is refused, not a panic.
        Some(s) => tapio_core::duration::parse_duration(s)
            .ok()
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .and_then(|d| Utc::now().checked_sub_signed(d))
            .or_else(|| {
                chrono::DateTime::parse_from_rfc3339(s)
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
            })
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    Some("since"),
                    format!("since={s:?} must be a duration (24h) or an RFC 3339 time"),
                )
            })?,
    };
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
            .filter(|n| (1..=100_000).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    Some("limit"),
                    format!("limit={l:?} must be a number from 1 to 100000"),
                )
            })?,
    };
    let rows = state.store.audit_page(since, after, limit).await?;
    let next = rows.last().map_or(after, |(pos, _)| *pos);
    let more = rows.len() == limit;
    let records: Vec<serde_json::Value> = rows
        .iter()
        .filter_map(|(pos, r)| {
            let mut v: serde_json::Value = serde_json::from_str(r).ok()?;
            v["pos"] = (*pos).into();
            Some(v)
        })
        .collect();
    Ok(Json(
        json!({"count": records.len(), "next": next, "more": more, "records": records}),
    ))
}

/// `GET /api/v1/pods?node=NAME`: the node's pods as a Kubernetes `PodList`, from the live
/// watches, trimmed to what an agent needs to attribute kernel evidence (the agent's
/// `--pods` source; docs/kubernetes.md).
async fn node_pods(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if let Some(k) = q.keys().find(|k| k.as_str() != "node") {
        return Err(ApiError::bad_request(
            "invalid_query",
            Some(k),
            format!("unknown query parameter {k:?}; known: node"),
        ));
    }
    let Some(node) = q.get("node").filter(|n| !n.is_empty()) else {
        return Err(ApiError::bad_request(
            "invalid_query",
            Some("node"),
            "node=NAME is required (the agent passes its node name)",
        ));
    };
    if !state
        .kube
        .configured
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        return Err(ApiError {
            status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
            code: "kubernetes_not_configured",
            message: "this server watches no cluster (see /health, component kubernetes); the agent keeps its last pod list".into(),
            field: None,
            retry_after: Some(60),
        });
    }
    let list = state
        .kube
        .pods
        .read()
        .map(|p| p.pod_list(node))
        .unwrap_or_default();
    Ok(Json(list))
}

/// Stored evidence in storage order: `after` (a position from a previous page's `next`),
/// `limit` (1–5000, default 1000), `type` (exact event type). For checking what arrived
/// ("verify recent events processed") and for tools that follow the stream.
async fn list_evidence(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let known = ["after", "limit", "type"];
    if let Some(k) = q.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            "invalid_query",
            Some(k),
            format!("unknown query parameter {k:?}; known: {}", known.join(", ")),
        ));
    }
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
            .filter(|n| (1..=5000).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    Some("limit"),
                    format!("limit={l:?} must be a number from 1 to 5000"),
                )
            })?,
    };
    let rows = state.store.evidence_after(after, limit).await?;
    let next = rows.last().map_or(after, |(pos, _)| *pos);
    let evidence: Vec<serde_json::Value> = rows
        .into_iter()
        .filter(|(_, ev)| q.get("type").is_none_or(|t| ev.kind.as_str() == t))
        .map(|(pos, ev)| json!({"pos": pos, "event": ev}))
        .collect();
    Ok(Json(
        json!({"count": evidence.len(), "next": next, "evidence": evidence}),
    ))
}

async fn list_incidents(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let known = ["status", "severity", "namespace", "since", "limit"];
    if let Some(k) = q.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            "invalid_query",
            Some(k),
            format!("unknown query parameter {k:?}; known: {}", known.join(", ")),
        ));
    }
    let status: Vec<Status> = parse_list("status", q.get("status"))?;
    let severity: Vec<Severity> = parse_list("severity", q.get("severity"))?;
    let since = q.get("since").map(|s| parse_since(s)).transpose()?;
    let limit = match q.get("limit") {
        None => 100,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    Some("limit"),
                    format!("limit={l:?} must be a number from 1 to 1000"),
                )
            })?,
    };
    let incidents = state
        .store
        .list_incidents(IncidentFilter {
            status,
            severity,
            namespace: q.get("namespace").cloned(),
            since,
            limit,
        })
        .await?;
    Ok(Json(
        json!({"count": incidents.len(), "incidents": incidents}),
    ))
}

/// Counts of incidents by status and severity; `active` sums the unresolved ones.
async fn incident_summary(
    State(state): State<Arc<AppState>>,
) -> Result<Json<tapio_proto::IncidentSummary>, ApiError> {
    let mut sum = tapio_proto::IncidentSummary::default();
    for (status, sev, n) in state.store.incident_counts().await? {
        *sum.by_status
            .entry(status.as_str().to_owned())
            .or_default()
            .entry(sev.as_str().to_owned())
            .or_default() += n;
        if status.is_active() {
            *sum.active.entry(sev.as_str().to_owned()).or_default() += n;
        }
    }
    for s in Severity::ALL {
        sum.active.entry(s.as_str().to_owned()).or_default();
    }
    Ok(Json(sum))
}

async fn get_incident(
    State(state): State<Arc<AppState>>,
    PathId(id): PathId,
) -> Result<Json<tapio_core::Incident>, ApiError> {
    let ulid = tapio_proto::bounds::parse_ulid(&id).map_err(|why| {
        ApiError::bad_request(
            "invalid_id",
            Some("id"),
            format!("not an incident id: {why}"),
        )
    })?;
    state
        .store
        .get_incident(ulid)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no incident {id}")))
}

/// `GET /api/v1/agents?limit=N&after=AGENT_ID`: senders in agent-id order, one page at a
/// time (`next` is the `after` of the following page, absent on the last one). Heartbeats
/// are serialized from the kept reports under no copy of them.
async fn list_agents(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let known = ["after", "limit"];
    if let Some(k) = q.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            "invalid_query",
            Some(k),
            format!("unknown query parameter {k:?}; known: after, limit"),
        ));
    }
    let limit = match q.get("limit") {
        None => AGENTS_PAGE_DEFAULT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=AGENTS_PAGE_MAX).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    Some("limit"),
                    format!("limit={l:?} must be a number from 1 to {AGENTS_PAGE_MAX}"),
                )
            })?,
    };
    let after = q.get("after").map(String::as_str);
    let mut stored = state.store.agents().await?;
    stored.retain(|a| after.is_none_or(|x| a.agent_id.as_str() > x));
    stored.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
    stored.truncate(limit);
    // Agents that report but have not sent evidence yet are listed too.
    let reporting = state.heartbeats.page(after, limit);
    let beats = state
        .heartbeats
        .get_many(stored.iter().map(|a| a.agent_id.as_str()));
    let mut rows: Vec<AgentRow<'_>> = stored
        .iter()
        .map(|a| AgentRow {
            agent_id: &a.agent_id,
            node: &a.node,
            last_seq: a.last_seq,
            last_seen: a.last_seen,
            batches: a.batches,
            events: a.events,
            missing_batches: a.missing_batches,
            heartbeat: beats.get(&a.agent_id).map(|b| &**b),
        })
        .collect();
    for hb in &reporting {
        if beats.contains_key(&hb.agent_id) {
            continue;
        }
        if stored.iter().any(|a| a.agent_id == hb.agent_id) {
            continue;
        }
        rows.push(AgentRow {
            agent_id: &hb.agent_id,
            node: &hb.node,
            last_seq: 0,
            last_seen: hb.sent_at,
            batches: 0,
            events: 0,
            missing_batches: 0,
            heartbeat: Some(hb),
        });
    }
    rows.sort_by(|a, b| a.agent_id.cmp(b.agent_id));
    rows.truncate(limit);
    let next = (rows.len() == limit).then(|| rows.last().map(|r| r.agent_id.to_owned()));
    let body = serde_json::to_vec(&json!({
        "count": rows.len(),
        "agents": rows,
        "next": next.flatten(),
    }))
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("encoding the agent list: {e}"),
        )
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /api/v1/agents` page size, by default and at most.
pub const AGENTS_PAGE_DEFAULT: usize = 500;
pub const AGENTS_PAGE_MAX: usize = 2000;

/// One row of the agent list, borrowing the kept heartbeat (same JSON as
/// `tapio_proto::AgentStatus`).
#[derive(serde::Serialize)]
struct AgentRow<'a> {
    agent_id: &'a str,
    node: &'a str,
    last_seq: u64,
    last_seen: DateTime<Utc>,
    batches: u64,
    events: u64,
    missing_batches: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    heartbeat: Option<&'a tapio_proto::AgentHeartbeat>,
}

/// An agent's self-report: capabilities, attached programs, spool and drops. The body is
/// capped at `HEARTBEAT_MAX_BODY_BYTES` (or `--max-body-bytes` when smaller) and every
/// field bounded (`AgentHeartbeat::bound`); cut fields are counted
/// (`tapio_input_refused_total{reason="heartbeat_field_cut"}`).
async fn post_heartbeat(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let max = state
        .max_body_bytes
        .min(tapio_proto::HEARTBEAT_MAX_BODY_BYTES);
    let body = read_body(&headers, body, max).await.map_err(|mut e| {
        state.metrics.refused("heartbeat_refused");
        if e.code == "payload_too_large" {
            e.message = format!(
                "heartbeat body exceeds {max} bytes (after decompression); a heartbeat is a \
                 status report of a few KiB: shorten last_error and the program details"
            );
        }
        e
    })?;
    let mut hb: tapio_proto::AgentHeartbeat = serde_json::from_slice(&body).map_err(|e| {
        state.metrics.refused("heartbeat_refused");
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            format!("heartbeat body is not a valid agent heartbeat: {e}"),
        )
    })?;
    match hb.bound() {
        Ok(0) => {}
        Ok(n) => {
            for _ in 0..n {
                state.metrics.refused("heartbeat_field_cut");
            }
            tracing::debug!(component = "ingest", agent_id = %hb.agent_id, fields = n, "heartbeat fields cut to their bounds");
        }
        Err(e) => {
            state.metrics.refused("heartbeat_refused");
            return Err(ApiError::bad_request(
                "invalid_field",
                Some(e.field),
                e.message,
            ));
        }
    }
    let evicted = state.heartbeats.put(hb);
    if evicted > 0 {
        state.metrics.dropped("heartbeat_evicted", evicted as u64);
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn get_config(State(state): State<Arc<AppState>>) -> Json<ConfigView> {
    let eff = state.config.borrow().clone();
    Json(ConfigView {
        generation: eff.generation,
        log_level: eff.config.log_level.to_string(),
        load_shedding_enabled: eff.config.load_shedding_enabled,
        correlation_depth: eff.config.correlation_depth.to_string(),
        audit_level: eff.config.audit_level.to_string(),
        config_dir: state.config_dir.clone(),
        rejected: eff.rejected,
        updated_at: eff.updated_at,
    })
}

/// Replicas, partition owners and bus lag (`tapio check --all`). One node: `mode: single`.
async fn get_cluster(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    match &state.cluster {
        None => Json(serde_json::json!({
            "mode": "single",
            "replica": null,
            "partitions": 1,
            "replicas": [],
            "partition_owners": [],
        })),
        Some(c) => {
            let mut v = serde_json::to_value(c.snapshot()).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("mode".into(), "scale-out".into());
            }
            Json(v)
        }
    }
}
