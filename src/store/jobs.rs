//! What the two outboxes (`push_jobs`, `google_jobs`) share: claiming due rows under a lease, the next
//! due time, the depth, and releasing leases. Each table keeps its own key columns and settling.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreResult};

/// An outbox table: its name, its key columns and the order jobs are claimed in.
pub(crate) struct JobTable {
    pub name: &'static str,
    pub keys: &'static str,
    pub order: &'static str,
}

pub(crate) const PUSH_JOBS: JobTable =
    JobTable { name: "push_jobs", keys: "pass_type_id, push_token", order: "not_before" };
/// Oldest change first: a backlog drains in order of waiting.
pub(crate) const GOOGLE_JOBS: JobTable =
    JobTable { name: "google_jobs", keys: "program, member_id", order: "enqueued_at" };

impl Store {
    /// Claims up to `limit` due rows for `lease_ms`, resetting their `generation` to 0: a change that
    /// arrives while the job is in flight moves it, which keeps the job alive past its delivery. On
    /// PostgreSQL, `SKIP LOCKED` keeps several instances from claiming the same row. Answers the key
    /// columns, then `attempts` and `enqueued_at`.
    pub(crate) async fn claim_jobs(&self, table: &JobTable, limit: i64, lease_ms: i64) -> StoreResult<Vec<AnyRow>> {
        let now = crate::time_fmt::now_unix_ms();
        let lock = if self.sqlite { "" } else { " FOR UPDATE SKIP LOCKED" };
        let JobTable { name, keys, order } = table;
        let sql = format!(
            "UPDATE {name} SET lease_until = $1, generation = 0 WHERE ({keys}) IN \
             (SELECT {keys} FROM {name} WHERE not_before <= $2 AND lease_until <= $2 ORDER BY {order} LIMIT $3{lock}) \
             RETURNING {keys}, attempts, enqueued_at"
        );
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now + lease_ms)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.writer)
            .await?)
    }

    /// Unix milliseconds when the table's next job falls due, if any is waiting.
    pub(crate) async fn next_job_due(&self, table: &JobTable) -> StoreResult<Option<i64>> {
        let sql = format!(
            "SELECT MIN(CASE WHEN lease_until > not_before THEN lease_until ELSE not_before END) FROM {}",
            table.name
        );
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(&self.reader).await?.try_get(0)?)
    }

    pub(crate) async fn job_count(&self, table: &JobTable) -> StoreResult<i64> {
        let sql = format!("SELECT COUNT(*) FROM {}", table.name);
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(&self.reader).await?.try_get(0)?)
    }

    /// Releases every lease: at start-up of a single-instance (SQLite) deployment, jobs claimed by a
    /// process that died are due again at once.
    pub(crate) async fn release_job_leases(&self, table: &JobTable) -> StoreResult<u64> {
        let sql = format!("UPDATE {} SET lease_until = 0 WHERE lease_until > 0", table.name);
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&self.writer).await?.rows_affected())
    }
}
