//! A member's values (SPEC.md "Members"): id, name, tier, points, locale and attributes.

use serde_json::Value;
use unicode_normalization::UnicodeNormalization;
use utoipa::PartialSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use super::{Context, FromJson, Invalid, NOT_BLANK_NO_CONTROL, from_json_string, has_control, text_schema, text_value};

pub const MAX_MEMBER_ID: usize = 64;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_POINTS: i64 = 1_000_000_000_000;
pub const MAX_ATTRIBUTES_BYTES: usize = 4096;
const MAX_LOCALE: usize = 35;

/// A member id: `[A-Za-z0-9._-]{1,64}`, not `.` or `..`, so it is safe in a URL path and in Google's
/// object ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(String);

impl std::str::FromStr for MemberId {
    type Err = Invalid;

    fn from_str(id: &str) -> Result<MemberId, Invalid> {
        if id.is_empty() || id.len() > MAX_MEMBER_ID {
            return Err(Invalid::new(format!("must be 1 to {MAX_MEMBER_ID} characters, not {}", id.chars().count())));
        }
        if !id.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-')) {
            return Err(Invalid::new("may only hold letters A-Z and a-z, digits, '.', '_' and '-'"));
        }
        if id == "." || id == ".." {
            return Err(Invalid::new("must not be . or .."));
        }
        Ok(MemberId(id.to_owned()))
    }
}

text_value!(MemberId);
from_json_string!(MemberId);

impl PartialSchema for MemberId {
    fn schema() -> RefOr<Schema> {
        let pattern = r"^(?!\.\.?$)[A-Za-z0-9._-]{1,64}$";
        text_schema("Letters, digits, '.', '_' and '-'; not `.` or `..`", (1, MAX_MEMBER_ID), pattern, "M-1001")
    }
}

/// A member's name: NFC text of 1 to 200 characters, not blank, without control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberName(String);

impl std::str::FromStr for MemberName {
    type Err = Invalid;

    /// NFC-normalizes the name, then checks it.
    fn from_str(name: &str) -> Result<MemberName, Invalid> {
        let normalized: String = name.nfc().collect();
        if normalized.trim().is_empty() {
            return Err(Invalid::new("must not be empty"));
        }
        let count = normalized.chars().count();
        if count > MAX_NAME_CHARS {
            return Err(Invalid::new(format!("is {count} characters; at most {MAX_NAME_CHARS} are allowed")));
        }
        if has_control(&normalized) {
            return Err(Invalid::new("must not contain control characters (such as newlines or tabs)"));
        }
        Ok(MemberName(normalized))
    }
}

text_value!(MemberName);
from_json_string!(MemberName);

impl PartialSchema for MemberName {
    fn schema() -> RefOr<Schema> {
        let description =
            "Text, kept in Unicode NFC (the length counts NFC characters); not blank, no control characters";
        text_schema(description, (1, MAX_NAME_CHARS), NOT_BLANK_NO_CONTROL, "สมชาย ใจดี")
    }
}

/// The tiers a program's templates define: what a [`TierName`] is checked against.
pub trait TierCatalog {
    fn defines(&self, tier: &str) -> bool;
    /// Every tier, for the message that lists them.
    fn names(&self) -> Vec<&str>;
}

impl TierCatalog for &[&str] {
    fn defines(&self, tier: &str) -> bool {
        self.contains(&tier)
    }

    fn names(&self) -> Vec<&str> {
        self.to_vec()
    }
}

/// A tier the program defines: one of its templates' lowercase names (letters, digits, `-`, `_`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TierName(String);

impl TierName {
    pub fn parse(name: &str, catalog: &dyn TierCatalog) -> Result<TierName, Invalid> {
        let lowercase = !name.is_empty()
            && name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_'));
        if lowercase && catalog.defines(name) {
            return Ok(TierName(name.to_owned()));
        }
        Err(Invalid::new(format!("`{name}` is not a tier of this program; use one of: {}", catalog.names().join(", "))))
    }
}

text_value!(TierName);

impl FromJson for TierName {
    fn from_json(value: &Value, context: &Context<'_>) -> Result<Self, Invalid> {
        TierName::parse(value.as_str().ok_or_else(|| Invalid::new("must be a string"))?, context.tiers)
    }
}

impl PartialSchema for TierName {
    fn schema() -> RefOr<Schema> {
        let description =
            "One of the tiers the program's templates define (`tiers/<name>/`), e.g. silver, gold, platinum";
        text_schema(description, (1, 64), "^[a-z0-9_-]+$", "gold")
    }
}

/// A balance: a whole number from 0 to 10^12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Points(i64);

