//! The admin API: `PUT`, `GET` and `DELETE /api/v1/members/{member_id}`, the member JSON, and the PUT
//! body, `MemberPut`: the type that parses it is the type the OpenAPI document shows.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::app::extract::{AdminAuth, JsonObject, path_value};
use crate::domain::{
    Attributes, Context, Faults, FromObject, Locale, MemberId, MemberName, Points, TierName, json_object,
};
use crate::error::{ApiError, ApiResult};
use crate::ids::RandomIds;
use crate::plan;
use crate::store::{DeviceRecord, MemberChange, MemberRecord, StoreError, UpsertOutcome};

json_object! {
    unknown_fields: refused("member"),
    /// The body of `PUT /api/v1/members/{member_id}`. The member JSON may be sent back as it was
    /// answered: its read-only fields (member_id, program, created_at, updated_at, retired, links, apple,
    /// google) are ignored, but a `member_id` other than the path's is refused.
    pub struct MemberPut {
        pub name: MemberName,
        /// One of the program's tiers (lowercase).
        pub tier: TierName,
        pub points: Points,
        /// The card's language.
        pub locale: Option<Locale>,
        pub attributes: Option<Attributes>,
    }
}

/// Fields of the member JSON that a client may send back unchanged; they are ignored.
const READ_ONLY_FIELDS: &[&str] =
    &["member_id", "program", "created_at", "updated_at", "retired", "links", "apple", "google", "coupons"];

impl MemberPut {
    /// Reads the PUT body for the member in the path, naming every field at fault at once.
    pub fn parse(
        member_id: &MemberId,
        mut body: Map<String, Value>,
        context: &Context<'_>,
    ) -> Result<MemberPut, Faults> {
        let mut faults = Faults::default();
        if body.get("member_id").is_some_and(|id| id.as_str() != Some(member_id.as_str())) {
            faults.push("member_id", "differs from the member ID in the path");
        }
        for field in READ_ONLY_FIELDS {
            body.remove(*field);
        }
        match MemberPut::from_object(&body, context) {
            Ok(put) if faults.is_empty() => Ok(put),
            Ok(_) => Err(faults),
            Err(more) => {
                faults.append(more);
                Err(faults)
            }
        }
    }

    /// What the PUT sets: every field (a missing locale or attributes clears them).
    pub fn into_change(self) -> MemberChange {
        MemberChange {
            name: Some(self.name),
            tier: self.tier,
            points: self.points,
            locale: self.locale,
            attributes: self.attributes.unwrap_or_default(),
        }
    }
}

/// The member JSON of the spec. Push tokens and authentication tokens are never shown.
#[derive(Serialize, ToSchema)]
pub struct MemberView {
    #[schema(example = "M-1001")]
    pub member_id: String,
    /// Absent for a member a ledger event created without a name (the card shows the member ID).
    pub name: Option<String>,
    pub tier: String,
    pub points: i64,
    pub program: String,
    pub locale: Option<String>,
    #[schema(value_type = Object)]
    pub attributes: Value,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
    pub retired: bool,
    pub links: LinksView,
    pub apple: ApplePassView,
    /// Absent while Google Wallet is not configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub google: Option<GoogleObjectView>,
    /// The member's coupons, active first (at most 50; `GET /api/v1/members/{id}/coupons` pages all).
    pub coupons: Vec<crate::offers::CouponView>,
}

