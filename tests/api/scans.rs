//! The scan API: who is behind a barcode, their tier, balance, perks and pass status; every scan
//! recorded and listed for the admin; bad input a 4xx with the JSON error; a rate limit per credential.

use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, TestApp, assert_error, spawn_app_with};

const STAFF_TOKEN: &str = "test-staff-token-0123456789";

async fn app(overrides: &[(&str, &str)]) -> TestApp {
    let mut settings = vec![("staff_token", STAFF_TOKEN)];
    settings.extend_from_slice(overrides);
    spawn_app_with(&settings).await
}

async fn scan(app: &TestApp, token: Option<&str>, body: &str, language: Option<&str>) -> reqwest::Response {
    let mut req = app
        .client
        .post(format!("{}/api/v1/scans", app.base))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    if let Some(language) = language {
        req = req.header("accept-language", language);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn a_scan_answers_the_member_in_the_staffs_language_and_is_recorded() {
    let app = app(&[]).await;
    app.create_member("S-1", &json!({"name": "สมชาย ใจดี", "tier": "gold", "points": 1250, "locale": "th"})).await;
    let body = json!({"barcode": "S-1", "location": "Siam, counter 2"}).to_string();
    let answer = scan(&app, Some(STAFF_TOKEN), &body, Some("th-TH,th;q=0.9,en;q=0.5")).await;
    assert_eq!(answer.status(), 200);
    let v: Value = answer.json().await.unwrap();
    assert_eq!(v["member_id"], "S-1");
    assert_eq!(v["name"], "สมชาย ใจดี");
    assert_eq!((v["tier"].as_str(), v["tier_label"].as_str()), (Some("gold"), Some("โกลด์")));
    assert_eq!(v["tier_color"], "#7a5816");
    assert_eq!(v["points"], 1250);
    assert_eq!(v["perks"], json!(["อัปไซซ์ฟรีทุกแก้ว", "เครื่องดื่มฟรีในเดือนเกิด"]));
    assert_eq!(v["status"], "active");
    assert_eq!(v["apple"], json!({"devices": 0, "voided": false}));
    assert_eq!(v["google"], json!({"saved": false}));
    assert!(v["scanned_at"].as_str().unwrap().ends_with('Z'));
    let english: Value =
        scan(&app, Some(STAFF_TOKEN), &json!({"barcode": "S-1"}).to_string(), None).await.json().await.unwrap();
    assert_eq!(english["tier_label"], "Gold");
    assert_eq!(english["perks"][0], "Free upsize on every drink");

    let listed = app.get_authed(&format!("{}/api/v1/members/S-1/scans", app.base), ADMIN_TOKEN).await;
    assert_eq!(listed.status(), 200);
    let listed: Value = listed.json().await.unwrap();
    let scans = listed["scans"].as_array().unwrap();
    assert_eq!(scans.len(), 2);
    assert_eq!(scans[0]["location"], Value::Null, "newest first");
    assert_eq!(scans[1]["location"], "Siam, counter 2");
    let staff = scans[1]["staff"].as_str().unwrap();
    assert!(staff.starts_with("staff-") && !listed.to_string().contains(STAFF_TOKEN), "{staff}");
    assert_error(
        app.get_authed(&format!("{}/api/v1/members/S-1/scans", app.base), STAFF_TOKEN).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        app.get_authed(&format!("{}/api/v1/members/NOPE/scans", app.base), ADMIN_TOKEN).await,
        404,
        "not-found",
    )
    .await;
}

#[tokio::test]
async fn a_retired_card_is_answered_as_retired_and_the_back_of_the_pass_lists_the_perks() {
    let app = app(&[]).await;
    let member = app.create_member("S-2", &json!({"name": "Ann", "tier": "platinum", "points": 5})).await;
    let (_, _, files) = app.download_pass(&member).await;
    let pass = crate::helpers::pass_json(&files);
    let back: Vec<&str> =
        pass["storeCard"]["backFields"].as_array().unwrap().iter().filter_map(|f| f["value"].as_str()).collect();
    assert!(back.contains(&"perk.priority_pickup") && back.contains(&"perk.free_upsize"), "{back:?}");
    app.delete_member("S-2").await;
    let v: Value =
        scan(&app, Some(STAFF_TOKEN), &json!({"barcode": "S-2"}).to_string(), None).await.json().await.unwrap();
    assert_eq!(v["status"], "retired");
    assert_eq!(v["apple"]["voided"], true);
}

#[tokio::test]
async fn bad_scans_get_the_json_error_and_a_4xx_never_a_5xx() {
    let app = app(&[]).await;
    app.create_member("S-3", &json!({"name": "Bee", "tier": "silver", "points": 0})).await;
    let good = json!({"barcode": "S-3"}).to_string();
    assert_error(scan(&app, None, &good, None).await, 401, "unauthorized").await;
    assert_error(scan(&app, Some("wrong-token-0123456789"), &good, None).await, 401, "unauthorized").await;
    assert_error(scan(&app, Some(ADMIN_TOKEN), &good, None).await, 401, "unauthorized").await;
    assert_error(
        scan(&app, Some(STAFF_TOKEN), &json!({"barcode": "NO-SUCH-CARD"}).to_string(), None).await,
        404,
        "not-found",
    )
    .await;
    for (body, status, code) in [
        (json!({"barcode": ""}).to_string(), 422, "validation-failed"),
        (json!({"barcode": "x".repeat(5000)}).to_string(), 422, "validation-failed"),
        (json!({"barcode": "' OR 1=1 --"}).to_string(), 422, "validation-failed"),
        (json!({"barcode": "S-3'; DROP TABLE members; --"}).to_string(), 422, "validation-failed"),
        (json!({"barcode": "%00\u{7f}garbage"}).to_string(), 422, "validation-failed"),
        (json!({"barcode": 12345}).to_string(), 422, "validation-failed"),
        (json!({}).to_string(), 422, "validation-failed"),
        ("[]".to_string(), 422, "validation-failed"),
        ("not json".to_string(), 400, "invalid-json"),
        ("".to_string(), 400, "invalid-json"),
    ] {
        let answer = scan(&app, Some(STAFF_TOKEN), &body, None).await;
        assert_error(answer, status, code).await;
    }
    let wrong_type = app
        .client
        .post(format!("{}/api/v1/scans", app.base))
        .header("authorization", format!("Bearer {STAFF_TOKEN}"))
        .header("content-type", "text/plain")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_error(wrong_type, 415, "unsupported-media-type").await;
    // The member and the tables are intact.
    assert_eq!(scan(&app, Some(STAFF_TOKEN), &good, None).await.status(), 200);
}

#[tokio::test]
async fn over_the_rate_a_credential_gets_429_with_retry_after() {
    let app = app(&[("scan_rate", "2")]).await;
    app.create_member("S-4", &json!({"name": "Cee", "tier": "gold", "points": 0})).await;
    let body = json!({"barcode": "S-4"}).to_string();
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let answer = scan(&app, Some(STAFF_TOKEN), &body, None).await;
        if answer.status() == 429 {
            assert!(answer.headers().contains_key("retry-after"));
            assert_error(answer, 429, "rate-limited").await;
            statuses.push(429);
        } else {
            statuses.push(answer.status().as_u16());
        }
    }
    let allowed = statuses.iter().filter(|s| **s == 200).count();
    assert!((5..=6).contains(&allowed), "a burst of two seconds' worth, then 429: {statuses:?}");
    assert_eq!(statuses.last(), Some(&429));
}

#[tokio::test]
async fn with_signed_barcodes_the_card_carries_a_signature_and_forged_codes_are_refused() {
    let templates = tempfile::tempdir().unwrap();
    crate::helpers::copy_dir(&crate::helpers::repo().join("templates/default"), &templates.path().join("default"));
    let program = templates.path().join("default/program.toml");
    let text = std::fs::read_to_string(&program).unwrap().replace("signed_barcodes = false", "signed_barcodes = true");
    std::fs::write(&program, text).unwrap();
    let dir = templates.path().display().to_string();
    let app = app(&[("templates_dir", &dir)]).await;
    let member = app.create_member("S-5", &json!({"name": "Dee", "tier": "gold", "points": 9})).await;
    let (_, _, files) = app.download_pass(&member).await;
    let code = crate::helpers::pass_json(&files)["barcodes"][0]["message"].as_str().unwrap().to_string();
    assert!(code.starts_with("S-5:") && code.len() > 10, "{code}");
    let scanned: Value =
        scan(&app, Some(STAFF_TOKEN), &json!({"barcode": code}).to_string(), None).await.json().await.unwrap();
    assert_eq!(scanned["member_id"], "S-5");
    app.create_member("S-6", &json!({"name": "Eve", "tier": "gold", "points": 9})).await;
    let forged = format!("S-6:{}", code.split_once(':').unwrap().1);
    for refused in [forged.as_str(), "S-6", "S-5:000000000000", "S-5:"] {
        let answer = scan(&app, Some(STAFF_TOKEN), &json!({"barcode": refused}).to_string(), None).await;
        assert_error(answer, 422, "validation-failed").await;
    }
}

/// Scans older than TESSERA_SCAN_RETENTION_DAYS are deleted by the worker (at its start, then hourly);
/// younger ones stay.
#[tokio::test]
async fn scans_past_their_retention_are_pruned_by_the_worker() {
    let app = app(&[]).await;
    app.create_member("S-R", &json!({"name": "Ret", "tier": "gold", "points": 1})).await;
    for location in ["old-1", "old-2", "recent"] {
        let body = json!({"barcode": "S-R", "location": location}).to_string();
        assert_eq!(scan(&app, Some(STAFF_TOKEN), &body, None).await.status(), 200);
    }
    let day_ms = 86_400_000_i64;
    let long_ago = tessera::time_fmt::now_unix_ms() - 401 * day_ms;
    app.sql(&format!("UPDATE scans SET scanned_at = {long_ago} WHERE location LIKE 'old-%'")).await;
    assert_eq!(scan_locations(&app, "S-R").await.len(), 3);
    // Another worker on the same database, keeping the default 400 days: its housekeeping runs at start.
    let database = app.database_url.clone();
    let _worker = spawn_app_with(&[("staff_token", STAFF_TOKEN), ("database_url", &database)]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let left = scan_locations(&app, "S-R").await;
        if left == ["recent"] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "scans left: {left:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The locations of a member's recent scans, newest first.
async fn scan_locations(app: &TestApp, member: &str) -> Vec<String> {
    let url = format!("{}/api/v1/members/{member}/scans", app.base);
    let v: Value = app.get_authed(&url, ADMIN_TOKEN).await.json().await.unwrap();
    v["scans"].as_array().unwrap().iter().map(|s| s["location"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_blank_location_is_none_and_every_fault_is_named() {
    let app = app(&[]).await;
    app.create_member("S-b", &json!({"name": "A", "tier": "gold", "points": 1})).await;
    let body = json!({"barcode": "S-b", "location": "   ", "device": "till 3"}).to_string();
    assert_eq!(scan(&app, Some(STAFF_TOKEN), &body, None).await.status(), 200, "other fields pass");
    let listed: Value =
        app.get_authed(&format!("{}/api/v1/members/S-b/scans", app.base), ADMIN_TOKEN).await.json().await.unwrap();
    assert_eq!(listed["scans"][0]["location"], Value::Null);
    let both = json!({"barcode": 42, "location": "l".repeat(101)}).to_string();
    let error = assert_error(scan(&app, Some(STAFF_TOKEN), &both, None).await, 422, "validation-failed").await;
    let fields: Vec<&str> = error["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["barcode", "location"]);
}
