//! A scan's values: the barcode's text and where the scan happened.

use serde_json::Value;
use utoipa::PartialSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

use super::{Context, FromJson, Invalid, NOT_BLANK_NO_CONTROL, has_control, text_schema, text_value};

/// Longest barcode text read: a member id (64) with room for a signature; anything longer is not ours.
pub const MAX_BARCODE: usize = 256;
pub const MAX_LOCATION: usize = 100;

/// The text a scanner read, trimmed: not blank, at most 256 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Barcode(String);

impl std::str::FromStr for Barcode {
    type Err = Invalid;

    fn from_str(text: &str) -> Result<Barcode, Invalid> {
        if text.trim().is_empty() {
            return Err(Invalid::new("is empty; send the text the scanner read"));
        }
        if text.chars().count() > MAX_BARCODE {
            return Err(Invalid::new(format!("is longer than {MAX_BARCODE} characters; not a card of this program")));
        }
        if has_control(text) {
            return Err(Invalid::new("holds control characters; not a card of this program"));
        }
        Ok(Barcode(text.trim().to_owned()))
    }
}

text_value!(Barcode);

impl FromJson for Barcode {
    fn from_json(value: &Value, _: &Context<'_>) -> Result<Self, Invalid> {
        value.as_str().ok_or_else(|| Invalid::new("must be a string"))?.parse()
    }
}

impl PartialSchema for Barcode {
    fn schema() -> RefOr<Schema> {
        let description = "The raw text of the barcode (a member id, as the cards carry it)";
        text_schema(description, (1, MAX_BARCODE), NOT_BLANK_NO_CONTROL, "M-1001")
    }
}

/// Where a scan happened (a shop, a counter), trimmed: 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location(String);

fn too_long() -> Invalid {
    Invalid::new(format!("must be text of at most {MAX_LOCATION} characters"))
}

impl Location {
    /// Reads a location; blank (a form's empty field) is none.
    pub fn parse_optional(text: &str) -> Result<Option<Location>, Invalid> {
        if text.chars().count() > MAX_LOCATION || has_control(text) {
            return Err(too_long());
        }
        let trimmed = text.trim();
        Ok((!trimmed.is_empty()).then(|| Location(trimmed.to_owned())))
    }
}

text_value!(Location);

impl FromJson for Location {
    fn from_json(value: &Value, _: &Context<'_>) -> Result<Self, Invalid> {
        Location::parse_optional(value.as_str().ok_or_else(too_long)?)?.ok_or_else(|| Invalid::new("must not be blank"))
    }

    fn from_json_optional(value: &Value, _: &Context<'_>) -> Result<Option<Self>, Invalid> {
        Location::parse_optional(value.as_str().ok_or_else(too_long)?)
    }
}

impl PartialSchema for Location {
    fn schema() -> RefOr<Schema> {
        let description = "Where the scan happened, e.g. a shop or counter name; blank is none";
        text_schema(description, (0, MAX_LOCATION), super::NO_CONTROL, "Siam Paragon, counter 2")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn barcodes_are_trimmed_bounded_text() {
        assert_eq!(" M-1 ".parse::<Barcode>().unwrap().as_str(), "M-1");
        assert!("x".repeat(MAX_BARCODE).parse::<Barcode>().is_ok());
        for (bad, reason) in [
            ("", "is empty; send the text the scanner read"),
            ("   ", "is empty; send the text the scanner read"),
            (&"x".repeat(MAX_BARCODE + 1), "is longer than 256 characters; not a card of this program"),
            ("M-1\u{0}", "holds control characters; not a card of this program"),
        ] {
            assert_eq!(bad.parse::<Barcode>().unwrap_err().to_string(), reason, "{bad:?}");
        }
    }

    #[test]
    fn locations_are_short_text_and_blank_is_none() {
        let context = Context::without_tiers();
        let read = |value: Value| Option::<Location>::from_json(&value, &context).map_err(|e| e.to_string());
        assert_eq!(read(json!(" Counter 2 ")).unwrap().unwrap().as_str(), "Counter 2");
        assert_eq!(read(json!("   ")), Ok(None));
        assert!(read(json!("l".repeat(MAX_LOCATION))).is_ok());
        assert_eq!(Location::from_json(&json!(" "), &context).unwrap_err().to_string(), "must not be blank");
        for bad in [json!("l".repeat(MAX_LOCATION + 1)), json!(" ".repeat(MAX_LOCATION + 1)), json!(7), json!("a\nb")] {
            assert_eq!(read(bad.clone()).unwrap_err(), "must be text of at most 100 characters", "{bad}");
        }
    }
}
