//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document, generated from the handlers' own annotations
//! and types (utoipa), with the deployment's public URL as its server.

use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::{Modify, OpenApi};

use crate::apple::web_service;
use crate::{ledger, members, ops};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tessera",
        description = "Loyalty cards in Apple Wallet and Google Wallet, kept live: the admin API, the ledger webhook, \
                       Apple's pass web service, the member links and operations. Every 4xx and 5xx answers \
                       `{\"error\": {\"code\", \"message\", \"details\"?}}`.",
        license(name = "Apache-2.0")
    ),
    paths(
        members::put_member, members::get_member, members::delete_member,
        ledger::webhook,
        crate::offers::put_offer, crate::offers::get_offer, crate::offers::delete_offer, crate::offers::grant,
        crate::offers::member_coupons, crate::offers::redeem, crate::offers::download_coupon,
        crate::coupon_links::coupon_google_link, crate::coupon_links::offer_image,
        crate::scan::scan, crate::scan::member_scans,
        crate::staff::page, crate::staff::sign_in, crate::staff::sign_out, crate::staff::scan,
        crate::staff::redeem,
        web_service::register, web_service::unregister, web_service::list_updated, web_service::latest_pass,
        web_service::log,
        crate::pages::member_page, crate::pages::download_pass, crate::pages::asset,
        crate::pages::google_image, crate::pages::google_tier_image, crate::google::callbacks::callback,
        ops::healthz, ops::metrics, openapi_json,
    ),
    // The domain types the paths' parameters name (request and answer bodies bring their own).
    components(schemas(crate::openapi::ErrorBody, crate::openapi::ErrorDetail, crate::error::FieldError,
        crate::domain::MemberId, crate::domain::DeviceLibraryId, crate::domain::SerialNumber, crate::domain::OfferId)),
    modifiers(&Components),
    tags(
        (name = "admin", description = "Members, with `Authorization: Bearer <admin token>`"),
        (name = "offers", description = "Offers, grants and members' coupons, with `Authorization: Bearer <admin token>`"),
        (name = "staff", description = "The staff page: sign-in with the staff token, then a session cookie"),
        (name = "scan", description = "Staff scans of members' cards, with `Authorization: Bearer <staff token>`"),
        (name = "webhook", description = "Ledger events from the loyalty backend, HMAC-signed"),
        (name = "apple-web-service", description = "Apple's PassKit web service, called by iPhones"),
        (name = "pages", description = "The member's links and the images and assets they show"),
        (name = "google", description = "Google Wallet's save and delete callbacks (ECv2SigningOnly-signed)"),
        (name = "operations", description = "Health, metrics and this document"),
    )
)]
struct ApiDoc;

/// The security schemes and the shared error responses.
struct Components;

impl Modify for Components {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            let mut scheme = Http::new(HttpAuthScheme::Bearer);
            scheme.description = Some(description.to_string());
            SecurityScheme::Http(scheme)
        };
        components.add_security_scheme("admin", bearer("The admin token (`tessera secrets` prints it)"));
        components.add_security_scheme("staff", bearer("The staff token (`tessera secrets` prints it)"));
        components.add_security_scheme(
            "applePass",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    "Authorization",
                    "`ApplePass <authenticationToken>` of the pass",
                ),
            )),
        );
        for (name, response) in crate::openapi::error_responses() {
            components.responses.insert(name, response);
        }
    }
}

/// The rendered document, made once per server.
pub struct Document(String);

impl Document {
    pub fn new(public_url: &str) -> Document {
        let mut doc = ApiDoc::openapi();
        doc.servers = Some(vec![Server::new(public_url)]);
        Document(doc.to_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")))
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json(document: web::Data<Document>) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(document.0.clone())
}
