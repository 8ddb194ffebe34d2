//! Two `tessera serve` processes on one PostgreSQL share Google's request rate: 200 members created,
//! then 200 changed, at the default 20 requests/s, each take at least about nine seconds to reach
//! Google (a second's burst, then 20 a second) and end current. Runs in the `api_postgres` binary.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::google_signer::CallbackSigner;
use crate::google_standin::{GoogleStandIn, write_service_account};
use crate::helpers::{ADMIN_TOKEN, WEBHOOK_SECRET, database_url, repo};
use crate::processes::{Server, free_addr, start};

const MEMBERS: usize = 200;
const ISSUER: &str = "3388000000022";

async fn post_events(client: &reqwest::Client, base: &str, events: &[Value]) {
    crate::scale_out::post_events(client, base, events).await.expect("the events are answered 200");
}

/// Waits until Google holds every member's object at `points`; answers how long that took.
async fn drained(google: &GoogleStandIn, points: i64, since: Instant) -> Duration {
    let current = |google: &GoogleStandIn| {
        (0..MEMBERS).all(|m| {
            google
                .object(&format!("{ISSUER}.default-G-{m:03}"))
                .is_some_and(|o| o["loyaltyPoints"]["balance"]["int"] == points)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !current(google) {
        assert!(Instant::now() < deadline, "Google did not get every object at {points} points");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    since.elapsed()
}

#[tokio::test]
async fn two_instances_share_one_request_rate() {
    let dir = tempfile::tempdir().unwrap();
    let database = database_url(dir.path()).await;
    let addr = free_addr();
    let account = write_service_account(dir.path(), &format!("http://{addr}/token"));
    let google = GoogleStandIn::start_on(addr, &account.email, account.public_key.clone()).await;
    let roots = dir.path().join("root-keys.json");
    std::fs::write(&roots, CallbackSigner::new().root_keys_json()).unwrap();
    let instance = || -> Server {
        let listen = free_addr();
        start(&[
            ("TESSERA_LISTEN", listen.to_string()),
            ("TESSERA_PUBLIC_URL", format!("http://{listen}")),
            ("TESSERA_DATABASE_URL", database.clone()),
            ("TESSERA_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
            ("TESSERA_WEBHOOK_SECRET", WEBHOOK_SECRET.to_string()),
            ("TESSERA_APNS_URL", "https://127.0.0.1:9".to_string()),
            ("TESSERA_TEMPLATES_DIR", repo().join("templates").display().to_string()),
            ("TESSERA_GOOGLE_ISSUER_ID", ISSUER.to_string()),
            ("TESSERA_GOOGLE_SERVICE_ACCOUNT", account.key_file.display().to_string()),
            ("TESSERA_GOOGLE_API_URL", google.base.clone()),
            ("TESSERA_GOOGLE_ROOT_KEYS", roots.display().to_string()),
            ("TESSERA_LOG", "warn,tessera::cli=info".to_string()),
        ])
    };
    let (a, b) = (instance(), instance());
    let client = reqwest::Client::new();
    let events = |sequence: i64, points: i64| -> Vec<Value> {
        (0..MEMBERS)
            .map(|m| json!({"id": format!("g{sequence}-{m}"), "member_id": format!("G-{m:03}"), "sequence": sequence, "points": points, "tier": "gold"}))
            .collect()
    };

    // 200 new members (half through each instance): 200 inserts (and the class).
    let started = Instant::now();
    post_events(&client, &a.base, &events(1, 100)[..MEMBERS / 2]).await;
    post_events(&client, &b.base, &events(1, 100)[MEMBERS / 2..]).await;
    let created = drained(&google, 100, started).await;

    // 200 changes: one PATCH each.
    let patches_before = google.rest_requests().iter().filter(|r| r.method == "PATCH").count();
    let started = Instant::now();
    post_events(&client, &b.base, &events(2, 200)[..MEMBERS / 2]).await;
    post_events(&client, &a.base, &events(2, 200)[MEMBERS / 2..]).await;
    let changed = drained(&google, 200, started).await;
    let patches = google.rest_requests().iter().filter(|r| r.method == "PATCH").count() - patches_before;

    eprintln!("200 inserts in {created:?}, 200 PATCHes in {changed:?}");
    // At 20/s with a second's burst, 200 requests need at least 9 s, whichever instance sends them.
    assert!(created >= Duration::from_millis(8_500), "200 inserts took only {created:?}: the rate was not shared");
    assert!(changed >= Duration::from_millis(8_500), "200 PATCHes took only {changed:?}: the rate was not shared");
    assert!(changed < Duration::from_secs(30), "{changed:?}");
    assert_eq!(patches, MEMBERS, "one PATCH per changed member");
    assert_eq!(google.tokens_issued(), 2, "both instances worked (one token each)");
    // Every request over the whole run stayed within the rate, as Google sees it: in any 3 s, three
    // seconds' worth (60), the burst (20) and one round a busy machine sent late (20), plus the class.
    // Two instances each spending the whole rate would send 120 and more.
    let times: Vec<Instant> = google.rest_requests().iter().map(|r| r.at).collect();
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..].iter().take_while(|u| u.duration_since(*t) < Duration::from_secs(3)).count();
        assert!(in_window <= 101, "{in_window} requests within three seconds");
    }
}
