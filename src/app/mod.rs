//! What every request handler shares, below the handlers and the router: `AppState` (settings, store,
//! pass builder, secrets, metrics, caches), the extractors that authorize and read requests, and the
//! `.pkpass` response. Handlers import this module; it imports no handler and not the router.

pub mod extract;
pub mod limits;
pub mod pkpass;
mod records;

use std::sync::Arc;

pub use records::RecordCache;

use crate::apple::{PassBuilder, SigningIdentity};
use crate::google::account::ServiceAccount;
use crate::google::wallet::GoogleWallet;
use crate::metrics::Metrics;
use crate::settings::{Secret, Settings};
use crate::store::MemberRecord;
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
    /// Pass lookups behind the Apple web service's authenticated endpoints and the .pkpass link.
    pub records: Arc<RecordCache>,
    /// Signed .pkpass bytes by (serial, update tag).
    pub signed: Arc<pkpass::SignedPassCache>,
    /// None while Google Wallet is not configured (Apple only).
    pub google: Option<Arc<GoogleWallet>>,
    /// Scans per staff credential.
    pub scan_limiter: Arc<limits::RateLimiter>,
    /// Wrong admin and staff tokens per client address.
    pub auth_failures: Arc<limits::RateLimiter<std::net::IpAddr>>,
    /// What `POST /v1/log` may write per client address: lines, and bytes.
    pub log_lines: Arc<limits::RateLimiter<std::net::IpAddr>>,
    pub log_bytes: Arc<limits::RateLimiter<std::net::IpAddr>>,
    /// Writes scans with group commit.
    pub scans: crate::store::ScanRecorder,
    /// Writes redemptions with group commit.
    pub redemptions: crate::store::Redeemer,
}

impl AppState {
    /// Loads everything a server needs and checks it: certificates, templates, database (migrated), secrets.
    pub async fn build(settings: Settings) -> anyhow::Result<AppState> {
        crate::jwt::install();
        let identity = SigningIdentity::load(
            &settings.apple_cert,
            &settings.apple_key,
            &settings.apple_wwdr,
            settings.apple_key_password.as_ref().map(Secret::expose),
        )?;
        let program = Arc::new(Program::load(&settings.templates_dir, &settings.program)?);
        let store = Store::connect_with(settings.database_url.expose(), settings.database)
            .await
            .map_err(|e| anyhow::Error::new(e).context("TESSERA_DATABASE_URL: cannot open the database"))?;
        store.migrate().await?;
        let secrets = Secrets::resolve(&settings, &store).await?;
        let barcode_key = store.secret_or_generate("barcode_key", || crate::ids::random_token(32)).await?;
        program.barcodes.set_key(barcode_key.as_bytes());
        let metrics = Arc::new(Metrics::default());
        let settings_scan_rate = settings.scan_rate;
        let scans = crate::store::ScanRecorder::start(store.clone());
        let redemptions = crate::store::Redeemer::start(store.clone());
        let google = google_wallet(&settings, &program, &store, &metrics)?;
        let passes = PassBuilder::new(Arc::new(identity), program, settings.web_service_url())?;
        let signed = pkpass::SignedPassCache::new(settings.pass_cache_mb);
        let records = Arc::new(RecordCache::new(metrics.clone()));
        Ok(AppState {
            settings: Arc::new(settings),
            store,
            passes: Arc::new(passes),
            secrets: Arc::new(secrets),
            metrics,
            records,
            signed: Arc::new(signed),
            google,
            scan_limiter: Arc::new(limits::RateLimiter::new(settings_scan_rate)),
            auth_failures: Arc::new(limits::RateLimiter::per_minute(limits::AUTH_FAILURES_PER_MINUTE)),
            log_lines: Arc::new(limits::RateLimiter::per_minute(limits::LOG_LINES_PER_MINUTE)),
            log_bytes: Arc::new(limits::RateLimiter::per_minute(limits::LOG_BYTES_PER_MINUTE)),
            scans,
            redemptions,
        })
    }

    /// The member's links: the page and the .pkpass download, behind its random public id.
    pub fn links(&self, record: &MemberRecord) -> Links {
        let base = &self.settings.public_url;
        Links {
            page: format!("{base}/m/{}", record.public_id),
            apple: format!("{base}/m/{}/pass.pkpass", record.public_id),
        }
    }
}

/// Google Wallet, when its settings are given: the key file and templates checked, changes writing object
/// jobs from now on.
fn google_wallet(
    settings: &Settings,
    program: &Arc<Program>,
    store: &Store,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Option<Arc<GoogleWallet>>> {
    let (Some(issuer_id), Some(key_file)) = (&settings.google_issuer_id, &settings.google_service_account) else {
        return Ok(None);
    };
    let account = ServiceAccount::load(key_file)?;
    if !program.has_google_templates() {
        anyhow::bail!(
            "Google Wallet is configured but {} has no google/class.json and google/object.json; copy them from the bundled templates/default/google",
            program.dir.display()
        );
    }
    let wallet = GoogleWallet::new(
        issuer_id,
        account,
        settings.google_api_url.as_str(),
        settings.google_rate,
        &settings.google_root_keys,
        program.clone(),
        settings.public_url.as_str(),
        store.clone(),
        metrics.clone(),
    )?;
    store.enable_google_outbox();
    metrics.google_enabled.store(1, std::sync::atomic::Ordering::Relaxed);
    Ok(Some(Arc::new(wallet)))
}

pub struct Links {
    pub page: String,
    pub apple: String,
}
