//! The push outbox: jobs written with the change they announce, claimed under a lease, settled in batches.

use std::collections::BTreeMap;

use sqlx::{Any, Row, Transaction};

use super::jobs::PUSH_JOBS;
use super::{Params, Store, StoreResult};

/// How many attempts a push gets before it is given up (with backoff, a few hours of retries).
pub const RETRY_BUDGET: i64 = 12;
/// Attempts kept in `push_attempts`.
const HISTORY_ROWS: i64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushJob {
    pub pass_type_id: String,
    pub push_token: String,
    pub attempts: i64,
    /// Unix milliseconds of the oldest change waiting.
    pub enqueued_at: i64,
}

/// What became of one push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Delivered,
    /// 410, or 400 BadDeviceToken / DeviceTokenNotForTopic: the registration goes.
    Unregistered {
        status: u16,
        reason: String,
    },
    /// 429, 5xx, timeouts, lost connections: try again at `retry_at` (unix ms) if the budget allows.
    Retry {
        status: Option<u16>,
        reason: String,
        retry_at: i64,
    },
    /// A 400 that is our fault (bad topic, payload): retrying cannot help.
    Failed {
        status: u16,
        reason: String,
    },
    /// 403: our credentials are refused; the job waits until they are fixed.
    Forbidden {
        reason: String,
        retry_at: i64,
    },
}

impl PushOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            PushOutcome::Delivered => "delivered",
            PushOutcome::Unregistered { .. } => "unregistered",
            PushOutcome::Retry { .. } => "retrying",
            PushOutcome::Failed { .. } => "failed",
            PushOutcome::Forbidden { .. } => "forbidden",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PushResult {
    pub job: PushJob,
    pub outcome: PushOutcome,
    /// Unix milliseconds of the attempt.
    pub at: i64,
}

