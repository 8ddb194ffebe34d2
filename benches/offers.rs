//! Offers on SQLite, server and load in one process: grant one offer to 100,000 members in ten requests of
//! 10,000 ids (grants written per second), then redemptions of distinct coupons paced open-loop at
//! `BENCH_REDEEM_RATE` a second [2000] for `BENCH_REDEEM_SECONDS` [10], each latency taken from the moment
//! the request was due (so a stall counts against every request behind it).
//!
//!   cargo bench --bench offers

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera::http::Application;
use tessera::settings::Settings;

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";
const WEBHOOK_SECRET: &str = "bench-webhook-secret-0123456789";
const STAFF_TOKEN: &str = "bench-staff-token-0123456789";
const MEMBERS: usize = 100_000;
const PER_GRANT: usize = 10_000;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn start(dir: &std::path::Path) -> (String, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let certs = repo().join("certs-example");
    let database_url = format!("sqlite://{}/tessera.db", dir.display());
    let mut pairs: BTreeMap<&str, String> = BTreeMap::new();
    pairs.insert("public_url", base.clone());
    pairs.insert("database_url", database_url.clone());
    pairs.insert("templates_dir", repo().join("templates").display().to_string());
    pairs.insert("admin_token", ADMIN_TOKEN.into());
    pairs.insert("webhook_secret", WEBHOOK_SECRET.into());
    pairs.insert("staff_token", STAFF_TOKEN.into());
    // Redemptions are limited per staff credential; the bench is one till at a rate no till reaches.
    pairs.insert("scan_rate", "100000".into());
    pairs.insert("apns_url", "https://127.0.0.1:9".into());
    pairs.insert("apple_cert", certs.join("pass.pem").display().to_string());
    pairs.insert("apple_key", certs.join("pass.key").display().to_string());
    pairs.insert("apple_wwdr", certs.join("wwdr.pem").display().to_string());
    let settings = Settings::with_overrides(pairs.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
    let app = Application::with_listener(settings, listener).await.unwrap();
    tokio::spawn(app.run_until(std::future::pending()));
    (base, database_url)
}

async fn post_ledger(client: &reqwest::Client, base: &str, events: Vec<Value>) {
    let body = json!({ "events": events }).to_string();
    let t = tessera::time_fmt::now_unix();
    let signature = format!("t={t},v1={}", tessera::ledger::sign(WEBHOOK_SECRET, t, body.as_bytes()));
    let answer = client
        .post(format!("{base}/webhooks/ledger"))
        .header("content-type", "application/json")
        .header("tessera-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let (base, database_url) = start(dir.path()).await;
    let client = reqwest::Client::new();
    let ids: Vec<String> = (0..MEMBERS).map(|i| format!("OF-{i:06}")).collect();
    for chunk in ids.chunks(1000) {
        let events = chunk
            .iter()
            .map(|id| json!({"id": format!("e-{id}"), "member_id": id, "sequence": 1, "points": 100, "tier": "silver"}))
            .collect();
        post_ledger(&client, &base, events).await;
    }
    let now = tessera::time_fmt::now_unix();
    let offer = json!({"template": "free-drink", "valid_from": tessera::time_fmt::rfc3339(now - 60),
        "valid_until": tessera::time_fmt::rfc3339(now + 86_400)});
    let put =
        client.put(format!("{base}/api/v1/offers/bench")).bearer_auth(ADMIN_TOKEN).json(&offer).send().await.unwrap();
    assert_eq!(put.status(), 201);

    let started = Instant::now();
    for chunk in ids.chunks(PER_GRANT) {
        let answer = client
            .post(format!("{base}/api/v1/offers/bench/grants"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "member_ids": chunk }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let answer: Value = answer.json().await.unwrap();
        assert_eq!(answer["granted"], chunk.len());
    }
    let took = started.elapsed();
    println!(
        "RESULT grants: {MEMBERS} coupons in {} requests of {PER_GRANT} in {:.2} s = {:.0} grants/s",
        MEMBERS / PER_GRANT,
        took.as_secs_f64(),
        MEMBERS as f64 / took.as_secs_f64()
    );

    let rate = env_number("BENCH_REDEEM_RATE", 2000);
    let seconds = env_number("BENCH_REDEEM_SECONDS", 10);
    let wanted = (rate * seconds) as usize;
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&database_url).await.unwrap();
    let rows = sqlx::query("SELECT code FROM coupons ORDER BY coupon_id LIMIT $1")
        .bind(wanted as i64)
        .fetch_all(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    let codes: Vec<String> = rows.iter().map(|r| r.try_get(0).unwrap()).collect();
    let client = Arc::new(reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap());
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let begin = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(codes.len());
    for (i, code) in codes.into_iter().enumerate() {
        let due = begin + interval * i as u32;
        tokio::time::sleep_until(due).await;
        let (client, base) = (client.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let answer = client
                .post(format!("{base}/api/v1/redemptions"))
                .bearer_auth(STAFF_TOKEN)
                .json(&json!({ "code": code, "location": "bench" }))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
            due.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    for task in tasks {
        latencies.push(task.await.unwrap());
    }
    let achieved = latencies.len() as f64 / begin.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "RESULT redemptions: {} at {rate}/s offered ({achieved:.0}/s achieved): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!(
        "offers: server and load in one process on SQLite, {} CPUs",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    runtime.block_on(run());
}
