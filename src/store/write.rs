//! The one writer of plans, for the ledger and the admin API alike. It decides nothing: it writes the
//! records, tags and statuses a plan holds. Set-based, so a plan costs a few statements whatever its size
//! (through sqlx's SQLite driver each statement is a round trip; see BENCHMARKS.md).

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{Any, Transaction};

use super::jobs::Outbox;
use super::notify::announce;
use super::outbox::enqueue_pushes;
use super::tags::{reserve_update_tags, update_passes};
use super::{EventStatus, MemberRecord, Params, StoreResult};
use crate::domain::EventId;
use crate::plan::Plan;

/// Writes `plan` in the caller's transaction: new members, member updates, push jobs for the changed
/// passes, the ledger statuses to record, and last a new update tag for every new or changed pass with the
/// passes themselves. The tags come last because the counter row they are reserved from stays locked
/// until commit: every changing transaction of every instance queues on it, so it is held for as few
/// statements as possible. Google object jobs are written (when `google`) for every new or changed member.
/// Answers which jobs were written: only those workers are woken.
pub(crate) async fn write_plan(
    tx: &mut Transaction<'static, Any>,
    sqlite: bool,
    google: bool,
    plan: &Plan,
) -> StoreResult<Written> {
    if !plan.created.is_empty() {
        insert_members(tx, sqlite, &plan.created).await?;
    }
    if !plan.updated.is_empty() {
        update_members(tx, sqlite, &plan.updated).await?;
    }
    let mut written = Written::default();
    if !plan.changed_passes.is_empty() {
        let serials: Vec<&str> = plan.changed_passes.iter().map(|p| p.serial_number.as_str()).collect();
        written.pushes = enqueue_pushes(tx, sqlite, &serials).await? > 0;
        if written.pushes {
            announce(tx, sqlite, Outbox::Apns).await?;
        }
    }
    if google {
        written.google = enqueue_google_jobs(tx, sqlite, &google_members(plan)).await? > 0;
        if written.google {
            announce(tx, sqlite, Outbox::GoogleObjects).await?;
        }
    }
    let retired = retired_members(plan);
    if !retired.is_empty() {
        let now = crate::time_fmt::now_unix();
        let withdrawn = super::tags::withdraw_member_coupons(tx, sqlite, &retired, now).await?;
        written.pushes |= withdrawn.pushes;
        if google {
            let ids: Vec<&str> = withdrawn.coupon_ids.iter().map(String::as_str).collect();
            written.offers = super::offer_jobs::enqueue_offer_jobs(tx, sqlite, &ids).await?;
        }
    }
    record_event_statuses(tx, sqlite, &plan.event_statuses_to_record).await?;
    let mut next_tag = reserve_update_tags(tx, plan.created.len() + plan.changed_passes.len()).await?;
    if !plan.created.is_empty() {
        insert_passes(tx, sqlite, &plan.created, &mut next_tag).await?;
    }
    if !plan.changed_passes.is_empty() {
        update_passes(tx, sqlite, &plan.changed_passes, &mut next_tag).await?;
    }
    Ok(written)
}

/// Which outboxes a plan's write filled.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Written {
    pub pushes: bool,
    pub google: bool,
    /// Google offer jobs (coupons' objects).
    pub offers: bool,
}

/// Members this plan retires (their pass is voided by it): their open coupons are withdrawn with them.
fn retired_members(plan: &Plan) -> BTreeSet<(&str, &str)> {
    let voided: BTreeSet<&str> =
        plan.changed_passes.iter().filter(|p| p.voided).map(|p| p.serial_number.as_str()).collect();
    plan.updated
        .iter()
        .filter(|m| m.retired && voided.contains(m.serial_number.as_str()))
        .map(|m| (m.program.as_str(), m.member_id.as_str()))
        .collect()
}

/// New members and members whose pass changed (what the Google object shows changed with it).
fn google_members(plan: &Plan) -> BTreeSet<(&str, &str)> {
    let changed: BTreeSet<&str> = plan.changed_passes.iter().map(|p| p.serial_number.as_str()).collect();
    plan.created
        .iter()
        .chain(plan.updated.iter().filter(|m| changed.contains(m.serial_number.as_str())))
        .map(|m| (m.program.as_str(), m.member_id.as_str()))
        .collect()
}

