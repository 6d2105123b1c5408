//! The HTTP transport the Slack, PagerDuty, webhook and Jira channels share: one exchange
//! and what its answer means for the outbox.

use std::time::Duration;

use super::Sent;
use crate::redact;

/// What one HTTP exchange means for the outbox: 2xx delivered; 408, 429 and 5xx retried
/// (honouring Retry-After); other answers refused for good. Also the answer's body (at
/// most 64 KiB; empty when there was no answer), for channels that read it.
pub fn outcome(res: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (Sent, String) {
    match res {
        Err(e) => (
            Sent::Retry(redact::redact_urls(&e.to_string()), None),
            String::new(),
        ),
        Ok(mut r) => {
            let status = r.status().as_u16();
            let retry_after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let text = r
                .body_mut()
                .with_config()
                .limit(64 * 1024)
                .read_to_string()
                .unwrap_or_default();
            // The receiver's words, bounded and escaped: they end up in logs and the outbox.
            let shown = redact::body_excerpt(&text);
            let sent = match status {
                200..=299 => Sent::Ok,
                408 | 429 | 500..=599 => Sent::Retry(format!("{status}: {shown}"), retry_after),
                _ => Sent::Refused(format!("{status}: {shown}")),
            };
            (sent, text)
        }
    }
}

/// POST `body` as JSON to `url` with extra `headers`.
pub fn post_json(
    agent: &ureq::Agent,
    url: &str,
    body: &serde_json::Value,
    headers: &[(&str, &str)],
) -> Sent {
    let mut req = agent.post(url).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    outcome(req.send(body.to_string().as_bytes())).0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A receiver's error answer reaches logs and the outbox bounded and escaped.
    #[test]
    fn receiver_error_bodies_are_bounded_and_escaped() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let body = format!("\u{1b}]0;owned\u{7}\u{1b}[2J{}", "E".repeat(10_000));
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().expect("accept");
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let head = format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = c.write_all(head.as_bytes());
            let _ = c.write_all(body.as_bytes());
        });
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let sent = post_json(
            &agent,
            &format!("http://127.0.0.1:{port}/hook"),
            &serde_json::json!({"a": 1}),
            &[],
        );
        server.join().expect("server");
        let Sent::Refused(m) = sent else {
            panic!("400 is refused for good");
        };
        assert!(m.len() < 400, "{} bytes: {m}", m.len());
        assert!(!m.chars().any(char::is_control), "{m:?}");
        assert!(m.starts_with("400: \\u{1b}]0;owned"), "{m}");
    }
}
