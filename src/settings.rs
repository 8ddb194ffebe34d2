//! Layered settings: built-in defaults, then a TOML file, then `TESSERA_*` environment variables.
//!
//! The TOML keys are the environment names without `TESSERA_`, lowercased. Every value is validated at
//! start-up; a bad one stops the process with one sentence naming the setting and the fix.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use crate::urls::{DatabaseUrl, PublicUrl};

/// A secret value: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What an instance runs (`TESSERA_ROLE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The HTTP server and the push worker.
    All,
    /// The HTTP server only.
    Api,
    /// The push worker only (no HTTP listener).
    Worker,
}

impl Role {
    pub fn serves_http(self) -> bool {
        self != Role::Worker
    }
    pub fn runs_worker(self) -> bool {
        self != Role::Api
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApnsAuth {
    Certificate,
    Token,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub public_url: PublicUrl,
    pub database_url: DatabaseUrl,
    pub templates_dir: PathBuf,
    pub program: String,
    pub admin_token: Option<Secret>,
    /// Several secrets are accepted so one can be rotated.
    pub webhook_secrets: Vec<Secret>,
    pub staff_token: Option<Secret>,
    pub apple_cert: PathBuf,
    pub apple_key: PathBuf,
    pub apple_wwdr: PathBuf,
    pub apple_key_password: Option<Secret>,
    pub apns_url: PublicUrl,
    pub apns_ca: Option<PathBuf>,
    pub apns_auth: ApnsAuth,
    pub apns_key: Option<PathBuf>,
    pub apns_key_id: Option<String>,
    pub apns_team_id: Option<String>,
    pub google_issuer_id: Option<String>,
    pub google_service_account: Option<PathBuf>,
    pub google_api_url: PublicUrl,
    /// Google REST requests per second for the whole deployment.
    pub google_rate: f64,
    /// Google's root signing keys for callbacks: an http(s) URL or a file.
    pub google_root_keys: String,
    /// First push retry delay; it doubles per attempt.
    pub push_retry_base_ms: i64,
    /// How long a claimed push job is one worker's; a crashed instance's jobs are taken over after it.
    pub push_lease_ms: i64,
    /// HTTP/2 connections kept open to APNs.
    pub apns_connections: usize,
    /// Megabytes of signed passes kept in memory per instance; 0 turns the cache off.
    pub pass_cache_mb: u64,
    pub role: Role,
    /// Scans a second per staff credential (per instance).
    pub scan_rate: f64,
    /// Scans older than this many days are deleted by the worker.
    pub scan_retention_days: i64,
    /// HTTP worker threads (each its own event loop).
    pub http_workers: usize,
    /// Proxies whose X-Forwarded-For names the client (per-address limits key on the client, not on them).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub database: crate::store::DatabaseOptions,
}

/// Every setting: (key, default, what it is). The environment name is `TESSERA_` + the key in capitals.
pub const KEYS: &[(&str, &str, &str)] = &[
    ("listen", "127.0.0.1:8080", "address and port the HTTP server binds"),
    ("public_url", "http://127.0.0.1:8080", "base of every link and the passes' webServiceURL"),
    ("database_url", "sqlite://tessera.db", "sqlite://FILE (created if missing) or postgres://…"),
    ("templates_dir", "templates", "folder holding one folder per loyalty program"),
    ("program", "default", "the program folder under templates_dir this deployment serves"),
    ("admin_token", "", "admin API bearer token (generated and kept in the database if unset)"),
    ("webhook_secret", "", "ledger webhook HMAC secret; comma-separated to rotate (generated if unset)"),
    ("staff_token", "", "scan API and staff page bearer token (generated if unset)"),
    ("apple_cert", "certs-example/pass.pem", "Pass Type ID certificate (PEM)"),
    ("apple_key", "certs-example/pass.key", "its private key (PEM)"),
    ("apple_wwdr", "certs-example/wwdr.pem", "Apple WWDR G4 intermediate (PEM)"),
    ("apple_key_password", "", "password of an encrypted private key"),
    ("apns_url", "https://api.push.apple.com", "APNs base URL"),
    ("apns_ca", "", "an extra PEM root to trust for APNs"),
    ("apns_auth", "certificate", "certificate (the pass certificate) or token (.p8)"),
    ("apns_key", "", "APNs .p8 key, for token auth"),
    ("apns_key_id", "", "APNs key id, for token auth"),
    ("apns_team_id", "", "APNs team id, for token auth [the certificate's OU]"),
    ("google_issuer_id", "", "Google Wallet issuer id"),
    ("google_service_account", "", "Google service account JSON key file"),
    ("google_api_url", "https://walletobjects.googleapis.com", "Google Wallet API base URL"),
    (
        "google_rate",
        "20",
        "Google Wallet REST requests per second for the whole deployment, shared by all instances (Google's quota is 20)",
    ),
    (
        "google_root_keys",
        "https://pay.google.com/gp/m/issuer/keys",
        "a URL or a file with Google's root signing keys, for verifying save/delete callbacks",
    ),
    ("push_retry_base_ms", "1000", "first APNs retry delay in milliseconds; doubles per attempt (cap 5 minutes)"),
    (
        "push_lease_ms",
        "15000",
        "how long a claimed delivery job (a push, a Google update) belongs to one instance (longer than a round: APNs and Google answer within 10 s); a crashed instance's jobs are taken over after it",
    ),
    ("apns_connections", "2", "HTTP/2 connections kept open to APNs (each carries many concurrent pushes)"),
    (
        "scan_rate",
        "50",
        "scans per second allowed per staff credential at each instance (bursts of two seconds' worth); more answer 429",
    ),
    ("scan_retention_days", "400", "scans older than this many days are deleted (by the worker, hourly)"),
    ("role", "all", "all (HTTP and the workers), api (HTTP only) or worker (delivery and housekeeping only)"),
    (
        "http_workers",
        "0",
        "HTTP worker threads; 0 means one per CPU core (several instances on one machine may each take fewer)",
    ),
    (
        "trusted_proxies",
        "",
        "comma-separated addresses or CIDR ranges of the load balancers in front; their X-Forwarded-For names the client that per-address limits count",
    ),
    ("database_pool_size", "16", "PostgreSQL connections per instance (SQLite: one writer and eight readers)"),
    ("database_statement_timeout_ms", "10000", "PostgreSQL statement_timeout; a statement running longer is cancelled"),
    ("database_acquire_timeout_ms", "5000", "how long a request waits for a database connection before answering 503"),
    (
        "pass_cache_mb",
        "64",
        "signed passes kept in memory per instance, in MB, so a pass fetched again unchanged is not signed again; 0 turns it off",
    ),
];

/// The settings file's variable (`--config` wins over it).
pub const CONFIG_ENV: &str = "TESSERA_CONFIG";
/// The log filter's variable, read by the command line before the settings.
pub const LOG_ENV: &str = "TESSERA_LOG";
/// `TESSERA_*` names that are not settings yet are no mistake: the two above, and the name the README's
/// send-event examples read on the client side (the webhook secret they read is a setting).
const OTHER_ENV: &[&str] = &[CONFIG_ENV, LOG_ENV, "TESSERA_URL"];

/// A setting that cannot be used, in plain words naming the setting and the fix.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("TESSERA_{}: {message}", key.to_uppercase())]
    Invalid { key: String, message: String },
    #[error(
        "the configuration file has an unknown key `{key}`{}; the keys are the TESSERA_* names without the prefix, in lower case (see the README's settings table)",
        closest.map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default()
    )]
    UnknownKey { key: String, closest: Option<&'static str> },
    #[error(
        "the environment has {name}, which is not a setting{}; tessera stops rather than ignore a misspelt one (the settings are in the README's table)",
        closest.as_ref().map(|c| format!(": did you mean {c}?")).unwrap_or_default()
    )]
    UnknownVariable { name: String, closest: Option<String> },
    #[error("the configuration file {} cannot be read; fix the path given by --config or TESSERA_CONFIG", path.display())]
    ReadFile { path: PathBuf, source: std::io::Error },
    #[error("the configuration file {} is not valid TOML", path.display())]
    Toml { path: PathBuf, source: toml::de::Error },
    #[error("the configuration file {} sets `{key}` to {value}, which is not a string; quote it", path.display())]
    NotAString { path: PathBuf, key: String, value: String },
    #[error(
        "TESSERA_GOOGLE_ISSUER_ID and TESSERA_GOOGLE_SERVICE_ACCOUNT go together: set both to enable Google Wallet, or neither"
    )]
    GoogleHalfSet,
}

