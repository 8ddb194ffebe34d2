//! Members: validation of the admin API's input, the member JSON, and the admin handlers.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use unicode_normalization::UnicodeNormalization;

use crate::error::{ApiError, ApiResult, FieldError};
use crate::http::AppState;
use crate::http::extract::{AdminAuth, JsonObject};
use crate::ids::RandomIds;
use crate::plan;
use crate::store::{DeviceRecord, MemberChange, MemberRecord, StoreError, UpsertOutcome};
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

fn validate_locale(locale: &str) -> Result<(), String> {
    let mut parts = locale.split(['-', '_']);
    let language = parts.next().unwrap_or("");
    let ok = (2..=3).contains(&language.len())
        && language.bytes().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_alphanumeric()))
        && locale.len() <= 35;
    if ok { Ok(()) } else { Err(format!("`{locale}` is not a language tag such as en, th or vi-VN")) }
}

/// Fields of the member JSON that a client may send back unchanged; they are ignored.
const READ_ONLY_FIELDS: &[&str] =
    &["member_id", "program", "created_at", "updated_at", "retired", "links", "apple", "google"];

/// Parses a PUT body into a change, collecting every field at fault.
pub fn parse_member_put(
    program: &Program,
    member_id: &str,
    body: &Map<String, Value>,
) -> Result<MemberChange, ApiError> {
    let mut errors = Vec::new();
    let mut fail = |field: &str, message: String| errors.push(FieldError::new(field, message));

    for key in body.keys() {
        if !["name", "tier", "points", "locale", "attributes"].contains(&key.as_str())
            && !READ_ONLY_FIELDS.contains(&key.as_str())
        {
            fail(key, "is not a member field (name, tier, points, locale, attributes)".into());
        }
    }
    if let Some(id) = body.get("member_id")
        && id.as_str() != Some(member_id)
    {
        fail("member_id", "differs from the member ID in the path".into());
    }
    let name = match body.get("name") {
        None | Some(Value::Null) => {
            fail("name", "is required".into());
            None
        }
        Some(Value::String(s)) => validate_name(s).map_err(|m| fail("name", m)).ok(),
        Some(_) => {
            fail("name", "must be a string".into());
            None
        }
    };
    let tier = match body.get("tier") {
        None | Some(Value::Null) => {
            fail("tier", "is required".into());
            None
        }
        Some(Value::String(t)) => validate_tier(program, t).map(|_| t.clone()).map_err(|m| fail("tier", m)).ok(),
        Some(_) => {
            fail("tier", "must be a string".into());
            None
        }
    };
    let points = match body.get("points") {
        None | Some(Value::Null) => {
            fail("points", "is required".into());
            None
        }
        Some(v) => validate_points(v).map_err(|m| fail("points", m)).ok(),
    };
    let locale = match body.get("locale") {
        None | Some(Value::Null) => None,
        Some(Value::String(l)) => validate_locale(l).map(|_| l.clone()).map_err(|m| fail("locale", m)).ok(),
        Some(_) => {
            fail("locale", "must be a string such as en, th or vi".into());
            None
        }
    };
    let attributes = match body.get("attributes") {
        None | Some(Value::Null) => "{}".to_string(),
        Some(v @ Value::Object(_)) => {
            let text = v.to_string();
            if text.len() > MAX_ATTRIBUTES_BYTES {
                fail(
                    "attributes",
                    format!("is {} bytes of JSON; at most {MAX_ATTRIBUTES_BYTES} are allowed", text.len()),
                );
            }
            text
        }
        Some(_) => {
            fail("attributes", "must be a JSON object".into());
            String::new()
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(MemberChange { name, tier: tier.unwrap_or_default(), points: points.unwrap_or_default(), locale, attributes })
}

pub struct Links {
    pub page: String,
    pub apple: String,
}

pub fn links(public_url: &str, record: &MemberRecord) -> Links {
    Links {
        page: format!("{public_url}/m/{}", record.public_id),
        apple: format!("{public_url}/m/{}/pass.pkpass", record.public_id),
    }
}

/// The member JSON of the spec. Push tokens and authentication tokens are never shown.
pub fn member_json(public_url: &str, record: &MemberRecord, devices: &[DeviceRecord]) -> Value {
    let devices: Vec<Value> = devices
        .iter()
        .map(|d| {
            json!({
                "registered_at": crate::time_fmt::rfc3339(d.registered_at),
                "last_push_at": d.last_push_at.map(crate::time_fmt::rfc3339),
                "last_push_result": d.last_push_result,
                "last_push_reason": d.last_push_reason,
            })
        })
        .collect();
    let links = links(public_url, record);
    let attributes: Value = serde_json::from_str(&record.attributes).unwrap_or_else(|_| json!({}));
    json!({
        "member_id": record.member_id,
        "name": record.name,
        "tier": record.tier,
        "points": record.points,
        "program": record.program,
        "locale": record.locale,
        "attributes": attributes,
        "created_at": crate::time_fmt::rfc3339(record.created_at),
        "updated_at": crate::time_fmt::rfc3339(record.updated_at),
        "retired": record.retired,
        "links": { "page": links.page, "apple": links.apple },
        "apple": {
            "serial_number": record.serial_number,
            "voided": record.voided,
            "devices": devices,
        },
    })
}

async fn member_json_with_devices(state: &AppState, record: &MemberRecord) -> ApiResult<Value> {
    let devices = state.store.devices_of(&record.serial_number).await?;
    Ok(member_json(&state.settings.public_url, record, &devices))
}

/// The member ID from the path, checked.
pub fn member_id_from_path(path: Result<Path<String>, axum::extract::rejection::PathRejection>) -> ApiResult<String> {
    let Ok(Path(id)) = path else {
        return Err(ApiError::validation(vec![FieldError::new("member_id", "is not a readable path segment")]));
    };
    validate_member_id(&id).map_err(|m| ApiError::validation(vec![FieldError::new("member_id", m)]))?;
    Ok(id)
}

#[tracing::instrument(name = "put member", skip_all, fields(member_id = tracing::field::Empty))]
pub async fn put_member(
    State(state): State<AppState>,
    _auth: AdminAuth,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let member_id = member_id_from_path(path)?;
    tracing::Span::current().record("member_id", member_id.as_str());
    let change = parse_member_put(state.passes.program(), &member_id, &body)?;
    let identity = state.passes.identity();
    let (record, outcome) = state
        .store
        .apply_member_change(&state.settings.program, &member_id, |existing, now| {
            let identity = (identity.pass_type_id.as_str(), identity.team_id.as_str());
            plan::decide_upsert(&state.settings.program, &member_id, &change, existing, identity, now, &mut RandomIds)
        })
        .await?;
    let record = record.ok_or_else(|| StoreError::Corrupt(format!("member {member_id} missing after upsert")))?;
    let status = if outcome == UpsertOutcome::Created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(member_json_with_devices(&state, &record).await?)))
}

pub async fn get_member(
    State(state): State<AppState>,
    _auth: AdminAuth,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> ApiResult<Json<Value>> {
    let member_id = member_id_from_path(path)?;
    let record = state
        .store
        .member(&state.settings.program, &member_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no member {member_id}")))?;
    Ok(Json(member_json_with_devices(&state, &record).await?))
}

#[tracing::instrument(name = "retire member", skip_all, fields(member_id = tracing::field::Empty))]
pub async fn delete_member(
    State(state): State<AppState>,
    _auth: AdminAuth,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> ApiResult<Json<Value>> {
    let member_id = member_id_from_path(path)?;
    tracing::Span::current().record("member_id", member_id.as_str());
    let record = state
        .store
        .apply_member_change(&state.settings.program, &member_id, |existing, now| {
            (existing.map(|m| plan::decide_retire(m, now)).unwrap_or_default(), ())
        })
        .await?
        .0
        .ok_or_else(|| ApiError::not_found(format!("no member {member_id}")))?;
    Ok(Json(member_json_with_devices(&state, &record).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

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
