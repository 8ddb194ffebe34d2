//! Members and their Apple passes.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{MemberChange, MemberRecord, Store, StoreError, StoreResult, UpsertOutcome};
use crate::ids;

pub(crate) const MEMBER_COLUMNS: &str = "m.program, m.member_id, m.public_id, m.name, m.tier, m.points, m.locale, m.attributes, \
     m.retired, m.ledger_sequence, m.created_at, m.updated_at, p.serial_number, p.authentication_token, \
     p.pass_type_id, p.team_id, p.voided, p.update_tag, p.modified_at";

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
    })
}

/// Moves the global pass update tag; the counter row stays locked until commit, so tags follow commit
/// order on every back end.
pub(crate) async fn next_update_tag(tx: &mut Transaction<'static, Any>) -> StoreResult<i64> {
    let row = sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'pass_update_tag' RETURNING value")
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.try_get(0)?)
}

/// Marks a pass changed: a new update tag, a Last-Modified at least one second after the previous one
/// (HTTP dates have one-second resolution, and a device must never miss a change), and a push job for
/// every device registered for it, all in the caller's transaction.
pub(crate) async fn touch_pass(
    tx: &mut Transaction<'static, Any>,
    serial: &str,
    previous_modified: i64,
    now: i64,
) -> StoreResult<()> {
    let tag = next_update_tag(tx).await?;
    sqlx::query("UPDATE apple_passes SET update_tag = $1, modified_at = $2 WHERE serial_number = $3")
        .bind(tag)
        .bind(now.max(previous_modified + 1))
        .bind(serial)
        .execute(&mut **tx)
        .await?;
    super::outbox::enqueue_pushes(tx, false, &[serial]).await
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

    /// Creates or replaces a member (reinstating a retired one). A visible change moves the pass's update
    /// tag in the same transaction; a PUT that changes nothing leaves the pass alone.
    pub async fn upsert_member(
        &self,
        program: &str,
        member_id: &str,
        change: &MemberChange,
        identity: (&str, &str),
    ) -> StoreResult<(MemberRecord, UpsertOutcome)> {
        let now = crate::time_fmt::now_unix();
        let mut tx = self.writer.begin().await?;
        let outcome = match Self::member_in(&mut tx, program, member_id).await? {
            None => {
                insert_member(&mut tx, program, member_id, change, identity, now, None).await?;
                UpsertOutcome::Created
            }
            Some(existing) => {
                let same = existing.name == change.name
                    && existing.tier == change.tier
                    && existing.points == change.points
                    && existing.locale == change.locale
                    && existing.attributes == change.attributes
                    && !existing.retired;
                if same {
                    UpsertOutcome::Unchanged
                } else {
                    sqlx::query(
                        "UPDATE members SET name = $1, tier = $2, points = $3, locale = $4, attributes = $5, retired = 0, \
                         updated_at = $6 WHERE program = $7 AND member_id = $8",
                    )
                    .bind(change.name.clone())
                    .bind(&change.tier)
                    .bind(change.points)
                    .bind(change.locale.clone())
                    .bind(&change.attributes)
                    .bind(now)
                    .bind(program)
                    .bind(member_id)
                    .execute(&mut *tx)
                    .await?;
                    if existing.voided {
                        sqlx::query("UPDATE apple_passes SET voided = 0 WHERE serial_number = $1")
                            .bind(&existing.serial_number)
                            .execute(&mut *tx)
                            .await?;
                    }
                    touch_pass(&mut tx, &existing.serial_number, existing.modified_at, now).await?;
                    UpsertOutcome::Updated
                }
            }
        };
        let record = Self::member_in(&mut tx, program, member_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("member {member_id} missing after upsert")))?;
        tx.commit().await?;
        if outcome != UpsertOutcome::Unchanged {
            self.changed();
        }
        Ok((record, outcome))
    }

    /// Retires a member and voids its pass. Idempotent: retiring a retired member changes nothing.
    pub async fn retire_member(&self, program: &str, member_id: &str) -> StoreResult<Option<MemberRecord>> {
        let now = crate::time_fmt::now_unix();
        let mut tx = self.writer.begin().await?;
        let Some(existing) = Self::member_in(&mut tx, program, member_id).await? else {
            return Ok(None);
        };
        if !existing.retired {
            sqlx::query("UPDATE members SET retired = 1, updated_at = $1 WHERE program = $2 AND member_id = $3")
                .bind(now)
                .bind(program)
                .bind(member_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE apple_passes SET voided = 1 WHERE serial_number = $1")
                .bind(&existing.serial_number)
                .execute(&mut *tx)
                .await?;
            touch_pass(&mut tx, &existing.serial_number, existing.modified_at, now).await?;
        }
        let record = Self::member_in(&mut tx, program, member_id).await?;
        tx.commit().await?;
        if !existing.retired {
            self.changed();
        }
        Ok(record)
    }
}

pub(crate) async fn insert_member(
    tx: &mut Transaction<'static, Any>,
    program: &str,
    member_id: &str,
    change: &MemberChange,
    (pass_type_id, team_id): (&str, &str),
    now: i64,
    ledger_sequence: Option<i64>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO members (program, member_id, public_id, name, tier, points, locale, attributes, retired, created_at, updated_at, ledger_sequence) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $9, $10)",
    )
    .bind(program)
    .bind(member_id)
    .bind(ids::random_token(16))
    .bind(change.name.clone())
    .bind(&change.tier)
    .bind(change.points)
    .bind(change.locale.clone())
    .bind(&change.attributes)
    .bind(now)
    .bind(ledger_sequence)
    .execute(&mut **tx)
    .await?;
    let tag = next_update_tag(tx).await?;
    sqlx::query(
        "INSERT INTO apple_passes (serial_number, program, member_id, pass_type_id, team_id, authentication_token, voided, \
         update_tag, modified_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $8)",
    )
    .bind(ids::random_hex128())
    .bind(program)
    .bind(member_id)
    .bind(pass_type_id)
    .bind(team_id)
    .bind(ids::random_token(32))
    .bind(tag)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
