//! The Google offers outbox: one job per coupon whose Google side has something to do (a member with a
//! loyalty object, or an object already inserted), written in the transaction of the grant, redemption,
//! withdrawal or expiry it follows; what a round reads (the coupons, what Google has of them and of the
//! members' loyalty objects); and a round's results, recorded step by step.

use std::collections::{BTreeMap, HashMap};

use sqlx::{Any, Row, Transaction};

use super::google::{STATE_COLUMNS, format_times, object_state_from, parse_times};
use super::jobs::{Outbox, ROWS_PER_STATEMENT, RefusalChange, Settled, settle_jobs};
use super::offers::{COUPON_COLUMN_COUNT, COUPON_SELECT, coupon_from_row};
use super::{Params, Store, StoreResult};
use crate::model::{OfferProgress, OfferTarget};

/// Notification times older than this no longer count against an object's budget.
const DAY_SECS: i64 = 86_400;

impl Store {
    /// The coupons of a round, with what Google has of them and of their members' loyalty objects.
    pub async fn offer_targets(&self, coupon_ids: &[&str]) -> StoreResult<Vec<OfferTarget>> {
        let mut targets = Vec::new();
        for chunk in coupon_ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "{COUPON_SELECT} LEFT JOIN google_objects g ON g.program = c.program AND g.member_id = c.member_id \
                 WHERE c.coupon_id IN ({})",
                Params::new(self.sqlite).list(chunk.len())
            )
            .replacen(
                " FROM coupons c",
                &format!(", {STATE_COLUMNS}, c.slot, c.google_state, c.google_linked, c.google_message FROM coupons c"),
                1,
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.to_string());
            }
            for row in query.fetch_all(&self.writer).await? {
                let at = COUPON_COLUMN_COUNT + 6;
                targets.push(OfferTarget {
                    coupon: coupon_from_row(&row)?,
                    loyalty: object_state_from(&row, COUPON_COLUMN_COUNT)?,
                    slot: row.try_get(at)?,
                    accepted: row.try_get(at + 1)?,
                    linked: row.try_get::<i64, _>(at + 2)? != 0,
                    messaged: !row.try_get::<String, _>(at + 3)?.is_empty(),
                    member_links: Vec::new(),
                });
            }
        }
        let links = self.linked_coupons(&targets).await?;
        for target in &mut targets {
            let key = (target.coupon.program.clone(), target.coupon.member_id.clone());
            target.member_links = links.get(&key).cloned().unwrap_or_default();
        }
        Ok(targets)
    }

    /// (offer id, slot) of the coupons each member's loyalty object links, by (program, member).
    async fn linked_coupons(
        &self,
        targets: &[OfferTarget],
    ) -> StoreResult<HashMap<(String, String), Vec<(String, i64)>>> {
        let mut members: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for t in targets.iter().filter(|t| t.loyalty.inserted) {
            members.entry(t.coupon.program.as_str()).or_default().push(t.coupon.member_id.as_str());
        }
        let mut links: HashMap<(String, String), Vec<(String, i64)>> = HashMap::new();
        for (program, ids) in members {
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                let mut p = Params::new(self.sqlite);
                let program_param = p.next();
                let sql = format!(
                    "SELECT member_id, offer_id, slot FROM coupons WHERE program = {program_param} AND google_linked = 1 \
                     AND member_id IN ({}) ORDER BY granted_at, coupon_id",
                    p.list(chunk.len())
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(program.to_string());
                for id in chunk {
                    query = query.bind(id.to_string());
                }
                for row in query.fetch_all(&self.writer).await? {
                    let key = (program.to_string(), row.try_get::<String, _>(0)?);
                    links.entry(key).or_default().push((row.try_get(1)?, row.try_get(2)?));
                }
            }
        }
        Ok(links)
    }

    /// Settles a round of offer jobs in one transaction: the job rows, on each coupon what Google
    /// accepted (even when a later step failed) and the attempt's result, and the notifications the
    /// members' loyalty objects spent.
    pub async fn record_offer_results(
        &self,
        round: &[Settled<OfferProgress>],
        refusal_key: &str,
        refusal: &RefusalChange,
    ) -> StoreResult<()> {
        if round.is_empty() {
            return Ok(());
        }
        super::retry_conflicts(|| self.try_record_offer_results(round, refusal_key, refusal)).await
    }

    async fn try_record_offer_results(
        &self,
        round: &[Settled<OfferProgress>],
        refusal_key: &str,
        refusal: &RefusalChange,
    ) -> StoreResult<()> {
        // Coupons before their jobs: the order redemption, withdrawal and expiry lock them in (coupon,
        // then its job), so the two never wait on each other in a cycle.
        let mut tx = self.writer.begin().await?;
        let mut sorted: Vec<&Settled<OfferProgress>> = round.iter().collect();
        sorted.sort_by(|a, b| (&a.job.scope, &a.job.id).cmp(&(&b.job.scope, &b.job.id)));
        let mut notified: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
        for s in sorted {
            let result = match s.outcome {
                super::Outcome::Delivered => "current".to_string(),
                outcome => format!("{}: {}", outcome.label(), s.reason),
            };
            let member = record_progress(&mut tx, &s.job.id, &s.effect, &result).await?;
            if let (Some(at), Some(member)) = (s.effect.notified_at, member) {
                notified.entry((s.job.scope.clone(), member)).or_default().push(at);
            }
        }
        settle_jobs(&mut tx, self.sqlite, Outbox::GoogleOffers, round, refusal_key, refusal).await?;
        for ((program, member_id), times) in notified {
            spend_notifications(&mut tx, &program, &member_id, &times).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records that Google accepted `state` for the coupon's object (the save link's insert).
    pub async fn record_coupon_object(&self, coupon_id: &str, state: &str) -> StoreResult<()> {
        sqlx::query("UPDATE coupons SET google_state = $2, google_last_result = 'current' WHERE coupon_id = $1")
            .bind(coupon_id)
            .bind(state)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}

/// Writes a coupon's progress and result; answers its member id (None when the coupon is gone).
async fn record_progress(
    tx: &mut Transaction<'static, Any>,
    coupon_id: &str,
    progress: &OfferProgress,
    result: &str,
) -> StoreResult<Option<String>> {
    let row = sqlx::query(
        "UPDATE coupons SET google_state = CASE WHEN $2 = '' THEN google_state ELSE $2 END, \
         google_linked = CASE WHEN $3 = 1 THEN 1 ELSE google_linked END, \
         google_message = CASE WHEN $4 = '' THEN google_message ELSE $4 END, google_last_result = $5 \
         WHERE coupon_id = $1 RETURNING member_id",
    )
    .bind(coupon_id)
    .bind(progress.accepted.clone().unwrap_or_default())
    .bind(i64::from(progress.linked))
    .bind(progress.message.unwrap_or_default())
    .bind(result.chars().take(300).collect::<String>())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// Adds notification times to a loyalty object's budget (read and written in the transaction, so the
/// objects channel's own notifications are kept).
async fn spend_notifications(
    tx: &mut Transaction<'static, Any>,
    program: &str,
    member_id: &str,
    times: &[i64],
) -> StoreResult<()> {
    let row = sqlx::query("SELECT notified_at FROM google_objects WHERE program = $1 AND member_id = $2")
        .bind(program)
        .bind(member_id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(()) };
    let newest = times.iter().copied().max().unwrap_or(0);
    let mut all = parse_times(&row.try_get::<Option<String>, _>(0)?.unwrap_or_default());
    all.extend_from_slice(times);
    all.retain(|t| newest - t < DAY_SECS);
    all.sort_unstable();
    sqlx::query("UPDATE google_objects SET notified_at = $3 WHERE program = $1 AND member_id = $2")
        .bind(program)
        .bind(member_id)
        .bind(format_times(&all))
        .execute(&mut **tx)
        .await?;
    Ok(())
}
