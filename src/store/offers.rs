//! Offers and coupons: the offer rows, a grant's plan written in one transaction, the redemption's
//! conditional update (exactly one of any number of concurrent attempts wins, on every instance),
//! withdrawal and expiry. Each change to a coupon pass takes a tag from the one counter and pushes the
//! devices holding it, in the transaction of the change.

use std::collections::{BTreeSet, HashMap, HashSet};

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::jobs::{Outbox, ROWS_PER_STATEMENT};
use super::members::read_members;
use super::notify::announce;
use super::outbox::enqueue_pushes;
use super::tags::{reserve_update_tags, touch_coupon_passes, update_passes};
use super::write::Written;
use super::{Params, Store, StoreError, StoreResult};
use crate::domain::MemberId;
use crate::model::{CouponCounts, CouponRecord, CouponState, OfferRecord};
use crate::plan::offers::{GrantPlan, GrantRefusal, GrantSnapshot};

const OFFER_COLUMNS: &str = "program, offer_id, template, valid_from, valid_until, per_member, quota, withdrawn_at, \
     created_at, updated_at";

/// Columns of `COUPON_SELECT`, for queries that add their own after them.
pub(super) const COUPON_COLUMN_COUNT: usize = 20;

pub(super) const COUPON_SELECT: &str = "SELECT c.coupon_id, c.program, c.offer_id, c.member_id, c.code, c.state, c.granted_at, \
     c.redeemed_at, c.redeemed_location, c.serial_number, c.authentication_token, c.pass_type_id, c.update_tag, \
     c.modified_at, o.template, o.valid_from, o.valid_until, m.name, m.tier, m.locale \
     FROM coupons c JOIN offers o ON o.program = c.program AND o.offer_id = c.offer_id \
     JOIN members m ON m.program = c.program AND m.member_id = c.member_id";

/// What `PUT /api/v1/offers/{id}` sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferSpec {
    pub template: String,
    pub valid_from: i64,
    pub valid_until: i64,
    pub per_member: i64,
    pub quota: Option<i64>,
}

/// Why an offer's PUT is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferPutRefusal {
    /// Coupons exist: their passes carry the template and window, so these stay as they are.
    Granted {
        granted: i64,
    },
    Withdrawn,
}

/// What a grant came to.
#[derive(Debug)]
pub enum GrantOutcome {
    Granted(GrantPlan),
    Refused(GrantRefusal),
    NoOffer,
}

fn offer_from_row(row: &AnyRow) -> Result<OfferRecord, sqlx::Error> {
    Ok(OfferRecord {
        program: row.try_get(0)?,
        offer_id: row.try_get(1)?,
        template: row.try_get(2)?,
        valid_from: row.try_get(3)?,
        valid_until: row.try_get(4)?,
        per_member: row.try_get(5)?,
        quota: row.try_get(6)?,
        withdrawn_at: row.try_get(7)?,
        created_at: row.try_get(8)?,
        updated_at: row.try_get(9)?,
        counts: CouponCounts::default(),
    })
}

pub(super) fn coupon_from_row(row: &AnyRow) -> Result<CouponRecord, sqlx::Error> {
    Ok(CouponRecord {
        coupon_id: row.try_get(0)?,
        program: row.try_get(1)?,
        offer_id: row.try_get(2)?,
        member_id: row.try_get(3)?,
        code: row.try_get(4)?,
        stored_state: CouponState::parse(&row.try_get::<String, _>(5)?),
        granted_at: row.try_get(6)?,
        redeemed_at: row.try_get(7)?,
        redeemed_location: row.try_get(8)?,
        serial_number: row.try_get(9)?,
        authentication_token: row.try_get(10)?,
        pass_type_id: row.try_get(11)?,
        update_tag: row.try_get(12)?,
        modified_at: row.try_get(13)?,
        template: row.try_get(14)?,
        valid_from: row.try_get(15)?,
        valid_until: row.try_get(16)?,
        member_name: row.try_get(17)?,
        member_tier: row.try_get(18)?,
        member_locale: row.try_get(19)?,
    })
}

