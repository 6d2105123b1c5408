//! Agents: their self-reports (`POST /api/v1/agents/heartbeat`) and the fleet view (`GET
//! /api/v1/agents`), paged.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::api::AppState;
use crate::api::read_body;
use crate::error::ApiError;

/// `GET /api/v1/agents?limit=N&after=AGENT_ID`: senders in agent-id order, one page at a
/// time (`next` is the `after` of the following page, absent on the last one). Heartbeats
/// are serialized from the kept reports under no copy of them.
pub async fn list_agents(
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
pub async fn post_heartbeat(
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
