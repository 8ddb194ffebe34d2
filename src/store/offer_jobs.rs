//! The Google offers outbox's one write, a leaf beside `jobs`: the plan writer, the offers store and the
//! Google store all write offer jobs in their own transactions, and the channel's reads and results
//! (`google_offers`) import those modules, so this cannot live there.

use sqlx::{Any, Transaction};

use super::jobs::{Outbox, ROWS_PER_STATEMENT};
use super::notify::announce;
use super::{Params, StoreResult};

/// Writes (or moves up) an offer job for each of these coupons whose Google side has work: the member's
/// loyalty object is inserted, or the coupon's own object is. Rows go in key order, as settling locks
/// them. Answers whether any job was written (and announced).
pub(crate) async fn enqueue_offer_jobs(
    tx: &mut Transaction<'static, Any>,
    sqlite: bool,
    coupon_ids: &[&str],
) -> StoreResult<bool> {
    let now_ms = crate::time_fmt::now_unix_ms();
    let bytes = if sqlite { "" } else { " COLLATE \"C\"" };
    let mut written = 0;
    for chunk in coupon_ids.chunks(ROWS_PER_STATEMENT) {
        let mut p = Params::new(sqlite);
        let (enqueued, due) = (p.next(), p.next());
        let sql = format!(
            "INSERT INTO offer_jobs (program, coupon_id, enqueued_at, generation, attempts, not_before, lease_until) \
             SELECT c.program, c.coupon_id, CAST({enqueued} AS BIGINT), 1, 0, CAST({due} AS BIGINT), 0 FROM coupons c \
             WHERE c.coupon_id IN ({}) AND (c.google_state <> '' OR EXISTS (SELECT 1 FROM google_objects g \
             WHERE g.program = c.program AND g.member_id = c.member_id AND g.inserted_at > 0)) \
             ORDER BY c.program{bytes}, c.coupon_id{bytes} \
             ON CONFLICT (program, coupon_id) DO UPDATE SET generation = offer_jobs.generation + 1",
            p.list(chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now_ms).bind(now_ms);
        for id in chunk {
            query = query.bind(id.to_string());
        }
        written += query.execute(&mut **tx).await?.rows_affected();
    }
    if written > 0 {
        announce(tx, sqlite, Outbox::GoogleOffers).await?;
    }
    Ok(written > 0)
}
