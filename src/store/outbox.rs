//! The APNs outbox: push jobs written with the change they announce, and a round's results recorded
//! (the job rows through `jobs`, the registrations' last push and the attempt history here); the
//! service state rows ("APNs refuses our credentials").

use std::collections::BTreeMap;

use sqlx::{Any, Row, Transaction};

use super::jobs::{Outbox, Outcome, ROWS_PER_STATEMENT, RefusalChange, Settled, Tx, settle_jobs};
use super::{Params, Store, StoreResult};

/// Attempts kept in `push_attempts`.
const HISTORY_ROWS: i64 = 10_000;

/// What an APNs attempt changes beside its job row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PushEffect {
    #[default]
    None,
    /// APNs says the token is gone (410, or 400 BadDeviceToken / DeviceTokenNotForTopic): the
    /// registrations holding it go, and its job with them.
    Unregister,
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
    // Byte order (`COLLATE "C"` on PostgreSQL, whose collation may order text otherwise; SQLite's default).
    // GROUP BY, not DISTINCT: PostgreSQL refuses an ORDER BY expression missing from a DISTINCT select list.
    let bytes = if sqlite { "" } else { " COLLATE \"C\"" };
    let sql = format!(
        "INSERT INTO push_jobs (pass_type_id, push_token, enqueued_at, generation, attempts, not_before, lease_until) \
         SELECT pass_type_id, push_token, CAST({enqueued} AS BIGINT), 1, 0, CAST({due} AS BIGINT), 0 \
         FROM registrations WHERE serial_number IN ({}) GROUP BY pass_type_id, push_token \
         ORDER BY pass_type_id{bytes}, push_token{bytes} \
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
    /// Settles a round of APNs attempts in one transaction: the job rows, each registration's last
    /// attempt, the registrations APNs says are gone, and the bounded history.
    /// `refusal` is the change to the `refusal_key` row ("APNs refuses our credentials") this round makes.
    pub async fn record_push_results(
        &self,
        round: &[Settled<PushEffect>],
        refusal_key: &str,
        refusal: &RefusalChange,
    ) -> StoreResult<()> {
        if round.is_empty() {
            return Ok(());
        }
        super::retry_conflicts(|| self.try_record_push_results(round, refusal_key, refusal)).await
    }

    async fn try_record_push_results(
        &self,
        round: &[Settled<PushEffect>],
        refusal_key: &str,
        refusal: &RefusalChange,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        settle_jobs(&mut tx, self.sqlite, Outbox::Apns, round, refusal_key, refusal).await?;
        unregister(&mut tx, round).await?;
        record_last_attempts(&mut tx, self.sqlite, round).await?;
        record_history(&mut tx, self.sqlite, round).await?;
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

fn reason_of(s: &Settled<PushEffect>) -> Option<&str> {
    (s.outcome != Outcome::Delivered).then_some(s.reason.as_str())
}

/// Registrations of tokens APNs says are gone, and their jobs whatever changed meanwhile.
async fn unregister(tx: &mut Tx, round: &[Settled<PushEffect>]) -> StoreResult<()> {
    for s in round.iter().filter(|s| s.effect == PushEffect::Unregister) {
        sqlx::query("DELETE FROM registrations WHERE pass_type_id = $1 AND push_token = $2")
            .bind(&s.job.scope)
            .bind(&s.job.id)
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM push_jobs WHERE pass_type_id = $1 AND push_token = $2 AND lease_until = $3")
            .bind(&s.job.scope)
            .bind(&s.job.id)
            .bind(s.job.lease)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Each registration's last attempt: one statement per (pass type, result, reason).
async fn record_last_attempts(tx: &mut Tx, sqlite: bool, round: &[Settled<PushEffect>]) -> StoreResult<()> {
    let mut groups: BTreeMap<(&str, &str, Option<&str>), LastAttempt> = BTreeMap::new();
    for s in round.iter().filter(|s| s.effect != PushEffect::Unregister) {
        let entry = groups.entry((s.job.scope.as_str(), s.outcome.label(), reason_of(s))).or_insert((0, Vec::new()));
        entry.0 = entry.0.max(s.at / 1000);
        entry.1.push(s.job.id.as_str());
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
async fn record_history(tx: &mut Tx, sqlite: bool, round: &[Settled<PushEffect>]) -> StoreResult<()> {
    for chunk in round.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO push_attempts (push_token, attempted_at, result, status, reason) VALUES {}",
            Params::new(sqlite).rows(chunk.len(), &["{}", "{}", "{}", "{}", "{}"])
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for s in chunk {
            query = query
                .bind(s.job.id.clone())
                .bind(s.at / 1000)
                .bind(s.outcome.label().to_string())
                .bind(s.status.map(i64::from))
                .bind(reason_of(s).map(str::to_string));
        }
        query.execute(&mut **tx).await?;
    }
    sqlx::query("DELETE FROM push_attempts WHERE id <= (SELECT MAX(id) FROM push_attempts) - $1")
        .bind(HISTORY_ROWS)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
