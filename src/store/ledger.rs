//! Ledger events: applied at most once (by id) and in order per member (by sequence), in one transaction
//! with the pass change and its push jobs.

use std::collections::{BTreeSet, HashMap, HashSet};

use sqlx::Row;

use super::members::{MEMBER_COLUMNS, member_from_row};
use super::outbox::enqueue_pushes;
use super::{EventStatus, LedgerEvent, MemberRecord, Params, Store, StoreResult};
use crate::ids;

/// How long event ids are remembered (the contract says at least 30 days).
pub const EVENT_MEMORY_SECS: i64 = 35 * 24 * 3600;

/// A member as a batch leaves it.
struct Pending {
    record: MemberRecord,
    /// Created by this batch.
    new: bool,
    /// An event was applied (sequence, and maybe points, tier or name, changed).
    applied: bool,
    /// Something the pass shows changed: new tag, Last-Modified and pushes.
    visible: bool,
}

impl Store {
    /// Applies events in request order, all in one transaction: either every event's outcome commits
    /// (with the pass changes and push jobs) or none does. A batch costs about ten statements whatever its
    /// size: ids are claimed with one insert (a conflict means `duplicate`; on PostgreSQL a concurrent
    /// transaction waits on the conflicting row), the members are read at once (locked on PostgreSQL), the
    /// events are decided here in order, and the outcome is written with multi-row statements.
    pub async fn apply_ledger_events(
        &self,
        program: &str,
        events: &[LedgerEvent],
        (pass_type_id, team_id): (&str, &str),
    ) -> StoreResult<Vec<EventStatus>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let now = crate::time_fmt::now_unix();
        let mut tx = self.writer.begin().await?;

