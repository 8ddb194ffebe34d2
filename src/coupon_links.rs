//! A coupon's Google links: `GET /c/{coupon_id}/google` (the coupon's own "Add to Google Wallet" link,
//! for members without a saved loyalty card; it inserts the OfferObject first so the link carries only
//! ids) and `GET /google/images/offers/{template}/{name}` (the offer images Google fetches).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::AppState;
use crate::app::extract::segment;
use crate::error::{ApiError, ApiResult};
use crate::google::offers::object_state;

/// Redirects to Google's save page for the coupon (its random id is the link's secret).
#[utoipa::path(get, path = "/c/{coupon_id}/google", tag = "pages", params(("coupon_id" = String, Path)),
    responses((status = 302, description = "To Google Wallet's save page for the coupon"),
        (status = 404, response = crate::openapi::NotFound),
        (status = 503, description = "Google cannot be reached and the coupon is too large for a self-contained link; retry")))]
pub async fn coupon_google_link(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    let not_found = || ApiError::not_found("no such coupon; ask for a new link");
    let wallet = state.google.as_ref().ok_or_else(not_found)?;
    let id = segment(&req, "coupon_id").filter(|id| id.len() <= 64).ok_or_else(not_found)?;
    let target = state.store.offer_targets(&[&id]).await?.into_iter().next().ok_or_else(not_found)?;
    let wanted = object_state(target.coupon.state_at(crate::time_fmt::now_unix()));
    match wallet.coupon_save_link(&target, wanted).await {
        Some(url) => Ok(HttpResponse::Found()
            .insert_header((header::LOCATION, url))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish()),
        None => {
            Err(ApiError::Unavailable("Google Wallet cannot be reached right now; try the link again shortly".into()))
        }
    }
}

/// An offer template's image, for the OfferClass Google shows.
#[utoipa::path(get, path = "/google/images/offers/{template}/{name}", tag = "pages",
    params(("template" = String, Path, description = "An offer template of the program"), ("name" = String, Path, description = "An image file of the template, e.g. strip@3x.png")),
    responses((status = 200, description = "The image", content_type = "image/png"), (status = 404, response = crate::openapi::NotFound)))]
pub async fn offer_image(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    let (template, name) = (segment(&req, "template").unwrap_or_default(), segment(&req, "name").unwrap_or_default());
    let program = state.passes.program();
    let image = program
        .offer(&template)
        .and_then(|o| o.images.get(&name))
        .ok_or_else(|| ApiError::not_found("no such image"))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "image/png"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(image.clone()))
}
