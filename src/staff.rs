//! The staff page: `GET /staff` (sign-in, or the scanner once signed in), `POST /staff/session` (the
//! staff token once, then an HttpOnly, SameSite=Strict session cookie, Secure behind https; never in the
//! URL), `POST /staff/signout`, `POST /staff/scan`, the page's scan, and `POST /staff/redeem`, the page's
//! redemption of a coupon, both authorized by the cookie and a CSRF token the page carries (a cross-site
//! request has neither).

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::AppState;
use crate::app::extract::{StaffAuth, read_json_body};
use crate::domain::FromObject;
use crate::error::{ApiError, ApiResult};
use crate::ids::{constant_time_eq, hmac_sha256};
use crate::offers::{CouponView, RedemptionBody};
use crate::templates::staff::StaffContext;

const COOKIE: &str = "tessera_staff";
/// A session lasts a working day.
const SESSION_SECS: i64 = 12 * 3600;
const FORM_LIMIT: usize = 4 * 1024;

/// A session cookie's value: `<expiry>.<HMAC with the staff token>`. Stateless, so every instance
/// accepts it, and changing the staff token signs everyone out.
pub fn session_value(staff_token: &str, expires: i64) -> String {
    format!("{expires}.{}", hex::encode(hmac_sha256(staff_token.as_bytes(), format!("session:{expires}").as_bytes())))
}

pub fn session_valid(staff_token: &str, value: &str, now: i64) -> bool {
    let Some((expires, _)) = value.split_once('.') else { return false };
    let Ok(expires) = expires.parse::<i64>() else { return false };
    expires > now && constant_time_eq(session_value(staff_token, expires).as_bytes(), value.as_bytes())
}

/// The CSRF token of a session: derived from it, so it needs no storage.
pub fn csrf_token(staff_token: &str, session: &str) -> String {
    hex::encode(&hmac_sha256(staff_token.as_bytes(), format!("csrf:{session}").as_bytes())[..16])
}

fn session_of(state: &AppState, req: &HttpRequest) -> Option<String> {
    let cookie = req.cookie(COOKIE)?;
    let token = state.secrets.staff_token.expose();
    session_valid(token, cookie.value(), crate::time_fmt::now_unix()).then(|| cookie.value().to_string())
}

/// The page's language: `?lang=`, else Accept-Language, else the program's default.
fn page_locale<'a>(state: &'a AppState, req: &HttpRequest) -> &'a str {
    let wanted = web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("lang").cloned())
        .or_else(|| crate::scan::first_language(req));
    state.passes.program().resolve_locale(wanted.as_deref())
}

fn html(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // Nothing from another origin: scripts, styles and images are tessera's own (or inline).
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; media-src 'self' blob: mediastream:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ))
        // Not no-referrer: with it Chromium sends `Origin: null` on the page's own form posts.
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .body(body)
}

/// The staff page.
#[utoipa::path(get, path = "/staff", tag = "staff",
    params(("lang" = Option<String>, Query, description = "The page's language (en, th, vi); else Accept-Language")),
    responses((status = 200, description = "Sign-in, or the scanner once signed in", content_type = "text/html")))]
pub async fn page(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    let locale = page_locale(&state, &req);
    let session = session_of(&state, &req);
    let csrf = session.as_deref().map(|s| csrf_token(state.secrets.staff_token.expose(), s)).unwrap_or_default();
    let error = req.query_string().contains("error=token").then_some("staff.wrong_token");
    let ctx =
        StaffContext { base_path: state.settings.public_path(), signed_in: session.is_some(), csrf: &csrf, error };
    let body = state.passes.program().render_staff(locale, &ctx).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(html(body))
}

fn redirect(state: &AppState, to: &str) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::SeeOther();
    response.insert_header((header::LOCATION, format!("{}{to}", state.settings.public_path())));
    response
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Whether a browser says the request comes from another site (an absent Origin is a same-site form).
fn cross_origin(state: &AppState, req: &HttpRequest) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return false };
    origin != state.settings.public_url.origin()
}

fn session_cookie(state: &AppState, value: String, max_age: i64) -> Cookie<'static> {
    let path = match state.settings.public_path() {
        "" => "/".to_string(),
        prefix => prefix.to_string(),
    };
    Cookie::build(COOKIE, value)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.settings.public_url.is_https())
        .path(path)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age))
        .finish()
}

/// Signs in with the staff token (a form post); back to the page either way.
#[utoipa::path(post, path = "/staff/session", tag = "staff",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "token=<staff token>&lang=<locale>"),
    responses((status = 303, description = "Signed in (a session cookie), or back to the sign-in with a message"),
        (status = 429, response = crate::openapi::RateLimited)))]
pub async fn sign_in(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> ApiResult<HttpResponse> {
    if body.len() > FORM_LIMIT || cross_origin(&state, &req) {
        tracing::warn!("refused a staff sign-in from another origin (or an oversized form)");
        return Ok(redirect(&state, "/staff?error=token").finish());
    }
    let lang = form_field(&body, "lang")
        .filter(|l| l.len() <= 10 && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'));
    let lang = lang.map(|l| format!("lang={l}")).unwrap_or_default();
    let address = crate::app::extract::refuse_if_guessing(&state, &req)?;
    let token = state.secrets.staff_token.expose();
    let sent = form_field(&body, "token").unwrap_or_default();
    if !constant_time_eq(sent.trim().as_bytes(), token.as_bytes()) {
        tracing::warn!("a staff sign-in with a wrong token");
        let _ = crate::app::extract::wrong_token(&state, address, "the staff token is wrong");
        return Ok(redirect(&state, &format!("/staff?error=token&{lang}")).finish());
    }
    let value = session_value(token, crate::time_fmt::now_unix() + SESSION_SECS);
    Ok(redirect(&state, &format!("/staff?{lang}")).cookie(session_cookie(&state, value, SESSION_SECS)).finish())
}

/// Signs out (the page's form, with its CSRF token).
#[utoipa::path(post, path = "/staff/signout", tag = "staff",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "csrf=<the page's token>"),
    responses((status = 303, description = "Signed out; back to the sign-in")))]
