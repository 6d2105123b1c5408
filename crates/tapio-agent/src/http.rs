//! The agent's own small HTTP endpoint: `/metrics` for Prometheus and `/health` for the
//! kubelet's probes and people.
//!
//! The agent answers a handful of `GET`s and nothing else, so instead of a web framework it
//! has this: HTTP/1.1, one request per connection, every answer with `content-length` and
//! `connection: close`. `HEAD` is answered like `GET` without the body; any other method on
//! a known path gets 405, an unknown path 404, a request that is not HTTP/1.x 400.
//!
//! The endpoint listens on every address of the node by default, so what one peer can make
//! the agent spend is bounded ([`Limits`]): the request head (request line and headers) must
//! fit in 8 KiB (else 431) and arrive within 5 s (else the connection is closed), the answer
//! must be taken within 10 s, and at most 64 connections are served at once; further ones
//! wait in the kernel's accept queue. A request body is never read.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// One answer: status code, content type (none for empty error answers) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type: Some(content_type),
            body: body.into(),
        }
    }

    /// A JSON body (`application/json`).
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        // Serialising a `Value` cannot fail: its map keys are strings.
        Self::new(
            status,
            "application/json",
            serde_json::to_vec(value).unwrap_or_default(),
        )
    }

    /// An answer with no body and no content type.
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            content_type: None,
            body: Vec::new(),
        }
    }
}

/// What one connection may cost the agent.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest request head (request line and headers, with the blank line) read.
    pub max_head_bytes: usize,
    /// Time a client has to send the whole request head.
    pub read_timeout: Duration,
    /// Time a client has to take the whole answer.
    pub write_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_head_bytes: 8 * 1024,
            read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            max_connections: 64,
        }
    }
}

/// Serves `route` on `listener` until `shutdown` completes. `route` gets the request path
/// (without the query) of a `GET` or `HEAD` and returns `None` for a path it does not know.
/// Connections still being served when `shutdown` completes are dropped with the runtime.
pub async fn serve<R>(
    listener: TcpListener,
    limits: Limits,
    route: R,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    R: Fn(&str) -> Option<Response> + Send + Sync + 'static,
{
    let route = Arc::new(route);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => return Ok(()),
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                // The semaphore is never closed; if it were, nothing more could be served.
                Err(_) => return Ok(()),
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => return Ok(()),
            a = listener.accept() => match a {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::debug!(error = %e, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let route = route.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = handle(stream, limits, &*route).await {
                tracing::debug!(error = %e, "HTTP connection failed");
            }
        });
    }
}

/// What came in before the blank line that ends a request head.
enum Head {
    Complete(Vec<u8>),
    TooLarge,
    /// The peer closed the connection first.
    Closed,
}

async fn handle<R>(mut stream: TcpStream, limits: Limits, route: &R) -> io::Result<()>
where
    R: Fn(&str) -> Option<Response>,
{
    let head = match tokio::time::timeout(
        limits.read_timeout,
        read_head(&mut stream, limits.max_head_bytes),
    )
    .await
    {
        Ok(head) => head?,
        // Too slow: nothing more is spent on this peer.
        Err(_) => return Ok(()),
    };
    let (response, head_only) = match head {
        Head::Complete(bytes) => answer(&bytes, route),
        Head::TooLarge => (Response::empty(431), false),
        Head::Closed => return Ok(()),
    };
    let bytes = encode(&response, head_only);
    match tokio::time::timeout(limits.write_timeout, async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    })
    .await
    {
        Ok(r) => r,
        Err(_) => Ok(()),
    }
}

/// Reads until the blank line that ends the request head, at most `max` bytes.
async fn read_head(stream: &mut TcpStream, max: usize) -> io::Result<Head> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Head::Closed);
        }
        let searched = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_head_end(&buf[searched..]) {
            let end = searched + end;
            if end > max {
                return Ok(Head::TooLarge);
            }
            buf.truncate(end);
            return Ok(Head::Complete(buf));
        }
        if buf.len() > max {
            return Ok(Head::TooLarge);
        }
    }
}

