//! Upgrading an existing database: a store opened on a database an older build left at
//! some schema version runs only the newer migration files, keeps the data, and ends at
//! the newest version; a database newer than this build is refused. Both backends.

mod support;

use chrono::{Duration, Utc};
use tapio_store::Store;
use tapio_store::pg::PgStore;
use tapio_store::sqlite::{Durability, SqliteStore};
use ulid::Ulid;

/// The first three migrations of each backend, as an older build applied them.
const SQLITE_OLD: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_outbox.sql")),
    (3, include_str!("../migrations/sqlite/0003_silences.sql")),
];
const POSTGRES_OLD: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_outbox.sql")),
    (3, include_str!("../migrations/postgres/0003_silences.sql")),
];

/// A silence row written straight into the old schema.
fn silence_row() -> (String, i64, String) {
    let ends = Utc::now() + Duration::hours(1);
    (
        Ulid::new().to_string(),
        ends.timestamp_millis(),
        r#"{"made":"by the old build"}"#.to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_old_sqlite_database_is_upgraded_in_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (id, ends_ms, body) = silence_row();
    {
        let conn = rusqlite::Connection::open(dir.path().join("tapio.db")).expect("open");
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)",
        )
        .expect("schema_migrations");
        for (version, sql) in SQLITE_OLD {
            conn.execute_batch(sql).expect("old migration");
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_ms) VALUES (?1, 0)",
                [version],
            )
            .expect("record version");
        }
        conn.execute(
            "INSERT INTO silences (id, ends_ms, body) VALUES (?1, ?2, ?3)",
            rusqlite::params![id, ends_ms, body],
        )
        .expect("old data");
    }
    let s = SqliteStore::open(dir.path(), Durability::Normal).expect("upgrade");
    assert_eq!(s.stats().await.expect("stats").schema_version, 5);
    assert_eq!(s.silences(Utc::now()).await.expect("silences"), vec![body]);
    // Migration 4 and 5 ran: the audit trail exists and refuses changes.
    s.audit_append(vec![(Utc::now(), "{}".to_owned())])
        .await
        .expect("audit after upgrade");
    drop(s);
    let conn = rusqlite::Connection::open(dir.path().join("tapio.db")).expect("reopen");
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("versions");
    assert_eq!(versions, vec![1, 2, 3, 4, 5]);
    assert!(
        conn.execute("DELETE FROM audit", []).is_err(),
        "the audit trail is append-only after the upgrade"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_old_postgres_database_is_upgraded_in_place() {
    let url = support::services::fresh_database().await;
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .batch_execute(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
        )
        .await
        .expect("schema_migrations");
    for (version, sql) in POSTGRES_OLD {
        client.batch_execute(sql).await.expect("old migration");
        client
            .execute(
                "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, 0)",
                &[version],
            )
            .await
            .expect("record version");
    }
    let (id, ends_ms, body) = silence_row();
    client
        .execute(
            "INSERT INTO silences (id, ends_ms, body) VALUES ($1, $2, $3)",
            &[&id, &ends_ms, &body],
        )
        .await
        .expect("old data");

    let s = PgStore::connect(&url).await.expect("upgrade");
    assert_eq!(s.stats().await.expect("stats").schema_version, 7);
    assert_eq!(s.silences(Utc::now()).await.expect("silences"), vec![body]);
    let versions: Vec<i64> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("versions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 6, 7]);
    // Migration 6: the lease epoch is a key.
    let unique: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'leases_part_epoch'",
            &[],
        )
        .await
        .expect("index")
        .get(0);
    assert_eq!(unique, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_newer_than_this_build_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(SqliteStore::open(dir.path(), Durability::Normal).expect("create"));
    let conn = rusqlite::Connection::open(dir.path().join("tapio.db")).expect("open");
    conn.execute(
        "INSERT INTO schema_migrations (version, applied_ms) VALUES (99, 0)",
        [],
    )
    .expect("a future version");
    drop(conn);
    let err = SqliteStore::open(dir.path(), Durability::Normal)
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("database schema version 99 is newer than this build knows (5)"),
        "{err}"
    );

    let url = support::services::fresh_database().await;
    drop(PgStore::connect(&url).await.expect("create"));
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES (99, 0)",
            &[],
        )
        .await
        .expect("a future version");
    let err = PgStore::connect(&url).await.err().expect("refused");
    assert!(
        err.to_string()
            .contains("database schema version 99 is newer than this build knows (7)"),
        "{err}"
    );
}