impl Points {
    pub fn new(points: i64) -> Result<Points, Invalid> {
        if (0..=MAX_POINTS).contains(&points) { Ok(Points(points)) } else { Err(out_of_range()) }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

fn out_of_range() -> Invalid {
    Invalid::new(format!("must be between 0 and {MAX_POINTS}"))
}

impl FromJson for Points {
    fn from_json(value: &Value, _: &Context<'_>) -> Result<Self, Invalid> {
        match value.as_i64() {
            Some(points) => Points::new(points),
            None if value.is_u64() || value.as_f64().is_some_and(|f| f.abs() > MAX_POINTS as f64) => {
                Err(out_of_range())
            }
            None if value.is_number() => Err(Invalid::new("must be a whole number")),
            None => Err(Invalid::new("must be a number")),
        }
    }
}

impl serde::Serialize for Points {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

impl PartialSchema for Points {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64)))
            .description(Some("A whole number of points, absolute (never a delta)"))
            .minimum(Some(0))
            .maximum(Some(MAX_POINTS))
            .examples([1250])
            .into()
    }
}

impl utoipa::ToSchema for Points {}

/// A language tag such as en, th or vi-VN (`pt_BR` too): a 2- or 3-letter language, then subtags of 2 to
/// 8 letters or digits, at most 35 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Locale(String);

impl std::str::FromStr for Locale {
    type Err = Invalid;

    fn from_str(locale: &str) -> Result<Locale, Invalid> {
        let mut parts = locale.split(['-', '_']);
        let language = parts.next().unwrap_or("");
        let ok = (2..=3).contains(&language.len())
            && language.bytes().all(|c| c.is_ascii_alphabetic())
            && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_alphanumeric()))
            && locale.len() <= MAX_LOCALE;
        if ok {
            Ok(Locale(locale.to_owned()))
        } else {
            Err(Invalid::new(format!("`{locale}` is not a language tag such as en, th or vi-VN")))
        }
    }
}

text_value!(Locale);

impl FromJson for Locale {
    fn from_json(value: &Value, _: &Context<'_>) -> Result<Self, Invalid> {
        value.as_str().ok_or_else(|| Invalid::new("must be a string such as en, th or vi"))?.parse()
    }
}

impl PartialSchema for Locale {
    fn schema() -> RefOr<Schema> {
        let description = "A language tag (en, th, vi, vi-VN); the card's language";
        text_schema(description, (2, MAX_LOCALE), "^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$", "th")
    }
}

/// A small JSON object (at most 4 KiB as JSON text) that templates may show; kept as its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes(String);

impl Attributes {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// No attributes: `{}`.
impl Default for Attributes {
    fn default() -> Self {
        Attributes("{}".to_owned())
    }
}

impl FromJson for Attributes {
    fn from_json(value: &Value, _: &Context<'_>) -> Result<Self, Invalid> {
        if !value.is_object() {
            return Err(Invalid::new("must be a JSON object"));
        }
        let text = value.to_string();
        if text.len() > MAX_ATTRIBUTES_BYTES {
            let message = format!("is {} bytes of JSON; at most {MAX_ATTRIBUTES_BYTES} are allowed", text.len());
            return Err(Invalid::new(message));
        }
        Ok(Attributes(text))
    }
}

impl PartialSchema for Attributes {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("A JSON object that templates may show, at most 4096 bytes as JSON text"))
            .examples([serde_json::json!({"expires": "2027-06-30"})])
            .into()
    }
}

