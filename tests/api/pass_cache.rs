//! The signed-pass cache: a pass fetched again at the same update tag costs no signature, any change
//! misses the cache (also when another instance made it), and the byte budget bounds the process.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, TestApp, WEBHOOK_SECRET, pass_json, repo, spawn_app, spawn_app_with, unzip};
use crate::processes::{free_addr, start};

/// A counter from /metrics.
async fn metric(app_base: &str, name: &str) -> u64 {
    let text = reqwest::get(format!("{app_base}/metrics")).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')).map(|v| v.parse().unwrap()))
        .unwrap_or_else(|| panic!("{name} is not in /metrics"))
}

async fn pass_bytes(app: &TestApp, member: &Value) -> Vec<u8> {
    app.download_pass(member).await.1
}

#[tokio::test]
async fn a_pass_fetched_again_unchanged_is_not_signed_again() {
    let app = spawn_app().await;
    let member = app.create_member("M-cache", &json!({"name": "A", "tier": "gold", "points": 10})).await;
    let first = pass_bytes(&app, &member).await;
    let again = pass_bytes(&app, &member).await;
    assert_eq!(first, again, "the same signed bytes");
    assert_eq!(metric(&app.base, "tessera_passes_built_total").await, 1);
    assert_eq!(metric(&app.base, "tessera_pass_cache_hits_total").await, 1);

    // The web service's latest-pass endpoint (a second device) shares the cache.
    let files = unzip(&first);
    let pj = pass_json(&files);
    let (pt, serial, auth) = (
        pj["passTypeIdentifier"].as_str().unwrap(),
        pj["serialNumber"].as_str().unwrap(),
        pj["authenticationToken"].as_str().unwrap(),
    );
    let device = app
        .client
        .get(format!("{}/v1/passes/{pt}/{serial}", app.base))
        .header("authorization", format!("ApplePass {auth}"))
        .send()
        .await
        .unwrap();
    assert_eq!(device.status(), 200);
    assert_eq!(device.bytes().await.unwrap().to_vec(), first);
    assert_eq!(metric(&app.base, "tessera_passes_built_total").await, 1);
    assert_eq!(metric(&app.base, "tessera_pass_cache_hits_total").await, 2);

    // Any visible change moves the update tag: a miss, a new signature, the new balance.
    app.put_member("M-cache", &json!({"name": "A", "tier": "gold", "points": 11})).await;
    let changed = pass_bytes(&app, &member).await;
    assert_ne!(changed, first);
    assert!(pass_json(&unzip(&changed)).to_string().contains("11"), "the new balance is on the pass");
    assert_eq!(metric(&app.base, "tessera_passes_built_total").await, 2);

    // So does a ledger event.
    let body = json!({"id": "e-cache-1", "member_id": "M-cache", "sequence": 1, "points": 12, "tier": "platinum"});
    assert_eq!(app.post_ledger(&body).await.status(), 200);
    let after_event = pass_bytes(&app, &member).await;
    assert_eq!(pass_json(&unzip(&after_event))["serialNumber"], pj["serialNumber"]);
    assert_ne!(after_event, changed);
    assert_eq!(metric(&app.base, "tessera_passes_built_total").await, 3);
}

#[tokio::test]
async fn concurrent_fetches_of_one_pass_cost_one_signature() {
    let app = spawn_app().await;
    let member = app.create_member("M-many", &json!({"name": "A", "tier": "silver", "points": 1})).await;
    let url = member["links"]["apple"].as_str().unwrap().to_string();
    let mut fetches = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (client, url) = (app.client.clone(), url.clone());
        fetches.spawn(async move { client.get(url).send().await.unwrap().bytes().await.unwrap() });
    }
    let bodies: Vec<_> = fetches.join_all().await;
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(metric(&app.base, "tessera_passes_built_total").await, 1, "devices fetching together share one build");
    assert_eq!(metric(&app.base, "tessera_pass_cache_hits_total").await, 15);
}

#[tokio::test]
async fn zero_turns_the_cache_off() {
    let app = spawn_app_with(&[("pass_cache_mb", "0")]).await;
    let member = app.create_member("M-off", &json!({"name": "A", "tier": "gold", "points": 10})).await;
    pass_bytes(&app, &member).await;
    pass_bytes(&app, &member).await;
    assert_eq!(metric(&app.base, "tessera_passes_built_total").await, 2);
    assert_eq!(metric(&app.base, "tessera_pass_cache_hits_total").await, 0);
}

#[tokio::test]
async fn a_change_made_by_another_instance_misses_this_instances_cache() {
    let one = spawn_app().await;
    let db = one.database_url.clone();
    let member = one.create_member("M-two", &json!({"name": "A", "tier": "gold", "points": 10})).await;
    let before = pass_bytes(&one, &member).await;
    assert_eq!(pass_bytes(&one, &member).await, before, "cached at this instance");

    let other = spawn_app_with(&[("database_url", &db)]).await;
    let updated = other.put_member("M-two", &json!({"name": "A", "tier": "gold", "points": 99})).await;
    assert_eq!(updated.status(), 200);

    let after = pass_bytes(&one, &member).await;
    assert_ne!(after, before, "the first instance serves the change the other made");
    assert!(pass_json(&unzip(&after)).to_string().contains("99"));
}

