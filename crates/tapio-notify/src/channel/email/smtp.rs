//! A small SMTP submission client (RFC 5321) for the email receiver: EHLO, STARTTLS
//! (required unless the receiver says `tls = "none"`) or implicit TLS, AUTH PLAIN or LOGIN,
//! one envelope per message, dot-stuffed DATA. Blocking; the dispatcher runs it on a
//! blocking thread with the receiver timeout on every read and write.
//!
//! Reply classes decide what the dispatcher does: 4xx and connection failures are retried
//! with backoff, 5xx are final (then the fallback receiver).
//!
//! # Why not `lettre`
//!
//! `lettre` (0.11, on rustls with the ring provider) was evaluated as a replacement and
//! not adopted, because it would change what this receiver does:
//!
//! - its SMTP session stops at the first refused `RCPT TO` and abandons the message,
//!   while this client delivers to the recipients the server accepted and logs the refused
//!   ones (RFC 5321 allows partial acceptance; `tests/email_jira.rs` checks it);
//! - a server without STARTTLS or without a usable AUTH mechanism comes back as a
//!   "client" error, neither transient nor permanent, so the retry-or-fallback decision
//!   (4xx and network errors retried, everything else final, with a hint about the
//!   credentials) would have to be rebuilt around it;
//! - the message would be built by its MIME builder, whose headers differ from the
//!   threading, folding and encoded-words [`super::message`] is tested for;
//! - it adds its own parser and encoding dependencies for what is one plain-text part.
//!
//! What it would have replaced is small (this file is ~400 lines with its tests); base64,
//! the one piece with no behaviour of its own, comes from the `base64` crate.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use super::b64;
use crate::config::{EmailCfg, SmtpTls};
use crate::redact;

#[derive(Debug)]
pub enum SmtpError {
    /// Worth retrying: 4xx replies, network failures, timeouts.
    Temporary(String),
    /// Retrying cannot help: 5xx replies, a server without STARTTLS, bad credentials.
    Permanent(String),
}

impl std::fmt::Display for SmtpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Temporary(m) | Self::Permanent(m) => f.write_str(m),
        }
    }
}

fn io(what: &str, e: std::io::Error) -> SmtpError {
    SmtpError::Temporary(format!("{what}: {e}"))
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

/// Longest reply accepted (a hostile or broken server cannot make us buffer forever).
const MAX_REPLY: usize = 64 * 1024;

struct Session {
    conn: Option<Conn>,
    buf: Vec<u8>,
    host: String,
}

/// One reply: its code and the text of all its lines.
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn text(&self) -> String {
        self.lines.join(" / ")
    }
}

impl Session {
    fn conn(&mut self) -> Result<&mut Conn, SmtpError> {
        self.conn
            .as_mut()
            .ok_or_else(|| SmtpError::Temporary("connection lost".into()))
    }

    fn read_line(&mut self) -> Result<String, SmtpError> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Ok(String::from_utf8_lossy(&line)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned());
            }
            if self.buf.len() > MAX_REPLY {
                return Err(SmtpError::Temporary(
                    "the SMTP server sent a reply line longer than 64 KiB".into(),
                ));
            }
            let mut chunk = [0u8; 4096];
            let n = self
                .conn()?
                .read(&mut chunk)
                .map_err(|e| io("reading the SMTP reply", e))?;
            if n == 0 {
                return Err(SmtpError::Temporary(
                    "the SMTP server closed the connection".into(),
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn reply(&mut self) -> Result<Reply, SmtpError> {
        let mut lines = Vec::new();
        let mut total = 0;
        loop {
            let line = self.read_line()?;
            total += line.len();
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| {
                    SmtpError::Temporary(format!(
                        "not an SMTP reply: {:?}",
                        redact::body_excerpt(&line)
                    ))
                })?;
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_owned());
            if !more {
                return Ok(Reply { code, lines });
            }
            if total > MAX_REPLY {
                return Err(SmtpError::Temporary("SMTP reply too long".into()));
            }
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) -> Result<(), SmtpError> {
        let c = self.conn()?;
        c.write_all(bytes)
            .and_then(|()| c.flush())
            .map_err(|e| io("writing to the SMTP server", e))
    }

    /// Send one command and expect one of `ok`; `shown` is what errors quote (never a
    /// credential).
    fn command(&mut self, line: &str, shown: &str, ok: &[u16]) -> Result<Reply, SmtpError> {
        self.send_raw(format!("{line}\r\n").as_bytes())?;
        let r = self.reply()?;
        expect(r, shown, ok)
    }

    fn starttls(&mut self, config: Arc<rustls::ClientConfig>) -> Result<(), SmtpError> {
        let name = server_name(&self.host)?;
        let Some(Conn::Plain(tcp)) = self.conn.take() else {
            return Err(SmtpError::Permanent("STARTTLS on a TLS connection".into()));
        };
        // Nothing the server sent before the upgrade may be read as if it came over TLS.
        if !self.buf.is_empty() {
            return Err(SmtpError::Permanent(
                "the SMTP server sent data after its STARTTLS reply (possible injection); refusing"
                    .into(),
            ));
        }
        let conn = rustls::ClientConnection::new(config, name)
            .map_err(|e| SmtpError::Permanent(format!("TLS setup: {e}")))?;
        self.conn = Some(Conn::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))));
        Ok(())
    }
}

