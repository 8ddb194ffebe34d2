//! Ledger events: applied at most once (by id) and in order per member (by sequence), in one transaction
//! with the pass change and its push jobs.

use super::members::{insert_member, touch_pass};
use super::{MemberChange, Store, StoreResult};

/// A validated ledger event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEvent {
    pub id: String,
    pub member_id: String,
    pub sequence: i64,
    pub points: i64,
    pub tier: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    Applied,
    Duplicate,
    Stale,
    Retired,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Applied => "applied",
            EventStatus::Duplicate => "duplicate",
            EventStatus::Stale => "stale",
            EventStatus::Retired => "retired",
        }
    }
}

/// How long event ids are remembered (the contract says at least 30 days).
pub const EVENT_MEMORY_SECS: i64 = 35 * 24 * 3600;

impl Store {
    /// Applies events in request order, all in one transaction: either every event's outcome commits
    /// (with the pass changes and push jobs) or none does.
    pub async fn apply_ledger_events(
        &self,
        program: &str,
        events: &[LedgerEvent],
        identity: (&str, &str),
    ) -> StoreResult<Vec<EventStatus>> {
        let now = crate::time_fmt::now_unix();
        let mut tx = self.writer.begin().await?;
        let mut statuses = Vec::with_capacity(events.len());
        let mut changed = false;
        for event in events {
            let fresh = sqlx::query(
                "INSERT INTO ledger_events (event_id, member_id, sequence, status, received_at) VALUES ($1, $2, $3, 'applied', $4) \
                 ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(&event.id)
            .bind(&event.member_id)
            .bind(event.sequence)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !fresh {
                statuses.push(EventStatus::Duplicate);
                continue;
            }
            let status = match Self::member_in(&mut tx, program, &event.member_id).await? {
                None => {
                    let change = MemberChange {
                        name: event.name.clone(),
                        tier: event.tier.clone(),
                        points: event.points,
                        locale: None,
                        attributes: "{}".into(),
                    };
                    insert_member(&mut tx, program, &event.member_id, &change, identity, now, Some(event.sequence))
                        .await?;
                    EventStatus::Applied
                }
                Some(m) if m.retired => EventStatus::Retired,
                Some(m) if m.ledger_sequence.is_some_and(|last| event.sequence <= last) => EventStatus::Stale,
                Some(m) => {
                    let name = event.name.clone().or(m.name.clone());
                    sqlx::query(
                        "UPDATE members SET points = $1, tier = $2, name = $3, ledger_sequence = $4, updated_at = $5 \
                         WHERE program = $6 AND member_id = $7",
                    )
                    .bind(event.points)
                    .bind(&event.tier)
                    .bind(name.clone())
                    .bind(event.sequence)
                    .bind(now)
                    .bind(program)
                    .bind(&event.member_id)
                    .execute(&mut *tx)
                    .await?;
                    if m.points != event.points || m.tier != event.tier || m.name != name {
                        touch_pass(&mut tx, &m.serial_number, m.modified_at, now).await?;
                        changed = true;
                    }
                    EventStatus::Applied
                }
            };
            if status != EventStatus::Applied {
                sqlx::query("UPDATE ledger_events SET status = $1 WHERE event_id = $2")
                    .bind(status.as_str())
                    .bind(&event.id)
                    .execute(&mut *tx)
                    .await?;
            }
            statuses.push(status);
        }
        tx.commit().await?;
        if changed {
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
