//! The request guard: the middleware that applies security to every API request —
//! blocked addresses, the token, rate limits, the role (`crate::security::auth`), the audit
//! record (`crate::security::audit`) — and honours `Idempotency-Key` on people's
//! mutations (`crate::api::lifecycle`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::AppState;
use crate::error::ApiError;
use crate::security::audit::{AuditKind, AuditRecord};
use crate::security::auth::{Need, USER_HEADER, allows, need};
use tapio_core::auth::Role;

/// A request with more than one `Authorization` header is refused: which one counts
/// would differ between a proxy and this server. `Some(answer)` to send instead.
pub fn repeated_authorization(state: &AppState, req: &Request) -> Option<Response> {
    let n = req.headers().get_all("authorization").iter().count();
    if n <= 1 {
        return None;
    }
    state.metrics.refused("repeated_authorization");
    tracing::warn!(component = "security-auditor", headers = n, path = %req.uri().path(), "request refused: more than one Authorization header");
    Some(
        ApiError::bad_request(
            "repeated_authorization",
            None,
            format!(
                "the request has {n} Authorization headers; send exactly one: Authorization: Bearer TOKEN"
            ),
        )
        .into_response(),
    )
}

fn bearer(req: &Request) -> Option<&str> {
    let mut all = req.headers().get_all("authorization").iter();
    let first = all.next()?;
    if all.next().is_some() {
        return None;
    }
    let v = first.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The middleware: authenticate, authorize, audit.
///
/// Order: blocked addresses; the token; requests without a valid token are limited per
/// client address (`--rate-limit-unauthenticated`, every route, ingest included) and
/// their failures folded in the audit (`Audit::auth_failure`); then the per-client and
/// per-user limits of people's routes (a valid agent is bounded by load shedding only:
/// it must never be told to come back later for evidence it has spooled); the role.
/// A mutation then runs in its own task, which also writes its audit record: a client
/// that drops the connection cancels neither the change nor its record. People's
/// mutations honour `Idempotency-Key` (see [`idempotent`]). About 160 lines: the order
/// above, step by step; authentication and authorization are functions of their own.
pub async fn guard(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mutating = !(method == Method::GET || method == Method::HEAD);
    req.headers_mut().remove(USER_HEADER);
    if let Some(refused) = repeated_authorization(&state, &req) {
        return refused;
    }
    let Some(route) = route else {
        // Unmatched: the 404/405 answers reveal nothing and need no audit.
        return next.run(req).await;
    };
    let need = need(&method, &route, state.auth.public_metrics);
    if need == Need::Public {
        // Public routes are not audited (health probes every few seconds).
        return next.run(req).await;
    }
    let now = std::time::Instant::now();
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(ip) = ip
        && state.rate.blocklist.blocked(ip)
    {
        // Folded like authentication failures: a blocked address's flood is a few rows.
        state.audit.auth_failure(AuditRecord::new(
            AuditKind::Denied,
            None,
            &client,
            &method,
            &route,
            &path,
            403,
            "client address blocked (blocked-clients)",
        ));
        return ApiError::forbidden(format!(
            "client address {ip} is blocked by the blocked-clients config entry"
        ))
        .into_response();
    }
    let who = Who {
        client: &client,
        method: &method,
        route: &route,
        path: &path,
    };
    let caller = match authenticate(&state, &req, &who, now) {
        Ok(c) => c,
        Err(refused) => return refused.into_response(),
    };
    if let Err(refused) = limit_and_authorize(&state, &who, need, caller.as_ref(), now) {
        return refused.into_response();
    }
    if let Some(c) = &caller {
        req.extensions_mut().insert(c.clone());
        if let Ok(v) = axum::http::HeaderValue::from_str(&c.name) {
            req.headers_mut().insert(USER_HEADER, v);
        }
    }
    let record = move |status: u16, detail: &str| {
        AuditRecord::new(
            if mutating {
                AuditKind::Mutation
            } else {
                AuditKind::Read
            },
            caller.as_ref(),
            &client,
            &method,
            &route,
            &path,
            status,
            detail,
        )
    };
    if !mutating {
        let resp = next.run(req).await;
        state.audit.record(record(resp.status().as_u16(), ""));
        return resp;
    }
    // People's mutations: an idempotency key may answer (or refuse) before anything runs.
    let mut key = None;
    if matches!(need, Need::Role(_)) {
        let user = req
            .headers()
            .get(USER_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned();
        match idempotent(&state, req, &user).await {
            Ok((r, k)) => {
                req = r;
                key = k.map(|k| (user, k));
            }
            Err((resp, detail)) => {
                state
                    .audit
                    .record_wait(record(resp.status().as_u16(), &detail))
                    .await;
                return resp;
            }
        }
    }
    let st = state.clone();
    let task = tokio::spawn(async move {
        let resp = next.run(req).await;
        let status = resp.status().as_u16();
        let resp = match &key {
            Some((user, k)) if status >= 500 || status == 429 => {
                // Nothing was done (refused before it was queued): the key may be reused.
                st.actions.forget_key(user, k);
                resp
            }
            Some((user, k)) => {
                let (parts, body) = resp.into_parts();
                let bytes = http_body_util::BodyExt::collect(body)
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let keep = [
                    axum::http::header::CONTENT_TYPE,
                    axum::http::header::LOCATION,
                    axum::http::header::RETRY_AFTER,
                ];
                let headers = keep
                    .iter()
                    .filter_map(|h| parts.headers.get(h).map(|v| (h.clone(), v.clone())))
                    .collect();
                st.actions.finish_key(
                    user,
                    k,
                    crate::api::lifecycle::StoredAnswer {
                        status,
                        headers,
                        body: bytes.clone(),
                    },
                );
                Response::from_parts(parts, axum::body::Body::from(bytes))
            }
            None => resp,
        };
        st.audit.record_wait(record(status, "")).await;
        resp
    });
    task.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "a request's task failed");
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the request failed inside the server; check the result before retrying",
        )
        .into_response()
    })
}

