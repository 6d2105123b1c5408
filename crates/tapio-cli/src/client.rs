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

    pub fn post<T: DeserializeOwned>(&self, path: &str, body: &[u8]) -> Result<T, ClientError> {
        let left = self.remaining()?;
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if let Some(a) = self.auth() {
            req = req.header("authorization", a);
        }
        let resp = req.config().timeout_global(Some(left)).build().send(body);
        let (status, text) = self.finish(resp)?;
        decode(status, &text)
    }
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
