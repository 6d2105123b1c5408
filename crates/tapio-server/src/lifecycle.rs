//! People's actions on incidents: acknowledge, mitigate, resolve, reopen, notes, and
//! incidents declared by hand. Each goes to the correlator task (the engine's owner) and
//! is answered once it is stored.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use tapio_core::Incident;
use tapio_core::lifecycle::{Action, Declare};
use ulid::Ulid;

use crate::AppState;
use crate::correlator::{Command, CommandError, CommandKind};
use crate::error::ApiError;
use crate::http::{PathId, read_body};

/// Optional body of ack / mitigate / resolve / reopen.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActBody {
    #[serde(default)]
    by: Option<String>,
    /// A note recorded with the transition (e.g. what was done).
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeverityBody {
    #[serde(default)]
    by: Option<String>,
    severity: tapio_core::Severity,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    #[serde(default)]
    by: Option<String>,
    text: String,
}

fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::bad_request(
            "invalid_field",
            (path != ".").then_some(path.as_str()),
            format!("{what} body: at {path}: {}", e.inner()),
        )
    })
}

fn parse_id(id: &str) -> Result<Ulid, ApiError> {
    Ulid::from_string(id).map_err(|_| {
        ApiError::bad_request(
            "invalid_field",
            Some("id"),
            format!("{id:?} is not an incident id (a 26-character ULID)"),
        )
    })
}

async fn send(state: &AppState, kind: CommandKind) -> Result<Incident, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    state
        .commands
        .send(Command { kind, reply: tx })
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down",
            )
        })?;
    let answer = tokio::time::timeout(Duration::from_secs(15), rx)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the correlator did not answer within 15 s; retry",
            )
        })?
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down",
            )
        })?;
    answer.map_err(|e| match e {
        CommandError::NotFound(m) => ApiError::not_found(m),
        CommandError::Invalid(e) if e.code == "invalid_transition" => {
            ApiError::new(StatusCode::CONFLICT, "invalid_transition", e.message)
        }
        CommandError::Invalid(e) => ApiError::bad_request("invalid_field", None, e.message),
        CommandError::Store(m) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            format!("storing the change failed: {m}; nothing changed, retry"),
        ),
    })
}

async fn act(
    state: Arc<AppState>,
    id: String,
    headers: HeaderMap,
    body: Body,
    action: Action,
) -> Result<Json<Incident>, ApiError> {
    let id = parse_id(&id)?;
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let b: ActBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        ActBody::default()
    } else {
        parse(&bytes, action.name())?
    };
    let by = crate::auth::actor(&headers, b.by);
    let mut inc = send(
        &state,
        CommandKind::Act {
            id,
            action,
            by: by.clone(),
        },
    )
    .await?;
    if let Some(note) = b.note.filter(|n| !n.trim().is_empty()) {
        inc = send(
            &state,
            CommandKind::Act {
                id,
                action: Action::Note { text: note },
                by,
            },
        )
        .await?;
    }
    Ok(Json(inc))
}

pub async fn ack(
    State(state): State<Arc<AppState>>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Incident>, ApiError> {
    act(state, id, headers, body, Action::Ack).await
}

pub async fn mitigate(
    State(state): State<Arc<AppState>>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Incident>, ApiError> {
    act(state, id, headers, body, Action::Mitigate).await
}

pub async fn resolve(
    State(state): State<Arc<AppState>>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Incident>, ApiError> {
    act(state, id, headers, body, Action::Resolve).await
}

pub async fn reopen(
    State(state): State<Arc<AppState>>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Incident>, ApiError> {
    act(state, id, headers, body, Action::Reopen).await
}

pub async fn note(
    State(state): State<Arc<AppState>>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Incident>, ApiError> {
    let id = parse_id(&id)?;
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let b: NoteBody = parse(&bytes, "note")?;
    let inc = send(
        &state,
        CommandKind::Act {
            id,
            action: Action::Note { text: b.text },
            by: crate::auth::actor(&headers, b.by),
        },
    )
    .await?;
    Ok(Json(inc))
}

/// `POST /api/v1/incidents/{id}/severity`: a person re-classifies the incident.
pub async fn severity(
    State(state): State<Arc<AppState>>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Incident>, ApiError> {
    let id = parse_id(&id)?;
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let b: SeverityBody = parse(&bytes, "severity")?;
    let inc = send(
        &state,
        CommandKind::Act {
            id,
            action: Action::Severity {
                severity: b.severity,
                reason: b.reason,
            },
            by: crate::auth::actor(&headers, b.by),
        },
    )
    .await?;
    Ok(Json(inc))
}

/// `POST /api/v1/incidents`: declare an incident from a user report.
pub async fn declare(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Incident>), ApiError> {
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let mut d: Declare = parse(&bytes, "declare")?;
    d.by = Some(crate::auth::actor(&headers, d.by));
    let inc = send(&state, CommandKind::Declare(d)).await?;
    Ok((StatusCode::CREATED, Json(inc)))
}

/// `GET /api/v1/incidents/{id}/timeline`.
pub async fn timeline(
    State(state): State<Arc<AppState>>,
    PathId(id): PathId,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ulid = parse_id(&id)?;
    let inc = state
        .store
        .get_incident(ulid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no incident {id}")))?;
    Ok(Json(serde_json::json!({
        "id": inc.id,
        "title": inc.title,
        "status": inc.status,
        "severity": inc.severity,
        "timeline": inc.timeline,
    })))
}
