//! Validation of member input shared by the admin API and the ledger webhook: IDs, names, tiers, points,
//! locales. Pure: each answers the normalized value or a plain-words reason.

use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

use crate::templates::Program;

pub const MAX_POINTS: i64 = 1_000_000_000_000;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_ATTRIBUTES_BYTES: usize = 4096;

/// `[A-Za-z0-9._-]{1,64}`, not `.` or `..`.
pub fn validate_member_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 {
        return Err(format!("must be 1 to 64 characters, not {}", id.chars().count()));
    }
    if !id.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-')) {
        return Err("may only hold letters A-Z and a-z, digits, '.', '_' and '-'".into());
    }
    if id == "." || id == ".." {
        return Err("must not be . or ..".into());
    }
    Ok(())
}

/// NFC-normalizes a name and checks it: 1 to 200 characters, no control characters.
pub fn validate_name(name: &str) -> Result<String, String> {
    let normalized: String = name.nfc().collect();
    if normalized.trim().is_empty() {
        return Err("must not be empty".into());
    }
    let count = normalized.chars().count();
    if count > MAX_NAME_CHARS {
        return Err(format!("is {count} characters; at most {MAX_NAME_CHARS} are allowed"));
    }
    if normalized.chars().any(char::is_control) {
        return Err("must not contain control characters (such as newlines or tabs)".into());
    }
    Ok(normalized)
}

pub fn validate_tier(program: &Program, tier: &str) -> Result<(), String> {
    if program.tier(tier).is_some() {
        Ok(())
    } else {
        Err(format!(
            "`{tier}` is not a tier of this program; use one of: {}",
            program.tier_names().collect::<Vec<_>>().join(", ")
        ))
    }
}

pub fn validate_points(value: &Value) -> Result<i64, String> {
    match value.as_i64() {
        Some(p) if (0..=MAX_POINTS).contains(&p) => Ok(p),
        Some(_) => Err(format!("must be between 0 and {MAX_POINTS}")),
        None if value.is_u64() || value.as_f64().is_some_and(|f| f.abs() > MAX_POINTS as f64) => {
            Err(format!("must be between 0 and {MAX_POINTS}"))
        }
        None if value.is_number() => Err("must be a whole number".into()),
        None => Err("must be a number".into()),
    }
}

pub fn validate_locale(locale: &str) -> Result<(), String> {
    let mut parts = locale.split(['-', '_']);
    let language = parts.next().unwrap_or("");
    let ok = (2..=3).contains(&language.len())
        && language.bytes().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_alphanumeric()))
        && locale.len() <= 35;
    if ok { Ok(()) } else { Err(format!("`{locale}` is not a language tag such as en, th or vi-VN")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn member_ids_follow_the_contract() {
        assert!(validate_member_id("M-1001").is_ok());
        assert!(validate_member_id("a.b_c-D9").is_ok());
        assert!(validate_member_id(&"x".repeat(64)).is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "ม", &"x".repeat(65)] {
            assert!(validate_member_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_normalized_and_bounded() {
        // "é" as e + combining acute becomes one NFC character.
        assert_eq!(validate_name("Cafe\u{301}").unwrap(), "Café");
        assert_eq!(validate_name("สมชาย ใจดี").unwrap(), "สมชาย ใจดี");
        assert!(validate_name(&"ก".repeat(200)).is_ok());
        assert!(validate_name(&"ก".repeat(201)).is_err());
        assert!(validate_name("a\nb").is_err());
        assert!(validate_name("a\u{7}b").is_err());
        assert!(validate_name("   ").is_err());
    }

    #[test]
    fn points_are_whole_and_in_range() {
        assert_eq!(validate_points(&json!(0)), Ok(0));
        assert_eq!(validate_points(&json!(MAX_POINTS)), Ok(MAX_POINTS));
        assert!(validate_points(&json!(-1)).is_err());
        assert!(validate_points(&json!(MAX_POINTS + 1)).is_err());
        assert!(validate_points(&json!(u64::MAX)).is_err());
        assert!(validate_points(&json!(1e300)).unwrap_err().contains("between"));
        assert!(validate_points(&json!(1.5)).unwrap_err().contains("whole"));
        assert!(validate_points(&json!("12")).unwrap_err().contains("number"));
    }

    #[test]
    fn locales_are_language_tags() {
        for ok in ["en", "th", "vi-VN", "zh-Hant-TW", "pt_BR"] {
            assert!(validate_locale(ok).is_ok(), "{ok}");
        }
        for bad in ["", "e", "english!", "en-", "12"] {
            assert!(validate_locale(bad).is_err(), "{bad}");
        }
    }
}
