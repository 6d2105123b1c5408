//! PostgreSQL over TLS against a real server: this test starts its own PostgreSQL (initdb
//! into a temporary directory, `ssl=on` with certificates made by the `openssl` CLI, a
//! free port) and checks what each `sslmode` does. The server accepts both TLS and plain
//! connections (trust authentication on `host` lines), so every mode can be tried on it.

use std::path::{Path, PathBuf};
use std::process::Command;

use tapio_store::Store;
use tapio_store::pg::PgStore;

/// A throwaway PostgreSQL with TLS on; stopped when dropped.
struct TlsServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl TlsServer {
    fn start() -> Self {
        let bin = postgres_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        // The server's certificate names localhost and 127.0.0.1, signed by our CA; a
        // second CA signed nothing here (the "wrong CA").
        openssl(
            d,
            "req -x509 -newkey rsa:2048 -nodes -days 2 -keyout ca.key -out ca.crt -subj /CN=tapio-test-CA",
        );
        openssl(
            d,
            "req -x509 -newkey rsa:2048 -nodes -days 2 -keyout other-ca.key -out other-ca.crt -subj /CN=another-CA",
        );
        openssl(
            d,
            "req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost",
        );
        std::fs::write(
            d.join("san.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .expect("write san.ext");
        openssl(
            d,
            "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.crt",
        );
        set_mode(&d.join("server.key"), 0o600);

        // PostgreSQL refuses to run as root (CI runs tests as root): then the cluster
        // belongs to the postgres user, as in scripts/test-services.sh.
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(d));
            set_mode(d, 0o755);
        }
        let data = d.join("data");
        let mut initdb = pg_command(as_postgres, &bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres"]);
        run(&mut initdb);

        let port = tapio_testkit::free_port();
        let mut start = pg_command(as_postgres, &bin.join("pg_ctl"));
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(d.join("log"))
            .arg("-w")
            .arg("-o")
            .arg(format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c ssl=on \
             -c ssl_cert_file={cert} -c ssl_key_file={key}",
                sock = d.display(),
                cert = d.join("server.crt").display(),
                key = d.join("server.key").display(),
            ));
        start.arg("start");
        let out = start.output().expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}\nlog:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(d.join("log")).unwrap_or_default()
        );
        Self {
            dir,
            bin,
            port,
            as_postgres,
        }
    }

    fn path(&self, file: &str) -> String {
        self.dir.path().join(file).display().to_string()
    }

    /// A URL for database `db` at `host` (`?query` appended as given).
    fn url(&self, host: &str, db: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/{db}{query}", self.port)
    }

    /// A new database, made over a plain admin connection.
    async fn database(&self, admin: &tokio_postgres::Client) -> String {
        let name = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        name
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let mut stop = pg_command(self.as_postgres, &self.bin.join("pg_ctl"));
        stop.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"]);
        let _ = stop.output();
    }
}

fn postgres_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (/usr/lib/postgresql); .ci/run installs it")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    // The newest version, as scripts/test-services.sh picks it.
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found
        .pop()
        .expect("no PostgreSQL bin directory under /usr/lib/postgresql")
}

fn pg_command(as_postgres: bool, program: &Path) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// `openssl` with whitespace-separated arguments, in `dir`.
fn openssl(dir: &Path, args: &str) {
    run(Command::new("openssl")
        .current_dir(dir)
        .args(args.split_whitespace()));
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// `(connections, how many of them use TLS)` of a database, as the server sees them.
async fn sessions(admin: &tokio_postgres::Client, db: &str) -> (i64, i64) {
    let r = admin
        .query_one(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE s.ssl)
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.datname = $1",
            &[&db],
        )
        .await
        .expect("pg_stat_ssl");
    (r.get(0), r.get(1))
}

/// Connect a store; it migrated (so it really talked to the database) and answers reads.
async fn store(url: &str) -> Result<PgStore, String> {
    let s = PgStore::connect(url).await.map_err(|e| e.to_string())?;
    s.ping().await.map_err(|e| e.to_string())?;
    assert!(s.stats().await.expect("stats").schema_version > 0);
    Ok(s)
}

