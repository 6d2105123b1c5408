//! Reading incidents: `GET /api/v1/incidents`, `/incidents/summary` and `/incidents/{id}`.
//! People's actions on them are `crate::api::lifecycle`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use serde_json::json;
use tapio_core::{Severity, Status};
use tapio_store::IncidentFilter;

use crate::api::AppState;
use crate::api::{PathId, parse_list, parse_since};
use crate::error::ApiError;

pub async fn list_incidents(
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
pub async fn incident_summary(
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

pub async fn get_incident(
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
