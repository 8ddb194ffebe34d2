//! Plain data shared by the decisions (`plan`), the store and the handlers. No behaviour beyond naming.

/// A member joined with its Apple pass, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub program: String,
    pub member_id: String,
    pub public_id: String,
    pub name: Option<String>,
    pub tier: String,
    pub points: i64,
    pub locale: Option<String>,
    /// A JSON object, as text.
    pub attributes: String,
    pub retired: bool,
    pub ledger_sequence: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub serial_number: String,
    pub authentication_token: String,
    pub pass_type_id: String,
    pub team_id: String,
    pub voided: bool,
    pub update_tag: i64,
    /// Unix seconds; the pass's Last-Modified.
    pub modified_at: i64,
}

/// What the admin API (or a ledger event) sets on a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChange {
    pub name: Option<String>,
    pub tier: String,
    pub points: i64,
    pub locale: Option<String>,
    /// A JSON object, as text.
    pub attributes: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    Created,
    Updated,
    Unchanged,
}

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

/// What became of one ledger event.
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

/// What tessera knows of a member's object (the `google_objects` row; all defaults when none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectState {
    pub inserted: bool,
    /// The pass update tag of the state Google last accepted (0: none).
    pub synced_tag: i64,
    pub synced_points: Option<i64>,
    pub synced_tier: Option<String>,
    /// Unix seconds of notifications asked for, newest last.
    pub notified_at: Vec<i64>,
    pub saved: bool,
}