/// The member's Google Wallet object.
#[derive(Serialize, ToSchema)]
pub struct GoogleObjectView {
    /// `<issuer id>.<program>-<member id>`.
    pub object_id: String,
    /// Whether the member has the card in Google Wallet (from Google's save/delete callbacks).
    pub saved: bool,
    /// Whether Google has the member's latest state.
    pub current: bool,
    /// The last update attempt's result when it did not succeed (e.g. `retrying: 503 …`), or why Google
    /// work is stopped (`forbidden: 403 …`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The member's links; unguessable (a random public id), never the bare member ID.
#[derive(Serialize, ToSchema)]
pub struct LinksView {
    /// The pass page (HTML).
    pub page: String,
    /// The .pkpass download (`application/vnd.apple.pkpass`).
    pub apple: String,
    /// The "Add to Google Wallet" link, `https://pay.google.com/gp/v/save/<jwt>`; absent while Google
    /// Wallet is not configured, or while the card cannot be made yet (Google unreachable and the whole
    /// object too long for a link).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub google: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApplePassView {
    pub serial_number: String,
    pub voided: bool,
    pub devices: Vec<DeviceView>,
}

/// A device that registered the pass with the web service.
#[derive(Serialize, ToSchema)]
pub struct DeviceView {
    pub registered_at: String,
    pub last_push_at: Option<String>,
    /// delivered, unregistered, retrying, failed or forbidden.
    pub last_push_result: Option<String>,
    pub last_push_reason: Option<String>,
}

impl MemberView {
    pub fn new(
        state: &AppState,
        record: &MemberRecord,
        devices: &[DeviceRecord],
        google: Option<(Option<String>, GoogleObjectView)>,
    ) -> MemberView {
        let (google_link, google) = google.map_or((None, None), |(link, view)| (link, Some(view)));
        let links = state.links(record);
        let time = crate::time_fmt::rfc3339;
        MemberView {
            member_id: record.member_id.clone(),
            name: record.name.clone(),
            tier: record.tier.clone(),
            points: record.points,
            program: record.program.clone(),
            locale: record.locale.clone(),
            attributes: serde_json::from_str(&record.attributes).unwrap_or_else(|_| Value::Object(Map::new())),
            created_at: time(record.created_at),
            updated_at: time(record.updated_at),
            retired: record.retired,
            links: LinksView { page: links.page, apple: links.apple, google: google_link },
            apple: ApplePassView {
                serial_number: record.serial_number.clone(),
                voided: record.voided,
                devices: devices
                    .iter()
                    .map(|d| DeviceView {
                        registered_at: time(d.registered_at),
                        last_push_at: d.last_push_at.map(time),
                        last_push_result: d.last_push_result.clone(),
                        last_push_reason: d.last_push_reason.clone(),
                    })
                    .collect(),
            },
            google,
            coupons: Vec::new(),
        }
    }
}

/// The Google half of the member JSON: the save link and the object's state (None without Google).
pub async fn google_view(
    state: &AppState,
    record: &MemberRecord,
) -> ApiResult<Option<(Option<String>, GoogleObjectView)>> {
    let Some(wallet) = &state.google else { return Ok(None) };
    let (stored, last_result) = state.store.google_object(&record.program, &record.member_id).await?;
    let (link, object) = match record.retired {
        true => (None, stored.clone()),
        false => wallet.save_link(record, &stored).await,
    };
    let problem = if wallet.forbidden() {
        state
            .store
            .service_state(crate::delivery::google_objects::GOOGLE_FORBIDDEN)
            .await?
            .map(|(r, _)| format!("forbidden: {r}"))
    } else if object != stored {
        None // inserted just now
    } else {
        last_result.filter(|r| r != "current")
    };
    let view = GoogleObjectView {
        object_id: wallet.object_id(&record.member_id),
        saved: object.saved,
        current: object.inserted && object.synced_tag == record.update_tag,
        problem,
    };
    Ok(Some((link, view)))
}

async fn member_response(state: &AppState, status: StatusCode, record: &MemberRecord) -> ApiResult<HttpResponse> {
    let devices = state.store.devices_of(&record.serial_number).await?;
    let google = google_view(state, record).await?;
    let now = crate::time_fmt::now_unix();
    let coupons = state.store.member_coupons(&record.program, &record.member_id, now, 50, 0).await?;
    let mut view = MemberView::new(state, record, &devices, google);
    view.coupons = coupons.iter().map(|c| crate::offers::CouponView::new(state, c, now)).collect();
    Ok(HttpResponse::build(status).json(view))
}

/// The member ID from the path.
pub fn member_id_from_path(req: &HttpRequest) -> ApiResult<MemberId> {
    path_value(req, "member_id", "member_id")
}

/// Creates or replaces a member.
#[utoipa::path(put, path = "/api/v1/members/{member_id}", tag = "admin",
    params(("member_id" = MemberId, Path, description = "`[A-Za-z0-9._-]{1,64}`, not `.` or `..`")),
    request_body = MemberPut,
    responses(
        (status = 201, description = "Created", body = MemberView),
        (status = 200, description = "Replaced (a retired member is reinstated)", body = MemberView),
        (status = 400, response = crate::openapi::InvalidJson), (status = 401, response = crate::openapi::Unauthorized),
        (status = 413, response = crate::openapi::PayloadTooLarge), (status = 415, response = crate::openapi::UnsupportedMediaType),
        (status = 422, response = crate::openapi::ValidationFailed), (status = 503, response = crate::openapi::Unavailable),
        (status = 500, response = crate::openapi::Internal)),
    security(("admin" = [])))]
