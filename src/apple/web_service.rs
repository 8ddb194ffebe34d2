//! Apple's pass web service (PassKit Web Service Reference, v1), under `<public URL>/v1/…`:
//! register, unregister, list updatable serials, latest pass, log.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult, FieldError};
use crate::http::AppState;
use crate::http::extract::{parse_json, read_json_body};
use crate::ids::constant_time_eq;
use crate::store::{MemberRecord, Registered, Store};

/// Log bodies are bounded; Wallet sends a few lines.
pub const LOG_BODY_LIMIT: usize = 64 * 1024;
const REGISTER_BODY_LIMIT: usize = 4 * 1024;
const MAX_PUSH_TOKEN: usize = 200;

fn unauthorized() -> ApiError {
    ApiError::Unauthorized("unknown pass or wrong ApplePass authentication token")
}

/// Device library identifiers: printable identifiers, bounded.
fn check_device_id(id: &str) -> ApiResult<()> {
    if id.is_empty()
        || id.len() > 128
        || !id.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        return Err(ApiError::validation(vec![FieldError::new(
            "deviceLibraryIdentifier",
            "must be 1 to 128 letters, digits, '-', '_' or '.'",
        )]));
    }
    Ok(())
}

/// Per-instance cache of the pass lookups behind the authenticated endpoints. An entry is used only
/// while no pass changed since it was read (the store's change generation), so it is never stale on a
/// single instance; with several instances (PostgreSQL) it is bypassed.
#[derive(Default)]
pub struct PassCache {
    entries: RwLock<HashMap<String, (u64, Arc<MemberRecord>)>>,
}

const PASS_CACHE_ENTRIES: usize = 100_000;

impl PassCache {
    pub async fn get(&self, store: &Store, serial: &str) -> ApiResult<Option<Arc<MemberRecord>>> {
        let cacheable = store.is_sqlite();
        let generation = store.change_generation();
        if cacheable {
            let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
            if let Some((g, record)) = entries.get(serial)
                && *g == generation
            {
                return Ok(Some(record.clone()));
            }
        }
        let Some(record) = store.member_by_serial(serial).await? else { return Ok(None) };
        let record = Arc::new(record);
        if cacheable {
            let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
            if entries.len() >= PASS_CACHE_ENTRIES {
                entries.clear();
            }
            entries.insert(serial.to_string(), (generation, record.clone()));
        }
        Ok(Some(record))
    }
}

/// Finds the pass and checks `Authorization: ApplePass <token>`; every failure is the same 401.
async fn authorized_pass(
    state: &AppState,
    headers: &HeaderMap,
    pass_type: &str,
    serial: &str,
) -> ApiResult<Arc<MemberRecord>> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("ApplePass "))
        .ok_or_else(unauthorized)?;
    if pass_type != state.passes.identity().pass_type_id || serial.len() > 128 {
        return Err(unauthorized());
    }
    let record = state.pass_cache.get(&state.store, serial).await?.ok_or_else(unauthorized)?;
    if record.pass_type_id != pass_type
        || !constant_time_eq(token.trim().as_bytes(), record.authentication_token.as_bytes())
    {
        return Err(unauthorized());
    }
    Ok(record)
}

type Segments3 = Result<Path<(String, String, String)>, PathRejection>;
type Segments2 = Result<Path<(String, String)>, PathRejection>;

fn segments<T>(path: Result<Path<T>, PathRejection>) -> ApiResult<T> {
    path.map(|Path(p)| p).map_err(|_| ApiError::not_found("no such pass or device"))
}

#[derive(Deserialize)]
struct RegisterBody {
    #[serde(rename = "pushToken")]
    push_token: Option<serde_json::Value>,
}

