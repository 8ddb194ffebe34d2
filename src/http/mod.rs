//! HTTP: start-up, the route table, shared state, request spans and metrics.

pub mod extract;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use tracing::Instrument;

use crate::apple::web_service;
use crate::apple::{PassBuilder, SigningIdentity};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::push::apns::Credentials;
use crate::push::{ApnsClient, PushWorker, WorkerSettings};
use crate::settings::ApnsAuth;
use crate::settings::{Secret, Settings};
use crate::store::Store;
use crate::templates::Program;

/// The tokens in force: from the settings, else generated once and kept in the database.
pub struct Secrets {
    pub admin_token: Secret,
    pub webhook_secrets: Vec<Secret>,
    pub staff_token: Secret,
}

impl Secrets {
    pub async fn resolve(settings: &Settings, store: &Store) -> anyhow::Result<Secrets> {
        let generate = || crate::ids::random_token(32);
        let admin_token = match &settings.admin_token {
            Some(s) => s.clone(),
            None => Secret::new(store.secret_or_generate("admin_token", generate).await?),
        };
        let webhook_secrets = if settings.webhook_secrets.is_empty() {
            vec![Secret::new(store.secret_or_generate("webhook_secret", generate).await?)]
        } else {
            settings.webhook_secrets.clone()
        };
        let staff_token = match &settings.staff_token {
            Some(s) => s.clone(),
            None => Secret::new(store.secret_or_generate("staff_token", generate).await?),
        };
        Ok(Secrets { admin_token, webhook_secrets, staff_token })
    }
}

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub passes: Arc<PassBuilder>,
    pub secrets: Arc<Secrets>,
    pub metrics: Arc<Metrics>,
    pub pass_cache: Arc<crate::apple::web_service::PassCache>,
}

impl AppState {
    /// Loads everything a server needs and checks it: certificates, templates, database (migrated), secrets.
    pub async fn build(settings: Settings) -> anyhow::Result<AppState> {
        let identity = SigningIdentity::load(
            &settings.apple_cert,
            &settings.apple_key,
            &settings.apple_wwdr,
            settings.apple_key_password.as_ref().map(Secret::expose),
        )?;
        let program = Program::load(&settings.templates_dir, &settings.program)?;
        let store = Store::connect(&settings.database_url)
            .await
            .map_err(|e| anyhow::anyhow!("TESSERA_DATABASE_URL: cannot open the database: {e}"))?;
        store.migrate().await?;
        let secrets = Secrets::resolve(&settings, &store).await?;
        let passes = PassBuilder::new(Arc::new(identity), Arc::new(program), settings.web_service_url());
        Ok(AppState {
            settings: Arc::new(settings),
            store,
            passes: Arc::new(passes),
            secrets: Arc::new(secrets),
            metrics: Arc::new(Metrics::default()),
            pass_cache: Default::default(),
        })
    }
}

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route(
            "/api/v1/members/{member_id}",
            get(crate::members::get_member).put(crate::members::put_member).delete(crate::members::delete_member),
        )
        .route(
            "/v1/devices/{device}/registrations/{pass_type}/{serial}",
            post(web_service::register).delete(web_service::unregister),
        )
        .route("/v1/devices/{device}/registrations/{pass_type}", get(web_service::list_updated))
        .route("/v1/passes/{pass_type}/{serial}", get(web_service::latest_pass))
        .route("/v1/log", post(web_service::log))
        .route("/webhooks/ledger", post(crate::ledger::webhook))
        .route("/m/{public_id}", get(crate::pages::member_page))
        .route("/m/{public_id}/pass.pkpass", get(crate::pages::download_pass))
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .fallback(|| async { ApiError::not_found("no such endpoint") });
    let prefix = state.settings.public_path().to_string();
    let app =
        if prefix.is_empty() { routes } else { Router::new().nest(&prefix, routes).route("/healthz", get(healthz)) };
    app.layer(middleware::from_fn_with_state(state.clone(), observe)).with_state(state)
}

/// One span per request, and the request counters.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route =
        request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let span =
        tracing::info_span!("request", method = %request.method(), route = %route, status = tracing::field::Empty);
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("status", status);
    let elapsed = started.elapsed().as_secs_f64();
    state.metrics.record_request(&route, status, elapsed);
    tracing::debug!(parent: &span, elapsed_ms = elapsed * 1e3, "answered");
    response
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, axum::Json(serde_json::json!({"status": "ok"}))).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            ApiError::NotConfigured("the database is unreachable".into()).into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

/// A bound, ready server with its push worker: tests start it on port 0 and read `local_addr`.
pub struct Application {
    listener: tokio::net::TcpListener,
    state: AppState,
    worker: PushWorker,
}

/// The APNs client the settings describe, authenticated by the pass certificate or a .p8 token.
pub fn apns_client(settings: &Settings, identity: &SigningIdentity) -> anyhow::Result<ApnsClient> {
    let credentials = match settings.apns_auth {
        ApnsAuth::Certificate => Credentials::Certificate,
        ApnsAuth::Token => {
            let key = settings.apns_key.as_deref().expect("validated with the settings");
            let key_id = settings.apns_key_id.as_deref().expect("validated with the settings");
            let team = settings.apns_team_id.as_deref().unwrap_or(&identity.team_id);
            ApnsClient::token_credentials(key, key_id, team)?
        }
    };
    Ok(ApnsClient::new(
        &settings.apns_url,
        &identity.pass_type_id,
        identity,
        credentials,
        settings.apns_ca.as_deref(),
        settings.apns_connections,
    )?)
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let listen = settings.listen;
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            anyhow::anyhow!("TESSERA_LISTEN: cannot listen on {listen}: {e}; choose a free address and port")
        })?;
        Self::with_listener(settings, listener).await
    }

    /// Serves on a listener bound by the caller (tests bind port 0 first, to know the public URL).
    pub async fn with_listener(settings: Settings, listener: tokio::net::TcpListener) -> anyhow::Result<Application> {
        let state = AppState::build(settings).await?;
        let apns = apns_client(&state.settings, state.passes.identity())?;
        let worker_settings =
            WorkerSettings { retry_base_ms: state.settings.push_retry_base_ms, ..WorkerSettings::default() };
        let worker = PushWorker::new(state.store.clone(), Arc::new(apns), state.metrics.clone(), worker_settings);
        Ok(Application { listener, state, worker })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves and pushes until `shutdown` completes; then finishes the requests in flight, lets the
    /// worker finish its round (jobs left wait in the database for the next start), and closes the store.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_worker, stopped) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(self.worker.run(stopped));
        let app = router(self.state.clone());
        let served = axum::serve(self.listener, app).with_graceful_shutdown(shutdown).await;
        let _ = stop_worker.send(true);
        let _ = worker.await;
        self.state.store.close().await;
        Ok(served?)
    }
}
