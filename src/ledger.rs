//! The ledger webhook: `POST /webhooks/ledger`, signed like Stripe's (`Tessera-Signature: t=…,v1=…`, HMAC-SHA256
//! over `"<t>.<raw body>"`), one event or `{"events": [...]}`. Verified, then validated whole (a malformed
//! event refuses the request), then applied once and in order in one transaction with the push jobs.

use actix_web::{HttpRequest, HttpResponse, web};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::app::extract::{parse_json, read_json_body};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::ids::{RandomIds, constant_time_eq};
use crate::plan;
use crate::settings::Secret;
use crate::store::LedgerEvent;
use crate::templates::Program;
use crate::validate::{validate_member_id, validate_name, validate_points, validate_tier};

pub const BODY_LIMIT: usize = 1024 * 1024;
pub const MAX_EVENTS: usize = 1000;
/// How far the signature's timestamp may be from our clock.
pub const TOLERANCE_SECS: i64 = 300;
pub const SIGNATURE_HEADER: &str = "tessera-signature";

/// The hex HMAC-SHA256 of `"<t>.<body>"` (what a sender puts in `v1=`).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = PKey::hmac(secret.as_bytes()).expect("an HMAC key from bytes");
    let mut signer = Signer::new(MessageDigest::sha256(), &key).expect("an HMAC-SHA256 signer");
    signer.update(timestamp.to_string().as_bytes()).expect("hashing");
    signer.update(b".").expect("hashing");
    signer.update(body).expect("hashing");
    hex::encode(signer.sign_to_vec().expect("an HMAC signature"))
}

/// Checks the `Tessera-Signature` header against every configured secret (constant time), then the
/// timestamp.
pub fn verify_signature(header: Option<&str>, body: &[u8], secrets: &[Secret], now: i64) -> ApiResult<()> {
    let header = header.ok_or(ApiError::BadSignature("the Tessera-Signature header is missing; sign the body as t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">"))?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.trim().parse::<i64>().ok(),
            Some(("v1", sig)) => candidates.push(sig.trim().to_ascii_lowercase()),
            _ => {}
        }
    }
    let timestamp =
        timestamp.ok_or(ApiError::BadSignature("the Tessera-Signature header has no readable t=<unix seconds>"))?;
    let valid = secrets.iter().any(|secret| {
        let expected = sign(secret.expose(), timestamp, body);
        candidates.iter().any(|c| constant_time_eq(c.as_bytes(), expected.as_bytes()))
    });
    if !valid {
        return Err(ApiError::BadSignature("the signature does not match the body with any webhook secret"));
    }
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(ApiError::StaleSignature(
            "the signature's timestamp is more than 300 seconds from the server's clock; sign each request when sending it",
        ));
    }
    Ok(())
}

/// Validates one event; `prefix` is `events[i].` in a batch.
fn parse_event(program: &Program, value: &Value, prefix: &str, errors: &mut Vec<FieldError>) -> Option<LedgerEvent> {
    let before = errors.len();
    let mut fail = |field: &str, message: String| errors.push(FieldError::new(format!("{prefix}{field}"), message));
    let Some(obj) = value.as_object() else {
        fail("", "must be a JSON object".into());
        return None;
    };
    let string = |key: &str| obj.get(key).and_then(Value::as_str);
    let id = match string("id") {
        Some(id) if !id.is_empty() && id.chars().count() <= 128 && !id.chars().any(char::is_control) => {
            Some(id.to_string())
        }
        Some(_) => {
            fail("id", "must be 1 to 128 characters without control characters".into());
            None
        }
        None => {
            fail("id", "is required and must be a string".into());
            None
        }
    };
    let member_id = match string("member_id") {
        Some(m) => validate_member_id(m).map(|_| m.to_string()).map_err(|e| fail("member_id", e)).ok(),
        None => {
            fail("member_id", "is required and must be a string".into());
            None
        }
    };
    let sequence = match obj.get("sequence") {
        Some(v) => match v.as_i64() {
            Some(s) if s >= 0 => Some(s),
            _ => {
                fail("sequence", "must be a non-negative whole number".into());
                None
            }
        },
        None => {
            fail("sequence", "is required".into());
            None
        }
    };
    let points = match obj.get("points") {
        Some(v) => validate_points(v).map_err(|e| fail("points", e)).ok(),
        None => {
            fail("points", "is required".into());
            None
        }
    };
    let tier = match string("tier") {
        Some(t) => validate_tier(program, t).map(|_| t.to_string()).map_err(|e| fail("tier", e)).ok(),
        None => {
            fail("tier", "is required and must be a string".into());
            None
        }
    };
    let name = match obj.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) => validate_name(n).map_err(|e| fail("name", e)).ok(),
        Some(_) => {
            fail("name", "must be a string".into());
            None
        }
    };
    if errors.len() > before {
        return None;
    }
    Some(LedgerEvent { id: id?, member_id: member_id?, sequence: sequence?, points: points?, tier: tier?, name })
}

/// Parses a verified body into events, refusing the whole request if any is malformed.
pub fn parse_events(program: &Program, body: &Value) -> ApiResult<Vec<LedgerEvent>> {
    let (items, batch): (Vec<&Value>, bool) = match body.get("events") {
        Some(Value::Array(events)) => (events.iter().collect(), true),
        Some(_) => return Err(ApiError::validation(vec![FieldError::new("events", "must be an array of events")])),
        None => (vec![body], false),
    };
    if items.is_empty() {
        return Err(ApiError::validation(vec![FieldError::new("events", "is empty; send at least one event")]));
    }
    if items.len() > MAX_EVENTS {
        return Err(ApiError::PayloadTooLarge(format!(
            "{} events in one request; send at most {MAX_EVENTS}",
            items.len()
        )));
    }
    let mut errors = Vec::new();
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let prefix = if batch { format!("events[{i}].") } else { String::new() };
        if let Some(event) = parse_event(program, item, &prefix, &mut errors) {
            events.push(event);
        }
    }
    if !errors.is_empty() {
        errors.truncate(100);
        return Err(ApiError::validation(errors));
    }
    Ok(events)
}