/// `POST /v1/devices/{device}/registrations/{passType}/{serial}`: 201 new, 200 already registered.
pub async fn register(State(state): State<AppState>, path: Segments3, request: Request) -> ApiResult<StatusCode> {
    let (device, pass_type, serial) = segments(path)?;
    let headers = request.headers().clone();
    authorized_pass(&state, &headers, &pass_type, &serial).await?;
    check_device_id(&device)?;
    let body = read_json_body(request, REGISTER_BODY_LIMIT).await?;
    let parsed: RegisterBody = serde_json::from_value(parse_json(&body)?)
        .map_err(|_| ApiError::validation(vec![FieldError::new("body", "must be a JSON object with pushToken")]))?;
    let token = match parsed.push_token {
        Some(serde_json::Value::String(t))
            if !t.is_empty() && t.len() <= MAX_PUSH_TOKEN && t.bytes().all(|c| c.is_ascii_hexdigit()) =>
        {
            t.to_ascii_lowercase()
        }
        _ => {
            return Err(ApiError::validation(vec![FieldError::new(
                "pushToken",
                "must be a hex string of at most 200 characters",
            )]));
        }
    };
    let status = match state.store.register_device(&device, &pass_type, &serial, &token).await? {
        Registered::Created => StatusCode::CREATED,
        Registered::AlreadyRegistered => StatusCode::OK,
    };
    tracing::info!(serial = %serial, status = status.as_u16(), "device registered");
    Ok(status)
}

/// `DELETE /v1/devices/{device}/registrations/{passType}/{serial}`: 200.
pub async fn unregister(State(state): State<AppState>, path: Segments3, headers: HeaderMap) -> ApiResult<StatusCode> {
    let (device, pass_type, serial) = segments(path)?;
    authorized_pass(&state, &headers, &pass_type, &serial).await?;
    check_device_id(&device)?;
    state.store.unregister_device(&device, &pass_type, &serial).await?;
    tracing::info!(serial = %serial, "device unregistered");
    Ok(StatusCode::OK)
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(rename = "passesUpdatedSince")]
    passes_updated_since: Option<String>,
}

/// `GET /v1/devices/{device}/registrations/{passType}?passesUpdatedSince=tag`: no Authorization header.
/// 200 with the serials changed since the tag (all when the tag is absent or unreadable), else 204.
pub async fn list_updated(
    State(state): State<AppState>,
    path: Segments2,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let (device, pass_type) = segments(path)?;
    if pass_type != state.passes.identity().pass_type_id {
        return Err(unauthorized());
    }
    check_device_id(&device)?;
    let since = query.ok().and_then(|Query(q)| q.passes_updated_since).and_then(|s| s.trim().parse::<i64>().ok());
    let (serials, tag) = state.store.updated_serials(&device, &pass_type, since).await?;
    if serials.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(Json(serde_json::json!({ "serialNumbers": serials, "lastUpdated": tag.to_string() })).into_response())
}

/// `GET /v1/passes/{passType}/{serial}`: the latest pass, 304 when If-Modified-Since covers it.
pub async fn latest_pass(State(state): State<AppState>, path: Segments2, headers: HeaderMap) -> ApiResult<Response> {
    let (pass_type, serial) = segments(path)?;
    let record = authorized_pass(&state, &headers, &pass_type, &serial).await?;
    crate::pages::pkpass_response(&state, &headers, &record).await
}

/// `POST /v1/log`: messages from devices about problems with our passes, logged (bounded).
pub async fn log(request: Request) -> ApiResult<StatusCode> {
    let body = read_json_body(request, LOG_BODY_LIMIT).await?;
    let value = parse_json(&body)?;
    let Some(logs) = value.get("logs").and_then(|l| l.as_array()) else {
        return Err(ApiError::validation(vec![FieldError::new("logs", "must be an array of strings")]));
    };
    for entry in logs.iter().take(100) {
        let text = entry.as_str().unwrap_or_default();
        let text: String = text.chars().take(1000).filter(|c| !c.is_control()).collect();
        tracing::warn!(target: "tessera::wallet_log", message = %text, "Wallet reported");
    }
    Ok(StatusCode::OK)
}
