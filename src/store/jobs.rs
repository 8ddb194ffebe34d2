//! What every outbox table shares, for the delivery engine: claiming due jobs under a lease, the next due
//! time, the depth, releasing leases, and settling a round's job rows (done, retry, give up, wait). Each
//! table is keyed by two text columns (a scope and an id); what a channel records beside the job (a
//! registration's last push, the state Google accepted) is written by the channel's own store module in
//! the same transaction.

use std::collections::BTreeMap;

use sqlx::{Any, Row, Transaction};

use super::{Params, Store, StoreResult};

/// An outbox: a job table and the announcement that wakes its workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outbox {
    /// `push_jobs`: one per (pass type, push token).
    Apns,
    /// `google_jobs`: one per (program, member).
    GoogleObjects,
    /// `offer_jobs`: one per (program, coupon).
    GoogleOffers,
}

impl Outbox {
    pub const ALL: [Outbox; 3] = [Outbox::Apns, Outbox::GoogleObjects, Outbox::GoogleOffers];

    pub(crate) fn table(self) -> &'static str {
        match self {
            Outbox::Apns => "push_jobs",
            Outbox::GoogleObjects => "google_jobs",
            Outbox::GoogleOffers => "offer_jobs",
        }
    }

    /// The two key columns.
    fn keys(self) -> [&'static str; 2] {
        match self {
            Outbox::Apns => ["pass_type_id", "push_token"],
            Outbox::GoogleObjects => ["program", "member_id"],
            Outbox::GoogleOffers => ["program", "coupon_id"],
        }
    }

    /// The order due jobs are claimed in. Google's: oldest change first, so a backlog drains in order.
    fn claim_order(self) -> &'static str {
        match self {
            Outbox::Apns => "not_before",
            Outbox::GoogleObjects | Outbox::GoogleOffers => "enqueued_at",
        }
    }

    /// The NOTIFY payload announcing it (PostgreSQL).
    pub(crate) fn payload(self) -> &'static str {
        match self {
            Outbox::Apns => "apns",
            Outbox::GoogleObjects => "google",
            Outbox::GoogleOffers => "offers",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A claimed job: its key, its lease, and what its history says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The first key column (pass type, program).
    pub scope: String,
    /// The second key column (push token, member id).
    pub id: String,
    /// Attempts counted so far (retries; waiting out a refusal does not count).
    pub attempts: i64,
    /// Unix milliseconds of the oldest change waiting.
    pub enqueued_at: i64,
    /// The `lease_until` this claim wrote: settling touches the row only while it still holds it, so a
    /// round that outlived its lease (and was claimed again by another) changes nothing.
    pub lease: i64,
}

/// What came of an attempt, in words the metrics, the logs and the stored results use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Retrying,
    /// The round could not be prepared (the database did not answer): not sent, no attempt counted.
    NotSent,
    GaveUp,
    Forbidden,
    /// The recipient is gone (`unregistered`, `gone`).
    Gone(&'static str),
    /// Refused for good (`failed`).
    Rejected(&'static str),
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retrying => "retrying",
            Outcome::NotSent => "not-sent",
            Outcome::GaveUp => "gave-up",
            Outcome::Forbidden => "forbidden",
            Outcome::Gone(word) | Outcome::Rejected(word) => word,
        }
    }
}

/// A change to the row recording that a destination refuses our credentials, written with the round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalChange {
    Keep,
    /// Refused now, for this reason.
    Set(String),
    /// Accepted again.
    Clear,
}

/// What becomes of a job row after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobAction {
    /// Delivered, or gone for good: the row goes, unless a change arrived meanwhile (then it is due now).
    Done,
    /// Claimable again at `at` (unix ms), one more attempt counted.
    Retry { at: i64 },
    /// The retry budget is spent: the row goes, unless a change arrived meanwhile (then it starts afresh).
    GiveUp,
    /// The destination refuses our credentials: claimable again at `until`, no attempt counted.
    Wait { until: i64 },
}

/// One settled attempt: the job, its fate, and what the channel records beside it.
#[derive(Debug, Clone)]
pub struct Settled<E> {
    pub job: Job,
    pub action: JobAction,
    pub outcome: Outcome,
    /// The destination's status code, when it answered.
    pub status: Option<u16>,
    /// The destination's reason, or why there was no answer (empty when delivered).
    pub reason: String,
    /// Unix milliseconds of the attempt.
    pub at: i64,
    pub effect: E,
}

