//! The ledger webhook and the pushes it causes, against the stand-in APNs.

use serde_json::{Value, json};

use crate::helpers::{WEBHOOK_SECRET, assert_error, pass_json, push_token, spawn_app, spawn_app_with_apns, unzip};

fn event(id: &str, member: &str, sequence: i64, points: i64, tier: &str) -> Value {
    json!({"id": id, "member_id": member, "sequence": sequence, "points": points, "tier": tier})
}

fn results(body: &Value) -> Vec<(String, String)> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().into(), r["status"].as_str().unwrap().into()))
        .collect()
}

#[tokio::test]
async fn a_signed_event_pushes_once_to_every_device_and_the_pass_shows_it() {
    let (app, apns) = spawn_app_with_apns().await;
    let pass = app.member_with_pass("M-1001", &json!({"name": "สมชาย", "tier": "gold", "points": 1250})).await;
    let (t1, t2) = (push_token("a1"), push_token("a2"));
    assert_eq!(app.register("phone-1", &pass, &t1).await.status(), 201);
    assert_eq!(app.register("watch-2", &pass, &t2).await.status(), 201);
    let tag = |list: Value| list["lastUpdated"].as_str().unwrap().to_string();
    let tag1 = tag(app.list("phone-1", &pass.pass_type, None).await.json().await.unwrap());
    let tag2 = tag(app.list("watch-2", &pass.pass_type, None).await.json().await.unwrap());

    let answer = app.post_ledger(&event("evt-1", "M-1001", 1, 2000, "platinum")).await;
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["results"], json!([{"id": "evt-1", "member_id": "M-1001", "status": "applied"}]));

    for token in [&t1, &t2] {
        let pushes = apns.wait_for(token, 1).await;
        let push = &pushes[0];
        assert_eq!(push.topic.as_deref(), Some(pass.pass_type.as_str()));
        assert_eq!(push.body, "{}");
        assert_eq!(push.push_type.as_deref(), Some("alert"));
        assert_eq!(push.path, format!("/3/device/{token}"));
        assert!(
            push.client_subject.contains(&format!("UID={}", pass.pass_type)),
            "client certificate: {}",
            push.client_subject
        );
    }
    let member = app
        .wait_member("M-1001", "both pushes recorded", |m| {
            m["apple"]["devices"].as_array().unwrap().iter().all(|d| d["last_push_result"] == "delivered")
        })
        .await;
    assert!(member["apple"]["devices"][0]["last_push_at"].is_string());
    assert_eq!(apns.pushes().len(), 2, "exactly one push per token");

    for (device, since) in [("phone-1", &tag1), ("watch-2", &tag2)] {
        let list: Value = app.list(device, &pass.pass_type, Some(since)).await.json().await.unwrap();
        assert_eq!(list["serialNumbers"], json!([pass.serial]));
    }
    let fetched = app.latest_pass(&pass, None).await;
    let files = unzip(&fetched.bytes().await.unwrap());
    let pass_json = pass_json(&files);
    assert_eq!(pass_json["storeCard"]["primaryFields"][0]["value"], 2000);
    assert_eq!(pass_json["backgroundColor"], "rgb(36, 40, 56)", "the platinum design");

    // The same event again is a duplicate; an older sequence is stale; neither changes or pushes.
    let again: Value = app.post_ledger(&event("evt-1", "M-1001", 1, 2000, "platinum")).await.json().await.unwrap();
    assert_eq!(results(&again), [("evt-1".to_string(), "duplicate".to_string())]);
    let stale: Value = app.post_ledger(&event("evt-0", "M-1001", 0, 5, "silver")).await.json().await.unwrap();
    assert_eq!(results(&stale), [("evt-0".to_string(), "stale".to_string())]);
    let equal: Value = app.post_ledger(&event("evt-1b", "M-1001", 1, 5, "silver")).await.json().await.unwrap();
    assert_eq!(results(&equal), [("evt-1b".to_string(), "stale".to_string())]);
    let member: Value = app.get_member("M-1001").await.json().await.unwrap();
    assert_eq!((member["points"].clone(), member["tier"].clone()), (json!(2000), json!("platinum")));

    // A sentinel: another member's push goes through the same outbox after those requests.
    let other = app.member_with_pass("M-sentinel", &json!({"name": "S", "tier": "gold", "points": 1})).await;
    let sentinel = push_token("5e");
    app.register("phone-s", &other, &sentinel).await;
    app.post_ledger(&event("evt-s", "M-sentinel", 1, 2, "gold")).await;
    apns.wait_for(&sentinel, 1).await;
    app.wait_member("M-sentinel", "the sentinel push recorded", |m| {
        m["apple"]["devices"][0]["last_push_result"] == "delivered"
    })
    .await;
    assert_eq!(apns.pushes_to(&t1).len(), 1, "no push for the duplicate or the stale events");
    assert_eq!(apns.pushes_to(&t2).len(), 1);

    let metrics = app.get(&format!("{}/metrics", app.base)).await.text().await.unwrap();
    assert!(metrics.contains("tessera_webhook_events_total{result=\"duplicate\"} 1"), "{metrics}");
    assert!(metrics.contains("tessera_webhook_events_total{result=\"stale\"} 2"), "{metrics}");
    assert!(metrics.contains("tessera_pushes_total{result=\"delivered\"} 3"), "{metrics}");
    assert!(metrics.contains("tessera_webhook_to_push_seconds_count 3"), "{metrics}");
}

