//! People's actions on incidents: acknowledge, mitigate, resolve, reopen, notes, and
//! incidents declared by hand. Each goes to the correlator task (the engine's owner) and
//! is answered once it is stored — or, when the correlator is refused a place in its
//! queue, refused with nothing queued (503), or, when it is slow, answered 202 Accepted
//! with an operation to follow (`GET /api/v1/operations/{id}`): never "503, retry" for a
//! change that then happens. Idempotency keys (`Idempotency-Key`, see `auth::guard`) make
//! a client's retry return the first answer instead of acting twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tapio_core::Incident;
use tapio_core::lifecycle::{Action, Declare};
use tokio::sync::oneshot;
use ulid::Ulid;

use crate::api::AppState;
use crate::api::{PathId, read_body};
use crate::error::ApiError;
use crate::pipeline::correlator::{Command, CommandError, CommandKind};

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
    crate::security::bounds::check_body_text(bytes, what)?;
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
    tapio_proto::bounds::parse_ulid(id).map_err(|why| {
        ApiError::bad_request(
            "invalid_id",
            Some("id"),
            format!("not an incident id: {why}"),
        )
    })
}

/// How long a person's action waits for its result, by default, before it is answered
/// 202 Accepted with an operation to follow (`GET /api/v1/operations/{id}`);
/// `--action-wait` sets it.
pub const ACTION_WAIT: Duration = Duration::from_secs(10);

/// How long an action waits for a place in the correlator's queue. Past it the action is
/// refused (503) with nothing queued: it can never happen later.
const QUEUE_WAIT: Duration = Duration::from_secs(2);

/// Operations (actions answered 202) kept for `GET /api/v1/operations/{id}`.
const MAX_OPERATIONS: usize = 10_000;
/// Idempotency keys remembered (per user), and for how long.
pub const MAX_IDEMPOTENCY_KEYS: usize = 10_000;
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The outcome of an action answered 202 before its result was known.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Operation {
    /// Queued for the correlator; not applied yet.
    Pending,
    /// Applied or refused: the HTTP status and body the action would have answered.
    Done {
        status: u16,
        result: serde_json::Value,
    },
}

/// An answer kept for an idempotency key.
#[derive(Debug, Clone)]
pub struct StoredAnswer {
    pub status: u16,
    pub headers: Vec<(axum::http::HeaderName, axum::http::HeaderValue)>,
    pub body: axum::body::Bytes,
}

struct KeyEntry {
    fingerprint: [u8; 32],
    at: Instant,
    seq: u64,
    /// None while the first request is still running.
    answer: Option<StoredAnswer>,
}

#[derive(Default)]
struct Keys {
    map: HashMap<(String, String), KeyEntry>,
    /// Insertion order, for eviction of the oldest.
    order: BTreeMap<u64, (String, String)>,
    next: u64,
}

/// What an idempotency key says about a request.
pub enum KeyCheck {
    /// First use: go on, then `finish_key` (or `forget_key`).
    New,
    /// The same request was answered: answer it the same again.
    Replay(StoredAnswer),
    /// The same request is still running.
    InProgress,
    /// The key was used with a different request.
    Mismatch,
}

/// People's actions in flight and answered: operations and idempotency keys (bounded).
pub struct Actions {
    ops: Mutex<BTreeMap<Ulid, (Instant, Operation)>>,
    keys: Mutex<Keys>,
    /// How long an action waits for its result before 202.
    wait: Duration,
}

impl Default for Actions {
    fn default() -> Self {
        Self::new(ACTION_WAIT)
    }
}

impl Actions {
    pub fn new(wait: Duration) -> Self {
        Self {
            ops: Mutex::default(),
            keys: Mutex::default(),
            wait,
        }
    }

    fn op_start(&self, id: Ulid) {
        if let Ok(mut ops) = self.ops.lock() {
            while ops.len() >= MAX_OPERATIONS {
                ops.pop_first();
            }
            ops.insert(id, (Instant::now(), Operation::Pending));
        }
    }