pub(crate) type Tx = Transaction<'static, Any>;

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's limits on bound parameters.
pub(crate) const ROWS_PER_STATEMENT: usize = 1000;

impl Store {
    /// Claims up to `limit` due jobs of `outbox` for `lease_ms`, resetting their `generation` to 0: a change
    /// that arrives while the job is in flight moves it, which keeps the job alive past its delivery. On
    /// PostgreSQL, `SKIP LOCKED` keeps several instances from claiming the same row. In the outbox's claim
    /// order; answered oldest change first.
    pub async fn claim_jobs(&self, outbox: Outbox, limit: i64, lease_ms: i64) -> StoreResult<Vec<Job>> {
        let now = crate::time_fmt::now_unix_ms();
        let lock = if self.sqlite { "" } else { " FOR UPDATE SKIP LOCKED" };
        let (name, [k0, k1], order) = (outbox.table(), outbox.keys(), outbox.claim_order());
        let sql = format!(
            "UPDATE {name} SET lease_until = $1, generation = 0 WHERE ({k0}, {k1}) IN \
             (SELECT {k0}, {k1} FROM {name} WHERE not_before <= $2 AND lease_until <= $2 ORDER BY {order} LIMIT $3{lock}) \
             RETURNING {k0}, {k1}, attempts, enqueued_at"
        );
        let lease = now + lease_ms;
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(lease).bind(now).bind(limit).fetch_all(&self.writer).await?;
        let mut jobs = rows
            .iter()
            .map(|r| {
                let (scope, id, attempts, enqueued_at) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
                Ok(Job { scope, id, attempts, enqueued_at, lease })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        jobs.sort_by_key(|j| j.enqueued_at);
        Ok(jobs)
    }

    /// Unix milliseconds when the outbox's next job falls due, if any is waiting.
    pub async fn next_job_due(&self, outbox: Outbox) -> StoreResult<Option<i64>> {
        let sql = format!(
            "SELECT MIN(CASE WHEN lease_until > not_before THEN lease_until ELSE not_before END) FROM {}",
            outbox.table()
        );
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(&self.reader).await?.try_get(0)?)
    }

    /// Jobs waiting in the outbox, every instance's.
    pub async fn outbox_depth(&self, outbox: Outbox) -> StoreResult<i64> {
        let sql = format!("SELECT COUNT(*) FROM {}", outbox.table());
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(&self.reader).await?.try_get(0)?)
    }

    /// Releases every lease: at start-up of a single-instance (SQLite) deployment, jobs claimed by a
    /// process that died are due again at once.
    pub async fn release_leases(&self, outbox: Outbox) -> StoreResult<u64> {
        let sql = format!("UPDATE {} SET lease_until = 0 WHERE lease_until > 0", outbox.table());
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&self.writer).await?.rows_affected())
    }
}

/// Settles a round's job rows in the caller's transaction, and the refusal row `refusal_key` with them:
/// on PostgreSQL the rows are first locked in key order (byte order, the order the ledger writes them in),
/// so settling and a concurrent change queue instead of deadlocking. Only rows still under the round's
/// lease are touched. Done jobs go in a few set-based statements; the rest one statement each.
pub(crate) async fn settle_jobs<E>(
    tx: &mut Tx,
    sqlite: bool,
    outbox: Outbox,
    round: &[Settled<E>],
    refusal_key: &str,
    refusal: &RefusalChange,
) -> StoreResult<()> {
    if !sqlite {
        lock_in_key_order(tx, outbox, round).await?;
    }
    let mut done: BTreeMap<(&str, i64), Vec<&str>> = BTreeMap::new();
    for s in round {
        let job = &s.job;
        match s.action {
            JobAction::Done => done.entry((job.scope.as_str(), job.lease)).or_default().push(job.id.as_str()),
            JobAction::Retry { at } => release(tx, outbox, job, at, "attempts + 1").await?,
            JobAction::Wait { until } => release(tx, outbox, job, until, "attempts").await?,
            JobAction::GiveUp => give_up(tx, outbox, job).await?,
        }
    }
    for ((scope, lease), ids) in &done {
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            settle_done(tx, sqlite, outbox, (scope, *lease), chunk).await?;
        }
    }
    match refusal {
        RefusalChange::Keep => {}
        RefusalChange::Set(reason) => {
            sqlx::query(
                "INSERT INTO service_state (name, value, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(refusal_key)
            .bind(reason)
            .bind(crate::time_fmt::now_unix())
            .execute(&mut **tx)
            .await?;
        }
        RefusalChange::Clear => {
            sqlx::query("DELETE FROM service_state WHERE name = $1").bind(refusal_key).execute(&mut **tx).await?;
        }
    }
    Ok(())
}

