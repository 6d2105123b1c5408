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
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::Method;
use tokio::sync::watch;

pub use tapio_core::auth::{Role, User, hash_token, parse_user, user_file, valid_user_name};

/// The authenticated caller, for handlers (`by` defaults to the user's name).
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// What one read of the auth directory found.
#[derive(Debug, Default)]
pub struct DirRead {
    /// Users whose files were read and parsed (users sharing a token digest left out).
    pub users: Vec<User>,
    /// Every problem, for people: files that do not parse (that user is refused: fail
    /// closed), files or a directory that could not be read, shared token digests.
    pub errors: Vec<String>,
    /// Files that exist but could not be read (an I/O error such as EMFILE, not "gone"):
    /// the users they held before are kept until a read succeeds.
    pub unreadable: Vec<String>,
    /// The directory could not be listed (completely): every known user is kept.
    pub listing_failed: bool,
    /// Users refused because another user's file holds the same token digest.
    pub duplicates: Vec<String>,
}

/// The token digest a (valid) user file holds: the last `token-sha256:` or agent `token:`
/// line, as `parse_user` reads it. Only for finding two users with one token.
fn file_digest(text: &str) -> Option<[u8; 32]> {
    let mut digest = None;
    for line in text.lines() {
        let Some((k, v)) = line.trim().split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "token-sha256" if v.len() == 64 && v.is_ascii() => {
                let mut h = [0u8; 32];
                for (j, b) in h.iter_mut().enumerate() {
                    *b = u8::from_str_radix(&v[2 * j..2 * j + 2], 16).ok()?;
                }
                digest = Some(h);
            }
            "token" if !v.is_empty() => digest = Some(hash_token(v)),
            _ => {}
        }
    }
    digest
}

/// Read every user of the directory. A file that does not parse is left out (that user
/// is refused: fail closed) and reported; a file or directory that cannot be *read* is
/// reported in `unreadable` / `listing_failed` so that `Auth::reload` keeps the users it
/// held (an EMFILE must not log everyone out). Two users with one token digest are both
/// left out: which of them a token speaks for would be a guess.
pub fn load_dir(dir: &Path) -> DirRead {
    let mut out = DirRead::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            out.errors.push(format!(
                "{}: {e} (every known user is kept until the directory reads again)",
                dir.display()
            ));
            out.listing_failed = true;
            return out;
        }
    };
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => names.push((e.file_name().to_string_lossy().into_owned(), e.path())),
            Err(e) => {
                out.errors.push(format!(
                    "{}: listing failed: {e} (every known user is kept until the directory reads again)",
                    dir.display()
                ));
                out.listing_failed = true;
                return out;
            }
        }
    }
    // Kubernetes' `..data`, `..2026_…` bookkeeping entries and hidden files.
    names.retain(|(n, _)| !n.starts_with('.'));
    names.sort();
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let mut digests: Vec<(String, PathBuf, [u8; 32])> = Vec::new();
    for (name, path) in names {
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => continue,
            // A dangling symlink: the key was removed.
            Err(e) if gone(&e) => continue,
            Err(e) => {
                out.errors.push(format!(
                    "{}: {e} (user {name} is kept until the file reads again)",
                    path.display()
                ));
                out.unreadable.push(name);
                continue;
            }
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => match parse_user(&name, &text) {
                Ok(u) => {
                    if let Some(d) = file_digest(&text) {
                        digests.push((name.clone(), path.clone(), d));
                    }
                    out.users.push(u);
                }
                Err(e) => out.errors.push(format!("{}: {e}", path.display())),
            },
            Err(e) if gone(&e) => {}
            // Not UTF-8: the content is wrong, not the read (fail closed).
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                out.errors.push(format!("{}: {e}", path.display()))
            }
            Err(e) => {
                out.errors.push(format!(
                    "{}: {e} (user {name} is kept until the file reads again)",
                    path.display()
                ));
                out.unreadable.push(name);
            }
        }
    }
    for (i, (name, path, d)) in digests.iter().enumerate() {
        let others: Vec<&(String, PathBuf, [u8; 32])> = digests
            .iter()
            .enumerate()
            .filter(|(j, (_, _, o))| *j != i && tapio_core::auth::ct_eq(d, o))
            .map(|(_, x)| x)
            .collect();
        if others.is_empty() {
            continue;
        }
        let files: Vec<String> = others.iter().map(|o| o.1.display().to_string()).collect();
        out.errors.push(format!(
            "{}: user {name} has the same token-sha256 as {}: both are refused until each has \
             its own token (tapio auth add-user)",
            path.display(),
            files.join(", ")
        ));
        out.duplicates.push(name.clone());
    }
    let duplicates = out.duplicates.clone();
    out.users.retain(|u| !duplicates.contains(&u.name));
    out
}

