//! Users, tokens and roles (docs/security.md).
//!
//! `--auth-dir DIR` is a directory with one file per user — the mounted `tapio-auth`
//! Secret, whose keys are user names. A file holds:
//!
//! ```text
//! role: responder
//! token-sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//! ```
//!
//! The directory is re-read every second, by path (Kubernetes swaps Secret volumes through
//! a `..data` symlink), so deleting a user's key refuses that user within seconds, without
//! a restart. Only token hashes are stored; requests carry `Authorization: Bearer TOKEN`;
//! the hash of the presented token is compared in constant time with every user's hash.
//! Tokens are never logged.
//!
//! Without `--auth-dir` authentication is off (the one-machine quick start) and the server
//! says so at start and in `/health`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

pub use tapio_core::auth::{Role, User, hash_token, parse_user, user_file, valid_user_name};

use crate::AppState;
use crate::audit::{AuditKind, AuditRecord};
use crate::error::ApiError;

/// The authenticated caller, for handlers (`by` defaults to the user's name).
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// Read every user of the directory. A file that does not parse is left out (that user
/// is refused: fail closed) and reported.
pub fn load_dir(dir: &Path) -> (Vec<User>, Vec<String>) {
    let mut users = Vec::new();
    let mut errors = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(format!("{}: {e}", dir.display()));
            return (users, errors);
        }
    };
    let mut names: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        // Kubernetes' `..data`, `..2026_…` bookkeeping entries and hidden files.
        .filter(|(n, _)| !n.starts_with('.'))
        .collect();
    names.sort();
    for (name, path) in names {
        if !path.is_file() {
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => match parse_user(&name, &text) {
                Ok(u) => users.push(u),
                Err(e) => errors.push(format!("{}: {e}", path.display())),
            },
            Err(e) => errors.push(format!("{}: {e}", path.display())),
        }
    }
    (users, errors)
}

/// The live user list.
pub struct Auth {
    pub dir: Option<PathBuf>,
    users: RwLock<Arc<Vec<User>>>,
    pub errors: RwLock<Vec<String>>,
    /// `/metrics` without a token.
    pub public_metrics: bool,
}

impl Auth {
    pub fn new(dir: Option<PathBuf>, public_metrics: bool) -> Self {
        let a = Self {
            dir,
            users: RwLock::new(Arc::new(Vec::new())),
            errors: RwLock::new(Vec::new()),
            public_metrics,
        };
        a.reload();
        a
    }

    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }

    pub fn user_count(&self) -> usize {
        self.users.read().map(|u| u.len()).unwrap_or(0)
    }

    /// Re-read the directory; logs users added and removed (never tokens).
    pub fn reload(&self) {
        let Some(dir) = &self.dir else { return };
        let (users, errors) = load_dir(dir);
        let before: BTreeMap<String, Role> = self
            .users
            .read()
            .map(|u| u.iter().map(|x| (x.name.clone(), x.role)).collect())
            .unwrap_or_default();
        let after: BTreeMap<String, Role> =
            users.iter().map(|x| (x.name.clone(), x.role)).collect();
        if before != after {
            for (n, r) in &after {
                if before.get(n) != Some(r) {
                    tracing::info!(component = "security-auditor", user = %n, role = r.as_str(), "user enabled");
                }
            }
            for n in before.keys().filter(|n| !after.contains_key(*n)) {
                tracing::warn!(component = "security-auditor", user = %n, "user removed: its token is refused from now on");
            }
        }
        let old_errors = self.errors.read().map(|e| e.clone()).unwrap_or_default();
        if errors != old_errors {
            for e in &errors {
                tracing::error!(component = "security-auditor", error = %e, "user file refused; that user cannot log in");
            }
        }
        if let Ok(mut u) = self.users.write() {
            *u = Arc::new(users);
        }
        if let Ok(mut e) = self.errors.write() {
            *e = errors;
        }
    }

    /// The user whose token this is.
    pub fn authenticate(&self, token: &str) -> Option<Caller> {
        let h = hash_token(token);
        let users = self.users.read().ok()?.clone();
        let mut found = None;
        // Every entry is compared, matched or not: no early exit to time.
        for u in users.iter() {
            if u.digest_matches(&h) && found.is_none() {
                found = Some(Caller {
                    name: u.name.clone(),
                    role: u.role,
                });
            }
        }
        found
    }
}

