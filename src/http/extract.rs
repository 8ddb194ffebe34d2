//! Extractors: bearer-token auth, JSON bodies with the spec's errors, validated path segments.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;

use super::AppState;
use crate::error::{ApiError, FieldError};
use crate::ids::constant_time_eq;

/// The admin API's `Authorization: Bearer <admin token>`.
pub struct AdminAuth;

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer(parts) {
            Some(token) if constant_time_eq(token.as_bytes(), state.secrets.admin_token.expose().as_bytes()) => {
                Ok(AdminAuth)
            }
            Some(_) => Err(ApiError::Unauthorized("the admin token is wrong")),
            None => Err(ApiError::Unauthorized("send the admin token as Authorization: Bearer <token>")),
        }
    }
}

/// A JSON object body: 415 for another content type, 413 past the limit, 400 for bad JSON, 422 for JSON
/// that is not an object.
pub struct JsonObject(pub serde_json::Map<String, serde_json::Value>);

/// Admin request bodies are small; a member with its attributes fits in a few KiB.
pub const ADMIN_BODY_LIMIT: usize = 64 * 1024;

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = read_json_body(req, ADMIN_BODY_LIMIT).await?;
        match parse_json(&bytes)? {
            serde_json::Value::Object(map) => Ok(JsonObject(map)),
            _ => Err(ApiError::validation(vec![FieldError::new("body", "must be a JSON object")])),
        }
    }
}

/// Reads a body that claims (or does not deny) to be JSON, up to `limit` bytes.
pub async fn read_json_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
        let ct = content_type.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if ct != "application/json" && !ct.ends_with("+json") {
            return Err(ApiError::UnsupportedMediaType("send the body as JSON with Content-Type: application/json"));
        }
    }
    axum::body::to_bytes(req.into_body(), limit).await.map_err(|e| {
        if e.into_inner().downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            ApiError::PayloadTooLarge(format!("the body is larger than {} KiB", limit / 1024))
        } else {
            ApiError::InvalidJson("the body could not be read".into())
        }
    })
}

pub fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            ApiError::InvalidJson("the body is empty; send a JSON object".into())
        } else {
            ApiError::InvalidJson(format!("the body is not valid JSON: {e}"))
        }
    })
}