/// The users after a read: the users read, plus the known users of files that could not
/// be read (all known users when the directory could not be listed). Only a successful
/// read that no longer finds a user removes it.
pub fn merge_read(known: &[User], read: &DirRead) -> Vec<User> {
    if read.listing_failed {
        return known.to_vec();
    }
    let mut users = read.users.clone();
    for name in &read.unreadable {
        users.extend(known.iter().filter(|u| &u.name == name).cloned());
    }
    users.sort_by(|a, b| a.name.cmp(&b.name));
    users
}

/// What one reload found wrong (for metrics).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReloadReport {
    /// The directory or files that could not be read (known users kept).
    pub read_failures: usize,
    /// Users refused because of a shared token digest.
    pub duplicate_tokens: usize,
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

    /// Re-read the directory; logs users added and removed (never tokens). A read that
    /// fails keeps the users it could not read (fail closed for new users, keep known).
    pub fn reload(&self) -> ReloadReport {
        let Some(dir) = &self.dir else {
            return ReloadReport::default();
        };
        let read = load_dir(dir);
        let known: Arc<Vec<User>> = self
            .users
            .read()
            .map(|u| u.clone())
            .unwrap_or_else(|_| Arc::new(Vec::new()));
        let users = merge_read(&known, &read);
        let errors = read.errors.clone();
        let before: BTreeMap<String, Role> =
            known.iter().map(|x| (x.name.clone(), x.role)).collect();
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
                tracing::error!(component = "security-auditor", error = %e, "user file refused or unreadable; see the error for what happens to that user");
            }
        }
        if let Ok(mut u) = self.users.write() {
            *u = Arc::new(users);
        }
        if let Ok(mut e) = self.errors.write() {
            *e = errors;
        }
        ReloadReport {
            read_failures: read.unreadable.len() + usize::from(read.listing_failed),
            duplicate_tokens: read.duplicates.len(),
        }
    }

    /// The user whose token this is. A token that more than one user holds authenticates
    /// no one.
    pub fn authenticate(&self, token: &str) -> Option<Caller> {
        let h = hash_token(token);
        let users = self.users.read().ok()?.clone();
        let mut found = None;
        let mut matches = 0usize;
        // Every entry is compared, matched or not: no early exit to time.
        for u in users.iter() {
            if u.digest_matches(&h) {
                matches += 1;
                if found.is_none() {
                    found = Some(Caller {
                        name: u.name.clone(),
                        role: u.role,
                    });
                }
            }
        }
        if matches > 1 {
            return None;
        }
        found
    }
}

/// Re-read the users every second until shutdown.
pub async fn reload_loop(
    auth: Arc<Auth>,
    metrics: Arc<crate::metrics::Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    if !auth.enabled() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let a = auth.clone();
        if let Ok(report) = tokio::task::spawn_blocking(move || a.reload()).await {
            for _ in 0..report.read_failures {
                metrics.refused("auth_read_failed");
            }
            for _ in 0..report.duplicate_tokens {
                metrics.refused("auth_duplicate_token");
            }
        }
    }
}

