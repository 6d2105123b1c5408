//! The security audit log: `GET /api/v1/audit`, filtered and paged.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use chrono::Utc;
use serde_json::json;

use crate::api::{AppState, parse_page};
use crate::error::ApiError;

/// `GET /api/v1/audit?since=24h|RFC3339&after=POS&limit=N` (admin): the audit trail in
/// storage order (oldest first), one page: `limit` (1–100000, default 1000) records after
/// position `after` (0, the default: from the start). The answer's `next` is the `after`
/// of the following page; `more` says whether there may be one (a full page).
pub async fn get_audit(
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
    let (after, limit) = parse_page(&q, 100_000)?;
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
