//! The scan API: `POST /api/v1/scans` (staff token) answers who the member behind a barcode is, their
//! tier, balance, perks and pass status, and records the scan; `GET /api/v1/members/{id}/scans` (admin)
//! lists a member's recent scans.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::app::extract::{AdminAuth, JsonObject, StaffAuth};
use crate::domain::{Barcode, CouponCode, FromObject, Location, MemberId, json_object};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::members::member_id_from_path;
use crate::offers::CouponView;
use crate::store::ScanRecord;
use crate::templates::{BarcodeRefusal, BarcodeSigning};

/// Scans listed by `GET /api/v1/members/{id}/scans`.
const RECENT_SCANS: i64 = 50;

json_object! {
    unknown_fields: ignored,
    /// The body of `POST /api/v1/scans` (and of the staff page's scan).
    pub struct ScanRequest {
        pub barcode: Barcode,
        pub location: Option<Location>,
    }
}

#[derive(Serialize, ToSchema)]
pub struct ScanView {
    /// `card`.
    pub kind: &'static str,
    pub member_id: String,
    /// The name, or the member id when there is none.
    pub name: String,
    pub tier: String,
    /// The tier's name in the staff's language (Accept-Language).
    pub tier_label: String,
    /// The tier's colour, `#rrggbb`.
    pub tier_color: String,
    pub points: i64,
    /// The tier's perks in the staff's language.
    pub perks: Vec<String>,
    /// `active`, or `retired` for a card that is no longer valid.
    pub status: &'static str,
    pub apple: ScanApple,
    pub google: ScanGoogle,
    /// RFC 3339.
    pub scanned_at: String,
    /// The member's coupons that can be redeemed now.
    pub coupons: Vec<CouponView>,
}

/// What a scan of a coupon's code answers (nothing is redeemed).
#[derive(Serialize, ToSchema)]
pub struct CouponScanView {
    /// `coupon`.
    pub kind: &'static str,
    pub coupon: CouponView,
    pub member_id: String,
    /// The name, or the member id when there is none.
    pub name: String,
    pub redeemable: bool,
    /// Why not: already-redeemed, coupon-expired, coupon-withdrawn or coupon-not-yet-valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The reason in plain words (when it was redeemed, and where).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A scan's answer: a card or a coupon.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum ScanAnswer {
    Card(ScanView),
    Coupon(CouponScanView),
}

