//! Apple's pass web service (PassKit Web Service Reference, v1), under `<public URL>/v1/…`:
//! register, unregister, list updatable serials, latest pass, log.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::app::AppState;
use crate::app::extract::{ApplePass, client_address, parse_json, path_value, read_json_body, segment};
use crate::app::limits::{LOG_LINES_PER_MINUTE, address_key};
use crate::app::pkpass::pkpass_response;
use crate::domain::{Context, DeviceLibraryId, FromObject, PushToken, SerialNumber, json_object};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::store::Registered;

/// Log bodies are bounded; Wallet sends a few lines.
pub const LOG_BODY_LIMIT: usize = 64 * 1024;
const REGISTER_BODY_LIMIT: usize = 4 * 1024;

/// The `{device}` segment.
fn device_id(req: &HttpRequest) -> ApiResult<DeviceLibraryId> {
    path_value(req, "device", "deviceLibraryIdentifier")
}

json_object! {
    unknown_fields: ignored,
    /// The body of a registration.
    pub struct RegisterBody {
        push_token as "pushToken": PushToken,
    }
}

impl RegisterBody {
    fn parse(body: &[u8]) -> ApiResult<RegisterBody> {
        Ok(RegisterBody::from_value(&parse_json(body)?, &Context::without_tiers())?)
    }
}

/// `POST /v1/devices/{device}/registrations/{passType}/{serial}`: 201 new, 200 already registered.
#[utoipa::path(post, path = "/v1/devices/{device}/registrations/{pass_type}/{serial}", tag = "apple-web-service",
    params(("device" = DeviceLibraryId, Path, description = "The device library identifier"), ("pass_type" = String, Path), ("serial" = SerialNumber, Path)),
    request_body(content = RegisterBody),
    responses((status = 201, description = "Registered"), (status = 200, description = "Already registered (the push token is updated)"),
        (status = 400, response = crate::openapi::InvalidJson), (status = 401, response = crate::openapi::Unauthorized),
        (status = 413, response = crate::openapi::PayloadTooLarge), (status = 422, response = crate::openapi::ValidationFailed),
        (status = 503, response = crate::openapi::Unavailable)),
    security(("applePass" = [])))]
/// The body is read only once the pass is authorized.
pub async fn register(
    state: web::Data<AppState>,
    ApplePass(pass): ApplePass,
    req: HttpRequest,
    mut payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let device = device_id(&req)?;
    let body = RegisterBody::parse(&read_json_body(&req, &mut payload, REGISTER_BODY_LIMIT).await?)?;
    let token = body.push_token;
    let status = match state.store.register_device(&device, pass.pass_type_id(), pass.serial_number(), &token).await? {
        Registered::Created => StatusCode::CREATED,
        Registered::AlreadyRegistered => StatusCode::OK,
    };
    tracing::info!(serial = pass.serial_number(), status = status.as_u16(), "device registered");
    Ok(HttpResponse::build(status).finish())
}

/// `DELETE /v1/devices/{device}/registrations/{passType}/{serial}`: 200.
#[utoipa::path(delete, path = "/v1/devices/{device}/registrations/{pass_type}/{serial}", tag = "apple-web-service",
    params(("device" = DeviceLibraryId, Path), ("pass_type" = String, Path), ("serial" = SerialNumber, Path)),
    responses((status = 200, description = "Unregistered"), (status = 401, response = crate::openapi::Unauthorized),
        (status = 422, response = crate::openapi::ValidationFailed), (status = 503, response = crate::openapi::Unavailable)),
    security(("applePass" = [])))]
pub async fn unregister(
    state: web::Data<AppState>,
    ApplePass(pass): ApplePass,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let device = device_id(&req)?;
    state.store.unregister_device(&device, pass.pass_type_id(), pass.serial_number()).await?;
    tracing::info!(serial = pass.serial_number(), "device unregistered");
    Ok(HttpResponse::Ok().finish())
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(rename = "passesUpdatedSince")]
    passes_updated_since: Option<String>,
}

/// `passesUpdatedSince` from the query string; absent or unreadable reads as "none" (everything).
fn passes_updated_since(query: &str) -> Option<i64> {
    let query = web::Query::<ListQuery>::from_query(query).ok()?.into_inner();
    query.passes_updated_since?.trim().parse::<i64>().ok()
}

/// `GET /v1/devices/{device}/registrations/{passType}?passesUpdatedSince=tag`: no Authorization header.
#[utoipa::path(get, path = "/v1/devices/{device}/registrations/{pass_type}", tag = "apple-web-service",
    params(("device" = DeviceLibraryId, Path), ("pass_type" = String, Path),
        ("passesUpdatedSince" = Option<String>, Query, description = "The `lastUpdated` tag of the previous answer")),
    responses((status = 200, description = "`{\"serialNumbers\": [...], \"lastUpdated\": \"<tag>\"}`"),
        (status = 204, description = "Nothing changed since the tag"), (status = 401, response = crate::openapi::Unauthorized),
        (status = 422, response = crate::openapi::ValidationFailed), (status = 503, response = crate::openapi::Unavailable)))]
