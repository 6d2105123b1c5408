//! Silences and maintenance windows through the API (`tapio silence add|list|expire`).
//! The list in force is `crate::silences`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;
use tapio_core::duration::parse_duration;
use tapio_core::silence::{Matchers, Silence};
use ulid::Ulid;

use crate::api::AppState;
use crate::api::{PathId, read_body};
use crate::error::ApiError;
use crate::silences::LIST_ENDED_WITHIN_HOURS;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    matchers: Matchers,
    /// How long, e.g. `2h` (or `ends_at`).
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    ends_at: Option<DateTime<Utc>>,
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    comment: Option<String>,
}

fn bad(field: &str, m: String) -> ApiError {
    ApiError::bad_request("invalid_field", Some(field), m)
}

async fn persist(state: &AppState, s: &Silence) -> Result<(), ApiError> {
    let body = serde_json::to_string(s).map_err(|e| bad("silence", e.to_string()))?;
    state.store.silence_put(s.id, s.ends_at, body).await?;
    if let Ok(mut list) = state.silences.write() {
        list.retain(|x| x.id != s.id);
        list.push(s.clone());
    }
    Ok(())
}

pub async fn add(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Silence>), ApiError> {
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    crate::security::bounds::check_body_text(&bytes, "silence")?;
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    let b: AddBody = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        bad(&path, format!("silence body: at {path}: {}", e.inner()))
    })?;
    b.matchers.validate().map_err(|e| bad("matchers", e))?;
    let now = Utc::now();
    let ends_at = match (&b.duration, b.ends_at) {
        (Some(d), None) => {
            let dur = parse_duration(d)
                .ok()
                .filter(|d| !d.is_zero())
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .ok_or_else(|| {
                    bad(
                        "duration",
                        format!("{d:?} is not a duration like 2h or 30m"),
                    )
                })?;
            // Checked: a duration past the calendar's end is refused, not a panic, and so
            // is one past year 9999 (RFC 3339 times, as the silence is stored, end there).
            now.checked_add_signed(dur)
                .filter(|t| t.year() <= 9999)
                .ok_or_else(|| {
                    bad(
                        "duration",
                        format!("{d:?} ends after the year 9999; use a shorter duration"),
                    )
                })?
        }
        (None, Some(t)) if t > now => t,
        (None, Some(t)) => return Err(bad("ends_at", format!("{t} is not in the future"))),
        _ => {
            return Err(bad(
                "duration",
                "give either duration (e.g. \"2h\") or ends_at".into(),
            ));
        }
    };
    crate::security::bounds::check_silence_end(ends_at, now)?;
    let by = crate::security::auth::actor(&headers, b.by);
    tapio_core::lifecycle::check_by(&by).map_err(|e| bad("by", e.message))?;
    let s = Silence {
        id: Ulid::new(),
        matchers: b.matchers,
        starts_at: now,
        ends_at,
        created_by: by,
        comment: b.comment.unwrap_or_default().chars().take(1024).collect(),
        expired_at: None,
    };
    persist(&state, &s).await?;
    tracing::info!(silence = %s.id, ends_at = %s.ends_at, by = %s.created_by, "silence added");
    Ok((StatusCode::CREATED, Json(s)))
}

pub async fn list(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let now = Utc::now();
    let list: Vec<serde_json::Value> = state
        .silences
        .read()
        .map(|l| l.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.ends_at > now - chrono::Duration::hours(LIST_ENDED_WITHIN_HOURS))
        .map(|s| {
            let st = if s.active(now) {
                "active"
            } else if s.starts_at > now {
                "pending"
            } else {
                "expired"
            };
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            v["state"] = st.into();
            v
        })
        .collect();
    Json(serde_json::json!({"count": list.len(), "silences": list}))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpireBody {
    #[serde(default)]
    by: Option<String>,
}

pub async fn expire(
    State(state): State<Arc<AppState>>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Silence>, ApiError> {
    let id = tapio_proto::bounds::parse_ulid(&id).map_err(|why| {
        ApiError::bad_request("invalid_id", Some("id"), format!("not a silence id: {why}"))
    })?;
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let b: ExpireBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        ExpireBody::default()
    } else {
        serde_json::from_slice(&bytes).map_err(|e| bad("body", e.to_string()))?
    };
    let found = state
        .silences
        .read()
        .ok()
        .and_then(|l| l.iter().find(|s| s.id == id).cloned());
    let Some(mut s) = found else {
        return Err(ApiError::not_found(format!("no silence {id}")));
    };
    let now = Utc::now();
    if s.expired_at.is_none() {
        s.expired_at = Some(now);
        s.ends_at = s.ends_at.min(now);
        persist(&state, &s).await?;
        tracing::info!(silence = %s.id, by = %b.by.as_deref().unwrap_or("api"), "silence expired");
    }
    Ok(Json(s))
}