/// `VmRSS` of a process, in bytes.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

/// 20,000 distinct passes through the built binary (each downloaded by its link, then asked for by a
/// device through the web service): the caches keep to their bounds, so the process's resident memory
/// stays under the budget plus 64 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_distinct_passes_keep_to_the_memory_budget() {
    const MEMBERS: usize = 20_000;
    const BUDGET_MB: u64 = 64;
    let dir = tempfile::tempdir().unwrap();
    let address = free_addr();
    let server = start(&[
        ("TESSERA_LISTEN", address.to_string()),
        ("TESSERA_PUBLIC_URL", format!("http://{address}")),
        ("TESSERA_DATABASE_URL", crate::helpers::database_url(dir.path()).await),
        ("TESSERA_ADMIN_TOKEN", ADMIN_TOKEN.into()),
        ("TESSERA_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
        ("TESSERA_PASS_CACHE_MB", BUDGET_MB.to_string()),
        ("TESSERA_LOG", "warn,tessera::cli=info".into()),
        ("TESSERA_TEMPLATES_DIR", repo().join("templates").display().to_string()),
    ]);
    let base = server.base.clone();
    let client = reqwest::Client::new();
    // Members come from ledger events (1,000 a request); their links from the admin API.
    for batch in 0..MEMBERS / 1000 {
        let events: Vec<Value> = (0..1000)
            .map(|i| {
                let n = batch * 1000 + i;
                json!({"id": format!("mem-{n}"), "member_id": format!("MEM-{n}"), "sequence": 1, "points": n, "tier": "gold"})
            })
            .collect();
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
    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    let mut downloads = tokio::task::JoinSet::new();
    for n in 0..MEMBERS {
        let (client, base, permit) = (client.clone(), base.clone(), limit.clone().acquire_owned().await.unwrap());
        downloads.spawn(async move {
            let member: Value = client
                .get(format!("{base}/api/v1/members/MEM-{n}"))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let pass = client.get(member["links"]["apple"].as_str().unwrap()).send().await.unwrap();
            assert_eq!(pass.status(), 200);
            let last_modified = pass.headers()["last-modified"].clone();
            let bytes = pass.bytes().await.unwrap();
            // The device then asks the web service (which caches the pass lookup): 304, nothing signed.
            let pj = pass_json(&unzip(&bytes));
            let (pt, serial, auth) = (&pj["passTypeIdentifier"], &pj["serialNumber"], &pj["authenticationToken"]);
            let url = format!("{base}/v1/passes/{}/{}", pt.as_str().unwrap(), serial.as_str().unwrap());
            let device = client
                .get(url)
                .header("authorization", format!("ApplePass {}", auth.as_str().unwrap()))
                .header("if-modified-since", last_modified)
                .send()
                .await
                .unwrap();
            assert_eq!(device.status(), 304);
            drop(permit);
            bytes.len()
        });
    }
    let total: usize = downloads.join_all().await.into_iter().sum();
    assert!(total > MEMBERS * 40_000, "20,000 whole passes were downloaded ({total} bytes)");
    assert_eq!(metric(&base, "tessera_passes_built_total").await, MEMBERS as u64, "each a signature");
    let resident = resident_bytes(server.child.id());
    let ceiling = (BUDGET_MB + 64) * 1024 * 1024;
    assert!(resident <= ceiling, "resident {} MB, over the budget + 64 MB ({} MB)", resident >> 20, ceiling >> 20);
    eprintln!("note: resident memory after {MEMBERS} distinct passes: {} MB (budget {BUDGET_MB} MB)", resident >> 20);
}

/// The member link shares the web service's lookup cache: a pass downloaded again reads no database (on
/// SQLite; PostgreSQL, where another instance's change would not be seen, always reads), and a change
/// made through the API is served on the next download.
#[tokio::test]
async fn the_member_link_looks_the_pass_up_once_and_serves_a_change_at_once() {
    let app = spawn_app().await;
    let member = app.create_member("M-link", &json!({"name": "A", "tier": "gold", "points": 10})).await;
    let first = pass_bytes(&app, &member).await;
    let lookups_cached = || metric(&app.base, "tessera_record_cache_hits_total");
    let before = lookups_cached().await;
    assert_eq!(pass_bytes(&app, &member).await, first);
    assert_eq!(pass_bytes(&app, &member).await, first);
    let hits = lookups_cached().await - before;
    if app.database_url.starts_with("postgres://") {
        assert_eq!(hits, 0, "PostgreSQL: every download reads the database");
    } else {
        assert_eq!(hits, 2, "SQLite: both downloads again came from the lookup cache");
    }

    for points in [11, 12] {
        let changed = app.put_member("M-link", &json!({"name": "A", "tier": "gold", "points": points})).await;
        assert_eq!(changed.status(), 200);
        let after = pass_bytes(&app, &member).await;
        let fields = pass_json(&unzip(&after)).to_string();
        assert!(fields.contains(&format!("\"value\":{points}")), "the new balance {points} at once: {fields}");
    }
    let retired = app.delete_member("M-link").await;
    assert_eq!(retired.status(), 200);
    assert_eq!(pass_json(&unzip(&pass_bytes(&app, &member).await))["voided"], true, "the retirement at once");
}
