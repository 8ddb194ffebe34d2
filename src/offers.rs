//! The offers API: `PUT`, `GET`, `DELETE /api/v1/offers/{offer_id}`, grants, a member's coupons, the
//! coupon's .pkpass link, and redemptions at the counter. Thin handlers: the bodies are parsed into
//! domain values, the decisions are `plan::offers`, the writes the store's.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::app::extract::{AdminAuth, JsonObject, StaffAuth, parse_json_object, path_value, read_json_body, segment};
use crate::app::pkpass::{ServedPass, pkpass_response};
use crate::domain::{
    CouponCode, FromObject, Instant, Location, MAX_GRANT, MemberId, OfferId, OfferTemplateName, PerMember, Quota,
    json_object,
};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::ids::RandomIds;
use crate::model::{CouponCounts, CouponRecord, OfferRecord};
use crate::plan::offers::{GrantRefusal, Unredeemable, decide_grant, redeemable};
use crate::store::{GrantOutcome, OfferPutRefusal, OfferSpec, RedeemFailure, Redemption};
use crate::time_fmt::{now_unix, rfc3339};

json_object! {
    unknown_fields: refused("offer"),
    /// The body of `PUT /api/v1/offers/{offer_id}`. Once coupons are granted, the template and window
    /// stay as they are (the coupons show them); the limits may change.
    pub struct OfferPut {
        /// A folder under templates/<program>/offers/.
        pub template: OfferTemplateName,
        pub valid_from: Instant,
        /// After `valid_from`; coupons expire then.
        pub valid_until: Instant,
        /// Coupons each member gets from a grant [1].
        pub per_member: Option<PerMember>,
        /// Coupons granted in all at most (none: no limit).
        pub quota: Option<Quota>,
    }
}

/// 10,000 member ids of up to 64 characters, quoted and separated.
pub const GRANT_BODY_LIMIT: usize = 1024 * 1024;

json_object! {
    unknown_fields: refused("grant"),
    /// The body of `POST /api/v1/offers/{offer_id}/grants`: 1 to 10,000 member ids.
    pub struct GrantBody {
        pub member_ids: Vec<MemberId>,
    }
}

json_object! {
    unknown_fields: refused("redemption"),
    /// The body of `POST /api/v1/redemptions`.
    pub struct RedemptionBody {
        /// The code on the coupon (its barcode).
        pub code: CouponCode,
        /// Where it is redeemed (a shop, a counter).
        pub location: Option<Location>,
    }
}

/// The offer JSON.
#[derive(Serialize, ToSchema)]
pub struct OfferView {
    pub offer_id: String,
    pub template: String,
    /// RFC 3339.
    pub valid_from: String,
    pub valid_until: String,
    pub per_member: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<i64>,
    /// active or withdrawn.
    pub state: &'static str,
    pub counts: CouponCounts,
}

impl OfferView {
    pub fn new(offer: &OfferRecord) -> OfferView {
        OfferView {
            offer_id: offer.offer_id.clone(),
            template: offer.template.clone(),
            valid_from: rfc3339(offer.valid_from),
            valid_until: rfc3339(offer.valid_until),
            per_member: offer.per_member,
            quota: offer.quota,
            state: if offer.withdrawn_at.is_some() { "withdrawn" } else { "active" },
            counts: offer.counts,
        }
    }
}

