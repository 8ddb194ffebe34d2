//! Google Wallet against the stand-in (google_standin.rs: a real HTTP server with the token endpoint and
//! the loyaltyClass/loyaltyObject REST API) and callbacks signed by google_signer.rs playing Google.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::google_signer::{CallbackSigner, SignOptions, callback_message};
use crate::google_standin::{GoogleStandIn, ServiceAccount, write_service_account};
use crate::helpers::{TestApp, assert_error, spawn_app_with};

pub const ISSUER: &str = "3388000000022";
const DEADLINE: Duration = Duration::from_secs(20);

pub struct GoogleApp {
    pub app: TestApp,
    pub google: GoogleStandIn,
    pub account: ServiceAccount,
    pub signer: CallbackSigner,
    /// The Google settings the app was started with, for more instances of the same deployment.
    pub settings: Vec<(String, String)>,
    _keys: tempfile::TempDir,
}

/// The server with Google Wallet pointed at a fresh stand-in; `overrides` on top.
pub async fn spawn_app_with_google(overrides: &[(&str, &str)]) -> GoogleApp {
    let keys = tempfile::tempdir().unwrap();
    // The key file names the stand-in's token endpoint, so the stand-in's address comes first.
    let addr = crate::processes::free_addr();
    let account = write_service_account(keys.path(), &format!("http://{addr}/token"));
    let google = GoogleStandIn::start_on(addr, &account.email, account.public_key.clone()).await;
    assert_eq!(google.token_uri, format!("http://{addr}/token"));
    let signer = CallbackSigner::new();
    let roots = keys.path().join("root-keys.json");
    std::fs::write(&roots, signer.root_keys_json()).unwrap();
    let (key_file, roots) = (account.key_file.display().to_string(), roots.display().to_string());
    let mut settings: Vec<(&str, &str)> = vec![
        ("google_issuer_id", ISSUER),
        ("google_service_account", &key_file),
        ("google_api_url", &google.base),
        ("google_root_keys", &roots),
    ];
    let google_settings = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    settings.extend_from_slice(overrides);
    let app = spawn_app_with(&settings).await;
    GoogleApp { app, google, account, signer, settings: google_settings, _keys: keys }
}

fn object_id(member: &str) -> String {
    format!("{ISSUER}.default-{member}")
}

impl GoogleApp {
    /// Creates a member and waits until Google has it and nothing is left to send.
    pub async fn settled_member(&self, id: &str, body: &Value) -> Value {
        self.app.create_member(id, body).await;
        self.settle(id).await
    }

