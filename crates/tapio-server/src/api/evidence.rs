//! Evidence in and out: `POST /api/v1/evidence` (agents' batches), `POST /api/v1/events`
//! (one event from any producer), `GET /api/v1/evidence` and the pods a node ran (`GET
//! /api/v1/pods`). Storing goes through the ingest service (`crate::pipeline::ingest`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use serde_json::json;
use tapio_proto::IngestAck;
use tapio_store::IngestBatch;

use crate::api::AppState;
use crate::api::{collect_body, content_encoding, decode_body, parse_page, read_body};
use crate::error::ApiError;

/// A refused evidence body, counted (`Ingest::reject`).
pub fn reject(state: &AppState, e: ApiError) -> ApiError {
    state.ingest.reject(e)
}

pub async fn post_evidence(
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
    let (batch, first_event_id, events, shed) =
        crate::security::protect::cpu(&state.protect, move || {
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

pub async fn post_event(
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

/// `GET /api/v1/pods?node=NAME`: the node's pods as a Kubernetes `PodList`, from the live
/// watches, trimmed to what an agent needs to attribute kernel evidence (the agent's
/// `--pods` source; docs/kubernetes.md).
pub async fn node_pods(
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
pub async fn list_evidence(
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
    let (after, limit) = parse_page(&q, 5000)?;
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
