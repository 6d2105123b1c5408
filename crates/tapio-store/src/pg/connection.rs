//! Opening PostgreSQL connections (and which URL may be shown) and migrating the schema.

use chrono::Utc;
use tokio_postgres::{Client, NoTls};

use super::ms;
use super::tls::ConnectOptions;
use crate::StoreError;
use crate::migrations;

/// Advisory lock key held while migrating, so replicas starting together migrate once.
const MIGRATION_LOCK: i64 = 0x7a70_1008;

pub(super) fn db(e: tokio_postgres::Error) -> StoreError {
    // The server's message (with its detail) says more than the client's summary.
    match e.as_db_error() {
        Some(d) => StoreError::Database(format!("{}: {}", d.severity(), d.message())),
        None => StoreError::Database(e.to_string()),
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        db(e)
    }
}

/// The URL with any password replaced, for logs and `/health`.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Open one connection (with TLS when the URL's `sslmode` asks for it, see [`super::tls`])
/// and run its protocol task in the background.
pub(super) async fn connect(opts: &ConnectOptions, location: &str) -> Result<Client, StoreError> {
    let open_err = |e: tokio_postgres::Error| StoreError::Open {
        path: location.to_owned(),
        detail: format!("cannot connect to PostgreSQL: {}", with_causes(&e)),
    };
    // The two connection types differ (plain or TLS stream), so each is spawned on its own.
    let client = match &opts.tls {
        None => {
            let (client, conn) = opts.config.connect(NoTls).await.map_err(open_err)?;
            tokio::spawn(drive(conn));
            client
        }
        Some(tls) => {
            let (client, conn) = opts.config.connect(tls.clone()).await.map_err(open_err)?;
            tokio::spawn(drive(conn));
            client
        }
    };
    Ok(client)
}

/// An error and its causes: tokio-postgres' own text ("error performing TLS handshake")
/// leaves out why, which is in its source (the certificate check that failed).
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// A connection's protocol task: runs until the connection ends.
async fn drive<C>(conn: C)
where
    C: std::future::Future<Output = Result<(), tokio_postgres::Error>>,
{
    if let Err(e) = conn.await {
        tracing::warn!(error = %e, "PostgreSQL connection ended");
    }
}

pub(super) async fn migrate(client: &mut Client, location: &str) -> Result<i64, StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let res = migrate_locked(client, location).await;
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let v = res?;
    unlock?;
    Ok(v)
}

async fn migrate_locked(client: &mut Client, location: &str) -> Result<i64, StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
        )
        .await?;
    let current: i64 = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    let newest = migrations::newest(migrations::POSTGRES);
    if current > newest {
        return Err(StoreError::Open {
            path: location.to_owned(),
            detail: migrations::too_new(current, newest),
        });
    }
    for m in migrations::POSTGRES.iter().filter(|m| m.version > current) {
        let tx = client.transaction().await?;
        tx.batch_execute(m.sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
            &[&m.version, &ms(Utc::now())],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            version = m.version,
            file = m.file,
            "store migration applied (postgres)"
        );
    }
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact("postgres://tapio:s3cret@db:5432/tapio"),
            "postgres://tapio:***@db:5432/tapio"
        );
        assert_eq!(
            redact("postgres://tapio@db/tapio"),
            "postgres://tapio@db/tapio"
        );
        assert_eq!(redact("postgres://db/tapio"), "postgres://db/tapio");
    }
}
