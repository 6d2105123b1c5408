//! A fake HTTP peer for the server to call (webhooks, Jira, exporters): one request per
//! connection, answered by a function the test gives, on a loopback port. Plain HTTP/1.1,
//! just enough of it for the server's client; no framework, so a test can also drop a
//! connection without answering.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request target, query included.
    pub path: String,
    /// Header names lowercased, values trimmed, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An answer: status, optional content type, body.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: Some("application/json".into()),
            body: body.into(),
        }
    }

    /// An answer with this content type.
    pub fn with_type(status: u16, content_type: &str, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: Some(content_type.into()),
            body: body.into(),
        }
    }

    /// An answer without a content type.
    pub fn bare(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: None,
            body: body.into(),
        }
    }
}

/// Read one request (head and a `content-length` body); `None` if the peer closed early or
/// sent no request line.
pub fn read_request(conn: &TcpStream) -> Option<Request> {
    let mut r = BufReader::new(conn.try_clone().ok()?);
    let mut first = String::new();
    r.read_line(&mut first).ok()?;
    let mut parts = first.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut len = 0;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            break;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
            headers.push((k.to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

/// Write `reply` and mark the connection closed.
pub fn respond(mut conn: &TcpStream, reply: &Reply) -> std::io::Result<()> {
    let ctype = reply
        .content_type
        .as_deref()
        .map(|t| format!("content-type: {t}\r\n"))
        .unwrap_or_default();
    write!(
        conn,
        "HTTP/1.1 {} X\r\n{ctype}content-length: {}\r\nconnection: close\r\n\r\n{}",
        reply.status,
        reply.body.len(),
        reply.body
    )
}

/// Serve on a free loopback port, one connection at a time, for the rest of the test
/// process: `handler` answers each request, or `None` to close without an answer. The
/// port.
pub fn serve(mut handler: impl FnMut(Request) -> Option<Reply> + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let Some(req) = read_request(&conn) else {
                continue;
            };
            if let Some(reply) = handler(req) {
                let _ = respond(&conn, &reply);
            }
        }
    });
    port
}

/// Like [`serve`], each connection on a thread of its own (for a peer that several clients
/// call at once, like exporters Prometheus scrapes in parallel); a request that does not
/// arrive within 5 s is dropped.
pub fn serve_concurrent(handler: impl Fn(Request) -> Option<Reply> + Send + Sync + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handler = Arc::new(handler);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let handler = handler.clone();
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let Some(req) = read_request(&conn) else {
                    return;
                };
                if let Some(reply) = handler(req) {
                    let _ = respond(&conn, &reply);
                }
            });
        }
    });
    port
}

/// A webhook receiver: records every JSON request body and answers with `status` (which
/// the test may change while it runs).
#[derive(Clone)]
pub struct Receiver {
    pub port: u16,
    /// `{"status", "body", "key"}` per JSON request: the status it was answered with, the
    /// body, the `Idempotency-Key` header (or null).
    pub got: Arc<Mutex<Vec<serde_json::Value>>>,
    pub status: Arc<AtomicU16>,
}

impl Receiver {
    pub fn start(status: u16) -> Self {
        let got = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(status));
        let (g, st) = (got.clone(), status.clone());
        let port = serve(move |req| {
            let status = st.load(Ordering::SeqCst);
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&req.body) {
                let key = req
                    .header("idempotency-key")
                    .map_or(serde_json::Value::Null, |k| k.into());
                g.lock()
                    .expect("lock")
                    .push(serde_json::json!({"status": status, "body": v, "key": key}));
            }
            Some(Reply::bare(status, "ok"))
        });
        Self { port, got, status }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Bodies the receiver accepted (answered 2xx).
    pub fn accepted(&self) -> Vec<serde_json::Value> {
        self.accepted_field("body")
    }

    /// Idempotency keys of the accepted requests, in arrival order.
    pub fn accepted_keys(&self) -> Vec<String> {
        self.accepted_field("key")
            .iter()
            .map(|k| k.as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// One field of each record the receiver answered with a 2xx, in arrival order.
    fn accepted_field(&self, field: &str) -> Vec<serde_json::Value> {
        self.got
            .lock()
            .expect("lock")
            .iter()
            .filter(|x| {
                x["status"]
                    .as_u64()
                    .is_some_and(|s| (200..300).contains(&s))
            })
            .map(|x| x[field].clone())
            .collect()
    }

    pub fn attempts(&self) -> usize {
        self.got.lock().expect("lock").len()
    }
}