/// Longest accepted `Idempotency-Key`.
const MAX_KEY_LEN: usize = 255;

/// `Idempotency-Key` on people's mutations (actions, declare, notes, silences): the same
/// key from the same user within `lifecycle::IDEMPOTENCY_WINDOW` gets the first answer
/// again (replayed, header `Idempotent-Replayed: true`) and is never carried out twice; a
/// key reused for a different request (method, path or body) is refused 422, one still
/// being carried out 409. Returns the request (its body read, to compare) and the key
/// claimed, or the answer to give instead with its audit detail.
async fn idempotent(
    state: &AppState,
    req: Request,
    user: &str,
) -> Result<(Request, Option<String>), (Response, String)> {
    let Some(raw) = req.headers().get("idempotency-key").cloned() else {
        return Ok((req, None));
    };
    let key = match raw.to_str() {
        Ok(k) if !k.trim().is_empty() && k.len() <= MAX_KEY_LEN => k.trim().to_owned(),
        _ => {
            let e = ApiError::bad_request(
                "invalid_header",
                Some("Idempotency-Key"),
                format!(
                    "Idempotency-Key must be 1-{MAX_KEY_LEN} visible ASCII characters (e.g. a UUID); got {} bytes",
                    raw.len()
                ),
            );
            return Err((e.into_response(), "invalid Idempotency-Key".into()));
        }
    };
    let (parts, body) = req.into_parts();
    let bytes = match crate::body::collect_body(&parts.headers, body, state.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return Err((e.into_response(), "body not read".into())),
    };
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    sha2::Digest::update(&mut h, parts.method.as_str().as_bytes());
    sha2::Digest::update(&mut h, b"\n");
    sha2::Digest::update(&mut h, parts.uri.path().as_bytes());
    sha2::Digest::update(&mut h, b"\n");
    sha2::Digest::update(&mut h, &bytes);
    let fingerprint: [u8; 32] = sha2::Digest::finalize(h).into();
    let (check, evicted) = state.actions.check_key(user, &key, fingerprint);
    if evicted > 0 {
        state
            .metrics
            .actions
            .get_or_create(&crate::metrics::ReasonLabel {
                reason: "key_evicted".into(),
            })
            .inc_by(evicted);
    }
    use crate::api::lifecycle::KeyCheck;
    match check {
        KeyCheck::New => Ok((
            Request::from_parts(parts, axum::body::Body::from(bytes)),
            Some(key),
        )),
        KeyCheck::Replay(a) => {
            state.metrics.action("idempotent_replay");
            let mut resp = Response::new(axum::body::Body::from(a.body));
            *resp.status_mut() =
                axum::http::StatusCode::from_u16(a.status).unwrap_or(axum::http::StatusCode::OK);
            for (k, v) in a.headers {
                resp.headers_mut().insert(k, v);
            }
            resp.headers_mut().insert(
                "idempotent-replayed",
                axum::http::HeaderValue::from_static("true"),
            );
            Err((resp, format!("idempotent replay (Idempotency-Key {key:?})")))
        }
        KeyCheck::Mismatch => {
            state.metrics.action("idempotency_mismatch");
            let e = ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                format!(
                    "Idempotency-Key {key:?} was already used by {user} for a different request (method, path or body) in the last 24 h; send a fresh key for a new request"
                ),
            );
            Err((e.into_response(), "Idempotency-Key reused".into()))
        }
        KeyCheck::InProgress => {
            state.metrics.action("idempotency_in_progress");
            let e = ApiError {
                retry_after: Some(2),
                ..ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    "idempotency_key_in_progress",
                    format!(
                        "the request with Idempotency-Key {key:?} is still being carried out; retry with the same key in a few seconds for its answer"
                    ),
                )
            };
            Err((e.into_response(), "Idempotency-Key in progress".into()))
        }
    }
}

