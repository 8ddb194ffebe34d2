//! Parts of the OpenAPI document that handlers refer to: the error body and one response per error
//! code of the spec. The document itself (which lists every handler) is assembled by `http::openapi`.

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{Content, Ref, RefOr};

/// Every 4xx and 5xx answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: invalid-json, validation-failed, unauthorized, bad-signature,
    /// stale-signature, not-found, method-not-allowed, payload-too-large, unsupported-media-type,
    /// rate-limited, not-configured, unavailable, internal.
    #[schema(example = "validation-failed")]
    pub code: String,
    /// Plain words for a person.
    pub message: String,
    /// 422: the fields at fault (`[{"field", "message"}]`); 409: the facts of the conflict (e.g.
    /// `{"redeemed_at", "location"}`).
    #[schema(value_type = Option<Value>)]
    pub details: Option<serde_json::Value>,
}

/// One named response per error code: `(type, code, what it means)`.
macro_rules! error_responses {
    ($($name:ident, $code:literal, $meaning:literal;)+) => {
        $(
            #[doc = concat!("The `", $code, "` error: ", $meaning)]
            pub struct $name;

            impl<'r> utoipa::ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    let content = Content::new(Some(Ref::from_schema_name("ErrorBody")));
                    let description = concat!("`", $code, "`: ", $meaning);
                    (stringify!($name), ResponseBuilder::new().description(description).content("application/json", content).build().into())
                }
            }
        )+

        /// Every error response, for the document's components.
        pub fn error_responses() -> Vec<(String, RefOr<Response>)> {
            vec![$({
                let (name, response) = <$name as utoipa::ToResponse>::response();
                (name.to_string(), response)
            }),+]
        }
    };
}

error_responses! {
    InvalidJson, "invalid-json", "the body is not valid JSON (400)";
    ValidationFailed, "validation-failed", "a field is missing or wrong; `details` names each (422)";
    Unauthorized, "unauthorized", "the token is missing or wrong (401)";
    BadSignature, "bad-signature", "the Tessera-Signature header is missing or does not match (401); `stale-signature` when its t is more than 300 s off";
    NotFound, "not-found", "no such member, card or endpoint (404)";
    MethodNotAllowed, "method-not-allowed", "the path exists but not with this method (405)";
    PayloadTooLarge, "payload-too-large", "the body is over the endpoint's limit (413)";
    UnsupportedMediaType, "unsupported-media-type", "the body is not sent as application/json (415)";
    RateLimited, "rate-limited", "too many requests from this credential or client address; wait for Retry-After seconds (429)";
    NotConfigured, "not-configured", "the feature's settings are absent, e.g. Google Wallet without its issuer and key (503)";
    Unavailable, "unavailable", "the database or another dependency cannot be reached right now; retry (503)";
    Internal, "internal", "the server failed; the cause is in its log (500)";
    AlreadyRedeemed, "already-redeemed", "the coupon was redeemed before; `details` says when and where (409)";
    CouponExpired, "coupon-expired", "the coupon's offer has ended (409); `coupon-not-yet-valid` before it starts";
    CouponWithdrawn, "coupon-withdrawn", "the offer was withdrawn, or the member retired (409)";
    OfferWithdrawn, "offer-withdrawn", "the offer was withdrawn and takes no more grants or changes (409)";
}