    fn op_finish(&self, id: Ulid, status: u16, result: serde_json::Value) {
        if let Ok(mut ops) = self.ops.lock()
            && let Some(e) = ops.get_mut(&id)
        {
            e.1 = Operation::Done { status, result };
        }
    }

    fn op_forget(&self, id: Ulid) {
        if let Ok(mut ops) = self.ops.lock() {
            ops.remove(&id);
        }
    }

    pub fn operation(&self, id: Ulid) -> Option<Operation> {
        self.ops.lock().ok()?.get(&id).map(|(_, o)| o.clone())
    }

    /// Check (and claim) `key` of `user` for a request whose method, route and body hash
    /// to `fingerprint`. Expired and overflowing keys are forgotten; returns also how many.
    pub fn check_key(&self, user: &str, key: &str, fingerprint: [u8; 32]) -> (KeyCheck, u64) {
        let Ok(mut k) = self.keys.lock() else {
            return (KeyCheck::New, 0);
        };
        let now = Instant::now();
        let mut evicted = 0;
        // Expired first, then the oldest beyond the bound.
        while let Some((&seq, id)) = k.order.first_key_value() {
            let old = k.map.get(id).is_none_or(|e| {
                e.seq != seq || now.saturating_duration_since(e.at) >= IDEMPOTENCY_WINDOW
            });
            if !old && k.map.len() < MAX_IDEMPOTENCY_KEYS {
                break;
            }
            let id = id.clone();
            k.order.remove(&seq);
            if k.map.get(&id).is_some_and(|e| e.seq == seq) {
                k.map.remove(&id);
                evicted += 1;
            }
        }
        let id = (user.to_owned(), key.to_owned());
        if let Some(e) = k.map.get(&id) {
            let check = if e.fingerprint != fingerprint {
                KeyCheck::Mismatch
            } else {
                match &e.answer {
                    Some(a) => KeyCheck::Replay(a.clone()),
                    None => KeyCheck::InProgress,
                }
            };
            return (check, evicted);
        }
        let seq = k.next;
        k.next += 1;
        k.order.insert(seq, id.clone());
        k.map.insert(
            id,
            KeyEntry {
                fingerprint,
                at: now,
                seq,
                answer: None,
            },
        );
        (KeyCheck::New, evicted)
    }

    /// Keep the answer of a claimed key.
    pub fn finish_key(&self, user: &str, key: &str, answer: StoredAnswer) {
        if let Ok(mut k) = self.keys.lock()
            && let Some(e) = k.map.get_mut(&(user.to_owned(), key.to_owned()))
        {
            e.answer = Some(answer);
        }
    }

    /// Release a claimed key: the request changed nothing and may be sent again.
    pub fn forget_key(&self, user: &str, key: &str) {
        if let Ok(mut k) = self.keys.lock()
            && let Some(e) = k.map.remove(&(user.to_owned(), key.to_owned()))
        {
            k.order.remove(&e.seq);
        }
    }
}

fn command_error(e: CommandError) -> ApiError {
    match e {
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
    }
}

fn shutting_down() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "shutting_down",
        "the server is shutting down; nothing was queued, retry",
    )
}

/// Queue one command, waiting at most `QUEUE_WAIT` for a place: refused means nothing
/// was queued.
async fn enqueue(
    state: &AppState,
    kind: CommandKind,
) -> Result<oneshot::Receiver<Result<Incident, CommandError>>, ApiError> {
    let permit = match tokio::time::timeout(QUEUE_WAIT, state.commands.reserve()).await {
        Ok(Ok(p)) => p,
        Ok(Err(_)) => return Err(shutting_down()),
        Err(_) => {
            state.metrics.action("refused_queue_full");
            return Err(ApiError {
                retry_after: Some(5),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    format!(
                        "the correlator's queue is full ({} actions waiting); nothing was queued or changed, retry",
                        crate::pipeline::correlator::COMMAND_QUEUE
                    ),
                )
            });
        }
    };
    let (tx, rx) = oneshot::channel();
    permit.send(Command { kind, reply: tx });
    Ok(rx)
}