/// One ledger event as the OpenAPI document shows it; `parse_events` checks each field and names every
/// fault at once.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct LedgerEventBody {
    /// Unique across the deployment (at most 128 characters); a seen id is `duplicate`.
    #[schema(example = "pos-7781-0001")]
    id: String,
    #[schema(example = "M-1001")]
    member_id: String,
    /// Non-negative, increasing per member; an equal or lower one is `stale`.
    sequence: i64,
    /// The new balance (absolute, never a delta), 0 to 10^12.
    points: i64,
    tier: String,
    /// Optional; an unknown member without one shows its member ID.
    name: Option<String>,
}

/// A batch of events.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct LedgerBatch {
    #[schema(max_items = 1000)]
    events: Vec<LedgerEventBody>,
}

/// The webhook's body: one event, or a batch.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum LedgerBody {
    One(LedgerEventBody),
    Batch(LedgerBatch),
}

/// What became of each event, in request order.
#[derive(Serialize, ToSchema)]
pub struct LedgerResults {
    results: Vec<EventResult>,
}

#[derive(Serialize, ToSchema)]
pub struct EventResult {
    id: String,
    member_id: String,
    /// applied, duplicate, stale or retired.
    #[schema(example = "applied")]
    status: String,
}

/// Applies ledger events, once and in order.
#[utoipa::path(post, path = "/webhooks/ledger", tag = "webhook",
    params(("Tessera-Signature" = String, Header,
        description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\">` with a webhook secret; t within ±300 s")),
    request_body(content = LedgerBody, description = "One event, or up to 1,000 in `events` (1 MiB)"),
    responses((status = 200, description = "One result per event, in request order", body = LedgerResults),
        (status = 400, response = crate::openapi::InvalidJson), (status = 401, response = crate::openapi::BadSignature),
        (status = 413, response = crate::openapi::PayloadTooLarge), (status = 415, response = crate::openapi::UnsupportedMediaType),
        (status = 422, response = crate::openapi::ValidationFailed), (status = 503, response = crate::openapi::Unavailable),
        (status = 500, response = crate::openapi::Internal)))]
#[tracing::instrument(name = "ledger webhook", skip_all, fields(events = tracing::field::Empty))]
pub async fn webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let body = read_json_body(&req, &mut payload, BODY_LIMIT).await?;
    let header = req.headers().get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    verify_signature(header, &body, &state.secrets.webhook_secrets, crate::time_fmt::now_unix())?;
    let events = parse_events(state.passes.program(), &parse_json(&body)?)?;
    tracing::Span::current().record("events", events.len());
    let identity = state.passes.identity();
    let identity = (identity.pass_type_id.as_str(), identity.team_id.as_str());
    let program = &state.settings.program;
    let statuses = state
        .store
        .apply_ledger_batch(program, &events, |snapshot| {
            plan::decide_ledger_batch(program, &events, snapshot, identity, &mut RandomIds)
        })
        .await?
        .statuses;
    let results = events
        .iter()
        .zip(&statuses)
        .map(|(e, s)| {
            state.metrics.webhook_event(s.as_str());
            EventResult { id: e.id.clone(), member_id: e.member_id.clone(), status: s.as_str().to_string() }
        })
        .collect();
    Ok(HttpResponse::Ok().json(LedgerResults { results }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_any_configured_secret() {
        let body = br#"{"id":"e1"}"#;
        let secrets = [Secret::new("old-secret-0123456789"), Secret::new("new-secret-0123456789")];
        let sig = sign("new-secret-0123456789", 1000, body);
        assert!(verify_signature(Some(&format!("t=1000,v1={sig}")), body, &secrets, 1000).is_ok());
        // Several v1 entries (the sender mid-rotation) are fine.
        assert!(verify_signature(Some(&format!("t=1000,v1=00ff,v1={sig}")), body, &secrets, 1100).is_ok());
    }

    #[test]
    fn tampering_missing_headers_and_old_timestamps_are_refused() {
        let body = br#"{"id":"e1"}"#;
        let secrets = [Secret::new("the-secret-0123456789")];
        let sig = sign("the-secret-0123456789", 1000, body);
        let code = |r: ApiResult<()>| r.unwrap_err().code();
        assert_eq!(
            code(verify_signature(Some(&format!("t=1000,v1={sig}")), br#"{"id":"e2"}"#, &secrets, 1000)),
            "bad-signature"
        );
        assert_eq!(code(verify_signature(Some(&format!("t=1001,v1={sig}")), body, &secrets, 1000)), "bad-signature");
        assert_eq!(code(verify_signature(None, body, &secrets, 1000)), "bad-signature");
        assert_eq!(code(verify_signature(Some("garbage"), body, &secrets, 1000)), "bad-signature");
        assert_eq!(code(verify_signature(Some(&format!("t=1000,v1={sig}")), body, &secrets, 1301)), "stale-signature");
        assert_eq!(code(verify_signature(Some(&format!("t=1000,v1={sig}")), body, &secrets, 699)), "stale-signature");
        assert!(verify_signature(Some(&format!("t=1000,v1={sig}")), body, &secrets, 1300).is_ok());
    }
}