#[tokio::test]
async fn batches_apply_in_order_create_unknown_members_and_skip_retired_ones() {
    let app = spawn_app().await;
    app.create_member("M-old", &json!({"name": "Old", "tier": "gold", "points": 1})).await;
    app.delete_member("M-old").await;
    let body = json!({"events": [
        event("b-1", "M-new", 5, 100, "silver"),
        event("b-2", "M-new", 6, 300, "gold"),
        event("b-3", "M-new", 4, 999, "platinum"),
        event("b-1", "M-new", 7, 1, "silver"),
        event("b-4", "M-old", 1, 10, "gold"),
        {"id": "b-5", "member_id": "M-named", "sequence": 0, "points": 0, "tier": "silver", "name": "Nguyễn Văn A"},
    ]});
    let answer = app.post_ledger(&body).await;
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(
        results(&answer),
        [
            ("b-1", "applied"),
            ("b-2", "applied"),
            ("b-3", "stale"),
            ("b-1", "duplicate"),
            ("b-4", "retired"),
            ("b-5", "applied")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(answer["results"][0]["member_id"], "M-new");
    let created: Value = app.get_member("M-new").await.json().await.unwrap();
    assert_eq!(
        (created["points"].clone(), created["tier"].clone(), created["name"].clone()),
        (json!(300), json!("gold"), Value::Null)
    );
    let (_, _, files) = app.download_pass(&created).await;
    assert!(
        pass_json(&files)["storeCard"]["secondaryFields"].as_array().unwrap().iter().any(|f| f["value"] == "M-new"),
        "no name: the card shows the member ID"
    );
    let retired: Value = app.get_member("M-old").await.json().await.unwrap();
    assert_eq!(retired["points"], 1);
    let named: Value = app.get_member("M-named").await.json().await.unwrap();
    assert_eq!(named["name"], "Nguyễn Văn A");
}

#[tokio::test]
async fn bad_signatures_stale_timestamps_and_malformed_bodies_apply_nothing() {
    let app = spawn_app().await;
    app.create_member("M-1", &json!({"name": "A", "tier": "gold", "points": 1})).await;
    let body = event("x-1", "M-1", 1, 500, "gold").to_string();
    let now = tessera::time_fmt::now_unix();
    let sign = |secret: &str, t: i64, b: &str| format!("t={t},v1={}", tessera::ledger::sign(secret, t, b.as_bytes()));

    assert_error(app.post_ledger_raw(&body, None).await, 401, "bad-signature").await;
    assert_error(
        app.post_ledger_raw(&body, Some(&sign("another-secret-0123456789", now, &body))).await,
        401,
        "bad-signature",
    )
    .await;
    let tampered = body.replace("500", "900");
    assert_error(app.post_ledger_raw(&tampered, Some(&sign(WEBHOOK_SECRET, now, &body))).await, 401, "bad-signature")
        .await;
    assert_error(
        app.post_ledger_raw(&body, Some(&sign(WEBHOOK_SECRET, now - 301, &body))).await,
        401,
        "stale-signature",
    )
    .await;
    assert_error(
        app.post_ledger_raw(&body, Some(&sign(WEBHOOK_SECRET, now + 400, &body))).await,
        401,
        "stale-signature",
    )
    .await;
    let garbage = "{\"id\": ";
    assert_error(app.post_ledger_raw(garbage, Some(&sign(WEBHOOK_SECRET, now, garbage))).await, 400, "invalid-json")
        .await;

    // One malformed event refuses the whole batch, naming its index and field.
    let batch = json!({"events": [event("x-2", "M-1", 2, 600, "gold"), {"id": "x-3", "member_id": "M-1", "sequence": "3", "points": 700, "tier": "gold"}]});
    let error = assert_error(app.post_ledger(&batch).await, 422, "validation-failed").await;
    assert_eq!(error["details"][0]["field"], "events[1].sequence");
    for (bad, field) in [
        (json!({"id": "x", "member_id": "M-1", "sequence": 1, "points": -1, "tier": "gold"}), "points"),
        (json!({"id": "x", "member_id": "M-1", "sequence": -1, "points": 1, "tier": "gold"}), "sequence"),
        (json!({"id": "x", "member_id": "M 1", "sequence": 1, "points": 1, "tier": "gold"}), "member_id"),
        (json!({"id": "x", "member_id": "M-1", "sequence": 1, "points": 1, "tier": "bronze"}), "tier"),
        (json!({"id": "x".repeat(129), "member_id": "M-1", "sequence": 1, "points": 1, "tier": "gold"}), "id"),
        (json!({"member_id": "M-1", "sequence": 1, "points": 1, "tier": "gold"}), "id"),
        (json!({"id": "x", "member_id": "M-1", "sequence": 1, "points": "1", "tier": "gold"}), "points"),
        (json!({"id": "x", "member_id": "M-1", "sequence": 1, "points": 1, "tier": "gold", "name": "a\tb"}), "name"),
    ] {
        let error = assert_error(app.post_ledger(&bad).await, 422, "validation-failed").await;
        assert_eq!(error["details"][0]["field"], field, "{bad}");
    }
    let too_many =
        json!({"events": (0..1001).map(|i| event(&format!("m-{i}"), "M-1", i, 1, "gold")).collect::<Vec<_>>()});
    assert_error(app.post_ledger(&too_many).await, 413, "payload-too-large").await;
    assert_error(app.post_ledger(&json!({"events": []})).await, 422, "validation-failed").await;

    let member: Value = app.get_member("M-1").await.json().await.unwrap();
    assert_eq!(member["points"], 1, "nothing was applied");
    // And none of those ids was remembered: the good event still applies.
    let ok: Value = app.post_ledger(&event("x-2", "M-1", 2, 600, "gold")).await.json().await.unwrap();
    assert_eq!(results(&ok), [("x-2".to_string(), "applied".to_string())]);
}

#[tokio::test]
async fn a_rotated_secret_list_accepts_either_secret() {
    let app =
        crate::helpers::spawn_app_with(&[("webhook_secret", "old-secret-0123456789,new-secret-0123456789")]).await;
    app.create_member("M-1", &json!({"name": "A", "tier": "gold", "points": 1})).await;
    for (i, secret) in ["old-secret-0123456789", "new-secret-0123456789"].iter().enumerate() {
        let body = event(&format!("r-{i}"), "M-1", i as i64 + 1, 10, "gold").to_string();
        let t = tessera::time_fmt::now_unix();
        let sig = format!("t={t},v1={}", tessera::ledger::sign(secret, t, body.as_bytes()));
        assert_eq!(app.post_ledger_raw(&body, Some(&sig)).await.status(), 200);
    }
}

#[tokio::test]
async fn apns_outcomes_unregister_retry_and_stop_on_403() {
    let (app, apns) = spawn_app_with_apns().await;
    let pass = app.member_with_pass("M-out", &json!({"name": "A", "tier": "gold", "points": 1})).await;
    let gone = push_token("410");
    let bad = push_token("400");
    let flaky = push_token("f1");
    apns.script(&flaky, &[(503, "ServiceUnavailable"), (503, "ServiceUnavailable")]);
    for (device, token) in [("d-gone", &gone), ("d-bad", &bad), ("d-flaky", &flaky)] {
        assert_eq!(app.register(device, &pass, token).await.status(), 201);
    }
    app.put_member("M-out", &json!({"name": "A", "tier": "gold", "points": 2})).await;

    // 503 twice, delivered on the third try.
    let tries = apns.wait_for(&flaky, 3).await;
    assert!(tries[1].at > tries[0].at && tries[2].at > tries[1].at);
    // 410 and 400 BadDeviceToken lose their registrations; the flaky device stays, delivered.
    let member = app
        .wait_member("M-out", "unregistered devices removed and the flaky one delivered", |m| {
            let devices = m["apple"]["devices"].as_array().unwrap();
            devices.len() == 1 && devices[0]["last_push_result"] == "delivered"
        })
        .await;
    assert_eq!(member["apple"]["devices"].as_array().unwrap().len(), 1);
    assert_eq!(apns.pushes_to(&gone).len(), 1);
    assert_eq!(apns.pushes_to(&bad).len(), 1);
    assert_eq!(apns.pushes_to(&flaky).len(), 3);

    // Retiring the member voids its pass and pushes it.
    let retired: Value = app.delete_member("M-out").await.json().await.unwrap();
    assert_eq!(retired["apple"]["voided"], true);
    apns.wait_for(&flaky, 4).await;
    let fetched = app.latest_pass(&pass, None).await;
    assert_eq!(pass_json(&unzip(&fetched.bytes().await.unwrap()))["voided"], true);
}

#[tokio::test]
async fn a_403_stops_pushes_keeps_the_job_and_says_so() {
    let (app, apns) = spawn_app_with_apns().await;
    let pass = app.member_with_pass("M-403", &json!({"name": "A", "tier": "gold", "points": 1})).await;
    let token = push_token("b0");
    apns.script(&token, &[(403, "BadCertificate")]);
    app.register("d-1", &pass, &token).await;
    app.put_member("M-403", &json!({"name": "A", "tier": "gold", "points": 2})).await;
    apns.wait_for(&token, 1).await;
    let member = app
        .wait_member("M-403", "the 403 recorded", |m| m["apple"]["devices"][0]["last_push_result"] == "forbidden")
        .await;
    assert_eq!(member["apple"]["devices"][0]["last_push_reason"], "BadCertificate");
    let metrics = app.get(&format!("{}/metrics", app.base)).await.text().await.unwrap();
    assert!(metrics.contains("tessera_apns_forbidden 1"), "{metrics}");
    assert!(metrics.contains("tessera_pushes_total{result=\"forbidden\"} 1"), "{metrics}");

    // doctor reads the state from the database.
    let out =
        crate::helpers::tessera(&["doctor"], &crate::helpers::repo(), &[("TESSERA_DATABASE_URL", &app.database_url)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("APNs refused") && text.contains("BadCertificate"), "{text}");
}

#[tokio::test]
async fn changes_waiting_together_become_one_push() {
    let (app, apns) = spawn_app_with_apns().await;
    let pass = app.member_with_pass("M-co", &json!({"name": "A", "tier": "gold", "points": 1})).await;
    let token = push_token("c0");
    // The first push fails, so the following changes wait together for the retry.
    apns.script(&token, &[(503, "ServiceUnavailable")]);
    app.register("d-1", &pass, &token).await;
    let batch =
        json!({"events": (1..=20).map(|i| event(&format!("co-{i}"), "M-co", i, i * 10, "gold")).collect::<Vec<_>>()});
    assert_eq!(app.post_ledger(&batch).await.status(), 200);
    for i in 21..=25 {
        app.post_ledger(&event(&format!("co-{i}"), "M-co", i, i * 10, "gold")).await;
    }
    app.wait_member("M-co", "delivered", |m| m["apple"]["devices"][0]["last_push_result"] == "delivered").await;
    let pushes = apns.pushes_to(&token).len();
    assert!(pushes <= 1 + 5, "26 changes, {pushes} pushes");
    let list: Value = app.list("d-1", &pass.pass_type, None).await.json().await.unwrap();
    assert_eq!(list["serialNumbers"], json!([pass.serial]));
}

#[tokio::test]
async fn token_auth_pushes_with_an_es256_provider_token() {
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let ec = openssl::ec::EcKey::generate(&group).unwrap();
    let key = openssl::pkey::PKey::from_ec_key(ec.clone()).unwrap();
    let public =
        openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::from_public_key(&group, ec.public_key()).unwrap())
            .unwrap();
    let apns = crate::apns_standin::StandIn::start_token_mode(public).await;
    let dir = tempfile::tempdir().unwrap();
    let p8 = dir.path().join("AuthKey_KEY1234567.p8");
    std::fs::write(&p8, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let (p8, ca) = (p8.display().to_string(), apns.ca_path.display().to_string());
    let app = crate::helpers::spawn_app_with(&[
        ("apns_url", &apns.url),
        ("apns_ca", &ca),
        ("apns_auth", "token"),
        ("apns_key", &p8),
        ("apns_key_id", "KEY1234567"),
    ])
    .await;
    let pass = app.member_with_pass("M-tok", &json!({"name": "A", "tier": "gold", "points": 1})).await;
    let (t1, t2) = (push_token("d1"), push_token("d2"));
    app.register("d-1", &pass, &t1).await;
    app.register("d-2", &pass, &t2).await;
    app.put_member("M-tok", &json!({"name": "A", "tier": "gold", "points": 2})).await;
    let p1 = apns.wait_for(&t1, 1).await;
    let p2 = apns.wait_for(&t2, 1).await;
    app.wait_member("M-tok", "delivered with the token", |m| {
        m["apple"]["devices"].as_array().unwrap().iter().all(|d| d["last_push_result"] == "delivered")
    })
    .await;
    // One provider token, reused across pushes.
    assert_eq!(p1[0].authorization, p2[0].authorization);
    assert!(p1[0].authorization.as_deref().unwrap().starts_with("bearer "));
}

#[tokio::test]
async fn every_fault_of_every_event_is_named_at_once_and_unknown_fields_pass() {
    let app = spawn_app().await;
    let batch = json!({"events": [
        event("f-0", "M-f", 1, 1, "gold"),
        {"member_id": "M-f", "sequence": 2, "points": 1.5, "tier": "Gold"},
        "not an event",
        {"id": "f-3", "member_id": "M-f", "sequence": 3, "points": 1, "tier": "gold", "name": 5},
    ]});
    let error = assert_error(app.post_ledger(&batch).await, 422, "validation-failed").await;
    let faults: Vec<(&str, &str)> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["field"].as_str().unwrap(), d["message"].as_str().unwrap()))
        .collect();
    assert_eq!(
        faults,
        [
            ("events[1].id", "is required and must be a string"),
            ("events[1].points", "must be a whole number"),
            ("events[1].tier", "`Gold` is not a tier of this program; use one of: silver, gold, platinum"),
            ("events[2]", "must be a JSON object"),
            ("events[3].name", "must be a string"),
        ]
    );
    assert_eq!(app.get_member("M-f").await.status(), 404, "nothing was applied");
    let single = assert_error(app.post_ledger(&json!([1])).await, 422, "validation-failed").await;
    assert_eq!(single["details"][0]["field"], "body");

    // A field the contract does not name is left alone, and a name is kept in NFC.
    let mut extra = event("f-4", "M-f", 4, 7, "gold");
    extra["source"] = json!("pos-12");
    extra["name"] = json!("Cafe\u{301}");
    let ok: Value = app.post_ledger(&extra).await.json().await.unwrap();
    assert_eq!(results(&ok), [("f-4".to_string(), "applied".to_string())]);
    let member: Value = app.get_member("M-f").await.json().await.unwrap();
    assert_eq!((&member["name"], &member["points"]), (&json!("Café"), &json!(7)));
}