#[tracing::instrument(name = "put member", skip_all, fields(member_id = tracing::field::Empty))]
pub async fn put_member(
    state: web::Data<AppState>,
    _auth: AdminAuth,
    req: HttpRequest,
    JsonObject(body): JsonObject,
) -> ApiResult<HttpResponse> {
    let member_id = member_id_from_path(&req)?;
    tracing::Span::current().record("member_id", member_id.as_str());
    let change = MemberPut::parse(&member_id, body, &state.passes.program().parse_context())?.into_change();
    let identity = state.passes.identity();
    let identity = (identity.pass_type_id.as_str(), identity.team_id.as_str());
    let program = &state.settings.program;
    let (record, outcome) = state
        .store
        .apply_member_change(program, &member_id, |existing, now| {
            plan::decide_upsert(program, &member_id, &change, existing, identity, now, &mut RandomIds)
        })
        .await?;
    let record = record.ok_or_else(|| StoreError::Corrupt(format!("member {member_id} missing after upsert")))?;
    let status = if outcome == UpsertOutcome::Created { StatusCode::CREATED } else { StatusCode::OK };
    member_response(&state, status, &record).await
}

/// Answers a member.
#[utoipa::path(get, path = "/api/v1/members/{member_id}", tag = "admin",
    params(("member_id" = MemberId, Path)),
    responses((status = 200, body = MemberView), (status = 401, response = crate::openapi::Unauthorized),
        (status = 404, response = crate::openapi::NotFound), (status = 422, response = crate::openapi::ValidationFailed),
        (status = 503, response = crate::openapi::Unavailable), (status = 500, response = crate::openapi::Internal)),
    security(("admin" = [])))]
pub async fn get_member(state: web::Data<AppState>, _auth: AdminAuth, req: HttpRequest) -> ApiResult<HttpResponse> {
    let member_id = member_id_from_path(&req)?;
    let record = state
        .store
        .member(&state.settings.program, member_id.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no member {member_id}")))?;
    member_response(&state, StatusCode::OK, &record).await
}

/// Retires a member (idempotent): its Apple pass is voided and pushed.
#[utoipa::path(delete, path = "/api/v1/members/{member_id}", tag = "admin",
    params(("member_id" = MemberId, Path)),
    responses((status = 200, description = "Retired (`retired: true`)", body = MemberView),
        (status = 401, response = crate::openapi::Unauthorized), (status = 404, response = crate::openapi::NotFound),
        (status = 422, response = crate::openapi::ValidationFailed), (status = 503, response = crate::openapi::Unavailable),
        (status = 500, response = crate::openapi::Internal)),
    security(("admin" = [])))]
#[tracing::instrument(name = "retire member", skip_all, fields(member_id = tracing::field::Empty))]
pub async fn delete_member(state: web::Data<AppState>, _auth: AdminAuth, req: HttpRequest) -> ApiResult<HttpResponse> {
    let member_id = member_id_from_path(&req)?;
    tracing::Span::current().record("member_id", member_id.as_str());
    let (record, ()) = state
        .store
        .apply_member_change(&state.settings.program, &member_id, |existing, now| {
            (existing.map(|m| plan::decide_retire(m, now)).unwrap_or_default(), ())
        })
        .await?;
    let record = record.ok_or_else(|| ApiError::not_found(format!("no member {member_id}")))?;
    member_response(&state, StatusCode::OK, &record).await
}
