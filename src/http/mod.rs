//! HTTP on actix-web: the route table (the one module that knows every handler), the request span and
//! metrics middleware, the JSON answers for unknown paths and wrong methods, and `Application`, which
//! serves and runs the push worker until shutdown.

pub mod openapi;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpResponse, HttpServer, Route, web};
use tracing::Instrument;

use crate::app::AppState;
use crate::apple::SigningIdentity;
use crate::apple::web_service;
use crate::error::ApiError;
use crate::push::apns::Credentials;
use crate::push::{ApnsClient, PushWorker, WorkerSettings};
use crate::settings::{ApnsAuth, Settings};
use crate::{ledger, members, ops, pages};

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
    ]
}

/// (method, path) of every route the server answers, paths as written in the table.
pub fn routes() -> Vec<(Method, &'static str)> {
    route_table().into_iter().flat_map(|(path, methods)| methods.into_iter().map(move |(m, _)| (m, path))).collect()
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("no such endpoint"))
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// The routes under the public URL's path; `/healthz` also answers at the root behind a path prefix.
fn configure(prefix: &str) -> impl FnOnce(&mut web::ServiceConfig) + '_ {
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
async fn observe(
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

/// The APNs client the settings describe, authenticated by the pass certificate or a .p8 token.
pub fn apns_client(settings: &Settings, identity: &SigningIdentity) -> anyhow::Result<ApnsClient> {
    let credentials = match (&settings.apns_auth, &settings.apns_key, &settings.apns_key_id) {
        (ApnsAuth::Certificate, _, _) => Credentials::Certificate,
        (ApnsAuth::Token, Some(key), Some(key_id)) => {
            let team = settings.apns_team_id.as_deref().unwrap_or(&identity.team_id);
            ApnsClient::token_credentials(key, key_id, team)?
        }
        (ApnsAuth::Token, _, _) => {
            anyhow::bail!("TESSERA_APNS_AUTH is token but TESSERA_APNS_KEY or TESSERA_APNS_KEY_ID is unset")
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

/// A bound, ready server with its push worker: tests start it on port 0 and read `local_addr`.
pub struct Application {
    listener: std::net::TcpListener,
    state: AppState,
    worker: PushWorker,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let listen = settings.listen;
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            anyhow::Error::new(e)
                .context(format!("TESSERA_LISTEN: cannot listen on {listen}; choose a free address and port"))
        })?;
        Self::with_listener(settings, listener).await
    }

    /// Serves on a listener bound by the caller (tests bind port 0 first, to know the public URL).
    pub async fn with_listener(settings: Settings, listener: tokio::net::TcpListener) -> anyhow::Result<Application> {
        let state = AppState::build(settings).await?;
        let apns = apns_client(&state.settings, state.passes.identity())?;
        let worker_settings =
            WorkerSettings {
                retry_base_ms: state.settings.push_retry_base_ms,
                lease_ms: state.settings.push_lease_ms,
                ..WorkerSettings::default()
            };
        let worker = PushWorker::new(state.store.clone(), Arc::new(apns), state.metrics.clone(), worker_settings);
        Ok(Application { listener: listener.into_std()?, state, worker })
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
        let data = web::Data::new(self.state.clone());
        let document = web::Data::new(openapi::Document::new(&self.state.settings.public_url));
        let prefix = self.state.settings.public_path().to_string();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(document.clone())
                .wrap(from_fn(observe))
                .configure(configure(&prefix))
                .default_service(web::to(not_found))
        })
        .disable_signals()
        .shutdown_timeout(30)
        .listen(self.listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(async move {
            shutdown.await;
            handle.stop(true).await;
        });
        let served = server.await;
        let _ = stop_worker.send(true);
        let _ = worker.await;
        self.state.store.close().await;
        Ok(served?)
    }
}
