//! The one error type of the HTTP API, mapped to the spec's JSON shape:
//! `{"error": {"code": "...", "message": "...", "details": [...]}}`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::store::StoreError;

/// One field at fault in a request.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidJson(String),
    #[error("{message}")]
    ValidationFailed { message: String, details: Vec<FieldError> },
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    BadSignature(&'static str),
    #[error("{0}")]
    StaleSignature(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("this endpoint does not accept that method")]
    MethodNotAllowed,
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    #[error("too many requests; slow down and retry later")]
    /// With how long to wait, for Retry-After.
    RateLimited(std::time::Duration),
    #[error("{0}")]
    NotConfigured(String),
    /// The database (or another dependency) cannot be reached right now; the client should retry.
    #[error("{0}")]
    Unavailable(String),
    /// 409: the request conflicts with what the resource is now (`already-redeemed`, `coupon-expired`,
    /// `coupon-withdrawn`, `coupon-not-yet-valid`, `offer-withdrawn`), with facts in `details`.
    #[error("{message}")]
    Conflict { code: &'static str, message: String, details: Option<serde_json::Value> },
    /// The cause goes to the log, never to the client.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// The faults of a request body: 422 naming each field (the body itself as `body`).
impl From<crate::domain::Faults> for ApiError {
    fn from(faults: crate::domain::Faults) -> Self {
        let details = faults
            .into_vec()
            .into_iter()
            .map(|f| FieldError::new(if f.field.is_empty() { "body".to_string() } else { f.field }, f.message))
            .collect();
        ApiError::validation(details)
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(anyhow::Error::new(e).context("a blocking task failed"))
    }
}

/// Seconds for a Retry-After header: the wait rounded up, at least one.
pub fn retry_after_secs(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

impl ApiError {
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        ApiError::RateLimited(wait)
    }

    pub fn validation(details: Vec<FieldError>) -> Self {
        let message = match details.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid; see details", many.len()),
        };
        ApiError::ValidationFailed { message, details }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::NotFound(what.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidJson(_) => StatusCode::BAD_REQUEST,
            ApiError::ValidationFailed { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized(_) | ApiError::BadSignature(_) | ApiError::StaleSignature(_) => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotConfigured(_) | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => "invalid-json",
            ApiError::ValidationFailed { .. } => "validation-failed",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::BadSignature(_) => "bad-signature",
            ApiError::StaleSignature(_) => "stale-signature",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed => "method-not-allowed",
            ApiError::PayloadTooLarge(_) => "payload-too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::RateLimited(_) => "rate-limited",
            ApiError::NotConfigured(_) => "not-configured",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Conflict { code, .. } => code,
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for ApiError {
    /// A database that cannot be reached is the client's cue to retry (503 `unavailable`); anything
    /// else the store reports is our fault (500, cause logged).
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error.cause_chain = ?anyhow::Error::from(e), "the database is unavailable");
            ApiError::Unavailable("the database cannot be reached right now; retry shortly".into())
        } else {
            ApiError::Internal(e.into())
        }
    }
}

/// The JSON body for a status and code, for responses made outside handlers (fallbacks, rejections).
pub fn error_body(code: &str, message: &str, details: Option<serde_json::Value>) -> String {
    let mut error = serde_json::json!({ "code": code, "message": message });
    if let Some(details) = details {
        error["details"] = details;
    }
    serde_json::json!({ "error": error }).to_string()
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(error.cause_chain = ?cause, "request failed");
        }
        let details = match self {
            ApiError::ValidationFailed { details, .. } => serde_json::to_value(details).ok(),
            ApiError::Conflict { details, .. } => details.clone(),
            _ => None,
        };
        let mut response = HttpResponse::build(self.status());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/json")));
        if matches!(self, ApiError::Unauthorized(_)) {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        match self {
            ApiError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            ApiError::RateLimited(wait) => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs(*wait)));
            }
            _ => {}
        }
        response.body(error_body(self.code(), &self.to_string(), details))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_spec_shape() {
        let body = error_body(
            "validation-failed",
            "tier: unknown",
            serde_json::to_value([FieldError::new("tier", "unknown")]).ok(),
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], "validation-failed");
        assert_eq!(v["error"]["details"][0]["field"], "tier");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = ApiError::Internal(anyhow::anyhow!("database password is hunter2"));
        assert_eq!(e.to_string(), "internal error");
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn an_unreachable_database_is_unavailable_not_internal() {
        let e = ApiError::from(StoreError::Sql(sqlx::Error::PoolTimedOut));
        assert_eq!((e.status(), e.code()), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"));
        let e = ApiError::from(StoreError::Sql(sqlx::Error::Io(std::io::Error::other("connection refused"))));
        assert_eq!(e.code(), "unavailable");
        let e = ApiError::from(StoreError::Sql(sqlx::Error::RowNotFound));
        assert_eq!(e.code(), "internal");
    }
}