        // 1. Claim the ids; only the inserted ones are fresh.
        let sql = format!(
            "INSERT INTO ledger_events (event_id, member_id, sequence, status, received_at) VALUES {} \
             ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            Params::new(self.sqlite)
                .rows(events.len(), &["{}", "{}", "CAST({} AS BIGINT)", "'applied'", "CAST({} AS BIGINT)"])
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for e in events {
            query = query.bind(e.id.clone()).bind(e.member_id.clone()).bind(e.sequence).bind(now);
        }
        let fresh: HashSet<String> =
            query.fetch_all(&mut *tx).await?.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<_, _>>()?;

        // 2. Read every member the fresh events name.
        let wanted: BTreeSet<&str> =
            events.iter().filter(|e| fresh.contains(&e.id)).map(|e| e.member_id.as_str()).collect();
        let mut members: HashMap<String, Pending> = HashMap::new();
        if !wanted.is_empty() {
            let lock = if self.sqlite { "" } else { " FOR UPDATE" };
            let mut p = Params::new(self.sqlite);
            let program_param = p.next();
            let sql = format!(
                "SELECT {MEMBER_COLUMNS} FROM members m JOIN apple_passes p ON p.program = m.program AND p.member_id = m.member_id \
                 WHERE m.program = {program_param} AND m.member_id IN ({}){lock}",
                p.list(wanted.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(program.to_string());
            for id in &wanted {
                query = query.bind(id.to_string());
            }
            for row in query.fetch_all(&mut *tx).await? {
                let record = member_from_row(&row)?;
                members
                    .insert(record.member_id.clone(), Pending { record, new: false, applied: false, visible: false });
            }
        }

        // 3. Decide, in request order.
        let mut statuses = Vec::with_capacity(events.len());
        let mut claimed: HashSet<&str> = HashSet::new();
        let mut created: Vec<String> = Vec::new();
        for e in events {
            if !fresh.contains(&e.id) || !claimed.insert(e.id.as_str()) {
                statuses.push(EventStatus::Duplicate);
                continue;
            }
            let status = match members.get_mut(&e.member_id) {
                None => {
                    created.push(e.member_id.clone());
                    let record = MemberRecord {
                        program: program.to_string(),
                        member_id: e.member_id.clone(),
                        public_id: ids::random_token(16),
                        name: e.name.clone(),
                        tier: e.tier.clone(),
                        points: e.points,
                        locale: None,
                        attributes: "{}".into(),
                        retired: false,
                        ledger_sequence: Some(e.sequence),
                        created_at: now,
                        updated_at: now,
                        serial_number: ids::random_hex128(),
                        authentication_token: ids::random_token(32),
                        pass_type_id: pass_type_id.to_string(),
                        team_id: team_id.to_string(),
                        voided: false,
                        update_tag: 0,
                        modified_at: now,
                    };
                    members.insert(e.member_id.clone(), Pending { record, new: true, applied: true, visible: false });
                    EventStatus::Applied
                }
                Some(m) if m.record.retired => EventStatus::Retired,
                Some(m) if m.record.ledger_sequence.is_some_and(|last| e.sequence <= last) => EventStatus::Stale,
                Some(m) => {
                    let r = &mut m.record;
                    let name = e.name.clone().or(r.name.clone());
                    m.visible |= r.points != e.points || r.tier != e.tier || r.name != name;
                    (r.points, r.tier, r.name, r.ledger_sequence) = (e.points, e.tier.clone(), name, Some(e.sequence));
                    m.applied = true;
                    EventStatus::Applied
                }
            };
            statuses.push(status);
        }

        // 4. Write the outcome.
        let touched: Vec<&Pending> = members.values().filter(|m| !m.new && m.visible).collect();
        let tag_count = (created.len() + touched.len()) as i64;
        let mut next_tag = if tag_count > 0 {
            let row =
                sqlx::query("UPDATE counters SET value = value + $1 WHERE name = 'pass_update_tag' RETURNING value")
                    .bind(tag_count)
                    .fetch_one(&mut *tx)
                    .await?;
            row.try_get::<i64, _>(0)? - tag_count + 1
        } else {
            0
        };
        if !created.is_empty() {
            let new: Vec<&MemberRecord> = created.iter().map(|id| &members[id].record).collect();
            let mut p = Params::new(self.sqlite);
            let rows =
                p.rows(new.len(), &["{}", "{}", "CAST({} AS TEXT)", "{}", "CAST({} AS BIGINT)", "CAST({} AS BIGINT)"]);
            let (prog, created_at, updated_at) = (p.next(), p.next(), p.next());
            let sql = format!(
                "WITH v(member_id, public_id, name, tier, points, seq) AS (VALUES {rows}) \
                 INSERT INTO members (program, member_id, public_id, name, tier, points, locale, attributes, retired, \
                 created_at, updated_at, ledger_sequence) SELECT {prog}, v.member_id, v.public_id, v.name, v.tier, v.points, \
                 NULL, '{{}}', 0, CAST({created_at} AS BIGINT), CAST({updated_at} AS BIGINT), v.seq FROM v"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in &new {
                query = query
                    .bind(r.member_id.clone())
                    .bind(r.public_id.clone())
                    .bind(r.name.clone())
                    .bind(r.tier.clone())
                    .bind(r.points)
                    .bind(r.ledger_sequence);
            }
            query.bind(program.to_string()).bind(now).bind(now).execute(&mut *tx).await?;

            let mut p = Params::new(self.sqlite);
            let rows = p.rows(new.len(), &["{}", "{}", "{}", "CAST({} AS BIGINT)"]);
            let (prog, pt, team, modified, created_at) = (p.next(), p.next(), p.next(), p.next(), p.next());
            let sql = format!(
                "WITH v(serial, member_id, token, tag) AS (VALUES {rows}) \
                 INSERT INTO apple_passes (serial_number, program, member_id, pass_type_id, team_id, authentication_token, \
                 voided, update_tag, modified_at, created_at) SELECT v.serial, {prog}, v.member_id, {pt}, {team}, v.token, 0, \
                 v.tag, CAST({modified} AS BIGINT), CAST({created_at} AS BIGINT) FROM v"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in &new {
                query = query
                    .bind(r.serial_number.clone())
                    .bind(r.member_id.clone())
                    .bind(r.authentication_token.clone())
                    .bind(next_tag);
                next_tag += 1;
            }
            query
                .bind(program.to_string())
                .bind(pass_type_id.to_string())
                .bind(team_id.to_string())
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        let updated: Vec<&MemberRecord> = members.values().filter(|m| !m.new && m.applied).map(|m| &m.record).collect();
        if !updated.is_empty() {
            let mut p = Params::new(self.sqlite);
            let rows =
                p.rows(updated.len(), &["{}", "CAST({} AS BIGINT)", "{}", "CAST({} AS TEXT)", "CAST({} AS BIGINT)"]);
            let (updated_at, prog) = (p.next(), p.next());
            let sql = format!(
                "WITH v(member_id, points, tier, name, seq) AS (VALUES {rows}) \
                 UPDATE members SET points = v.points, tier = v.tier, name = v.name, ledger_sequence = v.seq, \
                 updated_at = CAST({updated_at} AS BIGINT) FROM v WHERE members.program = {prog} AND members.member_id = v.member_id"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in &updated {
                query = query
                    .bind(r.member_id.clone())
                    .bind(r.points)
                    .bind(r.tier.clone())
                    .bind(r.name.clone())
                    .bind(r.ledger_sequence);
            }
            query.bind(now).bind(program.to_string()).execute(&mut *tx).await?;
        }
        if !touched.is_empty() {
            // A new tag per pass, and Last-Modified at least a second past the previous one.
            let sql = format!(
                "WITH v(serial, tag, modified) AS (VALUES {}) \
                 UPDATE apple_passes SET update_tag = v.tag, modified_at = v.modified FROM v WHERE apple_passes.serial_number = v.serial",
                Params::new(self.sqlite).rows(touched.len(), &["{}", "CAST({} AS BIGINT)", "CAST({} AS BIGINT)"])
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for m in &touched {
                query =
                    query.bind(m.record.serial_number.clone()).bind(next_tag).bind(now.max(m.record.modified_at + 1));
                next_tag += 1;
            }
            query.execute(&mut *tx).await?;
            let serials: Vec<&str> = touched.iter().map(|m| m.record.serial_number.as_str()).collect();
            enqueue_pushes(&mut tx, self.sqlite, &serials).await?;
        }
        for status in [EventStatus::Stale, EventStatus::Retired] {
            let ids: Vec<&str> =
                events.iter().zip(&statuses).filter(|(_, s)| **s == status).map(|(e, _)| e.id.as_str()).collect();
            if ids.is_empty() {
                continue;
            }
            let mut p = Params::new(self.sqlite);
            let status_param = p.next();
            let sql =
                format!("UPDATE ledger_events SET status = {status_param} WHERE event_id IN ({})", p.list(ids.len()));
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(status.as_str());
            for id in ids {
                query = query.bind(id.to_string());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        if !touched.is_empty() {
            self.changed();
        }
        Ok(statuses)
    }

    /// Forgets event ids older than the memory window; answers how many.
    pub async fn prune_ledger_events(&self) -> StoreResult<u64> {
        let cutoff = crate::time_fmt::now_unix() - EVENT_MEMORY_SECS;
        Ok(sqlx::query("DELETE FROM ledger_events WHERE received_at < $1")
            .bind(cutoff)
            .execute(&self.writer)
            .await?
            .rows_affected())
    }
}