pub async fn sign_out(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> ApiResult<HttpResponse> {
    let token = state.secrets.staff_token.expose();
    let csrf = form_field(&body, "csrf").unwrap_or_default();
    match session_of(&state, &req) {
        Some(session) if constant_time_eq(csrf.as_bytes(), csrf_token(token, &session).as_bytes()) => {
            Ok(redirect(&state, "/staff").cookie(session_cookie(&state, String::new(), 0)).finish())
        }
        _ => Ok(redirect(&state, "/staff").finish()),
    }
}

/// The staff credential of a page request: a valid session cookie and the page's CSRF token in
/// `X-CSRF-Token` (a cross-site request has neither).
fn page_staff(state: &AppState, req: &HttpRequest) -> ApiResult<StaffAuth> {
    let token = state.secrets.staff_token.expose();
    let session = session_of(state, req).ok_or(ApiError::Unauthorized("sign in on the staff page first"))?;
    let sent = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !constant_time_eq(sent.as_bytes(), csrf_token(token, &session).as_bytes()) {
        return Err(ApiError::Unauthorized("the page's CSRF token is missing or wrong; reload the staff page"));
    }
    Ok(StaffAuth { credential: StaffAuth::fingerprint(token) })
}

/// The page's scan: the scan API's answer, for a signed-in page.
#[utoipa::path(post, path = "/staff/scan", tag = "staff", operation_id = "staff_scan", request_body = crate::scan::ScanRequest,
    params(("X-CSRF-Token" = String, Header, description = "The token the staff page carries")),
    responses((status = 200, body = crate::scan::ScanAnswer), (status = 401, response = crate::openapi::Unauthorized),
        (status = 404, response = crate::openapi::NotFound), (status = 422, response = crate::openapi::ValidationFailed),
        (status = 429, response = crate::openapi::RateLimited), (status = 503, response = crate::openapi::Unavailable)))]
pub async fn scan(state: web::Data<AppState>, req: HttpRequest, mut payload: web::Payload) -> ApiResult<HttpResponse> {
    let staff = page_staff(&state, &req)?;
    let body = read_json_body(&req, &mut payload, crate::app::extract::ADMIN_BODY_LIMIT).await?;
    let body = crate::app::extract::parse_json_object(&body)?;
    let view = crate::scan::perform(&state, &staff.credential, &req, &body).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The page's redemption: the redemption API's, for a signed-in page (the same conditional update).
#[utoipa::path(post, path = "/staff/redeem", tag = "staff", operation_id = "staff_redeem", request_body = crate::offers::RedemptionBody,
    params(("X-CSRF-Token" = String, Header, description = "The token the staff page carries")),
    responses((status = 200, description = "Redeemed now (with the offer's title in the staff's language)", body = crate::offers::CouponView),
        (status = 400, response = crate::openapi::InvalidJson), (status = 401, response = crate::openapi::Unauthorized),
        (status = 404, response = crate::openapi::NotFound), (status = 409, response = crate::openapi::AlreadyRedeemed),
        (status = 413, response = crate::openapi::PayloadTooLarge), (status = 415, response = crate::openapi::UnsupportedMediaType),
        (status = 422, response = crate::openapi::ValidationFailed), (status = 503, response = crate::openapi::Unavailable)))]
pub async fn redeem(
    state: web::Data<AppState>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let staff = page_staff(&state, &req)?;
    let body = read_json_body(&req, &mut payload, crate::app::extract::ADMIN_BODY_LIMIT).await?;
    let body = crate::app::extract::parse_json_object(&body)?;
    let body = RedemptionBody::from_object(&body, &crate::domain::Context::without_tiers())?;
    let coupon = crate::offers::perform_redemption(&state, &staff, &body.code, body.location.as_ref()).await?;
    let locale = state.passes.program().resolve_locale(crate::scan::first_language(&req).as_deref()).to_string();
    Ok(HttpResponse::Ok().json(CouponView::titled(&state, &coupon, crate::time_fmt::now_unix(), &locale)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_cannot_be_made_without_the_token() {
        let value = session_value("staff-token-0123456789", 2_000);
        assert!(session_valid("staff-token-0123456789", &value, 1_999));
        assert!(!session_valid("staff-token-0123456789", &value, 2_000), "expired");
        assert!(!session_valid("another-token-0123456789", &value, 1_000), "another token");
        let forged = value.replacen("2000", "9999", 1);
        assert!(!session_valid("staff-token-0123456789", &forged, 1_000), "a moved expiry");
        for junk in ["", ".", "x.y", "2000", "2000."] {
            assert!(!session_valid("staff-token-0123456789", junk, 1_000), "{junk}");
        }
        assert_ne!(csrf_token("t", &value), csrf_token("t", &session_value("t", 2_001)));
    }
}