impl utoipa::ToSchema for Attributes {}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TIERS: &[&str] = &["silver", "gold", "platinum"];

    fn read<T: FromJson>(value: Value) -> Result<T, String> {
        T::from_json(&value, &Context { tiers: &TIERS, offers: &TIERS }).map_err(|e| e.to_string())
    }

    #[test]
    fn member_ids_follow_the_contract() {
        for good in ["M-1001", "a.b_c-D9", "x", "...", &"x".repeat(64)] {
            assert_eq!(good.parse::<MemberId>().unwrap().as_str(), good);
        }
        for (bad, reason) in [
            ("", "must be 1 to 64 characters, not 0"),
            (&"x".repeat(65), "must be 1 to 64 characters, not 65"),
            (".", "must not be . or .."),
            ("..", "must not be . or .."),
            ("a/b", "may only hold letters A-Z and a-z, digits, '.', '_' and '-'"),
            ("a b", "may only hold letters A-Z and a-z, digits, '.', '_' and '-'"),
            ("ม", "may only hold letters A-Z and a-z, digits, '.', '_' and '-'"),
        ] {
            assert_eq!(bad.parse::<MemberId>().unwrap_err().to_string(), reason, "{bad:?}");
        }
        assert_eq!(read::<MemberId>(json!(7)).unwrap_err(), "must be a string");
    }

    #[test]
    fn names_are_normalized_and_bounded() {
        // "é" as e + combining acute becomes one NFC character, and counts as one.
        assert_eq!("Cafe\u{301}".parse::<MemberName>().unwrap().as_str(), "Café");
        assert!(format!("{}\u{301}", "e".repeat(MAX_NAME_CHARS)).parse::<MemberName>().is_ok());
        for good in ["สมชาย ใจดี", " A ", &"ก".repeat(200)] {
            assert_eq!(good.parse::<MemberName>().unwrap().as_str(), good);
        }
        for (bad, reason) in [
            ("", "must not be empty"),
            ("   ", "must not be empty"),
            (&"ก".repeat(201), "is 201 characters; at most 200 are allowed"),
            ("a\nb", "must not contain control characters (such as newlines or tabs)"),
            ("a\u{7}b", "must not contain control characters (such as newlines or tabs)"),
            ("a\u{85}b", "must not contain control characters (such as newlines or tabs)"),
        ] {
            assert_eq!(bad.parse::<MemberName>().unwrap_err().to_string(), reason, "{bad:?}");
        }
    }

    #[test]
    fn tiers_are_the_programs() {
        let catalog: &dyn TierCatalog = &TIERS;
        assert_eq!(TierName::parse("gold", catalog).unwrap().as_str(), "gold");
        for bad in ["Gold", "diamond", "", "gold "] {
            let reason = TierName::parse(bad, catalog).unwrap_err().to_string();
            assert_eq!(reason, format!("`{bad}` is not a tier of this program; use one of: silver, gold, platinum"));
        }
        // A catalog that names something outside the syntax still cannot make it a tier.
        let odd: &[&str] = &["Gold"];
        assert!(TierName::parse("Gold", &odd).is_err());
        assert_eq!(read::<TierName>(json!(["gold"])).unwrap_err(), "must be a string");
    }

    #[test]
    fn points_are_whole_and_in_range() {
        for (value, points) in [(json!(0), 0), (json!(1250), 1250), (json!(MAX_POINTS), MAX_POINTS)] {
            assert_eq!(read::<Points>(value).map(Points::get), Ok(points));
        }
        for (value, reason) in [
            (json!(-1), "must be between 0 and 1000000000000"),
            (json!(MAX_POINTS + 1), "must be between 0 and 1000000000000"),
            (json!(u64::MAX), "must be between 0 and 1000000000000"),
            (json!(1e300), "must be between 0 and 1000000000000"),
            (json!(1.5), "must be a whole number"),
            (json!(5.0), "must be a whole number"),
            (json!("12"), "must be a number"),
            (json!(true), "must be a number"),
        ] {
            assert_eq!(read::<Points>(value.clone()).map(Points::get), Err(reason.to_string()), "{value}");
        }
        assert!(Points::new(MAX_POINTS).is_ok() && Points::new(-1).is_err());
    }

    #[test]
    fn locales_are_language_tags() {
        for good in ["en", "th", "vie", "vi-VN", "zh-Hant-TW", "pt_BR", "en-12345678"] {
            assert_eq!(good.parse::<Locale>().unwrap().as_str(), good);
        }
        for bad in ["", "e", "english!", "en-", "12", "en-123456789", "en-a", &format!("en{}", "-abcdefgh".repeat(4))] {
            assert_eq!(
                bad.parse::<Locale>().unwrap_err().to_string(),
                format!("`{bad}` is not a language tag such as en, th or vi-VN")
            );
        }
        assert_eq!(read::<Locale>(json!(1)).unwrap_err(), "must be a string such as en, th or vi");
    }

    #[test]
    fn attributes_are_small_objects() {
        assert_eq!(read::<Attributes>(json!({"a": 1})).unwrap().as_str(), r#"{"a":1}"#);
        assert_eq!(Attributes::default().as_str(), "{}");
        assert_eq!(read::<Attributes>(json!([1])).unwrap_err(), "must be a JSON object");
        // {"a":"…"} is 8 bytes around the text.
        assert!(read::<Attributes>(json!({"a": "x".repeat(MAX_ATTRIBUTES_BYTES - 8)})).is_ok());
        assert_eq!(
            read::<Attributes>(json!({"a": "x".repeat(MAX_ATTRIBUTES_BYTES - 7)})).unwrap_err(),
            "is 4097 bytes of JSON; at most 4096 are allowed"
        );
    }
}
