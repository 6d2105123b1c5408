//! The schema migrations of both backends, one numbered `.sql` file each under
//! `crates/tapio-store/migrations/{postgres,sqlite}/`, embedded at build time.
//!
//! Each backend applies the migrations newer than the highest `version` in its
//! `schema_migrations` table, in order, each in its own transaction, and records the
//! version there. The version numbers are what a database remembers, so they never change
//! and a new migration is always the next number: a database created by an older build
//! upgrades by running only the files it has not seen. The two backends are numbered alike
//! where they share a change, so `stats().schema_version` reads the same on both.

/// One schema change: its version (as recorded in `schema_migrations`), the file it comes
/// from (for messages and the numbering test) and its SQL, run as one batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub version: i64,
    pub file: &'static str,
    pub sql: &'static str,
}

/// `migration!(1, "postgres/0001_init.sql")`: the file embedded with its version.
macro_rules! migration {
    ($version:literal, $file:literal) => {
        Migration {
            version: $version,
            file: $file,
            sql: include_str!(concat!("../migrations/", $file)),
        }
    };
}

/// PostgreSQL (5: the scale-out tables, 6: the lease epoch as a key, 7: audit retention).
pub(crate) const POSTGRES: &[Migration] = &[
    migration!(1, "postgres/0001_init.sql"),
    migration!(2, "postgres/0002_outbox.sql"),
    migration!(3, "postgres/0003_silences.sql"),
    migration!(4, "postgres/0004_audit.sql"),
    migration!(5, "postgres/0005_cluster.sql"),
    migration!(6, "postgres/0006_lease_epoch_key.sql"),
    migration!(7, "postgres/0007_audit_retention.sql"),
];

/// SQLite (5: audit retention; it has no cluster tables).
pub(crate) const SQLITE: &[Migration] = &[
    migration!(1, "sqlite/0001_init.sql"),
    migration!(2, "sqlite/0002_outbox.sql"),
    migration!(3, "sqlite/0003_silences.sql"),
    migration!(4, "sqlite/0004_audit.sql"),
    migration!(5, "sqlite/0005_audit_retention.sql"),
];

/// The newest version a list knows (0 for none).
pub(crate) fn newest(list: &[Migration]) -> i64 {
    list.last().map_or(0, |m| m.version)
}

/// The message for a database whose schema is newer than this build.
pub(crate) fn too_new(current: i64, newest: i64) -> String {
    format!(
        "database schema version {current} is newer than this build knows ({newest}); \
         run the newer tapio-server or restore a backup"
    )
}

#[cfg(test)]
mod tests {
    use super::{Migration, POSTGRES, SQLITE};

    /// Versions are 1, 2, 3, … with no gap or repeat, and each file's name starts with its
    /// own version (`0003_…` is version 3), so the list and the folder cannot disagree.
    fn check(list: &[Migration], dir: &str) {
        assert!(!list.is_empty());
        for (i, m) in list.iter().enumerate() {
            let expected = i as i64 + 1;
            assert_eq!(
                m.version, expected,
                "{}: migrations must be numbered 1, 2, 3, …",
                m.file
            );
            let name = m
                .file
                .strip_prefix(&format!("{dir}/"))
                .unwrap_or_else(|| panic!("{} is not under {dir}/", m.file));
            assert!(
                name.starts_with(&format!("{expected:04}_")) && name.ends_with(".sql"),
                "{} should be named {expected:04}_<what>.sql",
                m.file
            );
            assert!(!m.sql.trim().is_empty(), "{} is empty", m.file);
        }
    }

    #[test]
    fn postgres_migrations_are_numbered_contiguously_from_one() {
        check(POSTGRES, "postgres");
    }

    #[test]
    fn sqlite_migrations_are_numbered_contiguously_from_one() {
        check(SQLITE, "sqlite");
    }

    /// Every file in the migrations folders is in its list (a file added but not listed
    /// would silently never run).
    #[test]
    fn every_migration_file_is_listed() {
        for (dir, list) in [("postgres", POSTGRES), ("sqlite", SQLITE)] {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/").to_owned() + dir;
            let mut on_disk: Vec<String> = std::fs::read_dir(&path)
                .unwrap_or_else(|e| panic!("{path}: {e}"))
                .map(|e| {
                    format!(
                        "{dir}/{}",
                        e.expect("dir entry").file_name().to_string_lossy()
                    )
                })
                .collect();
            on_disk.sort();
            let listed: Vec<String> = list.iter().map(|m| m.file.to_owned()).collect();
            assert_eq!(on_disk, listed, "migrations/{dir} and its list differ");
        }
    }
}
