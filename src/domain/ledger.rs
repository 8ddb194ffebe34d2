//! A ledger event's own values: its id and its sequence.

use serde_json::Value;
use utoipa::PartialSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use super::{Context, FromJson, Invalid, NO_CONTROL, has_control, text_schema, text_value};

pub const MAX_EVENT_ID: usize = 128;

/// An event's id: 1 to 128 characters without control characters, unique across the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(String);

impl std::str::FromStr for EventId {
    type Err = Invalid;

    fn from_str(id: &str) -> Result<EventId, Invalid> {
        if id.is_empty() || id.chars().count() > MAX_EVENT_ID || has_control(id) {
            return Err(Invalid::new("must be 1 to 128 characters without control characters"));
        }
        Ok(EventId(id.to_owned()))
    }
}

text_value!(EventId);

impl FromJson for EventId {
    fn from_json(value: &Value, _: &Context<'_>) -> Result<Self, Invalid> {
        value.as_str().ok_or_else(|| Invalid::new("is required and must be a string"))?.parse()
    }

    fn from_absent() -> Result<Self, Invalid> {
        Err(Invalid::new("is required and must be a string"))
    }
}

impl PartialSchema for EventId {
    fn schema() -> RefOr<Schema> {
        let description = "Unique across the deployment and remembered for at least 30 days; a seen id is `duplicate`";
        text_schema(description, (1, MAX_EVENT_ID), NO_CONTROL, "pos-7781-0001")
    }
}

/// An event's place in its member's order: a non-negative whole number, increasing per member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sequence(i64);

impl Sequence {
    pub fn new(sequence: i64) -> Result<Sequence, Invalid> {
        if sequence >= 0 { Ok(Sequence(sequence)) } else { Err(not_a_sequence()) }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

fn not_a_sequence() -> Invalid {
    Invalid::new("must be a non-negative whole number")
}

impl FromJson for Sequence {
    fn from_json(value: &Value, _: &Context<'_>) -> Result<Self, Invalid> {
        value.as_i64().ok_or_else(not_a_sequence).and_then(Sequence::new)
    }
}

impl PartialSchema for Sequence {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64)))
            .description(Some("Increasing per member; an equal or lower one than the member's last is `stale`"))
            .minimum(Some(0))
            .maximum(Some(i64::MAX))
            .examples([42])
            .into()
    }
}

impl utoipa::ToSchema for Sequence {}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read<T: FromJson>(value: Value) -> Result<T, String> {
        T::from_json(&value, &Context::without_tiers()).map_err(|e| e.to_string())
    }

    #[test]
    fn event_ids_are_bounded_text() {
        for good in ["e", "pos-7781-0001", "ก ข", &"x".repeat(128), &"ก".repeat(128)] {
            assert_eq!(good.parse::<EventId>().unwrap().as_str(), good);
        }
        for bad in ["", &"x".repeat(129), "a\tb", "a\u{0}"] {
            assert_eq!(
                bad.parse::<EventId>().unwrap_err().to_string(),
                "must be 1 to 128 characters without control characters"
            );
        }
        assert_eq!(read::<EventId>(json!(12)).unwrap_err(), "is required and must be a string");
        assert_eq!(EventId::from_absent().unwrap_err().to_string(), "is required and must be a string");
    }

    #[test]
    fn sequences_are_non_negative_whole_numbers() {
        for (value, sequence) in [(json!(0), 0), (json!(7), 7), (json!(i64::MAX), i64::MAX)] {
            assert_eq!(read::<Sequence>(value).map(Sequence::get), Ok(sequence));
        }
        for bad in [json!(-1), json!(1.5), json!("3"), json!(u64::MAX), json!(null)] {
            assert_eq!(read::<Sequence>(bad.clone()).unwrap_err(), "must be a non-negative whole number", "{bad}");
        }
    }
}