/// Writes a push job for every token registered for `serial`, coalescing with a job already waiting. Rows
/// are written in key order, the order the worker's settling locks them in too, so the two never deadlock.
/// Answers how many jobs were written or moved (none when no device holds these passes).
pub(crate) async fn enqueue_pushes(
    tx: &mut Transaction<'static, Any>,
    sqlite: bool,
    serials: &[&str],
) -> StoreResult<u64> {
    if serials.is_empty() {
        return Ok(0);
    }
    let now_ms = crate::time_fmt::now_unix_ms();
    let mut p = Params::new(sqlite);
    let (enqueued, due) = (p.next(), p.next());
    let sql = format!(
        "INSERT INTO push_jobs (pass_type_id, push_token, enqueued_at, generation, attempts, not_before, lease_until) \
         SELECT DISTINCT pass_type_id, push_token, CAST({enqueued} AS BIGINT), 1, 0, CAST({due} AS BIGINT), 0 \
         FROM registrations WHERE serial_number IN ({}) ORDER BY pass_type_id, push_token \
         ON CONFLICT (pass_type_id, push_token) DO UPDATE SET generation = push_jobs.generation + 1",
        p.list(serials.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now_ms).bind(now_ms);
    for serial in serials {
        query = query.bind(serial.to_string());
    }
    Ok(query.execute(&mut **tx).await?.rows_affected())
}

impl Store {
    /// Claims up to `limit` due push jobs for `lease_ms` (see `claim_jobs`).
    pub async fn claim_push_jobs(&self, limit: i64, lease_ms: i64) -> StoreResult<Vec<PushJob>> {
        let rows = self.claim_jobs(&PUSH_JOBS, limit, lease_ms).await?;
        rows.iter()
            .map(|r| {
                Ok(PushJob {
                    pass_type_id: r.try_get(0)?,
                    push_token: r.try_get(1)?,
                    attempts: r.try_get::<i64, _>(2)?,
                    enqueued_at: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// Unix milliseconds when the next push job falls due, if any is waiting.
    pub async fn next_push_due(&self) -> StoreResult<Option<i64>> {
        self.next_job_due(&PUSH_JOBS).await
    }

    pub async fn outbox_depth(&self) -> StoreResult<i64> {
        self.job_count(&PUSH_JOBS).await
    }

    /// Releases every push lease (single-instance SQLite start-up: the previous process is gone).
    pub async fn release_push_leases(&self) -> StoreResult<u64> {
        self.release_job_leases(&PUSH_JOBS).await
    }

    /// Settles a round of attempts in one transaction, with a few set-based statements for the common
    /// case (delivered) and one statement per job for the rest.
    pub async fn record_push_results(&self, results: &[PushResult]) -> StoreResult<()> {
        if results.is_empty() {
            return Ok(());
        }
        super::retry_conflicts(|| self.try_record_push_results(results)).await
    }

    async fn try_record_push_results(&self, results: &[PushResult]) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        if !self.sqlite {
            lock_jobs_in_key_order(&mut tx, results).await?;
        }
        let labels = settle_undelivered(&mut tx, results).await?;
        settle_delivered(&mut tx, self.sqlite, results).await?;
        record_last_attempts(&mut tx, self.sqlite, results, &labels).await?;
        record_history(&mut tx, self.sqlite, results, &labels).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn service_state(&self, name: &str) -> StoreResult<Option<(String, i64)>> {
        let row = sqlx::query("SELECT value, updated_at FROM service_state WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        })
    }

    pub async fn set_service_state(&self, name: &str, value: Option<&str>) -> StoreResult<()> {
        match value {
            Some(v) => {
                sqlx::query(
                    "INSERT INTO service_state (name, value, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                )
                .bind(name)
                .bind(v)
                .bind(crate::time_fmt::now_unix())
                .execute(&self.writer)
                .await?
            }
            None => sqlx::query("DELETE FROM service_state WHERE name = $1").bind(name).execute(&self.writer).await?,
        };
        Ok(())
    }
}

/// The newest attempt time (unix seconds) and the push tokens sharing one (pass type, result, reason).
type LastAttempt<'a> = (i64, Vec<&'a str>);

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's limits on bound parameters.
const ROWS_PER_STATEMENT: usize = 1000;

fn status_of(outcome: &PushOutcome) -> Option<u16> {
    match outcome {
        PushOutcome::Delivered => Some(200),
        PushOutcome::Unregistered { status, .. } | PushOutcome::Failed { status, .. } => Some(*status),
        PushOutcome::Retry { status, .. } => *status,
        PushOutcome::Forbidden { .. } => Some(403),
    }
}

fn reason_of(outcome: &PushOutcome) -> Option<&str> {
    match outcome {
        PushOutcome::Delivered => None,
        PushOutcome::Unregistered { reason, .. }
        | PushOutcome::Failed { reason, .. }
        | PushOutcome::Retry { reason, .. }
        | PushOutcome::Forbidden { reason, .. } => Some(reason),
    }
}

async fn delete_job(tx: &mut Transaction<'static, Any>, pt: &str, token: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM push_jobs WHERE pass_type_id = $1 AND push_token = $2")
        .bind(pt)
        .bind(token)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Makes a job claimable again at `not_before`, counting an attempt when `count` is given.
async fn release(
    tx: &mut Transaction<'static, Any>,
    pt: &str,
    token: &str,
    not_before: i64,
    count: Option<()>,
) -> StoreResult<()> {
    let sql = if count.is_some() {
        "UPDATE push_jobs SET lease_until = 0, not_before = $1, attempts = attempts + 1 WHERE pass_type_id = $2 AND push_token = $3"
    } else {
        "UPDATE push_jobs SET lease_until = 0, not_before = $1 WHERE pass_type_id = $2 AND push_token = $3"
    };
    sqlx::query(sql).bind(not_before).bind(pt).bind(token).execute(&mut **tx).await?;
    Ok(())
}

type Tx = Transaction<'static, Any>;

/// Deletes, releases or gives up the jobs that were not delivered; answers each result's label.
async fn settle_undelivered(tx: &mut Tx, results: &[PushResult]) -> StoreResult<Vec<&'static str>> {
    let mut labels = Vec::with_capacity(results.len());
    for r in results {
        let (pt, token) = (&r.job.pass_type_id, &r.job.push_token);
        let mut label = r.outcome.label();
        match &r.outcome {
            PushOutcome::Delivered => {}
            PushOutcome::Unregistered { .. } => {
                sqlx::query("DELETE FROM registrations WHERE pass_type_id = $1 AND push_token = $2")
                    .bind(pt)
                    .bind(token)
                    .execute(&mut **tx)
                    .await?;
                delete_job(tx, pt, token).await?;
            }
            PushOutcome::Failed { .. } => delete_job(tx, pt, token).await?,
            PushOutcome::Retry { retry_at, .. } => {
                if r.job.attempts + 1 >= RETRY_BUDGET {
                    label = "gave-up";
                    delete_job(tx, pt, token).await?;
                } else {
                    release(tx, pt, token, *retry_at, Some(())).await?;
                }
            }
            PushOutcome::Forbidden { retry_at, .. } => release(tx, pt, token, *retry_at, None).await?,
        }
        labels.push(label);
    }

    Ok(labels)
}

/// Delivered jobs go in a few statements.
async fn settle_delivered(tx: &mut Tx, sqlite: bool, results: &[PushResult]) -> StoreResult<()> {
    // Delivered jobs go, unless a change arrived while the push was in flight (its generation moved
    // from the 0 set at claim): that row stays, due now, so the device hears of the change too.
    let mut delivered: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in results.iter().filter(|r| r.outcome == PushOutcome::Delivered) {
        delivered.entry(r.job.pass_type_id.as_str()).or_default().push(r.job.push_token.as_str());
    }
    let now = crate::time_fmt::now_unix_ms();
    for (pt, tokens) in &delivered {
        for chunk in tokens.chunks(ROWS_PER_STATEMENT) {
            let mut p = Params::new(sqlite);
            let pt_param = p.next();
            let sql = format!(
                "DELETE FROM push_jobs WHERE pass_type_id = {pt_param} AND push_token IN ({}) AND generation = 0",
                p.list(chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(pt.to_string());
            for token in chunk {
                query = query.bind(token.to_string());
            }
            let deleted = query.execute(&mut **tx).await?.rows_affected();
            if deleted < chunk.len() as u64 {
                // Only the rows a change kept alive are left among these tokens.
                let mut p = Params::new(sqlite);
                let (due, pt_param) = (p.next(), p.next());
                let sql = format!(
                    "UPDATE push_jobs SET lease_until = 0, not_before = CAST({due} AS BIGINT) \
                     WHERE pass_type_id = {pt_param} AND push_token IN ({})",
                    p.list(chunk.len())
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(pt.to_string());
                for token in chunk {
                    query = query.bind(token.to_string());
                }
                query.execute(&mut **tx).await?;
            }
        }
    }

    Ok(())
}

/// Each registration's last attempt: one statement per (pass type, result, reason).
async fn record_last_attempts(tx: &mut Tx, sqlite: bool, results: &[PushResult], labels: &[&str]) -> StoreResult<()> {
    // Each registration's last attempt: one statement per (pass type, result, reason).
    let mut groups: BTreeMap<(&str, &str, Option<&str>), LastAttempt> = BTreeMap::new();
    for (r, label) in results.iter().zip(labels) {
        let entry =
            groups.entry((r.job.pass_type_id.as_str(), *label, reason_of(&r.outcome))).or_insert((0, Vec::new()));
        entry.0 = entry.0.max(r.at / 1000);
        entry.1.push(r.job.push_token.as_str());
    }
    for ((pt, label, reason), (at, tokens)) in &groups {
        for chunk in tokens.chunks(ROWS_PER_STATEMENT) {
            let mut p = Params::new(sqlite);
            let (a, b, c, d) = (p.next(), p.next(), p.next(), p.next());
            let sql = format!(
                "UPDATE registrations SET last_push_at = {a}, last_push_result = {b}, last_push_reason = {c} \
                 WHERE pass_type_id = {d} AND push_token IN ({})",
                p.list(chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(*at)
                .bind(label.to_string())
                .bind(reason.map(str::to_string))
                .bind(pt.to_string());
            for token in chunk {
                query = query.bind(token.to_string());
            }
            query.execute(&mut **tx).await?;
        }
    }

    Ok(())
}

/// The bounded history of attempts.
async fn record_history(tx: &mut Tx, sqlite: bool, results: &[PushResult], labels: &[&str]) -> StoreResult<()> {
    // The bounded history.
    let rows: Vec<(&PushResult, &&str)> = results.iter().zip(labels).collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO push_attempts (push_token, attempted_at, result, status, reason) VALUES {}",
            Params::new(sqlite).rows(chunk.len(), &["{}", "{}", "{}", "{}", "{}"])
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (r, label) in chunk {
            query = query
                .bind(r.job.push_token.clone())
                .bind(r.at / 1000)
                .bind(label.to_string())
                .bind(status_of(&r.outcome).map(i64::from))
                .bind(reason_of(&r.outcome).map(str::to_string));
        }
        query.execute(&mut **tx).await?;
    }
    sqlx::query("DELETE FROM push_attempts WHERE id <= (SELECT MAX(id) FROM push_attempts) - $1")
        .bind(HISTORY_ROWS)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Locks a round's job rows in key order before settling them (PostgreSQL), the order in which ledger
/// transactions write them, so settling and a concurrent change queue instead of deadlocking.
async fn lock_jobs_in_key_order(tx: &mut Tx, results: &[PushResult]) -> StoreResult<()> {
    let mut by_pass_type: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in results {
        by_pass_type.entry(r.job.pass_type_id.as_str()).or_default().push(r.job.push_token.as_str());
    }
    for (pass_type, tokens) in &by_pass_type {
        for chunk in tokens.chunks(ROWS_PER_STATEMENT) {
            let mut p = Params::new(false);
            let pt = p.next();
            let sql = format!(
                "SELECT push_token FROM push_jobs WHERE pass_type_id = {pt} AND push_token IN ({}) \
                 ORDER BY push_token FOR UPDATE",
                p.list(chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(pass_type.to_string());
            for token in chunk {
                query = query.bind(token.to_string());
            }
            query.fetch_all(&mut **tx).await?;
        }
    }
    Ok(())
}
