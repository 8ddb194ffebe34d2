//! Offers and e-coupons over HTTP: an offer made from a bundled template, granted to members (the answer,
//! the member JSON, the coupon passes as Wallet and `inspect` see them, one push per iPhone of the card),
//! redeemed exactly once (also when 50 tills on three instances try at once), withdrawn, expired without a
//! request, and every bad body refused whole with the JSON error.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::apns_standin::StandIn;
use crate::google::{ISSUER, spawn_app_with_google};
use crate::helpers::{
    ADMIN_TOKEN, DevicePass, TestApp, assert_error, pass_json, push_token, repo, spawn_app_with, unzip,
};

pub(crate) const STAFF_TOKEN: &str = "test-staff-token-0123456789";

async fn app_with_apns() -> (TestApp, StandIn) {
    let standin = StandIn::start(&[&repo().join("certs-example/root.pem")]).await;
    let ca = standin.ca_path.display().to_string();
    let app = spawn_app_with(&[("apns_url", &standin.url), ("apns_ca", &ca), ("staff_token", STAFF_TOKEN)]).await;
    (app, standin)
}

pub(crate) fn window(from_s: i64, until_s: i64) -> (String, String) {
    let now = tessera::time_fmt::now_unix();
    (tessera::time_fmt::rfc3339(now + from_s), tessera::time_fmt::rfc3339(now + until_s))
}

pub(crate) async fn put_offer(app: &TestApp, id: &str, body: &Value) -> reqwest::Response {
    let url = format!("{}/api/v1/offers/{id}", app.base);
    app.client.put(url).bearer_auth(ADMIN_TOKEN).json(body).send().await.unwrap()
}

async fn make_offer(app: &TestApp, id: &str, template: &str, until_s: i64) -> Value {
    let (from, until) = window(-60, until_s);
    let answer = put_offer(app, id, &json!({"template": template, "valid_from": from, "valid_until": until})).await;
    assert_eq!(answer.status(), 201);
    answer.json().await.unwrap()
}

pub(crate) async fn grant(app: &TestApp, offer: &str, ids: &[&str]) -> reqwest::Response {
    let url = format!("{}/api/v1/offers/{offer}/grants", app.base);
    app.client.post(url).bearer_auth(ADMIN_TOKEN).json(&json!({ "member_ids": ids })).send().await.unwrap()
}

pub(crate) async fn redeem(app: &TestApp, code: &str, location: Option<&str>) -> reqwest::Response {
    let mut body = json!({ "code": code });
    if let Some(l) = location {
        body["location"] = json!(l);
    }
    let url = format!("{}/api/v1/redemptions", app.base);
    app.client.post(url).bearer_auth(STAFF_TOKEN).json(&body).send().await.unwrap()
}

async fn scan(app: &TestApp, barcode: &str) -> Value {
    let url = format!("{}/api/v1/scans", app.base);
    let answer =
        app.client.post(url).bearer_auth(STAFF_TOKEN).json(&json!({ "barcode": barcode })).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

async fn get_offer(app: &TestApp, id: &str) -> Value {
    let answer = app.get_authed(&format!("{}/api/v1/offers/{id}", app.base), ADMIN_TOKEN).await;
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

pub(crate) async fn coupons_of(app: &TestApp, member: &str) -> Vec<Value> {
    let member: Value = app.get_member(member).await.json().await.unwrap();
    member["coupons"].as_array().unwrap().clone()
}

/// The coupon pass as a device sees it, downloaded from the coupon's link.
async fn coupon_pass(app: &TestApp, coupon: &Value) -> (Vec<u8>, Value) {
    let answer = app.get(coupon["links"]["apple"].as_str().unwrap()).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], "application/vnd.apple.pkpass");
    let bytes = answer.bytes().await.unwrap().to_vec();
    let pass = pass_json(&unzip(&bytes));
    (bytes, pass)
}

fn device_pass(pass: &Value) -> DevicePass {
    DevicePass {
        pass_type: pass["passTypeIdentifier"].as_str().unwrap().into(),
        serial: pass["serialNumber"].as_str().unwrap().into(),
        auth: pass["authenticationToken"].as_str().unwrap().into(),
    }
}