fn bad(key: &str, message: impl fmt::Display) -> SettingsError {
    SettingsError::Invalid { key: key.to_string(), message: message.to_string() }
}

/// The layered values before they are checked.
struct Raw<'a>(&'a BTreeMap<&'static str, String>);

impl Raw<'_> {
    fn get(&self, key: &str) -> String {
        self.0.get(key).map(|s| s.trim().to_string()).unwrap_or_default()
    }

    fn opt(&self, key: &str) -> Option<String> {
        Some(self.get(key)).filter(|s| !s.is_empty())
    }

    fn path(&self, key: &str) -> Result<PathBuf, SettingsError> {
        self.opt(key).map(PathBuf::from).ok_or_else(|| bad(key, "must not be empty; give the path of the file"))
    }

    fn number<T: std::str::FromStr + PartialOrd>(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<T>,
        what: &str,
    ) -> Result<T, SettingsError> {
        match self.get(key).parse::<T>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(bad(key, format!("must be a whole number {what}"))),
        }
    }

    fn listen(&self) -> Result<SocketAddr, SettingsError> {
        let value = self.get("listen");
        value.parse::<SocketAddr>().map_err(|_| {
            bad("listen", format!("`{value}` is not an address; write it as host:port, for example 127.0.0.1:8080"))
        })
    }

    fn database_url(&self) -> Result<DatabaseUrl, SettingsError> {
        let url = self.get("database_url");
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(bad(
                "database_url",
                format!(
                    "{} is not a database URL; use sqlite://FILE or postgres://USER@HOST/DB",
                    crate::urls::shown(&url)
                ),
            ));
        }
        Ok(DatabaseUrl::new(url))
    }

    /// An http(s) base URL (`PublicUrl`): tessera's own, or an API's that links are appended to.
    fn base_url(&self, key: &str) -> Result<PublicUrl, SettingsError> {
        let value = self.get(key);
        PublicUrl::parse(&value).map_err(|e| {
            bad(
                key,
                format!(
                    "{} {e}; write it as https://host[:port][/path], with no query or fragment",
                    crate::urls::shown(&value)
                ),
            )
        })
    }

    fn program(&self) -> Result<String, SettingsError> {
        let program = self.get("program");
        if program.is_empty() || !program.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
            return Err(bad("program", "must be a folder name of letters, digits, - and _, for example default"));
        }
        Ok(program)
    }

    fn token(&self, key: &str) -> Result<Option<Secret>, SettingsError> {
        match self.opt(key) {
            None => Ok(None),
            Some(t) if t.len() < 16 => Err(bad(
                key,
                "is shorter than 16 characters; use a long random value (or unset it to have one generated)",
            )),
            Some(t) => Ok(Some(Secret(t))),
        }
    }

    /// Several secrets, comma-separated, so one can be rotated.
    fn webhook_secrets(&self) -> Result<Vec<Secret>, SettingsError> {
        let Some(list) = self.opt("webhook_secret") else { return Ok(Vec::new()) };
        let secrets: Vec<Secret> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Secret::new).collect();
        if secrets.iter().any(|s| s.0.len() < 16) {
            return Err(bad("webhook_secret", "has a secret shorter than 16 characters; use long random values"));
        }
        Ok(secrets)
    }

    fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, SettingsError> {
        let list = self.get("trusted_proxies");
        let entries = list.split(',').map(str::trim).filter(|s| !s.is_empty());
        entries
            .map(|entry| {
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        bad(
                            "trusted_proxies",
                            format!("has `{entry}`, which is neither an address nor a CIDR range like 10.0.0.0/8"),
                        )
                    })
            })
            .collect()
    }

    fn positive_rate(&self, key: &str) -> Result<f64, SettingsError> {
        match self.get(key).parse::<f64>() {
            Ok(rate) if (0.01..=1_000_000.0).contains(&rate) => Ok(rate),
            _ => Err(bad(key, "must be a number of requests per second from 0.01 to 1000000, for example 20")),
        }
    }

    /// Google issues numeric issuer ids; anything else makes every object id invalid.
    fn google_issuer_id(&self) -> Result<Option<String>, SettingsError> {
        match self.opt("google_issuer_id") {
            Some(id) if id.len() > 30 || !id.bytes().all(|c| c.is_ascii_digit()) => {
                Err(bad("google_issuer_id", "must be the numeric issuer id shown in the Google Pay & Wallet Console"))
            }
            id => Ok(id),
        }
    }

    fn role(&self) -> Result<Role, SettingsError> {
        match self.get("role").as_str() {
            "all" => Ok(Role::All),
            "api" => Ok(Role::Api),
            "worker" => Ok(Role::Worker),
            other => Err(bad("role", format!("`{other}` is not a role; use all, api or worker"))),
        }
    }

    fn apns_auth(&self) -> Result<ApnsAuth, SettingsError> {
        match self.get("apns_auth").as_str() {
            "certificate" => Ok(ApnsAuth::Certificate),
            "token" => Ok(ApnsAuth::Token),
            other => Err(bad("apns_auth", format!("`{other}` is not supported; use certificate or token"))),
        }
    }
}

