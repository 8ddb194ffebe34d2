//! Live updates (issue 3): the path from a signed ledger webhook to a push at APNs.
//!
//! A plain program (`harness = false`) on a tokio multi-thread runtime. It starts the real server
//! in-process the way tests/api/helpers.rs does (temp-dir SQLite database, templates/ and certs-example/,
//! admin token and webhook secret set, listener bound on 127.0.0.1:0 first) with the push worker pointed
//! at the stand-in APNs of tests/api/apns_standin.rs (HTTP/2 + TLS, client-certificate auth, records
//! every push with the `Instant` it arrived). reqwest is the load generator. Server, stand-in and load
//! generator share the runtime and the machine's cores.
//!
//! It measures and prints:
//!
//! 1. `latency`: webhook-to-push latency, one event at a time. One member with one device registered
//!    through the real web service endpoint; 500 sequential signed events (after 20 unmeasured warm-up
//!    events), each sent only after the previous push arrived. Latency = from just before sending the
//!    webhook request to the stand-in's `Push.at`. Goal: p99 < 50 ms.
//! 2. `ledger`: signed events applied per second, 100 requests of 100 events over 1,000 members, at
//!    concurrency 1 and 4: (A/B) no devices, the members created by the events themselves; (C/D) every
//!    member has a registered device, so every applied event also writes a push job. Goal: 5,000/s.
//! 3. `fanout`: pushes per second with 10,000 registered devices: 10 ledger batches of 1,000 events sent
//!    at once; from the first webhook request until the stand-in has recorded all 10,000 pushes.
//!    Goal: 10,000/s.
//!
//! Run: `cargo bench --bench live_updates` (all three), or `cargo bench --bench live_updates -- latency fanout`
//! for some. `-- probe` (not part of the default run) times single SQL statements through sqlx's SQLite
//! driver, apart from tessera, to show where the ledger and push-recording time goes. See BENCHMARKS.md.

#[allow(dead_code)]
#[path = "../tests/api/apns_standin.rs"]
mod apns_standin;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use apns_standin::StandIn;
use serde_json::{Value, json};
use tessera::http::Application;
use tessera::settings::Settings;
use tessera::store::Store;

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";
const WEBHOOK_SECRET: &str = "bench-webhook-secret-0123456789";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One in-process server with its own database, pointed at a stand-in APNs of its own.
struct Server {
    base: String,
    client: reqwest::Client,
    store: Store,
    program: String,
    standin: StandIn,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

/// What a device learns from a pass: its type, serial and authentication token.
struct DevicePass {
    pass_type: String,
    serial: String,
    auth: String,
}

impl Server {
    async fn start() -> Server {
        let standin = StandIn::start(&[&repo().join("certs-example/root.pem")]).await;
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let certs = repo().join("certs-example");
        let mut pairs: BTreeMap<&str, String> = BTreeMap::new();
        pairs.insert("public_url", base.clone());
        pairs.insert("database_url", format!("sqlite://{}/tessera.db", dir.path().display()));
        pairs.insert("templates_dir", repo().join("templates").display().to_string());
        pairs.insert("admin_token", ADMIN_TOKEN.into());
        pairs.insert("webhook_secret", WEBHOOK_SECRET.into());
        pairs.insert("apns_url", standin.url.clone());
        pairs.insert("apns_ca", standin.ca_path.display().to_string());
        pairs.insert("apple_cert", certs.join("pass.pem").display().to_string());
        pairs.insert("apple_key", certs.join("pass.key").display().to_string());
        pairs.insert("apple_wwdr", certs.join("wwdr.pem").display().to_string());
        let settings = Settings::with_overrides(pairs.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
        let app = Application::with_listener(settings, listener).await.unwrap();
        let store = app.state().store.clone();
        let program = app.state().settings.program.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        Server { base, client: reqwest::Client::new(), store, program, standin, stop: Some(stop), task, _dir: dir }
    }

    async fn shutdown(mut self) {
        drop(self.client);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Duration::from_secs(10), &mut self.task).await.is_err() {
            eprintln!("(the server did not stop within 10 s; left running)");
        }
    }

