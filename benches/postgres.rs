//! Scale-out on PostgreSQL: events applied per second and pushes per second with one and with
//! three `tessera serve` instances (the release binary, as child processes) on one throwaway cluster.
//!
//! A plain program (`harness = false`). For each instance count: a fresh database; the instances start
//! together (migrations under the advisory lock); 1,000 members made by one ledger batch, each with one
//! device registered through the web service (spread over the instances); then 300 signed requests of
//! 100 events (event i: member i mod 1,000, sequence 1 + i / 1,000), four in flight, round-robin over the
//! instances. Events/s = 30,000 / the time until the last answer. Pushes/s = pushes recorded by the
//! stand-in APNs (tests/api/apns_standin.rs) / the time from the first request to the last push, once the
//! outbox is empty. Everything (PostgreSQL, the instances, the stand-in, the load) shares the machine.
//!
//! Each count runs twice: with no devices (the ledger alone) and with a device per member (every applied
//! event also writes a push job, and the workers push meanwhile).
//!
//! Run: `cargo bench --bench postgres` (needs the `postgresql` package); `BENCH_HTTP_WORKERS=1 cargo bench
//! --bench postgres` starts every instance with `TESSERA_HTTP_WORKERS=1`; `BENCH_TESSERA_BINARY=PATH`
//! runs another build's `tessera` (the before/after comparison of scripts/bench-engine.sh) and
//! `BENCH_PUSHES_ONLY=1` only the runs with devices. Goals: at least 5,000 events/s
//! with one instance; three instances at least as fast as one.

