//! Several `tessera serve` processes on one PostgreSQL share the work: events posted across three
//! instances, duplicated and out of order, one instance killed midway; nothing lost, nothing applied
//! twice, every device told of its member's last change. Runs in the `api_postgres` binary.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::apns_standin::StandIn;
use crate::helpers::{ADMIN_TOKEN, WEBHOOK_SECRET, database_url, pass_json, push_token, repo, unzip};
use crate::processes::{Server, free_addr, start};

const MEMBERS: usize = 1_000;
const UNIQUE_EVENTS: usize = 7_200;
const DUPLICATES: usize = 800;

/// The settings of an instance on `database` pushing to `apns`, in the given role.
fn instance_env(database: &str, apns: &StandIn, role: &str) -> Vec<(&'static str, String)> {
    let listen = free_addr();
    vec![
        ("TESSERA_ROLE", role.to_string()),
        ("TESSERA_LISTEN", listen.to_string()),
        ("TESSERA_PUBLIC_URL", format!("http://{listen}")),
        ("TESSERA_DATABASE_URL", database.to_string()),
        ("TESSERA_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
        ("TESSERA_WEBHOOK_SECRET", WEBHOOK_SECRET.to_string()),
        ("TESSERA_APNS_URL", apns.url.clone()),
        ("TESSERA_APNS_CA", apns.ca_path.display().to_string()),
        ("TESSERA_PUSH_RETRY_BASE_MS", "50".to_string()),
        // Short, so the killed instance's jobs come back quickly.
        ("TESSERA_PUSH_LEASE_MS", "2000".to_string()),
        ("TESSERA_LOG", "warn,tessera::cli=info".to_string()),
        ("TESSERA_TEMPLATES_DIR", repo().join("templates").display().to_string()),
    ]
}

fn instance(database: &str, apns: &StandIn) -> Server {
    start(&instance_env(database, apns, "all"))
}

/// A tiny deterministic generator for the shuffles.
struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

pub async fn post_events(client: &reqwest::Client, base: &str, events: &[Value]) -> reqwest::Result<Value> {
    let raw = json!({ "events": events }).to_string();
    let t = tessera::time_fmt::now_unix();
    let signature = format!("t={t},v1={}", tessera::ledger::sign(WEBHOOK_SECRET, t, raw.as_bytes()));
    let response = client
        .post(format!("{base}/webhooks/ledger"))
        .header("content-type", "application/json")
        .header("tessera-signature", signature)
        .body(raw)
        .timeout(Duration::from_secs(30))
        .send()
        .await?
        .error_for_status()?;
    response.json().await
}

/// Each member's events: sequences 1..=n in a shuffled order, 7 or 8 per member (7,200 in all).
fn events_per_member(rng: &mut Xorshift) -> Vec<Value> {
    let mut events = Vec::new();
    for m in 0..MEMBERS {
        let count = UNIQUE_EVENTS / MEMBERS + usize::from(m < UNIQUE_EVENTS % MEMBERS);
        let mut sequences: Vec<usize> = (1..=count).collect();
        rng.shuffle(&mut sequences);
        for seq in sequences {
            events.push(json!({"id": format!("so-{m}-{seq}"), "member_id": format!("SO-{m}"), "sequence": seq,
                               "points": seq * 10, "tier": if seq % 2 == 0 { "gold" } else { "silver" }}));
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_the_work_and_a_killed_one_loses_nothing() {
    if crate::pg_cluster::require_postgres("the three-instance test").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let database = database_url(dir.path()).await;
    assert!(database.starts_with("postgres://"), "{database}");
    let apns = StandIn::start(&[&repo().join("certs-example/root.pem")]).await;
    // Three instances start together on an empty database: migrations run once, under an advisory lock.
    let mut servers: Vec<Server> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(|| instance(&database, &apns))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let client = reqwest::Client::new();

    // Members made by a first ledger event each, then two devices each through the web service.
    let creations: Vec<Value> = (0..MEMBERS)
        .map(|m| json!({"id": format!("so-{m}-0"), "member_id": format!("SO-{m}"), "sequence": 0, "points": 0, "tier": "silver"}))
        .collect();
    post_events(&client, &bases[0], &creations).await.unwrap();
    let tokens = register_devices(&client, &bases).await;

    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    let unique = events_per_member(&mut rng);
    let mut posted: Vec<Value> = unique.clone();
    for _ in 0..DUPLICATES {
        posted.push(unique[rng.below(unique.len())].clone());
    }
    rng.shuffle(&mut posted);
    assert_eq!(posted.len(), 8_000);

    let last_sent = send_across(&client, &bases, &posted, &mut servers).await;
    let survivors: Vec<&String> = bases.iter().take(2).collect();

    // Every member ends at its highest sequence.
    for m in 0..MEMBERS {
        let highest = UNIQUE_EVENTS / MEMBERS + usize::from(m < UNIQUE_EVENTS % MEMBERS);
        let member: Value = client
            .get(format!("{}/api/v1/members/SO-{m}", survivors[m % 2]))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(member["points"], highest * 10, "SO-{m}: {member}");
    }
    // Nothing is left in the outbox (every job written with a change was delivered, the killed
    // instance's leased ones included, after their lease), every device heard of its member's last
    // change, and no device got more pushes than its member had changes.
    wait_for_empty_outbox(&database).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    for (m, member_tokens) in tokens.iter().enumerate() {
        let changes = UNIQUE_EVENTS / MEMBERS + usize::from(m < UNIQUE_EVENTS % MEMBERS);
        let last = last_sent[&format!("SO-{m}")];
        for token in member_tokens {
            loop {
                let pushes = apns.pushes_to(token);
                assert!(pushes.len() <= changes, "SO-{m}: {} pushes for {changes} changes", pushes.len());
                if pushes.iter().any(|p| p.at > last) {
                    break;
                }
                assert!(Instant::now() < deadline, "SO-{m}: no push after its last change ({} pushes)", pushes.len());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

async fn wait_for_empty_outbox(database: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(database).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM push_jobs").fetch_one(&mut conn).await.unwrap();
        if waiting == 0 {
            return;
        }
        if Instant::now() >= deadline {
            let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
                "SELECT push_token, generation, CAST(attempts AS BIGINT), not_before - CAST(extract(epoch from now()) * 1000 AS BIGINT), lease_until FROM push_jobs LIMIT 5",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            panic!("{waiting} push jobs still waiting, e.g. (token, generation, attempts, due in ms, lease): {rows:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Downloads every member's pass (spread over the instances) and registers two devices for it.
async fn register_devices(client: &reqwest::Client, bases: &[String]) -> Vec<[String; 2]> {
    let limit = Arc::new(tokio::sync::Semaphore::new(12));
    let mut tasks = tokio::task::JoinSet::new();
    for m in 0..MEMBERS {
        let (client, base, permit) =
            (client.clone(), bases[m % 3].clone(), limit.clone().acquire_owned().await.unwrap());
        tasks.spawn(async move {
            let tokens = [push_token("a0"), push_token("a1")];
            for (d, token) in tokens.iter().enumerate() {
                register_device(&client, &base, &format!("SO-{m}"), &format!("so-{m}-{d}"), token).await;
            }
            drop(permit);
            (m, tokens)
        });
    }
    let mut tokens: Vec<(usize, [String; 2])> = tasks.join_all().await;
    tokens.sort_by_key(|(m, _)| *m);
    tokens.into_iter().map(|(_, t)| t).collect()
}

/// Posts the events in batches of 100, round-robin over the instances, four at a time; SIGKILLs the
/// third instance halfway and sends whatever it did not answer to the others again (an event is
/// accepted only once answered). Answers, per member, when its highest sequence was first sent (its
/// change committed later than that).
async fn send_across(
    client: &reqwest::Client,
    bases: &[String],
    events: &[Value],
    servers: &mut [Server],
) -> HashMap<String, Instant> {
    let batches: Vec<Vec<Value>> = events.chunks(100).map(<[Value]>::to_vec).collect();
    let highest: HashMap<String, i64> = events.iter().fold(HashMap::new(), |mut acc, e| {
        let entry = acc.entry(e["member_id"].as_str().unwrap().to_string()).or_insert(0);
        *entry = (*entry).max(e["sequence"].as_i64().unwrap());
        acc
    });
    let mut last_sent: HashMap<String, Instant> = HashMap::new();
    let mut alive = 3;
    for (round, group) in batches.chunks(4).enumerate() {
        let mut sends = tokio::task::JoinSet::new();
        for (i, batch) in group.iter().enumerate() {
            let (client, batch, bases) = (client.clone(), batch.clone(), bases.to_vec());
            let first = (round * 4 + i) % alive;
            sends.spawn(async move {
                let (mut target, first_sent) = (first, Instant::now());
                let deadline = first_sent + Duration::from_secs(60);
                loop {
                    match post_events(&client, &bases[target], &batch).await {
                        Ok(answer) => return (batch, first_sent, answer),
                        // An answer that is an error is a failure of the server, not of the connection.
                        Err(e) if e.is_status() => panic!("batch refused by {}: {e}", bases[target]),
                        // Not answered, so not accepted: another instance takes the batch (what the
                        // killed one did commit of it now answers duplicate).
                        Err(e) => {
                            assert!(Instant::now() < deadline, "no instance answered the batch within 60 s: {e}");
                            target = (target + 1) % 2;
                        }
                    }
                }
            });
        }
        if round == batches.len() / 8 {
            // Halfway, with this round's requests in flight (some of them to it).
            servers[2].child.kill().unwrap();
            servers[2].child.wait().unwrap();
            alive = 2;
        }
        for (batch, first_sent, answer) in sends.join_all().await {
            for (event, result) in batch.iter().zip(answer["results"].as_array().unwrap()) {
                assert!(["applied", "duplicate", "stale"].contains(&result["status"].as_str().unwrap()), "{result}");
                let member = event["member_id"].as_str().unwrap();
                if event["sequence"].as_i64() == highest.get(member).copied() {
                    // The change commits after the first batch carrying it was first sent.
                    let slot = last_sent.entry(member.to_string()).or_insert(first_sent);
                    *slot = (*slot).min(first_sent);
                }
            }
        }
    }
    last_sent
}

/// Starts an instance in `role`; a worker-only instance logs no address, so this waits for its start line.
fn with_role(database: &str, apns: &StandIn, role: &str) -> Server {
    let env = instance_env(database, apns, role);
    if role == "worker" { crate::processes::start_logging(&env, "tessera is pushing") } else { start(&env) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_instance_and_a_worker_instance_split_the_work() {
    if crate::pg_cluster::require_postgres("the roles test").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let database = database_url(dir.path()).await;
    assert!(database.starts_with("postgres://"), "{database}");
    let apns = StandIn::start(&[&repo().join("certs-example/root.pem")]).await;
    let api = with_role(&database, &apns, "api");
    let client = reqwest::Client::new();
    post_events(
        &client,
        &api.base,
        &[json!({"id": "r-0", "member_id": "R-1", "sequence": 0, "points": 0, "tier": "gold"})],
    )
    .await
    .unwrap();
    let tokens = push_token("a2");
    register_device(&client, &api.base, "R-1", "role-device", &tokens).await;
    post_events(
        &client,
        &api.base,
        &[json!({"id": "r-1", "member_id": "R-1", "sequence": 1, "points": 5, "tier": "gold"})],
    )
    .await
    .unwrap();
    // The API instance pushes nothing: the job waits in the outbox.
    let metrics = client.get(format!("{}/metrics", api.base)).send().await.unwrap().text().await.unwrap();
    assert!(!metrics.contains("tessera_pushes_total{"), "an api instance does not push: {metrics}");
    assert!(apns.pushes_to(&tokens).is_empty());
    // A worker instance (no HTTP listener) drains it.
    let _worker = with_role(&database, &apns, "worker");
    apns.wait_for(&tokens, 1).await;
    wait_for_empty_outbox(&database).await;
}

/// Registers `device` with `token` for a member's pass through the web service, as an iPhone does after
/// downloading the pass.
async fn register_device(client: &reqwest::Client, base: &str, member_id: &str, device: &str, token: &str) {
    let member: Value = client
        .get(format!("{base}/api/v1/members/{member_id}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bytes = client.get(member["links"]["apple"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    let pj = pass_json(&unzip(&bytes));
    let (pt, serial) = (pj["passTypeIdentifier"].as_str().unwrap(), pj["serialNumber"].as_str().unwrap());
    let registered = client
        .post(format!("{base}/v1/devices/{device}/registrations/{pt}/{serial}"))
        .header("authorization", format!("ApplePass {}", pj["authenticationToken"].as_str().unwrap()))
        .json(&json!({ "pushToken": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
}
