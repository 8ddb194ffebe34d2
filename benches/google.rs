//! Google Wallet (issue 8), a plain program (`harness = false`): `cargo bench --bench google`.
//!
//! 1. Save links signed per second on one thread (`google::pass::skinny_link`, RS256 through
//!    jsonwebtoken), next to OpenSSL's RSA-2048 signatures per second measured in the same run: a link is
//!    one RSA signature, so that is its ceiling.
//! 2. Object updates per second: an in-process `tessera serve` (SQLite) with the rate lifted
//!    (`TESSERA_GOOGLE_RATE=1000000`) against the stand-in Google (tests/api/google_standin.rs), token
//!    cached: N members created (their objects inserted by the worker), then each changed by one ledger
//!    event; updates/s = N / the time from the first change posted to the last PATCH answered.
//!    Goal: 2,000/s.
//! 3. The default 20 requests/s: 200 changed members drained and timed, extrapolated to 100,000.

#[allow(dead_code)]
#[path = "../tests/api/google_standin.rs"]
mod google_standin;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use google_standin::{GoogleStandIn, write_service_account};
use serde_json::{Value, json};
use tessera::google::account::ServiceAccount;
use tessera::http::Application;
use tessera::settings::Settings;

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";
const WEBHOOK_SECRET: &str = "bench-webhook-secret-0123456789";
const ISSUER: &str = "3388000000022";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Operations per second of `f` over about `seconds`.
fn rate(seconds: f64, mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        for _ in 0..20 {
            f();
        }
        n += 20;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn save_links(dir: &std::path::Path) {
    let written = write_service_account(dir, "http://127.0.0.1:9/token");
    let account = ServiceAccount::load(&written.key_file).unwrap();
    let pkey = openssl::pkey::PKey::private_key_from_pem(written.private_pem.as_bytes()).unwrap();
    println!("\n== 1. save links signed per second, one thread (RS256, 2048-bit key)");
    for round in 1..=3 {
        let ceiling = rate(3.0, || {
            let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey).unwrap();
            signer.update(b"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0").unwrap();
            std::hint::black_box(signer.sign_to_vec().unwrap());
        });
        let links = rate(3.0, || {
            let link = tessera::google::pass::skinny_link(
                &account,
                "https://cards.example.com",
                "3388.default-M-1",
                "3388.default",
                1_800_000_000,
            )
            .unwrap();
            std::hint::black_box(link);
        });
        println!(
            "RESULT round {round}: OpenSSL RSA-2048 {ceiling:.0} sign/s; save links {links:.0}/s ({:.0} % of the ceiling)",
            100.0 * links / ceiling
        );
    }
}

struct Bench {
    base: String,
    client: reqwest::Client,
    google: GoogleStandIn,
    _dir: tempfile::TempDir,
}

