//! Opening the database: SQLite (a one-connection writer pool, since SQLite has one writer anyway, and a
//! reader pool) or PostgreSQL (one pool, with a statement timeout).

use std::str::FromStr;
use std::time::Duration;

use sqlx::Executor;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};

use super::{Store, StoreResult};

/// How the store uses its database; the settings fill it in.
#[derive(Debug, Clone, Copy)]
pub struct DatabaseOptions {
    /// PostgreSQL connections per instance (SQLite: one writer and eight readers, always).
    pub pool_size: u32,
    /// PostgreSQL's `statement_timeout`: a statement that runs longer is cancelled.
    pub statement_timeout_ms: u64,
    /// How long a request waits for a free connection before it is answered 503 `unavailable`.
    pub acquire_timeout_ms: u64,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        DatabaseOptions { pool_size: 16, statement_timeout_ms: 10_000, acquire_timeout_ms: 5_000 }
    }
}

/// SQLite's page cache per connection. The writer does the batches and keeps SQLite's default (2 MiB);
/// the eight readers do single-row lookups that the operating system's file cache serves as well, so
/// each keeps 512 KiB and the process stays small (the signed-pass cache has the memory budget).
const WRITER_CACHE_KIB: u32 = 2000;
const READER_CACHE_KIB: u32 = 512;
const SQLITE_READERS: u32 = 8;

impl Store {
    /// Opens the database (creating a SQLite file if missing) with the default options. Does not migrate.
    pub async fn connect(url: &str) -> StoreResult<Store> {
        Self::connect_with(url, DatabaseOptions::default()).await
    }

    pub async fn connect_with(url: &str, options: DatabaseOptions) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        if url.starts_with("sqlite:") {
            connect_sqlite(url, options).await
        } else {
            connect_postgres(url, options).await
        }
    }
}

async fn connect_sqlite(url: &str, options: DatabaseOptions) -> StoreResult<Store> {
    let with_mode = if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    };
    let connect = AnyConnectOptions::from_str(&with_mode)?;
    let pool = |size: u32, cache_kib: u32, acquire_ms: u64, autocheckpoint: u32| {
        AnyPoolOptions::new().max_connections(size).acquire_timeout(Duration::from_millis(acquire_ms)).after_connect(
            move |conn, _| {
                Box::pin(async move {
                    // WAL lets readers run beside the writer; FULL syncs each commit so an answered
                    // request survives a crash of the machine, not only of the process.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute(sqlx::AssertSqlSafe(format!("PRAGMA wal_autocheckpoint = {autocheckpoint}"))).await?;
                    conn.execute(sqlx::AssertSqlSafe(format!("PRAGMA cache_size = -{cache_kib}"))).await?;
                    Ok(())
                })
            },
        )
    };
    // Writes queue for the one writer: a burst waits its turn (up to 30 s) rather than failing fast.
    let writer =
        pool(1, WRITER_CACHE_KIB, 30_000.max(options.acquire_timeout_ms), 0).connect_with(connect.clone()).await?;
    let reader = pool(SQLITE_READERS, READER_CACHE_KIB, options.acquire_timeout_ms, 1000).connect_with(connect).await?;
    tokio::spawn(checkpoint_in_background(reader.clone()));
    Ok(Store::new(writer, reader, true, url))
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Checkpoints the WAL from a reader, beside the writer: SQLite's automatic checkpoint runs inside the
/// commit that crosses 1,000 pages, so every hundredth redemption or scan batch waited several
/// milliseconds for it (BENCHMARKS.md). PASSIVE never blocks the writer or the readers. Stops when the
/// store is closed.
async fn checkpoint_in_background(reader: sqlx::AnyPool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !reader.is_closed() {
        tick.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&reader).await
            && !reader.is_closed()
        {
            tracing::warn!(error = %e, "the SQLite WAL checkpoint failed; retrying");
        }
    }
}

async fn connect_postgres(url: &str, options: DatabaseOptions) -> StoreResult<Store> {
    let timeout = options.statement_timeout_ms;
    let pool = AnyPoolOptions::new()
        .max_connections(options.pool_size)
        .acquire_timeout(Duration::from_millis(options.acquire_timeout_ms))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute(sqlx::AssertSqlSafe(format!("SET statement_timeout = {timeout}"))).await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    Ok(Store::new(pool.clone(), pool, false, url))
}