async fn outcome(
    rx: oneshot::Receiver<Result<Incident, CommandError>>,
) -> Result<Incident, ApiError> {
    rx.await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server stopped before the action was carried out; check the incident before retrying",
            )
        })?
        .map_err(command_error)
}

/// Carry out `kinds` in order (an action and its note). The first is queued here, so a
/// refusal means nothing changed; from then on the rest runs in its own task to the end,
/// whatever happens to this request. Answered with the result, or 202 Accepted with an
/// operation id when it takes longer than `--action-wait`.
async fn perform(state: &Arc<AppState>, kinds: Vec<CommandKind>, created: bool) -> Response {
    let mut kinds = kinds.into_iter();
    let Some(first) = kinds.next() else {
        return ApiError::bad_request("invalid_field", None, "nothing to do").into_response();
    };
    let rx = match enqueue(state, first).await {
        Ok(rx) => rx,
        Err(e) => return e.into_response(),
    };
    let op = Ulid::new();
    state.actions.op_start(op);
    let (done_tx, done_rx) = oneshot::channel();
    let st = state.clone();
    tokio::spawn(async move {
        let mut result = outcome(rx).await;
        for kind in kinds {
            if result.is_err() {
                break;
            }
            result = match enqueue(&st, kind).await {
                Ok(rx) => outcome(rx).await,
                Err(e) => Err(e),
            };
        }
        let (status, body) = match &result {
            Ok(inc) => (
                if created { 201 } else { 200 },
                serde_json::to_value(inc).unwrap_or_default(),
            ),
            Err(e) => (
                e.status.as_u16(),
                serde_json::json!({"error": {"code": e.code, "message": e.message}}),
            ),
        };
        st.actions.op_finish(op, status, body);
        let _ = done_tx.send(result);
    });
    let wait = state.actions.wait;
    match tokio::time::timeout(wait, done_rx).await {
        Ok(Ok(result)) => {
            state.actions.op_forget(op);
            if result.is_ok() {
                state.metrics.action("applied");
            }
            match result {
                Ok(inc) if created => (StatusCode::CREATED, Json(inc)).into_response(),
                Ok(inc) => Json(inc).into_response(),
                Err(e) => e.into_response(),
            }
        }
        Ok(Err(_)) => shutting_down().into_response(),
        Err(_) => {
            state.metrics.action("accepted_pending");
            let location = format!("/api/v1/operations/{op}");
            (
                StatusCode::ACCEPTED,
                [(axum::http::header::LOCATION, location.clone())],
                Json(serde_json::json!({
                    "operation": op.to_string(),
                    "state": "pending",
                    "location": location,
                    "message": format!(
                        "accepted: queued for the correlator, which has not answered within {} ms; it will be applied — follow GET {location}, do not resend (or resend with the same Idempotency-Key)",
                        wait.as_millis()
                    ),
                })),
            )
                .into_response()
        }
    }
}

/// `GET /api/v1/operations/{id}`: the outcome of an action answered 202.
pub async fn operation(
    State(state): State<Arc<AppState>>,
    PathId(id): PathId,
) -> Result<Json<serde_json::Value>, ApiError> {
    let op = Ulid::from_string(&id).map_err(|_| {
        ApiError::bad_request(
            "invalid_field",
            Some("id"),
            format!("{id:?} is not an operation id (a 26-character ULID from a 202 answer)"),
        )
    })?;
    let o = state.actions.operation(op).ok_or_else(|| {
        ApiError::not_found(format!(
            "no operation {id} (operations are kept in memory, the newest {MAX_OPERATIONS}, until a restart)"
        ))
    })?;
    let mut v = serde_json::to_value(&o).unwrap_or_default();
    v["operation"] = id.into();
    Ok(Json(v))
}

