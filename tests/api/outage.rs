//! PostgreSQL stopped for 10 seconds under webhook load, then started again: requests during the outage
//! answer 503 `unavailable` (never a 500), every event answered 200 is applied, and no push is lost.
//! Runs in the `api_postgres` binary, on a cluster of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;

use crate::apns_standin::StandIn;
use crate::helpers::{DevicePass, push_token, repo, spawn_app_with};
use crate::pg_cluster::OwnCluster;

const MEMBERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_and_loses_nothing() {
    if crate::pg_cluster::require_postgres("the outage test").is_none() {
        return;
    }
    let cluster = tokio::task::spawn_blocking(OwnCluster::start).await.unwrap().expect("PostgreSQL is installed");
    let cluster = Arc::new(cluster);
    let apns = StandIn::start(&[&repo().join("certs-example/root.pem")]).await;
    let ca = apns.ca_path.display().to_string();
    let database = cluster.url("postgres");
    let app = spawn_app_with(&[("apns_url", &apns.url), ("apns_ca", &ca), ("database_url", &database)]).await;
    let mut tokens = Vec::new();
    for m in 0..MEMBERS {
        let pass: DevicePass =
            app.member_with_pass(&format!("OUT-{m}"), &json!({"name": "A", "tier": "gold", "points": 0})).await;
        let token = push_token("ee");
        assert_eq!(app.register(&format!("out-{m}"), &pass, &token).await.status(), 201);
        tokens.push(token);
    }

    // The loyalty backend: one event at a time per member, retrying what is not answered 200.
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = tokio::task::JoinSet::new();
    for m in 0..MEMBERS {
        let (client, base, stop) = (app.client.clone(), app.base.clone(), stop.clone());
        senders.spawn(async move { (m, backend(client, base, m, stop).await) });
    }
    let until = |seconds| Instant::now() + Duration::from_secs(seconds);
    // A second of load, ten seconds without the database, two seconds after it is back.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let down = cluster.clone();
    tokio::task::spawn_blocking(move || down.down()).await.unwrap();
    let health = app.get(&format!("{}/healthz", app.base)).await;
    assert_eq!(health.status(), 503, "healthz says the database is away");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let up = cluster.clone();
    tokio::task::spawn_blocking(move || up.up()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut logs: Vec<(usize, Log)> = senders.join_all().await;
    logs.sort_by_key(|(m, _)| *m);
    let logs: Vec<Log> = logs.into_iter().map(|(_, log)| log).collect();

    let mut database = sqlx::PgConnection::connect(&cluster.url("postgres")).await.unwrap();
    let mut unavailable = 0;
    for (m, log) in logs.iter().enumerate() {
        assert!(log.other.is_empty(), "OUT-{m}: answers other than 200 and 503 unavailable: {:?}", log.other);
        unavailable += log.unavailable;
        // Every event answered 200 is applied; the member ends at the last one.
        for id in &log.applied {
            let status: Option<String> = sqlx::query_scalar("SELECT status FROM ledger_events WHERE event_id = $1")
                .bind(id)
                .fetch_optional(&mut database)
                .await
                .unwrap();
            assert_eq!(status.as_deref(), Some("applied"), "{id}");
        }
        let member: Value = app.get_member(&format!("OUT-{m}")).await.json().await.unwrap();
        assert_eq!(member["points"], log.last_points, "OUT-{m}");
    }
    assert!(unavailable > 0, "the outage was seen as 503 unavailable");
    // No push lost: the outbox drains and every device is pushed after its member's last change.
    let deadline = until(60);
    loop {
        let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM push_jobs").fetch_one(&mut database).await.unwrap();
        if waiting == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{waiting} push jobs still waiting");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (m, token) in tokens.iter().enumerate() {
        let last = logs[m].last_sent.expect("events were sent");
        assert!(apns.pushes_to(token).iter().any(|p| p.at > last), "OUT-{m} was not pushed after its last change");
    }
}

#[derive(Default)]
struct Log {
    applied: Vec<String>,
    unavailable: usize,
    other: Vec<String>,
    last_points: i64,
    last_sent: Option<Instant>,
}

/// Sends member `m`'s events in order until told to stop; an event not answered 200 is sent again.
async fn backend(client: reqwest::Client, base: String, m: usize, stop: Arc<AtomicBool>) -> Log {
    let mut log = Log::default();
    let mut sequence = 1;
    // When the event now being sent was first sent: its change commits after that.
    let mut first_sent: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let points = sequence * 10;
        let body = json!({"id": format!("out-{m}-{sequence}"), "member_id": format!("OUT-{m}"), "sequence": sequence,
                          "points": points, "tier": "gold"})
        .to_string();
        let t = tessera::time_fmt::now_unix();
        let signature =
            format!("t={t},v1={}", tessera::ledger::sign(crate::helpers::WEBHOOK_SECRET, t, body.as_bytes()));
        let sent = *first_sent.get_or_insert_with(Instant::now);
        let answer = client
            .post(format!("{base}/webhooks/ledger"))
            .header("content-type", "application/json")
            .header("tessera-signature", signature)
            .body(body)
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        let Ok(answer) = answer else {
            log.other.push("no answer".into());
            continue;
        };
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        match status {
            200 => {
                let result = &body["results"][0];
                if result["status"] == "applied" {
                    log.applied.push(result["id"].as_str().unwrap_or_default().to_string());
                }
                log.last_points = points;
                log.last_sent = Some(sent);
                first_sent = None;
                sequence += 1;
            }
            503 if body["error"]["code"] == "unavailable" => log.unavailable += 1,
            _ => log.other.push(format!("{status} {body}")),
        }
    }
    log
}