fn back_field<'a>(pass: &'a Value, style: &str, key: &str) -> Option<&'a Value> {
    pass[style]["backFields"].as_array()?.iter().find(|f| f["key"] == key)
}

#[tokio::test]
async fn a_grant_reaches_each_member_as_a_coupon_pass_and_pushes_each_iphone_of_the_card_once() {
    let (app, apns) = app_with_apns().await;
    let ann = app.member_with_pass("ANN", &json!({"name": "Ann", "tier": "gold", "points": 10, "locale": "th"})).await;
    let (phone1, phone2) = (push_token("a1"), push_token("a2"));
    assert_eq!(app.register("dev-1", &ann, &phone1).await.status(), 201);
    assert_eq!(app.register("dev-2", &ann, &phone2).await.status(), 201);
    app.create_member("BEN", &json!({"name": "Ben", "tier": "silver", "points": 0})).await;
    app.create_member("RET", &json!({"name": "Ret", "tier": "silver", "points": 0})).await;
    assert_eq!(app.delete_member("RET").await.status(), 200);
    let offer = make_offer(&app, "birthday", "free-drink", 3600).await;
    assert_eq!((offer["state"].as_str(), offer["counts"]["granted"].as_i64()), (Some("active"), Some(0)));

    let answer = grant(&app, "birthday", &["ANN", "BEN", "RET", "NOBODY", "ANN"]).await;
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer, json!({"granted": 2, "already": 0, "unknown": ["NOBODY"], "retired": ["RET"]}));
    assert!(coupons_of(&app, "RET").await.is_empty());

    // One push per iPhone of the card, which now shows the offer on its back with a changeMessage.
    apns.wait_for(&phone1, 1).await;
    apns.wait_for(&phone2, 1).await;
    let card = pass_json(&unzip(&app.latest_pass(&ann, None).await.bytes().await.unwrap()));
    let latest = back_field(&card, "storeCard", "latest_offer").unwrap();
    assert_eq!(
        (latest["value"].as_str(), latest["changeMessage"].as_str()),
        (Some("offer.free_drink.title"), Some("offer.latest.change"))
    );

    let coupons = coupons_of(&app, "ANN").await;
    assert_eq!(coupons.len(), 1);
    let coupon = &coupons[0];
    assert_eq!((coupon["offer_id"].as_str(), coupon["state"].as_str()), (Some("birthday"), Some("active")));
    let code = coupon["code"].as_str().unwrap();
    assert!(code.starts_with("CPN-") && code.len() == 20, "{code}");
    assert_ne!(code, coupons_of(&app, "BEN").await[0]["code"].as_str().unwrap(), "every coupon has its own code");
    let (bytes, pass) = coupon_pass(&app, coupon).await;
    assert!(pass["coupon"].is_object() && pass.get("storeCard").is_none(), "{pass}");
    assert_eq!(pass["expirationDate"], offer["valid_until"]);
    assert_eq!(pass["barcodes"][0]["message"], code);
    assert_eq!(pass["passTypeIdentifier"], card["passTypeIdentifier"]);
    assert_ne!(pass["serialNumber"], card["serialNumber"]);
    assert!(pass.get("voided").is_none());
    let report = tessera::apple::inspect::inspect(&bytes);
    assert!(!report.has_errors(), "inspect: {:?}", report.lines());

    // Granting again changes nothing: no second coupon, and the card's tag does not move.
    let tag: Value = app.list("dev-1", &ann.pass_type, None).await.json().await.unwrap();
    let again: Value = grant(&app, "birthday", &["ANN", "BEN"]).await.json().await.unwrap();
    assert_eq!((again["granted"].as_i64(), again["already"].as_i64()), (Some(0), Some(2)));
    assert_eq!(coupons_of(&app, "ANN").await.len(), 1);
    let since = tag["lastUpdated"].as_str().unwrap();
    assert_eq!(app.list("dev-1", &ann.pass_type, Some(since)).await.status(), 204);
    assert_eq!(get_offer(&app, "birthday").await["counts"]["granted"], 2);
}

