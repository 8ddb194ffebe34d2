//! spawn_app: the real server on port 0 with a fresh SQLite file, and helpers per endpoint.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use openssl::x509::{X509, X509Name, X509NameBuilder};
use serde_json::Value;
use tessera::http::Application;
use tessera::settings::Settings;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const WEBHOOK_SECRET: &str = "test-webhook-secret-0123456789";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn example_certs() -> [(String, String); 3] {
    let certs = repo().join("certs-example");
    [
        ("apple_cert".into(), certs.join("pass.pem").display().to_string()),
        ("apple_key".into(), certs.join("pass.key").display().to_string()),
        ("apple_wwdr".into(), certs.join("wwdr.pem").display().to_string()),
    ]
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    /// The database this server uses (SQLite in `dir`, or a fresh PostgreSQL database).
    pub database_url: String,
}

/// A fresh database for one test on this binary's back end: a SQLite file in `dir`, or (in the
/// `api_postgres` binary) a new PostgreSQL database, falling back to SQLite when PostgreSQL is missing.
pub async fn database_url(dir: &Path) -> String {
    if crate::pg::postgres_wanted()
        && let Some(url) = crate::pg::fresh_database().await
    {
        return url;
    }
    format!("sqlite://{}/tessera.db", dir.display())
}

/// Starts the server with a fresh database; `overrides` are settings (TOML key names) on top.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut pairs: BTreeMap<String, String> = BTreeMap::new();
    pairs.insert("public_url".into(), base.clone());
    let database_url = database_url(dir.path()).await;
    pairs.insert("database_url".into(), database_url.clone());
    pairs.insert("templates_dir".into(), repo().join("templates").display().to_string());
    pairs.insert("admin_token".into(), ADMIN_TOKEN.into());
    pairs.insert("webhook_secret".into(), WEBHOOK_SECRET.into());
    // Nothing listens on the discard port: tests that push start a stand-in APNs and point here.
    pairs.insert("apns_url".into(), "https://127.0.0.1:9".into());
    pairs.insert("push_retry_base_ms".into(), "20".into());
    pairs.extend(example_certs());
    for (k, v) in overrides {
        pairs.insert(k.to_string(), v.to_string());
    }
    let settings = Settings::with_overrides(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
    let app = Application::with_listener(settings, listener).await.unwrap();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp { base, client: reqwest::Client::new(), dir, database_url }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

impl TestApp {
    pub fn member_url(&self, id: &str) -> String {
        format!("{}/api/v1/members/{id}", self.base)
    }

    pub async fn put_member(&self, id: &str, body: &Value) -> reqwest::Response {
        self.client.put(self.member_url(id)).bearer_auth(ADMIN_TOKEN).json(body).send().await.unwrap()
    }

    pub async fn put_raw(&self, id: &str, body: &str, content_type: Option<&str>) -> reqwest::Response {
        let mut req = self.client.put(self.member_url(id)).bearer_auth(ADMIN_TOKEN).body(body.to_string());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req.send().await.unwrap()
    }

    pub async fn get_member(&self, id: &str) -> reqwest::Response {
        self.client.get(self.member_url(id)).bearer_auth(ADMIN_TOKEN).send().await.unwrap()
    }

    pub async fn delete_member(&self, id: &str) -> reqwest::Response {
        self.client.delete(self.member_url(id)).bearer_auth(ADMIN_TOKEN).send().await.unwrap()
    }

    /// Creates a member and answers its JSON.
    pub async fn create_member(&self, id: &str, body: &Value) -> Value {
        let response = self.put_member(id, body).await;
        assert_eq!(response.status(), 201, "creating {id}");
        response.json().await.unwrap()
    }

    /// GET with `Authorization: Bearer <token>`.
    pub async fn get_authed(&self, url: &str, token: &str) -> reqwest::Response {
        self.client.get(url).header("authorization", format!("Bearer {token}")).send().await.unwrap()
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.client.get(url).send().await.unwrap()
    }

    /// Downloads a member's pass and answers the response headers and the archive's files.
    pub async fn download_pass(
        &self,
        member: &Value,
    ) -> (reqwest::header::HeaderMap, Vec<u8>, BTreeMap<String, Vec<u8>>) {
        let response = self.get(member["links"]["apple"].as_str().unwrap()).await;
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap().to_vec();
        let files = unzip(&bytes);
        (headers, bytes, files)
    }
}

/// Asserts the spec's error shape and code; answers the error object.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body["error"].clone()
}