/// Where the OpenAPI document is served (public, like `/health`).
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

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
        "/health" | "/ready" | "/status" | "/status.json" | OPENAPI_PATH => Need::Public,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).expect("write user file");
    }

    fn names(users: &[User]) -> Vec<&str> {
        users.iter().map(|u| u.name.as_str()).collect()
    }

    /// A file that cannot be read (here: a symlink loop, ELOOP — like EMFILE, an I/O
    /// error, not a removal) keeps its known user; a removed file removes it.
    #[test]
    fn unreadable_file_keeps_its_known_user() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "alice", &user_file(Role::Admin, "alice-token"));
        write(dir.path(), "bob", &user_file(Role::Viewer, "bob-token"));
        let auth = Auth::new(Some(dir.path().to_owned()), true);
        assert_eq!(auth.user_count(), 2);
        std::fs::remove_file(dir.path().join("alice")).expect("rm");
        std::os::unix::fs::symlink("alice", dir.path().join("alice")).expect("loop");
        let report = auth.reload();
        assert_eq!(report.read_failures, 1);
        assert_eq!(
            auth.authenticate("alice-token").map(|c| c.name),
            Some("alice".into())
        );
        assert!(auth.authenticate("bob-token").is_some());
        // A new, unreadable file admits no one.
        std::os::unix::fs::symlink("carol", dir.path().join("carol")).expect("loop");
        auth.reload();
        assert_eq!(auth.user_count(), 2);
        // Removed for real: refused.
        std::fs::remove_file(dir.path().join("alice")).expect("rm");
        std::fs::remove_file(dir.path().join("carol")).expect("rm");
        assert_eq!(auth.reload(), ReloadReport::default());
        assert!(auth.authenticate("alice-token").is_none());
        assert!(auth.authenticate("bob-token").is_some());
    }

    /// The directory itself failing to list keeps every known user.
    #[test]
    fn unreadable_directory_keeps_every_known_user() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("auth");
        std::fs::create_dir(&dir).expect("mkdir");
        write(&dir, "alice", &user_file(Role::Responder, "alice-token"));
        let auth = Auth::new(Some(dir.clone()), true);
        std::fs::rename(&dir, root.path().join("moved")).expect("mv");
        std::os::unix::fs::symlink("auth", &dir).expect("loop");
        let report = auth.reload();
        assert_eq!(report.read_failures, 1);
        assert!(auth.authenticate("alice-token").is_some());
        assert!(
            auth.errors.read().expect("errors")[0].contains("kept"),
            "{:?}",
            auth.errors.read().expect("errors")
        );
        // A parse error after a good read is still fail closed.
        std::fs::remove_file(&dir).expect("rm");
        std::fs::rename(root.path().join("moved"), &dir).expect("mv back");
        write(&dir, "alice", "role: responder\ntoken-sha256: nope\n");
        auth.reload();
        assert!(auth.authenticate("alice-token").is_none());
    }

    /// Two files with one token digest: neither user authenticates with it, and the
    /// error names both files.
    #[test]
    fn shared_token_digest_refuses_both_users() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "admin", &user_file(Role::Admin, "same-token"));
        write(
            dir.path(),
            "pager",
            &user_file(Role::Responder, "same-token"),
        );
        write(dir.path(), "viewer", &user_file(Role::Viewer, "own-token"));
        let read = load_dir(dir.path());
        assert_eq!(
            read.duplicates,
            vec!["admin".to_owned(), "pager".to_owned()]
        );
        assert_eq!(names(&read.users), vec!["viewer"]);
        let auth = Auth::new(Some(dir.path().to_owned()), true);
        assert!(auth.authenticate("same-token").is_none());
        assert!(auth.authenticate("own-token").is_some());
        let errors = auth.errors.read().expect("errors").join("\n");
        assert!(
            errors.contains("admin") && errors.contains("pager"),
            "{errors}"
        );
        // An agent's plaintext token counts too.
        write(
            dir.path(),
            "agent",
            &tapio_core::auth::agent_file("own-token"),
        );
        // admin + pager still share one, agent + viewer now share another.
        assert_eq!(auth.reload().duplicate_tokens, 4);
        assert!(auth.authenticate("own-token").is_none());
    }

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
