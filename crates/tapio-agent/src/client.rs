//! The agent's HTTP client to tapio-server: one configuration for evidence, heartbeats and
//! the server's pod index.
//!
//! - `https://` servers are verified: against `--ca-file` (PEM, the CA that signed the
//!   server's certificate; only it is trusted) or, without it, the bundled Mozilla roots.
//!   A certificate that does not verify is a delivery failure, retried later; the agent
//!   never retries the same evidence over plain HTTP.
//! - Never a downgrade: when any `--server` is `https://`, all must be (a failover to an
//!   `http://` endpoint would send the evidence and the token in clear), the client refuses
//!   `http://` URLs outright, and redirects are not followed at all (a `3xx` is a failed
//!   attempt, so an `https → http` redirect cannot move the agent's traffic).

use std::path::Path;
use std::time::Duration;

use ureq::tls::{PemItem, RootCerts, TlsConfig};

/// How the agent talks to the server.
#[derive(Debug, Clone)]
pub struct ClientTls {
    roots: RootCerts,
    /// Refuse every `http://` URL (the servers are `https://`).
    https_only: bool,
}

impl Default for ClientTls {
    fn default() -> Self {
        Self {
            roots: RootCerts::WebPki,
            https_only: false,
        }
    }
}

impl ClientTls {
    /// Checks `--server` and `--ca-file` together and loads the CA. Errors name the bad
    /// value and what to do.
    pub fn from_args(servers: &[String], ca_file: Option<&Path>) -> Result<Self, String> {
        if servers.is_empty() {
            return Err("no --server given: set at least one tapio-server URL".into());
        }
        let mut https = Vec::new();
        let mut http = Vec::new();
        for s in servers {
            let lower = s.trim().to_ascii_lowercase();
            if lower.starts_with("https://") {
                https.push(s.as_str());
            } else if lower.starts_with("http://") {
                http.push(s.as_str());
            } else {
                return Err(format!(
                    "--server {s:?} is not a URL: use https://HOST:PORT (or http:// without TLS)"
                ));
            }
        }
        if let (Some(h), false) = (http.first(), https.is_empty()) {
            return Err(format!(
                "--server {h:?} is plain HTTP while {:?} is HTTPS: the agent never downgrades, so use https:// for every server",
                https[0]
            ));
        }
        let roots = match ca_file {
            None => RootCerts::WebPki,
            Some(path) => {
                if https.is_empty() {
                    return Err(format!(
                        "--ca-file {} is set but --server {:?} is plain HTTP: use https:// so the certificate is checked",
                        path.display(),
                        servers[0]
                    ));
                }
                load_ca(path)?
            }
        };
        Ok(Self {
            roots,
            https_only: !https.is_empty(),
        })
    }

    /// A client for the server with this TLS policy and a per-request timeout.
    pub fn agent(&self, timeout: Duration) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .https_only(self.https_only)
            .max_redirects(0)
            .tls_config(TlsConfig::builder().root_certs(self.roots.clone()).build())
            .build()
            .into()
    }
}

/// The certificates of a PEM file, as the only trusted roots.
pub fn load_ca(path: &Path) -> Result<RootCerts, String> {
    let pem = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read --ca-file {}: {e}: mount the CA certificate (PEM) there",
            path.display()
        )
    })?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(format!(
                    "--ca-file {} is not valid PEM: {e}",
                    path.display()
                ));
            }
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "--ca-file {} holds no CERTIFICATE block: give the PEM certificate of the CA that signed the server's certificate",
            path.display()
        ));
    }
    Ok(RootCerts::new_with_certs(&certs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn mixing_https_and_http_servers_is_refused_naming_the_plain_one() {
        let e = ClientTls::from_args(&s(&["https://a:8443", "http://b:8080"]), None)
            .expect_err("refused");
        assert!(
            e.contains("\"http://b:8080\"") && e.contains("never downgrades"),
            "{e}"
        );
        assert!(
            ClientTls::from_args(&s(&["https://a:8443", "https://b:8443"]), None)
                .expect("test setup")
                .https_only
        );
        assert!(
            !ClientTls::from_args(&s(&["http://a:8080"]), None)
                .expect("test setup")
                .https_only
        );
    }

    #[test]
    fn a_ca_file_needs_https_and_a_certificate() {
        let dir = tempfile::tempdir().expect("test setup");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").expect("test setup");
        let e = ClientTls::from_args(&s(&["http://a:8080"]), Some(&ca)).expect_err("refused");
        assert!(e.contains("plain HTTP"), "{e}");
        let e = ClientTls::from_args(&s(&["https://a:8443"]), Some(&ca)).expect_err("refused");
        assert!(e.contains("no CERTIFICATE"), "{e}");
        let e = ClientTls::from_args(&s(&["https://a:8443"]), Some(&dir.path().join("missing")))
            .expect_err("refused");
        assert!(e.contains("cannot read --ca-file"), "{e}");
        let e = ClientTls::from_args(&s(&["tapio:8080"]), None).expect_err("refused");
        assert!(e.contains("not a URL"), "{e}");
    }

    #[test]
    fn redirects_are_never_followed() {
        use std::io::{Read, Write};
        use std::net::TcpListener;
        // Where a redirect would lead: counts connections.
        let target = TcpListener::bind("127.0.0.1:0").expect("test setup");
        target.set_nonblocking(true).expect("test setup");
        let target_port = target.local_addr().expect("test setup").port();
        let server = TcpListener::bind("127.0.0.1:0").expect("test setup");
        let port = server.local_addr().expect("test setup").port();
        let t = std::thread::spawn(move || {
            let (mut c, _) = server.accept().expect("test setup");
            let mut buf = [0u8; 2048];
            let _ = c.read(&mut buf);
            let resp = format!(
                "HTTP/1.1 301 Moved Permanently\r\nLocation: http://127.0.0.1:{target_port}/api/v1/evidence\r\nContent-Length: 0\r\n\r\n"
            );
            c.write_all(resp.as_bytes()).expect("test setup");
        });
        let base = format!("http://127.0.0.1:{port}");
        let tls = ClientTls::from_args(std::slice::from_ref(&base), None).expect("test setup");
        let resp = tls
            .agent(Duration::from_secs(5))
            .post(format!("{base}/api/v1/evidence"))
            .send(&b"{}"[..])
            .expect("test setup");
        assert_eq!(
            resp.status().as_u16(),
            301,
            "the 3xx is the answer, a failed attempt"
        );
        t.join().expect("test setup");
        assert!(
            target.accept().is_err(),
            "the redirect target was never contacted"
        );
    }

    #[test]
    fn an_https_client_refuses_plain_http_urls() {
        let tls = ClientTls::from_args(&s(&["https://127.0.0.1:1"]), None).expect("test setup");
        let err = tls
            .agent(Duration::from_secs(2))
            .get("http://127.0.0.1:1/health")
            .call()
            .expect_err("refused");
        assert!(err.to_string().to_lowercase().contains("https"), "{err}");
    }
}