impl Settings {
    /// Loads the settings the way `tessera` does: defaults, then the TOML file (`--config PATH`, else
    /// `TESSERA_CONFIG`, else `./tessera.toml` if present), then the process environment.
    pub fn load(config_path: Option<&Path>) -> Result<Settings, SettingsError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let explicit = config_path
            .map(Path::to_path_buf)
            .or_else(|| env.iter().find(|(k, _)| k == CONFIG_ENV).map(|(_, v)| PathBuf::from(v)));
        let file = match explicit {
            Some(path) => Some(read_toml(&path, true)?),
            None => {
                let default = PathBuf::from("tessera.toml");
                if default.exists() { Some(read_toml(&default, false)?) } else { None }
            }
        };
        Settings::from_sources(file.unwrap_or_default(), env)
    }

    /// Builds settings from already-read layers: `file` (TOML keys) under `env` (`TESSERA_*` names).
    pub fn from_sources(
        file: BTreeMap<String, String>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, SettingsError> {
        let mut values: BTreeMap<&'static str, String> =
            KEYS.iter().map(|(k, default, _)| (*k, default.to_string())).collect();
        for (key, value) in file {
            let Some((known, _, _)) = KEYS.iter().find(|(k, _, _)| *k == key) else {
                let closest = closest(&key, KEYS.iter().map(|(k, _, _)| *k));
                return Err(SettingsError::UnknownKey { key, closest });
            };
            values.insert(known, value);
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("TESSERA_") else {
                continue;
            };
            let key = rest.to_lowercase();
            match KEYS.iter().find(|(k, _, _)| *k == key) {
                Some((known, _, _)) => {
                    values.insert(known, value);
                }
                None if OTHER_ENV.contains(&name.as_str()) => {}
                None => return Err(unknown_variable(name)),
            }
        }
        Settings::from_values(&values)
    }

    /// Settings for tests and tools: defaults overridden by `(key, value)` pairs (TOML key names).
    pub fn with_overrides<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Settings, SettingsError> {
        let file = pairs.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_sources(file, std::iter::empty())
    }

    fn from_values(v: &BTreeMap<&'static str, String>) -> Result<Settings, SettingsError> {
        let raw = Raw(v);
        let settings = Settings {
            listen: raw.listen()?,
            public_url: raw.base_url("public_url")?,
            database_url: raw.database_url()?,
            templates_dir: raw.path("templates_dir")?,
            program: raw.program()?,
            admin_token: raw.token("admin_token")?,
            webhook_secrets: raw.webhook_secrets()?,
            staff_token: raw.token("staff_token")?,
            apple_cert: raw.path("apple_cert")?,
            apple_key: raw.path("apple_key")?,
            apple_wwdr: raw.path("apple_wwdr")?,
            apple_key_password: raw.opt("apple_key_password").map(Secret),
            apns_url: raw.base_url("apns_url")?,
            apns_ca: raw.opt("apns_ca").map(PathBuf::from),
            apns_auth: raw.apns_auth()?,
            apns_key: raw.opt("apns_key").map(PathBuf::from),
            apns_key_id: raw.opt("apns_key_id"),
            apns_team_id: raw.opt("apns_team_id"),
            google_issuer_id: raw.google_issuer_id()?,
            google_service_account: raw.opt("google_service_account").map(PathBuf::from),
            google_api_url: raw.base_url("google_api_url")?,
            google_rate: raw.positive_rate("google_rate")?,
            google_root_keys: raw
                .opt("google_root_keys")
                .ok_or_else(|| bad("google_root_keys", "must not be empty"))?,
            push_retry_base_ms: raw.number("push_retry_base_ms", 1..=600_000, "milliseconds from 1 to 600000")?,
            push_lease_ms: raw.number("push_lease_ms", 1_000..=600_000, "of milliseconds from 1000 to 600000")?,
            apns_connections: raw.number("apns_connections", 1..=64, "from 1 to 64")?,
            pass_cache_mb: raw.number("pass_cache_mb", 0..=65_536, "of megabytes from 0 (off) to 65536")?,
            role: raw.role()?,
            scan_rate: raw.positive_rate("scan_rate")?,
            scan_retention_days: raw.number("scan_retention_days", 1..=36_500, "of days from 1 to 36500")?,
            http_workers: match raw.number("http_workers", 0..=256, "from 0 (one per core) to 256")? {
                0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
                n => n,
            },
            trusted_proxies: raw.trusted_proxies()?,
            database: crate::store::DatabaseOptions {
                pool_size: raw.number("database_pool_size", 1..=1000, "of connections from 1 to 1000")?,
                statement_timeout_ms: raw.number(
                    "database_statement_timeout_ms",
                    100..=3_600_000,
                    "of milliseconds from 100 to 3600000",
                )?,
                acquire_timeout_ms: raw.number(
                    "database_acquire_timeout_ms",
                    100..=600_000,
                    "of milliseconds from 100 to 600000",
                )?,
            },
        };
        settings.check_combinations()?;
        Ok(settings)
    }

    /// Settings that only make sense together.
    fn check_combinations(&self) -> Result<(), SettingsError> {
        if self.apns_auth == ApnsAuth::Token && (self.apns_key.is_none() || self.apns_key_id.is_none()) {
            return Err(bad(
                "apns_auth",
                "is token, which needs TESSERA_APNS_KEY (the .p8 file) and TESSERA_APNS_KEY_ID; set them or use certificate",
            ));
        }
        if self.google_issuer_id.is_some() != self.google_service_account.is_some() {
            return Err(SettingsError::GoogleHalfSet);
        }
        Ok(())
    }

    /// The pass's webServiceURL: Apple appends `/v1/…` to it.
    pub fn web_service_url(&self) -> &str {
        self.public_url.as_str()
    }

    /// The path part of the public URL (`""` or `/prefix`), under which every route is served.
    pub fn public_path(&self) -> &str {
        self.public_url.path()
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.is_sqlite()
    }
}

