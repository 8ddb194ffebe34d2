//! Storage: SQLite (embedded default) or PostgreSQL through one set of portable SQL statements.
//!
//! Knows no HTTP. On SQLite, writes go through a single-connection pool (SQLite has one writer anyway, and
//! this avoids busy errors on lock upgrades) while reads use a pool of their own; on PostgreSQL both are
//! the same pool.

mod connect;
mod google;
mod google_offers;
mod jobs;
mod ledger;
mod members;
mod migrations;
mod notify;
mod offer_jobs;
mod offers;
mod outbox;
mod redemptions;
mod registrations;
mod scans;
mod tags;
mod write;

pub use crate::model::{
    CouponCounts, CouponRecord, CouponState, EventStatus, LedgerEvent, MemberChange, MemberRecord, OfferRecord,
    UpsertOutcome,
};
pub use connect::DatabaseOptions;
pub use jobs::{Job, JobAction, Outbox, Outcome, RefusalChange, Settled};
pub use offers::{GrantOutcome, OfferPutRefusal, OfferSpec};
pub use outbox::PushEffect;
pub use redemptions::{RedeemFailure, RedeemOutcome, Redeemer, Redemption};
pub use registrations::{DeviceRecord, Registered};
pub use scans::{ScanRecord, ScanRecorder, ScanTarget};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::Notify;

use sqlx::{AnyPool, Row};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database failed")]
    Sql(#[from] sqlx::Error),
    #[error("migrating the database failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row that must exist does not: an invariant of the schema broken.
    #[error("the database is inconsistent: {0}")]
    Corrupt(String),
    /// A write done for several callers at once (group commit) failed; each caller gets its words.
    #[error("a batched write failed: {message}")]
    Batch { message: String, unavailable: bool },
}

impl StoreError {
    /// True when the database cannot be reached or is too busy right now (a retry may succeed), as opposed
    /// to a statement or data that is wrong.
    pub fn is_unavailable(&self) -> bool {
        if let StoreError::Batch { unavailable, .. } = self {
            return *unavailable;
        }
        let StoreError::Sql(e) = self else { return false };
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
            sqlx::Error::WorkerCrashed => true,
            // PostgreSQL: connection exceptions (08…), too many connections (53300), shutting down (57P0…),
            // a statement cancelled by statement_timeout (57014: the database is too slow right now);
            // SQLite: busy or locked past the busy timeout.
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("08")
                    || code == "53300"
                    || code.starts_with("57P0")
                    || code == "57014"
                    || code == "5"
                    || code == "6"
            }),
            _ => false,
        }
    }
}

impl StoreError {
    /// True when a transaction lost a race with a concurrent one (PostgreSQL: a unique key both inserted,
    /// a serialization failure or a deadlock); it was rolled back whole and may simply run again.
    pub fn is_conflict(&self) -> bool {
        let StoreError::Sql(sqlx::Error::Database(db)) = self else { return false };
        matches!(db.code().as_deref(), Some("23505" | "40001" | "40P01"))
    }
}

/// How many times a transaction that lost a race is decided and written again.
const CONFLICT_RETRIES: u32 = 5;