/// Re-read the users every second until shutdown.
pub async fn reload_loop(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    if !state.auth.enabled() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let auth = state.clone();
        let _ = tokio::task::spawn_blocking(move || auth.auth.reload()).await;
    }
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// No token: health, readiness, the public status page, the OpenAPI document (and
    /// `/metrics` unless `--metrics-auth`).
    Public,
    /// Agents and producers (and admins).
    Ingest,
    /// At least this people's role.
    Role(Role),
}

/// The access rule of a route (by its template), the table docs/security.md shows.
pub fn need(method: &Method, route: &str, public_metrics: bool) -> Need {
    let read = method == Method::GET || method == Method::HEAD;
    match route {
        "/health" | "/ready" | "/status" | "/status.json" | crate::http::OPENAPI_PATH => {
            Need::Public
        }
        "/metrics" if public_metrics => Need::Public,
        "/metrics" => Need::Role(Role::Viewer),
        "/api/v1/evidence" if !read => Need::Ingest,
        "/api/v1/events" | "/api/v1/alertmanager" | "/api/v1/agents/heartbeat" | "/api/v1/pods" => {
            Need::Ingest
        }
        "/api/v1/audit" => Need::Role(Role::Admin),
        _ if read => Need::Role(Role::Viewer),
        // Lifecycle, declare, silences.
        _ => Need::Role(Role::Responder),
    }
}

/// Whether `role` satisfies `need`.
pub fn allows(role: Role, need: Need) -> bool {
    match need {
        Need::Public => true,
        Need::Ingest => matches!(role, Role::Agent | Role::Admin),
        Need::Role(min) => role != Role::Agent && role >= min,
    }
}

/// Header the guard sets to the authenticated user's name for handlers (any value a
/// client sends is removed first).
pub const USER_HEADER: &str = "x-tapio-authenticated-user";