/// Who asks for what: the parts of a request its audit record names.
struct Who<'a> {
    client: &'a str,
    method: &'a Method,
    route: &'a str,
    path: &'a str,
}

/// The caller behind the request's token (`None` with authentication off), or the
/// answer for a missing or invalid token: 401, or 429 past the per-address limit for
/// requests without a valid token — each failure folded into the audit.
fn authenticate(
    state: &AppState,
    req: &Request,
    who: &Who<'_>,
    now: std::time::Instant,
) -> Result<Option<crate::security::auth::Caller>, ApiError> {
    if !state.auth.enabled() {
        return Ok(None);
    }
    let why = match bearer(req).map(|t| state.auth.authenticate(t)) {
        Some(Some(c)) => return Ok(Some(c)),
        Some(None) => "unknown or revoked token",
        None => "no bearer token",
    };
    // No valid token: strictly limited per address, on every route.
    let fail = |status: u16| {
        AuditRecord::new(
            AuditKind::AuthFailure,
            None,
            who.client,
            who.method,
            who.route,
            who.path,
            status,
            why,
        )
    };
    if let Err(wait) = state.rate.unauthenticated.check(who.client, now) {
        state.metrics.rate_limited("unauthenticated");
        state.audit.auth_failure(fail(429));
        return Err(ApiError::too_many(
            format!(
                "too many requests without a valid token from {}; retry in {wait} s with Authorization: Bearer TOKEN",
                who.client
            ),
            wait,
        ));
    }
    state.audit.auth_failure(fail(401));
    Err(ApiError::unauthorized(if why == "no bearer token" {
        "this API needs a token: Authorization: Bearer TOKEN (tapio --token / TAPIO_TOKEN)"
    } else {
        "the token is not valid (unknown, or its user was removed)"
    }))
}

/// The per-client and per-user rate limits of people's routes (agents are bounded by load
/// shedding only), then the role: `Err` is the refusal (429 or 403, audited).
fn limit_and_authorize(
    state: &AppState,
    who: &Who<'_>,
    need: Need,
    caller: Option<&crate::security::auth::Caller>,
    now: std::time::Instant,
) -> Result<(), ApiError> {
    let agent = caller.is_some_and(|c| c.role == Role::Agent);
    // Evidence ingest is bounded by load shedding instead (a node's agent must never be
    // told to come back later for evidence it has spooled).
    if need != Need::Ingest
        && !agent
        && let Err(wait) = state.rate.per_client.check(who.client, now)
    {
        state.metrics.rate_limited("client");
        return Err(ApiError::too_many(
            format!("too many requests from {}; retry in {wait} s", who.client),
            wait,
        ));
    }
    if let Some(c) = caller {
        if c.role != Role::Agent
            && let Err(wait) = state.rate.per_token.check(&c.name, now)
        {
            state.metrics.rate_limited("token");
            return Err(ApiError::too_many(
                format!("too many requests for user {}; retry in {wait} s", c.name),
                wait,
            ));
        }
        if !allows(c.role, need) {
            let why = match need {
                Need::Ingest => "needs an agent or admin token".to_owned(),
                Need::Role(r) => format!("needs role {} or above", r.as_str()),
                Need::Public => String::new(),
            };
            state.audit.record(AuditRecord::new(
                AuditKind::Denied,
                Some(c),
                who.client,
                who.method,
                who.route,
                who.path,
                403,
                &why,
            ));
            return Err(ApiError::forbidden(format!(
                "user {} (role {}) may not {} {}: {why}",
                c.name,
                c.role.as_str(),
                who.method,
                who.route
            )));
        }
    }
    Ok(())
}