/// The coupon a scanned code names, if it is one of this program's.
async fn coupon_scan(state: &AppState, barcode: &Barcode, locale: &str) -> ApiResult<Option<CouponScanView>> {
    let Ok(code) = barcode.as_str().parse::<CouponCode>() else { return Ok(None) };
    let Some(coupon) = state.store.coupon_by_code(&state.settings.program, code.as_str()).await? else {
        return Ok(None);
    };
    let now = crate::time_fmt::now_unix();
    let why = crate::plan::offers::redeemable(&coupon, now).err().map(|why| crate::offers::refusal(&why));
    Ok(Some(CouponScanView {
        kind: "coupon",
        coupon: CouponView::titled(state, &coupon, now, locale),
        member_id: coupon.member_id.clone(),
        name: coupon.member_name.clone().unwrap_or_else(|| coupon.member_id.clone()),
        redeemable: why.is_none(),
        reason: why.as_ref().map(ApiError::code),
        message: why.map(|e| e.to_string()),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ScanApple {
    /// Devices that registered the pass.
    pub devices: i64,
    pub voided: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ScanGoogle {
    pub saved: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ScanList {
    pub scans: Vec<ScanEntry>,
}

#[derive(Serialize, ToSchema)]
pub struct ScanEntry {
    /// RFC 3339, with milliseconds.
    pub scanned_at: String,
    /// Which staff credential scanned: a fingerprint of the token, never the token.
    pub staff: String,
    pub location: Option<String>,
}

/// The member id a barcode carries, if it can be one: the code itself, or with signed barcodes the
/// member id whose signature it carries.
pub fn member_of_barcode(barcode: &Barcode, signing: &BarcodeSigning, program: &str) -> Result<MemberId, ApiError> {
    let member_id = signing.member_of(program, barcode.as_str()).map_err(|refusal| {
        let why = match refusal {
            BarcodeRefusal::Unsigned => "carries no signature, and this program's cards are signed",
            BarcodeRefusal::Forged => "has a signature this program did not make: not one of its cards",
        };
        ApiError::validation(vec![FieldError::new("barcode", why)])
    })?;
    member_id.parse().map_err(|m| {
        ApiError::validation(vec![FieldError::new("barcode", format!("is not a member card's code: it {m}"))])
    })
}

/// The first language of an Accept-Language header (`th-TH,th;q=0.9` → `th-TH`).
pub fn first_language(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    let first = value.split(',').next()?.split(';').next()?.trim();
    (!first.is_empty() && first != "*").then(|| first.to_string())
}

/// Looks a card up and records the scan.
#[utoipa::path(post, path = "/api/v1/scans", tag = "scan", request_body = ScanRequest,
    params(("Accept-Language" = Option<String>, Header, description = "The staff's language for the tier and perks (en, th, vi, …)")),
    responses((status = 200, description = "The member behind the barcode (`kind: card`, also for a retired card: `status: retired`), or the coupon behind a coupon's code (`kind: coupon`; nothing is redeemed)", body = ScanAnswer),
        (status = 400, response = crate::openapi::InvalidJson), (status = 401, response = crate::openapi::Unauthorized),
        (status = 404, response = crate::openapi::NotFound), (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::ValidationFailed),
        (status = 429, response = crate::openapi::RateLimited), (status = 503, response = crate::openapi::Unavailable),
        (status = 500, response = crate::openapi::Internal)),
    security(("staff" = [])))]
#[tracing::instrument(name = "scan", skip_all)]
pub async fn scan(
    state: web::Data<AppState>,
    staff: StaffAuth,
    req: HttpRequest,
    JsonObject(body): JsonObject,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(perform(&state, &staff.credential, &req, &body).await?))
}

/// One scan by `credential` (the API's or the staff page's): limited, checked, looked up, recorded.
pub async fn perform(
    state: &AppState,
    credential: &str,
    req: &HttpRequest,
    body: &Map<String, Value>,
) -> ApiResult<ScanAnswer> {
    state.scan_limiter.take(credential, 1).map_err(ApiError::rate_limited)?;
    let templates = state.passes.program();
    let request = ScanRequest::from_object(body, &templates.parse_context())?;
    let locale = templates.resolve_locale(first_language(req).as_deref());
    if let Some(coupon) = coupon_scan(state, &request.barcode, locale).await? {
        return Ok(ScanAnswer::Coupon(coupon));
    }
    let program = &state.settings.program;
    let member_id = member_of_barcode(&request.barcode, &templates.barcodes, program)?;
    let target = state
        .store
        .scan_target(program, &member_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no card of this program has that code"))?;
    let scanned_at = crate::time_fmt::now_unix_ms();
    let location = request.location.map(Location::into_string);
    let record = ScanRecord { scanned_at, staff: credential.to_string(), location };
    state.scans.record(program, &member_id, record).await?;
    let member = &target.member;
    let now = scanned_at / 1000;
    let coupons = state.store.member_coupons(program, &member.member_id, now, 50, 0).await?;
    let coupons = coupons
        .iter()
        .filter(|c| crate::plan::offers::redeemable(c, now).is_ok())
        .map(|c| CouponView::titled(state, c, now, locale))
        .collect();
    Ok(ScanAnswer::Card(ScanView {
        kind: "card",
        member_id: member.member_id.clone(),
        name: member.name.clone().unwrap_or_else(|| member.member_id.clone()),
        tier: member.tier.clone(),
        tier_label: templates.tier_label(&member.tier, locale),
        tier_color: templates.tier_color(&member.tier),
        points: member.points,
        perks: templates.perks(&member.tier, locale),
        status: if member.retired { "retired" } else { "active" },
        apple: ScanApple { devices: target.devices, voided: member.voided },
        google: ScanGoogle { saved: target.google_saved },
        scanned_at: crate::time_fmt::rfc3339_ms(scanned_at),
        coupons,
    }))
}

/// A member's recent scans, newest first (at most 50).
#[utoipa::path(get, path = "/api/v1/members/{member_id}/scans", tag = "admin",
    params(("member_id" = MemberId, Path)),
    responses((status = 200, body = ScanList), (status = 401, response = crate::openapi::Unauthorized),
        (status = 404, response = crate::openapi::NotFound), (status = 422, response = crate::openapi::ValidationFailed),
        (status = 503, response = crate::openapi::Unavailable), (status = 500, response = crate::openapi::Internal)),
    security(("admin" = [])))]
pub async fn member_scans(state: web::Data<AppState>, _auth: AdminAuth, req: HttpRequest) -> ApiResult<HttpResponse> {
    let member_id = member_id_from_path(&req)?;
    let program = &state.settings.program;
    if state.store.member(program, member_id.as_str()).await?.is_none() {
        return Err(ApiError::not_found(format!("no member {member_id}")));
    }
    let scans = state.store.recent_scans(program, &member_id, RECENT_SCANS).await?;
    let scans = scans
        .into_iter()
        .map(|s| ScanEntry {
            scanned_at: crate::time_fmt::rfc3339_ms(s.scanned_at),
            staff: s.staff,
            location: s.location,
        })
        .collect();
    Ok(HttpResponse::Ok().json(ScanList { scans }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<ScanRequest, crate::domain::Faults> {
        ScanRequest::from_value(&v, &crate::domain::Context::without_tiers())
    }

    #[test]
    fn scan_bodies_are_checked_field_by_field() {
        let ok = parse(serde_json::json!({"barcode": " M-1 ", "location": "Counter 2"})).unwrap();
        assert_eq!((ok.barcode.as_str(), ok.location.as_ref().map(Location::as_str)), ("M-1", Some("Counter 2")));
        let blank = parse(serde_json::json!({"barcode": "M-1", "location": " ", "other": 1})).unwrap();
        assert_eq!(blank.location, None, "a blank location is none, and other fields pass");
        for (bad, faults) in [
            (serde_json::json!({}), 1),
            (serde_json::json!({"barcode": ""}), 1),
            (serde_json::json!({"barcode": "   "}), 1),
            (serde_json::json!({"barcode": 42}), 1),
            (serde_json::json!({"barcode": "x".repeat(5000)}), 1),
            (serde_json::json!({"barcode": "M-1\u{0}"}), 1),
            (serde_json::json!({"barcode": "M-1", "location": "l".repeat(101)}), 1),
            (serde_json::json!({"barcode": "M-1", "location": 7}), 1),
            (serde_json::json!({"barcode": 1, "location": 7}), 2),
        ] {
            assert_eq!(parse(bad.clone()).err().map(|f| f.len()), Some(faults), "{bad}");
        }
    }

    #[test]
    fn only_what_can_be_a_member_id_is_looked_up() {
        let plain = BarcodeSigning::new(false);
        let barcode = |text: &str| text.parse::<Barcode>().unwrap();
        assert_eq!(member_of_barcode(&barcode("M-1001"), &plain, "default").unwrap().as_str(), "M-1001");
        for garbage in ["' OR 1=1 --", "M 1", "..", "ก", "a/b", &"9".repeat(65)] {
            assert!(member_of_barcode(&barcode(garbage), &plain, "default").is_err(), "{garbage}");
        }
        let signed = BarcodeSigning::new(true);
        signed.set_key(b"key");
        let code = signed.barcode("default", "M-1001");
        assert_eq!(member_of_barcode(&barcode(&code), &signed, "default").unwrap().as_str(), "M-1001");
        assert!(member_of_barcode(&barcode("M-1001"), &signed, "default").is_err());
        assert!(member_of_barcode(&barcode("' OR 1=1 --:abcdefabcdef"), &signed, "default").is_err());
    }
}
