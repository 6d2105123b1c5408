//! The optional HTTPS listener (`--tls-cert FILE --tls-key FILE`).
//!
//! - rustls (ring provider, TLS 1.2 and 1.3), HTTP/1.1.
//! - The certificate and key are re-read when either file changes (checked every second:
//!   modification time, size and inode, so a Kubernetes Secret's atomic symlink swap is
//!   seen). New connections get the new certificate; open ones keep theirs. A pair that does
//!   not load (unreadable, not PEM, key not matching the certificate) is refused with an
//!   error log and `tapio_tls_reloads_total{result="failed"}`, and the previous pair stays in
//!   force: a bad rotation never takes the server off the air.
//! - Handshakes run off the accept loop, at most [`MAX_HANDSHAKES`] at once and each within
//!   [`HANDSHAKE_TIMEOUT`], so a client that opens connections and never speaks cannot stall
//!   other clients. Failures are counted in `tapio_tls_handshakes_total{result}`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::metrics::Metrics;

/// Handshakes in progress at once; further connections wait to be accepted.
pub const MAX_HANDSHAKES: usize = 256;
/// A client must complete its handshake within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// File identity used to notice a change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(
    Option<(std::time::SystemTime, u64, u64)>,
    Option<(std::time::SystemTime, u64, u64)>,
);

fn stamp_of(p: &Path) -> Option<(std::time::SystemTime, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    // Follows symlinks: a Secret volume swaps `..data` under stable names.
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// The certificate in force, swapped on reload.
#[derive(Debug)]
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    stamp: std::sync::Mutex<Stamp>,
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

/// Loads a certificate chain and its private key (PEM), checking they belong together.
pub fn load_pair(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| format!("cannot read --tls-cert {}: {e}", cert_path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--tls-cert {} is not valid PEM: {e}", cert_path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "--tls-cert {} holds no CERTIFICATE block: give the server certificate (then any intermediates) in PEM",
            cert_path.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
        format!(
            "--tls-key {} holds no usable private key ({e}): give the PEM key (PKCS#8, PKCS#1 or SEC1) of the certificate",
            key_path.display()
        )
    })?;
    let provider = rustls::crypto::ring::default_provider();
    let ck = CertifiedKey::from_der(certs, key, &provider).map_err(|e| {
        format!(
            "--tls-key {} does not fit --tls-cert {}: {e}",
            key_path.display(),
            cert_path.display()
        )
    })?;
    Ok(ck)
}

impl CertStore {
    pub fn open(cert_path: &Path, key_path: &Path) -> Result<Arc<Self>, String> {
        let ck = load_pair(cert_path, key_path)?;
        Ok(Arc::new(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            current: RwLock::new(Arc::new(ck)),
            stamp: std::sync::Mutex::new(Stamp(stamp_of(cert_path), stamp_of(key_path))),
        }))
    }

    /// Re-reads the pair when a file changed. `Some(Ok)` reloaded, `Some(Err)` refused
    /// (the previous pair stays), `None` unchanged.
    pub fn reload_if_changed(&self) -> Option<Result<(), String>> {
        let now = Stamp(stamp_of(&self.cert_path), stamp_of(&self.key_path));
        {
            let mut last = self.stamp.lock().ok()?;
            if *last == now {
                return None;
            }
            *last = now;
        }
        Some(load_pair(&self.cert_path, &self.key_path).map(|ck| {
            if let Ok(mut c) = self.current.write() {
                *c = Arc::new(ck);
            }
        }))
    }

    /// The rustls configuration serving this store's certificate.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, String> {
        let mut cfg =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS configuration: {e}"))?
                .with_no_client_auth()
                .with_cert_resolver(self.clone());
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

/// Re-checks the files every second until shutdown.
pub async fn reload_loop(
    store: Arc<CertStore>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let s = store.clone();
        let outcome = tokio::task::spawn_blocking(move || s.reload_if_changed())
            .await
            .ok()
            .flatten();
        match outcome {
            None => {}
            Some(Ok(())) => {
                metrics.tls_reload("ok");
                tracing::info!(
                    component = "tls",
                    cert = %store.cert_path.display(),
                    "TLS certificate reloaded; new connections use it"
                );
            }
            Some(Err(e)) => {
                metrics.tls_reload("failed");
                tracing::error!(
                    component = "tls",
                    error = %e,
                    "TLS certificate change refused; the previous certificate stays in force"
                );
            }
        }
    }
}

/// Accepted, handshaken connections for `axum::serve`.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `tcp` and handshakes in the background.
    pub fn spawn(tcp: TcpListener, config: Arc<ServerConfig>, metrics: Arc<Metrics>) -> Self {
        let local = tcp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (tx, rx) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(component = "tls", error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                if tx.is_closed() {
                    return;
                }
                let (acceptor, conn_tx, metrics) = (acceptor.clone(), tx.clone(), metrics.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            metrics.tls_handshake("ok");
                            let _ = conn_tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            metrics.tls_handshake("failed");
                            tracing::debug!(component = "tls", peer = %peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => metrics.tls_handshake("timeout"),
                    }
                });
            }
        });
        Self { rx, local }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task ended (runtime shutting down): never yield again.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