async fn insert_members(tx: &mut Transaction<'static, Any>, sqlite: bool, created: &[MemberRecord]) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO members (program, member_id, public_id, name, tier, points, locale, attributes, retired, \
         ledger_sequence, created_at, updated_at) VALUES {}",
        Params::new(sqlite).rows(created.len(), &[&["{}", "{}", "{}"][..], &MEMBER_FIELDS, &[BIGINT, BIGINT]].concat())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for r in created {
        query = query.bind(r.program.clone()).bind(r.member_id.clone()).bind(r.public_id.clone());
        query = bind_member_fields(query, r).bind(r.created_at).bind(r.updated_at);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// The new members' passes, each with the next reserved tag.
async fn insert_passes(
    tx: &mut Transaction<'static, Any>,
    sqlite: bool,
    created: &[MemberRecord],
    next_tag: &mut i64,
) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO apple_passes (serial_number, program, member_id, pass_type_id, team_id, authentication_token, \
         voided, update_tag, modified_at, created_at) VALUES {}",
        Params::new(sqlite).rows(
            created.len(),
            &[
                "{}",
                "{}",
                "{}",
                "{}",
                "{}",
                "{}",
                "CAST({} AS BIGINT)",
                "CAST({} AS BIGINT)",
                "CAST({} AS BIGINT)",
                "CAST({} AS BIGINT)",
            ]
        )
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for r in created {
        query = query
            .bind(r.serial_number.clone())
            .bind(r.program.clone())
            .bind(r.member_id.clone())
            .bind(r.pass_type_id.clone())
            .bind(r.team_id.clone())
            .bind(r.authentication_token.clone())
            .bind(i64::from(r.voided))
            .bind(*next_tag)
            .bind(r.modified_at)
            .bind(r.created_at);
        *next_tag += 1;
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Writes every field a plan may change; serial number and authentication token live on the pass and
/// never change.
async fn update_members(tx: &mut Transaction<'static, Any>, sqlite: bool, updated: &[MemberRecord]) -> StoreResult<()> {
    let rows = Params::new(sqlite).rows(updated.len(), &[&["{}", "{}"][..], &MEMBER_FIELDS, &[BIGINT]].concat());
    let sql = format!(
        "WITH v(program, member_id, name, tier, points, locale, attributes, retired, seq, updated_at) AS (VALUES {rows}) \
         UPDATE members SET name = v.name, tier = v.tier, points = v.points, locale = v.locale, \
         attributes = v.attributes, retired = v.retired, ledger_sequence = v.seq, updated_at = v.updated_at \
         FROM v WHERE members.program = v.program AND members.member_id = v.member_id"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for r in updated {
        query = query.bind(r.program.clone()).bind(r.member_id.clone());
        query = bind_member_fields(query, r).bind(r.updated_at);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// The claimed rows say `applied`; one statement per other status sets theirs.
async fn record_event_statuses(
    tx: &mut Transaction<'static, Any>,
    sqlite: bool,
    statuses: &[(EventId, EventStatus)],
) -> StoreResult<()> {
    let mut by_status: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (id, status) in statuses {
        by_status.entry(status.as_str()).or_default().push(id.as_str());
    }
    for (status, ids) in by_status {
        let mut p = Params::new(sqlite);
        let status_param = p.next();
        let sql = format!("UPDATE ledger_events SET status = {status_param} WHERE event_id IN ({})", p.list(ids.len()));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(status.to_string());
        for id in ids {
            query = query.bind(id.to_string());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

const BIGINT: &str = "CAST({} AS BIGINT)";

/// The placeholders of `bind_member_fields`' values, typed where PostgreSQL cannot tell from a VALUES list.
const MEMBER_FIELDS: [&str; 7] = ["CAST({} AS TEXT)", "{}", BIGINT, "CAST({} AS TEXT)", "{}", BIGINT, BIGINT];

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

/// Binds what the admin API and the ledger change on a member, in the column order both statements use:
/// name, tier, points, locale, attributes, retired, ledger sequence.
fn bind_member_fields<'q>(query: AnyQuery<'q>, r: &MemberRecord) -> AnyQuery<'q> {
    query
        .bind(r.name.clone())
        .bind(r.tier.clone())
        .bind(r.points)
        .bind(r.locale.clone())
        .bind(r.attributes.clone())
        .bind(i64::from(r.retired))
        .bind(r.ledger_sequence)
}

/// Writes an object job for each (program, member), coalescing with a job already waiting; in key order,
/// like push jobs, so concurrent writers queue instead of deadlocking.
pub(crate) async fn enqueue_google_jobs(
    tx: &mut Transaction<'static, Any>,
    sqlite: bool,
    members: &BTreeSet<(&str, &str)>,
) -> StoreResult<u64> {
    if members.is_empty() {
        return Ok(0);
    }
    let now = crate::time_fmt::now_unix_ms();
    let mut written = 0;
    let members: Vec<&(&str, &str)> = members.iter().collect();
    for chunk in members.chunks(500) {
        let mut p = Params::new(sqlite);
        let rows = p.rows(chunk.len(), &["{}", "{}", "CAST({} AS BIGINT)", "1", "0", "CAST({} AS BIGINT)", "0"]);
        let sql = format!(
            "INSERT INTO google_jobs (program, member_id, enqueued_at, generation, attempts, not_before, lease_until) \
             VALUES {rows} ON CONFLICT (program, member_id) DO UPDATE SET generation = google_jobs.generation + 1"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (program, member) in chunk {
            query = query.bind(program.to_string()).bind(member.to_string()).bind(now).bind(now);
        }
        written += query.execute(&mut **tx).await?.rows_affected();
    }
    Ok(written)
}
