//! `POST /google/callbacks`: Google's save and delete callbacks (the class's `callbackOptions.url`).
//! Parsed whole first (a malformed or unsigned callback is refused before any key is fetched), then
//! verified (ECv2SigningOnly, for this issuer), unexpired, for one of this program's objects, and new
//! (nonce), the callback records `saved` on the member; anything else is a 4xx and records nothing. Only
//! a well-formed callback waits on Google's root keys: 503 with Retry-After while they cannot be had.

use actix_web::{HttpRequest, HttpResponse, web};

use super::ecv2::{CallbackError, CallbackEvent, SignedCallback};
use super::pass::member_of_object;
use crate::app::AppState;
use crate::app::extract::{parse_json, read_json_body};
use crate::error::{ApiError, ApiResult};

/// Google's callbacks are a few hundred bytes.
const BODY_LIMIT: usize = 64 * 1024;

fn refused(e: &CallbackError) -> ApiError {
    match e {
        CallbackError::Expired | CallbackError::IntermediateExpired => {
            ApiError::StaleSignature("the callback has expired; Google sends a fresh one when it retries")
        }
        CallbackError::Malformed(_) | CallbackError::UnsupportedProtocol(_) | CallbackError::UnknownEvent(_) => {
            ApiError::BadSignature("not a signed Google Wallet callback (ECv2SigningOnly)")
        }
        _ => ApiError::BadSignature("the callback's signature does not verify with Google's keys for this issuer"),
    }
}

/// Records a save or delete callback from Google.
#[utoipa::path(post, path = "/google/callbacks", tag = "google",
    request_body(content = Object, description = "Google's signed callback: signature, intermediateSigningKey, protocolVersion, signedMessage"),
    responses((status = 200, description = "Recorded"),
        (status = 400, response = crate::openapi::InvalidJson), (status = 401, response = crate::openapi::BadSignature),
        (status = 404, response = crate::openapi::NotFound), (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 503, response = crate::openapi::NotConfigured), (status = 500, response = crate::openapi::Internal)))]
#[tracing::instrument(name = "google callback", skip_all)]
pub async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let Some(wallet) = state.google.clone() else {
        return Err(ApiError::NotConfigured("Google Wallet is not configured".into()));
    };
    let body = read_json_body(&req, &mut payload, BODY_LIMIT).await?;
    parse_json(&body)?;
    let refuse = |e: CallbackError| {
        state.metrics.google_callback("refused");
        tracing::warn!(reason = %e, "refused a Google callback");
        refused(&e)
    };
    let callback = SignedCallback::parse(&body).map_err(refuse)?;
    let now_ms = crate::time_fmt::now_unix_ms();
    let roots = wallet.root_keys.get(false).await.map_err(|e| {
        tracing::error!(error = %e, "Google's root keys cannot be had; callbacks are refused until they can");
        ApiError::Unavailable("Google's signing keys cannot be fetched right now; Google retries".into())
    })?;
    let verified = match callback.verify(&roots, &wallet.issuer_id, now_ms) {
        Err(CallbackError::BadIntermediateSignature) => {
            // Perhaps Google rotated its keys since we fetched them.
            let fresh = wallet.root_keys.get(true).await.unwrap_or(roots);
            callback.verify(&fresh, &wallet.issuer_id, now_ms)
        }
        other => other,
    };
    let message = verified.map_err(refuse)?;
    let program = &state.settings.program;
    let member = member_of_object(&wallet.issuer_id, program, &message.object_id)
        .filter(|_| message.class_id == wallet.class_id)
        .ok_or_else(|| {
            state.metrics.google_callback("refused");
            ApiError::BadSignature("the callback names a class or object that is not this program's")
        })?;
    if state.store.member(program, member).await?.is_none() {
        return Err(ApiError::not_found(format!("no member {member}")));
    }
    let saved = message.event == CallbackEvent::Save;
    if !state.store.record_google_callback(&message.nonce, program, member, saved).await? {
        state.metrics.google_callback("replayed");
        return Err(ApiError::StaleSignature("this callback was received before (its nonce is spent)"));
    }
    state.metrics.google_callback(if saved { "save" } else { "delete" });
    tracing::info!(member = %member, event = if saved { "save" } else { "delete" }, "Google callback recorded");
    Ok(HttpResponse::Ok().json(serde_json::json!({})))
}