#[tokio::test]
async fn a_coupon_is_redeemed_once_voided_and_pushed_and_a_scan_says_what_it_is() {
    let (app, apns) = app_with_apns().await;
    app.create_member("ANN", &json!({"name": "Ann", "tier": "gold", "points": 10})).await;
    make_offer(&app, "weekend", "double-points", 3600).await;
    grant(&app, "weekend", &["ANN"]).await;
    let coupon = coupons_of(&app, "ANN").await.remove(0);
    let code = coupon["code"].as_str().unwrap().to_string();
    let (_, pass) = coupon_pass(&app, &coupon).await;
    let device = device_pass(&pass);
    let phone = push_token("c1");
    assert_eq!(app.register("dev-c", &device, &phone).await.status(), 201);

    // A scan of the card lists the coupon; a scan of the code says it can be redeemed; neither redeems.
    let card = scan(&app, "ANN").await;
    assert_eq!((card["kind"].as_str(), card["coupons"][0]["code"].as_str()), (Some("card"), Some(code.as_str())));
    let scanned = scan(&app, &code.to_lowercase()).await;
    assert_eq!((scanned["kind"].as_str(), scanned["redeemable"].as_bool()), (Some("coupon"), Some(true)));

    let redeemed = redeem(&app, &code, Some("Siam, till 3")).await;
    assert_eq!(redeemed.status(), 200);
    let redeemed: Value = redeemed.json().await.unwrap();
    assert_eq!(
        (redeemed["state"].as_str(), redeemed["redeemed_location"].as_str()),
        (Some("redeemed"), Some("Siam, till 3"))
    );
    apns.wait_for(&phone, 1).await;
    let voided = pass_json(&unzip(&app.latest_pass(&device, None).await.bytes().await.unwrap()));
    assert_eq!(voided["voided"], true);

    let again = assert_error(redeem(&app, &code, None).await, 409, "already-redeemed").await;
    assert_eq!(again["details"]["location"], "Siam, till 3");
    assert!(again["message"].as_str().unwrap().contains("Siam, till 3"), "{again}");
    let scanned = scan(&app, &code).await;
    assert_eq!((scanned["redeemable"].as_bool(), scanned["reason"].as_str()), (Some(false), Some("already-redeemed")));
    assert!(scan(&app, "ANN").await["coupons"].as_array().unwrap().is_empty());
    let offer = get_offer(&app, "weekend").await;
    assert_eq!((offer["counts"]["granted"].as_i64(), offer["counts"]["redeemed"].as_i64()), (Some(1), Some(1)));

    // A forged code of the right shape is no coupon; a malformed one is refused.
    assert_error(redeem(&app, "CPN-AAAAAAAAAAAAAAAA", None).await, 404, "not-found").await;
    assert_error(redeem(&app, "FREE-COFFEE", None).await, 422, "validation-failed").await;
}