fn expect(r: Reply, shown: &str, ok: &[u16]) -> Result<Reply, SmtpError> {
    if ok.contains(&r.code) {
        return Ok(r);
    }
    let m = format!(
        "SMTP {shown}: {} {}",
        r.code,
        redact::body_excerpt(&r.text())
    );
    Err(if (400..500).contains(&r.code) {
        SmtpError::Temporary(m)
    } else {
        SmtpError::Permanent(m)
    })
}

fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, SmtpError> {
    rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| SmtpError::Permanent(format!("{host:?} is not a TLS server name: {e}")))
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, SmtpError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| SmtpError::Permanent(format!("TLS setup: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// The bare address of `Name <addr>` or `addr`.
pub fn envelope_address(a: &str) -> String {
    a.rsplit_once('<')
        .map_or(a, |(_, r)| r.trim_end_matches('>'))
        .trim()
        .to_owned()
}

/// RFC 5321 §4.5.2: a line starting with "." gets another; the message ends with CRLF.CRLF.
pub fn dot_stuff(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 16);
    for line in message.split("\r\n") {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    // `split` yields an empty last piece for a message ending in CRLF.
    if message.ends_with("\r\n") {
        out.truncate(out.len() - 2);
    }
    out.push_str(".\r\n");
    out
}

fn ehlo_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        })
        .unwrap_or_else(|| "tapio.localdomain".into())
}