/// A URL as it may be shown: without its password or secret query parameters (`urls::redact`).
pub fn redact_url(url: &str) -> String {
    crate::urls::redact(url)
}

/// A `TESSERA_*` name that no setting has, with the closest one that exists.
fn unknown_variable(name: String) -> SettingsError {
    let settings = KEYS.iter().map(|(k, _, _)| format!("TESSERA_{}", k.to_uppercase()));
    let known: Vec<String> = settings.chain(OTHER_ENV.iter().map(|n| n.to_string())).collect();
    let closest = closest(&name, known.iter().map(String::as_str)).map(str::to_string);
    SettingsError::UnknownVariable { name, closest }
}

/// The candidate nearest to `wanted` by edit distance (a swap counts once), when it is near enough to
/// be a slip of the keyboard rather than another word.
fn closest<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let (distance, nearest) =
        candidates.map(|c| (strsim::damerau_levenshtein(wanted, c), c)).min_by_key(|(distance, _)| *distance)?;
    let tolerance = (wanted.trim_start_matches("TESSERA_").len() / 3).max(2);
    (distance <= tolerance).then_some(nearest)
}

fn read_toml(path: &Path, must_exist: bool) -> Result<BTreeMap<String, String>, SettingsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if !must_exist && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(BTreeMap::new());
        }
        Err(source) => return Err(SettingsError::ReadFile { path: path.to_path_buf(), source }),
    };
    let table: toml::Table = text.parse().map_err(|source| SettingsError::Toml { path: path.to_path_buf(), source })?;
    table
        .into_iter()
        .map(|(k, v)| {
            let value = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(items) => items
                    .into_iter()
                    .map(|i| i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string()))
                    .collect::<Vec<_>>()
                    .join(","),
                other => {
                    return Err(SettingsError::NotAString {
                        path: path.to_path_buf(),
                        key: k,
                        value: other.to_string(),
                    });
                }
            };
            Ok((k, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn postgres_urls_are_accepted() {
        let s =
            Settings::from_sources(BTreeMap::new(), env(&[("TESSERA_DATABASE_URL", "postgres://u:pw@h/db")])).unwrap();
        assert!(!s.is_sqlite());
    }

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("sqlite://tessera.db"), "sqlite://tessera.db");
    }

    #[test]
    fn defaults_serve_this_checkout() {
        let s = Settings::from_sources(BTreeMap::new(), env(&[])).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.public_url, "http://127.0.0.1:8080");
        assert_eq!(s.database_url, "sqlite://tessera.db");
        assert_eq!(s.apple_cert, PathBuf::from("certs-example/pass.pem"));
        assert!(s.admin_token.is_none());
        assert_eq!(s.public_path(), "");
    }

    #[test]
    fn environment_overrides_the_file_which_overrides_defaults() {
        let file = BTreeMap::from([
            ("listen".to_string(), "0.0.0.0:9000".to_string()),
            ("public_url".into(), "https://a.example/".into()),
        ]);
        let s =
            Settings::from_sources(file, env(&[("TESSERA_PUBLIC_URL", "https://b.example/wallet/"), ("OTHER", "x")]))
                .unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(s.public_url, "https://b.example/wallet");
        assert_eq!(s.public_path(), "/wallet");
    }

    #[test]
    fn bad_values_name_the_setting_and_the_fix() {
        let err = Settings::from_sources(BTreeMap::new(), env(&[("TESSERA_LISTEN", "nowhere")])).unwrap_err();
        assert!(err.to_string().starts_with("TESSERA_LISTEN:"), "{err}");
        assert!(err.to_string().contains("host:port"));
        let err = Settings::from_sources(BTreeMap::new(), env(&[("TESSERA_ADMIN_TOKEN", "x1y2z3")])).unwrap_err();
        assert!(err.to_string().starts_with("TESSERA_ADMIN_TOKEN:"));
        assert!(!err.to_string().contains("x1y2z3"), "the value of a secret is not echoed");
        let err =
            Settings::from_sources(BTreeMap::new(), env(&[("TESSERA_DATABASE_URL", "mysql://u:pw@h/db")])).unwrap_err();
        assert!(err.to_string().starts_with("TESSERA_DATABASE_URL:") && !err.to_string().contains("pw"), "{err}");
        let file = BTreeMap::from([("lisen".to_string(), "x".to_string())]);
        assert!(Settings::from_sources(file, env(&[])).unwrap_err().to_string().contains("unknown key `lisen`"));
    }

    #[test]
    fn webhook_secrets_rotate_and_secrets_do_not_print() {
        let s = Settings::from_sources(
            BTreeMap::new(),
            env(&[("TESSERA_WEBHOOK_SECRET", "aaaaaaaaaaaaaaaa1, bbbbbbbbbbbbbbbb2")]),
        )
        .unwrap();
        assert_eq!(s.webhook_secrets.len(), 2);
        assert!(!format!("{s:?}").contains("aaaaaaaaaaaaaaaa1"));
    }

    #[test]
    fn urls_with_userinfo_a_bad_port_or_a_query_are_refused() {
        for (name, value) in [
            ("TESSERA_PUBLIC_URL", "https://user:hunter2@wallet.example"),
            ("TESSERA_PUBLIC_URL", "https://wallet.example:99999"),
            ("TESSERA_PUBLIC_URL", "https://wallet.example:port/loyalty"),
            ("TESSERA_APNS_URL", "https://api.push.apple.com/?topic=x"),
            ("TESSERA_GOOGLE_API_URL", "https://someone@walletobjects.example"),
        ] {
            let err = Settings::from_sources(BTreeMap::new(), env(&[(name, value)])).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{name}:")), "{value}: {err}");
            assert!(!err.contains("hunter2"), "a password in a URL is not echoed: {err}");
        }
    }

    #[test]
    fn the_public_url_is_parsed_once_into_its_normal_form() {
        let s = Settings::from_sources(
            BTreeMap::new(),
            env(&[("TESSERA_PUBLIC_URL", "HTTPS://Wallet.Example.com:443/loyalty/")]),
        )
        .unwrap();
        assert_eq!(s.public_url, "https://wallet.example.com/loyalty");
        assert_eq!(s.public_path(), "/loyalty");
        assert_eq!(s.web_service_url(), "https://wallet.example.com/loyalty");
    }

    #[test]
    fn an_unknown_tessera_variable_stops_with_the_closest_name() {
        let err = Settings::from_sources(BTreeMap::new(), env(&[("TESSERA_PUBLICURL", "https://x.example")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("TESSERA_PUBLICURL") && err.contains("TESSERA_PUBLIC_URL"), "{err}");
        let err = Settings::from_sources(BTreeMap::new(), env(&[("TESSERA_DATABSE_POOL_SIZE", "4")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("TESSERA_DATABASE_POOL_SIZE"), "{err}");
        // Names tessera itself reads outside the settings table, and the README's client-side ones.
        let fine = env(&[
            ("TESSERA_CONFIG", "/nonexistent-but-not-read-here.toml"),
            ("TESSERA_LOG", "debug"),
            ("TESSERA_URL", "http://127.0.0.1:8080"),
            ("NOT_TESSERA_X", "1"),
        ]);
        Settings::from_sources(BTreeMap::new(), fine).unwrap();
        let file = BTreeMap::from([("publicurl".to_string(), "https://x.example".to_string())]);
        let err = Settings::from_sources(file, env(&[])).unwrap_err().to_string();
        assert!(err.contains("unknown key `publicurl`") && err.contains("`public_url`"), "{err}");
    }

    #[test]
    fn every_tessera_name_the_docs_and_examples_use_is_accepted() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut text = String::new();
        for file in ["README.md", "docs/deploy.md", "docs/tessera.toml.example", "tests/api/examples.rs"] {
            text.push_str(&std::fs::read_to_string(root.join(file)).unwrap_or_default());
        }
        let mut names: Vec<&str> = text
            .match_indices("TESSERA_")
            .map(|(at, _)| {
                let end = text[at..].find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'));
                &text[at..at + end.unwrap_or(text.len() - at)]
            })
            .filter(|name| name.len() > "TESSERA_".len() && !name.ends_with('_'))
            .collect();
        names.sort_unstable();
        names.dedup();
        assert!(names.contains(&"TESSERA_URL") && names.contains(&"TESSERA_PUBLIC_URL"), "{names:?}");
        let is_setting = |name: &str| KEYS.iter().any(|(k, _, _)| name == format!("TESSERA_{}", k.to_uppercase()));
        for name in names.into_iter().filter(|n| !is_setting(n)) {
            let refused = Settings::from_sources(BTreeMap::new(), env(&[(name, "x")])).err().map(|e| e.to_string());
            assert_eq!(refused, None, "{name} appears in the docs or examples");
        }
    }

    #[test]
    fn database_urls_never_print_their_passwords() {
        let url = "postgres://u:pw@db.example:5432/tessera?sslmode=require&password=secret2&application_name=x";
        let s = Settings::from_sources(BTreeMap::new(), env(&[("TESSERA_DATABASE_URL", url)])).unwrap();
        for shown in [format!("{s:?}"), format!("{:?}", s.database_url), s.database_url.to_string()] {
            assert!(!shown.contains("secret2") && !shown.contains(":pw@"), "{shown}");
        }
        assert_eq!(
            s.database_url.to_string(),
            "postgres://u:***@db.example:5432/tessera?sslmode=require&password=***&application_name=x"
        );
        assert_eq!(redact_url("postgres://h/db?sslpassword=k3y&user=u"), "postgres://h/db?sslpassword=***&user=u");
        assert_eq!(redact_url("postgres://u:p@[broken/db"), "(a URL that cannot be read, not shown)");
    }
}
