//! The decisions behind the ledger webhook and the admin API's upsert and retire, as pure code: data in,
//! a [`Plan`] out. No database, clock or randomness of its own (the caller passes `now` and an
//! [`IdSource`]), so every rule is testable from a table. The store reads a [`Snapshot`] inside its
//! transaction, hands it to one of these functions and writes the plan it gets back.

use std::collections::{HashMap, HashSet};

use crate::domain::{EventId, MemberId};
use crate::ids::IdSource;
use crate::model::{EventStatus, LedgerEvent, MemberChange, MemberRecord, UpsertOutcome};

/// What the store read inside the transaction of a ledger batch.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Unix seconds, once for the whole batch.
    pub now: i64,
    /// The event ids this transaction claimed; any other id of the batch was seen before.
    pub fresh_event_ids: HashSet<String>,
    /// The existing members the fresh events name, by member id.
    pub members: HashMap<String, MemberRecord>,
}

/// What one transaction writes. Each record is the member's whole new state, except `update_tag`: the
/// writer assigns tags from one block reserved from the counter, so records here keep the previous tag
/// (0 when new).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Per ledger event, in request order (empty for the admin API).
    pub statuses: Vec<EventStatus>,
    /// New members with their new passes. A new pass gets a tag but no push: no device holds it yet.
    pub created: Vec<MemberRecord>,
    /// Existing members whose row changes.
    pub updated: Vec<MemberRecord>,
    /// Passes whose content changed: each gets a new tag, its Last-Modified and a push to its devices.
    pub changed_passes: Vec<PassChange>,
    /// Ledger events whose claimed row must say something other than `applied`.
    pub event_statuses_to_record: Vec<(EventId, EventStatus)>,
}

/// The new state of a pass whose content changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassChange {
    pub serial_number: String,
    pub voided: bool,
    /// Last-Modified, from [`next_modified_at`].
    pub modified_at: i64,
}

impl Plan {
    /// Whether a pass is created or changed: caches go stale and the push worker should look.
    pub fn touches_passes(&self) -> bool {
        !self.created.is_empty() || !self.changed_passes.is_empty()
    }

    /// Plans an existing member's move from `before` to `after`: its row if anything changed, and its pass
    /// if anything the pass shows changed.
    fn change_member(&mut self, before: &MemberRecord, mut after: MemberRecord, now: i64) {
        if after == *before {
            return;
        }
        after.updated_at = now;
        if shows_change(before, &after) {
            after.modified_at = next_modified_at(before.modified_at, now);
            self.changed_passes.push(PassChange {
                serial_number: after.serial_number.clone(),
                voided: after.voided,
                modified_at: after.modified_at,
            });
        }
        self.updated.push(after);
    }
}

/// Whether the pass would look different (the one rule for both the ledger and the admin API).
pub fn shows_change(before: &MemberRecord, after: &MemberRecord) -> bool {
    before.points != after.points
        || before.tier != after.tier
        || before.name != after.name
        || before.locale != after.locale
        || before.attributes != after.attributes
        || before.retired != after.retired
        || before.voided != after.voided
}

/// A changed pass's Last-Modified: now, but at least a second after the previous one. HTTP dates have
/// one-second resolution and a device asking "changed since" must never miss a change.
pub fn next_modified_at(previous: i64, now: i64) -> i64 {
    now.max(previous + 1)
}

/// A new member and its new pass. Its serial number and authentication token never change afterwards.
fn new_member(
    (program, member_id): (&str, &MemberId),
    change: &MemberChange,
    (pass_type_id, team_id): (&str, &str),
    ledger_sequence: Option<i64>,
    now: i64,
    ids: &mut impl IdSource,
) -> MemberRecord {
    MemberRecord {
        program: program.to_string(),
        member_id: member_id.as_str().to_owned(),
        public_id: ids.public_id(),
        name: change.name.as_ref().map(|n| n.as_str().to_owned()),
        tier: change.tier.as_str().to_owned(),
        points: change.points.get(),
        locale: change.locale.as_ref().map(|l| l.as_str().to_owned()),
        attributes: change.attributes.as_str().to_owned(),
        retired: false,
        ledger_sequence,
        created_at: now,
        updated_at: now,
        serial_number: ids.serial(),
        authentication_token: ids.auth_token(),
        pass_type_id: pass_type_id.to_string(),
        team_id: team_id.to_string(),
        voided: false,
        update_tag: 0,
        modified_at: now,
        latest_offer: None,
    }
}

