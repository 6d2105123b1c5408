//! NATS over TLS and with credentials (`--nats-tls`, `--nats-ca`, `--nats-cert/--nats-key`,
//! `--nats-creds`, user and password in the URL), against a real `nats-server` started
//! with TLS on a free port, its certificates made by the `openssl` command.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tapio_server::pipeline::cluster::NatsSecurity;
use tapio_testkit::ports::free_port;

struct Nats(Child);

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a server certificate for 127.0.0.1 signed by it.
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=tapio-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("write ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
    // Another CA, which signed nothing this server presents.
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=other-ca",
            "-keyout",
            "other.key",
            "-out",
            "other.pem",
        ],
    );
}

/// `nats-server` with TLS required and a user, on a free port.
fn start_nats(dir: &Path) -> (Nats, u16) {
    let port = free_port();
    let child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "--tls"])
        .arg("--tlscert")
        .arg(dir.join("server.pem"))
        .arg("--tlskey")
        .arg(dir.join("server.key"))
        .args(["--user", "tapio", "--pass", "s3cret"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nats-server (apt-get install nats-server)");
    let nats = Nats(child);
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < until,
            "nats-server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (nats, port)
}

async fn connect(sec: &NatsSecurity, url: &str) -> Result<async_nats::Client, String> {
    let opts = sec.options(url).await.map_err(|e| format!("{e:#}"))?;
    tokio::time::timeout(Duration::from_secs(10), opts.connect(url))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn tls_with_the_servers_ca_and_credentials_in_the_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    certificates(dir.path());
    let (_nats, port) = start_nats(dir.path());
    let url = format!("tls://tapio:s3cret@127.0.0.1:{port}");
    let with_ca = NatsSecurity {
        ca: Some(dir.path().join("ca.pem")),
        ..Default::default()
    };

    // The CA that signed the server's certificate: connected, and a round trip works.
    let client = connect(&with_ca, &url)
        .await
        .expect("TLS with the right CA");
    let mut sub = client.subscribe("tapio.test").await.expect("subscribe");
    client
        .publish("tapio.test", "over tls".into())
        .await
        .expect("publish");
    client.flush().await.expect("flush");
    let msg = tokio::time::timeout(
        Duration::from_secs(5),
        futures_util::StreamExt::next(&mut sub),
    )
    .await
    .expect("a message within 5 s")
    .expect("the subscription is open");
    assert_eq!(&msg.payload[..], b"over tls");

    // Another CA: the server is not trusted, nothing is sent in the clear.
    let other = NatsSecurity {
        ca: Some(dir.path().join("other.pem")),
        ..Default::default()
    };
    assert!(
        connect(&other, &url).await.is_err(),
        "an untrusted server must be refused"
    );

    // The right CA, the wrong password: refused by the server.
    let bad = format!("tls://tapio:wrong@127.0.0.1:{port}");
    assert!(
        connect(&with_ca, &bad).await.is_err(),
        "a wrong password must be refused"
    );
}

#[tokio::test]
async fn a_missing_file_is_named() {
    let sec = NatsSecurity {
        ca: Some("/nonexistent/ca.pem".into()),
        ..Default::default()
    };
    let e = sec
        .options("nats://127.0.0.1:4222")
        .await
        .expect_err("a missing CA file is an error");
    let m = format!("{e:#}");
    assert!(
        m.contains("--nats-ca") && m.contains("/nonexistent/ca.pem"),
        "{m}"
    );

    let sec = NatsSecurity {
        creds: Some("/nonexistent/tapio.creds".into()),
        ..Default::default()
    };
    let e = sec
        .options("nats://127.0.0.1:4222")
        .await
        .expect_err("a missing creds file is an error");
    let m = format!("{e:#}");
    assert!(
        m.contains("--nats-creds") && m.contains("/nonexistent/tapio.creds"),
        "{m}"
    );
}
