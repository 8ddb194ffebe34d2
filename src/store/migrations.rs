//! The schema's migrations, embedded in the binary (`migrations/<back end>/NNNN_name.sql`): the same schema
//! for each back end, in its own dialect where the two differ. Built from `include_str!` rather than sqlx's
//! `migrate!` macro, which compiles sqlx's core a second time for the host (time to green, BENCHMARKS.md);
//! versions, descriptions and checksums are the ones `migrate!` records, so existing databases agree.

use std::borrow::Cow;
use std::sync::OnceLock;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// Both folders hold the same files (each in its back end's dialect), so they are listed once; a unit test
/// holds the list to each folder.
macro_rules! embedded {
    ($($file:literal),+ $(,)?) => {
        const SQLITE: &[(&str, &str)] =
            &[$(($file, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite/", $file)))),+];
        const POSTGRES: &[(&str, &str)] =
            &[$(($file, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres/", $file)))),+];
    };
}

embedded!(
    "0001_init.sql",
    "0002_live_updates.sql",
    "0003_google.sql",
    "0004_scans.sql",
    "0005_scan_retention.sql",
    "0006_offers.sql"
);

/// The migrator of a back end, built once.
pub(super) fn migrator(sqlite: bool) -> &'static Migrator {
    static SQLITE_MIGRATOR: OnceLock<Migrator> = OnceLock::new();
    static POSTGRES_MIGRATOR: OnceLock<Migrator> = OnceLock::new();
    let (cell, files) = if sqlite { (&SQLITE_MIGRATOR, SQLITE) } else { (&POSTGRES_MIGRATOR, POSTGRES) };
    cell.get_or_init(|| Migrator::with_migrations(files.iter().map(|(file, sql)| migration(file, sql)).collect()))
}

/// A migration as sqlx names it from its file: `NNNN_some_name.sql` is version NNNN, "some name".
fn migration(file: &str, sql: &'static str) -> Migration {
    let (version, name) = file.split_once('_').expect("a migration file is NNNN_name.sql");
    let version = version.parse().expect("a migration file starts with its version");
    let description = name.trim_end_matches(".sql").replace('_', " ");
    let no_tx = sql.starts_with("-- no-transaction");
    Migration::new(version, Cow::Owned(description), MigrationType::Simple, sql.into_sql_str(), no_tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(dir: &str) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dir);
        let mut files: Vec<String> =
            std::fs::read_dir(path).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        files.sort();
        files
    }

    #[test]
    fn every_file_of_each_folder_is_embedded_in_order() {
        for (dir, list) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let embedded: Vec<String> = list.iter().map(|(f, _)| f.to_string()).collect();
            assert_eq!(embedded, folder(dir), "migrations/{dir}");
        }
    }

    #[test]
    fn versions_descriptions_and_checksums_are_the_ones_sqlx_gives_a_folder() {
        let m = migrator(true);
        let versions: Vec<i64> = m.iter().map(|m| m.version).collect();
        assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
        let second = m.iter().nth(1).unwrap();
        assert_eq!(second.description, "live updates");
        assert_eq!(second.migration_type, MigrationType::Simple);
        // sqlx's checksum is SHA-384 of the file's text.
        let sql = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite/0002_live_updates.sql"),
        )
        .unwrap();
        assert_eq!(&*second.checksum, openssl::sha::sha384(sql.as_bytes()).as_slice());
        assert_eq!(migrator(false).iter().count(), folder("postgres").len());
    }
}