/// A coupon JSON.
#[derive(Serialize, ToSchema, Clone)]
pub struct CouponView {
    pub coupon_id: String,
    pub offer_id: String,
    pub member_id: String,
    pub code: String,
    /// active, redeemed, expired or withdrawn.
    pub state: &'static str,
    pub valid_from: String,
    pub valid_until: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redeemed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redeemed_location: Option<String>,
    pub links: CouponLinks,
    /// The offer's title in the staff's language (scan answers and the staff page's redemptions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

#[derive(Serialize, ToSchema, Clone)]
pub struct CouponLinks {
    /// The coupon's .pkpass download (an Apple coupon pass).
    pub apple: String,
    /// The coupon's "Add to Google Wallet" link (redirects to Google's save page), when Google Wallet is
    /// configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub google: Option<String>,
}

impl CouponView {
    pub fn new(state: &AppState, coupon: &CouponRecord, now: i64) -> CouponView {
        CouponView {
            coupon_id: coupon.coupon_id.clone(),
            offer_id: coupon.offer_id.clone(),
            member_id: coupon.member_id.clone(),
            code: coupon.code.clone(),
            state: coupon.state_at(now).as_str(),
            valid_from: rfc3339(coupon.valid_from),
            valid_until: rfc3339(coupon.valid_until),
            redeemed_at: coupon.redeemed_at.map(rfc3339),
            redeemed_location: coupon.redeemed_location.clone(),
            links: CouponLinks {
                apple: format!("{}/c/{}/pass.pkpass", state.settings.public_url, coupon.coupon_id),
                google: state
                    .google
                    .as_ref()
                    .map(|_| format!("{}/c/{}/google", state.settings.public_url, coupon.coupon_id)),
            },
            title: None,
        }
    }

    /// The view with the offer's title in `locale`.
    pub fn titled(state: &AppState, coupon: &CouponRecord, now: i64, locale: &str) -> CouponView {
        CouponView { title: Some(offer_title(state, &coupon.template, locale)), ..CouponView::new(state, coupon, now) }
    }
}

/// An offer template's title in `locale` (the template's name if it is gone).
pub fn offer_title(state: &AppState, template: &str, locale: &str) -> String {
    let program = state.passes.program();
    program.offer(template).map_or_else(|| template.to_string(), |o| program.text(&o.design.title, locale))
}

/// The answer to a grant.
#[derive(Serialize, ToSchema)]
pub struct GrantView {
    /// Members given coupons now.
    pub granted: usize,
    /// Members who held coupons of this offer already (nothing changed for them).
    pub already: usize,
    pub unknown: Vec<String>,
    pub retired: Vec<String>,
}

fn offer_id_from_path(req: &HttpRequest) -> ApiResult<OfferId> {
    path_value(req, "offer_id", "offer_id")
}

fn no_offer(offer_id: &OfferId) -> ApiError {
    ApiError::not_found(format!("no offer {offer_id}"))
}

fn offer_withdrawn(offer_id: &OfferId) -> ApiError {
    let message = format!("offer {offer_id} was withdrawn; it takes no more grants or changes");
    ApiError::Conflict { code: "offer-withdrawn", message, details: None }
}

/// Creates or changes an offer.
#[utoipa::path(put, path = "/api/v1/offers/{offer_id}", tag = "offers",
    params(("offer_id" = OfferId, Path)), request_body = OfferPut,
    responses((status = 201, description = "Created", body = OfferView), (status = 200, description = "Changed", body = OfferView),
        (status = 400, response = crate::openapi::InvalidJson), (status = 401, response = crate::openapi::Unauthorized),
        (status = 409, response = crate::openapi::OfferWithdrawn), (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::ValidationFailed),
        (status = 503, response = crate::openapi::Unavailable)),
    security(("admin" = [])))]
pub async fn put_offer(
    state: web::Data<AppState>,
    _auth: AdminAuth,
    req: HttpRequest,
    JsonObject(body): JsonObject,
) -> ApiResult<HttpResponse> {
    let offer_id = offer_id_from_path(&req)?;
    let put = OfferPut::from_object(&body, &state.passes.program().parse_context())?;
    if put.valid_until <= put.valid_from {
        return Err(ApiError::validation(vec![FieldError::new("valid_until", "must be after valid_from")]));
    }
    let spec = OfferSpec {
        template: put.template.into_string(),
        valid_from: put.valid_from.unix(),
        valid_until: put.valid_until.unix(),
        per_member: put.per_member.map_or(1, PerMember::get),
        quota: put.quota.map(Quota::get),
    };
    let program = &state.settings.program;
    match state.store.put_offer(program, offer_id.as_str(), &spec, now_unix()).await? {
        Ok((offer, created)) => {
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            Ok(HttpResponse::build(status).json(OfferView::new(&offer)))
        }
        Err(OfferPutRefusal::Withdrawn) => Err(offer_withdrawn(&offer_id)),
        Err(OfferPutRefusal::Granted { granted }) => Err(ApiError::validation(vec![FieldError::new(
            "template",
            format!(
                "{granted} coupons of this offer exist and show its template and window, which stay as they are; make a new offer instead"
            ),
        )])),
    }
}

