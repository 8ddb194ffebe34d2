//! Operations endpoints: `GET /healthz` and `GET /metrics`.

use actix_web::{HttpResponse, web};

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};

/// 200 while the database answers, 503 `unavailable` when it does not.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "`{\"status\": \"ok\"}`"), (status = 503, response = crate::openapi::Unavailable)))]
pub async fn healthz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    state.store.ping().await.map_err(|e| {
        tracing::error!(error.cause_chain = ?anyhow::Error::from(e), "health check: database unreachable");
        ApiError::Unavailable("the database cannot be reached".into())
    })?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ok"})))
}

/// The Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format (requests, passes signed, cache hits, webhook events, pushes, outbox depth)", content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
}
