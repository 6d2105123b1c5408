//! The security audit log: `GET /api/v1/audit`, filtered and paged.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use chrono::Utc;
use serde_json::json;

use crate::api::AppState;
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