#[tokio::test(flavor = "multi_thread")]
async fn sslmode_is_honoured_against_a_real_tls_server() {
    let srv = TlsServer::start();
    let (admin, conn) = tokio_postgres::connect(
        &srv.url("127.0.0.1", "postgres", "?sslmode=disable"),
        tokio_postgres::NoTls,
    )
    .await
    .expect("admin connection");
    tokio::spawn(conn);
    let ca = srv.path("ca.crt");
    let other_ca = srv.path("other-ca.crt");

    // require: encrypted, certificate not checked; every connection of the store (the
    // writer and its readers) is a TLS session.
    let db = srv.database(&admin).await;
    let s = store(&srv.url("127.0.0.1", &db, "?sslmode=require"))
        .await
        .expect("sslmode=require connects");
    let (n, tls) = sessions(&admin, &db).await;
    assert!(n >= 3, "writer and readers: {n}");
    assert_eq!(tls, n, "every session is encrypted under require");
    drop(s);

    // verify-full with the CA that signed the server's certificate, by its DNS name.
    let db = srv.database(&admin).await;
    let s = store(&srv.url(
        "localhost",
        &db,
        &format!("?sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await
    .expect("verify-full with the right CA connects");
    let (n, tls) = sessions(&admin, &db).await;
    assert_eq!(
        (tls, n >= 3),
        (n, true),
        "verify-full sessions are encrypted"
    );
    drop(s);

    // verify-full against 127.0.0.1 (an IP in the certificate) works too.
    let db = srv.database(&admin).await;
    store(&srv.url(
        "127.0.0.1",
        &db,
        &format!("?sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await
    .expect("verify-full to the certificate's IP address");

    // verify-full with a CA that did not sign the server's certificate: refused, and the
    // error says why.
    let db = srv.database(&admin).await;
    let err = store(&srv.url(
        "localhost",
        &db,
        &format!("?sslmode=verify-full&sslrootcert={other_ca}"),
    ))
    .await
    .err()
    .expect("verify-full with the wrong CA must fail");
    eprintln!("verify-full, wrong CA: {err}");
    assert!(
        err.contains("sslmode=verify-full")
            && err.contains(&other_ca)
            && err.contains("UnknownIssuer"),
        "unclear error: {err}"
    );
    assert_eq!(sessions(&admin, &db).await.0, 0, "nothing connected");

    // A host name the certificate does not carry (hostaddr still reaches the server):
    // verify-full refuses, verify-ca (chain only) accepts.
    let db = srv.database(&admin).await;
    let query = format!("?hostaddr=127.0.0.1&sslrootcert={ca}&sslmode=");
    let err = store(&srv.url("db.invalid", &db, &format!("{query}verify-full")))
        .await
        .err()
        .expect("verify-full with a host name not in the certificate must fail");
    assert!(err.contains("not valid for name"), "unclear error: {err}");
    store(&srv.url("db.invalid", &db, &format!("{query}verify-ca")))
        .await
        .expect("verify-ca checks the chain, not the name");
    let err = store(&srv.url(
        "localhost",
        &db,
        &format!("?sslmode=verify-ca&sslrootcert={other_ca}"),
    ))
    .await
    .err()
    .expect("verify-ca with the wrong CA must fail");
    assert!(err.contains("UnknownIssuer"), "unclear error: {err}");

    // disable: plain text on a server that allows it.
    let db = srv.database(&admin).await;
    let s = store(&srv.url("127.0.0.1", &db, "?sslmode=disable"))
        .await
        .expect("sslmode=disable connects");
    let (n, tls) = sessions(&admin, &db).await;
    assert_eq!((n >= 3, tls), (true, 0), "disable: no TLS");
    drop(s);

    // No sslmode: as before TLS support, plain text even though the server offers TLS.
    let db = srv.database(&admin).await;
    let s = store(&srv.url("127.0.0.1", &db, ""))
        .await
        .expect("no sslmode connects");
    let (n, tls) = sessions(&admin, &db).await;
    assert_eq!(
        (n >= 3, tls),
        (true, 0),
        "no sslmode: plain text, as before"
    );
    drop(s);

    // prefer: TLS, since this server offers it.
    let db = srv.database(&admin).await;
    let s = store(&srv.url("127.0.0.1", &db, "?sslmode=prefer"))
        .await
        .expect("sslmode=prefer connects");
    let (n, tls) = sessions(&admin, &db).await;
    assert_eq!((n >= 3, tls), (true, n), "prefer: TLS when offered");
    drop(s);
}