/// 200 with the serials changed since the tag (all when the tag is absent or unreadable), else 204.
pub async fn list_updated(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    let pass_type = segment(&req, "pass_type").unwrap_or_default();
    if pass_type != state.passes.identity().pass_type_id {
        return Err(ApiError::Unauthorized("unknown pass type"));
    }
    let device = device_id(&req)?;
    let since = passes_updated_since(req.query_string());
    let (serials, tag) = state.store.updated_serials(&device, &pass_type, since).await?;
    if serials.is_empty() {
        return Ok(HttpResponse::NoContent().finish());
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "serialNumbers": serials, "lastUpdated": tag.to_string() })))
}

/// `GET /v1/passes/{passType}/{serial}`: the latest pass, 304 when If-Modified-Since covers it.
#[utoipa::path(get, path = "/v1/passes/{pass_type}/{serial}", tag = "apple-web-service",
    params(("pass_type" = String, Path), ("serial" = SerialNumber, Path)),
    responses((status = 200, description = "The signed pass, with Last-Modified", content_type = "application/vnd.apple.pkpass"),
        (status = 304, description = "Not modified since If-Modified-Since"), (status = 401, response = crate::openapi::Unauthorized),
        (status = 503, response = crate::openapi::Unavailable)),
    security(("applePass" = [])))]
pub async fn latest_pass(
    state: web::Data<AppState>,
    ApplePass(pass): ApplePass,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    pkpass_response(&state, req.headers(), &pass).await
}

/// `POST /v1/log`: messages from devices about problems with our passes, logged (bounded: 100 lines and
/// 64 KiB a minute per client address).
#[utoipa::path(post, path = "/v1/log", tag = "apple-web-service",
    request_body(content = Object, description = "`{\"logs\": [\"…\"]}`, at most 64 KiB"),
    responses((status = 200, description = "Logged"), (status = 400, response = crate::openapi::InvalidJson),
        (status = 413, response = crate::openapi::PayloadTooLarge), (status = 422, response = crate::openapi::ValidationFailed),
        (status = 429, response = crate::openapi::RateLimited)))]
pub async fn log(req: HttpRequest, mut payload: web::Payload) -> ApiResult<HttpResponse> {
    // Unauthenticated, so what one address may write to the log is capped (lines and bytes a minute).
    let state = crate::app::extract::state(&req)?;
    let address = address_key(client_address(&req, &state.settings.trusted_proxies));
    let limited = |wait| {
        state.metrics.address_limited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ApiError::rate_limited(wait)
    };
    state.log_lines.check(&address).map_err(limited)?;
    let body = read_json_body(&req, &mut payload, LOG_BODY_LIMIT).await?;
    let value = parse_json(&body)?;
    let Some(logs) = value.get("logs").and_then(|l| l.as_array()) else {
        return Err(ApiError::validation(vec![FieldError::new("logs", "must be an array of strings")]));
    };
    let lines = logs.len().min(LOG_LINES_PER_MINUTE as usize) as u32;
    state.log_bytes.take(&address, body.len() as u32).map_err(limited)?;
    state.log_lines.take(&address, lines).map_err(limited)?;
    for entry in logs.iter().take(lines as usize) {
        let text = entry.as_str().unwrap_or_default();
        let text: String = text.chars().take(1000).filter(|c| !c.is_control()).collect();
        tracing::warn!(target: "tessera::wallet_log", message = %text, "Wallet reported");
    }
    Ok(HttpResponse::Ok().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_tokens_are_bounded_hex() {
        let token = |body: &str| RegisterBody::parse(body.as_bytes()).map(|b| b.push_token.as_str().to_owned());
        assert_eq!(token(r#"{"pushToken":"ABcd01","other":1}"#).unwrap(), "abcd01");
        for bad in [r#"{"pushToken":"zz"}"#, r#"{"pushToken":12}"#, r#"{}"#, r#"[1]"#] {
            assert_eq!(token(bad).unwrap_err().code(), "validation-failed", "{bad}");
        }
        let long = format!(r#"{{"pushToken":"{}"}}"#, "a".repeat(201));
        assert!(token(&long).is_err());
        assert_eq!(token("{nope").unwrap_err().code(), "invalid-json");
    }

    #[test]
    fn unreadable_tags_read_as_none() {
        assert_eq!(passes_updated_since("a=1&passesUpdatedSince=42"), Some(42));
        assert_eq!(passes_updated_since(""), None);
        assert_eq!(passes_updated_since("passesUpdatedSince=yesterday"), None);
        assert_eq!(passes_updated_since("passesUpdatedSince=%FF%FE"), None);
    }
}