pub fn unzip(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut files = BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        files.insert(name, data);
    }
    files
}

pub fn pass_json(files: &BTreeMap<String, Vec<u8>>) -> Value {
    serde_json::from_slice(&files["pass.json"]).unwrap()
}

/// Writes the archive's files to `dir` and runs the acceptance command
/// `openssl smime -verify -binary -inform DER -in signature -content manifest.json -CAfile ROOT`.
pub fn openssl_verify(files: &BTreeMap<String, Vec<u8>>, root: &Path) -> bool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("signature"), &files["signature"]).unwrap();
    std::fs::write(dir.path().join("manifest.json"), &files["manifest.json"]).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "smime",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "signature",
            "-content",
            "manifest.json",
            "-CAfile",
        ])
        .arg(root)
        .current_dir(dir.path())
        .output()
        .expect("openssl is installed");
    out.status.success()
}

/// Runs the built binary with `args` in `cwd`, with only `env` among TESSERA_* variables.
pub fn tessera(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(args).current_dir(cwd);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TESSERA_")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

pub use crate::apns_standin::make_server_cert;

/// A throwaway CA (root → intermediate → pass certificate) written as PEM files into `dir`:
/// root.pem, wwdr.pem, pass.pem, pass.key.
pub fn make_ca(dir: &Path, pass_type_id: &str, team_id: &str) {
    let root_key = rsa_key();
    let root_name = name(&[("CN", "Other Test Root"), ("O", "Other CA")]);
    let root = sign_cert(&root_name, &root_name, &root_key, &root_key, true, None);
    let inter_key = rsa_key();
    let inter_name = name(&[("CN", "Other Test Intermediate"), ("O", "Other CA")]);
    let inter = sign_cert(&inter_name, &root_name, &inter_key, &root_key, true, None);
    let pass_key = rsa_key();
    let mut b = X509NameBuilder::new().unwrap();
    b.append_entry_by_text("UID", pass_type_id).unwrap();
    b.append_entry_by_text("CN", &format!("Pass Type ID: {pass_type_id}")).unwrap();
    b.append_entry_by_text("OU", team_id).unwrap();
    b.append_entry_by_text("O", "Other Brand").unwrap();
    let pass = sign_cert(&b.build(), &inter_name, &pass_key, &inter_key, false, Some(()));
    std::fs::write(dir.join("root.pem"), root.to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("wwdr.pem"), inter.to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("pass.pem"), pass.to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("pass.key"), pass_key.private_key_to_pem_pkcs8().unwrap()).unwrap();
}

fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

fn name(entries: &[(&str, &str)]) -> X509Name {
    let mut b = X509NameBuilder::new().unwrap();
    for (k, v) in entries {
        b.append_entry_by_text(k, v).unwrap();
    }
    b.build()
}

fn sign_cert(
    subject: &X509Name,
    issuer: &X509Name,
    key: &PKey<Private>,
    issuer_key: &PKey<Private>,
    ca: bool,
    leaf: Option<()>,
) -> X509 {
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, openssl::bn::MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap()).unwrap();
    b.set_subject_name(subject).unwrap();
    b.set_issuer_name(issuer).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::days_from_now(365).unwrap()).unwrap();
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap();
        b.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build().unwrap()).unwrap();
    }
    if leaf.is_some() {
        b.append_extension(KeyUsage::new().critical().digital_signature().build().unwrap()).unwrap();
        b.append_extension(ExtendedKeyUsage::new().client_auth().email_protection().build().unwrap()).unwrap();
    }
    b.sign(issuer_key, MessageDigest::sha256()).unwrap();
    b.build()
}

/// A pass as a device sees it.
pub struct DevicePass {
    pub pass_type: String,
    pub serial: String,
    pub auth: String,
}