#[tokio::test]
async fn of_fifty_concurrent_redemptions_on_three_instances_exactly_one_wins() {
    let apns = StandIn::start(&[&repo().join("certs-example/root.pem")]).await;
    let ca = apns.ca_path.display().to_string();
    let apple = [("apns_url", apns.url.as_str()), ("apns_ca", ca.as_str()), ("staff_token", STAFF_TOKEN)];
    let g = spawn_app_with_google(&apple).await;
    let app = &g.app;
    let mut shared: Vec<(&str, &str)> = g.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    shared.extend_from_slice(&apple);
    shared.push(("database_url", &app.database_url));
    let others = [spawn_app_with(&shared).await, spawn_app_with(&shared).await];
    g.settled_member("ANN", &json!({"name": "Ann", "tier": "gold", "points": 10})).await;
    make_offer(app, "race", "free-drink", 3600).await;
    grant(app, "race", &["ANN"]).await;
    let coupon = coupons_of(app, "ANN").await.remove(0);
    let code = coupon["code"].as_str().unwrap().to_string();
    let (_, pass) = coupon_pass(app, &coupon).await;
    let device = device_pass(&pass);
    let phone = push_token("d1");
    assert_eq!(app.register("dev-r", &device, &phone).await.status(), 201);
    let object = format!("{ISSUER}.default-ANN-race");
    wait_for(|| g.google.offer_object(&object).is_some_and(|o| o["state"] == "ACTIVE"), "the ACTIVE object").await;

    let instances = [app, &others[0], &others[1]];
    let attempts = (0..50).map(|i| {
        let (instance, code) = (instances[i % 3], code.clone());
        async move { redeem(instance, &code, Some(&format!("till {i}"))).await.status().as_u16() }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 49, "{statuses:?}");
    let offer = get_offer(&others[1], "race").await;
    assert_eq!(offer["counts"]["redeemed"], 1);
    let stored = coupons_of(&others[0], "ANN").await.remove(0);
    assert!(stored["redeemed_location"].as_str().unwrap().starts_with("till "), "{stored}");

    // The Apple coupon is voided and pushed; the Google object is COMPLETED.
    apns.wait_for(&phone, 1).await;
    assert_eq!(pass_json(&unzip(&app.latest_pass(&device, None).await.bytes().await.unwrap()))["voided"], true);
    wait_for(|| g.google.offer_object(&object).is_some_and(|o| o["state"] == "COMPLETED"), "COMPLETED").await;
}

async fn wait_for(done: impl Fn() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn withdrawing_an_offer_voids_its_open_coupons_and_retiring_a_member_withdraws_theirs() {
    let (app, _apns) = app_with_apns().await;
    let ids: Vec<String> = (0..100).map(|i| format!("W-{i:03}")).collect();
    for id in &ids {
        app.create_member(id, &json!({"name": id, "tier": "silver", "points": 0})).await;
    }
    make_offer(&app, "winter", "free-drink", 3600).await;
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(grant(&app, "winter", &refs).await.json::<Value>().await.unwrap()["granted"], 100);
    let first = coupons_of(&app, "W-000").await.remove(0);
    assert_eq!(redeem(&app, first["code"].as_str().unwrap(), None).await.status(), 200);

    // A retired member's coupon is withdrawn with the card.
    assert_eq!(app.delete_member("W-099").await.status(), 200);
    let retired = coupons_of(&app, "W-099").await.remove(0);
    assert_eq!(retired["state"], "withdrawn");
    assert_error(redeem(&app, retired["code"].as_str().unwrap(), None).await, 409, "coupon-withdrawn").await;

    let url = format!("{}/api/v1/offers/winter", app.base);
    let withdrawn: Value = app.client.delete(&url).bearer_auth(ADMIN_TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!(withdrawn["state"], "withdrawn");
    assert_eq!(withdrawn["counts"], json!({"granted": 100, "redeemed": 1, "expired": 0, "withdrawn": 99}));
    let again: Value = app.client.delete(&url).bearer_auth(ADMIN_TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!(again["counts"], withdrawn["counts"], "withdrawing twice changes nothing");
    let open = coupons_of(&app, "W-050").await.remove(0);
    assert_eq!(open["state"], "withdrawn");
    assert_eq!(coupon_pass(&app, &open).await.1["voided"], true);
    assert_eq!(coupons_of(&app, "W-000").await[0]["state"], "redeemed", "a redeemed coupon stays redeemed");
    assert_error(grant(&app, "winter", &["W-001"]).await, 409, "offer-withdrawn").await;
}

#[tokio::test]
async fn an_offer_expires_at_the_end_of_its_window_without_a_request() {
    let (app, _apns) = app_with_apns().await;
    app.create_member("EXP", &json!({"name": "Exp", "tier": "silver", "points": 0})).await;
    make_offer(&app, "flash", "free-drink", 2).await;
    grant(&app, "flash", &["EXP"]).await;
    let code = coupons_of(&app, "EXP").await[0]["code"].as_str().unwrap().to_string();

    // The worker marks the stored coupon expired on its own (read from the database, not the API).
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&app.database_url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row = sqlx::query("SELECT state FROM coupons").fetch_one(&mut db).await.unwrap();
        if row.try_get::<String, _>(0).unwrap() == "expired" {
            break;
        }
        assert!(Instant::now() < deadline, "the coupon was never marked expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    db.close().await.unwrap();
    assert_eq!(coupons_of(&app, "EXP").await[0]["state"], "expired");
    assert_error(redeem(&app, &code, None).await, 409, "coupon-expired").await;
    assert_eq!(get_offer(&app, "flash").await["counts"]["expired"], 1);
    assert_error(grant(&app, "flash", &["EXP"]).await, 409, "coupon-expired").await;
}

#[tokio::test]
async fn bad_offer_and_grant_bodies_are_refused_whole_with_every_field_named() {
    let (app, _apns) = app_with_apns().await;
    app.create_member("ANN", &json!({"name": "Ann", "tier": "gold", "points": 10})).await;
    let (from, until) = window(-60, 3600);
    let bad = put_offer(&app, "x", &json!({"template": "nope", "valid_from": "soon", "valid_until": until, "per_member": 0, "quota": -1, "colour": 1})).await;
    let error = assert_error(bad, 422, "validation-failed").await;
    let fields: Vec<&str> = error["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    for field in ["template", "valid_from", "per_member", "quota", "colour"] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
    assert!(error["details"].to_string().contains("free-drink"), "the message lists the templates: {error}");
    let reversed =
        put_offer(&app, "x", &json!({"template": "free-drink", "valid_from": until, "valid_until": from})).await;
    assert_eq!(assert_error(reversed, 422, "validation-failed").await["details"][0]["field"], "valid_until");
    assert_error(app.get_authed(&format!("{}/api/v1/offers/x", app.base), ADMIN_TOKEN).await, 404, "not-found").await;
    assert_error(put_offer(&app, "a b", &json!({})).await, 422, "validation-failed").await;

    let offer = json!({"template": "free-drink", "valid_from": from, "valid_until": until, "quota": 1});
    assert_eq!(put_offer(&app, "small", &offer).await.status(), 201);
    assert_eq!(put_offer(&app, "small", &offer).await.status(), 200);
    let many: Vec<String> = (0..10_001).map(|i| format!("M-{i}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_error(grant(&app, "small", &refs).await, 422, "validation-failed").await;
    assert_error(grant(&app, "small", &[]).await, 422, "validation-failed").await;
    assert_error(grant(&app, "small", &["ANN", "bad id"]).await, 422, "validation-failed").await;
    assert_error(grant(&app, "missing", &["ANN"]).await, 404, "not-found").await;
    app.create_member("BEN", &json!({"name": "Ben", "tier": "gold", "points": 10})).await;
    assert_error(grant(&app, "small", &["ANN", "BEN"]).await, 422, "validation-failed").await;
    assert!(coupons_of(&app, "ANN").await.is_empty(), "a refused grant grants nothing");
    assert_eq!(grant(&app, "small", &["ANN"]).await.status(), 200);
    // With coupons out, the template and window stay; the limits may still change.
    let moved = json!({"template": "double-points", "valid_from": from, "valid_until": until, "quota": 1});
    assert_error(put_offer(&app, "small", &moved).await, 422, "validation-failed").await;
    let raised = json!({"template": "free-drink", "valid_from": from, "valid_until": until, "quota": 5});
    assert_eq!(put_offer(&app, "small", &raised).await.json::<Value>().await.unwrap()["quota"], 5);

    // The wrong token on every endpoint.
    let base = &app.base;
    for (method, url) in [
        ("PUT", format!("{base}/api/v1/offers/small")),
        ("GET", format!("{base}/api/v1/offers/small")),
        ("DELETE", format!("{base}/api/v1/offers/small")),
        ("POST", format!("{base}/api/v1/offers/small/grants")),
        ("GET", format!("{base}/api/v1/members/ANN/coupons")),
        ("POST", format!("{base}/api/v1/redemptions")),
    ] {
        let req = app.client.request(method.parse().unwrap(), &url).bearer_auth("wrong-token").json(&json!({}));
        assert_error(req.send().await.unwrap(), 401, "unauthorized").await;
    }
    // The staff token is not an admin token, nor the admin token a staff one.
    let req =
        app.client.post(format!("{base}/api/v1/redemptions")).bearer_auth(ADMIN_TOKEN).json(&json!({"code": "x"}));
    assert_error(req.send().await.unwrap(), 401, "unauthorized").await;
    let paged = app.get_authed(&format!("{base}/api/v1/members/ANN/coupons?limit=1"), ADMIN_TOKEN).await;
    assert_eq!(paged.json::<Value>().await.unwrap()["coupons"].as_array().unwrap().len(), 1);
    assert_error(
        app.get_authed(&format!("{base}/api/v1/members/ANN/coupons?limit=0"), ADMIN_TOKEN).await,
        422,
        "validation-failed",
    )
    .await;
}
