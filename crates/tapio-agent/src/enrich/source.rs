//! [`PodSource`]: polls a file or an `http(s)://` URL for the pod list and keeps the last
//! good index.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;

use super::pods::{MAX_POD_LIST_BYTES, PodIndex, SharedPods};

/// Timeout of one HTTP fetch of the pod list.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
enum Location {
    File(PathBuf),
    Url(String),
}

/// Polls a `PodList` from a file or an `http://` URL (the kubelet's `/pods`, or a
/// server's pod index for this node) into a [`SharedPods`]. On error the last good index
/// stays in place and the error is remembered for health reporting.
///
/// `https://` URLs are verified against the bundled Mozilla roots unless
/// [`with_client`](Self::with_client) gives a client with the agent's `--ca-file`.
#[derive(Debug)]
pub struct PodSource {
    location: Location,
    interval: Duration,
    token_file: Option<PathBuf>,
    /// A token given directly (the agent's own server token when the pod index is the
    /// server's `/api/v1/pods`).
    token: Option<String>,
    agent: ureq::Agent,
    pods: SharedPods,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

impl PodSource {
    /// `location` is an `http(s)://` URL or a file path; `interval` is the polling period
    /// for [`poll`](Self::poll).
    pub fn new(location: &str, interval: Duration, pods: SharedPods) -> Self {
        let location = if location.starts_with("http://") || location.starts_with("https://") {
            Location::Url(location.to_owned())
        } else {
            Location::File(PathBuf::from(location))
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(HTTP_TIMEOUT))
            .build()
            .into();
        Self {
            location,
            interval,
            token_file: None,
            token: None,
            agent,
            pods,
            last_attempt: None,
            last_error: None,
        }
    }

    /// Sends `Authorization: Bearer <token>` read from this file on every fetch (so a
    /// rotated service-account token is picked up).
    pub fn with_bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Fetch with this client (the agent's server client, with its TLS policy).
    pub fn with_client(mut self, agent: ureq::Agent) -> Self {
        self.agent = agent;
        self
    }

    pub fn with_bearer_token_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.token_file = Some(path.into());
        self
    }

    /// Fetches and installs the list now. `Ok(true)` when the index changed.
    pub fn refresh(&mut self) -> Result<bool, String> {
        self.last_attempt = Some(Instant::now());
        let result = self
            .fetch()
            .and_then(|text| PodIndex::from_json(&text).map_err(|e| e.to_string()));
        match result {
            Ok(index) => {
                let skipped = index.skipped();
                let changed = self.pods.replace(index);
                if changed && skipped > 0 {
                    tracing::warn!(
                        skipped,
                        max = MAX_PODS,
                        "pod list over the limit; pods skipped"
                    );
                }
                self.last_error = None;
                Ok(changed)
            }
            Err(e) => {
                self.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// [`refresh`](Self::refresh) if the interval has passed since the last attempt (or
    /// there was none); `None` otherwise.
    pub fn poll(&mut self) -> Option<Result<bool, String>> {
        let due = self
            .last_attempt
            .is_none_or(|t| t.elapsed() >= self.interval);
        due.then(|| self.refresh())
    }

    /// The polling period.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The error of the last attempt, if it failed.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The index this source fills.
    pub fn pods(&self) -> &SharedPods {
        &self.pods
    }

    fn fetch(&self) -> Result<String, String> {
        match &self.location {
            Location::File(path) => read_limited(path),
            Location::Url(url) => self.fetch_url(url),
        }
    }

    fn fetch_url(&self, url: &str) -> Result<String, String> {
        let mut request = self.agent.get(url).header("accept", "application/json");
        if let Some(token) = self.token.as_deref().filter(|_| self.token_file.is_none()) {
            request = request.header("authorization", format!("Bearer {}", token.trim()));
        }
        if let Some(token_file) = &self.token_file {
            let token = std::fs::read_to_string(token_file)
                .map_err(|e| format!("reading token {}: {e}", token_file.display()))?;
            request = request.header("authorization", format!("Bearer {}", token.trim()));
        }
        let mut response = request.call().map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_POD_LIST_BYTES)
            .read_to_string()
            .map_err(|e| format!("GET {url}: reading the answer: {e}"))?;
        if status != 200 {
            let excerpt: String = body.chars().take(200).collect();
            return Err(format!("GET {url}: HTTP {status}: {}", excerpt.trim()));
        }
        Ok(body)
    }
}

fn read_limited(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_POD_LIST_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if text.len() as u64 > MAX_POD_LIST_BYTES {
        return Err(format!(
            "{}: larger than {MAX_POD_LIST_BYTES} bytes",
            path.display()
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::enrich::testutil::*;

    #[test]
    fn pod_source_file_keeps_last_good_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pods.json");
        std::fs::write(&file, FIXTURE).expect("write");
        let shared = SharedPods::default();
        let mut source = PodSource::new(
            file.to_str().expect("utf-8 path"),
            Duration::from_secs(3600),
            shared.clone(),
        );
        assert_eq!(source.poll(), Some(Ok(true)));
        assert_eq!(source.poll(), None, "not due yet");
        assert_eq!(shared.read().len(), 3);
        let generation = shared.generation();
        assert_eq!(source.refresh(), Ok(false), "same content: unchanged");
        assert_eq!(shared.generation(), generation);

        std::fs::write(&file, r#"{"items":[{"metadata":{"name":"x"}}]}"#).expect("write");
        let e = source.refresh().expect_err("malformed");
        assert!(e.contains("items[0].metadata.uid"), "{e}");
        assert_eq!(source.last_error(), Some(e.as_str()));
        assert_eq!(shared.read().len(), 3, "last good index kept");

        std::fs::remove_file(&file).expect("rm");
        assert!(source.refresh().is_err());
        assert_eq!(shared.read().len(), 3);

        std::fs::write(&file, r#"{"kind":"PodList","items":[]}"#).expect("write");
        assert_eq!(source.refresh(), Ok(true));
        assert!(shared.read().is_empty());
        assert_eq!(source.last_error(), None);
        assert_ne!(shared.generation(), generation);
    }

    #[test]
    fn pod_source_http_with_token() {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for status in ["200 OK", "401 Unauthorized"] {
                let (stream, _) = listener.accept().expect("accept");
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).expect("read") == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                seen.push(head);
                let body = if status.starts_with("200") {
                    FIXTURE
                } else {
                    "Unauthorized"
                };
                let mut stream = stream;
                write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .expect("write");
            }
            seen
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cr3t\n").expect("write");
        let shared = SharedPods::default();
        let mut source = PodSource::new(
            &format!("http://{addr}/pods"),
            Duration::from_secs(10),
            shared.clone(),
        )
        .with_bearer_token_file(&token);
        assert_eq!(source.refresh(), Ok(true));
        assert_eq!(shared.read().len(), 3);
        let e = source.refresh().expect_err("401");
        assert!(e.contains("HTTP 401"), "{e}");
        assert_eq!(shared.read().len(), 3);
        let seen = server.join().expect("server");
        assert!(seen[0].starts_with("GET /pods "), "{}", seen[0]);
        assert!(
            seen[0]
                .to_ascii_lowercase()
                .contains("authorization: bearer s3cr3t\r\n"),
            "{}",
            seen[0]
        );
    }
}
