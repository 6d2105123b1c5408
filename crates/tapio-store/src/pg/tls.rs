//! TLS for the PostgreSQL connections: libpq's `sslmode` and `sslrootcert` URL parameters,
//! on rustls with the ring provider (the same TLS stack as the rest of Tapio; no
//! aws-lc-rs, see the workspace `Cargo.toml`).
//!
//! tokio-postgres itself knows only `disable`, `prefer` and `require` and refuses
//! `verify-ca`, `verify-full` and `sslrootcert`, so [`ConnectOptions::parse`] takes those two
//! parameters out of the URL, gives tokio-postgres the mode it understands, and sets up
//! the certificate checks here:
//!
//! | `sslmode`     | TLS                              | server certificate checked            |
//! |---------------|----------------------------------|---------------------------------------|
//! | (none)        | never: as before TLS support     | —                                     |
//! | `disable`     | never                            | —                                     |
//! | `prefer`      | if the server offers it          | only if `sslrootcert` is given (chain) |
//! | `require`     | always                           | only if `sslrootcert` is given (chain) |
//! | `verify-ca`   | always                           | chain                                 |
//! | `verify-full` | always                           | chain and host name                   |
//!
//! "Chain" means signed by a CA in `sslrootcert` (a PEM file), or by a well-known public
//! CA (the bundled Mozilla set) when `sslrootcert` is absent or `system`. A URL without
//! `sslmode` keeps the behaviour Tapio had before: tokio-postgres' default `prefer` with
//! no TLS implementation means plain text. Channel binding (SCRAM-…-PLUS) is not offered;
//! SCRAM authentication works as before.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// The `sslmode` values Tapio accepts (libpq's, less `allow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn parse(v: &str) -> Result<Self, String> {
        Ok(match v {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            "allow" => {
                return Err(
                    "sslmode=allow is not supported; use disable, prefer or require".to_owned(),
                );
            }
            other => {
                return Err(format!(
                    "unknown sslmode `{other}`; expected disable, prefer, require, verify-ca or verify-full"
                ));
            }
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// How to reach the database: tokio-postgres' configuration and, when TLS may be used,
/// the connector that does it (`None`: plain text only, tokio-postgres' `NoTls`).
#[derive(Clone)]
pub struct ConnectOptions {
    pub config: tokio_postgres::Config,
    pub tls: Option<RustlsConnector>,
}

impl ConnectOptions {
    /// Read a libpq-style URL (`postgres://…?sslmode=verify-full&sslrootcert=/ca.pem`).
    /// The key=value form (`host=… dbname=…`) is handed to tokio-postgres as it is: there
    /// `sslmode` may be `disable`, `prefer` or `require` (no certificate check).
    pub fn parse(url: &str) -> Result<Self, String> {
        let (rest, mode, rootcert) = take_tls_params(url)?;
        let mut config: tokio_postgres::Config = rest.parse().map_err(|e| {
            format!(
                "not a PostgreSQL URL ({e}); expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
            )
        })?;
        // The key=value form's `sslmode=require` (tokio-postgres parsed it); its `prefer`
        // cannot be told from the default and stays plain text, as before.
        let mode = match mode {
            Some(m) => Some(m),
            None if config.get_ssl_mode() == SslMode::Require => Some(Mode::Require),
            None if config.get_ssl_mode() == SslMode::Disable => Some(Mode::Disable),
            None => None,
        };
        // Without `sslmode`, a CA file still asks for TLS (libpq's default is `prefer`).
        let mode = match (mode, &rootcert) {
            (None, Some(_)) => Some(Mode::Prefer),
            (m, _) => m,
        };
        let tls = match mode {
            None | Some(Mode::Disable) => None,
            Some(mode) => Some(RustlsConnector::new(mode, rootcert.as_deref())?),
        };
        config.ssl_mode(match mode {
            // Today's default: tokio-postgres' `prefer`, which with `NoTls` is plain text.
            None => config.get_ssl_mode(),
            Some(Mode::Disable) => SslMode::Disable,
            Some(Mode::Prefer) => SslMode::Prefer,
            Some(Mode::Require | Mode::VerifyCa | Mode::VerifyFull) => SslMode::Require,
        });
        Ok(Self { config, tls })
    }
}

/// Take `sslmode` and `sslrootcert` out of a URL's query (tokio-postgres refuses the
/// values it does not know); everything else is left for tokio-postgres.
fn take_tls_params(url: &str) -> Result<(String, Option<Mode>, Option<String>), String> {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
        return Ok((url.to_owned(), None, None));
    };
    let (mut mode, mut rootcert, mut kept) = (None, None, Vec::new());
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("sslmode", v)) => mode = Some(Mode::parse(&percent_decode(v)?)?),
            Some(("sslrootcert", v)) => rootcert = Some(percent_decode(v)?),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, mode, rootcert))
}

/// `%2F` → `/` (a URL query value; `+` is left as it is, as libpq does).
fn percent_decode(v: &str) -> Result<String, String> {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = v
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in `{v}`"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{v}` is not UTF-8 once decoded"))
}

/// tokio-postgres' TLS hook, on rustls with the ring provider.
#[derive(Clone)]
pub struct RustlsConnector {
    config: Arc<ClientConfig>,
    /// For handshake errors: "sslmode=verify-full, CA /etc/ca.pem".
    describe: Arc<str>,
}

