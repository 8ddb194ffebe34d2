//! Offers in Google Wallet, against the stand-in: one OfferClass per offer, one OfferObject per coupon with
//! the coupon's code and window, linked from the member's loyalty object and announced on it with a message
//! that notifies while the object's 3-in-24-hours budget lasts (TEXT after, also when Google says
//! quotaExceeded), and the object's state following redemption, withdrawal and expiry; the coupon's own save
//! link for members who have not saved the card.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::google::{GoogleApp, ISSUER, decode_link, spawn_app_with_google};
use crate::helpers::{ADMIN_TOKEN, TestApp};
use crate::offers::{STAFF_TOKEN, coupons_of, grant, put_offer, redeem, window};

const DEADLINE: Duration = Duration::from_secs(20);

fn loyalty_id(member: &str) -> String {
    format!("{ISSUER}.default-{member}")
}

fn offer_object_id(member: &str, offer: &str) -> String {
    format!("{ISSUER}.default-{member}-{offer}")
}

async fn offer(app: &TestApp, id: &str, template: &str, until_s: i64) {
    let (from, until) = window(-60, until_s);
    let body = json!({"template": template, "valid_from": from, "valid_until": until});
    assert_eq!(put_offer(app, id, &body).await.status(), 201);
}

/// Polls the stand-in until `f` holds of what it stores, and answers what `f` found.
async fn wait_google<T>(g: &GoogleApp, what: &str, f: impl Fn(&GoogleApp) -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(found) = f(g) {
            return found;
        }
        assert!(Instant::now() < deadline, "waiting for Google: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_state(g: &GoogleApp, object: &str, state: &str) -> Value {
    wait_google(g, &format!("{object} {state}"), |g| g.google.offer_object(object).filter(|o| o["state"] == state))
        .await
}

fn offer_messages(g: &GoogleApp, member: &str) -> Vec<String> {
    let loyalty = g.google.object(&loyalty_id(member)).unwrap_or_default();
    let messages = loyalty["messages"].as_array().cloned().unwrap_or_default();
    messages
        .iter()
        .filter(|m| m["id"].as_str().is_some_and(|id| id.starts_with("coupon-")))
        .map(|m| m["messageType"].as_str().unwrap_or("").into())
        .collect()
}

#[tokio::test]
async fn a_coupon_reaches_google_wallet_linked_announced_and_its_state_follows_the_counter() {
    let g = spawn_app_with_google(&[("staff_token", STAFF_TOKEN)]).await;
    g.settled_member("GINA", &json!({"name": "Gina", "tier": "gold", "points": 10, "locale": "th"})).await;
    offer(&g.app, "birthday", "free-drink", 3600).await;
    assert_eq!(grant(&g.app, "birthday", &["GINA"]).await.status(), 200);
    let coupon = coupons_of(&g.app, "GINA").await.remove(0);
    let object_id = offer_object_id("GINA", "birthday");

    // The class, the object with the coupon's code and window, the link and the notifying message.
    let object = wait_state(&g, &object_id, "ACTIVE").await;
    let class = g.google.offer_class(&format!("{ISSUER}.default-offer-birthday")).expect("the OfferClass");
    assert_eq!(object["classId"], class["id"]);
    assert_eq!(class["redemptionChannel"], "INSTORE");
    assert_eq!(object["barcode"]["value"], coupon["code"]);
    assert_eq!(object["validTimeInterval"]["end"]["date"], coupon["valid_until"]);
    let loyalty = wait_google(&g, "the link and the message", |g| {
        let loyalty = g.google.object(&loyalty_id("GINA"))?;
        let linked = loyalty["linkedObjectIds"].as_array()?.iter().any(|id| *id == object_id);
        (linked && !offer_messages(g, "GINA").is_empty()).then_some(loyalty)
    })
    .await;
    assert_eq!(offer_messages(&g, "GINA"), ["TEXT_AND_NOTIFY"], "{loyalty}");

    // Redeemed at the counter: COMPLETED; nothing is announced twice.
    assert_eq!(redeem(&g.app, coupon["code"].as_str().unwrap(), Some("Siam")).await.status(), 200);
    wait_state(&g, &object_id, "COMPLETED").await;
    assert_eq!(offer_messages(&g, "GINA"), ["TEXT_AND_NOTIFY"]);

    // Withdrawn: INACTIVE (the link stays, as Google cannot undo one).
    offer(&g.app, "weekend", "double-points", 3600).await;
    grant(&g.app, "weekend", &["GINA"]).await;
    let weekend = offer_object_id("GINA", "weekend");
    wait_state(&g, &weekend, "ACTIVE").await;
    let url = format!("{}/api/v1/offers/weekend", g.app.base);
    assert_eq!(g.app.client.delete(url).bearer_auth(ADMIN_TOKEN).send().await.unwrap().status(), 200);
    wait_state(&g, &weekend, "INACTIVE").await;
    let links = g.google.object(&loyalty_id("GINA")).unwrap()["linkedObjectIds"].clone();
    assert_eq!(links, json!([object_id, weekend]));

    // Expired at the end of the window, without a request.
    offer(&g.app, "flash", "free-drink", 3).await;
    grant(&g.app, "flash", &["GINA"]).await;
    let flash = offer_object_id("GINA", "flash");
    wait_state(&g, &flash, "ACTIVE").await;
    wait_state(&g, &flash, "EXPIRED").await;
    // Google refused no body (a 409 is an insert that lost to another, which is then PATCHed).
    let refused: Vec<_> = g.google.rest_requests().into_iter().filter(|r| r.status == 400 || r.status == 403).collect();
    assert!(refused.is_empty(), "Google refused a body: {refused:?}");
}

#[tokio::test]
async fn messages_notify_while_the_shared_budget_lasts_and_are_plain_text_after() {
    let g = spawn_app_with_google(&[("staff_token", STAFF_TOKEN)]).await;
    g.settled_member("BUDGET", &json!({"name": "Bea", "tier": "silver", "points": 0})).await;
    g.settled_member("SPENT", &json!({"name": "Sam", "tier": "silver", "points": 0})).await;
    // SPENT's budget was used up elsewhere today (Google counts it; tessera does not know): Google answers
    // quotaExceeded and the message goes again as TEXT.
    g.google.spend_notifications(&loyalty_id("SPENT"), 3);
    for (i, template) in ["free-drink", "double-points", "free-drink", "double-points"].iter().enumerate() {
        let id = format!("offer-{i}");
        offer(&g.app, &id, template, 3600).await;
        assert_eq!(grant(&g.app, &id, &["BUDGET", "SPENT"]).await.status(), 200);
        for member in ["BUDGET", "SPENT"] {
            wait_google(&g, &format!("message {i} on {member}"), |g| {
                (offer_messages(g, member).len() > i).then_some(())
            })
            .await;
        }
    }
    assert_eq!(offer_messages(&g, "BUDGET"), ["TEXT_AND_NOTIFY", "TEXT_AND_NOTIFY", "TEXT_AND_NOTIFY", "TEXT"]);
    assert_eq!(offer_messages(&g, "SPENT"), ["TEXT", "TEXT", "TEXT", "TEXT"]);
    let quota = g.google.rest_requests().into_iter().filter(|r| r.status == 403).count();
    assert!(quota >= 1, "Google was asked to notify past the budget at least once, and said so");
    let objects = g.google.offer_objects();
    assert_eq!(objects.len(), 8, "{:?}", objects.keys().collect::<Vec<_>>());
}

#[tokio::test]
async fn a_coupon_has_its_own_save_link_that_names_only_its_object() {
    let g = spawn_app_with_google(&[("staff_token", STAFF_TOKEN)]).await;
    g.settled_member("LINK", &json!({"name": "Lin", "tier": "gold", "points": 5})).await;
    offer(&g.app, "birthday", "free-drink", 3600).await;
    grant(&g.app, "birthday", &["LINK"]).await;
    let coupon = coupons_of(&g.app, "LINK").await.remove(0);
    let link = coupon["links"]["google"].as_str().expect("a Google link on the coupon");
    assert_eq!(link, format!("{}/c/{}/google", g.app.base, coupon["coupon_id"].as_str().unwrap()));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let answer = client.get(link).send().await.unwrap();
    assert_eq!(answer.status(), 302);
    let location = answer.headers()["location"].to_str().unwrap().to_string();
    let claims = decode_link(&location, &g.account);
    let objects = claims["payload"]["offerObjects"].as_array().expect("offerObjects");
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["id"], offer_object_id("LINK", "birthday"));
    assert!(g.google.offer_object(&offer_object_id("LINK", "birthday")).is_some(), "inserted before the link");
    let unknown = client.get(format!("{}/c/nope/google", g.app.base)).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
}
