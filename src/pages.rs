//! Member-facing links: the pass page (HTML) and the .pkpass download, both behind the member's random
//! public id so member IDs cannot be enumerated.

use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::apple::PassData;
use crate::error::{ApiError, ApiResult};
use crate::http::AppState;
use crate::store::MemberRecord;
use crate::templates::{MemberFields, PageContext};

/// Public ids are 16 random bytes in base64url: 22 characters.
fn plausible_public_id(id: &str) -> bool {
    id.len() == 22 && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

type LinkPath = Result<Path<String>, axum::extract::rejection::PathRejection>;

async fn member_for_link(state: &AppState, path: LinkPath) -> ApiResult<MemberRecord> {
    let not_found = || ApiError::not_found("no such card; check the link");
    let Ok(Path(public_id)) = path else { return Err(not_found()) };
    let public_id = public_id.as_str();
    if !plausible_public_id(public_id) {
        return Err(not_found());
    }
    state.store.member_by_public_id(public_id).await?.ok_or_else(not_found)
}

/// Builds the signed pass of a stored member (shared by the download link and the web service).
pub fn build_pass(state: &AppState, record: &MemberRecord) -> ApiResult<Vec<u8>> {
    let started = Instant::now();
    let attributes: serde_json::Value =
        serde_json::from_str(&record.attributes).unwrap_or_else(|_| serde_json::json!({}));
    let data = PassData {
        serial_number: &record.serial_number,
        authentication_token: &record.authentication_token,
        voided: record.voided,
        member_id: &record.member_id,
        name: record.name.as_deref(),
        tier: &record.tier,
        points: record.points,
        locale: record.locale.as_deref(),
        attributes: &attributes,
        modified_at: record.modified_at,
    };
    match state.passes.build(&data) {
        Ok(bytes) => {
            state.metrics.passes_built.fetch_add(1, Ordering::Relaxed);
            state.metrics.pass_build_duration.observe(started.elapsed().as_secs_f64());
            Ok(bytes)
        }
        Err(e) => {
            state.metrics.pass_build_failures.fetch_add(1, Ordering::Relaxed);
            Err(ApiError::Internal(anyhow::anyhow!("building the pass of {} failed: {e}", record.member_id)))
        }
    }
}

/// True when the request's If-Modified-Since is at or after `modified_at` (HTTP dates have one-second
/// resolution; an unreadable header counts as absent).
pub fn not_modified_since(headers: &HeaderMap, modified_at: i64) -> bool {
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::time_fmt::parse_http_date)
        .is_some_and(|since| since >= modified_at)
}

/// The .pkpass response: content type, filename, Last-Modified; 304 when the client has it already.
/// The signature is a millisecond of CPU: it runs on the blocking pool so it never holds up the async
/// workers (which also answer the cheap 304s).
pub async fn pkpass_response(state: &AppState, headers: &HeaderMap, record: &MemberRecord) -> ApiResult<Response> {
    let last_modified =
        HeaderValue::from_str(&crate::time_fmt::http_date(record.modified_at)).expect("an HTTP date is a valid header");
    if not_modified_since(headers, record.modified_at) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::LAST_MODIFIED, last_modified)]).into_response());
    }
    let (task_state, task_record) = (state.clone(), record.clone());
    let bytes = tokio::task::spawn_blocking(move || build_pass(&task_state, &task_record))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("the pass build task failed: {e}")))??;
    let disposition = format!("attachment; filename=\"{}.pkpass\"", record.member_id);
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.apple.pkpass")),
            (header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).expect("member IDs are header-safe")),
            (header::LAST_MODIFIED, last_modified),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        bytes,
    )
        .into_response())
}

pub async fn download_pass(State(state): State<AppState>, path: LinkPath, headers: HeaderMap) -> ApiResult<Response> {
    let record = member_for_link(&state, path).await?;
    pkpass_response(&state, &headers, &record).await
}

/// `1250` → `1,250` (`1.250` in Vietnamese).
pub fn group_digits(n: i64, locale: &str) -> String {
    let sep = if locale == "vi" { '.' } else { ',' };
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

fn qr_svg(data: &str) -> String {
    match qrcode::QrCode::new(data.as_bytes()) {
        Ok(code) => code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(160, 160).quiet_zone(true).build(),
        Err(_) => String::new(),
    }
}

pub async fn member_page(State(state): State<AppState>, path: LinkPath) -> ApiResult<Response> {
    let record = member_for_link(&state, path).await?;
    let links = crate::members::links(&state.settings.public_url, &record);
    let program = state.passes.program();
    let locale = program.resolve_locale(record.locale.as_deref());
    let attributes: serde_json::Value =
        serde_json::from_str(&record.attributes).unwrap_or_else(|_| serde_json::json!({}));
    let points_display = group_digits(record.points, locale);
    let qr = qr_svg(&links.page);
    let ctx = PageContext {
        member: MemberFields {
            member_id: &record.member_id,
            display_name: record.name.as_deref().unwrap_or(&record.member_id),
            name: record.name.as_deref(),
            tier: &record.tier,
            points: record.points,
            locale,
            attributes: &attributes,
        },
        apple_url: &links.apple,
        google_url: None,
        page_url: &links.page,
        qr_svg: &qr,
        retired: record.retired,
        points_display: &points_display,
    };
    let html = program.render_page(locale, &ctx).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(([(header::CACHE_CONTROL, "no-cache")], Html(html)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_group_by_locale() {
        assert_eq!(group_digits(0, "en"), "0");
        assert_eq!(group_digits(1250, "en"), "1,250");
        assert_eq!(group_digits(1_000_000_000_000, "th"), "1,000,000,000,000");
        assert_eq!(group_digits(1250, "vi"), "1.250");
        assert_eq!(group_digits(999, "en"), "999");
    }

    #[test]
    fn if_modified_since_is_compared_at_second_resolution() {
        let mut headers = HeaderMap::new();
        assert!(!not_modified_since(&headers, 100));
        headers.insert(header::IF_MODIFIED_SINCE, HeaderValue::from_str(&crate::time_fmt::http_date(100)).unwrap());
        assert!(not_modified_since(&headers, 100));
        assert!(!not_modified_since(&headers, 101));
        headers.insert(header::IF_MODIFIED_SINCE, HeaderValue::from_static("garbage"));
        assert!(!not_modified_since(&headers, 100));
    }
}