impl RustlsConnector {
    fn new(mode: Mode, rootcert: Option<&str>) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?;
        let check_chain = matches!(mode, Mode::VerifyCa | Mode::VerifyFull) || rootcert.is_some();
        let (config, ca) = if check_chain {
            let (roots, ca) = roots(rootcert)?;
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("TLS setup: {e}"))?;
            let config = if mode == Mode::VerifyFull {
                builder.with_webpki_verifier(webpki)
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
            };
            (config, ca)
        } else {
            let algs = provider.signature_verification_algorithms;
            let config = builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly(algs)));
            (config, "not checked".to_owned())
        };
        Ok(Self {
            config: Arc::new(config.with_no_client_auth()),
            describe: format!("sslmode={}, server certificate: {ca}", mode.as_str()).into(),
        })
    }
}

/// The trusted CAs: the PEM file `sslrootcert`, or the bundled Mozilla set.
fn roots(rootcert: Option<&str>) -> Result<(RootCertStore, String), String> {
    let mut roots = RootCertStore::empty();
    match rootcert {
        None | Some("system") => {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            Ok((
                roots,
                "checked against the well-known public CAs".to_owned(),
            ))
        }
        Some(path) => {
            let bad = |e: &dyn std::fmt::Display| format!("sslrootcert {path}: {e}");
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
            if roots.is_empty() {
                return Err(bad(&"no certificate in the file"));
            }
            Ok((roots, format!("checked against the CA in {path}")))
        }
    }
}

/// `verify-ca` (and `prefer`/`require` with `sslrootcert`): the chain must lead to a
/// trusted CA; the host name is not compared (libpq's meaning of verify-ca).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name, so a name error means the chain passed.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` / `require` without a CA: encrypted, but any server certificate is accepted
/// (libpq's meaning; it protects against eavesdropping, not against an impostor). The
/// handshake signatures are still verified, so the session key belongs to that certificate.
#[derive(Debug)]
struct EncryptOnly(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

impl<S> MakeTlsConnect<S> for RustlsConnector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, io::Error> {
        // Empty for a Unix socket, where PostgreSQL never offers TLS: fail only if used.
        let name = ServerName::try_from(domain.to_owned()).ok();
        Ok(RustlsConnect {
            config: self.config.clone(),
            name,
            describe: self.describe.clone(),
        })
    }
}

/// One connection's TLS handshake.
pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: Option<ServerName<'static>>,
    describe: Arc<str>,
}

type Handshake<S> = Pin<Box<dyn Future<Output = Result<RustlsStream<S>, io::Error>> + Send>>;

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Handshake<S>;

    fn connect(self, stream: S) -> Handshake<S> {
        Box::pin(async move {
            let name = self.name.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "no host name to check TLS against",
                )
            })?;
            let host = name.to_str().into_owned();
            tokio_rustls::TlsConnector::from(self.config)
                .connect(name, stream)
                .await
                .map(RustlsStream)
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("TLS with {host} failed ({}): {e}", self.describe),
                    )
                })
        })
    }
}

/// An established TLS session, as tokio-postgres reads and writes it.
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::{ConnectOptions, Mode, take_tls_params};
    use tokio_postgres::config::SslMode;

    #[test]
    fn tls_parameters_are_taken_out_and_the_rest_kept() {
        let (rest, mode, ca) = take_tls_params(
            "postgres://u@db:5432/tapio?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .expect("parses");
        assert_eq!(rest, "postgres://u@db:5432/tapio?application_name=x");
        assert_eq!(mode, Some(Mode::VerifyFull));
        assert_eq!(ca.as_deref(), Some("/etc/ca.pem"));
        let (rest, mode, ca) =
            take_tls_params("postgres://u@db/tapio?sslmode=require").expect("ok");
        assert_eq!(
            (rest.as_str(), mode, ca),
            ("postgres://u@db/tapio", Some(Mode::Require), None)
        );
    }

    #[test]
    fn without_sslmode_nothing_changes() {
        let o = ConnectOptions::parse("postgres://u@db/tapio").expect("parses");
        assert!(o.tls.is_none(), "no TLS connector: plain text as before");
        assert_eq!(o.config.get_ssl_mode(), SslMode::Prefer);
        let o = ConnectOptions::parse("postgres://u@db/tapio?sslmode=disable").expect("parses");
        assert!(o.tls.is_none());
        assert_eq!(o.config.get_ssl_mode(), SslMode::Disable);
    }

    #[test]
    fn modes_map_onto_what_tokio_postgres_knows() {
        for (m, want) in [
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::Require),
            ("verify-full", SslMode::Require),
        ] {
            let o = ConnectOptions::parse(&format!("postgres://u@db/tapio?sslmode={m}"))
                .unwrap_or_else(|e| panic!("{m}: {e}"));
            assert!(o.tls.is_some(), "{m}");
            assert_eq!(o.config.get_ssl_mode(), want, "{m}");
        }
    }

    #[test]
    fn bad_values_are_refused_clearly() {
        let e = ConnectOptions::parse("postgres://u@db/t?sslmode=allow")
            .err()
            .expect("refused");
        assert!(e.contains("allow is not supported"), "{e}");
        let e = ConnectOptions::parse("postgres://u@db/t?sslmode=verify")
            .err()
            .expect("refused");
        assert!(e.contains("unknown sslmode `verify`"), "{e}");
        let e = ConnectOptions::parse(
            "postgres://u@db/t?sslmode=require&sslrootcert=/nonexistent/ca.pem",
        )
        .err()
        .expect("refused");
        assert!(e.contains("sslrootcert /nonexistent/ca.pem"), "{e}");
    }
}
