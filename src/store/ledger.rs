//! Ledger events: applied at most once (by id) and in order per member (by sequence), in one transaction
//! with the pass change and its push jobs.

use std::collections::{BTreeSet, HashSet};

use sqlx::{Any, Row, Transaction};

use super::members::read_members;
use super::write::write_plan;
use super::{LedgerEvent, Params, Store, StoreResult};
use crate::plan::{Plan, Snapshot};

/// How long event ids are remembered (the contract says at least 30 days).
pub const EVENT_MEMORY_SECS: i64 = 35 * 24 * 3600;

impl Store {
    /// Applies a batch in one transaction: either every event's outcome commits (with the pass changes and
    /// push jobs) or none does. The ids are claimed with one insert (a conflict means `duplicate`; on
    /// PostgreSQL a concurrent transaction waits on the conflicting row), the members they name are read at
    /// once (locked on PostgreSQL), `decide` turns that snapshot into a plan, and the plan is written with
    /// multi-row statements: about ten statements whatever the batch's size. Answers the plan written.
    pub async fn apply_ledger_batch(
        &self,
        program: &str,
        events: &[LedgerEvent],
        decide: impl Fn(&Snapshot) -> Plan,
    ) -> StoreResult<Plan> {
        if events.is_empty() {
            return Ok(Plan::default());
        }
        // A batch that loses a race with another instance's (both creating one member, or a deadlock
        // between their locks) rolled back whole; decided again, it sees the winner's commit.
        super::retry_conflicts(|| self.try_ledger_batch(program, events, &decide)).await
    }

    async fn try_ledger_batch(
        &self,
        program: &str,
        events: &[LedgerEvent],
        decide: &impl Fn(&Snapshot) -> Plan,
    ) -> StoreResult<Plan> {
        let now = crate::time_fmt::now_unix();
        let mut tx = self.writer.begin().await?;
        let fresh_event_ids = claim_event_ids(&mut tx, self.sqlite, events, now).await?;
        let named: BTreeSet<&str> =
            events.iter().filter(|e| fresh_event_ids.contains(e.id.as_str())).map(|e| e.member_id.as_str()).collect();
        let members = read_members(&mut tx, self.sqlite, program, &named).await?;
        let plan = decide(&Snapshot { now, fresh_event_ids, members });
        let written = write_plan(&mut tx, self.sqlite, self.google_outbox_enabled(), &plan).await?;
        tx.commit().await?;
        if plan.touches_passes() {
            self.changed(written);
        }
        Ok(plan)
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

/// Records every event id as `applied` unless already known, and answers the ids inserted now (the fresh
/// ones). The same id twice in a batch is inserted once.
async fn claim_event_ids(
    tx: &mut Transaction<'static, Any>,
    sqlite: bool,
    events: &[LedgerEvent],
    now: i64,
) -> StoreResult<HashSet<String>> {
    let sql = format!(
        "INSERT INTO ledger_events (event_id, member_id, sequence, status, received_at) VALUES {} \
         ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
        Params::new(sqlite).rows(events.len(), &["{}", "{}", "CAST({} AS BIGINT)", "'applied'", "CAST({} AS BIGINT)"])
    );
    // Inserted in id order, so two batches sharing ids wait on each other instead of deadlocking.
    let mut sorted: Vec<&LedgerEvent> = events.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for e in sorted {
        query =
            query.bind(e.id.as_str().to_owned()).bind(e.member_id.as_str().to_owned()).bind(e.sequence.get()).bind(now);
    }
    let rows = query.fetch_all(&mut **tx).await?;
    Ok(rows.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<_, _>>()?)
}
