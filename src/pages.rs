//! Member-facing links: the pass page (HTML) and the .pkpass download, both behind the member's random
//! public id so member IDs cannot be enumerated.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::AppState;
use crate::app::extract::segment;
use crate::app::pkpass::{ServedPass, pkpass_response};
use crate::error::{ApiError, ApiResult};
use crate::store::MemberRecord;
use crate::templates::{MemberFields, PageContext};

/// Public ids are 16 random bytes in base64url: 22 characters.
fn plausible_public_id(id: &str) -> bool {
    id.len() == 22 && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

fn link_id(req: &HttpRequest) -> ApiResult<String> {
    segment(req, "public_id").filter(|id| plausible_public_id(id)).ok_or_else(link_not_found)
}

fn link_not_found() -> ApiError {
    ApiError::not_found("no such card; check the link")
}

/// The member behind a link, read from the database: the page shows more than the pass (attributes,
/// Google's state), which may change without moving the pass's change generation.
async fn member_for_link(state: &AppState, req: &HttpRequest) -> ApiResult<Arc<MemberRecord>> {
    let public_id = link_id(req)?;
    Ok(Arc::new(state.store.member_by_public_id(&public_id).await?.ok_or_else(link_not_found)?))
}

/// `GET /m/{public_id}/pass.pkpass`: the member's signed pass.
#[utoipa::path(get, path = "/m/{public_id}/pass.pkpass", tag = "pages",
    params(("public_id" = String, Path, description = "The member's random public id (from `links.apple`)")),
    responses((status = 200, description = "The signed pass", content_type = "application/vnd.apple.pkpass"),
        (status = 304, description = "Not modified since If-Modified-Since"), (status = 404, response = crate::openapi::NotFound)))]
pub async fn download_pass(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    // The web service's lookup cache: everything the pass shows moves the change generation.
    let record = state.records.by_public_id(&state.store, &link_id(&req)?).await?.ok_or_else(link_not_found)?;
    pkpass_response(&state, req.headers(), &ServedPass::Card(record)).await
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

/// `GET /m/{public_id}`: the member's pass page.
#[utoipa::path(get, path = "/m/{public_id}", tag = "pages",
    params(("public_id" = String, Path, description = "The member's random public id (from `links.page`)")),
    responses((status = 200, description = "The pass page", content_type = "text/html"), (status = 404, response = crate::openapi::NotFound)))]
pub async fn member_page(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    let record = member_for_link(&state, &req).await?;
    let links = state.links(&record);
    let program = state.passes.program();
    let locale = program.resolve_locale(record.locale.as_deref());
    let attributes: serde_json::Value =
        serde_json::from_str(&record.attributes).unwrap_or_else(|_| serde_json::json!({}));
    let points_display = group_digits(record.points, locale);
    let qr = qr_svg(&links.page);
    let barcode = qr_svg(&program.barcodes.barcode(&program.name, &record.member_id));
    let android =
        req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).is_some_and(|ua| ua.contains("Android"));
    let google_url = match &state.google {
        Some(wallet) if !record.retired => {
            let (object, _) = state.store.google_object(&record.program, &record.member_id).await?;
            wallet.save_link(&record, &object).await.0
        }
        _ => None,
    };
    let ctx = PageContext {
        member: MemberFields {
            member_id: &record.member_id,
            display_name: record.name.as_deref().unwrap_or(&record.member_id),
            name: record.name.as_deref(),
            tier: &record.tier,
            points: record.points,
            locale,
            attributes: &attributes,
            latest_offer: None,
        },
        apple_url: &links.apple,
        google_url: google_url.as_deref(),
        google_configured: state.google.is_some(),
        assets_url: &format!("{}/assets", state.settings.public_url),
        page_url: &links.page,
        qr_svg: &qr,
        barcode_svg: &barcode,
        google_first: android,
        retired: record.retired,
        points_display: &points_display,
    };
    let html = program.render_page(locale, &ctx).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Everything the page shows is its own (inline or from this origin).
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
        ))
        .body(html))
}

/// The pages' assets, served by tessera (no third-party origin): the wallet marks of the member page's
/// buttons, and jsQR 1.4.0 (Apache-2.0, `pages_assets/vendor/jsQR.LICENSE`), the staff page's camera
/// decoder.
const ASSETS: &[(&str, &str, &str)] = &[
    ("google-wallet-mark.svg", "image/svg+xml", include_str!("pages_assets/google-wallet-mark.svg")),
    ("apple-wallet-mark.svg", "image/svg+xml", include_str!("pages_assets/apple-wallet-mark.svg")),
    ("jsQR.js", "text/javascript; charset=utf-8", include_str!("pages_assets/vendor/jsQR.js")),
];

/// `GET /assets/{name}`: the page's static assets.
#[utoipa::path(get, path = "/assets/{name}", tag = "pages",
    params(("name" = String, Path, description = "An asset of the member page, e.g. google-wallet-mark.svg")),
    responses((status = 200, description = "The asset (SVG or JavaScript)"), (status = 404, response = crate::openapi::NotFound)))]
pub async fn asset(req: HttpRequest) -> ApiResult<HttpResponse> {
    let name = segment(&req, "name").unwrap_or_default();
    let (_, content_type, body) =
        ASSETS.iter().find(|(n, _, _)| *n == name).ok_or_else(|| ApiError::not_found("no such asset"))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, *content_type))
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(*body))
}

/// `GET /google/images/{name}` and `/google/images/{tier}/{name}`: template images Google shows on the
/// card (programLogo, heroImage), which Google fetches from a public URL.
#[utoipa::path(get, path = "/google/images/{tier}/{name}", tag = "pages",
    params(("tier" = String, Path, description = "A tier of the program"), ("name" = String, Path, description = "An image file of the template, e.g. strip@3x.png")),
    responses((status = 200, description = "The image", content_type = "image/png"), (status = 404, response = crate::openapi::NotFound)))]
pub async fn google_tier_image(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    let tier = segment(&req, "tier").unwrap_or_default();
    template_image(&state, Some(&tier), &segment(&req, "name").unwrap_or_default())
}

/// The program's own images (the logo).
#[utoipa::path(get, path = "/google/images/{name}", tag = "pages",
    params(("name" = String, Path, description = "An image file of the template, e.g. logo@3x.png")),
    responses((status = 200, description = "The image", content_type = "image/png"), (status = 404, response = crate::openapi::NotFound)))]
pub async fn google_image(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    template_image(&state, None, &segment(&req, "name").unwrap_or_default())
}

fn template_image(state: &AppState, tier: Option<&str>, name: &str) -> ApiResult<HttpResponse> {
    let image = state.passes.program().image(tier, name).ok_or_else(|| ApiError::not_found("no such image"))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "image/png"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(image.to_vec()))
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
}