    /// Waits until the member's object is current and the Google outbox is empty.
    pub async fn settle(&self, id: &str) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let member: Value = self.app.get_member(id).await.json().await.unwrap();
            let metrics = self.app.get(&format!("{}/metrics", self.app.base)).await.text().await.unwrap();
            if member["google"]["current"] == true && metrics.contains("tessera_google_outbox_depth 0") {
                return member;
            }
            assert!(Instant::now() < deadline, "waiting for Google to be current: {member}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Successful PATCHes of the member's object.
    fn patches(&self, id: &str) -> Vec<Value> {
        self.google.patches_of(&object_id(id)).into_iter().filter(|r| r.status == 200).map(|r| r.body).collect()
    }

    async fn wait_patches(&self, id: &str, n: usize) -> Vec<Value> {
        let object = object_id(id);
        let ok =
            |r: &crate::google_standin::Recorded| r.status == 200 && r.method == "PATCH" && r.path.ends_with(&object);
        self.google.wait_until(DEADLINE, |rs| rs.iter().filter(|r| ok(r)).count() >= n).await;
        let patches = self.patches(id);
        assert!(patches.len() >= n, "expected {n} PATCHes of {object}, saw {}", patches.len());
        patches
    }

    async fn event(&self, id: &str, member: &str, sequence: i64, points: i64, tier: &str) -> Value {
        let body = json!({"id": id, "member_id": member, "sequence": sequence, "points": points, "tier": tier});
        let response = self.app.post_ledger(&body).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn post_callback(&self, body: &str) -> reqwest::Response {
        self.app
            .client
            .post(format!("{}/google/callbacks", self.app.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }
}

pub fn decode_link(link: &str, account: &ServiceAccount) -> Value {
    let jwt = link.strip_prefix("https://pay.google.com/gp/v/save/").expect("a Google save link");
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(&account.public_key.public_key_to_pem().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["google"]);
    validation.set_required_spec_claims(&["iss", "aud"]);
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .expect("the JWT verifies with the service account's key")
        .claims
}

#[tokio::test]
async fn concurrent_first_callers_share_one_token_refresh() {
    let g = spawn_app_with_google(&[]).await;
    let creations = (0..16).map(|i| {
        let app = &g.app;
        async move { app.create_member(&format!("T-{i}"), &json!({"name": "T", "tier": "gold", "points": i})).await }
    });
    for member in futures_util::future::join_all(creations).await {
        assert!(member["links"]["google"].is_string(), "{member}");
    }
    assert_eq!(g.google.tokens_issued(), 1);
}

#[tokio::test]
async fn while_google_is_down_the_link_carries_the_object_or_the_page_says_the_card_is_not_ready() {
    let g = spawn_app_with_google(&[]).await;
    // Google down from the start: the class cannot be upserted, so a link would carry the class and the
    // object, longer than a browser keeps.
    g.google.fail_always(503);
    let member = g.app.create_member("U-1", &json!({"name": "Uma", "tier": "gold", "points": 5, "locale": "vi"})).await;
    assert!(member["links"].get("google").is_none(), "{member}");
    let page = g.app.get(member["links"]["page"].as_str().unwrap()).await.text().await.unwrap();
    assert!(page.contains("Thẻ Google Wallet chưa sẵn sàng"), "{page}");
    // Once the class exists, a member created while Google is down gets a link with the whole object.
    g.google.clear_failures();
    g.settle("U-1").await;
    g.google.fail_always(503);
    let member = g.app.create_member("U-2", &json!({"name": "Vy", "tier": "silver", "points": 7})).await;
    let link = member["links"]["google"].as_str().expect("a link carrying the object");
    assert!(link.len() - "https://pay.google.com/gp/v/save/".len() <= 1800);
    let claims = decode_link(link, &g.account);
    let object = &claims["payload"]["loyaltyObjects"][0];
    assert_eq!(object["id"], object_id("U-2"));
    assert_eq!(object["loyaltyPoints"]["balance"]["int"], 7);
    assert!(claims["payload"].get("loyaltyClasses").is_none());
    assert_eq!(object["loyaltyPoints"]["label"], "POINTS");
    // When Google is back, the worker inserts the object (a 409 if the member saved it meanwhile).
    g.google.clear_failures();
    g.settle("U-2").await;
    assert_eq!(g.google.object(&object_id("U-2")).unwrap()["loyaltyPoints"]["balance"]["int"], 7);
}

#[tokio::test]
async fn the_save_link_verifies_names_only_ids_and_stays_short_for_a_long_thai_name() {
    let g = spawn_app_with_google(&[]).await;
    let name: String = "สมชาย ใจดี ".chars().cycle().take(199).collect::<String>() + "ก";
    assert_eq!(name.chars().count(), 200);
    let member =
        g.app.create_member("TH-1", &json!({"name": name, "tier": "gold", "points": 1250, "locale": "th"})).await;
    let link = member["links"]["google"].as_str().expect("links.google").to_string();
    let jwt_len = link.len() - "https://pay.google.com/gp/v/save/".len();
    assert!(jwt_len < 1800, "the JWT is {jwt_len} characters");
    let claims = decode_link(&link, &g.account);
    assert_eq!(claims["iss"], g.account.email.as_str());
    assert_eq!(claims["typ"], "savetowallet");
    assert!(claims["iat"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(claims["origins"], json!([g.app.base]));
    let objects = claims["payload"]["loyaltyObjects"].as_array().unwrap();
    assert_eq!(objects, &vec![json!({"id": object_id("TH-1"), "classId": format!("{ISSUER}.default")})]);
    assert_eq!(member["google"]["object_id"], object_id("TH-1"));

    // The class and object Google got before the link was handed out.
    let class = g.google.class(&format!("{ISSUER}.default")).expect("the class was inserted");
    assert_eq!(class["reviewStatus"], "UNDER_REVIEW");
    assert_eq!(class["issuerName"], "Tessera Coffee");
    assert_eq!(class["callbackOptions"]["url"], format!("{}/google/callbacks", g.app.base));
    assert!(class["hexBackgroundColor"].as_str().unwrap().starts_with('#'));
    let languages: Vec<&str> = class["localizedProgramName"]["translatedValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["language"].as_str().unwrap())
        .collect();
    assert_eq!(languages, ["th", "vi"]);
    let logo = g.app.get(class["programLogo"]["sourceUri"]["uri"].as_str().unwrap()).await;
    assert_eq!(logo.status(), 200);
    assert_eq!(logo.headers()["content-type"], "image/png");

    let object = g.google.object(&object_id("TH-1")).expect("the object was inserted");
    assert_eq!(object["state"], "ACTIVE");
    assert_eq!(object["accountId"], "TH-1");
    assert_eq!(object["accountName"], name.as_str());
    assert_eq!(object["loyaltyPoints"]["balance"]["int"], 1250);
    assert_eq!(object["loyaltyPoints"]["label"], "คะแนน");
    assert_eq!(object["loyaltyPoints"]["localizedLabel"]["defaultValue"]["language"], "th");
    assert_eq!(object["secondaryLoyaltyPoints"]["balance"]["string"], "โกลด์");
    let pkpass =
        crate::helpers::unzip(&g.app.get(member["links"]["apple"].as_str().unwrap()).await.bytes().await.unwrap());
    let apple_barcode = crate::helpers::pass_json(&pkpass)["barcodes"][0]["message"].clone();
    assert_eq!(object["barcode"]["value"], apple_barcode);
    let hero = g.app.get(object["heroImage"]["sourceUri"]["uri"].as_str().unwrap()).await;
    assert_eq!(hero.status(), 200);
}

#[tokio::test]
async fn an_applied_event_patches_once_duplicates_and_stale_events_not_at_all() {
    let apns = crate::apns_standin::StandIn::start(&[&crate::helpers::repo().join("certs-example/root.pem")]).await;
    let ca = apns.ca_path.display().to_string();
    let g = spawn_app_with_google(&[("apns_url", &apns.url), ("apns_ca", &ca)]).await;
    let pass = g.app.member_with_pass("E-1", &json!({"name": "Ann", "tier": "silver", "points": 10})).await;
    let token = crate::helpers::push_token("e1");
    assert_eq!(g.app.register("device-e1", &pass, &token).await.status(), 201);
    g.settle("E-1").await;
    let before = g.patches("E-1").len();
    g.event("e1", "E-1", 5, 500, "platinum").await;
    let patches = g.wait_patches("E-1", before + 1).await;
    assert_eq!(apns.wait_for(&token, 1).await.len(), 1, "one APNs push beside the PATCH");
    let patch = &patches[before];
    assert_eq!(patch["loyaltyPoints"]["balance"]["int"], 500);
    assert_eq!(patch["secondaryLoyaltyPoints"]["balance"]["string"], "Platinum");
    assert_eq!(patch["notifyPreference"], "NOTIFY_ON_UPDATE");
    g.settle("E-1").await;
    // A duplicate and a stale event, then a real one as the barrier: only the real one is sent.
    assert_eq!(g.event("e1", "E-1", 6, 999, "gold").await["results"][0]["status"], "duplicate");
    assert_eq!(g.event("e2", "E-1", 4, 999, "gold").await["results"][0]["status"], "stale");
    g.event("e3", "E-1", 7, 700, "platinum").await;
    let patches = g.wait_patches("E-1", before + 2).await;
    g.settle("E-1").await;
    let patches_now = g.patches("E-1");
    assert_eq!(patches_now.len(), before + 2, "{patches_now:?}");
    assert_eq!(patches[before + 1]["loyaltyPoints"]["balance"]["int"], 700);
    assert_eq!(g.google.tokens_issued(), 1, "one access token serves every update");
    assert_eq!(apns.wait_for(&token, 2).await.len(), 2, "one push per applied event, none for the others");
}

#[tokio::test]
async fn ten_changes_while_google_answers_503_become_one_patch_with_the_last_state() {
    let g = spawn_app_with_google(&[]).await;
    g.settled_member("D-1", &json!({"name": "Dao", "tier": "silver", "points": 0})).await;
    let before = g.patches("D-1").len();
    g.google.fail_always(503);
    let posted = Instant::now();
    for i in 1..=10 {
        g.event(&format!("d{i}"), "D-1", i, i * 100, "gold").await;
    }
    let object = object_id("D-1");
    // Wait for an attempt that failed after the last change was committed, then let Google recover.
    let done_posting = Instant::now();
    g.google
        .wait_until(DEADLINE, |rs| {
            rs.iter().any(|r| r.status == 503 && r.path.ends_with(&object) && r.at > done_posting)
        })
        .await;
    assert!(posted.elapsed() < DEADLINE);
    g.google.clear_failures();
    let patches = g.wait_patches("D-1", before + 1).await;
    g.settle("D-1").await;
    let after: Vec<Value> = g.patches("D-1")[before..].to_vec();
    assert_eq!(after.len(), 1, "one PATCH after recovery: {after:?}");
    assert_eq!(patches[before]["loyaltyPoints"]["balance"]["int"], 1000);
}

#[tokio::test]
async fn four_balance_changes_in_a_day_ask_for_a_notification_three_times() {
    let g = spawn_app_with_google(&[]).await;
    g.settled_member("N-1", &json!({"name": "Nok", "tier": "gold", "points": 0})).await;
    let before = g.patches("N-1").len();
    for i in 1..=4 {
        g.event(&format!("n{i}"), "N-1", i, i * 10, "gold").await;
        g.wait_patches("N-1", before + i as usize).await;
    }
    g.settle("N-1").await;
    let notified = g.patches("N-1")[before..].iter().filter(|p| p["notifyPreference"] == "NOTIFY_ON_UPDATE").count();
    assert_eq!(notified, 3);
    // A name change is sent silently.
    g.app.put_member("N-1", &json!({"name": "Nok Renamed", "tier": "gold", "points": 40})).await;
    let last = g.wait_patches("N-1", before + 5).await.pop().unwrap();
    assert_eq!(last["accountName"], "Nok Renamed");
    assert!(last.get("notifyPreference").is_none());
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_once_and_retiring_expires_the_object() {
    let g = spawn_app_with_google(&[]).await;
    g.settled_member("R-1", &json!({"name": "Rin", "tier": "gold", "points": 5})).await;
    g.google.revoke_tokens();
    let before = g.patches("R-1").len();
    let retired = g.app.delete_member("R-1").await;
    assert_eq!(retired.status(), 200);
    let patch = g.wait_patches("R-1", before + 1).await.pop().unwrap();
    assert_eq!(patch["state"], "EXPIRED");
    assert_eq!(g.google.tokens_issued(), 2, "a 401 fetches one new token");
    let member = g.settle("R-1").await;
    assert!(member["links"].get("google").is_none(), "a retired member gets no save link");
}

#[tokio::test]
async fn google_refusing_the_service_account_is_reported_and_updates_wait() {
    let g = spawn_app_with_google(&[]).await;
    g.settled_member("F-1", &json!({"name": "Fah", "tier": "gold", "points": 5})).await;
    g.google.fail_always(403);
    g.event("f1", "F-1", 1, 50, "gold").await;
    let member = g
        .app
        .wait_member("F-1", "the 403 to show", |m| {
            m["google"]["problem"].as_str().is_some_and(|p| p.starts_with("forbidden"))
        })
        .await;
    assert_eq!(member["google"]["current"], false);
    let metrics = g.app.get(&format!("{}/metrics", g.app.base)).await.text().await.unwrap();
    assert!(metrics.contains("tessera_google_forbidden 1"), "{metrics}");
}

#[tokio::test]
async fn a_genuine_save_callback_sets_saved_and_bad_ones_change_nothing() {
    let g = spawn_app_with_google(&[]).await;
    g.settled_member("C-1", &json!({"name": "Chai", "tier": "gold", "points": 5})).await;
    let class = format!("{ISSUER}.default");
    let later = tessera::time_fmt::now_unix_ms() + 60_000;
    let message = |event: &str, nonce: &str| callback_message(&class, &object_id("C-1"), event, later, nonce);
    let saved = |m: &Value| m["google"]["saved"] == true;

    // Bad ones first: each a 4xx with the JSON error, and the member not saved.
    let unsigned = json!({"protocolVersion": "ECv2SigningOnly", "signedMessage": message("save", "n0").to_string()});
    assert_error(g.post_callback(&unsigned.to_string()).await, 401, "bad-signature").await;
    let genuine = g.signer.sign(ISSUER, &message("save", "n1"));
    let forged = genuine.replace("C-1", "C-2");
    assert_ne!(forged, genuine);
    assert_error(g.post_callback(&forged).await, 401, "bad-signature").await;
    let expired = g.signer.sign(ISSUER, &callback_message(&class, &object_id("C-1"), "save", 1_000, "n2"));
    assert_error(g.post_callback(&expired).await, 401, "stale-signature").await;
    let other_issuer = g.signer.sign("3388000000099", &message("save", "n3"));
    assert_error(g.post_callback(&other_issuer).await, 401, "bad-signature").await;
    let other_ids = g.signer.sign(ISSUER, &callback_message("999.default", "999.default-C-1", "save", later, "n4"));
    assert_error(g.post_callback(&other_ids).await, 401, "bad-signature").await;
    let foreign = g.signer.sign_with(
        ISSUER,
        &message("save", "n5").to_string(),
        &SignOptions { foreign_root: true, ..Default::default() },
    );
    assert_error(g.post_callback(&foreign).await, 401, "bad-signature").await;
    assert_error(g.post_callback("not json").await, 400, "invalid-json").await;
    assert!(!saved(&g.app.get_member("C-1").await.json().await.unwrap()));

    // The genuine one, then its replay.
    let answer = g.post_callback(&genuine).await;
    assert_eq!(answer.status(), 200);
    assert!(saved(&g.app.get_member("C-1").await.json().await.unwrap()));
    let delete = g.signer.sign(ISSUER, &message("del", "n6"));
    assert_error(g.post_callback(&genuine).await, 401, "stale-signature").await;
    assert_eq!(g.post_callback(&delete).await.status(), 200);
    assert!(!saved(&g.app.get_member("C-1").await.json().await.unwrap()));
    assert_error(g.post_callback(&genuine).await, 401, "stale-signature").await;
    assert!(!saved(&g.app.get_member("C-1").await.json().await.unwrap()), "a replayed save changes nothing");
    let metrics = g.app.get(&format!("{}/metrics", g.app.base)).await.text().await.unwrap();
    assert!(metrics.contains("tessera_google_callbacks_total{result=\"save\"} 1"), "{metrics}");
}

/// A callback that is malformed or unsigned is refused as it stands, without fetching Google's keys; a
/// well-formed one waits on the keys (503 with Retry-After while Google will not give them, so Google
/// retries) and is recorded once they come.
#[tokio::test]
async fn bad_callbacks_are_refused_before_any_key_is_fetched() {
    let g = spawn_app_with_google_keys_from_stand_in().await;
    g.settled_member("K-1", &json!({"name": "Kai", "tier": "gold", "points": 5})).await;
    let class = format!("{ISSUER}.default");
    let later = tessera::time_fmt::now_unix_ms() + 60_000;
    let message = callback_message(&class, &object_id("K-1"), "save", later, "k1");
    let genuine = g.signer.sign(ISSUER, &message);
    let envelope: Value = serde_json::from_str(&genuine).unwrap();
    let without = |field: &str| {
        let mut e = envelope.clone();
        e.as_object_mut().unwrap().remove(field);
        e.to_string()
    };
    let mut no_intermediate_signatures = envelope.clone();
    no_intermediate_signatures["intermediateSigningKey"].as_object_mut().unwrap().remove("signatures");
    let mut bad_event = envelope.clone();
    bad_event["signedMessage"] = Value::from(message.to_string().replace("\"save\"", "\"up\""));
    let mut other_protocol = envelope.clone();
    other_protocol["protocolVersion"] = Value::from("ECv1");
    for (what, body) in [
        ("no signature", without("signature")),
        ("no intermediateSigningKey", without("intermediateSigningKey")),
        ("no signedMessage", without("signedMessage")),
        ("no protocolVersion", without("protocolVersion")),
        ("no intermediate signatures", no_intermediate_signatures.to_string()),
        ("an unknown event", bad_event.to_string()),
        ("another protocol", other_protocol.to_string()),
        ("an empty object", "{}".to_string()),
    ] {
        let answer = g.post_callback(&body).await;
        assert_eq!(answer.status(), 401, "{what}");
        assert_error(answer, 401, "bad-signature").await;
    }
    assert_error(g.post_callback("{not json").await, 400, "invalid-json").await;
    assert_eq!(g.google.root_key_fetches(), 0, "nothing was fetched for a callback that cannot verify");

    // A well-formed callback waits on the keys: 503 with Retry-After while Google refuses them.
    let waiting = g.post_callback(&genuine).await;
    assert_eq!(waiting.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert_error(waiting, 503, "unavailable").await;
    assert_eq!(g.google.root_key_fetches(), 1);
    assert_eq!(g.app.get_member("K-1").await.json::<Value>().await.unwrap()["google"]["saved"], false);

    // Google retries once its keys can be had: recorded.
    g.google.serve_root_keys(Some(g.signer.root_keys_json()));
    assert_eq!(g.post_callback(&genuine).await.status(), 200);
    assert_eq!(g.app.get_member("K-1").await.json::<Value>().await.unwrap()["google"]["saved"], true);
}

/// The server with Google Wallet whose root keys come from the stand-in's `/keys` (refused until served).
async fn spawn_app_with_google_keys_from_stand_in() -> GoogleApp {
    let keys = tempfile::tempdir().unwrap();
    let addr = crate::processes::free_addr();
    let account = write_service_account(keys.path(), &format!("http://{addr}/token"));
    let google = GoogleStandIn::start_on(addr, &account.email, account.public_key.clone()).await;
    let key_file = account.key_file.display().to_string();
    let app = spawn_app_with(&[
        ("google_issuer_id", ISSUER),
        ("google_service_account", &key_file),
        ("google_api_url", &google.base),
        ("google_root_keys", &google.root_keys_url()),
    ])
    .await;
    GoogleApp { app, google, account, signer: CallbackSigner::new(), settings: Vec::new(), _keys: keys }
}

#[tokio::test]
async fn the_member_page_shows_both_buttons_and_the_assets_are_served() {
    let g = spawn_app_with_google(&[]).await;
    let member = g.app.create_member("P-1", &json!({"name": "Pim", "tier": "gold", "points": 5, "locale": "th"})).await;
    let page = g.app.get(member["links"]["page"].as_str().unwrap()).await.text().await.unwrap().replace("&#x2f;", "/");
    assert!(page.contains("https://pay.google.com/gp/v/save/"), "{page}");
    assert!(page.contains("google-wallet-mark.svg"));
    let mark = g.app.get(&format!("{}/assets/google-wallet-mark.svg", g.app.base)).await;
    assert_eq!(mark.status(), 200);
    assert_eq!(mark.headers()["content-type"], "image/svg+xml");
}

#[tokio::test]
async fn without_google_settings_apple_works_and_nothing_calls_google() {
    let account_dir = tempfile::tempdir().unwrap();
    let account = write_service_account(account_dir.path(), "http://127.0.0.1:1/token");
    let google = GoogleStandIn::start(&account.email, account.public_key.clone()).await;
    // The API URL is set, but not the issuer and key: Google stays off.
    let app = spawn_app_with(&[("google_api_url", &google.base)]).await;
    let member = app.create_member("A-1", &json!({"name": "Apple Only", "tier": "gold", "points": 5})).await;
    assert!(member["links"].get("google").is_none(), "{member}");
    assert!(member.get("google").is_none(), "{member}");
    assert!(member["links"]["apple"].is_string());
    let page = app.get(member["links"]["page"].as_str().unwrap()).await.text().await.unwrap();
    assert!(!page.contains("google-wallet-mark") && !page.contains("pay.google.com"));
    let body = json!({"id": "a1", "member_id": "A-1", "sequence": 1, "points": 9, "tier": "gold"});
    assert_eq!(app.post_ledger(&body).await.status(), 200);
    let callback = app
        .client
        .post(format!("{}/google/callbacks", app.base))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(callback, 503, "not-configured").await;
    let metrics = app.get(&format!("{}/metrics", app.base)).await.text().await.unwrap();
    assert!(!metrics.contains("tessera_google_"));
    assert!(google.requests().is_empty(), "{:?}", google.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_key_file_and_that_google_grants_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let addr = crate::processes::free_addr();
    let token_uri = format!("http://{addr}/token");
    let account = write_service_account(dir.path(), &token_uri);
    let _google = GoogleStandIn::start_on(addr, &account.email, account.public_key.clone()).await;
    let repo = crate::helpers::repo();
    let templates = repo.join("templates").display().to_string();
    let database = format!("sqlite://{}/doctor.db", dir.path().display());
    let run = |key_file: String| {
        let (templates, database, dir) = (templates.clone(), database.clone(), dir.path().to_path_buf());
        let repo = repo.clone();
        tokio::task::spawn_blocking(move || {
            let out = crate::helpers::tessera(
                &["doctor"],
                &repo,
                &[
                    ("TESSERA_TEMPLATES_DIR", &templates),
                    ("TESSERA_DATABASE_URL", &database),
                    ("TESSERA_GOOGLE_ISSUER_ID", ISSUER),
                    ("TESSERA_GOOGLE_SERVICE_ACCOUNT", &key_file),
                ],
            );
            let _ = dir;
            String::from_utf8_lossy(&out.stdout).to_string()
        })
    };
    let good = run(account.key_file.display().to_string()).await.unwrap();
    assert!(good.contains("Google grants the service account an access token"), "{good}");
    assert!(good.contains(&account.email), "{good}");

    // A key Google does not know (another account's email with this token endpoint): refused, in words.
    let other_dir = dir.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let other = crate::google_standin::write_service_account_as(
        &other_dir,
        &token_uri,
        "stranger@example.iam.gserviceaccount.com",
    );
    let refused = run(other.key_file.display().to_string()).await.unwrap();
    assert!(refused.contains("error: Google does not grant an access token"), "{refused}");

    // Not a key file at all.
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"client_email\": \"x@y\"}").unwrap();
    let broken = run(junk.display().to_string()).await.unwrap();
    assert!(broken.contains("has no `private_key`"), "{broken}");
}

#[tokio::test]
async fn the_stand_in_token_endpoint_refuses_what_google_would() {
    let dir = tempfile::tempdir().unwrap();
    let addr = crate::processes::free_addr();
    let account = write_service_account(dir.path(), &format!("http://{addr}/token"));
    let google = GoogleStandIn::start_on(addr, &account.email, account.public_key.clone()).await;
    let client = reqwest::Client::new();
    let grant = |claims: &Value| {
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer".to_string()),
            ("assertion", account.assertion(claims)),
        ];
        client.post(&google.token_uri).form(&form).send()
    };
    let good = account.claims(&google.token_uri);
    assert_eq!(grant(&good).await.unwrap().status(), 200);
    for (field, value) in [
        ("scope", json!("https://www.googleapis.com/auth/other")),
        ("aud", json!("https://elsewhere/token")),
        ("iss", json!("x@y")),
    ] {
        let mut bad = good.clone();
        bad[field] = value;
        assert_eq!(grant(&bad).await.unwrap().status(), 400, "{field}");
    }
    assert_eq!(google.tokens_issued(), 1);
}

/// Every REST request takes its turn of the shared rate: the class's insert and its PATCH after 409,
/// each object's insert and the PATCH after its 409. At 4 requests a second (a second's burst, then the
/// rate), the requests cannot reach Google faster than that.
#[tokio::test]
async fn every_request_takes_its_turn_of_the_rate_retries_after_409_included() {
    const RATE: f64 = 4.0;
    const MEMBERS: usize = 8;
    let g = spawn_app_with_google(&[("google_rate", "4")]).await;
    // Google already holds the class and every object (saved from whole-object links): each insert
    // answers 409 and the object is brought up to date by a PATCH.
    g.google.seed_class(json!({"id": format!("{ISSUER}.default"), "reviewStatus": "UNDER_REVIEW"}));
    for m in 0..MEMBERS {
        let id = object_id(&format!("Q-{m}"));
        g.google.seed_object(json!({"id": id, "classId": format!("{ISSUER}.default"), "state": "ACTIVE"}));
    }
    let events: Vec<Value> = (0..MEMBERS)
        .map(|m| json!({"id": format!("q-{m}"), "member_id": format!("Q-{m}"), "sequence": 1, "points": 70, "tier": "gold"}))
        .collect();
    assert_eq!(g.app.post_ledger(&json!({ "events": events })).await.status(), 200);
    let current = |rs: &[crate::google_standin::Recorded]| {
        let patched = |m: usize| {
            let path = format!("/loyaltyObject/{}", object_id(&format!("Q-{m}")));
            rs.iter().any(|r| r.method == "PATCH" && r.status == 200 && r.path.ends_with(&path))
        };
        (0..MEMBERS).all(patched)
    };
    g.google.wait_until(Duration::from_secs(30), current).await;
    let requests = g.google.rest_requests();
    let n = requests.len();
    assert_eq!(n, 2 + 2 * MEMBERS, "the class and each object: an insert answered 409, then a PATCH");
    let spread = requests.last().unwrap().at.duration_since(requests[0].at).as_secs_f64();
    let least = (n as f64 - RATE) / RATE;
    assert!(spread >= least * 0.9, "{n} requests in {spread:.2} s; at {RATE}/s they need {least:.2} s");
}

/// A round whose turn of the shared rate cannot be reserved is not sent (it would exceed Google's quota
/// for every instance); it is tried again, and sent once the rate can be consulted.
#[tokio::test]
async fn a_round_whose_turn_cannot_be_reserved_waits_instead_of_going_out_unthrottled() {
    let g = spawn_app_with_google(&[]).await;
    g.settled_member("U-1", &json!({"name": "Ubon", "tier": "gold", "points": 5})).await;
    let (before, patched) = (g.google.rest_requests().len(), g.patches("U-1").len());
    g.app.sql("ALTER TABLE rate_limits RENAME TO rate_limits_away").await;
    g.event("u1", "U-1", 1, 60, "gold").await;
    let member = g
        .app
        .wait_member("U-1", "the unsent round recorded", |m| {
            m["google"]["problem"].as_str().is_some_and(|p| p.starts_with("not-sent"))
        })
        .await;
    assert_eq!(member["google"]["current"], false);
    assert_eq!(g.google.rest_requests().len(), before, "nothing was sent without its turn");
    g.app.sql("ALTER TABLE rate_limits_away RENAME TO rate_limits").await;
    let patches = g.wait_patches("U-1", patched + 1).await;
    assert_eq!(patches.last().unwrap()["loyaltyPoints"]["balance"]["int"], 60);
    g.settle("U-1").await;
}