/// Answers an offer with its coupons counted.
#[utoipa::path(get, path = "/api/v1/offers/{offer_id}", tag = "offers", params(("offer_id" = OfferId, Path)),
    responses((status = 200, body = OfferView), (status = 401, response = crate::openapi::Unauthorized),
        (status = 404, response = crate::openapi::NotFound), (status = 422, response = crate::openapi::ValidationFailed),
        (status = 503, response = crate::openapi::Unavailable)),
    security(("admin" = [])))]
pub async fn get_offer(state: web::Data<AppState>, _auth: AdminAuth, req: HttpRequest) -> ApiResult<HttpResponse> {
    let offer_id = offer_id_from_path(&req)?;
    let offer = state.store.offer(&state.settings.program, offer_id.as_str(), now_unix()).await?;
    Ok(HttpResponse::Ok().json(OfferView::new(&offer.ok_or_else(|| no_offer(&offer_id))?)))
}

/// Withdraws an offer (idempotent): every coupon not yet redeemed is withdrawn and its pass voided.
#[utoipa::path(delete, path = "/api/v1/offers/{offer_id}", tag = "offers", params(("offer_id" = OfferId, Path)),
    responses((status = 200, description = "Withdrawn (`state: withdrawn`)", body = OfferView),
        (status = 401, response = crate::openapi::Unauthorized), (status = 404, response = crate::openapi::NotFound),
        (status = 422, response = crate::openapi::ValidationFailed), (status = 503, response = crate::openapi::Unavailable)),
    security(("admin" = [])))]
pub async fn delete_offer(state: web::Data<AppState>, _auth: AdminAuth, req: HttpRequest) -> ApiResult<HttpResponse> {
    let offer_id = offer_id_from_path(&req)?;
    let offer = state.store.withdraw_offer(&state.settings.program, offer_id.as_str(), now_unix()).await?;
    let offer = offer.ok_or_else(|| no_offer(&offer_id))?;
    tracing::info!(offer_id = %offer_id, withdrawn = offer.counts.withdrawn, "offer withdrawn");
    Ok(HttpResponse::Ok().json(OfferView::new(&offer)))
}

/// Grants the offer to up to 10,000 members in one transaction (idempotent per member).
#[utoipa::path(post, path = "/api/v1/offers/{offer_id}/grants", tag = "offers", params(("offer_id" = OfferId, Path)),
    request_body = GrantBody,
    responses((status = 200, body = GrantView), (status = 400, response = crate::openapi::InvalidJson),
        (status = 401, response = crate::openapi::Unauthorized), (status = 404, response = crate::openapi::NotFound),
        (status = 409, response = crate::openapi::OfferWithdrawn), (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 415, response = crate::openapi::UnsupportedMediaType), (status = 422, response = crate::openapi::ValidationFailed),
        (status = 503, response = crate::openapi::Unavailable)),
    security(("admin" = [])))]