/// Who acts: the authenticated user when authentication is on (a body's `by` cannot
/// speak for someone else), else the body's `by`, else "api".
pub fn actor(headers: &axum::http::HeaderMap, by: Option<String>) -> String {
    headers
        .get(USER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(by)
        .unwrap_or_else(|| "api".into())
}

fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The middleware: authenticate, authorize, audit.
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
    let Some(route) = route else {
        // Unmatched: the 404/405 answers reveal nothing and need no audit.
        return next.run(req).await;
    };
    let need = need(&method, &route, state.auth.public_metrics);
    let now = std::time::Instant::now();
    if need != Need::Public {
        let ip = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        if let Some(ip) = ip
            && state.rate.blocklist.blocked(ip)
        {
            state.audit.record(AuditRecord::new(
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
        // Evidence ingest is bounded by load shedding instead (a node's agent must never
        // be told to come back later for evidence it has spooled).
        if need != Need::Ingest
            && let Err(wait) = state.rate.per_client.check(&client, now)
        {
            state.metrics.rate_limited("client");
            return ApiError::too_many(
                format!("too many requests from {client}; retry in {wait} s"),
                wait,
            )
            .into_response();
        }
    }
    let mut caller = None;
    if state.auth.enabled() && need != Need::Public {
        let Some(token) = bearer(&req) else {
            state.audit.record(AuditRecord::new(
                AuditKind::AuthFailure,
                None,
                &client,
                &method,
                &route,
                &path,
                401,
                "no bearer token",
            ));
            return ApiError::unauthorized(
                "this API needs a token: Authorization: Bearer TOKEN (tapio --token / TAPIO_TOKEN)",
            )
            .into_response();
        };
        let Some(c) = state.auth.authenticate(token) else {
            state.audit.record(AuditRecord::new(
                AuditKind::AuthFailure,
                None,
                &client,
                &method,
                &route,
                &path,
                401,
                "unknown or revoked token",
            ));
            return ApiError::unauthorized(
                "the token is not valid (unknown, or its user was removed)",
            )
            .into_response();
        };
        if !allows(c.role, need) {
            let why = match need {
                Need::Ingest => "needs an agent or admin token".to_owned(),
                Need::Role(r) => format!("needs role {} or above", r.as_str()),
                Need::Public => String::new(),
            };
            state.audit.record(AuditRecord::new(
                AuditKind::Denied,
                Some(&c),
                &client,
                &method,
                &route,
                &path,
                403,
                &why,
            ));
            return ApiError::forbidden(format!(
                "user {} (role {}) may not {method} {route}: {why}",
                c.name,
                c.role.as_str()
            ))
            .into_response();
        }
        if c.role != Role::Agent
            && let Err(wait) = state.rate.per_token.check(&c.name, now)
        {
            state.metrics.rate_limited("token");
            return ApiError::too_many(
                format!("too many requests for user {}; retry in {wait} s", c.name),
                wait,
            )
            .into_response();
        }
        req.extensions_mut().insert(c.clone());
        if let Ok(v) = axum::http::HeaderValue::from_str(&c.name) {
            req.headers_mut().insert(USER_HEADER, v);
        }
        caller = Some(c);
    }
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    // Public routes are not audited (health probes every few seconds).
    if need != Need::Public {
        let kind = if mutating {
            AuditKind::Mutation
        } else {
            AuditKind::Read
        };
        state.audit.record(AuditRecord::new(
            kind,
            caller.as_ref(),
            &client,
            &method,
            &route,
            &path,
            status,
            "",
        ));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route of the API against every role: the matrix docs/security.md shows.
    #[test]
    fn the_role_matrix() {
        use Role::*;
        let g = Method::GET;
        let p = Method::POST;
        // (method, route, [viewer, responder, admin, agent])
        let table: &[(&Method, &str, [bool; 4])] = &[
            (&g, "/api/v1/incidents", [true, true, true, false]),
            (&g, "/api/v1/incidents/{id}", [true, true, true, false]),
            (
                &g,
                "/api/v1/incidents/{id}/timeline",
                [true, true, true, false],
            ),
            (&g, "/api/v1/incidents/summary", [true, true, true, false]),
            (&g, "/api/v1/evidence", [true, true, true, false]),
            (&g, "/api/v1/agents", [true, true, true, false]),
            (&g, "/api/v1/config", [true, true, true, false]),
            (&g, "/api/v1/cluster", [true, true, true, false]),
            (&g, "/api/v1/silences", [true, true, true, false]),
            (&p, "/api/v1/incidents", [false, true, true, false]),
            (&p, "/api/v1/incidents/{id}/ack", [false, true, true, false]),
            (
                &p,
                "/api/v1/incidents/{id}/mitigate",
                [false, true, true, false],
            ),
            (
                &p,
                "/api/v1/incidents/{id}/resolve",
                [false, true, true, false],
            ),
            (
                &p,
                "/api/v1/incidents/{id}/reopen",
                [false, true, true, false],
            ),
            (
                &p,
                "/api/v1/incidents/{id}/notes",
                [false, true, true, false],
            ),
            (
                &p,
                "/api/v1/incidents/{id}/severity",
                [false, true, true, false],
            ),
            (&p, "/api/v1/silences", [false, true, true, false]),
            (
                &p,
                "/api/v1/silences/{id}/expire",
                [false, true, true, false],
            ),
            (&p, "/api/v1/evidence", [false, false, true, true]),
            (&p, "/api/v1/events", [false, false, true, true]),
            (&p, "/api/v1/alertmanager", [false, false, true, true]),
            (&p, "/api/v1/agents/heartbeat", [false, false, true, true]),
            (&g, "/api/v1/pods", [false, false, true, true]),
            (&g, "/api/v1/audit", [false, false, true, false]),
        ];
        for (m, route, want) in table {
            for (role, ok) in [Viewer, Responder, Admin, Agent].into_iter().zip(want) {
                assert_eq!(
                    allows(role, need(m, route, true)),
                    *ok,
                    "{m} {route} as {}",
                    role.as_str()
                );
            }
        }
        for route in [
            "/health",
            "/ready",
            "/status",
            "/status.json",
            "/metrics",
            "/api/v1/openapi.json",
        ] {
            assert_eq!(need(&g, route, true), Need::Public, "{route}");
        }
        assert_eq!(need(&g, "/metrics", false), Need::Role(Viewer));
    }
}