/// Done rows go, unless a change arrived while they were in flight (their generation moved from the 0 set
/// at claim): those stay, due now, so the destination hears of the change too.
async fn settle_done(
    tx: &mut Tx,
    sqlite: bool,
    outbox: Outbox,
    (scope, lease): (&str, i64),
    ids: &[&str],
) -> StoreResult<()> {
    let (name, [k0, k1]) = (outbox.table(), outbox.keys());
    let mut p = Params::new(sqlite);
    let (scope_param, lease_param) = (p.next(), p.next());
    let sql = format!(
        "DELETE FROM {name} WHERE {k0} = {scope_param} AND lease_until = {lease_param} AND {k1} IN ({}) \
         AND generation = 0",
        p.list(ids.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(scope.to_string()).bind(lease);
    for id in ids {
        query = query.bind(id.to_string());
    }
    let deleted = query.execute(&mut **tx).await?.rows_affected();
    if deleted == ids.len() as u64 {
        return Ok(());
    }
    // Only the rows a change kept alive (or another instance holds now) are left among these ids.
    let mut p = Params::new(sqlite);
    let (due, scope_param, lease_param) = (p.next(), p.next(), p.next());
    let sql = format!(
        "UPDATE {name} SET lease_until = 0, not_before = CAST({due} AS BIGINT) \
         WHERE {k0} = {scope_param} AND lease_until = {lease_param} AND {k1} IN ({})",
        p.list(ids.len())
    );
    let mut query =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(crate::time_fmt::now_unix_ms()).bind(scope.to_string()).bind(lease);
    for id in ids {
        query = query.bind(id.to_string());
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Makes a job claimable again at `not_before`; `attempts` is the column's new value (an SQL expression).
async fn release(tx: &mut Tx, outbox: Outbox, job: &Job, not_before: i64, attempts: &str) -> StoreResult<()> {
    let (name, [k0, k1]) = (outbox.table(), outbox.keys());
    let sql = format!(
        "UPDATE {name} SET lease_until = 0, not_before = $1, attempts = {attempts} \
         WHERE {k0} = $2 AND {k1} = $3 AND lease_until = $4"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(not_before)
        .bind(&job.scope)
        .bind(&job.id)
        .bind(job.lease)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The budget is spent on the change(s) the job carried when it was claimed; one that arrived during the
/// last attempt gets a fresh budget.
async fn give_up(tx: &mut Tx, outbox: Outbox, job: &Job) -> StoreResult<()> {
    let (name, [k0, k1]) = (outbox.table(), outbox.keys());
    let sql = format!("DELETE FROM {name} WHERE {k0} = $1 AND {k1} = $2 AND lease_until = $3 AND generation = 0");
    let deleted = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&job.scope)
        .bind(&job.id)
        .bind(job.lease)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        release(tx, outbox, job, crate::time_fmt::now_unix_ms(), "0").await?;
    }
    Ok(())
}

/// Locks the round's rows in byte order of their keys (`COLLATE "C"`: the database's collation may order
/// text otherwise), the order the ledger writes job rows in.
async fn lock_in_key_order<E>(tx: &mut Tx, outbox: Outbox, round: &[Settled<E>]) -> StoreResult<()> {
    let (name, [k0, k1]) = (outbox.table(), outbox.keys());
    let mut by_scope: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in round {
        by_scope.entry(s.job.scope.as_str()).or_default().push(s.job.id.as_str());
    }
    for (scope, ids) in &mut by_scope {
        ids.sort_unstable();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let mut p = Params::new(false);
            let scope_param = p.next();
            let sql = format!(
                "SELECT {k1} FROM {name} WHERE {k0} = {scope_param} AND {k1} IN ({}) ORDER BY {k1} COLLATE \"C\" FOR UPDATE",
                p.list(chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(scope.to_string());
            for id in chunk {
                query = query.bind(id.to_string());
            }
            query.fetch_all(&mut **tx).await?;
        }
    }
    Ok(())
}