#[tracing::instrument(name = "grant offer", skip_all, fields(offer_id = tracing::field::Empty, members = tracing::field::Empty))]
pub async fn grant(
    state: web::Data<AppState>,
    _auth: AdminAuth,
    req: HttpRequest,
    mut payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let offer_id = offer_id_from_path(&req)?;
    let body = read_json_body(&req, &mut payload, GRANT_BODY_LIMIT).await?;
    let body = parse_json_object(&body)?;
    let grant = GrantBody::from_object(&body, &state.passes.program().parse_context())?;
    if grant.member_ids.is_empty() || grant.member_ids.len() > MAX_GRANT {
        let message = format!("must list 1 to {MAX_GRANT} member ids, not {}", grant.member_ids.len());
        return Err(ApiError::validation(vec![FieldError::new("member_ids", message)]));
    }
    tracing::Span::current().record("offer_id", offer_id.as_str()).record("members", grant.member_ids.len());
    let identity = state.passes.identity();
    let identity = (identity.pass_type_id.as_str(), identity.team_id.as_str());
    let outcome = state
        .store
        .grant_offer(&state.settings.program, offer_id.as_str(), &grant.member_ids, identity, now_unix(), |snapshot| {
            decide_grant(snapshot, &grant.member_ids, &mut RandomIds)
        })
        .await?;
    let plan = match outcome {
        GrantOutcome::Granted(plan) => plan,
        GrantOutcome::NoOffer => return Err(no_offer(&offer_id)),
        GrantOutcome::Refused(GrantRefusal::Withdrawn) => return Err(offer_withdrawn(&offer_id)),
        GrantOutcome::Refused(GrantRefusal::Ended { valid_until }) => {
            let message =
                format!("the offer ended at {}; a coupon granted now would be born expired", rfc3339(valid_until));
            return Err(ApiError::Conflict { code: "coupon-expired", message, details: None });
        }
        GrantOutcome::Refused(GrantRefusal::Quota { left, needed }) => {
            let message =
                format!("the offer's quota leaves {left} coupons and this grant needs {needed}; nothing was granted");
            return Err(ApiError::validation(vec![FieldError::new("member_ids", message)]));
        }
    };
    tracing::info!(granted = plan.granted.len(), coupons = plan.coupons.len(), "offer granted");
    Ok(HttpResponse::Ok().json(GrantView {
        granted: plan.granted.len(),
        already: plan.already.len(),
        unknown: plan.unknown,
        retired: plan.retired,
    }))
}

#[derive(serde::Deserialize)]
struct PageQuery {
    limit: Option<i64>,
    offset: Option<i64>,
}

/// A member's coupons, active first (`limit` 1 to 200 [50], `offset` pages).
#[utoipa::path(get, path = "/api/v1/members/{member_id}/coupons", tag = "offers",
    params(("member_id" = MemberId, Path), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, description = "`{\"coupons\": [...]}`", body = Vec<CouponView>),
        (status = 401, response = crate::openapi::Unauthorized), (status = 404, response = crate::openapi::NotFound),
        (status = 422, response = crate::openapi::ValidationFailed), (status = 503, response = crate::openapi::Unavailable)),
    security(("admin" = [])))]
pub async fn member_coupons(state: web::Data<AppState>, _auth: AdminAuth, req: HttpRequest) -> ApiResult<HttpResponse> {
    let member_id: MemberId = path_value(&req, "member_id", "member_id")?;
    let query = web::Query::<PageQuery>::from_query(req.query_string())
        .map_err(|_| ApiError::validation(vec![FieldError::new("limit", "limit and offset must be whole numbers")]))?;
    let limit = query.limit.unwrap_or(50);
    let offset = query.offset.unwrap_or(0);
    if !(1..=200).contains(&limit) || offset < 0 {
        return Err(ApiError::validation(vec![FieldError::new(
            "limit",
            "limit must be 1 to 200 and offset 0 or more",
        )]));
    }
    let program = &state.settings.program;
    if state.store.member(program, member_id.as_str()).await?.is_none() {
        return Err(ApiError::not_found(format!("no member {member_id}")));
    }
    let now = now_unix();
    let coupons = state.store.member_coupons(program, member_id.as_str(), now, limit, offset).await?;
    let views: Vec<CouponView> = coupons.iter().map(|c| CouponView::new(&state, c, now)).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "coupons": views })))
}

/// The coupon's Apple pass (its random coupon id is the link's secret, as a member's public id is).
#[utoipa::path(get, path = "/c/{coupon_id}/pass.pkpass", tag = "pages", params(("coupon_id" = String, Path)),
    responses((status = 200, description = "The signed coupon pass", content_type = "application/vnd.apple.pkpass"),
        (status = 304, description = "Not modified since If-Modified-Since"), (status = 404, response = crate::openapi::NotFound)))]