async fn read_offer(
    tx: &mut Transaction<'static, Any>,
    sqlite: bool,
    program: &str,
    offer_id: &str,
) -> StoreResult<Option<OfferRecord>> {
    let lock = if sqlite { "" } else { " FOR UPDATE" };
    let sql = format!("SELECT {OFFER_COLUMNS} FROM offers WHERE program = $1 AND offer_id = $2{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(program).bind(offer_id).fetch_optional(&mut **tx).await?;
    Ok(row.as_ref().map(offer_from_row).transpose()?)
}

impl Store {
    /// Creates or changes an offer. Once coupons exist its template and window stay (their passes show
    /// them); the limits may change. Answers the offer and whether it was created, or why not.
    pub async fn put_offer(
        &self,
        program: &str,
        offer_id: &str,
        spec: &OfferSpec,
        now: i64,
    ) -> StoreResult<Result<(OfferRecord, bool), OfferPutRefusal>> {
        super::retry_conflicts(|| self.try_put_offer(program, offer_id, spec, now)).await
    }

    async fn try_put_offer(
        &self,
        program: &str,
        offer_id: &str,
        spec: &OfferSpec,
        now: i64,
    ) -> StoreResult<Result<(OfferRecord, bool), OfferPutRefusal>> {
        let mut tx = self.writer.begin().await?;
        let existing = read_offer(&mut tx, self.sqlite, program, offer_id).await?;
        let created = existing.is_none();
        if let Some(existing) = existing {
            if existing.withdrawn_at.is_some() {
                return Ok(Err(OfferPutRefusal::Withdrawn));
            }
            let granted = count_coupons(&mut tx, program, offer_id).await?;
            let fixed_changed = existing.template != spec.template
                || existing.valid_from != spec.valid_from
                || existing.valid_until != spec.valid_until;
            if granted > 0 && fixed_changed {
                return Ok(Err(OfferPutRefusal::Granted { granted }));
            }
        }
        sqlx::query(
            "INSERT INTO offers (program, offer_id, template, valid_from, valid_until, per_member, quota, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (program, offer_id) DO UPDATE SET \
             template = excluded.template, valid_from = excluded.valid_from, valid_until = excluded.valid_until, \
             per_member = excluded.per_member, quota = excluded.quota, updated_at = excluded.updated_at",
        )
        .bind(program)
        .bind(offer_id)
        .bind(spec.template.clone())
        .bind(spec.valid_from)
        .bind(spec.valid_until)
        .bind(spec.per_member)
        .bind(spec.quota)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let offer = self.offer(program, offer_id, now).await?;
        let offer = offer.ok_or_else(|| StoreError::Corrupt(format!("offer {offer_id} missing after its PUT")))?;
        Ok(Ok((offer, created)))
    }

    /// The offer with its coupons counted by state at `now`.
    pub async fn offer(&self, program: &str, offer_id: &str, now: i64) -> StoreResult<Option<OfferRecord>> {
        let sql = format!("SELECT {OFFER_COLUMNS} FROM offers WHERE program = $1 AND offer_id = $2");
        let row =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(program).bind(offer_id).fetch_optional(&self.reader).await?;
        let Some(mut offer) = row.as_ref().map(offer_from_row).transpose()? else { return Ok(None) };
        let rows =
            sqlx::query("SELECT state, COUNT(*) FROM coupons WHERE program = $1 AND offer_id = $2 GROUP BY state")
                .bind(program)
                .bind(offer_id)
                .fetch_all(&self.reader)
                .await?;
        let ended = now >= offer.valid_until;
        for row in rows {
            let n: i64 = row.try_get(1)?;
            offer.counts.granted += n;
            match CouponState::parse(&row.try_get::<String, _>(0)?) {
                CouponState::Redeemed => offer.counts.redeemed += n,
                CouponState::Withdrawn => offer.counts.withdrawn += n,
                CouponState::Expired => offer.counts.expired += n,
                CouponState::Active if ended => offer.counts.expired += n,
                CouponState::Active => {}
            }
        }
        Ok(Some(offer))
    }

    /// Withdraws an offer (idempotent): every coupon not yet redeemed becomes withdrawn, its pass voided
    /// and pushed. None when there is no such offer.
    pub async fn withdraw_offer(&self, program: &str, offer_id: &str, now: i64) -> StoreResult<Option<OfferRecord>> {
        let mut tx = self.writer.begin().await?;
        if read_offer(&mut tx, self.sqlite, program, offer_id).await?.is_none() {
            return Ok(None);
        }
        sqlx::query("UPDATE offers SET withdrawn_at = $3, updated_at = $3 WHERE program = $1 AND offer_id = $2 AND withdrawn_at IS NULL")
            .bind(program)
            .bind(offer_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query(
            "UPDATE coupons SET state = 'withdrawn' WHERE program = $1 AND offer_id = $2 AND state IN ('active', 'expired') \
             RETURNING serial_number, modified_at, coupon_id",
        )
        .bind(program)
        .bind(offer_id)
        .fetch_all(&mut *tx)
        .await?;
        let passes =
            rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<Vec<_>, sqlx::Error>>()?;
        let ids = rows.iter().map(|r| r.try_get::<String, _>(2)).collect::<Result<Vec<_>, sqlx::Error>>()?;
        let pushed = touch_coupon_passes(&mut tx, self.sqlite, &passes, now).await?;
        let offers = self.enqueue_offer_jobs(&mut tx, &ids).await?;
        tx.commit().await?;
        self.changed(Written { pushes: pushed, google: false, offers });
        self.offer(program, offer_id, now).await
    }

    /// Grants an offer to members in one transaction: reads the offer (locked, so grants of one offer
    /// queue and the quota holds), the members named (locked) and who holds the offer already, lets
    /// `decide` plan it, and writes the coupons, the cards' latest offer, their tags and pushes.
    pub async fn grant_offer(
        &self,
        program: &str,
        offer_id: &str,
        requested: &[MemberId],
        identity: (&str, &str),
        now: i64,
        decide: impl Fn(&GrantSnapshot<'_>) -> Result<GrantPlan, GrantRefusal>,
    ) -> StoreResult<GrantOutcome> {
        super::retry_conflicts(|| self.try_grant(program, offer_id, requested, identity, now, &decide)).await
    }

    async fn try_grant(
        &self,
        program: &str,
        offer_id: &str,
        requested: &[MemberId],
        identity: (&str, &str),
        now: i64,
        decide: &impl Fn(&GrantSnapshot<'_>) -> Result<GrantPlan, GrantRefusal>,
    ) -> StoreResult<GrantOutcome> {
        let mut tx = self.writer.begin().await?;
        let Some(offer) = read_offer(&mut tx, self.sqlite, program, offer_id).await? else {
            return Ok(GrantOutcome::NoOffer);
        };
        let ids: BTreeSet<&str> = requested.iter().map(MemberId::as_str).collect();
        let mut members = HashMap::new();
        let mut holders = HashSet::new();
        let all: Vec<&str> = ids.iter().copied().collect();
        for chunk in all.chunks(ROWS_PER_STATEMENT) {
            let chunk: BTreeSet<&str> = chunk.iter().copied().collect();
            members.extend(read_members(&mut tx, self.sqlite, program, &chunk).await?);
            holders.extend(read_holders(&mut tx, self.sqlite, program, offer_id, &chunk).await?);
        }
        let issued = count_coupons(&mut tx, program, offer_id).await?;
        let snapshot = GrantSnapshot { offer: &offer, members: &members, holders: &holders, issued, now };
        let plan = match decide(&snapshot) {
            Ok(plan) => plan,
            Err(refusal) => return Ok(GrantOutcome::Refused(refusal)),
        };
        insert_coupons(&mut tx, self.sqlite, &offer, &plan, identity, now).await?;
        set_latest_offer(&mut tx, self.sqlite, program, &offer.template, &plan.granted).await?;
        let mut pushed = false;
        for chunk in plan.cards.chunks(ROWS_PER_STATEMENT) {
            let serials: Vec<&str> = chunk.iter().map(|c| c.serial_number.as_str()).collect();
            pushed |= enqueue_pushes(&mut tx, self.sqlite, &serials).await? > 0;
        }
        if pushed {
            announce(&mut tx, self.sqlite, Outbox::Apns).await?;
        }
        let mut next_tag = reserve_update_tags(&mut tx, plan.cards.len()).await?;
        for chunk in plan.cards.chunks(ROWS_PER_STATEMENT) {
            update_passes(&mut tx, self.sqlite, chunk, &mut next_tag).await?;
        }
        let ids: Vec<&str> = plan.coupons.iter().map(|c| c.coupon_id.as_str()).collect();
        let offers = self.enqueue_offer_jobs(&mut tx, &ids).await?;
        tx.commit().await?;
        if !plan.cards.is_empty() || offers {
            self.changed(Written { pushes: pushed, google: false, offers });
        }
        Ok(GrantOutcome::Granted(plan))
    }

    /// Marks the open coupons of offers whose window has closed as expired (their passes already show it
    /// through `expirationDate`). Answers how many coupons it marked.
    pub async fn expire_offers(&self, now: i64) -> StoreResult<u64> {
        let rows = sqlx::query(
            "SELECT program, offer_id FROM offers WHERE valid_until <= $1 AND expired_at IS NULL AND withdrawn_at IS NULL",
        )
        .bind(now)
        .fetch_all(&self.reader)
        .await?;
        let mut marked = 0;
        for row in rows {
            let (program, offer_id): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            let mut tx = self.writer.begin().await?;
            let expired = sqlx::query(
                "UPDATE coupons SET state = 'expired' WHERE program = $1 AND offer_id = $2 AND state = 'active' \
                 RETURNING coupon_id",
            )
            .bind(&program)
            .bind(&offer_id)
            .fetch_all(&mut *tx)
            .await?;
            let ids = expired.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<Vec<_>, sqlx::Error>>()?;
            sqlx::query("UPDATE offers SET expired_at = $3 WHERE program = $1 AND offer_id = $2")
                .bind(&program)
                .bind(&offer_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let offers = self.enqueue_offer_jobs(&mut tx, &ids).await?;
            tx.commit().await?;
            self.changed(Written { pushes: false, google: false, offers });
            marked += ids.len() as u64;
        }
        Ok(marked)
    }

    /// Unix seconds when the next open offer's window closes, if one is open.
    pub async fn next_offer_expiry(&self) -> StoreResult<Option<i64>> {
        Ok(sqlx::query("SELECT MIN(valid_until) FROM offers WHERE expired_at IS NULL AND withdrawn_at IS NULL")
            .fetch_one(&self.reader)
            .await?
            .try_get(0)?)
    }

    /// Google offer jobs for these coupons, when Google Wallet is configured.
    pub(super) async fn enqueue_offer_jobs(
        &self,
        tx: &mut Transaction<'static, Any>,
        coupon_ids: &[impl AsRef<str>],
    ) -> StoreResult<bool> {
        if !self.google_outbox_enabled() {
            return Ok(false);
        }
        let ids: Vec<&str> = coupon_ids.iter().map(AsRef::as_ref).collect();
        super::offer_jobs::enqueue_offer_jobs(tx, self.sqlite, &ids).await
    }

    pub async fn coupon_by_code(&self, program: &str, code: &str) -> StoreResult<Option<CouponRecord>> {
        self.one_coupon("c.program = $1 AND c.code = $2", &[program, code]).await
    }

    pub async fn coupon_by_serial(&self, serial: &str) -> StoreResult<Option<CouponRecord>> {
        self.one_coupon("c.serial_number = $1", &[serial]).await
    }

    pub async fn coupon_by_id(&self, coupon_id: &str) -> StoreResult<Option<CouponRecord>> {
        self.one_coupon("c.coupon_id = $1", &[coupon_id]).await
    }

    async fn one_coupon(&self, condition: &str, values: &[&str]) -> StoreResult<Option<CouponRecord>> {
        let sql = format!("{COUPON_SELECT} WHERE {condition}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for v in values {
            query = query.bind(v.to_string());
        }
        let row = query.fetch_optional(&self.reader).await?;
        Ok(row.as_ref().map(coupon_from_row).transpose()?)
    }

    /// A member's coupons, active ones first, then newest first; `offset` pages.
    pub async fn member_coupons(
        &self,
        program: &str,
        member_id: &str,
        now: i64,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<CouponRecord>> {
        let sql = format!(
            "{COUPON_SELECT} WHERE c.program = $1 AND c.member_id = $2 \
             ORDER BY CASE WHEN c.state = 'active' AND o.valid_until > $3 THEN 0 ELSE 1 END, c.granted_at DESC, c.coupon_id \
             LIMIT $4 OFFSET $5"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(program)
            .bind(member_id)
            .bind(now)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.iter().map(coupon_from_row).collect::<Result<Vec<_>, _>>()?)
    }
}

async fn count_coupons(tx: &mut Transaction<'static, Any>, program: &str, offer_id: &str) -> StoreResult<i64> {
    let row = sqlx::query("SELECT COUNT(*) FROM coupons WHERE program = $1 AND offer_id = $2")
        .bind(program)
        .bind(offer_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.try_get(0)?)
}

/// Which of `members` hold coupons of the offer already.
async fn read_holders(
    tx: &mut Transaction<'static, Any>,
    sqlite: bool,
    program: &str,
    offer_id: &str,
    members: &BTreeSet<&str>,
) -> StoreResult<HashSet<String>> {
    let mut p = Params::new(sqlite);
    let (program_param, offer_param) = (p.next(), p.next());
    let sql = format!(
        "SELECT DISTINCT member_id FROM coupons WHERE program = {program_param} AND offer_id = {offer_param} \
         AND member_id IN ({})",
        p.list(members.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(program.to_string()).bind(offer_id.to_string());
    for m in members {
        query = query.bind(m.to_string());
    }
    let rows = query.fetch_all(&mut **tx).await?;
    rows.iter().map(|r| Ok(r.try_get::<String, _>(0)?)).collect()
}

/// The plan's coupons, a few hundred rows per statement. A new coupon pass has tag 0: no device holds it.
async fn insert_coupons(
    tx: &mut Transaction<'static, Any>,
    sqlite: bool,
    offer: &OfferRecord,
    plan: &GrantPlan,
    (pass_type_id, team_id): (&str, &str),
    now: i64,
) -> StoreResult<()> {
    const BIGINT: &str = "CAST({} AS BIGINT)";
    for chunk in plan.coupons.chunks(500) {
        let columns = ["{}", "{}", "{}", "{}", BIGINT, "{}", "'active'", BIGINT, "{}", "{}", "{}", "{}", "0", BIGINT];
        let sql = format!(
            "INSERT INTO coupons (coupon_id, program, offer_id, member_id, slot, code, state, granted_at, serial_number, \
             authentication_token, pass_type_id, team_id, update_tag, modified_at) VALUES {}",
            Params::new(sqlite).rows(chunk.len(), &columns)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for c in chunk {
            query = query
                .bind(c.coupon_id.clone())
                .bind(offer.program.clone())
                .bind(offer.offer_id.clone())
                .bind(c.member_id.clone())
                .bind(c.slot)
                .bind(c.code.clone())
                .bind(now)
                .bind(c.serial_number.clone())
                .bind(c.authentication_token.clone())
                .bind(pass_type_id.to_string())
                .bind(team_id.to_string())
                .bind(now);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The granted members' cards show this offer as their latest.
async fn set_latest_offer(
    tx: &mut Transaction<'static, Any>,
    sqlite: bool,
    program: &str,
    template: &str,
    members: &[String],
) -> StoreResult<()> {
    for chunk in members.chunks(ROWS_PER_STATEMENT) {
        let mut p = Params::new(sqlite);
        let (template_param, program_param) = (p.next(), p.next());
        let sql = format!(
            "UPDATE members SET latest_offer = {template_param} WHERE program = {program_param} AND member_id IN ({})",
            p.list(chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(template.to_string()).bind(program.to_string());
        for m in chunk {
            query = query.bind(m.clone());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}
