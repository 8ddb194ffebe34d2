//! Extractors: handlers take typed, already-authorized arguments (`AdminAuth`, `ApplePass`) and bodies
//! already read under their limits (`JsonObject`); every refusal is the spec's JSON error.

use std::str::FromStr;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;
use futures_util::future::{LocalBoxFuture, Ready, ready};

use super::AppState;
use super::pkpass::{COUPON_SERIAL_PREFIX, ServedPass};
use crate::domain::{Invalid, SerialNumber};
use crate::error::{ApiError, FieldError};
use crate::ids::constant_time_eq;

/// The shared state; present in every app the router builds.
pub fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the application state is not installed")))
}

/// A path segment by name, fully percent-decoded; `None` if it is absent or not UTF-8 once decoded.
pub fn segment(req: &HttpRequest, name: &str) -> Option<String> {
    let raw = req.match_info().get(name)?;
    percent_encoding::percent_decode_str(raw).decode_utf8().ok().map(|s| s.into_owned())
}

/// A path segment parsed into its domain type (`MemberId`, `DeviceLibraryId`, …); 422 naming `field`
/// when it is not one.
pub fn path_value<T: FromStr<Err = Invalid>>(req: &HttpRequest, name: &str, field: &str) -> Result<T, ApiError> {
    let parsed = match segment(req, name) {
        Some(text) => text.parse::<T>().map_err(Invalid::into_reason),
        None => Err("is not a readable path segment".into()),
    };
    parsed.map_err(|reason| ApiError::validation(vec![FieldError::new(field, reason)]))
}

/// The client's address, as per-address limits count it: the peer, or, when the peer is a trusted proxy
/// (`TESSERA_TRUSTED_PROXIES`), the rightmost X-Forwarded-For entry that is not one (entries to its left
/// were written by the client and could be anything).
pub fn client_address(req: &HttpRequest, trusted: &[ipnet::IpNet]) -> std::net::IpAddr {
    let peer = req.peer_addr().map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded = req.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok());
    let hops: Vec<std::net::IpAddr> =
        forwarded.flat_map(|v| v.split(',')).filter_map(|hop| hop.trim().parse().ok()).collect();
    hops.iter().rev().find(|ip| !is_trusted(ip)).or(hops.first()).copied().unwrap_or(peer)
}

/// Refuses a client address that sent too many wrong tokens lately (before its token is even looked at).
pub fn refuse_if_guessing(state: &AppState, req: &HttpRequest) -> Result<std::net::IpAddr, ApiError> {
    let address = super::limits::address_key(client_address(req, &state.settings.trusted_proxies));
    state.auth_failures.check(&address).map_err(|wait| {
        state.metrics.address_limited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ApiError::rate_limited(wait)
    })?;
    Ok(address)
}

/// Counts a wrong token against the address.
pub fn wrong_token(state: &AppState, address: std::net::IpAddr, what: &'static str) -> ApiError {
    let _ = state.auth_failures.take(&address, 1);
    state.metrics.auth_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ApiError::Unauthorized(what)
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The admin API's `Authorization: Bearer <admin token>`, compared in constant time.
pub struct AdminAuth;

impl FromRequest for AdminAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(state(req).and_then(|state| {
            let address = refuse_if_guessing(&state, req)?;
            match bearer(req) {
                Some(token) if constant_time_eq(token.as_bytes(), state.secrets.admin_token.expose().as_bytes()) => {
                    Ok(AdminAuth)
                }
                Some(_) => Err(wrong_token(&state, address, "the admin token is wrong")),
                None => Err(ApiError::Unauthorized("send the admin token as Authorization: Bearer <token>")),
            }
        }))
    }
}

/// The scan API's `Authorization: Bearer <staff token>`, compared in constant time; `credential` names
/// the token (a fingerprint of it) in scan records and rate limits, never the token itself.
pub struct StaffAuth {
    pub credential: String,
}

