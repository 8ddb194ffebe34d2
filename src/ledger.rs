//! The ledger webhook: `POST /webhooks/ledger`, signed like Stripe's (`Tessera-Signature: t=…,v1=…`, HMAC-SHA256
//! over `"<t>.<raw body>"`), one event or `{"events": [...]}`. Verified, then validated whole (a malformed
//! event refuses the request), then applied once and in order in one transaction with the push jobs.

use actix_web::{HttpRequest, HttpResponse, web};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::schema::{OneOfBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::app::AppState;
use crate::app::extract::{parse_json, read_json_body};
use crate::domain::{Context, EventId, Faults, FromObject, MemberId};
use crate::error::{ApiError, ApiResult};
use crate::ids::{RandomIds, constant_time_eq};
use crate::plan;
use crate::settings::Secret;
use crate::store::LedgerEvent;

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

/// The webhook's body: one event, or a batch. `LedgerBody::parse` reads it; this type is also what the
/// OpenAPI document shows (one of the two schemas).
pub enum LedgerBody {
    One(LedgerEvent),
    Batch(LedgerBatch),
}

/// A batch of events, applied in order.
#[derive(ToSchema)]
pub struct LedgerBatch {
    #[schema(min_items = 1, max_items = 1000)]
    pub events: Vec<LedgerEvent>,
}

/// At most this many faults are listed in one answer.
const MAX_FAULTS: usize = 100;

impl LedgerBody {
    /// Reads a verified body, refusing the whole request if any event is malformed (every fault named,
    /// `events[i].field` in a batch), and a batch of more than 1,000 events (413).
    pub fn parse(body: &Value, context: &Context<'_>) -> ApiResult<LedgerBody> {
        let events = match body.get("events") {
            None => return Ok(LedgerBody::One(LedgerEvent::from_value(body, context)?)),
            Some(Value::Array(events)) => events,
            Some(_) => return Err(Faults::one("events", "must be an array of events").into()),
        };
        if events.is_empty() {
            return Err(Faults::one("events", "is empty; send at least one event").into());
        }
        if events.len() > MAX_EVENTS {
            return Err(ApiError::PayloadTooLarge(format!(
                "{} events in one request; send at most {MAX_EVENTS}",
                events.len()
            )));
        }
        let mut faults = Faults::default();
        let mut parsed = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            match LedgerEvent::from_value(event, context) {
                Ok(event) => parsed.push(event),
                Err(at_fault) if faults.len() < MAX_FAULTS => faults.nest(&format!("events[{i}]"), at_fault),
                Err(_) => {}
            }
        }
        if !faults.is_empty() {
            faults.truncate(MAX_FAULTS);
            return Err(faults.into());
        }
        Ok(LedgerBody::Batch(LedgerBatch { events: parsed }))
    }

    pub fn into_events(self) -> Vec<LedgerEvent> {
        match self {
            LedgerBody::One(event) => vec![event],
            LedgerBody::Batch(batch) => batch.events,
        }
    }
}

/// `oneOf` an event and a batch (by hand: the derive would need serde's `untagged`, and nothing here is
/// read by serde).
impl PartialSchema for LedgerBody {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(Ref::from_schema_name(LedgerEvent::name()))
            .item(Ref::from_schema_name(LedgerBatch::name()))
            .description(Some("One event, or up to 1,000 in `events`"))
            .into()
    }
}

impl ToSchema for LedgerBody {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((LedgerEvent::name().into(), LedgerEvent::schema()));
        LedgerEvent::schemas(schemas);
        schemas.push((LedgerBatch::name().into(), LedgerBatch::schema()));
        LedgerBatch::schemas(schemas);
    }
}

/// What became of each event, in request order.
#[derive(Serialize, ToSchema)]
pub struct LedgerResults {
    results: Vec<EventResult>,
}

#[derive(Serialize, ToSchema)]
pub struct EventResult {
    id: EventId,
    member_id: MemberId,
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
    let context = state.passes.program().parse_context();
    let events = LedgerBody::parse(&parse_json(&body)?, &context)?.into_events();
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

    fn parse(body: serde_json::Value) -> ApiResult<Vec<LedgerEvent>> {
        const TIERS: &[&str] = &["gold"];
        LedgerBody::parse(&body, &Context { tiers: &TIERS, offers: &TIERS }).map(LedgerBody::into_events)
    }

    fn event(i: usize) -> serde_json::Value {
        serde_json::json!({"id": format!("e-{i}"), "member_id": "M-1", "sequence": i, "points": 1, "tier": "gold"})
    }

    #[test]
    fn one_event_or_a_batch_is_read_whole() {
        assert_eq!(parse(event(1)).unwrap().len(), 1);
        let batch = parse(serde_json::json!({"events": [event(1), event(2)]})).unwrap();
        assert_eq!(batch.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["e-1", "e-2"], "in request order");
        let fields = |body| match parse(body).unwrap_err() {
            ApiError::ValidationFailed { details, .. } => details.into_iter().map(|d| d.field).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(fields(serde_json::json!({"events": {}})), ["events"]);
        assert_eq!(fields(serde_json::json!({"events": []})), ["events"]);
        assert_eq!(fields(serde_json::json!("one")), ["body"]);
        // Five faults each (the id a number, four fields missing): the answer stops at 100.
        let bad: Vec<_> = (0..150).map(|i| serde_json::json!({"id": i})).collect();
        let faults = fields(serde_json::json!({"events": bad}));
        assert_eq!((faults.len(), faults[0].as_str(), faults[99].as_str()), (100, "events[0].id", "events[19].tier"));
        let too_many = serde_json::json!({"events": (0..=MAX_EVENTS).map(event).collect::<Vec<_>>()});
        assert_eq!(parse(too_many).unwrap_err().code(), "payload-too-large");
    }

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
