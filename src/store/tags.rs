//! The update tags every pass change takes (from the one counter row, locked until commit, so tags follow
//! commit order), the card passes' new tags, and the coupon passes' changes with their pushes: the pieces
//! the plan writer and the offers store share.

use std::collections::BTreeSet;

use sqlx::{Any, Row, Transaction};

use super::jobs::{Outbox, ROWS_PER_STATEMENT};
use super::notify::announce;
use super::outbox::enqueue_pushes;
use super::{Params, StoreResult};
use crate::plan::{PassChange, next_modified_at};

/// Reserves `count` consecutive tags from the global counter and answers the first. The counter row stays
/// locked until commit, so tags follow commit order on every back end.
pub(crate) async fn reserve_update_tags(tx: &mut Transaction<'static, Any>, count: usize) -> StoreResult<i64> {
    if count == 0 {
        return Ok(0);
    }
    let count = count as i64;
    let row = sqlx::query("UPDATE counters SET value = value + $1 WHERE name = 'pass_update_tag' RETURNING value")
        .bind(count)
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.try_get::<i64, _>(0)? - count + 1)
}

/// A new tag, Last-Modified and voided flag for every changed pass.
pub(crate) async fn update_passes(
    tx: &mut Transaction<'static, Any>,
    sqlite: bool,
    changed: &[PassChange],
    next_tag: &mut i64,
) -> StoreResult<()> {
    let sql = format!(
        "WITH v(serial, tag, modified, voided) AS (VALUES {}) \
         UPDATE apple_passes SET update_tag = v.tag, modified_at = v.modified, voided = v.voided \
         FROM v WHERE apple_passes.serial_number = v.serial",
        Params::new(sqlite)
            .rows(changed.len(), &["{}", "CAST({} AS BIGINT)", "CAST({} AS BIGINT)", "CAST({} AS BIGINT)"])
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for p in changed {
        query = query.bind(p.serial_number.clone()).bind(*next_tag).bind(p.modified_at).bind(i64::from(p.voided));
        *next_tag += 1;
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Moves the passes of coupons that changed state (`(serial, previous Last-Modified)`) to new tags and
/// pushes the devices holding them.
pub(crate) async fn touch_coupon_passes(
    tx: &mut Transaction<'static, Any>,
    sqlite: bool,
    passes: &[(String, i64)],
    now: i64,
) -> StoreResult<bool> {
    if passes.is_empty() {
        return Ok(false);
    }
    let mut pushed = false;
    for chunk in passes.chunks(ROWS_PER_STATEMENT) {
        let serials: Vec<&str> = chunk.iter().map(|(s, _)| s.as_str()).collect();
        pushed |= enqueue_pushes(tx, sqlite, &serials).await? > 0;
    }
    let mut next_tag = reserve_update_tags(tx, passes.len()).await?;
    for chunk in passes.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "WITH v(serial, tag, modified) AS (VALUES {}) \
             UPDATE coupons SET update_tag = v.tag, modified_at = v.modified FROM v WHERE coupons.serial_number = v.serial",
            Params::new(sqlite).rows(chunk.len(), &["{}", "CAST({} AS BIGINT)", "CAST({} AS BIGINT)"])
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (serial, modified) in chunk {
            query = query.bind(serial.clone()).bind(next_tag).bind(next_modified_at(*modified, now));
            next_tag += 1;
        }
        query.execute(&mut **tx).await?;
    }
    if pushed {
        announce(tx, sqlite, Outbox::Apns).await?;
    }
    Ok(pushed)
}

/// Coupons whose state a change moved: their passes touched, and their ids for the Google offer jobs.
#[derive(Debug, Default)]
pub(crate) struct CouponsChanged {
    pub pushes: bool,
    pub coupon_ids: Vec<String>,
}

/// Withdraws the active coupons of these members (retired now), in the caller's transaction: their passes
/// are voided and pushed.
pub(crate) async fn withdraw_member_coupons(
    tx: &mut Transaction<'static, Any>,
    sqlite: bool,
    members: &BTreeSet<(&str, &str)>,
    now: i64,
) -> StoreResult<CouponsChanged> {
    let mut passes = Vec::new();
    let mut coupon_ids = Vec::new();
    for (program, member_id) in members {
        let rows = sqlx::query(
            "UPDATE coupons SET state = 'withdrawn' WHERE program = $1 AND member_id = $2 AND state = 'active' \
             RETURNING serial_number, modified_at, coupon_id",
        )
        .bind(program.to_string())
        .bind(member_id.to_string())
        .fetch_all(&mut **tx)
        .await?;
        for row in rows {
            passes.push((row.try_get(0)?, row.try_get(1)?));
            coupon_ids.push(row.try_get(2)?);
        }
    }
    let pushes = touch_coupon_passes(tx, sqlite, &passes, now).await?;
    Ok(CouponsChanged { pushes, coupon_ids })
}