#[allow(dead_code)]
#[path = "../tests/api/apns_standin.rs"]
mod apns_standin;
#[allow(dead_code)]
#[path = "../tests/api/pg_cluster.rs"]
mod pg_cluster;
#[allow(dead_code)]
#[path = "../tests/api/processes.rs"]
mod processes;
#[allow(dead_code)]
#[path = "../tests/api/tools.rs"]
mod tools;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apns_standin::StandIn;
use serde_json::{Value, json};
use sqlx::Connection;

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";
const WEBHOOK_SECRET: &str = "bench-webhook-secret-0123456789";
const MEMBERS: usize = 1_000;
/// Requests of 100 events per run.
const REQUESTS: usize = 300;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn instance(database: &str, apns: &StandIn, http_workers: usize) -> processes::Server {
    let listen = processes::free_addr();
    processes::start(&[
        ("TESSERA_LISTEN", listen.to_string()),
        ("TESSERA_PUBLIC_URL", format!("http://{listen}")),
        ("TESSERA_DATABASE_URL", database.to_string()),
        ("TESSERA_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
        ("TESSERA_WEBHOOK_SECRET", WEBHOOK_SECRET.to_string()),
        ("TESSERA_APNS_URL", apns.url.clone()),
        ("TESSERA_APNS_CA", apns.ca_path.display().to_string()),
        ("TESSERA_LOG", "warn,tessera::cli=info".to_string()),
        ("TESSERA_HTTP_WORKERS", http_workers.to_string()),
    ])
}

async fn post(client: &reqwest::Client, base: &str, events: &[Value]) {
    let raw = json!({ "events": events }).to_string();
    let t = tessera::time_fmt::now_unix();
    let signature = format!("t={t},v1={}", tessera::ledger::sign(WEBHOOK_SECRET, t, raw.as_bytes()));
    let answer = client
        .post(format!("{base}/webhooks/ledger"))
        .header("content-type", "application/json")
        .header("tessera-signature", signature)
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

/// One device per member, registered through the web service with the pass's serial and token.
async fn register(client: &reqwest::Client, bases: &[String], database: &str) {
    let mut conn = sqlx::PgConnection::connect(database).await.unwrap();
    let passes: Vec<(String, String, String)> =
        sqlx::query_as("SELECT pass_type_id, serial_number, authentication_token FROM apple_passes")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let limit = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (pt, serial, auth)) in passes.into_iter().enumerate() {
        let (client, base, permit) =
            (client.clone(), bases[i % bases.len()].clone(), limit.clone().acquire_owned().await);
        tasks.spawn(async move {
            let token = format!("be{:062x}", i);
            let url = format!("{base}/v1/devices/bench-{i}/registrations/{pt}/{serial}");
            let r = client
                .post(url)
                .header("authorization", format!("ApplePass {auth}"))
                .json(&json!({"pushToken": token}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            drop(permit);
        });
    }
    tasks.join_all().await;
}

/// Four requests in flight to each instance before the clock starts, so every instance has its database
/// connections open (as a serving instance has) and none is timed connecting.
async fn warm_up(client: &reqwest::Client, bases: &[String]) {
    let mut requests = tokio::task::JoinSet::new();
    for (b, base) in bases.iter().enumerate() {
        for k in 0..4 {
            let (client, base) = (client.clone(), base.clone());
            let events = vec![
                json!({"id": format!("w-{b}-{k}"), "member_id": format!("WARM-{b}-{k}"), "sequence": 0, "points": 0, "tier": "gold"}),
            ];
            requests.spawn(async move { post(&client, &base, &events).await });
        }
    }
    requests.join_all().await;
}

async fn run(base: &str, instances: usize, devices: bool) -> (f64, f64, usize) {
    // TESSERA_HTTP_WORKERS for every instance (0: one per core); BENCH_HTTP_WORKERS=1 gives three
    // instances on two cores one event loop each.
    let workers: usize = std::env::var("BENCH_HTTP_WORKERS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let database = pg_cluster::create_database(base).await;
    let apns = StandIn::start(&[&repo().join("certs-example/root.pem")]).await;
    let servers: Vec<processes::Server> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..instances).map(|_| s.spawn(|| instance(&database, &apns, workers))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let client = reqwest::Client::new();
    let creations: Vec<Value> = (0..MEMBERS)
        .map(|m| json!({"id": format!("c-{m}"), "member_id": format!("B-{m}"), "sequence": 0, "points": 0, "tier": "gold"}))
        .collect();
    post(&client, &bases[0], &creations).await;
    if devices {
        register(&client, &bases, &database).await;
    }
    warm_up(&client, &bases).await;
    let pushes_before = apns.pushes().len();

    let started = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(4));
    let mut requests = tokio::task::JoinSet::new();
    for r in 0..REQUESTS {
        let events: Vec<Value> = (r * 100..(r + 1) * 100)
            .map(|i| {
                json!({"id": format!("e-{i}"), "member_id": format!("B-{}", i % MEMBERS), "sequence": 1 + i / MEMBERS,
                            "points": i, "tier": "gold"})
            })
            .collect();
        let (client, base, permit) =
            (client.clone(), bases[r % instances].clone(), limit.clone().acquire_owned().await);
        requests.spawn(async move {
            post(&client, &base, &events).await;
            drop(permit);
        });
    }
    requests.join_all().await;
    let applied_in = started.elapsed();

    let mut conn = sqlx::PgConnection::connect(&database).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM push_jobs").fetch_one(&mut conn).await.unwrap();
        if waiting == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{waiting} pushes never went out");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pushes = apns.pushes();
    let sent = &pushes[pushes_before..];
    let last = sent.iter().map(|p| p.at).max().unwrap_or(started);
    drop(servers);
    let push_rate = if sent.is_empty() { 0.0 } else { sent.len() as f64 / (last - started).as_secs_f64() };
    ((REQUESTS * 100) as f64 / applied_in.as_secs_f64(), push_rate, sent.len())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(cluster) = pg_cluster::start() else {
        eprintln!("postgres bench: PostgreSQL is not installed (apt-get install postgresql); nothing measured");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // BENCH_PUSHES_ONLY=1: only the runs with devices (what scripts/bench-engine.sh compares across builds).
    let pushes_only = std::env::var("BENCH_PUSHES_ONLY").is_ok_and(|v| v == "1");
    let runs = [(1, false), (3, false), (1, true), (3, true), (1, false), (3, false), (1, true), (3, true)];
    for (instances, devices) in runs.into_iter().filter(|(_, devices)| *devices || !pushes_only) {
        let (events, pushes, count) = runtime.block_on(run(&cluster.base, instances, devices));
        if devices {
            println!(
                "RESULT postgres, {instances} instance(s), a device per member: {events:.0} events/s (30,000 in batches of 100, 4 in flight); {pushes:.0} pushes/s ({count} pushes, coalesced, first request to last push)"
            );
        } else {
            println!(
                "RESULT postgres, {instances} instance(s), no devices: {events:.0} events/s (30,000 in batches of 100, 4 in flight)"
            );
        }
    }
}