async fn start(rate: &str) -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let account = write_service_account(dir.path(), &format!("http://{addr}/token"));
    let google = GoogleStandIn::start_on(addr, &account.email, account.public_key.clone()).await;
    let roots = dir.path().join("roots.json");
    std::fs::write(&roots, r#"{"keys":[]}"#).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let certs = repo().join("certs-example");
    let pairs: BTreeMap<&str, String> = BTreeMap::from([
        ("public_url", base.clone()),
        ("database_url", format!("sqlite://{}/tessera.db", dir.path().display())),
        ("templates_dir", repo().join("templates").display().to_string()),
        ("admin_token", ADMIN_TOKEN.into()),
        ("webhook_secret", WEBHOOK_SECRET.into()),
        ("apns_url", "https://127.0.0.1:9".into()),
        ("apple_cert", certs.join("pass.pem").display().to_string()),
        ("apple_key", certs.join("pass.key").display().to_string()),
        ("apple_wwdr", certs.join("wwdr.pem").display().to_string()),
        ("google_issuer_id", ISSUER.into()),
        ("google_service_account", account.key_file.display().to_string()),
        ("google_api_url", google.base.clone()),
        ("google_root_keys", roots.display().to_string()),
        ("google_rate", rate.into()),
    ]);
    let settings = Settings::with_overrides(pairs.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
    let app = Application::with_listener(settings, listener).await.unwrap();
    tokio::spawn(app.run_until(std::future::pending()));
    Bench { base, client: reqwest::Client::new(), google, _dir: dir }
}

impl Bench {
    /// Posts `members` events (sequence `sequence`, points `points`) in signed batches of 1,000.
    async fn post(&self, members: usize, sequence: i64, points: i64) {
        let events: Vec<Value> = (0..members)
            .map(|m| json!({"id": format!("b{sequence}-{m}"), "member_id": format!("B-{m:06}"), "sequence": sequence, "points": points, "tier": "gold"}))
            .collect();
        for chunk in events.chunks(1000) {
            let raw = json!({ "events": chunk }).to_string();
            let t = tessera::time_fmt::now_unix();
            let signature = format!("t={t},v1={}", tessera::ledger::sign(WEBHOOK_SECRET, t, raw.as_bytes()));
            let response = self
                .client
                .post(format!("{}/webhooks/ledger", self.base))
                .header("content-type", "application/json")
                .header("tessera-signature", signature)
                .body(raw)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    }

    /// Waits until `n` requests with `method` to an object answered 200 since the bench began; answers
    /// when the n-th arrived. Counted under the stand-in's lock (copying its records every poll would cost the server
    /// CPU on these two cores).
    async fn wait_for(&self, method: &str, n: usize) -> Instant {
        let ok =
            |r: &google_standin::Recorded| r.method == method && r.status == 200 && r.path.contains("loyaltyObject");
        let records =
            self.google.wait_until(Duration::from_secs(600), |rs| rs.iter().filter(|r| ok(r)).count() >= n).await;
        // When the n-th one arrived (the stand-in answers at once).
        records.iter().filter(|r| ok(r)).nth(n - 1).map(|r| r.at).unwrap_or_else(|| panic!("fewer than {n} {method}s"))
    }
}

async fn updates_per_second(members: usize) {
    println!("\n== 2. object updates per second, rate lifted, token cached ({members} members)");
    for round in 1..=3 {
        let bench = start("1000000").await;
        let started = Instant::now();
        bench.post(members, 1, 100).await;
        let inserted = bench.wait_for("POST", members).await;
        let insert_rate = members as f64 / inserted.duration_since(started).as_secs_f64();
        let started = Instant::now();
        bench.post(members, 2, 200).await;
        let patched = bench.wait_for("PATCH", members).await;
        let patch_rate = members as f64 / patched.duration_since(started).as_secs_f64();
        println!(
            "RESULT round {round}: {insert_rate:.0} inserts/s, {patch_rate:.0} PATCHes/s ({} tokens issued)",
            bench.google.tokens_issued()
        );
    }
}

async fn default_rate() {
    const MEMBERS: usize = 200;
    println!("\n== 3. {MEMBERS} changed members at the default 20 requests/s");
    let bench = start("20").await;
    bench.post(MEMBERS, 1, 100).await;
    bench.wait_for("POST", MEMBERS).await;
    let started = Instant::now();
    bench.post(MEMBERS, 2, 200).await;
    let done = bench.wait_for("PATCH", MEMBERS).await.duration_since(started).as_secs_f64();
    let per_second = MEMBERS as f64 / done;
    println!(
        "RESULT {MEMBERS} PATCHes in {done:.1} s = {per_second:.1}/s; 100,000 changed members: 100,000 / {per_second:.1} = {:.0} s ({:.1} h)",
        100_000.0 / per_second,
        100_000.0 / per_second / 3600.0
    );
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    save_links(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let members: usize = std::env::var("BENCH_MEMBERS").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000);
    runtime.block_on(updates_per_second(members));
    runtime.block_on(default_rate());
}