pub async fn spawn_app_with_apns() -> (TestApp, crate::apns_standin::StandIn) {
    let standin = crate::apns_standin::StandIn::start(&[&repo().join("certs-example/root.pem")]).await;
    let ca = standin.ca_path.display().to_string();
    let app = spawn_app_with(&[("apns_url", &standin.url), ("apns_ca", &ca)]).await;
    (app, standin)
}

impl TestApp {
    /// Creates a member and answers what its pass tells a device.
    pub async fn member_with_pass(&self, id: &str, body: &Value) -> DevicePass {
        let member = self.create_member(id, body).await;
        let (_, _, files) = self.download_pass(&member).await;
        let pass = pass_json(&files);
        DevicePass {
            pass_type: pass["passTypeIdentifier"].as_str().unwrap().into(),
            serial: pass["serialNumber"].as_str().unwrap().into(),
            auth: pass["authenticationToken"].as_str().unwrap().into(),
        }
    }

    pub fn registration_url(&self, device: &str, pass: &DevicePass) -> String {
        format!("{}/v1/devices/{device}/registrations/{}/{}", self.base, pass.pass_type, pass.serial)
    }

    pub async fn register(&self, device: &str, pass: &DevicePass, push_token: &str) -> reqwest::Response {
        self.client
            .post(self.registration_url(device, pass))
            .header("authorization", format!("ApplePass {}", pass.auth))
            .json(&serde_json::json!({ "pushToken": push_token }))
            .send()
            .await
            .unwrap()
    }

    pub async fn list(&self, device: &str, pass_type: &str, since: Option<&str>) -> reqwest::Response {
        let mut url = format!("{}/v1/devices/{device}/registrations/{pass_type}", self.base);
        if let Some(tag) = since {
            url = format!("{url}?passesUpdatedSince={tag}");
        }
        self.client.get(url).send().await.unwrap()
    }

    pub async fn latest_pass(&self, pass: &DevicePass, if_modified_since: Option<&str>) -> reqwest::Response {
        let mut req = self
            .client
            .get(format!("{}/v1/passes/{}/{}", self.base, pass.pass_type, pass.serial))
            .header("authorization", format!("ApplePass {}", pass.auth));
        if let Some(since) = if_modified_since {
            req = req.header("if-modified-since", since);
        }
        req.send().await.unwrap()
    }

    /// Posts a ledger body signed now with the webhook secret.
    pub async fn post_ledger(&self, body: &Value) -> reqwest::Response {
        let raw = body.to_string();
        let t = tessera::time_fmt::now_unix();
        let signature = format!("t={t},v1={}", tessera::ledger::sign(WEBHOOK_SECRET, t, raw.as_bytes()));
        self.post_ledger_raw(&raw, Some(&signature)).await
    }

    pub async fn post_ledger_raw(&self, raw: &str, signature: Option<&str>) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/webhooks/ledger", self.base))
            .header("content-type", "application/json")
            .body(raw.to_string());
        if let Some(s) = signature {
            req = req.header("tessera-signature", s);
        }
        req.send().await.unwrap()
    }

    /// Polls the member until `done` holds (deadline 20 s).
    pub async fn wait_member(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let member: Value = self.get_member(id).await.json().await.unwrap();
            if done(&member) {
                return member;
            }
            assert!(std::time::Instant::now() < deadline, "waiting for {what}: {member}");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}

/// A hex push token with a recognizable prefix (the stand-in answers by prefix).
pub fn push_token(prefix: &str) -> String {
    let random = hex::encode(openssl::sha::sha256(tessera::ids::random_token(16).as_bytes()));
    format!("{prefix}{}", &random[prefix.len()..])
}

/// Copies a folder tree (a program's templates, to change one file of a copy).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

impl TestApp {
    /// Runs one SQL statement on the server's database (for what no API does: ageing rows, breaking a
    /// table on purpose).
    pub async fn sql(&self, statement: &str) {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut db = sqlx::AnyConnection::connect(&self.database_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(statement.to_string())).execute(&mut db).await.unwrap();
        db.close().await.unwrap();
    }
}
