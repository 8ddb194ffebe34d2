//! `Application`: a bound, ready instance of the role the settings name: the HTTP server, the workers
//! (a delivery engine per channel and the housekeeping, with, on PostgreSQL, the listener that wakes
//! them), or both; and its graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use std::time::Duration;

use actix_http::{HttpService, KeepAlive, error::DispatchError};
use actix_service::{IntoServiceFactory, ServiceFactoryExt, fn_service, map_config};
use actix_web::dev::AppConfig;
use actix_web::middleware::from_fn;
use actix_web::{App, web};

use super::refusals::JsonRefusals;
use super::{configure, not_found, observe, openapi};
use crate::app::AppState;
use crate::apple::SigningIdentity;
use crate::delivery::apns::ApnsChannel;
use crate::delivery::google_objects::GoogleObjectsChannel;
use crate::delivery::google_offers::GoogleOffersChannel;
use crate::delivery::{Engine, EngineSettings};
use crate::housekeeping::Housekeeping;
use crate::push::ApnsClient;
use crate::push::apns::Credentials;
use crate::settings::{ApnsAuth, Settings};

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
        settings.apns_url.as_str(),
        &identity.pass_type_id,
        identity,
        credentials,
        settings.apns_ca.as_deref(),
        settings.apns_connections,
    )?)
}

/// A bound, ready instance: tests start it on port 0 and read `local_addr`.
pub struct Application {
    /// None for a worker-only instance.
    listener: Option<std::net::TcpListener>,
    state: AppState,
    /// None for an API-only instance.
    workers: Option<Workers>,
}

/// What the worker role runs: one delivery engine per channel, and the housekeeping.
struct Workers {
    apns: Engine<ApnsChannel>,
    /// None without Google Wallet.
    google_objects: Option<Engine<GoogleObjectsChannel>>,
    google_offers: Option<Engine<GoogleOffersChannel>>,
    housekeeping: Housekeeping,
}

impl Workers {
    fn new(state: &AppState) -> anyhow::Result<Workers> {
        let (store, settings) = (&state.store, &state.settings);
        let engine = EngineSettings {
            lease_ms: settings.push_lease_ms,
            // With LISTEN/NOTIFY waking it, PostgreSQL's engine polls only as a fallback.
            idle_poll_ms: if store.is_sqlite() { 1_000 } else { 5_000 },
        };
        let apns = Arc::new(apns_client(settings, state.passes.identity())?);
        let apns = ApnsChannel::new(apns, store.clone(), settings.push_retry_base_ms);
        let google_objects = state.google.as_ref().map(|wallet| {
            let channel = GoogleObjectsChannel::new(wallet.clone(), store.clone());
            Engine::new(Arc::new(channel), store.clone(), &state.metrics, engine)
        });
        let google_offers = state.google.as_ref().map(|wallet| {
            let channel = GoogleOffersChannel::new(wallet.clone(), store.clone());
            Engine::new(Arc::new(channel), store.clone(), &state.metrics, engine)
        });
        Ok(Workers {
            apns: Engine::new(Arc::new(apns), store.clone(), &state.metrics, engine),
            google_objects,
            google_offers,
            housekeeping: Housekeeping {
                store: store.clone(),
                scan_retention_days: settings.scan_retention_days,
                google: state.google.is_some(),
            },
        })
    }

    /// Starts every loop; they stop (finishing their rounds) when `stopped` turns true.
    fn spawn(self, stopped: tokio::sync::watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
        let expiry = tokio::spawn(Housekeeping::expire_offers(self.housekeeping.store.clone(), stopped.clone()));
        let mut tasks = vec![
            tokio::spawn(self.apns.run(stopped.clone())),
            tokio::spawn(self.housekeeping.run(stopped.clone())),
            expiry,
        ];
        if let Some(engine) = self.google_objects {
            tasks.push(tokio::spawn(engine.run(stopped.clone())));
        }
        if let Some(engine) = self.google_offers {
            tasks.push(tokio::spawn(engine.run(stopped)));
        }
        tasks
    }
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        if !settings.role.serves_http() {
            return Self::start(settings, None).await;
        }
        let listen = settings.listen;
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            anyhow::Error::new(e)
                .context(format!("TESSERA_LISTEN: cannot listen on {listen}; choose a free address and port"))
        })?;
        Self::with_listener(settings, listener).await
    }

    /// Serves on a listener bound by the caller (tests bind port 0 first, to know the public URL).
    pub async fn with_listener(settings: Settings, listener: tokio::net::TcpListener) -> anyhow::Result<Application> {
        let listener = settings.role.serves_http().then(|| listener.into_std()).transpose()?;
        Self::start(settings, listener).await
    }

    async fn start(settings: Settings, listener: Option<std::net::TcpListener>) -> anyhow::Result<Application> {
        let state = AppState::build(settings).await?;
        let workers = state.settings.role.runs_worker().then(|| Workers::new(&state)).transpose()?;
        Ok(Application { listener, state, workers })
    }

    /// The HTTP address; None for a worker-only instance.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
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
        let (stop_workers, stopped) = tokio::sync::watch::channel(false);
        let listener_task = self.workers.as_ref().and_then(|_| self.state.store.spawn_outbox_listener());
        let workers = self.workers.map(|w| w.spawn(stopped)).unwrap_or_default();
        let served = match self.listener {
            Some(listener) => serve(&self.state, listener, shutdown).await,
            None => {
                shutdown.await;
                Ok(())
            }
        };
        let _ = stop_workers.send(true);
        for worker in workers {
            let _ = worker.await;
        }
        if let Some(task) = listener_task {
            task.abort();
        }
        self.state.store.close().await;
        served
    }
}

/// Serves HTTP on `listener` until `shutdown`, then lets the requests in flight finish (30 s at most).
/// HTTP/1.1 as actix-web's `HttpServer` serves it, with each connection wrapped so that the framework's
/// own refusals are JSON too (refusals.rs).
async fn serve(
    state: &AppState,
    listener: std::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let data = web::Data::new(state.clone());
    let document = web::Data::new(openapi::Document::new(state.settings.public_url.as_str()));
    let prefix = state.settings.public_path().to_string();
    let local = listener.local_addr()?;
    let server = actix_server::Server::build()
        .workers(state.settings.http_workers)
        .disable_signals()
        .shutdown_timeout(30)
        .listen("tessera-http", listener, move || {
            let app = App::new()
                .app_data(data.clone())
                .app_data(document.clone())
                .wrap(from_fn(observe))
                .configure(configure(&prefix))
                .default_service(web::to(not_found));
            let app = app.into_factory().map_err(|err| err.error_response());
            let http = HttpService::build()
                .keep_alive(KeepAlive::Timeout(Duration::from_secs(5)))
                .client_request_timeout(Duration::from_secs(5))
                .client_disconnect_timeout(Duration::from_secs(1))
                .local_addr(local)
                .h1(map_config(app, move |_| AppConfig::__priv_test_new(false, local.to_string(), local)));
            fn_service(|io: actix_web::rt::net::TcpStream| {
                let peer = io.peer_addr().ok();
                let _ = io.set_nodelay(true);
                std::future::ready(Ok::<_, DispatchError>((JsonRefusals::new(io), peer)))
            })
            .and_then(http)
        })?
        .run();
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown.await;
        handle.stop(true).await;
    });
    Ok(server.await?)
}
