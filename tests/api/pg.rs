//! The `api_postgres` test binary's PostgreSQL: one cluster per test binary (pg_cluster.rs), started on
//! first use, one fresh database per test, stopped when the binary exits.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::Connection;

use crate::pg_cluster::{Cluster, create_database};

/// The back end this test binary runs the suite on: `api` runs it on SQLite, `api_postgres` on
/// PostgreSQL (the same files, compiled twice; see Cargo.toml).
pub fn postgres_wanted() -> bool {
    env!("CARGO_CRATE_NAME") == "api_postgres"
}

static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();

/// A fresh, empty PostgreSQL database's URL, or `None` when PostgreSQL is not installed: then every
/// test of this binary fails under CI=true, and elsewhere says that its PostgreSQL run was skipped
/// (it goes on on SQLite, which the `api` binary covers already).
pub async fn fresh_database() -> Option<String> {
    static SAID: AtomicBool = AtomicBool::new(false);
    if crate::pg_cluster::bin_dir().is_none() {
        // Every test fails under CI; elsewhere one line says so for the whole binary.
        if crate::tools::in_ci() || !SAID.swap(true, Ordering::Relaxed) {
            crate::pg_cluster::require_postgres("this binary's tests on PostgreSQL (they run on SQLite instead)");
        }
        return None;
    }
    let base =
        tokio::task::spawn_blocking(|| CLUSTER.get_or_init(crate::pg_cluster::start).as_ref().map(|c| c.base.clone()))
            .await
            .unwrap()?;
    Some(create_database(&base).await)
}

/// Modules of tests/api/ that only the PostgreSQL binary runs.
const POSTGRES_ONLY: &[&str] = &["google_rate", "outage", "pg_tls", "scale_out"];

/// Modules of tests/api/ that only the SQLite binary runs. The pass cache's memory budget is the server's
/// own caches, whatever the back end; its 20,000 signed passes are the suite's longest test, once is enough.
const SQLITE_ONLY: &[&str] = &["pass_cache"];

#[test]
fn the_postgres_run_lists_every_suite_module() {
    let modules = |file: &str| -> Vec<String> {
        let text = std::fs::read_to_string(crate::helpers::repo().join(file)).unwrap();
        let mut names: Vec<String> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("mod ").and_then(|r| r.strip_suffix(';')).map(str::to_string))
            .collect();
        names.sort();
        names
    };
    // Two suites only make sense with several processes on one database: they are PostgreSQL's alone.
    let mut expected = modules("tests/api/main.rs");
    expected.retain(|m| !SQLITE_ONLY.contains(&m.as_str()));
    expected.extend(POSTGRES_ONLY.iter().map(|m| m.to_string()));
    expected.sort();
    assert_eq!(expected, modules("tests/api_postgres.rs"));
}

#[tokio::test]
async fn this_binary_runs_on_the_back_end_it_names() {
    if postgres_wanted() && crate::pg_cluster::require_postgres("the check that this binary runs on it").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = crate::helpers::database_url(dir.path()).await;
    if postgres_wanted() {
        assert!(url.starts_with("postgres://"), "{url}");
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(tables, 0, "each test gets a fresh, empty database");
    } else {
        assert!(url.starts_with("sqlite://"), "{url}");
    }
}
