//! Google Wallet state: each member's object as Google last accepted it, the object outbox (one job per
//! member, coalesced like push jobs), callback nonces, and the request rate shared by every instance.

use sqlx::{Any, Row, Transaction};

use super::jobs::{Outbox, Outcome, RefusalChange, Settled, settle_jobs};
use super::members::{MEMBER_COLUMN_COUNT, MEMBER_COLUMNS, member_from_row};
use super::{MemberRecord, Params, Store, StoreResult};
use crate::model::ObjectState;

pub(super) fn object_state_from(row: &sqlx::any::AnyRow, at: usize) -> Result<ObjectState, sqlx::Error> {
    let inserted_at: Option<i64> = row.try_get(at)?;
    Ok(ObjectState {
        inserted: inserted_at.unwrap_or(0) > 0,
        synced_tag: row.try_get::<Option<i64>, _>(at + 1)?.unwrap_or(0),
        synced_points: row.try_get(at + 2)?,
        synced_tier: row.try_get(at + 3)?,
        notified_at: parse_times(&row.try_get::<Option<String>, _>(at + 4)?.unwrap_or_default()),
        saved: row.try_get::<Option<i64>, _>(at + 5)?.unwrap_or(0) != 0,
    })
}

pub(super) const STATE_COLUMNS: &str =
    "g.inserted_at, g.synced_tag, g.synced_points, g.synced_tier, g.notified_at, g.saved";

impl Store {
    /// Whether ledger and admin changes write Google jobs (Google Wallet is configured).
    pub fn enable_google_outbox(&self) {
        self.google_outbox.store(true, std::sync::atomic::Ordering::Release);
    }

