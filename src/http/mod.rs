//! HTTP on actix-web: the route table (the one module that knows every handler), the request span and
//! metrics middleware, the JSON answers for unknown paths and wrong methods, and `Application`, which
//! serves and runs the push worker until shutdown.

mod application;
pub mod openapi;
mod refusals;

pub use application::{Application, apns_client};

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, Route, web};
use tracing::Instrument;

use crate::app::AppState;
use crate::apple::web_service;
use crate::error::ApiError;
use crate::google::callbacks as google_callbacks;
use crate::{ledger, members, offers, ops, pages, scan, staff};

/// Every route: a path (under the public URL's path) and its methods. `routes()` lists it for the
/// OpenAPI test, so a route cannot be served without being documented.
fn route_table() -> Vec<(&'static str, Vec<(Method, Route)>)> {
    vec![
        ("/healthz", vec![(Method::GET, web::get().to(ops::healthz))]),
        ("/metrics", vec![(Method::GET, web::get().to(ops::metrics))]),
        ("/api/v1/openapi.json", vec![(Method::GET, web::get().to(openapi::openapi_json))]),
        (
            "/api/v1/members/{member_id}",
            vec![
                (Method::GET, web::get().to(members::get_member)),
                (Method::PUT, web::put().to(members::put_member)),
                (Method::DELETE, web::delete().to(members::delete_member)),
            ],
        ),
        ("/api/v1/members/{member_id}/scans", vec![(Method::GET, web::get().to(scan::member_scans))]),
        ("/api/v1/members/{member_id}/coupons", vec![(Method::GET, web::get().to(offers::member_coupons))]),
        (
            "/api/v1/offers/{offer_id}",
            vec![
                (Method::GET, web::get().to(offers::get_offer)),
                (Method::PUT, web::put().to(offers::put_offer)),
                (Method::DELETE, web::delete().to(offers::delete_offer)),
            ],
        ),
        ("/api/v1/offers/{offer_id}/grants", vec![(Method::POST, web::post().to(offers::grant))]),
        ("/api/v1/redemptions", vec![(Method::POST, web::post().to(offers::redeem))]),
        ("/api/v1/scans", vec![(Method::POST, web::post().to(scan::scan))]),
        (
            "/v1/devices/{device}/registrations/{pass_type}/{serial}",
            vec![
                (Method::POST, web::post().to(web_service::register)),
                (Method::DELETE, web::delete().to(web_service::unregister)),
            ],
        ),
        (
            "/v1/devices/{device}/registrations/{pass_type}",
            vec![(Method::GET, web::get().to(web_service::list_updated))],
        ),
        ("/v1/passes/{pass_type}/{serial}", vec![(Method::GET, web::get().to(web_service::latest_pass))]),
        ("/v1/log", vec![(Method::POST, web::post().to(web_service::log))]),
        ("/webhooks/ledger", vec![(Method::POST, web::post().to(ledger::webhook))]),
        ("/m/{public_id}", vec![(Method::GET, web::get().to(pages::member_page))]),
        ("/m/{public_id}/pass.pkpass", vec![(Method::GET, web::get().to(pages::download_pass))]),
        ("/c/{coupon_id}/pass.pkpass", vec![(Method::GET, web::get().to(offers::download_coupon))]),
        ("/c/{coupon_id}/google", vec![(Method::GET, web::get().to(crate::coupon_links::coupon_google_link))]),
        (
            "/google/images/offers/{template}/{name}",
            vec![(Method::GET, web::get().to(crate::coupon_links::offer_image))],
        ),
        ("/assets/{name}", vec![(Method::GET, web::get().to(pages::asset))]),
        ("/staff", vec![(Method::GET, web::get().to(staff::page))]),
        ("/staff/session", vec![(Method::POST, web::post().to(staff::sign_in))]),
        ("/staff/signout", vec![(Method::POST, web::post().to(staff::sign_out))]),
        ("/staff/scan", vec![(Method::POST, web::post().to(staff::scan))]),
        ("/staff/redeem", vec![(Method::POST, web::post().to(staff::redeem))]),
        ("/google/images/{name}", vec![(Method::GET, web::get().to(pages::google_image))]),
        ("/google/images/{tier}/{name}", vec![(Method::GET, web::get().to(pages::google_tier_image))]),
        ("/google/callbacks", vec![(Method::POST, web::post().to(google_callbacks::callback))]),
    ]
}

/// (method, path) of every route the server answers, paths as written in the table.
pub fn routes() -> Vec<(Method, &'static str)> {
    route_table().into_iter().flat_map(|(path, methods)| methods.into_iter().map(move |(m, _)| (m, path))).collect()
}

pub(crate) async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("no such endpoint"))
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// The routes under the public URL's path; `/healthz` also answers at the root behind a path prefix.
pub(crate) fn configure(prefix: &str) -> impl FnOnce(&mut web::ServiceConfig) + '_ {
    move |config| {
        let mut scope = web::scope(prefix).default_service(web::to(not_found));
        for (path, methods) in route_table() {
            let mut resource = web::resource(path).default_service(web::to(method_not_allowed));
            for (_, route) in methods {
                resource = resource.route(route);
            }
            scope = scope.service(resource);
        }
        if !prefix.is_empty() {
            config.service(web::resource("/healthz").route(web::get().to(ops::healthz)));
        }
        config.service(scope);
    }
}

/// One span per request, and the request counters by route pattern.
pub(crate) async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let metrics = req.app_data::<web::Data<AppState>>().map(|s| s.metrics.clone());
    let span = tracing::info_span!("request", method = %req.method(), route = %route, status = tracing::field::Empty);
    let response = next.call(req).instrument(span.clone()).await?;
    let status = response.status().as_u16();
    span.record("status", status);
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(metrics) = metrics {
        metrics.record_request(&route, status, elapsed);
    }
    tracing::debug!(parent: &span, elapsed_ms = elapsed * 1e3, "answered");
    Ok(response)
}
