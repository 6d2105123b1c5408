//! `POST /api/v1/alertmanager`: Alertmanager's webhook receiver. The payload's mapping
//! to evidence is `crate::pipeline::alertmanager`; this handler reads the body, counts the
//! alerts and hands the events to the ingest service.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::Utc;
use serde_json::json;
use tapio_store::IngestBatch;

use crate::api::AppState;
use crate::api::{read_body, reject};
use crate::error::ApiError;
use crate::metrics::AlertLabels;
use crate::pipeline::alertmanager::{AGENT_PREFIX, alert_has_control, decode, to_events};

/// `POST /api/v1/alertmanager`: one evidence event per alert; 200 after durable storage
/// with `{received, accepted, duplicates, shed}` (a re-notification is all duplicates).
pub async fn receive(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let t = Instant::now();
    let bytes = read_body(&headers, body, state.max_body_bytes)
        .await
        .map_err(|e| reject(&state, e))?;
    let now = Utc::now();
    let (hook, events) = decode(&bytes, &state.limits)
        .and_then(|hook| {
            let events = to_events(&hook, now, &state.limits)?;
            Ok((hook, events))
        })
        .map_err(|e| reject(&state, e.into()))?;
    state
        .metrics
        .observe_stage("decode", t.elapsed().as_secs_f64());
    for a in &hook.alerts {
        state
            .metrics
            .alerts_received
            .get_or_create(&AlertLabels {
                status: a.status.as_str().to_owned(),
            })
            .inc();
        if alert_has_control(a) {
            state.metrics.refused("alert_control_characters");
        }
    }
    if hook.truncated_alerts > 0 {
        tracing::warn!(
            component = "alertmanager",
            receiver = %hook.receiver,
            truncated = hook.truncated_alerts,
            "Alertmanager left alerts out of a notification (max_alerts); they are not evidence"
        );
    }
    let received = events.len();
    let first_event_id = events.first().map(|e| e.id);
    let (events, shed) = state.ingest.shed(events);
    let (accepted, duplicates) = if events.is_empty() {
        (0, 0)
    } else {
        let ack = state
            .ingest
            .store_batch(IngestBatch {
                agent_id: format!("{AGENT_PREFIX}{}", hook.receiver),
                node: String::new(),
                seq: None,
                first_event_id,
                events,
                received_at: Utc::now(),
            })
            .await?;
        (ack.accepted, ack.duplicate_events)
    };
    tracing::debug!(
        component = "alertmanager",
        receiver = %hook.receiver,
        group_key = %hook.group_key,
        received,
        accepted,
        duplicates,
        shed,
        "alert notification stored"
    );
    Ok(Json(json!({
        "received": received,
        "accepted": accepted,
        "duplicates": duplicates,
        "shed": shed,
    })))
}