/// Applies one fresh event to a member's state as the batch has left it so far.
fn apply_event(member: &mut MemberRecord, event: &LedgerEvent) -> EventStatus {
    if member.retired {
        return EventStatus::Retired;
    }
    if member.ledger_sequence.is_some_and(|last| event.sequence.get() <= last) {
        return EventStatus::Stale;
    }
    member.points = event.points.get();
    if member.tier != event.tier.as_str() {
        member.tier = event.tier.as_str().to_owned();
    }
    if let Some(name) = &event.name {
        member.name = Some(name.as_str().to_owned());
    }
    member.ledger_sequence = Some(event.sequence.get());
    EventStatus::Applied
}

/// Decides a ledger batch in request order. A repeated or already-seen id is `duplicate`; an unknown
/// member is created by its event; a retired member is left alone (`retired`); a sequence at or below the
/// member's last is `stale`; otherwise the event applies. A pass changes only if, at the end of the batch,
/// it shows something different from before it.
pub fn decide_ledger_batch(
    program: &str,
    events: &[LedgerEvent],
    snapshot: &Snapshot,
    identity: (&str, &str),
    ids: &mut impl IdSource,
) -> Plan {
    let mut plan = Plan { statuses: Vec::with_capacity(events.len()), ..Plan::default() };
    // Each member the batch touches, as the batch leaves it, with its state before (None: created here).
    let mut members: HashMap<&str, (Option<&MemberRecord>, MemberRecord)> = HashMap::new();
    // First-touch order, so the plan (and the tags) follow the request.
    let mut order: Vec<&str> = Vec::new();
    let mut claimed: HashSet<&str> = HashSet::new();
    for event in events {
        let fresh = snapshot.fresh_event_ids.contains(event.id.as_str()) && claimed.insert(event.id.as_str());
        let member_id = event.member_id.as_str();
        let status = if !fresh {
            EventStatus::Duplicate
        } else if let Some((_, member)) = members.get_mut(member_id) {
            apply_event(member, event)
        } else {
            order.push(member_id);
            match snapshot.members.get(member_id) {
                Some(existing) => {
                    let mut member = existing.clone();
                    let status = apply_event(&mut member, event);
                    members.insert(member_id, (Some(existing), member));
                    status
                }
                None => {
                    let change = MemberChange {
                        name: event.name.clone(),
                        tier: event.tier.clone(),
                        points: event.points,
                        locale: None,
                        attributes: Default::default(),
                    };
                    let key = (program, &event.member_id);
                    let sequence = Some(event.sequence.get());
                    let member = new_member(key, &change, identity, sequence, snapshot.now, ids);
                    members.insert(member_id, (None, member));
                    EventStatus::Applied
                }
            }
        };
        if matches!(status, EventStatus::Stale | EventStatus::Retired) {
            plan.event_statuses_to_record.push((event.id.clone(), status));
        }
        plan.statuses.push(status);
    }
    for member_id in order {
        match members.remove(member_id) {
            Some((None, created)) => plan.created.push(created),
            Some((Some(before), after)) => plan.change_member(before, after, snapshot.now),
            None => {}
        }
    }
    plan
}

/// Decides an admin PUT: create the member, or replace its fields and reinstate it if retired. A PUT that
/// changes nothing the pass shows leaves the member and its pass alone.
pub fn decide_upsert(
    program: &str,
    member_id: &MemberId,
    change: &MemberChange,
    existing: Option<&MemberRecord>,
    identity: (&str, &str),
    now: i64,
    ids: &mut impl IdSource,
) -> (Plan, UpsertOutcome) {
    let mut plan = Plan::default();
    let Some(existing) = existing else {
        plan.created.push(new_member((program, member_id), change, identity, None, now, ids));
        return (plan, UpsertOutcome::Created);
    };
    let after = MemberRecord {
        name: change.name.as_ref().map(|n| n.as_str().to_owned()),
        tier: change.tier.as_str().to_owned(),
        points: change.points.get(),
        locale: change.locale.as_ref().map(|l| l.as_str().to_owned()),
        attributes: change.attributes.as_str().to_owned(),
        retired: false,
        voided: false,
        ..existing.clone()
    };
    if !shows_change(existing, &after) {
        return (plan, UpsertOutcome::Unchanged);
    }
    plan.change_member(existing, after, now);
    (plan, UpsertOutcome::Updated)
}

/// Decides an admin DELETE: retire the member and void its pass. Retiring a retired member changes nothing.
pub fn decide_retire(existing: &MemberRecord, now: i64) -> Plan {
    let mut plan = Plan::default();
    if !existing.retired {
        plan.change_member(existing, MemberRecord { retired: true, voided: true, ..existing.clone() }, now);
    }
    plan
}

pub mod offers;

#[cfg(test)]
mod tests;
