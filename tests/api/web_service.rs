//! Apple's pass web service, walked the way an iPhone does.

use serde_json::{Value, json};

use crate::helpers::{DevicePass, assert_error, push_token, spawn_app};

#[tokio::test]
async fn a_device_walks_the_whole_protocol() {
    let app = spawn_app().await;
    let pass = app.member_with_pass("M-walk", &json!({"name": "A", "tier": "gold", "points": 10})).await;
    let device = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
    let token = push_token("aa");

    let wrong = DevicePass { auth: "wrong-token-0123456789abcdef".into(), ..pass_clone(&pass) };
    assert_error(app.register(device, &wrong, &token).await, 401, "unauthorized").await;

    assert_eq!(app.register(device, &pass, &token).await.status(), 201);
    assert_eq!(app.register(device, &pass, &token).await.status(), 200);

    let first = app.list(device, &pass.pass_type, None).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "application/json");
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["serialNumbers"], json!([pass.serial]));
    let tag = first["lastUpdated"].as_str().unwrap().to_string();
    assert_eq!(app.list(device, &pass.pass_type, Some(&tag)).await.status(), 204);
    // An unreadable tag means "everything registered".
    assert_eq!(app.list(device, &pass.pass_type, Some("yesterday")).await.status(), 200);

    let fetched = app.latest_pass(&pass, None).await;
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["content-type"], "application/vnd.apple.pkpass");
    let last_modified = fetched.headers()["last-modified"].to_str().unwrap().to_string();
    assert_eq!(app.latest_pass(&pass, Some(&last_modified)).await.status(), 304);
    assert_error(app.latest_pass(&wrong, None).await, 401, "unauthorized").await;
    let missing =
        app.client.get(format!("{}/v1/passes/{}/{}", app.base, pass.pass_type, pass.serial)).send().await.unwrap();
    assert_error(missing, 401, "unauthorized").await;

    let log = app
        .client
        .post(format!("{}/v1/log", app.base))
        .json(&json!({"logs": ["a message from Wallet"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(log.status(), 200);

    let unregister = app
        .client
        .delete(app.registration_url(device, &pass))
        .header("authorization", format!("ApplePass {}", pass.auth))
        .send()
        .await
        .unwrap();
    assert_eq!(unregister.status(), 200);
    assert_eq!(app.list(device, &pass.pass_type, None).await.status(), 204);
    let unauthorized = app.client.delete(app.registration_url(device, &pass)).send().await.unwrap();
    assert_error(unauthorized, 401, "unauthorized").await;
}

fn pass_clone(p: &DevicePass) -> DevicePass {
    DevicePass { pass_type: p.pass_type.clone(), serial: p.serial.clone(), auth: p.auth.clone() }
}

#[tokio::test]
async fn tags_return_only_passes_that_changed_and_track_registrations() {
    let app = spawn_app().await;
    let a = app.member_with_pass("M-a", &json!({"name": "A", "tier": "gold", "points": 1})).await;
    let b = app.member_with_pass("M-b", &json!({"name": "B", "tier": "gold", "points": 1})).await;
    let device = "device0001";
    app.register(device, &a, &push_token("ab")).await;
    app.register(device, &b, &push_token("ab")).await;
    let all: Value = app.list(device, &a.pass_type, None).await.json().await.unwrap();
    let mut serials: Vec<&str> = all["serialNumbers"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    serials.sort();
    let mut expected = vec![a.serial.as_str(), b.serial.as_str()];
    expected.sort();
    assert_eq!(serials, expected);
    let tag = all["lastUpdated"].as_str().unwrap().to_string();

    app.put_member("M-b", &json!({"name": "B", "tier": "gold", "points": 2})).await;
    let changed: Value = app.list(device, &a.pass_type, Some(&tag)).await.json().await.unwrap();
    assert_eq!(changed["serialNumbers"], json!([b.serial]), "only the changed pass");
    let next = changed["lastUpdated"].as_str().unwrap();
    assert!(next.parse::<i64>().unwrap() > tag.parse::<i64>().unwrap());
    assert_eq!(app.list(device, &a.pass_type, Some(next)).await.status(), 204);

    // A PUT that changes nothing is no change to report.
    app.put_member("M-b", &json!({"name": "B", "tier": "gold", "points": 2})).await;
    assert_eq!(app.list(device, &a.pass_type, Some(next)).await.status(), 204);
    // Another device sees nothing.
    assert_eq!(app.list("other-device", &a.pass_type, None).await.status(), 204);
}

#[tokio::test]
async fn registering_again_updates_the_push_token_and_new_identifiers_are_normal() {
    let app = spawn_app().await;
    let pass = app.member_with_pass("M-re", &json!({"name": "A", "tier": "gold", "points": 1})).await;
    assert_eq!(app.register("dev-1", &pass, &push_token("a1")).await.status(), 201);
    let second = push_token("a2");
    assert_eq!(app.register("dev-1", &pass, &second).await.status(), 200);
    assert_eq!(app.register("dev-2", &pass, &push_token("a3")).await.status(), 201);
    let member: Value = app.get_member("M-re").await.json().await.unwrap();
    let devices = member["apple"]["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2);
    assert!(devices[0]["registered_at"].as_str().is_some());
    assert!(!member.to_string().contains(&second), "push tokens are never shown: {member}");
}

#[tokio::test]
async fn hostile_requests_get_4xx_never_5xx() {
    let app = spawn_app().await;
    let pass = app.member_with_pass("M-h", &json!({"name": "A", "tier": "gold", "points": 1})).await;
    let auth = format!("ApplePass {}", pass.auth);
    let base = &app.base;
    let pt = &pass.pass_type;
    let serial = &pass.serial;
    let long = "x".repeat(5000);
    let cases: Vec<(reqwest::RequestBuilder, u16)> = vec![
        (
            app.client
                .post(format!("{base}/v1/devices/dev/registrations/{pt}/{serial}"))
                .header("authorization", &auth)
                .body("{not json"),
            400,
        ),
        (
            app.client
                .post(format!("{base}/v1/devices/dev/registrations/{pt}/{serial}"))
                .header("authorization", &auth)
                .json(&json!({})),
            422,
        ),
        (
            app.client
                .post(format!("{base}/v1/devices/dev/registrations/{pt}/{serial}"))
                .header("authorization", &auth)
                .json(&json!({"pushToken": "zz-not-hex"})),
            422,
        ),
        (
            app.client
                .post(format!("{base}/v1/devices/dev/registrations/{pt}/{serial}"))
                .header("authorization", &auth)
                .json(&json!({"pushToken": "a".repeat(201)})),
            422,
        ),
        (
            app.client
                .post(format!("{base}/v1/devices/dev/registrations/{pt}/{serial}"))
                .header("authorization", &auth)
                .json(&json!({"pushToken": 12})),
            422,
        ),
        (
            app.client
                .post(format!("{base}/v1/devices/{long}/registrations/{pt}/{serial}"))
                .header("authorization", &auth)
                .json(&json!({"pushToken": "ab"})),
            422,
        ),
        (
            app.client
                .post(format!("{base}/v1/devices/dev/registrations/{pt}/{long}"))
                .header("authorization", &auth)
                .json(&json!({"pushToken": "ab"})),
            401,
        ),
        (
            app.client
                .post(format!("{base}/v1/devices/dev/registrations/pass.other/{serial}"))
                .header("authorization", &auth)
                .json(&json!({"pushToken": "ab"})),
            401,
        ),
        (
            app.client
                .post(format!("{base}/v1/devices/dev/registrations/{pt}/0000"))
                .header("authorization", &auth)
                .json(&json!({"pushToken": "ab"})),
            401,
        ),
        (
            app.client
                .post(format!("{base}/v1/devices/dev/registrations/{pt}/{serial}"))
                .header("authorization", "ApplePass")
                .json(&json!({"pushToken": "ab"})),
            401,
        ),
        (
            app.client
                .post(format!("{base}/v1/devices/dev/registrations/{pt}/{serial}"))
                .header("authorization", format!("Bearer {}", pass.auth))
                .json(&json!({"pushToken": "ab"})),
            401,
        ),
        (app.client.get(format!("{base}/v1/devices/dev/registrations/pass.other")), 401),
        (app.client.get(format!("{base}/v1/devices/{long}/registrations/{pt}")), 422),
        (app.client.get(format!("{base}/v1/devices/dev/registrations/{pt}?passesUpdatedSince=%FF%FE")), 204),
        (app.client.get(format!("{base}/v1/passes/{pt}/%2e%2e%2fetc")).header("authorization", &auth), 401),
        (app.client.get(format!("{base}/v1/passes/{pt}")).header("authorization", &auth), 404),
        (
            app.client
                .post(format!("{base}/v1/log"))
                .body("x".repeat(70_000))
                .header("content-type", "application/json"),
            413,
        ),
        (app.client.post(format!("{base}/v1/log")).json(&json!({"logs": "not a list"})), 422),
        (app.client.post(format!("{base}/v1/log")).body("]"), 400),
        (app.client.put(format!("{base}/v1/log")), 405),
    ];
    for (i, (request, expected)) in cases.into_iter().enumerate() {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), expected, "case {i}");
        if expected != 204 {
            let body: Value = response.json().await.unwrap_or_else(|_| panic!("case {i}: a JSON error body"));
            assert!(body["error"]["code"].is_string(), "case {i}: {body}");
        }
    }
    // The pass still works, and nothing was registered.
    assert_eq!(app.latest_pass(&pass, None).await.status(), 200);
    assert_eq!(app.list("dev", pt, None).await.status(), 204);
}

#[tokio::test]
async fn push_tokens_are_kept_in_lowercase_and_device_ids_are_checked() {
    let (app, apns) = crate::helpers::spawn_app_with_apns().await;
    let pass = app.member_with_pass("M-case", &json!({"name": "A", "tier": "gold", "points": 1})).await;
    let token = push_token("cc");
    assert_eq!(app.register("dev-case", &pass, &token.to_ascii_uppercase()).await.status(), 201);
    app.put_member("M-case", &json!({"name": "A", "tier": "gold", "points": 2})).await;
    assert_eq!(apns.wait_for(&token, 1).await.len(), 1, "pushed to the lowercase token");

    for device in ["a%20b", "a%2Fb", "%C3%A9"] {
        let error = assert_error(app.register(device, &pass, &token).await, 422, "validation-failed").await;
        assert_eq!(error["details"][0]["field"], "deviceLibraryIdentifier", "{device}");
    }
    let error = assert_error(app.list("a%20b", &pass.pass_type, None).await, 422, "validation-failed").await;
    assert_eq!(error["details"][0]["field"], "deviceLibraryIdentifier");
}
