//! Redemptions with group commit. Each redemption is a conditional update that only an active coupon
//! inside its window passes, so of any number of concurrent attempts (on any instance) exactly one
//! changes the row; its pass is voided and pushed, and its Google job written, in the same transaction.
//! The redemptions that arrive while one batch is written go together in the next transaction: one
//! commit for many tills (one transaction each capped SQLite's single writer near 1,500/s; BENCHMARKS.md).

use std::collections::{HashMap, HashSet};

use sqlx::{Any, Row, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::offers::{COUPON_SELECT, coupon_from_row};
use super::tags::touch_coupon_passes;
use super::write::Written;
use super::{Params, Store, StoreError, StoreResult};
use crate::model::CouponRecord;

/// Redemptions written in one transaction at most.
const REDEMPTIONS_PER_BATCH: usize = 256;

/// One till's request.
#[derive(Debug, Clone)]
pub struct Redemption {
    pub program: String,
    pub code: String,
    pub location: Option<String>,
    /// Who redeems (the staff credential's fingerprint).
    pub staff: String,
    /// Unix seconds.
    pub now: i64,
}

/// Why a redemption did not happen.
#[derive(Debug)]
pub enum RedeemFailure {
    NoCoupon,
    /// The coupon as it stands (redeemed, expired, withdrawn, not yet valid).
    Unredeemable(Box<CouponRecord>),
}

pub type RedeemOutcome = Result<CouponRecord, RedeemFailure>;

type Pending = (Redemption, oneshot::Sender<Result<RedeemOutcome, (String, bool)>>);

/// The group-commit writer of redemptions; clones share it.
#[derive(Clone)]
pub struct Redeemer {
    queue: mpsc::Sender<Pending>,
}

impl Redeemer {
    /// Starts the writer task (on the current runtime).
    pub fn start(store: Store) -> Redeemer {
        let (queue, mut incoming) = mpsc::channel::<Pending>(4 * REDEMPTIONS_PER_BATCH);
        tokio::spawn(async move {
            while let Some(first) = incoming.recv().await {
                let mut batch = vec![first];
                while batch.len() < REDEMPTIONS_PER_BATCH {
                    match incoming.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let (requests, waiters): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                match store.redeem_batch(&requests).await {
                    Ok(outcomes) => {
                        for (waiter, outcome) in waiters.into_iter().zip(outcomes) {
                            let _ = waiter.send(Ok(outcome));
                        }
                    }
                    Err(e) => {
                        let unavailable = e.is_unavailable();
                        let message = format!("{:#}", anyhow::Error::new(e));
                        for waiter in waiters {
                            let _ = waiter.send(Err((message.clone(), unavailable)));
                        }
                    }
                }
            }
        });
        Redeemer { queue }
    }

    /// Redeems once; answers when the batch holding this request is committed.
    pub async fn redeem(&self, redemption: Redemption) -> StoreResult<RedeemOutcome> {
        let (done, committed) = oneshot::channel();
        let gone = || StoreError::Corrupt("the redemption writer stopped".into());
        self.queue.send((redemption, done)).await.map_err(|_| gone())?;
        committed
            .await
            .map_err(|_| gone())?
            .map_err(|(message, unavailable)| StoreError::Batch { message, unavailable })
    }
}

/// What the batch's conditional update changed: code → (serial, modified_at, coupon id).
type Won = HashMap<(String, String), (String, i64, String)>;

impl Store {
    /// Redeems a batch in one transaction (run again whole if it loses a race on PostgreSQL). A code asked
    /// twice in one batch is won by the first request; the later one sees it redeemed.
    pub async fn redeem_batch(&self, batch: &[Redemption]) -> StoreResult<Vec<RedeemOutcome>> {
        super::retry_conflicts(|| self.try_redeem_batch(batch)).await
    }

    async fn try_redeem_batch(&self, batch: &[Redemption]) -> StoreResult<Vec<RedeemOutcome>> {
        let mut seen = HashSet::new();
        let firsts: Vec<usize> = (0..batch.len()).filter(|&i| seen.insert(key(&batch[i]))).collect();
        let mut tx = self.writer.begin().await?;
        let won = self.update_redeemed(&mut tx, batch, &firsts).await?;
        let passes: Vec<(String, i64)> =
            won.values().map(|(serial, modified, _)| (serial.clone(), *modified)).collect();
        let now = batch.iter().map(|r| r.now).max().unwrap_or_default();
        let pushes = touch_coupon_passes(&mut tx, self.sqlite, &passes, now).await?;
        let ids: Vec<&str> = won.values().map(|(_, _, id)| id.as_str()).collect();
        let offers = self.enqueue_offer_jobs(&mut tx, &ids).await?;
        let records = read_by_code(&mut tx, self.sqlite, batch, &firsts).await?;
        tx.commit().await?;
        self.changed(Written { pushes, google: false, offers });

        let firsts: HashSet<usize> = firsts.into_iter().collect();
        let outcomes = batch.iter().enumerate().map(|(i, r)| {
            let k = key(r);
            let record = records.get(&k).cloned();
            match (record, firsts.contains(&i) && won.contains_key(&k)) {
                (Some(coupon), true) => Ok(coupon),
                (Some(coupon), false) => Err(RedeemFailure::Unredeemable(Box::new(coupon))),
                (None, _) => Err(RedeemFailure::NoCoupon),
            }
        });
        Ok(outcomes.collect())
    }

    /// The conditional update of the batch's distinct codes, a few hundred rows per statement.
    async fn update_redeemed(
        &self,
        tx: &mut Transaction<'static, Any>,
        batch: &[Redemption],
        firsts: &[usize],
    ) -> StoreResult<Won> {
        let mut won = Won::new();
        for chunk in firsts.chunks(super::jobs::ROWS_PER_STATEMENT / 5) {
            let values = Params::new(self.sqlite).rows(chunk.len(), &["{}", "{}", "CAST({} AS BIGINT)", "{}", "{}"]);
            let sql = format!(
                "WITH v(program, code, at, location, staff) AS (VALUES {values}) \
                 UPDATE coupons SET state = 'redeemed', redeemed_at = v.at, redeemed_location = v.location, \
                 redeemed_staff = v.staff FROM v WHERE coupons.program = v.program AND coupons.code = v.code \
                 AND coupons.state = 'active' AND EXISTS (SELECT 1 FROM offers o WHERE o.program = coupons.program \
                 AND o.offer_id = coupons.offer_id AND o.valid_from <= v.at AND o.valid_until > v.at) \
                 RETURNING coupons.program, coupons.code, coupons.serial_number, coupons.modified_at, coupons.coupon_id"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for &i in chunk {
                let r = &batch[i];
                query = query
                    .bind(r.program.clone())
                    .bind(r.code.clone())
                    .bind(r.now)
                    .bind(r.location.clone())
                    .bind(r.staff.clone());
            }
            for row in query.fetch_all(&mut **tx).await? {
                won.insert((row.try_get(0)?, row.try_get(1)?), (row.try_get(2)?, row.try_get(3)?, row.try_get(4)?));
            }
        }
        Ok(won)
    }
}

fn key(r: &Redemption) -> (String, String) {
    (r.program.clone(), r.code.clone())
}

/// The batch's coupons as they stand in the transaction (the winners already redeemed), by code.
async fn read_by_code(
    tx: &mut Transaction<'static, Any>,
    sqlite: bool,
    batch: &[Redemption],
    firsts: &[usize],
) -> StoreResult<HashMap<(String, String), CouponRecord>> {
    let mut records = HashMap::new();
    for chunk in firsts.chunks(super::jobs::ROWS_PER_STATEMENT / 2) {
        let mut p = Params::new(sqlite);
        let pairs = p.rows(chunk.len(), &["{}", "{}"]);
        let sql = format!("{COUPON_SELECT} WHERE (c.program, c.code) IN (VALUES {pairs})");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for &i in chunk {
            query = query.bind(batch[i].program.clone()).bind(batch[i].code.clone());
        }
        for row in query.fetch_all(&mut **tx).await? {
            let coupon = coupon_from_row(&row)?;
            records.insert((coupon.program.clone(), coupon.code.clone()), coupon);
        }
    }
    Ok(records)
}