pub async fn download_coupon(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    let not_found = || ApiError::not_found("no such coupon; ask for a new link");
    let id = segment(&req, "coupon_id").filter(|id| id.len() <= 64).ok_or_else(not_found)?;
    let coupon = state.store.coupon_by_id(&id).await?.ok_or_else(not_found)?;
    pkpass_response(&state, req.headers(), &ServedPass::Coupon(std::sync::Arc::new(coupon))).await
}

/// What a refused redemption answers: 409 with the code the spec names.
pub fn refusal(why: &Unredeemable) -> ApiError {
    match why {
        Unredeemable::AlreadyRedeemed { at, location } => {
            let place = location.as_deref().map(|l| format!(" at {l}")).unwrap_or_default();
            ApiError::Conflict {
                code: "already-redeemed",
                message: format!("this coupon was already redeemed{place} on {}", rfc3339(*at)),
                details: Some(serde_json::json!({ "redeemed_at": rfc3339(*at), "location": location })),
            }
        }
        Unredeemable::Expired { at } => ApiError::Conflict {
            code: "coupon-expired",
            message: format!("this coupon expired at {}", rfc3339(*at)),
            details: Some(serde_json::json!({ "valid_until": rfc3339(*at) })),
        },
        Unredeemable::Withdrawn => ApiError::Conflict {
            code: "coupon-withdrawn",
            message: "this coupon was withdrawn; it cannot be redeemed".into(),
            details: None,
        },
        Unredeemable::NotYetValid { from } => ApiError::Conflict {
            code: "coupon-not-yet-valid",
            message: format!("this coupon can be redeemed from {}", rfc3339(*from)),
            details: Some(serde_json::json!({ "valid_from": rfc3339(*from) })),
        },
    }
}

/// Redeems a coupon once, whichever till asks first (staff token).
#[utoipa::path(post, path = "/api/v1/redemptions", tag = "scan", request_body = RedemptionBody,
    responses((status = 200, description = "Redeemed now", body = CouponView), (status = 400, response = crate::openapi::InvalidJson),
        (status = 401, response = crate::openapi::Unauthorized), (status = 404, response = crate::openapi::NotFound),
        (status = 409, response = crate::openapi::AlreadyRedeemed), (status = 415, response = crate::openapi::UnsupportedMediaType),
        (status = 422, response = crate::openapi::ValidationFailed), (status = 429, response = crate::openapi::RateLimited),
        (status = 503, response = crate::openapi::Unavailable)),
    security(("staff" = [])))]
#[tracing::instrument(name = "redeem", skip_all)]
pub async fn redeem(
    state: web::Data<AppState>,
    staff: StaffAuth,
    JsonObject(body): JsonObject,
) -> ApiResult<HttpResponse> {
    let body = RedemptionBody::from_object(&body, &crate::domain::Context::without_tiers())?;
    let coupon = perform_redemption(&state, &staff, &body.code, body.location.as_ref()).await?;
    Ok(HttpResponse::Ok().json(CouponView::new(&state, &coupon, now_unix())))
}

/// Redeems through the store's conditional update; shared with the staff page.
pub async fn perform_redemption(
    state: &AppState,
    staff: &StaffAuth,
    code: &CouponCode,
    location: Option<&Location>,
) -> ApiResult<CouponRecord> {
    let now = now_unix();
    let redemption = Redemption {
        program: state.settings.program.clone(),
        code: code.as_str().to_owned(),
        location: location.map(|l| l.as_str().to_owned()),
        staff: staff.credential.clone(),
        now,
    };
    match state.redemptions.redeem(redemption).await? {
        Ok(coupon) => {
            tracing::info!(coupon_id = %coupon.coupon_id, offer_id = %coupon.offer_id, "coupon redeemed");
            Ok(coupon)
        }
        Err(RedeemFailure::NoCoupon) => Err(ApiError::not_found("no coupon with this code")),
        Err(RedeemFailure::Unredeemable(coupon)) => match redeemable(&coupon, now) {
            Err(why) => Err(refusal(&why)),
            // Redeemable when read again: the window opened or closed between the two statements.
            Ok(()) => Err(ApiError::Unavailable("the coupon changed while it was redeemed; retry".into())),
        },
    }
}
