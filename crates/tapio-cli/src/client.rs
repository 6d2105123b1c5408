//! A small blocking HTTP client with one deadline for the whole command.

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use tapio_proto::ErrorBody;

pub struct Client {
    base: String,
    agent: ureq::Agent,
    deadline: Instant,
    /// Sent as `Authorization: Bearer …` (never printed).
    token: Option<String>,
    timeout: Duration,
}

#[derive(Debug)]
pub enum ClientError {
    /// No answer: connection refused, DNS failure, timeout.
    Unreachable(String),
    /// The server answered with an error.
    Api { status: u16, message: String },
    /// The server answered something this CLI cannot read.
    Protocol(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(m) => write!(f, "server unreachable: {m}"),
            Self::Api { status, message } => write!(f, "server answered {status}: {message}"),
            Self::Protocol(m) => write!(f, "unexpected answer: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    /// Worth sending again elsewhere: no answer, overload (429) or a server error.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Api { status, .. } => *status == 429 || *status >= 500,
            Self::Protocol(_) => false,
        }
    }
}

impl Client {
    pub fn new(base: &str, timeout: Duration) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            agent,
            deadline: Instant::now() + timeout,
            token: None,
            timeout,
        }
    }

    /// The same client with a fresh --timeout (one page of a long export each).
    pub fn renewed(&self) -> Self {
        Self {
            base: self.base.clone(),
            agent: self.agent.clone(),
            deadline: Instant::now() + self.timeout,
            token: self.token.clone(),
            timeout: self.timeout,
        }
    }

    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.trim().is_empty());
        self
    }

    fn auth(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("Bearer {}", t.trim()))
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Time left of the command's --timeout.
    pub fn remaining_time(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn remaining(&self) -> Result<Duration, ClientError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(ClientError::Unreachable("timed out".into()))
        } else {
            Ok(left)
        }
    }

    fn finish(
        &self,
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(u16, String), ClientError> {
        let mut resp = resp.map_err(|e| match e {
            ureq::Error::Timeout(_) => {
                ClientError::Unreachable(format!("no answer from {} before the timeout", self.base))
            }
            other => ClientError::Unreachable(format!("{}: {other}", self.base)),
        })?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().map_err(|e| match e {
            ureq::Error::Timeout(_) => {
                ClientError::Unreachable("timed out reading the answer".into())
            }
            other => ClientError::Protocol(other.to_string()),
        })?;
        Ok((status, body))
    }

    /// GET returning the status and body, whatever the status.
    pub fn get_raw(&self, path: &str) -> Result<(u16, String), ClientError> {
        let left = self.remaining()?;
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(a) = self.auth() {
            req = req.header("authorization", a);
        }
        let resp = req.config().timeout_global(Some(left)).build().call();
        self.finish(resp)
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let (status, body) = self.get_raw(path)?;
        decode(status, &body)
    }

    /// POST once with this `Idempotency-Key`: the status and body, whatever the status.
    fn post_raw(&self, path: &str, body: &[u8], key: &str) -> Result<(u16, String), ClientError> {
        let left = self.remaining()?;
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("idempotency-key", key);
        if let Some(a) = self.auth() {
            req = req.header("authorization", a);
        }
        let resp = req.config().timeout_global(Some(left)).build().send(body);
        self.finish(resp)
    }

    /// POST a change, once: with a fresh `Idempotency-Key`, and no retry (callers that
    /// fail over themselves, e.g. evidence to another server).
    pub fn post_once<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &[u8],
    ) -> Result<T, ClientError> {
        let (status, text) = self.post_raw(path, body, &fresh_key())?;
        decode(status, &text)
    }

    /// POST a change exactly once: a fresh `Idempotency-Key`, reused when the request is
    /// sent again after no answer, a 503 or 429, or "still in progress" (409), within the
    /// command's --timeout — the server answers a repeat with the first answer and never
    /// acts twice. A 202 Accepted (queued, result not known yet) is followed to its
    /// operation until the result is known.
    pub fn post<T: DeserializeOwned>(&self, path: &str, body: &[u8]) -> Result<T, ClientError> {
        let key = fresh_key();
        let mut attempt = 0u32;
        let (status, text) = loop {
            attempt += 1;
            let answer = self.post_raw(path, body, &key);
            let again = match &answer {
                Err(ClientError::Unreachable(_)) => true,
                Ok((s, _)) => {
                    matches!(*s, 409 | 429 | 502 | 503 | 504)
                        && !is_final_conflict(*s, answer_text(&answer))
                }
                Err(_) => false,
            };
            let pause = Duration::from_millis(500 * u64::from(attempt));
            if !again || attempt >= 5 || self.remaining_time() <= pause {
                break answer?;
            }
            std::thread::sleep(pause);
        };
        if status == 202 {
            return self.follow(&text);
        }
        decode(status, &text)
    }

    /// Poll the operation of a 202 answer until it is done (or the --timeout ends).
    fn follow<T: DeserializeOwned>(&self, accepted: &str) -> Result<T, ClientError> {
        let v: serde_json::Value = serde_json::from_str(accepted)
            .map_err(|e| ClientError::Protocol(format!("202 answer: {e}")))?;
        let Some(location) = v["location"].as_str().map(str::to_owned) else {
            return serde_json::from_value(v).map_err(|e| ClientError::Protocol(e.to_string()));
        };
        loop {
            let op: serde_json::Value = self.get(&location).map_err(|e| match e {
                ClientError::Unreachable(m) => ClientError::Unreachable(format!(
                    "{m}; the change was accepted and will be applied: see {location}"
                )),
                other => other,
            })?;
            if op["state"] == "done" {
                let status = op["status"].as_u64().unwrap_or(0) as u16;
                return decode(status, &op["result"].to_string());
            }
            if self.remaining_time() < Duration::from_millis(600) {
                return Err(ClientError::Unreachable(format!(
                    "accepted but not applied yet when the timeout ended; it will be applied: see {location}"
                )));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

fn answer_text(a: &Result<(u16, String), ClientError>) -> &str {
    a.as_ref().map_or("", |(_, t)| t.as_str())
}

/// A 409 is retried only while the key's first request is in progress; an invalid
/// transition (also 409) is final.
fn is_final_conflict(status: u16, body: &str) -> bool {
    status == 409 && !body.contains("idempotency_key_in_progress")
}

/// A new idempotency key: time, process and a random 64 bits (no extra dependency).
fn fresh_key() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(N.fetch_add(1, Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "tapio-{nanos:x}-{:x}-{:016x}",
        std::process::id(),
        h.finish()
    )
}

fn decode<T: DeserializeOwned>(status: u16, body: &str) -> Result<T, ClientError> {
    if !(200..300).contains(&status) {
        let message = serde_json::from_str::<ErrorBody>(body)
            .map(|e| e.error.message)
            .unwrap_or_else(|_| body.chars().take(300).collect());
        return Err(ClientError::Api { status, message });
    }
    serde_json::from_str(body).map_err(|e| ClientError::Protocol(format!("{e}")))
}
