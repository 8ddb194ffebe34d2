//! The command line: `tessera serve | migrate | secrets | doctor | inspect FILE`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::Secrets;
use crate::http::Application;
use crate::settings::{LOG_ENV, Settings};
use crate::store::Store;

#[derive(Parser)]
#[command(name = "tessera", version, about = "Loyalty cards in Apple Wallet and Google Wallet, kept live.")]
struct Cli {
    /// TOML settings file (keys are the TESSERA_* names without the prefix, lowercased).
    /// Default: $TESSERA_CONFIG, else ./tessera.toml if present.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run migrations, then the HTTP server and the push worker.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the admin token, webhook secret and staff token in force.
    Secrets,
    /// Check certificates, keys, templates and settings; exit 1 on any error.
    Doctor,
    /// Validate a .pkpass the way Wallet would; exit 1 on any error (warnings alone exit 0).
    Inspect {
        /// The .pkpass file.
        file: PathBuf,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    if let Command::Inspect { file } = &cli.command {
        return inspect(file);
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "tessera: {:#}", anyhow::Error::new(e));
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("starting the async runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve(settings).await,
            Command::Migrate => migrate(settings).await,
            Command::Secrets => secrets(settings).await,
            Command::Doctor => return Ok(crate::doctor::run(&settings).await),
            Command::Inspect { .. } => unreachable!("handled above"),
        }
        .map(|()| ExitCode::SUCCESS)
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            // stderr may be closed (a supervisor that stopped reading); that must not turn into a panic.
            let _ = writeln!(std::io::stderr(), "tessera: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = std::env::var(LOG_ENV)
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info,sqlx=warn,actix_server=warn".to_string());
    // A closed stderr (a supervisor that stopped reading) must not take the server down: tracing's own
    // report of a failed write would panic in eprintln!.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none())
        .log_internal_errors(false)
        .try_init();
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let public_url = settings.public_url.clone();
    let app = Application::build(settings).await?;
    let identity = app.state().passes.identity();
    let role = app.state().settings.role;
    match app.local_addr() {
        Some(address) => tracing::info!(
            address = %address, public_url = %public_url, role = ?role, pass_type = %identity.pass_type_id, team = %identity.team_id,
            "tessera is serving"
        ),
        None => {
            tracing::info!(role = ?role, pass_type = %identity.pass_type_id, "tessera is pushing (no HTTP in the worker role)")
        }
    }
    match &app.state().google {
        Some(wallet) => tracing::info!(issuer = %wallet.issuer_id, class = %wallet.class_id, "Google Wallet is on"),
        None => tracing::info!(
            "Google Wallet is not configured (TESSERA_GOOGLE_ISSUER_ID, TESSERA_GOOGLE_SERVICE_ACCOUNT): Apple Wallet only"
        ),
    }
    app.run_until(shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let store = Store::connect(settings.database_url.expose()).await?;
    store.migrate().await?;
    println!("migrations applied to {}", settings.database_url);
    Ok(())
}

async fn secrets(settings: Settings) -> anyhow::Result<()> {
    let store = Store::connect(settings.database_url.expose()).await?;
    store.migrate().await?;
    let secrets = Secrets::resolve(&settings, &store).await?;
    let origin = |from_settings: bool, name: &str| {
        if from_settings { format!("from TESSERA_{name}") } else { "generated, kept in the database".to_string() }
    };
    println!(
        "admin_token    = {}  ({})",
        secrets.admin_token.expose(),
        origin(settings.admin_token.is_some(), "ADMIN_TOKEN")
    );
    for secret in &secrets.webhook_secrets {
        println!(
            "webhook_secret = {}  ({})",
            secret.expose(),
            origin(!settings.webhook_secrets.is_empty(), "WEBHOOK_SECRET")
        );
    }
    println!(
        "staff_token    = {}  ({})",
        secrets.staff_token.expose(),
        origin(settings.staff_token.is_some(), "STAFF_TOKEN")
    );
    Ok(())
}

fn inspect(file: &std::path::Path) -> ExitCode {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "tessera: {} cannot be read: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let report = crate::apple::inspect::inspect(&bytes);
    for line in report.lines() {
        println!("{line}");
    }
    let errors = report.errors().count();
    let warnings = report.findings.len() - errors;
    println!("{}: {errors} error(s), {warnings} warning(s)", file.display());
    if errors > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