/// Runs `transaction` again while it loses races with concurrent ones (see `StoreError::is_conflict`), at
/// most `CONFLICT_RETRIES` more times; each run starts from what the winners committed.
async fn retry_conflicts<T, F, Fut>(mut transaction: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let mut attempt = 0;
    loop {
        match transaction().await {
            Err(e) if e.is_conflict() && attempt < CONFLICT_RETRIES => attempt += 1,
            result => return result,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Placeholders for the multi-row statements that let a batch cost a few statements rather than one per
/// row (through sqlx's SQLite driver each statement is a round trip to its thread). On SQLite they are
/// anonymous `?`, bound strictly in the order they appear: SQLite resolves `$N` (and `?N`) names by a
/// linear scan per parameter, which makes a statement with thousands of them quadratic. PostgreSQL gets
/// `$1, $2, …`. Every placeholder is one bind, in textual order, so a value used twice is bound twice.
pub(crate) struct Params {
    sqlite: bool,
    n: usize,
}

impl Params {
    pub(crate) fn new(sqlite: bool) -> Params {
        Params { sqlite, n: 0 }
    }

    /// The next placeholder.
    pub(crate) fn next(&mut self) -> String {
        self.n += 1;
        if self.sqlite { "?".to_string() } else { format!("${}", self.n) }
    }

    /// `rows` tuples; each column is written through its template (`"{}"`, `"CAST({} AS BIGINT)"` where
    /// PostgreSQL needs the type in a VALUES list, or a literal without `{}`).
    pub(crate) fn rows(&mut self, rows: usize, columns: &[&str]) -> String {
        let mut out = String::with_capacity(rows * columns.len() * 8);
        for r in 0..rows {
            out.push_str(if r == 0 { "(" } else { ", (" });
            for (c, template) in columns.iter().enumerate() {
                if c > 0 {
                    out.push_str(", ");
                }
                if template.contains("{}") {
                    let placeholder = self.next();
                    out.push_str(&template.replace("{}", &placeholder));
                } else {
                    out.push_str(template);
                }
            }
            out.push(')');
        }
        out
    }

    /// `count` placeholders for an `IN (…)` list.
    pub(crate) fn list(&mut self, count: usize) -> String {
        (0..count).map(|_| self.next()).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod sql_tests {
    use super::Params;

    #[test]
    fn placeholders_follow_the_back_end() {
        let mut pg = Params::new(false);
        assert_eq!(pg.next(), "$1");
        assert_eq!(
            pg.rows(2, &["{}", "'x'", "CAST({} AS BIGINT)"]),
            "($2, 'x', CAST($3 AS BIGINT)), ($4, 'x', CAST($5 AS BIGINT))"
        );
        assert_eq!(pg.list(2), "$6, $7");
        let mut lite = Params::new(true);
        assert_eq!(lite.rows(1, &["{}", "{}"]), "(?, ?)");
        assert_eq!(lite.list(3), "?, ?, ?");
    }
}

#[derive(Clone)]
pub struct Store {
    writer: AnyPool,
    reader: AnyPool,
    sqlite: bool,
    /// For the PostgreSQL change listener's own connection.
    url: Arc<str>,
    /// Bumped after every commit that changed a pass here (or, on SQLite, through another store on the same
    /// file in this process); caches compare it to know they are fresh.
    generation: Arc<AtomicU64>,
    /// Per outbox (`Outbox::index`), woken after a commit that may have written its jobs.
    signals: Arc<[Notify; Outbox::ALL.len()]>,
    /// Whether changes write Google object jobs (set when Google Wallet is configured).
    google_outbox: Arc<AtomicBool>,
}

/// The change generation of a SQLite file, one per file in this process: two stores opened on one file
/// (instances in one process, as the tests run them) see each other's changes in their caches. Another
/// process on the same file would not; a SQLite file has one owner.
fn sqlite_generation(url: &str) -> Arc<AtomicU64> {
    type Generations = std::collections::HashMap<std::path::PathBuf, std::sync::Weak<AtomicU64>>;
    static GENERATIONS: std::sync::Mutex<Option<Generations>> = std::sync::Mutex::new(None);
    let file = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let Ok(path) = std::fs::canonicalize(file.split('?').next().unwrap_or(file)) else {
        return Arc::new(AtomicU64::new(0));
    };
    let mut generations = GENERATIONS.lock().unwrap_or_else(|p| p.into_inner());
    let generations = generations.get_or_insert_with(Default::default);
    generations.retain(|_, g| g.strong_count() > 0);
    if let Some(shared) = generations.get(&path).and_then(std::sync::Weak::upgrade) {
        return shared;
    }
    let generation = Arc::new(AtomicU64::new(0));
    generations.insert(path, Arc::downgrade(&generation));
    generation
}

impl Store {
    pub(crate) fn new(writer: AnyPool, reader: AnyPool, sqlite: bool, url: &str) -> Store {
        Store {
            writer,
            reader,
            sqlite,
            url: Arc::from(url),
            generation: if sqlite { sqlite_generation(url) } else { Arc::new(AtomicU64::new(0)) },
            signals: Arc::new(std::array::from_fn(|_| Notify::new())),
            google_outbox: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Called after a commit that changed passes: caches go stale, and the workers whose jobs the commit
    /// wrote wake.
    pub(crate) fn changed(&self, written: write::Written) {
        self.generation.fetch_add(1, Ordering::Release);
        if written.pushes {
            self.wake(Outbox::Apns);
        }
        if written.google {
            self.wake(Outbox::GoogleObjects);
        }
        if written.offers {
            self.wake(Outbox::GoogleOffers);
        }
    }

    /// Changes committed through this store so far (a cache stamp).
    pub fn change_generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Wakes this instance's idle worker of `outbox`.
    pub(crate) fn wake(&self, outbox: Outbox) {
        self.signals[outbox.index()].notify_one();
    }

    /// Completes when jobs of `outbox` may be waiting (after a change), or spuriously.
    pub async fn outbox_changed(&self, outbox: Outbox) {
        self.signals[outbox.index()].notified().await
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        // On PostgreSQL the migrator holds an advisory lock while it runs, so instances that start together
        // migrate one after the other.
        migrations::migrator(self.sqlite).run(&self.writer).await?;
        Ok(())
    }

    pub fn is_sqlite(&self) -> bool {
        self.sqlite
    }

    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    /// The secret `name`, made by `generate` and stored on first use. Every instance gets the same value:
    /// the first insert wins.
    pub async fn secret_or_generate(&self, name: &str, generate: impl FnOnce() -> String) -> StoreResult<String> {
        if let Some(value) = self.secret(name).await? {
            return Ok(value);
        }
        sqlx::query("INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(generate())
            .bind(crate::time_fmt::now_unix())
            .execute(&self.writer)
            .await?;
        self.secret(name).await?.ok_or_else(|| StoreError::Corrupt(format!("secret {name} vanished after insert")))
    }

    pub async fn secret(&self, name: &str) -> StoreResult<Option<String>> {
        let row =
            sqlx::query("SELECT value FROM secrets WHERE name = $1").bind(name).fetch_optional(&self.writer).await?;
        Ok(match row {
            Some(row) => Some(row.try_get::<String, _>(0)?),
            None => None,
        })
    }

    /// (pass type identifier, team identifier, passes) for every identity passes were issued under.
    pub async fn issued_identities(&self) -> StoreResult<Vec<(String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT pass_type_id, team_id, COUNT(*) FROM apple_passes GROUP BY pass_type_id, team_id ORDER BY 3 DESC",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).collect()
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}