    pub(crate) fn google_outbox_enabled(&self) -> bool {
        self.google_outbox.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Members with what Google last accepted of their objects.
    pub async fn google_targets(
        &self,
        program: &str,
        member_ids: &[&str],
    ) -> StoreResult<Vec<(MemberRecord, ObjectState)>> {
        if member_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut p = Params::new(self.sqlite);
        let program_param = p.next();
        let sql = format!(
            "SELECT {MEMBER_COLUMNS}, {STATE_COLUMNS} FROM members m \
             JOIN apple_passes p ON p.program = m.program AND p.member_id = m.member_id \
             LEFT JOIN google_objects g ON g.program = m.program AND g.member_id = m.member_id \
             WHERE m.program = {program_param} AND m.member_id IN ({})",
            p.list(member_ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(program.to_string());
        for id in member_ids {
            query = query.bind(id.to_string());
        }
        let rows = query.fetch_all(&self.writer).await?;
        Ok(rows
            .iter()
            .map(|r| Ok((member_from_row(r)?, object_state_from(r, MEMBER_COLUMN_COUNT)?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// What tessera knows of the member's object, and the last REST attempt's result (`current`,
    /// `retrying: …`, `failed: …`, `forbidden: …`), if any.
    pub async fn google_object(&self, program: &str, member_id: &str) -> StoreResult<(ObjectState, Option<String>)> {
        let sql = format!(
            "SELECT {STATE_COLUMNS}, g.last_result FROM google_objects g WHERE g.program = $1 AND g.member_id = $2"
        );
        let row =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(program).bind(member_id).fetch_optional(&self.reader).await?;
        Ok(match row {
            Some(r) => (object_state_from(&r, 0)?, r.try_get(6)?),
            None => (ObjectState::default(), None),
        })
    }

    /// Records that Google has `state` for the member's object (the link path's insert).
    pub async fn record_google_current(&self, program: &str, member_id: &str, state: &ObjectState) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        upsert_object(&mut tx, program, member_id, state).await?;
        let offers = announce_coupons(&mut tx, self.sqlite, &[(program, member_id)]).await?;
        tx.commit().await?;
        if offers {
            self.wake(Outbox::GoogleOffers);
        }
        Ok(())
    }

    /// Settles a round of object jobs in one transaction: the job rows, and on each object the state
    /// Google accepted (`Some`) or the attempt's result.
    /// `refusal` is the change to the `refusal_key` row ("Google refuses the service account") this
    /// round makes.
    pub async fn record_google_results(
        &self,
        round: &[Settled<Option<ObjectState>>],
        refusal_key: &str,
        refusal: &RefusalChange,
    ) -> StoreResult<()> {
        if round.is_empty() {
            return Ok(());
        }
        super::retry_conflicts(|| self.try_record_google_results(round, refusal_key, refusal)).await
    }

    async fn try_record_google_results(
        &self,
        round: &[Settled<Option<ObjectState>>],
        refusal_key: &str,
        refusal: &RefusalChange,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        settle_jobs(&mut tx, self.sqlite, Outbox::GoogleObjects, round, refusal_key, refusal).await?;
        let mut sorted: Vec<&Settled<Option<ObjectState>>> = round.iter().collect();
        sorted.sort_by(|a, b| (&a.job.scope, &a.job.id).cmp(&(&b.job.scope, &b.job.id)));
        let inserted: Vec<(&str, &str)> = sorted
            .iter()
            .filter(|s| s.effect.as_ref().is_some_and(|state| state.inserted))
            .map(|s| (s.job.scope.as_str(), s.job.id.as_str()))
            .collect();
        for s in sorted {
            let (program, member) = (s.job.scope.as_str(), s.job.id.as_str());
            match (&s.effect, s.outcome) {
                (Some(state), _) => upsert_object(&mut tx, program, member, state).await?,
                // Nothing to note: Google had it already, or there is no member to note it on.
                (None, Outcome::Delivered | Outcome::Gone(_)) => {}
                (None, outcome) => {
                    note_attempt(&mut tx, program, member, &format!("{}: {}", outcome.label(), s.reason)).await?
                }
            }
        }
        let offers = announce_coupons(&mut tx, self.sqlite, &inserted).await?;
        tx.commit().await?;
        if offers {
            self.wake(Outbox::GoogleOffers);
        }
        Ok(())
    }

    /// Reserves `cost_us` of the shared request rate `name` (GCRA: one row holds the theoretical arrival
    /// time, so every instance draws from one budget); answers the unix µs at which the caller may send.
    /// At most `burst_us` of requests run ahead of the rate (so an idle deployment may send a second's
    /// worth at once, then the rate).
    pub async fn reserve_rate(&self, name: &str, cost_us: i64, burst_us: i64) -> StoreResult<i64> {
        let now = crate::time_fmt::now_unix_us();
        sqlx::query("INSERT INTO rate_limits (name, next_at_us) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .execute(&self.writer)
            .await?;
        let row = sqlx::query(
            "UPDATE rate_limits SET next_at_us = (CASE WHEN next_at_us > $1 THEN next_at_us ELSE $1 END) + $2 \
             WHERE name = $3 RETURNING next_at_us",
        )
        .bind(now)
        .bind(cost_us)
        .bind(name)
        .fetch_one(&self.writer)
        .await?;
        // The reservation may start once no more than `burst_us` of it lies ahead of the rate.
        let next: i64 = row.try_get(0)?;
        Ok((next - burst_us).max(now))
    }

    /// Records a verified save or delete callback once per nonce; answers false for a nonce seen before
    /// (nothing is changed then).
    pub async fn record_google_callback(
        &self,
        nonce: &str,
        program: &str,
        member_id: &str,
        saved: bool,
    ) -> StoreResult<bool> {
        let now = crate::time_fmt::now_unix();
        let mut tx = self.writer.begin().await?;
        let fresh = sqlx::query(
            "INSERT INTO google_callback_nonces (nonce, received_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(nonce)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if fresh {
            sqlx::query(
                "INSERT INTO google_objects (program, member_id, saved, saved_changed_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (program, member_id) DO UPDATE SET saved = excluded.saved, saved_changed_at = excluded.saved_changed_at",
            )
            .bind(program)
            .bind(member_id)
            .bind(saved as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(fresh)
    }

    /// Forgets callback nonces older than Google's retry window (the messages expire long before).
    pub async fn prune_google_nonces(&self, older_than_secs: i64) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM google_callback_nonces WHERE received_at < $1")
            .bind(crate::time_fmt::now_unix() - older_than_secs)
            .execute(&self.writer)
            .await?
            .rows_affected())
    }
}

async fn upsert_object(
    tx: &mut Transaction<'static, Any>,
    program: &str,
    member_id: &str,
    state: &ObjectState,
) -> StoreResult<()> {
    let now = crate::time_fmt::now_unix();
    // A slower writer never moves the object back to an older state.
    sqlx::query(
        "INSERT INTO google_objects (program, member_id, inserted_at, synced_tag, synced_points, synced_tier, notified_at, \
         last_attempt_at, last_result) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'current') \
         ON CONFLICT (program, member_id) DO UPDATE SET inserted_at = excluded.inserted_at, \
         synced_tag = excluded.synced_tag, synced_points = excluded.synced_points, synced_tier = excluded.synced_tier, \
         notified_at = excluded.notified_at, last_attempt_at = excluded.last_attempt_at, last_result = 'current' \
         WHERE google_objects.synced_tag <= excluded.synced_tag",
    )
    .bind(program)
    .bind(member_id)
    .bind(if state.inserted { crate::time_fmt::now_unix_ms() } else { 0 })
    .bind(state.synced_tag)
    .bind(state.synced_points)
    .bind(state.synced_tier.clone())
    .bind(format_times(&state.notified_at))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn note_attempt(
    tx: &mut Transaction<'static, Any>,
    program: &str,
    member_id: &str,
    result: &str,
) -> StoreResult<()> {
    let result: String = result.chars().take(300).collect();
    sqlx::query(
        "INSERT INTO google_objects (program, member_id, last_attempt_at, last_result) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (program, member_id) DO UPDATE SET last_attempt_at = excluded.last_attempt_at, last_result = excluded.last_result",
    )
    .bind(program)
    .bind(member_id)
    .bind(crate::time_fmt::now_unix())
    .bind(result)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Offer jobs for the active coupons never announced of members whose loyalty object Google now has, so
/// coupons granted before the member saved the card are linked and announced too.
async fn announce_coupons(
    tx: &mut Transaction<'static, Any>,
    sqlite: bool,
    members: &[(&str, &str)],
) -> StoreResult<bool> {
    let mut ids = Vec::new();
    for (program, member_id) in members {
        let rows = sqlx::query(
            "SELECT coupon_id FROM coupons WHERE program = $1 AND member_id = $2 AND state = 'active' \
             AND google_linked = 0 AND google_message = ''",
        )
        .bind(program.to_string())
        .bind(member_id.to_string())
        .fetch_all(&mut **tx)
        .await?;
        for row in rows {
            ids.push(row.try_get::<String, _>(0)?);
        }
    }
    if ids.is_empty() {
        return Ok(false);
    }
    ids.sort();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    super::offer_jobs::enqueue_offer_jobs(tx, sqlite, &ids).await
}

pub(super) fn format_times(times: &[i64]) -> String {
    times.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

pub(super) fn parse_times(text: &str) -> Vec<i64> {
    text.split(',').filter_map(|t| t.trim().parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn notification_times_round_trip() {
        assert_eq!(super::parse_times(&super::format_times(&[1, 22, 333])), [1, 22, 333]);
        assert!(super::parse_times("").is_empty());
    }
}