    /// Signs `body` now and posts it to the ledger webhook; answers the statuses of its events.
    async fn post_ledger(&self, body: String) -> Vec<String> {
        let t = tessera::time_fmt::now_unix();
        let signature = format!("t={t},v1={}", tessera::ledger::sign(WEBHOOK_SECRET, t, body.as_bytes()));
        post_signed(&self.client, &self.base, body, signature).await
    }

    /// The pass as a device sees it, from the database (setup shortcut for many members: the device would
    /// read the same serial and token from its pass.json).
    async fn pass_from_store(&self, member_id: &str) -> DevicePass {
        let m = self.store.member(&self.program, member_id).await.unwrap().expect("the member exists");
        DevicePass { pass_type: m.pass_type_id, serial: m.serial_number, auth: m.authentication_token }
    }

    /// Registers `push_token` for `pass` through `POST /v1/devices/{device}/registrations/{type}/{serial}`.
    async fn register(&self, device: &str, pass: &DevicePass, push_token: &str) {
        let url = format!("{}/v1/devices/{device}/registrations/{}/{}", self.base, pass.pass_type, pass.serial);
        let response = self
            .client
            .post(url)
            .header("authorization", format!("ApplePass {}", pass.auth))
            .json(&json!({ "pushToken": push_token }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "registering {device}");
    }

    /// Registers one device per member with `concurrency` requests in flight; answers the push tokens.
    async fn register_all(self: &Arc<Self>, members: &[String], concurrency: usize) -> Vec<String> {
        let mut passes = Vec::with_capacity(members.len());
        for m in members {
            passes.push(self.pass_from_store(m).await);
        }
        let passes = Arc::new(passes);
        let tokens: Arc<Vec<String>> = Arc::new((0..members.len()).map(|i| push_token(members[i].as_str())).collect());
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (server, passes, tokens, next) = (self.clone(), passes.clone(), tokens.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= passes.len() {
                        break;
                    }
                    server.register(&format!("device-{i}"), &passes[i], &tokens[i]).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        Arc::try_unwrap(tokens).unwrap()
    }

    async fn wait_outbox_empty(&self, deadline: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if self.store.outbox_depth(tessera::store::Outbox::Apns).await.unwrap() == 0 {
                return started.elapsed();
            }
            assert!(started.elapsed() < deadline, "the outbox did not drain within {deadline:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn post_signed(client: &reqwest::Client, base: &str, body: String, signature: String) -> Vec<String> {
    let response = client
        .post(format!("{base}/webhooks/ledger"))
        .header("content-type", "application/json")
        .header("tessera-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "ledger webhook: {answer}");
    answer["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap().to_string()).collect()
}

fn event(id: &str, member: &str, sequence: i64, points: i64) -> Value {
    json!({"id": id, "member_id": member, "sequence": sequence, "points": points, "tier": "gold"})
}

fn batch(events: Vec<Value>) -> String {
    json!({ "events": events }).to_string()
}

/// A distinct 64-hex push token that starts with "be" (the stand-in answers 200 to it; it answers errors
/// to tokens starting 410, 400, 429, 503, 403).
fn push_token(seed: &str) -> String {
    let digest = hex::encode(openssl::sha::sha256(seed.as_bytes()));
    format!("be{}", &digest[2..])
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn count_statuses(statuses: &[String]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in statuses {
        *counts.entry(s.as_str()).or_default() += 1;
    }
    counts.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", ")
}

// ---------------------------------------------------------------------------------------------------------
// 1. Webhook-to-push latency.

async fn bench_latency() {
    const WARMUP: i64 = 20;
    const N: i64 = 500;
    println!("\n== 1. webhook-to-push latency, one event at a time ({N} events after {WARMUP} warm-up)");
    let server = Server::start().await;
    // A member through the admin API, its pass downloaded, a device registered with the pass's token.
    let response = server
        .client
        .put(format!("{}/api/v1/members/LAT-1", server.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "Latency Member", "tier": "gold", "points": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let member: Value = response.json().await.unwrap();
    let pkpass = server.client.get(member["links"]["apple"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(pkpass.status(), 200);
    let bytes = pkpass.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut text = String::new();
    archive.by_name("pass.json").unwrap().read_to_string(&mut text).unwrap();
    let pass_json: Value = serde_json::from_str(&text).unwrap();
    let pass = DevicePass {
        pass_type: pass_json["passTypeIdentifier"].as_str().unwrap().into(),
        serial: pass_json["serialNumber"].as_str().unwrap().into(),
        auth: pass_json["authenticationToken"].as_str().unwrap().into(),
    };
    let token = push_token("latency-device");
    server.register("latency-phone", &pass, &token).await;

    let mut latencies = Vec::new();
    let mut request_times = Vec::new();
    let mut after_response = Vec::new();
    let mut cold = Duration::ZERO;
    for i in 1..=(WARMUP + N) {
        let body = event(&format!("lat-{i}"), "LAT-1", i, 1000 + i).to_string();
        let t = tessera::time_fmt::now_unix();
        let signature = format!("t={t},v1={}", tessera::ledger::sign(WEBHOOK_SECRET, t, body.as_bytes()));
        let sent = Instant::now();
        let statuses = post_signed(&server.client, &server.base, body, signature).await;
        let answered = Instant::now();
        assert_eq!(statuses, ["applied"]);
        let deadline = sent + Duration::from_secs(10);
        let push_at = loop {
            let pushes = server.standin.pushes_to(&token);
            if pushes.len() >= i as usize {
                assert_eq!(pushes.len(), i as usize, "one push per event");
                break pushes[i as usize - 1].at;
            }
            assert!(Instant::now() < deadline, "no push for event {i} within 10 s");
            // tokio's timer has 1 ms resolution; the latency is read from Push.at, not from this loop.
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        let latency = push_at.saturating_duration_since(sent);
        if i == 1 {
            cold = latency;
        }
        if i > WARMUP {
            latencies.push(latency);
            request_times.push(answered - sent);
            after_response.push(push_at.saturating_duration_since(answered));
        }
    }
    for v in [&mut latencies, &mut request_times, &mut after_response] {
        v.sort();
    }
    let p99 = pct(&latencies, 99.0);
    println!("first event (cold: opens the APNs connection): {}", ms(cold));
    for (name, v) in [
        ("webhook -> push at stand-in", &latencies),
        ("  of which: webhook request (verify, apply, commit)", &request_times),
        ("  of which: response -> push (worker claim + APNs)", &after_response),
    ] {
        println!(
            "{name}: p50 {}  p90 {}  p99 {}  max {}  (n={})",
            ms(pct(v, 50.0)),
            ms(pct(v, 90.0)),
            ms(pct(v, 99.0)),
            ms(*v.last().unwrap()),
            v.len()
        );
    }
    println!(
        "RESULT latency: p50 {} p90 {} p99 {} max {} -- goal p99 < 50 ms: {}",
        ms(pct(&latencies, 50.0)),
        ms(pct(&latencies, 90.0)),
        ms(p99),
        ms(*latencies.last().unwrap()),
        if p99 < Duration::from_millis(50) { "MET" } else { "MISSED" }
    );
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------------
// 2. Ledger events applied per second.

const MEMBERS: usize = 1000;
const BATCHES: usize = 100;
const PER_BATCH: usize = 100;

/// 100 bodies of 100 events: event i goes to member i % 1,000 with sequence `first_sequence + i / 1,000`,
/// so a batch holds 100 distinct members and each member's sequences rise batch after batch.
fn ledger_bodies(id_prefix: &str, member_prefix: &str, first_sequence: i64) -> Vec<String> {
    (0..BATCHES)
        .map(|b| {
            batch(
                (0..PER_BATCH)
                    .map(|k| {
                        let i = b * PER_BATCH + k;
                        let seq = first_sequence + (i / MEMBERS) as i64;
                        let member = format!("{member_prefix}-{:05}", i % MEMBERS);
                        event(&format!("{id_prefix}-e{i}"), &member, seq, 1000 + i as i64)
                    })
                    .collect(),
            )
        })
        .collect()
}

/// Sends `bodies` with `concurrency` requests in flight; answers (wall time, statuses).
async fn send_bodies(server: &Arc<Server>, bodies: Vec<String>, concurrency: usize) -> (Duration, Vec<String>) {
    let t = tessera::time_fmt::now_unix();
    let signed: Arc<Vec<(String, String)>> = Arc::new(
        bodies
            .into_iter()
            .map(|b| {
                let sig = format!("t={t},v1={}", tessera::ledger::sign(WEBHOOK_SECRET, t, b.as_bytes()));
                (b, sig)
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (server, signed, next) = (server.clone(), signed.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= signed.len() {
                    break;
                }
                let (body, sig) = signed[i].clone();
                statuses.extend(post_signed(&server.client, &server.base, body, sig).await);
            }
            statuses
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.extend(t.await.unwrap());
    }
    (started.elapsed(), statuses)
}

async fn bench_ledger() {
    let total = BATCHES * PER_BATCH;
    println!(
        "\n== 2. signed ledger events applied per second ({BATCHES} requests x {PER_BATCH} events, {MEMBERS} members)"
    );
    let mut results = Vec::new();

    // A/B: no devices; the first 1,000 events create their members, the other 9,000 update them.
    let server = Arc::new(Server::start().await);
    for (variant, prefix, concurrency) in [("A", "nodev1", 1), ("B", "nodev4", 4)] {
        let (wall, statuses) = send_bodies(&server, ledger_bodies(prefix, prefix, 1), concurrency).await;
        assert_eq!(statuses.len(), total);
        let rate = total as f64 / wall.as_secs_f64();
        println!(
            "{variant}: no devices, members created by the events, concurrency {concurrency}: {total} events in {} = {rate:.0} events/s ({})",
            ms(wall),
            count_statuses(&statuses)
        );
        results.push((variant, rate));
    }
    Arc::try_unwrap(server).ok().unwrap().shutdown().await;

    // C/D: 1,000 members made beforehand (one ledger batch of 1,000 creations), each with one device
    // registered through the web service; every applied event then also writes a push job, and the push
    // worker sends them to the stand-in while the events keep coming.
    let server = Arc::new(Server::start().await);
    let members: Vec<String> = (0..MEMBERS).map(|m| format!("dev-{m:05}")).collect();
    let setup = Instant::now();
    let creations: Vec<Value> =
        members.iter().enumerate().map(|(i, m)| event(&format!("dev-create-{i}"), m, 0, 1)).collect();
    let statuses = server.post_ledger(batch(creations)).await;
    assert!(statuses.iter().all(|s| s == "applied"));
    let reg_started = Instant::now();
    let tokens = server.register_all(&members, 8).await;
    let reg_time = reg_started.elapsed();
    println!(
        "(setup: 1,000 members and {} registrations over HTTP, concurrency 8, in {}; registrations {:.0}/s)",
        tokens.len(),
        ms(setup.elapsed()),
        tokens.len() as f64 / reg_time.as_secs_f64()
    );
    for (variant, first_sequence, concurrency) in [("C", 1, 1), ("D", 11, 4)] {
        let before = server.standin.pushes().len();
        let bodies = ledger_bodies(&format!("dev{variant}"), "dev", first_sequence);
        let (wall, statuses) = send_bodies(&server, bodies, concurrency).await;
        assert_eq!(statuses.len(), total);
        let rate = total as f64 / wall.as_secs_f64();
        let drained = server.wait_outbox_empty(Duration::from_secs(120)).await;
        let pushes = server.standin.pushes().len() - before;
        println!(
            "{variant}: every member has a device (each applied event writes a push job), concurrency {concurrency}: {total} events in {} = {rate:.0} events/s ({}); outbox empty {} after the last answer, {pushes} pushes (coalesced)",
            ms(wall),
            count_statuses(&statuses),
            ms(drained)
        );
        results.push((variant, rate));
    }
    Arc::try_unwrap(server).ok().unwrap().shutdown().await;
    for (variant, rate) in results {
        println!(
            "RESULT ledger {variant}: {rate:.0} events/s -- goal >= 5,000/s: {}",
            if rate >= 5000.0 { "MET" } else { "MISSED" }
        );
    }
}

// ---------------------------------------------------------------------------------------------------------
// 3. Push fan-out to 10,000 devices.

async fn bench_fanout() {
    const DEVICES: usize = 10_000;
    const PER_REQUEST: usize = 1000;
    println!("\n== 3. pushes per second to {DEVICES} registered devices");
    let server = Arc::new(Server::start().await);
    let members: Vec<String> = (0..DEVICES).map(|m| format!("fan-{m:05}")).collect();
    let setup = Instant::now();
    for (c, chunk) in members.chunks(PER_REQUEST).enumerate() {
        let events: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(k, m)| event(&format!("fan-create-{}", c * PER_REQUEST + k), m, 1, 1))
            .collect();
        let statuses = server.post_ledger(batch(events)).await;
        assert!(statuses.iter().all(|s| s == "applied"));
    }
    let reg_started = Instant::now();
    let tokens = server.register_all(&members, 8).await;
    let reg_time = reg_started.elapsed();
    println!(
        "(setup: {DEVICES} members by ledger batches, {DEVICES} registrations over HTTP at concurrency 8 in {} ({:.0}/s); total setup {})",
        ms(reg_time),
        DEVICES as f64 / reg_time.as_secs_f64(),
        ms(setup.elapsed())
    );
    // Warm-up: one change for one member, so the worker's APNs connections are open.
    let statuses = server.post_ledger(batch(vec![event("fan-warm", &members[0], 2, 2)])).await;
    assert_eq!(statuses, ["applied"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.standin.pushes().is_empty() {
        assert!(Instant::now() < deadline, "no warm-up push");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.wait_outbox_empty(Duration::from_secs(10)).await;
    let before = server.standin.pushes().len();

    // The change: 10 requests of 1,000 events, all sent at once.
    let t = tessera::time_fmt::now_unix();
    let requests: Vec<(String, String)> = members
        .chunks(PER_REQUEST)
        .enumerate()
        .map(|(c, chunk)| {
            let events = chunk
                .iter()
                .enumerate()
                .map(|(k, m)| event(&format!("fan-{}", c * PER_REQUEST + k), m, 3, 500))
                .collect();
            let body = batch(events);
            let sig = format!("t={t},v1={}", tessera::ledger::sign(WEBHOOK_SECRET, t, body.as_bytes()));
            (body, sig)
        })
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (body, sig) in requests {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let statuses = post_signed(&server.client, &server.base, body, sig).await;
            (statuses, Instant::now())
        }));
    }
    let mut statuses = Vec::new();
    let mut answered = started;
    for task in tasks {
        let (s, at) = task.await.unwrap();
        statuses.extend(s);
        answered = answered.max(at);
    }
    assert!(statuses.iter().all(|s| s == "applied"), "{}", count_statuses(&statuses));
    let deadline = started + Duration::from_secs(120);
    let pushes = loop {
        // Cloning 10,000 recorded pushes costs a few ms; poll gently. The end is read from Push.at.
        let pushes = server.standin.pushes();
        if pushes.len() - before >= DEVICES {
            break pushes;
        }
        assert!(Instant::now() < deadline, "only {} of {DEVICES} pushes within 120 s", pushes.len() - before);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let new = &pushes[before..];
    assert_eq!(new.len(), DEVICES, "one push per device");
    let mut per_token: HashMap<&str, usize> = HashMap::new();
    for p in new {
        *per_token.entry(p.token.as_str()).or_default() += 1;
    }
    assert!(tokens.iter().all(|t| per_token.get(t.as_str()) == Some(&1)), "every device exactly once");
    let first = new.iter().map(|p| p.at).min().unwrap();
    let last = new.iter().map(|p| p.at).max().unwrap();
    let wall = last.saturating_duration_since(started);
    let rate = DEVICES as f64 / wall.as_secs_f64();
    let recorded_at = server.wait_outbox_empty(Duration::from_secs(60)).await;
    // Where the push phase goes: the worker claims up to 1,000 jobs, sends them at once, then records the
    // results before claiming again, so pushes arrive in bursts. A gap of more than 3 ms between two
    // consecutive pushes ends a burst.
    let mut times: Vec<Duration> = new.iter().map(|p| p.at.saturating_duration_since(started)).collect();
    times.sort();
    let mut bursts: Vec<(Duration, Duration, usize)> = vec![(times[0], times[0], 1)];
    for &t in &times[1..] {
        let last = bursts.last_mut().unwrap();
        if t - last.1 > Duration::from_millis(3) {
            bursts.push((t, t, 1));
        } else {
            last.1 = t;
            last.2 += 1;
        }
    }
    let in_bursts: Duration = bursts.iter().map(|b| b.1 - b.0).sum();
    let between: Duration = bursts.windows(2).map(|w| w[1].0 - w[0].1).sum();
    println!(
        "push phase: {} bursts, {} sending and {} between bursts (recording results, claiming); bursts [start ms +duration ms x pushes]: {}",
        bursts.len(),
        ms(in_bursts),
        ms(between),
        bursts
            .iter()
            .map(|b| format!("{:.0}+{:.0}x{}", b.0.as_secs_f64() * 1e3, (b.1 - b.0).as_secs_f64() * 1e3, b.2))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "all 10 webhook requests answered (10,000 events applied) at {}; first push at {}; last push at {}; outbox empty (results recorded) {} after the last push was seen",
        ms(answered - started),
        ms(first.saturating_duration_since(started)),
        ms(wall),
        ms(recorded_at)
    );
    println!(
        "RESULT fanout: {DEVICES} pushes in {} = {rate:.0} pushes/s (push phase alone, first to last push: {:.0}/s) -- goal >= 10,000/s: {}",
        ms(wall),
        DEVICES as f64 / last.saturating_duration_since(first).as_secs_f64(),
        if rate >= 10_000.0 { "MET" } else { "MISSED" }
    );
    Arc::try_unwrap(server).ok().unwrap().shutdown().await;
}

// ---------------------------------------------------------------------------------------------------------
// probe (not run by default): what one SQL statement costs through sqlx's SQLite driver here, apart from
// tessera. Same set-up as the store's writer: the Any driver, one connection, WAL, synchronous = FULL.

async fn bench_probe() {
    use sqlx::any::AnyPoolOptions;
    println!("\n== probe: sqlx + SQLite statement cost (one connection, WAL, synchronous = FULL)");
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/probe.db?mode=rwc", dir.path().display());
    let pool = AnyPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
    for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL"] {
        sqlx::query(pragma).execute(&pool).await.unwrap();
    }
    sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, v BIGINT NOT NULL)").execute(&pool).await.unwrap();
    const N: usize = 10_000;
    let started = Instant::now();
    for _ in 0..N {
        sqlx::query("SELECT 1").execute(&pool).await.unwrap();
    }
    let select = started.elapsed();
    println!(
        "`SELECT 1` x {N}, one after another: {} = {:.1} us per statement",
        ms(select),
        select.as_secs_f64() * 1e6 / N as f64
    );
    const ROWS: usize = 1000;
    let mut single = Duration::ZERO;
    let mut set = Duration::ZERO;
    for round in 0..5 {
        let started = Instant::now();
        let mut tx = pool.begin().await.unwrap();
        for i in 0..ROWS {
            sqlx::query("INSERT INTO t (k, v) VALUES ($1, $2)")
                .bind(format!("s{round}-{i}"))
                .bind(i as i64)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        single += started.elapsed();
        let keys: Vec<String> = (0..ROWS).map(|i| format!("b{round}-{i}")).collect();
        let started = Instant::now();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("INSERT INTO t (k, v) SELECT value, key FROM json_each($1)")
            .bind(serde_json::to_string(&keys).unwrap())
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        set += started.elapsed();
    }
    println!(
        "one transaction of {ROWS} rows (mean of 5): {ROWS} single-row INSERTs {} ({:.1} us per row); one INSERT ... SELECT FROM json_each($1) {}",
        ms(single / 5),
        single.as_secs_f64() * 1e6 / (5 * ROWS) as f64,
        ms(set / 5)
    );
    pool.close().await;
}

fn main() {
    // `cargo bench` passes --bench; other arguments pick benchmarks by name.
    let picked: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let want = |name: &str| (picked.is_empty() && name != "probe") || picked.iter().any(|p| p == name);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!(
        "live_updates: server, stand-in APNs and load generator in one process, one tokio runtime, {} CPUs",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let started = Instant::now();
    runtime.block_on(async {
        if want("latency") {
            bench_latency().await;
        }
        if want("ledger") {
            bench_ledger().await;
        }
        if want("fanout") {
            bench_fanout().await;
        }
        if want("probe") {
            bench_probe().await;
        }
    });
    println!("\nlive_updates finished in {:.1} s", started.elapsed().as_secs_f64());
}