/// Deliver one RFC 5322 `message` to `cfg.to`.
pub fn send(cfg: &EmailCfg, timeout: Duration, message: &str) -> Result<(), SmtpError> {
    let addr = (cfg.host.as_str(), cfg.port)
        .to_socket_addrs()
        .map_err(|e| io(&format!("resolving {}:{}", cfg.host, cfg.port), e))?
        .next()
        .ok_or_else(|| SmtpError::Temporary(format!("{} has no address", cfg.host)))?;
    let tcp = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| io(&format!("connecting to {}:{}", cfg.host, cfg.port), e))?;
    tcp.set_read_timeout(Some(timeout))
        .and_then(|()| tcp.set_write_timeout(Some(timeout)))
        .map_err(|e| io("socket timeouts", e))?;
    let mut s = Session {
        conn: Some(Conn::Plain(tcp)),
        buf: Vec::new(),
        host: cfg.host.clone(),
    };
    if cfg.tls == SmtpTls::Implicit {
        s.starttls(tls_config()?)?;
    }
    let greeting = s.reply()?;
    expect(greeting, "greeting", &[220])?;
    let me = ehlo_name();
    let mut caps = s.command(&format!("EHLO {me}"), "EHLO", &[250])?.lines;
    if cfg.tls == SmtpTls::StartTls {
        if !has_cap(&caps, "STARTTLS") {
            return Err(SmtpError::Permanent(format!(
                "{}:{} does not offer STARTTLS; use smtps:// for TLS from the start, or tls = \"none\" only for a trusted local relay",
                cfg.host, cfg.port
            )));
        }
        s.command("STARTTLS", "STARTTLS", &[220])?;
        s.starttls(tls_config()?)?;
        // RFC 3207: forget everything learnt before TLS and ask again.
        caps = s.command(&format!("EHLO {me}"), "EHLO", &[250])?.lines;
    }
    if let (Some(user), Some(pass)) = (&cfg.username, &cfg.password) {
        let mechs: Vec<String> = caps
            .iter()
            .filter_map(|c| c.strip_prefix("AUTH ").or_else(|| c.strip_prefix("AUTH=")))
            .flat_map(|m| m.split_whitespace().map(str::to_ascii_uppercase))
            .collect();
        if mechs.iter().any(|m| m == "PLAIN") {
            let token = b64(format!("\0{user}\0{pass}").as_bytes());
            s.command(&format!("AUTH PLAIN {token}"), "AUTH PLAIN", &[235])
                .map_err(auth_error)?;
        } else if mechs.iter().any(|m| m == "LOGIN") {
            s.command("AUTH LOGIN", "AUTH LOGIN", &[334])?;
            s.command(&b64(user.as_bytes()), "AUTH LOGIN (user)", &[334])
                .map_err(auth_error)?;
            s.command(&b64(pass.as_bytes()), "AUTH LOGIN (password)", &[235])
                .map_err(auth_error)?;
        } else {
            return Err(SmtpError::Permanent(format!(
                "{}:{} offers no AUTH PLAIN or LOGIN (offered: {})",
                cfg.host,
                cfg.port,
                if mechs.is_empty() {
                    "none".into()
                } else {
                    mechs.join(" ")
                }
            )));
        }
    }
    let from = envelope_address(&cfg.from);
    let body_param = if has_cap(&caps, "8BITMIME") {
        " BODY=8BITMIME"
    } else {
        ""
    };
    s.command(
        &format!("MAIL FROM:<{from}>{body_param}"),
        "MAIL FROM",
        &[250],
    )?;
    let mut accepted = 0;
    let mut refused = Vec::new();
    for to in &cfg.to {
        let to = envelope_address(to);
        match s.command(&format!("RCPT TO:<{to}>"), "RCPT TO", &[250, 251]) {
            Ok(_) => accepted += 1,
            Err(SmtpError::Permanent(m)) => refused.push(format!("{to}: {m}")),
            Err(e) => return Err(e),
        }
    }
    if accepted == 0 {
        return Err(SmtpError::Permanent(format!(
            "every recipient was refused: {}",
            refused.join("; ")
        )));
    }
    if !refused.is_empty() {
        tracing::warn!(component = "notify", refused = %refused.join("; "),
            "some email recipients were refused; delivered to the others");
    }
    s.command("DATA", "DATA", &[354])?;
    s.send_raw(dot_stuff(message).as_bytes())?;
    expect(s.reply()?, "message", &[250])?;
    // The message is accepted; a failed QUIT changes nothing.
    let _ = s.command("QUIT", "QUIT", &[221]);
    Ok(())
}

fn auth_error(e: SmtpError) -> SmtpError {
    match e {
        SmtpError::Permanent(m) => SmtpError::Permanent(format!(
            "{m} (check the receiver's username and password_env / password_file)"
        )),
        t => t,
    }
}

fn has_cap(caps: &[String], name: &str) -> bool {
    caps.iter().any(|c| {
        c.split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case(name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_and_terminator() {
        assert_eq!(dot_stuff("a\r\n.b\r\n..c\r\n"), "a\r\n..b\r\n...c\r\n.\r\n");
        assert_eq!(dot_stuff("x"), "x\r\n.\r\n");
        assert_eq!(dot_stuff(".\r\n"), "..\r\n.\r\n");
    }

    #[test]
    fn envelope_addresses() {
        assert_eq!(envelope_address("Tapio <t@x.io>"), "t@x.io");
        assert_eq!(envelope_address("oncall@x.io"), "oncall@x.io");
    }

    #[test]
    fn capabilities_match_by_keyword() {
        let caps = vec![
            "mail.example.com".to_owned(),
            "STARTTLS".into(),
            "SIZE 1000".into(),
        ];
        assert!(has_cap(&caps, "starttls"));
        assert!(has_cap(&caps, "SIZE"));
        assert!(!has_cap(&caps, "8BITMIME"));
    }
}
