//! The built binary, killed (SIGKILL) right after answering a webhook while APNs is unreachable, then
//! restarted: the accepted event's push is still delivered, once.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::apns_standin::StandIn;
use crate::helpers::{ADMIN_TOKEN, DevicePass, WEBHOOK_SECRET, pass_json, push_token, repo, unzip};
use crate::processes::{free_addr, start};

/// Creates a member on the child server, downloads its pass, and registers a device with `push_token`
/// through the web service, as an iPhone would.
async fn member_with_device(client: &reqwest::Client, base: &str, member_id: &str, push_token: &str) -> DevicePass {
    let member: Value = client
        .put(format!("{base}/api/v1/members/{member_id}"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "A", "tier": "gold", "points": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let files =
        unzip(&client.get(member["links"]["apple"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap());
    let pj = pass_json(&files);
    let pass = DevicePass {
        pass_type: pj["passTypeIdentifier"].as_str().unwrap().into(),
        serial: pj["serialNumber"].as_str().unwrap().into(),
        auth: pj["authenticationToken"].as_str().unwrap().into(),
    };
    let registered = client
        .post(format!("{base}/v1/devices/phone/registrations/{}/{}", pass.pass_type, pass.serial))
        .header("authorization", format!("ApplePass {}", pass.auth))
        .json(&json!({"pushToken": push_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    pass
}

#[tokio::test]
async fn an_answered_event_survives_sigkill_and_is_pushed_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on yet: APNs is unreachable until the stand-in starts there.
    let apns_addr = free_addr();
    let server_cert_dir = tempfile::tempdir().unwrap();
    crate::helpers::make_server_cert(server_cert_dir.path());
    let listen = free_addr();
    let database_url = crate::helpers::database_url(dir.path()).await;
    let env = || {
        vec![
            ("TESSERA_LISTEN", listen.to_string()),
            ("TESSERA_PUBLIC_URL", format!("http://{listen}")),
            ("TESSERA_DATABASE_URL", database_url.clone()),
            ("TESSERA_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
            ("TESSERA_WEBHOOK_SECRET", WEBHOOK_SECRET.to_string()),
            ("TESSERA_APNS_URL", format!("https://127.0.0.1:{}", apns_addr.port())),
            ("TESSERA_APNS_CA", server_cert_dir.path().join("ca.pem").display().to_string()),
            ("TESSERA_PUSH_RETRY_BASE_MS", "50".to_string()),
        ]
    };
    let client = reqwest::Client::new();
    let mut first = start(&env());
    let base = first.base.clone();

    // A member with a registered device.
    let token = push_token("cc");
    member_with_device(&client, &base, "M-crash", &token).await;

    // The event is answered 200, then the process is killed at once.
    let body =
        json!({"id": "crash-1", "member_id": "M-crash", "sequence": 1, "points": 4242, "tier": "platinum"}).to_string();
    let t = tessera::time_fmt::now_unix();
    let answer = client
        .post(format!("{base}/webhooks/ledger"))
        .header("content-type", "application/json")
        .header("tessera-signature", format!("t={t},v1={}", tessera::ledger::sign(WEBHOOK_SECRET, t, body.as_bytes())))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    // SIGKILL: no shutdown path runs.
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    // APNs comes back; so does tessera, on the same database.
    let apns = StandIn::start_on(apns_addr, &[&repo().join("certs-example/root.pem")], server_cert_dir.path()).await;
    let second = start(&env());
    apns.wait_for(&token, 1).await;

    // Delivered once: the registration records it, and no second push follows.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m: Value = client
            .get(format!("{}/api/v1/members/M-crash", second.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if m["apple"]["devices"][0]["last_push_result"] == "delivered" {
            assert_eq!(m["points"], 4242);
            break;
        }
        assert!(Instant::now() < deadline, "the push was not recorded: {m}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let metrics = client.get(format!("{}/metrics", second.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tessera_pushes_total{result=\"delivered\"} 1"), "{metrics}");
    assert_eq!(apns.pushes_to(&token).len(), 1);
    drop(second);
}

#[tokio::test]
async fn sigterm_lets_the_push_in_flight_finish_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let apns = StandIn::start(&[&repo().join("certs-example/root.pem")]).await;
    let listen = free_addr();
    let env = vec![
        ("TESSERA_LISTEN", listen.to_string()),
        ("TESSERA_PUBLIC_URL", format!("http://{listen}")),
        ("TESSERA_DATABASE_URL", crate::helpers::database_url(dir.path()).await),
        ("TESSERA_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
        ("TESSERA_APNS_URL", apns.url.clone()),
        ("TESSERA_APNS_CA", apns.ca_path.display().to_string()),
    ];
    let client = reqwest::Client::new();
    let mut server = start(&env);
    let base = server.base.clone();
    let token = push_token("7e");
    member_with_device(&client, &base, "M-term", &token).await;
    apns.delay(&token, Duration::from_millis(1500));
    client
        .put(format!("{base}/api/v1/members/M-term"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "A", "tier": "gold", "points": 2}))
        .send()
        .await
        .unwrap();

    // The push reaches APNs, whose answer is held back; SIGTERM now.
    apns.wait_for(&token, 1).await;
    let term = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "serve did not stop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(status.success(), "{status}");

    // The answer arrived before the exit and was recorded: after a restart the device shows it delivered,
    // and it is not pushed again.
    let again = start(&env);
    let m: Value = client
        .get(format!("{}/api/v1/members/M-term", again.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["apple"]["devices"][0]["last_push_result"], "delivered", "{m}");
    let metrics = client.get(format!("{}/metrics", again.base)).send().await.unwrap().text().await.unwrap();
    assert!(!metrics.contains("tessera_pushes_total{result="), "nothing left to push after the restart: {metrics}");
    assert_eq!(apns.pushes_to(&token).len(), 1);
}