async fn act(
    state: Arc<AppState>,
    id: String,
    headers: HeaderMap,
    body: Body,
    action: Action,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let b: ActBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        ActBody::default()
    } else {
        parse(&bytes, action.name())?
    };
    let by = crate::security::auth::actor(&headers, b.by);
    let mut kinds = vec![CommandKind::Act {
        id,
        action,
        by: by.clone(),
    }];
    if let Some(note) = b.note.filter(|n| !n.trim().is_empty()) {
        kinds.push(CommandKind::Act {
            id,
            action: Action::Note { text: note },
            by,
        });
    }
    Ok(perform(&state, kinds, false).await)
}

/// `POST /api/v1/incidents/{id}/ack|mitigate|resolve|reopen`: one handler shape for the
/// four actions that take an optional note, the action fixed by the route.
pub fn act_route(action: Action) -> axum::routing::MethodRouter<Arc<AppState>> {
    axum::routing::post(
        move |State(state): State<Arc<AppState>>,
              PathId(id): PathId,
              headers: HeaderMap,
              body: Body| {
            let action = action.clone();
            async move { act(state, id, headers, body, action).await }
        },
    )
}

pub async fn note(
    State(state): State<Arc<AppState>>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let b: NoteBody = parse(&bytes, "note")?;
    let kind = CommandKind::Act {
        id,
        action: Action::Note { text: b.text },
        by: crate::security::auth::actor(&headers, b.by),
    };
    Ok(perform(&state, vec![kind], false).await)
}

/// `POST /api/v1/incidents/{id}/severity`: a person re-classifies the incident.
pub async fn severity(
    State(state): State<Arc<AppState>>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let b: SeverityBody = parse(&bytes, "severity")?;
    let kind = CommandKind::Act {
        id,
        action: Action::Severity {
            severity: b.severity,
            reason: b.reason,
        },
        by: crate::security::auth::actor(&headers, b.by),
    };
    Ok(perform(&state, vec![kind], false).await)
}

/// `POST /api/v1/incidents`: declare an incident from a user report.
pub async fn declare(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let mut d: Declare = parse(&bytes, "declare")?;
    d.by = Some(crate::security::auth::actor(&headers, d.by));
    Ok(perform(&state, vec![CommandKind::Declare(d)], true).await)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16) -> StoredAnswer {
        StoredAnswer {
            status,
            headers: Vec::new(),
            body: axum::body::Bytes::from_static(b"{}"),
        }
    }

    #[test]
    fn a_key_answers_the_first_answer_and_refuses_another_request() {
        let a = Actions::default();
        let (c, _) = a.check_key("rita", "k1", [1; 32]);
        assert!(matches!(c, KeyCheck::New));
        let (c, _) = a.check_key("rita", "k1", [1; 32]);
        assert!(matches!(c, KeyCheck::InProgress), "not carried out twice");
        a.finish_key("rita", "k1", answer(201));
        let (c, _) = a.check_key("rita", "k1", [1; 32]);
        assert!(matches!(c, KeyCheck::Replay(r) if r.status == 201));
        let (c, _) = a.check_key("rita", "k1", [2; 32]);
        assert!(matches!(c, KeyCheck::Mismatch));
        let (c, _) = a.check_key("adam", "k1", [2; 32]);
        assert!(matches!(c, KeyCheck::New), "keys are per user");
        a.forget_key("adam", "k1");
        let (c, _) = a.check_key("adam", "k1", [3; 32]);
        assert!(
            matches!(c, KeyCheck::New),
            "a released key may be used again"
        );
    }

    #[test]
    fn keys_are_bounded_and_evictions_counted() {
        let a = Actions::default();
        let mut evicted = 0;
        for i in 0..MAX_IDEMPOTENCY_KEYS + 5 {
            evicted += a.check_key("rita", &format!("k{i}"), [0; 32]).1;
        }
        assert_eq!(evicted, 5);
        assert_eq!(a.keys.lock().expect("lock").map.len(), MAX_IDEMPOTENCY_KEYS);
        // The oldest went first.
        let (c, _) = a.check_key("rita", "k0", [9; 32]);
        assert!(matches!(c, KeyCheck::New));
    }
}