impl StaffAuth {
    pub fn fingerprint(token: &str) -> String {
        format!("staff-{}", &hex::encode(openssl::sha::sha256(token.as_bytes()))[..8])
    }
}

impl FromRequest for StaffAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(state(req).and_then(|state| {
            let address = refuse_if_guessing(&state, req)?;
            let token = state.secrets.staff_token.expose();
            match bearer(req) {
                Some(sent) if constant_time_eq(sent.as_bytes(), token.as_bytes()) => {
                    Ok(StaffAuth { credential: StaffAuth::fingerprint(token) })
                }
                Some(_) => Err(wrong_token(&state, address, "the staff token is wrong")),
                None => Err(ApiError::Unauthorized("send the staff token as Authorization: Bearer <token>")),
            }
        }))
    }
}

fn pass_unauthorized() -> ApiError {
    ApiError::Unauthorized("unknown pass or wrong ApplePass authentication token")
}

/// The pass named by the path's `{pass_type}` and `{serial}`, authorized by `Authorization: ApplePass
/// <authenticationToken>` (constant time). An unknown pass type or serial and a wrong or missing token
/// are the same 401, so a caller learns nothing about which serials exist.
pub struct ApplePass(pub ServedPass);

impl FromRequest for ApplePass {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state(&req)?;
            let token = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("ApplePass "))
                .map(str::trim)
                .ok_or_else(pass_unauthorized)?;
            let (Some(pass_type), Some(serial)) = (segment(&req, "pass_type"), segment(&req, "serial")) else {
                return Err(pass_unauthorized());
            };
            let serial = serial.parse::<SerialNumber>().map_err(|_| pass_unauthorized())?;
            if pass_type != state.passes.identity().pass_type_id {
                return Err(pass_unauthorized());
            }
            let pass = if serial.as_str().starts_with(COUPON_SERIAL_PREFIX) {
                let coupon = state.store.coupon_by_serial(serial.as_str()).await?;
                ServedPass::Coupon(Arc::new(coupon.ok_or_else(pass_unauthorized)?))
            } else {
                ServedPass::Card(state.records.get(&state.store, serial.as_str()).await?.ok_or_else(pass_unauthorized)?)
            };
            if pass.pass_type_id() != pass_type
                || !constant_time_eq(token.as_bytes(), pass.authentication_token().as_bytes())
            {
                return Err(pass_unauthorized());
            }
            Ok(ApplePass(pass))
        })
    }
}

/// Admin request bodies are small; a member with its attributes fits in a few KiB.
pub const ADMIN_BODY_LIMIT: usize = 64 * 1024;

/// A JSON object body: 415 for another content type, 413 past the limit, 400 for bad JSON, 422 for JSON
/// that is not an object.
pub struct JsonObject(pub serde_json::Map<String, serde_json::Value>);

impl FromRequest for JsonObject {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let bytes = read_json_body(&req, &mut payload, ADMIN_BODY_LIMIT).await?;
            parse_json_object(&bytes).map(JsonObject)
        })
    }
}

/// Reads a body that claims (or does not deny) to be JSON, up to `limit` bytes: 415 for another content
/// type, 413 past the limit (told by Content-Length before anything is read, else while reading).
pub async fn read_json_body<S, E>(req: &HttpRequest, payload: &mut S, limit: usize) -> Result<Bytes, ApiError>
where
    S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
{
    if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
        let ct = content_type.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if ct != "application/json" && !ct.ends_with("+json") {
            return Err(ApiError::UnsupportedMediaType("send the body as JSON with Content-Type: application/json"));
        }
    }
    let too_large = || ApiError::PayloadTooLarge(format!("the body is larger than {} KiB", limit / 1024));
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::InvalidJson("the body could not be read".into()))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A body that must be a JSON object: 400 for bad JSON, 422 for JSON that is not an object.
pub fn parse_json_object(bytes: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    match parse_json(bytes)? {
        serde_json::Value::Object(map) => Ok(map),
        _ => Err(ApiError::validation(vec![FieldError::new("body", "must be a JSON object")])),
    }
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
