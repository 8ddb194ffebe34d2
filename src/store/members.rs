//! Members and their Apple passes.

use std::collections::{BTreeSet, HashMap};

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::write::write_plan;
use super::{MemberRecord, Params, Store, StoreError, StoreResult};
use crate::domain::MemberId;
use crate::plan::Plan;

pub(crate) const MEMBER_COLUMNS: &str = "m.program, m.member_id, m.public_id, m.name, m.tier, m.points, m.locale, m.attributes, \
     m.retired, m.ledger_sequence, m.created_at, m.updated_at, p.serial_number, p.authentication_token, \
     p.pass_type_id, p.team_id, p.voided, p.update_tag, p.modified_at, m.latest_offer";

/// How many columns `MEMBER_COLUMNS` reads: a statement's own columns follow from this index.
pub(crate) const MEMBER_COLUMN_COUNT: usize = 20;

pub(crate) fn member_from_row(row: &AnyRow) -> Result<MemberRecord, sqlx::Error> {
    Ok(MemberRecord {
        program: row.try_get(0)?,
        member_id: row.try_get(1)?,
        public_id: row.try_get(2)?,
        name: row.try_get(3)?,
        tier: row.try_get(4)?,
        points: row.try_get(5)?,
        locale: row.try_get(6)?,
        attributes: row.try_get(7)?,
        retired: row.try_get::<i64, _>(8)? != 0,
        ledger_sequence: row.try_get(9)?,
        created_at: row.try_get(10)?,
        updated_at: row.try_get(11)?,
        serial_number: row.try_get(12)?,
        authentication_token: row.try_get(13)?,
        pass_type_id: row.try_get(14)?,
        team_id: row.try_get(15)?,
        voided: row.try_get::<i64, _>(16)? != 0,
        update_tag: row.try_get(17)?,
        modified_at: row.try_get(18)?,
        latest_offer: row.try_get(19)?,
    })
}

/// Reads the members named (with their passes) inside a transaction, by member id: the state a decision
/// starts from. One select whatever the count; on PostgreSQL the rows stay locked until commit, so no
/// other writer changes them between the decision and the write.
pub(crate) async fn read_members(
    tx: &mut Transaction<'static, Any>,
    sqlite: bool,
    program: &str,
    member_ids: &BTreeSet<&str>,
) -> StoreResult<HashMap<String, MemberRecord>> {
    if member_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let lock = if sqlite { "" } else { " FOR UPDATE" };
    let mut p = Params::new(sqlite);
    let program_param = p.next();
    let sql = format!(
        "SELECT {MEMBER_COLUMNS} FROM members m JOIN apple_passes p ON p.program = m.program AND p.member_id = m.member_id \
         WHERE m.program = {program_param} AND m.member_id IN ({}) ORDER BY m.member_id{lock}",
        p.list(member_ids.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(program.to_string());
    for id in member_ids {
        query = query.bind(id.to_string());
    }
    let mut members = HashMap::with_capacity(member_ids.len());
    for row in query.fetch_all(&mut **tx).await? {
        let record = member_from_row(&row)?;
        members.insert(record.member_id.clone(), record);
    }
    Ok(members)
}

/// Which member a lookup wants; each is one indexed equality.
enum MemberKey<'a> {
    Id(&'a str, &'a str),
    Serial(&'a str),
    PublicId(&'a str),
}

/// Reads one member with its pass, on a pool or inside a transaction.
async fn fetch_member<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    key: MemberKey<'_>,
) -> StoreResult<Option<MemberRecord>> {
    let condition = match key {
        MemberKey::Id(..) => "m.program = $1 AND m.member_id = $2",
        MemberKey::Serial(_) => "p.serial_number = $1",
        MemberKey::PublicId(_) => "m.public_id = $1",
    };
    let sql = format!(
        "SELECT {MEMBER_COLUMNS} FROM members m JOIN apple_passes p ON p.program = m.program AND p.member_id = m.member_id \
         WHERE {condition}"
    );
    let query = sqlx::query(sqlx::AssertSqlSafe(sql));
    let query = match key {
        MemberKey::Id(program, member_id) => query.bind(program.to_string()).bind(member_id.to_string()),
        MemberKey::Serial(v) | MemberKey::PublicId(v) => query.bind(v.to_string()),
    };
    let row = query.fetch_optional(executor).await?;
    row.as_ref().map(member_from_row).transpose().map_err(StoreError::from)
}

impl Store {
    pub async fn member(&self, program: &str, member_id: &str) -> StoreResult<Option<MemberRecord>> {
        fetch_member(&self.reader, MemberKey::Id(program, member_id)).await
    }

    pub async fn member_by_serial(&self, serial: &str) -> StoreResult<Option<MemberRecord>> {
        fetch_member(&self.reader, MemberKey::Serial(serial)).await
    }

    pub async fn member_by_public_id(&self, public_id: &str) -> StoreResult<Option<MemberRecord>> {
        fetch_member(&self.reader, MemberKey::PublicId(public_id)).await
    }

    pub(crate) async fn member_in(
        tx: &mut Transaction<'static, Any>,
        program: &str,
        member_id: &str,
    ) -> StoreResult<Option<MemberRecord>> {
        fetch_member(&mut **tx, MemberKey::Id(program, member_id)).await
    }

    /// Changes one member through the admin API in one transaction: reads it (locked on PostgreSQL),
    /// lets `decide` plan the change from it and the time, writes the plan with the same writer as the
    /// ledger, and answers the member as it now stands (None if it does not exist) with what `decide` said.
    /// A transaction that loses a race with another instance (both creating the member) is decided again.
    pub async fn apply_member_change<T>(
        &self,
        program: &str,
        member_id: &MemberId,
        decide: impl Fn(Option<&MemberRecord>, i64) -> (Plan, T),
    ) -> StoreResult<(Option<MemberRecord>, T)> {
        super::retry_conflicts(|| self.try_member_change(program, member_id, &decide)).await
    }

    async fn try_member_change<T>(
        &self,
        program: &str,
        member_id: &MemberId,
        decide: &impl Fn(Option<&MemberRecord>, i64) -> (Plan, T),
    ) -> StoreResult<(Option<MemberRecord>, T)> {
        let now = crate::time_fmt::now_unix();
        let mut tx = self.writer.begin().await?;
        let member_id = member_id.as_str();
        let mut existing = read_members(&mut tx, self.sqlite, program, &BTreeSet::from([member_id])).await?;
        let (plan, decision) = decide(existing.remove(member_id).as_ref(), now);
        let written = write_plan(&mut tx, self.sqlite, self.google_outbox_enabled(), &plan).await?;
        let record = Self::member_in(&mut tx, program, member_id).await?;
        tx.commit().await?;
        if plan.touches_passes() {
            self.changed(written);
        }
        Ok((record, decision))
    }
}