/// The length of the head including its terminating blank line (`\r\n\r\n`, or `\n\n` from
/// lenient clients), if it is complete.
fn find_head_end(b: &[u8]) -> Option<usize> {
    let crlf = b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = b.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The answer to a complete request head, and whether it is to go without its body (HEAD).
fn answer<R>(head: &[u8], route: &R) -> (Response, bool)
where
    R: Fn(&str) -> Option<Response>,
{
    let Some(line) = head
        .split(|&b| b == b'\n')
        .next()
        .and_then(|l| std::str::from_utf8(l).ok())
    else {
        return (Response::empty(400), false);
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return (Response::empty(400), false);
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return (Response::empty(400), false);
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    match method {
        "GET" | "HEAD" => (
            route(path).unwrap_or_else(|| Response::empty(404)),
            method == "HEAD",
        ),
        _ if route(path).is_some() => (Response::empty(405), false),
        _ => (Response::empty(404), false),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// The bytes of an answer: status line, headers, and the body unless `head_only`.
fn encode(r: &Response, head_only: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    if let Some(ct) = r.content_type {
        out.push_str(&format!("content-type: {ct}\r\n"));
    }
    if r.status == 405 {
        out.push_str("allow: GET,HEAD\r\n");
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        r.body.len()
    ));
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&r.body);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Starts the server on a thread of its own; returns its address.
    fn start(limits: Limits) -> std::net::SocketAddr {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("listener");
                let route = |path: &str| match path {
                    "/hello" => Some(Response::new(200, "text/plain", "hi")),
                    "/down" => Some(Response::json(503, &serde_json::json!({"status": "x"}))),
                    _ => None,
                };
                let _ = serve(listener, limits, route, std::future::pending()).await;
            });
        });
        addr
    }

    fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(request).expect("write");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn answers_get_and_head_and_refuses_the_rest() {
        let addr = start(Limits::default());
        let ok = exchange(addr, b"GET /hello?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(
            ok,
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi"
        );
        let head = exchange(addr, b"HEAD /hello HTTP/1.1\r\n\r\n");
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\n")
                && head.ends_with("content-length: 2\r\nconnection: close\r\n\r\n"),
            "{head}"
        );
        let down = exchange(addr, b"GET /down HTTP/1.0\n\n");
        assert!(
            down.starts_with(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
            ) && down.ends_with(r#"{"status":"x"}"#),
            "{down}"
        );
        assert!(exchange(addr, b"GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        let post = exchange(addr, b"POST /hello HTTP/1.1\r\ncontent-length: 0\r\n\r\n");
        assert!(
            post.starts_with("HTTP/1.1 405 ") && post.contains("allow: GET,HEAD\r\n"),
            "{post}"
        );
        assert!(exchange(addr, b"POST /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        assert!(exchange(addr, b"GET /hello SPDY/3\r\n\r\n").starts_with("HTTP/1.1 400 "));
        assert!(exchange(addr, b"garbage\r\n\r\n").starts_with("HTTP/1.1 400 "));
    }

    #[test]
    fn a_huge_or_slow_request_head_costs_little() {
        let addr = start(Limits {
            read_timeout: Duration::from_millis(300),
            ..Limits::default()
        });
        // A head over 8 KiB is refused without reading on.
        let mut big = b"GET /hello HTTP/1.1\r\nx: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', 9000));
        big.extend_from_slice(b"\r\n\r\n");
        assert!(exchange(addr, &big).starts_with("HTTP/1.1 431 "));
        // A head that never ends is dropped after the read timeout, without an answer.
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(b"GET /hello HTTP/1.1\r\n").expect("write");
        let started = std::time::Instant::now();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        assert!(out.is_empty());
        assert!(started.elapsed() < Duration::from_secs(4));
        // The server still answers others.
        assert!(exchange(addr, b"GET /hello HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
    }

    #[test]
    fn connections_beyond_the_limit_wait_their_turn() {
        let addr = start(Limits {
            max_connections: 1,
            read_timeout: Duration::from_millis(500),
            ..Limits::default()
        });
        // One idle peer holds the only slot until its read timeout; the next is served after.
        let _idle = std::net::TcpStream::connect(addr).expect("connect");
        std::thread::sleep(Duration::from_millis(100));
        let started = std::time::Instant::now();
        assert!(exchange(addr, b"GET /hello HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
        assert!(started.elapsed() >= Duration::from_millis(250));
    }

    #[test]
    fn head_end_is_found_across_reads() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\n"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nrest"), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n"), None);
    }
}
